"""Settings of the example shop. The database is `DATABASE_URL`, which migproof sets to each
scratch database: `postgresql://user:password@host:port/name`, user and password
percent-encoded."""

import os
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


def database_from_url(url):
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgresql:// URL, not {parts.scheme}://")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or ""),
        "PORT": str(parts.port or ""),
    }


if not os.environ.get("DATABASE_URL"):
    raise ImproperlyConfigured("set DATABASE_URL, e.g. postgresql://app@localhost/shop")
DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "not-a-secret: this project only runs migrations")
DEBUG = False
# No contrib apps (auth, contenttypes, admin, sessions): only `shop` has migrations, so
# `migrate` creates nothing but its tables and django_migrations, Django's history table.
INSTALLED_APPS = ["shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

#!/usr/bin/env python3
"""Rolls an app back to just before one of its migrations: `migrate_before.py shop 0003_x`
runs `manage.py migrate shop 0002_y`, or `migrate shop zero` for the app's first migration.

Django's `migrate` takes the migration to end at, so undoing one migration means naming the one
before it; this reads that from Django's own migration graph rather than from file names."""

import os
import sys

import django
from django.core.management import call_command
from django.db.migrations.exceptions import AmbiguityError
from django.db.migrations.loader import MigrationLoader


def previous(app, name):
    loader = MigrationLoader(None, ignore_no_migrations=True)
    try:
        # A prefix names a migration as it does for `migrate` (`0003` for `0003_x`).
        name = loader.get_migration_by_prefix(app, name).name
    except (KeyError, AmbiguityError) as e:
        sys.exit(f"migrate_before.py: {e.args[0]}")
    parents = [p.key[1] for p in loader.graph.node_map[(app, name)].parents if p.key[0] == app]
    if len(parents) > 1:
        sys.exit(f"migrate_before.py: {app}.{name} merges {parents}; roll it back by hand")
    return parents[0] if parents else "zero"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: migrate_before.py APP MIGRATION")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    app, name = sys.argv[1:]
    call_command("migrate", app, previous(app, name))

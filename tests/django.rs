//! A real Django project driven through `[command]` by the real `manage.py migrate` (Django
//! installed by `.ci/run` from PyPI, with psycopg 3): a data migration adds the default
//! shipping methods, and its reverse deletes every shipping method rather than the two it
//! added. That rollback is found; the corrected twin passes.

mod common;
use common::code;

use common::*;

use std::path::Path;

fn django_installed() {
    let ok = std::process::Command::new("python3")
        .args(["-m", "django", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "Django is needed: `python3 -m pip install django 'psycopg[binary]'` (.ci/run does it)"
    );
}

/// Copies the Django project `from` into `to`, leaving out Python's bytecode caches.
fn copy_project(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            copy_project(&path, &to.join(name));
        } else {
            std::fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

#[test]
fn reverse_data_migration_that_deletes_every_shipping_method_is_found() {
    django_installed();
    let (out, json) = check_json(&root().join("examples/django/shop_bug"), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(json["source"]["format"], "command");
    assert_eq!(
        findings(&json),
        [(
            "data_lost".to_string(),
            "0003_default_shipping_methods".to_string()
        )]
    );
    let f = &json["findings"][0];
    assert_eq!(f["step"], "down (round trip)", "{f:#}");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("public.shop_shippingmethod"),
        "{f:#}"
    );
}

/// Also proves the rollback of the first migration, `migrate shop zero`, and that Django's
/// `django_migrations` table is left out of the comparisons.
#[test]
fn corrected_twin_passes() {
    django_installed();
    let (out, json) = check_json(&root().join("examples/django/shop_fixed"), &[]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert_eq!(json["summary"]["migrations_checked"], 3);
    assert_eq!(json["summary"]["downs_tested"], 3);
}

#[test]
fn a_failed_django_migrate_is_a_finding_carrying_its_stderr() {
    django_installed();
    let dir = tempfile::tempdir().unwrap();
    copy_project(&root().join("examples/django/shop_fixed"), dir.path());
    std::fs::write(
        dir.path()
            .join("shop/migrations/0003_default_shipping_methods.py"),
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [('shop', '0002_shippingmethod')]\n    operations = [migrations.RunSQL('ALTER TABLE shop_product ADD COLUMN x nosuchtype')]\n",
    )
    .unwrap();
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let f = &json["findings"][0];
    assert_eq!(f["kind"], "apply_failed");
    assert_eq!(f["migration"], "0003_default_shipping_methods");
    assert!(
        f["message"].as_str().unwrap().contains("nosuchtype"),
        "{f:#}"
    );
}

/// The twins are one project: they differ only in the reverse of the data migration (and the
/// bug's `expect.json`).
#[test]
fn twins_differ_only_in_the_planted_reverse() {
    fn files(dir: &Path, under: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap();
            if name == "__pycache__" || name == "expect.json" {
                continue;
            }
            if path.is_dir() {
                files(&path, under, out);
            } else {
                out.push(path.strip_prefix(under).unwrap().to_owned());
            }
        }
    }
    let (bug, fixed) = (
        root().join("examples/django/shop_bug"),
        root().join("examples/django/shop_fixed"),
    );
    let (mut in_bug, mut in_fixed) = (Vec::new(), Vec::new());
    files(&bug, &bug, &mut in_bug);
    files(&fixed, &fixed, &mut in_fixed);
    in_bug.sort();
    in_fixed.sort();
    assert_eq!(in_bug, in_fixed);
    let planted = Path::new("shop/migrations/0003_default_shipping_methods.py");
    for file in &in_bug {
        let same =
            std::fs::read(bug.join(file)).unwrap() == std::fs::read(fixed.join(file)).unwrap();
        assert_eq!(same, file != planted, "{}", file.display());
    }
}

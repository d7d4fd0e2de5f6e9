//! A real Alembic project driven by the real `alembic` command (installed by `.ci/run` from
//! PyPI with psycopg 3): the article's revision that adds a non-nullable
//! `notification_enabled` column with a server default and then drops the default. Its
//! downgrade that forgets to restore an index the upgrade removed is found; the corrected twin
//! passes.

mod common;
use common::code;

use common::*;

fn alembic_installed() {
    let ok = std::process::Command::new("alembic")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "the `alembic` command is needed: `pip install alembic 'psycopg[binary]'` (.ci/run does it)");
}

#[test]
fn downgrade_that_forgets_what_its_upgrade_removed_is_found() {
    alembic_installed();
    let (out, json) = check_json(&root().join("examples/alembic/notifications_bug"), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(json["source"]["format"], "alembic");
    assert_eq!(
        findings(&json),
        [(
            "schema_mismatch".to_string(),
            "2b3c4d5e6f7a_add_notification_enabled".to_string()
        )]
    );
    assert!(json["findings"][0]["diff"]
        .as_str()
        .unwrap()
        .contains("-index public.ix_users_email"));
}

#[test]
fn corrected_twin_passes() {
    alembic_installed();
    let (out, json) = check_json(&root().join("examples/alembic/notifications_fixed"), &[]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert_eq!(json["summary"]["migrations_checked"], 2);
}

#[test]
fn a_failed_alembic_run_is_a_finding_carrying_its_stderr() {
    alembic_installed();
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("examples/alembic/notifications_fixed");
    std::fs::create_dir_all(dir.path().join("alembic/versions")).unwrap();
    for f in [
        "alembic.ini",
        "alembic/env.py",
        "alembic/versions/1a2b3c4d5e6f_create_users.py",
    ] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("alembic/versions/2b3c4d5e6f7a_broken.py"),
        "from alembic import op\nrevision = '2b3c4d5e6f7a'\ndown_revision = '1a2b3c4d5e6f'\n\ndef upgrade():\n    op.execute('ALTER TABLE users ADD COLUMN x nosuchtype')\n\ndef downgrade():\n    pass\n",
    )
    .unwrap();
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let f = &json["findings"][0];
    assert_eq!(f["kind"], "apply_failed");
    assert!(
        f["message"].as_str().unwrap().contains("nosuchtype"),
        "{f:#}"
    );
}

#[test]
fn branched_history_exits_2_naming_the_heads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("alembic/versions")).unwrap();
    std::fs::write(
        dir.path().join("alembic.ini"),
        "[alembic]\nscript_location = alembic\n",
    )
    .unwrap();
    for (rev, down) in [("aaa", "None"), ("bbb", "'aaa'"), ("ccc", "'aaa'")] {
        std::fs::write(
            dir.path().join(format!("alembic/versions/{rev}_x.py")),
            format!("revision = '{rev}'\ndown_revision = {down}\n"),
        )
        .unwrap();
    }
    let out = check_dir(dir.path());
    assert_eq!(out.status.code(), code::USAGE);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 heads") && err.contains("bbb") && err.contains("ccc"),
        "{err}"
    );
}

#[test]
fn fuzz_kills_the_alembic_process_without_false_alarm_and_finds_the_bug() {
    alembic_installed();
    let regressions = tempfile::tempdir().unwrap();
    let fixed = root().join("examples/alembic/notifications_fixed");
    let (out, json) = fuzz_json(
        &fixed,
        regressions.path(),
        &["--cases", "6", "--max-steps", "10"],
    );
    assert_eq!(
        out.status.code(),
        code::OK,
        "killed migrators of a correct project: {json:#}"
    );
    let bug = root().join("examples/alembic/notifications_bug");
    let (out, json) = fuzz_json(
        &bug,
        regressions.path(),
        &["--cases", "6", "--max-steps", "10"],
    );
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [(
            "schema_mismatch".to_string(),
            "2b3c4d5e6f7a_add_notification_enabled".to_string()
        )]
    );
}

/// The lock trace follows the statements migproof sends; Alembic sends its own. `locks` and
/// `check --locks` refuse with exit 2 rather than pass having traced nothing.
#[test]
fn locks_on_an_alembic_project_refuse_rather_than_pass() {
    let dir = root().join("examples/alembic/notifications_bug");
    for args in [vec!["locks"], vec!["check", "--locks", "error"]] {
        let out = migproof()
            .args(&args)
            .arg("--migrations")
            .arg(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), code::USAGE, "{args:?}: {stderr}");
        assert!(
            stderr.contains("external migrator") && stderr.contains("alembic"),
            "{args:?}: {stderr}"
        );
    }
}

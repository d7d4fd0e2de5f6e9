//! The local backend on a chosen PostgreSQL major: `--pg-version` and `[server] version` pick
//! the installed server of that major (`.ci/run` installs 18 with scripts/install-postgres.sh,
//! so the suite runs on the machine's 15 and on 18), and a major that is not installed is exit 3
//! naming the command that installs it.

mod common;

use common::{migproof, root};

fn shop_json(extra: &[&str], dir: &std::path::Path) -> (std::process::Output, serde_json::Value) {
    let out = migproof()
        .args(["check", "--backend", "local", "--format", "json", "-m"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out, json)
}

#[test]
fn pg_version_18_runs_a_local_cluster_of_that_major() {
    let dir = root().join("examples/shop/migrations");
    let (out, json) = shop_json(&["--pg-version", "18"], &dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "is PostgreSQL 18 installed? `scripts/install-postgres.sh 18` (.ci/run runs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        json["server"].as_str().unwrap().starts_with("18."),
        "{json}"
    );
    assert_eq!(json["summary"]["migrations_checked"], 12);
}

#[test]
fn server_version_in_migproof_toml_picks_the_major_and_the_flag_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("migrations");
    std::fs::create_dir(&dir).unwrap();
    for name in [
        "0001_create_customers.up.sql",
        "0001_create_customers.down.sql",
    ] {
        std::fs::copy(
            root().join("examples/shop/migrations").join(name),
            dir.join(name),
        )
        .unwrap();
    }
    std::fs::write(dir.join("migproof.toml"), "[server]\nversion = 18\n").unwrap();
    let (out, json) = shop_json(&[], &dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        json["server"].as_str().unwrap().starts_with("18."),
        "{json}"
    );
    let (out, json) = shop_json(&["--pg-version", "15"], &dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        json["server"].as_str().unwrap().starts_with("15."),
        "{json}"
    );
}

#[test]
fn a_major_that_is_not_installed_is_exit_3_naming_the_install_command() {
    let empty = tempfile::tempdir().unwrap();
    let out = migproof()
        .env("MIGPROOF_PG_CACHE", empty.path())
        .args(["check", "--backend", "local", "--pg-version", "13", "-m"])
        .arg(root().join("examples/shop/migrations"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PostgreSQL 13 is not installed")
            && err.contains("scripts/install-postgres.sh 13"),
        "{err}"
    );
}

/// SQL that only a newer major accepts fails on an older server with a hint naming the major
/// and how to check on it; on that major it applies; `--pg-version 15,18` checks on both.
#[test]
fn a_syntax_error_a_newer_major_accepts_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = [
        (
            "0001_create_lines.up.sql",
            "CREATE TABLE lines (id int PRIMARY KEY, price numeric NOT NULL, qty int NOT NULL);\n",
        ),
        ("0001_create_lines.down.sql", "DROP TABLE lines;\n"),
        (
            "0002_add_total.up.sql",
            "-- computed when read, stored nowhere\n\
             ALTER TABLE lines\n    ADD COLUMN total numeric GENERATED ALWAYS AS (price * qty) VIRTUAL;\n",
        ),
        (
            "0002_add_total.down.sql",
            "ALTER TABLE lines DROP COLUMN total;\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let (out, json) = shop_json(&["--pg-version", "15"], dir);
    assert_eq!(out.status.code(), Some(1), "{json:#}");
    let finding = &json["findings"][0];
    assert_eq!(finding["kind"], "apply_failed", "{json:#}");
    assert_eq!(finding["place"]["line"], 3, "{json:#}");
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.contains("virtual generated columns, which PostgreSQL 18 accepts")
            && message.contains("--pg-version 18"),
        "{message}"
    );
    let (out, json) = shop_json(&["--pg-version", "18"], dir);
    assert_eq!(out.status.code(), Some(0), "{json:#}");

    // On both, one after the other: the finding says which major it was found on.
    let (out, json) = shop_json(&["--pg-version", "15,18"], dir);
    assert_eq!(out.status.code(), Some(1), "{json:#}");
    let server = json["server"].as_str().unwrap();
    assert!(
        server.starts_with("15.") && server.contains(", 18."),
        "{json:#}"
    );
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json:#}");
    // 0002 applies on 18 only: checked there, so checked
    assert_eq!(json["summary"]["migrations_checked"], 2, "{json:#}");
    assert!(json.get("skipped").is_none(), "{json:#}");
    let step = findings[0]["step"].as_str().unwrap();
    assert!(
        step.starts_with("up on an empty database · PostgreSQL 15."),
        "{step}"
    );
    // Only check runs on several majors.
    let out = migproof()
        .args([
            "snapshot",
            "--backend",
            "local",
            "--pg-version",
            "15,18",
            "-m",
        ])
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("only `check` runs on several majors"),
        "{stderr}"
    );
}

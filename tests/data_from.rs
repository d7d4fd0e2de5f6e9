//! `check --data-from`: the pending migrations run over real rows (a database only read, or a
//! pg_dump file restored into a scratch database), besides seeded ones.

mod common;
use common::code;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn example() -> PathBuf {
    root().join("examples/data_from")
}

/// The only finding the example's staging rows must produce.
fn assert_found_with_your_data(json: &serde_json::Value) {
    assert_eq!(
        findings(json),
        [("data_dependent".to_owned(), "0002_unique_email".to_owned())],
        "{json:#}"
    );
    let f = &json["findings"][0];
    assert_eq!(f["step"], "up with data · with your data", "{json:#}");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("5 rows of public.users violate it"),
        "{message}"
    );
    let yours = json["summary"]["your_data"].as_str().unwrap();
    assert!(yours.contains("200 rows of 1 table"), "{yours}");
    assert!(yours.contains("at 0001_create_users"), "{yours}");
    assert!(yours.contains("1 of the 1 pending migrations"), "{yours}");
}

#[test]
fn real_rows_of_a_dump_make_a_migration_fail_that_seeded_rows_do_not() {
    let migrations = example().join("migrations");
    let (out, json) = check_json(&migrations, &[]);
    assert_eq!(out.status.code(), code::OK, "seeded rows pass: {json:#}");
    let dump = example().join("staging.sql");
    let (out, json) = check_json(&migrations, &["--data-from", dump.to_str().unwrap()]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_found_with_your_data(&json);
}

/// A database on the shared server standing for a staging copy: the example's dump restored.
fn staging(tag: &str) -> Planted {
    Planted::plant(&format!("staging_{tag}"), &example().join("staging.sql"))
}

#[test]
fn a_staging_database_is_only_read_and_its_password_never_printed() {
    let staging = staging("url");
    let before = staging.dump();
    let url = with_password(&staging.url());
    assert!(url.contains("hunter2secret"), "{url}");
    let (out, json) = check_json(&example().join("migrations"), &["--data-from", &url]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_found_with_your_data(&json);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains("hunter2secret"), "{printed}");
    assert_eq!(staging.dump(), before, "the source changed");
}

#[test]
fn a_custom_format_dump_is_restored_too() {
    let staging = staging("custom");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("staging.dump");
    succeeded(
        Command::new("pg_dump")
            .args(["--format", "custom", "--file"])
            .arg(&file)
            .arg(staging.url()),
    );
    let (out, json) = check_json(
        &example().join("migrations"),
        &["--data-from", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_found_with_your_data(&json);
}

fn check_with(from: &str) -> (Option<i32>, String) {
    let out = migproof()
        .args(["check", "--backend", "url", "--database-url"])
        .arg(server_url())
        .arg("--data-from")
        .arg(from)
        .arg(example().join("migrations"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code(), err)
}

#[test]
fn a_missing_file_is_a_usage_error_naming_the_flag() {
    let (code, err) = check_with("no/such/staging.dump");
    assert_eq!(code, code::USAGE, "{err}");
    assert!(err.contains("--data-from"), "{err}");
    assert!(err.contains("no/such/staging.dump"), "{err}");
}

#[test]
fn a_source_without_a_migration_history_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not_a_dump.sql");
    std::fs::write(&file, "CREATE TABLE unrelated (id int);\n").unwrap();
    let (code, err) = check_with(file.to_str().unwrap());
    assert_eq!(code, code::USAGE, "{err}");
    assert!(err.contains("no migration history"), "{err}");
    assert!(err.contains("_sqlx_migrations"), "{err}");
}

#[test]
fn an_unreachable_source_is_an_environment_failure_without_its_password() {
    let url = "postgres://postgres:hunter2secret@127.0.0.1:1/staging";
    let (code, err) = check_with(url);
    assert_eq!(code, code::ENVIRONMENT, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2secret"), "{err}");
}

#[test]
fn a_source_that_ran_every_migration_has_nothing_pending() {
    let staging = staging("done");
    sql(
        &staging.db,
        "INSERT INTO _sqlx_migrations VALUES (2, 'unique email', now(), true, '\\x00', 3)",
    );
    let (out, json) = check_json(
        &example().join("migrations"),
        &["--data-from", &staging.url()],
    );
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    let yours = json["summary"]["your_data"].as_str().unwrap();
    assert!(yours.contains("is at 0002_unique_email"), "{yours}");
    assert!(yours.contains("nothing was checked"), "{yours}");
}

//! One project in every layout: the same correct migrations pass and the same planted bug is
//! found, whatever tool's layout they are written in, and the layout is detected from the folder
//! alone. Each `examples/layouts/<layout>/<good|bug>/` holds `migrations/` and an `expect.json`
//! giving the layout migproof must report, the `--source` flag the folder needs (only
//! golang-migrate, whose names are sqlx's), the exit code, and the finding of a bug.
//! Folders that mix layouts or match none are refused with exit 2 and a message saying what
//! was found (`tests/fixtures/detect/`).

mod common;
use common::code;

use std::collections::BTreeSet;

use common::*;

/// What an `examples/layouts` folder promises.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    format: String,
    source_flag: Option<String>,
    exit: i32,
    kind: Option<String>,
    migration: Option<String>,
}

fn layout(folder: &str) {
    let dir = root().join("examples/layouts").join(folder);
    let text = std::fs::read_to_string(dir.join("expect.json")).unwrap();
    let expect: Expect = serde_json::from_str(&text).unwrap();
    let mut args = Vec::new();
    if let Some(source) = &expect.source_flag {
        args.extend(["--source", source.as_str()]);
    }
    let (out, json) = check_json(&dir.join("migrations"), &args);
    assert_eq!(out.status.code(), Some(expect.exit), "{folder}: {json:#}");
    assert_eq!(
        json["source"]["format"],
        expect.format.as_str(),
        "{folder}: detected layout"
    );
    let got: BTreeSet<(String, String)> = findings(&json).into_iter().collect();
    let want: BTreeSet<(String, String)> = match (expect.kind, expect.migration) {
        (Some(kind), Some(migration)) => [(kind, migration)].into(),
        (None, None) => BTreeSet::new(),
        _ => panic!("{folder}/expect.json: give both `kind` and `migration`, or neither"),
    };
    assert_eq!(got, want, "{folder}: {json:#}");
}

macro_rules! layouts {
    ($($name:ident => $folder:literal),* $(,)?) => {
        $( #[test] fn $name() { layout($folder); } )*
        const FOLDERS: &[&str] = &[$($folder),*];
    };
}

layouts!(
    atlas_bug => "atlas/bug",
    atlas_good => "atlas/good",
    dbmate_bug => "dbmate/bug",
    dbmate_good => "dbmate/good",
    diesel_bug => "diesel/bug",
    diesel_good => "diesel/good",
    drizzle_bug => "drizzle/bug",
    drizzle_good => "drizzle/good",
    files_bug => "files/bug",
    files_good => "files/good",
    flyway_bug => "flyway/bug",
    flyway_good => "flyway/good",
    goose_bug => "goose/bug",
    goose_good => "goose/good",
    golang_migrate_bug => "golang-migrate/bug",
    golang_migrate_good => "golang-migrate/good",
    liquibase_bug => "liquibase/bug",
    liquibase_good => "liquibase/good",
    liquibase_xml_bug => "liquibase-xml/bug",
    liquibase_xml_good => "liquibase-xml/good",
    liquibase_yaml_bug => "liquibase-yaml/bug",
    liquibase_yaml_good => "liquibase-yaml/good",
    prisma_bug => "prisma/bug",
    prisma_good => "prisma/good",
    refinery_bug => "refinery/bug",
    refinery_good => "refinery/good",
    sqitch_bug => "sqitch/bug",
    sqitch_good => "sqitch/good",
    sql_migrate_bug => "sql-migrate/bug",
    sql_migrate_good => "sql-migrate/good",
    sqlx_bug => "sqlx/bug",
    sqlx_good => "sqlx/good",
    tern_bug => "tern/bug",
    tern_good => "tern/good",
);

#[test]
fn every_layout_folder_has_a_test() {
    let mut on_disk = Vec::new();
    for layout in std::fs::read_dir(root().join("examples/layouts")).unwrap() {
        let layout = layout.unwrap().path();
        if !layout.is_dir() {
            continue;
        }
        for variant in std::fs::read_dir(&layout).unwrap() {
            let variant = variant.unwrap().path();
            if variant.is_dir() {
                let name = variant
                    .strip_prefix(root().join("examples/layouts"))
                    .unwrap();
                on_disk.push(name.to_string_lossy().into_owned());
            }
        }
    }
    on_disk.sort();
    let mut listed: Vec<&str> = FOLDERS.to_vec();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "add the new folder to layouts! in tests/layouts.rs"
    );
}

/// Runs `check` on a detection fixture; returns the exit code and stderr.
fn detect_fixture(name: &str) -> (Option<i32>, String) {
    let out = migproof()
        .args(["check", "--backend", "url", "--database-url"])
        .arg(server_url())
        .arg("--migrations")
        .arg(root().join("tests/fixtures/detect").join(name))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sqlx_files_beside_a_diesel_folder_exit_2_naming_both_layouts() {
    let (code, err) = detect_fixture("sqlx_files_and_diesel_folder");
    assert_eq!(code, code::USAGE, "{err}");
    assert!(err.contains("mixes layouts (sqlx and diesel)"), "{err}");
    assert!(
        err.contains("0001_create_customers.up.sql"),
        "names a sqlx file: {err}"
    );
    assert!(
        err.contains("2024-03-04-141500_create_orders"),
        "names the diesel folder: {err}"
    );
}

#[test]
fn folder_matching_no_layout_exits_2_saying_what_it_found() {
    let (code, err) = detect_fixture("no_known_layout");
    assert_eq!(code, code::USAGE, "{err}");
    assert!(
        err.contains("holds no migrations in a layout migproof knows"),
        "{err}"
    );
    assert!(
        err.contains("20240301093000_create_customers.rb"),
        "names what it found: {err}"
    );
}

/// diesel sends a whole `up.sql` in one query string: a failure the server gives no position
/// for (here a duplicate key) is still placed at its statement, with its SQLSTATE.
#[test]
fn a_diesel_up_failing_at_its_fifth_line_is_reported_there_with_its_sqlstate() {
    let dir = folder(&[
        ("2024-01-01-000000_create_a/up.sql", "CREATE TABLE a (id int PRIMARY KEY);\n"),
        ("2024-01-01-000000_create_a/down.sql", "DROP TABLE a;\n"),
        (
            "2024-01-02-000000_fill/up.sql",
            "-- seed the table\nINSERT INTO a VALUES (1);\nINSERT INTO a VALUES (2);\n\nINSERT INTO a VALUES (1);\n",
        ),
        ("2024-01-02-000000_fill/down.sql", "DELETE FROM a;\n"),
    ]);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let place = &json["findings"][0]["place"];
    assert_eq!(place["line"], 5, "{json:#}");
    assert_eq!(place["sqlstate"], "23505", "{json:#}");
    assert!(
        place["file"]
            .as_str()
            .unwrap()
            .ends_with("2024-01-02-000000_fill/up.sql"),
        "{json:#}"
    );
    let human = migproof()
        .args(["check", "--backend", "url", "--database-url"])
        .arg(server_url())
        .arg("--migrations")
        .arg(dir.path())
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("2024-01-02-000000_fill/up.sql:5: ERROR 23505: duplicate key"),
        "{human}"
    );
}

/// The run applied every migration as its layout runs it: its one finding is the retry of
/// migration `id`'s concurrent index build, cancelled by `check` (a plain `CREATE INDEX
/// CONCURRENTLY` cannot be retried over the INVALID index a cancel leaves).
fn only_the_cancelled_build_fails(out: &std::process::Output, json: &serde_json::Value, id: &str) {
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(json),
        [("retry_failed".to_string(), id.to_string())],
        "{json:#}"
    );
    let step = json["findings"][0]["step"].as_str().unwrap();
    assert!(
        step.starts_with("cancelled during statement 1's concurrent index build"),
        "{step}"
    );
}

/// golang-migrate's file names are sqlx's. `source` in migproof.toml names the layout for the
/// folder, as `--source` does for one run; unnamed, a file sqlx would run in a transaction
/// although it holds `CREATE INDEX CONCURRENTLY` tells golang-migrate from sqlx. (Read either
/// way, the index build applies; its retry after a cancel is the one finding.)
#[test]
fn migproof_toml_names_the_layout_detection_cannot_tell() {
    let files = |toml: Option<&'static str>| {
        let mut files = vec![
            (
                "000001_create_events.up.sql",
                "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz NOT NULL);\n",
            ),
            ("000001_create_events.down.sql", "DROP TABLE events;\n"),
            (
                "000002_index_events_at.up.sql",
                "CREATE INDEX CONCURRENTLY events_at ON events (at);\n",
            ),
            (
                "000002_index_events_at.down.sql",
                "DROP INDEX CONCURRENTLY events_at;\n",
            ),
        ];
        if let Some(toml) = toml {
            files.push(("migproof.toml", toml));
        }
        folder(&files)
    };
    let named = files(Some(
        "# golang-migrate, whose file names are sqlx's\nsource = \"golang-migrate\"\n",
    ));
    let (out, json) = check_json(named.path(), &[]);
    only_the_cancelled_build_fails(&out, &json, "000002_index_events_at");
    assert_eq!(json["source"]["format"], "golang-migrate");

    // Unnamed, detection tells them apart: sqlx would run the index build in a transaction,
    // so a folder holding one without `-- no-transaction` is golang-migrate's, with a note.
    let unnamed = files(None);
    let (out, json) = check_json(unnamed.path(), &[]);
    only_the_cancelled_build_fails(&out, &json, "000002_index_events_at");
    assert_eq!(json["source"]["format"], "golang-migrate");
    let note = json["notes"][0]["message"].as_str().unwrap();
    assert!(
        note.starts_with("read as golang-migrate, not sqlx")
            && note.contains("000002_index_events_at.down.sql:1")
            && note.contains("--source sqlx"),
        "{note}"
    );
    // Forced to sqlx, the index build fails in its transaction.
    let (out, json) = check_json(unnamed.path(), &["--source", "sqlx"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(json["source"]["format"], "sqlx");
    // A sqlx project that marks the file `-- no-transaction` stays sqlx.
    let sqlx = folder(&[
        (
            "0001_create_events.up.sql",
            "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz NOT NULL);\n",
        ),
        ("0001_create_events.down.sql", "DROP TABLE events;\n"),
        (
            "0002_index_events_at.up.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY events_at ON events (at);\n",
        ),
        (
            "0002_index_events_at.down.sql",
            "-- no-transaction\nDROP INDEX CONCURRENTLY events_at;\n",
        ),
    ]);
    let (out, json) = check_json(sqlx.path(), &[]);
    only_the_cancelled_build_fails(&out, &json, "0002_index_events_at");
    assert_eq!(json["source"]["format"], "sqlx");

    let wrong = files(Some("\nsource = \"golang_migrate\"\n"));
    let out = check_dir(wrong.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code::USAGE, "{stderr}");
    assert!(
        stderr.contains("migproof.toml")
            && stderr.contains("line 2")
            && stderr.contains("golang-migrate"),
        "{stderr}"
    );
}

/// Copies the tree at `from` into a new temporary folder.
fn copy_of(from: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut stack = vec![from.to_owned()];
    while let Some(here) = stack.pop() {
        for entry in std::fs::read_dir(&here).unwrap() {
            let path = entry.unwrap().path();
            let to = dir.path().join(path.strip_prefix(from).unwrap());
            if path.is_dir() {
                std::fs::create_dir_all(&to).unwrap();
                stack.push(path);
            } else {
                std::fs::copy(&path, &to).unwrap();
            }
        }
    }
    dir
}

/// Sqitch's own verify scripts run after each deploy and each revert: a deploy that does not
/// do what its verify expects is `verify_failed` at the verify's file and line, and the
/// revert that comes back to that change is not blamed for it again.
#[test]
fn a_sqitch_verify_that_fails_after_its_deploy_is_a_finding() {
    let project = copy_of(&root().join("examples/layouts/sqitch/good/migrations"));
    let verify = project.path().join("verify/create_orders.sql");
    let text = std::fs::read_to_string(&verify).unwrap();
    let broken = text.replacen("SELECT id", "SELECT id, status", 1);
    assert_ne!(broken, text, "the verify script selects id: {text}");
    std::fs::write(&verify, broken).unwrap();
    let (out, json) = check_json(project.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("verify_failed".to_string(), "create_orders".to_string())]
    );
    let finding = &json["findings"][0];
    assert_eq!(finding["step"], "up with data", "{json:#}");
    assert_eq!(finding["place"]["sqlstate"], "42703", "{json:#}");
    assert!(
        finding["place"]["file"]
            .as_str()
            .unwrap()
            .ends_with("verify/create_orders.sql"),
        "{json:#}"
    );
}

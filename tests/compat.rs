//! The previous release keeps working (`check --compat`): after each up, what the previous
//! version's schema supported and the project's own queries (`[compat] queries`) run again,
//! and one that worked before the up and fails after it is `breaks_previous_release`.

mod common;
use common::code;

use common::*;

const USERS: &str = "CREATE TABLE users (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE
);
CREATE FUNCTION display_name(user_id bigint) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT name FROM users WHERE id = user_id $$;
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    status text NOT NULL DEFAULT 'new'
);";

/// A project whose history breaks the previous release three ways, each seen by another probe:
/// a NOT NULL column whose default is dropped after the backfill (the schema's own insert),
/// a function renamed (only a query calls it: sqlx's offline file), a column renamed (the
/// schema's read, and the project's `.sql` query).
fn project(toml: &str) -> tempfile::TempDir {
    folder(&[
        ("migrations/0001_users.up.sql", USERS),
        (
            "migrations/0001_users.down.sql",
            "DROP TABLE orders; DROP FUNCTION display_name(bigint); DROP TABLE users;",
        ),
        (
            "migrations/0002_plan.up.sql",
            "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';\n\
             ALTER TABLE users ALTER COLUMN plan DROP DEFAULT;",
        ),
        (
            "migrations/0002_plan.down.sql",
            "ALTER TABLE users DROP COLUMN plan;",
        ),
        (
            "migrations/0003_rename_function.up.sql",
            "ALTER FUNCTION display_name(bigint) RENAME TO user_display_name;",
        ),
        (
            "migrations/0003_rename_function.down.sql",
            "ALTER FUNCTION user_display_name(bigint) RENAME TO display_name;",
        ),
        (
            "migrations/0004_rename_status.up.sql",
            "ALTER TABLE orders RENAME COLUMN status TO state;",
        ),
        (
            "migrations/0004_rename_status.down.sql",
            "ALTER TABLE orders RENAME COLUMN state TO status;",
        ),
        ("migrations/migproof.toml", toml),
        (
            "migrations/queries/orders.sql",
            "-- the previous release's order queries\n\
             SELECT id, user_id FROM orders WHERE id = $1;\n\
             UPDATE orders SET status = $1 WHERE id = $2;\n",
        ),
        (
            ".sqlx/query-5f1c.json",
            r#"{"db_name": "PostgreSQL", "query": "SELECT display_name($1) AS name",
               "describe": {"columns": [], "parameters": {"Left": ["Int8"]}, "nullable": [null]},
               "hash": "5f1c"}"#,
        ),
    ])
}

const QUERIES: &str = "[compat]\nqueries = [\"queries/*.sql\", \"../.sqlx/query-*.json\"]\n";

/// The `breaks_previous_release` findings, by migration, with their messages.
fn breaks(json: &serde_json::Value) -> Vec<(String, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "breaks_previous_release")
        .map(|f| {
            (
                f["migration"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn each_way_of_breaking_the_previous_release_is_found_by_its_probe() {
    let dir = project(QUERIES);
    let (out, json) = check_json(&dir.path().join("migrations"), &["--compat", "error"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [
            ("breaks_previous_release".into(), "0002_plan".into()),
            (
                "breaks_previous_release".into(),
                "0003_rename_function".into()
            ),
            (
                "breaks_previous_release".into(),
                "0004_rename_status".into()
            ),
        ],
        "{json:#}"
    );
    let found = breaks(&json);
    // 0002: the previous release's insert gives no `plan`.
    assert!(
        found[0].1.contains("insert into public.users"),
        "{}",
        found[0].1
    );
    assert!(found[0].1.contains("(23502)"), "{}", found[0].1);
    assert!(
        !found[0].1.contains("read of"),
        "reads still work: {}",
        found[0].1
    );
    assert_eq!(json["findings"][0]["place"]["sqlstate"], "23502");
    assert_eq!(json["findings"][0]["place"]["table"], "public.users");
    // 0003: only the project's query calls the function.
    assert!(found[1].1.contains("query-5f1c.json:1"), "{}", found[1].1);
    assert!(found[1].1.contains("(42883)"), "{}", found[1].1);
    assert!(!found[1].1.contains("public.users"), "{}", found[1].1);
    // 0004: the schema's read and update, and the second statement of orders.sql (line 3);
    // the first (line 2) reads no renamed column and still works.
    assert!(
        found[2].1.contains("read of public.orders"),
        "{}",
        found[2].1
    );
    assert!(found[2].1.contains("orders.sql:3"), "{}", found[2].1);
    assert!(!found[2].1.contains("orders.sql:2"), "{}", found[2].1);
    assert_eq!(json["summary"]["migrations_checked"], 4);
}

#[test]
fn breaking_the_previous_release_is_a_note_by_default_and_off_skips_it() {
    let dir = project(QUERIES);
    let migrations = dir.path().join("migrations");
    let (out, json) = check_json(&migrations, &[]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    let notes: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "breaks_previous_release")
        .map(|n| n["migration"].as_str().unwrap())
        .collect();
    assert_eq!(
        notes,
        ["0002_plan", "0003_rename_function", "0004_rename_status"]
    );
    let message = json["notes"][0]["message"].as_str().unwrap();
    assert!(message.contains("contract step"), "{message}");

    let (out, json) = check_json(&migrations, &["--compat", "off"]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert!(json["notes"].as_array().unwrap().is_empty(), "{json:#}");
}

#[test]
fn migproof_toml_can_make_it_an_error() {
    let dir = project(&format!("{QUERIES}[check]\ncompat = \"error\"\n"));
    let (out, json) = check_json(&dir.path().join("migrations"), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(breaks(&json).len(), 3, "{json:#}");
    // A flag wins over the file.
    let (out, json) = check_json(&dir.path().join("migrations"), &["--compat", "note"]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
}

/// An expand step (a nullable column added beside the old one) and a new table break nothing,
/// and a value-dependent refusal (a new CHECK, a new unique key) is not blamed on the schema's
/// shape: the probes write made-up values the previous release may never write.
#[test]
fn expand_steps_and_value_dependent_refusals_are_not_breaks() {
    let dir = folder(&[
        ("0001_users.up.sql", USERS),
        (
            "0001_users.down.sql",
            "DROP TABLE orders; DROP FUNCTION display_name(bigint); DROP TABLE users;",
        ),
        (
            "0002_expand.up.sql",
            "ALTER TABLE users ADD COLUMN full_name text;\n\
             UPDATE users SET full_name = name;\n\
             CREATE TABLE audit (id bigserial PRIMARY KEY, note text);\n\
             ALTER TABLE orders ADD CONSTRAINT status_short CHECK (length(status) < 40) NOT VALID;",
        ),
        (
            "0002_expand.down.sql",
            "ALTER TABLE orders DROP CONSTRAINT status_short;\n\
             DROP TABLE audit;\n\
             ALTER TABLE users DROP COLUMN full_name;",
        ),
    ]);
    let (out, json) = check_json(dir.path(), &["--compat", "error"]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
}

/// What `check` says when it refuses the project `dir` before reaching a server (exit 2).
fn refused(dir: &tempfile::TempDir) -> String {
    let out = check_dir(&dir.path().join("migrations"));
    assert_eq!(out.status.code(), code::USAGE);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_queries_pattern_matching_nothing_is_refused_with_its_line() {
    let dir = project("# queries of the previous release\n[compat]\nqueries = [\"sql/*.sql\"]\n");
    let err = refused(&dir);
    assert!(err.contains("migproof.toml"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("`sql/*.sql`"), "{err}");
}

#[test]
fn a_wildcard_in_a_folder_is_refused() {
    let dir = project("[compat]\nqueries = [\"*/orders.sql\"]\n");
    let err = refused(&dir);
    assert!(err.contains("file name only"), "{err}");
}

#[test]
fn a_broken_sqlx_offline_file_is_refused_by_name() {
    let dir = project(QUERIES);
    std::fs::write(dir.path().join(".sqlx/query-5f1c.json"), "{\"query\": 3}").unwrap();
    let err = refused(&dir);
    assert!(err.contains("query-5f1c.json"), "{err}");
    assert!(err.contains("no \"query\" text"), "{err}");

    std::fs::write(dir.path().join(".sqlx/query-5f1c.json"), "{\n  \"query\": ").unwrap();
    let err = refused(&dir);
    assert!(err.contains("query-5f1c.json"), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn an_unknown_compat_mode_is_a_usage_error() {
    let dir = project(QUERIES);
    let out = migproof()
        .args(["check", "--compat", "strict", "--migrations"])
        .arg(dir.path().join("migrations"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::USAGE);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--compat"), "{err}");
}

/// A type the previous release's values do not convert to: its insert sends text (as its
/// typed parameters would), which a `jsonb` column does not take without a cast.
#[test]
fn a_type_old_values_do_not_convert_to_breaks_the_previous_release() {
    let dir = folder(&[
        (
            "0001_notes.up.sql",
            "CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL);",
        ),
        ("0001_notes.down.sql", "DROP TABLE notes;"),
        (
            "0002_body_jsonb.up.sql",
            "ALTER TABLE notes ALTER COLUMN body TYPE jsonb USING to_jsonb(body);",
        ),
        (
            "0002_body_jsonb.down.sql",
            "ALTER TABLE notes ALTER COLUMN body TYPE text USING body #>> '{}';",
        ),
    ]);
    let (out, json) = check_json(dir.path(), &["--compat", "error"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let found = breaks(&json);
    assert_eq!(found.len(), 1, "{json:#}");
    assert_eq!(found[0].0, "0002_body_jsonb");
    assert!(
        found[0].1.contains("insert into public.notes"),
        "{}",
        found[0].1
    );
    assert!(found[0].1.contains("(42804)"), "{}", found[0].1);
}

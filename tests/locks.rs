//! The lock analysis against a real PostgreSQL: every hazard rule fires on its example under
//! `examples/locks/<rule>` and stays quiet on its safe twin `examples/locks/<rule>_safe`; the
//! trace names tables, lock modes and rewrites; the probe's measured wait grows with `--rows`;
//! an ALTER queues behind the report query and the application behind it
//! (`examples/locks/alter_queues_behind_report_query`), drawn by `--format html`;
//! `check --locks` reports hazards as findings or notes.

mod common;
use common::code;

use common::*;
use serde_json::Value;

/// Runs `migproof locks` on `examples/locks/<name>/migrations` with the url backend and JSON.
fn locks_json(name: &str, extra: &[&str]) -> (std::process::Output, Value) {
    locks_json_at(
        &root().join("examples/locks").join(name).join("migrations"),
        extra,
    )
}

/// Runs `migproof locks` on `dir` with the url backend.
fn locks_at(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    migproof()
        .args(["locks", "--backend", "url", "--database-url"])
        .arg(server_url())
        .arg("--migrations")
        .arg(dir)
        .args(extra)
        .output()
        .expect("runs")
}

/// Runs `migproof locks` on `dir` with the url backend and JSON.
fn locks_json_at(dir: &std::path::Path, extra: &[&str]) -> (std::process::Output, Value) {
    let out = locks_at(dir, &[&["--format", "json"], extra].concat());
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

/// (rule, migration, table, lock_mode) of every lock hazard finding.
fn hazards(json: &Value) -> Vec<(String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["kind"], "lock_hazard", "{f:#}");
            assert!(f["duration_ms"].is_u64(), "{f:#}");
            assert!(f["hint"].as_str().unwrap().len() > 40, "{f:#}");
            (
                s(&f["rule"]),
                s(&f["migration"]),
                s(&f["table"]),
                s(&f["lock_mode"]),
            )
        })
        .collect()
}

fn hazard(
    rule: &str,
    migration: &str,
    table: &str,
    mode: &str,
) -> (String, String, String, String) {
    (rule.into(), migration.into(), table.into(), mode.into())
}

/// The traced statement of `migration` whose SQL contains `sql`.
fn statement<'a>(json: &'a Value, migration: &str, sql: &str) -> &'a Value {
    let m = json["locks"]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["migration"] == migration)
        .unwrap_or_else(|| panic!("{migration} not traced: {json:#}"));
    m["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sql"].as_str().unwrap().contains(sql))
        .unwrap_or_else(|| panic!("no statement with `{sql}` in {m:#}"))
}

/// (relation, mode) of the locks a traced statement took.
fn locks_of(s: &Value) -> Vec<(String, String)> {
    s["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["relation"].as_str().unwrap().into(),
                l["mode"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// A safe twin: exit 0, no finding, no note.
fn quiet(name: &str, extra: &[&str]) -> Value {
    let (out, json) = locks_json(name, extra);
    assert_eq!(out.status.code(), code::OK, "{name}: {json:#}");
    assert_eq!(json["findings"], serde_json::json!([]), "{name}");
    assert_eq!(json["notes"], serde_json::json!([]), "{name}");
    json
}

#[test]
fn plain_create_index_on_20000_rows_is_a_hazard_naming_the_table_and_share_lock() {
    let (out, json) = locks_json("index_not_concurrent", &["--rows", "20000"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let migration = "0002_index_orders_by_customer_email";
    assert_eq!(
        hazards(&json),
        [hazard(
            "index_not_concurrent",
            migration,
            "public.orders",
            "ShareLock"
        )]
    );
    let s = statement(&json, migration, "CREATE INDEX orders_customer_email_idx");
    assert!(
        locks_of(s).contains(&("public.orders".into(), "ShareLock".into())),
        "{s:#}"
    );
    assert_eq!(s["index_builds"][0]["concurrent"], false);
    assert_eq!(
        json["locks"]["migrations"][1]["filled"],
        serde_json::json!(["public.orders"])
    );
}

#[test]
fn create_index_concurrently_is_not_a_hazard_and_its_lock_is_sampled_while_it_runs() {
    let json = quiet("index_not_concurrent_safe", &["--rows", "20000"]);
    let s = statement(&json, "0002_index_orders_by_customer_email", "CONCURRENTLY");
    assert_eq!(s["in_transaction"], false);
    assert_eq!(s["index_builds"][0]["concurrent"], true);
    assert!(
        locks_of(s).contains(&("public.orders".into(), "ShareUpdateExclusiveLock".into())),
        "{s:#}"
    );
}

#[test]
fn text_to_varchar_32_rewrite_is_a_hazard_naming_the_table_and_the_rewrite() {
    let (out, json) = locks_json("rewrite", &["--rows", "20000"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let migration = "0002_cap_email_length";
    assert_eq!(
        hazards(&json),
        [hazard(
            "rewrite",
            migration,
            "public.accounts",
            "AccessExclusiveLock"
        )]
    );
    let message = json["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("rewrote public.accounts"), "{message}");
    let s = statement(&json, migration, "TYPE varchar(32)");
    assert_eq!(s["rewrite"], true);
    assert_eq!(s["rewrites"][0]["table"], "public.accounts");
}

#[test]
fn numeric_precision_widening_is_not_a_rewrite_and_validate_later_is_safe() {
    let json = quiet("rewrite_safe", &["--rows", "20000"]);
    let s = statement(&json, "0002_widen_balance", "numeric(12,2)");
    assert_eq!(s["rewrite"], false, "{s:#}");
    let s = statement(&json, "0004_validate_email_length", "VALIDATE CONSTRAINT");
    assert_eq!(
        locks_of(s),
        [("public.accounts".into(), "ShareUpdateExclusiveLock".into())]
    );
    assert_eq!(s["validations"][0]["how"], "validate");
}

#[test]
fn check_and_foreign_key_without_not_valid_are_hazards() {
    let (out, json) = locks_json("constraint_not_valid", &["--rows", "2000"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        hazards(&json),
        [
            hazard(
                "constraint_not_valid",
                "0002_check_total_not_negative",
                "public.orders",
                "AccessExclusiveLock"
            ),
            hazard(
                "constraint_not_valid",
                "0003_orders_reference_customers",
                "public.orders",
                "ShareRowExclusiveLock"
            ),
        ]
    );
}

#[test]
fn not_valid_constraints_validated_later_are_not_hazards() {
    quiet("constraint_not_valid_safe", &["--rows", "2000"]);
}

#[test]
fn set_not_null_that_scans_is_a_hazard() {
    let (out, json) = locks_json("set_not_null", &["--rows", "2000"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        hazards(&json),
        [hazard(
            "set_not_null",
            "0002_require_customer_email",
            "public.customers",
            "AccessExclusiveLock"
        )]
    );
    let s = statement(&json, "0002_require_customer_email", "SET NOT NULL");
    assert_eq!(s["validations"][0]["scanned"], true);
}

#[test]
fn set_not_null_proven_by_a_valid_check_skips_the_scan() {
    let json = quiet("set_not_null_safe", &["--rows", "2000"]);
    let s = statement(&json, "0004_require_customer_email", "SET NOT NULL");
    assert_eq!(s["validations"][0]["kind"], "not_null");
    assert_eq!(s["validations"][0]["scanned"], false, "{s:#}");
}

#[test]
fn adding_a_nullable_column_is_not_a_hazard_but_no_lock_timeout_is_a_warning() {
    let (out, json) = locks_json("access_exclusive_without_lock_timeout", &["--rows", "1000"]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert_eq!(json["findings"], serde_json::json!([]));
    let notes = json["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{json:#}");
    assert_eq!(notes[0]["kind"], "lock_hazard");
    assert_eq!(notes[0]["migration"], "0002_add_customer_nickname");
    let message = notes[0]["message"].as_str().unwrap();
    assert!(
        message.contains("[access_exclusive_without_lock_timeout]"),
        "{message}"
    );
    assert!(
        message.contains("public.customers") && message.contains("lock_timeout"),
        "{message}"
    );
}

#[test]
fn access_exclusive_with_a_lock_timeout_is_quiet() {
    quiet(
        "access_exclusive_without_lock_timeout_safe",
        &["--rows", "1000"],
    );
}

#[test]
fn lock_held_past_the_threshold_is_a_hazard() {
    let args = ["--rows", "60000", "--lock-threshold", "100ms"];
    let (out, json) = locks_json("lock_held_too_long", &args);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let migration = "0002_add_and_backfill_display_name";
    assert_eq!(
        hazards(&json),
        [hazard(
            "lock_held_too_long",
            migration,
            "public.customers",
            "AccessExclusiveLock"
        )]
    );
    assert!(json["findings"][0]["duration_ms"].as_u64().unwrap() > 100);
}

#[test]
fn backfill_in_its_own_transaction_holds_no_blocking_lock_for_long() {
    quiet(
        "lock_held_too_long_safe",
        &["--rows", "60000", "--lock-threshold", "100ms"],
    );
}

/// The longest wait of the probe on `public.accounts` during the rewrite.
fn rewrite_wait(rows: &str) -> u64 {
    let (_, json) = locks_json("rewrite", &["--rows", rows]);
    let s = statement(&json, "0002_cap_email_length", "TYPE varchar(32)");
    let waits = &json["locks"]["migrations"][1]["waits"];
    let table = waits
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["table"] == "public.accounts")
        .unwrap_or_else(|| panic!("no wait on public.accounts: {waits:#}"));
    let longest = table["longest_wait_ms"].as_u64().unwrap();
    assert_eq!(
        s["longest_wait_ms"].as_u64().unwrap(),
        longest,
        "the rewrite caused the wait: {json:#}"
    );
    longest
}

#[test]
fn probe_wait_of_a_rewrite_is_reported_and_grows_with_rows() {
    let small = rewrite_wait("2000");
    let large = rewrite_wait("100000");
    assert!(large >= 80, "100000 rows: the probe waited only {large} ms");
    assert!(
        large > small + 50,
        "2000 rows: {small} ms, 100000 rows: {large} ms"
    );
}

#[test]
fn human_output_is_a_table_per_migration() {
    let dir = root().join("examples/locks/index_not_concurrent/migrations");
    let out = locks_at(&dir, &["--rows", "500"]);
    assert_eq!(out.status.code(), code::FINDINGS);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0002_index_orders_by_customer_email"),
        "{text}"
    );
    assert!(text.contains("public.orders ShareLock"), "{text}");
    assert!(
        text.contains("rule index_not_concurrent · table public.orders · ShareLock"),
        "{text}"
    );
    assert!(
        text.contains("fix: build it with CREATE INDEX CONCURRENTLY"),
        "{text}"
    );
}

#[test]
fn check_reports_hazards_as_findings_with_locks_error_and_notes_with_warn() {
    let dir = root().join("examples/locks/index_not_concurrent/migrations");
    let migration = "0002_index_orders_by_customer_email";
    let (out, json) = check_json(&dir, &["--locks", "error", "--lock-rows", "500"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("lock_hazard".to_string(), migration.to_string())]
    );
    assert_eq!(json["findings"][0]["rule"], "index_not_concurrent");
    assert_eq!(json["findings"][0]["table"], "public.orders");
    assert_eq!(json["findings"][0]["lock_mode"], "ShareLock");
    assert!(
        json.get("locks").is_none(),
        "check does not print the trace"
    );

    let (out, json) = check_json(&dir, &["--locks", "warn", "--lock-rows", "500"]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    let notes: Vec<&Value> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "lock_hazard")
        .collect();
    assert_eq!(notes.len(), 1, "{json:#}");
    assert!(notes[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("[index_not_concurrent]"));

    let (out, json) = check_json(&dir, &[]);
    assert_eq!(out.status.code(), code::OK, "off by default: {json:#}");
    assert!(json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["kind"] != "lock_hazard"));
}

#[test]
fn every_rule_has_a_hazard_example_and_a_safe_twin() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("examples/locks"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("migrations").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = migproof::locks::RULES
        .iter()
        .flat_map(|r| [r.id().to_string(), format!("{}_safe", r.id())])
        .chain(TRAFFIC_EXAMPLES.iter().map(|e| e.to_string()))
        .collect();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "a new example under examples/locks needs a rule or a place in TRAFFIC_EXAMPLES, and a \
         test"
    );
}

/// The examples under `examples/locks` about the traffic during a lock rather than a rule, each
/// with its test below.
const TRAFFIC_EXAMPLES: &[&str] = &["alter_queues_behind_report_query"];

/// The classic outage: `ADD COLUMN ... DEFAULT now()` rewrites nothing, but its ACCESS EXCLUSIVE
/// request, with no lock_timeout, waits behind the report query's snapshot, and every read and
/// write of the table queues behind it. The lock's hold time stays the time it was held: the
/// wait to get it is the statement's `lock_wait_ms`, and is not a `lock_held_too_long`.
#[test]
fn alter_queues_behind_the_report_query_and_the_application_queues_behind_it() {
    let (out, json) = locks_json(
        "alter_queues_behind_report_query",
        &["--rows", "2000", "--lock-threshold", "100ms"],
    );
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert_eq!(json["findings"], serde_json::json!([]), "{json:#}");
    let notes = json["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{json:#}");
    assert_eq!(notes[0]["migration"], "0002_add_order_created_at");
    assert!(
        notes[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("[access_exclusive_without_lock_timeout]"),
        "{json:#}"
    );

    let migrations = json["locks"]["migrations"].as_array().unwrap();
    assert!(
        migrations[0].get("report_query").is_none(),
        "no table exists before the first migration: {json:#}"
    );
    let m = &migrations[1];
    assert_eq!(
        m["report_query"]["tables"],
        serde_json::json!(["public.orders"])
    );
    let held = m["report_query"]["held_ms"].as_u64().unwrap();
    assert!(
        (100..=300).contains(&held),
        "report query open {held} ms: {m:#}"
    );

    let s = statement(&json, "0002_add_order_created_at", "ADD COLUMN created_at");
    let lock_wait = s["lock_wait_ms"].as_u64().unwrap();
    assert!(lock_wait >= 100, "the ALTER waited {lock_wait} ms: {s:#}");
    assert!(s["duration_ms"].as_u64().unwrap() >= lock_wait, "{s:#}");
    let lock = &s["locks"][0];
    assert_eq!(
        (lock["relation"].as_str(), lock["mode"].as_str()),
        (Some("public.orders"), Some("AccessExclusiveLock")),
        "{s:#}"
    );
    assert!(
        lock["held_ms"].as_u64().unwrap() < 100,
        "held from when it was granted, not from when it was asked for: {s:#}"
    );
    let traffic = &s["traffic"];
    assert!(traffic["waited"].as_u64().unwrap() >= 2, "{s:#}");
    assert!(traffic["wait_p50_ms"].as_u64().unwrap() >= 50, "{s:#}");
    let max = traffic["wait_max_ms"].as_u64().unwrap();
    assert!(max >= 100, "{s:#}");
    assert_eq!(max, s["longest_wait_ms"].as_u64().unwrap(), "{s:#}");
    assert_eq!(traffic["failed"], 0, "{s:#}");
    assert!(
        traffic["queue_max"].as_u64().unwrap() >= 2,
        "the ALTER and the probe behind it: {s:#}"
    );
    let behind: Vec<(&str, &str, u64)> = m["probe_waits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["statement"] == 1 && w["duration_ms"].as_u64().unwrap() >= 100)
        .map(|w| {
            (
                w["table"].as_str().unwrap(),
                w["access"].as_str().unwrap(),
                w["start_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    for access in ["read", "write"] {
        assert!(
            behind
                .iter()
                .any(|(t, a, start)| *t == "public.orders" && *a == access && *start < lock_wait),
            "a probe {access} queued behind the ALTER while it waited: {m:#}"
        );
    }
}

/// A probe query that fails for another reason than its own short lock_timeout (here the table
/// it reads is renamed under it) is counted as failed, on the statement running when it failed.
#[test]
fn probe_queries_on_a_renamed_table_fail_and_are_counted() {
    let dir = folder(&[
        (
            "0001_t.up.sql",
            "create table t (id int primary key, v text);\n",
        ),
        ("0001_t.down.sql", "drop table t;\n"),
        ("0002_rename.up.sql", "alter table t rename to t2;\n"),
        ("0002_rename.down.sql", "alter table t2 rename to t;\n"),
    ]);
    let (_, json) = locks_json_at(dir.path(), &["--rows", "100"]);
    let s = statement(&json, "0002_rename", "rename to t2");
    assert!(s["traffic"]["failed"].as_u64().unwrap() >= 1, "{json:#}");
    let failed: Vec<&str> = json["locks"]["migrations"][1]["probe_waits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["failed"].as_str())
        .collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|code| *code == "42P01"),
        "undefined_table: {json:#}"
    );
}

/// An up whose lock_timeout is shorter than the report query's hold gives up behind it, as it
/// would in production behind a long query: a `lock_analysis` note saying to deploy it with
/// retries, and the up traced again without the report query, so the trace goes on.
#[test]
fn a_short_lock_timeout_expiring_behind_the_report_query_is_a_note_and_traced_again() {
    let dir = folder(&[
        ("0001_t.up.sql", "create table t (id int primary key);\n"),
        ("0001_t.down.sql", "drop table t;\n"),
        (
            "0002_add.up.sql",
            "set local lock_timeout = '20ms';\nalter table t add column v text;\n",
        ),
        ("0002_add.down.sql", "alter table t drop column v;\n"),
        ("0003_u.up.sql", "create table u (id int);\n"),
        ("0003_u.down.sql", "drop table u;\n"),
    ]);
    let (out, json) = locks_json_at(dir.path(), &["--rows", "100"]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert_eq!(json["findings"], serde_json::json!([]), "{json:#}");
    let notes = json["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{json:#}");
    assert_eq!(notes[0]["kind"], "lock_analysis");
    assert_eq!(notes[0]["migration"], "0002_add");
    let message = notes[0]["message"].as_str().unwrap();
    assert!(
        message.contains("lock timeout")
            && message.contains("expired behind the report query")
            && message.contains("retries"),
        "{message}"
    );
    let migrations = json["locks"]["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 3, "{json:#}");
    assert!(migrations[1].get("report_query").is_none(), "{json:#}");
    assert!(migrations[1].get("error").is_none(), "{json:#}");
}

/// `--format html`: one self-contained page (nothing fetched), with the migration, its
/// statement (escaped), the report query and the probe queries that waited.
#[test]
fn html_is_one_self_contained_page_with_the_timeline() {
    let dir = root().join("examples/locks/alter_queues_behind_report_query/migrations");
    let out = locks_at(&dir, &["--rows", "500", "--format", "html"]);
    assert_eq!(
        out.status.code(),
        code::OK,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert_eq!(page.matches("<html").count(), 1, "{page}");
    assert!(page.trim_end().ends_with("</html>"), "{page}");
    for external in [
        "src=", "<link", "<script", "http://", "https://", "url(", "@import",
    ] {
        assert!(!page.contains(external), "`{external}` in {page}");
    }
    assert!(
        page.contains("<section id=\"0002_add_order_created_at\">"),
        "{page}"
    );
    assert!(
        page.contains(
            "ALTER TABLE orders ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()"
        ),
        "{page}"
    );
    assert!(page.contains("report query (REPEATABLE READ)"), "{page}");
    assert!(page.contains("AccessExclusiveLock public.orders"), "{page}");
    for access in ["read", "write"] {
        assert!(
            page.contains(&format!("probe {access} on public.orders waited")),
            "{page}"
        );
    }
}

/// Only `locks` draws a lock trace: `--format html` (or `--report html=PATH`) elsewhere is a
/// usage error naming the flag, before any server is reached.
#[test]
fn html_on_another_command_is_refused_naming_the_flag() {
    let dir = root().join("examples/locks/alter_queues_behind_report_query/migrations");
    for args in [
        vec!["check", "--format", "html"],
        vec!["fuzz", "--format", "html"],
        vec!["check", "--report", "html=page.html"],
        vec!["replay", "--format", "html"],
    ] {
        let out = migproof()
            .args(&args)
            .arg("--migrations")
            .arg(&dir)
            .args([
                "--backend",
                "url",
                "--database-url",
                "postgres://nobody@127.0.0.1:1/x",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), code::USAGE, "{args:?}: {err}");
        let flag = if args[1] == "--report" {
            "`--report html=PATH`"
        } else {
            "`--format html`"
        };
        assert!(
            err.contains(flag) && err.contains("migproof locks --format html"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = migproof()
        .args(["snapshot", "--format", "html"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::USAGE);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));
}

#[test]
fn a_migration_that_fails_stops_the_trace_naming_file_and_line() {
    let dir = folder(&[
        (
            "0001_a.up.sql",
            "CREATE TABLE a (id int PRIMARY KEY, v text);\n",
        ),
        (
            "0002_b.up.sql",
            "SET LOCAL lock_timeout = '1s';\nALTER TABLE a\n  ADD COLUMN b intt;\n",
        ),
        ("0003_c.up.sql", "CREATE TABLE c (id int);\n"),
    ]);
    let (out, json) = locks_json_at(dir.path(), &["--rows", "10"]);
    assert_eq!(out.status.code(), code::FINDINGS);
    assert_eq!(
        findings(&json),
        [("apply_failed".to_string(), "0002_b".to_string())]
    );
    let message = json["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("0002_b.up.sql:3") && message.contains("intt"),
        "{message}"
    );
    assert!(
        message.contains("1 migration(s) after it were not traced"),
        "{message}"
    );
    assert_eq!(json["locks"]["migrations"].as_array().unwrap().len(), 2);
}

/// Ups that fail only on the filled rows (a unique key over duplicates, a foreign key over
/// orphans, SET NOT NULL over NULLs) are `data_dependent` notes naming the cause; the table is
/// emptied, the up traced again, and every later migration is traced too (issue 18).
#[test]
fn unique_key_foreign_key_and_set_not_null_over_filled_rows_are_traced_not_stopped() {
    let dir = folder(&[
        (
            "0001_tables.up.sql",
            "create table items (id serial primary key, grp text not null, owner int);\n",
        ),
        ("0001_tables.down.sql", "drop table items;\n"),
        (
            "0002_extra.up.sql",
            "alter table items add column extra text;\n",
        ),
        (
            "0002_extra.down.sql",
            "alter table items drop column extra;\n",
        ),
        (
            "0005_unique_grp.up.sql",
            "create unique index items_grp on items ((grp is not null));\n",
        ),
        ("0005_unique_grp.down.sql", "drop index items_grp;\n"),
        (
            "0004_fk.up.sql",
            "create table owners (id int primary key);\n\
             alter table items add constraint items_owner foreign key (owner) \
             references owners (id);\n",
        ),
        (
            "0004_fk.down.sql",
            "alter table items drop constraint items_owner;\ndrop table owners;\n",
        ),
        (
            "0003_extra_not_null.up.sql",
            "alter table items alter column extra set not null;\n",
        ),
        (
            "0003_extra_not_null.down.sql",
            "alter table items alter column extra drop not null;\n",
        ),
        (
            "0006_index.up.sql",
            "create index items_owner_idx on items (owner);\n",
        ),
        ("0006_index.down.sql", "drop index items_owner_idx;\n"),
    ]);
    let (out, json) = locks_json_at(dir.path(), &["--rows", "600"]);
    let traced: Vec<&str> = json["locks"]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["migration"].as_str().unwrap())
        .collect();
    assert_eq!(
        traced,
        [
            "0001_tables",
            "0002_extra",
            "0003_extra_not_null",
            "0004_fk",
            "0005_unique_grp",
            "0006_index"
        ],
        "every migration is traced: {json:#}"
    );
    assert!(
        json["locks"]["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["error"].is_null()),
        "{json:#}"
    );
    let data_dependent: Vec<(String, String)> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "data_dependent")
        .map(|n| {
            (
                n["migration"].as_str().unwrap().to_owned(),
                n["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let cause = |migration: &str, words: &str, sqlstate: &str| {
        assert!(
            data_dependent.iter().any(|(m, text)| m == migration
                && text.contains(words)
                && text.contains(sqlstate)
                && text.contains("`public.items`")),
            "{migration}: want `{words}` ({sqlstate}) in {data_dependent:#?}"
        );
    };
    cause(
        "0005_unique_grp",
        "duplicate values under a new unique key",
        "23505",
    );
    cause(
        "0004_fk",
        "values without a parent row under a new foreign key",
        "23503",
    );
    cause("0003_extra_not_null", "NULLs under a new NOT NULL", "23502");
    assert_eq!(data_dependent.len(), 3, "{data_dependent:#?}");
    // Notes, not failures: nothing stopped the trace.
    assert!(
        !json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "apply_failed"),
        "{json:#}"
    );
    assert_eq!(json["summary"]["migrations_checked"], 6, "{json:#}");
    assert!(
        matches!(out.status.code(), code::OK | code::FINDINGS),
        "{json:#}"
    );
}

/// The crates.io history (285 migrations nobody here wrote): every migration is traced, the
/// data-dependent ups are notes, a plain index build on a filled table is a hazard, a
/// concurrent one is not, and a statement its authors marked `-- safety-assured` is a note.
#[test]
fn the_crates_io_history_is_traced_to_its_last_migration() {
    let migrations = corpus("crates.io").join("migrations");
    let (out, json) = locks_json_at(&migrations, &["--rows", "300"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{}", json["summary"]);
    let traced = json["locks"]["migrations"].as_array().unwrap();
    assert_eq!(traced.len(), 285, "{}", json["summary"]);
    assert_eq!(json["summary"]["migrations_checked"], 285);
    let errors: Vec<&Value> = traced.iter().filter(|m| !m["error"].is_null()).collect();
    assert!(
        errors.is_empty(),
        "every up applied in the end: {errors:#?}"
    );

    let findings = json["findings"].as_array().unwrap();
    let hazard = |migration: &str, rule: &str| {
        findings
            .iter()
            .find(|f| f["migration"] == migration && f["rule"] == rule)
    };
    // `CREATE INDEX index_version_crate_id ON versions (crate_id)`, versions holding rows
    let plain = hazard("20140929103752_dumped_migration_24", "index_not_concurrent")
        .unwrap_or_else(|| panic!("no hazard for the plain index build: {findings:#?}"));
    assert_eq!(plain["table"], "public.versions");
    assert_eq!(plain["lock_mode"], "ShareLock");
    // `create index concurrently if not exists versions_id_yanked_idx on versions ...`:
    // traced outside a transaction, a concurrent build on the filled table, no hazard
    let concurrent = "2024-05-27-142004_add-versions-id-yanked-index";
    assert!(
        findings.iter().all(|f| f["migration"] != concurrent),
        "{findings:#?}"
    );
    let cic = traced
        .iter()
        .find(|m| m["migration"] == concurrent)
        .unwrap();
    let statement = &cic["statements"][0];
    assert_eq!(statement["in_transaction"], false, "{cic:#}");
    assert_eq!(statement["index_builds"][0]["concurrent"], true, "{cic:#}");
    assert_eq!(
        statement["index_builds"][0]["table"], "public.versions",
        "{cic:#}"
    );
    // `-- safety-assured:start` ... `SET NOT NULL` ... `-- safety-assured:end`
    let assured = "2026-06-06-120000-0000_make_username_not_null";
    assert!(hazard(assured, "set_not_null").is_none(), "{findings:#?}");
    let notes = json["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n["migration"] == assured
            && n["message"].as_str().unwrap().starts_with("[set_not_null]")
            && n["message"].as_str().unwrap().contains("safety-assured")),
        "{notes:#?}"
    );
    // an up that fails on the filled rows is a note naming its cause, and the trace goes on
    let data_dependent: Vec<&str> = notes
        .iter()
        .filter(|n| n["kind"] == "data_dependent")
        .map(|n| n["migration"].as_str().unwrap())
        .collect();
    assert!(
        data_dependent.contains(&"20141001190227_dumped_migration_41"),
        "SET NOT NULL on gh_login, added without a value: {data_dependent:?}"
    );
}

/// `[locks.rows]` in migproof.toml gives one table its own size; the others get `--rows`.
#[test]
fn locks_rows_in_migproof_toml_sizes_one_table_and_names_it_in_the_hazard() {
    let dir = folder(&[
        (
            "0001_tables.up.sql",
            "create table big (id serial primary key, code text not null);\n\
             create table small (id serial primary key, note text);\n",
        ),
        (
            "0001_tables.down.sql",
            "drop table big; drop table small;\n",
        ),
        (
            "0002_index.up.sql",
            "create index big_code on big (code);\n",
        ),
        ("0002_index.down.sql", "drop index big_code;\n"),
        ("migproof.toml", "[locks.rows]\n\"public.big\" = 3_000\n"),
    ]);
    let (out, json) = locks_json_at(dir.path(), &["--rows", "100"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(json["locks"]["table_rows"]["public.big"], 3000, "{json:#}");
    assert_eq!(json["summary"]["rows_seeded"], 3100, "{json:#}");
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["migration"] == "0002_index" && f["rule"] == "index_not_concurrent")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(finding["table"], "public.big");
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.contains("at 3000 rows in public.big ([locks.rows])"),
        "{message}"
    );
}

/// A `[locks.rows]` key that names no table, is not a table name, or asks too much: exit 2
/// naming the file, before or after the migrations ran, and nothing left behind.
#[test]
fn locks_rows_naming_no_table_or_too_many_rows_is_refused() {
    let refused = |toml: &str, expected: &str| {
        let dir = folder(&[
            ("0001_t.up.sql", "create table t (id int);\n"),
            ("0001_t.down.sql", "drop table t;\n"),
            ("0002_i.up.sql", "create index on t (id);\n"),
            ("0002_i.down.sql", "drop index t_id_idx;\n"),
            ("migproof.toml", toml),
        ]);
        let out = migproof()
            .args(["locks", "--backend", "url", "--database-url"])
            .arg(server_url())
            .arg("--migrations")
            .arg(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), code::USAGE, "{err}");
        assert!(
            err.contains("migproof.toml") && err.contains(expected),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    };
    refused(
        "[locks.rows]\n\"public.tt\" = 10\n",
        "[locks.rows] sizes `public.tt`, which no migration creates",
    );
    refused(
        "\n[locks.rows]\n\"a.b.c\" = 10\n",
        "line 3: [locks.rows] names `a.b.c`; name a table as `schema.table` or `table`",
    );
    refused(
        "[locks.rows]\nt = 10_000_001\n",
        "line 2: [locks.rows] gives `t` 10000001 rows; at most 10000000",
    );
    refused("[locks]\nsize = 3\n", "unknown field `size`");
}

//! `check --stats-from`: seeded rows shaped like a live database's planner statistics, read
//! without reading a row.

mod common;
use common::code;

use common::*;

/// A database on the shared server standing for production: the example's `production.sql`.
fn production(tag: &str) -> Planted {
    Planted::plant(
        &format!("production_{tag}"),
        &root().join("examples/stats_from/production.sql"),
    )
}

#[test]
fn production_statistics_let_an_up_apply_that_seeded_nulls_stop() {
    let production = production("example");
    let before = production.dump();
    let migrations = root().join("examples/stats_from/migrations");
    let (out, json) = check_json(&migrations, &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("data_dependent".to_owned(), "0002_tier_required".to_owned())]
    );
    let url = with_password(&production.url());
    assert!(url.contains("hunter2secret"), "{url}");
    let (out, json) = check_json(&migrations, &["--stats-from", &url]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    let said = json["summary"]["stats_from"].as_str().unwrap();
    assert!(said.contains("4 columns of 1 table"), "{said}");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains("hunter2secret"), "{printed}");
    assert_eq!(production.dump(), before, "the source changed");
}

/// A third of production's phones are NULL: so are three of every nine seeded rows (the
/// adversarial seeder alone writes two), and no seeded tier is NULL. A migration that counts
/// them proves it from inside the scratch database.
#[test]
fn the_seeded_rows_have_production_s_null_fraction() {
    let production = production("nulls");
    let dir = folder(&[
        (
            "0001_create_customers.up.sql",
            &std::fs::read_to_string(
                root().join("examples/stats_from/migrations/0001_create_customers.up.sql"),
            )
            .unwrap(),
        ),
        ("0001_create_customers.down.sql", "DROP TABLE customers;"),
        (
            "0002_count_nulls.up.sql",
            "DO $$ DECLARE n int; t int; tiers int; BEGIN
                 SELECT count(*) FILTER (WHERE phone IS NULL), count(*),
                        count(*) FILTER (WHERE tier IS NULL)
                   INTO n, t, tiers FROM customers;
                 IF t > 0 AND (n * 3 <> t OR tiers > 0) THEN
                     RAISE EXCEPTION 'NULL phones: % of % rows, NULL tiers: %', n, t, tiers;
                 END IF;
             END $$;",
        ),
        ("0002_count_nulls.down.sql", "SELECT 1;"),
    ]);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let message = json["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("NULL phones: 2 of 9 rows"), "{message}");
    let (out, json) = check_json(dir.path(), &["--stats-from", &production.url()]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
}

#[test]
fn an_unreachable_statistics_source_is_an_environment_failure() {
    let out = migproof()
        .args(["check", "--backend", "url", "--database-url"])
        .arg(server_url())
        .args([
            "--stats-from",
            "postgres://postgres:hunter2secret@127.0.0.1:1/prod",
        ])
        .arg(root().join("examples/stats_from/migrations"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code::ENVIRONMENT, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2secret"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

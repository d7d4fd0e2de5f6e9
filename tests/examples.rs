//! Every example project produces exactly the verdict its folder promises: the shop passes,
//! and every planted bug under `examples/bugs/<name>` produces exactly the finding named in its
//! `expect.json` (kind and migration), and nothing else.

mod common;
use common::code;

use common::*;

#[test]
fn shop_passes_every_check() {
    let (out, json) = check_json(&root().join("examples/shop/migrations"), &["--strict"]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert_eq!(json["summary"]["migrations_checked"], json["migrations"]);
    assert!(json["migrations"].as_u64().unwrap() >= 8);
    // Its two renames break the previous release during a rolling deploy: notes, as contract
    // steps may do so on purpose.
    let notes: Vec<(&str, &str)> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap(),
                n["migration"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        notes,
        [
            (
                "breaks_previous_release",
                "0006_rename_customer_full_name_to_display_name"
            ),
            (
                "breaks_previous_release",
                "0010_rename_addresses_to_customer_addresses"
            ),
        ],
        "{json:#}"
    );
}

fn planted(name: &str) {
    let dir = root().join("examples/bugs").join(name);
    let expect: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap()).unwrap();
    let args: Vec<String> = expect["args"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, json) = check_json(&dir.join("migrations"), &args);
    assert_eq!(
        out.status.code(),
        code::FINDINGS,
        "{name} must fail: {json:#}"
    );
    let want = (
        expect["kind"].as_str().unwrap().to_string(),
        expect["migration"].as_str().unwrap().to_string(),
    );
    let mut got = findings(&json);
    got.dedup();
    assert_eq!(got, [want], "{name}: {json:#}");
    if let Some(step) = expect["step"].as_str() {
        assert_eq!(json["findings"][0]["step"], step, "{name}");
    }
}

macro_rules! planted_bugs {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { planted(stringify!($name)); } )*
        const PLANTED: &[&str] = &[$(stringify!($name)),*];
    };
}

planted_bugs!(
    down_drops_preexisting_function,
    down_keeps_enum_type,
    down_keeps_function,
    down_keeps_index,
    down_leaves_column_nullable,
    down_leaves_view_unpopulated,
    down_loosens_check,
    down_lowercases_email,
    down_rebuild_joins_names_with_a_space,
    down_rebuild_leaves_sequence_behind,
    down_restores_stricter_check,
    down_wrong_default,
    down_wrong_function_body,
    enum_value_not_removed,
    missing_down,
    non_transactional_retry_fails,
    not_null_column_without_default,
    numeric_scale_narrowed,
    rebuild_loses_guest_orders,
    rename_breaks_previous_release,
    rename_down_drops_column,
    repeatable_not_idempotent,
    text_status_to_enum,
    trigger_reads_column_added_later,
    typo_in_up,
    unique_over_duplicates,
    up_creates_global_role,
    up_drops_column_with_values,
    widen_then_narrow_down,
);

#[test]
fn every_planted_bug_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("examples/bugs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk, PLANTED,
        "add the new example to planted_bugs! in tests/examples.rs"
    );
}

/// The correct twin of each planted bug that `check` alone finds after a step (the sequence
/// moved with setval, the view refreshed, the statements made idempotent, the trigger extended
/// when its column arrives, the rename done as expand/contract) passes `check --strict
/// --compat error` and a short seeded fuzz.
#[test]
fn fixed_twins_pass_check_and_fuzz() {
    let fixed = root().join("examples/fixed");
    let mut twins: Vec<std::path::PathBuf> = std::fs::read_dir(&fixed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    twins.sort();
    assert_eq!(twins.len(), 5, "{twins:?}");
    for twin in twins {
        let name = twin.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            root().join("examples/bugs").join(&name).is_dir(),
            "{name} is the twin of a planted bug"
        );
        let (out, json) = check_json(&twin.join("migrations"), &["--strict", "--compat", "error"]);
        assert_eq!(out.status.code(), code::OK, "{name}: {json:#}");
        let regressions = tempfile::tempdir().unwrap();
        let (out, json) = fuzz_json(
            &twin.join("migrations"),
            regressions.path(),
            &["--cases", "12"],
        );
        assert_eq!(out.status.code(), code::OK, "{name}: {json:#}");
    }
}

/// Every clean example project passes a short seeded fuzz, as it passes `check`: the shop, the
/// project with declared changes, the fixed twins, and the `good` project of every layout.
/// What `check` accepts, fuzz must accept too (a down that adapts values written after its up,
/// a migration that rebuilds a table and moves its sequence); what fuzz finds there is either a
/// bug of the example or a false alarm of fuzz. Three projects run at once, each on two jobs.
#[test]
fn every_clean_example_passes_a_seeded_fuzz() {
    let mut projects: Vec<(std::path::PathBuf, Option<String>)> = vec![
        (root().join("examples/shop/migrations"), None),
        (root().join("examples/declared_changes/migrations"), None),
    ];
    let dirs = |folder: &str| -> Vec<std::path::PathBuf> {
        let mut dirs: Vec<_> = std::fs::read_dir(root().join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        dirs
    };
    for twin in dirs("examples/fixed") {
        projects.push((twin.join("migrations"), None));
    }
    for layout in dirs("examples/layouts") {
        let good = layout.join("good");
        let expect: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(good.join("expect.json")).unwrap())
                .unwrap();
        assert_eq!(expect["exit"], 0, "{}", good.display());
        let source = expect["source_flag"].as_str().map(str::to_owned);
        projects.push((good.join("migrations"), source));
    }
    assert!(projects.len() >= 14, "{projects:?}");
    let queue = std::sync::Mutex::new(projects.into_iter());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| loop {
                let Some((dir, source)) = queue.lock().unwrap().next() else {
                    return;
                };
                let regressions = tempfile::tempdir().unwrap();
                let mut args = vec!["--cases", "6", "--max-steps", "16", "--jobs", "2"];
                if let Some(source) = &source {
                    args.extend(["--source", source]);
                }
                let (out, json) = fuzz_json(&dir, regressions.path(), &args);
                if out.status.code() != code::OK {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{}: {json:#}", dir.display()));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

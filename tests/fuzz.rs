//! `fuzz` and `replay` end to end on real PostgreSQL, with fixed seeds and small budgets: the
//! planted bugs only fuzzing can find are found, shrunk, saved, and replayed exactly. Tests
//! whose assertions depend on which case is shrunk first pass `--jobs 1` (the default is the
//! number of CPUs).

mod common;
use common::code;

use std::path::Path;
use std::process::Output;

use common::*;

fn replay(files: &[&Path], migrations: Option<&Path>) -> (Output, serde_json::Value) {
    let mut cmd = migproof();
    cmd.args([
        "replay",
        "--backend",
        "url",
        "--format",
        "json",
        "--database-url",
    ])
    .arg(server_url());
    if let Some(m) = migrations {
        cmd.arg("--migrations").arg(m);
    }
    let out = cmd.args(files).output().expect("runs");
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out, json)
}

fn expected(example: &str) -> (String, String) {
    let text = std::fs::read_to_string(root().join(example).join("expect.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    (
        v["kind"].as_str().unwrap().into(),
        v["migration"].as_str().unwrap().into(),
    )
}

fn saved_cases(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Fuzzes `example` with seed 7, `cases` cases and one job; its `expect.json` finding must be
/// among the findings, shrunk, saved as the report shows it, and replay to it again.
fn finds(example: &str, cases: &str) -> serde_json::Value {
    let regressions = tempfile::tempdir().unwrap();
    let (out, json) = fuzz_json(
        &root().join(example).join("migrations"),
        regressions.path(),
        &["--cases", cases, "--jobs", "1"],
    );
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let want = expected(example);
    assert!(
        findings(&json).contains(&want),
        "{example}: want {want:?}: {json:#}"
    );
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == want.0.as_str())
        .unwrap();
    assert!(
        finding["sequence"].as_array().unwrap().len() <= 10,
        "{finding:#}"
    );
    assert!(finding["replay"]
        .as_str()
        .unwrap()
        .starts_with("migproof replay "));
    assert!(json["summary"]["steps_per_second"].as_f64().unwrap() > 0.0);
    // The saved case replays to the same finding, every time.
    let files = saved_cases(regressions.path());
    assert!(!files.is_empty());
    assert!(regressions.path().join("migproof.txt").exists());
    for _ in 0..2 {
        let (out, again) = replay(&[files[0].as_path()], None);
        assert_eq!(out.status.code(), code::FINDINGS, "{again:#}");
        assert_eq!(findings(&again)[0], findings(&json)[0]);
    }
    reads_as_the_project(finding, &files);
    json
}

/// A fuzz finding's sequence names migrations, not list positions, shows the values written,
/// and is saved with its case as it was printed: the same lines, numbered as the finding's step.
fn reads_as_the_project(finding: &serde_json::Value, saved: &[std::path::PathBuf]) {
    let sequence: Vec<&str> = finding["sequence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for (i, line) in sequence.iter().enumerate() {
        assert!(line.starts_with(&format!("{}. ", i + 1)), "{finding:#}");
        assert!(
            !line.contains("to version "),
            "a position, not a name: {line}"
        );
        assert!(
            !line.contains("=#") && !line.contains("= #"),
            "a symbol, not a value: {line}"
        );
    }
    let step = finding["step"].as_str().unwrap();
    let last = sequence.last().unwrap();
    let (number, text) = last.split_once(". ").unwrap();
    assert_eq!(step, format!("step {number}: {text}"), "{finding:#}");
    let prefix = format!(
        "{}-{}-",
        finding["kind"].as_str().unwrap(),
        finding["migration"]
            .as_str()
            .unwrap()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let file = saved
        .iter()
        .find(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .unwrap_or_else(|| panic!("no saved case {prefix}*: {saved:?}"));
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(case["sequence"], finding["sequence"], "{case:#}");
    assert_eq!(case["finding"]["step"], finding["step"], "{case:#}");
    assert_eq!(
        case["steps"].as_array().unwrap().len(),
        sequence.len(),
        "{case:#}"
    );
}

/// [`finds`], where the example's finding must be the only one.
fn finds_only(example: &str, cases: &str) {
    let json = finds(example, cases);
    assert_eq!(findings(&json), [expected(example)], "{json:#}");
}

#[test]
fn finds_an_invalid_index_kept_by_create_index_concurrently_if_not_exists() {
    finds("examples/fuzz/cic_if_not_exists_keeps_invalid_index", "40");
}

#[test]
fn finds_a_non_transactional_migration_whose_retry_always_fails() {
    finds("examples/fuzz/cic_retry_fails", "40");
}

/// `check` finds both concurrent-build examples too, deterministically: it cancels the build
/// while it waits for an older transaction, then retries the whole up.
#[test]
fn check_cancels_a_concurrent_index_build_and_judges_its_retry() {
    for (example, kind) in [
        (
            "examples/fuzz/cic_if_not_exists_keeps_invalid_index",
            "residue_after_failure",
        ),
        ("examples/fuzz/cic_retry_fails", "retry_failed"),
    ] {
        let (out, json) = check_json(&root().join(example).join("migrations"), &[]);
        assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
        assert_eq!(
            findings(&json),
            [(kind.to_string(), "0002_index_events_kind".to_string())],
            "{json:#}"
        );
        let finding = &json["findings"][0];
        assert_eq!(
            finding["step"],
            "cancelled during statement 1's concurrent index build (line 3), then retried"
        );
        let message = finding["message"].as_str().unwrap();
        assert!(message.contains("leaves an INVALID index"), "{message}");
    }
}

#[test]
fn finds_case_variants_that_break_a_unique_index_on_lower_which_check_misses() {
    let example = "examples/fuzz/lower_email_unique";
    let (out, json) = check_json(&root().join(example).join("migrations"), &[]);
    assert_eq!(
        out.status.code(),
        code::OK,
        "check's seeded rows do not trip it: {json:#}"
    );
    finds(example, "15");
}

#[test]
fn finds_a_table_rebuild_that_loses_rows_whose_foreign_key_is_null() {
    finds("examples/bugs/rebuild_loses_guest_orders", "15");
}

#[test]
fn finds_a_rollback_that_fails_once_rows_were_written_after_the_up() {
    let json = finds("examples/bugs/widen_then_narrow_down", "15");
    // The row that breaks the down shows the value written, cut: 200 characters in varchar(200).
    let sequence = json["findings"][0]["sequence"].to_string();
    assert!(sequence.contains("(200 characters)"), "{sequence}");
    assert!(
        sequence.contains("migrate down one version (roll back 0002_widen_phone)"),
        "{sequence}"
    );
}

#[test]
fn finds_a_down_that_leaves_a_sequence_behind_its_column_as_check_does() {
    finds_only("examples/bugs/down_rebuild_leaves_sequence_behind", "10");
}

#[test]
fn finds_a_down_that_leaves_a_materialized_view_unpopulated_as_check_does() {
    finds_only("examples/bugs/down_leaves_view_unpopulated", "10");
}

#[test]
fn finds_a_trigger_that_no_row_can_pass_at_its_version_as_check_does() {
    finds_only("examples/bugs/trigger_reads_column_added_later", "10");
}

#[test]
fn a_down_that_rebuilds_an_enum_may_map_labels_written_after_its_up() {
    // PostgreSQL cannot drop an enum label: the down of 0002 rebuilds the type under its name
    // and maps `archived`, written after the up, to `closed`. `check` accepts it (the rows it
    // writes after an up are not compared across the down); fuzz reported `data_changed`.
    let project = root().join("tests/fixtures/enum_rebuilt_by_down");
    let case = root().join("tests/fixtures/enum_rebuilt_by_down.json");
    let (out, json) = replay(&[case.as_path()], Some(&project));
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    let (out, json) = check_json(&project, &["--strict"]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    // Columns the down leaves their type are still compared: the case writes its row.
    let changed = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&project).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, changed.path().join(path.file_name().unwrap())).unwrap();
    }
    let down = changed.path().join("0002_add_archived_state.down.sql");
    let text = std::fs::read_to_string(&down).unwrap();
    std::fs::write(&down, text + "UPDATE tickets SET title = title || '!';\n").unwrap();
    let (out, json) = replay(&[case.as_path()], Some(changed.path()));
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [(
            "data_changed".to_string(),
            "0002_add_archived_state".to_string()
        )],
        "{json:#}"
    );
    let rows = json["findings"][0]["rows"].to_string();
    assert!(
        rows.contains(".title:") && !rows.contains(".state:"),
        "{rows}"
    );
}

#[test]
fn eight_jobs_run_the_same_cases_as_one_and_leave_no_database() {
    let shop = root().join("examples/shop/migrations");
    let args = ["--cases", "16", "--max-steps", "10"];
    let one = tempfile::tempdir().unwrap();
    let (out, serial) = fuzz_json(&shop, one.path(), &[&["--jobs", "1"], &args[..]].concat());
    assert_eq!(out.status.code(), code::OK, "{serial:#}");
    let eight = tempfile::tempdir().unwrap();
    let mut cmd = fuzz_command(&shop, eight.path(), &[&["--jobs", "8"], &args[..]].concat());
    let (out, pid) = output_and_pid(&mut cmd);
    let parallel: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        code::OK,
        "no interference between jobs: {parallel:#}"
    );
    assert_eq!(parallel["summary"]["cases"], 16);
    assert_eq!(
        parallel["summary"]["steps"], serial["summary"]["steps"],
        "the same cases ran"
    );
    let left = scratch_dbs_of(pid);
    assert!(left.is_empty(), "left behind: {left:?}");
    // And a bug is still found, with the jobs sharing the work.
    let bug = root().join("examples/bugs/rebuild_loses_guest_orders/migrations");
    let (out, json) = fuzz_json(&bug, eight.path(), &["--cases", "16", "--jobs", "8"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json)[0],
        ("data_lost".into(), "0002_denormalize_customer_name".into())
    );
}

#[test]
fn lossy_down_shrinks_to_at_most_six_steps_and_replay_passes_once_fixed() {
    let regressions = tempfile::tempdir().unwrap();
    let bug = root().join("examples/bugs/rename_down_drops_column/migrations");
    let args = ["--cases", "40", "--jobs", "1"];
    let (out, json) = fuzz_json(&bug, regressions.path(), &args);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let f = &json["findings"][0];
    assert_eq!(f["kind"], "data_lost");
    assert_eq!(f["migration"], "0002_rename_nickname_to_display_name");
    let steps = f["sequence"].as_array().unwrap().len();
    assert!(steps <= 6, "shrunk to {steps} steps: {f:#}");
    let files = saved_cases(regressions.path());
    // The fixed twin: the down renames back.
    let fixed = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&bug).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, fixed.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        fixed
            .path()
            .join("0002_rename_nickname_to_display_name.down.sql"),
        "ALTER TABLE customers RENAME COLUMN display_name TO nickname;\n",
    )
    .unwrap();
    let (out, json) = replay(&[files[0].as_path()], Some(fixed.path()));
    assert_eq!(out.status.code(), code::OK, "{json:#}");
}

#[test]
fn same_seed_gives_the_same_cases_and_correct_migrations_pass() {
    let shop = root().join("examples/shop/migrations");
    let a = tempfile::tempdir().unwrap();
    let (out, json) = fuzz_json(&shop, a.path(), &["--cases", "6", "--max-steps", "12"]);
    assert_eq!(
        out.status.code(),
        code::OK,
        "no false alarm on the shop: {json:#}"
    );
    let (_, again) = fuzz_json(&shop, a.path(), &["--cases", "6", "--max-steps", "12"]);
    assert_eq!(
        json["summary"]["steps"], again["summary"]["steps"],
        "same seed, same cases"
    );
}

#[test]
fn bad_fuzz_flags_exit_2_naming_the_flag() {
    for (flag, value) in [
        ("--shard", "3/2"),
        ("--shard", "x"),
        ("--seed", "abc"),
        ("--duration", "1 fortnight"),
    ] {
        let out = migproof().args(["fuzz", flag, value]).output().unwrap();
        assert_eq!(out.status.code(), code::USAGE, "{flag} {value}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(flag),
            "{flag}"
        );
    }
    let out = migproof()
        .args(["replay", "/nonexistent/case.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::USAGE);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/case.json"));
}

/// The examples under examples/fuzz, each with a test asserting its finding (here, and
/// command_killed_retry_fails in tests/command.rs).
const FUZZ_EXAMPLES: &[&str] = &[
    "cic_if_not_exists_keeps_invalid_index",
    "cic_retry_fails",
    "command_killed_retry_fails",
    "lower_email_unique",
];

#[test]
fn every_fuzz_example_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("examples/fuzz"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk, FUZZ_EXAMPLES,
        "add a test for the new example and list it here"
    );
}

#[test]
fn a_stash_from_before_a_deeper_rollback_is_not_compared_again() {
    // A case the fuzzer once reported as `data_lost`: rows stashed at version 2 before an up,
    // then the table dropped by rolling back to version 1 (as it should be), then an
    // interrupted and retried migrate up, then a rollback to version 2 compared with that old
    // stash. The stash is dropped when the database goes below it, so this passes.
    let features = root().join("tests/fixtures/features");
    let case = root().join("tests/fixtures/round_trip_after_retry.json");
    let (out, json) = replay(&[case.as_path()], Some(&features));
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    // The same features pass `check` too: extensions, domains, composite types, generated
    // columns, partitions, row-level security, materialized views, triggers, sequences.
    let (out, json) = check_json(&features, &[]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
}

#[test]
fn a_down_may_cut_values_written_after_its_widening_up() {
    // Found by a 10-minute run on the shop: a name longer than the old limit, written after
    // 0011 widened the column, is cut by its down (as the down says it must be, to apply).
    // Values there before the up are compared by the round trip; this is not a finding.
    let shop = root().join("examples/shop/migrations");
    let case = root().join("tests/fixtures/shop_down_cuts_new_long_name.json");
    let (out, json) = replay(&[case.as_path()], Some(&shop));
    assert_eq!(out.status.code(), code::OK, "{json:#}");
}

#[test]
fn fuzz_reports_a_step_timeout_as_timeout_as_check_does() {
    // It said `apply_failed` where `check` says `timeout`.
    let dir = folder(&[
        ("0001_a.up.sql", "create table a (id int);"),
        ("0001_a.down.sql", "drop table a;"),
        ("0002_slow.up.sql", "select pg_sleep(5);"),
    ]);
    let regressions = tempfile::tempdir().unwrap();
    let (out, json) = fuzz_json(
        dir.path(),
        regressions.path(),
        &["--cases", "1", "--max-steps", "2", "--step-timeout", "1s"],
    );
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("timeout".to_string(), "0002_slow".to_string())],
        "{json:#}"
    );
    let (out, json) = check_json(dir.path(), &["--step-timeout", "1s"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("timeout".to_string(), "0002_slow".to_string())],
        "{json:#}"
    );
}

/// Ctrl-C while a fuzz case (not the golden pass) runs a statement: no Rust panic reaches the
/// user, the exit is 130, and the run's scratch databases are gone (issue 10).
#[test]
fn ctrl_c_during_a_fuzz_case_exits_130_without_a_panic_and_leaves_nothing() {
    // The second up sleeps only once the first up's table has rows: never in the golden pass
    // (empty tables), soon in a case, which writes rows before migrating.
    let dir = folder(&[
        (
            "0001_t.up.sql",
            "create table t (id int primary key, v text);\n",
        ),
        ("0001_t.down.sql", "drop table t;\n"),
        (
            "0002_wait.up.sql",
            "create table u (id int);\n\
             select pg_sleep(case when exists (select 1 from t) then 60 else 0 end);\n",
        ),
        ("0002_wait.down.sql", "drop table u;\n"),
    ]);
    let regressions = tempfile::tempdir().unwrap();
    // One job: two cases sleeping at once would never read as the one awaited.
    let args = ["--cases", "64", "--jobs", "1"];
    let mut child = fuzz_command(dir.path(), regressions.path(), &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let sleeping = format!(
        "SELECT count(*)::text FROM pg_stat_activity WHERE state = 'active' \
         AND query LIKE '%pg_sleep(case%' AND datname LIKE 'migproof\\_{pid}\\_%'"
    );
    while sql("postgres", &sleeping)[0][0].as_deref() != Some("1") {
        assert!(
            child.try_wait().unwrap().is_none(),
            "fuzz ended before a case slept"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no case slept in 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code::INTERRUPTED, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("interrupted; scratch databases were dropped"),
        "{err}"
    );
    assert_eq!(scratch_dbs_of(pid), Vec::<Vec<Option<String>>>::new());
}

/// The library's `Harness` runs the command's search: for the same seed and cases it finds,
/// shrinks and saves what `migproof fuzz` does; its set-up failures are typed (issue 10).
#[test]
fn the_library_harness_finds_what_the_command_finds_and_types_its_errors() {
    use migproof::backend::BackendKind;
    use migproof::fuzz::{FuzzOptions, Harness, HarnessError};

    std::env::set_var("MIGPROOF_ALLOW_SUPERUSER", "1");
    let url = server_url();
    let example = "examples/fuzz/cic_retry_fails";
    let dir = root().join(example).join("migrations");
    let regressions = tempfile::tempdir().unwrap();
    let harness = Harness::new(&dir, BackendKind::Url, Some(&url)).expect("harness");
    let report = harness
        .fuzz(FuzzOptions {
            cases: Some(40),
            max_steps: 24,
            seed: 7,
            duration: Some(std::time::Duration::from_secs(90)),
            jobs: 1,
            shard: (0, 1),
            regressions: regressions.path().to_owned(),
            strict: false,
            step_timeout: std::time::Duration::from_secs(120),
            migrations_arg: dir.display().to_string(),
        })
        .expect("runs");
    let want = expected(example);
    let found: Vec<(String, String)> = report
        .findings
        .iter()
        .map(|f| (f.kind.as_str().to_owned(), f.migration.clone()))
        .collect();
    assert!(found.contains(&want), "want {want:?}, found {found:?}");
    let case = report.findings[0].case.as_ref().expect("a fuzz case");
    assert!(case.replay.starts_with("migproof replay "), "{case:?}");
    assert!(!saved_cases(regressions.path()).is_empty());
    // The command, same seed, cases and jobs: the same findings.
    let cli_regressions = tempfile::tempdir().unwrap();
    let args = ["--cases", "40", "--jobs", "1"];
    let (_, json) = fuzz_json(&dir, cli_regressions.path(), &args);
    assert_eq!(findings(&json), found);
    drop(harness);

    let missing = Harness::new(&root().join("no/such/folder"), BackendKind::Url, Some(&url));
    assert!(
        matches!(missing, Err(HarnessError::Source(_))),
        "{:?}",
        missing.err()
    );
    let typo = root().join("examples/bugs/typo_in_up/migrations");
    match Harness::new(&typo, BackendKind::Url, Some(&url)) {
        Err(HarnessError::Golden(f)) => assert_eq!(f.kind.as_str(), "apply_failed", "{f:?}"),
        other => panic!("want a golden failure, got {:?}", other.err()),
    }
    let unreachable = Harness::new(&dir, BackendKind::Url, Some("postgres://u@127.0.0.1:1/x"));
    assert!(
        matches!(unreachable, Err(HarnessError::Backend(_))),
        "{:?}",
        unreachable.err()
    );
}

/// `migproof fuzz` on the test server with JSON output and no `--seed`.
fn unseeded(dir: &Path, regressions: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_migproof"));
    cmd.env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .env("MIGPROOF_ALLOW_SUPERUSER", "1")
        .args(["fuzz", "--backend", "url", "--format", "json"])
        .arg("--database-url")
        .arg(server_url())
        .arg("--migrations")
        .arg(dir)
        .arg("--regressions")
        .arg(regressions)
        .args(extra);
    cmd
}

fn run_json(cmd: &mut std::process::Command) -> (Output, serde_json::Value, String) {
    let out = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}); stderr: {stderr}"));
    (out, json, stderr)
}

/// The issue "Fuzz for nightly runs": `--duration 90s` stopped after 32 s, as `--cases`
/// defaulted to 64 and the duration only capped it.
#[test]
fn a_duration_without_cases_runs_cases_until_it_ends_and_no_longer() {
    let shop = root().join("examples/shop/migrations");
    let regressions = tempfile::tempdir().unwrap();
    let (out, few, _) = run_json(&mut fuzz_command(
        &shop,
        regressions.path(),
        &["--cases", "3"],
    ));
    assert_eq!(out.status.code(), code::OK, "{few:#}");
    assert_eq!(few["summary"]["cases"], 3);

    let duration = std::time::Duration::from_secs(6);
    let started = std::time::Instant::now();
    let mut cmd = fuzz_command(&shop, regressions.path(), &["--duration", "6s"]);
    let (out, json, stderr) = run_json(&mut cmd);
    let took = started.elapsed();
    assert_eq!(out.status.code(), code::OK, "{json:#}\n{stderr}");
    // How many cases fit in 6 s depends on the machine's load; that the run went on to the
    // end of its duration, not capped by a default number of cases, does not.
    let cases = json["summary"]["cases"].as_u64().unwrap();
    assert!(cases >= 1, "{cases} cases in 6 s: {json:#}");
    let ran = json["summary"]["duration_ms"].as_u64().unwrap();
    assert!(ran >= 6000, "stopped early, after {ran} ms: {json:#}");
    // The case running at the end stops at its next step.
    let margin = std::time::Duration::from_secs(10);
    assert!(took < duration + margin, "took {took:?} for --duration 6s");
}

#[test]
fn without_a_seed_the_run_prints_a_random_one_that_runs_the_same_cases_again() {
    let shop = root().join("examples/shop/migrations");
    let regressions = tempfile::tempdir().unwrap();
    let args = ["--cases", "4", "--max-steps", "10"];
    let seed_of = |stderr: &str| {
        let after = stderr
            .split_once("(run these cases again with --seed ")
            .unwrap_or_else(|| panic!("no seed named: {stderr}"))
            .1;
        after.split_once(')').unwrap().0.to_owned()
    };
    let (out, first, stderr) = run_json(&mut unseeded(&shop, regressions.path(), &args));
    assert_eq!(out.status.code(), code::OK, "{first:#}\n{stderr}");
    let seed = seed_of(&stderr);
    assert!(
        stderr.contains(&format!("migproof fuzz: seed {seed} ")),
        "{stderr}"
    );
    let seeded = [&args[..], &["--seed", &seed]].concat();
    let (out, again, stderr) = run_json(&mut unseeded(&shop, regressions.path(), &seeded));
    assert_eq!(out.status.code(), code::OK, "{again:#}\n{stderr}");
    assert_eq!(seed_of(&stderr), seed, "--seed is the seed printed");
    assert_eq!(again["findings"], first["findings"]);
    assert_eq!(again["summary"]["cases"], 4);
    assert_eq!(
        again["summary"]["steps"], first["summary"]["steps"],
        "the same cases"
    );
    let (_, _, stderr) = run_json(&mut unseeded(&shop, regressions.path(), &args));
    assert_ne!(seed_of(&stderr), seed, "each run draws its own seed");
}

#[test]
fn fuzz_settings_in_migproof_toml_stand_for_flags_and_a_flag_wins() {
    let project = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root().join("examples/shop/migrations")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, project.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        project.path().join("migproof.toml"),
        "[fuzz]\ncases = 3\nmax_steps = 6\n",
    )
    .unwrap();
    let regressions = tempfile::tempdir().unwrap();
    let (out, json, stderr) = run_json(&mut fuzz_command(project.path(), regressions.path(), &[]));
    assert_eq!(out.status.code(), code::OK, "{json:#}\n{stderr}");
    assert_eq!(json["summary"]["cases"], 3, "{json:#}");
    let mut cmd = fuzz_command(project.path(), regressions.path(), &["--cases", "2"]);
    let (out, json, stderr) = run_json(&mut cmd);
    assert_eq!(out.status.code(), code::OK, "{json:#}\n{stderr}");
    assert_eq!(json["summary"]["cases"], 2, "{json:#}");
}

/// CI jobs end a step that prints nothing for some minutes: when stderr is not a terminal,
/// every command prints a line of progress every MIGPROOF_HEARTBEAT_SECS (30 s by default),
/// whatever `--format`.
#[test]
fn a_heartbeat_line_goes_to_stderr_when_it_is_not_a_terminal() {
    let shop = root().join("examples/shop/migrations");
    let regressions = tempfile::tempdir().unwrap();
    let mut cmd = fuzz_command(&shop, regressions.path(), &["--duration", "4s"]);
    let (out, json, stderr) = run_json(cmd.env("MIGPROOF_HEARTBEAT_SECS", "1"));
    assert_eq!(out.status.code(), code::OK, "{json:#}\n{stderr}");
    let beats: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("migproof fuzz: ") && l.contains(" cases, "))
        .collect();
    assert!(beats.len() >= 2, "{stderr}");
    assert!(
        beats[0].contains(" findings, ") && beats[0].ends_with(" of 4s"),
        "{stderr}"
    );

    // `check`, with human output, on migrations that take a few seconds.
    let slow = folder(&[
        (
            "0001_a.up.sql",
            "create table a (id int); select pg_sleep(1);",
        ),
        ("0001_a.down.sql", "drop table a;"),
        (
            "0002_b.up.sql",
            "create table b (id int); select pg_sleep(1);",
        ),
        ("0002_b.down.sql", "drop table b;"),
    ]);
    let out = migproof()
        .args(["check", "--backend", "url", "--database-url"])
        .arg(server_url())
        .arg("--migrations")
        .arg(slow.path())
        .env("MIGPROOF_HEARTBEAT_SECS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code::OK, "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("migproof: ") && l.contains("/2 migrations checked, ")),
        "{stderr}"
    );
}

/// A down that deletes the rows its own up inserted (reference data) undoes its up: `check`
/// passes it, and fuzz did report `data_lost` ("down kept rows and values violated") once a
/// case went down through it. A down that deletes more than its up inserted is still found.
#[test]
fn a_down_may_delete_the_rows_its_own_up_inserted() {
    let files = |down: &'static str| {
        folder(&[
            (
                "0001_create_methods.up.sql",
                "CREATE TABLE methods (code text PRIMARY KEY, name text NOT NULL);",
            ),
            ("0001_create_methods.down.sql", "DROP TABLE methods;"),
            (
                "0002_default_methods.up.sql",
                "INSERT INTO methods VALUES ('standard', 'Standard'), ('express', 'Express');",
            ),
            ("0002_default_methods.down.sql", down),
        ])
    };
    let args = ["--cases", "12", "--jobs", "1"];
    let good = files("DELETE FROM methods WHERE code IN ('standard', 'express');");
    let regressions = tempfile::tempdir().unwrap();
    let (out, json) = fuzz_json(good.path(), regressions.path(), &args);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    let (out, json) = check_json(good.path(), &[]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");

    let bug = files("DELETE FROM methods;");
    let regressions = tempfile::tempdir().unwrap();
    let (out, json) = fuzz_json(bug.path(), regressions.path(), &args);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("data_lost".to_string(), "0002_default_methods".to_string())],
        "{json:#}"
    );
}

/// A project of `files` (name, SQL) in a temp dir, and a fuzz [`Harness`] on it on the test
/// server, for tests of shrinking's machinery; the dir lives as long as the harness needs it.
fn harness_of(files: &[(&str, &str)]) -> (tempfile::TempDir, migproof::fuzz::Harness) {
    std::env::set_var("MIGPROOF_ALLOW_SUPERUSER", "1");
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in files {
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    let url = server_url();
    let harness =
        migproof::fuzz::Harness::new(dir.path(), migproof::backend::BackendKind::Url, Some(&url))
            .expect("harness");
    (dir, harness)
}

/// Shrinking resumes a sequence from a copy of the database at the end of the longest prefix
/// it shares with one run before, kept after a slow step, and the resumed run judges as a
/// run from an empty database does.
#[test]
fn a_sequence_sharing_a_slow_prefix_resumes_from_its_copy() {
    use migproof::fuzz::sut::{Prefixes, Ran};
    use migproof::model::machine::Step;

    let files = [
        (
            "0001_slow.up.sql",
            "CREATE TABLE t (id int PRIMARY KEY);\nSELECT pg_sleep(0.3);\n",
        ),
        ("0001_slow.down.sql", "DROP TABLE t;\n"),
        ("0002_column.up.sql", "ALTER TABLE t ADD COLUMN c text;\n"),
        ("0002_column.down.sql", "ALTER TABLE t DROP COLUMN c;\n"),
    ];
    let (_dir, harness) = harness_of(&files);
    let releases = vec![2];
    let passed = |ran: &Ran| matches!(ran, Ran::Passed);

    let prefixes = Prefixes::default();
    let first = [Step::MigrateUp, Step::MigrateUp, Step::MigrateDown];
    let ran = harness
        .run_steps(releases.clone(), &first, &prefixes)
        .expect("runs");
    assert!(passed(&ran), "{ran:?}");
    assert_eq!(
        prefixes.resumed(),
        0,
        "nothing saved before the first sequence"
    );

    // Shares its first step (the slow up) with the first sequence: starts after it.
    let second = [Step::MigrateTo(1), Step::MigrateUp, Step::Verify];
    let ran = harness
        .run_steps(releases.clone(), &second, &prefixes)
        .expect("runs");
    assert!(passed(&ran), "{ran:?}");
    assert_eq!(
        prefixes.resumed(),
        1,
        "the second sequence resumed from the copy"
    );

    // Shares nothing: from an empty database.
    let third = [Step::MigrateTo(2), Step::MigrateDown];
    let ran = harness
        .run_steps(releases.clone(), &third, &prefixes)
        .expect("runs");
    assert!(passed(&ran), "{ran:?}");
    assert_eq!(prefixes.resumed(), 1);
    harness.clear(&prefixes);

    // The same sequence from an empty database judges the same.
    let fresh = Prefixes::default();
    let ran = harness.run_steps(releases, &second, &fresh).expect("runs");
    assert!(passed(&ran), "{ran:?}");
    harness.clear(&fresh);
}

/// Shrinking answers a sequence from what one run before gave, without running it, when the
/// database would see the same steps: one that begins with a failed sequence's steps up to its
/// failing step fails there the same way (under other release ends too), and one that passed
/// passes again. A sequence that differs runs.
#[test]
fn a_sequence_the_database_would_see_as_one_run_before_is_answered_without_running() {
    use migproof::fuzz::sut::{Prefixes, Ran};
    use migproof::model::machine::Step;
    use migproof::report::Kind;

    let files = [
        (
            "0001_table.up.sql",
            "CREATE TABLE t (id int PRIMARY KEY);\n",
        ),
        ("0001_table.down.sql", "DROP TABLE t;\n"),
        ("0002_column.up.sql", "ALTER TABLE t ADD COLUMN c text;\n"),
        // forgets the column
        ("0002_column.down.sql", "SELECT 1;\n"),
    ];
    let (_dir, harness) = harness_of(&files);
    let failed_at_the_down = |ran: &Ran| match ran {
        Ran::Failed(f, sequence) => {
            f.kind == Kind::SchemaMismatch && f.migration == "0002_column" && sequence.len() == 3
        }
        _ => false,
    };

    let prefixes = Prefixes::default();
    let failing = [
        Step::MigrateUp,
        Step::MigrateUp,
        Step::MigrateDown,
        Step::Verify,
    ];
    let ran = harness
        .run_steps(vec![2], &failing, &prefixes)
        .expect("runs");
    assert!(failed_at_the_down(&ran), "{ran:?}");
    assert_eq!(prefixes.recalled(), 0);

    // Up to 0002, down to 0001: the same steps for the database, then another one.
    let longer = [
        Step::MigrateTo(1),
        Step::MigrateTo(2),
        Step::MigrateTo(1),
        Step::RerunMigrator,
    ];
    let ran = harness
        .run_steps(vec![2], &longer, &prefixes)
        .expect("runs");
    assert!(failed_at_the_down(&ran), "{ran:?}");
    assert_eq!(prefixes.recalled(), 1, "answered from the failed sequence");
    // Deploys under other release ends that go to the same versions.
    let deploys = [Step::Deploy(0), Step::Deploy(1), Step::MigrateDown];
    let ran = harness
        .run_steps(vec![1, 2], &deploys, &prefixes)
        .expect("runs");
    assert!(failed_at_the_down(&ran), "{ran:?}");
    assert_eq!(prefixes.recalled(), 2);

    // A sequence that stops short of the failing step runs, and passes; then it is known.
    let short = [Step::MigrateUp, Step::MigrateUp];
    let ran = harness.run_steps(vec![2], &short, &prefixes).expect("runs");
    assert!(matches!(ran, Ran::Passed), "{ran:?}");
    assert_eq!(prefixes.recalled(), 2, "ran");
    let ran = harness
        .run_steps(vec![1, 2], &[Step::Deploy(0), Step::MigrateUp], &prefixes)
        .expect("runs");
    assert!(matches!(ran, Ran::Passed), "{ran:?}");
    assert_eq!(prefixes.recalled(), 3, "answered from the passed sequence");
    harness.clear(&prefixes);

    // What was answered is what running it gives.
    for (releases, steps) in [(vec![2], &longer[..]), (vec![1, 2], &deploys[..])] {
        let fresh = Prefixes::default();
        let ran = harness.run_steps(releases, steps, &fresh).expect("runs");
        assert!(failed_at_the_down(&ran), "{ran:?}");
        assert_eq!(fresh.recalled(), 0);
        harness.clear(&fresh);
    }
}

/// A climb from empty (up only, without rows, faults or failures) continues from the copy a
/// climb before left at every 8th version of a 16-migration history (where climbing there took
/// longer than a copy), and judges what follows as a climb from an empty database does; a case
/// that went down first climbs without copies.
#[test]
fn a_climb_from_empty_continues_from_the_copy_an_earlier_climb_left() {
    use migproof::fuzz::sut::{Prefixes, Ran};
    use migproof::model::machine::Step;

    let mut files = Vec::new();
    for i in 1..=16 {
        files.push((
            format!("{i:04}_t{i}.up.sql"),
            // slow enough that climbing 8 of them takes longer than a copy
            format!("CREATE TABLE t{i} (id int PRIMARY KEY, v text);\nSELECT pg_sleep(0.025);\n"),
        ));
        // The planted bug: 0012's down keeps its table, renamed and with a new index, instead
        // of dropping it.
        let down = if i == 12 {
            "CREATE INDEX kept ON t12 (v);\nALTER TABLE t12 RENAME TO gone;\n".to_string()
        } else {
            format!("DROP TABLE t{i};\n")
        };
        files.push((format!("{i:04}_t{i}.down.sql"), down));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let releases: Vec<usize> = (1..=16).collect();
    let failed_with = |ran: Ran| match ran {
        Ran::Failed(f, _) => (f.kind.as_str().to_string(), f.migration, f.message),
        other => panic!("expected a finding, got {other:?}"),
    };
    let bug = [Step::MigrateTo(12), Step::MigrateDown];

    let (_dir, harness) = harness_of(&files);
    let prefixes = Prefixes::default();
    let climb = [Step::MigrateTo(16), Step::Verify];
    let ran = harness
        .run_steps(releases.clone(), &climb, &prefixes)
        .expect("runs");
    assert!(matches!(ran, Ran::Passed), "{ran:?}");
    assert_eq!(harness.climbs_used(), 0, "no copy before the first climb");

    // Went down first: climbs without copies.
    let strayed = [Step::MigrateTo(2), Step::MigrateDown, Step::MigrateTo(16)];
    let ran = harness
        .run_steps(releases.clone(), &strayed, &prefixes)
        .expect("runs");
    assert!(matches!(ran, Ran::Passed), "{ran:?}");
    assert_eq!(
        harness.climbs_used(),
        0,
        "a case that went down climbs itself"
    );

    // Climbs to 12 from the copy at 8, then finds the bug.
    let resumed = harness
        .run_steps(releases.clone(), &bug, &prefixes)
        .expect("runs");
    assert_eq!(
        harness.climbs_used(),
        1,
        "the climb to 12 started from the copy at 8"
    );
    let resumed = failed_with(resumed);
    assert_eq!(
        (resumed.0.as_str(), resumed.1.as_str()),
        ("schema_mismatch", "0012_t12"),
        "{resumed:?}"
    );

    // The same sequence from an empty database, on a fresh harness: the same finding.
    let (_dir2, fresh) = harness_of(&files);
    let ran = fresh
        .run_steps(releases, &bug, &Prefixes::default())
        .expect("runs");
    assert_eq!(fresh.climbs_used(), 0);
    assert_eq!(failed_with(ran), resumed);
}

/// A failure that is one migration's own shrinks to the sequence that exercises that migration
/// alone, tried before proptest's shrinking: a down that keeps an index shrinks to migrating to
/// it and rolling it back; an up that fails once a table holds a row shrinks to climbing to where
/// the case wrote it, the write, and migrating to the failing migration.
#[test]
fn a_migrations_own_failure_shrinks_to_the_steps_that_exercise_it_alone() {
    let mut files = Vec::new();
    for i in 1..=16 {
        let up = match i {
            // Planted: fails once t3 holds a row whose v is null.
            6 => "CREATE TABLE t6 (id int PRIMARY KEY);\nALTER TABLE t3 ALTER COLUMN v SET NOT NULL;\n"
                .to_string(),
            _ => format!("CREATE TABLE t{i} (id int PRIMARY KEY, v text);\n"),
        };
        let down = match i {
            6 => "ALTER TABLE t3 ALTER COLUMN v DROP NOT NULL;\nDROP TABLE t6;\n".to_string(),
            // Planted: keeps an index it created.
            12 => "CREATE INDEX kept ON t1 (v);\nDROP TABLE t12;\n".to_string(),
            _ => format!("DROP TABLE t{i};\n"),
        };
        files.push((format!("{i:04}_t{i}.up.sql"), up));
        files.push((format!("{i:04}_t{i}.down.sql"), down));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let dir = folder(&files);
    let regressions = tempfile::tempdir().unwrap();
    let (out, json) = fuzz_json(
        dir.path(),
        regressions.path(),
        &["--cases", "30", "--jobs", "1"],
    );
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let sequence_of = |kind: &str, migration: &str| -> Vec<String> {
        let f = json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind && f["migration"] == migration)
            .unwrap_or_else(|| panic!("no {kind} at {migration}: {json:#}"));
        f["sequence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        sequence_of("schema_mismatch", "0012_t12"),
        [
            "1. migrate to 0012_t12 (apply 0001_t1..0012_t12)",
            "2. migrate down one version (roll back 0012_t12)",
        ],
        "{json:#}"
    );
    let failed = sequence_of("apply_failed", "0006_t6");
    assert_eq!(failed.len(), 3, "{failed:#?}");
    assert!(failed[0].starts_with("1. migrate to 000"), "{failed:#?}");
    assert!(failed[1].starts_with("2. write "), "{failed:#?}");
    assert!(failed[1].contains("into public.t3"), "{failed:#?}");
    assert!(
        failed[2].starts_with("3. migrate to 0006_t6 (apply "),
        "{failed:#?}"
    );
    assert!(json["notes"].as_array().unwrap().is_empty(), "{json:#}");
}

/// The session a case used goes on to the next case (`Session::cleared`) only as a new session's
/// equal: what a migration left in it (settings, a role, a temporary table, a cursor, a listen,
/// an advisory lock, a sequence's value, an open transaction) is gone, the session's own settings
/// are back, and its prepared statements still run; a statement a migration prepared sends the
/// case to a new session instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_session_goes_on_only_cleared_of_what_migrations_left_in_it() {
    use migproof::executor::Session;
    let timeout = std::time::Duration::from_secs(60);
    let (server, db, mut s) = common::scratch_session().await;
    async fn read(s: &mut Session) -> String {
        let state = "SELECT concat_ws(' | ', current_setting('TimeZone'),
            current_setting('client_min_messages'), current_setting('search_path'),
            current_setting('work_mem'), current_setting('DateStyle'),
            current_user::text = session_user::text,
            (SELECT count(*) FROM pg_class WHERE relpersistence = 't'),
            (SELECT count(*) FROM pg_cursors WHERE name <> ''), (SELECT count(*) FROM pg_listening_channels()),
            (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
            pg_current_xact_id_if_assigned() IS NULL)";
        sqlx::query_scalar(state).fetch_one(s.conn()).await.unwrap()
    }
    let fresh = read(&mut s).await;
    assert_eq!(
        fresh,
        "UTC | warning | \"$user\", public | 4MB | ISO, MDY | t | 0 | 0 | 0 | 0 | t"
    );
    sqlx::raw_sql("CREATE SEQUENCE counter")
        .execute(s.conn())
        .await
        .unwrap();
    sqlx::raw_sql(
        "SET search_path = pg_catalog; SET work_mem = '8MB'; SET TimeZone = 'Asia/Tokyo';
         SET DateStyle = 'German'; SET client_min_messages = notice;
         SET myapp.flag = 'on';
         CREATE TEMP TABLE scratch AS SELECT 1 AS a;
         SELECT nextval('public.counter');
         SELECT pg_advisory_lock(42);
         LISTEN somewhere;
         BEGIN; DECLARE held CURSOR WITH HOLD FOR SELECT 1; COMMIT;
         SET ROLE pg_database_owner;
         BEGIN; SELECT pg_current_xact_id();",
    )
    .execute(s.conn())
    .await
    .unwrap();
    assert_ne!(read(&mut s).await, fresh);
    let mut s = s.cleared().await.expect("cleared");
    assert_eq!(read(&mut s).await, fresh);
    // The sequence's value of the session is gone, and a setting of an extension's (or an
    // application's) namespace is back to none.
    let currval = sqlx::query_scalar::<_, i64>("SELECT currval('counter')")
        .fetch_one(s.conn())
        .await;
    assert!(currval.is_err(), "{currval:?}");
    let flag: Option<String> =
        sqlx::query_scalar("SELECT NULLIF(current_setting('myapp.flag', true), '')")
            .fetch_one(s.conn())
            .await
            .unwrap();
    assert_eq!(flag, None);
    // A statement the session prepared through the protocol (as migproof's own are) runs again.
    assert_eq!(read(&mut s).await, fresh);

    sqlx::raw_sql("PREPARE mine AS SELECT 1")
        .execute(s.conn())
        .await
        .unwrap();
    assert!(s.cleared().await.is_none(), "a prepared statement was kept");
    let s = Session::open(&db, timeout).await.expect("a new session");
    s.close().await;
    server.cleanup().await.expect("scratch databases dropped");
}

/// A finished case's database emptied in place (`fuzz::reuse`) is handed to the next case only
/// when it is a fresh one's equal: after a rich schema with rows, it is, with the same (empty)
/// snapshot and none of migproof's stashes; after what the reset cannot undo (a changed `public`
/// schema, a large object, default privileges, a setting of the database), it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_database_goes_to_the_next_case_only_as_a_fresh_ones_equal() {
    use migproof::executor::Session;
    use migproof::fuzz::reuse::{self, Pristine};
    use migproof::observe::snapshot;
    let timeout = std::time::Duration::from_secs(60);
    let (server, other, s) = common::scratch_session().await;
    s.close().await;
    // As in a run: the boundary is read before the sessions write; a fresh database gives the
    // fingerprint.
    let boundary = reuse::boundary(&other)
        .await
        .expect("room before a wrap-around");
    let fresh = server.create().await.expect("database");
    let mut s = Session::open(&fresh, timeout).await.expect("session");
    let pristine = Pristine::read(boundary, &mut s).await.expect("fingerprint");
    let empty = snapshot::take(s.conn()).await.unwrap();
    s.close().await;
    let mut first = Session::open(&fresh, timeout).await.expect("session");
    sqlx::raw_sql(
        "CREATE EXTENSION IF NOT EXISTS pgcrypto;
         CREATE SCHEMA app;
         CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE DOMAIN positive AS int CHECK (VALUE > 0);
         CREATE TYPE pair AS (a int, b text);
         CREATE TYPE span AS RANGE (subtype = float8);
         CREATE TABLE customers (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, m mood,
             n positive, email text UNIQUE);
         CREATE TABLE app.orders (id serial PRIMARY KEY,
             customer int REFERENCES customers ON DELETE CASCADE);
         CREATE TABLE part (k int) PARTITION BY RANGE (k);
         CREATE TABLE part_1 PARTITION OF part FOR VALUES FROM (0) TO (10);
         CREATE SEQUENCE loose;
         CREATE VIEW v AS SELECT id, email FROM customers;
         CREATE MATERIALIZED VIEW mv AS SELECT count(*) FROM app.orders;
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER t BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION touch();
         CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1';
         CREATE AGGREGATE total(int) (sfunc = int4pl, stype = int);
         CREATE POLICY mine ON customers USING (true);
         COMMENT ON TABLE customers IS 'people';
         INSERT INTO customers (m, n, email) SELECT 'ok', g, 'c' || g FROM generate_series(1, 50) g;
         INSERT INTO app.orders (customer) SELECT id FROM customers;
         CREATE UNLOGGED TABLE _migproof.stash_7 AS SELECT * FROM customers;
         INSERT INTO _migproof.applied (version) VALUES ('0001');",
    )
    .execute(first.conn())
    .await
    .expect("schema");
    first.close().await;
    let s = Session::open(&fresh, timeout).await.expect("session");
    let mut s = pristine
        .reset(s)
        .await
        .expect("emptied to a fresh one's equal");
    assert_eq!(snapshot::take(s.conn()).await.unwrap(), empty);
    let ours: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = '_migproof'::regnamespace
         AND c.relkind = 'r' UNION ALL SELECT version FROM _migproof.applied ORDER BY 1",
    )
    .fetch_all(s.conn())
    .await
    .unwrap();
    assert_eq!(ours, ["applied"], "migproof's schema installed afresh");
    s.close().await;

    let name = |db: &migproof::backend::ScratchDb| format!("\"{}\"", db.name);
    for undoable in [
        "COMMENT ON SCHEMA public IS 'changed'".to_owned(),
        "GRANT CREATE ON SCHEMA public TO PUBLIC".to_owned(),
        "SELECT lo_create(0)".to_owned(),
        "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC".to_owned(),
        "CREATE TEMP TABLE scratch (a int)".to_owned(),
        "ALTER DATABASE {db} SET work_mem = '8MB'".to_owned(),
    ] {
        let db = server.create().await.expect("database");
        let undoable = undoable.replace("{db}", &name(&db));
        let mut s = Session::open(&db, timeout).await.expect("session");
        sqlx::raw_sql(sqlx::AssertSqlSafe(undoable.clone()))
            .execute(s.conn())
            .await
            .unwrap_or_else(|e| panic!("{undoable}: {e}"));
        s.close().await;
        let s = Session::open(&db, timeout).await.expect("session");
        assert!(
            pristine.reset(s).await.is_none(),
            "handed on after `{undoable}`"
        );
    }
    server.cleanup().await.expect("scratch databases dropped");
}

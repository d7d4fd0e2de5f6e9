//! migproof as a team's CI gate, end to end against the real server: baselines, allow
//! comments, pull-request scope (`--since`, `--changed-from` on a real git repository),
//! report files, the stderr summary, documents on exit 3, migproof.toml settings, `init`, and
//! the backend a DATABASE_URL chooses.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use common::{check_json, findings, migproof, root, server_url};

/// A copy of an example's migrations folder in a fresh temporary folder: (guard, folder).
fn copy_of(example: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("migrations");
    std::fs::create_dir_all(&dir).unwrap();
    let from = root().join("examples").join(example).join("migrations");
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    (tmp, dir)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const ADDS_NOTE: &str = "ALTER TABLE customers ADD COLUMN note text;\n";
/// A down that deletes every other customer: a bug of its own.
const DOWN_LOSES_ROWS: &str =
    "DELETE FROM customers WHERE id % 2 = 0;\nALTER TABLE customers DROP COLUMN note;\n";

#[test]
fn a_baseline_accepts_known_findings_and_a_new_bug_fails_alone() {
    let (tmp, dir) = copy_of("bugs/rename_down_drops_column");
    let baseline = tmp.path().join("migproof-baseline.json");
    let out = migproof()
        .args(["baseline", "--backend", "url", "--database-url"])
        .arg(server_url())
        .arg("-m")
        .arg(&dir)
        .arg("--output")
        .arg(&baseline)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("wrote 1 finding(s)"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&baseline).unwrap();
    let written: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = &written["findings"][0];
    assert_eq!(entry["kind"], "data_lost");
    assert_eq!(entry["migration"], "0002_rename_nickname_to_display_name");
    assert!(!text.contains("line") && !text.contains("Ann"), "{text}");

    let arg = baseline.to_str().unwrap();
    let (out, json) = check_json(&dir, &["--baseline", arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["accepted"].as_array().unwrap().len(), 1);
    assert!(json["accepted"][0]["accepted_by"]
        .as_str()
        .unwrap()
        .starts_with("baseline "));

    // a new migration with a bug of its own: that finding alone fails the run
    std::fs::write(dir.join("0003_add_note.up.sql"), ADDS_NOTE).unwrap();
    std::fs::write(dir.join("0003_add_note.down.sql"), DOWN_LOSES_ROWS).unwrap();
    let (out, json) = check_json(&dir, &["--baseline", arg]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        findings(&json),
        [("data_lost".to_string(), "0003_add_note".to_string())]
    );
    assert_eq!(json["accepted"].as_array().unwrap().len(), 1);

    // once the old bug is fixed, the baseline entry is listed as fixed
    std::fs::remove_file(dir.join("0003_add_note.up.sql")).unwrap();
    std::fs::remove_file(dir.join("0003_add_note.down.sql")).unwrap();
    std::fs::write(
        dir.join("0002_rename_nickname_to_display_name.down.sql"),
        "ALTER TABLE customers RENAME COLUMN display_name TO nickname;\n",
    )
    .unwrap();
    let (out, json) = check_json(&dir, &["--baseline", arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["fixed"][0]["kind"], "data_lost");
}

#[test]
fn bad_baselines_are_refused_naming_the_file() {
    let (tmp, dir) = copy_of("bugs/rename_down_drops_column");
    let missing = tmp.path().join("nope.json");
    let out = migproof()
        .args(["check", "-m"])
        .arg(&dir)
        .arg("--baseline")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--baseline") && stderr(&out).contains("nope.json"));
    let bad = tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\n  \"format_version\": 1,\n  \"findings\": [1]\n}\n",
    )
    .unwrap();
    let out = migproof()
        .args(["check", "-m"])
        .arg(&dir)
        .arg("--baseline")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
}

#[test]
fn an_allow_comment_accepts_the_finding_where_it_stands() {
    let (_tmp, dir) = copy_of("bugs/rename_down_drops_column");
    let down = dir.join("0002_rename_nickname_to_display_name.down.sql");
    let text = std::fs::read_to_string(&down).unwrap();
    std::fs::write(
        &down,
        format!("-- migproof:allow data_lost nicknames are rebuilt nightly\n{text}"),
    )
    .unwrap();
    let (out, json) = check_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let accepted = &json["accepted"][0];
    assert_eq!(accepted["kind"], "data_lost");
    assert!(accepted["accepted_by"]
        .as_str()
        .unwrap()
        .ends_with(":1: nicknames are rebuilt nightly"));

    // an allow comment naming no kind, or without a reason, is bad input at its line
    for (comment, says) in [
        ("-- migproof:allow data_gone oops", "names no finding kind"),
        (
            "-- migproof:allow data_lost",
            "needs a finding kind and a reason",
        ),
    ] {
        std::fs::write(&down, format!("{comment}\n{text}")).unwrap();
        let out = migproof().args(["check", "-m"]).arg(&dir).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
        assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Std::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}

#[test]
fn changed_from_checks_only_new_and_edited_migrations_of_a_git_repository() {
    let (tmp, dir) = copy_of("shop");
    git(tmp.path(), &["init", "-q", "-b", "main"]);
    git(tmp.path(), &["add", "-A"]);
    git(tmp.path(), &["commit", "-q", "-m", "released"]);
    // a new migration, untracked, and an edit of a released one
    std::fs::write(
        dir.join("0013_add_note.up.sql"),
        "ALTER TABLE customers ADD COLUMN note text;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("0013_add_note.down.sql"),
        "ALTER TABLE customers DROP COLUMN note;\n",
    )
    .unwrap();
    let edited = dir.join("0003_create_products.up.sql");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, format!("{text}\n-- tidied after release\n")).unwrap();

    let (out, json) = check_json(&dir, &["--changed-from", "main"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        findings(&json),
        [(
            "edited_after_release".to_string(),
            "0003_create_products".to_string()
        )]
    );
    assert_eq!(json["summary"]["in_scope"], 2);
    assert_eq!(json["summary"]["migrations_checked"], 2);
    assert_eq!(json["summary"]["scope"], "changed since main");
    assert!(json["findings"][0]["place"]["file"]
        .as_str()
        .unwrap()
        .ends_with("0003_create_products.up.sql"));

    // committed, the new one is in scope from the first commit, not from HEAD
    git(tmp.path(), &["checkout", "-q", "--", "."]);
    git(tmp.path(), &["add", "-A"]);
    git(tmp.path(), &["commit", "-q", "-m", "note"]);
    let (out, json) = check_json(&dir, &["--changed-from", "HEAD~1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["summary"]["in_scope"], 1);
    let (out, json) = check_json(&dir, &["--changed-from", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["summary"]["migrations_checked"], 0);

    // a ref that does not exist, and a folder outside any repository, are bad input
    let out = migproof()
        .args(["check", "--changed-from", "no-such-ref", "-m"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--changed-from `no-such-ref`: no such commit"),
        "{}",
        stderr(&out)
    );
    let (_plain, elsewhere) = copy_of("shop");
    let out = migproof()
        .args(["check", "--changed-from", "main", "-m"])
        .arg(&elsewhere)
        .env("GIT_CEILING_DIRECTORIES", std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not in a git repository"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn since_checks_a_migration_and_the_ones_after_it() {
    let dir = root().join("examples/shop/migrations");
    let (out, json) = check_json(&dir, &["--since", "0011"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["summary"]["in_scope"], 2);
    assert_eq!(json["summary"]["migrations_checked"], 2);
    let out = migproof()
        .args(["check", "--since", "0099", "-m"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--since `0099`"), "{}", stderr(&out));
}

#[test]
fn one_run_writes_several_reports_and_a_summary_on_stderr() {
    let (tmp, dir) = copy_of("bugs/rename_down_drops_column");
    let junit = tmp.path().join("out.xml");
    let sarif = tmp.path().join("out.sarif");
    let (out, json) = check_json(
        &dir,
        &[
            "--report",
            &format!("junit={}", junit.display()),
            "--report",
            &format!("sarif={}", sarif.display()),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(findings(&json).len(), 1);
    assert!(
        stderr(&out).contains("FAIL: 1 finding(s) (data_lost 1)"),
        "{}",
        stderr(&out)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure type=\"data_lost\""), "{xml}");
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "data_lost");

    // a report file in a folder that does not exist is refused before anything runs
    let out = migproof()
        .args(["check", "--report", "sarif=/nonexistent/x.sarif", "-m"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent"), "{}", stderr(&out));
    let out = migproof()
        .args(["check", "--report", "yaml=x", "-m"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`yaml` is not a format"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn machine_formats_still_get_a_document_when_the_server_is_unreachable() {
    let (tmp, dir) = copy_of("shop");
    let junit = tmp.path().join("out.xml");
    let out = migproof()
        .args(["check", "--format", "json", "--database-url"])
        .arg("postgres://someone:secret@127.0.0.1:1/db")
        .arg("--report")
        .arg(format!("junit={}", junit.display()))
        .arg("-m")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["summary"]["passed"], false);
    let error = json["error"].as_str().unwrap();
    assert!(
        !error.contains("secret") && !stderr(&out).contains("secret"),
        "{error}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<error type=\"environment_failure\""), "{xml}");
    // the URL chose the backend, and the header said so
    assert!(
        stderr(&out).contains("using the server of --database-url (--backend url)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn database_url_in_the_environment_chooses_the_url_backend() {
    let dir = root().join("examples/shop/migrations");
    let out = migproof()
        .env("DATABASE_URL", server_url())
        .args(["check", "--format", "json", "--since", "0012", "-m"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["backend"], "url");
    assert!(
        stderr(&out).contains("using the server of DATABASE_URL"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn migproof_toml_settings_stand_for_flags_and_flags_win() {
    let (_tmp, dir) = copy_of("bugs/missing_down");
    std::fs::write(
        dir.join("migproof.toml"),
        "[check]\nrequire_down = true\nstep_timeout = \"30s\"\n",
    )
    .unwrap();
    let (out, json) = check_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(findings(&json)[0].0, "irreversible");
    std::fs::write(
        dir.join("migproof.toml"),
        "[check]\nstep_timeout = \"soon\"\n",
    )
    .unwrap();
    let out = migproof().args(["check", "-m"]).arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("migproof.toml") && stderr(&out).contains("line 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_writes_a_commented_migproof_toml_once() {
    let (_tmp, dir) = copy_of("shop");
    let out = migproof().args(["init", "-m"]).arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.join("migproof.toml")).unwrap();
    assert!(text.contains("source = \"sqlx\"") && text.contains("# require_down"));
    let out = migproof().args(["init", "-m"]).arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--force"));
    let out = migproof()
        .args(["init", "--force", "-m"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(dir.join("migproof.toml.bak").is_file());
    let (out, _) = check_json(&dir, &["--since", "0012"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn migrations_after_one_that_does_not_apply_are_skipped_test_cases() {
    let (tmp, dir) = copy_of("bugs/typo_in_up");
    std::fs::write(
        dir.join("0003_add_note.up.sql"),
        "ALTER TABLE orders ADD COLUMN note text;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("0003_add_note.down.sql"),
        "ALTER TABLE orders DROP COLUMN note;\n",
    )
    .unwrap();
    let junit = tmp.path().join("out.xml");
    let (out, json) = check_json(&dir, &["--report", &format!("junit={}", junit.display())]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(json["skipped"], serde_json::json!(["0003_add_note"]));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("skipped=\"1\""), "{xml}");
    assert!(
        xml.contains("name=\"0003_add_note\" file=\"")
            && xml.contains("<skipped message=\"not reached"),
        "{xml}"
    );
    assert_eq!(
        xml.matches("name=\"0002_index_orders_by_date\"").count(),
        1,
        "{xml}"
    );
}

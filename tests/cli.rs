//! The command line's contract: exit codes, messages naming the file or flag, and the url
//! backend's promise to touch nothing it did not create.

mod common;
use common::code;

use common::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn missing_folder_exits_2_naming_it() {
    let out = migproof()
        .args(["check", "--migrations", "/nonexistent/migs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::USAGE);
    assert!(
        stderr(&out).contains("`/nonexistent/migs` does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn empty_folder_exits_2() {
    let dir = folder(&[("README.md", "nothing here")]);
    let out = check_dir(dir.path());
    assert_eq!(out.status.code(), code::USAGE);
    assert!(
        stderr(&out).contains("holds no migrations"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("README.md"),
        "says what it found: {}",
        stderr(&out)
    );
}

#[test]
fn duplicate_versions_exit_2_naming_both_files() {
    let dir = folder(&[
        ("0001_a.up.sql", "select 1;"),
        ("0001_b.up.sql", "select 1;"),
    ]);
    let out = check_dir(dir.path());
    assert_eq!(out.status.code(), code::USAGE);
    let err = stderr(&out);
    assert!(
        err.contains("0001_a.up.sql") && err.contains("0001_b.up.sql"),
        "{err}"
    );
}

#[test]
fn non_utf8_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_a.up.sql"), b"select '\xff\xfe';").unwrap();
    let out = check_dir(dir.path());
    assert_eq!(out.status.code(), code::USAGE);
    assert!(stderr(&out).contains("0001_a.up.sql") && stderr(&out).contains("UTF-8"));
}

#[test]
fn unreadable_file_exits_2_naming_it() {
    let dir = folder(&[("0001_a.up.sql", "select 1;")]);
    // Reading /proc/self/mem fails with an I/O error even for root.
    std::os::unix::fs::symlink("/proc/self/mem", dir.path().join("0002_b.up.sql")).unwrap();
    let out = check_dir(dir.path());
    assert_eq!(out.status.code(), code::USAGE, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failed to read") && stderr(&out).contains("0002_b.up.sql"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let out = migproof()
        .args(["check", "--step-timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::USAGE);
    assert!(stderr(&out).contains("--step-timeout"), "{}", stderr(&out));
    let out = migproof()
        .args(["check", "--backend", "cloud"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::USAGE);
    assert!(stderr(&out).contains("--backend"), "{}", stderr(&out));
    let out = migproof()
        .args(["check", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::USAGE);
}

#[test]
fn unreachable_database_exits_3_without_printing_the_password() {
    let dir = folder(&[("0001_a.up.sql", "create table a (id int);")]);
    let out = migproof()
        .args(["check", "--backend", "url", "--database-url"])
        .arg("postgres://ann:hunter2secret@127.0.0.1:1/db")
        .arg("--migrations")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::ENVIRONMENT);
    let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(!all.contains("hunter2secret"), "{all}");
    assert!(all.contains("failed to connect"), "{all}");
}

#[test]
fn url_backend_without_url_exits_2_naming_the_flag() {
    let dir = folder(&[("0001_a.up.sql", "create table a (id int);")]);
    let out = migproof()
        .args(["check", "--backend", "url", "--migrations"])
        .arg(dir.path())
        .output()
        .unwrap();
    // Bad usage, not a failing environment.
    assert_eq!(out.status.code(), code::USAGE, "{}", stderr(&out));
    assert!(stderr(&out).contains("--database-url"), "{}", stderr(&out));
}

#[test]
fn sql_error_is_a_finding_naming_file_line_and_server_message() {
    let dir = folder(&[
        ("0001_a.up.sql", "create table a (id int);\n"),
        ("0001_a.down.sql", "drop table a;\n"),
        (
            "0002_b.up.sql",
            "-- add a column\nalter table a\n  add column b intt;\n",
        ),
        ("0002_b.down.sql", "alter table a drop column b;\n"),
    ]);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS);
    assert_eq!(
        findings(&json),
        [("apply_failed".to_string(), "0002_b".to_string())]
    );
    let message = json["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("0002_b.up.sql:3"), "{message}");
    assert!(
        message.contains("type \"intt\" does not exist"),
        "{message}"
    );
}

#[test]
fn url_backend_touches_nothing_else_and_leaves_no_scratch_database() {
    let name = format!("mp_user_data_{}", std::process::id());
    sql("postgres", &format!("DROP DATABASE IF EXISTS {name}"));
    sql("postgres", &format!("CREATE DATABASE {name}"));
    sql(
        &name,
        "CREATE TABLE keep (id int primary key, v text); INSERT INTO keep VALUES (1, 'mine');",
    );
    let fingerprint = |db: &str| {
        sql(
            db,
            "SELECT string_agg(format('%s:%s', id, v), ',' ORDER BY id) FROM keep",
        )
    };
    let before = fingerprint(&name);
    let (out, json) = check_json(&root().join("tests/fixtures/tiny"), &[]);
    assert_eq!(out.status.code(), code::OK, "{json}");
    assert_eq!(fingerprint(&name), before);
    let leftovers = sql(
        "postgres",
        "SELECT datname::text FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE 'migproof scratch%'",
    );
    let child_pids: Vec<_> = leftovers.iter().flatten().flatten().collect();
    // scratch databases of concurrently running tests may exist; ours (dead pid) must not
    for db in child_pids {
        let pid: u32 = db
            .split('_')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "left behind: {db}"
        );
    }
    sql("postgres", &format!("DROP DATABASE {name}"));
}

#[test]
fn missing_down_is_a_note_unless_required() {
    let dir = folder(&[
        ("0001_a.sql", "create table a (id int);\n"),
        ("0002_b.up.sql", "create table b (id int);\n"),
        ("0002_b.down.sql", "drop table b;\n"),
    ]);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::OK, "{json}");
    assert_eq!(json["notes"][0]["kind"], "irreversible");
    assert!(json["summary"]["forward_only"].is_null(), "{json}");
    let (out, json) = check_json(dir.path(), &["--require-down"]);
    assert_eq!(out.status.code(), code::FINDINGS);
    assert_eq!(
        findings(&json),
        [("irreversible".to_string(), "0001_a".to_string())]
    );
}

/// A project with no down at all is forward-only by choice: said once in the summary, with
/// what was proven instead, not as one `irreversible` note per migration.
#[test]
fn a_project_without_any_down_is_forward_only_in_one_summary_line() {
    let dir = folder(&[
        ("0001_a.sql", "create table a (id int);\n"),
        ("0002_b.sql", "alter table a add column b text;\n"),
    ]);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::OK, "{json}");
    assert_eq!(json["notes"].as_array().unwrap().len(), 0, "{json}");
    let line = json["summary"]["forward_only"].as_str().unwrap();
    assert!(
        line.starts_with("forward-only project") && line.contains("restoring a backup"),
        "{line}"
    );
    let human = migproof()
        .args(["check", "--backend", "url", "--database-url"])
        .arg(server_url())
        .arg("--migrations")
        .arg(dir.path())
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&human.stdout);
    assert_eq!(human.matches("forward-only project").count(), 1, "{human}");
    assert!(!human.contains("irreversible"), "{human}");
}

#[test]
fn json_document_has_the_documented_shape() {
    let (_, json) = check_json(&root().join("tests/fixtures/tiny"), &[]);
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["command"], "check");
    assert_eq!(json["migrations"], 2);
    assert!(json["findings"].is_array() && json["notes"].is_array());
    assert_eq!(json["summary"]["passed"], true);
    assert_eq!(json["summary"]["migrations_checked"], 2);
    assert!(json["summary"]["rows_seeded"].as_u64().unwrap() > 0);
}

/// One `<testcase>` of a JUnit report: its classname and name, and (type, message, text) of
/// each `<failure>`.
#[derive(Debug)]
struct TestCase {
    classname: String,
    name: String,
    failures: Vec<(String, String, String)>,
}

/// Runs `migproof check --format junit` on `dir`; returns the output, the `<testsuite>`'s
/// (tests, failures) and its test cases. Panics unless stdout is well-formed XML.
fn check_junit(dir: &std::path::Path) -> (std::process::Output, (String, String), Vec<TestCase>) {
    use quick_xml::events::{BytesStart, Event};
    let out = migproof()
        .args([
            "check",
            "--backend",
            "url",
            "--format",
            "junit",
            "--database-url",
        ])
        .arg(server_url())
        .arg("--migrations")
        .arg(dir)
        .output()
        .unwrap();
    let xml = String::from_utf8(out.stdout.clone()).expect("UTF-8");
    let attr = |e: &BytesStart, key: &str| -> String {
        let a = e
            .try_get_attribute(key)
            .unwrap()
            .unwrap_or_else(|| panic!("no {key} in {xml}"));
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .unwrap()
            .into_owned()
    };
    let mut reader = quick_xml::Reader::from_str(&xml);
    reader.config_mut().check_end_names = true;
    let (mut suite, mut cases, mut in_failure) =
        ((String::new(), String::new()), Vec::new(), false);
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed: {e}\n{xml}"))
        {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "testsuite" => {
                suite = (attr(&e, "tests"), attr(&e, "failures"));
            }
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "testcase" => {
                let (classname, name) = (attr(&e, "classname"), attr(&e, "name"));
                cases.push(TestCase {
                    classname,
                    name,
                    failures: Vec::new(),
                });
            }
            Event::Start(e) if e.name().as_ref() == "failure" => {
                let failure = (attr(&e, "type"), attr(&e, "message"), String::new());
                cases
                    .last_mut()
                    .expect("a failure inside a testcase")
                    .failures
                    .push(failure);
                in_failure = true;
            }
            Event::End(e) if e.name().as_ref() == "failure" => in_failure = false,
            Event::Text(t) if in_failure => {
                cases
                    .last_mut()
                    .unwrap()
                    .failures
                    .last_mut()
                    .unwrap()
                    .2
                    .push_str(&t.xml10_content());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (out, suite, cases)
}

#[test]
fn junit_report_has_a_case_per_migration_and_the_planted_bug_as_its_failure() {
    let bug = root().join("examples/bugs/down_keeps_index");
    let expect: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bug.join("expect.json")).unwrap()).unwrap();
    let (out, suite, cases) = check_junit(&bug.join("migrations"));
    assert_eq!(out.status.code(), code::FINDINGS, "{}", stderr(&out));
    assert_eq!(suite, ("3".to_string(), "1".to_string()), "{cases:#?}");
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "0001_create_orders",
            "0002_add_shipped_at",
            "0003_comment_orders"
        ]
    );
    assert!(
        cases.iter().all(|c| c.classname == "migproof.check"),
        "{cases:#?}"
    );
    let failing: Vec<&TestCase> = cases.iter().filter(|c| !c.failures.is_empty()).collect();
    assert_eq!(failing.len(), 1, "{cases:#?}");
    assert_eq!(failing[0].name, expect["migration"].as_str().unwrap());
    let (kind, message, text) = &failing[0].failures[0];
    assert_eq!(kind, expect["kind"].as_str().unwrap());
    assert!(
        message.starts_with(&format!("{}: ", expect["step"].as_str().unwrap())),
        "{message}"
    );
    assert!(
        text.contains("+index public.orders_customer_id_idx"),
        "the diff is in the text: {text}"
    );
}

#[test]
fn junit_report_of_a_passing_project_has_only_passing_cases() {
    let dir = root().join("examples/shop/migrations");
    let (out, suite, cases) = check_junit(&dir);
    assert_eq!(out.status.code(), code::OK, "{}", stderr(&out));
    let migrations = std::fs::read_dir(&dir).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".up.sql")
    });
    assert_eq!(cases.len(), migrations.count());
    assert_eq!(suite, (cases.len().to_string(), "0".to_string()));
    assert!(cases.iter().all(|c| c.failures.is_empty()), "{cases:#?}");
}

#[test]
fn snapshot_rejects_junit_naming_the_flag() {
    let out = migproof()
        .args(["snapshot", "--format", "junit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::USAGE);
    assert!(stderr(&out).contains("--format"), "{}", stderr(&out));
}

#[test]
fn check_jobs_give_the_same_report_in_parts_and_leave_no_database() {
    // 50 migrations: three parts of the stairway, with planted bugs in the second and third.
    let dir = tempfile::tempdir().unwrap();
    let w = |name: String, text: String| std::fs::write(dir.path().join(name), text).unwrap();
    for i in 1..=50 {
        let (up, down) = match i {
            30 => (
                format!("create table t{i} (id int primary key, v text);\ncreate index t{i}_v on t{i} (v);\n"),
                format!("drop index t{i}_v;\n"),
            ),
            45 => (
                "alter table t1 rename column v to label;\n".to_string(),
                "alter table t1 drop column label;\nalter table t1 add column v text;\n".to_string(),
            ),
            _ => (format!("create table t{i} (id int primary key, v text);\n"), format!("drop table t{i};\n")),
        };
        w(format!("{i:04}_m{i}.up.sql"), up);
        w(format!("{i:04}_m{i}.down.sql"), down);
    }
    let run = |jobs: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_migproof"));
        cmd.env("MIGPROOF_ALLOW_SUPERUSER", "1")
            .args([
                "check",
                "--backend",
                "url",
                "--format",
                "json",
                "--jobs",
                jobs,
            ])
            .arg("--database-url")
            .arg(server_url())
            .arg("--migrations")
            .arg(dir.path());
        let (out, pid) = output_and_pid(&mut cmd);
        let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
        let left = scratch_dbs_of(pid);
        assert!(left.is_empty(), "--jobs {jobs} left {left:?}");
        json["summary"]["duration_ms"] = 0.into();
        json
    };
    let serial = run("1");
    let kinds = findings(&serial);
    assert!(
        kinds.contains(&("schema_mismatch".into(), "0030_m30".into())),
        "{serial:#}"
    );
    assert!(
        kinds.contains(&("data_lost".into(), "0045_m45".into())),
        "{serial:#}"
    );
    assert_eq!(serial["summary"]["migrations_checked"], 50);
    assert_eq!(run("8"), serial, "the report does not depend on --jobs");
}

#[test]
fn declared_data_changes_and_ignored_tables_are_not_findings() {
    let example = root().join("examples/declared_changes/migrations");
    let (out, json) = check_json(&example, &[]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    // The same migrations without the declarations: the backfill and the audit rows show.
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&example).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "sql") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [(
            "data_changed".to_string(),
            "0002_normalize_emails".to_string()
        )]
    );
    let toml = dir.path().join("migproof.toml");
    std::fs::write(
        &toml,
        "[data.changes]\n\"0002_normalize_emails\" = [\"users.email\"]\n",
    )
    .unwrap();
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert!(
        json["findings"][0]["rows"]
            .to_string()
            .contains("public.user_audit"),
        "{json:#}"
    );
    // A declaration must name a migration of the folder, with keys migproof knows.
    for (text, says) in [
        (
            "[data.changes]\n\"0003_nope\" = [\"users.email\"]\n",
            "`0003_nope`",
        ),
        ("[data]\nignore_table = [\"x\"]\n", "ignore_table"),
        ("[data]\nignore_tables = \"x\"\n", "line 2"),
    ] {
        std::fs::write(&toml, text).unwrap();
        let out = check_dir(dir.path());
        assert_eq!(out.status.code(), code::USAGE, "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("migproof.toml") && err.contains(says),
            "{text}: {err}"
        );
    }
}

#[test]
fn setup_roles_are_created_in_our_cluster_only_and_grants_are_compared() {
    let role = format!("report_reader_{}", std::process::id());
    let toml = format!("[setup]\nroles = [\"{role}\"]\n");
    let up = format!("grant select on reports to {role};\n");
    let dir = folder(&[
        (
            "0001_t.up.sql",
            "create table reports (id int primary key, body text);\n",
        ),
        ("0001_t.down.sql", "drop table reports;\n"),
        ("0002_grant.up.sql", &up),
        ("0002_grant.down.sql", "select 1;\n"),
        ("migproof.toml", &toml),
    ]);
    let local = |dir: &std::path::Path| {
        let out = migproof().args(CHECK_LOCALLY).arg(dir).output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), json)
    };
    // The role is created in the throwaway cluster; the down that forgets to revoke is found.
    let (code, json) = local(dir.path());
    assert_eq!(code, code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("schema_mismatch".to_string(), "0002_grant".to_string())]
    );
    assert!(
        json["findings"][0]["diff"]
            .as_str()
            .unwrap()
            .contains(&format!("{role}=r/")),
        "{json:#}"
    );
    std::fs::write(
        dir.path().join("0002_grant.down.sql"),
        format!("revoke select on reports from {role};\n"),
    )
    .unwrap();
    let (code, json) = local(dir.path());
    assert_eq!(code, code::OK, "{json:#}");
    // On a server given by URL a missing role is not created: exit 3, naming it.
    let out = migproof()
        .args([
            "check",
            "--backend",
            "url",
            "--database-url",
            &server_url(),
            "--migrations",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::ENVIRONMENT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&role) && err.contains("migproof.toml"),
        "{err}"
    );
    let exists = sql(
        "postgres",
        &format!("SELECT rolname::text FROM pg_roles WHERE rolname = '{role}'"),
    );
    assert!(exists.is_empty(), "a role was created on the user's server");
}

#[test]
fn a_database_killed_before_its_marker_is_swept_by_name_and_a_look_alike_is_not() {
    // A run killed between CREATE DATABASE and its ownership comment leaves an unmarked
    // database; its name says which process on which host made it.
    let tag = migproof::backend::host_tag();
    let stale = format!("migproof_999999999_00ab12_h{tag}_0");
    let alive = format!("migproof_{}_00ab12_h{tag}_0", std::process::id());
    let users = format!("migproof_{}_reports", std::process::id());
    for db in [&stale, &alive, &users] {
        sql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
        sql("postgres", &format!("CREATE DATABASE {db}"));
    }
    let (out, json) = check_json(&root().join("tests/fixtures/tiny"), &[]);
    assert_eq!(out.status.code(), code::OK, "{json}");
    let exists = |db: &str| {
        !sql(
            "postgres",
            &format!("SELECT datname::text FROM pg_database WHERE datname = '{db}'"),
        )
        .is_empty()
    };
    assert!(
        !exists(&stale),
        "the dead process's unmarked database is swept"
    );
    assert!(exists(&alive), "a live process's database is kept");
    assert!(
        exists(&users),
        "a database that only looks like migproof's is kept"
    );
    for db in [&alive, &users] {
        sql("postgres", &format!("DROP DATABASE {db}"));
    }
}

/// An up that applies on an empty database but fails on particular seeded rows is a
/// `data_dependent` finding per cause, holding the fewest rows that still make it fail; the
/// rows are removed and the migration's down is still tested. `ADD COLUMN ... NOT NULL`
/// without a default fails on any row at all: it stays `apply_failed`.
#[test]
fn data_dependent_ups_are_shrunk_to_their_rows_and_their_downs_still_tested() {
    let dir = folder(&[
        (
            "0001_items.up.sql",
            "create table items (id serial primary key, grp int not null, owner int, \
             note text, code text);\n",
        ),
        ("0001_items.down.sql", "drop table items;\n"),
        (
            "0002_unique.up.sql",
            "alter table items add constraint items_grp unique (grp);\n",
        ),
        (
            "0002_unique.down.sql",
            "alter table items drop constraint items_grp;\n",
        ),
        (
            "0003_fk.up.sql",
            "create table owners (id int primary key);\n\
             alter table items add constraint items_owner foreign key (owner) references owners (id);\n",
        ),
        (
            "0003_fk.down.sql",
            "alter table items drop constraint items_owner;\ndrop table owners;\n",
        ),
        (
            "0004_not_null.up.sql",
            "alter table items alter column note set not null;\n",
        ),
        (
            "0004_not_null.down.sql",
            "alter table items alter column note drop not null;\n",
        ),
        (
            "0005_parse.up.sql",
            "alter table items alter column code type int using code::int;\n",
        ),
        (
            "0005_parse.down.sql",
            "alter table items alter column code type text;\n",
        ),
        (
            "0006_add_not_null.up.sql",
            "alter table items add column size int not null;\n",
        ),
        (
            "0006_add_not_null.down.sql",
            "alter table items drop column size;\n",
        ),
    ]);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let findings = json["findings"].as_array().unwrap();
    let up = |migration: &str| {
        findings
            .iter()
            .find(|f| f["migration"] == migration && f["step"] == "up with data")
            .unwrap_or_else(|| panic!("no finding for the up of {migration}: {json:#}"))
    };
    for (migration, sqlstate, cause, rows) in [
        (
            "0002_unique",
            "23505",
            "duplicate values under a new unique key",
            2,
        ),
        (
            "0003_fk",
            "23503",
            "values without a parent row under a new foreign key",
            1,
        ),
        ("0004_not_null", "23502", "NULLs under a new NOT NULL", 1),
    ] {
        let f = up(migration);
        assert_eq!(f["kind"], "data_dependent", "{f:#}");
        assert_eq!(f["place"]["sqlstate"], sqlstate, "{f:#}");
        assert_eq!(f["place"]["table"], "public.items", "{f:#}");
        let message = f["message"].as_str().unwrap();
        assert!(message.contains(cause), "{message}");
        assert!(
            message.contains(&format!("fails on {rows} of the")),
            "{message}"
        );
        assert_eq!(f["rows"].as_array().unwrap().len(), rows, "{f:#}");
    }
    // NULLs under SET NOT NULL: the row shown holds the NULL
    let null_row: serde_json::Value =
        serde_json::from_str(up("0004_not_null")["rows"][0].as_str().unwrap()).unwrap();
    assert!(null_row["note"].is_null(), "{null_row}");
    // text that does not parse: the server names no table; every seeded table was emptied
    let parse = up("0005_parse");
    assert_eq!(parse["kind"], "data_dependent", "{parse:#}");
    assert_eq!(parse["place"]["sqlstate"], "22P02", "{parse:#}");
    // any row at all: not data dependent
    let add = up("0006_add_not_null");
    assert_eq!(add["kind"], "apply_failed", "{add:#}");
    assert_eq!(add["place"]["column"], "size", "{add:#}");
    // every down but the one after the up that failed outright was run
    assert_eq!(json["summary"]["downs"], 6, "{json:#}");
    assert_eq!(json["summary"]["downs_tested"], 5, "{json:#}");
    let by_kind = &json["summary"]["by_kind"];
    assert_eq!(by_kind["data_dependent"], 4, "{json:#}");
}

/// An up that copies seeded rows into a table it creates, under a key they repeat, fails on
/// the new table: the finding names the table the rows came from (found by emptying each
/// seeded table in turn), not the first seeded table holding rows, and holds the fewest of
/// its rows that still fail.
#[test]
fn a_failure_on_a_table_the_up_fills_names_the_table_its_rows_came_from() {
    let dir = folder(&[
        (
            "0001_tables.up.sql",
            "create table archive (id serial primary key, note text);
             create table users (id serial primary key, active boolean not null);
",
        ),
        (
            "0001_tables.down.sql",
            "drop table users;
drop table archive;
",
        ),
        (
            "0002_flags.up.sql",
            "create table flags (active boolean primary key);
             insert into flags select active from users;
",
        ),
        (
            "0002_flags.down.sql",
            "drop table flags;
",
        ),
    ]);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("data_dependent".to_string(), "0002_flags".to_string())],
        "{json:#}"
    );
    // two rows with the same flag are the fewest that still fail
    let message = json["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("fails on 2 of the 9 seeded rows of public.users"),
        "{message}"
    );
}

/// A failure the server names no table for (a cast) on a child table's rows is blamed on the
/// child, not on its parent, whose emptying with `CASCADE` would also empty the child: tables
/// are emptied alone first.
#[test]
fn a_cast_failure_on_a_child_table_names_the_child_not_its_parent() {
    let dir = folder(&[
        (
            "0001_tables.up.sql",
            "create table accounts (id serial primary key, name text);
             create table invoices (id serial primary key,
                 account_id int not null references accounts (id), code text);
",
        ),
        (
            "0001_tables.down.sql",
            "drop table invoices;
drop table accounts;
",
        ),
        (
            "0002_code.up.sql",
            "alter table invoices alter column code type int using code::int;
",
        ),
        (
            "0002_code.down.sql",
            "alter table invoices alter column code type text;
",
        ),
    ]);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("data_dependent".to_string(), "0002_code".to_string())],
        "{json:#}"
    );
    let message = json["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("seeded rows of public.invoices"),
        "{message}"
    );
}

/// `check` on the crates.io history: the foreign-key, unique and SET NOT NULL failures on
/// seeded rows are `data_dependent` with their rows, a dropped table is `destructive` once,
/// and nearly every down is tested.
#[test]
fn check_on_the_crates_io_history_grades_data_dependent_ups_and_tests_the_downs() {
    let migrations = corpus("crates.io").join("migrations");
    let (out, json) = check_json(&migrations, &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{}", json["summary"]);
    let findings = json["findings"].as_array().unwrap();
    let up = |migration: &str| {
        findings
            .iter()
            .find(|f| f["migration"] == migration && f["step"] == "up with data")
            .unwrap_or_else(|| panic!("no finding for the up of {migration}"))
    };
    // `ALTER TABLE versions ADD CONSTRAINT unique_num UNIQUE (package_id, num)`
    let unique = up("20140924115329_dumped_migration_4");
    assert_eq!(unique["kind"], "data_dependent", "{unique:#}");
    assert_eq!(unique["place"]["sqlstate"], "23505", "{unique:#}");
    assert_eq!(unique["rows"].as_array().unwrap().len(), 2, "{unique:#}");
    // `ALTER TABLE crate_downloads ADD CONSTRAINT fk_crate_downloads_crate_id FOREIGN KEY ...`
    let fk = up("20141002222426_dumped_migration_49");
    assert_eq!(fk["kind"], "data_dependent", "{fk:#}");
    assert_eq!(fk["place"]["table"], "public.crate_downloads", "{fk:#}");
    // `alter table versions alter column checksum set not null`
    let not_null = up("2022-08-28-191319_non-null-checksum");
    assert_eq!(not_null["kind"], "data_dependent", "{not_null:#}");
    assert_eq!(not_null["place"]["column"], "checksum", "{not_null:#}");
    // `ALTER TABLE users ADD COLUMN gh_login VARCHAR NOT NULL`: fails on any row
    assert_eq!(
        up("20141001190227_dumped_migration_41")["kind"],
        "apply_failed"
    );
    // `DROP TABLE badges`: one destructive finding on the up, no data_lost on its down
    let badges = "2024-02-19-113226_delete-badges-table";
    assert_eq!(up(badges)["kind"], "destructive");
    assert!(
        findings
            .iter()
            .all(|f| f["migration"] != badges || f["kind"] != "data_lost"),
        "{findings:#?}"
    );
    // `trigger_crates_name_search()` reads `new.keywords`, which migration 77 adds: at 76 no
    // crate can be written (and rolling 77 back leaves production there); the one
    // `unwritable` finding of the history, among thousands of rows its own rules refused
    let unwritable: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["kind"] == "unwritable")
        .collect();
    assert_eq!(unwritable.len(), 1, "{unwritable:#?}");
    assert_eq!(
        unwritable[0]["migration"],
        "20141020175650_dumped_migration_76"
    );
    assert_eq!(unwritable[0]["place"]["sqlstate"], "42703");
    assert_eq!(unwritable[0]["place"]["table"], "public.crates");
    let (downs, tested) = (
        json["summary"]["downs"].as_u64().unwrap(),
        json["summary"]["downs_tested"].as_u64().unwrap(),
    );
    assert_eq!(downs, 280, "{}", json["summary"]);
    assert!(tested >= 270, "downs tested {tested}/{downs}");
}

/// An up that drops a column or a table holding values is one `destructive` finding on the
/// up (not a `data_lost` on the down, whose loss is inevitable); a rename, or a table rebuilt
/// under its name, is not a drop; a declaration under [data.changes] or `--allow-destructive`
/// makes it a note.
#[test]
fn an_up_dropping_values_is_one_destructive_finding_unless_declared() {
    let files = [
        (
            "0001_t.up.sql",
            "create table t (id serial primary key, a text, b text);\n",
        ),
        ("0001_t.down.sql", "drop table t;\n"),
        ("0002_drop_b.up.sql", "alter table t drop column b;\n"),
        ("0002_drop_b.down.sql", "alter table t add column b text;\n"),
        ("0003_old.up.sql", "create table old (id int);\n"),
        ("0003_old.down.sql", "drop table old;\n"),
        ("0004_drop_old.up.sql", "drop table old;\n"),
        ("0004_drop_old.down.sql", "create table old (id int);\n"),
        (
            "0005_rename.up.sql",
            "alter table t rename column a to a2;\n",
        ),
        (
            "0005_rename.down.sql",
            "alter table t rename column a2 to a;\n",
        ),
        ("0006_r.up.sql", "create table r (id int, v text);\n"),
        ("0006_r.down.sql", "drop table r;\n"),
        (
            "0007_rebuild_r.up.sql",
            "create table r2 (id int, v text);\ninsert into r2 select * from r;\n\
             drop table r;\nalter table r2 rename to r;\n",
        ),
        ("0007_rebuild_r.down.sql", "select 1;\n"),
    ];
    let dir = folder(&files);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [
            ("destructive".to_string(), "0002_drop_b".to_string()),
            ("destructive".to_string(), "0004_drop_old".to_string()),
        ],
        "{json:#}"
    );
    let column = json["findings"][0]["message"].as_str().unwrap();
    assert!(
        column.starts_with("the up drops column public.t.b, which held values in"),
        "{column}"
    );
    assert!(
        column.contains(r#"([data.changes] "0002_drop_b" = ["t.b"])"#),
        "{column}"
    );
    assert_eq!(json["findings"][0]["step"], "up with data");
    let table = json["findings"][1]["message"].as_str().unwrap();
    assert!(
        table.starts_with("the up drops table public.old and its"),
        "{table}"
    );

    // declared: a note for that migration
    let mut declared = files.to_vec();
    declared.push((
        "migproof.toml",
        "[data.changes]\n\"0004_drop_old\" = [\"old\"]\n",
    ));
    let dir = folder(&declared);
    let (_, json) = check_json(dir.path(), &[]);
    assert_eq!(
        findings(&json),
        [("destructive".to_string(), "0002_drop_b".to_string())],
        "{json:#}"
    );
    assert!(json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["kind"] == "destructive"
            && n["migration"] == "0004_drop_old"
            && n["message"]
                .as_str()
                .unwrap()
                .contains("declared under [data.changes]")));

    // allowed: notes only, the run passes
    let dir = folder(&files);
    let (out, json) = check_json(dir.path(), &["--allow-destructive"]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert_eq!(json["summary"]["downs_tested"], 7, "{json:#}");
}

/// Rows of a data finding are listed in key order, numeric key values compared as numbers.
#[test]
fn lost_rows_are_listed_with_numeric_keys_in_numeric_order() {
    let dir = folder(&[
        (
            "0001_t.up.sql",
            "create table t (id int primary key, v text);\n\
             insert into t select g, g::text from generate_series(1, 12) g;\n",
        ),
        ("0001_t.down.sql", "drop table t;\n"),
        ("0002_noop.up.sql", "select 1;\n"),
        ("0002_noop.down.sql", "delete from t where id <= 12;\n"),
    ]);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let rows = first_rows(&json);
    let expected: Vec<String> = (1..=12)
        .map(|i| format!("public.t(id={i}): row missing"))
        .collect();
    assert_eq!(rows, expected, "{json:#}");
}

/// A data-dependent up is accepted with the assumption written down (`[assume]` in
/// migproof.toml) or made a note by `--data-dependent warn`; its down is still tested. An
/// assumption for a migration that is not there exits 2 naming the file and line.
#[test]
fn data_dependent_ups_are_accepted_under_an_assumption_or_warn() {
    let files = [
        (
            "0001_items.up.sql",
            "create table items (id serial primary key, grp int not null);\n",
        ),
        ("0001_items.down.sql", "drop table items;\n"),
        (
            "0002_unique.up.sql",
            "alter table items add constraint items_grp unique (grp);\n",
        ),
        (
            "0002_unique.down.sql",
            "alter table items drop constraint items_grp;\n",
        ),
    ];
    let dir = folder(&files);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(json["findings"][0]["kind"], "data_dependent", "{json:#}");

    let mut assumed = files.to_vec();
    assumed.push((
        "migproof.toml",
        "[assume]\n\"0002_unique\" = \"grp is unique in production\"\n",
    ));
    let dir = folder(&assumed);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    let note = &json["notes"][0];
    assert_eq!(note["kind"], "data_dependent", "{json:#}");
    let message = note["message"].as_str().unwrap();
    assert!(
        message
            .contains("accepted under [assume] in migproof.toml: \"grp is unique in production\""),
        "{message}"
    );
    assert_eq!(json["summary"]["downs_tested"], 2, "{json:#}");

    let dir = folder(&files);
    let (out, json) = check_json(dir.path(), &["--data-dependent", "warn"]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert!(json["notes"][0]["message"]
        .as_str()
        .unwrap()
        .contains("--data-dependent warn"));

    let mut wrong = files.to_vec();
    wrong.push(("migproof.toml", "\n[assume]\n\"0003_gone\" = \"x\"\n"));
    let dir = folder(&wrong);
    let out = check_dir(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code::USAGE, "{err}");
    assert!(
        err.contains("migproof.toml")
            && err.contains("line 3: [assume] names `0003_gone`, which is not a migration here"),
        "{err}"
    );
}

/// A table of the project's own named like a migrator's history table is data: only the
/// history tables of an external migrator that applies the project are left out.
#[test]
fn a_projects_own_schema_migrations_table_is_compared_like_any_other() {
    let dir = common::folder(&[
        (
            "0001_create_schema_migrations.up.sql",
            "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, note text);\n",
        ),
        (
            "0001_create_schema_migrations.down.sql",
            "DROP TABLE schema_migrations;\n",
        ),
        (
            "0002_add_applied_by.up.sql",
            "ALTER TABLE schema_migrations ADD COLUMN applied_by text;\n",
        ),
        (
            "0002_add_applied_by.down.sql",
            "DELETE FROM schema_migrations;\nALTER TABLE schema_migrations DROP COLUMN applied_by;\n",
        ),
    ]);
    let (out, json) = common::check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{json:#}");
    assert_eq!(
        common::findings(&json),
        [("data_lost".to_string(), "0002_add_applied_by".to_string())]
    );
    assert!(json["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("public.schema_migrations"));
}

/// An up that renames a column and adds a new one under the old name keeps every value (in
/// the renamed column): data is followed by column identity, not by name.
#[test]
fn rename_then_add_under_the_old_name_is_not_a_loss() {
    let dir = common::folder(&[
        (
            "0001_create_people.up.sql",
            "CREATE TABLE people (id bigint PRIMARY KEY, nickname text);\n",
        ),
        ("0001_create_people.down.sql", "DROP TABLE people;\n"),
        (
            "0002_keep_nickname_as_legacy.up.sql",
            "ALTER TABLE people RENAME COLUMN nickname TO legacy_nickname;\n\
             ALTER TABLE people ADD COLUMN nickname text;\n",
        ),
        (
            "0002_keep_nickname_as_legacy.down.sql",
            "ALTER TABLE people DROP COLUMN nickname;\n\
             ALTER TABLE people RENAME COLUMN legacy_nickname TO nickname;\n",
        ),
    ]);
    let (out, json) = common::check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{json:#}");

    // dropping the column and adding it again under its name still loses its values
    std::fs::write(
        dir.path().join("0002_keep_nickname_as_legacy.down.sql"),
        "ALTER TABLE people DROP COLUMN nickname;\n\
         ALTER TABLE people DROP COLUMN legacy_nickname;\n\
         ALTER TABLE people ADD COLUMN nickname text;\n",
    )
    .unwrap();
    let (out, json) = common::check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{json:#}");
    assert!(common::findings(&json)
        .iter()
        .any(|(kind, m)| kind == "data_lost" && m == "0002_keep_nickname_as_legacy"));
}

/// `'now'::timestamp` in a view is frozen when the view is created; every part of the
/// stairway creates it at another time. That is a `creation_time_literal` note, not a
/// schema mismatch.
#[test]
fn a_creation_time_literal_in_a_view_is_a_note() {
    let dir = common::folder(&[
        (
            "0001_create_events.up.sql",
            "CREATE TABLE events (id bigint PRIMARY KEY, at timestamp NOT NULL);\n",
        ),
        ("0001_create_events.down.sql", "DROP TABLE events;\n"),
        (
            "0002_recent_events.up.sql",
            "SELECT pg_sleep(0.01);\nCREATE VIEW recent_events AS\n  SELECT * FROM events WHERE at > 'now'::timestamp;\n",
        ),
        ("0002_recent_events.down.sql", "DROP VIEW recent_events;\n"),
        ("0003_note.up.sql", "ALTER TABLE events ADD COLUMN note text;\n"),
        ("0003_note.down.sql", "ALTER TABLE events DROP COLUMN note;\n"),
    ]);
    let (out, json) = common::check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    let notes: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(notes.contains(&"creation_time_literal"), "{json:#}");
}

/// A view made with `SELECT *` lists its table's columns in the table's order; a down that
/// rebuilds a column moves it to the end, and the recreated view follows. Both are
/// `column_order` notes (findings under --strict), not a schema mismatch.
#[test]
fn a_select_star_view_following_its_tables_new_column_order_is_a_note() {
    let dir = common::folder(&[
        (
            "0001_create_t.up.sql",
            "CREATE TABLE t (id bigint PRIMARY KEY, b text, c text);\nCREATE VIEW v AS SELECT * FROM t;\n",
        ),
        ("0001_create_t.down.sql", "DROP VIEW v;\nDROP TABLE t;\n"),
        (
            "0002_b_varchar.up.sql",
            "DROP VIEW v;\nALTER TABLE t ALTER COLUMN b TYPE varchar;\nCREATE VIEW v AS SELECT * FROM t;\n",
        ),
        (
            "0002_b_varchar.down.sql",
            "DROP VIEW v;\nALTER TABLE t ADD COLUMN b_text text;\nUPDATE t SET b_text = b;\n\
             ALTER TABLE t DROP COLUMN b;\nALTER TABLE t RENAME COLUMN b_text TO b;\n\
             CREATE VIEW v AS SELECT * FROM t;\n",
        ),
    ]);
    let (out, json) = common::check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    assert!(json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["kind"] == "column_order"));
    let (out, json) = common::check_json(dir.path(), &["--strict"]);
    assert_eq!(out.status.code(), Some(1), "{json:#}");
}

/// The seeder writes what real text columns hold and tidy code forgets (a single word, an
/// empty string, only spaces), and `[seed]` in migproof.toml gives a column the project's own
/// values, row after row; a key that names no column of any version exits 2.
#[test]
fn seed_values_of_the_project_replace_the_seeders_and_a_typo_is_refused() {
    let example = root().join("examples/bugs/down_rebuild_joins_names_with_a_space/migrations");
    let read = |name: &str| std::fs::read_to_string(example.join(name)).unwrap();
    let names = [
        "0001_create_people.up.sql",
        "0001_create_people.down.sql",
        "0002_split_name.up.sql",
        "0002_split_name.down.sql",
    ];
    let texts: Vec<String> = names.iter().map(|n| read(n)).collect();
    let with_toml = |toml: &str| {
        let mut files: Vec<(&str, &str)> = names
            .iter()
            .copied()
            .zip(texts.iter().map(String::as_str))
            .collect();
        files.push(("migproof.toml", toml));
        folder(&files)
    };
    // The seeder's single-word and empty names show the bug.
    let (out, json) = check_json(&example, &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let rows = json["findings"][0]["rows"].to_string();
    assert!(rows.contains("'Ann' -> 'Ann '"), "{rows}");
    assert!(rows.contains("'' -> ' '"), "{rows}");
    // Names of two words only, as the project says its rows hold: the down round-trips them.
    let two_words = with_toml("[seed]\n\"people.name\" = [\"Grace Hopper\", \"Alan Turing\"]\n");
    let (out, json) = check_json(two_words.path(), &[]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    // A schema-qualified key, and a value the seeder never writes, found as it changes.
    let hyphen = with_toml("[seed]\n\"public.people.name\" = [\"Jean-Luc\"]\n");
    let (out, json) = check_json(hyphen.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    let rows = json["findings"][0]["rows"].to_string();
    assert!(rows.contains("'Jean-Luc' -> 'Jean-Luc '"), "{rows}");
    // A key naming no column of any version is bad input, named with its file.
    let typo = with_toml("[seed]\n\"people.nmae\" = [\"Ann\"]\n");
    let out = check_dir(typo.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code::USAGE, "{stderr}");
    assert!(
        stderr.contains("migproof.toml") && stderr.contains("`people.nmae`"),
        "{stderr}"
    );
    // A malformed key or an empty list is refused when the file is read, with its line.
    for (toml, what) in [
        ("[seed]\n\"name\" = [\"Ann\"]\n", "name a column as"),
        ("[seed]\n\"people.name\" = []\n", "no values"),
    ] {
        let bad = with_toml(toml);
        let out = check_dir(bad.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), code::USAGE, "{stderr}");
        assert!(
            stderr.contains("line 2") && stderr.contains(what),
            "{stderr}"
        );
    }
}

/// `migproof check DIR` reads as `migproof check -m DIR`, as a newcomer types it; giving both
/// is a usage error.
#[test]
fn the_folder_may_be_given_as_the_last_argument() {
    let dir = root().join("examples/bugs/typo_in_up/migrations");
    let out = migproof()
        .args(["check", "--format", "json"])
        .arg(&dir)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(json["source"]["dir"], dir.display().to_string());
    // an up that does not apply breaks the deploy
    assert_eq!(json["findings"][0]["severity"], "critical", "{json:#}");
    let out = migproof()
        .args(["snapshot", "-m"])
        .arg(&dir)
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code::USAGE, "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

/// A key changed through a type change shows as that change of its row, not as a row missing
/// and another added: `'A-17'` becoming `17` under a text-to-integer key.
#[test]
fn a_key_changed_by_a_type_change_shows_as_that_change() {
    let dir = folder(&[
        (
            "0001_codes.up.sql",
            "CREATE TABLE codes (code text PRIMARY KEY, label text NOT NULL);\n",
        ),
        ("0001_codes.down.sql", "DROP TABLE codes;\n"),
        (
            "0002_numeric_codes.up.sql",
            "ALTER TABLE codes ALTER COLUMN code TYPE int\n    \
             USING regexp_replace(code, '[^0-9]', '', 'g')::int;\n",
        ),
        (
            "0002_numeric_codes.down.sql",
            "ALTER TABLE codes ALTER COLUMN code TYPE text;\n",
        ),
        (
            "migproof.toml",
            "[seed]\n\"codes.code\" = [\"A-17\", \"B-18\", \"C-19\", \"D-20\", \"E-21\", \"F-22\", \
             \"G-23\", \"H-24\", \"I-25\"]\n",
        ),
    ]);
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("data_changed".to_string(), "0002_numeric_codes".to_string())],
        "{json:#}"
    );
    let rows = first_rows(&json);
    assert!(
        rows.contains(&"public.codes(code=A-17).code: 'A-17' -> '17'"),
        "{rows:#?}"
    );
    assert!(rows.iter().all(|r| !r.contains("row missing")), "{rows:#?}");
}

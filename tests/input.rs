//! Bad input is refused with exit 2, naming the file, folder or flag, before anything is run:
//! migrations that a migrator would skip without a word, and flags whose values would skip the
//! run or fill the server's disk.

mod common;
use common::code;

use std::path::Path;

use common::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `migproof check --source <format>` on `dir`, refused before any server is reached.
fn check_as(dir: &Path, format: &str) -> std::process::Output {
    migproof()
        .args(["check", "--source", format, "--migrations"])
        .arg(dir)
        .output()
        .unwrap()
}

fn assert_refused_naming(out: &std::process::Output, what: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), code::USAGE, "{err}");
    for w in what {
        assert!(err.contains(w), "names {w}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn folder_named_like_a_migration_file_is_refused_not_skipped() {
    // sqlx, golang-migrate, dbmate, Flyway, refinery and Liquibase read files: a folder named
    // like one of their migrations was skipped, and the run passed without it.
    // (layout, the files of its history, the name given to a folder)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "sqlx",
            &[("0001_a.up.sql", "create table a (id int);")],
            "0002_b.up.sql",
        ),
        (
            "golang-migrate",
            &[("0001_a.up.sql", "create table a (id int);")],
            "0002_b.up.sql",
        ),
        (
            "dbmate",
            &[(
                "0001_a.sql",
                "-- migrate:up\ncreate table a (id int);\n-- migrate:down\n",
            )],
            "0002_b.sql",
        ),
        (
            "flyway",
            &[("V1__a.sql", "create table a (id int);")],
            "V2__b.sql",
        ),
        (
            "refinery",
            &[("V1__a.sql", "create table a (id int);")],
            "V2__b.sql",
        ),
        (
            "liquibase",
            &[(
                "001.sql",
                "--liquibase formatted sql\n--changeset ann:1\ncreate table a (id int);\n",
            )],
            "002.sql",
        ),
    ];
    for (format, files, bad) in cases {
        let dir = folder(files);
        std::fs::create_dir(dir.path().join(bad)).unwrap();
        let out = check_as(dir.path(), format);
        assert_refused_naming(&out, &[bad, "is a folder, not a regular file"]);
    }
}

#[test]
fn dangling_symlink_named_like_a_migration_is_refused_not_skipped() {
    let dir = folder(&[("0001_a.up.sql", "create table a (id int);")]);
    std::os::unix::fs::symlink("gone.sql", dir.path().join("0002_b.up.sql")).unwrap();
    let out = check_dir(dir.path());
    assert_refused_naming(&out, &["0002_b.up.sql", "dangling symlink (to `gone.sql`)"]);
}

#[test]
fn fifo_named_like_a_migration_is_refused_not_skipped() {
    let dir = folder(&[("0001_a.up.sql", "create table a (id int);")]);
    nix::unistd::mkfifo(
        &dir.path().join("0002_b.up.sql"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let out = check_dir(dir.path());
    assert_refused_naming(&out, &["0002_b.up.sql", "is a FIFO"]);
}

#[test]
fn diesel_migration_that_is_not_a_folder_is_refused_not_skipped() {
    // Diesel reads folders; a FIFO, a file or a dangling symlink with a migration's name was
    // skipped, as was a folder whose `up.sql` is itself not a file.
    let base: &[(&str, &str)] = &[("0001_a/up.sql", "create table a (id int);")];
    let dir = folder(base);
    nix::unistd::mkfifo(
        &dir.path().join("0002_b"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    assert_refused_naming(
        &check_as(dir.path(), "diesel"),
        &["0002_b", "FIFO, not a folder"],
    );

    let dir = folder(base);
    std::os::unix::fs::symlink("gone", dir.path().join("2024-01-01-000002_b")).unwrap();
    assert_refused_naming(
        &check_as(dir.path(), "diesel"),
        &["2024-01-01-000002_b", "dangling symlink"],
    );

    let dir = folder(&[base, &[("0002_b/up.sql/x", "")]].concat());
    assert_refused_naming(
        &check_as(dir.path(), "diesel"),
        &["0002_b/up.sql", "is a folder, not a regular file"],
    );

    let dir = folder(&[base, &[("0002_b/up.sql", "select 1;")]].concat());
    std::os::unix::fs::symlink("nowhere.sql", dir.path().join("0002_b/down.sql")).unwrap();
    assert_refused_naming(&check_as(dir.path(), "diesel"), &["0002_b/down.sql"]);
}

#[test]
fn diesel_up_sql_that_cannot_be_read_is_not_reported_as_missing() {
    // A symlink loop cannot be followed even by root: the error is the real one, naming the
    // file, not "has no `up.sql`".
    let dir = folder(&[("0001_a/up.sql", "create table a (id int);")]);
    std::fs::create_dir(dir.path().join("0002_b")).unwrap();
    let up = dir.path().join("0002_b/up.sql");
    std::os::unix::fs::symlink(&up, &up).unwrap();
    let out = check_as(dir.path(), "diesel");
    assert_refused_naming(&out, &["failed to read", "0002_b/up.sql"]);
    assert!(
        !stderr(&out).contains("has no `up.sql`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unreadable_diesel_folder_is_not_reported_as_missing_up_sql() {
    use std::os::unix::fs::PermissionsExt;
    let dir = folder(&[
        ("0001_a/up.sql", "create table a (id int);"),
        ("0002_b/up.sql", "select 1;"),
    ]);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let locked = dir.path().join("0002_b");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads a folder whatever its permissions: then run migproof as `nobody`.
    let out = if nix::unistd::geteuid().is_root() {
        std::process::Command::new("runuser")
            .args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_migproof")])
            .args(["check", "--source", "diesel", "--migrations"])
            .arg(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    } else {
        check_as(dir.path(), "diesel")
    };
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_refused_naming(&out, &["failed to read", "0002_b", "ermission denied"]);
    assert!(
        !stderr(&out).contains("has no `up.sql`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rows_above_the_maximum_exit_2_naming_the_flag() {
    // Unbounded, one run filled the server's disk with 55 GB. An unreachable URL makes a run
    // that wrongly gets past the flags fail fast instead of filling tables.
    let dir = folder(&[("0001_a.up.sql", "create table a (id int);")]);
    for (command, flag) in [("locks", "--rows"), ("check", "--lock-rows")] {
        let out = migproof()
            .args([command, "--backend", "url", "--database-url"])
            .arg("postgres://postgres@127.0.0.1:1/postgres")
            .args([flag, "10000001", "--migrations"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_refused_naming(&out, &[flag]);
        let help = migproof().args([command, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        assert!(help.contains("10000000"), "states the maximum: {help}");
    }
}

/// A tmpfs of `mb` megabytes mounted for the test, unmounted on drop.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(mb: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m,mode=1777"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn rows_that_cannot_fit_on_the_local_cluster_disk_exit_2_naming_the_flag() {
    let Some(disk) = SmallDisk::mount(120) else {
        // CI runs as root, where this must run; a developer's own account cannot mount.
        assert!(
            !nix::unistd::geteuid().is_root(),
            "root could not mount a small tmpfs"
        );
        eprintln!("skipped: mounting a small tmpfs needs root (CAP_SYS_ADMIN)");
        return;
    };
    let dir = folder(&[
        ("0001_a.up.sql", "create table a (id int);"),
        ("0002_b.up.sql", "alter table a add column b int;"),
    ]);
    for (command, args) in [
        ("locks", &["--rows", "10000000"][..]),
        ("check", &["--locks", "warn", "--lock-rows", "10000000"][..]),
    ] {
        let out = migproof()
            .args([command, "--backend", "local", "--migrations"])
            .arg(dir.path())
            .args(args)
            .env("TMPDIR", disk.0.path())
            .output()
            .unwrap();
        let flag = args[args.len() - 2];
        assert_refused_naming(&out, &[&format!("`{flag} 10000000` cannot fit"), "MB free"]);
    }
}

#[test]
fn malformed_database_url_exits_2_naming_where_it_came_from_without_the_password() {
    let dir = folder(&[("0001_a.up.sql", "create table a (id int);")]);
    for url in [
        "postgres://ann:hunter2secret@db.example:notaport/app",
        "mysql://ann:hunter2secret@db.example/app",
    ] {
        let out = migproof()
            .args(["check", "--backend", "url", "--database-url", url])
            .arg("--migrations")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_refused_naming(&out, &["--database-url", "is not a valid database URL"]);
        assert!(!stderr(&out).contains("hunter2secret"), "{}", stderr(&out));
        let out = migproof()
            .args(["check", "--backend", "url", "--migrations"])
            .arg(dir.path())
            .env("DATABASE_URL", url)
            .output()
            .unwrap();
        assert_refused_naming(&out, &["DATABASE_URL", "is not a valid database URL"]);
        assert!(!stderr(&out).contains("--database-url"), "{}", stderr(&out));
        assert!(!stderr(&out).contains("hunter2secret"), "{}", stderr(&out));
    }
}

#[test]
fn fuzz_with_zero_cases_exits_2_naming_the_flag() {
    // It used to exit 0 having tested nothing.
    let dir = folder(&[("0001_a.up.sql", "create table a (id int);")]);
    let out = migproof()
        .args(["fuzz", "--cases", "0", "--backend", "url", "--database-url"])
        .arg(server_url())
        .arg("--migrations")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_refused_naming(&out, &["--cases"]);
}

/// Another tool's marks in a folder read as sqlx: the whole file would run as the up (a goose
/// file's down with it) and the check would pass having tested nothing. Refused, naming the
/// file, the line and the mark, and a layout migproof reads is named as the --source to pass.
#[test]
fn a_foreign_tools_markers_are_refused_not_run_as_a_plain_script() {
    let cases = [
        (
            "goose",
            "-- +goose Up\nCREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);\n-- +goose Down\nDROP TABLE users;\n",
            1,
        ),
        (
            "sql-migrate",
            "-- +migrate Up\nCREATE TABLE users (id int);\n\n-- +migrate Down\nDROP TABLE users;\n",
            1,
        ),
        (
            "tern",
            "CREATE TABLE users (id int);\n---- create above / drop below ----\nDROP TABLE users;\n",
            2,
        ),
        (
            "dbmate",
            "-- migrate:up\nCREATE TABLE users (id int);\n-- migrate:down\nDROP TABLE users;\n",
            1,
        ),
        (
            "Drizzle",
            "CREATE TABLE users (id int);\n--> statement-breakpoint\nCREATE INDEX ON users (id);\n",
            2,
        ),
        (
            "Flyway placeholder",
            "-- made by ${user}: not a placeholder in a comment\nCREATE TABLE ${schema}.users (id int);\n",
            2,
        ),
        // With its `--liquibase formatted sql` header the folder is Liquibase's, and read so.
        (
            "Liquibase formatted SQL",
            "-- users\n--changeset ann:1\nCREATE TABLE users (id int);\n",
            2,
        ),
    ];
    for (tool, text, line) in cases {
        let dir = folder(&[
            ("20240101000000_users.up.sql", text),
            (
                "20240101000000_users.down.sql",
                "DROP TABLE IF EXISTS users;\n",
            ),
        ]);
        let out = check_dir(dir.path());
        assert_refused_naming(
            &out,
            &[
                "20240101000000_users.up.sql",
                &format!("line {line}"),
                &format!("a {tool} marker"),
            ],
        );
    }
    // A marker of a layout migproof reads says which --source reads it.
    let dir = folder(&[
        (
            "20240101000000_users.up.sql",
            "-- +goose Up\nCREATE TABLE users (id int);\n",
        ),
        ("20240101000000_users.down.sql", "DROP TABLE users;\n"),
    ]);
    assert_refused_naming(&check_dir(dir.path()), &["--source goose"]);
}

/// The goose file of issue 17, as goose writes it: read as goose, its up and its down run
/// apart and checked for real (a down that leaves the table behind is found), never passed
/// as one plain script.
#[test]
fn a_goose_file_is_read_as_goose_and_checked_for_real() {
    let good = folder(&[(
        "20240101000000_users.sql",
        "-- +goose Up\nCREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);\n-- +goose Down\nDROP TABLE users;\n",
    )]);
    let (out, json) = check_json(good.path(), &[]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert_eq!(json["source"]["format"], "goose");
    assert_eq!(json["summary"]["downs_tested"], 1, "{json:#}");
    let bug = folder(&[(
        "20240101000000_users.sql",
        "-- +goose Up\nCREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);\n-- +goose Down\nSELECT 1;\n",
    )]);
    let (out, json) = check_json(bug.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [(
            "schema_mismatch".to_string(),
            "20240101000000_users".to_string()
        )]
    );
}

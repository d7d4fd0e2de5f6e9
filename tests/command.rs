//! The external command source (`migproof.toml` `[command]`): migrations run by any tool.

mod common;
use common::code;

use common::*;

#[test]
fn psql_scripts_through_commands_pass() {
    let (out, json) = check_json(&root().join("examples/command/psql_scripts"), &[]);
    assert_eq!(out.status.code(), code::OK, "{json:#}");
    assert_eq!(json["source"]["format"], "command");
    assert_eq!(json["summary"]["migrations_checked"], 2);
}

/// In migproof's own cluster TCP needs a password (SCRAM): psql gets there with the one of
/// the role migproof made, whose verifier migproof computed itself.
#[test]
fn psql_scripts_reach_the_local_cluster_over_tcp_with_the_roles_password() {
    psql_scripts_pass_locally(&[], &[]);
}

/// `check --backend local` on the psql scripts example, with `env` and `args` added, passes.
fn psql_scripts_pass_locally(env: &[(&str, &std::ffi::OsStr)], args: &[&str]) {
    let out = migproof()
        .envs(env.iter().copied())
        .args(CHECK_LOCALLY)
        .arg(root().join("examples/command/psql_scripts"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        code::OK,
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_command_down_that_forgets_a_column_is_found() {
    let src = root().join("examples/command/psql_scripts");
    let dir = tempfile::tempdir().unwrap();
    for sub in ["up", "down"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(src.join("migproof.toml"), dir.path().join("migproof.toml")).unwrap();
    std::fs::write(dir.path().join("down/002_add_balance.sql"), "SELECT 1;\n").unwrap();
    let (out, json) = check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("schema_mismatch".to_string(), "002_add_balance".to_string())]
    );
}

#[test]
fn broken_migproof_toml_exits_2_naming_file_and_line() {
    let dir = folder(&[(
        "migproof.toml",
        "[command]\nversions = [\"1\"]\nup = [\"true\"]\ncolour = \"blue\"\n",
    )]);
    let out = check_dir(dir.path());
    assert_eq!(out.status.code(), code::USAGE);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("migproof.toml") && err.contains("line 4") && err.contains("colour"),
        "{err}"
    );
    let dir = folder(&[(
        "migproof.toml",
        "[command]\nversions = \"1\"\nup = [\"true\"]\n",
    )]);
    let out = check_dir(dir.path());
    assert_eq!(out.status.code(), code::USAGE);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "wrong type names its line: {err}");
}

#[test]
fn a_killed_migrator_whose_committed_residue_breaks_the_retry_is_found_by_fuzz_only() {
    let example = root().join("examples/fuzz/command_killed_retry_fails");
    let (out, json) = check_json(&example, &[]);
    assert_eq!(out.status.code(), code::OK, "check cannot see it: {json:#}");
    let regressions = tempfile::tempdir().unwrap();
    let (out, json) = fuzz_json(&example, regressions.path(), &["--cases", "15"]);
    assert_eq!(out.status.code(), code::FINDINGS, "{json:#}");
    assert_eq!(
        findings(&json),
        [("retry_failed".to_string(), "002_order_archive".to_string())]
    );
    let message = json["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("\"order_archive\" already exists"),
        "{message}"
    );
    // Any interruption that stops the script after its first statement committed gives it:
    // killing the migrator, or a lock_timeout that makes it exit.
    let sequence = json["findings"][0]["sequence"].to_string();
    assert!(
        sequence.contains("interrupt the next migration: ")
            && sequence.contains("retry the interrupted migrate (to 002_order_archive)"),
        "{sequence}"
    );
}

#[test]
fn killed_migrators_of_correct_scripts_are_no_false_alarm() {
    let regressions = tempfile::tempdir().unwrap();
    let (out, json) = fuzz_json(
        &root().join("examples/command/psql_scripts"),
        regressions.path(),
        &["--cases", "10"],
    );
    assert_eq!(out.status.code(), code::OK, "{json:#}");
}

/// The local backend keeps the data folder initdb made in its cache and copies it on the next
/// runs (initdb, wrapped here to count its runs, runs once); a copy still gets a password of
/// its own (psql reaches the copied cluster over TCP), and a kept folder found broken is made
/// again.
#[test]
fn the_local_cluster_is_copied_from_the_cache_after_the_first_initdb() {
    use std::os::unix::fs::PermissionsExt;

    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(|d| d.to_owned()))
        .expect("initdb on PATH");
    // A folder of binaries the cluster's user can enter: initdb counting its runs, the real
    // postgres.
    let tools = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tools.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let runs = tools.path().join("runs");
    std::fs::write(&runs, "").unwrap();
    std::fs::set_permissions(&runs, std::fs::Permissions::from_mode(0o666)).unwrap();
    let initdb = tools.path().join("initdb");
    std::fs::write(
        &initdb,
        format!(
            "#!/bin/sh\necho run >> '{}'\nexec '{}' \"$@\"\n",
            runs.display(),
            real.join("initdb").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&initdb, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(real.join("postgres"), tools.path().join("postgres")).unwrap();
    let path = std::env::join_paths(
        std::iter::once(tools.path().to_owned())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();

    let cache = tempfile::tempdir().unwrap();
    // What a run killed while keeping its copy left: removed by the next run that keeps one.
    let dead = (4_000_000..)
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let partial = cache
        .path()
        .join("clusters")
        .join(format!(".partial-{dead}"));
    std::fs::create_dir_all(partial.join("global")).unwrap();
    let run_as = |args: &[&str]| {
        psql_scripts_pass_locally(
            &[
                ("MIGPROOF_PG_CACHE", cache.path().as_os_str()),
                ("PATH", path.as_os_str()),
            ],
            args,
        )
    };
    let run = || run_as(&[]);
    let initdb_runs = || std::fs::read_to_string(&runs).unwrap().lines().count();
    let kept = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(cache.path().join("clusters"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    run();
    assert_eq!(initdb_runs(), 1);
    assert!(!partial.exists(), "a dead run's partial copy is removed");
    let folders = kept();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let control = folders[0].join("global").join("pg_control");
    assert!(control.is_file(), "{}", control.display());

    run();
    assert_eq!(initdb_runs(), 1, "the second cluster is a copy");
    assert_eq!(kept(), folders);
    // psql as the superuser, over TCP with the password this run set on its copy
    run_as(&["--migration-role", "superuser"]);
    assert_eq!(initdb_runs(), 1);

    std::fs::remove_file(&control).unwrap();
    run();
    assert_eq!(initdb_runs(), 2, "a broken kept folder is not copied");
    assert_eq!(kept(), folders);
    assert!(control.is_file(), "the broken folder was made again");
    run();
    assert_eq!(initdb_runs(), 2);
}

/// Without `TMPDIR`, the local cluster lives on the memory file system (`/dev/shm`) when it is
/// one with room to spare (4 GiB), else in the system's temporary folder; with `TMPDIR`, there.
#[test]
fn the_local_cluster_lives_in_memory_when_there_is_room() {
    use std::os::unix::fs::PermissionsExt;

    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("0001_slow.up.sql"),
        "CREATE TABLE t (id int);\nSELECT pg_sleep(0.3);\n",
    )
    .unwrap();
    std::fs::write(project.path().join("0001_slow.down.sql"), "DROP TABLE t;\n").unwrap();
    let roomy_shm = nix::sys::statfs::statfs("/dev/shm").is_ok_and(|fs| {
        fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC
            && fs.blocks_available() * (fs.block_size() as u64) >= 4 << 30
    });
    let chosen = tempfile::tempdir().unwrap();
    std::fs::set_permissions(chosen.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let system_tmp = std::path::PathBuf::from("/tmp");
    let cases = [
        (
            None,
            if roomy_shm {
                "/dev/shm".into()
            } else {
                system_tmp
            },
        ),
        (Some(chosen.path().to_owned()), chosen.path().to_owned()),
    ];
    for (tmpdir, want) in cases {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("migproof"));
        cmd.env_remove("TMPDIR")
            .env_remove("DATABASE_URL")
            .env("MIGPROOF_ALLOW_SUPERUSER", "1")
            .args(CHECK_LOCALLY)
            .arg(project.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(dir) = &tmpdir {
            cmd.env("TMPDIR", dir);
        }
        let mut child = cmd.spawn().unwrap();
        let pid = child.id().to_string();
        let mine = |home: &std::path::Path| {
            std::fs::read_dir(home)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("migproof-local-")
                        && std::fs::read_to_string(e.path().join("owner.pid"))
                            .is_ok_and(|p| p.trim() == pid)
                })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut found = false;
        while !found && std::time::Instant::now() < deadline {
            found = mine(&want);
            if !found {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let status = child.wait().unwrap();
        assert!(found, "no cluster of {pid} under {}", want.display());
        assert_eq!(status.code(), code::OK);
    }
}

//! The docker backend end to end: `check --backend docker` passes the shop and finds a planted
//! bug, `auto` picks it where no local binaries exist, the container is on the host's network,
//! and no container is left after a run, after an error, after Ctrl-C, or (swept by the next
//! run) after `kill -9`.
//!
//! These need a Docker engine and a PostgreSQL image (`MIGPROOF_DOCKER_IMAGE`, default
//! `postgres:<MIGPROOF_PG_VERSION or 16>`), so they are `#[ignore]`d: `cargo test` counts them
//! as ignored, never as passed. scripts/docker-backend-test.sh starts an engine, builds an
//! image without a registry and runs them (`--include-ignored`) with MIGPROOF_DOCKER_TESTS=1,
//! under which a missing engine is a failure; run by hand without an engine, each says on
//! stderr that it was skipped.

mod common;
use common::code;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use migproof::backend::docker::{self, LABEL_PID};
use migproof::backend::BackendKind;
use testcontainers::bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder,
};
use testcontainers::bollard::Docker;
use testcontainers::core::client::docker_client_instance;

/// A Docker engine that answered, with a runtime to talk to it.
struct Engine {
    runtime: tokio::runtime::Runtime,
    docker: Docker,
}

impl Engine {
    /// The engine, or `None` after saying on stderr that `test` is skipped (a failure under
    /// MIGPROOF_DOCKER_TESTS=1).
    fn or_skip(test: &str) -> Option<Engine> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answered = runtime.block_on(async {
            if !docker::engine_answers().await {
                return None;
            }
            docker_client_instance().await.ok()
        });
        match answered {
            Some(docker) => Some(Engine { runtime, docker }),
            None if std::env::var_os("MIGPROOF_DOCKER_TESTS").is_some_and(|v| v == "1") => {
                panic!("MIGPROOF_DOCKER_TESTS=1 but no Docker engine answers")
            }
            None => {
                // Straight to the stderr stream, past the test harness's output capture.
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped {test}: no Docker engine answers (scripts/docker-backend-test.sh \
                     starts one and runs these tests)"
                );
                None
            }
        }
    }

    /// Ids of the containers (running or not) that the migproof process `pid` started.
    fn containers_of(&self, pid: u32) -> Vec<String> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_PID}={pid}")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .runtime
            .block_on(self.docker.list_containers(Some(options)))
            .unwrap();
        list.into_iter().filter_map(|c| c.id).collect()
    }

    /// Waits until the migproof process `pid` has a running container, and returns its id.
    fn running_container_of(&self, pid: u32, child: &mut Child) -> String {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            for id in self.containers_of(pid) {
                let inspect = self.inspect(&id);
                if inspect.state.and_then(|s| s.running).unwrap_or(false) {
                    return id;
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("migproof exited ({status}) before its container ran");
            }
            assert!(
                Instant::now() < deadline,
                "no running container after 180 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn inspect(&self, id: &str) -> testcontainers::bollard::models::ContainerInspectResponse {
        self.runtime
            .block_on(
                self.docker
                    .inspect_container(id, None::<InspectContainerOptions>),
            )
            .unwrap()
    }
}

/// `migproof check --backend docker` on `dir`, started but not waited for.
fn spawn_check(dir: &Path, extra: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("migproof"))
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .args(["check", "--backend", "docker", "--migrations"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("migproof runs")
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A project whose only migration sleeps, so that a run can be interrupted mid-way.
fn slow_project() -> tempfile::TempDir {
    folder(&[
        (
            "0001_slow.up.sql",
            "CREATE TABLE t (id int); SELECT pg_sleep(60);",
        ),
        ("0001_slow.down.sql", "DROP TABLE t;"),
    ])
}

#[test]
#[ignore = "needs a Docker engine: scripts/docker-backend-test.sh runs it"]
fn shop_passes_in_a_container_and_leaves_none() {
    let Some(engine) = Engine::or_skip("shop_passes_in_a_container_and_leaves_none") else {
        return;
    };
    let child = spawn_check(
        &root().join("examples/shop/migrations"),
        &["--format", "json"],
    );
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let json = json_of(&out);
    assert_eq!(out.status.code(), code::OK, "{json:#}\n{}", stderr(&out));
    assert_eq!(json["backend"], "docker", "{json:#}");
    assert!(json["findings"].as_array().unwrap().is_empty(), "{json:#}");
    assert_eq!(
        engine.containers_of(pid),
        Vec::<String>::new(),
        "a container was left behind"
    );
}

#[test]
#[ignore = "needs a Docker engine: scripts/docker-backend-test.sh runs it"]
fn planted_bug_is_found_in_a_container() {
    let Some(engine) = Engine::or_skip("planted_bug_is_found_in_a_container") else {
        return;
    };
    let dir = root().join("examples/bugs/rename_down_drops_column/migrations");
    let child = spawn_check(&dir, &["--format", "json"]);
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let json = json_of(&out);
    assert_eq!(
        out.status.code(),
        code::FINDINGS,
        "{json:#}\n{}",
        stderr(&out)
    );
    let mut got = findings(&json);
    got.dedup();
    let want = (
        "data_lost".to_string(),
        "0002_rename_nickname_to_display_name".to_string(),
    );
    assert_eq!(got, [want], "{json:#}");
    assert_eq!(
        engine.containers_of(pid),
        Vec::<String>::new(),
        "a container was left behind"
    );
}

#[test]
#[ignore = "needs a Docker engine: scripts/docker-backend-test.sh runs it"]
fn container_is_on_the_host_network_and_ctrl_c_removes_it() {
    let Some(engine) = Engine::or_skip("container_is_on_the_host_network_and_ctrl_c_removes_it")
    else {
        return;
    };
    let project = slow_project();
    let mut child = spawn_check(project.path(), &[]);
    let pid = child.id();
    let id = engine.running_container_of(pid, &mut child);

    let inspect = engine.inspect(&id);
    let host_config = inspect.host_config.unwrap();
    assert_eq!(host_config.network_mode.as_deref(), Some("host"));
    let settings = inspect.network_settings.unwrap();
    let networks = settings.networks.unwrap_or_default();
    assert_eq!(
        networks.keys().collect::<Vec<_>>(),
        ["host"],
        "attached to other networks"
    );
    let addresses: Vec<String> = networks
        .into_values()
        .filter_map(|n| n.ip_address)
        .filter(|a| !a.is_empty())
        .collect();
    assert!(
        addresses.is_empty(),
        "the container has addresses of its own: {addresses:?}"
    );
    let cmd = inspect.config.unwrap().cmd.unwrap_or_default();
    assert!(
        cmd.iter().any(|a| a == "listen_addresses=127.0.0.1"),
        "{cmd:?}"
    );
    let port: u16 = cmd
        .iter()
        .find_map(|a| a.strip_prefix("port="))
        .expect("a port")
        .parse()
        .unwrap();

    // The server answers on the host's loopback address; then the run reaches the slow
    // migration within moments, and Ctrl-C lands in the middle of the check.
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), code::INTERRUPTED, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("scratch databases were dropped"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        engine.containers_of(pid),
        Vec::<String>::new(),
        "Ctrl-C left the container"
    );
}

#[test]
#[ignore = "needs a Docker engine: scripts/docker-backend-test.sh runs it"]
fn ctrl_c_while_the_container_starts_removes_it() {
    let Some(engine) = Engine::or_skip("ctrl_c_while_the_container_starts_removes_it") else {
        return;
    };
    let mut child = spawn_check(&root().join("examples/shop/migrations"), &[]);
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(180);
    while engine.containers_of(pid).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "migproof exited before its container existed"
        );
        assert!(Instant::now() < deadline, "no container after 180 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), code::INTERRUPTED, "{}", stderr(&out));
    assert_eq!(
        engine.containers_of(pid),
        Vec::<String>::new(),
        "Ctrl-C left the container"
    );
}

#[test]
#[ignore = "needs a Docker engine: scripts/docker-backend-test.sh runs it"]
fn next_run_removes_the_container_of_a_killed_run() {
    let Some(engine) = Engine::or_skip("next_run_removes_the_container_of_a_killed_run") else {
        return;
    };
    let project = slow_project();
    let mut killed = spawn_check(project.path(), &[]);
    let killed_pid = killed.id();
    engine.running_container_of(killed_pid, &mut killed);
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert_eq!(
        engine.containers_of(killed_pid).len(),
        1,
        "kill -9 cannot clean up"
    );

    let next = spawn_check(
        &root().join("examples/shop/migrations"),
        &["--format", "json"],
    );
    let out = next.wait_with_output().unwrap();
    assert_eq!(out.status.code(), code::OK, "{}", stderr(&out));
    assert_eq!(
        engine.containers_of(killed_pid),
        Vec::<String>::new(),
        "not swept"
    );
}

#[test]
#[ignore = "needs a Docker engine: scripts/docker-backend-test.sh runs it"]
fn wrong_version_exits_3_and_removes_the_container() {
    let Some(engine) = Engine::or_skip("wrong_version_exits_3_and_removes_the_container") else {
        return;
    };
    let options = docker::Options::from_env();
    let (name, tag) = options.image();
    let asked = options.pg_version - 1;
    let image = format!("{name}:{tag}");
    let child = spawn_check(
        &root().join("examples/shop/migrations"),
        &["--docker-image", &image, "--pg-version", &asked.to_string()],
    );
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), code::ENVIRONMENT, "{}", stderr(&out));
    let want = format!("runs PostgreSQL {}, not the {asked}", options.pg_version);
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert_eq!(
        engine.containers_of(pid),
        Vec::<String>::new(),
        "the error left the container"
    );
}

#[test]
#[ignore = "needs a Docker engine: scripts/docker-backend-test.sh runs it"]
fn library_harness_removes_its_container_on_drop() {
    let Some(engine) = Engine::or_skip("library_harness_removes_its_container_on_drop") else {
        return;
    };
    let dir = root().join("examples/shop/migrations");
    let harness = migproof::fuzz::Harness::new(&dir, BackendKind::Docker, None).expect("harness");
    assert_eq!(engine.containers_of(std::process::id()).len(), 1);
    // The server is dropped after the harness's runtime has returned: outside any runtime.
    drop(harness);
    assert_eq!(
        engine.containers_of(std::process::id()),
        Vec::<String>::new(),
        "left behind"
    );
}

#[test]
#[ignore = "needs a Docker engine: scripts/docker-backend-test.sh runs it"]
fn auto_uses_docker_where_no_local_binaries_exist() {
    let Some(engine) = Engine::or_skip("auto_uses_docker_where_no_local_binaries_exist") else {
        return;
    };
    // Hides this machine's PostgreSQL binaries in a mount namespace of the run's own.
    let hidden = Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success())
        && Path::new("/usr/lib/postgresql").is_dir();
    if !hidden {
        let _ = writeln!(
            std::io::stderr(),
            "skipped auto_uses_docker_where_no_local_binaries_exist: hiding the local binaries \
             needs root and `unshare`"
        );
        return;
    }
    let script = r#"mount -t tmpfs none /usr/lib/postgresql && exec "$0" "$@""#;
    let child = Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .arg(assert_cmd::cargo::cargo_bin("migproof"))
        .args(["check", "--format", "json", "--migrations"])
        .arg(root().join("examples/shop/migrations"))
        .env_remove("DATABASE_URL")
        .env("PATH", "/usr/bin:/bin")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `exec` keeps the pid: it is migproof's.
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let json = json_of(&out);
    assert_eq!(out.status.code(), code::OK, "{json:#}\n{}", stderr(&out));
    assert_eq!(json["backend"], "docker", "{json:#}");
    assert_eq!(
        engine.containers_of(pid),
        Vec::<String>::new(),
        "a container was left behind"
    );
}

/// Needs no engine: it points migproof at one that is not there.
#[test]
fn no_engine_exits_3_saying_what_to_do() {
    let out = migproof()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["check", "--backend", "docker", "--migrations"])
        .arg(root().join("examples/shop/migrations"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::ENVIRONMENT, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no Docker engine answers"), "{err}");
    assert!(err.contains("--backend local"), "{err}");
}

#[test]
fn pg_version_out_of_range_exits_2_naming_the_flag() {
    let out = migproof()
        .args(["check", "--backend", "docker", "--pg-version", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), code::USAGE, "{}", stderr(&out));
    assert!(stderr(&out).contains("--pg-version"), "{}", stderr(&out));
}

//! Shared helpers for end-to-end tests: run the real binary against the real PostgreSQL
//! server of the test machine (`MIGPROOF_TEST_URL`, default the local server on 5432).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

pub fn server_url() -> String {
    std::env::var("MIGPROOF_TEST_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A real history from the shared corpus (`crates.io`): `MIGPROOF_CORPUS`, else the
/// `shared/corpus` folder beside the checkout or beside one of its parents (the corpus is
/// read in place, never copied into the project). Panics when it is nowhere: a test that
/// needs it must not pass without it.
pub fn corpus(name: &str) -> PathBuf {
    let from_env = std::env::var_os("MIGPROOF_CORPUS").map(PathBuf::from);
    let beside = root()
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/corpus"))
        .chain([PathBuf::from("/work/shared/corpus")])
        .collect::<Vec<_>>();
    from_env
        .into_iter()
        .chain(beside)
        .map(|dir| dir.join(name))
        .find(|dir| dir.join("migrations").is_dir())
        .unwrap_or_else(|| {
            panic!("the {name} corpus is not here: set MIGPROOF_CORPUS to the folder holding it")
        })
}

pub fn migproof() -> Command {
    let mut cmd = Command::cargo_bin("migproof").expect("binary built");
    // The test server's role is a superuser; migproof applies migrations as a role of its own.
    cmd.env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .env("MIGPROOF_ALLOW_SUPERUSER", "1");
    cmd
}

/// `check` on the local backend with a JSON report; the migrations folder follows.
pub const CHECK_LOCALLY: [&str; 6] = [
    "check",
    "--backend",
    "local",
    "--format",
    "json",
    "--migrations",
];

/// Runs `migproof check --migrations dir` and nothing else: for input that must be refused
/// before any server is reached.
pub fn check_dir(dir: &Path) -> Output {
    migproof()
        .arg("check")
        .arg("--migrations")
        .arg(dir)
        .output()
        .expect("runs")
}

/// Runs `migproof check` on `dir` with the url backend and JSON output.
pub fn check_json(dir: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let out = migproof()
        .args([
            "check",
            "--backend",
            "url",
            "--format",
            "json",
            "--database-url",
        ])
        .arg(server_url())
        .arg("--migrations")
        .arg(dir)
        .args(extra)
        .output()
        .expect("runs");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

/// (kind, migration) of every finding.
pub fn findings(json: &serde_json::Value) -> Vec<(String, String)> {
    json["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["migration"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The `rows` of the first finding, as text.
pub fn first_rows(json: &serde_json::Value) -> Vec<&str> {
    json["findings"][0]["rows"]
        .as_array()
        .expect("rows array")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

/// Writes `files` (name, content) into a fresh temporary folder.
pub fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    dir
}

/// The test server's URL for `database`.
pub fn url_of(database: &str) -> String {
    let url = server_url();
    match url.rfind('/') {
        Some(i) => format!("{}/{}", &url[..i], database),
        None => url,
    }
}

/// Runs SQL on the test server's maintenance database with psql-free sqlx.
pub fn sql(database: &str, query: &str) -> Vec<Vec<Option<String>>> {
    let url = url_of(database);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(query.to_string()))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                    .collect()
            })
            .collect()
    })
}

/// A `migproof fuzz` command on the test server with seed 7 and JSON output, saving to
/// `regressions` (a std command, so that a test can learn its pid).
pub fn fuzz_command(dir: &Path, regressions: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_migproof"));
    cmd.env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .env("MIGPROOF_ALLOW_SUPERUSER", "1")
        .args([
            "fuzz",
            "--backend",
            "url",
            "--format",
            "json",
            "--seed",
            "7",
        ])
        .arg("--database-url")
        .arg(server_url())
        .arg("--migrations")
        .arg(dir)
        .arg("--regressions")
        .arg(regressions)
        .args(extra);
    cmd
}

/// `migproof fuzz` on the test server with seed 7 and a 90 s budget, saving to `regressions`.
pub fn fuzz_json(dir: &Path, regressions: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let out = fuzz_command(dir, regressions, &[&["--duration", "90s"], extra].concat())
        .output()
        .expect("runs");
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out, json)
}

/// Runs `cmd` with stdout captured; returns its output and its pid (scratch databases carry it).
pub fn output_and_pid(cmd: &mut std::process::Command) -> (Output, u32) {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let pid = child.id();
    (child.wait_with_output().expect("runs"), pid)
}

/// The scratch databases migproof process `pid` left on the test server.
pub fn scratch_dbs_of(pid: u32) -> Vec<Vec<Option<String>>> {
    sql(
        "postgres",
        &format!("SELECT datname::text FROM pg_database WHERE datname LIKE 'migproof\\_{pid}\\_%'"),
    )
}

/// migproof's exit codes (`migproof::cli::exit`), as `ExitStatus::code` returns them.
#[allow(dead_code)]
pub mod code {
    use migproof::cli::exit;

    pub const OK: Option<i32> = Some(exit::OK as i32);
    pub const FINDINGS: Option<i32> = Some(exit::FINDINGS as i32);
    pub const USAGE: Option<i32> = Some(exit::USAGE as i32);
    pub const ENVIRONMENT: Option<i32> = Some(exit::ENVIRONMENT as i32);
    pub const INTERRUPTED: Option<i32> = Some(exit::INTERRUPTED as i32);
}

/// `url` with a password in it, which the test server (trust) ignores and migproof must never
/// print.
pub fn with_password(url: &str) -> String {
    url.replacen("postgres@", "postgres:hunter2secret@", 1)
}

/// Runs a tool the tests use (psql, pg_dump) and fails the test with its stderr unless it
/// succeeded.
pub fn succeeded(cmd: &mut std::process::Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A database on the test server that a test fills from an SQL script (a staging copy, a
/// stand-in for production) and that migproof may only read; dropped with the value.
pub struct Planted {
    pub db: String,
}

impl Planted {
    /// `mp_<name>_<pid>`, made by running `script` with psql.
    pub fn plant(name: &str, script: &Path) -> Planted {
        let db = format!("mp_{name}_{}", std::process::id());
        sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        );
        sql("postgres", &format!("CREATE DATABASE {db}"));
        let planted = Planted { db };
        succeeded(
            std::process::Command::new("psql")
                .args(["-q", "-X", "-v", "ON_ERROR_STOP=1", "-d"])
                .arg(planted.url())
                .arg("-f")
                .arg(script),
        );
        planted
    }

    pub fn url(&self) -> String {
        url_of(&self.db)
    }

    /// Everything in it, schema and rows, as pg_dump writes it (without the random key of
    /// its `\restrict` lines).
    pub fn dump(&self) -> String {
        let out = succeeded(std::process::Command::new("pg_dump").arg(self.url()));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Planted {
    fn drop(&mut self) {
        sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
        );
    }
}

/// A server on `server_url()` (its role may be a superuser), a scratch database on it and a
/// session on that database, for tests that observe the database directly. `Server::cleanup`
/// drops the database.
pub async fn scratch_session() -> (
    migproof::backend::Server,
    migproof::backend::ScratchDb,
    migproof::executor::Session,
) {
    use migproof::backend::{docker, Access, BackendKind, Server};
    std::env::set_var("MIGPROOF_ALLOW_SUPERUSER", "1");
    let url = server_url();
    let server = Server::open(
        BackendKind::Url,
        Some(&url),
        &docker::Options::from_env(),
        None,
        Access::from_env(None),
    )
    .await
    .expect("server");
    let db = server.create().await.expect("scratch database");
    let session = migproof::executor::Session::open(&db, std::time::Duration::from_secs(60))
        .await
        .expect("session");
    (server, db, session)
}

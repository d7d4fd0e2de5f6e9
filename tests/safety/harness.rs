//! What the safety tests need beyond the shared helpers: running migproof as a real process
//! that can be signalled and measured, finding what it left behind (scratch databases, local
//! clusters, postgres processes), a throwaway PostgreSQL server the tests may stop and restart,
//! and byte-exact dumps of a user's database.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, User};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

/// The commands whose verdicts the safety properties compare (a planted bug is exit 1, a typo
/// exit 1, and so on), with the arguments that make a short run of each ([`command_args`]).
pub const COMMANDS: &[&str] = &["check"];

/// Every command that runs migrations on a server: interruptions, `kill -9` and clean-up are
/// proven for each.
pub const EVERY_COMMAND: &[&str] = &["check", "fuzz", "replay", "snapshot", "locks"];

/// Arguments that make `command` do a short, complete run on a migrations folder.
pub fn command_args(command: &str) -> Vec<String> {
    match command {
        "check" | "snapshot" => vec![],
        // Saved cases go to a folder of their own, never into the repository.
        "fuzz" => {
            let regressions =
                std::env::temp_dir().join(format!("mp-safety-regressions-{}", std::process::id()));
            vec![
                "--cases".into(),
                "2".into(),
                "--seed".into(),
                "7".into(),
                "--regressions".into(),
                regressions.display().to_string(),
            ]
        }
        "locks" => vec!["--rows".into(), "10".into()],
        // A saved case that fits any migrations folder: the golden pass applies them all,
        // then one step up and a verify.
        "replay" => {
            let case =
                std::env::temp_dir().join(format!("mp-safety-case-{}.json", std::process::id()));
            fs::write(
                &case,
                r#"{"format_version": 1, "migrations": "migrations", "source": "plain",
                    "seed": "0x7", "releases": [1], "steps": ["migrate_up", "verify"],
                    "finding": {"kind": "none", "migration": "", "message": "safety test"}}"#,
            )
            .unwrap();
            vec![case.display().to_string()]
        }
        other => panic!("no safety arguments known for `{other}`; add them here"),
    }
}

/// A migproof process started by a test; its output goes to files so it can never block on a
/// full pipe, and it is killed if the test panics.
pub struct Proc {
    pub child: Child,
    pub started: Instant,
    out: tempfile::TempDir,
    status: Option<ExitStatus>,
}

/// How a migproof run ended.
#[derive(Debug)]
pub struct Ended {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ended {
    /// stdout and stderr together, for searching.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub fn migproof_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_migproof"))
}

/// `migproof <args>` with the test environment: no DATABASE_URL, no colours.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(migproof_bin());
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .env("MIGPROOF_ALLOW_SUPERUSER", "1");
    cmd
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let out = tempfile::tempdir().unwrap();
        let stdout = fs::File::create(out.path().join("stdout")).unwrap();
        let stderr = fs::File::create(out.path().join("stderr")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        Proc {
            child,
            started: Instant::now(),
            out,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// Waits at most `limit` for the process to exit.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.status {
                return Some(status);
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                self.status = Some(status);
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn exited(&mut self) -> bool {
        self.wait_for(Duration::ZERO).is_some()
    }

    /// Waits for the process (at most `limit`, then kills it and fails) and reads its output.
    pub fn finish(mut self, limit: Duration) -> Ended {
        let status = match self.wait_for(limit) {
            Some(status) => status,
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "migproof did not exit within {limit:?}; output:\n{}",
                    self.output_so_far()
                );
            }
        };
        Ended {
            code: status.code(),
            stdout: fs::read_to_string(self.out.path().join("stdout")).unwrap_or_default(),
            stderr: fs::read_to_string(self.out.path().join("stderr")).unwrap_or_default(),
        }
    }

    pub fn output_so_far(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.out.path().join(f)).unwrap_or_default();
        format!("stdout:\n{}\nstderr:\n{}", read("stdout"), read("stderr"))
    }

    /// Polls the process's peak resident set size (VmHWM) until it exits; returns its output
    /// and the peak in KiB. Only migproof's own memory counts, not a local cluster's.
    pub fn finish_measuring_peak(mut self, limit: Duration) -> (Ended, u64) {
        let status_file = format!("/proc/{}/status", self.pid());
        let mut peak = 0;
        let deadline = Instant::now() + limit;
        while !self.exited() {
            if let Ok(status) = fs::read_to_string(&status_file) {
                if let Some(kb) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak = peak.max(kb);
                }
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        (self.finish(Duration::ZERO), peak)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs one SQL string against `options` and returns every row as text.
pub fn query(options: &PgConnectOptions, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = options.connect().await.map_err(|e| e.to_string())?;
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(rows
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                    .collect()
            })
            .collect())
    })
}

pub fn options(url: &str) -> PgConnectOptions {
    url.parse::<PgConnectOptions>().unwrap()
}

/// Scratch databases named after migproof process `pid` on the server at `url`.
pub fn scratch_dbs_of(url: &str, pid: u32) -> Vec<String> {
    let sql = format!(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'migproof\\_{pid}\\_%' ORDER BY 1"
    );
    query(&options(url), &sql)
        .unwrap()
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect()
}

/// True when a session of migproof process `pid` runs a statement containing `needle`.
pub fn running(url: &str, pid: u32, needle: &str) -> bool {
    let sql = format!(
        "SELECT count(*)::text FROM pg_stat_activity WHERE state = 'active' \
         AND datname LIKE 'migproof\\_{pid}\\_%' AND query LIKE '%{needle}%' \
         AND pid <> pg_backend_pid()"
    );
    query(&options(url), &sql)
        .map(|r| r[0][0].as_deref() != Some("0"))
        .unwrap_or(false)
}

/// A private temp dir for one test, used as migproof's TMPDIR so its local clusters
/// (`migproof-local-*`) can be found and no other run's are seen. World-traversable, since
/// the clusters inside run as the `postgres` user.
pub fn private_tmp() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("mp-safety-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The local cluster folders under `tmp`.
pub fn clusters(tmp: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("migproof-local-")
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Live (not zombie) processes whose command line or working folder lies under `path`:
/// a postmaster started with `-D <path>/...` and every backend (they run in the data folder).
pub fn processes_under(path: &Path) -> Vec<i32> {
    let needle = path.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if is_zombie(pid) {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let cwd = fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        if cmdline.contains(&needle) || cwd.starts_with(path) {
            out.push(pid);
        }
    }
    out
}

pub fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// True when `pid` runs and is not a zombie.
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

/// The postmaster of a local cluster folder, once it is ready: (pid, options to connect).
pub fn cluster_server(cluster: &Path) -> Option<(i32, PgConnectOptions)> {
    let pidfile = fs::read_to_string(cluster.join("data/postmaster.pid")).ok()?;
    let lines: Vec<&str> = pidfile.lines().collect();
    if lines.len() < 8 || lines[7].trim() != "ready" {
        return None;
    }
    let pid = lines[0].trim().parse().ok()?;
    let port = lines[3].trim().parse().ok()?;
    // Its socket: TCP needs the cluster's random password.
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .socket(cluster.join("socket"))
        .port(port)
        .username("postgres")
        .database("postgres");
    Some((pid, options))
}

/// A pid that surely belongs to no running process: one that just exited.
pub fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `postgres` user when the tests run as root (initdb and postgres refuse root).
fn cluster_user() -> Option<User> {
    nix::unistd::geteuid()
        .is_root()
        .then(|| User::from_name("postgres").unwrap().expect("postgres user"))
}

fn as_cluster_user(cmd: &mut Command) {
    if let Some(user) = cluster_user() {
        cmd.uid(user.uid.as_raw())
            .gid(user.gid.as_raw())
            .env("HOME", &user.dir);
    }
}

/// A PostgreSQL server a test starts, stops and restarts itself, on a free port, in a temp
/// folder. Dropping it stops it and removes the folder.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    child: Option<Child>,
    /// Processes [`PgServer::freeze`] stopped, continued by [`PgServer::thaw`] or on drop.
    frozen: Vec<i32>,
}

impl PgServer {
    pub fn start() -> PgServer {
        let bin = migproof::backend::local::binaries(None).expect("PostgreSQL binaries installed");
        let dir = private_tmp();
        let data = dir.path().join("data");
        let socket = dir.path().join("socket");
        for sub in [&data, &socket] {
            fs::create_dir(sub).unwrap();
            if let Some(user) = cluster_user() {
                nix::unistd::chown(sub.as_path(), Some(user.uid), Some(user.gid)).unwrap();
            }
            fs::set_permissions(sub, fs::Permissions::from_mode(0o700)).unwrap();
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync"]);
        initdb.stdout(Stdio::null()).stderr(Stdio::null());
        as_cluster_user(&mut initdb);
        assert!(initdb.status().unwrap().success(), "initdb failed");
        let mut server = PgServer {
            dir,
            bin,
            port: free_port(),
            child: None,
            frozen: Vec::new(),
        };
        server.start_again();
        server
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Starts the server (again) on the same port and data, and waits until it accepts
    /// connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut postgres = Command::new(self.bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path().join("socket"))
            .args([
                "-p",
                &self.port.to_string(),
                "-h",
                "127.0.0.1",
                "-c",
                "fsync=off",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.dir.path().join("server.log")).unwrap())
            .process_group(0);
        as_cluster_user(&mut postgres);
        self.child = Some(postgres.spawn().unwrap());
        let opts = options(&self.url());
        wait_until(
            Duration::from_secs(30),
            "the throwaway server to accept connections",
            || query(&opts, "SELECT 'ready'").is_ok(),
        );
    }

    /// Stops the server: `SIGTERM` smart, `SIGINT` fast, `SIGQUIT` immediate (a crash, with
    /// recovery at the next start). Waits for the postmaster to exit.
    pub fn stop(&mut self, signal: Signal) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), signal);
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Freezes the server, as a hung host or a stopped VM would: SIGSTOP to the postmaster,
    /// then to every process it started. Connections are still accepted by the kernel, and
    /// nothing answers them.
    pub fn freeze(&mut self) {
        let postmaster = self.pid().expect("running");
        kill(Pid::from_raw(postmaster), Signal::SIGSTOP).unwrap();
        self.frozen.push(postmaster);
        for child in children_of(postmaster) {
            if kill(Pid::from_raw(child), Signal::SIGSTOP).is_ok() {
                self.frozen.push(child);
            }
        }
    }

    /// Lets a frozen server go on.
    pub fn thaw(&mut self) {
        for pid in self.frozen.drain(..).rev() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }
}

/// The processes whose parent is `pid`, from /proc/*/stat.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // after the command name (in parentheses): state, then the parent's pid
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // A stopped postmaster would not hear the stop, and stopped backends would outlive it.
        self.thaw();
        self.stop(Signal::SIGQUIT);
    }
}

/// A byte-exact dump of database `db` on the test server: schema, data, sequence positions,
/// and (with `--create`) the database's own properties and comment.
pub fn dump(db: &str) -> Vec<u8> {
    let url = crate::common::server_url();
    let url = match url.rfind('/') {
        Some(i) => format!("{}/{}", &url[..i], db),
        None => url,
    };
    let mut cmd = Command::new("pg_dump");
    cmd.args(["--create", "--no-password", "-d", &url]);
    // pg_dump from 17.6/16.10/15.14/... writes a random `\restrict` key unless one is given.
    if pg_dump_has_restrict_key() {
        cmd.arg("--restrict-key=migproofsafetytest");
    }
    let out = cmd.output().expect("pg_dump runs");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pg_dump_has_restrict_key() -> bool {
    Command::new("pg_dump")
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--restrict-key"))
        .unwrap_or(false)
}

//! The real-history benchmark of issue 13 ("Fast on real histories"): `migproof check` and
//! `migproof fuzz` on the crates.io migration history (285 diesel migrations, 2014 to 2026),
//! against the check a user would script without migproof, on the same server.
//!
//!     cargo bench --bench real_history              (3 runs of each side, alternating; 10 min fuzz)
//!     cargo bench --bench real_history -- --quick   (1 run, 1 min fuzz; or MIGPROOF_BENCH_RUNS=1
//!                                                    and MIGPROOF_BENCH_SECS=N for the fuzz)
//!
//! The corpus is found as the end-to-end tests find it: `MIGPROOF_CORPUS`, else
//! `shared/corpus` beside the checkout or beside one of its parents, else
//! /work/shared/corpus; it must hold `crates.io/migrations`. It is read in place; only the
//! truncated histories of (2) are copies, in a temp dir.
//!
//! It prints three things:
//!
//! 1. **Ratio against the naive stairway.** The baseline creates a database and, for every
//!    migration in diesel's order, runs `pg_dump -s`, the up (`psql -v ON_ERROR_STOP=1 -1 -f
//!    up.sql`, without `-1` where `metadata.toml` turns the transaction off, as diesel does),
//!    `pg_dump -s`, the down, `pg_dump -s`, the up again, `pg_dump -s`, and compares
//!    before-up with after-down and after-up with after-up-again. It seeds no data. Some
//!    crates.io migrations do not round-trip under this check (a down that fails, a schema that
//!    differs): the baseline records them and goes on, doing the same work for every migration,
//!    and lists them after its first run. migproof runs its whole `check` (golden pass, seeded
//!    stairway, schema and data comparisons) through the release binary with the url backend;
//!    it exits 1 (crates.io has findings), and its JSON report must parse and count (nearly)
//!    every migration. Target: the baseline's median over migproof's median, at least 8x.
//! 2. **Cost per migration, first quarter against last quarter.** `check` on copies of the
//!    history cut after its first quarter (71 migrations) and after three quarters (214), timed
//!    in the same rounds as (1): the first quarter costs T(71)/71 per migration, the last
//!    (T(285) - T(214))/71, with T(285) migproof's median from (1). Target: the last quarter
//!    costs at most 1.5x the first.
//! 3. **Fuzz throughput.** `migproof fuzz` on the whole history for 10 minutes, as the
//!    target says (`--jobs 2 --seed 11`, one run): cases, cases per minute of the run's wall
//!    time (shrinking a failure may run past the budget) and steps per second. Target: 100
//!    cases in 10 minutes, extrapolated from the run when it is shorter (`--quick`: 1 minute,
//!    which a failure's shrinking fills: a rough figure).
//!
//! Server: as the issue measured it, a tuned throwaway cluster (`fsync`, `synchronous_commit`,
//! `full_page_writes` and `autovacuum` off) that the bench starts from the newest
//! /usr/lib/postgresql/*/bin (as the `postgres` user when run as root) in a temp dir, on a free
//! port of 127.0.0.1 with its socket in that dir, and stops and removes when it ends, also on
//! a panic or a failure (Ctrl-C reaches the server too, but leaves the temp dir). Where it
//! cannot start, the bench says so and uses the server on 127.0.0.1:5432 (user postgres, no
//! password) instead. Both sides connect by TCP without TLS: migproof does so by default on a
//! loopback URL, and the baseline's psql and pg_dump get `PGSSLMODE=disable`. The temp dir
//! follows `TMPDIR`: `TMPDIR=/dev/shm` puts the cluster on a memory file system, as
//! migproof's local backend does by default, where making and deleting files (every database
//! is hundreds of them) costs far less than on a disk's file system; the bench prints which
//! folder it used.
//!
//! The process exits nonzero only when something fails to run; a missed target is printed,
//! not failed.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HOST: &str = "127.0.0.1";
const FALLBACK_PORT: u16 = 5432;
const USER: &str = "postgres";
const CORPUS: &str = "crates.io";
const TARGET_RATIO: f64 = 8.0;
/// Cost per migration of the last quarter over the first, at most.
const TARGET_GROWTH: f64 = 1.5;
/// Fuzz cases in 10 minutes, at least.
const TARGET_CASES_PER_10_MIN: f64 = 100.0;
const FUZZ_SEED: &str = "11";
const RESTRICT_KEY: &str = "migproofbench";
/// The settings of the "tuned cluster (fsync off)".
const TUNED: &[&str] = &[
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "autovacuum=off",
];

/// The crates.io corpus, found as tests/common/mod.rs `corpus()` finds it.
fn corpus() -> Result<PathBuf, String> {
    let from_env = std::env::var_os("MIGPROOF_CORPUS").map(PathBuf::from);
    let beside = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/corpus"))
        .chain([PathBuf::from("/work/shared/corpus")]);
    from_env
        .into_iter()
        .chain(beside)
        .map(|dir| dir.join(CORPUS))
        .find(|dir| dir.join("migrations").is_dir())
        .ok_or_else(|| {
            format!(
                "the {CORPUS} corpus is not here (looked in MIGPROOF_CORPUS, `shared/corpus` \
                 beside the checkout and its parents, and /work/shared/corpus): set \
                 MIGPROOF_CORPUS to the folder holding `{CORPUS}/migrations`"
            )
        })
}

/// One diesel migration folder, as the baseline applies it.
struct Migration {
    name: String,
    dir: PathBuf,
    /// `psql -1`: diesel wraps both files in a transaction unless `metadata.toml` says
    /// otherwise (a `metadata.toml` without `run_in_transaction` means no transaction too).
    transaction: bool,
}

/// The migration folders of `dir` in diesel's order: the version (the name up to its first
/// `_`) with every `-` removed, compared as a string.
fn migrations(dir: &Path) -> Result<Vec<Migration>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("failed to read `{}`: {e}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("failed to read `{}`: {e}", dir.display()))?
            .path();
        if !path.join("up.sql").is_file() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("`{}` is not a UTF-8 folder name", path.display()))?
            .to_owned();
        let metadata = path.join("metadata.toml");
        let transaction = match std::fs::read_to_string(&metadata) {
            Err(_) => true,
            Ok(text) => {
                let table: toml::Table = text
                    .parse()
                    .map_err(|e| format!("failed to parse `{}`: {e}", metadata.display()))?;
                table
                    .get("run_in_transaction")
                    .and_then(toml::Value::as_bool)
                    .unwrap_or(false)
            }
        };
        found.push(Migration {
            name,
            dir: path,
            transaction,
        });
    }
    let key = |m: &Migration| {
        let version = m.name.split_once('_').map_or(m.name.as_str(), |(v, _)| v);
        (version.replace('-', ""), m.name.clone())
    };
    found.sort_by_key(key);
    Ok(found)
}

/// A copy of the history cut after its first `keep` migrations: those folders, and the files
/// beside them (README, migproof.toml if any), in `<into>/migrations`.
fn truncated_copy(
    source: &Path,
    all: &[Migration],
    keep: usize,
    into: &Path,
) -> Result<PathBuf, String> {
    let dest = into.join("migrations");
    let copy = |from: &Path, to: &Path| {
        std::fs::copy(from, to)
            .map(drop)
            .map_err(|e| format!("failed to copy `{}`: {e}", from.display()))
    };
    let mkdir = |dir: &Path| {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("failed to create `{}`: {e}", dir.display()))
    };
    mkdir(&dest)?;
    let entries = std::fs::read_dir(source)
        .map_err(|e| format!("failed to read `{}`: {e}", source.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            copy(&path, &dest.join(entry.file_name()))?;
        }
    }
    for m in &all[..keep] {
        let to = dest.join(&m.name);
        mkdir(&to)?;
        for file in ["up.sql", "down.sql", "metadata.toml"] {
            if m.dir.join(file).is_file() {
                copy(&m.dir.join(file), &to.join(file))?;
            }
        }
    }
    Ok(dest)
}

/// The PostgreSQL programs of the newest /usr/lib/postgresql/*/bin, else those on PATH. The
/// direct binaries skip Debian's Perl `pg_wrapper`, which would only slow the baseline down.
struct Tools {
    bin: Option<PathBuf>,
    /// This pg_dump knows `--restrict-key` (without it, recent ones write a random
    /// `\restrict` line and no two dumps are equal).
    restrict_key: bool,
}

impl Tools {
    fn find() -> Result<Tools, String> {
        let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("pg_dump").is_file().then_some((version, bin))
            })
            .collect();
        dirs.sort();
        let mut tools = Tools {
            bin: dirs.pop().map(|(_, bin)| bin),
            restrict_key: false,
        };
        let help = run(
            Command::new(tools.program("pg_dump")).arg("--help"),
            "pg_dump --help",
        )?;
        tools.restrict_key = String::from_utf8_lossy(&help.stdout).contains("--restrict-key");
        Ok(tools)
    }

    fn program(&self, name: &str) -> PathBuf {
        match &self.bin {
            Some(bin) => bin.join(name),
            None => name.into(),
        }
    }

    fn psql(&self, port: u16, db: &str) -> Command {
        let mut cmd = Command::new(self.program("psql"));
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-U", USER])
            .args(["-p", &port.to_string(), "-d", db])
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .env("PGSSLMODE", "disable");
        cmd
    }

    fn dump(&self, port: u16, db: &str) -> Result<Vec<u8>, String> {
        let mut cmd = Command::new(self.program("pg_dump"));
        cmd.args(["-s", "-h", HOST, "-U", USER, "-d", db])
            .args(["-p", &port.to_string()])
            .env("PGSSLMODE", "disable");
        if self.restrict_key {
            cmd.arg(format!("--restrict-key={RESTRICT_KEY}"));
        }
        Ok(run(&mut cmd, &format!("pg_dump -s {db}"))?.stdout)
    }

    /// Applies one file; `Ok(Err(line))` is the file failing (psql's first error line), which
    /// the baseline records, `Err` is psql failing to run at all.
    fn apply(
        &self,
        port: u16,
        db: &str,
        m: &Migration,
        file: &str,
    ) -> Result<Result<(), String>, String> {
        let mut cmd = self.psql(port, db);
        if m.transaction {
            cmd.arg("-1");
        }
        cmd.arg("-f").arg(m.dir.join(file));
        let out = cmd
            .output()
            .map_err(|e| format!("failed to start psql: {e}"))?;
        if out.status.success() {
            return Ok(Ok(()));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.contains("ERROR"))
            .or_else(|| stderr.lines().next())
            .unwrap_or("no message");
        Ok(Err(line.to_owned()))
    }
}

/// Runs a command to completion; a failure carries its output.
fn run(cmd: &mut Command, what: &str) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("failed to start `{what}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{what}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

/// The throwaway tuned cluster: a postgres child process over a temp dir. Dropping it stops
/// the server (fast shutdown, then a kill) before the temp dir is removed.
struct Cluster {
    server: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(tools: &Tools) -> Result<Cluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("migproof-bench-cluster-")
            .tempdir()
            .map_err(|e| format!("failed to create a temp dir: {e}"))?;
        // initdb and postgres refuse to run as root: they run as `postgres`, which must own
        // the temp dir.
        let owner = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name(USER)
                .ok()
                .flatten()
                .ok_or("running as root and there is no `postgres` user to run the server as")?;
            std::os::unix::fs::chown(dir.path(), Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .map_err(|e| format!("failed to give the temp dir to `postgres`: {e}"))?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let as_owner = |program: &str| {
            let mut cmd = Command::new(tools.program(program));
            cmd.current_dir(dir.path());
            if let Some((uid, gid)) = owner {
                std::os::unix::process::CommandExt::uid(&mut cmd, uid);
                std::os::unix::process::CommandExt::gid(&mut cmd, gid);
            }
            cmd
        };
        let data = dir.path().join("data");
        run(
            as_owner("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", USER, "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"])
                .arg("--no-sync"),
            "initdb",
        )?;
        let port = TcpListener::bind((HOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("failed to find a free port: {e}"))?
            .port();
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path).map_err(|e| format!("failed to create the log: {e}"))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("failed to open the log: {e}"))?;
        let mut cmd = as_owner("postgres");
        cmd.arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                &format!("listen_addresses={HOST}"),
            ])
            .arg("-k")
            .arg(dir.path());
        for setting in TUNED {
            cmd.args(["-c", setting]);
        }
        let server = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("failed to start postgres: {e}"))?;
        let mut cluster = Cluster { server, port, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Ok(Some(status)) = cluster.server.try_wait() {
                return Err(format!("postgres exited with {status}:\n{}", log()));
            }
            let ready = tools
                .psql(port, "postgres")
                .args(["-c", "select 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(cluster);
            }
            if Instant::now() > deadline {
                return Err(format!("postgres did not answer within 60s:\n{}", log()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.server.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.server.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        // `dir` goes after this, by its own Drop, with the server stopped.
    }
}

/// The baseline's own database; dropped when the run ends, however it ends.
struct BaselineDb<'a> {
    tools: &'a Tools,
    port: u16,
    name: String,
    dropped: bool,
}

impl<'a> BaselineDb<'a> {
    fn create(tools: &'a Tools, port: u16) -> Result<BaselineDb<'a>, String> {
        let name = format!("migproof_bench_baseline_{}", std::process::id());
        let db = BaselineDb {
            tools,
            port,
            name,
            dropped: false,
        };
        db.admin(&format!("DROP DATABASE IF EXISTS {}", db.name))?;
        db.admin(&format!("CREATE DATABASE {}", db.name))?;
        Ok(db)
    }

    fn admin(&self, sql: &str) -> Result<(), String> {
        run(
            self.tools.psql(self.port, "postgres").args(["-c", sql]),
            sql,
        )
        .map(drop)
    }

    /// Drops the database as part of the timed run, reporting a failure.
    fn drop_now(mut self) -> Result<(), String> {
        self.dropped = true;
        self.admin(&format!("DROP DATABASE {}", self.name))
    }
}

impl Drop for BaselineDb<'_> {
    fn drop(&mut self) {
        if !self.dropped {
            let _ = self.admin(&format!("DROP DATABASE IF EXISTS {}", self.name));
        }
    }
}

/// What the naive check says about one migration.
enum Problem {
    UpFailed(String),
    DownFailed(String),
    UpAgainFailed(String),
    /// Judged only when the up and the down both applied.
    DownDiffers,
    /// Judged only when the up, the down and the up again all applied.
    UpAgainDiffers,
}

impl Problem {
    const KINDS: [&'static str; 5] = [
        "up failed",
        "down failed",
        "up again failed",
        "schema after down differs",
        "schema after up again differs",
    ];

    fn kind(&self) -> usize {
        match self {
            Problem::UpFailed(_) => 0,
            Problem::DownFailed(_) => 1,
            Problem::UpAgainFailed(_) => 2,
            Problem::DownDiffers => 3,
            Problem::UpAgainDiffers => 4,
        }
    }

    fn describe(&self) -> String {
        let kind = Self::KINDS[self.kind()];
        match self {
            Problem::UpFailed(e) | Problem::DownFailed(e) | Problem::UpAgainFailed(e) => {
                format!("{kind}: {e}")
            }
            _ => kind.to_owned(),
        }
    }
}

/// The scripted check: schema-only round trips with pg_dump, no data. Every migration gets
/// the same four dumps and three psql runs, whatever failed before it.
fn baseline(
    tools: &Tools,
    port: u16,
    all: &[Migration],
) -> Result<(Duration, Vec<(String, Problem)>), String> {
    let started = Instant::now();
    let db = BaselineDb::create(tools, port)?;
    let mut problems = Vec::new();
    for m in all {
        let before = tools.dump(port, &db.name)?;
        let up = tools.apply(port, &db.name, m, "up.sql")?;
        let after_up = tools.dump(port, &db.name)?;
        let down = tools.apply(port, &db.name, m, "down.sql")?;
        let after_down = tools.dump(port, &db.name)?;
        let up_again = tools.apply(port, &db.name, m, "up.sql")?;
        let after_up_again = tools.dump(port, &db.name)?;
        let mut note = |p: Problem| problems.push((m.name.clone(), p));
        match (up, down, up_again) {
            (Err(e), _, _) => note(Problem::UpFailed(e)),
            (Ok(()), Err(e), _) => note(Problem::DownFailed(e)),
            (Ok(()), Ok(()), up_again) => {
                if before != after_down {
                    note(Problem::DownDiffers);
                }
                match up_again {
                    Err(e) => note(Problem::UpAgainFailed(e)),
                    Ok(()) if after_up != after_up_again => note(Problem::UpAgainDiffers),
                    Ok(()) => {}
                }
            }
        }
    }
    db.drop_now()?;
    Ok((started.elapsed(), problems))
}

/// Counts of the baseline's problems by kind, e.g. `down failed 3, ...`.
fn problem_counts(problems: &[(String, Problem)]) -> String {
    let mut counts = [0usize; Problem::KINDS.len()];
    for (_, p) in problems {
        counts[p.kind()] += 1;
    }
    Problem::KINDS
        .iter()
        .zip(counts)
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn url(port: u16) -> String {
    format!("postgres://{USER}@{HOST}:{port}/postgres")
}

/// Runs the release binary; exit 0 or 1 (findings) with a JSON report on stdout is a run,
/// anything else is an error. Returns the wall time and the report's summary.
fn migproof(args: &[&str], what: &str) -> Result<(Duration, serde_json::Value), String> {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_migproof"))
        .env("MIGPROOF_ALLOW_SUPERUSER", "1")
        .env_remove("DATABASE_URL")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("failed to start migproof: {e}"))?;
    let wall = started.elapsed();
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(format!(
            "`migproof {what}` exited with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("`migproof {what}` printed no JSON report: {e}"))?;
    Ok((wall, report["summary"].clone()))
}

/// `migproof check` on `dir` of `expected` migrations; a report that counts fewer than 90% of
/// them means the run broke off, an error.
fn check(dir: &Path, port: u16, expected: usize) -> Result<(Duration, u64), String> {
    let dir = dir.to_str().ok_or("the corpus path is not UTF-8")?;
    let url = url(port);
    let (wall, summary) = migproof(
        &[
            "check",
            "-m",
            dir,
            "--backend",
            "url",
            "--database-url",
            &url,
            "--format",
            "json",
        ],
        "check",
    )?;
    let checked = summary["migrations_checked"].as_u64().unwrap_or(0);
    if (checked as f64) < expected as f64 * 0.9 {
        return Err(format!(
            "migproof checked {checked} of {expected} migrations in `{dir}`"
        ));
    }
    Ok((wall, checked))
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2
    }
}

fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// How many runs of each side: `--quick` is 1, else `MIGPROOF_BENCH_RUNS`, else 3. (Cargo
/// passes `--bench` to every bench binary; other arguments are ignored.)
fn runs() -> Result<usize, String> {
    if quick() {
        return Ok(1);
    }
    match std::env::var("MIGPROOF_BENCH_RUNS") {
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "MIGPROOF_BENCH_RUNS must be a positive number, not `{v}`"
            )),
        },
        Err(_) => Ok(3),
    }
}

/// The fuzz run's length the target is stated for: a run this long counts its cases.
const TARGET_FUZZ_SECS: u64 = 600;

/// Seconds of fuzzing: `MIGPROOF_BENCH_SECS`, else 60 with `--quick`, else the target's 600.
fn fuzz_secs() -> Result<u64, String> {
    match std::env::var("MIGPROOF_BENCH_SECS") {
        Ok(v) => match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "MIGPROOF_BENCH_SECS must be a positive number of seconds, not `{v}`"
            )),
        },
        Err(_) if quick() => Ok(60),
        Err(_) => Ok(TARGET_FUZZ_SECS),
    }
}

/// The 1-minute load average, or `?` where /proc/loadavg is not there.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn verdict(met: bool) -> &'static str {
    if met {
        "PASS"
    } else {
        "MISS"
    }
}

fn bench() -> Result<(), String> {
    let bench_started = Instant::now();
    let runs = runs()?;
    let fuzz_secs = fuzz_secs()?;
    let corpus = corpus()?;
    let history = corpus.join("migrations");
    let all = migrations(&history)?;
    let n = all.len();
    if n < 8 {
        return Err(format!(
            "`{}` holds {n} migrations; a quarter needs at least 2",
            history.display()
        ));
    }
    let quarter = n / 4;
    let three_quarters = n - quarter;
    let tools = Tools::find()?;
    let (cluster, port) = match Cluster::start(&tools) {
        Ok(cluster) => {
            let port = cluster.port;
            (Some(cluster), port)
        }
        Err(e) => {
            println!(
                "real_history: could not start a tuned cluster ({e}); falling back to the \
                 server on {HOST}:{FALLBACK_PORT}, not tuned: the figures are not those of the \
                 issue's setting"
            );
            (None, FALLBACK_PORT)
        }
    };
    let server = match &cluster {
        Some(c) => format!(
            "tuned throwaway cluster {HOST}:{port} ({}) in {}",
            TUNED.join(" "),
            c.dir.path().display()
        ),
        None => format!("{HOST}:{port}"),
    };
    let copies = tempfile::tempdir().map_err(|e| format!("failed to create a temp dir: {e}"))?;
    let first = truncated_copy(&history, &all, quarter, &copies.path().join("first"))?;
    let most = truncated_copy(&history, &all, three_quarters, &copies.path().join("most"))?;
    println!(
        "real_history: {} ({n} migrations, {} outside a transaction), {runs} run(s) each, \
         server {server}; baseline uses {} and {}{}",
        history.display(),
        all.iter().filter(|m| !m.transaction).count(),
        tools.program("pg_dump").display(),
        tools.program("psql").display(),
        if tools.restrict_key {
            " (--restrict-key)"
        } else {
            ""
        },
    );

    // (1) and (2): each round runs the baseline, then check on the whole history, on its
    // first quarter and on its first three quarters, so that all four see the same load.
    let load_before = load_average();
    let (mut base, mut full, mut t_first, mut t_most) = (vec![], vec![], vec![], vec![]);
    let mut first_problems = None;
    for i in 1..=runs {
        let (b, problems) = baseline(&tools, port, &all)?;
        println!(
            "  run {i}: baseline             {:>9} ({})",
            secs(b),
            problem_counts(&problems)
        );
        base.push(b);
        first_problems.get_or_insert(problems);
        for (label, dir, expected, times) in [
            ("check, whole history", history.as_path(), n, &mut full),
            (
                "check, first quarter",
                first.as_path(),
                quarter,
                &mut t_first,
            ),
            (
                "check, 3 quarters   ",
                most.as_path(),
                three_quarters,
                &mut t_most,
            ),
        ] {
            let (t, checked) = check(dir, port, expected)?;
            println!(
                "  run {i}: {label} {:>9} (migrations_checked {checked} of {expected})",
                secs(t)
            );
            times.push(t);
        }
    }
    let problems = first_problems.unwrap_or_default();
    if !problems.is_empty() {
        println!();
        println!(
            "the naive stairway did not pass on {} migration(s); it went on past each:",
            problems.len()
        );
        for (name, p) in &problems {
            println!("  {name}: {}", p.describe());
        }
    }
    let load_after_check = load_average();
    let (b, m) = (median(base), median(full));
    let (t_first, t_most) = (median(t_first), median(t_most));
    let ratio = b.as_secs_f64() / m.as_secs_f64();
    let per_first = t_first.as_secs_f64() / quarter as f64;
    let last = n - three_quarters;
    let per_last = (m.as_secs_f64() - t_most.as_secs_f64()) / last as f64;
    let growth = per_last / per_first;

    // (3): one fuzz run on the whole history.
    let regressions =
        tempfile::tempdir().map_err(|e| format!("failed to create a temp dir: {e}"))?;
    let url = url(port);
    let duration = format!("{fuzz_secs}s");
    let fuzz_args = [
        "fuzz",
        "-m",
        history.to_str().ok_or("the corpus path is not UTF-8")?,
        "--backend",
        "url",
        "--database-url",
        &url,
        "--duration",
        &duration,
        "--jobs",
        "2",
        "--seed",
        FUZZ_SEED,
        "--format",
        "json",
        "--regressions",
        regressions
            .path()
            .to_str()
            .ok_or("the temp dir path is not UTF-8")?,
    ];
    println!();
    println!("fuzz: migproof {}", fuzz_args.join(" "));
    let (fuzz_wall, summary) = migproof(&fuzz_args, "fuzz")?;
    let cases = summary["cases"]
        .as_u64()
        .ok_or("the fuzz report has no summary.cases")?;
    let per_minute = cases as f64 * 60.0 / fuzz_wall.as_secs_f64();
    // A 10-minute run counts its cases (shrinking past the end included); a shorter one is
    // extrapolated.
    let full_run = fuzz_secs == TARGET_FUZZ_SECS;
    let per_10_min = if full_run {
        cases as f64
    } else {
        per_minute * 10.0
    };
    println!(
        "  {cases} cases in {} (budget {fuzz_secs}s; findings {}), {:.2} steps per second, \
         {} steps",
        secs(fuzz_wall),
        summary["findings"],
        summary["steps_per_second"].as_f64().unwrap_or(f64::NAN),
        summary["steps"],
    );

    println!();
    let table = [
        (
            format!("baseline: pg_dump -s + psql, schema only ({n})"),
            secs(b),
        ),
        (format!("migproof check, whole history ({n})"), secs(m)),
        ("ratio baseline / migproof".into(), format!("{ratio:.2}x")),
        (format!("check, first quarter ({quarter})"), secs(t_first)),
        (
            format!("check, first three quarters ({three_quarters})"),
            secs(t_most),
        ),
        (
            format!("per migration, first quarter: T({quarter})/{quarter}"),
            format!("{per_first:.3}s"),
        ),
        (
            format!("per migration, last quarter: (T({n})-T({three_quarters}))/{last}"),
            format!("{per_last:.3}s"),
        ),
        ("ratio last / first quarter".into(), format!("{growth:.2}x")),
        (
            format!("fuzz cases per minute ({} wall, 1 run)", secs(fuzz_wall)),
            format!("{per_minute:.2}"),
        ),
        (
            if full_run {
                "fuzz cases in 10 minutes".into()
            } else {
                "fuzz cases per 10 minutes, extrapolated".into()
            },
            format!("{per_10_min:.0}"),
        ),
    ];
    let width = table
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    println!(
        "| {:<width$} | {:>16} |",
        "measure (times are medians of the runs)", "value"
    );
    println!("|-{:-<width$}-|------------------|", "");
    for (label, value) in &table {
        println!("| {label:<width$} | {value:>16} |");
    }
    println!();
    println!(
        "cluster folder under {} (TMPDIR sets it)",
        std::env::temp_dir().display()
    );
    println!(
        "load average at start {load_before}, after the check rounds {load_after_check}, at \
         end {}; the bench took {}",
        load_average(),
        secs(bench_started.elapsed())
    );
    println!(
        "target: check at least {TARGET_RATIO}x faster than the naive stairway while also \
         checking data: {}",
        verdict(ratio >= TARGET_RATIO)
    );
    println!(
        "target: the last quarter costs at most {TARGET_GROWTH}x the first per migration: {}",
        verdict(growth <= TARGET_GROWTH)
    );
    println!(
        "target: at least {TARGET_CASES_PER_10_MIN} fuzz cases in 10 minutes: {}",
        verdict(per_10_min >= TARGET_CASES_PER_10_MIN)
    );
    drop(cluster);
    Ok(())
}

fn main() {
    if let Err(e) = bench() {
        eprintln!("real_history: {e}");
        std::process::exit(1);
    }
}

//! The memory and speed benchmark of `migproof fuzz`: memory must stay flat over a long run,
//! and the run must take at least 100 steps a second. It runs `fuzz --jobs 2` on
//! `examples/shop` for a fixed time (10 minutes by default) on the default backend, migproof's
//! own local cluster, as a user who gives no server runs it (or, with `MIGPROOF_BENCH_URL`, on
//! that server through the url backend), samples the process's resident memory every few
//! seconds, and prints the peak of the last quarter of the run against the peak of its first
//! quarter (the baseline, measured in the same run, after start-up has settled), and the steps
//! per second.
//!
//!     cargo bench --bench fuzz_memory                 (10 minutes)
//!     cargo bench --bench fuzz_memory -- --quick      (1 minute; or MIGPROOF_BENCH_SECS=N)
//!     MIGPROOF_BENCH_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench fuzz_memory
//!
//! The process exits nonzero only when something fails to run; a missed target is printed,
//! not failed.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Peak memory of the last quarter over the first quarter.
const TARGET_RATIO: f64 = 1.1;
/// Steps a second over the whole run.
const TARGET_STEPS: f64 = 100.0;

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn bench() -> Result<(), String> {
    let quick = std::env::args().any(|a| a == "--quick");
    let secs: u64 = match std::env::var("MIGPROOF_BENCH_SECS") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("MIGPROOF_BENCH_SECS={v} is not a number of seconds"))?,
        Err(_) if quick => 60,
        Err(_) => 600,
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let regressions = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = std::env::var("MIGPROOF_BENCH_URL").ok();
    let mut command = Command::new(env!("CARGO_BIN_EXE_migproof"));
    command.args(["fuzz", "--jobs", "2", "--format", "json", "--seed", "1"]);
    let server = match &url {
        Some(url) => {
            command.env("MIGPROOF_ALLOW_SUPERUSER", "1").args([
                "--backend",
                "url",
                "--database-url",
                url,
            ]);
            "the url backend"
        }
        None => {
            command.args(["--backend", "local"]);
            "the local backend"
        }
    };
    println!("fuzz_memory: `migproof fuzz --jobs 2` on examples/shop for {secs}s, {server}");
    let started = Instant::now();
    let mut child = command
        .args(["--cases", "1000000000", "--duration", &format!("{secs}s")])
        .arg("--migrations")
        .arg(root.join("examples/shop/migrations"))
        .arg("--regressions")
        .arg(regressions.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("failed to start migproof: {e}"))?;
    let pid = child.id();
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if let Some(kib) = rss_kib(pid) {
            samples.push((started.elapsed(), kib));
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.code() != Some(0) {
        return Err(format!(
            "migproof fuzz exited with {} on the correct shop:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("no JSON report: {e}"))?;
    let total = started.elapsed();
    let quarter = |from: f64, to: f64| {
        samples
            .iter()
            .filter(|(t, _)| {
                let f = t.as_secs_f64() / total.as_secs_f64();
                f >= from && f < to
            })
            .map(|(_, k)| *k)
            .max()
            .unwrap_or(0)
    };
    let (first, last) = (quarter(0.0, 0.25), quarter(0.75, 1.01));
    if first == 0 || last == 0 {
        return Err("too few memory samples: run longer".into());
    }
    let ratio = last as f64 / first as f64;
    let speed = report["summary"]["steps_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    println!(
        "  cases {}, steps {}, {speed} steps/s",
        report["summary"]["cases"], report["summary"]["steps"],
    );
    println!("| part of the run        | peak RSS     |");
    println!("|------------------------|--------------|");
    println!("| first quarter (base)   | {first:>8} KiB |");
    println!("| last quarter           | {last:>8} KiB |");
    println!("| ratio last / first     | {ratio:>11.2}x |");
    let verdict = if ratio <= TARGET_RATIO { "MET" } else { "MISS" };
    println!("target: memory flat over the run (ratio at most {TARGET_RATIO}): {verdict}");
    let verdict = if speed >= TARGET_STEPS { "MET" } else { "MISS" };
    println!("target: at least {TARGET_STEPS} steps per second: {verdict}");
    Ok(())
}

fn main() {
    if let Err(e) = bench() {
        eprintln!("fuzz_memory: {e}");
        std::process::exit(1);
    }
}

//! `migproof locks` and the lock flags of `check`: what the user typed (clap types), resolved
//! into `crate::locks` options, and running the `locks` command.

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{
    error, exit, interrupted, open_server_with, parse_duration, print_report, Common, OutputFormat,
};
use crate::backend;
use crate::check::RunError;
use crate::locks::{self, Level, LockCheck, LockOptions, DEFAULT_ROWS};
use crate::source;

#[derive(Debug, Args)]
pub struct LocksArgs {
    #[command(flatten)]
    pub common: Common,

    /// Fill every table with N rows (server-side, generate_series) before the migrations after
    /// it are traced; durations and lock hold times are measured at that size.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ROWS)]
    pub rows: u64,

    /// A lock that blocks reads or writes held longer than this is a hazard (e.g. 500ms, 2s).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub lock_threshold: Duration,

    /// Stop a statement that runs longer than this and report it as `timeout`.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub step_timeout: Duration,
}

/// What `check --locks` does with lock hazards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LocksMode {
    /// No lock analysis (the default: `check` stays a correctness gate).
    Off,
    /// Hazards are `lock_hazard` notes; the run still passes.
    Warn,
    /// Hazards are `lock_hazard` findings and fail the run; warnings stay notes.
    Error,
}

#[derive(Debug, Args)]
pub struct CheckLockArgs {
    /// Also trace the locks every up takes (see `migproof locks`) and report hazards.
    #[arg(long, value_enum, value_name = "MODE", default_value = "off")]
    pub locks: LocksMode,

    /// With --locks: rows per table for the lock trace.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ROWS)]
    pub lock_rows: u64,

    /// With --locks: a lock that blocks reads or writes held longer than this is a hazard.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub lock_threshold: Duration,
}

impl CheckLockArgs {
    /// The lock analysis `check` runs, or `None` when off.
    pub fn resolve(&self, step_timeout: Duration) -> Option<LockCheck> {
        let level = match self.locks {
            LocksMode::Off => return None,
            LocksMode::Warn => Level::Warn,
            LocksMode::Error => Level::Error,
        };
        let options = LockOptions {
            rows: self.lock_rows,
            threshold: self.lock_threshold,
            step_timeout,
        };
        Some(LockCheck { level, options })
    }
}

/// A spinner with the current migration, on stderr when it is a terminal.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn new(wanted: bool) -> Spinner {
        use std::io::IsTerminal;
        if !wanted || !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(Some(bar))
    }
}

impl crate::check::Progress for Spinner {
    fn migration(&self, index: usize, id: &str, phase: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(format!("{}: {id}: {phase}", index + 1));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

pub async fn run(args: LocksArgs) -> u8 {
    let set = match source::load(&args.common.migrations, args.common.source) {
        Ok(set) => set,
        Err(e) => return error(exit::USAGE, &e.to_string()),
    };
    let server = match open_server_with(
        args.common.backend,
        args.common.database_url.as_deref(),
        &args.common.docker,
        args.common.access.resolve(set.setup.migration_role),
    )
    .await
    {
        Ok(s) => s,
        Err(code) => return code,
    };
    let options = LockOptions {
        rows: args.rows,
        threshold: args.lock_threshold,
        step_timeout: args.step_timeout,
    };
    let spinner = Spinner::new(args.common.format == OutputFormat::Human);
    let result = tokio::select! {
        r = locks::run(&server, &set, &options, &spinner) => Some(r),
        _ = interrupted() => None,
    };
    crate::check::Progress::finish(&spinner);
    let cleanup = server.cleanup().await;
    drop(server);
    let url = args.common.database_url.clone().unwrap_or_default();
    let scrub = |t: String| {
        if url.is_empty() {
            t
        } else {
            backend::url::scrub(&t, &url)
        }
    };
    if let Err(e) = cleanup {
        eprintln!("warning: {}", scrub(e.to_string()));
    }
    match result {
        None => error(
            exit::INTERRUPTED,
            "interrupted; scratch databases were dropped",
        ),
        Some(Err(e @ RunError::Backend(_))) | Some(Err(e @ RunError::Lost(_))) => {
            error(exit::ENVIRONMENT, &scrub(e.to_string()))
        }
        Some(Ok(report)) => {
            print_report(&report, args.common.format);
            if report.findings.is_empty() {
                exit::OK
            } else {
                exit::FINDINGS
            }
        }
    }
}

//! `migproof locks` and the lock flags of `check`: what the user typed (clap types), resolved
//! into `crate::locks` options, and running the `locks` command.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use clap::Args;

use super::lifecycle::{error, supervise, Interrupts};
use super::progress::Bar;
use super::{exit, output, parse_duration, start, Common, OutputFormat};
use crate::backend::{BackendKind, Server};
use crate::locks::{self, Level, LockCheck, LockOptions, DEFAULT_ROWS};
use crate::source::{config, MigrationSet};

#[derive(Debug, Args)]
pub struct LocksArgs {
    #[command(flatten)]
    pub common: Common,

    /// Fill every table with N rows (server-side, generate_series) before the migrations after
    /// it are traced; durations and lock hold times are measured at that size. Tables named
    /// under [locks.rows] in migproof.toml get their own size. At most 10000000; with
    /// `--backend local`, rows that cannot fit on the cluster's disk are refused.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ROWS,
          value_parser = clap::value_parser!(u64).range(0..=MAX_ROWS))]
    pub rows: u64,

    /// A lock that blocks reads or writes held longer than this is a hazard (e.g. 500ms, 2s).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub lock_threshold: Duration,

    /// Stop a statement that runs longer than this and report it as `timeout`.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub step_timeout: Duration,
}

/// Most rows per table `--rows` and `--lock-rows` accept: enough to measure how long a rewrite
/// or a validation holds its lock, and a bound on what one run may write (every table that
/// exists before a migration gets this many rows; unbounded, one run filled 55 GB).
pub const MAX_ROWS: u64 = config::MAX_TABLE_ROWS;

/// Bytes a filled row takes on disk at the least: its 24-byte tuple header and its 4-byte line
/// pointer, before any value, index entry or WAL.
const MIN_ROW_BYTES: u64 = 28;

/// Refuses a fill that cannot fit on the disk of a cluster migproof started, which lives in
/// the temporary folder: one table of `rows` rows (asked with `flag`) plus every table
/// `[locks.rows]` sizes. On other backends the disk is out of sight; with fewer than two
/// migrations no table exists before a migration, so nothing is filled.
pub(super) fn refuse_rows_beyond_disk(
    server: &Server,
    set: &MigrationSet,
    flag: &str,
    rows: u64,
) -> Result<(), u8> {
    if server.kind != BackendKind::Local || set.migrations.len() < 2 {
        return Ok(());
    }
    let tmp = std::env::temp_dir();
    let Some(free) = free_bytes(&tmp) else {
        return Ok(());
    };
    rows_fit(flag, rows, &set.locks.rows, free, &tmp)
        .map_err(|message| error(exit::USAGE, &message))
}

/// Free bytes for unprivileged users on the filesystem holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    Some((stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64))
}

/// `Err(message)` when one table of `rows` rows and the tables `sized` by `[locks.rows]`, at
/// [`MIN_ROW_BYTES`] a row, need more than the `free` bytes of the disk holding `dir`.
fn rows_fit(
    flag: &str,
    rows: u64,
    sized: &BTreeMap<String, u64>,
    free: u64,
    dir: &Path,
) -> Result<(), String> {
    let sized_rows: u64 = sized.values().sum();
    let needed = rows
        .saturating_add(sized_rows)
        .saturating_mul(MIN_ROW_BYTES);
    if needed <= free {
        return Ok(());
    }
    let what = if sized_rows == 0 {
        format!("`{flag} {rows}` cannot fit: every table that exists before a migration gets {rows} rows")
    } else {
        format!(
            "`{flag} {rows}` and the {sized_rows} rows of [locks.rows] in {} cannot fit: every \
             table that exists before a migration gets {rows} rows, or its size there",
            config::FILE
        )
    };
    Err(format!(
        "{what}, at least {} MB in all (a row takes at least {MIN_ROW_BYTES} bytes), but the \
         disk of the local cluster (`{}`) has {} MB free; lower {flag} or [locks.rows], or \
         point TMPDIR at a larger disk",
        needed.div_ceil(1 << 20),
        dir.display(),
        free / (1 << 20)
    ))
}

pub use crate::source::config::LocksMode;

#[derive(Debug, Args)]
pub struct CheckLockArgs {
    /// Also trace the locks every up takes (see `migproof locks`) and report hazards
    /// (default: `off`, or `locks` of [check] in migproof.toml).
    #[arg(long, value_enum, value_name = "MODE")]
    pub locks: Option<LocksMode>,

    /// With --locks: rows per table for the lock trace ([locks.rows] in migproof.toml sizes
    /// single tables). At most 10000000; with `--backend local`, rows that cannot fit on the
    /// cluster's disk are refused. Default: 10000.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=MAX_ROWS))]
    pub lock_rows: Option<u64>,

    /// With --locks: a lock that blocks reads or writes held longer than this is a hazard.
    /// Default: 1s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_threshold: Option<Duration>,
}

impl CheckLockArgs {
    /// Whether `check` traces locks: the flag, else migproof.toml's [check], else off.
    pub fn mode(&self, set: &MigrationSet) -> LocksMode {
        self.locks
            .or(set.settings.check.locks)
            .unwrap_or(LocksMode::Off)
    }

    /// Rows per table of the lock trace: the flag, else migproof.toml's [check], else 10000.
    pub fn rows(&self, set: &MigrationSet) -> u64 {
        self.lock_rows
            .or(set.settings.check.lock_rows)
            .unwrap_or(DEFAULT_ROWS)
    }

    /// The lock analysis `check` runs, or `None` when off.
    pub fn resolve(&self, set: &MigrationSet, step_timeout: Duration) -> Option<LockCheck> {
        let level = match self.mode(set) {
            LocksMode::Off => return None,
            LocksMode::Warn => Level::Warn,
            LocksMode::Error => Level::Error,
        };
        let options = LockOptions {
            rows: self.rows(set),
            table_rows: set.locks.rows.clone(),
            threshold: self
                .lock_threshold
                .or(set.settings.check.lock_threshold)
                .unwrap_or(Duration::from_secs(1)),
            step_timeout,
        };
        Some(LockCheck { level, options })
    }
}

pub async fn run(args: LocksArgs, interrupts: &mut Interrupts) -> u8 {
    let vet = |set: &MigrationSet| refuse_external_migrators(set, "`migproof locks`");
    let (set, server) = match start(&args.common, interrupts, vet).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    if let Err(code) = refuse_rows_beyond_disk(&server, &set, "--rows", args.rows) {
        return code;
    }
    let options = LockOptions {
        rows: args.rows,
        table_rows: set.locks.rows.clone(),
        threshold: args.lock_threshold,
        step_timeout: args.step_timeout,
    };
    let spinner = Bar::spinner(args.common.format == OutputFormat::Human);
    let work = async { Ok(locks::run(&server, &set, &options, &spinner).await?) };
    let url = args.common.database_url.as_deref();
    supervise(
        &server,
        url,
        interrupts,
        work,
        || spinner.clear(),
        |report| output::publish(&report, &args.common.output()),
    )
    .await
}

/// The lock trace follows the statements migproof sends itself; an external migrator's
/// (Alembic, `[command]`) it does not see. Refused, rather than a pass that traced nothing.
pub(crate) fn refuse_external_migrators(set: &MigrationSet, what: &str) -> Result<(), u8> {
    if !set.migrations.iter().any(|m| m.up.command.is_some()) {
        return Ok(());
    }
    Err(error(
        exit::USAGE,
        &format!(
            "{what} cannot trace the locks of `{}`: its migrations ({} layout) are applied by an \
             external migrator, whose statements migproof does not send itself and does not \
             trace; it refuses rather than pass having traced nothing. Run `migproof check` \
             without --locks for the other properties",
            set.dir.display(),
            set.format
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_that_cannot_fit_one_table_are_refused_naming_the_flag() {
        let dir = Path::new("/tmp");
        let none = BTreeMap::new();
        assert!(rows_fit("--rows", 1_000, &none, 28_000, dir).is_ok());
        let err = rows_fit("--lock-rows", 10_000_000, &none, 100 << 20, dir).unwrap_err();
        assert!(
            err.starts_with("`--lock-rows 10000000` cannot fit"),
            "{err}"
        );
        assert!(
            err.contains("at least 268 MB") && err.contains("100 MB free"),
            "{err}"
        );
        assert!(err.contains("`/tmp`"), "{err}");
        // the tables [locks.rows] sizes count too
        let big = BTreeMap::from([("public.versions".to_string(), 5_000_000)]);
        assert!(rows_fit("--rows", 1_000, &none, 100 << 20, dir).is_ok());
        let err = rows_fit("--rows", 1_000, &big, 100 << 20, dir).unwrap_err();
        assert!(
            err.contains("the 5000000 rows of [locks.rows] in migproof.toml cannot fit"),
            "{err}"
        );
    }
}

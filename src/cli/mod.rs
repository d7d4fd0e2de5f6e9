//! The command line: what the user typed (clap types), its resolution into settings, running the
//! command, printing the report, and the exit code. The only module that prints.

mod fuzz;
mod lifecycle;
mod locks;
mod progress;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::backend::{self, docker, BackendKind};
use crate::check::{self, CheckOptions};
use crate::golden;
use crate::report::{self, Report};
pub use crate::source::config::parse_duration;
use crate::source::config::Level;
use crate::source::{self, Format, MigrationSet};
use backend::Server;
use fuzz::{FuzzArgs, ReplayArgs};
use lifecycle::{error, open_server, supervise, Interrupts, ServerArgs};

/// Exit codes, as documented in the README.
pub mod exit {
    /// Every property holds.
    pub const OK: u8 = 0;
    /// At least one finding.
    pub const FINDINGS: u8 = 1;
    /// Bad input or usage: the message names the file, line or flag.
    pub const USAGE: u8 = 2;
    /// The environment failed: no database reachable, a backend that could not start.
    pub const ENVIRONMENT: u8 = 3;
    /// Interrupted by Ctrl-C or SIGTERM (after cleaning up).
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "migproof",
    version,
    about = "Proves database migrations are safe to ship, against a real PostgreSQL",
    long_about = "migproof applies a project's migrations to a real PostgreSQL and proves that \
                  every migration applies with realistic data present, rolls back to exactly the \
                  previous schema, keeps the data, re-applies, and is a no-op when run again.\n\n\
                  Exit codes: 0 no finding, 1 findings, 2 bad input or usage, 3 environment \
                  failure (no database, backend could not start)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The release gate: prove every migration applies, rolls back, re-applies and keeps data.
    Check(CheckArgs),
    /// Search for failures with random deploy/migrate/rollback/retry sequences, faults and data.
    Fuzz(FuzzArgs),
    /// Re-run saved fuzz failures exactly, with no randomness.
    Replay(ReplayArgs),
    /// Print the golden schema snapshot after applying the migrations to an empty database.
    Snapshot(SnapshotArgs),
    /// Trace the locks every statement of every up takes, at a given table size, and who waits.
    Locks(locks::LocksArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Readable text; colours on a terminal.
    Human,
    /// One JSON document on stdout (see the README for its fields).
    Json,
    /// JUnit XML on stdout for CI test reporters: a test case per migration checked, a failure
    /// per finding.
    Junit,
}

impl OutputFormat {
    /// `--format` of a command whose output is not a run's report (`snapshot`): no `junit`.
    fn without_junit() -> impl clap::builder::TypedValueParser<Value = OutputFormat> {
        use clap::builder::TypedValueParser;
        let values = OutputFormat::value_variants()
            .iter()
            .filter(|f| **f != OutputFormat::Junit)
            .filter_map(|f| f.to_possible_value());
        clap::builder::PossibleValuesParser::new(values)
            .map(|name| OutputFormat::from_str(&name, false).expect("clap admits only these names"))
    }
}

#[derive(Debug, Args)]
pub struct Common {
    /// Folder holding the migrations.
    #[arg(long, short = 'm', value_name = "DIR", default_value = "migrations")]
    pub migrations: PathBuf,

    /// Read the folder as this layout instead of detecting it.
    #[arg(long, value_name = "NAME", value_parser = format_parser())]
    pub source: Option<Format>,

    /// Where PostgreSQL comes from: `local` starts a throwaway cluster from this machine's
    /// binaries; `docker` a throwaway container; `url` uses --database-url; `auto` prefers
    /// local, then docker, then url.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendKind,

    #[command(flatten)]
    pub docker: DockerArgs,

    /// Server for `--backend url` (or `auto` without local binaries). migproof only creates and
    /// drops its own `migproof_*` scratch databases there.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,

    #[command(flatten)]
    pub access: AccessArgs,

    /// Output format: `human` on a terminal or in a log, `json` for tools, `junit` for CI test
    /// reporters.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
}

/// Which powers migrations under test get on the server.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// Accept a --database-url whose role is a superuser. migproof then applies migrations as
    /// a throwaway role of its own that owns only its scratch databases (dropped at exit),
    /// unless --migration-role superuser.
    #[arg(long, env = "MIGPROOF_ALLOW_SUPERUSER", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_superuser: bool,

    /// Role that applies the migrations: `owner` owns the scratch database and nothing else
    /// (default; trusted extensions work); `superuser` can change the whole server, for
    /// migrations that need it. Overrides `migration_role` in migproof.toml's [setup].
    #[arg(long, value_enum, value_name = "ROLE")]
    pub migration_role: Option<backend::MigrationRole>,
}

impl AccessArgs {
    /// The flags, with migproof.toml's setting where no flag was given.
    pub(crate) fn resolve(&self, configured: Option<backend::MigrationRole>) -> backend::Access {
        backend::Access {
            migration_role: self.migration_role.or(configured).unwrap_or_default(),
            allow_superuser: self.allow_superuser,
        }
    }
}

/// The container `--backend docker` starts.
#[derive(Debug, Args)]
pub struct DockerArgs {
    /// PostgreSQL major version for `--backend docker`: the tag of the image. Default: `version`
    /// of [server] in migproof.toml, else 16.
    #[arg(long, value_name = "MAJOR", env = docker::PG_VERSION_ENV,
          value_parser = clap::value_parser!(u32).range(9..=99))]
    pub pg_version: Option<u32>,

    /// Image for `--backend docker`, `NAME` or `NAME:TAG`, starting like the official one
    /// (default: `postgres:<pg-version>`).
    #[arg(long, value_name = "IMAGE", env = docker::IMAGE_ENV)]
    pub docker_image: Option<String>,
}

impl DockerArgs {
    /// The container to start: the flags, else the version migproof.toml's [server] names.
    fn options(&self, configured: Option<u32>) -> docker::Options {
        docker::Options {
            pg_version: self
                .pg_version
                .or(configured)
                .unwrap_or(docker::DEFAULT_PG_VERSION),
            image: self.docker_image.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: Common,

    /// Fail on differences of column order too (by default they are notes).
    #[arg(long)]
    pub strict: bool,

    /// Fail on migrations without a down (by default they are `irreversible` notes).
    #[arg(long)]
    pub require_down: bool,

    /// An up that drops a table or column holding values is a `destructive` note instead of a
    /// finding (declare single ones under [data.changes] in migproof.toml instead).
    #[arg(long)]
    pub allow_destructive: bool,

    /// `warn` makes an up that fails only on particular seeded rows (`data_dependent`) a note
    /// instead of a finding; accept single ones under [assume] in migproof.toml instead.
    /// Default: `error`.
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub data_dependent: Option<Level>,

    /// Stop a step that runs longer than this and report it as `timeout` (e.g. 30s, 5m).
    /// Default: 2m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub step_timeout: Option<Duration>,

    /// Check up to N parts of the migration history at once (parts of about 20 migrations, at
    /// most 8), each on its own scratch database. Default: the number of CPUs, at most 8. The
    /// report is the same for any N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,

    #[command(flatten)]
    pub locks: locks::CheckLockArgs,
}

/// Parses a seed: decimal or 0x-prefixed hex.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("`{text}` is not a seed; give a number like 42 or 0x2a"))
}

/// Parses a shard `I/N` (1-based I) into a 0-based index and a count.
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("`{text}` is not a shard; write I/N with 1 <= I <= N, for example 2/4");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i - 1, n))
}

#[derive(Debug, Args)]
#[command(mut_arg("format", |a| {
    a.value_parser(OutputFormat::without_junit()).help("Output format: `human` or `json`")
}))]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub common: Common,
}

fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Format::ALL.iter().map(|f| f.name()))
        .map(|name| Format::from_name(&name).expect("clap admits only format names"))
}

/// Parses the command line, runs the command, prints, and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                exit::ENVIRONMENT,
                &format!("failed to start the async runtime: {e}"),
            )
        }
    };
    ExitCode::from(runtime.block_on(run(cli)))
}

fn fail(code: u8, message: &str) -> ExitCode {
    ExitCode::from(error(code, message))
}

async fn run(cli: Cli) -> u8 {
    let mut interrupts = Interrupts::install();
    match cli.command {
        Command::Check(args) => run_check(args, &mut interrupts).await,
        Command::Fuzz(args) => fuzz::run_fuzz(args, &mut interrupts).await,
        Command::Replay(args) => fuzz::run_replay(args, &mut interrupts).await,
        Command::Snapshot(args) => run_snapshot(args, &mut interrupts).await,
        Command::Locks(args) => locks::run(args, &mut interrupts).await,
    }
}

/// How a command that runs a project starts: reads the migrations folder it was given (bad
/// input is exit 2), lets `vet` refuse what the command cannot do with it before any server
/// starts, and opens the server with the migration role the project asks for.
async fn start(
    common: &Common,
    interrupts: &mut Interrupts,
    vet: impl FnOnce(&MigrationSet) -> Result<(), u8>,
) -> Result<(MigrationSet, Server), u8> {
    let set = source::load(&common.migrations, common.source)
        .map_err(|e| error(exit::USAGE, &e.to_string()))?;
    vet(&set)?;
    let access = common.access.resolve(set.setup.migration_role);
    let where_ = ServerArgs {
        pg_version: set.settings.server.version,
        ..common.into()
    };
    let server = open_server(where_, access, interrupts).await?;
    Ok((set, server))
}

async fn run_check(args: CheckArgs, interrupts: &mut Interrupts) -> u8 {
    let vet = |set: &MigrationSet| match args.locks.mode(set) {
        locks::LocksMode::Off => Ok(()),
        _ => locks::refuse_external_migrators(set, "`check --locks`"),
    };
    let (set, server) = match start(&args.common, interrupts, vet).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    if args.locks.mode(&set) != locks::LocksMode::Off {
        let rows = args.locks.rows(&set);
        if let Err(code) = locks::refuse_rows_beyond_disk(&server, &set, "--lock-rows", rows) {
            return code;
        }
    }
    let options = check_options(&args, &set);
    let bar = progress::Bar::migrations(args.common.format == OutputFormat::Human);
    let work = async { Ok(check::run(&server, &set, &options, &bar).await?) };
    let url = args.common.database_url.as_deref();
    supervise(
        &server,
        url,
        interrupts,
        work,
        || bar.clear(),
        |report| publish(&report, args.common.format),
    )
    .await
}

/// What `check` is asked to do: each flag, else its setting in migproof.toml's [check], else
/// its default.
fn check_options(args: &CheckArgs, set: &MigrationSet) -> CheckOptions {
    let file = &set.settings.check;
    let step_timeout = args
        .step_timeout
        .or(file.step_timeout)
        .unwrap_or(DEFAULT_STEP_TIMEOUT);
    let level = args.data_dependent.or(file.data_dependent);
    CheckOptions {
        strict: args.strict || file.strict == Some(true),
        require_down: args.require_down || file.require_down == Some(true),
        allow_destructive: args.allow_destructive || file.allow_destructive == Some(true),
        data_dependent_warn: level == Some(Level::Warn),
        step_timeout,
        locks: args.locks.resolve(set, step_timeout),
        jobs: args.jobs.or(file.jobs).map_or_else(
            || {
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(8)
            },
            |n| n as usize,
        ),
    }
}

/// How long a step may run when neither a flag nor migproof.toml says.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// Prints a run's report in `format` and returns its exit code: 0 with no finding, else 1.
fn publish(report: &Report, format: OutputFormat) -> u8 {
    let text = match format {
        OutputFormat::Json => report::json::render(report),
        OutputFormat::Junit => report::junit::render(report),
        OutputFormat::Human => report::human::render(report, std::io::stdout().is_terminal()),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    if report.findings.is_empty() {
        exit::OK
    } else {
        exit::FINDINGS
    }
}

async fn run_snapshot(args: SnapshotArgs, interrupts: &mut Interrupts) -> u8 {
    let (set, server) = match start(&args.common, interrupts, |_| Ok(())).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let work = async { Ok(golden::final_snapshot(&server, &set).await?) };
    let url = args.common.database_url.as_deref();
    supervise(
        &server,
        url,
        interrupts,
        work,
        || {},
        |snapshot| match snapshot {
            Err(message) => error(exit::FINDINGS, &message),
            Ok(snapshot) => match args.common.format {
                OutputFormat::Json => {
                    print!(
                        "{}",
                        serde_json::to_string_pretty(&snapshot).expect("serializes") + "\n"
                    );
                    exit::OK
                }
                OutputFormat::Human => {
                    print!("{}", snapshot.render());
                    exit::OK
                }
                // clap admits only human and json for `snapshot`.
                OutputFormat::Junit => error(
                    exit::USAGE,
                    "`snapshot` prints `--format human` or `json`, not `junit`",
                ),
            },
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("99999999999999999999h")
            .unwrap_err()
            .contains("too long"));
    }
}

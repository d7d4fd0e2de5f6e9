//! The command line: what the user typed (clap types), its resolution into settings, running the
//! command, printing the report, and the exit code. The only module that prints.

mod check;
mod fuzz;
mod init;
mod lifecycle;
mod locks;
mod output;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::backend::{self, docker, BackendKind};
use crate::golden;
use crate::report::{self, Report};
pub use crate::source::config::parse_duration;
use crate::source::config::Level;
use crate::source::{self, Format, MigrationSet};
use backend::Server;
pub use check::DEFAULT_STEP_TIMEOUT;
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
    /// Trace the locks every statement of every up takes, at a given table size, and who waits
    /// behind them.
    ///
    /// Before each migration a report query opens a REPEATABLE READ transaction, counts the
    /// rows of every existing table and stays open up to 200 ms (or until the migration ends),
    /// while a probe reads and writes every table the migration locks. Each statement reports
    /// its locks and how long they were held, how long it waited for them, how long the
    /// probe's queries waited (p50, max), how many failed, and how many sessions queued for a
    /// lock. `--format html` draws a timeline per migration.
    Locks(locks::LocksArgs),
    /// Run `check` and write its findings to a baseline file: `check --baseline FILE` then fails
    /// only on findings that are not in it.
    Baseline(BaselineArgs),
    /// Write a commented migproof.toml for the migrations folder's layout.
    Init(InitArgs),
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
    /// GitHub Actions workflow commands (annotations at file and line); with
    /// GITHUB_STEP_SUMMARY set, a Markdown job summary is appended to that file too.
    Github,
    /// SARIF 2.1.0, for code scanning (one rule per finding kind).
    Sarif,
    /// GitLab Code Quality JSON.
    Gitlab,
    /// A Markdown pull-request comment.
    Markdown,
    /// `locks` only: one self-contained HTML page with a timeline per migration (statements,
    /// the locks they held, the report query and the probe's waiting reads and writes).
    Html,
}

impl OutputFormat {
    /// The report rendered in this format; `colour` for `human` only.
    fn render(self, report: &Report, colour: bool) -> String {
        match self {
            OutputFormat::Json => report::json::render(report),
            OutputFormat::Junit => report::junit::render(report),
            OutputFormat::Human => report::human::render(report, colour),
            OutputFormat::Github => report::github::render(report),
            OutputFormat::Sarif => report::sarif::render(report),
            OutputFormat::Gitlab => report::gitlab::render(report),
            OutputFormat::Markdown => report::markdown::render(report),
            OutputFormat::Html => report::html::render(report),
        }
    }
}

/// `--format html` (or `--report html=PATH`) on a command other than `locks`: the page draws
/// the lock trace, which only `locks` prints (`check --locks` reports hazards without it).
fn refuse_html(command: &str, format: OutputFormat, reports: &[ReportFile]) -> Result<(), u8> {
    let flag = if format == OutputFormat::Html {
        "--format html"
    } else if reports.iter().any(|r| r.format == OutputFormat::Html) {
        "--report html=PATH"
    } else {
        return Ok(());
    };
    Err(error(
        exit::USAGE,
        &format!(
            "`{flag}` draws the lock trace of `migproof locks`, which `{command}` does not \
             make; use `migproof locks --format html`, or another --format for `{command}` \
             (human, json, junit, github, sarif, gitlab, markdown)"
        ),
    ))
}

/// `--report FORMAT=PATH`: one more rendering of the run, written to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFile {
    pub format: OutputFormat,
    pub path: PathBuf,
}

/// Parses `FORMAT=PATH`; the folder of PATH must exist, so that a run does not end unable to
/// write what it found.
pub fn parse_report(text: &str) -> Result<ReportFile, String> {
    let names = || {
        OutputFormat::value_variants()
            .iter()
            .filter_map(|f| f.to_possible_value())
            .map(|v| v.get_name().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some((name, path)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not FORMAT=PATH; write it like sarif=migproof.sarif ({})",
            names()
        ));
    };
    let format = OutputFormat::from_str(name.trim(), true)
        .map_err(|_| format!("`{name}` is not a format; use one of {}", names()))?;
    if path.is_empty() {
        return Err(format!("`{text}` names no file after `=`"));
    }
    let path = PathBuf::from(path);
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent.filter(|d| !d.is_dir()) {
        return Err(format!(
            "`{}`: folder `{}` does not exist",
            path.display(),
            dir.display()
        ));
    }
    if path.is_dir() {
        return Err(format!("`{}` is a folder; name a file", path.display()));
    }
    Ok(ReportFile { format, path })
}

/// Where a run's report goes: stdout in one format, and files in others.
#[derive(Debug, Clone)]
pub struct Output {
    pub format: OutputFormat,
    pub files: Vec<ReportFile>,
}

impl OutputFormat {
    /// `--format` of a command whose output is not a run's report (`snapshot`): `human` or
    /// `json`.
    fn human_or_json() -> impl clap::builder::TypedValueParser<Value = OutputFormat> {
        use clap::builder::TypedValueParser;
        let values = OutputFormat::value_variants()
            .iter()
            .filter(|f| matches!(f, OutputFormat::Human | OutputFormat::Json))
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

    /// Folder holding the migrations, as `-m DIR` gives it.
    #[arg(value_name = "DIR", conflicts_with = "migrations")]
    pub dir: Option<PathBuf>,

    /// Read the folder as this layout instead of detecting it.
    #[arg(long, value_name = "NAME", value_parser = format_parser())]
    pub source: Option<Format>,

    /// Where PostgreSQL comes from: `local` starts a throwaway cluster from this machine's
    /// binaries; `docker` a throwaway container; `url` uses --database-url; `auto` prefers
    /// local, then docker, then url. Default: `url` when --database-url or DATABASE_URL gives
    /// a URL, else `auto`.
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,

    #[command(flatten)]
    pub docker: DockerArgs,

    /// Server for `--backend url` (or `auto` without local binaries). migproof only creates and
    /// drops its own `migproof_*` scratch databases there.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,

    #[command(flatten)]
    pub access: AccessArgs,

    /// Output format on stdout: `human` on a terminal or in a log, `json` for tools, `junit`
    /// for CI test reporters, `github` annotations, `sarif`, `gitlab` Code Quality, `markdown`,
    /// and for `locks` only `html` (one self-contained page with a timeline per migration).
    /// With a machine format, a human summary still goes to stderr.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,

    /// Also write the report in FORMAT to PATH (repeatable), e.g. `--report sarif=out.sarif
    /// --report junit=out.xml`: one run, several renderings.
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = parse_report)]
    pub reports: Vec<ReportFile>,
}

impl Common {
    pub(crate) fn output(&self) -> Output {
        Output {
            format: self.format,
            files: self.reports.clone(),
        }
    }
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
    /// PostgreSQL major version: the image's tag for `--backend docker` (default 16); for
    /// `local`, the installed server of that major (/usr/lib/postgresql/MAJOR/bin, or one
    /// `scripts/install-postgres.sh MAJOR` installed; default: the newest installed). Default:
    /// `version` of [server] in migproof.toml.
    /// `check` takes several, `15,18`: it runs on each and reports every finding with the
    /// version it was found on.
    #[arg(long, value_name = "MAJOR", env = docker::PG_VERSION_ENV, value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(9..=99))]
    pub pg_version: Vec<u32>,

    /// Image for `--backend docker`, `NAME` or `NAME:TAG`, starting like the official one
    /// (default: `postgres:<pg-version>`).
    #[arg(long, value_name = "IMAGE", env = docker::IMAGE_ENV)]
    pub docker_image: Option<String>,
}

impl DockerArgs {
    /// The major asked for: --pg-version (or its environment variable), else `configured`
    /// (migproof.toml's [server] version); `None` when neither says.
    fn major(&self, configured: Option<u32>) -> Option<u32> {
        self.pg_version.first().copied().or(configured)
    }

    /// The container to start for `major` (the docker default when none was asked for).
    fn options(&self, major: Option<u32>) -> docker::Options {
        docker::Options {
            pg_version: major.unwrap_or(docker::DEFAULT_PG_VERSION),
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

    /// After each up, run what the previous release ran (read every column a table had,
    /// insert with the columns it had, update and delete by key, and the queries of [compat]
    /// in migproof.toml), rolled back: one that worked before the up and fails after it is
    /// `breaks_previous_release`, a note with `note`, a finding with `error`; `off` skips it.
    /// Default: `note` (or `compat` of [check] in migproof.toml).
    #[arg(long, value_enum, value_name = "MODE")]
    pub compat: Option<crate::source::config::CompatMode>,

    /// Check the pending migrations over real rows too: a database URL (a staging copy, only
    /// read, in one read-only transaction) or a pg_dump file (plain or custom format,
    /// restored into a scratch database). The migrations it has run are read from its
    /// migrator's history table; the later ones run over its rows, and their findings say
    /// `with your data`. Seeded rows are checked as always.
    #[arg(long, value_name = "URL|FILE", value_parser = crate::data_from::DataFrom::parse)]
    pub data_from: Option<crate::data_from::DataFrom>,

    /// Seed rows shaped like a live database's, without copying it: only its planner
    /// statistics are read (pg_stats: null fractions, most common values, histogram bounds;
    /// row counts), in a read-only transaction, and the seeded rows of every column they
    /// cover take that shape.
    #[arg(long, value_name = "URL")]
    pub stats_from: Option<String>,

    /// Stop a step that runs longer than this and report it as `timeout` (e.g. 30s, 5m).
    /// Default: 2m (or `step_timeout` of [check] in migproof.toml).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub step_timeout: Option<Duration>,

    /// Check up to N parts of the migration history at once (parts of about 20 migrations, at
    /// most 8), each on its own scratch database. Default: the number of CPUs, at most 8. The
    /// report is the same for any N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,

    #[command(flatten)]
    pub locks: locks::CheckLockArgs,

    /// Check only MIGRATION (a version or full name) and the ones after it; the golden pass
    /// still applies the whole history.
    #[arg(long, value_name = "MIGRATION", conflicts_with = "changed_from")]
    pub since: Option<String>,

    /// Check only the migrations whose files were added or modified since GIT_REF (untracked
    /// files count as added); one that existed at GIT_REF and was edited is itself a finding,
    /// `edited_after_release`. The golden pass still applies the whole history.
    #[arg(long, value_name = "GIT_REF")]
    pub changed_from: Option<String>,

    /// Accept the findings listed in this baseline file (written by `migproof baseline`): the
    /// run fails only on others, and lists baseline entries that are fixed. Default: `baseline`
    /// of [check] in migproof.toml.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(flatten)]
    pub check: CheckArgs,

    /// The baseline file to write.
    #[arg(
        long,
        short = 'o',
        value_name = "FILE",
        default_value = "migproof-baseline.json"
    )]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder holding the migrations; migproof.toml is written there.
    #[arg(long, short = 'm', value_name = "DIR", default_value = "migrations")]
    pub migrations: PathBuf,

    /// Read the folder as this layout instead of detecting it.
    #[arg(long, value_name = "NAME", value_parser = format_parser())]
    pub source: Option<Format>,

    /// Replace an existing migproof.toml (kept as migproof.toml.bak).
    #[arg(long)]
    pub force: bool,
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
    a.value_parser(OutputFormat::human_or_json()).help("Output format: `human` or `json`")
}))]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub common: Common,
}

fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Format::all().map(|f| f.name()))
        .map(|name| Format::from_name(&name).expect("clap admits only format names"))
}

/// Parses the command line, runs the command, prints, and returns the exit code.
pub fn main() -> ExitCode {
    let mut cli = match Cli::try_parse() {
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
    // `migproof check DIR` reads as `migproof check -m DIR`
    let common = match &mut cli.command {
        Command::Check(args) => Some(&mut args.common),
        Command::Baseline(args) => Some(&mut args.check.common),
        Command::Fuzz(args) => Some(&mut args.common),
        Command::Snapshot(args) => Some(&mut args.common),
        Command::Locks(args) => Some(&mut args.common),
        Command::Replay(_) | Command::Init(_) => None,
    };
    if let Some(common) = common {
        if let Some(dir) = common.dir.take() {
            common.migrations = dir;
        }
    }
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

/// The subcommand being run, for documents written when the environment fails.
static COMMAND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

fn command_name() -> &'static str {
    COMMAND.get().copied().unwrap_or("migproof")
}

async fn run(cli: Cli) -> u8 {
    let mut interrupts = Interrupts::install();
    let _ = COMMAND.set(match &cli.command {
        Command::Check(_) => "check",
        Command::Fuzz(_) => "fuzz",
        Command::Replay(_) => "replay",
        Command::Snapshot(_) => "snapshot",
        Command::Locks(_) => "locks",
        Command::Baseline(_) => "baseline",
        Command::Init(_) => "init",
    });
    let html = match &cli.command {
        Command::Check(args) => refuse_html("check", args.common.format, &args.common.reports),
        Command::Baseline(args) => refuse_html(
            "baseline",
            args.check.common.format,
            &args.check.common.reports,
        ),
        Command::Fuzz(args) => refuse_html("fuzz", args.common.format, &args.common.reports),
        Command::Replay(args) => refuse_html("replay", args.format, &args.reports),
        Command::Snapshot(_) | Command::Locks(_) | Command::Init(_) => Ok(()),
    };
    if let Err(code) = html {
        return code;
    }
    match cli.command {
        Command::Check(args) => check::run_check(args, &mut interrupts).await,
        Command::Baseline(args) => check::run_baseline(args, &mut interrupts).await,
        Command::Init(args) => init::run(args),
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
    output::expect(command_name(), &common.migrations, &common.output());
    let access = common.access.resolve(set.setup.migration_role);
    let where_ = ServerArgs {
        pg_version: set.settings.server.version,
        ..common.into()
    };
    let mut server = open_server(where_, access, interrupts).await?;
    server.ignore_history_tables(&set.history_tables());
    Ok((set, server))
}

async fn run_snapshot(args: SnapshotArgs, interrupts: &mut Interrupts) -> u8 {
    if !args.common.reports.is_empty() {
        return error(
            exit::USAGE,
            "--report writes a run's report; `snapshot` prints a schema (redirect stdout instead)",
        );
    }
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
                other => error(
                    exit::USAGE,
                    &format!("`snapshot` prints `--format human` or `json`, not {other:?}"),
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

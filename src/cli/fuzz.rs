//! `migproof fuzz` and `migproof replay` at the command line: resolve the arguments, run, print.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::lifecycle::{error, open_server, supervise, Failure, Interrupts, ServerArgs};
use super::output;
use super::progress::Bar;
use clap::Args;

use super::{
    exit, format_parser, parse_duration, parse_seed, parse_shard, start, AccessArgs, Common,
    DockerArgs, OutputFormat,
};
use crate::backend;
use crate::backend::BackendKind;
use crate::fuzz::{self, regression, sut, FuzzOptions};
use crate::report::{FuzzCase, Report, Source};
use crate::run::RunError;
use crate::source;
use crate::source::config::{self, Settings};
use crate::source::{Format, MigrationSet};
use std::time::Duration;

/// What `fuzz` does when neither a flag nor migproof.toml's `[fuzz]` says otherwise. The help
/// text says these too (a test holds the two together); the step timeout's is
/// [`super::DEFAULT_STEP_TIMEOUT`].
pub mod default {
    /// Cases run when no budget is given: no `--cases`, no `--duration`.
    pub const CASES: u64 = 64;
    pub const MAX_STEPS: usize = 24;
    pub const REGRESSIONS: &str = "proptest-regressions";
    /// The most jobs: also the default's bound, the number of CPUs.
    pub const MAX_JOBS: u64 = 64;
}

/// `migproof fuzz` as the user typed it. `None` is a flag not given: migproof.toml's `[fuzz]`
/// setting, else the default, stands for it ([`FuzzArgs::resolve`]).
#[derive(Debug, Args)]
pub struct FuzzArgs {
    #[command(flatten)]
    pub common: Common,

    /// How many cases (random step sequences) to run, at least 1. With --duration too,
    /// whichever ends first. Default: 64, or as many as fit in --duration when only that is
    /// given. --cases or --duration replaces both `cases` and `duration` of migproof.toml.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub cases: Option<u64>,

    /// Longest sequence of steps in a case. Default: 24.
    #[arg(long, value_name = "N")]
    pub max_steps: Option<usize>,

    /// Seed of the run, decimal or 0x hex: the same seed, migrations and --cases give the same
    /// cases. Default: a random seed, printed on stderr at the start.
    #[arg(long, value_parser = parse_seed)]
    pub seed: Option<u64>,

    /// Length of the run, e.g. 10m, from its start: cases keep coming until it ends (with
    /// --cases too, whichever ends first). No case starts after it, and the case running then
    /// stops at its next step and is not counted. A failure found before the end is shrunk
    /// for at most a quarter of the run and until the end, or for 30s (past the end if need
    /// be) if that is longer; the run goes on searching meanwhile. Default: none (64 cases).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Cases run at once, each on its own scratch database (1 to 64). Default: the number of
    /// CPUs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=default::MAX_JOBS))]
    pub jobs: Option<u64>,

    /// Run only part I of N of the case space (a CI matrix), e.g. 2/4.
    #[arg(long, value_name = "I/N", default_value = "1/1", value_parser = parse_shard)]
    pub shard: (u64, u64),

    /// Where shrunk failures are saved. Default: proptest-regressions (`regressions` in
    /// migproof.toml is relative to the file's folder).
    #[arg(long, value_name = "DIR")]
    pub regressions: Option<PathBuf>,

    /// Fail on column order differences too (also when migproof.toml says `strict = true`).
    #[arg(long)]
    pub strict: bool,

    /// Stop a step that runs longer than this and report it as `timeout`. Default: 2m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub step_timeout: Option<Duration>,
}

impl FuzzArgs {
    /// The seed of the run: `--seed`, else a random one.
    fn seed(&self) -> Result<u64, String> {
        match self.seed {
            Some(seed) => Ok(seed),
            None => getrandom::u64()
                .map_err(|e| format!("failed to draw a random seed: {e}; pass --seed")),
        }
    }

    /// What the run does: each flag, else its setting in migproof.toml's `[fuzz]`, else its
    /// default. `--cases` and `--duration` are one budget: either flag replaces both settings.
    fn resolve(&self, settings: &Settings, seed: u64) -> Result<FuzzOptions, String> {
        let file = &settings.fuzz;
        let (cases, duration) = if self.cases.is_some() || self.duration.is_some() {
            (self.cases, self.duration)
        } else {
            if file.cases == Some(0) {
                return Err(format!(
                    "`cases = 0` in [fuzz] of `{}` runs nothing; give at least 1",
                    settings.path(config::FILE.as_ref()).display()
                ));
            }
            (file.cases, file.duration)
        };
        let cases = match (cases, duration) {
            (None, None) => Some(default::CASES),
            (cases, _) => cases,
        };
        let jobs = self.jobs.or(file.jobs).map_or_else(
            || {
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(default::MAX_JOBS as usize)
            },
            |n| n as usize,
        );
        let regressions = match (&self.regressions, &file.regressions) {
            (Some(flag), _) => flag.clone(),
            (None, Some(relative)) => settings.path(relative),
            (None, None) => PathBuf::from(default::REGRESSIONS),
        };
        Ok(FuzzOptions {
            cases,
            max_steps: self
                .max_steps
                .or(file.max_steps)
                .unwrap_or(default::MAX_STEPS),
            seed,
            duration,
            jobs,
            shard: self.shard,
            regressions,
            strict: self.strict || file.strict == Some(true),
            step_timeout: self
                .step_timeout
                .or(file.step_timeout)
                .unwrap_or(super::DEFAULT_STEP_TIMEOUT),
            migrations_arg: self.common.migrations.display().to_string(),
        })
    }
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Saved cases to replay (default: every `*.json` in --regressions).
    pub files: Vec<PathBuf>,

    /// Folder of saved cases.
    #[arg(long, value_name = "DIR", default_value = default::REGRESSIONS)]
    pub regressions: PathBuf,

    /// Migrations folder (default: the one recorded in each case).
    #[arg(long, short = 'm', value_name = "DIR")]
    pub migrations: Option<PathBuf>,

    #[arg(long, value_name = "NAME", value_parser = format_parser())]
    pub source: Option<Format>,

    /// Where PostgreSQL comes from, as for `check`. Default: `url` when --database-url or
    /// DATABASE_URL gives a URL, else `auto`.
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,

    #[command(flatten)]
    pub docker: DockerArgs,

    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,

    #[command(flatten)]
    pub access: AccessArgs,

    /// Output format on stdout, as for `check`.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,

    /// Also write the report in FORMAT to PATH (repeatable), as for `check`.
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = super::parse_report)]
    pub reports: Vec<super::ReportFile>,

    /// Fail on column order differences too.
    #[arg(long)]
    pub strict: bool,

    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub step_timeout: Duration,
}

pub async fn run_fuzz(args: FuzzArgs, interrupts: &mut Interrupts) -> u8 {
    let seed = match args.seed() {
        Ok(seed) => seed,
        Err(message) => return error(exit::ENVIRONMENT, &message),
    };
    // Resolved before any server starts: a bad setting is exit 2 with nothing to clean up.
    let mut resolved = None;
    let vet = |set: &MigrationSet| {
        let options = args.resolve(&set.settings, seed);
        resolved = Some(options.map_err(|message| error(exit::USAGE, &message))?);
        Ok(())
    };
    let (set, server) = match start(&args.common, interrupts, vet).await {
        Ok((set, server)) => (set, Arc::new(server)),
        Err(code) => return code,
    };
    let options = resolved.expect("vetted before the server started");
    // Before the bar is drawn, and whatever the format: a log of the run names its seed.
    eprintln!("migproof fuzz: seed {seed:#018x} (run these cases again with --seed {seed:#018x})");
    let bar = Arc::new(Bar::cases(
        args.common.format == OutputFormat::Human,
        options.cases,
        options.duration,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let work = fuzz::run(server.clone(), &set, options, bar.clone(), stop.clone());
    let work = async { Ok(work.await?) };
    let settle = || {
        // Workers still running stop at their next step.
        stop.store(true, Ordering::SeqCst);
        bar.clear();
    };
    let url = args.common.database_url.as_deref();
    supervise(&server, url, interrupts, work, settle, |report| {
        output::publish(&report, &args.common.output())
    })
    .await
}

pub async fn run_replay(args: ReplayArgs, interrupts: &mut Interrupts) -> u8 {
    let files = if args.files.is_empty() {
        match regression::list(&args.regressions) {
            Ok(f) => f,
            Err(e) => return error(exit::USAGE, &e.to_string()),
        }
    } else {
        args.files.clone()
    };
    if files.is_empty() {
        return error(
            exit::USAGE,
            &format!(
                "no saved cases: `{}` holds no *.json files; pass files or --regressions DIR",
                args.regressions.display()
            ),
        );
    }
    let mut cases = Vec::new();
    for path in &files {
        match regression::load(path) {
            Ok(case) => cases.push((path.clone(), case)),
            Err(e) => return error(exit::USAGE, &e.to_string()),
        }
    }
    let url = args.database_url.as_deref();
    let where_ = ServerArgs {
        backend: args.backend,
        url,
        docker: &args.docker,
        pg_version: None,
    };
    let mut server = match open_server(where_, args.access.resolve(None), interrupts).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    // The layout of the saved cases (they share a project), for its migrator's history tables.
    let format = args
        .source
        .or_else(|| Format::from_name(&cases[0].1.source));
    if let Some(format) = format {
        // A `[command]` project may name more in its migproof.toml.
        let dir =
            (args.migrations.clone()).unwrap_or_else(|| PathBuf::from(&cases[0].1.migrations));
        match crate::source::load(&dir, Some(format)) {
            Ok(set) => server.ignore_history_tables(&set.history_tables()),
            Err(_) => server.ignore_history_tables(format.history_tables()),
        }
    }
    let server = Arc::new(server);
    let work = replay_all(server.clone(), &args, cases);
    supervise(
        &server,
        url,
        interrupts,
        work,
        || {},
        |report| {
            let output = super::Output {
                format: args.format,
                files: args.reports.clone(),
            };
            output::publish(&report, &output)
        },
    )
    .await
}

async fn replay_all(
    server: Arc<backend::Server>,
    args: &ReplayArgs,
    cases: Vec<(PathBuf, regression::Case)>,
) -> Result<Report, Failure> {
    let started = Instant::now();
    let first_dir = args
        .migrations
        .clone()
        .unwrap_or_else(|| PathBuf::from(&cases[0].1.migrations));
    let source = Source {
        dir: first_dir.display().to_string(),
        format: cases[0].1.source.clone(),
    };
    let mut report = Report::new("replay", source, 0, server.kind_name());
    report.server = server.version.clone();
    let mut steps = 0;
    for (path, case) in cases {
        let dir = args
            .migrations
            .clone()
            .unwrap_or_else(|| PathBuf::from(&case.migrations));
        let format = args
            .source
            .or_else(|| source::Format::from_name(&case.source));
        let set = source::load(&dir, format).map_err(|e| Failure::Usage(e.to_string()))?;
        report.migrations = set.migrations.len();
        let (ctx, golden_findings) =
            fuzz::prepare(&server, &set, args.step_timeout, args.strict, None, 1)
                .await
                .map_err(Failure::Environment)?;
        report.findings.extend(golden_findings);
        for id in &ctx.plan.ids {
            if !report.checked.contains(id) {
                report.checked.push(id.clone());
            }
        }
        let outcome = sut::replay(ctx.clone(), case.releases.clone(), &case.steps).await;
        ctx.spares.finish(&server).await;
        steps += case.steps.len();
        match outcome {
            Ok(sut::Ran::Stale { what, .. }) => {
                return Err(Failure::Usage(format!("`{}`: {what}", path.display())));
            }
            Err(sut::Broken(message)) => return Err(Failure::Environment(RunError::Lost(message))),
            // replay never halts a case.
            Ok(sut::Ran::Passed | sut::Ran::Halted { .. }) => {}
            Ok(sut::Ran::Failed(mut finding, sequence)) => {
                finding.case = Some(FuzzCase {
                    sequence,
                    seed: case.seed.clone(),
                    replay: format!("migproof replay {}", path.display()),
                });
                report.findings.push(*finding);
            }
        }
    }
    report.summary.steps = steps;
    report.finish(started.elapsed());
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::config::FuzzSettings;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Typed {
        #[command(flatten)]
        args: FuzzArgs,
    }

    fn typed(flags: &[&str]) -> FuzzArgs {
        Typed::try_parse_from([&["migproof-fuzz"], flags].concat())
            .expect("parses")
            .args
    }

    fn project(fuzz: FuzzSettings) -> Settings {
        Settings {
            fuzz,
            dir: PathBuf::from("project/db"),
            ..Settings::default()
        }
    }

    #[test]
    fn the_help_text_says_the_defaults() {
        let command = Typed::command();
        let help = |name: &str| {
            let arg = command.get_arguments().find(|a| a.get_id() == name);
            arg.and_then(|a| a.get_help())
                .expect("documented")
                .to_string()
        };
        let timeout = super::super::DEFAULT_STEP_TIMEOUT.as_secs() / 60;
        let grace = fuzz::SHRINK_GRACE.as_secs();
        for (name, default) in [
            ("cases", format!("Default: {}", default::CASES)),
            ("max_steps", format!("Default: {}", default::MAX_STEPS)),
            ("regressions", format!("Default: {}", default::REGRESSIONS)),
            ("step_timeout", format!("Default: {timeout}m")),
            ("duration", format!("for {grace}s (past the end")),
            ("duration", "at most a quarter of the run".to_string()),
            ("duration", format!("({} cases)", default::CASES)),
            ("jobs", format!("(1 to {})", default::MAX_JOBS)),
        ] {
            assert!(help(name).contains(&default), "--{name}: {}", help(name));
        }
    }

    #[test]
    fn a_flag_wins_over_the_file_and_the_file_over_the_default() {
        let file = project(FuzzSettings {
            cases: Some(3),
            max_steps: Some(5),
            jobs: Some(2),
            strict: Some(true),
            step_timeout: Some(Duration::from_secs(9)),
            regressions: Some(PathBuf::from("saved")),
            ..FuzzSettings::default()
        });
        let options = typed(&[]).resolve(&file, 7).unwrap();
        assert_eq!(options.cases, Some(3));
        assert_eq!(options.duration, None);
        assert_eq!(options.max_steps, 5);
        assert_eq!(options.jobs, 2);
        assert!(options.strict);
        assert_eq!(options.step_timeout, Duration::from_secs(9));
        assert_eq!(options.regressions, PathBuf::from("project/db/saved"));
        assert_eq!(options.seed, 7);

        let flags = [
            "--cases",
            "2",
            "--max-steps",
            "8",
            "--jobs",
            "4",
            "--step-timeout",
            "1s",
            "--regressions",
            "here",
        ];
        let options = typed(&flags).resolve(&file, 7).unwrap();
        assert_eq!(options.cases, Some(2));
        assert_eq!(options.max_steps, 8);
        assert_eq!(options.jobs, 4);
        assert_eq!(options.step_timeout, Duration::from_secs(1));
        assert_eq!(options.regressions, PathBuf::from("here"));
        assert!(
            options.strict,
            "a file's `strict = true` is not undone by no flag"
        );

        let options = typed(&[]).resolve(&project(FuzzSettings::default()), 7);
        let options = options.unwrap();
        assert_eq!(options.cases, Some(default::CASES));
        assert_eq!(options.duration, None);
        assert_eq!(options.max_steps, default::MAX_STEPS);
        assert!((1..=default::MAX_JOBS as usize).contains(&options.jobs));
        assert_eq!(options.step_timeout, super::super::DEFAULT_STEP_TIMEOUT);
        assert_eq!(options.regressions, PathBuf::from(default::REGRESSIONS));
        assert!(!options.strict);
    }

    #[test]
    fn cases_and_duration_are_one_budget() {
        let minute = Duration::from_secs(60);
        let budget = |flags: &[&str], cases, duration| {
            let file = project(FuzzSettings {
                cases,
                duration,
                ..FuzzSettings::default()
            });
            let options = typed(flags).resolve(&file, 0).unwrap();
            (options.cases, options.duration)
        };
        // --duration alone: cases until it ends, whatever the file's cases.
        assert_eq!(
            budget(&["--duration", "1m"], None, None),
            (None, Some(minute))
        );
        assert_eq!(
            budget(&["--duration", "1m"], Some(3), None),
            (None, Some(minute))
        );
        // --cases alone: exactly that many, whatever the file's duration.
        assert_eq!(
            budget(&["--cases", "5"], None, Some(minute)),
            (Some(5), None)
        );
        // Both: whichever ends first.
        assert_eq!(
            budget(&["--cases", "5", "--duration", "1m"], None, None),
            (Some(5), Some(minute))
        );
        // From the file, as it says.
        assert_eq!(budget(&[], None, Some(minute)), (None, Some(minute)));
        assert_eq!(budget(&[], Some(3), Some(minute)), (Some(3), Some(minute)));
        assert_eq!(budget(&[], None, None), (Some(default::CASES), None));
    }

    #[test]
    fn zero_cases_in_the_file_is_refused_naming_it() {
        let file = project(FuzzSettings {
            cases: Some(0),
            ..FuzzSettings::default()
        });
        let message = typed(&[]).resolve(&file, 0).unwrap_err();
        assert!(
            message.contains("`cases = 0` in [fuzz] of `project/db/migproof.toml`"),
            "{message}"
        );
        assert!(typed(&["--cases", "1"]).resolve(&file, 0).is_ok());
    }

    #[test]
    fn the_seed_is_the_flag_else_random() {
        assert_eq!(typed(&["--seed", "0x2a"]).seed(), Ok(42));
        let (a, b) = (typed(&[]).seed().unwrap(), typed(&[]).seed().unwrap());
        assert_ne!(a, b, "two random seeds");
    }
}

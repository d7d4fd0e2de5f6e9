//! `migproof fuzz` and `migproof replay` at the command line: resolve the arguments, run, print.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::lifecycle::{error, open_server, supervise, Failure, Interrupts, ServerArgs};
use super::progress::Bar;
use clap::Args;

use super::{
    exit, format_parser, parse_duration, parse_seed, parse_shard, publish, start, AccessArgs,
    Common, DockerArgs, OutputFormat,
};
use crate::backend;
use crate::backend::BackendKind;
use crate::fuzz::{self, regression, sut, FuzzOptions};
use crate::report::{FuzzCase, Report, Source};
use crate::run::RunError;
use crate::source;
use crate::source::Format;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct FuzzArgs {
    #[command(flatten)]
    pub common: Common,

    /// How many cases (random step sequences) to run (at least 1).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub cases: u64,

    /// Longest sequence of steps in a case.
    #[arg(long, default_value_t = 24)]
    pub max_steps: usize,

    /// Seed of the run: the same seed and migrations give the same cases.
    #[arg(long, default_value = "0", value_parser = parse_seed)]
    pub seed: u64,

    /// Stop starting cases (and shrinking) after this long, e.g. 10m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Cases run at once, each on its own scratch database.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: u64,

    /// Run only part I of N of the case space (a CI matrix), e.g. 2/4.
    #[arg(long, value_name = "I/N", default_value = "1/1", value_parser = parse_shard)]
    pub shard: (u64, u64),

    /// Where shrunk failures are saved.
    #[arg(long, value_name = "DIR", default_value = "proptest-regressions")]
    pub regressions: PathBuf,

    /// Fail on column order differences too.
    #[arg(long)]
    pub strict: bool,

    /// Stop a step that runs longer than this and report it as `timeout`.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub step_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Saved cases to replay (default: every `*.json` in --regressions).
    pub files: Vec<PathBuf>,

    /// Folder of saved cases.
    #[arg(long, value_name = "DIR", default_value = "proptest-regressions")]
    pub regressions: PathBuf,

    /// Migrations folder (default: the one recorded in each case).
    #[arg(long, short = 'm', value_name = "DIR")]
    pub migrations: Option<PathBuf>,

    #[arg(long, value_name = "NAME", value_parser = format_parser())]
    pub source: Option<Format>,

    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendKind,

    #[command(flatten)]
    pub docker: DockerArgs,

    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,

    #[command(flatten)]
    pub access: AccessArgs,

    /// Output format: `human` on a terminal or in a log, `json` for tools, `junit` for CI test
    /// reporters.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,

    /// Fail on column order differences too.
    #[arg(long)]
    pub strict: bool,

    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub step_timeout: Duration,
}

pub async fn run_fuzz(args: FuzzArgs, interrupts: &mut Interrupts) -> u8 {
    let (set, server) = match start(&args.common, interrupts, |_| Ok(())).await {
        Ok((set, server)) => (set, Arc::new(server)),
        Err(code) => return code,
    };
    let options = FuzzOptions {
        cases: args.cases,
        max_steps: args.max_steps,
        seed: args.seed,
        duration: args.duration,
        jobs: args.jobs as usize,
        shard: args.shard,
        regressions: args.regressions.clone(),
        strict: args.strict,
        step_timeout: args.step_timeout,
        migrations_arg: args.common.migrations.display().to_string(),
    };
    let bar = Arc::new(Bar::cases(
        args.common.format == OutputFormat::Human,
        args.cases,
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
        publish(&report, args.common.format)
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
    let server = match open_server(where_, args.access.resolve(None), interrupts).await {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let work = replay_all(server.clone(), &args, cases);
    supervise(
        &server,
        url,
        interrupts,
        work,
        || {},
        |report| publish(&report, args.format),
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
        ctx.spares.finish().await;
        steps += case.steps.len();
        match outcome {
            Ok(sut::Ran::Stale { what, .. }) => {
                return Err(Failure::Usage(format!("`{}`: {what}", path.display())));
            }
            Err(sut::Broken(message)) => return Err(Failure::Environment(RunError::Lost(message))),
            Ok(sut::Ran::Passed) => {}
            Ok(sut::Ran::Failed(mut finding, len)) => {
                finding.case = Some(FuzzCase {
                    sequence: fuzz::numbered(&case.steps[..len], &set),
                    seed: case.seed.clone(),
                    replay: format!("migproof replay {}", path.display()),
                });
                report.findings.push(finding);
            }
        }
    }
    report.summary.steps = steps;
    report.finish(started.elapsed());
    Ok(report)
}

//! `migproof fuzz` and `migproof replay` at the command line: resolve the arguments, run, print.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use super::{
    clean_up, error, exit, interrupted, interrupted_message, open_server_with, print_report,
    scrubber, warn_left_behind, FuzzArgs, OutputFormat, ReplayArgs,
};
use crate::backend;
use crate::fuzz::{self, regression, sut, FuzzOptions, FuzzProgress};
use crate::report::{Report, Source};
use crate::run::RunError;
use crate::source;

struct Bar(Option<indicatif::ProgressBar>);

impl FuzzProgress for Bar {
    fn case_done(&self, cases: u64, steps: u64, findings: usize) {
        if let Some(bar) = &self.0 {
            bar.set_position(cases);
            let rate = steps as f64 / bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{steps} steps ({rate:.1}/s), {findings} finding(s)"
            ));
        }
    }
}

fn bar(wanted: bool, cases: u64) -> Bar {
    use std::io::IsTerminal;
    if !wanted || !std::io::stderr().is_terminal() {
        return Bar(None);
    }
    let bar = indicatif::ProgressBar::new(cases);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} cases [{bar:30}] {pos}/{len} {msg} ({elapsed})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    Bar(Some(bar))
}

pub async fn run_fuzz(args: FuzzArgs) -> u8 {
    let set = match source::load(&args.common.migrations, args.common.source) {
        Ok(set) => set,
        Err(e) => return error(exit::USAGE, &e.to_string()),
    };
    let url = args.common.database_url.clone();
    let access = args.common.access.resolve(set.setup.migration_role);
    let server = match open_server_with(
        args.common.backend,
        url.as_deref(),
        &args.common.docker,
        access,
    )
    .await
    {
        Ok(s) => Arc::new(s),
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
    let progress = Arc::new(bar(args.common.format == OutputFormat::Human, args.cases));
    let stop = Arc::new(AtomicBool::new(false));
    let run = fuzz::run(
        server.clone(),
        &set,
        options,
        progress.clone(),
        stop.clone(),
    );
    let result = tokio::select! {
        r = run => Some(r),
        e = server.until_unresponsive() => Some(Err(e.into())),
        _ = interrupted() => None,
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(b) = &progress.0 {
        b.finish_and_clear();
    }
    let scrub = scrubber(url.as_deref());
    let cleanup = clean_up(&server, result.is_none()).await;
    finish(result, cleanup, args.common.format, &scrub, server)
}

fn finish(
    result: Option<Result<Report, RunError>>,
    cleanup: Result<(), backend::BackendError>,
    format: OutputFormat,
    scrub: &dyn Fn(String) -> String,
    server: Arc<backend::Server>,
) -> u8 {
    let kind = server.kind;
    // Stops a local cluster once nothing else holds the server.
    drop(server);
    let interrupted = result.is_none();
    let code = match result {
        None => error(
            exit::INTERRUPTED,
            &interrupted_message(&cleanup, kind, scrub),
        ),
        Some(Err(e)) => error(exit::ENVIRONMENT, &scrub(e.to_string())),
        Some(Ok(report)) => {
            print_report(&report, format);
            if report.findings.is_empty() {
                exit::OK
            } else {
                exit::FINDINGS
            }
        }
    };
    if !interrupted {
        warn_left_behind(&cleanup, kind, scrub);
    }
    code
}

pub async fn run_replay(args: ReplayArgs) -> u8 {
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
    let url = args.database_url.clone();
    let access = args.access.resolve(None);
    let server = match open_server_with(args.backend, url.as_deref(), &args.docker, access).await {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let work = replay_all(server.clone(), &args, cases);
    let result = tokio::select! {
        r = work => Some(r),
        e = server.until_unresponsive() => Some(Err(Replayed::Env(e.into()))),
        _ = interrupted() => None,
    };
    let scrub = scrubber(url.as_deref());
    let cleanup = clean_up(&server, result.is_none()).await;
    match result {
        Some(Err(Replayed::Usage(message))) => {
            let kind = server.kind;
            drop(server);
            let code = error(exit::USAGE, &message);
            warn_left_behind(&cleanup, kind, &scrub);
            code
        }
        Some(Err(Replayed::Env(e))) => finish(Some(Err(e)), cleanup, args.format, &scrub, server),
        Some(Ok(report)) => finish(Some(Ok(report)), cleanup, args.format, &scrub, server),
        None => finish(None, cleanup, args.format, &scrub, server),
    }
}

enum Replayed {
    Usage(String),
    Env(RunError),
}

async fn replay_all(
    server: Arc<backend::Server>,
    args: &ReplayArgs,
    cases: Vec<(PathBuf, regression::Case)>,
) -> Result<Report, Replayed> {
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
        let set = source::load(&dir, format).map_err(|e| Replayed::Usage(e.to_string()))?;
        report.migrations = set.migrations.len();
        let (ctx, golden_findings) =
            fuzz::prepare(&server, &set, args.step_timeout, args.strict, None, 1)
                .await
                .map_err(Replayed::Env)?;
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
                return Err(Replayed::Usage(format!("`{}`: {what}", path.display())));
            }
            Err(sut::Broken(message)) => return Err(Replayed::Env(RunError::Lost(message))),
            Ok(sut::Ran::Passed) => {}
            Ok(sut::Ran::Failed(mut finding, len)) => {
                finding.sequence = fuzz::numbered(&case.steps[..len], &set);
                finding.seed = Some(case.seed.clone());
                finding.replay = Some(format!("migproof replay {}", path.display()));
                report.findings.push(finding);
            }
        }
    }
    report.summary.steps = steps;
    report.finish(started.elapsed());
    Ok(report)
}

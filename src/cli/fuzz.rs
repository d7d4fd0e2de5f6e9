//! `migproof fuzz` and `migproof replay` at the command line: resolve the arguments, run, print.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::lifecycle::{error, open_server, supervise, Failure, Interrupts, ServerArgs};
use super::progress::Bar;
use super::{exit, publish, start, FuzzArgs, OutputFormat, ReplayArgs};
use crate::backend;
use crate::fuzz::{self, regression, sut, FuzzOptions};
use crate::report::{FuzzCase, Report, Source};
use crate::run::RunError;
use crate::source;

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

//! `migproof check` and `migproof baseline` at the command line: resolve flags and
//! migproof.toml into options, a scope, a baseline and the migrations' allow comments, before
//! any server starts (bad input is exit 2); run; accept what the project accepted; print.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::lifecycle::{error, supervise, Interrupts};
use super::{exit, locks, output, progress, start, BaselineArgs, CheckArgs, OutputFormat};
use crate::check::{self, CheckOptions, Scope};
use crate::report::baseline::{self, Baseline};
use crate::report::{Kind, Note, NoteKind, Report};
use crate::source::allow::{self, Allow};
use crate::source::changes;
use crate::source::config::Level;
use crate::source::MigrationSet;

/// How long a step may run when neither a flag nor migproof.toml says.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// What the project accepted: a baseline (its file, as named, and content) and the allow
/// comments of its migrations.
struct Accepts {
    baseline: Option<(String, Baseline)>,
    allows: Vec<Allow>,
}

pub async fn run_check(args: CheckArgs, interrupts: &mut Interrupts) -> u8 {
    run(args, None, interrupts).await
}

pub async fn run_baseline(args: BaselineArgs, interrupts: &mut Interrupts) -> u8 {
    let output = args.output.clone();
    if let Some(dir) = output
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
    {
        return error(
            exit::USAGE,
            &format!(
                "--output `{}`: folder `{}` does not exist",
                output.display(),
                dir.display()
            ),
        );
    }
    run(args.check, Some(output), interrupts).await
}

/// `check`, or `baseline` when `write_baseline` names the file to write. With several
/// `--pg-version` majors, a run on each, one after the other, reported as one.
async fn run(
    mut args: CheckArgs,
    write_baseline: Option<PathBuf>,
    interrupts: &mut Interrupts,
) -> u8 {
    let majors = args.common.docker.pg_version.clone();
    let report = if majors.len() < 2 {
        on_one_server(&args, write_baseline.is_some(), interrupts).await
    } else {
        let mut reports = Vec::new();
        for major in majors {
            args.common.docker.pg_version = vec![major];
            match on_one_server(&args, write_baseline.is_some(), interrupts).await {
                Ok(report) => reports.push(report),
                Err(code) => return code,
            }
        }
        Ok(on_each_version(reports))
    };
    match (report, &write_baseline) {
        (Err(code), _) => code,
        (Ok(report), None) => output::publish(&report, &args.common.output()),
        (Ok(report), Some(path)) => write(&report, path),
    }
}

/// One run of `check` on the server the arguments name: its report, with what the project
/// accepted moved out of the failing findings, or the exit code of a run that did not finish.
async fn on_one_server(
    args: &CheckArgs,
    baseline: bool,
    interrupts: &mut Interrupts,
) -> Result<Report, u8> {
    let mut plan = None;
    let vet = |set: &MigrationSet| {
        let planned =
            check_plan(args, set, baseline).map_err(|message| error(exit::USAGE, &message))?;
        if planned.0.locks.is_some() {
            locks::refuse_external_migrators(set, "`check --locks`")?;
        }
        plan = Some(planned);
        Ok(())
    };
    let (set, server) = start(&args.common, interrupts, vet).await?;
    let (options, accepts) = plan.expect("vet ran");
    if options.locks.is_some() {
        let rows = args.locks.rows(&set);
        locks::refuse_rows_beyond_disk(&server, &set, "--lock-rows", rows)?;
    }
    let bar = progress::Bar::migrations(args.common.format == OutputFormat::Human);
    let work = async {
        let mut options = options;
        let mut shaped = None;
        if let Some(url) = &args.stats_from {
            let stats = crate::stats_from::read(url).await?;
            shaped = Some(stats.describe(&crate::backend::url::redact(url)));
            options.shapes = stats.shapes;
        }
        let mut report = check::run(&server, &set, &options, &bar).await?;
        report.summary.stats_from = shaped;
        Ok(report)
    };
    let url = args.common.database_url.as_deref();
    let mut done = None;
    let code = supervise(
        &server,
        url,
        interrupts,
        work,
        || bar.clear(),
        |mut report| {
            accept(&mut report, &accepts);
            done = Some(report);
            exit::OK
        },
    )
    .await;
    done.ok_or(code)
}

/// The reports of runs on several majors as one: every finding and accepted finding says the
/// version it was found on (in its step, so that every format shows it and a baseline tells
/// them apart), notes are kept once, a migration checked on any major counts as checked (and
/// the downs tested are those of the major that tested most), the other counts add up.
fn on_each_version(reports: Vec<Report>) -> Report {
    let mut merged: Option<Report> = None;
    let mut duration = 0;
    for mut r in reports {
        let on = format!(" · PostgreSQL {}", r.server);
        for f in r
            .findings
            .iter_mut()
            .chain(r.accepted.iter_mut().map(|a| &mut a.finding))
        {
            f.step.push_str(&on);
        }
        duration += r.summary.duration_ms;
        let Some(m) = merged.as_mut() else {
            merged = Some(r);
            continue;
        };
        m.server = format!("{}, {}", m.server, r.server);
        m.findings.append(&mut r.findings);
        m.accepted.append(&mut r.accepted);
        for note in r.notes {
            if !m
                .notes
                .iter()
                .any(|n| n.kind == note.kind && n.message == note.message)
            {
                m.notes.push(note);
            }
        }
        // checked on any major is checked; skipped only where no major reached it
        for id in r.checked {
            if !m.checked.contains(&id) {
                m.checked.push(id);
            }
        }
        m.skipped.retain(|id| !m.checked.contains(id));
        m.summary.steps += r.summary.steps;
        m.summary.rows_seeded += r.summary.rows_seeded;
        m.summary.rows_skipped += r.summary.rows_skipped;
        m.summary.downs_tested = m.summary.downs_tested.max(r.summary.downs_tested);
    }
    let mut merged = merged.expect("at least two reports");
    merged.finish(Duration::from_millis(duration));
    merged
}

/// Writes the run's findings as a baseline and says how many; exit 0 (a baseline of a failing
/// history is the point).
fn write(report: &Report, path: &Path) -> u8 {
    let baseline = baseline::of(report);
    if let Err(e) = std::fs::write(path, baseline.to_json()) {
        return error(
            exit::USAGE,
            &format!("failed to write `{}` (--output): {e}", path.display()),
        );
    }
    eprint!("{}", crate::report::human::summary(report, false));
    eprintln!(
        "wrote {} finding(s) to `{}`: `migproof check --baseline {}` fails only on others",
        baseline.findings.len(),
        path.display(),
        path.display()
    );
    exit::OK
}

/// Moves what the allow comments and the baseline accept out of the failing findings, and
/// notes allow comments that accept nothing.
fn accept(report: &mut Report, accepts: &Accepts) {
    let allowed = |f: &crate::report::Finding| {
        accepts.allows.iter().find(|a| {
            a.kind == f.kind.as_str()
                && a.migration == f.migration
                && f.place
                    .as_ref()
                    .is_some_and(|p| Path::new(&p.file) == a.path)
        })
    };
    let mut used = Vec::new();
    for f in &report.findings {
        if let Some(a) = allowed(f) {
            used.push((a.path.clone(), a.line));
        }
    }
    baseline::accept(report, |f| {
        allowed(f).map(|a| format!("allow at {}:{}: {}", a.path.display(), a.line, a.reason))
    });
    for a in &accepts.allows {
        let checked = report.checked.contains(&a.migration);
        if checked && !used.contains(&(a.path.clone(), a.line)) {
            report.notes.push(Note {
                kind: NoteKind::Source,
                migration: Some(a.migration.clone()),
                step: None,
                message: format!(
                    "`{}:{}`: `migproof:allow {}` accepts no finding here; remove it",
                    a.path.display(),
                    a.line,
                    a.kind
                ),
                diff: None,
            });
        }
    }
    if let Some((label, baseline)) = &accepts.baseline {
        baseline.apply(report, label);
    }
    report.summary.notes = report.notes.len();
}

/// What `check` is asked to do: each flag, else its setting in migproof.toml's [check], else
/// its default; the scope, the baseline (not when writing one) and the allow comments.
fn check_plan(
    args: &CheckArgs,
    set: &MigrationSet,
    writing_baseline: bool,
) -> Result<(CheckOptions, Accepts), String> {
    let file = &set.settings.check;
    let step_timeout = args
        .step_timeout
        .or(file.step_timeout)
        .unwrap_or(DEFAULT_STEP_TIMEOUT);
    let level = args.data_dependent.or(file.data_dependent);
    let scope = match (&args.since, &args.changed_from) {
        (Some(name), _) => Some(Scope {
            migrations: changes::since(set, name)?,
            why: format!("from {name} on"),
        }),
        (_, Some(reference)) => Some(Scope {
            migrations: changes::changed_from(set, reference)?,
            why: format!("changed since {reference}"),
        }),
        _ => None,
    };
    let options = CheckOptions {
        strict: args.strict || file.strict == Some(true),
        require_down: args.require_down || file.require_down == Some(true),
        allow_destructive: args.allow_destructive || file.allow_destructive == Some(true),
        data_dependent_warn: level == Some(Level::Warn),
        compat: args.compat.or(file.compat).unwrap_or_default(),
        data_from: args.data_from.clone(),
        shapes: Default::default(),
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
        scope,
    };
    let allows = allow::read(set).map_err(|e| e.to_string())?;
    for a in &allows {
        if Kind::from_name(&a.kind).is_none() {
            let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(format!(
                "`{}` line {}: `migproof:allow {}` names no finding kind; use one of {}",
                a.path.display(),
                a.line,
                a.kind,
                kinds.join(", ")
            ));
        }
    }
    let baseline = match (&args.baseline, &file.baseline) {
        _ if writing_baseline => None,
        (Some(path), _) => Some(read_baseline(path, "--baseline")?),
        (None, Some(path)) => Some(read_baseline(
            &set.settings.path(path),
            "`baseline` of [check] in migproof.toml",
        )?),
        (None, None) => None,
    };
    Ok((options, Accepts { baseline, allows }))
}

/// Reads a baseline file named by `origin`; errors name the file, the line and the origin.
fn read_baseline(path: &Path, origin: &str) -> Result<(String, Baseline), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{origin} `{}`: {e}; write one with `migproof baseline`",
            path.display()
        )
    })?;
    let baseline =
        Baseline::parse(&text).map_err(|e| format!("{origin} `{}`: {e}", path.display()))?;
    Ok((path.display().to_string(), baseline))
}

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

/// `check`, or `baseline` when `write_baseline` names the file to write.
async fn run(args: CheckArgs, write_baseline: Option<PathBuf>, interrupts: &mut Interrupts) -> u8 {
    let mut plan = None;
    let vet = |set: &MigrationSet| {
        let planned = check_plan(&args, set, write_baseline.is_some())
            .map_err(|message| error(exit::USAGE, &message))?;
        if planned.0.locks.is_some() {
            locks::refuse_external_migrators(set, "`check --locks`")?;
        }
        plan = Some(planned);
        Ok(())
    };
    let (set, server) = match start(&args.common, interrupts, vet).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let (options, accepts) = plan.expect("vet ran");
    if options.locks.is_some() {
        let rows = args.locks.rows(&set);
        if let Err(code) = locks::refuse_rows_beyond_disk(&server, &set, "--lock-rows", rows) {
            return code;
        }
    }
    let output = args.common.output();
    let bar = progress::Bar::migrations(args.common.format == OutputFormat::Human);
    let work = async { Ok(check::run(&server, &set, &options, &bar).await?) };
    let url = args.common.database_url.as_deref();
    supervise(
        &server,
        url,
        interrupts,
        work,
        || bar.clear(),
        |mut report| {
            accept(&mut report, &accepts);
            match &write_baseline {
                None => output::publish(&report, &output),
                Some(path) => write(&report, path),
            }
        },
    )
    .await
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

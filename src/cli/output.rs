//! Where a run's report goes: stdout in `--format`, files in `--report FORMAT=PATH`, a human
//! summary on stderr when stdout carries a machine format, the GitHub job summary, and, when the
//! environment fails (exit 3), a document in each machine format saying so.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;

use super::{exit, Output, OutputFormat};
use crate::report::{self, Report, Source};

/// What the run in progress would write if the environment failed: set once the command and
/// its output are known.
static PENDING: Mutex<Option<(String, Source, Output)>> = Mutex::new(None);

/// Records the command, the folder and the output of the run, for [`environment_failed`].
pub(crate) fn expect(command: &str, dir: &Path, output: &Output) {
    let source = Source {
        dir: dir.display().to_string(),
        format: String::new(),
    };
    *PENDING.lock().expect("not poisoned") = Some((command.to_owned(), source, output.clone()));
}

/// The environment failed with `message` (already scrubbed of passwords): a machine format on
/// stdout or in a report file gets a valid document saying so, so that a CI step reading it
/// does not fail on an empty file. Human output gets nothing more than the error line.
pub(crate) fn environment_failed(message: &str) {
    let Some((command, source, output)) = PENDING.lock().expect("not poisoned").take() else {
        return;
    };
    let report = Report::environment_failed(&command, source, message.to_owned());
    let mut outputs = output.files.clone();
    if output.format != OutputFormat::Human {
        outputs.push(super::ReportFile {
            format: output.format,
            path: "-".into(),
        });
    }
    for file in outputs.iter().filter(|f| f.format != OutputFormat::Human) {
        let text = file.format.render(&report, false);
        let _ = write_to(&file.path, &text);
    }
}

/// Prints a run's report as `output` asks and returns its exit code: 0 with no finding, 1
/// with findings, 2 when a report file cannot be written.
pub(crate) fn publish(report: &Report, output: &Output) -> u8 {
    *PENDING.lock().expect("not poisoned") = None;
    let terminal = std::io::stdout().is_terminal();
    let mut code = if report.findings.is_empty() {
        exit::OK
    } else {
        exit::FINDINGS
    };
    let _ = write_to(Path::new("-"), &output.format.render(report, terminal));
    for file in &output.files {
        let text = file.format.render(report, false);
        if let Err(e) = write_to(&file.path, &text) {
            code = super::error(
                exit::USAGE,
                &format!("failed to write `{}` (--report): {e}", file.path.display()),
            );
        }
    }
    if output.format == OutputFormat::Github
        || output
            .files
            .iter()
            .any(|f| f.format == OutputFormat::Github)
    {
        step_summary(report);
    }
    if output.format != OutputFormat::Human {
        eprint!(
            "{}",
            report::human::summary(report, std::io::stderr().is_terminal())
        );
    }
    code
}

/// Appends the Markdown summary to `$GITHUB_STEP_SUMMARY` when GitHub Actions set it.
fn step_summary(report: &Report) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(report::github::summary(report).as_bytes()));
    if let Err(e) = appended {
        eprintln!(
            "warning: failed to append the job summary to `{}` (GITHUB_STEP_SUMMARY): {e}",
            Path::new(&path).display()
        );
    }
}

/// Writes `text` to stdout (`-`) or to a file, whole: through a temporary file beside it,
/// renamed into place, so that a reader never sees half a report.
fn write_to(path: &Path, text: &str) -> std::io::Result<()> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        return out.flush();
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    // Readable as any file the user writes (a temporary file is private).
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

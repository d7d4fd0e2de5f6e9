//! What every runner (`check`, `locks`, `fuzz`) shares: the progress it reports and the error
//! that ends a run. Runners import it; it imports only the errors it wraps.

use crate::backend::{describe, BackendError};
use crate::executor::StepError;

/// What a runner is doing, as it happens. Runners emit these; reporters (the CLI's progress
/// bars) consume them through [`Progress`].
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A run over `migrations` migrations begins, of which `checked` are checked (`check`
    /// with `--since` or `--changed-from` checks fewer; the golden pass applies them all).
    Started { migrations: usize, checked: usize },
    /// Migration `index` (0-based), `id`, enters `phase`.
    Migration {
        index: usize,
        id: &'a str,
        phase: Phase,
    },
    /// A fuzz case ended: `cases` done so far, `steps` run in all, `findings` so far.
    CaseDone {
        cases: u64,
        steps: u64,
        findings: usize,
    },
    /// The run is over.
    Finished,
}

/// What a runner does with a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Applied to the golden database, to learn the schema it must give.
    GoldenApply,
    /// Applied with realistic rows present.
    UpWithData,
    Down,
    UpAgain,
    /// The migrator run again at the same version.
    Rerun,
    DownWithNewRows,
    /// Tables filled before the lock trace.
    Fill,
    LockTrace,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::GoldenApply => "golden apply",
            Phase::UpWithData => "up with data",
            Phase::Down => "down",
            Phase::UpAgain => "up again",
            Phase::Rerun => "rerun",
            Phase::DownWithNewRows => "down with new rows",
            Phase::Fill => "fill",
            Phase::LockTrace => "lock trace",
        }
    }
}

/// Consumes a runner's [`Event`]s.
pub trait Progress: Send + Sync {
    fn event(&self, event: Event<'_>);
}

/// Progress that shows nothing.
pub struct Silent;
impl Progress for Silent {
    fn event(&self, _: Event<'_>) {}
}

/// Why a run could not finish: the environment failed (exit 3), or the input named
/// something the migrations never create, which shows only once they ran (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Lost(String),
    #[error("{0}")]
    Input(String),
}

impl From<StepError> for RunError {
    fn from(e: StepError) -> RunError {
        RunError::Lost(e.to_string())
    }
}

pub(crate) fn lost(e: sqlx::Error) -> RunError {
    RunError::Lost(format!(
        "lost the connection to the scratch database: {}",
        describe(&e)
    ))
}

//! What every runner (`check`, `locks`, `fuzz`) shares: the progress it reports and the error
//! that ends a run. Runners import it; it imports only the errors it wraps.

use crate::backend::{describe, BackendError};
use crate::executor::StepError;

/// Receives progress events; the CLI draws a progress bar from them.
pub trait Progress: Sync {
    fn start(&self, _total_migrations: usize) {}
    fn migration(&self, _index: usize, _id: &str, _phase: &str) {}
    fn finish(&self) {}
}

/// Progress that shows nothing.
pub struct Silent;
impl Progress for Silent {}

/// Why a run could not finish: the environment failed (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Lost(String),
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

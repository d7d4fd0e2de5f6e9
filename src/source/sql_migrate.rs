//! The sql_migrate layout (being written).

use std::path::{Path, PathBuf};

use super::{MigrationSet, SourceError};

/// True when the folder's entries are this layout's.
pub fn matches(_entries: &[PathBuf]) -> bool {
    false
}

/// Reads `dir` as a sql_migrate migrations folder.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    Err(SourceError::Invalid {
        path: dir.to_owned(),
        message: "this layout is not read yet".to_owned(),
    })
}

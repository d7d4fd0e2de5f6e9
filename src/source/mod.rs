//! Migration sources: finds and reads a project's migrations from disk into one
//! format-independent [`MigrationSet`]. Reads files only, never a database; how a script is
//! sent to the server is described here as data and carried out by `executor`.

pub mod split;
pub mod sqlx;

use std::fmt;
use std::path::{Path, PathBuf};

/// Every migration of a project, in the order its migrator applies them.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    /// Which layout the folder was read as.
    pub format: Format,
    /// The folder the migrations were read from.
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
    /// Migrations re-applied after the versioned ones whenever their text changed (Flyway's
    /// `R__` files); each must be idempotent. Empty for most layouts.
    pub repeatable: Vec<Migration>,
    /// Things the reader could not honour and the user should know (for example Liquibase
    /// preconditions that are not evaluated).
    pub notes: Vec<String>,
}

/// The layouts migproof can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Sqlx,
}

impl MigrationSet {
    /// A set of versioned migrations only, as most layouts produce.
    pub fn new(format: Format, dir: &Path, migrations: Vec<Migration>) -> MigrationSet {
        MigrationSet {
            format,
            dir: dir.to_owned(),
            migrations,
            repeatable: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Sqlx => "sqlx",
        }
    }

    pub const ALL: &'static [Format] = &[Format::Sqlx];
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One migration: an up script and, usually, a down script.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The version as written in the file name (`0003`, `20240101120000`, `1.1`).
    pub version: String,
    /// The description as written in the file name (`add_users`).
    pub description: String,
    pub up: Script,
    pub down: Option<Script>,
}

impl Migration {
    /// The name users know the migration by: version and description as in its file name,
    /// for example `0003_rename`.
    pub fn id(&self) -> String {
        if self.description.is_empty() {
            self.version.clone()
        } else {
            format!("{}_{}", self.version, self.description)
        }
    }
}

/// How one script reaches the server.
#[derive(Debug, Clone)]
pub struct Script {
    /// The file the script was read from (for messages).
    pub path: PathBuf,
    /// The file's full text, as read (BOM removed).
    pub text: String,
    /// Units sent to the server in order.
    pub blocks: Vec<Block>,
}

/// A run of SQL sent either inside one transaction or in autocommit mode.
#[derive(Debug, Clone)]
pub struct Block {
    pub transactional: bool,
    pub chunks: Vec<Chunk>,
}

/// One query message sent to the server (a chunk may hold several statements, which the
/// server then runs as one implicit transaction, as sqlx and golang-migrate do).
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Byte offset of the chunk in [`Script::text`], to turn a server error position into a
    /// line of the file.
    pub offset: usize,
    pub sql: String,
}

impl Script {
    /// A script sent as one query message, in a transaction or not.
    pub fn whole(path: PathBuf, text: String, transactional: bool) -> Script {
        let chunk = Chunk { offset: 0, sql: text.clone() };
        Script { path, text, blocks: vec![Block { transactional, chunks: vec![chunk] }] }
    }

    /// 1-based line of the byte `offset` in this script's file.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// True when any block runs outside a transaction.
    pub fn has_autocommit(&self) -> bool {
        self.blocks.iter().any(|b| !b.transactional)
    }
}

/// Why a folder could not be read as migrations. Every message names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("migrations folder `{}` does not exist", .0.display())]
    Missing(PathBuf),
    #[error("`{}` is not a folder", .0.display())]
    NotADir(PathBuf),
    #[error("failed to read `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("`{}` is not valid UTF-8 text (byte {offset}); migrations must be UTF-8", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("`{}` is a binary file, not SQL text (NUL byte at byte {offset})", path.display())]
    Binary { path: PathBuf, offset: usize },
    #[error("migrations folder `{}` holds no migrations{hint}", dir.display())]
    Empty { dir: PathBuf, hint: String },
    #[error("duplicate migration version {version}: `{}` and `{}`", first.display(), second.display())]
    Duplicate { version: String, first: PathBuf, second: PathBuf },
    #[error("`{}` is a down migration without its up (expected `{}`)", down.display(), expected.display())]
    DownWithoutUp { down: PathBuf, expected: PathBuf },
    #[error("`{}`: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// Reads a text file, rejecting binary or non-UTF-8 content and removing a UTF-8 BOM.
pub fn read_text(path: &Path) -> Result<String, SourceError> {
    let bytes =
        std::fs::read(path).map_err(|source| SourceError::Io { path: path.to_owned(), source })?;
    let text = String::from_utf8(bytes).map_err(|e| SourceError::NotUtf8 {
        path: path.to_owned(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    if let Some(pos) = text.find('\0') {
        return Err(SourceError::Binary { path: path.to_owned(), offset: pos });
    }
    Ok(text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text))
}

/// Lists the entries of a migrations folder, sorted by name, with clear errors for a missing
/// or unreadable folder.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let io = |source| SourceError::Io { path: dir.to_owned(), source };
    // `exists()` would call a symlink loop or a folder without permission "missing".
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SourceError::Missing(dir.to_owned()));
        }
        Err(e) => return Err(io(e)),
        Ok(meta) if !meta.is_dir() => return Err(SourceError::NotADir(dir.to_owned())),
        Ok(_) => {}
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        entries.push(entry.map_err(io)?.path());
    }
    entries.sort();
    Ok(entries)
}

/// Reads `dir` as `format`, or detects the layout when `format` is `None`.
pub fn load(dir: &Path, format: Option<Format>) -> Result<MigrationSet, SourceError> {
    let format = match format {
        Some(f) => f,
        None => detect(dir)?,
    };
    match format {
        Format::Sqlx => sqlx::load(dir),
    }
}

/// Works out which layout a folder uses.
pub fn detect(dir: &Path) -> Result<Format, SourceError> {
    let entries = list_dir(dir)?;
    if sqlx::matches(&entries) {
        return Ok(Format::Sqlx);
    }
    let names: Vec<String> = entries
        .iter()
        .take(5)
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let hint = if names.is_empty() {
        String::new()
    } else {
        format!(
            " in a layout migproof knows ({}); found: {}",
            Format::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "),
            names.join(", ")
        )
    };
    Err(SourceError::Empty { dir: dir.to_owned(), hint })
}

//! Migration sources: finds and reads a project's migrations from disk into one
//! format-independent [`MigrationSet`]. Reads files only, never a database; how a script is
//! sent to the server is described here as data and carried out by `executor`.

pub mod alembic;
pub mod allow;
pub mod atlas;
pub mod changes;
pub mod command;
pub mod config;
pub mod dbmate;
pub mod diesel;
pub mod drizzle;
pub mod files;
pub mod flyway;
pub mod golang_migrate;
pub mod goose;
pub mod ini;
pub mod liquibase;
pub mod newer;
pub mod prisma;
pub mod refinery;
pub mod split;
pub mod sqitch;
pub mod sql_migrate;
pub mod sqlx;
pub mod tern;

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
    /// What data comparisons leave out (`[data]` of `migproof.toml`).
    pub data: config::DataRules,
    /// What the server needs first (`[setup]` of `migproof.toml`).
    pub setup: config::Setup,
    /// The lock trace's table sizes (`[locks]` of `migproof.toml`).
    pub locks: config::Locks,
    /// What `migproof.toml` sets in place of flags (`[check]`, `[fuzz]`, `[server]`).
    pub settings: config::Settings,
    /// The previous release's queries, which `check` runs after each up (`[compat] queries`).
    pub queries: Vec<config::Query>,
    /// The project's own checks that a migration is in place (Sqitch's `verify/`), by
    /// migration id: run after the migration's up and after the next one's down, a verify
    /// that fails is a finding. Empty for most layouts.
    pub verify: std::collections::BTreeMap<String, Script>,
    /// History tables of the project's migrator beyond its layout's own
    /// (`Format::history_tables`): `[command] history_tables` of `migproof.toml`.
    pub history_tables: Vec<String>,
    /// True for layouts that have no down by design (Prisma, Drizzle, Atlas): rolling back
    /// means restoring a backup, said once in the report instead of a note per migration.
    pub forward_only: bool,
}

/// The layouts migproof can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Sqlx,
    Diesel,
    GolangMigrate,
    Dbmate,
    Refinery,
    Flyway,
    Liquibase,
    Alembic,
    Command,
    Goose,
    SqlMigrate,
    Tern,
    Atlas,
    Prisma,
    Drizzle,
    Sqitch,
    Files,
}

impl MigrationSet {
    /// The file a finding of migration `id` at `step` points at: the down for a step that ran
    /// it (`down ...`), else the up.
    pub fn file_of(&self, id: &str, step: &str) -> Option<PathBuf> {
        let m = self
            .migrations
            .iter()
            .chain(&self.repeatable)
            .find(|m| m.id() == id)?;
        let down = step.starts_with("down") || step.contains(": down") || step.contains("roll");
        match (&m.down, down) {
            (Some(d), true) => Some(d.path.clone()),
            _ => Some(m.up.path.clone()),
        }
    }

    /// The tables the project's migrator keeps its history in, left out of every snapshot
    /// and data check: its layout's, and those `migproof.toml` names.
    pub fn history_tables(&self) -> Vec<&str> {
        let own = self.history_tables.iter().map(String::as_str);
        self.format
            .history_tables()
            .iter()
            .copied()
            .chain(own)
            .collect()
    }

    /// A set of versioned migrations only, as most layouts produce.
    pub fn new(format: Format, dir: &Path, migrations: Vec<Migration>) -> MigrationSet {
        MigrationSet {
            format,
            dir: dir.to_owned(),
            migrations,
            repeatable: Vec::new(),
            notes: Vec::new(),
            data: config::DataRules::default(),
            setup: config::Setup::default(),
            locks: config::Locks::default(),
            settings: config::Settings::default(),
            queries: Vec::new(),
            verify: Default::default(),
            history_tables: Vec::new(),
            forward_only: false,
        }
    }
}

impl Format {
    /// What migproof knows of this layout.
    pub fn layout(self) -> &'static Layout {
        LAYOUTS
            .iter()
            .copied()
            .find(|l| l.format == self)
            .expect("every format has its layout in LAYOUTS")
    }

    /// The tables the migrator of this layout keeps its history in (see
    /// [`Layout::history_tables`]).
    pub fn history_tables(self) -> &'static [&'static str] {
        self.layout().history_tables
    }

    pub fn name(self) -> &'static str {
        self.layout().name
    }

    /// Every layout, in the order help texts list them.
    pub fn all() -> impl Iterator<Item = Format> {
        LAYOUTS.iter().map(|l| l.format)
    }

    /// The format called `name`, as `--source` and saved cases spell it.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::all().find(|f| f.name() == name)
    }
}

/// Everything migproof knows of one layout: how to tell a folder of it, how to read it, and
/// what its migrator leaves in the database. Each layout's module defines its own `LAYOUT`;
/// [`LAYOUTS`] lists them. Adding a layout is a module and a line there.
pub struct Layout {
    pub format: Format,
    /// As `--source`, `source =` in `migproof.toml` and saved cases spell it.
    pub name: &'static str,
    /// Reads a folder of this layout.
    pub load: fn(&Path) -> Result<MigrationSet, SourceError>,
    /// How [`detect`] tells a folder of this layout.
    pub detect: Detect,
    /// The tables its migrator keeps its history in, when migproof runs an external migrator
    /// that creates them (Alembic; any tool behind `[command]`). migproof applies the other
    /// layouts itself and records what it applied in its own schema, so there a table named
    /// like a migrator's history table is the project's data.
    pub history_tables: &'static [&'static str],
    /// The marks its tool reads at the start of a line in SQL files (`-- +goose Up`), and
    /// what the tool is called in a message: a file holding one, read in another layout,
    /// would be run as a plain script, so it is refused.
    pub marks: (&'static str, &'static [&'static str]),
    /// Whether its tool replaces `${name}` placeholders before a script runs (Flyway,
    /// Liquibase); in other layouts a placeholder is refused.
    pub placeholders: bool,
}

/// How a layout's folders are told apart from others'. [`detect`] tries the kinds in the
/// order they are declared here.
pub enum Detect {
    /// A configuration file that says how the project migrates (`alembic.ini`, a
    /// `migproof.toml` with `[command]`): the folder is this layout, whatever it holds.
    Config(fn(&[PathBuf]) -> bool),
    /// A file only this tool writes (a plan, a sum file, a journal, a lock file).
    OwnFile(fn(&[PathBuf]) -> bool),
    /// Plain `.sql` files told by the marks inside them (`-- +goose Up`). Never a folder of
    /// `.up.sql` and `.down.sql` files, unless `paired` says the tool's files may sit there;
    /// the first that matches is taken instead of the plain-name layouts (`Group::Plain`).
    Marks {
        matches: fn(&[PathBuf]) -> bool,
        paired: bool,
    },
    /// Told by file names, which the layouts of a group share: of those that match, the
    /// first that `claims` the folder (`claims(dir, entries)`), else the first in
    /// [`LAYOUTS`]. Layouts of different groups matching at once is a mixed folder, refused.
    Names {
        group: Group,
        matches: fn(&[PathBuf]) -> bool,
        claims: fn(&Path, &[PathBuf]) -> bool,
    },
    /// Never detected: read only when asked for (`--source`, `source =` in migproof.toml).
    Asked,
}

/// Layouts whose file names look alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `<version>_<name>.sql`, `.up.sql` and `.down.sql`: sqlx, golang-migrate.
    Plain,
    /// A folder per migration holding `up.sql` and `down.sql`: diesel.
    Folders,
    /// `V<version>__<name>.sql`: Flyway, refinery.
    Versioned,
}

/// No folder is claimed: the first matching layout of its group is taken.
pub fn claims_none(_: &Path, _: &[PathBuf]) -> bool {
    false
}

/// Every layout migproof reads, in the order help texts list them; within each kind of
/// [`Detect`], the order in which detection tries them.
pub static LAYOUTS: [&Layout; 17] = [
    &sqlx::LAYOUT,
    &diesel::LAYOUT,
    &golang_migrate::LAYOUT,
    &flyway::LAYOUT,
    &refinery::LAYOUT,
    &command::LAYOUT,
    &alembic::LAYOUT,
    &goose::LAYOUT,
    &sql_migrate::LAYOUT,
    &tern::LAYOUT,
    &liquibase::LAYOUT,
    &dbmate::LAYOUT,
    &sqitch::LAYOUT,
    &atlas::LAYOUT,
    &drizzle::LAYOUT,
    &prisma::LAYOUT,
    &files::LAYOUT,
];

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
        if self.version.is_empty() {
            format!("R__{}", self.description)
        } else if self.description.is_empty() {
            self.version.clone()
        } else {
            format!("{}_{}", self.version, self.description)
        }
    }
}

/// How one script reaches the server.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The file the script was read from (for messages).
    pub path: PathBuf,
    /// The file's full text, as read (BOM removed).
    pub text: String,
    /// Units sent to the server in order.
    pub blocks: Vec<Block>,
    /// For migrations run by an external tool (Alembic, a configured command): the command
    /// that runs this script instead of `blocks`.
    pub command: Option<Command>,
}

/// An external migrator's command line. In `argv`, `{url}` becomes the scratch database's
/// URL and `{ini}` the path of a temporary copy of `config` pointing at it; the environment
/// also gets `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub config: Option<ConfigFile>,
    /// The URL scheme the tool expects (`postgresql+psycopg` for SQLAlchemy).
    pub scheme: String,
}

/// A migrator's configuration file that names the database (Alembic's `alembic.ini`): run,
/// the migrator gets a copy of it pointing at the scratch database.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// The file's text pointing at `url`, the file being in folder `here`.
    pub with_url: fn(text: &str, here: &Path, url: &str) -> String,
}

/// The same file: how it is rewritten is its layout's, so the path tells.
impl PartialEq for ConfigFile {
    fn eq(&self, other: &ConfigFile) -> bool {
        self.path == other.path
    }
}
impl Eq for ConfigFile {}

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
        let chunk = Chunk {
            offset: 0,
            sql: text.clone(),
        };
        Script {
            path,
            text,
            blocks: vec![Block {
                transactional,
                chunks: vec![chunk],
            }],
            command: None,
        }
    }

    /// 1-based line of the byte `offset` in this script's file.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// True when line `line` (1-based) lies in a block the author marked as reviewed for
    /// locking, `-- safety-assured:start` to `-- safety-assured:end` (the convention of
    /// diesel-guard and strong_migrations' `safety_assured`). A start without an end runs to
    /// the end of the file.
    pub fn safety_assured(&self, line: usize) -> bool {
        let mut inside = false;
        for (n, text) in self.text.lines().enumerate() {
            let marker = text.trim().strip_prefix("--").map(str::trim);
            match marker {
                Some("safety-assured:start") => inside = true,
                Some("safety-assured:end") => inside = false,
                _ if n + 1 == line => return inside,
                _ => {}
            }
        }
        false
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
    #[error(
        "`{}` line {line} holds `{marker}`, a {tool} marker, but the folder is read as {format}, \
         which would send the whole file as one script (for direction markers: the down run as \
         part of the up, and the check would pass having tested nothing); {advice}",
        path.display()
    )]
    ForeignMarker {
        path: PathBuf,
        line: usize,
        marker: String,
        tool: &'static str,
        format: Format,
        advice: String,
    },
    #[error("failed to read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is not valid UTF-8 text (byte {offset}); migrations must be UTF-8", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("`{}` is a binary file, not SQL text (NUL byte at byte {offset})", path.display())]
    Binary { path: PathBuf, offset: usize },
    #[error("migrations folder `{}` holds no migrations{hint}", dir.display())]
    Empty { dir: PathBuf, hint: String },
    #[error("duplicate migration version {version}: `{}` and `{}`{}", first.display(), second.display(), lexical_hint(first, second))]
    Duplicate {
        version: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("`{}` is a down migration without its up (expected `{}`)", down.display(), expected.display())]
    DownWithoutUp { down: PathBuf, expected: PathBuf },
    #[error("`{}`: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("`{}` is named like a migration but is {found}, not {wanted}; migrators skip such an entry without a word, so its migration would never run: replace it with {wanted} or move it out of the migrations folder", path.display())]
    NotReadable {
        path: PathBuf,
        found: String,
        wanted: &'static str,
    },
    #[error("migrations folder `{}` mixes layouts ({layouts}); found: {files}; keep one layout per folder, or pick one with --source", dir.display())]
    Mixed {
        dir: PathBuf,
        layouts: String,
        files: String,
    },
}

/// For two up scripts sharing a version: the layout that runs such files one after another.
fn lexical_hint(first: &Path, second: &Path) -> &'static str {
    let up = |p: &Path| p.to_string_lossy().ends_with("up.sql");
    if up(first) && up(second) {
        "; if this project's migrator runs the files in the byte order of their names, several \
         sharing a number (maragudk/migrate), pass --source files"
    } else {
        ""
    }
}

/// Reads a text file, rejecting binary or non-UTF-8 content and removing a UTF-8 BOM.
/// Parses `text`, read from the TOML file `path`; an error names the file and the line.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, SourceError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| split::line_of(text, s.start)).unwrap_or(1);
        SourceError::Invalid {
            path: path.to_owned(),
            message: format!("line {line}: {}", e.message()),
        }
    })
}

pub fn read_text(path: &Path) -> Result<String, SourceError> {
    let bytes = std::fs::read(path).map_err(|source| SourceError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| SourceError::NotUtf8 {
        path: path.to_owned(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    if let Some(pos) = text.find('\0') {
        return Err(SourceError::Binary {
            path: path.to_owned(),
            offset: pos,
        });
    }
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_owned)
        .unwrap_or(text))
}

/// Lists the entries of a migrations folder, sorted by name, with clear errors for a missing
/// or unreadable folder.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let io = |source| SourceError::Io {
        path: dir.to_owned(),
        source,
    };
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

/// What a migration entry must be for its layout to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A regular file (or a symlink to one): a script.
    File,
    /// A folder (or a symlink to one): diesel's migrations.
    Folder,
}

/// Lists `dir` like [`list_dir`], and checks every entry `named` claims (named like one of the
/// layout's migrations) is what the layout reads, symlinks followed. A folder named
/// `0003_x.up.sql`, a FIFO, a socket or a dangling symlink is an error naming it, as is one
/// that cannot be looked at (a symlink loop, no permission): migrators skip such entries
/// silently, and a run that passes without one of its migrations proves nothing. Other entries
/// are returned unchecked, for the layout to skip.
pub fn list_migrations(
    dir: &Path,
    want: Want,
    named: impl Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, SourceError> {
    let entries = list_dir(dir)?;
    for path in entries.iter().filter(|p| named(p)) {
        check_entry(path, want)?;
    }
    Ok(entries)
}

/// Fails unless `path` is a `want`, symlinks followed; see [`list_migrations`].
fn check_entry(path: &Path, want: Want) -> Result<(), SourceError> {
    let io = |source| SourceError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        // The entry was listed, so only a symlink can lead nowhere.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let target = std::fs::read_link(path).map_err(io)?;
            return Err(SourceError::NotReadable {
                path: path.to_owned(),
                found: format!("a dangling symlink (to `{}`)", target.display()),
                wanted: want.name(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    let found = if meta.is_file() {
        Want::File.name()
    } else if meta.is_dir() {
        Want::Folder.name()
    } else {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else {
            "a device"
        }
    };
    if found == want.name() {
        Ok(())
    } else {
        Err(SourceError::NotReadable {
            path: path.to_owned(),
            found: found.to_owned(),
            wanted: want.name(),
        })
    }
}

impl Want {
    fn name(self) -> &'static str {
        match self {
            Want::File => "a regular file",
            Want::Folder => "a folder",
        }
    }
}

/// Reads `dir` as `format`, or detects the layout when `format` is `None`.
pub fn load(dir: &Path, format: Option<Format>) -> Result<MigrationSet, SourceError> {
    let mut why = None;
    let format = match format {
        Some(f) => f,
        None => match config::layout(dir)? {
            Some(f) => f,
            None => {
                let detected = detect(dir)?;
                if detected == Format::GolangMigrate {
                    why = sqlx_would_refuse(&list_dir(dir)?);
                }
                detected
            }
        },
    };
    let mut set = (format.layout().load)(dir)?;
    if let Some((path, line)) = why {
        set.notes.push(format!(
            "read as golang-migrate, not sqlx (their file names are alike): `{}:{line}` holds a \
             statement PostgreSQL refuses inside a transaction, without sqlx's `-- \
             no-transaction` first line, so sqlx would fail on it; pass --source sqlx, or set \
             source = \"sqlx\" in migproof.toml, if this is a sqlx project",
            path.display()
        ));
    }
    refuse_foreign_markers(&set)?;
    let config = config::load(dir, &set.migrations)?;
    (set.data, set.setup, set.locks) = (config.data, config.setup, config.locks);
    set.queries = config.queries;
    set.settings = config.settings;
    Ok(set)
}

/// The first `.sql` file (and line) that sqlx would run in a transaction although it holds a
/// statement PostgreSQL refuses in one (`CREATE INDEX CONCURRENTLY`, ...): such a folder is
/// not a working sqlx project.
pub(crate) fn sqlx_would_refuse(entries: &[PathBuf]) -> Option<(PathBuf, usize)> {
    entries
        .iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sql"))
        .find_map(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            if text.starts_with("-- no-transaction") {
                return None;
            }
            let statements = split::split(&text).ok()?;
            statements
                .iter()
                .find(|st| split::is_non_transactional(&st.sql))
                .map(|st| (p.clone(), split::line_of(&text, st.offset)))
        })
}

/// A placeholder Flyway (and Liquibase) replace before a script runs, `${name}`: sent as it
/// is, the script would fail or mean something else.
static PLACEHOLDER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"\$\{[A-Za-z_][A-Za-z0-9_.:-]*\}").expect("the pattern is valid")
});

/// A script holding another tool's marks would be run whole as a plain script: a silent
/// misread (a goose file's down runs as part of its up). Refused, naming the file and line.
fn refuse_foreign_markers(set: &MigrationSet) -> Result<(), SourceError> {
    let scripts = set
        .migrations
        .iter()
        .chain(&set.repeatable)
        .flat_map(|m| std::iter::once(&m.up).chain(m.down.as_ref()))
        .filter(|s| s.command.is_none());
    let refuse = |script: &Script, i: usize, marker: &str, tool, layout: Format| {
        let advice = format!(
            "read the folder as {layout}: pass --source {layout}, or set source = \"{layout}\" \
             in migproof.toml"
        );
        SourceError::ForeignMarker {
            path: script.path.clone(),
            line: i + 1,
            marker: marker.to_owned(),
            tool,
            format: set.format,
            advice,
        }
    };
    let others: Vec<&Layout> = LAYOUTS
        .iter()
        .copied()
        .filter(|l| l.format != set.format)
        .collect();
    let placeholders = !set.format.layout().placeholders;
    for script in scripts {
        for (i, line) in script.text.lines().enumerate() {
            let line = line.trim_start();
            let lower = line.to_ascii_lowercase();
            let found = others.iter().find(|l| {
                l.marks
                    .1
                    .iter()
                    .any(|mark| lower.starts_with(&mark.to_ascii_lowercase()))
            });
            if let Some(l) = found {
                return Err(refuse(script, i, line.trim_end(), l.marks.0, l.format));
            }
            let code = line.split("--").next().unwrap_or_default();
            if let Some(m) = PLACEHOLDER.find(code).filter(|_| placeholders) {
                let flyway = Format::Flyway;
                return Err(refuse(script, i, m.as_str(), "Flyway placeholder", flyway));
            }
        }
    }
    Ok(())
}

/// Works out which layout a folder uses. Layouts whose file names look alike are told apart
/// by content (dbmate's `-- migrate:up`, Liquibase's changelog header), by the project around
/// them (`V1__x.sql` files are refinery's in a crate depending on refinery, else Flyway's), or
/// resolved to the more common tool (sqlx over golang-migrate; `--source` picks the other).
/// A folder holding two different layouts is refused.
pub fn detect(dir: &Path) -> Result<Format, SourceError> {
    let entries = list_dir(dir)?;
    for layout in LAYOUTS {
        if let Detect::Config(matches) = layout.detect {
            if matches(&entries) {
                return Ok(layout.format);
            }
        }
    }
    for layout in LAYOUTS {
        if let Detect::OwnFile(matches) = layout.detect {
            if matches(&entries) {
                return Ok(layout.format);
            }
        }
    }
    // A folder of `.up.sql` and `.down.sql` files is sqlx's or golang-migrate's whatever its
    // files hold: another tool's marker in one is then refused by name (see
    // `refuse_foreign_markers`).
    let paired = entries.iter().any(|p| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        name.ends_with(".up.sql") || name.ends_with(".down.sql")
    });
    let marked = LAYOUTS.iter().find(|l| match l.detect {
        Detect::Marks {
            matches,
            paired: may,
        } => (may || !paired) && matches(&entries),
        _ => false,
    });
    let mut found: Vec<Format> = marked.iter().map(|l| l.format).collect();
    for group in [Group::Plain, Group::Folders, Group::Versioned] {
        if group == Group::Plain && marked.is_some() {
            continue;
        }
        let matching: Vec<&Layout> = LAYOUTS
            .iter()
            .copied()
            .filter(|l| match l.detect {
                Detect::Names {
                    group: g, matches, ..
                } => g == group && matches(&entries),
                _ => false,
            })
            .collect();
        let claimed = matching.iter().find(|l| match l.detect {
            Detect::Names { claims, .. } => claims(dir, &entries),
            _ => false,
        });
        if let Some(layout) = claimed.or(matching.first()) {
            found.push(layout.format);
        }
    }
    let names: Vec<String> = entries
        .iter()
        .take(6)
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => {
            let hint = if names.is_empty() {
                String::new()
            } else {
                format!(
                    " in a layout migproof knows ({}); found: {}",
                    Format::all()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    names.join(", ")
                )
            };
            Err(SourceError::Empty {
                dir: dir.to_owned(),
                hint,
            })
        }
        many => Err(SourceError::Mixed {
            dir: dir.to_owned(),
            layouts: many
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(" and "),
            files: names.join(", "),
        }),
    }
}

/// Test helpers the layout readers' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::Script;

    /// A temporary folder holding `files` (name, bytes).
    pub fn folder(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        dir
    }

    /// The SQL of the chunks of a script's first block.
    pub fn sqls(script: &Script) -> Vec<&str> {
        script.blocks[0]
            .chunks
            .iter()
            .map(|c| c.sql.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_assured_blocks_cover_the_lines_between_their_markers() {
        let script = Script {
            path: "up.sql".into(),
            text: "alter table a add column b int;\n\
                   -- safety-assured:start\n\
                   -- the check was validated by hand\n\
                   alter table a alter b set not null;\n\
                     --  safety-assured:end\n\
                   create index on a (b);\n\
                   -- safety-assured:start\n\
                   alter table a add unique (b);\n"
                .into(),
            blocks: vec![],
            command: None,
        };
        let covered: Vec<usize> = (1..=8).filter(|&l| script.safety_assured(l)).collect();
        assert_eq!(covered, [3, 4, 8]);
    }

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    /// A harness-style folder (maragudk/migrate): up files sharing a number, run in the
    /// order of their names. Read as sqlx it is refused, saying which layout reads it.
    #[test]
    fn up_files_sharing_a_version_suggest_the_files_layout() {
        let dir = tree(&[
            ("1_users.up.sql", "create table users (id int);"),
            ("1_orders.up.sql", "create table orders (id int);"),
        ]);
        let e = load(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("duplicate migration version 1"), "{e}");
        assert!(e.contains("--source files"), "{e}");
        let set = load(dir.path(), Some(Format::Files)).unwrap();
        let ids: Vec<String> = set.migrations.iter().map(Migration::id).collect();
        assert_eq!(ids, ["1_orders", "1_users"]);
    }

    #[test]
    fn the_registry_holds_each_layout_once_under_its_own_name() {
        let mut names = std::collections::BTreeSet::new();
        for layout in LAYOUTS {
            assert!(names.insert(layout.name), "{} twice", layout.name);
            assert_eq!(Format::from_name(layout.name), Some(layout.format));
            assert!(std::ptr::eq(layout.format.layout(), layout));
        }
        // every mark is some layout's own, and no two layouts claim one
        let marks: Vec<&str> = LAYOUTS
            .iter()
            .flat_map(|l| l.marks.1.iter().copied())
            .collect();
        let distinct: std::collections::BTreeSet<&str> = marks.iter().copied().collect();
        assert_eq!(marks.len(), distinct.len());
    }

    #[test]
    fn versioned_files_are_flyway_unless_the_folder_is_refinery() {
        let dir = tree(&[("V1__a.sql", "select 1;")]);
        assert_eq!(detect(dir.path()).unwrap(), Format::Flyway);
        // Only refinery has Rust-file migrations; its reader then says how to turn them into SQL.
        let dir = tree(&[("V1__a.sql", "select 1;"), ("V2__b.rs", "")]);
        assert_eq!(detect(dir.path()).unwrap(), Format::Refinery);
        let dir = tree(&[
            ("Cargo.toml", "[dependencies]\nrefinery = \"0.8\"\n"),
            ("migrations/V1__a.sql", "select 1;"),
        ]);
        assert_eq!(
            detect(&dir.path().join("migrations")).unwrap(),
            Format::Refinery
        );
    }
}

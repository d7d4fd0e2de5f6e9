//! The optional `migproof.toml` beside the migrations, for any layout: `[data]` says which
//! tables are not compared at all (written by triggers, queues, caches) and which data changes
//! a migration makes on purpose (a backfill, a normalisation), so that those are not findings.
//! (`[command]`, the external-migrator layout, is read by `command`.)
//!
//! `[locks.rows]` gives the big tables of a project their real size for `migproof locks` and
//! `check --locks` (the others get `--rows`).
//!
//! `[check]`, `[fuzz]` and `[server]` hold what a project would otherwise pass as flags on
//! every run (a flag wins over its setting); see the README's configuration section.
//!
//! ```toml
//! [check]
//! require_down = true
//! step_timeout = "5m"
//! [locks.rows]
//! "public.versions" = 5_000_000   # schema.table, or a bare name for any schema
//! [data]
//! ignore_tables = ["audit_log", "jobs.queue"]
//! [data.changes]
//! "0005_normalize_emails" = ["users.email"]   # a column: table.column or schema.table.column
//! "0007_rebuild_totals" = ["order_totals"]     # a whole table: table or schema.table
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{Format, Migration, SourceError};

pub const FILE: &str = "migproof.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The layout the folder is written in, as `--source` names it; read by [`layout`].
    source: Option<String>,
    /// The external-migrator layout; read by `command`.
    #[allow(dead_code)]
    command: Option<toml::Table>,
    #[serde(default)]
    data: DataRules,
    #[serde(default)]
    setup: Setup,
    #[serde(default)]
    locks: Locks,
    /// Per migration, the assumption about production rows under which its data-dependent
    /// failure is accepted.
    #[serde(default)]
    assume: BTreeMap<String, String>,
    /// Values the seeder writes into a column: `"table.column"` or `"schema.table.column"`.
    #[serde(default)]
    seed: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    check: CheckSettings,
    #[serde(default)]
    fuzz: FuzzSettings,
    #[serde(default)]
    server: ServerSettings,
    #[serde(default)]
    compat: CompatSettings,
}

/// `[compat]`: the previous release's own queries, which `check` runs after each up.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompatSettings {
    /// Files holding them, relative to migproof.toml's folder; `*` and `?` in the file name:
    /// `.sql` files (each statement a query, `$1`... for parameters) and sqlx's offline query
    /// files (`.sqlx/query-*.json`).
    #[serde(default)]
    queries: Vec<String>,
}

/// One query of the project's previous release (`[compat] queries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The file it was read from, as the user named its folder.
    pub path: PathBuf,
    /// Its first line there.
    pub line: usize,
    pub sql: String,
}

/// `[check]`: what `migproof check` would otherwise need flags for. A flag wins over its
/// setting.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSettings {
    pub strict: Option<bool>,
    pub require_down: Option<bool>,
    pub allow_destructive: Option<bool>,
    /// `error` or `warn`, as `--data-dependent`.
    pub data_dependent: Option<Level>,
    #[serde(default, deserialize_with = "duration")]
    pub step_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "jobs")]
    pub jobs: Option<u64>,
    /// `off`, `warn` or `error`, as `--locks`.
    pub locks: Option<LocksMode>,
    /// `off`, `note` or `error`, as `--compat`.
    pub compat: Option<CompatMode>,
    /// Rows per table for `--locks`, as `--lock-rows`.
    pub lock_rows: Option<u64>,
    #[serde(default, deserialize_with = "duration")]
    pub lock_threshold: Option<Duration>,
    /// The baseline of accepted findings, as `--baseline`; relative to this file's folder.
    pub baseline: Option<PathBuf>,
}

/// `[fuzz]`: the fuzz budget of a project. A flag wins over its setting.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuzzSettings {
    pub cases: Option<u64>,
    #[serde(default, deserialize_with = "duration")]
    pub duration: Option<Duration>,
    pub max_steps: Option<usize>,
    #[serde(default, deserialize_with = "jobs")]
    pub jobs: Option<u64>,
    pub strict: Option<bool>,
    #[serde(default, deserialize_with = "duration")]
    pub step_timeout: Option<Duration>,
    /// Where shrunk failures are saved, as `--regressions`; relative to this file's folder.
    pub regressions: Option<PathBuf>,
}

/// `[server]`: which PostgreSQL the project runs on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// The major version, as `--pg-version`.
    #[serde(default, deserialize_with = "major")]
    pub version: Option<u32>,
}

/// `error` or `warn`: whether a kind of finding fails the run or is a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warn,
}

/// What `check --locks` does with lock hazards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LocksMode {
    /// No lock analysis (the default: `check` stays a correctness gate).
    Off,
    /// Hazards are `lock_hazard` notes; the run still passes.
    Warn,
    /// Hazards are `lock_hazard` findings and fail the run; warnings stay notes.
    Error,
}

/// What `check --compat` does when the previous release's statements fail after an up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CompatMode {
    /// The previous release's statements are not tried.
    Off,
    /// A failure is a `breaks_previous_release` note; the run still passes (the default: a
    /// contract migration breaks the previous release on purpose).
    #[default]
    Note,
    /// A failure is a `breaks_previous_release` finding and fails the run.
    Error,
}

/// The project settings of `migproof.toml` that stand for command-line flags, and the file's
/// folder, which their paths are relative to.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub check: CheckSettings,
    pub fuzz: FuzzSettings,
    pub server: ServerSettings,
    /// The folder holding `migproof.toml`.
    pub dir: PathBuf,
}

impl Settings {
    /// A path the file gives, as seen from the current directory.
    pub fn path(&self, relative: &Path) -> PathBuf {
        self.dir.join(relative)
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn jobs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match u64::deserialize(d)? {
        n @ 1..=64 => Ok(Some(n)),
        n => Err(serde::de::Error::custom(format!(
            "jobs = {n}: give 1 to 64"
        ))),
    }
}

fn major<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match u32::deserialize(d)? {
        n @ 9..=99 => Ok(Some(n)),
        n => Err(serde::de::Error::custom(format!(
            "version = {n} is not a PostgreSQL major version (9 to 99)"
        ))),
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write it like 30s, 5m or 1h"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; use ms, s, m or h"
            ))
        }
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("`{text}` must be a positive duration"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is too long a duration"))
}

/// Most rows a table may be filled with, by `--rows` or `[locks.rows]`: enough to measure how
/// long a rewrite or a validation holds its lock, and a bound on what one run may write.
pub const MAX_TABLE_ROWS: u64 = 10_000_000;

/// The lock trace's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locks {
    /// Rows for some tables, by `schema.table` or bare name; the others get `--rows`.
    #[serde(default)]
    pub rows: BTreeMap<String, u64>,
}

/// What the server needs before the migrations can run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// Roles the migrations grant to or set as owners: created (NOLOGIN) in clusters migproof
    /// starts; required to exist on a server given by URL.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Which role applies the migrations (`owner` or `superuser`); `--migration-role` wins.
    #[serde(default)]
    pub migration_role: Option<crate::backend::MigrationRole>,
}

/// The `migproof.toml` settings every layout honours.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub data: DataRules,
    /// The previous release's queries (`[compat] queries`).
    pub queries: Vec<Query>,
    pub setup: Setup,
    pub locks: Locks,
    pub settings: Settings,
}

/// What the data comparisons leave out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRules {
    /// Tables never compared: `table` (any schema) or `schema.table`.
    #[serde(default)]
    pub ignore_tables: Vec<String>,
    /// Per migration (its version, or its full name such as `0005_normalize_emails`): the
    /// tables or columns whose values it changes on purpose.
    #[serde(default)]
    pub changes: BTreeMap<String, Vec<String>>,
    /// Per migration: the assumption about production rows under which its data-dependent
    /// failure on seeded rows is accepted (`[assume]`, top level in migproof.toml).
    #[serde(skip)]
    pub assume: BTreeMap<String, String>,
    /// Values the seeder writes into a column, by `table.column` or `schema.table.column`
    /// (`[seed]`, top level in migproof.toml).
    #[serde(skip)]
    pub seed: BTreeMap<String, Vec<String>>,
}

impl DataRules {
    /// The values `[seed]` gives column `column` of table `schema.table`, if any.
    pub fn seed_values(&self, schema: &str, table: &str, column: &str) -> Option<&[String]> {
        if self.seed.is_empty() {
            return None; // most projects: no names to build for every column seeded
        }
        let short = format!("{table}.{column}");
        let long = format!("{schema}.{short}");
        self.seed
            .get(&long)
            .or_else(|| self.seed.get(&short))
            .map(Vec::as_slice)
    }

    /// The assumption the project wrote for `migration`, if any.
    pub fn assumption(&self, migration: &Migration) -> Option<&str> {
        self.assume
            .iter()
            .find(|(name, _)| migration.version == **name || migration.id() == **name)
            .map(|(_, why)| why.as_str())
    }
}

/// The layout the folder's `migproof.toml` names (`source = "golang-migrate"`), for a layout
/// that detection cannot tell from another (golang-migrate's file names are sqlx's). `None`
/// without the file or the key.
pub fn layout(dir: &Path) -> Result<Option<Format>, SourceError> {
    let path = dir.join(FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = super::read_text(&path)?;
    let file: File = super::parse_toml(&path, &text)?;
    let Some(name) = file.source else {
        return Ok(None);
    };
    match Format::from_name(&name) {
        Some(format) => Ok(Some(format)),
        None => {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("source"))
                .map_or(1, |i| i + 1);
            let known: Vec<&str> = Format::all().map(|f| f.name()).collect();
            Err(SourceError::Invalid {
                path,
                message: format!(
                    "line {line}: source = `{name}` is not a layout migproof reads ({})",
                    known.join(", ")
                ),
            })
        }
    }
}

/// Reads `[data]` and `[setup]` from the folder's `migproof.toml`, if there is one; every
/// migration named in `[data.changes]` must exist.
pub fn load(dir: &Path, migrations: &[Migration]) -> Result<Config, SourceError> {
    let path = dir.join(FILE);
    if !path.is_file() {
        return Ok(Config {
            settings: Settings {
                dir: dir.to_owned(),
                ..Settings::default()
            },
            ..Config::default()
        });
    }
    let text = super::read_text(&path)?;
    let file: File = super::parse_toml(&path, &text)?;
    if let Some(rows) = file.check.lock_rows.filter(|r| *r > MAX_TABLE_ROWS) {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with("lock_rows"))
            .map_or(1, |i| i + 1);
        return Err(SourceError::Invalid {
            path,
            message: format!("line {line}: [check] lock_rows = {rows}; at most {MAX_TABLE_ROWS}"),
        });
    }
    let named = file
        .data
        .changes
        .keys()
        .map(|name| ("[data.changes]", name))
        .chain(file.assume.keys().map(|name| ("[assume]", name)));
    for (section, name) in named {
        if !migrations
            .iter()
            .any(|m| m.version == *name || m.id() == *name)
        {
            let line = line_naming(&text, name);
            return Err(SourceError::Invalid {
                path,
                message: format!(
                    "line {line}: {section} names `{name}`, which is not a migration here"
                ),
            });
        }
    }
    for (table, rows) in &file.locks.rows {
        let line = line_naming(&text, table);
        let invalid = |message: String| SourceError::Invalid {
            path: path.clone(),
            message: format!("line {line}: {message}"),
        };
        let parts: Vec<&str> = table.split('.').collect();
        if table.is_empty() || parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
            return Err(invalid(format!(
                "[locks.rows] names `{table}`; name a table as `schema.table` or `table`"
            )));
        }
        if *rows > MAX_TABLE_ROWS {
            return Err(invalid(format!(
                "[locks.rows] gives `{table}` {rows} rows; at most {MAX_TABLE_ROWS}"
            )));
        }
    }
    for (column, values) in &file.seed {
        let line = line_naming(&text, column);
        let parts: Vec<&str> = column.split('.').collect();
        let message = if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            format!(
                "[seed] names `{column}`; name a column as `table.column` or `schema.table.column`"
            )
        } else if values.is_empty() {
            format!("[seed] gives `{column}` no values; give at least one, or leave it out")
        } else {
            continue;
        };
        return Err(SourceError::Invalid {
            path,
            message: format!("line {line}: {message}"),
        });
    }
    let mut queries = Vec::new();
    for pattern in &file.compat.queries {
        let line = line_naming(&text, pattern);
        let files = matching(dir, pattern).map_err(|message| SourceError::Invalid {
            path: path.clone(),
            message: format!("line {line}: [compat] queries: {message}"),
        })?;
        for file in files {
            queries.extend(read_queries(&file)?);
        }
    }
    Ok(Config {
        queries,
        data: DataRules {
            assume: file.assume,
            seed: file.seed,
            ..file.data
        },
        setup: file.setup,
        locks: file.locks,
        settings: Settings {
            check: file.check,
            fuzz: file.fuzz,
            server: file.server,
            dir: dir.to_owned(),
        },
    })
}

/// The files of `dir` that `pattern` names: a path relative to `dir` whose file name may hold
/// `*` (any characters but `/`) and `?` (one character). Sorted; a pattern naming none is an
/// error, as it is most likely a typo.
fn matching(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let (folder, name) = match pattern.rsplit_once('/') {
        Some((folder, name)) => (dir.join(folder), name),
        None => (dir.to_owned(), pattern),
    };
    let wild = |c: char| matches!(c, '*' | '?' | '[' | '{');
    if pattern
        .rsplit_once('/')
        .is_some_and(|(f, _)| f.contains(wild))
    {
        return Err(format!(
            "`{pattern}`: wildcards are read in the file name only (`queries/*.sql`)"
        ));
    }
    let regex: String = name
        .chars()
        .map(|c| match c {
            '*' => "[^/]*".to_owned(),
            '?' => ".".to_owned(),
            c => regex::escape(&c.to_string()),
        })
        .collect();
    let regex = regex::Regex::new(&format!("^{regex}$")).map_err(|e| e.to_string())?;
    let entries = std::fs::read_dir(&folder)
        .map_err(|e| format!("`{pattern}`: cannot read `{}`: {e}", folder.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| regex.is_match(n))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "`{pattern}` matches no file in `{}`",
            folder.display()
        ));
    }
    Ok(files)
}

/// The queries of one file: the `query` of a sqlx offline file (`.json`), or each statement of
/// an SQL file.
fn read_queries(path: &Path) -> Result<Vec<Query>, SourceError> {
    let text = super::read_text(path)?;
    let invalid = |message: String| SourceError::Invalid {
        path: path.to_owned(),
        message,
    };
    if path.extension().is_some_and(|e| e == "json") {
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            invalid(format!(
                "line {}: not a sqlx offline query file: {e}",
                e.line()
            ))
        })?;
        let Some(sql) = json.get("query").and_then(|q| q.as_str()) else {
            return Err(invalid(
                "not a sqlx offline query file: it has no \"query\" text".to_owned(),
            ));
        };
        return Ok(vec![Query {
            path: path.to_owned(),
            line: 1,
            sql: sql.trim().trim_end_matches(';').to_owned(),
        }]);
    }
    let statements = super::split::split(&text).map_err(|e| invalid(e.to_string()))?;
    Ok(statements
        .into_iter()
        .map(|st| Query {
            path: path.to_owned(),
            line: super::split::line_of(&text, st.offset),
            sql: st.sql,
        })
        .collect())
}

/// The 1-based line of `text` that first names `key` (1 when none does), for messages about
/// the key.
fn line_naming(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.contains(key))
        .map_or(1, |i| i + 1)
}

/// A table as the rules name it: its schema and its name.
pub trait Named {
    fn schema(&self) -> &str;
    fn name(&self) -> &str;
}

/// The tables and columns one comparison leaves out.
#[derive(Debug, Clone, Default)]
pub struct Exclude {
    entries: Vec<Vec<String>>,
}

impl DataRules {
    /// What to leave out when comparing across `migration` (`None`: only the ignored tables).
    pub fn exclude(&self, migration: Option<&Migration>) -> Exclude {
        let mut entries: Vec<Vec<String>> = self.ignore_tables.iter().map(|t| split(t)).collect();
        if let Some(m) = migration {
            for (name, list) in &self.changes {
                if m.version == *name || m.id() == *name {
                    entries.extend(list.iter().map(|e| split(e)));
                }
            }
        }
        Exclude { entries }
    }
}

fn split(entry: &str) -> Vec<String> {
    entry.split('.').map(str::to_owned).collect()
}

impl Exclude {
    /// Leaves out one more table, or one of its columns: `table` as `schema.table`.
    pub fn add(&mut self, table: &str, column: Option<&str>) {
        let mut entry = split(table);
        entry.extend(column.map(str::to_owned));
        self.entries.push(entry);
    }

    /// Leaves out one more column of `t`.
    pub fn add_column(&mut self, t: &impl Named, column: &str) {
        self.entries.push(vec![
            t.schema().to_owned(),
            t.name().to_owned(),
            column.to_owned(),
        ]);
    }

    /// Whether the whole table is left out: an entry `table` or `schema.table`.
    pub fn table(&self, t: &impl Named) -> bool {
        self.entries.iter().any(|e| match e.as_slice() {
            [name] => name == t.name(),
            [schema, name] => schema == t.schema() && name == t.name(),
            _ => false,
        })
    }

    /// Whether a column is left out: an entry `table.column` or `schema.table.column` (an
    /// entry `a.b` names schema `a`'s table `b` when that is this table, else column `b`).
    pub fn column(&self, t: &impl Named, column: &str) -> bool {
        self.table(t)
            || self.entries.iter().any(|e| match e.as_slice() {
                [name, col] => name == t.name() && col == column,
                [schema, name, col] => schema == t.schema() && name == t.name() && col == column,
                _ => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Table(&'static str, &'static str);

    impl Named for Table {
        fn schema(&self) -> &str {
            self.0
        }
        fn name(&self) -> &str {
            self.1
        }
    }

    fn table(schema: &'static str, name: &'static str) -> Table {
        Table(schema, name)
    }

    #[test]
    fn seed_values_are_found_by_table_and_column_with_or_without_schema() {
        let rules = DataRules {
            seed: BTreeMap::from([
                (
                    "users.name".to_string(),
                    vec!["Ann".to_string(), String::new()],
                ),
                ("billing.users.name".to_string(), vec!["Bob".to_string()]),
            ]),
            ..DataRules::default()
        };
        assert_eq!(
            rules.seed_values("public", "users", "name"),
            Some(&["Ann".to_string(), String::new()][..])
        );
        assert_eq!(
            rules.seed_values("billing", "users", "name"),
            Some(&["Bob".to_string()][..])
        );
        assert_eq!(rules.seed_values("public", "users", "email"), None);
    }

    #[test]
    fn entries_name_tables_or_columns_with_or_without_schema() {
        let rules = DataRules {
            ignore_tables: vec!["audit_log".into(), "jobs.queue".into()],
            changes: BTreeMap::from([(
                "5".to_string(),
                vec!["users.email".into(), "public.orders.total".into()],
            )]),
            ..DataRules::default()
        };
        let m = |v: &str| Migration {
            version: v.into(),
            description: "x".into(),
            up: Default::default(),
            down: None,
        };
        let global = rules.exclude(None);
        assert!(global.table(&table("public", "audit_log")));
        assert!(global.table(&table("jobs", "queue")));
        assert!(!global.table(&table("public", "queue")));
        assert!(!global.column(&table("public", "users"), "email"));
        let five = rules.exclude(Some(&m("5")));
        assert!(five.column(&table("public", "users"), "email"));
        assert!(!five.column(&table("public", "users"), "name"));
        assert!(five.column(&table("public", "orders"), "total"));
        assert!(!five.column(&table("other", "orders"), "total"));
        assert!(!rules
            .exclude(Some(&m("6")))
            .column(&table("public", "users"), "email"));
    }
}

//! Liquibase changelogs: formatted SQL (`--liquibase formatted sql`), XML, and YAML or JSON,
//! with their includes. Each changeset that runs on PostgreSQL becomes one migration, in
//! changelog order: `version` is the changeset id and `description` its author (so
//! [`Migration::id`] reads `<id>_<author>`; the id alone is not unique across files, where
//! Liquibase identifies a changeset by file, author and id). Only `sql` and `sqlFile` changes
//! are read; other change types are refused, since migproof cannot know the SQL Liquibase
//! would generate for them. Preconditions, contexts, labels and changelog parameters are not
//! evaluated; what is skipped is said in [`MigrationSet::notes`].
//!
//! Execution follows Liquibase: a changeset's statements run in one transaction, or each on
//! its own with `runInTransaction:false`; SQL is split on `;` and on `GO` or `/` at the start
//! of a line, or on `endDelimiter`, unless `splitStatements:false` sends it whole. Splitting
//! uses PostgreSQL's lexical rules, where Liquibase's own splitter does not know dollar quotes
//! (a note says where that may matter). Comments are left in the statements (the server
//! ignores them, so `stripComments` changes nothing it runs).

mod formatted;
mod xml;
mod yaml;

use super::{Detect, Layout};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::split::{has_semicolon_in_dollar_quote, split_by, SplitError, Terminator};
use super::{
    list_migrations, read_text, Block, Chunk, Format, Migration, MigrationSet, Script, SourceError,
    Want,
};

/// Names Liquibase projects give their master changelog, most specific first.
const MASTER_NAMES: &[&str] = &[
    "db.changelog-master.xml",
    "db.changelog-master.yaml",
    "db.changelog-master.yml",
    "db.changelog-master.json",
    "db.changelog-master.sql",
    "changelog.xml",
    "changelog.yaml",
    "changelog.yml",
    "changelog.json",
    "changelog.sql",
];

/// Extensions of the files `includeAll` picks up.
const CHANGELOG_EXTENSIONS: &[&str] = &["sql", "xml", "yaml", "yml", "json"];

/// How the SQL of one change is cut into statements.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Splitting {
    /// `splitStatements`: false sends the SQL as one query.
    split: bool,
    /// `endDelimiter`, when given.
    delimiter: Option<String>,
}

impl Default for Splitting {
    fn default() -> Splitting {
        Splitting {
            split: true,
            delimiter: None,
        }
    }
}

impl Splitting {
    fn terminator(&self) -> Terminator {
        match self.delimiter.as_deref() {
            None | Some("") => Terminator::LiquibaseDefault,
            Some(d) => Terminator::Custom(d.to_owned()),
        }
    }
}

/// The SQL of one change, where it was read from.
#[derive(Debug, Clone)]
struct Sql {
    path: PathBuf,
    /// 1-based line of the first byte of `shown` in `path`.
    line: usize,
    /// The text as written, kept in [`Script::text`].
    shown: String,
    /// What Liquibase sends: `shown` with the lines it removes (rollback lines, comments of
    /// its own) blanked, byte for byte, so that offsets into one are offsets into the other.
    sent: String,
    splitting: Splitting,
}

impl Sql {
    /// SQL whose text is sent as written.
    fn plain(path: &Path, line: usize, text: String, splitting: Splitting) -> Sql {
        Sql {
            path: path.to_owned(),
            line,
            shown: text.clone(),
            sent: text,
            splitting,
        }
    }
}

#[derive(Debug, Clone)]
enum Rollback {
    /// No rollback, or one Liquibase runs as nothing (`empty`, `not required`).
    None,
    Sql(Vec<Sql>),
    /// The changes of another changeset (`changeSetId`, `changeSetAuthor`, `changeSetPath`).
    Refer {
        id: String,
        author: String,
        path: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Changeset {
    file: PathBuf,
    line: usize,
    author: String,
    id: String,
    transactional: bool,
    up: Vec<Sql>,
    rollback: Rollback,
}

impl Changeset {
    fn label(&self) -> String {
        format!("changeset {}:{}", self.author, self.id)
    }
}

/// What a changelog holds, in order.
#[derive(Debug)]
enum Item {
    Changeset(Box<Changeset>),
    Include(Include),
}

/// An `include` (of a file) or `includeAll` (of a folder).
#[derive(Debug)]
struct Include {
    line: usize,
    target: String,
    all: bool,
    relative: bool,
    /// `errorIfMissing` / `errorIfMissingOrEmpty`.
    required: bool,
}

fn truthy(value: &str) -> bool {
    // Liquibase reads booleans with Java's `Boolean.parseBoolean`.
    value.trim().eq_ignore_ascii_case("true")
}

/// Whether a `dbms` list (`postgresql,h2`, `!oracle`, `all`, `none`) admits PostgreSQL.
fn runs_on_postgres(dbms: &str) -> bool {
    let items: Vec<String> = dbms
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    if items.iter().any(|d| d == "none") || items.iter().any(|d| d == "!postgresql") {
        return false;
    }
    let wanted: Vec<&String> = items.iter().filter(|d| !d.starts_with('!')).collect();
    wanted.is_empty() || wanted.iter().any(|d| *d == "all" || *d == "postgresql")
}

fn unsupported_change(path: &Path, line: usize, kind: &str) -> SourceError {
    SourceError::Invalid {
        path: path.to_owned(),
        message: format!(
            "change type `{kind}` at line {line} is not supported; write it as a `sql` change"
        ),
    }
}

/// Finds an included file the way Liquibase's search path would: beside the including
/// changelog, then (unless `relativeToChangelogFile`) in the migrations folder and each of
/// its parents, which stand for the classpath roots of a Java project.
fn resolve(root: &Path, from: &Path, target: &str, relative: bool) -> Option<PathBuf> {
    let target = target.trim();
    let target = target
        .strip_prefix("classpath*:")
        .or_else(|| target.strip_prefix("classpath:"))
        .unwrap_or(target);
    let beside = from.parent().unwrap_or(Path::new("")).join(target);
    if beside.exists() {
        return Some(beside);
    }
    if relative {
        return None;
    }
    let target = target.trim_start_matches('/');
    root.ancestors()
        .map(|dir| dir.join(target))
        .find(|p| p.exists())
}

/// The SQL of an `sqlFile` change, read whole.
fn sql_file(
    root: &Path,
    from: &Path,
    line: usize,
    target: &str,
    relative: bool,
    splitting: Splitting,
) -> Result<Sql, SourceError> {
    let Some(path) = resolve(root, from, target, relative) else {
        return Err(SourceError::Invalid {
            path: from.to_owned(),
            message: format!("`sqlFile` `{target}` at line {line} does not exist"),
        });
    };
    let text = read_text(&path)?;
    Ok(Sql::plain(&path, 1, text, splitting))
}

/// True when the folder holds a master changelog or a formatted SQL changelog.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries.iter().any(|p| {
        p.is_file()
            && (p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| MASTER_NAMES.contains(&n))
                || is_formatted_file(p))
    })
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// Looks only at the start of the file, so detection stays cheap on large folders.
fn is_formatted_file(path: &Path) -> bool {
    use std::io::Read;
    if extension(path).as_deref() != Some("sql") {
        return false;
    }
    let mut head = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(4096).read_to_end(&mut head));
    read.is_ok() && formatted::is_formatted(&String::from_utf8_lossy(&head))
}
/// The liquibase layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Liquibase,
    name: "liquibase",
    load,
    detect: Detect::Marks {
        matches,
        paired: true,
    },
    history_tables: &[],
    marks: (
        "Liquibase formatted SQL",
        &["--changeset", "--liquibase formatted sql"],
    ),
    placeholders: true,
};

/// Reads the master changelog of `dir` (`db.changelog-master.*` or `changelog.*`) with
/// everything it includes; without one, every formatted SQL changelog under `dir` that no
/// other includes, in path order, as `includeAll` would.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    // A missing or unreadable folder gets the same error as in every layout, and a master
    // changelog that is not a file is not passed over for `includeAll`.
    list_migrations(dir, Want::File, |p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| MASTER_NAMES.contains(&n))
    })?;
    let mut loader = Loader::new(dir);
    let master = MASTER_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file());
    match master {
        Some(master) => loader.load_file(&master)?,
        None => {
            let candidates: Vec<PathBuf> = changelogs_under(dir)?
                .into_iter()
                .filter(|p| is_formatted_file(p))
                .collect();
            if candidates.is_empty() {
                let hint = " (no `db.changelog-master.*`, `changelog.*` or file starting with \
                            `--liquibase formatted sql`)";
                return Err(SourceError::Empty {
                    dir: dir.to_owned(),
                    hint: hint.to_owned(),
                });
            }
            let mut included = HashSet::new();
            for path in &candidates {
                let items = loader.parse(path)?;
                for include in items.iter().filter_map(|i| match i {
                    Item::Include(include) => Some(include),
                    Item::Changeset(_) => None,
                }) {
                    for target in loader.targets(path, include)? {
                        included.insert(key(&target));
                    }
                }
                loader.parsed.insert(key(path), items);
            }
            for path in candidates.iter().filter(|p| !included.contains(&key(p))) {
                loader.load_file(path)?;
            }
        }
    }
    if loader.migrations.is_empty() {
        let hint = " (its changelogs hold no changeset that runs on PostgreSQL)".to_owned();
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint,
        });
    }
    let mut set = MigrationSet::new(Format::Liquibase, dir, loader.migrations);
    set.notes = loader.notes;
    Ok(set)
}

/// Changelog files under `dir`, subfolders included, in path order.
fn changelogs_under(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        if !seen.insert(key(&folder)) {
            continue;
        }
        let named =
            |p: &Path| extension(p).is_some_and(|e| CHANGELOG_EXTENSIONS.contains(&e.as_str()));
        for path in list_migrations(&folder, Want::File, named)? {
            if path.is_dir() {
                pending.push(path);
            } else if named(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// One identity per file, however it was reached.
fn key(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

struct Loader<'a> {
    root: &'a Path,
    migrations: Vec<Migration>,
    notes: Vec<String>,
    /// (file, author, id) of every changeset read: its line and its migration, if it runs.
    seen: HashMap<(PathBuf, String, String), (usize, usize)>,
    /// The include chain being read, to refuse a changelog that includes itself.
    stack: Vec<PathBuf>,
    /// Changelogs parsed ahead of loading.
    parsed: HashMap<PathBuf, Vec<Item>>,
}

impl<'a> Loader<'a> {
    fn new(root: &'a Path) -> Loader<'a> {
        Loader {
            root,
            migrations: Vec::new(),
            notes: Vec::new(),
            seen: HashMap::new(),
            stack: Vec::new(),
            parsed: HashMap::new(),
        }
    }

    fn parse(&mut self, path: &Path) -> Result<Vec<Item>, SourceError> {
        if let Some(items) = self.parsed.remove(&key(path)) {
            return Ok(items);
        }
        let text = read_text(path)?;
        match extension(path).as_deref() {
            Some("xml") => xml::parse(self.root, path, &text, &mut self.notes),
            Some("yaml" | "yml" | "json") => yaml::parse(self.root, path, &text, &mut self.notes),
            Some("sql") if formatted::is_formatted(&text) => {
                formatted::parse(path, &text, &mut self.notes)
            }
            // Liquibase runs a plain SQL file it is given as one changeset `raw::includeAll`.
            Some("sql") => Ok(vec![Item::Changeset(Box::new(Changeset {
                file: path.to_owned(),
                line: 1,
                author: "includeAll".to_owned(),
                id: "raw".to_owned(),
                transactional: true,
                up: vec![Sql::plain(path, 1, text, Splitting::default())],
                rollback: Rollback::None,
            }))]),
            _ => Err(SourceError::Invalid {
                path: path.to_owned(),
                message: "not a changelog migproof reads (formatted SQL, XML, YAML or JSON)"
                    .to_owned(),
            }),
        }
    }

    /// The files an include names, in the order Liquibase reads them.
    fn targets(&self, from: &Path, include: &Include) -> Result<Vec<PathBuf>, SourceError> {
        let what = if include.all { "includeAll" } else { "include" };
        let missing = |detail: &str| SourceError::Invalid {
            path: from.to_owned(),
            message: format!(
                "{what} `{}` at line {}: {detail}",
                include.target, include.line
            ),
        };
        let Some(found) = resolve(self.root, from, &include.target, include.relative) else {
            return if include.required {
                Err(missing("no such file or folder"))
            } else {
                Ok(vec![])
            };
        };
        if !include.all {
            return Ok(vec![found]);
        }
        let files = changelogs_under(&found)?;
        if files.is_empty() && include.required {
            return Err(missing("the folder holds no changelog"));
        }
        Ok(files)
    }

    fn load_file(&mut self, path: &Path) -> Result<(), SourceError> {
        let id = key(path);
        if self.stack.contains(&id) {
            return Err(SourceError::Invalid {
                path: path.to_owned(),
                message: "includes itself, through the changelogs that include it".to_owned(),
            });
        }
        let items = self.parse(path)?;
        self.stack.push(id);
        for item in items {
            match item {
                Item::Changeset(changeset) => self.add(*changeset)?,
                Item::Include(include) => {
                    for target in self.targets(path, &include)? {
                        self.load_file(&target)?;
                    }
                }
            }
        }
        self.stack.pop();
        Ok(())
    }

    fn add(&mut self, changeset: Changeset) -> Result<(), SourceError> {
        let identity = (
            key(&changeset.file),
            changeset.author.clone(),
            changeset.id.clone(),
        );
        if let Some((line, _)) = self.seen.get(&identity) {
            return Err(SourceError::Invalid {
                path: changeset.file.clone(),
                message: format!(
                    "{} at line {} repeats the one at line {line}; Liquibase identifies a \
                     changeset by file, author and id (is the file included twice?)",
                    changeset.label(),
                    changeset.line
                ),
            });
        }
        let up = self.script(&changeset, &changeset.up)?;
        let down = match &changeset.rollback {
            Rollback::None => None,
            Rollback::Sql(sqls) => Some(self.script(&changeset, sqls)?),
            Rollback::Refer { id, author, path } => {
                Some(self.referred(&changeset, id, author, path)?)
            }
        };
        self.seen
            .insert(identity, (changeset.line, self.migrations.len()));
        self.migrations.push(Migration {
            version: changeset.id,
            description: changeset.author,
            up,
            down,
        });
        Ok(())
    }

    /// A rollback that runs another changeset's changes: that changeset's up script.
    fn referred(
        &self,
        changeset: &Changeset,
        id: &str,
        author: &str,
        path: &Option<String>,
    ) -> Result<Script, SourceError> {
        let found = self.seen.iter().find(|((file, a, i), _)| {
            a == author
                && i == id
                && match path {
                    Some(p) => file.ends_with(p.trim_start_matches("classpath:")),
                    None => *file == key(&changeset.file),
                }
        });
        match found {
            Some((_, (_, index))) => match self.migrations.get(*index) {
                Some(m) => Ok(m.up.clone()),
                None => Err(SourceError::Invalid {
                    path: changeset.file.clone(),
                    message: format!("{}: rollback changeset not found", changeset.label()),
                }),
            },
            None => Err(SourceError::Invalid {
                path: changeset.file.clone(),
                message: format!(
                    "{} at line {}: its rollback names changeset {author}:{id}, which is not \
                     defined before it",
                    changeset.label(),
                    changeset.line
                ),
            }),
        }
    }

    /// Lays the changes of a changeset into one script: each at its line of its file (later
    /// files appended), cut into statements, all in one block.
    fn script(&mut self, changeset: &Changeset, sqls: &[Sql]) -> Result<Script, SourceError> {
        let path = sqls
            .first()
            .map_or_else(|| changeset.file.clone(), |s| s.path.clone());
        let mut text = String::new();
        let mut lines = 1;
        let mut chunks = Vec::new();
        let mut dollar_note = false;
        for sql in sqls {
            if sql.path == path && lines < sql.line {
                // Earlier lines stay empty, so that `Script::line_of` gives lines of the file
                // without a copy of the whole file for every changeset.
                text.extend(std::iter::repeat_n('\n', sql.line - lines));
                lines = sql.line;
            } else if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
                lines += 1;
            }
            let base = text.len();
            text.push_str(&sql.shown);
            lines += sql.shown.matches('\n').count();
            let statements = split_by(&sql.sent, &sql.splitting.terminator()).map_err(|e| {
                SourceError::Invalid {
                    path: sql.path.clone(),
                    message: format!(
                        "{}: {}",
                        changeset.label(),
                        shift(e, sql.line.saturating_sub(1))
                    ),
                }
            })?;
            if sql.splitting.split {
                for s in statements {
                    dollar_note |= has_semicolon_in_dollar_quote(&s.sql);
                    chunks.push(Chunk {
                        offset: base + s.offset,
                        sql: s.sql,
                    });
                }
            } else if let Some(first) = statements.first() {
                let end = sql.sent.trim_end().len();
                let whole = sql.sent.get(first.offset..end).unwrap_or_default();
                chunks.push(Chunk {
                    offset: base + first.offset,
                    sql: whole.to_owned(),
                });
            }
        }
        if dollar_note {
            self.notes.push(format!(
                "`{}:{}` {}: a dollar-quoted body holds `;`; Liquibase's splitter does not know \
                 dollar quotes and may cut the statement there (migproof does not); if \
                 `liquibase update` fails on it, add `splitStatements:false`",
                changeset.file.display(),
                changeset.line,
                changeset.label()
            ));
        }
        let block = Block {
            transactional: changeset.transactional,
            chunks,
        };
        Ok(Script {
            path,
            text,
            blocks: vec![block],
            command: None,
        })
    }
}

/// A split error with its line moved from the SQL's first line to the file's.
fn shift(error: SplitError, by: usize) -> SplitError {
    match error {
        SplitError::MetaCommand { line, command } => SplitError::MetaCommand {
            line: line + by,
            command,
        },
        SplitError::Unterminated { line, what } => SplitError::Unterminated {
            line: line + by,
            what,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::list_dir;

    pub(super) fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    pub(super) fn chunks(script: &Script) -> Vec<&str> {
        script
            .blocks
            .iter()
            .flat_map(|b| b.chunks.iter().map(|c| c.sql.as_str()))
            .collect()
    }

    #[test]
    fn every_prefix_parses_or_errors_without_panicking() {
        let formatted = "--liquibase formatted sql\n--changeset \"a b\":1 endDelimiter:GO\n\
                         select 'é;'\nGO\n--rollback drop t;\n/* liquibase rollback\nx;\n*/\n\
                         --ignoreLines:start\n--ignoreLines:end\n--include file:x.sql\n";
        let xml = xml::tests::changelog(
            "<changeSet id=\"1\" author=\"a\"><sql>select &amp; 'é'<![CDATA[;]]></sql>\
             <rollback>drop t;<sql>x</sql></rollback></changeSet><include file=\"x.sql\"/>",
        );
        let yaml = "databaseChangeLog:\n  - changeSet:\n      id: 1\n      author: a\n      \
                    changes:\n        - sql:\n            sql: select 'é'\n      rollback: &r x\n";
        let root = Path::new("/nonexistent");
        let path = Path::new("/nonexistent/c");
        for (i, _) in formatted.char_indices() {
            let _ = formatted::parse(path, &formatted[..i], &mut Vec::new());
        }
        for (i, _) in xml.char_indices() {
            let _ = xml::parse(root, path, &xml[..i], &mut Vec::new());
        }
        for (i, _) in yaml.char_indices() {
            let _ = yaml::parse(root, path, &yaml[..i], &mut Vec::new());
        }
    }

    #[test]
    fn dbms_lists() {
        assert!(runs_on_postgres("postgresql"));
        assert!(runs_on_postgres("h2, PostgreSQL"));
        assert!(runs_on_postgres("!oracle"));
        assert!(runs_on_postgres("all"));
        assert!(!runs_on_postgres("oracle,mysql"));
        assert!(!runs_on_postgres("!postgresql"));
        assert!(!runs_on_postgres("none"));
    }

    #[test]
    fn master_changelog_is_detected() {
        let dir = folder(&[("db.changelog-master.yaml", "databaseChangeLog: []")]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[(
            "001.sql",
            "\n-- liquibase formatted sql\n--changeset a:1\nselect 1;",
        )]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[("001.sql", "select 1;")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
    }

    #[test]
    fn without_a_master_reads_every_changelog_not_included_by_another() {
        let dir = folder(&[
            (
                "a.sql",
                "--liquibase formatted sql\n--changeset a:1\nselect 1;\n",
            ),
            (
                "main.sql",
                "--liquibase formatted sql\n--include file:z.sql\n",
            ),
            (
                "z.sql",
                "--liquibase formatted sql\n--changeset z:1\nselect 26;\n",
            ),
            ("notes.sql", "select 'not a changelog';"),
        ]);
        let set = load(dir.path()).unwrap();
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["1_a", "1_z"]);
        assert_eq!(set.format, Format::Liquibase);
    }

    #[test]
    fn include_all_reads_a_folder_in_path_order_with_plain_sql_as_raw() {
        let master = xml::tests::changelog(
            r#"<includeAll path="changes/" relativeToChangelogFile="true"/>"#,
        );
        let yaml = "databaseChangeLog:\n  - changeSet:\n      id: 1\n      author: a\n\
                    \x20     changes:\n        - sql:\n            sql: select 1\n";
        let dir = folder(&[
            ("changelog.xml", master.as_str()),
            (
                "changes/2.sql",
                "--liquibase formatted sql\n--changeset b:2\nselect 2;\n",
            ),
            ("changes/1/x.yaml", yaml),
            ("changes/3.sql", "select 3; select 4;"),
        ]);
        let set = load(dir.path()).unwrap();
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["1_a", "2_b", "raw_includeAll"]);
        assert_eq!(chunks(&set.migrations[2].up), ["select 3", "select 4"]);
    }

    #[test]
    fn includes_resolve_against_the_folder_and_its_parents() {
        let root = folder(&[
            (
                "src/db/changelog.sql",
                "--liquibase formatted sql\n--include file:db/more/x.sql\n",
            ),
            (
                "src/db/more/x.sql",
                "--liquibase formatted sql\n--changeset a:1\nselect 1;\n",
            ),
        ]);
        let set = load(&root.path().join("src/db")).unwrap();
        assert_eq!(set.migrations.len(), 1);
    }

    #[test]
    fn missing_include_and_cycles_are_errors() {
        let dir = folder(&[(
            "changelog.sql",
            "--liquibase formatted sql\n\n--include file:nope.sql\n",
        )]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("changelog.sql") && err.contains("`nope.sql` at line 3"),
            "{err}"
        );
        let dir = folder(&[
            (
                "changelog.sql",
                "--liquibase formatted sql\n--include file:b.sql\n",
            ),
            (
                "b.sql",
                "--liquibase formatted sql\n--include file:changelog.sql\n",
            ),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("includes itself"), "{err}");
    }

    #[test]
    fn a_file_included_twice_repeats_its_changesets() {
        let dir = folder(&[
            (
                "changelog.sql",
                "--liquibase formatted sql\n--include file:b.sql\n--include file:b.sql\n",
            ),
            (
                "b.sql",
                "--liquibase formatted sql\n--changeset a:1\nselect 1;\n",
            ),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("changeset a:1 at line 2 repeats"), "{err}");
    }
}

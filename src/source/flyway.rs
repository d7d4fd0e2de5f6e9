//! The Flyway layout: `V<VERSION>__<DESCRIPTION>.sql` versioned migrations, `U<VERSION>__...`
//! undo migrations (the down) and `R__<DESCRIPTION>.sql` repeatable ones, in the folder and
//! its subfolders. Scripts are split and sent the way Flyway sends them to PostgreSQL: each
//! statement on its own, all in one transaction, unless the file holds statements PostgreSQL
//! refuses inside one. Placeholders (`${...}`) and Flyway settings other than `mixed` are not
//! applied.

use super::{Detect, Group, Layout};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::split::{is_non_transactional, line_of, split, Statement};
use super::{
    list_dir, list_migrations, read_text, Block, Chunk, Format, Migration, MigrationSet, Script,
    SourceError, Want,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Versioned,
    Undo,
    Repeatable,
}

/// A migration file name taken apart.
#[derive(Debug)]
struct Name {
    kind: Kind,
    /// Empty for repeatable migrations.
    version: Version,
    version_text: String,
    description: String,
}

/// A version compared as Flyway compares them: numerically, part by part, `_` standing for
/// `.`, leading zeros ignored and trailing zero parts dropped (`1.0` is `1`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
struct Version(Vec<Part>);

/// One part of a version: its digits without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Part(String);

impl Ord for Part {
    fn cmp(&self, other: &Part) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Part {
    fn partial_cmp(&self, other: &Part) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Version {
    fn parse(text: &str) -> Option<Version> {
        let mut parts = Vec::new();
        for part in text.split(['.', '_']) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let digits = part.trim_start_matches('0');
            parts.push(Part(if digits.is_empty() {
                "0".to_owned()
            } else {
                digits.to_owned()
            }));
        }
        while parts.len() > 1 && parts.last().is_some_and(|p| p.0 == "0") {
            parts.pop();
        }
        Some(Version(parts))
    }
}

/// `None` when the file is not a migration at all; `Some(Err(why))` when it starts like one
/// but Flyway would not recognise it (Flyway then ignores it, unless told to validate names).
fn parse_name(path: &Path) -> Option<Result<Name, String>> {
    let file = path.file_name()?.to_str()?;
    let stem = file.strip_suffix(".sql")?;
    if let Some(description) = stem.strip_prefix("R__") {
        return Some(Ok(Name {
            kind: Kind::Repeatable,
            version: Version::default(),
            version_text: String::new(),
            description: description.to_owned(),
        }));
    }
    let (kind, rest) = if let Some(rest) = stem.strip_prefix('V') {
        (Kind::Versioned, rest)
    } else if let Some(rest) = stem.strip_prefix('U') {
        (Kind::Undo, rest)
    } else if stem.starts_with('R') {
        return Some(Err(
            "a repeatable migration is named `R__<DESCRIPTION>.sql`".to_owned(),
        ));
    } else {
        return None;
    };
    let (version_text, description) = rest.split_once("__").unwrap_or((rest, ""));
    match Version::parse(version_text) {
        Some(version) => Some(Ok(Name {
            kind,
            version,
            version_text: version_text.to_owned(),
            description: description.to_owned(),
        })),
        None => Some(Err(format!(
            "version `{version_text}` is not numbers separated by `.` or `_`; a versioned \
             migration is named `V<VERSION>__<DESCRIPTION>.sql` (for example `V1.1__add_users.sql`)"
        ))),
    }
}

/// True when the folder, or a subfolder, holds a file named like a Flyway migration.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries.iter().any(|p| holds_migration(p, 3))
}

fn holds_migration(path: &Path, depth: usize) -> bool {
    if path.is_file() {
        return matches!(parse_name(path), Some(Ok(_)));
    }
    depth > 0
        && path.is_dir()
        && list_dir(path).is_ok_and(|entries| entries.iter().any(|p| holds_migration(p, depth - 1)))
}

/// Every file under `dir`, subfolders included, as Flyway scans a location.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        // A symlink loop would otherwise be walked for ever.
        if !seen.insert(folder.canonicalize().unwrap_or_else(|_| folder.clone())) {
            continue;
        }
        for path in list_migrations(&folder, Want::File, |p| parse_name(p).is_some())? {
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Whether Flyway may run a migration that mixes transactional and non-transactional
/// statements: `flyway.mixed=true` in `flyway.conf`, or `mixed = true` under `[flyway]` in
/// `flyway.toml`, looked for in the migrations folder, then in its parent.
fn mixed_allowed(dir: &Path) -> Result<bool, SourceError> {
    for folder in [Some(dir), dir.parent()].into_iter().flatten() {
        let toml_path = folder.join("flyway.toml");
        if toml_path.is_file() {
            let text = read_text(&toml_path)?;
            let table: toml::Table = toml::from_str(&text).map_err(|e| SourceError::Invalid {
                path: toml_path.clone(),
                message: format!("not valid TOML: {}", e.message()),
            })?;
            let mixed = table.get("flyway").and_then(|f| f.get("mixed"));
            return Ok(match mixed {
                Some(toml::Value::Boolean(b)) => *b,
                Some(toml::Value::String(s)) => s.eq_ignore_ascii_case("true"),
                _ => false,
            });
        }
        let conf_path = folder.join("flyway.conf");
        if conf_path.is_file() {
            let text = read_text(&conf_path)?;
            return Ok(
                property(&text, "flyway.mixed").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            );
        }
    }
    Ok(false)
}

/// The value of `key` in a Java properties file (`key=value` or `key: value`), the last one
/// winning as in Java.
fn property<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(at) = line.find(['=', ':']) else {
            continue;
        };
        let (k, v) = (
            line.get(..at).unwrap_or_default(),
            line.get(at + 1..).unwrap_or_default(),
        );
        if k.trim() == key {
            found = Some(v.trim());
        }
    }
    found
}

/// `executeInTransaction` from the script's own `<file>.sql.conf`, which overrides Flyway's
/// detection.
fn execute_in_transaction(path: &Path) -> Result<Option<bool>, SourceError> {
    let mut conf = path.as_os_str().to_owned();
    conf.push(".conf");
    let conf = PathBuf::from(conf);
    if !conf.is_file() {
        return Ok(None);
    }
    let text = read_text(&conf)?;
    Ok(property(&text, "executeInTransaction").map(|v| v.eq_ignore_ascii_case("true")))
}

/// Reads and splits one migration file, noting placeholders Flyway would replace.
fn script(path: &Path, mixed: bool, notes: &mut Vec<String>) -> Result<Script, SourceError> {
    let text = read_text(path)?;
    if let Some(at) = text.find("${") {
        notes.push(format!(
            "`{}:{}` holds a `${{...}}` placeholder, which Flyway replaces before running the \
             script; migproof sends the text as written",
            path.display(),
            line_of(&text, at)
        ));
    }
    let invalid = |message: String| SourceError::Invalid {
        path: path.to_owned(),
        message,
    };
    let statements = split(&text).map_err(|e| invalid(e.to_string()))?;
    let transactional = match execute_in_transaction(path)? {
        Some(setting) => setting,
        None => transactional(&text, &statements, mixed).map_err(invalid)?,
    };
    let chunks = statements
        .into_iter()
        .map(|s| Chunk {
            offset: s.offset,
            sql: s.sql,
        })
        .collect();
    Ok(Script {
        path: path.to_owned(),
        text,
        blocks: vec![Block {
            transactional,
            chunks,
        }],
        command: None,
    })
}

/// Flyway runs a migration in a transaction unless a statement cannot run in one; a file
/// that holds both kinds is refused unless `mixed` is allowed, and then runs without one.
fn transactional(text: &str, statements: &[Statement], mixed: bool) -> Result<bool, String> {
    let refused = statements.iter().find(|s| is_non_transactional(&s.sql));
    let accepted = statements.iter().find(|s| !is_non_transactional(&s.sql));
    match (refused, accepted) {
        (None, _) => Ok(true),
        (Some(_), None) => Ok(false),
        (Some(_), Some(_)) if mixed => Ok(false),
        (Some(refused), Some(accepted)) => {
            let head = refused
                .sql
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            Err(format!(
                "mixes a statement PostgreSQL refuses inside a transaction (`{head} ...` \
                 at line {}) with transactional ones (line {}); Flyway refuses such a migration \
                 unless `mixed = true` (`flyway.mixed=true` in flyway.conf, or `mixed = true` \
                 under `[flyway]` in flyway.toml); set it, or move the statement to a \
                 migration of its own",
                line_of(text, refused.offset),
                line_of(text, accepted.offset),
            ))
        }
    }
}

#[derive(Default)]
struct Pair {
    up: Option<(Name, PathBuf)>,
    undo: Option<(Name, PathBuf)>,
}
/// The flyway layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Flyway,
    name: "flyway",
    load,
    detect: Detect::Names {
        group: Group::Versioned,
        matches,
        claims: super::claims_none,
    },
    history_tables: &[],
    marks: ("Flyway", &[]),
    placeholders: true,
};

/// Reads `dir` and its subfolders as Flyway migrations, versioned ones in version order and
/// repeatable ones in description order; names Flyway would ignore become notes.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let files = files_under(dir)?;
    let mut notes = Vec::new();
    let mut versions: BTreeMap<Version, Pair> = BTreeMap::new();
    let mut repeatable: BTreeMap<String, (Name, PathBuf)> = BTreeMap::new();
    for path in files {
        let name = match parse_name(&path) {
            None => continue,
            Some(Ok(name)) => name,
            Some(Err(why)) => {
                notes.push(format!(
                    "`{}` is not a Flyway migration name ({why}); Flyway ignores it, and so \
                     does migproof",
                    path.display()
                ));
                continue;
            }
        };
        if name.kind == Kind::Repeatable {
            // Flyway applies repeatable migrations in the order of their descriptions, in
            // which `_` reads as a space.
            let key = name.description.replace('_', " ");
            if let Some((_, first)) = repeatable.get(&key) {
                return Err(SourceError::Invalid {
                    path,
                    message: format!(
                        "repeatable migration `{}` is also defined by `{}`",
                        name.description,
                        first.display()
                    ),
                });
            }
            repeatable.insert(key, (name, path));
            continue;
        }
        let pair = versions.entry(name.version.clone()).or_default();
        let slot = if name.kind == Kind::Undo {
            &mut pair.undo
        } else {
            &mut pair.up
        };
        if let Some((_, first)) = slot {
            return Err(SourceError::Duplicate {
                version: name.version_text,
                first: first.clone(),
                second: path,
            });
        }
        *slot = Some((name, path));
    }
    let mixed = mixed_allowed(dir)?;
    let mut migrations = Vec::new();
    for (_, pair) in versions {
        let Some((name, up)) = pair.up else {
            let Some((undo_name, down)) = pair.undo else {
                continue;
            };
            let expected = down.with_file_name(format!(
                "V{}__{}.sql",
                undo_name.version_text, undo_name.description
            ));
            return Err(SourceError::DownWithoutUp { down, expected });
        };
        let up = script(&up, mixed, &mut notes)?;
        let down = match &pair.undo {
            Some((_, path)) => Some(script(path, mixed, &mut notes)?),
            None => None,
        };
        migrations.push(Migration {
            version: name.version_text,
            description: name.description,
            up,
            down,
        });
    }
    let mut repeatables = Vec::new();
    for (_, (name, path)) in repeatable {
        repeatables.push(Migration {
            version: String::new(),
            description: name.description,
            up: script(&path, mixed, &mut notes)?,
            down: None,
        });
    }
    if migrations.is_empty() && repeatables.is_empty() {
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint: String::new(),
        });
    }
    let mut set = MigrationSet::new(Format::Flyway, dir, migrations);
    set.repeatable = repeatables;
    set.notes = notes;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    fn ids(set: &MigrationSet) -> Vec<String> {
        set.migrations.iter().map(|m| m.id()).collect()
    }

    #[test]
    fn orders_versions_numerically_part_by_part() {
        let dir = folder(&[
            ("V2__c.sql", "select 2;"),
            ("V1.10__b.sql", "select 110;"),
            ("V1_1__a.sql", "select 11;"),
            ("sub/V1.2__sub.sql", "select 12;"),
            ("V2024.01.02__dated.sql", "select 3;"),
            ("README.md", "not a migration"),
            ("afterMigrate.sql", "select 'callback';"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(
            ids(&set),
            ["1_1_a", "1.2_sub", "1.10_b", "2_c", "2024.01.02_dated"]
        );
        assert_eq!(set.format, Format::Flyway);
        assert!(set.notes.is_empty(), "{:?}", set.notes);
    }

    #[test]
    fn leading_zeros_and_trailing_zero_parts_are_the_same_version() {
        let dir = folder(&[("V01__a.sql", ""), ("V1__b.sql", "")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("duplicate migration version"), "{err}");
        assert!(
            err.contains("V01__a.sql") && err.contains("V1__b.sql"),
            "{err}"
        );
        let dir = folder(&[("V1__a.sql", ""), ("nested/V1.0__b.sql", "")]);
        assert!(matches!(
            load(dir.path()),
            Err(SourceError::Duplicate { .. })
        ));
    }

    #[test]
    fn each_statement_is_a_chunk_in_one_transaction() {
        let text = "create table a (x int);\n-- note; not a statement\ninsert into a values (1);\n";
        let dir = folder(&[("V1__a.sql", text)]);
        let m = load(dir.path()).unwrap().migrations;
        let block = &m[0].up.blocks[0];
        assert!(block.transactional);
        let chunks: Vec<_> = block
            .chunks
            .iter()
            .map(|c| (c.offset, c.sql.as_str()))
            .collect();
        let insert = text.find("insert").unwrap();
        assert_eq!(
            chunks,
            [
                (0, "create table a (x int)"),
                (insert, "insert into a values (1)")
            ]
        );
        assert_eq!(m[0].up.line_of(insert), 3);
    }

    #[test]
    fn only_non_transactional_statements_run_without_a_transaction() {
        let dir = folder(&[(
            "V1__idx.sql",
            "create index concurrently i on t (x);\ndrop index concurrently j;",
        )]);
        let m = load(dir.path()).unwrap().migrations;
        assert!(!m[0].up.blocks[0].transactional);
        assert_eq!(m[0].up.blocks[0].chunks.len(), 2);
    }

    #[test]
    fn mixed_statements_are_refused_unless_mixed_is_set() {
        let body = "create table t (x int);\ncreate index concurrently i on t (x);";
        let dir = folder(&[("V1__mixed.sql", body)]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("V1__mixed.sql"), "{err}");
        assert!(
            err.contains("line 2") && err.contains("mixed = true"),
            "{err}"
        );

        let dir = folder(&[
            ("V1__mixed.sql", body),
            ("flyway.conf", "flyway.mixed = true\n"),
        ]);
        let m = load(dir.path()).unwrap().migrations;
        assert!(!m[0].up.blocks[0].transactional);

        let root = folder(&[
            ("db/V1__mixed.sql", body),
            ("flyway.toml", "[flyway]\nmixed = true\n"),
        ]);
        let m = load(&root.path().join("db")).unwrap().migrations;
        assert!(!m[0].up.blocks[0].transactional);
    }

    #[test]
    fn script_config_overrides_detection() {
        let dir = folder(&[
            ("V1__a.sql", "create table t (x int);"),
            ("V1__a.sql.conf", "executeInTransaction=false\n"),
        ]);
        let m = load(dir.path()).unwrap().migrations;
        assert!(!m[0].up.blocks[0].transactional);
    }

    #[test]
    fn undo_becomes_the_down_and_repeatables_come_apart() {
        let dir = folder(&[
            ("V1__users.sql", "create table users ();"),
            ("U1__users.sql", "drop table users;"),
            ("R__views.sql", "create or replace view v as select 1;"),
            ("R__a_functions.sql", "select 1;"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.migrations.len(), 1);
        let down = set.migrations[0].down.as_ref().unwrap();
        assert_eq!(down.blocks[0].chunks[0].sql, "drop table users");
        let repeatable: Vec<_> = set
            .repeatable
            .iter()
            .map(|m| m.description.as_str())
            .collect();
        assert_eq!(repeatable, ["a_functions", "views"]);
        assert!(set
            .repeatable
            .iter()
            .all(|m| m.version.is_empty() && m.down.is_none()));
    }

    #[test]
    fn undo_without_its_versioned_migration() {
        let dir = folder(&[("V1__a.sql", ""), ("U2__b.sql", "")]);
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, SourceError::DownWithoutUp { .. }), "{err}");
        assert!(err.to_string().contains("V2__b.sql"), "{err}");
    }

    #[test]
    fn split_errors_name_file_and_line() {
        let dir = folder(&[("V1__a.sql", "select 1;\nselect 'oops;\n")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("V1__a.sql") && err.contains("line 2"), "{err}");
        let dir = folder(&[("V1__a.sql", "select 1;\n\\i other.sql\n")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("meta-command `\\i` at line 2"), "{err}");
    }

    #[test]
    fn names_flyway_ignores_are_noted() {
        let dir = folder(&[("V1__a.sql", ""), ("V2_b.sql", ""), ("Rviews.sql", "")]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.migrations.len(), 1);
        assert_eq!(set.notes.len(), 2, "{:?}", set.notes);
        assert!(set.notes[1].contains("V2_b.sql") && set.notes[1].contains("`2_b`"));
    }

    #[test]
    fn placeholders_are_noted() {
        let dir = folder(&[("V1__a.sql", "select 1;\ncreate schema ${schema};")]);
        let set = load(dir.path()).unwrap();
        assert!(set.notes[0].contains("V1__a.sql:2"), "{:?}", set.notes);
    }

    #[test]
    fn detection_looks_into_subfolders() {
        let dir = folder(&[("2024/V1__a.sql", "")]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[("0001_a.sql", "")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
    }

    #[test]
    fn empty_folder_is_an_error() {
        let dir = folder(&[("notes.txt", "")]);
        assert!(matches!(load(dir.path()), Err(SourceError::Empty { .. })));
    }
}

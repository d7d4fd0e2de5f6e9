//! The diesel layout: one folder per migration, `<VERSION>_<NAME>/up.sql` with an optional
//! `down.sql` and `metadata.toml`, read the way `diesel migration run` and
//! `diesel_migrations::FileBasedMigrations` read them.
//!
//! What diesel does, and so what this reader describes:
//! - Every folder of the migrations folder whose name does not start with `.` is a migration
//!   and must hold `up.sql`; files beside the folders (README, `.keep`) are ignored.
//! - The version is the folder name up to its first `_`, with every `-` removed, so
//!   `20140924113530_x`, `2024-01-01-000001_x` and `2026-07-30-140000-0000_x` are versions
//!   `20140924113530`, `20240101000001` and `202607301400000000`. Migrations run in the byte
//!   order of those version *strings*, not in numeric order: `10_b` runs before `9_a`, and
//!   versions of different lengths compare digit by digit from the left.
//! - `up.sql` and `down.sql` are each sent whole with `batch_execute` (one query message),
//!   inside a transaction unless `metadata.toml` says `run_in_transaction = false`.
//! - A `metadata.toml` without `run_in_transaction` means *no* transaction: diesel fills the
//!   missing key with `false`. migproof does the same and says so in the set's notes.
//! - Diesel refuses to run an empty `up.sql` or revert an empty `down.sql`.
//!
//! Where diesel is silent and migproof is not: diesel ignores a `metadata.toml` it cannot
//! parse (and runs the migration in a transaction), ignores unknown keys, and keeps only one of
//! two folders whose versions are equal once dashes are removed. migproof reports all three.

use super::{Detect, Group, Layout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    list_migrations, read_text, Format, Migration, MigrationSet, Script, SourceError, Want,
};

/// One migration folder, named but not yet read.
struct Folder {
    path: PathBuf,
    version: String,
    description: String,
}

fn folder_name(path: &Path) -> Result<&str, SourceError> {
    let name = path.file_name().and_then(|n| n.to_str());
    name.ok_or_else(|| SourceError::Invalid {
        path: path.to_owned(),
        message: "folder name is not valid UTF-8; diesel versions are read from folder names"
            .to_owned(),
    })
}

fn is_migration_folder(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    path.is_dir() && !hidden
}

/// True for a name diesel's migrations have (a version first, no extension), which must then
/// be a folder: a file, FIFO or dangling symlink so named is a migration diesel would skip.
fn named_like_migration(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()) && !n.contains('.'))
}

/// The files diesel reads in a migration folder.
const FILES: &[&str] = &["up.sql", "down.sql", "metadata.toml"];

/// True when the folder holds at least one sub-folder with an `up.sql`.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries
        .iter()
        .any(|p| is_migration_folder(p) && p.join("up.sql").is_file())
}

/// The key diesel orders and identifies migrations by: the version with dashes removed.
fn order_key(version: &str) -> String {
    version.replace('-', "")
}
/// The diesel layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Diesel,
    name: "diesel",
    load,
    detect: Detect::Names {
        group: Group::Folders,
        matches,
        claims: super::claims_none,
    },
    history_tables: &[],
    marks: ("diesel", &[]),
    placeholders: false,
};

/// Reads `dir` as a diesel migrations folder.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let mut by_key: BTreeMap<String, Folder> = BTreeMap::new();
    for path in list_migrations(dir, Want::Folder, named_like_migration)? {
        if !is_migration_folder(&path) {
            continue;
        }
        let name = folder_name(&path)?;
        let (version, description) = name.split_once('_').unwrap_or((name, ""));
        let folder = Folder {
            path: path.clone(),
            version: version.to_owned(),
            description: description.to_owned(),
        };
        let key = order_key(version);
        if let Some(first) = by_key.get(&key) {
            return Err(SourceError::Duplicate {
                version: key,
                first: first.path.clone(),
                second: path,
            });
        }
        by_key.insert(key, folder);
    }
    let mut notes = Vec::new();
    let mut migrations = Vec::new();
    for folder in by_key.into_values() {
        migrations.push(read_folder(folder, &mut notes)?);
    }
    if migrations.is_empty() {
        let hint = " (diesel migrations are folders holding `up.sql`)".to_owned();
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint,
        });
    }
    let mut set = MigrationSet::new(Format::Diesel, dir, migrations);
    set.notes = notes;
    Ok(set)
}

fn read_folder(folder: Folder, notes: &mut Vec<String>) -> Result<Migration, SourceError> {
    // Listing first: a folder that cannot be read is reported as such, not as lacking
    // `up.sql`, and each of its files that is there is a regular file.
    list_migrations(&folder.path, Want::File, |p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| FILES.contains(&n))
    })?;
    let up_path = folder.path.join("up.sql");
    if !up_path.is_file() {
        return Err(SourceError::Invalid {
            path: folder.path,
            message: "migration folder has no `up.sql`; diesel treats every folder here as a \
                      migration, so add `up.sql` or move the folder out"
                .to_owned(),
        });
    }
    let transactional = match read_metadata(&folder.path.join("metadata.toml"))? {
        Metadata::Absent => true,
        Metadata::RunInTransaction(flag) => flag,
        Metadata::KeyMissing(path) => {
            notes.push(format!(
                "`{}` does not set `run_in_transaction`; diesel then runs the migration \
                 outside a transaction, and so does migproof",
                path.display()
            ));
            false
        }
    };
    let up_text = read_text(&up_path)?;
    if up_text.is_empty() {
        return Err(SourceError::Invalid {
            path: up_path,
            message: "file is empty; diesel refuses to run an empty migration".to_owned(),
        });
    }
    let down_path = folder.path.join("down.sql");
    let down = if down_path.is_file() {
        let text = read_text(&down_path)?;
        if text.is_empty() {
            notes.push(format!(
                "`{}` is empty; diesel refuses to revert with it, so migproof treats the \
                 migration as irreversible",
                down_path.display()
            ));
            None
        } else {
            Some(Script::whole(down_path, text, transactional))
        }
    } else {
        None
    };
    Ok(Migration {
        version: folder.version,
        description: folder.description,
        up: Script::whole(up_path, up_text, transactional),
        down,
    })
}

enum Metadata {
    Absent,
    RunInTransaction(bool),
    /// The file exists but does not set the key.
    KeyMissing(PathBuf),
}

/// The keys diesel's own migration harness reads from `metadata.toml`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataFile {
    run_in_transaction: Option<bool>,
}

fn read_metadata(path: &Path) -> Result<Metadata, SourceError> {
    if !path.is_file() {
        return Ok(Metadata::Absent);
    }
    let text = read_text(path)?;
    let file: MetadataFile = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|span| line_of(&text, span.start));
        let message = e.message().trim_end();
        let hint = "diesel reads only `run_in_transaction = true|false` here";
        SourceError::Invalid {
            path: path.to_owned(),
            message: match line {
                Some(line) => format!("line {line}: {message}; {hint}"),
                None => format!("{message}; {hint}"),
            },
        }
    })?;
    Ok(match file.run_in_transaction {
        Some(flag) => Metadata::RunInTransaction(flag),
        None => Metadata::KeyMissing(path.to_owned()),
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::list_dir;

    /// A migrations folder from `(relative path, contents)` pairs; parents are created.
    fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
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
    fn orders_by_version_string_with_dashes_removed() {
        let dir = tree(&[
            ("2024-01-01-000002_b/up.sql", b"select 2;"),
            ("00000000000000_diesel_initial_setup/up.sql", b"select 0;"),
            ("2024-01-01-000001_a/up.sql", b"select 1;"),
            ("20140924113530_old/up.sql", b"select 3;"),
            ("2026-07-30-140000-0000_new/up.sql", b"select 4;"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(
            ids(&set),
            [
                "00000000000000_diesel_initial_setup",
                "20140924113530_old",
                "2024-01-01-000001_a",
                "2024-01-01-000002_b",
                "2026-07-30-140000-0000_new",
            ]
        );
        assert_eq!(set.migrations[2].version, "2024-01-01-000001");
        assert_eq!(set.migrations[2].description, "a");
    }

    #[test]
    fn string_order_is_not_numeric_order() {
        // "9" sorts after "10" as a string; diesel runs `10_b` first.
        let dir = tree(&[("9_a/up.sql", b"select 9;"), ("10_b/up.sql", b"select 10;")]);
        assert_eq!(ids(&load(dir.path()).unwrap()), ["10_b", "9_a"]);
    }

    #[test]
    fn whole_file_in_a_transaction_by_default() {
        let dir = tree(&[
            ("1_a/up.sql", b"create table a();\ncreate table b();"),
            ("1_a/down.sql", b"drop table b;\ndrop table a;"),
        ]);
        let m = &load(dir.path()).unwrap().migrations[0];
        assert_eq!(m.up.blocks.len(), 1);
        assert!(m.up.blocks[0].transactional);
        assert_eq!(m.up.blocks[0].chunks.len(), 1);
        assert_eq!(
            m.up.blocks[0].chunks[0].sql,
            "create table a();\ncreate table b();"
        );
        assert!(m.down.as_ref().unwrap().blocks[0].transactional);
    }

    #[test]
    fn run_in_transaction_false_applies_to_up_and_down() {
        let dir = tree(&[
            ("1_a/up.sql", b"create index concurrently i on t(c);"),
            ("1_a/down.sql", b"drop index concurrently i;"),
            (
                "1_a/metadata.toml",
                b"# needed for concurrently\nrun_in_transaction = false\n",
            ),
        ]);
        let set = load(dir.path()).unwrap();
        let m = &set.migrations[0];
        assert!(m.up.has_autocommit());
        assert!(m.down.as_ref().unwrap().has_autocommit());
        assert!(set.notes.is_empty());
    }

    #[test]
    fn metadata_without_the_key_means_no_transaction_and_a_note() {
        let dir = tree(&[("1_a/up.sql", b"select 1;"), ("1_a/metadata.toml", b"")]);
        let set = load(dir.path()).unwrap();
        assert!(set.migrations[0].up.has_autocommit());
        assert_eq!(set.notes.len(), 1);
        assert!(set.notes[0].contains("metadata.toml"), "{}", set.notes[0]);
    }

    #[test]
    fn metadata_that_does_not_parse_names_file_and_line() {
        let dir = tree(&[
            ("1_a/up.sql", b"select 1;"),
            (
                "1_a/metadata.toml",
                b"# comment\nrun_in_transaction = = false\n",
            ),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("1_a/metadata.toml") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn metadata_with_unknown_key_names_file_and_line() {
        let dir = tree(&[
            ("1_a/up.sql", b"select 1;"),
            ("1_a/metadata.toml", b"\n\nrun_in_transation = false\n"),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("metadata.toml") && err.contains("line 3"),
            "{err}"
        );
        assert!(err.contains("run_in_transation"), "{err}");
    }

    #[test]
    fn metadata_with_wrong_type_names_file_and_line() {
        let dir = tree(&[
            ("1_a/up.sql", b"select 1;"),
            ("1_a/metadata.toml", b"run_in_transaction = \"no\"\n"),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("metadata.toml") && err.contains("line 1"),
            "{err}"
        );
    }

    #[test]
    fn folder_without_up_sql_is_named() {
        let dir = tree(&[("1_a/up.sql", b"select 1;"), ("2_b/down.sql", b"select 1;")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("2_b") && err.contains("no `up.sql`"), "{err}");
    }

    #[test]
    fn missing_down_is_none_and_other_files_are_ignored() {
        let dir = tree(&[
            ("README.md", b"notes"),
            (".keep", b""),
            (".git/up.sql", b"not a migration"),
            ("1_a/up.sql", b"select 1;"),
            ("1_a/notes.txt", b"ignored"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(ids(&set), ["1_a"]);
        assert!(set.migrations[0].down.is_none());
    }

    #[test]
    fn versions_equal_without_dashes_are_duplicates() {
        let dir = tree(&[
            ("2024-01-01-000001_a/up.sql", b"select 1;"),
            ("20240101000001_b/up.sql", b"select 1;"),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("duplicate migration version 20240101000001"),
            "{err}"
        );
        assert!(
            err.contains("000001_a") && err.contains("000001_b"),
            "{err}"
        );
    }

    #[test]
    fn empty_up_is_refused_and_empty_down_is_irreversible() {
        let dir = tree(&[("1_a/up.sql", b"")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("up.sql") && err.contains("empty"), "{err}");

        let dir = tree(&[("1_a/up.sql", b"select 1;"), ("1_a/down.sql", b"")]);
        let set = load(dir.path()).unwrap();
        assert!(set.migrations[0].down.is_none());
        assert!(set.notes[0].contains("down.sql"), "{:?}", set.notes);
    }

    #[test]
    fn strips_bom_and_keeps_crlf() {
        let dir = tree(&[
            ("1_a/up.sql", b"\xef\xbb\xbfselect 1;\r\nselect 2;\r\n"),
            (
                "1_a/metadata.toml",
                b"\xef\xbb\xbfrun_in_transaction = false\r\n",
            ),
        ]);
        let m = &load(dir.path()).unwrap().migrations[0];
        assert_eq!(m.up.text, "select 1;\r\nselect 2;\r\n");
        assert!(m.up.has_autocommit());
    }

    #[test]
    fn loads_the_fixture_history() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diesel_history");
        let set = load(&dir).unwrap();
        assert_eq!(set.migrations.len(), 300);
        assert_eq!(
            set.migrations[0].id(),
            "00000000000000_diesel_initial_setup"
        );
        assert_eq!(set.migrations[1].id(), "2023-02-06-091403_create_users");
        let keys: Vec<String> = set
            .migrations
            .iter()
            .map(|m| order_key(&m.version))
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "versions are strictly increasing"
        );
        assert!(set.migrations.iter().all(|m| m.down.is_some()));
        let autocommit: Vec<&Migration> = set
            .migrations
            .iter()
            .filter(|m| m.up.has_autocommit())
            .collect();
        assert_eq!(autocommit.len(), 7);
        for m in autocommit {
            assert!(
                m.up.text.contains("CREATE INDEX CONCURRENTLY"),
                "{}",
                m.id()
            );
            assert!(m.down.as_ref().unwrap().has_autocommit(), "{}", m.id());
        }
        assert!(set.notes.is_empty(), "{:?}", set.notes);
        assert!(matches(&list_dir(&dir).unwrap()));
    }

    #[test]
    fn empty_folder_and_matches() {
        let dir = tree(&[("README.md", b"")]);
        assert!(matches!(load(dir.path()), Err(SourceError::Empty { .. })));
        assert!(!matches(&list_dir(dir.path()).unwrap()));
        let dir = tree(&[("1_a/up.sql", b"select 1;")]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
        let dir = tree(&[("1_a.up.sql", b"select 1;")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
    }
}

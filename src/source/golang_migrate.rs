//! The golang-migrate layout: `<VERSION>_<TITLE>.up.<EXT>` and `<VERSION>_<TITLE>.down.<EXT>`,
//! read the way golang-migrate's file source reads them, for its PostgreSQL driver.
//!
//! What golang-migrate does, and so what this reader describes:
//! - A file is a migration when its whole name matches `^([0-9]+)_(.*)\.(up|down)\.(.*)$`:
//!   any extension is accepted (`.sql` is only a convention), the title runs to the *last*
//!   `.up.` or `.down.`, and a name without `.up.`/`.down.` (`0001_init.sql`) is not a
//!   migration and is skipped, as are folders.
//! - The version is an unsigned integer, compared as a number: `1` and `0001` are the same
//!   version. Migrations run in ascending version order.
//! - Each file is sent whole as one query message with no transaction around it. The server
//!   still runs a multi-statement message as one implicit transaction; that is the executor's
//!   business. (The driver's `x-multi-statement` URL option, which splits files on `;`, is a
//!   connection setting that a folder cannot show and is not modelled.)
//! - An up without a down is allowed: `migrate down` then moves the version back without
//!   running anything, so the migration's effects stay. A down without an up is an error
//!   here, though golang-migrate would silently record the missing up as applied. Two ups (or
//!   two downs) of one version are an error, as in golang-migrate.
//!
//! Where golang-migrate skips silently and migproof adds a note: a version too large for 64
//! bits, and an up and down of one version whose titles differ.

use super::{Detect, Group, Layout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::{
    list_migrations, read_text, Format, Migration, MigrationSet, Script, SourceError, Want,
};

static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([0-9]+)_(.*)\.(up|down)\.(.*)$").expect("the pattern is valid")
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

struct Name {
    version: u64,
    version_text: String,
    title: String,
    direction: Direction,
    extension: String,
}

enum Parsed {
    Migration(Name),
    /// Named like a migration, but the version does not fit in 64 bits.
    VersionTooLarge(String),
    NotAMigration,
}

fn parse_name(path: &Path) -> Parsed {
    let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
        return Parsed::NotAMigration;
    };
    let Some(caps) = NAME.captures(file) else {
        return Parsed::NotAMigration;
    };
    let version_text = &caps[1];
    let Ok(version) = version_text.parse::<u64>() else {
        return Parsed::VersionTooLarge(version_text.to_owned());
    };
    Parsed::Migration(Name {
        version,
        version_text: version_text.to_owned(),
        title: caps[2].to_owned(),
        direction: if &caps[3] == "up" {
            Direction::Up
        } else {
            Direction::Down
        },
        extension: caps[4].to_owned(),
    })
}

/// True when the folder holds at least one file named like a golang-migrate migration.
/// sqlx's `.up.sql`/`.down.sql` names match too; which layout wins is `detect`'s decision.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries
        .iter()
        .any(|p| p.is_file() && matches!(parse_name(p), Parsed::Migration(_)))
}

#[derive(Default)]
struct Files {
    up: Option<(PathBuf, Name)>,
    down: Option<(PathBuf, Name)>,
}
/// A folder named like both sqlx's and golang-migrate's is golang-migrate's when one of its
/// files holds a statement PostgreSQL refuses inside a transaction without sqlx's
/// `-- no-transaction` first line: sqlx would fail on it, golang-migrate would not.
pub fn claims(_: &Path, entries: &[PathBuf]) -> bool {
    super::sqlx_would_refuse(entries).is_some()
}

/// The golang-migrate layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::GolangMigrate,
    name: "golang-migrate",
    load,
    detect: Detect::Names {
        group: Group::Plain,
        matches,
        claims,
    },
    history_tables: &[],
    marks: ("golang-migrate", &[]),
    placeholders: false,
};

/// Reads `dir` as a golang-migrate migrations folder.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let mut notes = Vec::new();
    let mut by_version: BTreeMap<u64, Files> = BTreeMap::new();
    let named = |p: &Path| !matches!(parse_name(p), Parsed::NotAMigration);
    for path in list_migrations(dir, Want::File, named)? {
        if !path.is_file() {
            continue;
        }
        let name = match parse_name(&path) {
            Parsed::Migration(name) => name,
            Parsed::VersionTooLarge(version) => {
                notes.push(format!(
                    "`{}` is skipped: version {version} does not fit in 64 bits, and \
                     golang-migrate skips such files without a word",
                    path.display()
                ));
                continue;
            }
            Parsed::NotAMigration => continue,
        };
        let files = by_version.entry(name.version).or_default();
        let slot = match name.direction {
            Direction::Up => &mut files.up,
            Direction::Down => &mut files.down,
        };
        if let Some((first, _)) = slot {
            return Err(SourceError::Duplicate {
                version: name.version.to_string(),
                first: first.clone(),
                second: path,
            });
        }
        *slot = Some((path, name));
    }
    let mut migrations = Vec::new();
    for files in by_version.into_values() {
        let (up_path, up) = match (files.up, &files.down) {
            (Some(up), _) => up,
            (None, None) => continue,
            (None, Some((down, name))) => {
                let down = down.clone();
                let expected = down.with_file_name(format!(
                    "{}_{}.up.{}",
                    name.version_text, name.title, name.extension
                ));
                return Err(SourceError::DownWithoutUp { down, expected });
            }
        };
        let down = match files.down {
            Some((down_path, down)) => {
                if down.title != up.title {
                    notes.push(format!(
                        "`{}` and `{}` share version {} but not their title; golang-migrate \
                         pairs them by version alone",
                        up_path.display(),
                        down_path.display(),
                        up.version
                    ));
                }
                Some(script(&down_path)?)
            }
            None => None,
        };
        migrations.push(Migration {
            version: up.version_text,
            description: up.title,
            up: script(&up_path)?,
            down,
        });
    }
    if migrations.is_empty() {
        let hint = " (golang-migrate files are named `<VERSION>_<TITLE>.up.sql`)".to_owned();
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint,
        });
    }
    let mut set = MigrationSet::new(Format::GolangMigrate, dir, migrations);
    set.notes = notes;
    Ok(set)
}

fn script(path: &Path) -> Result<Script, SourceError> {
    Ok(Script::whole(path.to_owned(), read_text(path)?, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::list_dir;
    use crate::source::testing::folder;

    fn ids(set: &MigrationSet) -> Vec<String> {
        set.migrations.iter().map(|m| m.id()).collect()
    }

    #[test]
    fn orders_by_numeric_version_and_sends_each_file_whole_without_transaction() {
        let dir = folder(&[
            ("10_c.up.sql", b"create table c();\ncreate table d();"),
            ("10_c.down.sql", b"drop table d;\ndrop table c;"),
            ("000002_b.up.sql", b"create table b();"),
            ("1_a.up.sql", b"create table a();"),
            ("1_a.down.sql", b"drop table a;"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(ids(&set), ["1_a", "000002_b", "10_c"]);
        let c = &set.migrations[2];
        assert_eq!(c.up.blocks.len(), 1);
        assert!(!c.up.blocks[0].transactional);
        assert_eq!(c.up.blocks[0].chunks.len(), 1);
        assert_eq!(
            c.up.blocks[0].chunks[0].sql,
            "create table c();\ncreate table d();"
        );
        assert!(c.down.as_ref().unwrap().has_autocommit());
        assert!(set.migrations[1].down.is_none());
        assert!(set.notes.is_empty());
    }

    #[test]
    fn names_follow_golang_migrate_pattern() {
        let dir = folder(&[
            ("1_a.b.up.sql", b"select 1;"),
            ("2_.up.txt", b"select 2;"),
            ("3_x.down.y.up.sql", b"select 3;"),
            ("4_plain.sql", b"skipped: no direction"),
            ("x5_bad.up.sql", b"skipped: no leading version"),
            ("README.md", b"skipped"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(ids(&set), ["1_a.b", "2", "3_x.down.y"]);
        assert_eq!(set.migrations[1].version, "2");
        assert_eq!(set.migrations[1].description, "");
    }

    #[test]
    fn down_without_up_is_an_error() {
        let dir = folder(&[("1_a.up.sql", b""), ("2_b.down.sql", b"")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("2_b.down.sql") && err.contains("2_b.up.sql"),
            "{err}"
        );
    }

    #[test]
    fn same_version_twice_is_a_duplicate() {
        let dir = folder(&[("1_a.up.sql", b""), ("001_b.up.sql", b"")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("duplicate migration version 1"), "{err}");
        assert!(
            err.contains("001_b.up.sql") && err.contains("1_a.up.sql"),
            "{err}"
        );
    }

    #[test]
    fn mismatched_titles_and_huge_versions_are_noted() {
        let dir = folder(&[
            ("1_a.up.sql", b""),
            ("1_b.down.sql", b""),
            ("99999999999999999999_huge.up.sql", b""),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(ids(&set), ["1_a"]);
        assert_eq!(set.notes.len(), 2, "{:?}", set.notes);
        assert!(set
            .notes
            .iter()
            .any(|n| n.contains("99999999999999999999_huge.up.sql")));
        assert!(set.notes.iter().any(|n| n.contains("1_b.down.sql")));
    }

    #[test]
    fn strips_bom_and_keeps_crlf() {
        let dir = folder(&[("1_a.up.sql", b"\xef\xbb\xbfselect 1;\r\nselect 2;\r\n")]);
        let m = &load(dir.path()).unwrap().migrations[0];
        assert_eq!(m.up.text, "select 1;\r\nselect 2;\r\n");
    }

    #[test]
    fn loads_the_fixture_history() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golang_migrate_history");
        let set = load(&dir).unwrap();
        assert_eq!(set.migrations.len(), 40);
        let versions: Vec<&str> = set.migrations.iter().map(|m| m.version.as_str()).collect();
        let expected: Vec<String> = (1..=40).map(|n| format!("{n:06}")).collect();
        assert_eq!(versions, expected);
        assert_eq!(set.migrations[0].id(), "000001_create_accounts");
        let irreversible: Vec<String> = set
            .migrations
            .iter()
            .filter(|m| m.down.is_none())
            .map(|m| m.id())
            .collect();
        assert_eq!(
            irreversible,
            [
                "000011_backfill_event_types",
                "000017_add_delivery_status_dropped",
                "000019_backfill_account_settings",
                "000023_drop_legacy_tokens",
                "000031_normalize_endpoint_urls",
                "000038_backfill_api_key_last_used_at",
            ]
        );
        assert!(set.migrations.iter().all(|m| m.up.has_autocommit()));
        assert!(set.notes.is_empty(), "{:?}", set.notes);
        assert!(matches(&list_dir(&dir).unwrap()));
    }

    #[test]
    fn matches_only_directional_names() {
        let dir = folder(&[("1_a.up.sql", b"")]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[("1_a.sql", b""), ("V1__a.sql", b"")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
        assert!(matches!(load(dir.path()), Err(SourceError::Empty { .. })));
    }
}

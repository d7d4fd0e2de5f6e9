//! The files layout: `<NAME>.up.sql` and `<NAME>.down.sql` run in the byte order of their file
//! names, read the way maragudk/migrate (`maragu.dev/migrate`) reads its folder. Chosen with
//! `--source files` only: the names alone look like sqlx's and golang-migrate's.
//!
//! What migrate does (its `migrate.go`: `upMatcher`, `downMatcher`, `MigrateUp`,
//! `MigrateDown`, `apply`), and so what this reader describes:
//! - An up is a file whose name matches `^([\w-]+).up.sql$` and a down one matching
//!   `^([\w-]+).down.sql`, where `\w` is ASCII `[0-9A-Za-z_]`; the captured part is the
//!   migration's version (`1-accounts`), kept as text. Several files may share a number
//!   (`1-users.up.sql`, `1-orders.up.sql`): the number means nothing to migrate.
//! - Files are listed with `fs.ReadDir`, sorted by name byte by byte. `Up` runs, in that
//!   order, every up whose version is above the recorded one, comparing versions as strings.
//! - Each file runs in a transaction of its own, together with `update migrations set version
//!   = '<version>'` (migrate's one-row table keeps the last applied version): the file is sent
//!   whole as one query, and a failure rolls back the file and the version together.
//! - A down is paired with the up of the same version. `Down` runs the downs in reverse name
//!   order, from the recorded version to the first, each in its transaction, and records the
//!   version of the down before it (`""` after the first).
//!
//! Where migrate would do something other than its names suggest, migproof refuses with the
//! file's name, since a check of what the folder seems to say would prove nothing:
//! - its patterns leave the dots unescaped and the down pattern unanchored, so `backup.sql`
//!   runs as the up of version `bac`, and `1-a.down.sql.orig` as the down of `1-a`;
//! - a `.up.sql` or `.down.sql` file whose version holds anything but `[0-9A-Za-z_-]`
//!   (`1.1.up.sql`) is skipped, so it never runs;
//! - an up that sorts after another by file name while its version is not above that one
//!   (`1.up.sql` after `1-a.up.sql`, as `-` sorts before `.`) is skipped by `Up` once the
//!   other is applied;
//! - a down without its up is an error ([`SourceError::DownWithoutUp`]).
//!
//! An up without a down is read as a migration without a down, with a note: `Down` rolls back
//! past it without a word and records the version before it, so its changes stay and the next
//! `Up` runs it again.

use super::{Detect, Layout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::{
    list_migrations, read_text, Format, Migration, MigrationSet, Script, SourceError, Want,
};

/// migrate's `upMatcher` and `downMatcher`, as Go reads them (`\w` is ASCII, `.` any character).
static MIGRATE_UP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9A-Za-z_-]+).up.sql$").expect("the pattern is valid"));
static MIGRATE_DOWN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9A-Za-z_-]+).down.sql").expect("the pattern is valid"));
/// The names migrate matches and that mean what they say.
static UP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9A-Za-z_-]+)\.up\.sql$").expect("the pattern is valid"));
static DOWN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9A-Za-z_-]+)\.down\.sql$").expect("the pattern is valid"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// What a folder entry is to migrate.
enum Entry {
    /// A migration file: its direction and version.
    File(Direction, String),
    /// A file migrate runs under another name than its own, or skips although it is named like
    /// a migration: why.
    Misread(String),
    NotAMigration,
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|n| n.to_str())
}

fn classify(path: &Path) -> Entry {
    let Some(name) = file_name(path) else {
        return Entry::NotAMigration;
    };
    if let Some(c) = UP.captures(name) {
        return Entry::File(Direction::Up, c[1].to_owned());
    }
    if let Some(c) = DOWN.captures(name) {
        return Entry::File(Direction::Down, c[1].to_owned());
    }
    let loose = MIGRATE_UP
        .captures(name)
        .map(|c| ("up", c[1].to_owned()))
        .or_else(|| {
            MIGRATE_DOWN
                .captures(name)
                .map(|c| ("down", c[1].to_owned()))
        });
    if let Some((direction, version)) = loose {
        return Entry::Misread(format!(
            "migrate's file patterns leave the dots unescaped (and the down pattern open at the \
             end), so it runs this file as the {direction} of version `{version}`; move it \
             out of the migrations folder, or name it `{version}.{direction}.sql` if it is \
             that migration"
        ));
    }
    if name.ends_with(".up.sql") || name.ends_with(".down.sql") {
        return Entry::Misread(
            "migrate skips this file without a word, so it never runs: its patterns allow \
             only letters, digits, `_` and `-` before `.up.sql` and `.down.sql`; rename it"
                .to_owned(),
        );
    }
    Entry::NotAMigration
}

/// Always false: file names alone cannot tell this layout from sqlx's, so it is chosen with
/// `--source files` (or `source = "files"` in migproof.toml).
pub fn matches(_entries: &[PathBuf]) -> bool {
    false
}

#[derive(Default)]
struct Pair {
    up: Option<PathBuf>,
    down: Option<PathBuf>,
}
/// The files layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Files,
    name: "files",
    load,
    detect: Detect::Asked,
    history_tables: &[],
    marks: ("maragudk/migrate", &[]),
    placeholders: false,
};

/// Reads `dir` as a folder of migrate's `.up.sql` and `.down.sql` files.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let named = |p: &Path| !matches!(classify(p), Entry::NotAMigration);
    // Keyed by version: an up's version orders as its file name does, which is checked below.
    let mut pairs: BTreeMap<String, Pair> = BTreeMap::new();
    let mut ups: Vec<(String, String)> = Vec::new();
    for path in list_migrations(dir, Want::File, named)? {
        let (direction, version) = match classify(&path) {
            Entry::File(direction, version) => (direction, version),
            Entry::Misread(message) => return Err(SourceError::Invalid { path, message }),
            Entry::NotAMigration => continue,
        };
        let pair = pairs.entry(version.clone()).or_default();
        match direction {
            Direction::Up => {
                ups.push((file_name(&path).unwrap_or_default().to_owned(), version));
                pair.up = Some(path);
            }
            Direction::Down => pair.down = Some(path),
        }
    }
    // Sorted by file name as `fs.ReadDir` lists them; `Up` skips any version not above the
    // last one it applied.
    ups.sort();
    for window in ups.windows(2) {
        let [(before_file, before), (file, version)] = window else {
            continue;
        };
        if version <= before {
            return Err(SourceError::Invalid {
                path: dir.join(file),
                message: format!(
                    "comes after `{before_file}` in file name order, but its version \
                     `{version}` is not above `{before}`: migrate compares versions as \
                     strings, so once `{before}` is applied it skips this file and it never \
                     runs; rename one of the two"
                ),
            });
        }
    }
    let mut notes = Vec::new();
    let mut migrations = Vec::new();
    for (_, version) in &ups {
        let Some(pair) = pairs.remove(version) else {
            continue;
        };
        let Some(up) = pair.up else {
            continue;
        };
        let down = match pair.down {
            Some(down) => Some(Script::whole(down.clone(), read_text(&down)?, true)),
            None => {
                notes.push(format!(
                    "`{}` has no down: migrate's Down rolls back past it without running \
                     anything and records the version of the down before it, so its changes \
                     stay and the next Up runs it again",
                    up.display()
                ));
                None
            }
        };
        migrations.push(Migration {
            version: version.clone(),
            description: String::new(),
            up: Script::whole(up.clone(), read_text(&up)?, true),
            down,
        });
    }
    if let Some((version, pair)) = pairs.into_iter().next() {
        if let Some(down) = pair.down {
            let expected = down.with_file_name(format!("{version}.up.sql"));
            return Err(SourceError::DownWithoutUp { down, expected });
        }
    }
    if migrations.is_empty() {
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint: " (the files layout reads `<NAME>.up.sql` files and their `<NAME>.down.sql` \
                   twins)"
                .to_owned(),
        });
    }
    let mut set = MigrationSet::new(Format::Files, dir, migrations);
    set.notes = notes;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::list_dir;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        dir
    }

    fn error(files: &[(&str, &str)]) -> String {
        let dir = folder(files);
        load(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn runs_in_file_name_order_with_shared_numbers() {
        let dir = folder(&[
            ("2-index.up.sql", "create index i on orders (user_id);"),
            ("2-index.down.sql", "drop index i;"),
            ("1-users.up.sql", "create table users ();"),
            ("1-users.down.sql", "drop table users;"),
            ("1-orders.up.sql", "create table orders ();"),
            ("1-orders.down.sql", "drop table orders;"),
            ("10-late.up.sql", "select 1;"),
            ("README.md", "skipped"),
            ("schema.sql", "skipped"),
        ]);
        let set = load(dir.path()).unwrap();
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        // Byte order: `10-late` sorts before `2-index`, as migrate runs them.
        assert_eq!(ids, ["1-orders", "1-users", "10-late", "2-index"]);
        let users = &set.migrations[1];
        assert_eq!(users.up.text, "create table users ();");
        assert!(users.up.blocks[0].transactional);
        let down = users.down.as_ref().unwrap();
        assert!(down.path.ends_with("1-users.down.sql"));
        assert!(down.blocks[0].transactional);
        assert!(set.migrations[2].down.is_none());
        assert_eq!(set.format, Format::Files);
    }

    #[test]
    fn an_up_without_a_down_gets_a_note() {
        let dir = folder(&[
            ("1.up.sql", "select 1;"),
            ("1.down.sql", "select 1;"),
            ("2.up.sql", "select 2;"),
        ]);
        let set = load(dir.path()).unwrap();
        assert!(set.migrations[1].down.is_none());
        assert_eq!(set.notes.len(), 1, "{:?}", set.notes);
        assert!(
            set.notes[0].contains("2.up.sql") && set.notes[0].contains("runs it again"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn a_down_without_its_up_is_refused() {
        let dir = folder(&[("1-a.up.sql", ""), ("1-b.down.sql", "")]);
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, SourceError::DownWithoutUp { .. }), "{err}");
        let err = err.to_string();
        assert!(
            err.contains("1-b.down.sql") && err.contains("1-b.up.sql"),
            "{err}"
        );
    }

    #[test]
    fn names_migrate_reads_otherwise_are_refused() {
        // The unescaped dot: migrate runs `backup.sql` as the up of version `bac`.
        let err = error(&[("1.up.sql", ""), ("backup.sql", "")]);
        assert!(
            err.contains("backup.sql") && err.contains("up of version `bac`"),
            "{err}"
        );
        // The down pattern is open at the end.
        let err = error(&[("1.up.sql", ""), ("1.down.sql.orig", "")]);
        assert!(
            err.contains("1.down.sql.orig") && err.contains("down of version `1`"),
            "{err}"
        );
        // A dot in the version: migrate skips the file.
        let err = error(&[("1.up.sql", ""), ("1.1.up.sql", "")]);
        assert!(
            err.contains("1.1.up.sql") && err.contains("never runs"),
            "{err}"
        );
    }

    #[test]
    fn a_version_below_an_earlier_file_is_refused() {
        // `-` sorts before `.`: `1-a.up.sql` runs first, then migrate skips `1` <= `1-a`.
        let err = error(&[("1.up.sql", ""), ("1-a.up.sql", "")]);
        assert!(
            err.contains("1.up.sql") && err.contains("`1-a.up.sql`") && err.contains("skips"),
            "{err}"
        );
    }

    #[test]
    fn a_folder_named_like_a_migration_is_refused() {
        let dir = folder(&[("1.up.sql", "")]);
        std::fs::create_dir(dir.path().join("2.up.sql")).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, SourceError::NotReadable { .. }), "{err}");
    }

    #[test]
    fn an_empty_folder_says_what_it_looks_for() {
        let err = error(&[("notes.txt", "")]);
        assert!(
            err.contains("holds no migrations") && err.contains(".up.sql"),
            "{err}"
        );
    }

    #[test]
    fn never_detected() {
        let dir = folder(&[("1.up.sql", ""), ("1.down.sql", "")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
    }
}

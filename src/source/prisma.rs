//! The Prisma Migrate layout: `prisma/migrations/`, holding one `<timestamp>_<name>/` folder
//! per migration with its `migration.sql`, and `migration_lock.toml`, read the way `prisma
//! migrate deploy` reads and applies them on PostgreSQL.
//!
//! What Prisma does, and so what this reader describes:
//! - Every direct subfolder is a migration (prisma/prisma `packages/migrate/src/utils/
//!   listMigrations.ts`: `readdir` with file types, so a symlink to a folder is *not* one and
//!   is skipped without a word; migproof refuses it by name instead). The migrations run in the
//!   order of `a.path.localeCompare(b.path)` on the folder names: ICU's root collation, where
//!   punctuation sorts before digits and digits before letters, letters compare ignoring case
//!   first and lowercase wins a tie (`1_init` before `10_add`, unlike byte order). Prisma's
//!   generated names (`20240301093000_create_customers`) sort the same either way.
//! - A folder without `migration.sql` makes Prisma fail ("Failed to read migration script",
//!   prisma-engines `schema-connector/src/migrations_directory.rs`), so it is refused here.
//!   Other files are not read: a `down.sql` beside `migration.sql` (as Prisma's docs on down
//!   migrations suggest) is only run by hand with `prisma db execute`, and gets a note.
//! - On PostgreSQL the schema engine sends the whole `migration.sql` as one simple-protocol
//!   query, with no `BEGIN` around it (prisma-engines `sql-schema-connector`, the Postgres
//!   flavour's `Connection::apply_migration_script`: `client.simple_query(script)`). The server
//!   runs such a multi-statement query as one implicit transaction, so a failing statement
//!   undoes the file, and a statement PostgreSQL refuses in a transaction block (`CREATE INDEX
//!   CONCURRENTLY`) fails unless it is the file's only statement. migproof sends the file the
//!   same way: one query message, outside an explicit transaction.
//! - `migration_lock.toml` names the provider the SQL was written for; Prisma reads the first
//!   line starting with `provider` (`read_provider_from_lock_file`). migproof runs PostgreSQL,
//!   so a lock file for another database is refused, CockroachDB gets a note.
//! - There is no down: Prisma Migrate is forward-only.

use super::{Detect, Layout};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{list_dir, read_text, Format, Migration, MigrationSet, Script, SourceError};

const LOCK_FILE: &str = "migration_lock.toml";
const SCRIPT: &str = "migration.sql";

/// True when the folder holds `migration_lock.toml`, or a subfolder holding `migration.sql`.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries.iter().any(|p| {
        (p.file_name().is_some_and(|n| n == LOCK_FILE) && p.is_file())
            || (p.is_dir() && p.join(SCRIPT).is_file())
    })
}
/// The prisma layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Prisma,
    name: "prisma",
    load,
    detect: Detect::OwnFile(matches),
    history_tables: &[],
    marks: ("Prisma", &[]),
    placeholders: false,
};

/// Reads `dir` as a Prisma `migrations` folder.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let mut notes = Vec::new();
    let mut folders = Vec::new();
    for path in list_dir(dir)? {
        let io = |source| SourceError::Io {
            path: path.clone(),
            source,
        };
        let meta = std::fs::symlink_metadata(&path).map_err(io)?;
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        if meta.is_dir() {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                return Err(SourceError::Invalid {
                    path: path.clone(),
                    message: "the folder name is not UTF-8, which Prisma's migration names \
                              must be"
                        .to_owned(),
                });
            };
            folders.push((name.to_owned(), path.clone()));
        } else if meta.file_type().is_symlink() && path.is_dir() {
            return Err(SourceError::NotReadable {
                path: path.clone(),
                found: "a symlink to a folder (Prisma lists folders with `readdir`, which \
                        reports a symlink as a symlink, so it skips this one)"
                    .to_owned(),
                wanted: "a folder",
            });
        } else if file_name == LOCK_FILE {
            check_lock(&path, &mut notes)?;
        } else if file_name.ends_with(".sql") {
            notes.push(format!(
                "`{}` is not run: Prisma runs only `<migration>/{SCRIPT}` files",
                path.display()
            ));
        }
    }
    folders.sort_by(|a, b| locale_compare(&a.0, &b.0));
    let names = versions(folders.iter().map(|(name, _)| name.as_str()));
    let mut migrations = Vec::new();
    for ((_, folder), (version, description)) in folders.iter().zip(names) {
        let script = folder.join(SCRIPT);
        match std::fs::metadata(&script) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(SourceError::NotReadable {
                    path: script,
                    found: "not a regular file".to_owned(),
                    wanted: "a regular file",
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SourceError::Invalid {
                    path: folder.clone(),
                    message: format!(
                        "holds no `{SCRIPT}`; Prisma treats every folder in `migrations` as a \
                         migration and fails on this one (\"Failed to read migration \
                         script\"): add its `{SCRIPT}`, or move the folder out"
                    ),
                })
            }
            Err(source) => {
                return Err(SourceError::Io {
                    path: script,
                    source,
                })
            }
        }
        let down = folder.join("down.sql");
        if down.is_file() {
            notes.push(format!(
                "`{}` is not run: Prisma Migrate has no down (a down script is applied by hand \
                 with `prisma db execute`), so migproof checks the up only",
                down.display()
            ));
        }
        let text = read_text(&script)?;
        migrations.push(Migration {
            version,
            description,
            up: Script::whole(script, text, false),
            down: None,
        });
    }
    if migrations.is_empty() {
        let hint = " (Prisma migrations are `<timestamp>_<name>/migration.sql` folders in \
                    `prisma/migrations`; pass that folder)";
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint: hint.to_owned(),
        });
    }
    let mut set = MigrationSet::new(Format::Prisma, dir, migrations);
    set.notes = notes;
    set.forward_only = true;
    Ok(set)
}

/// Refuses a lock file written for a database other than PostgreSQL, reading the provider as
/// Prisma does: the first line starting with `provider`, `provider = ` and quotes removed.
fn check_lock(path: &Path, notes: &mut Vec<String>) -> Result<(), SourceError> {
    let text = read_text(path)?;
    let Some((i, line)) = text
        .lines()
        .enumerate()
        .find(|(_, line)| line.starts_with("provider"))
    else {
        return Ok(());
    };
    let provider = line.trim_start_matches("provider = ").trim_matches('"');
    let line = i + 1;
    match provider {
        "postgresql" | "postgres" => Ok(()),
        "cockroachdb" => {
            notes.push(format!(
                "`{}` line {line}: the migrations were generated for CockroachDB; migproof \
                 runs them on PostgreSQL",
                path.display()
            ));
            Ok(())
        }
        other => Err(SourceError::Invalid {
            path: path.to_owned(),
            message: format!(
                "line {line}: the migrations were generated for provider `{other}`, not \
                 PostgreSQL, which is what migproof runs; point --migrations at a PostgreSQL \
                 project's `prisma/migrations`"
            ),
        }),
    }
}

/// Version and description of each folder name, in order: the part before the first `_` and
/// the rest. Prisma knows a migration by its whole folder name and allows two with the same
/// timestamp, so a name whose prefix is not unique (or is empty) is kept whole as the version.
/// Either way [`Migration::id`] is the folder name.
fn versions<'a>(names: impl Iterator<Item = &'a str> + Clone) -> Vec<(String, String)> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for name in names.clone() {
        let prefix = name.split_once('_').map_or(name, |(p, _)| p);
        *count.entry(prefix).or_default() += 1;
    }
    names
        .map(|name| match name.split_once('_') {
            Some((prefix, rest)) if !prefix.is_empty() && count[prefix] == 1 => {
                (prefix.to_owned(), rest.to_owned())
            }
            _ => (name.to_owned(), String::new()),
        })
        .collect()
}

/// `a.localeCompare(b)` as Node's ICU root collation orders ASCII names: first the primary
/// weights (whitespace, then punctuation and symbols in ICU's order, digits, letters without
/// case), then case with lowercase first. Characters beyond ASCII sort after the letters by
/// code point, an approximation where ICU would interleave accented letters.
fn locale_compare(a: &str, b: &str) -> Ordering {
    let primary = |s: &str| s.chars().map(primary_weight).collect::<Vec<u32>>();
    let tertiary = |s: &str| {
        s.chars()
            .map(|c| c.is_ascii_uppercase())
            .collect::<Vec<bool>>()
    };
    primary(a)
        .cmp(&primary(b))
        .then_with(|| tertiary(a).cmp(&tertiary(b)))
        .then_with(|| a.cmp(b))
}

/// ASCII whitespace, punctuation and symbols in the order of ICU's root collation.
const VARIABLE: &str = "\t\n\x0b\x0c\r _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

fn primary_weight(c: char) -> u32 {
    if let Some(i) = VARIABLE.find(c) {
        return i as u32;
    }
    let base = VARIABLE.len() as u32;
    match c {
        '0'..='9' => base + (c as u32 - '0' as u32),
        'a'..='z' => base + 10 + (c as u32 - 'a' as u32),
        'A'..='Z' => base + 10 + (c as u32 - 'A' as u32),
        // Control characters are ignored by ICU; they weigh least here.
        c if c.is_ascii_control() => 0,
        c => base + 36 + c as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    const LOCK: &str = "# Please do not edit this file manually\n\
                        # It should be added in your version-control system (e.g., Git)\n\
                        provider = \"postgresql\"\n";

    fn error(dir: &tempfile::TempDir) -> String {
        load(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn reads_folders_in_order_as_one_query_each() {
        let dir = tree(&[
            (LOCK_FILE, LOCK),
            (
                "20240304141500_create_orders/migration.sql",
                "-- CreateTable\nCREATE TABLE \"orders\" (\"id\" BIGSERIAL NOT NULL);\n\n\
                 -- CreateIndex\nCREATE INDEX \"i\" ON \"orders\"(\"id\");\n",
            ),
            (
                "20240301093000_create_customers/migration.sql",
                "CREATE TABLE \"customers\" (\"id\" BIGSERIAL NOT NULL);\n",
            ),
        ]);
        let set = load(dir.path()).unwrap();
        assert!(set.forward_only);
        assert!(set.notes.is_empty(), "{:?}", set.notes);
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(
            ids,
            [
                "20240301093000_create_customers",
                "20240304141500_create_orders"
            ]
        );
        let orders = &set.migrations[1];
        assert_eq!(orders.version, "20240304141500");
        assert_eq!(orders.description, "create_orders");
        assert!(orders.down.is_none());
        assert!(orders
            .up
            .path
            .ends_with("20240304141500_create_orders/migration.sql"));
        // The whole file, one query message, no BEGIN around it.
        let blocks = &orders.up.blocks;
        assert_eq!(blocks.len(), 1);
        assert!(!blocks[0].transactional);
        assert_eq!(blocks[0].chunks.len(), 1);
        assert_eq!(blocks[0].chunks[0].sql, orders.up.text);
        assert_eq!(blocks[0].chunks[0].offset, 0);
    }

    #[test]
    fn order_is_locale_compare_not_bytes() {
        let mut names = vec!["10_b", "1_a", "2_c", "B_x", "a_y", "0_init", "1-x"];
        names.sort_by(|a, b| locale_compare(a, b));
        assert_eq!(names, ["0_init", "1_a", "1-x", "10_b", "2_c", "a_y", "B_x"]);
        assert_eq!(locale_compare("a", "A"), Ordering::Less);
        assert_eq!(locale_compare("A", "ab"), Ordering::Less);
        // Generated names: the same as byte order.
        assert_eq!(
            locale_compare("20240301093000_b", "20240301093001_a"),
            Ordering::Less
        );
    }

    #[test]
    fn a_folder_without_its_script_is_refused() {
        let dir = tree(&[
            (LOCK_FILE, LOCK),
            ("1_a/migration.sql", "SELECT 1;"),
            ("2_b/README.md", "forgot the script"),
        ]);
        let err = error(&dir);
        assert!(err.contains("2_b`: holds no `migration.sql`"), "{err}");
    }

    #[test]
    fn stray_files_get_notes() {
        let dir = tree(&[
            ("1_a/migration.sql", "ALTER TABLE t DROP COLUMN c;"),
            ("1_a/down.sql", "ALTER TABLE t ADD COLUMN c int;"),
            ("seed.sql", "INSERT INTO t VALUES (1);"),
            ("notes.txt", "ignored"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.migrations.len(), 1);
        assert_eq!(set.notes.len(), 2, "{:?}", set.notes);
        assert!(set.notes.iter().any(|n| n.contains("down.sql")));
        assert!(set.notes.iter().any(|n| n.contains("seed.sql")));
    }

    #[test]
    fn lock_file_for_another_database_is_refused() {
        let dir = tree(&[
            (LOCK_FILE, "# comment\nprovider = \"mysql\"\n"),
            ("1_a/migration.sql", "SELECT 1;"),
        ]);
        let err = error(&dir);
        assert!(
            err.contains("migration_lock.toml`: line 2") && err.contains("`mysql`"),
            "{err}"
        );
        let dir = tree(&[
            (LOCK_FILE, "provider = \"cockroachdb\"\n"),
            ("1_a/migration.sql", "SELECT 1;"),
        ]);
        assert!(load(dir.path()).unwrap().notes[0].contains("CockroachDB"));
    }

    #[test]
    fn shared_timestamps_keep_whole_names_as_versions() {
        let dir = tree(&[
            ("20240101000000_a/migration.sql", "SELECT 1;"),
            ("20240101000000_b/migration.sql", "SELECT 2;"),
            ("_odd/migration.sql", "SELECT 3;"),
            ("init/migration.sql", "SELECT 4;"),
        ]);
        let set = load(dir.path()).unwrap();
        let got: Vec<(String, String)> = set
            .migrations
            .iter()
            .map(|m| (m.version.clone(), m.id()))
            .collect();
        assert_eq!(
            got,
            [
                ("_odd".into(), "_odd".into()),
                ("20240101000000_a".into(), "20240101000000_a".into()),
                ("20240101000000_b".into(), "20240101000000_b".into()),
                ("init".into(), "init".into()),
            ]
        );
    }

    #[test]
    fn a_symlinked_folder_is_refused() {
        let dir = tree(&[("real/1_a/migration.sql", "SELECT 1;")]);
        let migrations = dir.path().join("migrations");
        std::fs::create_dir(&migrations).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real/1_a"), migrations.join("1_a")).unwrap();
        let err = load(&migrations).unwrap_err().to_string();
        assert!(err.contains("symlink to a folder"), "{err}");
    }

    #[test]
    fn matches_the_lock_file_or_a_migration_folder() {
        let entries = |dir: &tempfile::TempDir| list_dir(dir.path()).unwrap();
        assert!(matches(&entries(&tree(&[(LOCK_FILE, LOCK)]))));
        assert!(matches(&entries(&tree(&[("1_a/migration.sql", "")]))));
        assert!(!matches(&entries(&tree(&[("1_a/up.sql", "")]))));
        assert!(!matches(&entries(&tree(&[("1_a.sql", "")]))));
    }

    #[test]
    fn empty_folder_says_what_prisma_migrations_look_like() {
        let err = error(&tree(&[(LOCK_FILE, LOCK)]));
        assert!(
            err.contains("holds no migrations") && err.contains("migration.sql"),
            "{err}"
        );
    }
}

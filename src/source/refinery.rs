//! The refinery layout: `V<VERSION>__<NAME>.sql` files (and `U<VERSION>__<NAME>.sql`), up
//! only, read the way refinery's `embed_migrations!` and `load_sql_migrations` read them.
//!
//! What refinery does, and so what this reader describes:
//! - It walks the migrations folder *and its sub-folders* (symlinked folders are not entered)
//!   for files named `^[UV](\d+(\.\d+)?)__(\w+)\.(sql|rs)$`; other files are skipped with a
//!   logged warning. The name after `__` is letters, digits and `_` only.
//! - The version must parse as an `i32`: `V1.1__x.sql` matches the name pattern but refinery
//!   then fails on it, and so does migproof. Migrations run in ascending numeric version.
//! - `U` (unversioned) migrations differ from `V` ones only in being allowed to run below the
//!   database's current version; on an empty database both run in version order.
//! - There are no down migrations.
//! - Each file is sent whole (`batch_execute`, one query message) inside a transaction, unless
//!   one of its lines is exactly `--refinery:noTransaction` (two or more dashes, at most one
//!   whitespace character, nothing after). The runner's `set_grouped(true)`, which puts every
//!   migration in one transaction, is code, not something a folder can show.
//! - `V<N>__<NAME>.rs` files are Rust migrations; migproof cannot run them and says how to
//!   turn them into SQL.
//!
//! Flyway uses the same `V<N>__<NAME>.sql` names; [`matches`] only answers whether refinery
//! could read the folder, and [`claims`] whether the folder is refinery's rather than Flyway's.

use super::{Detect, Group, Layout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::{
    list_migrations, read_text, Format, Migration, MigrationSet, Script, SourceError, Want,
};

static FILE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([UV])([0-9]+(?:\.[0-9]+)?)__(\w+)\.(sql|rs)$").expect("the pattern is valid")
});
static NO_TRANSACTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^-{2,}\s?refinery:noTransaction$").expect("the pattern is valid")
});

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Sql,
    Rust,
}

struct Name {
    /// `V` or `U`.
    prefix: String,
    version_text: String,
    name: String,
    kind: Kind,
}

fn parse_name(path: &Path) -> Option<Name> {
    let file = path.file_name()?.to_str()?;
    let caps = FILE_NAME.captures(file)?;
    Some(Name {
        prefix: caps[1].to_owned(),
        version_text: caps[2].to_owned(),
        name: caps[3].to_owned(),
        kind: if &caps[4] == "rs" {
            Kind::Rust
        } else {
            Kind::Sql
        },
    })
}

/// True when a file directly in the folder is named like a refinery migration with a whole
/// number version (`V1__x.sql`, `V1__x.rs`), which refinery could run. Dotted versions
/// (`V1.1__x.sql`) are Flyway's, not refinery's.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries.iter().any(|p| {
        p.is_file() && parse_name(p).is_some_and(|n| n.version_text.parse::<i32>().is_ok())
    })
}

/// True when a folder of `V<N>__<NAME>` files belongs to refinery rather than Flyway, whose
/// names are the same: it holds a Rust-file migration, which only refinery has, or the
/// nearest `Cargo.toml` above it (the crate that embeds the migrations) depends on
/// `refinery`.
pub fn claims(dir: &Path, entries: &[PathBuf]) -> bool {
    let rust = entries
        .iter()
        .any(|p| p.is_file() && parse_name(p).is_some_and(|n| n.kind == Kind::Rust));
    rust || crate_depends_on_refinery(dir)
}

fn crate_depends_on_refinery(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let Some(manifest) = dir
        .ancestors()
        .map(|d| d.join("Cargo.toml"))
        .find(|p| p.is_file())
    else {
        return false;
    };
    let Some(manifest) = read_text(&manifest)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
    else {
        return false;
    };
    let tables = ["dependencies", "dev-dependencies", "build-dependencies"];
    let mut lists: Vec<&toml::Value> = tables.iter().filter_map(|t| manifest.get(*t)).collect();
    lists.extend(
        manifest
            .get("workspace")
            .and_then(|w| w.get("dependencies")),
    );
    for (_, target) in manifest
        .get("target")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flatten()
    {
        lists.extend(tables.iter().filter_map(|t| target.get(*t)));
    }
    lists
        .iter()
        .filter_map(|list| list.as_table())
        .flatten()
        .any(|(name, spec)| {
            // A renamed dependency names its crate in `package`.
            let package = spec
                .get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(name);
            package == "refinery"
        })
}

/// Every file under `dir`, entering sub-folders but not symlinked ones, as refinery's walk does.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    for path in list_migrations(dir, Want::File, |p| parse_name(p).is_some())? {
        let meta = std::fs::symlink_metadata(&path).map_err(|source| SourceError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(&path, files)?;
        } else if path.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

fn rust_migration(path: &Path, name: &Name) -> SourceError {
    let stem = format!("{}{}__{}", name.prefix, name.version_text, name.name);
    SourceError::Invalid {
        path: path.to_owned(),
        message: format!(
            "migproof cannot run Rust-file migrations (it reads SQL and never builds your \
             crate); replace this file with `{stem}.sql` holding, byte for byte, the SQL its \
             `migration()` function returns (print `migrations::{stem}::migration()` once from \
             a test), which also keeps refinery's checksum unchanged"
        ),
    }
}
/// The refinery layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Refinery,
    name: "refinery",
    load,
    detect: Detect::Names {
        group: Group::Versioned,
        matches,
        claims,
    },
    history_tables: &[],
    marks: ("refinery", &[]),
    placeholders: false,
};

/// Reads `dir` as a refinery migrations folder, sub-folders included.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    let mut notes = Vec::new();
    let mut by_version: BTreeMap<i32, (PathBuf, Name)> = BTreeMap::new();
    for path in files {
        let Some(name) = parse_name(&path) else {
            if looks_like_a_migration(&path) {
                notes.push(format!(
                    "`{}` is skipped: refinery migration names are `V<VERSION>__<NAME>.sql` with \
                     only letters, digits and `_` in the name, and refinery skips other files",
                    path.display()
                ));
            }
            continue;
        };
        if name.kind == Kind::Rust {
            return Err(rust_migration(&path, &name));
        }
        let Ok(version) = name.version_text.parse::<i32>() else {
            let message = if name.version_text.contains('.') {
                format!(
                    "version `{}` is not a whole number and refinery fails on it; if this is a \
                     Flyway project, read it with `--source flyway`",
                    name.version_text
                )
            } else {
                format!(
                    "version `{}` is larger than refinery allows (2147483647)",
                    name.version_text
                )
            };
            return Err(SourceError::Invalid { path, message });
        };
        if let Some((first, _)) = by_version.get(&version) {
            return Err(SourceError::Duplicate {
                version: version.to_string(),
                first: first.clone(),
                second: path,
            });
        }
        by_version.insert(version, (path, name));
    }
    let mut migrations = Vec::new();
    for (path, name) in by_version.into_values() {
        let text = read_text(&path)?;
        let transactional = !text.lines().any(|line| NO_TRANSACTION.is_match(line));
        migrations.push(Migration {
            version: name.version_text,
            description: name.name,
            up: Script::whole(path, text, transactional),
            down: None,
        });
    }
    if migrations.is_empty() {
        let hint = " (refinery migrations are `V<VERSION>__<NAME>.sql` files)".to_owned();
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint,
        });
    }
    let mut set = MigrationSet::new(Format::Refinery, dir, migrations);
    set.notes = notes;
    Ok(set)
}

/// A `.sql` or `.rs` file starting like `V1`/`U1` that the name pattern rejected.
fn looks_like_a_migration(path: &Path) -> bool {
    let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let mut chars = file.chars();
    matches!(chars.next(), Some('V' | 'U'))
        && chars.next().is_some_and(|c| c.is_ascii_digit())
        && (file.ends_with(".sql") || file.ends_with(".rs"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::list_dir;

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
    fn orders_by_numeric_version_across_sub_folders() {
        let dir = tree(&[
            ("V10__ten.sql", b"select 10;"),
            ("V2__two.sql", b"select 2;"),
            ("older/V1__one.sql", b"select 1;"),
            ("U3__merge.sql", b"select 3;"),
            ("README.md", b"skipped"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(ids(&set), ["1_one", "2_two", "3_merge", "10_ten"]);
        assert!(set.migrations.iter().all(|m| m.down.is_none()));
        assert_eq!(set.migrations[0].description, "one");
        assert!(set.notes.is_empty());
    }

    #[test]
    fn whole_file_in_a_transaction_unless_annotated() {
        let dir = tree(&[
            ("V1__a.sql", b"create table a();\ncreate table b();"),
            (
                "V2__b.sql",
                b"-- refinery:noTransaction\ncreate index concurrently i on a(c);",
            ),
            ("V3__c.sql", b"select 1;\r\n--refinery:noTransaction\r\n"),
            ("V4__d.sql", b"---\trefinery:noTransaction\n"),
        ]);
        let m = load(dir.path()).unwrap().migrations;
        assert!(m[0].up.blocks[0].transactional);
        assert_eq!(m[0].up.blocks[0].chunks.len(), 1);
        assert_eq!(
            m[0].up.blocks[0].chunks[0].sql,
            "create table a();\ncreate table b();"
        );
        assert!(!m[1].up.blocks[0].transactional);
        assert!(
            !m[2].up.blocks[0].transactional,
            "CRLF line endings still match"
        );
        assert!(!m[3].up.blocks[0].transactional);
    }

    #[test]
    fn annotation_must_be_the_whole_line() {
        for body in [
            &b"-- refinery:noTransaction please\n"[..],
            b"--  refinery:noTransaction\n",
            b"  -- refinery:noTransaction\n",
            b"- refinery:noTransaction\n",
            b"select 1; -- refinery:noTransaction\n",
        ] {
            let dir = tree(&[("V1__a.sql", body)]);
            let m = load(dir.path()).unwrap().migrations;
            assert!(
                m[0].up.blocks[0].transactional,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn rust_migrations_are_refused_with_a_way_out() {
        let dir = tree(&[
            ("V1__a.sql", b"select 1;"),
            ("V2__add_index.rs", b"fn migration() {}"),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("V2__add_index.rs"), "{err}");
        assert!(err.contains("cannot run Rust-file migrations"), "{err}");
        assert!(err.contains("`V2__add_index.sql`"), "{err}");
    }

    #[test]
    fn dotted_and_huge_versions_are_refused() {
        let dir = tree(&[("V1.1__a.sql", b"select 1;")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("V1.1__a.sql") && err.contains("--source flyway"),
            "{err}"
        );
        let dir = tree(&[("V2147483648__a.sql", b"select 1;")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("V2147483648__a.sql") && err.contains("2147483647"),
            "{err}"
        );
    }

    #[test]
    fn near_miss_names_are_noted_and_skipped() {
        let dir = tree(&[
            ("V1__a.sql", b"select 1;"),
            ("V2__add-index.sql", b"select 2;"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(ids(&set), ["1_a"]);
        assert!(
            set.notes[0].contains("V2__add-index.sql"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn same_version_twice_is_a_duplicate() {
        let dir = tree(&[("V1__a.sql", b""), ("sub/V01__b.sql", b"")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("duplicate migration version 1:"), "{err}");
    }

    #[test]
    fn strips_bom_and_keeps_crlf() {
        let dir = tree(&[("V1__a.sql", b"\xef\xbb\xbfselect 1;\r\nselect 2;\r\n")]);
        let m = &load(dir.path()).unwrap().migrations[0];
        assert_eq!(m.up.text, "select 1;\r\nselect 2;\r\n");
        assert!(m.up.blocks[0].transactional);
    }

    #[test]
    fn matches_whole_number_versions_only() {
        let dir = tree(&[("V1__a.sql", b"")]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
        let dir = tree(&[("V1__a.rs", b"")]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
        let dir = tree(&[
            ("V1.1__a.sql", b""),
            ("V2__a-b.sql", b""),
            ("1_a.up.sql", b""),
        ]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
        let dir = tree(&[("notes.txt", b"")]);
        assert!(matches!(load(dir.path()), Err(SourceError::Empty { .. })));
    }

    #[test]
    fn claims_folders_with_rust_migrations_or_in_a_crate_using_refinery() {
        let dir = tree(&[("migrations/V1__a.sql", b""), ("migrations/V2__b.rs", b"")]);
        let migrations = dir.path().join("migrations");
        assert!(claims(&migrations, &list_dir(&migrations).unwrap()));
        for manifest in [
            &b"[dependencies]\nrefinery = { version = \"0.8\", features = [\"tokio-postgres\"] }\n"[..],
            b"[workspace.dependencies]\nrefinery = \"0.8\"\n",
            b"[target.'cfg(unix)'.dependencies]\nmigrate = { package = \"refinery\", version = \"0.8\" }\n",
        ] {
            let dir = tree(&[("Cargo.toml", manifest), ("db/migrations/V1__a.sql", b"")]);
            let migrations = dir.path().join("db/migrations");
            assert!(
                claims(&migrations, &list_dir(&migrations).unwrap()),
                "{}",
                String::from_utf8_lossy(manifest)
            );
        }
        // The nearest manifest decides, and one without refinery (or none, or a broken one)
        // leaves the folder to Flyway.
        for manifest in [&b"[dependencies]\nsqlx = \"0.8\"\n"[..], b"not toml ["] {
            let dir = tree(&[
                ("Cargo.toml", b"[dependencies]\nrefinery = \"0.8\"\n"),
                ("app/Cargo.toml", manifest),
                ("app/migrations/V1__a.sql", b""),
            ]);
            let migrations = dir.path().join("app/migrations");
            assert!(!claims(&migrations, &list_dir(&migrations).unwrap()));
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_folders_are_not_entered() {
        let dir = tree(&[("V1__a.sql", b"select 1;")]);
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        assert_eq!(ids(&load(dir.path()).unwrap()), ["1_a"]);
    }
}

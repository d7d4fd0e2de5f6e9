//! The sqlx layout: `<VERSION>_<DESCRIPTION>.up.sql` / `.down.sql`, or a simple
//! `<VERSION>_<DESCRIPTION>.sql` with no down. Each file is sent as one query in one
//! transaction, unless its first line is `-- no-transaction`, as `sqlx migrate run` does.

use super::{Detect, Group, Layout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    list_migrations, read_text, Format, Migration, MigrationSet, Script, SourceError, Want,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Simple,
    Up,
    Down,
}

struct Name {
    version: i64,
    version_text: String,
    description: String,
    kind: Kind,
}

fn parse_name(path: &Path) -> Option<Result<Name, SourceError>> {
    let raw = path.file_name()?;
    let Some(file) = raw.to_str() else {
        // Skipping it would silently leave a migration out of the check.
        return raw.to_string_lossy().ends_with(".sql").then(|| {
            Err(SourceError::Invalid {
                path: path.to_owned(),
                message: "the file name is not valid UTF-8; rename the file".into(),
            })
        });
    };
    let stem = file.strip_suffix(".sql")?;
    let (stem, kind) = if let Some(s) = stem.strip_suffix(".up") {
        (s, Kind::Up)
    } else if let Some(s) = stem.strip_suffix(".down") {
        (s, Kind::Down)
    } else {
        (stem, Kind::Simple)
    };
    let (version_text, description) = stem.split_once('_').unwrap_or((stem, ""));
    let parsed = version_text.parse::<i64>().ok().filter(|v| *v >= 0);
    Some(match parsed {
        Some(version) => Ok(Name {
            version,
            version_text: version_text.to_owned(),
            description: description.to_owned(),
            kind,
        }),
        None => Err(SourceError::Invalid {
            path: path.to_owned(),
            message: format!(
                "version `{version_text}` is not a non-negative integer; sqlx migrations are \
                 named `<VERSION>_<DESCRIPTION>.up.sql` (for example `0001_create_users.up.sql`)"
            ),
        }),
    })
}

/// True when the folder holds at least one file named like a sqlx migration.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries
        .iter()
        .any(|p| p.is_file() && matches!(parse_name(p), Some(Ok(_))))
}

fn script(path: &Path) -> Result<Script, SourceError> {
    let text = read_text(path)?;
    let transactional = !text.starts_with("-- no-transaction");
    Ok(Script::whole(path.to_owned(), text, transactional))
}

#[derive(Default)]
struct Files {
    name: Option<(String, String)>,
    simple: Option<PathBuf>,
    up: Option<PathBuf>,
    down: Option<PathBuf>,
}
/// The sqlx layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Sqlx,
    name: "sqlx",
    load,
    detect: Detect::Names {
        group: Group::Plain,
        matches,
        claims: super::claims_none,
    },
    history_tables: &[],
    marks: ("sqlx", &[]),
    placeholders: false,
};

pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let mut by_version: BTreeMap<i64, Files> = BTreeMap::new();
    for path in list_migrations(dir, Want::File, |p| parse_name(p).is_some())? {
        if !path.is_file() {
            continue;
        }
        let Some(name) = parse_name(&path) else {
            continue;
        };
        let name = name?;
        let files = by_version.entry(name.version).or_default();
        let id = (name.version_text.clone(), name.description.clone());
        if let Some(prev) = &files.name {
            if *prev != id {
                let other = files
                    .simple
                    .clone()
                    .or(files.up.clone())
                    .or(files.down.clone());
                return Err(SourceError::Duplicate {
                    version: name.version_text,
                    first: other.unwrap_or_default(),
                    second: path,
                });
            }
        }
        files.name = Some(id);
        let slot = match name.kind {
            Kind::Simple => &mut files.simple,
            Kind::Up => &mut files.up,
            Kind::Down => &mut files.down,
        };
        *slot = Some(path);
    }
    let mut migrations = Vec::new();
    for (_, files) in by_version {
        let (version, description) = files.name.expect("every entry has a name");
        let up = match (files.simple, files.up) {
            (Some(a), Some(b)) => {
                return Err(SourceError::Duplicate {
                    version,
                    first: a,
                    second: b,
                });
            }
            (Some(p), None) | (None, Some(p)) => p,
            (None, None) => {
                let down = files.down.expect("a version entry holds at least one file");
                let expected = down.with_file_name(format!("{version}_{description}.up.sql"));
                return Err(SourceError::DownWithoutUp { down, expected });
            }
        };
        let down = files.down.as_deref().map(script).transpose()?;
        migrations.push(Migration {
            version,
            description,
            up: script(&up)?,
            down,
        });
    }
    if migrations.is_empty() {
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint: String::new(),
        });
    }
    Ok(MigrationSet::new(Format::Sqlx, dir, migrations))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::testing::folder;

    #[test]
    fn reads_reversible_and_simple_in_version_order() {
        let dir = folder(&[
            ("10_b.up.sql", b"create table b();"),
            ("10_b.down.sql", b"drop table b;"),
            (
                "2_a.sql",
                b"-- no-transaction\ncreate index concurrently x on y(z);",
            ),
            ("README.md", b"not a migration"),
        ]);
        let m = load(dir.path()).unwrap().migrations;
        assert_eq!(
            m.iter().map(|m| m.id()).collect::<Vec<_>>(),
            ["2_a", "10_b"]
        );
        assert!(m[0].down.is_none());
        assert!(!m[0].up.blocks[0].transactional);
        assert!(m[1].up.blocks[0].transactional);
        assert!(m[1].down.is_some());
    }

    #[test]
    fn strips_bom_and_keeps_crlf() {
        let dir = folder(&[("1_a.up.sql", b"\xef\xbb\xbfselect 1;\r\nselect 2;\r\n")]);
        let m = load(dir.path()).unwrap().migrations;
        assert_eq!(m[0].up.text, "select 1;\r\nselect 2;\r\n");
        assert_eq!(m[0].up.line_of(12), 2);
    }

    #[test]
    fn duplicate_versions_name_both_files() {
        let dir = folder(&[("1_a.up.sql", b""), ("1_b.up.sql", b"")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("duplicate migration version 1"), "{err}");
        assert!(
            err.contains("1_a.up.sql") && err.contains("1_b.up.sql"),
            "{err}"
        );
    }

    #[test]
    fn down_without_up_is_an_error() {
        let dir = folder(&[("1_a.down.sql", b"")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("1_a.down.sql") && err.contains("without its up"),
            "{err}"
        );
    }

    #[test]
    fn non_utf8_file_is_named() {
        let dir = folder(&[("1_a.up.sql", b"select '\xff';")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("1_a.up.sql") && err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn bad_version_is_named() {
        let dir = folder(&[("x1_a.up.sql", b"")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("x1_a.up.sql") && err.contains("version `x1`"),
            "{err}"
        );
    }
}

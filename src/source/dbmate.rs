//! The dbmate layout: one file per migration, `<VERSION>_<NAME>.sql`, holding a
//! `-- migrate:up` section and a `-- migrate:down` section, read the way dbmate 2 reads them.
//!
//! What dbmate does, and so what this reader describes:
//! - A file is a migration when its name matches `^([0-9]+).*\.sql$`; the version is the
//!   leading digits, kept as text. Migrations run in the byte order of their *file names*.
//! - A marker is a line starting with `--`, optional whitespace and `migrate:up` or
//!   `migrate:down`, followed by whitespace or the end of the line; options may follow on the
//!   same line (`-- migrate:up transaction:false`). Only blank lines and `--` comments may come
//!   before the first `-- migrate:up`.
//! - Every `-- migrate:up` starts a section that ends at the next `-- migrate:up`; each section
//!   must hold exactly one `-- migrate:down`. The up part runs from its marker line to the down
//!   marker, the down part from the down marker to the end of the section. Marker lines are SQL
//!   comments and are sent with the part they head.
//! - Each part is sent whole as one query message, inside a transaction unless its marker says
//!   `transaction:false` (any other value, even `False`, means a transaction).
//! - Migrating runs the sections' up parts in file order; rolling back runs their down parts,
//!   also in file order (dbmate does not reverse them).
//! - A down part with no SQL (the usual `-- migrate:down` at the end of a file) rolls back
//!   "successfully" while changing nothing, so it is read as a down script, never as a missing
//!   down: migproof then shows what the rollback leaves behind.

use super::{Detect, Layout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::{
    list_migrations, read_text, Block, Chunk, Format, Migration, MigrationSet, Script, SourceError,
    Want,
};

// dbmate is written in Go, whose `\s` is ASCII `[\t\n\f\r ]`; the patterns spell that set out.
static FILE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]+)(.*)\.sql$").expect("the pattern is valid"));
static UP: LazyLock<Regex> = LazyLock::new(|| marker("up"));
static DOWN: LazyLock<Regex> = LazyLock::new(|| marker("down"));
static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^--[\t\n\x0C\r ]*migrate:(?:up|down)").expect("the pattern is valid")
});

fn marker(direction: &str) -> Regex {
    let pattern = format!(
        r"(?m)^--[\t\n\x0C\r ]*migrate:{direction}(?:[\t\n\x0C\r ]*$|[\t\n\x0C\r ]+[^\t\n\x0C\r ])"
    );
    Regex::new(&pattern).expect("the pattern is valid")
}

fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0C' | '\r' | ' ')
}

struct Name {
    version: String,
    description: String,
}

fn parse_name(path: &Path) -> Option<Name> {
    let file = path.file_name()?.to_str()?;
    let caps = FILE_NAME.captures(file)?;
    let rest = &caps[2];
    Some(Name {
        version: caps[1].to_owned(),
        description: rest.strip_prefix('_').unwrap_or(rest).to_owned(),
    })
}

/// True when a file named like a dbmate migration holds a `-- migrate:up` marker. The name
/// alone would also fit sqlx's `<VERSION>_<DESCRIPTION>.sql`, so the marker decides.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries.iter().any(|p| {
        p.is_file() && parse_name(p).is_some() && read_text(p).is_ok_and(|text| UP.is_match(&text))
    })
}
/// The dbmate layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Dbmate,
    name: "dbmate",
    load,
    detect: Detect::Marks {
        matches,
        paired: false,
    },
    history_tables: &[],
    marks: ("dbmate", &["-- migrate:"]),
    placeholders: false,
};

/// Reads `dir` as a dbmate migrations folder.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    // Keyed by file name: dbmate orders by file name, not by version.
    let mut files: BTreeMap<String, (PathBuf, Name)> = BTreeMap::new();
    let mut by_version: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in list_migrations(dir, Want::File, |p| parse_name(p).is_some())? {
        if !path.is_file() {
            continue;
        }
        let Some(name) = parse_name(&path) else {
            continue;
        };
        if let Some(first) = by_version.get(&name.version) {
            return Err(SourceError::Duplicate {
                version: name.version,
                first: first.clone(),
                second: path,
            });
        }
        by_version.insert(name.version.clone(), path.clone());
        let file_name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        files.insert(file_name, (path, name));
    }
    let mut notes = Vec::new();
    let mut migrations = Vec::new();
    for (path, name) in files.into_values() {
        let text = read_text(&path)?;
        let sections = parse(&path, &text)?;
        if sections.len() > 1 {
            notes.push(format!(
                "`{}` holds {} `-- migrate:up` sections; migproof runs each as its own step as \
                 dbmate intends, but some dbmate releases record the version after the first \
                 section and then fail on the second (amacneil/dbmate#820)",
                path.display(),
                sections.len()
            ));
        }
        for section in &sections {
            for part in [&section.up, &section.down] {
                if let Some(value) = &part.odd_transaction {
                    notes.push(format!(
                        "`{}` line {}: `transaction:{value}` is not `false`, so dbmate runs \
                         this part in a transaction",
                        path.display(),
                        line_of(&text, part.offset)
                    ));
                }
            }
        }
        let script = |pick: fn(&Section) -> &Part| Script {
            path: path.clone(),
            text: text.clone(),
            blocks: sections
                .iter()
                .map(|s| {
                    let part = pick(s);
                    Block {
                        transactional: part.transactional,
                        chunks: vec![Chunk {
                            offset: part.offset,
                            sql: part.sql.clone(),
                        }],
                    }
                })
                .collect(),
            command: None,
        };
        let up = script(|s| &s.up);
        let down = script(|s| &s.down);
        migrations.push(Migration {
            version: name.version,
            description: name.description,
            up,
            down: Some(down),
        });
    }
    if migrations.is_empty() {
        let hint = " (dbmate migrations are `<VERSION>_<NAME>.sql` files)".to_owned();
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint,
        });
    }
    let mut set = MigrationSet::new(Format::Dbmate, dir, migrations);
    set.notes = notes;
    Ok(set)
}

struct Part {
    /// Byte offset of the part's marker line in the file.
    offset: usize,
    sql: String,
    transactional: bool,
    /// A `transaction:` value other than `true` or `false`, worth a note.
    odd_transaction: Option<String>,
}

struct Section {
    up: Part,
    down: Part,
}

fn invalid(path: &Path, message: String) -> SourceError {
    SourceError::Invalid {
        path: path.to_owned(),
        message,
    }
}

/// Splits a dbmate migration file into its sections, with the checks dbmate makes.
fn parse(path: &Path, text: &str) -> Result<Vec<Section>, SourceError> {
    let ups: Vec<usize> = UP.find_iter(text).map(|m| m.start()).collect();
    let Some(&first) = ups.first() else {
        return Err(invalid(
            path,
            "has no `-- migrate:up` line; dbmate requires every migration to start with one"
                .to_owned(),
        ));
    };
    for (line, before) in (1..).zip(text[..first].split('\n')) {
        let trimmed = before.trim_start_matches(is_go_space);
        if !trimmed.is_empty() && !trimmed.starts_with("--") {
            return Err(invalid(
                path,
                format!(
                    "line {line} comes before `-- migrate:up` and is not a comment; dbmate \
                     refuses statements outside the up and down sections"
                ),
            ));
        }
    }
    let mut sections = Vec::new();
    for (i, &start) in ups.iter().enumerate() {
        let end = ups.get(i + 1).copied().unwrap_or(text.len());
        let section = &text[start..end];
        let downs: Vec<usize> = DOWN.find_iter(section).map(|m| start + m.start()).collect();
        let down = match downs.as_slice() {
            [down] => *down,
            [] => {
                return Err(invalid(
                    path,
                    format!(
                        "the `-- migrate:up` section at line {} has no `-- migrate:down` line; \
                         dbmate requires one in every section, even with nothing after it",
                        line_of(text, start)
                    ),
                ));
            }
            [a, b, ..] => {
                return Err(invalid(
                    path,
                    format!(
                        "the `-- migrate:up` section at line {} has two `-- migrate:down` lines \
                         (lines {} and {}); dbmate rejects the file",
                        line_of(text, start),
                        line_of(text, *a),
                        line_of(text, *b)
                    ),
                ));
            }
        };
        sections.push(Section {
            up: part(text, start, down),
            down: part(text, down, end),
        });
    }
    Ok(sections)
}

/// The part of `text` from `start` (a marker line) to `end`, with the marker's options.
fn part(text: &str, start: usize, end: usize) -> Part {
    let sql = &text[start..end];
    let first_line = sql.split('\n').next().unwrap_or_default();
    let options = DIRECTIVE.replace(first_line, "");
    let mut transaction = None;
    for pair in options.trim().split(is_go_space).filter(|s| !s.is_empty()) {
        let fields: Vec<&str> = pair.split(':').collect();
        if let [key, value] = fields.as_slice() {
            if *key == "transaction" {
                transaction = Some((*value).to_owned());
            }
        }
    }
    let transactional = transaction.as_deref() != Some("false");
    let odd_transaction = transaction.filter(|v| v != "true" && v != "false");
    Part {
        offset: start,
        sql: sql.to_owned(),
        transactional,
        odd_transaction,
    }
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
    use crate::source::testing::folder;

    fn one(body: &[u8]) -> Result<Migration, SourceError> {
        let dir = folder(&[("20240101000000_x.sql", body)]);
        load(dir.path()).map(|mut set| set.migrations.remove(0))
    }

    fn error(body: &[u8]) -> String {
        one(body).unwrap_err().to_string()
    }

    #[test]
    fn orders_by_file_name_and_splits_up_and_down() {
        let dir = folder(&[
            (
                "20240102000000_b.sql",
                b"-- migrate:up\ncreate table b();\n-- migrate:down\ndrop table b;\n",
            ),
            (
                "20240101000000_a.sql",
                b"-- migrate:up\ncreate table a();\n\n-- migrate:down\n",
            ),
            ("README.md", b"skipped"),
            ("schema.sql", b"skipped"),
        ]);
        let set = load(dir.path()).unwrap();
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["20240101000000_a", "20240102000000_b"]);
        let b = &set.migrations[1];
        assert_eq!(b.version, "20240102000000");
        assert_eq!(b.description, "b");
        assert_eq!(
            b.up.blocks[0].chunks[0].sql,
            "-- migrate:up\ncreate table b();\n"
        );
        assert_eq!(b.up.blocks[0].chunks[0].offset, 0);
        let down = b.down.as_ref().unwrap();
        assert_eq!(
            down.blocks[0].chunks[0].sql,
            "-- migrate:down\ndrop table b;\n"
        );
        assert_eq!(down.line_of(down.blocks[0].chunks[0].offset), 3);
        assert!(b.up.blocks[0].transactional && down.blocks[0].transactional);
    }

    #[test]
    fn empty_down_is_a_down_that_does_nothing() {
        let m = one(b"-- migrate:up\ncreate table a();\n-- migrate:down\n").unwrap();
        let down = m.down.unwrap();
        assert_eq!(down.blocks.len(), 1);
        assert_eq!(down.blocks[0].chunks[0].sql, "-- migrate:down\n");
    }

    #[test]
    fn transaction_false_per_part() {
        let m = one(
            b"-- migrate:up transaction:false\ncreate index concurrently i on t(c);\n\
              -- migrate:down\ndrop index i;\n",
        )
        .unwrap();
        assert!(!m.up.blocks[0].transactional);
        assert!(m.down.unwrap().blocks[0].transactional);
        let m = one(b"-- migrate:up\nselect 1;\n-- migrate:down   transaction:false  \nselect 2;")
            .unwrap();
        assert!(m.up.blocks[0].transactional);
        assert!(!m.down.unwrap().blocks[0].transactional);
    }

    #[test]
    fn odd_transaction_values_run_in_a_transaction_with_a_note() {
        let dir = folder(&[(
            "1_a.sql",
            b"-- migrate:up transaction:False\nselect 1;\n-- migrate:down\n",
        )]);
        let set = load(dir.path()).unwrap();
        assert!(set.migrations[0].up.blocks[0].transactional);
        assert!(
            set.notes[0].contains("transaction:False"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn comments_and_blank_lines_may_precede_up_but_statements_may_not() {
        let m = one(b"-- a comment\n\n   -- indented\n-- migrate:up\nselect 1;\n-- migrate:down\n");
        assert!(m.is_ok());
        let err = error(b"-- c\ncreate table x();\n-- migrate:up\nselect 1;\n-- migrate:down\n");
        assert!(
            err.contains("20240101000000_x.sql") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn missing_markers_are_named() {
        let err = error(b"create table a();\n");
        assert!(
            err.contains("20240101000000_x.sql") && err.contains("-- migrate:up"),
            "{err}"
        );
        let err = error(b"-- migrate:up\ncreate table a();\n");
        assert!(
            err.contains("no `-- migrate:down`") && err.contains("line 1"),
            "{err}"
        );
        // A down marker above the first up is only a comment there.
        let err = error(b"-- migrate:down\n-- migrate:up\nselect 2;\n");
        assert!(
            err.contains("no `-- migrate:down`") && err.contains("line 2"),
            "{err}"
        );
        let err = error(b"-- migrate:up\nselect 1;\n-- migrate:down\n\n-- migrate:down\n");
        assert!(err.contains("lines 3 and 5"), "{err}");
    }

    #[test]
    fn marker_must_end_or_be_followed_by_whitespace() {
        // `-- migrate:upgrade` is not a marker, so the file has no up section.
        let err = error(b"-- migrate:upgrade\nselect 1;\n-- migrate:down\n");
        assert!(err.contains("has no `-- migrate:up`"), "{err}");
        // No space after `--` is still a marker.
        assert!(one(b"--migrate:up\nselect 1;\n--migrate:down\n").is_ok());
        // Indented markers are not markers.
        let err = error(b"  -- migrate:up\nselect 1;\n");
        assert!(err.contains("has no `-- migrate:up`"), "{err}");
    }

    #[test]
    fn several_sections_become_blocks_in_file_order() {
        let dir = folder(&[(
            "1_a.sql",
            b"-- migrate:up\ncreate table t(c int);\n-- migrate:down\ndrop table t;\n\
              -- migrate:up transaction:false\ncreate index concurrently i on t(c);\n\
              -- migrate:down transaction:false\ndrop index concurrently i;\n",
        )]);
        let set = load(dir.path()).unwrap();
        let m = &set.migrations[0];
        assert_eq!(m.up.blocks.len(), 2);
        assert!(m.up.blocks[0].transactional && !m.up.blocks[1].transactional);
        let down = m.down.as_ref().unwrap();
        assert_eq!(
            down.blocks[0].chunks[0].sql,
            "-- migrate:down\ndrop table t;\n"
        );
        assert!(!down.blocks[1].transactional);
        assert_eq!(m.up.line_of(m.up.blocks[1].chunks[0].offset), 5);
        assert!(
            set.notes[0].contains("2 `-- migrate:up` sections"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn strips_bom_and_reads_crlf_markers() {
        let m = one(
            b"\xef\xbb\xbf-- migrate:up transaction:false\r\nselect 1;\r\n\
              -- migrate:down transaction:false\r\nselect 2;\r\n",
        )
        .unwrap();
        assert!(m.up.text.starts_with("-- migrate:up"));
        assert!(!m.up.blocks[0].transactional);
        let down = m.down.unwrap();
        assert!(!down.blocks[0].transactional);
        assert_eq!(
            down.blocks[0].chunks[0].sql,
            "-- migrate:down transaction:false\r\nselect 2;\r\n"
        );
    }

    #[test]
    fn same_version_twice_is_a_duplicate() {
        let body: &[u8] = b"-- migrate:up\n-- migrate:down\n";
        let dir = folder(&[("1_a.sql", body), ("1_b.sql", body), ("01_c.sql", body)]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("duplicate migration version 1:"), "{err}");
    }

    #[test]
    fn matches_needs_the_up_marker() {
        let dir = folder(&[("1_a.sql", b"create table a();")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[(
            "1_a.sql",
            b"-- migrate:up\ncreate table a();\n-- migrate:down\n",
        )]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
    }

    #[test]
    fn no_panic_on_odd_input() {
        for body in [
            &b""[..],
            b"--",
            b"-- migrate:up",
            b"-- migrate:up\n-- migrate:down",
            b"--\nmigrate:up\n-- migrate:down",
            b"-- migrate:up \xc3\xa9\n-- migrate:down \xc3\xa9:\xc3\xa9",
            b"\n\n\n",
        ] {
            let _ = one(body);
        }
    }
}

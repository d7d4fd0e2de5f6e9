//! The tern layout (jackc/tern 2): `<N>_<NAME>.sql` files numbered 1, 2, 3... without gaps,
//! the up above the line `---- create above / drop below ----` and the down below it, read and
//! sent the way tern's `migrate` package does it (`migrate/migrate.go`: `FindMigrations`,
//! `LoadMigrations`, `MigrateTo`; `migrate/internal/sqlsplit`).
//!
//! What tern does, and so what this reader describes:
//! - A migration is a file directly in the folder whose name matches `\A(\d+)_.+\.sql\z`;
//!   other entries are skipped, sub-folders included (tern reads `.sql` files there only as
//!   shared templates). The number is a 32-bit integer and gives the order; the numbers must
//!   run 1, 2, 3...: a gap fails tern ("Missing migration 3"), a number used twice too
//!   ("Duplicate migration 2", `002_a.sql` and `2_b.sql` included), and `0` crashes it.
//!   migproof refuses all three, naming the files.
//! - `tern init` writes `tern.conf` (connection settings and the templates' `[data]`) into the
//!   migrations folder, and tern reads it from the folder it runs in: a folder of tern-named
//!   files with a `tern.conf` in it or in its parent is detected as tern's, as is one whose
//!   tern-named files hold the separator.
//! - The file is cut at the first `---- create above / drop below ----`, wherever it stands,
//!   and each part is trimmed of surrounding whitespace. The up must hold SQL (a line that is
//!   not blank and not a `--` comment), or tern fails ("no sql in forward migration step"). A
//!   file without the separator, or with nothing but whitespace below it, has no down: tern
//!   refuses to migrate down past it ("Irreversible migration"), so its down is `None`.
//! - Each part is a Go `text/template`, rendered with `tern.conf`'s `[data]` (and shared
//!   templates) before it is sent. migproof does not render templates, so a `{{` anywhere in a
//!   migration is refused naming its line; a part without one renders to itself.
//! - Sending: a part is sent whole, as one query, inside a transaction. A part holding a line
//!   that is exactly `---- tern: disable-tx ----` runs outside a transaction: tern removes the
//!   marker, splits the rest with its own splitter (which knows quotes, `E''` strings and
//!   comments, but not dollar quotes: a `;` inside a `$$` body splits it there, as in tern) and
//!   sends each statement as its own query. The marker must end its line: in a CRLF file tern
//!   does not see it, and migproof adds a note.
//! - After each part tern sends `reset all`, so a session setting a migration changes
//!   (`SET search_path`, `SET statement_timeout`, `SET ROLE`) does not reach the next one.
//!   migproof does not send it: its session keeps settings of its own (`TimeZone`) that
//!   `reset all` would undo, and the reset is not part of the migration's SQL. A statement
//!   that changes a session setting gets a note instead, since under migproof the migrations
//!   after it run with the setting.
//! - tern sends a UTF-8 byte order mark to the server, which fails on it: such a file is
//!   refused.
//!
//! tern records the version in `public.schema_version`; migproof applies the migrations itself
//! and does not create that table.

use super::{Detect, Layout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::goose::starts_with_bom;
use super::split::line_of;
use super::{
    list_migrations, read_text, Block, Chunk, Format, Migration, MigrationSet, Script, SourceError,
    Want,
};

/// The line between the up and the down.
const SEPARATOR: &str = "---- create above / drop below ----";

// Go's `\d` and `.` are ASCII digits and "anything but `\n`"; Rust's `\d` is Unicode.
static FILE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]+)_.+\.sql$").expect("the pattern is valid"));
static DISABLE_TX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^---- tern: disable-tx ----$").expect("the pattern is valid")
});
static DISABLE_TX_CR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^---- tern: disable-tx ----\r$").expect("the pattern is valid")
});

struct Name {
    number_text: String,
    description: String,
}

fn parse_name(path: &Path) -> Option<Name> {
    let file = path.file_name()?.to_str()?;
    let caps = FILE_NAME.captures(file)?;
    let number_text = caps[1].to_owned();
    let rest = &file[number_text.len() + 1..];
    Some(Name {
        description: rest.strip_suffix(".sql").unwrap_or(rest).to_owned(),
        number_text,
    })
}

/// True when the folder holds files named like tern migrations and either a `tern.conf` (in
/// the folder or its parent) or a migration holding tern's separator line.
pub fn matches(entries: &[PathBuf]) -> bool {
    let migrations: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.is_file() && parse_name(p).is_some())
        .collect();
    let Some(dir) = migrations.first().and_then(|p| p.parent()) else {
        return false;
    };
    let conf = std::iter::once(dir)
        .chain(dir.parent())
        .any(|d| d.join("tern.conf").is_file());
    conf || migrations
        .iter()
        .any(|p| read_text(p).is_ok_and(|text| text.contains(SEPARATOR)))
}
/// The tern layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Tern,
    name: "tern",
    load,
    detect: Detect::Marks {
        matches,
        paired: false,
    },
    history_tables: &[],
    marks: ("tern", &["---- create above / drop below ----"]),
    placeholders: false,
};

/// Reads `dir` as a tern migrations folder.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let mut by_number: BTreeMap<i32, (PathBuf, Name)> = BTreeMap::new();
    for path in list_migrations(dir, Want::File, |p| parse_name(p).is_some())? {
        let Some(name) = parse_name(&path) else {
            continue;
        };
        let Ok(number) = name.number_text.parse::<i32>() else {
            return Err(invalid(
                &path,
                format!(
                    "number {} is larger than tern allows (2147483647)",
                    name.number_text
                ),
            ));
        };
        if number == 0 {
            return Err(invalid(
                &path,
                "is numbered 0; tern numbers migrations from 1 and crashes on a 0".to_owned(),
            ));
        }
        if let Some((first, _)) = by_number.get(&number) {
            return Err(SourceError::Duplicate {
                version: number.to_string(),
                first: first.clone(),
                second: path,
            });
        }
        by_number.insert(number, (path, name));
    }
    if by_number.is_empty() {
        let hint = " (tern migrations are `<N>_<NAME>.sql` files numbered from 1)".to_owned();
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint,
        });
    }
    for (expected, (number, (path, _))) in (1..).zip(&by_number) {
        if *number != expected {
            return Err(invalid(
                path,
                format!(
                    "is numbered {number}, but no migration is numbered {expected}; tern \
                     requires the numbers 1, 2, 3... without gaps and fails on this folder \
                     (\"Missing migration {expected}\")"
                ),
            ));
        }
    }
    let mut notes = Vec::new();
    let mut migrations = Vec::new();
    for (path, name) in by_number.into_values() {
        let text = read_text(&path)?;
        if starts_with_bom(&path)? {
            return Err(invalid(
                &path,
                "starts with a UTF-8 byte order mark, which tern sends to the server as part \
                 of the SQL, and PostgreSQL fails on it; save the file without the mark"
                    .to_owned(),
            ));
        }
        if let Some(at) = text.find("{{") {
            return Err(invalid(
                &path,
                format!(
                    "line {}: `{{{{` starts a Go template action; tern renders every migration \
                     as a template (with tern.conf's [data]) before sending it, and migproof \
                     does not render templates: write the rendered SQL, or run tern itself \
                     through a `[command]` migproof.toml (see the README)",
                    line_of(&text, at)
                ),
            ));
        }
        let (up, down) = match text.find(SEPARATOR) {
            Some(at) => (
                part(&text, 0, at),
                Some(part(&text, at + SEPARATOR.len(), text.len())),
            ),
            None => (part(&text, 0, text.len()), None),
        };
        let holds_sql = up.sql.split('\n').any(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with("--")
        });
        if !holds_sql {
            return Err(invalid(
                &path,
                format!(
                    "holds no SQL above `{SEPARATOR}` (only blank lines and `--` comments), and \
                     tern fails on it (\"no sql in forward migration step\")"
                ),
            ));
        }
        let down = down.filter(|d| !d.sql.is_empty());
        let up = script(&path, &text, &up, &mut notes)?;
        let down = down
            .map(|d| script(&path, &text, &d, &mut notes))
            .transpose()?;
        migrations.push(Migration {
            version: name.number_text,
            description: name.description,
            up,
            down,
        });
    }
    let mut set = MigrationSet::new(Format::Tern, dir, migrations);
    set.notes = notes;
    Ok(set)
}

fn invalid(path: &Path, message: String) -> SourceError {
    SourceError::Invalid {
        path: path.to_owned(),
        message,
    }
}

/// One part of a migration file, trimmed as tern trims it.
struct Part<'a> {
    /// Byte offset of the part's first character in the file.
    offset: usize,
    sql: &'a str,
}

fn part(text: &str, start: usize, end: usize) -> Part<'_> {
    let raw = &text[start..end];
    let lead = raw.len() - raw.trim_start().len();
    Part {
        offset: start + lead,
        sql: raw.trim(),
    }
}

/// How tern sends `part`: whole in a transaction, or statement by statement without one when
/// it holds the disable-tx marker.
fn script(
    path: &Path,
    text: &str,
    part: &Part,
    notes: &mut Vec<String>,
) -> Result<Script, SourceError> {
    notes.extend(session_settings(path, text, part));
    let block = if DISABLE_TX.is_match(part.sql) {
        let (sql, cuts) = remove_markers(part.sql);
        if let Some(at) = sql.find('\u{FFFD}') {
            let at = part.offset + original(at, &cuts);
            return Err(invalid(
                path,
                format!(
                    "line {}: U+FFFD (the replacement character) in a disable-tx migration: \
                     tern's statement splitter stops reading there and drops the rest of the \
                     part; remove the character",
                    line_of(text, at)
                ),
            ));
        }
        let chunks = split(&sql)
            .into_iter()
            .map(|(start, end)| Chunk {
                offset: part.offset + original(start, &cuts),
                sql: sql[start..end].to_owned(),
            })
            .collect();
        Block {
            transactional: false,
            chunks,
        }
    } else {
        if let Some(m) = DISABLE_TX_CR.find(part.sql) {
            notes.push(format!(
                "`{}` line {}: `---- tern: disable-tx ----` ends in a carriage return (CRLF line \
                 ends), and tern only sees the marker when `\\n` follows it directly: this part \
                 runs in a transaction",
                path.display(),
                line_of(text, part.offset + m.start())
            ));
        }
        Block {
            transactional: true,
            chunks: vec![Chunk {
                offset: part.offset,
                sql: part.sql.to_owned(),
            }],
        }
    };
    Ok(Script {
        path: path.to_owned(),
        text: text.to_owned(),
        blocks: vec![block],
        command: None,
    })
}

/// Notes for the statements of `part` that change a session setting, which tern's `reset all`
/// undoes after the migration and migproof does not (see the module documentation).
fn session_settings(path: &Path, text: &str, part: &Part) -> Vec<String> {
    let Ok(statements) = super::split::split(part.sql) else {
        return Vec::new();
    };
    statements
        .iter()
        .filter(|st| {
            let mut words = st.sql.split_whitespace().map(str::to_ascii_lowercase);
            words.next().as_deref() == Some("set")
                && !matches!(
                    words.next().as_deref(),
                    Some("local" | "constraints" | "transaction")
                )
        })
        .map(|st| {
            let first = st.sql.lines().next().unwrap_or_default();
            format!(
                "`{}` line {}: `{first}` changes a session setting; tern sends `reset all` after \
                 each migration, migproof does not, so under migproof the migrations after this \
                 one run with the setting (use `SET LOCAL` to keep it to this migration)",
                path.display(),
                line_of(text, part.offset + st.offset)
            )
        })
        .collect()
}

/// `sql` without its disable-tx marker lines (their `\n` kept, as tern's
/// `ReplaceAllLiteralString` leaves it), and where each removal happened in the result with the
/// bytes removed up to it.
fn remove_markers(sql: &str) -> (String, Vec<(usize, usize)>) {
    let mut out = String::with_capacity(sql.len());
    let mut cuts = Vec::new();
    let mut removed = 0;
    let mut last = 0;
    for m in DISABLE_TX.find_iter(sql) {
        out.push_str(&sql[last..m.start()]);
        removed += m.len();
        cuts.push((out.len(), removed));
        last = m.end();
    }
    out.push_str(&sql[last..]);
    (out, cuts)
}

/// The offset in the part of `pos`, an offset in the part without its markers.
fn original(pos: usize, cuts: &[(usize, usize)]) -> usize {
    pos + cuts
        .iter()
        .take_while(|(at, _)| *at <= pos)
        .last()
        .map_or(0, |(_, removed)| *removed)
}

/// The states of tern's `sqlsplit` lexer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lex {
    Raw,
    Single,
    Double,
    Escape,
    LineComment,
    BlockComment,
}

/// tern's `sqlsplit.Split`: the trimmed byte ranges of the statements of `sql`, each running
/// to and including the `;` that ends it (comments before a statement belong to it). Every
/// character that matters is ASCII, so bytes stand in for Go's runes; the caller refuses
/// U+FFFD, on which tern's lexer stops.
fn split(sql: &str) -> Vec<(usize, usize)> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let add = |statements: &mut Vec<(usize, usize)>, start: usize, end: usize| {
        let piece = &sql[start..end];
        let trimmed = piece.trim();
        if !trimmed.is_empty() {
            let lead = piece.len() - piece.trim_start().len();
            statements.push((start + lead, start + lead + trimmed.len()));
        }
    };
    let mut state = Lex::Raw;
    let mut start = 0;
    let mut pos = 0;
    let mut nested = 0usize;
    while let Some(&c) = bytes.get(pos) {
        pos += 1;
        let next = bytes.get(pos).copied();
        match (state, c) {
            (Lex::Raw, b'e' | b'E') if next == Some(b'\'') => {
                pos += 1;
                state = Lex::Escape;
            }
            (Lex::Raw, b'\'') => state = Lex::Single,
            (Lex::Raw, b'"') => state = Lex::Double,
            (Lex::Raw, b';') => {
                add(&mut statements, start, pos);
                start = pos;
            }
            (Lex::Raw, b'-') if next == Some(b'-') => {
                pos += 1;
                state = Lex::LineComment;
            }
            (Lex::Raw, b'/') if next == Some(b'*') => {
                pos += 1;
                state = Lex::BlockComment;
            }
            (Lex::Single | Lex::Escape, b'\'') | (Lex::Double, b'"') => {
                if next == Some(c) {
                    pos += 1;
                } else {
                    state = Lex::Raw;
                }
            }
            (Lex::Escape | Lex::LineComment, b'\\') => pos = (pos + 1).min(bytes.len()),
            (Lex::LineComment, b'\n' | b'\r') => state = Lex::Raw,
            (Lex::BlockComment, b'/') if next == Some(b'*') => {
                pos += 1;
                nested += 1;
            }
            (Lex::BlockComment, b'*') if next == Some(b'/') => {
                pos += 1;
                if nested == 0 {
                    state = Lex::Raw;
                } else {
                    nested -= 1;
                }
            }
            _ => {}
        }
    }
    if pos > start {
        add(&mut statements, start, pos);
    }
    if statements.is_empty() && !sql.trim().is_empty() {
        statements.push((0, sql.len()));
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::list_dir;
    use crate::source::testing::{folder, sqls};

    fn one(body: &str) -> Result<Migration, SourceError> {
        let dir = folder(&[("001_x.sql", body.as_bytes())]);
        load(dir.path()).map(|mut set| set.migrations.remove(0))
    }

    fn error(body: &str) -> String {
        one(body).unwrap_err().to_string()
    }

    #[test]
    fn up_above_the_separator_down_below_each_sent_whole_in_a_transaction() {
        let m = one("-- create the table\n\
             create table a (id int);\n\
             insert into a values (1);\n\
             \n\
             ---- create above / drop below ----\n\
             \n\
             drop table a;\n")
        .unwrap();
        assert_eq!(
            sqls(&m.up),
            ["-- create the table\ncreate table a (id int);\ninsert into a values (1);"]
        );
        assert!(m.up.blocks[0].transactional);
        assert_eq!(m.id(), "001_x");
        let down = m.down.unwrap();
        assert_eq!(sqls(&down), ["drop table a;"]);
        assert_eq!(down.line_of(down.blocks[0].chunks[0].offset), 7);
    }

    #[test]
    fn without_a_separator_or_with_nothing_below_there_is_no_down() {
        assert!(one("create table a ();\n").unwrap().down.is_none());
        let m = one("create table a ();\n---- create above / drop below ----\n \n").unwrap();
        assert!(m.down.is_none());
        // A comment below the separator is a down tern runs (and that does nothing).
        let m = one("create table a ();\n---- create above / drop below ----\n-- keep\n").unwrap();
        assert_eq!(sqls(&m.down.unwrap()), ["-- keep"]);
    }

    #[test]
    fn an_up_without_sql_is_refused() {
        let err = error("-- nothing yet\n\n---- create above / drop below ----\ndrop table a;\n");
        assert!(err.contains("no SQL above"), "{err}");
    }

    #[test]
    fn templates_are_refused_naming_the_line() {
        let err = error("create table a ();\n\ninsert into a values ('{{ .prefix }}');\n");
        assert!(err.contains("line 3") && err.contains("template"), "{err}");
    }

    #[test]
    fn disable_tx_splits_the_part_with_terns_splitter() {
        let m = one("---- tern: disable-tx ----\n\
             create index concurrently i on t (c);\n\
             -- the second one\n\
             create index concurrently j on t (d);\n\
             ---- create above / drop below ----\n\
             drop index i; drop index j;\n")
        .unwrap();
        let up = &m.up.blocks[0];
        assert!(!up.transactional);
        assert_eq!(
            sqls(&m.up),
            [
                "create index concurrently i on t (c);",
                "-- the second one\ncreate index concurrently j on t (d);"
            ]
        );
        assert_eq!(m.up.line_of(up.chunks[0].offset), 2);
        assert_eq!(m.up.line_of(up.chunks[1].offset), 3);
        let down = m.down.unwrap();
        assert!(down.blocks[0].transactional, "the marker is per part");
    }

    #[test]
    fn terns_splitter_knows_quotes_and_comments_but_not_dollar_quotes() {
        let sql = "select 'a;b', \"c;d\", E'\\';'; /* x; /* y; */ z; */ select 2; -- c;\n\
                   do $$ begin perform 1; end $$;";
        let got: Vec<&str> = split(sql).into_iter().map(|(s, e)| &sql[s..e]).collect();
        assert_eq!(
            got,
            [
                "select 'a;b', \"c;d\", E'\\';';",
                "/* x; /* y; */ z; */ select 2;",
                "-- c;\ndo $$ begin perform 1;",
                "end $$;"
            ]
        );
        assert!(split("  \n").is_empty());
        assert_eq!(split("select 1"), [(0, 8)]);
    }

    #[test]
    fn a_crlf_disable_tx_marker_is_not_seen_and_gets_a_note() {
        let dir = folder(&[(
            "1_a.sql",
            b"---- tern: disable-tx ----\r\ncreate index concurrently i on t (c);\r\n",
        )]);
        let set = load(dir.path()).unwrap();
        assert!(set.migrations[0].up.blocks[0].transactional);
        assert!(set.notes[0].contains("carriage return"), "{:?}", set.notes);
    }

    #[test]
    fn a_session_setting_gets_a_note_since_tern_resets_it_and_migproof_does_not() {
        let dir = folder(&[(
            "1_a.sql",
            b"set local lock_timeout = '1s';\nSET search_path = app;\ncreate table t ();\n",
        )]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.notes.len(), 1, "{:?}", set.notes);
        assert!(
            set.notes[0].contains("line 2: `SET search_path = app`"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn numbers_must_run_from_one_without_gaps_or_duplicates() {
        let body: &[u8] = b"select 1;\n";
        let dir = folder(&[
            ("002_b.sql", body),
            ("001_a.sql", body),
            ("10_c.sql", body),
            ("notes.txt", body),
            ("1_.sql", body),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("10_c.sql") && err.contains("Missing migration 3"),
            "{err}"
        );
        let dir = folder(&[("001_a.sql", body), ("1_b.sql", body)]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("duplicate migration version 1:"), "{err}");
        let dir = folder(&[("0_a.sql", body)]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("numbered 0"), "{err}");
        let dir = folder(&[("3000000000_a.sql", body)]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("larger than tern allows"), "{err}");
        let dir = folder(&[("001_a.sql", body), ("002_b.sql", body)]);
        let set = load(dir.path()).unwrap();
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["001_a", "002_b"]);
    }

    #[test]
    fn a_bom_is_refused() {
        let dir = folder(&[("1_a.sql", b"\xef\xbb\xbfselect 1;\n")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("byte order mark"), "{err}");
    }

    #[test]
    fn matches_needs_the_separator_or_a_tern_conf() {
        let dir = folder(&[("001_a.sql", b"create table a();")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[(
            "001_a.sql",
            b"create table a();\n---- create above / drop below ----\ndrop table a;\n",
        )]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[("001_a.sql", b"create table a();"), ("tern.conf", b"")]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[("tern.conf", b"")]);
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        std::fs::write(dir.path().join("migrations/1_a.sql"), b"select 1;").unwrap();
        assert!(matches(&list_dir(&dir.path().join("migrations")).unwrap()));
        // A name without anything between `_` and `.sql` is not a tern migration.
        let dir = folder(&[("001_.sql", b"x\n---- create above / drop below ----\n")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
    }

    #[test]
    fn no_panic_on_odd_input() {
        for body in [
            "",
            "---- create above / drop below ----",
            "---- tern: disable-tx ----",
            "---- tern: disable-tx ----\nselect 1; e'",
            "select 1 /* unterminated",
            "select 'unterminated",
            "select 1; -- \\",
            "---- tern: disable-tx ----\n\u{e9}; e\\",
        ] {
            let _ = one(body);
        }
        for sql in ["e", "E'", "'", "\"", "--", "/*", "/* /*", "\\", "E'\\"] {
            let _ = split(sql);
        }
    }
}

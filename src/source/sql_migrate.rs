//! The sql-migrate layout (rubenv/sql-migrate): one `.sql` file per migration holding
//! `-- +migrate Up` and `-- +migrate Down` sections, read the way its `FileMigrationSource`
//! and `sqlparse` package read them and sent the way `ExecMax` sends them (`migrate.go`,
//! `sqlparse/sqlparse.go`).
//!
//! What sql-migrate does, and so what this reader describes:
//! - Every entry of the folder itself whose name ends in `.sql` is a migration, whatever the
//!   rest of its name; sub-folders are not read. Its id is the whole file name. Migrations are
//!   ordered by id: names starting with digits first, by that number (`^(\d+)`, a 64-bit
//!   integer; sql-migrate panics on a larger one, so migproof refuses it), then equal numbers
//!   and names without one by name, byte by byte. Two names with one number are two
//!   migrations, not duplicates. migproof knows a migration by its file name without `.sql`.
//! - Lines are cut as Go's `bufio.Scanner` cuts them (`\r\n` ends a line too; a line longer
//!   than 1 MiB fails the file). A line starting `-- ` is a comment and dropped, unless it starts
//!   `-- +`. A line starting `-- +migrate ` is a command, case-sensitive: `Up` and `Down` start
//!   a section (a file may switch sections more than once; `notransaction` after the command
//!   runs that whole direction outside a transaction), `StatementBegin` and `StatementEnd`
//!   bracket one statement. Lines before the first section are ignored.
//! - Outside `StatementBegin`/`StatementEnd`, a statement ends at the line whose last word
//!   before any word starting with `--` ends with `;`; a `StatementEnd` line ends the bracketed
//!   one. Lines starting `-- +` are never sent; every other line of a section (blank lines,
//!   `--comments` without the space, indented comments) belongs to the next statement. Before
//!   sending one, sql-migrate removes a trailing `\n`, then a trailing ` `, then a trailing `;`.
//!   SQL left without its end before a section command or at the end of the file fails the
//!   file, as do a `StatementBegin` never ended and a file without any section.
//! - Each statement is its own query; a direction's statements run in one transaction unless
//!   its command said `notransaction`. A file with an empty down section, or none, rolls back
//!   successfully changing nothing: it is read as a down that does nothing, never as a missing
//!   down.
//!
//! Where sql-migrate silently does something its author almost surely did not mean, migproof
//! refuses or notes it. A line that looks like a command but that sql-migrate does not read as
//! one (`-- +migrate up`, `--+migrate Up`, `  -- +migrate Down`, an unknown command) is
//! refused naming it: sql-migrate would run the statements around it in the wrong direction,
//! or not at all. An option other than `notransaction` gets a note (the section runs in a
//! transaction), as do two files sharing a number. A UTF-8 byte order mark hides the first
//! line's command from sql-migrate, so such a file is refused.
//!
//! sql-migrate records ids in `gorp_migrations`; migproof applies the migrations itself and
//! does not create that table.

use super::{Detect, Layout};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::goose::{ends_with_semicolon, scan_lines, starts_with_bom, Line};
use super::{
    list_migrations, read_text, Block, Chunk, Format, Migration, MigrationSet, Script, SourceError,
    Want,
};

/// sql-migrate's scanner limit: the longest line it reads.
const MAX_LINE: usize = 1024 * 1024;
/// What starts a command line, trailing space included.
const COMMAND: &str = "-- +migrate ";
const COMMANDS: &[&str] = &["Up", "Down", "StatementBegin", "StatementEnd"];

fn is_sql_name(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.as_encoded_bytes().ends_with(b".sql"))
}

/// The number a file name starts with, as sql-migrate's `^(\d+)` finds it.
fn number_prefix(name: &str) -> Option<&str> {
    let digits = name.len() - name.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    (digits > 0).then(|| &name[..digits])
}

/// True when a `.sql` file holds a `-- +migrate Up` command.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries.iter().any(|p| {
        p.is_file()
            && is_sql_name(p)
            && read_text(p).is_ok_and(|text| {
                text.lines().any(|l| {
                    l.strip_prefix(COMMAND)
                        .is_some_and(|rest| rest.split_whitespace().next() == Some("Up"))
                })
            })
    })
}

struct File {
    path: PathBuf,
    name: String,
    number: Option<i64>,
}

/// sql-migrate's `Migration.Less`.
fn order(a: &File, b: &File) -> Ordering {
    match (a.number, b.number) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => a.name.as_bytes().cmp(b.name.as_bytes()),
    }
}
/// The sql-migrate layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::SqlMigrate,
    name: "sql-migrate",
    load,
    detect: Detect::Marks {
        matches,
        paired: false,
    },
    history_tables: &[],
    marks: ("sql-migrate", &["-- +migrate"]),
    placeholders: false,
};

/// Reads `dir` as a sql-migrate migrations folder.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let mut files = Vec::new();
    for path in list_migrations(dir, Want::File, is_sql_name)? {
        if !is_sql_name(&path) {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            return Err(invalid(
                &path,
                "the file name is not UTF-8; migproof reads migration names as text".to_owned(),
            ));
        };
        let number = match number_prefix(&name) {
            None => None,
            Some(digits) => Some(digits.parse::<i64>().map_err(|_| {
                invalid(
                    &path,
                    format!(
                        "the name starts with {digits}, a number too large for 64 bits; \
                         sql-migrate panics on it (\"Could not parse ... into int64\")"
                    ),
                )
            })?),
        };
        files.push(File { path, name, number });
    }
    files.sort_by(order);
    let mut notes = Vec::new();
    let mut by_number: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for file in &files {
        if let Some(n) = file.number {
            by_number.entry(n).or_default().push(&file.name);
        }
    }
    for (n, names) in by_number.iter().filter(|(_, names)| names.len() > 1) {
        notes.push(format!(
            "{} all start with number {n}: sql-migrate runs each of them, in file-name order, \
             but its `-version {n}` targets cannot tell them apart",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut migrations = Vec::new();
    for file in &files {
        let text = read_text(&file.path)?;
        if starts_with_bom(&file.path)? {
            return Err(invalid(
                &file.path,
                "starts with a UTF-8 byte order mark, which sql-migrate does not skip: it hides \
                 the command on the first line, and sql-migrate ignores the statements it \
                 heads without a word; save the file without the mark"
                    .to_owned(),
            ));
        }
        let parsed = parse(&text).map_err(|e| {
            let place = e.line.map(|n| format!("line {n}: ")).unwrap_or_default();
            invalid(&file.path, format!("{place}{}", e.message))
        })?;
        for (line, option) in &parsed.odd_options {
            notes.push(format!(
                "`{}` line {line}: sql-migrate knows only the option `notransaction` (in lower \
                 case) and ignores `{option}`, so this direction runs in a transaction",
                file.path.display()
            ));
        }
        let script = |transactional: bool, chunks: Vec<Chunk>| Script {
            path: file.path.clone(),
            text: text.clone(),
            blocks: vec![Block {
                transactional,
                chunks,
            }],
            command: None,
        };
        let stem = file.name.strip_suffix(".sql").unwrap_or(&file.name);
        migrations.push(Migration {
            version: if stem.is_empty() { &file.name } else { stem }.to_owned(),
            description: String::new(),
            up: script(parsed.up_transactional, parsed.up),
            down: Some(script(parsed.down_transactional, parsed.down)),
        });
    }
    if migrations.is_empty() {
        let hint = " (sql-migrate migrations are `.sql` files with `-- +migrate Up` and \
                    `-- +migrate Down` sections)"
            .to_owned();
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint,
        });
    }
    let mut set = MigrationSet::new(Format::SqlMigrate, dir, migrations);
    set.notes = notes;
    Ok(set)
}

fn invalid(path: &Path, message: String) -> SourceError {
    SourceError::Invalid {
        path: path.to_owned(),
        message,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// What sql-migrate sends for a file.
#[derive(Debug, Default)]
struct Parsed {
    up: Vec<Chunk>,
    down: Vec<Chunk>,
    up_transactional: bool,
    down_transactional: bool,
    /// Options of `Up`/`Down` commands sql-migrate ignores, with their line.
    odd_options: Vec<(usize, String)>,
}

#[derive(Debug)]
struct ParseError {
    line: Option<usize>,
    message: String,
}

impl ParseError {
    fn on(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line: Some(line),
            message: message.into(),
        }
    }
}

/// Refuses a line that looks like a command (`--`, spaces, `+migrate`, in any case, after any
/// indentation) unless sql-migrate reads it as one of its commands.
fn check_command(line: &Line) -> Result<(), ParseError> {
    let trimmed = line.text.trim_start();
    let looks_like = trimmed.strip_prefix("--").is_some_and(|rest| {
        rest.trim_start()
            .get(.."+migrate".len())
            .is_some_and(|word| word.eq_ignore_ascii_case("+migrate"))
    });
    let read = line
        .text
        .strip_prefix(COMMAND)
        .and_then(|rest| rest.split_whitespace().next())
        .is_some_and(|command| COMMANDS.contains(&command));
    if looks_like && !read {
        return Err(ParseError::on(
            line.number,
            format!(
                "`{}` is not a command sql-migrate reads: it wants `-- +migrate ` followed by \
                 `Up`, `Down`, `StatementBegin` or `StatementEnd` (case-sensitive) at the very \
                 start of the line; it ignores this line, so the statements around it would run in the \
                 wrong direction or not at all",
                trimmed.trim_end()
            ),
        ));
    }
    Ok(())
}

fn no_terminator(line: usize) -> ParseError {
    ParseError::on(
        line,
        "the statement starting here does not end with `;` at the end of a line (or with \
         `-- +migrate StatementEnd`) before the next section or the end of the file, and \
         sql-migrate fails the file on it",
    )
}

/// The first non-blank line of an unsent statement, if there is one.
fn unfinished(buf: &[Line]) -> Option<usize> {
    buf.iter()
        .find(|l| !l.text.trim().is_empty())
        .map(|l| l.number)
}

/// The query sql-migrate sends for the buffered lines: each line and a `\n`, less one
/// trailing `\n`, then ` `, then `;`. The chunk's offset puts its first non-blank character on
/// that character in the file, so server error positions map to the file (exactly when the
/// statement's lines are contiguous in an LF file).
fn statement(buf: &[Line]) -> Option<Chunk> {
    let mut joined = String::new();
    for line in buf {
        joined.push_str(line.text);
        joined.push('\n');
    }
    let sql = joined.strip_suffix('\n').unwrap_or(&joined);
    let sql = sql.strip_suffix(' ').unwrap_or(sql);
    let sql = sql.strip_suffix(';').unwrap_or(sql);
    if sql.trim().is_empty() {
        return None;
    }
    let first = buf.iter().find(|l| !l.text.trim().is_empty())?;
    let in_line = first.text.len() - first.text.trim_start().len();
    let in_sql = sql.len() - sql.trim_start().len();
    Some(Chunk {
        offset: (first.offset + in_line).saturating_sub(in_sql),
        sql: sql.to_owned(),
    })
}

/// sql-migrate's `sqlparse.ParseMigration`, line by line as it goes.
fn parse(text: &str) -> Result<Parsed, ParseError> {
    let lines = scan_lines(text, MAX_LINE).map_err(|n| {
        ParseError::on(
            n,
            "is longer than 1 MiB, the longest line sql-migrate reads",
        )
    })?;
    let mut parsed = Parsed {
        up_transactional: true,
        down_transactional: true,
        ..Parsed::default()
    };
    let mut direction = None;
    let mut in_block = false;
    let mut block_ended = false;
    let mut begin_line = 0;
    let mut buf: Vec<Line> = Vec::new();
    for line in lines {
        check_command(&line)?;
        if line.text.starts_with("-- ") && !line.text.starts_with("-- +") {
            continue;
        }
        if let Some(rest) = line.text.strip_prefix(COMMAND) {
            let mut fields = rest.split_whitespace();
            match fields.next() {
                Some(command @ ("Up" | "Down")) => {
                    if let Some(first) = unfinished(&buf) {
                        return Err(no_terminator(first));
                    }
                    let up = command == "Up";
                    direction = Some(if up { Direction::Up } else { Direction::Down });
                    for option in fields {
                        if option != "notransaction" {
                            parsed.odd_options.push((line.number, option.to_owned()));
                        } else if up {
                            parsed.up_transactional = false;
                        } else {
                            parsed.down_transactional = false;
                        }
                    }
                }
                Some("StatementBegin") if direction.is_some() => {
                    in_block = true;
                    begin_line = line.number;
                }
                Some("StatementEnd") if direction.is_some() => {
                    block_ended = in_block;
                    in_block = false;
                }
                // Before the first section, and unknown commands (refused above): ignored.
                _ => {}
            }
        }
        let Some(direction) = direction else {
            continue;
        };
        if !line.text.starts_with("-- +") {
            buf.push(line);
        }
        if (!in_block && ends_with_semicolon(line.text)) || block_ended {
            block_ended = false;
            let chunk = statement(&buf);
            match direction {
                Direction::Up => parsed.up.extend(chunk),
                Direction::Down => parsed.down.extend(chunk),
            }
            buf.clear();
        }
    }
    if in_block {
        return Err(ParseError::on(
            begin_line,
            "`-- +migrate StatementBegin` has no `-- +migrate StatementEnd` after it, and \
             sql-migrate fails the file",
        ));
    }
    if direction.is_none() {
        return Err(ParseError {
            line: None,
            message: "has no `-- +migrate Up` or `-- +migrate Down` line, and sql-migrate fails \
                      the file (\"no Up/Down annotations found\")"
                .to_owned(),
        });
    }
    if let Some(first) = unfinished(&buf) {
        return Err(no_terminator(first));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::list_dir;
    use crate::source::testing::{folder, sqls};

    fn one(body: &str) -> Result<Migration, SourceError> {
        let dir = folder(&[("20240101000000_x.sql", body.as_bytes())]);
        load(dir.path()).map(|mut set| set.migrations.remove(0))
    }

    fn error(body: &str) -> String {
        one(body).unwrap_err().to_string()
    }

    #[test]
    fn splits_statements_and_strips_the_final_semicolon_as_sql_migrate_does() {
        let m = one("-- a comment, dropped\n\
             -- +migrate Up\n\
             CREATE TABLE a (id int);\n\
             \n\
             --no space: kept\n\
             INSERT INTO a VALUES (1); -- trailing\n\
             -- +migrate Down\n\
             DROP TABLE a;\n")
        .unwrap();
        assert_eq!(
            sqls(&m.up),
            [
                "CREATE TABLE a (id int)",
                "\n--no space: kept\nINSERT INTO a VALUES (1); -- trailing"
            ]
        );
        assert!(m.up.blocks[0].transactional);
        let second = &m.up.blocks[0].chunks[1];
        // The offset puts the statement's first character on its line in the file.
        assert_eq!(m.up.line_of(second.offset + 1), 5);
        assert_eq!(m.id(), "20240101000000_x");
        let down = m.down.unwrap();
        assert_eq!(sqls(&down), ["DROP TABLE a"]);
        assert_eq!(down.line_of(down.blocks[0].chunks[0].offset), 8);
    }

    #[test]
    fn statement_begin_end_keeps_semicolons_inside_one_statement() {
        let m = one("-- +migrate Up\n\
             -- +migrate StatementBegin\n\
             CREATE FUNCTION f() RETURNS int AS $$\n\
             BEGIN\n\
               RETURN 1;\n\
             END;\n\
             $$ LANGUAGE plpgsql;\n\
             -- +migrate StatementEnd\n\
             -- +migrate Down\n\
             DROP FUNCTION f();\n")
        .unwrap();
        let up = sqls(&m.up);
        assert_eq!(up.len(), 1);
        assert!(up[0].starts_with("CREATE FUNCTION"), "{}", up[0]);
        assert!(up[0].ends_with("$$ LANGUAGE plpgsql"), "{}", up[0]);
        assert!(up[0].contains("RETURN 1;\nEND;\n"), "{}", up[0]);
        assert_eq!(m.up.line_of(m.up.blocks[0].chunks[0].offset), 3);
    }

    #[test]
    fn notransaction_applies_to_its_own_direction() {
        let m = one("-- +migrate Up notransaction\n\
             CREATE INDEX CONCURRENTLY i ON t (c);\n\
             CREATE INDEX CONCURRENTLY j ON t (d);\n\
             -- +migrate Down\n\
             DROP INDEX i;\nDROP INDEX j;\n")
        .unwrap();
        assert!(!m.up.blocks[0].transactional);
        assert_eq!(m.up.blocks[0].chunks.len(), 2);
        assert!(m.down.unwrap().blocks[0].transactional);
    }

    #[test]
    fn an_unknown_option_runs_in_a_transaction_with_a_note() {
        let dir = folder(&[("1_a.sql", b"-- +migrate Up noTransaction\nSELECT 1;\n")]);
        let set = load(dir.path()).unwrap();
        assert!(set.migrations[0].up.blocks[0].transactional);
        assert!(set.notes[0].contains("noTransaction"), "{:?}", set.notes);
    }

    #[test]
    fn sections_may_alternate_and_a_missing_down_does_nothing() {
        let m = one("-- +migrate Up\nSELECT 1;\n-- +migrate Down\nSELECT 2;\n\
                     -- +migrate Up\nSELECT 3;\n")
        .unwrap();
        assert_eq!(sqls(&m.up), ["SELECT 1", "SELECT 3"]);
        let m = one("-- +migrate Up\nCREATE TABLE a ();\n").unwrap();
        let down = m.down.unwrap();
        assert!(down.blocks[0].chunks.is_empty() && down.blocks[0].transactional);
    }

    #[test]
    fn lines_before_the_first_section_are_ignored() {
        let m = one("SELECT 0;\n-- +migrate Up\nSELECT 1;\n").unwrap();
        assert_eq!(sqls(&m.up), ["SELECT 1"]);
    }

    #[test]
    fn misspelt_commands_are_refused_naming_the_line() {
        for (body, line) in [
            (
                "-- +migrate Up\nSELECT 1;\n-- +migrate down\nSELECT 2;\n",
                3,
            ),
            ("--+migrate Up\nSELECT 1;\n", 1),
            ("--  +migrate Up\nSELECT 1;\n", 1),
            ("-- +migrate Up\n  -- +migrate StatementBegin\n", 2),
            ("-- +migrate Upgrade\n", 1),
            ("-- +migrate\n", 1),
            ("-- +migrate\tUp\n", 1),
        ] {
            let err = error(body);
            assert!(
                err.contains(&format!("line {line}:")) && err.contains("not a command"),
                "{body:?}: {err}"
            );
        }
    }

    #[test]
    fn structural_errors_name_the_line() {
        let err = error("SELECT 1;\n");
        assert!(err.contains("no `-- +migrate Up`"), "{err}");
        let err = error("-- +migrate Up\nCREATE TABLE a (\n  id int\n)\n-- +migrate Down\n");
        assert!(
            err.contains("line 2") && err.contains("does not end"),
            "{err}"
        );
        let err = error("-- +migrate Up\nSELECT 1\n");
        assert!(err.contains("line 2"), "{err}");
        let err = error("-- +migrate Up\n-- +migrate StatementBegin\nSELECT 1;\n");
        assert!(
            err.contains("line 2") && err.contains("StatementEnd"),
            "{err}"
        );
        // A comment after the last statement is not SQL left over.
        assert!(one("-- +migrate Up\nSELECT 1;\n-- +migrate Down\n-- nothing to do\n").is_ok());
    }

    #[test]
    fn orders_by_number_then_by_name_and_keeps_same_numbers_with_a_note() {
        let body: &[u8] = b"-- +migrate Up\nSELECT 1;\n";
        let dir = folder(&[
            ("10_c.sql", body),
            ("9_b.sql", body),
            ("9_a.sql", body),
            ("init.sql", body),
            ("Z.sql", body),
            ("README.md", b"skipped"),
        ]);
        let set = load(dir.path()).unwrap();
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["9_a", "9_b", "10_c", "Z", "init"]);
        assert!(
            set.notes[0].contains("`9_a.sql`, `9_b.sql`"),
            "{:?}",
            set.notes
        );
        let dir = folder(&[("99999999999999999999_a.sql", body)]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn crlf_lines_are_read_and_a_bom_is_refused() {
        let m = one("-- +migrate Up\r\nSELECT 1;\r\n-- +migrate Down\r\nSELECT 2;\r\n").unwrap();
        assert_eq!(sqls(&m.up), ["SELECT 1"]);
        let dir = folder(&[("1_a.sql", b"\xef\xbb\xbf-- +migrate Up\nSELECT 1;\n")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("byte order mark"), "{err}");
    }

    #[test]
    fn matches_needs_the_up_command() {
        let dir = folder(&[("1_a.sql", b"create table a();")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[("init.sql", b"-- +migrate Up\ncreate table a();\n")]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
    }

    #[test]
    fn no_panic_on_odd_input() {
        for body in [
            "",
            "--",
            "-- +migrate ",
            "-- +migrate Up",
            "-- +migrate Up\n;",
            "-- +migrate Up\n-- +migrate StatementEnd\n",
            "-- +migrate StatementBegin\n-- +migrate Up\n",
            "-- +\u{e9}\n",
            "\n\n\r\n",
        ] {
            let _ = one(body);
        }
    }
}

//! The goose layout: one file per migration, `<VERSION>_<NAME>.sql`, holding a `-- +goose Up`
//! section and usually a `-- +goose Down` section, read and sent the way goose 3
//! (pressly/goose: `internal/sqlparser/parser.go`, `migrate.go`, `migration_sql.go`) does it.
//!
//! What goose does, and so what this reader describes:
//! - Files: goose globs `*.sql` and `*.go` in the folder itself, not in sub-folders. The
//!   version is the part of the name before the first `_`, read as a 64-bit integer that must
//!   be at least 1 (`NumericComponent`): `00001` and `1` are one version, and two files of one
//!   version are refused. Migrations run in ascending numeric version. A `.sql` file without
//!   such a version (`schema.sql`) fails the `goose` command ("could not parse SQL migration
//!   file") while the library's `Provider` skips it; migproof skips it with a note. A
//!   `<VERSION>_<NAME>.go` file (not `_test.go`) is a Go migration, which only the project's
//!   own goose binary can run: refused, saying so.
//! - Lines are cut as Go's `bufio.Scanner` cuts them: a `\r` before the `\n` is dropped, and a
//!   line longer than 4 MiB fails the file. A line whose trimmed text starts with `--` and holds
//!   `+goose` is an annotation: goose deletes every `--` and the first `+goose` and compares the
//!   rest, ignoring case, with `Up`, `Down`, `StatementBegin`, `StatementEnd`, `NO TRANSACTION`,
//!   `ENVSUB ON` and `ENVSUB OFF`. Anything else, an indented annotation or a second `+goose` on
//!   the line fails the file.
//! - `-- +goose Up` comes first (only blank lines, comments and `NO TRANSACTION`/`ENVSUB` may
//!   precede it) and once; `-- +goose Down` at most once, after it. A file without a Down rolls
//!   back by running no statement, which goose reports as success ("EMPTY"): it is read as a
//!   down that changes nothing, never as a missing down.
//! - Statements: outside `StatementBegin`/`StatementEnd`, a statement ends at the line whose last
//!   word before any word starting with `--` ends with `;` (a `;` mid-line is not special, and
//!   one ending a line inside a string or a dollar-quoted body ends the statement all the
//!   same). Blank lines and comments before a statement are dropped, those inside it are kept;
//!   annotation lines are never sent; each statement is trimmed and sent with `\n` line ends.
//!   Between `StatementBegin` and `StatementEnd` everything is one statement. SQL left without
//!   its `;` before `-- +goose Down` or at the end of the file fails it. After an empty
//!   `StatementBegin`/`StatementEnd` block, goose drops the next SQL line and sends an empty
//!   statement in its place: migproof does the same, with a note.
//! - goose parses a file once per direction, when it runs it, so an error in the down part
//!   only shows when rolling back; migproof refuses the file either way, saying which.
//! - Sending: each statement is its own query (`ExecContext`), all of one direction inside one
//!   transaction; `-- +goose NO TRANSACTION` anywhere in the file runs both directions outside
//!   a transaction, each statement committing on its own.
//! - `-- +goose ENVSUB ON` makes goose replace environment variables (`$VAR`, `${VAR}`, and `$$`
//!   by `$`) in the SQL lines after it, up to `ENVSUB OFF`. migproof does not, so a `$` in such
//!   a line is refused naming the line; a line without one is the same either way.
//! - goose does not skip a UTF-8 byte order mark: it reads it as SQL before `-- +goose Up` and
//!   fails the file, so migproof refuses it too.
//!
//! goose records versions in `goose_db_version`; migproof applies the migrations itself and
//! does not create that table.

use super::{Detect, Layout};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{
    list_migrations, read_text, Block, Chunk, Format, Migration, MigrationSet, Script, SourceError,
    Want,
};

/// goose's scanner buffer: the longest line it reads.
const MAX_LINE: usize = 4 * 1024 * 1024;

/// One line of a file, as Go's `bufio.ScanLines` returns it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Line<'a> {
    /// 1-based.
    pub number: usize,
    /// Byte offset of the line's first byte in the file's text.
    pub offset: usize,
    /// The line without its `\n` and the `\r` before it.
    pub text: &'a str,
}

/// The lines of `text` as Go's `bufio.Scanner` with `ScanLines` returns them (no empty line
/// after a final `\n`); `Err` holds the number of the first line longer than `max` bytes, on
/// which the scanner fails ("token too long"). sql-migrate reads its files the same way.
pub(super) fn scan_lines(text: &str, max: usize) -> Result<Vec<Line<'_>>, usize> {
    let mut lines = Vec::new();
    let mut offset = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        if raw.len() > max {
            return Err(i + 1);
        }
        let body = raw.strip_suffix('\n').unwrap_or(raw);
        let body = body.strip_suffix('\r').unwrap_or(body);
        lines.push(Line {
            number: i + 1,
            offset,
            text: body,
        });
        offset += raw.len();
    }
    Ok(lines)
}

/// goose's (and sql-migrate's) `endsWithSemicolon`: the last whitespace-separated word before
/// any word starting with `--` ends with `;`.
pub(super) fn ends_with_semicolon(line: &str) -> bool {
    let mut last = "";
    for word in line.split_whitespace() {
        if word.starts_with("--") {
            break;
        }
        last = word;
    }
    last.ends_with(';')
}

/// True when the file at `path` starts with a UTF-8 byte order mark, which Go migrators read
/// as text ([`read_text`] removes it).
pub(super) fn starts_with_bom(path: &Path) -> Result<bool, SourceError> {
    let io = |source| SourceError::Io {
        path: path.to_owned(),
        source,
    };
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(3).read_to_end(&mut head))
        .map_err(io)?;
    Ok(head == b"\xef\xbb\xbf")
}

/// What a file name is to goose.
enum Entry {
    /// A SQL migration.
    Sql(Name),
    /// A Go migration, `<VERSION>_<NAME>.go`.
    Go,
    /// A `.sql` file goose cannot take a version from, and why.
    Unversioned(&'static str),
    /// Anything else, including Go files without a version (helpers) and `_test.go` files.
    Other,
}

struct Name {
    version: i64,
    version_text: String,
    description: String,
}

/// goose's `NumericComponent`: the name before the first `_` is an integer of at least 1.
fn classify(path: &Path) -> Entry {
    let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
        return Entry::Other;
    };
    let sql = file.ends_with(".sql");
    if !(sql || file.ends_with(".go")) || file.ends_with("_test.go") {
        return Entry::Other;
    }
    let version = match file.split_once('_') {
        None => Err("its name has no `_` after the version"),
        // Go's `strconv.ParseInt(s, 10, 64)`, which Rust's parse matches (a sign is allowed).
        Some((prefix, _)) => match prefix.parse::<i64>() {
            Err(_) => Err("its name does not start with a version number and `_`"),
            Ok(n) if n < 1 => Err("its version is not greater than zero"),
            Ok(n) => Ok((n, prefix)),
        },
    };
    match (version, sql) {
        (Ok((version, prefix)), true) => {
            let rest = &file[prefix.len() + 1..];
            Entry::Sql(Name {
                version,
                version_text: prefix.to_owned(),
                description: rest.strip_suffix(".sql").unwrap_or(rest).to_owned(),
            })
        }
        (Ok(_), false) => Entry::Go,
        (Err(why), true) => Entry::Unversioned(why),
        (Err(_), false) => Entry::Other,
    }
}

/// True when a `.sql` file named like a goose migration holds a `-- +goose Up` annotation.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries.iter().any(|p| {
        p.is_file()
            && matches!(classify(p), Entry::Sql(_))
            && read_text(p).is_ok_and(|text| {
                text.lines()
                    .any(|l| is_annotation(l) && annotation(l).is_ok_and(|a| a == Annotation::Up))
            })
    })
}
/// The goose layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Goose,
    name: "goose",
    load,
    detect: Detect::Marks {
        matches,
        paired: false,
    },
    history_tables: &[],
    marks: ("goose", &["-- +goose"]),
    placeholders: false,
};

/// Reads `dir` as a goose migrations folder.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let named = |p: &Path| matches!(classify(p), Entry::Sql(_) | Entry::Go);
    let mut notes = Vec::new();
    let mut by_version: BTreeMap<i64, (PathBuf, Name)> = BTreeMap::new();
    for path in list_migrations(dir, Want::File, named)? {
        match classify(&path) {
            Entry::Sql(name) => {
                if let Some((first, _)) = by_version.get(&name.version) {
                    return Err(SourceError::Duplicate {
                        version: name.version.to_string(),
                        first: first.clone(),
                        second: path,
                    });
                }
                by_version.insert(name.version, (path, name));
            }
            Entry::Go => return Err(go_migration(&path)),
            Entry::Unversioned(why) if path.is_file() => notes.push(format!(
                "`{}` is skipped: {why}, so it is not a goose migration (the `goose` command \
                 refuses the folder over it; goose's `Provider` skips it, as migproof does)",
                path.display()
            )),
            Entry::Unversioned(_) | Entry::Other => {}
        }
    }
    let mut migrations = Vec::new();
    for (path, name) in by_version.into_values() {
        let text = read_text(&path)?;
        if starts_with_bom(&path)? {
            return Err(invalid(
                &path,
                "starts with a UTF-8 byte order mark, which goose does not skip: it reads the \
                 mark as SQL before `-- +goose Up` and fails the file; save it without the mark"
                    .to_owned(),
            ));
        }
        let up = parse(&text, Direction::Up).map_err(|e| e.at(&path, Direction::Up))?;
        let down = parse(&text, Direction::Down).map_err(|e| e.at(&path, Direction::Down))?;
        for line in up.swallowed.iter().chain(&down.swallowed) {
            notes.push(format!(
                "`{}` line {line}: goose does not send this line: it follows an empty \
                 `-- +goose StatementBegin`/`StatementEnd` block, and goose sends an empty \
                 statement in its place; migproof does the same (remove the empty block)",
                path.display()
            ));
        }
        let script = |parsed: Parsed| Script {
            path: path.clone(),
            text: text.clone(),
            blocks: vec![Block {
                transactional: parsed.transactional,
                chunks: parsed.statements,
            }],
            command: None,
        };
        migrations.push(Migration {
            version: name.version_text,
            description: name.description,
            up: script(up),
            down: Some(script(down)),
        });
    }
    if migrations.is_empty() {
        let hint = " (goose migrations are `<VERSION>_<NAME>.sql` files starting with \
                    `-- +goose Up`)"
            .to_owned();
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint,
        });
    }
    let mut set = MigrationSet::new(Format::Goose, dir, migrations);
    set.notes = notes;
    Ok(set)
}

fn go_migration(path: &Path) -> SourceError {
    invalid(
        path,
        "is a goose Go migration; migproof runs SQL and cannot build the goose binary that \
         registers it: write its SQL to a `.sql` migration of the same version, or run the \
         project's own goose binary through a `[command]` migproof.toml (see the README)"
            .to_owned(),
    )
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

/// Where goose's parser stands (its `parserState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Up,
    BeginUp,
    EndUp,
    Down,
    BeginDown,
    EndDown,
}

impl State {
    fn direction(self) -> Option<Direction> {
        match self {
            State::Start => None,
            State::Up | State::BeginUp | State::EndUp => Some(Direction::Up),
            State::Down | State::BeginDown | State::EndDown => Some(Direction::Down),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Annotation {
    Up,
    Down,
    StatementBegin,
    StatementEnd,
    NoTransaction,
    EnvsubOn,
    EnvsubOff,
}

const ANNOTATIONS: &[(&str, Annotation)] = &[
    ("Up", Annotation::Up),
    ("Down", Annotation::Down),
    ("StatementBegin", Annotation::StatementBegin),
    ("StatementEnd", Annotation::StatementEnd),
    ("NO TRANSACTION", Annotation::NoTransaction),
    ("ENVSUB ON", Annotation::EnvsubOn),
    ("ENVSUB OFF", Annotation::EnvsubOff),
];

/// True when goose reads `line` as an annotation (and fails on it if it is not one).
fn is_annotation(line: &str) -> bool {
    line.trim().starts_with("--") && line.contains("+goose")
}

/// goose's `extractAnnotation`.
fn annotation(line: &str) -> Result<Annotation, String> {
    let shown = line.trim();
    if line.starts_with([' ', '\t']) {
        return Err(format!(
            "`{shown}` is indented, and goose refuses an annotation that does not start its line"
        ));
    }
    let command = line.replace("--", "").replacen("+goose", "", 1);
    if command.contains("+goose") {
        return Err(format!(
            "`{shown}` holds `+goose` twice, and goose refuses it"
        ));
    }
    let command = command.trim();
    if command.is_empty() {
        return Err(format!(
            "`{shown}` is an empty goose annotation, and goose refuses it"
        ));
    }
    ANNOTATIONS
        .iter()
        .find(|(name, _)| equal_fold(command, name))
        .map(|(_, a)| *a)
        .ok_or_else(|| {
            format!(
                "`{shown}` is not an annotation goose knows (`Up`, `Down`, `StatementBegin`, \
                 `StatementEnd`, `NO TRANSACTION`, `ENVSUB ON`, `ENVSUB OFF`), and goose \
                 refuses the file; a comment that mentions `+goose` counts as an annotation"
            )
        })
}

/// Go's `strings.EqualFold` against an ASCII `name`: besides ASCII case, Unicode simple case
/// folding also matches the Kelvin sign with `k` and the long s with `s`.
fn equal_fold(text: &str, name: &str) -> bool {
    let mut text = text.chars();
    let mut name = name.chars();
    loop {
        match (text.next(), name.next()) {
            (None, None) => return true,
            (Some(t), Some(n)) => {
                let same = t.eq_ignore_ascii_case(&n)
                    || (n.eq_ignore_ascii_case(&'k') && t == '\u{212A}')
                    || (n.eq_ignore_ascii_case(&'s') && t == '\u{17F}');
                if !same {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// What goose sends for one direction of a file.
#[derive(Debug)]
struct Parsed {
    statements: Vec<Chunk>,
    transactional: bool,
    /// SQL lines goose drops (the line after an empty `StatementBegin`/`StatementEnd` block).
    swallowed: Vec<usize>,
}

/// Why goose fails a file, with the line when there is one.
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

    fn at(self, path: &Path, direction: Direction) -> SourceError {
        let place = self.line.map(|n| format!("line {n}: ")).unwrap_or_default();
        let when = match direction {
            Direction::Up => "",
            Direction::Down => {
                "; goose reads a file's down part only when rolling back, so `goose up` runs \
                 this file and `goose down` fails on it"
            }
        };
        invalid(path, format!("{place}{}{when}", self.message))
    }
}

/// The first non-blank line of an unsent statement, if there is one.
fn unfinished(buf: &[Line]) -> Option<usize> {
    buf.iter()
        .find(|l| !l.text.trim().is_empty())
        .map(|l| l.number)
}

fn missing_semicolon(line: usize) -> ParseError {
    ParseError::on(
        line,
        "the statement starting here never ends with `;` at the end of a line, so goose \
         fails the file (\"unfinished SQL query ... missing semicolon?\"); end it with `;`, \
         or wrap it in `-- +goose StatementBegin` / `-- +goose StatementEnd`",
    )
}

/// The statement goose sends for the buffered lines: joined with `\n` and trimmed. The chunk
/// starts at its first non-blank character, so a server error position maps to the file
/// (exactly for LF files; CRLF files lose one byte a line, since goose drops the `\r`).
fn statement(buf: &[Line]) -> Option<Chunk> {
    let first = buf.iter().find(|l| !l.text.trim().is_empty())?;
    let mut sql = String::new();
    for line in buf {
        sql.push_str(line.text);
        sql.push('\n');
    }
    let lead = first.text.len() - first.text.trim_start().len();
    Some(Chunk {
        offset: first.offset + lead,
        sql: sql.trim().to_owned(),
    })
}

/// goose's `ParseSQLMigration` for one direction, line by line as goose goes.
fn parse(text: &str, want: Direction) -> Result<Parsed, ParseError> {
    let lines = scan_lines(text, MAX_LINE)
        .map_err(|n| ParseError::on(n, "is longer than 4 MiB, the longest line goose reads"))?;
    let mut state = State::Start;
    let mut parsed = Parsed {
        statements: Vec::new(),
        transactional: true,
        swallowed: Vec::new(),
    };
    let mut envsub = false;
    let mut begin_line = 0;
    let mut buf: Vec<Line> = Vec::new();
    for line in lines {
        if state == State::Start && line.text.trim().is_empty() {
            continue;
        }
        let mut end_marker = false;
        if is_annotation(line.text) {
            let found = annotation(line.text).map_err(|m| ParseError::on(line.number, m))?;
            match found {
                Annotation::Up => {
                    if state != State::Start {
                        return Err(ParseError::on(
                            line.number,
                            "a second `-- +goose Up`; goose allows one per file",
                        ));
                    }
                    state = State::Up;
                    continue;
                }
                Annotation::Down => {
                    match state {
                        State::Up | State::EndUp => {
                            if let Some(first) = unfinished(&buf) {
                                return Err(missing_semicolon(first));
                            }
                            state = State::Down;
                        }
                        State::Start => {
                            return Err(ParseError::on(
                                line.number,
                                "`-- +goose Down` before `-- +goose Up`; goose requires the Up \
                                 section first",
                            ));
                        }
                        State::BeginUp | State::BeginDown => {
                            return Err(ParseError::on(
                                line.number,
                                format!(
                                    "`-- +goose Down` inside the `StatementBegin` block opened \
                                     at line {begin_line}; close it with \
                                     `-- +goose StatementEnd` first"
                                ),
                            ));
                        }
                        State::Down | State::EndDown => {
                            return Err(ParseError::on(
                                line.number,
                                "a second `-- +goose Down`; goose allows one per file",
                            ));
                        }
                    }
                    continue;
                }
                Annotation::StatementBegin => {
                    state = match state {
                        State::Up | State::EndUp => State::BeginUp,
                        State::Down | State::EndDown => State::BeginDown,
                        State::Start => {
                            return Err(ParseError::on(
                                line.number,
                                "`-- +goose StatementBegin` before `-- +goose Up`; goose \
                                 refuses it",
                            ));
                        }
                        State::BeginUp | State::BeginDown => {
                            return Err(ParseError::on(
                                line.number,
                                format!(
                                    "`-- +goose StatementBegin` inside the block opened at line \
                                     {begin_line}; goose does not nest them"
                                ),
                            ));
                        }
                    };
                    begin_line = line.number;
                    continue;
                }
                Annotation::StatementEnd => {
                    state = match state {
                        State::BeginUp => State::EndUp,
                        State::BeginDown => State::EndDown,
                        _ => {
                            return Err(ParseError::on(
                                line.number,
                                "`-- +goose StatementEnd` without a `-- +goose StatementBegin` \
                                 before it; goose refuses it",
                            ));
                        }
                    };
                    // goose goes on with this line: it ends the block's statement below.
                    end_marker = true;
                }
                Annotation::NoTransaction => {
                    parsed.transactional = false;
                    continue;
                }
                Annotation::EnvsubOn => {
                    envsub = true;
                    continue;
                }
                Annotation::EnvsubOff => {
                    envsub = false;
                    continue;
                }
            }
        }
        // Comments and empty lines before a statement are not part of it.
        if buf.is_empty() && (line.text.trim().starts_with("--") || line.text.is_empty()) {
            continue;
        }
        if !matches!(state, State::EndUp | State::EndDown) {
            if envsub && line.text.contains('$') {
                return Err(ParseError::on(
                    line.number,
                    "holds `$` after `-- +goose ENVSUB ON`, where goose substitutes environment \
                     variables (and turns `$$` into `$`); migproof does not, so it cannot send \
                     what goose would: move the line out of the ENVSUB ON section, or write the \
                     values in",
                ));
            }
            buf.push(line);
        }
        let Some(direction) = state.direction() else {
            return Err(ParseError::on(
                line.number,
                "is SQL before `-- +goose Up`, and goose fails the file on it; only blank lines \
                 and comments may come first",
            ));
        };
        if direction != want {
            buf.clear();
            continue;
        }
        match state {
            State::Up | State::Down => {
                if ends_with_semicolon(line.text) {
                    parsed.statements.extend(statement(&buf));
                    buf.clear();
                }
            }
            State::EndUp | State::EndDown => {
                if !end_marker && !line.text.trim().is_empty() {
                    parsed.swallowed.push(line.number);
                }
                parsed.statements.extend(statement(&buf));
                buf.clear();
                state = match state {
                    State::EndUp => State::Up,
                    _ => State::Down,
                };
            }
            State::Start | State::BeginUp | State::BeginDown => {}
        }
    }
    match state {
        State::Start => {
            return Err(ParseError {
                line: None,
                message: "has no `-- +goose Up` annotation; goose requires one at the top of \
                          every SQL migration"
                    .to_owned(),
            });
        }
        State::BeginUp | State::BeginDown => {
            return Err(ParseError::on(
                begin_line,
                "`-- +goose StatementBegin` has no `-- +goose StatementEnd` after it, and goose \
                 fails the file",
            ));
        }
        _ => {}
    }
    if let Some(first) = unfinished(&buf) {
        return Err(missing_semicolon(first));
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
    fn splits_statements_at_line_end_semicolons_in_one_transaction() {
        let m = one("-- leading comment\n\
             -- +goose Up\n\
             CREATE TABLE a (id int); -- trailing comment\n\
             \n\
             -- about b\n\
             INSERT INTO a VALUES (1);SELECT 1\n\
             ;\n\
             -- +goose Down\n\
             DROP TABLE a;\n")
        .unwrap();
        assert_eq!(
            sqls(&m.up),
            [
                "CREATE TABLE a (id int); -- trailing comment",
                "INSERT INTO a VALUES (1);SELECT 1\n;"
            ]
        );
        assert!(m.up.blocks[0].transactional);
        assert_eq!(m.up.blocks.len(), 1);
        let down = m.down.unwrap();
        assert_eq!(sqls(&down), ["DROP TABLE a;"]);
        assert_eq!(down.line_of(down.blocks[0].chunks[0].offset), 9);
        assert_eq!(m.up.line_of(m.up.blocks[0].chunks[1].offset), 6);
        assert_eq!(
            (m.version.as_str(), m.description.as_str()),
            ("20240101000000", "x")
        );
    }

    #[test]
    fn statement_begin_end_keeps_semicolons_inside_one_statement() {
        let m = one("-- +goose Up\n\
             -- +goose StatementBegin\n\
             -- kept out: before the statement\n\
             CREATE FUNCTION f() RETURNS int AS $$\n\
             BEGIN\n\
               RETURN 1;\n\
             END;\n\
             $$ LANGUAGE plpgsql;\n\
             -- +goose StatementEnd\n\
             SELECT f();\n\
             -- +goose Down\n\
             -- +goose StatementBegin\n\
             DROP FUNCTION f();\n\
             -- +goose StatementEnd\n")
        .unwrap();
        let up = sqls(&m.up);
        assert_eq!(up.len(), 2);
        assert!(up[0].starts_with("CREATE FUNCTION") && up[0].ends_with("plpgsql;"));
        assert!(up[0].contains("RETURN 1;\nEND;\n"), "{}", up[0]);
        assert_eq!(up[1], "SELECT f();");
        assert_eq!(m.up.line_of(m.up.blocks[0].chunks[0].offset), 4);
        assert_eq!(sqls(&m.down.unwrap()), ["DROP FUNCTION f();"]);
    }

    #[test]
    fn no_transaction_runs_both_directions_statement_by_statement() {
        let m = one("-- +goose Up\n\
             CREATE INDEX CONCURRENTLY i ON t (c);\n\
             CREATE INDEX CONCURRENTLY j ON t (d);\n\
             -- +goose Down\n\
             DROP INDEX CONCURRENTLY i;\n\
             -- +goose NO TRANSACTION\n")
        .unwrap();
        assert!(!m.up.blocks[0].transactional);
        assert_eq!(m.up.blocks[0].chunks.len(), 2);
        assert!(!m.down.unwrap().blocks[0].transactional);
    }

    #[test]
    fn annotations_ignore_case_but_not_indentation() {
        let m = one("--+goose up\nSELECT 1;\n-- +goose DOWN\nSELECT 2;\n").unwrap();
        assert_eq!(sqls(&m.up), ["SELECT 1;"]);
        assert_eq!(sqls(&m.down.unwrap()), ["SELECT 2;"]);
        // Only `+goose` itself is case-sensitive: `-- +GOOSE Up` is a plain comment.
        let err = error("-- +GOOSE Up\nSELECT 1;\n");
        assert!(
            err.contains("line 2") && err.contains("before `-- +goose Up`"),
            "{err}"
        );
        let err = error("  -- +goose Up\nSELECT 1;\n");
        assert!(err.contains("line 1") && err.contains("indented"), "{err}");
        let err = error("-- +goose Up\nSELECT 1;\n-- see +goose docs\n");
        assert!(
            err.contains("line 3") && err.contains("not an annotation"),
            "{err}"
        );
        let err = error("-- +goose Up -- +goose Down\n");
        assert!(err.contains("twice"), "{err}");
        let err = error("-- +goose\n");
        assert!(err.contains("empty goose annotation"), "{err}");
    }

    #[test]
    fn a_file_without_down_rolls_back_doing_nothing() {
        let m = one("-- +goose Up\nCREATE TABLE a (id int);\n").unwrap();
        let down = m.down.unwrap();
        assert_eq!(down.blocks.len(), 1);
        assert!(down.blocks[0].chunks.is_empty());
        assert!(down.blocks[0].transactional);
    }

    #[test]
    fn structural_errors_name_the_line() {
        let err = error("CREATE TABLE a ();\n-- +goose Up\n");
        assert!(
            err.contains("line 1") && err.contains("before `-- +goose Up`"),
            "{err}"
        );
        let err = error("SELECT 1;\n");
        assert!(err.contains("line 1"), "{err}");
        let err = error("-- only a comment\n");
        assert!(err.contains("no `-- +goose Up`"), "{err}");
        let err = error("-- +goose Up\n-- +goose Up\n");
        assert!(err.contains("line 2") && err.contains("second"), "{err}");
        let err = error("-- +goose Down\n");
        assert!(
            err.contains("line 1") && err.contains("before `-- +goose Up`"),
            "{err}"
        );
        let err = error("-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n");
        assert!(
            err.contains("line 2") && err.contains("no `-- +goose StatementEnd`"),
            "{err}"
        );
        let err = error("-- +goose Up\nSELECT 1;\n-- +goose StatementEnd\n");
        assert!(err.contains("line 3"), "{err}");
        let err = error("-- +goose Up\nCREATE TABLE a (\n  id int\n)\n-- +goose Down\n");
        assert!(
            err.contains("line 2") && err.contains("missing semicolon"),
            "{err}"
        );
        assert!(!err.contains("rolling back"), "{err}");
    }

    #[test]
    fn an_error_only_in_the_down_says_goose_fails_when_rolling_back() {
        let err = error("-- +goose Up\nSELECT 1;\n-- +goose Down\nDROP TABLE a\n");
        assert!(
            err.contains("line 4") && err.contains("`goose down` fails"),
            "{err}"
        );
    }

    #[test]
    fn envsub_is_refused_only_where_it_would_change_a_line() {
        let m = one("-- +goose ENVSUB ON\n-- +goose Up\nSELECT 1;\n-- +goose Down\n").unwrap();
        assert_eq!(sqls(&m.up), ["SELECT 1;"]);
        let err = error("-- +goose Up\n-- +goose ENVSUB ON\nCREATE SCHEMA ${SCHEMA};\n");
        assert!(err.contains("line 3") && err.contains("ENVSUB ON"), "{err}");
        let m = one("-- +goose Up\n-- +goose ENVSUB ON\n-- +goose ENVSUB OFF\n\
             -- +goose StatementBegin\nDO $$ BEGIN END $$;\n-- +goose StatementEnd\n")
        .unwrap();
        assert_eq!(sqls(&m.up), ["DO $$ BEGIN END $$;"]);
    }

    #[test]
    fn an_empty_statement_block_swallows_the_next_sql_line_with_a_note() {
        let dir = folder(&[(
            "1_a.sql",
            b"-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementEnd\n\
              SELECT 1;\nSELECT 2;\n",
        )]);
        let set = load(dir.path()).unwrap();
        assert_eq!(sqls(&set.migrations[0].up), ["SELECT 2;"]);
        assert!(set.notes[0].contains("line 4"), "{:?}", set.notes);
    }

    #[test]
    fn orders_numerically_and_refuses_duplicate_versions() {
        let body: &[u8] = b"-- +goose Up\nSELECT 1;\n";
        let dir = folder(&[
            ("10_c.sql", body),
            ("9_b.sql", body),
            ("00001_a.sql", body),
            ("README.md", b"skipped"),
            ("helpers.go", b"package migrations"),
            ("00002_x_test.go", b"package migrations"),
        ]);
        let set = load(dir.path()).unwrap();
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["00001_a", "9_b", "10_c"]);
        assert!(set.notes.is_empty(), "{:?}", set.notes);
        let dir = folder(&[("1_a.sql", body), ("01_b.sql", body)]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("duplicate migration version 1:"), "{err}");
    }

    #[test]
    fn unversioned_sql_is_skipped_with_a_note_and_go_migrations_are_refused() {
        let body: &[u8] = b"-- +goose Up\nSELECT 1;\n";
        let dir = folder(&[
            ("1_a.sql", body),
            ("schema.sql", b"x"),
            ("0_zero.sql", body),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.migrations.len(), 1);
        assert_eq!(set.notes.len(), 2, "{:?}", set.notes);
        assert!(set.notes.iter().any(|n| n.contains("schema.sql")));
        let dir = folder(&[("1_a.sql", body), ("2_b.go", b"package migrations")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("2_b.go") && err.contains("Go migration"),
            "{err}"
        );
    }

    #[test]
    fn crlf_lines_are_read_and_a_bom_is_refused() {
        let m = one("-- +goose Up\r\nSELECT 1;\r\n-- +goose Down\r\nSELECT 2;\r\n").unwrap();
        assert_eq!(sqls(&m.up), ["SELECT 1;"]);
        let dir = folder(&[("1_a.sql", b"\xef\xbb\xbf-- +goose Up\nSELECT 1;\n")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("byte order mark"), "{err}");
    }

    #[test]
    fn matches_needs_the_up_annotation_in_a_versioned_sql_file() {
        let dir = folder(&[("1_a.sql", b"create table a();")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[("schema.sql", b"-- +goose Up\n")]);
        assert!(!matches(&list_dir(dir.path()).unwrap()));
        let dir = folder(&[("1_a.sql", b"-- +goose Up\ncreate table a();\n")]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
    }

    #[test]
    fn no_panic_on_odd_input() {
        for body in [
            "",
            "--",
            "-- +goose",
            "-- +goose Up",
            "-- +goose Up\n-- +goose StatementEnd",
            "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementEnd",
            "-- +goose Up\n\u{212A}",
            "-- +goose \u{17F}tatementBegin",
            "\n\n\r\n",
            "-- +goose Up\n  \n-- c\nSELECT 1;",
        ] {
            let _ = one(body);
        }
    }
}

//! Liquibase formatted SQL: a file whose first line is `--liquibase formatted sql`, cut into
//! changesets by `--changeset author:id [attribute:value ...]` lines, read line by line as
//! Liquibase reads it. `--rollback` lines and `/* liquibase rollback ... */` blocks make the
//! rollback; `--comment`, `--precondition*`, `--validCheckSum`, `--property` and
//! `--ignoreLines` lines are not SQL; `--include file:` and `--includeAll path:` name further
//! changelogs.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::{runs_on_postgres, truthy, Changeset, Include, Item, Rollback, Splitting, Sql};
use crate::source::SourceError;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the patterns of this module are valid")
}

static FIRST_LINE: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^\s*--\s*liquibase\s*formatted"));
static CHANGESET: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?i)^\s*--\s*changeset\s+("[^"]+"|[^:]+):("[^"]+"|\S+)(.*)$"#));
/// Anything that looks meant as a changeset line; Liquibase refuses those it cannot read.
static CHANGESET_LIKE: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^\s*-{1,2}\s*changeset"));
static ROLLBACK: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^\s*--\s*rollback (.*)$"));
static ROLLBACK_ONE_DASH: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^\s*-\s*rollback\s"));
static ROLLBACK_BLOCK: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^\s*/\*\s*liquibase\s*rollback\s*$"));
static BLOCK_END: LazyLock<Regex> = LazyLock::new(|| regex(r"\*/\s*$"));
static PRECONDITION: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^\s*--\s*precondition"));
/// Liquibase takes `--comment: x` and `-- comment x` alike as a changeset's comment.
static COMMENT: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^\s*--\s*comments?:?(\s|$)"));
static META: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^\s*--\s*(validCheckSum|property\s)"));
static IGNORE_LINES: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^\s*--\s*ignoreLines:(\w+)"));
static INCLUDE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^\s*--\s*(include|includeAll)\s+(.*)$"));

/// True when the first non-blank line is Liquibase's header.
pub(super) fn is_formatted(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| FIRST_LINE.is_match(l))
}

/// One line of the file: its byte range without the line end.
struct Line<'a> {
    number: usize,
    start: usize,
    end: usize,
    text: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, raw) in text.split('\n').enumerate() {
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        out.push(Line {
            number: i + 1,
            start,
            end: start + content.len(),
            text: content,
        });
        start += raw.len() + 1;
    }
    out
}

/// `key:value` attributes of a changeset or include line, keys compared case-insensitively.
fn attribute<'a>(attributes: &'a str, key: &str) -> Option<&'a str> {
    attributes.split_whitespace().rev().find_map(|word| {
        let (k, v) = word.split_once(':')?;
        k.eq_ignore_ascii_case(key).then_some(v)
    })
}

fn unquote(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// A changeset being read.
struct Open {
    header: usize,
    start: usize,
    author: String,
    id: String,
    attributes: String,
    /// Byte ranges of the SQL lines.
    up: Vec<(usize, usize)>,
    /// Byte ranges of rollback SQL.
    rollback: Vec<(usize, usize)>,
    preconditions: bool,
}

pub(super) fn parse(
    path: &Path,
    text: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Item>, SourceError> {
    let invalid = |line: usize, message: String| SourceError::Invalid {
        path: path.to_owned(),
        message: format!("line {line}: {message}"),
    };
    let lines = lines(text);
    let mut items = Vec::new();
    let mut open: Option<Open> = None;
    let mut ignored_sql_line = None;
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        i += 1;
        let t = line.text;
        if let Some(caps) = IGNORE_LINES.captures(t) {
            let how = caps.get(1).map_or("", |m| m.as_str());
            if how.eq_ignore_ascii_case("start") {
                while let Some(skipped) = lines.get(i) {
                    i += 1;
                    let end = IGNORE_LINES.captures(skipped.text);
                    if end
                        .and_then(|c| c.get(1))
                        .is_some_and(|m| m.as_str().eq_ignore_ascii_case("end"))
                    {
                        break;
                    }
                }
            } else if let Ok(count) = how.parse::<usize>() {
                i = i.saturating_add(count);
            } else {
                return Err(invalid(
                    line.number,
                    format!("`--ignoreLines:{how}` is neither `start`, `end` nor a count"),
                ));
            }
            continue;
        }
        if let Some(caps) = INCLUDE.captures(t) {
            finish(path, text, open.take(), line.start, &mut items, notes)?;
            let all = caps
                .get(1)
                .is_some_and(|m| m.as_str().eq_ignore_ascii_case("includeAll"));
            let attributes = caps.get(2).map_or("", |m| m.as_str());
            let (name, required_key) = if all {
                ("path", "errorIfMissingOrEmpty")
            } else {
                ("file", "errorIfMissing")
            };
            let Some(target) = attribute(attributes, name) else {
                return Err(invalid(
                    line.number,
                    format!(
                        "expected `--{} {name}:<path>`",
                        caps.get(1).map_or("", |m| m.as_str())
                    ),
                ));
            };
            items.push(Item::Include(Include {
                line: line.number,
                target: unquote(target).to_owned(),
                all,
                relative: attribute(attributes, "relativeToChangelogFile").is_some_and(truthy),
                required: attribute(attributes, required_key).is_none_or(truthy),
            }));
            continue;
        }
        if let Some(caps) = CHANGESET.captures(t) {
            finish(path, text, open.take(), line.start, &mut items, notes)?;
            let author = unquote(caps.get(1).map_or("", |m| m.as_str()))
                .trim()
                .to_owned();
            let id = unquote(caps.get(2).map_or("", |m| m.as_str())).to_owned();
            if id.replace([':', ' '], "").is_empty() {
                return Err(invalid(line.number, "the changeset id is empty".to_owned()));
            }
            open = Some(Open {
                header: line.number,
                start: line.start,
                author,
                id,
                attributes: caps.get(3).map_or("", |m| m.as_str()).to_owned(),
                up: Vec::new(),
                rollback: Vec::new(),
                preconditions: false,
            });
            continue;
        }
        if CHANGESET_LIKE.is_match(t) {
            return Err(invalid(
                line.number,
                format!(
                    "malformed changeset line `{}`; expected `--changeset <author>:<id>`",
                    t.trim()
                ),
            ));
        }
        let Some(current) = open.as_mut() else {
            if COMMENT.is_match(t) {
                return Err(invalid(
                    line.number,
                    "a `--comment` line before the first changeset; Liquibase refuses it"
                        .to_owned(),
                ));
            }
            let sql = !t.trim().is_empty() && !t.trim_start().starts_with("--");
            if sql && ignored_sql_line.is_none() {
                ignored_sql_line = Some(line.number);
            }
            continue;
        };
        if let Some(caps) = ROLLBACK.captures(t) {
            if let Some(m) = caps.get(1) {
                current
                    .rollback
                    .push((line.start + m.start(), line.start + m.end()));
            }
        } else if ROLLBACK_ONE_DASH.is_match(t) {
            return Err(invalid(
                line.number,
                "malformed rollback line; expected `--rollback <sql>`".to_owned(),
            ));
        } else if ROLLBACK_BLOCK.is_match(t) {
            let opened = line.number;
            let mut closed = false;
            while let Some(inner) = lines.get(i) {
                i += 1;
                if let Some(m) = BLOCK_END.find(inner.text) {
                    current
                        .rollback
                        .push((inner.start, inner.start + m.start()));
                    closed = true;
                    break;
                }
                current.rollback.push((inner.start, inner.end));
            }
            if !closed {
                return Err(invalid(
                    opened,
                    "the `/* liquibase rollback` block is not closed with `*/`".to_owned(),
                ));
            }
        } else if PRECONDITION.is_match(t) {
            current.preconditions = true;
        } else if !COMMENT.is_match(t) && !META.is_match(t) {
            current.up.push((line.start, line.end));
        }
    }
    finish(path, text, open.take(), text.len(), &mut items, notes)?;
    if let Some(line) = ignored_sql_line {
        notes.push(format!(
            "`{}:{line}`: SQL before the first `--changeset` line is ignored by Liquibase, and \
             by migproof",
            path.display()
        ));
    }
    Ok(items)
}

/// `text[start..end]` with every byte outside `keep` blanked, line ends kept.
fn view(text: &str, start: usize, end: usize, keep: &[(usize, usize)]) -> String {
    let region = text.as_bytes().get(start..end).unwrap_or_default();
    let mut bytes: Vec<u8> = region
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b } else { b' ' })
        .collect();
    for &(from, to) in keep {
        let (Some(at), Some(until)) = (from.checked_sub(start), to.checked_sub(start)) else {
            continue;
        };
        if let (Some(target), Some(source)) =
            (bytes.get_mut(at..until), text.as_bytes().get(from..to))
        {
            target.copy_from_slice(source);
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Turns a changeset read up to byte `end` into an item, unless it does not run on
/// PostgreSQL.
fn finish(
    path: &Path,
    text: &str,
    open: Option<Open>,
    end: usize,
    items: &mut Vec<Item>,
    notes: &mut Vec<String>,
) -> Result<(), SourceError> {
    let Some(open) = open else { return Ok(()) };
    let attrs = open.attributes.as_str();
    let label = format!("changeset {}:{}", open.author, open.id);
    let skipped = attribute(attrs, "ignore").is_some_and(truthy)
        || attribute(attrs, "dbms").is_some_and(|d| !runs_on_postgres(d));
    if skipped {
        return Ok(());
    }
    let shown = text.get(open.start..end).unwrap_or_default().to_owned();
    let up = view(text, open.start, end, &open.up);
    if up.trim().is_empty() {
        return Err(SourceError::Invalid {
            path: path.to_owned(),
            message: format!("{label} at line {} has no SQL", open.header),
        });
    }
    let at = format!("`{}:{}` {label}", path.display(), open.header);
    if open.preconditions {
        notes.push(format!("{at}: preconditions are not evaluated"));
    }
    if let Some(tool) = attribute(attrs, "runWith").filter(|t| !t.eq_ignore_ascii_case("jdbc")) {
        notes.push(format!(
            "{at}: runs with `{tool}` in Liquibase; migproof sends it through the server"
        ));
    }
    if up.contains("${") {
        notes.push(format!(
            "{at}: changelog parameters (`${{...}}`) are not substituted"
        ));
    }
    let splitting = Splitting {
        split: attribute(attrs, "splitStatements").is_none_or(truthy),
        delimiter: attribute(attrs, "endDelimiter").map(str::to_owned),
    };
    let rollback_splitting = Splitting {
        split: attribute(attrs, "rollbackSplitStatements").is_none_or(truthy),
        delimiter: attribute(attrs, "rollbackEndDelimiter").map(str::to_owned),
    };
    let rollback_sent = view(text, open.start, end, &open.rollback);
    let rollback_text = rollback_sent
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let lowered = rollback_text.to_ascii_lowercase();
    let rollback = if lowered.is_empty()
        || lowered.starts_with("empty")
        || lowered.starts_with("not required")
    {
        Rollback::None
    } else if lowered.contains("changesetid") {
        let words = rollback_text.as_str();
        let id = attribute(words, "changeSetId");
        let author = attribute(words, "changeSetAuthor");
        match (id, author) {
            (Some(id), Some(author)) => Rollback::Refer {
                id: id.to_owned(),
                author: author.to_owned(),
                path: attribute(words, "changeSetPath").map(str::to_owned),
            },
            _ => {
                return Err(SourceError::Invalid {
                    path: path.to_owned(),
                    message: format!(
                        "{label} at line {}: a rollback naming a changeset needs both \
                         `changeSetId:` and `changeSetAuthor:`",
                        open.header
                    ),
                })
            }
        }
    } else {
        Rollback::Sql(vec![Sql {
            path: path.to_owned(),
            line: open.header,
            shown: shown.clone(),
            sent: rollback_sent,
            splitting: rollback_splitting,
        }])
    };
    items.push(Item::Changeset(Box::new(Changeset {
        file: path.to_owned(),
        line: open.header,
        author: open.author,
        id: open.id,
        transactional: attribute(attrs, "runInTransaction").is_none_or(truthy),
        up: vec![Sql {
            path: path.to_owned(),
            line: open.header,
            shown,
            sent: up,
            splitting,
        }],
        rollback,
    })));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{chunks, folder};
    use super::super::{load, Format};
    use crate::source::MigrationSet;

    fn read(body: &str) -> MigrationSet {
        let dir = folder(&[("changelog.sql", body)]);
        load(dir.path()).unwrap()
    }

    fn error(body: &str) -> String {
        let dir = folder(&[("changelog.sql", body)]);
        load(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn changesets_with_rollbacks() {
        let body = "--liquibase formatted sql\n\
                    \n\
                    --changeset alice:1\n\
                    --comment: the users\n\
                    create table users (id int);\n\
                    insert into users values (1);\n\
                    --rollback drop table users;\n\
                    \n\
                    --changeset bob:add-email runInTransaction:false\n\
                    create index concurrently users_id on users (id);\n\
                    --rollback drop index concurrently users_id;\n\
                    --rollback select 1;\n";
        let set = read(body);
        assert_eq!(set.format, Format::Liquibase);
        let m = &set.migrations;
        assert_eq!(
            (m[0].version.as_str(), m[0].description.as_str()),
            ("1", "alice")
        );
        assert_eq!(m[1].id(), "add-email_bob");
        assert_eq!(
            chunks(&m[0].up),
            [
                "create table users (id int)",
                "insert into users values (1)"
            ]
        );
        assert!(m[0].up.blocks[0].transactional);
        assert_eq!(chunks(m[0].down.as_ref().unwrap()), ["drop table users"]);
        assert!(!m[1].up.blocks[0].transactional);
        assert_eq!(
            chunks(m[1].down.as_ref().unwrap()),
            ["drop index concurrently users_id", "select 1"]
        );
        // Offsets point into the file's lines.
        let up = &m[0].up;
        let insert = &up.blocks[0].chunks[1];
        assert_eq!(up.line_of(insert.offset), 6);
        assert_eq!(
            &up.text[insert.offset..insert.offset + insert.sql.len()],
            insert.sql
        );
        let down = m[1].down.as_ref().unwrap();
        assert_eq!(down.line_of(down.blocks[0].chunks[1].offset), 12);
        assert!(set.notes.is_empty(), "{:?}", set.notes);
    }

    #[test]
    fn a_rollback_statement_may_span_rollback_lines() {
        let set = read(
            "--liquibase formatted sql\n--changeset a:1\nupdate t set x = 2;\n\
             --rollback update t\n--rollback set x = 1;\n",
        );
        let down = set.migrations[0].down.as_ref().unwrap();
        let chunk = &down.blocks[0].chunks[0];
        assert_eq!(
            chunk.sql.split_whitespace().collect::<Vec<_>>(),
            ["update", "t", "set", "x", "=", "1"]
        );
        assert_eq!(down.line_of(chunk.offset), 4);
        assert!(!chunk.sql.contains("--rollback"));
    }

    #[test]
    fn empty_and_not_required_rollbacks_mean_no_down() {
        let set = read(
            "--liquibase formatted sql\n--changeset a:1\nselect 1;\n--rollback empty\n\
             --changeset a:2\nselect 2;\n--rollback not required\n--changeset a:3\nselect 3;\n",
        );
        assert!(set.migrations.iter().all(|m| m.down.is_none()));
    }

    #[test]
    fn multi_line_rollback_block() {
        let set = read(
            "--liquibase formatted sql\n--changeset a:1\ncreate table t (x int);\n\
             /* liquibase rollback\n drop table t;\n select 'done';\n*/\n",
        );
        let down = set.migrations[0].down.as_ref().unwrap();
        assert_eq!(chunks(down), ["drop table t", "select 'done'"]);
        assert_eq!(chunks(&set.migrations[0].up), ["create table t (x int)"]);
        let err = error(
            "--liquibase formatted sql\n--changeset a:1\nselect 1;\n/* liquibase rollback\ndrop t;\n",
        );
        assert!(
            err.contains("line 4: the `/* liquibase rollback` block is not closed"),
            "{err}"
        );
    }

    #[test]
    fn rollback_naming_another_changeset_runs_its_sql() {
        let set = read(
            "--liquibase formatted sql\n--changeset a:drop\ndrop table if exists t;\n\
             --changeset a:create\ncreate table t (x int);\n\
             --rollback changeSetId:drop changeSetAuthor:a\n",
        );
        let down = set.migrations[1].down.as_ref().unwrap();
        assert_eq!(chunks(down), ["drop table if exists t"]);
    }

    #[test]
    fn split_statements_and_end_delimiter() {
        let set = read(
            "--liquibase formatted sql\n\
             --changeset a:1 splitStatements:false\n\
             create function f() returns int as $$ select 1; $$ language sql;\n\
             select f();\n\
             --changeset a:2 endDelimiter:GO\n\
             select 1; select 2\n\
             GO\n\
             select 3\n\
             --changeset a:3\n\
             select 1\n\
             /\n\
             select 2\n",
        );
        let m = &set.migrations;
        assert_eq!(
            chunks(&m[0].up),
            ["create function f() returns int as $$ select 1; $$ language sql;\nselect f();"]
        );
        assert_eq!(chunks(&m[1].up), ["select 1; select 2", "select 3"]);
        assert_eq!(chunks(&m[2].up), ["select 1", "select 2"]);
    }

    #[test]
    fn dollar_bodies_with_semicolons_are_noted_when_split() {
        let set = read(
            "--liquibase formatted sql\n--changeset a:1\n\
             create function f() returns int as $$ select 1; $$ language sql;\n",
        );
        assert_eq!(set.migrations[0].up.blocks[0].chunks.len(), 1);
        assert!(
            set.notes[0].contains("changelog.sql:2` changeset a:1"),
            "{:?}",
            set.notes
        );
        assert!(set.notes[0].contains("splitStatements:false"));
    }

    #[test]
    fn preconditions_are_noted_and_dbms_filters() {
        let set = read(
            "--liquibase formatted sql\n\
             --changeset a:1\n\
             --preconditions onFail:MARK_RAN\n\
             --precondition-sql-check expectedResult:0 select count(*) from t\n\
             select 1;\n\
             --changeset a:2 dbms:oracle\n\
             select 2 from dual;\n\
             --changeset a:3 dbms:postgresql,h2\n\
             select 3;\n\
             --changeset a:4 ignore:true\n\
             select 4;\n",
        );
        let ids: Vec<String> = set.migrations.iter().map(|m| m.version.clone()).collect();
        assert_eq!(ids, ["1", "3"]);
        assert_eq!(
            set.notes,
            ["`".to_owned()
                + &set.migrations[0].up.path.display().to_string()
                + ":2` changeset a:1: preconditions are not evaluated"]
        );
        assert_eq!(chunks(&set.migrations[0].up), ["select 1"]);
    }

    #[test]
    fn quoted_author_and_ignored_lines() {
        let set = read(
            "--liquibase formatted sql\n--changeset \"Ann Lee\":\"a b\"\nselect 1;\n\
             --ignoreLines:start\nselect 'ignored';\n--ignoreLines:end\n\
             --ignoreLines:1\nselect 'also ignored';\nselect 2;\n",
        );
        let m = &set.migrations[0];
        assert_eq!(
            (m.description.as_str(), m.version.as_str()),
            ("Ann Lee", "a b")
        );
        assert_eq!(chunks(&m.up), ["select 1", "select 2"]);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let err = error("--liquibase formatted sql\n\n--changeset alice\nselect 1;\n");
        assert!(
            err.contains("changelog.sql") && err.contains("line 3: malformed changeset line"),
            "{err}"
        );
        let err = error("--liquibase formatted sql\n-changeset a:1\nselect 1;\n");
        assert!(err.contains("line 2: malformed changeset"), "{err}");
        let err =
            error("--liquibase formatted sql\n--changeset a:1\nselect 1;\n-rollback drop x;\n");
        assert!(err.contains("line 4: malformed rollback"), "{err}");
        let err =
            error("--liquibase formatted sql\n--changeset a:1\n\n--changeset a:2\nselect 1;\n");
        assert!(err.contains("changeset a:1 at line 2 has no SQL"), "{err}");
        let err = error("--liquibase formatted sql\n--changeset a:1\nselect 1;\nselect 'x;\n");
        assert!(
            err.contains("changeset a:1: unterminated string literal starting at line 4"),
            "{err}"
        );
        let err = error("--liquibase formatted sql\n--changeset a:1\nselect 1;\n\\connect x\n");
        assert!(err.contains("meta-command `\\connect` at line 4"), "{err}");
    }

    #[test]
    fn crlf_and_sql_before_the_first_changeset() {
        let set = read(
            "--liquibase formatted sql\r\nselect 0;\r\n--changeset a:1\r\nselect 1;\r\n\
             --rollback select 2;\r\n",
        );
        assert_eq!(chunks(&set.migrations[0].up), ["select 1"]);
        assert_eq!(
            chunks(set.migrations[0].down.as_ref().unwrap()),
            ["select 2"]
        );
        assert!(set.notes[0].contains("changelog.sql:2`") && set.notes[0].contains("ignored"));
    }
}

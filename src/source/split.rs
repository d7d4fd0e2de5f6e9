//! Splits a PostgreSQL script into the statements a migrator sends one by one, with the
//! lexical rules of PostgreSQL's own scanner (strings, dollar quotes, nested comments) and
//! psql's rule for `BEGIN ATOMIC` bodies. Says nothing about what a statement means, except
//! whether PostgreSQL refuses it inside a transaction block ([`is_non_transactional`]).

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Byte offset of the statement's first token in the script text.
    pub offset: usize,
    /// The statement exactly as written, from its first token to its last, without the `;`
    /// that ends it and without the comments around it.
    pub sql: String,
}

/// Why a script could not be split. Lines are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error(
        "psql meta-command `{command}` at line {line} is not SQL; migproof runs migrations \
         through the server, not psql"
    )]
    MetaCommand { line: usize, command: String },
    #[error("unterminated {what} starting at line {line}")]
    Unterminated { line: usize, what: String },
}

/// Splits `text` on the `;` that end statements, as psql does: a `;` inside a string, a
/// quoted identifier, a dollar-quoted body, a comment, parentheses or the `BEGIN ATOMIC ...
/// END` body of a `CREATE [OR REPLACE] FUNCTION|PROCEDURE` does not end a statement.
/// Statements holding only whitespace and comments are dropped.
pub fn split(text: &str) -> Result<Vec<Statement>, SplitError> {
    split_by(text, &Terminator::Semicolon)
}

/// 1-based line of the byte `offset` in `text` (offsets past the end count as the end).
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// True when PostgreSQL refuses `sql` inside a transaction block, as its documentation
/// lists: `CREATE|DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY` and `REINDEX
/// SCHEMA|DATABASE|SYSTEM`, `VACUUM`, `CREATE|DROP DATABASE`, `ALTER DATABASE ... SET
/// TABLESPACE`, `CREATE|DROP TABLESPACE`, `ALTER SYSTEM`, `DISCARD ALL`, `COMMIT|ROLLBACK
/// PREPARED` and `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY`. Commands refused only
/// with some options (`CREATE SUBSCRIPTION` creating a slot, `CLUSTER` without a table) are
/// not reported. `sql` is one statement; leading comments are skipped and keywords compared
/// case-insensitively.
pub fn is_non_transactional(sql: &str) -> bool {
    let words = leading_words(sql);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["create", "index", "concurrently", ..]
        | ["create", "unique", "index", "concurrently", ..]
        | ["drop", "index", "concurrently", ..]
        | ["vacuum", ..]
        | ["create" | "drop", "database" | "tablespace", ..]
        | ["alter", "system", ..]
        | ["discard", "all", ..]
        | ["commit" | "rollback", "prepared", ..] => true,
        ["alter", "database", _, "set", "tablespace", ..] => true,
        ["reindex", rest @ ..] => reindex_refused(rest),
        ["alter", "table", rest @ ..] => {
            rest.windows(2).any(|p| p == ["detach", "partition"])
                && rest.last() == Some(&"concurrently")
        }
        _ => false,
    }
}

/// `REINDEX [ ( option [, ...] ) ] { INDEX | TABLE | SCHEMA | DATABASE | SYSTEM }
/// [ CONCURRENTLY ] name`, from the word after `REINDEX`.
/// True for a statement that builds an index concurrently (`CREATE INDEX CONCURRENTLY`,
/// `REINDEX ... CONCURRENTLY`): it commits in phases, and one cancelled during its build
/// leaves an INVALID index behind.
pub fn builds_concurrently(sql: &str) -> bool {
    let words = leading_words(sql);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["create", "index", "concurrently", ..]
        | ["create", "unique", "index", "concurrently", ..] => true,
        ["reindex", rest @ ..] => rest.contains(&"concurrently"),
        _ => false,
    }
}

fn reindex_refused(rest: &[&str]) -> bool {
    let mut i = 0;
    let mut concurrently = false;
    if rest.first() == Some(&"(") {
        while let Some(&word) = rest.get(i) {
            i += 1;
            if word == ")" {
                break;
            }
            if word == "concurrently" {
                let off = matches!(rest.get(i), Some(&("false" | "off" | "0")));
                concurrently = !off;
            }
        }
    }
    match rest.get(i) {
        Some(&("schema" | "database" | "system")) => true,
        Some(_) => concurrently || rest.get(i + 1) == Some(&"concurrently"),
        None => false,
    }
}

/// The tokens of one statement, unquoted keywords lowercased, comments and whitespace
/// dropped; stops at the first `;` or at anything the lexer cannot read.
fn leading_words(sql: &str) -> Vec<String> {
    let mut lexer = Lexer::new(sql);
    let mut words = Vec::new();
    while let Some(Ok(token)) = lexer.next_token() {
        let raw = sql.get(token.start..token.end).unwrap_or_default();
        match token.kind {
            Kind::Space | Kind::Comment => {}
            Kind::Semicolon => break,
            Kind::Word => words.push(raw.to_ascii_lowercase()),
            _ => words.push(raw.to_owned()),
        }
    }
    words
}

/// True when some dollar-quoted body of `sql` holds a `;`: tools that split scripts without
/// knowing dollar quotes (Liquibase's splitter) cut such a body in two.
pub(crate) fn has_semicolon_in_dollar_quote(sql: &str) -> bool {
    let mut lexer = Lexer::new(sql);
    while let Some(Ok(token)) = lexer.next_token() {
        if token.kind == Kind::DollarQuoted
            && sql
                .get(token.start..token.end)
                .is_some_and(|s| s.contains(';'))
        {
            return true;
        }
    }
    false
}

/// What ends a statement, besides the end of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Terminator {
    /// `;`, as psql splits.
    Semicolon,
    /// Liquibase's default: `;`, or `GO` or `/` standing at the very start of a line.
    LiquibaseDefault,
    /// A delimiter given by the user (Liquibase's `endDelimiter`), matched as written but
    /// case-insensitively; a word delimiter (`GO`) must stand as a whole word and `/` at
    /// the start of a line, as Liquibase requires.
    Custom(String),
}

impl Terminator {
    /// Length of the delimiter that starts at `pos`, if one does and it is checked before
    /// lexing (custom delimiters may span several tokens).
    fn custom_at(&self, text: &str, pos: usize) -> Option<usize> {
        let Terminator::Custom(delimiter) = self else {
            return None;
        };
        let len = delimiter.len();
        if len == 0 {
            return None;
        }
        let candidate = text.get(pos..pos + len)?;
        if !candidate.eq_ignore_ascii_case(delimiter) {
            return None;
        }
        if delimiter == "/" && !at_line_start(text, pos) {
            return None;
        }
        let ends_in_word = delimiter.bytes().last().is_some_and(is_ident_byte);
        let glued = text
            .as_bytes()
            .get(pos + len)
            .is_some_and(|&b| is_ident_byte(b));
        if ends_in_word && glued {
            return None;
        }
        Some(len)
    }

    /// True when the lexed `token` ends the statement.
    fn ends_at(&self, text: &str, token: &Token) -> bool {
        match self {
            Terminator::Semicolon => token.kind == Kind::Semicolon,
            Terminator::LiquibaseDefault => match token.kind {
                Kind::Semicolon => true,
                Kind::Word | Kind::Other => {
                    let raw = text.get(token.start..token.end).unwrap_or_default();
                    (raw.eq_ignore_ascii_case("go") || raw == "/")
                        && at_line_start(text, token.start)
                }
                _ => false,
            },
            Terminator::Custom(_) => false,
        }
    }
}

fn at_line_start(text: &str, pos: usize) -> bool {
    pos == 0 || text.as_bytes().get(pos - 1) == Some(&b'\n')
}

/// Splits `text` into statements ended by `terminator`; see [`split`].
pub(crate) fn split_by(text: &str, terminator: &Terminator) -> Result<Vec<Statement>, SplitError> {
    let mut lexer = Lexer::new(text);
    let mut statements = Vec::new();
    let mut current = Current::default();
    loop {
        if current.may_end() {
            if let Some(len) = terminator.custom_at(text, lexer.pos) {
                current.finish(text, &mut statements);
                lexer.pos += len;
                continue;
            }
        }
        let Some(token) = lexer.next_token() else {
            break;
        };
        let token = token?;
        if current.may_end() && terminator.ends_at(text, &token) {
            current.finish(text, &mut statements);
            continue;
        }
        current.push(text, &token);
    }
    current.finish(text, &mut statements);
    Ok(statements)
}

/// The statement being read.
#[derive(Default)]
struct Current {
    start: Option<usize>,
    end: usize,
    parens: usize,
    /// Open `BEGIN` (and `CASE` inside one) of a SQL-standard routine body.
    begins: usize,
    /// The first words, to recognise `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
    head: Vec<String>,
}

impl Current {
    fn may_end(&self) -> bool {
        self.parens == 0 && self.begins == 0
    }

    fn push(&mut self, text: &str, token: &Token) {
        match token.kind {
            Kind::Space | Kind::Comment => return,
            Kind::Open => self.parens += 1,
            Kind::Close => self.parens = self.parens.saturating_sub(1),
            Kind::Word => self.word(text.get(token.start..token.end).unwrap_or_default()),
            _ => {}
        }
        self.start.get_or_insert(token.start);
        self.end = token.end;
    }

    /// psql's heuristic: inside `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, outside
    /// parentheses, `BEGIN` opens a body, `CASE` nests only inside one, `END` closes.
    fn word(&mut self, word: &str) {
        if self.head.len() < 4 {
            self.head.push(word.to_ascii_lowercase());
        }
        if self.parens > 0 || !self.is_routine() {
            return;
        }
        if word.eq_ignore_ascii_case("begin") {
            self.begins += 1;
        } else if word.eq_ignore_ascii_case("case") {
            if self.begins > 0 {
                self.begins += 1;
            }
        } else if word.eq_ignore_ascii_case("end") {
            self.begins = self.begins.saturating_sub(1);
        }
    }

    fn is_routine(&self) -> bool {
        let head: Vec<&str> = self.head.iter().map(String::as_str).collect();
        matches!(
            head.as_slice(),
            ["create", "function" | "procedure", ..]
                | ["create", "or", "replace", "function" | "procedure", ..]
        )
    }

    fn finish(&mut self, text: &str, out: &mut Vec<Statement>) {
        if let Some(start) = self.start {
            let sql = text.get(start..self.end).unwrap_or_default().to_owned();
            out.push(Statement { offset: start, sql });
        }
        *self = Current::default();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Space,
    Comment,
    /// An unquoted identifier or keyword.
    Word,
    /// A string constant or a quoted identifier.
    Quoted,
    DollarQuoted,
    Semicolon,
    Open,
    Close,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// PostgreSQL's whitespace (`\v` since PostgreSQL 16).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b')
}

/// Bytes that may start an identifier; every byte of a non-ASCII character counts, so a
/// word never ends inside a character.
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_byte(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn is_tag_byte(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

/// A tokenizer that knows just enough of PostgreSQL's lexer to find where statements end.
/// Every token starts and ends on a character boundary.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Lexer<'a> {
        Lexer { text, pos: 0 }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.text.as_bytes().get(at).copied()
    }

    fn next_token(&mut self) -> Option<Result<Token, SplitError>> {
        let start = self.pos;
        let b = self.byte(start)?;
        let next = self.byte(start + 1);
        let kind = match b {
            _ if is_space(b) => {
                self.pos = self.skip_while(start, is_space);
                Kind::Space
            }
            b'-' if next == Some(b'-') => {
                self.pos = self.line_end(start);
                Kind::Comment
            }
            b'/' if next == Some(b'*') => match self.block_comment_end(start) {
                Some(end) => {
                    self.pos = end;
                    Kind::Comment
                }
                None => return Some(Err(self.unterminated(start, "block comment"))),
            },
            b'\'' => match self.quoted_end(start, b'\'') {
                Some(end) => {
                    self.pos = end;
                    Kind::Quoted
                }
                None => return Some(Err(self.unterminated(start, "string literal"))),
            },
            b'"' => match self.quoted_end(start, b'"') {
                Some(end) => {
                    self.pos = end;
                    Kind::Quoted
                }
                None => return Some(Err(self.unterminated(start, "quoted identifier"))),
            },
            b'$' => return Some(self.dollar(start)),
            b';' => {
                self.pos = start + 1;
                Kind::Semicolon
            }
            b'(' => {
                self.pos = start + 1;
                Kind::Open
            }
            b')' => {
                self.pos = start + 1;
                Kind::Close
            }
            b'\\' if self.only_blanks_before(start) => {
                let end = self.skip_while(start + 1, |c| !is_space(c));
                let command = self.text.get(start..end).unwrap_or("\\").to_owned();
                return Some(Err(SplitError::MetaCommand {
                    line: line_of(self.text, start),
                    command,
                }));
            }
            _ if is_ident_start(b) => {
                let end = self.skip_while(start, is_ident_byte);
                let word = self.text.get(start..end).unwrap_or_default();
                if word.eq_ignore_ascii_case("e") && self.byte(end) == Some(b'\'') {
                    match self.escape_string_end(end) {
                        Some(end) => {
                            self.pos = end;
                            Kind::Quoted
                        }
                        None => return Some(Err(self.unterminated(start, "string literal"))),
                    }
                } else {
                    self.pos = end;
                    Kind::Word
                }
            }
            _ if b.is_ascii_digit() => {
                self.pos = self.skip_while(start, |c| {
                    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
                });
                Kind::Other
            }
            _ => {
                self.pos = start + 1;
                Kind::Other
            }
        };
        Some(Ok(Token {
            kind,
            start,
            end: self.pos,
        }))
    }

    fn skip_while(&self, from: usize, keep: impl Fn(u8) -> bool) -> usize {
        let bytes = self.text.as_bytes();
        let mut i = from;
        while bytes.get(i).is_some_and(|&b| keep(b)) {
            i += 1;
        }
        i
    }

    /// Position of the `\n` ending the line that holds `from` (or the end of the text).
    fn line_end(&self, from: usize) -> usize {
        self.skip_while(from, |b| b != b'\n')
    }

    fn only_blanks_before(&self, pos: usize) -> bool {
        let bytes = self.text.as_bytes();
        let line_start = bytes
            .get(..pos)
            .and_then(|b| b.iter().rposition(|&c| c == b'\n'));
        let from = line_start.map_or(0, |i| i + 1);
        bytes
            .get(from..pos)
            .is_some_and(|b| b.iter().all(|&c| is_space(c)))
    }

    fn unterminated(&self, start: usize, what: &str) -> SplitError {
        SplitError::Unterminated {
            line: line_of(self.text, start),
            what: what.to_owned(),
        }
    }

    /// End of the (nested) block comment opening at `start`.
    fn block_comment_end(&self, start: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let mut depth = 0usize;
        let mut i = start;
        loop {
            match (bytes.get(i)?, bytes.get(i + 1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    i += 2;
                }
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => i += 1,
            }
        }
    }

    /// End of a `'...'` string or `"..."` identifier opening at `start`, where a doubled
    /// quote stands for one.
    fn quoted_end(&self, start: usize, quote: u8) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let mut i = start + 1;
        loop {
            if *bytes.get(i)? == quote {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            } else {
                i += 1;
            }
        }
    }

    /// End of an `E'...'` string whose quote is at `quote`: backslash escapes any byte,
    /// `''` stands for a quote, and a following `'...'` separated only by whitespace that
    /// holds a newline continues it (with the same escapes), as PostgreSQL reads it.
    fn escape_string_end(&self, quote: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let mut i = quote + 1;
        loop {
            match *bytes.get(i)? {
                b'\\' => i += 2,
                b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                b'\'' => {
                    let end = i + 1;
                    match self.continuation(end) {
                        Some(next_quote) => i = next_quote + 1,
                        None => return Some(end),
                    }
                }
                _ => i += 1,
            }
        }
    }

    /// The quote that continues a string ending at `end`, if only whitespace with a newline
    /// (and `--` comments) stands between.
    fn continuation(&self, end: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let mut i = end;
        let mut newline = false;
        loop {
            match *bytes.get(i)? {
                b'\n' => {
                    newline = true;
                    i += 1;
                }
                b if is_space(b) => i += 1,
                b'-' if bytes.get(i + 1) == Some(&b'-') => i = self.line_end(i),
                b'\'' if newline => return Some(i),
                _ => return None,
            }
        }
    }

    /// `$1` (a parameter), `$tag$...$tag$` (a dollar-quoted body), or a lone `$`.
    fn dollar(&mut self, start: usize) -> Result<Token, SplitError> {
        let bytes = self.text.as_bytes();
        let after = start + 1;
        let other = |end| Token {
            kind: Kind::Other,
            start,
            end,
        };
        if bytes.get(after).is_some_and(u8::is_ascii_digit) {
            self.pos = self.skip_while(after, |b| b.is_ascii_digit());
            return Ok(other(self.pos));
        }
        let tag_ok = match bytes.get(after) {
            Some(&b'$') => true,
            Some(&b) => is_ident_start(b),
            None => false,
        };
        let tag_end = self.skip_while(after, is_tag_byte);
        if !tag_ok || bytes.get(tag_end) != Some(&b'$') {
            // PostgreSQL reads a `$` that opens no quote as a character of its own.
            self.pos = after;
            return Ok(other(after));
        }
        let body = tag_end + 1;
        let tag = self.text.get(start..body).unwrap_or("$$");
        let found = self.text.get(body..).and_then(|rest| rest.find(tag));
        match found {
            Some(at) => {
                self.pos = body + at + tag.len();
                Ok(Token {
                    kind: Kind::DollarQuoted,
                    start,
                    end: self.pos,
                })
            }
            None => Err(self.unterminated(start, &format!("dollar-quoted string `{tag}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(text: &str) -> Vec<String> {
        split(text).unwrap().into_iter().map(|s| s.sql).collect()
    }

    #[test]
    fn splits_on_semicolons_and_keeps_exact_slices() {
        let text = "create table a (x int);\n\ninsert into a values (1) ;  select 1";
        let statements = split(text).unwrap();
        assert_eq!(
            statements
                .iter()
                .map(|s| s.sql.as_str())
                .collect::<Vec<_>>(),
            [
                "create table a (x int)",
                "insert into a values (1)",
                "select 1"
            ]
        );
        for s in &statements {
            assert_eq!(&text[s.offset..s.offset + s.sql.len()], s.sql);
        }
        assert_eq!(line_of(text, statements[1].offset), 3);
    }

    #[test]
    fn drops_statements_of_only_whitespace_and_comments() {
        let text = "-- header\n;;\n/* nothing */;\nselect 1; -- trailing\n";
        assert_eq!(sqls(text), ["select 1"]);
        assert!(split("").unwrap().is_empty());
        assert!(split("  \n-- only a comment").unwrap().is_empty());
    }

    #[test]
    fn leading_and_trailing_comments_are_outside_the_statement() {
        let text = "-- add users\ncreate table users () -- why\n;";
        let s = split(text).unwrap();
        assert_eq!(s[0].sql, "create table users ()");
        assert_eq!(line_of(text, s[0].offset), 2);
    }

    #[test]
    fn semicolons_in_strings_do_not_split() {
        assert_eq!(
            sqls("select 'a;b', 'it''s;'; select 2"),
            ["select 'a;b', 'it''s;'", "select 2"]
        );
    }

    #[test]
    fn escape_strings_take_backslashes() {
        assert_eq!(
            sqls(r"select E'it\'s;' ; select 2"),
            [r"select E'it\'s;'", "select 2"]
        );
        assert_eq!(
            sqls(r"select e'\\'; select 2"),
            [r"select e'\\'", "select 2"]
        );
        // A standard string ends at the quote after a backslash.
        assert_eq!(sqls(r"select '\'; select 2"), [r"select '\'", "select 2"]);
        // `somee'` is an identifier followed by a standard string, not an escape string.
        assert_eq!(
            sqls(r"select somee'\'; select 2"),
            [r"select somee'\'", "select 2"]
        );
    }

    #[test]
    fn escape_string_continues_across_a_newline() {
        let text = "select E'a'\n  '\\';'; select 2";
        assert_eq!(sqls(text), ["select E'a'\n  '\\';'", "select 2"]);
    }

    #[test]
    fn quoted_identifiers_double_their_quotes() {
        assert_eq!(
            sqls(r#"create table "a;""b" (x int); select 1"#),
            [r#"create table "a;""b" (x int)"#, "select 1"]
        );
    }

    #[test]
    fn dollar_quotes_with_and_without_tags() {
        let text = "create function f() returns int as $$ select 1; $$ language sql;\n\
                    do $body$ begin perform 1; raise notice '$$'; end $body$;\n\
                    select 3";
        assert_eq!(split(text).unwrap().len(), 3);
        let nested = "select $a$ $b$ ; $b$ ; $a$; select 2";
        assert_eq!(sqls(nested), ["select $a$ $b$ ; $b$ ; $a$", "select 2"]);
    }

    #[test]
    fn parameter_is_not_a_dollar_tag() {
        assert_eq!(sqls("select $1; select $2"), ["select $1", "select $2"]);
        // An identifier may hold `$`; it does not open a quote.
        assert_eq!(sqls("select a$b$; select 2"), ["select a$b$", "select 2"]);
        // `$x` with no closing `$` is a lone `$` followed by a word.
        assert_eq!(sqls("select $x; select 2"), ["select $x", "select 2"]);
    }

    #[test]
    fn comments_hide_semicolons_and_nest() {
        let text = "select 1 -- not; here\n; /* a /* nested; */ still; */ select 2";
        assert_eq!(sqls(text), ["select 1", "select 2"]);
    }

    #[test]
    fn begin_atomic_bodies_hold_semicolons() {
        let text = "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql\n\
                    BEGIN ATOMIC\n\
                      SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n\
                      SELECT CASE x WHEN 1 THEN CASE WHEN true THEN 2 END END;\n\
                    END;\n\
                    select 2";
        let s = sqls(text);
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].ends_with("END"), "{s:?}");
        assert_eq!(s[1], "select 2");
        let procedure = "create procedure p() begin atomic insert into t values (1); end; call p()";
        assert_eq!(sqls(procedure).len(), 2);
    }

    #[test]
    fn begin_outside_a_routine_is_a_transaction_statement() {
        assert_eq!(sqls("begin; select 1; end;"), ["begin", "select 1", "end"]);
        // A CASE outside a routine body does not nest anything.
        assert_eq!(sqls("select case when true then 1 end; select 2").len(), 2);
    }

    #[test]
    fn semicolons_inside_parentheses_do_not_split() {
        assert_eq!(sqls("select (1;2); select 3"), ["select (1;2)", "select 3"]);
    }

    #[test]
    fn crlf_line_ends() {
        let text = "select 1;\r\n-- c\r\nselect 'a\r\nb';\r\n";
        let s = split(text).unwrap();
        assert_eq!(s[1].sql, "select 'a\r\nb'");
        assert_eq!(line_of(text, s[1].offset), 3);
    }

    #[test]
    fn file_with_bom_removed_and_non_ascii_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sql");
        let body = "\u{feff}insert into t values ('héllo; ü');\nselect \"naïve\";";
        std::fs::write(&path, body).unwrap();
        let text = super::super::read_text(&path).unwrap();
        let s = split(&text).unwrap();
        assert_eq!(s[0].offset, 0);
        assert_eq!(s[0].sql, "insert into t values ('héllo; ü')");
        assert_eq!(s[1].sql, "select \"naïve\"");
        assert_eq!(line_of(&text, s[1].offset), 2);
    }

    #[test]
    fn every_prefix_splits_or_errors_without_panicking() {
        let text = "create function f() returns int language sql begin atomic select 1; end;\r\n\
                    select E'\\'' || $t$;$t$ || \"q\"\"\" /* a /* b */ */ -- c\n\
                    ; select 'é'; \\x";
        for (i, _) in text.char_indices() {
            let _ = split(&text[..i]);
            let _ = split_by(&text[..i], &Terminator::LiquibaseDefault);
            let _ = split_by(&text[..i], &Terminator::Custom("go".into()));
            let _ = is_non_transactional(&text[i..]);
        }
    }

    #[test]
    fn meta_commands_are_refused() {
        let err = split("select 1;\n\n  \\i other.sql\n").unwrap_err();
        assert_eq!(
            err,
            SplitError::MetaCommand {
                line: 3,
                command: "\\i".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "psql meta-command `\\i` at line 3 is not SQL; migproof runs migrations through \
             the server, not psql"
        );
        // Inside a string or a comment a backslash line is text.
        assert_eq!(sqls("select '\n\\i x';").len(), 1);
        assert_eq!(sqls("/*\n\\i x\n*/ select 1").len(), 1);
        assert_eq!(sqls("select $$\n\\set x\n$$").len(), 1);
    }

    #[test]
    fn unterminated_constructs_name_their_line() {
        let cases = [
            ("select 1;\nselect 'abc", 2, "string literal"),
            ("select E'a\\'", 1, "string literal"),
            ("select 1;\n\nselect \"x", 3, "quoted identifier"),
            ("/* a /* b */", 1, "block comment"),
            (
                "select 1;\ndo $f$ begin end $g$;",
                2,
                "dollar-quoted string `$f$`",
            ),
        ];
        for (text, line, what) in cases {
            assert_eq!(
                split(text).unwrap_err(),
                SplitError::Unterminated {
                    line,
                    what: what.into()
                },
                "{text}"
            );
        }
        assert_eq!(
            split("select 'x").unwrap_err().to_string(),
            "unterminated string literal starting at line 1"
        );
    }

    #[test]
    fn no_panic_on_odd_input() {
        for text in [
            "$", "$$", "E", "E'", "'", "\"", "/*", "-", "\\", "$a", "$1", "é'", "(((", ")))",
        ] {
            let _ = split(text);
            let _ = is_non_transactional(text);
        }
    }

    #[test]
    fn non_transactional_statements() {
        let yes = [
            "CREATE INDEX CONCURRENTLY i ON t (x)",
            "create unique index concurrently if not exists i on t (x)",
            "-- why\n/* note */ drop index concurrently i",
            "REINDEX INDEX CONCURRENTLY i",
            "reindex (verbose, concurrently) table t",
            "reindex database d",
            "VACUUM (ANALYZE) t",
            "create database d",
            "drop database if exists d",
            "alter database d set tablespace s",
            "create tablespace s location '/x'",
            "drop tablespace s",
            "alter system set work_mem = '1MB'",
            "discard all",
            "commit prepared 'x'",
            "alter table public.t detach partition t_2024 concurrently",
        ];
        for sql in yes {
            assert!(is_non_transactional(sql), "{sql}");
        }
        let no = [
            "create index i on t (x)",
            "create index concurrently_named on t (x)",
            "reindex table t",
            "reindex (concurrently false) index i",
            "analyze t",
            "alter database d set work_mem = '1MB'",
            "alter table t detach partition p",
            "select 'vacuum'",
            "-- vacuum\nselect 1",
            "refresh materialized view concurrently v",
        ];
        for sql in no {
            assert!(!is_non_transactional(sql), "{sql}");
        }
    }

    #[test]
    fn liquibase_default_splits_on_go_and_slash_at_line_start() {
        let text = "select 1\nGO\nselect 2\n/\nselect 10 / 2; select 'go'\n  go";
        let s: Vec<String> = split_by(text, &Terminator::LiquibaseDefault)
            .unwrap()
            .into_iter()
            .map(|s| s.sql)
            .collect();
        assert_eq!(
            s,
            ["select 1", "select 2", "select 10 / 2", "select 'go'\n  go"]
        );
    }

    #[test]
    fn custom_delimiter_replaces_the_semicolon() {
        let text = "select 1; select 2\ngo\nselect $$go$$ gone go";
        let s: Vec<String> = split_by(text, &Terminator::Custom("GO".into()))
            .unwrap()
            .into_iter()
            .map(|s| s.sql)
            .collect();
        assert_eq!(s, ["select 1; select 2", "select $$go$$ gone"]);
        let slash = split_by("select 4 / 2\n/\nselect 1", &Terminator::Custom("/".into())).unwrap();
        assert_eq!(slash.len(), 2);
    }

    #[test]
    fn finds_semicolons_in_dollar_bodies() {
        assert!(has_semicolon_in_dollar_quote("as $$ begin x; end $$"));
        assert!(!has_semicolon_in_dollar_quote(
            "as $$ select 1 $$; select ';'"
        ));
    }
}

//! FALLBACK statement splitter, private to the lock runner, until `crate::source::split` lands
//! (same names and signatures: swap `use fallback_split::...` for `use crate::source::split::...`
//! in `src/locks.rs` and delete this file). Minimal on purpose: it knows `'...'` and `E'...'`
//! strings, `"..."` identifiers, `$tag$` bodies, `--` and nested `/* */` comments and
//! parentheses, but not psql's `BEGIN ATOMIC` rule or meta-commands.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Byte offset of the statement's first token in the script text.
    pub offset: usize,
    /// The statement as written, without the `;` that ends it and the comments around it.
    pub sql: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("unterminated {what} starting at line {line}")]
    Unterminated { line: usize, what: String },
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The end (exclusive) of the token that starts at `i`, or an error for an unterminated one.
/// Comments are tokens too; the caller skips them.
fn token_end(text: &str, i: usize) -> Result<usize, SplitError> {
    let b = text.as_bytes();
    let unterminated =
        |what: &str| SplitError::Unterminated { line: line_of(text, i), what: what.into() };
    let find = |from: usize, pat: &str| text[from..].find(pat).map(|p| from + p + pat.len());
    match b[i] {
        b'-' if b.get(i + 1) == Some(&b'-') => Ok(text[i..].find('\n').map_or(b.len(), |p| i + p)),
        b'/' if b.get(i + 1) == Some(&b'*') => {
            let (mut depth, mut j) = (1, i + 2);
            while depth > 0 {
                match (b.get(j), b.get(j + 1)) {
                    (None, _) => return Err(unterminated("comment")),
                    (Some(b'/'), Some(b'*')) => (depth, j) = (depth + 1, j + 2),
                    (Some(b'*'), Some(b'/')) => (depth, j) = (depth - 1, j + 2),
                    _ => j += 1,
                }
            }
            Ok(j)
        }
        b'\'' => {
            let escapes =
                i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !is_ident_byte(b[i - 2]));
            let mut j = i + 1;
            loop {
                match b.get(j) {
                    None => return Err(unterminated("string")),
                    Some(b'\\') if escapes => j += 2,
                    Some(b'\'') if b.get(j + 1) == Some(&b'\'') => j += 2,
                    Some(b'\'') => return Ok(j + 1),
                    Some(_) => j += 1,
                }
            }
        }
        b'"' => find(i + 1, "\"").ok_or_else(|| unterminated("quoted identifier")),
        b'$' if i == 0 || !is_ident_byte(b[i - 1]) => {
            let tag_len = b[i + 1..].iter().take_while(|&&c| is_ident_byte(c) && c != b'$').count();
            let is_tag = b.get(i + 1 + tag_len) == Some(&b'$')
                && !b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !is_tag {
                return Ok(i + 1);
            }
            let tag = &text[i..i + tag_len + 2];
            find(i + tag.len(), tag).ok_or_else(|| unterminated("dollar-quoted string"))
        }
        _ => Ok(i + text[i..].chars().next().map_or(1, char::len_utf8)),
    }
}

/// Splits `text` on the `;` that end statements; empty statements are dropped.
pub fn split(text: &str) -> Result<Vec<Statement>, SplitError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut depth) = (0, 0i32);
    let mut current: Option<(usize, usize)> = None; // first token's start, last token's end
    let mut flush = |current: &mut Option<(usize, usize)>| {
        if let Some((start, end)) = current.take() {
            out.push(Statement { offset: start, sql: text[start..end].to_string() });
        }
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b';' && depth == 0 {
            flush(&mut current);
            i += 1;
            continue;
        }
        let end = token_end(text, i)?;
        let comment = (c == b'-' || c == b'/') && end > i + 1;
        if !comment {
            depth += match c {
                b'(' => 1,
                b')' => -1,
                _ => 0,
            };
            current = Some((current.map_or(i, |(s, _)| s), end));
        }
        i = end;
    }
    flush(&mut current);
    Ok(out)
}

/// True when PostgreSQL refuses `sql` inside a transaction block.
pub fn is_non_transactional(sql: &str) -> bool {
    let mut words = Vec::new();
    let mut i = 0;
    while i < sql.len() && words.len() < 8 {
        let run = sql.as_bytes()[i..].iter().take_while(|&&b| is_ident_byte(b)).count();
        let end = if run > 0 {
            i + run
        } else if let Ok(end) = token_end(sql, i) {
            end
        } else {
            break;
        };
        let token = &sql[i..end];
        if token.bytes().all(is_ident_byte) {
            words.push(token.to_ascii_lowercase());
        } else if !token.trim().is_empty() && !token.starts_with("--") && !token.starts_with("/*") {
            words.push(token.to_string());
        }
        i = end;
    }
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["create", "index", "concurrently", ..]
        | ["create", "unique", "index", "concurrently", ..]
        | ["drop", "index", "concurrently", ..]
        | ["vacuum", ..]
        | ["create" | "drop", "database" | "tablespace", ..]
        | ["alter", "system", ..] => true,
        ["reindex", rest @ ..] => {
            rest.contains(&"concurrently")
                || matches!(rest.first(), Some(&("schema" | "database" | "system")))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(text: &str) -> Vec<String> {
        split(text).unwrap().into_iter().map(|s| s.sql).collect()
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_comments_and_bodies() {
        let text = "-- lead\nSET lock_timeout = '2s';\nALTER TABLE t ADD c text DEFAULT ';''x';\n\
                    CREATE FUNCTION f() RETURNS int AS $b$ SELECT 1; $b$ LANGUAGE sql; /* a; /* b; */ */\n\
                    SELECT E'\\';', \"a;b\" FROM t;";
        assert_eq!(
            sqls(text),
            [
                "SET lock_timeout = '2s'",
                "ALTER TABLE t ADD c text DEFAULT ';''x'",
                "CREATE FUNCTION f() RETURNS int AS $b$ SELECT 1; $b$ LANGUAGE sql",
                "SELECT E'\\';', \"a;b\" FROM t",
            ]
        );
        assert_eq!(split(text).unwrap()[0].offset, 8);
    }

    #[test]
    fn drops_empty_statements_and_keeps_a_last_one_without_semicolon() {
        assert_eq!(sqls(";; -- x\n select 1 ;\n select $1"), ["select 1", "select $1"]);
    }

    #[test]
    fn unterminated_string_names_its_line() {
        let err = split("select 1;\nselect 'oops").unwrap_err();
        assert_eq!(err, SplitError::Unterminated { line: 2, what: "string".into() });
    }

    #[test]
    fn knows_which_statements_refuse_a_transaction() {
        assert!(is_non_transactional("-- x\nCREATE INDEX CONCURRENTLY i ON t (c)"));
        assert!(is_non_transactional("create unique index concurrently if not exists i on t (c)"));
        assert!(is_non_transactional("DROP INDEX CONCURRENTLY i"));
        assert!(is_non_transactional("REINDEX INDEX CONCURRENTLY i"));
        assert!(!is_non_transactional("CREATE INDEX i ON t (c)"));
        assert!(!is_non_transactional("ALTER TABLE t ADD c int"));
    }
}

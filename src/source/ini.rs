//! The INI files of Python migrators (`alembic.ini`), read and rewritten the way their
//! `configparser` does for the keys migproof needs: `[section]` headers, `key = value` (or
//! `key: value`) lines, `#` and `;` comments. One reader, used for reading a project and for
//! pointing its migrator at a scratch database.

/// Each line of `text` with the section it is in and its 1-based number.
fn lines(text: &str) -> impl Iterator<Item = (String, usize, &str)> {
    let mut section = String::new();
    text.lines().enumerate().map(move |(i, line)| {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            section = t[1..t.len() - 1].trim().to_string();
        }
        (section.clone(), i + 1, line)
    })
}

/// The key and value of a `key = value` line (not a header, comment or continuation line).
fn entry(line: &str) -> Option<(&str, &str)> {
    if line.starts_with(char::is_whitespace) {
        return None; // a continuation of the value above
    }
    let t = line.trim();
    if t.is_empty() || t.starts_with(['#', ';', '[']) {
        return None;
    }
    let split = t.find(['=', ':'])?;
    Some((t[..split].trim(), t[split + 1..].trim()))
}

/// The value of `key` in `[section]`, and its line.
pub fn value(text: &str, section: &str, key: &str) -> Option<(String, usize)> {
    lines(text)
        .filter(|(s, _, _)| s == section)
        .find_map(|(_, n, line)| match entry(line) {
            Some((k, v)) if k == key => Some((v.to_string(), n)),
            _ => None,
        })
}

/// `text` with `key` in `[section]` set to `value` (written as a configparser reads it back,
/// `%` doubled), replacing the key where it is, else added to the section, else in a new one.
pub fn with_value(text: &str, section: &str, key: &str, value: &str) -> String {
    let line = format!("{key} = {}\n", value.replace('%', "%%"));
    let mut out = String::new();
    let mut done = false;
    let mut current = String::new();
    for (s, _, l) in lines(text) {
        // leaving the section without having met the key: add it at the section's end
        if current == section && s != section && !done {
            out.push_str(&line);
            done = true;
        }
        current = s;
        if current == section && entry(l).is_some_and(|(k, _)| k == key) {
            if !done {
                out.push_str(&line);
                done = true;
            }
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    if !done {
        if current != section {
            out.push_str(&format!("\n[{section}]\n"));
        }
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INI: &str = "[alembic]\n# where\nscript_location = %(here)s/alembic\n\
                       sqlalchemy.url = postgresql://x/y\n\n[loggers]\nkeys = root\n";

    #[test]
    fn reads_a_key_of_its_section_with_its_line() {
        assert_eq!(
            value(INI, "alembic", "script_location"),
            Some(("%(here)s/alembic".into(), 3))
        );
        assert_eq!(value(INI, "alembic", "keys"), None);
        assert_eq!(value(INI, "loggers", "keys"), Some(("root".into(), 7)));
        assert_eq!(
            value("[alembic]\nurl: a=b\n", "alembic", "url"),
            Some(("a=b".into(), 2))
        );
    }

    #[test]
    fn sets_a_key_in_place_at_the_section_end_or_in_a_new_section() {
        let set = with_value(INI, "alembic", "sqlalchemy.url", "postgres://h/d?x=1%");
        assert_eq!(
            value(&set, "alembic", "sqlalchemy.url"),
            Some(("postgres://h/d?x=1%%".into(), 4))
        );
        assert_eq!(set.matches("sqlalchemy.url").count(), 1, "{set}");
        let added = with_value("[alembic]\na = 1\n[other]\nb = 2\n", "alembic", "url", "u");
        assert_eq!(added, "[alembic]\na = 1\nurl = u\n[other]\nb = 2\n");
        let at_end = with_value("[alembic]\na = 1\n", "alembic", "url", "u");
        assert_eq!(at_end, "[alembic]\na = 1\nurl = u\n");
        let new = with_value("[other]\nb = 2\n", "alembic", "url", "u");
        assert_eq!(new, "[other]\nb = 2\n\n[alembic]\nurl = u\n");
    }
}

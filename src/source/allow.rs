//! `-- migproof:allow <kind> <reason>` comments in migration files: a project accepting one
//! kind of finding where it stands, with the reason written down. Read here; which finding a
//! comment accepts is the command line's business (it knows the finding kinds).

use std::path::PathBuf;

use super::{MigrationSet, SourceError};

/// The marker after a comment opener (`--`, `#`, `<!--`).
const MARKER: &str = "migproof:allow";

/// One allow comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// The migration whose file holds it, as `Migration::id` names it.
    pub migration: String,
    pub path: PathBuf,
    pub line: usize,
    /// The finding kind as written (`data_lost`); the caller checks it names one.
    pub kind: String,
    pub reason: String,
}

/// Every allow comment in the files of `set`'s migrations, in order. A comment without a
/// kind or a reason is bad input, named by file and line.
pub fn read(set: &MigrationSet) -> Result<Vec<Allow>, SourceError> {
    let mut out = Vec::new();
    for m in set.migrations.iter().chain(&set.repeatable) {
        let mut seen = Vec::new();
        for script in std::iter::once(&m.up).chain(&m.down) {
            // A layout that keeps up and down in one file reads it once.
            if seen.contains(&&script.path) {
                continue;
            }
            seen.push(&script.path);
            for (i, text) in script.text.lines().enumerate() {
                let Some(rest) = allow_comment(text) else {
                    continue;
                };
                let rest = rest.trim().trim_end_matches("-->").trim();
                let (kind, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                if kind.is_empty() || reason.trim().is_empty() {
                    return Err(SourceError::Invalid {
                        path: script.path.clone(),
                        message: format!(
                            "line {}: `{MARKER}` needs a finding kind and a reason, as in \
                             `-- {MARKER} data_lost the column was never read`",
                            i + 1
                        ),
                    });
                }
                out.push(Allow {
                    migration: m.id(),
                    path: script.path.clone(),
                    line: i + 1,
                    kind: kind.to_owned(),
                    reason: reason.trim().to_owned(),
                });
            }
        }
    }
    Ok(out)
}

/// What follows the marker when `line` is a comment holding it: after `--` (SQL, and XML's
/// `<!--`) or `#` (YAML, Python), with only spaces between.
fn allow_comment(line: &str) -> Option<&str> {
    let at = line.find(MARKER)?;
    let before = line[..at].trim_end();
    (before.ends_with("--") || before.ends_with('#')).then(|| &line[at + MARKER.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_in_sql_yaml_python_and_xml_are_read() {
        assert_eq!(
            allow_comment("-- migproof:allow data_lost x"),
            Some(" data_lost x")
        );
        assert_eq!(allow_comment("  # migproof:allow a b"), Some(" a b"));
        assert_eq!(
            allow_comment("<!-- migproof:allow a b -->"),
            Some(" a b -->")
        );
        assert_eq!(allow_comment("SELECT 'migproof:allow a b';"), None);
    }
}

//! The Atlas layout: a migration directory of `<version>_<name>.sql` files and the `atlas.sum`
//! integrity file beside them, read and verified the way `atlas migrate apply` reads them
//! (ariga/atlas `sql/migrate/dir.go` and `lex.go`, `cmd/atlas/internal/cmdapi/migrate.go`).
//!
//! What Atlas does, and so what this reader describes:
//! - The migrations are the folder's own `*.sql` files (not its subfolders'), in the byte order
//!   of their names. The version is the name up to the first `_`, the description the rest
//!   without `.sql` (`LocalFile.Version`, `LocalFile.Desc`); the version keys Atlas's revision
//!   table, so two files with one version are refused.
//! - Before it runs anything, Atlas checks the folder against `atlas.sum` (`migrate.Validate`)
//!   and refuses a folder that does not match with "checksum mismatch", telling the user to run
//!   `atlas migrate hash`. The sum is computed by `NewHashFile`: one SHA-256 runs over the
//!   files in order, fed each file's name and then its bytes; after each file its running
//!   digest, base64 (standard, padded), is that file's line `<name> h1:<digest>`. A file whose
//!   first line holds `atlas:sum ignore` feeds only its name and gets no line. The first line of
//!   `atlas.sum`, `h1:<total>`, is the SHA-256 of every name and its `h1` value (without the
//!   `h1:`) in order, base64. Atlas compares only the totals; this reader recomputes every line
//!   to name the file that no longer matches (chained digests: the first differing line is the
//!   edited file).
//! - Each file runs in its own transaction by default (`--tx-mode file`). A file directive
//!   `atlas:txmode none` runs its statements one by one outside a transaction, `file` in one;
//!   `all` in a file, two txmode directives or an unknown mode are errors. File directives are
//!   the comment lines (`--` or `#`) that open the file *and are followed by a blank line*; the
//!   same line directly above a statement is only that statement's comment, which Atlas
//!   ignores (a note says so). `--tx-mode all` and `none` on the command line or in
//!   `atlas.hcl` are not read: the default is assumed.
//! - Statements are split at `;` outside strings, quoted identifiers, dollar quotes, comments,
//!   parentheses and `BEGIN ATOMIC ... END` bodies, and each is sent on its own. A first line
//!   `-- atlas:delimiter <d>` replaces `;` by `<d>` (`\n`, `\r` and `\t` unescaped) for the
//!   whole file and is not sent; migproof matches `<d>` as Liquibase's `endDelimiter` is matched
//!   (case-insensitively, a word as a whole word), where Atlas compares bytes.
//! - Files marked `-- atlas:checkpoint` are snapshots Atlas runs only on an empty database, in
//!   place of every file before them; a database that has history skips them. migproof runs
//!   the history (every file that is not a checkpoint) and says so in a note.
//! - Other directives (`-- atlas:nolint`, `-- atlas:assert`, ...) are comments to the server.
//! - There is no down: Atlas moves back by planning a new migration (`migrate down` computes
//!   one from the dev database), so every migration is forward-only.

use super::{Detect, Layout};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::Digest as _;

use super::split::{
    is_non_transactional, line_of, split, split_by, SplitError, Statement, Terminator,
};
use super::{
    list_migrations, read_text, Block, Chunk, Format, Migration, MigrationSet, Script, SourceError,
    Want,
};

/// Atlas's integrity file (`migrate.HashFileName`).
const SUM_FILE: &str = "atlas.sum";

/// The advice every checksum error ends with, in Atlas's words.
const REHASH: &str = "Atlas refuses the whole directory with a checksum error (\"checksum \
                      mismatch\") until `atlas.sum` matches it again: if the change is intended, \
                      run `atlas migrate hash`; if the migration already ran on a database, \
                      restore it and put the change in a new migration instead";

fn is_sql(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".sql"))
}

/// True when the folder holds `atlas.sum`, unless its files are `.up.sql` / `.down.sql` pairs:
/// Atlas also hashes golang-migrate-style folders (`?format=golang-migrate`), which the
/// golang-migrate and sqlx readers read.
pub fn matches(entries: &[PathBuf]) -> bool {
    let has_sum = entries
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n == SUM_FILE) && p.is_file());
    let paired = entries.iter().any(|p| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        name.ends_with(".up.sql") || name.ends_with(".down.sql")
    });
    has_sum && !paired
}

/// One `.sql` file of the directory, as Atlas holds it (`LocalFile`).
struct File {
    name: String,
    path: PathBuf,
    /// The bytes as on disk: what the sum is computed over.
    bytes: Vec<u8>,
}
/// The atlas layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Atlas,
    name: "atlas",
    load,
    detect: Detect::OwnFile(matches),
    history_tables: &[],
    marks: ("Atlas", &[]),
    placeholders: false,
};

/// Reads `dir` as an Atlas migration directory, verifying `atlas.sum` first.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let mut files = Vec::new();
    for path in list_migrations(dir, Want::File, is_sql)? {
        if !is_sql(&path) || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let bytes = std::fs::read(&path).map_err(|source| SourceError::Io {
            path: path.clone(),
            source,
        })?;
        files.push(File { name, path, bytes });
    }
    // Go compares strings byte by byte.
    files.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    if files.is_empty() {
        let hint = " (Atlas migrations are `<version>_<name>.sql` files beside `atlas.sum`)";
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint: hint.to_owned(),
        });
    }
    verify_sum(dir, &files)?;

    let mut notes = Vec::new();
    let mut migrations = Vec::new();
    let mut by_version: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut checkpoints = Vec::new();
    for file in &files {
        let text = read_text(&file.path)?;
        let directives = file_directives(&text);
        if directives.iter().any(|(name, _)| name == "checkpoint") {
            checkpoints.push(file.name.clone());
            continue;
        }
        let (version, description) = parse_name(&file.name);
        if let Some(first) = by_version.get(&version) {
            return Err(SourceError::Duplicate {
                version,
                first: first.clone(),
                second: file.path.clone(),
            });
        }
        by_version.insert(version.clone(), file.path.clone());
        let up = script(&file.path, text, &directives, &mut notes)?;
        migrations.push(Migration {
            version,
            description,
            up,
            down: None,
        });
    }
    if !checkpoints.is_empty() {
        let names: Vec<String> = checkpoints.iter().map(|c| format!("`{c}`")).collect();
        notes.push(format!(
            "not run: {}; Atlas applies a checkpoint file (`-- atlas:checkpoint`) only to an \
             empty database, in place of the files before it, and skips it on a database that \
             has history, which is what migproof runs",
            names.join(", ")
        ));
    }
    if migrations.is_empty() {
        let hint = " (only checkpoint files, which Atlas runs on empty databases only)";
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint: hint.to_owned(),
        });
    }
    let mut set = MigrationSet::new(Format::Atlas, dir, migrations);
    set.notes = notes;
    set.forward_only = true;
    Ok(set)
}

/// `<version>_<description>.sql` taken apart as `LocalFile.Version` and `Desc` do; a name with
/// nothing before its first `_` keeps the whole stem as its version, so that its id is still
/// its name.
fn parse_name(name: &str) -> (String, String) {
    let stem = name.strip_suffix(".sql").unwrap_or(name);
    match stem.split_once('_') {
        Some((version, description)) if !version.is_empty() => {
            (version.to_owned(), description.to_owned())
        }
        _ if !stem.is_empty() => (stem.to_owned(), String::new()),
        _ => (name.to_owned(), String::new()),
    }
}

/// How a file's statements reach the server.
fn script(
    path: &Path,
    text: String,
    directives: &[(String, String)],
    notes: &mut Vec<String>,
) -> Result<Script, SourceError> {
    let invalid = |message: String| SourceError::Invalid {
        path: path.to_owned(),
        message,
    };
    let modes: Vec<&str> = directives
        .iter()
        .filter(|(name, _)| name == "txmode")
        .map(|(_, value)| value.as_str())
        .collect();
    let transactional = match modes.as_slice() {
        [] | ["file"] => true,
        ["none"] => false,
        ["all"] => {
            return Err(invalid(
                "`atlas:txmode all` is not allowed in a file (Atlas refuses it and asks for \
                 `file`); `all` is a command-line mode"
                    .to_owned(),
            ))
        }
        [other] => {
            return Err(invalid(format!(
                "unknown `atlas:txmode {other}`; Atlas knows `none` and `file`"
            )))
        }
        many => {
            return Err(invalid(format!(
                "holds {} `atlas:txmode` directives ({}); Atlas refuses a file with more than one",
                many.len(),
                many.join(", ")
            )))
        }
    };
    if modes.is_empty() {
        if let Some(line) = stray_txmode(&text) {
            notes.push(format!(
                "`{}` line {line} looks like an `atlas:txmode` directive but is not one: file \
                 directives are the comment lines at the very top of the file followed by a \
                 blank line, so Atlas runs this file in a transaction, and so does migproof",
                path.display()
            ));
        }
    }
    let statements = statements(&text).map_err(invalid)?;
    if transactional {
        if let Some(st) = statements.iter().find(|s| is_non_transactional(&s.sql)) {
            notes.push(format!(
                "`{}` line {}: PostgreSQL refuses this statement inside a transaction, and Atlas \
                 runs the file in one; put `-- atlas:txmode none` and a blank line at the top \
                 of the file",
                path.display(),
                line_of(&text, st.offset)
            ));
        }
    }
    let chunks = statements
        .into_iter()
        .map(|s| Chunk {
            offset: s.offset,
            sql: s.sql,
        })
        .collect();
    Ok(Script {
        path: path.to_owned(),
        text,
        blocks: vec![Block {
            transactional,
            chunks,
        }],
        command: None,
    })
}

/// The file's statements, with offsets into `text`, split as Atlas's scanner splits them.
fn statements(text: &str) -> Result<Vec<Statement>, String> {
    let Some(delimiter) = directive(text, "delimiter", Some("-- ")) else {
        return split(text).map_err(|e| e.to_string());
    };
    let delimiter = delimiter
        .replace(r"\n", "\n")
        .replace(r"\r", "\r")
        .replace(r"\t", "\t");
    if delimiter.is_empty() {
        return Err("line 1: `atlas:delimiter` gives no delimiter (Atlas: empty delimiter)".into());
    }
    let Some(newline) = text.find('\n') else {
        return Err(format!(
            "line 1: nothing follows `atlas:delimiter {delimiter}` (Atlas: no input found after \
             delimiter)"
        ));
    };
    let start = newline + 1;
    let rest = &text[start..];
    // The splitter counts lines from the line after the directive.
    let statements = split_by(rest, &Terminator::Custom(delimiter)).map_err(|e| match e {
        SplitError::MetaCommand { line, command } => SplitError::MetaCommand {
            line: line + 1,
            command,
        },
        SplitError::Unterminated { line, what } => SplitError::Unterminated {
            line: line + 1,
            what,
        },
    });
    let statements = statements.map_err(|e| e.to_string())?;
    Ok(statements
        .into_iter()
        .map(|s| Statement {
            offset: s.offset + start,
            sql: s.sql,
        })
        .collect())
}

/// A directive at the start of `content` as Atlas's `directive` reads it, with the regex
/// `^([ -~]*)atlas:(\w+)(?: +([ -~]*))*`: on the first line only (printable ASCII), the
/// greedy prefix picking the last `atlas:` followed by a word. Prefix, name and value.
fn parse_directive(content: &str) -> Option<(&str, &str, &str)> {
    let run_len = content
        .bytes()
        .position(|b| !(b' '..=b'~').contains(&b))
        .unwrap_or(content.len());
    let run = &content[..run_len];
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    run.rmatch_indices("atlas:").find_map(|(at, _)| {
        let after = &run[at + "atlas:".len()..];
        let len = after.bytes().take_while(|&b| is_word(b)).count();
        let value = match after[len..].strip_prefix(' ') {
            Some(spaced) => spaced.trim_start_matches(' '),
            None => "",
        };
        (len > 0).then(|| (&run[..at], &after[..len], value))
    })
}

/// The value of directive `name` at the start of `content`; `prefix`, when given, must be
/// what precedes `atlas:` exactly (`-- ` for the delimiter).
fn directive(content: &str, name: &str, prefix: Option<&str>) -> Option<String> {
    let (found_prefix, found, value) = parse_directive(content)?;
    (found == name && prefix.is_none_or(|p| p == found_prefix)).then(|| value.to_owned())
}

/// The file directives (`LocalFile.comments` then `directive`): the comment lines opening the
/// file, each trimmed, counted only when a blank line follows them. Name and value pairs.
fn file_directives(text: &str) -> Vec<(String, String)> {
    let mut comments = Vec::new();
    let mut content = text;
    while content.starts_with('#') || content.starts_with("--") {
        match content.find('\n') {
            None => {
                // A file of comments only.
                comments.push(content);
                content = "";
                break;
            }
            Some(end) => {
                comments.push(content[..end].trim());
                content = &content[end + 1..];
            }
        }
    }
    if !content.starts_with('\n') {
        return Vec::new();
    }
    comments
        .into_iter()
        .filter_map(parse_directive)
        .map(|(_, name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The first line that looks like a txmode directive although it is not a file directive.
fn stray_txmode(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim();
            (l.starts_with("--") || l.starts_with('#')) && l.contains("atlas:txmode")
        })
        .map(|i| i + 1)
}

/// A `name h1:<hash>` line of `atlas.sum` (`HashFile`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sum {
    name: String,
    hash: String,
}

/// The sum file of `files` as `NewHashFile` computes it.
fn hash_file<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<Sum> {
    let mut hasher = sha2::Sha256::new();
    let mut sums = Vec::new();
    for (name, bytes) in files {
        hasher.update(name.as_bytes());
        // The directive is matched on the first line's printable ASCII, valid UTF-8 whatever
        // the rest of the file holds.
        let head = bytes
            .iter()
            .position(|b| !(b' '..=b'~').contains(b))
            .unwrap_or(bytes.len());
        let head = std::str::from_utf8(&bytes[..head]).unwrap_or_default();
        let ignored = directive(head, "sum", None).is_some_and(|mode| mode == "ignore");
        if ignored {
            continue;
        }
        hasher.update(bytes);
        sums.push(Sum {
            name: name.to_owned(),
            hash: base64(&hasher.clone().finalize()),
        });
    }
    sums
}

/// The total on the first line of `atlas.sum` (`HashFile.Sum`).
fn total(sums: &[Sum]) -> String {
    let mut hasher = sha2::Sha256::new();
    for sum in sums {
        hasher.update(sum.name.as_bytes());
        hasher.update(sum.hash.as_bytes());
    }
    base64(&hasher.finalize())
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `atlas.sum` as written: its total and its lines, each with its 1-based line number.
struct SumFile {
    total: String,
    lines: Vec<(usize, Sum)>,
}

/// Parses `atlas.sum` as `HashFile.UnmarshalText` does (Go's line scanner: `\n` ends a line,
/// a `\r` before it is dropped, a last line without `\n` counts).
fn parse_sum(path: &Path, text: &str) -> Result<SumFile, SourceError> {
    let mut lines = text.split_inclusive('\n').map(|l| {
        let l = l.strip_suffix('\n').unwrap_or(l);
        l.strip_suffix('\r').unwrap_or(l)
    });
    let first = lines.next().unwrap_or_default();
    let total = first.strip_prefix("h1:").unwrap_or(first).to_owned();
    let mut sums = Vec::new();
    for (number, line) in (2..).zip(lines) {
        let Some((name, hash)) = line.split_once("h1:") else {
            return Err(SourceError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "line {number} is not `<file> h1:<hash>`; Atlas refuses the directory \
                     (\"checksum file format invalid\"): run `atlas migrate hash` to rewrite it"
                ),
            });
        };
        sums.push((
            number,
            Sum {
                name: name.trim().to_owned(),
                hash: hash.to_owned(),
            },
        ));
    }
    Ok(SumFile { total, lines: sums })
}

/// Fails, naming the file to blame, unless `atlas.sum` is the sum of `files`.
fn verify_sum(dir: &Path, files: &[File]) -> Result<(), SourceError> {
    let sum_path = dir.join(SUM_FILE);
    if !sum_path.is_file() {
        return Err(SourceError::Invalid {
            path: sum_path,
            message: "is missing; Atlas refuses a migration directory without it (\"checksum \
                      file not found\"): run `atlas migrate hash` to write it"
                .to_owned(),
        });
    }
    let written = parse_sum(&sum_path, &read_text(&sum_path)?)?;
    let sums: Vec<Sum> = written.lines.iter().map(|(_, s)| s.clone()).collect();
    if written.total != total(&sums) {
        return Err(SourceError::Invalid {
            path: sum_path,
            message: format!(
                "line 1: the total `h1:{}` is not the hash of the lines below it, so the file \
                 was edited by hand or merged; {REHASH}",
                written.total
            ),
        });
    }
    let computed = hash_file(files.iter().map(|f| (f.name.as_str(), f.bytes.as_slice())));
    if total(&computed) == written.total {
        return Ok(());
    }
    let mismatch = |path: PathBuf, what: String| SourceError::Invalid {
        path,
        message: format!("{what}; {REHASH}"),
    };
    let listed: BTreeSet<&str> = sums.iter().map(|s| s.name.as_str()).collect();
    let present: BTreeSet<&str> = computed.iter().map(|s| s.name.as_str()).collect();
    if let Some(file) = files
        .iter()
        .find(|f| present.contains(f.name.as_str()) && !listed.contains(f.name.as_str()))
    {
        return Err(mismatch(
            file.path.clone(),
            "is not listed in `atlas.sum`: it was added (or renamed) after the sum was written"
                .to_owned(),
        ));
    }
    if let Some((line, sum)) = written
        .lines
        .iter()
        .find(|(_, s)| !present.contains(s.name.as_str()))
    {
        return Err(mismatch(
            sum_path.clone(),
            format!(
                "line {line} lists `{}`, which is not a migration in the folder: it was deleted \
                 or renamed after the sum was written",
                sum.name
            ),
        ));
    }
    // The digests chain, so the first line that differs names the edited file.
    for (i, sum) in computed.iter().enumerate() {
        let Some((line, recorded)) = written.lines.get(i) else {
            break;
        };
        if recorded.name != sum.name {
            return Err(mismatch(
                sum_path.clone(),
                format!(
                    "line {line} lists `{}` where Atlas, sorting the files by name, expects \
                     `{}`",
                    recorded.name, sum.name
                ),
            ));
        }
        if recorded.hash != sum.hash {
            let path = files
                .iter()
                .find(|f| f.name == sum.name)
                .map(|f| f.path.clone())
                .unwrap_or_else(|| dir.join(&sum.name));
            return Err(mismatch(
                path,
                format!(
                    "was edited after `atlas.sum` was written: its hash is now `h1:{}`, line \
                     {line} of `atlas.sum` says `h1:{}`",
                    sum.hash, recorded.hash
                ),
            ));
        }
    }
    Err(mismatch(
        sum_path,
        "does not match the migration files".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::list_dir;

    /// Writes `files` and an `atlas.sum` computed by this module's algorithm.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        let mut sorted: Vec<&(&str, &str)> =
            files.iter().filter(|(n, _)| n.ends_with(".sql")).collect();
        sorted.sort_by_key(|(name, _)| *name);
        let sums = hash_file(sorted.iter().map(|(n, b)| (*n, b.as_bytes())));
        std::fs::write(dir.path().join(SUM_FILE), render(&sums)).unwrap();
        dir
    }

    /// `HashFile.MarshalText`.
    fn render(sums: &[Sum]) -> String {
        let mut out = format!("h1:{}\n", total(sums));
        for s in sums {
            out.push_str(&format!("{} h1:{}\n", s.name, s.hash));
        }
        out
    }

    fn error(dir: &tempfile::TempDir) -> String {
        load(dir.path()).unwrap_err().to_string()
    }

    /// `sql/migrate/testdata/partial-checkpoint` of ariga/atlas: six files and the `atlas.sum`
    /// Atlas wrote for them.
    const ATLAS_VECTOR: &[(&str, &str)] = &[
        ("1_first.sql", "create table `tbl_1` (`col` int);\n"),
        ("2_second.sql", "create table `tbl_2` (`col` int);\n"),
        (
            "3_checkpoint.sql",
            "-- atlas:checkpoint\n\nCREATE TABLE `tbl_1` (`col` int);\nCREATE TABLE `tbl_2` \
             (`col` int);\n",
        ),
        ("4_fourth.sql", "create table `tbl_3` (`col` int);\n"),
        (
            "5_checkpoint.sql",
            "-- atlas:checkpoint\n\nCREATE TABLE `tbl_1` (`col` int);\nCREATE TABLE `tbl_2` \
             (`col` int);\ncreate table `tbl_3` (`col` int);\n",
        ),
        ("6_sixth.sql", "CREATE TABLE `tbl_4` (`col` int);\n"),
    ];
    const ATLAS_SUM: &str = "h1:POfbsH2G2GIXAZQ2CdPa5ufTxcLpcnperz/gX0Vw6Uk=\n\
        1_first.sql h1:uJ2MyyeTqXx4rCqtRMQAvRrfsvdwmvsZ3LcadVvCdOc=\n\
        2_second.sql h1:TLO00GtsqSi8o0ySoaofBqxemrElL8fHOs3IRnqYvB8=\n\
        3_checkpoint.sql h1:LR4UjDYVtrRuHLN5GQwLAYnXrSf/iO70psY8hTmLmjw=\n\
        4_fourth.sql h1:QvaneqKxg+3R+zNzCP/wW43XkECdHkUwEpxJKPICEP8=\n\
        5_checkpoint.sql h1:syyuaJb/hoMRO7MJlv4AMhYqMCoSb8ZgcHENO8RqN3I=\n\
        6_sixth.sql h1:JNhpyBtH7XKqGBNRHQ+AvM9IDpO08C3G/swWPHfLkfw=\n";

    #[test]
    fn sum_matches_the_one_atlas_wrote() {
        let sums = hash_file(ATLAS_VECTOR.iter().map(|(n, b)| (*n, b.as_bytes())));
        assert_eq!(render(&sums), ATLAS_SUM);
        // Atlas's own folder, its own sum file: loads, checkpoints left out with a note.
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in ATLAS_VECTOR {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        std::fs::write(dir.path().join(SUM_FILE), ATLAS_SUM).unwrap();
        let set = load(dir.path()).unwrap();
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["1_first", "2_second", "4_fourth", "6_sixth"]);
        assert!(
            set.notes[0].contains("not run: `3_checkpoint.sql`, `5_checkpoint.sql`;"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn total_line_matches_another_atlas_sum() {
        // `sql/migrate/testdata/migrate/sub/atlas.sum` of ariga/atlas: its first line is the
        // hash of the lines below it.
        let text = "h1:VpH77zWOBMwX5QhvnQo0XQvXCrOYZg4h1o0XlJTQnl0=\n\
            1.a_sub.up.sql h1:nXyZR020M/mH7LxkoTkJr7BcQkipVg90imQ9I4595dw=\n\
            2.10.x-20_description.sql h1:wQB3Vh3PHVXQg9OD3Gn7TBxbZN3r1Qb7TtAE1g3q9mQ=\n\
            3_partly.sql h1:lHlMz6mEvBfvjry5lFXjs2vi6Et9xb9CWicaOXD42Qc=\n";
        let parsed = parse_sum(Path::new("atlas.sum"), text).unwrap();
        let sums: Vec<Sum> = parsed.lines.into_iter().map(|(_, s)| s).collect();
        assert_eq!(parsed.total, total(&sums));
        // CRLF line ends are read as Go's scanner reads them.
        let crlf = text.replace('\n', "\r\n");
        let parsed = parse_sum(Path::new("atlas.sum"), &crlf).unwrap();
        assert_eq!(parsed.lines[2].1.hash, sums[2].hash);
    }

    #[test]
    fn orders_by_name_and_sends_statements_in_one_transaction() {
        let dir = folder(&[
            (
                "20240302000000_b.sql",
                "-- Create \"b\" table\nCREATE TABLE b (x int);\nINSERT INTO b VALUES (1);\n",
            ),
            (
                "20240301000000_a.sql",
                "CREATE TABLE a (s text DEFAULT ';');\n",
            ),
            ("README.md", "not a migration"),
        ]);
        let set = load(dir.path()).unwrap();
        assert!(set.forward_only);
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["20240301000000_a", "20240302000000_b"]);
        let b = &set.migrations[1];
        assert_eq!(
            (b.version.as_str(), b.description.as_str()),
            ("20240302000000", "b")
        );
        assert!(b.down.is_none());
        assert_eq!(b.up.blocks.len(), 1);
        assert!(b.up.blocks[0].transactional);
        let chunks = &b.up.blocks[0].chunks;
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].sql, "INSERT INTO b VALUES (1)");
        assert_eq!(b.up.line_of(chunks[1].offset), 3);
        assert_eq!(set.migrations[0].up.blocks[0].chunks.len(), 1);
    }

    #[test]
    fn txmode_none_runs_each_statement_on_its_own() {
        let dir = folder(&[(
            "1_idx.sql",
            "-- atlas:txmode none\n\nCREATE INDEX CONCURRENTLY i ON t (c);\nSELECT 1;\n",
        )]);
        let set = load(dir.path()).unwrap();
        let block = &set.migrations[0].up.blocks[0];
        assert!(!block.transactional);
        assert_eq!(block.chunks.len(), 2);
        assert!(set.notes.is_empty(), "{:?}", set.notes);
    }

    #[test]
    fn txmode_without_a_blank_line_is_a_statement_comment() {
        let dir = folder(&[(
            "1_idx.sql",
            "-- atlas:txmode none\nCREATE INDEX CONCURRENTLY i ON t (c);\n",
        )]);
        let set = load(dir.path()).unwrap();
        assert!(set.migrations[0].up.blocks[0].transactional);
        assert!(
            set.notes[0].contains("line 1 looks like"),
            "{:?}",
            set.notes
        );
        assert!(
            set.notes[1].contains("line 2: PostgreSQL refuses"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn bad_txmodes_are_refused() {
        for (body, want) in [
            ("-- atlas:txmode all\n\nSELECT 1;", "not allowed in a file"),
            (
                "-- atlas:txmode some\n\nSELECT 1;",
                "unknown `atlas:txmode some`",
            ),
            (
                "-- atlas:txmode none\n-- atlas:txmode file\n\nSELECT 1;",
                "2 `atlas:txmode` directives",
            ),
        ] {
            let err = error(&folder(&[("1_a.sql", body)]));
            assert!(err.contains("1_a.sql") && err.contains(want), "{err}");
        }
    }

    #[test]
    fn delimiter_directive_replaces_the_semicolon() {
        let body = "-- atlas:delimiter -- end\nCREATE TABLE t (a int); INSERT INTO t VALUES (1);\n\
                    -- end\nSELECT 2\n-- end\n";
        let dir = folder(&[("1_a.sql", body)]);
        let set = load(dir.path()).unwrap();
        let chunks = &set.migrations[0].up.blocks[0].chunks;
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            chunks[0].sql,
            "CREATE TABLE t (a int); INSERT INTO t VALUES (1);"
        );
        assert_eq!(set.migrations[0].up.line_of(chunks[1].offset), 4);
        let err = error(&folder(&[("1_a.sql", "-- atlas:delimiter -- end")]));
        assert!(err.contains("nothing follows"), "{err}");
    }

    #[test]
    fn directive_reads_as_atlas_regex_does() {
        assert_eq!(
            directive("-- atlas:txmode none", "txmode", None).as_deref(),
            Some("none")
        );
        assert_eq!(
            directive("-- atlas:txmode", "txmode", None).as_deref(),
            Some("")
        );
        assert_eq!(
            directive("-- atlas:delimiter -- end\nx", "delimiter", Some("-- ")).as_deref(),
            Some("-- end")
        );
        assert_eq!(
            directive("--atlas:delimiter $$", "delimiter", Some("-- ")),
            None
        );
        assert_eq!(
            directive("-- atlas:sum ignore", "sum", None).as_deref(),
            Some("ignore")
        );
        // The greedy prefix takes the last `atlas:` of the line.
        assert_eq!(
            directive("-- atlas:txmode none atlas:sum x", "txmode", None),
            None
        );
        assert_eq!(directive("\n-- atlas:sum ignore", "sum", None), None);
    }

    #[test]
    fn sum_ignore_feeds_the_name_only() {
        let files: &[(&str, &[u8])] = &[
            ("1_a.sql", b"select 1;"),
            ("2_b.sql", b"-- atlas:sum ignore\nselect 2;"),
            ("3_c.sql", b"select 3;"),
        ];
        let sums = hash_file(files.iter().copied());
        assert_eq!(sums.len(), 2);
        let mut h = sha2::Sha256::new();
        h.update(b"1_a.sqlselect 1;2_b.sql3_c.sqlselect 3;");
        assert_eq!(sums[1].hash, base64(&h.finalize()));
    }

    #[test]
    fn an_edited_file_is_named() {
        let dir = folder(&[
            ("1_a.sql", "CREATE TABLE a (x int);\n"),
            ("2_b.sql", "CREATE TABLE b (x int);\n"),
            ("3_c.sql", "CREATE TABLE c (x int);\n"),
        ]);
        std::fs::write(dir.path().join("2_b.sql"), "CREATE TABLE b (y int);\n").unwrap();
        let err = error(&dir);
        assert!(
            err.contains("2_b.sql`: was edited after `atlas.sum`")
                && err.contains("line 3 of `atlas.sum`")
                && err.contains("checksum mismatch")
                && err.contains("atlas migrate hash"),
            "{err}"
        );
    }

    #[test]
    fn added_and_removed_files_are_named() {
        let dir = folder(&[("1_a.sql", "SELECT 1;\n")]);
        std::fs::write(dir.path().join("2_b.sql"), "SELECT 2;\n").unwrap();
        let err = error(&dir);
        assert!(err.contains("2_b.sql`: is not listed"), "{err}");

        let dir = folder(&[("1_a.sql", "SELECT 1;\n"), ("2_b.sql", "SELECT 2;\n")]);
        std::fs::remove_file(dir.path().join("2_b.sql")).unwrap();
        let err = error(&dir);
        assert!(
            err.contains("atlas.sum`: line 3 lists `2_b.sql`, which is not"),
            "{err}"
        );
    }

    #[test]
    fn a_hand_edited_sum_file_is_refused() {
        let dir = folder(&[("1_a.sql", "SELECT 1;\n")]);
        let path = dir.path().join(SUM_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("1_a.sql h1:", "1_a.sql h1:x")).unwrap();
        let err = error(&dir);
        assert!(err.contains("line 1: the total"), "{err}");
        std::fs::write(&path, format!("{text}\n")).unwrap();
        let err = error(&dir);
        assert!(err.contains("line 3 is not `<file> h1:<hash>`"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("atlas.sum`: is missing"), "{err}");
    }

    #[test]
    fn the_sum_covers_the_bytes_on_disk() {
        // A BOM is removed from the text sent, but Atlas hashes it.
        let dir = folder(&[("1_a.sql", "\u{feff}SELECT 1;\n")]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.migrations[0].up.text, "SELECT 1;\n");
    }

    #[test]
    fn same_version_twice_is_a_duplicate() {
        let dir = folder(&[("1_a.sql", "SELECT 1;"), ("1_b.sql", "SELECT 2;")]);
        let err = error(&dir);
        assert!(err.contains("duplicate migration version 1:"), "{err}");
    }

    #[test]
    fn matches_needs_the_sum_file_and_no_paired_files() {
        let dir = folder(&[("1_a.sql", "SELECT 1;")]);
        assert!(matches(&list_dir(dir.path()).unwrap()));
        std::fs::write(dir.path().join("1_a.down.sql"), "SELECT 1;").unwrap();
        assert!(!matches(&list_dir(dir.path()).unwrap()));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1_a.sql"), "SELECT 1;").unwrap();
        assert!(!matches(&list_dir(dir.path()).unwrap()));
    }

    #[test]
    fn names_without_a_version_keep_their_stem() {
        assert_eq!(parse_name("1.sql"), ("1".into(), String::new()));
        assert_eq!(parse_name("_x.sql"), ("_x".into(), String::new()));
        assert_eq!(parse_name(".sql"), (".sql".into(), String::new()));
        assert_eq!(parse_name("2_a_b.sql"), ("2".into(), "a_b".into()));
    }

    #[test]
    fn no_panic_on_odd_input() {
        for body in [
            "",
            "--",
            "-- atlas:",
            "-- atlas:delimiter",
            "-- atlas:delimiter \n",
            "-- atlas:txmode none",
            "# atlas:txmode none\n",
            "-- atlas:delimiter é\nx é y",
            "'unterminated",
            "\n\n\n",
        ] {
            let _ = load(folder(&[("1_a.sql", body)]).path());
        }
        for sum in ["", "h1:", "\n\n", "x", "h1:x\n1_a.sql"] {
            let dir = folder(&[("1_a.sql", "SELECT 1;")]);
            std::fs::write(dir.path().join(SUM_FILE), sum).unwrap();
            let _ = load(dir.path());
        }
    }
}

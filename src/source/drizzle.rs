//! The Drizzle layout (drizzle-kit): a migrations folder holding `meta/_journal.json` and one
//! `<tag>.sql` file per journal entry, read the way drizzle-orm's `migrate()` reads and runs
//! them on PostgreSQL (drizzle-orm `src/migrator.ts`, `readMigrationFiles`, and
//! `src/pg-core/dialect.ts`, `PgDialect.migrate`).
//!
//! What drizzle does, and so what this reader describes:
//! - The journal decides everything: its `entries` run in array order (not by file name, and
//!   not by `idx`), each from `<folder>/<tag>.sql`. An entry whose file is missing makes
//!   `migrate()` throw "No file ... found", so it is refused here, naming the journal line. A
//!   `.sql` file with no entry is never read by drizzle, which says nothing; migproof does not
//!   run it either, and says so in a note (the project works as it is, but a hand-written
//!   migration left out of the journal is usually a mistake: `drizzle-kit generate --custom`
//!   makes the entry).
//! - A file's CRLF line ends become LF, then the text is cut at every `--> statement-breakpoint`
//!   (whatever the entry's `breakpoints` says: `readMigrationFiles` cuts regardless) and each
//!   piece is sent as one query, exactly as cut, marker lines excluded. [`Script::text`] holds
//!   the LF text, which has the file's lines.
//! - `migrate()` runs every pending migration inside one transaction. migproof applies each
//!   migration as a step of its own, so each runs in a transaction of its own; what PostgreSQL
//!   refuses inside a transaction (`CREATE INDEX CONCURRENTLY`) fails under both, and gets a
//!   note.
//! - A migration is pending when its `when` is greater than the `created_at` of the last one
//!   the database recorded. An entry whose `when` is not greater than an earlier entry's is
//!   therefore skipped for good on every database that already has that earlier one (a
//!   migration merged from an older branch): migproof runs it, as a new database would, and
//!   says so in a note.
//! - A journal that is not JSON of that shape is refused with its line and column; a journal
//!   written for another dialect (`mysql`, `sqlite`) is refused, PostgreSQL being what
//!   migproof runs. The snapshots beside the journal (`meta/0000_snapshot.json`) are not read.
//!   drizzle-kit 1.0's folder-per-migration layout, which has no journal, is not read.
//! - There is no down: drizzle migrations are forward-only.

use super::{Detect, Layout};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::split::{is_non_transactional, line_of, split};
use super::{
    list_dir, read_text, Block, Chunk, Format, Migration, MigrationSet, Script, SourceError,
};

/// The marker drizzle-kit writes between statements.
const BREAKPOINT: &str = "--> statement-breakpoint";

fn journal_path(dir: &Path) -> PathBuf {
    dir.join("meta").join("_journal.json")
}

/// True when the folder holds `meta/_journal.json`.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n == "meta") && p.join("_journal.json").is_file())
}

/// `meta/_journal.json`, the fields drizzle reads.
#[derive(serde::Deserialize)]
struct Journal {
    #[serde(default)]
    dialect: Option<String>,
    entries: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    /// Milliseconds since the epoch when drizzle-kit generated the migration.
    when: f64,
    tag: String,
}
/// The drizzle layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Drizzle,
    name: "drizzle",
    load,
    detect: Detect::OwnFile(matches),
    history_tables: &[],
    marks: ("Drizzle", &["--> statement-breakpoint"]),
    placeholders: false,
};

/// Reads `dir` as a drizzle-kit migrations folder.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let entries = list_dir(dir)?;
    let path = journal_path(dir);
    if !path.is_file() {
        return Err(SourceError::Invalid {
            path,
            message: "is missing; drizzle's migrate() refuses a folder without it (\"Can't find \
                      meta/_journal.json file\"): run `drizzle-kit generate`, or pass the \
                      folder drizzle.config's `out` names"
                .to_owned(),
        });
    }
    let text = read_text(&path)?;
    let journal: Journal = serde_json::from_str(&text).map_err(|e| {
        let message = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        SourceError::Invalid {
            path: path.clone(),
            message: format!(
                "line {} column {}: {}; drizzle's migrate() needs the journal drizzle-kit \
                 writes, an `entries` list whose items give `tag` and `when`",
                e.line(),
                e.column(),
                message.strip_suffix(&suffix).unwrap_or(&message)
            ),
        }
    })?;
    if let Some(dialect) = journal.dialect.as_deref() {
        if !matches!(dialect, "postgresql" | "pg") {
            let line = text.find("\"dialect\"").map_or(1, |at| line_of(&text, at));
            return Err(SourceError::Invalid {
                path,
                message: format!(
                    "line {line}: the migrations were generated for dialect `{dialect}`, not \
                     PostgreSQL, which is what migproof runs"
                ),
            });
        }
    }
    // The n-th `"tag"` key is the n-th entry's, for messages.
    let tag_lines: Vec<usize> = text
        .match_indices("\"tag\"")
        .map(|(at, _)| line_of(&text, at))
        .collect();
    let entry_line = |i: usize| tag_lines.get(i).copied().unwrap_or(1);

    let tags: Vec<&str> = journal.entries.iter().map(|e| e.tag.as_str()).collect();
    let names = versions(&tags);
    let mut notes = Vec::new();
    let mut migrations = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut latest: Option<(f64, &str)> = None;
    for (i, (entry, (version, description))) in journal.entries.iter().zip(names).enumerate() {
        if let Some(first) = seen.insert(&entry.tag, i) {
            return Err(SourceError::Invalid {
                path,
                message: format!(
                    "line {}: entry `{}` appears twice (also at line {}); drizzle would run its \
                     file twice",
                    entry_line(i),
                    entry.tag,
                    entry_line(first)
                ),
            });
        }
        let file = dir.join(format!("{}.sql", entry.tag));
        if !file.is_file() {
            return Err(SourceError::Invalid {
                path,
                message: format!(
                    "line {}: entry `{}` has no file `{}`; drizzle's migrate() fails on it (\"No \
                     file ... found\"): restore the file, or remove the entry with \
                     `drizzle-kit drop`",
                    entry_line(i),
                    entry.tag,
                    file.display()
                ),
            });
        }
        match latest {
            Some((when, tag)) if entry.when <= when => notes.push(format!(
                "`{}` line {}: entry `{}` has `when` {} but the earlier `{tag}` has {}; \
                 drizzle runs a migration only when its `when` is later than the last one a \
                 database recorded, so databases that already have `{tag}` skip `{}` for good \
                 (migproof runs it, as a new database would)",
                path.display(),
                entry_line(i),
                entry.tag,
                entry.when,
                when,
                entry.tag
            )),
            _ => latest = Some((entry.when, &entry.tag)),
        }
        let up = script(&file, &mut notes)?;
        migrations.push(Migration {
            version,
            description,
            up,
            down: None,
        });
    }
    let journaled: BTreeSet<PathBuf> = migrations.iter().map(|m| m.up.path.clone()).collect();
    for entry in &entries {
        let sql = entry.extension().is_some_and(|e| e == "sql") && entry.is_file();
        if sql && !journaled.contains(entry) {
            notes.push(format!(
                "`{}` is not in `meta/_journal.json`, so drizzle's migrate() never runs it, and \
                 neither does migproof; add it with `drizzle-kit generate --custom` if it is a \
                 migration",
                entry.display()
            ));
        }
    }
    if migrations.is_empty() {
        let hint = " (the journal `meta/_journal.json` has no entries)".to_owned();
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint,
        });
    }
    let mut set = MigrationSet::new(Format::Drizzle, dir, migrations);
    set.notes = notes;
    set.forward_only = true;
    Ok(set)
}

/// One migration file, cut as `readMigrationFiles` cuts it: CRLF made LF, then pieces between
/// breakpoint markers, all in one transaction.
fn script(path: &Path, notes: &mut Vec<String>) -> Result<Script, SourceError> {
    let text = read_text(path)?.replace("\r\n", "\n");
    let mut chunks = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices(BREAKPOINT).chain([(text.len(), "")]) {
        chunks.push(Chunk {
            offset: start,
            sql: text[start..at].to_owned(),
        });
        start = at + BREAKPOINT.len();
    }
    let refused = chunks.iter().find_map(|c| {
        let statements = split(&c.sql).ok()?;
        let st = statements.iter().find(|s| is_non_transactional(&s.sql))?;
        Some(c.offset + st.offset)
    });
    if let Some(at) = refused {
        notes.push(format!(
            "`{}` line {}: PostgreSQL refuses this statement inside a transaction, and drizzle's \
             migrate() runs every pending migration in one, so it fails under drizzle too",
            path.display(),
            line_of(&text, at)
        ));
    }
    Ok(Script {
        path: path.to_owned(),
        text,
        blocks: vec![Block {
            transactional: true,
            chunks,
        }],
        command: None,
    })
}

/// Version and description of each tag: the part before the first `_` and the rest. A tag
/// whose prefix is not unique (or is empty) is kept whole as the version; either way
/// [`Migration::id`] is the tag.
fn versions(tags: &[&str]) -> Vec<(String, String)> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for tag in tags {
        let prefix = tag.split_once('_').map_or(*tag, |(p, _)| p);
        *count.entry(prefix).or_default() += 1;
    }
    tags.iter()
        .map(|tag| match tag.split_once('_') {
            Some((prefix, rest)) if !prefix.is_empty() && count[prefix] == 1 => {
                (prefix.to_owned(), rest.to_owned())
            }
            _ => ((*tag).to_owned(), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    /// A journal as drizzle-kit writes it, one entry per `(tag, when)`.
    fn journal(entries: &[(&str, u64)]) -> String {
        let entries: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, (tag, when))| {
                format!(
                    "    {{\n      \"idx\": {i},\n      \"version\": \"7\",\n      \"when\": \
                     {when},\n      \"tag\": \"{tag}\",\n      \"breakpoints\": true\n    }}"
                )
            })
            .collect();
        format!(
            "{{\n  \"version\": \"7\",\n  \"dialect\": \"postgresql\",\n  \"entries\": [\n{}\n  ]\n}}",
            entries.join(",\n")
        )
    }

    const J: &str = "meta/_journal.json";

    fn error(dir: &tempfile::TempDir) -> String {
        load(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn runs_in_journal_order_split_at_breakpoints() {
        let dir = tree(&[
            (J, &journal(&[("0001_b", 2000), ("0000_a", 3000)])),
            (
                "0000_a.sql",
                "CREATE TABLE \"a\" (\"id\" serial PRIMARY KEY NOT NULL);\n--> statement-breakpoint\n\
                 CREATE INDEX \"i\" ON \"a\" USING btree (\"id\");",
            ),
            ("0001_b.sql", "CREATE TABLE \"b\" (\"x\" int);\n"),
        ]);
        let set = load(dir.path()).unwrap();
        assert!(set.forward_only);
        assert!(set.notes.is_empty(), "{:?}", set.notes);
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["0001_b", "0000_a"]);
        let a = &set.migrations[1];
        assert_eq!((a.version.as_str(), a.description.as_str()), ("0000", "a"));
        assert!(a.down.is_none());
        assert_eq!(a.up.blocks.len(), 1);
        assert!(a.up.blocks[0].transactional);
        let chunks = &a.up.blocks[0].chunks;
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            chunks[0].sql,
            "CREATE TABLE \"a\" (\"id\" serial PRIMARY KEY NOT NULL);\n"
        );
        assert_eq!(
            chunks[1].sql,
            "\nCREATE INDEX \"i\" ON \"a\" USING btree (\"id\");"
        );
        assert_eq!(a.up.line_of(chunks[1].offset + 1), 3);
    }

    #[test]
    fn crlf_becomes_lf_as_drizzle_sends_it() {
        let dir = tree(&[
            (J, &journal(&[("0000_a", 1)])),
            (
                "0000_a.sql",
                "CREATE TABLE a (s text DEFAULT 'x\r\ny');\r\n--> statement-breakpoint\r\nSELECT 1;",
            ),
        ]);
        let set = load(dir.path()).unwrap();
        let up = &set.migrations[0].up;
        assert!(!up.text.contains('\r'));
        assert_eq!(
            up.blocks[0].chunks[0].sql,
            "CREATE TABLE a (s text DEFAULT 'x\ny');\n"
        );
        assert_eq!(up.line_of(up.blocks[0].chunks[1].offset + 1), 4);
    }

    #[test]
    fn breakpoints_false_still_cuts_at_markers() {
        let text = journal(&[("0000_a", 1)]).replace("true", "false");
        let dir = tree(&[
            (J, &text),
            (
                "0000_a.sql",
                "SELECT 1;\n--> statement-breakpoint\nSELECT 2;",
            ),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.migrations[0].up.blocks[0].chunks.len(), 2);
    }

    #[test]
    fn missing_file_names_the_journal_line() {
        let dir = tree(&[
            (J, &journal(&[("0000_a", 1), ("0001_b", 2)])),
            ("0000_a.sql", "SELECT 1;"),
        ]);
        let err = error(&dir);
        assert!(
            err.contains("_journal.json`: line 16: entry `0001_b` has no file"),
            "{err}"
        );
    }

    #[test]
    fn a_file_not_in_the_journal_is_a_note() {
        let dir = tree(&[
            (J, &journal(&[("0000_a", 1)])),
            ("0000_a.sql", "SELECT 1;"),
            ("0001_hand_written.sql", "SELECT 2;"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.migrations.len(), 1);
        assert!(
            set.notes[0].contains("0001_hand_written.sql` is not in `meta/_journal.json`"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn malformed_journal_names_line_and_column() {
        let dir = tree(&[(J, "{\n  \"entries\": [\n    {\"tag\": \"0000_a\",}\n  ]\n}")]);
        let err = error(&dir);
        assert!(err.contains("_journal.json`: line 3 column"), "{err}");
        let dir = tree(&[(J, "{\n  \"entries\": [\n    {\"tag\": \"0000_a\"}\n  ]\n}")]);
        let err = error(&dir);
        assert!(err.contains("line 3") && err.contains("`when`"), "{err}");
        let dir = tree(&[(J, "{\"version\": \"7\"}")]);
        assert!(error(&dir).contains("`entries`"));
    }

    #[test]
    fn another_dialect_is_refused() {
        let text = journal(&[("0000_a", 1)]).replace("postgresql", "mysql");
        let dir = tree(&[(J, &text), ("0000_a.sql", "SELECT 1;")]);
        let err = error(&dir);
        assert!(
            err.contains("line 3: the migrations were generated for dialect `mysql`"),
            "{err}"
        );
    }

    #[test]
    fn an_entry_older_than_an_earlier_one_gets_a_note() {
        let dir = tree(&[
            (J, &journal(&[("0000_a", 5), ("0001_b", 3)])),
            ("0000_a.sql", "SELECT 1;"),
            ("0001_b.sql", "SELECT 2;"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.migrations.len(), 2);
        assert!(
            set.notes[0].contains("skip `0001_b` for good"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn the_same_tag_twice_is_refused() {
        let dir = tree(&[
            (J, &journal(&[("0000_a", 1), ("0000_a", 2)])),
            ("0000_a.sql", ""),
        ]);
        let err = error(&dir);
        assert!(
            err.contains("line 16: entry `0000_a` appears twice (also at line 9)"),
            "{err}"
        );
    }

    #[test]
    fn a_statement_refused_in_a_transaction_gets_a_note() {
        let dir = tree(&[
            (J, &journal(&[("0000_a", 1)])),
            (
                "0000_a.sql",
                "SELECT 1;\n--> statement-breakpoint\nCREATE INDEX CONCURRENTLY i ON t (c);",
            ),
        ]);
        let set = load(dir.path()).unwrap();
        assert!(
            set.notes[0].contains("0000_a.sql` line 3"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn matches_needs_the_journal() {
        let entries = |dir: &tempfile::TempDir| list_dir(dir.path()).unwrap();
        assert!(matches(&entries(&tree(&[(J, "{}")]))));
        assert!(!matches(&entries(&tree(&[(
            "meta/0000_snapshot.json",
            "{}"
        )]))));
        assert!(!matches(&entries(&tree(&[("0000_a.sql", "")]))));
    }

    #[test]
    fn no_panic_on_odd_input() {
        for text in [
            "",
            "[]",
            "{\"entries\": {}}",
            "{\"entries\": [{\"tag\": 1, \"when\": 1}]}",
            "\u{0}",
        ] {
            let _ = load(tree(&[(J, text)]).path());
        }
        for body in [
            "",
            BREAKPOINT,
            "--> statement-breakpoint--> statement-breakpoint",
            "é",
        ] {
            let _ = load(tree(&[(J, &journal(&[("0000_a", 1)])), ("0000_a.sql", body)]).path());
        }
        // A tag that climbs out of the folder names a file that is not there.
        let _ = load(tree(&[(J, &journal(&[("../../x", 1)]))]).path());
    }
}

//! The words reporters show for each kind of finding: a short title and a few sentences of
//! help (what it means, what to do). What each kind is stays with `Kind`; the README's
//! "Findings" table says it at length.

use super::Kind;

/// A few words naming the kind, as a heading or a rule's short description.
pub fn title(kind: Kind) -> &'static str {
    match kind {
        Kind::ApplyFailed => "Migration does not apply",
        Kind::SchemaMismatch => "Schema differs from the golden schema",
        Kind::DataLost => "Rows or values lost",
        Kind::DataChanged => "Values changed",
        Kind::ResidueAfterFailure => "Failed migration leaves work behind",
        Kind::RetryFailed => "Retry after an interruption fails",
        Kind::NotIdempotent => "Running the migrator again changes something",
        Kind::LockHazard => "Lock blocks the application",
        Kind::Irreversible => "Migration has no down",
        Kind::Timeout => "Step ran past the step timeout",
        Kind::GlobalSideEffect => "Change outside the migration's database",
        Kind::EditedAfterRelease => "Released migration edited",
        Kind::Destructive => "Up drops values a rollback cannot bring back",
        Kind::SequenceBehind => "Sequence behind its column",
        Kind::Unreadable => "View cannot be read",
        Kind::Unwritable => "Table cannot take rows",
        Kind::VerifyFailed => "Project's verify script fails",
        Kind::DataDependent => "Up fails on existing rows",
        Kind::BreaksPreviousRelease => "Previous release breaks during the deploy",
    }
}

/// What a finding of the kind means and what to do about it, in two to four sentences.
pub fn help(kind: Kind) -> &'static str {
    match kind {
        Kind::ApplyFailed => {
            "The migration failed when it ran: the message gives the server's error, and the \
             place its file, line and SQLSTATE. Fix the statement at that line; an up that fails \
             on any row at all (ADD COLUMN ... NOT NULL without a default) fails in production \
             too."
        }
        Kind::SchemaMismatch => {
            "After this step the schema is not the one the migrations before it produce: usually \
             a down that does not undo exactly what its up did. The diff goes from the expected \
             schema to the one observed; make the down (or up) restore what the diff shows."
        }
        Kind::DataLost => {
            "Rows or values that existed before this step are gone after it, for example a down \
             that drops a column its up renamed. Make the step carry the data across (rename \
             instead of drop and add, copy before dropping); the rows show what went missing."
        }
        Kind::DataChanged => {
            "Values in columns that exist on both sides of this step are different after it: a \
             narrowed type, a lowered scale, a rewritten text. Make the step keep the values, or \
             declare the change if it is intended; the rows show before and after."
        }
        Kind::ResidueAfterFailure => {
            "The migration was interrupted and failed, and left part of its work behind (an \
             invalid index, a half-created table). Run it in one transaction, or make every \
             statement safe to find already done (IF NOT EXISTS, dropping an invalid index \
             first)."
        }
        Kind::RetryFailed => {
            "The migration was interrupted, and running it again then failed: a deploy that dies \
             halfway cannot be finished by retrying. Make the migration transactional, or make \
             each statement tolerate the work an earlier attempt already did."
        }
        Kind::NotIdempotent => {
            "Running the migrator again at the target version changed the database: a migration \
             applied twice, or a repeatable migration that does not give the same result twice. \
             Make repeatable migrations converge (CREATE OR REPLACE, IF NOT EXISTS) and check \
             how the migrator records what it applied."
        }
        Kind::LockHazard => {
            "A statement takes a lock that blocks the application's reads or writes for as long \
             as it runs: a table rewrite, an index built without CONCURRENTLY, a constraint \
             validated in one go. Use the safe pattern the finding names, such as CREATE INDEX \
             CONCURRENTLY or ADD CONSTRAINT ... NOT VALID followed by VALIDATE CONSTRAINT."
        }
        Kind::Irreversible => {
            "The migration has no down, so a deploy that goes wrong cannot be rolled back with \
             the migrator. Write a down that restores the previous schema and data, or accept it \
             if the project only rolls forward."
        }
        Kind::Timeout => {
            "A step ran past the step timeout and was stopped; the message says what it was \
             waiting for. A step this slow on test data is slower in production: look for a lock \
             wait, a rewrite or a full scan, or raise --step-timeout if the work is expected."
        }
        Kind::GlobalSideEffect => {
            "The migration changed the server outside its own database: roles, memberships, \
             role or database settings, databases, tablespaces or ALTER SYSTEM. Such changes \
             outlive the database and clash between environments; move them to provisioning, \
             or make them conditional and undo them in the down."
        }
        Kind::EditedAfterRelease => {
            "A migration that was already released (present at the --changed-from ref) was \
             edited. Databases that applied it will not run it again, so they never get the \
             edit and drift from new ones. Restore the released text and put the change in a \
             new migration."
        }
        Kind::Destructive => {
            "The up drops a table or column that holds values, and no rollback can bring them \
             back. Copy the values elsewhere first, or declare the drop under [data.changes] in \
             migproof.toml (or pass --allow-destructive) if losing them is intended."
        }
        Kind::SequenceBehind => {
            "After this step a sequence feeding a column would next give a value the column \
             already holds, so the next insert collides. Reset the sequence in the step with \
             setval to the column's largest value."
        }
        Kind::Unwritable => {
            "No row could be written into the table at this version: a trigger or function that \
             every write runs refers to a column, table or function that does not exist yet (or \
             any more), so the application's inserts fail too, for example after a rollback to \
             this version. Create what the function needs in the same migration, or change the \
             function in the migration that adds it."
        }
        Kind::Unreadable => {
            "After the round trip a view or materialized view that could be read before cannot: \
             a materialized view left unpopulated (WITH NO DATA), or a view whose query fails. \
             Refresh the materialized view in the migration, or recreate the view so that its \
             query matches the tables it reads."
        }
        Kind::VerifyFailed => {
            "The project's own verify script for the change the database is at failed after \
             this step: after a deploy, the change did not do what its verify expects; after a \
             revert, the revert broke what the change before it set up. The message gives the \
             verify script's error and line."
        }
        Kind::DataDependent => {
            "The up applies on an empty database but fails on particular existing rows: \
             duplicates under a new unique key, orphans under a new foreign key, NULLs under SET \
             NOT NULL, values that do not convert. Clean or backfill those rows in the migration \
             before the constraint, or write the assumption down under [assume] in migproof.toml; \
             the rows are the fewest that still make it fail."
        }
        Kind::BreaksPreviousRelease => {
            "While a rolling deploy runs, the previous release's code still runs against the \
             new schema, and statements it runs fail after this up: a column renamed or \
             dropped, a NOT NULL column its inserts do not fill, a type its values do not \
             convert to. Expand first (add the new shape beside the old, keep both in step), \
             move the code, and contract in a later release; a contract step breaks the \
             release before it on purpose."
        }
    }
}

/// How serious a finding of the kind is: `critical` for what breaks a deploy or loses data
/// for good (an up or down that does not apply, lost values, an up that drops values, a
/// change outside the database), `major` for the rest.
pub fn severity(kind: Kind) -> &'static str {
    match kind {
        Kind::ApplyFailed | Kind::DataLost | Kind::Destructive | Kind::GlobalSideEffect => {
            "critical"
        }
        Kind::SchemaMismatch
        | Kind::DataChanged
        | Kind::ResidueAfterFailure
        | Kind::RetryFailed
        | Kind::NotIdempotent
        | Kind::LockHazard
        | Kind::Irreversible
        | Kind::Timeout
        | Kind::EditedAfterRelease
        | Kind::SequenceBehind
        | Kind::Unreadable
        | Kind::Unwritable
        | Kind::VerifyFailed
        | Kind::DataDependent
        | Kind::BreaksPreviousRelease => "major",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Finding, Report, Source};

    #[test]
    fn every_kind_has_a_title_and_help() {
        for kind in Kind::ALL {
            let title = title(kind);
            let help = help(kind);
            assert!(!title.trim().is_empty(), "{} has no title", kind.as_str());
            assert!(
                title.len() <= 60 && !title.ends_with('.'),
                "the title of {} is not short: {title}",
                kind.as_str()
            );
            let sentences = sentences(help);
            assert!(
                (2..=4).contains(&sentences),
                "the help of {} has {sentences} sentences: {help}",
                kind.as_str()
            );
        }
    }

    /// Full stops that end a sentence: after a word, before a capital (not an ellipsis).
    fn sentences(text: &str) -> usize {
        let b = text.as_bytes();
        let inner = (1..b.len().saturating_sub(2))
            .filter(|&i| {
                b[i] == b'.'
                    && b[i - 1] != b'.'
                    && b[i + 1] == b' '
                    && b[i + 2].is_ascii_uppercase()
            })
            .count();
        inner + usize::from(text.ends_with('.'))
    }

    #[test]
    fn titles_are_distinct() {
        let mut titles: Vec<&str> = Kind::ALL.into_iter().map(title).collect();
        titles.sort_unstable();
        titles.dedup();
        assert_eq!(titles.len(), Kind::ALL.len());
    }

    /// `Kind::ALL`, which the SARIF rules follow, names every kind the README's Findings
    /// table documents, and nothing else.
    #[test]
    fn every_kind_is_in_the_readme_findings_table() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("\n## Findings\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the README has a Findings section");
        let mut documented: Vec<&str> = table
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`').map(|(kind, _)| kind))
            .collect();
        documented.sort_unstable();
        let mut all: Vec<&str> = Kind::ALL.into_iter().map(Kind::as_str).collect();
        all.sort_unstable();
        assert_eq!(documented, all);
    }

    #[test]
    fn a_finding_says_its_severity_and_keeps_it_in_step_with_its_kind() {
        let f = Finding::new(
            Kind::DataLost,
            "0002_x".into(),
            "down".into(),
            "lost".into(),
        );
        assert_eq!(f.severity, "critical");
        let source = Source {
            dir: "m".into(),
            format: "sqlx".into(),
        };
        let mut report = Report::new("check", source, 1, "local");
        report.findings.push(f);
        // a runner that regrades a finding (a retry's schema mismatch becomes residue)
        report.findings[0].kind = Kind::ResidueAfterFailure;
        report.finish(std::time::Duration::ZERO);
        assert_eq!(report.findings[0].severity, "major");
        assert_eq!(severity(Kind::DataDependent), "major");
        assert_eq!(severity(Kind::ApplyFailed), "critical");
    }
}

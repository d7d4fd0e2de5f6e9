//! The one report value every command builds, and its renderings: human text (`human`), the
//! JSON document (`json`) and JUnit XML for CI (`junit`). Renderers compute nothing; the runner
//! fills the report.

pub mod baseline;
pub mod github;
pub mod gitlab;
pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod kinds;
pub mod locks;
pub mod markdown;
pub mod sarif;

use std::collections::BTreeMap;

use serde::Serialize;

/// The fixed vocabulary of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A migration did not apply.
    ApplyFailed,
    /// The schema differs from the golden schema of that version.
    SchemaMismatch,
    /// Rows or values that existed before a step are gone after it.
    DataLost,
    /// Values in columns that exist on both sides of a step changed.
    DataChanged,
    /// A failed migration left part of its work behind.
    ResidueAfterFailure,
    /// Retrying an interrupted migration failed.
    RetryFailed,
    /// Running the migrator again at the target changed something.
    NotIdempotent,
    /// A statement takes a lock that blocks the application.
    LockHazard,
    /// A migration has no down.
    Irreversible,
    /// A step ran past the step timeout.
    Timeout,
    /// A migration changed the server outside its own database (roles, databases, settings).
    GlobalSideEffect,
    /// A migration that was already released (present at `--changed-from`'s ref) was edited.
    EditedAfterRelease,
    /// An up drops a table or a column that holds values: a rollback cannot bring them back.
    Destructive,
    /// A sequence would next give a value its column already holds.
    SequenceBehind,
    /// A view or materialized view cannot be read (unpopulated, or its query fails).
    Unreadable,
    /// A table cannot take rows at a version: a function or trigger its writes run refers to
    /// a column, table or function that does not exist then.
    Unwritable,
    /// An up that applies on an empty database fails on particular rows: duplicates under a
    /// new unique key, orphans under a new foreign key, NULLs under SET NOT NULL, values that
    /// do not convert.
    DataDependent,
    /// The project's own verify script (Sqitch's `verify/`) fails after a step.
    VerifyFailed,
    /// After an up, a statement the previous release runs (read, insert, update or delete
    /// with the columns it knew, or one of the project's queries) fails: a rolling deploy
    /// breaks. A note unless `--compat error`.
    BreaksPreviousRelease,
}

impl Kind {
    /// Every kind, in the order the README lists them.
    pub const ALL: [Kind; 19] = [
        Kind::ApplyFailed,
        Kind::DataDependent,
        Kind::SchemaMismatch,
        Kind::DataLost,
        Kind::DataChanged,
        Kind::Destructive,
        Kind::ResidueAfterFailure,
        Kind::RetryFailed,
        Kind::NotIdempotent,
        Kind::SequenceBehind,
        Kind::Unreadable,
        Kind::Unwritable,
        Kind::VerifyFailed,
        Kind::BreaksPreviousRelease,
        Kind::LockHazard,
        Kind::Irreversible,
        Kind::Timeout,
        Kind::GlobalSideEffect,
        Kind::EditedAfterRelease,
    ];

    /// The kind named `name` as in reports (`data_lost`).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ApplyFailed => "apply_failed",
            Kind::SchemaMismatch => "schema_mismatch",
            Kind::DataLost => "data_lost",
            Kind::DataChanged => "data_changed",
            Kind::ResidueAfterFailure => "residue_after_failure",
            Kind::RetryFailed => "retry_failed",
            Kind::NotIdempotent => "not_idempotent",
            Kind::LockHazard => "lock_hazard",
            Kind::Irreversible => "irreversible",
            Kind::Timeout => "timeout",
            Kind::GlobalSideEffect => "global_side_effect",
            Kind::EditedAfterRelease => "edited_after_release",
            Kind::DataDependent => "data_dependent",
            Kind::Destructive => "destructive",
            Kind::SequenceBehind => "sequence_behind",
            Kind::Unreadable => "unreadable",
            Kind::Unwritable => "unwritable",
            Kind::VerifyFailed => "verify_failed",
            Kind::BreaksPreviousRelease => "breaks_previous_release",
        }
    }
}

/// What about existing rows made a statement fail, in words, from the server's SQLSTATE
/// (classes 22 and 23): for `data_dependent` findings and notes.
pub fn data_cause(sqlstate: &str) -> &'static str {
    match sqlstate {
        "23505" => "duplicate values under a new unique key",
        "23503" => "values without a parent row under a new foreign key",
        "23502" => "NULLs under a new NOT NULL",
        "23514" => "values that break a new CHECK constraint",
        "23P01" => "overlapping values under a new exclusion constraint",
        c if c.starts_with("22") => "values that do not convert to the new type or range",
        _ => "rows that break a new constraint",
    }
}

/// What a note is about: something worth knowing that does not fail the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// A migration without a down (a finding under `--require-down`).
    Irreversible,
    /// Columns in another order than the golden schema's (a finding under `--strict`).
    ColumnOrder,
    /// Function or view bodies that differ only in whitespace.
    BodyWhitespace,
    /// Defaults or bodies that differ only in a literal fixed when they were created.
    CreationTimeLiteral,
    /// Objects that differ only in the numeric suffix of a name PostgreSQL generated.
    GeneratedName,
    /// Something the layout reader could not honour.
    Source,
    /// A warning-level lock hazard, or any hazard under `check --locks warn`.
    LockHazard,
    /// A table the lock trace's fill could not fill.
    UnfilledTable,
    /// The lock analysis itself could not cover something.
    LockAnalysis,
    /// An up failed on the lock trace's filled rows of a table (duplicates under a new unique
    /// key, orphans under a new foreign key, NULLs under SET NOT NULL, ...); the table was
    /// emptied and the up traced again.
    DataDependent,
    /// An up drops a table or column holding values, as the project declared
    /// (`[data.changes]`) or allowed (`--allow-destructive`).
    Destructive,
    /// The previous release's statements fail after an up (a finding under `--compat error`).
    BreaksPreviousRelease,
}

impl NoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Irreversible => "irreversible",
            NoteKind::ColumnOrder => "column_order",
            NoteKind::BodyWhitespace => "body_whitespace",
            NoteKind::CreationTimeLiteral => "creation_time_literal",
            NoteKind::GeneratedName => "generated_name",
            NoteKind::Source => "source",
            NoteKind::LockHazard => "lock_hazard",
            NoteKind::UnfilledTable => "unfilled_table",
            NoteKind::LockAnalysis => "lock_analysis",
            NoteKind::DataDependent => "data_dependent",
            NoteKind::Destructive => "destructive",
            NoteKind::BreaksPreviousRelease => "breaks_previous_release",
        }
    }
}

impl std::fmt::Display for NoteKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a finding points: the migration file, the line of the statement that failed (from
/// the server's error position, or by counting the statements the server completed when a
/// whole file went in one go), the server's SQLSTATE, and the table and column its error
/// names, when it names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Place {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    /// The table (and column) the server's error names.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub object: Option<Box<Object>>,
}

/// A table, and maybe one of its columns, as a server error names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Object {
    /// `schema.table`.
    pub table: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl Place {
    /// A whole file.
    pub fn file(path: &std::path::Path) -> Place {
        Place {
            file: path.display().to_string(),
            ..Place::default()
        }
    }

    /// A line of a file.
    pub fn line(path: &std::path::Path, line: usize) -> Place {
        Place {
            line: Some(line),
            ..Place::file(path)
        }
    }

    /// The same place, with the server's SQLSTATE.
    pub fn sqlstate(self, code: &str) -> Place {
        Place {
            sqlstate: Some(code.to_owned()),
            ..self
        }
    }

    /// The same place, with the table (and column) the server's error names.
    pub fn object(self, schema: Option<&str>, table: Option<&str>, column: Option<&str>) -> Place {
        Place {
            object: table.map(|t| {
                Box::new(Object {
                    table: format!("{}.{t}", schema.unwrap_or("public")),
                    column: column.map(str::to_owned),
                })
            }),
            ..self
        }
    }

    /// The table the server's error names, `schema.table`.
    pub fn table(&self) -> Option<&str> {
        self.object.as_ref().map(|o| o.table.as_str())
    }

    /// The column the server's error names.
    pub fn column(&self) -> Option<&str> {
        self.object.as_ref().and_then(|o| o.column.as_deref())
    }
}

impl std::fmt::Display for Place {
    /// `file:line`, as compilers print it, or the file alone.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file),
            None => write!(f, "{}", self.file),
        }
    }
}

/// Something that breaks a property: the run fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// How serious the kind is (`critical`, `major`: [`kinds::severity`]); kept in step with
    /// `kind` by [`Finding::new`] and [`Report::finish`].
    pub severity: &'static str,
    /// The migration as in its file name, for example `0003_rename`.
    pub migration: String,
    /// Which step of which property, for example `down (round trip)`.
    pub step: String,
    pub message: String,
    /// The file, line and SQLSTATE of the statement that failed, for a step that did not apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<String>,
    /// For fuzz findings: the shrunk case that shows it, and how to replay it.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub case: Option<FuzzCase>,
    /// For lock hazards: what the trace observed.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockDetail>,
}

/// The fuzz case that shows a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FuzzCase {
    /// The shrunk sequence of steps, numbered and readable.
    pub sequence: Vec<String>,
    /// The case seed.
    pub seed: String,
    /// The command that replays the saved case.
    pub replay: String,
}

/// What the lock trace observed for a lock hazard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockDetail {
    /// The rule that fired (`rewrite`, `index_not_concurrent`, ...).
    pub rule: String,
    /// The table, schema-qualified (`public.orders`).
    pub table: String,
    /// The lock mode as `pg_locks` names it (`ShareLock`).
    pub lock_mode: String,
    /// How long that lock was held, measured at the traced table size.
    pub duration_ms: u64,
    /// The safe pattern.
    pub hint: String,
}

/// Something worth knowing that does not fail the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub kind: NoteKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Note {
    /// ` <migration> [<step>]`, each part only when known, for a line of text after the kind.
    pub fn place(&self) -> String {
        let migration = self
            .migration
            .as_deref()
            .map(|m| format!(" {m}"))
            .unwrap_or_default();
        let step = self
            .step
            .as_deref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        migration + &step
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// True when no finding was made.
    pub passed: bool,
    pub findings: usize,
    pub notes: usize,
    /// Findings per kind.
    pub by_kind: BTreeMap<String, usize>,
    /// Migrations whose checks all ran: `Report::checked` counted by `Report::finish`.
    pub migrations_checked: usize,
    /// Steps applied to databases (ups, downs, reruns, seedings).
    pub steps: usize,
    /// Rows the seeder wrote, and rows the schema refused (a constraint, a type, a trigger).
    pub rows_seeded: usize,
    pub rows_skipped: usize,
    pub duration_ms: u64,
    /// Check: the migrations with a down, and how many of those downs the stairway ran (a
    /// down is not run when its up did not apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downs_tested: Option<usize>,
    /// Check on a project without downs: what was proven instead, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_only: Option<String>,
    /// Check with `--since` or `--changed-from`: how many migrations were in scope, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_scope: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Check with `--data-from`: whose rows, how many, and what was checked over them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub your_data: Option<String>,
    /// Check with `--stats-from`: whose statistics shaped the seeded rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_from: Option<String>,
    /// Fuzz: cases run, and steps applied per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cases: Option<u64>,
    /// Fuzz: the run's seed (`0x` and 16 hex digits); `--seed` with it and the same `--cases`
    /// runs the same cases again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps_per_second: Option<f64>,
}

/// Everything one command found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub command: String,
    /// The migrations folder and the layout it was read as.
    pub source: Source,
    /// How many migrations the project has.
    pub migrations: usize,
    /// Which backend ran the checks (`local`, `url`).
    pub backend: String,
    /// The server's version (`18.4`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server: String,
    /// The migrations whose checks all ran, in order, named as in `Finding::migration`. Not in
    /// the JSON document, whose summary carries their number (`migrations_checked`).
    #[serde(skip)]
    pub checked: Vec<String>,
    /// The file of each migration checked or skipped (its up), for reporters that show every
    /// migration at a file. Not in the JSON document, whose findings carry their place.
    #[serde(skip)]
    pub files: BTreeMap<String, String>,
    pub findings: Vec<Finding>,
    /// Findings the project accepted (its baseline, or a `-- migproof:allow` comment in the
    /// migration): shown, but they do not fail the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<Accepted>,
    /// Baseline entries that no finding matches any more: fixed, to be removed from it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<BaselineEntry>,
    /// Migrations in scope that were not checked: the run stopped before them (a migration
    /// before them does not apply on an empty database).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Set when the environment failed (exit 3): no database, a backend that could not start.
    /// The findings and counts are then empty or partial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub notes: Vec<Note>,
    pub summary: Summary,
    /// The per-statement lock trace (`migproof locks` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locks: Option<locks::LockTrace>,
}

/// A finding the project accepted, and what accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    #[serde(flatten)]
    pub finding: Finding,
    pub fingerprint: String,
    /// `baseline migproof-baseline.json`, or `allow at migrations/0003_x.sql:4: <reason>`.
    pub accepted_by: String,
}

/// One accepted finding of a baseline file, by its stable parts (no line, value or time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BaselineEntry {
    pub fingerprint: String,
    pub kind: String,
    pub migration: String,
    pub step: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub object: String,
}

impl BaselineEntry {
    pub fn of(f: &Finding) -> BaselineEntry {
        BaselineEntry {
            fingerprint: f.fingerprint(),
            kind: f.kind.as_str().to_owned(),
            migration: f.migration.clone(),
            step: f.stable_step(),
            object: f.object(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub dir: String,
    pub format: String,
}

impl Finding {
    /// A finding with no diff, rows or lock details.
    pub fn new(kind: Kind, migration: String, step: String, message: String) -> Finding {
        Finding {
            kind,
            severity: kinds::severity(kind),
            migration,
            step,
            message,
            place: None,
            diff: None,
            rows: Vec::new(),
            case: None,
            lock: None,
        }
    }

    /// The object a finding is about, as stable as the migration's text: the table (and
    /// column) the server named, else the locked table, else empty.
    pub fn object(&self) -> String {
        if let Some(o) = self.place.as_ref().and_then(|p| p.object.as_deref()) {
            return match &o.column {
                Some(c) => format!("{}.{c}", o.table),
                None => o.table.clone(),
            };
        }
        self.lock
            .as_ref()
            .map(|l| l.table.clone())
            .unwrap_or_default()
    }

    /// The step with what moves when unrelated lines move left out: fuzz's step number
    /// (`step 3: `) and line numbers (` (line 12)`).
    pub fn stable_step(&self) -> String {
        let step = match self.step.split_once(": ") {
            Some((n, rest))
                if n.strip_prefix("step ")
                    .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit())) =>
            {
                rest
            }
            _ => &self.step,
        };
        let mut out = String::new();
        let mut rest = step;
        while let Some(at) = rest.find(" (line ") {
            out.push_str(&rest[..at]);
            let tail = &rest[at + " (line ".len()..];
            match tail.find(')') {
                Some(end) if tail[..end].bytes().all(|b| b.is_ascii_digit()) => {
                    rest = &tail[end + 1..];
                }
                _ => {
                    out.push_str(" (line ");
                    rest = tail;
                }
            }
        }
        out + rest
    }

    /// The finding's identity across runs, for baselines and SARIF's `partialFingerprints`:
    /// a hash of its kind, migration, stable step and object; never of lines, values or times.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let key = format!(
            "migproof/1\0{}\0{}\0{}\0{}",
            self.kind.as_str(),
            self.migration,
            self.stable_step(),
            self.object()
        );
        let digest = Sha256::digest(key.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What a lock hazard observed, as short phrases: `rule rewrite`, `table public.orders`,
    /// the lock mode, `held 31 ms`. Empty for other findings.
    pub fn lock_facts(&self) -> Vec<String> {
        let Some(lock) = &self.lock else {
            return Vec::new();
        };
        vec![
            format!("rule {}", lock.rule),
            format!("table {}", lock.table),
            lock.lock_mode.clone(),
            format!("held {} ms", lock.duration_ms),
        ]
    }
}

impl Report {
    pub fn new(command: &str, source: Source, migrations: usize, backend: &str) -> Report {
        Report {
            format_version: 1,
            command: command.to_owned(),
            source,
            migrations,
            backend: backend.to_owned(),
            server: String::new(),
            checked: Vec::new(),
            files: BTreeMap::new(),
            findings: Vec::new(),
            accepted: Vec::new(),
            fixed: Vec::new(),
            skipped: Vec::new(),
            error: None,
            notes: Vec::new(),
            summary: Summary::default(),
            locks: None,
        }
    }

    /// The document a machine format carries when the environment failed (exit 3): what the
    /// run was, and why it could not run.
    pub fn environment_failed(command: &str, source: Source, message: String) -> Report {
        let mut report = Report::new(command, source, 0, "");
        report.error = Some(message);
        report
    }

    /// Gives every finding without a place the file of its migration (`file_of` maps a
    /// migration and step to it), so that every finding can be shown at a file, and records
    /// the file of every migration checked or skipped.
    pub fn locate(&mut self, file_of: impl Fn(&str, &str) -> Option<std::path::PathBuf>) {
        for f in &mut self.findings {
            if f.place.is_none() {
                f.place = file_of(&f.migration, &f.step).map(|p| Place::file(&p));
            }
        }
        for id in self.checked.iter().chain(&self.skipped) {
            if let Some(path) = file_of(id, "up") {
                self.files.insert(id.clone(), path.display().to_string());
            }
        }
    }

    /// Fills the counts of the summary from the checked migrations, findings and notes.
    pub fn finish(&mut self, duration: std::time::Duration) {
        let accepted = self.accepted.iter_mut().map(|a| &mut a.finding);
        for f in self.findings.iter_mut().chain(accepted) {
            f.severity = kinds::severity(f.kind);
        }
        self.summary.migrations_checked = self.checked.len();
        self.summary.findings = self.findings.len();
        self.summary.notes = self.notes.len();
        self.summary.passed = self.findings.is_empty() && self.error.is_none();
        self.summary.by_kind.clear();
        for f in &self.findings {
            *self
                .summary
                .by_kind
                .entry(f.kind.as_str().to_owned())
                .or_default() += 1;
        }
        self.summary.duration_ms = duration.as_millis() as u64;
    }
}

/// `text` in the terminal style `code` (an SGR sequence such as `1;31`) when `on` and
/// `NO_COLOR` is not set; as is otherwise.
pub fn paint(text: &str, code: &str, on: bool) -> String {
    if on && std::env::var_os("NO_COLOR").is_none() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_leave_out_lines_step_numbers_and_messages() {
        let f = |step: &str, message: &str| {
            let mut f = Finding::new(
                Kind::RetryFailed,
                "0003_x".into(),
                step.into(),
                message.into(),
            );
            f.place = Some(Place::line(std::path::Path::new("m/0003_x.sql"), 7));
            f
        };
        let a = f("interrupted after statement 2 (line 7), then retried", "a");
        let b = f("interrupted after statement 2 (line 9), then retried", "b");
        assert_eq!(
            a.stable_step(),
            "interrupted after statement 2, then retried"
        );
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        let c = f("interrupted after statement 3 (line 9), then retried", "a");
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(f("step 4: down to 0002", "").stable_step(), "down to 0002");
        assert_eq!(
            f("step 4: down to 0002", "").fingerprint(),
            f("step 9: down to 0002", "").fingerprint()
        );
        let mut d = f("up with data", "");
        let before = d.fingerprint();
        d.place = d
            .place
            .take()
            .map(|p| p.object(None, Some("users"), Some("email")));
        assert_eq!(d.object(), "public.users.email");
        assert_ne!(d.fingerprint(), before);
    }
}

//! The `check` runner: the release gate. A clean linear apply on an empty database records the
//! golden snapshot of every version; then, for every migration, on a database at the previous
//! golden version holding seeded rows, it proves the stairway (up, down, up again, rerun, down
//! with rows written at the new version) and data preservation. Every finding of every
//! migration is reported; after one, the run resumes from golden state.

use std::time::{Duration, Instant};

use crate::backend::{describe, BackendError, ScratchDb, Server};
use crate::compare::{self, SchemaVerdict};
use crate::executor::{Direction, Session, StepError};
use crate::observe::history::History;
use crate::observe::snapshot::{self, Snapshot};
use crate::observe::{catalog, data};
use crate::report::{Finding, Kind, Note, Report, Source};
use crate::source::{Migration, MigrationSet};

/// What the user asked of `check`.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Column order differences fail the run instead of being notes.
    pub strict: bool,
    /// A migration without a down is a finding instead of a note.
    pub require_down: bool,
    /// How long one step may run before it is stopped and reported as `timeout`.
    pub step_timeout: Duration,
}

/// Receives progress events; the CLI draws a progress bar from them.
pub trait Progress: Sync {
    fn start(&self, _total_migrations: usize) {}
    fn migration(&self, _index: usize, _id: &str, _phase: &str) {}
    fn finish(&self) {}
}

/// Progress that shows nothing.
pub struct Silent;
impl Progress for Silent {}

/// Why a run could not finish: the environment failed (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Lost(String),
}

impl From<StepError> for RunError {
    fn from(e: StepError) -> RunError {
        RunError::Lost(e.to_string())
    }
}

fn lost(e: sqlx::Error) -> RunError {
    RunError::Lost(format!("lost the connection to the scratch database: {}", describe(&e)))
}

/// Step names, as they appear in findings.
pub mod step {
    pub const UP_EMPTY: &str = "up on an empty database";
    pub const UP: &str = "up with data";
    pub const DOWN: &str = "down (round trip)";
    pub const REUP: &str = "up again after down";
    pub const RERUN: &str = "migrator rerun at this version";
    pub const DOWN_NEW_ROWS: &str = "down with rows written at this version";
    pub const UP_AFTER: &str = "up after that down";
}

struct Run<'a> {
    server: &'a Server,
    set: &'a MigrationSet,
    options: &'a CheckOptions,
    report: Report,
    golden: History,
    /// Seeding rounds so far; unique values differ per round.
    rounds: usize,
    /// Set when a comparison found only noise: the database is not exactly golden any more.
    noisy: bool,
    /// Noise already reported, by kind and objects.
    noise_seen: Vec<(String, String)>,
}

pub async fn run(
    server: &Server,
    set: &MigrationSet,
    options: &CheckOptions,
    progress: &dyn Progress,
) -> Result<Report, RunError> {
    let started = Instant::now();
    let source = Source { dir: set.dir.display().to_string(), format: set.format.to_string() };
    let report = Report::new("check", source, set.migrations.len(), server.kind_name());
    let mut run =
        Run { server, set, options, report, golden: History::new(), rounds: 0, noisy: false, noise_seen: Vec::new() };
    for note in &set.notes {
        run.report.notes.push(Note {
            kind: "source".into(),
            migration: None,
            step: None,
            message: note.clone(),
            diff: None,
        });
    }
    progress.start(set.migrations.len());
    let usable = run.golden_pass(progress).await?;
    run.stairway(usable, progress).await?;
    progress.finish();
    run.report.finish(started.elapsed());
    Ok(run.report)
}

impl Run<'_> {
    fn finding(&mut self, kind: Kind, m: &Migration, step: &str, message: String) -> &mut Finding {
        self.report.findings.push(Finding {
            kind,
            migration: m.id(),
            step: step.to_owned(),
            message,
            diff: None,
            rows: Vec::new(),
        });
        self.report.findings.last_mut().expect("just pushed")
    }

    fn note(&mut self, kind: &str, m: &Migration, step: &str, message: String, diff: Option<String>) {
        let id = m.id();
        if self.report.notes.iter().any(|n| n.kind == kind && n.migration.as_deref() == Some(&id)) {
            return; // one note per kind and migration
        }
        self.report.notes.push(Note {
            kind: kind.to_owned(),
            migration: Some(m.id()),
            step: Some(step.to_owned()),
            message,
            diff,
        });
    }

    async fn session(&self) -> Result<(ScratchDb, Session), RunError> {
        let db = self.server.create().await?;
        let session = Session::open(&db, self.options.step_timeout).await?;
        Ok((db, session))
    }

    /// Applies every up on an empty database, recording the golden snapshot of every version.
    /// Returns how many migrations applied (the stairway covers only those).
    async fn golden_pass(&mut self, progress: &dyn Progress) -> Result<usize, RunError> {
        let (db, mut s) = self.session().await?;
        self.golden.push(snapshot::take(s.conn()).await.map_err(lost)?);
        let mut usable = self.set.migrations.len();
        for (i, m) in self.set.migrations.iter().enumerate() {
            progress.migration(i, &m.id(), "golden apply");
            self.report.summary.steps += 1;
            match s.apply(&m.version, &m.up, Direction::Up).await {
                Ok(()) => self.golden.push(snapshot::take(s.conn()).await.map_err(lost)?),
                Err(e) if e.is_environment() => return Err(e.into()),
                Err(e) => {
                    let kind = step_error_kind(&e);
                    let later = self.set.migrations.len() - i - 1;
                    let skipped = if later > 0 {
                        format!("; the {later} migration(s) after it were not checked")
                    } else {
                        String::new()
                    };
                    self.finding(kind, m, step::UP_EMPTY, format!("{e}{skipped}"));
                    usable = i;
                    break;
                }
            }
        }
        drop(s);
        self.server.drop_db(&db).await?;
        Ok(usable)
    }

    /// Compares the live schema with golden `version`; records a finding or notes.
    /// Returns false when the schema is not the golden one.
    async fn expect_schema(
        &mut self,
        s: &mut Session,
        version: usize,
        m: &Migration,
        step: &str,
    ) -> Result<bool, RunError> {
        let actual = snapshot::take(s.conn()).await.map_err(lost)?;
        let label = match version {
            0 => "golden schema before any migration".to_string(),
            v => format!("golden schema at {}", self.set.migrations[v - 1].id()),
        };
        let after = format!("after {step}");
        let golden = self.golden.get(version);
        match compare::schema(golden, &actual, self.options.strict, (&label, &after)) {
            SchemaVerdict::Equal => Ok(true),
            SchemaVerdict::Noise { notes, objects, diff } => {
                for (kind, message) in notes {
                    // The same noise seen again at a later migration was already reported.
                    let key = (kind.clone(), objects.clone());
                    if !self.noise_seen.contains(&key) {
                        self.noise_seen.push(key);
                        let message = format!("{message}: {objects}");
                        self.note(&kind, m, step, message, Some(diff.clone()));
                    }
                    // A column order that drifted stays drifted; start the next migration
                    // from a database that is exactly golden.
                    self.noisy |= kind == "column_order";
                }
                Ok(true)
            }
            SchemaVerdict::Mismatch { diff, summary } => {
                let message = format!("schema differs from the {label}: {summary}");
                self.finding(Kind::SchemaMismatch, m, step, message).diff = Some(diff);
                Ok(false)
            }
        }
    }

    async fn expect_data(
        &mut self,
        s: &mut Session,
        stash: &data::Stash,
        m: &Migration,
        step: &str,
        allow_added: bool,
        kind_override: Option<Kind>,
    ) -> Result<(), RunError> {
        let tables = catalog::tables(s.conn()).await.map_err(lost)?;
        let diffs = data::compare(s.conn(), stash, &tables).await.map_err(lost)?;
        if let Some(v) = compare::data(&diffs, allow_added) {
            let kind = kind_override.unwrap_or(v.kind);
            self.finding(kind, m, step, v.message).rows = v.rows;
        }
        Ok(())
    }

    /// Applies a script; a failure becomes a finding and returns false.
    async fn apply(
        &mut self,
        s: &mut Session,
        m: &Migration,
        direction: Direction,
        step: &str,
        context: &str,
    ) -> Result<bool, RunError> {
        let script = match direction {
            Direction::Up => &m.up,
            Direction::Down => m.down.as_ref().expect("only called with a down"),
        };
        self.report.summary.steps += 1;
        match s.apply(&m.version, script, direction).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_environment() => Err(e.into()),
            Err(e) => {
                let kind = step_error_kind(&e);
                self.finding(kind, m, step, format!("{context}{e}"));
                Ok(false)
            }
        }
    }

    async fn seed(&mut self, s: &mut Session) -> Result<Vec<catalog::Table>, RunError> {
        let tables = catalog::tables(s.conn()).await.map_err(lost)?;
        let seeded = s.seed(&tables, self.rounds).await.map_err(lost)?;
        self.rounds += 1;
        self.report.summary.steps += 1;
        self.report.summary.rows_seeded += seeded.inserted;
        self.report.summary.rows_skipped += seeded.skipped;
        Ok(tables)
    }

    /// A fresh database at golden `version`, without data, after a finding left the old one
    /// in an unknown state.
    async fn rebuild(
        &mut self,
        db: ScratchDb,
        s: Session,
        version: usize,
    ) -> Result<(ScratchDb, Session), RunError> {
        drop(s);
        self.server.drop_db(&db).await?;
        let (db, mut s) = self.session().await?;
        for m in &self.set.migrations[..version] {
            s.apply(&m.version, &m.up, Direction::Up).await.map_err(|e| {
                RunError::Lost(format!("failed to rebuild golden state at {}: {e}", m.id()))
            })?;
        }
        Ok((db, s))
    }

    /// Runs the migrator again up to `target` migrations: applies whatever is not recorded.
    async fn migrate_to(&mut self, s: &mut Session, target: usize) -> Result<Option<String>, RunError> {
        let applied = s.applied().await?;
        for m in &self.set.migrations[..target] {
            if !applied.contains(&m.version) {
                self.report.summary.steps += 1;
                if let Err(e) = s.apply(&m.version, &m.up, Direction::Up).await {
                    if e.is_environment() {
                        return Err(e.into());
                    }
                    return Ok(Some(format!("rerun applied {} again and it failed: {e}", m.id())));
                }
            }
        }
        Ok(None)
    }

    async fn stairway(&mut self, usable: usize, progress: &dyn Progress) -> Result<(), RunError> {
        let (mut db, mut s) = self.session().await?;
        for v in 1..=usable {
            let m = &self.set.migrations[v - 1];
            self.noisy = false;
            let ok = self.check_one(&mut s, v, m, progress).await?;
            if !ok || self.noisy {
                (db, s) = self.rebuild(db, s, v).await?;
            }
            self.report.summary.migrations_checked += 1;
        }
        drop(s);
        self.server.drop_db(&db).await?;
        Ok(())
    }

    /// The stairway for migration `v` on a database at golden v-1. Returns false when the
    /// database was left off golden state v.
    async fn check_one(
        &mut self,
        s: &mut Session,
        v: usize,
        m: &Migration,
        progress: &dyn Progress,
    ) -> Result<bool, RunError> {
        progress.migration(v - 1, &m.id(), "up with data");
        let tables = self.seed(s).await?;
        let before_up = data::stash(s.conn(), 1, &tables).await.map_err(lost)?;
        let context = "applies on an empty database but fails once tables hold rows: ";
        if !self.apply(s, m, Direction::Up, step::UP, context).await? {
            return Ok(false);
        }
        let mut golden = self.expect_schema(s, v, m, step::UP).await?;
        let findings = self.report.findings.len();
        self.expect_data(s, &before_up, m, step::UP, true, None).await?;
        // The round trip would only repeat a data finding of the up.
        let up_changed_data = self.report.findings.len() > findings;

        if m.down.is_some() {
            progress.migration(v - 1, &m.id(), "down");
            if !self.apply(s, m, Direction::Down, step::DOWN, "").await? {
                return Ok(false);
            }
            golden &= self.expect_schema(s, v - 1, m, step::DOWN).await?;
            if !up_changed_data {
                self.expect_data(s, &before_up, m, step::DOWN, false, None).await?;
            }
            progress.migration(v - 1, &m.id(), "up again");
            if !self.apply(s, m, Direction::Up, step::REUP, "").await? {
                return Ok(false);
            }
            golden &= self.expect_schema(s, v, m, step::REUP).await?;
        } else {
            let message = format!(
                "{} has no down migration: it cannot be rolled back",
                m.id()
            );
            if self.options.require_down {
                self.finding(Kind::Irreversible, m, "down", message);
            } else {
                self.note("irreversible", m, "down", message, None);
            }
        }

        progress.migration(v - 1, &m.id(), "rerun");
        let tables = catalog::tables(s.conn()).await.map_err(lost)?;
        let before_rerun = data::stash(s.conn(), 2, &tables).await.map_err(lost)?;
        if let Some(message) = self.migrate_to(s, v).await? {
            self.finding(Kind::NotIdempotent, m, step::RERUN, message);
            return Ok(false);
        }
        let snapshot_ok = self.expect_schema_as(s, v, m, step::RERUN, Kind::NotIdempotent).await?;
        golden &= snapshot_ok;
        self.expect_data(s, &before_rerun, m, step::RERUN, false, Some(Kind::NotIdempotent)).await?;

        if m.down.is_some() && golden {
            progress.migration(v - 1, &m.id(), "down with new rows");
            self.seed(s).await?;
            if !self.apply(s, m, Direction::Down, step::DOWN_NEW_ROWS, "fails once rows were written at this version: ").await? {
                return Ok(false);
            }
            golden &= self.expect_schema(s, v - 1, m, step::DOWN_NEW_ROWS).await?;
            if !self.apply(s, m, Direction::Up, step::UP_AFTER, "").await? {
                return Ok(false);
            }
        }
        Ok(golden)
    }

    async fn expect_schema_as(
        &mut self,
        s: &mut Session,
        version: usize,
        m: &Migration,
        step: &str,
        kind: Kind,
    ) -> Result<bool, RunError> {
        let before = self.report.findings.len();
        let ok = self.expect_schema(s, version, m, step).await?;
        for f in &mut self.report.findings[before..] {
            f.kind = kind;
        }
        Ok(ok)
    }
}

fn step_error_kind(e: &StepError) -> Kind {
    match e {
        StepError::Timeout { .. } => Kind::Timeout,
        _ => Kind::ApplyFailed,
    }
}

/// The schema after applying every up to an empty database, or the failure of the first up
/// that did not apply.
pub async fn golden_snapshot(
    server: &Server,
    set: &MigrationSet,
) -> Result<Result<Snapshot, String>, RunError> {
    let db = server.create().await?;
    let mut s = Session::open(&db, Duration::from_secs(600)).await?;
    let mut failure = None;
    for m in &set.migrations {
        if let Err(e) = s.apply(&m.version, &m.up, Direction::Up).await {
            if e.is_environment() {
                return Err(e.into());
            }
            failure = Some(format!("{} did not apply: {e}", m.id()));
            break;
        }
    }
    let snapshot = snapshot::take(s.conn()).await.map_err(lost)?;
    drop(s);
    server.drop_db(&db).await?;
    Ok(match failure {
        Some(message) => Err(message),
        None => Ok(snapshot),
    })
}

//! The `check` runner: the release gate. A clean linear apply on an empty database records the
//! golden snapshot of every version; then, for every migration, on a database at the previous
//! golden version holding seeded rows, it proves the stairway (up, down, up again, rerun, down
//! with rows written at the new version) and data preservation. Every finding of every
//! migration is reported; after one, the run resumes from golden state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::backend::{ScratchDb, Server, DROP_BATCH};
use crate::compare::{self, SchemaVerdict};
use crate::compat;
use crate::data_from::{self, DataFrom, Origin};
use crate::executor::{self, Direction, Session, StepError};
use crate::golden::{self, Golden};
use crate::guard;
use crate::model::machine::Fault;
use crate::observe::history::History;
use crate::observe::snapshot::{self, Snapshot};
use crate::observe::{catalog, data, readable, sequences};
use crate::report::{Finding, Kind, Note, NoteKind, Object, Place, Report, Source};
use crate::run::{lost, Event, Phase};
pub use crate::run::{Progress, RunError, Silent};
use crate::shrink;
use crate::source::config::CompatMode;
use crate::source::{split, Block, Migration, MigrationSet, Script};

/// What the user asked of `check`.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Column order differences fail the run instead of being notes.
    pub strict: bool,
    /// A migration without a down is a finding instead of a note.
    pub require_down: bool,
    /// An up that drops a table or column holding values is a note instead of a finding.
    pub allow_destructive: bool,
    /// A data-dependent up is a note instead of a finding (`--data-dependent warn`).
    pub data_dependent_warn: bool,
    /// How long one step may run before it is stopped and reported as `timeout`.
    pub step_timeout: Duration,
    /// Live columns' statistics the seeded rows take the shape of (`--stats-from`).
    pub shapes: crate::model::seed::Shapes,
    /// Rows to check the pending migrations over besides seeded ones (`--data-from`).
    pub data_from: Option<DataFrom>,
    /// What a failing statement of the previous release is (`--compat off|note|error`).
    pub compat: crate::source::config::CompatMode,
    /// The lock analysis (`--locks warn|error`); `None` when off.
    pub locks: Option<crate::locks::LockCheck>,
    /// How many parts of the stairway run at once, each on its own scratch database.
    pub jobs: usize,
    /// The migrations the stairway checks (`--since`, `--changed-from`); `None`: all. The
    /// golden pass applies the whole history either way.
    pub scope: Option<Scope>,
}

/// What a run was asked to check, when not the whole history.
#[derive(Debug, Clone)]
pub struct Scope {
    pub migrations: crate::source::changes::Scope,
    /// What chose them, for messages: `changed since origin/main`, `from 0003 on`.
    pub why: String,
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
    pub const REPEATABLE: &str = "repeatable after the versioned migrations";
    pub const REPEATABLE_AGAIN: &str = "repeatable applied again";
    pub const WRITE: &str = "rows written at this version";
}

/// The stairway runs in parts of about this many migrations, each starting from a fresh
/// database at its golden version (re-applying the ups before it), at most `MAX_PARTS`.
const MIGRATIONS_PER_PART: usize = 20;
/// Data-dependent failures of one up worked around (rows removed, applied again) before it
/// counts as failing outright.
const MAX_DATA_DEPENDENT: usize = 8;
const MAX_PARTS: usize = 8;
/// A database rebuilt at a golden version with at least this many ups applied is kept as a
/// checkpoint, which later rebuilds copy (`CREATE DATABASE ... TEMPLATE`) instead of applying
/// every up from the first again.
const CHECKPOINT_GAP: usize = 12;

/// Databases at golden versions without data, by version, shared by the parts of a run: the
/// templates of [`Run::session_at`]. Scratch databases like the others, dropped with them.
#[derive(Default)]
struct Checkpoints(Mutex<BTreeMap<usize, ScratchDb>>);

impl Checkpoints {
    /// The checkpoint at the highest version not above `version`.
    fn nearest(&self, version: usize) -> Option<(usize, ScratchDb)> {
        let at = self.0.lock().expect("not poisoned");
        at.range(..=version)
            .next_back()
            .map(|(v, db)| (*v, db.clone()))
    }

    fn keep(&self, version: usize, db: ScratchDb) {
        self.0.lock().expect("not poisoned").insert(version, db);
    }
}

struct Run<'a> {
    server: &'a Server,
    set: &'a MigrationSet,
    options: &'a CheckOptions,
    report: Report,
    /// The golden history this run reads (a part's own copy, filled as the golden pass runs).
    golden: Arc<Mutex<History>>,
    /// Seeding rounds so far; unique values differ per round.
    rounds: usize,
    /// Databases at golden versions to copy instead of rebuilding (shared by the parts).
    checkpoints: Arc<Checkpoints>,
    /// Set when a comparison found only noise: the database is not exactly golden any more.
    noisy: bool,
    /// The last script applied was an up, and it failed: applying it again to restore golden
    /// state would only fail (or time out) again.
    up_failed: bool,
    /// Noise already reported, by kind and objects.
    noise_seen: Vec<(NoteKind, String)>,
    /// The golden version the live schema was last seen to equal exactly, if no step ran since.
    at: Option<usize>,
    /// The tables of golden versions, as read from the database while it was exactly at them
    /// (the two latest).
    tables_of: Vec<(usize, Vec<catalog::Table>)>,
    /// The tables kept for version `at` carry the live identities (oids, signatures, column
    /// numbers): read or re-identified since `at` was last set.
    identified: bool,
    /// Every table seeded in this database, by name: as it was when seeded, and how that went.
    seeded: BTreeMap<String, Seeding>,
    /// What the current migration's up dropped while it held values (`schema.table`, and the
    /// column unless the whole table went): reported once, on the up, and left out of the
    /// round trip's data comparison, where its loss is inevitable.
    dropped: Vec<(String, Option<String>)>,
    /// Tables found unable to take rows, by table, SQLSTATE and message: reported once, at the
    /// first version seen so.
    unwritable: BTreeSet<(String, String, String)>,
    /// The database holds the project's own rows (`--data-from`): nothing is seeded, and an up
    /// failing on them is not shrunk.
    real: bool,
    /// Where a stairway part sends the databases it is done with, to be dropped beside it
    /// instead of before its next step (`DROP DATABASE` waits on the server's checkpointer);
    /// `None`: dropped at once.
    discarded: Option<mpsc::UnboundedSender<ScratchDb>>,
}

/// One table's last seeding round in a database.
struct Seeding {
    /// The table as it was then.
    table: catalog::Table,
    /// The round (rounds only grow in one database).
    round: usize,
    /// Whether it held rows after it: it took some, or kept rows it had.
    held: bool,
}

/// The previous release's statements for one migration, and how each fared before its up.
struct Previous {
    probes: Vec<compat::Probe>,
    before: Vec<Option<data::Refusal>>,
}

/// True when no migration has a down: by design (Prisma, Drizzle, Atlas) or by the project's
/// choice (refinery, Flyway without undo). Said once in the summary, not once per migration.
fn forward_only(set: &MigrationSet) -> bool {
    set.forward_only || set.migrations.iter().all(|m| m.down.is_none())
}

pub async fn run(
    server: &Server,
    set: &MigrationSet,
    options: &CheckOptions,
    progress: &dyn Progress,
) -> Result<Report, RunError> {
    let started = Instant::now();
    let source = Source {
        dir: set.dir.display().to_string(),
        format: set.format.to_string(),
    };
    let mut report = Report::new("check", source, set.migrations.len(), server.kind_name());
    report.server = server.version.clone();
    let mut run = Run::new(server, set, options, report);
    for note in &set.notes {
        run.report.notes.push(Note {
            kind: NoteKind::Source,
            migration: None,
            step: None,
            message: note.clone(),
            diff: None,
        });
    }
    progress.event(Event::Started {
        migrations: set.migrations.len(),
        checked: options
            .scope
            .as_ref()
            .map_or(set.migrations.len(), |s| s.migrations.count()),
    });
    // The golden pass and the stairway run side by side: a part of the stairway waits only
    // for the golden versions it needs.
    let first = run.first_selected();
    let parts = parts(set.migrations.len() + 1 - first)
        .into_iter()
        .map(|p| p.start() + first - 1..=p.end() + first - 1)
        .collect::<Vec<_>>();
    // Each part keeps the golden versions it reads: the one before it, and its own.
    let histories: Vec<Arc<Mutex<History>>> = parts
        .iter()
        .map(|p| Arc::new(Mutex::new(History::window(p.start() - 1, *p.end()))))
        .collect();
    // `--data-from`: the source is read first, for the version its rows are at, whose golden
    // snapshots on its pass keeps.
    let mut origin = match &options.data_from {
        Some(from) => Some(data_from::open(server, from, set).await?),
        None => None,
    };
    let yours = origin.as_ref().map(|o| {
        Arc::new(Mutex::new(History::window(
            o.version.max(1) - 1,
            set.migrations.len(),
        )))
    });
    // The golden pass leaves a copy of its database where a part starts late enough for the
    // copy to beat applying every up before it again.
    let copied: BTreeSet<usize> = parts
        .iter()
        .map(|p| p.start() - 1)
        .filter(|v| *v >= CHECKPOINT_GAP)
        .collect();
    let checkpoints = run.checkpoints.clone();
    let keep_copy = |v: usize, db: ScratchDb| checkpoints.keep(v, db);
    let copies = golden::Copies {
        at: copied.clone(),
        keep: &keep_copy,
    };
    let (recorded, ready) = watch::channel(Ready::default());
    // No history reads a version before its window: those are not snapshotted (a check of
    // the newest migrations of a long history reads only the last few).
    let read_from = histories
        .iter()
        .chain(&yours)
        .map(|h| h.lock().expect("not poisoned").first())
        .min()
        .unwrap_or(0);
    let golden_pass = async {
        let mut feed = |snapshot: Option<Snapshot>| {
            for h in histories.iter().chain(&yours) {
                let mut h = h.lock().expect("not poisoned");
                match &snapshot {
                    Some(s) => h.push(s.clone()),
                    None => h.pass(),
                }
            }
            recorded.send_modify(|r| r.versions += 1);
        };
        let golden = golden::pass(
            server,
            set,
            options.step_timeout,
            progress,
            false,
            Some(golden::Snapshots {
                from: read_from,
                keep: &mut feed,
            }),
            Some(&copies),
        )
        .await;
        recorded.send_modify(|r| r.over = true);
        golden
    };
    let stairway = run.stairways(parts, &histories, &copied, ready, progress);
    let joined = tokio::try_join!(golden_pass, stairway);
    let (golden, reports) = match joined {
        Ok(joined) => joined,
        Err(e) => {
            if let Some(origin) = origin {
                origin.close(server).await;
            }
            return Err(e);
        }
    };
    let usable = run.golden_findings(golden);
    run.merge(reports);
    if let (Some(mut origin), Some(history)) = (origin.take(), yours) {
        let yours = run
            .with_your_data(&mut origin, history, usable, progress)
            .await;
        origin.close(server).await;
        run.merge_yours(yours?);
    }
    if usable == set.migrations.len() && !set.repeatable.is_empty() {
        run.repeatables().await?;
    }
    // ---- lock analysis (`--locks warn|error`): a pass of its own, see `crate::locks` ----
    if let Some(locks) = &options.locks {
        crate::locks::add_to_check(&mut run.report, server, set, locks, progress).await?;
    }
    // ---- end of lock analysis ----
    progress.event(Event::Finished);
    run.edited_after_release();
    let in_scope: Vec<bool> = (1..=set.migrations.len())
        .map(|v| run.selected(v))
        .collect();
    let in_scope = |i: &usize| in_scope[*i];
    run.report.summary.downs = Some(
        (0..set.migrations.len())
            .filter(|i| in_scope(i) && set.migrations[*i].down.is_some())
            .count(),
    );
    run.report.summary.downs_tested.get_or_insert(0);
    if forward_only(set) {
        run.report.summary.forward_only = Some(format!(
            "forward-only project: {} migrations have no down, so rolling a release back \
             means restoring a backup; proven for each migration checked: its up applies over \
             seeded rows and keeps their data, a rerun applies nothing, and an interrupted \
             non-transactional up converges when retried",
            if set.forward_only {
                format!("{} (a forward-only layout)", set.format)
            } else {
                "its".to_owned()
            }
        ));
    }
    run.report.skipped = (0..set.migrations.len())
        .filter(in_scope)
        .map(|i| set.migrations[i].id())
        .filter(|id| !run.report.checked.contains(id))
        .filter(|id| !run.report.findings.iter().any(|f| f.migration == *id))
        .collect();
    if let Some(scope) = &options.scope {
        run.report.summary.in_scope = Some(scope.migrations.count());
        run.report.summary.scope = Some(scope.why.clone());
    }
    run.report.locate(|id, step| set.file_of(id, step));
    run.report.finish(started.elapsed());
    Ok(run.report)
}

impl<'a> Run<'a> {
    fn finding(&mut self, kind: Kind, m: &Migration, step: &str, message: String) -> &mut Finding {
        self.report
            .findings
            .push(Finding::new(kind, m.id(), step.to_owned(), message));
        self.report.findings.last_mut().expect("just pushed")
    }

    fn note(
        &mut self,
        kind: NoteKind,
        m: &Migration,
        step: &str,
        message: String,
        diff: Option<String>,
    ) {
        let id = m.id();
        if self
            .report
            .notes
            .iter()
            .any(|n| n.kind == kind && n.migration.as_deref() == Some(&id))
        {
            return; // one note per kind and migration
        }
        self.report.notes.push(Note {
            kind,
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

    fn new(
        server: &'a Server,
        set: &'a MigrationSet,
        options: &'a CheckOptions,
        report: Report,
    ) -> Run<'a> {
        Run {
            server,
            set,
            options,
            report,
            golden: Arc::default(),
            rounds: 0,
            checkpoints: Arc::default(),
            noisy: false,
            up_failed: false,
            noise_seen: Vec::new(),
            at: None,
            tables_of: Vec::new(),
            identified: false,
            seeded: BTreeMap::new(),
            dropped: Vec::new(),
            unwritable: BTreeSet::new(),
            real: false,
            discarded: None,
        }
    }

    /// Drops `db`, which no session uses any more: beside the run when it has a reaper.
    async fn discard(&self, db: ScratchDb) -> Result<(), RunError> {
        match &self.discarded {
            Some(reaper) => match reaper.send(db) {
                Ok(()) => Ok(()),
                Err(mpsc::error::SendError(db)) => Ok(self.server.drop_db(&db).await?),
            },
            None => Ok(self.server.drop_db(&db).await?),
        }
    }

    /// Whether migration `v` (1-based) is in the run's scope.
    fn selected(&self, v: usize) -> bool {
        self.options
            .scope
            .as_ref()
            .is_none_or(|s| s.migrations.selected.get(v - 1) == Some(&true))
    }

    /// The first migration in scope (1-based); one past the last when none is.
    fn first_selected(&self) -> usize {
        (1..=self.set.migrations.len())
            .find(|v| self.selected(*v))
            .unwrap_or(self.set.migrations.len() + 1)
    }

    /// An `edited_after_release` finding per migration of the scope that was present at the
    /// ref and whose file changed since: databases that ran it will not run the new text.
    fn edited_after_release(&mut self) {
        let Some(scope) = &self.options.scope else {
            return;
        };
        for (i, path) in &scope.migrations.edited {
            let m = &self.set.migrations[*i];
            let message = format!(
                "{} was already released ({}) and its file `{}` was edited since: a database \
                 that ran it will not run the new text, and migrators that keep checksums \
                 (sqlx, Flyway) refuse to start; restore the released text and put the change \
                 in a new migration",
                m.id(),
                scope.why,
                path.display()
            );
            let f = Finding {
                place: Some(crate::report::Place::file(path)),
                ..Finding::new(Kind::EditedAfterRelease, m.id(), "released".into(), message)
            };
            self.report.findings.push(f);
        }
    }

    /// Records what the golden pass found. Returns how many migrations applied on an empty
    /// database (the stairway covers only those).
    fn golden_findings(&mut self, golden: Golden) -> usize {
        self.report.summary.steps += golden.versions - 1;
        let usable = golden.versions - 1;
        let set = self.set;
        for (i, change) in golden.side_effects {
            self.side_effect(&set.migrations[i], step::UP_EMPTY, Direction::Up, change);
        }
        if let Some(e) = golden.failure {
            let m = &self.set.migrations[usable];
            let later = self.set.migrations.len() - usable - 1;
            let skipped = if later > 0 {
                format!("; the {later} migration(s) after it were not checked")
            } else {
                String::new()
            };
            self.finding(e.kind(), m, step::UP_EMPTY, format!("{e}{skipped}"))
                .place = e.place().cloned();
        }
        usable
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
        let verdict = {
            let mut history = self.golden.lock().expect("not poisoned");
            compare::schema(
                history.get(version),
                &actual,
                self.options.strict,
                (&label, &after),
            )
        };
        self.seen_at(matches!(verdict, SchemaVerdict::Equal).then_some(version));
        match verdict {
            SchemaVerdict::Equal => Ok(true),
            SchemaVerdict::Noise {
                notes,
                objects,
                diff,
            } => {
                for (kind, message) in notes {
                    // The same noise seen again at a later migration was already reported.
                    let key = (kind, objects.clone());
                    if !self.noise_seen.contains(&key) {
                        self.noise_seen.push(key);
                        let message = format!("{message}: {objects}");
                        self.note(kind, m, step, message, Some(diff.clone()));
                    }
                    // A column order that drifted stays drifted; start the next migration
                    // from a database that is exactly golden.
                    self.noisy |= kind == NoteKind::ColumnOrder;
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

    /// A sequence that, after `step`, would next give a value its column already holds, and
    /// did not before the migration (`before`): a `sequence_behind` finding.
    async fn expect_sequences(
        &mut self,
        s: &mut Session,
        m: &Migration,
        step: &str,
        before: &[sequences::Behind],
    ) -> Result<(), RunError> {
        let now = sequences::behind(s.conn()).await.map_err(lost)?;
        if let Some(message) = compare::sequences_behind(before, &now) {
            self.finding(Kind::SequenceBehind, m, step, message);
        }
        Ok(())
    }

    /// A view or materialized view that cannot be read after `step` and could before the
    /// migration (`before`): an `unreadable` finding.
    async fn expect_readable(
        &mut self,
        s: &mut Session,
        m: &Migration,
        step: &str,
        before: &readable::Views,
    ) -> Result<(), RunError> {
        let now = readable::unreadable(s.conn()).await.map_err(lost)?;
        if let Some(message) = compare::unreadable(before, &now) {
            self.finding(Kind::Unreadable, m, step, message);
        }
        Ok(())
    }

    /// Runs the project's own verify script of migration `at` (1-based; 0 or a migration
    /// without one verifies nothing). `Ok(Err(..))` is the verify's failure.
    async fn verify(&self, s: &mut Session, at: usize) -> Result<Result<(), StepError>, RunError> {
        let script = at
            .checked_sub(1)
            .and_then(|i| self.set.verify.get(&self.set.migrations[i].id()));
        match script {
            None => Ok(Ok(())),
            Some(script) => match s.verify(script).await {
                Err(e) if e.is_environment() => Err(e.into()),
                verified => Ok(verified),
            },
        }
    }

    /// The project's own verify script of migration `at`, the one the database is at after
    /// `step`, fails: a `verify_failed` finding. `passed_before`: whether it passed before
    /// the migration under check ran, for a step that comes back to `at` (a verify that
    /// failed there already is not the step's doing).
    async fn expect_verified(
        &mut self,
        s: &mut Session,
        m: &Migration,
        step: &str,
        at: usize,
        passed_before: bool,
    ) -> Result<(), RunError> {
        if let Err(e) = self.verify(s, at).await? {
            if passed_before {
                let message = format!(
                    "the verify script of {} fails after this step: {e}",
                    self.set.migrations[at - 1].id()
                );
                self.finding(Kind::VerifyFailed, m, step, message).place = e.place().cloned();
            }
        }
        Ok(())
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
        let tables = self.tables(s).await?;
        let mut exclude = self.set.data.exclude(Some(m));
        for (table, column) in &self.dropped {
            exclude.add(table, column.as_deref());
        }
        let diffs = data::compare(s.conn(), stash, &tables, &exclude)
            .await
            .map_err(lost)?;
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
        match self.apply_step(s, m, direction, step).await? {
            Ok(()) => Ok(true),
            Err(e) => {
                let kind = e.kind();
                self.finding(kind, m, step, format!("{context}{e}")).place = e.place().cloned();
                Ok(false)
            }
        }
    }

    /// Applies a script: the server's refusal is returned, the environment's failure is the
    /// run's error.
    async fn apply_step(
        &mut self,
        s: &mut Session,
        m: &Migration,
        direction: Direction,
        step: &str,
    ) -> Result<Result<(), StepError>, RunError> {
        let script = match direction {
            Direction::Up => &m.up,
            Direction::Down => m.down.as_ref().expect("only called with a down"),
        };
        self.report.summary.steps += 1;
        self.at = None;
        let (applied, changes) =
            guard::watched(self.server, s.apply(&m.version, script, direction)).await?;
        for change in changes {
            self.side_effect(m, step, direction, change);
        }
        self.up_failed = direction == Direction::Up && applied.is_err();
        match applied {
            Err(e) if e.is_environment() => Err(e.into()),
            applied => Ok(applied),
        }
    }

    /// Tables and columns the up of `m` dropped (by identity: a renamed one is not dropped; one
    /// rebuilt or added again under the same name is not either) while they held values in the rows `before` it: one `destructive` finding on the up,
    /// whose loss the round trip then does not report again. A note when the project declares
    /// the change under `[data.changes]` in migproof.toml, or with `--allow-destructive`.
    async fn destructive(
        &mut self,
        s: &mut Session,
        m: &Migration,
        tables: &[catalog::Table],
        before: &data::Stash,
    ) -> Result<(), RunError> {
        // (read once: the data comparison of the up reuses these tables)
        let after = self.tables(s).await?;
        let declared = self.set.data.exclude(Some(m));
        let mut lines = Vec::new();
        for t in tables {
            // A table rebuilt under its name (copied into a new one, the old dropped) or a
            // column dropped and added again under its name is a change the data comparison
            // judges, not a drop.
            let now = after.iter().find(|a| a.oid == t.oid);
            let rebuilt = after.iter().any(|a| a.display_name() == t.display_name());
            let gone: Vec<Option<(usize, &str)>> = match now {
                None if rebuilt => vec![],
                None => vec![None],
                Some(now) => t
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        !now.columns
                            .iter()
                            .any(|n| n.attnum == c.attnum || n.name == c.name)
                    })
                    .map(|(i, c)| Some((i, c.name.as_str())))
                    .collect(),
            };
            for column in gone {
                let held = data::held(s.conn(), before, &t.display_name(), column.map(|c| c.0))
                    .await
                    .map_err(lost)?;
                if held == 0 {
                    continue;
                }
                let name = column.map(|(_, c)| c.to_owned());
                let what = match &name {
                    None => format!("table {} and its {held} row(s)", t.display_name()),
                    Some(c) => format!(
                        "column {}.{c}, which held values in {held} row(s)",
                        t.display_name()
                    ),
                };
                let is_declared = match &name {
                    None => declared.table(t),
                    Some(c) => declared.table(t) || declared.column(t, c),
                };
                self.dropped.push((t.display_name(), name));
                lines.push((what, is_declared));
            }
        }
        if lines.is_empty() {
            return Ok(());
        }
        let all_declared = lines.iter().all(|(_, d)| *d);
        let what: Vec<String> = lines.into_iter().map(|(w, _)| w).collect();
        let message = format!(
            "the up drops {}: no down can bring those values back, so a rollback loses them. \
             The round trip does not report that loss again",
            what.join("; ")
        );
        if all_declared || self.options.allow_destructive {
            let why = if all_declared {
                "declared under [data.changes] in migproof.toml"
            } else {
                "allowed by --allow-destructive"
            };
            self.note(
                NoteKind::Destructive,
                m,
                step::UP,
                format!("{message} ({why})"),
                None,
            );
        } else {
            let entries: Vec<String> = self
                .dropped
                .iter()
                .map(|(table, column)| {
                    let table = table.strip_prefix("public.").unwrap_or(table);
                    match column {
                        Some(c) => format!("\"{table}.{c}\""),
                        None => format!("\"{table}\""),
                    }
                })
                .collect();
            let hint = format!(
                "; if it is meant, declare it in migproof.toml ([data.changes] \"{}\" = [{}]) \
                 or pass --allow-destructive",
                m.id(),
                entries.join(", ")
            );
            self.finding(Kind::Destructive, m, step::UP, message + &hint);
        }
        Ok(())
    }

    /// Applies the up of `m` over the seeded rows of `tables` (the database at golden v-1).
    /// An up that fails on particular rows (see [`shrink::culprit`]) is a `data_dependent`
    /// finding holding the fewest seeded rows that still make it fail; those rows are removed
    /// and the up applied again, so that its down, round trip and rerun are still checked.
    /// Returns the rows the up finally ran over, or `None` when it did not apply.
    async fn up_over_rows(
        &mut self,
        s: &mut Session,
        m: &Migration,
        tables: &[catalog::Table],
    ) -> Result<Option<data::Stash>, RunError> {
        let context = "applies on an empty database but fails once tables hold rows: ";
        let mut seen = Vec::new();
        for _ in 0..MAX_DATA_DEPENDENT {
            let before = data::stash(s.conn(), 1, tables).await.map_err(lost)?;
            let e = match self.apply_step(s, m, Direction::Up, step::UP).await? {
                Ok(()) => return Ok(Some(before)),
                Err(e) => e,
            };
            if self.real {
                self.failed_on_your_rows(s, m, &e).await?;
                return Ok(None);
            }
            let Some(culprit) = shrink::culprit(&e, &m.up, tables) else {
                let kind = e.kind();
                self.finding(kind, m, step::UP, format!("{context}{e}"))
                    .place = e.place().cloned();
                return Ok(None);
            };
            let key = (culprit.table.clone(), culprit.code.clone());
            if seen.contains(&key) {
                // Removing the rows did not help: the up fails on any rows of that table.
                let kind = e.kind();
                self.finding(kind, m, step::UP, format!("{context}{e}"))
                    .place = e.place().cloned();
                return Ok(None);
            }
            seen.push(key);
            let found = shrink::minimal_rows(s.conn(), &m.up, &culprit)
                .await
                .map_err(lost)?;
            let message = found.message(&culprit, &e);
            let accepted = match self.set.data.assumption(m) {
                Some(assumed) => Some(format!(
                    "accepted under [assume] in migproof.toml: \"{assumed}\""
                )),
                None if self.options.data_dependent_warn => {
                    Some("a note under --data-dependent warn".to_owned())
                }
                None => None,
            };
            match accepted {
                Some(why) => {
                    let rows = found
                        .rows
                        .iter()
                        .map(|r| format!("\n  {r}"))
                        .collect::<String>();
                    let message = format!("{message} ({why}){rows}");
                    self.note(NoteKind::DataDependent, m, step::UP, message, None);
                }
                None => {
                    let f = self.finding(Kind::DataDependent, m, step::UP, message);
                    f.place = e.place().cloned();
                    f.rows = found.rows.clone();
                }
            }
            if !culprit.retry {
                return Ok(None);
            }
            found.remove(s.conn(), &culprit).await.map_err(lost)?;
        }
        self.finding(
            Kind::ApplyFailed,
            m,
            step::UP,
            format!(
                "{context}the up still fails after the rows behind {MAX_DATA_DEPENDENT} \
                 data-dependent failures were removed"
            ),
        );
        Ok(None)
    }

    /// A `global_side_effect` finding for `change`, unless an earlier step of `m` reported it.
    fn side_effect(&mut self, m: &Migration, step: &str, direction: Direction, change: String) {
        let script = match direction {
            Direction::Up => "up",
            Direction::Down => "down",
        };
        let message = format!("the {script} changed the server outside its database: {change}");
        let f = Finding::new(Kind::GlobalSideEffect, m.id(), step.to_owned(), message);
        if !repeats_a_side_effect(&self.report.findings, &f) {
            self.report.findings.push(f);
        }
    }

    /// The live tables: read from the database, or, while it is exactly at a golden version
    /// whose tables were read before, those, with the identities a down and an up change
    /// (oids, signatures, column numbers) read again where a step ran since.
    async fn tables(&mut self, s: &mut Session) -> Result<Vec<catalog::Table>, RunError> {
        if let Some(v) = self.at {
            if let Some(at) = self.tables_of.iter().position(|(w, _)| *w == v) {
                if self.identified {
                    return Ok(self.tables_of[at].1.clone());
                }
                let kept = &self.tables_of[at].1;
                if let Some(tables) = catalog::reidentified(s.conn(), kept).await.map_err(lost)? {
                    self.tables_of[at].1 = tables.clone();
                    self.identified = true;
                    return Ok(tables);
                }
            }
        }
        let tables = catalog::signed_tables(s.conn()).await.map_err(lost)?;
        if let Some(v) = self.at {
            self.tables_of.retain(|(w, _)| *w != v);
            self.tables_of.push((v, tables.clone()));
            if self.tables_of.len() > 2 {
                self.tables_of.remove(0);
            }
            self.identified = true;
        }
        Ok(tables)
    }

    /// Writes a seeding round into the tables that need one: those never seeded in this
    /// database, changed since (columns, keys, constraints, indexes, triggers, defaults...),
    /// or left without rows. A table seeded before as it is now still holds those rows, and
    /// another round of the same rows would test nothing new: skipping it keeps the cost of a
    /// migration's check proportional to what it changes, not to the size of the schema. An
    /// empty table left empty by its last round as it is now (every row refused: a trigger
    /// that rejects the seeder's values, a parent table without rows) is tried again only
    /// once a table it references is seeded again and holds rows: until then the same rows
    /// meet the same refusal. Returns every live table.
    ///
    /// A table that refuses every write because a function or trigger is broken at this
    /// version (`compare::unwritable`) is a finding on migration `at`, the last applied.
    async fn seed(&mut self, s: &mut Session, at: usize) -> Result<Vec<catalog::Table>, RunError> {
        let tables = self.tables(s).await?;
        if self.real {
            return Ok(tables);
        }
        let same: Vec<&catalog::Table> = tables
            .iter()
            .filter(|t| self.seeded_as(t).is_some())
            .collect();
        let empty = empty_ones(s, &same).await?;
        // Parents first, so that a parent seeded again makes its children due in turn.
        let mut due: Vec<catalog::Table> = Vec::new();
        for t in catalog::parents_first(&tables) {
            let Some(last) = self.seeded_as(t) else {
                due.push(t.clone());
                continue;
            };
            if !empty.contains(&t.sql_name()) {
                continue;
            }
            let parent_since = t.foreign_keys.iter().any(|fk| {
                due.iter().any(|d| d.sql_name() == fk.ref_table)
                    || self.seeded.values().any(|p| {
                        p.held && p.round > last.round && p.table.sql_name() == fk.ref_table
                    })
            });
            if last.held || parent_since {
                due.push(t.clone());
            }
        }
        let seeded = s
            .seed(&due, self.rounds, &self.set.data, &self.options.shapes)
            .await
            .map_err(lost)?;
        let took_none: Vec<&catalog::Table> = due
            .iter()
            .filter(|t| !seeded.rows.iter().any(|(n, _)| *n == t.display_name()))
            .collect();
        let left_empty = empty_ones(s, &took_none).await?;
        for table in due {
            let held = !left_empty.contains(&table.sql_name());
            let name = table.display_name();
            let round = self.rounds;
            self.seeded.insert(name, Seeding { table, round, held });
        }
        self.rounds += 1;
        self.report.summary.steps += 1;
        self.report.summary.rows_seeded += seeded.inserted;
        self.report.summary.rows_skipped += seeded.skipped;
        for r in &seeded.rejections {
            let Some(message) = compare::unwritable(r) else {
                continue;
            };
            let key = (r.table.clone(), r.why.code.clone(), r.why.message.clone());
            let Some(m) = at.checked_sub(1).map(|i| &self.set.migrations[i]) else {
                continue;
            };
            if self.unwritable.insert(key) {
                let f = self.finding(Kind::Unwritable, m, step::WRITE, message);
                let table = Object {
                    table: r.table.clone(),
                    column: None,
                };
                f.place = Some(Place {
                    object: Some(Box::new(table)),
                    ..Place::file(&m.up.path).sqlstate(&r.why.code)
                });
            }
        }
        Ok(tables)
    }

    /// The last seeding of table `t` in this database, when `t` was then as it is now.
    fn seeded_as(&self, t: &catalog::Table) -> Option<&Seeding> {
        self.seeded.get(&t.display_name()).filter(|s| s.table == *t)
    }

    /// Records that the live schema was just seen to equal golden `at` exactly (or none): the
    /// tables kept for it must have their identities read again before they are used.
    fn seen_at(&mut self, at: Option<usize>) {
        self.at = at;
        self.identified = false;
    }

    /// Brings the database back to golden `v` after migration v's checks left it elsewhere:
    /// in place where that works, keeping its rows (so the next migration seeds only what
    /// changed), else a [`rebuild`](Self::rebuild). In place: the up applied again when its
    /// record is gone and it was not the script that just failed, then a snapshot that must
    /// equal golden v exactly, column order included; the same proof every step's database
    /// gets.
    async fn restore(
        &mut self,
        db: ScratchDb,
        mut s: Session,
        v: usize,
    ) -> Result<(ScratchDb, Session), RunError> {
        if !self.noisy && self.restored(&mut s, v).await {
            self.seen_at(Some(v));
            return Ok((db, s));
        }
        self.rebuild(db, s, v).await
    }

    /// Whether the database is at golden `v` exactly, after applying the up again where it
    /// is pending. Any failure on the way is a no: the rebuild then runs.
    async fn restored(&mut self, s: &mut Session, v: usize) -> bool {
        let m = &self.set.migrations[v - 1];
        let Ok(applied) = s.applied().await else {
            return false;
        };
        let recorded = |i: usize| applied.contains(&self.set.migrations[i].version);
        if (0..v - 1).any(|i| !recorded(i)) {
            return false;
        }
        if !recorded(v - 1) {
            if self.up_failed {
                return false;
            }
            self.report.summary.steps += 1;
            if s.apply(&m.version, &m.up, Direction::Up).await.is_err() {
                return false;
            }
        }
        let Ok(actual) = snapshot::take(s.conn()).await else {
            return false;
        };
        let mut history = self.golden.lock().expect("not poisoned");
        matches!(
            compare::schema(history.get(v), &actual, true, ("", "")),
            SchemaVerdict::Equal
        )
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
        self.discard(db).await?;
        self.at = None;
        self.tables_of.clear();
        self.seeded.clear();
        self.session_at(version).await
    }

    /// The migrations up to `target` that a migrator rerun would apply: those not recorded.
    async fn pending(&mut self, s: &mut Session, target: usize) -> Result<Vec<usize>, RunError> {
        let applied = s.applied().await?;
        Ok((0..target)
            .filter(|&i| !applied.contains(&self.set.migrations[i].version))
            .collect())
    }

    /// Runs the migrator again: applies the `pending` migrations.
    async fn migrate(
        &mut self,
        s: &mut Session,
        pending: &[usize],
    ) -> Result<Option<String>, RunError> {
        self.at = None;
        for &i in pending {
            let m = &self.set.migrations[i];
            self.report.summary.steps += 1;
            if let Err(e) = s.apply(&m.version, &m.up, Direction::Up).await {
                if e.is_environment() {
                    return Err(e.into());
                }
                return Ok(Some(format!(
                    "rerun applied {} again and it failed: {e}",
                    m.id()
                )));
            }
        }
        Ok(None)
    }

    /// Repeatable migrations (Flyway's `R__`) run after the versioned ones and again whenever
    /// they change, so applying one a second time must change nothing.
    async fn repeatables(&mut self) -> Result<(), RunError> {
        let (db, mut s) = self.session().await?;
        self.seeded.clear();
        for m in &self.set.migrations {
            s.apply(&m.version, &m.up, Direction::Up).await?;
        }
        for r in &self.set.repeatable {
            if !self
                .apply(&mut s, r, Direction::Up, step::REPEATABLE, "")
                .await?
            {
                drop(s);
                self.server.drop_db(&db).await?;
                return Ok(());
            }
        }
        let at = self.set.migrations.len();
        self.seed(&mut s, at).await?;
        let before = snapshot::take(s.conn()).await.map_err(lost)?;
        let tables = catalog::tables(s.conn()).await.map_err(lost)?;
        let stash = data::stash(s.conn(), 3, &tables).await.map_err(lost)?;
        for r in &self.set.repeatable {
            self.report.summary.steps += 1;
            if let Err(e) = s.apply(&r.id(), &r.up, Direction::Up).await {
                if e.is_environment() {
                    return Err(e.into());
                }
                let message = format!("applying it a second time failed: {e}");
                self.finding(Kind::NotIdempotent, r, step::REPEATABLE_AGAIN, message);
                continue;
            }
            let after = snapshot::take(s.conn()).await.map_err(lost)?;
            let labels = ("schema after the first apply", "after applying it again");
            if let SchemaVerdict::Mismatch { diff, summary } =
                compare::schema(&before, &after, self.options.strict, labels)
            {
                let message = format!("applying it again changed the schema: {summary}");
                self.finding(Kind::NotIdempotent, r, step::REPEATABLE_AGAIN, message)
                    .diff = Some(diff);
            }
            self.expect_data(
                &mut s,
                &stash,
                r,
                step::REPEATABLE_AGAIN,
                false,
                Some(Kind::NotIdempotent),
            )
            .await?;
        }
        drop(s);
        self.server.drop_db(&db).await?;
        Ok(())
    }

    /// Checks the migrations in contiguous `parts`, up to `options.jobs` parts at once, each
    /// on its own database brought to the golden version before its first migration (without
    /// the rows earlier parts seeded): a copy of the golden pass's database where it left one
    /// (`copied` versions), else by applying the ups before it as the golden pass records
    /// them. Each reads the golden history from `histories` as `ready` says it grows; a part stops at the first migration that did not apply on an empty
    /// database. The parts depend only on the number of migrations, and their reports are
    /// returned in migration order, so the report does not depend on the number of jobs.
    async fn stairways(
        &self,
        parts: Vec<std::ops::RangeInclusive<usize>>,
        histories: &[Arc<Mutex<History>>],
        copied: &BTreeSet<usize>,
        ready: watch::Receiver<Ready>,
        progress: &dyn Progress,
    ) -> Result<Vec<Report>, RunError> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let (reaper, mut discarded) = mpsc::unbounded_channel();
        let mut workers: Vec<Run> = histories
            .iter()
            .map(|h| {
                let report = Report::new("check", self.report.source.clone(), 0, "");
                Run {
                    golden: h.clone(),
                    checkpoints: self.checkpoints.clone(),
                    discarded: Some(reaper.clone()),
                    ..Run::new(self.server, self.set, self.options, report)
                }
            })
            .collect();
        drop(reaper);
        let runs = workers.iter_mut().zip(parts).map(|(w, part)| {
            let mut ready = ready.clone();
            async move {
                let start = *part.start();
                if copied.contains(&(start - 1)) {
                    // The golden pass leaves a copy at the version before the part.
                    if !golden_has(&mut ready, start).await {
                        return Ok(());
                    }
                    let (db, s) = w.session_at(start - 1).await?;
                    return w.stairway((db, s), part, &mut ready, progress).await;
                }
                // The database is created at once, and brought to the version before the
                // part as the golden pass records the versions.
                let (db, mut s) = w.session().await?;
                for v in 1..=*part.start() {
                    if !golden_has(&mut ready, v).await {
                        drop(s);
                        w.server.drop_db(&db).await?;
                        return Ok(());
                    }
                    if v < *part.start() {
                        w.up_to_golden(&mut s, v).await?;
                    }
                }
                w.stairway((db, s), part, &mut ready, progress).await
            }
        });
        let (finished, mut done) = oneshot::channel::<()>();
        let stairs = async {
            let ran = stream::iter(runs)
                .buffer_unordered(self.options.jobs.max(1))
                .try_collect::<Vec<()>>()
                .await;
            let _ = finished.send(());
            ran
        };
        // Drops what the parts discard while they go on, DROP_BATCH at a time, and what is
        // left once they are done (a part that failed early still holds its sender).
        let reap = async {
            let mut failed = None;
            let mut parts_done = false;
            let mut batch = Vec::new();
            loop {
                let db = if parts_done {
                    discarded.recv().await
                } else {
                    tokio::select! {
                        db = discarded.recv() => db,
                        _ = &mut done => {
                            parts_done = true;
                            discarded.close();
                            continue;
                        }
                    }
                };
                let last = db.is_none();
                batch.extend(db);
                if batch.len() >= DROP_BATCH || (last && !batch.is_empty()) {
                    if let Err(e) = self.server.drop_all(&batch).await {
                        failed.get_or_insert(RunError::from(e));
                    }
                    batch.clear();
                }
                if last {
                    break;
                }
            }
            failed.map_or(Ok(()), Err)
        };
        let (ran, reaped) = tokio::join!(stairs, reap);
        ran?;
        reaped?;
        Ok(workers.into_iter().map(|w| w.report).collect())
    }

    /// `--data-from`: the migrations the source has not run, each checked as the stairway
    /// checks it, over the source's rows (loaded into a database at the version it is at)
    /// instead of seeded ones. A report of its own; it stops at a migration that leaves the
    /// database off golden state, since the rows cannot be loaded again at a later version.
    async fn with_your_data(
        &self,
        origin: &mut Origin,
        history: Arc<Mutex<History>>,
        usable: usize,
        progress: &dyn Progress,
    ) -> Result<Report, RunError> {
        let report = Report::new("check", self.report.source.clone(), 0, "");
        let mut w = Run {
            golden: history,
            checkpoints: self.checkpoints.clone(),
            real: true,
            ..Run::new(self.server, self.set, self.options, report)
        };
        let at = origin.version;
        let shown = match at {
            0 => "before any migration".to_owned(),
            v => format!("at {}", self.set.migrations[v - 1].id()),
        };
        if at >= usable {
            w.report.summary.your_data = Some(format!(
                "with your data: {} is {shown}, and no later migration applies; nothing was \
                 checked over its rows",
                origin.shown
            ));
            return Ok(w.report);
        }
        let (db, mut s) = w.session_at(at).await?;
        let tables = w.tables(&mut s).await?;
        let loaded = origin.copy(&mut s, &tables).await?;
        let tables = match loaded.tables {
            1 => "1 table".to_owned(),
            n => format!("{n} tables"),
        };
        let mut said = format!(
            "with your data: {} rows of {tables} from {} ({shown})",
            loaded.rows, origin.shown
        );
        let pending = usable.saturating_sub(at);
        let mut checked = 0;
        for v in at + 1..=usable {
            let m = &self.set.migrations[v - 1];
            w.noisy = false;
            let ok = w.check_one(&mut s, v, m, progress).await?;
            checked += 1;
            if !ok {
                if v < usable {
                    said.push_str(&format!(
                        "; stopped after {}, whose finding left the database off its golden \
                         state ({} later migrations not checked over your rows)",
                        m.id(),
                        usable - v
                    ));
                }
                break;
            }
        }
        said.push_str(&format!(
            "; {checked} of the {pending} pending migrations checked over them"
        ));
        drop(s);
        self.server.drop_db(&db).await?;
        w.report.summary.your_data = Some(said);
        Ok(w.report)
    }

    /// Adds the `--data-from` pass's findings and notes to this report, each step ending
    /// ` · with your data`.
    fn merge_yours(&mut self, mut yours: Report) {
        const TAG: &str = " · with your data";
        for mut f in yours.findings.drain(..) {
            f.step.push_str(TAG);
            if !repeats_a_side_effect(&self.report.findings, &f) {
                self.report.findings.push(f);
            }
        }
        for mut n in yours.notes.drain(..) {
            if let Some(step) = n.step.as_mut() {
                step.push_str(TAG);
            }
            self.report.notes.push(n);
        }
        self.report.summary.steps += yours.summary.steps;
        self.report.summary.your_data = yours.summary.your_data;
    }

    /// An up that failed over the project's own rows: a `data_dependent` finding when the
    /// failure is a data exception or an integrity violation, with how many rows violate it
    /// where that can be counted; else what it is. Not shrunk: the rows are the user's.
    async fn failed_on_your_rows(
        &mut self,
        s: &mut Session,
        m: &Migration,
        e: &StepError,
    ) -> Result<(), RunError> {
        let code = e
            .place()
            .and_then(|p| p.sqlstate.clone())
            .unwrap_or_default();
        if !(code.starts_with("22") || code.starts_with("23")) {
            let kind = e.kind();
            self.finding(kind, m, step::UP, format!("fails over your rows: {e}"))
                .place = e.place().cloned();
            return Ok(());
        }
        let count = shrink::violations(s.conn(), e).await.map_err(lost)?;
        let how_many = match count {
            Some((table, n)) => format!("{n} rows of {table} violate it"),
            None => "rows of yours violate it".to_owned(),
        };
        let message = format!(
            "applies on an empty database and on seeded rows, but fails over your rows: \
             {how_many} ({}): {e}\nthe deploy would stop on them in production",
            crate::report::data_cause(&code)
        );
        self.finding(Kind::DataDependent, m, step::UP, message)
            .place = e.place().cloned();
        Ok(())
    }

    /// Adds the parts' reports, in order, to this one.
    fn merge(&mut self, reports: Vec<Report>) {
        for r in reports {
            for f in r.findings {
                // a table unwritable at a part's first version, which the part before saw too
                let seen = f.kind == Kind::Unwritable && self.report.findings.contains(&f);
                if !seen && !repeats_a_side_effect(&self.report.findings, &f) {
                    self.report.findings.push(f);
                }
            }
            for note in r.notes {
                // The same noise seen by an earlier part was already reported.
                if !self
                    .report
                    .notes
                    .iter()
                    .any(|n| n.kind == note.kind && n.message == note.message)
                {
                    self.report.notes.push(note);
                }
            }
            self.report.checked.extend(r.checked);
            self.report.summary.steps += r.summary.steps;
            self.report.summary.rows_seeded += r.summary.rows_seeded;
            self.report.summary.rows_skipped += r.summary.rows_skipped;
            let tested = r.summary.downs_tested.unwrap_or(0);
            *self.report.summary.downs_tested.get_or_insert(0) += tested;
        }
    }

    /// A fresh database at golden `version` (without data), and a session on it: a copy of
    /// the nearest checkpoint at or below `version`, with the ups after it applied. One that
    /// took [`CHECKPOINT_GAP`] ups or more becomes a checkpoint itself.
    async fn session_at(&mut self, version: usize) -> Result<(ScratchDb, Session), RunError> {
        let copy = match self.checkpoints.nearest(version) {
            Some((at, template)) => self.server.create_from(&template).await?.map(|db| (at, db)),
            None => None,
        };
        let (from, db, mut s) = match copy {
            Some((at, db)) => {
                let s = Session::open(&db, self.options.step_timeout).await?;
                (at, db, s)
            }
            None => {
                let (db, s) = self.session().await?;
                (0, db, s)
            }
        };
        for v in from + 1..=version {
            self.up_to_golden(&mut s, v).await?;
        }
        if version - from >= CHECKPOINT_GAP {
            s.close().await;
            if let Some(checkpoint) = self.server.create_from(&db).await? {
                self.checkpoints.keep(version, checkpoint);
            }
            s = Session::open(&db, self.options.step_timeout).await?;
        }
        Ok((db, s))
    }

    /// Applies migration `v` to a database at golden v-1 without data, as the golden pass did.
    async fn up_to_golden(&self, s: &mut Session, v: usize) -> Result<(), RunError> {
        let m = &self.set.migrations[v - 1];
        s.apply(&m.version, &m.up, Direction::Up)
            .await
            .map_err(|e| {
                RunError::Lost(format!("failed to rebuild golden state at {}: {e}", m.id()))
            })
    }

    /// Checks the migrations of `part` in turn on `(db, s)`, a database at the golden version
    /// before the first of them.
    async fn stairway(
        &mut self,
        (mut db, mut s): (ScratchDb, Session),
        part: std::ops::RangeInclusive<usize>,
        ready: &mut watch::Receiver<Ready>,
        progress: &dyn Progress,
    ) -> Result<(), RunError> {
        for v in part {
            if !golden_has(ready, v).await {
                break; // migration v did not apply on an empty database
            }
            let m = &self.set.migrations[v - 1];
            if !self.selected(v) {
                // Out of scope: applied as the golden pass did, over the rows already there;
                // a fresh database at v where they stop it.
                self.at = None;
                if s.apply(&m.version, &m.up, Direction::Up).await.is_err() {
                    (db, s) = self.rebuild(db, s, v).await?;
                }
                continue;
            }
            self.noisy = false;
            let ok = self.check_one(&mut s, v, m, progress).await?;
            if !ok || self.noisy {
                (db, s) = self.restore(db, s, v).await?;
            }
            self.report.checked.push(m.id());
        }
        drop(s);
        self.discard(db).await?;
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
        progress.event(Event::Migration {
            index: v - 1,
            id: &m.id(),
            phase: Phase::UpWithData,
        });
        // Two seeding rounds per migration, numbered by it: the rows do not depend on which
        // part of the stairway checks it.
        self.rounds = 2 * (v - 1);
        let tables = self.seed(s, v - 1).await?;
        self.dropped.clear();
        let behind = sequences::behind(s.conn()).await.map_err(lost)?;
        let unreadable = readable::unreadable(s.conn()).await.map_err(lost)?;
        let verified_before = self.verify(s, v - 1).await?.is_ok();
        let previous = self.previous_release(s, v, &tables).await?;
        let Some(before_up) = self.up_over_rows(s, m, &tables).await? else {
            return Ok(false);
        };
        let mut golden = self.expect_schema(s, v, m, step::UP).await?;
        self.destructive(s, m, &tables, &before_up).await?;
        let findings = self.report.findings.len();
        self.expect_data(s, &before_up, m, step::UP, true, None)
            .await?;
        self.expect_sequences(s, m, step::UP, &behind).await?;
        self.expect_verified(s, m, step::UP, v, true).await?;
        self.expect_previous_release(s, m, previous).await?;
        // The round trip would only repeat a data finding of the up.
        let up_changed_data = self.report.findings.len() > findings;

        if m.down.is_some() {
            progress.event(Event::Migration {
                index: v - 1,
                id: &m.id(),
                phase: Phase::Down,
            });
            *self.report.summary.downs_tested.get_or_insert(0) += 1;
            if !self.apply(s, m, Direction::Down, step::DOWN, "").await? {
                return Ok(false);
            }
            let down_golden = self.expect_schema(s, v - 1, m, step::DOWN).await?;
            golden &= down_golden;
            if !up_changed_data {
                self.expect_data(s, &before_up, m, step::DOWN, false, None)
                    .await?;
            }
            self.expect_sequences(s, m, step::DOWN, &behind).await?;
            self.expect_readable(s, m, step::DOWN, &unreadable).await?;
            self.expect_verified(s, m, step::DOWN, v - 1, verified_before)
                .await?;
            if !down_golden {
                // Re-applying on a database that is not golden would only report echoes.
                return Ok(false);
            }
            progress.event(Event::Migration {
                index: v - 1,
                id: &m.id(),
                phase: Phase::UpAgain,
            });
            if !self.apply(s, m, Direction::Up, step::REUP, "").await? {
                return Ok(false);
            }
            golden &= self.expect_schema(s, v, m, step::REUP).await?;
        } else {
            let message = format!("{} has no down migration: it cannot be rolled back", m.id());
            if self.options.require_down {
                self.finding(Kind::Irreversible, m, "down", message);
            } else if !forward_only(self.set) {
                self.note(NoteKind::Irreversible, m, "down", message, None);
            }
        }

        progress.event(Event::Migration {
            index: v - 1,
            id: &m.id(),
            phase: Phase::Rerun,
        });
        let pending = self.pending(s, v).await?;
        // A rerun that applies nothing runs no statement: the schema is the one the last
        // comparison saw, and the rows are unchanged.
        if !pending.is_empty() {
            let tables = self.tables(s).await?;
            let before_rerun = data::stash(s.conn(), 2, &tables).await.map_err(lost)?;
            if let Some(message) = self.migrate(s, &pending).await? {
                self.finding(Kind::NotIdempotent, m, step::RERUN, message);
                return Ok(false);
            }
            let snapshot_ok = self
                .expect_schema_as(s, v, m, step::RERUN, Kind::NotIdempotent)
                .await?;
            golden &= snapshot_ok;
            self.expect_data(
                s,
                &before_rerun,
                m,
                step::RERUN,
                false,
                Some(Kind::NotIdempotent),
            )
            .await?;
        }

        if m.down.is_some() && golden {
            progress.event(Event::Migration {
                index: v - 1,
                id: &m.id(),
                phase: Phase::DownWithNewRows,
            });
            self.seed(s, v).await?;
            if !self
                .apply(
                    s,
                    m,
                    Direction::Down,
                    step::DOWN_NEW_ROWS,
                    "fails once rows were written at this version: ",
                )
                .await?
            {
                return Ok(false);
            }
            golden &= self.expect_schema(s, v - 1, m, step::DOWN_NEW_ROWS).await?;
            if !self.apply(s, m, Direction::Up, step::UP_AFTER, "").await? {
                return Ok(false);
            }
        }
        if m.down.is_some() && golden {
            golden &= self.interrupted_at_every_boundary(s, v, m).await?;
        }
        Ok(golden)
    }

    /// What the previous release runs on the tables and queries migration `v` could affect
    /// (`compat`), and how each fares at v-1, on `tables`, the live ones: `None` when nothing
    /// is to be tried.
    async fn previous_release(
        &mut self,
        s: &mut Session,
        v: usize,
        tables: &[catalog::Table],
    ) -> Result<Option<Previous>, RunError> {
        if self.options.compat == CompatMode::Off || v < 2 {
            return Ok(None);
        }
        let touched = {
            let mut history = self.golden.lock().expect("not poisoned");
            let changed = history.changes(v);
            compat::touched(&changed, history.get(v))
        };
        let changed = compat::tables(tables, &touched);
        let queries = compat::queries(&self.set.queries, &touched);
        if changed.is_empty() && queries.is_empty() {
            return Ok(None);
        }
        let probes = compat::probes(s, &changed, &queries, &self.set.data, &self.options.shapes)
            .await
            .map_err(lost)?;
        let before = compat::run(s, &probes, tables).await.map_err(lost)?;
        Ok(Some(Previous { probes, before }))
    }

    /// The previous release's statements again, after the up of `m`: those that worked before
    /// it and fail now are one `breaks_previous_release` note, or finding under `--compat
    /// error`.
    async fn expect_previous_release(
        &mut self,
        s: &mut Session,
        m: &Migration,
        previous: Option<Previous>,
    ) -> Result<(), RunError> {
        let Some(Previous { probes, before }) = previous else {
            return Ok(());
        };
        let tables = self.tables(s).await?;
        let after = compat::run(s, &probes, &tables).await.map_err(lost)?;
        let breaks = compat::breaks(&probes, &before, &after);
        let Some(first) = breaks.first() else {
            return Ok(());
        };
        let message = compat::message(&breaks);
        let mut place = Place::file(&m.up.path).sqlstate(&first.why.code);
        if let Some(table) = &first.probe.table {
            place.object = Some(Box::new(Object {
                table: table.clone(),
                column: None,
            }));
        }
        if self.options.compat == CompatMode::Error {
            self.finding(Kind::BreaksPreviousRelease, m, step::UP, message)
                .place = Some(place);
        } else {
            self.note(NoteKind::BreaksPreviousRelease, m, step::UP, message, None);
        }
        Ok(())
    }

    /// For an up whose parts commit on their own (a block run in autocommit, chunk by chunk:
    /// Flyway's non-transactional scripts, several blocks of dbmate), a crash between two of
    /// them leaves the first ones applied. For each boundary k, on the database at golden v-1
    /// with its rows (reached with the down): apply parts 1..k as the migrator would have,
    /// stop, and run the whole up again, as every migrator does once its record is cleared
    /// (sqlx and dbmate apply the file again; golang-migrate after `force`, Flyway after
    /// `repair`). The retry must apply and give golden v with the rows kept: else
    /// `retry_failed` or `residue_after_failure`, at step `interrupted after statement k (line
    /// L), then retried`. Returns false when the database was left off golden state v.
    async fn interrupted_at_every_boundary(
        &mut self,
        s: &mut Session,
        v: usize,
        m: &Migration,
    ) -> Result<bool, RunError> {
        let units = executor::commit_units(&m.up);
        for k in 1..units.len() {
            let Some(before) = self.partly_applied(s, m, &units[..k]).await? else {
                return Ok(false);
            };
            let line =
                m.up.line_of(units[k - 1].chunks.last().map_or(0, |c| c.offset));
            let step = format!("interrupted after statement {k} (line {line}), then retried");
            let what = format!(
                "the up stopped after statement {k} of {} (line {line}), as a crash would \
                 leave it outside a transaction",
                units.len()
            );
            self.at = None;
            if !self.retried(s, v, m, &step, &what, &before).await? {
                return Ok(false);
            }
        }
        // A concurrent index build cancelled while it waits for older transactions (a
        // deploy's timeout, an operator's cancel) leaves an INVALID index behind it.
        for (j, unit) in units.iter().enumerate() {
            let [chunk] = unit.chunks.as_slice() else {
                continue;
            };
            let statements = split::split(&chunk.sql).unwrap_or_default();
            let [statement] = statements.as_slice() else {
                continue;
            };
            if unit.transactional || !split::builds_concurrently(&statement.sql) {
                continue;
            }
            let Some(before) = self.partly_applied(s, m, &units[..j]).await? else {
                return Ok(false);
            };
            let build = Script {
                blocks: vec![Block {
                    transactional: false,
                    chunks: vec![(*chunk).clone()],
                }],
                ..m.up.clone()
            };
            self.at = None;
            match s
                .apply_with_fault(&m.version, &build, Direction::Up, Fault::CancelWhileWaiting)
                .await
            {
                Ok(Some(_)) => {}
                Err(e) if e.is_environment() => return Err(e.into()),
                // it completed (and was recorded) or failed without the cancel: off golden
                Ok(None) | Err(_) => return Ok(false),
            }
            let line = m.up.line_of(chunk.offset + statement.offset);
            let k = j + 1;
            let step = format!(
                "cancelled during statement {k}'s concurrent index build (line {line}), then \
                 retried"
            );
            let what = format!(
                "statement {k} of {} (line {line}), a concurrent index build, was cancelled \
                 while it waited for older transactions, as a deploy's timeout or an operator \
                 would cancel it",
                units.len()
            );
            let findings = self.report.findings.len();
            let golden = self.retried(s, v, m, &step, &what, &before).await?;
            for f in &mut self.report.findings[findings..] {
                f.message.push_str(
                    "; a concurrent build that fails or is cancelled leaves an INVALID index \
                     behind, which IF NOT EXISTS then keeps and a plain retry trips over: drop \
                     it first (DROP INDEX CONCURRENTLY IF EXISTS, as a statement of its own), \
                     or have the deploy check pg_index.indisvalid",
                );
            }
            if !golden {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Takes the database from golden v back to golden v-1 with its rows (through the down),
    /// stashes the rows, and applies the first `parts` of the up as the migrator would have
    /// before an interruption. The stash, or `None` when the down fails (the round trip
    /// reported it already) or those parts fail (they apply as a whole: not these checks'
    /// finding).
    async fn partly_applied(
        &mut self,
        s: &mut Session,
        m: &Migration,
        parts: &[executor::Unit<'_>],
    ) -> Result<Option<data::Stash>, RunError> {
        if self
            .apply_step(s, m, Direction::Down, step::DOWN)
            .await?
            .is_err()
        {
            return Ok(None);
        }
        let tables = self.tables(s).await?;
        let before = data::stash(s.conn(), 1, &tables).await.map_err(lost)?;
        if s.apply_units(parts).await.is_err() {
            return Ok(None);
        }
        Ok(Some(before))
    }

    /// After `what` interrupted migration `v`'s up, runs the whole up again, as every
    /// migrator does once its record is cleared: it must apply and give golden v with the
    /// rows (stashed `before`) kept. Else `retry_failed` or `residue_after_failure` at `step`;
    /// false when the database was left off golden state v.
    async fn retried(
        &mut self,
        s: &mut Session,
        v: usize,
        m: &Migration,
        step: &str,
        what: &str,
        before: &data::Stash,
    ) -> Result<bool, RunError> {
        if let Err(e) = self.apply_step(s, m, Direction::Up, step).await? {
            let message = format!("{what}; running it again fails: {e}");
            self.finding(Kind::RetryFailed, m, step, message).place = e.place().cloned();
            return Ok(false);
        }
        if !self
            .expect_schema_as(s, v, m, step, Kind::ResidueAfterFailure)
            .await?
        {
            return Ok(false);
        }
        // (an up that changes data on purpose was reported, or declared, at its own step)
        let up_changed_data = self
            .report
            .findings
            .iter()
            .any(|f| f.migration == m.id() && f.step == step::UP);
        let findings = self.report.findings.len();
        if !up_changed_data {
            self.expect_data(s, before, m, step, true, None).await?;
        }
        Ok(self.report.findings.len() == findings)
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

/// The `sql_name`s of those of `tables` that hold no row.
async fn empty_ones(
    s: &mut Session,
    tables: &[&catalog::Table],
) -> Result<BTreeSet<String>, RunError> {
    let empty = data::empty(s.conn(), tables).await.map_err(lost)?;
    Ok(tables
        .iter()
        .zip(empty)
        .filter(|(_, e)| *e)
        .map(|(t, _)| t.sql_name())
        .collect())
}

/// True for a side effect on the server that an earlier step of the same migration already
/// reported: every step that applies the migration again does it again.
fn repeats_a_side_effect(findings: &[Finding], f: &Finding) -> bool {
    f.kind == Kind::GlobalSideEffect
        && findings
            .iter()
            .any(|e| e.kind == f.kind && e.migration == f.migration && e.message == f.message)
}

/// How far the golden pass is: versions recorded, and whether it is over.
#[derive(Debug, Clone, Copy, Default)]
struct Ready {
    versions: usize,
    over: bool,
}

/// Waits until golden `version` is recorded (true) or the golden pass ended before it (false).
async fn golden_has(ready: &mut watch::Receiver<Ready>, version: usize) -> bool {
    match ready.wait_for(|r| r.versions > version || r.over).await {
        Ok(r) => r.versions > version,
        Err(_) => false,
    }
}

/// The stairway's parts for `n` migrations: about `MIGRATIONS_PER_PART` each on average, at
/// most `MAX_PARTS`, cut so that each weighs about the same. A migration is checked on a
/// database holding the tables and rows of every one before it, so later ones cost more: the
/// v-th weighs `3n/2 + v`.
fn parts(n: usize) -> Vec<std::ops::RangeInclusive<usize>> {
    let count = n.div_ceil(MIGRATIONS_PER_PART).clamp(1, MAX_PARTS);
    let weight = |v: usize| 3 * n / 2 + v;
    let total: usize = (1..=n).map(weight).sum();
    let (mut out, mut start, mut sum) = (Vec::new(), 1, 0);
    for v in 1..=n {
        sum += weight(v);
        if sum * count >= total * (out.len() + 1) {
            out.push(start..=v);
            start = v + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_migration_once_and_later_parts_are_shorter() {
        for n in 1..=400 {
            let parts = parts(n);
            assert_eq!(parts.len(), n.div_ceil(MIGRATIONS_PER_PART).min(MAX_PARTS));
            let flat: Vec<usize> = parts.iter().flat_map(|p| p.clone()).collect();
            assert_eq!(flat, (1..=n).collect::<Vec<_>>(), "n = {n}");
            for w in parts.windows(2) {
                assert!(
                    w[0].clone().count() >= w[1].clone().count(),
                    "n = {n}: {parts:?}"
                );
            }
        }
        assert_eq!(parts(40), vec![1..=23, 24..=40]);
    }
}

//! The system under test: one scratch database per case (a new one, or one a finished case
//! left, emptied in place: see [`super::reuse`]), driven step by step, compared with the
//! reference model after every transition (schema against the golden snapshot of the model's
//! version; data against what was there before the step and, after a down, before the up it
//! undoes; sequences and views against what they were before each migration step). The first
//! difference becomes a finding.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest_state_machine::StateMachineTest;
use sqlx::AssertSqlSafe;

use super::reuse::{self, Pristine};
use crate::backend::{ScratchDb, Server, DROP_BATCH};
use crate::compare::{self, SchemaVerdict};
use crate::executor::{Direction, Session};
use crate::model::machine::{self, Fault, Model, Plan, State, Step, Value};
use crate::model::seed;
use crate::observe::catalog::Table;
use crate::observe::data::{self, Refusal, Rejection, Stash};
use crate::observe::snapshot::{self, Snapshot};
use crate::observe::{catalog, ident, literal, readable, sequences};
use crate::report::{Finding, Kind};
use crate::source::MigrationSet;

/// Everything a case needs that outlives it: the server, the migrations, the golden history.
pub struct Ctx {
    pub server: Arc<Server>,
    pub set: Arc<MigrationSet>,
    pub golden: Arc<Vec<Snapshot>>,
    pub plan: Arc<Plan>,
    pub handle: tokio::runtime::Handle,
    pub strict: bool,
    pub step_timeout: Duration,
    /// Transitions applied, over all cases.
    pub steps: Arc<AtomicU64>,
    /// Scratch databases created ahead of time (creating one can take a second on a server
    /// that syncs to disk), and the background drops of finished cases.
    pub spares: Spares,
    /// Copies of databases that climbed from empty, shared by every case of the run.
    pub climbs: Climbs,
}

/// Copies of a database that went only up from empty, one migration after the other, without
/// a row written, a fault or a failure, kept at every `every`-th version: what such a climb
/// gives depends on nothing but the version it reaches, so a case that climbs from empty (most
/// cases start so, and every candidate a failure's shrinking replays) copies the highest one
/// on its way (`CREATE DATABASE ... TEMPLATE`) instead of applying and checking each migration
/// below it again. The first climb to pass a version checked every migration under it and
/// keeps the copy.
pub struct Climbs {
    every: usize,
    at: std::sync::Mutex<BTreeMap<usize, Climb>>,
    /// Climbs that started from a copy.
    used: AtomicU64,
}

/// A database at a version a climb reached, with what the case had stashed on its way.
#[derive(Clone)]
struct Climb {
    template: ScratchDb,
    round_trip: BTreeMap<usize, Stash>,
    after_up: BTreeMap<usize, Stash>,
}

impl Climbs {
    /// A copy every `every` versions (where the climb to it since the version before took at
    /// least [`SAVE_AFTER`]); none when `every` is 0.
    pub fn new(every: usize) -> Climbs {
        Climbs {
            every,
            at: std::sync::Mutex::default(),
            used: AtomicU64::new(0),
        }
    }

    /// The highest copy above `level` and at most `target`.
    fn highest(&self, level: usize, target: usize) -> Option<(usize, Climb)> {
        let at = self.at.lock().expect("not poisoned");
        let (&v, c) = at.range(level + 1..=target).next_back()?;
        Some((v, c.clone()))
    }

    /// Whether a climb reaching `version` should leave a copy there.
    fn wants(&self, version: usize) -> bool {
        self.every > 0
            && version.is_multiple_of(self.every)
            && !self.at.lock().expect("not poisoned").contains_key(&version)
    }

    /// Keeps `climb` at `version`; gives its copy back when another case kept one there first.
    fn keep(&self, version: usize, climb: Climb) -> Option<ScratchDb> {
        let mut at = self.at.lock().expect("not poisoned");
        if at.contains_key(&version) {
            return Some(climb.template);
        }
        at.insert(version, climb);
        None
    }

    /// How many climbs continued from a copy.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }
}

/// Scratch databases made ahead, so a case rarely waits for `CREATE DATABASE`.
pub struct Spares {
    rx: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<ScratchDb>>,
    producer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    drops: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Databases the cases are done with, dropped [`DROP_BATCH`] at a time.
    finished: std::sync::Mutex<Vec<ScratchDb>>,
    /// How many databases are kept ready, as spares and as given back.
    ahead: usize,
    /// Empty databases given back, with open sessions: the ones cases finished with, emptied
    /// in place ([`recycle`]), and the ones a case left untouched when it went straight to a
    /// climb's copy.
    returned: std::sync::Mutex<Vec<(ScratchDb, Session)>>,
    /// The transaction id below which rows come from the template (see [`reuse`]), read when
    /// the first case takes a database; `None` when reuse cannot rely on it.
    boundary: tokio::sync::OnceCell<Option<i64>>,
    /// A fresh database's fingerprint, read on the first: finished databases emptied back to
    /// it go to the next cases.
    pristine: tokio::sync::OnceCell<Option<Pristine>>,
}

impl Spares {
    /// Starts keeping `ahead` databases ready on `server`.
    pub fn start(server: Arc<Server>, ahead: usize) -> Spares {
        let (tx, rx) = tokio::sync::mpsc::channel::<ScratchDb>(ahead.max(1));
        let producer = tokio::spawn(async move {
            loop {
                let Ok(permit) = tx.reserve().await else {
                    return;
                };
                match server.create().await {
                    Ok(db) => permit.send(db),
                    Err(_) => return, // the case's own create reports the error
                }
            }
        });
        Spares {
            rx: tokio::sync::Mutex::new(rx),
            producer: std::sync::Mutex::new(Some(producer)),
            drops: std::sync::Mutex::new(Vec::new()),
            finished: std::sync::Mutex::new(Vec::new()),
            ahead: ahead.max(1),
            returned: std::sync::Mutex::new(Vec::new()),
            boundary: tokio::sync::OnceCell::new(),
            pristine: tokio::sync::OnceCell::new(),
        }
    }

    /// An empty database with a session on it: one given back, else a spare, else a new one.
    async fn take(&self, ctx: &Ctx) -> Result<(ScratchDb, Session), Broken> {
        let given_back = self.returned.lock().expect("not poisoned").pop();
        if let Some(pair) = given_back {
            return Ok(pair);
        }
        let ready = self.rx.lock().await.try_recv().ok();
        let db = match ready {
            Some(db) => db,
            None => ctx.server.create().await.map_err(broken)?,
        };
        // Before any case of the run writes: the first takes it, the others wait for it. Emptying
        // a finished database in place, on the session the case used, costs less than dropping
        // it and making another even where a new database is cheap (`fsync` off, `FILE_COPY`):
        // the kept session's plans and catalog caches are warm.
        let boundary = *self.boundary.get_or_init(|| reuse::boundary(&db)).await;
        let mut session = Session::open(&db, ctx.step_timeout).await.map_err(broken)?;
        if let Some(boundary) = boundary {
            self.pristine
                .get_or_init(|| Pristine::read(boundary, &mut session))
                .await;
        }
        Ok((db, session))
    }

    /// Whether another database given back would be kept (see [`give_back`]).
    fn wants_back(&self) -> bool {
        self.returned.lock().expect("not poisoned").len() < self.ahead
    }

    /// Stops making databases, waits for the background drops and resets, and drops the
    /// finished and the emptied ones; the spares left are dropped by the server's clean-up.
    pub async fn finish(&self, server: &Server) {
        let producer = self.producer.lock().expect("not poisoned").take();
        if let Some(p) = producer {
            p.abort();
            let _ = p.await;
        }
        self.rx.lock().await.close();
        // Resets still running give their databases back or to the drops.
        loop {
            let drops = std::mem::take(&mut *self.drops.lock().expect("not poisoned"));
            if drops.is_empty() {
                break;
            }
            for d in drops {
                let _ = d.await;
            }
        }
        let returned = std::mem::take(&mut *self.returned.lock().expect("not poisoned"));
        let mut finished = std::mem::take(&mut *self.finished.lock().expect("not poisoned"));
        for (db, session) in returned {
            session.close().await;
            finished.push(db);
        }
        let _ = server.drop_all(&finished).await;
    }
}

thread_local! {
    static CTX: RefCell<Option<Arc<Ctx>>> = const { RefCell::new(None) };
}

/// Makes `ctx` the context of cases run on this thread (and its plan the model's plan).
pub fn install(ctx: Arc<Ctx>) {
    crate::model::machine::install(ctx.plan.clone());
    CTX.with(|c| *c.borrow_mut() = Some(ctx));
}

fn ctx() -> Arc<Ctx> {
    CTX.with(|c| c.borrow().clone())
        .expect("migproof: install a fuzz context first")
}

/// A running case.
pub struct Sut {
    ctx: Arc<Ctx>,
    db: Option<ScratchDb>,
    session: Option<Session>,
    /// Where the case is: what a copy of its database resumes with.
    case: CaseState,
    /// The live tables as last read, while no statement of the user's has run since (a
    /// migration, a retry, a written row, whose triggers may do anything): a walk over many
    /// migrations reads the catalog once per migration instead of before and after each stash.
    tables: Option<Vec<Table>>,
}

impl Drop for Sut {
    fn drop(&mut self) {
        let session = self.session.take();
        if let Some(db) = self.db.take() {
            recycle(&self.ctx, db, session);
        }
    }
}

/// Keeps an empty database no step has changed, and its session, for the next case; past
/// [`Spares::ahead`] of them (a case that continues on a copy leaves one more database than it
/// took) drops it.
fn give_back(ctx: &Ctx, db: ScratchDb, session: Session) {
    let mut returned = ctx.spares.returned.lock().expect("not poisoned");
    if returned.len() < ctx.spares.ahead {
        returned.push((db, session));
        return;
    }
    drop(returned);
    drop(session);
    drop_later(ctx, db);
}

/// Empties a finished case's database for the next case in the background (see [`reuse`]),
/// or drops it when it cannot be brought back to a fresh one's state or enough are kept.
fn recycle(ctx: &Arc<Ctx>, db: ScratchDb, session: Option<Session>) {
    let reusable = matches!(ctx.spares.pristine.get(), Some(Some(_)));
    if !reusable || !ctx.spares.wants_back() {
        drop(session);
        return drop_later(ctx, db);
    }
    let task = ctx.handle.spawn({
        let ctx = ctx.clone();
        async move {
            // The case's session, cleared, else a new one.
            let cleared = match session {
                Some(s) => s.cleared().await,
                None => None,
            };
            let session = match cleared {
                Some(s) => Ok(s),
                None => Session::open(&db, ctx.step_timeout).await,
            };
            let pristine = ctx.spares.pristine.get().and_then(Option::as_ref);
            let reset = match (pristine, session) {
                (Some(p), Ok(s)) => p.reset(s).await,
                _ => None,
            };
            match reset {
                Some(session) => give_back(&ctx, db, session),
                None => drop_later(&ctx, db),
            }
        }
    });
    track(ctx, task);
}

/// Keeps `task` for [`Spares::finish`] to wait for.
fn track(ctx: &Ctx, task: tokio::task::JoinHandle<()>) {
    let mut drops = ctx.spares.drops.lock().expect("not poisoned");
    // A finished task's handle still holds it: let it go, or a long run grows.
    drops.retain(|d| !d.is_finished());
    drops.push(task);
}

/// A new database copied from `template`, with a session on it; `None` when the server would
/// not copy it.
async fn open_copy(
    ctx: &Ctx,
    template: &ScratchDb,
) -> Result<Option<(ScratchDb, Session)>, Broken> {
    let Some(db) = ctx.server.create_from(template).await.map_err(broken)? else {
        return Ok(None);
    };
    let session = Session::open(&db, ctx.step_timeout).await.map_err(broken)?;
    Ok(Some((db, session)))
}

/// Drops `db` in the background, with the next finished ones (see [`DROP_BATCH`]); the run
/// waits for these drops before it ends.
fn drop_later(ctx: &Ctx, db: ScratchDb) {
    let batch = {
        let mut finished = ctx.spares.finished.lock().expect("not poisoned");
        finished.push(db);
        if finished.len() < DROP_BATCH {
            return;
        }
        std::mem::take(&mut *finished)
    };
    let server = ctx.server.clone();
    let task = ctx.handle.spawn(async move {
        let _ = server.drop_all(&batch).await;
    });
    track(ctx, task);
}

/// A case's state beside its database, after the steps run so far: what [`Prefixes`] keeps
/// with a copy of the database to resume another sequence that starts with the same steps.
#[derive(Clone, Default)]
struct CaseState {
    /// The version the database is at.
    level: usize,
    fault: Option<Fault>,
    /// Target of an interrupted migrate.
    pending: Option<usize>,
    /// Contents stashed before the up that left each version, to compare after coming back.
    round_trip: BTreeMap<usize, Stash>,
    /// Contents stashed right after the up that left each version: with `round_trip`, the
    /// rows that up inserted, which its down may delete again.
    after_up: BTreeMap<usize, Stash>,
    /// What was usable before an interrupted migration, and the version it started from: the
    /// retry that runs it again is judged against it.
    usable_before_pending: Option<(usize, Usable)>,
    written: usize,
    /// The case did more than climb from empty (see [`Climbs`]): it went down, wrote rows,
    /// armed a fault, retried or reran the migrator.
    strayed: bool,
    index: usize,
    /// The step being applied, for findings: `step 3: migrate to 0003_add_role (apply ...)`.
    current: String,
    /// The step being applied, without its number.
    text: String,
    /// The steps applied so far, numbered as reports show them (`3. migrate to ...`), with the
    /// values written rather than the model's symbols.
    sequence: Vec<String>,
}

/// A copy of a case's database after its first `steps` (a template no session uses), with
/// the model's and the case's state there.
struct Saved {
    /// The prefix's steps, each migrate step as the version it went to ([`resolved`]).
    steps: Vec<Step>,
    template: ScratchDb,
    state: State,
    resume: CaseState,
}

/// Databases at the end of prefixes of the sequences a failure's shrinking replays. Shrinking
/// runs many sequences that share their first steps with one run before (proptest simplifies
/// the release ends, which changes no step but a deploy's target, and drops or simplifies one
/// step at a time): each starts from the copy of the longest prefix it shares
/// instead of from an empty database, which on a long history spares it the walks up and
/// down the migrations before the step that changed. A step is kept when it took long enough
/// for a copy to be cheaper than running it again.
///
/// It also remembers what each sequence gave, by its steps as the database sees them: a
/// sequence that begins with the steps of one that failed, up to its failing step, fails there
/// the same way, and one that passed passes again; neither runs. Shrinking the release ends
/// tries one candidate per release end, and most change no step a failure needs.
#[derive(Default)]
pub struct Prefixes {
    saved: std::sync::Mutex<Vec<Saved>>,
    /// Sequences started from a copy instead of an empty database.
    resumed: std::sync::atomic::AtomicUsize,
    outcomes: std::sync::Mutex<Vec<Known>>,
    /// Sequences answered from `outcomes` without running.
    recalled: std::sync::atomic::AtomicUsize,
}

/// What a sequence run before gave, by its steps as the database sees them ([`resolved`]).
enum Known {
    /// Its steps up to the failing one, and what it failed with.
    Failed {
        steps: Vec<Step>,
        finding: Box<Finding>,
        sequence: Vec<String>,
    },
    /// Every step of it, all kept every property.
    Passed(Vec<Step>),
}

/// A step that took at least this long is followed by a copy of the database.
const SAVE_AFTER: std::time::Duration = std::time::Duration::from_millis(150);
/// Copies kept at once; the oldest goes first.
const SAVED: usize = 24;

impl Prefixes {
    /// The longest saved prefix of `steps` (resolved), shorter than `steps`.
    fn longest(&self, steps: &[Step]) -> Option<(usize, ScratchDb, State, CaseState)> {
        let saved = self.saved.lock().expect("not poisoned");
        saved
            .iter()
            .filter(|s| s.steps.len() < steps.len() && steps.starts_with(&s.steps))
            .max_by_key(|s| s.steps.len())
            .map(|s| {
                (
                    s.steps.len(),
                    s.template.clone(),
                    s.state.clone(),
                    s.resume.clone(),
                )
            })
    }

    fn has(&self, steps: &[Step]) -> bool {
        let saved = self.saved.lock().expect("not poisoned");
        saved.iter().any(|s| s.steps == steps)
    }

    /// Keeps `saved`; returns the copy it pushed out, to drop.
    fn keep(&self, saved: Saved) -> Option<ScratchDb> {
        let mut all = self.saved.lock().expect("not poisoned");
        all.push(saved);
        (all.len() > SAVED).then(|| all.remove(0).template)
    }

    /// How many sequences started from a saved prefix.
    pub fn resumed(&self) -> usize {
        self.resumed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many sequences were answered from what sequences run before gave.
    pub fn recalled(&self) -> usize {
        self.recalled.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// What `key` (a sequence's resolved steps; `complete` when every step is there) gives, if
    /// a sequence run before tells.
    fn recall(&self, key: &[Step], complete: bool) -> Option<Ran> {
        let outcomes = self.outcomes.lock().expect("not poisoned");
        let ran = outcomes.iter().find_map(|k| match k {
            Known::Failed {
                steps,
                finding,
                sequence,
            } if key.starts_with(steps) => Some(Ran::Failed(finding.clone(), sequence.clone())),
            Known::Passed(steps) if complete && key == steps.as_slice() => Some(Ran::Passed),
            _ => None,
        })?;
        self.recalled
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(ran)
    }

    /// Remembers what `key` gave: a failure (at the last step of its sequence) or a pass.
    fn remember(&self, key: &[Step], ran: &Ran) {
        let known = match ran {
            Ran::Failed(finding, sequence) if sequence.len() <= key.len() => Known::Failed {
                steps: key[..sequence.len()].to_vec(),
                finding: finding.clone(),
                sequence: sequence.clone(),
            },
            Ran::Passed => Known::Passed(key.to_vec()),
            _ => return,
        };
        self.outcomes.lock().expect("not poisoned").push(known);
    }

    /// Drops every copy.
    pub async fn clear(&self, server: &Server) {
        let all = std::mem::take(&mut *self.saved.lock().expect("not poisoned"));
        for s in all {
            let _ = server.drop_db(&s.template).await;
        }
    }
}

/// What keeps a database usable beyond its schema and rows, observed before a migration step to
/// judge the step after it (as `check` does across a migration): the sequences already behind
/// their columns, and the views and materialized views with those that cannot be read.
#[derive(Debug, Clone, Default)]
struct Usable {
    behind: Vec<sequences::Behind>,
    views: readable::Views,
}

/// Why a step could not be judged: the environment failed.
#[derive(Debug)]
pub struct Broken(pub String);

type Outcome = Result<Result<(), Finding>, Broken>;

fn broken<E: std::fmt::Display>(e: E) -> Broken {
    Broken(e.to_string())
}

impl Sut {
    pub async fn start(ctx: Arc<Ctx>) -> Result<Sut, Broken> {
        let (db, session) = ctx.spares.take(&ctx).await?;
        Ok(Sut {
            ctx,
            db: Some(db),
            session: Some(session),
            case: CaseState::default(),
            tables: None,
        })
    }

    /// A case resumed from a saved prefix: its database copied from the prefix's; `None` when
    /// the server would not copy it.
    async fn resume(
        ctx: Arc<Ctx>,
        template: &ScratchDb,
        r: CaseState,
    ) -> Result<Option<Sut>, Broken> {
        let Some((db, session)) = open_copy(&ctx, template).await? else {
            return Ok(None);
        };
        Ok(Some(Sut {
            ctx,
            db: Some(db),
            session: Some(session),
            case: r,
            tables: None,
        }))
    }

    /// Copies the database as it is after `steps` into `prefixes` (the session is closed for
    /// the copy and opened again, as after a fault).
    async fn save(
        &mut self,
        prefixes: &Prefixes,
        steps: &[Step],
        state: &State,
    ) -> Result<(), Broken> {
        let Some(template) = self.copy().await? else {
            return Ok(());
        };
        let resume = self.case.clone();
        let out = prefixes.keep(Saved {
            steps: steps.to_vec(),
            template,
            state: state.clone(),
            resume,
        });
        if let Some(old) = out {
            let _ = self.ctx.server.drop_db(&old).await;
        }
        Ok(())
    }

    /// A copy of the database as it is now (the session is closed for the copy and opened
    /// again, as after a fault); `None` when the server would not copy it.
    async fn copy(&mut self) -> Result<Option<ScratchDb>, Broken> {
        // The stashes are unlogged tables: a copy carries their rows too (`CREATE DATABASE`
        // reads them through the shared buffers, or flushes every page before copying files).
        if let Some(session) = self.session.take() {
            session.close().await;
        }
        let db = self.db.clone().expect("open while the case runs");
        let copy = self.ctx.server.create_from(&db).await.map_err(broken)?;
        self.session = Some(
            Session::open(&db, self.ctx.step_timeout)
                .await
                .map_err(broken)?,
        );
        Ok(copy)
    }

    /// Leaves a copy of the database where a climb from empty reached (see [`Climbs`]).
    async fn keep_climb(&mut self) -> Result<(), Broken> {
        let Some(template) = self.copy().await? else {
            return Ok(());
        };
        let climb = Climb {
            template,
            round_trip: self.case.round_trip.clone(),
            after_up: self.case.after_up.clone(),
        };
        if let Some(extra) = self.ctx.climbs.keep(self.case.level, climb) {
            let _ = self.ctx.server.drop_db(&extra).await;
        }
        Ok(())
    }

    /// Continues a climb from empty at the highest copy on its way to `target`, with a
    /// database copied from it; false when there is none or the server would not copy it.
    async fn skip_climb(&mut self, target: usize) -> Result<bool, Broken> {
        let Some((version, climb)) = self.ctx.climbs.highest(self.case.level, target) else {
            return Ok(false);
        };
        let Some((db, session)) = open_copy(&self.ctx, &climb.template).await? else {
            return Ok(false);
        };
        let (old_session, old_db) = (self.session.replace(session), self.db.replace(db));
        // Still empty (a climb from empty that has not moved: no migration, no row, no fault
        // has touched it), the database goes to the next case as a fresh one would.
        let untouched = self.case.level == 0 && !self.case.strayed;
        if let Some(old) = old_db {
            match old_session {
                Some(s) if untouched => give_back(&self.ctx, old, s),
                s => recycle(&self.ctx, old, s),
            }
        }
        self.case.level = version;
        self.case.round_trip = climb.round_trip;
        self.case.after_up = climb.after_up;
        self.tables = None;
        self.ctx.climbs.used.fetch_add(1, Ordering::SeqCst);
        Ok(true)
    }

    fn s(&mut self) -> &mut Session {
        self.session.as_mut().expect("open while the case runs")
    }

    fn id(&self, version: usize) -> String {
        match version {
            0 => "(before any migration)".into(),
            v => self.ctx.plan.ids[v - 1].clone(),
        }
    }

    fn finding(&self, kind: Kind, version: usize, message: String) -> Finding {
        Finding::new(kind, self.id(version), self.case.current.clone(), message)
    }

    /// Applies one transition; `after` is the model's state after it.
    pub async fn step(&mut self, after: &State, step: &Step) -> Outcome {
        self.case.index += 1;
        // The model's state before the step, as far as describing it goes: this database's
        // version and, for a retry, the version the interrupted migrate was going to.
        let before = State {
            version: self.case.level,
            pending: (*step == Step::Retry).then_some((self.case.level, after.version)),
            ..after.clone()
        };
        self.describe(&step.describe(&before));
        let outcome = self.step_inner(after, step).await;
        let line = format!("{}. {}", self.case.index, self.case.text);
        self.case.sequence.push(line);
        outcome.map_err(|Broken(e)| Broken(format!("{}: {e}", self.case.current)))
    }

    /// Names the step being applied, for findings and the sequence.
    fn describe(&mut self, text: &str) {
        self.case.current = format!("step {}: {text}", self.case.index);
        self.case.text = text.to_owned();
    }

    /// The steps applied so far, numbered, as a finding's sequence shows them.
    pub fn sequence(&self) -> &[String] {
        &self.case.sequence
    }

    async fn step_inner(&mut self, after: &State, step: &Step) -> Outcome {
        self.ctx.steps.fetch_add(1, Ordering::Relaxed);
        match step {
            Step::Interrupt(f) => {
                self.case.strayed = true;
                self.case.fault = Some(*f);
                Ok(Ok(()))
            }
            Step::WriteRows { table, rows } => {
                self.case.strayed = true;
                self.write_rows(table, rows).await
            }
            Step::Verify => {
                self.expect_schema(self.case.level, self.case.level, Kind::SchemaMismatch, None)
                    .await
            }
            Step::RerunMigrator => {
                self.case.strayed = true;
                self.rerun().await
            }
            Step::Retry => {
                self.case.strayed = true;
                self.retry().await
            }
            _ => {
                let target = after.pending.map(|(_, to)| to).unwrap_or(after.version);
                self.migrate(target).await
            }
        }
    }

    /// Compares the schema with the golden one of `version`; a difference is a finding about
    /// migration `blame` (the one whose up or down just ran).
    async fn expect_schema(
        &mut self,
        version: usize,
        blame: usize,
        kind: Kind,
        why: Option<&str>,
    ) -> Outcome {
        let actual = snapshot::take(self.s().conn()).await.map_err(broken)?;
        let label = format!("golden schema at {}", self.id(version));
        let after = format!("after {}", self.case.current);
        match compare::schema(
            &self.ctx.golden[version],
            &actual,
            self.ctx.strict,
            (&label, &after),
        ) {
            SchemaVerdict::Equal | SchemaVerdict::Noise { .. } => Ok(Ok(())),
            SchemaVerdict::Mismatch { diff, summary } => {
                let why = why.map(|w| format!("{w}: ")).unwrap_or_default();
                let mut f = self.finding(
                    kind,
                    blame,
                    format!("{why}schema differs from the {label}: {summary}"),
                );
                f.diff = Some(diff);
                Ok(Err(f))
            }
        }
    }

    async fn expect_data(
        &mut self,
        stash: &Stash,
        version: usize,
        allow_added: bool,
        kind: Option<Kind>,
        what: &str,
    ) -> Outcome {
        self.expect_data_but(stash, version, allow_added, kind, what, false)
            .await
    }

    /// `expect_data`; with `retyped_may_change`, columns whose type the step changed (another
    /// type, or one rebuilt under its name: [`catalog::Column::retyped`]) are left out too. A
    /// down must adapt the values written after its up to the old types (cut a text, round a
    /// number, map an enum label the old type lacks) to apply at all, and `check` does not
    /// compare the rows written after an up across its down either; the values that were there
    /// before the up are compared by the round trip instead.
    async fn expect_data_but(
        &mut self,
        stash: &Stash,
        version: usize,
        allow_added: bool,
        kind: Option<Kind>,
        what: &str,
        retyped_may_change: bool,
    ) -> Outcome {
        // Nothing was stashed (the database held no row): nothing can have been lost or
        // changed, and the catalog need not be read.
        if stash.tables.is_empty() {
            return Ok(Ok(()));
        }
        let tables = self.tables().await?;
        // What the migration whose step ran changes on purpose, and the ignored tables.
        let migration = version.checked_sub(1).map(|i| &self.ctx.set.migrations[i]);
        let mut exclude = self.ctx.set.data.exclude(migration);
        if retyped_may_change {
            for before in &stash.tables {
                let Some(now) = tables
                    .iter()
                    .find(|t| t.schema == before.schema && t.name == before.name)
                else {
                    continue;
                };
                for c in &before.columns {
                    if now.column(&c.name).is_some_and(|n| c.retyped(n)) {
                        exclude.add_column(before, &c.name);
                    }
                }
            }
        }
        let diffs = data::compare(self.s().conn(), stash, &tables, &exclude)
            .await
            .map_err(broken)?;
        Ok(match compare::data(&diffs, allow_added) {
            None => Ok(()),
            Some(v) => {
                let mut f = self.finding(
                    kind.unwrap_or(v.kind),
                    version,
                    format!("{what}: {}", v.message),
                );
                f.rows = v.rows;
                Err(f)
            }
        })
    }

    async fn tables(&mut self) -> Result<Vec<Table>, Broken> {
        if let Some(tables) = &self.tables {
            return Ok(tables.clone());
        }
        let tables = catalog::tables(self.s().conn()).await.map_err(broken)?;
        self.tables = Some(tables.clone());
        Ok(tables)
    }

    /// The live tables, or none when the database holds no row (`empty`, from
    /// [`data::no_rows`]): stashing a database without rows needs no catalog read.
    async fn tables_unless(&mut self, empty: bool) -> Result<Vec<Table>, Broken> {
        if empty {
            return Ok(Vec::new());
        }
        self.tables().await
    }

    async fn usable(&mut self) -> Result<Usable, Broken> {
        let behind = sequences::behind(self.s().conn()).await.map_err(broken)?;
        let views = readable::unreadable(self.s().conn())
            .await
            .map_err(broken)?;
        Ok(Usable { behind, views })
    }

    /// After the up or down of migration `blame`: a sequence newly behind its column is a
    /// `sequence_behind` finding, a view or materialized view readable `before` and not now an
    /// `unreadable` one, as in `check`. Returns what is usable now, which is what the next
    /// migration of the same migrate starts from.
    async fn expect_usable(
        &mut self,
        before: &Usable,
        blame: usize,
    ) -> Result<Result<Usable, Finding>, Broken> {
        let now = self.usable().await?;
        if let Some(message) = compare::sequences_behind(&before.behind, &now.behind) {
            return Ok(Err(self.finding(Kind::SequenceBehind, blame, message)));
        }
        if let Some(message) = compare::unreadable(&before.views, &now.views) {
            return Ok(Err(self.finding(Kind::Unreadable, blame, message)));
        }
        Ok(Ok(now))
    }

    /// Migrates one version at a time to `target`; an armed fault hits the first step.
    async fn migrate(&mut self, target: usize) -> Outcome {
        // As in the model, a migrate consumes the armed fault, even one with nothing to do.
        let mut fault = self.case.fault.take();
        // What was usable after the last migration of this migrate, before the next one.
        let mut usable_now = None;
        // Whether the database held no row after the last up of this migrate.
        let mut empty_now = None;
        // When the climb since the last version a copy could be kept at began.
        let mut since = std::time::Instant::now();
        while self.case.level != target {
            let up = target > self.case.level;
            let climbing = up && !self.case.strayed && fault.is_none();
            if climbing && self.skip_climb(target).await? {
                (usable_now, empty_now) = (None, None);
                since = std::time::Instant::now();
                continue;
            }
            self.case.strayed |= !up;
            let (from, to) = if up {
                (self.case.level, self.case.level + 1)
            } else {
                (self.case.level, self.case.level - 1)
            };
            let m = &self.ctx.set.migrations[if up { to } else { from } - 1];
            let (direction, script) = match (up, &m.down) {
                (true, _) => (Direction::Up, m.up.clone()),
                (false, Some(down)) => (Direction::Down, down.clone()),
                (false, None) => unreachable!("the model only goes down through downs"),
            };
            let version = m.version.clone();
            // A database without rows has nothing to stash: no catalog read of its tables
            // (most of a long walk up from an empty database).
            let empty = match empty_now.take() {
                Some(empty) => empty,
                None => data::no_rows(self.s().conn()).await.map_err(broken)?,
            };
            let tables = self.tables_unless(empty).await?;
            let tag = if up { 1000 + from as i32 } else { 1 };
            let before = data::stash(self.s().conn(), tag, &tables)
                .await
                .map_err(broken)?;
            if up {
                self.case.round_trip.insert(from, before.clone());
                // Stashed again once this up has applied.
                self.case.after_up.remove(&from);
            }
            let usable = match usable_now.take() {
                Some(usable) => usable,
                None => self.usable().await?,
            };
            self.tables = None;
            let applied = match fault.take() {
                Some(f) => {
                    self.s()
                        .apply_with_fault(&version, &script, direction, f)
                        .await
                }
                None => self
                    .s()
                    .apply(&version, &script, direction)
                    .await
                    .map(|()| None),
            };
            match applied {
                Err(e) if e.is_environment() => return Err(broken(e)),
                Err(e) => {
                    let kind = e.kind();
                    let at = if up { to } else { from };
                    let way = if up { "up" } else { "down" };
                    let mut f = self.finding(kind, at, format!("{way} failed: {e}"));
                    f.place = e.place().cloned();
                    return Ok(Err(f));
                }
                Ok(Some(what)) => {
                    // Interrupted: a transactional migration must leave exactly the version
                    // before it; a non-transactional one may leave residue for the retry, and
                    // so may an external migrator, whose transactions migproof cannot see.
                    self.case.pending = Some(target);
                    self.case.usable_before_pending = Some((from, usable));
                    if !script.has_autocommit() && script.command.is_none() {
                        let why = format!("the migration was interrupted ({what}) and rolled back, but left residue");
                        if let Err(f) = self
                            .expect_schema(
                                from,
                                if up { to } else { from },
                                Kind::ResidueAfterFailure,
                                Some(&why),
                            )
                            .await?
                        {
                            return Ok(Err(f));
                        }
                    }
                    return Ok(Ok(()));
                }
                Ok(None) => {}
            }
            self.case.level = to;
            let at = if up { to } else { from };
            if let Err(f) = self
                .expect_schema(to, at, Kind::SchemaMismatch, None)
                .await?
            {
                return Ok(Err(f));
            }
            let what = if up {
                "up kept rows and values"
            } else {
                "down kept rows and values"
            };
            let what = format!("{what} violated");
            if !up {
                let inserted = (self.case.round_trip.get(&to).cloned())
                    .zip(self.case.after_up.get(&to).cloned());
                if let Some((before_up, after_up)) = inserted {
                    data::forget_inserted(self.s().conn(), &before, &before_up, &after_up)
                        .await
                        .map_err(broken)?;
                }
            }
            if let Err(f) = self
                .expect_data_but(&before, at, true, None, &what, !up)
                .await?
            {
                return Ok(Err(f));
            }
            if !up {
                if let Some(stash) = self.case.round_trip.get(&to).cloned() {
                    let what = "up then down did not give back the rows present before the up";
                    if let Err(f) = self.expect_data(&stash, at, true, None, what).await? {
                        return Ok(Err(f));
                    }
                }
                // What was stashed at `to` and above describes versions this down left: the
                // next up from them stashes again.
                self.case.round_trip.retain(|&v, _| v < to);
                self.case.after_up.retain(|&v, _| v < to);
            }
            if up {
                // (what the next up of this migrate starts from, too)
                let empty = data::no_rows(self.s().conn()).await.map_err(broken)?;
                empty_now = Some(empty);
                let tables = self.tables_unless(empty).await?;
                let after = data::stash(self.s().conn(), 2000 + from as i32, &tables)
                    .await
                    .map_err(broken)?;
                self.case.after_up.insert(from, after);
            }
            match self.expect_usable(&usable, at).await? {
                Ok(now) => usable_now = Some(now),
                Err(f) => return Ok(Err(f)),
            }
            if climbing && self.ctx.climbs.wants(to) {
                // Only where climbing there took longer than copying would: on a history of
                // quick migrations, a copy costs more than it saves.
                if since.elapsed() >= SAVE_AFTER {
                    self.keep_climb().await?;
                }
                since = std::time::Instant::now();
            }
        }
        Ok(Ok(()))
    }

    /// The version recorded by migproof's bookkeeping (the longest applied prefix).
    async fn recorded_level(&mut self) -> Result<usize, Broken> {
        let applied = self.s().applied().await.map_err(broken)?;
        Ok(self
            .ctx
            .set
            .migrations
            .iter()
            .take_while(|m| applied.contains(&m.version))
            .count())
    }

    async fn retry(&mut self) -> Outcome {
        let target = self.case.pending.take().unwrap_or(self.case.level);
        self.case.level = self.recorded_level().await?;
        // The interrupted migration: the last one up, or the first one down, to the target.
        let blame = if target < self.case.level {
            target + 1
        } else {
            target
        };
        // The first finding on sequences or views, reported unless the schema is off golden.
        let mut unusable = None;
        let interrupted = self.case.usable_before_pending.take();
        let mut usable_now = None;
        while self.case.level != target {
            let up = target > self.case.level;
            let index = if up {
                self.case.level
            } else {
                self.case.level - 1
            };
            let m = self.ctx.set.migrations[index].clone();
            // The migration interrupted is judged against what was there before the
            // interruption; a later one against what was there before it.
            let usable = match (&interrupted, usable_now.take()) {
                (Some((from, usable)), _) if *from == self.case.level => usable.clone(),
                (_, Some(usable)) => usable,
                _ => self.usable().await?,
            };
            let script = if up {
                m.up.clone()
            } else {
                m.down.clone().expect("model checked")
            };
            let direction = if up { Direction::Up } else { Direction::Down };
            self.tables = None;
            match self.s().apply(&m.version, &script, direction).await {
                Err(e) if e.is_environment() => return Err(broken(e)),
                Err(e) => {
                    let message =
                        format!("the retry of {} after the interruption failed: {e}", m.id());
                    return Ok(Err(self.finding(Kind::RetryFailed, index + 1, message)));
                }
                Ok(()) => {
                    self.case.level = if up {
                        self.case.level + 1
                    } else {
                        self.case.level - 1
                    }
                }
            }
            if unusable.is_none() {
                match self.expect_usable(&usable, index + 1).await? {
                    Ok(now) => usable_now = Some(now),
                    Err(f) => unusable = Some(f),
                }
            }
        }
        // A retry does not stash: a stash above the version it ended at is out of date.
        self.case.round_trip.retain(|&v, _| v <= target);
        self.case.after_up.retain(|&v, _| v < target);
        let why = "after the interruption and the retry, the schema is not the golden one";
        if let Err(f) = self
            .expect_schema(target, blame, Kind::ResidueAfterFailure, Some(why))
            .await?
        {
            return Ok(Err(f));
        }
        Ok(unusable.map_or(Ok(()), Err))
    }

    async fn rerun(&mut self) -> Outcome {
        let tables = self.tables().await?;
        let before = data::stash(self.s().conn(), 2, &tables)
            .await
            .map_err(broken)?;
        let recorded = self.recorded_level().await?;
        if recorded != self.case.level {
            let message = format!(
                "the migrator's bookkeeping says version {recorded}, the database is at {}",
                self.case.level
            );
            return Ok(Err(self.finding(
                Kind::NotIdempotent,
                self.case.level,
                message,
            )));
        }
        if let Err(f) = self
            .expect_schema(self.case.level, self.case.level, Kind::NotIdempotent, None)
            .await?
        {
            return Ok(Err(f));
        }
        let level = self.case.level;
        self.expect_data(
            &before,
            level,
            false,
            Some(Kind::NotIdempotent),
            "running the migrator again changed data",
        )
        .await
    }

    /// Writes `rows` into `table`, and names the step with the values written.
    async fn write_rows(&mut self, table: &str, rows: &[Vec<(String, Value)>]) -> Outcome {
        let tables = self.tables().await?;
        let Some(t) = tables.iter().find(|t| t.display_name() == table).cloned() else {
            return Ok(Ok(()));
        };
        let mut shown = Vec::new();
        let mut unwritable = None;
        for row in rows {
            let mut cols = Vec::new();
            let mut values = Vec::new();
            let mut cells = Vec::new();
            for (name, value) in row {
                let Some(col) = t.column(name) else { continue };
                let text = match value {
                    Value::Default => {
                        cells.push(format!("{name} = default"));
                        continue;
                    }
                    Value::Null => None,
                    Value::Pick(k) => pick(col, *k, t.is_unique(name), self.case.written),
                    Value::Ref(k) => self.reference(&t, name, *k).await?,
                };
                cells.push(format!("{name} = {}", show_value(col, text.as_deref())));
                cols.push(ident(name));
                values.push(match text {
                    Some(v) => format!("{}::{}", literal(&v), col.type_sql),
                    None => "NULL".into(),
                });
            }
            let sql = if cols.is_empty() {
                format!("INSERT INTO {} DEFAULT VALUES", t.sql_name())
            } else {
                format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    t.sql_name(),
                    cols.join(", "),
                    values.join(", ")
                )
            };
            self.case.written += 1;
            self.tables = None;
            let row = format!("({})", cells.join(", "));
            match sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(self.s().conn())
                .await
            {
                Ok(_) => shown.push(row),
                // A row a rule of the user's rejects is skipped; one a broken function or
                // trigger rejects is a finding.
                Err(sqlx::Error::Database(e)) => {
                    let (why, long) = cut(e.message(), 120);
                    let more = if long.is_some() { "…" } else { "" };
                    shown.push(format!("{row} rejected: {why}{more}"));
                    let rejection = Rejection {
                        table: t.display_name(),
                        why: Refusal::of(e.as_ref()),
                        rows: 1,
                        tried: 1,
                    };
                    unwritable = compare::unwritable(&rejection).filter(|_| self.case.level > 0);
                    if unwritable.is_some() {
                        break;
                    }
                }
                Err(e) => return Err(broken(e)),
            }
        }
        let head = machine::write_rows_head(table, rows.len());
        self.describe(&format!("{head}: {}", shown.join(" ")));
        if let Some(message) = unwritable {
            return Ok(Err(self.finding(
                Kind::Unwritable,
                self.case.level,
                message,
            )));
        }
        Ok(Ok(()))
    }

    /// The k-th existing value of the column a foreign key column references.
    async fn reference(
        &mut self,
        t: &Table,
        column: &str,
        k: u8,
    ) -> Result<Option<String>, Broken> {
        let Some(fk) = t
            .foreign_keys
            .iter()
            .find(|fk| fk.columns.iter().any(|c| c == column))
        else {
            return Ok(None);
        };
        let at = fk.columns.iter().position(|c| c == column).unwrap_or(0);
        let target = &fk.ref_columns[at];
        let sql = format!(
            "SELECT ({c})::text FROM {t} WHERE {c} IS NOT NULL ORDER BY 1 OFFSET {k} % greatest(1, (SELECT count(*) FROM {t})) LIMIT 1",
            c = ident(target),
            t = fk.ref_table
        );
        sqlx::query_scalar(AssertSqlSafe(sql))
            .persistent(false)
            .fetch_optional(self.s().conn())
            .await
            .map_err(broken)
    }
}

/// How many characters of a written value a step shows.
const SHOWN_CHARS: usize = 40;

/// The first `max` characters of `text`, control characters escaped so that a step stays on
/// one line, and the length of `text` when it is longer.
fn cut(text: &str, max: usize) -> (String, Option<usize>) {
    let kept = text
        .chars()
        .take(max)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    let count = text.chars().count();
    (kept, (count > max).then_some(count))
}

/// A written value as a step shows it: NULL, a number or boolean as it is, anything else
/// quoted as an SQL literal; cut after [`SHOWN_CHARS`] characters, saying how long it is.
fn show_value(col: &crate::observe::catalog::Column, text: Option<&str>) -> String {
    let Some(text) = text else {
        return "NULL".into();
    };
    let bare = matches!(col.category.as_str(), "N" | "B") && !col.is_array;
    let (kept, long) = cut(text, SHOWN_CHARS);
    let quote = if bare { "" } else { "'" };
    let kept = if bare { kept } else { kept.replace('\'', "''") };
    match long {
        Some(count) => format!("{quote}{kept}…{quote} ({count} characters)"),
        None => format!("{quote}{kept}{quote}"),
    }
}

/// The k-th adversarial value for a written row: the seeder's values 0..6, then a lowercase
/// and an uppercase variant (case-only differences). In unique columns the seeder's values are
/// made distinct per written row, and the two case variants are kept as they are: they are
/// distinct for a plain unique constraint but not for one on `lower(...)`.
fn pick(
    col: &crate::observe::catalog::Column,
    k: u8,
    unique: bool,
    written: usize,
) -> Option<String> {
    let k = k as usize;
    let base = match k {
        0..=5 => seed::value(col, k, false),
        6 => seed::value(col, 1, false).map(|v| v.to_lowercase()),
        _ => seed::value(col, 1, false).map(|v| v.to_uppercase()),
    };
    if unique && k < 6 {
        return seed::value(col, k, true).map(|v| {
            if col.category == "S" {
                format!("{v}{written}")
            } else {
                v
            }
        });
    }
    base
}

/// The migproof state machine test, usable with `proptest-state-machine`'s
/// `prop_state_machine!` macro after [`install`]ing a context on the test thread.
pub struct FuzzTest;

impl StateMachineTest for FuzzTest {
    type SystemUnderTest = Sut;
    type Reference = Model;

    fn init_test(_ref_state: &State) -> Sut {
        let ctx = ctx();
        let handle = ctx.handle.clone();
        match handle.block_on(Sut::start(ctx)) {
            Ok(sut) => sut,
            Err(Broken(e)) => panic!("migproof: environment failure: {e}"),
        }
    }

    fn apply(mut sut: Sut, ref_state: &State, step: Step) -> Sut {
        let handle = sut.ctx.handle.clone();
        match handle.block_on(sut.step(ref_state, &step)) {
            Ok(Ok(())) => sut,
            // proptest's macro knows a failure only as a panic.
            Ok(Err(finding)) => panic!(
                "{} in {} [{}]: {}",
                finding.kind.as_str(),
                finding.migration,
                finding.step,
                finding.message
            ),
            Err(Broken(e)) => panic!("migproof: environment failure: {e}"),
        }
    }
}

/// How a sequence of steps ended.
#[derive(Debug)]
pub enum Ran {
    /// Every step kept every property.
    Passed,
    /// A step broke a property: its finding, and the steps that ran (that one last), numbered
    /// and with the values written, as a report shows them.
    Failed(Box<Finding>, Vec<String>),
    /// Step `step` (from 1) does not apply to the model (a saved case whose migrations have
    /// changed since): `what` says so.
    Stale { step: usize, what: String },
    /// Stopped before step `step` (from 1), when asked to: the run's time was up. The steps
    /// before it kept every property; the case did not run to its end.
    Halted { step: usize },
}

/// Runs `steps` exactly, without randomness, from a fresh database; stops at the first
/// finding. A finding is a value here, never a panic: only proptest's own macro
/// ([`FuzzTest`]) needs a failure to panic.
pub async fn replay(ctx: Arc<Ctx>, releases: Vec<usize>, steps: &[Step]) -> Result<Ran, Broken> {
    run_steps(ctx, releases, steps, None, &|| false, None).await
}

/// `steps` as the database sees them: each migrate step (a deploy, up, down or migrate to) as
/// `MigrateTo` the version it goes to under `releases`; up to the first step the model
/// refuses.
fn resolved(plan: &Arc<Plan>, releases: &[usize], steps: &[Step]) -> Vec<Step> {
    use proptest_state_machine::ReferenceStateMachine;
    let mut state = State::new(plan.clone(), releases.to_vec());
    let mut out = Vec::new();
    for step in steps {
        if !Model::preconditions(&state, step) {
            break;
        }
        let migrates = matches!(
            step,
            Step::Deploy(_) | Step::MigrateUp | Step::MigrateDown | Step::MigrateTo(_)
        );
        out.push(match state.target(step) {
            Some(to) if migrates => Step::MigrateTo(to),
            _ => step.clone(),
        });
        state = Model::apply(state, step);
    }
    out
}

/// [`replay`], counting in `seen` the steps begun, as proptest-state-machine's shrinking
/// expects (it drops the steps a failing case never reached), and asking `halt` before each
/// step whether to stop there ([`Ran::Halted`]). With `prefixes`, it answers from what a
/// sequence run before gave when that tells ([`Prefixes`]), else starts from the longest saved
/// prefix of `steps` and saves the long steps it runs.
pub async fn run_steps(
    ctx: Arc<Ctx>,
    releases: Vec<usize>,
    steps: &[Step],
    seen: Option<&std::sync::atomic::AtomicUsize>,
    halt: &dyn Fn() -> bool,
    prefixes: Option<&Prefixes>,
) -> Result<Ran, Broken> {
    let Some(p) = prefixes else {
        return run_from(ctx, releases, steps, seen, halt, None).await;
    };
    let key = resolved(&ctx.plan, &releases, steps);
    if let Some(ran) = p.recall(&key, key.len() == steps.len()) {
        if let Some(seen) = seen {
            let begun = match &ran {
                Ran::Failed(_, sequence) => sequence.len(),
                _ => steps.len(),
            };
            seen.fetch_add(begun, std::sync::atomic::Ordering::SeqCst);
        }
        return Ok(ran);
    }
    let ran = run_from(ctx, releases, steps, seen, halt, Some((p, &key))).await?;
    p.remember(&key, &ran);
    Ok(ran)
}

/// [`run_steps`] once the sequence must run: with `prefixes` and the sequence's resolved
/// steps, from the longest saved prefix, saving the long steps it runs.
async fn run_from(
    ctx: Arc<Ctx>,
    releases: Vec<usize>,
    steps: &[Step],
    seen: Option<&std::sync::atomic::AtomicUsize>,
    halt: &dyn Fn() -> bool,
    prefixes: Option<(&Prefixes, &[Step])>,
) -> Result<Ran, Broken> {
    let longest = prefixes.and_then(|(p, key)| p.longest(key));
    let resumed = match longest {
        Some((done, template, state, resume)) => Sut::resume(ctx.clone(), &template, resume)
            .await?
            .map(|sut| {
                // The same versions, under this sequence's release ends.
                let releases = releases.clone();
                (done, State { releases, ..state }, sut)
            }),
        None => None,
    };
    let (done, mut state, mut sut) = match resumed {
        Some(resumed) => {
            if let Some((p, _)) = prefixes {
                p.resumed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            resumed
        }
        None => (
            0,
            State::new(ctx.plan.clone(), releases.clone()),
            Sut::start(ctx).await?,
        ),
    };
    if let Some(seen) = seen {
        seen.fetch_add(done, std::sync::atomic::Ordering::SeqCst);
    }
    for (i, step) in steps.iter().enumerate().skip(done) {
        if halt() {
            return Ok(Ran::Halted { step: i + 1 });
        }
        if !<Model as proptest_state_machine::ReferenceStateMachine>::preconditions(&state, step) {
            return Ok(Ran::Stale {
                step: i + 1,
                what: format!(
                    "step {} ({step}) does not apply to these migrations any more",
                    i + 1
                ),
            });
        }
        if let Some(seen) = seen {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        state = <Model as proptest_state_machine::ReferenceStateMachine>::apply(state, step);
        let began = std::time::Instant::now();
        if let Err(f) = sut.step(&state, step).await? {
            return Ok(Ran::Failed(Box::new(f), sut.sequence().to_vec()));
        }
        if let Some((p, key)) = prefixes {
            if began.elapsed() >= SAVE_AFTER && i + 1 < key.len() && !p.has(&key[..=i]) {
                sut.save(p, &key[..=i], &state).await?;
            }
        }
    }
    Ok(Ran::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(category: &str) -> crate::observe::catalog::Column {
        crate::observe::catalog::Column {
            name: "c".into(),
            attnum: 1,
            type_sql: "text".into(),
            type_oid: 25,
            base_type: "text".into(),
            category: category.into(),
            typmod: -1,
            not_null: false,
            has_default: false,
            identity: String::new(),
            generated: String::new(),
            enum_labels: None,
            is_array: false,
        }
    }

    #[test]
    fn written_values_are_shown_quoted_cut_and_on_one_line() {
        let text = column("S");
        assert_eq!(show_value(&text, None), "NULL");
        assert_eq!(show_value(&text, Some("O'Brien")), "'O''Brien'");
        assert_eq!(show_value(&column("N"), Some("1234.5678")), "1234.5678");
        assert_eq!(show_value(&text, Some("a\nb")), "'a\\nb'");
        let long = "x".repeat(1000);
        assert_eq!(
            show_value(&text, Some(&long)),
            format!("'{}…' (1000 characters)", "x".repeat(SHOWN_CHARS))
        );
    }
}

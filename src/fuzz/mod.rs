//! `migproof fuzz` and `migproof replay`: random step sequences from the reference model run
//! against real PostgreSQL, shrunk to the shortest failing sequence, saved as the transitions
//! themselves, and replayed exactly.

pub mod regression;
pub mod reuse;
pub mod sut;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use proptest_state_machine::ReferenceStateMachine;

use crate::backend::{Access, Server};
use crate::check;
use crate::golden;
use crate::model::machine::{Fault, Model, Plan, State, Step};
use crate::observe::snapshot::Snapshot;
use crate::report::{Finding, FuzzCase, Kind, Note, NoteKind, Report, Source};
use crate::run::{Event, Progress, RunError, Silent};
use crate::source::MigrationSet;
use sut::Ctx;

/// What the user asked of `fuzz`.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    /// How many cases to run; `None`: cases keep coming until `duration` ends (with neither,
    /// until the run is stopped).
    pub cases: Option<u64>,
    pub max_steps: usize,
    pub seed: u64,
    /// The run's length, from its start (the golden pass included): no case starts after it,
    /// and the case running then stops at its next step. With `cases` too, whichever ends
    /// first. Shrinking a failure found before the end may outlast it by [`SHRINK_GRACE`].
    pub duration: Option<Duration>,
    pub jobs: usize,
    /// (index, count): this run covers cases whose number is `index` modulo `count`.
    pub shard: (u64, u64),
    pub regressions: PathBuf,
    pub strict: bool,
    pub step_timeout: Duration,
    /// The command line of this run, to print replay commands.
    pub migrations_arg: String,
}

/// How long shrinking a failure may take in a run without a `duration`.
pub const SHRINK_BUDGET: Duration = Duration::from_secs(120);

/// How long shrinking a failure found shortly before the end of a run's `duration` may go on
/// past it: a failure found in the last seconds is still shrunk, if less.
pub const SHRINK_GRACE: Duration = Duration::from_secs(30);

/// The share of a run's `duration` one failure's shrinking may take at most (but at least
/// [`SHRINK_GRACE`]): on a long history a failure can shrink for many minutes, and the run
/// goes on searching meanwhile only with its other jobs, or not at all once each job shrinks
/// one.
pub const SHRINK_SHARE: u32 = 4;

/// How long shrinking a failure found at `now` may take: without a `duration`,
/// [`SHRINK_BUDGET`]; with one (ending at `deadline`), until the deadline but at most
/// 1/[`SHRINK_SHARE`] of the duration, and never less than [`SHRINK_GRACE`].
pub fn shrink_budget(
    duration: Option<Duration>,
    deadline: Option<Instant>,
    now: Instant,
) -> Duration {
    match duration.zip(deadline) {
        Some((duration, deadline)) => deadline
            .saturating_duration_since(now)
            .min(duration / SHRINK_SHARE)
            .max(SHRINK_GRACE),
        None => SHRINK_BUDGET,
    }
}

/// The seed of case `case`: a SplitMix64 step, so cases are independent and reproducible.
pub fn case_seed(seed: u64, case: u64) -> u64 {
    let mut z = seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&case_seed(seed, i as u64).to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// The golden history and the model's plan for a migration set; findings of the golden pass.
pub async fn prepare(
    server: &Arc<Server>,
    set: &MigrationSet,
    step_timeout: Duration,
    strict: bool,
    releases: Option<Vec<usize>>,
    jobs: usize,
) -> Result<(Arc<Ctx>, Vec<Finding>), RunError> {
    let mut snapshots = Vec::new();
    let mut keep = |s: Option<Snapshot>| snapshots.extend(s);
    let golden = golden::pass(
        server,
        set,
        step_timeout,
        &Silent,
        true,
        Some(golden::Snapshots {
            from: 0,
            keep: &mut keep,
        }),
        None,
    )
    .await?;
    let mut findings = Vec::new();
    let usable = golden.versions - 1;
    let mut set = set.clone();
    if let Some(e) = &golden.failure {
        let m = &set.migrations[usable];
        let mut f = Finding::new(
            e.kind(),
            m.id(),
            check::step::UP_EMPTY.into(),
            format!("{e}; fuzzing covers only the migrations before it"),
        );
        f.place = e.place().cloned();
        findings.push(f);
    }
    set.migrations.truncate(usable);
    let plan = Plan {
        ids: set.migrations.iter().map(|m| m.id()).collect(),
        has_down: set.migrations.iter().map(|m| m.down.is_some()).collect(),
        tables: golden.tables,
        releases: releases.map(|r| r.into_iter().filter(|v| *v <= usable).collect()),
        external: set
            .migrations
            .first()
            .is_some_and(|m| m.up.command.is_some()),
    };
    let every = climb_every(plan.len());
    let ctx = Ctx {
        server: server.clone(),
        set: Arc::new(set),
        golden: Arc::new(snapshots),
        plan: Arc::new(plan),
        handle: tokio::runtime::Handle::current(),
        strict,
        step_timeout,
        steps: Arc::new(AtomicU64::new(0)),
        climbs: sut::Climbs::new(every),
        spares: sut::Spares::start(server.clone(), jobs.max(1)),
    };
    Ok((Arc::new(ctx), findings))
}

/// How many versions apart the copies of climbs from empty are kept ([`sut::Climbs`]) on a
/// history of `n` migrations: about 16 copies, none closer than 8 versions (a copy costs a
/// `CREATE DATABASE`, about what a few migrations' steps and checks cost).
fn climb_every(n: usize) -> usize {
    (n / 16).max(8)
}

/// One shrunk failure.
struct Failure {
    seed: u64,
    releases: Vec<usize>,
    failing: Failing,
    /// Set when shrinking ran out of time before it was done: the time it had.
    cut_short: Option<Duration>,
}

/// A failing sequence: its steps, its finding, and the steps as the report shows them.
#[derive(Clone)]
struct Failing {
    steps: Vec<Step>,
    finding: Finding,
    /// Numbered, with the values written (`3. write 1 row into ...`).
    sequence: Vec<String>,
}

impl Failing {
    /// `steps` that failed with `finding` after the steps of `sequence`, the ones after it
    /// left out.
    fn of(steps: &[Step], finding: Box<Finding>, sequence: Vec<String>) -> Failing {
        Failing {
            steps: steps[..sequence.len()].to_vec(),
            finding: *finding,
            sequence,
        }
    }
}

/// Whether two findings are the same failure, as shrinking keeps it: its kind and migration.
fn same(a: &Finding, b: &Finding) -> bool {
    a.kind == b.kind && a.migration == b.migration
}

/// A case as proptest's tree holds it: the model's first state, the steps, and how many of
/// them a run began.
type Case = (
    State,
    Vec<Step>,
    Option<Arc<std::sync::atomic::AtomicUsize>>,
);

/// Runs a case, stopping when told to, from the longest prefix given that it shares.
type RunCase<'a> =
    dyn Fn(Case, &dyn Fn() -> bool, Option<&sut::Prefixes>) -> Result<sut::Ran, RunError> + 'a;

/// How one case of the search ended.
enum Ended {
    /// It ran to its end: the shrunk failure, if it found one not known before.
    Ran(Option<Box<Failure>>),
    /// `halt` stopped it before its end: not a case run.
    Halted,
}

/// Runs one case, asking `halt` before each of its steps whether to stop there (shrinking is
/// bounded by [`shrink_budget`] instead). A failure whose (kind, migration) is already in
/// `known` is not shrunk again: shrinking replays the case many times.
fn run_case(
    ctx: &Arc<Ctx>,
    options: &FuzzOptions,
    seed: u64,
    deadline: Option<Instant>,
    halt: &dyn Fn() -> bool,
    known: &Mutex<Vec<(Kind, String)>>,
) -> Result<Ended, RunError> {
    let config = Config {
        cases: 1,
        failure_persistence: None,
        verbose: 0,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config.clone(), rng(seed));
    let strategy = Model::sequential_strategy(1..=options.max_steps.max(1));
    let tree = strategy
        .new_tree(&mut runner)
        .map_err(|e| RunError::Lost(format!("failed to generate a case: {e}")))?;
    // A finding is a value: the case runs here, not through proptest's panicking runner.
    let run = |case: Case,
               halt: &dyn Fn() -> bool,
               prefixes: Option<&sut::Prefixes>|
     -> Result<sut::Ran, RunError> {
        let (state, steps, seen) = case;
        let releases = state.releases.clone();
        let ran = sut::run_steps(
            ctx.clone(),
            releases,
            &steps,
            seen.as_deref(),
            halt,
            prefixes,
        );
        ctx.handle
            .block_on(ran)
            .map_err(|sut::Broken(e)| RunError::Lost(e))
    };
    // Run the case once; shrink only a failure not seen before.
    let (state, steps, seen) = tree.current();
    let failing = (state.clone(), steps);
    let (first, ran) = match run((state, failing.1.clone(), seen), halt, None)? {
        sut::Ran::Failed(f, sequence) => (*f, sequence.len()),
        sut::Ran::Halted { .. } => return Ok(Ended::Halted),
        sut::Ran::Passed | sut::Ran::Stale { .. } => return Ok(Ended::Ran(None)),
    };
    {
        let key = (first.kind, first.migration.clone());
        let mut known = known.lock().expect("not poisoned");
        if known.contains(&key) {
            return Ok(Ended::Ran(None));
        }
        known.push(key);
    }
    // The sequences that exercise the failing migration alone come first; proptest's shrinking
    // runs only when none of them gives the same finding. Candidates are not halted: shrinking
    // has its own budget, a share of the run, which may outlast the deadline by SHRINK_GRACE so
    // that a failure found just before it is still shrunk. Candidates start from copies of the
    // prefixes they share with sequences run before; the copies go when the failure is shrunk.
    let prefixes = sut::Prefixes::default();
    let now = Instant::now();
    let budget = shrink_budget(options.duration, deadline, now);
    let shrink_until = now + budget;
    let direct = direct(&failing.0, &first.migration, &failing.1[..ran]);
    let shrunk = direct_cause(&failing.0, &first, direct, &run, &prefixes)
        .and_then(|found| match found {
            Some(steps) => Ok(((failing.0, steps), false)),
            None => simplify(tree, failing, shrink_until, &run, &prefixes),
        })
        .and_then(|(failing, out_of_time)| {
            settle(
                ctx,
                seed,
                shrink_until,
                budget,
                failing,
                out_of_time,
                &prefixes,
            )
        });
    ctx.handle.block_on(prefixes.clear(&ctx.server));
    shrunk
}

/// proptest's shrinking of `failing`, the case `tree` holds: simplify while the case still
/// fails, complicate when it passes, until neither can go on or `deadline` comes. Returns the
/// simplest failing case and whether the deadline stopped it.
fn simplify(
    mut tree: impl ValueTree<Value = Case>,
    mut failing: (State, Vec<Step>),
    deadline: Instant,
    run: &RunCase<'_>,
    prefixes: &sut::Prefixes,
) -> Result<((State, Vec<Step>), bool), RunError> {
    let mut iterations = 0;
    if !tree.simplify() {
        return Ok((failing, false));
    }
    loop {
        if Instant::now() >= deadline {
            return Ok((failing, true));
        }
        if iterations >= 2048 {
            return Ok((failing, false));
        }
        iterations += 1;
        let (state, steps, seen) = tree.current();
        let candidate = (state.clone(), steps.clone());
        // A shrunk candidate the model rejects is not a failing one.
        if matches!(
            run((state, steps, seen), &|| false, Some(prefixes))?,
            sut::Ran::Failed(..)
        ) {
            failing = candidate;
            if !tree.simplify() {
                return Ok((failing, false));
            }
        } else if !tree.complicate() {
            return Ok((failing, false));
        }
    }
}

/// A shrunk failure made final: replayed from an empty database to read its finding exactly,
/// its needless steps deleted by [`minimize`] until `deadline`, and read again. Cut short when
/// `out_of_time` (shrinking ran out of its `budget`) or minimizing did.
fn settle(
    ctx: &Arc<Ctx>,
    seed: u64,
    deadline: Instant,
    budget: Duration,
    (state, steps): (State, Vec<Step>),
    out_of_time: bool,
    prefixes: &sut::Prefixes,
) -> Result<Ended, RunError> {
    let replayed = ctx
        .handle
        .block_on(sut::replay(ctx.clone(), state.releases.clone(), &steps));
    let failing = match replayed {
        Ok(sut::Ran::Failed(finding, sequence)) => Failing::of(&steps, finding, sequence),
        // Not reproducible from a fresh database (a flaky server, timing): nothing to save.
        Ok(sut::Ran::Passed | sut::Ran::Stale { .. } | sut::Ran::Halted { .. }) => {
            return Ok(Ended::Ran(None))
        }
        Err(sut::Broken(e)) => return Err(RunError::Lost(e)),
    };
    let exact = failing.clone();
    let (mut failing, done) = minimize(ctx, &state, failing, deadline, prefixes)?;
    // Minimizing resumed from copies: what is saved is read from an empty database again, or
    // is the exact replay above when that does not give the same finding.
    if failing.steps.len() < exact.steps.len() {
        let again = sut::replay(ctx.clone(), state.releases.clone(), &failing.steps);
        failing = match ctx.handle.block_on(again) {
            Ok(sut::Ran::Failed(f, sequence)) if same(&f, &failing.finding) => {
                Failing::of(&failing.steps, f, sequence)
            }
            Ok(_) => exact,
            Err(sut::Broken(e)) => return Err(RunError::Lost(e)),
        };
    }
    Ok(Ended::Ran(Some(Box::new(Failure {
        seed,
        releases: state.releases,
        failing,
        cut_short: (out_of_time || !done).then_some(budget),
    }))))
}

/// The first of the `direct` sequences that gives `finding` again, if one does. Most failures
/// of a real history are a migration's own: its up fails, its down does not restore the schema
/// before it, its up fails after its down, an interrupted up or down leaves residue, rows
/// written earlier make it fail. The shortest sequence of each is one of these, found in a
/// few runs that climb from copies, where proptest's shrinking replays a long case many times
/// and, on a long history, runs out of time with steps the failure does not need.
fn direct_cause(
    initial: &State,
    finding: &Finding,
    direct: Vec<Vec<Step>>,
    run: &RunCase<'_>,
    prefixes: &sut::Prefixes,
) -> Result<Option<Vec<Step>>, RunError> {
    for steps in direct {
        let case = (initial.clone(), steps.clone(), None);
        if let sut::Ran::Failed(f, _) = run(case, &|| false, Some(prefixes))? {
            if same(&f, finding) {
                return Ok(Some(steps));
            }
        }
    }
    Ok(None)
}

/// How many of a case's writes [`direct`] tries, the last ones before its failure.
const DIRECT_WRITES: usize = 3;

/// The sequences, shortest first, that exercise migration `id` alone from `initial` (an empty
/// database), with what the case `ran` up to its failure holds: migrate to it; roll it back;
/// apply it again after; each fault of the case on its up and on its down, then the retry; each
/// of the last [`DIRECT_WRITES`] writes of the case, at the version it ran at, before the
/// migration's up and before its down. Only those the model allows from `initial`.
fn direct(initial: &State, id: &str, ran: &[Step]) -> Vec<Vec<Step>> {
    let Some(v) = initial.plan.ids.iter().position(|m| m == id).map(|i| i + 1) else {
        return Vec::new();
    };
    // Climbing to version 0 is no step.
    let to = |t: usize| (t > 0).then_some(Step::MigrateTo(t));
    let (up, down) = (Step::MigrateUp, Step::MigrateDown);
    let mut all: Vec<Vec<Step>> = vec![
        vec![Step::MigrateTo(v)],
        vec![Step::MigrateTo(v), down.clone()],
        vec![Step::MigrateTo(v), down.clone(), up.clone()],
    ];
    let mut faults: Vec<Fault> = Vec::new();
    for step in ran {
        if let Step::Interrupt(f) = step {
            if !faults.contains(f) {
                faults.push(*f);
            }
        }
    }
    for f in faults {
        let (fault, retry) = (Step::Interrupt(f), Step::Retry);
        all.push(
            to(v - 1)
                .into_iter()
                .chain([fault.clone(), up.clone(), retry.clone()])
                .collect(),
        );
        all.push(vec![Step::MigrateTo(v), fault, down.clone(), retry]);
    }
    let mut state = initial.clone();
    let mut writes = Vec::new();
    for step in ran {
        if matches!(step, Step::WriteRows { .. }) && state.version <= v {
            writes.push((state.version, step.clone()));
        }
        state = Model::apply(state, step);
    }
    for (w, write) in writes.into_iter().rev().take(DIRECT_WRITES) {
        let before: Vec<Step> = to(w).into_iter().chain([write]).collect();
        if w < v {
            all.push(before.iter().cloned().chain([Step::MigrateTo(v)]).collect());
        }
        let at_v = (w < v).then_some(Step::MigrateTo(v));
        all.push(
            before
                .into_iter()
                .chain(at_v)
                .chain([down.clone()])
                .collect(),
        );
    }
    all.sort_by_key(Vec::len);
    let mut unique: Vec<Vec<Step>> = Vec::new();
    for steps in all {
        let allowed = allowed(initial, &steps).len() == steps.len();
        if allowed && !unique.contains(&steps) {
            unique.push(steps);
        }
    }
    unique
}

/// Deletes the steps a failure does not need, one at a time, each with the later steps its
/// deletion leaves invalid for the model (the retry of a deleted interruption, for example),
/// for as long as the shorter sequence gives the same finding again. proptest's own shrinking
/// deletes each step once, from the end, and cannot delete an interruption whose retry it kept.
/// Returns the shortest sequence found, and false when `deadline` stopped it first.
fn minimize(
    ctx: &Arc<Ctx>,
    initial: &State,
    mut failing: Failing,
    deadline: Instant,
    prefixes: &sut::Prefixes,
) -> Result<(Failing, bool), RunError> {
    let mut shorter = true;
    while shorter {
        shorter = false;
        let mut at = 0;
        while at < failing.steps.len() && failing.steps.len() > 1 {
            if Instant::now() >= deadline {
                return Ok((failing, false));
            }
            let candidate = without(initial, &failing.steps, at);
            let replayed = sut::run_steps(
                ctx.clone(),
                initial.releases.clone(),
                &candidate,
                None,
                &|| false,
                Some(prefixes),
            );
            match ctx.handle.block_on(replayed) {
                Ok(sut::Ran::Failed(f, sequence)) if same(&f, &failing.finding) => {
                    failing = Failing::of(&candidate, f, sequence);
                    shorter = true;
                }
                Ok(_) => at += 1,
                Err(sut::Broken(e)) => return Err(RunError::Lost(e)),
            }
        }
    }
    Ok((failing, true))
}

/// `steps` without step `at` and without every later step that is then invalid for the model.
fn without(initial: &State, steps: &[Step], at: usize) -> Vec<Step> {
    let rest = steps.iter().enumerate().filter(|(i, _)| *i != at);
    allowed(initial, rest.map(|(_, step)| step))
}

/// The steps the model allows from `initial`, in order, each of the others left out.
fn allowed<'a>(initial: &State, steps: impl IntoIterator<Item = &'a Step>) -> Vec<Step> {
    let mut state = initial.clone();
    let mut kept = Vec::new();
    for step in steps {
        if Model::preconditions(&state, step) {
            state = Model::apply(state, step);
            kept.push(step.clone());
        }
    }
    kept
}

/// Runs `migproof fuzz`: cases until `options.cases` are done or `options.duration` ends,
/// whichever comes first, or until `stop` is set (a running case then stops at its next step).
pub async fn run(
    server: Arc<Server>,
    set: &MigrationSet,
    options: FuzzOptions,
    progress: Arc<dyn Progress>,
    stop: Arc<AtomicBool>,
) -> Result<Report, RunError> {
    let started = Instant::now();
    let deadline = options.duration.map(|d| started + d);
    let source = Source {
        dir: set.dir.display().to_string(),
        format: set.format.to_string(),
    };
    let mut report = Report::new("fuzz", source, set.migrations.len(), server.kind_name());
    report.server = server.version.clone();
    let (ctx, findings) = prepare(
        &server,
        set,
        options.step_timeout,
        options.strict,
        None,
        options.jobs,
    )
    .await?;
    report.findings.extend(findings);
    let failures: Arc<Mutex<Vec<Failure>>> = Arc::default();
    let cases_done = Arc::new(AtomicU64::new(0));
    let next_case = Arc::new(AtomicU64::new(0));
    let known: Arc<Mutex<Vec<(Kind, String)>>> = Arc::default();
    let mut workers = Vec::new();
    if !ctx.plan.is_empty() {
        for _ in 0..options.jobs.max(1) {
            let (ctx, options, failures, progress) = (
                ctx.clone(),
                options.clone(),
                failures.clone(),
                progress.clone(),
            );
            let (cases_done, next_case, stop) =
                (cases_done.clone(), next_case.clone(), stop.clone());
            let known = known.clone();
            workers.push(tokio::task::spawn_blocking(
                move || -> Result<(), RunError> {
                    sut::install(ctx.clone());
                    let halt = || {
                        stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d)
                    };
                    loop {
                        if halt() {
                            return Ok(());
                        }
                        let n = next_case.fetch_add(1, Ordering::SeqCst);
                        if options.cases.is_some_and(|cases| n >= cases) {
                            return Ok(());
                        }
                        // Shards take disjoint case numbers: shard i of N runs i, i+N, i+2N, ...
                        let case = n * options.shard.1 + options.shard.0;
                        let seed = case_seed(options.seed, case);
                        match run_case(&ctx, &options, seed, deadline, &halt, &known)? {
                            Ended::Halted => return Ok(()),
                            Ended::Ran(None) => {}
                            Ended::Ran(Some(f)) => failures.lock().expect("not poisoned").push(*f),
                        }
                        let done = cases_done.fetch_add(1, Ordering::SeqCst) + 1;
                        let found = failures.lock().expect("not poisoned").len();
                        progress.event(Event::CaseDone {
                            cases: done,
                            steps: ctx.steps.load(Ordering::Relaxed),
                            findings: found,
                        });
                    }
                },
            ));
        }
    }
    let mut error = None;
    for w in workers {
        match w.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error = Some(e),
            Err(e) => error = Some(RunError::Lost(format!("a fuzz worker failed: {e}"))),
        }
    }
    ctx.spares.finish(&ctx.server).await;
    if let Some(e) = error {
        return Err(e);
    }
    let mut failures = std::mem::take(&mut *failures.lock().expect("not poisoned"));
    failures.sort_by_key(|f| (f.failing.steps.len(), f.seed));
    // A retry that fails, or ends elsewhere than the golden schema, because the migration
    // fails or mismatches anyway is that same finding again, not a finding about retries.
    let after_interruption = |k: Kind| matches!(k, Kind::RetryFailed | Kind::ResidueAfterFailure);
    let plain: Vec<String> = failures
        .iter()
        .filter(|f| !after_interruption(f.failing.finding.kind))
        .map(|f| f.failing.finding.migration.clone())
        .collect();
    let mut seen: Vec<(Kind, String)> = Vec::new();
    for f in failures {
        let Failing {
            steps,
            mut finding,
            sequence,
        } = f.failing;
        let key = (finding.kind, finding.migration.clone());
        if seen.contains(&key) || (after_interruption(key.0) && plain.contains(&key.1)) {
            continue; // the same finding from another case
        }
        seen.push(key);
        let saved = regression::save(
            &options.regressions,
            set,
            f.seed,
            &f.releases,
            &steps,
            &finding,
            &sequence,
        )
        .map_err(|e| RunError::Lost(format!("failed to save the regression case: {e}")))?;
        let replay = format!("migproof replay {}", saved.display());
        if let Some(budget) = f.cut_short {
            report.notes.push(shrinking_cut_short(
                &finding,
                budget,
                &replay,
                options.duration,
            ));
        }
        finding.case = Some(FuzzCase {
            sequence,
            seed: format!("{:#018x}", f.seed),
            replay,
        });
        report.findings.push(finding);
    }
    let elapsed = started.elapsed();
    let steps = ctx.steps.load(Ordering::Relaxed);
    report.summary.cases = Some(cases_done.load(Ordering::SeqCst));
    report.summary.seed = Some(format!("{:#018x}", options.seed));
    report.summary.steps = steps as usize;
    report.summary.steps_per_second =
        Some((steps as f64 / elapsed.as_secs_f64().max(1e-3) * 10.0).round() / 10.0);
    report.checked = ctx.plan.ids.clone();
    report.locate(|id, step| set.file_of(id, step));
    report.finish(elapsed);
    Ok(report)
}

/// The note for a finding whose shrinking ran out of time (`budget`): its sequence may hold
/// steps it does not need.
fn shrinking_cut_short(
    finding: &Finding,
    budget: Duration,
    replay: &str,
    duration: Option<Duration>,
) -> Note {
    let (why, next) = match duration {
        Some(_) => (
            format!(
                "the run's --duration left it {}s, at most 1/{SHRINK_SHARE} of the run per \
                 failure",
                budget.as_secs()
            ),
            "; the same --seed with a longer --duration shrinks it further",
        ),
        None => (
            format!("it may take {}s per failure", SHRINK_BUDGET.as_secs()),
            "",
        ),
    };
    Note {
        kind: NoteKind::Source,
        migration: Some(finding.migration.clone()),
        step: Some(finding.step.clone()),
        message: format!(
            "shrinking the {} sequence stopped before it was done ({why}): it may hold steps \
             the failure does not need. `{replay}` reproduces it as saved{next}",
            finding.kind.as_str()
        ),
        diff: None,
    }
}

/// Why a [`Harness`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The migrations folder could not be read.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// No server: the backend could not start or be reached.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// The server failed during the golden pass or a run.
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("failed to start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// A migration fails on an empty database: there is nothing to fuzz past it. The finding
    /// is the one `migproof check` reports.
    #[error("{} in {}: {}", .0.kind.as_str(), .0.migration, .0.message)]
    Golden(Box<Finding>),
}

/// The fuzzer from a user's own `cargo test`: gets a server, computes the golden history of
/// a migrations folder, and either runs `migproof fuzz`'s search itself ([`Harness::fuzz`], the
/// same cases, shrinking and saved cases as the command) or installs the context that
/// [`sut::FuzzTest`] (usable with `proptest-state-machine`'s `prop_state_machine!`) runs
/// against. Dropping it drops every scratch database and stops a local cluster.
pub struct Harness {
    ctx: Arc<Ctx>,
    set: MigrationSet,
    server: Arc<Server>,
    runtime: tokio::runtime::Runtime,
}

impl Harness {
    /// Loads `migrations` (layout detected) and prepares it on a server from `backend`
    /// (`url` names the server for the `url` backend; the docker backend's image comes from
    /// `MIGPROOF_PG_VERSION` and `MIGPROOF_DOCKER_IMAGE`).
    pub fn new(
        migrations: &std::path::Path,
        backend: crate::backend::BackendKind,
        url: Option<&str>,
    ) -> Result<Harness, HarnessError> {
        let set = crate::source::load(migrations, None)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(HarnessError::Runtime)?;
        let (ctx, server) = runtime.block_on(async {
            let docker = crate::backend::docker::Options::from_env();
            let access = Access::from_env(set.setup.migration_role);
            let major = set.settings.server.version;
            let mut server = Server::open(backend, url, &docker, major, access).await?;
            server.ignore_history_tables(&set.history_tables());
            let server = Arc::new(server);
            let (ctx, findings) =
                prepare(&server, &set, Duration::from_secs(120), false, None, 1).await?;
            if let Some(f) = findings.into_iter().next() {
                return Err(HarnessError::Golden(Box::new(f)));
            }
            Ok::<_, HarnessError>((ctx, server))
        })?;
        Ok(Harness {
            ctx,
            set,
            server,
            runtime,
        })
    }

    /// Makes this project the one state machine tests on the current thread run against.
    pub fn install(&self) {
        sut::install(self.ctx.clone());
    }

    /// Runs `migproof fuzz` on this project with `options`: the same cases for the same seed,
    /// shrunk and saved the same way. The report's findings are the failures; its human
    /// rendering ([`crate::report::human::render`]) is the command's output. Give `cases`,
    /// `duration` or both: with neither, nothing ends the search.
    pub fn fuzz(&self, options: FuzzOptions) -> Result<Report, HarnessError> {
        let stop = Arc::new(AtomicBool::new(false));
        let run = run(
            self.server.clone(),
            &self.set,
            options,
            Arc::new(Silent),
            stop,
        );
        Ok(self.runtime.block_on(run)?)
    }

    /// Runs `steps` as shrinking does: from the longest prefix `prefixes` holds, saving the
    /// long steps it runs. For tests of shrinking's resumption.
    #[doc(hidden)]
    pub fn run_steps(
        &self,
        releases: Vec<usize>,
        steps: &[Step],
        prefixes: &sut::Prefixes,
    ) -> Result<sut::Ran, sut::Broken> {
        let run = sut::run_steps(
            self.ctx.clone(),
            releases,
            steps,
            None,
            &|| false,
            Some(prefixes),
        );
        self.runtime.block_on(run)
    }

    /// How many climbs from empty continued from a copy ([`sut::Climbs`]). For tests.
    #[doc(hidden)]
    pub fn climbs_used(&self) -> u64 {
        self.ctx.climbs.used()
    }

    /// Drops the copies `prefixes` holds.
    #[doc(hidden)]
    pub fn clear(&self, prefixes: &sut::Prefixes) {
        self.runtime.block_on(prefixes.clear(&self.server));
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let (ctx, server) = (self.ctx.clone(), self.server.clone());
        self.runtime.block_on(async move {
            ctx.spares.finish(&ctx.server).await;
            let _ = server.cleanup().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct sequences of a failure at 0003: shortest first, with the case's faults on
    /// its up and its down, each once, and only what the model allows (no rollback without a
    /// down, no step before a retry).
    #[test]
    fn direct_sequences_exercise_the_failing_migration_alone_with_the_cases_faults() {
        let plan = |downs: bool| {
            Arc::new(Plan {
                ids: (1..=4).map(|i| format!("{i:04}_m")).collect(),
                has_down: vec![downs; 4],
                tables: vec![Vec::new(); 5],
                releases: None,
                external: false,
            })
        };
        let lock = Step::Interrupt(Fault::LockTimeout);
        let ran = [
            Step::MigrateTo(1),
            lock.clone(),
            Step::MigrateUp,
            Step::Retry,
            lock.clone(),
            Step::MigrateTo(4),
        ];
        let initial = State::new(plan(true), vec![4]);
        let (to, up, down, retry) = (
            Step::MigrateTo,
            Step::MigrateUp,
            Step::MigrateDown,
            Step::Retry,
        );
        assert_eq!(
            direct(&initial, "0003_m", &ran),
            vec![
                vec![to(3)],
                vec![to(3), down.clone()],
                vec![to(3), down.clone(), up.clone()],
                vec![to(2), lock.clone(), up, retry.clone()],
                vec![to(3), lock, down, retry],
            ]
        );
        let no_downs = State::new(plan(false), vec![4]);
        assert_eq!(
            direct(&no_downs, "0003_m", &ran).len(),
            2,
            "the up alone, and with the fault"
        );
        assert!(direct(&initial, "0009_gone", &ran).is_empty());
    }

    #[test]
    fn a_failure_shrinks_for_a_share_of_the_run_until_its_end_and_at_least_the_grace() {
        let now = Instant::now();
        let min = Duration::from_secs(60);
        let budget = |duration: u64, left: u64| {
            shrink_budget(
                Some(Duration::from_secs(duration)),
                Some(now + Duration::from_secs(left)),
                now,
            )
        };
        // early in a 10-minute run: a quarter of it, not the 9 minutes left
        assert_eq!(budget(600, 540), 2 * min + Duration::from_secs(30));
        // near its end: what is left
        assert_eq!(budget(600, 100), Duration::from_secs(100));
        // at its end, or in a short run: the grace
        assert_eq!(budget(600, 0), SHRINK_GRACE);
        assert_eq!(budget(60, 50), SHRINK_GRACE);
        // no duration: the fixed budget
        assert_eq!(shrink_budget(None, None, now), SHRINK_BUDGET);
    }

    #[test]
    fn a_shrinking_cut_short_is_a_note_naming_the_replay_and_what_to_do() {
        let finding = Finding::new(
            Kind::DataLost,
            "0002_x".into(),
            "step 3: migrate down one version (roll back 0002_x)".into(),
            "rows were lost".into(),
        );
        let replay = "migproof replay proptest-regressions/data_lost-0002-x-1.json";
        let duration = Some(Duration::from_secs(60));
        let note = shrinking_cut_short(&finding, SHRINK_GRACE, replay, duration);
        assert_eq!(note.kind, NoteKind::Source);
        assert_eq!(note.migration.as_deref(), Some("0002_x"));
        assert!(
            note.message.contains("--duration left it 30s"),
            "{}",
            note.message
        );
        assert!(note.message.contains(replay), "{}", note.message);
    }
}

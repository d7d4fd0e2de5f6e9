//! The `locks` runner: the no-downtime analysis. On a scratch database of its own it applies
//! every up in order, statement by statement, the way its layout runs it (inside the
//! migration's transaction where it has one), after filling every table with `--rows` rows.
//! After each statement it reads the migrating backend's locks on relations that existed
//! before the migration, rewrites, index builds and validations (`observe::locks`); statements
//! that cannot run in a transaction block are sampled from a second connection while they run;
//! a probe measures how long the application's reads and writes waited (`observe::probe`),
//! beside a long report query holding a snapshot and a lock on every table
//! (`observe::report_query`), and the sampler counts the sessions queued for a lock.
//! The trace is judged by `rules` and reported by `migproof locks`, or inside `check --locks`.

pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use tokio::sync::mpsc;

use crate::backend::{ScratchDb, Server};
use crate::executor::{Observer, Session, Statement, StepError};
use crate::golden;
use crate::model::fill;
use crate::observe::catalog::{self, Table};
use crate::observe::data;
use crate::observe::locks::{
    blocks_reads, blocks_writes, changes, deepest, lock_wait, Existing, Sampler, State,
};
use crate::observe::probe::{Access, Probes, Wait};
use crate::observe::report_query::{ReportQuery, HOLD as REPORT_HOLD};
use crate::report::locks::{
    self as trace, LockTaken, LockTrace, MigrationTrace, ProbeWait, StatementTrace, TableWait,
};
use crate::report::{data_cause, Finding, Kind, LockDetail, Note, NoteKind, Report, Source};
use crate::run::{lost, Event, Phase, Progress, RunError};
use crate::source::config;
use crate::source::{Migration, MigrationSet, Script};

pub use rules::{Rule, RULES};

/// Rows per table when `--rows` is not given.
pub const DEFAULT_ROWS: u64 = 10_000;

/// The step named in lock findings.
pub const STEP: &str = "up (lock trace)";

/// What the user asked of the lock analysis.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Rows written into every table before the migrations after it are traced.
    pub rows: u64,
    /// Sizes of their own for some tables (`[locks.rows]` in migproof.toml): `schema.table`
    /// or a bare name, for that table in any schema.
    pub table_rows: BTreeMap<String, u64>,
    /// A lock that blocks reads or writes held longer than this is a hazard.
    pub threshold: Duration,
    /// A statement running longer than this is stopped and reported as `timeout`.
    pub step_timeout: Duration,
}

/// How `check` reports hazards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Every hazard is a `lock_hazard` note.
    Warn,
    /// Hazards are `lock_hazard` findings, warnings stay notes.
    Error,
}

/// The lock analysis as `check --locks warn|error` runs it.
#[derive(Debug, Clone)]
pub struct LockCheck {
    pub level: Level,
    pub options: LockOptions,
}

/// What one analysis produced.
struct Outcome {
    trace: LockTrace,
    /// The migration that did not apply, and why.
    failure: Option<(String, Kind, String)>,
    /// Ups that failed on the filled rows, which were then emptied and the up traced again.
    data_dependent: Vec<DataDependent>,
    /// (migration, message) for every table that could not be filled.
    unfilled: Vec<(String, String)>,
    /// (migration, the server's error) for every up whose lock_timeout expired behind the
    /// report query, which was then traced again without it.
    timed_out_behind_report: Vec<(String, String)>,
    statements: usize,
    rows_filled: u64,
}

/// `migproof locks`: the trace, hazards as findings (warnings as notes).
pub async fn run(
    server: &Server,
    set: &MigrationSet,
    options: &LockOptions,
    progress: &dyn Progress,
) -> Result<Report, RunError> {
    let started = Instant::now();
    let source = Source {
        dir: set.dir.display().to_string(),
        format: set.format.to_string(),
    };
    let mut report = Report::new("locks", source, set.migrations.len(), server.kind_name());
    report.server = server.version.clone();
    for note in &set.notes {
        report.notes.push(Note {
            kind: NoteKind::Source,
            migration: None,
            step: None,
            message: note.clone(),
            diff: None,
        });
    }
    progress.event(Event::Started {
        migrations: set.migrations.len(),
        checked: set.migrations.len(),
    });
    let outcome = analyse(server, set, options, progress).await?;
    progress.event(Event::Finished);
    for h in rules::evaluate(&outcome.trace) {
        let assured = safety_assured(set, &h);
        if h.rule.is_warning() || assured {
            report.notes.push(note(h, assured));
        } else {
            report.findings.push(finding(h));
        }
    }
    if let Some((migration, kind, message)) = &outcome.failure {
        let later = set.migrations.len() - outcome.trace.migrations.len();
        let skipped = if later > 0 {
            format!("; the {later} migration(s) after it were not traced")
        } else {
            String::new()
        };
        let message = format!("{message}{skipped}");
        report
            .findings
            .push(Finding::new(*kind, migration.clone(), STEP.into(), message));
    }
    push_data_dependent(&mut report, &outcome.data_dependent);
    push_timed_out_behind_report(&mut report, &outcome.timed_out_behind_report);
    push_unfilled(&mut report, &outcome.unfilled);
    // The migration that did not apply is the last one traced.
    let traced = outcome.trace.migrations.len() - usize::from(outcome.failure.is_some());
    report.checked = outcome.trace.migrations[..traced]
        .iter()
        .map(|m| m.migration.clone())
        .collect();
    report.summary.steps = outcome.statements;
    report.summary.rows_seeded = outcome.rows_filled as usize;
    report.locks = Some(outcome.trace);
    report.locate(|id, step| set.file_of(id, step));
    report.finish(started.elapsed());
    Ok(report)
}

/// `check --locks warn|error`: adds hazards to a check report as findings or notes.
pub async fn add_to_check(
    report: &mut Report,
    server: &Server,
    set: &MigrationSet,
    check: &LockCheck,
    progress: &dyn Progress,
) -> Result<(), RunError> {
    let outcome = analyse(server, set, &check.options, progress).await?;
    for h in rules::evaluate(&outcome.trace) {
        let assured = safety_assured(set, &h);
        if check.level == Level::Error && !h.rule.is_warning() && !assured {
            report.findings.push(finding(h));
        } else {
            report.notes.push(note(h, assured));
        }
    }
    push_data_dependent(report, &outcome.data_dependent);
    if let Some((migration, _, message)) = outcome.failure {
        report.notes.push(Note {
            kind: NoteKind::LockAnalysis,
            migration: Some(migration),
            step: Some(STEP.into()),
            message: format!("the lock analysis stopped here: {message}"),
            diff: None,
        });
    }
    push_timed_out_behind_report(report, &outcome.timed_out_behind_report);
    push_unfilled(report, &outcome.unfilled);
    Ok(())
}

/// Ups whose `lock_timeout` expired behind the report query: what a deploy meets whenever a
/// query runs longer than that timeout; the migration is right to give up, and a deploy that
/// retries gets through, as the trace did without the report query.
fn push_timed_out_behind_report(report: &mut Report, timed_out: &[(String, String)]) {
    for (migration, error) in timed_out {
        report.notes.push(Note {
            kind: NoteKind::LockAnalysis,
            migration: Some(migration.clone()),
            step: Some(STEP.into()),
            message: format!(
                "{error}\nthe up's lock_timeout expired behind the report query (a transaction \
                 reading every table for up to {} ms): in production it gives up whenever a \
                 query runs longer than its lock_timeout, so deploy it with retries. The trace \
                 ran it again without the report query",
                REPORT_HOLD.as_millis()
            ),
            diff: None,
        });
    }
}

/// The user's tables, and the quoted names of those that hold a row (one round trip for all).
async fn tables_holding_rows(
    conn: &mut PgConnection,
) -> Result<(Vec<Table>, BTreeSet<String>), sqlx::Error> {
    let tables = catalog::tables(&mut *conn).await?;
    let all: Vec<&Table> = tables.iter().collect();
    let empty = data::empty(&mut *conn, &all).await?;
    let holding = tables
        .iter()
        .zip(empty)
        .filter(|(_, empty)| !empty)
        .map(|(t, _)| t.sql_name())
        .collect();
    Ok((tables, holding))
}

/// The tables to empty before tracing an up again that failed on rows: (as users write it,
/// quoted). The table the server named, when it holds rows and was not emptied already. When
/// it named none (a function the up calls rejected a value, say), or one that holds no rows
/// (the table the up was creating and filling from others, gone with its rolled-back
/// transaction): every table holding rows, once. `None` when there is nothing left to empty:
/// the up fails without the fill's rows.
async fn to_empty(
    conn: &mut PgConnection,
    offending: &Offending,
    emptied: &[String],
    emptied_all: bool,
) -> Result<Option<Vec<(String, String)>>, sqlx::Error> {
    let (tables, with_rows) = tables_holding_rows(conn).await?;
    let holding: Vec<(String, String)> = tables
        .iter()
        .filter(|t| with_rows.contains(&t.sql_name()))
        .map(|t| (t.display_name(), t.sql_name()))
        .collect();
    let named = offending
        .table
        .as_ref()
        .filter(|name| !emptied.contains(name))
        .and_then(|name| holding.iter().find(|(n, _)| n == name));
    Ok(match named {
        Some(table) => Some(vec![table.clone()]),
        None if emptied_all || holding.is_empty() => None,
        None => Some(holding),
    })
}

/// The ups that failed on the lock trace's filled rows, as `data_dependent` notes: the rows
/// are the fill's, made without knowing the constraints later migrations add, so a failure on
/// them is worth knowing but does not fail the run (`check` judges data dependence on its own
/// seeded rows).
fn push_data_dependent(report: &mut Report, failures: &[DataDependent]) {
    for d in failures {
        let message = if d.named {
            format!(
                "{error}\nthe up fails on the rows the lock trace filled `{table}` with \
                 ({cause}); production rows may hold the same. The trace emptied `{table}` (and \
                 the tables referencing it) and traced this migration again",
                error = d.error,
                table = d.emptied.join("`, `"),
                cause = d.cause,
            )
        } else {
            format!(
                "{error}\nthe up fails on the rows the lock trace filled the tables with \
                 ({cause}); production rows may hold the same. The server named no table, so \
                 the trace emptied every table holding rows ({tables}) and traced this \
                 migration again",
                error = d.error,
                cause = d.cause,
                tables = list(&d.emptied, 6),
            )
        };
        report.notes.push(Note {
            kind: NoteKind::DataDependent,
            migration: Some(d.migration.clone()),
            step: Some(STEP.into()),
            message,
            diff: None,
        });
    }
}

/// `a, b, c and 4 more`: at most `shown` names.
fn list(names: &[String], shown: usize) -> String {
    match names.len() {
        n if n <= shown => names.join(", "),
        n => format!("{} and {} more", names[..shown].join(", "), n - shown),
    }
}

fn finding(h: rules::Hazard) -> Finding {
    let mut f = Finding::new(Kind::LockHazard, h.migration, STEP.into(), h.message);
    f.lock = Some(LockDetail {
        rule: h.rule.id().into(),
        table: h.table,
        lock_mode: h.lock_mode,
        duration_ms: h.duration_ms,
        hint: h.rule.hint().into(),
    });
    f
}

/// True when the hazard's statement lies in a `-- safety-assured` block of its migration:
/// its author reviewed the lock and says why it is safe, as the crates.io history does.
fn safety_assured(set: &MigrationSet, h: &rules::Hazard) -> bool {
    set.migrations
        .iter()
        .find(|m| m.id() == h.migration)
        .is_some_and(|m| m.up.safety_assured(h.line))
}

/// A hazard as a note: a warning, one its author marked as reviewed (`assured`), or any
/// under `check --locks warn`.
fn note(h: rules::Hazard, assured: bool) -> Note {
    let message = if assured {
        format!(
            "[{}] {}; the statement is in a `-- safety-assured` block, so its author reviewed \
             this lock: a note, not a finding",
            h.rule.id(),
            h.message
        )
    } else {
        format!("[{}] {}; fix: {}", h.rule.id(), h.message, h.rule.hint())
    };
    Note {
        kind: NoteKind::LockHazard,
        migration: Some(h.migration),
        step: Some(STEP.into()),
        message,
        diff: None,
    }
}

fn push_unfilled(report: &mut Report, unfilled: &[(String, String)]) {
    for (migration, message) in unfilled {
        report.notes.push(Note {
            kind: NoteKind::UnfilledTable,
            migration: Some(migration.clone()),
            step: Some("fill (--rows)".into()),
            message: message.clone(),
            diff: None,
        });
    }
}

async fn analyse(
    server: &Server,
    set: &MigrationSet,
    options: &LockOptions,
    progress: &dyn Progress,
) -> Result<Outcome, RunError> {
    // The golden pass shows what every later version of each table holds, so that the fill
    // writes rows the constraints added later accept.
    let golden = golden::pass(
        server,
        set,
        options.step_timeout,
        progress,
        true,
        None,
        None,
    )
    .await?;
    let table_rows = sized_tables(&options.table_rows, &golden.tables)?;
    let db = server.create().await?;
    let result = analyse_on(&db, set, options, &table_rows, &golden.tables, progress).await;
    server.drop_db(&db).await?;
    result
}

/// `[locks.rows]` by the `schema.table` each key names in some version of the schema; a key
/// that names no table of any version is refused (a typo would silently leave the table at
/// `--rows`).
fn sized_tables(
    asked: &BTreeMap<String, u64>,
    versions: &[Vec<Table>],
) -> Result<BTreeMap<String, u64>, RunError> {
    let mut sized = BTreeMap::new();
    for (key, rows) in asked {
        let matching: BTreeSet<String> = versions
            .iter()
            .flatten()
            .filter(|t| t.display_name() == *key || t.name == *key)
            .map(Table::display_name)
            .collect();
        if matching.is_empty() {
            return Err(RunError::Input(format!(
                "{}: [locks.rows] sizes `{key}`, which no migration creates (name it \
                 `schema.table` or `table`)",
                config::FILE
            )));
        }
        sized.extend(matching.into_iter().map(|name| (name, *rows)));
    }
    Ok(sized)
}

async fn analyse_on(
    db: &ScratchDb,
    set: &MigrationSet,
    options: &LockOptions,
    table_rows: &BTreeMap<String, u64>,
    versions: &[Vec<Table>],
    progress: &dyn Progress,
) -> Result<Outcome, RunError> {
    let mut session = Session::open(db, options.step_timeout).await?;
    let mut outcome = Outcome {
        trace: LockTrace {
            rows: options.rows,
            table_rows: table_rows.clone(),
            lock_threshold_ms: options.threshold.as_millis() as u64,
            migrations: Vec::new(),
        },
        failure: None,
        data_dependent: Vec::new(),
        unfilled: Vec::new(),
        timed_out_behind_report: Vec::new(),
        statements: 0,
        rows_filled: 0,
    };
    let mut given_up: BTreeSet<String> = BTreeSet::new();
    for (i, m) in set.migrations.iter().enumerate() {
        let filled = if options.rows > 0 || table_rows.values().any(|&n| n > 0) {
            progress.event(Event::Migration {
                index: i,
                id: &m.id(),
                phase: Phase::Fill,
            });
            let later = versions.get(i + 1..).unwrap_or_default();
            let size = |table: &str| table_rows.get(table).copied().unwrap_or(options.rows);
            let (filled, notes) = fill_tables(db, session.conn(), &size, later, &mut given_up)
                .await
                .map_err(lost)?;
            outcome.rows_filled += filled.iter().map(|t| size(t)).sum::<u64>();
            outcome
                .unfilled
                .extend(notes.into_iter().map(|n| (m.id(), n)));
            filled
        } else {
            Vec::new()
        };
        progress.event(Event::Migration {
            index: i,
            id: &m.id(),
            phase: Phase::LockTrace,
        });
        // An up that fails on the filled rows (a new unique key over duplicates, say) is data
        // dependent: reported, the rows emptied, the up traced again, and the history goes
        // on, so the migrations after it are traced too.
        let mut emptied: Vec<String> = Vec::new();
        let mut emptied_all = false;
        let mut beside_report = true;
        let stopped = loop {
            let traced = trace_migration(&mut session, m, beside_report).await?;
            let (mut trace, failure, offending, behind_report) = traced;
            trace.filled = filled.clone();
            outcome.statements += trace.statements.len();
            if let (true, Some((_, error))) = (behind_report, &failure) {
                outcome
                    .timed_out_behind_report
                    .push((m.id(), error.clone()));
                beside_report = false;
                continue;
            }
            let retry = match (&failure, offending) {
                (Some(_), Some(o)) => to_empty(session.conn(), &o, &emptied, emptied_all)
                    .await
                    .map_err(lost)?
                    .map(|tables| (o, tables)),
                _ => None,
            };
            match (failure, retry) {
                (Some((_, error)), Some((offending, tables))) => {
                    let names: Vec<&str> = tables.iter().map(|(_, sql)| sql.as_str()).collect();
                    let truncate =
                        format!("TRUNCATE {} RESTART IDENTITY CASCADE", names.join(", "));
                    sqlx::raw_sql(AssertSqlSafe(truncate))
                        .execute(session.conn())
                        .await
                        .map_err(lost)?;
                    let named = offending
                        .table
                        .as_ref()
                        .is_some_and(|name| tables.len() == 1 && tables[0].0 == *name);
                    emptied_all |= !named;
                    emptied.extend(tables.iter().map(|(name, _)| name.clone()));
                    outcome.data_dependent.push(DataDependent {
                        migration: m.id(),
                        error,
                        cause: offending.cause(),
                        named,
                        emptied: tables.into_iter().map(|(name, _)| name).collect(),
                    });
                }
                (failure, _) => {
                    outcome.trace.migrations.push(trace);
                    break failure;
                }
            }
        };
        if let Some((kind, message)) = stopped {
            outcome.failure = Some((m.id(), kind, message));
            break;
        }
    }
    session.close().await;
    Ok(outcome)
}

/// Fills every empty table with `size(table)` rows, parents first, with the keys the `later`
/// versions of each table add. Returns the tables filled and a note for each table that could not be
/// (it stays empty and is not tried again).
async fn fill_tables(
    db: &ScratchDb,
    trace_conn: &mut PgConnection,
    size: &dyn Fn(&str) -> u64,
    later: &[Vec<Table>],
    given_up: &mut BTreeSet<String>,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let (tables, mut has_rows) = tables_holding_rows(trace_conn).await?;
    let (mut filled, mut notes) = (Vec::new(), Vec::new());
    if tables
        .iter()
        .all(|t| has_rows.contains(&t.sql_name()) || given_up.contains(&t.sql_name()))
    {
        return Ok((filled, notes));
    }
    // A session of its own, as the application's writers have: the trace's session keeps
    // the plans its triggers were compiled with, which a column's new type breaks.
    let mut own = db.connect().await?;
    let conn = &mut own;
    sqlx::raw_sql(crate::executor::SETTINGS)
        .execute(&mut *conn)
        .await?;
    for t in catalog::parents_first(&tables) {
        let rows = size(&t.display_name());
        if has_rows.contains(&t.sql_name()) || given_up.contains(&t.sql_name()) || rows == 0 {
            continue;
        }
        let cannot = |why: String| {
            format!("could not fill {} with {rows} rows ({why}); its locks are traced on an empty table", t.display_name())
        };
        let has = |name: &str| has_rows.contains(name);
        let ahead: Vec<&Table> = later
            .iter()
            .filter_map(|v| v.iter().find(|l| l.sql_name() == t.sql_name()))
            .collect();
        let t = &fill::with_ahead(t, &ahead, &tables, &has);
        // Hex digests first; a table that refuses them (an expression index, a check or a
        // trigger parses its text as numbers or versions) is tried with dotted numbers.
        let mut refused = None;
        for text in [fill::Text::Hashes, fill::Text::Dotted] {
            let sql = match fill::insert(t, rows, &has, text) {
                Ok(sql) => sql,
                Err(why) => {
                    refused = Some(why);
                    break;
                }
            };
            match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await {
                Ok(_) => {
                    refused = None;
                    break;
                }
                Err(sqlx::Error::Database(e)) => {
                    refused = Some(format!("the server said: {}", e.message()));
                }
                Err(e) => return Err(e),
            }
        }
        match refused {
            None => {
                has_rows.insert(t.sql_name());
                filled.push(t.display_name());
            }
            Some(why) => {
                notes.push(cannot(why));
                given_up.insert(t.sql_name());
            }
        }
    }
    if !filled.is_empty() {
        // production tables have statistics; the planner's choices in validations depend on them
        let names: Vec<String> = catalog::parents_first(&tables)
            .iter()
            .filter(|t| filled.contains(&t.display_name()))
            .map(|t| t.sql_name())
            .collect();
        sqlx::raw_sql(AssertSqlSafe(format!("ANALYZE {}", names.join(", "))))
            .execute(&mut *conn)
            .await?;
    }
    let _ = own.close().await;
    Ok((filled, notes))
}

/// The migration's clock: wall time without migproof's own observation queries.
struct Clock {
    start: Instant,
    paused: Duration,
}

impl Clock {
    fn now(&self) -> Duration {
        self.start.elapsed().saturating_sub(self.paused)
    }
}

/// When a statement ran, for attributing probe waits.
#[derive(Debug, Clone)]
struct Timing {
    start: Instant,
    /// When it returned.
    end: Option<Instant>,
    /// When the locks it took were released (end of its transaction).
    released: Option<Instant>,
    /// (relation oid, mode) of the locks it took first.
    took: Vec<(i64, String)>,
}

/// The transaction statements currently run in.
struct Unit {
    number: usize,
    /// (oid, mode, statement index, migration clock at that statement's start).
    taken: Vec<(i64, String, usize, Duration)>,
}

/// The lock trace of one up: an [`Observer`] of the session applying it.
struct Tracer<'a> {
    script: &'a Script,
    existing: Existing,
    prev: State,
    clock: Clock,
    statements: Vec<StatementTrace>,
    timings: Vec<Timing>,
    unit: Option<Unit>,
    units: usize,
    sampler: Option<Sampler>,
    /// The statement running: its index, its start on the migration's clock, and for one
    /// run outside a transaction block, the state before it.
    current: Option<(usize, Duration, Option<State>)>,
}

/// Rows an up rejected: a data error (SQLSTATE class 22) or an integrity one (class 23).
#[derive(Debug, Clone)]
struct Offending {
    /// The table the server named, as users write it (`public.versions`); `None` when it
    /// named none.
    table: Option<String>,
    /// The server's SQLSTATE.
    code: String,
}

/// An up that failed on the fill's rows, traced again once they were emptied.
struct DataDependent {
    migration: String,
    /// The server's error, with the file and line.
    error: String,
    /// What about the rows made the up fail, in words.
    cause: &'static str,
    /// Whether the server named the table (else every table holding rows was emptied).
    named: bool,
    /// The tables emptied, as users write them.
    emptied: Vec<String>,
}

impl Offending {
    /// The rows `e` says the up rejected, when it is a data or integrity error.
    fn of(e: &StepError) -> Option<Offending> {
        let StepError::Sql { location, .. } = e else {
            return None;
        };
        let code = location.sqlstate.as_deref()?;
        (code.starts_with("22") || code.starts_with("23")).then(|| Offending {
            table: location.table().map(str::to_owned),
            code: code.to_owned(),
        })
    }

    /// What about the rows made the up fail, in words.
    fn cause(&self) -> &'static str {
        data_cause(&self.code)
    }
}

/// What tracing one up gave: its trace, why it failed, the rows it failed on, and whether it
/// failed because its lock_timeout expired while the report query was open.
type Traced = (
    MigrationTrace,
    Option<(Kind, String)>,
    Option<Offending>,
    bool,
);

/// Runs one migration's up statement by statement on `session` and traces it, beside the
/// report query when `report_query`.
async fn trace_migration(
    session: &mut Session,
    m: &Migration,
    report_query: bool,
) -> Result<Traced, RunError> {
    let db = session.db().clone();
    let before = State::read(session.conn()).await.map_err(lost)?;
    let existing = Existing::from_state(&before);
    let (touched, announced) = mpsc::unbounded_channel();
    let sampler = Sampler::start(&db, session.pid(), &existing, touched)
        .await
        .map_err(lost)?;
    let tables = existing.tables();
    let probes = Probes::start(&db, tables.clone(), announced).await;
    // last, so that its hold starts as the migration does
    let report = if report_query {
        ReportQuery::open(&db, &tables.values().collect::<Vec<_>>()).await
    } else {
        None
    };
    let mut t = Tracer {
        script: &m.up,
        existing,
        prev: before,
        clock: Clock {
            start: Instant::now(),
            paused: Duration::ZERO,
        },
        statements: Vec::new(),
        timings: Vec::new(),
        unit: None,
        units: 0,
        sampler: Some(sampler),
        current: None,
    };
    let result = session.apply_observed(&m.up, &mut t).await;
    let duration = t.clock.now();
    let report_query = match report {
        Some(report) => {
            let (ready, tables) = (report.ready, report.tables.clone());
            let end = report.close().await.unwrap_or_else(Instant::now);
            Some(trace::ReportQuery {
                tables,
                held_ms: ms(end.saturating_duration_since(ready.max(t.clock.start))),
            })
        }
        None => None,
    };
    if let Some(sampler) = t.sampler.take() {
        sampler.stop().await;
    }
    let waits = probes.stop().await;
    let (failure, offending, lock_timed_out) = match result {
        Ok(()) => (None, None, false),
        Err(e) if e.is_environment() => return Err(RunError::Lost(e.to_string())),
        Err(e) => {
            let timed_out = matches!(&e, StepError::Sql { location, .. }
                if location.sqlstate.as_deref() == Some(LOCK_NOT_AVAILABLE));
            (
                Some((e.kind(), e.to_string())),
                Offending::of(&e),
                timed_out,
            )
        }
    };
    // the report query was open: it is what the lock request timed out behind
    let behind_report = lock_timed_out && report_query.is_some();
    let (table_waits, probe_waits) = t.attribute(&waits);
    let trace = MigrationTrace {
        migration: m.id(),
        file: m.up.path.display().to_string(),
        duration_ms: duration.as_millis() as u64,
        filled: Vec::new(),
        statements: t.statements,
        waits: table_waits,
        probe_waits,
        report_query,
        error: failure.as_ref().map(|(_, message)| message.clone()),
    };
    Ok((trace, failure, offending, behind_report))
}

/// SQLSTATE `lock_not_available`: a `lock_timeout` expired.
const LOCK_NOT_AVAILABLE: &str = "55P03";

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Observer for Tracer<'_> {
    async fn began(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        // scan counts only compare within one transaction
        self.prev = self.observe(conn).await?;
        self.units += 1;
        self.unit = Some(Unit {
            number: self.units,
            taken: Vec::new(),
        });
        Ok(())
    }

    async fn before(
        &mut self,
        conn: &mut PgConnection,
        st: &Statement<'_>,
    ) -> Result<(), sqlx::Error> {
        // a statement outside a transaction block has its locks sampled from a second
        // connection while it runs, and compared with the state before it
        let before = if st.in_transaction {
            None
        } else {
            let before = self.observe(conn).await?;
            self.units += 1;
            Some(before)
        };
        let (start, wall) = (self.clock.now(), Instant::now());
        let at = self.push(st.sql, st.offset, st.in_transaction, wall);
        self.current = Some((at, start, before));
        Ok(())
    }

    async fn after(
        &mut self,
        conn: &mut PgConnection,
        _: &Statement<'_>,
        failed: Option<&StepError>,
    ) -> Result<(), sqlx::Error> {
        let Some((at, start, before)) = self.current.take() else {
            return Ok(());
        };
        let end = Instant::now();
        self.statements[at].duration_ms = ms(self.clock.now().saturating_sub(start));
        let wall = self.timings[at].start;
        self.timings[at].end = Some(end);
        let queue = self
            .sampler
            .as_ref()
            .map(|s| s.queue_between(wall, end))
            .unwrap_or_default();
        let waited = lock_wait(&queue, wall, end);
        self.statements[at].lock_wait_ms = ms(waited);
        self.statements[at].traffic.queue_max = u64::from(deepest(&queue));
        if let Some(before) = &before {
            self.timings[at].released = Some(end);
            self.sampled_locks(at, end);
            if failed.is_none() {
                let now = self.observe(conn).await?;
                let c = changes(&self.existing, before, &now, false);
                let s = &mut self.statements[at];
                s.rewrite = !c.rewrites.is_empty();
                s.rewrites = c.rewrites;
                s.index_builds = c
                    .index_builds
                    .into_iter()
                    .map(|b| crate::report::locks::IndexBuild {
                        concurrent: true,
                        ..b
                    })
                    .collect();
                s.validations = c.validations;
                self.prev = now;
            }
        } else if failed.is_none() {
            // a lock is held from when the statement got it, not from when it asked for it
            self.locks_taken(conn, at, start + waited).await?;
        }
        if let Some(e) = failed {
            self.statements[at].error = Some(e.to_string());
        }
        Ok(())
    }

    /// The transaction ended; its locks are released, which fixes how long each was held.
    fn ended(&mut self) {
        let Some(unit) = self.unit.take() else { return };
        let (end, wall) = (self.clock.now(), Instant::now());
        for (oid, mode, at, since) in unit.taken {
            let name = self
                .existing
                .get(oid)
                .map(|r| r.display_name())
                .unwrap_or_default();
            if let Some(lock) = self.statements[at]
                .locks
                .iter_mut()
                .find(|l| l.relation == name && l.mode == mode)
            {
                lock.held_ms = ms(end.saturating_sub(since));
            }
        }
        for (s, timing) in self.statements.iter().zip(&mut self.timings) {
            if s.transaction == unit.number {
                timing.released = Some(wall);
            }
        }
    }
}

impl Tracer<'_> {
    /// The locks, rewrites, index builds and validations seen; the time it takes is not
    /// the migration's.
    async fn observe(&mut self, conn: &mut PgConnection) -> Result<State, sqlx::Error> {
        let started = Instant::now();
        let state = State::read(conn).await?;
        self.clock.paused += started.elapsed();
        Ok(state)
    }

    fn push(&mut self, sql: &str, offset: usize, in_transaction: bool, start: Instant) -> usize {
        let at = self.statements.len();
        self.statements.push(StatementTrace {
            statement: at + 1,
            line: self.script.line_of(offset),
            sql: sql.to_owned(),
            transaction: self.unit.as_ref().map_or(self.units, |u| u.number),
            in_transaction,
            start_ms: ms(start.saturating_duration_since(self.clock.start)),
            lock_timeout: self.prev.lock_timeout.clone(),
            ..StatementTrace::default()
        });
        self.timings.push(Timing {
            start,
            end: None,
            released: None,
            took: Vec::new(),
        });
        at
    }

    fn lock_taken(&self, oid: i64, mode: &str) -> LockTaken {
        let rel = self.existing.get(oid);
        LockTaken {
            relation: rel.map(|r| r.display_name()).unwrap_or_default(),
            kind: rel.map_or("relation", |r| r.kind_name()).to_string(),
            mode: mode.to_owned(),
            held_ms: 0,
        }
    }

    /// Statement `at`, inside a transaction, completed: the locks it took first (`acquired`
    /// on the migration's clock) are read on its own connection.
    async fn locks_taken(
        &mut self,
        conn: &mut PgConnection,
        at: usize,
        acquired: Duration,
    ) -> Result<(), sqlx::Error> {
        let now = self.observe(conn).await?;
        let c = changes(&self.existing, &self.prev, &now, true);
        for (oid, mode) in c.locks {
            let Some(unit) = self.unit.as_mut() else {
                break;
            };
            if unit
                .taken
                .iter()
                .any(|(o, m, _, _)| *o == oid && *m == mode)
            {
                continue;
            }
            unit.taken.push((oid, mode.clone(), at, acquired));
            let lock = self.lock_taken(oid, &mode);
            self.statements[at].locks.push(lock);
            self.timings[at].took.push((oid, mode));
        }
        let s = &mut self.statements[at];
        s.rewrite = !c.rewrites.is_empty();
        s.rewrites = c.rewrites;
        s.index_builds = c.index_builds;
        s.validations = c.validations;
        self.prev = now;
        Ok(())
    }

    /// Statement `at`, outside a transaction block, ended at `end`: the locks the second
    /// connection saw its backend hold while it ran.
    fn sampled_locks(&mut self, at: usize, end: Instant) {
        let wall = self.timings[at].start;
        let seen = self
            .sampler
            .as_ref()
            .map(|s| s.seen_between(wall, end))
            .unwrap_or_default();
        let mut spans: BTreeMap<(i64, String), Duration> = BTreeMap::new();
        for s in seen {
            let span = spans.entry((s.oid, s.mode)).or_default();
            *span = (*span).max(s.last - s.first);
        }
        for ((oid, mode), span) in spans {
            let mut lock = self.lock_taken(oid, &mode);
            lock.held_ms = ms(span);
            self.statements[at].locks.push(lock);
            self.timings[at].took.push((oid, mode));
        }
    }
    /// Gives each probe wait to the statement whose lock made it wait (else to the statement
    /// running when it started) and each failure to the statement running when it failed,
    /// fills every statement's traffic, and returns the longest wait per table the migration
    /// locked and every wait on the migration's timeline.
    fn attribute(&mut self, waits: &[Wait]) -> (Vec<TableWait>, Vec<ProbeWait>) {
        let slack = Duration::from_millis(5);
        let mut credited: Vec<Vec<u64>> = vec![Vec::new(); self.statements.len()];
        let mut timeline = Vec::new();
        for w in waits {
            let conflicts = |mode: &str| match w.access {
                Access::Read => blocks_reads(mode),
                Access::Write => blocks_writes(mode),
            };
            let cause = self
                .timings
                .iter()
                .position(|t| {
                    t.took
                        .iter()
                        .any(|(oid, mode)| *oid == w.table && conflicts(mode))
                        && t.start <= w.end
                        && t.released.is_none_or(|r| r + slack >= w.start)
                })
                .or_else(|| self.timings.iter().rposition(|t| t.start <= w.start))
                .unwrap_or(0);
            let d = ms(w.duration());
            if let Some(s) = self.statements.get_mut(cause) {
                s.longest_wait_ms = s.longest_wait_ms.max(d);
            }
            if let Some(waited) = credited.get_mut(cause) {
                waited.push(d);
            }
            if w.failed.is_some() {
                let running = self.timings.iter().rposition(|t| t.start <= w.end);
                if let Some(s) = self.statements.get_mut(running.unwrap_or(0)) {
                    s.traffic.failed += 1;
                }
            }
            timeline.push(ProbeWait {
                table: self
                    .existing
                    .get(w.table)
                    .map(|r| r.display_name())
                    .unwrap_or_default(),
                access: match w.access {
                    Access::Read => "read",
                    Access::Write => "write",
                }
                .into(),
                start_ms: ms(w.start.saturating_duration_since(self.clock.start)),
                duration_ms: d,
                statement: cause + 1,
                failed: w.failed.clone(),
            });
        }
        for (s, mut waited) in self.statements.iter_mut().zip(credited) {
            waited.sort_unstable();
            s.traffic.waited = waited.len() as u64;
            s.traffic.wait_p50_ms = median(&waited);
            s.traffic.wait_max_ms = waited.last().copied().unwrap_or(0);
        }
        timeline.sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then(a.table.cmp(&b.table)));
        let mut tables: BTreeMap<String, TableWait> = BTreeMap::new();
        let locked = self
            .statements
            .iter()
            .flat_map(|s| &s.locks)
            .filter(|l| l.kind.ends_with("table"));
        for lock in locked {
            tables
                .entry(lock.relation.clone())
                .or_insert_with(|| TableWait {
                    table: lock.relation.clone(),
                    read_wait_ms: 0,
                    write_wait_ms: 0,
                    longest_wait_ms: 0,
                });
        }
        for w in waits {
            let Some(rel) = self.existing.get(w.table) else {
                continue;
            };
            let name = rel.display_name();
            let entry = tables.entry(name.clone()).or_insert_with(|| TableWait {
                table: name,
                read_wait_ms: 0,
                write_wait_ms: 0,
                longest_wait_ms: 0,
            });
            let d = ms(w.duration());
            match w.access {
                Access::Read => entry.read_wait_ms = entry.read_wait_ms.max(d),
                Access::Write => entry.write_wait_ms = entry.write_wait_ms.max(d),
            }
            entry.longest_wait_ms = entry.read_wait_ms.max(entry.write_wait_ms);
        }
        let mut out: Vec<TableWait> = tables.into_values().collect();
        out.sort_by(|a, b| {
            b.longest_wait_ms
                .cmp(&a.longest_wait_ms)
                .then(a.table.cmp(&b.table))
        });
        (out, timeline)
    }
}

/// The middle of sorted `values` (the lower middle one for an even count); 0 for none.
fn median(sorted: &[u64]) -> u64 {
    match sorted.len() {
        0 => 0,
        n => sorted[(n - 1) / 2],
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_of_an_even_count_is_the_lower_middle() {
        assert_eq!(median(&[]), 0);
        assert_eq!(median(&[7]), 7);
        assert_eq!(median(&[1, 5, 9]), 5);
        assert_eq!(median(&[1, 5, 9, 200]), 5);
    }
}

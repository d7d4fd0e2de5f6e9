//! The golden pass: every up applied in order to an empty scratch database, recording what
//! each version must look like. `check` compares its stairway with it, `fuzz` plans its model
//! on it, `snapshot` prints its last version, and `locks` reads from it the constraints later
//! migrations add, so that its fill writes rows the history can live with.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::backend::{ScratchDb, Server};
use crate::executor::{Direction, Session, StepError};
use crate::guard;
use crate::observe::catalog;
use crate::observe::snapshot::{self, Snapshot};
use crate::run::{lost, Event, Phase, Progress, RunError, Silent};
use crate::source::MigrationSet;

/// What the golden pass found: a clean linear apply of every up on an empty database.
pub struct Golden {
    /// How many versions were recorded (index 0 = empty), `1 +` the ups that applied.
    pub versions: usize,
    /// The tables of every version, when asked for (the fuzz model plans its writes on them).
    pub tables: Vec<Vec<catalog::Table>>,
    /// The up that did not apply on an empty database, if any (it is migration
    /// `versions - 1`).
    pub failure: Option<StepError>,
    /// What ups changed on the server outside their database (migration index, change), when
    /// migrations run as a superuser.
    pub side_effects: Vec<(usize, String)>,
}

/// Versions at which the golden pass leaves a copy of its database (`CREATE DATABASE ...
/// TEMPLATE`), and what takes each: the stairway's parts start from them instead of applying
/// every up before them again beside the golden pass.
pub struct Copies<'a> {
    pub at: BTreeSet<usize>,
    pub keep: &'a (dyn Fn(usize, ScratchDb) + Send + Sync),
}

/// Where the golden pass sends the snapshot of each version, in order: from version `from` on;
/// the versions before it reach `keep` as `None`, not taken (a check of the newest migrations
/// reads none of them, and a snapshot of a long history's schema costs milliseconds).
pub struct Snapshots<'a> {
    pub from: usize,
    pub keep: &'a mut (dyn FnMut(Option<Snapshot>) + Send),
}

/// Applies every up in order to an empty scratch database. The snapshot of each version goes
/// to `snapshots` when given, so that the caller decides what it holds on to (the whole
/// history of a long project would not fit in memory as whole snapshots); the tables of each
/// version are kept in [`Golden::tables`] when `with_tables`.
pub async fn pass(
    server: &Server,
    set: &MigrationSet,
    step_timeout: Duration,
    progress: &dyn Progress,
    with_tables: bool,
    mut snapshots: Option<Snapshots<'_>>,
    copies: Option<&Copies<'_>>,
) -> Result<Golden, RunError> {
    server.ensure_roles(&set.setup.roles).await?;
    let db = server.create().await?;
    let mut s = Session::open(&db, step_timeout).await?;
    let mut golden = Golden {
        versions: 0,
        tables: Vec::new(),
        failure: None,
        side_effects: Vec::new(),
    };
    // `[seed]` keys that name no column of the versions seen so far
    let mut unseen: Vec<String> = set.data.seed.keys().cloned().collect();
    let mut record = async |s: &mut Session, golden: &mut Golden| -> Result<(), RunError> {
        if let Some(snapshots) = snapshots.as_mut() {
            let snapshot = if golden.versions >= snapshots.from {
                Some(snapshot::take(s.conn()).await.map_err(lost)?)
            } else {
                None
            };
            (snapshots.keep)(snapshot);
        }
        if with_tables {
            golden
                .tables
                .push(catalog::tables(s.conn()).await.map_err(lost)?);
        }
        golden.versions += 1;
        if !unseen.is_empty() {
            let found: Vec<String> = sqlx::query_scalar(SEED_COLUMNS)
                .bind(&unseen)
                .fetch_all(s.conn())
                .await
                .map_err(lost)?;
            unseen.retain(|k| !found.contains(k));
        }
        Ok(())
    };
    record(&mut s, &mut golden).await?;
    for (i, m) in set.migrations.iter().enumerate() {
        // A copy at version i, asked for: the session lets the database go while it is made.
        if let Some(copies) = copies.filter(|c| c.at.contains(&i)) {
            s.close().await;
            if let Some(copy) = server.create_from(&db).await? {
                (copies.keep)(i, copy);
            }
            s = Session::open(&db, step_timeout).await?;
        }
        progress.event(Event::Migration {
            index: i,
            id: &m.id(),
            phase: Phase::GoldenApply,
        });
        let (applied, changes) =
            guard::watched(server, s.apply(&m.version, &m.up, Direction::Up)).await?;
        golden
            .side_effects
            .extend(changes.into_iter().map(|c| (i, c)));
        match applied {
            Ok(()) => record(&mut s, &mut golden).await?,
            Err(e) if e.is_environment() => return Err(e.into()),
            Err(e) => {
                golden.failure = Some(e);
                break;
            }
        }
    }
    drop(s);
    server.drop_db(&db).await?;
    if let Some(key) = unseen.first().filter(|_| golden.failure.is_none()) {
        return Err(RunError::Input(format!(
            "{}: [seed] gives values for `{key}`, which is no column of any version the \
             migrations make (name it `table.column` or `schema.table.column`)",
            set.settings.dir.join(crate::source::config::FILE).display()
        )));
    }
    Ok(golden)
}

/// Which of the `[seed]` keys bound as `$1` name a column of a table of the database.
const SEED_COLUMNS: &str = "
SELECT k FROM unnest($1::text[]) AS k
WHERE EXISTS (
    SELECT 1
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
      AND k IN (n.nspname || '.' || c.relname || '.' || a.attname,
                c.relname || '.' || a.attname))";

/// The schema after applying every up to an empty database, or the failure of the first up
/// that did not apply.
pub async fn final_snapshot(
    server: &Server,
    set: &MigrationSet,
) -> Result<Result<Snapshot, String>, RunError> {
    let mut last = None;
    // only the last version is snapshotted
    let mut keep = |s: Option<Snapshot>| {
        if s.is_some() {
            last = s;
        }
    };
    let snapshots = Snapshots {
        from: set.migrations.len(),
        keep: &mut keep,
    };
    let golden = pass(
        server,
        set,
        Duration::from_secs(600),
        &Silent,
        false,
        Some(snapshots),
        None,
    )
    .await?;
    Ok(match golden.failure {
        Some(e) => Err(format!(
            "{} did not apply: {e}",
            set.migrations[golden.versions - 1].id()
        )),
        None => Ok(last.expect("the empty version is always recorded")),
    })
}

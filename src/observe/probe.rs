//! Who is blocked: while a migration runs, a probe plays the application on every existing
//! table the migration locks, on connections of its own: a read (`SELECT 1 FROM t LIMIT 1`)
//! and a write (`DELETE FROM t WHERE false` in a transaction that is rolled back: it takes the
//! ROW EXCLUSIVE lock every write takes and changes nothing). Each runs in a loop under a
//! short `lock_timeout`, so the probe never queues for long in front of the migration, and a
//! run of timed-out attempts followed by one that gets through is one wait. An attempt that
//! fails for any other reason (the table was dropped or renamed, a statement timeout) ends the
//! wait as a failure, and that probe stops.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnection, PgDatabaseError};
use sqlx::{AssertSqlSafe, Connection};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::backend::ScratchDb;

use super::locks::Relation;

/// What a probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

/// One wait of the probe: from its first blocked attempt to the end of the attempt that got
/// through (or failed for another reason, for example because the table was dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub table: i64,
    pub access: Access,
    pub start: Instant,
    pub end: Instant,
    /// The last attempt failed for a reason other than the probe's own `lock_timeout` (its
    /// SQLSTATE is `code`): the application's query would have failed.
    pub failed: Option<String>,
}

impl Wait {
    pub fn duration(&self) -> Duration {
        self.end - self.start
    }
}

/// Each attempt waits this long for a lock before it gives up and tries again.
const ATTEMPT_LOCK_TIMEOUT: &str = "50ms";
/// Pause between attempts that got through.
const PAUSE: Duration = Duration::from_millis(3);
/// Attempts slower than this count as waits; faster ones are the query's own latency.
const NOISE: Duration = Duration::from_millis(1);
/// Tables probed per migration at most (two connections each).
pub const MAX_TABLES: usize = 24;

/// Probe connections opened before the migration starts, so that a probe gets going within a
/// sampling interval of the lock it waits for; more are opened on demand.
const POOL: usize = 6;

/// The probes of one migration.
pub struct Probes {
    stop: watch::Sender<bool>,
    manager: JoinHandle<Vec<Wait>>,
}

/// A connection ready to probe: short lock_timeout set, and the relation cache of a fresh
/// backend warmed on `warm` (a script reading no rows of each table), so that the first attempt
/// does not count catalog reads as a wait.
async fn probe_connection(db: &ScratchDb, warm: &str) -> Option<PgConnection> {
    let mut conn = db.connect().await.ok()?;
    let setup = format!(
        "SET lock_timeout = '{ATTEMPT_LOCK_TIMEOUT}'; SET statement_timeout = '60s'; \
         SET client_min_messages = warning"
    );
    sqlx::raw_sql(AssertSqlSafe(setup))
        .execute(&mut conn)
        .await
        .ok()?;
    if !warm.is_empty() {
        let _ = sqlx::raw_sql(AssertSqlSafe(warm.to_owned()))
            .execute(&mut conn)
            .await;
    }
    Some(conn)
}

fn table_name(table: &Relation) -> String {
    format!(
        "{}.{}",
        super::ident(&table.schema),
        super::ident(&table.name)
    )
}

impl Probes {
    /// Opens the pool, then starts a probe on each table announced on `touched` (oids of
    /// `tables`) until stopped.
    pub async fn start(
        db: &ScratchDb,
        tables: BTreeMap<i64, Relation>,
        mut touched: mpsc::UnboundedReceiver<i64>,
    ) -> Probes {
        let (stop, stopped) = watch::channel(false);
        let wanted = POOL.min(2 * tables.len());
        let warm: String = tables
            .values()
            .take(MAX_TABLES)
            .map(|t| format!("SELECT 1 FROM {} LIMIT 0; ", table_name(t)))
            .collect();
        let mut pool: Vec<PgConnection> = open_pool(db, wanted, &warm).await;
        let db = db.clone();
        let mut manager_stop = stopped.clone();
        let manager = tokio::spawn(async move {
            let mut tasks: Vec<JoinHandle<Vec<Wait>>> = Vec::new();
            let mut probed = 0;
            loop {
                let oid = tokio::select! {
                    oid = touched.recv() => oid,
                    _ = manager_stop.changed() => None,
                };
                let Some(oid) = oid else { break };
                let Some(table) = tables.get(&oid) else {
                    continue;
                };
                if probed == MAX_TABLES {
                    continue;
                }
                probed += 1;
                let name = table_name(table);
                for access in [Access::Read, Access::Write] {
                    let conn = pool.pop();
                    let (db, name, stopped) = (db.clone(), name.clone(), stopped.clone());
                    tasks.push(tokio::spawn(async move {
                        let conn = match conn {
                            Some(c) => Some(c),
                            None => probe_connection(&db, "").await,
                        };
                        match conn {
                            Some(conn) => probe(conn, oid, name, access, stopped).await,
                            None => Vec::new(),
                        }
                    }));
                }
            }
            for conn in pool {
                let _ = conn.close().await;
            }
            let mut waits = Vec::new();
            for task in tasks {
                if let Ok(Ok(w)) = tokio::time::timeout(Duration::from_secs(10), task).await {
                    waits.extend(w);
                }
            }
            waits
        });
        Probes { stop, manager }
    }

    /// Stops every probe once the migration is over and returns the waits seen.
    pub async fn stop(self) -> Vec<Wait> {
        let _ = self.stop.send(true);
        self.manager.await.unwrap_or_default()
    }
}

/// Opens `n` probe connections at once.
async fn open_pool(db: &ScratchDb, n: usize, warm: &str) -> Vec<PgConnection> {
    let opening: Vec<JoinHandle<Option<PgConnection>>> = (0..n)
        .map(|_| {
            let (db, warm) = (db.clone(), warm.to_owned());
            tokio::spawn(async move { probe_connection(&db, &warm).await })
        })
        .collect();
    let mut pool = Vec::new();
    for task in opening {
        if let Ok(Some(conn)) = task.await {
            pool.push(conn);
        }
    }
    pool
}

async fn attempt(conn: &mut PgConnection, sql: &str, access: Access) -> Result<(), sqlx::Error> {
    match access {
        Access::Read => sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut *conn)
            .await
            .map(|_| ()),
        Access::Write => {
            sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
            let result = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                .execute(&mut *conn)
                .await;
            sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
            result.map(|_| ())
        }
    }
}

fn is_lock_timeout(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| pg.code() == "55P03"),
        _ => false,
    }
}

/// The SQLSTATE of a failed attempt; `08006` (connection failure) when the server sent none.
fn sqlstate(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.code().map_or_else(|| "XX000".into(), |c| c.into_owned()),
        _ => "08006".into(),
    }
}

async fn probe(
    mut conn: PgConnection,
    table: i64,
    name: String,
    access: Access,
    mut stopped: watch::Receiver<bool>,
) -> Vec<Wait> {
    let mut waits = Vec::new();
    let sql = match access {
        Access::Read => format!("SELECT 1 FROM {name} LIMIT 1"),
        Access::Write => format!("DELETE FROM {name} WHERE false"),
    };
    let mut blocked_since: Option<Instant> = None;
    loop {
        if *stopped.borrow() && blocked_since.is_none() {
            break;
        }
        let start = Instant::now();
        let result = attempt(&mut conn, &sql, access).await;
        let end = Instant::now();
        match result {
            Err(e) if is_lock_timeout(&e) => {
                blocked_since.get_or_insert(start);
                if *stopped.borrow()
                    && end - blocked_since.unwrap_or(start) > Duration::from_secs(5)
                {
                    break; // something other than the migration holds the table
                }
                continue;
            }
            other => {
                let since = blocked_since.take().unwrap_or(start);
                let failed = other.err().map(|e| sqlstate(&e));
                if end - since >= NOISE || failed.is_some() {
                    waits.push(Wait {
                        table,
                        access,
                        start: since,
                        end,
                        failed: failed.clone(),
                    });
                }
                if failed.is_some() {
                    break; // the table is gone or changed shape: nothing more to measure
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PAUSE) => {}
            _ = stopped.changed() => {}
        }
    }
    let _ = conn.close().await;
    waits
}

//! The long report query beside a migration: before the migration starts, a connection of its
//! own opens a `REPEATABLE READ` transaction and counts the rows of every table that exists
//! (`SELECT count(*)`), which takes an ACCESS SHARE lock on each and holds a snapshot, as a
//! dashboard's report does. It keeps the transaction open for [`HOLD`] or until the migration
//! ends, whichever comes first, then commits. A migration's ACCESS EXCLUSIVE request queues
//! behind it, and the application's queries queue behind that request: the classic outage,
//! which the probe (`observe::probe`) measures. Bounded: a migration never waits on it longer
//! than [`HOLD`].

use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::ScratchDb;

use super::locks::Relation;

/// How long the report transaction stays open after the migration starts, at most.
pub const HOLD: Duration = Duration::from_millis(200);

/// Counting the tables may take this long before the report query is given up (the migration
/// then runs without it).
const COUNT_TIMEOUT: &str = "10s";

/// The open report transaction of one migration.
pub struct ReportQuery {
    stop: watch::Sender<bool>,
    task: JoinHandle<Option<Instant>>,
    /// When its snapshot was taken and its locks held: the moment the migration may start.
    pub ready: Instant,
    /// The tables it read, as users write them.
    pub tables: Vec<String>,
}

/// The SQL the report transaction runs once its snapshot is open: one count per table.
fn counts(tables: &[&Relation]) -> String {
    tables
        .iter()
        .map(|t| {
            format!(
                "SELECT count(*) FROM {}.{};",
                super::ident(&t.schema),
                super::ident(&t.name)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl ReportQuery {
    /// Opens the report transaction over `tables` and returns once its locks are held; `None`
    /// when there is no table to read or the transaction could not be opened (the migration is
    /// then traced without it).
    pub async fn open(db: &ScratchDb, tables: &[&Relation]) -> Option<ReportQuery> {
        if tables.is_empty() {
            return None;
        }
        let mut conn = db.connect().await.ok()?;
        let setup = format!(
            "SET statement_timeout = '{COUNT_TIMEOUT}'; SET client_min_messages = warning; \
             BEGIN ISOLATION LEVEL REPEATABLE READ; {}",
            counts(tables)
        );
        if sqlx::raw_sql(AssertSqlSafe(setup))
            .execute(&mut conn)
            .await
            .is_err()
        {
            let _ = conn.close().await;
            return None;
        }
        let ready = Instant::now();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until((ready + HOLD).into()) => {}
                _ = stopped.wait_for(|s| *s) => {}
            }
            let committed = sqlx::raw_sql("COMMIT").execute(&mut conn).await;
            let end = Instant::now();
            let _ = conn.close().await;
            committed.ok().map(|_| end)
        });
        Some(ReportQuery {
            stop,
            task,
            ready,
            tables: tables.iter().map(|t| t.display_name()).collect(),
        })
    }

    /// The migration ended: commits now if [`HOLD`] has not passed yet, and returns when the
    /// transaction ended (`None` if its COMMIT failed).
    pub async fn close(self) -> Option<Instant> {
        let _ = self.stop.send(true);
        self.task.await.ok().flatten()
    }
}

//! Applies one step to a real database: a migration script sent the way its migrator sends it
//! (transaction wrapping, chunks, autocommit blocks), migproof's own bookkeeping, and seeded
//! rows. It reports what the server said and judges nothing.

use std::time::Duration;

use sqlx::postgres::{PgConnection, PgDatabaseError, PgErrorPosition};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::backend::{describe, ScratchDb};
use crate::model::seed;
use crate::observe::catalog::Table;
use crate::observe::{data, ident, literal};
use crate::source::{Chunk, Script};

/// How long a cancelled step may take to stop before its backend is terminated.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Which way a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// Why a step did not apply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    /// The server rejected a statement: a finding.
    #[error("{location}: {message}")]
    Sql { location: String, message: String },
    /// The step ran past the step timeout and was stopped: a finding.
    #[error("{location}: still running after {}s; stopped ({activity})", after.as_secs())]
    Timeout { location: String, after: Duration, activity: String },
    /// The connection or server failed: an environment failure, not a finding.
    #[error("lost the connection to the scratch database: {0}")]
    Connection(String),
}

impl StepError {
    fn from_sqlx(e: sqlx::Error, script: &Script, chunk: &Chunk) -> StepError {
        match e {
            // The server ended the session (shut down, restarted, crashed) or the connection
            // broke: the environment failed; the migration is not to blame.
            sqlx::Error::Database(db) if db.code().is_some_and(|c| ends_session(&c)) => {
                let e = sqlx::Error::Database(db);
                StepError::Connection(format!("the server ended the session: {}", describe(&e)))
            }
            sqlx::Error::Database(db) => {
                let pg = db.try_downcast_ref::<PgDatabaseError>();
                let mut line = None;
                let mut message = db.message().to_string();
                if let Some(pg) = pg {
                    if let Some(PgErrorPosition::Original(pos)) = pg.position() {
                        let byte = chunk
                            .sql
                            .char_indices()
                            .nth(pos.saturating_sub(1))
                            .map(|(b, _)| b)
                            .unwrap_or(0);
                        line = Some(script.line_of(chunk.offset + byte));
                    }
                    message = format!("ERROR {}: {}", pg.code(), pg.message());
                    if let Some(detail) = pg.detail() {
                        message.push_str(&format!("\nDETAIL: {detail}"));
                    }
                    if let Some(hint) = pg.hint() {
                        message.push_str(&format!("\nHINT: {hint}"));
                    }
                    if let Some(context) = pg.r#where() {
                        message.push_str(&format!("\nCONTEXT: {context}"));
                    }
                }
                let line = line.unwrap_or_else(|| script.line_of(chunk.offset));
                StepError::Sql { location: format!("{}:{line}", script.path.display()), message }
            }
            other => StepError::Connection(describe(&other)),
        }
    }

    pub fn is_environment(&self) -> bool {
        matches!(self, StepError::Connection(_))
    }
}

/// SQLSTATEs with which the server ends a session rather than rejects a statement: class 08
/// (connection exception) and admin_shutdown, crash_shutdown, cannot_connect_now.
fn ends_session(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// A connection to one scratch database on which steps are applied.
pub struct Session {
    db: ScratchDb,
    conn: PgConnection,
    pid: i32,
    step_timeout: Duration,
}

/// What the seeder wrote.
#[derive(Debug, Default, Clone)]
pub struct Seeded {
    pub inserted: usize,
    pub skipped: usize,
    /// The ledger: every row written, per table, as the server stored it (read back with
    /// `RETURNING`, so defaults, identity values and trigger effects are included), as text
    /// in the table's column order.
    pub rows: Vec<(String, Vec<Option<String>>)>,
}

impl Session {
    pub async fn open(db: &ScratchDb, step_timeout: Duration) -> Result<Session, StepError> {
        let conn_err = |e: sqlx::Error| StepError::Connection(describe(&e));
        let mut conn = db.connect().await.map_err(conn_err)?;
        sqlx::raw_sql("SET TimeZone = 'UTC'; SET client_min_messages = warning;")
            .execute(&mut conn)
            .await
            .map_err(conn_err)?;
        let pid: i32 =
            sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut conn).await.map_err(conn_err)?;
        data::ensure_schema(&mut conn).await.map_err(conn_err)?;
        Ok(Session { db: db.clone(), conn, pid, step_timeout })
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    pub fn db(&self) -> &ScratchDb {
        &self.db
    }

    /// Applies a migration script in `direction` and records it in `_migproof.applied`, in the
    /// same transaction as the script's last block when that block is transactional.
    pub async fn apply(
        &mut self,
        version: &str,
        script: &Script,
        direction: Direction,
    ) -> Result<(), StepError> {
        let timeout = self.step_timeout;
        let mut current: (usize, usize) = (0, 0);
        let (activity, stopped) = {
            let Session { db, conn, pid, .. } = &mut *self;
            let run = apply_blocks(conn, version, script, direction, &mut current);
            tokio::pin!(run);
            match tokio::time::timeout(timeout, &mut run).await {
                Ok(r) => return r,
                Err(_) => {
                    // Cancel rather than kill: the statement fails with the server's own
                    // account of where it was (the CONTEXT of a function or DO block), and the
                    // session stays usable.
                    let activity = describe_and_cancel(db, *pid).await;
                    let stopped = tokio::time::timeout(CANCEL_GRACE, &mut run).await;
                    (activity, stopped)
                }
            }
        };
        let mut activity = activity;
        match stopped {
            Ok(Err(StepError::Sql { message, .. })) => {
                if let Some((_, context)) = message.split_once("\nCONTEXT: ") {
                    let context = context.replace('\n', "; ");
                    activity.push_str(&format!("; the server was at: {context}"));
                }
            }
            // Finished as it was cancelled: the caller rebuilds after the finding anyway.
            Ok(Ok(())) => {}
            // Ignored the cancel, or the connection broke: end the backend and reconnect.
            Ok(Err(_)) | Err(_) => drop(self.stop_runaway().await),
        }
        let chunk = script.blocks.get(current.0).and_then(|b| b.chunks.get(current.1));
        let line = chunk.map(|c| script.line_of(c.offset)).unwrap_or(1);
        Err(StepError::Timeout {
            location: format!("{}:{line}", script.path.display()),
            after: timeout,
            activity,
        })
    }

    /// Ends the backend of a step that ran too long and reconnects; says what it was doing.
    async fn stop_runaway(&mut self) -> String {
        let mut activity = String::from("unknown activity");
        if let Ok(mut other) = self.db.connect().await {
            let row: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE pid = $1",
            )
            .bind(self.pid)
            .fetch_optional(&mut other)
            .await
            .ok()
            .flatten();
            if let Some((state, wait_type, wait)) = row {
                activity = match (wait_type.as_deref(), wait) {
                    (Some("Lock"), Some(w)) => format!("waiting for a {w} lock"),
                    (Some(t), Some(w)) => format!("{} waiting on {t}/{w}", state.unwrap_or_default()),
                    _ => format!("{}, not waiting: busy", state.unwrap_or_default()),
                };
            }
            let _ = sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(self.pid)
                .execute(&mut other)
                .await;
            let _ = other.close().await;
        }
        if let Ok(fresh) = Session::open(&self.db, self.step_timeout).await {
            *self = fresh;
        }
        activity
    }

    /// Versions recorded as applied.
    pub async fn applied(&mut self) -> Result<Vec<String>, StepError> {
        sqlx::query_scalar("SELECT version FROM _migproof.applied")
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| StepError::Connection(describe(&e)))
    }

    /// Writes the seeder's rows into every table, parents before children; rows a
    /// constraint rejects are skipped.
    pub async fn seed(&mut self, tables: &[Table], round: usize) -> Result<Seeded, sqlx::Error> {
        let mut seeded = Seeded::default();
        for table in topological(tables) {
            let mut targets: seed::Targets = Vec::new();
            for fk in &table.foreign_keys {
                targets.push(self.fk_targets(fk).await?);
            }
            let self_refs: Vec<usize> = table
                .foreign_keys
                .iter()
                .enumerate()
                .filter(|(_, fk)| fk.ref_table == table.sql_name())
                .map(|(i, _)| i)
                .collect();
            for i in 0..seed::ROWS {
                let row = seed::row(table, i, round, &targets);
                let stored = match self.insert(table, &row).await {
                    Ok(stored) => stored,
                    Err(sqlx::Error::Database(_)) => {
                        seeded.skipped += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                // A self-reference may point at the row just written.
                for &f in &self_refs {
                    let fk = &table.foreign_keys[f];
                    let tuple: Vec<Option<String>> = fk
                        .ref_columns
                        .iter()
                        .map(|c| {
                            let at = table.columns.iter().position(|col| col.name == *c);
                            at.and_then(|p| stored.get(p).cloned().flatten())
                        })
                        .collect();
                    if tuple.iter().all(Option::is_some) {
                        targets[f].push(tuple);
                    }
                }
                seeded.inserted += 1;
                seeded.rows.push((table.display_name(), stored));
            }
        }
        Ok(seeded)
    }

    async fn fk_targets(
        &mut self,
        fk: &crate::observe::catalog::ForeignKey,
    ) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        let cols: Vec<String> = fk.ref_columns.iter().map(|c| format!("({})::text", ident(c))).collect();
        let not_null: Vec<String> =
            fk.ref_columns.iter().map(|c| format!("{} IS NOT NULL", ident(c))).collect();
        let sql = format!(
            "SELECT ARRAY[{}]::text[] FROM {} WHERE {} LIMIT {}",
            cols.join(", "),
            fk.ref_table,
            not_null.join(" AND "),
            seed::ROWS
        );
        sqlx::query_scalar(AssertSqlSafe(sql)).persistent(false).fetch_all(&mut self.conn).await
    }

    /// Inserts one row and reads it back as stored.
    async fn insert(
        &mut self,
        table: &Table,
        row: &seed::Row,
    ) -> Result<Vec<Option<String>>, sqlx::Error> {
        let returning: Vec<String> =
            table.columns.iter().map(|c| format!("({})::text", ident(&c.name))).collect();
        let returning = format!(" RETURNING ARRAY[{}]::text[]", returning.join(", "));
        let sql = if row.is_empty() {
            format!("INSERT INTO {} DEFAULT VALUES", table.sql_name())
        } else {
            let mut cols = Vec::new();
            let mut values = Vec::new();
            for (name, value) in row {
                let Some(col) = table.column(name) else { continue };
                cols.push(ident(name));
                values.push(match value {
                    Some(v) => format!("{}::{}", literal(v), col.type_sql),
                    None => "NULL".to_string(),
                });
            }
            format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.sql_name(),
                cols.join(", "),
                values.join(", ")
            )
        };
        let row = sqlx::raw_sql(AssertSqlSafe(sql + &returning)).fetch_one(&mut self.conn).await?;
        row.try_get(0)
    }
}

/// Says what backend `pid` is doing (waiting for a lock, sleeping, busy) and cancels its
/// statement, from a second connection.
async fn describe_and_cancel(db: &ScratchDb, pid: i32) -> String {
    let mut activity = String::from("unknown activity");
    let Ok(mut other) = db.connect().await else { return activity };
    let row: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE pid = $1",
    )
    .bind(pid)
    .fetch_optional(&mut other)
    .await
    .ok()
    .flatten();
    if let Some((state, wait_type, wait)) = row {
        activity = match (wait_type.as_deref(), wait) {
            (Some("Lock"), Some(w)) => format!("waiting for a {w} lock"),
            (Some(t), Some(w)) => format!("{} waiting on {t}/{w}", state.unwrap_or_default()),
            _ => format!("{}, not waiting: busy", state.unwrap_or_default()),
        };
    }
    let _ = sqlx::query("SELECT pg_cancel_backend($1)").bind(pid).execute(&mut other).await;
    let _ = other.close().await;
    activity
}

async fn apply_blocks(
    conn: &mut PgConnection,
    version: &str,
    script: &Script,
    direction: Direction,
    current: &mut (usize, usize),
) -> Result<(), StepError> {
    let bookkeeping = match direction {
        Direction::Up => format!(
            "INSERT INTO _migproof.applied (version) VALUES ({}) ON CONFLICT DO NOTHING",
            literal(version)
        ),
        Direction::Down => {
            format!("DELETE FROM _migproof.applied WHERE version = {}", literal(version))
        }
    };
    let conn_err = |e: sqlx::Error| StepError::Connection(describe(&e));
    let last = script.blocks.len().saturating_sub(1);
    let mut recorded = false;
    for (b, block) in script.blocks.iter().enumerate() {
        if block.transactional {
            sqlx::raw_sql("BEGIN").execute(&mut *conn).await.map_err(conn_err)?;
        }
        for (c, chunk) in block.chunks.iter().enumerate() {
            *current = (b, c);
            if chunk.sql.trim().is_empty() {
                continue;
            }
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(chunk.sql.as_str())).execute(&mut *conn).await {
                if block.transactional {
                    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                }
                return Err(StepError::from_sqlx(e, script, chunk));
            }
        }
        if block.transactional {
            if b == last {
                sqlx::raw_sql(AssertSqlSafe(bookkeeping.clone()))
                    .execute(&mut *conn)
                    .await
                    .map_err(conn_err)?;
                recorded = true;
            }
            if let Err(e) = sqlx::raw_sql("COMMIT").execute(&mut *conn).await {
                // A deferred constraint can fail at commit.
                let chunk = block.chunks.last().cloned().unwrap_or(Chunk { offset: 0, sql: String::new() });
                return Err(StepError::from_sqlx(e, script, &chunk));
            }
        }
    }
    if !recorded {
        sqlx::raw_sql(AssertSqlSafe(bookkeeping)).execute(&mut *conn).await.map_err(conn_err)?;
    }
    Ok(())
}

/// Tables ordered so that referenced tables come before the tables referencing them
/// (self-references and cycles are broken arbitrarily).
fn topological(tables: &[Table]) -> Vec<&Table> {
    let mut done: Vec<String> = Vec::new();
    let mut out: Vec<&Table> = Vec::new();
    let mut remaining: Vec<&Table> = tables.iter().collect();
    while !remaining.is_empty() {
        let ready = remaining.iter().position(|t| {
            t.foreign_keys.iter().all(|fk| {
                fk.ref_table == t.sql_name()
                    || done.contains(&fk.ref_table)
                    || !tables.iter().any(|o| o.sql_name() == fk.ref_table)
            })
        });
        let t = remaining.remove(ready.unwrap_or(0));
        done.push(t.sql_name());
        out.push(t);
    }
    out
}

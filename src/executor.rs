//! Applies one step to a real database: a migration script sent the way its migrator sends it
//! (transaction wrapping, chunks, autocommit blocks), migproof's own bookkeeping, and seeded
//! rows. It reports what the server said and judges nothing.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use futures_util::TryStreamExt;

use sqlx::postgres::{PgConnection, PgDatabaseError, PgErrorPosition};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::backend::{answered, describe, ScratchDb};
use crate::model::machine::Fault;
use crate::model::seed;
use crate::observe::catalog::{self, Table};
use crate::observe::data::{self, Refusal, Rejection};
use crate::observe::{ident, literal, sequences};
use crate::report::{Kind, Place};
use crate::source::config::DataRules;
use crate::source::{newer, split, Chunk, Script};

/// How long a cancelled step may take to stop before its backend is terminated.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// How long a timed-out migrator's process group has between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How many times a step timeout may find the server waiting on migproof and start over.
const RESTARTS: usize = 3;

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
    Sql { location: Place, message: String },
    /// The step ran past the step timeout and was stopped: a finding.
    #[error("{location}: still running after {}s; stopped ({activity})", after.as_secs())]
    Timeout {
        location: Place,
        after: Duration,
        activity: String,
    },
    /// The connection or server failed: an environment failure, not a finding.
    #[error("lost the connection to the scratch database: {0}")]
    Connection(String),
    /// The server stopped answering (frozen, its host suspended, packets dropped): an
    /// environment failure, and no new session is worth waiting for.
    #[error("the server stopped answering: {0}")]
    NoAnswer(String),
}

impl StepError {
    /// `completed`: how many statements of `chunk` the server had completed before it failed,
    /// which places an error the server gives no position for (a constraint violation, a
    /// failed cast) at the statement that failed, when a whole file went in one go.
    fn from_sqlx(
        e: sqlx::Error,
        script: &Script,
        chunk: &Chunk,
        completed: Option<usize>,
    ) -> StepError {
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
                    if pg.code() == "42704" && pg.message().starts_with("role ") {
                        message.push_str(
                            "\nmigproof: roles live outside the database; list the role under \
                             [setup] roles in migproof.toml to have it created in migproof's cluster",
                        );
                    }
                }
                let failing = completed
                    .and_then(|n| {
                        crate::source::split::split(&chunk.sql)
                            .ok()?
                            .get(n)
                            .cloned()
                    })
                    .map(|statement| statement.offset)
                    .unwrap_or(0);
                let line = line.unwrap_or_else(|| script.line_of(chunk.offset + failing));
                let mut location = Place::line(&script.path, line);
                if let Some(pg) = pg {
                    location =
                        location
                            .sqlstate(pg.code())
                            .object(pg.schema(), pg.table(), pg.column());
                }
                StepError::Sql { location, message }
            }
            other => StepError::Connection(describe(&other)),
        }
    }

    /// The file, line and SQLSTATE of a step that did not apply.
    pub fn place(&self) -> Option<&Place> {
        match self {
            StepError::Sql { location, .. } | StepError::Timeout { location, .. } => Some(location),
            StepError::Connection(_) | StepError::NoAnswer(_) => None,
        }
    }

    pub fn is_environment(&self) -> bool {
        matches!(self, StepError::Connection(_) | StepError::NoAnswer(_))
    }

    /// The finding a step that did not apply is (an error that is not the environment's):
    /// `timeout` past the step timeout, else `apply_failed`. `check`, `fuzz` and `locks`
    /// report the same failure the same way.
    pub fn kind(&self) -> Kind {
        match self {
            StepError::Timeout { .. } => Kind::Timeout,
            _ => Kind::ApplyFailed,
        }
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
    /// The server's major version.
    major: u32,
}

/// A row as the server stored it: its values as text, in the table's column order.
type Stored = Vec<Option<String>>;

/// What the seeder wrote.
#[derive(Debug, Default, Clone)]
pub struct Seeded {
    pub inserted: usize,
    pub skipped: usize,
    /// The ledger: every row written, per table, as the server stored it (read back with
    /// `RETURNING`, so defaults, identity values and trigger effects are included), as text
    /// in the table's column order.
    pub rows: Vec<(String, Vec<Option<String>>)>,
    /// Why rows were refused: one per table and SQLSTATE.
    pub rejections: Vec<Rejection>,
}

impl Seeded {
    /// Counts a row of `table` refused, keeping the first reasons per table and SQLSTATE.
    fn refused(&mut self, table: &Table, why: Refusal) {
        self.skipped += 1;
        let name = table.display_name();
        match self
            .rejections
            .iter_mut()
            .find(|r| r.table == name && r.why.code == why.code)
        {
            Some(r) => r.rows += 1,
            None => self.rejections.push(Rejection {
                table: name,
                why,
                rows: 1,
                tried: seed::ROWS,
            }),
        }
    }
}

/// An error's CONTEXT without migproof's own frames: the `_migproof.each` function
/// that ran the statement, and the statement itself.
fn own_frames(context: &str) -> String {
    let frames: Vec<&str> = context.lines().collect();
    let ours = frames
        .iter()
        .position(|f| f.contains("function _migproof."))
        .unwrap_or(frames.len());
    let mut user = &frames[..ours];
    if ours < frames.len()
        && user
            .last()
            .is_some_and(|f| f.starts_with("SQL statement \""))
    {
        user = &user[..user.len() - 1];
    }
    user.join("\n")
}

impl Session {
    pub async fn open(db: &ScratchDb, step_timeout: Duration) -> Result<Session, StepError> {
        let conn_err = |e: sqlx::Error| StepError::Connection(describe(&e));
        let mut conn = db.connect().await.map_err(conn_err)?;
        // The session's settings, migproof's schema and functions, in one round trip.
        let setup = format!(
            "{SETTINGS};\n{}\n{EACH};\n{};\n\
             SELECT pg_backend_pid(), current_setting('server_version_num')::int",
            data::SCHEMA,
            sequences::FUNCTION
        );
        let row = sqlx::raw_sql(AssertSqlSafe(setup))
            .fetch_one(&mut conn)
            .await
            .map_err(conn_err)?;
        let (pid, version): (i32, i32) = (
            row.try_get(0).map_err(conn_err)?,
            row.try_get(1).map_err(conn_err)?,
        );
        Ok(Session {
            db: db.clone(),
            conn,
            pid,
            step_timeout,
            major: (version / 10000) as u32,
        })
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Brings the session back to the state [`Session::open`] left it in, for another case on
    /// the same database, keeping what the server has cached for it (its plans, its catalog
    /// caches): what a migration may have left in the session (settings, a role, temporary
    /// objects, cursors, listens, advisory locks, sequence values) is undone as `DISCARD ALL`
    /// would, except migproof's own prepared statements. `None` when that cannot be proven:
    /// the session is gone, or holds a statement a migration prepared (the caller opens a new
    /// one).
    pub async fn cleared(mut self) -> Option<Session> {
        // Ends a transaction a failed step may have left open (a warning when none is).
        let cleared = sqlx::raw_sql("ROLLBACK")
            .execute(&mut self.conn)
            .await
            .is_ok()
            && sqlx::raw_sql(AssertSqlSafe(format!("{SESSION_RESET};\n{SETTINGS}")))
                .execute(&mut self.conn)
                .await
                .is_ok();
        if cleared {
            return Some(self);
        }
        self.close().await;
        None
    }

    /// Ends the session, waiting until the server has let it go (a database copied as a
    /// template must have no session).
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }

    /// Runs `units` of a script (see [`commit_units`]) as the migrator would up to a crash
    /// after the last of them: each commits, and nothing is recorded as applied.
    pub async fn apply_units(&mut self, units: &[Unit<'_>]) -> Result<(), sqlx::Error> {
        for unit in units {
            run_unit(&mut self.conn, unit).await?;
        }
        Ok(())
    }

    pub fn db(&self) -> &ScratchDb {
        &self.db
    }

    /// Applies a migration script in `direction` and records it in `_migproof.applied`, in the
    /// same transaction as the script's last block when that block is transactional.
    ///
    /// A session that ends during the step while the server still answers was ended by the
    /// migration (`pg_terminate_backend(pg_backend_pid())`, a crash it caused): a finding, on a
    /// fresh session. Only a server that no longer answers is the environment's failure.
    pub async fn apply(
        &mut self,
        version: &str,
        script: &Script,
        direction: Direction,
    ) -> Result<(), StepError> {
        match self.apply_script(version, script, direction).await {
            // Both look alike to the client (57P01): a session ended from outside (an
            // administrator, a failover proxy) is the environment's failure; one whose own
            // script terminates backends is taken to have ended its own.
            Err(StepError::Connection(why))
                if script.command.is_none() && terminates_backends(script) =>
            {
                self.reconnect().await?;
                Err(StepError::Sql {
                    location: Place::file(&script.path),
                    message: format!(
                        "the migration's session ended while it ran ({why}), and the server \
                         still answers: the script calls pg_terminate_backend, which ended its \
                         own session (pg_backend_pid() among the backends it terminates)"
                    ),
                })
            }
            // insufficient_privilege, to a role that owns the database and nothing else.
            Err(StepError::Sql {
                location,
                mut message,
            }) if !self.db.superuser && location.sqlstate.as_deref() == Some("42501") => {
                message.push_str(
                    "\nmigproof: migrations run as a role that owns the scratch database and \
                     nothing else (README, Security); if this project's deploy role is a \
                     superuser, pass --migration-role superuser or set migration_role = \
                     \"superuser\" under [setup] in migproof.toml",
                );
                Err(StepError::Sql { location, message })
            }
            // A syntax error, or a function the server lacks, in SQL a newer major accepts.
            Err(StepError::Sql {
                location,
                mut message,
            }) if script.command.is_none() => {
                let statement = location.line.and_then(|line| statement_at(script, line));
                let code = location.sqlstate.as_deref().unwrap_or_default();
                if let Some(hint) = statement.and_then(|st| newer::hint(&st, code, self.major)) {
                    message.push('\n');
                    message.push_str(&hint);
                }
                Err(StepError::Sql { location, message })
            }
            other => other,
        }
    }

    async fn apply_script(
        &mut self,
        version: &str,
        script: &Script,
        direction: Direction,
    ) -> Result<(), StepError> {
        if let Some(command) = &script.command {
            return self.run_command(version, script, command, direction).await;
        }
        let timeout = self.step_timeout;
        let mut current: (usize, usize) = (0, 0);
        let (activity, stopped) = {
            let Session { db, conn, pid, .. } = &mut *self;
            let run = apply_blocks(conn, version, script, direction, &mut current);
            tokio::pin!(run);
            let mut restarts = 0;
            loop {
                if let Some(r) = for_step_time(timeout, run.as_mut()).await {
                    return r;
                }
                // Cancel rather than kill: the statement fails with the server's own account
                // of where it was (the CONTEXT of a function or DO block), and the session
                // stays usable.
                match describe_and_cancel(db, *pid).await {
                    // The server was waiting for migproof, so the time went by on this side
                    // (a pause the clock did not see): not the step's fault; start over.
                    AtTimeout::WaitingOnClient if restarts < RESTARTS => restarts += 1,
                    AtTimeout::NoAnswer(why) => {
                        return Err(StepError::NoAnswer(format!(
                            "a step ran past the step timeout, and a new connection to look \
                             at it failed: {why}"
                        )))
                    }
                    AtTimeout::WaitingOnClient => {
                        let stopped = for_step_time(CANCEL_GRACE, run.as_mut()).await;
                        break ("idle, waiting on migproof".to_owned(), stopped);
                    }
                    AtTimeout::Cancelled(activity) => {
                        let stopped = for_step_time(CANCEL_GRACE, run.as_mut()).await;
                        break (activity, stopped);
                    }
                }
            }
        };
        let mut activity = activity;
        match stopped {
            Some(Err(StepError::Sql { message, .. })) => {
                if let Some((_, context)) = message.split_once("\nCONTEXT: ") {
                    let context = context.replace('\n', "; ");
                    activity.push_str(&format!("; the server was at: {context}"));
                }
            }
            // Finished as it was cancelled: the caller rebuilds after the finding anyway.
            Some(Ok(())) => {}
            // Ignored the cancel, or the connection broke: end the backend and reconnect.
            Some(Err(_)) | None => {
                self.stop_runaway().await?;
            }
        }
        let chunk = script
            .blocks
            .get(current.0)
            .and_then(|b| b.chunks.get(current.1));
        let line = chunk.map(|c| script.line_of(c.offset)).unwrap_or(1);
        Err(StepError::Timeout {
            location: Place::line(&script.path, line),
            after: timeout,
            activity,
        })
    }

    /// Applies a script with `fault` injected. `Ok(None)` when it applied (the fault did not
    /// fire, for example because nothing had to wait), `Ok(Some(what))` when the fault
    /// interrupted it; `Err` when it failed for another reason.
    pub async fn apply_with_fault(
        &mut self,
        version: &str,
        script: &Script,
        direction: Direction,
        fault: Fault,
    ) -> Result<Option<String>, StepError> {
        if let Some(command) = &script.command {
            return self
                .run_command_with_fault(version, script, command, direction, fault)
                .await;
        }
        let conn_err = |e: sqlx::Error| StepError::Connection(e.to_string());
        if fault == Fault::KillBefore {
            let mut other = self.db.connect().await.map_err(conn_err)?;
            let _ = sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(self.pid)
                .execute(&mut other)
                .await;
            let _ = other.close().await;
            // The migrator finds its connection dead and reconnects.
            let _ = sqlx::raw_sql("SELECT 1").execute(&mut self.conn).await;
            self.reconnect().await?;
            return Ok(Some(
                "the connection was killed before the migration started".into(),
            ));
        }
        let blocker = Blocker::hold(&self.db).await.map_err(conn_err)?;
        if fault == Fault::LockTimeout {
            sqlx::raw_sql("SET lock_timeout = '200ms'")
                .execute(&mut self.conn)
                .await
                .map_err(conn_err)?;
        }
        let fired = std::sync::atomic::AtomicBool::new(false);
        let watch = async {
            if fault == Fault::LockTimeout {
                return std::future::pending::<()>().await;
            }
            // Only the migration's session can wait on the blocker's locks.
            let (mut watcher, waiting) = blocker.wait_for_lock_wait(&[blocker.pid]).await;
            let stop = if fault == Fault::KillWhileWaiting {
                "SELECT pg_terminate_backend($1)"
            } else {
                "SELECT pg_cancel_backend($1)"
            };
            // Mark first: the migration may see its error before this task runs again.
            fired.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = sqlx::query(stop).bind(waiting).execute(&mut watcher).await;
            std::future::pending().await
        };
        let mut current = (0, 0);
        let timeout = self.step_timeout;
        let result = {
            let work = std::pin::pin!(apply_blocks(
                &mut self.conn,
                version,
                script,
                direction,
                &mut current
            ));
            tokio::select! {
                r = for_step_time(timeout, work) => r,
                _ = watch => unreachable!("the watcher never finishes"),
            }
        };
        blocker.release().await;
        let fired = fired.load(std::sync::atomic::Ordering::SeqCst);
        let result = match result {
            Some(r) => r,
            None => {
                let activity = self.stop_runaway().await?;
                return Err(StepError::Timeout {
                    location: Place::file(&script.path),
                    after: timeout,
                    activity,
                });
            }
        };
        match result {
            Ok(()) => {
                let _ = sqlx::raw_sql("RESET lock_timeout")
                    .execute(&mut self.conn)
                    .await;
                Ok(None)
            }
            Err(StepError::Connection(_)) if fired => {
                self.reconnect().await?;
                Ok(Some(
                    "the connection was killed while a statement waited on a lock".into(),
                ))
            }
            // lock_not_available (lock_timeout) or query_canceled: the fault, not the script.
            Err(StepError::Sql { location, message })
                if fired || matches!(location.sqlstate.as_deref(), Some("55P03" | "57014")) =>
            {
                if fault == Fault::KillWhileWaiting {
                    // The server says why it ended the session (57P01), then closes it.
                    self.reconnect().await?;
                }
                let _ = sqlx::raw_sql("RESET lock_timeout")
                    .execute(&mut self.conn)
                    .await;
                Ok(Some(format!(
                    "{location}: {}",
                    message.lines().next().unwrap_or_default()
                )))
            }
            Err(e) => {
                if e.is_environment() {
                    return Err(e);
                }
                let _ = sqlx::raw_sql("RESET lock_timeout")
                    .execute(&mut self.conn)
                    .await;
                Err(e)
            }
        }
    }

    /// Runs an external migrator (Alembic, a configured command) against this database, then
    /// records the step. A non-zero exit is an `Sql` error carrying its stderr.
    async fn run_command(
        &mut self,
        version: &str,
        script: &Script,
        command: &crate::source::Command,
        direction: Direction,
    ) -> Result<(), StepError> {
        let migrator = Migrator::prepare(&self.db, script, command, None)?;
        let output = migrator.run(self.step_timeout).await?;
        migrator.check(&output)?;
        self.record(version, direction).await
    }

    /// The fault of an external migrator: its process (group) is killed before it starts, or
    /// once one of its statements waits behind a concurrent transaction holding a snapshot and
    /// a ROW EXCLUSIVE lock on every table (its server sessions are ended with it, as a crashed
    /// deploy's would be); with `LockTimeout` it runs with `lock_timeout` set through
    /// PGOPTIONS and fails by itself.
    async fn run_command_with_fault(
        &mut self,
        version: &str,
        script: &Script,
        command: &crate::source::Command,
        direction: Direction,
        fault: Fault,
    ) -> Result<Option<String>, StepError> {
        if fault == Fault::KillBefore {
            return Ok(Some("the migrator was killed before it started".into()));
        }
        let lock_timeout = (fault == Fault::LockTimeout).then_some("-c lock_timeout=200ms");
        let migrator = Migrator::prepare(&self.db, script, command, lock_timeout)?;
        let conn_err = |e: sqlx::Error| StepError::Connection(e.to_string());
        let mut blocker = Blocker::hold(&self.db).await.map_err(conn_err)?;
        let mut child = migrator.spawn()?;
        let group = child.id().map(|id| nix::unistd::Pid::from_raw(id as i32));
        let ours = [self.pid, blocker.pid];
        let watch = async {
            if fault == Fault::LockTimeout {
                return std::future::pending::<()>().await;
            }
            drop(blocker.wait_for_lock_wait(&ours).await);
        };
        let waited = {
            let exit = std::pin::pin!(child.wait());
            tokio::select! {
                r = for_step_time(self.step_timeout, exit) => Some(r.ok_or(())),
                () = watch => None,
            }
        };
        let output = match waited {
            None => {
                if let Some(group) = group {
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                }
                let _ = child.wait().await;
                blocker.end_sessions_except(&ours).await;
                blocker.release().await;
                return Ok(Some(
                    "the migrator was killed while its statement waited on a lock".into(),
                ));
            }
            Some(Err(_)) => {
                if let Some(group) = group {
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                }
                let _ = child.wait().await;
                blocker.end_sessions_except(&ours).await;
                blocker.release().await;
                return Err(migrator.timed_out(self.step_timeout));
            }
            Some(Ok(_)) => child.wait_with_output().await,
        };
        blocker.release().await;
        let output = output.map_err(|e| migrator.failed_to_run(e))?;
        match migrator.check(&output) {
            Err(StepError::Sql { message, .. })
                if lock_timeout.is_some() && message.contains("lock timeout") =>
            {
                Ok(Some(
                    "the migrator's statement hit lock_timeout behind a competing lock".into(),
                ))
            }
            Err(e) => Err(e),
            Ok(()) => self.record(version, direction).await.map(|()| None),
        }
    }

    /// Records in migproof's bookkeeping that an external migrator applied `version`.
    async fn record(&mut self, version: &str, direction: Direction) -> Result<(), StepError> {
        sqlx::raw_sql(AssertSqlSafe(bookkeeping(version, direction)))
            .execute(&mut self.conn)
            .await
            .map_err(|e| StepError::Connection(e.to_string()))?;
        Ok(())
    }

    /// Opens a fresh connection to the same database.
    /// Runs a project's own verify script (Sqitch's `verify/`) inside a transaction that is
    /// then rolled back, so that it leaves nothing behind: the script's own transaction
    /// control (`BEGIN`, `ROLLBACK`, ...) is left out. An error is the verify's failure.
    pub async fn verify(&mut self, script: &Script) -> Result<(), StepError> {
        let conn_err = |e: sqlx::Error| StepError::Connection(describe(&e));
        sqlx::raw_sql("BEGIN")
            .execute(&mut self.conn)
            .await
            .map_err(conn_err)?;
        let run = async {
            let chunks = script.blocks.iter().flat_map(|b| &b.chunks);
            for chunk in chunks.filter(|c| !is_transaction_control(&c.sql)) {
                let sql = AssertSqlSafe(chunk.sql.as_str());
                if let Err(e) = sqlx::raw_sql(sql).execute(&mut self.conn).await {
                    return Err(StepError::from_sqlx(e, script, chunk, None));
                }
            }
            Ok(())
        };
        let outcome = match tokio::time::timeout(self.step_timeout, run).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.reconnect().await?;
                return Err(StepError::Timeout {
                    location: Place::file(&script.path),
                    after: self.step_timeout,
                    activity: "the verify script".to_owned(),
                });
            }
        };
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut self.conn)
            .await
            .map_err(conn_err)?;
        outcome
    }

    /// Applies `script` statement by statement, as its layout runs it: inside the migration's
    /// transaction where it has one, a statement PostgreSQL refuses in a transaction block on
    /// its own, any other statement in autocommit as a transaction of its own, and several
    /// statements sent as one message in autocommit as the one implicit transaction the server
    /// makes of them. `observer` sees every transaction begin and end and every statement
    /// before and after it runs (the lock trace is one). Errors are placed and worded as
    /// [`Session::apply`] places them; nothing is recorded as applied.
    pub async fn apply_observed<O: Observer>(
        &mut self,
        script: &Script,
        observer: &mut O,
    ) -> Result<(), StepError> {
        if script.command.is_some() {
            return Err(StepError::Sql {
                location: Place::file(&script.path),
                message: "a script run by an external migrator cannot be applied statement by \
                          statement"
                    .to_owned(),
            });
        }
        let mut open = false;
        // the offset of the last statement run, where a failing COMMIT is placed
        let mut last = 0;
        for block in &script.blocks {
            if block.transactional {
                self.begin_observed(observer, &mut open).await?;
            }
            for chunk in &block.chunks {
                let statements = split::split(&chunk.sql).map_err(|e| StepError::Sql {
                    location: Place::line(&script.path, script.line_of(chunk.offset)),
                    message: e.to_string(),
                })?;
                let implicit = !open && statements.len() > 1;
                if implicit {
                    self.begin_observed(observer, &mut open).await?;
                }
                for st in &statements {
                    let alone = !open && !split::is_non_transactional(&st.sql);
                    if alone {
                        self.begin_observed(observer, &mut open).await?;
                    }
                    let statement = Statement {
                        sql: &st.sql,
                        offset: chunk.offset + st.offset,
                        in_transaction: open,
                    };
                    let conn_err = |e: sqlx::Error| StepError::Connection(describe(&e));
                    observer
                        .before(&mut self.conn, &statement)
                        .await
                        .map_err(conn_err)?;
                    let result = self.run_statement(script, &statement).await;
                    observer
                        .after(&mut self.conn, &statement, result.as_ref().err())
                        .await
                        .map_err(conn_err)?;
                    if let Err(e) = result {
                        if open {
                            // a stopped statement's session was ended and replaced
                            if !matches!(e, StepError::Timeout { .. }) {
                                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
                            }
                            observer.ended();
                        }
                        return Err(e);
                    }
                    last = statement.offset;
                    if alone {
                        self.commit_observed(script, last, observer, &mut open)
                            .await?;
                    }
                }
                if implicit {
                    self.commit_observed(script, last, observer, &mut open)
                        .await?;
                }
            }
            if block.transactional {
                self.commit_observed(script, last, observer, &mut open)
                    .await?;
            }
        }
        Ok(())
    }

    async fn begin_observed<O: Observer>(
        &mut self,
        observer: &mut O,
        open: &mut bool,
    ) -> Result<(), StepError> {
        let conn_err = |e: sqlx::Error| StepError::Connection(describe(&e));
        sqlx::raw_sql("BEGIN")
            .execute(&mut self.conn)
            .await
            .map_err(conn_err)?;
        *open = true;
        observer.began(&mut self.conn).await.map_err(conn_err)
    }

    /// Commits; a deferred constraint that fails here is placed at the transaction's last
    /// statement.
    async fn commit_observed<O: Observer>(
        &mut self,
        script: &Script,
        last: usize,
        observer: &mut O,
        open: &mut bool,
    ) -> Result<(), StepError> {
        let result = sqlx::raw_sql("COMMIT").execute(&mut self.conn).await;
        *open = false;
        observer.ended();
        result.map(drop).map_err(|e| {
            let chunk = Chunk {
                offset: last,
                sql: String::new(),
            };
            match StepError::from_sqlx(e, script, &chunk, None) {
                StepError::Sql { location, message } => StepError::Sql {
                    location,
                    message: format!("at COMMIT: {message}"),
                },
                other => other,
            }
        })
    }

    /// Runs one statement within the step timeout; one still running then is stopped.
    async fn run_statement(
        &mut self,
        script: &Script,
        st: &Statement<'_>,
    ) -> Result<(), StepError> {
        let limit = self.step_timeout;
        let outcome = {
            let run = sqlx::raw_sql(AssertSqlSafe(st.sql)).execute(&mut self.conn);
            tokio::pin!(run);
            for_step_time(limit, run.as_mut()).await
        };
        match outcome {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => {
                let chunk = Chunk {
                    offset: st.offset,
                    sql: st.sql.to_owned(),
                };
                Err(StepError::from_sqlx(e, script, &chunk, None))
            }
            None => {
                let activity = self.stop_runaway().await?;
                Err(StepError::Timeout {
                    location: Place::line(&script.path, script.line_of(st.offset)),
                    after: limit,
                    activity,
                })
            }
        }
    }

    /// The server process of this session.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    async fn reconnect(&mut self) -> Result<(), StepError> {
        *self = Session::open(&self.db, self.step_timeout).await?;
        Ok(())
    }

    /// Ends the backend of a step that ran too long and reconnects; says what it was doing.
    /// An error when the server does not answer: the run cannot go on.
    async fn stop_runaway(&mut self) -> Result<String, StepError> {
        let mut activity = String::from("unknown activity");
        match self.db.connect().await {
            Ok(mut other) => {
                if let Some(seen) = backend_state(&mut other, self.pid).await {
                    activity = seen.activity();
                }
                let _ = answered(
                    sqlx::query("SELECT pg_terminate_backend($1)")
                        .bind(self.pid)
                        .execute(&mut other),
                )
                .await;
                let _ = answered(other.close()).await;
            }
            Err(e @ sqlx::Error::Database(_)) => activity.push_str(&format!(" ({})", describe(&e))),
            Err(e) => {
                return Err(StepError::NoAnswer(format!(
                    "a step ran past the step timeout, and a new connection to stop it \
                     failed: {}",
                    describe(&e)
                )))
            }
        }
        if let Ok(fresh) = Session::open(&self.db, self.step_timeout).await {
            *self = fresh;
        }
        Ok(activity)
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
    pub async fn seed(
        &mut self,
        tables: &[Table],
        round: usize,
        rules: &DataRules,
        shapes: &seed::Shapes,
    ) -> Result<Seeded, sqlx::Error> {
        let mut seeded = Seeded::default();
        for table in catalog::parents_first(tables) {
            let given = given(table, rules, shapes);
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
            if self_refs.is_empty() {
                let rows: Vec<seed::Row> = (0..seed::ROWS)
                    .map(|i| seed::row(table, i, round, &targets, &given))
                    .collect();
                if let Some(results) = self.insert_each(table, &rows).await? {
                    for result in results {
                        match result {
                            Ok(stored) => {
                                seeded.inserted += 1;
                                seeded.rows.push((table.display_name(), stored));
                            }
                            Err(why) => seeded.refused(table, why),
                        }
                    }
                    continue;
                }
            }
            for i in 0..seed::ROWS {
                let row = seed::row(table, i, round, &targets, &given);
                let stored = match self.insert(table, &row).await {
                    Ok(stored) => stored,
                    Err(sqlx::Error::Database(e)) => {
                        seeded.refused(table, Refusal::of(e.as_ref()));
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
        let cols: Vec<String> = fk
            .ref_columns
            .iter()
            .map(|c| format!("({})::text", ident(c)))
            .collect();
        let not_null: Vec<String> = fk
            .ref_columns
            .iter()
            .map(|c| format!("{} IS NOT NULL", ident(c)))
            .collect();
        // In value order: which rows are picked must not depend on where the server placed
        // them, which depends on when other sessions let it prune (a report would change
        // from one run to the next).
        let sql = format!(
            "SELECT ARRAY[{}]::text[] FROM {} WHERE {} ORDER BY 1 LIMIT {}",
            cols.join(", "),
            fk.ref_table,
            not_null.join(" AND "),
            seed::ROWS
        );
        sqlx::query_scalar(AssertSqlSafe(sql))
            .persistent(false)
            .fetch_all(&mut self.conn)
            .await
    }

    /// Inserts rows in one round trip, each in its own subtransaction, and reads back each
    /// as stored (as text in the table's column order), or why it was refused. `None` when
    /// the batch must be retried row by row: it failed as a whole (a deferred constraint
    /// fails at commit) or a row was not stored without an error (a trigger returned NULL).
    async fn insert_each(
        &mut self,
        table: &Table,
        rows: &[seed::Row],
    ) -> Result<Option<Vec<Result<Stored, Refusal>>>, sqlx::Error> {
        let statements: Vec<String> = rows.iter().map(|r| insert_sql(table, r)).collect();
        let results = match self.each(&statements, false).await {
            Ok(results) => results,
            Err(sqlx::Error::Database(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(results
            .into_iter()
            .map(|(stored, why)| match (stored, why) {
                (Some(stored), _) => Some(Ok(stored)),
                (None, Some(why)) => Some(Err(why)),
                (None, None) => None,
            })
            .collect())
    }

    /// Runs each statement in a subtransaction that is then rolled back, so that nothing it
    /// writes stays (sequences aside), and says why each failed, if it did. Deferred
    /// constraints are checked at the end of each statement.
    pub async fn try_each(
        &mut self,
        statements: &[String],
    ) -> Result<Vec<Option<Refusal>>, sqlx::Error> {
        if statements.is_empty() {
            return Ok(Vec::new());
        }
        let results = self.each(statements, true).await?;
        Ok(results.into_iter().map(|(_, why)| why).collect())
    }

    /// Runs `_migproof.each`: per statement, in order, the row it stored and why it failed.
    async fn each(
        &mut self,
        statements: &[String],
        undo: bool,
    ) -> Result<Vec<(Option<Stored>, Option<Refusal>)>, sqlx::Error> {
        type Each = (
            Option<Stored>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let results: Vec<Each> = sqlx::query_as(
            "SELECT stored, err_code, err_message, err_context, err_column \
             FROM _migproof.each($1, $2) ORDER BY n",
        )
        .bind(statements)
        .bind(undo)
        .fetch_all(&mut self.conn)
        .await?;
        Ok(results
            .into_iter()
            .map(|(stored, code, message, context, column)| {
                let why = code.map(|code| Refusal {
                    code,
                    message: message.unwrap_or_default(),
                    context: own_frames(&context.unwrap_or_default()),
                    column: column.filter(|c| !c.is_empty()),
                });
                (stored, why)
            })
            .collect())
    }

    /// Row `i` of seeding round `round` for `table`, as [`Session::seed`] would write it, its
    /// foreign keys pointing at rows already there.
    pub async fn seed_row(
        &mut self,
        table: &Table,
        i: usize,
        round: usize,
        rules: &DataRules,
        shapes: &seed::Shapes,
    ) -> Result<seed::Row, sqlx::Error> {
        let given = given(table, rules, shapes);
        let mut targets: seed::Targets = Vec::new();
        for fk in &table.foreign_keys {
            targets.push(self.fk_targets(fk).await?);
        }
        Ok(seed::row(table, i, round, &targets, &given))
    }

    /// Inserts one row and reads it back as stored.
    async fn insert(
        &mut self,
        table: &Table,
        row: &seed::Row,
    ) -> Result<Vec<Option<String>>, sqlx::Error> {
        let sql = insert_sql(table, row);
        let row = sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_one(&mut self.conn)
            .await?;
        row.try_get(0)
    }
}

/// Where the seeder takes the columns of `table` from, when not from itself: the values
/// `[seed]` gives, else the shape of a live column's statistics (`--stats-from`).
fn given<'a>(table: &'a Table, rules: &'a DataRules, shapes: &'a seed::Shapes) -> seed::Given<'a> {
    table
        .columns
        .iter()
        .filter_map(|c| {
            let pick = match rules.seed_values(&table.schema, &table.name, &c.name) {
                Some(values) => seed::Pick::Values(values),
                None if shapes.is_empty() => return None,
                None => {
                    let key = format!("{}.{}.{}", table.schema, table.name, c.name);
                    seed::Pick::Shaped(shapes.get(&key)?)
                }
            };
            Some((c.name.as_str(), pick))
        })
        .collect()
}

/// The settings of every session of migproof's: what it reads back does not depend on the
/// server's or the role's time zone, and the server's notices stay quiet.
pub const SETTINGS: &str = "SET TimeZone = 'UTC'; SET client_min_messages = warning";

/// What `DISCARD ALL` does but for `DEALLOCATE ALL` and `DISCARD PLANS` (followed by
/// [`SETTINGS`] again); it fails on a statement a migration prepared (`PREPARE`), which the
/// next case's migration could not prepare again.
const SESSION_RESET: &str = "DO $$ BEGIN
    IF EXISTS (SELECT FROM pg_prepared_statements WHERE from_sql) THEN
        RAISE EXCEPTION 'the session holds a prepared statement of a migration';
    END IF;
END $$;
CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *;
SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// Creates the function behind `Session::insert_each` and `Session::try_each`: each statement
/// in a subtransaction of its own, coming back with its position and why it failed (NULLs
/// when it did not). With `undo` false, the subtransaction is kept and the row the statement
/// returns comes back as stored (NULL when it stored nothing: a trigger returned NULL); with
/// `undo` true, it is rolled back (a sentinel error no statement raises) and deferred
/// constraints are checked at the end of each statement.
const EACH: &str = "
CREATE OR REPLACE FUNCTION _migproof.each(statements text[], undo boolean)
RETURNS TABLE (n int, stored text[], err_code text, err_message text, err_context text,
               err_column text)
LANGUAGE plpgsql AS $$
BEGIN
    IF undo THEN
        SET CONSTRAINTS ALL IMMEDIATE;
    END IF;
    FOR i IN 1 .. coalesce(array_length(statements, 1), 0) LOOP
        n := i;
        stored := NULL;
        err_code := NULL;
        err_message := NULL;
        err_context := NULL;
        err_column := NULL;
        BEGIN
            IF undo THEN
                EXECUTE statements[i];
                RAISE SQLSTATE 'MPRB0';
            ELSE
                EXECUTE statements[i] INTO stored;
            END IF;
        EXCEPTION
            WHEN SQLSTATE 'MPRB0' THEN NULL;
            WHEN OTHERS THEN
                stored := NULL;
                GET STACKED DIAGNOSTICS err_code = RETURNED_SQLSTATE,
                    err_message = MESSAGE_TEXT, err_context = PG_EXCEPTION_CONTEXT,
                    err_column = COLUMN_NAME;
        END;
        RETURN NEXT;
    END LOOP;
END
$$";

/// `INSERT ... RETURNING` the row as stored, as text in the table's column order.
fn insert_sql(table: &Table, row: &seed::Row) -> String {
    let returning: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("({})::text", ident(&c.name)))
        .collect();
    format!(
        "{} RETURNING ARRAY[{}]::text[]",
        insert_statement(table, row),
        returning.join(", ")
    )
}

/// `INSERT` of `row` into `table`, each value cast to its column's type in `table` (as an
/// application's typed parameters are); columns left out take their defaults.
pub fn insert_statement(table: &Table, row: &seed::Row) -> String {
    let mut cols = Vec::new();
    let mut values = Vec::new();
    for (name, value) in row {
        let Some(col) = table.column(name) else {
            continue;
        };
        cols.push(ident(name));
        values.push(match value {
            Some(v) => format!("{}::{}", literal(v), col.type_sql),
            None => "NULL".to_string(),
        });
    }
    if cols.is_empty() {
        return format!("INSERT INTO {} DEFAULT VALUES", table.sql_name());
    }
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.sql_name(),
        cols.join(", "),
        values.join(", ")
    )
}

/// An external migrator's invocation for one step: its command line pointed at a scratch
/// database (and a copy of its ini file, if it has one, kept alive by `_dir`).
struct Migrator {
    program: String,
    args: Vec<String>,
    display: String,
    cwd: std::path::PathBuf,
    /// The scratch URL with its password, for `DATABASE_URL` (the environment of a process is
    /// not shown to other users, its command line is).
    url: String,
    /// The password, for `PGPASSWORD`; `{url}` on the command line goes without it.
    password: Option<String>,
    location: Place,
    pg_options: Option<&'static str>,
    _dir: tempfile::TempDir,
}

impl Migrator {
    fn prepare(
        db: &ScratchDb,
        script: &Script,
        command: &crate::source::Command,
        pg_options: Option<&'static str>,
    ) -> Result<Migrator, StepError> {
        let location = Place::file(&script.path);
        let with_scheme = |url: String| match url.split_once("://") {
            Some((_, rest)) => format!("{}://{rest}", command.scheme),
            None => url,
        };
        let url = with_scheme(db.url());
        let bare = with_scheme(without_password(&db.url()));
        let dir = tempfile::tempdir().map_err(|e| StepError::Connection(e.to_string()))?;
        let ini = match &command.config {
            Some(config) => {
                let text = std::fs::read_to_string(&config.path).map_err(|e| StepError::Sql {
                    location: Place::file(&config.path),
                    message: format!("failed to read: {e}"),
                })?;
                let here = config.path.parent().unwrap_or(Path::new(""));
                let name = config.path.file_name().unwrap_or_default();
                let copy = dir.path().join(name);
                std::fs::write(&copy, (config.with_url)(&text, here, &url))
                    .map_err(|e| StepError::Connection(e.to_string()))?;
                copy.display().to_string()
            }
            None => String::new(),
        };
        let argv: Vec<String> = command
            .argv
            .iter()
            .map(|a| a.replace("{url}", &bare).replace("{ini}", &ini))
            .collect();
        let Some((program, args)) = argv.split_first() else {
            return Err(StepError::Sql {
                location,
                message: "empty command".into(),
            });
        };
        Ok(Migrator {
            program: program.clone(),
            args: args.to_vec(),
            display: argv_display(&command.argv),
            cwd: command.cwd.clone(),
            url,
            password: db.password().filter(|p| !p.is_empty()).map(str::to_owned),
            location,
            pg_options,
            _dir: dir,
        })
    }

    /// Starts the migrator in its own process group, output captured.
    fn spawn(&self) -> Result<tokio::process::Child, StepError> {
        let mut child = tokio::process::Command::new(&self.program);
        child
            .args(&self.args)
            .current_dir(&self.cwd)
            .env("DATABASE_URL", &self.url)
            .envs(self.password.as_ref().map(|p| ("PGPASSWORD", p)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(options) = self.pg_options {
            let inherited = std::env::var("PGOPTIONS").unwrap_or_default();
            child.env("PGOPTIONS", format!("{inherited} {options}").trim());
        }
        child.spawn().map_err(|e| self.failed_to_run(e))
    }

    /// Runs the migrator to its end, or stops it and every process it started at `timeout`.
    async fn run(&self, timeout: Duration) -> Result<std::process::Output, StepError> {
        let child = self.spawn()?;
        let mut group = Group::of(&child);
        let mut output = std::pin::pin!(child.wait_with_output());
        match for_step_time(timeout, output.as_mut()).await {
            Some(output) => {
                group.forget();
                output.map_err(|e| self.failed_to_run(e))
            }
            None => {
                group.stop(output).await;
                Err(self.timed_out(timeout))
            }
        }
    }

    fn failed_to_run(&self, e: std::io::Error) -> StepError {
        StepError::Sql {
            location: self.location.clone(),
            message: format!("failed to run `{}`: {e}", self.program),
        }
    }

    fn timed_out(&self, after: Duration) -> StepError {
        StepError::Timeout {
            location: self.location.clone(),
            after,
            activity: format!("`{}` still running; killed", self.program),
        }
    }

    /// `text` from the migrator with the scratch URL and every form of its password replaced.
    fn scrub(&self, text: &str) -> String {
        let text = text.replace(&self.url, "<scratch database>");
        crate::backend::url::scrub(&text, &self.url)
    }

    /// A non-zero exit as an `Sql` error carrying the end of its stderr (the scratch URL and
    /// the password replaced).
    fn check(&self, output: &std::process::Output) -> Result<(), StepError> {
        if output.status.success() {
            return Ok(());
        }
        let stderr = self.scrub(&String::from_utf8_lossy(&output.stderr));
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(StepError::Sql {
            location: self.location.clone(),
            message: format!(
                "`{}` failed ({}):\n{}",
                self.display,
                output.status,
                tail.join("\n")
            ),
        })
    }
}

/// The process group of a migrator, which it leads: every process it started is in it, unless
/// one left on purpose. Dropped before [`Group::forget`] (the step was interrupted), it kills
/// the group at once.
struct Group(Option<nix::unistd::Pid>);

impl Group {
    fn of(child: &tokio::process::Child) -> Group {
        Group(child.id().map(|id| nix::unistd::Pid::from_raw(id as i32)))
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(group) = self.0 {
            let _ = nix::sys::signal::killpg(group, signal);
        }
    }

    /// The migrator ended by itself: what it left running is its own business.
    fn forget(&mut self) {
        self.0 = None;
    }

    /// Stops the whole group: SIGTERM, then SIGKILL to what is left after [`KILL_GRACE`].
    /// `exit` is the leader's exit (with its output), awaited meanwhile so that it is reaped
    /// and its pid, the group's id, cannot be reused while the group is signalled.
    async fn stop<F: Future>(mut self, mut exit: Pin<&mut F>) {
        use nix::sys::signal::Signal;
        self.signal(Signal::SIGTERM);
        let ended = tokio::time::timeout(KILL_GRACE, exit.as_mut())
            .await
            .is_ok();
        // What ignored SIGTERM, or outlived the leader holding no pipe.
        self.signal(Signal::SIGKILL);
        if !ended {
            // A process that left the group may hold the output pipes open: do not wait for it.
            let _ = tokio::time::timeout(KILL_GRACE, exit).await;
        }
        self.forget();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
    }
}

/// A concurrent transaction holding a snapshot and a ROW EXCLUSIVE lock on every table, the
/// competitor that faults make a migration wait behind.
struct Blocker {
    conn: PgConnection,
    pid: i32,
    db: ScratchDb,
}

impl Blocker {
    async fn hold(db: &ScratchDb) -> Result<Blocker, sqlx::Error> {
        let mut conn = db.connect().await?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await?;
        let tables: Vec<String> = crate::observe::catalog::tables(&mut conn)
            .await?
            .iter()
            .map(Table::sql_name)
            .collect();
        let mut hold = String::from("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1;");
        if !tables.is_empty() {
            hold.push_str(&format!(
                " LOCK TABLE {} IN ROW EXCLUSIVE MODE;",
                tables.join(", ")
            ));
        }
        sqlx::raw_sql(AssertSqlSafe(hold))
            .execute(&mut conn)
            .await?;
        Ok(Blocker {
            conn,
            pid,
            db: db.clone(),
        })
    }

    /// Returns once a session of this database other than `ours` waits on a lock, with that
    /// session's pid and the watching connection (never, when no watching connection can be
    /// had).
    async fn wait_for_lock_wait(&self, ours: &[i32]) -> (PgConnection, i32) {
        let Ok(mut watcher) = self.db.connect().await else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let waiting: Option<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND NOT pid = ANY($1) LIMIT 1",
            )
            .bind(ours)
            .fetch_optional(&mut watcher)
            .await
            .ok()
            .flatten();
            if let Some(pid) = waiting {
                return (watcher, pid);
            }
        }
    }

    /// Ends every session of this database but `ours` and this blocker's.
    async fn end_sessions_except(&mut self, ours: &[i32]) {
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND NOT pid = ANY($1)",
        )
        .bind(ours)
        .execute(&mut self.conn)
        .await;
    }

    async fn release(mut self) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

/// What a step's backend was doing when the step timeout fired, seen from a second connection.
enum AtTimeout {
    /// Idle, or waiting for the client to send: the time went by on migproof's side.
    WaitingOnClient,
    /// Working, or waiting on something inside the server: its statement was cancelled.
    Cancelled(String),
    /// No new connection could be had in time: the server stopped answering.
    NoAnswer(String),
}

/// A backend's row of `pg_stat_activity`: state, wait event type, wait event.
struct BackendState(Option<String>, Option<String>, Option<String>);

impl BackendState {
    /// True when the backend waits for its client to send something: the client is behind.
    fn waits_on_client(&self) -> bool {
        matches!(
            self.0.as_deref(),
            Some("idle" | "idle in transaction" | "idle in transaction (aborted)")
        ) || self.2.as_deref() == Some("ClientRead")
    }

    /// What it is doing, for a `timeout` finding: waiting for a lock, sleeping, busy.
    fn activity(&self) -> String {
        let state = self.0.clone().unwrap_or_default();
        match (self.1.as_deref(), self.2.as_deref()) {
            (Some("Lock"), Some(w)) => format!("waiting for a {w} lock"),
            (Some(t), Some(w)) => format!("{state} waiting on {t}/{w}"),
            _ => format!("{state}, not waiting: busy"),
        }
    }
}

async fn backend_state(conn: &mut PgConnection, pid: i32) -> Option<BackendState> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = answered(
        sqlx::query_as(
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE pid = $1",
        )
        .bind(pid)
        .fetch_optional(conn),
    )
    .await
    .ok()
    .flatten();
    row.map(|(state, wait_type, wait)| BackendState(state, wait_type, wait))
}

/// Says what backend `pid` is doing (waiting for a lock, sleeping, busy) and cancels its
/// statement, from a second connection; leaves it alone when it waits on migproof.
async fn describe_and_cancel(db: &ScratchDb, pid: i32) -> AtTimeout {
    let mut activity = String::from("unknown activity");
    let mut other = match db.connect().await {
        Ok(other) => other,
        // The server answered, with a refusal (too many connections): it is alive.
        Err(e @ sqlx::Error::Database(_)) => {
            return AtTimeout::Cancelled(format!("{activity} ({})", describe(&e)))
        }
        Err(sqlx::Error::Io(e)) => return AtTimeout::NoAnswer(e.to_string()),
        Err(e) => return AtTimeout::NoAnswer(describe(&e)),
    };
    if let Some(seen) = backend_state(&mut other, pid).await {
        if seen.waits_on_client() {
            let _ = answered(other.close()).await;
            return AtTimeout::WaitingOnClient;
        }
        activity = seen.activity();
    }
    let _ = answered(
        sqlx::query("SELECT pg_cancel_backend($1)")
            .bind(pid)
            .execute(&mut other),
    )
    .await;
    let _ = answered(other.close()).await;
    AtTimeout::Cancelled(activity)
}

/// Runs `work` until it ends (`Some`), or until it has had `limit` of time in which migproof
/// itself was running (`None`): see [`backend::in_running_time`]. Time in which migproof was
/// paused is not counted: the server waited on migproof then, and a step is not to blame.
async fn for_step_time<F: Future>(limit: Duration, work: Pin<&mut F>) -> Option<F::Output> {
    crate::backend::in_running_time(limit, work).await
}

/// The statement that records in migproof's bookkeeping that `version` was applied (up) or
/// rolled back (down).
fn bookkeeping(version: &str, direction: Direction) -> String {
    match direction {
        Direction::Up => format!(
            "INSERT INTO _migproof.applied (version) VALUES ({}) ON CONFLICT DO NOTHING",
            literal(version)
        ),
        Direction::Down => format!(
            "DELETE FROM _migproof.applied WHERE version = {}",
            literal(version)
        ),
    }
}

/// True for a statement that starts or ends a transaction.
fn is_transaction_control(sql: &str) -> bool {
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches(';')
        .to_ascii_lowercase();
    matches!(
        first.as_str(),
        "begin" | "start" | "commit" | "end" | "rollback" | "abort"
    )
}

async fn apply_blocks(
    conn: &mut PgConnection,
    version: &str,
    script: &Script,
    direction: Direction,
    current: &mut (usize, usize),
) -> Result<(), StepError> {
    let bookkeeping = bookkeeping(version, direction);
    let conn_err = |e: sqlx::Error| StepError::Connection(describe(&e));
    let last = script.blocks.len().saturating_sub(1);
    let mut recorded = false;
    for (b, block) in script.blocks.iter().enumerate() {
        if block.transactional {
            sqlx::raw_sql("BEGIN")
                .execute(&mut *conn)
                .await
                .map_err(conn_err)?;
        }
        for (c, chunk) in block.chunks.iter().enumerate() {
            *current = (b, c);
            if chunk.sql.trim().is_empty() {
                continue;
            }
            // Statement by statement as the server completes them, so that a failure can be
            // placed at its statement; sent as one query string all the same, as the migrator
            // sends it.
            let mut completed = 0;
            let failed = {
                let mut results =
                    sqlx::raw_sql(AssertSqlSafe(chunk.sql.as_str())).execute_many(&mut *conn);
                loop {
                    match results.try_next().await {
                        Ok(Some(_)) => completed += 1,
                        Ok(None) => break None,
                        Err(e) => break Some(e),
                    }
                }
            };
            if let Some(e) = failed {
                if block.transactional {
                    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                }
                return Err(StepError::from_sqlx(e, script, chunk, Some(completed)));
            }
        }
        if block.transactional {
            if b == last {
                if let Err(e) = sqlx::raw_sql(AssertSqlSafe(bookkeeping.clone()))
                    .execute(&mut *conn)
                    .await
                {
                    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                    return Err(bookkeeping_failed(e, script));
                }
                recorded = true;
            }
            if let Err(e) = sqlx::raw_sql("COMMIT").execute(&mut *conn).await {
                // A deferred constraint can fail at commit.
                let chunk = block.chunks.last().cloned().unwrap_or(Chunk {
                    offset: 0,
                    sql: String::new(),
                });
                return Err(StepError::from_sqlx(e, script, &chunk, None));
            }
        }
    }
    if !recorded {
        sqlx::raw_sql(AssertSqlSafe(bookkeeping))
            .execute(&mut *conn)
            .await
            .map_err(|e| bookkeeping_failed(e, script))?;
    }
    Ok(())
}

/// A statement of a script as [`Session::apply_observed`] runs it.
#[derive(Debug, Clone, Copy)]
pub struct Statement<'a> {
    pub sql: &'a str,
    /// Byte offset of the statement in the script's text.
    pub offset: usize,
    /// Whether it runs inside a transaction block (else alone in autocommit: a statement
    /// PostgreSQL refuses in a transaction block).
    pub in_transaction: bool,
}

/// Watches a script applied by [`Session::apply_observed`], on the applying session's own
/// connection. An error from it is the connection's: the step cannot go on.
#[allow(async_fn_in_trait)]
pub trait Observer {
    /// A transaction block began.
    async fn began(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error>;
    /// `statement` is about to run.
    async fn before(
        &mut self,
        conn: &mut PgConnection,
        statement: &Statement<'_>,
    ) -> Result<(), sqlx::Error>;
    /// `statement` ran; `failed` says why it did not complete. The transaction it failed in
    /// is still open (and aborted): an observer reads nothing then.
    async fn after(
        &mut self,
        conn: &mut PgConnection,
        statement: &Statement<'_>,
        failed: Option<&StepError>,
    ) -> Result<(), sqlx::Error>;
    /// The transaction block ended (committed or rolled back): its locks are released.
    fn ended(&mut self);
}

/// A part of a script that commits on its own: a transactional block, or one chunk of a block
/// run in autocommit (a chunk holding several statements runs as one implicit transaction).
pub struct Unit<'a> {
    pub transactional: bool,
    pub chunks: Vec<&'a Chunk>,
}

pub fn commit_units(script: &Script) -> Vec<Unit<'_>> {
    let mut units = Vec::new();
    for block in &script.blocks {
        if block.transactional {
            units.push(Unit {
                transactional: true,
                chunks: block.chunks.iter().collect(),
            });
        } else {
            units.extend(
                block
                    .chunks
                    .iter()
                    .filter(|c| !c.sql.trim().is_empty())
                    .map(|c| Unit {
                        transactional: false,
                        chunks: vec![c],
                    }),
            );
        }
    }
    units
}

/// Runs one unit as the migrator would, without recording anything.
async fn run_unit(conn: &mut PgConnection, unit: &Unit<'_>) -> Result<(), sqlx::Error> {
    if unit.transactional {
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
    }
    for chunk in &unit.chunks {
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(chunk.sql.clone()))
            .execute(&mut *conn)
            .await
        {
            if unit.transactional {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            }
            return Err(e);
        }
    }
    if unit.transactional {
        sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
    }
    Ok(())
}

/// The statement of `script` that `line` falls in: the last one starting at or before it.
fn statement_at(script: &Script, line: usize) -> Option<String> {
    let statements = split::split(&script.text).ok()?;
    statements
        .into_iter()
        .take_while(|st| script.line_of(st.offset) <= line)
        .last()
        .map(|st| st.sql)
}

/// True when a script calls `pg_terminate_backend`, and so may end its own session.
fn terminates_backends(script: &Script) -> bool {
    script
        .text
        .to_ascii_lowercase()
        .contains("pg_terminate_backend")
}

/// migproof's record of a step, written on the migration's own session, failed. The server
/// rejecting it means the migration changed that session or migproof's schema (`SET ROLE`,
/// `DROP SCHEMA _migproof`, a revoked privilege), as a migrator's own bookkeeping would fail
/// after it: a finding. A broken connection stays the environment's failure.
fn bookkeeping_failed(e: sqlx::Error, script: &Script) -> StepError {
    match &e {
        sqlx::Error::Database(db) if !db.code().is_some_and(|c| ends_session(&c)) => {
            StepError::Sql {
                location: Place::line(&script.path, script.line_of(script.text.trim_end().len()))
                    .sqlstate(db.code().as_deref().unwrap_or_default()),
                message: format!(
                    "the script ran, but recording it as applied afterwards, on the same session \
                     as a migrator would, failed: {}; the migration changed its session or \
                     migproof's `_migproof` schema (SET ROLE, DROP SCHEMA, REVOKE), \
                     as a migrator's own record would fail after it",
                    describe(&e)
                ),
            }
        }
        _ => StepError::Connection(describe(&e)),
    }
}

/// A URL without its password (the migrator gets that through `PGPASSWORD`).
fn without_password(url: &str) -> String {
    match ::url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            parsed.into()
        }
        Err(_) => url.to_owned(),
    }
}

fn argv_display(argv: &[String]) -> String {
    argv.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrator(url: &str, password: &str) -> Migrator {
        Migrator {
            program: "true".into(),
            args: Vec::new(),
            display: "true {url}".into(),
            cwd: ".".into(),
            url: url.into(),
            password: Some(password.into()),
            location: Place::file(std::path::Path::new("migproof.toml")),
            pg_options: None,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    #[test]
    fn every_form_of_the_password_is_scrubbed_from_what_a_migrator_says() {
        let url = "postgresql://ann:s3cr%2Ft%40@db:5432/migproof_1";
        let m = migrator(url, "s3cr/t@");
        let said = format!(
            "cannot reach {url}; as ann:s3cr%2ft%40@db (password s3cr/t@, form-encoded s3cr%2Ft%40)"
        );
        let scrubbed = m.scrub(&said);
        assert!(!scrubbed.contains("s3cr"), "{scrubbed}");
        assert!(
            scrubbed.starts_with("cannot reach <scratch database>;"),
            "{scrubbed}"
        );
    }

    #[test]
    fn the_url_on_a_command_line_carries_no_password() {
        assert_eq!(
            without_password("postgresql://ann:s3cr%40t@db:5432/migproof_1"),
            "postgresql://ann@db:5432/migproof_1"
        );
    }
}

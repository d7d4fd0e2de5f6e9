//! What a migration run as a superuser changes outside its own database (roles, memberships,
//! settings, databases, tablespaces, `ALTER SYSTEM`): read around each step, one step at a
//! time, described for the runner to report, and undone where it can be. A migration run as
//! the database's owner cannot change any of it, and is not watched.

use sqlx::AssertSqlSafe;

use crate::backend::{describe, BackendError, Server};
use crate::observe::globals;

/// Runs `step` (a migration step) under [`watch`]: its outcome, and what it changed on the
/// server outside its database, one line per change (none unless migrations run as a
/// superuser).
pub async fn watched<T>(
    server: &Server,
    step: impl std::future::Future<Output = T>,
) -> Result<(T, Vec<String>), BackendError> {
    let watch = watch(server).await?;
    let outcome = step.await;
    let changes = match watch {
        Some(watch) => watch.finish().await?,
        None => Vec::new(),
    };
    Ok((outcome, changes))
}

/// When migrations run as a superuser, and so can change the server outside their database:
/// the server's global state before a step, read under a turn that keeps the run's other steps
/// waiting until [`Watch::finish`]. `None` otherwise.
async fn watch(server: &Server) -> Result<Option<Watch<'_>>, BackendError> {
    if !server.applies_as_superuser() {
        return Ok(None);
    }
    let turn = server.globals_turn.lock().await;
    let mut conn = server.admin_conn().await?;
    let before = globals::read(&mut conn)
        .await
        .map_err(|e| server.admin_error("read the server's roles, databases and settings", e))?;
    server.release(conn);
    Ok(Some(Watch {
        server,
        before,
        _turn: turn,
    }))
}

/// The server's global state before a step ([`watch`]).
pub struct Watch<'a> {
    server: &'a Server,
    before: globals::Globals,
    _turn: tokio::sync::MutexGuard<'a, ()>,
}

impl Watch<'_> {
    /// What the step changed outside its database, one line per change, each saying whether
    /// migproof undid it: an added role, database, tablespace or setting is removed again, so
    /// that the rest of the run (and the server) starts from the state before the step.
    pub async fn finish(self) -> Result<Vec<String>, BackendError> {
        let server = self.server;
        let mut conn = server.admin_conn().await?;
        let after = globals::read(&mut conn).await.map_err(|e| {
            server.admin_error("read the server's roles, databases and settings", e)
        })?;
        let mut lines = Vec::new();
        let mut reload = false;
        for change in globals::diff(&self.before, &after) {
            let outcome = match change.undo(&self.before) {
                Some(sql) => match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await {
                    Ok(_) => {
                        reload |= matches!(&change, globals::Change::Added(i) if i.kind == "system setting");
                        "undone by migproof".to_owned()
                    }
                    Err(e) => format!("migproof could not undo it: {}", describe(&e)),
                },
                None => "migproof cannot undo it".to_owned(),
            };
            lines.push(format!("{} ({outcome})", change.describe()));
        }
        if reload {
            let _ = sqlx::raw_sql("SELECT pg_reload_conf()")
                .execute(&mut conn)
                .await;
        }
        server.release(conn);
        Ok(lines)
    }
}

//! A finished case's database emptied in place for the next case, instead of a `DROP DATABASE`
//! (which waits for a checkpoint) and a `CREATE DATABASE` (which copies and, on a server that
//! syncs its files, logs every page of the template).
//!
//! Emptying is proven, not trusted. Every row of the database's own catalogs either comes
//! from the template (its `xmin` is older than anything this run wrote: [`boundary`], read
//! before the first case began) or was written since. A row of the template that a case
//! changed or deleted is gone (an update writes a new row; one in place, which keeps `xmin`,
//! writes only statistics of a template row, such as a catalog's page count), so the count of
//! older rows per catalog falls; what a case added and the reset left is one more newer row.
//! The database is handed on only when, after the reset (migproof's schema kept as the new
//! session installed it, its stashes and bookkeeping emptied), every catalog holds as many
//! older and newer rows as a fresh database with migproof's schema does, and the database's own
//! settings, owner and privileges are those of a fresh one; else it is dropped as before.
//! Planner statistics (`pg_statistic`, which autovacuum writes on its own) are left out, and so
//! are the catalogs the session's role may not read (`pg_largeobject`, whose large objects
//! `pg_largeobject_metadata` counts; statistics).

use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;

use crate::backend::ScratchDb;
use crate::executor::Session;

const RESET: &str = include_str!("reset.sql");

/// The count query over the database's own catalogs, as the server lists them.
const QUERY_OF_CATALOGS: &str = "
SELECT string_agg(format(
           'SELECT %L::text, count(*) FILTER (WHERE xmin::text::bigint < $1) || '' '' || '
           'count(*) FILTER (WHERE xmin::text::bigint >= $1) FROM pg_catalog.%I', relname, relname),
       E'\\nUNION ALL ' ORDER BY relname)
FROM pg_class
WHERE relnamespace = 'pg_catalog'::regnamespace AND relkind = 'r' AND NOT relisshared
  AND relname <> 'pg_statistic' AND has_table_privilege(oid, 'SELECT')";

/// The database's own row: owner, privileges, connection settings and per-database settings.
const DATABASE: &str = "
UNION ALL SELECT 'pg_database', format('%s|%s|%s|%s|%s', d.datdba, d.datacl, d.datallowconn, d.datconnlimit,
    (SELECT string_agg(s.setrole || ':' || s.setconfig::text, ' ' ORDER BY s.setrole)
     FROM pg_db_role_setting s WHERE s.setdatabase = d.oid))
FROM pg_database d WHERE d.datname = current_database()";

/// The boundary (with its epoch) must be below this for reuse: the server's transaction ids
/// have not wrapped around, and a run has room before the 32-bit `xmin` it is compared with
/// would.
const ROOM: i64 = 3_000_000_000;

/// What a fresh database of this run looks like, to compare an emptied one with.
pub struct Pristine {
    /// No transaction of this run has an id below it; the template's rows all do.
    boundary: i64,
    /// The fingerprint query.
    query: String,
    /// A fresh database's fingerprint, migproof's schema installed.
    fresh: Vec<(String, String)>,
}

/// The oldest transaction id still running or to come, when reuse can rely on it: read before
/// the run's first case writes anything. `None` on a server whose ids are near wrapping.
pub async fn boundary(db: &ScratchDb) -> Option<i64> {
    let mut conn = db.connect().await.ok()?;
    let xmin: Result<i64, _> =
        sqlx::query_scalar("SELECT txid_snapshot_xmin(txid_current_snapshot())")
            .fetch_one(&mut conn)
            .await;
    let _ = sqlx::Connection::close(conn).await;
    xmin.ok().filter(|x| *x < ROOM)
}

impl Pristine {
    /// Reads a fresh database's fingerprint through `session` (just opened on it).
    pub async fn read(boundary: i64, session: &mut Session) -> Option<Pristine> {
        let catalogs: Option<String> = sqlx::query_scalar(QUERY_OF_CATALOGS)
            .fetch_one(session.conn())
            .await
            .ok()?;
        let query = format!("{}{DATABASE}", catalogs?);
        let fresh = fingerprint(session.conn(), &query, boundary).await.ok()?;
        Some(Pristine {
            boundary,
            query,
            fresh,
        })
    }

    /// Empties the database of `session` (the case's, cleared of what its migrations left in
    /// it: [`Session::cleared`]) and hands the session back for the next case; `None` when the
    /// database could not be brought back to a fresh one's state (drop it).
    pub async fn reset(&self, mut session: Session) -> Option<Session> {
        let emptied = sqlx::raw_sql(RESET).execute(session.conn()).await.is_ok()
            && fingerprint(session.conn(), &self.query, self.boundary)
                .await
                .is_ok_and(|now| now == self.fresh);
        if emptied {
            return Some(session);
        }
        session.close().await;
        None
    }
}

async fn fingerprint(
    conn: &mut PgConnection,
    query: &str,
    boundary: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut rows: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(query.to_owned()))
        .bind(boundary)
        .fetch_all(conn)
        .await?;
    rows.sort();
    Ok(rows)
}

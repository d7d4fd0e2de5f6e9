//! The lock trace of `migproof locks` as data (per migration, per statement: locks and modes per
//! relation, rewrites, index builds, validations, duration, the application traffic it made
//! wait; per migration, every probe wait and the report query on one timeline) and its human
//! rendering, a table per migration. The runner (`crate::locks`) fills it; `report::html` draws
//! it.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::report::paint;

/// Everything the lock analysis observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LockTrace {
    /// Rows each table was filled with before the migrations that follow it were traced.
    pub rows: u64,
    /// Tables filled to a size of their own (`[locks.rows]` in migproof.toml), by
    /// `schema.table`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub table_rows: BTreeMap<String, u64>,
    /// Locks that block the application held longer than this are hazards.
    pub lock_threshold_ms: u64,
    pub migrations: Vec<MigrationTrace>,
}

/// One migration's up, statement by statement.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MigrationTrace {
    /// As in its file name, for example `0003_index_orders`.
    pub migration: String,
    pub file: String,
    /// Wall time of the whole up, without migproof's own observation queries.
    pub duration_ms: u64,
    /// Tables filled (with `rows` rows each) just before this migration.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filled: Vec<String>,
    pub statements: Vec<StatementTrace>,
    /// The longest wait of the probe per table it touched, largest first.
    pub waits: Vec<TableWait>,
    /// Every probe query that waited (1 ms or more) or failed, in the order they started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probe_waits: Vec<ProbeWait>,
    /// The report transaction held open beside the migration; none when no table existed
    /// before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_query: Option<ReportQuery>,
    /// Why the up stopped, when it did (`file:line: server message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One statement as it ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatementTrace {
    /// 1-based position in the migration.
    pub statement: usize,
    /// 1-based line of the statement in its file.
    pub line: usize,
    pub sql: String,
    /// Which transaction of the migration it ran in (1-based); locks are held until that
    /// transaction ends.
    pub transaction: usize,
    /// False for statements run outside a transaction block (`CREATE INDEX CONCURRENTLY`),
    /// whose locks are sampled from a second connection while they run.
    pub in_transaction: bool,
    /// When it started, in ms after the migration started (wall time, migproof's observation
    /// queries between statements included): its place on the timeline.
    pub start_ms: u64,
    /// Wall time, including `lock_wait_ms`.
    pub duration_ms: u64,
    /// How long it waited for a lock before it could go on (its backend seen waiting by the
    /// sampler, accurate to a few ms): behind the report query, for example. Not part of the
    /// `held_ms` of the locks it took.
    pub lock_wait_ms: u64,
    /// `lock_timeout` in effect when the statement started (`0` is none).
    pub lock_timeout: String,
    /// Locks on relations that existed before the migration, first taken by this statement.
    pub locks: Vec<LockTaken>,
    /// True when a table's or an index's data file was replaced (a full rewrite).
    pub rewrite: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rewrites: Vec<Rewrite>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub index_builds: Vec<IndexBuild>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validations: Vec<Validation>,
    /// The longest probe wait this statement's locks caused.
    pub longest_wait_ms: u64,
    /// The application's traffic while it ran.
    pub traffic: Traffic,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the application's reads and writes (the probe) went through while one statement ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Probe queries this statement made wait 1 ms or more: credited to the statement whose
    /// lock blocked them, else to the statement running when they started.
    pub waited: u64,
    /// The median of those waits (the lower middle one for an even count), 0 when none.
    pub wait_p50_ms: u64,
    /// The longest of those waits (`longest_wait_ms`).
    pub wait_max_ms: u64,
    /// Probe queries that failed while it ran, for a reason other than the probe's own short
    /// `lock_timeout`: the table dropped or renamed, a statement timeout.
    pub failed: u64,
    /// The most sessions seen waiting for a lock at once while it ran (the migration's own
    /// included when it waited), sampled every few ms from `pg_stat_activity`.
    pub queue_max: u64,
}

/// One probe query that waited, on its migration's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeWait {
    pub table: String,
    /// `read` or `write`.
    pub access: String,
    /// When its first blocked attempt started, in ms after the migration started.
    pub start_ms: u64,
    pub duration_ms: u64,
    /// The statement it is credited to (1-based, as `StatementTrace::statement`).
    pub statement: usize,
    /// The SQLSTATE of the error it ended with, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// The long report query held beside a migration: a `REPEATABLE READ` transaction that
/// counted the rows of `tables` just before the migration started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportQuery {
    pub tables: Vec<String>,
    /// How long it stayed open after the migration started (at most 200 ms, and never past
    /// the migration's end).
    pub held_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockTaken {
    /// Schema-qualified name as before the migration.
    pub relation: String,
    /// `table`, `partitioned table`, `index`, `sequence`, `view`, `materialized view`, ...
    pub kind: String,
    /// As `pg_locks` names it: `AccessShareLock` ... `AccessExclusiveLock`.
    pub mode: String,
    /// From the start of the statement that took it to the end of its transaction (sampled
    /// for statements outside a transaction), without migproof's observation queries.
    pub held_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// The table whose data (or one of whose indexes) was rewritten.
    pub table: String,
    /// The relation whose file changed: the table itself or one of its indexes.
    pub relation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexBuild {
    pub index: String,
    pub table: String,
    /// Built with `CONCURRENTLY`, outside a transaction.
    pub concurrent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validation {
    pub table: String,
    /// `check`, `foreign_key` or `not_null`.
    pub kind: String,
    /// The constraint's name, or the column for `not_null`.
    pub object: String,
    /// `added` (a constraint added without NOT VALID, checked at once), `validate`
    /// (`VALIDATE CONSTRAINT`) or `set_not_null`.
    pub how: String,
    /// The table was read in full to check it.
    pub scanned: bool,
}

/// The longest time the probe's read (`SELECT 1 FROM t LIMIT 1`) and write (`DELETE FROM t
/// WHERE false`, rolled back) on a table waited while the migration ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableWait {
    pub table: String,
    pub read_wait_ms: u64,
    pub write_wait_ms: u64,
    pub longest_wait_ms: u64,
}

const SQL_WIDTH: usize = 48;

/// For the table: the strongest lock per relation other than indexes (the JSON has them all).
pub(crate) fn strongest_per_relation(locks: &[LockTaken]) -> Vec<&LockTaken> {
    let mut out: Vec<&LockTaken> = Vec::new();
    for lock in locks.iter().filter(|l| l.kind != "index") {
        match out.iter_mut().find(|l| l.relation == lock.relation) {
            Some(kept) if strength(&kept.mode) < strength(&lock.mode) => *kept = lock,
            Some(_) => {}
            None => out.push(lock),
        }
    }
    out
}

/// One line of SQL, shortened to `width` characters.
fn short(sql: &str, width: usize) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= width {
        flat
    } else {
        let cut: String = flat.chars().take(width - 1).collect();
        format!("{cut}…")
    }
}

/// What the application went through while `s` ran, when anything: its own wait for a lock,
/// the probe queries it made wait, those that failed, and the deepest lock queue.
fn traffic_line(s: &StatementTrace) -> Option<String> {
    let t = &s.traffic;
    if s.lock_wait_ms == 0 && t.waited == 0 && t.failed == 0 && t.queue_max == 0 {
        return None;
    }
    let mut parts = Vec::new();
    if s.lock_wait_ms > 0 {
        parts.push(format!("waited {} ms for its lock", s.lock_wait_ms));
    }
    parts.push(format!(
        "{} probe quer{} waited (p50 {} ms, max {} ms), {} failed, up to {} session(s) queued \
         for a lock",
        t.waited,
        if t.waited == 1 { "y" } else { "ies" },
        t.wait_p50_ms,
        t.wait_max_ms,
        t.failed,
        t.queue_max
    ));
    Some(parts.join("; "))
}

/// A table per migration: statement, locks and modes per relation, rewrite, duration and the
/// longest wait it caused; then the longest wait per table.
pub fn render_human(trace: &LockTrace, colour: bool) -> String {
    let c = |text: &str, code: &str| paint(text, code, colour);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nlock trace at {} rows per table (locks that block the application held longer than \
         {} ms are hazards):",
        trace.rows, trace.lock_threshold_ms
    );
    for m in &trace.migrations {
        let _ = writeln!(out, "\n{}  ({} ms)", c(&m.migration, "1"), m.duration_ms);
        if !m.filled.is_empty() {
            let _ = writeln!(out, "  filled first: {}", m.filled.join(", "));
        }
        let _ = writeln!(
            out,
            "  {:>3} {:>5}  {:<SQL_WIDTH$}  {:<7}  {:>8}  {:>8}  locks",
            "#", "line", "statement", "rewrite", "duration", "max wait"
        );
        for s in &m.statements {
            let locks: Vec<String> = strongest_per_relation(&s.locks)
                .into_iter()
                .map(|l| format!("{} {} ({} ms)", l.relation, l.mode, l.held_ms))
                .collect();
            let locks = if locks.is_empty() {
                "-".to_string()
            } else {
                locks.join(", ")
            };
            let rewrite = format!("{:<7}", if s.rewrite { "yes" } else { "no" });
            let rewrite = if s.rewrite {
                c(&rewrite, "1;31")
            } else {
                rewrite
            };
            let _ = writeln!(
                out,
                "  {:>3} {:>5}  {:<SQL_WIDTH$}  {}  {:>5} ms  {:>5} ms  {}",
                s.statement,
                s.line,
                short(&s.sql, SQL_WIDTH),
                rewrite,
                s.duration_ms,
                s.longest_wait_ms,
                locks,
            );
            if let Some(traffic) = traffic_line(s) {
                let _ = writeln!(out, "            {traffic}");
            }
            if let Some(e) = &s.error {
                let _ = writeln!(out, "            {}", c(&format!("failed: {e}"), "31"));
            }
        }
        if let Some(r) = &m.report_query {
            let _ = writeln!(
                out,
                "  report query: REPEATABLE READ over {}, open {} ms into the migration",
                r.tables.join(", "),
                r.held_ms
            );
        }
        if !m.waits.is_empty() {
            let waits: Vec<String> = m
                .waits
                .iter()
                .map(|w| {
                    format!(
                        "{} reads {} ms, writes {} ms",
                        w.table, w.read_wait_ms, w.write_wait_ms
                    )
                })
                .collect();
            let _ = writeln!(out, "  longest probe wait: {}", waits.join("; "));
        }
    }
    out
}

/// `pg_locks` modes from weakest to strongest.
pub const MODES: [&str; 8] = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

/// The strength of a table lock mode (0 for unknown modes, 1 to 8 by [`MODES`]).
pub fn strength(mode: &str) -> usize {
    MODES.iter().position(|m| *m == mode).map_or(0, |p| p + 1)
}

/// True when `mode` makes the application's writes (ROW EXCLUSIVE) wait.
pub fn blocks_writes(mode: &str) -> bool {
    strength(mode) >= strength("ShareLock")
}

/// True when `mode` makes the application's reads (ACCESS SHARE) wait.
pub fn blocks_reads(mode: &str) -> bool {
    mode == "AccessExclusiveLock"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sql_is_shortened_to_one_line() {
        assert_eq!(
            short("ALTER TABLE t\n   ADD COLUMN x int", 48),
            "ALTER TABLE t ADD COLUMN x int"
        );
        let long = "x".repeat(60);
        assert_eq!(short(&long, 10).chars().count(), 10);
    }

    #[test]
    fn renders_a_row_per_statement() {
        let trace = LockTrace {
            rows: 20000,
            table_rows: BTreeMap::new(),
            lock_threshold_ms: 1000,
            migrations: vec![MigrationTrace {
                migration: "0002_index".into(),
                duration_ms: 14,
                statements: vec![StatementTrace {
                    statement: 1,
                    line: 1,
                    sql: "CREATE INDEX orders_email ON orders (email)".into(),
                    transaction: 1,
                    in_transaction: true,
                    duration_ms: 12,
                    locks: vec![LockTaken {
                        relation: "public.orders".into(),
                        kind: "table".into(),
                        mode: "ShareLock".into(),
                        held_ms: 13,
                    }],
                    longest_wait_ms: 11,
                    lock_wait_ms: 40,
                    traffic: Traffic {
                        waited: 3,
                        wait_p50_ms: 9,
                        wait_max_ms: 11,
                        failed: 0,
                        queue_max: 2,
                    },
                    ..Default::default()
                }],
                report_query: Some(ReportQuery {
                    tables: vec!["public.orders".into()],
                    held_ms: 52,
                }),
                waits: vec![TableWait {
                    table: "public.orders".into(),
                    read_wait_ms: 0,
                    write_wait_ms: 11,
                    longest_wait_ms: 11,
                }],
                ..Default::default()
            }],
        };
        let text = render_human(&trace, false);
        assert!(text.contains("public.orders ShareLock (13 ms)"), "{text}");
        assert!(
            text.contains("public.orders reads 0 ms, writes 11 ms"),
            "{text}"
        );
        assert!(
            text.contains(
                "waited 40 ms for its lock; 3 probe queries waited (p50 9 ms, max 11 ms), 0 \
                 failed, up to 2 session(s) queued for a lock"
            ),
            "{text}"
        );
        assert!(
            text.contains("report query: REPEATABLE READ over public.orders, open 52 ms"),
            "{text}"
        );
    }
}

//! The lock hazard rules: pure verdicts over a traced migration. Each rule has an id, a level,
//! a fix hint (the safe pattern) and, under `examples/locks/<id>/` and `<id>_safe/`, a
//! migration that makes it fire and a safe twin that does not (`tests/locks.rs`).

use std::collections::BTreeSet;

use crate::observe::locks::{blocks_reads, blocks_writes, strength};
use crate::report::locks::{LockTaken, LockTrace, MigrationTrace, StatementTrace};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A table (or one of its indexes) was rewritten under a lock that blocks reads or writes.
    Rewrite,
    /// An index was built on an existing table without CONCURRENTLY.
    IndexNotConcurrent,
    /// A CHECK or foreign key was added to an existing table without NOT VALID.
    ConstraintNotValid,
    /// SET NOT NULL scanned an existing table.
    SetNotNull,
    /// ACCESS EXCLUSIVE was requested with no lock_timeout (a warning).
    AccessExclusiveWithoutLockTimeout,
    /// A lock that blocks reads or writes was held longer than the threshold.
    LockHeldTooLong,
}

/// Every rule, in the order findings are reported.
pub const RULES: &[Rule] = &[
    Rule::Rewrite,
    Rule::IndexNotConcurrent,
    Rule::ConstraintNotValid,
    Rule::SetNotNull,
    Rule::AccessExclusiveWithoutLockTimeout,
    Rule::LockHeldTooLong,
];

impl Rule {
    pub fn id(self) -> &'static str {
        match self {
            Rule::Rewrite => "rewrite",
            Rule::IndexNotConcurrent => "index_not_concurrent",
            Rule::ConstraintNotValid => "constraint_not_valid",
            Rule::SetNotNull => "set_not_null",
            Rule::AccessExclusiveWithoutLockTimeout => "access_exclusive_without_lock_timeout",
            Rule::LockHeldTooLong => "lock_held_too_long",
        }
    }

    /// Warnings are notes; the other rules are findings (unless `check --locks warn`).
    pub fn is_warning(self) -> bool {
        self == Rule::AccessExclusiveWithoutLockTimeout
    }

    /// The safe pattern.
    pub fn hint(self) -> &'static str {
        match self {
            Rule::Rewrite => {
                "avoid the rewrite: add a new column (nullable or with a constant default), \
                 backfill it in batches, switch the application to it, then drop the old one; to \
                 cap a text length use CHECK (length(col) <= n) NOT VALID and VALIDATE it in a \
                 later migration; widening varchar(n) or numeric precision keeps the table's \
                 file, but indexes on expressions of the column are still rebuilt: drop them \
                 first and re-create them CONCURRENTLY"
            }
            Rule::IndexNotConcurrent => {
                "build it with CREATE INDEX CONCURRENTLY in a migration of its own that runs \
                 outside a transaction (sqlx: first line `-- no-transaction`); for a unique \
                 constraint or primary key, build the unique index concurrently, then ADD \
                 CONSTRAINT ... USING INDEX"
            }
            Rule::ConstraintNotValid => {
                "add the constraint with NOT VALID (only new rows are checked, the lock is \
                 brief), then VALIDATE CONSTRAINT in a later migration: it scans under SHARE \
                 UPDATE EXCLUSIVE, which lets reads and writes go on"
            }
            Rule::SetNotNull => {
                "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it in a later \
                 migration, then SET NOT NULL (PostgreSQL 12+ skips the scan when a valid \
                 CHECK proves it) and drop the CHECK"
            }
            Rule::AccessExclusiveWithoutLockTimeout => {
                "start the migration with SET lock_timeout = '2s' (SET LOCAL inside its \
                 transaction) and retry when it times out: an ACCESS EXCLUSIVE request waiting \
                 behind a long query makes every later query on the table queue behind it"
            }
            Rule::LockHeldTooLong => {
                "keep slow work out of the transaction that holds the lock: backfill in \
                 batches in their own transactions, build indexes CONCURRENTLY, add \
                 constraints NOT VALID and validate them later"
            }
        }
    }
}

/// One rule that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hazard {
    pub rule: Rule,
    pub migration: String,
    pub table: String,
    pub lock_mode: String,
    pub duration_ms: u64,
    pub message: String,
    /// The 1-based line of the statement in the migration's file.
    pub line: usize,
}

/// The strongest lock on `relation` held while statement `at` (an index into `m.statements`)
/// ran: taken by it or by an earlier statement of the same transaction.
fn held<'a>(m: &'a MigrationTrace, at: usize, relation: &str) -> Option<&'a LockTaken> {
    let tx = m.statements[at].transaction;
    m.statements[..=at]
        .iter()
        .filter(|s| s.transaction == tx)
        .flat_map(|s| &s.locks)
        .filter(|l| l.relation == relation)
        .max_by_key(|l| strength(&l.mode))
}

fn is_table_like(lock: &LockTaken) -> bool {
    matches!(
        lock.kind.as_str(),
        "table" | "partitioned table" | "materialized view" | "view"
    )
}

/// What the application cannot do on `table` while `mode` is held.
fn blocked(mode: &str, table: &str) -> String {
    if blocks_reads(mode) {
        format!("reads and writes of {table} wait")
    } else {
        format!("writes to {table} wait")
    }
}

/// `sql` (file:line): how a statement is named in messages.
fn named(m: &MigrationTrace, s: &StatementTrace) -> String {
    let flat: String = s.sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let sql = if flat.chars().count() > 80 {
        format!("{}…", flat.chars().take(79).collect::<String>())
    } else {
        flat
    };
    format!("`{sql}` ({}:{})", m.file, s.line)
}

/// Every hazard of every traced migration.
pub fn evaluate(trace: &LockTrace) -> Vec<Hazard> {
    let mut out = Vec::new();
    for m in &trace.migrations {
        out.extend(migration(m, trace));
    }
    out
}

fn migration(m: &MigrationTrace, trace: &LockTrace) -> Vec<Hazard> {
    let threshold_ms = trace.lock_threshold_ms;
    let mut out = Vec::new();
    let line = std::cell::Cell::new(0);
    let mut hazard = |rule: Rule, table: &str, lock: &LockTaken, message: String| {
        out.push(Hazard {
            rule,
            migration: m.migration.clone(),
            table: table.to_owned(),
            lock_mode: lock.mode.clone(),
            duration_ms: lock.held_ms,
            message,
            line: line.get(),
        });
    };
    // The size the table was filled to: `[locks.rows]`, else `--rows`.
    let size = |table: &str| match trace.table_rows.get(table) {
        Some(n) => format!("at {n} rows in {table} ([locks.rows])"),
        None => format!("at {} rows per table", trace.rows),
    };
    let mut warned: BTreeSet<String> = BTreeSet::new();
    for (i, s) in m.statements.iter().enumerate() {
        line.set(s.line);
        let name = named(m, s);
        let mut rewritten: BTreeSet<&str> = BTreeSet::new();
        for r in &s.rewrites {
            if !rewritten.insert(&r.table) {
                continue;
            }
            let Some(lock) = held(m, i, &r.table).filter(|l| blocks_writes(&l.mode)) else {
                continue;
            };
            let what = if r.relation == r.table {
                "rewrote".to_string()
            } else {
                format!("rebuilt index {} of", r.relation)
            };
            let message =
                format!(
                "{name} {what} {} (its data file was replaced) under {}, held {} ms {at_rows}: {} \
                 until the transaction ends",
                r.table, lock.mode, lock.held_ms, blocked(&lock.mode, &r.table),
                at_rows = size(&r.table)
            );
            hazard(Rule::Rewrite, &r.table, lock, message);
        }
        for b in s.index_builds.iter().filter(|b| !b.concurrent) {
            let Some(lock) = held(m, i, &b.table) else {
                continue;
            };
            let message =
                format!(
                "{name} built index {} on the existing table {} without CONCURRENTLY, under {} \
                 held {} ms {at_rows}: {} until the transaction ends",
                b.index, b.table, lock.mode, lock.held_ms, blocked(&lock.mode, &b.table),
                at_rows = size(&b.table)
            );
            hazard(Rule::IndexNotConcurrent, &b.table, lock, message);
        }
        for v in &s.validations {
            let Some(lock) = held(m, i, &v.table) else {
                continue;
            };
            let (rule, what) = match (v.kind.as_str(), v.how.as_str()) {
                ("check", "added") => (
                    Rule::ConstraintNotValid,
                    format!("added CHECK constraint {}", v.object),
                ),
                ("foreign_key", "added") => (
                    Rule::ConstraintNotValid,
                    format!("added foreign key {}", v.object),
                ),
                ("not_null", "set_not_null") if v.scanned => (
                    Rule::SetNotNull,
                    format!("set NOT NULL on column {}", v.object),
                ),
                _ => continue,
            };
            if !blocks_writes(&lock.mode) {
                continue;
            }
            let message =
                format!(
                "{name} {what} of the existing table {} and checked every row under {}, held {} \
                 ms {at_rows}: {} until the transaction ends",
                v.table, lock.mode, lock.held_ms, blocked(&lock.mode, &v.table),
                at_rows = size(&v.table)
            );
            hazard(rule, &v.table, lock, message);
        }
        if s.lock_timeout == "0" {
            for lock in s
                .locks
                .iter()
                .filter(|l| l.mode == "AccessExclusiveLock" && is_table_like(l))
            {
                if !warned.insert(lock.relation.clone()) {
                    continue;
                }
                let message = format!(
                    "{name} took AccessExclusiveLock on {} with no lock_timeout set: had it \
                     waited behind a long-running query, every read and write of {} would have \
                     queued behind it",
                    lock.relation, lock.relation
                );
                hazard(
                    Rule::AccessExclusiveWithoutLockTimeout,
                    &lock.relation,
                    lock,
                    message,
                );
            }
        }
    }
    // One finding per table: its strongest lock held past the threshold.
    let mut long: Vec<(&StatementTrace, &LockTaken)> = Vec::new();
    for s in &m.statements {
        for lock in s
            .locks
            .iter()
            .filter(|l| is_table_like(l) && blocks_writes(&l.mode))
        {
            if lock.held_ms <= threshold_ms {
                continue;
            }
            match long.iter_mut().find(|(_, l)| l.relation == lock.relation) {
                Some(entry) if strength(&entry.1.mode) < strength(&lock.mode) => *entry = (s, lock),
                Some(_) => {}
                None => long.push((s, lock)),
            }
        }
    }
    for (s, lock) in long {
        let message = format!(
            "{} on {} was held {} ms {at_rows} (threshold {threshold_ms} ms), from {} until its \
             transaction ended: {} all that time",
            lock.mode,
            lock.relation,
            lock.held_ms,
            named(m, s),
            blocked(&lock.mode, &lock.relation),
            at_rows = size(&lock.relation)
        );
        hazard(Rule::LockHeldTooLong, &lock.relation, lock, message);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::locks::{IndexBuild, Rewrite, Validation};

    fn lock(relation: &str, mode: &str, held_ms: u64) -> LockTaken {
        LockTaken {
            relation: relation.into(),
            kind: "table".into(),
            mode: mode.into(),
            held_ms,
        }
    }

    fn statement(sql: &str, locks: Vec<LockTaken>) -> StatementTrace {
        StatementTrace {
            statement: 1,
            line: 1,
            sql: sql.into(),
            transaction: 1,
            in_transaction: true,
            lock_timeout: "2s".into(),
            locks,
            ..StatementTrace::default()
        }
    }

    fn rules(
        statements: Vec<StatementTrace>,
        threshold_ms: u64,
    ) -> Vec<(&'static str, String, String)> {
        let m = MigrationTrace {
            migration: "0002_x".into(),
            file: "m/0002_x.up.sql".into(),
            statements,
            ..MigrationTrace::default()
        };
        let trace = LockTrace {
            rows: 100,
            lock_threshold_ms: threshold_ms,
            ..LockTrace::default()
        };
        migration(&m, &trace)
            .into_iter()
            .map(|h| (h.rule.id(), h.table, h.lock_mode))
            .collect()
    }

    #[test]
    fn a_rewrite_under_access_exclusive_is_a_hazard() {
        let mut s = statement(
            "ALTER TABLE t ALTER c TYPE varchar(32)",
            vec![lock("public.t", "AccessExclusiveLock", 5)],
        );
        s.rewrite = true;
        s.rewrites = vec![Rewrite {
            table: "public.t".into(),
            relation: "public.t".into(),
        }];
        assert_eq!(
            rules(vec![s], 1000),
            [("rewrite", "public.t".into(), "AccessExclusiveLock".into())]
        );
    }

    #[test]
    fn a_concurrent_index_or_a_later_validate_is_not() {
        let mut s = statement(
            "CREATE INDEX CONCURRENTLY i ON t (c)",
            vec![lock("public.t", "ShareUpdateExclusiveLock", 50)],
        );
        s.index_builds = vec![IndexBuild {
            index: "public.i".into(),
            table: "public.t".into(),
            concurrent: true,
        }];
        s.validations = vec![Validation {
            table: "public.t".into(),
            kind: "check".into(),
            object: "c".into(),
            how: "validate".into(),
            scanned: true,
        }];
        assert_eq!(rules(vec![s], 10), []);
    }

    #[test]
    fn a_plain_index_names_the_share_lock_taken_earlier_in_the_transaction() {
        let first = statement(
            "LOCK t IN SHARE MODE",
            vec![lock("public.t", "ShareLock", 9)],
        );
        let mut second = statement("CREATE INDEX i ON t (c)", vec![]);
        second.statement = 2;
        second.index_builds = vec![IndexBuild {
            index: "public.i".into(),
            table: "public.t".into(),
            concurrent: false,
        }];
        assert_eq!(
            rules(vec![first, second], 1000),
            [(
                "index_not_concurrent",
                "public.t".into(),
                "ShareLock".into()
            )]
        );
    }

    #[test]
    fn access_exclusive_without_timeout_warns_once_per_table() {
        let mut a = statement(
            "ALTER TABLE t ADD a int",
            vec![lock("public.t", "AccessExclusiveLock", 1)],
        );
        a.lock_timeout = "0".into();
        let mut b = a.clone();
        b.transaction = 2;
        let hazards = rules(vec![a, b], 1000);
        assert_eq!(
            hazards,
            [(
                "access_exclusive_without_lock_timeout",
                "public.t".into(),
                "AccessExclusiveLock".into()
            )]
        );
        assert!(Rule::AccessExclusiveWithoutLockTimeout.is_warning());
    }

    #[test]
    fn only_locks_that_block_the_application_can_be_held_too_long() {
        let s = statement(
            "UPDATE t SET a = 1",
            vec![
                lock("public.t", "RowExclusiveLock", 5000),
                lock("public.u", "ShareLock", 1500),
            ],
        );
        assert_eq!(
            rules(vec![s], 1000),
            [("lock_held_too_long", "public.u".into(), "ShareLock".into())]
        );
    }

    #[test]
    fn every_rule_has_a_distinct_id_and_a_hint() {
        let ids: BTreeSet<&str> = RULES.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), RULES.len());
        assert!(RULES.iter().all(|r| r.hint().len() > 40));
    }
}

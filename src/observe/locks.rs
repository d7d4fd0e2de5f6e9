//! The lock trace's observations: the state of the migrating backend read on its own connection
//! between statements (relation files, constraints, NOT NULL columns, scans, locks held,
//! `lock_timeout`), what one statement changed in it ([`changes`]), and a [`Sampler`] that
//! polls `pg_locks` and `pg_stat_activity` from a second connection while a migration runs: the
//! locks of the migrating backend (for statements that cannot run in a transaction block), and
//! the queue of backends waiting for a lock. Read-only; judging is left to
//! `crate::locks::rules`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sqlx::postgres::PgConnection;
use tokio::sync::{mpsc, watch};

use crate::backend::ScratchDb;
use crate::report::locks::{IndexBuild, Rewrite, Validation};

const STATE: &str = include_str!("queries/lock_state.sql");
const SAMPLE: &str = include_str!("queries/lock_sample.sql");

/// A relation of the user's schemas.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Relation {
    pub oid: i64,
    pub schema: String,
    pub name: String,
    /// `pg_class.relkind`.
    pub kind: String,
    /// `relnatts`: columns numbered above it were added later.
    pub columns: i32,
    /// `pg_relation_filenode`; none for relations without storage.
    pub filenode: Option<i64>,
    /// For an index, the table it indexes.
    pub table: Option<i64>,
}

impl Relation {
    /// `schema.name`, for people.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// True for relations that hold rows the application reads and writes.
    pub fn is_table(&self) -> bool {
        matches!(self.kind.as_str(), "r" | "p")
    }

    pub fn is_index(&self) -> bool {
        matches!(self.kind.as_str(), "i" | "I")
    }

    /// What `relkind` means, for the report.
    pub fn kind_name(&self) -> &'static str {
        match self.kind.as_str() {
            "r" => "table",
            "p" => "partitioned table",
            "i" | "I" => "index",
            "S" => "sequence",
            "v" => "view",
            "m" => "materialized view",
            "f" => "foreign table",
            _ => "relation",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Constraint {
    pub oid: i64,
    pub table: i64,
    pub name: String,
    /// `c` (CHECK) or `f` (foreign key).
    pub kind: String,
    pub validated: bool,
}

/// The migrating backend's view of the database at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct State {
    pub lock_timeout: String,
    pub relations: Vec<Relation>,
    pub constraints: Vec<Constraint>,
    /// (table oid, attnum, column name) of every NOT NULL column.
    pub not_null: Vec<(i64, i32, String)>,
    /// (table oid, sequential scans this backend has not reported yet).
    pub scans: Vec<(i64, i64)>,
    /// (relation oid, mode) of every granted relation lock of this backend.
    pub locks: Vec<(i64, String)>,
}

impl State {
    /// Reads the state on `conn`, the migrating connection (inside its transaction, if any).
    pub async fn read(conn: &mut PgConnection) -> Result<State, sqlx::Error> {
        let text: String = sqlx::query_scalar(STATE).fetch_one(conn).await?;
        serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }

    pub fn relation(&self, oid: i64) -> Option<&Relation> {
        self.relations.iter().find(|r| r.oid == oid)
    }

    fn scans_of(&self, table: i64) -> i64 {
        self.scans
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n)
    }
}

/// The relations that existed before a migration, by oid: only locks on these are traced.
#[derive(Debug, Clone, Default)]
pub struct Existing(pub BTreeMap<i64, Relation>);

impl Existing {
    pub fn from_state(state: &State) -> Existing {
        Existing(state.relations.iter().map(|r| (r.oid, r.clone())).collect())
    }

    pub fn get(&self, oid: i64) -> Option<&Relation> {
        self.0.get(&oid)
    }

    fn name(&self, oid: i64) -> String {
        self.get(oid)
            .map(Relation::display_name)
            .unwrap_or_else(|| format!("relation {oid}"))
    }

    /// The existing tables, by oid.
    pub fn tables(&self) -> BTreeMap<i64, Relation> {
        self.0
            .iter()
            .filter(|(_, r)| r.is_table())
            .map(|(o, r)| (*o, r.clone()))
            .collect()
    }
}

/// What one statement did to relations that existed before its migration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// (relation oid, mode) of the locks held after the statement.
    pub locks: Vec<(i64, String)>,
    pub rewrites: Vec<Rewrite>,
    /// New indexes on existing tables (`concurrent` is left false: the runner knows).
    pub index_builds: Vec<IndexBuild>,
    pub validations: Vec<Validation>,
}

/// Compares the state before a statement (`prev`) with the state after it (`now`), keeping
/// what concerns relations in `existing`. `prev` and `now` must be read in the same
/// transaction for scan counts to mean anything; `scans_known` says whether they were.
pub fn changes(existing: &Existing, prev: &State, now: &State, scans_known: bool) -> Changes {
    let mut out = Changes {
        locks: now
            .locks
            .iter()
            .filter(|(oid, _)| existing.get(*oid).is_some())
            .cloned()
            .collect(),
        ..Changes::default()
    };
    let is_existing_table = |oid: i64| existing.get(oid).is_some_and(Relation::is_table);
    let scanned = |table: i64| scans_known && now.scans_of(table) > prev.scans_of(table);

    // A relation that keeps its oid but gets a new file was rewritten.
    for r in &now.relations {
        let Some(old) = prev.relation(r.oid) else {
            continue;
        };
        let table = if r.is_index() {
            r.table.unwrap_or(0)
        } else {
            r.oid
        };
        if existing.get(r.oid).is_none() || (!is_existing_table(table) && r.kind != "m") {
            continue;
        }
        if r.filenode.is_some() && old.filenode.is_some() && r.filenode != old.filenode {
            out.rewrites.push(Rewrite {
                table: existing.name(table),
                relation: existing.name(r.oid),
            });
        }
    }

    // New indexes on existing tables. ALTER TABLE re-creates the indexes of a column whose
    // type changes under new oids and the same names: such an index replaces one the same
    // statement dropped, and it is a rebuild (a rewrite) unless it kept the old file.
    let now_oids: BTreeSet<i64> = now.relations.iter().map(|r| r.oid).collect();
    let dropped: BTreeMap<(i64, &str), Option<i64>> = prev
        .relations
        .iter()
        .filter(|r| r.is_index() && !now_oids.contains(&r.oid))
        .map(|r| ((r.table.unwrap_or(0), r.name.as_str()), r.filenode))
        .collect();
    for r in &now.relations {
        let table = r.table.unwrap_or(0);
        if !r.is_index() || prev.relation(r.oid).is_some() || !is_existing_table(table) {
            continue;
        }
        if let Some(old_file) = dropped.get(&(table, r.name.as_str())) {
            if *old_file != r.filenode {
                out.rewrites.push(Rewrite {
                    table: existing.name(table),
                    relation: r.display_name(),
                });
            }
            continue;
        }
        out.index_builds.push(IndexBuild {
            index: r.display_name(),
            table: existing.name(table),
            concurrent: false,
        });
    }

    // Constraints checked against every row: added valid, or validated later.
    let prev_constraints: HashMap<i64, &Constraint> =
        prev.constraints.iter().map(|c| (c.oid, c)).collect();
    for c in &now.constraints {
        if !c.validated || !is_existing_table(c.table) {
            continue;
        }
        let how = match prev_constraints.get(&c.oid) {
            None => "added",
            Some(old) if !old.validated => "validate",
            Some(_) => continue,
        };
        out.validations.push(Validation {
            table: existing.name(c.table),
            kind: if c.kind == "f" {
                "foreign_key"
            } else {
                "check"
            }
            .into(),
            object: c.name.clone(),
            how: how.into(),
            scanned: true,
        });
    }

    // SET NOT NULL on a column that existed before the migration; PostgreSQL skips the scan
    // when a valid CHECK constraint already proves it.
    let prev_not_null: BTreeSet<(i64, i32)> =
        prev.not_null.iter().map(|(t, a, _)| (*t, *a)).collect();
    for (table, attnum, column) in &now.not_null {
        let Some(rel) = existing.get(*table).filter(|r| r.is_table()) else {
            continue;
        };
        if prev_not_null.contains(&(*table, *attnum)) || *attnum > rel.columns {
            continue;
        }
        out.validations.push(Validation {
            table: rel.display_name(),
            kind: "not_null".into(),
            object: column.clone(),
            how: "set_not_null".into(),
            scanned: scanned(*table),
        });
    }
    out
}

/// A span of time during which the migrating backend was seen holding one lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub oid: i64,
    pub mode: String,
    pub first: Instant,
    pub last: Instant,
}

/// One look at the lock queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSample {
    pub at: Instant,
    /// Backends of the scratch database waiting for a lock (the migrating one included).
    pub waiting: u32,
    /// Whether the migrating backend was one of them.
    pub migration_waits: bool,
}

/// What the sampler saw.
#[derive(Debug, Default)]
struct Samples {
    seen: Vec<Seen>,
    queue: Vec<QueueSample>,
}

/// Polls `pg_locks` and `pg_stat_activity` from a second connection for as long as a migration
/// runs. It records when each lock of the migrating backend on an existing relation was seen
/// granted, how many backends waited for a lock, and announces every existing table the
/// migration locks or waits to lock, once, on `touched` (the probe starts on it: a table the
/// migration queues for is where the application queues behind it).
pub struct Sampler {
    samples: Arc<Mutex<Samples>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// How often the sampler polls.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(3);

impl Sampler {
    pub async fn start(
        db: &ScratchDb,
        pid: i32,
        existing: &Existing,
        touched: mpsc::UnboundedSender<i64>,
    ) -> Result<Sampler, sqlx::Error> {
        let mut conn = db.connect().await?;
        let samples: Arc<Mutex<Samples>> = Arc::default();
        let (stop, mut stopped) = watch::channel(false);
        let existing = existing.clone();
        let record = Arc::clone(&samples);
        let task = tokio::spawn(async move {
            let mut open: HashMap<(i64, String), usize> = HashMap::new();
            let mut announced: BTreeSet<i64> = BTreeSet::new();
            while !*stopped.borrow() {
                let Ok((waiting, migration_waits, locks)) =
                    sqlx::query_as::<_, (i64, bool, String)>(SAMPLE)
                        .bind(pid)
                        .fetch_one(&mut conn)
                        .await
                else {
                    break;
                };
                let rows: Vec<(i64, String, bool)> =
                    serde_json::from_str(&locks).unwrap_or_default();
                let now = Instant::now();
                let mut still = HashMap::new();
                {
                    let mut samples = record.lock().expect("not poisoned");
                    samples.queue.push(QueueSample {
                        at: now,
                        waiting: u32::try_from(waiting).unwrap_or(u32::MAX),
                        migration_waits,
                    });
                    for (oid, mode, granted) in rows {
                        let Some(rel) = existing.get(oid) else {
                            continue;
                        };
                        if rel.is_table() && announced.insert(oid) {
                            let _ = touched.send(oid);
                        }
                        if !granted {
                            continue;
                        }
                        let key = (oid, mode);
                        let at = match open.get(&key) {
                            Some(&at) => {
                                samples.seen[at].last = now;
                                at
                            }
                            None => {
                                samples.seen.push(Seen {
                                    oid,
                                    mode: key.1.clone(),
                                    first: now,
                                    last: now,
                                });
                                samples.seen.len() - 1
                            }
                        };
                        still.insert(key, at);
                    }
                }
                open = still;
                tokio::select! {
                    _ = tokio::time::sleep(SAMPLE_EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
        });
        Ok(Sampler {
            samples,
            stop,
            task,
        })
    }

    /// Locks seen granted at some time between `from` and `to`.
    pub fn seen_between(&self, from: Instant, to: Instant) -> Vec<Seen> {
        let samples = self.samples.lock().expect("not poisoned");
        samples
            .seen
            .iter()
            .filter(|s| s.last >= from && s.first <= to)
            .cloned()
            .collect()
    }

    /// The queue samples taken between `from` and `to`.
    pub fn queue_between(&self, from: Instant, to: Instant) -> Vec<QueueSample> {
        let samples = self.samples.lock().expect("not poisoned");
        samples
            .queue
            .iter()
            .filter(|q| q.at >= from && q.at <= to)
            .copied()
            .collect()
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The most backends seen waiting for a lock at once among `samples`.
pub fn deepest(samples: &[QueueSample]) -> u32 {
    samples.iter().map(|q| q.waiting).max().unwrap_or(0)
}

/// How long a statement that ran from `from` to `to` waited for its locks, by the `samples`
/// taken meanwhile: up to the first sample after the last one that saw the migrating backend
/// wait (`to` when there is none), zero when none saw it wait. Accurate to a sampling interval.
pub fn lock_wait(samples: &[QueueSample], from: Instant, to: Instant) -> Duration {
    let Some(last) = samples.iter().rposition(|q| q.migration_waits) else {
        return Duration::ZERO;
    };
    let granted = samples[last + 1..]
        .iter()
        .find(|q| !q.migration_waits)
        .map_or(to, |q| q.at.min(to));
    granted.saturating_duration_since(from)
}

pub use crate::report::locks::{blocks_reads, blocks_writes, strength, MODES};

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(oid: i64, name: &str, kind: &str, filenode: i64, table: Option<i64>) -> Relation {
        Relation {
            oid,
            schema: "public".into(),
            name: name.into(),
            kind: kind.into(),
            columns: 3,
            filenode: Some(filenode),
            table,
        }
    }

    fn state(relations: Vec<Relation>) -> State {
        State {
            lock_timeout: "0".into(),
            relations,
            ..State::default()
        }
    }

    #[test]
    fn a_new_file_is_a_rewrite_and_a_new_index_a_build() {
        let before = state(vec![
            rel(1, "t", "r", 10, None),
            rel(2, "t_pkey", "i", 11, Some(1)),
        ]);
        let existing = Existing::from_state(&before);
        let mut after = before.clone();
        after.relations[0].filenode = Some(20);
        after.relations.push(rel(3, "t_email", "i", 21, Some(1)));
        after.locks = vec![
            (1, "AccessExclusiveLock".into()),
            (99, "AccessShareLock".into()),
        ];
        let c = changes(&existing, &before, &after, true);
        assert_eq!(c.locks, [(1, "AccessExclusiveLock".to_string())]);
        assert_eq!(
            c.rewrites,
            [Rewrite {
                table: "public.t".into(),
                relation: "public.t".into()
            }]
        );
        assert_eq!(c.index_builds[0].index, "public.t_email");
        assert_eq!(c.index_builds[0].table, "public.t");
    }

    #[test]
    fn an_index_re_created_by_alter_type_is_a_rebuild_or_nothing_not_a_build() {
        let before = state(vec![
            rel(1, "t", "r", 10, None),
            rel(2, "t_n", "i", 11, Some(1)),
        ]);
        let existing = Existing::from_state(&before);
        let kept = state(vec![
            rel(1, "t", "r", 10, None),
            rel(3, "t_n", "i", 11, Some(1)),
        ]);
        assert_eq!(changes(&existing, &before, &kept, true), Changes::default());
        let rebuilt = state(vec![
            rel(1, "t", "r", 10, None),
            rel(3, "t_n", "i", 12, Some(1)),
        ]);
        let c = changes(&existing, &before, &rebuilt, true);
        assert!(c.index_builds.is_empty());
        assert_eq!(
            c.rewrites,
            [Rewrite {
                table: "public.t".into(),
                relation: "public.t_n".into()
            }]
        );
    }

    #[test]
    fn set_not_null_scans_unless_a_check_proves_it_and_new_columns_do_not_count() {
        let mut before = state(vec![rel(1, "t", "r", 10, None)]);
        before.scans = vec![(1, 4)];
        let existing = Existing::from_state(&before);
        let mut after = before.clone();
        after.not_null = vec![(1, 2, "email".into()), (1, 4, "added_now".into())];
        let c = changes(&existing, &before, &after, true);
        assert_eq!(c.validations.len(), 1);
        assert_eq!(c.validations[0].object, "email");
        assert!(!c.validations[0].scanned);
        after.scans = vec![(1, 5)];
        assert!(changes(&existing, &before, &after, true).validations[0].scanned);
    }

    #[test]
    fn constraints_added_valid_or_validated_later() {
        let mut before = state(vec![rel(1, "t", "r", 10, None)]);
        before.constraints = vec![Constraint {
            oid: 7,
            table: 1,
            name: "t_fk".into(),
            kind: "f".into(),
            validated: false,
        }];
        let existing = Existing::from_state(&before);
        let mut after = before.clone();
        after.constraints[0].validated = true;
        after.constraints.push(Constraint {
            oid: 8,
            table: 1,
            name: "t_check".into(),
            kind: "c".into(),
            validated: true,
        });
        let c = changes(&existing, &before, &after, true);
        let hows: Vec<(&str, &str)> = c
            .validations
            .iter()
            .map(|v| (v.object.as_str(), v.how.as_str()))
            .collect();
        assert_eq!(hows, [("t_fk", "validate"), ("t_check", "added")]);
    }

    #[test]
    fn the_lock_wait_ends_at_the_first_sample_after_the_last_that_saw_the_migration_wait() {
        let t0 = Instant::now();
        let at = |ms: u64, waiting: u32, migration_waits: bool| QueueSample {
            at: t0 + Duration::from_millis(ms),
            waiting,
            migration_waits,
        };
        let end = t0 + Duration::from_millis(100);
        let never = [at(5, 2, false), at(10, 0, false)];
        assert_eq!(lock_wait(&never, t0, end), Duration::ZERO);
        let waited = [
            at(5, 1, true),
            at(40, 3, true),
            at(45, 0, false),
            at(50, 0, false),
        ];
        assert_eq!(lock_wait(&waited, t0, end), Duration::from_millis(45));
        assert_eq!(deepest(&waited), 3);
        // still waiting at the last sample: granted by the time the statement ended
        let to_the_end = [at(5, 1, true), at(90, 1, true)];
        assert_eq!(lock_wait(&to_the_end, t0, end), Duration::from_millis(100));
        assert_eq!(deepest(&[]), 0);
    }

    #[test]
    fn lock_strength_order() {
        assert!(blocks_writes("ShareLock") && !blocks_reads("ShareLock"));
        assert!(!blocks_writes("ShareUpdateExclusiveLock"));
        assert!(blocks_reads("AccessExclusiveLock"));
        assert!(strength("AccessExclusiveLock") > strength("ExclusiveLock"));
    }
}

//! The reference state machine of a database's life: deploy a release, migrate up, down or to a
//! version, retry after an interruption, run the migrator again, write rows, arm a fault,
//! verify. Pure: the state says which version the database must be at (and so which golden
//! schema it must have) after every step; it never touches a database.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;
use serde::{Deserialize, Serialize};

use crate::observe::catalog::Table;

/// What the model knows of a project, computed once before fuzzing: per version (0 = empty),
/// the user's tables of the golden schema; per migration, its name and whether it has a down.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub ids: Vec<String>,
    pub has_down: Vec<bool>,
    /// `tables[v]`: the tables of golden version v.
    pub tables: Vec<Vec<Table>>,
    /// Release ends named by the user (versions); random per run when `None`.
    pub releases: Option<Vec<usize>>,
    /// The migrations are run by an external migrator (Alembic, `[command]`): an interruption
    /// is done to its process.
    #[serde(default)]
    pub external: bool,
}

impl Plan {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// True when every migration between `from` and `to` can be run in that direction.
    pub fn path_ok(&self, from: usize, to: usize) -> bool {
        to > from || (to..from).all(|v| self.has_down[v])
    }

    /// The name of migration `v` (from 1).
    fn name(&self, v: usize) -> &str {
        v.checked_sub(1)
            .and_then(|i| self.ids.get(i))
            .map_or("?", String::as_str)
    }

    /// Version `v` for people: the migration that brings the database there.
    fn version_name(&self, v: usize) -> String {
        match v {
            0 => "before any migration".into(),
            v => self.name(v).into(),
        }
    }

    /// Migrations `first..=last` for people: `0002_a..0005_b`, or the one name.
    fn span(&self, first: usize, last: usize) -> String {
        match last.cmp(&first) {
            std::cmp::Ordering::Less => "no migration".into(),
            std::cmp::Ordering::Equal => self.name(first).into(),
            std::cmp::Ordering::Greater => format!("{}..{}", self.name(first), self.name(last)),
        }
    }
}

thread_local! {
    static PLAN: RefCell<Option<Arc<Plan>>> = const { RefCell::new(None) };
}

/// Makes `plan` the plan of state machines created on this thread.
pub fn install(plan: Arc<Plan>) {
    PLAN.with(|p| *p.borrow_mut() = Some(plan));
}

fn installed() -> Arc<Plan> {
    PLAN.with(|p| p.borrow().clone())
        .expect("migproof: install a Plan before generating states")
}

/// A fault injected into the next migration step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The connection is killed before the migration's first statement.
    KillBefore,
    /// The connection is killed while a statement waits behind a concurrent transaction.
    KillWhileWaiting,
    /// The statement is cancelled while it waits behind a concurrent transaction that holds
    /// a lock and a snapshot (how a `CREATE INDEX CONCURRENTLY` gets interrupted).
    CancelWhileWaiting,
    /// `lock_timeout` expires while a concurrent transaction holds a competing lock.
    LockTimeout,
}

/// One value of a written row, symbolic so that shrinking and replay stay meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// Leave the column to its default.
    Default,
    Null,
    /// The k-th adversarial value of the column's type (see `seed`).
    Pick(u8),
    /// A reference to the k-th existing row of the referenced table.
    Ref(u8),
}

/// A transition of the database's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Deploy release r: migrate to its last version (down when it is older).
    Deploy(usize),
    MigrateUp,
    MigrateDown,
    MigrateTo(usize),
    /// Run the interrupted migrate again.
    Retry,
    /// Run the migrator again at the current version: must change nothing.
    RerunMigrator,
    WriteRows {
        table: String,
        rows: Vec<Vec<(String, Value)>>,
    },
    /// Arm a fault for the next migration step.
    Interrupt(Fault),
    Verify,
}

impl Step {
    /// The step as reports show it, `before` being the model's state before it: migrations by
    /// name and releases with their migrations. A release is numbered as in a saved case
    /// (`"deploy": 0` is `deploy release 0`). Written rows show their values symbolically here
    /// (`#3`: the column's fourth adversarial value); the system under test shows the values
    /// it wrote instead.
    pub fn describe(&self, before: &State) -> String {
        let plan = &before.plan;
        let v = before.version;
        match self {
            Step::Deploy(r) => {
                let Some(&last) = before.releases.get(*r) else {
                    return self.to_string();
                };
                let first = r
                    .checked_sub(1)
                    .and_then(|p| before.releases.get(p))
                    .map_or(1, |end| end + 1);
                let back = if last < v {
                    format!(", rolling back {}", plan.span(last + 1, v))
                } else if last > v && v + 1 != first {
                    format!(", applying {}", plan.span(v + 1, last))
                } else {
                    String::new()
                };
                format!("deploy release {r} ({}){back}", plan.span(first, last))
            }
            Step::MigrateUp => format!("migrate up one version (apply {})", plan.name(v + 1)),
            Step::MigrateDown => {
                format!("migrate down one version (roll back {})", plan.name(v))
            }
            Step::MigrateTo(t) => {
                let how = match t.cmp(&v) {
                    std::cmp::Ordering::Greater => format!(" (apply {})", plan.span(v + 1, *t)),
                    std::cmp::Ordering::Less => format!(" (roll back {})", plan.span(t + 1, v)),
                    std::cmp::Ordering::Equal => " (already there)".into(),
                };
                format!("migrate to {}{how}", plan.version_name(*t))
            }
            Step::Interrupt(fault) if plan.external => format!(
                "interrupt the next migration: {}",
                match fault {
                    Fault::KillBefore => "kill the migrator before it starts",
                    Fault::KillWhileWaiting | Fault::CancelWhileWaiting => {
                        "kill the migrator while its statement waits on a lock"
                    }
                    Fault::LockTimeout =>
                        "lock_timeout (through PGOPTIONS) expires behind a competing lock",
                }
            ),
            Step::Retry => match before.pending {
                Some((_, to)) => format!(
                    "retry the interrupted migrate (to {})",
                    plan.version_name(to)
                ),
                None => self.to_string(),
            },
            _ => self.to_string(),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Deploy(r) => write!(f, "deploy release {r}"),
            Step::MigrateUp => f.write_str("migrate up one version"),
            Step::MigrateDown => f.write_str("migrate down one version"),
            Step::MigrateTo(v) => write!(f, "migrate to version {v}"),
            Step::Retry => f.write_str("retry the interrupted migrate"),
            Step::RerunMigrator => f.write_str("run the migrator again"),
            Step::WriteRows { table, rows } => {
                let cells: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        let vals: Vec<String> = r
                            .iter()
                            .map(|(c, v)| match v {
                                Value::Default => format!("{c} = default"),
                                Value::Null => format!("{c} = NULL"),
                                Value::Pick(k) => format!("{c} = #{k}"),
                                Value::Ref(k) => format!("{c} = ref #{k}"),
                            })
                            .collect();
                        format!("({})", vals.join(", "))
                    })
                    .collect();
                write!(
                    f,
                    "{}: {}",
                    write_rows_head(table, rows.len()),
                    cells.join(" ")
                )
            }
            Step::Interrupt(fault) => write!(
                f,
                "interrupt the next migration: {}",
                match fault {
                    Fault::KillBefore => "kill the connection before it starts",
                    Fault::KillWhileWaiting =>
                        "kill the connection while a statement waits on a lock",
                    Fault::CancelWhileWaiting => "cancel the statement while it waits on a lock",
                    Fault::LockTimeout => "lock_timeout expires behind a competing lock",
                }
            ),
            Step::Verify => f.write_str("verify schema and data"),
        }
    }
}

/// `write 2 rows into public.t`: the start of a written-rows step as reports show it.
pub fn write_rows_head(table: &str, rows: usize) -> String {
    let plural = if rows == 1 { "" } else { "s" };
    format!("write {rows} row{plural} into {table}")
}

/// The model's state.
#[derive(Clone)]
pub struct State {
    pub plan: Arc<Plan>,
    /// Release ends (versions), ascending; the last is the newest version.
    pub releases: Vec<usize>,
    /// The version the database must be at.
    pub version: usize,
    /// A fault armed for the next migration step.
    pub fault: Option<Fault>,
    /// An interrupted migrate (from, to) waiting for `Retry`.
    pub pending: Option<(usize, usize)>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("releases", &self.releases)
            .field("version", &self.version)
            .field("fault", &self.fault)
            .field("pending", &self.pending)
            .finish()
    }
}

impl State {
    pub fn new(plan: Arc<Plan>, releases: Vec<usize>) -> State {
        State {
            plan,
            releases,
            version: 0,
            fault: None,
            pending: None,
        }
    }

    /// The version a migrate step aims at, if `step` is one.
    pub fn target(&self, step: &Step) -> Option<usize> {
        match step {
            Step::Deploy(r) => self.releases.get(*r).copied(),
            Step::MigrateUp => Some(self.version + 1),
            Step::MigrateDown => self.version.checked_sub(1),
            Step::MigrateTo(v) => Some(*v),
            _ => None,
        }
    }
}

/// The reference state machine.
pub struct Model;

/// Release ends from a random partition of 1..=n.
fn releases_strategy(plan: &Plan) -> BoxedStrategy<Vec<usize>> {
    if let Some(named) = &plan.releases {
        return Just(named.clone()).boxed();
    }
    let n = plan.len();
    if n <= 1 {
        return Just(vec![n]).boxed();
    }
    proptest::collection::vec(any::<bool>(), n - 1)
        .prop_map(move |cuts| {
            let mut ends: Vec<usize> = cuts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c)
                .map(|(i, _)| i + 1)
                .collect();
            ends.push(n);
            ends
        })
        .boxed()
}

fn value_strategy(
    table: &Table,
    column: &crate::observe::catalog::Column,
) -> Option<BoxedStrategy<Value>> {
    let sequence = table.sequence_defaults.contains(&column.name);
    if column.server_filled(sequence) {
        return None;
    }
    let is_fk = table
        .foreign_keys
        .iter()
        .any(|fk| fk.columns.contains(&column.name));
    let mut options: Vec<(u32, BoxedStrategy<Value>)> = Vec::new();
    if is_fk {
        options.push((4, (0u8..4).prop_map(Value::Ref).boxed()));
    } else {
        // A small pool makes duplicates likely; picks 6 and 7 are case variants.
        options.push((6, (0u8..8).prop_map(Value::Pick).boxed()));
    }
    if !column.not_null {
        options.push((1, Just(Value::Null).boxed()));
    }
    if column.has_default {
        options.push((1, Just(Value::Default).boxed()));
    }
    Some(proptest::strategy::Union::new_weighted(options).boxed())
}

fn rows_strategy(table: &Table) -> BoxedStrategy<Step> {
    let columns: Vec<(String, BoxedStrategy<Value>)> = table
        .columns
        .iter()
        .filter_map(|c| value_strategy(table, c).map(|s| (c.name.clone(), s)))
        .collect();
    let name = table.display_name();
    let row = columns
        .into_iter()
        .map(|(name, s)| s.prop_map(move |v| (name.clone(), v)))
        .collect::<Vec<_>>();
    proptest::collection::vec(row, 1..4)
        .prop_map(move |rows| Step::WriteRows {
            table: name.clone(),
            rows,
        })
        .boxed()
}

fn fault_strategy() -> BoxedStrategy<Fault> {
    prop_oneof![
        Just(Fault::CancelWhileWaiting),
        Just(Fault::KillWhileWaiting),
        Just(Fault::LockTimeout),
        Just(Fault::KillBefore),
    ]
    .boxed()
}

impl ReferenceStateMachine for Model {
    type State = State;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<State> {
        let plan = installed();
        releases_strategy(&plan)
            .prop_map(move |r| State::new(plan.clone(), r))
            .boxed()
    }

    fn transitions(state: &State) -> BoxedStrategy<Step> {
        if state.pending.is_some() {
            return Just(Step::Retry).boxed();
        }
        let n = state.plan.len();
        let v = state.version;
        let mut options: Vec<(u32, BoxedStrategy<Step>)> = vec![
            (3, (0..state.releases.len()).prop_map(Step::Deploy).boxed()),
            (2, (0..=n).prop_map(Step::MigrateTo).boxed()),
            (1, Just(Step::RerunMigrator).boxed()),
            (1, Just(Step::Verify).boxed()),
        ];
        if v < n {
            options.push((4, Just(Step::MigrateUp).boxed()));
        }
        if v > 0 && state.plan.has_down[v - 1] {
            options.push((3, Just(Step::MigrateDown).boxed()));
        }
        if state.fault.is_none() {
            options.push((2, fault_strategy().prop_map(Step::Interrupt).boxed()));
        }
        let tables = &state.plan.tables[v];
        if !tables.is_empty() {
            let writes: Vec<BoxedStrategy<Step>> = tables.iter().map(rows_strategy).collect();
            options.push((5, proptest::strategy::Union::new(writes).boxed()));
        }
        proptest::strategy::Union::new_weighted(options).boxed()
    }

    fn preconditions(state: &State, step: &Step) -> bool {
        if state.pending.is_some() {
            return *step == Step::Retry;
        }
        let n = state.plan.len();
        match step {
            Step::Retry => false,
            Step::Interrupt(_) => state.fault.is_none(),
            Step::RerunMigrator | Step::Verify => true,
            Step::WriteRows { table, .. } => state.plan.tables[state.version]
                .iter()
                .any(|t| t.display_name() == *table),
            Step::MigrateUp | Step::MigrateDown | Step::MigrateTo(_) | Step::Deploy(_) => {
                match state.target(step) {
                    Some(t) if t <= n => state.plan.path_ok(state.version, t),
                    _ => false,
                }
            }
        }
    }

    fn apply(mut state: State, step: &Step) -> State {
        match step {
            Step::Interrupt(f) => state.fault = Some(*f),
            Step::Retry => {
                if let Some((_, to)) = state.pending.take() {
                    state.version = to;
                }
            }
            Step::RerunMigrator | Step::Verify | Step::WriteRows { .. } => {}
            _ => {
                if let Some(target) = state.target(step) {
                    match state.fault.take() {
                        Some(_) if target != state.version => {
                            state.pending = Some((state.version, target));
                        }
                        _ => state.version = target,
                    }
                }
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn plan(n: usize, downs: bool) -> Arc<Plan> {
        Arc::new(Plan {
            ids: (1..=n).map(|i| format!("{i:04}_m")).collect(),
            has_down: vec![downs; n],
            tables: vec![Vec::new(); n + 1],
            releases: None,
            external: false,
        })
    }

    #[test]
    fn interrupted_migrate_waits_for_retry() {
        let s = State::new(plan(3, true), vec![3]);
        let s = Model::apply(s, &Step::Interrupt(Fault::CancelWhileWaiting));
        let s = Model::apply(s, &Step::MigrateTo(2));
        assert_eq!(s.pending, Some((0, 2)));
        assert!(!Model::preconditions(&s, &Step::MigrateUp));
        assert!(Model::preconditions(&s, &Step::Retry));
        let s = Model::apply(s, &Step::Retry);
        assert_eq!((s.version, s.pending), (2, None));
    }

    #[test]
    fn steps_name_migrations_and_releases_as_saved_cases_number_them() {
        let s = State::new(plan(5, true), vec![2, 5]);
        assert_eq!(
            Step::Deploy(1).describe(&s),
            "deploy release 1 (0003_m..0005_m), applying 0001_m..0005_m"
        );
        let s = Model::apply(s, &Step::Deploy(1));
        assert_eq!(
            Step::Deploy(0).describe(&s),
            "deploy release 0 (0001_m..0002_m), rolling back 0003_m..0005_m"
        );
        assert_eq!(
            Step::MigrateTo(3).describe(&s),
            "migrate to 0003_m (roll back 0004_m..0005_m)"
        );
        assert_eq!(
            Step::MigrateTo(0).describe(&s),
            "migrate to before any migration (roll back 0001_m..0005_m)"
        );
        assert_eq!(
            Step::MigrateDown.describe(&s),
            "migrate down one version (roll back 0005_m)"
        );
        let s = Model::apply(s, &Step::MigrateDown);
        assert_eq!(
            Step::MigrateUp.describe(&s),
            "migrate up one version (apply 0005_m)"
        );
        let s = Model::apply(s, &Step::Interrupt(Fault::KillBefore));
        let s = Model::apply(s, &Step::MigrateTo(2));
        assert_eq!(
            Step::Retry.describe(&s),
            "retry the interrupted migrate (to 0002_m)"
        );
        let write = Step::WriteRows {
            table: "public.t".into(),
            rows: vec![vec![
                ("a".into(), Value::Pick(3)),
                ("b".into(), Value::Null),
            ]],
        };
        assert_eq!(
            write.describe(&s),
            "write 1 row into public.t: (a = #3, b = NULL)"
        );
    }

    #[test]
    fn generated_sequences_respect_preconditions() {
        install(plan(4, false));
        let mut runner = TestRunner::deterministic();
        for _ in 0..50 {
            let tree = Model::sequential_strategy(1..20)
                .new_tree(&mut runner)
                .unwrap();
            let (mut state, steps, _) = tree.current();
            for step in steps {
                assert!(Model::preconditions(&state, &step), "{step:?} in {state:?}");
                state = Model::apply(state, &step);
                assert!(state.version <= 4);
            }
        }
    }
}

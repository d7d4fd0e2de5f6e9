//! The golden snapshot of every version, kept as one whole snapshot plus the difference between
//! each version and the next, so that memory follows the size of the schema and of the changes,
//! not the number of versions times the size of the schema. Taking snapshots is left to
//! `snapshot`; deciding what a difference means is left to `compare`.

use super::snapshot::{Item, Snapshot};

/// What turns version `i` into version `i + 1`: items that went away and items that came.
#[derive(Debug, Clone, Default)]
struct Delta {
    removed: Vec<Item>,
    added: Vec<Item>,
}

/// Snapshots of versions `0..len()`, one materialized at a time. Reading versions in order,
/// or stepping one back and forth as the stairway does, costs one delta per step.
#[derive(Debug, Clone)]
pub struct History {
    /// The snapshot of version `at`.
    current: Snapshot,
    at: usize,
    /// The snapshot of the last version, which the next push is a delta from.
    last: Snapshot,
    /// `deltas[i]` turns stored version `i` into stored version `i + 1`.
    deltas: Vec<Delta>,
    /// Versions stored.
    stored: usize,
    /// The versions kept: `first..=last`; pushes of others only advance the count.
    first: usize,
    last_kept: usize,
    /// Versions pushed.
    pushed: usize,
}

impl Default for History {
    fn default() -> History {
        History::new()
    }
}

impl History {
    pub fn new() -> History {
        History::window(0, usize::MAX)
    }

    /// A history that keeps only versions `first..=last` of those pushed.
    pub fn window(first: usize, last: usize) -> History {
        History {
            current: Snapshot::default(),
            at: 0,
            last: Snapshot::default(),
            deltas: Vec::new(),
            stored: 0,
            first,
            last_kept: last,
            pushed: 0,
        }
    }

    /// How many versions were pushed.
    pub fn len(&self) -> usize {
        self.pushed
    }

    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    /// Appends the snapshot of the next version; the reading position stays where it was.
    pub fn push(&mut self, next: Snapshot) {
        let version = self.pushed;
        self.pushed += 1;
        if version < self.first || version > self.last_kept {
            return;
        }
        if self.stored == 0 {
            self.current = next.clone();
        } else {
            self.deltas.push(difference(&self.last.items, &next.items));
        }
        self.last = next;
        self.stored += 1;
    }

    /// Counts the next version without its snapshot, which nobody reads: it is below the
    /// window.
    ///
    /// # Panics
    /// When the next version is one the window keeps.
    pub fn pass(&mut self) {
        assert!(
            self.pushed < self.first,
            "version {} is kept (versions {}..={} kept): its snapshot is needed",
            self.pushed,
            self.first,
            self.last_kept
        );
        self.pushed += 1;
    }

    /// The first version the window keeps.
    pub fn first(&self) -> usize {
        self.first
    }

    /// What turned `version - 1` into `version`: the items that went away and those that came.
    ///
    /// # Panics
    /// When either version was never pushed or is outside the window, as [`History::get`].
    pub fn changes(&self, version: usize) -> Vec<Item> {
        let slot = version.wrapping_sub(self.first);
        assert!(
            version > self.first && slot < self.stored,
            "versions {} and {version} not stored (versions {}..{} kept)",
            version.wrapping_sub(1),
            self.first,
            self.first + self.stored
        );
        let d = &self.deltas[slot - 1];
        d.removed.iter().chain(&d.added).cloned().collect()
    }

    /// The snapshot of `version`.
    ///
    /// # Panics
    /// When `version` was never pushed or is outside the window, like indexing a slice out of
    /// bounds.
    pub fn get(&mut self, version: usize) -> &Snapshot {
        let slot = version.wrapping_sub(self.first);
        assert!(
            version >= self.first && slot < self.stored,
            "version {version} not stored (versions {}..{} kept)",
            self.first,
            self.first + self.stored
        );
        self.seek(slot);
        &self.current
    }

    fn seek(&mut self, version: usize) {
        while self.at < version {
            let d = &self.deltas[self.at];
            self.current = apply(&self.current.items, &d.removed, &d.added);
            self.at += 1;
        }
        while self.at > version {
            let d = &self.deltas[self.at - 1];
            self.current = apply(&self.current.items, &d.added, &d.removed);
            self.at -= 1;
        }
    }
}

/// Items of `before` missing from `after` and items of `after` missing from `before`, as
/// multisets.
fn difference(before: &[Item], after: &[Item]) -> Delta {
    let mut a: Vec<&Item> = before.iter().collect();
    let mut b: Vec<&Item> = after.iter().collect();
    a.sort();
    b.sort();
    let mut delta = Delta::default();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                delta.removed.push((*x).clone());
                i += 1;
            }
            (Some(_), Some(y)) | (None, Some(y)) => {
                delta.added.push((*y).clone());
                j += 1;
            }
            (Some(x), None) => {
                delta.removed.push((*x).clone());
                i += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }
    delta
}

/// `items` without `remove` (as a multiset) and with `add`.
fn apply(items: &[Item], remove: &[Item], add: &[Item]) -> Snapshot {
    let mut gone: Vec<&Item> = remove.iter().collect();
    gone.sort();
    let mut sorted: Vec<&Item> = items.iter().collect();
    sorted.sort();
    let mut kept = Vec::with_capacity(items.len() + add.len());
    let mut g = 0;
    for item in sorted {
        while g < gone.len() && gone[g] < item {
            g += 1;
        }
        if g < gone.len() && gone[g] == item {
            g += 1;
            continue;
        }
        kept.push(item.clone());
    }
    kept.extend(add.iter().cloned());
    Snapshot::new(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(kind: u8, key: u8, body: u8) -> Item {
        Item {
            kind: ["table", "column", "index"][kind as usize % 3].into(),
            key: format!("public.t{key}"),
            body: format!("body {body}"),
            position: (kind % 3 == 1).then_some(i32::from(body % 4)),
        }
    }

    #[test]
    fn versions_below_the_window_are_counted_without_a_snapshot() {
        let mut history = History::window(2, 3);
        history.pass();
        history.pass();
        history.push(Snapshot::new(vec![item(0, 1, 0)]));
        history.push(Snapshot::new(vec![item(0, 1, 0), item(0, 2, 0)]));
        history.push(Snapshot::default());
        assert_eq!(history.len(), 5);
        assert_eq!(history.get(3).items.len(), 2);
        assert_eq!(history.get(2).items.len(), 1);
    }

    #[test]
    #[should_panic(expected = "is kept")]
    fn a_version_the_window_keeps_cannot_go_without_its_snapshot() {
        let mut history = History::window(1, 3);
        history.pass();
        history.pass();
    }

    proptest! {
        #[test]
        fn every_version_reads_back_exactly_in_any_order(
            versions in prop::collection::vec(
                prop::collection::vec((0u8..3, 0u8..6, 0u8..3), 0..12), 1..8),
            reads in prop::collection::vec(any::<prop::sample::Index>(), 1..20),
        ) {
            let snapshots: Vec<Snapshot> = versions
                .iter()
                .map(|v| Snapshot::new(v.iter().map(|&(k, n, b)| item(k, n, b)).collect()))
                .collect();
            let mut history = History::new();
            for s in &snapshots {
                history.push(s.clone());
            }
            prop_assert_eq!(history.len(), snapshots.len());
            for r in &reads {
                let v = r.index(snapshots.len());
                prop_assert_eq!(history.get(v), &snapshots[v]);
            }
            // A window keeps only its versions, and reads them back the same.
            let (first, last) = (snapshots.len() / 3, snapshots.len() * 2 / 3);
            let mut window = History::window(first, last);
            for s in &snapshots {
                window.push(s.clone());
            }
            prop_assert!(window.deltas.len() <= last - first);
            for r in reads {
                let v = first + r.index(last - first + 1);
                prop_assert_eq!(window.get(v), &snapshots[v]);
            }
        }
    }
}

//! Observations against expectations: schema snapshots against the golden snapshot, table
//! contents before and after a step, sequences and views before and after a step. Pure: it
//! turns differences into verdicts, telling real differences from noise (column order,
//! whitespace in bodies, creation-time literals, auto-generated names).

use std::sync::LazyLock;

use regex::Regex;

use crate::observe::data::{Refusal, Rejection, RowDiff, TableDiff};
use crate::observe::readable::Views;
use crate::observe::sequences::Behind;
use crate::observe::snapshot::{render_item, Item, Snapshot};
use crate::report::{Kind, NoteKind};

/// What comparing a snapshot with the golden one showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaVerdict {
    Equal,
    /// Equal but for differences that do not matter: (kind, message) per kind of noise, the
    /// objects that differ, and the raw diff.
    Noise {
        notes: Vec<(NoteKind, String)>,
        objects: String,
        diff: String,
    },
    /// A real difference, as a unified diff from expected to actual.
    Mismatch {
        diff: String,
        summary: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Norm {
    Whitespace,
    Literal,
    Name,
    Order,
}

const ALL: [Norm; 4] = [Norm::Whitespace, Norm::Literal, Norm::Name, Norm::Order];

static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"'\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}(:\d{2})?)?)?'").unwrap()
});
static GENERATED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([A-Za-z0-9_]+_(?:key|idx|fkey|pkey|check|excl|seq|not_null))\d+\b").unwrap()
});
static SPACE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").unwrap());
/// A view's top-level select list: `SELECT <list> FROM ...`.
static SELECT_LIST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)^(\s*SELECT\s+)(.*?)(\s+FROM\s.*)$").unwrap());

/// A view body with its select list sorted, when the list is plain (no parentheses): the
/// expansion of `SELECT *` follows the table's column order, which a dropped and re-added
/// column changes (noise, as column order is for tables).
fn sorted_select_list(body: &str) -> String {
    let Some(c) = SELECT_LIST.captures(body) else {
        return body.to_owned();
    };
    let list = &c[2];
    if list.contains('(') {
        return body.to_owned();
    }
    let mut items: Vec<&str> = list.split(',').map(str::trim).collect();
    items.sort_unstable();
    format!("{}{}{}", &c[1], items.join(", "), &c[3])
}

fn has_body(kind: &str) -> bool {
    matches!(
        kind,
        "function" | "procedure" | "view" | "materialized-view" | "trigger" | "rule"
    )
}

fn normalize(snapshot: &Snapshot, skip: Option<Norm>, strict: bool) -> Vec<String> {
    let on = |n: Norm| skip != Some(n);
    let mut items: Vec<Item> = snapshot.items.clone();
    if strict || !on(Norm::Order) {
        items.extend(snapshot.column_orders());
    }
    let mut lines = Vec::new();
    for mut item in items {
        if on(Norm::Whitespace) && has_body(&item.kind) {
            item.body = SPACE.replace_all(item.body.trim(), " ").into_owned();
        }
        if on(Norm::Order) && !strict && matches!(item.kind.as_str(), "view" | "materialized-view")
        {
            item.body = sorted_select_list(&item.body);
        }
        // Literals fixed at creation time ('now'::timestamp) sit in defaults and in bodies.
        if on(Norm::Literal)
            && (matches!(item.kind.as_str(), "column" | "type" | "comment") || has_body(&item.kind))
        {
            item.body = TIMESTAMP
                .replace_all(&item.body, "'<creation time>'")
                .into_owned();
        }
        if on(Norm::Name) {
            item.key = GENERATED_NAME.replace_all(&item.key, "$1").into_owned();
            item.body = GENERATED_NAME.replace_all(&item.body, "$1").into_owned();
        }
        render_item(&item, &mut lines);
    }
    lines.sort();
    lines
}

fn unified(expected: &[String], actual: &[String], labels: (&str, &str)) -> String {
    let a = expected.join("\n") + "\n";
    let b = actual.join("\n") + "\n";
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(2)
        .header(labels.0, labels.1)
        .to_string()
}

/// Compares `actual` with `expected`. `strict` makes column order a real difference.
/// `labels` name the two sides in the diff header.
pub fn schema(
    expected: &Snapshot,
    actual: &Snapshot,
    strict: bool,
    labels: (&str, &str),
) -> SchemaVerdict {
    if expected == actual {
        return SchemaVerdict::Equal;
    }
    let raw_e = expected.lines(true);
    let raw_a = actual.lines(true);
    if raw_e == raw_a {
        return SchemaVerdict::Equal;
    }
    let (e, a) = (
        normalize(expected, None, strict),
        normalize(actual, None, strict),
    );
    if e != a {
        let (e, a) = (expected.lines(strict), actual.lines(strict));
        let diff = unified(&e, &a, labels);
        return SchemaVerdict::Mismatch {
            diff,
            summary: objects_summary(expected, actual, strict),
        };
    }
    let mut notes = Vec::new();
    for norm in ALL {
        if normalize(expected, Some(norm), strict) == normalize(actual, Some(norm), strict) {
            continue;
        }
        let (kind, message) = match norm {
            Norm::Whitespace => (NoteKind::BodyWhitespace, "function or view bodies differ only in whitespace"),
            Norm::Literal => (NoteKind::CreationTimeLiteral, "defaults or bodies differ only in literals fixed at creation time (for example DEFAULT 'now', or 'now'::timestamp in a view)"),
            Norm::Name => (NoteKind::GeneratedName, "objects differ only in the numeric suffix of names PostgreSQL generated"),
            Norm::Order => (NoteKind::ColumnOrder, "columns are in a different order (a column was dropped and re-added, or re-created at the end; a view's SELECT * follows its table's order); use --strict to fail on this"),
        };
        notes.push((kind, message.to_owned()));
    }
    SchemaVerdict::Noise {
        notes,
        objects: objects_summary(expected, actual, true),
        diff: unified(&raw_e, &raw_a, labels),
    }
}

/// Names the objects that differ: `index public.x is unexpected`, `function public.f() differs`.
fn objects_summary(expected: &Snapshot, actual: &Snapshot, strict: bool) -> String {
    use std::collections::BTreeMap;
    let map = |s: &Snapshot| -> BTreeMap<(String, String), String> {
        let mut items = s.items.clone();
        if strict {
            items.extend(s.column_orders());
        }
        items
            .into_iter()
            .map(|i| ((i.kind, i.key), i.body))
            .collect()
    };
    let (e, a) = (map(expected), map(actual));
    let mut parts = Vec::new();
    for (key, body) in &e {
        match a.get(key) {
            None => parts.push(format!("{} {} is missing", key.0, key.1)),
            Some(other) if other != body => parts.push(format!("{} {} differs", key.0, key.1)),
            _ => {}
        }
    }
    for key in a.keys().filter(|k| !e.contains_key(*k)) {
        parts.push(format!("{} {} is unexpected", key.0, key.1));
    }
    let total = parts.len();
    let mut text = parts.into_iter().take(5).collect::<Vec<_>>().join("; ");
    if total > 5 {
        text.push_str(&format!("; and {} more", total - 5));
    }
    text
}

/// A data verdict: the kind of finding, a message and sample rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataVerdict {
    pub kind: Kind,
    pub message: String,
    pub rows: Vec<String>,
}

fn show(value: &Option<String>) -> String {
    match value {
        None => "NULL".into(),
        Some(v) => {
            let short: String = v.chars().take(60).collect();
            let ellipsis = if v.chars().count() > 60 { "..." } else { "" };
            format!("'{}{ellipsis}'", short.replace('\'', "''"))
        }
    }
}

/// The rows of `diff`, with a row that went missing and a row that appeared paired when they
/// agree on every column but the primary key: a rebuild that regenerated serial keys, shown as
/// the key that changed, not as a row lost and a row added.
fn rekeyed(diff: &TableDiff) -> Vec<RowDiff> {
    if diff.key_columns.is_empty() {
        return diff.rows.clone();
    }
    let rest = |values: &[Option<String>]| -> Vec<Option<String>> {
        diff.columns
            .iter()
            .zip(values)
            .filter(|(c, _)| !diff.key_columns.contains(c))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut out: Vec<RowDiff> = Vec::new();
    let mut added: Vec<Option<&RowDiff>> = diff
        .rows
        .iter()
        .map(|r| (r.before.is_none() && r.after.is_some()).then_some(r))
        .collect();
    for row in &diff.rows {
        match (&row.before, &row.after) {
            (Some(before), None) => {
                let wanted = rest(before);
                let found = added.iter_mut().find(|a| {
                    a.and_then(|a| a.after.as_deref())
                        .is_some_and(|after| rest(after) == wanted)
                });
                match found.and_then(Option::take) {
                    Some(a) => out.push(RowDiff {
                        key: row.key.clone(),
                        before: row.before.clone(),
                        after: a.after.clone(),
                    }),
                    None => out.push(row.clone()),
                }
            }
            (None, Some(_)) => {}
            _ => out.push(row.clone()),
        }
    }
    out.extend(added.into_iter().flatten().cloned());
    out
}

/// Judges table differences across a step. `allow_added` accepts rows that only exist after
/// the step (an up may insert rows; a round trip must give back exactly what was there).
pub fn data(diffs: &[TableDiff], allow_added: bool) -> Option<DataVerdict> {
    let mut rows = Vec::new();
    let mut lost = false;
    let mut changed = false;
    let mut tables = Vec::new();
    for diff in diffs {
        let mut counted = false;
        for row in &rekeyed(diff) {
            let key = if row.key.starts_with('{') {
                format!("row {}", row.key)
            } else {
                row.key.clone()
            };
            match (&row.before, &row.after) {
                (Some(_), None) => {
                    lost = true;
                    counted = true;
                    rows.push(format!("{}({key}): row missing", diff.table));
                }
                (None, Some(_)) => {
                    if !allow_added {
                        changed = true;
                        counted = true;
                        rows.push(format!("{}({key}): row added", diff.table));
                    }
                }
                (Some(b), Some(a)) => {
                    counted = true;
                    for ((col, bv), av) in diff.columns.iter().zip(b).zip(a) {
                        if bv != av {
                            if bv.is_some() && av.is_none() {
                                lost = true;
                            } else {
                                changed = true;
                            }
                            rows.push(format!(
                                "{}({key}).{col}: {} -> {}",
                                diff.table,
                                show(bv),
                                show(av)
                            ));
                        }
                    }
                }
                (None, None) => {}
            }
        }
        if counted || (!allow_added && diff.rows_before != diff.rows_after) {
            tables.push(format!(
                "{} ({} rows before, {} after)",
                diff.table, diff.rows_before, diff.rows_after
            ));
            if !counted {
                changed = true;
            }
        }
    }
    if !lost && !changed {
        return None;
    }
    let kind = if lost {
        Kind::DataLost
    } else {
        Kind::DataChanged
    };
    let what = if lost {
        "rows or values were lost"
    } else {
        "values changed"
    };
    Some(DataVerdict {
        kind,
        message: format!("{what} in {}", tables.join(", ")),
        rows,
    })
}

/// The message of a `sequence_behind` finding: sequences that would next give a value their
/// column already holds `now` and did not `before` the step (or the migration, for a round
/// trip). A down that rebuilds a table and copies its rows back without moving the sequence
/// breaks the next insert, though schema and rows compare equal.
pub fn sequences_behind(before: &[Behind], now: &[Behind]) -> Option<String> {
    let new: Vec<String> = now
        .iter()
        .filter(|b| !before.iter().any(|o| o.column == b.column))
        .map(|b| {
            format!(
                "sequence {} would next give {}, but {} already holds values up to {}",
                b.sequence, b.next, b.column, b.max
            )
        })
        .collect();
    (!new.is_empty()).then(|| {
        format!(
            "{}: the next insert that takes its value from the sequence collides with an \
             existing row (or fails on the key); move it with setval()",
            new.join("; ")
        )
    })
}

/// The message of an `unreadable` finding: views and materialized views that existed and could
/// be read `before` the step (or the migration) and cannot `now`. A down that recreates a
/// materialized view `WITH NO DATA`, or leaves a view whose query fails, passes a comparison of
/// definitions.
pub fn unreadable(before: &Views, now: &Views) -> Option<String> {
    let new: Vec<String> = now
        .unreadable
        .iter()
        .filter(|u| before.relations.contains(&u.relation))
        .filter(|u| !before.unreadable.iter().any(|b| b.relation == u.relation))
        .map(|u| format!("{}: {}", u.relation, u.why))
        .collect();
    (!new.is_empty()).then(|| {
        format!(
            "could be read before the migration, not after this step: {}",
            new.join("; ")
        )
    })
}

/// Whether a write was refused because a function it ran (a trigger, a default) refers, in
/// static SQL, to a column, table or function that does not exist (42703, 42P01, 42883): the
/// schema is broken there for every writer, whatever the row. Dynamic SQL (`EXECUTE`), whose
/// text may depend on the row, is left out.
pub fn broken_function(why: &Refusal) -> bool {
    let undefined = matches!(why.code.as_str(), "42703" | "42P01" | "42883");
    let frames = function_frames(why);
    let dynamic = frames.iter().any(|f| f.ends_with("at EXECUTE"));
    undefined && !frames.is_empty() && !dynamic
}

/// The frames of the user's functions in a refusal's context, innermost first.
fn function_frames(why: &Refusal) -> Vec<&str> {
    why.context
        .lines()
        .map(str::trim)
        .filter(|f| f.contains(" function "))
        .collect()
}

/// Rows a table refused because a function or trigger their write runs is broken at this
/// version: in static SQL (not an `EXECUTE`, whose text may depend on the row) it refers to
/// a column, table or function that does not exist (SQLSTATE 42703, 42P01, 42883). That is
/// no rule of the user's, which a seeded value may break by design (a constraint, a type's
/// input syntax): the application's writes fail the same way whatever their values. The
/// finding's message, or `None` for a refusal of the user's rules.
pub fn unwritable(r: &Rejection) -> Option<String> {
    let why = &r.why;
    if !broken_function(why) {
        return None;
    }
    let how_many = if r.rows >= r.tried {
        format!("every seeded row ({}) was refused", r.rows)
    } else {
        format!("{} of {} seeded rows were refused", r.rows, r.tried)
    };
    Some(format!(
        "{} cannot take rows at this version: {how_many}, ERROR {}: {} (in {}); a function \
         or trigger that writing a row runs refers to a column, table or function that does \
         not exist at this version, so the application's writes fail too",
        r.table,
        why.code,
        why.message,
        function_frames(why).join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::data::RowDiff;

    fn item(kind: &str, key: &str, body: &str, position: Option<i32>) -> Item {
        Item {
            kind: kind.into(),
            key: key.into(),
            body: body.into(),
            position,
        }
    }

    fn base() -> Vec<Item> {
        vec![
            item("table", "public.t", "", None),
            item("column", "public.t.a", "integer", Some(1)),
            item("column", "public.t.b", "text", Some(2)),
            item(
                "function",
                "public.f()",
                "CREATE FUNCTION f()\n AS $$ select 1 $$",
                None,
            ),
        ]
    }

    #[test]
    fn column_order_is_noise_unless_strict() {
        let a = Snapshot::new(base());
        let mut items = base();
        items[1].position = Some(2);
        items[2].position = Some(1);
        let b = Snapshot::new(items);
        match schema(&a, &b, false, ("a", "b")) {
            SchemaVerdict::Noise { notes, .. } => assert_eq!(notes[0].0, NoteKind::ColumnOrder),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            schema(&a, &b, true, ("a", "b")),
            SchemaVerdict::Mismatch { .. }
        ));
    }

    #[test]
    fn whitespace_in_bodies_and_creation_literals_are_noise() {
        let a = Snapshot::new(base());
        let mut items = base();
        items[3].body = "CREATE FUNCTION f()\n AS $$   select 1\n $$".into();
        let b = Snapshot::new(items);
        assert!(matches!(
            schema(&a, &b, false, ("a", "b")),
            SchemaVerdict::Noise { .. }
        ));
        let mut x = base();
        x[1].body = "timestamp default '2026-01-01 10:00:00.123'::timestamp".into();
        let mut y = base();
        y[1].body = "timestamp default '2026-01-02 11:00:00.456'::timestamp".into();
        let verdict = schema(&Snapshot::new(x), &Snapshot::new(y), false, ("a", "b"));
        assert!(
            matches!(verdict, SchemaVerdict::Noise { ref notes, .. } if notes[0].0 == NoteKind::CreationTimeLiteral)
        );
    }

    #[test]
    fn creation_time_literals_in_view_and_function_bodies_are_noise() {
        let view = |at: &str| {
            let mut items = base();
            items.push(Item {
                kind: "view".into(),
                key: "public.recent".into(),
                body: format!(
                    " SELECT t.a\n   FROM t\n  WHERE t.a > '{at}'::timestamp without time zone;"
                ),
                position: None,
            });
            Snapshot::new(items)
        };
        let verdict = schema(
            &view("2026-11-29 10:00:00.1"),
            &view("2026-11-29 10:00:07.9"),
            false,
            ("a", "b"),
        );
        assert!(
            matches!(verdict, SchemaVerdict::Noise { ref notes, .. } if notes[0].0 == NoteKind::CreationTimeLiteral),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_views_select_star_in_another_column_order_is_column_order_noise() {
        let view = |list: &str| {
            let mut items = base();
            items.push(Item {
                kind: "view".into(),
                key: "public.v".into(),
                body: format!(" SELECT {list}\n   FROM t;"),
                position: None,
            });
            Snapshot::new(items)
        };
        let (a, b) = (view("t.a,\n    t.b"), view("t.b,\n    t.a"));
        match schema(&a, &b, false, ("a", "b")) {
            SchemaVerdict::Noise { notes, .. } => assert_eq!(notes[0].0, NoteKind::ColumnOrder),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            schema(&a, &b, true, ("a", "b")),
            SchemaVerdict::Mismatch { .. }
        ));
        // another column is a real difference
        assert!(matches!(
            schema(&a, &view("t.a,\n    t.c"), false, ("a", "b")),
            SchemaVerdict::Mismatch { .. }
        ));
    }

    #[test]
    fn a_different_default_is_a_mismatch_with_a_diff() {
        let a = Snapshot::new(base());
        let mut items = base();
        items[2].body = "text default 'x'::text".into();
        match schema(&a, &Snapshot::new(items), false, ("golden", "actual")) {
            SchemaVerdict::Mismatch { diff, .. } => {
                assert!(diff.contains("-column public.t.b: text\n"), "{diff}");
                assert!(
                    diff.contains("+column public.t.b: text default 'x'::text"),
                    "{diff}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn regenerated_serial_keys_pair_rows_by_the_rest_of_the_row() {
        let row = |key: &str, before: Option<[&str; 2]>, after: Option<[&str; 2]>| RowDiff {
            key: key.into(),
            before: before.map(|v| v.iter().map(|x| Some(x.to_string())).collect()),
            after: after.map(|v| v.iter().map(|x| Some(x.to_string())).collect()),
        };
        let diff = TableDiff {
            table: "public.t".into(),
            columns: vec!["id".into(), "name".into()],
            key_columns: vec!["id".into()],
            rows_before: 2,
            rows_after: 2,
            rows: vec![
                row("id=1", Some(["1", "Ann"]), None),
                row("id=2", Some(["2", "Bob"]), None),
                row("id=7", None, Some(["7", "Ann"])),
                row("id=9", None, Some(["9", "Eve"])),
            ],
        };
        let v = data(&[diff], false).unwrap();
        assert_eq!(
            v.rows,
            [
                "public.t(id=1).id: '1' -> '7'",
                "public.t(id=2): row missing",
                "public.t(id=9): row added"
            ]
        );
        assert_eq!(v.kind, Kind::DataLost);
    }

    #[test]
    fn nulled_values_are_lost_and_rewritten_values_changed() {
        let diff = |before: Option<&str>, after: Option<&str>| TableDiff {
            table: "public.users".into(),
            columns: vec!["email".into()],
            key_columns: vec!["id".into()],
            rows_before: 1,
            rows_after: 1,
            rows: vec![RowDiff {
                key: "id=3".into(),
                before: Some(vec![before.map(Into::into)]),
                after: Some(vec![after.map(Into::into)]),
            }],
        };
        let v = data(&[diff(Some("Ann@x.io"), Some("ann@x.io"))], true).unwrap();
        assert_eq!(v.kind, Kind::DataChanged);
        assert_eq!(
            v.rows,
            ["public.users(id=3).email: 'Ann@x.io' -> 'ann@x.io'"]
        );
        assert_eq!(
            data(&[diff(Some("a"), None)], true).unwrap().kind,
            Kind::DataLost
        );
    }

    #[test]
    fn only_a_sequence_newly_behind_its_column_is_a_finding() {
        let behind = |column: &str| Behind {
            column: column.into(),
            sequence: "public.t_id_seq".into(),
            max: "6".into(),
            next: "1".into(),
        };
        assert_eq!(
            sequences_behind(&[behind("public.t.id")], &[behind("public.t.id")]),
            None
        );
        let message = sequences_behind(&[], &[behind("public.t.id")]).unwrap();
        assert!(
            message.starts_with(
                "sequence public.t_id_seq would next give 1, but public.t.id already holds \
                 values up to 6: "
            ),
            "{message}"
        );
    }

    #[test]
    fn only_a_view_readable_before_and_not_after_is_a_finding() {
        use crate::observe::readable::Unreadable;
        let views = |relations: &[&str], unreadable: &[&str]| Views {
            relations: relations.iter().map(|r| r.to_string()).collect(),
            unreadable: unreadable
                .iter()
                .map(|r| Unreadable {
                    relation: r.to_string(),
                    why: "not populated".into(),
                })
                .collect(),
        };
        let now = views(&["public.v", "public.w"], &["public.v", "public.w"]);
        // public.w did not exist before the step: it was not readable before it either.
        assert_eq!(
            unreadable(&views(&["public.v"], &[]), &now).as_deref(),
            Some(
                "could be read before the migration, not after this step: public.v: not populated"
            )
        );
        assert_eq!(unreadable(&views(&["public.v"], &["public.v"]), &now), None);
    }

    #[test]
    fn only_an_undefined_object_in_a_functions_static_sql_makes_a_table_unwritable() {
        use crate::observe::data::Refusal;
        let rejection = |code: &str, context: &str| Rejection {
            table: "public.crates".into(),
            why: Refusal {
                code: code.into(),
                message: "record \"new\" has no field \"keywords\"".into(),
                context: context.into(),
                column: None,
            },
            rows: 20,
            tried: 20,
        };
        let trigger = "PL/pgSQL function trigger_crates_name_search() line 6 at assignment";
        let message = unwritable(&rejection("42703", trigger)).unwrap();
        assert!(
            message.starts_with(
                "public.crates cannot take rows at this version: every seeded row (20) was \
                 refused, ERROR 42703: record \"new\" has no field \"keywords\" (in PL/pgSQL \
                 function trigger_crates_name_search() line 6 at assignment)"
            ),
            "{message}"
        );
        // the INSERT itself, not a function: the seeder's, never the user's
        assert_eq!(unwritable(&rejection("42703", "")), None);
        // dynamic SQL may name a table from the row (a partition per month)
        let dynamic = "PL/pgSQL function route_event() line 4 at EXECUTE";
        assert_eq!(unwritable(&rejection("42P01", dynamic)), None);
        // the user's rules: a constraint, a type's input syntax (ltree), a cached plan
        for code in ["23505", "23502", "22P02", "42601", "42804"] {
            assert_eq!(unwritable(&rejection(code, trigger)), None, "{code}");
        }
    }
}

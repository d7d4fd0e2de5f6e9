//! The schema snapshot: one canonical, sorted, OID-free description of everything a migration
//! can change, taken in one query and rendered as stable text lines that diff line by line.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;

const QUERY: &str = include_str!("queries/snapshot.sql");

/// One object of the schema.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Item {
    /// `table`, `column`, `index`, `function`, ...
    pub kind: String,
    /// The object's schema-qualified name (`public.users.email`).
    pub key: String,
    /// Its definition.
    pub body: String,
    /// For columns, the position among the table's live columns.
    pub position: Option<i32>,
}

/// A whole schema, items sorted by kind and key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub items: Vec<Item>,
}

/// Order in which kinds are rendered: containers before what they contain.
fn kind_rank(kind: &str) -> usize {
    const ORDER: &[&str] = &[
        "schema",
        "extension",
        "type",
        "sequence",
        "table",
        "column",
        "column-order",
        "constraint",
        "index",
        "view",
        "materialized-view",
        "function",
        "procedure",
        "aggregate",
        "window-function",
        "trigger",
        "rule",
        "policy",
        "comment",
    ];
    ORDER.iter().position(|k| *k == kind).unwrap_or(ORDER.len())
}

pub async fn take(conn: &mut PgConnection) -> Result<Snapshot, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>, Option<i32>)> =
        sqlx::query_as(QUERY).fetch_all(conn).await?;
    let items = rows
        .into_iter()
        .map(|(kind, key, body, position)| Item {
            kind,
            key,
            body: body.unwrap_or_default().trim_end().to_owned(),
            position,
        })
        .collect();
    Ok(Snapshot::new(items))
}

impl Snapshot {
    pub fn new(mut items: Vec<Item>) -> Snapshot {
        items.sort_by(|a, b| {
            (kind_rank(&a.kind), &a.key, &a.body, a.position).cmp(&(
                kind_rank(&b.kind),
                &b.key,
                &b.body,
                b.position,
            ))
        });
        Snapshot { items }
    }

    /// The column names of each table in position order, as `column-order` items.
    pub fn column_orders(&self) -> Vec<Item> {
        let mut tables: Vec<(String, Vec<(i32, String)>)> = Vec::new();
        for item in self.items.iter().filter(|i| i.kind == "column") {
            let (table, column) = split_column_key(&item.key);
            let position = item.position.unwrap_or(0);
            match tables.last_mut() {
                Some((t, cols)) if *t == table => cols.push((position, column.to_owned())),
                _ => tables.push((table.to_owned(), vec![(position, column.to_owned())])),
            }
        }
        tables
            .into_iter()
            .map(|(table, mut cols)| {
                cols.sort();
                let names: Vec<String> = cols.into_iter().map(|(_, c)| c).collect();
                Item {
                    kind: "column-order".into(),
                    key: table,
                    body: names.join(", "),
                    position: None,
                }
            })
            .collect()
    }

    /// The snapshot as text lines; `column_order` adds one line per table with its column
    /// order. Multi-line definitions continue on lines starting with `    | `.
    pub fn lines(&self, column_order: bool) -> Vec<String> {
        let mut items: Vec<&Item> = self.items.iter().collect();
        let orders = if column_order {
            self.column_orders()
        } else {
            Vec::new()
        };
        items.extend(orders.iter());
        items.sort_by_key(|i| (kind_rank(&i.kind), i.key.as_str()));
        let mut out = Vec::new();
        for item in items {
            render_item(item, &mut out);
        }
        out
    }

    /// The snapshot as one text, as `migproof snapshot` prints it.
    pub fn render(&self) -> String {
        let mut text = self.lines(true).join("\n");
        text.push('\n');
        text
    }
}

pub fn render_item(item: &Item, out: &mut Vec<String>) {
    let mut body = item.body.lines();
    let first = body.next().unwrap_or("");
    if first.is_empty() && item.body.is_empty() {
        out.push(format!("{} {}", item.kind, item.key));
    } else {
        out.push(format!("{} {}: {}", item.kind, item.key, first.trim_end()));
    }
    for line in body {
        out.push(format!("    | {}", line.trim_end()));
    }
}

/// Splits `schema.table.column` (identifiers possibly quoted) into table and column parts.
fn split_column_key(key: &str) -> (&str, &str) {
    let mut in_quotes = false;
    let mut last_dot = None;
    for (i, c) in key.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => last_dot = Some(i),
            _ => {}
        }
    }
    match last_dot {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => ("", key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: &str, key: &str, body: &str, position: Option<i32>) -> Item {
        Item {
            kind: kind.into(),
            key: key.into(),
            body: body.into(),
            position,
        }
    }

    #[test]
    fn renders_sorted_lines_with_column_order() {
        let s = Snapshot::new(vec![
            item("column", "public.t.b", "text", Some(2)),
            item("table", "public.t", "", None),
            item("column", "public.t.a", "int", Some(1)),
            item("function", "public.f()", "CREATE FUNCTION\n body", None),
        ]);
        assert_eq!(
            s.lines(true),
            [
                "table public.t",
                "column public.t.a: int",
                "column public.t.b: text",
                "column-order public.t: a, b",
                "function public.f(): CREATE FUNCTION",
                "    |  body",
            ]
        );
    }

    #[test]
    fn column_keys_split_on_the_last_unquoted_dot() {
        assert_eq!(
            split_column_key("public.\"a.b\".c"),
            ("public.\"a.b\"", "c")
        );
        assert_eq!(
            split_column_key("public.t.\"x.y\""),
            ("public.t", "\"x.y\"")
        );
    }
}

//! What lies outside the scratch database and a migration run as a superuser can still change:
//! roles, memberships, role settings, databases, tablespaces and `ALTER SYSTEM`. Reading it and
//! telling two readings apart; what a change means is left to the runner.

use std::collections::BTreeSet;

use sqlx::postgres::PgConnection;

use super::{ident, literal};

/// One thing on the server outside any database: (kind, name, detail).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub kind: String,
    pub name: String,
    pub detail: String,
}

/// Everything [`Item`] covers, at one moment.
pub type Globals = BTreeSet<Item>;

/// Reads the server's global state. Needs a superuser (ALTER SYSTEM's file is readable only
/// to one), which is the only case in which a migration can change it.
pub async fn read(conn: &mut PgConnection) -> Result<Globals, sqlx::Error> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(include_str!("queries/globals.sql"))
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, name, detail)| Item { kind, name, detail })
        .collect())
}

/// One difference between two readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(Item),
    Removed(Item),
}

/// What differs from `before` to `after`, removals first.
pub fn diff(before: &Globals, after: &Globals) -> Vec<Change> {
    let removed = before.difference(after).cloned().map(Change::Removed);
    let added = after.difference(before).cloned().map(Change::Added);
    removed.chain(added).collect()
}

impl Change {
    /// For people: `created role evil (SUPERUSER LOGIN)`, `dropped database payroll`.
    pub fn describe(&self) -> String {
        let (verb, item) = match self {
            Change::Added(i) => ("added", i),
            Change::Removed(i) => ("removed", i),
        };
        let detail = if item.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", item.detail)
        };
        format!("{verb} {} {}{detail}", item.kind, item.name)
    }

    /// SQL that puts back what this change did, where that can be done: an added role,
    /// database or tablespace is dropped, an added setting reset. A removed database or role
    /// cannot be brought back, and a changed attribute shows as a removal and an addition of
    /// the same name, undone through the addition.
    pub fn undo(&self, before: &Globals) -> Option<String> {
        let Change::Added(item) = self else {
            return None;
        };
        let existed = |kind: &str| before.iter().any(|b| b.kind == kind && b.name == item.name);
        match item.kind.as_str() {
            "role" if !existed("role") => {
                Some(format!("DROP ROLE IF EXISTS {}", ident(&item.name)))
            }
            "role" => {
                let old = before
                    .iter()
                    .find(|b| b.kind == "role" && b.name == item.name)?;
                let attrs = [
                    "SUPERUSER",
                    "CREATEROLE",
                    "CREATEDB",
                    "LOGIN",
                    "REPLICATION",
                    "BYPASSRLS",
                ]
                .iter()
                .map(|a| {
                    let had = old.detail.split(' ').any(|d| d == *a);
                    if had {
                        a.to_string()
                    } else {
                        format!("NO{a}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
                Some(format!("ALTER ROLE {} {attrs}", ident(&item.name)))
            }
            "membership" => Some(format!(
                "REVOKE {} FROM {}",
                ident(&item.detail),
                ident(&item.name)
            )),
            "database" => Some(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                ident(&item.name)
            )),
            "tablespace" => Some(format!("DROP TABLESPACE IF EXISTS {}", ident(&item.name))),
            "system setting" => {
                match before
                    .iter()
                    .find(|b| b.kind == "system setting" && b.name == item.name)
                {
                    Some(old) => Some(format!(
                        "ALTER SYSTEM SET {} = {}",
                        ident(&item.name),
                        literal(&old.detail)
                    )),
                    None => Some(format!("ALTER SYSTEM RESET {}", ident(&item.name))),
                }
            }
            "role setting" => {
                let (role, db) = item.name.split_once(" in ")?;
                let role = if role == "*" {
                    "ALL".to_string()
                } else {
                    ident(role)
                };
                let db = if db == "*" {
                    String::new()
                } else {
                    format!(" IN DATABASE {}", ident(db))
                };
                let reset = format!("ALTER ROLE {role}{db} RESET ALL");
                let old = before
                    .iter()
                    .find(|b| b.kind == "role setting" && b.name == item.name);
                // Settings are restored one by one from the earlier reading.
                let restore = old
                    .map(|o| {
                        o.detail
                            .split(", ")
                            .filter_map(|kv| kv.split_once('='))
                            .map(|(k, v)| {
                                format!(";ALTER ROLE {role}{db} SET {} = {}", ident(k), literal(v))
                            })
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                Some(reset + &restore)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: &str, name: &str, detail: &str) -> Item {
        Item {
            kind: kind.into(),
            name: name.into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn changes_are_named_and_undone_where_possible() {
        let before: Globals = [
            item("role", "app", "LOGIN"),
            item("database", "payroll", ""),
            item("system setting", "work_mem", "4MB"),
        ]
        .into();
        let after: Globals = [
            item("role", "app", "SUPERUSER LOGIN"),
            item("role", "evil", "SUPERUSER"),
            item("system setting", "work_mem", "77MB"),
        ]
        .into();
        let changes = diff(&before, &after);
        let described: Vec<String> = changes.iter().map(Change::describe).collect();
        assert!(described.contains(&"removed database payroll".to_string()));
        assert!(described.contains(&"added role evil (SUPERUSER)".to_string()));
        let undo: Vec<String> = changes.iter().filter_map(|c| c.undo(&before)).collect();
        assert!(undo.contains(&"DROP ROLE IF EXISTS \"evil\"".to_string()));
        assert!(undo
            .iter()
            .any(|u| u.starts_with("ALTER ROLE \"app\" NOSUPERUSER")));
        assert!(undo.contains(&"ALTER SYSTEM SET \"work_mem\" = '4MB'".to_string()));
        assert_eq!(
            undo.len(),
            3,
            "a dropped database cannot be brought back: {undo:?}"
        );
    }
}

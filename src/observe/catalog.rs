//! The user's tables as the seeder and the data checks see them: columns with their types,
//! nullability and defaults, and keys. Read from the live database.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::Row;

use super::ident;

const TABLES: &str = include_str!("queries/tables.sql");
const KEYS: &str = include_str!("queries/keys.sql");
const SIGNATURES: &str = include_str!("queries/signatures.sql");
const IDENTITIES: &str = include_str!("queries/identities.sql");

/// A row of [`KEYS`]: the table's oid, the key's kind, its columns, and for a foreign key the
/// referenced table's oid and columns.
type KeyRow = (i64, String, Option<Vec<String>>, i64, Option<Vec<String>>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `pg_attribute.attnum`: the column's identity in its table, which a rename keeps.
    #[serde(default)]
    pub attnum: i32,
    /// `format_type` of the column, usable in a cast (`numeric(12,4)`).
    pub type_sql: String,
    /// The type's oid: a type rebuilt under its name (an enum recreated without a label) has
    /// the same `type_sql` and another oid.
    #[serde(default)]
    pub type_oid: i64,
    /// The base type's name (`int4`, `varchar`, `numeric`, an enum's name); for arrays the
    /// element type.
    pub base_type: String,
    /// `pg_type.typcategory` of the base type.
    pub category: String,
    pub typmod: i32,
    pub not_null: bool,
    pub has_default: bool,
    /// `a` always, `d` by default, empty when not an identity column.
    pub identity: String,
    /// `s` for a stored generated column.
    pub generated: String,
    pub enum_labels: Option<Vec<String>>,
    pub is_array: bool,
}

impl Column {
    /// Whether a step changed this column's type, `now` being the column after it: another
    /// type, typmod, or a type rebuilt under the same name. Such a step must adapt the values
    /// that do not fit the new type (cut a text, round a number, map a dropped enum label).
    pub fn retyped(&self, now: &Column) -> bool {
        self.type_sql != now.type_sql || self.type_oid != now.type_oid
    }

    /// Columns a client cannot or should not write: generated, identity columns, and
    /// sequence-backed defaults (production rows take their ids from the sequence).
    pub fn server_filled(&self, default_is_sequence: bool) -> bool {
        !self.generated.is_empty() || !self.identity.is_empty() || default_is_sequence
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub oid: i64,
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// Column sets of unique constraints and plain unique indexes.
    pub unique: Vec<Vec<String>>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Column sets read by partial or expression unique indexes (`lower(name)`, `WHERE gh_id >
    /// 0`): no plain key, but rows that repeat them may be refused, so the fill keeps them
    /// distinct.
    #[serde(default)]
    pub distinct: Vec<Vec<String>>,
    /// Columns whose default draws from a sequence.
    pub sequence_defaults: Vec<String>,
    /// Changes whenever one of the table's constraints, indexes, triggers, rules, policies or
    /// defaults is created, dropped or altered (see `queries/signatures.sql`); read only by
    /// [`signed_tables`], empty otherwise.
    #[serde(default)]
    pub signature: String,
}

impl Table {
    /// `"schema"."name"`, for SQL.
    pub fn sql_name(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }

    /// `schema.name`, for people.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn is_unique(&self, column: &str) -> bool {
        self.primary_key == [column] || self.unique.iter().any(|u| u == &[column])
    }
}

/// Reads every user table, sorted by schema and name.
pub async fn tables(conn: &mut PgConnection) -> Result<Vec<Table>, sqlx::Error> {
    let rows = sqlx::query(TABLES).fetch_all(&mut *conn).await?;
    let mut by_oid: BTreeMap<i64, Table> = BTreeMap::new();
    for row in rows {
        let oid: i64 = row.try_get("table_oid")?;
        let table = match by_oid.entry(oid) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(Table {
                oid,
                schema: row.try_get("schema")?,
                name: row.try_get("table_name")?,
                ..Table::default()
            }),
        };
        let column = Column {
            name: row.try_get("column_name")?,
            attnum: row.try_get("attnum")?,
            type_sql: row.try_get("type_sql")?,
            type_oid: row.try_get("type_oid")?,
            base_type: row.try_get("base_type")?,
            category: row.try_get("category")?,
            typmod: row.try_get("typmod")?,
            not_null: row.try_get("not_null")?,
            has_default: row.try_get("has_default")?,
            identity: row.try_get("identity")?,
            generated: row.try_get("generated")?,
            enum_labels: row.try_get("enum_labels")?,
            is_array: row.try_get("is_array")?,
        };
        if row.try_get("sequence_default")? {
            table.sequence_defaults.push(column.name.clone());
        }
        table.columns.push(column);
    }
    let keys: Vec<KeyRow> = sqlx::query_as(KEYS).fetch_all(&mut *conn).await?;
    let names: BTreeMap<i64, String> = by_oid.iter().map(|(oid, t)| (*oid, t.sql_name())).collect();
    for (oid, kind, columns, ref_oid, ref_columns) in keys {
        let (Some(table), Some(columns)) = (by_oid.get_mut(&oid), columns) else {
            continue;
        };
        match kind.as_str() {
            "p" => table.primary_key = columns,
            "u" | "i" => table.unique.push(columns),
            "d" => table.distinct.push(columns),
            "f" => {
                if let (Some(ref_table), Some(ref_columns)) = (names.get(&ref_oid), ref_columns) {
                    table.foreign_keys.push(ForeignKey {
                        columns,
                        ref_table: ref_table.clone(),
                        ref_columns,
                    });
                }
            }
            _ => {}
        }
    }
    let mut tables: Vec<Table> = by_oid.into_values().collect();
    tables.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Ok(tables)
}

/// Every table's signature (see `queries/signatures.sql`), by oid.
async fn signatures(conn: &mut PgConnection) -> Result<BTreeMap<i64, String>, sqlx::Error> {
    Ok(sqlx::query_as(SIGNATURES)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect())
}

/// [`tables`] with their signatures, for deciding which tables changed since seen.
pub async fn signed_tables(conn: &mut PgConnection) -> Result<Vec<Table>, sqlx::Error> {
    let mut tables = self::tables(&mut *conn).await?;
    let signatures = signatures(&mut *conn).await?;
    for table in &mut tables {
        if let Some(signature) = signatures.get(&table.oid) {
            table.signature = signature.clone();
        }
    }
    Ok(tables)
}

/// A live table's oid, and its columns' numbers and type oids by name.
type Identity = (i64, BTreeMap<String, (i32, i64)>);

/// `tables`, signed, as read before from a schema the live one is known to equal (a snapshot
/// said so), with the identities a down and an up change under the same names brought up to
/// date: table oids, signatures, column numbers and type oids. Two light queries instead of
/// reading every table again. `None` when a table or column is not found by its name.
pub async fn reidentified(
    conn: &mut PgConnection,
    tables: &[Table],
) -> Result<Option<Vec<Table>>, sqlx::Error> {
    let rows: Vec<(i64, String, String, String, i32, i64)> =
        sqlx::query_as(IDENTITIES).fetch_all(&mut *conn).await?;
    // by (schema, table): the table's oid, and its columns' (attnum, type oid) by name
    let mut live: BTreeMap<(String, String), Identity> = BTreeMap::new();
    for (oid, schema, table, column, attnum, type_oid) in rows {
        live.entry((schema, table))
            .or_insert_with(|| (oid, BTreeMap::new()))
            .1
            .insert(column, (attnum, type_oid));
    }
    let signatures = signatures(&mut *conn).await?;
    let mut out = Vec::with_capacity(tables.len());
    for table in tables {
        let Some((oid, columns)) = live.get(&(table.schema.clone(), table.name.clone())) else {
            return Ok(None);
        };
        if columns.len() != table.columns.len() {
            return Ok(None);
        }
        let mut table = table.clone();
        table.oid = *oid;
        table.signature = signatures.get(oid).cloned().unwrap_or_default();
        for column in &mut table.columns {
            let Some((attnum, type_oid)) = columns.get(&column.name) else {
                return Ok(None);
            };
            column.attnum = *attnum;
            column.type_oid = *type_oid;
        }
        out.push(table);
    }
    Ok(Some(out))
}

impl crate::source::config::Named for Table {
    fn schema(&self) -> &str {
        &self.schema
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Tables ordered so that referenced tables come before the tables referencing them
/// (self-references and cycles are broken arbitrarily).
pub fn parents_first(tables: &[Table]) -> Vec<&Table> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    let mut remaining: Vec<&Table> = tables.iter().collect();
    while !remaining.is_empty() {
        let ready = remaining.iter().position(|t| {
            t.foreign_keys.iter().all(|fk| {
                fk.ref_table == t.sql_name()
                    || done.contains(&fk.ref_table)
                    || !tables.iter().any(|o| o.sql_name() == fk.ref_table)
            })
        });
        let t = remaining.remove(ready.unwrap_or(0));
        done.insert(t.sql_name());
        out.push(t);
    }
    out
}

//! Table contents across a step. Before a step the rows of every table are stashed as text in
//! a temporary table of the scratch session (one statement, server-side, one table per tag);
//! after it, an order-independent checksum (row count and a sum of row hashes, one pass per
//! table) compares the columns that exist on both sides, and only for tables whose checksums
//! differ a second, narrower query names the rows and columns that changed.

use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnection, PgDatabaseError};
use sqlx::{AssertSqlSafe, Row};

use super::catalog::{Column, Table};
use super::{ident, literal};
use crate::source::config::Exclude;

/// How many differing rows are fetched per table for the report.
const SAMPLE: usize = 20;
/// Tables per `UNION ALL` statement. PostgreSQL plans a `UNION ALL` in time quadratic in its
/// arms (2,000 tables in one statement took 42 s, in batches of 50 under a second).
const BATCH: usize = 50;

/// Why the server refused to write a row: its SQLSTATE, its message, and the functions it
/// was in (the error's CONTEXT, innermost first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
    pub context: String,
    /// The column the error names, when it names one (a NOT NULL violation does).
    pub column: Option<String>,
}

impl Refusal {
    /// The server's reasons in an error it returned.
    pub fn of(e: &dyn DatabaseError) -> Refusal {
        let pg = e.try_downcast_ref::<PgDatabaseError>();
        Refusal {
            code: e.code().unwrap_or_default().into_owned(),
            message: e.message().to_owned(),
            context: pg
                .and_then(|pg| pg.r#where())
                .unwrap_or_default()
                .to_owned(),
            column: pg.and_then(|pg| pg.column()).map(str::to_owned),
        }
    }
}

/// Rows the server refused to write into a table for one reason (SQLSTATE), kept with the
/// first refusal's reasons and how many rows it refused so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The table, as users write it (`public.crates`).
    pub table: String,
    pub why: Refusal,
    /// Rows refused with this SQLSTATE, and rows tried, in this table.
    pub rows: usize,
    pub tried: usize,
}

/// migproof's bookkeeping schema in a scratch database, created by every session.
pub const SCHEMA: &str = "CREATE SCHEMA IF NOT EXISTS _migproof;
CREATE TABLE IF NOT EXISTS _migproof.applied (
    version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());";

/// The stash of `tag`: an unlogged table in migproof's own schema (not a temporary one: a
/// stash must outlive the session, which a fault may kill between the stash and the compare).
/// Named so that no unqualified name in a migration resolves to it.
fn stash_table(tag: i32) -> String {
    format!("_migproof.stash_{tag}")
}

/// The rows of `tables` as they were when stashed under `tag`.
#[derive(Debug, Clone)]
pub struct Stash {
    pub tag: i32,
    pub tables: Vec<Table>,
}

fn key_expr(table: &Table, cast: impl Fn(&str) -> String) -> String {
    if table.primary_key.is_empty() {
        return "NULL::text".into();
    }
    let parts: Vec<String> = table
        .primary_key
        .iter()
        .map(|c| format!("{} || '=' || coalesce({}, 'NULL')", literal(c), cast(c)))
        .collect();
    format!("concat_ws(', ', {})", parts.join(", "))
}

/// Empties a stash table. DELETE costs a tenth of a millisecond where TRUNCATE costs several
/// on a server that syncs files (it creates new files, and an unlogged table's init fork is
/// synced at once), but leaves dead rows that every later scan of the stash reads: so the
/// stash is truncated once its dead rows fill a megabyte.
fn clear_sql(table: &str) -> String {
    format!(
        "DO $$ BEGIN \
           IF pg_relation_size('{table}') > 1048576 THEN TRUNCATE {table}; \
           ELSE DELETE FROM {table}; END IF; \
         END $$;"
    )
}

/// Stashes the current rows of `tables` under `tag`, replacing an older stash of that tag.
pub async fn stash(
    conn: &mut PgConnection,
    tag: i32,
    tables: &[Table],
) -> Result<Stash, sqlx::Error> {
    let table = stash_table(tag);
    let mut sql = format!(
        "CREATE UNLOGGED TABLE IF NOT EXISTS {table} (tbl text NOT NULL, k text, cols text[] NOT NULL);\n\
         {}\n",
        clear_sql(&table)
    );
    let selects: Vec<String> = tables
        .iter()
        .map(|t| {
            let text = |c: &str| format!("({})::text", ident(c));
            let cols: Vec<String> = t.columns.iter().map(|c| text(&c.name)).collect();
            format!(
                "SELECT {}, {}, ARRAY[{}]::text[] FROM {}",
                literal(&t.display_name()),
                key_expr(t, text),
                cols.join(", "),
                t.sql_name()
            )
        })
        .collect();
    for batch in selects.chunks(BATCH) {
        sql.push_str(&format!("INSERT INTO {table} (tbl, k, cols)\n"));
        sql.push_str(&batch.join("\nUNION ALL\n"));
        sql.push_str(";\n");
    }
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(Stash {
        tag,
        tables: tables.to_vec(),
    })
}

/// Takes out of `stash` the rows an up inserted: those in `after_up` (stashed right after the
/// up) and not in `before_up` (stashed right before it), matched by table and key, or by
/// table and values in a table without a primary key. A down that deletes them again undoes
/// its up; it does not lose data.
pub async fn forget_inserted(
    conn: &mut PgConnection,
    stash: &Stash,
    before_up: &Stash,
    after_up: &Stash,
) -> Result<(), sqlx::Error> {
    let (stash, before, after) = (
        stash_table(stash.tag),
        stash_table(before_up.tag),
        stash_table(after_up.tag),
    );
    let sql = format!(
        "DELETE FROM {stash} s USING (
             SELECT tbl, k FROM {after} WHERE k IS NOT NULL
             EXCEPT SELECT tbl, k FROM {before} WHERE k IS NOT NULL) i
         WHERE s.tbl = i.tbl AND s.k = i.k;
         DELETE FROM {stash} s USING (
             SELECT tbl, cols FROM {after} WHERE k IS NULL
             EXCEPT SELECT tbl, cols FROM {before} WHERE k IS NULL) i
         WHERE s.k IS NULL AND s.tbl = i.tbl AND s.cols = i.cols;"
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// How many stashed rows of `table` (`schema.table`) held a value: in the column at `column`
/// (its position in the stashed table's columns), or at all when `None`.
pub async fn held(
    conn: &mut PgConnection,
    stash: &Stash,
    table: &str,
    column: Option<usize>,
) -> Result<i64, sqlx::Error> {
    let sql = format!(
        "SELECT count(*) FROM {} WHERE tbl = $1 AND ($2::int IS NULL OR cols[$2] IS NOT NULL)",
        stash_table(stash.tag)
    );
    sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(table)
        .bind(column.map(|i| i as i32 + 1))
        .fetch_one(conn)
        .await
}

/// True when no table of the user's schemas holds a page on disk, so none holds a row: no
/// catalog read of the tables is needed to know that their contents are empty. Cheap (no
/// table is scanned); a table that held rows once may keep its pages, which only makes this
/// false.
pub async fn no_rows(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (
             SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r'
               -- (created after initdb: the catalogs' own sizes are not read)
               AND c.oid >= 16384
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_migproof')
               AND n.nspname NOT LIKE 'pg\\_toast%'
               AND pg_relation_size(c.oid) > 0)",
    )
    .fetch_one(conn)
    .await
}

/// Which of `tables` hold no row, in one round trip.
pub async fn empty(conn: &mut PgConnection, tables: &[&Table]) -> Result<Vec<bool>, sqlx::Error> {
    let mut out = vec![false; tables.len()];
    let arms: Vec<String> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| format!("SELECT {i} WHERE NOT EXISTS (SELECT FROM {})", t.sql_name()))
        .collect();
    for batch in arms.chunks(BATCH) {
        let empty: Vec<i32> = sqlx::query_scalar(AssertSqlSafe(batch.join("\nUNION ALL\n")))
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
        for i in empty {
            out[i as usize] = true;
        }
    }
    Ok(out)
}

/// A row that differs between the stash and the live table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDiff {
    /// `id=3`, or the whole row for tables without a primary key.
    pub key: String,
    pub before: Option<Vec<Option<String>>>,
    pub after: Option<Vec<Option<String>>>,
}

/// How one table's contents differ across a step, over the columns on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDiff {
    pub table: String,
    pub columns: Vec<String>,
    /// The primary key's columns (empty without one): rows are matched by them.
    pub key_columns: Vec<String>,
    pub rows_before: i64,
    pub rows_after: i64,
    /// Up to [`SAMPLE`] differing rows.
    pub rows: Vec<RowDiff>,
}

/// One table compared: which stash columns, and how to read them back from the live table.
struct Pair<'a> {
    before: &'a Table,
    /// 1-based positions in the stash's column array.
    positions: Vec<usize>,
    columns: Vec<String>,
    /// Live expressions giving text comparable with the stash.
    live: Vec<String>,
    live_key: String,
    stash_key: String,
    after: &'a Table,
}

impl Pair<'_> {
    fn stash_values(&self) -> String {
        let cols: Vec<String> = self
            .positions
            .iter()
            .map(|p| format!("cols[{p}]"))
            .collect();
        format!("ARRAY[{}]::text[]", cols.join(", "))
    }

    fn live_values(&self) -> String {
        format!("ARRAY[{}]::text[]", self.live.join(", "))
    }

    fn stash_from(&self, tag: i32) -> String {
        format!(
            "{} WHERE tbl = {}",
            stash_table(tag),
            literal(&self.before.display_name())
        )
    }

    /// The live table's row count and checksum, as row `index` of the batch.
    fn live_checksum_sql(&self, index: usize) -> String {
        format!(
            "SELECT {index} AS i, count(*)::int8 AS n, \
             coalesce(sum(hashtextextended(({})::text, 0)), 0)::text AS h FROM {}",
            self.live_values(),
            self.after.sql_name()
        )
    }

    /// The rows that differ, at most [`SAMPLE`], in key order with numeric key values compared
    /// as numbers (`id=2` before `id=10`).
    fn diff_sql(&self, tag: i32) -> String {
        format!(
            "WITH b0 AS (SELECT {sk} AS k, {sv} AS v FROM {sf}), \
                  a0 AS (SELECT {lk} AS k, {lv} AS v FROM {t}), \
                  b AS (SELECT coalesce(k, v::text) AS k, v, \
                               row_number() OVER (PARTITION BY coalesce(k, v::text)) AS n FROM b0), \
                  a AS (SELECT coalesce(k, v::text) AS k, v, \
                               row_number() OVER (PARTITION BY coalesce(k, v::text)) AS n FROM a0) \
             SELECT coalesce(b.k, a.k) AS k, b.v AS bv, a.v AS av \
             FROM b FULL JOIN a ON a.k = b.k AND a.n = b.n \
             WHERE b.v IS DISTINCT FROM a.v \
             ORDER BY ARRAY(SELECT x[1]::numeric FROM regexp_matches(coalesce(b.k, a.k), \
                      '=(-?[0-9]+(?:\\.[0-9]+)?)(?=, |$)', 'g') AS x), 1 \
             LIMIT {SAMPLE}",
            sk = self.stash_key,
            sv = self.stash_values(),
            sf = self.stash_from(tag),
            lk = self.live_key,
            lv = self.live_values(),
            t = self.after.sql_name(),
        )
    }
}

/// The row count and checksum of each of `pairs`' stashed tables (`first` is the index of the
/// first of them), in one pass over the stash.
fn stash_checksums_sql(tag: i32, pairs: &[Pair], first: usize) -> String {
    let mut index = Vec::new();
    let mut values = Vec::new();
    let mut names = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let name = literal(&p.before.display_name());
        index.push(format!("WHEN {name} THEN {}", first + i));
        values.push(format!("WHEN {name} THEN ({})::text", p.stash_values()));
        names.push(name);
    }
    format!(
        "SELECT CASE tbl {} END AS i, count(*)::int8 AS n, \
         coalesce(sum(hashtextextended(CASE tbl {} END, 0)), 0)::text AS h \
         FROM {} WHERE tbl IN ({}) GROUP BY tbl",
        index.join(" "),
        values.join(" "),
        stash_table(tag),
        names.join(", ")
    )
}

/// Which stashed tables can be compared with which live tables, and over which columns. A
/// table is followed by identity (its oid: a renamed table keeps its rows), else by schema and
/// name (a table rebuilt under its name must keep them too). A column of the same table is
/// followed by its `attnum`, which a rename keeps (so an up that renames `nickname` and adds a
/// new `nickname` is compared through the renamed column), else by name (a column dropped and
/// added again under its name is still compared, and its lost values show). Where a column's
/// type changed, the live value is cast back to the old type (so a silently rounded numeric
/// shows) unless `cast_back` is off.
fn pairs<'a>(
    stash: &'a Stash,
    after: &'a [Table],
    exclude: &Exclude,
    cast_back: bool,
) -> Vec<Pair<'a>> {
    let mut out = Vec::new();
    for before in stash.tables.iter().filter(|t| !exclude.table(*t)) {
        let same = |t: &&Table| before.oid != 0 && t.oid == before.oid;
        let Some(now) = after.iter().find(same).or_else(|| {
            after
                .iter()
                .find(|t| t.schema == before.schema && t.name == before.name)
        }) else {
            continue;
        };
        let same_relation = before.oid != 0 && before.oid == now.oid;
        // The live column a stashed column is now.
        let follow = |name: &str| -> Option<(&Column, &Column)> {
            let old = before.column(name)?;
            let by_identity = same_relation
                .then(|| {
                    now.columns
                        .iter()
                        .find(|c| c.attnum != 0 && c.attnum == old.attnum)
                })
                .flatten();
            Some((old, by_identity.or_else(|| now.column(name))?))
        };
        let cast = |name: &str| -> Option<String> {
            let (old, new) = follow(name)?;
            Some(if cast_back && old.type_sql != new.type_sql {
                format!("(({})::{})::text", ident(&new.name), old.type_sql)
            } else {
                format!("({})::text", ident(&new.name))
            })
        };
        let mut positions = Vec::new();
        let mut columns = Vec::new();
        let mut live = Vec::new();
        for (i, col) in before.columns.iter().enumerate() {
            if exclude.column(before, &col.name) {
                continue;
            }
            if let Some(expr) = cast(&col.name) {
                positions.push(i + 1);
                columns.push(col.name.clone());
                live.push(expr);
            }
        }
        let key_common = !before.primary_key.is_empty()
            && before.primary_key.iter().all(|c| follow(c).is_some());
        let (live_key, stash_key) = if key_common {
            (
                key_expr(before, |c| cast(c).unwrap_or_default()),
                "k".to_owned(),
            )
        } else {
            ("NULL::text".to_owned(), "NULL::text".to_owned())
        };
        out.push(Pair {
            before,
            positions,
            columns,
            live,
            live_key,
            stash_key,
            after: now,
        });
    }
    out
}

/// Compares the stash with the live tables; returns the tables whose contents differ.
pub async fn compare(
    conn: &mut PgConnection,
    stash: &Stash,
    after: &[Table],
    exclude: &Exclude,
) -> Result<Vec<TableDiff>, sqlx::Error> {
    match compare_with(conn, stash, after, exclude, true).await {
        Ok(diffs) => Ok(diffs),
        // A value that no longer casts back to its old type: compare the text instead.
        Err(sqlx::Error::Database(_)) => compare_with(conn, stash, after, exclude, false).await,
        Err(e) => Err(e),
    }
}

async fn compare_with(
    conn: &mut PgConnection,
    stash: &Stash,
    after: &[Table],
    exclude: &Exclude,
    cast_back: bool,
) -> Result<Vec<TableDiff>, sqlx::Error> {
    let pairs = pairs(stash, after, exclude, cast_back);
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    // A table without stashed rows has no group: its sums stay those of no rows.
    let mut sums = vec![[(0i64, "0".to_owned()), (0i64, "0".to_owned())]; pairs.len()];
    // Per batch of tables, the stash side in one pass over the stash (every table's rows are
    // in one stash table, which a query per table would read once per table), then the live
    // side, a scan of each table.
    for (b, batch) in pairs.chunks(BATCH).enumerate() {
        let first = b * BATCH;
        let live: Vec<String> = batch
            .iter()
            .enumerate()
            .map(|(i, p)| p.live_checksum_sql(first + i))
            .collect();
        let sides = [
            stash_checksums_sql(stash.tag, batch, first),
            live.join("\nUNION ALL\n"),
        ];
        for (side, sql) in sides.into_iter().enumerate() {
            let rows = sqlx::query(AssertSqlSafe(sql))
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            for row in rows {
                let i: i32 = row.try_get("i")?;
                sums[i as usize][side] = (row.try_get("n")?, row.try_get("h")?);
            }
        }
    }
    let mut diffs = Vec::new();
    for (pair, [before, now]) in pairs.iter().zip(sums) {
        if before == now {
            continue;
        }
        let rows = sqlx::query(AssertSqlSafe(pair.diff_sql(stash.tag)))
            .fetch_all(&mut *conn)
            .await?;
        let rows = rows
            .into_iter()
            .map(|r| {
                Ok(RowDiff {
                    key: r.try_get("k")?,
                    before: r.try_get("bv")?,
                    after: r.try_get("av")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        diffs.push(TableDiff {
            table: pair.before.display_name(),
            columns: pair.columns.clone(),
            key_columns: pair.before.primary_key.clone(),
            rows_before: before.0,
            rows_after: now.0,
            rows,
        });
    }
    Ok(diffs)
}

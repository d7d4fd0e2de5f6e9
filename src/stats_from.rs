//! Rows shaped like production without copying it (`check --stats-from URL`): migproof reads
//! only the planner's statistics of a live database (`pg_stats`: null fractions, most common
//! values and their frequencies, histogram bounds, distinct counts; and `pg_class.reltuples`),
//! in one read-only transaction, never a table's rows. The seeder then writes, for every
//! column it knows, rows of that shape (`model::seed::Shape`): as many NULLs of its rows as the
//! column's null fraction says, its common values as often as they are common, values spread
//! over its histogram, and a unique column's values distinct. Row counts become the lock
//! trace's table sizes (`check --locks`), where `[locks.rows]` does not give one.

use std::collections::BTreeMap;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::backend::{self, BackendError};
use crate::model::seed::{Shape, ROWS};
use crate::run::RunError;

/// What the statistics say, by `schema.table.column` and by `schema.table`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub shapes: BTreeMap<String, Shape>,
    /// Estimated rows per table (`reltuples`), for tables analysed at least once.
    pub rows: BTreeMap<String, u64>,
}

/// One row of `pg_stats`.
type ColumnStats = (
    String,
    String,
    String,
    f32,
    f32,
    Option<String>,
    Option<Vec<f32>>,
    Option<String>,
);

const QUERY: &str = "SELECT schemaname::text, tablename::text, attname::text, null_frac, \
     n_distinct, most_common_vals::text, most_common_freqs, histogram_bounds::text \
     FROM pg_stats \
     WHERE schemaname NOT IN ('pg_catalog', 'information_schema') \
       AND schemaname NOT LIKE 'pg\\_%' AND NOT inherited";

const ROW_COUNTS: &str = "SELECT n.nspname::text || '.' || c.relname::text, c.reltuples::int8 \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND c.reltuples >= 0 \
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
       AND n.nspname NOT LIKE 'pg\\_%'";

/// Reads the statistics of the database at `url`, in a read-only transaction.
pub async fn read(url: &str) -> Result<Stats, RunError> {
    let shown = backend::url::redact(url);
    let options: PgConnectOptions = url.parse().map_err(|e| {
        RunError::Input(format!(
            "--stats-from `{shown}` is not a PostgreSQL URL: {e}"
        ))
    })?;
    let mut conn = options.connect().await.map_err(|e| {
        RunError::Backend(BackendError::Connect {
            target: shown.clone(),
            reason: backend::describe(&e),
        })
    })?;
    let read = read_on(&mut conn).await;
    let _ = conn.close().await;
    read.map_err(|e| {
        RunError::Lost(format!(
            "--stats-from `{shown}`: reading its statistics failed: {}",
            backend::describe(&e)
        ))
    })
}

impl Stats {
    /// What shaped the seeded rows, for the summary.
    pub fn describe(&self, shown: &str) -> String {
        let tables = self
            .shapes
            .keys()
            .filter_map(|k| k.rsplit_once('.').map(|(t, _)| t))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let rows: u64 = self.rows.values().sum();
        let plural = |n: usize, what: &str| match n {
            1 => format!("1 {what}"),
            n => format!("{n} {what}s"),
        };
        format!(
            "seeded rows shaped like the statistics of {} of {} (about {rows} rows) from \
             {shown}",
            plural(self.shapes.len(), "column"),
            plural(tables, "table")
        )
    }
}

async fn read_on(conn: &mut PgConnection) -> Result<Stats, sqlx::Error> {
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *conn)
        .await?;
    let columns: Vec<ColumnStats> = sqlx::query_as(QUERY).fetch_all(&mut *conn).await?;
    let rows: Vec<(String, i64)> = sqlx::query_as(ROW_COUNTS).fetch_all(&mut *conn).await?;
    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
    let mut stats = Stats {
        rows: rows
            .into_iter()
            .map(|(t, n)| (t, n.max(0) as u64))
            .collect(),
        ..Stats::default()
    };
    for (schema, table, column, null_frac, distinct, common, freqs, bounds) in columns {
        let common = common.as_deref().and_then(elements).unwrap_or_default();
        let bounds = bounds.as_deref().and_then(elements).unwrap_or_default();
        let rows = stats
            .rows
            .get(&format!("{schema}.{table}"))
            .copied()
            .unwrap_or_default() as f32;
        let freqs = freqs.unwrap_or_default();
        let shape = shape(null_frac, distinct, rows, &common, &freqs, &bounds);
        stats
            .shapes
            .insert(format!("{schema}.{table}.{column}"), shape);
    }
    Ok(stats)
}

/// The seeded rows of a column: `round(null_frac × ROWS)` NULLs (at least one when the column
/// holds any), then each common value in proportion to its frequency among the non-NULL rows,
/// then values spread evenly over the histogram bounds; no more distinct values than the
/// column has (`distinct`: `n_distinct` as `pg_stats` gives it, a count, or minus a fraction
/// of `rows`).
pub fn shape(
    null_frac: f32,
    distinct: f32,
    rows: f32,
    common: &[String],
    freqs: &[f32],
    bounds: &[String],
) -> Shape {
    let mut nulls = (null_frac * ROWS as f32).round() as usize;
    if null_frac > 0.0 && nulls == 0 {
        nulls = 1;
    }
    let nulls = nulls.min(ROWS);
    let slots = ROWS - nulls;
    let not_null = (1.0 - null_frac).max(f32::EPSILON);
    let mut values = Vec::new();
    for (value, freq) in common.iter().zip(freqs) {
        let n = ((freq / not_null) * slots as f32).round().max(1.0) as usize;
        for _ in 0..n {
            if values.len() < slots {
                values.push(value.clone());
            }
        }
    }
    let rest = slots - values.len();
    if rest > 0 && !bounds.is_empty() {
        for k in 0..rest {
            let at = if rest == 1 {
                bounds.len() / 2
            } else {
                k * (bounds.len() - 1) / (rest - 1)
            };
            values.push(bounds[at].clone());
        }
    }
    let distinct = if distinct < 0.0 {
        -distinct * rows
    } else {
        distinct
    };
    if distinct >= 1.0 {
        let mut kept: Vec<String> = Vec::new();
        for v in &values {
            if !kept.contains(v) && kept.len() < distinct as usize {
                kept.push(v.clone());
            }
        }
        if !kept.is_empty() {
            values = values
                .iter()
                .enumerate()
                .map(|(i, v)| match kept.contains(v) {
                    true => v.clone(),
                    false => kept[i % kept.len()].clone(),
                })
                .collect();
        }
    }
    Shape { nulls, values }
}

/// The elements of a one-dimensional array literal as PostgreSQL writes it (`{a,"b c",NULL}`),
/// NULLs left out. `None` for anything else (an array of arrays: a column of an array type).
pub fn elements(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    if inner.starts_with('{') {
        return None;
    }
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => item.extend(chars.next()),
                    '"' => break,
                    c => item.push(c),
                }
            }
            // up to the separator
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
            }
        } else {
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
                item.push(c);
            }
        }
        if quoted || item != "NULL" {
            out.push(item);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals_are_read_as_postgresql_writes_them() {
        assert_eq!(
            elements(r#"{a,"b c",NULL,"NULL","say \"hi\"",x}"#).unwrap(),
            ["a", "b c", "NULL", "say \"hi\"", "x"]
        );
        assert_eq!(elements("{{1,2},{3,4}}"), None);
        assert_eq!(elements("{}").unwrap(), Vec::<String>::new());
        assert_eq!(elements("not an array"), None);
    }

    #[test]
    fn a_third_of_nulls_is_three_of_nine_rows() {
        let s = shape(
            1.0 / 3.0,
            -1.0,
            3000.0,
            &[],
            &[],
            &["a".into(), "m".into(), "z".into()],
        );
        assert_eq!(s.nulls, 3);
        assert_eq!(s.values.len(), 6);
        assert_eq!(s.values[0], "a");
        assert_eq!(s.values[5], "z");
    }

    #[test]
    fn common_values_come_as_often_as_they_are_common() {
        let s = shape(
            0.0,
            2.0,
            100.0,
            &["DE".into(), "FR".into()],
            &[0.67, 0.33],
            &[],
        );
        assert_eq!(s.nulls, 0);
        assert_eq!(
            s.values,
            ["DE", "DE", "DE", "DE", "DE", "DE", "FR", "FR", "FR"]
        );
    }

    #[test]
    fn no_more_distinct_values_than_the_column_has() {
        let bounds: Vec<String> = (0..20).map(|n| format!("v{n:02}")).collect();
        let s = shape(0.0, 3.0, 1000.0, &[], &[], &bounds);
        let mut distinct = s.values.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "{:?}", s.values);
        assert_eq!(s.values.len(), 9);
    }

    #[test]
    fn a_column_with_any_null_gets_at_least_one() {
        assert_eq!(shape(0.01, -1.0, 10.0, &[], &[], &[]).nulls, 1);
        assert_eq!(shape(0.0, -1.0, 10.0, &[], &[], &[]).nulls, 0);
    }
}

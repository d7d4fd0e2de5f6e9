//! Sequences against the columns they feed: a sequence whose next value is at or below the
//! largest value already in its column makes the next insert that takes an id from it fail on
//! the key (or write a duplicate). Read-only.

use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;

use super::{ident, literal};

/// The columns a sequence feeds: owned by the column (`serial`, `OWNED BY`) or an identity.
const FED: &str = "\
SELECT n.nspname::text, c.relname::text, a.attname::text, sn.nspname::text, s.relname::text
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'p')
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i')
  AND t.typname IN ('int2', 'int4', 'int8', 'numeric')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_migproof')
ORDER BY 1, 2, 3";

/// A column whose sequence would next give a value it already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behind {
    /// `schema.table.column`.
    pub column: String,
    /// `schema.sequence`.
    pub sequence: String,
    pub max: String,
    pub next: String,
}

/// Every column whose sequence (ascending) would next give a value at or below the column's
/// largest value, in two round trips. The next value is read from the sequence itself
/// (`last_value`, `is_called`): `pg_sequences` hides it after `setval(..., false)`.
pub async fn behind(conn: &mut PgConnection) -> Result<Vec<Behind>, sqlx::Error> {
    let fed: Vec<(String, String, String, String, String)> =
        sqlx::query_as(FED).fetch_all(&mut *conn).await?;
    if fed.is_empty() {
        return Ok(Vec::new());
    }
    let arms: Vec<String> = fed
        .iter()
        .map(|(schema, table, column, seq_schema, seq)| {
            format!(
                "SELECT {name}::text, {seq_name}::text, \
                   (SELECT max({col})::numeric FROM {qt}) AS max, \
                   (SELECT CASE WHEN q.is_called THEN q.last_value + p.seqincrement \
                           ELSE q.last_value END::numeric \
                    FROM {qs} AS q, pg_sequence AS p \
                    WHERE p.seqrelid = {ls}::regclass AND p.seqincrement > 0) AS next",
                name = literal(&format!("{schema}.{table}.{column}")),
                seq_name = literal(&format!("{seq_schema}.{seq}")),
                col = ident(column),
                qt = format!("{}.{}", ident(schema), ident(table)),
                qs = format!("{}.{}", ident(seq_schema), ident(seq)),
                ls = literal(&format!("{}.{}", ident(seq_schema), ident(seq))),
            )
        })
        .collect();
    let mut out = Vec::new();
    for batch in arms.chunks(50) {
        let sql = format!(
            "SELECT col, seq, max::text, next::text FROM ({}) AS f(col, seq, max, next) \
             WHERE next <= max",
            batch.join("\nUNION ALL\n")
        );
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(AssertSqlSafe(sql))
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
        out.extend(
            rows.into_iter()
                .map(|(column, sequence, max, next)| Behind {
                    column,
                    sequence,
                    max,
                    next,
                }),
        );
    }
    Ok(out)
}

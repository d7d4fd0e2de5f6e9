//! Sequences against the columns they feed: a sequence whose next value is at or below the
//! largest value already in its column makes the next insert that takes an id from it fail on
//! the key (or write a duplicate). Read-only.

use sqlx::postgres::PgConnection;

/// Creates `_migproof.behind()`, installed with the session (`Session::open`): the columns a
/// sequence feeds (owned by the column, `serial`, `OWNED BY`, or an identity) whose sequence,
/// ascending, would next give a value at or below the column's largest. The next value of a
/// sequence that has given one is its last plus its increment (`pg_sequence_last_value`, an
/// expression, not a statement of its own); one that has not (new, or after
/// `setval(..., false)`, where that function and `pg_sequences` give NULL) is read from the
/// sequence itself (`last_value`, `is_called`). A function, so that a check is one round trip
/// and its small queries are planned one by one, not as one union of every table planned again
/// on every call.
pub const FUNCTION: &str = "
CREATE OR REPLACE FUNCTION _migproof.behind()
RETURNS TABLE (col text, seq text, max text, next text)
LANGUAGE plpgsql AS $$
DECLARE
    f record;
    m numeric;
    nx numeric;
BEGIN
    FOR f IN
        SELECT n.nspname::text AS schema, c.relname::text AS tbl, a.attname::text AS att,
               sn.nspname::text AS seq_schema, s.relname::text AS seq_name,
               s.oid AS seq_oid, p.seqincrement AS increment
        FROM pg_depend d
        JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_sequence p ON p.seqrelid = s.oid AND p.seqincrement > 0
        JOIN pg_namespace sn ON sn.oid = s.relnamespace
        JOIN pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'p')
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid AND NOT a.attisdropped
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.deptype IN ('a', 'i')
          AND t.typname IN ('int2', 'int4', 'int8', 'numeric')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_migproof')
          -- a table without a page holds no row (a parent's rows may live in its children);
          -- the catalogs, made by initdb, are not the user's
          AND c.oid >= 16384
          AND (c.relkind = 'p' OR c.relhassubclass OR pg_relation_size(c.oid) > 0)
        ORDER BY 1, 2, 3
    LOOP
        EXECUTE format('SELECT max(%I)::numeric FROM %I.%I', f.att, f.schema, f.tbl) INTO m;
        CONTINUE WHEN m IS NULL;
        nx := pg_sequence_last_value(f.seq_oid)::numeric + f.increment;
        IF nx IS NULL THEN EXECUTE format(
            'SELECT CASE WHEN is_called THEN last_value + %s ELSE last_value END::numeric FROM %I.%I',
            f.increment, f.seq_schema, f.seq_name) INTO nx;
        END IF;
        IF nx <= m THEN
            col := f.schema || '.' || f.tbl || '.' || f.att;
            seq := f.seq_schema || '.' || f.seq_name;
            max := m::text;
            next := nx::text;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$";

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
/// largest value, in one round trip (see [`FUNCTION`]).
pub async fn behind(conn: &mut PgConnection) -> Result<Vec<Behind>, sqlx::Error> {
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT col, seq, max, next FROM _migproof.behind()")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(column, sequence, max, next)| Behind {
            column,
            sequence,
            max,
            next,
        })
        .collect())
}

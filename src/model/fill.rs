//! Large-table fill for the lock trace (`--rows N`): from a table's description, one
//! `INSERT ... SELECT ... FROM generate_series(1, N)` that writes N plausible rows on the server.
//! Values follow the column types (within numeric precision and varchar limits, enum labels),
//! are distinct in primary-key and unique columns (and those partial or expression unique
//! indexes read) and repeat elsewhere, and foreign keys pick
//! existing parent keys by modular arithmetic over the parent's rows (one-to-one when both
//! sides have N rows). Pure: the runner sends the SQL and turns failures into notes.
//!
//! The rows should also be ones the rest of the history can live with: [`with_ahead`] adds to a
//! table the unique keys and foreign keys that later versions of it (from the golden pass) hold
//! over columns it already has, so that the fill writes distinct values and existing parents
//! there before the migration that adds the constraint runs.

use std::collections::BTreeSet;

use crate::observe::catalog::{Column, Table};
use crate::observe::{ident, literal};

/// How text columns are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// Hex digests (`c4ca4238...`), addresses in columns named like `email`.
    Hashes,
    /// Dotted numbers (`0.17.0`): for a table whose indexes, checks or triggers parse its text
    /// as numbers or versions, and refused the hashes.
    Dotted,
}

/// The statement that fills `table` with `rows` rows, or why it cannot be filled.
/// `has_rows(sql_name)` says whether a referenced table holds rows to point at.
pub fn insert(
    table: &Table,
    rows: u64,
    has_rows: &dyn Fn(&str) -> bool,
    text: Text,
) -> Result<String, String> {
    let unique: BTreeSet<&str> = table
        .primary_key
        .iter()
        .chain(table.unique.iter().flatten())
        .chain(table.distinct.iter().flatten())
        .map(String::as_str)
        .collect();
    let mut columns: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut ctes: Vec<String> = Vec::new();
    let mut joins: Vec<String> = Vec::new();

    for (k, fk) in table.foreign_keys.iter().enumerate() {
        let nullable = fk
            .columns
            .iter()
            .all(|c| table.column(c).is_some_and(|c| !c.not_null));
        let self_ref = fk.ref_table == table.sql_name();
        if self_ref || !has_rows(&fk.ref_table) {
            if nullable {
                continue; // left NULL
            }
            return Err(if self_ref {
                format!(
                    "its NOT NULL foreign key ({}) references the table itself",
                    fk.columns.join(", ")
                )
            } else {
                format!("it references {}, which holds no rows", fk.ref_table)
            });
        }
        let refs: Vec<String> = fk.ref_columns.iter().map(|c| ident(c)).collect();
        let not_null: Vec<String> = refs.iter().map(|c| format!("{c} IS NOT NULL")).collect();
        ctes.push(format!(
            "p{k} AS (SELECT {}, row_number() OVER () - 1 AS rn FROM {} WHERE {})",
            refs.join(", "),
            fk.ref_table,
            not_null.join(" AND ")
        ));
        joins.push(format!(
            "LEFT JOIN p{k} ON p{k}.rn = (g.i - 1) % NULLIF((SELECT count(*) FROM p{k}), 0)"
        ));
        for (column, referenced) in fk.columns.iter().zip(&refs) {
            if !columns.contains(&ident(column)) {
                columns.push(ident(column));
                values.push(format!("p{k}.{referenced}"));
            }
        }
    }

    let fk_columns: BTreeSet<&str> = table
        .foreign_keys
        .iter()
        .flat_map(|fk| fk.columns.iter().map(String::as_str))
        .collect();
    for col in &table.columns {
        if fk_columns.contains(col.name.as_str())
            || col.server_filled(table.sequence_defaults.contains(&col.name))
        {
            continue;
        }
        let is_unique = unique.contains(col.name.as_str());
        if col.has_default && !is_unique {
            continue; // production rows mostly keep their defaults
        }
        match value(col, is_unique, rows.clamp(1, 1000), text) {
            Some(v) => {
                columns.push(ident(&col.name));
                values.push(format!("({v})::{}", col.type_sql));
            }
            None if col.not_null && !col.has_default => {
                return Err(format!(
                    "migproof cannot make values of type {} for its NOT NULL column {}",
                    col.type_sql, col.name
                ));
            }
            None => {}
        }
    }

    if columns.is_empty() {
        // every column takes its default
        return Ok(format!(
            "DO $fill$ BEGIN FOR i IN 1..{rows} LOOP INSERT INTO {} DEFAULT VALUES; END LOOP; END $fill$",
            table.sql_name()
        ));
    }
    let with = if ctes.is_empty() {
        String::new()
    } else {
        format!("WITH {} ", ctes.join(", "))
    };
    Ok(format!(
        "{with}INSERT INTO {} ({}) SELECT {} FROM generate_series(1, {rows}::int8) AS g(i) {}",
        table.sql_name(),
        columns.join(", "),
        values.join(", "),
        joins.join(" ")
    ))
}

/// `table` with the unique keys (and columns partial or expression unique indexes read) and
/// the foreign keys that `later` versions of the same table hold
/// over columns it already has. A later foreign key is kept only when its parent exists `now`
/// with the referenced columns and holds rows (`has_rows`), so that a key the fill cannot
/// satisfy yet never stops a table from being filled.
pub fn with_ahead(
    table: &Table,
    later: &[&Table],
    now: &[Table],
    has_rows: &dyn Fn(&str) -> bool,
) -> Table {
    let mut merged = table.clone();
    let holds = |columns: &[String]| columns.iter().all(|c| table.column(c).is_some());
    // Text a later version turns into another type (jsonb, an enum, a number) is written as
    // that type's values, cast to text: the conversion then meets what production rows,
    // written for it, hold. The first later type other than text is the one that matters.
    for column in merged.columns.iter_mut().filter(|c| c.category == "S") {
        let then = later.iter().find_map(|t| {
            t.column(&column.name)
                .filter(|c| c.category != "S" || c.enum_labels.is_some())
        });
        if let Some(then) = then {
            column.base_type = then.base_type.clone();
            column.category = then.category.clone();
            column.typmod = then.typmod;
            column.enum_labels = then.enum_labels.clone();
            column.is_array = then.is_array;
        }
    }
    for t in later {
        for key in t.unique.iter().chain(std::iter::once(&t.primary_key)) {
            if !key.is_empty() && holds(key) && !merged.unique.contains(key) {
                merged.unique.push(key.clone());
            }
        }
        for read in &t.distinct {
            if holds(read) && !merged.distinct.contains(read) {
                merged.distinct.push(read.clone());
            }
        }
        for fk in &t.foreign_keys {
            let parent_ready = fk.ref_table != table.sql_name()
                && has_rows(&fk.ref_table)
                && now.iter().any(|p| {
                    p.sql_name() == fk.ref_table
                        && fk.ref_columns.iter().all(|c| p.column(c).is_some())
                });
            let known = merged
                .foreign_keys
                .iter()
                .any(|k| k.columns.iter().any(|c| fk.columns.contains(c)));
            if parent_ready && holds(&fk.columns) && !known {
                merged.foreign_keys.push(fk.clone());
            }
        }
    }
    merged
}

/// The largest integer part a numeric typmod allows, capped; `None` when unconstrained.
fn numeric_max(typmod: i32) -> Option<(u64, i32)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    let (precision, scale) = ((t >> 16) & 0xffff, t & 0xffff);
    let digits = (precision - scale).clamp(0, 9) as u32;
    Some((10u64.pow(digits) - 1, scale))
}

/// The varchar/char length limit, if any.
fn char_limit(col: &Column) -> Option<i32> {
    match col.base_type.as_str() {
        "varchar" | "bpchar" if col.typmod >= 4 => Some(col.typmod - 4),
        "bpchar" => Some(1),
        _ => None,
    }
}

/// An expression of `g.i` (1..N) giving the column's value, distinct per row when `unique`,
/// else repeating with `period` (so that plain integer columns hold 1..period, ids that exist
/// in tables filled alongside); `None` for types migproof does not know.
fn value(col: &Column, unique: bool, period: u64, text: Text) -> Option<String> {
    let scalar = scalar(col, unique, period, text)?;
    Some(if col.is_array {
        format!("ARRAY[{scalar}]")
    } else {
        scalar
    })
}

fn scalar(col: &Column, unique: bool, period: u64, text: Text) -> Option<String> {
    // g.i when unique, else 1..period
    let n = if unique {
        "g.i".to_string()
    } else {
        format!("(1 + (g.i - 1) % {period})")
    };
    if let Some(labels) = &col.enum_labels {
        if labels.is_empty() {
            return None;
        }
        let labels: Vec<String> = labels.iter().map(|l| literal(l)).collect();
        return Some(format!(
            "(ARRAY[{}])[1 + g.i % {}]",
            labels.join(", "),
            labels.len()
        ));
    }
    let email = col.name.to_lowercase().contains("email");
    Some(match col.base_type.as_str() {
        "int2" | "int4" | "int8" | "oid" => n,
        "numeric" => match numeric_max(col.typmod) {
            None => format!("{n} + 0.25"),
            Some((0, scale)) => format!("0.{}", "5".repeat(scale.max(1) as usize)),
            Some(_) if unique => "g.i + 0.25".to_string(), // too many rows overflows: a note
            Some((max, _)) => format!("1 + g.i % {max} + 0.25"),
        },
        "float4" | "float8" => format!("{n}::float8 / 8"),
        "money" => format!("({n})::numeric"),
        "bool" => "g.i % 2 = 0".into(),
        "text" | "varchar" | "bpchar" | "citext" | "name" => {
            let text = match (email, unique, text) {
                (true, true, _) => "'user' || g.i || '@example.com'".to_string(),
                (true, false, _) => format!("'user' || {n} || '@example.com'"),
                (false, _, Text::Dotted) => format!("'0.' || {n} || '.0'"),
                (false, true, Text::Hashes) => match char_limit(col) {
                    Some(limit) if limit < 32 => format!("lpad(to_hex(g.i), {limit}, '0')"),
                    _ => "md5(g.i::text)".to_string(),
                },
                (false, false, Text::Hashes) => format!("md5({n}::text)"),
            };
            match char_limit(col) {
                Some(limit) => format!("left({text}, {limit})"),
                None => text,
            }
        }
        "uuid" => format!("md5(({n})::text)::uuid"),
        "date" => format!("date '2000-01-01' + ({n})::int4"),
        "timestamp" | "timestamptz" => {
            format!("timestamp '2000-01-01' + ({n}) * interval '1 minute'")
        }
        "time" | "timetz" => "time '00:00' + (g.i % 86400) * interval '1 second'".into(),
        "interval" => format!("({n}) * interval '1 second'"),
        "json" | "jsonb" => format!("json_build_object('n', {n})"),
        "bytea" => format!("decode(md5(({n})::text), 'hex')"),
        "inet" => format!("'10.0.0.0'::inet + {n}"),
        "tsvector" => format!("('word' || {n})::tsvector"),
        "tsquery" => format!("('word' || {n})::tsquery"),
        "ltree" => format!("'top.n' || {n}"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::catalog::ForeignKey;

    fn col(name: &str, base: &str, typmod: i32, not_null: bool) -> Column {
        Column {
            name: name.into(),
            attnum: 0,
            type_sql: base.into(),
            type_oid: 0,
            base_type: base.into(),
            category: String::new(),
            typmod,
            not_null,
            has_default: false,
            identity: String::new(),
            generated: String::new(),
            enum_labels: None,
            is_array: false,
        }
    }

    fn table(name: &str, columns: Vec<Column>) -> Table {
        Table {
            oid: 1,
            schema: "public".into(),
            name: name.into(),
            columns,
            primary_key: vec![],
            unique: vec![],
            foreign_keys: vec![],
            distinct: vec![],
            sequence_defaults: vec![],
            signature: String::new(),
        }
    }

    #[test]
    fn identity_keys_are_left_to_the_server_and_unique_columns_are_distinct() {
        let mut id = col("id", "int8", -1, true);
        id.identity = "a".into();
        let mut t = table(
            "accounts",
            vec![
                id,
                col("email", "text", -1, true),
                col("note", "text", -1, false),
            ],
        );
        t.primary_key = vec!["id".into()];
        t.unique = vec![vec!["email".into()]];
        let sql = insert(&t, 500, &|_| true, Text::Hashes).unwrap();
        assert_eq!(
            sql,
            "INSERT INTO \"public\".\"accounts\" (\"email\", \"note\") SELECT \
             ('user' || g.i || '@example.com')::text, (md5((1 + (g.i - 1) % 500)::text))::text \
             FROM generate_series(1, 500::int8) AS g(i) "
        );
    }

    #[test]
    fn numeric_values_fit_the_precision_and_varchar_its_limit() {
        // numeric(5,2): at most 999.99
        let c = col("price", "numeric", (5 << 16 | 2) + 4, true);
        assert_eq!(
            value(&c, false, 1000, Text::Hashes).unwrap(),
            "1 + g.i % 999 + 0.25"
        );
        let c = col("code", "varchar", 8 + 4, true);
        assert_eq!(
            value(&c, true, 1000, Text::Hashes).unwrap(),
            "left(lpad(to_hex(g.i), 8, '0'), 8)"
        );
        assert_eq!(
            value(&c, true, 1000, Text::Dotted).unwrap(),
            "left('0.' || g.i || '.0', 8)"
        );
        let c = col("customer_id", "int8", -1, true);
        assert_eq!(
            value(&c, false, 20, Text::Hashes).unwrap(),
            "(1 + (g.i - 1) % 20)"
        );
    }

    #[test]
    fn foreign_keys_pick_parent_rows_or_stay_null() {
        let mut t = table(
            "orders",
            vec![
                col("customer_id", "int8", -1, true),
                col("coupon_id", "int8", -1, false),
            ],
        );
        t.foreign_keys = vec![
            ForeignKey {
                columns: vec!["customer_id".into()],
                ref_table: "\"public\".\"customers\"".into(),
                ref_columns: vec!["id".into()],
            },
            ForeignKey {
                columns: vec!["coupon_id".into()],
                ref_table: "\"public\".\"coupons\"".into(),
                ref_columns: vec!["id".into()],
            },
        ];
        let has_rows = |t: &str| t.contains("customers");
        let sql = insert(&t, 10, &has_rows, Text::Hashes).unwrap();
        assert!(sql.starts_with("WITH p0 AS (SELECT \"id\", row_number() OVER () - 1 AS rn FROM \"public\".\"customers\" WHERE \"id\" IS NOT NULL) "), "{sql}");
        assert!(
            sql.contains("(\"customer_id\") SELECT p0.\"id\" FROM"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "LEFT JOIN p0 ON p0.rn = (g.i - 1) % NULLIF((SELECT count(*) FROM p0), 0)"
            ),
            "{sql}"
        );
        let err = insert(&t, 10, &|_| false, Text::Hashes).unwrap_err();
        assert!(
            err.contains("references \"public\".\"customers\", which holds no rows"),
            "{err}"
        );
    }

    #[test]
    fn keys_a_later_version_adds_are_filled_for_now() {
        let parent = table("crates", vec![col("id", "int4", -1, true)]);
        let now = table(
            "versions",
            vec![
                col("crate_id", "int4", -1, true),
                col("num", "varchar", -1, true),
            ],
        );
        let mut now = now;
        now.columns[1].category = "S".into();
        let mut later = now.clone();
        later.columns.push(col("yanked", "bool", -1, true));
        later.distinct = vec![vec!["num".into()]];
        later.unique = vec![vec!["crate_id".into(), "num".into()], vec!["yanked".into()]];
        later.foreign_keys = vec![
            ForeignKey {
                columns: vec!["crate_id".into()],
                ref_table: parent.sql_name(),
                ref_columns: vec!["id".into()],
            },
            ForeignKey {
                columns: vec!["crate_id".into()],
                ref_table: "\"public\".\"gone\"".into(),
                ref_columns: vec!["id".into()],
            },
        ];
        let tables = [parent.clone(), now.clone()];
        let mut jsonb = later.clone();
        jsonb.columns[1].base_type = "jsonb".into();
        jsonb.columns[1].category = "U".into();
        let merged = with_ahead(&now, &[&later, &jsonb], &tables, &|_| true);
        // text that becomes jsonb is written as JSON, cast to text
        assert_eq!(
            value(&merged.columns[1], true, 10, Text::Hashes).unwrap(),
            "json_build_object('n', g.i)"
        );
        let merged = with_ahead(&now, &[&later], &tables, &|_| true);
        // only the key over columns `versions` holds now
        assert_eq!(merged.unique, [vec!["crate_id", "num"]]);
        assert_eq!(merged.foreign_keys, later.foreign_keys[..1]);
        assert_eq!(merged.distinct, [vec!["num"]]);
        let sql = insert(&merged, 10, &|_| true, Text::Hashes).unwrap();
        assert!(
            sql.contains("(\"crate_id\", \"num\") SELECT p0.\"id\", "),
            "{sql}"
        );
        // a parent without rows: the later key is left out, and the table is still filled
        let merged = with_ahead(&now, &[&later], &tables, &|_| false);
        assert!(merged.foreign_keys.is_empty());
        assert!(insert(&merged, 10, &|_| false, Text::Hashes).is_ok());
    }

    #[test]
    fn unknown_not_null_types_are_reported() {
        let t = table("shapes", vec![col("area", "polygon", -1, true)]);
        assert!(insert(&t, 10, &|_| true, Text::Hashes)
            .unwrap_err()
            .contains("type polygon"));
    }

    #[test]
    fn parents_come_first() {
        let parent = table("a", vec![]);
        let mut child = table("b", vec![]);
        child.foreign_keys = vec![ForeignKey {
            columns: vec![],
            ref_table: parent.sql_name(),
            ref_columns: vec![],
        }];
        let tables = [child, parent];
        let names: Vec<&str> = crate::observe::catalog::parents_first(&tables)
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}

//! The deterministic adversarial seeder: from a table's description, the rows a realistic but
//! nasty production database would hold (NULLs where allowed, repeated values, text differing
//! only by case, full numeric scale, long text up to the limit, single words, empty and
//! whitespace-only text, extreme but legal numbers and timestamps, enum labels, JSON
//! documents, NULL and non-NULL foreign keys). Values are SQL
//! text literals; the executor inserts them and skips any row a constraint rejects.

use crate::observe::catalog::{Column, Table};

/// Rows seeded per table.
pub const ROWS: usize = 9;

/// One row to insert: the columns given a value (as text, `None` = SQL NULL). Columns left
/// out take their defaults.
pub type Row = Vec<(String, Option<String>)>;

/// Existing key tuples a foreign key may point at, one list per foreign key of the table.
pub type Targets = Vec<Vec<Vec<Option<String>>>>;

/// What the project gives a column of the table, by column.
pub type Given<'a> = std::collections::BTreeMap<&'a str, Pick<'a>>;

/// Where a column's seeded values come from, besides the seeder's own.
#[derive(Debug, Clone, Copy)]
pub enum Pick<'a> {
    /// `[seed]` of migproof.toml: row `i` takes the `i`-th value, round and round.
    Values(&'a [String]),
    /// `--stats-from`: values shaped like a live column's statistics.
    Shaped(&'a Shape),
}

/// Live columns' statistics as seeded rows, by `schema.table.column` (`--stats-from`).
pub type Shapes = std::collections::BTreeMap<String, Shape>;

/// A live column's statistics as seeded rows (`--stats-from`): of the [`ROWS`] rows of a
/// round, the first `nulls` are NULL (its null fraction), and the next take `values` in turn
/// (its most common values as often as they are common, then values spread over its histogram
/// bounds); rows past them take the seeder's own values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub nulls: usize,
    pub values: Vec<String>,
}

impl Shape {
    /// Row `i`'s value: `Some(None)` NULL, `Some(Some(v))` a value, `None` the seeder's own.
    pub fn value(&self, i: usize) -> Option<Option<String>> {
        if i < self.nulls {
            return Some(None);
        }
        self.values.get(i - self.nulls).cloned().map(Some)
    }
}

/// The `i`-th adversarial row for `table` in seeding round `round`. `targets[f]` holds rows
/// the table's `f`-th foreign key may reference. Unique columns take values that differ per
/// row and per round, so that later rounds still add rows; other columns repeat values.
pub fn row(table: &Table, i: usize, round: usize, targets: &Targets, given: &Given) -> Row {
    let mut out: Row = Vec::new();
    let fk_columns: Vec<&str> = table
        .foreign_keys
        .iter()
        .flat_map(|fk| fk.columns.iter().map(String::as_str))
        .collect();
    for (f, fk) in table.foreign_keys.iter().enumerate() {
        let nullable = fk
            .columns
            .iter()
            .all(|c| table.column(c).is_some_and(|c| !c.not_null));
        let choices = targets.get(f).map(Vec::as_slice).unwrap_or(&[]);
        // Rows 0 and 4 leave a nullable reference empty; the others point at existing rows.
        let pick = if (nullable && (i == 0 || i == 4)) || choices.is_empty() {
            None
        } else {
            choices.get(i % choices.len())
        };
        for (k, column) in fk.columns.iter().enumerate() {
            if out.iter().any(|(c, _)| c == column) {
                continue;
            }
            let value = pick.and_then(|tuple| tuple.get(k).cloned().flatten());
            if value.is_none() && !nullable {
                continue; // nothing to point at: let the insert fail and the row be skipped
            }
            out.push((column.clone(), value));
        }
    }
    for col in &table.columns {
        if fk_columns.contains(&col.name.as_str()) {
            continue;
        }
        let sequence = table.sequence_defaults.contains(&col.name);
        if col.server_filled(sequence) {
            continue;
        }
        let unique = table.is_unique(&col.name) || table.primary_key.contains(&col.name);
        // A live column's shape decides its NULLs and values (a unique one stays distinct).
        if let Some(Pick::Shaped(shape)) = given.get(col.name.as_str()) {
            match shape.value(i) {
                Some(None) if !col.not_null => {
                    out.push((col.name.clone(), None));
                    continue;
                }
                Some(Some(v)) if !unique => {
                    out.push((col.name.clone(), Some(v)));
                    continue;
                }
                _ if col.has_default || !col.not_null => {
                    // not NULL in production: the seeder's own value, never its NULL rows
                    if let Some(v) = if unique {
                        unique_value(col, i, round)
                    } else {
                        value(col, i, false)
                    } {
                        out.push((col.name.clone(), Some(v)));
                    }
                    continue;
                }
                _ => {}
            }
        }
        // Row 0 is the row an application writes with the least effort: defaults and NULLs.
        if i == 0 && (col.has_default || !col.not_null) {
            continue;
        }
        if i == 5 && col.has_default {
            continue;
        }
        if !col.not_null && i == 4 {
            out.push((col.name.clone(), None));
            continue;
        }
        if let Some(Pick::Values(values)) = given.get(col.name.as_str()) {
            if !values.is_empty() {
                out.push((col.name.clone(), Some(values[i % values.len()].clone())));
                continue;
            }
        }
        let v = if unique {
            unique_value(col, i, round)
        } else {
            value(col, i, false)
        };
        match v {
            Some(v) => out.push((col.name.clone(), Some(v))),
            None if !col.not_null => out.push((col.name.clone(), None)),
            None => {}
        }
    }
    out
}

/// A value for a column that must be unique: the row's adversarial value, made distinct per
/// row and per seeding round.
fn unique_value(col: &Column, i: usize, round: usize) -> Option<String> {
    let n = round * ROWS + i;
    if col.is_array || col.enum_labels.is_some() {
        return value(col, i, true);
    }
    match col.base_type.as_str() {
        "int2" | "int4" | "int8" => Some(match (i, round) {
            (3 | 4, 0) => value(col, i, true)?,
            _ => (1000 + n).to_string(),
        }),
        "numeric" | "float4" | "float8" | "money" if round > 0 || i == 0 => {
            Some(format!("{}.5", 1000 + n))
        }
        "text" | "varchar" | "bpchar" | "citext" | "name" if i == 0 || round > 0 => {
            let v = value(col, i, true)?;
            let tag = format!("{n:03}");
            let limit = char_limit(col);
            let keep = limit
                .map(|l| l.saturating_sub(tag.len()))
                .unwrap_or(usize::MAX);
            let mut s: String = v.chars().take(keep).collect();
            s.push_str(&tag);
            Some(match limit {
                Some(l) => s
                    .chars()
                    .rev()
                    .take(l)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect(),
                None => s,
            })
        }
        "uuid" => Some(format!("00000000-0000-4000-8000-{n:012x}")),
        "date" if round > 0 || i == 0 => Some(format!("{}-01-01", 2000 + n % 7000)),
        "timestamp" | "timestamptz" if round > 0 || i == 0 => {
            Some(format!("{}-06-15 12:00:00", 2000 + n % 7000))
        }
        _ => value(col, i, true),
    }
}

fn numeric_limits(typmod: i32) -> Option<(usize, usize)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    Some((((t >> 16) & 0xffff) as usize, (t & 0xffff) as usize))
}

/// A numeric with `int_digits` digits before the point and `scale` after, from a digit pattern.
fn numeric_text(int_digits: usize, scale: usize, pattern: &str, negative: bool) -> String {
    let digits: String = pattern.chars().cycle().take(int_digits.max(1)).collect();
    let digits = if int_digits == 0 {
        "0".to_string()
    } else {
        digits
    };
    let frac: String = "5678901234".chars().cycle().take(scale).collect();
    let sign = if negative { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{digits}")
    } else {
        format!("{sign}{digits}.{frac}")
    }
}

/// The varchar/char length limit, if any.
fn char_limit(col: &Column) -> Option<usize> {
    match col.base_type.as_str() {
        "varchar" | "bpchar" if col.typmod >= 4 => Some((col.typmod - 4) as usize),
        "bpchar" => Some(1),
        _ => None,
    }
}

fn fit(text: String, limit: Option<usize>) -> String {
    match limit {
        Some(n) => text.chars().take(n).collect(),
        None => text,
    }
}

/// Text for row `i`: rows 1 and 2 repeat each other, or differ only by case when the column
/// must be unique; row 3 fills the column to its limit (1000 characters for text); row 4 is
/// non-ASCII with quotes, row 5 padded with spaces; rows 6, 7 and 8 are what real text
/// columns hold and tidy code forgets: a single word, an empty string, only spaces.
fn text_value(col: &Column, i: usize, unique: bool) -> String {
    let limit = char_limit(col);
    let email = col.name.to_lowercase().contains("email");
    let base = if email {
        "Ann.Example@Example.COM"
    } else {
        "Ann Example"
    };
    let v = match i {
        0 | 1 => base.to_string(),
        2 if unique => base.to_lowercase(),
        2 => base.to_string(),
        3 => {
            let n = limit.unwrap_or(1000);
            let unit = if email { "x" } else { "Long text " };
            let mut s: String = unit.chars().cycle().take(n.saturating_sub(1)).collect();
            s.push('Z');
            if email && n > 14 {
                s.replace_range(s.len() - 13.., "@example.com");
            }
            s
        }
        4 => if email {
            "zoë@ÉXAMPLE.org"
        } else {
            "ÅNGSTRÖM ünïcode ✓ 'quoted' \"dq\""
        }
        .to_string(),
        5 => if email {
            "o'brien@example.com"
        } else {
            "  padded  "
        }
        .to_string(),
        6 => if email { "ann@localhost" } else { "Ann" }.to_string(),
        7 => String::new(),
        _ => "   ".to_string(),
    };
    let v = fit(v, limit);
    if unique && i >= 3 && limit.is_none_or(|n| n >= 8) {
        // keep a unique column unique while preserving the nastiness of the value
        let mut s = fit(v, limit.map(|n| n - 2));
        s.push_str(&format!("{i:02}"));
        s
    } else {
        v
    }
}

fn int_value(bits: u32, i: usize, unique: bool) -> String {
    let (max, min): (i128, i128) = match bits {
        16 => (i16::MAX as i128, i16::MIN as i128),
        32 => (i32::MAX as i128, i32::MIN as i128),
        _ => (i64::MAX as i128, i64::MIN as i128),
    };
    let v = match i {
        0 | 1 => 42,
        2 if unique => 43,
        2 => 42,
        3 => max,
        4 => min,
        _ => 0,
    };
    v.to_string()
}

/// A value of the column's type for row `i`, or `None` when migproof cannot make one.
pub fn value(col: &Column, i: usize, unique: bool) -> Option<String> {
    if col.is_array {
        let element = scalar(col, i, unique)?;
        let quoted = format!("\"{}\"", element.replace('\\', "\\\\").replace('"', "\\\""));
        return Some(match i {
            4 => "{}".to_string(),
            3 => format!("{{{quoted},NULL,{quoted}}}"),
            _ => format!("{{{quoted}}}"),
        });
    }
    scalar(col, i, unique)
}

fn scalar(col: &Column, i: usize, unique: bool) -> Option<String> {
    if let Some(labels) = &col.enum_labels {
        if labels.is_empty() {
            return None;
        }
        let idx = match i {
            0 | 1 => 0,
            2 if unique => 1,
            2 => 0,
            3 => labels.len() - 1,
            _ => labels.len() / 2,
        };
        return labels.get(idx % labels.len()).cloned();
    }
    let u = |n: usize| if unique { n } else { 0 };
    Some(match col.base_type.as_str() {
        "int2" => int_value(16, i, unique),
        "int4" => int_value(32, i, unique),
        "int8" => int_value(64, i, unique),
        "numeric" => match numeric_limits(col.typmod) {
            Some((precision, scale)) => {
                let int_digits = precision.saturating_sub(scale);
                match i {
                    0 | 1 => numeric_text(int_digits.min(4), scale, "1234", false),
                    2 if unique => numeric_text(int_digits.min(4), scale, "2345", false),
                    2 => numeric_text(int_digits.min(4), scale, "1234", false),
                    3 => numeric_text(int_digits, scale, "9", false),
                    4 => numeric_text(int_digits, scale, "9", true),
                    _ => numeric_text(0, scale, "0", false),
                }
            }
            None => match i {
                0 | 1 => "1234.56789012345678901234567890".into(),
                2 if unique => "2234.5".into(),
                2 => "1234.56789012345678901234567890".into(),
                3 => "123456789012345678901234567890.123456789".into(),
                4 => "-0.000000000000000000001".into(),
                _ => "0".into(),
            },
        },
        "float4" | "float8" => match i {
            0 | 1 => "3.14159".into(),
            2 if unique => "2.71828".into(),
            2 => "3.14159".into(),
            3 if col.base_type == "float4" => "3.4e+38".into(),
            3 => "1e+308".into(),
            4 => "-1.5e-30".into(),
            _ => "0".into(),
        },
        "money" => ["1234.56", "1234.56", "-99.99", "92233720368547758.07", "-0.01", "0"][i % 6]
            .to_string(),
        "bool" => ["true", "true", "false", "true", "false", "false"][i % 6].to_string(),
        "text" | "varchar" | "bpchar" | "name" | "citext" => text_value(col, i, unique),
        "uuid" => {
            let n = if unique { i } else { [1, 1, 1, 2, 3, 4][i % 6] };
            format!("00000000-0000-4000-8000-{n:012x}")
        }
        "date" => [
            "2024-02-29",
            "2024-02-29",
            "2024-03-01",
            "9999-12-31",
            "0001-01-01",
            "1970-01-01",
        ][if unique { i % 6 } else { [0, 0, 0, 3, 4, 5][i % 6] }]
        .to_string(),
        "timestamp" | "timestamptz" => {
            let v = [
                "2024-02-29 23:59:59.999999",
                "2024-02-29 23:59:59.999999",
                "2024-03-01 00:00:00",
                "9999-12-31 23:59:59.999999",
                "0001-01-01 00:00:00",
                "1970-01-01 00:00:00",
            ][if unique { i % 6 } else { [0, 0, 0, 3, 4, 5][i % 6] }];
            if col.base_type == "timestamptz" {
                format!("{v}+00")
            } else {
                v.to_string()
            }
        }
        "time" | "timetz" => ["12:34:56.789", "12:34:56.789", "00:00:01", "23:59:59.999999", "00:00:00", "12:00:00"]
            [if unique { i % 6 } else { [0, 0, 0, 3, 4, 5][i % 6] }]
            .to_string(),
        "interval" => ["1 day", "1 day", "2 days", "178000000 years", "-1 mons -2 days", "00:00:00.000001"]
            [if unique { i % 6 } else { [0, 0, 0, 3, 4, 5][i % 6] }]
            .to_string(),
        "json" | "jsonb" => [
            r#"{"name": "Ann", "tags": ["a", "B"], "nested": {"n": 1.5, "none": null}}"#,
            r#"{"name": "Ann", "tags": ["a", "B"], "nested": {"n": 1.5, "none": null}}"#,
            r#"{"name": "ann"}"#,
            r#"{"deep": {"deeper": {"deepest": [1, 2, 3, {"x": "ÅNGSTRÖM"}]}}, "big": 12345678901234567890}"#,
            "[]",
            "null",
        ][if unique { i % 6 } else { [0, 0, 0, 3, 4, 5][i % 6] }]
        .to_string(),
        "bytea" => ["\\x00ff", "\\x00ff", "\\x01", "\\xdeadbeef00", "\\x", "\\x20"]
            [if unique { i % 6 } else { [0, 0, 0, 3, 4, 5][i % 6] }]
            .to_string(),
        "inet" => format!("192.168.0.{}", 1 + u(i)),
        "cidr" => format!("10.{}.0.0/16", u(i)),
        "macaddr" => format!("08:00:2b:01:02:{:02x}", u(i)),
        "xml" => "<doc><a>Ann</a></doc>".into(),
        "tsvector" => "'ann':1 'exampl':2".into(),
        "bit" | "varbit" => "1".into(),
        "point" => "(1.5,-2)".into(),
        "oid" => (16384 + u(i)).to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn numeric_uses_the_full_scale() {
        // numeric(12,4): typmod = (12 << 16 | 4) + 4
        let c = col("price", "numeric", (12 << 16 | 4) + 4, true);
        assert_eq!(value(&c, 1, false).unwrap(), "1234.5678");
        assert_eq!(value(&c, 3, false).unwrap(), "99999999.5678");
        assert_eq!(value(&c, 4, false).unwrap(), "-99999999.5678");
    }

    #[test]
    fn varchar_is_filled_to_its_limit_and_unique_text_differs_only_by_case() {
        let c = col("name", "varchar", 40 + 4, true);
        assert_eq!(value(&c, 3, false).unwrap().chars().count(), 40);
        assert_eq!(
            value(&c, 1, true).unwrap().to_lowercase(),
            value(&c, 2, true).unwrap()
        );
        assert_ne!(value(&c, 1, true), value(&c, 2, true));
        assert_eq!(value(&c, 1, false), value(&c, 2, false));
    }

    #[test]
    fn nullable_columns_get_nulls_and_row_zero_uses_defaults() {
        let mut t = Table {
            oid: 1,
            schema: "public".into(),
            name: "t".into(),
            columns: vec![col("a", "int4", -1, true), col("b", "text", -1, false)],
            primary_key: vec![],
            unique: vec![],
            foreign_keys: vec![],
            distinct: vec![],
            sequence_defaults: vec![],
            signature: String::new(),
        };
        t.columns[0].has_default = true;
        assert!(row(&t, 0, 0, &vec![], &Given::new()).is_empty());
        assert_eq!(
            row(&t, 4, 0, &vec![], &Given::new())[1],
            ("b".to_string(), None)
        );
    }
}

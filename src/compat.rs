//! The previous release keeps working. During a rolling deploy the code of the release before a
//! migration still runs against the schema after it, so after each up `check` runs what the
//! previous version's schema supported: it reads every column a table had, inserts a row that
//! gives only the columns it had, updates and deletes a row by its key, and runs the project's
//! own queries (`[compat] queries` in migproof.toml). Each statement runs in a subtransaction
//! that is rolled back, so nothing it writes stays. The same statements run on the previous
//! version first: one that worked there and fails after the up, for a reason of the schema's
//! shape (a missing column, table, function or type, a NOT NULL column old inserts do not fill,
//! a type old values do not convert to), is `breaks_previous_release`. Refusals that depend on
//! the values written (a unique key, a CHECK, a foreign key) are left out: the probes write
//! made-up values, which the previous release may never write.
//!
//! Only what the up could have affected is tried: the tables named by an object the up
//! created, dropped or changed (the golden history's difference between the two versions), the
//! tables whose columns, defaults, constraints or triggers use a function or type it changed,
//! and the project's queries that name one of those.

use std::collections::BTreeSet;

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};

use crate::compare;
use crate::executor::{self, Session};
use crate::model::seed;
use crate::observe::catalog::Table;
use crate::observe::data::Refusal;
use crate::observe::snapshot::{Item, Snapshot};
use crate::observe::{ident, literal};
use crate::source::config::{DataRules, Query};

/// The seeding round whose unique values the probe rows take: far from the rounds `check`
/// seeds, so that an insert never collides with a row already there.
const ROUND: usize = 3000;
/// The seeded row the previous release's insert writes: row 1 gives every column a value.
const ROW: usize = 1;

/// One statement of the previous release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// What it does, for people: `insert into public.users`, `queries/find_user.sql:3`.
    pub what: String,
    /// The table it reads or writes, when it is one of the schema's own probes.
    pub table: Option<String>,
    pub sql: String,
    /// True for a project query, which may take `$n` parameters.
    pub query: bool,
}

/// A statement that worked at the previous version and fails after the up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub probe: Probe,
    pub why: Refusal,
}

/// What the up changed, by name: tables (as `schema.table`, unquoted) and the bare names of
/// other objects (functions, types, sequences, views).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    pub tables: BTreeSet<String>,
    pub names: BTreeSet<String>,
}

/// Kinds of snapshot item that belong to a table, keyed `schema.table.name`.
const TABLE_PARTS: &[&str] = &["column", "constraint", "trigger", "rule", "policy"];

/// A snapshot key or name without its identifier quotes.
fn unquoted(name: &str) -> String {
    name.replace('"', "")
}

/// The table an index item belongs to: its definition reads `CREATE ... INDEX name ON [ONLY]
/// schema.table USING ...`.
fn index_table(body: &str) -> Option<String> {
    let rest = &body[body.find(" ON ")? + 4..];
    let rest = rest.strip_prefix("ONLY ").unwrap_or(rest);
    let end = rest.find(" USING ").unwrap_or(rest.len());
    Some(unquoted(&rest[..end]))
}

/// The last dotted part of a key, without its argument list: `public.touch(integer)` → `touch`.
fn bare_name(key: &str) -> String {
    let key = key.split('(').next().unwrap_or(key);
    unquoted(key.rsplit('.').next().unwrap_or(key))
}

/// Whether `text` holds `word` as a whole identifier (ASCII case-insensitive).
fn mentions(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let text = text.to_ascii_lowercase();
    let word = word.to_ascii_lowercase();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(&word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// The table an item belongs to, if it is a table or a part of one.
fn table_of(item: &Item) -> Option<String> {
    match item.kind.as_str() {
        "table" | "grant" => Some(unquoted(&item.key)),
        "index" => index_table(&item.body),
        kind if TABLE_PARTS.contains(&kind) => {
            let key = unquoted(&item.key);
            key.rsplit_once('.').map(|(table, _)| table.to_owned())
        }
        _ => None,
    }
}

/// What the items that `changed` between two versions touched, by name. A changed function,
/// type or sequence also touches every table of `after` (the later version) whose parts
/// mention it (a trigger executing the function, a column of the type, a default drawing from
/// the sequence).
pub fn touched(changed: &[Item], after: &Snapshot) -> Touched {
    let mut touched = Touched::default();
    for item in changed {
        if item.kind == "comment" || item.kind == "column-order" {
            continue;
        }
        match table_of(item) {
            Some(table) => {
                touched.tables.insert(table);
            }
            None => {
                touched.names.insert(bare_name(&item.key));
            }
        }
    }
    if !touched.names.is_empty() {
        for item in &after.items {
            let Some(table) = table_of(item) else {
                continue;
            };
            if item.kind != "table" && touched.names.iter().any(|n| mentions(&item.body, n)) {
                touched.tables.insert(table);
            }
        }
    }
    touched
}

/// The tables of the previous version the up touched.
pub fn tables<'a>(previous: &'a [Table], touched: &Touched) -> Vec<&'a Table> {
    previous
        .iter()
        .filter(|t| touched.tables.contains(&t.display_name()))
        .collect()
}

/// The project queries that name something the up touched.
pub fn queries<'a>(queries: &'a [Query], touched: &Touched) -> Vec<&'a Query> {
    let names: Vec<&str> = touched
        .tables
        .iter()
        .map(|t| t.rsplit('.').next().unwrap_or(t))
        .chain(touched.names.iter().map(String::as_str))
        .collect();
    queries
        .iter()
        .filter(|q| names.iter().any(|n| mentions(&q.sql, n)))
        .collect()
}

/// The schema's probes of one table of the previous version: read every column, insert `row`
/// (the columns it had), update every column it could write to itself and delete, both of one
/// row chosen by the table's key. A table without a key is only read and written to.
pub fn table_probes(table: &Table, row: &seed::Row) -> Vec<Probe> {
    let name = table.sql_name();
    let shown = table.display_name();
    let probe = |what: &str, sql: String| Probe {
        what: format!("{what} {shown}"),
        table: Some(shown.clone()),
        sql,
        query: false,
    };
    let columns: Vec<String> = table.columns.iter().map(|c| ident(&c.name)).collect();
    let mut out = Vec::new();
    if !columns.is_empty() {
        out.push(probe(
            "read of",
            format!("SELECT {} FROM {name} LIMIT 1", columns.join(", ")),
        ));
    }
    out.push(probe("insert into", executor::insert_statement(table, row)));
    let key = match table.primary_key.as_slice() {
        [] => table.unique.first().map(Vec::as_slice).unwrap_or_default(),
        key => key,
    };
    if key.is_empty() {
        return out;
    }
    let key: Vec<String> = key.iter().map(|c| ident(c)).collect();
    let by_key = format!(
        "({}) IN (SELECT {} FROM {name} ORDER BY 1 LIMIT 1)",
        key.join(", "),
        key.join(", ")
    );
    let writable: Vec<String> = table
        .columns
        .iter()
        .filter(|c| c.generated.is_empty() && c.identity != "a")
        .filter(|c| !key.contains(&ident(&c.name)))
        .map(|c| format!("{0} = {0}", ident(&c.name)))
        .collect();
    if !writable.is_empty() {
        out.push(probe(
            "update of",
            format!("UPDATE {name} SET {} WHERE {by_key}", writable.join(", ")),
        ));
    }
    out.push(probe(
        "delete from",
        format!("DELETE FROM {name} WHERE {by_key}"),
    ));
    out
}

/// Whether the previous release's statement fails after the up because of the schema's shape,
/// and only of it: a missing column, table, function or type, a privilege, a type its typed
/// values do not convert to (all refused before any row is written), or a NOT NULL column the
/// statement does not name. Left out: a NOT NULL column it names and a value a type, a CHECK
/// or a computed column refuses (the probes' values are made up: a trigger that fills a
/// column from a made-up version string gives NULL where production's never does), a function
/// broken for every writer (the `unwritable` finding says so, whatever the release), and a
/// plan a PL/pgSQL function cached in this session before a column changed type (an artifact
/// of the session's length).
fn breaks_it(probe: &Probe, why: &Refusal) -> bool {
    let shape = match why.code.as_str() {
        "42703" | "42P01" | "42883" | "42704" | "42804" | "42501" => true,
        "23502" => why
            .column
            .as_deref()
            .is_some_and(|column| !mentions(&probe.sql, column)),
        _ => false,
    };
    shape
        && !compare::broken_function(why)
        && !why
            .message
            .contains("does not match that when preparing the plan")
}

/// Whether a probe got past the schema's shape at the previous version: it worked, or the
/// server refused only its made-up values (a unique key, a foreign key, a CHECK, an exclusion),
/// which it checks after parsing, typing, converting the values and NOT NULL. A structural
/// refusal after the up is then new, whichever existing row the made-up values met.
fn got_past_the_shape(before: &Option<Refusal>) -> bool {
    before
        .as_ref()
        .is_none_or(|why| matches!(why.code.as_str(), "23505" | "23503" | "23514" | "23P01"))
}

/// The probes that got past the schema's shape `before` and fail `after` for a structural
/// reason.
pub fn breaks(
    probes: &[Probe],
    before: &[Option<Refusal>],
    after: &[Option<Refusal>],
) -> Vec<Break> {
    probes
        .iter()
        .zip(before.iter().zip(after))
        .filter_map(|(probe, (before, after))| match (before, after) {
            (before, Some(why)) if got_past_the_shape(before) && breaks_it(probe, why) => {
                Some(Break {
                    probe: probe.clone(),
                    why: why.clone(),
                })
            }
            _ => None,
        })
        .collect()
}

/// The probes of the tables and queries the up touched, on the previous version's `tables`.
pub async fn probes(
    s: &mut Session,
    tables: &[&Table],
    queries: &[&Query],
    rules: &DataRules,
    shapes: &seed::Shapes,
) -> Result<Vec<Probe>, sqlx::Error> {
    let mut out = Vec::new();
    for table in tables {
        let row = s.seed_row(table, ROW, ROUND, rules, shapes).await?;
        out.extend(table_probes(table, &row));
    }
    out.extend(queries.iter().map(|q| Probe {
        what: format!("{}:{}", q.path.display(), q.line),
        table: None,
        sql: q.sql.clone(),
        query: true,
    }));
    Ok(out)
}

/// Runs every probe, rolled back, and says why each failed, if it did. `tables` are the live
/// tables, whose rows give the project queries' parameters their values.
pub async fn run(
    s: &mut Session,
    probes: &[Probe],
    tables: &[Table],
) -> Result<Vec<Option<Refusal>>, sqlx::Error> {
    let schema: Vec<String> = probes
        .iter()
        .filter(|p| !p.query)
        .map(|p| p.sql.clone())
        .collect();
    let mut schema = s.try_each(&schema).await?.into_iter();
    let mut out = Vec::with_capacity(probes.len());
    for p in probes {
        out.push(match p.query {
            false => schema.next().flatten(),
            true => query(s.conn(), &p.sql, tables).await?,
        });
    }
    Ok(out)
}

/// The name a project query is prepared under while it is tried.
const PREPARED: &str = "_migproof_compat";

/// Prepares a project query and runs it with parameters taken from the live rows, in a
/// transaction that is rolled back.
async fn query(
    conn: &mut PgConnection,
    sql: &str,
    tables: &[Table],
) -> Result<Option<Refusal>, sqlx::Error> {
    let refused = |e: sqlx::Error| match e {
        sqlx::Error::Database(e) => Ok(Refusal::of(e.as_ref())),
        e => Err(e),
    };
    sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
    let prepare = format!("PREPARE {PREPARED} AS {sql}");
    if let Err(e) = sqlx::raw_sql(AssertSqlSafe(prepare))
        .execute(&mut *conn)
        .await
    {
        let why = refused(e)?;
        sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
        return Ok(Some(why));
    }
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT t::text FROM pg_prepared_statements, unnest(parameter_types) t \
         WHERE name = $1",
    )
    .bind(PREPARED)
    .fetch_all(&mut *conn)
    .await?;
    let mut args = Vec::new();
    for t in &types {
        args.push(match parameter(conn, sql, t, tables).await? {
            Some(v) => literal(&v),
            None => "NULL".to_owned(),
        });
    }
    let execute = if args.is_empty() {
        format!("EXECUTE {PREPARED}")
    } else {
        format!("EXECUTE {PREPARED}({})", args.join(", "))
    };
    let why = match sqlx::raw_sql(AssertSqlSafe(execute))
        .execute(&mut *conn)
        .await
    {
        Ok(_) => None,
        Err(e) => Some(refused(e)?),
    };
    sqlx::raw_sql(AssertSqlSafe(format!("ROLLBACK; DEALLOCATE {PREPARED}")))
        .execute(&mut *conn)
        .await?;
    Ok(why)
}

/// A value for a parameter of type `ty` (as `format_type` names it): from a live column of that
/// type, preferring one the query names; `None` (NULL) when no row has one.
async fn parameter(
    conn: &mut PgConnection,
    sql: &str,
    ty: &str,
    tables: &[Table],
) -> Result<Option<String>, sqlx::Error> {
    let typed = |t: &&Table| -> Vec<(String, String)> {
        t.columns
            .iter()
            .filter(|c| c.type_sql.split('(').next() == Some(ty))
            .map(|c| (t.sql_name(), c.name.clone()))
            .collect()
    };
    let mut candidates: Vec<(String, String)> = tables.iter().flat_map(|t| typed(&t)).collect();
    candidates.sort_by_key(|(_, c)| !mentions(sql, c));
    for (table, column) in candidates.into_iter().take(3) {
        let pick = format!(
            "SELECT ({0})::text FROM {table} WHERE {0} IS NOT NULL ORDER BY 1 LIMIT 1",
            ident(&column)
        );
        let row = sqlx::raw_sql(AssertSqlSafe(pick))
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            return row.try_get(0).map(Some);
        }
    }
    Ok(None)
}

/// The words of a `breaks_previous_release` finding or note: the first breaks, and what to do.
pub fn message(breaks: &[Break]) -> String {
    let shown: Vec<String> = breaks
        .iter()
        .take(5)
        .map(|b| format!("{}: {} ({})", b.probe.what, b.why.message, b.why.code))
        .collect();
    let more = match breaks.len() {
        n if n > 5 => format!("; and {} more", n - 5),
        _ => String::new(),
    };
    format!(
        "the previous release's statements fail after this up, while its code still runs during \
         a rolling deploy: {}{more}. If this migration is the contract step of an \
         expand/contract change (no code of the previous release uses what it removes), this is \
         expected; otherwise add the new shape beside the old one first (expand), move the code \
         to it, and remove the old shape in a later release (contract)",
        shown.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: &str, key: &str, body: &str) -> Item {
        Item {
            kind: kind.into(),
            key: key.into(),
            body: body.into(),
            position: None,
        }
    }

    /// What turned `before` into `after`, as the golden history records it.
    fn between(before: Snapshot, after: Snapshot) -> Touched {
        let mut history = crate::observe::history::History::new();
        history.push(before);
        history.push(after);
        let changed = history.changes(1);
        touched(&changed, history.get(1))
    }

    #[test]
    fn a_renamed_column_touches_its_table_only() {
        let before = Snapshot::new(vec![
            item("table", "public.users", ""),
            item("column", "public.users.name", "text"),
            item("table", "public.orders", ""),
        ]);
        let after = Snapshot::new(vec![
            item("table", "public.users", ""),
            item("column", "public.users.full_name", "text"),
            item("table", "public.orders", ""),
        ]);
        let t = between(before, after);
        assert_eq!(t.tables, BTreeSet::from(["public.users".to_owned()]));
        assert!(t.names.is_empty());
    }

    #[test]
    fn a_changed_function_touches_the_tables_whose_triggers_run_it() {
        let trigger = item(
            "trigger",
            "public.crates.trigger_crates_name_search",
            "CREATE TRIGGER trigger_crates_name_search BEFORE INSERT ON crates FOR EACH ROW \
             EXECUTE FUNCTION trigger_crates_name_search()",
        );
        let before = Snapshot::new(vec![
            item("table", "public.crates", ""),
            trigger.clone(),
            item(
                "function",
                "public.trigger_crates_name_search()",
                "old body",
            ),
            item("table", "public.users", ""),
        ]);
        let mut after = before.clone();
        after.items[2].body = "new body".into();
        let t = between(before, after);
        assert_eq!(t.tables, BTreeSet::from(["public.crates".to_owned()]));
        assert_eq!(
            t.names,
            BTreeSet::from(["trigger_crates_name_search".to_owned()])
        );
    }

    #[test]
    fn an_index_belongs_to_the_table_it_is_on() {
        let i = item(
            "index",
            "public.users_email_idx",
            "CREATE UNIQUE INDEX users_email_idx ON ONLY public.users USING btree (email)",
        );
        assert_eq!(table_of(&i).as_deref(), Some("public.users"));
    }

    #[test]
    fn mentions_matches_whole_identifiers_only() {
        assert!(mentions("SELECT name FROM Users WHERE id = $1", "users"));
        assert!(!mentions("SELECT * FROM users_archive", "users"));
        assert!(!mentions("SELECT 1", ""));
    }

    fn probe(what: &str) -> Probe {
        Probe {
            what: what.into(),
            table: None,
            sql: String::new(),
            query: false,
        }
    }

    fn refused(code: &str) -> Refusal {
        Refusal {
            code: code.into(),
            message: "m".into(),
            context: String::new(),
            column: None,
        }
    }

    #[test]
    fn only_structural_refusals_that_are_new_break_the_previous_release() {
        let (p, r) = (probe, refused);
        let probes = [p("read"), p("insert"), p("delete"), p("update")];
        let before = [None, None, Some(r("23503")), None];
        let after = [Some(r("42703")), Some(r("23505")), Some(r("23503")), None];
        let found = breaks(&probes, &before, &after);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].probe.what, "read");
    }

    #[test]
    fn a_probe_refused_for_its_values_before_still_shows_a_new_structural_refusal() {
        let (p, r) = (probe, refused);
        // A duplicate key before: the insert was typed and converted then, and its
        // jsonb column refuses the old varchar value now.
        let probes = [p("insert"), p("update"), p("delete")];
        let before = [Some(r("23505")), Some(r("42703")), Some(r("23514"))];
        let after = [Some(r("42804")), Some(r("42703")), Some(r("23514"))];
        let found = breaks(&probes, &before, &after);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].probe.what, "insert");
        assert_eq!(found[0].why.code, "42804");
    }

    #[test]
    fn a_not_null_column_breaks_only_statements_that_do_not_name_it() {
        let insert = Probe {
            what: "insert".into(),
            table: None,
            sql: "INSERT INTO \"public\".\"versions\" (\"num\", \"semver_ord\") VALUES ('x', NULL)"
                .into(),
            query: false,
        };
        let refused = |code: &str, column: Option<&str>| Refusal {
            column: column.map(str::to_owned),
            ..refused(code)
        };
        let probes = vec![insert; 5];
        let before = vec![None; 5];
        let after = [
            // A new NOT NULL column the old insert does not give: its inserts fail.
            Some(refused("23502", Some("published_by"))),
            // One it gives, NULL here (a trigger computed it from a made-up value).
            Some(refused("23502", Some("semver_ord"))),
            Some(refused("23502", None)),
            // A value a computed column or a type refuses: made up, not the release's.
            Some(refused("22P02", None)),
            Some(refused("23514", None)),
        ];
        let found = breaks(&probes, &before, &after);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].why.column.as_deref(), Some("published_by"));
    }
}

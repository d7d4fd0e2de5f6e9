//! Data-dependent failures: an up that applies on an empty database but fails on particular
//! rows (a new unique key over duplicates, a foreign key over orphans, SET NOT NULL over NULLs,
//! text that does not parse as the new type). Which table's rows, the fewest of them that
//! still make the up fail, and removing them so that the rest of the migration's checks run.
//!
//! Shrinking runs the up again and again inside a transaction that is always rolled back, each
//! time without some of the rows: only for an up sent as one transactional block with no
//! transaction control of its own, so that nothing of a trial survives it.

use sqlx::postgres::{PgConnection, PgDatabaseError};
use sqlx::AssertSqlSafe;

use crate::executor::StepError;
use crate::observe::catalog::Table;
use crate::observe::ident;
use crate::report::data_cause;
use crate::source::split;
use crate::source::Script;

/// Rows of one table at most tried one by one; a bigger table is reported unshrunk.
const MAX_ROWS_TRIED: usize = 200;
/// Rows shown in a finding at most.
const MAX_ROWS_SHOWN: usize = 20;

/// What an up failed on.
#[derive(Debug, Clone)]
pub struct Culprit {
    /// The table whose rows the up failed on, as users write it and quoted, when the server
    /// named one that held rows before the up.
    pub table: Option<(String, String)>,
    /// The server's SQLSTATE.
    pub code: String,
    /// Every seeded table, quoted: emptied when the server named none of them.
    pub all: Vec<String>,
    /// The up's failure left the database as it was (the up is one transactional block), so
    /// its rows can be removed and the up applied again.
    pub retry: bool,
    /// Trials are safe: `retry`, and the up holds no transaction control of its own and
    /// ends no session.
    pub shrinkable: bool,
}

/// The culprit of an up's failure over the seeded `tables` (read before the up), when the
/// failure is data dependent: a data exception (SQLSTATE class 22) or an integrity violation
/// (class 23). A NOT NULL violation on a column the up itself adds fails on any row at all
/// (`ADD COLUMN ... NOT NULL` without a default): not data dependent, `None`.
pub fn culprit(e: &StepError, up: &Script, tables: &[Table]) -> Option<Culprit> {
    let StepError::Sql { location, .. } = e else {
        return None;
    };
    let code = location.sqlstate.as_deref()?;
    if !(code.starts_with("22") || code.starts_with("23")) || up.command.is_some() {
        return None;
    }
    let named = location
        .table()
        .and_then(|name| tables.iter().find(|t| t.display_name() == name));
    if let (Some(t), Some(column), "23502") = (named, location.column(), code) {
        if t.column(column).is_none() && adds_column(&up.text, column) {
            return None;
        }
    }
    let retry = matches!(up.blocks.as_slice(), [block] if block.transactional);
    Some(Culprit {
        table: named.map(|t| (t.display_name(), t.sql_name())),
        code: code.to_owned(),
        all: tables.iter().map(Table::sql_name).collect(),
        retry,
        shrinkable: retry && !controls_transactions(up),
    })
}

/// True when `text` adds a column named `column` (`ADD [COLUMN] [IF NOT EXISTS] column`), as
/// opposed to renaming one to that name.
fn adds_column(text: &str, column: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(')
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('"').to_ascii_lowercase())
        .collect();
    let column = column.to_ascii_lowercase();
    words.iter().enumerate().any(|(i, w)| {
        w == "add"
            && words[i + 1..]
                .iter()
                .filter(|w| !matches!(w.as_str(), "column" | "if" | "not" | "exists"))
                .take(1)
                .any(|w| *w == column)
    })
}

/// True when the script ends, starts or splits transactions itself, or ends sessions: a trial
/// could then outlive its rollback.
fn controls_transactions(up: &Script) -> bool {
    let lower = up.text.to_ascii_lowercase();
    if lower.contains("pg_terminate_backend") || lower.contains("pg_cancel_backend") {
        return true;
    }
    up.blocks.iter().flat_map(|b| &b.chunks).any(|chunk| {
        split::split(&chunk.sql).map_or(true, |statements| {
            statements.iter().any(|s| {
                let first = s
                    .sql
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(';')
                    .to_ascii_lowercase();
                // (a DO block or a procedure cannot end a transaction block it runs in)
                matches!(
                    first.as_str(),
                    "begin"
                        | "start"
                        | "commit"
                        | "end"
                        | "rollback"
                        | "abort"
                        | "savepoint"
                        | "release"
                        | "prepare"
                )
            })
        })
    })
}

/// The rows an up failed on, after shrinking.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The fewest rows of the culprit table that still make the up fail, as JSON objects;
    /// empty when not shrunk.
    pub rows: Vec<String>,
    /// How many rows that is.
    kept: usize,
    /// The fewest rows whose removal lets the up apply (`ctid`s), when there are such.
    removal: Option<Vec<String>>,
    /// Rows left in because deleting them was refused.
    referenced: usize,
    /// Rows the table held.
    pub total: usize,
    /// The table the rows are of, when found by trials rather than named by the server.
    table: Option<String>,
    /// It quoted, to remove the rows.
    quoted: Option<String>,
    /// Whether the rows were shrunk (else the whole table, or every table, is the culprit).
    pub shrunk: bool,
}

/// Shrinks the culprit table's rows to those the up still fails on with the same SQLSTATE,
/// removing one row at a time and keeping it removed when the failure stays.
pub async fn minimal_rows(
    conn: &mut PgConnection,
    up: &Script,
    culprit: &Culprit,
) -> Result<Found, sqlx::Error> {
    let located;
    let (name, quoted) = match &culprit.table {
        Some(named) => named,
        None if culprit.shrinkable => match locate(conn, up, culprit).await? {
            Some(found) => {
                located = found;
                &located
            }
            None => return Ok(Found::default()),
        },
        None => return Ok(Found::default()),
    };
    let ctids: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT ctid::text FROM {quoted} AS t ORDER BY t::text, ctid"
    )))
    .fetch_all(&mut *conn)
    .await?;
    let total = ctids.len();
    // A located culprit's failure names another table (or none): trials match on the
    // SQLSTATE alone, as `locate` did.
    let on = culprit
        .table
        .as_ref()
        .map_or("", |(named, _)| named.as_str());
    if !culprit.shrinkable || total > MAX_ROWS_TRIED {
        return Ok(Found {
            total,
            table: culprit.table.is_none().then(|| name.clone()),
            quoted: Some(quoted.clone()),
            ..Found::default()
        });
    }
    // The fewest rows that still make the up fail: leave each row out in turn, for good
    // when the failure stays. A row whose deletion is refused (other rows reference it, a
    // trigger) stays.
    let mut removed: Vec<String> = Vec::new();
    let mut referenced = 0;
    for ctid in &ctids {
        let mut trial = removed.clone();
        trial.push(ctid.clone());
        match trial_without(conn, up, culprit, on, quoted, &trial).await? {
            Trial::SameFailure => removed = trial,
            Trial::Referenced => referenced += 1,
            Trial::Applies | Trial::OtherFailure => {}
        }
    }
    let kept: Vec<String> = ctids
        .iter()
        .filter(|c| !removed.contains(c))
        .cloned()
        .collect();
    // The fewest rows whose removal lets the up apply (every duplicate, orphan or NULL, not
    // only the first): leave rows out until it applies, then put back each one it does
    // without.
    let mut removal: Vec<String> = Vec::new();
    let mut applies = false;
    for ctid in &ctids {
        removal.push(ctid.clone());
        if trial_without(conn, up, culprit, on, quoted, &removal).await? == Trial::Applies {
            applies = true;
            break;
        }
    }
    if applies {
        for ctid in removal.clone() {
            let fewer: Vec<String> = removal.iter().filter(|c| **c != ctid).cloned().collect();
            if trial_without(conn, up, culprit, on, quoted, &fewer).await? == Trial::Applies {
                removal = fewer;
            }
        }
    }
    let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT row_to_json(t)::text FROM {quoted} AS t \
         WHERE ctid = ANY($1::text[]::tid[]) ORDER BY t::text LIMIT {MAX_ROWS_SHOWN}"
    )))
    .bind(&kept)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Found {
        rows,
        kept: kept.len(),
        removal: applies.then_some(removal),
        referenced,
        total,
        table: culprit.table.is_none().then(|| name.clone()),
        quoted: Some(quoted.clone()),
        shrunk: true,
    })
}

/// The seeded table whose rows the up fails on, when the server named none of them (a cast in
/// `ALTER COLUMN ... TYPE ... USING`; a table the up creates and fills from them): the first
/// table without whose rows (emptied in a trial) the up no longer fails that way. Tables are
/// first emptied alone, and only then, for those other tables' rows reference, with those
/// rows (`TRUNCATE ... CASCADE`): a parent emptied with its children would take the blame for
/// a child's rows.
async fn locate(
    conn: &mut PgConnection,
    up: &Script,
    culprit: &Culprit,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let mut referenced: Vec<&String> = Vec::new();
    for quoted in &culprit.all {
        let holds: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {quoted})"
        )))
        .fetch_one(&mut *conn)
        .await?;
        if !holds {
            continue;
        }
        match empties_the_failure(conn, up, culprit, quoted, "").await? {
            Some(true) => return named(conn, quoted).await.map(Some),
            Some(false) => {}
            None => referenced.push(quoted),
        }
    }
    for quoted in referenced {
        if empties_the_failure(conn, up, culprit, quoted, " CASCADE").await? == Some(true) {
            return named(conn, quoted).await.map(Some);
        }
    }
    Ok(None)
}

/// Whether the up no longer fails as it did once table `quoted`, which holds rows, is emptied
/// (`TRUNCATE`, with `cascade`), in a transaction rolled back: `None` when the server refuses
/// to empty it (rows of other tables reference it).
async fn empties_the_failure(
    conn: &mut PgConnection,
    up: &Script,
    culprit: &Culprit,
    quoted: &str,
    cascade: &str,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
    let emptied = sqlx::raw_sql(AssertSqlSafe(format!("TRUNCATE {quoted}{cascade}")))
        .execute(&mut *conn)
        .await;
    let outcome = match emptied {
        Ok(_) => run_up(conn, up, culprit, "").await.map(Some),
        Err(sqlx::Error::Database(_)) => Ok(None),
        Err(e) => Err(e),
    };
    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
    Ok(outcome?.map(|t| t != Trial::SameFailure))
}

/// A table as the report names it (`schema.table`), with it quoted.
async fn named(conn: &mut PgConnection, quoted: &str) -> Result<(String, String), sqlx::Error> {
    let name: String = sqlx::query_scalar(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass",
    )
    .bind(quoted)
    .fetch_one(&mut *conn)
    .await?;
    Ok((name, quoted.to_owned()))
}

/// How the up went in a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trial {
    Applies,
    SameFailure,
    OtherFailure,
    /// The rows could not be left out: deleting them was refused (rows of other tables
    /// reference them, a trigger).
    Referenced,
}

/// Runs the up inside a transaction that is always rolled back, without the rows `without`
/// of the culprit table; the same failure is the same SQLSTATE on the table `name`, when the
/// server names one and `name` is not empty.
async fn trial_without(
    conn: &mut PgConnection,
    up: &Script,
    culprit: &Culprit,
    name: &str,
    quoted: &str,
    without: &[String],
) -> Result<Trial, sqlx::Error> {
    sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
    let deleted = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {quoted} WHERE ctid = ANY($1::text[]::tid[])"
    )))
    .bind(without)
    .execute(&mut *conn)
    .await;
    let outcome = match deleted {
        Err(sqlx::Error::Database(_)) => Ok(Trial::Referenced),
        Err(e) => Err(e),
        Ok(_) => run_up(conn, up, culprit, name).await,
    };
    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
    outcome
}

async fn run_up(
    conn: &mut PgConnection,
    up: &Script,
    culprit: &Culprit,
    name: &str,
) -> Result<Trial, sqlx::Error> {
    for chunk in up.blocks.iter().flat_map(|b| &b.chunks) {
        match sqlx::raw_sql(AssertSqlSafe(chunk.sql.clone()))
            .execute(&mut *conn)
            .await
        {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) => {
                let pg = e.try_downcast_ref::<PgDatabaseError>();
                // While the culprit is being located (`name` empty), the table the server
                // names is not a seeded one (a table the up creates and fills from them).
                let same = pg.is_some_and(|pg| {
                    pg.code() == culprit.code
                        && (name.is_empty()
                            || pg.table().is_none_or(|t| {
                                format!("{}.{t}", pg.schema().unwrap_or("public")) == name
                            }))
                });
                return Ok(if same {
                    Trial::SameFailure
                } else {
                    Trial::OtherFailure
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Trial::Applies)
}

impl Found {
    /// The finding's message: the failure, the cause in words, the rows, and what was done.
    pub fn message(&self, culprit: &Culprit, e: &StepError) -> String {
        let cause = data_cause(&culprit.code);
        let what = match (&culprit.table, self.shrunk) {
            (Some((name, _)), true) => format!(
                "applies on an empty database but fails on {} of the {} seeded rows of {name} \
                 ({cause}); they still make it fail on their own{}",
                self.kept,
                self.total,
                match self.referenced {
                    0 => String::new(),
                    n => format!(
                        " ({n} of them could not be left out: rows of other tables reference them)"
                    ),
                }
            ),
            (Some((name, _)), false) => format!(
                "applies on an empty database but fails on the seeded rows of {name} ({cause})"
            ),
            (None, false) if self.table.is_some() => format!(
                "applies on an empty database but fails on the seeded rows of {} ({cause})",
                self.table.as_deref().unwrap_or_default()
            ),
            (None, true) => format!(
                "applies on an empty database but fails on {} of the {} seeded rows of {} \
                 ({cause}); they still make it fail on their own",
                self.kept,
                self.total,
                self.table.as_deref().unwrap_or("a table")
            ),
            (None, false) => format!(
                "applies on an empty database but fails on the seeded rows ({cause}; the server \
                 named no table that held rows before the up)"
            ),
        };
        let after = if culprit.retry {
            "production rows like them would stop the deploy. migproof removed them and checked \
             the rest of the migration (down, round trip, rerun) without them"
        } else {
            "production rows like them would stop the deploy. The up does not run as one \
             transaction, so migproof did not apply it again without them"
        };
        format!("{what}: {e}\n{after}")
    }

    /// Removes the rows the up failed on: the fewest whose removal lets it apply, else the
    /// culprit table's rows, else
    /// every seeded table's (`TRUNCATE ... CASCADE` where rows of other tables point at them).
    pub async fn remove(
        &self,
        conn: &mut PgConnection,
        culprit: &Culprit,
    ) -> Result<(), sqlx::Error> {
        if let (Some(quoted), Some(removal)) = (&self.quoted, &self.removal) {
            let deleted = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {quoted} WHERE ctid = ANY($1::text[]::tid[])"
            )))
            .bind(removal)
            .execute(&mut *conn)
            .await;
            match deleted {
                Ok(_) => return Ok(()),
                Err(sqlx::Error::Database(_)) => {} // referenced: emptied below
                Err(e) => return Err(e),
            }
        }
        let tables = match (&culprit.table, &self.quoted) {
            (Some((_, quoted)), _) | (None, Some(quoted)) => quoted.clone(),
            (None, None) => culprit.all.join(", "),
        };
        if tables.is_empty() {
            return Ok(());
        }
        sqlx::raw_sql(AssertSqlSafe(format!("TRUNCATE {tables} CASCADE")))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// How many rows of which table violate what an up failed on, where the server's error says
/// enough to count them: a NOT NULL (its table and column: the NULLs), a unique key (its
/// `Key (...)=` columns: the rows of every duplicated value). `None` otherwise (a CHECK or a
/// foreign key, whose definition went with the rolled-back up; a conversion).
pub async fn violations(
    conn: &mut PgConnection,
    e: &StepError,
) -> Result<Option<(String, u64)>, sqlx::Error> {
    let StepError::Sql { location, message } = e else {
        return Ok(None);
    };
    let Some(object) = &location.object else {
        return Ok(None);
    };
    let table = &object.table;
    let Some((schema, name)) = table.split_once('.') else {
        return Ok(None);
    };
    let quoted = format!("{}.{}", ident(schema), ident(name));
    let sql = match (location.sqlstate.as_deref(), &object.column) {
        (Some("23502"), Some(column)) => format!(
            "SELECT count(*) FROM {quoted} WHERE {} IS NULL",
            ident(column)
        ),
        (Some("23505"), _) => {
            let Some(key) = message
                .split("Key (")
                .nth(1)
                .and_then(|k| k.split(")=(").next())
            else {
                return Ok(None);
            };
            format!(
                "SELECT coalesce(sum(n), 0)::int8 FROM (SELECT count(*) AS n FROM {quoted} \
                 GROUP BY {key} HAVING count(*) > 1) d"
            )
        }
        _ => return Ok(None),
    };
    // The key comes from the server's own words; a key it cannot group by is not counted.
    match sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
    {
        Ok(n) => Ok(Some((table.clone(), n as u64))),
        Err(sqlx::Error::Database(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_the_up_adds_is_told_from_one_it_renames() {
        assert!(adds_column(
            "ALTER TABLE users ADD COLUMN gh_login VARCHAR NOT NULL;",
            "gh_login"
        ));
        assert!(adds_column(
            "alter table t add if not exists \"Code\" text not null",
            "code"
        ));
        assert!(adds_column(
            "alter table t add x int, add y int not null",
            "y"
        ));
        assert!(!adds_column(
            "ALTER TABLE v RENAME COLUMN owner_id TO user_id; ALTER TABLE v ALTER COLUMN user_id SET NOT NULL;",
            "user_id"
        ));
        assert!(!adds_column(
            "alter table t add constraint c unique (y)",
            "y"
        ));
    }
}

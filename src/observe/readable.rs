//! Views and materialized views that cannot be read: a materialized view left unpopulated
//! (`WITH NO DATA`), or a view whose query fails when it runs. Definitions can compare equal
//! while every query on the relation fails. Read-only: each relation is read with `LIMIT 1`.

use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;

use super::ident;

const RELATIONS: &str = "\
SELECT n.nspname::text, c.relname::text, c.relkind::text, c.relispopulated
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_migproof')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2";

/// A view or materialized view that cannot be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// `schema.name`.
    pub relation: String,
    pub why: String,
}

/// The views and materialized views of a database at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Views {
    /// Every view and materialized view, `schema.name`: one that cannot be read now but did
    /// not exist before a step was not readable before it either.
    pub relations: Vec<String>,
    /// Those that cannot be read.
    pub unreadable: Vec<Unreadable>,
}

/// Every view and materialized view, and those of them that cannot be read now.
pub async fn unreadable(conn: &mut PgConnection) -> Result<Views, sqlx::Error> {
    let relations: Vec<(String, String, String, bool)> =
        sqlx::query_as(RELATIONS).fetch_all(&mut *conn).await?;
    let mut out = Vec::new();
    let mut all = Vec::new();
    for (schema, name, kind, populated) in relations {
        let relation = format!("{schema}.{name}");
        all.push(relation.clone());
        if kind == "m" && !populated {
            out.push(Unreadable {
                relation,
                why: "the materialized view is not populated (created or refreshed WITH NO \
                      DATA): every query on it fails until REFRESH MATERIALIZED VIEW"
                    .into(),
            });
            continue;
        }
        let read = format!("SELECT 1 FROM {}.{} LIMIT 1", ident(&schema), ident(&name));
        match sqlx::raw_sql(AssertSqlSafe(read)).execute(&mut *conn).await {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) => out.push(Unreadable {
                relation,
                why: format!("reading it fails: {}", e.message()),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(Views {
        relations: all,
        unreadable: out,
    })
}

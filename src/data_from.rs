//! Real rows instead of seeded ones (`check --data-from`). The source is a database (a staging
//! copy, by URL), which migproof only reads, inside one read-only repeatable-read transaction;
//! or a `pg_dump` file (plain or custom format), which migproof restores into a scratch
//! database of its own (the mirror) with `psql` or `pg_restore`. The migrations the source has
//! run are read from its migrator's history table; a scratch database is built at that golden
//! version and every table's rows are copied into it (`COPY`, the columns both sides have,
//! parents before children, the table's own triggers off while it is loaded, sequences moved
//! past the keys loaded). `check` then runs the stairway of the pending migrations over them.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

use crate::backend::{self, BackendError, ScratchDb, Server};
use crate::executor::Session;
use crate::observe::catalog::{self, Table};
use crate::run::{lost, RunError};
use crate::source::MigrationSet;

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataFrom {
    /// A database, by `postgres://` or `postgresql://` URL: only read.
    Url(String),
    /// A `pg_dump` file, plain SQL or custom format.
    Dump(PathBuf),
}

impl DataFrom {
    /// The flag's value: a URL, or the path of an existing file.
    pub fn parse(text: &str) -> Result<DataFrom, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            text.parse::<PgConnectOptions>().map_err(|e| {
                format!(
                    "--data-from `{}` is not a PostgreSQL URL: {e}",
                    backend::url::redact(text)
                )
            })?;
            return Ok(DataFrom::Url(text.to_owned()));
        }
        let path = PathBuf::from(text);
        if !path.is_file() {
            return Err(format!(
                "--data-from `{text}` is neither a postgres:// URL nor a dump file that exists"
            ));
        }
        Ok(DataFrom::Dump(path))
    }

    /// For messages: the URL without its password, or the file.
    pub fn shown(&self) -> String {
        match self {
            DataFrom::Url(url) => backend::url::redact(url),
            DataFrom::Dump(path) => path.display().to_string(),
        }
    }
}

/// The source, open: a read-only transaction on it (or on the mirror of a dump).
pub struct Origin {
    conn: PgConnection,
    /// The mirror a dump was restored into, dropped by [`Origin::close`].
    mirror: Option<ScratchDb>,
    pub shown: String,
    /// How many migrations of the set the source has run (0: none).
    pub version: usize,
}

/// The history tables of the migrators migproof reads, and the column holding each applied
/// migration's version or name.
const HISTORIES: &[(&str, &str)] = &[
    ("_migproof.applied", "version"),
    ("_sqlx_migrations", "version"),
    ("__diesel_schema_migrations", "version"),
    ("schema_migrations", "version"),
    ("flyway_schema_history", "version"),
    ("refinery_schema_history", "version"),
    ("goose_db_version", "version_id"),
    ("gorp_migrations", "id"),
    ("alembic_version", "version_num"),
    ("schema_version", "version"),
];

/// A version as every migrator may write it: letters and digits only, without leading zeros,
/// in lower case (`2024-03-01-093000` is diesel's `20240301093000`, golang-migrate's file
/// `000004` is its `4`).
fn normal(version: &str) -> String {
    version
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .trim_start_matches('0')
        .to_ascii_lowercase()
}

/// The number of migrations of `set` that `recorded` (the versions a history table holds)
/// says ran: the last one recorded, counted from the first.
pub fn recorded_version(set: &MigrationSet, recorded: &[String]) -> Option<usize> {
    let recorded: Vec<String> = recorded.iter().map(|v| normal(v)).collect();
    set.migrations
        .iter()
        .rposition(|m| {
            let (version, id) = (normal(&m.version), normal(&m.id()));
            recorded.iter().any(|r| *r == version || *r == id)
        })
        .map(|i| i + 1)
}

/// Opens the source, read-only, and reads which migrations it has run.
pub async fn open(
    server: &Server,
    from: &DataFrom,
    set: &MigrationSet,
) -> Result<Origin, RunError> {
    let shown = from.shown();
    let (conn, mirror) = match from {
        DataFrom::Url(url) => {
            let options: PgConnectOptions = url
                .parse()
                .map_err(|e| RunError::Input(format!("--data-from `{shown}`: {e}")))?;
            let conn = options.connect().await.map_err(|e| {
                RunError::Backend(BackendError::Connect {
                    target: shown.clone(),
                    reason: backend::describe(&e),
                })
            })?;
            (conn, None)
        }
        DataFrom::Dump(path) => {
            let mirror = server.create().await?;
            if let Err(e) = restore(path, &mirror).await {
                server.drop_db(&mirror).await?;
                return Err(e);
            }
            let conn = mirror.connect().await.map_err(lost)?;
            (conn, Some(mirror))
        }
    };
    let mut origin = Origin {
        conn,
        mirror,
        shown,
        version: 0,
    };
    // One snapshot for everything read, and no write possible on this connection.
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut origin.conn)
        .await
        .map_err(|e| source_lost(&origin.shown, e))?;
    let mut looked = Vec::new();
    let mut found = false;
    for (table, column) in HISTORIES {
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(table)
            .fetch_one(&mut origin.conn)
            .await
            .map_err(|e| source_lost(&origin.shown, e))?;
        let Some(name) = exists else {
            looked.push(*table);
            continue;
        };
        found = true;
        let sql = format!("SELECT ({column})::text FROM {name} WHERE ({column}) IS NOT NULL");
        let versions: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_all(&mut origin.conn)
            .await
            .map_err(|e| source_lost(&origin.shown, e))?;
        if let Some(v) = recorded_version(set, &versions) {
            origin.version = v;
            return Ok(origin);
        }
    }
    let why = if found {
        "its migration history names none of the migrations here".to_owned()
    } else {
        format!(
            "it holds no migration history migproof reads (looked for {})",
            looked.join(", ")
        )
    };
    let message = format!(
        "--data-from `{}`: {why}, so the version its rows are at is unknown",
        origin.shown
    );
    origin.close(server).await;
    Err(RunError::Input(message))
}

fn source_lost(shown: &str, e: sqlx::Error) -> RunError {
    RunError::Lost(format!(
        "lost the connection to --data-from `{shown}`: {}",
        backend::describe(&e)
    ))
}

/// Restores a dump into `mirror`: a custom-format one (it starts with `PGDMP`) with
/// `pg_restore`, a plain one with `psql`. Statements the mirror refuses (an owner or a grant
/// to a role this server does not have) are skipped, as a restore into another server does.
async fn restore(path: &Path, mirror: &ScratchDb) -> Result<(), RunError> {
    let head = std::fs::read(path)
        .map(|b| b.into_iter().take(5).collect::<Vec<u8>>())
        .map_err(|e| RunError::Input(format!("--data-from `{}`: {e}", path.display())))?;
    let custom = head == b"PGDMP";
    let tool = if custom { "pg_restore" } else { "psql" };
    let bin = client(tool).ok_or_else(|| {
        RunError::Lost(format!(
            "`{tool}` was not found (on PATH or under /usr/lib/postgresql/*/bin); it restores \
             the --data-from dump"
        ))
    })?;
    let mut cmd = tokio::process::Command::new(&bin);
    if custom {
        cmd.args(["--no-owner", "--no-privileges", "--dbname"])
            .arg(mirror.url())
            .arg(path);
    } else {
        cmd.args(["--quiet", "--no-psqlrc", "--dbname"])
            .arg(mirror.url())
            .arg("--file")
            .arg(path);
    }
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| RunError::Lost(format!("`{tool}` did not run: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // pg_restore exits 1 on the errors it skipped; a dump it cannot read at all says so.
    let unreadable = stderr.contains("input file does not appear to be a valid archive")
        || stderr.contains("unsupported version")
        || stderr.contains("could not open input file");
    if unreadable || (!custom && !out.status.success()) {
        let first = stderr.lines().next().unwrap_or("").trim();
        return Err(RunError::Input(format!(
            "--data-from `{}`: {tool} could not read it: {first}",
            path.display()
        )));
    }
    Ok(())
}

/// A PostgreSQL client program: beside the server binaries migproof uses, or on PATH.
fn client(name: &str) -> Option<PathBuf> {
    let beside = backend::local::binaries(None).map(|dir| dir.join(name));
    beside.filter(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    })
}

/// What was copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub tables: usize,
    pub rows: u64,
}

impl Origin {
    /// Copies the source's rows into `s` (a database at golden [`Origin::version`]): for each
    /// of `tables`, parents first, the columns the source's table has too (generated ones
    /// left out), with the table's own triggers off while it loads; then every sequence a
    /// column owns is moved past the column's largest value.
    pub async fn copy(&mut self, s: &mut Session, tables: &[Table]) -> Result<Loaded, RunError> {
        let theirs = catalog::tables(&mut self.conn)
            .await
            .map_err(|e| source_lost(&self.shown, e))?;
        let mut loaded = Loaded::default();
        for table in catalog::parents_first(tables) {
            let Some(source) = theirs
                .iter()
                .find(|t| t.schema == table.schema && t.name == table.name)
            else {
                continue;
            };
            let columns: Vec<String> = table
                .columns
                .iter()
                .filter(|c| c.generated.is_empty())
                .filter(|c| source.column(&c.name).is_some())
                .map(|c| crate::observe::ident(&c.name))
                .collect();
            if columns.is_empty() {
                continue;
            }
            let columns = columns.join(", ");
            let name = table.sql_name();
            sqlx::raw_sql(AssertSqlSafe(format!(
                "ALTER TABLE {name} DISABLE TRIGGER USER"
            )))
            .execute(s.conn())
            .await
            .map_err(lost)?;
            let out = format!("COPY (SELECT {columns} FROM ONLY {name}) TO STDOUT");
            let mut stream = self
                .conn
                .copy_out_raw(&out)
                .await
                .map_err(|e| source_lost(&self.shown, e))?;
            let into = format!("COPY {name} ({columns}) FROM STDIN");
            let mut sink = s.conn().copy_in_raw(&into).await.map_err(lost)?;
            let mut failed = None;
            loop {
                match stream.try_next().await {
                    Ok(Some(chunk)) => {
                        if let Err(e) = sink.send(chunk).await {
                            failed = Some(e);
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(source_lost(&self.shown, e)),
                }
            }
            // The rest of the source's stream is read before the connection is used again.
            while let Ok(Some(_)) = stream.try_next().await {}
            drop(stream);
            let rows = match failed {
                Some(e) => {
                    let _ = sink.abort("migproof: the rows could not be sent").await;
                    Err(e)
                }
                None => sink.finish().await,
            }
            .map_err(|e| {
                RunError::Input(format!(
                    "--data-from `{}`: the rows of {} do not load into the schema at this \
                     version: {}",
                    self.shown,
                    table.display_name(),
                    backend::describe(&e)
                ))
            })?;
            sqlx::raw_sql(AssertSqlSafe(format!(
                "ALTER TABLE {name} ENABLE TRIGGER USER"
            )))
            .execute(s.conn())
            .await
            .map_err(lost)?;
            loaded.tables += 1;
            loaded.rows += rows;
        }
        sqlx::raw_sql(ADVANCE_SEQUENCES)
            .execute(s.conn())
            .await
            .map_err(lost)?;
        Ok(loaded)
    }

    /// Ends the read-only transaction and drops the mirror.
    pub async fn close(mut self, server: &Server) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
        if let Some(mirror) = self.mirror {
            let _ = server.drop_db(&mirror).await;
        }
    }
}

/// Moves every sequence a column owns past the largest value the column holds.
const ADVANCE_SEQUENCES: &str = "DO $$
DECLARE r record;
BEGIN
    FOR r IN
        SELECT s.oid::regclass AS seq, c.oid::regclass AS tab, a.attname
        FROM pg_class s
        JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        JOIN pg_class c ON c.oid = d.refobjid
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
        WHERE s.relkind = 'S' AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('SELECT setval(%L, greatest(coalesce((SELECT max(%I) FROM %s), 0), 0) + 1, false)',
            r.seq, r.attname, r.tab);
    END LOOP;
END $$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_however_the_migrator_wrote_them() {
        assert_eq!(normal("2024-03-01-093000"), normal("20240301093000"));
        assert_eq!(normal("000004"), "4");
        assert_eq!(normal("0002"), normal("2"));
    }
}

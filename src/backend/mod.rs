//! Getting a PostgreSQL server and scratch databases on it. One file per way of getting a
//! server; this module owns scratch database naming, ownership markers and clean-up, so that
//! migproof only ever creates, uses and drops databases it made itself.

pub mod docker;
pub mod local;
pub mod url;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

/// Prefix of every database migproof creates; nothing else is ever dropped.
pub const SCRATCH_PREFIX: &str = "migproof_";
/// Start of the comment that marks a scratch database and names its owner.
const MARKER: &str = "migproof scratch";

/// Which way to get a server, as the user asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// `local` when PostgreSQL binaries are installed, else `docker` when a Docker engine
    /// answers, else `url` when a URL is given.
    Auto,
    /// A throwaway cluster started from this machine's PostgreSQL binaries.
    Local,
    /// An existing server from `--database-url` or `DATABASE_URL`.
    Url,
    /// A throwaway container of the `postgres` image (`--pg-version`), through testcontainers.
    Docker,
}

/// Which role applies the migrations under test.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MigrationRole {
    /// A role that owns the scratch database and nothing else: no superuser, no CREATEROLE,
    /// no CREATEDB. Trusted extensions still work, since it owns the database.
    #[default]
    Owner,
    /// The server's superuser: for migrations that need it (untrusted extensions, roles).
    /// A migration can then change the whole server.
    Superuser,
}

/// What migproof may do with the role it is given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Access {
    pub migration_role: MigrationRole,
    /// Accept a database URL whose role is a superuser.
    pub allow_superuser: bool,
}

impl Access {
    /// For the library: `migration_role` as configured, and a superuser URL accepted when
    /// `MIGPROOF_ALLOW_SUPERUSER` is set to anything but `0`, `false` or nothing (as the CLI's
    /// `--allow-superuser` reads it).
    pub fn from_env(migration_role: Option<MigrationRole>) -> Access {
        let allow = std::env::var("MIGPROOF_ALLOW_SUPERUSER").is_ok_and(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "no" | "off"
            )
        });
        Access {
            migration_role: migration_role.unwrap_or_default(),
            allow_superuser: allow,
        }
    }
}

/// Why no server could be had. All of these are environment failures (exit 3), but for
/// [`BackendError::is_usage`] ones.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "no PostgreSQL server available: no PostgreSQL binaries (`initdb`, `pg_ctl`) were found \
         on PATH or under /usr/lib/postgresql/*/bin, no Docker engine answers, and no database \
         URL was given; install PostgreSQL (for example `apt-get install postgresql`), start \
         Docker, or pass `--database-url postgres://user@host/db` (or set DATABASE_URL)"
    )]
    NothingAvailable,
    #[error("`--backend url` needs a server: pass `--database-url postgres://user@host/db` or set DATABASE_URL")]
    NoUrl,
    #[error("database URL `{url}` is not valid: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "the database URL's role `{role}` is a superuser on {target}, so a migration under test \
         could change the whole server (other databases, roles, ALTER SYSTEM, COPY TO PROGRAM); \
         give migproof a role with only CREATEDB (see the README's Security section), or pass \
         `--allow-superuser` to let migproof apply migrations as a throwaway role it creates"
    )]
    SuperuserUrl { role: String, target: String },
    #[error("failed to start a local PostgreSQL cluster: {0}")]
    Local(String),
    #[error("docker backend: {0}")]
    Docker(String),
    #[error("failed to connect to PostgreSQL at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("failed to {action} on the server at {target}: {reason}")]
    Admin {
        action: String,
        target: String,
        reason: String,
    },
    #[error(
        "role `{role}` (listed in migproof.toml's [setup] roles) does not exist on {target}; \
         migproof creates roles only in clusters it starts (`--backend local` or `docker`), so \
         create it there first"
    )]
    MissingRole { role: String, target: String },
}

impl BackendError {
    /// True when the user's input, not the environment, is at fault (exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            BackendError::SuperuserUrl { .. } | BackendError::NoUrl | BackendError::BadUrl { .. }
        )
    }
}

/// The role migrations are applied as, and what migproof must undo for it.
#[derive(Debug, Clone)]
enum Applier {
    /// The maintenance connection's own role.
    Admin,
    /// A login role migproof created; `dropped` at cleanup when the server outlives the run.
    Created {
        name: String,
        password: String,
        dropped: bool,
    },
}

/// A reachable server on which migproof may create scratch databases.
pub struct Server {
    /// Options for the maintenance database; only used to create and drop scratch databases.
    admin: PgConnectOptions,
    /// Where the server is, for messages (never carries a password).
    pub target: String,
    /// What kind of server this is, for the report.
    pub kind: BackendKind,
    created: Mutex<Vec<String>>,
    /// The password of the URL, if any, for external migrators.
    password: Option<String>,
    /// Held (shared) by every creation under way; cleanup takes it exclusively.
    creating: Arc<tokio::sync::RwLock<()>>,
    /// Held by the creation under way (see [`Server::create`]).
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
    /// Set when the clean-up starts: a creation still waiting for its turn then gives up
    /// instead of making a database the clean-up would have to wait for and drop.
    closing: Arc<std::sync::atomic::AtomicBool>,
    counter: std::sync::atomic::AtomicU32,
    /// `migproof_<pid>_<nonce>_h<host tag>`: the start of every scratch database's name.
    run: String,
    /// Holds the run's advisory lock for as long as the run lives: the sweep of another run
    /// drops this run's databases only once the lock is free (see [`Server::sweep`]).
    run_lock: tokio::sync::Mutex<Option<PgConnection>>,
    /// Who applies migrations.
    applier: Applier,
    /// Whether the maintenance role is a superuser.
    pub superuser: bool,
    /// The server's version as it reports it (`18.4`), read when the run starts.
    pub version: String,
    /// `STRATEGY FILE_COPY` for new databases (see [`Server::read_settings`]).
    file_copy: bool,
    /// Tables an external migrator keeps its history in, left out of snapshots and data
    /// checks: given to every scratch database session as `migproof.history_tables`.
    history_tables: String,
    /// Taken by every step watched by [`crate::guard::watch`]: one step at a time, so that
    /// what changed on the server is that step's doing.
    pub(crate) globals_turn: tokio::sync::Mutex<()>,
    /// Idle connections to the maintenance database, reused: with sqlx 0.9.0 opening one over
    /// TLS takes ~90 ms, as it no longer sets TCP_NODELAY and the handshake waits for delayed
    /// ACKs (transact-rs/sqlx#4335).
    idle: Mutex<Vec<PgConnection>>,
    /// Keeps a local cluster alive as long as the server is in use; dropping stops it.
    _cluster: Option<local::Cluster>,
    /// Keeps a container alive as long as the server is in use; dropping removes it.
    _container: Option<docker::Container>,
}

/// A database migproof created and will drop.
#[derive(Debug, Clone)]
pub struct ScratchDb {
    pub name: String,
    pub options: PgConnectOptions,
    /// The server's password, for external migrators' URLs; never printed.
    password: Option<String>,
    /// Whether migrations run here as a superuser (`--migration-role superuser`).
    pub superuser: bool,
}

impl ScratchDb {
    pub async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        answered(self.options.connect()).await
    }

    /// A `postgresql://` URL for external migrators (Alembic, commands). Carries the password
    /// when the server needs one, so it must never be printed.
    pub fn url(&self) -> String {
        let o = &self.options;
        let mut url = ::url::Url::parse("postgresql://localhost").expect("static URL parses");
        let _ = url.set_username(o.get_username());
        let _ = url.set_password(self.password.as_deref());
        let _ = url.set_host(Some(o.get_host()));
        let _ = url.set_port(Some(o.get_port()));
        url.set_path(&self.name);
        url.into()
    }

    /// The password of the scratch database's role, if it has one; never printed.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }
}

/// An sqlx error as a message for people: for an error from the server, its message and
/// SQLSTATE, without sqlx's "at line N" (a line of PostgreSQL's C source, easily mistaken for
/// a line of a migration).
pub fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        sqlx::Error::Io(io) => format!("the connection broke ({io})"),
        other => other.to_string(),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The ownership marker written as the comment of every scratch database.
fn marker() -> String {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{MARKER} host={} pid={} started={started}",
        hostname(),
        std::process::id()
    )
}

/// True when a marker names a process on this host that no longer runs.
fn owner_is_gone(comment: &str) -> bool {
    let Some(rest) = comment.strip_prefix(MARKER) else {
        return false;
    };
    let field = |key: &str| {
        rest.split_whitespace()
            .find_map(|f| f.strip_prefix(key).map(str::to_owned))
    };
    let (Some(host), Some(pid)) = (field("host="), field("pid=")) else {
        return false;
    };
    if host != hostname() {
        return false;
    }
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    pid != std::process::id() as i32 && !process_alive(pid)
}

/// A short tag of this host's name, part of every scratch database's name.
pub fn host_tag() -> String {
    // FNV-1a: stable across runs and builds, unlike the standard library's hasher.
    let hash = hostname().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:08x}", hash as u32)
}

/// True for a scratch database without a marker whose name says it was made on this host by a
/// process that no longer runs: `migproof_<pid>_<nonce>_h<host tag>_<n>`.
fn unmarked_owner_is_gone(name: &str) -> bool {
    let parts: Vec<&str> = name.split('_').collect();
    let [_, pid, nonce, host, n] = parts.as_slice() else {
        return false;
    };
    let ours = host.strip_prefix('h') == Some(host_tag().as_str())
        && nonce.len() == 6
        && nonce.chars().all(|c| c.is_ascii_hexdigit())
        && n.chars().all(|c| c.is_ascii_digit());
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    ours && pid != std::process::id() as i32 && !process_alive(pid)
}

/// True when `pid` runs. A zombie (exited, not yet reaped by its parent) does not.
pub(crate) fn process_alive(pid: i32) -> bool {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => !local::is_zombie(pid),
        Err(_) => false,
    }
}

impl Server {
    fn new(
        admin: PgConnectOptions,
        target: String,
        kind: BackendKind,
        cluster: Option<local::Cluster>,
    ) -> Server {
        Server {
            admin,
            target,
            kind,
            created: Mutex::new(Vec::new()),
            password: None,
            creating: Default::default(),
            one_at_a_time: Default::default(),
            closing: Default::default(),
            counter: Default::default(),
            run: format!(
                "{SCRATCH_PREFIX}{}_{}_h{}",
                std::process::id(),
                run_nonce(),
                host_tag()
            ),
            run_lock: Default::default(),
            applier: Applier::Admin,
            superuser: false,
            version: String::new(),
            file_copy: false,
            history_tables: String::new(),
            globals_turn: Default::default(),
            idle: Mutex::new(Vec::new()),
            _cluster: cluster,
            _container: None,
        }
    }

    /// Sets the password external migrators need in their URL.
    pub(crate) fn with_password(mut self, password: Option<String>) -> Server {
        self.password = password;
        self
    }

    /// Keeps the container the server runs in until the server is dropped.
    pub(crate) fn with_container(mut self, container: docker::Container) -> Server {
        self._container = Some(container);
        self
    }

    /// `local`, `url` or `docker`, for the report.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            BackendKind::Local => "local",
            BackendKind::Url => "url",
            BackendKind::Docker => "docker",
            BackendKind::Auto => "auto",
        }
    }

    /// Starts or connects to a server as asked (`docker` says which image for the docker
    /// backend; `major`, when given, which PostgreSQL major a local cluster runs); sweeps
    /// stale scratch databases of dead migproof processes on it.
    pub async fn open(
        kind: BackendKind,
        url: Option<&str>,
        docker: &docker::Options,
        major: Option<u32>,
        access: Access,
    ) -> Result<Server, BackendError> {
        let mut server = match kind {
            BackendKind::Local => local::start(major).await?,
            BackendKind::Url => url::open(url.ok_or(BackendError::NoUrl)?).await?,
            BackendKind::Docker => docker::start(docker).await?,
            BackendKind::Auto => {
                if local::binaries(major).is_some() {
                    local::start(major).await?
                } else if docker::engine_answers().await {
                    docker::start(docker).await?
                } else if let Some(url) = url {
                    url::open(url).await?
                } else if major.is_some() {
                    // Says which major is missing and how to install it.
                    local::start(major).await?
                } else {
                    return Err(BackendError::NothingAvailable);
                }
            }
        };
        server.hold_run_lock().await?;
        (server.version, server.file_copy) = server.read_settings().await?;
        server.choose_applier(access).await?;
        server.sweep().await?;
        Ok(server)
    }

    /// Leaves the tables named out of every snapshot and data check on scratch databases made
    /// from now on: the history tables of the migrator that applies the project.
    pub fn ignore_history_tables(&mut self, names: &[&str]) {
        self.history_tables = names.join(",");
    }

    /// The server's version as it reports it (`SHOW server_version`), and whether new
    /// databases are copied file by file (`STRATEGY FILE_COPY`, PostgreSQL 15 and later)
    /// rather than through the WAL (the default since 15): on a server that does not sync its
    /// files (`fsync` off: migproof's own local cluster, a throwaway one in CI) the
    /// checkpoints a file copy waits for are cheap, and logging every page of the template,
    /// about 7.5 MB a database, is not (half the time of a `CREATE DATABASE` there). A server
    /// that syncs its files keeps the default: its checkpoints cost more. Read in one round
    /// trip on the run lock's connection.
    async fn read_settings(&self) -> Result<(String, bool), BackendError> {
        let mut held = self.run_lock.lock().await;
        let conn = held.as_mut().expect("the run lock is held");
        let (version, number, fsync): (String, String, String) = sqlx::query_as(
            "SELECT current_setting('server_version'), current_setting('server_version_num'), \
             current_setting('fsync')",
        )
        .fetch_one(conn)
        .await
        .map_err(|e| self.admin_error("read the server's version and settings", e))?;
        let file_copy = number.parse::<u32>().unwrap_or(0) >= 150000 && fsync == "off";
        // Debian builds say `15.14 (Debian 15.14-1.pgdg13+1)`.
        let version = version.split_whitespace().next().unwrap_or_default();
        Ok((version.to_owned(), file_copy))
    }

    /// Takes this run's advisory lock on a connection of its own, kept until cleanup.
    async fn hold_run_lock(&self) -> Result<(), BackendError> {
        let mut conn = connect_with_retry(&self.admin, &self.target).await?;
        let (class, key) = lock_key(&self.run);
        sqlx::query("SELECT pg_advisory_lock($1, $2)")
            .bind(class)
            .bind(key)
            .execute(&mut conn)
            .await
            .map_err(|e| self.admin_error("take this run's advisory lock", e))?;
        *self.run_lock.lock().await = Some(conn);
        Ok(())
    }

    /// Decides who applies migrations: a login role owning only the scratch databases, made
    /// here when the maintenance role is a superuser, unless the superuser was asked for.
    /// A superuser URL is refused unless `--allow-superuser` says it was meant.
    async fn choose_applier(&mut self, access: Access) -> Result<(), BackendError> {
        let mut conn = self.admin_conn().await?;
        let (role, superuser): (String, bool) = sqlx::query_as(
            "SELECT rolname::text, rolsuper FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| self.admin_error("look up the connection's role", e))?;
        self.superuser = superuser;
        if self.kind == BackendKind::Url && superuser && !access.allow_superuser {
            return Err(BackendError::SuperuserUrl {
                role,
                target: self.target.clone(),
            });
        }
        if !superuser || access.migration_role == MigrationRole::Superuser {
            self.release(conn);
            return Ok(());
        }
        // In a cluster of its own one fixed name will do; on a shared server the role is this
        // run's, and goes with it.
        let (name, dropped) = match self.kind {
            BackendKind::Url => (self.run.clone(), true),
            _ => (format!("{SCRATCH_PREFIX}apply"), false),
        };
        let password = random_secret();
        let sql = format!(
            "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS \
             PASSWORD {}",
            quote_ident(&name),
            stored_password(&password)
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|e| self.admin_error(&format!("create the role `{name}`"), e))?;
        self.release(conn);
        self.applier = Applier::Created {
            name,
            password,
            dropped,
        };
        Ok(())
    }

    /// Cancels this run's `CREATE DATABASE` statements still running on the server.
    async fn cancel_creations(&self) {
        let Ok(mut conn) = connect_with_retry(&self.admin, &self.target).await else {
            return;
        };
        let pattern = format!("CREATE DATABASE \"{}\\_%", self.run.replace('_', "\\_"));
        let cancel = sqlx::query(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
             WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()",
        )
        .bind(pattern)
        .execute(&mut conn);
        let _ = answered(cancel).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close()).await;
    }

    /// Completes only when the server stops answering: pinged every 2 s on the connection
    /// that holds the run's lock, and, when that gets no answer in time, on a new connection.
    /// Raced against a run, so that a server frozen between steps (a snapshot, seeding) ends
    /// the run as an environment failure instead of hanging it.
    pub async fn until_unresponsive(&self) -> BackendError {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let held = {
                let mut lock = self.run_lock.lock().await;
                match lock.as_mut() {
                    Some(conn) => answered(conn.ping()).await.is_ok(),
                    None => true,
                }
            };
            if held {
                continue;
            }
            match answered(self.admin.connect()).await {
                Ok(_) => {}
                Err(e) => {
                    return BackendError::Connect {
                        target: self.target.clone(),
                        reason: format!("the server stopped answering ({})", describe(&e)),
                    }
                }
            }
        }
    }

    /// The role migrations are applied as, for the report.
    pub fn migration_role(&self) -> &str {
        match &self.applier {
            Applier::Admin => self.admin.get_username(),
            Applier::Created { name, .. } => name,
        }
    }

    /// True when migrations run with superuser powers.
    pub fn applies_as_superuser(&self) -> bool {
        self.superuser && matches!(self.applier, Applier::Admin)
    }

    /// An idle maintenance connection that still answers, or a new one.
    pub(crate) async fn admin_conn(&self) -> Result<PgConnection, BackendError> {
        loop {
            let Some(mut conn) = self.idle.lock().expect("not poisoned").pop() else {
                break;
            };
            match answered(conn.ping()).await {
                Ok(()) => return Ok(conn),
                // No answer on a connection that was fine: a new one would get none either.
                Err(sqlx::Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(BackendError::Connect {
                        target: self.target.clone(),
                        reason: e.to_string(),
                    });
                }
                // Closed since (the server restarted, an idle timeout): try the next.
                Err(_) => {}
            }
        }
        connect_with_retry(&self.admin, &self.target).await
    }

    /// Keeps a maintenance connection for the next admin statement.
    pub(crate) fn release(&self, conn: PgConnection) {
        self.idle.lock().expect("not poisoned").push(conn);
    }

    pub(crate) fn admin_error(&self, action: &str, e: sqlx::Error) -> BackendError {
        BackendError::Admin {
            action: action.to_owned(),
            target: self.target.clone(),
            reason: describe(&e),
        }
    }

    /// Makes sure `roles` exist: created (NOLOGIN) in a cluster or container migproof started;
    /// on a server given by URL only looked up, since migproof changes nothing there but its
    /// own scratch databases.
    pub async fn ensure_roles(&self, roles: &[String]) -> Result<(), BackendError> {
        if roles.is_empty() {
            return Ok(());
        }
        let mut conn = self.admin_conn().await?;
        for role in roles {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                    .bind(role)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(|e| self.admin_error("look up roles", e))?;
            if exists {
                self.grant_to_applier(&mut conn, role).await?;
                continue;
            }
            if self.kind == BackendKind::Url {
                return Err(BackendError::MissingRole {
                    role: role.clone(),
                    target: self.target.clone(),
                });
            }
            let sql = format!("CREATE ROLE {} NOLOGIN", quote_ident(role));
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .map_err(|e| self.admin_error(&format!("create role `{role}`"), e))?;
            self.grant_to_applier(&mut conn, role).await?;
        }
        self.release(conn);
        Ok(())
    }

    /// Makes the role migrations run as a member of `role`, so that they may grant to it and
    /// make it an owner, as they would as the project's own deploy role.
    async fn grant_to_applier(
        &self,
        conn: &mut PgConnection,
        role: &str,
    ) -> Result<(), BackendError> {
        let Applier::Created { name, .. } = &self.applier else {
            return Ok(());
        };
        let sql = format!("GRANT {} TO {}", quote_ident(role), quote_ident(name));
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(conn)
            .await
            .map_err(|e| self.admin_error(&format!("grant role `{role}` to `{name}`"), e))?;
        Ok(())
    }

    /// Creates an empty scratch database, marked as ours.
    ///
    /// Safe to cancel (Ctrl-C drops the future at any await): the name is recorded before the
    /// database exists, and creating and marking run to the end in a task of their own, which
    /// [`Server::cleanup`] waits for, so an interrupted creation is still dropped.
    ///
    /// Creations run one at a time, in the order asked for: copying the template is bound by
    /// the server's disk, so concurrent ones all finish late, while one at a time the first
    /// asked for (the golden pass) is ready first.
    pub async fn create(&self) -> Result<ScratchDb, BackendError> {
        self.create_copy(None).await
    }

    /// Creates a scratch database as a copy of `template`, a scratch database of this run
    /// that no session is connected to (`CREATE DATABASE ... TEMPLATE`): a checkpoint to
    /// start from instead of applying every migration again. `Ok(None)` when `template` holds
    /// what a copy does not carry (settings or privileges of the database itself, which live
    /// outside it), or when the server refuses the copy (a role that may not read it): then
    /// the caller builds the database the long way.
    pub async fn create_from(
        &self,
        template: &ScratchDb,
    ) -> Result<Option<ScratchDb>, BackendError> {
        let mut conn = self.admin_conn().await?;
        // Ours is `synchronous_commit=off` for the database (see `create_marked`).
        let carried: Result<bool, sqlx::Error> = sqlx::query_scalar(
            "SELECT d.datacl IS NULL AND NOT EXISTS (
                 SELECT FROM pg_db_role_setting s WHERE s.setdatabase = d.oid
                 AND (s.setrole <> 0 OR s.setconfig <> '{synchronous_commit=off}'))
             FROM pg_database d WHERE d.datname = $1",
        )
        .bind(&template.name)
        .fetch_one(&mut conn)
        .await;
        self.release(conn);
        match carried {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(self.admin_error("look at a checkpoint database", e)),
        }
        match self.create_copy(Some(&template.name)).await {
            Ok(db) => Ok(Some(db)),
            Err(BackendError::Admin { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_copy(&self, template: Option<&str>) -> Result<ScratchDb, BackendError> {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{}_{n}", self.run);
        self.created
            .lock()
            .expect("not poisoned")
            .push(name.clone());
        let creating = self.creating.clone().read_owned().await;
        // Taken here, not in the task: waiters are served in the order they asked.
        let turn = self.one_at_a_time.clone().lock_owned().await;
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BackendError::Admin {
                action: format!("create scratch database `{name}`"),
                target: self.target.clone(),
                reason: "the run is ending".into(),
            });
        }
        let (admin, target, task_name) = (self.admin.clone(), self.target.clone(), name.clone());
        let template = template.unwrap_or("template0").to_owned();
        let file_copy = self.file_copy;
        let owner = match &self.applier {
            Applier::Admin => None,
            Applier::Created { name, .. } => Some(name.clone()),
        };
        tokio::spawn(async move {
            let _creating = creating;
            let _turn = turn;
            let strategy = file_copy.then_some("FILE_COPY");
            let (name, owner) = (task_name.as_str(), owner.as_deref());
            create_marked(&admin, &target, name, owner, &template, strategy).await
        })
        .await
        .expect("creating a database does not panic")?;
        let (options, password) = match &self.applier {
            Applier::Admin => (self.admin.clone(), self.password.clone()),
            Applier::Created { name, password, .. } => (
                self.admin.clone().username(name).password(password),
                Some(password.clone()),
            ),
        };
        let options = options
            .database(&name)
            .options([("migproof.history_tables", self.history_tables.as_str())]);
        Ok(ScratchDb {
            options,
            name,
            password,
            superuser: self.applies_as_superuser(),
        })
    }

    /// Drops scratch databases this process created all at once: concurrent drops share the
    /// checkpoint each waits for (see [`DROP_BATCH`]). The first error, once all were tried.
    pub async fn drop_all(&self, dbs: &[ScratchDb]) -> Result<(), BackendError> {
        let drops = dbs.iter().map(|db| self.drop_db(db));
        let dropped = futures_util::future::join_all(drops).await;
        dropped.into_iter().collect()
    }

    /// Drops a scratch database this process created, disconnecting its sessions.
    pub async fn drop_db(&self, db: &ScratchDb) -> Result<(), BackendError> {
        let mut conn = self.admin_conn().await?;
        self.drop_named(&mut conn, &db.name).await?;
        self.release(conn);
        self.created
            .lock()
            .expect("not poisoned")
            .retain(|n| *n != db.name);
        Ok(())
    }

    async fn drop_named(&self, conn: &mut PgConnection, name: &str) -> Result<(), BackendError> {
        assert!(
            name.starts_with(SCRATCH_PREFIX),
            "only scratch databases are ever dropped"
        );
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
        // Removing the files of a big database takes a while: more than a connection may.
        let dropping = sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn);
        let result = match tokio::time::timeout(DROP_TIMEOUT, dropping).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                no_answer(DROP_TIMEOUT),
            ))),
        };
        result.map_err(|e| self.admin_error(&format!("drop scratch database `{name}`"), e))
    }

    /// Drops every scratch database this process created and has not dropped yet, after
    /// creations still under way (interrupted ones included) have finished, in at most
    /// [`CLEANUP_BUDGET`] (see [`Server::cleanup_within`]).
    pub async fn cleanup(&self) -> Result<(), BackendError> {
        self.cleanup_within(CLEANUP_BUDGET).await
    }

    /// [`Server::cleanup`] in at most `budget` (an interrupted run must end within two
    /// seconds): on a server that does not answer in time, what was not dropped stays, and
    /// the error names it.
    pub async fn cleanup_within(&self, budget: Duration) -> Result<(), BackendError> {
        let deadline = tokio::time::Instant::now() + budget;
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // A creation still under way when half the budget is gone (copying the template is
        // slow on a loaded server) is cancelled: dropped before it ends, its database would
        // appear afterwards and be left behind.
        let mut no_creation_under_way =
            tokio::time::timeout(budget / 2, self.creating.write()).await;
        if no_creation_under_way.is_err() {
            let _ = tokio::time::timeout_at(deadline, self.cancel_creations()).await;
            no_creation_under_way = tokio::time::timeout_at(deadline, self.creating.write()).await;
        }
        let _no_creation_under_way = no_creation_under_way;
        let dropping = async {
            // All at once, each on its connection: every DROP DATABASE waits for a
            // checkpoint, which concurrent drops share.
            let names = self.created.lock().expect("not poisoned").clone();
            let drops = names.into_iter().map(|name| async move {
                let mut conn = self.admin_conn().await?;
                self.drop_named(&mut conn, &name).await?;
                self.release(conn);
                self.created
                    .lock()
                    .expect("not poisoned")
                    .retain(|n| *n != name);
                Ok::<(), BackendError>(())
            });
            for dropped in futures_util::future::join_all(drops).await {
                dropped?;
            }
            if let Applier::Created {
                name,
                dropped: true,
                ..
            } = &self.applier
            {
                let mut conn = self.admin_conn().await?;
                drop_role(&mut conn, name)
                    .await
                    .map_err(|e| self.admin_error(&format!("drop the role `{name}`"), e))?;
                self.release(conn);
            }
            Ok(())
        };
        let dropped = match tokio::time::timeout_at(deadline, dropping).await {
            Ok(dropped) => dropped,
            Err(_) => Err(BackendError::Connect {
                target: self.target.clone(),
                reason: no_answer(budget),
            }),
        };
        // Saying goodbye waits for no answer, but a server that reads nothing any more can
        // leave it stuck on a full send buffer: bounded too; dropped, they just close.
        let idle = std::mem::take(&mut *self.idle.lock().expect("not poisoned"));
        let lock = tokio::time::timeout(CLOSE_TIMEOUT, self.run_lock.lock())
            .await
            .ok()
            .and_then(|mut held| held.take());
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            for conn in idle.into_iter().chain(lock) {
                let _ = conn.close().await;
            }
        })
        .await;
        dropped.map_err(|e| {
            let left: Vec<String> = self
                .created
                .lock()
                .expect("not poisoned")
                .iter()
                .map(|n| format!("`{n}`"))
                .collect();
            if left.is_empty() {
                return e;
            }
            let reason = match e {
                BackendError::Admin { reason, .. } | BackendError::Connect { reason, .. } => reason,
                other => other.to_string(),
            };
            let mut action = match left.len() {
                1 => format!("drop scratch database {}", left[0]),
                _ => format!("drop scratch databases {}", left.join(", ")),
            };
            if let Applier::Created {
                name,
                dropped: true,
                ..
            } = &self.applier
            {
                action.push_str(&format!(" and the role `{name}`"));
            }
            BackendError::Admin {
                action,
                target: self.target.clone(),
                reason,
            }
        })
    }

    /// Drops scratch databases (and, with a superuser, the roles) of runs that are gone. A run
    /// is alive while it holds its advisory lock ([`Server::hold_run_lock`]), wherever it
    /// runs: host names and PIDs repeat across containers and PID namespaces, the server's
    /// locks do not. Names without a run (older migproof versions) fall back to their marker's
    /// host and PID. Databases without our name and marker are never touched.
    async fn sweep(&self) -> Result<(), BackendError> {
        let mut conn = self.admin_conn().await?;
        // A `CREATE DATABASE` of a killed run goes on without it: end it before the databases
        // are listed, or the database appears after this sweep has looked. Sessions are listed
        // before the locks are read: a run whose statement is seen here had taken its lock, so
        // one that is still alive shows in the locks read next.
        let creating: Vec<(i32, String)> = sqlx::query_as(
            "SELECT pid, query FROM pg_stat_activity \
             WHERE state = 'active' AND query LIKE 'CREATE DATABASE \"migproof\\_%' AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(|e| self.admin_error("list sessions", e))?;
        let held = self.held_locks(&mut conn).await?;
        for (pid, query) in creating {
            let name = query.split('"').nth(1).unwrap_or_default();
            if self.stale(&held, name, None) {
                let _ = sqlx::query("SELECT pg_terminate_backend($1, 5000)")
                    .bind(pid)
                    .execute(&mut conn)
                    .await;
            }
        }
        // The same order again: databases and roles, then the locks of the runs alive now.
        let databases: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT d.datname::text, shobj_description(d.oid, 'pg_database') \
             FROM pg_database d WHERE d.datname LIKE 'migproof\\_%'",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(|e| self.admin_error("list scratch databases", e))?;
        let roles: Vec<String> = if self.superuser {
            sqlx::query_scalar(
                "SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'migproof\\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .map_err(|e| self.admin_error("list roles", e))?
        } else {
            Vec::new()
        };
        let held = self.held_locks(&mut conn).await?;
        for (name, comment) in databases {
            if self.stale(&held, &name, comment.as_deref()) {
                // Best effort: a stale database this role may not drop (another role's run
                // left it) must not stop this run; its owner's next run sweeps it.
                let _ = self.drop_named(&mut conn, &name).await;
            }
        }
        for role in roles {
            if run_of(&role) == Some(role.as_str()) && self.gone(&held, &role) {
                let _ = drop_role(&mut conn, &role).await;
            }
        }
        self.release(conn);
        Ok(())
    }

    /// The keys of the advisory locks running migproof runs hold, in any database.
    async fn held_locks(&self, conn: &mut PgConnection) -> Result<Vec<i64>, BackendError> {
        sqlx::query_scalar(
            "SELECT objid::bigint FROM pg_locks \
             WHERE locktype = 'advisory' AND classid = $1::bigint::oid AND objsubid = 2 AND granted",
        )
        .bind(i64::from(LOCK_CLASS as u32))
        .fetch_all(conn)
        .await
        .map_err(|e| self.admin_error("list the advisory locks of running migproof runs", e))
    }

    /// True for another run whose lock is not among `held`.
    fn gone(&self, held: &[i64], run: &str) -> bool {
        let key = i64::from(lock_key(run).1 as u32);
        run != self.run && !held.contains(&key)
    }

    /// True for a scratch database (`name`, its marker `comment`) of a run that is gone.
    fn stale(&self, held: &[i64], name: &str, comment: Option<&str>) -> bool {
        match run_of(name) {
            Some(run) => self.gone(held, run),
            None => match comment {
                Some(c) => owner_is_gone(c),
                // Killed between CREATE DATABASE and its marker: the name says which process
                // on which host made it.
                None => unmarked_owner_is_gone(name),
            },
        }
    }
}

/// Class of migproof's advisory locks (`pg_advisory_lock(class, key)`): "mprf".
const LOCK_CLASS: i32 = 0x6d70_7266;

/// The advisory lock a run holds while it lives: (class, key) with the key a hash of its name.
fn lock_key(run: &str) -> (i32, i32) {
    let hash = run.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (LOCK_CLASS, hash as i32)
}

/// The run a scratch database or role belongs to: its name up to the run's end,
/// `migproof_<pid>_<8 hex>_h<8 hex>`, when the name has that form.
fn run_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(SCRATCH_PREFIX)?;
    let mut parts = rest.splitn(4, '_');
    let pid = parts.next()?;
    let nonce = parts.next()?;
    let host = parts.next()?.strip_prefix('h')?;
    let hex = |t: &str| t.len() == 8 && t.bytes().all(|b| b.is_ascii_hexdigit());
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || !hex(nonce) || !hex(host) {
        return None;
    }
    // The two underscores between the parts and the `h` before the host tag.
    let end = SCRATCH_PREFIX.len() + pid.len() + nonce.len() + host.len() + 3;
    match parts.next() {
        None => Some(name),
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Some(&name[..end]),
        Some(_) => None,
    }
}

async fn drop_role(conn: &mut PgConnection, role: &str) -> Result<(), sqlx::Error> {
    let sql = format!("DROP ROLE IF EXISTS {}", quote_ident(role));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// A random secret of 32 hex digits from the operating system: the passwords of the roles
/// migproof makes. Without a source of randomness there is no safe password: that is a bug of
/// the machine, and migproof stops rather than use a guessable one.
pub(crate) fn random_secret() -> String {
    random_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// 16 random bytes from the operating system.
fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes
}

/// `password` as the SQL literal of a new SCRAM-SHA-256 verifier (a random salt), for
/// `PASSWORD ...`: the verifier, not the password, since a server that logs DDL would log it.
pub(crate) fn stored_password(password: &str) -> String {
    quote_literal(&scram_verifier(password, &random_bytes()))
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802, 7677), which
/// `PASSWORD '...'` accepts in place of the password itself:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
fn scram_verifier(password: &str, salt: &[u8]) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    use sha2::Digest;
    type HmacSha256 = hmac::Hmac<sha2::Sha256>;
    const ITERATIONS: u32 = 4096;
    let hmac = |key: &[u8], data: &[&[u8]]| -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
        for d in data {
            mac.update(d);
        }
        mac.finalize().into_bytes().to_vec()
    };
    // PBKDF2-HMAC-SHA-256 of one block: the output is as long as the hash.
    let mut u = hmac(password.as_bytes(), &[salt, &1u32.to_be_bytes()]);
    let mut salted = u.clone();
    for _ in 1..ITERATIONS {
        u = hmac(password.as_bytes(), &[&u]);
        for (s, b) in salted.iter_mut().zip(&u) {
            *s ^= b;
        }
    }
    let client_key = hmac(&salted, &[b"Client Key"]);
    let stored_key = sha2::Sha256::digest(&client_key);
    let server_key = hmac(&salted, &[b"Server Key"]);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        b64(salt),
        b64(&stored_key),
        b64(&server_key)
    )
}

/// Eight random hex digits naming one run.
fn run_nonce() -> String {
    random_secret()[..8].to_owned()
}

/// `CREATE DATABASE` and its ownership marker. They cannot share a transaction; a database a
/// `kill -9` left unmarked between the two is recognised by its name (`unmarked_owner_is_gone`).
async fn create_marked(
    admin: &PgConnectOptions,
    target: &str,
    name: &str,
    owner: Option<&str>,
    template: &str,
    strategy: Option<&str>,
) -> Result<(), BackendError> {
    let failed = |action: String, e: sqlx::Error| BackendError::Admin {
        action,
        target: target.to_owned(),
        reason: describe(&e),
    };
    let mut conn = connect_with_retry(admin, target).await?;
    let owner = owner
        .map(|o| format!(" OWNER {}", quote_ident(o)))
        .unwrap_or_default();
    let strategy = strategy
        .map(|s| format!(" STRATEGY {s}"))
        .unwrap_or_default();
    let create = format!(
        "CREATE DATABASE {}{owner} TEMPLATE {}{strategy}",
        quote_ident(name),
        quote_ident(template)
    );
    sqlx::raw_sql(AssertSqlSafe(create))
        .execute(&mut conn)
        .await
        .map_err(|e| failed(format!("create scratch database `{name}`"), e))?;
    // A scratch database is thrown away, so its commits need not wait for the disk.
    let comment = format!(
        "COMMENT ON DATABASE {db} IS {};\nALTER DATABASE {db} SET synchronous_commit = off",
        quote_literal(&marker()),
        db = quote_ident(name),
    );
    sqlx::raw_sql(AssertSqlSafe(comment))
        .execute(&mut conn)
        .await
        .map_err(|e| failed(format!("mark scratch database `{name}`"), e))?;
    let _ = conn.close().await;
    Ok(())
}

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:06x}", t & 0xff_ffff)
}

/// How many finished scratch databases a run drops together ([`Server::drop_all`]). Each
/// `DROP DATABASE` waits for a checkpoint, which writes out every dirty page of the databases
/// still in use (on a server that syncs its files, fuzz on the shop spent about half of its
/// checkpoints on that); concurrent drops share one.
pub const DROP_BATCH: usize = 8;

/// How long the server may take to answer a connection attempt or a statement of migproof's
/// own (creating, dropping, looking at a step) before it is taken for gone: a server that
/// stops answering (frozen, its host suspended, a network that drops packets) must end the
/// run, not hang it.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(4);
/// The most `DROP DATABASE` of a scratch database may take: removing a big one's files takes a
/// while.
const DROP_TIMEOUT: Duration = Duration::from_secs(15);
/// The most [`Server::cleanup`] takes in all, so that a run against a server that stopped
/// answering ends within its step timeout and 10 s.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(4);
/// How long closing the maintenance connections may take at the end of a clean-up.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(200);

/// `work` (talking to the server), failed with a timed-out I/O error when the server does not
/// answer within [`ANSWER_TIMEOUT`].
/// Time in which migproof itself was paused (SIGSTOP, a suspended laptop, a frozen CI runner)
/// does not count: the server did answer then, to a process that was not running.
pub async fn answered<T>(
    work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    match in_running_time(ANSWER_TIMEOUT, std::pin::pin!(work)).await {
        Some(result) => result,
        None => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            no_answer(ANSWER_TIMEOUT),
        ))),
    }
}

/// How often [`in_running_time`] reads the clock, to notice that migproof itself was paused.
const CLOCK_TICK: Duration = Duration::from_millis(100);
/// A tick at least this late means migproof was not running (SIGSTOP, a suspended laptop, a
/// frozen CI runner); the time it was away is not counted.
const PAUSED: Duration = Duration::from_millis(500);

/// Runs `work` until it ends (`Some`), or until it has had `limit` of time in which migproof
/// itself was running (`None`): time in which migproof was paused is not counted.
pub async fn in_running_time<F: std::future::Future>(
    limit: Duration,
    mut work: std::pin::Pin<&mut F>,
) -> Option<F::Output> {
    let mut last = tokio::time::Instant::now();
    let mut deadline = last + limit;
    loop {
        tokio::select! {
            biased;
            out = work.as_mut() => return Some(out),
            () = tokio::time::sleep(CLOCK_TICK) => {
                let now = tokio::time::Instant::now();
                let late = now.saturating_duration_since(last).saturating_sub(CLOCK_TICK);
                if late >= PAUSED {
                    deadline += late;
                }
                last = now;
                if now >= deadline {
                    return None;
                }
            }
        }
    }
}

/// "no answer from the server within 4s", for errors.
fn no_answer(within: Duration) -> String {
    format!("no answer from the server within {}", seconds(within))
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Connects, retrying briefly while a server that was just started finishes starting up; each
/// attempt has [`ANSWER_TIMEOUT`], and one that times out is not retried.
pub(crate) async fn connect_with_retry(
    options: &PgConnectOptions,
    target: &str,
) -> Result<PgConnection, BackendError> {
    let mut last = None;
    for attempt in 0..3 {
        match answered(options.connect()).await {
            Ok(conn) => return Ok(conn),
            Err(e @ sqlx::Error::Database(_)) => {
                return Err(BackendError::Connect {
                    target: target.into(),
                    reason: describe(&e),
                });
            }
            Err(sqlx::Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(BackendError::Connect {
                    target: target.into(),
                    reason: e.to_string(),
                });
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
    }
    let reason = last.map(|e| describe(&e)).unwrap_or_default();
    Err(BackendError::Connect {
        target: target.into(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmarked_database_is_swept_only_by_name_of_a_dead_process_on_this_host() {
        let tag = host_tag();
        assert!(unmarked_owner_is_gone(&format!(
            "migproof_999999999_00ab12_h{tag}_3"
        )));
        let me = std::process::id();
        assert!(
            !unmarked_owner_is_gone(&format!("migproof_{me}_00ab12_h{tag}_3")),
            "our own"
        );
        assert!(
            !unmarked_owner_is_gone("migproof_999999999_00ab12_hdeadbeef_3") || tag == "deadbeef"
        );
        assert!(
            !unmarked_owner_is_gone("migproof_999999999_00ab12_3"),
            "older names carry no host"
        );
        assert!(
            !unmarked_owner_is_gone("migproof_reports"),
            "a user's database"
        );
        assert!(!unmarked_owner_is_gone(&format!(
            "migproof_1_00ab12_h{tag}_x"
        )));
    }

    #[test]
    fn scram_verifier_is_the_one_postgresql_stores() {
        use base64::Engine;
        // What PostgreSQL 15 stored for `CREATE ROLE ... PASSWORD 'pencil'`.
        let stored = "SCRAM-SHA-256$4096:/gNyDiSpn8rB0W4OvxcS2A==$hI+/IO5xVMY50awH7AxJjRmI18okdZHl\
                      6KYgOESCLYM=:cD2Yxcc7l8c1s/KwS6hQfD0L7Wp+4AyvfLtgKGcLkNA=";
        let salt = base64::engine::general_purpose::STANDARD
            .decode("/gNyDiSpn8rB0W4OvxcS2A==")
            .unwrap();
        assert_eq!(scram_verifier("pencil", &salt), stored);
    }

    #[test]
    fn a_database_or_role_names_its_run() {
        let run = "migproof_123_0a1b2c3d_hdeadbeef";
        assert_eq!(run_of(run), Some(run), "the run's role");
        assert_eq!(run_of(&format!("{run}_0")), Some(run));
        assert_eq!(run_of(&format!("{run}_17")), Some(run));
        assert_eq!(run_of(&format!("{run}_x")), None);
        assert_eq!(
            run_of("migproof_123_0a1b2c_hdeadbeef_0"),
            None,
            "older names"
        );
        assert_eq!(run_of("migproof_apply"), None);
        assert_eq!(run_of("migproof_reports"), None);
        assert_ne!(lock_key(run), lock_key("migproof_124_0a1b2c3d_hdeadbeef"));
    }

    #[test]
    fn marker_of_live_process_is_not_swept() {
        assert!(!owner_is_gone(&marker()));
        assert!(!owner_is_gone("somebody else's comment pid=1"));
        let dead = format!("{MARKER} host={} pid=999999999 started=0", hostname());
        assert!(owner_is_gone(&dead));
        let other_host = format!("{MARKER} host=elsewhere pid=999999999 started=0");
        assert!(!owner_is_gone(&other_host));
    }
}

//! The life of every command that runs migrations, written once: listen for Ctrl-C and SIGTERM
//! from the start, open the server, run the work while watching that the server still answers,
//! clean up (within a short budget after an interrupt), and turn the outcome into an exit code
//! and a message with no password in it.

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

use super::{exit, Common, DockerArgs};
use crate::backend::{self, BackendError, BackendKind, Server};
use crate::report::paint;
use crate::run::RunError;

/// Prints `error: <message>` on stderr and returns `code`.
pub(crate) fn error(code: u8, message: &str) -> u8 {
    if code == exit::ENVIRONMENT {
        super::output::environment_failed(message);
    }
    eprintln!(
        "{}: {message}",
        paint("error", "1;31", std::io::stderr().is_terminal())
    );
    code
}

/// Ctrl-C and SIGTERM, listened for from the start of a run to its end: a signal that arrives
/// between two phases (loading, starting a server, checking) is kept, not lost, and none ends
/// the process before it has cleaned up.
pub(crate) struct Interrupts {
    int: Option<Signal>,
    term: Option<Signal>,
}

impl Interrupts {
    pub(crate) fn install() -> Interrupts {
        Interrupts {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Waits for Ctrl-C or SIGTERM (or one that came while nobody was waiting).
    pub(crate) async fn recv(&mut self) {
        async fn one(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = one(&mut self.int) => {}
            _ = one(&mut self.term) => {}
        }
    }
}

/// Why a command's work ended without a result.
pub(crate) enum Failure {
    /// Bad input found only once the work had started (exit 2).
    Usage(String),
    /// The environment failed (exit 3).
    Environment(RunError),
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Failure {
        match e {
            RunError::Input(message) => Failure::Usage(message),
            e => Failure::Environment(e),
        }
    }
}

/// Where a command gets its server: the backend flags every command shares.
pub(crate) struct ServerArgs<'a> {
    /// `--backend`, if given.
    pub backend: Option<BackendKind>,
    pub url: Option<&'a str>,
    pub docker: &'a DockerArgs,
    /// The major version migproof.toml's [server] names, if any.
    pub pg_version: Option<u32>,
}

impl<'a> From<&'a Common> for ServerArgs<'a> {
    fn from(common: &'a Common) -> ServerArgs<'a> {
        ServerArgs {
            backend: common.backend,
            url: common.database_url.as_deref(),
            docker: &common.docker,
            pg_version: None,
        }
    }
}

/// Starts or connects to the server; an interrupt while it starts ends the command (exit 130).
pub(crate) async fn open_server(
    args: ServerArgs<'_>,
    access: backend::Access,
    interrupts: &mut Interrupts,
) -> Result<Server, u8> {
    let url = args.url.filter(|u| !u.is_empty());
    if let [_, _, ..] = args.docker.pg_version.as_slice() {
        return Err(error(
            exit::USAGE,
            "--pg-version: only `check` runs on several majors; give this command one",
        ));
    }
    // The major a local cluster runs (else whatever is installed) and a container's tag.
    let major = args.docker.major(args.pg_version);
    let docker = args.docker.options(major);
    // Where the URL came from, for messages: the flag, unless only the environment gave one.
    let origin = || {
        let flag = std::env::args_os()
            .any(|a| a == "--database-url" || a.to_string_lossy().starts_with("--database-url="));
        if !flag && std::env::var_os("DATABASE_URL").is_some() {
            "DATABASE_URL"
        } else {
            "--database-url"
        }
    };
    // A URL the user gave names the server to use, unless --backend says otherwise.
    let backend = match (args.backend, url) {
        (Some(kind), _) => kind,
        (None, Some(_)) => {
            eprintln!(
                "migproof: using the server of {} (--backend url); pass --backend local for a \
                 throwaway cluster instead",
                origin()
            );
            BackendKind::Url
        }
        (None, None) => BackendKind::Auto,
    };
    let server = tokio::select! {
        server = Server::open(backend, url, &docker, major, access) => server.map_err(|e| {
            let text = match &e {
                BackendError::BadUrl { url: shown, reason } => {
                    // An unparseable URL is shown as a placeholder, which says nothing here.
                    let shown = match url.map(::url::Url::parse) {
                        Some(Ok(_)) => format!(" `{shown}`"),
                        _ => String::new(),
                    };
                    format!(
                        "{}{shown} is not a valid database URL: {reason}; write it like \
                         postgres://user@host:5432/database",
                        origin()
                    )
                }
                e => e.to_string(),
            };
            let code = if e.is_usage() { exit::USAGE } else { exit::ENVIRONMENT };
            error(code, &scrubber(url)(text))
        }),
        _ = interrupts.recv() => Err(error(exit::INTERRUPTED, "interrupted")),
    }?;
    if server.applies_as_superuser() {
        eprintln!(
            "warning: migrations run as the superuser `{}` on {}: a migration can change the \
             whole server; `check` (and the golden pass of `fuzz`) reports and undoes the roles, \
             databases, tablespaces and settings a migration changes, other steps do not",
            server.migration_role(),
            server.target
        );
    }
    Ok(server)
}

/// Runs `work` on `server` until it ends, the server stops answering, or an interrupt comes;
/// then `settle` (stop progress bars and workers), clean up, and make the exit code: `done`
/// turns a result into one (printing the report), failures and interrupts become exit 2, 3 or
/// 130 with their message. What cleanup left behind is warned about after the rest.
pub(crate) async fn supervise<T>(
    server: &Server,
    url: Option<&str>,
    interrupts: &mut Interrupts,
    work: impl Future<Output = Result<T, Failure>>,
    settle: impl FnOnce(),
    done: impl FnOnce(T) -> u8,
) -> u8 {
    let result = tokio::select! {
        r = work => Some(r),
        e = server.until_unresponsive() => Some(Err(Failure::Environment(e.into()))),
        _ = interrupts.recv() => None,
    };
    settle();
    let interrupted = result.is_none();
    let cleanup = clean_up(server, interrupted).await;
    let scrub = scrubber(url);
    let code = match result {
        None => error(
            exit::INTERRUPTED,
            &interrupted_message(&cleanup, server.kind, &scrub),
        ),
        Some(Err(Failure::Usage(message))) => error(exit::USAGE, &scrub(message)),
        Some(Err(Failure::Environment(e))) => error(exit::ENVIRONMENT, &scrub(e.to_string())),
        Some(Ok(value)) => done(value),
    };
    // After the error it follows from: what went wrong first comes first.
    if !interrupted {
        warn_left_behind(&cleanup, server.kind, &scrub);
    }
    code
}

/// Removes the password of the URL the user gave, if any, from a message.
pub(crate) fn scrubber(url: Option<&str>) -> impl Fn(String) -> String + '_ {
    move |t: String| match url {
        Some(u) if !u.is_empty() => backend::url::scrub(&t, u),
        _ => t,
    }
}

/// How long an interrupted run may spend dropping its scratch databases: it ends within 2 s.
const INTERRUPTED_CLEANUP: Duration = Duration::from_millis(1400);

/// Drops the run's scratch databases: in [`INTERRUPTED_CLEANUP`] after Ctrl-C or SIGTERM,
/// else in [`backend::CLEANUP_BUDGET`].
async fn clean_up(server: &Server, interrupted: bool) -> Result<(), BackendError> {
    if interrupted {
        server.cleanup_within(INTERRUPTED_CLEANUP).await
    } else {
        server.cleanup().await
    }
}

/// What becomes of scratch databases that could not be dropped, on this kind of server.
fn left_behind_fate(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Local => {
            "they go with the local cluster, whose folder migproof removes as it exits (or, if \
             it cannot, the next run with `--backend local` does)"
        }
        BackendKind::Docker => "they go with the container, which migproof removes as it exits",
        BackendKind::Url | BackendKind::Auto => "the next migproof run on this server drops them",
    }
}

/// The message of an interrupted run, saying whether its scratch databases were dropped and,
/// when not, which and what becomes of them.
fn interrupted_message(
    cleanup: &Result<(), BackendError>,
    kind: BackendKind,
    scrub: &dyn Fn(String) -> String,
) -> String {
    match cleanup {
        Ok(()) => "interrupted; scratch databases were dropped".to_owned(),
        Err(e) => format!(
            "interrupted; {}; {}",
            scrub(e.to_string()),
            left_behind_fate(kind)
        ),
    }
}

/// Warns, after a run that was not interrupted, about scratch databases it could not drop.
fn warn_left_behind(
    cleanup: &Result<(), BackendError>,
    kind: BackendKind,
    scrub: &dyn Fn(String) -> String,
) {
    if let Err(e) = cleanup {
        eprintln!(
            "warning: scratch databases were not dropped ({}); {}",
            scrub(e.to_string()),
            left_behind_fate(kind)
        );
    }
}

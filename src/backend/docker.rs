//! The `docker` backend: a throwaway PostgreSQL container started through testcontainers' postgres
//! module, on the host's network (the server listens on a free port of 127.0.0.1, so nothing ever
//! connects to a container address), removed when the server is dropped: on exit, on error and on
//! Ctrl-C. Containers left by a migproof that was killed are removed by the next run.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;
use testcontainers::core::client::docker_client_instance;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::postgres::Postgres;

use super::{connect_with_retry, hostname, process_alive, BackendError, BackendKind, Server};

/// PostgreSQL major version run when none is asked for (the postgres module's own default tag,
/// 11, is long out of support).
pub const DEFAULT_PG_VERSION: u32 = 16;
/// Image used when none is given: the official one, tagged with the major version.
pub const DEFAULT_IMAGE: &str = "postgres";
/// Environment variable naming the image (`NAME` or `NAME:TAG`), as `--docker-image` does.
pub const IMAGE_ENV: &str = "MIGPROOF_DOCKER_IMAGE";
/// Environment variable giving the major version, as `--pg-version` does.
pub const PG_VERSION_ENV: &str = "MIGPROOF_PG_VERSION";

/// Labels on every container migproof starts: which host and process own it, and which start
/// attempt made it.
pub const LABEL_HOST: &str = "org.migproof.host";
pub const LABEL_PID: &str = "org.migproof.pid";
const LABEL_ATTEMPT: &str = "org.migproof.attempt";

/// Time for the container to start and initialise its cluster (not counting an image pull).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Which PostgreSQL the docker backend runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Major version of PostgreSQL: the image's tag when `image` has none, and checked against
    /// the server once it runs.
    pub pg_version: u32,
    /// `NAME` or `NAME:TAG` of an image that starts like the official `postgres` image; `None`
    /// is the official image.
    pub image: Option<String>,
}

impl Options {
    /// The options the environment asks for (`MIGPROOF_PG_VERSION`, `MIGPROOF_DOCKER_IMAGE`),
    /// else version 16 of the official image.
    pub fn from_env() -> Options {
        let pg_version = std::env::var(PG_VERSION_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_PG_VERSION);
        let image = std::env::var(IMAGE_ENV)
            .ok()
            .filter(|i| !i.trim().is_empty());
        Options { pg_version, image }
    }

    /// The image's name and tag: the tag given in `image`, else the major version.
    pub fn image(&self) -> (String, String) {
        let image = self.image.as_deref().unwrap_or(DEFAULT_IMAGE).trim();
        // A `:` after the last `/` starts the tag; one before it is a registry's port.
        let tag_start = image.rfind(':').filter(|&i| !image[i..].contains('/'));
        match tag_start {
            Some(i) => (image[..i].to_owned(), image[i + 1..].to_owned()),
            None => (image.to_owned(), self.pg_version.to_string()),
        }
    }
}

/// A running container; dropping it removes the container and its anonymous volume.
pub struct Container {
    inner: Option<ContainerAsync<Postgres>>,
}

impl Drop for Container {
    fn drop(&mut self) {
        let Some(container) = self.inner.take() else {
            return;
        };
        // testcontainers removes the container in its own Drop, which needs a tokio runtime:
        // outside one (a library user dropping the server after its runtime returned), run that
        // removal on a runtime of our own.
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(container);
        } else if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            let _entered = runtime.enter();
            drop(container);
        }
    }
}

fn fail(message: impl Into<String>) -> BackendError {
    BackendError::Docker(message.into())
}

/// The Docker client testcontainers uses (DOCKER_HOST, ~/.testcontainers.properties or the
/// default socket), once the engine has answered a ping.
async fn engine() -> Result<Docker, String> {
    let ping = async {
        let docker = docker_client_instance().await.map_err(|e| e.to_string())?;
        docker.ping().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(docker)
    };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
        Ok(answer) => answer,
        Err(_) => Err("it did not answer within 5 seconds".into()),
    }
}

/// True when a Docker engine answers; `auto` uses the docker backend only then.
pub async fn engine_answers() -> bool {
    engine().await.is_ok()
}

fn free_port() -> Result<u16, BackendError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| fail(format!("could not find a free port: {e}")))?;
    Ok(listener
        .local_addr()
        .map_err(|e| fail(e.to_string()))?
        .port())
}

/// A password for the container's `postgres` user, so that its server, which listens on the
/// host's loopback address, is not open to every local user.
fn random_password() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Containers carrying `label=value`, running or not.
async fn containers_labelled(
    docker: &Docker,
    label: &str,
    value: &str,
) -> Vec<(String, HashMap<String, String>)> {
    let filters = HashMap::from([("label", vec![format!("{label}={value}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| Some((c.id?, c.labels.unwrap_or_default())))
        .collect()
}

async fn remove(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    let _ = docker.remove_container(id, Some(options)).await;
}

/// Removes what one start attempt created unless disarmed: testcontainers does not remove a
/// container that was created but failed to start, nor one whose start was cancelled (Ctrl-C)
/// before testcontainers took hold of it. Runs on a thread and runtime of its own, since it may
/// be dropped while the start future is being cancelled.
struct AttemptGuard(Option<String>);

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        let Some(attempt) = self.0.take() else { return };
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let Ok(docker) = engine().await else { return };
                for (id, _) in containers_labelled(&docker, LABEL_ATTEMPT, &attempt).await {
                    remove(&docker, &id).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Removes containers of migproof processes on this host that are gone (`kill -9`), and any a
/// failed start attempt of this process left behind.
async fn sweep_stale(docker: &Docker) {
    for (id, labels) in containers_labelled(docker, LABEL_HOST, &hostname()).await {
        let owner = labels.get(LABEL_PID).and_then(|p| p.parse::<i32>().ok());
        if owner.is_some_and(|pid| pid != std::process::id() as i32 && !process_alive(pid)) {
            remove(docker, &id).await;
        }
    }
}

/// Starts a container as `options` asks and returns the server in it.
pub async fn start(options: &Options) -> Result<Server, BackendError> {
    let docker = engine().await.map_err(|reason| {
        fail(format!(
            "no Docker engine answers ({reason}); start Docker (or set DOCKER_HOST), or use \
             `--backend local` or `--backend url`"
        ))
    })?;
    sweep_stale(&docker).await;
    let (name, tag) = options.image();
    let image = format!("{name}:{tag}");
    let password = random_password();
    let mut last_error = String::new();
    // A port found free can be taken before the server binds it: then try another one.
    for _ in 0..3 {
        let port = free_port()?;
        let attempt = format!("{}-{port}-{}", std::process::id(), super::nonce());
        let mut cmd = vec!["postgres".to_owned()];
        for setting in [
            format!("port={port}"),
            "listen_addresses=127.0.0.1".into(),
            "fsync=off".into(),
            "synchronous_commit=off".into(),
            "full_page_writes=off".into(),
            "autovacuum=off".into(),
            "max_connections=100".into(),
            "wal_level=minimal".into(),
            "max_wal_senders=0".into(),
            "checkpoint_timeout=1h".into(),
            "shared_buffers=128MB".into(),
        ] {
            cmd.extend(["-c".to_owned(), setting]);
        }
        let request = Postgres::default()
            .with_password(&password)
            .with_name(name.as_str())
            .with_tag(tag.as_str())
            .with_network("host")
            .with_cmd(cmd)
            .with_label(LABEL_HOST, hostname())
            .with_label(LABEL_PID, std::process::id().to_string())
            .with_label(LABEL_ATTEMPT, attempt.as_str())
            .with_startup_timeout(STARTUP_TIMEOUT)
            // Ports are neither published nor mapped: the server is on the host's network.
            .with_host_config_modifier(|config| {
                config.publish_all_ports = Some(false);
                config.port_bindings = None;
            });
        let mut guard = AttemptGuard(Some(attempt));
        let container = match request.start().await {
            Ok(container) => Container {
                inner: Some(container),
            },
            Err(e) => {
                drop(guard);
                last_error = e.to_string();
                if last_error.contains("already in use") {
                    continue;
                }
                break;
            }
        };
        let id = container
            .inner
            .as_ref()
            .map(|c| c.id().to_owned())
            .unwrap_or_default();
        let short = &id[..id.len().min(12)];
        let target =
            format!("a docker container ({image}, {short}, host network, 127.0.0.1:{port})");
        let admin = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port)
            .username("postgres")
            .password(&password)
            .database("postgres")
            .application_name("migproof");
        let mut conn = connect_with_retry(&admin, &target).await?;
        let version: String = sqlx::query_scalar("SHOW server_version_num")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| fail(format!("failed to ask {target} for its version: {e}")))?;
        let _ = conn.close().await;
        let major = version.trim().parse::<u32>().unwrap_or(0) / 10_000;
        if major != options.pg_version {
            return Err(fail(format!(
                "image `{image}` runs PostgreSQL {major}, not the {} that --pg-version asks for; \
                 pass `--pg-version {major}` or an image of version {}",
                options.pg_version, options.pg_version
            )));
        }
        // From here on the container is removed by Container's Drop.
        guard.0 = None;
        return Ok(Server::new(admin, target, BackendKind::Docker, None)
            .with_password(Some(password))
            .with_container(container));
    }
    Err(fail(format!(
        "failed to start a PostgreSQL container from image `{image}`: {last_error}; check that \
         the image exists or can be pulled (`docker pull {image}`), or pass `--docker-image`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(image: Option<&str>, pg_version: u32) -> (String, String) {
        Options {
            pg_version,
            image: image.map(str::to_owned),
        }
        .image()
    }

    #[test]
    fn image_tag_defaults_to_the_major_version() {
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(image(None, 16), pair("postgres", "16"));
        assert_eq!(image(Some("postgres"), 17), pair("postgres", "17"));
        assert_eq!(
            image(Some("migproof/postgres:15"), 16),
            pair("migproof/postgres", "15")
        );
        assert_eq!(
            image(Some("registry:5000/pg"), 14),
            pair("registry:5000/pg", "14")
        );
        assert_eq!(
            image(Some("registry:5000/pg:14-alpine"), 14),
            pair("registry:5000/pg", "14-alpine")
        );
    }
}

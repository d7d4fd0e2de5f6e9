//! The `local` backend: a throwaway PostgreSQL cluster started from this machine's own
//! binaries, tuned for speed, on a free port with a private socket folder, run as the
//! `postgres` user when migproof runs as root, and removed when migproof exits.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, User};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::{process_alive, BackendError, BackendKind, Server};

const DIR_PREFIX: &str = "migproof-local-";
/// A memory file system most Linux systems mount.
const SHM: &str = "/dev/shm";
/// Free room [`SHM`] must have to hold a cluster: scratch databases of a long history, a
/// few copies of each, come to hundreds of megabytes.
const SHM_ROOM: u64 = 4 << 30;

/// Where a throwaway cluster's folder goes: the temporary folder the user named (`TMPDIR`);
/// else [`SHM`] when it is a memory file system with [`SHM_ROOM`] free, where making and
/// deleting the thousands of files a run's databases hold costs a fraction of what it costs
/// on a disk (a crates.io check: about 0.8x the time); else the system's temporary folder.
fn clusters_home() -> PathBuf {
    if std::env::var_os("TMPDIR").is_some_and(|d| !d.is_empty()) {
        return std::env::temp_dir();
    }
    let roomy = nix::sys::statfs::statfs(SHM).is_ok_and(|fs| {
        fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC
            && fs.blocks_available().saturating_mul(fs.block_size() as u64) >= SHM_ROOM
    });
    let writable = nix::unistd::access(
        SHM,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .is_ok();
    if roomy && writable {
        PathBuf::from(SHM)
    } else {
        std::env::temp_dir()
    }
}

/// Where `scripts/install-postgres.sh` installs server builds, one folder per major:
/// `MIGPROOF_PG_CACHE`, else /var/cache/migproof/postgres for root, else
/// `$XDG_CACHE_HOME/migproof/postgres` or `~/.cache/migproof/postgres`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/cache/migproof/postgres");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("migproof/postgres")
}

/// Names the folder of installed server builds (see [`cache_dir`]).
pub const CACHE_ENV: &str = "MIGPROOF_PG_CACHE";

/// The major version of the `postgres` in `dir` (`postgres (PostgreSQL) 18.4` is 18).
fn major_of(dir: &Path) -> Option<u32> {
    let out = std::process::Command::new(dir.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().nth(2)?;
    version.split('.').next()?.parse().ok()
}

/// The folder holding `initdb`, `pg_ctl` and `postgres`. Without `major`: PATH first, then the
/// newest /usr/lib/postgresql/*/bin. With it: /usr/lib/postgresql/<major>/bin, then the
/// [`cache_dir`] install of that major, then a PATH folder whose `postgres` is that major.
pub fn binaries(major: Option<u32>) -> Option<PathBuf> {
    let has_all = |dir: &Path| ["initdb", "postgres"].iter().all(|b| dir.join(b).is_file());
    if let Some(major) = major {
        let fixed = [
            PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")),
            cache_dir().join(major.to_string()).join("bin"),
        ];
        let on_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        return fixed
            .into_iter()
            .filter(|d| has_all(d))
            .chain(
                on_path
                    .into_iter()
                    .filter(|d| has_all(d) && major_of(d) == Some(major)),
            )
            .next();
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_all(&dir) {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_all(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A running throwaway cluster; dropping it stops the server and removes its folder.
pub struct Cluster {
    dir: PathBuf,
    child: Option<Child>,
    /// initdb while it runs, in a process group of its own.
    initdb: Option<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut initdb) = self.initdb.take() {
            // initdb acts on SIGINT only between its steps (seconds): kill it and the
            // bootstrap postgres it runs.
            let group = Pid::from_raw(initdb.id() as i32);
            let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
            let _ = initdb.wait();
        }
        if let Some(mut child) = self.child.take() {
            // The cluster is thrown away: a fast shutdown is polite, not needed. One that has
            // not ended soon (a frozen or overloaded server) is killed with its backends,
            // stopped ones included, so that Ctrl-C ends a run within 2 s.
            let pid = child.id() as i32;
            // Its backends are each in a session of their own, so the postmaster's group does
            // not reach them: they are found (before it dies, while they are still its
            // children) and killed one by one.
            let backends = children_of(pid);
            if !stop_postmaster(pid, Duration::from_millis(400)) {
                for backend in backends {
                    let _ = kill(Pid::from_raw(backend), Signal::SIGKILL);
                }
            }
            let _ = child.wait();
        }
        // A process killed a moment ago may still finish writing a file: try again briefly.
        let deadline = Instant::now() + Duration::from_secs(1);
        while std::fs::remove_dir_all(&self.dir).is_err()
            && self.dir.exists()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Asks a postmaster for a fast shutdown, then kills it if it has not gone within `grace`.
/// True when it shut down by itself.
fn stop_postmaster(pid: i32, grace: Duration) -> bool {
    let pid = Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGINT);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !process_alive(pid.as_raw()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(pid, Signal::SIGKILL);
    false
}

/// The processes whose parent is `pid`, from /proc.
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    // After the command name in parentheses: state, then the parent's pid.
                    let rest = stat.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

pub(crate) fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn fail(message: impl Into<String>) -> BackendError {
    BackendError::Local(message.into())
}

/// Removes clusters left by migproof processes that died without cleaning up (`kill -9`).
///
/// Only folders this user owns and no one else can write to are touched, and a process is
/// signalled only once /proc proves it is the postmaster serving that very folder and started
/// after it: anyone can plant a `postmaster.pid`, and a PID is reused after a reboot.
pub fn sweep_stale() {
    let mut homes = vec![std::env::temp_dir()];
    if Path::new(SHM).is_dir() && !homes.iter().any(|h| h == Path::new(SHM)) {
        homes.push(PathBuf::from(SHM));
    }
    for entry in homes
        .iter()
        .filter_map(|home| std::fs::read_dir(home).ok())
        .flat_map(|entries| entries.flatten())
    {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        if !owned_by_us_alone(&dir) {
            continue;
        }
        let owner = std::fs::read_to_string(dir.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        match owner {
            Some(pid) if process_alive(pid) => continue,
            None if recently_modified(&dir) => continue,
            _ => {}
        }
        if let Some(pid) = postmaster_of(&dir) {
            stop_postmaster(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// True when `dir` is a real folder (not a link) owned by this process's user that neither its
/// group nor others may write to: the only kind of folder migproof itself makes.
fn owned_by_us_alone(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return false;
    };
    meta.is_dir() && meta.uid() == nix::unistd::geteuid().as_raw() && meta.mode() & 0o022 == 0
}

/// The PID in `dir/data/postmaster.pid`, if /proc shows that it is a running postgres whose
/// data folder is `dir/data` (by its command line and its working folder) and that started
/// no earlier than `dir` was set up.
fn postmaster_of(dir: &Path) -> Option<i32> {
    let data = dir.join("data");
    let pid = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse::<i32>()
        .ok()?;
    if pid <= 1 || !process_alive(pid) {
        return None;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = std::fs::read(proc_dir.join("cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let program = Path::new(std::ffi::OsStr::from_bytes(args.first()?));
    if program.file_name()? != "postgres" {
        return None;
    }
    let data_arg = args
        .windows(2)
        .find(|w| w[0] == b"-D")
        .map(|w| Path::new(std::ffi::OsStr::from_bytes(w[1])))?;
    let data_real = data.canonicalize().ok()?;
    if data_arg.canonicalize().ok()? != data_real {
        return None;
    }
    if std::fs::read_link(proc_dir.join("cwd")).ok()? != data_real {
        return None;
    }
    let set_up = std::fs::metadata(dir.join("owner.pid"))
        .or_else(|_| std::fs::metadata(&data))
        .and_then(|m| m.modified())
        .ok()?;
    let started = process_start(pid)?;
    // owner.pid is written before initdb runs, so its postmaster can only have started later.
    (started + Duration::from_secs(2) >= set_up).then_some(pid)
}

/// When process `pid` started, from its start tick in /proc/PID/stat and the boot time.
fn process_start(pid: i32) -> Option<std::time::SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (in parentheses, which may itself hold spaces and ')'):
    // state is field 3, starttime field 22.
    let rest = stat.rsplit_once(')')?.1;
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // USER_HZ, the unit of /proc times: 100 on every Linux architecture.
    let hz = 100;
    let since_boot = Duration::from_millis(ticks * 1000 / hz);
    Some(std::time::UNIX_EPOCH + Duration::from_secs(boot) + since_boot)
}

fn recently_modified(dir: &Path) -> bool {
    std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .map(|t| t.elapsed().unwrap_or_default() < Duration::from_secs(60))
        .unwrap_or(true)
}

fn free_port() -> Result<u16, BackendError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| fail(format!("could not find a free port: {e}")))?;
    Ok(listener
        .local_addr()
        .map_err(|e| fail(e.to_string()))?
        .port())
}

/// Runs as the `postgres` user when we are root: initdb and postgres refuse to run as root.
fn as_cluster_user(cmd: &mut Command, user: &Option<User>) {
    if let Some(user) = user {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        cmd.env("HOME", &user.dir).env("USER", &user.name);
    }
}

pub async fn start(major: Option<u32>) -> Result<Server, BackendError> {
    let bin = binaries(major).ok_or_else(|| match major {
        None => fail(
            "no PostgreSQL binaries (`initdb`, `postgres`) on PATH or under \
             /usr/lib/postgresql/*/bin; install PostgreSQL or use `--backend url`",
        ),
        Some(major) => fail(format!(
            "PostgreSQL {major} is not installed here (looked in /usr/lib/postgresql/{major}/bin, \
             `{}` and PATH); `scripts/install-postgres.sh {major}` installs it",
            cache_dir().join(major.to_string()).join("bin").display()
        )),
    })?;
    sweep_stale();
    let user = if nix::unistd::geteuid().is_root() {
        let user = User::from_name("postgres")
            .map_err(|e| fail(format!("could not look up the `postgres` user: {e}")))?
            .ok_or_else(|| {
                fail(
                    "migproof runs as root, where initdb refuses to run, and there is no \
                     `postgres` user to run it as; create one or run migproof as another user",
                )
            })?;
        Some(user)
    } else {
        None
    };
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir_in(clusters_home())
        .map_err(|e| fail(format!("could not create a temporary folder: {e}")))?
        .keep();
    // From here on the folder is removed by Cluster's Drop, whatever happens.
    let mut cluster = Cluster {
        dir: dir.clone(),
        child: None,
        initdb: None,
    };
    std::fs::write(dir.join("owner.pid"), std::process::id().to_string())
        .map_err(|e| fail(format!("could not write to `{}`: {e}", dir.display())))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| fail(e.to_string()))?;
    let data = dir.join("data");
    let socket = dir.join("socket");
    for sub in [&data, &socket] {
        std::fs::create_dir(sub).map_err(|e| fail(e.to_string()))?;
        if let Some(user) = &user {
            nix::unistd::chown(sub.as_path(), Some(user.uid), Some(user.gid)).map_err(|e| {
                fail(format!(
                    "could not hand `{}` to postgres: {e}",
                    sub.display()
                ))
            })?;
        }
        std::fs::set_permissions(sub, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fail(e.to_string()))?;
    }

    // Trust only on the socket, whose folder only the cluster's user can enter; TCP (which
    // external migrators use) needs the superuser's random password, never printed.
    let password = super::random_secret();
    // A copy of the data folder initdb made for this server build before, else initdb (and
    // a copy of what it made, kept for the next run).
    let pristine = pristine_dir(&bin);
    let copied = match &pristine {
        Some(p) if is_whole(p) => copy_tree(p, &data, &user).is_ok(),
        _ => false,
    };
    if !copied {
        // what a failed copy left
        clear_dir(&data);
        initdb(&mut cluster, &bin, &data, &socket, &user, &password).await?;
        if let Some(p) = &pristine {
            keep_pristine(&data, p);
        }
    }

    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let log = std::fs::File::create(dir.join("server.log")).map_err(|e| fail(e.to_string()))?;
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&socket)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "autovacuum=off"])
            .args(["-c", "max_connections=100", "-c", "wal_level=minimal"])
            .args(["-c", "max_wal_senders=0", "-c", "checkpoint_timeout=1h"])
            .args(["-c", "shared_buffers=128MB", "-c", "log_min_messages=fatal"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: a Ctrl-C in the terminal reaches migproof, which then
            // stops the server in order, instead of the server dying under running work.
            .process_group(0);
        as_cluster_user(&mut postgres, &user);
        let child = postgres
            .spawn()
            .map_err(|e| fail(format!("could not run postgres: {e}")))?;
        cluster.child = Some(child);
        let options = PgConnectOptions::new()
            .host("127.0.0.1")
            .socket(&socket)
            .port(port)
            .username("postgres")
            .database("postgres")
            .application_name("migproof");
        let ready = match wait_ready(&mut cluster, &options).await {
            // A copied folder holds the password of the run that made it, never known: this
            // run's replaces it before anything connects over TCP.
            Ok(mut conn) if copied => {
                let set = set_password(&mut conn, &password).await;
                let _ = conn.close().await;
                set
            }
            Ok(conn) => {
                let _ = conn.close().await;
                Ok(())
            }
            Err(e) => Err(e),
        };
        match ready {
            Ok(()) => {
                let target = format!("a local cluster (port {port}, {})", dir.display());
                return Ok(
                    Server::new(options, target, BackendKind::Local, Some(cluster))
                        .with_password(Some(password)),
                );
            }
            Err(e) => {
                last_error = e;
                if let Some(mut child) = cluster.child.take() {
                    stop_postmaster(child.id() as i32, Duration::from_secs(5));
                    let _ = child.wait();
                }
            }
        }
    }
    Err(fail(last_error))
}

/// Runs initdb into `data` with the superuser's `password`, killed if `cluster` is dropped
/// meanwhile.
async fn initdb(
    cluster: &mut Cluster,
    bin: &Path,
    data: &Path,
    socket: &Path,
    user: &Option<User>,
    password: &str,
) -> Result<(), BackendError> {
    let pwfile = socket.join("pwfile");
    std::fs::write(&pwfile, format!("{password}\n")).map_err(|e| fail(e.to_string()))?;
    if let Some(user) = user {
        nix::unistd::chown(pwfile.as_path(), Some(user.uid), Some(user.gid))
            .map_err(|e| fail(e.to_string()))?;
    }
    let mut initdb = Command::new(bin.join("initdb"));
    let log = cluster.dir.join("initdb.log");
    initdb
        .arg("-D")
        .arg(data)
        .arg(format!("--pwfile={}", pwfile.display()))
        .args([
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| fail(e.to_string()))?)
        .process_group(0);
    as_cluster_user(&mut initdb, user);
    // Held by `cluster` and awaited, not blocked on: Ctrl-C during initdb (a second or more)
    // must stop migproof at once, and dropping `cluster` then stops initdb before removing
    // the folder it writes into.
    cluster.initdb = Some(
        initdb
            .spawn()
            .map_err(|e| fail(format!("could not run initdb: {e}")))?,
    );
    let status = loop {
        let child = cluster.initdb.as_mut().expect("just spawned");
        match child
            .try_wait()
            .map_err(|e| fail(format!("could not wait for initdb: {e}")))?
        {
            Some(status) => break status,
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    cluster.initdb = None;
    let _ = std::fs::remove_file(&pwfile);
    if !status.success() {
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(fail(format!("initdb failed: {}", stderr.trim())));
    }
    Ok(())
}

/// Where the data folder initdb makes for the server build in `bin` is kept between runs:
/// `<cache>/clusters/<key>`, the key naming the build (its folder, the size and time of its
/// `postgres`) and the flags above. Copying it costs about half of running initdb, which
/// makes the same files every time. `None` when the build cannot be told apart.
fn pristine_dir(bin: &Path) -> Option<PathBuf> {
    let meta = std::fs::metadata(bin.join("postgres")).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    // FNV-1a: the same key from every build of migproof
    let mut key: u64 = 0xcbf2_9ce4_8422_2325;
    let id = format!(
        "initdb-v1 {} {} {}",
        bin.display(),
        meta.len(),
        modified.as_nanos()
    );
    for b in id.bytes() {
        key = (key ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Some(cache_dir().join("clusters").join(format!("{key:016x}")))
}

/// Whether a kept data folder can be copied: one renamed into place always can; one cut short
/// by hand may lack the control file, without which the server does not start.
fn is_whole(pristine: &Path) -> bool {
    pristine.join("global").join("pg_control").is_file()
}

/// Copies the folder `from` into the existing folder `to`, files with their modes, handed to
/// `user` when given.
fn copy_tree(from: &Path, to: &Path, user: &Option<User>) -> std::io::Result<()> {
    let owner = |path: &Path| -> std::io::Result<()> {
        if let Some(user) = user {
            nix::unistd::chown(path, Some(user.uid), Some(user.gid))?;
        }
        Ok(())
    };
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            std::fs::create_dir(&target)?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700))?;
            owner(&target)?;
            copy_tree(&entry.path(), &target, user)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
            owner(&target)?;
        } else {
            return Err(std::io::Error::other("not a file or folder"));
        }
    }
    Ok(())
}

/// Empties the folder `dir`, keeping it.
fn clear_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Keeps a copy of the data folder initdb just made at `pristine`, for the next runs. Best
/// effort: written beside it and renamed into place, so that a run never copies a half-written
/// folder; another run that got there first wins.
fn keep_pristine(data: &Path, pristine: &Path) {
    let Some(parent) = pristine.parent() else {
        return;
    };
    if std::fs::create_dir_all(parent).is_err() {
        return;
    }
    if pristine.exists() && !is_whole(pristine) {
        // broken (cut short by hand): replaced
        let _ = std::fs::remove_dir_all(pristine);
    }
    // what runs killed while keeping a copy left
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(".partial-"));
        if pid
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| !process_alive(p))
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let partial = parent.join(format!(".partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let made = std::fs::create_dir(&partial).is_ok()
        && std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o700)).is_ok()
        && copy_tree(data, &partial, &None).is_ok()
        && std::fs::rename(&partial, pristine).is_ok();
    if !made {
        let _ = std::fs::remove_dir_all(&partial);
    }
}

/// Gives the superuser `password`, as the verifier the server stores (see
/// [`super::stored_password`]).
async fn set_password(conn: &mut PgConnection, password: &str) -> Result<(), String> {
    let sql = format!(
        "ALTER ROLE postgres PASSWORD {}",
        super::stored_password(password)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|e| format!("could not set the password: {e}"))
}

/// Waits until the server takes connections, and hands back the first.
async fn wait_ready(
    cluster: &mut Cluster,
    options: &PgConnectOptions,
) -> Result<PgConnection, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(conn) = super::answered(options.connect()).await {
            return Ok(conn);
        }
        let child = cluster.child.as_mut().expect("started");
        if let Ok(Some(status)) = child.try_wait() {
            let mut log = String::new();
            let _ = std::fs::File::open(cluster.dir.join("server.log"))
                .and_then(|mut f| f.read_to_string(&mut log));
            return Err(format!("postgres exited ({status}): {}", log.trim()));
        }
        if Instant::now() > deadline {
            return Err("postgres did not accept connections within 30 seconds".into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

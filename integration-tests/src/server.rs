//! Throw-away servers for tests, whatever the backend.
//!
//! The pieces every backend's test server needs: a free loopback port, a
//! program found on this machine, an unprivileged user to run it as when
//! the tests run as root, a scratch directory that is cleaned up however
//! the test process ends, a readiness wait, and a check for a Docker
//! engine. `crate::postgres` builds on them; so can other backends.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that nothing listens on right now.
///
/// Another process may take it before the server binds it; a server that
/// fails to start should retry with a new port.
///
/// # Errors
///
/// When the operating system gives no loopback port.
pub fn free_loopback_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
#[must_use]
pub fn port_answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Polls `ready` every 50 ms until it says yes or `limit` has passed.
///
/// # Errors
///
/// [`io::ErrorKind::TimedOut`] naming `what` when it never did.
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + limit;

    while !ready() {
        if Instant::now() >= deadline {
            let message = format!("{what} was not ready within {limit:?}");
            return Err(io::Error::new(io::ErrorKind::TimedOut, message));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The first directory among `dirs`, then `PATH`, holding `program`.
#[must_use]
pub fn find_program(program: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();

    dirs.iter()
        .cloned()
        .chain(env::split_paths(&path))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Runs a command and returns its trimmed standard output.
///
/// # Errors
///
/// When it cannot start or exits unsuccessfully; the error carries its
/// standard error.
pub fn output_of(command: &mut Command) -> io::Result<String> {
    let output = command.stdin(Stdio::null()).output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = format!("{command:?} failed ({}): {}", output.status, stderr.trim());
        return Err(io::Error::other(message));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// An operating-system user to run a server as.
///
/// Some servers (PostgreSQL) refuse to run as root, and CI runs tests as
/// root. [`RunAs::for_servers`] picks the `postgres` user when there is
/// one, else `nobody`, and wraps commands with `setpriv` (util-linux), or
/// `runuser` when `setpriv` is missing. As any other user it does nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct RunAs {
    user: Option<User>,
}

#[derive(Clone, PartialEq, Eq)]
struct User {
    name: String,
    uid: u32,
    gid: u32,
    switch: PathBuf,
}

impl fmt::Debug for RunAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "RunAs({})", user.name),
            None => f.write_str("RunAs(current user)"),
        }
    }
}

impl RunAs {
    /// The current user, or an unprivileged one when that is root.
    ///
    /// # Errors
    ///
    /// When running as root and no unprivileged user or no tool to switch
    /// to it is found.
    pub fn for_servers() -> io::Result<Self> {
        let uid = output_of(Command::new("id").arg("-u"))?;
        if uid != "0" {
            return Ok(Self { user: None });
        }

        let name = ["postgres", "nobody"]
            .into_iter()
            .find(|name| output_of(Command::new("id").args(["-u", name])).is_ok())
            .ok_or_else(|| {
                io::Error::other("running as root and no `postgres` or `nobody` user")
            })?;
        let id = |flag: &str| -> io::Result<u32> {
            output_of(Command::new("id").args([flag, name]))?
                .parse()
                .map_err(io::Error::other)
        };
        let switch = find_program("setpriv", &[])
            .or_else(|| find_program("runuser", &[]))
            .ok_or_else(|| io::Error::other("running as root and neither setpriv nor runuser"))?;

        let user = User {
            name: name.to_owned(),
            uid: id("-u")?,
            gid: id("-g")?,
            switch,
        };
        Ok(Self { user: Some(user) })
    }

    /// The user running the tests, whoever that is.
    #[must_use]
    pub fn current() -> Self {
        Self { user: None }
    }

    /// A command that runs `program` as this user.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let Some(user) = &self.user else {
            return Command::new(program);
        };

        let mut command = Command::new(&user.switch);
        if user.switch.ends_with("setpriv") {
            command
                .arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .arg("--clear-groups");
        } else {
            command.args(["-u", &user.name]);
        }
        command.arg("--").arg(program);
        command
    }

    /// Gives `path` to this user, so the server can write there.
    ///
    /// # Errors
    ///
    /// When the ownership cannot be changed.
    pub fn own(&self, path: &Path) -> io::Result<()> {
        match &self.user {
            Some(user) => std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)),
            None => Ok(()),
        }
    }
}

/// A temporary directory that is removed, after a teardown command has
/// run, when it is dropped or when the test process ends in any way.
///
/// A server started for a whole test binary lives in a `static`, which
/// Rust never drops. So the cleanup is done by a small guard process (a
/// shell reading its standard input): it waits for end-of-file, which
/// comes when this value is dropped or when the kernel closes the pipe as
/// the test process exits, even on a crash or `SIGKILL`. Then it runs the
/// teardown (stop the server) and removes the directory. It ignores
/// `SIGINT`, so a Ctrl-C in the terminal still leaves it to clean up.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    guard: Option<(Child, ChildStdin)>,
}

impl ScratchDir {
    /// Creates `$TMPDIR/<prefix>-<pid>-<n>`, owned by `owner`, and the
    /// guard that will run `teardown(path)` and then remove it.
    ///
    /// # Errors
    ///
    /// When the directory or the guard cannot be created.
    pub fn create(
        prefix: &str,
        owner: &RunAs,
        teardown: impl FnOnce(&Path) -> Command,
    ) -> io::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);

        let path = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let candidate = env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
            match std::fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(error),
            }
        };
        owner.own(&path)?;

        let teardown = teardown(&path);
        let mut guard = Command::new("sh");
        guard
            .arg("-c")
            .arg(r#"trap '' INT; read -r _; "$@" >/dev/null 2>&1; rm -rf -- "$0""#)
            .arg(&path)
            .arg(teardown.get_program())
            .args(teardown.get_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = guard.spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("the guard has no stdin"))?;

        Ok(Self {
            path,
            guard: Some((child, stdin)),
        })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.guard.take() {
            // End-of-file tells the guard to clean up; wait so that the
            // server is gone when the test goes on.
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// Whether a Docker engine answers on this machine, within about a second.
///
/// Looks at `DOCKER_HOST` (a `unix://` socket or a `tcp://` address),
/// else at the usual socket paths, and asks the engine's `/_ping`. A
/// machine with only the docker client, or a stopped engine, says no at
/// once instead of making testcontainers wait.
#[must_use]
pub fn docker_engine_answers() -> bool {
    if let Some(host) = env::var_os("DOCKER_HOST") {
        let host = host.to_string_lossy().into_owned();
        if let Some(path) = host.strip_prefix("unix://") {
            return unix_ping(Path::new(path));
        }
        if let Some(addr) = host.strip_prefix("tcp://") {
            return tcp_answers(addr);
        }
        return false;
    }

    let mut sockets = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(home) = env::var_os("HOME") {
        sockets.push(Path::new(&home).join(".docker/run/docker.sock"));
    }
    if let Some(runtime) = env::var_os("XDG_RUNTIME_DIR") {
        sockets.push(Path::new(&runtime).join("docker.sock"));
    }
    sockets.iter().any(|socket| unix_ping(socket))
}

fn unix_ping(socket: &Path) -> bool {
    let ping = || -> io::Result<bool> {
        let mut stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.set_write_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;

        let mut reply = [0u8; 12];
        stream.read_exact(&mut reply)?;
        Ok(reply.starts_with(b"HTTP/1.") && reply.ends_with(b"200"))
    };
    ping().unwrap_or(false)
}

fn tcp_answers(addr: &str) -> bool {
    use std::net::ToSocketAddrs as _;

    let Ok(mut addrs) = addr.to_socket_addrs() else {
        return false;
    };
    addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
}

/// Joins a program and its arguments for a message.
#[must_use]
pub fn describe(command: &Command) -> String {
    let mut parts: Vec<OsString> = vec![command.get_program().to_owned()];
    parts.extend(command.get_args().map(OsStr::to_owned));
    parts
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_free_and_on_loopback() {
        let port = free_loopback_port().unwrap();

        assert!(port > 0);
        assert!(!port_answers(port));
    }

    #[test]
    fn scratch_dir_runs_teardown_and_disappears_on_drop() {
        let owner = RunAs { user: None };
        let marker = env::temp_dir().join(format!("scratch-marker-{}", std::process::id()));
        let marker_for_teardown = marker.clone();

        let dir = ScratchDir::create("scratch-test", &owner, |_| {
            let mut touch = Command::new("touch");
            touch.arg(&marker_for_teardown);
            touch
        })
        .unwrap();
        let path = dir.path().to_owned();
        assert!(path.is_dir());
        drop(dir);

        assert!(!path.exists());
        assert!(marker.exists());
        std::fs::remove_file(marker).unwrap();
    }

    #[test]
    fn wait_until_gives_up_with_a_timeout() {
        let error = wait_until("nothing", Duration::from_millis(100), || false).unwrap_err();

        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn run_as_current_user_changes_nothing() {
        let owner = RunAs { user: None };

        let command = owner.command("true");

        assert_eq!(describe(&command), "true");
    }
}

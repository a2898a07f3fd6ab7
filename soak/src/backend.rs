//! The store behind the demo, and its server when it has one.

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use integration_tests::postgres::{self, PgServer, TestDatabase};
use integration_tests::server::{
    find_program, free_loopback_port, output_of, port_answers, wait_until, RunAs, ScratchDir,
};

/// How long a server may take to stop or to come back.
const LIMIT: Duration = Duration::from_secs(30);

/// One store the demo runs on.
pub(crate) enum Backend {
    Memory,
    Sqlite(tempfile::TempDir),
    Postgres(Box<(PgServer, TestDatabase)>),
    Redis(PersistentRedis),
}

impl Backend {
    /// Sets up the store `kind` names, starting its server if it has one.
    pub(crate) async fn start(kind: &str) -> io::Result<Self> {
        match kind {
            "memory" => Ok(Self::Memory),
            "sqlite" => Ok(Self::Sqlite(tempfile::tempdir()?)),
            "postgres" => {
                // `dedicated` refuses a server lent through the
                // environment: the soak stops it.
                let server = postgres::dedicated().await;
                let database = server.fresh_database().await;
                Ok(Self::Postgres(Box::new((server, database))))
            }
            "redis" => {
                let redis = tokio::task::spawn_blocking(PersistentRedis::start)
                    .await
                    .map_err(io::Error::other)??;
                Ok(Self::Redis(redis))
            }
            other => Err(io::Error::other(format!("unknown store {other:?}"))),
        }
    }

    /// The `--store` URL for the demo.
    pub(crate) fn url(&self) -> String {
        match self {
            Self::Memory => "memory".to_owned(),
            Self::Sqlite(dir) => format!("sqlite://{}", dir.path().join("soak.db").display()),
            Self::Postgres(pg) => pg.1.url(),
            Self::Redis(redis) => format!("redis://127.0.0.1:{}", redis.port),
        }
    }

    /// Whether there is a server to stop: memory and SQLite live in the
    /// demo's own process.
    pub(crate) fn has_server(&self) -> bool {
        matches!(self, Self::Postgres(_) | Self::Redis(_))
    }

    /// Stops the server; its data stays on disk.
    pub(crate) async fn stop(&self) -> io::Result<()> {
        match self {
            Self::Postgres(pg) => pg.0.stop().await,
            Self::Redis(redis) => {
                let redis = redis.clone_handle();
                blocking(move || redis.stop()).await
            }
            Self::Memory | Self::Sqlite(_) => Ok(()),
        }
    }

    /// Starts the server again on the same port.
    pub(crate) async fn resume(&self) -> io::Result<()> {
        match self {
            Self::Postgres(pg) => pg.0.start().await,
            Self::Redis(redis) => {
                let redis = redis.clone_handle();
                blocking(move || redis.run()).await
            }
            Self::Memory | Self::Sqlite(_) => Ok(()),
        }
    }
}

async fn blocking(work: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

/// A `redis-server` that writes every command to its append-only file
/// before answering, so that a stop and start keeps every acknowledged
/// write. (The test launcher in `integration-tests` keeps nothing on disk,
/// which would make every restart lose every session by design.)
pub(crate) struct PersistentRedis {
    program: PathBuf,
    port: u16,
    dir: std::sync::Arc<ScratchDir>,
}

impl PersistentRedis {
    fn start() -> io::Result<Self> {
        let program = find_program("redis-server", &[])
            .ok_or_else(|| io::Error::other("redis-server not found on PATH"))?;
        let dir = ScratchDir::create("soak-redis", &RunAs::current(), |dir| {
            let mut kill = Command::new("sh");
            kill.arg("-c")
                .arg(r#"kill "$(cat "$1")""#)
                .arg("sh")
                .arg(dir.join("redis.pid"));
            kill
        })?;

        let redis = Self {
            program,
            port: free_loopback_port()?,
            dir: std::sync::Arc::new(dir),
        };
        redis.run()?;
        Ok(redis)
    }

    fn clone_handle(&self) -> Self {
        Self {
            program: self.program.clone(),
            port: self.port,
            dir: std::sync::Arc::clone(&self.dir),
        }
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.path().join("redis.pid")
    }

    fn run(&self) -> io::Result<()> {
        let mut command = Command::new(&self.program);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--daemonize", "yes", "--pidfile"])
            .arg(self.pidfile())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"));
        output_of(&mut command)?;

        let port = self.port;
        wait_until("redis-server", LIMIT, || port_answers(port))
    }

    fn stop(&self) -> io::Result<()> {
        let pid = std::fs::read_to_string(self.pidfile())?;
        let pid = pid.trim().to_owned();
        output_of(Command::new("kill").args(["-TERM", &pid]))?;

        // Gone means the process is, not only its port: a restart on the
        // same port must not race the old server's shutdown.
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        wait_until("redis-server to stop", LIMIT, || !proc_dir.exists())
    }
}

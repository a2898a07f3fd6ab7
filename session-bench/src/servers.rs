//! The Redis and PostgreSQL servers the store benchmarks run against.
//!
//! As for the tests: a URL from the environment when one is set
//! (`SESSION_TEST_REDIS_URL`, `SESSION_TEST_POSTGRES_URL`), else a
//! throw-away server from the local binaries on a free loopback port,
//! stopped and removed when the benchmark ends, however it ends.
//! PostgreSQL comes from `integration-tests`' launcher (which also tries a
//! container first when a Docker engine answers); Redis is started here
//! with that crate's building blocks.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::postgres::{self, TestDatabase};
use integration_tests::server::{
    find_program, free_loopback_port, port_answers, wait_until, RunAs, ScratchDir,
};
use sqlx::postgres::PgConnectOptions;

/// The environment variable naming a Redis to use instead of starting one.
pub const REDIS_URL_VAR: &str = "SESSION_TEST_REDIS_URL";

/// A Redis server: lent through the environment or started here.
#[derive(Debug)]
pub struct RedisServer {
    url: String,
    local: Option<LocalRedis>,
}

/// A `redis-server` child process and its scratch directory.
#[derive(Debug)]
struct LocalRedis {
    child: Child,
    _dir: ScratchDir,
}

impl RedisServer {
    /// The server named by `SESSION_TEST_REDIS_URL`, else a new local one.
    ///
    /// # Errors
    ///
    /// When no URL is set and `redis-server` cannot be found or started;
    /// the message says how to provide one.
    pub fn find() -> Result<Self, String> {
        if let Ok(url) = std::env::var(REDIS_URL_VAR) {
            return Ok(Self { url, local: None });
        }

        let mut last = String::new();
        // The free port may be taken before the server binds it.
        for _ in 0..3 {
            match LocalRedis::start() {
                Ok((local, port)) => {
                    let url = format!("redis://127.0.0.1:{port}/");
                    return Ok(Self {
                        url,
                        local: Some(local),
                    });
                }
                Err(error) => last = error.to_string(),
            }
        }
        Err(format!(
            "no Redis for the benchmark: set {REDIS_URL_VAR}=redis://127.0.0.1:6379/ or \
             install redis-server (Debian/Ubuntu: apt-get install redis-server) ({last})"
        ))
    }

    /// The URL to connect to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the server came from, for the report.
    #[must_use]
    pub fn source(&self) -> &'static str {
        if self.local.is_some() {
            "local redis-server"
        } else {
            REDIS_URL_VAR
        }
    }

    /// The server's TCP address, for the round-trip counting proxy.
    ///
    /// # Errors
    ///
    /// When the URL names no TCP host (a Unix socket) or does not resolve.
    pub fn socket_addr(&self) -> io::Result<SocketAddr> {
        let info = redis::Client::open(self.url.as_str())
            .map_err(io::Error::other)?
            .get_connection_info()
            .clone();
        match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => resolve(host, *port),
            _ => Err(io::Error::other("the Redis URL names no TCP address")),
        }
    }
}

impl LocalRedis {
    fn start() -> io::Result<(Self, u16)> {
        let server = find_program("redis-server", &[PathBuf::from("/usr/sbin")])
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no redis-server on PATH"))?;
        let port = free_loopback_port()?;

        // If this process dies before dropping the value, the guard still
        // shuts the server down and removes its directory.
        let cli = find_program("redis-cli", &[]).unwrap_or_else(|| PathBuf::from("redis-cli"));
        let dir = ScratchDir::create("session-bench-redis", &RunAs::current(), |_| {
            let mut stop = Command::new(&cli);
            stop.args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "shutdown",
                "nosave",
            ]);
            stop
        })?;

        // No persistence: the data is thrown away, and a snapshot taken in
        // the middle of a measurement would distort it.
        let child = Command::new(server)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut local = Self { child, _dir: dir };

        let ready = wait_until("redis-server", Duration::from_secs(10), || {
            port_answers(port)
        });
        if let Err(error) = ready {
            local.stop();
            return Err(error);
        }
        Ok((local, port))
    }

    fn stop(&mut self) {
        // Our own child, by its handle; the guard cleans up after it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh database on the PostgreSQL the tests use, dropped with it.
#[derive(Debug)]
pub struct PostgresDb {
    db: TestDatabase,
    source: &'static str,
}

impl PostgresDb {
    /// A new empty database on the shared test server.
    ///
    /// # Errors
    ///
    /// When no server can be had; the message says how to provide one.
    pub async fn create() -> Result<Self, String> {
        // The launcher panics with instructions when it finds no server;
        // here that becomes an error so the other stores still run.
        let server = tokio::task::spawn_blocking(|| {
            std::panic::catch_unwind(postgres::shared).map_err(panic_message)
        })
        .await
        .map_err(|error| error.to_string())??;

        let db = tokio::spawn(server.fresh_database())
            .await
            .map_err(|error| panic_message(error.into_panic()))?;
        Ok(Self {
            db,
            source: server.source(),
        })
    }

    /// Connection options for the database.
    #[must_use]
    pub fn options(&self) -> PgConnectOptions {
        self.db.options()
    }

    /// Where the server came from, for the report.
    #[must_use]
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// The server's TCP address, for the round-trip counting proxy.
    ///
    /// # Errors
    ///
    /// When the host does not resolve.
    pub fn socket_addr(&self) -> io::Result<SocketAddr> {
        let options = self.options();
        resolve(options.get_host(), options.get_port())
    }
}

fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    if host == "localhost" {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("{host} does not resolve")))
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "the server launcher panicked".to_owned())
}

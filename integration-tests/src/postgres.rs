//! A PostgreSQL server for tests, found or started in the DESIGN order.
//!
//! 1. `SESSION_TEST_POSTGRES_URL`, e.g. a CI service or your own server.
//!    Its role must be able to create databases and roles (the C26 test
//!    creates a restricted role), as `postgres` can.
//! 2. Else a `postgres:15-alpine` container, when a Docker engine answers.
//! 3. Else a throw-away server from the local binaries (`initdb`,
//!    `pg_ctl`): found through `pg_config --bindir`,
//!    `/usr/lib/postgresql/<version>/bin` or `PATH`, run on a free port of
//!    127.0.0.1 from a temporary directory that is removed afterwards.
//!    PostgreSQL refuses to run as root, so when the tests run as root the
//!    server runs as the `postgres` user (else `nobody`) through `setpriv`
//!    or `runuser`, and its directory is given to that user.
//! 4. Else the test fails and says how to provide one.
//!
//! One server serves a whole test binary ([`shared`]); each test gets its
//! own database on it ([`PgServer::fresh_database`]), dropped afterwards.
//! A test that stops the server asks for one of its own ([`dedicated`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, PgConnection, PgPool};
use testcontainers::core::IntoContainerPort as _;
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, ImageExt as _};
use testcontainers_modules::postgres::Postgres;
use url::Url;

use crate::server::{
    docker_engine_answers, find_program, free_loopback_port, output_of, port_answers, wait_until,
    RunAs, ScratchDir,
};

/// The environment variable naming a server to use.
pub const URL_VAR: &str = "SESSION_TEST_POSTGRES_URL";

/// What to do when no server can be had.
const HOW_TO_PROVIDE: &str = "no PostgreSQL server for the tests. Provide one of: \
    SESSION_TEST_POSTGRES_URL=postgres://postgres:secret@127.0.0.1:5432/postgres \
    (a role that may create databases and roles); a running Docker engine; or the \
    PostgreSQL server binaries (Debian/Ubuntu: apt-get install postgresql; macOS: \
    brew install postgresql@15), found via pg_config, /usr/lib/postgresql/*/bin or PATH";

/// A PostgreSQL server the tests may use.
pub struct PgServer {
    url: Url,
    admin: PgConnectOptions,
    kind: Kind,
}

enum Kind {
    External,
    Local(LocalServer),
    SharedContainer { _guard: ScratchDir },
    Container(Box<ContainerAsync<Postgres>>),
}

impl fmt::Debug for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServer")
            .field("source", &self.source())
            .field("port", &self.admin.get_port())
            .finish_non_exhaustive()
    }
}

/// The server shared by every test of this binary.
///
/// # Panics
///
/// When none can be found or started, with instructions.
pub fn shared() -> &'static PgServer {
    static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();

    let server = SHARED.get_or_init(|| {
        let found = discover_shared();
        match &found {
            Ok(server) => eprintln!("PostgreSQL for tests: {server:?}"),
            Err(error) => eprintln!("PostgreSQL for tests: {error}"),
        }
        found
    });
    match server {
        Ok(server) => server,
        Err(error) => panic!("{error}"),
    }
}

fn discover_shared() -> Result<PgServer, String> {
    if let Ok(url) = std::env::var(URL_VAR) {
        return PgServer::new(&url, Kind::External)
            .map_err(|error| format!("{URL_VAR} is not a PostgreSQL URL: {error}"));
    }

    let mut notes = Vec::new();
    if docker_engine_answers() {
        // The container lives as long as the process; a thread of its own
        // keeps its runtime, since each test has a runtime of its own.
        match std::thread::spawn(shared_container).join() {
            Ok(Ok(server)) => return Ok(server),
            Ok(Err(error)) => notes.push(format!("container: {error}")),
            Err(_) => notes.push("container: the starting thread panicked".to_owned()),
        }
    }

    match LocalServer::start().and_then(LocalServer::into_server) {
        Ok(server) => Ok(server),
        Err(error) => {
            notes.push(format!("local binaries: {error}"));
            Err(format!("{HOW_TO_PROVIDE} ({})", notes.join("; ")))
        }
    }
}

/// A server for this test alone, which it may stop and start: a container
/// when a Docker engine answers, else one from the local binaries.
///
/// `SESSION_TEST_POSTGRES_URL` is not used: a test must not stop a server
/// it was lent.
///
/// # Panics
///
/// When neither can be started, with instructions.
pub async fn dedicated() -> PgServer {
    let mut notes = Vec::new();

    if docker_engine_answers() {
        match dedicated_container().await {
            Ok(server) => return server,
            Err(error) => notes.push(format!("container: {error}")),
        }
    }

    let started =
        tokio::task::spawn_blocking(|| LocalServer::start().and_then(LocalServer::into_server))
            .await;
    match started {
        Ok(Ok(server)) => server,
        Ok(Err(error)) => {
            notes.push(format!("local binaries: {error}"));
            panic!(
                "this test stops and restarts PostgreSQL, so it needs a Docker engine or \
                 the PostgreSQL binaries ({})",
                notes.join("; ")
            )
        }
        Err(error) => panic!("starting PostgreSQL panicked: {error}"),
    }
}

impl PgServer {
    fn new(url: &str, kind: Kind) -> Result<Self, String> {
        let url = Url::parse(url).map_err(|error| error.to_string())?;
        let admin = PgConnectOptions::from_str(url.as_str()).map_err(|e| e.to_string())?;
        Ok(Self { url, admin, kind })
    }

    /// Where the server came from.
    #[must_use]
    pub fn source(&self) -> &'static str {
        match self.kind {
            Kind::External => URL_VAR,
            Kind::Local(_) => "local binaries",
            Kind::SharedContainer { .. } | Kind::Container(_) => "container",
        }
    }

    /// Options for the superuser (or the role of the URL) on the server's
    /// default database.
    #[must_use]
    pub fn admin_options(&self) -> PgConnectOptions {
        self.admin.clone()
    }

    /// Creates an empty database for one test; it is dropped with the
    /// returned value.
    ///
    /// # Panics
    ///
    /// When the server refuses, with its error.
    pub async fn fresh_database(&self) -> TestDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);

        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("session_test_{}_{n}_{nanos}", std::process::id());

        let mut admin = connect(&self.admin).await;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|error| panic!("cannot create a test database: {error}"));
        let _ = admin.close().await;

        let mut url = self.url.clone();
        url.set_path(&name);
        TestDatabase {
            options: self.admin.clone().database(&name),
            admin: self.admin.clone(),
            url,
            name,
        }
    }

    /// Stops the server as `pg_ctl stop -m fast` does (or stops the
    /// container).
    ///
    /// # Errors
    ///
    /// When it cannot be stopped, or was lent through the environment.
    pub async fn stop(&self) -> io::Result<()> {
        match &self.kind {
            Kind::Local(local) => {
                let local = local.clone_handle();
                blocking(move || local.stop()).await
            }
            Kind::Container(container) => container.stop().await.map_err(io::Error::other),
            Kind::External | Kind::SharedContainer { .. } => Err(not_ours()),
        }
    }

    /// Starts a stopped server again on the same port, and waits until it
    /// accepts connections.
    ///
    /// # Errors
    ///
    /// When it does not come back, or was lent through the environment.
    pub async fn start(&self) -> io::Result<()> {
        match &self.kind {
            Kind::Local(local) => {
                let local = local.clone_handle();
                blocking(move || local.run(local.port)).await
            }
            Kind::Container(container) => {
                container.start().await.map_err(io::Error::other)?;
                let port = self.admin.get_port();
                blocking(move || {
                    wait_until("the container's port", Duration::from_secs(60), || {
                        port_answers(port)
                    })
                })
                .await
            }
            Kind::External | Kind::SharedContainer { .. } => Err(not_ours()),
        }
    }
}

fn not_ours() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this server is shared or lent; only a dedicated one may be stopped",
    )
}

async fn blocking(work: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

async fn connect(options: &PgConnectOptions) -> PgConnection {
    options
        .connect()
        .await
        .unwrap_or_else(|error| panic!("cannot connect to the test server: {error}"))
}

/// An empty database for one test, dropped (with its connections) when
/// this value is.
pub struct TestDatabase {
    name: String,
    url: Url,
    options: PgConnectOptions,
    admin: PgConnectOptions,
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestDatabase {
    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for this database, as the server's admin role, for tools
    /// such as psql.
    #[must_use]
    pub fn url(&self) -> String {
        self.url.to_string()
    }

    /// Connection options for this database, as the server's admin role.
    #[must_use]
    pub fn options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    /// A new pool on this database, as the server's admin role.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(16)
            .connect_with(self.options())
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test database: {error}"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let drop_sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);

        // Drop cannot await, and the test's runtime may be shutting down:
        // a short-lived thread with a runtime of its own does the work.
        // Failures (the server is gone already) change nothing for the test.
        let worker = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let work = async {
                    let mut conn = admin.connect().await.ok()?;
                    sqlx::query(&drop_sql).execute(&mut conn).await.ok()?;
                    conn.close().await.ok()
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), work).await;
            });
        });
        let _ = worker.join();
    }
}

/// A server run from the local binaries in a scratch directory.
struct LocalServer {
    bin: PathBuf,
    run_as: RunAs,
    dir: ScratchDir,
    port: u16,
}

/// What stopping and starting a [`LocalServer`] needs, without its
/// directory guard.
#[derive(Clone)]
struct LocalHandle {
    bin: PathBuf,
    run_as: RunAs,
    root: PathBuf,
    port: u16,
}

impl LocalServer {
    fn start() -> io::Result<Self> {
        let bin = find_bin_dir()?;
        let run_as = RunAs::for_servers()?;

        let pg_ctl = bin.join("pg_ctl");
        let teardown_as = run_as.clone();
        let dir = ScratchDir::create("session-test-pg", &run_as, |root| {
            let mut stop = teardown_as.command(&pg_ctl);
            stop.arg("stop")
                .arg("-D")
                .arg(root.join("data"))
                .args(["-m", "immediate"]);
            stop
        })?;

        let mut initdb = run_as.command(bin.join("initdb"));
        initdb
            .current_dir(dir.path())
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ]);
        output_of(&mut initdb)?;

        let mut server = Self {
            bin,
            run_as,
            dir,
            port: 0,
        };

        // The free port may be taken before the server binds it; then
        // another one is tried.
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_loopback_port()?;
            match server.clone_handle_at(port).run(port) {
                Ok(()) => {
                    server.port = port;
                    return Ok(server);
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("the server did not start")))
    }

    fn clone_handle_at(&self, port: u16) -> LocalHandle {
        LocalHandle {
            bin: self.bin.clone(),
            run_as: self.run_as.clone(),
            root: self.dir.path().to_owned(),
            port,
        }
    }

    fn clone_handle(&self) -> LocalHandle {
        self.clone_handle_at(self.port)
    }

    fn into_server(self) -> io::Result<PgServer> {
        let url = loopback_url(self.port);
        PgServer::new(&url, Kind::Local(self)).map_err(io::Error::other)
    }
}

impl LocalHandle {
    fn pg_ctl(&self) -> Command {
        let mut command = self.run_as.command(self.bin.join("pg_ctl"));
        command
            .current_dir(&self.root)
            .arg("-D")
            .arg(self.root.join("data"));
        command
    }

    /// Starts the server on `port` and waits until it is ready.
    fn run(&self, port: u16) -> io::Result<()> {
        // Loopback only, the socket in the scratch directory, and no
        // fsync: this data is thrown away.
        let options = format!(
            "-p {port} -h 127.0.0.1 -k {} -F -c max_connections=300 \
             -c full_page_writes=off -c synchronous_commit=off",
            self.root.display()
        );
        let mut start = self.pg_ctl();
        start
            .args(["start", "-w", "-t", "60", "-l"])
            .arg(self.root.join("server.log"))
            .arg("-o")
            .arg(options);

        output_of(&mut start).map_err(|error| {
            let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            io::Error::other(format!("{error}; server log: {}", tail.join(" | ")))
        })?;
        wait_until("PostgreSQL", Duration::from_secs(30), || port_answers(port))
    }

    /// `pg_ctl stop -m fast`: running transactions are rolled back and
    /// connections are closed.
    fn stop(&self) -> io::Result<()> {
        let mut stop = self.pg_ctl();
        stop.args(["stop", "-w", "-m", "fast"]);
        output_of(&mut stop).map(drop)
    }
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bin_dir() -> io::Result<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(pg_config) = find_program("pg_config", &[]) {
        if let Ok(bindir) = output_of(Command::new(pg_config).arg("--bindir")) {
            dirs.push(PathBuf::from(bindir));
        }
    }
    dirs.extend(versioned_dirs(Path::new("/usr/lib/postgresql")));
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));

    let initdb = find_program("initdb", &dirs).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no initdb in pg_config --bindir, PATH or /usr/lib/postgresql/*/bin",
        )
    })?;
    let dir = initdb.parent().map(Path::to_owned).unwrap_or_default();
    if !dir.join("pg_ctl").is_file() {
        let message = format!("no pg_ctl beside {}", initdb.display());
        return Err(io::Error::new(io::ErrorKind::NotFound, message));
    }
    Ok(dir)
}

/// `<root>/<version>/bin`, newest version first.
fn versioned_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };

    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// The image every container uses; the local binaries are 15 on CI too.
fn image(host_port: Option<u16>) -> testcontainers::ContainerRequest<Postgres> {
    let request = Postgres::default().with_host_auth().with_tag("15-alpine");
    match host_port {
        Some(port) => request.with_mapped_port(port, 5432.tcp()),
        None => request,
    }
}

/// The superuser's URL on a server of ours (trust authentication).
fn loopback_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// Starts the shared container on a runtime that lives in this thread's
/// child for the rest of the process, and arranges its removal at exit.
fn shared_container() -> Result<PgServer, String> {
    let (sender, receiver) = mpsc::channel();

    // The runtime and the container handle stay in this thread, parked,
    // until the process ends; the guard below removes the container.
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => return drop(sender.send(Err(error.to_string()))),
        };
        let started = runtime.block_on(async {
            let container = image(None).start().await.map_err(|e| e.to_string())?;
            let port = container
                .get_host_port_ipv4(5432)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((container, port))
        });
        match started {
            Ok((container, port)) => {
                let _ = sender.send(Ok((container.id().to_owned(), port)));
                loop {
                    std::thread::park();
                }
            }
            Err(error) => drop(sender.send(Err(error))),
        }
    });

    let (id, port) = receiver
        .recv()
        .map_err(|_| "the container thread ended".to_owned())??;
    let guard = ScratchDir::create("session-test-pg-container", &RunAs::current(), |_| {
        let mut remove = Command::new("docker");
        remove.args(["rm", "-f", "-v", &id]);
        remove
    })
    .map_err(|error| format!("cannot arrange the container's removal: {error}"))?;

    PgServer::new(&loopback_url(port), Kind::SharedContainer { _guard: guard })
}

/// A container for one test, on a fixed host port so that a restart keeps
/// the address the pool knows.
async fn dedicated_container() -> Result<PgServer, String> {
    let port = free_loopback_port().map_err(|error| error.to_string())?;
    let container = image(Some(port))
        .start()
        .await
        .map_err(|error| error.to_string())?;

    PgServer::new(&loopback_url(port), Kind::Container(Box::new(container)))
}

//! Redis for tests: one node or a three-master cluster, found or started
//! in the DESIGN order.
//!
//! A node:
//! 1. `SESSION_TEST_REDIS_URL`, e.g. a CI service or your own server.
//! 2. Else a `redis:7-alpine` container, when a Docker engine answers.
//! 3. Else a throw-away `redis-server` from `PATH`, on a free port of
//!    127.0.0.1, without persistence, in a temporary directory that is
//!    removed afterwards.
//! 4. Else the test fails and says how to provide one.
//!
//! A cluster:
//! 1. `SESSION_TEST_REDIS_CLUSTER_URLS`, the comma-separated `redis://`
//!    URLs of some of its nodes.
//! 2. Else three throw-away `redis-server`s in cluster mode (on ports
//!    whose cluster bus port, 10,000 higher, is free too), joined into
//!    three masters with no replicas by `redis-cli --cluster create`. A cluster in containers
//!    would announce addresses the host cannot reach, so there is no
//!    container step.
//! 3. Else the test fails and says how to provide one.
//!
//! Tests share one node ([`shared`]) or one cluster ([`shared_cluster`])
//! per test binary, each test in a key prefix of its own. A test that
//! stops the server asks for one of its own ([`dedicated`]).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};

use crate::server::{describe, find_program, output_of, wait_until, RunAs, ScratchDir};
use crate::server::{docker_engine_answers, free_loopback_port, port_answers};

/// The environment variable naming a node to use.
pub const URL_VAR: &str = "SESSION_TEST_REDIS_URL";

/// The environment variable naming a cluster to use.
pub const CLUSTER_VAR: &str = "SESSION_TEST_REDIS_CLUSTER_URLS";

const HOW_TO_PROVIDE: &str = "no Redis for the tests. Provide one of: \
    SESSION_TEST_REDIS_URL=redis://127.0.0.1:6379 (and for the cluster tests \
    SESSION_TEST_REDIS_CLUSTER_URLS=redis://127.0.0.1:7000,redis://127.0.0.1:7001); \
    a running Docker engine (one node only); or redis-server and redis-cli on PATH \
    (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)";

/// How long a server may take to come up.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A Redis node the tests may use.
pub struct RedisNode {
    url: String,
    kind: Kind,
}

enum Kind {
    External,
    Local(LocalRedis),
    SharedContainer { _guard: ScratchDir },
    Container(Box<ContainerAsync<GenericImage>>, u16),
}

impl fmt::Debug for RedisNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password.
        f.debug_struct("RedisNode")
            .field("source", &self.source())
            .finish_non_exhaustive()
    }
}

/// The node shared by every test of this binary.
///
/// # Panics
///
/// When none can be found or started, with instructions.
pub fn shared() -> &'static RedisNode {
    static SHARED: OnceLock<Result<RedisNode, String>> = OnceLock::new();
    found_once(&SHARED, "Redis", discover_shared)
}

/// What `discover` finds the first time, for the rest of the process;
/// reported once, so that a failure's instructions are seen.
fn found_once<T: fmt::Debug>(
    cell: &'static OnceLock<Result<T, String>>,
    what: &str,
    discover: fn() -> Result<T, String>,
) -> &'static T {
    let found = cell.get_or_init(|| {
        let found = discover();
        match &found {
            Ok(server) => eprintln!("{what} for tests: {server:?}"),
            Err(error) => eprintln!("{what} for tests: {error}"),
        }
        found
    });
    found.as_ref().unwrap_or_else(|error| panic!("{error}"))
}

fn discover_shared() -> Result<RedisNode, String> {
    if let Ok(url) = std::env::var(URL_VAR) {
        return Ok(RedisNode {
            url,
            kind: Kind::External,
        });
    }

    let mut notes = Vec::new();
    if docker_engine_answers() {
        // Each test has a runtime of its own, which may not start another.
        match std::thread::spawn(shared_container).join() {
            Ok(Ok(node)) => return Ok(node),
            Ok(Err(error)) => notes.push(format!("container: {error}")),
            Err(_) => notes.push("container: the starting thread panicked".to_owned()),
        }
    }

    local_node(notes)
}

fn local_node(mut notes: Vec<String>) -> Result<RedisNode, String> {
    match LocalRedis::start(Mode::Node) {
        Ok(local) => Ok(RedisNode {
            url: local.url(),
            kind: Kind::Local(local),
        }),
        Err(error) => {
            notes.push(format!("local binaries: {error}"));
            Err(format!("{HOW_TO_PROVIDE} ({})", notes.join("; ")))
        }
    }
}

/// A node for this test alone, which it may stop and start on the same
/// port: a container when a Docker engine answers, else a local server.
///
/// `SESSION_TEST_REDIS_URL` is not used: a test must not stop a server
/// it was lent.
///
/// # Panics
///
/// When neither can be started, with instructions.
pub async fn dedicated() -> RedisNode {
    let mut notes = Vec::new();

    if docker_engine_answers() {
        match dedicated_container().await {
            Ok(node) => return node,
            Err(error) => notes.push(format!("container: {error}")),
        }
    }

    let started = tokio::task::spawn_blocking(|| local_node(notes)).await;
    match started {
        Ok(Ok(node)) => node,
        Ok(Err(error)) => panic!("{error}"),
        Err(error) => panic!("starting a local Redis failed: {error}"),
    }
}

impl RedisNode {
    /// The URL to connect to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where it came from: `environment`, `container` or `local`.
    #[must_use]
    pub fn source(&self) -> &'static str {
        match self.kind {
            Kind::External => "environment",
            Kind::SharedContainer { .. } | Kind::Container(..) => "container",
            Kind::Local(_) => "local",
        }
    }

    /// A fresh connection for commands the store never sends (`CONFIG`,
    /// `PTTL`, `INFO`).
    ///
    /// # Panics
    ///
    /// When the URL does not parse or the server does not answer.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url.as_str())
            .unwrap_or_else(|error| panic!("the test Redis URL does not parse: {error}"));
        client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test Redis: {error}"))
    }

    /// Stops the server (a `SIGTERM`, or stopping the container).
    ///
    /// # Errors
    ///
    /// When it does not stop, or was lent or shared.
    pub async fn stop(&self) -> io::Result<()> {
        match &self.kind {
            Kind::Local(local) => {
                let local = local.clone();
                blocking(move || local.stop()).await
            }
            Kind::Container(container, _) => {
                let stopped = container.stop().await;
                stopped.map_err(io::Error::other)
            }
            Kind::External | Kind::SharedContainer { .. } => Err(not_ours()),
        }
    }

    /// Starts a stopped server again on the same port and waits until it
    /// accepts connections. Its data is gone: it keeps none on disk.
    ///
    /// # Errors
    ///
    /// When it does not come back, or was lent or shared.
    pub async fn start(&self) -> io::Result<()> {
        match &self.kind {
            Kind::Local(local) => {
                let local = local.clone();
                blocking(move || local.run()).await
            }
            Kind::Container(container, port) => {
                container.start().await.map_err(io::Error::other)?;
                let port = *port;
                blocking(move || {
                    wait_until("the Redis container", START_LIMIT, || port_answers(port))
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
        "this Redis is shared or lent; only a dedicated one may be stopped",
    )
}

async fn blocking<F>(work: F) -> io::Result<()>
where
    F: FnOnce() -> io::Result<()> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

/// A Redis Cluster the tests may use.
pub struct RedisCluster {
    urls: Vec<String>,
    nodes: Vec<LocalRedis>,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = if self.nodes.is_empty() {
            "environment"
        } else {
            "local"
        };
        f.debug_struct("RedisCluster")
            .field("source", &source)
            .field("nodes", &self.urls.len())
            .finish()
    }
}

impl RedisCluster {
    /// The `redis://` URLs of its nodes (or of those the environment gave).
    #[must_use]
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// A cluster connection for commands the store never sends.
    ///
    /// # Panics
    ///
    /// When a URL does not parse or the cluster does not answer.
    pub async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        let client = redis::cluster::ClusterClient::new(self.urls.clone())
            .unwrap_or_else(|error| panic!("a cluster node URL does not parse: {error}"));
        client
            .get_async_connection()
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test cluster: {error}"))
    }
}

/// The cluster shared by every test of this binary.
///
/// # Panics
///
/// When none can be found or started, with instructions.
pub fn shared_cluster() -> &'static RedisCluster {
    static SHARED: OnceLock<Result<RedisCluster, String>> = OnceLock::new();
    found_once(&SHARED, "Redis Cluster", discover_cluster)
}

fn discover_cluster() -> Result<RedisCluster, String> {
    if let Ok(urls) = std::env::var(CLUSTER_VAR) {
        let urls: Vec<String> = urls.split(',').map(|url| url.trim().to_owned()).collect();
        if urls.iter().any(String::is_empty) {
            return Err(format!("{CLUSTER_VAR} lists an empty URL"));
        }
        return Ok(RedisCluster {
            urls,
            nodes: Vec::new(),
        });
    }

    start_cluster().map_err(|error| format!("{HOW_TO_PROVIDE} (local cluster: {error})"))
}

/// Three masters, no replicas, every slot assigned.
fn start_cluster() -> io::Result<RedisCluster> {
    let cli = find_program("redis-cli", &[])
        .ok_or_else(|| io::Error::other("redis-cli not found on PATH"))?;
    let nodes = (0..3)
        .map(|_| LocalRedis::start(Mode::Cluster))
        .collect::<io::Result<Vec<_>>>()?;

    let mut create = Command::new(&cli);
    create.arg("--cluster").arg("create");
    for node in &nodes {
        create.arg(format!("127.0.0.1:{}", node.port));
    }
    create.args(["--cluster-replicas", "0", "--cluster-yes"]);
    output_of(&mut create)?;

    // Every node must know every slot before a client is let loose.
    for node in &nodes {
        wait_until("the cluster", START_LIMIT, || {
            let mut info = Command::new(&cli);
            info.args(["-p", &node.port.to_string(), "cluster", "info"]);
            output_of(&mut info).is_ok_and(|info| info.contains("cluster_state:ok"))
        })?;
    }

    Ok(RedisCluster {
        urls: nodes.iter().map(LocalRedis::url).collect(),
        nodes,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Node,
    Cluster,
}

/// A `redis-server` run from `PATH`; clones share its directory, which
/// is removed (after the server is killed) with the last of them, or
/// when the test process ends in any way.
#[derive(Clone)]
struct LocalRedis {
    program: PathBuf,
    port: u16,
    mode: Mode,
    dir: Arc<ScratchDir>,
}

impl LocalRedis {
    fn start(mode: Mode) -> io::Result<Self> {
        let program = find_program("redis-server", &[])
            .ok_or_else(|| io::Error::other("redis-server not found on PATH"))?;

        // Another process may take a free port first: try a few.
        let mut last = None;
        for _ in 0..3 {
            let port = match mode {
                Mode::Node => free_loopback_port()?,
                Mode::Cluster => free_cluster_port()?,
            };
            let owner = RunAs::current();
            let dir = ScratchDir::create("session-test-redis", &owner, kill_by_pidfile)?;
            let local = Self {
                program: program.clone(),
                port,
                mode,
                dir: Arc::new(dir),
            };
            match local.run() {
                Ok(()) => return Ok(local),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.path().join("redis.pid")
    }

    /// Starts the server on its port and waits until it answers.
    fn run(&self) -> io::Result<()> {
        let dir = self.dir.path();
        let mut command = Command::new(&self.program);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(["--daemonize", "yes", "--pidfile"])
            .arg(self.pidfile())
            .arg("--logfile")
            .arg(dir.join("redis.log"));
        if self.mode == Mode::Cluster {
            command
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "5000"]);
        }
        output_of(&mut command)?;

        let port = self.port;
        wait_until("redis-server", START_LIMIT, || port_answers(port)).map_err(|error| {
            let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            io::Error::other(format!("{} : {error}; log: {tail:?}", describe(&command)))
        })
    }

    /// Stops the server and waits until its port is closed.
    fn stop(&self) -> io::Result<()> {
        let pid = std::fs::read_to_string(self.pidfile())?;
        output_of(Command::new("kill").arg(pid.trim()))?;

        let port = self.port;
        wait_until("redis-server to stop", START_LIMIT, || !port_answers(port))
    }
}

/// A free port whose cluster bus port (10,000 higher, as every Redis
/// version before 7 fixes it) is free too.
fn free_cluster_port() -> io::Result<u16> {
    for _ in 0..100 {
        let port = free_loopback_port()?;
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, bus)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other("no free pair of ports for a cluster node"))
}

/// The teardown of a server's directory: kill it if it still runs.
fn kill_by_pidfile(dir: &Path) -> Command {
    let mut kill = Command::new("sh");
    kill.arg("-c")
        .arg(r#"[ -f "$0/redis.pid" ] && kill "$(cat "$0/redis.pid")"; sleep 0.2"#)
        .arg(dir);
    kill
}

fn image(host_port: Option<u16>) -> testcontainers::ContainerRequest<GenericImage> {
    let request = GenericImage::new("redis", "7-alpine")
        .with_exposed_port(6379.tcp())
        .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"));
    match host_port {
        Some(port) => request.with_mapped_port(port, 6379.tcp()),
        None => request.into(),
    }
}

/// Starts the shared container and arranges its removal when the process
/// ends, since a value in a `static` is never dropped.
fn shared_container() -> Result<RedisNode, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;

    let (id, port) = runtime.block_on(async {
        let container = image(None).start().await.map_err(|e| e.to_string())?;
        let port = container
            .get_host_port_ipv4(6379)
            .await
            .map_err(|e| e.to_string())?;
        let id = container.id().to_owned();
        // Dropping the handle would remove the container now; the guard
        // below removes it at exit instead.
        std::mem::forget(container);
        Ok::<_, String>((id, port))
    })?;

    let guard = ScratchDir::create("session-test-redis-container", &RunAs::current(), |_| {
        let mut remove = Command::new("docker");
        remove.args(["rm", "-f", "-v", &id]);
        remove
    })
    .map_err(|error| format!("cannot arrange the container's removal: {error}"))?;

    Ok(RedisNode {
        url: format!("redis://127.0.0.1:{port}"),
        kind: Kind::SharedContainer { _guard: guard },
    })
}

/// A container for one test, on a fixed host port so that a restart keeps
/// the address the store knows.
async fn dedicated_container() -> Result<RedisNode, String> {
    let port = free_loopback_port().map_err(|error| error.to_string())?;
    let container = image(Some(port))
        .start()
        .await
        .map_err(|error| error.to_string())?;

    Ok(RedisNode {
        url: format!("redis://127.0.0.1:{port}"),
        kind: Kind::Container(Box::new(container), port),
    })
}

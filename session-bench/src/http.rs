//! The middleware over real HTTP on loopback: a server in a child process
//! and a load generator in this one.

use std::io::{self, BufRead as _, BufReader, Read as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{COOKIE, HOST};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use session_core::SessionConfig;
use store_memory::MemoryStore;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::apps::{self, cookie_to_return};
use crate::mapstore::MapStore;
use crate::report::{latency, rate, ratio, verdict, Table};
use crate::stats::Samples;
use crate::stores;

/// Which app the server child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum App {
    /// The read-and-update route with sessions in a memory store.
    Sessions,
    /// The same route without the session layer.
    Plain,
    /// Sessions over the diagnostic sharded map instead of the memory
    /// store, to tell the middleware's cost from the cache's.
    SessionsOnMap,
}

impl App {
    fn name(self) -> &'static str {
        match self {
            App::Sessions => "sessions",
            App::Plain => "plain",
            App::SessionsOnMap => "sessions-on-map",
        }
    }
}

/// The line the server child prints once it listens.
const READY: &str = "listening on ";

/// Runs the server child: serves `app` on a free loopback port, prints
/// `READY` and the address, and exits when its standard input closes
/// (the parent ended, however it ended) or after `max_time`.
///
/// # Errors
///
/// When the runtime cannot start or no port can be bound.
pub fn serve(app: App, max_time: Duration) -> io::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let router = match app {
            App::Sessions => apps::ours(Arc::new(MemoryStore::new()), SessionConfig::new()),
            App::Plain => apps::plain(),
            App::SessionsOnMap => apps::ours(Arc::new(MapStore::new()), SessionConfig::new()),
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        println!("{READY}{}", listener.local_addr()?);

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            // Blocks until the parent closes the pipe or goes away.
            let _ = io::stdin().read_to_end(&mut Vec::new());
            let _ = stop.send(());
        });
        let shutdown = async move {
            tokio::select! {
                _ = stopped => {}
                () = tokio::time::sleep(max_time) => {}
            }
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    })
}

/// A server child process, stopped when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl Server {
    /// Starts `app` in a child process running this same binary.
    ///
    /// # Errors
    ///
    /// When the child cannot start or does not say where it listens.
    pub fn start(app: App, max_time: Duration) -> io::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve-http", "--app", app.name(), "--max-seconds"])
            .arg(max_time.as_secs().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();

        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let addr = line.trim().strip_prefix(READY).and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!("the server child said {line:?}")));
        };
        Ok(Self { child, stdin, addr })
    }

    /// Where it listens.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing its input asks it to stop; give it a moment, then make
        // sure (our own child, by its handle).
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `GET /` on `connections` keep-alive connections for `span`,
/// each connection one visitor that sends back the cookie it was given.
///
/// # Errors
///
/// When a connection cannot be opened.
pub async fn load(addr: SocketAddr, connections: usize, span: Duration) -> io::Result<Samples> {
    let started = Instant::now();
    let deadline = started + span;

    let mut running = JoinSet::new();
    for _ in 0..connections {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        running.spawn(visitor(stream, deadline));
    }

    let mut all = stores::gather(running).await;
    all.add_wall(started.elapsed());
    Ok(all)
}

async fn visitor(stream: TcpStream, deadline: Instant) -> Samples {
    let mut samples = Samples::new();
    let handshake = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await;
    let (mut sender, connection) = match handshake {
        Ok(parts) => parts,
        Err(error) => {
            samples.fail(|| format!("handshake: {error}"));
            return samples;
        }
    };
    tokio::spawn(connection);

    let mut cookie: Option<HeaderValue> = None;
    while Instant::now() < deadline {
        let begun = Instant::now();
        match exchange(&mut sender, cookie.as_ref()).await {
            Ok(set) => {
                samples.record(begun.elapsed());
                cookie = set.or(cookie);
            }
            Err(reason) => {
                samples.fail(|| reason);
                break;
            }
        }
    }
    samples
}

/// One request and its whole response; returns the cookie it set.
async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    cookie: Option<&HeaderValue>,
) -> Result<Option<HeaderValue>, String> {
    let mut request = Request::get("/").header(HOST, "127.0.0.1");
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let request = request
        .body(Empty::new())
        .map_err(|error| error.to_string())?;

    sender.ready().await.map_err(|error| error.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let set = cookie_to_return(response.headers());
    response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?;

    if status == StatusCode::OK {
        Ok(set)
    } else {
        Err(format!("answered {status}"))
    }
}

/// How much load the HTTP comparison sends.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Keep-alive connections, one visitor each.
    pub connections: usize,
    /// Length of each measured round.
    pub round_time: Duration,
    /// Rounds per app, alternating between the apps.
    pub rounds: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            connections: 64,
            round_time: Duration::from_secs(4),
            rounds: 3,
        }
    }
}

/// Requests per second of the app with sessions against the app without
/// them, each in its own server process, measured in alternating rounds.
///
/// # Errors
///
/// When a server cannot be started or reached.
pub async fn compare(settings: Settings) -> io::Result<Table> {
    let budget = settings.round_time * (settings.rounds as u32 + 1) * 3 + Duration::from_secs(60);
    let servers = [
        ("with sessions", Server::start(App::Sessions, budget)?),
        ("without sessions", Server::start(App::Plain, budget)?),
        (
            "with sessions on a bare map (diagnostic)",
            Server::start(App::SessionsOnMap, budget)?,
        ),
    ];

    let warm_up = Duration::from_secs(1);
    for (_, server) in &servers {
        load(server.addr(), settings.connections, warm_up).await?;
    }
    let mut samples = vec![Samples::new(); servers.len()];
    for round in 0..settings.rounds {
        for k in 0..servers.len() {
            let index = (round + k) % servers.len();
            let server = &servers[index].1;
            samples[index]
                .merge(load(server.addr(), settings.connections, settings.round_time).await?);
        }
    }

    let summaries: Vec<_> = samples.iter().map(Samples::summary).collect();
    let (with, without) = (summaries[0], summaries[1]);
    let mut table = Table::new(
        "Middleware over HTTP on loopback (memory store, read-and-update route)",
        &["app", "requests/s", "p50", "p99", "failures"],
    );
    for ((name, _), summary) in servers.iter().zip(summaries) {
        table.row(vec![
            (*name).to_owned(),
            rate(summary.per_second),
            latency(summary.p50),
            latency(summary.p99),
            summary.failures.to_string(),
        ]);
    }
    let share = with.per_second / without.per_second;
    table.note(format!(
        "with / without: {} (target ≥ 0.85: {}). {} keep-alive connections, one visitor \
         each, {} rounds of {:?} per app, alternating; server and load generator are \
         separate processes on the same {} cores.",
        ratio(share),
        verdict(share >= 0.85),
        settings.connections,
        settings.rounds,
        settings.round_time,
        std::thread::available_parallelism().map_or(0, usize::from),
    ));
    if let Some(reason) = samples.iter().find_map(Samples::first_failure) {
        table.note(format!("first failure: {reason}"));
    }
    Ok(table)
}

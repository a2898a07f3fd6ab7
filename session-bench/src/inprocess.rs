//! The middleware in process: requests through `tower::ServiceExt::oneshot`,
//! no network.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use http::header::COOKIE;
use http::{HeaderValue, Request, StatusCode};
use session_core::{Expiry, ManualClock, SessionConfig, Store};
use store_memory::MemoryStore;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::apps::{self, cookie_to_return};
use crate::counting::{Calls, CountingStore};
use crate::mapstore::MapStore;
use crate::report::{latency, rate, ratio, verdict, Table};
use crate::stats::{median, Samples};

/// A visitor's cookie, or none for the app without sessions.
pub type Visitor = Option<HeaderValue>;

/// Sends one request and returns the cookie pair it set, if any.
///
/// # Errors
///
/// When the app does not answer 200 or the body cannot be read.
pub async fn request(
    app: &Router,
    uri: &str,
    cookie: Option<&HeaderValue>,
) -> Result<Visitor, String> {
    let mut builder = Request::get(uri);
    if let Some(cookie) = cookie {
        builder = builder.header(COOKIE, cookie);
    }
    let request = builder
        .body(Body::empty())
        .map_err(|error| error.to_string())?;

    let response = app
        .clone()
        .oneshot(request)
        .await
        .map_err(|error| error.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("{uri} answered {}", response.status()));
    }
    let set = cookie_to_return(response.headers());
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|error| error.to_string())?;
    Ok(set)
}

/// Starts `count` sessions with a first visit each and returns their
/// cookies; an app that sets none gives visitors without cookies.
///
/// # Errors
///
/// When a first visit fails.
pub async fn visitors(app: &Router, count: usize) -> Result<Vec<Visitor>, String> {
    let mut cookies = Vec::with_capacity(count);
    for _ in 0..count {
        cookies.push(request(app, "/", None).await?);
    }
    Ok(cookies)
}

/// `count` read-and-update requests, one after another, cycling through
/// the visitors.
pub async fn sequential(app: &Router, visitors: &[Visitor], count: usize) -> Samples {
    let mut samples = Samples::new();
    let started = Instant::now();

    for i in 0..count {
        let cookie = visitors[i % visitors.len()].as_ref();
        let begun = Instant::now();
        match request(app, "/", cookie).await {
            Ok(_) => samples.record(begun.elapsed()),
            Err(reason) => samples.fail(|| reason),
        }
    }
    samples.add_wall(started.elapsed());
    samples
}

/// Requests per second from `tasks` tasks for `duration`, each task with
/// its own share of the visitors.
pub async fn throughput(
    app: &Router,
    visitors: &[Visitor],
    tasks: usize,
    duration: Duration,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;

    let mut running = JoinSet::new();
    for task in 0..tasks {
        let mine: Vec<Visitor> = visitors.iter().skip(task).step_by(tasks).cloned().collect();
        let (app, done) = (app.clone(), Arc::clone(&done));
        running.spawn(async move {
            let mut i = 0;
            while Instant::now() < deadline {
                if request(&app, "/", mine[i % mine.len()].as_ref())
                    .await
                    .is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        });
    }
    while running.join_next().await.is_some() {}

    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// How much work the in-process benchmarks do.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Requests per app and round in the latency comparison.
    pub requests: usize,
    /// Rounds of the latency comparison.
    pub rounds: usize,
    /// How long each throughput measurement runs.
    pub throughput_time: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            requests: 3_000,
            rounds: 5,
            throughput_time: Duration::from_secs(3),
        }
    }
}

/// The three apps, each with its visitors.
struct Contender {
    name: &'static str,
    app: Router,
    visitors: Vec<Visitor>,
}

/// The apps of the in-process comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AppKind {
    /// The route without sessions.
    Plain,
    /// This workspace's middleware over the memory store.
    Ours,
    /// This workspace's middleware over the diagnostic sharded map, to
    /// tell the middleware's cost from the memory store's.
    OursOnMap,
    /// tower-sessions 0.14 with its memory store.
    Theirs,
}

impl AppKind {
    fn build(self) -> Router {
        match self {
            AppKind::Plain => apps::plain(),
            AppKind::Ours => apps::ours(Arc::new(MemoryStore::new()), SessionConfig::new()),
            AppKind::OursOnMap => apps::ours(Arc::new(MapStore::new()), SessionConfig::new()),
            AppKind::Theirs => apps::theirs(),
        }
    }
}

/// Sends one app's read-and-update requests, one at a time, for
/// `duration`, so that a profiler attached to the process sees only that
/// app's work; prints the requests per second.
///
/// # Errors
///
/// When the runtime cannot start or a first visit fails.
pub fn hot_loop(kind: AppKind, duration: Duration) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = kind.build();
        let visitors = visitors(&app, VISITORS)
            .await
            .map_err(std::io::Error::other)?;

        let started = Instant::now();
        let mut done = 0;
        while started.elapsed() < duration {
            done += sequential(&app, &visitors, 1_000).await.count();
        }
        println!(
            "{:.0} requests/s",
            done as f64 / started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

/// Visitors per app: enough that sessions do not stay in a CPU cache,
/// and a multiple of 64 so every task gets the same share.
const VISITORS: usize = 1_024;

async fn contenders() -> Result<Vec<Contender>, String> {
    let apps = [
        ("no sessions", AppKind::Plain.build()),
        ("session-tower", AppKind::Ours.build()),
        ("tower-sessions 0.14", AppKind::Theirs.build()),
        (
            "session-tower on a bare map (diagnostic)",
            AppKind::OursOnMap.build(),
        ),
    ];

    let mut all = Vec::new();
    for (name, app) in apps {
        let visitors = visitors(&app, VISITORS).await?;
        all.push(Contender {
            name,
            app,
            visitors,
        });
    }
    Ok(all)
}

/// The time a session adds to one read-and-update request, ours against
/// tower-sessions', and throughput with 1 and 64 tasks.
///
/// # Errors
///
/// When an app fails a first visit.
pub async fn overhead(settings: Settings) -> Result<Vec<Table>, String> {
    let contenders = contenders().await?;
    let mut samples = vec![Samples::new(); contenders.len()];
    let mut round_means = vec![Vec::new(); contenders.len()];

    // Warm every app up, then rotate which goes first in each round.
    for contender in &contenders {
        sequential(&contender.app, &contender.visitors, settings.requests / 4).await;
    }
    for round in 0..settings.rounds {
        for k in 0..contenders.len() {
            let index = (round + k) % contenders.len();
            let contender = &contenders[index];
            let round_samples =
                sequential(&contender.app, &contender.visitors, settings.requests).await;
            round_means[index].push(round_samples.summary().mean.as_secs_f64());
            samples[index].merge(round_samples);
        }
    }

    let summaries: Vec<_> = samples.iter().map(Samples::summary).collect();
    let medians: Vec<f64> = round_means.iter().map(|means| median(means)).collect();
    let base_p50 = summaries[0].p50.as_secs_f64();
    let added = |i: usize| summaries[i].p50.as_secs_f64() - base_p50;
    let added_mean = |i: usize| medians[i] - medians[0];

    let mut table = Table::new(
        "Middleware in process: time a session adds to a read-and-update request",
        &[
            "app",
            "p50",
            "p99",
            "mean (median of rounds)",
            "added, p50",
            "added, mean",
            "failures",
        ],
    );
    for (i, contender) in contenders.iter().enumerate() {
        let s = summaries[i];
        let (p50_added, mean_added) = if i == 0 {
            (String::new(), String::new())
        } else {
            (seconds(added(i)), seconds(added_mean(i)))
        };
        table.row(vec![
            contender.name.to_owned(),
            latency(s.p50),
            latency(s.p99),
            seconds(medians[i]),
            p50_added,
            mean_added,
            s.failures.to_string(),
        ]);
    }
    let by_p50 = added(1) / added(2);
    let by_mean = added_mean(1) / added_mean(2);
    table.note(format!(
        "ours / tower-sessions' added time: {by_p50:.3} at p50, {by_mean:.3} by mean \
         (target ≤ 0.50: {}). {} requests per app in each of {} rounds, {VISITORS} \
         visitors per app, the apps' order rotating.",
        verdict(by_p50 <= 0.5 && by_mean <= 0.5),
        settings.requests,
        settings.rounds,
    ));

    let mut rates = Table::new(
        "Middleware in process: read-and-update requests per second",
        &["app", "1 task", "64 tasks", "64 / 1", "target ≥ 1 (ours)"],
    );
    for (i, contender) in contenders.iter().enumerate() {
        let one = throughput(
            &contender.app,
            &contender.visitors,
            1,
            settings.throughput_time,
        )
        .await;
        let many = throughput(
            &contender.app,
            &contender.visitors,
            64,
            settings.throughput_time,
        )
        .await;
        let judged = if i == 1 {
            verdict(many >= one)
        } else {
            String::new()
        };
        rates.row(vec![
            contender.name.to_owned(),
            rate(one),
            rate(many),
            ratio(many / one),
            judged,
        ]);
    }
    rates.note(format!(
        "Each figure runs {:?} on a runtime with one worker per core; the 64 tasks share \
         the visitors.",
        settings.throughput_time
    ));

    Ok(vec![table, rates])
}

fn seconds(value: f64) -> String {
    latency(Duration::from_secs_f64(value.max(0.0)))
}

/// Store calls per request: none for a request that does not use the
/// session, one for a read, two for a read and a write.
///
/// # Errors
///
/// When a request fails.
pub async fn store_calls() -> Result<Table, String> {
    let counting = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    let app = apps::ours(
        Arc::clone(&counting) as Arc<dyn Store>,
        SessionConfig::new(),
    );
    let visitors = visitors(&app, 100).await?;

    let kinds: [(&str, &str, bool, u64); 5] = [
        ("does not use the session", "/none", true, 0),
        ("reads the session", "/read", true, 1),
        ("reads and writes the session", "/", true, 2),
        ("first visit: writes a new session", "/", false, 1),
        ("reads, without a cookie", "/read", false, 0),
    ];
    let mut table = Table::new(
        "Store calls per request (memory store behind a counting wrapper)",
        &[
            "request",
            "load",
            "create",
            "save",
            "touch",
            "delete",
            "per request",
            "target",
        ],
    );
    for (label, uri, with_cookie, wanted) in kinds {
        let before = counting.calls();
        for visitor in &visitors {
            let cookie = if with_cookie { visitor.as_ref() } else { None };
            request(&app, uri, cookie).await?;
        }
        let calls = counting.calls().since(before);
        let per = |n: u64| format!("{:.2}", n as f64 / visitors.len() as f64);
        let per_request = calls.total() as f64 / visitors.len() as f64;
        table.row(vec![
            label.to_owned(),
            per(calls.load),
            per(calls.create),
            per(calls.save),
            per(calls.touch),
            per(calls.delete),
            format!("{per_request:.2}"),
            format!("{wanted}: {}", verdict(per_request <= wanted as f64)),
        ]);
    }
    table.note(format!(
        "{} requests of each kind, from visitors with a live session unless marked. \
         Each call is one round trip on the network stores (see the round-trip table).",
        visitors.len()
    ));
    Ok(table)
}

/// Store writes caused by 10,000 read-only requests under sliding expiry.
///
/// Time is simulated: 100 visitors each make 100 requests, `gap` apart,
/// so the touch throttle sees the idle window pass as it would.
///
/// # Errors
///
/// When a request fails.
pub async fn touch_throttle() -> Result<Table, String> {
    const VISITORS: usize = 100;
    const EACH: usize = 100;

    let mut table = Table::new(
        "Store writes for 10,000 read-only requests (touch throttle, default touch_after)",
        &[
            "idle timeout",
            "gap between a visitor's requests",
            "writes",
            "share",
            "target < 10%",
        ],
    );
    let idles = [("24 h (default)", 24 * 60), ("30 min", 30)];
    for (idle_name, idle_minutes) in idles {
        for gap_seconds in [1, 10, 60] {
            let clock = ManualClock::starting_now();
            let memory = MemoryStore::builder().clock(clock.clone()).build();
            let counting = Arc::new(CountingStore::new(Arc::new(memory)));
            let expiry = Expiry::default().with_idle(time::Duration::minutes(idle_minutes));
            let config = SessionConfig::new()
                .with_clock(clock.clone())
                .with_expiry(expiry);
            let app = apps::ours(Arc::clone(&counting) as Arc<dyn Store>, config);
            let visitors = visitors(&app, VISITORS).await?;

            let before: Calls = counting.calls();
            let step = time::Duration::seconds(gap_seconds) / VISITORS as f64;
            for _ in 0..EACH {
                for visitor in &visitors {
                    clock.advance(step);
                    request(&app, "/read", visitor.as_ref()).await?;
                }
            }
            let writes = counting.calls().since(before).writes();
            let share = writes as f64 / (VISITORS * EACH) as f64;
            table.row(vec![
                idle_name.to_owned(),
                format!("{gap_seconds} s"),
                writes.to_string(),
                format!("{:.1}%", share * 100.0),
                verdict(share < 0.1),
            ]);
        }
    }
    table.note(
        "100 visitors make 100 read-only requests each on a simulated clock. A read-only \
         request writes a touch once the expiry can move by touch_after (default a quarter \
         of the idle timeout), so the share is about gap / touch_after.",
    );
    Ok(table)
}

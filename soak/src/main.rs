//! The soak: the `sessionctl demo` under a bounded load, on each store, while
//! the store's server is stopped and started twice.
//!
//! For every store it starts the store's server when it has one (a
//! throw-away PostgreSQL from `integration-tests`, a Redis that syncs its
//! append-only file on every write), starts the demo as a child process,
//! and lets simulated visitors log in and count visits for a fixed time.
//! Meanwhile the server is stopped and started twice. Then it checks that
//! every visitor is still logged in with every acknowledged visit counted,
//! that the demo neither died nor panicked, and that its resident memory
//! stayed flat. It prints one Markdown table; the exit code is non-zero
//! when a check failed.
//!
//! ```text
//! cargo build --release -p sessionctl -p soak
//! target/release/soak --seconds 30 --clients 16
//! ```

mod backend;
mod demo;
mod load;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::backend::Backend;
use crate::demo::Demo;
use crate::load::Visitor;

#[derive(Parser)]
#[command(about = "Soak the session demo on each store through server restarts")]
struct Args {
    /// Seconds of load per store.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Simulated visitors, each sending one request at a time.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Pause after each request of a visitor, in milliseconds; with
    /// `clients` it bounds the load.
    #[arg(long, default_value_t = 10)]
    pause_ms: u64,
    /// Stores to soak, comma-separated.
    #[arg(
        long,
        default_value = "memory,sqlite,postgres,redis",
        value_delimiter = ','
    )]
    stores: Vec<String>,
    /// The `sessionctl` binary to run.
    #[arg(long, default_value = "target/release/sessionctl")]
    demo: PathBuf,
    /// Where each store's demo log is kept.
    #[arg(long, default_value = "target/soak")]
    logs: PathBuf,
}

/// What one store's soak measured.
#[derive(Debug, Default)]
struct Outcome {
    store: String,
    statuses: BTreeMap<String, u64>,
    outages: Vec<(Duration, Duration)>,
    acked_writes: u64,
    lost_writes: u64,
    lost_logins: u64,
    final_failures: usize,
    rss_warm_kib: u64,
    rss_peak_kib: u64,
    rss_end_kib: u64,
    panics: Vec<String>,
    died: bool,
    warn_lines: usize,
    error_lines: usize,
}

impl Outcome {
    /// The memory at the end may exceed the memory after warm-up by a
    /// fifth or 8 MiB, whichever is more; allocators keep some slack.
    fn rss_flat(&self) -> bool {
        let slack = (self.rss_warm_kib / 5).max(8 * 1024);
        self.rss_end_kib <= self.rss_warm_kib + slack
    }

    fn passed(&self) -> bool {
        self.lost_writes == 0
            && self.lost_logins == 0
            && self.final_failures == 0
            && self.panics.is_empty()
            && !self.died
            && self.rss_flat()
            && self.acked_writes > 0
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if !args.demo.is_file() {
        eprintln!(
            "no demo binary at {}: run `cargo build --release -p sessionctl` first",
            args.demo.display()
        );
        return ExitCode::FAILURE;
    }

    let mut outcomes = Vec::new();
    for store in &args.stores {
        eprintln!("soak: {store} for {} s ...", args.seconds);
        match soak(&args, store).await {
            Ok(outcome) => outcomes.push(outcome),
            Err(error) => {
                eprintln!("soak: {store} could not run: {error}");
                return ExitCode::FAILURE;
            }
        }
    }

    print_report(&args, &outcomes);
    if outcomes.iter().all(Outcome::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn soak(args: &Args, store: &str) -> std::io::Result<Outcome> {
    let logs = args.logs.join(store);
    std::fs::create_dir_all(&logs)?;
    let backend = Backend::start(store).await?;
    let mut demo = Demo::start(&args.demo, &backend.url(), &logs)?;

    let length = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let until = started + length;
    let pause = Duration::from_millis(args.pause_ms);
    let visitors: Vec<_> = (0..args.clients)
        .map(|n| {
            let mut visitor = Visitor::new(n, &demo.base_url());
            tokio::spawn(async move {
                visitor.run(until, pause).await;
                visitor
            })
        })
        .collect();
    let sampler = tokio::spawn(sample_rss(demo.pid(), started, until));

    let outages = if backend.has_server() {
        outages(&backend, started, length).await?
    } else {
        Vec::new()
    };

    let mut outcome = Outcome {
        store: store.to_owned(),
        outages,
        ..Outcome::default()
    };
    for visitor in visitors {
        let mut visitor = visitor.await.map_err(std::io::Error::other)?;
        check_after(&mut visitor, &mut outcome).await;
    }

    let samples = sampler.await.map_err(std::io::Error::other)?;
    let warm_at = length / 4;
    outcome.rss_warm_kib = samples
        .iter()
        .find(|(at, _)| *at >= warm_at)
        .map_or(0, |(_, rss)| *rss);
    outcome.rss_peak_kib = samples.iter().map(|(_, rss)| *rss).max().unwrap_or(0);
    outcome.rss_end_kib = samples.last().map_or(0, |(_, rss)| *rss);

    outcome.died = !demo.running();
    demo.stop();
    outcome.panics = demo.panics();
    outcome.warn_lines = demo.log_lines("WARN");
    outcome.error_lines = demo.log_lines("ERROR");
    Ok(outcome)
}

/// Stops and starts the server twice, at a fifth and three fifths of the
/// run, each time for a tenth of it (2 to 10 s); returns when each outage
/// began and how long the server was unreachable.
async fn outages(
    backend: &Backend,
    started: Instant,
    length: Duration,
) -> std::io::Result<Vec<(Duration, Duration)>> {
    let down = (length / 10).clamp(Duration::from_secs(2), Duration::from_secs(10));
    let mut outages = Vec::new();

    for at in [length / 5, length * 3 / 5] {
        tokio::time::sleep_until((started + at).into()).await;
        let stopping = Instant::now();
        backend.stop().await?;
        tokio::time::sleep(down).await;
        backend.resume().await?;
        outages.push((stopping - started, stopping.elapsed()));
    }
    Ok(outages)
}

/// Adds up what a visitor saw, then checks with one more visit that its
/// login and every acknowledged visit are still there.
async fn check_after(visitor: &mut Visitor, outcome: &mut Outcome) {
    let acked = visitor.tally.acked_visits;
    let body = visitor.visit().await;

    let intact = body.is_some_and(|body| {
        let visits = body["visits"].as_u64().unwrap_or(0);
        visits > acked && body["user"].as_str() == Some(visitor.name())
    });
    if !intact {
        outcome.final_failures += 1;
    }

    let tally = &visitor.tally;
    for (status, count) in &tally.statuses {
        *outcome.statuses.entry(status.clone()).or_default() += count;
    }
    outcome.acked_writes += tally.acked_writes;
    outcome.lost_writes += tally.lost_writes;
    outcome.lost_logins += tally.lost_logins;
}

/// The demo's resident memory four times a second until `until`.
async fn sample_rss(pid: u32, started: Instant, until: Instant) -> Vec<(Duration, u64)> {
    let mut samples = Vec::new();

    while Instant::now() < until {
        if let Some(rss) = rss_kib(pid) {
            samples.push((started.elapsed(), rss));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    samples
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn print_report(args: &Args, outcomes: &[Outcome]) {
    println!(
        "{} s per store, {} visitors, {} ms pause after each request\n",
        args.seconds, args.clients, args.pause_ms
    );
    println!(
        "| store | responses by status | outages (start+length, s) | acked writes | \
         lost writes | lost logins | final check | RSS MiB (warm/peak/end) | \
         panics | demo WARN/ERROR lines | result |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");

    for o in outcomes {
        let statuses: Vec<String> = o
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let outages: Vec<String> = o
            .outages
            .iter()
            .map(|(at, len)| format!("{:.1}+{:.1}", at.as_secs_f64(), len.as_secs_f64()))
            .collect();
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1}/{:.1}/{:.1} | {} | {}/{} | {} |",
            o.store,
            statuses.join(", "),
            if outages.is_empty() {
                "none (no server)".to_owned()
            } else {
                outages.join(", ")
            },
            o.acked_writes,
            o.lost_writes,
            o.lost_logins,
            if o.final_failures == 0 {
                "all intact".to_owned()
            } else {
                format!("{} failed", o.final_failures)
            },
            mib(o.rss_warm_kib),
            mib(o.rss_peak_kib),
            mib(o.rss_end_kib),
            if o.died {
                "DIED".to_owned()
            } else {
                o.panics.len().to_string()
            },
            o.warn_lines,
            o.error_lines,
            if o.passed() { "pass" } else { "FAIL" },
        );
    }
    for o in outcomes {
        for panic in &o.panics {
            println!("\n{} panic: {panic}", o.store);
        }
    }
}

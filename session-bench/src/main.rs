//! `session-bench`: runs the benchmarks and prints their tables.
//!
//! `cargo run --release -p session-bench -- all` runs everything; see the
//! library's docs for what each part measures.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use session_bench::suite::{self, Plan, StoreKind};
use session_bench::{http, inprocess, memory, report, stores};

/// Benchmarks of the session stores and middleware, as ratios measured
/// in one run.
#[derive(Debug, Parser)]
#[command(name = "session-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every benchmark, one after another.
    All(Scale),
    /// Each store against its raw client.
    Stores {
        /// The stores to measure (default: all).
        #[arg(long, value_delimiter = ',')]
        only: Vec<StoreKind>,
        #[command(flatten)]
        scale: Scale,
    },
    /// The middleware in process: overhead, throughput, store calls.
    InProcess(Scale),
    /// The middleware over loopback HTTP, with and without sessions.
    Http(Scale),
    /// The memory store's resident memory for many sessions.
    Memory(Scale),
    /// Internal: the HTTP server child.
    #[command(hide = true)]
    ServeHttp {
        #[arg(long, value_enum)]
        app: http::App,
        #[arg(long)]
        max_seconds: u64,
    },
    /// Internal: one app's read-and-update requests in a loop, for a
    /// profiler to attach to.
    #[command(hide = true)]
    HotLoop {
        #[arg(long, value_enum)]
        app: inprocess::AppKind,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Internal: the resident-memory child.
    #[command(hide = true)]
    MemoryChild {
        #[arg(long)]
        sessions: u64,
        #[arg(long, value_enum)]
        layout: memory::Layout,
    },
}

/// How much work a run does.
#[derive(Debug, Clone, Copy, Args)]
struct Scale {
    /// A short smoke run: a tenth of the work, for checking that every
    /// part works, not for figures.
    #[arg(long)]
    quick: bool,
    /// Records per side, round and concurrency in the store comparison.
    #[arg(long, default_value_t = 1_000)]
    ops: usize,
    /// Rounds of each comparison.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Seconds per round of the HTTP comparison.
    #[arg(long, default_value_t = 4)]
    http_seconds: u64,
    /// Live sessions for the resident-memory figure.
    #[arg(long, default_value_t = 1_000_000)]
    sessions: u64,
}

impl Scale {
    fn store_settings(&self) -> stores::Settings {
        stores::Settings {
            ops: if self.quick { 200 } else { self.ops },
            rounds: if self.quick { 1 } else { self.rounds },
            ..stores::Settings::default()
        }
    }

    fn in_process(&self) -> inprocess::Settings {
        let defaults = inprocess::Settings::default();
        if self.quick {
            return inprocess::Settings {
                requests: 300,
                rounds: 1,
                throughput_time: Duration::from_millis(300),
            };
        }
        inprocess::Settings {
            rounds: self.rounds.max(1),
            ..defaults
        }
    }

    fn http(&self) -> http::Settings {
        http::Settings {
            round_time: Duration::from_secs(if self.quick { 1 } else { self.http_seconds }),
            rounds: if self.quick {
                1
            } else {
                self.rounds.div_ceil(2)
            },
            ..http::Settings::default()
        }
    }

    fn sessions(&self) -> u64 {
        if self.quick {
            self.sessions / 10
        } else {
            self.sessions
        }
    }

    fn round_trip_ops(&self) -> usize {
        if self.quick {
            50
        } else {
            500
        }
    }
}

fn plan(command: &Command) -> Option<Plan> {
    let empty = |scale: &Scale| Plan {
        stores: Vec::new(),
        store_settings: scale.store_settings(),
        round_trip_ops: scale.round_trip_ops(),
        in_process: None,
        http: None,
        memory_sessions: None,
    };

    let plan = match command {
        Command::All(scale) => Plan {
            stores: StoreKind::ALL.to_vec(),
            in_process: Some(scale.in_process()),
            http: Some(scale.http()),
            memory_sessions: Some(scale.sessions()),
            ..empty(scale)
        },
        Command::Stores { only, scale } => Plan {
            stores: if only.is_empty() {
                StoreKind::ALL.to_vec()
            } else {
                only.clone()
            },
            ..empty(scale)
        },
        Command::InProcess(scale) => Plan {
            in_process: Some(scale.in_process()),
            ..empty(scale)
        },
        Command::Http(scale) => Plan {
            http: Some(scale.http()),
            ..empty(scale)
        },
        Command::Memory(scale) => Plan {
            memory_sessions: Some(scale.sessions()),
            ..empty(scale)
        },
        Command::ServeHttp { .. } | Command::MemoryChild { .. } | Command::HotLoop { .. } => {
            return None
        }
    };
    Some(plan)
}

fn main() -> ExitCode {
    let cli = Cli::parse();

    let result = match &cli.command {
        Command::ServeHttp { app, max_seconds } => {
            http::serve(*app, Duration::from_secs(*max_seconds))
        }
        Command::MemoryChild { sessions, layout } => memory::child(*sessions, *layout),
        Command::HotLoop { app, seconds } => {
            inprocess::hot_loop(*app, Duration::from_secs(*seconds))
        }
        command => {
            let Some(plan) = plan(command) else {
                return ExitCode::FAILURE;
            };
            bench(&plan)
        }
    };

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("session-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn bench(plan: &Plan) -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("## session-bench {}\n", args.join(" "));
    println!("- machine at start: {}", report::machine());
    println!(
        "- build: {}\n",
        if cfg!(debug_assertions) {
            "debug (figures are not meaningful)"
        } else {
            "release"
        }
    );

    suite::run(plan)?;

    println!("- machine at end: {}", report::machine());
    Ok(())
}

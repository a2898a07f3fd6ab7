//! The sections of a run, each printing its tables as it finishes.

use std::collections::HashMap;
use std::io;

use crate::backends::{self, Pair, Ping};
use crate::proxy::CountingProxy;
use crate::report::{verdict, Table};
use crate::servers::{PostgresDb, RedisServer};
use crate::stores::{self, Settings, HEADER};
use crate::workload::Op;
use crate::{http, inprocess, memory};

/// The stores a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// `MemoryStore` against a bare moka cache.
    Memory,
    /// `SqliteStore` on a file against prepared statements.
    Sqlite,
    /// `PostgresStore` against prepared statements.
    Postgres,
    /// `RedisStore` against plain commands.
    Redis,
}

impl StoreKind {
    /// Every store.
    pub const ALL: [StoreKind; 4] = [Self::Memory, Self::Sqlite, Self::Postgres, Self::Redis];
}

/// Everything one run of the benchmarks does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The stores compared with their raw clients.
    pub stores: Vec<StoreKind>,
    /// How much work each store comparison does.
    pub store_settings: Settings,
    /// Round trips counted per operation.
    pub round_trip_ops: usize,
    /// The in-process middleware benchmarks, if run.
    pub in_process: Option<inprocess::Settings>,
    /// The HTTP comparison, if run.
    pub http: Option<http::Settings>,
    /// Sessions for the resident-memory figure, if run.
    pub memory_sessions: Option<u64>,
}

fn print(table: &Table) {
    println!("{table}");
}

/// Runs the plan, printing each table as soon as it is complete, and
/// returns them all.
///
/// The store comparisons run on a single-threaded runtime: the client
/// then has one core and the server the other, and a task never waits
/// for a wake-up from another thread, which on a busy machine made
/// single-task latencies depend on where the scheduler put each
/// connection's driver. The middleware benchmarks run on a runtime with
/// one worker per core, since they measure how requests scale across
/// threads.
///
/// # Errors
///
/// When a runtime cannot be built.
pub fn run(plan: &Plan) -> io::Result<Vec<Table>> {
    let mut tables = Vec::new();

    if !plan.stores.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        for table in runtime.block_on(store_section(plan)) {
            print(&table);
            tables.push(table);
        }
    }

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(middleware_sections(plan, &mut tables));
    Ok(tables)
}

async fn middleware_sections(plan: &Plan, tables: &mut Vec<Table>) {
    let mut keep = |table: Table| {
        print(&table);
        tables.push(table);
    };

    if let Some(settings) = plan.in_process {
        let tables = [
            inprocess::store_calls().await,
            inprocess::touch_throttle().await,
        ];
        for table in tables {
            keep(table.unwrap_or_else(|error| failed("in-process store calls", &error)));
        }
        match inprocess::overhead(settings).await {
            Ok(tables) => tables.into_iter().for_each(&mut keep),
            Err(error) => keep(failed("in-process overhead", &error)),
        }
    }
    if let Some(settings) = plan.http {
        let table = http::compare(settings).await;
        keep(table.unwrap_or_else(|error| failed("HTTP", &error.to_string())));
    }
    if let Some(sessions) = plan.memory_sessions {
        let table = tokio::task::spawn_blocking(move || memory::compare(sessions)).await;
        let table = match table {
            Ok(Ok(table)) => table,
            Ok(Err(error)) => failed("memory", &error.to_string()),
            Err(error) => failed("memory", &error.to_string()),
        };
        keep(table);
    }
}

fn failed(what: &str, error: &str) -> Table {
    let mut table = Table::new(format!("{what}: not measured"), &["error"]);
    table.row(vec![error.to_owned()]);
    table
}

/// The tables of the store section: throughput and latency against the
/// raw clients, and round trips per operation.
async fn store_section(plan: &Plan) -> Vec<Table> {
    let settings = plan.store_settings;
    let mut table = Table::new("Stores against their raw clients", &HEADER);
    let mut trips = Table::new(
        "Round trips per operation (one task, counted by a loopback proxy)",
        &[
            "store",
            "side",
            "create",
            "load",
            "save",
            "touch",
            "delete",
            "create: store's own",
        ],
    );
    let mut server_time = None;

    for kind in &plan.stores {
        let outcome = match kind {
            StoreKind::Memory => {
                let pair = backends::memory();
                let results = stores::compare(pair.store, pair.raw, settings).await;
                stores::add_rows(&mut table, "memory", &results, None);
                Ok(())
            }
            StoreKind::Sqlite => sqlite(&mut table, settings).await,
            StoreKind::Postgres => postgres(&mut table, &mut trips, plan).await,
            StoreKind::Redis => redis(&mut table, &mut trips, &mut server_time, plan).await,
        };
        if let Err(error) = outcome {
            table.note(format!("{kind:?}: not measured: {error}"));
        }
    }

    if !trips.is_empty() {
        trips.note(
            "Every trip on the wire is counted, the connection pool's too: sqlx pings an \
             idle connection before lending it (test_before_acquire, on by default) and \
             always pings one given back (sqlx 0.8, in the background). The raw client \
             sends one statement or command per operation, so the store's own trips are \
             its count less the raw client's extra ones.",
        );
    }
    table.note(format!(
        "One client thread (the server has the other core). \
         {} records per side, round and concurrency, {} rounds; within a round the store's \
         and the raw client's phases of each operation run back to back in alternating \
         order. Throughput and latency are over all rounds; store/raw is the median of \
         the rounds' ratios. Targets apply to load, save and touch.",
        settings.ops, settings.rounds
    ));
    let mut tables = vec![table];
    if !trips.is_empty() {
        tables.push(trips);
    }
    tables.extend(server_time);
    tables
}

/// What Redis spent per command during the comparison: the store's
/// scripts and reads against the raw client's plain commands.
fn redis_server_time(
    before: &HashMap<String, (u64, u64)>,
    after: &HashMap<String, (u64, u64)>,
) -> Table {
    let mut table = Table::new(
        "Redis server time per command during the comparison (INFO commandstats)",
        &["command", "sent by", "calls", "µs per call"],
    );
    let senders = [
        (
            "evalsha",
            "store: create, save, touch, delete (whole script)",
        ),
        ("set", "raw: create, save; store scripts"),
        ("get", "raw: load; store: load, and in scripts"),
        ("pexpire", "raw: touch; store scripts"),
        ("setrange", "store scripts (touch)"),
        ("del", "raw: delete; store scripts"),
    ];
    for (command, sender) in senders {
        let (calls, usec) = after.get(command).copied().unwrap_or_default();
        let (calls_before, usec_before) = before.get(command).copied().unwrap_or_default();
        let calls = calls.saturating_sub(calls_before);
        let usec = usec.saturating_sub(usec_before);
        if calls > 0 {
            table.row(vec![
                command.to_uppercase(),
                sender.to_owned(),
                calls.to_string(),
                format!("{:.2}", usec as f64 / calls as f64),
            ]);
        }
    }
    table.note("Commands a script calls are counted both on their own line and in EVALSHA.");
    table
}

async fn sqlite(table: &mut Table, settings: Settings) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;

    for (name, ping) in [
        ("sqlite file", Ping::Default),
        ("sqlite file, no ping", Ping::Off),
    ] {
        let pair = backends::sqlite(dir.path(), ping).await?;
        let results = stores::compare(pair.store, pair.raw, settings).await;
        stores::add_rows(table, name, &results, Some(0.85));
    }
    table.note(format!(
        "SQLite files in {} (WAL, synchronous=NORMAL).",
        std::env::temp_dir().display()
    ));
    Ok(())
}

async fn postgres(table: &mut Table, trips: &mut Table, plan: &Plan) -> Result<(), String> {
    let db = PostgresDb::create().await?;
    let upstream = db.socket_addr().map_err(|error| error.to_string())?;

    for (name, ping) in [
        ("postgres", Ping::Default),
        ("postgres, no ping", Ping::Off),
    ] {
        let pair = backends::postgres(db.options(), ping).await?;
        let results = stores::compare(pair.store, pair.raw, plan.store_settings).await;
        stores::add_rows(table, name, &results, Some(0.85));

        let proxy = CountingProxy::start(upstream)
            .await
            .map_err(|error| error.to_string())?;
        let through = db.options().host("127.0.0.1").port(proxy.addr().port());
        let pair = backends::postgres(through, ping).await?;
        add_trips(trips, name, &proxy, pair, plan.round_trip_ops).await;
    }
    table.note(format!("PostgreSQL from {}.", db.source()));
    Ok(())
}

async fn redis(
    table: &mut Table,
    trips: &mut Table,
    server_time: &mut Option<Table>,
    plan: &Plan,
) -> Result<(), String> {
    let server = tokio::task::spawn_blocking(RedisServer::find)
        .await
        .map_err(|error| error.to_string())??;
    let upstream = server.socket_addr().map_err(|error| error.to_string())?;

    let direct = backends::redis_info_at(server.url(), upstream)?;
    let stats_before = backends::redis_command_stats(direct.clone()).await?;
    let pair = backends::redis(direct.clone()).await?;
    let results = stores::compare(pair.store, pair.raw, plan.store_settings).await;
    stores::add_rows(table, "redis", &results, Some(0.9));
    let stats_after = backends::redis_command_stats(direct).await?;
    *server_time = Some(redis_server_time(&stats_before, &stats_after));

    let proxy = CountingProxy::start(upstream)
        .await
        .map_err(|error| error.to_string())?;
    let pair = backends::redis(backends::redis_info_at(server.url(), proxy.addr())?).await?;
    add_trips(trips, "redis", &proxy, pair, plan.round_trip_ops).await;

    table.note(format!("Redis from {}.", server.source()));
    Ok(())
}

async fn add_trips(trips: &mut Table, name: &str, proxy: &CountingProxy, pair: Pair, ops: usize) {
    let counted = stores::round_trips(proxy, pair.store, pair.raw, ops).await;

    // The raw client sends one statement or command per operation, so
    // what it needs beyond one trip is the pool's (sqlx pings idle
    // connections); the store's own trips are its count less that.
    let pool_extra = counted
        .iter()
        .find(|(op, _, _)| *op == Op::Create)
        .map_or(0.0, |(_, _, raw)| raw - 1.0);
    for (side, pick) in [("store", 0), ("raw", 1)] {
        let mut cells = vec![name.to_owned(), side.to_owned()];
        let mut create = 0.0;
        for (op, store, raw) in &counted {
            let value = if pick == 0 { *store } else { *raw };
            if *op == Op::Create {
                create = value;
            }
            cells.push(format!("{value:.2}"));
        }
        cells.push(if pick == 0 {
            let own = create - pool_extra;
            format!("{own:.2}: {}", verdict((own - 1.0).abs() < 0.05))
        } else {
            String::new()
        });
        trips.row(cells);
    }
}

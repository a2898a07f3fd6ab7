//! Each store against its raw client: throughput, latency, round trips.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::proxy::CountingProxy;
use crate::report::{latency, rate, ratio, verdict, Table};
use crate::stats::{median, Samples};
use crate::targets::Target;
use crate::workload::{items, Item, Op};

/// How much work one comparison does.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Records per side and round at each concurrency.
    pub ops: usize,
    /// Rounds; the two sides alternate which goes first in each.
    pub rounds: usize,
    /// Wall time one phase may take before it stops early.
    pub phase_limit: Duration,
    /// The concurrencies measured.
    pub tasks: [usize; 2],
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ops: 1_000,
            rounds: 7,
            phase_limit: Duration::from_secs(20),
            tasks: [1, 64],
        }
    }
}

/// One operation at one concurrency, both sides.
#[derive(Debug, Clone)]
pub struct OpResult {
    /// The operation.
    pub op: Op,
    /// Concurrent tasks.
    pub tasks: usize,
    /// The store's samples.
    pub store: Samples,
    /// The raw client's samples.
    pub raw: Samples,
    /// Store throughput over raw throughput, in each round.
    pub round_ratios: Vec<f64>,
}

impl OpResult {
    /// The median of the rounds' store/raw throughput ratios: a burst of
    /// load from elsewhere on the machine spoils one round, not the
    /// figure.
    #[must_use]
    pub fn ratio(&self) -> f64 {
        median(&self.round_ratios)
    }
}

/// Runs `op` on `items[..count]` from `tasks` tasks; returns the samples
/// and how many items were done before the time limit.
pub async fn phase(
    target: Arc<dyn Target>,
    op: Op,
    items: Arc<Vec<Item>>,
    count: usize,
    tasks: usize,
    limit: Duration,
) -> (Samples, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + limit;

    let mut running = JoinSet::new();
    for _ in 0..tasks {
        let (target, items, next) = (Arc::clone(&target), Arc::clone(&items), Arc::clone(&next));
        running.spawn(async move {
            let mut samples = Samples::new();
            // The deadline is checked before an item is taken, so every
            // item taken is done and the done ones are a prefix.
            while Instant::now() < deadline {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= count {
                    break;
                }
                let begun = Instant::now();
                match target.run(op, &items[index]).await {
                    Ok(()) => samples.record(begun.elapsed()),
                    Err(reason) => samples.fail(|| reason),
                }
            }
            samples
        });
    }

    let mut all = gather(running).await;
    all.add_wall(started.elapsed());
    (all, next.load(Ordering::SeqCst).min(count))
}

/// Waits for every task and merges their samples; a task that panicked
/// counts as a failure.
pub async fn gather(mut running: JoinSet<Samples>) -> Samples {
    let mut all = Samples::new();
    while let Some(done) = running.join_next().await {
        match done {
            Ok(samples) => all.merge(samples),
            Err(error) => all.fail(|| format!("a task panicked: {error}")),
        }
    }
    all
}

/// Runs every operation on both sides at each concurrency.
///
/// Within a round the store's and the raw client's phases of one
/// operation run back to back, in alternating order, on separate keys,
/// so that a change in the machine's load hits both alike.
pub async fn compare(
    store: Arc<dyn Target>,
    raw: Arc<dyn Target>,
    settings: Settings,
) -> Vec<OpResult> {
    let mut results = Vec::new();

    for tasks in settings.tasks {
        // Fill pools, load scripts and prepare statements first.
        let warm = Settings {
            ops: settings.ops.min(tasks * 10).max(100),
            rounds: 1,
            ..settings
        };
        run_rounds(&store, &raw, tasks, warm).await;

        let rounds = run_rounds(&store, &raw, tasks, settings).await;
        for (index, op) in Op::ALL.into_iter().enumerate() {
            results.push(OpResult {
                op,
                tasks,
                store: rounds.store[index].clone(),
                raw: rounds.raw[index].clone(),
                round_ratios: rounds.ratios[index].clone(),
            });
        }
    }
    results
}

/// Both sides' samples per operation, and each round's ratios.
struct Rounds {
    store: Vec<Samples>,
    raw: Vec<Samples>,
    ratios: Vec<Vec<f64>>,
}

async fn run_rounds(
    store: &Arc<dyn Target>,
    raw: &Arc<dyn Target>,
    tasks: usize,
    settings: Settings,
) -> Rounds {
    let mut by_side = [vec![Samples::new(); 5], vec![Samples::new(); 5]];
    let mut ratios = vec![Vec::new(); 5];

    for round in 0..settings.rounds {
        let sides = [Arc::clone(store), Arc::clone(raw)];
        let data = [Arc::new(items(settings.ops)), Arc::new(items(settings.ops))];
        let mut counts = [settings.ops; 2];

        for (index, op) in Op::ALL.into_iter().enumerate() {
            let first = (round + index) % 2;
            let mut rates = [0.0; 2];
            for side in [first, 1 - first] {
                let (samples, done) = phase(
                    Arc::clone(&sides[side]),
                    op,
                    Arc::clone(&data[side]),
                    counts[side],
                    tasks,
                    settings.phase_limit,
                )
                .await;
                counts[side] = done;
                rates[side] = samples.summary().per_second;
                by_side[side][index].merge(samples);
            }
            ratios[index].push(rates[0] / rates[1]);
        }
    }
    let [store, raw] = by_side;
    Rounds { store, raw, ratios }
}

/// Appends one store's rows to the comparison table.
pub fn add_rows(table: &mut Table, store: &str, results: &[OpResult], min_ratio: Option<f64>) {
    for result in results {
        let (s, r) = (result.store.summary(), result.raw.summary());
        let judged = matches!(result.op, Op::Load | Op::Save | Op::Touch);
        let target = match min_ratio {
            Some(min) if judged => format!("≥ {min:.2}: {}", verdict(result.ratio() >= min)),
            _ => String::new(),
        };
        let failures = s.failures + r.failures;
        let mut cells = vec![
            store.to_owned(),
            result.tasks.to_string(),
            result.op.name().to_owned(),
            rate(s.per_second),
            latency(s.p50),
            latency(s.p99),
            rate(r.per_second),
            latency(r.p50),
            latency(r.p99),
            ratio(result.ratio()),
            target,
        ];
        if failures > 0 {
            let why = result
                .store
                .first_failure()
                .or(result.raw.first_failure())
                .unwrap_or_default();
            cells[10] = format!("{failures} FAILED ({why})");
        }
        table.row(cells);
    }
}

/// The header of the comparison table.
pub const HEADER: [&str; 11] = [
    "store",
    "tasks",
    "op",
    "store ops/s",
    "store p50",
    "store p99",
    "raw ops/s",
    "raw p50",
    "raw p99",
    "store/raw (median of rounds)",
    "target",
];

/// Round trips per operation of each side, counted through `proxy` with
/// one task, after a warm-up that prepares statements and loads scripts.
pub async fn round_trips(
    proxy: &CountingProxy,
    store: Arc<dyn Target>,
    raw: Arc<dyn Target>,
    ops: usize,
) -> Vec<(Op, f64, f64)> {
    let limit = Duration::from_secs(30);
    let mut per_side = [Vec::new(), Vec::new()];

    for (side, target) in [store, raw].into_iter().enumerate() {
        let warm = Arc::new(items(20));
        for op in Op::ALL {
            phase(
                Arc::clone(&target),
                op,
                Arc::clone(&warm),
                warm.len(),
                1,
                limit,
            )
            .await;
        }

        let data = Arc::new(items(ops));
        let mut count = ops;
        for op in Op::ALL {
            let before = proxy.round_trips();
            let (samples, done) =
                phase(Arc::clone(&target), op, Arc::clone(&data), count, 1, limit).await;
            let trips = proxy.round_trips() - before;
            count = done;
            let per_op = trips as f64 / samples.count().max(1) as f64;
            per_side[side].push(per_op);
        }
    }

    Op::ALL
        .into_iter()
        .zip(per_side[0].iter().zip(&per_side[1]))
        .map(|(op, (&store, &raw))| (op, store, raw))
        .collect()
}

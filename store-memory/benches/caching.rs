//! Load (and save) throughput through `CachingStore` next to the bare
//! SQLite store it fronts, on one database file, with the ratio printed
//! at the end.
//!
//! `cargo bench -p store-memory --bench caching -- --warm-up-time 1
//! --measurement-time 3`

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use serde_json::json;
use session_core::time::{Duration as TimeDuration, OffsetDateTime};
use session_core::{truncate_to_millis, Data, Id, Record, SaveOutcome, StorageKey, Store};
use store_memory::{CachingStore, MemoryStore};
use store_sqlite::{PoolConfig, SqliteStore};
use tokio::runtime::Runtime;

/// Sessions the loads cycle through: enough that SQLite does not answer
/// from one hot page, few enough to stay in its page cache like a live
/// working set.
const SESSIONS: usize = 1_000;

/// Iterations and time measured by criterion for one benchmark, summed
/// over all its samples, so the ratio comes from the same run.
#[derive(Default)]
struct Tally {
    iters: AtomicU64,
    nanos: AtomicU64,
}

impl Tally {
    fn add(&self, iters: u64, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.iters.fetch_add(iters, Ordering::Relaxed);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Operations per second, if anything was measured.
    fn per_second(&self) -> Option<f64> {
        let iters = self.iters.load(Ordering::Relaxed);
        let nanos = self.nanos.load(Ordering::Relaxed);
        // Counts stay far below 2^52, where f64 is exact.
        #[allow(clippy::cast_precision_loss)]
        (nanos > 0).then(|| iters as f64 * 1e9 / nanos as f64)
    }
}

/// The stores under test and what they hold.
struct Setup {
    bare: SqliteStore,
    cached: CachingStore<MemoryStore, SqliteStore>,
    keys: Vec<StorageKey>,
    now: OffsetDateTime,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let config = PoolConfig::new().with_max_connections(4);
    let bare = SqliteStore::connect_with(&url, &config)
        .await
        .expect("open the database file");
    bare.migrate().await.expect("migrate");

    let now = truncate_to_millis(OffsetDateTime::now_utc());
    let mut keys = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let record = session(now, i);
        bare.create(&record, now).await.expect("seed a session");
        keys.push(record.key);
    }

    let cached = CachingStore::new(MemoryStore::new(), bare.clone());
    Setup {
        bare,
        cached,
        keys,
        now,
        _dir: dir,
    }
}

/// A session of typical size: a user, a CSRF token, a small cart.
fn session(now: OffsetDateTime, i: usize) -> Record {
    let data = json!({
        "user_id": i,
        "csrf": "k3J9x0Qe7WmYb2Lr5TnVa8Hc",
        "cart": [{ "sku": "A-100", "qty": 2 }, { "sku": "B-7", "qty": 1 }],
    });
    Record {
        key: Id::random().storage_key(),
        data: Data::try_from(data).unwrap_or_default(),
        version: 1,
        created_at: now,
        expires_at: now + TimeDuration::hours(6),
        deadline: now + TimeDuration::days(1),
        principal: Some(format!("user{i}")),
        expiry: None,
    }
}

/// Times `iters` loads cycling through the seeded sessions.
async fn loads(store: &impl Store, setup: &Setup, iters: u64) -> Duration {
    let started = Instant::now();
    for i in 0..iters {
        let key = &setup.keys[(i % SESSIONS as u64) as usize];
        let loaded = store.load(key, setup.now).await.expect("load");
        black_box(loaded.expect("a seeded session loads"));
    }
    started.elapsed()
}

/// Times `iters` versioned saves of one session, each based on the last.
async fn saves(store: &impl Store, setup: &Setup, iters: u64) -> Duration {
    let mut record = session(setup.now, 0);
    store.create(&record, setup.now).await.expect("create");

    let started = Instant::now();
    for i in 0..iters {
        let expected = record.version;
        record.version += 1;
        record.data.insert("step".to_owned(), json!(i));
        let outcome = store.save(&record, expected, setup.now).await;
        assert_eq!(outcome.expect("save"), SaveOutcome::Saved);
    }
    started.elapsed()
}

fn main() {
    let runtime = Runtime::new().expect("start a tokio runtime");
    let setup = runtime.block_on(setup());
    let setup = &setup;
    let tallies: [Tally; 4] = Default::default();
    let [bare_load, cached_load, bare_save, cached_save] = &tallies;

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("load");
    measure(&mut group, &runtime, "sqlite", bare_load, |iters| {
        loads(&setup.bare, setup, iters)
    });
    measure(
        &mut group,
        &runtime,
        "caching_sqlite",
        cached_load,
        |iters| loads(&setup.cached, setup, iters),
    );
    group.finish();

    let mut group = criterion.benchmark_group("save");
    measure(&mut group, &runtime, "sqlite", bare_save, |iters| {
        saves(&setup.bare, setup, iters)
    });
    measure(
        &mut group,
        &runtime,
        "caching_sqlite",
        cached_save,
        |iters| saves(&setup.cached, setup, iters),
    );
    group.finish();
    criterion.final_summary();

    report("load", bare_load, cached_load);
    report("save", bare_save, cached_save);
}

/// Benchmarks `run` (which times the iterations it is given) as `name`,
/// adding what criterion measured to `tally`.
fn measure<F, Fut>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    name: &str,
    tally: &Tally,
    run: F,
) where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Duration>,
{
    group.bench_function(name, |b| {
        b.to_async(runtime).iter_custom(|iters| {
            let timed = run(iters);
            async move {
                let elapsed = timed.await;
                tally.add(iters, elapsed);
                elapsed
            }
        });
    });
}

/// Prints both throughputs and the caching store's ratio to the bare one.
fn report(op: &str, bare: &Tally, cached: &Tally) {
    let (Some(bare), Some(cached)) = (bare.per_second(), cached.per_second()) else {
        return;
    };
    println!(
        "{op} throughput on one SQLite file: bare {bare:.0}/s, caching {cached:.0}/s, \
         ratio caching/bare {:.2}",
        cached / bare
    );
}

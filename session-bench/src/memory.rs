//! Resident memory of the memory store holding many live sessions.
//!
//! Measured in a child process of its own, so nothing else this benchmark
//! allocated is counted: it reads its resident set size from
//! `/proc/self/status`, fills the store, lets the cache finish its pending
//! work, and reads it again.

use std::collections::HashMap;
use std::io;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use session_core::{Clock as _, Record, StorageKey, Store, SystemClock};
use store_memory::MemoryStore;

use crate::report::{verdict, Table};
use crate::workload;

/// What the child keeps, for telling the store's own cost from the
/// records'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// `MemoryStore`, through `Store::create`.
    Store,
    /// The same records in a plain `Vec`, no cache: what the records
    /// themselves take.
    Records,
    /// Records kept serialized (data as JSON text, times as integers) in
    /// a moka cache built like the store's: the data layout proposed for
    /// `MemoryStore`, cache unchanged.
    CompactMoka,
    /// The same compact records in a plain `HashMap`: what is left
    /// without the cache's bookkeeping.
    CompactMap,
}

/// A record as the compact layouts keep it: what `MemoryStore` would
/// need if it kept the data as text and decoded it on load.
#[derive(Debug, Clone)]
// The fields are only held, for the memory they take.
#[allow(dead_code)]
struct Compact {
    data: Box<str>,
    version: u64,
    times: [i64; 3],
    principal: Option<Box<str>>,
    expiry: Option<session_core::Expiry>,
}

impl From<&Record> for Compact {
    fn from(record: &Record) -> Self {
        Self {
            data: record.data.as_str().into(),
            version: record.version,
            times: [record.created_at, record.expires_at, record.deadline]
                .map(session_core::to_unix_millis),
            principal: record.principal.as_deref().map(Box::from),
            expiry: record.expiry,
        }
    }
}

/// The resident set size of this process, in KiB.
///
/// # Errors
///
/// When `/proc/self/status` cannot be read or has no `VmRSS` line.
pub fn rss_kib() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other("no VmRSS in /proc/self/status"))
}

fn record(n: u64) -> Record {
    workload::record(n, SystemClock.now())
}

/// Runs in the child: keeps `sessions` records as `layout` says and
/// prints `rss_before_kib=… rss_after_kib=… entries=… seconds=…`.
///
/// # Errors
///
/// When the RSS cannot be read or the store refuses a record.
pub fn child(sessions: u64, layout: Layout) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let before = rss_kib()?;
    let started = Instant::now();

    let (entries, after) = match layout {
        Layout::Store => runtime.block_on(async {
            // Room for all of them: the benchmark is about holding them,
            // not evicting them.
            let store = MemoryStore::builder().max_capacity(sessions * 2).build();
            let now = SystemClock.now();
            for n in 0..sessions {
                store
                    .create(&record(n), now)
                    .await
                    .map_err(io::Error::other)?;
            }
            store.run_pending_tasks().await;
            let after = rss_kib()?;
            Ok::<_, io::Error>((store.entry_count(), after))
        })?,
        Layout::Records => {
            let records: Vec<Record> = (0..sessions).map(record).collect();
            (records.len() as u64, rss_kib()?)
        }
        Layout::CompactMoka => runtime.block_on(async {
            let cache = moka::future::Cache::builder()
                .max_capacity(sessions * 2)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .time_to_live(std::time::Duration::from_secs(3600))
                .build();
            for n in 0..sessions {
                let record = record(n);
                cache
                    .insert(record.key, Arc::new(Compact::from(&record)))
                    .await;
            }
            cache.run_pending_tasks().await;
            Ok::<_, io::Error>((cache.entry_count(), rss_kib()?))
        })?,
        Layout::CompactMap => {
            let map: HashMap<StorageKey, Compact> = (0..sessions)
                .map(|n| {
                    let record = record(n);
                    (record.key, Compact::from(&record))
                })
                .collect();
            (map.len() as u64, rss_kib()?)
        }
    };

    println!(
        "rss_before_kib={before} rss_after_kib={after} entries={entries} seconds={:.1}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What one child reported.
#[derive(Debug, Clone, Copy)]
struct Report {
    before: u64,
    after: u64,
    entries: u64,
    seconds: f64,
}

fn run_child(sessions: u64, layout: Layout) -> io::Result<Report> {
    let name = match layout {
        Layout::Store => "store",
        Layout::Records => "records",
        Layout::CompactMoka => "compact-moka",
        Layout::CompactMap => "compact-map",
    };
    let output = Command::new(std::env::current_exe()?)
        .args([
            "memory-child",
            "--sessions",
            &sessions.to_string(),
            "--layout",
            name,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(io::Error::other(format!("memory child failed: {stderr}")));
    }

    let field = |name: &str| -> Option<f64> {
        text.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
    };
    let report = (|| {
        Some(Report {
            before: field("rss_before_kib")? as u64,
            after: field("rss_after_kib")? as u64,
            entries: field("entries")? as u64,
            seconds: field("seconds")?,
        })
    })();
    report.ok_or_else(|| io::Error::other(format!("memory child said {text:?}")))
}

/// Resident memory for `sessions` live sessions of about 100 bytes of
/// data, in the store and, for comparison, as bare records.
///
/// # Errors
///
/// When a child fails.
pub fn compare(sessions: u64) -> io::Result<Table> {
    let mut table = Table::new(
        format!("Memory store: resident memory for {sessions} live sessions"),
        &[
            "kept in",
            "entries",
            "RSS added",
            "per session",
            "fill time",
            "target < 600 MiB",
        ],
    );

    let layouts = [
        Layout::Store,
        Layout::Records,
        Layout::CompactMoka,
        Layout::CompactMap,
    ];
    for layout in layouts {
        let report = run_child(sessions, layout)?;
        let added = report.after.saturating_sub(report.before);
        let mib = added as f64 / 1024.0;
        let name = match layout {
            Layout::Store => "MemoryStore",
            Layout::Records => "Vec<Record>, no cache (diagnostic)",
            Layout::CompactMoka => "moka, records as JSON text (diagnostic)",
            Layout::CompactMap => "HashMap, records as JSON text (diagnostic)",
        };
        let judged = if layout == Layout::Store {
            verdict(mib < 600.0)
        } else {
            String::new()
        };
        table.row(vec![
            name.to_owned(),
            report.entries.to_string(),
            format!("{mib:.0} MiB"),
            format!("{:.0} B", added as f64 * 1024.0 / sessions.max(1) as f64),
            format!("{:.1} s", report.seconds),
            judged,
        ]);
    }
    table.note(
        "Each line is a separate process: RSS from /proc/self/status before and after \
         filling, with the cache's pending maintenance run. Data per session: the JSON \
         object the store benchmarks use (about 100 bytes as text).",
    );
    Ok(table)
}

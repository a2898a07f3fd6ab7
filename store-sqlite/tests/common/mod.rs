//! Helpers shared by the integration tests: temporary database files,
//! records, and re-running a test binary under other time zones.

#![allow(dead_code, unreachable_pub, unused_macros)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use session_core::time::{Duration, OffsetDateTime};
use session_core::{truncate_to_millis, Data, Id, Record};
use store_sqlite::{PoolConfig, SqliteStore};

/// A directory under the system temp dir, removed with its contents on
/// drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);

        let unique = format!(
            "store-sqlite-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            &Id::random().storage_key().to_hex()[..8],
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A `sqlite://` URL for `name` in this directory, created if missing.
    pub fn db_url(&self, name: &str) -> String {
        format!("sqlite://{}?mode=rwc", self.0.join(name).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A migrated store on a new database file in `dir`.
pub async fn file_store(dir: &TempDir, config: &PoolConfig) -> SqliteStore {
    let store = SqliteStore::connect_with(&dir.db_url("sessions.db"), config)
        .await
        .expect("open the database file");
    store.migrate().await.expect("migrate");
    store
}

/// A migrated store on a new in-memory database.
pub async fn memory_store() -> SqliteStore {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("open an in-memory database");
    store.migrate().await.expect("migrate");
    store
}

/// The current time at millisecond precision, as records keep it.
pub fn now() -> OffsetDateTime {
    truncate_to_millis(OffsetDateTime::now_utc())
}

/// A JSON object.
pub fn data(value: serde_json::Value) -> Data {
    Data::try_from(value).unwrap_or_else(|other| panic!("not an object: {other}"))
}

/// A new record under a fresh key, live for an hour from `t0`.
pub fn record(t0: OffsetDateTime, value: serde_json::Value) -> Record {
    Record {
        key: Id::random().storage_key(),
        data: data(value),
        version: 1,
        created_at: t0,
        expires_at: t0 + Duration::hours(1),
        deadline: t0 + Duration::days(30),
        principal: None,
        expiry: None,
    }
}

/// Adds two tests to a test binary: `$rerun`, which runs the binary's
/// other tests again under UTC+10 and UTC-7, and the ignored
/// `time_zone_is_in_effect`, which the children run to prove the zone
/// took effect.
macro_rules! time_zone_tests {
    ($rerun:ident) => {
        #[test]
        fn $rerun() {
            common::rerun_in_time_zones(stringify!($rerun));
        }

        #[tokio::test]
        #[ignore = "run in a child process by the test that re-runs this binary"]
        async fn time_zone_is_in_effect() {
            common::assert_time_zone_in_effect().await;
        }
    };
}

/// Set in a child process started by [`rerun_in_time_zones`]: the UTC
/// offset, in hours, of the time zone it runs in.
pub const CHILD_OFFSET: &str = "STORE_SQLITE_TEST_TZ_OFFSET_HOURS";

/// Runs this test binary again under UTC+10 and UTC-7, skipping
/// `this_test`, and fails unless every test passes there too.
///
/// The children also run the ignored `time_zone_is_in_effect` test of the
/// binary, which proves the zone took effect. Does nothing in a child.
pub fn rerun_in_time_zones(this_test: &str) {
    if std::env::var_os(CHILD_OFFSET).is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");

    for (zone, offset) in [("Australia/Brisbane", 10), ("America/Phoenix", -7)] {
        let output = Command::new(&exe)
            .env("TZ", zone)
            .env(CHILD_OFFSET, offset.to_string())
            .args(["--include-ignored", "--skip", this_test])
            .output()
            .expect("start the test binary again");

        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("time_zone_is_in_effect ... ok"),
            "tests failed with TZ={zone}:\n{stdout}\n{stderr}"
        );
    }
}

/// Checks, in a child of [`rerun_in_time_zones`], that SQLite's idea of
/// local time has the offset the parent asked for.
pub async fn assert_time_zone_in_effect() {
    let offset: i64 = std::env::var(CHILD_OFFSET)
        .expect("run by rerun_in_time_zones, which sets the offset")
        .parse()
        .expect("an offset in hours");
    let store = memory_store().await;

    let sql = "SELECT CAST(strftime('%H', 0, 'unixepoch', 'localtime') AS INTEGER)";
    let local_hour: i64 = sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("ask SQLite for the local hour at the epoch");

    assert_eq!(
        local_hour,
        (24 + offset) % 24,
        "the TZ zone is not in effect (is the tzdata package installed?)"
    );
}

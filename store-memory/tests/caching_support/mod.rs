//! What the `CachingStore` tests share: SQLite databases, a cache without
//! a principal index, and records.

#![allow(dead_code, unreachable_pub)]

pub mod cluster;

use serde_json::Value;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{
    async_trait, truncate_to_millis, CreateOutcome, Data, Id, Record, SaveOutcome, StorageKey,
    Store, StoreError, TouchOutcome,
};
use store_memory::MemoryStore;
use store_sqlite::{PoolConfig, SqliteStore};
use tempfile::TempDir;

/// A database file in a temporary directory, removed on drop.
#[derive(Debug)]
pub struct DbFile {
    dir: TempDir,
}

impl DbFile {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        Self { dir }
    }

    /// A new pool on the file (created when missing), schema migrated.
    pub async fn open(&self) -> SqliteStore {
        let path = self.dir.path().join("sessions.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let config = PoolConfig::new().with_max_connections(8);

        let store = SqliteStore::connect_with(&url, &config)
            .await
            .expect("open the database file");
        store.migrate().await.expect("migrate");
        store
    }
}

/// A migrated store on a new in-memory database.
pub async fn memory_db() -> SqliteStore {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("open an in-memory database");
    store.migrate().await.expect("migrate");
    store
}

/// A JSON object; anything else is a bug in the test.
pub fn data(value: Value) -> Data {
    Data::try_from(value).unwrap_or_else(|other| panic!("not an object: {other}"))
}

/// A new record under a fresh key, live for an hour from `at`.
pub fn record(at: OffsetDateTime, value: Value) -> Record {
    let at = truncate_to_millis(at);
    Record {
        key: Id::random().storage_key(),
        data: data(value),
        version: 1,
        created_at: at,
        expires_at: at + Duration::hours(1),
        deadline: at + Duration::days(1),
        principal: None,
        expiry: None,
    }
}

/// The next version of `record`, holding `value`.
pub fn next(record: &Record, value: Value) -> Record {
    Record {
        data: data(value),
        version: record.version + 1,
        ..record.clone()
    }
}

/// A real `MemoryStore` that keeps no principal index, as a cache store
/// written for a backend without one would.
#[derive(Debug, Clone, Default)]
pub struct Unindexed(pub MemoryStore);

#[async_trait]
impl Store for Unindexed {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        self.0.create(record, now).await
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.0.load(key, now).await
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        self.0.save(record, expected_version, now).await
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        self.0.touch(key, expires_at, now).await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        self.0.delete(key).await
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.0.delete_expired(now).await
    }
}

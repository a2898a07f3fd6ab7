//! A store wrapper that counts the calls a session makes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError, TouchOutcome,
};

/// Calls made to a [`CountingStore`], by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    /// `create` calls.
    pub create: u64,
    /// `load` calls.
    pub load: u64,
    /// `save` calls.
    pub save: u64,
    /// `touch` calls.
    pub touch: u64,
    /// `delete` calls.
    pub delete: u64,
}

impl Calls {
    /// Every call: each is one round trip on the network stores.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.reads() + self.writes()
    }

    /// Calls that read.
    #[must_use]
    pub fn reads(&self) -> u64 {
        self.load
    }

    /// Calls that write.
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.create + self.save + self.touch + self.delete
    }

    /// The calls made between `earlier` and `self`.
    #[must_use]
    pub fn since(&self, earlier: Calls) -> Calls {
        Calls {
            create: self.create - earlier.create,
            load: self.load - earlier.load,
            save: self.save - earlier.save,
            touch: self.touch - earlier.touch,
            delete: self.delete - earlier.delete,
        }
    }
}

/// Passes every call to another store and counts it.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn Store>,
    create: AtomicU64,
    load: AtomicU64,
    save: AtomicU64,
    touch: AtomicU64,
    delete: AtomicU64,
}

impl CountingStore {
    /// Counts the calls made to `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            create: AtomicU64::new(0),
            load: AtomicU64::new(0),
            save: AtomicU64::new(0),
            touch: AtomicU64::new(0),
            delete: AtomicU64::new(0),
        }
    }

    /// The calls so far.
    #[must_use]
    pub fn calls(&self) -> Calls {
        let get = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        Calls {
            create: get(&self.create),
            load: get(&self.load),
            save: get(&self.save),
            touch: get(&self.touch),
            delete: get(&self.delete),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::SeqCst);
}

#[async_trait]
impl Store for CountingStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        bump(&self.create);
        self.inner.create(record, now).await
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        bump(&self.load);
        self.inner.load(key, now).await
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        bump(&self.save);
        self.inner.save(record, expected_version, now).await
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        bump(&self.touch);
        self.inner.touch(key, expires_at, now).await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        bump(&self.delete);
        self.inner.delete(key).await
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.delete_expired(now).await
    }
}

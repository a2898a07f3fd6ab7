//! The moka-backed store.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::ready;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;
use moka::Expiry;
use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, Clock, CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError,
    SystemClock, TouchOutcome,
};

/// Keys of live sessions, by principal.
type PrincipalIndex = Arc<Mutex<HashMap<String, HashSet<StorageKey>>>>;

/// Sessions in this process's memory, on a moka cache.
///
/// Cheap to clone; clones share the cache. Every operation is atomic per
/// session (moka's per-key compute), so concurrent creates of one key have
/// one winner and versioned saves never interleave.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<StorageKey, Arc<Record>>,
    principals: PrincipalIndex,
}

/// Builds a [`MemoryStore`].
#[must_use]
pub struct MemoryStoreBuilder {
    max_capacity: u64,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for MemoryStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStoreBuilder")
            .field("max_capacity", &self.max_capacity)
            .finish_non_exhaustive()
    }
}

impl MemoryStoreBuilder {
    /// The most sessions kept at once (default 1,000,000). Past it the
    /// least recently used sessions are evicted, which logs their users
    /// out; size it above your peak of live sessions.
    pub fn max_capacity(mut self, max_capacity: u64) -> Self {
        self.max_capacity = max_capacity;
        self
    }

    /// The clock that turns `expires_at` into a time to live (default: the
    /// system clock). Share the session layer's clock in tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the store.
    #[must_use]
    pub fn build(self) -> MemoryStore {
        let principals = PrincipalIndex::default();
        let index = Arc::clone(&principals);

        let cache = Cache::builder()
            .max_capacity(self.max_capacity)
            // Admission by frequency could refuse a session we just
            // reported as created; LRU always keeps the new one.
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(RecordExpiry { clock: self.clock })
            .eviction_listener(move |key: Arc<StorageKey>, record: Arc<Record>, cause| {
                // Explicit removals and replacements update the index
                // themselves, under the entry's lock.
                if matches!(cause, RemovalCause::Expired | RemovalCause::Size) {
                    unindex(&index, &key, record.principal.as_deref());
                }
            })
            .build();

        MemoryStore { cache, principals }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with the default capacity and the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder with the defaults.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_capacity: 1_000_000,
            clock: Arc::new(SystemClock),
        }
    }

    /// How many entries the cache holds, expired ones not yet evicted
    /// included. Approximate until [`run_pending_tasks`](Self::run_pending_tasks).
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Runs the cache's pending maintenance (evictions) now.
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }

    fn index(&self, key: &StorageKey, principal: Option<&str>) {
        if let Some(principal) = principal {
            let mut index = lock(&self.principals);
            index.entry(principal.to_owned()).or_default().insert(*key);
        }
    }

    /// Moves `key` between principals when a write changes its principal.
    fn reindex(&self, key: &StorageKey, old: Option<&str>, new: Option<&str>) {
        if old != new {
            unindex(&self.principals, key, old);
            self.index(key, new);
        }
    }
}

fn lock(index: &PrincipalIndex) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<StorageKey>>> {
    index.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unindex(index: &PrincipalIndex, key: &StorageKey, principal: Option<&str>) {
    let Some(principal) = principal else {
        return;
    };

    let mut index = lock(index);
    if let Some(keys) = index.get_mut(principal) {
        keys.remove(key);
        if keys.is_empty() {
            index.remove(principal);
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        let entry = self.cache.entry(record.key);

        let result = entry
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(live) if !live.value().is_expired(now) => Op::Nop,
                    old => {
                        let old = old.as_ref().and_then(|e| e.value().principal.clone());
                        self.reindex(&record.key, old.as_deref(), record.principal.as_deref());
                        Op::Put(Arc::new(record.clone()))
                    }
                };
                ready(op)
            })
            .await;

        Ok(match result {
            CompResult::Inserted(_) | CompResult::ReplacedWith(_) => CreateOutcome::Created,
            _ => CreateOutcome::Collision,
        })
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let record = self.cache.get(key).await;
        Ok(record
            .filter(|record| !record.is_expired(now))
            .map(|record| Record::clone(&record)))
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        let mut outcome = SaveOutcome::Missing;

        self.cache
            .entry(record.key)
            .and_compute_with(|existing| {
                let op = match existing {
                    None => Op::Nop,
                    Some(old) if old.value().is_expired(now) => {
                        let old = old.value().principal.as_deref();
                        unindex(&self.principals, &record.key, old);
                        Op::Remove
                    }
                    Some(old) if old.value().version != expected_version => {
                        outcome = SaveOutcome::Conflict;
                        Op::Nop
                    }
                    Some(old) => {
                        let old = old.value().principal.as_deref();
                        self.reindex(&record.key, old, record.principal.as_deref());
                        outcome = SaveOutcome::Saved;
                        Op::Put(Arc::new(record.clone()))
                    }
                };
                ready(op)
            })
            .await;

        Ok(outcome)
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        let mut outcome = TouchOutcome::Missing;

        self.cache
            .entry(*key)
            .and_compute_with(|existing| {
                let op = match existing {
                    None => Op::Nop,
                    Some(old) if old.value().is_expired(now) => {
                        let old = old.value().principal.as_deref();
                        unindex(&self.principals, key, old);
                        Op::Remove
                    }
                    Some(old) => {
                        let old = old.value();
                        let touched = Record {
                            expires_at: expires_at.min(old.deadline),
                            ..Record::clone(old)
                        };
                        outcome = TouchOutcome::Touched;
                        Op::Put(Arc::new(touched))
                    }
                };
                ready(op)
            })
            .await;

        Ok(outcome)
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        self.cache
            .entry(*key)
            .and_compute_with(|existing| {
                if let Some(old) = existing {
                    let old = old.value().principal.as_deref();
                    unindex(&self.principals, key, old);
                }
                ready(Op::Remove)
            })
            .await;
        Ok(())
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let expired: Vec<StorageKey> = self
            .cache
            .iter()
            .filter(|(_, record)| record.is_expired(now))
            .map(|(key, _)| *key)
            .collect();

        let mut removed = 0;
        for key in expired {
            let result = self
                .cache
                .entry(key)
                .and_compute_with(|existing| {
                    let op = match existing {
                        Some(old) if old.value().is_expired(now) => {
                            let old = old.value().principal.as_deref();
                            unindex(&self.principals, &key, old);
                            Op::Remove
                        }
                        _ => Op::Nop,
                    };
                    ready(op)
                })
                .await;
            if matches!(result, CompResult::Removed(_)) {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn supports_principal_index(&self) -> bool {
        true
    }

    async fn list_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        let keys: Vec<StorageKey> = lock(&self.principals)
            .get(principal)
            .map(|keys| keys.iter().copied().collect())
            .unwrap_or_default();

        let mut records = Vec::with_capacity(keys.len());
        for key in keys {
            let live = self.load(&key, now).await?;
            if let Some(record) = live.filter(|r| r.principal.as_deref() == Some(principal)) {
                records.push(record);
            }
        }
        records.sort_by_key(|record| record.created_at);
        Ok(records)
    }

    async fn delete_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let keys: Vec<StorageKey> = lock(&self.principals)
            .get(principal)
            .map(|keys| keys.iter().copied().collect())
            .unwrap_or_default();

        let mut removed = 0;
        for key in keys {
            self.cache
                .entry(key)
                .and_compute_with(|existing| {
                    let op = match existing {
                        Some(old) if old.value().principal.as_deref() == Some(principal) => {
                            unindex(&self.principals, &key, Some(principal));
                            if !old.value().is_expired(now) {
                                removed += 1;
                            }
                            Op::Remove
                        }
                        _ => Op::Nop,
                    };
                    ready(op)
                })
                .await;
        }
        Ok(removed)
    }
}

/// Gives each entry the time to live left on its record.
struct RecordExpiry {
    clock: Arc<dyn Clock>,
}

impl RecordExpiry {
    fn remaining(&self, record: &Record) -> Option<Duration> {
        let left = record.expires_at - self.clock.now();
        Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
    }
}

impl Expiry<StorageKey, Arc<Record>> for RecordExpiry {
    fn expire_after_create(
        &self,
        _key: &StorageKey,
        record: &Arc<Record>,
        _created_at: Instant,
    ) -> Option<Duration> {
        self.remaining(record)
    }

    fn expire_after_update(
        &self,
        _key: &StorageKey,
        record: &Arc<Record>,
        _updated_at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        self.remaining(record)
    }
}

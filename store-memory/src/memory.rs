//! The moka-backed store.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use moka::Expiry;
use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, Clock, CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError,
    SystemClock, TouchOutcome,
};
use tokio::sync::{Mutex as AsyncMutex, MutexGuard as AsyncGuard};

use crate::compact::{Packed, Stamp};

/// Keys of live sessions, by principal.
type Principals = HashMap<String, HashSet<StorageKey>>;

/// The index, shared with the eviction listener.
type PrincipalIndex = Arc<Mutex<Principals>>;

/// How many locks the writes of different sessions are spread over. Two
/// writes of one session must not interleave; writes of different
/// sessions meet on a lock only when their keys share a stripe.
const STRIPES: usize = 1024;

/// Sessions in this process's memory, on a moka cache.
///
/// Cheap to clone; clones share the cache. Every operation is atomic per
/// session: the writes of one session take that session's lock (one of a
/// fixed set, chosen by key), so concurrent creates of one key have one
/// winner and versioned saves never interleave, while loads take no lock.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<StorageKey, Packed>,
    principals: PrincipalIndex,
    stripes: Arc<[AsyncMutex<()>]>,
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
            .eviction_listener(move |key: Arc<StorageKey>, record: Packed, cause| {
                // Explicit removals and replacements update the index
                // themselves, under the session's lock.
                if matches!(cause, RemovalCause::Expired | RemovalCause::Size) {
                    unindex(&index, &key, record.principal());
                }
            })
            .build();

        let stripes = (0..STRIPES).map(|_| AsyncMutex::new(())).collect();
        MemoryStore {
            cache,
            principals,
            stripes,
        }
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

    /// Takes the lock that the writes of `key`'s session share.
    async fn lock(&self, key: &StorageKey) -> AsyncGuard<'_, ()> {
        // The key is a SHA-256 digest, so its first bytes are already
        // spread evenly; no need to hash it again.
        let [a, b, ..] = *key.as_bytes();
        let stripe = usize::from(u16::from_le_bytes([a, b])) % self.stripes.len();
        self.stripes[stripe].lock().await
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

    /// Removes `key`'s entry, which its caller found dead or is deleting,
    /// and its place in the index. The caller holds the session's lock.
    async fn remove(&self, key: &StorageKey) -> Option<Packed> {
        let old = self.cache.remove(key).await;
        if let Some(old) = &old {
            unindex(&self.principals, key, old.principal());
        }
        old
    }
}

fn lock(index: &PrincipalIndex) -> std::sync::MutexGuard<'_, Principals> {
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
        let packed = Packed::encode(record);
        let now = Stamp::of(now);
        let _session = self.lock(&record.key).await;

        let old = self.cache.get(&record.key).await;
        if old.as_ref().is_some_and(|live| !live.is_expired(now)) {
            return Ok(CreateOutcome::Collision);
        }
        let old = old.as_ref().and_then(Packed::principal);
        self.reindex(&record.key, old, record.principal.as_deref());
        self.cache.insert(record.key, packed).await;
        Ok(CreateOutcome::Created)
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let Some(packed) = self.cache.get(key).await else {
            return Ok(None);
        };
        if packed.is_expired(Stamp::of(now)) {
            return Ok(None);
        }
        packed.decode(*key).map(Some).map_err(StoreError::decode)
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        let packed = Packed::encode(record);
        let now = Stamp::of(now);
        let _session = self.lock(&record.key).await;

        let Some(old) = self.cache.get(&record.key).await else {
            return Ok(SaveOutcome::Missing);
        };
        if old.is_expired(now) {
            self.remove(&record.key).await;
            return Ok(SaveOutcome::Missing);
        }
        let version = old.version().ok_or_else(|| StoreError::decode(Truncated))?;
        if version != expected_version {
            return Ok(SaveOutcome::Conflict);
        }
        self.reindex(&record.key, old.principal(), record.principal.as_deref());
        self.cache.insert(record.key, packed).await;
        Ok(SaveOutcome::Saved)
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        let expires_at = Stamp::of(expires_at);
        let now = Stamp::of(now);
        let _session = self.lock(key).await;

        let Some(old) = self.cache.get(key).await else {
            return Ok(TouchOutcome::Missing);
        };
        if old.is_expired(now) {
            self.remove(key).await;
            return Ok(TouchOutcome::Missing);
        }
        let deadline = old
            .deadline()
            .ok_or_else(|| StoreError::decode(Truncated))?;
        let touched = old.with_expires_at(expires_at.min(deadline));
        self.cache.insert(*key, touched).await;
        Ok(TouchOutcome::Touched)
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        let _session = self.lock(key).await;
        self.remove(key).await;
        Ok(())
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = Stamp::of(now);
        let expired: Vec<StorageKey> = self
            .cache
            .iter()
            .filter(|(_, packed)| packed.is_expired(now))
            .map(|(key, _)| *key)
            .collect();

        let mut removed = 0;
        for key in expired {
            let _session = self.lock(&key).await;
            // Checked again under the lock: a write may have revived it.
            let dead = self.cache.get(&key).await;
            if dead.is_some_and(|dead| dead.is_expired(now)) {
                self.remove(&key).await;
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
        let now = Stamp::of(now);
        let keys: Vec<StorageKey> = lock(&self.principals)
            .get(principal)
            .map(|keys| keys.iter().copied().collect())
            .unwrap_or_default();

        let mut removed = 0;
        for key in keys {
            let _session = self.lock(&key).await;
            let Some(old) = self.cache.get(&key).await else {
                continue;
            };
            if old.principal() == Some(principal) {
                self.remove(&key).await;
                if !old.is_expired(now) {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// A stored record too short to hold its version.
#[derive(Debug)]
struct Truncated;

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("compact session record: truncated")
    }
}

impl std::error::Error for Truncated {}

/// Gives each entry the time to live left on its record.
struct RecordExpiry {
    clock: Arc<dyn Clock>,
}

impl RecordExpiry {
    fn remaining(&self, packed: &Packed) -> Option<Duration> {
        // A buffer without an expiry is unreadable: let it go at once.
        let Some(expires_at) = packed.expires_at() else {
            return Some(Duration::ZERO);
        };
        let left = expires_at.nanos_since(Stamp::of(self.clock.now())).max(0);
        Some(Duration::from_nanos(
            u64::try_from(left).unwrap_or(u64::MAX),
        ))
    }
}

impl Expiry<StorageKey, Packed> for RecordExpiry {
    fn expire_after_create(
        &self,
        _key: &StorageKey,
        packed: &Packed,
        _created_at: Instant,
    ) -> Option<Duration> {
        self.remaining(packed)
    }

    fn expire_after_update(
        &self,
        _key: &StorageKey,
        packed: &Packed,
        _updated_at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        self.remaining(packed)
    }
}

#[cfg(test)]
mod tests {
    use session_core::time::Duration;
    use session_core::{Data, Id};

    use super::*;

    fn record(now: OffsetDateTime) -> Record {
        Record {
            key: Id::random().storage_key(),
            data: Data::new(),
            version: 1,
            created_at: now,
            expires_at: now + Duration::hours(1),
            deadline: now + Duration::days(1),
            principal: None,
            expiry: None,
        }
    }

    #[tokio::test]
    async fn a_record_that_does_not_decode_is_a_decode_error() {
        let store = MemoryStore::new();
        let now = SystemClock.now();
        let record = record(now);
        let good = Packed::encode(&record);
        let mut bytes = good.bytes().to_vec();
        bytes.truncate(bytes.len() - 1);
        store
            .cache
            .insert(record.key, Packed::from_bytes(&bytes))
            .await;

        let loaded = store.load(&record.key, now).await;

        assert!(loaded.is_err_and(|error| error.is_decode()));
    }

    #[tokio::test]
    async fn a_truncated_header_is_a_decode_error_for_writes() {
        let store = MemoryStore::new();
        let now = SystemClock.now();
        let record = record(now);
        let mut bytes = Packed::encode(&record).bytes().to_vec();
        // Keeps the expiry, so the entry counts as live, and cuts the
        // deadline short.
        bytes.truncate(40);
        store
            .cache
            .insert(record.key, Packed::from_bytes(&bytes))
            .await;

        let touched = store
            .touch(&record.key, now + Duration::hours(2), now)
            .await;
        let loaded = store.load(&record.key, now).await;

        assert!(touched.is_err_and(|error| error.is_decode()));
        assert!(loaded.is_err_and(|error| error.is_decode()));
    }
}

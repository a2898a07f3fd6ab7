//! The in-process store: sessions in a map split into shards.

use std::fmt;
use std::sync::Arc;

use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, Clock, CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError,
    SystemClock, TouchOutcome,
};

use crate::shard::{Entry, Room, Shard};

/// The most shards a store is split into. Each request holds one shard's
/// lock for well under a microsecond, so 64 keep two cores, or dozens,
/// from meeting on one.
const MAX_SHARDS: usize = 64;

/// Below this many sessions per shard a store uses fewer shards, so that a
/// small capacity still bounds the whole store closely.
const MIN_PER_SHARD: u64 = 1024;

/// How many expired sessions one sweep takes out of a shard before it
/// lets other requests in.
const SWEEP_BATCH: usize = 1024;

/// Sessions in this process's memory.
///
/// Cheap to clone; clones share the sessions. The sessions are spread
/// over up to 64 shards by key, each a map behind its own lock, held only
/// for the few steps of one operation and never across an `.await`: every
/// operation is atomic, concurrent creates of one key have one winner,
/// and versioned saves never interleave, while requests for different
/// sessions rarely meet.
///
/// Each shard also orders its sessions by expiry. Every write takes up to
/// two expired sessions out of its shard, and [`Store::delete_expired`]
/// (or [`run_pending_tasks`](Self::run_pending_tasks)) takes all of them,
/// so abandoned sessions are dropped without ever being read. When a
/// create finds its shard at its share of the capacity, the session that
/// expires soonest is evicted; under sliding expiry that is the one idle
/// longest.
#[derive(Clone)]
pub struct MemoryStore {
    shards: Arc<[Shard]>,
    clock: Arc<dyn Clock>,
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
    /// The most sessions kept at once (default 1,000,000). Each shard
    /// holds its share of it, so eviction can begin slightly below the
    /// total; past it the sessions that expire soonest are evicted, which
    /// logs their users out. Size it above your peak of live sessions.
    /// Zero keeps nothing: every session is evicted as it is created.
    pub fn max_capacity(mut self, max_capacity: u64) -> Self {
        self.max_capacity = max_capacity;
        self
    }

    /// The clock that [`MemoryStore::run_pending_tasks`] sweeps by
    /// (default: the system clock); every other operation takes its time
    /// from the caller. Share the session layer's clock in tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the store.
    #[must_use]
    pub fn build(self) -> MemoryStore {
        let wanted = self.max_capacity / MIN_PER_SHARD;
        let count = usize::try_from(wanted).map_or(MAX_SHARDS, |n| n.clamp(1, MAX_SHARDS));
        let count = u64::try_from(count).unwrap_or(1);

        // The capacity is dealt out exactly: the first `extra` shards hold
        // one session more than the others.
        let (share, extra) = (self.max_capacity / count, self.max_capacity % count);
        let shards = (0..count)
            .map(|n| Shard::new(share + u64::from(n < extra)))
            .collect();
        MemoryStore {
            shards,
            clock: self.clock,
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("entries", &self.entry_count())
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

    /// How many sessions the store holds, expired ones not yet swept out
    /// included.
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        let count: usize = self.shards.iter().map(|shard| shard.lock().len()).sum();
        u64::try_from(count).unwrap_or(u64::MAX)
    }

    /// Sweeps out every session expired by the builder's clock.
    pub async fn run_pending_tasks(&self) {
        self.sweep(self.clock.now());
    }

    fn shard(&self, key: &StorageKey) -> &Shard {
        // The key is a SHA-256 digest, so its first bytes are already
        // spread evenly; no need to hash it again.
        let [a, b, ..] = *key.as_bytes();
        &self.shards[usize::from(u16::from_le_bytes([a, b])) % self.shards.len()]
    }

    fn sweep(&self, now: OffsetDateTime) -> u64 {
        let mut removed = 0;
        for shard in self.shards.iter() {
            loop {
                let swept = shard.lock().sweep(now, SWEEP_BATCH);
                removed += swept as u64;
                if swept < SWEEP_BATCH {
                    break;
                }
            }
        }
        removed
    }

    /// The keys filed under `principal`, shard by shard.
    fn keys_of(&self, principal: &str) -> Vec<(usize, StorageKey)> {
        let mut keys = Vec::new();
        for (n, shard) in self.shards.iter().enumerate() {
            let shard = shard.lock();
            keys.extend(shard.keys_of(principal).map(|key| (n, key)));
        }
        keys
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        let mut shard = self.shard(&record.key).lock();
        shard.sweep(now, 2);

        if shard.get(&record.key).is_some_and(|old| old.is_live(now)) {
            return Ok(CreateOutcome::Collision);
        }
        if record.expires_at <= now {
            // Created dead: no load could ever return it, so it takes no
            // room and evicts nobody.
            shard.remove(&record.key);
            return Ok(CreateOutcome::Created);
        }
        match shard.evict_for(&record.key) {
            Room::Free => {}
            Room::Evicted => {
                tracing::debug!("memory store: at capacity, evicted the session expiring first");
            }
            Room::None => {
                // A capacity of zero: the session is evicted as it lands.
                tracing::debug!("memory store: capacity zero, the session is not kept");
                return Ok(CreateOutcome::Created);
            }
        }
        shard.put(record.key, Entry::of(record));
        Ok(CreateOutcome::Created)
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let shard = self.shard(key).lock();
        let live = shard.get(key).filter(|entry| entry.is_live(now));
        Ok(live.map(|entry| entry.record(*key)))
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        let mut shard = self.shard(&record.key).lock();
        shard.sweep(now, 2);

        let Some(old) = shard.get(&record.key) else {
            return Ok(SaveOutcome::Missing);
        };
        if !old.is_live(now) {
            shard.remove(&record.key);
            return Ok(SaveOutcome::Missing);
        }
        if old.version != expected_version {
            return Ok(SaveOutcome::Conflict);
        }
        shard.put(record.key, Entry::of(record));
        Ok(SaveOutcome::Saved)
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        let mut shard = self.shard(key).lock();
        shard.sweep(now, 2);

        let Some(old) = shard.get(key) else {
            return Ok(TouchOutcome::Missing);
        };
        if !old.is_live(now) {
            shard.remove(key);
            return Ok(TouchOutcome::Missing);
        }
        let expires_at = expires_at.min(old.deadline);
        shard.move_expiry(key, expires_at);
        Ok(TouchOutcome::Touched)
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        self.shard(key).lock().remove(key);
        Ok(())
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.sweep(now))
    }

    fn supports_principal_index(&self) -> bool {
        true
    }

    async fn list_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        let mut records = Vec::new();
        for (n, key) in self.keys_of(principal) {
            // Checked again: a save may have moved the session to another
            // principal since the keys were listed.
            let shard = self.shards[n].lock();
            let live = shard.get(&key).filter(|entry| {
                entry.is_live(now) && entry.principal.as_deref() == Some(principal)
            });
            records.extend(live.map(|entry| entry.record(key)));
        }
        records.sort_by_key(|record| record.created_at);
        Ok(records)
    }

    async fn delete_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        for (n, key) in self.keys_of(principal) {
            // A save may have moved the session to another principal
            // since the keys were listed; it stays.
            let mut shard = self.shards[n].lock();
            let Some(old) = shard.get(&key) else {
                continue;
            };
            if old.principal.as_deref() != Some(principal) {
                continue;
            }
            let live = old.is_live(now);
            shard.remove(&key);
            removed += u64::from(live);
        }
        Ok(removed)
    }
}

//! A diagnostic store: records in a sharded `HashMap`, nothing else.
//!
//! It exists to split the in-process figures into what the middleware
//! costs and what the memory store costs: the same route over this store
//! shows the middleware alone. (It was written when `MemoryStore` sat on
//! moka; now that the store is a sharded map too, the two rows should
//! match, and a gap between them is the store's.) It has no capacity
//! bound and
//! drops expired records only when they are next touched, so it is no
//! replacement for `MemoryStore`; it is never used outside the
//! benchmarks.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError, TouchOutcome,
};

/// Independent locks, so that concurrent requests rarely meet.
const SHARDS: usize = 64;

/// Records in `SHARDS` mutex-guarded maps, chosen by key.
#[derive(Debug)]
pub struct MapStore {
    shards: Vec<Mutex<HashMap<StorageKey, Record>>>,
    hasher: RandomState,
}

impl Default for MapStore {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl MapStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, key: &StorageKey) -> MutexGuard<'_, HashMap<StorageKey, Record>> {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for MapStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        let mut shard = self.shard(&record.key);
        match shard.entry(record.key) {
            Entry::Occupied(live) if !live.get().is_expired(now) => Ok(CreateOutcome::Collision),
            Entry::Occupied(mut dead) => {
                dead.insert(record.clone());
                Ok(CreateOutcome::Created)
            }
            Entry::Vacant(free) => {
                free.insert(record.clone());
                Ok(CreateOutcome::Created)
            }
        }
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let shard = self.shard(key);
        Ok(shard.get(key).filter(|r| !r.is_expired(now)).cloned())
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        let mut shard = self.shard(&record.key);
        let Entry::Occupied(mut stored) = shard.entry(record.key) else {
            return Ok(SaveOutcome::Missing);
        };

        if stored.get().is_expired(now) {
            stored.remove();
            return Ok(SaveOutcome::Missing);
        }
        if stored.get().version != expected_version {
            return Ok(SaveOutcome::Conflict);
        }
        stored.insert(record.clone());
        Ok(SaveOutcome::Saved)
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        let mut shard = self.shard(key);
        match shard.get_mut(key) {
            Some(stored) if !stored.is_expired(now) => {
                stored.expires_at = expires_at.min(stored.deadline);
                Ok(TouchOutcome::Touched)
            }
            _ => Ok(TouchOutcome::Missing),
        }
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        self.shard(key).remove(key);
        Ok(())
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = shard.len();
            shard.retain(|_, record| !record.is_expired(now));
            removed += (before - shard.len()) as u64;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::items;

    #[tokio::test]
    async fn keeps_the_store_contract_for_one_record() {
        let store = MapStore::new();
        let item = &items(1)[0];
        let (key, now) = (item.record.key, item.now);

        assert_eq!(
            store.create(&item.record, now).await.unwrap(),
            CreateOutcome::Created
        );
        assert_eq!(
            store.create(&item.record, now).await.unwrap(),
            CreateOutcome::Collision
        );
        assert_eq!(
            store.save(&item.saved, 7, now).await.unwrap(),
            SaveOutcome::Conflict
        );
        assert_eq!(
            store.save(&item.saved, 1, now).await.unwrap(),
            SaveOutcome::Saved
        );
        assert_eq!(
            store.load(&key, now).await.unwrap(),
            Some(item.saved.clone())
        );
        assert_eq!(
            store.touch(&key, item.touch_to, now).await.unwrap(),
            TouchOutcome::Touched
        );

        let later = item.touch_to;
        assert_eq!(store.load(&key, later).await.unwrap(), None);
        assert_eq!(store.delete_expired(later).await.unwrap(), 1);
        store.delete(&key).await.unwrap();
        assert_eq!(
            store.save(&item.saved, 2, now).await.unwrap(),
            SaveOutcome::Missing
        );
    }
}

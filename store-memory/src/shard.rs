//! One shard of the memory store: a map of sessions and its two indexes.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use session_core::time::OffsetDateTime;
use session_core::{Data, Expiry, Record, StorageKey};

/// A stored session: the record without its key, which the map holds.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) version: u64,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    pub(crate) deadline: OffsetDateTime,
    pub(crate) principal: Option<Box<str>>,
    expiry: Option<Expiry>,
    // Shared text: storing or loading a session copies no data.
    data: Data,
}

impl Entry {
    pub(crate) fn of(record: &Record) -> Box<Self> {
        Box::new(Self {
            version: record.version,
            created_at: record.created_at,
            expires_at: record.expires_at,
            deadline: record.deadline,
            principal: record.principal.as_deref().map(Box::from),
            expiry: record.expiry,
            data: record.data.clone(),
        })
    }

    /// Live strictly before `expires_at`, as [`Record::is_expired`] says.
    pub(crate) fn is_live(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }

    pub(crate) fn record(&self, key: StorageKey) -> Record {
        Record {
            key,
            data: self.data.clone(),
            version: self.version,
            created_at: self.created_at,
            expires_at: self.expires_at,
            deadline: self.deadline,
            principal: self.principal.as_deref().map(str::to_owned),
            expiry: self.expiry,
        }
    }
}

/// Hashes a [`StorageKey`] by folding its bytes. The key is a SHA-256
/// digest, already spread evenly, so a keyed hash would add cost and no
/// protection: nobody can choose a digest.
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

type ByDigest = BuildHasherDefault<DigestHasher>;

/// The sessions of one shard and what finds them other than by key.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: HashMap<StorageKey, Box<Entry>, ByDigest>,
    /// Every session, soonest to expire first.
    by_expiry: BTreeSet<(OffsetDateTime, StorageKey)>,
    /// The keys of every session that has a principal, by principal.
    by_principal: HashMap<Box<str>, HashSet<StorageKey, ByDigest>>,
    capacity: usize,
}

/// Whether a shard can take one more session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// It has room, or already holds the key.
    Free,
    /// The session expiring soonest was evicted to make room.
    Evicted,
    /// It holds nothing and may hold nothing: a capacity of zero.
    None,
}

/// A shard: its sessions behind a lock that no caller holds across an
/// `.await`.
#[derive(Debug)]
pub(crate) struct Shard(Mutex<Sessions>);

impl Shard {
    pub(crate) fn new(capacity: u64) -> Self {
        Self(Mutex::new(Sessions {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            ..Sessions::default()
        }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Sessions> {
        // Nothing under this lock panics (a failed allocation aborts),
        // so a poisoned lock would still guard consistent sessions.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sessions {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get(&self, key: &StorageKey) -> Option<&Entry> {
        self.map.get(key).map(Box::as_ref)
    }

    /// Files `entry` under `key`, in place of what was there.
    pub(crate) fn put(&mut self, key: StorageKey, entry: Box<Entry>) {
        let (old_expiry, old_principal) = match self.map.entry(key) {
            MapEntry::Occupied(mut slot) => {
                let old = std::mem::replace(slot.get_mut(), entry);
                (Some(old.expires_at), old.principal)
            }
            MapEntry::Vacant(slot) => {
                slot.insert(entry);
                (None, None)
            }
        };
        let Some(new) = self.map.get(&key) else {
            return;
        };

        if old_expiry != Some(new.expires_at) {
            if let Some(at) = old_expiry {
                self.by_expiry.remove(&(at, key));
            }
            self.by_expiry.insert((new.expires_at, key));
        }
        // Most saves keep the principal: only a change touches the index.
        if old_principal.as_deref() != new.principal.as_deref() {
            if let Some(old_principal) = &old_principal {
                unindex(&mut self.by_principal, old_principal, &key);
            }
            if let Some(principal) = &new.principal {
                let keys = self.by_principal.entry(principal.clone()).or_default();
                keys.insert(key);
            }
        }
    }

    /// Removes `key`'s session and its place in the indexes.
    pub(crate) fn remove(&mut self, key: &StorageKey) -> Option<Box<Entry>> {
        let old = self.map.remove(key)?;
        self.by_expiry.remove(&(old.expires_at, *key));
        if let Some(principal) = &old.principal {
            unindex(&mut self.by_principal, principal, key);
        }
        Some(old)
    }

    /// Moves the expiry of `key`'s session, which must be here.
    pub(crate) fn move_expiry(&mut self, key: &StorageKey, expires_at: OffsetDateTime) {
        let Some(entry) = self.map.get_mut(key) else {
            return;
        };
        if entry.expires_at == expires_at {
            return;
        }
        self.by_expiry.remove(&(entry.expires_at, *key));
        entry.expires_at = expires_at;
        self.by_expiry.insert((expires_at, *key));
    }

    /// Removes up to `limit` sessions that are dead at `now`, soonest
    /// expired first; returns how many.
    pub(crate) fn sweep(&mut self, now: OffsetDateTime, limit: usize) -> usize {
        let mut removed = 0;
        while removed < limit {
            let Some(&(at, key)) = self.by_expiry.first() else {
                break;
            };
            if now < at {
                break;
            }
            self.remove(&key);
            removed += 1;
        }
        removed
    }

    /// Makes room for a new session under `key` when the shard is full,
    /// by evicting the session that expires soonest.
    pub(crate) fn evict_for(&mut self, key: &StorageKey) -> Room {
        if self.map.len() < self.capacity || self.map.contains_key(key) {
            return Room::Free;
        }
        let Some(&(_, soonest)) = self.by_expiry.first() else {
            return Room::None;
        };
        self.remove(&soonest);
        Room::Evicted
    }

    /// The keys of the sessions filed under `principal`.
    pub(crate) fn keys_of(&self, principal: &str) -> impl Iterator<Item = StorageKey> + '_ {
        self.by_principal
            .get(principal)
            .into_iter()
            .flat_map(|keys| keys.iter().copied())
    }
}

fn unindex(
    index: &mut HashMap<Box<str>, HashSet<StorageKey, ByDigest>>,
    principal: &str,
    key: &StorageKey,
) {
    if let Some(keys) = index.get_mut(principal) {
        keys.remove(key);
        if keys.is_empty() {
            index.remove(principal);
        }
    }
}

#[cfg(test)]
mod tests {
    use session_core::time::Duration;
    use session_core::Id;

    use super::*;

    fn entry(expires_at: OffsetDateTime, principal: Option<&str>) -> Box<Entry> {
        let now = OffsetDateTime::now_utc();
        Entry::of(&Record {
            key: Id::random().storage_key(),
            data: Data::new(),
            version: 1,
            created_at: now,
            expires_at,
            deadline: now + Duration::days(1),
            principal: principal.map(str::to_owned),
            expiry: None,
        })
    }

    /// The indexes hold exactly what the map holds.
    fn assert_agrees(sessions: &Sessions) {
        let by_expiry: BTreeSet<_> = sessions
            .map
            .iter()
            .map(|(key, entry)| (entry.expires_at, *key))
            .collect();
        assert_eq!(by_expiry, sessions.by_expiry);

        let mut by_principal: HashMap<Box<str>, HashSet<StorageKey, ByDigest>> = HashMap::default();
        for (key, entry) in &sessions.map {
            if let Some(principal) = &entry.principal {
                by_principal
                    .entry(principal.clone())
                    .or_default()
                    .insert(*key);
            }
        }
        assert_eq!(by_principal, sessions.by_principal);
    }

    #[test]
    fn the_indexes_follow_every_change() {
        let now = OffsetDateTime::now_utc();
        let shard = Shard::new(3);
        let mut sessions = shard.lock();
        let keys: Vec<StorageKey> = (0..4).map(|_| Id::random().storage_key()).collect();

        sessions.put(keys[0], entry(now + Duration::seconds(1), Some("ann")));
        sessions.put(keys[1], entry(now + Duration::seconds(2), Some("ann")));
        sessions.put(keys[2], entry(now + Duration::seconds(3), None));
        assert_agrees(&sessions);

        // A save that moves the expiry and the principal.
        sessions.put(keys[1], entry(now + Duration::seconds(9), Some("bob")));
        assert_agrees(&sessions);
        sessions.move_expiry(&keys[2], now + Duration::seconds(5));
        assert_agrees(&sessions);

        // Full: the fourth session evicts the one expiring first.
        assert_eq!(sessions.evict_for(&keys[3]), Room::Evicted);
        sessions.put(keys[3], entry(now + Duration::seconds(4), None));
        assert!(sessions.get(&keys[0]).is_none());
        assert_eq!(sessions.keys_of("ann").count(), 0);
        assert_agrees(&sessions);

        // Replacing a session already here evicts nothing.
        assert_eq!(sessions.evict_for(&keys[3]), Room::Free);

        assert_eq!(sessions.sweep(now + Duration::seconds(6), 10), 2);
        assert_eq!(sessions.len(), 1);
        assert_agrees(&sessions);
        assert!(sessions.remove(&keys[1]).is_some());
        assert_agrees(&sessions);
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn a_sweep_stops_at_its_limit_and_at_the_first_live_session() {
        let now = OffsetDateTime::now_utc();
        let shard = Shard::new(100);
        let mut sessions = shard.lock();
        for n in 0..10 {
            let expires_at = now + Duration::seconds(n - 5);
            sessions.put(Id::random().storage_key(), entry(expires_at, None));
        }

        assert_eq!(sessions.sweep(now, 2), 2);
        // Expired at -5..=0 s: six in all, the one expiring at `now`
        // included, since a session is dead at its expiry instant.
        assert_eq!(sessions.sweep(now, 100), 4);
        assert_eq!(sessions.sweep(now, 100), 0);
        assert_eq!(sessions.len(), 4);
    }

    #[test]
    fn keys_hash_by_their_bytes() {
        let key = Id::random().storage_key();
        let hash = |key: &StorageKey| {
            let mut hasher = DigestHasher::default();
            std::hash::Hash::hash(key, &mut hasher);
            hasher.finish()
        };
        assert_eq!(hash(&key), hash(&key));
        assert_ne!(hash(&key), hash(&Id::random().storage_key()));
    }
}

//! A small in-process store that keeps the whole contract, and can be
//! told to break exactly one promise of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use session_conformance::{async_trait, Harness};
use session_core::time::{Duration, OffsetDateTime, UtcOffset};
use session_core::{
    CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError, TouchOutcome,
};

/// The one promise a [`Reference`] store breaks, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Keeps the whole contract.
    None,
    LoadIgnoresExpiry,
    CreateOverwrites,
    /// Checks for a live record, waits a round trip, then inserts.
    CreateRace,
    /// Reports `Created` over an expired record but keeps the old one.
    CreateOverExpiredKeepsOld,
    SaveIgnoresVersion,
    /// Merges the new data into the stored data instead of replacing it.
    SaveMergesData,
    /// Writes a save of a missing record (an upsert).
    SaveResurrectsDeleted,
    SaveIgnoresExpiry,
    /// Checks the version, waits a round trip, then writes.
    SaveRace,
    TouchBumpsVersion,
    /// Writes back the record as this store last loaded it.
    TouchRewritesData,
    /// Brings a deleted record back when touched.
    TouchCreatesMissing,
    TouchIgnoresExpiry,
    TouchPastDeadline,
    DeleteErrorsOnMissing,
    /// Also deletes records expiring 1 ms after `now`.
    DeleteExpiredDeletesLive,
    /// Returns how many records it looked at, not how many it removed.
    DeleteExpiredMiscounts,
    /// Counts the expired records but removes none.
    DeleteExpiredCountsWithoutDeleting,
    /// Lists principals by prefix (`alice` also finds `alice2`).
    PrincipalPrefixMatch,
    /// Has no index but answers `list_by_principal` with an empty list.
    UnsupportedAnswersEmpty,
    /// Still lists deleted records.
    PrincipalStaleAfterDelete,
    /// Lists a record under the principal it was created with.
    PrincipalStaleAfterChange,
    PrincipalListsExpired,
    /// Ignores the namespace: every store of one server shares records.
    NamespacesShared,
    /// Cuts strings longer than 64 KiB.
    TruncatesLargeValues,
    /// Reports `TooLarge` past its limit but stores the record anyway.
    TooLargeButStores,
    /// Keeps times to the second.
    LosesMillis,
    /// Returns times in UTC+01:00.
    NonUtc,
    /// Keeps numbers as `f64`.
    LosesBigIntegers,
    /// Drops NUL characters from strings.
    StripsNul,
    /// Treats a record with data `{}` as no record.
    EmptyDataAsMissing,
    DropsExpiryOverride,
    /// Files records under the first half of their key only.
    KeyCollapse,
}

/// The pause between a check and the write that trusts it, as a
/// backend's network round trip would make it.
async fn round_trip() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

/// One "server": records of every namespace, plus what the faults need.
#[derive(Debug, Default)]
struct Server {
    records: HashMap<Slot, Record>,
    deleted: HashMap<Slot, Record>,
    created_for: HashMap<Slot, Option<String>>,
    last_loaded: HashMap<Slot, Record>,
}

type Slot = (String, StorageKey);

/// The reference store over one namespace of a shared server.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    server: Arc<Mutex<Server>>,
    namespace: String,
    fault: Fault,
    principals: bool,
    limit: Option<usize>,
}

/// Builds [`Reference`] stores on one server.
#[derive(Debug)]
pub(crate) struct ReferenceHarness {
    server: Arc<Mutex<Server>>,
    fault: Fault,
    principals: bool,
    limit: Option<usize>,
}

impl ReferenceHarness {
    /// A correct store with a principal index and no size limit.
    pub(crate) fn correct() -> Self {
        Self::broken(Fault::None)
    }

    /// A store that breaks `fault`.
    pub(crate) fn broken(fault: Fault) -> Self {
        let principals = fault != Fault::UnsupportedAnswersEmpty;
        let limit = (fault == Fault::TooLargeButStores).then_some(1 << 19);
        Self {
            server: Arc::default(),
            fault,
            principals,
            limit,
        }
    }

    /// Without a principal index.
    pub(crate) fn without_principals(mut self) -> Self {
        self.principals = false;
        self
    }

    /// Refusing records whose data exceeds `limit` bytes of JSON.
    pub(crate) fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

#[async_trait]
impl Harness for ReferenceHarness {
    type Store = Reference;

    async fn store(&self, namespace: &str) -> Reference {
        Reference {
            server: Arc::clone(&self.server),
            namespace: namespace.to_owned(),
            fault: self.fault,
            principals: self.principals,
            limit: self.limit,
        }
    }
}

impl Reference {
    fn server(&self) -> MutexGuard<'_, Server> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot(&self, key: &StorageKey) -> Slot {
        let namespace = match self.fault {
            Fault::NamespacesShared => String::new(),
            _ => self.namespace.clone(),
        };
        let mut bytes = *key.as_bytes();
        if self.fault == Fault::KeyCollapse {
            bytes[16..].fill(0);
        }
        (namespace, StorageKey::from_bytes(bytes))
    }

    fn mine(&self, slot: &Slot) -> bool {
        self.fault == Fault::NamespacesShared || slot.0 == self.namespace
    }

    fn broken(&self, fault: Fault) -> bool {
        self.fault == fault
    }

    /// The record as this store keeps it, or `TooLarge`.
    fn stored(&self, record: &Record) -> Result<Record, StoreError> {
        let mut record = record.clone();
        if let Some(limit) = self.limit {
            let size = record.data.as_str().len();
            if size > limit && !self.broken(Fault::TooLargeButStores) {
                return Err(StoreError::TooLarge { size, limit });
            }
        }

        match self.fault {
            Fault::LosesMillis => {
                for time in [
                    &mut record.created_at,
                    &mut record.expires_at,
                    &mut record.deadline,
                ] {
                    *time -= Duration::nanoseconds(i64::from(time.nanosecond()));
                }
            }
            Fault::NonUtc => {
                let offset = UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC);
                for time in [
                    &mut record.created_at,
                    &mut record.expires_at,
                    &mut record.deadline,
                ] {
                    *time = time.to_offset(offset);
                }
            }
            Fault::DropsExpiryOverride => record.expiry = None,
            Fault::TruncatesLargeValues | Fault::LosesBigIntegers | Fault::StripsNul => {
                let mut map = record.data.to_map();
                for value in map.values_mut() {
                    self.mangle(value);
                }
                record.data = map.into();
            }
            _ => {}
        }
        Ok(record)
    }

    fn mangle(&self, value: &mut Value) {
        match value {
            Value::String(text) if self.broken(Fault::TruncatesLargeValues) => {
                text.truncate(64 * 1024);
            }
            Value::String(text) if self.broken(Fault::StripsNul) => text.retain(|c| c != '\0'),
            Value::Number(number) if self.broken(Fault::LosesBigIntegers) => {
                if let Some(float) = number.as_f64().and_then(serde_json::Number::from_f64) {
                    *number = float;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mangle(item)),
            Value::Object(map) => map.values_mut().for_each(|item| self.mangle(item)),
            _ => {}
        }
    }

    /// After a `TooLarge` answer a broken store writes anyway.
    fn refused(&self, record: &Record) -> Option<StoreError> {
        let limit = self.limit?;
        let size = record.data.as_str().len();
        (size > limit).then_some(StoreError::TooLarge { size, limit })
    }

    fn principal_matches(&self, slot: &Slot, record: &Record, principal: &str) -> bool {
        let server_view = match self.fault {
            Fault::PrincipalStaleAfterChange => self
                .server()
                .created_for
                .get(slot)
                .cloned()
                .unwrap_or_else(|| record.principal.clone()),
            _ => record.principal.clone(),
        };
        match (server_view.as_deref(), self.fault) {
            (Some(mine), Fault::PrincipalPrefixMatch) => mine.starts_with(principal),
            (mine, _) => mine == Some(principal),
        }
    }

    /// The records this store would file under `principal`.
    fn of_principal(&self, principal: &str, now: OffsetDateTime) -> Vec<(Slot, Record)> {
        let candidates: Vec<(Slot, Record)> = {
            let server = self.server();
            let deleted = self.broken(Fault::PrincipalStaleAfterDelete);
            server
                .records
                .iter()
                .chain(server.deleted.iter().filter(|_| deleted))
                .filter(|(slot, _)| self.mine(slot))
                .map(|(slot, record)| (slot.clone(), record.clone()))
                .collect()
        };

        let with_expired = self.broken(Fault::PrincipalListsExpired);
        candidates
            .into_iter()
            .filter(|(slot, record)| self.principal_matches(slot, record, principal))
            .filter(|(_, record)| with_expired || !record.is_expired(now))
            .collect()
    }
}

#[async_trait]
impl Store for Reference {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        let slot = self.slot(&record.key);
        let stored = self.stored(record)?;

        if self.broken(Fault::CreateRace) {
            let free = !self.server().records.contains_key(&slot);
            round_trip().await;
            if !free {
                return Ok(CreateOutcome::Collision);
            }
            self.server().records.insert(slot, stored);
            return Ok(CreateOutcome::Created);
        }

        let mut server = self.server();
        match server.records.get(&slot) {
            Some(old) if !old.is_expired(now) && !self.broken(Fault::CreateOverwrites) => {
                return Ok(CreateOutcome::Collision);
            }
            Some(_) if self.broken(Fault::CreateOverExpiredKeepsOld) => {
                return Ok(CreateOutcome::Created);
            }
            _ => {}
        }
        server
            .created_for
            .insert(slot.clone(), record.principal.clone());
        server.records.insert(slot, stored);
        drop(server);

        match self.refused(record) {
            Some(error) => Err(error),
            None => Ok(CreateOutcome::Created),
        }
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let slot = self.slot(key);
        let mut server = self.server();
        let found = server.records.get(&slot).cloned();

        let live = found.filter(|record| {
            (self.broken(Fault::LoadIgnoresExpiry) || !record.is_expired(now))
                && !(self.broken(Fault::EmptyDataAsMissing) && record.data.is_empty())
        });
        if let Some(record) = &live {
            server.last_loaded.insert(slot, record.clone());
        }
        Ok(live)
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        let slot = self.slot(&record.key);
        let mut stored = self.stored(record)?;

        if self.broken(Fault::SaveRace) {
            let seen = self.server().records.get(&slot).map(|r| r.version);
            round_trip().await;
            if seen != Some(expected_version) {
                return Ok(SaveOutcome::Conflict);
            }
            self.server().records.insert(slot, stored);
            return Ok(SaveOutcome::Saved);
        }

        let mut server = self.server();
        let outcome = match server.records.get(&slot) {
            None if !self.broken(Fault::SaveResurrectsDeleted) => SaveOutcome::Missing,
            Some(old) if old.is_expired(now) && !self.broken(Fault::SaveIgnoresExpiry) => {
                SaveOutcome::Missing
            }
            Some(old)
                if old.version != expected_version && !self.broken(Fault::SaveIgnoresVersion) =>
            {
                SaveOutcome::Conflict
            }
            old => {
                if let (Some(old), true) = (old, self.broken(Fault::SaveMergesData)) {
                    let mut merged = old.data.to_map();
                    merged.extend(stored.data.to_map());
                    stored.data = merged.into();
                }
                SaveOutcome::Saved
            }
        };
        if outcome == SaveOutcome::Saved {
            server.records.insert(slot, stored);
        }
        drop(server);

        match (outcome, self.refused(record)) {
            (SaveOutcome::Saved, Some(error)) => Err(error),
            _ => Ok(outcome),
        }
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        let slot = self.slot(key);
        let mut server = self.server();

        let current = match server.records.get(&slot) {
            Some(old) if old.is_expired(now) && !self.broken(Fault::TouchIgnoresExpiry) => None,
            Some(old) => Some(old.clone()),
            None if self.broken(Fault::TouchCreatesMissing) => server.deleted.get(&slot).cloned(),
            None => None,
        };
        let Some(current) = current else {
            return Ok(TouchOutcome::Missing);
        };

        let mut touched = match self.fault {
            Fault::TouchRewritesData => server.last_loaded.get(&slot).cloned().unwrap_or(current),
            _ => current,
        };
        touched.expires_at = match self.fault {
            Fault::TouchPastDeadline => expires_at,
            _ => expires_at.min(touched.deadline),
        };
        if self.broken(Fault::TouchBumpsVersion) {
            touched.version += 1;
        }
        server.records.insert(slot, touched);
        Ok(TouchOutcome::Touched)
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        let slot = self.slot(key);
        let mut server = self.server();
        match server.records.remove(&slot) {
            Some(old) => {
                server.deleted.insert(slot, old);
                Ok(())
            }
            None if self.broken(Fault::DeleteErrorsOnMissing) => {
                Err(StoreError::backend("delete", "no such record"))
            }
            None => Ok(()),
        }
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let cutoff = match self.fault {
            Fault::DeleteExpiredDeletesLive => now + Duration::milliseconds(1),
            _ => now,
        };
        let mut server = self.server();
        let mine: Vec<Slot> = server
            .records
            .keys()
            .filter(|s| self.mine(s))
            .cloned()
            .collect();

        let mut removed = 0;
        for slot in &mine {
            let expired = server
                .records
                .get(slot)
                .is_some_and(|r| r.expires_at <= cutoff);
            if expired {
                removed += 1;
                if !self.broken(Fault::DeleteExpiredCountsWithoutDeleting) {
                    server.records.remove(slot);
                }
            }
        }
        Ok(match self.fault {
            Fault::DeleteExpiredMiscounts => mine.len() as u64,
            _ => removed,
        })
    }

    fn supports_principal_index(&self) -> bool {
        self.principals
    }

    async fn list_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        if self.broken(Fault::UnsupportedAnswersEmpty) {
            return Ok(Vec::new());
        }
        if !self.principals {
            return Err(StoreError::Unsupported {
                op: "list_by_principal",
            });
        }
        Ok(self
            .of_principal(principal, now)
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    async fn delete_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        if !self.principals {
            return Err(StoreError::Unsupported {
                op: "delete_by_principal",
            });
        }

        let doomed = self.of_principal(principal, now);
        let mut server = self.server();
        let mut removed = 0;
        for (slot, record) in doomed {
            if server.records.remove(&slot).is_some() && !record.is_expired(now) {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

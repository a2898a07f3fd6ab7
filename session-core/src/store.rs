//! The contract every session backend implements.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::id::StorageKey;
use crate::record::Record;

/// What [`Store::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The record was inserted.
    Created,
    /// A live record already has this key; nothing was written.
    Collision,
}

/// What [`Store::save`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The stored version was the expected one; the record was written.
    Saved,
    /// Someone saved in between; nothing was written.
    Conflict,
    /// The record was deleted or has expired; nothing was written, and the
    /// session is not brought back.
    Missing,
}

/// What [`Store::touch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchOutcome {
    /// The expiry was moved; the data was not rewritten.
    Touched,
    /// The record was deleted or has expired; nothing was written.
    Missing,
}

/// A session backend.
///
/// Every method is one round trip to the backend where the backend allows
/// it. Stores are given a [`StorageKey`], never the session id. `now` is the
/// caller's clock: a store must treat a record whose `expires_at <= now` as
/// absent in every operation, whether or not it has removed it yet.
///
/// The `session-conformance` crate checks all of this for any store.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Inserts a new record (its `version` is 1).
    ///
    /// A live record under the same key is never overwritten: that is a
    /// [`CreateOutcome::Collision`]. An expired one may be replaced.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend fails or the record is too large.
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError>;

    /// The live record under `key`, or `None`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Decode`] when the stored record no longer decodes;
    /// other variants when the backend fails.
    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError>;

    /// Writes `record` if the stored version is `expected_version`.
    ///
    /// `record.version` is `expected_version + 1`. A record that is gone or
    /// expired at `now` gives [`SaveOutcome::Missing`] and stays gone.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend fails or the record is too large.
    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError>;

    /// Moves the expiry of a live record, and nothing else.
    ///
    /// The new expiry is `min(expires_at, record.deadline)`. Data written
    /// by others since this caller loaded the record is kept as it is.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend fails.
    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError>;

    /// Removes the record; removing a missing record is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend fails.
    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError>;

    /// Removes every record expired at `now` and returns how many.
    ///
    /// Stores whose backend expires records natively may return 0.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend fails.
    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    /// Whether this store keeps a principal index.
    fn supports_principal_index(&self) -> bool {
        false
    }

    /// The live records whose `principal` is `principal`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`] for stores without a principal index;
    /// other variants when the backend fails.
    async fn list_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        let _ = (principal, now);
        Err(StoreError::Unsupported {
            op: "list_by_principal",
        })
    }

    /// Deletes every record of `principal` ("log out everywhere") and
    /// returns how many live ones there were.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`] for stores without a principal index;
    /// other variants when the backend fails.
    async fn delete_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let _ = (principal, now);
        Err(StoreError::Unsupported {
            op: "delete_by_principal",
        })
    }
}

#[async_trait]
impl<S: Store + ?Sized> Store for Arc<S> {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        (**self).create(record, now).await
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        (**self).load(key, now).await
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        (**self).save(record, expected_version, now).await
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        (**self).touch(key, expires_at, now).await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        (**self).delete(key).await
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        (**self).delete_expired(now).await
    }

    fn supports_principal_index(&self) -> bool {
        (**self).supports_principal_index()
    }

    async fn list_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        (**self).list_by_principal(principal, now).await
    }

    async fn delete_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        (**self).delete_by_principal(principal, now).await
    }
}

//! Errors of the session handle and of stores.

use std::error::Error as StdError;

use time::Duration;

/// A boxed backend error, kept as the `source` of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a store reports when an operation could not be carried out.
///
/// Outcomes that are part of the contract (a key collision, a version
/// conflict, a missing record) are not errors; they are the `Ok` values of
/// the [`Store`](crate::Store) methods.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed: connection refused, query error and so on.
    #[error("session store backend failed during {op}")]
    Backend {
        /// The store operation that failed.
        op: &'static str,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },

    /// The backend did not answer in time.
    #[error("session store did not answer {op} within {after}")]
    Timeout {
        /// The store operation that timed out.
        op: &'static str,
        /// The configured timeout.
        after: Duration,
    },

    /// A stored record no longer decodes (for example after a format
    /// change). The session handle treats it as "no session".
    #[error("stored session record does not decode")]
    Decode {
        /// What was wrong with it.
        #[source]
        source: BoxError,
    },

    /// The record is larger than this store accepts; nothing was written.
    #[error("session record of {size} bytes exceeds the store's limit of {limit}")]
    TooLarge {
        /// The encoded size of the record.
        size: usize,
        /// The store's limit.
        limit: usize,
    },

    /// The store does not implement this operation (the principal index).
    #[error("this session store does not support {op}")]
    Unsupported {
        /// The operation asked for.
        op: &'static str,
    },
}

impl StoreError {
    /// A backend failure during `op`.
    pub fn backend(op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            op,
            source: source.into(),
        }
    }

    /// A record that does not decode.
    pub fn decode(source: impl Into<BoxError>) -> Self {
        Self::Decode {
            source: source.into(),
        }
    }

    /// Whether the store lacks the operation.
    #[must_use]
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Self::Unsupported { .. })
    }

    /// Whether the backend timed out.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Whether a stored record failed to decode.
    #[must_use]
    pub fn is_decode(&self) -> bool {
        matches!(self, Self::Decode { .. })
    }

    /// Whether the record was too large to store.
    #[must_use]
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge { .. })
    }
}

/// What the session handle reports to a handler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed or timed out.
    #[error("session store failed")]
    Store(#[from] StoreError),

    /// A value could not be turned into JSON.
    #[error("session value for key {key:?} does not serialize")]
    Serialize {
        /// The session key (a name the application chose, not an id).
        key: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored value does not have the shape the handler asked for.
    #[error("session value for key {key:?} does not deserialize")]
    Deserialize {
        /// The session key.
        key: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// `set` was given something that is not a JSON object.
    #[error("session data must be a JSON object")]
    NotAnObject,

    /// Concurrent requests kept changing the session; the save gave up.
    #[error("session save gave up after {attempts} conflicting attempts")]
    Contention {
        /// How many saves were tried.
        attempts: u32,
    },

    /// The session was written back already (the response has left); a
    /// change now would be lost, so it is refused.
    #[error("the session was already committed; this change would be lost")]
    Finished,

    /// Every fresh id collided with an existing session.
    #[error("no unused session id after {attempts} attempts")]
    IdCollision {
        /// How many ids were tried.
        attempts: u32,
    },
}

impl Error {
    /// Whether the store failed or timed out (a 5xx, not a client error).
    #[must_use]
    pub fn is_store(&self) -> bool {
        matches!(self, Self::Store(_))
    }
}

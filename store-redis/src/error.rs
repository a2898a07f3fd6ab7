//! The errors of this crate.

use std::time::Duration;

/// What went wrong setting up a [`RedisStore`](crate::RedisStore), or in a
/// reply it could not use.
///
/// Store operations report a [`session_core::StoreError`]; when the cause
/// is Redis itself its `source` is the [`redis::RedisError`], and when it
/// is a stored record or a script reply its `source` is this type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not valid, or the first connection failed.
    #[error("cannot connect to redis")]
    Connect {
        /// The redis client's error.
        #[source]
        source: redis::RedisError,
    },

    /// The first connection did not succeed within the connect timeout,
    /// and one more try named no other cause: it got no answer either,
    /// or it connected, the server having been slow the first time.
    #[error("redis did not accept a connection within {after:?}")]
    ConnectTimeout {
        /// The configured connect timeout.
        after: Duration,
    },

    /// A cluster URL that lists no node, or is otherwise malformed.
    #[error("invalid redis cluster url: {reason}")]
    InvalidClusterUrl {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A cluster URL was given to a build without the `cluster` feature.
    #[error("a redis cluster url needs the `cluster` feature of store-redis")]
    ClusterDisabled,

    /// A store script replied with something it never sends; another
    /// program may be writing under this store's key prefix.
    #[error("unexpected reply from the {script} script")]
    UnexpectedReply {
        /// The script that replied.
        script: &'static str,
    },

    /// Redis answered a read with something no Redis sends for it; a
    /// proxy in between may have changed the reply.
    #[error("unexpected reply to {command}")]
    UnexpectedRead {
        /// The command that was answered.
        command: &'static str,
    },

    /// A stored record lacks a field, or the field has the wrong form
    /// (`layout` when the key holds no record of any known layout).
    #[error("stored session field {field} is missing or malformed")]
    Malformed {
        /// The record's field.
        field: &'static str,
    },

    /// A stored record's JSON field does not parse.
    #[error("stored session field {field} is not the expected json")]
    Json {
        /// The record's field.
        field: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Whether Redis could not be reached (or not in time) at startup.
    #[must_use]
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::ConnectTimeout { .. })
    }

    /// Whether a stored record did not decode.
    #[must_use]
    pub fn is_malformed_record(&self) -> bool {
        matches!(self, Self::Malformed { .. } | Self::Json { .. })
    }
}

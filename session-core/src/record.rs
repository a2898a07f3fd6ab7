//! What a store keeps for one session.

use time::OffsetDateTime;

use crate::data::Data;
use crate::expiry::Expiry;
use crate::id::StorageKey;

/// One session as a store keeps it.
///
/// Times are UTC with millisecond precision; a store must read back exactly
/// what it was given. `expires_at` never exceeds `deadline`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// SHA-256 of the session id; the store's primary key.
    pub key: StorageKey,
    /// The session's values.
    pub data: Data,
    /// 1 when created, one more on every successful save, up to
    /// [`Record::LAST_VERSION`].
    pub version: u64,
    /// When the session was created.
    pub created_at: OffsetDateTime,
    /// When the session dies unless it is used again.
    pub expires_at: OffsetDateTime,
    /// When the session dies however busy it is (absolute lifetime); a
    /// touch never moves `expires_at` past it.
    pub deadline: OffsetDateTime,
    /// The logged-in user, for "log out everywhere".
    pub principal: Option<String>,
    /// This session's own expiry policy ("remember me"), if it has one.
    pub expiry: Option<Expiry>,
}

impl Record {
    /// The highest version a session reaches: a record at it is never
    /// saved again. A [`Session`](crate::Session) treats one it loads as
    /// no session, and moves one its own save brought there to a new id
    /// at version 1, as a rotation does.
    ///
    /// `i64::MAX`, so that every store can hold every version (SQL's
    /// `bigint` included). Only a record written by hand gets there: a
    /// save every nanosecond would take 292 years.
    pub const LAST_VERSION: u64 = u64::MAX >> 1;

    /// Whether the record is dead at `now`.
    ///
    /// A record is live strictly before `expires_at`: at the expiry
    /// millisecond itself it is gone.
    #[must_use]
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    /// The expiry override serialized as JSON, if any.
    #[must_use]
    pub fn expiry_json(&self) -> Option<String> {
        self.expiry
            .as_ref()
            .and_then(|expiry| serde_json::to_string(expiry).ok())
    }

    /// Parses a stored expiry override.
    ///
    /// # Errors
    ///
    /// Returns the JSON error when the text is not a stored expiry.
    pub fn parse_expiry(text: Option<&str>) -> Result<Option<Expiry>, serde_json::Error> {
        text.map(serde_json::from_str).transpose()
    }
}

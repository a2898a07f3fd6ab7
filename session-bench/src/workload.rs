//! The records the store benchmarks write, and the operations on them.

use serde_json::json;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{Clock as _, Data, Id, Record, SystemClock};

/// One store operation, as the benchmarks time it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Insert a new record.
    Create,
    /// Read a record by key.
    Load,
    /// Rewrite a record's data (the store checks its version).
    Save,
    /// Move a record's expiry only.
    Touch,
    /// Remove a record.
    Delete,
}

impl Op {
    /// Every operation, in the order a record's life goes through them.
    pub const ALL: [Op; 5] = [Op::Create, Op::Load, Op::Save, Op::Touch, Op::Delete];

    /// The operation's name in tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Load => "load",
            Op::Save => "save",
            Op::Touch => "touch",
            Op::Delete => "delete",
        }
    }
}

/// One session's records through a benchmark round, built before the
/// clock starts.
#[derive(Debug, Clone)]
pub struct Item {
    /// The record as created (version 1).
    pub record: Record,
    /// The record as saved (version 2, one more item in the cart).
    pub saved: Record,
    /// `record`'s data as JSON text: the raw clients' payload.
    pub data_json: String,
    /// `saved`'s data as JSON text.
    pub saved_json: String,
    /// Where a touch moves the expiry.
    pub touch_to: OffsetDateTime,
    /// The caller's clock for every operation on this item.
    pub now: OffsetDateTime,
}

impl Item {
    /// Milliseconds from `now` to the created record's expiry.
    #[must_use]
    pub fn ttl_millis(&self) -> i64 {
        millis(self.record.expires_at - self.now)
    }

    /// Milliseconds from `now` to the touched expiry.
    #[must_use]
    pub fn touch_ttl_millis(&self) -> i64 {
        millis(self.touch_to - self.now)
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.whole_milliseconds()).unwrap_or(i64::MAX)
}

/// About 100 bytes of session data, as a web app would keep: a user id,
/// a CSRF token, a small cart and two preferences. `extra` items go in
/// the cart.
#[must_use]
pub fn session_data(n: u64, extra: usize) -> Data {
    let mut cart = vec![101, 202, 303];
    cart.extend((0..extra).map(|i| 404 + 101 * i));

    let value = json!({
        "user": format!("u-{n:010}"),
        "csrf": Id::random().encode(),
        "cart": cart,
        "theme": "dark",
        "locale": "en-GB",
    });
    Data::try_from(value).unwrap_or_default()
}

/// A new record under a random key with [`session_data`] `n`, created at
/// `now`, live for an hour.
#[must_use]
pub fn record(n: u64, now: OffsetDateTime) -> Record {
    Record {
        key: Id::random().storage_key(),
        data: session_data(n, 0),
        version: 1,
        created_at: now,
        expires_at: now + Duration::hours(1),
        deadline: now + Duration::days(30),
        principal: None,
        expiry: None,
    }
}

/// `count` fresh items with random keys, stamped with the current time.
#[must_use]
pub fn items(count: usize) -> Vec<Item> {
    let now = SystemClock.now();

    (0..count)
        .map(|n| {
            let record = record(n as u64, now);
            let saved = Record {
                data: session_data(n as u64, 1),
                version: 2,
                ..record.clone()
            };
            Item {
                data_json: record.data.as_str().to_owned(),
                saved_json: saved.data.as_str().to_owned(),
                touch_to: now + Duration::hours(2),
                now,
                record,
                saved,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_data_is_about_a_hundred_bytes() {
        let item = &items(1)[0];

        assert!(
            (90..=130).contains(&item.data_json.len()),
            "{}",
            item.data_json
        );
        assert_ne!(item.data_json, item.saved_json);
        assert_eq!(item.ttl_millis(), 3_600_000);
        assert!(item.touch_to < item.record.deadline);
    }
}

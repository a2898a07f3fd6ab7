//! What goes in comes back out: data, times, principal, expiry, keys.

use serde_json::{json, Value};
use session_core::time::{Duration, OffsetDateTime};
use session_core::{CookieLifetime, Expiry, Record, StorageKey};

use crate::fixture::{data, fresh_key, next, now, record, simple, LIFETIME, MS};
use crate::subject::Subject;
use crate::{Failure, Harness};

/// How many records the key case spreads over.
const SPREAD: usize = 50;

/// Data with edge values reads back exactly: nested objects and arrays,
/// unicode keys and values, the empty key and empty strings, quotes and
/// escapes, `i64::MIN`, `i64::MAX`, `u64::MAX`, floats (`f64::MAX`,
/// `f64::MIN_POSITIVE`, 0.1, ...), booleans and nulls, deep nesting.
///
/// What users get: any JSON a handler stores is read back as it was, on
/// every store; no rounding, no reordering that changes meaning, no lost
/// keys.
///
/// # Errors
///
/// The broken promise, when the data reads back different.
pub async fn round_trip_edge_data<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "round_trip_edge_data").await;
    let t0 = now();
    let edge = record(fresh_key(), t0, edge_data());

    s.create_new(&edge, t0).await?;
    s.expect_record(
        &edge.key,
        t0,
        &edge,
        "edge data reads back exactly after create",
    )
    .await?;

    let saved = next(&edge, edge_data());
    s.save_ok(&saved, 1, t0).await?;
    s.expect_record(
        &edge.key,
        t0,
        &saved,
        "edge data reads back exactly after save",
    )
    .await
}

fn edge_data() -> session_core::Data {
    let mut deep = json!("bottom");
    for level in 0..32 {
        deep = if level % 2 == 0 {
            json!([deep])
        } else {
            json!({ "down": deep })
        };
    }

    data(json!({
        "nested": { "a": { "b": { "c": [1, [2, [3, { "d": null }]]] } } },
        "mixed": [true, false, null, 0, "", [], {}],
        "unicode": "héllo wörld – 日本語 – 🦀 – עברית",
        "ключ": "значение",
        "🔑": "🗝",
        "": "the empty key",
        "empty": "",
        "quotes": "\"'`; DROP TABLE sessions; --",
        "escapes": "tab\there\nnewline\rreturn\\backslash/slash",
        "combining": "e\u{301} is not é",
        "i64_min": i64::MIN,
        "i64_max": i64::MAX,
        "u64_max": u64::MAX,
        "zero": 0,
        "negative": -1,
        "floats": [0.1, -2.5, 1e-7, std::f64::consts::PI, f64::MAX, f64::MIN_POSITIVE, 1.5e300],
        "long": "x".repeat(10_000),
        "k".repeat(300): "a long key",
        "deep": deep,
    }))
}

/// Strings with NUL and every other control character, a byte-order mark
/// and the line separators, in keys and values, read back exactly.
///
/// What users get: whatever text a visitor typed into a form can be kept
/// in the session; a store cannot fail, or strip characters, on it.
///
/// # Errors
///
/// The broken promise, when the store fails on such text or changes it.
pub async fn round_trip_control_characters<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "round_trip_control_characters").await;
    let t0 = now();
    let controls: String = (0u8..0x20).chain([0x7f]).map(char::from).collect();
    let text = format!("{controls}\u{feff}\u{2028}\u{2029}\u{fffd}");
    let mut map = data(json!({ "controls": text.clone(), "nul\u{0}key": "\u{0}" }));
    map.insert(text.clone(), Value::from(text));
    let odd = record(fresh_key(), t0, map);

    s.create_new(&odd, t0).await?;
    s.expect_record(
        &odd.key,
        t0,
        &odd,
        "control characters, NUL included, read back exactly",
    )
    .await
}

/// A record whose data is the empty object `{}` is stored and reads back
/// as `{}`, after create and after a save that empties the data.
///
/// What users get: a session cleared of every value still exists (and
/// still holds the visitor's place) until it is deleted.
///
/// # Errors
///
/// The broken promise, when such a record is missing or reads back
/// otherwise.
pub async fn round_trip_empty_data<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "round_trip_empty_data").await;
    let t0 = now();
    let empty = record(fresh_key(), t0, data(json!({})));
    s.create_new(&empty, t0).await?;
    s.expect_record(
        &empty.key,
        t0,
        &empty,
        "a record with data {} reads back with data {}",
    )
    .await?;

    let filled = next(&empty, data(json!({ "a": 1 })));
    let emptied = next(&filled, data(json!({})));
    for (each, expected) in [(&filled, 1), (&emptied, 2)] {
        s.save_ok(each, expected, t0).await?;
    }
    s.expect_record(
        &empty.key,
        t0,
        &emptied,
        "a save that empties the data reads back with data {}",
    )
    .await
}

/// The principal and the per-session expiry override ("remember me")
/// read back exactly, both when set and when absent, after create and
/// after a save that changes them.
///
/// What users get: "remember me" and "log out everywhere" survive a round
/// trip through every store.
///
/// # Errors
///
/// The broken promise, when either field reads back different.
pub async fn round_trip_expiry_and_principal<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "round_trip_expiry_and_principal").await;
    let t0 = now();
    let remember_me = Expiry::new(Duration::days(14), Duration::days(365))
        .with_cookie(CookieLifetime::BrowserSession);
    let with = Record {
        principal: Some("user:42 ü@example.org".to_owned()),
        expiry: Some(remember_me),
        ..simple(t0, "alice")
    };
    let without = simple(t0, "anonymous");
    for each in [&with, &without] {
        s.create_new(each, t0).await?;
        s.expect_record(
            &each.key,
            t0,
            each,
            "principal and expiry override read back as created",
        )
        .await?;
    }

    let cleared = Record {
        principal: None,
        expiry: None,
        ..next(&with, with.data.clone())
    };
    let set = Record {
        principal: Some("bob".to_owned()),
        expiry: Some(Expiry::new(Duration::minutes(5), Duration::hours(8))),
        ..next(&without, without.data.clone())
    };
    for each in [&cleared, &set] {
        s.save_ok(each, 1, t0).await?;
        s.expect_record(
            &each.key,
            t0,
            each,
            "principal and expiry override read back as saved",
        )
        .await?;
    }
    Ok(())
}

/// `created_at`, `expires_at` and `deadline` read back equal to the
/// millisecond (including .001 and .999, and a deadline past 2038), in
/// UTC, after create, touch and save.
///
/// What users get: expiry decisions are the same on every store and on
/// every instance; nothing is rounded to seconds.
///
/// # Errors
///
/// The broken promise, when a time reads back different or not in UTC.
pub async fn timestamps_exact_millis<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "timestamps_exact_millis").await;
    let t0 = now();
    let first = Record {
        created_at: at_millis(t0 - Duration::seconds(1), 1),
        expires_at: at_millis(t0 + LIFETIME, 999),
        deadline: at_millis(t0 + Duration::days(365 * 20), 500),
        ..simple(t0, "alice")
    };
    s.create_new(&first, t0).await?;
    check_times(
        &s,
        &first,
        t0,
        "times read back to the millisecond, in UTC, after create",
    )
    .await?;

    let touched_to = at_millis(t0 + LIFETIME * 2, 7);
    s.touch_ok(&first.key, touched_to, t0).await?;
    let touched = Record {
        expires_at: touched_to,
        ..first.clone()
    };
    check_times(
        &s,
        &touched,
        t0,
        "times read back to the millisecond after touch",
    )
    .await?;

    let saved = Record {
        expires_at: at_millis(t0 + LIFETIME * 3, 998),
        ..next(&touched, touched.data.clone())
    };
    s.save_ok(&saved, 1, t0).await?;
    check_times(
        &s,
        &saved,
        t0,
        "times read back to the millisecond after save",
    )
    .await
}

/// `at` with its millisecond set to `millis`.
fn at_millis(at: OffsetDateTime, millis: u16) -> OffsetDateTime {
    at.replace_millisecond(millis).unwrap_or(at)
}

async fn check_times<S: session_core::Store>(
    s: &Subject<S>,
    want: &Record,
    now: OffsetDateTime,
    promise: &str,
) -> Result<(), Failure> {
    let Some(got) = s.load(&want.key, now).await? else {
        return Err(s.fail(promise, "no record"));
    };

    let times = [got.created_at, got.expires_at, got.deadline];
    s.check(times.iter().all(|t| t.offset().is_utc()), promise, || {
        format!("times with offsets {:?}", times.map(|t| t.offset()))
    })?;
    s.check_record(Some(got), want, promise)
}

/// Records under many keys, including keys that differ from each other in
/// one byte only (first, middle or last), are kept apart: each loads as
/// its own, a key never used loads nothing, and a delete removes only its
/// own record.
///
/// What users get: one visitor never gets another's session, however the
/// store encodes keys.
///
/// # Errors
///
/// The broken promise, when two keys share a record.
pub async fn keys_kept_apart<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "keys_kept_apart").await;
    let t0 = now();
    let base = *fresh_key().as_bytes();
    let near = |byte: usize| {
        let mut bytes = base;
        bytes[byte] ^= 0x01;
        StorageKey::from_bytes(bytes)
    };

    let mut keys = vec![StorageKey::from_bytes(base), near(0), near(15), near(31)];
    keys.extend((keys.len()..SPREAD).map(|_| fresh_key()));
    let records: Vec<Record> = keys
        .iter()
        .enumerate()
        .map(|(n, key)| record(*key, t0, data(json!({ "n": n }))))
        .collect();
    for each in &records {
        s.create_new(each, t0).await?;
    }

    for each in &records {
        s.expect_record(&each.key, t0, each, "every key loads its own record")
            .await?;
    }
    s.expect_absent(
        &near(7),
        t0,
        "a key one byte away from stored ones loads nothing",
    )
    .await?;

    s.delete(&records[0].key).await?;
    for each in &records[1..] {
        s.expect_record(
            &each.key,
            t0 + MS,
            each,
            "a delete removes only the record under its key",
        )
        .await?;
    }
    Ok(())
}

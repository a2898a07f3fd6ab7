//! The Redis store's string layout (`s1 ...` header) and its reading of
//! the previous hash layout, from a review that tried to break them: odd
//! legacy contents, damaged strings, the principal index after each
//! write, reads racing the rewrite of a hash, concurrency, retries and
//! extremes.

use std::collections::BTreeSet;
use std::sync::Arc;

use redis::Cmd;
use serde_json::json;
use session_core::time::Duration;
use session_core::{
    from_unix_millis, to_unix_millis, Commit, CreateOutcome, Data, Expiry, Id, Record, SaveOutcome,
    Session, SessionConfig, Store, TouchOutcome,
};
use store_redis::RedisStore;

#[macro_use]
mod redis_target;

use redis_target::{
    legacy_fields, ms, now, on_cluster, on_node, owned_by, record, write_as_hash, write_hash, Raw,
    Target,
};

on_node_and_cluster!(
    load_racing_a_save_of_a_hash,
    list_racing_saves_of_hashes,
    damaged_data_under_a_live_header_is_never_loaded,
    legacy_hash_with_damaged_fields_is_never_loaded,
    foreign_hash_loads_as_no_session,
    unpadded_header_is_not_a_record,
    other_types_are_decode_errors,
    legacy_odd_principals_round_trip_and_index,
    legacy_index_follows_every_write,
    legacy_hash_without_writer_or_optional_fields,
    concurrent_saves_have_one_winner,
    touch_past_the_deadline_ends_the_session,
    times_before_1970,
    versions_near_u64_max,
    a_session_at_the_top_versions_starts_afresh,
    one_mebibyte_of_data,
);

on_node_only!(
    retried_writes_are_recognised_by_their_token,
    stored_string_is_the_documented_layout,
);

/// The string the codec documents for `record` written by `writer`.
fn encode(record: &Record, writer: u64) -> Vec<u8> {
    let expiry = record
        .expiry
        .as_ref()
        .map(|expiry| serde_json::to_vec(expiry).expect("json"))
        .unwrap_or_default();
    let principal_len = record
        .principal
        .as_ref()
        .map_or(-1, |text| i64::try_from(text.len()).expect("fits"));
    let mut out = format!(
        "s1 {:020} {:020} {:020} {:020} {:010} {} {}\n",
        record.version,
        writer,
        to_unix_millis(record.expires_at),
        to_unix_millis(record.deadline),
        principal_len,
        to_unix_millis(record.created_at),
        expiry.len(),
    )
    .into_bytes();
    out.extend_from_slice(record.principal.as_deref().unwrap_or_default().as_bytes());
    out.extend_from_slice(&expiry);
    out.extend_from_slice(record.data.as_str().as_bytes());
    out
}

async fn set_string(t: &mut Target, key: &str, value: &[u8], ttl_ms: i64) {
    t.raw
        .query::<redis::Value>(redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ttl_ms))
        .await;
}

// ---------------------------------------------------------------------
// Findings (fail on the reviewed change)
// ---------------------------------------------------------------------

/// `fetch` reads a record with `GET` and, on `WRONGTYPE`, with a second
/// command (`HMGET`). A save (or create) that rewrites the hash as a
/// string between the two makes the `HMGET` fail with `WRONGTYPE`, which
/// `fetch_legacy` reports as `Malformed { field: "layout" }`: a live
/// session loads as a decode error, which the middleware treats as no
/// session (the user is logged out during the upgrade).
async fn load_racing_a_save_of_a_hash(mut t: Target) {
    let now = now();
    let mut errors = Vec::new();
    for round in 0..20 {
        let legacy = owned_by("racer", now);
        write_as_hash(&mut t, &legacy, now).await;
        let next = Record {
            version: 2,
            ..legacy.clone()
        };

        let (loaded, saved) =
            tokio::join!(t.store.load(&legacy.key, now), t.store.save(&next, 1, now));

        assert_eq!(saved.expect("save"), SaveOutcome::Saved);
        match loaded {
            Ok(Some(record)) => assert!(record == legacy || record == next),
            Ok(None) => errors.push(format!("round {round}: a live session loaded as None")),
            Err(error) => errors.push(format!(
                "round {round}: {error} (decode: {})",
                error.is_decode()
            )),
        }
    }
    assert!(
        errors.is_empty(),
        "{} of 20 loads racing a save of a live legacy record failed:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// Same race in `list_by_principal`: the `GET` (a pipeline on one node,
/// one per record on a cluster) sees a hash, the `HMGET` that follows finds a string, and
/// the record is skipped as undecodable: a live session vanishes from
/// the list.
async fn list_racing_saves_of_hashes(mut t: Target) {
    let now = now();
    let mut missing = 0;
    for _round in 0..10 {
        let principal = format!("lister-{}", &Id::random().storage_key().to_hex()[..6]);
        let mut all = Vec::new();
        for _ in 0..40 {
            let legacy = owned_by(&principal, now);
            write_as_hash(&mut t, &legacy, now).await;
            all.push(legacy);
        }
        let store = t.store.clone();
        let saves = all.clone();
        let saver = async move {
            for legacy in saves.iter().rev() {
                let next = Record {
                    version: 2,
                    ..legacy.clone()
                };
                assert_eq!(
                    store.save(&next, 1, now).await.expect("save"),
                    SaveOutcome::Saved
                );
            }
        };
        let (listed, ()) = tokio::join!(t.store.list_by_principal(&principal, now), saver);
        missing += all.len() - listed.expect("list").len();
        // Once the saves are done every one of them is listed again.
        let after = t
            .store
            .list_by_principal(&principal, now)
            .await
            .expect("list");
        assert_eq!(
            after.len(),
            all.len(),
            "control: all listed after the saves"
        );
    }
    assert_eq!(
        missing, 0,
        "live sessions left out of list_by_principal while they were saved"
    );
}

/// A string whose header is intact and says "live" but whose data is
/// damaged is never loaded or listed (a decode error, which the
/// middleware treats as no session). The scripts judge a key by its
/// header, so a create with the same key collides with it and it ends at
/// its TTL, as lib.rs says.
async fn damaged_data_under_a_live_header_is_never_loaded(mut t: Target) {
    let now = now();
    let good = encode(&owned_by("dora", now), 99);
    let header_end = good.iter().position(|&b| b == b'\n').expect("a header") + 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated body", good[..good.len() - 3].to_vec()),
        ("data not json", {
            let mut bad = good.clone();
            let at = bad.len() - 1;
            bad[at] = b'!';
            bad
        }),
        ("header only", good[..header_end].to_vec()),
    ];
    for (what, value) in cases {
        let fresh = owned_by("dora", now);
        let key = t.store.record_key(&fresh.key);
        set_string(&mut t, &key, &value, 3_600_000).await;

        let error = t.store.load(&fresh.key, now).await.expect_err(what);
        assert!(error.is_decode(), "{what}: {error}");
        let listed = t.store.list_by_principal("dora", now).await.expect("list");
        assert!(listed.iter().all(|r| r.key != fresh.key), "{what}: listed");

        let created = t.store.create(&fresh, now).await.expect("create");
        assert_eq!(created, CreateOutcome::Collision, "{what}");
        let ttl = t.raw.pttl(&key).await;
        assert!((1..=3_600_000).contains(&ttl), "{what}: PTTL {ttl}");
        t.store.delete(&fresh.key).await.expect("delete");
        assert!(!t.raw.exists(&key).await, "{what}: deleted");
    }
}

/// Hashes with damaged fields load as decode errors. The scripts judge
/// them by their header fields (lib.rs): whatever a create or touch
/// makes of one, it answers, and no load ever returns a wrong session.
async fn legacy_hash_with_damaged_fields_is_never_loaded(mut t: Target) {
    let now = now();
    let later = now + Duration::hours(1);
    let cases: Vec<(&str, &str, Option<&[u8]>)> = vec![
        ("no data", "data", None),
        ("data not an object", "data", Some(b"[1,2]")),
        ("no version", "version", None),
        ("negative version", "version", Some(b"-1")),
        ("version past u64", "version", Some(b"18446744073709551616")),
        ("expires past i64", "expires", Some(b"99999999999999999999")),
        ("created not a number", "created", Some(b"yesterday")),
        ("no created", "created", None),
    ];
    let mut wrong = Vec::new();
    for (what, field, value) in cases {
        let legacy = owned_by("ed", now);
        let mut fields: Vec<(String, Vec<u8>)> = legacy_fields(&legacy)
            .into_iter()
            .filter(|(name, _)| name != field)
            .collect();
        if let Some(value) = value {
            fields.push((field.to_owned(), value.to_vec()));
        }
        write_hash(&mut t, &legacy, &fields, Some("ed"), 3_600_000).await;

        match t.store.load(&legacy.key, now).await {
            Err(error) if error.is_decode() => {}
            other => {
                wrong.push(format!("{what}: load gave {other:?}"));
                continue;
            }
        }

        let created = t.store.create(&legacy, now).await.expect("create");
        let loaded = t.store.load(&legacy.key, now).await;
        match (created, loaded) {
            (CreateOutcome::Created, Ok(Some(record))) if record == legacy => {}
            (CreateOutcome::Collision, Err(error)) if error.is_decode() => {}
            (created, loaded) => {
                wrong.push(format!("{what}: create {created:?}, then load {loaded:?}"));
            }
        }
        t.store.delete(&legacy.key).await.expect("delete");
        write_hash(&mut t, &legacy, &fields, Some("ed"), 3_600_000).await;
        t.store.touch(&legacy.key, later, now).await.expect("touch");
        // A touch may repair a damaged expiry; what loads then is this
        // session's own record.
        if let Ok(Some(record)) = t.store.load(&legacy.key, now).await {
            let own = Record {
                expires_at: record.expires_at,
                ..legacy.clone()
            };
            if record != own {
                wrong.push(format!("{what}: a touch made it load as {record:?}"));
            }
        }
        t.store.delete(&legacy.key).await.expect("delete");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A hash with none of the record's fields loads as no session, as
/// lib.rs says.
async fn foreign_hash_loads_as_no_session(mut t: Target) {
    let now = now();
    let record = record(now, now + Duration::hours(1));
    let key = t.store.record_key(&record.key);
    t.raw
        .query::<i64>(redis::cmd("HSET").arg(&key).arg("user").arg("mallory"))
        .await;

    let loaded = t.store.load(&record.key, now).await.expect("load");

    assert_eq!(loaded, None);
}

/// A string in the layout but without the fixed widths the scripts
/// rely on is no record: it neither loads nor lists as "alice" (the
/// scripts would misread it, and "log out everywhere" would miss it).
async fn unpadded_header_is_not_a_record(mut t: Target) {
    let now = now();
    let record = owned_by("alice", now);
    let key = t.store.record_key(&record.key);
    let unpadded = format!(
        "s1 {} 7 {} {} 5 {} 0\nalice{}",
        record.version,
        ms(record.expires_at),
        ms(record.deadline),
        ms(record.created_at),
        record.data.as_str()
    );
    set_string(&mut t, &key, unpadded.as_bytes(), 3_600_000).await;
    let set = t.store.principal_key("alice");
    t.raw
        .query::<i64>(redis::cmd("SADD").arg(&set).arg(record.key.to_hex()))
        .await;

    let loaded = t.store.load(&record.key, now).await;
    let listed = t.store.list_by_principal("alice", now).await.expect("list");
    let revoked = t
        .store
        .delete_by_principal("alice", now)
        .await
        .expect("revoke");
    let after = t.store.load(&record.key, now).await;

    // Either it is no record (a decode error, not listed), or the
    // scripts see it as the record that load returns.
    let decodes = matches!(loaded, Ok(Some(_)));
    assert!(
        !decodes,
        "an unpadded header loads as {loaded:?}; listed {} under alice; \
         delete_by_principal counted {revoked} and afterwards load gives {after:?}",
        listed.len()
    );
}

/// Sets, sorted sets, streams and lists at a record key: decode errors;
/// every write treats them as no session and replaces or removes them.
async fn other_types_are_decode_errors(mut t: Target) {
    let now = now();
    let writes = |key: &str| -> Vec<Cmd> {
        vec![
            redis::cmd("SADD").arg(key).arg("a").clone(),
            redis::cmd("ZADD").arg(key).arg(1).arg("a").clone(),
            redis::cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("f")
                .arg("v")
                .clone(),
            redis::cmd("RPUSH").arg(key).arg("s1 ").clone(),
            redis::cmd("SET").arg(key).arg("s1 ").clone(),
            redis::cmd("SET").arg(key).arg("").clone(),
            redis::cmd("SET").arg(key).arg(b"s1 \xff\xfe\n").clone(),
        ]
    };
    for (kind, _) in writes("x").iter().enumerate() {
        let record = owned_by("fay", now);
        let key = t.store.record_key(&record.key);
        let write = writes(&key).swap_remove(kind);
        t.raw.query::<redis::Value>(&write).await;

        let error = t
            .store
            .load(&record.key, now)
            .await
            .expect_err("not a record");
        assert!(error.is_decode(), "{kind}: {error}");
        let touched = t
            .store
            .touch(&record.key, now + Duration::hours(2), now)
            .await;
        assert_eq!(touched.expect("touch"), TouchOutcome::Missing, "{kind}");
        assert!(!t.raw.exists(&key).await, "{kind}");

        t.raw.query::<redis::Value>(&write).await;
        assert_eq!(
            t.store.save(&record, 1, now).await.expect("save"),
            SaveOutcome::Missing,
            "{kind}"
        );
        assert!(!t.raw.exists(&key).await, "{kind}");

        t.raw.query::<redis::Value>(&write).await;
        assert_eq!(
            revoke_check(&t.store, &record, &mut t.raw).await,
            0,
            "{kind}: revoke of a foreign value counts nothing"
        );

        t.raw.query::<redis::Value>(&write).await;
        assert_eq!(
            t.store.create(&record, now).await.expect("create"),
            CreateOutcome::Created,
            "{kind}"
        );
        assert_eq!(
            t.store.load(&record.key, now).await.expect("load"),
            Some(record.clone())
        );
        assert_eq!(
            t.store.list_by_principal("fay", now).await.expect("list"),
            std::slice::from_ref(&record)
        );
        t.store.delete(&record.key).await.expect("delete");
        assert!(!t.raw.exists(&key).await, "{kind}");
    }
}

/// Names `record`'s key in fay's set and revokes fay.
async fn revoke_check(store: &RedisStore, record: &Record, raw: &mut Raw) -> u64 {
    let set = store.principal_key("fay");
    raw.query::<i64>(redis::cmd("SADD").arg(&set).arg(record.key.to_hex()))
        .await;
    store
        .delete_by_principal("fay", now())
        .await
        .expect("revoke")
}

/// Legacy records whose principal is empty, has spaces and newlines, is
/// long, or is not ASCII: loaded, listed, touched, moved to another
/// principal by a save (rewritten as a string), revoked; the sets follow.
async fn legacy_odd_principals_round_trip_and_index(mut t: Target) {
    let now = now();
    let long = "p".repeat(100_000);
    let principals = [
        String::new(),
        "a b\nc\r\n d".to_owned(),
        long,
        "ünï {tag} ✓".to_owned(),
        "0 0\n".to_owned(),
        "-1".to_owned(),
    ];
    for principal in principals {
        let what = format!("{:?}", &principal[..principal.len().min(20)]);
        let first = Record {
            expiry: Some(Expiry::new(Duration::minutes(5), Duration::days(30))),
            ..owned_by(&principal, now)
        };
        let second = owned_by(&principal, now);
        for each in [&first, &second] {
            write_as_hash(&mut t, each, now).await;
        }
        let set = t.store.principal_key(&principal);

        assert_eq!(
            t.store.load(&first.key, now).await.expect("load").as_ref(),
            Some(&first),
            "{what}"
        );
        let listed = t
            .store
            .list_by_principal(&principal, now)
            .await
            .expect("list");
        assert_eq!(listed.len(), 2, "{what}");
        assert_eq!(
            t.store
                .touch(&first.key, now + Duration::hours(2), now)
                .await
                .expect("touch"),
            TouchOutcome::Touched,
            "{what}"
        );
        assert_eq!(t.raw.type_of(&t.store.record_key(&first.key)).await, "hash");

        // A save that moves the first to another principal.
        let moved = Record {
            version: 2,
            principal: Some(format!("moved{principal}")),
            expires_at: now + Duration::hours(2),
            ..first.clone()
        };
        assert_eq!(
            t.store.save(&moved, 1, now).await.expect("save"),
            SaveOutcome::Saved,
            "{what}"
        );
        assert_eq!(
            t.store.load(&first.key, now).await.expect("load"),
            Some(moved.clone()),
            "{what}"
        );
        assert_eq!(
            t.raw.members(&set).await,
            BTreeSet::from([second.key.to_hex()]),
            "{what}: old set"
        );
        let moved_set = t.store.principal_key(&format!("moved{principal}"));
        assert_eq!(
            t.raw.members(&moved_set).await,
            BTreeSet::from([first.key.to_hex()]),
            "{what}: new set"
        );

        assert_eq!(
            t.store
                .delete_by_principal(&principal, now)
                .await
                .expect("revoke"),
            1,
            "{what}"
        );
        assert_eq!(t.store.load(&second.key, now).await.expect("load"), None);
        assert!(!t.raw.exists(&set).await, "{what}: set left");
        assert_eq!(
            t.store
                .delete_by_principal(&format!("moved{principal}"), now)
                .await
                .expect("revoke"),
            1,
            "{what}"
        );
    }
}

/// The set of a legacy record's principal after each kind of write on it.
async fn legacy_index_follows_every_write(mut t: Target) {
    let now = now();
    let set = t.store.principal_key("gus");
    let saved = owned_by("gus", now);
    let touched = owned_by("gus", now);
    let deleted = owned_by("gus", now);
    let ended = Record {
        deadline: now + Duration::minutes(10),
        ..owned_by("gus", now)
    };
    let dropped = owned_by("gus", now);
    for each in [&saved, &touched, &deleted, &ended, &dropped] {
        write_as_hash(&mut t, each, now).await;
    }

    // Same principal, later deadline: the set lives longer.
    let longer = Record {
        version: 2,
        deadline: now + Duration::days(60),
        ..saved.clone()
    };
    assert_eq!(
        t.store.save(&longer, 1, now).await.expect("save"),
        SaveOutcome::Saved
    );
    let ttl = t.raw.pttl(&set).await;
    assert!(
        ttl > Duration::days(59).whole_milliseconds() as i64,
        "set PTTL {ttl}"
    );
    assert_eq!(
        t.store
            .touch(&touched.key, now + Duration::hours(3), now)
            .await
            .expect("touch"),
        TouchOutcome::Touched
    );
    t.store.delete(&deleted.key).await.expect("delete");
    // Touched past its deadline into the past: ends and leaves the set.
    let past = now + Duration::hours(2);
    let late = now + Duration::minutes(20);
    assert_eq!(
        t.store.touch(&ended.key, past, late).await.expect("touch"),
        TouchOutcome::Missing
    );
    // A save that drops the principal.
    let anonymous = Record {
        version: 2,
        principal: None,
        ..dropped.clone()
    };
    assert_eq!(
        t.store.save(&anonymous, 1, now).await.expect("save"),
        SaveOutcome::Saved
    );

    assert_eq!(
        t.raw.members(&set).await,
        BTreeSet::from([saved.key.to_hex(), touched.key.to_hex()])
    );
    let mut listed: Vec<_> = t
        .store
        .list_by_principal("gus", now)
        .await
        .expect("list")
        .into_iter()
        .map(|record| record.key.to_hex())
        .collect();
    listed.sort();
    let mut want = vec![saved.key.to_hex(), touched.key.to_hex()];
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(
        t.store
            .delete_by_principal("gus", now)
            .await
            .expect("revoke"),
        2
    );
    assert!(!t.raw.exists(&set).await);
    assert_eq!(
        t.store.load(&dropped.key, now).await.expect("load"),
        Some(anonymous)
    );
}

/// Hashes of versions before write tokens (no `writer`), without
/// principal or expiry, still load, touch and save.
async fn legacy_hash_without_writer_or_optional_fields(mut t: Target) {
    let now = now();
    let legacy = record(now, now + Duration::hours(1));
    let fields: Vec<_> = legacy_fields(&legacy)
        .into_iter()
        .filter(|(name, _)| name != "writer")
        .collect();
    write_hash(&mut t, &legacy, &fields, None, 3_600_000).await;

    assert_eq!(
        t.store.load(&legacy.key, now).await.expect("load"),
        Some(legacy.clone())
    );
    assert_eq!(
        t.store
            .touch(&legacy.key, now + Duration::hours(2), now)
            .await
            .expect("touch"),
        TouchOutcome::Touched
    );
    let next = Record {
        version: 2,
        expires_at: now + Duration::hours(2),
        ..legacy.clone()
    };
    assert_eq!(
        t.store.save(&next, 2, now).await.expect("save"),
        SaveOutcome::Conflict
    );
    assert_eq!(
        t.store.save(&next, 1, now).await.expect("save"),
        SaveOutcome::Saved
    );
    assert_eq!(
        t.store.load(&legacy.key, now).await.expect("load"),
        Some(next)
    );
}

/// Eight saves from the same version at once, on a legacy hash and on a
/// string record: exactly one wins, and the stored record is its.
async fn concurrent_saves_have_one_winner(mut t: Target) {
    let now = now();
    for legacy in [true, false] {
        let base = owned_by("hal", now);
        if legacy {
            write_as_hash(&mut t, &base, now).await;
        } else {
            t.store.create(&base, now).await.expect("create");
        }
        let candidates: Vec<Record> = (0..8)
            .map(|n| Record {
                version: 2,
                data: Data::try_from(json!({ "n": n })).expect("object"),
                principal: Some(format!("hal{}", n % 2)),
                ..base.clone()
            })
            .collect();
        let outcomes =
            futures_join_all(candidates.iter().map(|record| t.store.save(record, 1, now))).await;
        let winners: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, outcome)| *outcome.as_ref().expect("save") == SaveOutcome::Saved)
            .map(|(n, _)| n)
            .collect();
        assert_eq!(winners.len(), 1, "legacy {legacy}: {outcomes:?}");
        for outcome in &outcomes {
            let outcome = outcome.as_ref().expect("save");
            assert!(
                matches!(outcome, SaveOutcome::Saved | SaveOutcome::Conflict),
                "{outcome:?}"
            );
        }
        let winner = &candidates[winners[0]];
        assert_eq!(
            t.store.load(&base.key, now).await.expect("load").as_ref(),
            Some(winner)
        );
        let owner = winner.principal.clone().expect("a principal");
        let other = if owner == "hal0" { "hal1" } else { "hal0" };
        let listed = t.store.list_by_principal(&owner, now).await.expect("list");
        assert!(listed.iter().any(|record| record.key == base.key));
        let listed = t.store.list_by_principal(other, now).await.expect("list");
        assert!(listed.iter().all(|record| record.key != base.key));
        assert!(
            !t.raw
                .members(&t.store.principal_key("hal"))
                .await
                .contains(&base.key.to_hex()),
            "legacy {legacy}: left in the old set"
        );
        t.store.delete(&base.key).await.expect("delete");
    }
}

async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    // Polled together on one task, so that their commands interleave.
    let futures: Vec<_> = futures.map(Box::pin).collect();
    let mut slots: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, future) in slots.iter_mut().zip(futures.iter_mut()) {
            if let Some(running) = future {
                match running.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *slot = Some(value);
                        *future = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    slots.into_iter().map(|slot| slot.expect("done")).collect()
}

/// A touch of a live record whose deadline has passed ends it (string
/// and hash), leaves the principal's set; one whose deadline is between
/// now and the target is capped to it.
async fn touch_past_the_deadline_ends_the_session(mut t: Target) {
    let now = now();
    for legacy in [false, true] {
        let record = Record {
            deadline: now - Duration::seconds(1),
            ..owned_by("ivy", now)
        };
        let key = t.store.record_key(&record.key);
        if legacy {
            write_as_hash(&mut t, &record, now).await;
        } else {
            t.store.create(&record, now).await.expect("create");
        }
        let touched = t
            .store
            .touch(&record.key, now + Duration::hours(2), now)
            .await;
        assert_eq!(
            touched.expect("touch"),
            TouchOutcome::Missing,
            "legacy {legacy}"
        );
        assert!(!t.raw.exists(&key).await, "legacy {legacy}");
        assert!(
            !t.raw
                .members(&t.store.principal_key("ivy"))
                .await
                .contains(&record.key.to_hex()),
            "legacy {legacy}"
        );

        let capped = Record {
            deadline: now + Duration::minutes(90),
            ..owned_by("ivy", now)
        };
        if legacy {
            write_as_hash(&mut t, &capped, now).await;
        } else {
            t.store.create(&capped, now).await.expect("create");
        }
        let touched = t
            .store
            .touch(&capped.key, now + Duration::hours(5), now)
            .await;
        assert_eq!(touched.expect("touch"), TouchOutcome::Touched);
        let loaded = t.store.load(&capped.key, now).await.expect("load");
        assert_eq!(
            loaded.map(|r| r.expires_at),
            Some(capped.deadline),
            "legacy {legacy}"
        );
        let ttl = t.raw.pttl(&t.store.record_key(&capped.key)).await;
        assert!(
            ttl <= 90 * 60_000 && ttl > 89 * 60_000,
            "legacy {legacy}: PTTL {ttl}"
        );
        t.store.delete(&capped.key).await.expect("delete");
    }
}

/// Times before 1970 (negative milliseconds) in created and deadline,
/// in both layouts; a deadline before 1970 ends the session on touch.
async fn times_before_1970(mut t: Target) {
    let now = now();
    let early = from_unix_millis(-315_619_200_123).expect("1960");
    for legacy in [false, true] {
        let record = Record {
            created_at: early,
            ..owned_by("jo", now)
        };
        if legacy {
            write_as_hash(&mut t, &record, now).await;
        } else {
            t.store.create(&record, now).await.expect("create");
        }
        assert_eq!(
            t.store.load(&record.key, now).await.expect("load"),
            Some(record.clone()),
            "legacy {legacy}"
        );
        let touched = t
            .store
            .touch(&record.key, now + Duration::hours(2), now)
            .await;
        assert_eq!(touched.expect("touch"), TouchOutcome::Touched);
        let next = Record {
            version: 2,
            deadline: early,
            expires_at: now + Duration::hours(2),
            ..record.clone()
        };
        assert_eq!(
            t.store.save(&next, 1, now).await.expect("save"),
            SaveOutcome::Saved
        );
        assert_eq!(
            t.store.load(&record.key, now).await.expect("load"),
            Some(next.clone())
        );
        let touched = t
            .store
            .touch(&record.key, now + Duration::hours(3), now)
            .await;
        assert_eq!(
            touched.expect("touch"),
            TouchOutcome::Missing,
            "legacy {legacy}"
        );
        assert_eq!(t.store.load(&record.key, now).await.expect("load"), None);
    }
    // A record that expired before 1970 is dead on arrival.
    let dead = Record {
        created_at: early,
        expires_at: early + Duration::seconds(1),
        deadline: early + Duration::days(1),
        ..owned_by("jo", now)
    };
    assert_eq!(
        t.store.create(&dead, now).await.expect("create"),
        CreateOutcome::Created
    );
    assert!(!t.raw.exists(&t.store.record_key(&dead.key)).await);
    assert!(t
        .store
        .list_by_principal("jo", now)
        .await
        .expect("list")
        .is_empty());
}

/// The store holds any version, but a session at the last one (or past
/// it: a record written by hand) cannot be saved again; a commit over
/// it once panicked computing the next version. It is no session, and a
/// write starts a new one; a save that would bring a session there moves
/// it to a new id.
async fn a_session_at_the_top_versions_starts_afresh(mut t: Target) {
    let now = now();
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let config = Arc::new(SessionConfig::default());

    for version in [Record::LAST_VERSION, u64::MAX] {
        for legacy in [false, true] {
            let id = Id::random();
            let record = Record {
                key: id.storage_key(),
                version,
                ..owned_by("kim", now)
            };
            if legacy {
                write_as_hash(&mut t, &record, now).await;
            } else {
                t.store.create(&record, now).await.expect("create");
            }

            let session = Session::new(Arc::clone(&store), Arc::clone(&config), vec![id]);
            let visits = session
                .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
                .await
                .expect("update");
            let commit = session.commit().await.expect("commit");

            assert_eq!(visits, 1, "{version} {legacy}");
            let Commit::Set { id: fresh, .. } = commit else {
                panic!("{version} {legacy}: {commit:?}");
            };
            assert_ne!(fresh, id);
            let left = t.store.load(&record.key, now).await.expect("load");
            assert_eq!(left.map(|left| left.version), Some(version));
        }
    }

    // A save that brings a session there moves it to a new id instead.
    let id = Id::random();
    let record = Record {
        key: id.storage_key(),
        version: Record::LAST_VERSION - 1,
        ..owned_by("kim", now)
    };
    t.store.create(&record, now).await.expect("create");
    let session = Session::new(Arc::clone(&store), Arc::clone(&config), vec![id]);
    session
        .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await
        .expect("update");
    let Commit::Set { id: fresh, .. } = session.commit().await.expect("commit") else {
        panic!("a new cookie");
    };
    assert_ne!(fresh, id);
    assert_eq!(t.store.load(&record.key, now).await.expect("load"), None);
    let moved = t.store.load(&fresh.storage_key(), now).await.expect("load");
    let moved = moved.expect("the session, moved");
    assert_eq!(moved.version, 1);
    assert_eq!(moved.principal.as_deref(), Some("kim"));
    assert!(moved.data.contains_key("visits"));
}

/// Versions at the top of u64 in both layouts; one past it is damage.
async fn versions_near_u64_max(mut t: Target) {
    let now = now();
    for legacy in [false, true] {
        let record = Record {
            version: u64::MAX - 1,
            ..owned_by("kim", now)
        };
        if legacy {
            write_as_hash(&mut t, &record, now).await;
        } else {
            t.store.create(&record, now).await.expect("create");
        }
        let top = Record {
            version: u64::MAX,
            ..record.clone()
        };
        assert_eq!(
            t.store.save(&top, u64::MAX - 2, now).await.expect("save"),
            SaveOutcome::Conflict
        );
        assert_eq!(
            t.store.save(&top, u64::MAX, now).await.expect("save"),
            SaveOutcome::Conflict
        );
        assert_eq!(
            t.store.save(&top, u64::MAX - 1, now).await.expect("save"),
            SaveOutcome::Saved
        );
        assert_eq!(
            t.store.load(&record.key, now).await.expect("load"),
            Some(top.clone())
        );
        let wrapped = Record {
            version: 0,
            ..top.clone()
        };
        assert_eq!(
            t.store
                .save(&wrapped, u64::MAX - 1, now)
                .await
                .expect("save"),
            SaveOutcome::Conflict
        );
        assert_eq!(
            t.store.save(&wrapped, u64::MAX, now).await.expect("save"),
            SaveOutcome::Saved
        );
        assert_eq!(
            t.store.load(&record.key, now).await.expect("load"),
            Some(wrapped)
        );
        t.store.delete(&record.key).await.expect("delete");
    }
    let legacy = owned_by("kim", now);
    let mut fields = legacy_fields(&legacy);
    fields[0].1 = b"18446744073709551615".to_vec();
    write_hash(&mut t, &legacy, &fields, Some("kim"), 3_600_000).await;
    let top = Record {
        version: u64::MAX,
        ..legacy.clone()
    };
    assert_eq!(
        t.store.load(&legacy.key, now).await.expect("load"),
        Some(top)
    );
}

/// One MiB of data in each operation, and a hash of that size.
async fn one_mebibyte_of_data(mut t: Target) {
    let now = now();
    let blob = "x".repeat(1 << 20);
    let record = Record {
        data: Data::try_from(json!({ "blob": blob })).expect("object"),
        ..owned_by("lee", now)
    };
    t.store.create(&record, now).await.expect("create");
    assert_eq!(
        t.store.load(&record.key, now).await.expect("load").as_ref(),
        Some(&record)
    );
    let next = Record {
        version: 2,
        data: Data::try_from(json!({ "blob": format!("{blob}y") })).expect("object"),
        ..record.clone()
    };
    assert_eq!(
        t.store.save(&next, 1, now).await.expect("save"),
        SaveOutcome::Saved
    );
    assert_eq!(
        t.store
            .touch(&record.key, now + Duration::hours(2), now)
            .await
            .expect("touch"),
        TouchOutcome::Touched
    );
    let listed = t.store.list_by_principal("lee", now).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].data, next.data);

    let legacy = Record {
        key: Id::random().storage_key(),
        ..record.clone()
    };
    write_as_hash(&mut t, &legacy, now).await;
    assert_eq!(
        t.store.load(&legacy.key, now).await.expect("load").as_ref(),
        Some(&legacy)
    );
    assert_eq!(
        t.store
            .delete_by_principal("lee", now)
            .await
            .expect("revoke"),
        2
    );
}

/// The Lua scripts exactly as the store sends them (read.lua in front).
fn script(name: &str) -> redis::Script {
    let read = include_str!("../../store-redis/src/lua/read.lua");
    let body = match name {
        "save" => include_str!("../../store-redis/src/lua/save.lua"),
        "create" => include_str!("../../store-redis/src/lua/create.lua"),
        _ => unreachable!(),
    };
    redis::Script::new(&format!("{read}{body}"))
}

/// A save (and a create) whose reply was lost is sent again with the
/// same write token: the second call answers as the first did, on a
/// string record and on a legacy hash; another token conflicts. Run
/// against the scripts directly, with the arguments the store sends.
async fn retried_writes_are_recognised_by_their_token(mut t: Target) {
    let now_t = now();
    let now = to_unix_millis(now_t);
    let prefix = t.store.key_prefix().to_owned();
    let save = script("save");
    let create = script("create");

    // create, twice with the same token, once with another.
    let record = owned_by("max", now_t);
    let key = t.store.record_key(&record.key);
    let ttl = 3_600_000_i64;
    let reach = to_unix_millis(record.deadline) - now;
    let create_call = |writer: u64| {
        let mut call = create.prepare_invoke();
        call.key(&key)
            .arg(&prefix)
            .arg("1")
            .arg(now)
            .arg(ttl)
            .arg(reach)
            .arg(format!("{writer:020}"))
            .arg(encode(&record, writer))
            .arg("max");
        call
    };
    let raw = t.raw.node();
    let first: redis::Value = create_call(77).invoke_async(raw).await.expect("create");
    let again: redis::Value = create_call(77).invoke_async(raw).await.expect("create");
    let other: redis::Value = create_call(78).invoke_async(raw).await.expect("create");
    assert_eq!(first, redis::Value::Int(1));
    assert_eq!(
        again,
        redis::Value::Int(1),
        "a repeated create is recognised"
    );
    assert_eq!(other, redis::Value::Int(0), "another create collides");

    for legacy in [false, true] {
        let base = owned_by("max", now_t);
        let key = t.store.record_key(&base.key);
        if legacy {
            write_as_hash(&mut t, &base, now_t).await;
        } else {
            t.store.create(&base, now_t).await.expect("create");
        }
        let next = Record {
            version: 2,
            ..base.clone()
        };
        let save_call = |writer: u64| {
            let mut call = save.prepare_invoke();
            call.key(&key)
                .arg(&prefix)
                .arg("1")
                .arg(now)
                .arg(format!("{:020}", 1))
                .arg("0")
                .arg(ttl)
                .arg(reach)
                .arg(format!("{:020}", 2))
                .arg(format!("{writer:020}"))
                .arg(encode(&next, writer))
                .arg("max");
            call
        };
        let raw = t.raw.node();
        let first: redis::Value = save_call(5).invoke_async(raw).await.expect("save");
        let again: redis::Value = save_call(5).invoke_async(raw).await.expect("save");
        let other: redis::Value = save_call(6).invoke_async(raw).await.expect("save");
        assert_eq!(first, redis::Value::Int(1), "legacy {legacy}");
        assert_eq!(
            again,
            redis::Value::Int(1),
            "legacy {legacy}: a repeated save is recognised"
        );
        assert_eq!(
            other,
            redis::Value::Int(2),
            "legacy {legacy}: another save conflicts"
        );
        // A touch between the save and its repeat does not change that.
        t.store
            .touch(&base.key, now_t + Duration::hours(2), now_t)
            .await
            .expect("touch");
        let raw = t.raw.node();
        let again: redis::Value = save_call(5).invoke_async(raw).await.expect("save");
        assert_eq!(
            again,
            redis::Value::Int(1),
            "legacy {legacy}: after a touch"
        );
        let loaded = t.store.load(&base.key, now_t).await.expect("load");
        assert_eq!(
            loaded.map(|r| r.expires_at),
            Some(now_t + Duration::hours(2))
        );
    }
}

/// What the store writes is byte for byte the layout codec.rs and lib.rs
/// document, and touch changes only the 20 characters of `expires`.
async fn stored_string_is_the_documented_layout(mut t: Target) {
    let now = now();
    let record = Record {
        principal: Some("nia\nwith a line".to_owned()),
        expiry: Some(Expiry::new(Duration::minutes(5), Duration::days(30))),
        created_at: from_unix_millis(-5).expect("a time"),
        version: u64::MAX,
        ..owned_by("x", now)
    };
    t.store.create(&record, now).await.expect("create");
    let key = t.store.record_key(&record.key);
    let stored: Vec<u8> = t.raw.query(redis::cmd("GET").arg(&key)).await;
    let writer: u64 = std::str::from_utf8(&stored[24..44])
        .expect("text")
        .parse()
        .expect("a writer token at 25..44");
    assert_eq!(stored, encode(&record, writer));
}

//! What the Redis store promises beyond the conformance suite, checked
//! in Redis itself: TTLs (C20, C22), the principal index on one node and
//! across cluster slots, and the commands it sends.
//!
//! Most cases run twice, on one node and on a cluster.

use std::collections::BTreeSet;
use std::sync::Arc;

use integration_tests::redis as servers;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{
    to_unix_millis, Commit, CreateOutcome, Expiry, Id, Record, SaveOutcome, Session, SessionConfig,
    Store, TouchOutcome,
};
use store_redis::RedisStore;

#[macro_use]
mod redis_target;

use redis_target::{now, on_cluster, on_node, owned_by, record, write_as_hash, Target};

on_node_and_cluster!(
    c20_expiry_change_reaches_the_ttl,
    c22_no_ttl_of_zero_or_less,
    touch_moves_the_ttl_up_to_the_deadline,
    principal_sets_follow_records,
    stale_index_members_are_checked,
    records_of_the_previous_layout_still_work,
    foreign_values_are_no_session,
);

/// Asserts that `ttl` (ms) is within a minute below `want`.
fn assert_ttl_near(ttl: i64, want: Duration, what: &str) {
    let want = i64::try_from(want.whole_milliseconds()).expect("fits");
    assert!(
        ttl <= want && ttl > want - 60_000,
        "{what}: PTTL {ttl} ms, want about {want} ms"
    );
}

/// C20: a session's own expiry policy ("remember me") reaches the key's
/// TTL, both when it lengthens and when it shortens the session.
async fn c20_expiry_change_reaches_the_ttl(mut t: Target) {
    let hour = Duration::hours(1);
    let config = Arc::new(SessionConfig::default().with_expiry(Expiry::new(hour, hour)));
    let store: Arc<dyn Store> = Arc::new(t.store.clone());

    let login = Session::new(Arc::clone(&store), Arc::clone(&config), Vec::new());
    login.insert("user", "alice").await.expect("insert");
    let month = Expiry::new(Duration::days(30), Duration::days(30));
    login.set_expiry(Some(month)).await.expect("set_expiry");
    let Commit::Set { id, max_age } = login.commit().await.expect("commit") else {
        panic!("a new session sets a cookie");
    };
    let key = t.store.record_key(&id.storage_key());

    assert_ttl_near(t.raw.pttl(&key).await, Duration::days(30), "remember me");
    let max_age = max_age.expect("a persistent cookie");
    assert!(
        max_age > Duration::days(30) - Duration::minutes(1),
        "cookie Max-Age {max_age}"
    );

    let later = Session::new(store, config, vec![id]);
    let short = Expiry::new(Duration::minutes(5), Duration::days(30));
    later.set_expiry(Some(short)).await.expect("set_expiry");
    later.commit().await.expect("commit");

    assert_ttl_near(t.raw.pttl(&key).await, Duration::minutes(5), "shortened");
}

/// C22: a record already dead at `now` is deleted or reported missing,
/// never written with a TTL of zero or less, and a TTL under a second is
/// kept to the millisecond.
async fn c22_no_ttl_of_zero_or_less(mut t: Target) {
    let now = now();
    let second = Duration::seconds(1);
    let soon = Duration::milliseconds(300);

    let dead = record(now, now - second);
    let created = t.store.create(&dead, now).await.expect("create");
    assert_eq!(created, CreateOutcome::Created);
    assert!(!t.raw.exists(&t.store.record_key(&dead.key)).await);

    let live = record(now, now + Duration::hours(1));
    t.store.create(&live, now).await.expect("create");
    let ended = Record {
        version: 2,
        expires_at: now - second,
        ..live.clone()
    };
    let saved = t.store.save(&ended, 1, now).await.expect("save");
    assert_eq!(saved, SaveOutcome::Missing);
    assert!(!t.raw.exists(&t.store.record_key(&live.key)).await);
    assert_eq!(t.store.load(&live.key, now).await.expect("load"), None);

    let short = record(now, now + soon);
    let key = t.store.record_key(&short.key);
    t.store.create(&short, now).await.expect("create");
    let ttl = t.raw.pttl(&key).await;
    assert!((1..=300).contains(&ttl), "created for 300 ms: PTTL {ttl}");

    let resaved = Record {
        version: 2,
        ..short.clone()
    };
    let saved = t.store.save(&resaved, 1, now).await.expect("save");
    assert_eq!(saved, SaveOutcome::Saved);
    let ttl = t.raw.pttl(&key).await;
    assert!((1..=300).contains(&ttl), "saved for 300 ms: PTTL {ttl}");

    let touched = t.store.touch(&short.key, now - second, now).await;
    assert_eq!(touched.expect("touch"), TouchOutcome::Missing);
    assert!(!t.raw.exists(&key).await);
}

/// A touch moves the TTL with `expires_at`, never past the deadline, and
/// leaves the data alone (C03).
async fn touch_moves_the_ttl_up_to_the_deadline(mut t: Target) {
    let now = now();
    let record = Record {
        deadline: now + Duration::hours(2),
        ..record(now, now + Duration::hours(1))
    };
    let key = t.store.record_key(&record.key);
    t.store.create(&record, now).await.expect("create");
    let before: String = t.raw.query(redis::cmd("GET").arg(&key)).await;

    let touched = t
        .store
        .touch(&record.key, now + Duration::days(1), now)
        .await;

    assert_eq!(touched.expect("touch"), TouchOutcome::Touched);
    assert_ttl_near(t.raw.pttl(&key).await, Duration::hours(2), "capped touch");
    let loaded = t.store.load(&record.key, now).await.expect("load");
    assert_eq!(loaded.map(|r| r.expires_at), Some(record.deadline));
    let after: String = t.raw.query(redis::cmd("GET").arg(&key)).await;
    // The header keeps times 20 digits wide.
    let millis = |at: OffsetDateTime| format!("{:020}", to_unix_millis(at));
    let expected = before.replacen(
        &format!(" {} ", millis(record.expires_at)),
        &format!(" {} ", millis(record.deadline)),
        1,
    );
    assert_eq!(after, expected, "only the expiry changed");
}

async fn type_of(t: &mut Target, record: &Record) -> String {
    let key = t.store.record_key(&record.key);
    t.raw.query(redis::cmd("TYPE").arg(key)).await
}

/// Sessions stored by earlier versions, one hash each, stay readable,
/// listable, touchable and removable; a save rewrites one as a string.
async fn records_of_the_previous_layout_still_work(mut t: Target) {
    let now = now();
    let first = owned_by("erin", now);
    let second = owned_by("erin", now);
    let third = owned_by("erin", now);
    for each in [&first, &second, &third] {
        write_as_hash(&mut t, each, now).await;
    }

    let loaded = t.store.load(&first.key, now).await.expect("load");
    assert_eq!(loaded.as_ref(), Some(&first));
    let mut listed = t.store.list_by_principal("erin", now).await.expect("list");
    listed.sort_by_key(|record| record.key.to_hex());
    let mut all = vec![first.clone(), second.clone(), third.clone()];
    all.sort_by_key(|record| record.key.to_hex());
    assert_eq!(listed, all);

    let later = now + Duration::hours(2);
    let touched = t.store.touch(&first.key, later, now).await.expect("touch");
    assert_eq!(touched, TouchOutcome::Touched);
    let loaded = t.store.load(&first.key, now).await.expect("load");
    assert_eq!(loaded.map(|record| record.expires_at), Some(later));
    assert_ttl_near(
        t.raw.pttl(&t.store.record_key(&first.key)).await,
        Duration::hours(2),
        "touched hash",
    );

    let stale = Record {
        version: 2,
        ..second.clone()
    };
    let conflict = t.store.save(&stale, 7, now).await.expect("save");
    assert_eq!(conflict, SaveOutcome::Conflict);
    let saved = t.store.save(&stale, 1, now).await.expect("save");
    assert_eq!(saved, SaveOutcome::Saved);
    assert_eq!(type_of(&mut t, &second).await, "string");
    let loaded = t.store.load(&second.key, now).await.expect("load");
    assert_eq!(loaded, Some(stale));

    t.store.delete(&third.key).await.expect("delete");
    assert!(!t.raw.exists(&t.store.record_key(&third.key)).await);
    let revoked = t
        .store
        .delete_by_principal("erin", now)
        .await
        .expect("revoke");
    assert_eq!(revoked, 2);
    for each in [&first, &second, &third] {
        assert_eq!(t.store.load(&each.key, now).await.expect("load"), None);
    }

    // A dead hash is replaced by a create.
    let dead = record(now - Duration::hours(2), now - Duration::hours(1));
    write_as_hash(
        &mut t,
        &Record {
            expires_at: now + Duration::seconds(30),
            ..dead.clone()
        },
        now,
    )
    .await;
    let created = t.store.create(&dead, now - Duration::hours(2)).await;
    assert_eq!(created.expect("create"), CreateOutcome::Collision);
    let fresh = record(now, now + Duration::hours(1));
    let fresh = Record {
        key: dead.key,
        ..fresh
    };
    let created = t.store.create(&fresh, now + Duration::minutes(1)).await;
    assert_eq!(created.expect("create"), CreateOutcome::Created);
    assert_eq!(type_of(&mut t, &fresh).await, "string");
}

/// A record key holding what no version of the store wrote (a damaged
/// string, a list) reads as a decode error, never a panic or a wrong
/// session, and each write treats it as no live session.
async fn foreign_values_are_no_session(mut t: Target) {
    let now = now();
    let foreign = |kind, key: &str| match kind {
        0 => redis::cmd("SET")
            .arg(key)
            .arg("s1 1 2 3\nnot a record")
            .clone(),
        1 => redis::cmd("SET")
            .arg(key)
            .arg(r#"{"user":"mallory"}"#)
            .clone(),
        _ => redis::cmd("RPUSH").arg(key).arg("a").arg("b").clone(),
    };

    for kind in 0..3 {
        let record = record(now, now + Duration::hours(1));
        let key = t.store.record_key(&record.key);
        let write = foreign(kind, &key);
        t.raw.query::<redis::Value>(&write).await;

        let error = t
            .store
            .load(&record.key, now)
            .await
            .expect_err("not a record");
        assert!(error.is_decode(), "{kind}: {error}");

        let saved = t.store.save(&record, 1, now).await.expect("save");
        assert_eq!(saved, SaveOutcome::Missing, "{kind}");
        assert!(!t.raw.exists(&key).await, "{kind}");

        t.raw.query::<redis::Value>(&write).await;
        let touched = t
            .store
            .touch(&record.key, now + Duration::hours(2), now)
            .await;
        assert_eq!(touched.expect("touch"), TouchOutcome::Missing, "{kind}");

        t.raw.query::<redis::Value>(&write).await;
        let created = t.store.create(&record, now).await.expect("create");
        assert_eq!(created, CreateOutcome::Created, "{kind}");
        let loaded = t.store.load(&record.key, now).await.expect("load");
        assert_eq!(loaded.as_ref(), Some(&record), "{kind}");

        t.raw
            .query::<redis::Value>(&redis::cmd("DEL").arg(&key).clone())
            .await;
        t.raw.query::<redis::Value>(&write).await;
        t.store.delete(&record.key).await.expect("delete");
        assert!(!t.raw.exists(&key).await, "{kind}");
    }
}

/// Each principal's set names exactly its live records as they are
/// created, moved, deleted and revoked, and lives as long as they can.
async fn principal_sets_follow_records(mut t: Target) {
    let now = now();
    let alice_set = t.store.principal_key("alice");
    let bob_set = t.store.principal_key("bob");
    let first = owned_by("alice", now);
    let second = owned_by("alice", now);
    for each in [&first, &second] {
        t.store.create(each, now).await.expect("create");
    }

    let members = t.raw.members(&alice_set).await;
    let both = BTreeSet::from([first.key.to_hex(), second.key.to_hex()]);
    assert_eq!(members, both);
    assert_ttl_near(
        t.raw.pttl(&alice_set).await,
        Duration::days(30),
        "alice's set",
    );

    let moved = Record {
        version: 2,
        principal: Some("bob".to_owned()),
        ..second.clone()
    };
    assert_eq!(
        t.store.save(&moved, 1, now).await.expect("save"),
        SaveOutcome::Saved
    );
    assert_eq!(
        t.raw.members(&alice_set).await,
        BTreeSet::from([first.key.to_hex()])
    );
    assert_eq!(
        t.raw.members(&bob_set).await,
        BTreeSet::from([second.key.to_hex()])
    );

    t.store.delete(&first.key).await.expect("delete");
    assert!(
        !t.raw.exists(&alice_set).await,
        "the last member's delete empties the set"
    );

    let revoked = t
        .store
        .delete_by_principal("bob", now)
        .await
        .expect("revoke");
    assert_eq!(revoked, 1);
    assert!(!t.raw.exists(&bob_set).await);
    assert!(!t.raw.exists(&t.store.record_key(&second.key)).await);
}

/// Members that name no record, or someone else's record, are never
/// listed or deleted under the principal; the first kind is dropped.
async fn stale_index_members_are_checked(mut t: Target) {
    let now = now();
    let alice = owned_by("alice", now);
    let bob = owned_by("bob", now);
    for each in [&alice, &bob] {
        t.store.create(each, now).await.expect("create");
    }
    let alice_set = t.store.principal_key("alice");
    let nobody = "f".repeat(64);
    let stale = redis::cmd("SADD")
        .arg(&alice_set)
        .arg(bob.key.to_hex())
        .arg(&nobody)
        .arg("not hex")
        .clone();
    t.raw.query::<i64>(&stale).await;

    let listed = t.store.list_by_principal("alice", now).await.expect("list");

    assert_eq!(listed, std::slice::from_ref(&alice));
    let kept = BTreeSet::from([alice.key.to_hex(), bob.key.to_hex()]);
    assert_eq!(t.raw.members(&alice_set).await, kept);
    let revoked = t
        .store
        .delete_by_principal("alice", now)
        .await
        .expect("revoke");
    assert_eq!(revoked, 1);
    assert_eq!(t.store.load(&bob.key, now).await.expect("load"), Some(bob));
}

/// On a cluster a record and its principal's set sit in different slots,
/// which is why the set is kept by separate calls there.
#[tokio::test]
async fn cluster_record_and_principal_set_hash_apart() {
    let t = on_cluster().await;
    let mut raw = t.raw;
    let record = owned_by("carol", now());
    let slot_of = |key: String| redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).clone();

    let record_slot: i64 = raw.query(&slot_of(t.store.record_key(&record.key))).await;
    let set_slot: i64 = raw.query(&slot_of(t.store.principal_key("carol"))).await;
    assert_ne!(record_slot, set_slot, "pick another principal name");

    t.store.create(&record, now()).await.expect("create");
    let listed = t
        .store
        .list_by_principal("carol", now())
        .await
        .expect("list");
    assert_eq!(listed, [record]);
}

/// The store sends scripts by hash (loading each once), and never the
/// commands managed services refuse or that scan the keyspace. A server
/// that restarted and forgot the scripts gets them again.
#[tokio::test]
async fn scripts_by_hash_and_no_forbidden_commands() {
    let node = servers::dedicated().await;
    let store = RedisStore::connect(node.url()).await.expect("connect");

    exercise(&store).await;
    node.stop().await.expect("stop");
    node.start().await.expect("start");
    for _ in 0..50 {
        if store.load(&Id::random().storage_key(), now()).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    exercise(&store).await;

    let mut raw = node.connection().await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .expect("info");
    let calls = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .and_then(|rest| rest.split(',').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    for forbidden in [
        "keys",
        "scan",
        "flushdb",
        "flushall",
        "config|set",
        "config|get",
        "eval",
    ] {
        assert_eq!(calls(forbidden), 0, "{forbidden} was sent");
    }
    assert!(calls("evalsha") >= 5, "scripts run by hash:\n{info}");
    // Five scripts run on one node, each loaded once since the restart.
    assert_eq!(calls("script|load"), 5);
}

/// Every operation once, on a single node.
async fn exercise(store: &RedisStore) {
    let now = now();
    let record = owned_by("dave", now);

    store.create(&record, now).await.expect("create");
    store.load(&record.key, now).await.expect("load");
    let next = Record {
        version: 2,
        ..record.clone()
    };
    store.save(&next, 1, now).await.expect("save");
    store
        .touch(&record.key, now + Duration::hours(2), now)
        .await
        .expect("touch");
    store.list_by_principal("dave", now).await.expect("list");
    store
        .delete_by_principal("dave", now)
        .await
        .expect("revoke");
    store.delete(&record.key).await.expect("delete");
}

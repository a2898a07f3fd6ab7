//! What the Redis store tests share: a store in a fresh key prefix on
//! one node or on the cluster, a raw connection to the same Redis, and
//! macros that run a case on either.

// Each test file uses its own part of this.
#![allow(dead_code, unused_macros)]

use std::collections::BTreeSet;

use integration_tests::redis as servers;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue};
use serde_json::json;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{to_unix_millis, truncate_to_millis, Data, Id, Record};
use store_redis::RedisStore;

/// A store in a fresh key prefix, and a raw connection to its Redis.
pub(crate) struct Target {
    pub(crate) store: RedisStore,
    pub(crate) raw: Raw,
}

pub(crate) enum Raw {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Raw {
    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> T {
        let result = match self {
            Self::Node(connection) => cmd.query_async(connection).await,
            Self::Cluster(connection) => cmd.query_async(connection).await,
        };
        result.unwrap_or_else(|error| panic!("raw command failed: {error}"))
    }

    pub(crate) async fn pttl(&mut self, key: &str) -> i64 {
        self.query(redis::cmd("PTTL").arg(key)).await
    }

    pub(crate) async fn exists(&mut self, key: &str) -> bool {
        self.query::<i64>(redis::cmd("EXISTS").arg(key)).await == 1
    }

    pub(crate) async fn members(&mut self, set: &str) -> BTreeSet<String> {
        self.query(redis::cmd("SMEMBERS").arg(set)).await
    }

    pub(crate) async fn type_of(&mut self, key: &str) -> String {
        self.query(redis::cmd("TYPE").arg(key)).await
    }

    pub(crate) fn node(&mut self) -> &mut MultiplexedConnection {
        match self {
            Self::Node(connection) => connection,
            Self::Cluster(_) => panic!("a node-only test"),
        }
    }
}

pub(crate) fn fresh_prefix() -> String {
    format!("t_{}:", &Id::random().storage_key().to_hex()[..12])
}

pub(crate) async fn on_node() -> Target {
    let node = tokio::task::spawn_blocking(servers::shared)
        .await
        .expect("the shared Redis starts");
    let store = RedisStore::builder()
        .key_prefix(fresh_prefix())
        .connect(node.url())
        .await
        .expect("the store connects");
    let raw = Raw::Node(node.connection().await);
    Target { store, raw }
}

pub(crate) async fn on_cluster() -> Target {
    let cluster = tokio::task::spawn_blocking(servers::shared_cluster)
        .await
        .expect("the shared cluster starts");
    let store = RedisStore::builder()
        .key_prefix(fresh_prefix())
        .connect_cluster(cluster.urls().to_vec())
        .await
        .expect("the store connects");
    assert!(store.is_cluster());
    let raw = Raw::Cluster(cluster.connection().await);
    Target { store, raw }
}

macro_rules! on_node_and_cluster {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn node() {
                    super::$case(super::on_node().await).await;
                }

                #[tokio::test]
                async fn cluster() {
                    super::$case(super::on_cluster().await).await;
                }
            }
        )*
    };
}

macro_rules! on_node_only {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn node() {
                    super::$case(super::on_node().await).await;
                }
            }
        )*
    };
}

/// The time now, as a store keeps it (whole milliseconds).
pub(crate) fn now() -> OffsetDateTime {
    truncate_to_millis(OffsetDateTime::now_utc())
}

/// A live record without a principal, expiring at `expires_at`.
pub(crate) fn record(now: OffsetDateTime, expires_at: OffsetDateTime) -> Record {
    Record {
        key: Id::random().storage_key(),
        data: Data::try_from(json!({ "user": "alice" })).expect("an object"),
        version: 1,
        created_at: now,
        expires_at,
        deadline: now + Duration::days(30),
        principal: None,
        expiry: None,
    }
}

/// A record of `principal`, live for an hour.
pub(crate) fn owned_by(principal: &str, now: OffsetDateTime) -> Record {
    Record {
        principal: Some(principal.to_owned()),
        ..record(now, now + Duration::hours(1))
    }
}

/// Unix milliseconds as the earlier layout stored them.
pub(crate) fn ms(at: OffsetDateTime) -> String {
    to_unix_millis(at).to_string()
}

/// The hash fields an earlier version wrote for `record`.
pub(crate) fn legacy_fields(record: &Record) -> Vec<(String, Vec<u8>)> {
    let mut fields = vec![
        (
            "version".to_owned(),
            record.version.to_string().into_bytes(),
        ),
        ("data".to_owned(), record.data.as_str().as_bytes().to_vec()),
        ("created".to_owned(), ms(record.created_at).into_bytes()),
        ("expires".to_owned(), ms(record.expires_at).into_bytes()),
        ("deadline".to_owned(), ms(record.deadline).into_bytes()),
        ("writer".to_owned(), b"12345".to_vec()),
    ];
    if let Some(principal) = &record.principal {
        fields.push(("principal".to_owned(), principal.as_bytes().to_vec()));
    }
    if let Some(expiry) = &record.expiry {
        fields.push((
            "expiry".to_owned(),
            serde_json::to_vec(expiry).expect("json"),
        ));
    }
    fields
}

/// Writes `fields` as a hash at `record`'s key with a TTL of `ttl_ms`,
/// and names it in the set of `principal` (as earlier versions did).
pub(crate) async fn write_hash(
    t: &mut Target,
    record: &Record,
    fields: &[(String, Vec<u8>)],
    principal: Option<&str>,
    ttl_ms: i64,
) {
    let key = t.store.record_key(&record.key);
    let mut hset = redis::cmd("HSET");
    hset.arg(&key);
    for (field, value) in fields {
        hset.arg(field).arg(value);
    }
    t.raw.query::<i64>(&hset).await;
    t.raw
        .query::<i64>(redis::cmd("PEXPIRE").arg(&key).arg(ttl_ms))
        .await;
    if let Some(principal) = principal {
        let set = t.store.principal_key(principal);
        t.raw
            .query::<i64>(redis::cmd("SADD").arg(&set).arg(record.key.to_hex()))
            .await;
        t.raw
            .query::<i64>(redis::cmd("PEXPIRE").arg(&set).arg(ttl_ms.max(1) * 2))
            .await;
    }
}

pub(crate) async fn write_as_hash(t: &mut Target, record: &Record, now: OffsetDateTime) {
    let ttl = i64::try_from((record.expires_at - now).whole_milliseconds()).expect("fits");
    let fields = legacy_fields(record);
    write_hash(t, record, &fields, record.principal.as_deref(), ttl).await;
}

//! What the store benchmarks time: a store, or the raw client doing the
//! same work on the same server.
//!
//! The raw clients do the least a hand-written session table would:
//!
//! - Redis: one `SET ... NX PX` (create), `GET`, `SET ... XX PX` (save),
//!   `PEXPIRE` (touch) and `DEL`, with the same JSON payload;
//! - PostgreSQL and SQLite: one prepared `INSERT`, `SELECT` by primary
//!   key, `UPDATE` of data, version and expiry, `UPDATE` of the expiry,
//!   and `DELETE`, on a table the store's own migration created under
//!   another name, through the store's own pool;
//! - memory: a moka cache of the same records (the memory store's former
//!   backing), with plain `insert`, `get` and `invalidate`.
//!
//! Neither side checks more than the outcome it needs: a raw load reads
//! every column but does not parse the JSON, which the store must do.

use std::sync::Arc;

use async_trait::async_trait;
use moka::future::Cache;
use redis::aio::ConnectionManager;
use session_core::time::OffsetDateTime;
use session_core::{
    to_unix_millis, CreateOutcome, Record, SaveOutcome, StorageKey, Store, TouchOutcome,
};
use sqlx::{PgPool, Row as _, SqlitePool};

use crate::workload::{Item, Op};

/// The table the raw SQL clients use, beside the store's `sessions`.
pub const RAW_TABLE: &str = "raw_sessions";

/// Something that can do each [`Op`] on an [`Item`].
#[async_trait]
pub trait Target: Send + Sync + 'static {
    /// Does `op` on `item`; an error or an unexpected outcome is an `Err`
    /// with the reason.
    async fn run(&self, op: Op, item: &Item) -> Result<(), String>;
}

/// A session store, through the `Store` trait.
#[derive(Debug, Clone)]
pub struct StoreTarget(pub Arc<dyn Store>);

#[async_trait]
impl Target for StoreTarget {
    async fn run(&self, op: Op, item: &Item) -> Result<(), String> {
        let store = &self.0;
        let key = &item.record.key;
        let failed = |error: session_core::StoreError| format!("{}: {error}", op.name());

        match op {
            Op::Create => match store.create(&item.record, item.now).await.map_err(failed)? {
                CreateOutcome::Created => Ok(()),
                other => Err(format!("create: {other:?}")),
            },
            Op::Load => match store.load(key, item.now).await.map_err(failed)? {
                Some(_) => Ok(()),
                None => Err("load: no record".to_owned()),
            },
            Op::Save => match store.save(&item.saved, 1, item.now).await.map_err(failed)? {
                SaveOutcome::Saved => Ok(()),
                other => Err(format!("save: {other:?}")),
            },
            Op::Touch => {
                let touched = store.touch(key, item.touch_to, item.now).await;
                match touched.map_err(failed)? {
                    TouchOutcome::Touched => Ok(()),
                    other => Err(format!("touch: {other:?}")),
                }
            }
            Op::Delete => store.delete(key).await.map_err(failed),
        }
    }
}

/// A moka cache of records, the memory store's raw equivalent.
#[derive(Debug, Clone)]
pub struct RawMemory {
    cache: Cache<StorageKey, Arc<Record>>,
}

impl RawMemory {
    /// A cache with the memory store's default capacity.
    #[must_use]
    pub fn new() -> Self {
        Self {
            cache: Cache::builder().max_capacity(1_000_000).build(),
        }
    }
}

impl Default for RawMemory {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Target for RawMemory {
    async fn run(&self, op: Op, item: &Item) -> Result<(), String> {
        let key = item.record.key;

        match op {
            Op::Create => self.cache.insert(key, Arc::new(item.record.clone())).await,
            Op::Load => {
                self.cache.get(&key).await.ok_or("load: no record")?;
            }
            Op::Save => self.cache.insert(key, Arc::new(item.saved.clone())).await,
            Op::Touch => {
                let old = self.cache.get(&key).await.ok_or("touch: no record")?;
                let touched = Record {
                    expires_at: item.touch_to,
                    ..Record::clone(&old)
                };
                self.cache.insert(key, Arc::new(touched)).await;
            }
            Op::Delete => self.cache.invalidate(&key).await,
        }
        Ok(())
    }
}

/// Plain Redis commands on strings, with the store's payload.
#[derive(Clone)]
pub struct RawRedis {
    connection: ConnectionManager,
}

impl std::fmt::Debug for RawRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawRedis")
    }
}

impl RawRedis {
    /// Commands over `connection`, a multiplexed connection like the
    /// store's.
    #[must_use]
    pub fn new(connection: ConnectionManager) -> Self {
        Self { connection }
    }
}

#[async_trait]
impl Target for RawRedis {
    async fn run(&self, op: Op, item: &Item) -> Result<(), String> {
        let mut connection = self.connection.clone();
        let key = format!("raw:{}", item.record.key.to_hex());
        let failed = |error: redis::RedisError| format!("{}: {error}", op.name());

        let ok = match op {
            Op::Create | Op::Save => {
                let (payload, condition) = match op {
                    Op::Create => (&item.data_json, "NX"),
                    _ => (&item.saved_json, "XX"),
                };
                let reply: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(payload)
                    .arg(condition)
                    .arg("PX")
                    .arg(item.ttl_millis())
                    .query_async(&mut connection)
                    .await
                    .map_err(failed)?;
                reply.is_some()
            }
            Op::Load => {
                let reply: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .map_err(failed)?;
                reply.is_some()
            }
            Op::Touch => {
                let reply: i64 = redis::cmd("PEXPIRE")
                    .arg(&key)
                    .arg(item.touch_ttl_millis())
                    .query_async(&mut connection)
                    .await
                    .map_err(failed)?;
                reply == 1
            }
            Op::Delete => {
                let _: i64 = redis::cmd("DEL")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .map_err(failed)?;
                true
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{}: key missing or present against expectation",
                op.name()
            ))
        }
    }
}

/// The five statements of a raw SQL client, for one table.
#[derive(Debug)]
struct Statements {
    create: String,
    load: String,
    save: String,
    touch: String,
    delete: String,
}

/// Fails unless a statement changed exactly one row.
fn one_row(op: Op, rows: u64) -> Result<(), String> {
    if rows == 1 {
        Ok(())
    } else {
        Err(format!("{}: {rows} rows changed", op.name()))
    }
}

/// The body of a raw SQL client's `run`: one statement per operation,
/// written once for both databases. `$time` turns a timestamp into the
/// database's parameter; `$read_row` reads a loaded row's columns.
macro_rules! raw_sql_run {
    ($client:expr, $op:expr, $item:expr, $time:expr, $read_row:expr) => {{
        let (client, op, item) = ($client, $op, $item);
        let key = &item.record.key.as_bytes()[..];
        let failed = |error: sqlx::Error| format!("{}: {error}", op.name());
        let record = &item.record;
        let time = $time;

        let rows = match op {
            Op::Create => sqlx::query(&client.sql.create)
                .bind(key)
                .bind(&item.data_json)
                .bind(1_i64)
                .bind(time(record.created_at))
                .bind(time(record.expires_at))
                .bind(time(record.deadline))
                .bind(record.principal.as_deref())
                .bind(record.expiry_json())
                .execute(&client.pool)
                .await
                .map_err(failed)?
                .rows_affected(),
            Op::Load => {
                let row = sqlx::query(&client.sql.load)
                    .bind(key)
                    .fetch_optional(&client.pool)
                    .await
                    .map_err(failed)?
                    .ok_or("load: no row")?;
                $read_row(&row).map_err(failed)?;
                1
            }
            Op::Save => sqlx::query(&client.sql.save)
                .bind(key)
                .bind(&item.saved_json)
                .bind(2_i64)
                .bind(time(item.saved.expires_at))
                .execute(&client.pool)
                .await
                .map_err(failed)?
                .rows_affected(),
            Op::Touch => sqlx::query(&client.sql.touch)
                .bind(key)
                .bind(time(item.touch_to))
                .execute(&client.pool)
                .await
                .map_err(failed)?
                .rows_affected(),
            Op::Delete => sqlx::query(&client.sql.delete)
                .bind(key)
                .execute(&client.pool)
                .await
                .map_err(failed)?
                .rows_affected(),
        };
        one_row(op, rows)
    }};
}

/// Prepared statements on PostgreSQL.
#[derive(Debug, Clone)]
pub struct RawPostgres {
    pool: PgPool,
    sql: Arc<Statements>,
}

impl RawPostgres {
    /// Statements on `public.raw_sessions` through `pool`.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        let t = format!("\"public\".\"{RAW_TABLE}\"");
        let sql = Statements {
            create: format!(
                "INSERT INTO {t} (key, data, version, created_at, expires_at, deadline, \
                 principal, expiry) VALUES ($1, $2::json, $3, $4, $5, $6, $7, $8)"
            ),
            load: format!(
                "SELECT key, data::text AS data, version, created_at, expires_at, deadline, \
                 principal, expiry FROM {t} WHERE key = $1"
            ),
            save: format!(
                "UPDATE {t} SET data = $2::json, version = $3, expires_at = $4 WHERE key = $1"
            ),
            touch: format!("UPDATE {t} SET expires_at = $2 WHERE key = $1"),
            delete: format!("DELETE FROM {t} WHERE key = $1"),
        };
        Self {
            pool,
            sql: Arc::new(sql),
        }
    }
}

#[async_trait]
impl Target for RawPostgres {
    async fn run(&self, op: Op, item: &Item) -> Result<(), String> {
        // PostgreSQL takes the times as `timestamptz`.
        raw_sql_run!(self, op, item, |at: OffsetDateTime| at, read_pg_row)
    }
}

/// Reads every column, as a client that uses the row would.
fn read_pg_row(row: &sqlx::postgres::PgRow) -> Result<(), sqlx::Error> {
    let _: Vec<u8> = row.try_get("key")?;
    let _: String = row.try_get("data")?;
    let _: i64 = row.try_get("version")?;
    for column in ["created_at", "expires_at", "deadline"] {
        let _: OffsetDateTime = row.try_get(column)?;
    }
    let _: Option<String> = row.try_get("principal")?;
    let _: Option<String> = row.try_get("expiry")?;
    Ok(())
}

/// Prepared statements on SQLite.
#[derive(Debug, Clone)]
pub struct RawSqlite {
    pool: SqlitePool,
    sql: Arc<Statements>,
}

impl RawSqlite {
    /// Statements on `raw_sessions` through `pool`.
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        let t = format!("\"{RAW_TABLE}\"");
        let sql = Statements {
            create: format!(
                "INSERT INTO {t} (\"key\", \"data\", \"version\", \"created_at\", \
                 \"expires_at\", \"deadline\", \"principal\", \"expiry\") \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            load: format!(
                "SELECT \"key\", \"data\", \"version\", \"created_at\", \"expires_at\", \
                 \"deadline\", \"principal\", \"expiry\" FROM {t} WHERE \"key\" = ?1"
            ),
            save: format!(
                "UPDATE {t} SET \"data\" = ?2, \"version\" = ?3, \"expires_at\" = ?4 \
                 WHERE \"key\" = ?1"
            ),
            touch: format!("UPDATE {t} SET \"expires_at\" = ?2 WHERE \"key\" = ?1"),
            delete: format!("DELETE FROM {t} WHERE \"key\" = ?1"),
        };
        Self {
            pool,
            sql: Arc::new(sql),
        }
    }
}

#[async_trait]
impl Target for RawSqlite {
    async fn run(&self, op: Op, item: &Item) -> Result<(), String> {
        // The SQLite table keeps times as integer milliseconds.
        raw_sql_run!(self, op, item, to_unix_millis, read_sqlite_row)
    }
}

/// Reads every column, as a client that uses the row would.
fn read_sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Result<(), sqlx::Error> {
    let _: Vec<u8> = row.try_get("key")?;
    let _: String = row.try_get("data")?;
    for column in ["version", "created_at", "expires_at", "deadline"] {
        let _: i64 = row.try_get(column)?;
    }
    let _: Option<String> = row.try_get("principal")?;
    let _: Option<String> = row.try_get("expiry")?;
    Ok(())
}

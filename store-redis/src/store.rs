//! [`RedisStore`] and its builder.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{RedisError, Script, ScriptInvocation};
use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, to_unix_millis, CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError,
    TouchOutcome,
};
use tracing::{debug, warn};

use crate::codec::{decode, millis_text, record_args, Fields};
use crate::connection::Connection;
use crate::error::Error;
use crate::scripts::SCRIPTS;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "session:";

/// The default time one store operation may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The default time the first connection may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sessions in Redis, one hash per session with a native millisecond TTL.
///
/// Cheap to clone; clones share the connection. See the [crate
/// docs](crate) for the layout, the guarantees and the cluster mode.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
    timeout: Duration,
}

/// Configures and connects a [`RedisStore`].
#[must_use]
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl RedisStoreBuilder {
    /// The text in front of every key this store writes (default
    /// `session:`). Give each application sharing a Redis its own.
    ///
    /// On a cluster, a prefix with a hash tag (`{app}:`) puts every
    /// session of the store in one slot, on one node: avoid it.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one store operation may take, reconnecting included
    /// (default 2 s). Past it the operation fails with
    /// [`StoreError::Timeout`]; nothing hangs a request longer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long [`connect`](Self::connect) waits for a first connection
    /// (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects to the Redis named by `url` and builds the store.
    ///
    /// `redis://[user:password@]host[:port][/db]` (or `unix://`) names
    /// one node; `redis+cluster://[user:password@]host:port,host:port`
    /// a cluster, through any of the nodes listed (feature `cluster`).
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] for an invalid URL or a refused connection,
    /// [`Error::ConnectTimeout`] when no connection came up in time,
    /// [`Error::InvalidClusterUrl`] and [`Error::ClusterDisabled`] for
    /// cluster URLs.
    pub async fn connect(self, url: &str) -> Result<RedisStore, Error> {
        let connection = Connection::open(url, self.connect_timeout).await?;
        Ok(self.finish(connection))
    }

    /// Connects to a cluster through any of `nodes` (`redis://` URLs) and
    /// builds the store.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] when the URLs are invalid or no node answers,
    /// [`Error::ConnectTimeout`] when the cluster did not answer in time.
    #[cfg(feature = "cluster")]
    pub async fn connect_cluster<I>(self, nodes: I) -> Result<RedisStore, Error>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let nodes = nodes.into_iter().map(Into::into).collect();
        let connection = Connection::open_cluster(nodes, self.connect_timeout).await?;
        Ok(self.finish(connection))
    }

    /// Builds the store on a connection manager you configured yourself.
    pub fn build_with(self, manager: ConnectionManager) -> RedisStore {
        self.finish(Connection::Node(manager))
    }

    /// Builds the store on a cluster connection you configured yourself.
    #[cfg(feature = "cluster")]
    pub fn build_with_cluster(
        self,
        connection: redis::cluster_async::ClusterConnection,
    ) -> RedisStore {
        self.finish(Connection::Cluster(connection))
    }

    fn finish(self, connection: Connection) -> RedisStore {
        RedisStore {
            connection,
            prefix: self.prefix.into(),
            timeout: self.timeout,
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("connection", &self.connection)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisStore {
    /// A builder with the defaults.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects with the defaults; see [`RedisStoreBuilder::connect`].
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::builder().connect(url).await
    }

    /// The key prefix.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The per-operation timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the store talks to a Redis Cluster.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        self.connection.is_cluster()
    }

    /// The Redis key holding the record of `key`, for operations work
    /// such as reading its TTL. It names a session: keep it out of logs.
    #[must_use]
    pub fn record_key(&self, key: &StorageKey) -> String {
        format!("{}{}", self.prefix, key.to_hex())
    }

    /// The Redis key of the set indexing the sessions of `principal`.
    #[must_use]
    pub fn principal_key(&self, principal: &str) -> String {
        format!("{}principal:{principal}", self.prefix)
    }

    /// Runs one store operation within the timeout and logs how long it
    /// took (never which session).
    ///
    /// When the connection turns out to be lost (the server closed an
    /// idle one, or restarted), the operation is tried once more on the
    /// connection the manager opens instead. Every operation given
    /// [`Retry::Once`] is safe to repeat: reads, touches and deletes by
    /// nature, creates and saves through their write token.
    async fn run<T, F, Fut>(&self, op: &'static str, retry: Retry, body: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let started = Instant::now();
        let attempts = async {
            match body().await {
                Err(error) if retry == Retry::Once && connection_lost(&error) => {
                    debug!(op, "redis session store retries on a new connection");
                    body().await
                }
                done => done,
            }
        };

        let result = match tokio::time::timeout(self.timeout, attempts).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out(op)),
        };

        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        debug!(
            op,
            elapsed_us,
            ok = result.is_ok(),
            "redis session store call"
        );
        result
    }

    fn timed_out(&self, op: &'static str) -> StoreError {
        let after = session_core::time::Duration::try_from(self.timeout)
            .unwrap_or(session_core::time::Duration::MAX);
        StoreError::Timeout { op, after }
    }

    /// Turns a client error into the store's error for `op`.
    fn failed(&self, op: &'static str) -> impl Fn(RedisError) -> StoreError + '_ {
        move |error| {
            if error.is_timeout() {
                self.timed_out(op)
            } else {
                StoreError::backend(op, error)
            }
        }
    }

    /// A call of `script` on `key` with the arguments every script takes.
    fn invocation<'a>(
        &self,
        script: &'a Script,
        key: &str,
        now: OffsetDateTime,
    ) -> ScriptInvocation<'a> {
        let keeps_index = if self.is_cluster() { "0" } else { "1" };

        let mut invocation = script.prepare_invoke();
        invocation
            .key(key)
            .arg(&*self.prefix)
            .arg(keeps_index)
            .arg(to_unix_millis(now));
        invocation
    }

    /// Adds `key` to the set of `principal` ahead of a write (cluster
    /// only), keeping the set at least as long as `record` can live.
    async fn index_ahead(
        &self,
        op: &'static str,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let Some(principal) = record.principal.as_deref() else {
            return Ok(());
        };
        let reach = to_unix_millis(record.deadline.max(record.expires_at)) - to_unix_millis(now);
        if reach <= 0 {
            // The write will not store this record; nothing to index.
            return Ok(());
        }

        let mut connection = self.connection.clone();
        let mut invocation =
            self.invocation(&SCRIPTS.index_add, &self.principal_key(principal), now);
        invocation.arg(record.key.to_hex()).arg(reach);
        invocation
            .invoke_async::<i64>(&mut connection)
            .await
            .map_err(self.failed(op))?;
        Ok(())
    }

    /// Drops `key` from the set of `principal` after a write removed or
    /// moved it (cluster only). A failure leaves a stale member, which
    /// listing skips, so it is logged and not reported.
    async fn unindex_after(&self, op: &'static str, key: &StorageKey, principal: Option<&str>) {
        let Some(principal) = principal.filter(|_| self.is_cluster()) else {
            return;
        };

        let mut connection = self.connection.clone();
        let removed = redis::cmd("SREM")
            .arg(self.principal_key(principal))
            .arg(key.to_hex())
            .query_async::<i64>(&mut connection)
            .await;
        if let Err(error) = removed {
            warn!(op, %error, "redis session store left a stale principal index entry");
        }
    }

    /// Every hash named by `members` of a principal set, in order.
    async fn fetch_all(
        &self,
        op: &'static str,
        members: &[String],
    ) -> Result<Vec<Fields>, StoreError> {
        // The client refuses an empty pipeline.
        if members.is_empty() {
            return Ok(Vec::new());
        }

        let mut connection = self.connection.clone();
        let keys = members
            .iter()
            .map(|member| format!("{}{member}", self.prefix));

        // A pipeline must stay in one slot on a cluster, so there each
        // record is its own request.
        if self.is_cluster() {
            let mut all = Vec::with_capacity(members.len());
            for key in keys {
                let fields = redis::cmd("HGETALL")
                    .arg(key)
                    .query_async(&mut connection)
                    .await
                    .map_err(self.failed(op))?;
                all.push(fields);
            }
            return Ok(all);
        }

        let mut pipeline = redis::pipe();
        for key in keys {
            pipeline.cmd("HGETALL").arg(key);
        }
        pipeline
            .query_async(&mut connection)
            .await
            .map_err(self.failed(op))
    }

    async fn members(&self, op: &'static str, set: &str) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("SMEMBERS")
            .arg(set)
            .query_async(&mut connection)
            .await
            .map_err(self.failed(op))
    }

    async fn forget(
        &self,
        op: &'static str,
        set: &str,
        members: &[String],
    ) -> Result<(), StoreError> {
        if members.is_empty() {
            return Ok(());
        }

        let mut connection = self.connection.clone();
        redis::cmd("SREM")
            .arg(set)
            .arg(members)
            .query_async::<i64>(&mut connection)
            .await
            .map_err(self.failed(op))?;
        Ok(())
    }

    /// Deletes a principal's records one by one (cluster).
    async fn revoke_each(&self, principal: &str, now: OffsetDateTime) -> Result<u64, StoreError> {
        const OP: &str = "delete_by_principal";
        let set = self.principal_key(principal);
        let members = self.members(OP, &set).await?;

        let mut connection = self.connection.clone();
        let mut live = 0;
        let mut settled = Vec::with_capacity(members.len());
        for member in members {
            let key = format!("{}{member}", self.prefix);
            let mut invocation = self.invocation(&SCRIPTS.revoke_one, &key, now);
            invocation.arg(principal);
            let revoked: i64 = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(self.failed(OP))?;

            // A member naming someone else's record stays: that record
            // may be on its way to this principal.
            match revoked {
                1 => live += 1,
                0 => {}
                -1 => continue,
                _ => return Err(unexpected(OP, "revoke_one")),
            }
            settled.push(member);
        }

        self.forget(OP, &set, &settled).await?;
        Ok(live)
    }
}

/// Whether an operation may be sent again after a lost connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Once,
    Never,
}

/// Whether `error` says the connection was lost rather than the command
/// refused, so that a new connection may succeed.
fn connection_lost(error: &StoreError) -> bool {
    let StoreError::Backend { source, .. } = error else {
        return false;
    };
    source
        .downcast_ref::<RedisError>()
        .is_some_and(|error| error.is_connection_dropped() || error.is_unrecoverable_error())
}

/// A token naming one create or save, so that sending it again after a
/// lost reply is recognised (see `write.lua`).
fn write_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn unexpected(op: &'static str, script: &'static str) -> StoreError {
    StoreError::backend(op, Error::UnexpectedReply { script })
}

/// A script's reply: an outcome code and, for a cluster caller, the
/// principal whose set may need the record removed.
type Reply = (i64, Option<String>);

/// One attempt at each operation; [`Store`] runs them through `run`.
impl RedisStore {
    /// A create or save call of `script` carrying `record` and `writer`.
    fn write_invocation<'a>(
        &self,
        script: &'a Script,
        record: &Record,
        writer: &str,
        now: OffsetDateTime,
    ) -> ScriptInvocation<'a> {
        let mut invocation = self.invocation(script, &self.record_key(&record.key), now);
        for arg in record_args(record) {
            invocation.arg(arg);
        }
        invocation.arg(writer);
        invocation
    }

    async fn create_once(
        &self,
        record: &Record,
        writer: &str,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        const OP: &str = "create";

        if self.is_cluster() {
            self.index_ahead(OP, record, now).await?;
        }

        let mut connection = self.connection.clone();
        let (code, replaced): Reply = self
            .write_invocation(&SCRIPTS.create, record, writer, now)
            .invoke_async(&mut connection)
            .await
            .map_err(self.failed(OP))?;

        match code {
            1 => {
                let stale = replaced.filter(|old| record.principal.as_ref() != Some(old));
                self.unindex_after(OP, &record.key, stale.as_deref()).await;
                Ok(CreateOutcome::Created)
            }
            0 => Ok(CreateOutcome::Collision),
            _ => Err(unexpected(OP, "create")),
        }
    }

    async fn load_once(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let mut connection = self.connection.clone();
        let fields: Fields = redis::cmd("HGETALL")
            .arg(self.record_key(key))
            .query_async(&mut connection)
            .await
            .map_err(self.failed("load"))?;

        if fields.is_empty() {
            return Ok(None);
        }
        let record = decode(*key, &fields).map_err(StoreError::decode)?;
        Ok(Some(record).filter(|record| !record.is_expired(now)))
    }

    async fn save_once(
        &self,
        record: &Record,
        expected_version: u64,
        writer: &str,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        const OP: &str = "save";
        let mut connection = self.connection.clone();
        let mut indexed = false;

        loop {
            let mut invocation = self.write_invocation(&SCRIPTS.save, record, writer, now);
            invocation
                .arg(expected_version)
                .arg(if indexed { "1" } else { "0" });
            let (code, principal): Reply = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(self.failed(OP))?;

            return match code {
                1 => {
                    let moved = principal.filter(|old| record.principal.as_ref() != Some(old));
                    self.unindex_after(OP, &record.key, moved.as_deref()).await;
                    Ok(SaveOutcome::Saved)
                }
                2 => Ok(SaveOutcome::Conflict),
                3 => {
                    self.unindex_after(OP, &record.key, principal.as_deref())
                        .await;
                    Ok(SaveOutcome::Missing)
                }
                // Cluster: index first, then save again.
                4 if !indexed => {
                    self.index_ahead(OP, record, now).await?;
                    indexed = true;
                    continue;
                }
                _ => Err(unexpected(OP, "save")),
            };
        }
    }

    async fn touch_once(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        const OP: &str = "touch";

        let mut connection = self.connection.clone();
        let mut invocation = self.invocation(&SCRIPTS.touch, &self.record_key(key), now);
        invocation.arg(millis_text(expires_at));
        let (code, removed): Reply = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(self.failed(OP))?;

        match code {
            1 => Ok(TouchOutcome::Touched),
            0 => {
                self.unindex_after(OP, key, removed.as_deref()).await;
                Ok(TouchOutcome::Missing)
            }
            _ => Err(unexpected(OP, "touch")),
        }
    }

    async fn delete_once(&self, key: &StorageKey) -> Result<(), StoreError> {
        const OP: &str = "delete";

        // The script reads no clock; any time will do.
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut connection = self.connection.clone();
        let removed: Option<String> = self
            .invocation(&SCRIPTS.delete, &self.record_key(key), now)
            .invoke_async(&mut connection)
            .await
            .map_err(self.failed(OP))?;

        self.unindex_after(OP, key, removed.as_deref()).await;
        Ok(())
    }

    async fn list_once(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        const OP: &str = "list_by_principal";

        let set = self.principal_key(principal);
        let members = self.members(OP, &set).await?;
        let fetched = self.fetch_all(OP, &members).await?;

        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (member, fields) in members.into_iter().zip(fetched) {
            // Only a member whose record is gone is dropped: one that is
            // expired or someone else's is dropped once Redis evicts it.
            let Some(key) = StorageKey::from_hex(&member).filter(|_| !fields.is_empty()) else {
                gone.push(member);
                continue;
            };
            match decode(key, &fields) {
                Ok(record) if record.principal.as_deref() == Some(principal) => {
                    if !record.is_expired(now) {
                        live.push(record);
                    }
                }
                Ok(_) => {}
                Err(error) => warn!(op = OP, %error, "skipped a session that does not decode"),
            }
        }

        self.forget(OP, &set, &gone).await?;
        live.sort_by_key(|record| record.created_at);
        Ok(live)
    }

    async fn revoke_all_once(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        const OP: &str = "delete_by_principal";

        if self.is_cluster() {
            return self.revoke_each(principal, now).await;
        }

        let mut connection = self.connection.clone();
        let mut invocation =
            self.invocation(&SCRIPTS.revoke_all, &self.principal_key(principal), now);
        invocation.arg(principal);
        let live: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(self.failed(OP))?;

        u64::try_from(live).map_err(|_| unexpected(OP, "revoke_all"))
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        let writer = &write_token();
        self.run("create", Retry::Once, || {
            self.create_once(record, writer, now)
        })
        .await
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.run("load", Retry::Once, || self.load_once(key, now))
            .await
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        let writer = &write_token();
        self.run("save", Retry::Once, || {
            self.save_once(record, expected_version, writer, now)
        })
        .await
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        self.run("touch", Retry::Once, || {
            self.touch_once(key, expires_at, now)
        })
        .await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        self.run("delete", Retry::Once, || self.delete_once(key))
            .await
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        // Redis evicts every record at its TTL by itself.
        let _ = now;
        Ok(0)
    }

    fn supports_principal_index(&self) -> bool {
        true
    }

    async fn list_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        self.run("list_by_principal", Retry::Once, || {
            self.list_once(principal, now)
        })
        .await
    }

    async fn delete_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        // Sent again after a lost reply, it would count 0 for sessions
        // the first attempt deleted: better to report the failure.
        self.run("delete_by_principal", Retry::Never, || {
            self.revoke_all_once(principal, now)
        })
        .await
    }
}

//! [`RedisStore`], its builder, and how each operation is run.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, Script, ServerErrorKind, ToRedisArgs};
use session_core::time::OffsetDateTime;
use session_core::{async_trait, to_unix_millis};
use session_core::{
    CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError, TouchOutcome,
};
use tracing::debug;

use crate::codec::RecordKey;
use crate::connection::{Connection, Timeouts};
use crate::error::Error;

mod index;
mod records;

/// What a store operation returns.
type StoreResult<T> = Result<T, StoreError>;

/// The name of a store operation, for errors and logs.
type Op = &'static str;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "session:";

/// The default time one store operation may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The default time the first connection may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sessions in Redis, one string per session with a native millisecond
/// TTL.
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
    /// [`Error::Connect`] for an invalid URL, when the server wants a
    /// password the URL does not give (its `PING` answers `NOAUTH`), and
    /// when no connection came up in time and one more try says why
    /// (refused, a failed login; the cause is the error's source: the
    /// connection manager retries until the connect timeout before
    /// giving up),
    /// [`Error::ConnectTimeout`] when no connection came up in time and
    /// the server does not answer at all,
    /// [`Error::InvalidClusterUrl`] and [`Error::ClusterDisabled`] for
    /// cluster URLs.
    pub async fn connect(self, url: &str) -> Result<RedisStore, Error> {
        let connection = Connection::open(url, self.timeouts()).await?;
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
        let connection = Connection::open_cluster(nodes, self.timeouts()).await?;
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

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            response: self.timeout,
        }
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
        self.key_of(key).to_text()
    }

    /// The Redis key of `key`'s record, to be written into a command.
    fn key_of<'a>(&'a self, key: &'a StorageKey) -> RecordKey<'a> {
        RecordKey {
            prefix: &self.prefix,
            key,
        }
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
    async fn run<T, F, Fut>(&self, op: Op, retry: Retry, body: F) -> StoreResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        // Two clock reads per call show in a profile; take them only for
        // someone who will see the figure.
        let started = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);
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

        if let Some(started) = started {
            let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            debug!(
                op,
                elapsed_us,
                ok = result.is_ok(),
                "redis session store call"
            );
        }
        result
    }

    fn timed_out(&self, op: Op) -> StoreError {
        let after = session_core::time::Duration::try_from(self.timeout)
            .unwrap_or(session_core::time::Duration::MAX);
        StoreError::Timeout { op, after }
    }

    /// Turns a client error into the store's error for `op`.
    fn failed(&self, op: Op) -> impl Fn(RedisError) -> StoreError + '_ {
        move |error| {
            if error.is_timeout() {
                self.timed_out(op)
            } else {
                StoreError::backend(op, error)
            }
        }
    }

    /// An `EVALSHA` of `script` on `key` with the arguments every script
    /// takes; the caller adds the script's own.
    ///
    /// Built as one command rather than through [`redis::Script`]'s
    /// invocation, which copies each argument into a buffer of its own
    /// before copying them all again into the command.
    fn script_call(&self, script: &Script, key: impl ToRedisArgs, now: OffsetDateTime) -> Cmd {
        let keeps_index = if self.is_cluster() { "0" } else { "1" };

        // Room for a record's arguments, so that the buffers grow once.
        let mut call = Cmd::with_capacity(24, 512);
        call.arg("EVALSHA")
            .arg(script.get_hash())
            .arg(1)
            .arg(key)
            .arg(&*self.prefix)
            .arg(keeps_index)
            .arg(to_unix_millis(now));
        call
    }

    /// Sends `call` of `script`, loading the script first when the server
    /// does not know it (it restarted, or its scripts were flushed). On a
    /// cluster the load goes to every master.
    async fn eval<T: FromRedisValue>(&self, op: Op, script: &Script, call: &Cmd) -> StoreResult<T> {
        let mut connection = self.connection.clone();
        let reply = match call.query_async(&mut connection).await {
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                debug!(op, "redis session store loads its script");
                script
                    .load_async(&mut connection)
                    .await
                    .map_err(self.failed(op))?;
                call.query_async(&mut connection).await
            }
            reply => reply,
        };
        reply.map_err(self.failed(op))
    }
}

/// A script reply that no version of the scripts sends.
fn unexpected(op: Op, script: &'static str) -> StoreError {
    StoreError::backend(op, Error::UnexpectedReply { script })
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
    source.downcast_ref::<RedisError>().is_some_and(is_lost)
}

fn is_lost(error: &RedisError) -> bool {
    error.is_connection_dropped() || error.is_unrecoverable_error()
}

#[async_trait]
impl Store for RedisStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        let writer = records::write_token();
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
        let writer = records::write_token();
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
            self.list(principal, now)
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
            self.revoke_all(principal, now)
        })
        .await
    }
}

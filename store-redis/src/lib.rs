//! Session storage in Redis, on one node or on a Redis Cluster.
//!
//! [`RedisStore`] implements [`session_core::Store`] for any number of
//! application instances sharing one Redis. It talks through the `redis`
//! crate's tokio [`ConnectionManager`](redis::aio::ConnectionManager),
//! which reconnects by itself after the server restarts or closes an idle
//! connection, and bounds every operation by a timeout (2 s by default),
//! so a Redis that is down fails the requests that use the session with
//! [`StoreError::Timeout`](session_core::StoreError::Timeout) or
//! [`StoreError::Backend`](session_core::StoreError::Backend) instead of
//! hanging them.
//!
//! A call that finds its connection lost (Redis closed it while idle, or
//! restarted) is sent once more on the new connection, within the same
//! timeout, so the first request after an idle disconnect succeeds.
//! Repeating is safe for every operation but one: reads, touches and
//! deletes by nature, creates and saves because each carries a random
//! write token stored with the record, so a write whose reply was lost is
//! recognised when it arrives again instead of colliding or conflicting
//! with itself. `delete_by_principal` is not repeated, since a second run
//! could not count what the first one deleted.
//!
//! Tested with Redis 7.0, on one node and on a three-master cluster.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use session_core::{Session, SessionConfig, Store};
//! use store_redis::RedisStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder()
//!     .key_prefix("shop:session:")
//!     .timeout(Duration::from_millis(500))
//!     .connect("redis://127.0.0.1:6379")
//!     .await?;
//! let store: Arc<dyn Store> = Arc::new(store);
//!
//! // What the middleware does for one request without a cookie.
//! let session = Session::new(store, Arc::new(SessionConfig::default()), Vec::new());
//! session.insert("cart", vec!["tea"]).await?;
//! session.commit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # How a session is stored
//!
//! Each session is one string under `prefix + hex(storage key)`: a
//! one-line header of numbers (`version`, `writer` (the token of the
//! last write, see above), `expires`, `deadline`, the principal's
//! length, `created`, the expiry policy's length), then the principal,
//! the per-session expiry policy (JSON) and the data (the JSON object).
//! The key carries a millisecond TTL ending at the record's
//! `expires_at`, so Redis evicts abandoned sessions by itself and
//! [`Store::delete_expired`](session_core::Store::delete_expired) has
//! nothing to do.
//!
//! Earlier versions stored each session as a hash with one field per
//! part. Those records are still read, listed, touched and removed as
//! they are, and a save or create rewrites one as a string, so an
//! upgrade logs nobody out. Upgrade every instance sharing the Redis at
//! once, though: an earlier version cannot read the strings, and fails
//! the requests whose sessions a newer instance has rewritten.
//!
//! A record key holding anything else loads as a decode error, which
//! the middleware treats as no session (a hash with none of the fields
//! loads as no session). The writes judge what a key holds by the
//! record header alone (the version, writer, expiry and principal):
//! a key without a readable header (a list, a set, a string that is not
//! a record) counts as no live session, so a write removes or replaces
//! it, while a record whose header reads but whose data is damaged
//! counts as live until its TTL ends it. The middleware never writes to
//! such a record, since it never loads it, but a logout with its cookie
//! deletes it.
//!
//! The TTL is counted from the caller's `now`, not from Redis's clock: a
//! skew between the application's and the server's clocks cannot make a
//! session vanish early, and the caller's clock alone decides what has
//! expired. Loads filter by `now` as well, so a record whose `expires_at
//! <= now` is never returned even while Redis still holds it.
//!
//! # One round trip per operation
//!
//! - `load` is one `GET` (and an `HMGET` after it for a record of the
//!   earlier layout).
//! - `create`, `save`, `touch` and `delete` are Lua scripts, sent once
//!   and then called by their SHA-1 (`EVALSHA`, loading them again when a
//!   restarted server has forgotten them). Each checks and writes
//!   atomically: `create` never overwrites a live record (a dead one is
//!   replaced), `save` writes only over the expected version and never
//!   brings back a record that is gone or expired, and `touch` moves the
//!   expiry to `min(requested, deadline)` without rewriting the data, so
//!   a slow read-only request cannot undo a concurrent logout.
//! - No TTL of zero or less is ever sent: a write whose record is
//!   already dead at `now` deletes the key and reports it missing.
//! - The store uses no `KEYS`, `SCAN`, `FLUSHDB`, `FLUSHALL` or `CONFIG`,
//!   so it runs on managed Redis services.
//!
//! # The principal index
//!
//! Each principal (the logged-in user) has a set, `prefix +
//! "principal:" + principal`, whose members are the hex storage keys of
//! its sessions. The set's own TTL is kept at least as long as the
//! longest absolute lifetime among them, so it disappears with them.
//! Listing and "log out everywhere" check each member against its record
//! (its principal and expiry), so a stale member can never return or
//! delete another user's session; members whose record is gone are
//! dropped as they are found.
//!
//! On one node the scripts keep the sets up to date in the same atomic
//! step as the record, and `delete_by_principal` is one script that
//! removes every session of the principal at once. To do that the
//! scripts name the set from the principal stored in the record, a key
//! they are not given up front; Redis allows this on a single node
//! (including Sentinel and single-shard managed services) but not on a
//! cluster or behind a sharding proxy, which is what the cluster mode is
//! for.
//!
//! # Redis Cluster (feature `cluster`)
//!
//! [`RedisStoreBuilder::connect`] with a `redis+cluster://host:port,...`
//! URL (or `RedisStoreBuilder::connect_cluster`) runs the same store on
//! a cluster connection, which follows slot moves and fail-overs.
//!
//! Each session is one key, so its scripts run in its own slot. A
//! principal's set hashes to another slot, generally on another node, so
//! there it is updated in a separate call, ordered so that a live session
//! is never missing from its principal's set:
//!
//! - the session's key is added to the set *before* the write that gives
//!   it a principal or a later deadline (a create with a principal, a
//!   save that changes the principal); an ordinary save of a logged-in
//!   session is still one call, since its script asks for the index step
//!   only when it is needed;
//! - it is removed from the old set *after* the write that removed it or
//!   changed its principal. If that second call fails, a stale member is
//!   left behind, which the checks above skip.
//!
//! `delete_by_principal` then reads the set and deletes the sessions one
//! by one (each still checked against the principal), so unlike on one
//! node it is not atomic: a session created for that principal while it
//! runs may survive it, just as a login right after a logout would.
//!
//! # Limits
//!
//! - A Redis configured to evict keys under memory pressure
//!   (`maxmemory-policy allkeys-*`) may evict sessions or principal
//!   sets before their time; use `volatile-ttl` or `noeviction`.
//! - The store does not cap the record size; Redis does (512 MB per
//!   value), so bound what handlers put in a session.

mod codec;
mod connection;
mod error;
mod scripts;
mod store;

pub use crate::connection::CLUSTER_SCHEME;
pub use crate::error::Error;
pub use crate::store::{
    RedisStore, RedisStoreBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PREFIX, DEFAULT_TIMEOUT,
};

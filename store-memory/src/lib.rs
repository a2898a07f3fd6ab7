//! In-process session storage.
//!
//! [`MemoryStore`] keeps sessions in this process only: pick it for one
//! instance, for tests and for the demo. Sessions are lost on restart and
//! are not shared between instances; use `store-redis`, `store-postgres` or
//! `store-sqlite` for that.
//!
//! Sessions live in a map split into shards, each behind its own short
//! lock, so a load or a save costs well under a microsecond and requests
//! for different sessions rarely wait on each other. A session's data is
//! kept as the shared JSON text of [`session_core::Data`]: storing and
//! loading it copy nothing, and a million sessions of about 100 bytes fit
//! in under 600 MiB (`BENCHMARKS.md`). Expired sessions are swept out
//! soonest first, a couple on every write and all of them by
//! `delete_expired`, so abandoned sessions go without being read; past
//! the capacity bound, the sessions that expire soonest are evicted.
//!
//! # Example
//!
//! ```
//! use session_core::{Store, time::OffsetDateTime};
//! use store_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_core::StoreError> {
//! let store = MemoryStore::builder().max_capacity(100_000).build();
//!
//! let removed = store.delete_expired(OffsetDateTime::now_utc()).await?;
//! assert_eq!(removed, 0);
//! # Ok(())
//! # }
//! ```
//!
//! # Caching in front of a shared store
//!
//! [`CachingStore`] puts a cache (usually a `MemoryStore`) in front of a
//! durable store that several instances share, so that most loads cost no
//! round trip. Writes always go to the durable store first and are checked
//! there by version, so the cache can make a read older but never loses a
//! write nor brings back a deleted session:
//!
//! - Through one `CachingStore` (and its clones) a load never returns
//!   older data than a write that returned before the load began.
//! - A load answered from the cache returns a record that the durable
//!   store held at some moment less than the TTL
//!   ([`CachingStore::with_ttl`], default 5 s) before the load, by the
//!   store's clock (the system clock unless set: a clock stepped back
//!   lengthens that once by the step); only its expiry may have moved
//!   since, through a touch made by this same instance. A change made
//!   through another instance (a save, a logout, "log out everywhere") is
//!   therefore seen here at the latest one TTL after it completed. Until
//!   then a read-only request here may still see the old data, including
//!   a session that was logged out elsewhere.
//! - A save based on such an old copy meets the durable store's version
//!   check: the conflict (or the missing record, after a logout) drops the
//!   copy, and the session layer reloads from the durable store and replays
//!   its changes, so nothing is lost and a logout stays a logout.
//! - A write drops the cached copy before it calls the durable store, so a
//!   write cut short by a timeout leaves no stale copy behind.
//! - Only records are cached, never their absence: a load of an unknown
//!   session always asks the durable store.
//! - The cache must belong to the `CachingStore` alone; a cache shared by
//!   two of them, or written by anything else, voids the first promise.
//! - If the cache fails, the failure is logged and the durable store
//!   answers; only the durable store's errors reach the caller.

mod caching;
mod memory;
mod shard;

pub use crate::caching::{CachingStore, DEFAULT_CACHE_TTL};
pub use crate::memory::{MemoryStore, MemoryStoreBuilder};

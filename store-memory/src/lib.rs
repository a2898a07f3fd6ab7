//! In-process session storage on a [moka] cache.
//!
//! [`MemoryStore`] keeps sessions in this process only: pick it for one
//! instance, for tests and for the demo. Sessions are lost on restart and
//! are not shared between instances; use `store-redis`, `store-postgres` or
//! `store-sqlite` for that.
//!
//! Each entry expires at its record's `expires_at`, so abandoned sessions
//! are evicted without being read, and the cache has a capacity bound past
//! which the least recently used sessions are evicted.
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
//! [moka]: https://docs.rs/moka

mod memory;

pub use crate::memory::{MemoryStore, MemoryStoreBuilder};

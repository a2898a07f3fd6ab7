//! `CachingStore` against the conformance suite, over a SQLite database
//! file: with a `MemoryStore` cache, and with a cache that keeps no
//! principal index (so "log out everywhere" takes the other path).
//!
//! Each namespace is a table of its own in the harness's one database,
//! with a cache of its own in front of it.

mod caching_support;

use session_conformance::{async_trait, Harness};
use session_core::Store;
use store_memory::{CachingStore, MemoryStore};
use store_sqlite::SqliteStore;

use caching_support::{DbFile, Unindexed};

/// One database file; every namespace is a migrated table in it.
#[derive(Debug)]
struct Cached<C> {
    durable: SqliteStore,
    cache: fn() -> C,
    // Declared last so the pool is dropped before the file goes.
    _file: DbFile,
}

#[async_trait]
impl<C: Store> Harness for Cached<C> {
    type Store = CachingStore<C, SqliteStore>;

    async fn store(&self, namespace: &str) -> Self::Store {
        let durable = self
            .durable
            .clone()
            .with_table_name(namespace)
            .expect("the suite's namespaces are valid table names");
        durable
            .migrate()
            .await
            .expect("migrate the namespace's table");

        CachingStore::new((self.cache)(), durable)
    }
}

async fn on_file<C>(cache: fn() -> C) -> Cached<C> {
    let file = DbFile::new();
    Cached {
        durable: file.open().await,
        cache,
        _file: file,
    }
}

mod memory_cache {
    async fn harness() -> super::Cached<super::MemoryStore> {
        super::on_file(super::MemoryStore::new).await
    }

    session_conformance::suite!(harness);
}

mod unindexed_cache {
    async fn harness() -> super::Cached<super::Unindexed> {
        super::on_file(super::Unindexed::default).await
    }

    session_conformance::suite!(harness);
}

//! `SqliteStore` against the conformance suite, on a database file, on an
//! in-memory database, and on a file with tiny cleanup batches.
//!
//! Each namespace is a table of its own in the harness's one database.

#[macro_use]
mod common;

use session_conformance::{async_trait, Harness};
use store_sqlite::{PoolConfig, SqliteStore};

use common::TempDir;

/// One database; every namespace is a migrated table in it.
#[derive(Debug)]
struct Sqlite {
    store: SqliteStore,
    batch_size: u32,
    // Declared last so the pool is dropped before the files go.
    _dir: Option<TempDir>,
}

#[async_trait]
impl Harness for Sqlite {
    type Store = SqliteStore;

    async fn store(&self, namespace: &str) -> SqliteStore {
        let store = self
            .store
            .clone()
            .with_table_name(namespace)
            .expect("the suite's namespaces are valid table names")
            .with_cleanup_batch_size(self.batch_size);

        store
            .migrate()
            .await
            .expect("migrate the namespace's table");
        store
    }
}

async fn on_file(batch_size: u32) -> Sqlite {
    let dir = TempDir::new();
    let config = PoolConfig::new().with_max_connections(8);

    Sqlite {
        store: common::file_store(&dir, &config).await,
        batch_size,
        _dir: Some(dir),
    }
}

mod file {
    async fn harness() -> super::Sqlite {
        super::on_file(1_000).await
    }

    session_conformance::suite!(harness);
}

mod memory {
    async fn harness() -> super::Sqlite {
        super::Sqlite {
            store: crate::common::memory_store().await,
            batch_size: 1_000,
            _dir: None,
        }
    }

    session_conformance::suite!(harness);
}

/// Batches of 2 rows make every cleanup case loop over several batches.
mod file_small_batches {
    async fn harness() -> super::Sqlite {
        super::on_file(2).await
    }

    session_conformance::suite!(harness);
}

time_zone_tests!(whole_suite_passes_in_other_time_zones);

//! `PostgresStore` against the conformance suite, twice: with the default
//! schema, and in a schema and tables whose names need quoting.

use integration_tests::postgres::{self, TestDatabase};
use session_conformance::{async_trait, Harness};
use sqlx::PgPool;
use store_postgres::PostgresStore;

/// One fresh database per test; each namespace is a table in it.
struct Postgres {
    pool: PgPool,
    schema: &'static str,
    table_suffix: &'static str,
    // Dropped last: the database goes away with the test.
    _db: TestDatabase,
}

#[async_trait]
impl Harness for Postgres {
    type Store = PostgresStore;

    async fn store(&self, namespace: &str) -> PostgresStore {
        let table = format!("{namespace}{}", self.table_suffix);
        let store = PostgresStore::builder(self.pool.clone())
            .with_schema(self.schema)
            .with_table(table)
            .build()
            .expect("the harness's names are valid");

        store.migrate().await.expect("migrations apply");
        store
    }
}

async fn harness(schema: &'static str, table_suffix: &'static str) -> Postgres {
    let db = postgres::shared().fresh_database().await;
    let pool = db.pool().await;

    if schema != "public" {
        let create = format!("CREATE SCHEMA \"{}\"", schema.replace('"', "\"\""));
        sqlx::query(&create)
            .execute(&pool)
            .await
            .expect("the test schema is created");
    }
    Postgres {
        pool,
        schema,
        table_suffix,
        _db: db,
    }
}

async fn default_names() -> Postgres {
    harness("public", "").await
}

session_conformance::suite!(default_names);

/// The same cases where every identifier must be quoted to work: a dot, a
/// space, a double quote, upper case, and a reserved word.
mod quoted_names {
    async fn quoted() -> super::Postgres {
        super::harness("My \"App\".v2", " Select.Sessions").await
    }

    session_conformance::suite!(quoted);
}

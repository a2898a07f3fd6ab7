//! Versioned migrations shipped with the crate, applied under a lock.
//!
//! Each file in `migrations/` is plain SQL in which `:"schema"` and
//! `:"table"` stand for the configured names (psql's syntax for quoted
//! identifier variables). [`crate::PostgresStore::migrate`] applies the
//! missing ones, each in its own transaction, while holding a
//! transaction-level advisory lock, and records them in the schema's own
//! bookkeeping table, never in `_sqlx_migrations`.

use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::error::Error;
use crate::name::{qualified, Ident};

/// The bookkeeping table, one per schema, one row per table and version.
pub(crate) const BOOKKEEPING_TABLE: &str = "session_store_migrations";

/// One migration file.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) template: &'static str,
}

/// Every migration this build knows, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "sessions table",
    template: include_str!("../migrations/0001_sessions.sql"),
}];

impl Migration {
    /// The file with the configured names in place of the variables.
    pub(crate) fn render(&self, schema: &Ident, table: &Ident) -> String {
        self.template
            .replace(":\"schema\"", &schema.quoted())
            .replace(":\"table\"", &table.quoted())
    }

    /// SHA-256 of the file as shipped, so a renamed table keeps it.
    pub(crate) fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.template.as_bytes()).to_vec()
    }
}

/// The advisory lock that serialises migrations of one schema.
///
/// The key is a stable hash of the schema name, so every instance and
/// every version of this crate computes the same one.
pub(crate) fn migrate_lock_key(schema: &Ident) -> i64 {
    lock_key("store-postgres migrate", schema.as_str(), "")
}

/// FNV-1a over a purpose and the names, folded into a signed 64-bit key.
pub(crate) fn lock_key(purpose: &str, schema: &str, table: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    // A NUL cannot occur in a name, so it separates the parts unambiguously.
    for part in [purpose, "\0", schema, "\0", table] {
        for byte in part.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// The statement that creates the bookkeeping table.
fn bookkeeping_ddl(schema: &Ident) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {}.\"{BOOKKEEPING_TABLE}\" (\n    \
         table_name  text        NOT NULL,\n    \
         version     bigint      NOT NULL,\n    \
         description text        NOT NULL,\n    \
         checksum    bytea       NOT NULL,\n    \
         applied_at  timestamptz NOT NULL DEFAULT now(),\n    \
         PRIMARY KEY (table_name, version)\n)",
        schema.quoted()
    )
}

/// Applies the missing migrations to `schema.table`.
pub(crate) async fn run(pool: &PgPool, schema: &Ident, table: &Ident) -> Result<(), Error> {
    for migration in MIGRATIONS {
        let version = migration.version;
        let mut tx = pool
            .begin()
            .await
            .map_err(|source| Error::Migrate { version, source })?;

        // Held until this transaction ends, so a cancelled or crashed
        // migrator can never leave it behind.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(migrate_lock_key(schema))
            .execute(&mut *tx)
            .await
            .map_err(|source| Error::Migrate { version, source })?;

        ensure_bookkeeping(&mut tx, schema, version).await?;
        let applied = applied(&mut tx, schema, table, version).await?;
        check_history(&applied)?;

        if applied.iter().any(|(v, _)| *v == version) {
            continue;
        }

        apply(&mut tx, migration, schema, table).await?;
        tx.commit()
            .await
            .map_err(|source| Error::Migrate { version, source })?;
        tracing::debug!(version, "applied a session store migration");
    }
    Ok(())
}

/// Creates the bookkeeping table unless it exists.
///
/// Checked first because `CREATE TABLE IF NOT EXISTS` still needs CREATE
/// on the schema, which a role may lack once an administrator migrated.
async fn ensure_bookkeeping(
    conn: &mut PgConnection,
    schema: &Ident,
    version: i64,
) -> Result<(), Error> {
    let name = format!("{}.\"{BOOKKEEPING_TABLE}\"", schema.quoted());
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(|source| Error::Migrate { version, source })?;

    if !exists {
        sqlx::query(&bookkeeping_ddl(schema))
            .execute(&mut *conn)
            .await
            .map_err(|source| Error::Migrate { version, source })?;
    }
    Ok(())
}

/// The recorded versions and checksums of `table`.
async fn applied(
    conn: &mut PgConnection,
    schema: &Ident,
    table: &Ident,
    version: i64,
) -> Result<Vec<(i64, Vec<u8>)>, Error> {
    let sql = format!(
        "SELECT version, checksum FROM {}.\"{BOOKKEEPING_TABLE}\" WHERE table_name = $1",
        schema.quoted()
    );
    sqlx::query_as(&sql)
        .bind(table.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(|source| Error::Migrate { version, source })
}

/// Refuses a history this build cannot vouch for.
fn check_history(applied: &[(i64, Vec<u8>)]) -> Result<(), Error> {
    for (version, checksum) in applied {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            None => return Err(Error::UnknownMigration { version: *version }),
            Some(known) if known.checksum() != *checksum => {
                return Err(Error::MigrationChanged { version: *version });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Runs one migration's statements and records it.
async fn apply(
    conn: &mut PgConnection,
    migration: &Migration,
    schema: &Ident,
    table: &Ident,
) -> Result<(), Error> {
    let version = migration.version;

    // The file holds several statements: without bound arguments sqlx
    // sends them with the simple query protocol, in one go, inside this
    // transaction. (`sqlx::raw_sql` would too, but its future is not
    // provably `Send` here.)
    let statements = migration.render(schema, table);
    sqlx::Executor::execute(&mut *conn, statements.as_str())
        .await
        .map_err(|source| Error::Migrate { version, source })?;

    let record = format!(
        "INSERT INTO {}.\"{BOOKKEEPING_TABLE}\" \
         (table_name, version, description, checksum) VALUES ($1, $2, $3, $4)",
        schema.quoted()
    );
    sqlx::query(&record)
        .bind(table.as_str())
        .bind(version)
        .bind(migration.description)
        .bind(migration.checksum())
        .execute(&mut *conn)
        .await
        .map_err(|source| Error::Migrate { version, source })?;
    Ok(())
}

/// All migrations as one script for external tools (psql, sqlx-cli).
///
/// It takes the same lock, creates the bookkeeping table and records each
/// version, so a later [`run`] sees them applied. Run it in one
/// transaction (`psql -1`; sqlx-cli wraps each file in one).
pub(crate) fn script(schema: &Ident, table: &Ident) -> String {
    let mut out = format!(
        "-- store-postgres migrations for {}\n\
         SELECT pg_advisory_xact_lock({});\n\n{};\n",
        qualified(schema, table),
        migrate_lock_key(schema),
        bookkeeping_ddl(schema),
    );

    for migration in MIGRATIONS {
        out.push('\n');
        out.push_str(&migration.render(schema, table));
        out.push_str(&format!(
            "\nINSERT INTO {}.\"{BOOKKEEPING_TABLE}\" \
             (table_name, version, description, checksum)\n\
             VALUES ({}, {}, {}, '\\x{}'::bytea);\n",
            schema.quoted(),
            literal(table.as_str()),
            migration.version,
            literal(migration.description),
            hex(&migration.checksum()),
        ));
    }
    out
}

/// A standard-conforming SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;

    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(schema: &str, table: &str) -> (Ident, Ident) {
        let schema = Ident::new("schema", schema).unwrap();
        let table = Ident::new("table", table).unwrap();
        (schema, table)
    }

    #[test]
    fn versions_are_strictly_increasing() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();

        assert!(versions.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(versions.first(), Some(&1));
    }

    #[test]
    fn render_leaves_no_variable_behind() {
        let (schema, table) = names("app", "Web \"Sessions\"");

        for migration in MIGRATIONS {
            let sql = migration.render(&schema, &table);

            assert!(!sql.contains(":\""), "{sql}");
            assert!(sql.contains("\"app\".\"Web \"\"Sessions\"\"\""));
        }
    }

    #[test]
    fn checksum_ignores_the_names() {
        let migration = &MIGRATIONS[0];

        assert_eq!(migration.checksum().len(), 32);
        assert_eq!(migration.checksum(), migration.checksum());
    }

    #[test]
    fn lock_keys_differ_by_purpose_and_name() {
        let a = lock_key("migrate", "app", "");
        let b = lock_key("migrate", "app2", "");
        let c = lock_key("cleanup", "app", "");

        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            lock_key("cleanup", "a", "bc"),
            lock_key("cleanup", "a", "bc")
        );
        assert_ne!(
            lock_key("cleanup", "ab", "c"),
            lock_key("cleanup", "a", "bc")
        );
    }

    #[test]
    fn history_checks_catch_changed_and_unknown_versions() {
        let good = vec![(1, MIGRATIONS[0].checksum())];
        let changed = vec![(1, vec![0; 32])];
        let unknown = vec![(999, vec![0; 32])];

        assert!(check_history(&good).is_ok());
        assert!(matches!(
            check_history(&changed),
            Err(Error::MigrationChanged { version: 1 })
        ));
        assert!(matches!(
            check_history(&unknown),
            Err(Error::UnknownMigration { version: 999 })
        ));
    }

    #[test]
    fn script_quotes_the_table_literal() {
        let (schema, table) = names("public", "it's");

        let script = script(&schema, &table);

        assert!(script.contains("VALUES ('it''s', 1,"));
        assert!(script.contains("pg_advisory_xact_lock("));
    }
}

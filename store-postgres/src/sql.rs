//! The statements of one store, built once for its schema and table.

use crate::name::{qualified, Ident};

/// The columns a load reads, by the names [`crate::row`] expects.
fn columns() -> String {
    let times = ["created_at", "expires_at", "deadline"].map(finite_time);
    format!(
        "key, data::text AS data, version, {}, principal, expiry",
        times.join(", ")
    )
}

/// A timestamp column, or NULL when it is outside what a record can hold.
///
/// Postgres keeps `infinity` and years up to 294276; the driver panics on
/// those rather than failing, so they are turned into NULL here, and the
/// row is then reported as one that does not decode.
fn finite_time(column: &str) -> String {
    format!(
        "CASE WHEN {column} BETWEEN '0001-01-01 00:00:00+00' \
         AND '9999-12-31 23:59:59.999999+00' THEN {column} END AS {column}"
    )
}

/// Every statement the store runs, with the table name spliced in.
///
/// Values are always bound parameters; only the quoted table name is part
/// of the text. Each text stays the same for the life of the store, so the
/// driver prepares it once per connection.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) create: String,
    pub(crate) load: String,
    pub(crate) save: String,
    pub(crate) live: String,
    pub(crate) touch: String,
    pub(crate) delete: String,
    pub(crate) delete_expired: String,
    pub(crate) list_by_principal: String,
    pub(crate) delete_by_principal: String,
    pub(crate) stats: String,
}

impl Statements {
    pub(crate) fn new(schema: &Ident, table: &Ident) -> Self {
        let t = qualified(schema, table);
        let columns = columns();

        Self {
            // A live row wins (zero rows back: a collision); an expired
            // one under the same key is replaced in the same statement.
            create: format!(
                "INSERT INTO {t} AS s \
                 (key, data, version, created_at, expires_at, deadline, principal, expiry) \
                 VALUES ($1, $2::json, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (key) DO UPDATE SET \
                 data = EXCLUDED.data, version = EXCLUDED.version, \
                 created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, \
                 deadline = EXCLUDED.deadline, principal = EXCLUDED.principal, \
                 expiry = EXCLUDED.expiry \
                 WHERE s.expires_at <= $9 \
                 RETURNING 1"
            ),
            load: format!("SELECT {columns} FROM {t} WHERE key = $1 AND expires_at > $2"),
            // The update only matches the expected version of a live row.
            // When it matches none, `live` tells a conflict (the row is
            // there) from a missing row: a second round trip, but only on
            // that rare path, where counting in the same statement cost
            // every save a second index probe.
            save: format!(
                "UPDATE {t} SET data = $2::json, version = $3, expires_at = $4, \
                 deadline = $5, principal = $6, expiry = $7 \
                 WHERE key = $1 AND version = $8 AND expires_at > $9 \
                 RETURNING 1"
            ),
            live: format!("SELECT 1 FROM {t} WHERE key = $1 AND expires_at > $2"),
            touch: format!(
                "UPDATE {t} SET expires_at = LEAST($2, deadline) \
                 WHERE key = $1 AND expires_at > $3"
            ),
            delete: format!("DELETE FROM {t} WHERE key = $1"),
            // One bounded batch; rows another cleaner holds are skipped
            // rather than waited for.
            delete_expired: format!(
                "DELETE FROM {t} WHERE key IN (\
                 SELECT key FROM {t} WHERE expires_at <= $1 \
                 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 AND expires_at <= $1"
            ),
            list_by_principal: format!(
                "SELECT {columns} FROM {t} WHERE principal = $1 AND expires_at > $2"
            ),
            delete_by_principal: format!(
                "WITH gone AS (DELETE FROM {t} WHERE principal = $1 RETURNING expires_at) \
                 SELECT count(*) FROM gone WHERE expires_at > $2"
            ),
            stats: format!(
                "SELECT count(*) FILTER (WHERE expires_at > $1) AS live, \
                 count(*) FILTER (WHERE expires_at <= $1) AS expired FROM {t}"
            ),
        }
    }
}

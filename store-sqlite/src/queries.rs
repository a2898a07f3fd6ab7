//! The SQL of each store operation, written once per table name.
//!
//! Every operation is one statement. A statement that writes takes
//! SQLite's write lock when it starts (waiting up to the busy timeout), so
//! no operation reads first and then asks to upgrade its lock, the pattern
//! that makes WAL databases answer "database is locked" under load.

use crate::table::TableName;

/// The columns in the order every query selects and inserts them.
const COLUMNS: &str = "\"key\", \"data\", \"version\", \"created_at\", \
                       \"expires_at\", \"deadline\", \"principal\", \"expiry\"";

/// The statements for one session table.
#[derive(Debug)]
pub(crate) struct Queries {
    /// ?1..?8 the columns, ?9 now.
    pub(crate) create: String,
    /// ?1 key, ?2 now.
    pub(crate) load: String,
    /// ?1..?8 the columns, ?9 now, ?10 the expected version.
    pub(crate) save: String,
    /// ?1 key, ?2 wanted expires_at, ?3 now.
    pub(crate) touch: String,
    /// ?1 key.
    pub(crate) delete: String,
    /// ?1 now, ?2 batch size.
    pub(crate) delete_expired: String,
    /// ?1 principal, ?2 now.
    pub(crate) list_by_principal: String,
    /// ?1 principal, ?2 now; returns one row per deleted record.
    pub(crate) delete_by_principal: String,
    /// ?1 now.
    pub(crate) stats: String,
}

impl Queries {
    pub(crate) fn new(table: &TableName) -> Self {
        let t = table.quoted();

        Self {
            // A live row under the key makes the conflict's WHERE false, so
            // nothing is written and the statement reports 0 rows: that is
            // the collision, seen from the row count alone. An expired row
            // is replaced in the same statement.
            create: format!(
                "INSERT INTO {t} ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (\"key\") DO UPDATE SET \
                 \"data\" = excluded.\"data\", \
                 \"version\" = excluded.\"version\", \
                 \"created_at\" = excluded.\"created_at\", \
                 \"expires_at\" = excluded.\"expires_at\", \
                 \"deadline\" = excluded.\"deadline\", \
                 \"principal\" = excluded.\"principal\", \
                 \"expiry\" = excluded.\"expiry\" \
                 WHERE {t}.\"expires_at\" <= ?9"
            ),

            load: format!(
                "SELECT {COLUMNS} FROM {t} \
                 WHERE \"key\" = ?1 AND \"expires_at\" > ?2"
            ),

            // Saved, conflict and missing must be told apart by this one
            // statement, or a second one could see a different row. No
            // live row: 0 rows changed (missing). A live row at another
            // version: the version would become NULL, which the NOT NULL
            // column refuses, so SQLite aborts the statement with nothing
            // written and reports SQLITE_CONSTRAINT_NOTNULL (conflict).
            // Otherwise 1 row changed (saved).
            save: format!(
                "UPDATE {t} SET \
                 \"data\" = ?2, \
                 \"version\" = CASE WHEN \"version\" = ?10 THEN ?3 ELSE NULL END, \
                 \"created_at\" = ?4, \
                 \"expires_at\" = ?5, \
                 \"deadline\" = ?6, \
                 \"principal\" = ?7, \
                 \"expiry\" = ?8 \
                 WHERE \"key\" = ?1 AND \"expires_at\" > ?9"
            ),

            touch: format!(
                "UPDATE {t} SET \"expires_at\" = min(?2, \"deadline\") \
                 WHERE \"key\" = ?1 AND \"expires_at\" > ?3"
            ),

            delete: format!("DELETE FROM {t} WHERE \"key\" = ?1"),

            // Bounded so that one cleanup never holds the write lock for
            // long; the caller repeats until a batch comes back short.
            delete_expired: format!(
                "DELETE FROM {t} WHERE \"key\" IN \
                 (SELECT \"key\" FROM {t} WHERE \"expires_at\" <= ?1 LIMIT ?2)"
            ),

            list_by_principal: format!(
                "SELECT {COLUMNS} FROM {t} \
                 WHERE \"principal\" = ?1 AND \"expires_at\" > ?2 \
                 ORDER BY \"created_at\", \"key\""
            ),

            // Expired rows of the principal go too; only live ones count.
            delete_by_principal: format!(
                "DELETE FROM {t} WHERE \"principal\" = ?1 \
                 RETURNING \"expires_at\" > ?2"
            ),

            stats: format!(
                "SELECT coalesce(sum(\"expires_at\" > ?1), 0), \
                 coalesce(sum(\"expires_at\" <= ?1), 0) FROM {t}"
            ),
        }
    }
}

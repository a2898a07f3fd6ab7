//! The session table's name and how it is written in SQL.

use crate::error::SqliteStoreError;

/// The name the shipped migration files use for the table.
pub(crate) const DEFAULT_TABLE: &str = "sessions";

/// Longest accepted table name, in bytes; index names add a suffix to it.
const MAX_LEN: usize = 128;

/// A session table name that has been checked and can be quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName(String);

impl TableName {
    /// Checks `name`.
    ///
    /// Any text SQLite can hold in a quoted identifier is accepted (spaces,
    /// dots, quotes, reserved words, any case), except what SQLite itself
    /// refuses or what would make the schema confusing.
    pub(crate) fn new(name: &str) -> Result<Self, SqliteStoreError> {
        let refuse = |reason| SqliteStoreError::InvalidTableName {
            name: name.to_owned(),
            reason,
        };

        if name.is_empty() {
            return Err(refuse("it is empty"));
        }
        if name.len() > MAX_LEN {
            return Err(refuse("it is longer than 128 bytes"));
        }
        if name.chars().any(char::is_control) {
            return Err(refuse("it contains a control character"));
        }
        if name.trim() != name {
            return Err(refuse("it starts or ends with whitespace"));
        }

        // SQLite keeps names starting with sqlite_ for itself, in any case.
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("sqlite_") {
            return Err(refuse("names starting with sqlite_ are reserved by SQLite"));
        }
        if lower == crate::migrate::BOOKKEEPING_TABLE {
            return Err(refuse("it is the migration bookkeeping table"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as one SQL identifier, whatever characters it has.
    ///
    /// A dot inside stays part of the name: `"a.b"` is never read as
    /// table `b` of schema `a`.
    pub(crate) fn quoted(&self) -> String {
        quote(&self.0)
    }

    /// The name with embedded double quotes doubled, without the outer
    /// quotes, for substitution into a quoted identifier.
    pub(crate) fn escaped(&self) -> String {
        self.0.replace('"', "\"\"")
    }
}

impl Default for TableName {
    fn default() -> Self {
        Self(DEFAULT_TABLE.to_owned())
    }
}

/// Quotes an identifier: double quotes around, inner ones doubled.
pub(crate) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_that_need_quoting() {
        for name in [
            "Web Sessions",
            "order",
            "MixedCase",
            "app.sessions",
            "it's \"q\"",
        ] {
            let table = TableName::new(name).unwrap();

            assert_eq!(table.as_str(), name);
        }
    }

    #[test]
    fn quoting_doubles_inner_quotes() {
        let table = TableName::new("a\"b").unwrap();

        assert_eq!(table.quoted(), "\"a\"\"b\"");
        assert_eq!(table.escaped(), "a\"\"b");
    }

    #[test]
    fn refuses_what_sqlite_or_readers_would_trip_on() {
        let long = "x".repeat(MAX_LEN + 1);
        let bad = [
            "",
            " sessions",
            "sessions\n",
            "a\0b",
            "sqlite_x",
            "SQLITE_stat1",
            &long,
        ];

        for name in bad {
            let error = TableName::new(name).unwrap_err();

            assert!(
                matches!(error, SqliteStoreError::InvalidTableName { .. }),
                "{name:?}"
            );
        }
        assert!(TableName::new("_store_sqlite_migrations").is_err());
    }
}

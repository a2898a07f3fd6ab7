//! SQL identifiers: validated once, always double-quoted.

use std::fmt;

use crate::error::Error;

/// The longest identifier Postgres keeps; longer ones are silently cut.
const MAX_IDENT_BYTES: usize = 63;

/// A schema or table name, checked and ready to splice into SQL.
///
/// The name is kept verbatim and always written double-quoted, with inner
/// quotes doubled, so a dot, a space, upper case or a reserved word is part
/// of the name and never SQL syntax: `a.b` is one table called `a.b`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    raw: String,
}

impl Ident {
    /// Checks `name` as the `what` ("schema", "table") of the store.
    pub(crate) fn new(what: &'static str, name: &str) -> Result<Self, Error> {
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.contains('\0') {
            Some("it contains a NUL character")
        } else if name.len() > MAX_IDENT_BYTES {
            // Postgres would truncate it and then find a different table.
            Some("it is longer than 63 bytes")
        } else {
            None
        };

        match reason {
            Some(reason) => Err(Error::InvalidName {
                what,
                name: name.to_owned(),
                reason,
            }),
            None => Ok(Self {
                raw: name.to_owned(),
            }),
        }
    }

    /// A name this crate spells itself, known to pass [`Ident::new`].
    pub(crate) fn known(name: &'static str) -> Self {
        Self {
            raw: name.to_owned(),
        }
    }

    /// The name as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.raw
    }

    /// The name as a quoted SQL identifier.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.raw.replace('"', "\"\""))
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.raw, f)
    }
}

/// `"schema"."table"`, both parts quoted.
pub(crate) fn qualified(schema: &Ident, table: &Ident) -> String {
    format!("{}.{}", schema.quoted(), table.quoted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_name_and_doubles_inner_quotes() {
        let cases = [
            ("sessions", "\"sessions\""),
            ("Web Sessions", "\"Web Sessions\""),
            ("select", "\"select\""),
            ("a.b", "\"a.b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
        ];

        for (raw, quoted) in cases {
            assert_eq!(Ident::new("table", raw).unwrap().quoted(), quoted);
        }
    }

    #[test]
    fn a_dot_never_splits_schema_from_table() {
        let schema = Ident::new("schema", "app.v2").unwrap();
        let table = Ident::new("table", "web.sessions").unwrap();

        assert_eq!(qualified(&schema, &table), "\"app.v2\".\"web.sessions\"");
    }

    #[test]
    fn refuses_names_postgres_cannot_keep() {
        let long = "x".repeat(64);

        for bad in ["", "nul\0byte", long.as_str()] {
            let error = Ident::new("table", bad).unwrap_err();
            assert!(error.is_invalid_name(), "{bad:?}");
        }
        assert!(Ident::new("table", &"x".repeat(63)).is_ok());
    }
}

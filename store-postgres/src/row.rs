//! Turning a stored row back into a [`Record`].

use session_core::time::OffsetDateTime;
use session_core::{Data, Record, StorageKey, StoreError};
use sqlx::postgres::PgRow;
use sqlx::Row as _;

use crate::error::Error;

/// Reads one row of the load columns.
///
/// Anything that does not decode (a wrong key length, data that is not a
/// JSON object, a version below 1, an infinite timestamp, an expiry this
/// build cannot read) is [`StoreError::Decode`]: the session handle then
/// treats the session as absent instead of failing every request.
pub(crate) fn decode(row: &PgRow) -> Result<Record, StoreError> {
    let key: Vec<u8> = column(row, "key")?;
    let key = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| invalid("key", None))?;

    let data: String = column(row, "data")?;
    let data = Data::parse(&data).map_err(|e| invalid("data", Some(e.into())))?;

    let version: i64 = column(row, "version")?;
    let version = u64::try_from(version)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| invalid("version", None))?;

    let expiry: Option<String> = column(row, "expiry")?;
    let expiry =
        Record::parse_expiry(expiry.as_deref()).map_err(|e| invalid("expiry", Some(e.into())))?;

    Ok(Record {
        key: StorageKey::from_bytes(key),
        data,
        version,
        created_at: time_column(row, "created_at")?,
        expires_at: time_column(row, "expires_at")?,
        deadline: time_column(row, "deadline")?,
        principal: column(row, "principal")?,
        expiry,
    })
}

/// One column; a value of the wrong type or shape is a decode error.
fn column<'r, T>(row: &'r PgRow, name: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name).map_err(|error| match error {
        sqlx::Error::ColumnDecode { .. } => invalid(name, Some(error.into())),
        other => StoreError::backend("decode", other),
    })
}

/// A timestamp column, in UTC; NULL means out of range (see `sql.rs`).
fn time_column(row: &PgRow, name: &'static str) -> Result<OffsetDateTime, StoreError> {
    let at: Option<OffsetDateTime> = column(row, name)?;
    let at = at.ok_or_else(|| invalid(name, None))?;
    Ok(at.to_offset(session_core::time::UtcOffset::UTC))
}

fn invalid(column: &'static str, source: Option<session_core::BoxError>) -> StoreError {
    StoreError::decode(Error::InvalidRow { column, source })
}

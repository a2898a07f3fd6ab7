//! One attempt at each operation on a single record.

use redis::{RedisError, Value};
use session_core::time::OffsetDateTime;
use session_core::{
    to_unix_millis, CreateOutcome, Record, SaveOutcome, StorageKey, StoreError, TouchOutcome,
};

use super::{unexpected, Op, RedisStore, StoreResult};
use crate::codec::{decode, legacy, Encoded, Padded};
use crate::error::Error;
use crate::scripts::SCRIPTS;

/// A token naming one create or save, so that sending it again after a
/// lost reply is recognised (see `create.lua`).
pub(super) fn write_token() -> u64 {
    rand::random()
}

/// The principal whose set a write took `record` out of: `old`, unless
/// the record still belongs to it.
fn left_behind(old: Option<String>, record: &Record) -> Option<String> {
    old.filter(|old| record.principal.as_ref() != Some(old))
}

/// How long a written record lives from `now`, and how long its
/// principal's set must live to outlast it, in milliseconds. The
/// scripts take them worked out: in Lua they would be numbers, which
/// Redis prints slowly when they are passed on to a command.
fn lifetimes(record: &Record, now: OffsetDateTime) -> [i64; 2] {
    let now = to_unix_millis(now);
    let expires = to_unix_millis(record.expires_at);
    let last = expires.max(to_unix_millis(record.deadline));
    [expires.saturating_sub(now), last.saturating_sub(now)]
}

/// A record as read: decoded, absent, or why it did not decode.
pub(super) type Fetched = Result<Option<Record>, Error>;

/// Whether Redis refused a command for the type of the key's value.
pub(super) fn wrong_type(error: &RedisError) -> bool {
    error.code() == Some("WRONGTYPE")
}

/// A script's reply: an outcome code and, for a cluster caller, the
/// principal whose set may need the record removed. The scripts send the
/// bare code when they name no principal, which spares Redis building a
/// reply table on every call.
type Reply = (i64, Option<String>);

/// The [`Reply`] of `script`, from either form.
fn reply(op: Op, script: &'static str, value: Value) -> StoreResult<Reply> {
    match value {
        Value::Int(code) => Ok((code, None)),
        value => redis::from_redis_value(value).map_err(|_| unexpected(op, script)),
    }
}

/// One attempt at each record operation; the `Store` impl runs them
/// through `RedisStore::run`.
impl RedisStore {
    pub(super) async fn create_once(
        &self,
        record: &Record,
        writer: u64,
        now: OffsetDateTime,
    ) -> StoreResult<CreateOutcome> {
        const OP: Op = "create";

        if self.is_cluster() {
            self.index(OP, record, now).await?;
        }

        let script = &SCRIPTS.create;
        let mut call = self.script_call(script, self.key_of(&record.key), now);
        call.arg(&lifetimes(record, now))
            .arg(Padded(writer))
            .arg(Encoded { record, writer })
            .arg(record.principal.as_deref());
        let (code, replaced) = reply(OP, "create", self.eval(OP, script, &call).await?)?;

        match code {
            1 => {
                let stale = left_behind(replaced, record);
                self.unindex(OP, &record.key, stale.as_deref()).await;
                Ok(CreateOutcome::Created)
            }
            0 => Ok(CreateOutcome::Collision),
            _ => Err(unexpected(OP, "create")),
        }
    }

    pub(super) async fn load_once(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Record>> {
        const OP: Op = "load";

        let record = self.fetch(OP, key).await?.map_err(StoreError::decode)?;
        Ok(record.filter(|record| !record.is_expired(now)))
    }

    pub(super) async fn save_once(
        &self,
        record: &Record,
        expected_version: u64,
        writer: u64,
        now: OffsetDateTime,
    ) -> StoreResult<SaveOutcome> {
        const OP: Op = "save";
        let script = &SCRIPTS.save;
        let mut indexed = false;

        loop {
            let mut call = self.script_call(script, self.key_of(&record.key), now);
            call.arg(Padded(expected_version))
                .arg(if indexed { "1" } else { "0" })
                .arg(&lifetimes(record, now))
                .arg(Padded(record.version))
                .arg(Padded(writer))
                .arg(Encoded { record, writer })
                .arg(record.principal.as_deref());
            let (code, principal) = reply(OP, "save", self.eval(OP, script, &call).await?)?;

            return match code {
                1 => {
                    let moved = left_behind(principal, record);
                    self.unindex(OP, &record.key, moved.as_deref()).await;
                    Ok(SaveOutcome::Saved)
                }
                2 => Ok(SaveOutcome::Conflict),
                3 => {
                    self.unindex(OP, &record.key, principal.as_deref()).await;
                    Ok(SaveOutcome::Missing)
                }
                // Cluster: index first, then save again.
                4 if !indexed => {
                    self.index(OP, record, now).await?;
                    indexed = true;
                    continue;
                }
                _ => Err(unexpected(OP, "save")),
            };
        }
    }

    pub(super) async fn touch_once(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<TouchOutcome> {
        const OP: Op = "touch";

        let script = &SCRIPTS.touch;
        let mut call = self.script_call(script, self.key_of(key), now);
        let target = to_unix_millis(expires_at);
        call.arg(Padded(target))
            .arg(target.saturating_sub(to_unix_millis(now)));
        let (code, removed) = reply(OP, "touch", self.eval(OP, script, &call).await?)?;

        match code {
            1 => Ok(TouchOutcome::Touched),
            0 => {
                self.unindex(OP, key, removed.as_deref()).await;
                Ok(TouchOutcome::Missing)
            }
            _ => Err(unexpected(OP, "touch")),
        }
    }

    pub(super) async fn delete_once(&self, key: &StorageKey) -> StoreResult<()> {
        const OP: Op = "delete";

        // The script reads no clock; any time will do.
        let now = OffsetDateTime::UNIX_EPOCH;
        let script = &SCRIPTS.delete;
        let call = self.script_call(script, self.key_of(key), now);
        let removed: Option<String> = self.eval(OP, script, &call).await?;

        self.unindex(OP, key, removed.as_deref()).await;
        Ok(())
    }

    /// Reads the record of `key`: one `GET`, and for a record of the
    /// previous layout (a hash) an `HMGET` after it.
    pub(super) async fn fetch(&self, op: Op, key: &StorageKey) -> StoreResult<Fetched> {
        self.fetch_from(op, key, Layout::String).await
    }

    /// Reads the record of `key`, asking first for it in `layout`.
    ///
    /// A save or create rewrites a hash as a string between the two
    /// reads at times; then the first layout is asked again, once. Only
    /// a key that is neither, twice, holds nothing this store wrote.
    pub(super) async fn fetch_from(
        &self,
        op: Op,
        key: &StorageKey,
        layout: Layout,
    ) -> StoreResult<Fetched> {
        let mut connection = self.connection.clone();
        let asks = [layout, layout.other(), layout, layout.other()];

        for layout in asks {
            let mut read = match layout {
                Layout::String => redis::cmd("GET"),
                Layout::Hash => redis::cmd("HMGET"),
            };
            read.arg(self.key_of(key));
            if layout == Layout::Hash {
                read.arg(&legacy::FIELDS);
            }

            let reply = match read.query_async::<Value>(&mut connection).await {
                Ok(reply) => reply,
                Err(error) if wrong_type(&error) => continue,
                Err(error) => return Err(self.failed(op)(error)),
            };
            return match layout {
                Layout::String => decode_reply(op, *key, &reply),
                Layout::Hash => {
                    let values = legacy::field_values(&reply)
                        .map_err(|error| StoreError::backend(op, error))?;
                    Ok(legacy::decode(*key, values))
                }
            };
        }

        // Neither a string nor a hash: nothing this store wrote.
        Ok(Err(Error::Malformed { field: "layout" }))
    }
}

/// How a record is stored: as a string, or as a hash (earlier versions).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    String,
    Hash,
}

impl Layout {
    fn other(self) -> Self {
        match self {
            Self::String => Self::Hash,
            Self::Hash => Self::String,
        }
    }
}

/// The record in the reply to a `GET` of its key.
pub(super) fn decode_reply(op: Op, key: StorageKey, reply: &Value) -> StoreResult<Fetched> {
    match reply {
        Value::Nil => Ok(Ok(None)),
        Value::BulkString(stored) => Ok(decode(key, stored).map(Some)),
        _ => Err(StoreError::backend(
            op,
            Error::UnexpectedRead { command: "GET" },
        )),
    }
}

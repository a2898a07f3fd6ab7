//! One attempt at each operation on a single record.

use redis::{Script, ScriptInvocation};
use session_core::time::OffsetDateTime;
use session_core::{CreateOutcome, Record, SaveOutcome, StorageKey, StoreError, TouchOutcome};

use super::{unexpected, Op, RedisStore, StoreResult};
use crate::codec::{decode, millis_text, record_args, Fields};
use crate::scripts::SCRIPTS;

/// A token naming one create or save, so that sending it again after a
/// lost reply is recognised (see `write.lua`).
pub(super) fn write_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The principal whose set a write took `record` out of: `old`, unless
/// the record still belongs to it.
fn left_behind(old: Option<String>, record: &Record) -> Option<String> {
    old.filter(|old| record.principal.as_ref() != Some(old))
}

/// A script's reply: an outcome code and, for a cluster caller, the
/// principal whose set may need the record removed.
type Reply = (i64, Option<String>);

/// One attempt at each record operation; the `Store` impl runs them
/// through `RedisStore::run`.
impl RedisStore {
    /// A create or save call of `script` carrying `record` and `writer`.
    fn write_invocation<'a>(
        &self,
        script: &'a Script,
        record: &Record,
        writer: &str,
        now: OffsetDateTime,
    ) -> ScriptInvocation<'a> {
        let mut invocation = self.invocation(script, &self.record_key(&record.key), now);
        for arg in record_args(record) {
            invocation.arg(arg);
        }
        invocation.arg(writer);
        invocation
    }

    pub(super) async fn create_once(
        &self,
        record: &Record,
        writer: &str,
        now: OffsetDateTime,
    ) -> StoreResult<CreateOutcome> {
        const OP: Op = "create";

        if self.is_cluster() {
            self.index(OP, record, now).await?;
        }

        let mut connection = self.connection.clone();
        let (code, replaced): Reply = self
            .write_invocation(&SCRIPTS.create, record, writer, now)
            .invoke_async(&mut connection)
            .await
            .map_err(self.failed(OP))?;

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
        let mut connection = self.connection.clone();
        let fields: Fields = redis::cmd("HGETALL")
            .arg(self.record_key(key))
            .query_async(&mut connection)
            .await
            .map_err(self.failed("load"))?;

        if fields.is_empty() {
            return Ok(None);
        }
        let record = decode(*key, &fields).map_err(StoreError::decode)?;
        Ok(Some(record).filter(|record| !record.is_expired(now)))
    }

    pub(super) async fn save_once(
        &self,
        record: &Record,
        expected_version: u64,
        writer: &str,
        now: OffsetDateTime,
    ) -> StoreResult<SaveOutcome> {
        const OP: Op = "save";
        let mut connection = self.connection.clone();
        let mut indexed = false;

        loop {
            let mut invocation = self.write_invocation(&SCRIPTS.save, record, writer, now);
            invocation
                .arg(expected_version)
                .arg(if indexed { "1" } else { "0" });
            let (code, principal): Reply = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(self.failed(OP))?;

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

        let mut connection = self.connection.clone();
        let mut invocation = self.invocation(&SCRIPTS.touch, &self.record_key(key), now);
        invocation.arg(millis_text(expires_at));
        let (code, removed): Reply = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(self.failed(OP))?;

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
        let mut connection = self.connection.clone();
        let removed: Option<String> = self
            .invocation(&SCRIPTS.delete, &self.record_key(key), now)
            .invoke_async(&mut connection)
            .await
            .map_err(self.failed(OP))?;

        self.unindex(OP, key, removed.as_deref()).await;
        Ok(())
    }
}

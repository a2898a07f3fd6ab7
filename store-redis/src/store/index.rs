//! The principal index: a set per principal naming its sessions, kept
//! by the record scripts on one node and by the calls here on a cluster,
//! and the operations that list or revoke through it.

use redis::{RedisResult, Value};
use session_core::time::OffsetDateTime;
use session_core::{to_unix_millis, Record, StorageKey, StoreError};
use tracing::warn;

use super::records::{decode_reply, wrong_type, Fetched, Layout};
use super::{unexpected, Op, RedisStore, StoreResult};
use crate::codec::hex;
use crate::scripts::SCRIPTS;

impl RedisStore {
    /// Adds `record` to its principal's set ahead of a write (cluster
    /// only), keeping the set at least as long as the record can live.
    pub(super) async fn index(
        &self,
        op: Op,
        record: &Record,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let Some(principal) = record.principal.as_deref() else {
            return Ok(());
        };
        let last = record.deadline.max(record.expires_at);
        let reach = to_unix_millis(last) - to_unix_millis(now);
        if reach <= 0 {
            // The write will not store this record; nothing to index.
            return Ok(());
        }

        let script = &SCRIPTS.index_add;
        let mut call = self.script_call(script, self.principal_key(principal), now);
        call.arg(&hex(&record.key)[..]).arg(reach);
        self.eval::<i64>(op, script, &call).await?;
        Ok(())
    }

    /// Drops `key` from the set of `principal` after a write removed the
    /// record or gave it another principal (cluster only). A failure
    /// leaves a stale member, which listing skips, so it is logged and
    /// not reported.
    pub(super) async fn unindex(&self, op: Op, key: &StorageKey, principal: Option<&str>) {
        let Some(principal) = principal.filter(|_| self.is_cluster()) else {
            return;
        };

        let mut connection = self.connection.clone();
        let removed = redis::cmd("SREM")
            .arg(self.principal_key(principal))
            .arg(&hex(key)[..])
            .query_async::<i64>(&mut connection)
            .await;
        if let Err(error) = removed {
            warn!(op, %error, "redis session store left a stale principal index entry");
        }
    }

    /// The records of `keys`, in order: one pipeline of `GET`s on one
    /// node, one request per record on a cluster (a pipeline must stay
    /// in one slot there).
    async fn fetch_all(&self, op: Op, keys: &[StorageKey]) -> StoreResult<Vec<Fetched>> {
        // The client refuses an empty pipeline.
        if self.is_cluster() || keys.is_empty() {
            let mut all = Vec::with_capacity(keys.len());
            for key in keys {
                all.push(self.fetch(op, key).await?);
            }
            return Ok(all);
        }

        let mut pipeline = redis::pipe();
        for key in keys {
            pipeline.cmd("GET").arg(self.key_of(key));
        }
        let mut connection = self.connection.clone();
        let replies: Vec<RedisResult<Value>> = pipeline
            .ignore_errors()
            .query_async(&mut connection)
            .await
            .map_err(self.failed(op))?;
        if replies.len() != keys.len() {
            return Err(StoreError::backend(
                op,
                crate::Error::UnexpectedRead { command: "GET" },
            ));
        }

        let mut all = Vec::with_capacity(keys.len());
        for (key, reply) in keys.iter().zip(replies) {
            all.push(match reply {
                Ok(reply) => decode_reply(op, *key, &reply)?,
                Err(error) if wrong_type(&error) => self.fetch_from(op, key, Layout::Hash).await?,
                Err(error) => return Err(self.failed(op)(error)),
            });
        }
        Ok(all)
    }

    async fn members(&self, op: Op, set: &str) -> StoreResult<Vec<String>> {
        let mut connection = self.connection.clone();
        redis::cmd("SMEMBERS")
            .arg(set)
            .query_async(&mut connection)
            .await
            .map_err(self.failed(op))
    }

    async fn forget(&self, op: Op, set: &str, members: &[String]) -> StoreResult<()> {
        if members.is_empty() {
            return Ok(());
        }

        let mut connection = self.connection.clone();
        redis::cmd("SREM")
            .arg(set)
            .arg(members)
            .query_async::<i64>(&mut connection)
            .await
            .map_err(self.failed(op))?;
        Ok(())
    }

    /// Deletes a principal's records one by one (cluster).
    async fn revoke_each(&self, principal: &str, now: OffsetDateTime) -> StoreResult<u64> {
        const OP: Op = "delete_by_principal";
        let set = self.principal_key(principal);
        let members = self.members(OP, &set).await?;

        let mut live = 0;
        let mut settled = Vec::with_capacity(members.len());
        for member in members {
            let key = format!("{}{member}", self.prefix);
            let script = &SCRIPTS.revoke_one;
            let mut call = self.script_call(script, key, now);
            call.arg(principal);
            let revoked: i64 = self.eval(OP, script, &call).await?;

            // A member naming someone else's record stays: that record
            // may be on its way to this principal.
            match revoked {
                1 => live += 1,
                0 => {}
                -1 => continue,
                _ => return Err(unexpected(OP, "revoke_one")),
            }
            settled.push(member);
        }

        self.forget(OP, &set, &settled).await?;
        Ok(live)
    }

    pub(super) async fn list(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Record>> {
        const OP: Op = "list_by_principal";

        let set = self.principal_key(principal);
        let members = self.members(OP, &set).await?;

        // A member that names no storage key names no record.
        let mut named = Vec::with_capacity(members.len());
        let mut keys = Vec::with_capacity(members.len());
        let mut gone = Vec::new();
        for member in members {
            match StorageKey::from_hex(&member) {
                Some(key) => {
                    keys.push(key);
                    named.push(member);
                }
                None => gone.push(member),
            }
        }
        let fetched = self.fetch_all(OP, &keys).await?;

        let mut live = Vec::new();
        for (member, fetched) in named.into_iter().zip(fetched) {
            // Only a member whose record is gone is dropped: one that is
            // expired or someone else's is dropped once Redis evicts it.
            match fetched {
                Ok(None) => gone.push(member),
                Ok(Some(record)) => {
                    if record.principal.as_deref() == Some(principal) && !record.is_expired(now) {
                        live.push(record);
                    }
                }
                Err(error) => warn!(op = OP, %error, "skipped an undecodable session"),
            }
        }

        self.forget(OP, &set, &gone).await?;
        live.sort_by_key(|record| record.created_at);
        Ok(live)
    }

    pub(super) async fn revoke_all(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        const OP: Op = "delete_by_principal";

        if self.is_cluster() {
            return self.revoke_each(principal, now).await;
        }

        let script = &SCRIPTS.revoke_all;
        let mut call = self.script_call(script, self.principal_key(principal), now);
        call.arg(principal);
        let live: i64 = self.eval(OP, script, &call).await?;

        u64::try_from(live).map_err(|_| unexpected(OP, "revoke_all"))
    }
}

//! The principal index: a set per principal naming its sessions, kept
//! by the record scripts on one node and by the calls here on a cluster,
//! and the operations that list or revoke through it.

use redis::Value;
use session_core::time::OffsetDateTime;
use session_core::{to_unix_millis, Record, StorageKey, StoreError};
use tracing::warn;

use super::{unexpected, Op, RedisStore, StoreResult};
use crate::codec::{decode, field_values, hex, FIELDS};
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

    /// The [`FIELDS`] of every record named by `members` of a principal
    /// set, in order.
    async fn fetch_all(&self, op: Op, members: &[String]) -> StoreResult<Vec<Value>> {
        // The client refuses an empty pipeline.
        if members.is_empty() {
            return Ok(Vec::new());
        }

        let mut connection = self.connection.clone();
        let reads = members.iter().map(|member| {
            let mut read = redis::cmd("HMGET");
            read.arg(format!("{}{member}", self.prefix)).arg(&FIELDS);
            read
        });

        // A pipeline must stay in one slot on a cluster, so there each
        // record is its own request.
        if self.is_cluster() {
            let mut all = Vec::with_capacity(members.len());
            for read in reads {
                let values = read
                    .query_async(&mut connection)
                    .await
                    .map_err(self.failed(op))?;
                all.push(values);
            }
            return Ok(all);
        }

        let mut pipeline = redis::pipe();
        for read in reads {
            pipeline.add_command(read);
        }
        pipeline
            .query_async(&mut connection)
            .await
            .map_err(self.failed(op))
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
        let fetched = self.fetch_all(OP, &members).await?;

        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (member, reply) in members.into_iter().zip(fetched) {
            let values = field_values(&reply).map_err(|error| StoreError::backend(OP, error))?;
            // Only a member whose record is gone is dropped: one that is
            // expired or someone else's is dropped once Redis evicts it.
            match StorageKey::from_hex(&member).map(|key| decode(key, values)) {
                None | Some(Ok(None)) => gone.push(member),
                Some(Ok(Some(record))) => {
                    if record.principal.as_deref() == Some(principal) && !record.is_expired(now) {
                        live.push(record);
                    }
                }
                Some(Err(error)) => warn!(op = OP, %error, "skipped an undecodable session"),
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

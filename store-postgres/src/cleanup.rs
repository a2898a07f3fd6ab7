//! Removing expired rows in the background, one instance at a time.

use std::sync::Arc;
use std::time::Duration;

use session_core::time::OffsetDateTime;
use session_core::Clock;
use sqlx::pool::PoolConnection;
use sqlx::Postgres;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::migrate::lock_key;
use crate::store::{micros, PostgresStore};

/// A running background cleanup, made by [`PostgresStore::spawn_cleanup`].
///
/// Stop it with [`shutdown`](Self::shutdown), which waits for the batch in
/// progress. Dropping the handle also stops the task, at its next batch or
/// tick, without waiting for it.
#[derive(Debug)]
pub struct Cleanup {
    stop: watch::Sender<bool>,
    task: JoinHandle<u64>,
}

impl Cleanup {
    /// Stops the task and waits for it; returns how many rows it removed
    /// over its life.
    ///
    /// # Errors
    ///
    /// [`Error::CleanupTask`] if the task panicked or was aborted.
    pub async fn shutdown(self) -> Result<u64, Error> {
        // The task may have stopped already; then there is nobody to tell.
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|source| Error::CleanupTask { source })
    }
}

/// A session-level advisory lock held on one pooled connection.
///
/// If the holder is dropped before [`unlock`](Self::unlock) (the future
/// was cancelled), the connection is closed instead of going back to the
/// pool, which releases the lock on the server.
struct LockedConnection {
    conn: Option<PoolConnection<Postgres>>,
    key: i64,
}

impl LockedConnection {
    async fn unlock(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };

        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // Closing the connection releases the lock all the same.
            drop(conn.detach());
        }
    }
}

impl Drop for LockedConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl PostgresStore {
    /// The advisory lock key that makes one instance at a time sweep this
    /// table, as it appears in `pg_locks` (`classid << 32 | objid`).
    #[must_use]
    pub fn cleanup_lock_key(&self) -> i64 {
        lock_key(
            "store-postgres cleanup",
            self.ident_schema().as_str(),
            self.ident_table().as_str(),
        )
    }

    /// Removes the rows expired at `now` in bounded batches, unless another
    /// instance is doing it right now.
    ///
    /// Returns `Some(count)` when this instance swept, `None` when another
    /// one holds the cleanup lock. The store's
    /// [`delete_expired`](session_core::Store::delete_expired) sweeps
    /// without the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the database fails.
    pub async fn sweep_expired(&self, now: OffsetDateTime) -> Result<Option<u64>, Error> {
        self.sweep(now, None).await
    }

    /// Starts a task that calls [`sweep_expired`](Self::sweep_expired)
    /// every `every`, with the time from `clock`.
    ///
    /// Start it on every instance if you like: the advisory lock lets one
    /// work at a time and the others skip their turn. A failed sweep is
    /// logged at `warn` and retried at the next tick.
    ///
    /// An `every` under one millisecond is taken as one millisecond.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, as [`tokio::spawn`] does.
    pub fn spawn_cleanup(&self, every: Duration, clock: impl Clock) -> Cleanup {
        let every = every.max(Duration::from_millis(1));
        let (stop, stopped) = watch::channel(false);
        let store = self.clone();
        let clock: Arc<dyn Clock> = Arc::new(clock);

        let task = tokio::spawn(async move { store.cleanup_loop(every, clock, stopped).await });
        Cleanup { stop, task }
    }

    async fn cleanup_loop(
        self,
        every: Duration,
        clock: Arc<dyn Clock>,
        mut stopped: watch::Receiver<bool>,
    ) -> u64 {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut total = 0;

        loop {
            tokio::select! {
                // A dropped handle counts as a stop request too.
                changed = stopped.changed() => if changed.is_err() || *stopped.borrow() {
                    return total;
                },
                _ = ticks.tick() => {}
            }

            match self.sweep(clock.now(), Some(&stopped)).await {
                Ok(Some(removed)) => total += removed,
                Ok(None) => tracing::debug!("another instance holds the session cleanup lock"),
                Err(error) => tracing::warn!(%error, "session cleanup sweep failed"),
            }
        }
    }

    /// One sweep under the cleanup lock, stopping between batches when
    /// `stopped` says so.
    async fn sweep(
        &self,
        now: OffsetDateTime,
        stopped: Option<&watch::Receiver<bool>>,
    ) -> Result<Option<u64>, Error> {
        let query = |source| Error::Query {
            op: "sweep_expired",
            source,
        };
        let key = self.cleanup_lock_key();

        let mut conn = self.pool().acquire().await.map_err(query)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(query)?;
        if !locked {
            return Ok(None);
        }

        let mut held = LockedConnection {
            conn: Some(conn),
            key,
        };
        let swept = self.batches(&mut held, now, stopped).await;
        held.unlock().await;

        swept.map(Some).map_err(query)
    }

    async fn batches(
        &self,
        held: &mut LockedConnection,
        now: OffsetDateTime,
        stopped: Option<&watch::Receiver<bool>>,
    ) -> Result<u64, sqlx::Error> {
        let Some(conn) = held.conn.as_mut() else {
            return Ok(0);
        };
        let mut total = 0;

        loop {
            let started = std::time::Instant::now();
            let removed = self.delete_expired_batch(conn, now).await?;
            total += removed;
            tracing::debug!(
                op = "sweep_expired",
                removed,
                elapsed_us = micros(started),
                "session store call"
            );

            let stop = stopped.is_some_and(|rx| *rx.borrow());
            if stop || self.was_last_batch(removed) {
                return Ok(total);
            }
        }
    }
}

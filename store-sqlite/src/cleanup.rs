//! The optional background task that removes expired rows.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::store::SqliteStore;

/// The running cleanup task of [`SqliteStore::spawn_cleanup`].
///
/// [`shutdown`](Self::shutdown) stops it and waits for it. Dropping the
/// handle stops it too, without waiting: the batch in progress finishes
/// and no other starts.
#[derive(Debug)]
pub struct CleanupHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl CleanupHandle {
    pub(crate) fn spawn(store: SqliteStore, interval: Duration) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, interval, stopped));
        Self { stop, task }
    }

    /// Stops the task and waits until it has ended. A pass in progress
    /// ends after its current batch.
    pub async fn shutdown(self) {
        // An error means the task has ended already.
        let _ = self.stop.send(true);

        if let Err(error) = self.task.await {
            tracing::error!(%error, "session cleanup task ended abnormally");
        }
    }

    /// Whether the task has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

async fn run(store: SqliteStore, interval: Duration, mut stopped: watch::Receiver<bool>) {
    // tokio refuses a zero period.
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    // After a slow pass, wait a full interval rather than catching up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            // A stop, or the handle dropped: either way, end.
            _ = stopped.changed() => break,
        }

        let now = store.now();
        let should_stop = || *stopped.borrow() || stopped.has_changed().is_err();
        match store.purge(now, should_stop).await {
            Ok(removed) => tracing::debug!(removed, "expired sessions removed"),
            Err(error) => tracing::warn!(%error, "expired session cleanup failed"),
        }
    }
}

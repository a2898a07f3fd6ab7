//! A cache in front of a durable store.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use session_core::time::{Duration, OffsetDateTime, PrimitiveDateTime};
use session_core::{
    async_trait, Clock, CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError,
    SystemClock, TouchOutcome,
};
use tokio::sync::RwLock;

/// How long a cached record is served without asking the durable store,
/// unless [`CachingStore::with_ttl`] sets another time: 5 seconds.
///
/// Long enough to cover the burst of requests one page view makes (the
/// page, its API calls, its assets behind the session layer), short
/// enough that a logout through another instance takes hold here within
/// seconds.
pub const DEFAULT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// How many locks the keys are spread over. Operations on keys of
/// different stripes never wait for each other.
const STRIPES: usize = 64;

/// A stripe drops lapsed freshness marks once it holds this many, and
/// then whenever it has doubled since the last sweep.
const FIRST_SWEEP: usize = 256;

/// A session store that answers loads from a cache and keeps the truth in
/// a durable store.
///
/// `Cache` is usually a [`MemoryStore`](crate::MemoryStore) and `Durable`
/// a store shared by every instance of the application (SQLite, Postgres,
/// Redis). The cache must belong to this `CachingStore` (and its clones)
/// alone: anything else writing to it could put records there that this
/// store never checked.
///
/// - A load is answered from the cache while the cached record is fresh
///   (fetched from, or written to, the durable store less than the TTL
///   ago) and live at `now`; otherwise from the durable store, whose
///   answer is then cached.
/// - Every write (`create`, `save`, `touch`, `delete`) goes to the durable
///   store first, whose outcome is returned; the cache then takes the
///   written record, or drops its copy. A load through this store that
///   starts after a write through it returned never sees older data.
/// - A conflict or a missing record reported by the durable store drops
///   the cached copy, so the reload that follows a conflict reads the
///   durable store, not the copy that caused the conflict.
/// - The principal index and `delete_expired` are the durable store's;
///   the cache forgets what they removed.
///
/// See the [crate documentation](crate#caching-in-front-of-a-shared-store)
/// for how stale another instance's view can be.
///
/// # Example
///
/// ```
/// use std::time::Duration;
///
/// use session_core::time::OffsetDateTime;
/// use session_core::Store;
/// use store_memory::{CachingStore, MemoryStore};
/// use store_sqlite::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let durable = SqliteStore::connect("sqlite::memory:").await?;
/// durable.migrate().await?;
///
/// let store = CachingStore::new(MemoryStore::new(), durable)
///     .with_ttl(Duration::from_secs(2));
///
/// let removed = store.delete_expired(OffsetDateTime::now_utc()).await?;
/// assert_eq!(removed, 0);
/// # Ok(())
/// # }
/// ```
pub struct CachingStore<Cache, Durable> {
    cache: Cache,
    durable: Durable,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    stripes: Arc<[RwLock<Stripe>]>,
}

/// The bookkeeping of the keys that hash to one stripe.
///
/// Every change to the cache happens under the stripe's write lock, and
/// every answer from the cache under its read lock, so a reader sees a
/// cached record and its freshness mark as one.
#[derive(Debug, Default)]
struct Stripe {
    /// Bumped whenever a write begins or ends. A fill or a write that
    /// finds it moved since it started knows another write overlapped it
    /// and caches nothing, since its answer may be older than that write.
    generation: u64,
    /// Until when each cached record may be served. A record without a
    /// mark is never served: removing the mark is what evicts.
    fresh: HashMap<StorageKey, OffsetDateTime>,
    /// The size of `fresh` at which lapsed marks are swept out next.
    sweep_at: usize,
}

impl Stripe {
    fn is_fresh(&self, key: &StorageKey, at: OffsetDateTime) -> bool {
        self.fresh.get(key).is_some_and(|until| at < *until)
    }

    fn mark_fresh(&mut self, key: StorageKey, until: OffsetDateTime, at: OffsetDateTime) {
        self.fresh.insert(key, until);

        // Marks of keys that are never read again would pile up; a sweep
        // at each doubling keeps the cost per insert constant.
        if self.fresh.len() >= self.sweep_at.max(FIRST_SWEEP) {
            self.sweep(at);
            self.sweep_at = self.fresh.len() * 2;
        }
    }

    fn sweep(&mut self, at: OffsetDateTime) {
        self.fresh.retain(|_, until| at < *until);
    }
}

/// What the cache must do once the durable store has answered a write.
enum After<'a> {
    /// The durable store now holds `record`: cache it. `expected` is the
    /// version the cache probably holds, for a one-step update.
    Put {
        record: &'a Record,
        expected: Option<u64>,
        now: OffsetDateTime,
    },
    /// The durable store moved the expiry: move the cached one alike.
    Touch {
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    },
    /// Anything else: drop the cached copy.
    Evict,
}

impl<Cache: Clone, Durable: Clone> Clone for CachingStore<Cache, Durable> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            durable: self.durable.clone(),
            ttl: self.ttl,
            clock: Arc::clone(&self.clock),
            stripes: Arc::clone(&self.stripes),
        }
    }
}

impl<Cache: fmt::Debug, Durable: fmt::Debug> fmt::Debug for CachingStore<Cache, Durable> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingStore")
            .field("cache", &self.cache)
            .field("durable", &self.durable)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<Cache: Store, Durable: Store> CachingStore<Cache, Durable> {
    /// `cache` in front of `durable`, with the default TTL
    /// ([`DEFAULT_CACHE_TTL`]) and the system clock.
    #[must_use]
    pub fn new(cache: Cache, durable: Durable) -> Self {
        let stripes = (0..STRIPES).map(|_| RwLock::default()).collect();
        Self {
            cache,
            durable,
            ttl: to_time(DEFAULT_CACHE_TTL),
            clock: Arc::new(SystemClock),
            stripes,
        }
    }

    /// How long a record fetched from (or written to) the durable store may
    /// be served from the cache (default [`DEFAULT_CACHE_TTL`], 5 s),
    /// counted on the store's clock from the start of the durable call.
    ///
    /// This bounds how long a load through this instance can miss a change
    /// made through another instance; it does not make any write less safe.
    /// Zero turns the cache off: every load asks the durable store.
    ///
    /// # Warning
    ///
    /// A longer TTL saves more round trips and lets a session that was
    /// logged out through another instance still be read here for that
    /// long.
    #[must_use]
    pub fn with_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.ttl = to_time(ttl);
        self
    }

    /// The clock that measures the TTL (default: the system clock). Tests
    /// share a [`ManualClock`](session_core::ManualClock) with the session
    /// layer to step past the TTL without sleeping.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The configured TTL.
    #[must_use]
    pub fn ttl(&self) -> std::time::Duration {
        std::time::Duration::try_from(self.ttl).unwrap_or_default()
    }

    /// The cache.
    #[must_use]
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The durable store.
    #[must_use]
    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    fn stripe(&self, key: &StorageKey) -> &RwLock<Stripe> {
        // Keys are SHA-256 digests, so any eight of their bytes spread
        // evenly.
        let mut head = [0; 8];
        head.copy_from_slice(&key.as_bytes()[..8]);
        let index = u64::from_le_bytes(head) % STRIPES as u64;
        let index = usize::try_from(index).unwrap_or(0);
        &self.stripes[index]
    }

    /// Until when a record fetched at `fetched_at` may be served.
    fn fresh_until(&self, fetched_at: OffsetDateTime) -> OffsetDateTime {
        fetched_at
            .checked_add(self.ttl)
            .unwrap_or_else(|| PrimitiveDateTime::MAX.assume_utc())
    }

    /// The cached record, if it is fresh and live; otherwise the stripe's
    /// generation, for the fill that follows.
    async fn cached(&self, key: &StorageKey, now: OffsetDateTime) -> Result<Record, u64> {
        let stripe = self.stripe(key).read().await;
        if !stripe.is_fresh(key, self.clock.now()) {
            return Err(stripe.generation);
        }

        match self.cache.load(key, now).await {
            Ok(Some(record)) => Ok(record),
            Ok(None) => Err(stripe.generation),
            Err(error) => {
                cache_failed("load", &error);
                Err(stripe.generation)
            }
        }
    }

    /// Caches what a load got from the durable store, unless a write began
    /// since `ticket` was taken. Returns whether it cached a record.
    async fn fill(
        &self,
        key: &StorageKey,
        ticket: u64,
        found: Option<&Record>,
        fetched_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> bool {
        let mut stripe = self.stripe(key).write().await;
        if stripe.generation != ticket {
            return false;
        }

        stripe.fresh.remove(key);
        let until = self.fresh_until(fetched_at);
        let at = self.clock.now();
        if let Some(record) = found.filter(|r| !r.is_expired(now) && at < until) {
            if self.put(record, None, now).await {
                stripe.mark_fresh(*key, until, at);
                return true;
            }
        }
        self.drop_copy(key).await;
        false
    }

    /// Runs a durable write between the two halves of the cache's
    /// bookkeeping, and returns the durable store's answer.
    async fn write<'a, T, F>(
        &self,
        op: &'static str,
        key: &StorageKey,
        call: F,
        after: impl FnOnce(&T) -> After<'a> + Send,
    ) -> Result<T, StoreError>
    where
        T: Send,
        F: Future<Output = Result<T, StoreError>> + Send,
    {
        let timer = Timer::start(op);
        let fetched_at = self.clock.now();

        // Unmarked before the durable call: if this call is dropped half
        // way (a timeout), the cache must not go on serving the old copy.
        let (ticket, kept) = {
            let mut stripe = self.stripe(key).write().await;
            stripe.generation += 1;
            (stripe.generation, stripe.fresh.remove(key))
        };

        let result = call.await;

        let after = match &result {
            Ok(outcome) => after(outcome),
            Err(_) => After::Evict,
        };
        let cached = self.settle(key, ticket, kept, after, fetched_at).await;
        timer.done(&result, cached);
        result
    }

    /// The second half of [`write`](Self::write): caches the outcome if no
    /// other write overlapped this one, else drops the copy.
    async fn settle(
        &self,
        key: &StorageKey,
        ticket: u64,
        kept: Option<OffsetDateTime>,
        after: After<'_>,
        fetched_at: OffsetDateTime,
    ) -> bool {
        let mut stripe = self.stripe(key).write().await;
        let alone = stripe.generation == ticket;
        stripe.generation += 1;
        stripe.fresh.remove(key);

        let at = self.clock.now();
        let until = match (alone, &after) {
            (false, _) | (true, After::Evict) => None,
            (true, After::Put { record, now, .. }) => {
                let until = self.fresh_until(fetched_at);
                (!record.is_expired(*now) && at < until).then_some(until)
            }
            // A touch says nothing new about the data: the copy stays
            // exactly as fresh as it was.
            (true, After::Touch { .. }) => kept.filter(|until| at < *until),
        };

        if let Some(until) = until {
            if self.apply(key, after).await {
                stripe.mark_fresh(*key, until, at);
                return true;
            }
        }
        self.drop_copy(key).await;
        false
    }

    /// Carries a durable write over to the cache; false if it did not
    /// take.
    async fn apply(&self, key: &StorageKey, after: After<'_>) -> bool {
        match after {
            After::Put {
                record,
                expected,
                now,
            } => self.put(record, expected, now).await,
            After::Touch { expires_at, now } => {
                let touched = self.cache.touch(key, expires_at, now).await;
                match touched {
                    Ok(outcome) => outcome == TouchOutcome::Touched,
                    Err(error) => {
                        cache_failed("touch", &error);
                        false
                    }
                }
            }
            After::Evict => false,
        }
    }

    /// Makes the cache hold exactly `record`; `was` is the version it
    /// probably holds now. Called under the stripe's write lock, so
    /// nothing else changes the key meanwhile.
    async fn put(&self, record: &Record, was: Option<u64>, now: OffsetDateTime) -> bool {
        // After a save the cache usually holds the version it replaced.
        if let Some(was) = was {
            match self.cache.save(record, was, now).await {
                Ok(SaveOutcome::Saved) => return true,
                Ok(SaveOutcome::Conflict | SaveOutcome::Missing) => {}
                Err(error) => {
                    cache_failed("save", &error);
                    return false;
                }
            }
        }

        if let Err(error) = self.cache.delete(&record.key).await {
            cache_failed("delete", &error);
            return false;
        }
        match self.cache.create(record, now).await {
            Ok(CreateOutcome::Created) => true,
            Ok(CreateOutcome::Collision) => {
                tracing::warn!(
                    "session cache holds a record this caching store did not put there; \
                     is the cache shared?"
                );
                false
            }
            Err(error) => {
                cache_failed("create", &error);
                false
            }
        }
    }

    /// Removes the cached copy. Its freshness mark is already gone, so a
    /// failure here costs memory, never a stale answer.
    async fn drop_copy(&self, key: &StorageKey) {
        if let Err(error) = self.cache.delete(key).await {
            cache_failed("delete", &error);
        }
    }

    /// Drops `key` from the cache and stops any fill or write in flight
    /// from caching it.
    async fn evict(&self, key: &StorageKey) {
        let mut stripe = self.stripe(key).write().await;
        stripe.generation += 1;
        stripe.fresh.remove(key);
        self.drop_copy(key).await;
    }

    /// Drops every cached record of `principal`.
    async fn forget_principal(&self, principal: &str, now: OffsetDateTime) {
        // A fill or write in flight may be carrying one of the principal's
        // records; moving every generation keeps it out of the cache.
        for stripe in self.stripes.iter() {
            stripe.write().await.generation += 1;
        }

        let listed = if self.cache.supports_principal_index() {
            let listed = self.cache.list_by_principal(principal, now).await;
            listed.map_err(|error| cache_failed("list_by_principal", &error))
        } else {
            Err(())
        };

        match listed {
            Ok(records) => {
                for record in records {
                    self.evict(&record.key).await;
                }
            }
            // Without the cache's own index there is no telling which
            // copies were the principal's: none is trusted any more.
            Err(()) => {
                for stripe in self.stripes.iter() {
                    let mut stripe = stripe.write().await;
                    stripe.generation += 1;
                    stripe.fresh.clear();
                }
            }
        }
    }
}

#[async_trait]
impl<Cache: Store, Durable: Store> Store for CachingStore<Cache, Durable> {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        let call = self.durable.create(record, now);
        self.write("create", &record.key, call, |outcome| match outcome {
            CreateOutcome::Created => After::Put {
                record,
                expected: None,
                now,
            },
            CreateOutcome::Collision => After::Evict,
        })
        .await
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let timer = Timer::start("load");
        let ticket = match self.cached(key, now).await {
            Ok(record) => {
                timer.hit();
                return Ok(Some(record));
            }
            Err(ticket) => ticket,
        };

        let fetched_at = self.clock.now();
        let result = self.durable.load(key, now).await;

        let cached = match &result {
            Ok(found) => {
                self.fill(key, ticket, found.as_ref(), fetched_at, now)
                    .await
            }
            Err(_) => false,
        };
        timer.done(&result, cached);
        result
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        let call = self.durable.save(record, expected_version, now);
        self.write("save", &record.key, call, |outcome| match outcome {
            SaveOutcome::Saved => After::Put {
                record,
                expected: Some(expected_version),
                now,
            },
            // The copy is what the caller based its save on; keeping it
            // would send the session layer's reload back to it.
            SaveOutcome::Conflict | SaveOutcome::Missing => After::Evict,
        })
        .await
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        let call = self.durable.touch(key, expires_at, now);
        self.write("touch", key, call, |outcome| match outcome {
            TouchOutcome::Touched => After::Touch { expires_at, now },
            TouchOutcome::Missing => After::Evict,
        })
        .await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        let call = self.durable.delete(key);
        self.write("delete", key, call, |()| After::Evict).await
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let timer = Timer::start("delete_expired");
        let result = self.durable.delete_expired(now).await;

        // Dropping copies is always safe, so the cache is purged even when
        // the durable store failed.
        if let Err(error) = self.cache.delete_expired(now).await {
            cache_failed("delete_expired", &error);
        }
        let at = self.clock.now();
        for stripe in self.stripes.iter() {
            stripe.write().await.sweep(at);
        }

        timer.done(&result, false);
        result
    }

    fn supports_principal_index(&self) -> bool {
        self.durable.supports_principal_index()
    }

    async fn list_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        let timer = Timer::start("list_by_principal");
        let result = self.durable.list_by_principal(principal, now).await;

        timer.done(&result, false);
        result
    }

    async fn delete_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        if !self.durable.supports_principal_index() {
            return self.durable.delete_by_principal(principal, now).await;
        }
        let timer = Timer::start("delete_by_principal");

        // Before as well as after: a call cut short once the durable store
        // has deleted must not leave those sessions readable here.
        self.forget_principal(principal, now).await;
        let result = self.durable.delete_by_principal(principal, now).await;
        self.forget_principal(principal, now).await;

        timer.done(&result, false);
        result
    }
}

/// A std duration as a `time` one, saturating.
fn to_time(duration: std::time::Duration) -> Duration {
    Duration::try_from(duration).unwrap_or(Duration::MAX)
}

/// One call being timed for its debug line, which never holds a key.
struct Timer {
    op: &'static str,
    started: Instant,
}

impl Timer {
    fn start(op: &'static str) -> Self {
        let started = Instant::now();
        Self { op, started }
    }

    fn elapsed_us(&self) -> u64 {
        let elapsed = self.started.elapsed().as_micros();
        u64::try_from(elapsed).unwrap_or(u64::MAX)
    }

    /// The cache answered.
    fn hit(self) {
        let (op, elapsed_us) = (self.op, self.elapsed_us());
        tracing::debug!(op, hit = true, elapsed_us, "caching store call");
    }

    /// The durable store answered; `cached` says if the cache took it.
    fn done<T>(self, result: &Result<T, StoreError>, cached: bool) {
        let (op, elapsed_us) = (self.op, self.elapsed_us());
        let Err(error) = result else {
            tracing::debug!(op, hit = false, cached, elapsed_us, "caching store call");
            return;
        };
        tracing::debug!(op, elapsed_us, %error, "caching store call failed");
    }
}

/// A failing cache only costs round trips: it is logged and bypassed.
fn cache_failed(op: &'static str, error: &StoreError) {
    if error.is_too_large() {
        tracing::debug!(op, %error, "session record not cached");
    } else {
        tracing::warn!(op, %error, "session cache failed; asking the durable store");
    }
}

//! The per-request session handle.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use time::{Duration, OffsetDateTime};
// futures' lock: its uncontended unlock is one atomic operation, where
// tokio's takes an inner mutex; three lock cycles a request showed.
use futures::lock::{MappedMutexGuard, Mutex, MutexGuard};

use crate::changes::{Change, Contents, UpdateFn};
use crate::config::SessionConfig;
use crate::data::Slot;
use crate::error::{Error, StoreError};
use crate::expiry::{CookieLifetime, Expiry};
use crate::id::{Id, StorageKey};
use crate::record::Record;
use crate::store::{CreateOutcome, SaveOutcome, Store, TouchOutcome};

/// How many fresh ids `commit` tries before giving up on collisions.
const ID_ATTEMPTS: u32 = 8;

/// What the response must do with the session cookie after a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// Leave the cookie as it is (or send none).
    Unchanged,
    /// Send the cookie for `id`.
    Set {
        /// The session id the cookie must carry.
        id: Id,
        /// `Some` for a persistent cookie: what is left of the session.
        max_age: Option<Duration>,
    },
    /// Send a removal cookie: the session is gone.
    Removed,
}

/// One request's view of a session.
///
/// Cheap to clone; clones share state. Nothing is read from the store until
/// the first call that needs the session, so a handler that never uses it
/// costs no store traffic. Values are copies: changing a value you read
/// changes nothing until you `insert` it (or use [`Session::update`]).
///
/// # Concurrent requests
///
/// The handle records what the handler changed. If another request saved
/// the session in between, [`Session::commit`] reloads it, replays those
/// changes onto the fresh data (re-running each `update` function on the
/// fresh value) and saves again. Writes to different keys and `update`s of
/// one key are never lost; a `delete` (logout) wins over a concurrent save.
/// An `insert` of a value computed from an earlier read is last writer
/// wins for that key: use [`Session::update`] for read-modify-write.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
    candidates: Vec<Id>,
    /// `None` until the first call that needs the session.
    state: Mutex<Option<Loaded>>,
}

struct Loaded {
    /// The id of the live session, if there is one.
    id: Option<Id>,
    /// The record as loaded or as last written.
    base: Option<Record>,
    /// The contents as the handler sees them: the base's data, shared,
    /// with the handler's changes on top.
    work: Contents,
    /// What the handler changed, in order; empty means unchanged.
    log: Vec<Change>,
    /// A new id was asked for.
    cycle: bool,
    /// Records to delete when committing.
    doomed: Vec<StorageKey>,
    /// What loading found of the request's cookies, for a logout to
    /// clean up after the others; taken when it does.
    others: Option<Others>,
    /// `delete` was called on a live session.
    destroyed: bool,
    /// `commit` ran: later changes would be lost.
    finished: bool,
}

/// What loading the candidates found: the live record, if any, and
/// what a logout needs of the rest.
struct Found {
    live: Option<Record>,
    others: Others,
}

/// Which candidate loading found live, and a bit for each of the first
/// [`TRACKED`] that did not decode: all a logout needs to work out what
/// the request's other cookies left behind.
#[derive(Clone, Copy)]
struct Others {
    live_at: Option<usize>,
    unreadable: u64,
}

/// How many candidates [`Others::unreadable`] has a bit for. Four is the
/// default limit of candidates; a logout reads those past this number
/// again, as it reads the ones after the live candidate.
const TRACKED: usize = u64::BITS as usize;

/// The bit of the candidate at `at` in [`Others::unreadable`]; none from
/// [`TRACKED`] on.
fn bit(at: usize) -> u64 {
    u32::try_from(at)
        .ok()
        .and_then(|at| 1_u64.checked_shl(at))
        .unwrap_or(0)
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("store", &self.inner.store)
            .field("cookies", &self.inner.candidates.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A handle for one request.
    ///
    /// `candidates` are the ids the request's cookies carried, in order; the
    /// first that names a live session is used.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, config: Arc<SessionConfig>, candidates: Vec<Id>) -> Self {
        let inner = Inner {
            store,
            config,
            candidates,
            state: Mutex::new(None),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The value under `key`, if any.
    ///
    /// For untyped values prefer [`get_value`](Self::get_value): a `T`
    /// that is or holds a `serde_json::Value` is read by serde_json's own
    /// rules, which (with its `raw_value` feature, on in any build with
    /// axum) give one private object key a meaning. `get_value` reads
    /// any stored object exactly as it was written.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the session cannot be loaded;
    /// [`Error::Deserialize`] when the value has another shape than `T`
    /// (other keys stay readable).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut loaded = self.loaded().await?;

        loaded
            .work
            .data
            .get(key)
            .map(Slot::deserialize)
            .transpose()
            .map_err(|source| Error::Deserialize {
                key: key.to_owned(),
                source,
            })
    }

    /// The raw JSON value under `key`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the session cannot be loaded.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        let mut loaded = self.loaded().await?;
        Ok(loaded.work.data.get(key).and_then(Slot::to_value))
    }

    /// Stores `value` under `key`.
    ///
    /// Inserting a value equal to the current one changes nothing and
    /// causes no write.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] when `value` does not serialize;
    /// [`Error::Store`] when the session cannot be loaded;
    /// [`Error::Finished`] after the session was committed.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), Error> {
        let value = serde_json::to_value(value).map_err(|source| Error::Serialize {
            key: key.to_owned(),
            source,
        })?;

        let mut loaded = self.writable().await?;
        if loaded.work.data.get(key).is_some_and(|old| old.is(&value)) {
            return Ok(());
        }
        loaded.record(Change::Set(key.to_owned(), value))?;
        Ok(())
    }

    /// Removes `key` and returns the value it had.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the session cannot be loaded;
    /// [`Error::Finished`] after the session was committed.
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, Error> {
        let mut loaded = self.writable().await?;

        let Some(old) = loaded.work.data.get(key) else {
            return Ok(None);
        };
        let old = old.to_value();
        loaded.record(Change::Remove(key.to_owned()))?;
        Ok(old)
    }

    /// Replaces the value under `key` with `f(old value)` and returns it.
    ///
    /// If a concurrent request saved first, `f` runs again on the fresh
    /// value before this request saves, so counters and carts lose nothing.
    /// `f` may therefore run more than once and should have no side effects,
    /// and the value returned here is the one computed on this request's
    /// view: the stored value may end up higher when a replay happened.
    ///
    /// # Errors
    ///
    /// [`Error::Deserialize`] when the current value is not a `T`;
    /// [`Error::Serialize`] when the new one does not serialize;
    /// [`Error::Store`] and [`Error::Finished`] as for
    /// [`insert`](Self::insert).
    pub async fn update<T, F>(&self, key: &str, f: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + 'static,
        F: Fn(Option<T>) -> T + Send + Sync + 'static,
    {
        let owned = key.to_owned();
        let update: UpdateFn = Arc::new(move |old: Option<Slot<'_>>| {
            let old =
                old.map(Slot::deserialize)
                    .transpose()
                    .map_err(|source| Error::Deserialize {
                        key: owned.clone(),
                        source,
                    })?;
            serde_json::to_value(f(old)).map_err(|source| Error::Serialize {
                key: owned.clone(),
                source,
            })
        });

        let mut loaded = self.writable().await?;
        let new = loaded.record(Change::Update(key.to_owned(), update))?;

        let new = new.unwrap_or(Value::Null);
        T::deserialize(new).map_err(|source| Error::Deserialize {
            key: key.to_owned(),
            source,
        })
    }

    /// Removes every value; the session itself stays.
    ///
    /// # Errors
    ///
    /// As for [`remove`](Self::remove).
    pub async fn clear(&self) -> Result<(), Error> {
        let mut loaded = self.writable().await?;

        if !loaded.work.data.is_empty() {
            loaded.record(Change::Clear)?;
        }
        Ok(())
    }

    /// Replaces all of the session's data with `value`, which must
    /// serialize to a JSON object (the `session.set(object)` call).
    ///
    /// # Errors
    ///
    /// [`Error::NotAnObject`] when `value` is not an object;
    /// otherwise as for [`insert`](Self::insert).
    pub async fn set<T: Serialize>(&self, value: T) -> Result<(), Error> {
        let value = serde_json::to_value(value).map_err(|source| Error::Serialize {
            key: String::new(),
            source,
        })?;
        let Value::Object(data) = value else {
            return Err(Error::NotAnObject);
        };

        let mut loaded = self.writable().await?;
        let empty = loaded.base.is_none() && loaded.log.is_empty();
        if empty || loaded.work.data.render().to_map() != data {
            loaded.record(Change::Replace(data))?;
        }
        Ok(())
    }

    /// All of the session's data as one `T` (the `session.get()` call), or
    /// `None` when there is no session.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the session cannot be loaded;
    /// [`Error::Deserialize`] when the data is not a `T`.
    pub async fn get_all<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        let mut loaded = self.loaded().await?;

        if loaded.base.is_none() && loaded.log.is_empty() {
            return Ok(None);
        }
        // An unchanged view renders as its base, sharing the text.
        let data = loaded.work.data.render();
        serde_json::from_str::<T>(data.as_str())
            .map(Some)
            .map_err(|source| Error::Deserialize {
                key: String::new(),
                source,
            })
    }

    /// Ends the session (the `session.delete()` call): the record is
    /// deleted and the cookie removed when the response goes out.
    ///
    /// The records of the request's other session cookies that no
    /// session can use are deleted too: ones that do not decode, which
    /// reads and writes leave alone for another version of the app to
    /// read. A live session another cookie names (one of another cookie
    /// path, say) stays. A store failure during that cleanup is logged,
    /// ends the cleanup, and the logout still stands.
    ///
    /// Values inserted afterwards start a new session with a new id.
    ///
    /// # Errors
    ///
    /// As for [`remove`](Self::remove).
    pub async fn delete(&self) -> Result<(), Error> {
        let mut loaded = self.writable().await?;

        if let Some(base) = loaded.base.take() {
            loaded.doomed.push(base.key);
        }
        // Even a dead cookie is removed, so the browser stops sending it.
        loaded.destroyed = loaded.destroyed || !self.inner.candidates.is_empty();
        loaded.id = None;
        loaded.work = Contents::default();
        loaded.log.clear();
        loaded.cycle = false;
        Ok(())
    }

    /// Gives the session a new id, keeping its data; the old id stops
    /// working. Call it when privileges change, such as on login.
    ///
    /// The new record is stored before the old one is deleted. It starts a
    /// new absolute lifetime.
    ///
    /// # Errors
    ///
    /// As for [`remove`](Self::remove).
    pub async fn cycle_id(&self) -> Result<(), Error> {
        self.writable().await?.cycle = true;
        Ok(())
    }

    /// Records the logged-in user and cycles the id.
    ///
    /// # Errors
    ///
    /// As for [`remove`](Self::remove).
    pub async fn set_principal(&self, principal: &str) -> Result<(), Error> {
        let mut loaded = self.writable().await?;

        loaded.record(Change::Principal(Some(principal.to_owned())))?;
        loaded.cycle = true;
        Ok(())
    }

    /// Forgets the logged-in user and cycles the id.
    ///
    /// # Errors
    ///
    /// As for [`remove`](Self::remove).
    pub async fn clear_principal(&self) -> Result<(), Error> {
        let mut loaded = self.writable().await?;

        if loaded.work.principal.is_some() {
            loaded.record(Change::Principal(None))?;
            loaded.cycle = true;
        }
        Ok(())
    }

    /// The logged-in user, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the session cannot be loaded.
    pub async fn principal(&self) -> Result<Option<String>, Error> {
        let loaded = self.loaded().await?;
        Ok(loaded.work.principal.clone())
    }

    /// Gives this session its own expiry policy ("remember me"), or with
    /// `None` returns it to the layer's.
    ///
    /// # Errors
    ///
    /// As for [`remove`](Self::remove).
    pub async fn set_expiry(&self, expiry: Option<Expiry>) -> Result<(), Error> {
        let mut loaded = self.writable().await?;

        if loaded.work.expiry != expiry {
            loaded.record(Change::Expiry(expiry))?;
        }
        Ok(())
    }

    /// Whether the request carried a live session (or one was started).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the session cannot be loaded.
    pub async fn exists(&self) -> Result<bool, Error> {
        let loaded = self.loaded().await?;
        Ok(loaded.base.is_some() || !loaded.log.is_empty())
    }

    /// Writes the session back and says what the cookie must do.
    ///
    /// The middleware calls this once the handler is done. A session never
    /// used causes no store call; an unchanged one a throttled `touch` at
    /// most; a new one that holds nothing is never written.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails; [`Error::Contention`] when
    /// concurrent saves won every attempt; [`Error::IdCollision`] when no
    /// fresh id was free.
    pub async fn commit(&self) -> Result<Commit, Error> {
        let mut state = self.inner.state.lock().await;
        let Some(loaded) = state.as_mut() else {
            return Ok(Commit::Unchanged);
        };
        loaded.finished = true;
        let now = self.now();

        // A logout lands before anything else, so nothing can revive it.
        for key in std::mem::take(&mut loaded.doomed) {
            self.call("delete", self.store().delete(&key)).await?;
        }
        let others = loaded.others.take().filter(|_| loaded.destroyed);
        if let Some((strays, unread)) = others.and_then(|others| self.left_by(others)) {
            // Rare (a logout with more than one cookie, or an unreadable
            // one): boxed, as below.
            Box::pin(self.delete_strays(strays, unread, now)).await;
        }

        // A first visit's create is boxed: inline, its state would make
        // every request's commit future, which is moved around and
        // allocated per request, a third larger.
        match (loaded.base.is_some(), loaded.id) {
            (true, Some(id)) => self.commit_existing(loaded, id, now).await,
            _ => Box::pin(self.commit_new(loaded, now)).await,
        }
    }

    /// Deletes what a logout's other cookies named that no session can
    /// use: `strays`, and those of `unread` that do not decode. A live
    /// one stays: its cookie (another path's, say) is not the one the
    /// logout removes.
    ///
    /// The first store failure ends the cleanup: the rest is left to its
    /// TTL, and a store that went down costs the logout one more timeout,
    /// not one per cookie. The logout stands either way.
    async fn delete_strays(
        &self,
        mut strays: Vec<StorageKey>,
        unread: Vec<StorageKey>,
        now: OffsetDateTime,
    ) {
        let left = |error: StoreError| {
            tracing::warn!(%error, "a logout left records its other cookies named");
        };

        for key in unread {
            match self.call("load", self.store().load(&key, now)).await {
                Ok(Some(record)) if record.version < Record::LAST_VERSION => {}
                Ok(None) => {}
                Ok(Some(_)) => strays.push(key),
                Err(error) if error.is_decode() => strays.push(key),
                Err(error) => return left(error),
            }
        }

        for key in strays {
            if let Err(error) = self.call("delete", self.store().delete(&key)).await {
                return left(error);
            }
        }
    }

    async fn commit_new(&self, loaded: &mut Loaded, now: OffsetDateTime) -> Result<Commit, Error> {
        if loaded.log.is_empty() || loaded.work.is_empty() {
            let gone = if loaded.destroyed {
                Commit::Removed
            } else {
                Commit::Unchanged
            };
            return Ok(gone);
        }

        let contents = std::mem::take(&mut loaded.work);
        let policy = self.policy_of(contents.expiry);
        let (id, record) = self.create_record(contents, now).await?;
        Ok(loaded.settle(id, record, now, policy, true))
    }

    /// Commits a loaded session: `loaded.base` is `Some`.
    ///
    /// Any logged change counts as a change, so changes that undo each
    /// other still save.
    async fn commit_existing(
        &self,
        loaded: &mut Loaded,
        id: Id,
        now: OffsetDateTime,
    ) -> Result<Commit, Error> {
        let Some(base) = &loaded.base else {
            return Box::pin(self.commit_new(loaded, now)).await;
        };
        let (old_expires_at, old_expiry) = (base.expires_at, base.expiry);

        if loaded.log.is_empty() && !loaded.cycle {
            return self.maybe_touch(loaded, id, now).await;
        }

        // A rotation writes even without changes: the versioned write is
        // what tells it that a concurrent logout happened (missing) or that
        // others saved since the load (conflict: reload and replay), so
        // the new id never revives a session or drops an acknowledged write.
        let Some(saved) = self.save_changes(loaded, now, loaded.cycle).await? else {
            return Ok(loaded.vanish());
        };

        // A record at the last version is never read again (see
        // `load_candidates`): one that just got there moves to a new id,
        // at version 1, as a rotation does.
        if !loaded.cycle && saved.version < Record::LAST_VERSION {
            // The cookie carries the expiry, so it is sent again only
            // when the expiry moved or its policy changed.
            let moved = saved.expires_at != old_expires_at || saved.expiry != old_expiry;
            let policy = self.policy_of(saved.expiry);
            return Ok(loaded.settle(id, saved, now, policy, moved));
        }

        // Rare (a login) and large: boxed, as in `commit`.
        Box::pin(self.rotate(loaded, saved, now)).await
    }

    /// Moves a just-saved session to a fresh id and deletes the old one.
    async fn rotate(
        &self,
        loaded: &mut Loaded,
        saved: Record,
        now: OffsetDateTime,
    ) -> Result<Commit, Error> {
        // Known gap: a request that saves to the old id after this claim
        // and before the delete below gets a success that the delete then
        // discards. Closing it needs a version-checked delete in the Store
        // contract; the window is two round trips long, at login.
        let old_key = saved.key;
        let contents = Contents::of(&saved);
        let policy = self.policy_of(contents.expiry);
        let (new_id, record) = self.create_record(contents, now).await?;
        self.call("delete", self.store().delete(&old_key)).await?;
        Ok(loaded.settle(new_id, record, now, policy, true))
    }

    /// Refreshes the expiry of an unchanged session when enough of the
    /// idle window has passed; most read-only requests write nothing.
    async fn maybe_touch(
        &self,
        loaded: &mut Loaded,
        id: Id,
        now: OffsetDateTime,
    ) -> Result<Commit, Error> {
        let Some(base) = &loaded.base else {
            return Ok(Commit::Unchanged);
        };
        let key = base.key;
        let policy = self.policy_of(base.expiry);
        let target = self.next_expiry(base, policy, now);
        if target == base.expires_at {
            return Ok(Commit::Unchanged);
        }
        if target <= now {
            return Ok(loaded.vanish());
        }

        let touched = self
            .call("touch", self.store().touch(&key, target, now))
            .await?;
        match (touched, loaded.base.take()) {
            (TouchOutcome::Touched, Some(base)) => {
                let record = Record {
                    expires_at: target,
                    ..base
                };
                let persistent = policy.cookie() == CookieLifetime::Persistent;
                Ok(loaded.settle(id, record, now, policy, persistent))
            }
            _ => Ok(loaded.vanish()),
        }
    }

    /// Where a use at `now` moves `record`'s expiry under `policy`: not at
    /// all unless it moves by at least the touch threshold, so that most
    /// requests neither write the expiry nor send the cookie again. A
    /// changed policy always applies.
    fn next_expiry(&self, record: &Record, policy: Expiry, now: OffsetDateTime) -> OffsetDateTime {
        let same_policy = policy == self.policy_of(record.expiry);
        let touch_after = self.inner.config.touch_after_for(&policy);

        // The target is at most `now + idle`: when even that moves the
        // expiry by less than the threshold, the target (and the date
        // arithmetic behind it, which shows in a profile) is not needed.
        if same_policy && (now - record.expires_at).saturating_add(policy.idle()) < touch_after {
            return record.expires_at;
        }
        let target = policy.expires_at(record.created_at, now);
        if same_policy && target - record.expires_at < touch_after {
            return record.expires_at;
        }
        target
    }

    /// The versioned save: on a conflict, reload and replay the log.
    ///
    /// Returns the record as written, or `None` when the session was
    /// deleted or expired meanwhile (a logout wins).
    async fn save_changes(
        &self,
        loaded: &mut Loaded,
        now: OffsetDateTime,
        always_write: bool,
    ) -> Result<Option<Record>, Error> {
        let Some(base) = loaded.base.as_ref() else {
            return Ok(None);
        };
        // What is left of the contents is dropped before the call, so
        // that it takes no room in this future.
        let next = self.next_record(base, &mut std::mem::take(&mut loaded.work), now);
        if next.is_expired(now) {
            return Ok(None);
        }

        let outcome = self
            .call("save", self.store().save(&next, base.version, now))
            .await?;
        match outcome {
            SaveOutcome::Saved => Ok(Some(next)),
            SaveOutcome::Missing => Ok(None),
            SaveOutcome::Conflict if self.inner.config.max_save_attempts() <= 1 => {
                Err(Error::Contention { attempts: 1 })
            }
            // Rare, and with a timer and a reload in its state: boxed, so
            // that the first attempt's future stays small.
            SaveOutcome::Conflict => {
                Box::pin(self.save_after_conflict(loaded, next.key, now, always_write)).await
            }
        }
    }

    /// The attempts after a conflict: wait, reload, replay the log onto
    /// what others saved, and save again.
    async fn save_after_conflict(
        &self,
        loaded: &Loaded,
        key: StorageKey,
        now: OffsetDateTime,
        always_write: bool,
    ) -> Result<Option<Record>, Error> {
        let max_attempts = self.inner.config.max_save_attempts();
        let mut attempt = 1;

        loop {
            tracing::debug!(attempt, "session save conflicted; replaying changes");
            backoff(attempt).await;
            attempt += 1;

            let fresh = self.call("load", self.store().load(&key, now)).await?;
            // Someone wrote it at the last version: no save can follow
            // theirs, so the session ends as a load would have found it.
            let Some(fresh) = fresh.filter(|fresh| fresh.version < Record::LAST_VERSION) else {
                return Ok(None);
            };
            let mut contents = Contents::of(&fresh);
            contents.replay(&loaded.log)?;
            if !always_write && contents.matches(&fresh) {
                // Someone else already wrote exactly this.
                return Ok(Some(fresh));
            }

            let next = self.next_record(&fresh, &mut contents, now);
            if next.is_expired(now) {
                return Ok(None);
            }
            let outcome = self
                .call("save", self.store().save(&next, fresh.version, now))
                .await?;
            match outcome {
                SaveOutcome::Saved => return Ok(Some(next)),
                SaveOutcome::Missing => return Ok(None),
                SaveOutcome::Conflict if attempt >= max_attempts => {
                    return Err(Error::Contention { attempts: attempt });
                }
                SaveOutcome::Conflict => {}
            }
        }
    }

    /// The record that `contents` makes of `current`, one version on.
    fn next_record(
        &self,
        current: &Record,
        contents: &mut Contents,
        now: OffsetDateTime,
    ) -> Record {
        let policy = self.policy_of(contents.expiry);
        Record {
            key: current.key,
            version: current.version + 1,
            created_at: current.created_at,
            expires_at: self.next_expiry(current, policy, now),
            deadline: policy.deadline(current.created_at),
            data: contents.data.render(),
            principal: contents.principal.take(),
            expiry: contents.expiry,
        }
    }

    /// Stores `contents` as a new session under a fresh id.
    async fn create_record(
        &self,
        mut contents: Contents,
        now: OffsetDateTime,
    ) -> Result<(Id, Record), Error> {
        let policy = self.policy_of(contents.expiry);
        let mut record = Record {
            key: StorageKey::from_bytes([0; 32]),
            data: contents.data.render(),
            version: 1,
            created_at: now,
            expires_at: policy.expires_at(now, now),
            deadline: policy.deadline(now),
            principal: contents.principal,
            expiry: contents.expiry,
        };

        for _ in 0..ID_ATTEMPTS {
            let id = self.inner.config.new_id();
            record.key = id.storage_key();

            let created = self
                .call("create", self.store().create(&record, now))
                .await?;
            match created {
                CreateOutcome::Created => return Ok((id, record)),
                CreateOutcome::Collision => {
                    tracing::warn!("fresh session id collided with a live session");
                }
            }
        }
        Err(Error::IdCollision {
            attempts: ID_ATTEMPTS,
        })
    }

    fn policy_of(&self, expiry: Option<Expiry>) -> Expiry {
        expiry.unwrap_or(self.inner.config.expiry())
    }

    /// The store itself. Calling through the `Arc` would pick the
    /// `Store` impl of `Arc<dyn Store>`, which boxes a second future
    /// around the store's own on every call.
    fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.config.clock().now()
    }

    /// Locks the state, loading the session on first use.
    async fn loaded(&self) -> Result<MappedMutexGuard<'_, Option<Loaded>, Loaded>, Error> {
        let mut state = self.inner.state.lock().await;
        if state.is_none() {
            let found = self.load_candidates().await?;
            *state = Some(self.loaded_from(found));
        }

        let loaded = MutexGuard::map(state, |state| {
            state.get_or_insert_with(|| Loaded::new(None, None))
        });
        Ok(loaded)
    }

    /// As [`loaded`](Self::loaded), refusing changes after the commit.
    async fn writable(&self) -> Result<MappedMutexGuard<'_, Option<Loaded>, Loaded>, Error> {
        let state = self.loaded().await?;
        if state.finished {
            return Err(Error::Finished);
        }
        Ok(state)
    }

    /// The first candidate that names a live, decodable record, and
    /// which of those before it did not decode.
    async fn load_candidates(&self) -> Result<Found, Error> {
        let now = self.now();
        // A bit per candidate, not a list: this future's state is part of
        // every first `get` or `insert`, and the bits are what it needs.
        let mut unreadable = 0_u64;

        for (at, id) in self.inner.candidates.iter().enumerate() {
            let key = id.storage_key();
            let loaded = self.call("load", self.store().load(&key, now)).await;
            match loaded {
                // Its next save would need a version past the last; as
                // for any damaged record, the visitor starts afresh.
                Ok(Some(record)) if record.version >= Record::LAST_VERSION => {
                    tracing::warn!("ignoring a stored session at the last version");
                    unreadable |= bit(at);
                }
                Ok(Some(record)) => {
                    return Ok(Found {
                        live: Some(record),
                        others: Others {
                            live_at: Some(at),
                            unreadable,
                        },
                    })
                }
                Ok(None) => {}
                Err(error) if error.is_decode() => {
                    tracing::warn!(%error, "ignoring a stored session that does not decode");
                    unreadable |= bit(at);
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(Found {
            live: None,
            others: Others {
                live_at: None,
                unreadable,
            },
        })
    }

    /// The state `found` starts a request with.
    fn loaded_from(&self, found: Found) -> Loaded {
        let id = found.others.live_at.map(|at| self.inner.candidates[at]);
        Loaded {
            others: Some(found.others),
            ..Loaded::new(id, found.live)
        }
    }

    /// What a logout cleans up after the request's other cookies, if
    /// anything: the records that did not decode (strays), and those
    /// never read (unread), after the live one, or before it past
    /// [`TRACKED`], whose outcome was not kept.
    fn left_by(&self, others: Others) -> Option<(Vec<StorageKey>, Vec<StorageKey>)> {
        let live_at = others.live_at;
        let unread_from = live_at.map_or(self.inner.candidates.len(), |at| at + 1);

        let mut strays = Vec::new();
        let mut unread = Vec::new();
        for (at, id) in self.inner.candidates.iter().enumerate() {
            if at >= unread_from || (at >= TRACKED && Some(at) != live_at) {
                unread.push(id.storage_key());
            } else if others.unreadable & bit(at) != 0 {
                strays.push(id.storage_key());
            }
        }
        (!(strays.is_empty() && unread.is_empty())).then_some((strays, unread))
    }

    /// Runs one store call under the configured timeout, logging its
    /// operation and duration (never the key).
    async fn call<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = self.inner.config.store_timeout();
        // Two clock reads per store call show in a profile; take them only
        // for someone who will see the figure.
        let started = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);

        // A store that answers on the first poll (one in process) needs no
        // timer; any other gets one from the moment it first waits.
        let mut call = pin!(call);
        let first = poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        let result = match first {
            Poll::Ready(result) => result,
            Poll::Pending => {
                let std_limit = std::time::Duration::try_from(limit).unwrap_or_default();
                // Boxed: a timer inline would double the size of every
                // future that makes a store call, for in-process stores
                // too; a network round trip dwarfs the allocation.
                match Box::pin(tokio::time::timeout(std_limit, call)).await {
                    Ok(result) => result,
                    Err(_) => Err(StoreError::Timeout { op, after: limit }),
                }
            }
        };

        let Some(started) = started else {
            return result;
        };
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match &result {
            Ok(_) => tracing::debug!(op, elapsed_us, "session store call"),
            Err(error) => tracing::debug!(op, elapsed_us, %error, "session store call failed"),
        }
        result
    }
}

impl Loaded {
    fn new(id: Option<Id>, base: Option<Record>) -> Self {
        let work = base.as_ref().map(Contents::of).unwrap_or_default();
        Self {
            id,
            base,
            work,
            log: Vec::new(),
            cycle: false,
            doomed: Vec::new(),
            others: None,
            destroyed: false,
            finished: false,
        }
    }

    /// Applies a change to the working contents and logs it. A change
    /// that fails changes nothing and is not logged.
    fn record(&mut self, change: Change) -> Result<Option<Value>, Error> {
        let value = self.work.apply(&change)?;
        self.log.push(change);
        Ok(value)
    }

    /// Takes `record` as the new base after a write and says what the
    /// cookie must do: carry `id` again when `send` (a new id, or an
    /// expiry the browser must learn), otherwise stay as it is.
    fn settle(
        &mut self,
        id: Id,
        record: Record,
        now: OffsetDateTime,
        policy: Expiry,
        send: bool,
    ) -> Commit {
        let max_age = match policy.cookie() {
            CookieLifetime::Persistent => Some(record.expires_at - now),
            CookieLifetime::BrowserSession => None,
        };

        self.work = Contents::of(&record);
        self.base = Some(record);
        self.id = Some(id);
        self.log.clear();
        self.cycle = false;
        if send {
            Commit::Set { id, max_age }
        } else {
            Commit::Unchanged
        }
    }

    /// The session was deleted or expired while this request ran.
    ///
    /// No removal cookie goes out: the request that deleted it sent its own,
    /// and a login elsewhere may have given the browser a new cookie that a
    /// late removal would wipe out.
    fn vanish(&mut self) -> Commit {
        self.base = None;
        self.work = Contents::default();
        self.id = None;
        self.log.clear();
        self.cycle = false;
        Commit::Unchanged
    }
}

/// Sleeps a random while, growing with the attempt, so that requests that
/// conflicted do not collide again in lock step.
async fn backoff(attempt: u32) {
    let ceiling_ms = 1u64 << attempt.min(6);
    let wait = rand::random_range(0..=ceiling_ms);
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
}

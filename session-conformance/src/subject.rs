//! The store under test, seen through the case that is using it.
//!
//! Every operation returns `Result<_, Failure>`: an error the contract does
//! not allow becomes a failure that names the case and the operation, so a
//! case reads as a list of steps and checks.

use std::collections::BTreeSet;
use std::fmt::{Debug, Write as _};
use std::future::Future;
use std::sync::Arc;

use session_core::time::OffsetDateTime;
use session_core::{
    CreateOutcome, Data, Record, SaveOutcome, StorageKey, Store, StoreError, TouchOutcome,
};

use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::failure::Failure;
use crate::fixture::fresh_namespace;
use crate::Harness;

/// Values longer than this are cut in failure messages (a 1 MiB value
/// would drown the report).
const SHOWN: usize = 120;

/// One store under test, on its own fresh namespace. Cheap to clone.
pub(crate) struct Subject<S> {
    case: &'static str,
    store: Arc<S>,
}

impl<S> Clone for Subject<S> {
    fn clone(&self) -> Self {
        Self {
            case: self.case,
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: Store> Subject<S> {
    /// A store over a fresh namespace of `harness`, for `case`.
    pub(crate) async fn open<H>(harness: &H, case: &'static str) -> Self
    where
        H: Harness<Store = S>,
    {
        let namespace = fresh_namespace();
        let store = harness.store(&namespace).await;
        Self {
            case,
            store: Arc::new(store),
        }
    }

    /// The store itself, for cases that look at its errors.
    pub(crate) fn raw(&self) -> &S {
        &self.store
    }

    /// [`Store::supports_principal_index`].
    pub(crate) fn supports_principal_index(&self) -> bool {
        self.store.supports_principal_index()
    }

    /// A failure of this case.
    pub(crate) fn fail(&self, promise: &str, seen: impl Into<String>) -> Failure {
        Failure::new(self.case, promise, seen)
    }

    /// A failure unless `ok`; `seen` describes what happened instead.
    pub(crate) fn check(
        &self,
        ok: bool,
        promise: &str,
        seen: impl FnOnce() -> String,
    ) -> Result<(), Failure> {
        if ok {
            Ok(())
        } else {
            Err(self.fail(promise, seen()))
        }
    }

    /// A failure unless `seen == want`.
    pub(crate) fn check_eq<T>(&self, seen: T, want: T, promise: &str) -> Result<(), Failure>
    where
        T: PartialEq + Debug,
    {
        self.check(seen == want, promise, || {
            format!("{}, expected {}", cut(&seen), cut(&want))
        })
    }

    /// A failure unless `loaded` is exactly `want`.
    pub(crate) fn check_record(
        &self,
        loaded: Option<Record>,
        want: &Record,
        promise: &str,
    ) -> Result<(), Failure> {
        match loaded {
            None => Err(self.fail(promise, "no record")),
            Some(got) => self.check(got == *want, promise, || differences(&got, want)),
        }
    }

    /// A failure unless `loaded` is `None`.
    pub(crate) fn check_absent(
        &self,
        loaded: Option<Record>,
        promise: &str,
    ) -> Result<(), Failure> {
        match loaded {
            None => Ok(()),
            Some(got) => Err(self.fail(promise, format!("a record: {}", summary(&got)))),
        }
    }

    /// A failure for an error the contract does not allow here.
    pub(crate) fn store_failure(&self, op: &'static str, error: StoreError) -> Failure {
        Failure::from_store_error(self.case, op, error)
    }

    fn or_fail<T>(&self, op: &'static str, result: Result<T, StoreError>) -> Result<T, Failure> {
        result.map_err(|error| self.store_failure(op, error))
    }

    /// [`Store::create`].
    pub(crate) async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, Failure> {
        self.or_fail("create", self.store.create(record, now).await)
    }

    /// [`Store::load`].
    pub(crate) async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, Failure> {
        self.or_fail("load", self.store.load(key, now).await)
    }

    /// [`Store::save`].
    pub(crate) async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, Failure> {
        let result = self.store.save(record, expected_version, now).await;
        self.or_fail("save", result)
    }

    /// [`Store::touch`].
    pub(crate) async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, Failure> {
        self.or_fail("touch", self.store.touch(key, expires_at, now).await)
    }

    /// [`Store::delete`].
    pub(crate) async fn delete(&self, key: &StorageKey) -> Result<(), Failure> {
        self.or_fail("delete", self.store.delete(key).await)
    }

    /// [`Store::delete_expired`].
    pub(crate) async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, Failure> {
        self.or_fail("delete_expired", self.store.delete_expired(now).await)
    }

    /// [`Store::list_by_principal`].
    pub(crate) async fn list_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, Failure> {
        let result = self.store.list_by_principal(principal, now).await;
        self.or_fail("list_by_principal", result)
    }

    /// [`Store::delete_by_principal`].
    pub(crate) async fn delete_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, Failure> {
        let result = self.store.delete_by_principal(principal, now).await;
        self.or_fail("delete_by_principal", result)
    }

    /// Loads `key` at `now`; a failure unless it is exactly `want`.
    pub(crate) async fn expect_record(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
        want: &Record,
        promise: &str,
    ) -> Result<(), Failure> {
        let loaded = self.load(key, now).await?;
        self.check_record(loaded, want, promise)
    }

    /// Loads `key` at `now`; a failure unless nothing loads.
    pub(crate) async fn expect_absent(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
        promise: &str,
    ) -> Result<(), Failure> {
        let loaded = self.load(key, now).await?;
        self.check_absent(loaded, promise)
    }

    /// Saves `record`, which must succeed: the store holds
    /// `expected_version` and the record is live.
    pub(crate) async fn save_ok(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<(), Failure> {
        let outcome = self.save(record, expected_version, now).await?;
        self.check_eq(
            outcome,
            SaveOutcome::Saved,
            "a save with the stored version reports Saved",
        )
    }

    /// Touches `key`, which must be live.
    pub(crate) async fn touch_ok(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), Failure> {
        let outcome = self.touch(key, expires_at, now).await?;
        self.check_eq(
            outcome,
            TouchOutcome::Touched,
            "a touch of a live record reports Touched",
        )
    }

    /// Runs `count` tasks on the runtime's workers, all released at once
    /// (so they overlap even on a fast in-process store), and returns
    /// their results in no particular order.
    pub(crate) async fn race<T, F, Fut>(&self, count: usize, task: F) -> Result<Vec<T>, Failure>
    where
        F: Fn(usize, Self) -> Fut,
        Fut: Future<Output = Result<T, Failure>> + Send + 'static,
        T: Send + 'static,
    {
        let start = Arc::new(Barrier::new(count));
        let mut tasks = JoinSet::new();
        for n in 0..count {
            let start = Arc::clone(&start);
            let work = task(n, self.clone());
            tasks.spawn(async move {
                start.wait().await;
                work.await
            });
        }

        let mut results = Vec::with_capacity(count);
        while let Some(joined) = tasks.join_next().await {
            let result = joined.map_err(|error| {
                self.fail(
                    "every concurrent task returns",
                    format!("a task failed: {error}"),
                )
            })?;
            results.push(result?);
        }
        Ok(results)
    }

    /// Creates `record`, which must be new.
    pub(crate) async fn create_new(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<(), Failure> {
        let outcome = self.create(record, now).await?;
        self.check_eq(
            outcome,
            CreateOutcome::Created,
            "a create under an unused key reports Created",
        )
    }
}

/// The `Debug` form of `value`, cut to a readable length.
pub(crate) fn cut(value: &impl Debug) -> String {
    let text = format!("{value:?}");
    if text.chars().count() <= SHOWN {
        return text;
    }

    let head: String = text.chars().take(SHOWN).collect();
    format!("{head}... ({} characters)", text.chars().count())
}

/// A short description of a record for failure messages.
pub(crate) fn summary(record: &Record) -> String {
    format!(
        "version {}, expires_at {}, data {}",
        record.version,
        record.expires_at,
        cut(&record.data.as_str())
    )
}

/// The first few top-level keys in which two data objects differ.
fn data_differences(got: &Data, want: &Data) -> String {
    const SHOWN_KEYS: usize = 3;

    let (got, want) = (got.to_map(), want.to_map());
    let keys: BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter(|key| got.get(*key) != want.get(*key))
        .map(|key| match (got.get(key), want.get(key)) {
            (Some(seen), Some(wanted)) => {
                format!("{} is {}, expected {}", cut(key), cut(seen), cut(wanted))
            }
            (Some(_), None) => format!("{} is there, expected no such key", cut(key)),
            _ => format!("{} is missing", cut(key)),
        })
        .collect();

    let first = &differing[..differing.len().min(SHOWN_KEYS)];
    let mut text = format!("data key {}", first.join(", key "));
    if differing.len() > first.len() {
        let _ = write!(text, " (and {} more keys)", differing.len() - first.len());
    }
    text
}

/// The fields in which `got` differs from `want`.
pub(crate) fn differences(got: &Record, want: &Record) -> String {
    let shown = |name: &str, got: &dyn Debug, want: &dyn Debug| {
        format!("{name} {}, expected {}", cut(&got), cut(&want))
    };
    let mut out = Vec::new();

    if got.key != want.key {
        out.push("another key".to_owned());
    }
    if got.data != want.data {
        out.push(data_differences(&got.data, &want.data));
    }
    if got.version != want.version {
        out.push(shown("version", &got.version, &want.version));
    }
    let times = [
        ("created_at", got.created_at, want.created_at),
        ("expires_at", got.expires_at, want.expires_at),
        ("deadline", got.deadline, want.deadline),
    ];
    for (name, got, want) in times {
        if got != want {
            out.push(format!("{name} {got}, expected {want}"));
        }
    }
    if got.principal != want.principal {
        out.push(shown("principal", &got.principal, &want.principal));
    }
    if got.expiry != want.expiry {
        out.push(shown("expiry", &got.expiry, &want.expiry));
    }

    out.join("; ")
}

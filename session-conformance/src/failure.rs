//! What a case reports when a store breaks one of its promises.

use std::error::Error as _;
use std::fmt::Write as _;

use session_core::StoreError;

/// A broken promise: which case, what the store promised, what was seen.
///
/// The message reads like a bug report, for example: `conformance case
/// save_stale_version_conflicts failed: a save expecting another version
/// than the stored one reports Conflict; seen: Saved, expected Conflict`.
/// When the store returned an error, `seen` quotes it with its sources,
/// since a test's panic message shows only this text.
#[derive(Debug, thiserror::Error)]
#[error("conformance case {case} failed: {promise}; seen: {seen}")]
pub struct Failure {
    case: &'static str,
    promise: String,
    seen: String,
    #[source]
    source: Option<StoreError>,
}

impl Failure {
    /// A failure of `case`: `promise` was broken and `seen` shows how.
    #[must_use]
    pub fn new(case: &'static str, promise: impl Into<String>, seen: impl Into<String>) -> Self {
        Self {
            case,
            promise: promise.into(),
            seen: seen.into(),
            source: None,
        }
    }

    /// A store operation that returned an error where the contract
    /// expects an outcome.
    #[must_use]
    pub fn from_store_error(case: &'static str, op: &'static str, error: StoreError) -> Self {
        Self {
            case,
            promise: format!("`{op}` succeeds"),
            seen: format!("error: {}", chain(&error)),
            source: Some(error),
        }
    }

    /// The name of the case that failed (also its test's name).
    #[must_use]
    pub fn case(&self) -> &'static str {
        self.case
    }

    /// The promise of the store contract that was broken.
    #[must_use]
    pub fn promise(&self) -> &str {
        &self.promise
    }

    /// What the store did instead.
    #[must_use]
    pub fn seen(&self) -> &str {
        &self.seen
    }

    /// The store's error, when the failure is an error the contract does
    /// not allow (also its [`source`](std::error::Error::source)).
    #[must_use]
    pub fn store_error(&self) -> Option<&StoreError> {
        self.source.as_ref()
    }
}

/// The error's message followed by those of its sources, so that a panic
/// message shows the backend's own words.
fn chain(error: &StoreError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::io;

    use super::*;

    #[test]
    fn message_names_case_promise_and_what_was_seen() {
        let failure = Failure::new("some_case", "a promise holds", "it did not");

        assert_eq!(
            failure.to_string(),
            "conformance case some_case failed: a promise holds; seen: it did not"
        );
        assert!(failure.source().is_none());
    }

    #[test]
    fn store_errors_keep_their_source_and_quote_its_chain() {
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
        let error = StoreError::backend("load", refused);

        let failure = Failure::from_store_error("some_case", "load", error);

        assert_eq!(failure.promise(), "`load` succeeds");
        assert!(failure.seen().ends_with("during load: connection refused"));
        assert!(failure.store_error().is_some());
        assert!(failure.source().is_some());
    }
}

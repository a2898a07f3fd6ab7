//! Errors of the middleware.

/// What a handler using the session can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session extractor was used on a route without `SessionLayer`.
    #[error("no session on this request: is SessionLayer installed?")]
    MissingLayer,

    /// The session itself failed (store down, value of another shape).
    #[error(transparent)]
    Session(#[from] session_core::Error),
}

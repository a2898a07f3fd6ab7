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

/// The error and its sources as one line (`a: b: c`), for logs.
///
/// Store errors carry no session ids or keys, so the chain is safe to log.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

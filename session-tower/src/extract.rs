//! The axum extractor and error response.

use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::error::{chain, Error};

/// The request's session, as an axum extractor.
///
/// Dereferences to [`session_core::Session`], so every method of the
/// handle is available. Extracting it costs nothing: the session is loaded
/// on its first use.
#[derive(Debug, Clone)]
pub struct Session(pub session_core::Session);

impl Deref for Session {
    type Target = session_core::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<session_core::Session>()
            .cloned()
            .map(Session)
            .ok_or(Error::MissingLayer)
    }
}

impl IntoResponse for Error {
    /// Every session failure is the server's: a 500, logged at `error`.
    fn into_response(self) -> Response {
        tracing::error!(error = %chain(&self), "session unavailable");
        (StatusCode::INTERNAL_SERVER_ERROR, "session unavailable").into_response()
    }
}

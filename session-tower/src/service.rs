//! The tower `Service` that runs a request with its session.

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use session_core::{Commit, Session};
use tower::Service;

use crate::error::chain;
use crate::future::ResponseFuture;
use crate::layer::Shared;

/// The service [`SessionLayer`](crate::SessionLayer) wraps around yours.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> SessionService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Response<ResBody>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let shared = Arc::clone(&self.shared);

        // Header bytes outside visible ASCII must not hide a good cookie
        // pair in the same header, so decode leniently (borrowing, not
        // copying, the usual valid header).
        let headers = request.headers().get_all(COOKIE);
        let lenient = headers.iter().map(|value| {
            let bytes = value.as_bytes();
            std::str::from_utf8(bytes)
                .map_or_else(|_| String::from_utf8_lossy(bytes), Cow::Borrowed)
        });
        let candidates = shared.cookie.session_ids(lenient);

        let store = Arc::clone(&shared.store);
        let session = Session::new(store, Arc::clone(&shared.config), candidates);
        request.extensions_mut().insert(session.clone());

        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);

        ResponseFuture::new(async move {
            let mut response = inner.call(request).await?;

            match session.commit().await {
                Ok(commit) => set_cookie(&shared, &mut response, commit),
                Err(error) => {
                    tracing::error!(error = %chain(&error), "saving the session failed; answering 500");
                    let mut failed = Response::new(ResBody::default());
                    *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    return Ok(failed);
                }
            }
            Ok(response)
        })
    }
}

fn set_cookie<B>(shared: &Shared, response: &mut Response<B>, commit: Commit) {
    let header = match commit {
        Commit::Unchanged => return,
        Commit::Set { id, max_age } => shared.cookie.set_cookie(&id, max_age),
        Commit::Removed => shared.cookie.removal_cookie(),
    };

    match HeaderValue::from_str(&header) {
        Ok(value) => {
            response.headers_mut().append(SET_COOKIE, value);
        }
        // The policy validated every attribute, so this does not happen;
        // if it did, no cookie beats a malformed one.
        Err(_) => tracing::error!("session cookie is not a valid header value"),
    }
}

//! The load: simulated visitors who log in and then count their visits.
//!
//! Each visitor sends one request at a time and keeps its own cookie, as
//! a browser tab would. Every `/me` the demo answers with a 2xx carries
//! the visit counter after that request's write, so the visitor knows the
//! last write it saw acknowledged; a later 2xx showing a lower or equal
//! count, or no logged-in user, means an acknowledged write was lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, COOKIE, SET_COOKIE};
use reqwest::{Client, Response};
use serde_json::Value;

/// A visitor logs in again (which gives its session a new id) this often.
const LOGIN_EVERY: u64 = 50;

/// What one visitor saw.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Responses by status code, and failures by kind (`connect`, ...).
    pub(crate) statuses: BTreeMap<String, u64>,
    /// The visit count of the last acknowledged `/me`.
    pub(crate) acked_visits: u64,
    /// Acknowledged `/me` and `/login` writes.
    pub(crate) acked_writes: u64,
    /// A 2xx `/me` that showed an earlier write gone.
    pub(crate) lost_writes: u64,
    /// A 2xx `/me` that showed the visitor logged out.
    pub(crate) lost_logins: u64,
}

/// One simulated visitor.
pub(crate) struct Visitor {
    name: String,
    base: String,
    client: Client,
    cookie: Option<String>,
    pub(crate) tally: Tally,
}

impl Visitor {
    pub(crate) fn new(n: usize, base: &str) -> Self {
        let client = Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("an HTTP client with default TLS-free settings");
        Self {
            name: format!("visitor-{n}"),
            base: base.to_owned(),
            client,
            cookie: None,
            tally: Tally::default(),
        }
    }

    /// Sends requests until `until`, one every `pause` at most.
    pub(crate) async fn run(&mut self, until: Instant, pause: Duration) {
        let mut sent = 0u64;

        while Instant::now() < until {
            if self.cookie.is_none() || sent % LOGIN_EVERY == 0 {
                self.login().await;
            } else {
                self.visit().await;
            }
            sent += 1;
            tokio::time::sleep(pause).await;
        }
    }

    async fn login(&mut self) {
        let request = self
            .with_cookie(self.client.post(format!("{}/login", self.base)))
            .header(ACCEPT, "application/json")
            .form(&[("user", self.name.as_str())]);

        let Some(response) = self.send(request).await else {
            return;
        };
        if response.status().is_success() {
            self.adopt_cookie(&response);
            self.tally.acked_writes += 1;
        }
    }

    /// One `/me`; returns the body of a 2xx answer.
    pub(crate) async fn visit(&mut self) -> Option<Value> {
        let request = self.with_cookie(self.client.get(format!("{}/me", self.base)));

        let response = self.send(request).await?;
        if !response.status().is_success() {
            return None;
        }
        self.adopt_cookie(&response);
        let body: Value = response.json().await.ok()?;

        let visits = body["visits"].as_u64().unwrap_or(0);
        if visits <= self.tally.acked_visits {
            self.tally.lost_writes += 1;
        }
        if body["user"].as_str() != Some(self.name.as_str()) {
            self.tally.lost_logins += 1;
        }
        self.tally.acked_visits = self.tally.acked_visits.max(visits);
        self.tally.acked_writes += 1;
        Some(body)
    }

    /// The visitor's name, which is also its login.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(cookie) => request.header(COOKIE, cookie),
            None => request,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Option<Response> {
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16().to_string();
                *self.tally.statuses.entry(status).or_default() += 1;
                Some(response)
            }
            Err(error) => {
                let kind = if error.is_timeout() {
                    "timeout"
                } else if error.is_connect() {
                    "connect error"
                } else {
                    "other error"
                };
                *self.tally.statuses.entry(kind.to_owned()).or_default() += 1;
                None
            }
        }
    }

    /// Keeps the session cookie a response set, as a browser would; a
    /// removal forgets it.
    fn adopt_cookie(&mut self, response: &Response) {
        for header in response.headers().get_all(SET_COOKIE) {
            let Ok(header) = header.to_str() else {
                continue;
            };
            let Some(pair) = header.split(';').next() else {
                continue;
            };
            if header.to_ascii_lowercase().contains("max-age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(pair.to_owned());
            }
        }
    }
}

//! The session cookie: its attributes, how it is read and how it is written.

use std::fmt::{self, Write as _};

use cookie::{Cookie, CookieJar, Key};
use time::Duration;

use crate::id::Id;

/// Longest cookie value considered; longer ones are junk, not ours.
const MAX_VALUE_LEN: usize = 256;

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Sent only with requests from the same site.
    Strict,
    /// Also sent on top-level navigations from other sites (the default).
    Lax,
    /// Sent with cross-site requests too; requires `Secure`.
    None,
}

/// Keys that sign or encrypt the cookie value, newest first.
///
/// The first key signs (or encrypts) new cookies; every key is accepted
/// when reading, so a key can be rotated without logging anyone out.
#[derive(Clone)]
pub struct CookieKeys {
    mode: KeyMode,
    keys: Vec<Key>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeyMode {
    Signed,
    Private,
}

impl fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieKeys")
            .field("mode", &self.mode)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl CookieKeys {
    /// Sign cookie values (HMAC-SHA256) with the first key.
    #[must_use]
    pub fn signed(keys: Vec<Key>) -> Self {
        Self {
            mode: KeyMode::Signed,
            keys,
        }
    }

    /// Encrypt cookie values (AES-256-GCM) with the first key.
    #[must_use]
    pub fn private(keys: Vec<Key>) -> Self {
        Self {
            mode: KeyMode::Private,
            keys,
        }
    }
}

/// Why a cookie policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookiePolicyError {
    /// The name is empty or has characters a cookie name cannot have.
    #[error("cookie name {0:?} is not a valid token (letters, digits and !#$%&'*+-.^_`|~)")]
    InvalidName(String),

    /// `SameSite=None` without `Secure`.
    #[error("browsers reject SameSite=None cookies that are not Secure; enable secure")]
    SameSiteNoneWithoutSecure,

    /// `Partitioned` without `Secure`.
    #[error("browsers reject Partitioned cookies that are not Secure; enable secure")]
    PartitionedWithoutSecure,

    /// A `__Host-` name with a `Domain`, another path or no `Secure`.
    #[error("a __Host- cookie must be Secure, have no Domain and have Path=/")]
    HostPrefix,

    /// A `__Secure-` name without `Secure`.
    #[error("a __Secure- cookie must be Secure")]
    SecurePrefix,

    /// The path does not start with `/` or has forbidden characters.
    #[error("cookie path {0:?} must start with '/' and have no ';' or control characters")]
    InvalidPath(String),

    /// The domain is empty or has forbidden characters.
    #[error("cookie domain {0:?} must be non-empty with no ';', spaces or control characters")]
    InvalidDomain(String),

    /// Signing or encryption was asked for without a key.
    #[error("cookie signing or encryption needs at least one key")]
    NoKeys,
}

/// Where the session cookie goes and how it is protected.
///
/// Defaults: name `sid`, `Path=/`, no `Domain`, `Secure`, `HttpOnly`,
/// `SameSite=Lax`, not `Partitioned`, value neither signed nor encrypted
/// (the id is already 128 random bits). Build one with
/// [`CookiePolicy::builder`] or [`CookiePolicy::cross_site`].
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    partitioned: bool,
    keys: Option<CookieKeys>,
    max_candidates: usize,
    /// Everything after `name=value` of an unsigned cookie without
    /// `Max-Age`, rendered once by the `cookie` crate: a write answers
    /// with a cookie on every request, and building one costs more than
    /// the rest of the header.
    attributes: String,
}

/// Builds a [`CookiePolicy`]; combinations browsers reject are refused by
/// [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct CookiePolicyBuilder {
    policy: CookiePolicy,
}

impl Default for CookiePolicy {
    fn default() -> Self {
        Self {
            name: "sid".to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            partitioned: false,
            keys: None,
            max_candidates: 4,
            attributes: String::new(),
        }
        .rendered()
    }
}

impl CookiePolicy {
    /// A builder starting from the defaults.
    pub fn builder() -> CookiePolicyBuilder {
        CookiePolicyBuilder {
            policy: Self::default(),
        }
    }

    /// A builder for a front end on another site (the `crossSite` switch):
    /// `SameSite=None` and `Secure`. Add
    /// [`partitioned`](CookiePolicyBuilder::partitioned) for browsers that
    /// block third-party cookies.
    pub fn cross_site() -> CookiePolicyBuilder {
        Self::builder().same_site(SameSite::None).secure(true)
    }

    /// The cookie name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cookie path.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The cookie domain, if set.
    #[must_use]
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Whether the cookie is `Secure`.
    #[must_use]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Whether the cookie is `HttpOnly`.
    #[must_use]
    pub fn http_only(&self) -> bool {
        self.http_only
    }

    /// The `SameSite` attribute.
    #[must_use]
    pub fn same_site(&self) -> SameSite {
        self.same_site
    }

    /// Whether the cookie is `Partitioned`.
    #[must_use]
    pub fn partitioned(&self) -> bool {
        self.partitioned
    }

    /// The session ids carried by a request's `Cookie` headers, in order.
    ///
    /// Every cookie of the policy's name is considered (a browser sends two
    /// when an old cookie with other attributes survives). Values that are
    /// malformed, oversized, or fail signature checks are dropped with a
    /// `warn` that never includes the value. At most a few ids are
    /// returned, so a hostile header cannot cause many store lookups.
    #[must_use]
    pub fn session_ids<H: AsRef<str>>(&self, headers: impl IntoIterator<Item = H>) -> Vec<Id> {
        let mut ids = Vec::new();
        let mut dropped = 0usize;

        for header in headers {
            for pair in header.as_ref().split(';') {
                let Some((name, value)) = pair.trim().split_once('=') else {
                    continue;
                };
                if name.trim() != self.name {
                    continue;
                }

                match self.decode_value(value.trim()) {
                    Some(id) if ids.contains(&id) => {}
                    Some(id) if ids.len() < self.max_candidates => ids.push(id),
                    Some(_) | None => dropped += 1,
                }
            }
        }

        if dropped > 0 {
            tracing::warn!(dropped, "ignored malformed or surplus session cookies");
        }
        ids
    }

    fn decode_value(&self, value: &str) -> Option<Id> {
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        if value.len() > MAX_VALUE_LEN || !value.is_ascii() {
            return None;
        }

        let Some(keys) = &self.keys else {
            return Id::parse(value);
        };
        let cookie = Cookie::new(self.name.clone(), value.to_owned());
        let jar = CookieJar::new();
        keys.keys.iter().find_map(|key| {
            let plain = match keys.mode {
                KeyMode::Signed => jar.signed(key).verify(cookie.clone()),
                KeyMode::Private => jar.private(key).decrypt(cookie.clone()),
            };
            plain.and_then(|plain| Id::parse(plain.value()))
        })
    }

    /// The `Set-Cookie` value that gives the browser `id`.
    ///
    /// `max_age` `None` makes a browser-session cookie. A positive
    /// remainder under a second is rounded up, so the cookie never dies
    /// before the session does.
    #[must_use]
    pub fn set_cookie(&self, id: &Id, max_age: Option<Duration>) -> String {
        let seconds = max_age.map(|max_age| {
            let whole = max_age.whole_seconds();
            // Saturating: a remainder on top of the longest whole-second
            // count must not wrap around to a cookie that is already dead.
            let seconds = if max_age > Duration::seconds(whole) {
                whole.saturating_add(1)
            } else {
                whole
            };
            seconds.max(0)
        });

        let Some(keys) = &self.keys else {
            // The same text the `cookie` crate writes: it puts Max-Age
            // after every attribute the policy renders.
            let mut header = String::with_capacity(self.name.len() + 64 + self.attributes.len());
            header.push_str(&self.name);
            header.push('=');
            id.encode_into(&mut header);
            header.push_str(&self.attributes);
            if let Some(seconds) = seconds {
                // Writing to a String cannot fail.
                let _ = write!(header, "; Max-Age={seconds}");
            }
            return header;
        };

        let mut cookie = self.base_cookie(id.encode());
        if let Some(seconds) = seconds {
            cookie.set_max_age(Duration::seconds(seconds));
        }
        let Some(key) = keys.keys.first() else {
            // `build` refuses a key set without keys.
            return cookie.to_string();
        };
        let mut jar = CookieJar::new();
        match keys.mode {
            KeyMode::Signed => jar.signed_mut(key).add(cookie),
            KeyMode::Private => jar.private_mut(key).add(cookie),
        }
        jar.delta()
            .next()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// The `Set-Cookie` value that removes the session cookie.
    ///
    /// It has the same name, `Domain`, `Path`, `Secure`, `HttpOnly`,
    /// `SameSite` and `Partitioned` as the cookie it removes, or the
    /// browser would treat it as another cookie and keep the session one.
    #[must_use]
    pub fn removal_cookie(&self) -> String {
        let mut cookie = self.base_cookie(String::new());
        cookie.make_removal();
        cookie.to_string()
    }

    /// The policy with its attributes rendered for [`set_cookie`](Self::set_cookie).
    fn rendered(mut self) -> Self {
        let full = self.base_cookie(String::new()).to_string();
        let prefix = self.name.len() + 1;
        self.attributes = full.get(prefix..).unwrap_or_default().to_owned();
        self
    }

    fn base_cookie(&self, value: String) -> Cookie<'static> {
        let same_site = match self.same_site {
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::None => cookie::SameSite::None,
        };

        let mut cookie = Cookie::build((self.name.clone(), value))
            .path(self.path.clone())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(same_site)
            .partitioned(self.partitioned)
            .build();
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }
}

impl CookiePolicyBuilder {
    /// Sets the cookie name (default `sid`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.policy.name = name.into();
        self
    }

    /// Sets the path (default `/`).
    ///
    /// Two layers on nested paths (`/` and `/admin`) should also use two
    /// cookie names. A browser sends both cookies to the inner path
    /// without saying which path each came from. When they share a name,
    /// the first one that names a live session is used. So once the
    /// inner path's own session has ended, its requests act on the outer
    /// path's session, and a logout there ends that session too.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.policy.path = path.into();
        self
    }

    /// Sets the domain (default none: the cookie goes to this host only).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.policy.domain = Some(domain.into());
        self
    }

    /// Sets `Secure` (default on).
    ///
    /// # Warning
    ///
    /// Off sends the session id over plain HTTP; use it for local
    /// development only.
    pub fn secure(mut self, secure: bool) -> Self {
        self.policy.secure = secure;
        self
    }

    /// Sets `HttpOnly` (default on).
    ///
    /// # Warning
    ///
    /// Off lets page scripts, and so any injected script, read the id.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.policy.http_only = http_only;
        self
    }

    /// Sets `SameSite` (default `Lax`).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.policy.same_site = same_site;
        self
    }

    /// Sets `Partitioned` (CHIPS; default off). Requires `Secure`.
    pub fn partitioned(mut self, partitioned: bool) -> Self {
        self.policy.partitioned = partitioned;
        self
    }

    /// Signs or encrypts the cookie value (default neither).
    pub fn keys(mut self, keys: CookieKeys) -> Self {
        self.policy.keys = Some(keys);
        self
    }

    /// How many same-name cookies of one request are tried, in the order
    /// the request sends them, the first that names a live session being
    /// used (default 4).
    pub fn max_candidates(mut self, max: usize) -> Self {
        self.policy.max_candidates = max.max(1);
        self
    }

    /// Checks the combination and returns the policy.
    ///
    /// # Errors
    ///
    /// A [`CookiePolicyError`] naming the rule broken: an invalid name,
    /// path or domain; `SameSite=None` or `Partitioned` without `Secure`;
    /// a `__Host-` or `__Secure-` name whose attributes break the prefix
    /// rules; signing or encryption without a key.
    pub fn build(self) -> Result<CookiePolicy, CookiePolicyError> {
        let policy = self.policy;

        if !is_token(&policy.name) {
            return Err(CookiePolicyError::InvalidName(policy.name));
        }
        if !policy.path.starts_with('/') || has_forbidden(&policy.path, false) {
            return Err(CookiePolicyError::InvalidPath(policy.path));
        }
        if let Some(domain) = &policy.domain {
            if domain.is_empty() || has_forbidden(domain, true) {
                return Err(CookiePolicyError::InvalidDomain(domain.clone()));
            }
        }
        if policy.same_site == SameSite::None && !policy.secure {
            return Err(CookiePolicyError::SameSiteNoneWithoutSecure);
        }
        if policy.partitioned && !policy.secure {
            return Err(CookiePolicyError::PartitionedWithoutSecure);
        }

        let lower = policy.name.to_ascii_lowercase();
        let host_ok = policy.secure && policy.domain.is_none() && policy.path == "/";
        if lower.starts_with("__host-") && !host_ok {
            return Err(CookiePolicyError::HostPrefix);
        }
        if lower.starts_with("__secure-") && !policy.secure {
            return Err(CookiePolicyError::SecurePrefix);
        }
        if policy
            .keys
            .as_ref()
            .is_some_and(|keys| keys.keys.is_empty())
        {
            return Err(CookiePolicyError::NoKeys);
        }
        Ok(policy.rendered())
    }
}

fn is_token(name: &str) -> bool {
    const SEPARATORS: &str = "()<>@,;:\\\"/[]?={} \t";
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !SEPARATORS.as_bytes().contains(&b))
}

fn has_forbidden(text: &str, no_space: bool) -> bool {
    text.chars()
        .any(|c| c == ';' || c.is_control() || !c.is_ascii() || (no_space && c == ' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(header: &str) -> Vec<String> {
        header
            .split(';')
            .skip(1)
            .map(|part| part.trim().to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn defaults_are_http_only_secure_lax_root() {
        let policy = CookiePolicy::default();
        let id = Id::random();

        let header = policy.set_cookie(&id, Some(Duration::seconds(60)));
        let attrs = attrs(&header);

        assert!(header.starts_with(&format!("sid={}", id.encode())));
        for wanted in ["httponly", "secure", "samesite=lax", "path=/", "max-age=60"] {
            assert!(attrs.contains(&wanted.to_owned()), "{header}");
        }
    }

    #[test]
    fn the_prerendered_header_is_what_the_cookie_crate_writes() {
        let policies = [
            CookiePolicy::default(),
            CookiePolicy::cross_site()
                .partitioned(true)
                .build()
                .unwrap(),
            CookiePolicy::builder()
                .name("app_session")
                .path("/app")
                .domain("example.com")
                .http_only(false)
                .same_site(SameSite::Strict)
                .build()
                .unwrap(),
            CookiePolicy::builder().secure(false).build().unwrap(),
        ];
        let id = Id::random();

        for policy in policies {
            for max_age in [None, Some(Duration::seconds(86_400)), Some(Duration::ZERO)] {
                let mut expected = policy.base_cookie(id.encode());
                if let Some(max_age) = max_age {
                    expected.set_max_age(max_age);
                }

                assert_eq!(policy.set_cookie(&id, max_age), expected.to_string());
            }
        }
    }

    #[test]
    fn max_age_rounds_up_partial_seconds() {
        let policy = CookiePolicy::default();

        let header = policy.set_cookie(&Id::random(), Some(Duration::milliseconds(1_200)));

        assert!(attrs(&header).contains(&"max-age=2".to_owned()), "{header}");
    }

    #[test]
    fn browser_session_cookie_has_no_max_age() {
        let header = CookiePolicy::default().set_cookie(&Id::random(), None);

        assert!(!header.to_ascii_lowercase().contains("max-age"));
        assert!(!header.to_ascii_lowercase().contains("expires"));
    }

    #[test]
    fn c15_same_site_none_without_secure_is_refused() {
        let built = CookiePolicy::builder()
            .same_site(SameSite::None)
            .secure(false)
            .build();

        assert_eq!(
            built.unwrap_err(),
            CookiePolicyError::SameSiteNoneWithoutSecure
        );
        let partitioned = CookiePolicy::builder()
            .partitioned(true)
            .secure(false)
            .build();
        assert_eq!(
            partitioned.unwrap_err(),
            CookiePolicyError::PartitionedWithoutSecure
        );
    }

    #[test]
    fn c15_cross_site_preset_is_none_and_secure() {
        let policy = CookiePolicy::cross_site()
            .partitioned(true)
            .build()
            .expect("valid");

        let attrs = attrs(&policy.set_cookie(&Id::random(), None));

        for wanted in ["samesite=none", "secure", "partitioned"] {
            assert!(attrs.contains(&wanted.to_owned()), "{attrs:?}");
        }
    }

    #[test]
    fn host_prefix_rules_are_enforced() {
        let with_domain = CookiePolicy::builder()
            .name("__Host-sid")
            .domain("example.test")
            .build();
        let with_path = CookiePolicy::builder()
            .name("__Host-sid")
            .path("/app")
            .build();
        let fine = CookiePolicy::builder().name("__Host-sid").build();

        assert_eq!(with_domain.unwrap_err(), CookiePolicyError::HostPrefix);
        assert_eq!(with_path.unwrap_err(), CookiePolicyError::HostPrefix);
        assert!(fine.is_ok());
        let insecure = CookiePolicy::builder()
            .name("__Secure-x")
            .secure(false)
            .build();
        assert_eq!(insecure.unwrap_err(), CookiePolicyError::SecurePrefix);
    }

    #[test]
    fn bad_names_paths_and_domains_are_refused() {
        for name in ["", "a b", "a;b", "a=b", "sé"] {
            let built = CookiePolicy::builder().name(name).build();
            assert!(
                matches!(built, Err(CookiePolicyError::InvalidName(_))),
                "{name}"
            );
        }
        let path = CookiePolicy::builder().path("app").build();
        assert!(matches!(path, Err(CookiePolicyError::InvalidPath(_))));
        let domain = CookiePolicy::builder().domain("a;b").build();
        assert!(matches!(domain, Err(CookiePolicyError::InvalidDomain(_))));
    }

    #[test]
    fn c13_removal_cookie_matches_domain_path_and_flags() {
        let policy = CookiePolicy::builder()
            .domain(".example.test")
            .path("/app")
            .same_site(SameSite::Strict)
            .build()
            .expect("valid");

        let removal = policy.removal_cookie();
        let attrs = attrs(&removal);

        assert!(removal.starts_with("sid=;"), "{removal}");
        for wanted in [
            "domain=example.test",
            "path=/app",
            "secure",
            "httponly",
            "samesite=strict",
            "max-age=0",
        ] {
            assert!(attrs.contains(&wanted.to_owned()), "{removal}");
        }
        assert!(attrs.iter().any(|a| a.starts_with("expires=")), "{removal}");
    }

    #[test]
    fn c16_every_same_name_cookie_is_a_candidate_in_order() {
        let policy = CookiePolicy::default();
        let (dead, live) = (Id::random(), Id::random());
        let header = format!("other=1; sid={}; sid={}", dead.encode(), live.encode());

        let ids = policy.session_ids([header.as_str()]);

        assert_eq!(ids, vec![dead, live]);
    }

    #[test]
    fn c30_malformed_values_give_no_candidates() {
        let policy = CookiePolicy::default();
        let huge = format!("sid={}", "A".repeat(10_000));
        let wrong_alphabet = format!("sid={}", "*".repeat(22));
        let headers = [
            "sid=",
            huge.as_str(),
            "sid=élan",
            "sid=../../etc/passwd",
            "sid=\u{1}\u{2}",
            "sid=%%%",
            wrong_alphabet.as_str(),
            "sid",
            ";;;",
        ];

        for header in headers {
            assert!(policy.session_ids([header]).is_empty(), "{header:?}");
        }
    }

    #[test]
    fn candidates_are_bounded() {
        let policy = CookiePolicy::default();
        let header: Vec<String> = (0..100)
            .map(|_| format!("sid={}", Id::random().encode()))
            .collect();
        let header = header.join("; ");

        assert_eq!(policy.session_ids([header.as_str()]).len(), 4);
    }

    #[test]
    fn signed_cookies_verify_and_rotate() {
        let (old, new) = (Key::generate(), Key::generate());
        let before = CookiePolicy::builder()
            .keys(CookieKeys::signed(vec![old.clone()]))
            .build()
            .expect("valid");
        let after = CookiePolicy::builder()
            .keys(CookieKeys::signed(vec![new, old]))
            .build()
            .expect("valid");
        let id = Id::random();

        let header = before.set_cookie(&id, None);
        let pair = header.split(';').next().unwrap_or_default();

        assert_eq!(after.session_ids([pair]), vec![id]);
        let forged = format!("sid={}", id.encode());
        assert!(after.session_ids([forged.as_str()]).is_empty());
    }

    #[test]
    fn private_cookies_hide_the_id() {
        let policy = CookiePolicy::builder()
            .keys(CookieKeys::private(vec![Key::generate()]))
            .build()
            .expect("valid");
        let id = Id::random();

        let header = policy.set_cookie(&id, None);
        let pair = header.split(';').next().unwrap_or_default();

        assert!(!pair.contains(&id.encode()));
        assert_eq!(policy.session_ids([pair]), vec![id]);
    }
}

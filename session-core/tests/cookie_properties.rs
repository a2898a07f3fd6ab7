//! Properties of the cookie policy over every combination the builder is
//! given: what it refuses, and what the cookies it accepts look like.
//!
//! Emitted headers are read back with a small parser written here from
//! RFC 6265 rather than with the `cookie` crate that wrote them, so a
//! mistake in that crate is not hidden by reading with it too.

use proptest::prelude::*;
use session_core::time::Duration;
use session_core::{CookieKeys, CookiePolicy, CookiePolicyError, Id, Key, SameSite};

/// Everything the builder can be told.
#[derive(Debug, Clone)]
struct Spec {
    name: String,
    path: Option<String>,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    partitioned: bool,
    keys: Option<(bool, Vec<[u8; 64]>)>,
    max_candidates: usize,
    /// Starts from [`CookiePolicy::cross_site`]; `secure` and `same_site`
    /// then hold what the preset promises to set.
    cross_site: bool,
}

impl Spec {
    fn build(&self) -> Result<CookiePolicy, CookiePolicyError> {
        // The preset must itself set what `secure` and `same_site` say.
        let mut builder = if self.cross_site {
            CookiePolicy::cross_site()
        } else {
            CookiePolicy::builder()
                .secure(self.secure)
                .same_site(self.same_site)
        };
        builder = builder
            .name(self.name.clone())
            .http_only(self.http_only)
            .partitioned(self.partitioned)
            .max_candidates(self.max_candidates);
        if let Some(path) = &self.path {
            builder = builder.path(path.clone());
        }
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.clone());
        }
        if let Some((encrypt, raw)) = &self.keys {
            let keys = raw.iter().map(|bytes| Key::from(bytes)).collect();
            builder = builder.keys(if *encrypt {
                CookieKeys::private(keys)
            } else {
                CookieKeys::signed(keys)
            });
        }
        builder.build()
    }

    /// The rules this spec breaks, from RFC 6265 and the browsers' cookie
    /// prefix and `SameSite`/`Partitioned` rules; empty when it is valid.
    fn broken_rules(&self) -> Vec<Rule> {
        let mut broken = Vec::new();
        let path = self.path.as_deref().unwrap_or("/");
        let lower = self.name.to_ascii_lowercase();

        if !is_rfc_token(&self.name) {
            broken.push(Rule::Name);
        }
        if !path.starts_with('/') || !path.chars().all(is_path_char) {
            broken.push(Rule::Path);
        }
        if let Some(domain) = &self.domain {
            if domain.is_empty() || !domain.chars().all(is_domain_char) {
                broken.push(Rule::Domain);
            }
        }
        if self.same_site == SameSite::None && !self.secure {
            broken.push(Rule::NoneNeedsSecure);
        }
        if self.partitioned && !self.secure {
            broken.push(Rule::PartitionedNeedsSecure);
        }
        let host_ok = self.secure && self.domain.is_none() && path == "/";
        if lower.starts_with("__host-") && !host_ok {
            broken.push(Rule::HostPrefix);
        }
        if lower.starts_with("__secure-") && !self.secure {
            broken.push(Rule::SecurePrefix);
        }
        if matches!(&self.keys, Some((_, keys)) if keys.is_empty()) {
            broken.push(Rule::Keys);
        }
        broken
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Name,
    Path,
    Domain,
    NoneNeedsSecure,
    PartitionedNeedsSecure,
    HostPrefix,
    SecurePrefix,
    Keys,
}

fn rule_of(error: &CookiePolicyError) -> Option<Rule> {
    Some(match error {
        CookiePolicyError::InvalidName(_) => Rule::Name,
        CookiePolicyError::InvalidPath(_) => Rule::Path,
        CookiePolicyError::InvalidDomain(_) => Rule::Domain,
        CookiePolicyError::SameSiteNoneWithoutSecure => Rule::NoneNeedsSecure,
        CookiePolicyError::PartitionedWithoutSecure => Rule::PartitionedNeedsSecure,
        CookiePolicyError::HostPrefix => Rule::HostPrefix,
        CookiePolicyError::SecurePrefix => Rule::SecurePrefix,
        CookiePolicyError::NoKeys => Rule::Keys,
        _ => return None,
    })
}

/// RFC 6265 `cookie-name`: an RFC 2616 token.
fn is_rfc_token(name: &str) -> bool {
    let separator = |c: char| "()<>@,;:\\\"/[]?={} \t".contains(c);
    !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic() && !separator(c))
}

/// RFC 6265 `path-value`: any CHAR but controls and `;`.
fn is_path_char(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_control() && c != ';'
}

/// What a `Domain` may hold here: a path character that is not a space.
fn is_domain_char(c: char) -> bool {
    is_path_char(c) && c != ' '
}

/// A `Set-Cookie` header taken apart: name, value, attributes by
/// lower-case name with their values.
#[derive(Debug, PartialEq)]
struct SetCookie {
    name: String,
    value: String,
    attrs: Vec<(String, Option<String>)>,
}

impl SetCookie {
    fn parse(header: &str) -> Self {
        let mut parts = header.split(';');
        let (name, value) = parts
            .next()
            .and_then(|pair| pair.split_once('='))
            .expect("a name=value pair first");

        let attrs = parts
            .map(|attr| match attr.trim().split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_owned())),
                None => (attr.trim().to_ascii_lowercase(), None),
            })
            .collect();
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
            attrs,
        }
    }

    fn has(&self, attr: &str) -> bool {
        self.attrs.iter().any(|(k, _)| k == attr)
    }

    fn get(&self, attr: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == attr)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The attributes that make a removal hit this cookie and not another.
    fn identity(&self) -> Vec<(String, Option<String>)> {
        const SCOPE: [&str; 6] = [
            "domain",
            "path",
            "secure",
            "httponly",
            "samesite",
            "partitioned",
        ];
        let mut attrs: Vec<_> = self
            .attrs
            .iter()
            .filter(|(k, _)| SCOPE.contains(&k.as_str()))
            .cloned()
            .collect();
        attrs.sort();
        attrs
    }
}

/// A header value as `http::HeaderValue` accepts it: visible ASCII,
/// spaces and tabs. The middleware drops a cookie that is not.
fn is_header_value(text: &str) -> bool {
    text.bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fn name_strategy() -> impl Strategy<Value = String> {
    let token = "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}";
    prop_oneof![
        3 => token.prop_map(String::from),
        2 => ("(__Host-|__host-|__HOST-)", token).prop_map(|(p, t)| p + &t),
        2 => ("(__Secure-|__secure-)", token).prop_map(|(p, t)| p + &t),
        1 => Just(String::new()),
        2 => "[a-z]{0,4}[ ;=,\"()/\\\\@\t\u{1}\u{7f}é][a-z]{0,4}",
    ]
}

fn path_strategy() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        2 => Just(Some("/".to_owned())),
        3 => "/[a-z0-9/._ -]{0,12}".prop_map(Some),
        2 => "[a-z/]{0,3}[;\u{0}\n\u{7f}é]?[a-z]{0,3}".prop_map(Some),
    ]
}

fn domain_strategy() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(None),
        3 => "\\.?[a-z0-9-]{1,8}(\\.[a-z]{2,4}){0,2}".prop_map(Some),
        2 => "[a-z.]{0,4}[ ;\t\u{1}é]?[a-z.]{0,4}".prop_map(Some),
    ]
}

fn same_site_strategy() -> impl Strategy<Value = SameSite> {
    prop_oneof![
        Just(SameSite::Strict),
        Just(SameSite::Lax),
        Just(SameSite::None)
    ]
}

fn keys_strategy() -> impl Strategy<Value = Option<(bool, Vec<[u8; 64]>)>> {
    let key = prop::collection::vec(any::<u8>(), 64)
        .prop_map(|bytes| <[u8; 64]>::try_from(bytes).expect("64 bytes"));
    prop_oneof![
        2 => Just(None),
        3 => (any::<bool>(), prop::collection::vec(key, 0..3)).prop_map(Some),
    ]
}

prop_compose! {
    fn spec()(
        name in name_strategy(),
        path in path_strategy(),
        domain in domain_strategy(),
        secure in any::<bool>(),
        http_only in any::<bool>(),
        same_site in same_site_strategy(),
        partitioned in any::<bool>(),
        keys in keys_strategy(),
        max_candidates in 0usize..6,
        cross_site in any::<bool>(),
    ) -> Spec {
        let (secure, same_site) = if cross_site {
            (true, SameSite::None)
        } else {
            (secure, same_site)
        };
        Spec {
            name, path, domain, secure, http_only, same_site, partitioned,
            keys, max_candidates, cross_site,
        }
    }
}

fn max_age_strategy() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        1 => Just(None),
        3 => (-10_000i64..40_000_000, 0i32..1_000_000_000)
            .prop_map(|(s, n)| Some(Duration::new(s, n))),
        1 => prop_oneof![
            Just(Duration::MAX),
            Just(Duration::MIN),
            Just(Duration::ZERO),
            Just(Duration::nanoseconds(1)),
        ]
        .prop_map(Some),
    ]
}

/// The seconds a cookie must live for a session with `max_age` left.
fn wanted_max_age(max_age: Duration) -> i128 {
    let nanos = max_age.whole_nanoseconds();
    let seconds = nanos.div_euclid(1_000_000_000);
    let ceil = seconds + i128::from(nanos.rem_euclid(1_000_000_000) > 0);
    ceil.max(0)
}

proptest! {
    // Failures found here become named tests in regress_*.rs files, so
    // proptest need not keep its own regression files.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_builder_refuses_exactly_the_invalid_combinations(spec in spec()) {
        let broken = spec.broken_rules();

        match spec.build() {
            Ok(_) => prop_assert!(broken.is_empty(), "accepted despite {broken:?}"),
            Err(error) => {
                let rule = rule_of(&error);
                prop_assert!(
                    rule.is_some_and(|rule| broken.contains(&rule)),
                    "refused with {error:?}, broken {broken:?}"
                );
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }

    #[test]
    fn accepted_cookies_keep_the_browser_rules(
        spec in spec(),
        id in any::<[u8; 16]>(),
        max_age in max_age_strategy(),
    ) {
        let Ok(policy) = spec.build() else {
            return Ok(());
        };
        let id = Id::from_bytes(id);

        let set = policy.set_cookie(&id, max_age);
        let removal = policy.removal_cookie();

        for header in [&set, &removal] {
            prop_assert!(is_header_value(header), "not a header value: {header:?}");
            let cookie = SetCookie::parse(header);
            prop_assert_eq!(&cookie.name, policy.name());
            let cross = cookie.get("samesite") == Some("None") || cookie.has("partitioned");
            prop_assert!(!cross || cookie.has("secure"), "cross-site, not Secure: {header}");
            if policy.name().to_ascii_lowercase().starts_with("__host-") {
                prop_assert!(!cookie.has("domain"), "__Host- with Domain: {header}");
                prop_assert_eq!(cookie.get("path"), Some("/"), "{}", header);
            }
            if policy.name().to_ascii_lowercase().starts_with("__secure-") {
                prop_assert!(cookie.has("secure"), "__Secure- not Secure: {header}");
            }
        }
    }

    #[test]
    fn a_removal_cookie_has_the_scope_of_the_cookie_it_removes(
        spec in spec(),
        id in any::<[u8; 16]>(),
        max_age in max_age_strategy(),
    ) {
        let Ok(policy) = spec.build() else {
            return Ok(());
        };

        let set = SetCookie::parse(&policy.set_cookie(&Id::from_bytes(id), max_age));
        let removal = SetCookie::parse(&policy.removal_cookie());

        prop_assert_eq!(&removal.name, &set.name);
        prop_assert_eq!(removal.value.as_str(), "");
        prop_assert_eq!(removal.get("max-age"), Some("0"));
        prop_assert_eq!(removal.identity(), set.identity());
        prop_assert_eq!(set.has("secure"), policy.secure());
        prop_assert_eq!(set.has("httponly"), policy.http_only());
        prop_assert_eq!(set.has("partitioned"), policy.partitioned());
    }

    #[test]
    fn every_set_cookie_reads_back_as_its_id(
        spec in spec(),
        ids in prop::collection::vec(any::<[u8; 16]>(), 1..7),
        max_age in max_age_strategy(),
    ) {
        let Ok(policy) = spec.build() else {
            return Ok(());
        };
        let ids: Vec<Id> = ids.into_iter().map(Id::from_bytes).collect();

        // What a browser sends back: the name=value pairs, in one header.
        let pairs: Vec<String> = ids
            .iter()
            .map(|id| {
                let set = policy.set_cookie(id, max_age);
                set.split(';').next().unwrap_or_default().to_owned()
            })
            .collect();
        let first = policy.session_ids([pairs[0].as_str()]);
        let joined = pairs.join("; ");
        let all = policy.session_ids([joined.as_str()]);

        prop_assert_eq!(first, vec![ids[0]]);
        let limit = spec.max_candidates.max(1);
        let mut wanted: Vec<Id> = Vec::new();
        for id in ids.iter().copied() {
            if !wanted.contains(&id) && wanted.len() < limit {
                wanted.push(id);
            }
        }
        prop_assert_eq!(all, wanted);
    }

    #[test]
    fn max_age_never_ends_the_cookie_before_the_session(
        max_age in max_age_strategy(),
    ) {
        let policy = CookiePolicy::default();

        let set = SetCookie::parse(&policy.set_cookie(&Id::from_bytes([7; 16]), max_age));

        match max_age {
            None => prop_assert!(!set.has("max-age") && !set.has("expires")),
            Some(max_age) => {
                let sent: i128 = set
                    .get("max-age")
                    .and_then(|v| v.parse().ok())
                    .expect("a numeric Max-Age");
                let wanted = wanted_max_age(max_age).min(i128::from(i64::MAX));
                prop_assert_eq!(sent, wanted, "for {:?}", max_age);
            }
        }
    }
}

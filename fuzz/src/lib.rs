//! Fixtures the fuzz targets share: cookie policies with fixed keys, so
//! that a crash found once reproduces from its input file alone.

use session_core::{CookieKeys, CookiePolicy, Key, SameSite};

/// The key that signs or encrypts new cookies in the keyed policies.
#[must_use]
pub fn new_key() -> Key {
    Key::from(&[0x5a; 64])
}

/// A retired key still accepted when reading, as after a rotation.
#[must_use]
pub fn old_key() -> Key {
    Key::from(&[0xa5; 64])
}

/// A signed policy that signs with `keys[0]` and accepts all of them.
#[must_use]
pub fn signed(keys: Vec<Key>) -> CookiePolicy {
    build(CookiePolicy::builder().keys(CookieKeys::signed(keys)))
}

/// An encrypting policy that encrypts with `keys[0]` and accepts all.
#[must_use]
pub fn private(keys: Vec<Key>) -> CookiePolicy {
    build(CookiePolicy::builder().keys(CookieKeys::private(keys)))
}

/// The policies a request header is read with: plain under two names,
/// one candidate only, signed and encrypted with a rotated key.
#[must_use]
pub fn policies() -> Vec<CookiePolicy> {
    let host = CookiePolicy::cross_site()
        .name("__Host-sid")
        .partitioned(true)
        .same_site(SameSite::None);

    vec![
        build(CookiePolicy::builder()),
        build(host),
        build(CookiePolicy::builder().max_candidates(1)),
        signed(vec![new_key(), old_key()]),
        private(vec![new_key(), old_key()]),
    ]
}

/// The `name=value` pair of a `Set-Cookie` header: what a browser sends.
#[must_use]
pub fn pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap_or_default()
}

/// A single-threaded runtime with timers, for targets that drive async
/// code one input at a time.
#[must_use]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

fn build(builder: session_core::CookiePolicyBuilder) -> CookiePolicy {
    // Fixed, valid settings: a refusal here is a bug in the fixture.
    builder.build().expect("fixture policy is valid")
}

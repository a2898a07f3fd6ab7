//! Found by `cookie_properties`: a `max_age` within a second of
//! `Duration::MAX` overflowed while rounding up to whole seconds, a panic
//! in debug builds and, wrapped in release builds, `Max-Age=0`: a cookie
//! that died at once.

use session_core::time::Duration;
use session_core::{CookiePolicy, Id};

fn max_age_of(header: &str) -> Option<&str> {
    header
        .split(';')
        .find_map(|attr| attr.trim().strip_prefix("Max-Age="))
}

#[test]
fn the_longest_max_age_saturates_instead_of_overflowing() {
    let policy = CookiePolicy::default();

    let header = policy.set_cookie(&Id::from_bytes([1; 16]), Some(Duration::MAX));

    assert_eq!(max_age_of(&header), Some(i64::MAX.to_string().as_str()));
}

#[test]
fn the_most_negative_max_age_is_zero() {
    let policy = CookiePolicy::default();

    let header = policy.set_cookie(&Id::from_bytes([1; 16]), Some(Duration::MIN));

    assert_eq!(max_age_of(&header), Some("0"));
}

//! Arbitrary `Cookie` request headers, read the way the middleware reads
//! them: every policy must return few, distinct ids and never panic.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use session_core::CookiePolicy;

fn policies() -> &'static [CookiePolicy] {
    static POLICIES: OnceLock<Vec<CookiePolicy>> = OnceLock::new();
    POLICIES.get_or_init(session_fuzz::policies)
}

fuzz_target!(|data: &[u8]| {
    // A request may carry several Cookie headers; a newline cannot occur
    // inside one, so it separates them here. Bytes outside UTF-8 are read
    // leniently, as `SessionService` does.
    let headers: Vec<String> = data
        .split(|&b| b == b'\n')
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();

    for (i, policy) in policies().iter().enumerate() {
        let ids = policy.session_ids(headers.iter().map(String::as_str));

        let limit = if i == 2 { 1 } else { 4 };
        assert!(ids.len() <= limit, "{} candidates", ids.len());
        for (j, id) in ids.iter().enumerate() {
            assert!(!ids[..j].contains(id), "duplicate candidate");
        }
        // Unkeyed policies read the id as written: it must be there.
        if i < 3 {
            for id in &ids {
                let text = id.encode();
                assert!(headers.iter().any(|h| h.contains(&text)), "invented id");
            }
        }
    }
});

//! The futures the middleware makes per request stay small: each is
//! moved, and the response future that holds them is allocated, on every
//! request. The rare paths (a first visit's create, a rotation, a
//! conflict's retries, a network store's timer) are boxed so that they
//! do not count here; inline, they made `commit`'s future 1.5 KiB.

use std::sync::Arc;

use session_core::{Session, SessionConfig, Store};
use store_memory::MemoryStore;

#[test]
fn per_request_futures_stay_under_a_kibibyte() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let session = Session::new(store, Arc::new(SessionConfig::default()), Vec::new());

    let commit = std::mem::size_of_val(&session.commit());
    let get = std::mem::size_of_val(&session.get::<u64>("visits"));
    let insert = std::mem::size_of_val(&session.insert("visits", 1_u64));

    for (what, size) in [("commit", commit), ("get", get), ("insert", insert)] {
        assert!(size <= 768, "{what}'s future is {size} bytes");
    }
}

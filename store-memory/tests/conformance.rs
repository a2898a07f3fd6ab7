//! `MemoryStore` against the conformance suite, through its published
//! entry point: one test per case.

use session_conformance::{async_trait, Harness};
use store_memory::MemoryStore;

/// Each namespace is its own cache: in-process stores share nothing.
#[derive(Debug)]
struct Memory;

#[async_trait]
impl Harness for Memory {
    type Store = MemoryStore;

    async fn store(&self, _namespace: &str) -> MemoryStore {
        MemoryStore::new()
    }
}

async fn memory() -> Memory {
    Memory
}

session_conformance::suite!(memory);

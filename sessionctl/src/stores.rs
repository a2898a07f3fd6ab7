//! Opening a store from a URL.

use std::sync::Arc;

use session_core::Store;
use store_memory::MemoryStore;

/// Why a store URL could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreUrlError {
    /// The URL's scheme names no store this build knows.
    #[error("unknown store URL {0:?}: use memory")]
    UnknownScheme(String),
}

/// A store opened from a URL.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// `memory`: this process only.
    Memory(MemoryStore),
}

impl AnyStore {
    /// Opens the store a URL names.
    ///
    /// # Errors
    ///
    /// [`StoreUrlError`] when the URL is unknown or the server is
    /// unreachable.
    pub async fn open(url: &str) -> Result<Self, StoreUrlError> {
        match url {
            "memory" | "memory://" => Ok(Self::Memory(MemoryStore::new())),
            other => Err(StoreUrlError::UnknownScheme(redact(other))),
        }
    }

    /// The store as the session layer takes it.
    #[must_use]
    pub fn shared(&self) -> Arc<dyn Store> {
        match self {
            Self::Memory(store) => Arc::new(store.clone()),
        }
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

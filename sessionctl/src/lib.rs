//! The demo app and store operations of the session workspace, as a
//! library so that tests can serve the same app on a loopback port.
//!
//! ```
//! use sessionctl::demo::{app, DemoOptions};
//! use sessionctl::stores::AnyStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = AnyStore::open("memory").await?;
//! let router = app(store.shared(), &DemoOptions::default())?;
//! # drop(router);
//! # Ok(())
//! # }
//! ```

pub mod demo;
pub mod front;
pub mod stores;

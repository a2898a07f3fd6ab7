//! One function per promise of the store contract.
//!
//! Each takes a [`Harness`](crate::Harness), asks it for stores over fresh
//! namespaces, and returns the first broken promise as a
//! [`Failure`](crate::Failure). The [`suite!`](crate::suite) macro makes
//! one test of each.

mod create;
mod load;
mod save;

pub use self::create::*;
pub use self::load::*;
pub use self::save::*;

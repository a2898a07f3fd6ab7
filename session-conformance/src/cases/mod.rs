//! One function per promise of the store contract.
//!
//! Each takes a [`Harness`](crate::Harness), asks it for stores over fresh
//! namespaces, and returns the first broken promise as a
//! [`Failure`](crate::Failure). The [`suite!`](crate::suite) macro makes
//! one test of each.

mod create;
mod delete;
mod load;
mod namespace;
mod principal;
mod round_trip;
mod save;
mod size;
mod touch;

pub use self::create::*;
pub use self::delete::*;
pub use self::load::*;
pub use self::namespace::*;
pub use self::principal::*;
pub use self::round_trip::*;
pub use self::save::*;
pub use self::size::*;
pub use self::touch::*;

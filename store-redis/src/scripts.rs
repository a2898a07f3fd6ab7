//! The store's server-side scripts.
//!
//! Each script carries only what it needs: Redis runs a script's whole
//! text on every call, so helpers shared through a common prelude would
//! be defined again each time. The one helper that every record script
//! needs, `read.lua`'s reading of a stored record, is put in front of
//! each of them. The store sends a
//! script by its SHA-1 (`EVALSHA`) and loads it (`SCRIPT LOAD`, on every
//! master of a cluster) only when the server answers that it does not
//! know it, so a script crosses the network once per server, and again
//! after a restart or a `SCRIPT FLUSH`.

use std::sync::LazyLock;

use redis::Script;

/// The text of a script that reads records: `read.lua`'s function, then
/// the script's own.
macro_rules! with_read {
    ($script:literal) => {
        concat!(include_str!("lua/read.lua"), include_str!($script))
    };
}

/// Every script, hashed once per process.
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) save: Script,
    pub(crate) touch: Script,
    pub(crate) delete: Script,
    pub(crate) revoke_one: Script,
    pub(crate) revoke_all: Script,
    pub(crate) index_add: Script,
}

/// The scripts; built on first use.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: Script::new(with_read!("lua/create.lua")),
    save: Script::new(with_read!("lua/save.lua")),
    touch: Script::new(with_read!("lua/touch.lua")),
    delete: Script::new(with_read!("lua/delete.lua")),
    revoke_one: Script::new(with_read!("lua/revoke_one.lua")),
    revoke_all: Script::new(with_read!("lua/revoke_all.lua")),
    index_add: Script::new(include_str!("lua/index_add.lua")),
});

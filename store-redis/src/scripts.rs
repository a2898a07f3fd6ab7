//! The store's server-side scripts.
//!
//! Each script is `common.lua` followed by its own body (and `write.lua`
//! for the two that write a record). [`redis::Script`] sends them by
//! their SHA-1 (`EVALSHA`) and loads them only when the server answers
//! that it does not know one, so a script crosses the network once per
//! server (and again after a restart or a `SCRIPT FLUSH`).

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($($file:literal),+) => {
        Script::new(concat!(include_str!("lua/common.lua"), $(include_str!($file)),+))
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
    create: script!("lua/write.lua", "lua/create.lua"),
    save: script!("lua/write.lua", "lua/save.lua"),
    touch: script!("lua/touch.lua"),
    delete: script!("lua/delete.lua"),
    revoke_one: script!("lua/revoke_one.lua"),
    revoke_all: script!("lua/revoke_all.lua"),
    index_add: script!("lua/index_add.lua"),
});

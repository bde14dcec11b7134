//! The Lua host: runs the user's own `entry.lua` on each node, with the subset of the engine's
//! Lua API that `connmix-mock/README.md` lists.
//!
//! Design: the node's browser listener hands the script raw TCP bytes, as the engine's
//! `socket` protocol does, and `require("protocols/websocket")` is implemented here in Rust
//! (handshake, framing, masking, frame cap). So an unchanged script runs its own
//! `protocol_input` / `protocol_decode` / `protocol_encode` on the bytes a browser sends,
//! exactly as on the engine. Each node has one VM on a thread of its own ([`host`]).

mod bit;
mod buf;
mod config;
mod conn;
mod host;
mod json;
mod mix;
pub(crate) mod net;
mod services;
mod websocket;

pub use config::{parse_pair, ScriptConfig, DEFAULT_INSTRUCTION_LIMIT};
pub(crate) use host::{check_syntax, spawn};

use mlua::{Lua, Table};

/// Our own `prettyprint` module, in Lua.
const PRETTYPRINT: &str = include_str!("prettyprint.lua");

/// Installs `mix`, `bit`, the host's modules and a `print` that logs.
fn install(lua: &Lua, config: &ScriptConfig) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.set("mix", mix::module(lua, config)?)?;
    bit::install(lua)?;
    conn::install(lua)?;
    // `print` goes to the log, as the engine's goes to its output.
    globals.set(
        "print",
        lua.create_function(|lua, parts: mlua::Variadic<mlua::Value>| {
            let mut text = Vec::new();
            for part in parts.iter() {
                text.push(mix::tostring(lua, part)?);
            }
            tracing::info!(target: "connmix_mock::lua", "{}", text.join("\t"));
            Ok(())
        })?,
    )?;

    let package: Table = globals.get("package")?;
    // The script's own folder first, as the engine's `lua` folder is searched.
    if let Some(dir) = config.path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            ".".into()
        } else {
            dir.display().to_string()
        };
        let path: String = package.get("path")?;
        package.set("path", format!("{dir}/?.lua;{dir}/?/init.lua;{path}"))?;
    }
    let preload: Table = package.get("preload")?;
    let websocket = lua.create_function(|lua, ()| websocket::module(lua))?;
    for name in ["protocols/websocket", "protocols.websocket"] {
        preload.set(name, websocket.clone())?;
    }
    let prettyprint = lua.create_function(|lua, ()| {
        lua.load(PRETTYPRINT)
            .set_name("=prettyprint")
            .call::<mlua::Value>(())
    })?;
    for name in ["prettyprint", "utils.prettyprint", "utils/prettyprint"] {
        preload.set(name, prettyprint.clone())?;
    }
    Ok(())
}

//! The `mix` table: the engine's Lua API, as far as the host provides it.

use std::fmt::Write as _;

use base64::Engine as _;
use connmix_protocol::{ClientId, Payload, RawJson};
use md5::Md5;
use mlua::{Lua, Table, Value as LuaValue, Variadic};
use sha1::{Digest, Sha1};

use super::config::ScriptConfig;
use super::host::HostData;
use super::json;
use crate::counters::bump;
use crate::queue::QueueItem;

/// `mix.DEBUG` .. `mix.ERROR`.
const LEVELS: [(&str, i64); 4] = [("DEBUG", 1), ("INFO", 2), ("WARN", 3), ("ERROR", 4)];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `mix.log(level, ...)`: every argument as `tostring` writes it, joined by spaces.
fn log(lua: &Lua, (level, parts): (i64, Variadic<LuaValue>)) -> mlua::Result<bool> {
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(&tostring(lua, part)?);
    }
    let script = lua
        .app_data_ref::<HostData>()
        .map(|d| d.script.clone())
        .unwrap_or_default();
    match level {
        i64::MIN..=1 => tracing::debug!(target: "connmix_mock::lua", %script, "{text}"),
        2 => tracing::info!(target: "connmix_mock::lua", %script, "{text}"),
        3 => tracing::warn!(target: "connmix_mock::lua", %script, "{text}"),
        _ => tracing::error!(target: "connmix_mock::lua", %script, "{text}"),
    }
    Ok(true)
}

/// Lua's own `tostring` of a value.
pub(crate) fn tostring(lua: &Lua, value: &LuaValue) -> mlua::Result<String> {
    let tostring: mlua::Function = lua.globals().get("tostring")?;
    let text: mlua::String = tostring.call(value.clone())?;
    Ok(text.to_string_lossy())
}

/// The connection id a script names: the text `conn:client_id()` gives, or a number.
fn client_id(value: &LuaValue) -> mlua::Result<ClientId> {
    let id = match value {
        LuaValue::String(s) => s.to_string_lossy().trim().parse().ok(),
        LuaValue::Integer(i) => u64::try_from(*i).ok(),
        LuaValue::Number(n) if *n >= 0.0 && n.fract() == 0.0 => Some(*n as u64),
        _ => None,
    };
    id.map(ClientId).ok_or_else(|| {
        mlua::Error::runtime(format!(
            "expected a client id (text or number), got {}",
            value.type_name()
        ))
    })
}

fn payload(data: mlua::String, kind: Option<String>) -> mlua::Result<Payload> {
    match kind.as_deref() {
        None | Some("text") => Ok(Payload::Text(data.to_string_lossy())),
        Some("binary") => Ok(Payload::Binary(data.as_bytes().to_vec())),
        Some(other) => Err(mlua::Error::runtime(format!(
            "unknown frame type `{other}` (text or binary)"
        ))),
    }
}

/// Builds the `mix` table.
pub(crate) fn module(lua: &Lua, config: &ScriptConfig) -> mlua::Result<Table> {
    let mix = lua.create_table()?;
    for (name, level) in LEVELS {
        mix.set(name, level)?;
    }
    mix.set("log", lua.create_function(log)?)?;
    mix.set(
        "json_encode",
        lua.create_function(|_, value: LuaValue| match json::to_json(&value) {
            Ok(json) => Ok((Some(json.to_string()), None)),
            Err(err) => Ok((None, Some(err))),
        })?,
    )?;
    mix.set(
        "json_decode",
        lua.create_function(|lua, text: mlua::String| {
            match serde_json::from_slice::<serde_json::Value>(&text.as_bytes()) {
                Ok(value) => Ok((json::to_lua(lua, &value)?, None)),
                Err(err) => Ok((LuaValue::Nil, Some(err.to_string()))),
            }
        })?,
    )?;
    mix.set(
        "base64_encode",
        lua.create_function(|_, data: mlua::String| {
            Ok(base64::engine::general_purpose::STANDARD.encode(data.as_bytes()))
        })?,
    )?;
    mix.set(
        "base64_decode",
        lua.create_function(|lua, text: mlua::String| {
            match base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
                Ok(bytes) => Ok((Some(lua.create_string(bytes)?), None)),
                Err(err) => Ok((None, Some(err.to_string()))),
            }
        })?,
    )?;
    mix.set(
        "str_split",
        lua.create_function(|lua, (text, sep): (mlua::String, mlua::String)| {
            let text = text.to_string_lossy();
            let sep = sep.to_string_lossy();
            let parts: Vec<String> = if sep.is_empty() {
                text.chars().map(String::from).collect()
            } else {
                text.split(sep.as_str()).map(str::to_owned).collect()
            };
            lua.create_sequence_from(parts)
        })?,
    )?;
    mix.set(
        "bytes_tostring",
        lua.create_function(|lua, bytes: Vec<u8>| lua.create_string(bytes))?,
    )?;
    mix.set(
        "md5",
        lua.create_function(|_, d: mlua::String| Ok(hex(&Md5::digest(d.as_bytes()))))?,
    )?;
    mix.set(
        "md5_bin",
        lua.create_function(|lua, d: mlua::String| lua.create_string(Md5::digest(d.as_bytes())))?,
    )?;
    mix.set(
        "sha1",
        lua.create_function(|_, d: mlua::String| Ok(hex(&Sha1::digest(d.as_bytes()))))?,
    )?;
    mix.set(
        "sha1_bin",
        lua.create_function(|lua, d: mlua::String| lua.create_string(Sha1::digest(d.as_bytes())))?,
    )?;
    mix.set("server", server(lua, config)?)?;
    mix.set("queue", queue(lua)?)?;
    mix.set("mesh", mesh(lua)?)?;
    mix.set("redis", super::services::redis_module(lua)?)?;
    mix.set("http", super::services::http_module(lua)?)?;
    Ok(mix)
}

fn server(lua: &Lua, config: &ScriptConfig) -> mlua::Result<Table> {
    let server = lua.create_table()?;
    let options = config.options.clone();
    server.set(
        "option",
        lua.create_function(move |lua, name: String| {
            if let Some((_, value)) = options.iter().rev().find(|(n, _)| *n == name) {
                return Ok(Some(value.clone()));
            }
            let data = lua.app_data_ref::<HostData>();
            Ok(match name.as_str() {
                "path" => data.map(|d| d.state.cluster.config.chat_path.clone()),
                // The node's id as the center lists it, for scripts that put events on Redis
                // (a consumer must know which node holds the connection to answer it).
                "node_id" => data.map(|d| d.state.runtime.node.addrs.id.to_string()),
                _ => None,
            })
        })?,
    )?;
    Ok(server)
}

fn queue(lua: &Lua) -> mlua::Result<Table> {
    let queue = lua.create_table()?;
    // `mix.queue.new(topic, size)`, as the tutorial's `init()` calls it: creates the topic with
    // its own capacity; a topic that exists keeps its capacity.
    queue.set(
        "new",
        lua.create_function(|lua, (topic, size): (String, Option<usize>)| {
            let Some(data) = lua.app_data_ref::<HostData>() else {
                return Ok((None, Some("no host".to_owned())));
            };
            let size = size.unwrap_or(data.state.cluster.config.topic_size);
            if size == 0 {
                return Ok((None, Some("a queue needs a size of at least 1".to_owned())));
            }
            data.state.runtime.queues.create(&topic, size);
            Ok((Some(true), None))
        })?,
    )?;
    // `n, err = mix.queue.push(topic, data)`: n is the topic's length after the push.
    queue.set(
        "push",
        lua.create_function(|lua, (topic, value): (String, LuaValue)| {
            let json = json::to_json(&value).map_err(mlua::Error::runtime)?;
            let Some(data) = lua.app_data_ref::<HostData>() else {
                return Ok((None, Some("no host".to_owned())));
            };
            // Outside a connection's callback (`init()`) the value has no client: id 0.
            let client = data.current.get().unwrap_or(ClientId(0));
            let counters = &data.state.cluster.counters;
            let item = QueueItem {
                client,
                data: RawJson::from(json),
            };
            let topic = data.state.runtime.queues.topic(&topic);
            match topic.tx.try_send(item) {
                Ok(()) => {
                    bump(&counters.queued);
                    Ok((Some(topic.tx.len()), None))
                }
                Err(_) => {
                    bump(&counters.rejected);
                    Ok((None, Some("the queue is full".to_owned())))
                }
            }
        })?,
    )?;
    Ok(queue)
}

fn mesh(lua: &Lua) -> mlua::Result<Table> {
    let mesh = lua.create_table()?;
    // `err = mix.mesh.send(client_id, data[, type])`.
    mesh.set(
        "send",
        lua.create_function(
            |lua, (id, data, kind): (LuaValue, mlua::String, Option<String>)| {
                let id = client_id(&id)?;
                let payload = payload(data, kind)?;
                let Some(host) = lua.app_data_ref::<HostData>() else {
                    return Ok(Some("no host".to_owned()));
                };
                let cluster = host.state.cluster.clone();
                drop(host);
                Ok(cluster.send(id, payload).err().map(|e| e.to_string()))
            },
        )?,
    )?;
    // `success, fail = mix.mesh.publish(channel, data[, type])`.
    mesh.set(
        "publish",
        lua.create_function(
            |lua, (channel, data, kind): (String, mlua::String, Option<String>)| {
                let payload = payload(data, kind)?;
                let Some(host) = lua.app_data_ref::<HostData>() else {
                    return Ok((0, 0));
                };
                let cluster = host.state.cluster.clone();
                drop(host);
                let result = cluster.publish(&channel, payload);
                Ok((result.delivered().unwrap_or(0), result.failed.unwrap_or(0)))
            },
        )?,
    )?;
    Ok(mesh)
}

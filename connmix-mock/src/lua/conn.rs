//! `conn`: the object a script gets for one connection.

use connmix_protocol::{ClientId, ConnFunc};
use mlua::{Lua, MetaMethod, UserData, UserDataMethods, Value as LuaValue, Variadic};
use serde_json::{Map, Value};

use super::host::{self, with_conn, HostData};
use super::json;

/// The Lua object of one connection: only its id; the state lives in the VM's table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnRef(pub(crate) ClientId);

/// The Lua half of `wait_context_value`: it must yield from Lua, since a Rust function cannot
/// yield in Lua 5.1.
const WAIT: &str = r#"
local begin, yield = ...
return function(conn, key)
    begin(conn, key)
    return yield()
end
"#;

/// Creates the `wait_context_value` function, kept by the host for the `__index` lookup.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let begin = lua.create_function(|lua, (conn, key): (mlua::UserDataRef<ConnRef>, String)| {
        let id = conn.0;
        with_conn(lua, id, |c| c.waiting_for = Some(key))
            .ok_or_else(|| mlua::Error::runtime(format!("client {id} is not connected")))
    })?;
    let coroutine: mlua::Table = lua.globals().get("coroutine")?;
    let yield_fn: mlua::Function = coroutine.get("yield")?;
    let wait: mlua::Function = lua
        .load(WAIT)
        .set_name("=wait_context_value")
        .call((begin, yield_fn))?;
    if let Some(data) = lua.app_data_ref::<HostData>() {
        *data.wait_fn.borrow_mut() = Some(wait);
    }
    Ok(())
}

fn gone(id: ClientId) -> mlua::Error {
    mlua::Error::runtime(format!("client {id} is not connected"))
}

fn client(lua: &Lua, id: ClientId) -> mlua::Result<std::sync::Arc<crate::client::ClientState>> {
    with_conn(lua, id, |c| c.client.clone()).ok_or_else(|| gone(id))
}

fn auth_key(lua: &Lua) -> String {
    lua.app_data_ref::<HostData>()
        .map(|d| d.state.cluster.config.auth_key.clone())
        .unwrap_or_default()
}

/// `subscribe` / `unsubscribe` as the API's `conn.call` runs them; an error as text.
fn channels_call(lua: &Lua, id: ClientId, func: ConnFunc) -> Option<String> {
    let data = lua.app_data_ref::<HostData>()?;
    let auth = data.state.cluster.config.auth_key.clone();
    data.state
        .runtime
        .conn_call(id, func, &auth)
        .err()
        .map(|e| e.to_string())
}

fn to_map(value: Value) -> mlua::Result<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Array(items) if items.is_empty() => Ok(Map::new()),
        _ => Err(mlua::Error::runtime(
            "set_context expects a table with string keys",
        )),
    }
}

impl UserData for ConnRef {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // Ids exceed 2^53, which a Lua 5.1 number cannot hold exactly: text keeps them whole.
        methods.add_method("client_id", |_, this, ()| Ok(this.0.to_string()));
        methods.add_method("remote_addr", |lua, this, ()| {
            with_conn(lua, this.0, |c| c.remote.to_string()).ok_or_else(|| gone(this.0))
        });
        methods.add_method("context", |lua, this, ()| {
            let context = client(lua, this.0)?.context();
            json::to_lua(lua, &Value::Object(context))
        });
        methods.add_method("context_value", |lua, this, key: String| {
            match client(lua, this.0)?.context_value(&key) {
                Some(value) => json::to_lua(lua, &value),
                None => Ok(LuaValue::Nil),
            }
        });
        methods.add_method("set_context", |lua, this, table: mlua::Table| {
            let value = json::to_json(&LuaValue::Table(table)).map_err(mlua::Error::runtime)?;
            let map = to_map(value)?;
            client(lua, this.0)?.set_context(map, &auth_key(lua));
            Ok(())
        });
        methods.add_method(
            "set_context_value",
            |lua, this, (key, value): (String, LuaValue)| {
                let value = json::to_json(&value).map_err(mlua::Error::runtime)?;
                client(lua, this.0)?.set_context_value(key, value, &auth_key(lua));
                Ok(())
            },
        );
        methods.add_method("subscribe", |lua, this, channels: Variadic<String>| {
            let func = ConnFunc::Subscribe {
                channels: channels.into_iter().collect(),
            };
            Ok(channels_call(lua, this.0, func))
        });
        methods.add_method("unsubscribe", |lua, this, channels: Variadic<String>| {
            let func = ConnFunc::Unsubscribe {
                channels: channels.into_iter().collect(),
            };
            Ok(channels_call(lua, this.0, func))
        });
        methods.add_method("close", |lua, this, ()| {
            host::close(lua, this.0, "closed by the script");
            Ok(LuaValue::Nil)
        });
        methods.add_method(
            "send",
            |lua, this, (data, kind): (mlua::String, Option<String>)| {
                let binary = kind.as_deref() == Some("binary");
                let data = data.as_bytes().to_vec();
                Ok(host::send(lua, this.0, &data, binary).err())
            },
        );
        methods.add_method("clear_buffer", |lua, this, ()| {
            with_conn(lua, this.0, |c| c.buffer.clear()).ok_or_else(|| gone(this.0))
        });
        methods.add_meta_method(MetaMethod::Index, |lua, _, key: String| {
            if key != "wait_context_value" {
                return Ok(LuaValue::Nil);
            }
            let data = lua.app_data_ref::<HostData>();
            let wait = data.and_then(|d| d.wait_fn.borrow().clone());
            Ok(wait.map(LuaValue::Function).unwrap_or(LuaValue::Nil))
        });
        // A conn stands for its client id in text, so the docs' older scripts, which get a
        // client id where the later ones get a conn, still print and concatenate it.
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_string()));
        methods.add_meta_function(
            MetaMethod::Concat,
            |lua, (left, right): (LuaValue, LuaValue)| {
                let text = |value: &LuaValue| -> mlua::Result<String> {
                    match value {
                        LuaValue::UserData(ud) => Ok(ud.borrow::<ConnRef>()?.0.to_string()),
                        other => super::mix::tostring(lua, other),
                    }
                };
                Ok(format!("{}{}", text(&left)?, text(&right)?))
            },
        );
    }
}

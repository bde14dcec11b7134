//! `mix.redis` and `mix.http`: calls to real services, made from the node's Lua thread.
//!
//! Both block that thread (as the engine's do block the calling script), never the tokio
//! runtime: Redis through the `redis` crate's synchronous client, HTTP by handing the request
//! to the runtime and waiting for its answer on a channel.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use mlua::{Lua, Table, UserData, UserDataMethods, Value as LuaValue, Variadic};

use super::host::HostData;

/// How long a Redis connect, read or write may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// Default timeout of `mix.http.request`.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The VM's service connections.
pub(crate) struct Services {
    /// Configured Redis URLs by name.
    redis_urls: HashMap<String, String>,
    /// Open connections by name, made on first use.
    redis: RefCell<HashMap<String, redis::Connection>>,
    http: reqwest::Client,
}

impl Services {
    pub(crate) fn new(redis: &[(String, String)]) -> Self {
        Self {
            redis_urls: redis.iter().cloned().collect(),
            redis: RefCell::new(HashMap::new()),
            http: reqwest::Client::new(),
        }
    }
}

/// `redis`: a named Redis connection.
struct RedisRef(String);

fn connect(url: &str) -> Result<redis::Connection, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let conn = client
        .get_connection_with_timeout(REDIS_TIMEOUT)
        .map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(REDIS_TIMEOUT))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(REDIS_TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn to_lua(lua: &Lua, value: redis::Value) -> mlua::Result<LuaValue> {
    use redis::Value as R;
    Ok(match value {
        R::Nil => LuaValue::Nil,
        R::Int(n) => LuaValue::Integer(n),
        R::BulkString(bytes) => LuaValue::String(lua.create_string(bytes)?),
        R::SimpleString(text) => LuaValue::String(lua.create_string(text)?),
        R::Okay => LuaValue::String(lua.create_string("OK")?),
        R::Boolean(b) => LuaValue::Boolean(b),
        R::Double(d) => LuaValue::Number(d),
        R::Array(items) | R::Set(items) => {
            let table = lua.create_table()?;
            for (i, item) in items.into_iter().enumerate() {
                table.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
        R::Map(pairs) => {
            let table = lua.create_table()?;
            for (key, item) in pairs {
                table.raw_set(to_lua(lua, key)?, to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
        other => LuaValue::String(lua.create_string(format!("{other:?}"))?),
    })
}

impl UserData for RedisRef {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // `any, err = redis:command("set", "key", "value")`.
        methods.add_method("command", |lua, this, args: Variadic<LuaValue>| {
            let mut args = args.into_iter();
            let Some(name) = args.next() else {
                return Err(mlua::Error::runtime("redis:command needs a command name"));
            };
            let mut cmd = redis::cmd(&super::mix::tostring(lua, &name)?);
            for arg in args {
                match arg {
                    LuaValue::String(s) => cmd.arg(s.as_bytes().to_vec()),
                    other => cmd.arg(super::mix::tostring(lua, &other)?),
                };
            }
            let Some(data) = lua.app_data_ref::<HostData>() else {
                return Ok((LuaValue::Nil, Some("no host".to_owned())));
            };
            let mut open = data.services.redis.borrow_mut();
            if !open.contains_key(&this.0) {
                let url = data.services.redis_urls.get(&this.0).cloned();
                let Some(url) = url else {
                    return Ok((LuaValue::Nil, Some(format!("no redis `{}`", this.0))));
                };
                match connect(&url) {
                    Ok(conn) => open.insert(this.0.clone(), conn),
                    Err(err) => return Ok((LuaValue::Nil, Some(err))),
                };
            }
            let Some(conn) = open.get_mut(&this.0) else {
                return Ok((LuaValue::Nil, Some("not connected".to_owned())));
            };
            match cmd.query::<redis::Value>(conn) {
                Ok(value) => Ok((to_lua(lua, value)?, None)),
                Err(err) => {
                    if err.is_io_error() || err.is_connection_dropped() {
                        // Reconnect on the next command.
                        open.remove(&this.0);
                    }
                    Ok((LuaValue::Nil, Some(err.to_string())))
                }
            }
        });
    }
}

/// `mix.redis.connection(name)`: the connection configured under `name`.
pub(crate) fn redis_module(lua: &Lua) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    module.set(
        "connection",
        lua.create_function(|lua, name: String| {
            let known = lua
                .app_data_ref::<HostData>()
                .is_some_and(|d| d.services.redis_urls.contains_key(&name));
            if !known {
                let err = format!("no redis connection named `{name}` (see --redis NAME=URL)");
                return Ok((None, Some(err)));
            }
            Ok((Some(RedisRef(name)), None))
        })?,
    )?;
    Ok(module)
}

/// A timeout given as seconds or as text such as `500ms`, `10s`, `2m`, `1h`.
fn timeout(value: &LuaValue) -> Option<Duration> {
    match value {
        LuaValue::Integer(n) => u64::try_from(*n).ok().map(Duration::from_secs),
        LuaValue::Number(n) if *n >= 0.0 => Some(Duration::from_secs_f64(*n)),
        LuaValue::String(s) => {
            let text = s.to_string_lossy();
            let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
            let (number, unit) = text.split_at(split);
            let number: f64 = number.parse().ok()?;
            let seconds = match unit {
                "ms" => number / 1000.0,
                "s" => number,
                "m" => number * 60.0,
                "h" => number * 3600.0,
                _ => return None,
            };
            Some(Duration::from_secs_f64(seconds))
        }
        _ => None,
    }
}

struct Request {
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
    auth: Option<(String, String)>,
}

struct Response {
    status: u16,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn request(lua: &Lua, method: &str, url: &str, options: Option<Table>) -> Result<Request, String> {
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("invalid HTTP method `{method}`"))?;
    let mut request = Request {
        method,
        url: url.to_owned(),
        headers: Vec::new(),
        body: None,
        timeout: HTTP_TIMEOUT,
        auth: None,
    };
    let Some(options) = options else {
        return Ok(request);
    };
    let text = |v: LuaValue| super::mix::tostring(lua, &v).map_err(|e| e.to_string());
    if let Ok(LuaValue::String(query)) = options.get::<LuaValue>("query") {
        let sep = if request.url.contains('?') { '&' } else { '?' };
        request.url = format!("{}{sep}{}", request.url, query.to_string_lossy());
    }
    if let Ok(LuaValue::Table(headers)) = options.get::<LuaValue>("headers") {
        for pair in headers.pairs::<LuaValue, LuaValue>() {
            let (name, value) = pair.map_err(|e| e.to_string())?;
            request.headers.push((text(name)?, text(value)?));
        }
    }
    if let Ok(LuaValue::Table(cookies)) = options.get::<LuaValue>("cookies") {
        let mut parts = Vec::new();
        for pair in cookies.pairs::<LuaValue, LuaValue>() {
            let (name, value) = pair.map_err(|e| e.to_string())?;
            parts.push(format!("{}={}", text(name)?, text(value)?));
        }
        if !parts.is_empty() {
            request.headers.push(("cookie".into(), parts.join("; ")));
        }
    }
    if let Ok(LuaValue::String(body)) = options.get::<LuaValue>("body") {
        request.body = Some(body.as_bytes().to_vec());
    }
    if let Ok(value) = options.get::<LuaValue>("timeout") {
        if !value.is_nil() {
            request.timeout =
                timeout(&value).ok_or("invalid timeout (seconds or text like 10s)")?;
        }
    }
    if let Ok(LuaValue::Table(auth)) = options.get::<LuaValue>("auth") {
        let user: Option<String> = auth.get("username").ok();
        let password: Option<String> = auth.get("password").ok();
        request.auth = Some((user.unwrap_or_default(), password.unwrap_or_default()));
    }
    Ok(request)
}

async fn perform(client: reqwest::Client, request: Request) -> Result<Response, String> {
    let mut builder = client
        .request(request.method, &request.url)
        .timeout(request.timeout);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    if let Some((user, password)) = request.auth {
        builder = builder.basic_auth(user, Some(password));
    }
    let response = builder.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let url = response.url().to_string();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_owned(), value)
        })
        .collect();
    let body = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
    Ok(Response {
        status,
        url,
        headers,
        body,
    })
}

fn response_table(lua: &Lua, response: Response) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set("status_code", response.status)?;
    table.set("url", response.url)?;
    table.set("body_size", response.body.len())?;
    table.set("body", lua.create_string(&response.body)?)?;
    let headers = lua.create_table()?;
    let cookies = lua.create_table()?;
    for (name, value) in response.headers {
        if name == "set-cookie" {
            let pair = value.split(';').next().unwrap_or_default();
            if let Some((cookie, content)) = pair.split_once('=') {
                cookies.set(cookie.trim(), content.trim())?;
            }
        }
        let joined = match headers.get::<Option<String>>(name.as_str())? {
            Some(previous) => format!("{previous}, {value}"),
            None => value,
        };
        headers.set(name, joined)?;
    }
    table.set("headers", headers)?;
    table.set("cookies", cookies)?;
    Ok(table)
}

/// `mix.http.request(method, url[, options])`: `resp, err`.
pub(crate) fn http_module(lua: &Lua) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    module.set(
        "request",
        lua.create_function(
            |lua, (method, url, options): (String, String, Option<Table>)| {
                let request = match request(lua, &method, &url, options) {
                    Ok(request) => request,
                    Err(err) => return Ok((None, Some(err))),
                };
                let Some(data) = lua.app_data_ref::<HostData>() else {
                    return Ok((None, Some("no host".to_owned())));
                };
                let client = data.services.http.clone();
                let (tx, rx) = std::sync::mpsc::channel();
                data.runtime.spawn(async move {
                    let _ = tx.send(perform(client, request).await);
                });
                drop(data);
                match rx.recv() {
                    Ok(Ok(response)) => Ok((Some(response_table(lua, response)?), None)),
                    Ok(Err(err)) => Ok((None, Some(err))),
                    Err(_) => Ok((None, Some("the engine is stopping".to_owned()))),
                }
            },
        )?,
    )?;
    Ok(module)
}

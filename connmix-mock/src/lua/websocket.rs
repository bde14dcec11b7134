//! `require("protocols/websocket")`: the WebSocket protocol for `protocol_input`,
//! `protocol_decode` and `protocol_encode`, written here in Rust (the engine ships a Lua
//! module of the same name; scripts call it the same way).
//!
//! - `websocket.input(buf[, conn][, path][, on_handshake])`: the length of the next complete
//!   unit in `buf` (the upgrade request or one frame), 0 to wait for more, -1 to close. It
//!   answers the upgrade itself (101, or 404 for another path), calls
//!   `on_handshake(headers, conn)` with lower-case header names, answers pings and closes,
//!   and keeps the frame for `decode`. A frame larger than the configured cap (65 535 bytes
//!   by default) closes the connection.
//! - `websocket.decode([conn])`: the kept frame as `{type = "text"|"binary", data = ...,
//!   finish = bool}`, or nil (handshake, control frames).
//! - `websocket.encode(str[, type])`: a server frame; without a type, the type of the send
//!   being encoded (a consumer's binary `mesh.send` gives a binary frame), else text.
//! - `websocket.send_text([conn,] str)` / `send_binary([conn,] str)`: writes a frame.

use base64::Engine as _;
use connmix_protocol::ClientId;
use mlua::{AnyUserData, Function, Lua, Table, Value as LuaValue};
use sha1::{Digest, Sha1};

use super::buf::LuaBuf;
use super::conn::ConnRef;
use super::host::{self, with_conn, HostData};

/// An upgrade request longer than this is refused.
const MAX_HEAD: usize = 16 * 1024;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The protocol state of one connection.
#[derive(Debug, Default)]
pub(crate) struct WsState {
    handshaken: bool,
    /// The frame `input` parsed, for `decode`.
    frame: Option<Frame>,
    /// The type of a fragmented message's first frame, for its continuations.
    fragment: Option<&'static str>,
}

#[derive(Debug)]
struct Frame {
    kind: &'static str,
    data: Vec<u8>,
    finish: bool,
}

/// The page served at `/` when a plain browser request comes instead of an upgrade.
const PAGE: &str = include_str!("../../assets/chat.html");

/// Builds the module table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let ws = lua.create_table()?;
    ws.set(
        "input",
        lua.create_function(|lua, args: mlua::MultiValue| {
            let (buf, id, path, on_handshake) = input_args(lua, args)?;
            let data = buf.borrow::<LuaBuf>()?.data.clone();
            input(lua, id, &data, path.as_deref(), on_handshake)
        })?,
    )?;
    ws.set(
        "decode",
        lua.create_function(|lua, conn: LuaValue| {
            // `decode(conn)`, or the docs' older `decode(str)`: the running connection.
            let id = match conn {
                LuaValue::UserData(ud) => ud.borrow::<ConnRef>()?.0,
                _ => current(lua)?,
            };
            let frame = with_conn(lua, id, |c| c.ws.frame.take()).flatten();
            let Some(frame) = frame else {
                return Ok(LuaValue::Nil);
            };
            let table = lua.create_table()?;
            table.set("type", frame.kind)?;
            table.set("data", lua.create_string(&frame.data)?)?;
            table.set("finish", frame.finish)?;
            Ok(LuaValue::Table(table))
        })?,
    )?;
    ws.set(
        "encode",
        lua.create_function(|lua, (data, kind): (mlua::String, Option<String>)| {
            let binary = match kind.as_deref() {
                Some("binary") => true,
                Some("text") => false,
                Some(other) => {
                    return Err(mlua::Error::runtime(format!(
                        "unknown frame type `{other}` (text or binary)"
                    )))
                }
                None => lua
                    .app_data_ref::<HostData>()
                    .is_some_and(|d| d.send_binary.get()),
            };
            let opcode = if binary { 0x2 } else { 0x1 };
            lua.create_string(frame(opcode, &data.as_bytes()))
        })?,
    )?;
    ws.set(
        "send_text",
        lua.create_function(|lua, args| send(lua, args, 0x1))?,
    )?;
    ws.set(
        "send_binary",
        lua.create_function(|lua, args| send(lua, args, 0x2))?,
    )?;
    Ok(ws)
}

/// The connection whose callback runs now.
fn current(lua: &Lua) -> mlua::Result<ClientId> {
    lua.app_data_ref::<HostData>()
        .and_then(|d| d.current.get())
        .ok_or_else(|| mlua::Error::runtime("no current connection"))
}

/// `input(buf[, conn][, path][, on_handshake])`: the later example passes all four, the
/// docs' older one `input(buf, on_handshake)`.
fn input_args(
    lua: &Lua,
    args: mlua::MultiValue,
) -> mlua::Result<(AnyUserData, ClientId, Option<String>, Option<Function>)> {
    let mut args = args.into_iter().peekable();
    let Some(LuaValue::UserData(buf)) = args.next() else {
        return Err(mlua::Error::runtime(
            "websocket.input expects the buf as its first argument",
        ));
    };
    let id = match args.peek() {
        Some(LuaValue::UserData(ud)) => {
            let id = ud.borrow::<ConnRef>()?.0;
            args.next();
            id
        }
        _ => current(lua)?,
    };
    let mut path = None;
    let mut on_handshake = None;
    for arg in args {
        match arg {
            LuaValue::String(s) if path.is_none() => path = Some(s.to_string_lossy()),
            LuaValue::Function(f) if on_handshake.is_none() => on_handshake = Some(f),
            LuaValue::Nil => {}
            other => {
                return Err(mlua::Error::runtime(format!(
                    "websocket.input: unexpected {} argument",
                    other.type_name()
                )))
            }
        }
    }
    Ok((buf, id, path, on_handshake))
}

/// `send_text([conn,] data)`: without a conn, the connection whose callback runs.
fn send(lua: &Lua, args: mlua::MultiValue, opcode: u8) -> mlua::Result<Option<String>> {
    let mut args = args.into_iter();
    let first = args.next().unwrap_or(LuaValue::Nil);
    let (id, data) = match first {
        LuaValue::UserData(ud) => (ud.borrow::<ConnRef>()?.0, args.next()),
        other => (current(lua)?, Some(other)),
    };
    let Some(LuaValue::String(data)) = data else {
        return Err(mlua::Error::runtime(
            "expected the data to send as a string",
        ));
    };
    let bytes = frame(opcode, &data.as_bytes());
    Ok(host::write(lua, id, bytes).err())
}

/// A server-to-client frame: final, unmasked.
pub(crate) fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn input(
    lua: &Lua,
    id: ClientId,
    data: &[u8],
    path: Option<&str>,
    on_handshake: Option<Function>,
) -> mlua::Result<i64> {
    let handshaken = with_conn(lua, id, |c| c.ws.handshaken).unwrap_or(false);
    if handshaken {
        return read_frame(lua, id, data);
    }
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(if data.len() > MAX_HEAD { -1 } else { 0 });
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let target = request.split(' ').nth(1).unwrap_or("/");
    let request_path = target.split('?').next().unwrap_or("/");
    let headers = lua.create_table()?;
    let mut key = None;
    let mut upgrade = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "sec-websocket-key" => key = Some(value.to_owned()),
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            _ => {}
        }
        let joined = match headers.get::<Option<String>>(name.as_str())? {
            Some(previous) => format!("{previous}, {value}"),
            None => value.to_owned(),
        };
        headers.set(name, joined)?;
    }
    let reply = |text: String| host::write(lua, id, text.into_bytes());
    if !upgrade && request_path == "/" && request.starts_with("GET ") {
        // A mock extra: the chat page, as the built-in chat server serves it.
        let page = PAGE.replace(
            r#"<meta name="chat-path" content="/chat">"#,
            &format!(
                r#"<meta name="chat-path" content="{}">"#,
                path.unwrap_or("/chat")
            ),
        );
        let _ = reply(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        ));
        return Ok(-1);
    }
    if path.is_some_and(|p| p != request_path) {
        let _ = reply(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        );
        return Ok(-1);
    }
    let Some(key) = key.filter(|_| upgrade) else {
        let _ = reply(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        );
        return Ok(-1);
    };
    let accept = base64::engine::general_purpose::STANDARD
        .encode(Sha1::digest(format!("{key}{GUID}").as_bytes()));
    reply(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    ))
    .map_err(mlua::Error::runtime)?;
    with_conn(lua, id, |c| c.ws.handshaken = true);
    if let Some(on_handshake) = on_handshake {
        let object = with_conn(lua, id, |c| c.object.clone())
            .ok_or_else(|| mlua::Error::runtime("the connection is gone"))?;
        on_handshake.call::<()>((headers, object))?;
    }
    Ok(i64::try_from(end + 4).unwrap_or(-1))
}

fn read_frame(lua: &Lua, id: ClientId, data: &[u8]) -> mlua::Result<i64> {
    if data.len() < 2 {
        return Ok(0);
    }
    let fin = data[0] & 0x80 != 0;
    let opcode = data[0] & 0x0f;
    let masked = data[1] & 0x80 != 0;
    let (length, mut at) = match data[1] & 0x7f {
        126 if data.len() >= 4 => (u64::from(u16::from_be_bytes([data[2], data[3]])), 4),
        127 if data.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&data[2..10]);
            (u64::from_be_bytes(n), 10)
        }
        126 | 127 => return Ok(0),
        n => (u64::from(n), 2),
    };
    let max = lua
        .app_data_ref::<HostData>()
        .map(|d| d.state.cluster.config.max_browser_frame)
        .unwrap_or(usize::MAX);
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    if length > max {
        tracing::debug!(client_id = %id, length, max, "websocket frame too large: closing");
        return Ok(-1);
    }
    if !masked {
        tracing::debug!(client_id = %id, "unmasked client frame: closing");
        return Ok(-1);
    }
    if data.len() < at + 4 + length {
        return Ok(0);
    }
    let mask = [data[at], data[at + 1], data[at + 2], data[at + 3]];
    at += 4;
    let payload: Vec<u8> = data[at..at + length]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let total = i64::try_from(at + length).unwrap_or(-1);
    let kind = match opcode {
        0x1 => "text",
        0x2 => "binary",
        0x0 => with_conn(lua, id, |c| c.ws.fragment)
            .flatten()
            .unwrap_or("text"),
        0x8 => {
            let code = payload.get(..2).map(<[u8]>::to_vec).unwrap_or_default();
            let _ = host::write(lua, id, frame(0x8, &code));
            host::close(lua, id, "closed by the browser");
            return Ok(total);
        }
        0x9 => {
            let _ = host::write(lua, id, frame(0xA, &payload));
            return Ok(total);
        }
        0xA => return Ok(total),
        _ => return Ok(-1),
    };
    with_conn(lua, id, |c| {
        c.ws.fragment = if fin { None } else { Some(kind) };
        c.ws.frame = Some(Frame {
            kind,
            data: payload,
            finish: fin,
        });
    });
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_frames_carry_their_length_in_the_shortest_form() {
        assert_eq!(frame(0x1, b"hi"), vec![0x81, 2, b'h', b'i']);
        let long = frame(0x2, &[0; 300]);
        assert_eq!(&long[..4], &[0x82, 126, 1, 44]);
        let longer = frame(0x1, &[0; 70_000]);
        assert_eq!(longer[1], 127);
    }
}

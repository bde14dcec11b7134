//! The Lua VM of one node: a dedicated thread that owns the VM and runs every callback of the
//! node's connections, in the order their events arrive.
//!
//! Why a thread of its own: a script may block (`mix.redis`, `mix.http`, a long loop until the
//! instruction limit stops it). On this thread that stalls only this node's scripts, never the
//! tokio runtime that serves every other socket of the mock, and the VM (which is not `Send`)
//! never has to move between threads. Connection tasks talk to it through [`Command`]s; it
//! answers by writing bytes into each connection's outgoing channel.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use connmix_protocol::{ClientId, Payload};
use mlua::{
    AnyUserData, Function, HookTriggers, IntoLuaMulti, Lua, MultiValue, Thread, ThreadStatus,
    Value as LuaValue, VmState,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::buf::LuaBuf;
use super::config::ScriptConfig;
use super::conn::ConnRef;
use super::websocket::WsState;
use crate::client::ClientState;
use crate::error::MockError;
use crate::server::NodeState;

/// How many commands may wait for the VM before connection tasks wait in turn.
const COMMANDS: usize = 1024;

/// Unprocessed input a connection may hold while its script waits (`wait_context_value`);
/// beyond it the socket is not read until the wait ends, so TCP holds the rest back.
const PAUSE_AT: usize = 64 * 1024;

/// Unprocessed input beyond which a connection whose `protocol_input` keeps asking for more is
/// closed instead of buffered.
const MAX_INPUT: usize = 16 * 1024 * 1024;

/// Memory one node's VM may allocate.
const MEMORY_LIMIT: usize = 512 * 1024 * 1024;

/// Instructions between two checks of the instruction budget.
const HOOK_EVERY: u32 = 1000;

/// What connection tasks ask of the VM.
#[derive(Debug)]
pub(crate) enum Command {
    /// A connection was accepted.
    Open {
        client: Arc<ClientState>,
        io: ConnIo,
        remote: SocketAddr,
    },
    /// Bytes read from a connection.
    Data { id: ClientId, bytes: Vec<u8> },
    /// A consumer sent the connection a frame: encode it with `protocol_encode` and write it.
    Deliver { id: ClientId, payload: Payload },
    /// The context key a connection waits for was set.
    Resume { id: ClientId },
    /// The connection is gone.
    Closed { id: ClientId, reason: String },
}

/// What the VM writes to one connection.
#[derive(Debug)]
pub(crate) enum Out {
    /// Bytes, written as they are.
    Bytes(Vec<u8>),
    /// Write what came before, then close.
    Close,
}

/// The VM's handles on one connection's socket.
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) out: mpsc::Sender<Out>,
    /// True while the reader must not read (the script waits and input piled up).
    pub(crate) paused: watch::Sender<bool>,
}

/// A running VM, as the node's tasks see it.
#[derive(Debug, Clone)]
pub(crate) struct HostHandle {
    pub(crate) tx: mpsc::Sender<Command>,
}

/// One connection as the VM keeps it.
pub(crate) struct Conn {
    pub(crate) client: Arc<ClientState>,
    io: ConnIo,
    pub(crate) remote: SocketAddr,
    /// Bytes read and not yet consumed by `protocol_input`.
    pub(crate) buffer: Vec<u8>,
    pub(crate) ws: WsState,
    /// The callback suspended in `wait_context_value`, and the key it waits for.
    suspended: Option<(Thread, String)>,
    /// Set by `wait_context_value` right before it yields.
    pub(crate) waiting_for: Option<String>,
    /// How often each context key had been set when the running callback started: a set
    /// since then releases its `wait_context_value`, even one that came before the call (a
    /// consumer may answer a pushed message before the script reaches the wait).
    started_at: HashMap<String, u64>,
    /// Why the host or the script closed it, for `on_close`.
    close_reason: Option<String>,
    /// The object scripts get as `conn`.
    pub(crate) object: AnyUserData,
}

/// The VM's state, kept as the Lua state's app data so bindings can reach it.
pub(crate) struct HostData {
    pub(crate) state: NodeState,
    pub(crate) config: ScriptConfig,
    /// The script's file name, for log lines.
    pub(crate) script: String,
    pub(crate) conns: RefCell<HashMap<ClientId, Conn>>,
    /// The connection whose callback runs now, for calls that do not name one.
    pub(crate) current: Cell<Option<ClientId>>,
    /// The frame type of the send being encoded, for `websocket.encode` without a type.
    pub(crate) send_binary: Cell<bool>,
    /// Instructions the running callback may still execute.
    budget: Cell<i64>,
    /// The callback running now, named in the instruction limit's message.
    running: Cell<&'static str>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Weak: the VM must not keep its own channel open, or it would never end.
    pub(crate) commands: mpsc::WeakSender<Command>,
    /// The `wait_context_value` function given to scripts (Lua, so it can yield).
    pub(crate) wait_fn: RefCell<Option<Function>>,
    pub(crate) services: super::services::Services,
}

/// The outcome of running one callback.
enum Ran {
    /// It returned these values.
    Done(MultiValue),
    /// It waits in `wait_context_value`.
    Waiting(Thread),
    /// The script defines no such function.
    Missing,
}

/// Starts the VM of one node: loads the script, runs it and its `init()`, then serves
/// commands until every sender is gone. Fails if the script cannot be loaded or started.
pub(crate) async fn spawn(
    state: NodeState,
    config: ScriptConfig,
) -> Result<(HostHandle, oneshot::Receiver<()>), MockError> {
    let source = std::fs::read_to_string(&config.path).map_err(|err| {
        MockError::Script(format!("cannot read {}: {err}", config.path.display()))
    })?;
    let (tx, rx) = mpsc::channel(COMMANDS);
    let (ready_tx, ready_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let runtime = tokio::runtime::Handle::current();
    let weak = tx.downgrade();
    let name = format!("lua-node-{}", state.runtime.node.addrs.id);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let lua = match start(state, config, &source, runtime, weak) {
                Ok(lua) => lua,
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            serve(&lua, rx);
            if let Some(data) = lua.app_data_ref::<HostData>() {
                // Lua references held in Rust structures go before the VM does.
                data.conns.borrow_mut().clear();
                data.wait_fn.borrow_mut().take();
            }
            drop(lua);
            let _ = done_tx.send(());
        })
        .map_err(|err| MockError::Script(format!("cannot start the Lua thread: {err}")))?;
    match ready_rx.await {
        Ok(Ok(())) => Ok((HostHandle { tx }, done_rx)),
        Ok(Err(err)) => Err(MockError::Script(err)),
        Err(_) => Err(MockError::Script(
            "the Lua thread ended while starting".into(),
        )),
    }
}

/// Compiles the script without running it: a syntax error names file and line.
pub(crate) fn check_syntax(config: &ScriptConfig) -> Result<(), MockError> {
    let source = std::fs::read_to_string(&config.path).map_err(|err| {
        MockError::Script(format!("cannot read {}: {err}", config.path.display()))
    })?;
    let lua = Lua::new();
    lua.load(&source)
        .set_name(chunk_name(config))
        .into_function()
        .map(|_| ())
        .map_err(|err| MockError::Script(describe(&err)))
}

fn chunk_name(config: &ScriptConfig) -> String {
    format!("@{}", config.path.display())
}

fn start(
    state: NodeState,
    config: ScriptConfig,
    source: &str,
    runtime: tokio::runtime::Handle,
    commands: mpsc::WeakSender<Command>,
) -> Result<Lua, String> {
    let lua = Lua::new();
    // A script that allocates without end gets "not enough memory" errors, not the process.
    lua.set_memory_limit(MEMORY_LIMIT)
        .map_err(|e| describe(&e))?;
    let script = config.path.display().to_string();
    let services = super::services::Services::new(&config.redis);
    let limit = i64::try_from(config.instruction_limit).unwrap_or(i64::MAX);
    lua.set_app_data(HostData {
        state,
        config: config.clone(),
        script,
        conns: RefCell::new(HashMap::new()),
        current: Cell::new(None),
        send_binary: Cell::new(false),
        budget: Cell::new(limit),
        running: Cell::new("the script"),
        runtime,
        commands,
        wait_fn: RefCell::new(None),
        services,
    });
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        |lua, debug| {
            let Some(data) = lua.app_data_ref::<HostData>() else {
                return Ok(VmState::Continue);
            };
            let left = data.budget.get() - i64::from(HOOK_EVERY);
            data.budget.set(left);
            if left >= 0 {
                return Ok(VmState::Continue);
            }
            let source = debug.source();
            let file = source.short_src.as_deref().unwrap_or("?").to_owned();
            let line = debug.current_line().unwrap_or(0);
            Err(mlua::Error::runtime(format!(
                "{file}:{line}: {} ran more than {} instructions (instruction limit)",
                data.running.get(),
                data.config.instruction_limit
            )))
        },
    )
    .map_err(|e| describe(&e))?;
    super::install(&lua, &config).map_err(|e| describe(&e))?;
    let chunk = lua
        .load(source)
        .set_name(chunk_name(&config))
        .into_function()
        .map_err(|e| describe(&e))?;
    reset_budget(&lua, "the script's main chunk");
    chunk.call::<()>(()).map_err(|e| describe(&e))?;
    match call(&lua, None, "init", ()) {
        Ok(Ran::Done(_) | Ran::Missing) => Ok(lua),
        Ok(Ran::Waiting(_)) => Err("init() cannot wait for a context value".into()),
        Err(err) => Err(err),
    }
}

fn serve(lua: &Lua, mut rx: mpsc::Receiver<Command>) {
    while let Some(command) = rx.blocking_recv() {
        let id = match &command {
            Command::Open { client, .. } => client.id,
            Command::Data { id, .. }
            | Command::Deliver { id, .. }
            | Command::Resume { id }
            | Command::Closed { id, .. } => *id,
        };
        // A safety net: a bug of the host's own ends that connection, not the node's VM.
        let handled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(lua, command)));
        if handled.is_err() {
            tracing::error!(client_id = %id, "Lua host failed on this connection: closing it");
            close(lua, id, "the Lua host failed");
        }
    }
}

fn handle(lua: &Lua, command: Command) {
    match command {
        Command::Open { client, io, remote } => open(lua, client, io, remote),
        Command::Data { id, bytes } => {
            let known = with_conn(lua, id, |conn| conn.buffer.extend_from_slice(&bytes));
            if known.is_some() {
                process(lua, id);
            }
        }
        Command::Deliver { id, payload } => {
            let (data, binary) = match payload {
                Payload::Text(text) => (text.into_bytes(), false),
                Payload::Binary(bytes) => (bytes, true),
            };
            if let Err(err) = send(lua, id, &data, binary) {
                fail(lua, id, &err);
            }
        }
        Command::Resume { id } => resume(lua, id),
        Command::Closed { id, reason } => closed(lua, id, reason),
    }
}

fn data(lua: &Lua) -> Option<mlua::AppDataRef<'_, HostData>> {
    lua.app_data_ref::<HostData>()
}

/// Runs `f` on a connection the VM holds; `None` when it does not hold it.
pub(crate) fn with_conn<R>(lua: &Lua, id: ClientId, f: impl FnOnce(&mut Conn) -> R) -> Option<R> {
    let data = data(lua)?;
    let mut conns = data.conns.borrow_mut();
    conns.get_mut(&id).map(f)
}

fn reset_budget(lua: &Lua, running: &'static str) {
    if let Some(data) = data(lua) {
        data.budget
            .set(i64::try_from(data.config.instruction_limit).unwrap_or(i64::MAX));
        data.running.set(running);
    }
}

fn open(lua: &Lua, client: Arc<ClientState>, io: ConnIo, remote: SocketAddr) {
    let id = client.id;
    let object = match lua.create_userdata(ConnRef(id)) {
        Ok(object) => object,
        Err(err) => {
            tracing::warn!(client_id = %id, error = %err, "cannot create the conn object");
            let _ = io.out.try_send(Out::Close);
            return;
        }
    };
    if let Some(data) = data(lua) {
        data.conns.borrow_mut().insert(
            id,
            Conn {
                client,
                io,
                remote,
                buffer: Vec::new(),
                ws: WsState::default(),
                suspended: None,
                waiting_for: None,
                started_at: HashMap::new(),
                close_reason: None,
                object: object.clone(),
            },
        );
    }
    tracing::debug!(client_id = %id, %remote, "script connection opened");
    match call(lua, Some(id), "on_connect", object) {
        Ok(Ran::Waiting(thread)) => suspend(lua, id, thread),
        Ok(_) => process(lua, id),
        Err(err) => fail(lua, id, &err),
    }
}

fn conn_object(lua: &Lua, id: ClientId) -> Option<AnyUserData> {
    with_conn(lua, id, |conn| conn.object.clone())
}

/// Feeds the connection's input through `protocol_input`, `protocol_decode` and `on_message`
/// until it needs more bytes, closes or waits.
fn process(lua: &Lua, id: ClientId) {
    loop {
        let ready = with_conn(lua, id, |conn| {
            let idle = conn.suspended.is_none() && conn.close_reason.is_none();
            (idle && !conn.buffer.is_empty()).then(|| (conn.buffer.clone(), conn.object.clone()))
        });
        let Some(Some((input, object))) = ready else {
            break;
        };
        let length = input.len();
        let buf = match lua.create_userdata(LuaBuf::new(input)) {
            Ok(buf) => buf,
            Err(err) => return fail(lua, id, &describe(&err)),
        };
        let n = match call(lua, Some(id), "protocol_input", (buf, object.clone())) {
            Ok(Ran::Done(values)) => match values.into_iter().next() {
                Some(LuaValue::Integer(n)) => n,
                Some(LuaValue::Number(n)) if n.fract() == 0.0 => n as i64,
                other => {
                    let got = other.map(|v| v.type_name()).unwrap_or("nothing");
                    return fail(
                        lua,
                        id,
                        &format!("protocol_input must return an integer, it returned {got}"),
                    );
                }
            },
            Ok(Ran::Missing) => return fail(lua, id, "the script defines no protocol_input"),
            Ok(Ran::Waiting(_)) => {
                return fail(lua, id, "protocol_input cannot wait for a context value")
            }
            Err(err) => return fail(lua, id, &err),
        };
        if n == 0 {
            if length > MAX_INPUT {
                return fail(lua, id, "protocol_input keeps waiting past 16 MiB of input");
            }
            break;
        }
        if n < 0 {
            close(lua, id, "protocol_input returned -1");
            break;
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > length {
            let err = format!("protocol_input returned {n}, but only {length} bytes are buffered");
            return fail(lua, id, &err);
        }
        // The script may have cleared the buffer (`conn:clear_buffer()`) meanwhile.
        let packet = with_conn(lua, id, |conn| {
            (n <= conn.buffer.len()).then(|| conn.buffer.drain(..n).collect::<Vec<u8>>())
        });
        let Some(packet) = packet else { break };
        let Some(packet) = packet else {
            return fail(
                lua,
                id,
                "protocol_input returned more bytes than are left after clear_buffer",
            );
        };
        let packet = match lua.create_string(&packet) {
            Ok(packet) => packet,
            Err(err) => return fail(lua, id, &describe(&err)),
        };
        let message = match call(lua, Some(id), "protocol_decode", (packet, object.clone())) {
            Ok(Ran::Done(values)) => values.into_iter().next().unwrap_or(LuaValue::Nil),
            Ok(Ran::Missing) => return fail(lua, id, "the script defines no protocol_decode"),
            Ok(Ran::Waiting(_)) => {
                return fail(lua, id, "protocol_decode cannot wait for a context value")
            }
            Err(err) => return fail(lua, id, &err),
        };
        if message.is_nil() {
            continue;
        }
        match call(lua, Some(id), "on_message", (message, object)) {
            Ok(Ran::Done(_) | Ran::Missing) => {}
            Ok(Ran::Waiting(thread)) => {
                suspend(lua, id, thread);
                break;
            }
            Err(err) => return fail(lua, id, &err),
        }
    }
    let pause = with_conn(lua, id, |conn| {
        conn.suspended.is_some() && conn.buffer.len() >= PAUSE_AT
    });
    if let Some(pause) = pause {
        with_conn(lua, id, |conn| conn.io.paused.send_replace(pause));
    }
}

/// Keeps a callback waiting in `wait_context_value` and wakes the VM when its key is set.
fn suspend(lua: &Lua, id: ClientId, thread: Thread) {
    let Some(data) = data(lua) else { return };
    let mut conns = data.conns.borrow_mut();
    let Some(conn) = conns.get_mut(&id) else {
        return;
    };
    let Some(key) = conn.waiting_for.take() else {
        return;
    };
    let generation = conn.started_at.get(&key).copied().unwrap_or(0);
    conn.suspended = Some((thread, key.clone()));
    let client = conn.client.clone();
    let Some(commands) = data.commands.upgrade() else {
        return;
    };
    data.runtime.spawn(async move {
        tokio::select! {
            _ = client.key_set_after(&key, generation) => {
                let _ = commands.send(Command::Resume { id: client.id }).await;
            }
            _ = client.closed.cancelled() => {}
        }
    });
}

fn resume(lua: &Lua, id: ClientId) {
    let Some((thread, key, client)) = with_conn(lua, id, |conn| {
        let (thread, key) = conn.suspended.take()?;
        Some((thread, key, conn.client.clone()))
    })
    .flatten() else {
        return;
    };
    with_conn(lua, id, |conn| conn.io.paused.send_replace(false));
    let value = match client.context_value(&key) {
        Some(value) => super::json::to_lua(lua, &value),
        None => Ok(LuaValue::Nil),
    };
    let value = match value {
        Ok(value) => value,
        Err(err) => return fail(lua, id, &describe(&err)),
    };
    reset_budget(lua, "on_message");
    with_conn(lua, id, |conn| {
        conn.started_at = conn.client.key_generations()
    });
    match finish(lua, Some(id), thread, thread_resume(value)) {
        Ok(Ran::Waiting(thread)) => suspend(lua, id, thread),
        Ok(_) => process(lua, id),
        Err(err) => fail(lua, id, &err),
    }
}

fn thread_resume(value: LuaValue) -> impl FnOnce(&Thread) -> mlua::Result<MultiValue> {
    move |thread| thread.resume::<MultiValue>(value)
}

/// Encodes `data` with the script's `protocol_encode` and writes it to the connection.
pub(crate) fn send(lua: &Lua, id: ClientId, data: &[u8], binary: bool) -> Result<(), String> {
    let Some(object) = conn_object(lua, id) else {
        return Err(format!("client {id} is not connected"));
    };
    let text = lua.create_string(data).map_err(|e| describe(&e))?;
    let previous = self::data(lua).map(|d| d.send_binary.replace(binary));
    let encoded = call(lua, Some(id), "protocol_encode", (text, object));
    if let (Some(previous), Some(d)) = (previous, self::data(lua)) {
        d.send_binary.set(previous);
    }
    let bytes = match encoded? {
        Ran::Done(values) => match values.into_iter().next() {
            Some(LuaValue::String(s)) if !s.as_bytes().is_empty() => s.as_bytes().to_vec(),
            _ => return Err("protocol_encode must return a non-empty string".into()),
        },
        Ran::Missing => return Err("the script defines no protocol_encode".into()),
        Ran::Waiting(_) => return Err("protocol_encode cannot wait for a context value".into()),
    };
    write(lua, id, bytes)
}

/// Writes bytes to a connection as they are.
pub(crate) fn write(lua: &Lua, id: ClientId, bytes: Vec<u8>) -> Result<(), String> {
    let sent = with_conn(lua, id, |conn| {
        if conn.close_reason.is_some() {
            return Err("the connection is closing".to_owned());
        }
        conn.io
            .out
            .try_send(Out::Bytes(bytes))
            .map_err(|_| "the connection's write buffer is full".to_owned())
    });
    sent.unwrap_or_else(|| Err(format!("client {id} is not connected")))
}

/// Closes a connection after what was written to it; `on_close` follows once it is gone.
pub(crate) fn close(lua: &Lua, id: ClientId, reason: &str) {
    with_conn(lua, id, |conn| {
        if conn.close_reason.is_some() {
            return;
        }
        conn.close_reason = Some(reason.to_owned());
        conn.suspended = None;
        conn.io.paused.send_replace(false);
        if conn.io.out.try_send(Out::Close).is_err() {
            conn.client.closed.cancel();
        }
    });
}

/// A script error on one connection: logged with its place, and only that connection ends.
fn fail(lua: &Lua, id: ClientId, err: &str) {
    let script = data(lua).map(|d| d.script.clone()).unwrap_or_default();
    tracing::warn!(%script, client_id = %id, "script error, closing the connection: {err}");
    close(lua, id, &format!("script error: {err}"));
}

fn closed(lua: &Lua, id: ClientId, reason: String) {
    let Some((object, reason, client)) = with_conn(lua, id, |conn| {
        conn.suspended = None;
        let reason = conn.close_reason.clone().unwrap_or(reason);
        conn.close_reason.get_or_insert_with(|| reason.clone());
        (conn.object.clone(), reason, conn.client.clone())
    }) else {
        return;
    };
    if let Some(data) = data(lua) {
        let cluster = &data.state.cluster;
        data.state.runtime.unregister(client.id, &cluster.counters);
    }
    tracing::debug!(client_id = %id, %reason, "script connection closed");
    if let Err(err) = call(lua, Some(id), "on_close", (reason, object)) {
        let script = data(lua).map(|d| d.script.clone()).unwrap_or_default();
        tracing::warn!(%script, client_id = %id, "script error in on_close: {err}");
    }
    if let Some(data) = data(lua) {
        data.conns.borrow_mut().remove(&id);
    }
}

/// Runs the global function `name` as a coroutine, so that it may wait in
/// `wait_context_value`.
fn call(
    lua: &Lua,
    id: Option<ClientId>,
    name: &'static str,
    args: impl IntoLuaMulti,
) -> Result<Ran, String> {
    let Ok(LuaValue::Function(func)) = lua.globals().get::<LuaValue>(name) else {
        return Ok(Ran::Missing);
    };
    reset_budget(lua, name);
    if let (Some(id), "on_message" | "on_connect") = (id, name) {
        with_conn(lua, id, |conn| {
            conn.started_at = conn.client.key_generations()
        });
    }
    let thread = lua.create_thread(func).map_err(|e| describe(&e))?;
    let args = args.into_lua_multi(lua).map_err(|e| describe(&e))?;
    finish(lua, id, thread, move |thread| {
        thread.resume::<MultiValue>(args)
    })
}

fn finish(
    lua: &Lua,
    id: Option<ClientId>,
    thread: Thread,
    run: impl FnOnce(&Thread) -> mlua::Result<MultiValue>,
) -> Result<Ran, String> {
    let previous = data(lua).map(|d| d.current.replace(id));
    let result = run(&thread);
    if let (Some(previous), Some(d)) = (previous, data(lua)) {
        d.current.set(previous);
    }
    let values = result.map_err(|e| describe(&e))?;
    if thread.status() != ThreadStatus::Resumable {
        // A wait begun inside a coroutine of the script's own is not ours to keep.
        if let Some(id) = id {
            with_conn(lua, id, |conn| conn.waiting_for = None);
        }
        return Ok(Ran::Done(values));
    }
    let waiting = id.and_then(|id| with_conn(lua, id, |conn| conn.waiting_for.is_some()));
    if waiting == Some(true) {
        Ok(Ran::Waiting(thread))
    } else {
        Err("a callback yielded outside wait_context_value".into())
    }
}

/// A Lua error as one line: `file:line: message`, with the script's line for errors raised in
/// the host's own functions (a call with wrong arguments).
pub(crate) fn describe(err: &mlua::Error) -> String {
    match err {
        mlua::Error::CallbackError { traceback, cause } => {
            let cause = describe(cause);
            match script_line(traceback) {
                Some(place) if !cause.starts_with(&place) => format!("{place}: {cause}"),
                _ => cause,
            }
        }
        mlua::Error::SyntaxError { message, .. } => without_traceback(message),
        mlua::Error::RuntimeError(message) => without_traceback(message),
        mlua::Error::WithContext { context, cause } => format!("{context}: {}", describe(cause)),
        other => other.to_string(),
    }
}

fn without_traceback(message: &str) -> String {
    match message.find("\nstack traceback:") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// The first `file:line` of a traceback that is Lua code, not a host function.
fn script_line(traceback: &str) -> Option<String> {
    traceback.lines().find_map(|line| {
        let line = line.trim();
        if line.starts_with("[C]") || line.starts_with("[string") {
            return None;
        }
        let (place, _) = line.split_once(": ")?;
        let (file, number) = place.rsplit_once(':')?;
        (!file.is_empty() && number.chars().all(|c| c.is_ascii_digit())).then(|| place.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_scripts_file_and_line() {
        let lua = Lua::new();
        let f = lua.create_function(|_, s: String| Ok(s)).unwrap();
        lua.globals().set("f", f).unwrap();
        let run = |code: &str| {
            let err = lua.load(code).set_name("@entry.lua").exec().unwrap_err();
            describe(&err)
        };
        let wrong_argument = run("local x = 1\nf({})");
        assert!(
            wrong_argument.starts_with("entry.lua:2: "),
            "{wrong_argument}"
        );
        assert!(!wrong_argument.contains('\n'), "one line: {wrong_argument}");
        let runtime = run("\n\nerror('boom')");
        assert_eq!(runtime, "entry.lua:3: boom");
    }

    #[test]
    fn a_traceback_names_the_scripts_line() {
        let traceback = "stack traceback:\n\t[C]: in function 'push'\n\tentry.lua:12: in function <entry.lua:10>";
        assert_eq!(script_line(traceback).as_deref(), Some("entry.lua:12"));
    }
}

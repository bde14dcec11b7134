//! The engine's state: the event generator, the owed calls and each connection's output.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context as _;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::Notify;

use super::owed::{self, Matched, Owed, OwnedShape, Shape};
use super::wire::{self, opcode};
use super::{redact, RedisShape, Shared, REFILL, WINDOW};
use crate::harness::QUEUE;
use crate::workload::{self, Answers, Call, Population};

pub(super) struct Slot {
    pub(super) node: usize,
    pub(super) out: Vec<u8>,
    pub(super) wake: Arc<Notify>,
}

/// The engine's state, touched by its one thread (and read by the controller for errors).
pub(super) struct State {
    pub(super) pop: Arc<Population>,
    pub(super) answers: Answers,
    pub(super) seq: u64,
    pub(super) subscribed: Vec<bool>,
    pub(super) owed: Owed,
    pub(super) slots: Vec<Option<Slot>>,
    /// Consuming slots per node; events go to them in turn.
    pub(super) consumers: Vec<Vec<usize>>,
    pub(super) turn: Vec<usize>,
    pub(super) node_ids: Vec<String>,
    pub(super) scratch: Vec<u8>,
    /// Where events go when not onto the API connections.
    pub(super) feed: Option<RedisFeed>,
}

/// The Redis side of [`super::Feed::Redis`]: one blocking connection, used by the engine
/// thread once per batch.
pub(super) struct RedisFeed {
    conn: redis::Connection,
    key: String,
    shape: RedisShape,
    /// The batch being built: one `LPUSH`, or a pipeline of `XADD`s.
    batch: redis::Pipeline,
    /// Entries in `batch`.
    entries: usize,
}

impl RedisFeed {
    pub(super) fn connect(url: &str, key: String, shape: RedisShape) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .with_context(|| format!("{} is not a Redis URL", redact(url)))?;
        let mut conn = client
            .get_connection_with_timeout(std::time::Duration::from_secs(5))
            .with_context(|| format!("Redis is not reachable at {}", redact(url)))?;
        redis::cmd("PING")
            .query::<()>(&mut conn)
            .with_context(|| format!("Redis at {} does not answer PING", redact(url)))?;
        Ok(Self {
            conn,
            key,
            shape,
            batch: redis::pipe(),
            entries: 0,
        })
    }

    fn add(&mut self, entry: &[u8]) {
        match self.shape {
            RedisShape::List => {
                if self.entries == 0 {
                    self.batch.cmd("LPUSH").arg(&self.key).ignore();
                }
                // Appended to the one LPUSH: its values go on in order, so BRPOP takes them
                // oldest first.
                self.batch.arg(entry);
            }
            RedisShape::Stream => {
                self.batch
                    .cmd("XADD")
                    .arg(&self.key)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(100_000)
                    .arg("*")
                    .arg("data")
                    .arg(entry)
                    .ignore();
            }
        }
        self.entries += 1;
    }

    fn flush(&mut self) -> redis::RedisResult<()> {
        if self.entries == 0 {
            return Ok(());
        }
        self.entries = 0;
        let sent = self.batch.query::<()>(&mut self.conn);
        self.batch.clear();
        sent
    }
}

impl State {
    /// Pushes events while the window and the controller allow, each to a consumer of its
    /// connection's node; wakes the other connections it gave bytes to.
    pub(super) fn fill(&mut self, shared: &Shared, me: usize) {
        let allowed = shared.allowed.load(Ordering::Relaxed);
        // Refilled in batches: a contestant that answers event by event would otherwise cost
        // the stand-in one write per event.
        if self.owed.outstanding() + REFILL > WINDOW {
            return;
        }
        while self.seq < allowed && self.owed.outstanding() < WINDOW {
            let conn = (self.seq % self.pop.senders as u64) as usize;
            let node = self.pop.conns[conn].node;
            let slot = if self.feed.is_some() {
                None
            } else {
                let Some(&slot) =
                    self.consumers[node].get(self.turn[node] % self.consumers[node].len().max(1))
                else {
                    break;
                };
                self.turn[node] = self.turn[node].wrapping_add(1);
                Some(slot)
            };
            let seq = self.seq;
            self.seq += 1;
            let event = workload::event(
                &self.pop,
                seq,
                conn,
                &mut self.subscribed[conn],
                self.answers,
            );
            let calls = event
                .calls
                .into_iter()
                .map(|call| self.owned(call))
                .collect();
            if self.owed.owe(seq, calls) {
                shared.completed.fetch_add(1, Ordering::Relaxed);
            }
            self.scratch.clear();
            let script = Script {
                event: "message",
                uid: self.pop.conns[conn].uid,
                frame: ScriptFrame {
                    kind: "text",
                    data: &event.frame,
                    finish: true,
                },
            };
            let Some(slot) = slot else {
                let entry = RedisEntry {
                    script,
                    node: &self.node_ids[node],
                    client_id: Digits(self.pop.conns[conn].client.0),
                };
                if serde_json::to_writer(&mut self.scratch, &entry).is_ok() {
                    if let Some(feed) = self.feed.as_mut() {
                        feed.add(&self.scratch);
                    }
                }
                shared.pushed.store(self.seq, Ordering::Relaxed);
                continue;
            };
            let frame = PopEvent {
                e: "queue.pop",
                p: PopParams {
                    n: &self.node_ids[node],
                    c: Digits(self.pop.conns[conn].client.0),
                    t: QUEUE,
                    d: script,
                },
                id: None,
            };
            if serde_json::to_writer(&mut self.scratch, &frame).is_err() {
                continue;
            }
            if let Some(target) = self.slots[slot].as_mut() {
                wire::write_frame(&mut target.out, opcode::TEXT, &self.scratch);
                if slot != me {
                    target.wake.notify_one();
                }
            }
            shared.pushed.store(self.seq, Ordering::Relaxed);
        }
        if let Some(feed) = self.feed.as_mut() {
            if let Err(err) = feed.flush() {
                // The batch's events stay owed: the run ends with this and what is missing.
                shared.wrong(format!("cannot queue events on Redis: {err}"));
            }
        }
    }

    fn owned(&self, call: Call) -> OwnedShape {
        let client = |conn: usize| self.pop.conns[conn].client.0;
        match call {
            Call::Send { conn, data } => OwnedShape::Send {
                client: client(conn),
                data,
            },
            Call::Publish { channel, data } => OwnedShape::Publish { channel, data },
            Call::ConnCall {
                conn,
                function,
                args,
            } => OwnedShape::ConnCall {
                client: client(conn),
                function,
                args,
            },
        }
    }

    /// Handles one text frame from slot `me`, answering into its output.
    pub(super) fn on_text(&mut self, shared: &Shared, me: usize, text: &[u8]) {
        let reply = |state: &mut State, id: Option<u64>| {
            if let Some(slot) = state.slots[me].as_mut() {
                let text = match id {
                    Some(id) => format!(r#"{{"E":null,"r":{{"s":true}},"i":{id}}}"#),
                    None => r#"{"E":null,"r":{"s":true}}"#.to_owned(),
                };
                wire::write_frame(&mut slot.out, opcode::TEXT, text.as_bytes());
            }
        };
        if text == b"ping" {
            if let Some(slot) = self.slots[me].as_mut() {
                wire::write_frame(&mut slot.out, opcode::TEXT, b"pong");
            }
            return;
        }
        let request: Request<'_> = match serde_json::from_slice(text) {
            Ok(request) => request,
            Err(err) => {
                shared.wrong(format!(
                    "not a request ({err}): {}",
                    String::from_utf8_lossy(text)
                ));
                return;
            }
        };
        let id = request.i.or(request.id);
        let p = request.p.unwrap_or_default();
        let shape = match request.m {
            "queue.pop" if self.feed.is_some() => {
                shared.wrong("a queue.pop although the events are on Redis".into());
                return reply(self, id);
            }
            "queue.pop" => {
                if let Some(node) = self.slots[me].as_ref().map(|s| s.node) {
                    if !self.consumers[node].contains(&me) {
                        self.consumers[node].push(me);
                        shared.consumers.fetch_add(1, Ordering::Relaxed);
                    }
                }
                return reply(self, id);
            }
            "queue.unpop" => {
                self.stop_consuming(shared, me);
                return reply(self, id);
            }
            "mesh.send" => {
                p.c.as_ref()
                    .and_then(Target::client)
                    .zip(p.d.as_deref())
                    .map(|(client, data)| Shape::Send {
                        client,
                        data: owed::received_data(data),
                    })
            }
            "mesh.publish" => {
                p.c.as_ref()
                    .map(Target::name)
                    .zip(p.d.as_deref())
                    .map(|(channel, data)| Shape::Publish {
                        channel,
                        data: owed::received_data(data),
                    })
            }
            "conn.call" => None,
            other => {
                shared.wrong(format!("an unknown method {other}"));
                return reply(self, id);
            }
        };
        let args: Vec<&str> = p.a.iter().flatten().map(|a| &**a).collect();
        let shape = shape.or_else(|| {
            (request.m == "conn.call")
                .then(|| p.c.as_ref().and_then(Target::client))
                .flatten()
                .zip(p.f)
                .map(|(client, function)| Shape::ConnCall {
                    client,
                    function,
                    args: &args,
                })
        });
        match shape.map(|shape| (self.owed.receive(&shape), shape)) {
            Some((Matched::Owed, _)) => {
                shared.calls.fetch_add(1, Ordering::Relaxed);
            }
            Some((Matched::Completed, _)) => {
                shared.calls.fetch_add(1, Ordering::Relaxed);
                shared.completed.fetch_add(1, Ordering::Relaxed);
            }
            Some((Matched::Wrong, shape)) => shared.wrong(format!("{shape:?} was not owed")),
            None => shared.wrong(format!(
                "a {} without its params: {}",
                request.m,
                String::from_utf8_lossy(text)
            )),
        }
        reply(self, id);
    }

    pub(super) fn stop_consuming(&mut self, shared: &Shared, me: usize) {
        for consumers in &mut self.consumers {
            if let Some(at) = consumers.iter().position(|&s| s == me) {
                consumers.remove(at);
                shared.consumers.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    pub(super) fn wake_all(&self) {
        for slot in self.slots.iter().flatten() {
            slot.wake.notify_one();
        }
    }
}

// Frames in.

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    m: &'a str,
    #[serde(borrow, default)]
    p: Option<Params<'a>>,
    #[serde(default)]
    i: Option<u64>,
    #[serde(default)]
    id: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Params<'a> {
    #[serde(borrow, default)]
    c: Option<Target<'a>>,
    #[serde(borrow, default)]
    d: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    f: Option<&'a str>,
    #[serde(borrow, default)]
    a: Option<Vec<Cow<'a, str>>>,
}

/// A `c` parameter: a client id (digits or a number) or a channel name.
enum Target<'a> {
    Number(u64),
    Text(Cow<'a, str>),
}

impl Target<'_> {
    fn client(&self) -> Option<u64> {
        match self {
            Target::Number(n) => Some(*n),
            Target::Text(t) => t.parse().ok(),
        }
    }

    fn name(&self) -> &str {
        match self {
            Target::Number(_) => "",
            Target::Text(t) => t,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Target<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> de::Visitor<'de> for V<'a> {
            type Value = Target<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a client id or a channel")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Target::Number(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Target::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Target::Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

// Frames out.

#[derive(Serialize)]
struct PopEvent<'a> {
    e: &'a str,
    p: PopParams<'a>,
    id: Option<u64>,
}

#[derive(Serialize)]
struct PopParams<'a> {
    n: &'a str,
    c: Digits,
    t: &'a str,
    d: Script<'a>,
}

#[derive(Serialize)]
struct Script<'a> {
    event: &'a str,
    uid: Option<u64>,
    frame: ScriptFrame<'a>,
}

/// A Redis entry: the script's value plus the connection it is about.
#[derive(Serialize)]
struct RedisEntry<'a> {
    #[serde(flatten)]
    script: Script<'a>,
    node: &'a str,
    client_id: Digits,
}

#[derive(Serialize)]
struct ScriptFrame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a str,
    finish: bool,
}

/// A client id written as a JSON string of digits, as the engine writes it.
struct Digits(u64);

impl Serialize for Digits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

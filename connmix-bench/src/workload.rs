//! The benchmark's chat traffic: who is connected, which event comes next, and what every event
//! must bring back to which connection.

use std::fmt::Write as _;
use std::sync::Arc;

use connmix_protocol::chat::{op, ChatReply, ChatRequest, Delivery};
use connmix_protocol::ClientId;
use serde::Serialize;
use serde_json::{json, Value};

/// Members of each chat room in the throughput and latency runs.
pub const ROOM_SIZE: usize = 5;
/// One connection in this many also listens on `broadcast`, so a broadcast reaches a few
/// connections rather than all of them (that would measure the engine's fan-out instead of the
/// consumer).
pub const BROADCAST_EVERY: usize = 20;
/// Password of the login-storm users.
pub const STORM_PASSWORD: &str = "storm-password";

/// One synthetic browser connection.
#[derive(Debug, Clone)]
pub struct VConn {
    /// Index of the node (and its producer) holding it.
    pub node: usize,
    /// Its client id on that node.
    pub client: ClientId,
    /// The logged-in user, or `None` for a login-storm connection that has not logged in.
    pub uid: Option<u64>,
    /// The user's id in the database.
    pub user: u64,
    /// The user's name.
    pub name: String,
    /// Its room (`room_b<room>`), for logged-in connections.
    pub room: usize,
}

/// Every synthetic connection and the static channel memberships.
#[derive(Debug, Clone, Default)]
pub struct Population {
    /// Logged-in connections first, then the login-storm ones.
    pub conns: Vec<VConn>,
    /// How many of `conns` are logged in (the traffic senders).
    pub senders: usize,
    /// Connection indexes per room.
    pub rooms: Vec<Vec<usize>>,
    /// Connection indexes listening on `broadcast`.
    pub broadcast: Vec<usize>,
    /// The replies every event shares.
    pub canned: Canned,
}

impl Population {
    /// The channels connection `i` is subscribed to before traffic starts.
    pub fn channels_of(&self, i: usize) -> Vec<String> {
        let conn = &self.conns[i];
        let Some(uid) = conn.uid else {
            return Vec::new();
        };
        let mut channels = vec![room_name(conn.room), format!("user_{uid}")];
        if i.is_multiple_of(BROADCAST_EVERY) {
            channels.push("broadcast".to_owned());
        }
        channels
    }
}

/// The name of room `n`.
pub fn room_name(n: usize) -> String {
    format!("room_b{n}")
}

/// The op mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `sendtoroom` to the sender's own room (70%).
    SendToRoom,
    /// `ping` (10%).
    Ping,
    /// `subscribe`/`unsubscribe` of a private scratch room, alternating (10%).
    Toggle,
    /// `sendtouser` to another connection's user (5%).
    SendToUser,
    /// `sendbroadcast` (5%).
    SendBroadcast,
}

/// The op of event `seq`: a fixed pseudo-random sequence, so every contestant gets the same one.
pub fn op_for(seq: u64) -> Op {
    match mix(seq) % 100 {
        0..70 => Op::SendToRoom,
        70..80 => Op::Ping,
        80..90 => Op::Toggle,
        90..95 => Op::SendToUser,
        _ => Op::SendBroadcast,
    }
}

fn mix(mut x: u64) -> u64 {
    // splitmix64: cheap, well spread, deterministic.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The text of message `seq`: quotes, a backslash and non-ASCII, as real chat has.
pub fn text_for(seq: u64) -> String {
    let mut text = String::with_capacity(64);
    let _ = write!(text, "m{seq} said \"hi\" \\ back-slash, ünïcødé 漢字 ✓");
    text
}

/// What a contestant answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answers {
    /// The chat protocol: acknowledgements, pongs and deliveries.
    Chat,
    /// The frame itself, back to its sender, and nothing else.
    Echo,
}

/// One reply a connection must receive.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// The receiving connection's index.
    pub conn: usize,
    /// The reply's text as chat-consumer writes it (a delivery without its `time`), shared by
    /// every member a delivery goes to; the checker compares other field orders as JSON.
    pub text: Arc<str>,
    /// Whether this is the sender's own answer, whose latency is measured.
    pub timed: bool,
}

impl Expect {
    fn reply(conn: usize, text: Arc<str>) -> Self {
        Self {
            conn,
            text,
            timed: true,
        }
    }
}

/// What an event asks of the engine API, in the order a consumer makes the calls: what the
/// stand-in engine checks, where the mock checks what reaches the connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `mesh.send` of `data` to connection `conn`.
    Send {
        /// The receiving connection's index.
        conn: usize,
        /// The text, as [`Expect::text`].
        data: Arc<str>,
    },
    /// `mesh.publish` of `data` on `channel`.
    Publish {
        /// The channel.
        channel: String,
        /// The delivery, as [`Expect::text`].
        data: Arc<str>,
    },
    /// `conn.call` of `subscribe` or `unsubscribe` with the channels `args` on `conn`.
    ConnCall {
        /// The connection's index.
        conn: usize,
        /// `subscribe` or `unsubscribe`.
        function: &'static str,
        /// The channels.
        args: Vec<String>,
    },
}

/// One event ready to push: what the script would queue, and what must come back.
#[derive(Debug, Clone)]
pub struct Event {
    /// The sending connection.
    pub conn: usize,
    /// The browser's frame.
    pub frame: String,
    /// Replies the connections must receive (checked by the mock run).
    pub expect: Vec<Expect>,
    /// Engine calls the consumer must make (checked by the stand-in).
    pub calls: Vec<Call>,
}

impl Event {
    /// The value the engine script queues for this event.
    pub fn value(&self, pop: &Population) -> Value {
        script_value(pop.conns[self.conn].uid, &self.frame)
    }
}

/// The replies that are the same for every event, serialised once.
#[derive(Debug, Clone)]
pub struct Canned {
    pong: Arc<str>,
    successes: Vec<(&'static str, Arc<str>)>,
}

impl Default for Canned {
    fn default() -> Self {
        let text = |reply: ChatReply| Arc::<str>::from(reply.to_json());
        Self {
            pong: text(ChatReply::pong()),
            successes: [
                op::SUBSCRIBE,
                op::UNSUBSCRIBE,
                op::SEND_TO_ROOM,
                op::SEND_TO_USER,
                op::SEND_BROADCAST,
            ]
            .into_iter()
            .map(|op| (op, text(ChatReply::success(op))))
            .collect(),
        }
    }
}

impl Canned {
    fn success(&self, op: &str) -> Arc<str> {
        self.successes.iter().find(|(o, _)| *o == op).map_or_else(
            || ChatReply::success(op).to_json().into(),
            |(_, t)| Arc::clone(t),
        )
    }
}

/// The value the tutorial's script queues for a browser text frame.
pub fn script_value(uid: Option<u64>, frame: &str) -> Value {
    let frame = json!({"type": "text", "data": frame});
    match uid {
        Some(uid) => json!({"event": "message", "uid": uid, "frame": frame}),
        None => json!({"event": "message", "frame": frame}),
    }
}

/// Builds event `seq` of the mix, sent by connection `conn`; `subscribed` is whether `conn`
/// is in its scratch room now, and is flipped by a toggle.
pub fn event(
    pop: &Population,
    seq: u64,
    conn: usize,
    subscribed: &mut bool,
    answers: Answers,
) -> Event {
    let me = &pop.conns[conn];
    let uid = me.uid.unwrap_or(0);
    let request = match op_for(seq) {
        Op::SendToRoom => ChatRequest::SendToRoom {
            room: room_name(me.room),
            text: text_for(seq),
        },
        Op::Ping => ChatRequest::Ping,
        Op::Toggle => {
            let channels = vec![format!("room_s{conn}")];
            *subscribed = !*subscribed;
            if *subscribed {
                ChatRequest::Subscribe { channels }
            } else {
                ChatRequest::Unsubscribe { channels }
            }
        }
        Op::SendToUser => {
            let target = user_conn(pop, conn);
            ChatRequest::SendToUser {
                user: format!("user_{}", pop.conns[target].uid.unwrap_or(0)),
                text: text_for(seq),
            }
        }
        Op::SendBroadcast => ChatRequest::SendBroadcast {
            text: text_for(seq),
        },
    };
    let frame = request.to_frame();
    let (expect, calls) = match answers {
        Answers::Echo => {
            let text: Arc<str> = frame.as_str().into();
            (
                vec![Expect::reply(conn, Arc::clone(&text))],
                vec![Call::Send { conn, data: text }],
            )
        }
        Answers::Chat => chat_expect(pop, conn, uid, &request),
    };
    Event {
        conn,
        frame,
        expect,
        calls,
    }
}

/// The connection that `conn`'s `sendtouser` messages go to.
fn user_conn(pop: &Population, conn: usize) -> usize {
    (conn + 7) % pop.senders
}

/// What chat-consumer must send for `request` from logged-in connection `conn`: the frames the
/// connections receive, and the engine calls that make them.
fn chat_expect(
    pop: &Population,
    conn: usize,
    uid: u64,
    request: &ChatRequest,
) -> (Vec<Expect>, Vec<Call>) {
    let name = pop.conns[conn].name.as_str();
    let delivered = |channel: &str, text: &str, to: &[usize]| -> (Vec<Expect>, Vec<Call>) {
        let delivery = ChatReply::Delivery(Delivery::new(channel, uid, Some(name), text, None));
        let data: Arc<str> = delivery.to_json().into();
        let expect = to
            .iter()
            .map(|&member| Expect {
                conn: member,
                text: Arc::clone(&data),
                timed: false,
            })
            .collect();
        let call = Call::Publish {
            channel: channel.to_owned(),
            data,
        };
        (expect, vec![call])
    };
    let op = request.op();
    let (mut expect, mut calls) = match request {
        ChatRequest::Ping => {
            let pong = Arc::clone(&pop.canned.pong);
            return (
                vec![Expect::reply(conn, Arc::clone(&pong))],
                vec![Call::Send { conn, data: pong }],
            );
        }
        ChatRequest::Auth { .. } => (Vec::new(), Vec::new()),
        ChatRequest::Subscribe { channels } | ChatRequest::Unsubscribe { channels } => {
            let call = Call::ConnCall {
                conn,
                function: if matches!(request, ChatRequest::Subscribe { .. }) {
                    op::SUBSCRIBE
                } else {
                    op::UNSUBSCRIBE
                },
                args: channels.clone(),
            };
            (Vec::new(), vec![call])
        }
        ChatRequest::SendToRoom { room, text } => {
            delivered(room, text, &pop.rooms[pop.conns[conn].room])
        }
        // Every user has one connection: the one `event` addressed.
        ChatRequest::SendToUser { user, text } => delivered(user, text, &[user_conn(pop, conn)]),
        ChatRequest::SendBroadcast { text } => delivered("broadcast", text, &pop.broadcast),
        // An op a later connmix-protocol parses: the consumer answers that it is unsupported.
        other => {
            let refusal: Arc<str> = ChatReply::error(other.op(), "unsupported op")
                .to_json()
                .into();
            return (
                vec![Expect::reply(conn, Arc::clone(&refusal))],
                vec![Call::Send {
                    conn,
                    data: refusal,
                }],
            );
        }
    };
    let ack = pop.canned.success(op);
    expect.push(Expect::reply(conn, Arc::clone(&ack)));
    calls.push(Call::Send { conn, data: ack });
    (expect, calls)
}

/// A login of storm connection `conn` as `name` with the storm password, and its answer.
pub fn login(pop: &Population, conn: usize, uid: u64) -> Event {
    let name = pop.conns[conn].name.clone();
    let request = ChatRequest::Auth {
        name: name.clone(),
        password: STORM_PASSWORD.to_owned(),
    };
    let answer: Arc<str> = ChatReply::auth_success(uid, &name, None).to_json().into();
    Event {
        conn,
        frame: request.to_frame(),
        expect: vec![Expect::reply(conn, answer)],
        // A login's engine calls (`set_context_value`, then the answer) are not what the
        // stand-in measures; logins run on the mock only.
        calls: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population() -> Population {
        let conns: Vec<VConn> = (0..20)
            .map(|i| VConn {
                node: i % 2,
                client: ClientId(i as u64 + 1),
                uid: Some(100 + i as u64),
                user: 100 + i as u64,
                name: format!("bench{i}"),
                room: i / ROOM_SIZE,
            })
            .collect();
        let rooms = (0..4)
            .map(|r| (r * ROOM_SIZE..(r + 1) * ROOM_SIZE).collect())
            .collect();
        Population {
            conns,
            senders: 20,
            rooms,
            broadcast: vec![0],
            canned: Canned::default(),
        }
    }

    #[test]
    fn the_mix_has_the_specified_shares() {
        let mut counts = std::collections::HashMap::new();
        for seq in 0..100_000 {
            *counts.entry(op_for(seq)).or_insert(0u32) += 1;
        }
        let share = |op| f64::from(counts[&op]) / 100_000.0;
        for (op, want) in [
            (Op::SendToRoom, 0.70),
            (Op::Ping, 0.10),
            (Op::Toggle, 0.10),
            (Op::SendToUser, 0.05),
            (Op::SendBroadcast, 0.05),
        ] {
            assert!((share(op) - want).abs() < 0.01, "{op:?}: {}", share(op));
        }
    }

    #[test]
    fn a_room_message_is_acknowledged_and_reaches_every_member_with_its_text_intact() {
        let pop = population();
        let seq = (0..).find(|&s| op_for(s) == Op::SendToRoom).unwrap();
        let event = event(&pop, seq, 6, &mut false, Answers::Chat);
        let sent: Value = serde_json::from_str(&event.frame).unwrap();
        assert_eq!(sent["args"][1], text_for(seq));
        let members: Vec<usize> = event
            .expect
            .iter()
            .filter(|e| !e.timed)
            .map(|e| e.conn)
            .collect();
        assert_eq!(members, pop.rooms[1]);
        let delivery: Value = serde_json::from_str(&event.expect[0].text).unwrap();
        assert_eq!(delivery["text"], text_for(seq));
        assert_eq!(
            delivery["data"],
            format!("uid:106,message:{}", text_for(seq))
        );
        let ack = event.expect.last().unwrap();
        assert_eq!((ack.conn, ack.timed), (6, true));
        assert_eq!(&*ack.text, r#"{"op":"sendtoroom","success":true}"#);
        // The engine calls: one publish of the same delivery on the room, then the answer.
        assert_eq!(
            event.calls,
            vec![
                Call::Publish {
                    channel: "room_b1".into(),
                    data: Arc::clone(&event.expect[0].text)
                },
                Call::Send {
                    conn: 6,
                    data: Arc::clone(&ack.text)
                }
            ]
        );
    }

    #[test]
    fn toggles_alternate_and_echo_expects_the_frame_back() {
        let pop = population();
        let toggles: Vec<u64> = (0..).filter(|&s| op_for(s) == Op::Toggle).take(2).collect();
        let mut subscribed = false;
        let first = event(&pop, toggles[0], 3, &mut subscribed, Answers::Chat);
        let second = event(&pop, toggles[1], 3, &mut subscribed, Answers::Chat);
        assert_eq!(
            &*first.expect[0].text,
            r#"{"op":"subscribe","success":true}"#
        );
        assert_eq!(
            &*second.expect[0].text,
            r#"{"op":"unsubscribe","success":true}"#
        );
        assert_eq!(
            first.calls[0],
            Call::ConnCall {
                conn: 3,
                function: "subscribe",
                args: vec!["room_s3".into()]
            }
        );
        let echo = event(&pop, 5, 3, &mut subscribed, Answers::Echo);
        assert_eq!(echo.expect.len(), 1);
        assert_eq!(&*echo.expect[0].text, echo.frame);
    }
}

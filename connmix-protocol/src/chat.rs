//! The tutorial's chat protocol between a browser and the chat consumer.
//!
//! The browser sends `{"op":..,"args":[..]}` frames; the consumer answers with
//! `{"op":..,"success":true}` or `{"op":..,"error":..}` and delivers channel messages as
//! `{"event":"subscribe","channel":..,"data":..}`. Every outgoing message here is built by
//! serde, so no text a user types can add a field to it.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::json_type;

/// Op names.
pub mod op {
    /// Log in with name and password.
    pub const AUTH: &str = "auth";
    /// Subscribe to channels.
    pub const SUBSCRIBE: &str = "subscribe";
    /// Unsubscribe from channels.
    pub const UNSUBSCRIBE: &str = "unsubscribe";
    /// Send to a room channel.
    pub const SEND_TO_ROOM: &str = "sendtoroom";
    /// Send to a user's channel.
    pub const SEND_TO_USER: &str = "sendtouser";
    /// Send to everyone.
    pub const SEND_BROADCAST: &str = "sendbroadcast";
    /// Keep-alive.
    pub const PING: &str = "ping";
    /// The answer to `ping`.
    pub const PONG: &str = "pong";
    /// A channel's latest messages.
    pub const HISTORY: &str = "history";
    /// Who is in a room.
    pub const PRESENCE: &str = "presence";
}

/// The `event` of a message on a channel.
pub mod event {
    /// A chat message.
    pub const MESSAGE: &str = "subscribe";
    /// A user's first connection joined the room.
    pub const JOIN: &str = "join";
    /// A user's last connection left the room.
    pub const LEAVE: &str = "leave";
}

/// Most messages one `history` request returns.
pub const MAX_HISTORY: u32 = 100;
/// Messages a `history` request without a count returns.
pub const DEFAULT_HISTORY: u32 = 50;

/// The error text for a frame that is not a JSON object with an `op`.
pub const JSON_FORMAT_ERROR: &str = "Json format error";

/// One request from a browser.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "structural-serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ChatRequest {
    /// `{"op":"auth","args":[name, password]}`.
    Auth {
        /// User name.
        name: String,
        /// Password, never shown by `Debug`.
        password: String,
    },
    /// `{"op":"auth","args":[token]}`: a login with the token an earlier login returned.
    AuthToken {
        /// The session token, never shown by `Debug`.
        token: String,
    },
    /// `{"op":"subscribe","args":[channel, ..]}`.
    Subscribe {
        /// Channels.
        channels: Vec<String>,
    },
    /// `{"op":"unsubscribe","args":[channel, ..]}`.
    Unsubscribe {
        /// Channels.
        channels: Vec<String>,
    },
    /// `{"op":"sendtoroom","args":[room, text]}`.
    SendToRoom {
        /// The room channel, `room_<name>`.
        room: String,
        /// The message.
        text: String,
    },
    /// `{"op":"sendtouser","args":[user channel, text]}`.
    SendToUser {
        /// The user's channel, `user_<id>`.
        user: String,
        /// The message.
        text: String,
    },
    /// `{"op":"sendbroadcast","args":[text]}`.
    SendBroadcast {
        /// The message.
        text: String,
    },
    /// `{"op":"ping"}`.
    Ping,
    /// `{"op":"history","args":[channel]}` or `[channel, count]`: the channel's latest
    /// messages.
    History {
        /// The channel.
        channel: String,
        /// How many, 1 to [`MAX_HISTORY`]; `None` for [`DEFAULT_HISTORY`].
        count: Option<u32>,
    },
    /// `{"op":"presence","args":[room]}`: who is in a room.
    Presence {
        /// The room channel.
        channel: String,
    },
}

impl fmt::Debug for ChatRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatRequest::Auth { name, .. } => f
                .debug_struct("Auth")
                .field("name", name)
                .field("password", &"<redacted>")
                .finish(),
            ChatRequest::AuthToken { .. } => f
                .debug_struct("AuthToken")
                .field("token", &"<redacted>")
                .finish(),
            ChatRequest::Subscribe { channels } => f
                .debug_struct("Subscribe")
                .field("channels", channels)
                .finish(),
            ChatRequest::Unsubscribe { channels } => f
                .debug_struct("Unsubscribe")
                .field("channels", channels)
                .finish(),
            ChatRequest::SendToRoom { room, text } => f
                .debug_struct("SendToRoom")
                .field("room", room)
                .field("text", text)
                .finish(),
            ChatRequest::SendToUser { user, text } => f
                .debug_struct("SendToUser")
                .field("user", user)
                .field("text", text)
                .finish(),
            ChatRequest::SendBroadcast { text } => {
                f.debug_struct("SendBroadcast").field("text", text).finish()
            }
            ChatRequest::Ping => f.write_str("Ping"),
            ChatRequest::History { channel, count } => f
                .debug_struct("History")
                .field("channel", channel)
                .field("count", count)
                .finish(),
            ChatRequest::Presence { channel } => f
                .debug_struct("Presence")
                .field("channel", channel)
                .finish(),
        }
    }
}

/// Longest `op` an error reply echoes, in bytes (the known ops are far shorter).
pub const MAX_ECHOED_OP: usize = 64;
/// Longest `error` text of an error reply, in bytes.
pub const MAX_ERROR_TEXT: usize = 256;

/// `text` cut to at most `max` bytes at a character boundary, marked with `…` when cut.
fn clip(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let marker = '…';
    let mut end = max.saturating_sub(marker.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push(marker);
    text
}

/// Why a browser frame is not a chat request. The `Display` text is what the browser is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatRequestError {
    /// Not a JSON object with a string `op`: answered `{"error":"Json format error"}`.
    #[error("{}", JSON_FORMAT_ERROR)]
    Format,
    /// An `op` nobody knows.
    #[error("Unknown op")]
    UnknownOp(String),
    /// The right op with the wrong arguments.
    #[error("{reason}")]
    BadArgs {
        /// The op.
        op: String,
        /// What is wrong, for the browser.
        reason: String,
    },
}

impl ChatRequestError {
    /// The op to name in the error reply, if the frame had one.
    pub fn op(&self) -> Option<&str> {
        match self {
            ChatRequestError::Format => None,
            ChatRequestError::UnknownOp(op) | ChatRequestError::BadArgs { op, .. } => Some(op),
        }
    }

    /// The reply to send the browser.
    pub fn reply(&self) -> ChatReply {
        match self.op() {
            None => ChatReply::FormatError,
            Some(op) => ChatReply::error(op, self.to_string()),
        }
    }
}

impl ChatRequest {
    /// The op name.
    pub fn op(&self) -> &'static str {
        match self {
            ChatRequest::Auth { .. } | ChatRequest::AuthToken { .. } => op::AUTH,
            ChatRequest::Subscribe { .. } => op::SUBSCRIBE,
            ChatRequest::Unsubscribe { .. } => op::UNSUBSCRIBE,
            ChatRequest::SendToRoom { .. } => op::SEND_TO_ROOM,
            ChatRequest::SendToUser { .. } => op::SEND_TO_USER,
            ChatRequest::SendBroadcast { .. } => op::SEND_BROADCAST,
            ChatRequest::Ping => op::PING,
            ChatRequest::History { .. } => op::HISTORY,
            ChatRequest::Presence { .. } => op::PRESENCE,
        }
    }

    /// Parses a browser frame, checking the argument count and types of each op.
    pub fn parse(frame: &str) -> Result<Self, ChatRequestError> {
        // A well-formed request is read straight into its fields; every refusal comes from the
        // general path below, which says what is wrong.
        if let Ok(typed) = serde_json::from_str::<RequestIn<'_>>(frame) {
            if let Some(request) = typed.request() {
                return Ok(request);
            }
        }
        Self::parse_general(frame)
    }

    fn parse_general(frame: &str) -> Result<Self, ChatRequestError> {
        let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(frame) else {
            return Err(ChatRequestError::Format);
        };
        let Some(Value::String(op)) = obj.remove("op") else {
            return Err(ChatRequestError::Format);
        };
        let args = match obj.remove("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(args)) => args,
            Some(other) => {
                return Err(ChatRequestError::BadArgs {
                    op,
                    reason: format!("args must be a list, not a {}", json_type(&other)),
                })
            }
        };
        let args = Args { op: &op, args };
        let request = match op.as_str() {
            op::AUTH if args.args.len() == 1 => {
                let [token] = args.strings(["token"])?;
                ChatRequest::AuthToken { token }
            }
            op::AUTH if args.args.len() != 2 => {
                return Err(args.bad(format!(
                    "expects 2 arguments (name, password) or 1 (token), got {}",
                    args.args.len()
                )))
            }
            op::AUTH => {
                let [name, password] = args.strings(["name", "password"])?;
                ChatRequest::Auth { name, password }
            }
            op::SUBSCRIBE => ChatRequest::Subscribe {
                channels: args.channels()?,
            },
            op::UNSUBSCRIBE => ChatRequest::Unsubscribe {
                channels: args.channels()?,
            },
            op::SEND_TO_ROOM => {
                let [room, text] = args.strings(["room", "message"])?;
                ChatRequest::SendToRoom { room, text }
            }
            op::SEND_TO_USER => {
                let [user, text] = args.strings(["user", "message"])?;
                ChatRequest::SendToUser { user, text }
            }
            op::SEND_BROADCAST => {
                let [text] = args.strings(["message"])?;
                ChatRequest::SendBroadcast { text }
            }
            op::PING => ChatRequest::Ping,
            op::HISTORY => args.history()?,
            op::PRESENCE => {
                let [channel] = args.strings(["channel"])?;
                ChatRequest::Presence { channel }
            }
            _ => return Err(ChatRequestError::UnknownOp(op)),
        };
        Ok(request)
    }

    /// The frame a browser sends for this request.
    pub fn to_frame(&self) -> String {
        let args: Vec<&str> = match self {
            ChatRequest::Auth { name, password } => vec![name, password],
            ChatRequest::AuthToken { token } => vec![token],
            ChatRequest::History {
                channel,
                count: Some(count),
            } => {
                return serde_json::json!({ "op": op::HISTORY, "args": [channel, count] })
                    .to_string()
            }
            ChatRequest::History { channel, .. } | ChatRequest::Presence { channel } => {
                vec![channel]
            }
            ChatRequest::Subscribe { channels } | ChatRequest::Unsubscribe { channels } => {
                channels.iter().map(String::as_str).collect()
            }
            ChatRequest::SendToRoom { room, text } => vec![room, text],
            ChatRequest::SendToUser { user, text } => vec![user, text],
            ChatRequest::SendBroadcast { text } => vec![text],
            ChatRequest::Ping => return serde_json::json!({ "op": op::PING }).to_string(),
        };
        serde_json::json!({ "op": self.op(), "args": args }).to_string()
    }
}

/// A browser frame whose args are all strings, borrowed where they need no unescaping.
#[derive(Deserialize)]
struct RequestIn<'a> {
    #[serde(borrow)]
    op: Cow<'a, str>,
    #[serde(borrow, default)]
    args: Option<Vec<Cow<'a, str>>>,
}

impl RequestIn<'_> {
    /// The request, when the op is known and its argument count right.
    fn request(self) -> Option<ChatRequest> {
        let args = self.args.unwrap_or_default();
        let channels = |args: Vec<Cow<'_, str>>| {
            (!args.is_empty()).then(|| args.into_iter().map(Cow::into_owned).collect())
        };
        let count = args.len();
        let op = self.op.as_ref();
        if op == op::SUBSCRIBE {
            return Some(ChatRequest::Subscribe {
                channels: channels(args)?,
            });
        }
        if op == op::UNSUBSCRIBE {
            return Some(ChatRequest::Unsubscribe {
                channels: channels(args)?,
            });
        }
        let mut strings = args.into_iter().map(Cow::into_owned);
        let request = match (op, count) {
            (op::AUTH, 2) => ChatRequest::Auth {
                name: strings.next()?,
                password: strings.next()?,
            },
            (op::AUTH, 1) => ChatRequest::AuthToken {
                token: strings.next()?,
            },
            (op::HISTORY, 1) => ChatRequest::History {
                channel: strings.next()?,
                count: None,
            },
            (op::PRESENCE, 1) => ChatRequest::Presence {
                channel: strings.next()?,
            },
            (op::SEND_TO_ROOM, 2) => ChatRequest::SendToRoom {
                room: strings.next()?,
                text: strings.next()?,
            },
            (op::SEND_TO_USER, 2) => ChatRequest::SendToUser {
                user: strings.next()?,
                text: strings.next()?,
            },
            (op::SEND_BROADCAST, 1) => ChatRequest::SendBroadcast {
                text: strings.next()?,
            },
            (op::PING, _) => ChatRequest::Ping,
            _ => return None,
        };
        Some(request)
    }
}

struct Args<'a> {
    op: &'a str,
    args: Vec<Value>,
}

impl Args<'_> {
    fn bad(&self, reason: String) -> ChatRequestError {
        ChatRequestError::BadArgs {
            op: self.op.to_owned(),
            reason,
        }
    }

    /// Exactly `N` string arguments, named for the error text.
    fn strings<const N: usize>(self, names: [&str; N]) -> Result<[String; N], ChatRequestError> {
        if self.args.len() != N {
            return Err(self.bad(format!(
                "expects {N} argument{} ({}), got {}",
                if N == 1 { "" } else { "s" },
                names.join(", "),
                self.args.len()
            )));
        }
        let mut out: [String; N] = std::array::from_fn(|_| String::new());
        for (i, arg) in self.args.iter().enumerate() {
            match arg {
                Value::String(s) => out[i] = s.clone(),
                other => {
                    return Err(self.bad(format!(
                        "{} must be a string, not a {}",
                        names[i],
                        json_type(other)
                    )))
                }
            }
        }
        Ok(out)
    }

    /// `[channel]` or `[channel, count]`, the count a whole number from 1 to [`MAX_HISTORY`].
    fn history(mut self) -> Result<ChatRequest, ChatRequestError> {
        let count = match self.args.len() {
            2 => self.args.pop(),
            _ => None,
        };
        let count = match count {
            None => None,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(n @ 1..) if n <= u64::from(MAX_HISTORY) => u32::try_from(n).ok(),
                _ => {
                    return Err(self.bad(format!(
                        "count must be a whole number from 1 to {MAX_HISTORY}, not {n}"
                    )))
                }
            },
            Some(other) => {
                return Err(self.bad(format!(
                    "count must be a number, not a {}",
                    json_type(&other)
                )))
            }
        };
        if count.is_some() {
            let [channel] = self.strings(["channel"])?;
            return Ok(ChatRequest::History { channel, count });
        }
        if self.args.len() != 1 {
            return Err(self.bad(format!(
                "expects 1 or 2 arguments (channel, count), got {}",
                self.args.len()
            )));
        }
        let [channel] = self.strings(["channel"])?;
        Ok(ChatRequest::History { channel, count })
    }

    /// One or more channel names.
    fn channels(self) -> Result<Vec<String>, ChatRequestError> {
        if self.args.is_empty() {
            return Err(self.bad("expects at least one channel".to_owned()));
        }
        let mut channels = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            match arg {
                Value::String(s) => channels.push(s.clone()),
                other => {
                    return Err(self.bad(format!(
                        "channel must be a string, not a {}",
                        json_type(other)
                    )))
                }
            }
        }
        Ok(channels)
    }
}

/// A message from the consumer to a browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ChatReply {
    /// `{"op":"auth","success":true,"uid":1,"name":"user1"}`: a login succeeded. The tutorial's
    /// reply plus who logged in, so a page can subscribe to its own `user_<uid>` channel.
    AuthSuccess {
        /// Always `auth`.
        op: String,
        /// Always true.
        success: bool,
        /// The user's id.
        uid: u64,
        /// The user's name.
        name: String,
        /// A session token: `{"op":"auth","args":[token]}` logs in again with it until it
        /// expires or the password changes. Absent from consumers without sessions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// `{"op":"history","success":true,"channel":..,"messages":[..]}`: a channel's latest
    /// messages, oldest first.
    History {
        /// Always `history`.
        op: String,
        /// Always true.
        success: bool,
        /// The channel asked about.
        channel: String,
        /// The messages, as they were delivered.
        messages: Vec<Delivery>,
    },
    /// `{"op":"presence","success":true,"channel":..,"users":[..]}`: who is in a room.
    Presence {
        /// Always `presence`.
        op: String,
        /// Always true.
        success: bool,
        /// The room asked about.
        channel: String,
        /// Each user with a connection in the room, once.
        users: Vec<Member>,
    },
    /// `{"op":..,"success":true}`.
    Success {
        /// The op that succeeded.
        op: String,
        /// Always true.
        success: bool,
    },
    /// `{"op":..,"error":..}`.
    Error {
        /// The op that failed.
        op: String,
        /// Why, for a person.
        error: String,
    },
    /// `{"op":"pong"}`.
    Pong {
        /// Always `pong`.
        op: String,
    },
    /// `{"event":"subscribe","channel":..,"data":..}`: a message on a subscribed channel.
    Delivery(Delivery),
    /// `{"event":"join"|"leave","channel":..,"uid":..,"from":..,"time":..}`: someone came
    /// into a room or left it.
    Membership(MembershipEvent),
    /// `{"error":"Json format error"}`.
    #[serde(with = "format_error")]
    FormatError,
}

impl ChatReply {
    /// Success of an op.
    pub fn success(op: &str) -> Self {
        ChatReply::Success {
            op: op.to_owned(),
            success: true,
        }
    }

    /// Success of a login, with the session token when there is one.
    pub fn auth_success(uid: u64, name: &str, token: Option<String>) -> Self {
        ChatReply::AuthSuccess {
            op: op::AUTH.to_owned(),
            success: true,
            uid,
            name: name.to_owned(),
            token,
        }
    }

    /// The answer to `history`: `messages` oldest first.
    pub fn history(channel: &str, messages: Vec<Delivery>) -> Self {
        ChatReply::History {
            op: op::HISTORY.to_owned(),
            success: true,
            channel: channel.to_owned(),
            messages,
        }
    }

    /// The answer to `presence`.
    pub fn presence(channel: &str, users: Vec<Member>) -> Self {
        ChatReply::Presence {
            op: op::PRESENCE.to_owned(),
            success: true,
            channel: channel.to_owned(),
            users,
        }
    }

    /// Failure of an op.
    ///
    /// Both are clipped ([`MAX_ECHOED_OP`], [`MAX_ERROR_TEXT`] bytes, ending in `…`): they may
    /// echo what the browser sent (an unknown op, a channel name), which may be huge.
    pub fn error(op: &str, error: impl Into<String>) -> Self {
        ChatReply::Error {
            op: clip(op.to_owned(), MAX_ECHOED_OP),
            error: clip(error.into(), MAX_ERROR_TEXT),
        }
    }

    /// The answer to ping.
    pub fn pong() -> Self {
        ChatReply::Pong {
            op: op::PONG.to_owned(),
        }
    }

    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail; an empty object is never sent.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// A channel message as browsers receive it.
///
/// `data` keeps the tutorial's `uid:<id>,message:<text>` so its pages keep working; the other
/// fields give a page what it needs without parsing that string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delivery {
    /// Always `subscribe`.
    pub event: String,
    /// The channel it was published on.
    pub channel: String,
    /// `uid:<sender id>,message:<text>`.
    pub data: String,
    /// The sender's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u64>,
    /// The sender's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The text as typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// When the consumer handled it, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
}

impl Delivery {
    /// A delivery with the tutorial's `data` and the extra fields filled.
    pub fn new(channel: &str, uid: u64, from: Option<&str>, text: &str, time: Option<u64>) -> Self {
        Self {
            event: event::MESSAGE.to_owned(),
            channel: channel.to_owned(),
            data: format!("uid:{uid},message:{text}"),
            uid: Some(uid),
            from: from.map(str::to_owned),
            text: Some(text.to_owned()),
            time,
        }
    }
}

/// A user in a room, as `presence` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Member {
    /// The user's id.
    pub uid: u64,
    /// The user's name.
    pub name: String,
}

impl Member {
    /// User `uid`, called `name`.
    pub fn new(uid: u64, name: impl Into<String>) -> Self {
        Self {
            uid,
            name: name.into(),
        }
    }
}

/// A user's first connection joined a room ([`event::JOIN`]), or their last one left it
/// ([`event::LEAVE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MembershipEvent {
    /// [`event::JOIN`] or [`event::LEAVE`].
    pub event: String,
    /// The room.
    pub channel: String,
    /// Who.
    pub uid: u64,
    /// Their name.
    pub from: String,
    /// When the consumer saw it, in milliseconds since the Unix epoch.
    pub time: u64,
}

impl MembershipEvent {
    /// `uid` (`from`) joined `channel` at `time`.
    pub fn join(channel: &str, uid: u64, from: &str, time: u64) -> Self {
        Self::new(event::JOIN, channel, uid, from, time)
    }

    /// `uid` (`from`) left `channel` at `time`.
    pub fn leave(channel: &str, uid: u64, from: &str, time: u64) -> Self {
        Self::new(event::LEAVE, channel, uid, from, time)
    }

    fn new(event: &str, channel: &str, uid: u64, from: &str, time: u64) -> Self {
        Self {
            event: event.to_owned(),
            channel: channel.to_owned(),
            uid,
            from: from.to_owned(),
            time,
        }
    }

    /// The JSON text browsers receive.
    pub fn to_json(&self) -> String {
        // Strings and numbers only: writing them cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A [`Delivery`] written from borrowed parts, so that publishing a message copies its text
/// once, into the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryRef<'a> {
    /// The channel it is published on.
    pub channel: &'a str,
    /// The sender's user id.
    pub uid: u64,
    /// The sender's name, when known.
    pub from: Option<&'a str>,
    /// The text as typed.
    pub text: &'a str,
    /// When the consumer handled it, in milliseconds since the Unix epoch.
    pub time: Option<u64>,
}

impl<'a> DeliveryRef<'a> {
    /// A delivery of `text` from user `uid` on `channel`, with the sender's name and the time
    /// (milliseconds since the Unix epoch) when known.
    pub fn new(
        channel: &'a str,
        uid: u64,
        from: Option<&'a str>,
        text: &'a str,
        time: Option<u64>,
    ) -> Self {
        Self {
            channel,
            uid,
            from,
            text,
            time,
        }
    }

    /// The JSON text browsers receive: the same as [`ChatReply::Delivery`] of the same fields.
    pub fn to_json(&self) -> String {
        // Strings and numbers only: writing them cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for DeliveryRef<'_> {
    /// Field for field what [`Delivery`] writes, so a caller can write it into a buffer of its
    /// own.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DeliveryOut {
            event: event::MESSAGE,
            channel: self.channel,
            data: TutorialData {
                uid: self.uid,
                text: self.text,
            },
            uid: self.uid,
            from: self.from,
            text: self.text,
            time: self.time,
        }
        .serialize(s)
    }
}

/// The field order of [`Delivery`].
#[derive(Serialize)]
struct DeliveryOut<'a> {
    event: &'static str,
    channel: &'a str,
    data: TutorialData<'a>,
    uid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<u64>,
}

/// `uid:<id>,message:<text>`, written into the frame without a string of its own.
struct TutorialData<'a> {
    uid: u64,
    text: &'a str,
}

impl Serialize for TutorialData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("uid:{},message:{}", self.uid, self.text))
    }
}

mod format_error {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Shape {
        error: String,
    }

    pub(super) fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        Shape {
            error: super::JSON_FORMAT_ERROR.to_owned(),
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        let shape = Shape::deserialize(d)?;
        if shape.error == super::JSON_FORMAT_ERROR {
            Ok(())
        } else {
            Err(serde::de::Error::custom("not the format error"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_do_not_echo_huge_input() {
        let huge_op = "x".repeat(100_000);
        let err = ChatRequest::parse(&format!(r#"{{"op":"{huge_op}"}}"#)).unwrap_err();
        let ChatReply::Error { op, error } = err.reply() else {
            panic!("an unknown op gets an error reply");
        };
        assert!(op.len() <= MAX_ECHOED_OP && op.ends_with('…'), "{op}");
        assert_eq!(error, "Unknown op");
        let target = "é".repeat(500_000);
        let ChatReply::Error { error, .. } =
            ChatReply::error(op::SEND_TO_USER, format!("Invalid channel: {target}"))
        else {
            unreachable!()
        };
        assert!(error.len() <= MAX_ERROR_TEXT, "{}", error.len());
        assert!(error.starts_with("Invalid channel: éé") && error.ends_with('…'));
        // Short texts are untouched.
        assert_eq!(
            ChatReply::error("auth", "No access").to_json(),
            r#"{"op":"auth","error":"No access"}"#
        );
    }

    #[test]
    fn a_borrowed_delivery_writes_what_the_owned_one_does() {
        for (from, time) in [(Some("user \"1\""), Some(17)), (None, None)] {
            let text = "say \"hi\",\\ é";
            let borrowed = DeliveryRef {
                channel: "room_1",
                uid: 4,
                from,
                text,
                time,
            };
            let owned = ChatReply::Delivery(Delivery::new("room_1", 4, from, text, time));
            assert_eq!(borrowed.to_json(), owned.to_json());
        }
    }

    #[test]
    fn a_token_is_never_shown_by_debug() {
        let request = ChatRequest::parse(r#"{"op":"auth","args":["1.2.secret"]}"#).unwrap();
        assert!(!format!("{request:?}").contains("secret"));
        assert_eq!(request.op(), op::AUTH);
    }

    #[test]
    fn join_and_leave_events_read_back_as_themselves() {
        let join = MembershipEvent::join("room_1", 2, "user2", 5);
        let read: ChatReply = serde_json::from_str(&join.to_json()).unwrap();
        assert_eq!(read, ChatReply::Membership(join));
        let history = ChatReply::history(
            "room_1",
            vec![Delivery::new("room_1", 1, Some("user1"), "hi", Some(3))],
        );
        let read: ChatReply = serde_json::from_str(&history.to_json()).unwrap();
        assert_eq!(read, history);
        let presence = ChatReply::presence("room_1", vec![Member::new(1, "user1")]);
        let read: ChatReply = serde_json::from_str(&presence.to_json()).unwrap();
        assert_eq!(read, presence);
    }

    #[test]
    fn typed_and_general_parsing_agree_on_well_formed_requests() {
        for frame in [
            r#"{"op":"auth","args":["user1","12\"3"]}"#,
            r#"{"op":"subscribe","args":["room_1","broadcast"]}"#,
            r#"{"op":"unsubscribe","args":["room_1"]}"#,
            r#"{"op":"sendtoroom","args":["room_1","h\u00e9llo"],"extra":1}"#,
            r#"{"op":"sendtouser","args":["user_2","x"]}"#,
            r#"{"op":"sendbroadcast","args":["x"]}"#,
            r#"{"op":"ping"}"#,
            r#"{"op":"ping","args":null}"#,
            r#"{"op":"auth","args":["1.2.abc"]}"#,
            r#"{"op":"history","args":["room_1"]}"#,
            r#"{"op":"presence","args":["room_1"]}"#,
        ] {
            let typed: RequestIn<'_> = serde_json::from_str(frame).unwrap();
            let typed = typed
                .request()
                .unwrap_or_else(|| panic!("{frame} went the general way"));
            assert_eq!(typed, ChatRequest::parse_general(frame).unwrap(), "{frame}");
        }
    }
}

//! Typed, borrowing codecs for the current dialect: the path every consumer's event and call
//! takes.
//!
//! The general decoders build a `serde_json::Value` tree and take fields out of it, which is
//! what lets them accept every dialect and name the wrong field in their errors. That costs
//! about two dozen allocations a frame. Here each frame of the current dialect is read into
//! structs that borrow from the text (the pushed value `d` stays raw JSON), and each request is
//! written straight from the call. A frame these structs do not describe exactly (an older
//! dialect, an unknown field, a value of another type) yields `None`, and the caller falls
//! back to the general decoder, so the two paths accept and refuse the same frames.

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::event::name;
use crate::reply::Status;
use crate::request::method;
use crate::{
    Call, CallResult, ClientId, ConnFunc, EngineError, ErrorCode, Event, NodeId, Payload,
    QueueMessage, RawJson, Reply, Request,
};

/// A request id: a non-negative integer, or digits in a string.
struct RequestId(u64);

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RequestId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a request id")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RequestId, E> {
                Ok(RequestId(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RequestId, E> {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::custom("not a request id"));
                }
                v.parse().map(RequestId).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// The `s` of a result, for the shapes the engine sends; anything else goes the general way.
struct StatusIn(Status);

impl<'de> Deserialize<'de> for StatusIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StatusIn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a flag, a count or a word")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<StatusIn, E> {
                Ok(StatusIn(Status::Flag(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusIn, E> {
                Ok(StatusIn(Status::Count(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusIn, E> {
                Ok(StatusIn(Status::Text(v.to_owned())))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueuePopIn {
    #[serde(default)]
    n: Option<NodeId>,
    c: ClientId,
    t: String,
    #[serde(default)]
    d: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultIn {
    s: StatusIn,
    #[serde(default)]
    f: Option<u64>,
    #[serde(default)]
    t: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorIn {
    c: i64,
    m: String,
}

/// What a decoded engine frame is, before it becomes an [`EngineFrame`](crate::EngineFrame).
pub(crate) enum EngineIn {
    Reply(Reply),
    Event(Event),
}

/// The parts of an engine frame of the current dialect, read in one pass.
#[derive(Default)]
struct EngineFrameIn<'a> {
    e: Option<Cow<'a, str>>,
    /// `p` of a `queue.pop` that followed its `e`, as every engine writes them: read at once.
    pop: Option<QueuePopIn>,
    /// `p` of any other frame, or one that came before its `e`.
    p: Option<&'a RawValue>,
    i: Option<RequestId>,
    id: Option<RequestId>,
    error: Option<ErrorIn>,
    r: Option<ResultIn>,
}

impl<'de> Deserialize<'de> for EngineFrameIn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EngineFrameIn<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an engine frame")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut frame = EngineFrameIn::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "e" => frame.e = map.next_value()?,
                        "p" if frame.e.as_deref() == Some(name::QUEUE_POP) => {
                            frame.pop = map.next_value()?;
                        }
                        "p" => frame.p = map.next_value()?,
                        "i" => frame.i = map.next_value()?,
                        "id" => frame.id = map.next_value()?,
                        "E" => frame.error = map.next_value()?,
                        "r" => frame.r = map.next_value()?,
                        other => return Err(de::Error::unknown_field(other, &[])),
                    }
                }
                Ok(frame)
            }
        }
        d.deserialize_map(V)
    }
}

/// Decodes a reply or event of the current dialect; `None` sends the caller the general way.
pub(crate) fn decode_engine(text: &str) -> Option<EngineIn> {
    let frame: EngineFrameIn<'_> = serde_json::from_str(text).ok()?;
    if let Some(event) = frame.e {
        if event != name::QUEUE_POP {
            return None;
        }
        let pop = match (frame.pop, frame.p) {
            (Some(pop), _) => pop,
            (None, Some(p)) => serde_json::from_str(p.get()).ok()?,
            (None, None) => return None,
        };
        return Some(EngineIn::Event(Event::QueuePop(QueueMessage {
            node: pop.n,
            client: pop.c,
            topic: pop.t,
            data: pop.d.map_or_else(RawJson::null, RawJson::from),
        })));
    }
    if frame.p.is_some() || frame.pop.is_some() {
        return None;
    }
    let id = frame.i.or(frame.id).map(|id| id.0);
    let outcome = match (frame.error, frame.r) {
        (Some(error), _) => Err(EngineError::new(ErrorCode::from_i64(error.c), error.m)),
        (None, Some(result)) => Ok(CallResult {
            status: result.s.0,
            failed: result.f,
            total: result.t,
        }),
        (None, None) => return None,
    };
    Some(EngineIn::Reply(Reply { id, outcome }))
}

/// Every key a request of the current dialect has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestIn<'a> {
    #[serde(borrow)]
    m: Cow<'a, str>,
    #[serde(default)]
    i: Option<RequestId>,
    #[serde(borrow, default)]
    p: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsIn {
    t: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnCallIn<'a> {
    c: ClientId,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(borrow)]
    a: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeshIn<'a, T> {
    c: T,
    d: String,
    #[serde(borrow, default)]
    t: Option<Cow<'a, str>>,
}

fn non_empty(list: Vec<String>) -> Option<Vec<String>> {
    (!list.is_empty()).then_some(list)
}

fn payload(d: String, kind: Option<Cow<'_, str>>) -> Option<Payload> {
    match kind.as_deref() {
        None | Some("text") => Some(Payload::Text(d)),
        Some("binary") => BASE64.decode(d.as_bytes()).ok().map(Payload::Binary),
        Some(_) => None,
    }
}

/// Decodes a request of the current dialect; `None` sends the caller the general way.
pub(crate) fn decode_request(text: &str) -> Option<Request> {
    let request: RequestIn<'_> = serde_json::from_str(text).ok()?;
    let params = request.p.map(RawValue::get).unwrap_or("{}");
    let call = match request.m.as_ref() {
        method::QUEUE_POP => Call::QueuePop {
            topics: non_empty(serde_json::from_str::<TopicsIn>(params).ok()?.t)?,
        },
        method::QUEUE_UNPOP => Call::QueueUnpop,
        method::CONN_CALL => {
            let call: ConnCallIn<'_> = serde_json::from_str(params).ok()?;
            let func = match call.f.as_ref() {
                crate::request::func::SUBSCRIBE => ConnFunc::Subscribe {
                    channels: non_empty(serde_json::from_str(call.a.get()).ok()?)?,
                },
                crate::request::func::UNSUBSCRIBE => ConnFunc::Unsubscribe {
                    channels: non_empty(serde_json::from_str(call.a.get()).ok()?)?,
                },
                crate::request::func::SET_CONTEXT_VALUE => {
                    let (key, value): (String, Value) = serde_json::from_str(call.a.get()).ok()?;
                    ConnFunc::SetContextValue { key, value }
                }
                _ => return None,
            };
            Call::ConnCall {
                client: call.c,
                func,
            }
        }
        method::MESH_SEND => {
            let send: MeshIn<'_, ClientId> = serde_json::from_str(params).ok()?;
            Call::MeshSend {
                client: send.c,
                data: payload(send.d, send.t)?,
            }
        }
        method::MESH_PUBLISH => {
            let publish: MeshIn<'_, String> = serde_json::from_str(params).ok()?;
            if publish.c.is_empty() {
                return None;
            }
            Call::MeshPublish {
                channel: publish.c,
                data: payload(publish.d, publish.t)?,
            }
        }
        _ => return None,
    };
    Some(Request {
        id: request.i.map(|id| id.0),
        call,
    })
}

/// The `a` of a `conn.call`, written from the function without copying it.
struct ArgsOut<'a>(&'a ConnFunc);

impl Serialize for ArgsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ConnFunc::SetContextValue { key, value } => (key, value).serialize(s),
            ConnFunc::SetContext { context } => [context].serialize(s),
            ConnFunc::Subscribe { channels } | ConnFunc::Unsubscribe { channels } => {
                channels.serialize(s)
            }
            ConnFunc::Other { args, .. } => {
                let mut seq = s.serialize_seq(Some(args.len()))?;
                for arg in args {
                    seq.serialize_element(arg)?;
                }
                seq.end()
            }
        }
    }
}

/// `d` (and `t` for binary) of a mesh call.
#[derive(Serialize)]
struct MeshOut<'a, C: Serialize> {
    c: C,
    d: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<&'static str>,
}

impl<'a, C: Serialize> MeshOut<'a, C> {
    fn new(c: C, data: &'a Payload) -> Self {
        match data {
            Payload::Text(text) => Self {
                c,
                d: Cow::Borrowed(text),
                t: None,
            },
            Payload::Binary(bytes) => Self {
                c,
                d: Cow::Owned(BASE64.encode(bytes)),
                t: Some("binary"),
            },
        }
    }
}

#[derive(Serialize)]
struct ConnCallOut<'a> {
    a: ArgsOut<'a>,
    c: ClientId,
    f: &'a str,
}

#[derive(Serialize)]
struct TopicsOut<'a> {
    t: &'a [String],
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct RequestOut<'a, P> {
    i: Option<u64>,
    m: &'a str,
    p: P,
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Writing plain structs of strings, numbers and `Value`s into a String cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// The params of a mesh push, as the HTTP push API takes them; `None` for other calls.
pub(crate) fn encode_push(call: &Call) -> Option<String> {
    match call {
        Call::MeshSend { client, data } => Some(to_json(&MeshOut::new(client, data))),
        Call::MeshPublish { channel, data } => Some(to_json(&MeshOut::new(channel, data))),
        _ => None,
    }
}

/// Writes a request in the current dialect.
pub(crate) fn encode_request(id: Option<u64>, call: &Call) -> String {
    let m = call.method();
    match call {
        Call::QueuePop { topics } => to_json(&RequestOut {
            i: id,
            m,
            p: TopicsOut { t: topics },
        }),
        Call::QueueUnpop | Call::ServerPing => to_json(&RequestOut {
            i: id,
            m,
            p: Empty {},
        }),
        Call::ConnCall { client, func } => to_json(&RequestOut {
            i: id,
            m,
            p: ConnCallOut {
                a: ArgsOut(func),
                c: *client,
                f: func.name(),
            },
        }),
        Call::MeshSend { client, data } => to_json(&RequestOut {
            i: id,
            m,
            p: MeshOut::new(client, data),
        }),
        Call::MeshPublish { channel, data } => to_json(&RequestOut {
            i: id,
            m,
            p: MeshOut::new(channel, data),
        }),
        Call::Other { params, .. } => to_json(&RequestOut {
            i: id,
            m,
            p: params,
        }),
    }
}

/// The `s` of a result as written.
struct StatusOut<'a>(&'a Status);

impl Serialize for StatusOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Status::Flag(flag) => s.serialize_bool(*flag),
            Status::Count(count) => s.serialize_u64(*count),
            Status::Text(text) => s.serialize_str(text),
            Status::Other(value) => value.serialize(s),
        }
    }
}

#[derive(Serialize)]
struct ResultOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    f: Option<u64>,
    s: StatusOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<u64>,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    c: i64,
    m: &'a str,
}

#[derive(Serialize)]
struct ReplyOut<'a> {
    #[serde(rename = "E")]
    error: Option<ErrorOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    i: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r: Option<ResultOut<'a>>,
}

/// Writes a reply in the current dialect; the id key is left out when there is no id.
pub(crate) fn encode_reply(reply: &Reply) -> String {
    let (error, r) = match &reply.outcome {
        Ok(result) => (
            None,
            Some(ResultOut {
                f: result.failed,
                s: StatusOut(&result.status),
                t: result.total,
            }),
        ),
        Err(error) => (
            Some(ErrorOut {
                c: error.code.as_i64(),
                m: &error.message,
            }),
            None,
        ),
    };
    to_json(&ReplyOut {
        error,
        i: reply.id,
        r,
    })
}

#[derive(Serialize)]
struct QueuePopOut<'a> {
    c: ClientId,
    d: &'a RawValue,
    n: Option<&'a NodeId>,
    t: &'a str,
}

#[derive(Serialize)]
struct EventOut<'a, P> {
    e: &'a str,
    id: Option<u64>,
    p: P,
}

/// Writes an event in the current dialect (the engine writes its id key as `id`, null).
pub(crate) fn encode_event(event: &Event) -> String {
    match event {
        Event::QueuePop(msg) => to_json(&EventOut {
            e: name::QUEUE_POP,
            id: None,
            p: QueuePopOut {
                c: msg.client,
                d: msg.data.as_raw(),
                n: msg.node.as_ref(),
                t: &msg.topic,
            },
        }),
        Event::Other { name, params } => to_json(&EventOut {
            e: name,
            id: None,
            p: params,
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Dialect, EngineFrame};

    /// Frames of the current dialect as engines send them.
    const ENGINE_FRAMES: &[&str] = &[
        r#"{"e":"queue.pop","p":{"n":"1","c":"1463819408261513216","t":"chat","d":{"uid":1,"frame":{"type":"text","data":"{\"op\":\"ping\"}"}}},"id":null}"#,
        r#"{"e":"queue.pop","p":{"n":7,"c":12,"t":"chat","d":"text"},"id":null}"#,
        r#"{"e":"queue.pop","p":{"c":"12","t":"chat","d":null}}"#,
        // `p` before `e` is read in a second pass, but still the typed way.
        r#"{"p":{"n":"2","c":"12","t":"chat","d":[1]},"e":"queue.pop","id":null}"#,
        r#"{"E":null,"r":{"s":true},"i":3}"#,
        r#"{"E":null,"r":{"s":9,"f":1},"i":"4"}"#,
        r#"{"E":null,"r":{"s":"server.pong"},"id":5}"#,
        r#"{"E":{"c":301,"m":"no such connection"},"i":6}"#,
    ];

    #[test]
    fn current_engine_frames_take_the_typed_path_and_decode_as_the_general_path_does() {
        for frame in ENGINE_FRAMES {
            let typed = match decode_engine(frame) {
                Some(EngineIn::Reply(reply)) => EngineFrame::Reply(reply),
                Some(EngineIn::Event(event)) => EngineFrame::Event(event),
                None => panic!("{frame} went the general way"),
            };
            assert_eq!(
                typed,
                EngineFrame::decode_general(frame).unwrap(),
                "{frame}"
            );
        }
    }

    #[test]
    fn frames_the_typed_structs_do_not_describe_go_the_general_way() {
        for frame in [
            // Older dialects, unknown fields, other value types: all still decode elsewhere.
            r#"{"event":"queue.consume","result":{"client_id":1,"queue":"chat","data":{}}}"#,
            r#"{"e":"queue.pop","p":{"c":"1","t":"chat","d":{},"extra":1},"id":null}"#,
            r#"{"E":null,"r":{"s":-1},"i":1}"#,
            r#"{"E":"bare text","i":1}"#,
            r#"{"e":"server.notice","p":{}}"#,
            "[1]",
            "{not json",
        ] {
            assert!(decode_engine(frame).is_none(), "{frame}");
        }
    }

    fn calls() -> Vec<Call> {
        vec![
            Call::QueuePop {
                topics: vec!["chat".into(), "b".into()],
            },
            Call::QueueUnpop,
            Call::ServerPing,
            Call::ConnCall {
                client: ClientId(u64::MAX),
                func: ConnFunc::SetContextValue {
                    key: "uid".into(),
                    value: json!(1),
                },
            },
            Call::ConnCall {
                client: ClientId(2),
                func: ConnFunc::Subscribe {
                    channels: vec!["room_1".into(), "broadcast".into()],
                },
            },
            Call::ConnCall {
                client: ClientId(2),
                func: ConnFunc::Unsubscribe {
                    channels: vec!["room_1".into()],
                },
            },
            Call::ConnCall {
                client: ClientId(2),
                func: ConnFunc::SetContext {
                    context: json!({"uid": 1, "name": "a"}).as_object().cloned().unwrap(),
                },
            },
            Call::ConnCall {
                client: ClientId(2),
                func: ConnFunc::Other {
                    name: "close".into(),
                    args: vec![json!(1)],
                },
            },
            Call::MeshSend {
                client: ClientId(3),
                data: Payload::Text("say \"hi\" \\ é".into()),
            },
            Call::MeshSend {
                client: ClientId(3),
                data: Payload::Binary(vec![0, 1, 255]),
            },
            Call::MeshPublish {
                channel: "room_1".into(),
                data: Payload::Text("{\"event\":\"subscribe\"}".into()),
            },
            Call::Other {
                method: "x.y".into(),
                params: json!({"k": [1]}),
            },
        ]
    }

    #[test]
    fn typed_requests_are_byte_for_byte_what_the_general_encoder_wrote() {
        for call in calls() {
            let general = json!({ "m": call.method(), "p": call.params(Dialect::Current), "i": 9 })
                .to_string();
            assert_eq!(encode_request(Some(9), &call), general, "{call:?}");
        }
    }

    #[test]
    fn typed_requests_decode_back_through_the_typed_path() {
        for call in calls() {
            let text = encode_request(Some(1), &call);
            let general = Request::decode_general(&text).unwrap();
            match decode_request(&text) {
                Some(typed) => assert_eq!(typed, general, "{text}"),
                // Only the calls a consumer does not make per event go the general way.
                None => assert!(
                    matches!(
                        call,
                        Call::ServerPing
                            | Call::Other { .. }
                            | Call::ConnCall {
                                func: ConnFunc::SetContext { .. } | ConnFunc::Other { .. },
                                ..
                            }
                    ),
                    "{text} went the general way"
                ),
            }
        }
    }

    #[test]
    fn typed_replies_and_events_are_what_the_general_encoder_wrote() {
        let replies = [
            Reply::ok(Some(1), CallResult::ok()),
            Reply::ok(Some(2), CallResult::counts(3, 1)),
            Reply::ok(None, CallResult::ok()),
            Reply::err(Some(4), EngineError::new(ErrorCode::SendFailed, "gone")),
        ];
        for reply in replies {
            assert_eq!(
                encode_reply(&reply),
                reply.to_value(Dialect::Current).to_string()
            );
        }
        let event = Event::QueuePop(QueueMessage {
            node: Some(NodeId::from("n1")),
            client: ClientId(5),
            topic: "chat".into(),
            data: RawJson::from(json!({"a": "b\"c"})),
        });
        assert_eq!(
            encode_event(&event),
            event.to_value(Dialect::Current).to_string()
        );
    }
}

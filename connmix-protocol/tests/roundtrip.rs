//! Round trips and invariants that the single-message vectors do not show.

use connmix_protocol::chat::{ChatReply, ChatRequest, Delivery};
use connmix_protocol::{
    Call, CallResult, ClientFrame, ClientId, ConnFunc, Dialect, EngineError, EngineFrame,
    ErrorCode, Event, Payload, QueueMessage, Reply, Request,
};
use serde_json::{json, Value};

fn calls() -> Vec<Call> {
    let client = ClientId(u64::MAX - 1);
    vec![
        Call::QueuePop {
            topics: vec!["chat".into(), "orders".into()],
        },
        Call::QueueUnpop,
        Call::ConnCall {
            client,
            func: ConnFunc::SetContextValue {
                key: "uid".into(),
                value: json!(1),
            },
        },
        Call::ConnCall {
            client,
            func: ConnFunc::SetContext {
                context: json!({"uid": 1, "name": "a"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            },
        },
        Call::ConnCall {
            client,
            func: ConnFunc::Subscribe {
                channels: vec!["room_1".into(), "broadcast".into()],
            },
        },
        Call::ConnCall {
            client,
            func: ConnFunc::Unsubscribe {
                channels: vec!["room_1".into()],
            },
        },
        Call::MeshSend {
            client,
            data: Payload::Text("say \"hi\" \\ ünï".into()),
        },
        Call::MeshSend {
            client,
            data: Payload::Binary(vec![0, 1, 2, 255]),
        },
        Call::MeshPublish {
            channel: "room_1".into(),
            data: Payload::Text("x".into()),
        },
    ]
}

#[test]
fn every_call_survives_encode_then_decode_in_both_dialects() {
    for dialect in [Dialect::Current, Dialect::Legacy] {
        for (i, call) in calls().into_iter().enumerate() {
            let request = Request::new(i as u64, call);
            let text = request.encode(dialect);
            let back = Request::decode(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(back, request, "{dialect} round trip of {text}");
        }
    }
}

#[test]
fn replies_and_events_survive_encode_then_decode_in_both_dialects() {
    let frames = [
        EngineFrame::Reply(Reply::ok(Some(7), CallResult::ok())),
        EngineFrame::Reply(Reply::ok(Some(8), CallResult::counts(9, 1))),
        EngineFrame::Reply(Reply::err(
            Some(9),
            EngineError::new(ErrorCode::AlreadyConsumed, "already"),
        )),
        EngineFrame::Event(Event::QueuePop(QueueMessage {
            node: None,
            client: ClientId(1 << 60),
            topic: "chat".into(),
            data: json!({"frame": {"type": "text", "data": "{}", "finish": true}}).into(),
        })),
        EngineFrame::Pong,
    ];
    for dialect in [Dialect::Current, Dialect::Legacy] {
        for frame in &frames {
            let text = frame.encode(dialect);
            assert_eq!(&EngineFrame::decode(&text).unwrap(), frame, "{text}");
        }
    }
}

#[test]
fn error_replies_carry_no_result() {
    let text = Reply::err(Some(1), EngineError::new(ErrorCode::ConnCallFailed, "gone"))
        .encode(Dialect::Current);
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value, json!({"E": {"c": 301, "m": "gone"}, "i": 1}));
}

#[test]
fn ping_text_is_not_json_but_decodes() {
    assert_eq!(ClientFrame::decode("ping").unwrap(), ClientFrame::Ping);
    assert_eq!(EngineFrame::decode("pong").unwrap(), EngineFrame::Pong);
}

#[test]
fn auth_debug_output_hides_the_password() {
    let request = ChatRequest::parse(r#"{"op":"auth","args":["user1","s3cret-pw"]}"#).unwrap();
    let shown = format!("{request:?}");
    assert!(shown.contains("user1"), "{shown}");
    assert!(!shown.contains("s3cret-pw"), "password leaked: {shown}");
}

#[test]
fn user_text_cannot_add_fields_to_a_delivery() {
    let evil = r#"hi","op":"auth","success":true,"x":""#;
    let delivery = ChatReply::Delivery(Delivery::new("room_1", 5, Some("eve"), evil, None));
    let value: Value = serde_json::from_str(&delivery.to_json()).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["channel", "data", "event", "from", "text", "uid"]);
    assert_eq!(value["text"], evil);
    assert_eq!(value["data"], format!("uid:5,message:{evil}"));
}

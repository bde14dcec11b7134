//! Every decoder the outside world feeds, fed garbage: arbitrary text, arbitrary JSON, and the
//! protocol vectors with bytes changed. Each must give a value or an error, never panic; an
//! error always says something.

use std::path::Path;
use std::sync::LazyLock;

use connmix_protocol::chat::ChatRequest;
use connmix_protocol::request::method;
use connmix_protocol::script::ScriptEvent;
use connmix_protocol::{http, ClientFrame, EngineFrame, NodeList, Reply, Request};
use proptest::prelude::*;
use serde_json::Value;

/// Runs `text` through every decoder, checking that each error has a message.
fn decode_everything(text: &str) {
    fn said<T, E: std::fmt::Display>(result: Result<T, E>) {
        if let Err(err) = result {
            assert!(!err.to_string().is_empty(), "an error without a message");
        }
    }
    said(ClientFrame::decode(text));
    said(ClientFrame::decode_answerable(text));
    said(Request::decode(text));
    said(EngineFrame::decode(text));
    said(Reply::decode(text));
    said(ScriptEvent::decode(text));
    said(ChatRequest::parse(text));
    said(NodeList::decode(text));
    said(http::decode_push(method::MESH_SEND, text));
    said(http::decode_push(method::MESH_PUBLISH, text));
}

/// The wire text of every vector in `protocol-spec/vectors/`, read once.
static VECTOR_TEXTS: LazyLock<Vec<String>> = LazyLock::new(vector_texts);

fn vector_texts() -> Vec<String> {
    let mut texts = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol-spec/vectors")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("the vectors are in place") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let vector: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            match (&vector["json"], &vector["text"]) {
                (Value::Null, Value::String(text)) => texts.push(text.clone()),
                (json, _) if !json.is_null() => texts.push(json.to_string()),
                _ => {}
            }
        }
    }
    assert!(texts.len() >= 50, "only {} vectors", texts.len());
    texts
}

/// Arbitrary JSON, nested a few levels, with the protocol's own key names likely.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("e".to_owned()),
        Just("p".to_owned()),
        Just("i".to_owned()),
        Just("m".to_owned()),
        Just("c".to_owned()),
        Just("d".to_owned()),
        Just("op".to_owned()),
        Just("args".to_owned()),
        Just("event".to_owned()),
        Just("frame".to_owned()),
        Just("nodes".to_owned()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        Just(Value::String("queue.pop".into())),
        Just(Value::String("auth".into())),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// One change to a text's bytes: replace, insert or remove at a position.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<usize>().prop_map(Edit::Remove),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len();
        match *edit {
            Edit::Replace(at, b) if len > 0 => bytes[at % len] = b,
            Edit::Insert(at, b) => bytes.insert(at % (len + 1), b),
            Edit::Remove(at) if len > 0 => {
                bytes.remove(at % len);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        decode_everything(&text);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json()) {
        decode_everything(&value.to_string());
    }

    #[test]
    fn mutated_vectors_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let text = pick.get(&VECTOR_TEXTS);
        decode_everything(&apply(text, &edits));
    }
}

//! Walks every JSON vector in `protocol-spec/vectors/` and checks the wire types against it.
//!
//! A vector names one message in one direction (`type`), its wire form (`json`, or `text` for
//! frames that are not JSON), and either the value it decodes to (`value`, in the types'
//! serde form) or the error decoding must give (`error`, a substring of the message). With
//! `"encode": "<dialect>"` the value must also encode back to exactly that wire form (compared as
//! JSON). Adding a vector needs no code here; see `protocol-spec/vectors/README.md`.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use connmix_protocol::chat::{ChatReply, ChatRequest};
use connmix_protocol::script::ScriptEvent;
use connmix_protocol::{
    http, ClientFrame, DecodeError, Dialect, EngineFrame, NodeList, Reply, VersionInfo,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    #[allow(dead_code)]
    description: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    json: Option<Value>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    encode: Option<Dialect>,
}

impl Vector {
    fn wire_text(&self) -> Result<String, String> {
        match (&self.json, &self.text) {
            (Some(json), None) => Ok(json.to_string()),
            (None, Some(text)) => Ok(text.clone()),
            _ => Err("needs exactly one of `json` and `text`".to_owned()),
        }
    }
}

/// How one message type decodes and encodes.
trait Codec {
    type Value: Serialize + DeserializeOwned + Debug;
    fn decode(text: &str) -> Result<Self::Value, String>;
    fn encode(value: &Self::Value, dialect: Dialect) -> Result<String, String>;
}

macro_rules! codec {
    ($name:ident, $ty:ty, |$t:ident| $decode:expr, |$v:ident, $d:ident| $encode:expr) => {
        struct $name;
        impl Codec for $name {
            type Value = $ty;
            fn decode($t: &str) -> Result<$ty, String> {
                $decode
            }
            #[allow(unused_variables)]
            fn encode($v: &$ty, $d: Dialect) -> Result<String, String> {
                $encode
            }
        }
    };
}

fn text_err(e: DecodeError) -> String {
    e.to_string()
}

fn json_err(e: serde_json::Error) -> String {
    e.to_string()
}

codec!(
    ClientFrames,
    ClientFrame,
    |t| ClientFrame::decode(t).map_err(text_err),
    |v, d| Ok(v.encode(d))
);
codec!(
    EngineFrames,
    EngineFrame,
    |t| EngineFrame::decode(t).map_err(text_err),
    |v, d| Ok(v.encode(d))
);
codec!(
    HttpSend,
    connmix_protocol::Call,
    |t| http::decode_push(connmix_protocol::request::method::MESH_SEND, t).map_err(text_err),
    |v, d| http::encode_push(v).ok_or_else(|| "not a push".to_owned())
);
codec!(
    HttpPublish,
    connmix_protocol::Call,
    |t| http::decode_push(connmix_protocol::request::method::MESH_PUBLISH, t).map_err(text_err),
    |v, d| http::encode_push(v).ok_or_else(|| "not a push".to_owned())
);
codec!(
    HttpReply,
    Reply,
    |t| Reply::decode(t).map_err(text_err),
    |v, d| Ok(v.encode(d))
);
codec!(
    Version,
    VersionInfo,
    |t| serde_json::from_str(t).map_err(json_err),
    |v, d| serde_json::to_string(v).map_err(json_err)
);
codec!(
    Nodes,
    NodeList,
    |t| NodeList::decode(t)
        .map(|(list, _skipped)| list)
        .map_err(text_err),
    |v, d| serde_json::to_string(v).map_err(json_err)
);
codec!(
    Script,
    ScriptEvent,
    |t| ScriptEvent::decode(t).map_err(text_err),
    |v, d| Ok(v.to_value().to_string())
);
codec!(
    ChatRequests,
    ChatRequest,
    |t| ChatRequest::parse(t).map_err(|e| format!("{e} ({e:?})")),
    |v, d| Ok(v.to_frame())
);
codec!(
    ChatReplies,
    ChatReply,
    |t| serde_json::from_str(t).map_err(json_err),
    |v, d| Ok(v.to_json())
);

fn check<C: Codec>(vector: &Vector) -> Result<(), String> {
    let wire = vector.wire_text()?;
    let decoded = C::decode(&wire);
    match (&vector.error, &vector.value) {
        (Some(expected), None) => match decoded {
            Ok(value) => Err(format!(
                "decoded to {value:?}, expected error containing {expected:?}"
            )),
            Err(message) if message.contains(expected.as_str()) => Ok(()),
            Err(message) => Err(format!("error {message:?} does not contain {expected:?}")),
        },
        (None, Some(expected)) => {
            let decoded = decoded.map_err(|e| format!("decode failed: {e}"))?;
            let actual = serde_json::to_value(&decoded).map_err(json_err)?;
            if &actual != expected {
                return Err(format!(
                    "decoded value differs\n  expected: {expected}\n  actual:   {actual}"
                ));
            }
            if let Some(dialect) = vector.encode {
                let value: C::Value = serde_json::from_value(expected.clone()).map_err(|e| {
                    format!(
                        "`value` is not a {}: {e}",
                        std::any::type_name::<C::Value>()
                    )
                })?;
                let encoded = C::encode(&value, dialect)?;
                if !same_wire(&encoded, &wire) {
                    return Err(format!(
                        "encoding in the {dialect} dialect differs\n  expected: {wire}\n  actual:   {encoded}"
                    ));
                }
            }
            Ok(())
        }
        _ => Err("needs exactly one of `value` and `error`".to_owned()),
    }
}

/// Equal as JSON (key order aside), or equal as text when either side is not JSON.
fn same_wire(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn check_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("unreadable: {e}"))?;
    let vector: Vector = serde_json::from_str(&text).map_err(|e| format!("not a vector: {e}"))?;
    match vector.kind.as_str() {
        "client_frame" => check::<ClientFrames>(&vector),
        "engine_frame" => check::<EngineFrames>(&vector),
        "http_send" => check::<HttpSend>(&vector),
        "http_publish" => check::<HttpPublish>(&vector),
        "http_reply" => check::<HttpReply>(&vector),
        "center_version" => check::<Version>(&vector),
        "center_nodes" => check::<Nodes>(&vector),
        "script_event" => check::<Script>(&vector),
        "chat_request" => check::<ChatRequests>(&vector),
        "chat_reply" => check::<ChatReplies>(&vector),
        other => Err(format!("unknown vector type `{other}`")),
    }
}

fn vector_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol-spec/vectors");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_vector_decodes_and_encodes_as_specified() {
    let files = vector_files();
    assert!(
        files.len() >= 50,
        "only {} vectors found: is protocol-spec/vectors/ in place?",
        files.len()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            check_file(path)
                .err()
                .map(|why| format!("{}: {why}", path.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

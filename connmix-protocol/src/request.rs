//! Requests: what a consumer sends to an engine node's API server.

#[cfg(feature = "structural-serde")]
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{json_type, DecodeError};
use crate::wire;
use crate::{ClientId, Dialect, Payload};

/// Method names on the wire.
pub mod method {
    /// Start consuming queue topics (current dialect).
    pub const QUEUE_POP: &str = "queue.pop";
    /// Start consuming queue topics (engine 1.0.1).
    pub const QUEUE_CONSUME: &str = "queue.consume";
    /// Stop consuming every topic.
    pub const QUEUE_UNPOP: &str = "queue.unpop";
    /// Call a function on one browser connection.
    pub const CONN_CALL: &str = "conn.call";
    /// Send to one browser connection anywhere in the mesh.
    pub const MESH_SEND: &str = "mesh.send";
    /// Publish to every connection subscribed to a channel.
    pub const MESH_PUBLISH: &str = "mesh.publish";
    /// Application-level ping of the May 2022 engines.
    pub const SERVER_PING: &str = "server.ping";
}

/// Function names of `conn.call`.
pub mod func {
    /// Set one key of the connection's context.
    pub const SET_CONTEXT_VALUE: &str = "set_context_value";
    /// Replace the connection's whole context.
    pub const SET_CONTEXT: &str = "set_context";
    /// Subscribe the connection to channels.
    pub const SUBSCRIBE: &str = "subscribe";
    /// Unsubscribe the connection from channels.
    pub const UNSUBSCRIBE: &str = "unsubscribe";
}

/// One request frame: a call and the id its reply will carry.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
pub struct Request {
    /// Chosen by the sender and echoed in the reply. A request without one gets a reply
    /// without one, which a client cannot match: clients always set it.
    pub id: Option<u64>,
    /// What to do.
    pub call: Call,
}

/// What a request asks the engine node to do.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "structural-serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Call {
    /// `queue.pop`: deliver messages of these topics to this connection as events.
    QueuePop {
        /// Topic (queue) names.
        topics: Vec<String>,
    },
    /// `queue.unpop`: stop consuming all topics on this connection.
    QueueUnpop,
    /// `conn.call`: run a function on one browser connection held by this node.
    ConnCall {
        /// The connection.
        client: ClientId,
        /// The function and its arguments.
        func: ConnFunc,
    },
    /// `mesh.send`: deliver data to one connection on any node.
    MeshSend {
        /// The connection.
        client: ClientId,
        /// The frame it receives.
        data: Payload,
    },
    /// `mesh.publish`: deliver data to every connection subscribed to a channel.
    MeshPublish {
        /// The channel name.
        channel: String,
        /// The frame each subscriber receives.
        data: Payload,
    },
    /// `server.ping`: the application-level ping of May 2022 engines.
    ServerPing,
    /// A method this crate does not know, kept as it came.
    Other {
        /// The method name.
        method: String,
        /// The params, as sent.
        params: Value,
    },
}

/// A function of `conn.call` with its arguments.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "structural-serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ConnFunc {
    /// `set_context_value`: set one key of the context (and release a Lua
    /// `wait_context_value` on that key).
    SetContextValue {
        /// The context key.
        key: String,
        /// Its new value.
        value: Value,
    },
    /// `set_context`: replace the whole context.
    SetContext {
        /// The new context.
        context: Map<String, Value>,
    },
    /// `subscribe`: add channels to the connection's subscriptions.
    Subscribe {
        /// Channel names.
        channels: Vec<String>,
    },
    /// `unsubscribe`: remove channels from the connection's subscriptions.
    Unsubscribe {
        /// Channel names.
        channels: Vec<String>,
    },
    /// A function this crate does not know, kept as it came.
    Other {
        /// The function name.
        name: String,
        /// Its arguments.
        args: Vec<Value>,
    },
}

impl ConnFunc {
    /// The function's wire name.
    pub fn name(&self) -> &str {
        match self {
            ConnFunc::SetContextValue { .. } => func::SET_CONTEXT_VALUE,
            ConnFunc::SetContext { .. } => func::SET_CONTEXT,
            ConnFunc::Subscribe { .. } => func::SUBSCRIBE,
            ConnFunc::Unsubscribe { .. } => func::UNSUBSCRIBE,
            ConnFunc::Other { name, .. } => name,
        }
    }

    /// The function's wire arguments.
    pub fn args(&self) -> Vec<Value> {
        match self {
            ConnFunc::SetContextValue { key, value } => vec![json!(key), value.clone()],
            ConnFunc::SetContext { context } => vec![Value::Object(context.clone())],
            ConnFunc::Subscribe { channels } | ConnFunc::Unsubscribe { channels } => {
                channels.iter().map(|c| json!(c)).collect()
            }
            ConnFunc::Other { args, .. } => args.clone(),
        }
    }

    /// Builds a function from its wire name and arguments, checking them.
    pub fn from_wire(name: String, args: Value) -> Result<Self, DecodeError> {
        match name.as_str() {
            func::SET_CONTEXT_VALUE => match args {
                Value::Array(mut items) if items.len() == 2 => {
                    let value = items.pop().unwrap_or(Value::Null);
                    let key = items.pop().unwrap_or(Value::Null);
                    Ok(ConnFunc::SetContextValue {
                        key: wire::string(key, "a")?,
                        value,
                    })
                }
                // Engine 1.0.0 clients sent `{key: value}`.
                Value::Object(map) if map.len() == 1 => {
                    let (key, value) = map.into_iter().next().unwrap_or_default();
                    Ok(ConnFunc::SetContextValue { key, value })
                }
                other => Err(DecodeError::invalid(
                    "a",
                    format!(
                        "set_context_value takes [key, value], found {}",
                        describe(&other)
                    ),
                )),
            },
            func::SET_CONTEXT => {
                let context = match args {
                    Value::Array(mut items) if items.len() == 1 => items.pop(),
                    Value::Object(map) => Some(Value::Object(map)),
                    _ => None,
                };
                match context {
                    Some(Value::Object(context)) => Ok(ConnFunc::SetContext { context }),
                    _ => Err(DecodeError::invalid(
                        "a",
                        "set_context takes one argument, an object",
                    )),
                }
            }
            func::SUBSCRIBE => Ok(ConnFunc::Subscribe {
                channels: wire::string_list(args, "a")?,
            }),
            func::UNSUBSCRIBE => Ok(ConnFunc::Unsubscribe {
                channels: wire::string_list(args, "a")?,
            }),
            _ => Ok(ConnFunc::Other {
                name,
                args: match args {
                    Value::Array(items) => items,
                    Value::Null => Vec::new(),
                    other => vec![other],
                },
            }),
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Array(items) => format!("a list of {}", items.len()),
        other => format!("a {}", json_type(other)),
    }
}

/// A request split into method, params and id, before the params are checked: the general
/// decoder's first step, and how [`ClientFrame::decode_answerable`](crate::ClientFrame::decode_answerable)
/// finds the id of a request whose params are bad.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RequestEnvelope {
    /// The request id, when the frame had one.
    pub(crate) id: Option<u64>,
    /// The method name.
    pub(crate) method: String,
    /// The params, `null` when absent.
    pub(crate) params: Value,
}

impl RequestEnvelope {
    /// Decodes the envelope of a request frame in any dialect.
    pub(crate) fn decode(text: &str) -> Result<Self, DecodeError> {
        let mut obj = wire::parse_object(text)?;
        let method = wire::string(wire::require(&mut obj, &["m", "method"])?, "m")?;
        let id = wire::take(&mut obj, &["i", "id"])
            .map(|v| wire::request_id(v, "i"))
            .transpose()?;
        let params = wire::take(&mut obj, &["p", "params"]).unwrap_or(Value::Null);
        Ok(Self { id, method, params })
    }
}

impl Call {
    /// The method name this call is sent as in the current dialect.
    pub fn method(&self) -> &str {
        match self {
            Call::Other { method, .. } => method,
            known => known.known_method().unwrap_or_default(),
        }
    }

    /// The method name of a call this crate knows, as a `'static` string (for logs and
    /// errors that outlive the call); `None` for [`Call::Other`].
    pub fn known_method(&self) -> Option<&'static str> {
        match self {
            Call::QueuePop { .. } => Some(method::QUEUE_POP),
            Call::QueueUnpop => Some(method::QUEUE_UNPOP),
            Call::ConnCall { .. } => Some(method::CONN_CALL),
            Call::MeshSend { .. } => Some(method::MESH_SEND),
            Call::MeshPublish { .. } => Some(method::MESH_PUBLISH),
            Call::ServerPing => Some(method::SERVER_PING),
            Call::Other { .. } => None,
        }
    }

    /// Checks params against the method, in any dialect.
    pub fn from_wire(method: &str, params: Value) -> Result<Self, DecodeError> {
        match method {
            method::QUEUE_POP | method::QUEUE_CONSUME => {
                let topics = match params {
                    Value::Object(mut map) => wire::require(&mut map, &["t", "topics", "queues"])?,
                    // Late-May-2022 and 1.0.1 engines: params is the list itself.
                    list => list,
                };
                Ok(Call::QueuePop {
                    topics: wire::string_list(topics, "t")?,
                })
            }
            method::QUEUE_UNPOP => Ok(Call::QueueUnpop),
            method::CONN_CALL => {
                let mut map = params_object(params)?;
                let client = wire::convert(wire::require(&mut map, &["c", "client_id"])?, "c")?;
                let name = wire::string(wire::require(&mut map, &["f", "func"])?, "f")?;
                let args = wire::take(&mut map, &["a", "args"]).unwrap_or(Value::Null);
                Ok(Call::ConnCall {
                    client,
                    func: ConnFunc::from_wire(name, args)?,
                })
            }
            method::MESH_SEND => {
                let mut map = params_object(params)?;
                let client = wire::convert(wire::require(&mut map, &["c", "client_id"])?, "c")?;
                Ok(Call::MeshSend {
                    client,
                    data: Payload::from_params(&mut map)?,
                })
            }
            method::MESH_PUBLISH => {
                let mut map = params_object(params)?;
                let channel = wire::string(wire::require(&mut map, &["c", "channel"])?, "c")?;
                if channel.is_empty() {
                    return Err(DecodeError::invalid("c", "the channel name is empty"));
                }
                Ok(Call::MeshPublish {
                    channel,
                    data: Payload::from_params(&mut map)?,
                })
            }
            method::SERVER_PING => Ok(Call::ServerPing),
            other => Ok(Call::Other {
                method: other.to_owned(),
                params,
            }),
        }
    }

    /// The params object of this call in a dialect.
    pub fn params(&self, dialect: Dialect) -> Value {
        let legacy = dialect == Dialect::Legacy;
        let client_key = if legacy { "client_id" } else { "c" };
        let client_value = |client: &ClientId| {
            if legacy {
                json!(client.get())
            } else {
                json!(client)
            }
        };
        match self {
            Call::QueuePop { topics } if legacy => json!(topics),
            Call::QueuePop { topics } => json!({ "t": topics }),
            Call::QueueUnpop if legacy => json!([]),
            Call::QueueUnpop | Call::ServerPing => json!({}),
            Call::ConnCall { client, func } => {
                let (f, a) = if legacy { ("func", "args") } else { ("f", "a") };
                json!({ client_key: client_value(client), f: func.name(), a: func.args() })
            }
            Call::MeshSend { client, data } => {
                let mut map = Map::new();
                map.insert(client_key.to_owned(), client_value(client));
                data.write_params(&mut map, if legacy { "data" } else { "d" });
                Value::Object(map)
            }
            Call::MeshPublish { channel, data } => {
                let mut map = Map::new();
                map.insert(
                    if legacy { "channel" } else { "c" }.to_owned(),
                    json!(channel),
                );
                data.write_params(&mut map, if legacy { "data" } else { "d" });
                Value::Object(map)
            }
            Call::Other { params, .. } => params.clone(),
        }
    }
}

fn params_object(params: Value) -> Result<Map<String, Value>, DecodeError> {
    match params {
        Value::Object(map) => Ok(map),
        // Late-May-2022 engines wrapped the object in a one-element list.
        Value::Array(mut items) if items.len() == 1 => wire::object(items.remove(0), "p"),
        Value::Null => Err(DecodeError::Missing("p")),
        other => Err(DecodeError::invalid(
            "p",
            format!("expected an object, found {}", describe(&other)),
        )),
    }
}

impl Request {
    /// A request with an id.
    pub fn new(id: u64, call: Call) -> Self {
        Self { id: Some(id), call }
    }

    /// Decodes a request frame in any dialect.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        match crate::fast::decode_request(text) {
            Some(request) => Ok(request),
            None => Self::decode_general(text),
        }
    }

    /// Decodes any dialect through a `Value` tree, naming what is wrong in the error.
    pub(crate) fn decode_general(text: &str) -> Result<Self, DecodeError> {
        let envelope = RequestEnvelope::decode(text)?;
        Ok(Self {
            id: envelope.id,
            call: Call::from_wire(&envelope.method, envelope.params)?,
        })
    }

    /// Encodes the request as a text frame in a dialect.
    pub fn encode(&self, dialect: Dialect) -> String {
        if dialect == Dialect::Current {
            return crate::fast::encode_request(self.id, &self.call);
        }
        let method = match &self.call {
            Call::QueuePop { .. } => method::QUEUE_CONSUME,
            call => call.method(),
        };
        let params = self.call.params(dialect);
        json!({ "method": method, "params": params, "id": self.id }).to_string()
    }
}

//! A mock CONNMIX engine, in process, for tests, benchmarks and first runs.
//!
//! The real engine is a closed-source binary; this crate serves what a consumer and a browser
//! can observe of it: the center's node list, each node's API server (`/ws/v1` and the HTTP
//! push API), bounded memory queues that consumers compete for, mesh routing between nodes,
//! and the chat tutorial's engine script on each node's browser-facing WebSocket.
//!
//! ```
//! use connmix_mock::{browser::Browser, MockConfig, MockEngine};
//! use connmix_protocol::Payload;
//! use serde_json::json;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! // Every listener on a free port, one node.
//! let engine = MockEngine::start(MockConfig::ephemeral()).await?;
//! println!("consumers use --host {}", engine.center_host());
//! let node = engine.node(0).expect("one node");
//! assert_eq!(engine.nodes().len(), 1);
//!
//! // A browser on the node; the chat script queues its frames on `chat`.
//! let mut browser = Browser::connect(node.chat_addr).await?;
//! browser.send(r#"{"op":"ping"}"#).await?;
//!
//! // A benchmark skips browsers: a synthetic connection, pushes straight onto the queue, and
//! // a capture of what the connection is sent.
//! let producer = engine.producer(&node.id).expect("node 0 exists");
//! let client = producer.register_client(Some(1));
//! producer.push("chat", client, json!({"op": "sendbroadcast"}))?;
//! let mut inbox = producer.receiver(client).expect("registered");
//!
//! // A consumer answers through the node's HTTP push API (or `mesh.send` on `/ws/v1`).
//! let url = format!("http://{}/v1/mesh/send", node.api_addr);
//! let body = json!({"c": client.to_string(), "d": "pong"}).to_string();
//! reqwest::Client::new().post(url).body(body).send().await?;
//! assert_eq!(inbox.recv().await, Some(Payload::Text("pong".into())));
//! assert_eq!(engine.counters().sent, 1);
//! engine.shutdown().await;
//! # Ok::<(), anyhow::Error>(())
//! # })?;
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! # Layout
//! - [`engine`]: [`MockEngine`], the handle; [`config`]: [`MockConfig`].
//! - `server`: a node's listeners; `api`: one consumer connection; `push`: the HTTP push API;
//!   `center`: the center and `admin` its node admin API; `chat`: the tutorial's script for one
//!   browser connection.
//! - `lua`: the Lua host that runs a user's own `entry.lua` instead ([`ScriptConfig`]).
//! - `cluster`: the node list and mesh routing; `node`: one node's state; `queue`: memory
//!   queues; `client`: one browser connection's state.
//! - [`producer`]: synthetic browser connections and pushes for benchmarks.
//! - [`browser`]: a small WebSocket client acting as a browser in tests.

#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod admin;
mod api;
mod auth;
pub mod browser;
mod center;
mod chat;
pub mod cli;
mod client;
mod cluster;
pub mod config;
pub mod counters;
pub mod engine;
pub mod error;
mod lua;
mod node;
pub mod producer;
mod push;
mod queue;
mod server;
mod sync;

pub use config::{Credentials, MockConfig};
pub use counters::Counters;
pub use engine::MockEngine;
pub use error::{MockError, MockErrorKind, QueueFull};
pub use lua::{parse_pair, ScriptConfig, DEFAULT_INSTRUCTION_LIMIT};
pub use node::NodeAddrs;
pub use producer::Producer;

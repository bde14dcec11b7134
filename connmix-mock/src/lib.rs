//! A mock CONNMIX engine, in process, for tests, benchmarks and first runs.
//!
//! The real engine is a closed-source binary; this crate serves what a consumer and a browser
//! can observe of it: the center's node list, each node's API server (`/ws/v1` and the HTTP
//! push API), bounded memory queues that consumers compete for, mesh routing between nodes,
//! and the chat tutorial's engine script on each node's browser-facing WebSocket.
//!
//! ```no_run
//! use connmix_mock::{browser::Browser, MockConfig, MockEngine};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! // Every listener on a free port, one node.
//! let engine = MockEngine::start(MockConfig::ephemeral()).await?;
//! let center = engine.center_host(); // give this to a consumer as `--host`
//! let node = engine.node(0).expect("one node");
//!
//! // A browser on the node: its frames land on the `chat` queue.
//! let mut browser = Browser::connect(node.chat_addr).await?;
//! browser.send(r#"{"op":"ping"}"#).await?;
//!
//! // Tests wait on the engine instead of sleeping.
//! engine.wait_for_consumers("chat", 1).await;
//! println!("{center}: {:?}", engine.counters());
//! engine.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`engine`]: [`MockEngine`], the handle; [`config`]: [`MockConfig`].
//! - `server`: a node's listeners; `api`: one consumer connection; `push`: the HTTP push API;
//!   `center`: the center; `chat`: the tutorial's script for one browser connection.
//! - `cluster`: the node list and mesh routing; `node`: one node's state; `queue`: memory
//!   queues; `client`: one browser connection's state.
//! - [`producer`]: synthetic browser connections and pushes for benchmarks.
//! - [`browser`]: a small WebSocket client acting as a browser in tests.

#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod api;
mod auth;
pub mod browser;
mod center;
mod chat;
mod client;
mod cluster;
pub mod config;
pub mod counters;
pub mod engine;
pub mod error;
mod node;
pub mod producer;
mod push;
mod queue;
mod server;

pub use config::{Credentials, MockConfig};
pub use counters::Counters;
pub use engine::MockEngine;
pub use error::{MockError, MockErrorKind, QueueFull};
pub use node::NodeAddrs;
pub use producer::Producer;

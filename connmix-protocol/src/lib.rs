//! Wire types of the CONNMIX engine, shared by `connmix-client` and the mock engine.
//!
//! Data only: nothing here opens a socket. Decoders accept every shape an engine or client of
//! any release has sent; encoders write the current documented dialect, or engine 1.0.1's when
//! asked. The prose specification and the JSON test vectors that pin these types down are in
//! the repository's `protocol-spec/` folder.
//!
//! ```
//! use connmix_protocol::{Call, ClientId, Dialect, EngineFrame, Event, Request};
//!
//! // A consumer asks to consume the `chat` queue...
//! let pop = Request::new(1, Call::QueuePop { topics: vec!["chat".into()] });
//! assert_eq!(pop.encode(Dialect::Current), r#"{"i":1,"m":"queue.pop","p":{"t":["chat"]}}"#);
//!
//! // ...and the engine delivers a queued message as an event.
//! let frame = r#"{"e":"queue.pop","p":{"n":"1","c":"1463819408261513216","t":"chat","d":{}},"id":null}"#;
//! let EngineFrame::Event(Event::QueuePop(msg)) = EngineFrame::decode(frame)? else { panic!() };
//! assert_eq!(msg.client, ClientId(1463819408261513216));
//! # Ok::<(), connmix_protocol::DecodeError>(())
//! ```
//!
//! # Layout
//! - [`ids`]: client and node ids.
//! - [`request`], [`reply`], [`event`]: the node API's messages; [`frame`] joins them into one
//!   enum per direction, with the text `ping`/`pong`.
//! - [`payload`]: text or binary data of `mesh.send` / `mesh.publish`; [`raw`]: a pushed
//!   value kept as JSON text.
//! - [`center`]: the center's HTTP API; [`http`]: the node's HTTP push API;
//!   [`credentials`]: the basic credentials both may require.
//! - [`script`]: what the chat tutorial's engine script pushes onto the queue.
//! - [`chat`]: the chat protocol between browsers and the chat consumer.
//! - [`dialect`]: which generation of the format to write.

#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod center;
pub mod chat;
pub mod credentials;
pub mod dialect;
pub mod error;
pub mod event;
mod fast;
pub mod frame;
pub mod http;
pub mod ids;
pub mod payload;
pub mod raw;
pub mod reply;
pub mod request;
pub mod script;
mod wire;

pub use center::{NodeInfo, NodeList, SkippedNode, VersionInfo};
pub use credentials::Credentials;
pub use dialect::Dialect;
pub use error::DecodeError;
pub use event::{Event, QueueMessage};
pub use frame::{ClientFrame, EngineFrame, InvalidRequest};
pub use ids::{ClientId, NodeId};
pub use payload::Payload;
pub use raw::RawJson;
pub use reply::{CallResult, EngineError, ErrorCode, Reply, Status};
pub use request::{Call, ConnFunc, Request};

/// The engine's default read timeout: an API connection that sends nothing for this long is
/// closed. Consumers must ping well inside it.
pub const DEFAULT_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

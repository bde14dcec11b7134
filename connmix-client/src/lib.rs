#![doc = include_str!("../README.md")]
//!
//! # How it works
//! [`Client`] is a cheap handle. A supervisor task reads the center's node list (at start,
//! every `resync_interval` plus jitter, and on [`Client::resync`]) and runs one task per engine
//! node. Each node task owns that node's WebSocket: it matches replies to requests by id,
//! fails every pending request at once when the connection drops, pings to keep the
//! connection alive and to detect a dead peer, reconnects with [`Backoff`], and consumes
//! the same topics again after every reconnect. Connection changes are visible through
//! [`Client::state`] and [`Client::events`].
//!
//! # Layout
//! - [`client`](Client), [`options`](ClientBuilder): the handle and its builder.
//! - `supervisor`: discovery; `node`: one task per node (connect, session, pending requests).
//! - [`queue`](EventStream): consumed messages; [`state`](ClientState): what can be observed.
//! - [`push`](PushClient): the HTTP push API.
//! - [`backoff`](Backoff), [`error`](ClientError), [`credentials`](Credentials).

#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod backoff;
mod center;
mod client;
mod credentials;
mod endpoint;
mod error;
mod node;
mod options;
#[cfg(feature = "http-push")]
mod push;
mod queue;
mod shared;
mod state;
mod supervisor;
mod transport;

pub use backoff::Backoff;
pub use client::{Client, PublishResult};
pub use credentials::Credentials;
pub use endpoint::DEFAULT_CENTER_PORT;
pub use error::{ClientError, ClientErrorKind};
pub use options::ClientBuilder;
#[cfg(feature = "http-push")]
pub use push::{PushClient, PushClientBuilder};
pub use queue::{ConnRef, EventKind, EventStream, QueueEvent};
pub use state::{ClientState, ConnectionEvent, DisconnectReason, NodeState};

pub use connmix_protocol::{
    self as protocol, Call, CallResult, ClientId, Dialect, ErrorCode, NodeId, Payload,
};

//! The CONNMIX chat tutorial's backend: consumes the engine's `chat` queue and answers browsers.
//!
//! ```
//! use chat_consumer::service::{auth, password::Hasher, users};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), chat_consumer::Error> {
//! let db = chat_consumer::db::connect("sqlite::memory:").await?;
//! chat_consumer::db::migrate(&db).await?;
//!
//! // What `chat-consumer users add` does, then what an `auth` frame checks.
//! let hasher = Hasher::new(2);
//! let hash = hasher.hash("123456").await?;
//! users::create(&db, "user1", "user1@example.com", hash).await?;
//! let user = auth::login(&db, &hasher, "user1", "123456").await?;
//! assert_eq!(user.map(|u| u.name).as_deref(), Some("user1"));
//! # Ok(()) }
//! ```
//!
//! A running consumer is one call, [`run`], with a [`Consumer`]: the engine client's builder,
//! the database, the password hasher and the limits. The handlers reach the engine through the
//! [`ChatEngine`] trait, which `connmix_client::Client` implements and tests fake.
//!
//! # Layout
//! - [`engine`]: the trait for what handlers need from the engine, and [`engine::Conn`].
//! - [`handlers`]: one file per chat op; [`Chat::handle_event`] routes a queue event to them.
//! - [`serve`]: [`run`], the entry point, and the main loop over the engine client, with
//!   drain on shutdown.
//! - [`source`]: where events come from: the engine's queue, a Redis list or a Redis stream;
//!   [`shared`]: the rate limit and duplicate checks consumers share through Redis.
//! - [`workers`]: runs events concurrently across connections, in order within one.
//! - [`service`]: users, passwords and logins over the database; [`entity`], [`migration`], [`db`].
//! - [`admin`]: the HTTP server of `/metrics`, `/healthz` and `/readyz`; [`telemetry`]: the
//!   metrics recorded.
//! - [`reconcile`]: removes presence records a lost close event left behind.
//! - [`channel`], [`rate`], [`throttle`], [`limits`]: who may use which channel, how often,
//!   and how many wrong passwords a name or connection may try.

#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

#[cfg(not(any(feature = "sqlite", feature = "mysql", feature = "postgres")))]
compile_error!("chat-consumer needs at least one database feature: sqlite, mysql or postgres");

pub mod admin;
pub mod channel;
pub mod chat;
mod client_engine;
pub mod db;
mod dispatch;
pub mod engine;
pub mod entity;
pub mod error;
pub mod handlers;
pub mod history;
pub mod limits;
pub mod migration;
pub mod names;
pub mod rate;
mod reach;
pub mod reconcile;
pub mod serve;
pub mod service;
pub mod shared;
pub mod source;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod throttle;
pub mod workers;

pub use chat::Chat;
pub use engine::{ChatEngine, Conn};
pub use serve::{run, Consumer, Stopped};

pub use error::{Error, ErrorKind, Result};

//! Where the consumer takes chat events from: one [`Source`] trait, three queues.
//!
//! | source | queue | delivery |
//! |---|---|---|
//! | [`EngineSource`] | the engine's memory queue (`queue.pop`) | at most once |
//! | [`RedisList`] | a Redis list the script `LPUSH`es onto (`BRPOP`) | at most once |
//! | [`RedisStream`] | a Redis stream read in a consumer group | at least once, effects once |
//!
//! A Redis entry is the script's event with two more fields, `node` and `client_id`, which name
//! the connection ([`RedisRoute`]). `protocol-spec/SPEC.md` gives the payloads and guarantees.

mod engine;
mod redis_list;
mod redis_stream;

use std::future::Future;
use std::time::Duration;

use connmix_client::Client;
use connmix_protocol::script::RedisRoute;
use connmix_protocol::RawJson;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::Conn;

pub use engine::EngineSource;
pub use redis_list::RedisList;
pub use redis_stream::{default_consumer_name, RedisStream, StreamConfig, DEFAULT_GROUP};

/// One event taken from a source, for the workers.
#[derive(Debug)]
pub struct Delivery {
    /// The connection the event is about.
    pub conn: Conn,
    /// The event as the script queued it.
    pub data: RawJson,
    /// Set by sources that want to hear when the event was handled.
    pub receipt: Option<Receipt>,
}

/// Tells an at-least-once source that its event was handled; dropped unused (a handler that
/// panicked), the event stays pending and is delivered again.
#[derive(Debug)]
pub struct Receipt {
    id: String,
    acks: mpsc::UnboundedSender<String>,
}

impl Receipt {
    /// The source's id of the event (a stream entry id), which is also what deduplicates its
    /// effects when it is delivered again.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event was handled: the source may forget it.
    pub fn ack(self) {
        // A closed channel means the source finished; the entry is then delivered again.
        let _ = self.acks.send(self.id);
    }
}

/// A queue of chat events.
///
/// [`serve`](crate::serve) takes [`next`](Self::next) until the shutdown token fires, then calls
/// [`stop`](Self::stop), hands on what [`rest`](Self::rest) still yields, and ends with
/// [`finish`](Self::finish) once the workers are done.
pub trait Source: Send {
    /// The next event; `None` once `cancel` fired (at a point where nothing taken is lost) or
    /// when the source ended for good.
    fn next(&mut self, cancel: &CancellationToken)
        -> impl Future<Output = Option<Delivery>> + Send;

    /// Stops taking new events.
    fn stop(&mut self) -> impl Future<Output = ()> + Send;

    /// Events taken before [`stop`](Self::stop) and not yet handed on; `None` when there are
    /// no more.
    fn rest(&mut self) -> impl Future<Output = Option<Delivery>> + Send;

    /// Settles what the workers acknowledged, within `deadline`.
    fn finish(self, deadline: Duration) -> impl Future<Output = ()> + Send;

    /// What it reads, for logs: `engine queue chat`, `redis stream chat`.
    fn describe(&self) -> String;
}

/// A Redis entry's connection and event, or why it cannot be answered.
pub(crate) fn entry(text: String, client: &Client) -> Result<(Conn, RawJson), String> {
    let conn = route(&text, client)?;
    let data = RawJson::from_text(text).map_err(|err| format!("entry is not JSON: {err}"))?;
    Ok((conn, data))
}

/// The connection a Redis entry is about, or why it cannot be answered.
fn route(text: &str, client: &Client) -> Result<Conn, String> {
    let route = RedisRoute::decode(text).map_err(|err| format!("no connection in entry: {err}"))?;
    let node = match route.node {
        Some(node) => node,
        None => {
            // Only a one-node engine can be answered without the script saying which node.
            let mut nodes = client.nodes();
            if nodes.len() != 1 {
                return Err(format!(
                    "entry names no node and the engine has {} (set server option node_id)",
                    nodes.len()
                ));
            }
            nodes.swap_remove(0)
        }
    };
    Ok(Conn::new(node, route.client))
}

/// Waits `delay` unless `cancel` fires first; false when it fired.
pub(crate) async fn pause(delay: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

/// Redis connection settings the sources and the shared state use.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`.
    pub url: String,
    /// How long one command (other than a blocking read) may take.
    pub response_timeout: Duration,
}

impl RedisConfig {
    /// `url` with a 5-second response timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            response_timeout: Duration::from_secs(5),
        }
    }

    /// The URL without its password, for messages.
    pub fn redacted(&self) -> String {
        crate::db::redact(&self.url)
    }

    /// A connection that reconnects by itself; commands wait at most `response_timeout`
    /// (plus `blocking` for a connection that blocks in reads).
    pub(crate) async fn manager(
        &self,
        blocking: Duration,
    ) -> crate::Result<redis::aio::ConnectionManager> {
        let unreachable = |err: redis::RedisError| {
            crate::Error::new(
                crate::ErrorKind::Redis,
                format!(
                    "cannot reach Redis at {}: {}",
                    self.redacted(),
                    describe(&err)
                ),
            )
        };
        let client = redis::Client::open(self.url.as_str()).map_err(unreachable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.response_timeout))
            .set_response_timeout(Some(self.response_timeout + blocking))
            .set_number_of_retries(2);
        client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unreachable)
    }
}

/// A Redis error in a line: what failed and why, without the crate's detail dump.
pub(crate) fn describe(err: &redis::RedisError) -> String {
    if err.is_connection_refusal() {
        format!("connection refused ({err})")
    } else if err.is_timeout() {
        format!("no answer in time ({err})")
    } else {
        err.to_string()
    }
}

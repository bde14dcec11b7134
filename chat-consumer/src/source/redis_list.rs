//! A Redis list, as the tutorial's Redis example reads it: `BRPOP`, at most once.

use std::time::Duration;

use connmix_client::Client;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::{describe, entry, pause, Delivery, RedisConfig, Source};
use crate::error::Result;

/// How long one `BRPOP` blocks: also how long a shutdown may wait for it.
const BLOCK: Duration = Duration::from_secs(1);
/// The wait after a failed read before the next.
const RETRY: Duration = Duration::from_secs(1);

/// Pops the list `key` that the script `LPUSH`es onto (`mix.redis` in the engine script).
///
/// An entry popped is gone from Redis: a consumer that dies holding it loses it, as the
/// tutorial's `BRPOP` consumer does. Use [`RedisStream`](super::RedisStream) to lose nothing.
pub struct RedisList {
    redis: ConnectionManager,
    key: String,
    client: Client,
    failing: bool,
}

impl std::fmt::Debug for RedisList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisList").field("key", &self.key).finish()
    }
}

impl RedisList {
    /// Connects to Redis (failing when it cannot be reached) to pop `key`; answers go through
    /// `client`.
    pub async fn connect(config: &RedisConfig, key: &str, client: &Client) -> Result<Self> {
        Ok(Self {
            // A connection of its own: a blocked BRPOP would hold up any other command on it.
            redis: config.manager(BLOCK).await?,
            key: key.to_owned(),
            client: client.clone(),
            failing: false,
        })
    }
}

impl Source for RedisList {
    async fn next(&mut self, cancel: &CancellationToken) -> Option<Delivery> {
        loop {
            // Never abandoned mid-command: a BRPOP dropped after Redis popped would lose the
            // entry. Shutdown waits for the block to end instead.
            if cancel.is_cancelled() {
                return None;
            }
            let popped: redis::RedisResult<Option<(String, String)>> = redis::cmd("BRPOP")
                .arg(&self.key)
                .arg(BLOCK.as_secs_f64())
                .query_async(&mut self.redis)
                .await;
            match popped {
                Ok(None) => {}
                Ok(Some((_, text))) => {
                    if std::mem::take(&mut self.failing) {
                        tracing::info!(key = %self.key, "reading Redis again");
                    }
                    match entry(text, &self.client) {
                        Ok((conn, data)) => {
                            return Some(Delivery {
                                conn,
                                data,
                                receipt: None,
                            })
                        }
                        Err(why) => tracing::warn!(key = %self.key, "dropped a Redis entry: {why}"),
                    }
                }
                Err(err) => {
                    if !std::mem::replace(&mut self.failing, true) {
                        tracing::warn!(key = %self.key, error = %describe(&err), "cannot read the Redis list; retrying");
                    }
                    if !pause(RETRY, cancel).await {
                        return None;
                    }
                }
            }
        }
    }

    async fn stop(&mut self) {}

    async fn rest(&mut self) -> Option<Delivery> {
        None
    }

    async fn finish(self, _deadline: Duration) {}

    fn describe(&self) -> String {
        format!("redis list {}", self.key)
    }
}

//! A Redis list, as the tutorial's Redis example reads it, at most once: `BLMPOP` (up to
//! [`BATCH`] entries per round trip), or `BRPOP` on a Redis older than 7.0.

use std::collections::VecDeque;
use std::time::Duration;

use connmix_client::Client;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::{describe, entry, pause, Delivery, RedisConfig, Source};
use crate::error::Result;

/// How long one `BRPOP` blocks: also how long a shutdown may wait for it.
const BLOCK: Duration = Duration::from_secs(1);
/// The most entries one `BLMPOP` takes: what a consumer that dies may hold beyond the one it
/// handles.
const BATCH: usize = 64;
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
    /// Popped and not yet handed on, oldest first.
    popped: VecDeque<String>,
    /// Whether Redis has `BLMPOP` (7.0 and later); cleared at the first "unknown command".
    batched: bool,
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
            popped: VecDeque::with_capacity(BATCH),
            batched: true,
        })
    }
}

impl RedisList {
    /// One blocking pop of up to [`BATCH`] entries into `popped` (none when the block ends
    /// empty).
    async fn pop(&mut self) -> redis::RedisResult<()> {
        if self.batched {
            // Popped from the right, as LPUSH fills from the left: the oldest come first.
            let popped: redis::RedisResult<Option<(String, Vec<String>)>> = redis::cmd("BLMPOP")
                .arg(BLOCK.as_secs_f64())
                .arg(1)
                .arg(&self.key)
                .arg("RIGHT")
                .arg("COUNT")
                .arg(BATCH)
                .query_async(&mut self.redis)
                .await;
            match popped {
                Err(err) if is_unknown_command(&err) => {
                    tracing::info!(key = %self.key, "Redis has no BLMPOP (older than 7.0): popping one entry per BRPOP");
                    self.batched = false;
                }
                other => {
                    self.popped
                        .extend(other?.into_iter().flat_map(|(_, texts)| texts));
                    return Ok(());
                }
            }
        }
        let popped: Option<(String, String)> = redis::cmd("BRPOP")
            .arg(&self.key)
            .arg(BLOCK.as_secs_f64())
            .query_async(&mut self.redis)
            .await?;
        self.popped.extend(popped.map(|(_, text)| text));
        Ok(())
    }

    /// The next popped entry that decodes, dropping (with a warning) those that do not.
    fn take(&mut self) -> Option<Delivery> {
        while let Some(text) = self.popped.pop_front() {
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
        None
    }
}

/// Whether Redis refused a command it does not know.
fn is_unknown_command(err: &redis::RedisError) -> bool {
    err.code() == Some("ERR")
        && err
            .detail()
            .is_some_and(|d| d.to_ascii_lowercase().contains("unknown command"))
}

impl Source for RedisList {
    async fn next(&mut self, cancel: &CancellationToken) -> Option<Delivery> {
        loop {
            // What is popped goes out through `rest` once cancelled.
            if cancel.is_cancelled() {
                return None;
            }
            if let Some(delivery) = self.take() {
                return Some(delivery);
            }
            // Never abandoned mid-command: a pop dropped after Redis popped would lose the
            // entries. Shutdown waits for the block to end instead.
            match self.pop().await {
                Ok(()) => {
                    if !self.popped.is_empty() && std::mem::take(&mut self.failing) {
                        tracing::info!(key = %self.key, "reading Redis again");
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
        self.take()
    }

    async fn finish(self, _deadline: Duration) {}

    fn describe(&self) -> String {
        format!("redis list {}", self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_an_unknown_command_makes_the_list_fall_back_to_brpop() {
        let Some(url) = std::env::var("CONNMIX_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                !std::env::var("CONNMIX_REQUIRE_SERVICES").is_ok_and(|v| v == "1"),
                "CONNMIX_TEST_REDIS_URL is not set, and CONNMIX_REQUIRE_SERVICES=1 requires it"
            );
            eprintln!("skipped: set CONNMIX_TEST_REDIS_URL to run it");
            return;
        };
        let mut redis = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        // What a Redis older than 7.0 answers to BLMPOP.
        let unknown = redis::cmd("NO-SUCH-COMMAND")
            .query_async::<()>(&mut redis)
            .await
            .unwrap_err();
        assert!(is_unknown_command(&unknown), "{unknown:?}");
        // Other refusals are errors to retry, not a reason to give up batching.
        let key = format!("chat-consumer-test:{}:not-a-list", std::process::id());
        redis::cmd("SET")
            .arg(&key)
            .arg("x")
            .query_async::<()>(&mut redis)
            .await
            .unwrap();
        let wrong_type = redis::cmd("BLMPOP")
            .arg(0.1)
            .arg(1)
            .arg(&key)
            .arg("RIGHT")
            .query_async::<()>(&mut redis)
            .await
            .unwrap_err();
        let _ = redis::cmd("DEL")
            .arg(&key)
            .query_async::<()>(&mut redis)
            .await;
        assert!(!is_unknown_command(&wrong_type), "{wrong_type:?}");
    }
}

//! State every consumer process shares through Redis (`--redis-url`), whichever source it
//! reads: the per-user message rate, and which stream entries already published their message.
//!
//! Redis failing never stops the chat: the rate falls back to this process's own buckets and a
//! publish goes out without its duplicate check, each with a warning.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::error::Result;
use crate::source::{describe, RedisConfig};

/// The generic cell rate algorithm, atomically in Redis, on Redis's clock. KEYS[1] holds the
/// user's theoretical arrival time in microseconds; ARGV: microseconds per message, burst.
/// Returns 1 when the message is admitted.
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > interval * (burst - 1) then return 0 end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return 1
";

/// Microseconds one message costs at the slowest rate taken as a rate (below, no refill).
const NEVER_US: f64 = 1e15;

/// The shared state's Redis connection and key prefix.
#[derive(Clone)]
pub struct Shared {
    redis: ConnectionManager,
    prefix: String,
    gcra: redis::Script,
    done_ttl: Duration,
    /// When the last warning was logged, in seconds since the epoch.
    warned: Arc<AtomicU64>,
}

/// Seconds between two warnings about Redis failing.
const WARN_EVERY_SECS: u64 = 10;

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Shared {
    /// Connects (failing when Redis cannot be reached); keys start with `prefix:` (the queue).
    /// A published entry is remembered for `done_ttl`, longer than it can be redelivered.
    pub async fn connect(config: &RedisConfig, prefix: &str, done_ttl: Duration) -> Result<Self> {
        Ok(Self {
            redis: config.manager(Duration::ZERO).await?,
            prefix: prefix.to_owned(),
            gcra: redis::Script::new(GCRA),
            done_ttl,
            warned: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Whether `uid` may send one more message at `per_second` sustained with `burst`, across
    /// every consumer sharing this Redis.
    pub async fn admit(&self, uid: u64, per_second: f64, burst: u32) -> redis::RedisResult<bool> {
        let interval = if per_second > 0.0 {
            (1e6 / per_second).min(NEVER_US)
        } else {
            NEVER_US
        };
        let admitted: i64 = self
            .gcra
            .key(format!("{}:rate:{uid}", self.prefix))
            .arg(format!("{interval:.0}"))
            .arg(burst.max(1))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(admitted == 1)
    }

    /// Marks stream entry `entry` as published; false when it already was (a redelivery),
    /// in which case the message must not go out again.
    pub async fn first_publish(&self, entry: &str) -> redis::RedisResult<bool> {
        let set: Option<String> = redis::cmd("SET")
            .arg(done_key(&self.prefix, entry))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(self.done_ttl.as_secs().max(1))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(set.is_some())
    }
}

/// The record that stream entry `entry` of `stream` was published.
pub(crate) fn done_key(stream: &str, entry: &str) -> String {
    format!("{stream}:done:{entry}")
}

impl Shared {
    /// Logs a failure and what the chat does instead, at most once every few seconds (an
    /// outage would otherwise log every message).
    pub(crate) fn degraded(&self, what: &'static str, err: &redis::RedisError) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.warned.swap(now, Ordering::Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_SECS {
            tracing::warn!(error = %describe(err), "shared state in Redis unavailable: {what}");
        } else {
            tracing::debug!(error = %describe(err), "shared state in Redis unavailable: {what}");
        }
    }
}

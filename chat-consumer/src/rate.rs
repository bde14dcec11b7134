//! Per-user message rate limiting: one token bucket per user id, in memory.
//!
//! Buckets are per process: with several consumer processes and no `--redis-url` a user may get
//! up to that many times the configured rate. With Redis the limit is one across every consumer
//! ([`Shared::admit`](crate::shared::Shared::admit)), and these buckets only stand in while Redis
//! cannot be reached.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::time::Instant;

/// Buckets idle this long are full again and can be forgotten.
const FORGET_AFTER_SECS: f64 = 600.0;
/// Sweep stale buckets once the map holds this many.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by user id.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

impl RateLimiter {
    /// `per_second` tokens refill each second, up to `burst` stored.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            rate: per_second.max(0.0),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `uid`; false when the user is over the limit.
    pub fn try_acquire(&self, uid: u64) -> bool {
        let now = Instant::now();
        // A poisoned lock only means another handler panicked mid-update; the map is still
        // usable, and refusing every message after that would be worse.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| now.duration_since(b.last).as_secs_f64() < FORGET_AFTER_SECS);
        }
        let bucket = buckets.entry(uid).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_is_allowed_then_refused_until_refilled() {
        let limiter = RateLimiter::new(2.0, 3);
        assert!((0..3).all(|_| limiter.try_acquire(1)));
        assert!(!limiter.try_acquire(1));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(limiter.try_acquire(1));
        assert!(!limiter.try_acquire(1));
    }

    #[tokio::test(start_paused = true)]
    async fn users_have_separate_buckets() {
        let limiter = RateLimiter::new(1.0, 1);
        assert!(limiter.try_acquire(1));
        assert!(!limiter.try_acquire(1));
        assert!(limiter.try_acquire(2));
    }

    #[tokio::test(start_paused = true)]
    async fn refill_never_exceeds_the_burst() {
        let limiter = RateLimiter::new(10.0, 2);
        assert!(limiter.try_acquire(1));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(limiter.try_acquire(1));
        assert!(limiter.try_acquire(1));
        assert!(!limiter.try_acquire(1));
    }
}

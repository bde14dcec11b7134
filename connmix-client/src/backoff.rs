//! Reconnect delays: exponential, capped, with jitter.

use std::time::Duration;

/// How long to wait before each reconnect attempt.
///
/// Attempt `n` (counting from 1) waits `initial * multiplier^(n-1)`, capped at `max`, then
/// shortened by a random part of up to `jitter` of itself so that many consumers cut off at
/// once do not come back in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Growth factor per attempt (values below 1 are treated as 1).
    pub multiplier: f64,
    /// Fraction (0..=1) of the delay that may be taken off at random.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// Delays from `initial` doubling up to `max`, with the default jitter (20 %). The fields
    /// are public: set [`multiplier`](Self::multiplier) or [`jitter`](Self::jitter) on the
    /// value to change the rest.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            ..Self::default()
        }
    }

    /// The delay before attempt `attempt` (1-based; 0 is treated as 1).
    ///
    /// `random` is a value in `0.0..1.0` supplied by the caller, which keeps this a pure
    /// function that tests can pin down.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let multiplier = if self.multiplier.is_finite() {
            self.multiplier.max(1.0)
        } else {
            1.0
        };
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let max = self.max.as_secs_f64();
        let base = (self.initial.as_secs_f64() * multiplier.powi(exponent)).min(max);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let delay = base * (1.0 - jitter * random);
        Duration::try_from_secs_f64(delay.max(0.0)).unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.0,
        }
    }

    #[test]
    fn delay_doubles_per_attempt_until_the_cap() {
        let b = plain();
        let delays: Vec<u128> = (1..=6).map(|n| b.delay(n, 0.5).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn attempt_zero_counts_as_the_first() {
        assert_eq!(plain().delay(0, 0.0), Duration::from_millis(100));
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let b = Backoff {
            jitter: 0.5,
            ..plain()
        };
        assert_eq!(b.delay(2, 0.0), Duration::from_millis(200));
        assert_eq!(b.delay(2, 1.0), Duration::from_millis(100));
        let mid = b.delay(2, 0.5);
        assert!(mid > Duration::from_millis(100) && mid < Duration::from_millis(200));
    }

    #[test]
    fn huge_attempt_numbers_stay_at_the_cap() {
        assert_eq!(plain().delay(u32::MAX, 0.0), Duration::from_secs(1));
    }

    #[test]
    fn nonsense_factors_do_not_panic_or_shrink_below_initial() {
        let b = Backoff {
            multiplier: f64::NAN,
            jitter: 7.0,
            ..plain()
        };
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, f64::INFINITY), Duration::from_millis(100));
        let shrinking = Backoff {
            multiplier: 0.1,
            ..plain()
        };
        assert_eq!(shrinking.delay(5, 0.0), Duration::from_millis(100));
    }
}

//! Login throttling: a few failed logins per name and per connection within a window, then
//! refusals without hashing until the window ends.
//!
//! An attempt counts as soon as it starts, so concurrent guesses cannot overtake the limit
//! while their hashes run; a successful one is taken back. Like the message rate, the counts
//! are per process.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::Conn;

/// Sweep expired windows once a map holds this many keys.
const SWEEP_AT: usize = 10_000;

/// One key's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failure counts per key, each in a fixed window that starts with its first failure.
#[derive(Debug)]
struct Counts<K> {
    windows: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    fn new() -> Self {
        Self {
            windows: HashMap::new(),
        }
    }

    /// The time left in `key`'s window when it is at `limit`, else `None`.
    fn blocked(&mut self, key: &K, limit: u32, window: Duration, now: Instant) -> Option<Duration> {
        let entry = self.windows.get(key)?;
        let ends = entry.started + window;
        if now >= ends {
            self.windows.remove(key);
            return None;
        }
        (entry.failures >= limit).then(|| ends - now)
    }

    fn add(&mut self, key: &K, window: Duration, now: Instant) {
        if self.windows.len() >= SWEEP_AT {
            self.windows.retain(|_, w| now < w.started + window);
        }
        let entry = self.windows.entry(key.clone()).or_insert(Window {
            started: now,
            failures: 0,
        });
        entry.failures = entry.failures.saturating_add(1);
    }

    fn take_back(&mut self, key: &K) {
        if let Some(entry) = self.windows.get_mut(key) {
            entry.failures = entry.failures.saturating_sub(1);
        }
    }
}

#[derive(Debug)]
struct State {
    names: Counts<String>,
    conns: Counts<Conn>,
}

/// The login throttle of one consumer process.
#[derive(Debug)]
pub struct LoginThrottle {
    limit: u32,
    window: Duration,
    state: Mutex<State>,
}

/// A login attempt let through: it stays counted as a failure unless given back with
/// [`LoginThrottle::forgive`] (a success, or a failure of ours rather than a wrong guess).
#[derive(Debug)]
#[must_use = "a successful login must be forgiven, or it counts as a failure"]
pub struct Attempt {
    name: String,
    conn: Conn,
}

impl LoginThrottle {
    /// At most `limit` failed logins per name and per connection in each `window`
    /// (`limit` 0 turns throttling off).
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            state: Mutex::new(State {
                names: Counts::new(),
                conns: Counts::new(),
            }),
        }
    }

    /// Starts an attempt to log `conn` in as `name`, or says how long until one may be made.
    pub fn begin(&self, name: &str, conn: &Conn) -> Result<Attempt, Duration> {
        let attempt = Attempt {
            name: name.to_owned(),
            conn: conn.clone(),
        };
        if self.limit == 0 {
            return Ok(attempt);
        }
        let now = Instant::now();
        let mut state = self.lock();
        let name_key = attempt.name.clone();
        let blocked = [
            state.names.blocked(&name_key, self.limit, self.window, now),
            state.conns.blocked(conn, self.limit, self.window, now),
        ];
        if let Some(wait) = blocked.into_iter().flatten().max() {
            return Err(wait);
        }
        state.names.add(&name_key, self.window, now);
        state.conns.add(conn, self.window, now);
        Ok(attempt)
    }

    /// The attempt does not count as a failure: it logged in, or failed for a reason of ours.
    pub fn forgive(&self, attempt: Attempt) {
        if self.limit == 0 {
            return;
        }
        let mut state = self.lock();
        state.names.take_back(&attempt.name);
        state.conns.take_back(&attempt.conn);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic mid-update leaves counts at worst one off; refusing every login would be worse.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(client: u64) -> Conn {
        Conn::new("n1", client)
    }

    #[tokio::test(start_paused = true)]
    async fn failures_per_name_are_refused_until_the_window_ends() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        for client in 0..3 {
            let _failed = throttle.begin("user1", &conn(client)).unwrap();
        }
        // A fourth try, from a fresh connection: the name is what is guessed.
        let wait = throttle.begin("user1", &conn(9)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        assert!(
            throttle.begin("user2", &conn(9)).is_ok(),
            "other names go on"
        );
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(
            throttle.begin("user1", &conn(10)).unwrap_err(),
            Duration::from_secs(15)
        );
        tokio::time::advance(Duration::from_secs(15)).await;
        assert!(throttle.begin("user1", &conn(10)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn one_connection_guessing_many_names_is_refused() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        for name in ["a", "b", "c"] {
            let _failed = throttle.begin(name, &conn(1)).unwrap();
        }
        assert!(throttle.begin("d", &conn(1)).is_err());
        assert!(throttle.begin("d", &conn(2)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn successes_do_not_count_and_zero_turns_it_off() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        for _ in 0..5 {
            let attempt = throttle.begin("user1", &conn(1)).unwrap();
            throttle.forgive(attempt);
        }
        assert!(throttle.begin("user1", &conn(1)).is_ok());
        let off = LoginThrottle::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            let _failed = off.begin("user1", &conn(1)).unwrap();
        }
    }
}

//! Login throttling: a few failed logins per name and per connection within a window, then
//! refusals without hashing until the window ends.
//!
//! Only failures count, once their password check has answered: a user logging in from many
//! devices at once is never refused. One connection cannot have two logins in flight (the
//! engine script holds its frames until the login answers); guesses already being checked on
//! several connections when a name reaches its limit still complete. Like the message rate, the
//! counts are per process.

use std::borrow::Borrow;
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

impl<K: Hash + Eq> Counts<K> {
    fn new() -> Self {
        Self {
            windows: HashMap::new(),
        }
    }

    /// The time left in `key`'s window when it is at `limit`, else `None`.
    fn blocked<Q>(
        &mut self,
        key: &Q,
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> Option<Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entry = self.windows.get(key)?;
        let ends = entry.started + window;
        if now >= ends {
            self.windows.remove(key);
            return None;
        }
        (entry.failures >= limit).then(|| ends - now)
    }

    fn add<Q>(&mut self, key: &Q, window: Duration, now: Instant)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if self.windows.len() >= SWEEP_AT {
            self.windows.retain(|_, w| now < w.started + window);
        }
        let entry = self.windows.entry(key.to_owned()).or_insert(Window {
            started: now,
            failures: 0,
        });
        entry.failures = entry.failures.saturating_add(1);
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

    /// Whether `conn` may try to log in as `name` now, or how long until it may.
    pub fn check(&self, name: &str, conn: &Conn) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut state = self.lock();
        let blocked = [
            state.names.blocked(name, self.limit, self.window, now),
            state.conns.blocked(conn, self.limit, self.window, now),
        ];
        match blocked.into_iter().flatten().max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// A login of `conn` as `name` failed: a wrong password or an unknown name.
    pub fn failed(&self, name: &str, conn: &Conn) {
        if self.limit == 0 {
            return;
        }
        let now = Instant::now();
        let mut state = self.lock();
        state.names.add(name, self.window, now);
        state.conns.add(conn, self.window, now);
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
            assert!(throttle.check("user1", &conn(client)).is_ok());
            throttle.failed("user1", &conn(client));
        }
        // A fourth try, from a fresh connection: the name is what is guessed.
        let wait = throttle.check("user1", &conn(9)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        assert!(
            throttle.check("user2", &conn(9)).is_ok(),
            "other names go on"
        );
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(
            throttle.check("user1", &conn(10)).unwrap_err(),
            Duration::from_secs(15)
        );
        tokio::time::advance(Duration::from_secs(15)).await;
        assert!(throttle.check("user1", &conn(10)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn one_connection_guessing_many_names_is_refused() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        for name in ["a", "b", "c"] {
            throttle.failed(name, &conn(1));
        }
        assert!(throttle.check("d", &conn(1)).is_err());
        assert!(throttle.check("d", &conn(2)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn logins_that_do_not_fail_never_count_and_zero_turns_it_off() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        for client in 0..100 {
            assert!(throttle.check("user1", &conn(client)).is_ok());
        }
        let off = LoginThrottle::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            off.failed("user1", &conn(1));
        }
        assert!(off.check("user1", &conn(1)).is_ok());
    }
}

//! The bounds the consumer enforces on browsers and on itself.

use std::time::Duration;

/// What the consumer keeps of who is in which room (`--room-presence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomPresence {
    /// Membership records, `presence`, and `join`/`leave` events on the rooms.
    Events,
    /// Membership records and `presence`, no events.
    Records,
    /// Nothing: no records (two statements less per subscribe, one per close), `presence`
    /// refused; the tutorial's behaviour.
    Off,
}

impl RoomPresence {
    /// Whether membership records are kept.
    pub fn records(self) -> bool {
        self != RoomPresence::Off
    }

    /// Whether rooms hear joins and leaves.
    pub fn events(self) -> bool {
        self == RoomPresence::Events
    }
}

/// Limits on what one user may do and on how much work runs at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest chat message, in bytes of UTF-8.
    pub max_message_bytes: usize,
    /// Longest room name after `room_`, in bytes.
    pub max_room_name: usize,
    /// Most channels one `subscribe`/`unsubscribe` may name.
    pub max_channels_per_request: usize,
    /// Messages a user may send per second, sustained (all devices together).
    pub messages_per_second: f64,
    /// Messages a user may send in a burst above the sustained rate.
    pub message_burst: u32,
    /// Password hashes computed at once; more logins wait their turn.
    pub hash_parallelism: usize,
    /// Tasks handling events; each connection's events stay on one of them, in order.
    pub workers: usize,
    /// Events waiting per worker before the consumer stops reading the engine.
    pub worker_queue: usize,
    /// How long shutdown waits for events already taken from the engine.
    pub drain_timeout: Duration,
    /// Failed logins allowed per name and per connection in each [`login_window`](Self::login_window);
    /// further attempts are refused without hashing until it ends. 0 turns this off.
    pub login_failures: u32,
    /// The window of [`login_failures`](Self::login_failures).
    pub login_window: Duration,
    /// How long a session token from a login stays valid; zero hands out none.
    pub session_ttl: Duration,
    /// Messages kept per channel for `history`; 0 keeps none and turns `history` off.
    pub history_per_channel: u32,
    /// What the consumer keeps of who is in which room.
    pub room_presence: RoomPresence,
    /// How long the history writer lets a batch gather after its first message.
    pub history_linger: Duration,
    /// Messages waiting to be stored before new ones are dropped (and counted) rather than
    /// delaying a reply.
    pub history_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4096,
            max_room_name: 64,
            max_channels_per_request: 16,
            messages_per_second: 5.0,
            message_burst: 10,
            hash_parallelism: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
            workers: 64,
            worker_queue: 128,
            drain_timeout: Duration::from_secs(10),
            login_failures: 5,
            login_window: Duration::from_secs(60),
            session_ttl: Duration::from_secs(24 * 3600),
            history_per_channel: 200,
            room_presence: RoomPresence::Events,
            history_linger: crate::history::DEFAULT_LINGER,
            history_buffer: 4096,
        }
    }
}

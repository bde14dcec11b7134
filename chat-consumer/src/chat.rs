//! [`Chat`]: everything a handler needs, shared by all workers.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::DatabaseConnection;

use crate::engine::ChatEngine;
use crate::history::History;
use crate::limits::Limits;
use crate::names::NameCache;
use crate::rate::RateLimiter;
use crate::service::password::Hasher;
use crate::service::session::Sessions;
use crate::shared::Shared;
use crate::telemetry::EventMetrics;
use crate::throttle::LoginThrottle;

/// The chat service: engine, database, password hasher, limits and per-user state.
#[derive(Debug)]
pub struct Chat<E> {
    pub(crate) engine: E,
    pub(crate) db: DatabaseConnection,
    pub(crate) hasher: Hasher,
    pub(crate) limits: Limits,
    pub(crate) rate: RateLimiter,
    pub(crate) names: NameCache,
    pub(crate) logins: LoginThrottle,
    /// Replies not sent because their connection had gone.
    pub(crate) replies_to_gone: AtomicU64,
    /// State shared with the other consumers through Redis, if configured.
    pub(crate) shared: Option<Shared>,
    /// The per-event metrics' handles.
    pub(crate) metrics: EventMetrics,
    /// Session tokens, when logins hand them out.
    pub(crate) sessions: Option<Sessions>,
    /// Where published messages are kept for `history`.
    pub(crate) history: History,
}

impl<E: ChatEngine> Chat<E> {
    /// A chat answering through `engine`, with users in `db`.
    pub fn new(engine: E, db: DatabaseConnection, hasher: Hasher, limits: Limits) -> Self {
        Self {
            rate: RateLimiter::new(limits.messages_per_second, limits.message_burst),
            logins: LoginThrottle::new(limits.login_failures, limits.login_window),
            engine,
            db,
            hasher,
            limits,
            names: NameCache::default(),
            replies_to_gone: AtomicU64::new(0),
            shared: None,
            metrics: EventMetrics::register(),
            sessions: None,
            history: History::off(),
        }
    }

    /// The same chat, sharing the message rate and published entries with other consumers
    /// through `shared`.
    pub fn with_shared(mut self, shared: Shared) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The same chat, handing out session tokens at login and accepting them.
    pub fn with_sessions(mut self, sessions: Sessions) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// The same chat, keeping published messages in `history`.
    pub fn with_history(mut self, history: History) -> Self {
        self.history = history;
        self
    }

    /// The history published messages go to.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The engine this chat answers through.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Replies that were not sent because their browser had already left (engine error 401),
    /// since start.
    pub fn replies_to_gone(&self) -> u64 {
        self.replies_to_gone.load(Ordering::Relaxed)
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

//! [`Chat`]: everything a handler needs, shared by all workers.

use sea_orm::DatabaseConnection;

use crate::engine::ChatEngine;
use crate::limits::Limits;
use crate::names::NameCache;
use crate::rate::RateLimiter;
use crate::service::password::Hasher;

/// The chat service: engine, database, password hasher, limits and per-user state.
#[derive(Debug)]
pub struct Chat<E> {
    pub(crate) engine: E,
    pub(crate) db: DatabaseConnection,
    pub(crate) hasher: Hasher,
    pub(crate) limits: Limits,
    pub(crate) rate: RateLimiter,
    pub(crate) names: NameCache,
}

impl<E: ChatEngine> Chat<E> {
    /// A chat answering through `engine`, with users in `db`.
    pub fn new(engine: E, db: DatabaseConnection, hasher: Hasher, limits: Limits) -> Self {
        Self {
            rate: RateLimiter::new(limits.messages_per_second, limits.message_burst),
            engine,
            db,
            hasher,
            limits,
            names: NameCache::default(),
        }
    }

    /// The engine this chat answers through.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

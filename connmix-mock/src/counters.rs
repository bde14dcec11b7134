//! Totals a test or benchmark reads to see what the engine did.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the engine's totals, over all nodes since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Values pushed onto a memory queue.
    pub queued: u64,
    /// Values handed to a consumer connection.
    pub delivered: u64,
    /// Pushes refused because the topic was full.
    pub rejected: u64,
    /// Successful `mesh.send` calls (WebSocket and HTTP).
    pub sent: u64,
    /// `mesh.publish` calls (WebSocket and HTTP).
    pub published: u64,
    /// Frames delivered to browser connections (real or synthetic) by send and publish.
    pub frames_out: u64,
    /// `conn.call` requests answered successfully.
    pub conn_calls: u64,
    /// API connections open now.
    pub api_connections: u64,
    /// Browser connections (real and synthetic) open now.
    pub browser_connections: u64,
}

/// The live atomics behind [`Counters`].
#[derive(Debug, Default)]
pub(crate) struct LiveCounters {
    pub(crate) queued: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) conn_calls: AtomicU64,
    pub(crate) api_connections: AtomicU64,
    pub(crate) browser_connections: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn drop_one(counter: &AtomicU64) {
    counter.fetch_sub(1, Ordering::Relaxed);
}

impl LiveCounters {
    pub(crate) fn snapshot(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            queued: get(&self.queued),
            delivered: get(&self.delivered),
            rejected: get(&self.rejected),
            sent: get(&self.sent),
            published: get(&self.published),
            frames_out: get(&self.frames_out),
            conn_calls: get(&self.conn_calls),
            api_connections: get(&self.api_connections),
            browser_connections: get(&self.browser_connections),
        }
    }
}

//! The consumer's metrics, recorded through the [`metrics`] facade.
//!
//! Nothing is recorded until a recorder is installed ([`crate::admin::install_recorder`], which
//! `--admin-addr` does); until then every call below is a no-op. The per-event metrics are
//! registered once, when a [`Chat`](crate::Chat) is made, and kept as handles: counting an
//! event is then an atomic add, with no lookup and no allocation.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use connmix_client::{ClientError, ClientErrorKind, ClientState, ConnectionEvent, ErrorCode};
use connmix_protocol::chat::op;
use metrics::{counter, gauge, Counter, Gauge, Histogram};
use tokio::sync::{broadcast, watch};

/// The metric names, all prefixed `chat_`.
pub mod names {
    /// Counter: queue events handled, by `op` and `outcome` (`ok`, `refused`: the browser was
    /// told no, `failed`: the database or the engine failed).
    pub const EVENTS: &str = "chat_events_total";
    /// Histogram: seconds from an event's hand-over to a worker's handler to its end, by `op`.
    pub const EVENT_SECONDS: &str = "chat_event_duration_seconds";
    /// Gauge: events received from the source and not yet handled (queued or running).
    pub const EVENTS_IN_FLIGHT: &str = "chat_events_in_flight";
    /// Counter: chat messages refused for going over the sender's rate.
    pub const RATE_LIMITED: &str = "chat_messages_rate_limited_total";
    /// Counter: logins, by `result` (`ok`, `failed`: wrong name or password, `throttled`: too
    /// many failures, `error`: the database or hashing failed).
    pub const LOGINS: &str = "chat_logins_total";
    /// Histogram: seconds one password hash or check took on its hashing thread.
    pub const PASSWORD_HASH_SECONDS: &str = "chat_password_hash_duration_seconds";
    /// Gauge: engine nodes whose connection is open (of every engine client in the process).
    pub const ENGINE_NODES_CONNECTED: &str = "chat_engine_nodes_connected";
    /// Counter: attempts to connect to an engine node again after its connection was lost.
    pub const ENGINE_RECONNECTS: &str = "chat_engine_reconnects_total";
    /// Counter: node connections lost.
    pub const ENGINE_DISCONNECTS: &str = "chat_engine_disconnects_total";
    /// Counter: engine calls that failed, by `code` (the engine's error code, or the kind of
    /// failure: `timeout`, `disconnected`, ...).
    pub const ENGINE_CALL_ERRORS: &str = "chat_engine_call_errors_total";
    /// Counter: database operations that failed.
    pub const DATABASE_ERRORS: &str = "chat_database_errors_total";
    /// Counter: messages written to the history.
    pub const HISTORY_STORED: &str = "chat_history_stored_total";
    /// Counter: messages left out of the history, by `reason` (`full`: the buffer in front of
    /// the database was full, `error`: the database refused the batch).
    pub const HISTORY_DROPPED: &str = "chat_history_dropped_total";
}

/// The `op` label of an event: the chat ops, `close` for a closed connection, and `invalid`
/// for a frame naming no known op (the browser's text never becomes a label).
const OPS: [&str; 11] = [
    op::AUTH,
    op::SUBSCRIBE,
    op::UNSUBSCRIBE,
    op::SEND_TO_ROOM,
    op::SEND_TO_USER,
    op::SEND_BROADCAST,
    op::PING,
    op::HISTORY,
    op::PRESENCE,
    "close",
    "invalid",
];
const CLOSE: usize = 9;
const INVALID: usize = 10;

/// How an event ended, from the reply its browser got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Outcome {
    /// Done, or nothing to do.
    Ok = 0,
    /// The browser was told no (bad request, no access, over a limit).
    Refused = 1,
    /// The database or the engine failed.
    Failed = 2,
}

const OUTCOMES: [&str; 3] = ["ok", "refused", "failed"];

/// An event's outcome so far: the worst reported wins.
#[derive(Debug, Default)]
pub(crate) struct OutcomeCell(AtomicU8);

impl OutcomeCell {
    /// Reports `outcome`; a worse one reported before stays.
    pub(crate) fn report(&self, outcome: Outcome) {
        self.0.fetch_max(outcome as u8, Ordering::Relaxed);
    }

    fn get(&self) -> Outcome {
        match self.0.load(Ordering::Relaxed) {
            0 => Outcome::Ok,
            1 => Outcome::Refused,
            _ => Outcome::Failed,
        }
    }
}

/// The `op` label's index for an op name.
pub(crate) fn op_index(name: Option<&str>) -> usize {
    name.and_then(|name| OPS[..CLOSE].iter().position(|op| *op == name))
        .unwrap_or(INVALID)
}

/// The index of the `close` op label.
pub(crate) const fn close_index() -> usize {
    CLOSE
}

/// The handles of the per-event metrics.
pub(crate) struct EventMetrics {
    handled: [[Counter; OUTCOMES.len()]; OPS.len()],
    latency: [Histogram; OPS.len()],
    in_flight: Gauge,
}

impl std::fmt::Debug for EventMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventMetrics").finish_non_exhaustive()
    }
}

impl EventMetrics {
    /// Registers every label combination with the installed recorder, if any.
    pub(crate) fn register() -> Self {
        Self {
            handled: std::array::from_fn(|op| {
                std::array::from_fn(
                    |outcome| counter!(names::EVENTS, "op" => OPS[op], "outcome" => OUTCOMES[outcome]),
                )
            }),
            latency: std::array::from_fn(
                |op| metrics::histogram!(names::EVENT_SECONDS, "op" => OPS[op]),
            ),
            in_flight: gauge!(names::EVENTS_IN_FLIGHT),
        }
    }

    /// Counts one handled event of op `op` ([`op_index`]) that took `took`.
    pub(crate) fn handled(&self, op: usize, outcome: &OutcomeCell, took: Duration) {
        let op = op.min(INVALID);
        self.handled[op][outcome.get() as usize].increment(1);
        self.latency[op].record(took.as_secs_f64());
    }

    /// The gauge of events in flight, which [`crate::workers::Workers`] raises for each event
    /// it is given.
    pub(crate) fn in_flight(&self) -> Gauge {
        self.in_flight.clone()
    }

    /// A received event was handled.
    pub(crate) fn done(&self) {
        self.in_flight.decrement(1.0);
    }
}

/// Counts a failed engine call under its code.
pub(crate) fn engine_call_failed(err: &ClientError) {
    let code = match err.kind() {
        ClientErrorKind::Engine(code) => match code {
            ErrorCode::InvalidArgument => "101",
            ErrorCode::ConsumeFailed => "201",
            ErrorCode::AlreadyConsumed => "202",
            ErrorCode::UnpopFailed => "203",
            ErrorCode::ConnCallFailed => "301",
            ErrorCode::SendFailed => "401",
            // Codes the engine may add.
            _ => "other",
        },
        ClientErrorKind::Timeout => "timeout",
        ClientErrorKind::Disconnected => "disconnected",
        ClientErrorKind::NoNode => "no_node",
        ClientErrorKind::Protocol => "protocol",
        ClientErrorKind::Http => "http",
        _ => "other",
    };
    counter!(names::ENGINE_CALL_ERRORS, "code" => code).increment(1);
}

/// Counts a failed database operation.
pub(crate) fn database_failed() {
    counter!(names::DATABASE_ERRORS).increment(1);
}

/// Keeps [`names::ENGINE_NODES_CONNECTED`], [`names::ENGINE_RECONNECTS`] and
/// [`names::ENGINE_DISCONNECTS`] up to date from an engine client's state and events; returns
/// once the client is closed or gone.
pub(crate) async fn watch_engine(
    mut state: watch::Receiver<ClientState>,
    mut events: broadcast::Receiver<ConnectionEvent>,
) {
    let connected = gauge!(names::ENGINE_NODES_CONNECTED);
    let reconnects = counter!(names::ENGINE_RECONNECTS);
    let disconnects = counter!(names::ENGINE_DISCONNECTS);
    let mut events_open = true;
    // This client's share of the gauge, which other clients in the process may share.
    let mut counted = 0.0;
    loop {
        let closed = {
            let now = state.borrow_and_update();
            let nodes = if now.closed { 0 } else { now.connected() } as f64;
            connected.increment(nodes - counted);
            counted = nodes;
            now.closed
        };
        if closed {
            break;
        }
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            event = events.recv(), if events_open => match event {
                Ok(ConnectionEvent::Reconnecting { .. }) => reconnects.increment(1),
                Ok(ConnectionEvent::Disconnected { .. }) => disconnects.increment(1),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => events_open = false,
            },
        }
    }
    connected.decrement(counted);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_op_names_never_become_labels() {
        assert_eq!(OPS[op_index(Some("sendtoroom"))], "sendtoroom");
        assert_eq!(OPS[op_index(Some("dance"))], "invalid");
        assert_eq!(OPS[op_index(Some("close"))], "invalid");
        assert_eq!(OPS[op_index(None)], "invalid");
    }

    #[test]
    fn the_worst_outcome_reported_stays() {
        let cell = OutcomeCell::default();
        cell.report(Outcome::Failed);
        cell.report(Outcome::Refused);
        assert_eq!(cell.get(), Outcome::Failed);
    }
}

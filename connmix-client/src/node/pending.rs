//! Requests sent and not yet answered, by request id.

use std::collections::HashMap;

use connmix_protocol::{CallResult, EngineError, NodeId};
use tracing::{debug, warn};

use tokio::time::Instant;

use super::{Deadline, Responder};
use crate::error::ClientError;

/// Who is waiting for a reply.
#[derive(Debug)]
pub(crate) enum Waiter {
    /// A caller that wants the result.
    Call(Responder<CallResult>),
    /// A caller that only wants to know it worked.
    Done(Responder<()>),
    /// Nobody: the task sent it on its own (unpop at shutdown).
    Internal(&'static str),
    /// The task's re-consume after a (re)connect: a connection that cannot consume is no use.
    Reconsume,
}

/// What a reply meant to the session.
#[derive(Debug, PartialEq)]
pub(crate) enum Resolved {
    /// No request has that id.
    Unknown,
    /// Handed to its waiter.
    Done,
    /// The engine refused to consume again on this connection.
    ReconsumeRefused(EngineError),
}

/// The pending requests of one connection. Ids start again at 1 on every connection, so a
/// late reply from an old socket can never be mistaken for a new request's.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    next_id: u64,
    waiting: HashMap<u64, (Waiter, Option<Deadline>)>,
}

impl Pending {
    /// Registers a waiter (failed with a timeout once `deadline` passes, if it has one) and
    /// returns the id its request must carry.
    pub(crate) fn insert(&mut self, waiter: Waiter, deadline: Option<Deadline>) -> u64 {
        self.next_id += 1;
        self.waiting.insert(self.next_id, (waiter, deadline));
        self.next_id
    }

    /// Fails every waiter whose deadline is not after `now` with a timeout.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.waiting.retain(|_, (waiter, deadline)| match deadline {
            Some(deadline) if deadline.at <= now => {
                let error = ClientError::timeout(deadline.op);
                match std::mem::replace(waiter, Waiter::Internal("expired")) {
                    Waiter::Call(reply) => {
                        let _ = reply.send(Err(error));
                    }
                    Waiter::Done(reply) => {
                        let _ = reply.send(Err(error));
                    }
                    Waiter::Internal(_) | Waiter::Reconsume => {}
                }
                false
            }
            _ => true,
        });
    }

    /// Hands a reply to its waiter; false when no request has that id.
    pub(crate) fn resolve(
        &mut self,
        id: u64,
        outcome: Result<CallResult, EngineError>,
        node: &NodeId,
    ) -> Resolved {
        let Some((waiter, _)) = self.waiting.remove(&id) else {
            return Resolved::Unknown;
        };
        match waiter {
            // A caller that gave up (timeout) has dropped its receiver: nothing to do.
            Waiter::Call(reply) => {
                let _ = reply.send(outcome.map_err(ClientError::from));
            }
            Waiter::Done(reply) => {
                let _ = reply.send(outcome.map(|_| ()).map_err(ClientError::from));
            }
            Waiter::Internal(op) => match outcome {
                Ok(_) => debug!(%node, op, "done"),
                Err(error) => warn!(%node, op, %error, "engine refused"),
            },
            Waiter::Reconsume => match outcome {
                Ok(_) => debug!(%node, "consuming again"),
                Err(error) => return Resolved::ReconsumeRefused(error),
            },
        }
        Resolved::Done
    }

    /// Fails every waiter at once with `error`.
    pub(crate) fn fail_all(&mut self, error: &ClientError) {
        for (_, (waiter, _)) in self.waiting.drain() {
            match waiter {
                Waiter::Call(reply) => {
                    let _ = reply.send(Err(error.clone()));
                }
                Waiter::Done(reply) => {
                    let _ = reply.send(Err(error.clone()));
                }
                Waiter::Internal(_) | Waiter::Reconsume => {}
            }
        }
    }

    /// Forgets requests whose caller stopped waiting, so an engine that never answers some
    /// requests cannot grow the map forever.
    pub(crate) fn purge_abandoned(&mut self) {
        self.waiting.retain(|_, (waiter, _)| match waiter {
            Waiter::Call(reply) => !reply.is_closed(),
            Waiter::Done(reply) => !reply.is_closed(),
            Waiter::Internal(_) | Waiter::Reconsume => true,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientErrorKind;
    use connmix_protocol::ErrorCode;
    use tokio::sync::oneshot;

    fn node() -> NodeId {
        NodeId::from("n1")
    }

    #[tokio::test]
    async fn replies_reach_the_waiter_with_the_same_id_whatever_the_order() {
        let mut pending = Pending::default();
        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();
        let id1 = pending.insert(Waiter::Call(tx1), None);
        let id2 = pending.insert(Waiter::Call(tx2), None);
        assert_ne!(id1, id2);
        assert_eq!(
            Resolved::Done,
            pending.resolve(id2, Ok(CallResult::counts(2, 0)), &node())
        );
        assert_eq!(
            Resolved::Done,
            pending.resolve(id1, Ok(CallResult::ok()), &node())
        );
        assert_eq!(rx1.await.unwrap().unwrap(), CallResult::ok());
        assert_eq!(rx2.await.unwrap().unwrap().delivered(), Some(2));
        assert!(pending.is_empty());
    }

    #[tokio::test]
    async fn unknown_ids_are_reported_and_change_nothing() {
        let mut pending = Pending::default();
        let (tx, _rx) = oneshot::channel();
        pending.insert(Waiter::Done(tx), None);
        assert_eq!(
            pending.resolve(99, Ok(CallResult::ok()), &node()),
            Resolved::Unknown
        );
        assert_eq!(pending.len(), 1);
    }

    #[tokio::test]
    async fn engine_errors_reach_the_waiter_as_engine_kinds() {
        let mut pending = Pending::default();
        let (tx, rx) = oneshot::channel();
        let id = pending.insert(Waiter::Done(tx), None);
        let error = EngineError::new(ErrorCode::AlreadyConsumed, "already");
        pending.resolve(id, Err(error), &node());
        let err = rx.await.unwrap().unwrap_err();
        assert_eq!(
            err.kind(),
            ClientErrorKind::Engine(ErrorCode::AlreadyConsumed)
        );
    }

    #[tokio::test]
    async fn pending_requests_fail_on_disconnect() {
        let mut pending = Pending::default();
        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();
        pending.insert(Waiter::Call(tx1), None);
        pending.insert(Waiter::Done(tx2), None);
        pending.insert(Waiter::Internal("queue.pop"), None);
        pending.fail_all(&ClientError::disconnected("n1"));
        assert!(pending.is_empty());
        assert_eq!(
            rx1.await.unwrap().unwrap_err().kind(),
            ClientErrorKind::Disconnected
        );
        assert_eq!(
            rx2.await.unwrap().unwrap_err().kind(),
            ClientErrorKind::Disconnected
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_past_their_deadline_fail_as_timeouts_and_the_rest_wait() {
        let mut pending = Pending::default();
        let now = Instant::now();
        let at = |ms| Deadline {
            at: now + std::time::Duration::from_millis(ms),
            op: "mesh.send",
        };
        let (early, early_rx) = oneshot::channel();
        let (late, late_rx) = oneshot::channel();
        pending.insert(Waiter::Call(early), Some(at(10)));
        let late_id = pending.insert(Waiter::Done(late), Some(at(20)));
        pending.insert(Waiter::Internal("queue.pop"), None);
        pending.expire(now + std::time::Duration::from_millis(10));
        let err = early_rx.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ClientErrorKind::Timeout);
        assert!(err.to_string().contains("mesh.send"), "{err}");
        assert_eq!(
            pending.len(),
            2,
            "the later request and the internal one wait"
        );
        assert_eq!(
            Resolved::Done,
            pending.resolve(late_id, Ok(CallResult::ok()), &node())
        );
        assert!(late_rx.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn abandoned_requests_are_purged_but_live_ones_kept() {
        let mut pending = Pending::default();
        let (gone, gone_rx) = oneshot::channel();
        let (live, _live_rx) = oneshot::channel();
        pending.insert(Waiter::Call(gone), None);
        let live_id = pending.insert(Waiter::Call(live), None);
        drop(gone_rx);
        pending.purge_abandoned();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            Resolved::Done,
            pending.resolve(live_id, Ok(CallResult::ok()), &node())
        );
    }
}

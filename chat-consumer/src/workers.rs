//! Events of different connections run concurrently; events of one connection run in order.
//!
//! Each connection is pinned to one of N worker tasks by a hash of its id, and each worker
//! handles its events one after another. A full worker queue makes [`Workers::submit`] wait,
//! which stops the consumer reading from the engine: backpressure instead of unbounded memory.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use connmix_protocol::RawJson;
use futures_util::FutureExt;
use metrics::Gauge;
use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::chat::Chat;
use crate::dispatch::{decode, Decoded};
use crate::engine::{ChatEngine, Conn};
use crate::source::{Delivery, Receipt};

/// Finished logins a worker remembers before it forgets them (those of connections that sent
/// nothing after logging in).
const LOGINS_BEFORE_PRUNE: usize = 64;

struct Job {
    conn: Conn,
    data: RawJson,
    receipt: Option<Receipt>,
}

/// The worker tasks and their queues.
#[derive(Debug)]
pub struct Workers {
    queues: Vec<mpsc::Sender<Job>>,
    tracker: TaskTracker,
    /// Events in flight (received, not yet handled).
    in_flight: Gauge,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("conn", &self.conn).finish()
    }
}

impl Workers {
    /// Starts `count` workers (at least one), each with room for `queue` waiting events.
    pub fn spawn<E: ChatEngine>(chat: Arc<Chat<E>>, count: usize, queue: usize) -> Self {
        let tracker = TaskTracker::new();
        let in_flight = chat.metrics.in_flight();
        let queues = (0..count.max(1))
            .map(|index| {
                let (tx, rx) = mpsc::channel(queue.max(1));
                tracker.spawn(work(Arc::clone(&chat), index, rx, tracker.clone()));
                tx
            })
            .collect();
        tracker.close();
        Self {
            queues,
            tracker,
            in_flight,
        }
    }

    /// Queues an event on its connection's worker, waiting while that worker is full.
    pub async fn submit(&self, conn: Conn, data: impl Into<RawJson>) {
        self.deliver(Delivery {
            conn,
            data: data.into(),
            receipt: None,
        })
        .await;
    }

    /// Queues a source's delivery like [`submit`](Self::submit); its receipt is acknowledged
    /// once the event was handled (not when its handler panicked).
    pub async fn deliver(&self, delivery: Delivery) {
        let Delivery {
            conn,
            data,
            receipt,
        } = delivery;
        let index = shard(&conn, self.queues.len());
        if let Some(queue) = self.queues.get(index) {
            let job = Job {
                conn,
                data,
                receipt,
            };
            self.in_flight.increment(1.0);
            if queue.send(job).await.is_err() {
                self.in_flight.decrement(1.0);
                // Only after a worker panicked outside a handler, which `work` prevents.
                tracing::error!(worker = index, "worker is gone; event dropped");
            }
        }
    }

    /// Lets every queued event finish; true if all did within `deadline`.
    pub async fn drain(self, deadline: Duration) -> bool {
        let Workers {
            queues, tracker, ..
        } = self;
        drop(queues);
        tokio::time::timeout(deadline, tracker.wait()).await.is_ok()
    }
}

fn shard(conn: &Conn, count: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    conn.hash(&mut hasher);
    // The modulo keeps the value below `count`, which is a usize.
    usize::try_from(hasher.finish() % count as u64).unwrap_or(0)
}

async fn work<E: ChatEngine>(
    chat: Arc<Chat<E>>,
    index: usize,
    mut rx: mpsc::Receiver<Job>,
    tracker: TaskTracker,
) {
    // Logins of this worker's connections still running, each with the signal of its end.
    let mut logins: HashMap<Conn, oneshot::Receiver<()>> = HashMap::new();
    while let Some(Job {
        conn,
        data,
        receipt,
    }) = rx.recv().await
    {
        if let Some(login) = logins.remove(&conn) {
            // The script released this frame when the login set `uid`, but the login's reply
            // may not be out yet: it goes first. Only the login's last steps are waited for.
            let _ = login.await;
        }
        let decoded = decode(&data);
        if decoded.is_login() {
            // A login waits for a password hash, tens of milliseconds; awaiting it here would
            // hold up every other connection of this worker (a login storm stalled all chat).
            // Its own connection's next frames are held by the engine script until `uid` is
            // set, and then by the wait above until the login has answered.
            if logins.len() >= LOGINS_BEFORE_PRUNE {
                logins.retain(|_, login| matches!(login.try_recv(), Err(TryRecvError::Empty)));
            }
            let (finished, login) = oneshot::channel();
            logins.insert(conn.clone(), login);
            let chat = Arc::clone(&chat);
            tracker.spawn(async move {
                handle(&chat, index, conn, decoded, receipt).await;
                let _ = finished.send(());
            });
        } else {
            handle(&chat, index, conn, decoded, receipt).await;
        }
    }
}

async fn handle<E: ChatEngine>(
    chat: &Chat<E>,
    index: usize,
    conn: Conn,
    decoded: Decoded,
    receipt: Option<Receipt>,
) {
    // A bug in one handler must not take the connections of this worker down with it.
    let entry = receipt.as_ref().map(Receipt::id);
    let handled = AssertUnwindSafe(chat.handle_decoded(&conn, decoded, entry))
        .catch_unwind()
        .await;
    chat.metrics.done();
    match (handled, receipt) {
        (Ok(()), Some(receipt)) => receipt.ack(),
        (Ok(()), None) => {}
        (Err(_), Some(receipt)) => {
            // Not acknowledged: the source delivers it again, up to its dead-letter limit.
            tracing::error!(worker = index, node = %conn.node, client_id = %conn.client, entry = receipt.id(), "handler panicked; entry left for redelivery");
        }
        (Err(_), None) => {
            tracing::error!(worker = index, node = %conn.node, client_id = %conn.client, "handler panicked; event dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::testing::{add_user, conn, test_chat, Call};

    fn ping() -> Value {
        json!({"event":"message","uid":null,"frame":{"type":"text","data":"{\"op\":\"ping\"}"}})
    }

    /// user1's login, as the script queues it.
    fn login() -> Value {
        json!({"event":"message","uid":null,
            "frame":{"type":"text","data":"{\"op\":\"auth\",\"args\":[\"user1\",\"123456\"]}"}})
    }

    /// With `Some(conn)`: whether the calls since the last look logged `conn` in. With `None`:
    /// whether they set any uid at all, even a refusal's 0. Takes the calls.
    fn logged_in(chat: &Chat<crate::testing::RecordingEngine>, conn: Option<&Conn>) -> bool {
        chat.engine().take().iter().any(|call| match (call, conn) {
            (Call::SetUid(..), None) => true,
            (Call::SetUid(c, uid), Some(conn)) => c == conn && *uid > 0,
            _ => false,
        })
    }

    fn bad(n: usize) -> Value {
        let frame = format!("{{\"op\":\"nope{n}\"}}");
        json!({"event":"message","uid":null,"frame":{"type":"text","data":frame}})
    }

    #[tokio::test]
    async fn one_connections_events_are_handled_in_order() {
        let chat = Arc::new(test_chat().await);
        let workers = Workers::spawn(Arc::clone(&chat), 4, 2);
        for n in 0..50 {
            workers.submit(conn(7), bad(n)).await;
        }
        assert!(workers.drain(Duration::from_secs(10)).await);
        let ops: Vec<String> = chat
            .engine()
            .take()
            .into_iter()
            .map(|call| match call {
                Call::Send(_, reply) => reply["op"].as_str().unwrap().to_owned(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let expected: Vec<String> = (0..50).map(|n| format!("nope{n}")).collect();
        assert_eq!(ops, expected);
    }

    #[tokio::test]
    async fn every_connection_is_answered_and_drain_waits_for_all() {
        let chat = Arc::new(test_chat().await);
        let workers = Workers::spawn(Arc::clone(&chat), 3, 1);
        for client in 0..40 {
            workers.submit(conn(client), ping()).await;
        }
        assert!(workers.drain(Duration::from_secs(10)).await);
        let mut answered: Vec<u64> = chat
            .engine()
            .take()
            .into_iter()
            .map(|call| match call {
                Call::Send(conn, _) => conn.client.get(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        answered.sort_unstable();
        assert_eq!(answered, (0..40).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_login_waiting_for_the_hasher_does_not_hold_up_other_connections() {
        let chat = Arc::new(test_chat().await);
        add_user(&chat, "user1", "123456").await;
        let (slow, quick) = two_conns_on_different_workers(4);
        let workers = Workers::spawn(Arc::clone(&chat), 4, 8);
        let held = chat.hasher.hold_all().await;
        workers.submit(slow.clone(), login()).await;
        workers.submit(quick.clone(), ping()).await;
        chat.engine()
            .wait_for(|call| matches!(call, Call::Send(c, _) if *c == quick))
            .await;
        assert!(
            !logged_in(&chat, None),
            "the login cannot have finished while the hasher is held"
        );
        drop(held);
        assert!(workers.drain(Duration::from_secs(10)).await);
        assert!(logged_in(&chat, Some(&slow)));
    }

    #[tokio::test]
    async fn a_login_does_not_hold_up_other_connections_of_its_own_worker() {
        let chat = Arc::new(test_chat().await);
        add_user(&chat, "user1", "123456").await;
        // One worker: every connection shares it with the login.
        let workers = Workers::spawn(Arc::clone(&chat), 1, 8);
        let held = chat.hasher.hold_all().await;
        workers.submit(conn(1), login()).await;
        for client in 2..6 {
            workers.submit(conn(client), ping()).await;
        }
        for client in 2..6 {
            chat.engine()
                .wait_for(|call| matches!(call, Call::Send(c, _) if *c == conn(client)))
                .await;
        }
        assert!(
            !logged_in(&chat, None),
            "the login cannot have finished while the hasher is held"
        );
        drop(held);
        assert!(
            workers.drain(Duration::from_secs(10)).await,
            "drain waits for the login"
        );
        assert!(logged_in(&chat, Some(&conn(1))));
    }

    fn two_conns_on_different_workers(count: usize) -> (Conn, Conn) {
        let first = conn(0);
        let other = (1..)
            .map(conn)
            .find(|c| shard(c, count) != shard(&first, count))
            .unwrap();
        (first, other)
    }

    #[test]
    fn connections_spread_over_workers() {
        let used: std::collections::HashSet<usize> =
            (0..200).map(|client| shard(&conn(client), 8)).collect();
        assert_eq!(used.len(), 8);
    }
}

//! The task that owns one node's connection: connect, run a session, reconnect with backoff.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use connmix_protocol::NodeId;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use super::connect::{open, Ws};
use super::session::{Session, SessionEnd};
use super::{Command, Subscription};
use crate::error::{ClientError, ClientErrorKind};
use crate::shared::Shared;
use crate::state::{ConnectionEvent, DisconnectReason, NodeState};

/// How long a session must last for the next reconnect to start again at the shortest delay.
const HEALTHY_SESSION: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything the node's task owns across connections.
pub(crate) struct NodeTask {
    pub(super) id: NodeId,
    url: String,
    pub(super) shared: Arc<Shared>,
    pub(super) rx: mpsc::Receiver<Command>,
    /// What this node consumes; re-consumed on every new connection.
    pub(super) subs: Vec<Subscription>,
    pub(super) stop: CancellationToken,
    connected: Arc<AtomicBool>,
}

/// How a wait while disconnected ended.
enum Offline<T> {
    Ready(T),
    Stop,
    Shutdown(oneshot::Sender<()>),
}

impl NodeTask {
    pub(super) fn new(
        id: NodeId,
        url: String,
        shared: Arc<Shared>,
        rx: mpsc::Receiver<Command>,
        subs: Vec<Subscription>,
        stop: CancellationToken,
        connected: Arc<AtomicBool>,
    ) -> Self {
        Self {
            id,
            url,
            shared,
            rx,
            subs,
            stop,
            connected,
        }
    }

    pub(super) async fn run(mut self) {
        let span = info_span!("node", node = %self.id);
        async move {
            let mut failures: u32 = 0;
            loop {
                if failures > 0 {
                    let delay = self
                        .shared
                        .options
                        .backoff
                        .delay(failures, rand::random::<f64>());
                    self.shared
                        .set_node_state(&self.id, NodeState::Reconnecting { attempt: failures });
                    self.shared.emit(ConnectionEvent::Reconnecting {
                        node: self.id.clone(),
                        attempt: failures,
                        delay,
                    });
                    match self.offline(tokio::time::sleep(delay)).await {
                        Offline::Ready(()) => {}
                        Offline::Stop => break,
                        Offline::Shutdown(done) => {
                            let _ = done.send(());
                            break;
                        }
                    }
                }
                let timeout = self.shared.options.connect_timeout;
                let (url, credentials, tls) = (
                    self.url.clone(),
                    self.shared.options.credentials.clone(),
                    self.shared.tls.clone(),
                );
                let max_frame = self.shared.options.max_frame_bytes;
                let connect = tokio::time::timeout(timeout, async move {
                    open(&url, credentials.as_ref(), &tls, max_frame).await
                });
                let ws = match self.offline(connect).await {
                    Offline::Ready(Ok(Ok(ws))) => ws,
                    Offline::Ready(Ok(Err(error))) => {
                        warn!(url = %self.url, %error, "connect failed");
                        self.connect_failed(error.kind(), &error);
                        failures = failures.saturating_add(1);
                        continue;
                    }
                    Offline::Ready(Err(_elapsed)) => {
                        warn!(url = %self.url, "connect timed out");
                        let why = format!("no answer within {timeout:?}");
                        self.connect_failed(ClientErrorKind::Timeout, &why);
                        failures = failures.saturating_add(1);
                        continue;
                    }
                    Offline::Stop => break,
                    Offline::Shutdown(done) => {
                        let _ = done.send(());
                        break;
                    }
                };
                let started = tokio::time::Instant::now();
                match self.session(ws).await {
                    SessionEnd::Lost(reason) => {
                        warn!(%reason, "connection lost");
                        self.shared.emit(ConnectionEvent::Disconnected {
                            node: self.id.clone(),
                            reason,
                        });
                        // Back off from scratch only after a session that stayed up: a node
                        // that accepts and then breaks every session would otherwise be
                        // reconnected at the shortest delay forever (160 connects in 18 s).
                        failures = if started.elapsed() >= HEALTHY_SESSION {
                            1
                        } else {
                            failures.saturating_add(1)
                        };
                    }
                    SessionEnd::Stopped => {
                        self.shared.emit(ConnectionEvent::Disconnected {
                            node: self.id.clone(),
                            reason: DisconnectReason::Stopped,
                        });
                        break;
                    }
                    SessionEnd::Shutdown(done) => {
                        self.shared.emit(ConnectionEvent::Disconnected {
                            node: self.id.clone(),
                            reason: DisconnectReason::Stopped,
                        });
                        let _ = done.send(());
                        break;
                    }
                }
            }
            self.fail_queued_commands();
        }
        .instrument(span)
        .await
    }

    /// Tells the application, through [`Shared::failed`], why this node cannot be reached.
    fn connect_failed(&self, kind: ClientErrorKind, why: &dyn std::fmt::Display) {
        let error = ClientError::new(kind, format!("node {} at {}: {why}", self.id, self.url));
        self.shared.failed(&error);
    }

    async fn session(&mut self, ws: Ws) -> SessionEnd {
        info!("connected");
        self.shared.succeeded();
        self.connected.store(true, Ordering::Release);
        self.shared.set_node_state(&self.id, NodeState::Connected);
        self.shared.emit(ConnectionEvent::Connected {
            node: self.id.clone(),
        });
        let end = Session::new(self, ws).run().await;
        self.connected.store(false, Ordering::Release);
        end
    }

    /// Waits for `work` while answering commands as a disconnected node must.
    async fn offline<F: Future>(&mut self, work: F) -> Offline<F::Output> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Offline::Stop,
                command = self.rx.recv() => match command {
                    None => return Offline::Stop,
                    Some(command) => {
                        if let Some(done) = self.offline_command(command) {
                            return Offline::Shutdown(done);
                        }
                    }
                },
                output = &mut work => return Offline::Ready(output),
            }
        }
    }

    /// Calls fail at once rather than wait for a connection that may never come back;
    /// consumption changes are remembered and applied on the next connection.
    fn offline_command(&mut self, command: Command) -> Option<oneshot::Sender<()>> {
        match command {
            Command::Call { reply, .. } => {
                let _ = reply.send(Err(ClientError::disconnected(&self.id)));
            }
            Command::Consume { sub, reply, .. } => {
                self.subs.push(sub);
                let _ = reply.send(Ok(()));
            }
            Command::Unpop { reply, .. } => {
                self.subs.clear();
                let _ = reply.send(Ok(()));
            }
            Command::Shutdown { done, .. } => return Some(done),
        }
        None
    }

    /// Answers whatever is still queued so no caller waits for its timeout.
    fn fail_queued_commands(&mut self) {
        self.rx.close();
        while let Ok(command) = self.rx.try_recv() {
            match command {
                Command::Call { reply, .. } => {
                    let _ = reply.send(Err(ClientError::closed()));
                }
                Command::Consume { reply, .. } | Command::Unpop { reply, .. } => {
                    let _ = reply.send(Err(ClientError::closed()));
                }
                Command::Shutdown { done, .. } => {
                    let _ = done.send(());
                }
            }
        }
        self.subs.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use connmix_protocol::{Call, NodeInfo};
    use tokio::sync::mpsc;

    use super::*;
    use crate::node::NodeHandle;
    use crate::options::ClientBuilder;
    use crate::{Backoff, ClientErrorKind};

    /// A node task pointed at a port where nothing listens, under paused time.
    fn unreachable_node() -> (Arc<Shared>, NodeHandle, Backoff) {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.0,
        };
        let options = ClientBuilder::new("unused:1".into())
            .backoff(backoff)
            .options()
            .clone();
        let tls = crate::transport::tls_config(&[]).unwrap();
        let shared = Arc::new(Shared::new(options, tls));
        let id = NodeId::from("n1");
        shared.state.send_modify(|s| {
            s.nodes.insert(id.clone(), NodeState::Connecting);
        });
        let info = NodeInfo {
            id,
            // Port 1 on loopback refuses at once.
            api_server: "127.0.0.1:1".into(),
        };
        let handle = NodeHandle::spawn(&shared, info, "v1", Vec::new());
        (shared, handle, backoff)
    }

    #[tokio::test(start_paused = true)]
    async fn failed_connects_back_off_exponentially_up_to_the_cap() {
        let (shared, handle, backoff) = unreachable_node();
        let mut events = shared.events.subscribe();
        for expected in 1..=6u32 {
            match events.recv().await.unwrap() {
                ConnectionEvent::Reconnecting { attempt, delay, .. } => {
                    assert_eq!(attempt, expected);
                    assert_eq!(delay, backoff.delay(expected, 0.0));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            shared.state.borrow().nodes.values().next(),
            Some(&NodeState::Reconnecting { attempt: 6 })
        );
        handle.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn a_disconnected_node_fails_calls_at_once_and_accepts_consumption() {
        let (shared, handle, _) = unreachable_node();
        let long = Duration::from_secs(3600);
        let err = handle
            .request("mesh.publish", long, |reply, deadline| Command::Call {
                call: Call::QueueUnpop,
                reply,
                deadline,
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ClientErrorKind::Disconnected);
        let (sink, _rx) = mpsc::channel(1);
        let sub = Subscription {
            topics: vec!["chat".into()],
            sink,
        };
        handle
            .request("queue.pop", long, |reply, deadline| Command::Consume {
                sub,
                reply,
                deadline,
            })
            .await
            .unwrap();
        handle.stop();
        shared.tracker.close();
        shared.tracker.wait().await;
    }
}

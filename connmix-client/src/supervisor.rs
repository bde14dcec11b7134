//! The supervisor task: reads the center, starts tasks for new nodes, stops removed ones.

use std::collections::HashMap;
use std::sync::Arc;

use connmix_protocol::{NodeId, NodeInfo, SkippedNode};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{info, info_span, warn, Instrument};

use crate::center::{Center, Discovery};
use crate::error::ClientError;
use crate::node::{NodeHandle, NodeMap, Responder, Subscription};
use crate::shared::Shared;
use crate::state::{ConnectionEvent, NodeState};

/// What the handle asks the supervisor.
#[derive(Debug)]
pub(crate) enum SupervisorCommand {
    /// Read the center now.
    Resync(Responder<()>),
    /// Remember a subscription for nodes added later; answer the current nodes, which the
    /// caller tells itself (so no node gets it twice or never).
    Consume {
        sub: Subscription,
        reply: oneshot::Sender<Vec<NodeHandle>>,
    },
    /// Forget every subscription; answer the current nodes.
    Unpop(oneshot::Sender<Vec<NodeHandle>>),
    /// Stop resyncing; answer the current nodes.
    Shutdown(oneshot::Sender<Vec<NodeHandle>>),
}

pub(crate) struct Supervisor {
    shared: Arc<Shared>,
    center: Center,
    rx: mpsc::Receiver<SupervisorCommand>,
    subs: Vec<Subscription>,
    nodes: HashMap<NodeId, NodeHandle>,
    /// Center reads failed in a row; while above zero, retries follow the backoff.
    failures: u32,
    /// The node-list entries skipped at the last read, warned about once.
    skipped: Vec<SkippedNode>,
    next_resync: Instant,
}

impl Supervisor {
    pub(crate) fn new(
        shared: Arc<Shared>,
        center: Center,
        rx: mpsc::Receiver<SupervisorCommand>,
    ) -> Self {
        let next_resync = Instant::now() + shared.options.resync_interval;
        Self {
            shared,
            center,
            rx,
            subs: Vec::new(),
            nodes: HashMap::new(),
            failures: 0,
            skipped: Vec::new(),
            next_resync,
        }
    }

    pub(crate) async fn run(mut self) {
        let cancel = self.shared.cancel.clone();
        async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    command = self.rx.recv() => match command {
                        None => break,
                        Some(SupervisorCommand::Resync(reply)) => {
                            let result = self.resync().await;
                            let _ = reply.send(result);
                        }
                        Some(SupervisorCommand::Consume { sub, reply }) => {
                            self.subs.push(sub);
                            let _ = reply.send(self.handles());
                        }
                        Some(SupervisorCommand::Unpop(reply)) => {
                            self.subs.clear();
                            let _ = reply.send(self.handles());
                        }
                        Some(SupervisorCommand::Shutdown(reply)) => {
                            self.subs.clear();
                            let _ = reply.send(self.handles());
                            break;
                        }
                    },
                    _ = tokio::time::sleep_until(self.next_resync) => {
                        let _ = self.resync().await;
                    }
                }
            }
        }
        .instrument(info_span!("supervisor"))
        .await
    }

    fn handles(&self) -> Vec<NodeHandle> {
        self.nodes.values().cloned().collect()
    }

    async fn resync(&mut self) -> Result<(), ClientError> {
        let shared = Arc::clone(&self.shared);
        let options = &shared.options;
        let (result, wait) = match self.center.discover().await {
            Ok(discovery) => {
                self.failures = 0;
                shared.succeeded();
                self.apply(discovery);
                let jitter = options.resync_jitter.mul_f64(rand::random::<f64>());
                (Ok(()), options.resync_interval + jitter)
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                warn!(%error, failures = self.failures, "reading the center failed");
                shared.failed(&error);
                let delay = options.backoff.delay(self.failures, rand::random::<f64>());
                (Err(error), delay)
            }
        };
        self.next_resync = Instant::now() + wait;
        result
    }

    /// Makes the running node tasks match the center's list.
    fn apply(&mut self, discovery: Discovery) {
        let Discovery {
            api,
            nodes,
            skipped,
        } = discovery;
        // Once per change, not at every resync: the center keeps listing the same bad entry.
        if skipped != self.skipped {
            for entry in &skipped {
                warn!(
                    index = entry.index,
                    reason = %entry.reason,
                    "the center lists an unusable node; skipped"
                );
            }
            self.skipped = skipped;
        }
        let listed: HashMap<NodeId, NodeInfo> =
            nodes.into_iter().map(|n| (n.id.clone(), n)).collect();
        let gone: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(id, handle)| {
                listed
                    .get(*id)
                    .is_none_or(|info| info.api_server != handle.api_server)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut changed = !gone.is_empty();
        for id in gone {
            if let Some(handle) = self.nodes.remove(&id) {
                info!(node = %id, "node removed");
                handle.stop();
                self.shared.state.send_modify(|s| {
                    s.nodes.remove(&id);
                });
                self.shared.emit(ConnectionEvent::NodeRemoved { node: id });
            }
        }
        for (id, info) in listed {
            if self.nodes.contains_key(&id) {
                continue;
            }
            info!(node = %id, api_server = %info.api_server, "node added");
            changed = true;
            // Listed before the task starts, so the task's own state updates land.
            self.shared.state.send_modify(|s| {
                s.nodes.insert(id.clone(), NodeState::Connecting);
            });
            self.shared
                .emit(ConnectionEvent::NodeAdded { node: id.clone() });
            let handle = NodeHandle::spawn(&self.shared, info, &api, self.subs.clone());
            self.nodes.insert(id, handle);
        }
        if changed {
            let map = NodeMap::new(self.handles());
            self.shared.nodes.store(Arc::new(map));
        }
    }
}

//! The memory queue of one node: bounded topics that consumer connections compete for.

use std::collections::HashMap;
use std::sync::Mutex;

use connmix_protocol::ClientId;
use serde_json::Value;

use crate::error::QueueFull;

/// One pushed value and the browser connection whose script pushed it.
#[derive(Debug, Clone)]
pub(crate) struct QueueItem {
    pub(crate) client: ClientId,
    pub(crate) data: Value,
}

/// One topic: a bounded multi-consumer channel.
///
/// Each consumer connection runs one pump per topic that takes an item only once it holds room
/// in its outgoing channel, so competing consumers each get every item exactly once and a
/// slow consumer leaves items for the others.
#[derive(Debug, Clone)]
pub(crate) struct Topic {
    pub(crate) tx: async_channel::Sender<QueueItem>,
    pub(crate) rx: async_channel::Receiver<QueueItem>,
}

/// Every topic of one node, created on first use.
#[derive(Debug)]
pub(crate) struct Queues {
    topics: Mutex<HashMap<String, Topic>>,
    size: usize,
}

impl Queues {
    pub(crate) fn new(size: usize) -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            size: size.max(1),
        }
    }

    pub(crate) fn topic(&self, name: &str) -> Topic {
        let mut topics = match self.topics.lock() {
            Ok(topics) => topics,
            Err(poisoned) => poisoned.into_inner(),
        };
        topics
            .entry(name.to_owned())
            .or_insert_with(|| {
                // The topic keeps a receiver itself, so items wait while no consumer is there.
                let (tx, rx) = async_channel::bounded(self.size);
                Topic { tx, rx }
            })
            .clone()
    }

    pub(crate) fn push(&self, topic: &str, item: QueueItem) -> Result<(), QueueFull> {
        self.topic(topic).tx.try_send(item).map_err(|_| QueueFull)
    }

    pub(crate) async fn push_wait(&self, topic: &str, item: QueueItem) -> bool {
        let tx = self.topic(topic).tx;
        tx.send(item).await.is_ok()
    }
}

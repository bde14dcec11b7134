//! The memory queue of one node: bounded topics that consumer connections compete for.

use std::collections::HashMap;
use std::sync::Mutex;

use connmix_protocol::{ClientId, RawJson};

use crate::error::QueueFull;
use crate::sync::lock;

/// One pushed value and the browser connection whose script pushed it.
#[derive(Debug, Clone)]
pub(crate) struct QueueItem {
    pub(crate) client: ClientId,
    /// Kept as the JSON text it was pushed as: each delivery writes it without a parse.
    pub(crate) data: RawJson,
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
        lock(&self.topics)
            .entry(name.to_owned())
            .or_insert_with(|| {
                // The topic keeps a receiver itself, so items wait while no consumer is there.
                let (tx, rx) = async_channel::bounded(self.size);
                Topic { tx, rx }
            })
            .clone()
    }

    /// Creates `name` with its own capacity, as a script's `mix.queue.new` does; a topic that
    /// exists already keeps its capacity.
    pub(crate) fn create(&self, name: &str, size: usize) {
        lock(&self.topics)
            .entry(name.to_owned())
            .or_insert_with(|| {
                let (tx, rx) = async_channel::bounded(size.max(1));
                Topic { tx, rx }
            });
    }

    pub(crate) fn push(&self, topic: &str, item: QueueItem) -> Result<(), QueueFull> {
        self.topic(topic).tx.try_send(item).map_err(|_| QueueFull)
    }

    pub(crate) async fn push_wait(&self, topic: &str, item: QueueItem) -> bool {
        let tx = self.topic(topic).tx;
        tx.send(item).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u64) -> QueueItem {
        QueueItem {
            client: ClientId(1),
            data: serde_json::Value::from(n).into(),
        }
    }

    #[test]
    fn a_topic_refuses_pushes_beyond_its_size_and_topics_are_separate() {
        let queues = Queues::new(2);
        assert!(queues.push("a", item(1)).is_ok());
        assert!(queues.push("a", item(2)).is_ok());
        assert_eq!(queues.push("a", item(3)), Err(QueueFull));
        assert!(queues.push("b", item(1)).is_ok());
    }

    #[tokio::test]
    async fn push_wait_resumes_when_a_consumer_makes_room() {
        let queues = std::sync::Arc::new(Queues::new(1));
        assert!(queues.push("a", item(1)).is_ok());
        let waiting = tokio::spawn({
            let queues = queues.clone();
            async move { queues.push_wait("a", item(2)).await }
        });
        let first = queues.topic("a").rx.recv().await.unwrap();
        assert_eq!(first.data, serde_json::Value::from(1));
        assert!(waiting.await.unwrap());
        let second = queues.topic("a").rx.recv().await.unwrap();
        assert_eq!(second.data, serde_json::Value::from(2), "order kept");
    }
}

//! One browser connection as its node sees it: outgoing frames, context, subscriptions.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use connmix_protocol::{ClientId, Payload};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::sync::lock;

/// How many frames a browser connection may have waiting to be written before sends to it
/// fail, as a full socket buffer makes the real engine's sends fail.
pub(crate) const BROWSER_BUFFER: usize = 1024;

/// A browser connection, real (a WebSocket) or synthetic (a [`Producer`](crate::Producer)'s).
#[derive(Debug)]
pub(crate) struct ClientState {
    pub(crate) id: ClientId,
    /// `None`: a synthetic connection whose frames are only counted.
    sink: Mutex<Option<mpsc::Sender<Payload>>>,
    context: Mutex<Map<String, Value>>,
    pub(crate) subscriptions: Mutex<HashSet<String>>,
    /// Bumped each time the auth key is set, so the script can wait for the next set.
    auth_sets: watch::Sender<u64>,
    /// How many times each key has been set, for a Lua script's `wait_context_value`.
    key_sets: Mutex<HashMap<String, u64>>,
    /// Bumped on every set of any key; waiters then compare [`Self::key_generation`].
    any_set: watch::Sender<u64>,
    /// Cancelled to close the connection (queue full, node killed, browser gone).
    pub(crate) closed: CancellationToken,
}

impl ClientState {
    pub(crate) fn new(
        id: ClientId,
        sink: Option<mpsc::Sender<Payload>>,
        closed: CancellationToken,
    ) -> Self {
        Self {
            id,
            sink: Mutex::new(sink),
            context: Mutex::new(Map::new()),
            subscriptions: Mutex::new(HashSet::new()),
            auth_sets: watch::Sender::new(0),
            key_sets: Mutex::new(HashMap::new()),
            any_set: watch::Sender::new(0),
            closed,
        }
    }

    /// Queues a frame for the browser without waiting; false when its buffer is full or it
    /// is gone.
    pub(crate) fn deliver(&self, payload: Payload) -> bool {
        match lock(&self.sink).as_ref() {
            Some(tx) => tx.try_send(payload).is_ok(),
            None => !self.closed.is_cancelled(),
        }
    }

    /// Starts capturing the frames this connection receives.
    pub(crate) fn capture(&self) -> mpsc::Receiver<Payload> {
        let (tx, rx) = mpsc::channel(BROWSER_BUFFER);
        *lock(&self.sink) = Some(tx);
        rx
    }

    /// The context value under `key` as a user id: a number or a string of digits.
    pub(crate) fn uid(&self, key: &str) -> Option<u64> {
        match lock(&self.context).get(key)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn set_context_value(&self, key: String, value: Value, auth_key: &str) {
        let is_auth = key == auth_key;
        self.count_sets(std::iter::once(key.as_str()));
        lock(&self.context).insert(key, value);
        self.any_set.send_modify(|n| *n += 1);
        if is_auth {
            self.auth_sets.send_modify(|n| *n += 1);
        }
    }

    pub(crate) fn set_context(&self, new: Map<String, Value>, auth_key: &str) {
        let is_auth = new.contains_key(auth_key);
        self.count_sets(new.keys().map(String::as_str));
        *lock(&self.context) = new;
        self.any_set.send_modify(|n| *n += 1);
        if is_auth {
            self.auth_sets.send_modify(|n| *n += 1);
        }
    }

    fn count_sets<'a>(&self, keys: impl Iterator<Item = &'a str>) {
        let mut sets = lock(&self.key_sets);
        for key in keys {
            *sets.entry(key.to_owned()).or_default() += 1;
        }
    }

    /// A copy of the whole context.
    pub(crate) fn context(&self) -> Map<String, Value> {
        lock(&self.context).clone()
    }

    /// The context value under `key`.
    pub(crate) fn context_value(&self, key: &str) -> Option<Value> {
        lock(&self.context).get(key).cloned()
    }

    /// How many times `key` has been set so far.
    pub(crate) fn key_generation(&self, key: &str) -> u64 {
        lock(&self.key_sets).get(key).copied().unwrap_or(0)
    }

    /// How many times each key has been set so far.
    pub(crate) fn key_generations(&self) -> HashMap<String, u64> {
        lock(&self.key_sets).clone()
    }

    /// Resolves once `key` is set after `generation` was read.
    pub(crate) async fn key_set_after(&self, key: &str, generation: u64) {
        let mut rx = self.any_set.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|_| self.key_generation(key) > generation).await;
    }

    /// How many times the auth key has been set so far.
    pub(crate) fn auth_generation(&self) -> u64 {
        *self.auth_sets.borrow()
    }

    /// Resolves once the auth key is set after `generation` was read.
    pub(crate) async fn auth_set_after(&self, generation: u64) {
        let mut rx = self.auth_sets.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|n| *n > generation).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client() -> ClientState {
        ClientState::new(ClientId(1), None, CancellationToken::new())
    }

    #[tokio::test]
    async fn auth_wait_ends_only_when_the_auth_key_is_set_afterwards() {
        let client = std::sync::Arc::new(client());
        client.set_context_value("uid".into(), json!(1), "uid");
        let generation = client.auth_generation();
        let waiter = tokio::spawn({
            let client = client.clone();
            async move { client.auth_set_after(generation).await }
        });
        client.set_context_value("room".into(), json!("a"), "uid");
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "another key does not release it");
        let mut context = Map::new();
        context.insert("uid".into(), json!("7"));
        client.set_context(context, "uid");
        waiter.await.unwrap();
        assert_eq!(client.uid("uid"), Some(7), "digit strings count as ids");
    }

    #[test]
    fn a_synthetic_client_counts_deliveries_until_closed_and_captures_on_request() {
        let client = client();
        assert!(client.deliver(Payload::Text("a".into())));
        let mut rx = client.capture();
        assert!(client.deliver(Payload::Text("b".into())));
        assert_eq!(rx.try_recv().unwrap(), Payload::Text("b".into()));
        client.closed.cancel();
        drop(rx);
        assert!(!client.deliver(Payload::Text("c".into())));
    }
}

//! Removes presence records that no close event will remove.
//!
//! A close event is lost when the consumer holding it dies (the engine's memory queue and a
//! Redis list are at most once) or when the engine node that held the connection goes away. Its
//! record would then count the user online for ever. Every
//! [`interval`](Reconcile::interval) each consumer:
//! - forgets the records of nodes the engine no longer lists (their connections are gone);
//! - asks the engine, for every other record, whether it still holds the connection
//!   ([`ChatEngine::probe`]), and removes the records of those it does not.
//!
//! Each check is idempotent, so several consumers reconciling at once agree.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::chat::Chat;
use crate::engine::ChatEngine;
use crate::error::Result;
use crate::handlers::membership::{announce, Change};
use crate::service::{presence, rooms};

/// Records asked about per database page.
const PAGE: u64 = 200;

/// How often to reconcile presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconcile {
    /// Time between two passes; the first runs one interval after start.
    pub interval: Duration,
}

impl Default for Reconcile {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
        }
    }
}

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Records of nodes the engine no longer lists.
    pub of_removed_nodes: u64,
    /// Records of connections the engine no longer holds.
    pub of_closed_connections: u64,
    /// Records left alone because the engine could not be asked (tried again next pass).
    pub unknown: u64,
}

/// One pass. `listed` are the engine's nodes now; an empty list (the center not read yet)
/// removes nobody's records by node.
pub async fn reconcile_once<E: ChatEngine>(
    chat: &Chat<E>,
    listed: &[String],
) -> Result<Reconciled> {
    let mut done = Reconciled::default();
    if !listed.is_empty() {
        for node in presence::nodes(chat.db()).await? {
            if !listed.contains(&node) {
                done.of_removed_nodes += presence::forget_node(chat.db(), &node).await?;
                let left = rooms::forget_node(chat.db(), &node).await?;
                announce(chat, Change::Leave, &left).await;
            }
        }
    }
    let mut after = None;
    loop {
        let page = presence::page(chat.db(), after.as_ref(), PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some((
            last.node.to_string(),
            i64::try_from(last.client.get()).unwrap_or(i64::MAX),
        ));
        for (conn, _) in &page {
            match chat.engine().probe(conn).await {
                Ok(true) => {}
                Ok(false) => {
                    if presence::disconnect(chat.db(), conn).await?.is_some() {
                        done.of_closed_connections += 1;
                    }
                    let left = rooms::leave_all(chat.db(), conn).await?;
                    announce(chat, Change::Leave, &left).await;
                }
                Err(err) => {
                    tracing::debug!(node = %conn.node, client_id = %conn.client, error = %err, "cannot probe connection");
                    done.unknown += 1;
                }
            }
        }
    }
    Ok(done)
}

/// Runs [`reconcile_once`] every `every.interval` until `cancel`, with the engine's node list
/// from `nodes`. Failures are logged and tried again next time.
pub(crate) async fn run<E: ChatEngine>(
    chat: &Chat<E>,
    every: Reconcile,
    nodes: impl Fn() -> Vec<String>,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match reconcile_once(chat, &nodes()).await {
            Ok(done) if done == Reconciled::default() => {
                tracing::debug!("presence reconciled: nothing stale");
            }
            Ok(done) => tracing::info!(
                removed_nodes = done.of_removed_nodes,
                closed = done.of_closed_connections,
                unknown = done.unknown,
                "presence reconciled: removed stale connections"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "cannot reconcile presence; trying again later")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{add_user, online, test_chat};
    use crate::Conn;

    #[tokio::test]
    async fn records_of_closed_connections_and_removed_nodes_go_and_others_stay() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        let (open, closed, on_gone_node) = (
            Conn::new("n1", 1u64),
            Conn::new("n1", 2u64),
            Conn::new("n2", 3u64),
        );
        for conn in [&open, &closed, &on_gone_node] {
            presence::connect(chat.db(), conn, uid).await.unwrap();
        }
        assert_eq!(online(&chat, uid).await, 3);
        chat.engine().close(&closed);
        let done = reconcile_once(&chat, &["n1".to_owned()]).await.unwrap();
        assert_eq!(
            done,
            Reconciled {
                of_removed_nodes: 1,
                of_closed_connections: 1,
                unknown: 0
            }
        );
        assert_eq!(online(&chat, uid).await, 1);
        assert_eq!(presence::online(chat.db(), uid).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn an_engine_that_cannot_be_asked_removes_nothing() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        presence::connect(chat.db(), &Conn::new("n1", 1u64), uid)
            .await
            .unwrap();
        chat.engine().fail_calls(true);
        let done = reconcile_once(&chat, &[]).await.unwrap();
        assert_eq!(done.unknown, 1);
        assert_eq!(online(&chat, uid).await, 1);
    }
}

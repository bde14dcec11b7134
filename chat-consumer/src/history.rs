//! Each channel's latest messages, for `history`.
//!
//! Storing stays off the reply path: a published message goes into a bounded buffer
//! ([`History::record`] never waits), and one writer task empties it in batches, one `INSERT`
//! of many rows per batch (it lets a batch gather for 10 ms after its first message,
//! `--history-linger-ms`). When the buffer is full (the database is slower than the chat) a
//! message is left out of the history and counted (`chat_history_dropped_total`), never
//! delayed. Each channel keeps about `per_channel` messages: the writer trims a channel once
//! it has stored an eighth more than that since the last trim (trimming less often measured
//! dearer: a larger table costs every insert more), and a read returns at most `per_channel`,
//! so the bound seen by browsers is exact.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use connmix_protocol::chat::Delivery;
use metrics::counter;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::entity::message;
use crate::error::Result;
use crate::telemetry::names::{HISTORY_DROPPED, HISTORY_STORED};

/// Most rows one `INSERT` writes.
const BATCH: usize = 256;
/// How long the writer lets a batch gather after its first message unless told otherwise:
/// how late a message may appear in the history.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(10);

/// A published message, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The channel it was published on.
    pub channel: String,
    /// The sender.
    pub uid: u64,
    /// The sender's name, when known.
    pub from: Option<String>,
    /// The text.
    pub text: String,
    /// When it was handled, in milliseconds since the Unix epoch.
    pub time: u64,
}

enum Item {
    Message(Stored),
    /// Answered once everything before it is written.
    Flush(oneshot::Sender<()>),
}

/// The history: where published messages go, and how many each channel keeps.
#[derive(Debug, Clone)]
pub struct History {
    tx: Option<mpsc::Sender<Item>>,
    per_channel: u32,
    dropped: Arc<AtomicU64>,
}

impl History {
    /// No history: nothing is stored and `history` is refused.
    pub fn off() -> Self {
        Self {
            tx: None,
            per_channel: 0,
            dropped: Arc::default(),
        }
    }

    /// Keeps `per_channel` messages per channel in `db` (0: [`History::off`]), with up to
    /// `buffer` messages waiting for the writer task, which this spawns and which ends once
    /// every handle is dropped and what they recorded is written.
    pub fn start(
        db: DatabaseConnection,
        per_channel: u32,
        buffer: usize,
    ) -> (Self, Option<JoinHandle<()>>) {
        Self::start_lingering(db, per_channel, buffer, DEFAULT_LINGER)
    }

    /// [`History::start`], the writer letting each batch gather for `linger` after its first
    /// message: longer makes fewer, larger `INSERT`s (cheaper per message) and a message later
    /// to appear in the history.
    pub fn start_lingering(
        db: DatabaseConnection,
        per_channel: u32,
        buffer: usize,
        linger: Duration,
    ) -> (Self, Option<JoinHandle<()>>) {
        if per_channel == 0 {
            return (Self::off(), None);
        }
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let writer = tokio::spawn(write(db, rx, per_channel, linger));
        let history = Self {
            tx: Some(tx),
            per_channel,
            dropped: Arc::default(),
        };
        (history, Some(writer))
    }

    /// Whether messages are kept.
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Messages each channel keeps.
    pub fn per_channel(&self) -> u32 {
        self.per_channel
    }

    /// Queues `message` for storing; drops (and counts) it if the buffer is full.
    pub fn record(&self, message: Stored) {
        let Some(tx) = &self.tx else { return };
        if let Err(err) = tx.try_send(Item::Message(message)) {
            counter!(HISTORY_DROPPED, "reason" => "full").increment(1);
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed);
            // The first one, then one line per thousand: a slow database must not flood the log.
            if dropped.is_multiple_of(1000) {
                let why = match err {
                    mpsc::error::TrySendError::Full(_) => "the buffer is full",
                    mpsc::error::TrySendError::Closed(_) => "the writer stopped",
                };
                tracing::warn!(
                    dropped = dropped + 1,
                    "message left out of the history: {why}"
                );
            }
        }
    }

    /// Messages left out because the buffer was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every message recorded before this call is written (or failed).
    pub async fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (done, written) = oneshot::channel();
        if tx.send(Item::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// The latest `count` messages of `channel`, oldest first, as they were delivered.
    pub async fn latest(
        &self,
        db: &DatabaseConnection,
        channel: &str,
        count: u32,
    ) -> Result<Vec<Delivery>> {
        let count = count.min(self.per_channel);
        let mut rows = message::Entity::find()
            .filter(message::Column::Channel.eq(channel))
            .order_by_desc(message::Column::Id)
            .limit(u64::from(count))
            .all(db)
            .await?;
        rows.reverse();
        Ok(rows
            .into_iter()
            .map(|row| {
                let uid = u64::try_from(row.uid).unwrap_or_default();
                let time = u64::try_from(row.sent_at_ms).ok();
                Delivery::new(&row.channel, uid, row.sender.as_deref(), &row.text, time)
            })
            .collect())
    }
}

/// The writer task: batches of up to [`BATCH`] messages, each one `INSERT`, then the trims due.
async fn write(
    db: DatabaseConnection,
    mut rx: mpsc::Receiver<Item>,
    per_channel: u32,
    linger: Duration,
) {
    let trim_every = per_channel / 8 + 1;
    let mut since_trim: HashMap<String, u32> = HashMap::new();
    let mut items = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut items, BATCH).await > 0 {
        // Let a batch gather: one INSERT of many rows costs the database far less than as many
        // INSERTs of one. A flush goes at once.
        let flushing = items.iter().any(|item| matches!(item, Item::Flush(_)));
        if items.len() < BATCH && !flushing && !linger.is_zero() {
            tokio::time::sleep(linger).await;
            while items.len() < BATCH {
                match rx.try_recv() {
                    Ok(item) => items.push(item),
                    Err(_) => break,
                }
            }
        }
        let mut rows = Vec::with_capacity(items.len());
        let mut flushes = Vec::new();
        for item in items.drain(..) {
            match item {
                Item::Message(message) => rows.push(message),
                Item::Flush(done) => flushes.push(done),
            }
        }
        if !rows.is_empty() {
            let stored = rows.len() as u64;
            for row in &rows {
                *since_trim.entry(row.channel.clone()).or_default() += 1;
            }
            match insert(&db, rows).await {
                Ok(()) => counter!(HISTORY_STORED).increment(stored),
                Err(err) => {
                    counter!(HISTORY_DROPPED, "reason" => "error").increment(stored);
                    tracing::warn!(error = %err, messages = stored, "cannot store messages in the history");
                }
            }
        }
        let due: Vec<String> = since_trim
            .iter()
            .filter(|(_, n)| **n >= trim_every)
            .map(|(channel, _)| channel.clone())
            .collect();
        for channel in due {
            since_trim.remove(&channel);
            if let Err(err) = trim(&db, &channel, per_channel).await {
                tracing::warn!(channel, error = %err, "cannot trim the history");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn insert(db: &DatabaseConnection, rows: Vec<Stored>) -> Result<()> {
    let rows = rows.into_iter().map(|row| message::ActiveModel {
        channel: Set(row.channel),
        uid: Set(i64::try_from(row.uid).unwrap_or(i64::MAX)),
        sender: Set(row.from),
        text: Set(row.text),
        sent_at_ms: Set(i64::try_from(row.time).unwrap_or(i64::MAX)),
        ..Default::default()
    });
    message::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Removes all but the latest `keep` messages of `channel`. Two statements, the newest id to
/// remove and then the removal: MariaDB cannot delete from a table it selects from.
async fn trim(db: &DatabaseConnection, channel: &str, keep: u32) -> Result<()> {
    let cutoff: Option<i64> = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::Channel.eq(channel))
        .order_by_desc(message::Column::Id)
        .offset(u64::from(keep))
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    if let Some(cutoff) = cutoff {
        message::Entity::delete_many()
            .filter(message::Column::Channel.eq(channel))
            .filter(message::Column::Id.lte(cutoff))
            .exec(db)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    fn message(channel: &str, n: u64) -> Stored {
        Stored {
            channel: channel.to_owned(),
            uid: 1,
            from: Some("user1".to_owned()),
            text: format!("message {n}"),
            time: 1_764_100_000_000 + n,
        }
    }

    async fn database() -> DatabaseConnection {
        let db = db::connect("sqlite::memory:").await.unwrap();
        db::migrate(&db).await.unwrap();
        db
    }

    fn texts(messages: &[Delivery]) -> Vec<String> {
        messages
            .iter()
            .map(|m| m.text.clone().unwrap_or_default())
            .collect()
    }

    #[tokio::test]
    async fn the_latest_messages_come_back_oldest_first_per_channel() {
        let db = database().await;
        let (history, _) = History::start(db.clone(), 200, 64);
        for n in 0..5 {
            history.record(message("room_1", n));
            history.record(message("room_2", 100 + n));
        }
        history.flush().await;
        let latest = history.latest(&db, "room_1", 3).await.unwrap();
        assert_eq!(texts(&latest), ["message 2", "message 3", "message 4"]);
        assert_eq!(
            latest[0],
            Delivery::new(
                "room_1",
                1,
                Some("user1"),
                "message 2",
                Some(1_764_100_000_002)
            )
        );
        assert!(history.latest(&db, "room_3", 3).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_channel_keeps_its_retention_and_no_more_is_returned() {
        let db = database().await;
        let (history, _) = History::start(db.clone(), 10, 1000);
        for n in 0..100 {
            history.record(message("room_1", n));
        }
        history.record(message("room_2", 0));
        history.flush().await;
        let latest = history.latest(&db, "room_1", 100).await.unwrap();
        assert_eq!(latest.len(), 10);
        assert_eq!(texts(&latest).last().unwrap(), "message 99");
        let kept = message::Entity::find()
            .filter(message::Column::Channel.eq("room_1"))
            .all(&db)
            .await
            .unwrap()
            .len();
        assert!((10..=12).contains(&kept), "{kept} rows kept");
        assert_eq!(history.latest(&db, "room_2", 5).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_full_buffer_drops_and_counts_instead_of_waiting() {
        let db = database().await;
        let (history, _) = History::start(db.clone(), 200, 2);
        // The writer cannot run between these: this test's runtime has one thread and none
        // of them yields.
        for n in 0..10 {
            history.record(message("room_1", n));
        }
        assert_eq!(history.dropped(), 8);
        history.flush().await;
        assert_eq!(history.latest(&db, "room_1", 100).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn off_stores_nothing() {
        let db = database().await;
        let (history, writer) = History::start(db.clone(), 0, 64);
        assert!(!history.is_on() && writer.is_none());
        history.record(message("room_1", 0));
        history.flush().await;
        assert_eq!(message::Entity::find().all(&db).await.unwrap().len(), 0);
    }
}

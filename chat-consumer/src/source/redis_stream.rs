//! A Redis stream read in a consumer group: at least once.
//!
//! - Every consumer of the group reads new entries (`XREADGROUP ... >`); an entry stays
//!   pending for its consumer until that consumer acknowledges it (`XACK`), which happens after
//!   the event was handled: its answer is out.
//! - Entries pending longer than [`StreamConfig::claim_idle`] belong to a consumer that died
//!   or hangs: every consumer looks for them and takes them over (`XAUTOCLAIM`), its own
//!   included (a read whose reply never arrived).
//! - An entry delivered [`StreamConfig::max_deliveries`] times without being acknowledged (its
//!   handler panics, or every consumer holding it died) is moved to the dead-letter stream
//!   `<key>:dead` with an error line, so that it stops coming back.
//!
//! Delivered again, an entry's effects must not repeat: the send handlers publish a message
//! only once per entry id (see [`Shared::first_publish`](crate::shared::Shared::first_publish)).

use std::collections::VecDeque;
use std::time::Duration;

use connmix_client::Client;
use redis::aio::ConnectionManager;
use redis::streams::{
    StreamAutoClaimReply, StreamClaimReply, StreamId, StreamPendingCountReply, StreamReadReply,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{describe, entry, pause, Delivery, Receipt, RedisConfig, Source};
use crate::error::{Error, ErrorKind, Result};

/// The consumer group every chat consumer joins unless told otherwise.
pub const DEFAULT_GROUP: &str = "chat-consumers";
/// How long one read blocks: also how long a shutdown may wait for it.
const BLOCK: Duration = Duration::from_secs(1);
/// Entries read, claimed or acknowledged per command.
const BATCH: usize = 64;
/// The wait after a failed command before the next.
const RETRY: Duration = Duration::from_secs(1);
/// How long the published-once record of an acknowledged entry is kept: far longer than a
/// consumer that took the entry over takes to handle it.
const ACKED_DONE_TTL: Duration = Duration::from_secs(600);

/// Which stream, which group, who this consumer is, and when to give up on an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// The stream the script `XADD`s to.
    pub key: String,
    /// The consumer group; every consumer of one chat uses the same.
    pub group: String,
    /// This consumer's name in the group; unique per process.
    pub consumer: String,
    /// How long an entry may stay unacknowledged before another consumer takes it over.
    pub claim_idle: Duration,
    /// Deliveries after which an entry goes to the dead-letter stream.
    pub max_deliveries: u32,
}

impl StreamConfig {
    /// Stream `key` in [`DEFAULT_GROUP`], named after this host and process, taken over after
    /// 30 s, dead after 5 deliveries.
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            group: DEFAULT_GROUP.to_owned(),
            consumer: default_consumer_name(),
            claim_idle: Duration::from_secs(30),
            max_deliveries: 5,
        }
    }

    /// The dead-letter stream: `<key>:dead`.
    pub fn dead_letter_key(&self) -> String {
        format!("{}:dead", self.key)
    }

    fn idle_ms(&self) -> u64 {
        u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX)
    }
}

/// `<host>-<pid>`: unique per running process, and telling an operator where it runs.
pub fn default_consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "consumer".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Reads a Redis stream in a consumer group; see the [module](self).
pub struct RedisStream {
    reader: ConnectionManager,
    ctl: ConnectionManager,
    config: StreamConfig,
    client: Client,
    buffered: VecDeque<Delivery>,
    acks: mpsc::UnboundedSender<String>,
    acker: JoinHandle<()>,
    next_claim: Instant,
    claim_cursor: String,
    stopped: bool,
    failing: bool,
}

impl std::fmt::Debug for RedisStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStream")
            .field("config", &self.config)
            .field("buffered", &self.buffered.len())
            .finish()
    }
}

impl RedisStream {
    /// Connects to Redis and joins the group, creating stream and group when absent (a new
    /// group starts at the stream's first entry: what waits there was never handled).
    pub async fn connect(
        redis: &RedisConfig,
        config: StreamConfig,
        client: &Client,
    ) -> Result<Self> {
        if config.max_deliveries == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the number of deliveries before the dead-letter stream must be at least 1",
            ));
        }
        // Reads block on a connection of their own, so acknowledgements never wait behind them.
        let reader = redis.manager(BLOCK).await?;
        let mut ctl = redis.manager(Duration::ZERO).await?;
        create_group(&mut ctl, &config).await.map_err(|err| {
            Error::new(
                ErrorKind::Redis,
                format!(
                    "cannot create consumer group {} on stream {} at {}: {}",
                    config.group,
                    config.key,
                    redis.redacted(),
                    describe(&err)
                ),
            )
        })?;
        let (acks, received) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acknowledge(ctl.clone(), config.clone(), received));
        Ok(Self {
            reader,
            ctl,
            config,
            client: client.clone(),
            buffered: VecDeque::new(),
            acks,
            acker,
            // Entries a consumer that died left behind are looked for at once.
            next_claim: Instant::now(),
            claim_cursor: "0-0".to_owned(),
            stopped: false,
            failing: false,
        })
    }

    /// Turns entries into deliveries; entries that can never be answered go to the
    /// dead-letter stream at once.
    async fn take(&mut self, entries: Vec<StreamId>) {
        for stream_entry in entries {
            let text = stream_entry
                .map
                .get("data")
                .and_then(|value| redis::from_redis_value_ref::<String>(value).ok());
            let decoded = match text {
                Some(text) => entry(text.clone(), &self.client).map_err(|why| (why, text)),
                None => Err(("entry has no `data` field".to_owned(), String::new())),
            };
            match decoded {
                Ok((conn, data)) => self.buffered.push_back(Delivery {
                    conn,
                    data,
                    receipt: Some(Receipt {
                        id: stream_entry.id,
                        acks: self.acks.clone(),
                    }),
                }),
                Err((why, text)) => {
                    tracing::warn!(entry = %stream_entry.id, "unanswerable stream entry: {why}");
                    if let Err(err) = self.bury(&stream_entry.id, &text, &why, 1).await {
                        tracing::warn!(entry = %stream_entry.id, error = %describe(&err), "cannot move entry to the dead-letter stream");
                    }
                }
            }
        }
    }

    /// Moves one entry to the dead-letter stream and acknowledges it.
    async fn bury(
        &mut self,
        id: &str,
        text: &str,
        reason: &str,
        deliveries: usize,
    ) -> redis::RedisResult<()> {
        redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(self.config.dead_letter_key())
            .arg("*")
            .arg("data")
            .arg(text)
            .arg("id")
            .arg(id)
            .arg("deliveries")
            .arg(deliveries)
            .arg("reason")
            .arg(reason)
            .ignore()
            .cmd("XACK")
            .arg(&self.config.key)
            .arg(&self.config.group)
            .arg(id)
            .ignore()
            .query_async::<()>(&mut self.ctl)
            .await
    }

    /// Dead-letters what was delivered too often, then takes over what others left idle.
    async fn claim(&mut self) -> redis::RedisResult<()> {
        let idle = self.config.idle_ms();
        let pending: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&self.config.key)
            .arg(&self.config.group)
            .arg("IDLE")
            .arg(idle)
            .arg("-")
            .arg("+")
            .arg(BATCH)
            .query_async(&mut self.ctl)
            .await?;
        let max = usize::try_from(self.config.max_deliveries).unwrap_or(usize::MAX);
        for stale in pending.ids.iter().filter(|p| p.times_delivered >= max) {
            // Claimed first, so that of several consumers only one moves it.
            let claimed: StreamClaimReply = redis::cmd("XCLAIM")
                .arg(&self.config.key)
                .arg(&self.config.group)
                .arg(&self.config.consumer)
                .arg(idle)
                .arg(&stale.id)
                .query_async(&mut self.ctl)
                .await?;
            let Some(dead) = claimed.ids.into_iter().next() else {
                continue;
            };
            let text = dead
                .map
                .get("data")
                .and_then(|value| redis::from_redis_value_ref::<String>(value).ok())
                .unwrap_or_default();
            let reason = format!(
                "not acknowledged after {} deliveries",
                stale.times_delivered
            );
            self.bury(&stale.id, &text, &reason, stale.times_delivered)
                .await?;
            tracing::error!(
                entry = %stale.id,
                deliveries = stale.times_delivered,
                last_consumer = %stale.consumer,
                dead_letter = %self.config.dead_letter_key(),
                "stream entry never handled; moved to the dead-letter stream"
            );
        }
        let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.config.key)
            .arg(&self.config.group)
            .arg(&self.config.consumer)
            .arg(idle)
            .arg(&self.claim_cursor)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut self.ctl)
            .await?;
        if !claimed.claimed.is_empty() {
            tracing::info!(
                entries = claimed.claimed.len(),
                idle_ms = idle,
                "took over stream entries another consumer left unacknowledged"
            );
        }
        let more = claimed.next_stream_id != "0-0";
        self.claim_cursor = claimed.next_stream_id;
        self.take(claimed.claimed).await;
        // A full page may have more behind it: look again at once.
        self.next_claim = if more {
            Instant::now()
        } else {
            Instant::now() + (self.config.claim_idle / 2).max(Duration::from_millis(100))
        };
        Ok(())
    }

    async fn read(&mut self) -> redis::RedisResult<()> {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.config.group)
            .arg(&self.config.consumer)
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(1000))
            .arg("STREAMS")
            .arg(&self.config.key)
            .arg(">")
            .query_async(&mut self.reader)
            .await?;
        let entries = reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .collect();
        self.take(entries).await;
        Ok(())
    }

    fn failed(&mut self, what: &str, err: &redis::RedisError) {
        if !std::mem::replace(&mut self.failing, true) {
            tracing::warn!(stream = %self.config.key, error = %describe(err), "cannot {what}; retrying");
        }
    }
}

async fn create_group(
    ctl: &mut ConnectionManager,
    config: &StreamConfig,
) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&config.key)
        .arg(&config.group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(ctl)
        .await;
    match created {
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Acknowledges handled entries in batches until every [`Receipt`] and the source are gone;
/// a failed `XACK` is retried (the entries would otherwise be delivered again).
async fn acknowledge(
    mut ctl: ConnectionManager,
    config: StreamConfig,
    mut handled: mpsc::UnboundedReceiver<String>,
) {
    let mut ids = Vec::new();
    let mut failing = false;
    loop {
        if ids.is_empty() {
            match handled.recv().await {
                Some(id) => ids.push(id),
                None => return,
            }
        }
        while ids.len() < BATCH * 8 {
            match handled.try_recv() {
                Ok(id) => ids.push(id),
                Err(_) => break,
            }
        }
        // Once acknowledged, an entry comes back only to a consumer that took it over before
        // (it stalled here past the idle time): its published-once record needs to outlive
        // that consumer's handling, not the 24 h it gets while the entry is pending. Same
        // round trip; a missing record (nothing was published) is ignored.
        let mut pipe = redis::pipe();
        pipe.cmd("XACK")
            .arg(&config.key)
            .arg(&config.group)
            .arg(&ids)
            .ignore();
        for id in &ids {
            pipe.cmd("EXPIRE")
                .arg(crate::shared::done_key(&config.key, id))
                .arg(ACKED_DONE_TTL.as_secs())
                .ignore();
        }
        let acked: redis::RedisResult<()> = pipe.query_async(&mut ctl).await;
        match acked {
            Ok(_) => {
                ids.clear();
                if std::mem::take(&mut failing) {
                    tracing::info!(stream = %config.key, "acknowledging again");
                }
            }
            Err(err) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(stream = %config.key, entries = ids.len(), error = %describe(&err), "cannot acknowledge handled entries; retrying");
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

impl Source for RedisStream {
    async fn next(&mut self, cancel: &CancellationToken) -> Option<Delivery> {
        loop {
            if let Some(delivery) = self.buffered.pop_front() {
                return Some(delivery);
            }
            if cancel.is_cancelled() || self.stopped {
                return None;
            }
            // Commands are never abandoned halfway (an entry read but never seen would wait
            // the idle time); shutdown waits for the block to end.
            let done = if Instant::now() >= self.next_claim {
                self.claim()
                    .await
                    .map_err(|err| ("take over idle entries", err))
            } else {
                self.read().await.map_err(|err| ("read the stream", err))
            };
            match done {
                Ok(()) => {
                    if std::mem::take(&mut self.failing) {
                        tracing::info!(stream = %self.config.key, "reading Redis again");
                    }
                }
                Err((what, err)) => {
                    if err.code() == Some("NOGROUP") {
                        // The stream or group was deleted under us: make them again.
                        let _ = create_group(&mut self.ctl, &self.config).await;
                    }
                    self.failed(what, &err);
                    if !pause(RETRY, cancel).await {
                        return None;
                    }
                }
            }
        }
    }

    async fn stop(&mut self) {
        self.stopped = true;
    }

    async fn rest(&mut self) -> Option<Delivery> {
        // Entries read but not handed on: handled now rather than left to the idle time.
        self.buffered.pop_front()
    }

    async fn finish(self, deadline: Duration) {
        let Self {
            acks,
            acker,
            buffered,
            ..
        } = self;
        drop(buffered);
        drop(acks);
        let mut acker = acker;
        if tokio::time::timeout(deadline, &mut acker).await.is_err() {
            acker.abort();
            tracing::warn!("acknowledgements not all sent before the deadline; those entries will be delivered again");
        }
    }

    fn describe(&self) -> String {
        format!(
            "redis stream {} (group {}, consumer {})",
            self.config.key, self.config.group, self.config.consumer
        )
    }
}

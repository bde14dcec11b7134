//! The consumer's entry point, [`run`], and its main loop: take events from the engine, hand
//! them to workers, and on cancellation drain.
//!
//! The engine's memory queue is at-most-once: an event the consumer has taken is lost if the
//! consumer drops it. So shutdown first stops the engine sending (`queue.unpop`), then handles
//! every event already received, within the drain deadline, and only then closes the client.

use std::sync::Arc;
use std::time::Duration;

use connmix_client::{Client, ClientBuilder};
use sea_orm::DatabaseConnection;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::chat::Chat;
use crate::error::{Error, ErrorKind, Result};
use crate::history::History;
use crate::limits::Limits;
use crate::reconcile::Reconcile;
use crate::service::password::Hasher;
use crate::service::session::Sessions;
use crate::shared::Shared;
use crate::source::{EngineSource, RedisConfig, RedisList, RedisStream, Source, StreamConfig};
use crate::workers::Workers;

/// The queue the tutorial's engine script pushes onto.
pub const DEFAULT_QUEUE: &str = "chat";
/// How long [`run`] waits for the first engine node unless told otherwise.
pub const DEFAULT_ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything [`run`] needs: the engine to consume, the database, and the limits.
#[derive(Debug)]
pub struct Consumer {
    /// The engine client, configured but not yet connected (`Client::builder(center)`).
    pub engine: ClientBuilder,
    /// How long to wait at start for at least one engine node before giving up.
    pub engine_timeout: Duration,
    /// The queue the engine script pushes onto.
    pub queue: String,
    /// The database holding the users (migrated).
    pub db: DatabaseConnection,
    /// Hashes and checks passwords.
    pub hasher: Hasher,
    /// Limits, workers and the drain deadline.
    pub limits: Limits,
    /// How often stale presence records are looked for.
    pub reconcile: Reconcile,
    /// Where events come from.
    pub source: SourceKind,
    /// Redis, for the Redis sources and for state shared with other consumers (the message
    /// rate, published stream entries). Required by the Redis sources.
    pub redis: Option<RedisConfig>,
    /// Told of the engine client once there is one, for `/readyz` ([`crate::admin`]).
    pub readiness: Readiness,
}

/// Which queue [`run`] reads; see [`crate::source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// The engine's memory queue [`Consumer::queue`]: at most once.
    Engine,
    /// The Redis list [`Consumer::queue`], popped: at most once.
    RedisList,
    /// A Redis stream in a consumer group: at least once, messages published once.
    RedisStream(StreamConfig),
}

/// How long a published stream entry is remembered: far longer than any redelivery.
const PUBLISHED_TTL: Duration = Duration::from_secs(24 * 3600);

impl Consumer {
    /// A consumer of [`DEFAULT_QUEUE`] with the default limits and engine timeout.
    pub fn new(engine: ClientBuilder, db: DatabaseConnection, hasher: Hasher) -> Self {
        Self {
            engine,
            engine_timeout: DEFAULT_ENGINE_TIMEOUT,
            queue: DEFAULT_QUEUE.to_owned(),
            db,
            hasher,
            limits: Limits::default(),
            reconcile: Reconcile::default(),
            source: SourceKind::Engine,
            redis: None,
            readiness: Readiness::default(),
        }
    }
}

/// Runs a chat consumer until `shutdown`: connects to the engine, waits for a node, answers
/// the queue's events and drains on shutdown. What `chat-consumer run` and `dev` do.
///
/// Fails with [`ErrorKind::Engine`] when no engine node connects within
/// [`Consumer::engine_timeout`] (reading the center included), or when the engine client stops
/// delivering events. A shutdown during start-up ends it at once with [`Stopped::Drained`].
pub async fn run(consumer: Consumer, shutdown: CancellationToken) -> Result<Stopped> {
    let Consumer {
        engine,
        engine_timeout,
        queue,
        db,
        hasher,
        limits,
        reconcile,
        source,
        redis,
        readiness,
    } = consumer;
    readiness.watch_shutdown(&shutdown);
    if source != SourceKind::Engine && redis.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the Redis sources need a Redis URL (--redis-url or REDIS_URL)",
        ));
    }
    // Redis first: it fails fast, and nothing has been taken from any queue yet.
    let shared = match &redis {
        Some(redis) => Some(Shared::connect(redis, &queue, PUBLISHED_TTL).await?),
        None => None,
    };
    let center = crate::reach::center_shown(&engine);
    let unreachable =
        |why: &connmix_client::ClientError| crate::reach::engine_unreachable(&center, why);
    let deadline = Instant::now() + engine_timeout;
    // The whole start-up, reading the center included, is bounded by `engine_timeout`, and a
    // shutdown during it is obeyed at once: nothing has been taken from the engine yet. A client
    // dropped on the way stops its background tasks.
    let start = async {
        let client = engine.connect().await.map_err(|e| unreachable(&e))?;
        readiness.watch(&client);
        // Ends with the client.
        tokio::spawn(crate::telemetry::watch_engine(
            client.state(),
            client.events(),
        ));
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(timeout) = client.wait_connected(left).await {
            // The client retried in the background; what it last saw is the real cause.
            return Err(unreachable(&client.last_error().unwrap_or(timeout)));
        }
        Ok::<_, Error>(client)
    };
    let client = tokio::select! {
        () = shutdown.cancelled() => return Ok(Stopped::Drained),
        started = tokio::time::timeout_at(deadline, start) => match started {
            Ok(started) => started?,
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Engine,
                    format!(
                        "cannot reach the engine at {center}: no answer within \
                         {engine_timeout:?} (is a firewall dropping the packets, or is the \
                         address wrong?)"
                    ),
                ))
            }
        },
    };
    let sessions = if limits.session_ttl.is_zero() {
        None
    } else {
        Some(Sessions::load(&db, limits.session_ttl).await?)
    };
    let (history, history_writer) = History::start_lingering(
        db.clone(),
        limits.history_per_channel,
        limits.history_buffer,
        limits.history_linger,
    );
    let drain_timeout = limits.drain_timeout;
    let mut chat = Chat::new(client.clone(), db, hasher, limits).with_history(history);
    if let Some(sessions) = sessions {
        chat = chat.with_sessions(sessions);
    }
    if let Some(shared) = shared {
        chat = chat.with_shared(shared);
    }
    let chat = Arc::new(chat);
    let stop_reconciling = CancellationToken::new();
    let reconciling = tokio::spawn({
        let (chat, stop) = (Arc::clone(&chat), stop_reconciling.clone());
        async move {
            let nodes = || {
                let nodes = chat.engine().nodes();
                nodes.iter().map(ToString::to_string).collect()
            };
            crate::reconcile::run(&chat, reconcile, nodes, stop).await;
        }
    });
    // Dropped with this future too (a consumer aborted), so the task cannot keep the engine
    // client alive.
    let stop = stop_reconciling.drop_guard();
    let served = match (source, &redis) {
        (SourceKind::RedisList, Some(redis)) => {
            let list = RedisList::connect(redis, &queue, &client).await?;
            serve(chat, list, shutdown).await
        }
        (SourceKind::RedisStream(config), Some(redis)) => {
            let stream = RedisStream::connect(redis, config, &client).await?;
            serve(chat, stream, shutdown).await
        }
        _ => {
            let engine = EngineSource::start(&client, &queue).await?;
            serve(chat, engine, shutdown).await
        }
    };
    drop(stop);
    let _ = reconciling.await;
    // Every handle of the history has gone with the chat: its writer stores what is left in
    // the buffer and ends.
    if let Some(writer) = history_writer {
        if tokio::time::timeout(drain_timeout, writer).await.is_err() {
            tracing::warn!("the history writer did not finish; its last messages are lost");
        }
    }
    served
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Cancelled and every received event was handled (also when cancelled during start-up,
    /// before any was received).
    Drained,
    /// Cancelled, but the deadline passed with events still in hand.
    DeadlinePassed,
}

/// Hands `source`'s events to workers until `cancel`, then drains; answers go through the
/// chat's engine client.
pub(crate) async fn serve<S: Source>(
    chat: Arc<Chat<Client>>,
    mut source: S,
    cancel: CancellationToken,
) -> Result<Stopped> {
    let client = chat.engine().clone();
    let limits = chat.limits().clone();
    tracing::info!(source = %source.describe(), workers = limits.workers, "consuming");
    let workers = Workers::spawn(Arc::clone(&chat), limits.workers, limits.worker_queue);
    // Only the wait for the next event is cancelled, never a hand-over in progress: an event
    // already received must reach a worker.
    while let Some(delivery) = source.next(&cancel).await {
        workers.deliver(delivery).await;
    }
    let deadline = Instant::now() + limits.drain_timeout;
    if !cancel.is_cancelled() {
        // Still drain what was taken: those events exist nowhere else.
        let name = source.describe();
        workers.drain(limits.drain_timeout).await;
        source.finish(limits.drain_timeout).await;
        client.shutdown(limits.drain_timeout).await;
        return Err(Error::new(
            ErrorKind::Engine,
            format!("the {name} stopped delivering events"),
        ));
    }
    tracing::info!("stopping: no new events, finishing those received");
    source.stop().await;
    let pumped = tokio::time::timeout_at(deadline, async {
        while let Some(delivery) = source.rest().await {
            workers.deliver(delivery).await;
        }
    })
    .await;
    let remaining = deadline.saturating_duration_since(Instant::now());
    let drained = workers.drain(remaining).await && pumped.is_ok();
    source
        .finish(deadline.saturating_duration_since(Instant::now()))
        .await;
    client
        .shutdown(deadline.saturating_duration_since(Instant::now()))
        .await;
    if drained {
        tracing::info!("drained");
        Ok(Stopped::Drained)
    } else {
        tracing::warn!("drain deadline passed; some events were not handled");
        Ok(Stopped::DeadlinePassed)
    }
}

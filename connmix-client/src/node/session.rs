//! One open connection to a node: requests out, replies and queue messages in, heartbeat.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use connmix_protocol::{Call, EngineFrame, Event, QueueMessage, Request};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, trace, warn};

use super::connect::Ws;
use super::pending::{Pending, Resolved, Waiter};
use super::task::NodeTask;
use super::Command;
use crate::error::ClientError;
use crate::queue::QueueEvent;
use crate::state::DisconnectReason;

/// Commands written before one flush, so a burst of calls costs one syscall, not one each.
const COMMAND_BATCH: usize = 256;
/// Frames handled per wake-up when the read buffer already holds them.
const READ_BATCH: usize = 64;
/// Bounds of the period at which requests past their deadline are failed.
const MIN_SWEEP: std::time::Duration = std::time::Duration::from_millis(5);
const MAX_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a session ended.
pub(super) enum SessionEnd {
    /// The connection is gone; the task reconnects.
    Lost(DisconnectReason),
    /// The task was told to stop (node removed, client dropped).
    Stopped,
    /// A shutdown finished; answer `done`.
    Shutdown(oneshot::Sender<()>),
}

pub(super) struct Session<'a> {
    task: &'a mut NodeTask,
    ws: Ws,
    pending: Pending,
    /// Queue messages the application has no room for yet, in arrival order, with the stream
    /// each goes to (kept here, so that an unpop cannot drop them).
    overflow: VecDeque<(mpsc::Sender<QueueEvent>, QueueEvent)>,
    /// The id of a `queue.unpop` not yet answered. Messages the engine sent before it took the
    /// unpop still arrive until its reply, and must reach the application: the engine has
    /// already forgotten them.
    unpop: Option<u64>,
    /// When a ping was sent and nothing has arrived since: the moment to give up.
    pong_deadline: Option<Instant>,
    warned_dropped_stream: bool,
    /// Oversized frames skipped since the last warning, and when that was.
    oversized: (u64, Option<Instant>),
}

/// The least time between two warnings about oversized frames, per node.
const OVERSIZED_WARNING_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl<'a> Session<'a> {
    pub(super) fn new(task: &'a mut NodeTask, ws: Ws) -> Self {
        Self {
            task,
            ws,
            pending: Pending::default(),
            overflow: VecDeque::new(),
            unpop: None,
            pong_deadline: None,
            warned_dropped_stream: false,
            oversized: (0, None),
        }
    }

    pub(super) async fn run(mut self) -> SessionEnd {
        let end = match self.serve().await {
            Ok(end) => end,
            Err(reason) => SessionEnd::Lost(reason),
        };
        let error = match &end {
            SessionEnd::Lost(_) => ClientError::disconnected(&self.task.id),
            SessionEnd::Stopped | SessionEnd::Shutdown(_) => ClientError::closed(),
        };
        self.pending.fail_all(&error);
        if self.unpop.take().is_some() {
            // The connection is gone, and the consumption with it: do not consume again.
            self.drop_subscriptions();
        }
        if !matches!(end, SessionEnd::Lost(_)) {
            // Best effort: the peer may already be gone.
            let _ = self.ws.close(None).await;
        }
        end
    }

    async fn serve(&mut self) -> Result<SessionEnd, DisconnectReason> {
        let options = &self.task.shared.options;
        let (ping_interval, pong_timeout) = (options.ping_interval, options.pong_timeout);
        let high_water = options.event_buffer;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // One timer for every request's deadline instead of one per request.
        let sweep_every = (options.request_timeout / 8).clamp(MIN_SWEEP, MAX_SWEEP);
        let mut sweep = tokio::time::interval_at(Instant::now() + sweep_every, sweep_every);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.consume_again().await?;
        self.flush().await?;
        loop {
            // Keep reading while a reply is awaited, even when the application is behind:
            // it may be waiting for that reply before it takes the next message.
            let read = self.overflow.len() < high_water || !self.pending.is_empty();
            if !read {
                // Unread frames are not the peer's silence.
                self.pong_deadline = None;
            }
            let front = self.overflow.front().map(|(sink, _)| sink.clone());
            let pong_deadline = self.pong_deadline;
            tokio::select! {
                _ = self.task.stop.cancelled() => return Ok(SessionEnd::Stopped),
                command = self.task.rx.recv() => {
                    let Some(command) = command else { return Ok(SessionEnd::Stopped) };
                    if let Some(done) = self.command(command).await? {
                        return self.shutdown(done).await;
                    }
                    for _ in 1..COMMAND_BATCH {
                        let Ok(command) = self.task.rx.try_recv() else { break };
                        if let Some(done) = self.command(command).await? {
                            return self.shutdown(done).await;
                        }
                    }
                    self.flush().await?;
                }
                message = self.ws.next(), if read => {
                    self.received(message)?;
                    // Frames already read need no wake-up each: take what the buffer holds.
                    for _ in 1..READ_BATCH {
                        if self.overflow.len() >= high_water && self.pending.is_empty() {
                            break;
                        }
                        match self.ws.next().now_or_never() {
                            Some(message) => self.received(message)?,
                            None => break,
                        }
                    }
                }
                _ = sweep.tick(), if !self.pending.is_empty() => {
                    self.pending.expire(Instant::now());
                }
                permit = reserve(front), if !self.overflow.is_empty() => {
                    if let Some((_, event)) = self.overflow.pop_front() {
                        match permit {
                            Some(permit) => { permit.send(event); }
                            None => self.stream_dropped(),
                        }
                    }
                }
                _ = ping.tick() => {
                    self.pending.purge_abandoned();
                    if self.pong_deadline.is_none() && read {
                        self.ws.send(Message::Ping(Bytes::new())).await.map_err(transport)?;
                        self.pong_deadline = Some(Instant::now() + pong_timeout);
                    }
                }
                _ = sleep_until(pong_deadline), if pong_deadline.is_some() && read => {
                    return Err(DisconnectReason::PongTimeout);
                }
            }
        }
    }

    /// After a (re)connect, consume every topic this node consumed before.
    async fn consume_again(&mut self) -> Result<(), DisconnectReason> {
        let topics: Vec<String> = self
            .task
            .subs
            .iter()
            .flat_map(|sub| sub.topics.iter().cloned())
            .collect();
        if topics.is_empty() {
            return Ok(());
        }
        debug!(?topics, "consuming again");
        let id = self.pending.insert(Waiter::Reconsume, None);
        self.write(id, Call::QueuePop { topics }).await
    }

    /// Handles one command; returns the shutdown's `done` when the command is a shutdown.
    async fn command(
        &mut self,
        command: Command,
    ) -> Result<Option<(Instant, oneshot::Sender<()>)>, DisconnectReason> {
        match command {
            Command::Call {
                call,
                reply,
                deadline,
            } => {
                if reply.is_closed() {
                    return Ok(None);
                }
                let id = self.pending.insert(Waiter::Call(reply), Some(deadline));
                self.write(id, call).await?;
            }
            Command::Consume {
                sub,
                reply,
                deadline,
            } => {
                let topics = sub.topics.clone();
                self.task.subs.push(sub);
                let id = self.pending.insert(Waiter::Done(reply), Some(deadline));
                self.write(id, Call::QueuePop { topics }).await?;
            }
            Command::Unpop { reply, deadline } => {
                let id = self.pending.insert(Waiter::Done(reply), Some(deadline));
                self.unpop = Some(id);
                self.write(id, Call::QueueUnpop).await?;
            }
            Command::Shutdown { deadline, done } => return Ok(Some((deadline, done))),
        }
        Ok(None)
    }

    /// Stops consuming, lets pending requests finish until the deadline, then closes.
    async fn shutdown(
        &mut self,
        (deadline, done): (Instant, oneshot::Sender<()>),
    ) -> Result<SessionEnd, DisconnectReason> {
        if !self.task.subs.is_empty() {
            let id = self.pending.insert(Waiter::Internal("queue.unpop"), None);
            self.unpop = Some(id);
            self.write(id, Call::QueueUnpop).await?;
        }
        self.flush().await?;
        while !self.pending.is_empty() {
            tokio::select! {
                message = self.ws.next() => match message {
                    Some(Ok(message)) => self.message(message)?,
                    _ => break,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    debug!(pending = self.pending.len(), "shutdown deadline reached");
                    break;
                }
            }
        }
        Ok(SessionEnd::Shutdown(done))
    }

    /// Forgets the consumed topics: their streams end once the messages already received
    /// for them (in `overflow`) have been handed over.
    fn drop_subscriptions(&mut self) {
        self.task.subs.clear();
    }

    /// Queues a request in the socket's write buffer; it goes out with the next flush.
    async fn write(&mut self, id: u64, call: Call) -> Result<(), DisconnectReason> {
        trace!(id, op = call.method(), "request");
        let text = Request::new(id, call).encode(self.task.shared.options.dialect);
        // Waits only when the peer stopped reading and the buffer is full.
        let stall = self.task.shared.options.request_timeout;
        match tokio::time::timeout(stall, self.ws.feed(Message::text(text))).await {
            Ok(written) => written.map_err(transport),
            Err(_) => Err(DisconnectReason::Transport(format!(
                "the engine took no data for {stall:?}"
            ))),
        }
    }

    /// Writes out what was queued: one syscall for a whole batch of requests.
    async fn flush(&mut self) -> Result<(), DisconnectReason> {
        // A timeout here arms no timer unless the flush has to wait, which it does only when
        // the peer stopped reading; callers then learn of it through the disconnect.
        let stall = self.task.shared.options.request_timeout;
        match tokio::time::timeout(stall, self.ws.flush()).await {
            Ok(flushed) => flushed.map_err(transport),
            Err(_) => Err(DisconnectReason::Transport(format!(
                "the engine took no data for {stall:?}"
            ))),
        }
    }

    fn received(
        &mut self,
        message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<(), DisconnectReason> {
        match message {
            None => Err(DisconnectReason::ClosedByPeer),
            Some(Err(e)) => Err(DisconnectReason::Transport(e.to_string())),
            Some(Ok(message)) => self.message(message),
        }
    }

    fn message(&mut self, message: Message) -> Result<(), DisconnectReason> {
        // Anything from the peer proves it is alive.
        self.pong_deadline = None;
        match message {
            Message::Text(text) if text.len() > self.task.shared.options.max_frame_bytes => {
                self.oversized(text.len())
            }
            Message::Text(text) => self.frame(text.as_str())?,
            Message::Close(_) => return Err(DisconnectReason::ClosedByPeer),
            Message::Binary(_) => warn!("ignoring a binary frame"),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        Ok(())
    }

    fn frame(&mut self, text: &str) -> Result<(), DisconnectReason> {
        match EngineFrame::decode(text) {
            Ok(EngineFrame::Reply(reply)) => match reply.id {
                Some(id) => {
                    match self.pending.resolve(id, reply.outcome, &self.task.id) {
                        Resolved::Done => {}
                        Resolved::Unknown => {
                            debug!(id, "reply to no pending request (caller gave up?)")
                        }
                        // Staying connected would look healthy while consuming nothing:
                        // reconnect (with backoff) and try again.
                        Resolved::ReconsumeRefused(error) => {
                            return Err(DisconnectReason::ConsumeRefused(error.to_string()))
                        }
                    }
                    if self.unpop == Some(id) {
                        // Nothing more comes for these topics.
                        self.unpop = None;
                        self.drop_subscriptions();
                    }
                }
                None => warn!("reply without an id cannot be matched"),
            },
            Ok(EngineFrame::Event(Event::QueuePop(message))) => self.deliver(message),
            Ok(EngineFrame::Event(Event::Other { name, .. })) => {
                debug!(event = %name, "ignoring an unknown event");
            }
            // An event a later connmix-protocol decodes and this client does not use yet.
            Ok(EngineFrame::Event(other)) => debug!(?other, "ignoring an event"),
            Ok(EngineFrame::Pong) => {}
            Err(error) => warn!(%error, "undecodable frame"),
        }
        Ok(())
    }

    fn deliver(&mut self, message: QueueMessage) {
        let Some(index) = self
            .task
            .subs
            .iter()
            .position(|sub| sub.topics.contains(&message.topic))
        else {
            warn!(topic = %message.topic, client_id = %message.client, "message of a topic not consumed");
            return;
        };
        // The node holding the browser connection is the one whose queue delivered the
        // message; reuse the decoded id when it agrees, to save an allocation.
        let node = match message.node {
            Some(node) if node == self.task.id => node,
            _ => self.task.id.clone(),
        };
        let event = QueueEvent {
            node,
            client: message.client,
            topic: message.topic,
            data: message.data,
        };
        let sink = &self.task.subs[index].sink;
        if !self.overflow.is_empty() {
            self.overflow.push_back((sink.clone(), event));
            return;
        }
        match sink.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                self.overflow.push_back((sink.clone(), event))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.stream_dropped(),
        }
    }

    /// Skips a frame over the limit: counted, and warned about at most every 10 s.
    fn oversized(&mut self, bytes: usize) {
        self.task.shared.oversized.fetch_add(1, Ordering::Relaxed);
        let (since, warned) = &mut self.oversized;
        *since += 1;
        let now = Instant::now();
        if warned.is_none_or(|at| now.duration_since(at) >= OVERSIZED_WARNING_EVERY) {
            warn!(
                bytes,
                limit = self.task.shared.options.max_frame_bytes,
                skipped = *since,
                "skipping engine frames over the size limit (the event in it is lost)"
            );
            *since = 0;
            *warned = Some(now);
        }
    }

    fn stream_dropped(&mut self) {
        if !self.warned_dropped_stream {
            self.warned_dropped_stream = true;
            warn!("an EventStream was dropped while its topics are still consumed; its messages are lost (call unpop)");
        }
    }
}

async fn reserve<T>(sink: Option<mpsc::Sender<T>>) -> Option<mpsc::OwnedPermit<T>> {
    match sink {
        Some(sink) => sink.reserve_owned().await.ok(),
        None => None,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn transport(error: tokio_tungstenite::tungstenite::Error) -> DisconnectReason {
    DisconnectReason::Transport(error.to_string())
}

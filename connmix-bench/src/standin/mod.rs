//! The stand-in engine: the least an engine can do for a consumer, so that a run measures the
//! consumer and not the engine. One thread, a current-thread runtime, plain sockets with the
//! framing in [`wire`], canned replies; it serves the center (`GET /version`, `GET /v1/nodes`)
//! and one API server per node (`/ws/v1`), pushes the bench's mix as `queue.pop` events and
//! checks every `mesh.send`, `mesh.publish` and `conn.call` against what the event owes
//! (method, target and data; a delivery's `time` aside). There are no browser connections:
//! nothing is fanned out or delivered.

mod conn;
mod owed;
mod state;
mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::contestant::{self, Usage};
use crate::harness::NODES;
use crate::workload::{Answers, Population};
use conn::serve;
use owed::Owed;
use state::State;

/// Events pushed and not yet fully answered beyond which the stand-in waits.
const WINDOW: usize = 2048;
/// Free room in the window below which no event is pushed, so that events go out in batches.
const REFILL: usize = 64;
/// How many mismatches are kept verbatim.
const KEPT_ERRORS: usize = 10;

/// A running stand-in engine.
pub struct Standin {
    center: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the controlling side and the engine thread share.
struct Shared {
    state: Mutex<State>,
    /// Events with a sequence number below this may be pushed.
    allowed: AtomicU64,
    pushed: AtomicU64,
    completed: AtomicU64,
    calls: AtomicU64,
    wrong: AtomicU64,
    consumers: AtomicUsize,
    errors: Mutex<Vec<String>>,
    /// `/proc/<pid>/task/<tid>` of the engine thread, once it runs.
    thread: Mutex<Option<String>>,
    cancel: CancellationToken,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic on the engine thread ends the run anyway; its state is still readable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wrong(&self, what: String) {
        self.wrong.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errors) = self.errors.lock() {
            if errors.len() < KEPT_ERRORS {
                errors.push(what);
            }
        }
    }
}

/// Where the stand-in puts the mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// `queue.pop` events on the consumers' API connections, as the engine's memory queue.
    Engine,
    /// Entries on Redis, as `examples/engine/entry-redis.lua` queues them (the event plus
    /// `node` and `client_id`); the consumer reads them there and answers through its API
    /// connections, which count as consuming.
    Redis {
        /// The Redis server, `redis://host:port`.
        url: String,
        /// The list or stream key (the consumer's `--queue`).
        key: String,
        /// A list (`LPUSH`) or a stream (`XADD`).
        shape: RedisShape,
    },
}

/// How entries go onto Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisShape {
    /// `LPUSH <key> <json>...`, one command per batch (`--source redis-list`).
    List,
    /// `XADD <key> MAXLEN ~ 100000 * data <json>`, pipelined per batch (`--source
    /// redis-stream`).
    Stream,
}

impl Standin {
    /// Starts a stand-in for `pop`'s connections, on its own thread pinned to `core`; it
    /// pushes nothing until [`Standin::allow`].
    pub fn start(
        pop: Arc<Population>,
        answers: Answers,
        core: Option<core_affinity::CoreId>,
    ) -> anyhow::Result<Self> {
        Self::start_with(pop, answers, core, Feed::Engine)
    }

    /// As [`Standin::start`], putting the mix where `feed` says; fails at once when Redis
    /// cannot be reached.
    pub fn start_with(
        pop: Arc<Population>,
        answers: Answers,
        core: Option<core_affinity::CoreId>,
        feed: Feed,
    ) -> anyhow::Result<Self> {
        let feed = match feed {
            Feed::Engine => None,
            Feed::Redis { url, key, shape } => Some(state::RedisFeed::connect(&url, key, shape)?),
        };
        let center = std::net::TcpListener::bind("127.0.0.1:0")?;
        let nodes: Vec<std::net::TcpListener> = (0..NODES)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()?;
        let addrs: Vec<SocketAddr> = nodes
            .iter()
            .map(|l| l.local_addr())
            .collect::<Result<_, _>>()?;
        let center_addr = center.local_addr()?;
        for listener in std::iter::once(&center).chain(&nodes) {
            listener.set_nonblocking(true)?;
        }
        let senders = pop.senders;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pop,
                answers,
                seq: 0,
                subscribed: vec![false; senders],
                owed: Owed::default(),
                slots: Vec::new(),
                consumers: vec![Vec::new(); NODES],
                turn: vec![0; NODES],
                node_ids: (1..=NODES).map(|n| n.to_string()).collect(),
                scratch: Vec::with_capacity(1024),
                feed,
            }),
            allowed: AtomicU64::new(0),
            pushed: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            wrong: AtomicU64::new(0),
            consumers: AtomicUsize::new(0),
            errors: Mutex::default(),
            thread: Mutex::new(None),
            cancel: CancellationToken::new(),
        });
        let listing = serde_json::json!({
            "nodes": addrs.iter().enumerate().map(|(i, a)| serde_json::json!({
                "id": (i + 1).to_string(), "api_server": a.to_string()
            })).collect::<Vec<_>>()
        })
        .to_string();
        let engine = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("standin".into())
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                if let (Ok(me), Ok(mut slot)) = (
                    std::fs::read_link("/proc/thread-self"),
                    engine.thread.lock(),
                ) {
                    *slot = Some(me.display().to_string());
                }
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => return engine.wrong(format!("no runtime: {err}")),
                };
                runtime.block_on(serve(engine, center, nodes, listing));
            })?;
        Ok(Self {
            center: center_addr,
            shared,
            thread: Some(thread),
        })
    }

    /// The center's `host:port`, for a contestant's `--host`.
    pub fn center_host(&self) -> String {
        self.center.to_string()
    }

    /// Connections consuming the queue.
    pub fn consumers(&self) -> usize {
        self.shared.consumers.load(Ordering::Relaxed)
    }

    /// Resolves once `n` connections consume, or fails after `timeout`.
    pub async fn wait_for_consumers(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.consumers() < n {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{n} consumer connections did not arrive within {timeout:?}"
            );
            // A benchmark may poll while a contestant starts.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Lets `events` more events be pushed (closed loop: as fast as they are answered).
    pub fn allow(&self, events: u64) {
        let pushed = self.shared.pushed.load(Ordering::Relaxed);
        self.shared
            .allowed
            .store(pushed.saturating_add(events), Ordering::Relaxed);
        self.shared.state().wake_all();
    }

    /// Pushes nothing more (events already pushed are still owed their calls).
    pub fn pause(&self) {
        let state = self.shared.state();
        self.shared.allowed.store(state.seq, Ordering::Relaxed);
    }

    /// Events pushed so far.
    pub fn pushed(&self) -> u64 {
        self.shared.pushed.load(Ordering::Relaxed)
    }

    /// Events all of whose calls have arrived.
    pub fn completed(&self) -> u64 {
        self.shared.completed.load(Ordering::Relaxed)
    }

    /// Owed calls received so far.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// Calls that matched nothing owed.
    pub fn wrong_count(&self) -> u64 {
        self.shared.wrong.load(Ordering::Relaxed)
    }

    /// The engine thread's CPU time so far.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        let thread = self
            .shared
            .thread
            .lock()
            .ok()
            .and_then(|t| t.clone())
            .context("the stand-in's thread has not started")?;
        contestant::usage(&thread)
    }

    /// Fails with the first mismatches if any call was wrong.
    pub fn verdict(&self) -> anyhow::Result<()> {
        let wrong = self.wrong_count();
        if wrong == 0 {
            return Ok(());
        }
        let errors = self
            .shared
            .errors
            .lock()
            .map(|e| e.join("\n  "))
            .unwrap_or_default();
        anyhow::bail!("{wrong} wrong calls, first ones:\n  {errors}")
    }

    /// Waits until every event allowed is pushed and has all its calls (call [`Standin::pause`]
    /// first in a closed loop); fails on a wrong call, or when
    /// nothing arrives for `quiet` while calls are still owed, naming some.
    pub async fn drained(&self, quiet: Duration) -> anyhow::Result<()> {
        let mut last = (self.completed(), Instant::now());
        loop {
            self.verdict()?;
            let done = self.completed();
            // Everything allowed has been pushed (the engine thread may not have got to it
            // yet) and answered.
            let allowed = self.shared.allowed.load(Ordering::Relaxed);
            if done == self.pushed() && self.pushed() >= allowed {
                return Ok(());
            }
            if done != last.0 {
                last = (done, Instant::now());
            } else if last.1.elapsed() > quiet {
                let some = self.shared.state().owed.some(3);
                anyhow::bail!(
                    "{} events never got all their calls (nothing for {quiet:?}), e.g.\n  {}",
                    self.pushed() - done,
                    some.join("\n  ")
                );
            }
            // A benchmark may poll: this is its progress watch.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the engine thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.cancel.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.stop();
    }
}

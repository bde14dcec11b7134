//! The engine side of a run: the mock engine, the synthetic logged-in connections, the pusher
//! that feeds their events into the queue, and the checker that reads what they get back.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chat_consumer::service::password::Hasher;
use chat_consumer::{db, service::users};
use connmix_mock::{MockConfig, MockEngine, Producer};

use crate::checker::{Checker, Class};
use crate::workload::{self, Answers, Event, Population, VConn, ROOM_SIZE};

/// Engine nodes in every run: one consumer WebSocket per node, as in production.
pub const NODES: usize = 2;
/// Sender answers not yet received beyond which the closed-loop pusher waits.
const WINDOW: u64 = 2048;
/// Queue capacity: large, so an open-loop step is never refused, only delayed.
const TOPIC_SIZE: usize = 1 << 20;
/// The queue the contestants consume.
pub const QUEUE: &str = "chat";

/// The engine side of a run.
pub struct Harness {
    /// The mock engine.
    pub engine: MockEngine,
    /// One producer per node.
    producers: Vec<Producer>,
    /// The connections.
    pub pop: Arc<Population>,
    /// What they are owed and what they got.
    pub checker: Arc<Checker>,
    /// Which core the pusher is pinned to.
    core: Option<core_affinity::CoreId>,
    state: Option<PushState>,
    /// Login-storm connections not yet used.
    storm_left: Vec<usize>,
}

/// What the pusher carries from one phase to the next.
struct PushState {
    seq: u64,
    /// Timed events pushed since the harness started (answers are counted likewise).
    pushed: u64,
    subscribed: Vec<bool>,
}

impl PushState {
    fn new(senders: usize) -> Self {
        Self {
            seq: 0,
            pushed: 0,
            subscribed: vec![false; senders],
        }
    }
}

impl Harness {
    /// Starts the engine, creates `senders` logged-in users plus `storm` users that can log in
    /// (in the SQLite database at `database`, replaced), and registers their connections.
    pub async fn start(
        senders: usize,
        storm: usize,
        database: &Path,
        core: Option<core_affinity::CoreId>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(senders > 0, "at least one sending connection is needed");
        let engine = MockEngine::start(MockConfig {
            nodes: NODES,
            topic_size: TOPIC_SIZE,
            ..MockConfig::ephemeral()
        })
        .await?;
        let _ = std::fs::remove_file(database);
        let url = format!("sqlite://{}?mode=rwc", database.display());
        let db = db::connect(&url).await?;
        db::migrate(&db).await?;
        // Senders never log in (their connections start logged in), so a cheap hash will do;
        // storm users get the consumer's real cost, since logging in is what the storm measures.
        let cheap = Hasher::with_cost(64, 1, 1)?.hash("not-used").await?;
        let real = Hasher::new(1).hash(workload::STORM_PASSWORD).await?;
        let producers: Vec<Producer> = engine
            .nodes()
            .iter()
            .map(|node| engine.producer(&node.id).context("node vanished"))
            .collect::<anyhow::Result<_>>()?;
        let mut pop = Population {
            senders,
            rooms: vec![Vec::new(); senders.div_ceil(ROOM_SIZE)],
            ..Population::default()
        };
        for i in 0..senders + storm {
            let sender = i < senders;
            let name = if sender {
                format!("bench{i}")
            } else {
                format!("storm{}", i - senders)
            };
            let hash = if sender { cheap.clone() } else { real.clone() };
            let user = users::create(&db, &name, &format!("{name}@example.com"), hash).await?;
            let uid = u64::try_from(user.id)?;
            let node = i % NODES;
            let client = producers[node].register_client(sender.then_some(uid));
            pop.conns.push(VConn {
                node,
                client,
                uid: sender.then_some(uid),
                user: uid,
                name,
                room: i / ROOM_SIZE,
            });
            if sender {
                pop.rooms[i / ROOM_SIZE].push(i);
                if i % workload::BROADCAST_EVERY == 0 {
                    pop.broadcast.push(i);
                }
            }
        }
        db.close().await?;
        let checker = Arc::new(Checker::new(pop.conns.len()));
        for (i, conn) in pop.conns.iter().enumerate() {
            let producer = &producers[conn.node];
            if !producer.subscribe(conn.client, pop.channels_of(i)) {
                anyhow::bail!("cannot subscribe connection {i}");
            }
            let mut inbox = producer
                .receiver(conn.client)
                .context("connection vanished")?;
            let checker = Arc::clone(&checker);
            tokio::spawn(async move {
                while let Some(payload) = inbox.recv().await {
                    checker.receive(i, payload, Instant::now());
                }
            });
        }
        Ok(Self {
            engine,
            producers,
            storm_left: (senders..senders + storm).collect(),
            state: Some(PushState::new(senders)),
            pop: Arc::new(pop),
            checker,
            core,
        })
    }

    /// Resolves once `consumers` consumer connections take the queue, or fails after `timeout`.
    pub async fn wait_for_consumers(
        &self,
        consumers: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        tokio::time::timeout(timeout, self.engine.wait_for_consumers(QUEUE, consumers))
            .await
            .with_context(|| {
                format!("{consumers} consumer connections did not arrive within {timeout:?}")
            })
    }

    /// Waits until no consumer connection is left from a stopped contestant.
    pub async fn wait_for_no_consumers(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.engine.counters().api_connections > 0 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "consumer connections did not close"
            );
            // A benchmark may poll between phases.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    fn pusher(&mut self, answers: Answers) -> Pusher {
        let state = self
            .state
            .take()
            .unwrap_or_else(|| PushState::new(self.pop.senders));
        Pusher {
            pop: Arc::clone(&self.pop),
            producers: self.producers.clone(),
            checker: Arc::clone(&self.checker),
            answers,
            state,
            core: self.core,
        }
    }

    /// Runs `push` on the pusher thread, pinned to the engine's core, and waits for it.
    async fn on_pusher_thread<T: Send + 'static>(
        &mut self,
        answers: Answers,
        push: impl FnOnce(&mut Pusher) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let mut pusher = self.pusher(answers);
        let (tx, rx) = tokio::sync::oneshot::channel();
        thread::Builder::new()
            .name("pusher".into())
            .spawn(move || {
                if let Some(core) = pusher.core {
                    core_affinity::set_for_current(core);
                }
                let out = push(&mut pusher);
                let _ = tx.send((pusher.state, out));
            })?;
        let (state, out) = rx.await.context("the pusher thread panicked")?;
        self.state = Some(state);
        Ok(out)
    }

    /// Pushes as fast as answers come back (at most [`WINDOW`] unanswered) until `stop`.
    pub async fn closed_loop(
        &mut self,
        answers: Answers,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        self.on_pusher_thread(answers, move |pusher| {
            while !stop.load(Ordering::Relaxed) {
                if pusher
                    .state
                    .pushed
                    .saturating_sub(pusher.checker.answered())
                    >= WINDOW
                {
                    thread::sleep(Duration::from_micros(50));
                    continue;
                }
                pusher.push_next(Instant::now());
            }
        })
        .await
    }

    /// Pushes at `rate` per second for `duration`, each event timed from when it was due; with
    /// `logins`, that many storm logins are pushed at once a third of the way in.
    pub async fn open_loop(
        &mut self,
        answers: Answers,
        rate: f64,
        duration: Duration,
        logins: usize,
    ) -> anyhow::Result<OpenLoop> {
        anyhow::ensure!(rate > 0.0, "the rate must be positive");
        let storm: Vec<usize> = self
            .storm_left
            .drain(..logins.min(self.storm_left.len()))
            .collect();
        anyhow::ensure!(
            storm.len() == logins,
            "only {} storm users are left",
            storm.len()
        );
        let logins: Vec<Event> = storm
            .iter()
            .map(|&i| workload::login(&self.pop, i, self.pop.conns[i].user))
            .collect();
        self.on_pusher_thread(answers, move |pusher| {
            let start = Instant::now();
            let total = (rate * duration.as_secs_f64()).round() as u64;
            let storm_at = total / 3;
            let mut storm_started = None;
            for k in 0..total {
                let due = start + Duration::from_secs_f64(k as f64 / rate);
                let now = Instant::now();
                // Sleeping is coarse (tens of microseconds); events that fell due meanwhile
                // go out at once, still timed from when they were due.
                if due > now + Duration::from_micros(50) {
                    thread::sleep(due - now);
                }
                if k == storm_at && !logins.is_empty() {
                    storm_started = Some(Instant::now());
                    for login in &logins {
                        pusher.push_event(login.clone(), Instant::now(), Class::Login);
                    }
                }
                pusher.push_next(due);
            }
            OpenLoop {
                start,
                end: start + duration,
                storm_started,
            }
        })
        .await
    }

    /// Stops the engine.
    pub async fn shutdown(self) {
        self.engine.shutdown().await;
    }
}

/// When an open-loop phase ran.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoop {
    /// First event due.
    pub start: Instant,
    /// Last event due (about).
    pub end: Instant,
    /// When the storm's logins were pushed.
    pub storm_started: Option<Instant>,
}

/// Builds events and pushes them; runs on its own thread.
struct Pusher {
    pop: Arc<Population>,
    producers: Vec<Producer>,
    checker: Arc<Checker>,
    answers: Answers,
    state: PushState,
    core: Option<core_affinity::CoreId>,
}

impl Pusher {
    /// The next event of the mix, from the next sender in turn.
    fn push_next(&mut self, due: Instant) {
        let seq = self.state.seq;
        self.state.seq += 1;
        let conn = (seq % self.pop.senders as u64) as usize;
        let event = workload::event(
            &self.pop,
            seq,
            conn,
            &mut self.state.subscribed[conn],
            self.answers,
        );
        self.push_event(event, due, Class::Chat);
    }

    fn push_event(&mut self, mut event: Event, due: Instant, class: Class) {
        for expect in std::mem::take(&mut event.expect) {
            self.checker.owe(expect, due, class);
        }
        let conn = &self.pop.conns[event.conn];
        let producer = &self.producers[conn.node];
        // The queue is large; if it is ever full, waiting is what a browser's script would do.
        // (The value is rebuilt on a retry: the mock takes it by value.)
        while producer
            .push(QUEUE, conn.client, event.value(&self.pop))
            .is_err()
        {
            thread::sleep(Duration::from_micros(100));
        }
        self.state.pushed += 1;
    }
}

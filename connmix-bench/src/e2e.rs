//! End to end: browser-style WebSocket clients through the mock's chat port, a real
//! `chat-consumer` process between them, and publish-to-delivery latency. Everything shares the
//! machine, so the figures are whole-system ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chat_consumer::service::password::Hasher;
use chat_consumer::{db, service::users};
use connmix_mock::browser::Browser;
use connmix_mock::{MockConfig, MockEngine};
use connmix_protocol::chat::{ChatReply, ChatRequest};
use serde::Serialize;

use crate::checker::Percentiles;
use crate::contestant::{Contestant, Kind, Programs};
use crate::harness::NODES;
use crate::run::Cores;

/// Browser clients.
const CLIENTS: usize = 2000;
/// Clients per room.
const ROOM: usize = 10;
/// Seconds between one client's messages (so 2,000 clients send 1,000 messages/s).
const EVERY: Duration = Duration::from_secs(2);
/// How long traffic runs; the first [`WARMUP`] is not measured.
const TRAFFIC: Duration = Duration::from_secs(12);
const WARMUP: Duration = Duration::from_secs(2);
const PASSWORD: &str = "e2e-password";

/// What the end-to-end run measured.
#[derive(Debug, Clone, Serialize)]
pub struct EndToEnd {
    /// Browser clients.
    pub clients: usize,
    /// Rooms (of `clients / rooms` members each).
    pub rooms: usize,
    /// Seconds until every client had logged in and joined its room.
    pub setup_s: f64,
    /// Messages sent per second, all clients together.
    pub messages_per_s: f64,
    /// Deliveries received per second.
    pub deliveries_per_s: f64,
    /// From a client sending a message to each room member receiving it.
    pub delivery_latency: Percentiles,
    /// Messages sent while measuring.
    pub messages: u64,
    /// Deliveries received for them (each message is owed one per room member).
    pub deliveries: u64,
}

impl EndToEnd {
    /// The BENCHMARKS.md section.
    pub fn markdown(&self) -> String {
        let l = &self.delivery_latency;
        format!(
            "\n### End to end (whole system on one shared machine)\n\n{} browser WebSockets in {} rooms on {} nodes, one chat-consumer; {:.0} messages/s in, {:.0} deliveries/s out ({} of {} owed deliveries arrived). Publish-to-delivery latency: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms. Logging in and joining took {:.1} s for all clients.\n",
            self.clients,
            self.rooms,
            NODES,
            self.messages_per_s,
            self.deliveries_per_s,
            self.deliveries,
            self.messages * ROOM as u64,
            l.p50_ms,
            l.p99_ms,
            l.p999_ms,
            l.max_ms,
            self.setup_s
        )
    }
}

/// Runs the end-to-end measurement with its own engine and users.
pub async fn run(programs: &Programs, cores: Cores) -> anyhow::Result<EndToEnd> {
    let engine = MockEngine::start(MockConfig {
        nodes: NODES,
        topic_size: 100_000,
        ..MockConfig::ephemeral()
    })
    .await?;
    let database = programs.database.with_file_name("e2e-users.sqlite");
    let _ = std::fs::remove_file(&database);
    eprintln!("end to end: creating {CLIENTS} users");
    let db = db::connect(&format!("sqlite://{}?mode=rwc", database.display())).await?;
    db::migrate(&db).await?;
    // Logging in is what the storm measures; here a cheap hash keeps the set-up short.
    let hash = Hasher::with_cost(64, 1, 1)?.hash(PASSWORD).await?;
    let mut names = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let name = format!("e2e{i}");
        users::create(&db, &name, &format!("{name}@example.com"), hash.clone()).await?;
        names.push(name);
    }
    db.close().await?;
    let programs = Programs {
        database,
        ..programs.clone()
    };
    let mut consumer = Contestant::spawn(
        Kind::Chat,
        &programs,
        &engine.center_host(),
        cores.contestant,
        0,
    )?;
    let ready = tokio::time::timeout(
        Duration::from_secs(30),
        engine.wait_for_consumers("chat", NODES),
    )
    .await;
    if ready.is_err() {
        consumer.check_alive()?;
        anyhow::bail!("chat-consumer did not start consuming");
    }
    let chat_addrs: Vec<_> = engine.nodes().iter().map(|n| n.chat_addr).collect();
    // The browsers get their own runtime, on any core, as browsers elsewhere would be.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("browsers".into())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(browsers(names, chat_addrs)));
            let _ = tx.send(outcome);
        })?;
    let outcome = rx.await.context("the browser thread panicked");
    consumer.stop().await?;
    engine.shutdown().await;
    outcome?
}

/// Messages sent and deliveries received by all clients, for the drain.
#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    delivered: AtomicU64,
}

struct Tally {
    latencies: Vec<Duration>,
    deliveries: u64,
    messages: u64,
}

async fn browsers(
    names: Vec<String>,
    chat_addrs: Vec<std::net::SocketAddr>,
) -> anyhow::Result<EndToEnd> {
    let setup_started = Instant::now();
    // Connect and log in, a few hundred at a time.
    let mut joined = Vec::with_capacity(names.len());
    for chunk in names.chunks(250).enumerate() {
        let (c, chunk) = chunk;
        let mut logins = tokio::task::JoinSet::new();
        for (j, name) in chunk.iter().enumerate() {
            let i = c * 250 + j;
            let addr = chat_addrs[i % chat_addrs.len()];
            let name = name.clone();
            logins.spawn(async move { join(i, name, addr).await });
        }
        while let Some(result) = logins.join_next().await {
            joined.push(result??);
        }
    }
    joined.sort_by_key(|(i, _)| *i);
    let setup_s = setup_started.elapsed().as_secs_f64();
    eprintln!(
        "end to end: {} clients logged in and joined in {setup_s:.1} s",
        joined.len()
    );

    let tally = Arc::new(Mutex::new(Tally {
        latencies: Vec::new(),
        deliveries: 0,
        messages: 0,
    }));
    let base = Instant::now();
    let measure_from = base + WARMUP;
    let stop_at = base + TRAFFIC;
    let totals = Arc::new(Totals::default());
    let mut clients = tokio::task::JoinSet::new();
    for (i, browser) in joined {
        let tally = Arc::clone(&tally);
        let totals = Arc::clone(&totals);
        clients.spawn(traffic(
            i,
            browser,
            base,
            measure_from,
            stop_at,
            tally,
            totals,
        ));
    }
    while let Some(result) = clients.join_next().await {
        result??;
    }
    let tally = Arc::try_unwrap(tally)
        .map_err(|_| anyhow::anyhow!("a client task outlived the run"))?
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a client task panicked"))?;
    let measured = (TRAFFIC - WARMUP).as_secs_f64();
    anyhow::ensure!(
        tally.deliveries == tally.messages * ROOM as u64,
        "{} deliveries arrived of {} owed",
        tally.deliveries,
        tally.messages * ROOM as u64
    );
    Ok(EndToEnd {
        clients: names.len(),
        rooms: names.len() / ROOM,
        setup_s,
        messages_per_s: tally.messages as f64 / measured,
        deliveries_per_s: tally.deliveries as f64 / measured,
        delivery_latency: Percentiles::of(tally.latencies.iter().copied()),
        messages: tally.messages,
        deliveries: tally.deliveries,
    })
}

fn room(i: usize) -> String {
    format!("room_e{}", i / ROOM)
}

/// Connects client `i`, logs in as `name` and joins its room.
async fn join(
    i: usize,
    name: String,
    addr: std::net::SocketAddr,
) -> anyhow::Result<(usize, Browser)> {
    let mut browser = Browser::connect(addr)
        .await?
        .with_timeout(Duration::from_secs(30));
    browser
        .send_request(&ChatRequest::Auth {
            name: name.clone(),
            password: PASSWORD.to_owned(),
        })
        .await?;
    let reply: ChatReply = serde_json::from_value(browser.recv_json().await?)?;
    anyhow::ensure!(
        matches!(&reply, ChatReply::AuthSuccess { name: n, .. } if *n == name),
        "login of {name} answered {reply:?}"
    );
    browser
        .send_request(&ChatRequest::Subscribe {
            channels: vec![room(i)],
        })
        .await?;
    let reply: ChatReply = serde_json::from_value(browser.recv_json().await?)?;
    anyhow::ensure!(
        reply == ChatReply::success("subscribe"),
        "join of {name} answered {reply:?}"
    );
    Ok((i, browser))
}

/// Client `i` sends a message every [`EVERY`] (first at a phase of its own) until `stop_at`,
/// and times every room delivery from the sending moment carried in its text.
async fn traffic(
    i: usize,
    mut browser: Browser,
    base: Instant,
    measure_from: Instant,
    stop_at: Instant,
    tally: Arc<Mutex<Tally>>,
    totals: Arc<Totals>,
) -> anyhow::Result<()> {
    let phase = EVERY.mul_f64(i as f64 / CLIENTS as f64);
    let mut next = base + phase;
    let mut latencies = Vec::new();
    let (mut messages, mut deliveries, mut acks, mut sent) = (0u64, 0u64, 0u64, 0u64);
    let room = room(i);
    // Sends stop at `stop_at`; every client then reads on until all clients have every
    // delivery owed to them (or ten seconds pass, and the totals tell what was missing).
    let drain_until = stop_at + Duration::from_secs(10);
    loop {
        let sending = next < stop_at;
        let wake = if sending {
            next
        } else {
            Instant::now() + Duration::from_millis(20)
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {
                if !sending {
                    let owed = totals.sent.load(Ordering::Relaxed) * ROOM as u64;
                    if (acks == sent && totals.delivered.load(Ordering::Relaxed) >= owed)
                        || Instant::now() > drain_until
                    {
                        break;
                    }
                    continue;
                }
                let micros = u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX);
                let text = format!("e2e {i} {micros} \"quoted\" ünïcødé");
                totals.sent.fetch_add(1, Ordering::Relaxed);
                browser.send_request(&ChatRequest::SendToRoom { room: room.clone(), text }).await?;
                sent += 1;
                // Counted by the sending moment, exactly as its deliveries are.
                if base + Duration::from_micros(micros) >= measure_from {
                    messages += 1;
                }
                next += EVERY;
            }
            reply = browser.recv_json() => {
                let arrived = Instant::now();
                let reply: ChatReply = serde_json::from_value(reply?)?;
                match reply {
                    ChatReply::Delivery(delivery) => {
                        let text = delivery.text.unwrap_or_default();
                        let micros: u64 = text.split(' ').nth(2).and_then(|m| m.parse().ok()).context("a delivery without its sending time")?;
                        totals.delivered.fetch_add(1, Ordering::Relaxed);
                        let sent_at = base + Duration::from_micros(micros);
                        if sent_at >= measure_from {
                            deliveries += 1;
                            latencies.push(arrived.saturating_duration_since(sent_at));
                        }
                    }
                    ChatReply::Success { .. } => acks += 1,
                    other => anyhow::bail!("client {i} got {other:?}"),
                }
            }
        }
    }
    anyhow::ensure!(
        acks == sent,
        "client {i}: {acks} of {sent} messages acknowledged"
    );
    let mut tally = tally
        .lock()
        .map_err(|_| anyhow::anyhow!("tally poisoned"))?;
    tally.latencies.extend(latencies);
    tally.deliveries += deliveries;
    tally.messages += messages;
    Ok(())
}

//! `--soak <minutes>`: steady chat traffic with connection churn through the mock engine and a
//! real `chat-consumer`, sampling the consumer's resident memory, file descriptors and threads
//! every ten seconds; the run fails if any of them keeps growing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chat_consumer::service::password::Hasher;
use chat_consumer::{db, service::users};
use connmix_mock::browser::Browser;
use connmix_mock::{MockConfig, MockEngine};
use connmix_protocol::chat::{ChatReply, ChatRequest};
use serde::Serialize;

use crate::contestant::{Contestant, Kind, Programs};
use crate::harness::NODES;
use crate::run::Cores;

/// Users the sessions log in as.
const USERS: usize = 200;
/// Sessions open at any moment: each logs in, joins a room, chats, closes, and starts over.
const SESSIONS: usize = 100;
/// Messages one session sends before it closes.
const MESSAGES: usize = 20;
/// Time between one session's messages (so about 1,000 messages/s in all).
const EVERY: Duration = Duration::from_millis(100);
/// Users per room.
const ROOM: usize = 10;
/// The longest wait for one reply.
const REPLY: Duration = Duration::from_secs(10);
const PASSWORD: &str = "soak-password";

/// One reading of the consumer's resources.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Sample {
    /// Seconds since traffic started.
    pub at_s: f64,
    /// Resident memory (`VmRSS`), MiB.
    pub rss_mib: f64,
    /// Open file descriptors.
    pub fds: usize,
    /// Threads.
    pub threads: usize,
    /// Sessions closed so far.
    pub sessions: u64,
    /// Messages answered so far.
    pub messages: u64,
}

/// What a soak run saw.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    /// How long traffic ran, minutes.
    pub minutes: f64,
    /// The readings, in order.
    pub samples: Vec<Sample>,
    /// Messages that got no answer.
    pub unanswered: u64,
    /// What grew, empty when nothing did.
    pub grew: Vec<String>,
}

impl Soak {
    /// `soak: <min> min, <n> sessions, <m> messages, RSS a->b MiB, fds a->b, threads a->b: steady`.
    pub fn line(&self) -> String {
        let (first, last) = match (self.samples.first(), self.samples.last()) {
            (Some(f), Some(l)) => (*f, *l),
            _ => return "soak: no samples".to_owned(),
        };
        format!(
            "soak: {:.1} min, {} sessions, {} messages ({} unanswered), RSS {:.1}->{:.1} MiB, fds {}->{}, threads {}->{}: {}",
            self.minutes,
            last.sessions,
            last.messages,
            self.unanswered,
            first.rss_mib,
            last.rss_mib,
            first.fds,
            last.fds,
            first.threads,
            last.threads,
            if self.grew.is_empty() {
                "steady".to_owned()
            } else {
                format!("GREW ({})", self.grew.join("; "))
            }
        )
    }

    /// The BENCHMARKS.md section.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "\n### Soak\n\n`{}`\n\n| at s | RSS MiB | fds | threads | sessions | messages |\n|---|---|---|---|---|---|\n",
            self.line()
        );
        for s in &self.samples {
            md.push_str(&format!(
                "| {:.0} | {:.1} | {} | {} | {} | {} |\n",
                s.at_s, s.rss_mib, s.fds, s.threads, s.sessions, s.messages
            ));
        }
        md
    }
}

/// What kept growing between the second quarter of the samples (after the warm-up) and the
/// last quarter, compared by medians: memory by more than a quarter plus 4 MiB, descriptors by
/// more than 16, threads by more than 4. Fewer than eight samples say nothing.
pub fn growth(samples: &[Sample]) -> Vec<String> {
    if samples.len() < 8 {
        return Vec::new();
    }
    let q = samples.len() / 4;
    let (early, late) = (&samples[q..2 * q], &samples[samples.len() - q..]);
    let median = |part: &[Sample], f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = part.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut grew = Vec::new();
    let (rss0, rss1) = (median(early, |s| s.rss_mib), median(late, |s| s.rss_mib));
    if rss1 > rss0 * 1.25 + 4.0 {
        grew.push(format!("RSS {rss0:.1} -> {rss1:.1} MiB"));
    }
    let (fd0, fd1) = (
        median(early, |s| s.fds as f64),
        median(late, |s| s.fds as f64),
    );
    if fd1 > fd0 + 16.0 {
        grew.push(format!("fds {fd0} -> {fd1}"));
    }
    let (t0, t1) = (
        median(early, |s| s.threads as f64),
        median(late, |s| s.threads as f64),
    );
    if t1 > t0 + 4.0 {
        grew.push(format!("threads {t0} -> {t1}"));
    }
    grew
}

/// Counters the sessions share.
#[derive(Default)]
struct Totals {
    sessions: AtomicU64,
    messages: AtomicU64,
    unanswered: AtomicU64,
}

/// Runs the soak for `duration`.
pub async fn run(programs: &Programs, cores: Cores, duration: Duration) -> anyhow::Result<Soak> {
    let engine = MockEngine::start(MockConfig {
        nodes: NODES,
        topic_size: 100_000,
        ..MockConfig::ephemeral()
    })
    .await?;
    let database = programs.database.with_file_name("soak-users.sqlite");
    let _ = std::fs::remove_file(&database);
    let db = db::connect(&format!("sqlite://{}?mode=rwc", database.display())).await?;
    db::migrate(&db).await?;
    let hash = Hasher::with_cost(64, 1, 1)?.hash(PASSWORD).await?;
    for i in 0..USERS {
        let name = format!("soak{i}");
        users::create(&db, &name, &format!("{name}@example.com"), hash.clone()).await?;
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
    if tokio::time::timeout(
        Duration::from_secs(30),
        engine.wait_for_consumers("chat", NODES),
    )
    .await
    .is_err()
    {
        consumer.check_alive()?;
        anyhow::bail!("chat-consumer did not start consuming");
    }
    let addrs: Vec<_> = engine.nodes().iter().map(|n| n.chat_addr).collect();
    let totals = Arc::new(Totals::default());
    let stop = tokio_util::sync::CancellationToken::new();
    // The sessions get their own runtime, as browsers elsewhere would.
    let browsers = {
        let (totals, stop) = (Arc::clone(&totals), stop.clone());
        std::thread::Builder::new()
            .name("soak-browsers".into())
            .spawn(move || -> anyhow::Result<()> {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    for slot in 0..SESSIONS {
                        let (totals, stop, addrs) =
                            (Arc::clone(&totals), stop.clone(), addrs.clone());
                        tasks.spawn(sessions(slot, addrs, totals, stop));
                    }
                    while let Some(done) = tasks.join_next().await {
                        done??;
                    }
                    anyhow::Ok(())
                })
            })?
    };
    let every = Duration::from_secs(10).min(duration / 8);
    let started = Instant::now();
    let mut samples = Vec::new();
    let sampled = async {
        loop {
            tokio::time::sleep(every).await;
            consumer.check_alive()?;
            samples.push(sample(&consumer, started, &totals)?);
            if started.elapsed() >= duration {
                return anyhow::Ok(());
            }
        }
    }
    .await;
    stop.cancel();
    let sessions = tokio::task::spawn_blocking(move || browsers.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the session thread panicked"))?;
    consumer.stop().await?;
    engine.shutdown().await;
    sampled?;
    sessions.context("the sessions")?;
    let grew = growth(&samples);
    Ok(Soak {
        minutes: started.elapsed().as_secs_f64() / 60.0,
        samples,
        unanswered: totals.unanswered.load(Ordering::Relaxed),
        grew,
    })
}

fn sample(consumer: &Contestant, started: Instant, totals: &Totals) -> anyhow::Result<Sample> {
    let pid = consumer.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let field = |name: &str| -> usize {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot list /proc/{pid}/fd"))?
        .count();
    Ok(Sample {
        at_s: started.elapsed().as_secs_f64(),
        rss_mib: field("VmRSS:") as f64 / 1024.0,
        fds,
        threads: field("Threads:"),
        sessions: totals.sessions.load(Ordering::Relaxed),
        messages: totals.messages.load(Ordering::Relaxed),
    })
}

/// One slot's sessions, one after another until `stop`: log in as a user of its own, join a
/// room, send [`MESSAGES`] messages each awaited, close.
async fn sessions(
    slot: usize,
    addrs: Vec<std::net::SocketAddr>,
    totals: Arc<Totals>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut round = 0usize;
    while !stop.is_cancelled() {
        // Slots take turns over the users, so a user's sessions overlap now and then.
        let user = (slot + round * SESSIONS) % USERS;
        let addr = addrs[(slot + round) % addrs.len()];
        round += 1;
        let mut browser = Browser::connect(addr).await?.with_timeout(REPLY);
        let name = format!("soak{user}");
        let room = format!("room_soak{}", user / ROOM);
        browser
            .send_request(&ChatRequest::Auth {
                name: name.clone(),
                password: PASSWORD.to_owned(),
            })
            .await?;
        answered(&mut browser, |r| matches!(r, ChatReply::AuthSuccess { .. }))
            .await
            .with_context(|| format!("login of {name}"))?;
        browser
            .send_request(&ChatRequest::Subscribe {
                channels: vec![room.clone()],
            })
            .await?;
        answered(&mut browser, |r| *r == ChatReply::success("subscribe"))
            .await
            .with_context(|| format!("{name} joining {room}"))?;
        for n in 0..MESSAGES {
            if stop.is_cancelled() {
                break;
            }
            tokio::time::sleep(EVERY).await;
            browser
                .send_request(&ChatRequest::SendToRoom {
                    room: room.clone(),
                    text: format!("soak {slot} {n}"),
                })
                .await?;
            match answered(&mut browser, |r| *r == ChatReply::success("sendtoroom")).await {
                Ok(()) => totals.messages.fetch_add(1, Ordering::Relaxed),
                Err(_) => totals.unanswered.fetch_add(1, Ordering::Relaxed),
            };
        }
        let _ = browser.close().await;
        totals.sessions.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Reads until a reply `wanted` accepts, skipping the room's deliveries.
async fn answered(
    browser: &mut Browser,
    wanted: impl Fn(&ChatReply) -> bool,
) -> anyhow::Result<()> {
    loop {
        let value = browser.recv_json().await?;
        if let Ok(reply) = serde_json::from_value::<ChatReply>(value.clone()) {
            if wanted(&reply) {
                return Ok(());
            }
        }
        // A delivery (it has `from` and `data`) or another connection's join: not the answer.
        anyhow::ensure!(
            value.get("data").is_some() || value.get("event").is_some(),
            "an unexpected frame: {value}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rss: impl Fn(usize) -> f64, fds: impl Fn(usize) -> usize) -> Vec<Sample> {
        (0..12)
            .map(|i| Sample {
                at_s: i as f64 * 10.0,
                rss_mib: rss(i),
                fds: fds(i),
                threads: 6,
                sessions: i as u64 * 10,
                messages: i as u64 * 100,
            })
            .collect()
    }

    #[test]
    fn steady_use_with_noise_and_a_warm_up_is_not_growth() {
        let s = samples(
            |i| if i == 0 { 8.0 } else { 20.0 + (i % 3) as f64 },
            |i| 30 + i % 4,
        );
        assert_eq!(growth(&s), Vec::<String>::new());
    }

    #[test]
    fn memory_or_descriptors_that_keep_rising_are_growth() {
        let leak = samples(|i| 20.0 + 3.0 * i as f64, |_| 30);
        assert_eq!(growth(&leak).len(), 1, "{:?}", growth(&leak));
        assert!(growth(&leak)[0].starts_with("RSS"));
        let fds = samples(|_| 20.0, |i| 30 + 10 * i);
        assert!(growth(&fds)[0].starts_with("fds"), "{:?}", growth(&fds));
    }
}

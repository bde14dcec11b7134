//! What each contestant costs on its own: CPU per event against the stand-in engine, and
//! instructions per event under callgrind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use tokio::process::Command;

use crate::contestant::{Contestant, Kind, Programs};
use crate::harness::NODES;
use crate::run::{answers, Cores, Throughput};
use crate::standin::{Feed, RedisShape, Standin};
use crate::workload::Population;

/// How long the stand-in waits for a reply that is owed before calling it missing.
const QUIET: Duration = Duration::from_secs(10);
/// The same under valgrind, where everything is 20–100 times slower.
const QUIET_UNDER_VALGRIND: Duration = Duration::from_secs(120);

/// How a contestant is started against the stand-in.
struct Launch<'a> {
    /// A command it runs under (valgrind), or nothing.
    wrapper: &'a [String],
    /// Arguments after its own.
    extra: &'a [String],
    /// Where the stand-in puts the mix.
    feed: Feed,
    /// How long it may take to consume on every node.
    timeout: Duration,
}

/// Starts a stand-in and `kind` against it, waits until it consumes on every node.
async fn start(
    kind: Kind,
    programs: &Programs,
    pop: &Arc<Population>,
    cores: Cores,
    launch: Launch<'_>,
) -> anyhow::Result<(Standin, Contestant)> {
    let timeout = launch.timeout;
    let standin = Standin::start_with(Arc::clone(pop), answers(kind), cores.engine, launch.feed)?;
    let mut proc = Contestant::spawn_under(
        kind,
        programs,
        &standin.center_host(),
        cores.contestant,
        0,
        launch.wrapper,
        launch.extra,
    )?;
    {
        let ready = standin.wait_for_consumers(NODES, timeout);
        tokio::pin!(ready);
        loop {
            tokio::select! {
                ready = &mut ready => break ready?,
                _ = tokio::time::sleep(Duration::from_millis(100)) => proc.check_alive()?,
            }
        }
    }
    Ok((standin, proc))
}

/// Closed-loop throughput of `kind` against a fresh stand-in: its CPU per event, and the
/// stand-in's.
pub async fn throughput(
    kind: Kind,
    programs: &Programs,
    pop: &Arc<Population>,
    cores: Cores,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<Throughput> {
    let launch = Launch {
        wrapper: &[],
        extra: &[],
        feed: Feed::Engine,
        timeout: Duration::from_secs(30),
    };
    closed_loop(kind, programs, pop, cores, launch, warmup, measure, None)
        .await
        .map(|(throughput, _)| throughput)
}

/// Closed-loop throughput of `kind` started as `launch` says, against a fresh stand-in; with
/// `redis`, the CPU the Redis server (process `redis`) spent per event too.
#[allow(clippy::too_many_arguments)]
async fn closed_loop(
    kind: Kind,
    programs: &Programs,
    pop: &Arc<Population>,
    cores: Cores,
    launch: Launch<'_>,
    warmup: Duration,
    measure: Duration,
    redis: Option<&str>,
) -> anyhow::Result<(Throughput, Option<f64>)> {
    let redis_cpu = || -> anyhow::Result<Option<Duration>> {
        redis
            .map(|pid| crate::contestant::usage(pid).map(|u| u.cpu))
            .transpose()
    };
    let (standin, proc) = start(kind, programs, pop, cores, launch).await?;
    let measured = async {
        standin.allow(u64::MAX);
        tokio::time::sleep(warmup).await;
        let before = (
            standin.completed(),
            proc.usage()?,
            standin.usage()?,
            Instant::now(),
            redis_cpu()?,
        );
        tokio::time::sleep(measure).await;
        let after = (
            standin.completed(),
            proc.usage()?,
            standin.usage()?,
            Instant::now(),
            redis_cpu()?,
        );
        standin.pause();
        standin.drained(QUIET).await?;
        anyhow::Ok((before, after))
    }
    .await;
    let calls = standin.calls() as f64 / standin.completed().max(1) as f64;
    proc.stop().await?;
    standin.shutdown();
    let (before, after) = measured?;
    let wall = (after.3 - before.3).as_secs_f64();
    let events = (after.0 - before.0) as f64;
    let cpu = (after.1.cpu - before.1.cpu).as_secs_f64();
    let engine = (after.2.cpu - before.2.cpu).as_secs_f64();
    let redis_us = after
        .4
        .zip(before.4)
        .map(|(a, b)| (a - b).as_secs_f64() * 1e6 / events.max(1.0));
    let throughput = Throughput {
        contestant: kind,
        processes: 1,
        events_per_s: events / wall,
        cpu_us_per_event: cpu * 1e6 / events.max(1.0),
        cpu_share: cpu / wall,
        engine_cpu_share: engine / wall,
        engine_cpu_us_per_event: engine * 1e6 / events.max(1.0),
        peak_rss_mib: after.1.peak_rss as f64 / (1024.0 * 1024.0),
        calls_per_event: calls,
        calls_per_s: events / wall * calls,
    };
    Ok((throughput, redis_us))
}

/// Instructions per event of one contestant, from callgrind.
#[derive(Debug, Clone, Serialize)]
pub struct Instructions {
    /// The contestant.
    pub contestant: Kind,
    /// The queue source chat-consumer took the mix from, in a `--sources` run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Events between zeroing the counters and dumping them.
    pub events: u64,
    /// Instructions (callgrind's `Ir`, every thread) in that window.
    pub instructions: u64,
    /// `instructions / events`.
    pub per_event: f64,
    /// The dump read.
    pub dump: PathBuf,
}

/// Runs `kind` under callgrind against the stand-in, closed loop: `warmup` events answered
/// in full, then (the contestant idle) its counters zeroed, exactly `events` more answered in
/// full, and a dump; instructions per event are the dump's total over `events`. vgdb delivers
/// the zero and the dump to a process blocked in a system call, so nothing is in flight at
/// either end; what the window holds beyond the events is idle waiting.
pub async fn instructions(
    kind: Kind,
    programs: &Programs,
    pop: &Arc<Population>,
    cores: Cores,
    warmup: u64,
    events: u64,
) -> anyhow::Result<Instructions> {
    count(
        kind,
        kind.label(),
        programs,
        pop,
        cores,
        (warmup, events),
        &[],
        Feed::Engine,
    )
    .await
}

/// As [`instructions`], for chat-consumer taking the mix from `source` (Redis at `url`; the
/// Redis server's own instructions are not counted). The keys it used are removed afterwards.
pub async fn source_instructions(
    source: Source,
    url: &str,
    programs: &Programs,
    pop: &Arc<Population>,
    cores: Cores,
    warmup: u64,
    events: u64,
) -> anyhow::Result<Instructions> {
    let (key, extra, feed) = setup(source, url);
    let label = format!("chat-{}", source.label().replace(' ', ""));
    let counted = count(
        Kind::Chat,
        &label,
        programs,
        pop,
        cores,
        (warmup, events),
        &extra,
        feed,
    )
    .await;
    if source != Source::Engine {
        forget(url, &key).await?;
    }
    counted.map(|counted| Instructions {
        source: Some(source),
        ..counted
    })
}

#[allow(clippy::too_many_arguments)]
async fn count(
    kind: Kind,
    label: &str,
    programs: &Programs,
    pop: &Arc<Population>,
    cores: Cores,
    (warmup, events): (u64, u64),
    extra: &[String],
    feed: Feed,
) -> anyhow::Result<Instructions> {
    let prefix = programs.logs.join(format!("callgrind.{label}"));
    remove_dumps(&prefix);
    let wrapper = vec![
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        "--quiet".to_owned(),
        format!("--callgrind-out-file={}.%p", prefix.display()),
    ];
    let launch = Launch {
        wrapper: &wrapper,
        extra,
        feed,
        timeout: Duration::from_secs(300),
    };
    let (standin, proc) = start(kind, programs, pop, cores, launch).await?;
    let measured = async {
        standin.allow(warmup);
        standin.drained(QUIET_UNDER_VALGRIND).await?;
        control(proc.pid(), "--zero").await?;
        let first = standin.completed();
        standin.allow(events);
        standin.drained(QUIET_UNDER_VALGRIND).await?;
        control(proc.pid(), "--dump").await?;
        anyhow::Ok(standin.completed() - first)
    }
    .await;
    proc.stop().await?;
    standin.shutdown();
    let counted = measured?;
    let dump = newest_dump(&prefix)?;
    let instructions = total_ir(&dump)?;
    Ok(Instructions {
        contestant: kind,
        source: None,
        events: counted,
        instructions,
        per_event: instructions as f64 / counted.max(1) as f64,
        dump,
    })
}

impl Instructions {
    /// The contestant's name, with its source in a `--sources` run (`chat-redis-stream`).
    pub fn label(&self) -> String {
        match self.source {
            Some(source) => format!("chat-{}", source.label().replace(' ', "")),
            None => self.contestant.label().to_owned(),
        }
    }
}

/// `callgrind_control <what> <pid>`, which returns once callgrind has done it.
async fn control(pid: u32, what: &str) -> anyhow::Result<()> {
    let out = Command::new("callgrind_control")
        .arg(what)
        .arg(pid.to_string())
        .output()
        .await
        .context("cannot run callgrind_control (is valgrind installed?)")?;
    anyhow::ensure!(
        out.status.success(),
        "callgrind_control {what} {pid} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Files callgrind wrote for `prefix`: `<prefix>.<pid>` at exit, `<prefix>.<pid>.<n>` for
/// each dump, with what follows `<prefix>.`.
fn dumps(prefix: &Path) -> Vec<(PathBuf, String)> {
    let (Some(dir), Some(name)) = (prefix.parent(), prefix.file_name()) else {
        return Vec::new();
    };
    let lead = format!("{}.", name.to_string_lossy());
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let file = e.file_name().to_string_lossy().into_owned();
                    let rest = file.strip_prefix(&lead)?.to_owned();
                    Some((e.path(), rest))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn remove_dumps(prefix: &Path) {
    for (dump, _) in dumps(prefix) {
        let _ = std::fs::remove_file(dump);
    }
}

/// The dump `--dump` wrote: the newest file with a dump number after the pid.
fn newest_dump(prefix: &Path) -> anyhow::Result<PathBuf> {
    dumps(prefix)
        .into_iter()
        .filter_map(|(path, rest)| {
            let (_, n) = rest.split_once('.')?;
            Some((n.parse::<u32>().ok()?, path))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, path)| path)
        .with_context(|| format!("no callgrind dump beside {}", prefix.display()))
}

/// The `Ir` total of a callgrind dump (its `summary:` or `totals:` line).
pub fn total_ir(dump: &Path) -> anyhow::Result<u64> {
    let text =
        std::fs::read_to_string(dump).with_context(|| format!("cannot read {}", dump.display()))?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no total in {}", dump.display()))
}

/// Where chat-consumer takes the mix from in [`source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The engine's memory queue (`--source engine`, the default), no Redis.
    Engine,
    /// The same with `--redis-url`: the per-user rate limit kept on Redis, shared by
    /// consumers.
    EngineSharedRate,
    /// `--source redis-list`: `BRPOP` from a list, at most once.
    RedisList,
    /// `--source redis-stream`: a consumer group, `XACK` after the answer, a `SET NX` before
    /// each publish; at least once, published once.
    RedisStream,
}

impl Source {
    /// Every source, in the order a round measures them.
    pub const ALL: [Source; 4] = [
        Source::Engine,
        Source::EngineSharedRate,
        Source::RedisList,
        Source::RedisStream,
    ];

    /// The name used in reports.
    pub fn label(self) -> &'static str {
        match self {
            Source::Engine => "engine",
            Source::EngineSharedRate => "engine + shared rate",
            Source::RedisList => "redis-list",
            Source::RedisStream => "redis-stream",
        }
    }
}

/// chat-consumer's own cost on one source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceCost {
    /// The source.
    pub source: Source,
    /// Events answered per second, closed loop.
    pub events_per_s: f64,
    /// chat-consumer's CPU per event, microseconds.
    pub cpu_us_per_event: f64,
    /// chat-consumer's CPU over wall time (1.0 = its core busy).
    pub cpu_share: f64,
    /// The stand-in's CPU per event (its Redis writes included), microseconds.
    pub standin_cpu_us_per_event: f64,
    /// The Redis server's CPU per event, microseconds; `None` without Redis or when its
    /// process cannot be read (not on this machine).
    pub redis_cpu_us_per_event: Option<f64>,
    /// Engine calls per event.
    pub calls_per_event: f64,
    /// chat-consumer's peak resident memory, MiB.
    pub peak_rss_mib: f64,
}

/// chat-consumer's closed-loop throughput and CPU taking the mix from `source`, with Redis at
/// `url`; the keys it used are removed afterwards.
pub async fn source(
    source: Source,
    url: &str,
    programs: &Programs,
    pop: &Arc<Population>,
    cores: Cores,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<SourceCost> {
    let (key, extra, feed) = setup(source, url);
    let redis_pid = match source {
        Source::Engine => None,
        _ => redis_pid(url).await?,
    };
    let launch = Launch {
        wrapper: &[],
        extra: &extra,
        feed,
        timeout: Duration::from_secs(30),
    };
    let measured = closed_loop(
        Kind::Chat,
        programs,
        pop,
        cores,
        launch,
        warmup,
        measure,
        redis_pid.as_deref(),
    )
    .await;
    if source != Source::Engine {
        forget(url, &key).await?;
    }
    let (t, redis_cpu_us_per_event) = measured?;
    Ok(SourceCost {
        source,
        events_per_s: t.events_per_s,
        cpu_us_per_event: t.cpu_us_per_event,
        cpu_share: t.cpu_share,
        standin_cpu_us_per_event: t.engine_cpu_us_per_event,
        redis_cpu_us_per_event,
        calls_per_event: t.calls_per_event,
        peak_rss_mib: t.peak_rss_mib,
    })
}

/// A fresh Redis key for one measurement, chat-consumer's arguments and the stand-in's feed
/// for `source`.
fn setup(source: Source, url: &str) -> (String, Vec<String>, Feed) {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let key = format!(
        "connmix-bench:{}:{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let redis_args = |source: &str| -> Vec<String> {
        vec![
            "--source".into(),
            source.into(),
            "--redis-url".into(),
            url.into(),
            "--queue".into(),
            key.clone(),
        ]
    };
    let redis_feed = |shape| Feed::Redis {
        url: url.to_owned(),
        key: key.clone(),
        shape,
    };
    let (extra, feed) = match source {
        Source::Engine => (Vec::new(), Feed::Engine),
        Source::EngineSharedRate => (vec!["--redis-url".into(), url.into()], Feed::Engine),
        Source::RedisList => (redis_args("redis-list"), redis_feed(RedisShape::List)),
        Source::RedisStream => (redis_args("redis-stream"), redis_feed(RedisShape::Stream)),
    };
    (key, extra, feed)
}

/// A blocking Redis connection for the controller's few commands, off the runtime's thread.
async fn with_redis<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T> + Send + 'static,
) -> anyhow::Result<T> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let shown = crate::standin::redact(&url);
        let mut conn = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .with_context(|| format!("Redis is not reachable at {shown}"))?;
        f(&mut conn).with_context(|| format!("Redis at {shown}"))
    })
    .await?
}

/// Fails, saying where, unless Redis answers `PING` at `url`.
pub async fn check_redis(url: &str) -> anyhow::Result<()> {
    with_redis(url, |c| redis::cmd("PING").query::<()>(c)).await
}

/// The Redis server's process id, when it runs on this machine.
async fn redis_pid(url: &str) -> anyhow::Result<Option<String>> {
    let info: String = with_redis(url, |c| redis::cmd("INFO").arg("server").query(c)).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .map(|pid| pid.trim().to_owned())
        .filter(|pid| Path::new(&format!("/proc/{pid}/stat")).exists()))
}

/// Removes `key` and every `key:*` (dead letters, the published-once records).
async fn forget(url: &str, key: &str) -> anyhow::Result<()> {
    let key = key.to_owned();
    with_redis(url, move |c| {
        let pattern = format!("{key}:*");
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(10_000)
                .query(c)?;
            if !keys.is_empty() {
                redis::cmd("UNLINK").arg(&keys).query::<()>(c)?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        redis::cmd("UNLINK").arg(&key).query::<()>(c)
    })
    .await
}

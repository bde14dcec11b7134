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
use crate::standin::Standin;
use crate::workload::Population;

/// How long the stand-in waits for a reply that is owed before calling it missing.
const QUIET: Duration = Duration::from_secs(10);
/// The same under valgrind, where everything is 20–100 times slower.
const QUIET_UNDER_VALGRIND: Duration = Duration::from_secs(120);

/// Starts a stand-in and `kind` against it, waits until it consumes on every node.
async fn start(
    kind: Kind,
    programs: &Programs,
    pop: &Arc<Population>,
    cores: Cores,
    wrapper: &[String],
    timeout: Duration,
) -> anyhow::Result<(Standin, Contestant)> {
    let standin = Standin::start(Arc::clone(pop), answers(kind), cores.engine)?;
    let mut proc = Contestant::spawn_under(
        kind,
        programs,
        &standin.center_host(),
        cores.contestant,
        0,
        wrapper,
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
    let (standin, proc) = start(kind, programs, pop, cores, &[], Duration::from_secs(30)).await?;
    let measured = async {
        standin.allow(u64::MAX);
        tokio::time::sleep(warmup).await;
        let before = (
            standin.completed(),
            proc.usage()?,
            standin.usage()?,
            Instant::now(),
        );
        tokio::time::sleep(measure).await;
        let after = (
            standin.completed(),
            proc.usage()?,
            standin.usage()?,
            Instant::now(),
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
    Ok(Throughput {
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
    })
}

/// Instructions per event of one contestant, from callgrind.
#[derive(Debug, Clone, Serialize)]
pub struct Instructions {
    /// The contestant.
    pub contestant: Kind,
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
    let prefix = programs.logs.join(format!("callgrind.{}", kind.label()));
    remove_dumps(&prefix);
    let wrapper = vec![
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        "--quiet".to_owned(),
        format!("--callgrind-out-file={}.%p", prefix.display()),
    ];
    let (standin, proc) = start(
        kind,
        programs,
        pop,
        cores,
        &wrapper,
        Duration::from_secs(300),
    )
    .await?;
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
        events: counted,
        instructions,
        per_event: instructions as f64 / counted.max(1) as f64,
        dump,
    })
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

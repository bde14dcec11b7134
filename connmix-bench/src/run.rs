//! The benchmark run: contestants in turn against one engine, phase by phase.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::checker::{Class, Percentiles};
use crate::contestant::{self, Contestant, Kind, Programs, Usage};
use crate::harness::{Harness, NODES};
use crate::report::{self, Report};
use crate::workload::Answers;
use crate::RunArgs;

/// Logins in the storm (full runs).
const STORM_LOGINS: usize = 200;
/// Logins in the storm of a quick run.
const QUICK_STORM_LOGINS: usize = 50;
/// How long after the storm's last login the contestant's memory is read again.
const AFTER_STORM: Duration = Duration::from_secs(10);
/// Events answered before the instruction counters are zeroed.
const INSTRUCTION_WARMUP: u64 = 2_000;
/// Offered rates of the latency ladder, as fractions of each contestant's measured maximum.
const LADDER: [f64; 7] = [0.1, 0.25, 0.5, 0.7, 0.85, 1.0, 1.2];
/// Consumer processes in the scaling run.
const SCALING: [usize; 3] = [1, 2, 4];
/// The share of a step's events that must be answered by the step's end for it to count as
/// kept up.
const KEPT_UP: f64 = 0.95;
/// How long the run waits for a reply that is owed before calling it missing.
const QUIET: Duration = Duration::from_secs(10);

/// The cores: the engine side on the first, contestants on the second.
#[derive(Debug, Clone, Copy)]
pub struct Cores {
    /// The mock engine, its pusher and its checker.
    pub engine: Option<core_affinity::CoreId>,
    /// Contestant processes.
    pub contestant: Option<usize>,
}

/// Runs the benchmark described by `args` on its own runtime.
pub fn main(args: RunArgs) -> anyhow::Result<()> {
    // Checked before anything starts, so bad options leave nothing behind.
    anyhow::ensure!(
        args.seconds.is_finite() && args.seconds > 0.0,
        "--seconds must be a positive number of seconds, not {}",
        args.seconds
    );
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    if let Some(minutes) = args.soak {
        anyhow::ensure!(
            minutes.is_finite() && minutes > 0.0,
            "--soak must be a positive number of minutes, not {minutes}"
        );
    }
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    let cores = if ids.len() >= 2 {
        Cores {
            engine: Some(ids[0]),
            contestant: Some(ids[1].id),
        }
    } else {
        eprintln!("warning: fewer than two cores; nothing is pinned");
        Cores {
            engine: None,
            contestant: None,
        }
    };
    let engine_core = cores.engine;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start(move || {
            if let Some(core) = engine_core {
                core_affinity::set_for_current(core);
            }
        })
        .build()?;
    runtime.block_on(run(args, cores))
}

/// One throughput measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// The contestant.
    pub contestant: Kind,
    /// Its processes.
    pub processes: usize,
    /// Events answered per second.
    pub events_per_s: f64,
    /// Contestant CPU time per event, microseconds.
    pub cpu_us_per_event: f64,
    /// Contestant CPU time over wall time (1.0 = one core busy).
    pub cpu_share: f64,
    /// The engine side's (engine, pusher, checker) CPU time over wall time.
    pub engine_cpu_share: f64,
    /// The engine side's CPU time per event, microseconds: what one event costs the mock
    /// engine (or the stand-in) and the benchmark's own pusher and checker.
    pub engine_cpu_us_per_event: f64,
    /// Peak resident memory of the largest contestant process, MiB.
    pub peak_rss_mib: f64,
    /// Engine API calls (`mesh.send`, `mesh.publish`, `conn.call`) the contestant made per
    /// event, counted by the engine over the whole phase.
    pub calls_per_event: f64,
    /// Engine API calls per second: `events_per_s * calls_per_event`.
    pub calls_per_s: f64,
}

/// One step of an open-loop run.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Events pushed per second.
    pub offered_per_s: f64,
    /// Latency from when each event was due to its answer.
    pub latency: Percentiles,
    /// Whether at least 95% of the step's events were answered by the time the last fell due.
    pub kept_up: bool,
}

/// A contestant's latency ladder.
#[derive(Debug, Clone, Serialize)]
pub struct Ladder {
    /// The contestant.
    pub contestant: Kind,
    /// Its steps, slowest first; the ladder stops at the first step it could not keep up with.
    pub steps: Vec<Step>,
    /// The highest offered rate with p99 under 10 ms.
    pub max_rate_p99_under_10ms: Option<f64>,
}

/// The login storm.
#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    /// chat-consumer's resident memory before the storm, MiB (`VmRSS`).
    pub rss_before_mib: f64,
    /// The most `VmRSS` seen while the storm's logins were answered (read every 50 ms), MiB.
    pub rss_during_max_mib: f64,
    /// `VmRSS` 10 s after the storm's last login was answered, MiB.
    pub rss_after_10s_mib: f64,
    /// Peak resident memory of the whole run (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// Logins pushed at once.
    pub logins: usize,
    /// Logins answered per second.
    pub logins_per_s: f64,
    /// Login latency.
    pub login_latency: Percentiles,
    /// Chat traffic offered meanwhile, per second.
    pub chat_offered_per_s: f64,
    /// Chat latency for events due during the storm.
    pub chat_during_storm: Percentiles,
    /// Chat latency for the rest of the step.
    pub chat_outside_storm: Percentiles,
}

/// What a run does, decided from its options once.
struct Plan {
    /// Contestants, in the order each round runs them.
    kinds: Vec<Kind>,
    rounds: usize,
    warmup: Duration,
    measure: Duration,
    /// Logins of the login storm (none under callgrind).
    storm: usize,
    /// Latency: the contestants with a ladder, the rates as fractions of each one's maximum,
    /// and how long each step lasts.
    ladder_kinds: Vec<Kind>,
    ladder: &'static [f64],
    step_time: Duration,
    /// Whether the scaling and end-to-end phases run.
    full: bool,
}

impl Plan {
    fn new(args: &RunArgs) -> Self {
        // Echo (connmix-client with no chat logic) tells the client crate's share of chat's
        // cost; quick runs leave it out.
        let mut kinds = if args.quick {
            vec![Kind::Floor, Kind::Chat]
        } else {
            vec![Kind::Floor, Kind::Echo, Kind::Chat]
        };
        if !args.skip_baseline {
            kinds.push(Kind::Baseline);
        }
        let (rounds, seconds) = if args.quick {
            (1, args.seconds.min(2.0))
        } else {
            (args.rounds.max(1), args.seconds)
        };
        let storm = if args.instructions || args.sources {
            0
        } else if args.quick {
            QUICK_STORM_LOGINS
        } else {
            STORM_LOGINS
        };
        Self {
            // Quick: chat-consumer at half its maximum only.
            ladder_kinds: if args.quick {
                vec![Kind::Chat]
            } else {
                kinds.clone()
            },
            ladder: if args.quick { &[0.5] } else { &LADDER },
            step_time: Duration::from_secs(if args.quick { 2 } else { 3 }),
            kinds,
            rounds,
            measure: Duration::from_secs_f64(seconds),
            warmup: Duration::from_secs_f64((seconds / 5.0).clamp(0.3, 1.0)),
            storm,
            full: !args.quick,
        }
    }
}

/// What every phase works with.
struct Bench<'a> {
    plan: &'a Plan,
    programs: &'a Programs,
    harness: &'a mut Harness,
    cores: Cores,
    report: &'a mut Report,
}

async fn run(args: RunArgs, cores: Cores) -> anyhow::Result<()> {
    let out = &args.out;
    if args.sources {
        // Before anything is created or started.
        crate::cost::check_redis(&args.redis_url).await?;
    }
    let programs = programs(&args).await?;
    if let Some(minutes) = args.soak {
        eprintln!("soak: {minutes} min of chat with connection churn");
        let soak = crate::soak::run(&programs, cores, Duration::from_secs_f64(minutes * 60.0))
            .await
            .context("soak")?;
        let mut report = Report::new(&args, cores);
        report.soak = Some(soak.clone());
        report::write(&mut report, out)?;
        println!("{}", soak.line());
        anyhow::ensure!(
            soak.grew.is_empty(),
            "resources kept growing: {}",
            soak.grew.join("; ")
        );
        anyhow::ensure!(
            soak.unanswered == 0,
            "{} messages got no answer",
            soak.unanswered
        );
        return Ok(());
    }
    let plan = Plan::new(&args);
    eprintln!(
        "starting the mock engine and {} users",
        args.connections + plan.storm
    );
    let mut harness = Harness::start(
        args.connections,
        plan.storm,
        &programs.database,
        cores.engine,
    )
    .await?;
    crate::floor::write_names(
        &programs.names,
        harness
            .pop
            .conns
            .iter()
            .filter_map(|c| c.uid.map(|uid| (uid, c.name.as_str()))),
    )?;
    let mut report = Report::new(&args, cores);
    let mut bench = Bench {
        plan: &plan,
        programs: &programs,
        harness: &mut harness,
        cores,
        report: &mut report,
    };

    if args.sources {
        if args.instructions {
            bench
                .source_instructions(&args.redis_url, args.instruction_events)
                .await?;
        } else {
            bench.sources(&args.redis_url).await?;
        }
        harness.shutdown().await;
        report::write(&mut report, out)?;
        println!(
            "{}",
            if args.instructions {
                report.instructions_line()
            } else {
                report.sources_line()
            }
        );
        return Ok(());
    }
    if args.instructions {
        bench.instructions(args.instruction_events).await?;
        harness.shutdown().await;
        report::write(&mut report, out)?;
        println!("{}", report.instructions_line());
        return Ok(());
    }
    bench.standin().await?;
    bench.throughput().await?;
    bench.latency().await?;
    bench.storm().await?;
    if plan.full {
        bench.scaling().await?;
    }
    harness.shutdown().await;
    if plan.full && !args.skip_e2e {
        report.e2e = Some(
            crate::e2e::run(&programs, cores)
                .await
                .context("end to end")?,
        );
    }
    report::write(&mut report, out)?;
    println!("{}", report.summary_line());
    Ok(())
}

/// The programs the contestants run: this executable, chat-consumer, the Python baseline in
/// its virtual environment (unless skipped), and their files.
async fn programs(args: &RunArgs) -> anyhow::Result<Programs> {
    let out = &args.out;
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = if args.skip_baseline {
        None
    } else {
        Some(
            contestant::python_env(
                &out.join("venv"),
                &crate_dir.join("baseline/requirements.txt"),
            )
            .await?,
        )
    };
    Ok(Programs {
        bench: std::env::current_exe()?,
        names: std::path::absolute(out.join("names.txt"))?,
        chat: chat_program()?,
        python,
        baseline: crate_dir.join("baseline/consumer.py"),
        database: std::path::absolute(out.join("bench-users.sqlite"))?,
        logs,
    })
}

impl Bench<'_> {
    /// Instructions per event of each contestant (echo aside) under callgrind.
    async fn instructions(&mut self, instruction_events: u64) -> anyhow::Result<()> {
        let kinds = self.plan.kinds.iter().filter(|&&k| k != Kind::Echo);
        for &kind in kinds {
            let events = if kind == Kind::Baseline {
                (instruction_events / 10).max(1)
            } else {
                instruction_events
            };
            eprintln!(
                "instructions: {} under callgrind for {events} events",
                kind.label()
            );
            let counted = crate::cost::instructions(
                kind,
                self.programs,
                &self.harness.pop,
                self.cores,
                INSTRUCTION_WARMUP.min(events),
                events,
            )
            .await
            .with_context(|| format!("{} under callgrind", kind.label()))?;
            eprintln!(
                "instructions {:>8}: {:.0} per event ({} over {} events)",
                kind.label(),
                counted.per_event,
                counted.instructions,
                counted.events
            );
            self.report.instructions.push(counted);
        }
        Ok(())
    }

    /// chat-consumer's instructions per event on each queue source, under callgrind.
    async fn source_instructions(&mut self, url: &str, events: u64) -> anyhow::Result<()> {
        for source in crate::cost::Source::ALL {
            eprintln!(
                "instructions: chat on {} under callgrind for {events} events",
                source.label()
            );
            let counted = crate::cost::source_instructions(
                source,
                url,
                self.programs,
                &self.harness.pop,
                self.cores,
                INSTRUCTION_WARMUP.min(events),
                events,
            )
            .await
            .with_context(|| format!("chat on {} under callgrind", source.label()))?;
            eprintln!(
                "instructions {:>20}: {:.0} per event ({} over {} events)",
                source.label(),
                counted.per_event,
                counted.instructions,
                counted.events
            );
            self.report.instructions.push(counted);
        }
        Ok(())
    }

    /// chat-consumer on each queue source, closed loop against the stand-in, the sources
    /// interleaved in every round.
    async fn sources(&mut self, url: &str) -> anyhow::Result<()> {
        let plan = self.plan;
        for round in 1..=plan.rounds {
            for source in crate::cost::Source::ALL {
                let result = crate::cost::source(
                    source,
                    url,
                    self.programs,
                    &self.harness.pop,
                    self.cores,
                    plan.warmup,
                    plan.measure,
                )
                .await
                .with_context(|| format!("chat-consumer on {}, round {round}", source.label()))?;
                eprintln!(
                    "sources round {round} {:>20}: {:>8.0} events/s, {:.1} µs CPU/event (stand-in {:.1}, Redis {}), {:.1} MiB",
                    source.label(),
                    result.events_per_s,
                    result.cpu_us_per_event,
                    result.standin_cpu_us_per_event,
                    result
                        .redis_cpu_us_per_event
                        .map_or("-".to_owned(), |r| format!("{r:.1}")),
                    result.peak_rss_mib
                );
                self.report.sources.push(result);
            }
        }
        Ok(())
    }

    /// Each contestant's own cost: closed loop against the stand-in engine.
    async fn standin(&mut self) -> anyhow::Result<()> {
        let plan = self.plan;
        for round in 1..=plan.rounds {
            for &kind in &plan.kinds {
                let result = crate::cost::throughput(
                    kind,
                    self.programs,
                    &self.harness.pop,
                    self.cores,
                    plan.warmup,
                    plan.measure,
                )
                .await
                .with_context(|| format!("{} against the stand-in, round {round}", kind.label()))?;
                eprintln!(
                    "stand-in round {round} {:>8}: {:>9.0} events/s, {:.1} µs CPU/event (stand-in {:.1}), {:.1} MiB",
                    kind.label(),
                    result.events_per_s,
                    result.cpu_us_per_event,
                    result.engine_cpu_us_per_event,
                    result.peak_rss_mib
                );
                self.report.standin.push(result);
            }
        }
        Ok(())
    }

    /// Throughput on the mock engine: every contestant once per round, in turn.
    async fn throughput(&mut self) -> anyhow::Result<()> {
        let plan = self.plan;
        for round in 1..=plan.rounds {
            for &kind in &plan.kinds {
                let result = self
                    .measure(kind, 1)
                    .await
                    .with_context(|| format!("{} throughput, round {round}", kind.label()))?;
                eprintln!(
                    "round {round} {:>8}: {:>9.0} events/s ({:.2} calls each), {:.1} µs CPU/event (engine side {:.1}), {:.1} MiB",
                    kind.label(),
                    result.events_per_s,
                    result.calls_per_event,
                    result.cpu_us_per_event,
                    result.engine_cpu_us_per_event,
                    result.peak_rss_mib
                );
                self.report.throughput.push(result);
            }
        }
        Ok(())
    }

    /// Starts `processes` of `kind`, measures their closed-loop throughput and stops them.
    async fn measure(&mut self, kind: Kind, processes: usize) -> anyhow::Result<Throughput> {
        let plan = self.plan;
        let mut procs = start(kind, processes, self.programs, self.harness, self.cores).await?;
        let result = throughput(self.harness, &mut procs, kind, plan.warmup, plan.measure).await;
        stop(procs, self.harness).await?;
        result
    }

    /// The median throughput measured for `kind`, 0 when none was.
    fn max(&self, kind: Kind) -> f64 {
        self.report.median_throughput(kind).unwrap_or(0.0)
    }

    /// Latency: an open-loop ladder per contestant, up to the first rate it cannot keep up
    /// with.
    async fn latency(&mut self) -> anyhow::Result<()> {
        let plan = self.plan;
        for &kind in &plan.ladder_kinds {
            let max = self.max(kind);
            let answers = answers(kind);
            let procs = start(kind, 1, self.programs, self.harness, self.cores).await?;
            let mut steps = Vec::new();
            let mut failed = None;
            for &fraction in plan.ladder {
                let rate = fraction * max;
                match step(self.harness, answers, rate, plan.step_time).await {
                    Ok(step) => {
                        eprintln!(
                            "latency {:>8} at {:>7.0}/s: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms{}",
                            kind.label(),
                            rate,
                            step.latency.p50_ms,
                            step.latency.p99_ms,
                            step.latency.p999_ms,
                            step.latency.max_ms,
                            if step.kept_up { "" } else { " (fell behind)" }
                        );
                        let kept_up = step.kept_up;
                        steps.push(step);
                        if !kept_up {
                            break;
                        }
                    }
                    Err(err) => {
                        failed = Some(err);
                        break;
                    }
                }
            }
            stop(procs, self.harness).await?;
            if let Some(err) = failed {
                return Err(err.context(format!("{} latency", kind.label())));
            }
            self.report.latency.push(Ladder {
                contestant: kind,
                max_rate_p99_under_10ms: steps
                    .iter()
                    .filter(|s| s.kept_up && s.latency.p99_ms < 10.0)
                    .map(|s| s.offered_per_s)
                    .reduce(f64::max),
                steps,
            });
        }
        Ok(())
    }

    /// Login storm: logins pushed at once while chat flows at half the maximum.
    async fn storm(&mut self) -> anyhow::Result<()> {
        let rate = 0.5 * self.max(Kind::Chat);
        let procs = start(Kind::Chat, 1, self.programs, self.harness, self.cores).await?;
        let result = login_storm(self.harness, &procs[0], rate, self.plan.storm).await;
        stop(procs, self.harness).await?;
        let result = result.context("login storm")?;
        eprintln!(
            "storm: {} logins at {:.0}/s; chat p99 {:.2} ms during, {:.2} ms outside; RSS {:.1} MiB before, {:.1} during, {:.1} 10 s after",
            result.logins,
            result.logins_per_s,
            result.chat_during_storm.p99_ms,
            result.chat_outside_storm.p99_ms,
            result.rss_before_mib,
            result.rss_during_max_mib,
            result.rss_after_10s_mib,
        );
        self.report.storm = Some(result);
        Ok(())
    }

    /// Scaling: 1, 2, 4 chat-consumer processes sharing the contestant core.
    async fn scaling(&mut self) -> anyhow::Result<()> {
        for processes in SCALING {
            let result = self
                .measure(Kind::Chat, processes)
                .await
                .with_context(|| format!("scaling with {processes} processes"))?;
            eprintln!(
                "scaling: {processes} chat-consumer: {:.0} events/s",
                result.events_per_s
            );
            self.report.scaling.push(result);
        }
        Ok(())
    }
}

/// What `kind` must answer.
pub fn answers(kind: Kind) -> Answers {
    match kind {
        Kind::Echo => Answers::Echo,
        Kind::Floor | Kind::Chat | Kind::Baseline => Answers::Chat,
    }
}

/// Starts `processes` of `kind` and waits until each consumes on every node.
async fn start(
    kind: Kind,
    processes: usize,
    programs: &Programs,
    harness: &Harness,
    cores: Cores,
) -> anyhow::Result<Vec<Contestant>> {
    harness.wait_for_no_consumers().await?;
    let center = harness.engine.center_host();
    let mut procs = Vec::with_capacity(processes);
    for instance in 0..processes {
        procs.push(Contestant::spawn(
            kind,
            programs,
            &center,
            cores.contestant,
            instance,
        )?);
    }
    let ready = harness.wait_for_consumers(NODES * processes, Duration::from_secs(30));
    tokio::pin!(ready);
    loop {
        tokio::select! {
            ready = &mut ready => break ready?,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                for proc in &mut procs {
                    proc.check_alive()?;
                }
            }
        }
    }
    Ok(procs)
}

async fn stop(procs: Vec<Contestant>, harness: &Harness) -> anyhow::Result<()> {
    for proc in procs {
        proc.stop().await?;
    }
    harness.wait_for_no_consumers().await
}

fn total(procs: &[Contestant]) -> anyhow::Result<Usage> {
    let mut sum = Usage::default();
    for proc in procs {
        let usage = proc.usage()?;
        sum.cpu += usage.cpu;
        sum.peak_rss = sum.peak_rss.max(usage.peak_rss);
        sum.rss = sum.rss.max(usage.rss);
    }
    Ok(sum)
}

/// What a throughput measurement reads at its start and its end.
struct Snapshot {
    /// Events answered so far.
    answered: u64,
    /// The contestants' CPU time (summed) and memory (the largest).
    contestants: Usage,
    /// This process: the engine side (engine, pusher, checker).
    engine_side: Usage,
    at: Instant,
}

impl Snapshot {
    fn take(checker: &crate::checker::Checker, procs: &[Contestant]) -> anyhow::Result<Self> {
        Ok(Self {
            answered: checker.answered(),
            contestants: total(procs)?,
            engine_side: contestant::usage("self")?,
            at: Instant::now(),
        })
    }
}

/// Closed-loop throughput: answered events per second over `measure`, after `warmup`.
async fn throughput(
    harness: &mut Harness,
    procs: &mut [Contestant],
    kind: Kind,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<Throughput> {
    let stop = Arc::new(AtomicBool::new(false));
    let checker = Arc::clone(&harness.checker);
    let calls = |c: connmix_mock::Counters| c.sent + c.published + c.conn_calls;
    let phase_start = (harness.engine.counters(), checker.answered());
    let sample = {
        let stop = Arc::clone(&stop);
        let procs = &*procs;
        async move {
            let measured = async {
                tokio::time::sleep(warmup).await;
                let before = Snapshot::take(&checker, procs)?;
                tokio::time::sleep(measure).await;
                let after = Snapshot::take(&checker, procs)?;
                anyhow::Ok((before, after))
            }
            .await;
            stop.store(true, Ordering::Relaxed);
            measured
        }
    };
    let (pushed, measured) = tokio::join!(
        harness.closed_loop(answers(kind), Arc::clone(&stop)),
        sample
    );
    pushed?;
    let (before, after) = measured?;
    harness.checker.drained(QUIET).await?;
    harness.checker.take_samples();
    let phase_calls = calls(harness.engine.counters()) - calls(phase_start.0);
    let phase_events = harness.checker.answered() - phase_start.1;
    let calls_per_event = phase_calls as f64 / phase_events.max(1) as f64;
    let wall = (after.at - before.at).as_secs_f64();
    let events = (after.answered - before.answered) as f64;
    let cpu = (after.contestants.cpu - before.contestants.cpu).as_secs_f64();
    let engine_cpu = (after.engine_side.cpu - before.engine_side.cpu).as_secs_f64();
    Ok(Throughput {
        contestant: kind,
        processes: procs.len(),
        events_per_s: events / wall,
        cpu_us_per_event: cpu * 1e6 / events.max(1.0),
        cpu_share: cpu / wall,
        engine_cpu_share: engine_cpu / wall,
        engine_cpu_us_per_event: engine_cpu * 1e6 / events.max(1.0),
        peak_rss_mib: after.contestants.peak_rss as f64 / (1024.0 * 1024.0),
        calls_per_event,
        calls_per_s: events / wall * calls_per_event,
    })
}

/// One open-loop step at `rate`.
async fn step(
    harness: &mut Harness,
    answers: Answers,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Step> {
    let ran = harness.open_loop(answers, rate, duration, 0).await?;
    harness.checker.drained(QUIET).await?;
    let samples = harness.checker.take_samples();
    let warm = ran.start + duration / 10;
    // Kept up: by the time the last event fell due, nearly all events were answered; a
    // contestant slower than the offered rate falls further behind every second.
    let answered_in_time = samples.iter().filter(|s| s.arrived <= ran.end).count();
    Ok(Step {
        offered_per_s: rate,
        latency: Percentiles::of(
            samples
                .iter()
                .filter(|s| s.intended >= warm)
                .map(|s| s.latency()),
        ),
        kept_up: answered_in_time as f64 >= KEPT_UP * samples.len() as f64,
    })
}

async fn login_storm(
    harness: &mut Harness,
    chat: &Contestant,
    rate: f64,
    logins: usize,
) -> anyhow::Result<Storm> {
    let duration = Duration::from_secs(6);
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let rss_before = chat.usage()?.rss;
    let logins_done = Arc::new(AtomicBool::new(false));
    // Memory is read while the storm runs, until its logins have all been answered.
    let watch = async {
        let mut most = 0;
        while !logins_done.load(Ordering::Relaxed) {
            most = most.max(chat.usage()?.rss);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::Ok(most)
    };
    let pushed = async {
        let ran = harness
            .open_loop(Answers::Chat, rate, duration, logins)
            .await;
        let drained = harness.checker.drained(QUIET).await;
        logins_done.store(true, Ordering::Relaxed);
        ran.and_then(|ran| drained.map(|()| ran))
    };
    let (ran, most) = tokio::join!(pushed, watch);
    let (ran, rss_during) = (ran?, most?);
    let samples = harness.checker.take_samples();
    let started = ran.storm_started.context("the storm was not pushed")?;
    let login_samples: Vec<_> = samples.iter().filter(|s| s.class == Class::Login).collect();
    anyhow::ensure!(
        login_samples.len() == logins,
        "{} of {logins} logins answered",
        login_samples.len()
    );
    let ended = login_samples
        .iter()
        .map(|s| s.arrived)
        .max()
        .unwrap_or(started);
    // Chat traffic has stopped by then: what is left is what the logins kept.
    if let Some(wait) = (ended + AFTER_STORM).checked_duration_since(Instant::now()) {
        tokio::time::sleep(wait).await;
    }
    let after = chat.usage()?;
    let during = |s: &&crate::checker::Sample| {
        s.class == Class::Chat && s.intended >= started && s.intended <= ended
    };
    let warm = ran.start + duration / 10;
    Ok(Storm {
        rss_before_mib: mib(rss_before),
        rss_during_max_mib: mib(rss_during),
        rss_after_10s_mib: mib(after.rss),
        peak_rss_mib: mib(after.peak_rss),
        logins,
        logins_per_s: logins as f64 / (ended - started).as_secs_f64().max(1e-6),
        login_latency: Percentiles::of(login_samples.iter().map(|s| s.latency())),
        chat_offered_per_s: rate,
        chat_during_storm: Percentiles::of(samples.iter().filter(during).map(|s| s.latency())),
        chat_outside_storm: Percentiles::of(
            samples
                .iter()
                .filter(|s| s.class == Class::Chat && s.intended >= warm && !during(s))
                .map(|s| s.latency()),
        ),
    })
}

/// The `chat-consumer` executable beside this one, rebuilt first when run under cargo so that
/// a stale build is never measured.
fn chat_program() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("no directory for this executable")?;
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "--quiet", "-p", "chat-consumer"]);
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(profile) => {
                build.args(["--profile", profile]);
            }
            None => {}
        }
        let status = build
            .status()
            .context("cannot run cargo to build chat-consumer")?;
        anyhow::ensure!(status.success(), "building chat-consumer failed");
    }
    let chat = dir.join("chat-consumer");
    anyhow::ensure!(
        chat.exists(),
        "{} is missing: build it with `cargo build --release -p chat-consumer`",
        chat.display()
    );
    Ok(chat)
}

//! The results: a JSON file, a latency plot, Markdown tables, and the one-line summary.

use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;
use serde::Serialize;

use crate::contestant::Kind;
use crate::cost::{Instructions, Source, SourceCost};
use crate::e2e::EndToEnd;
use crate::run::{Cores, Ladder, Storm, Throughput};
use crate::RunArgs;

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The machine and how the run was set up.
    pub setup: Setup,
    /// Each contestant's own cost: closed loop against the stand-in engine, in the order made.
    pub standin: Vec<Throughput>,
    /// Instructions per event under callgrind (`--instructions`).
    pub instructions: Vec<Instructions>,
    /// chat-consumer on each queue source (`--sources`), in the order made.
    pub sources: Vec<SourceCost>,
    /// Every throughput measurement through the mock engine, in the order made (rounds
    /// interleave contestants).
    pub throughput: Vec<Throughput>,
    /// Open-loop latency ladders.
    pub latency: Vec<Ladder>,
    /// The login storm (full runs).
    pub storm: Option<Storm>,
    /// Throughput with 1, 2 and 4 chat-consumer processes (full runs).
    pub scaling: Vec<Throughput>,
    /// Browser WebSockets through the chat port (full runs).
    pub e2e: Option<EndToEnd>,
    /// `--soak`.
    pub soak: Option<crate::soak::Soak>,
    /// The headline ratios.
    pub summary: Summary,
}

/// The machine and the run's settings.
#[derive(Debug, Serialize)]
pub struct Setup {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// The commit measured, when in a git checkout.
    pub commit: Option<String>,
    /// Quick mode.
    pub quick: bool,
    /// Synthetic connections sending the mix.
    pub connections: usize,
    /// Whether the engine side and the contestants were pinned to separate cores.
    pub pinned: bool,
}

/// Headline figures.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// chat-consumer's CPU per event over the floor's, both against the stand-in (medians).
    pub chat_cpu_over_floor_cpu: Option<f64>,
    /// The baseline's CPU per event over chat-consumer's, both against the stand-in.
    pub baseline_cpu_over_chat_cpu: Option<f64>,
    /// chat-consumer's p99 at half its maximum rate (through the mock), ms.
    pub chat_p99_ms_at_half_max: Option<f64>,
    /// chat-consumer's `VmRSS` 10 s after the login storm, MiB.
    pub chat_rss_mib_after_storm: Option<f64>,
}

impl Report {
    /// An empty report for a run with `args`.
    pub fn new(args: &RunArgs, cores: Cores) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".into());
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        Self {
            setup: Setup {
                cpu,
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                commit,
                quick: args.quick,
                connections: args.connections,
                pinned: cores.contestant.is_some(),
            },
            standin: Vec::new(),
            instructions: Vec::new(),
            sources: Vec::new(),
            throughput: Vec::new(),
            latency: Vec::new(),
            storm: None,
            scaling: Vec::new(),
            e2e: None,
            soak: None,
            summary: Summary::default(),
        }
    }

    /// The median of `kind`'s throughput rounds.
    pub fn median_throughput(&self, kind: Kind) -> Option<f64> {
        median(self.rounds(kind).map(|t| t.events_per_s).collect())
    }

    fn rounds(&self, kind: Kind) -> impl Iterator<Item = &Throughput> {
        self.throughput.iter().filter(move |t| t.contestant == kind)
    }

    /// The median of `kind`'s CPU per event against the stand-in.
    pub fn own_cpu(&self, kind: Kind) -> Option<f64> {
        median(
            self.standin
                .iter()
                .filter(|t| t.contestant == kind)
                .map(|t| t.cpu_us_per_event)
                .collect(),
        )
    }

    fn finish(&mut self) {
        let chat = self.median_throughput(Kind::Chat);
        let cpu = |kind| self.own_cpu(kind);
        let over = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        self.summary = Summary {
            chat_cpu_over_floor_cpu: over(cpu(Kind::Chat), cpu(Kind::Floor)),
            baseline_cpu_over_chat_cpu: over(cpu(Kind::Baseline), cpu(Kind::Chat)),
            chat_rss_mib_after_storm: self.storm.as_ref().map(|s| s.rss_after_10s_mib),
            chat_p99_ms_at_half_max: self
                .latency
                .iter()
                .find(|l| l.contestant == Kind::Chat)
                .and_then(|l| {
                    l.steps
                        .iter()
                        .find(|s| (s.offered_per_s / chat.unwrap_or(1.0) - 0.5).abs() < 1e-6)
                })
                .map(|s| s.latency.p99_ms),
        };
    }

    /// `chat_cpu/floor_cpu=<ratio> baseline_cpu/chat_cpu=<ratio> p99_ms=<p99> rss_mib=<MiB>`,
    /// `n/a` for what was not run.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        format!(
            "chat_cpu/floor_cpu={} baseline_cpu/chat_cpu={} p99_ms={} rss_mib={}",
            show(s.chat_cpu_over_floor_cpu, 2),
            show(s.baseline_cpu_over_chat_cpu, 2),
            show(s.chat_p99_ms_at_half_max, 3),
            show(s.chat_rss_mib_after_storm, 1)
        )
    }

    /// `instructions/event: floor=<n> chat=<n> baseline=<n>` for an `--instructions` run.
    pub fn instructions_line(&self) -> String {
        let mut line = "instructions/event:".to_owned();
        for i in &self.instructions {
            line.push_str(&format!(" {}={:.0}", i.label(), i.per_event));
        }
        line
    }

    /// The medians of each source's rounds, in [`Source::ALL`] order.
    fn source_medians(&self) -> Vec<(Source, SourceMedians)> {
        Source::ALL
            .into_iter()
            .filter_map(|source| {
                let rounds: Vec<&SourceCost> =
                    self.sources.iter().filter(|s| s.source == source).collect();
                let med = |f: fn(&SourceCost) -> Option<f64>| {
                    median(rounds.iter().filter_map(|s| f(s)).collect())
                };
                Some((
                    source,
                    SourceMedians {
                        events_per_s: med(|s| Some(s.events_per_s))?,
                        cpu_us: med(|s| Some(s.cpu_us_per_event))?,
                        cpu_share: med(|s| Some(s.cpu_share))?,
                        standin_us: med(|s| Some(s.standin_cpu_us_per_event))?,
                        redis_us: med(|s| s.redis_cpu_us_per_event),
                        calls: med(|s| Some(s.calls_per_event))?,
                        peak_rss_mib: rounds.iter().map(|s| s.peak_rss_mib).fold(0.0, f64::max),
                    },
                ))
            })
            .collect()
    }

    /// `cpu_us/event: engine=<µs> ... ; over engine: redis-stream=<ratio> ...` for a
    /// `--sources` run.
    pub fn sources_line(&self) -> String {
        let medians = self.source_medians();
        let engine = medians
            .iter()
            .find(|(s, _)| *s == Source::Engine)
            .map(|(_, m)| m.cpu_us);
        let mut line = "cpu_us/event:".to_owned();
        for (source, m) in &medians {
            line.push_str(&format!(
                " {}={:.1}",
                source.label().replace(' ', ""),
                m.cpu_us
            ));
        }
        line.push_str("; over engine:");
        for (source, m) in &medians {
            line.push_str(&format!(
                " {}={}",
                source.label().replace(' ', ""),
                show(engine.map(|e| m.cpu_us / e), 2)
            ));
        }
        line
    }

    /// The tables BENCHMARKS.md quotes, in Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        if let Some(soak) = &self.soak {
            return soak.markdown();
        }
        if !self.sources.is_empty() {
            let medians = self.source_medians();
            let engine = medians
                .iter()
                .find(|(s, _)| *s == Source::Engine)
                .map(|(_, m)| m.cpu_us);
            md.push_str("### chat-consumer per queue source (closed loop against the stand-in engine, medians of the rounds)\n\n| source | events/s | CPU µs/event | over engine | contestant CPU | stand-in CPU µs/event | Redis CPU µs/event | engine calls/event | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|\n");
            for (source, m) in &medians {
                md.push_str(&format!(
                    "| {} | {:.0} | {:.2} | {} | {:.0}% | {:.2} | {} | {:.2} | {:.1} |\n",
                    source.label(),
                    m.events_per_s,
                    m.cpu_us,
                    show(engine.map(|e| m.cpu_us / e), 2),
                    m.cpu_share * 100.0,
                    m.standin_us,
                    show(m.redis_us, 2),
                    m.calls,
                    m.peak_rss_mib,
                ));
            }
            md.push_str(&format!("\n`{}`\n", self.sources_line()));
            return md;
        }
        if !self.instructions.is_empty() {
            md.push_str("### Instructions per event (callgrind, against the stand-in)\n\n| contestant | events | instructions | per event |\n|---|---|---|---|\n");
            for i in &self.instructions {
                md.push_str(&format!(
                    "| {} | {} | {} | {:.0} |\n",
                    i.label(),
                    i.events,
                    i.instructions,
                    i.per_event
                ));
            }
            return md;
        }
        if !self.standin.is_empty() {
            md.push_str("### Own cost (closed loop against the stand-in engine, medians of the rounds)\n\n| contestant | events/s | CPU µs/event | stand-in CPU µs/event | contestant CPU | stand-in CPU | engine calls/event | peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n");
            for kind in [Kind::Floor, Kind::Echo, Kind::Chat, Kind::Baseline] {
                let rounds: Vec<&Throughput> = self
                    .standin
                    .iter()
                    .filter(|t| t.contestant == kind)
                    .collect();
                if rounds.is_empty() {
                    continue;
                }
                let med = |f: fn(&Throughput) -> f64| {
                    median(rounds.iter().map(|t| f(t)).collect()).unwrap_or(0.0)
                };
                md.push_str(&format!(
                    "| {} | {:.0} | {:.2} | {:.2} | {:.0}% | {:.0}% | {:.2} | {:.1} |\n",
                    kind.label(),
                    med(|t| t.events_per_s),
                    med(|t| t.cpu_us_per_event),
                    med(|t| t.engine_cpu_us_per_event),
                    med(|t| t.cpu_share) * 100.0,
                    med(|t| t.engine_cpu_share) * 100.0,
                    med(|t| t.calls_per_event),
                    rounds.iter().map(|t| t.peak_rss_mib).fold(0.0, f64::max),
                ));
            }
            md.push('\n');
        }
        md.push_str(
            "### Throughput through the mock engine (closed loop, medians of the rounds)\n\n",
        );
        md.push_str("| contestant | events/s median | min–max | engine calls/event | engine calls/s | CPU µs/event | engine-side CPU µs/event | contestant CPU | engine-side CPU | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for kind in [Kind::Floor, Kind::Echo, Kind::Chat, Kind::Baseline] {
            let rounds: Vec<&Throughput> = self.rounds(kind).collect();
            if rounds.is_empty() {
                continue;
            }
            let rates: Vec<f64> = rounds.iter().map(|t| t.events_per_s).collect();
            let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = rates.iter().copied().fold(0.0, f64::max);
            let med = |f: fn(&Throughput) -> f64| {
                median(rounds.iter().map(|t| f(t)).collect()).unwrap_or(0.0)
            };
            md.push_str(&format!(
                "| {} | {:.0} | {:.0}–{:.0} | {:.2} | {:.0} | {:.1} | {:.1} | {:.0}% | {:.0}% | {:.1} |\n",
                kind.label(),
                med(|t| t.events_per_s),
                lo,
                hi,
                med(|t| t.calls_per_event),
                med(|t| t.calls_per_s),
                med(|t| t.cpu_us_per_event),
                med(|t| t.engine_cpu_us_per_event),
                med(|t| t.cpu_share) * 100.0,
                med(|t| t.engine_cpu_share) * 100.0,
                rounds.iter().map(|t| t.peak_rss_mib).fold(0.0, f64::max),
            ));
        }
        md.push_str(&format!("\n`{}`\n", self.summary_line()));
        if !self.latency.is_empty() {
            md.push_str(
                "\n### Latency (open loop, from when each event was due to its answer)\n\n",
            );
            md.push_str("| contestant | offered/s | p50 ms | p99 ms | p99.9 ms | max ms | kept up |\n|---|---|---|---|---|---|---|\n");
            for ladder in &self.latency {
                for step in &ladder.steps {
                    let l = &step.latency;
                    md.push_str(&format!(
                        "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |\n",
                        ladder.contestant.label(),
                        step.offered_per_s,
                        l.p50_ms,
                        l.p99_ms,
                        l.p999_ms,
                        l.max_ms,
                        if step.kept_up { "yes" } else { "no" }
                    ));
                }
            }
            md.push_str("\n| contestant | highest offered rate with p99 < 10 ms |\n|---|---|\n");
            for ladder in &self.latency {
                md.push_str(&format!(
                    "| {} | {} |\n",
                    ladder.contestant.label(),
                    ladder
                        .max_rate_p99_under_10ms
                        .map_or("none".into(), |r| format!("{r:.0}/s"))
                ));
            }
        }
        if let Some(storm) = &self.storm {
            md.push_str(&format!(
                "\n### Login storm\n\n{} logins pushed at once while chat flows at {:.0} events/s: {:.0} logins/s (login p50 {:.1} ms, max {:.1} ms); chat p99 {:.2} ms during the storm (p99.9 {:.2}, max {:.2}), {:.2} ms outside it.\n",
                storm.logins,
                storm.chat_offered_per_s,
                storm.logins_per_s,
                storm.login_latency.p50_ms,
                storm.login_latency.max_ms,
                storm.chat_during_storm.p99_ms,
                storm.chat_during_storm.p999_ms,
                storm.chat_during_storm.max_ms,
                storm.chat_outside_storm.p99_ms,
            ));
            md.push_str(&format!(
                "chat-consumer's RSS: {:.1} MiB before, at most {:.1} MiB during, {:.1} MiB 10 s after the last login (peak {:.1} MiB).\n",
                storm.rss_before_mib,
                storm.rss_during_max_mib,
                storm.rss_after_10s_mib,
                storm.peak_rss_mib,
            ));
        }
        if !self.scaling.is_empty() {
            md.push_str("\n### Scaling (chat-consumer processes sharing the contestant core)\n\n| processes | events/s | contestant CPU | engine-side CPU |\n|---|---|---|---|\n");
            for t in &self.scaling {
                md.push_str(&format!(
                    "| {} | {:.0} | {:.0}% | {:.0}% |\n",
                    t.processes,
                    t.events_per_s,
                    t.cpu_share * 100.0,
                    t.engine_cpu_share * 100.0
                ));
            }
        }
        if let Some(e2e) = &self.e2e {
            md.push_str(&e2e.markdown());
        }
        md
    }
}

/// Medians of one source's rounds.
struct SourceMedians {
    events_per_s: f64,
    cpu_us: f64,
    cpu_share: f64,
    standin_us: f64,
    redis_us: Option<f64>,
    calls: f64,
    peak_rss_mib: f64,
}

fn show(value: Option<f64>, digits: usize) -> String {
    value.map_or("n/a".to_owned(), |v| format!("{v:.digits$}"))
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Fills in the summary, then writes `results.json`, `latency.svg` (when there is a ladder) and
/// `summary.md` under `out`.
pub fn write(report: &mut Report, out: &Path) -> anyhow::Result<()> {
    report.finish();
    let json = out.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    let svg = out.join("latency.svg");
    let plotted = report.latency.iter().any(|l| !l.steps.is_empty());
    if plotted {
        plot(&report.latency, &svg)?;
    }
    let md = out.join("summary.md");
    std::fs::write(&md, report.markdown())
        .with_context(|| format!("cannot write {}", md.display()))?;
    if plotted {
        eprintln!(
            "wrote {}, {} and {}",
            json.display(),
            svg.display(),
            md.display()
        );
    } else {
        eprintln!("wrote {} and {}", json.display(), md.display());
    }
    Ok(())
}

/// p99 latency against offered rate, one line per contestant, both axes logarithmic.
fn plot(ladders: &[Ladder], path: &Path) -> anyhow::Result<()> {
    let points: Vec<(f64, f64)> = ladders
        .iter()
        .flat_map(|l| l.steps.iter().map(|s| (s.offered_per_s, s.latency.p99_ms)))
        .collect();
    let (x_lo, x_hi) = points
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (y_lo, y_hi) = points
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "p99 latency against offered rate (open loop)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(
            ((x_lo * 0.8).max(1.0)..x_hi * 1.25).log_scale(),
            ((y_lo * 0.8).max(0.01)..(y_hi * 1.25).max(20.0)).log_scale(),
        )
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("offered events/s")
        .y_desc("p99 ms (from when each event was due)")
        .draw()
        .map_err(plot_err)?;
    let colours = [RED, BLUE, GREEN, MAGENTA];
    for (ladder, colour) in ladders.iter().zip(colours) {
        let series: Vec<(f64, f64)> = ladder
            .steps
            .iter()
            .map(|s| (s.offered_per_s, s.latency.p99_ms))
            .collect();
        chart
            .draw_series(LineSeries::new(series.clone(), colour.stroke_width(2)))
            .map_err(plot_err)?
            .label(ladder.contestant.label())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(
                series
                    .into_iter()
                    .map(|p| Circle::new(p, 4, colour.filled())),
            )
            .map_err(plot_err)?;
    }
    // The 10 ms line the ladder's "highest rate" refers to.
    chart
        .draw_series(LineSeries::new(
            vec![(x_lo * 0.8, 10.0), (x_hi * 1.25, 10.0)],
            BLACK.mix(0.3),
        ))
        .map_err(plot_err)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn plot_err(err: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the plot: {err}")
}

//! The consumers under test, each a separate process pinned to its own core, and what the
//! kernel says they used.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::process::{Child, Command};

/// chat-consumer's `--room-presence`, from the environment.
const ROOM_PRESENCE: &str = "CHAT_ROOM_PRESENCE";

/// The consumers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The least a Rust consumer spends for chat-consumer's replies (`connmix-bench floor`).
    Floor,
    /// No chat logic, on connmix-client: every event answered with one `mesh.send` of its
    /// frame (`connmix-bench echo`).
    Echo,
    /// `chat-consumer run`.
    Chat,
    /// The Python asyncio port of the tutorial's PHP consumer.
    Baseline,
}

impl Kind {
    /// The name used in reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Floor => "floor",
            Kind::Echo => "echo",
            Kind::Chat => "chat",
            Kind::Baseline => "baseline",
        }
    }
}

/// Where the contestants' programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    /// This benchmark's own executable (for `floor` and `echo`).
    pub bench: PathBuf,
    /// The `uid name` file `floor` reads its senders' names from.
    pub names: PathBuf,
    /// The `chat-consumer` executable.
    pub chat: PathBuf,
    /// The Python interpreter with the baseline's requirements, if the baseline runs.
    pub python: Option<PathBuf>,
    /// The baseline's script.
    pub baseline: PathBuf,
    /// The SQLite database both chat consumers use.
    pub database: PathBuf,
    /// Where each process's output goes.
    pub logs: PathBuf,
}

/// A running contestant process.
pub struct Contestant {
    /// What it is.
    pub kind: Kind,
    child: Child,
    pid: u32,
    log: PathBuf,
}

/// CPU time and memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Peak resident set size in bytes (`VmHWM`).
    pub peak_rss: u64,
    /// Resident set size now, in bytes (`VmRSS`).
    pub rss: u64,
}

impl Contestant {
    /// Starts `kind` against the engine whose center is `center`, pinned to `core` when given.
    pub fn spawn(
        kind: Kind,
        programs: &Programs,
        center: &str,
        core: Option<usize>,
        instance: usize,
    ) -> anyhow::Result<Self> {
        Self::spawn_under(kind, programs, center, core, instance, &[], &[])
    }

    /// As [`Contestant::spawn`], run by `wrapper` (a command and its options, such as
    /// valgrind's) when it is not empty, with `extra` after the contestant's own arguments
    /// (for chat-consumer, options of `run` such as `--source`).
    pub fn spawn_under(
        kind: Kind,
        programs: &Programs,
        center: &str,
        core: Option<usize>,
        instance: usize,
        wrapper: &[String],
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let (program, mut args): (&Path, Vec<String>) = match kind {
            Kind::Floor => (
                &programs.bench,
                vec![
                    "floor".into(),
                    "--host".into(),
                    center.into(),
                    "--names".into(),
                    programs.names.display().to_string(),
                ],
            ),
            Kind::Echo => (
                &programs.bench,
                vec!["echo".into(), "--host".into(), center.into()],
            ),
            Kind::Chat => (
                &programs.chat,
                vec![
                    "--database-url".into(),
                    format!("sqlite://{}?mode=rwc", programs.database.display()),
                    "run".into(),
                    "--host".into(),
                    center.into(),
                    // The benchmark's users send far faster than a person; the limiter
                    // would refuse them, and the baseline has none.
                    "--messages-per-second".into(),
                    "1000000000".into(),
                    "--message-burst".into(),
                    "1000000000".into(),
                ],
            ),
            Kind::Baseline => (
                programs
                    .python
                    .as_deref()
                    .context("the baseline needs Python with its requirements")?,
                vec![
                    programs.baseline.display().to_string(),
                    "--host".into(),
                    center.into(),
                    "--database".into(),
                    programs.database.display().to_string(),
                ],
            ),
        };
        args.extend_from_slice(extra);
        let log = programs
            .logs
            .join(format!("{}-{instance}.log", kind.label()));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = match (core, wrapper.split_first()) {
            (Some(core), _) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(core.to_string()).args(wrapper);
                command.arg(program);
                command
            }
            (None, Some((first, rest))) => {
                let mut command = Command::new(first);
                command.args(rest).arg(program);
                command
            }
            (None, None) => Command::new(program),
        };
        if kind == Kind::Chat {
            // The tutorial's protocol has no join or leave events, and the floor and the
            // baseline send none: chat-consumer keeps its room records (and `presence`), which
            // are counted, without the events. History stays on, as deployed. The environment
            // may say otherwise, to measure another setting.
            let presence = std::env::var(ROOM_PRESENCE).unwrap_or_else(|_| "records".into());
            command.env(ROOM_PRESENCE, presence);
        }
        command
            .args(&args)
            // Per-event logging would be measured too; warnings still reach the log.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let pid = child.id().context("the process ended at once")?;
        Ok(Self {
            kind,
            child,
            pid,
            log,
        })
    }

    /// Fails with the end of its log if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "{} exited ({status}); the end of {}:\n{}",
                self.kind.label(),
                self.log.display(),
                tail(&self.log)
            );
        }
        Ok(())
    }

    /// The process id (taskset and valgrind run the contestant in the process they start).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// CPU time so far and peak memory.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        usage(&self.pid.to_string())
    }

    /// Asks it to stop (SIGTERM), then kills it if it has not after five seconds.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                tracing::warn!(kind = self.kind.label(), "did not stop on SIGTERM; killed");
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

/// The last lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// The usage of process `pid` (`self` for this one).
pub fn usage(pid: &str) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; `after` starts at field 3.
    let tick = |i: usize| -> u64 { fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0) };
    let ticks = tick(11) + tick(12);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok(Usage {
        cpu: Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND),
        peak_rss: kib("VmHWM:") * 1024,
        rss: kib("VmRSS:") * 1024,
    })
}

/// A venv under `dir` with the baseline's requirements, made (with pip) when missing.
pub async fn python_env(dir: &Path, requirements: &Path) -> anyhow::Result<PathBuf> {
    let python = dir.join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import websockets, argon2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
    if ready {
        return Ok(python);
    }
    eprintln!(
        "setting up the Python baseline's environment in {}",
        dir.display()
    );
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(dir)
        .status()
        .await
        .context("cannot run python3 (the baseline needs Python 3.11 or newer)")?;
    anyhow::ensure!(made.success(), "python3 -m venv {} failed", dir.display());
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(requirements)
        .status()
        .await?;
    anyhow::ensure!(
        installed.success(),
        "pip install -r {} failed",
        requirements.display()
    );
    Ok(python)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_usage_is_read_from_proc() {
        let before = usage("self").unwrap();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let after = usage("self").unwrap();
        assert!(after.cpu > before.cpu, "{before:?} then {after:?}");
        assert!(after.peak_rss > 1024 * 1024, "{after:?}");
        assert!(
            after.rss > 1024 * 1024 && after.rss <= after.peak_rss,
            "{after:?}"
        );
    }
}

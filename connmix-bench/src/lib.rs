//! The benchmark behind `connmix-bench`: `chat-consumer` against a minimal Rust consumer that
//! gives the same replies (the floor) and a Python asyncio baseline, on the mock engine and on a
//! stand-in engine that costs next to nothing, with every reply checked.
//!
//! - [`workload`]: the event mix and the replies each event is owed.
//! - [`checker`]: matches what synthetic connections receive against what they are owed.
//! - [`harness`]: the mock engine, the synthetic connections and the pusher.
//! - [`standin`]: the stand-in engine, the lightest that speaks the node API, which checks
//!   the engine calls every event owes.
//! - [`contestant`]: the consumer processes and their CPU and memory.
//! - [`run`]: the phases; [`cost`]: each contestant's own CPU and instructions per event
//!   against the stand-in; [`e2e`]: browser WebSockets end to end; [`report`]: the output.
//! - [`soak`]: `--soak`, resources over a long run with connection churn.
//! - [`floor`]: the floor contestant; [`echo`]: a contestant with no chat logic on
//!   connmix-client.

#![deny(missing_docs)]

use std::path::PathBuf;

use clap::Args;

pub mod checker;
pub mod contestant;
pub mod cost;
pub mod e2e;
pub mod echo;
pub mod floor;
pub mod harness;
pub mod report;
pub mod run;
pub mod soak;
pub mod standin;
pub mod workload;

/// What to run and where to write.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Under a minute: one round of throughput, and chat-consumer's latency at half its maximum.
    #[arg(long)]
    pub quick: bool,
    /// Throughput rounds (each contestant once per round, interleaved).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds each throughput measurement lasts (after a warm-up).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Logged-in synthetic connections sending the mix.
    #[arg(long, default_value_t = 200)]
    pub connections: usize,
    /// Leave out the Python baseline (no Python needed).
    #[arg(long)]
    pub skip_baseline: bool,
    /// Leave out the end-to-end run with browser WebSockets.
    #[arg(long)]
    pub skip_e2e: bool,
    /// Only count instructions per event: each contestant under `valgrind --tool=callgrind`
    /// against the stand-in engine, for `--instruction-events` events after a warm-up.
    #[arg(long)]
    pub instructions: bool,
    /// Events counted per contestant with `--instructions` (a tenth of it for the Python
    /// baseline, which is slow under valgrind).
    #[arg(long, default_value_t = 20_000)]
    pub instruction_events: u64,
    /// Only compare chat-consumer's queue sources: `engine`, `engine` with the rate limit
    /// shared on Redis, `redis-list` and `redis-stream`, each closed loop against the
    /// stand-in engine (which queues the mix on Redis for the Redis sources), `--rounds`
    /// rounds of `--seconds`.
    #[arg(long)]
    pub sources: bool,
    /// The Redis server `--sources` uses (its keys are removed afterwards).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Only soak chat-consumer for this many minutes: steady traffic with connections
    /// opening and closing through the mock, its memory, file descriptors and threads read
    /// every 10 s; fails if they keep growing.
    #[arg(long, value_name = "MINUTES")]
    pub soak: Option<f64>,
    /// Where results, the plot and the contestants' logs go.
    #[arg(long, default_value = "target/connmix-bench")]
    pub out: PathBuf,
}

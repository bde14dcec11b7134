//! The benchmark behind `connmix-bench`: `chat-consumer` against a no-logic ceiling and a
//! Python asyncio baseline on the mock engine, with every reply checked.
//!
//! - [`workload`]: the event mix and the replies each event is owed.
//! - [`checker`]: matches what synthetic connections receive against what they are owed.
//! - [`harness`]: the mock engine, the synthetic connections and the pusher.
//! - [`contestant`]: the consumer processes and their CPU and memory.
//! - [`run`]: the phases; [`e2e`]: browser WebSockets end to end; [`report`]: the output.
//! - [`echo`]: the ceiling contestant.

#![deny(missing_docs)]

use std::path::PathBuf;

use clap::Args;

pub mod checker;
pub mod contestant;
pub mod e2e;
pub mod echo;
pub mod harness;
pub mod report;
pub mod run;
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
    /// Where results, the plot and the contestants' logs go.
    #[arg(long, default_value = "target/connmix-bench")]
    pub out: PathBuf,
}

//! `connmix-bench`: measures `chat-consumer` against `floor` (the least a Rust consumer spends
//! for the same replies) and a Python asyncio baseline, on a stand-in engine (each one's own
//! cost) and on the mock engine (throughput, latency, login storm), and writes the figures
//! BENCHMARKS.md quotes.
//!
//! `cargo run --release -p connmix-bench -- --quick` takes about a minute; without `--quick`
//! it runs every part (6–8 minutes on two cores); `--instructions` counts instructions per
//! event under callgrind. `--help` lists the options.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use connmix_bench::{echo, floor, harness, run, RunArgs};

#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the benchmark (the default).
    Run(RunArgs),
    /// The floor contestant: chat-consumer's replies to the bench's mix at the least cost.
    Floor {
        /// The engine's center, host:port.
        #[arg(long, default_value = "127.0.0.1:6787")]
        host: String,
        /// The queue to consume.
        #[arg(long, default_value = harness::QUEUE)]
        queue: String,
        /// `uid name` lines, for a delivery's `from` (the bench writes them).
        #[arg(long)]
        names: Option<std::path::PathBuf>,
    },
    /// A contestant with no chat logic on connmix-client: every browser frame answered with
    /// one mesh.send of itself.
    Echo {
        /// The engine's center, host:port.
        #[arg(long, default_value = "127.0.0.1:6787")]
        host: String,
        /// The queue to consume.
        #[arg(long, default_value = harness::QUEUE)]
        queue: String,
    },
}

fn main() -> ExitCode {
    // The one crypto provider linked; the embedded engine's HTTP client uses the process's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = match cli.command {
        Some(Command::Echo { host, queue }) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(echo::run(&host, &queue))),
        Some(Command::Floor { host, queue, names }) => names
            .as_deref()
            .map_or_else(|| Ok(floor::Names::default()), floor::read_names)
            .and_then(|names| floor::run(&host, &queue, names)),
        Some(Command::Run(args)) => run::main(args),
        None => run::main(cli.run),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

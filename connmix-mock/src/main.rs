//! `connmix-mock`: runs a mock CONNMIX engine until Ctrl-C or SIGTERM.
//!
//! Run with `cargo run -p connmix-mock -- --nodes 2`.

use std::process::ExitCode;

use clap::Parser;
use connmix_mock::cli::EngineArgs;
use connmix_mock::{MockConfig, MockEngine};

/// A mock CONNMIX engine: center, node API servers, memory queues and the chat script.
#[derive(Debug, Parser)]
#[command(name = "connmix-mock", version)]
struct Args {
    #[command(flatten)]
    engine: EngineArgs,
    /// Queue topic the chat script pushes onto.
    #[arg(long, default_value = "chat")]
    queue: String,
}

/// Crates whose `trace` output dumps whole WebSocket frames (browsers' passwords) or request
/// headers (basic credentials): capped at `debug` whatever `RUST_LOG` says.
const WIRE_DUMPERS: [&str; 4] = ["tungstenite", "tokio_tungstenite", "hyper", "hyper_util"];

/// Logs to standard error; `RUST_LOG` filters, `info` by default; colours only on a terminal.
fn init_logging() {
    use std::io::IsTerminal as _;
    use tracing_subscriber::{filter::LevelFilter, EnvFilter};
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if filter.max_level_hint() == Some(LevelFilter::TRACE) {
        let caps = WIRE_DUMPERS
            .iter()
            .filter_map(|t| format!("{t}=debug").parse().ok());
        for cap in caps {
            filter = filter.add_directive(cap);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    // clap prints its own message and exits with status 2 on bad options.
    let args = Args::parse();
    init_logging();
    let signals = StopSignals::install();
    let engine = match MockEngine::start(args.engine.config(&args.queue)).await {
        Ok(engine) => engine,
        Err(err) => {
            eprintln!("connmix-mock: {}", with_causes(&err));
            return ExitCode::FAILURE;
        }
    };
    println!("center  http://{}", engine.center_addr());
    for node in engine.nodes() {
        println!(
            "node {}  api ws://{}/ws/v1  chat ws://{}{}",
            node.id,
            node.api_addr,
            node.chat_addr,
            MockConfig::default().chat_path
        );
    }
    signals.wait().await;
    engine.shutdown().await;
    ExitCode::SUCCESS
}

/// The error and each of its causes on one line.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Ctrl-C and SIGTERM, listened for from start-up on, so a signal sent as soon as the
/// addresses are printed is not lost.
struct StopSignals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.streams {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

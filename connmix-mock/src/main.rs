//! `connmix-mock`: runs a mock CONNMIX engine until Ctrl-C or SIGTERM.
//!
//! Run with `cargo run -p connmix-mock -- --nodes 2`.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Parser;
use connmix_mock::{Credentials, MockConfig, MockEngine};
use connmix_protocol::Dialect;

/// A mock CONNMIX engine: center, node API servers, memory queues and the chat script.
#[derive(Debug, Parser)]
#[command(name = "connmix-mock", version)]
struct Args {
    /// Address every listener binds.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port of the center's HTTP API.
    #[arg(long, default_value_t = 6787)]
    center_port: u16,
    /// API server port of node 0 (node i: + 100 * i).
    #[arg(long, default_value_t = 6789)]
    api_port: u16,
    /// Browser chat port of node 0 (node i: + 100 * i).
    #[arg(long, default_value_t = 6790)]
    chat_port: u16,
    /// Number of engine nodes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    nodes: u16,
    /// Queue topic the chat script pushes onto.
    #[arg(long, default_value = "chat")]
    queue: String,
    /// Capacity of each queue topic.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    topic_size: u32,
    /// Seconds an API connection may stay silent before it is closed.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    read_timeout: u64,
    /// Dialect of replies and events: `current` or `legacy` (engine 1.0.1).
    #[arg(long, default_value = "current")]
    dialect: Dialect,
    /// User required (HTTP basic) on the center and the API servers.
    #[arg(long, requires = "api_password")]
    api_user: Option<String>,
    /// Password of --api-user.
    #[arg(
        long,
        env = "CONNMIX_API_PASSWORD",
        hide_env_values = true,
        requires = "api_user"
    )]
    api_password: Option<String>,
}

impl Args {
    fn config(self) -> MockConfig {
        MockConfig {
            bind: self.bind,
            center_port: self.center_port,
            api_port: self.api_port,
            chat_port: self.chat_port,
            nodes: usize::from(self.nodes),
            queue: self.queue,
            topic_size: self.topic_size as usize,
            read_timeout: std::time::Duration::from_secs(self.read_timeout),
            dialect: self.dialect,
            credentials: self
                .api_user
                .zip(self.api_password)
                .map(|(user, password)| Credentials::new(user, password)),
            ..MockConfig::default()
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // clap prints its own message and exits with status 2 on bad options.
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let engine = match MockEngine::start(args.config()).await {
        Ok(engine) => engine,
        Err(err) => {
            eprintln!("connmix-mock: {err}");
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
    wait_for_signal().await;
    engine.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! `dev`: the whole chat on one machine, for trying it out.
//!
//! Starts the mock engine in this process (center, API servers and the browser chat page on
//! the chat port), a SQLite database with two demo users, and the consumer; stops on Ctrl-C.

use std::net::IpAddr;

use anyhow::Context as _;
use chat_consumer::service::users;
use clap::Args;
use connmix_mock::{MockConfig, MockEngine};
use tokio_util::sync::CancellationToken;

use super::run::{cancel_on_signal, consume};
use super::{hasher, open, ConsumerArgs, DatabaseArgs};

/// Demo accounts created on start when absent. Their password is public: demo use only.
const DEMO_USERS: [(&str, &str); 2] = [
    ("user1", "user1@example.com"),
    ("user2", "user2@example.com"),
];
const DEMO_PASSWORD: &str = "123456";

#[derive(Debug, Clone, Args)]
pub(super) struct DevArgs {
    /// Engine nodes to start; node i listens on the given ports + 100·i.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Address the embedded engine listens on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port of the embedded engine's center API.
    #[arg(long, default_value_t = 6787)]
    center_port: u16,
    /// Port of node 0's API server.
    #[arg(long, default_value_t = 6789)]
    api_port: u16,
    /// Port of node 0's chat server, which also serves the chat page at `/`.
    #[arg(long, default_value_t = 6790)]
    chat_port: u16,
    #[command(flatten)]
    consumer: ConsumerArgs,
}

pub(super) async fn dev(database: &DatabaseArgs, args: &DevArgs) -> anyhow::Result<()> {
    let run = &args.consumer;
    anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
    let limits = run.limits()?;
    let config = MockConfig {
        bind: args.bind,
        center_port: args.center_port,
        api_port: args.api_port,
        chat_port: args.chat_port,
        nodes: args.nodes,
        queue: run.queue.clone(),
        ..MockConfig::default()
    };
    let engine = MockEngine::start(config)
        .await
        .context("cannot start the embedded engine")?;
    let db = open(database).await?;
    let hasher = hasher(database, limits.hash_parallelism)?;
    for (name, email) in DEMO_USERS {
        let created = users::ensure(&db, &hasher, name, email, DEMO_PASSWORD)
            .await
            .with_context(|| format!("cannot create the demo user {name}"))?;
        if created {
            tracing::info!(user = name, "demo user created");
        }
    }

    println!(
        "connmix-rs chat, dev mode: embedded engine, database {}",
        chat_consumer::db::redact(&database.database_url)
    );
    println!("  demo users: user1 and user2, password {DEMO_PASSWORD} (demo only: never reuse it)");
    for node in engine.nodes() {
        println!(
            "  open http://{}/  (engine node {})",
            node.chat_addr, node.id
        );
    }
    println!(
        "  consumers elsewhere: chat-consumer --host {}",
        engine.center_host()
    );
    println!("  Ctrl-C stops");

    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    let served = consume(db, hasher, run, &engine.center_host(), None, cancel).await;
    engine.shutdown().await;
    served
}

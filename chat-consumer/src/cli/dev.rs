//! `dev`: the whole chat on one machine, for trying it out.
//!
//! Starts the mock engine in this process (center, API servers and the browser chat page on
//! the chat port), a SQLite database with two demo users, and the consumer; stops on Ctrl-C.

use anyhow::Context as _;
use chat_consumer::service::users;
use clap::Args;
use connmix_mock::cli::EngineArgs;
use connmix_mock::MockEngine;
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
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    consumer: ConsumerArgs,
}

pub(super) async fn dev(database: &DatabaseArgs, args: &DevArgs) -> anyhow::Result<()> {
    let run = &args.consumer;
    let limits = run.limits()?;
    // Watched from the start: a SIGTERM while the engine, the database or the demo users are
    // being set up ends dev cleanly instead of killing it.
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    let engine = MockEngine::start(args.engine.config(&run.queue))
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

    use std::fmt::Write as _;
    let mut banner = format!(
        "connmix-rs chat, dev mode: embedded engine, database {}\n",
        chat_consumer::db::redact(&database.database_url)
    );
    let _ = writeln!(
        banner,
        "  demo users: user1 and user2, password {DEMO_PASSWORD} (demo only: never reuse it)"
    );
    for node in engine.nodes() {
        let _ = writeln!(
            banner,
            "  open http://{}/  (engine node {})",
            node.chat_addr, node.id
        );
    }
    let _ = writeln!(
        banner,
        "  consumers elsewhere: chat-consumer --host {}\n  Ctrl-C stops",
        engine.center_host()
    );
    // Not println!: with stdout closed (`dev | head -2`) that panics; the chat goes on instead.
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());

    // The consumer presents the credentials the embedded engine requires, if any.
    let credentials = args
        .engine
        .credentials()
        .map(|c| (c.user().to_owned(), c.password().to_owned()));
    let served = consume(db, hasher, run, &engine.center_host(), credentials, cancel).await;
    engine.shutdown().await;
    served
}

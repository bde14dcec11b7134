//! `dev`: the whole chat on one machine, for trying it out.
//!
//! Starts the mock engine in this process (center, API servers and the browser chat page on
//! the chat port), a SQLite database with two demo users, and the consumer; stops on Ctrl-C.

use anyhow::Context as _;
use chat_consumer::service::users;
use clap::Args;
use connmix_mock::cli::EngineArgs;
use connmix_mock::{MockEngine, ScriptConfig};
use tokio_util::sync::CancellationToken;

use super::run::{cancel_on_signal, consume, start_admin, Engine};
use super::{hasher, open, ConsumerArgs, DatabaseArgs, HashArgs, ThreadsArgs};

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
    #[command(flatten)]
    pub(super) hashing: HashArgs,
    #[command(flatten)]
    pub(super) threads: ThreadsArgs,
}

/// The engine script of the Redis sources, written out for the embedded engine's Lua host.
const ENTRY_REDIS_LUA: &str = include_str!("../../../examples/engine/entry-redis.lua");
/// Where dev looks for Redis unless told otherwise.
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Where dev serves /metrics, /healthz and /readyz unless told otherwise.
const DEFAULT_ADMIN_ADDR: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 6791);

pub(super) async fn dev(database: &DatabaseArgs, args: &DevArgs) -> anyhow::Result<()> {
    let mut run = args.consumer.clone();
    run.admin_addr.get_or_insert(DEFAULT_ADMIN_ADDR);
    let limits = run.limits()?;
    // Watched from the start: a SIGTERM while the engine, the database or the demo users are
    // being set up ends dev cleanly instead of killing it.
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    let mut config = args.engine.config(&run.queue);
    let mut script_dir = None;
    if let Some(queue) = run.source.redis_queue() {
        let url = run
            .redis_url
            .get_or_insert_with(|| DEFAULT_REDIS_URL.to_owned())
            .clone();
        check_redis(&url).await?;
        if config.script.is_none() {
            // The repository's entry-redis.lua, pushing onto the same key the consumer reads.
            let dir = std::env::temp_dir().join(format!("connmix-rs-dev-{}", std::process::id()));
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("entry-redis.lua"), ENTRY_REDIS_LUA))
                .with_context(|| format!("cannot write the engine script to {}", dir.display()))?;
            let mut script = ScriptConfig::new(dir.join("entry-redis.lua")).with_redis("chat", url);
            script.options = vec![
                ("redis_queue".to_owned(), queue.to_owned()),
                ("redis_key".to_owned(), run.queue.clone()),
            ];
            config.script = Some(script);
            script_dir = Some(dir);
        }
    }
    let engine = MockEngine::start(config)
        .await
        .context("cannot start the embedded engine")?;
    let db = open(database).await?;
    let hasher = hasher(&args.hashing, limits.hash_parallelism)?;
    let admin = start_admin(run.admin_addr, &db).await?;
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
    let _ = writeln!(banner, "  events through: {}", run.source.describe());
    let _ = writeln!(
        banner,
        "  demo users: user1 and user2, password {DEMO_PASSWORD} (demo only: never reuse it)"
    );
    if let Some(admin) = &admin {
        let _ = writeln!(
            banner,
            "  metrics and health: http://{}/metrics, /healthz, /readyz",
            admin.addr
        );
    }
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
    let center = engine.center_host();
    let target = Engine {
        host: &center,
        credentials,
    };
    let served = consume(db, hasher, &run, target, admin.as_ref(), cancel).await;
    engine.shutdown().await;
    if let Some(dir) = script_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    served
}

/// Fails with the cause and what to do when Redis does not answer at `url`.
async fn check_redis(url: &str) -> anyhow::Result<()> {
    let shown = chat_consumer::db::redact(url);
    let advice = "start Redis (redis-server, or docker run -p 6379:6379 redis) or pass --redis-url";
    let ping = async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) if err.is_connection_refusal() => {
            anyhow::bail!("Redis is not reachable at {shown}: connection refused; {advice}")
        }
        Ok(Err(err)) => anyhow::bail!("Redis is not usable at {shown}: {err}; {advice}"),
        Err(_) => anyhow::bail!("Redis at {shown} did not answer within 3 s; {advice}"),
    }
}

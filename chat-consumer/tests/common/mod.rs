//! Shared set-up: a mock engine, a migrated in-memory database with users, and this consumer
//! serving through the real engine client.

#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use chat_consumer::admin::Readiness;
use chat_consumer::limits::Limits;
use chat_consumer::service::password::Hasher;
use chat_consumer::service::users;
use chat_consumer::{db, Consumer, Stopped};
use connmix_client::Client;
use connmix_mock::browser::Browser;
use connmix_mock::{MockConfig, MockEngine, ScriptConfig};
use sea_orm::DatabaseConnection;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Setup {
    pub engine: MockEngine,
    /// The consumer's database, with the users added.
    pub db: DatabaseConnection,
    pub cancel: CancellationToken,
    pub served: tokio::task::JoinHandle<chat_consumer::Result<Stopped>>,
    /// What `/readyz` would say of the consumer's engine connections.
    pub readiness: Readiness,
}

/// What runs on the engine's browser side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The mock's built-in chat script.
    BuiltIn,
    /// The repository's `examples/engine/entry.lua` in the mock's Lua host.
    EntryLua,
    /// `tests/scripts/tutorial.lua`: the original tutorial's shape (frame + uid only).
    Tutorial,
}

impl Mode {
    pub fn script(self) -> Option<ScriptConfig> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        match self {
            Mode::BuiltIn => None,
            Mode::EntryLua => Some(ScriptConfig::new(root.join("../examples/engine/entry.lua"))),
            Mode::Tutorial => Some(ScriptConfig::new(root.join("tests/scripts/tutorial.lua"))),
        }
    }
}

/// `both_modes!(name, body)`: module `name` with a test running `body(mode)` for the built-in
/// script and one for `examples/engine/entry.lua`.
#[macro_export]
macro_rules! both_modes {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn built_in() -> anyhow::Result<()> {
                super::$body(super::common::Mode::BuiltIn).await
            }
            #[tokio::test]
            async fn entry_lua() -> anyhow::Result<()> {
                super::$body(super::common::Mode::EntryLua).await
            }
        }
    };
}

pub async fn start(nodes: usize, users_to_add: &[(&str, &str)]) -> anyhow::Result<Setup> {
    start_in(Mode::BuiltIn, nodes, users_to_add).await
}

pub async fn start_in(
    mode: Mode,
    nodes: usize,
    users_to_add: &[(&str, &str)],
) -> anyhow::Result<Setup> {
    start_on("sqlite::memory:", mode, nodes, users_to_add).await
}

/// [`start_in`] on the database at `url` (migrated here; the users must not exist yet).
pub async fn start_on(
    url: &str,
    mode: Mode,
    nodes: usize,
    users_to_add: &[(&str, &str)],
) -> anyhow::Result<Setup> {
    let engine = MockEngine::start(MockConfig {
        nodes,
        script: mode.script(),
        ..MockConfig::ephemeral()
    })
    .await?;
    let db = db::connect(url).await?;
    db::migrate(&db).await?;
    let hasher = Hasher::with_cost(64, 1, 2)?;
    for (name, password) in users_to_add {
        let hash = hasher.hash(password).await?;
        users::create(&db, name, &format!("{name}@example.com"), hash).await?;
    }
    let readiness = Readiness::new();
    let consumer = Consumer {
        engine_timeout: WAIT,
        readiness: readiness.clone(),
        limits: Limits {
            drain_timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        ..Consumer::new(
            Client::builder(engine.center_host()).event_buffer(10_000),
            db.clone(),
            hasher,
        )
    };
    let cancel = CancellationToken::new();
    let served = tokio::spawn(chat_consumer::run(consumer, cancel.clone()));
    tokio::time::timeout(WAIT, engine.wait_for_consumers("chat", nodes))
        .await
        .context("consumer never consumed every node")?;
    Ok(Setup {
        engine,
        db,
        cancel,
        served,
        readiness,
    })
}

/// Whether `frame` is a room's `join` or `leave` event.
pub fn is_room_event(frame: &Value) -> bool {
    matches!(frame["event"].as_str(), Some("join" | "leave"))
}

/// The next frame `browser` receives that is not a room's `join` or `leave` event, for tests
/// about something else (the events come whenever someone joins, in no fixed order with the
/// frames around them).
pub async fn recv_chat(browser: &mut Browser) -> anyhow::Result<Value> {
    loop {
        let frame = browser.recv_json().await?;
        if !is_room_event(&frame) {
            return Ok(frame);
        }
    }
}

/// The server's URL from `var`, or `None` after saying why the test is skipped. With
/// `CONNMIX_REQUIRE_SERVICES=1` a missing URL fails the test instead.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var("CONNMIX_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            assert!(!required, "{var} not set but CONNMIX_REQUIRE_SERVICES=1");
            // Straight to the process's stderr: the test harness would swallow `println!`.
            let _ = writeln!(std::io::stderr(), "skipped: {var} not set");
            None
        }
    }
}

/// A name unique to this run: `<prefix>_<pid>_<nanoseconds>`.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

//! The Redis sources and the state consumers share through Redis, end to end: the mock engine
//! running `examples/engine/entry-redis.lua`, real Redis, browsers over WebSockets.
//!
//! Every test needs `CONNMIX_TEST_REDIS_URL` (`.ci/run` sets it) and skips, saying so,
//! without it. Each uses keys of its own, so runs in parallel do not collide.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use chat_consumer::limits::Limits;
use chat_consumer::serve::SourceKind;
use chat_consumer::service::password::Hasher;
use chat_consumer::service::users;
use chat_consumer::source::{RedisConfig, StreamConfig};
use chat_consumer::{db, Consumer, Stopped};
use common::WAIT;
use connmix_client::Client;
use connmix_mock::browser::Browser;
use connmix_mock::{MockConfig, MockEngine, ScriptConfig};
use connmix_protocol::chat::ChatRequest;
use sea_orm::DatabaseConnection;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long a browser hears nothing before the test takes it that nothing more comes: well
/// past the consumers' takeover time (1 s idle).
const QUIET: Duration = Duration::from_secs(5);

/// Redis's URL, or `None` after saying why the test is skipped (a failure instead with
/// `CONNMIX_REQUIRE_SERVICES=1`).
fn redis_url() -> Option<String> {
    use std::io::Write as _;
    match std::env::var("CONNMIX_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var("CONNMIX_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "CONNMIX_TEST_REDIS_URL not set but CONNMIX_REQUIRE_SERVICES=1"
            );
            let _ = writeln!(std::io::stderr(), "skipped: CONNMIX_TEST_REDIS_URL not set");
            None
        }
    }
}

/// A key no other test or run uses.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("test:{prefix}:{}:{nanos}", std::process::id())
}

/// The mock engine running entry-redis.lua, queueing onto `key` as a `mode` (`stream` or
/// `list`) in the Redis at `url`.
async fn engine(nodes: usize, url: &str, mode: &str, key: &str) -> anyhow::Result<MockEngine> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut script =
        ScriptConfig::new(root.join("../examples/engine/entry-redis.lua")).with_redis("chat", url);
    script.options = vec![
        ("redis_queue".to_owned(), mode.to_owned()),
        ("redis_key".to_owned(), key.to_owned()),
    ];
    Ok(MockEngine::start(MockConfig {
        nodes,
        script: Some(script),
        ..MockConfig::ephemeral()
    })
    .await?)
}

fn hasher() -> Hasher {
    Hasher::with_cost(64, 1, 2).unwrap()
}

async fn database(url: &str, names: &[&str]) -> anyhow::Result<DatabaseConnection> {
    let db = db::connect(url).await?;
    db::migrate(&db).await?;
    for name in names {
        let hash = hasher().hash("123456").await?;
        users::create(&db, name, &format!("{name}@example.com"), hash).await?;
    }
    Ok(db)
}

/// An in-process consumer of `engine` with `source`, sharing state through `redis`.
fn consumer(
    engine: &MockEngine,
    db: &DatabaseConnection,
    queue: &str,
    source: SourceKind,
    redis: &str,
    limits: Limits,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<chat_consumer::Result<Stopped>>,
) {
    let consumer = Consumer {
        engine_timeout: WAIT,
        queue: queue.to_owned(),
        limits,
        source,
        redis: Some(RedisConfig::new(redis)),
        ..Consumer::new(Client::builder(engine.center_host()), db.clone(), hasher())
    };
    let cancel = CancellationToken::new();
    let served = tokio::spawn(chat_consumer::run(consumer, cancel.clone()));
    (cancel, served)
}

async fn request(browser: &mut Browser, request: ChatRequest) -> anyhow::Result<Value> {
    browser.send_request(&request).await?;
    common::recv_chat(browser).await
}

async fn log_in(browser: &mut Browser, name: &str) -> anyhow::Result<()> {
    let reply = request(
        browser,
        ChatRequest::Auth {
            name: name.into(),
            password: "123456".into(),
        },
    )
    .await?;
    anyhow::ensure!(reply["success"] == true, "login of {name} failed: {reply}");
    Ok(())
}

async fn join(browser: &mut Browser, room: &str) -> anyhow::Result<()> {
    let reply = request(
        browser,
        ChatRequest::Subscribe {
            channels: vec![room.to_owned()],
        },
    )
    .await?;
    anyhow::ensure!(reply["success"] == true, "join failed: {reply}");
    Ok(())
}

/// Waits until `name`'s online count is `expected`.
async fn online_becomes(db: &DatabaseConnection, name: &str, expected: i32) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let user = users::find_by_name(db, name)
            .await?
            .context("user exists")?;
        if user.online == expected {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "online of {name} stayed {} instead of {expected}",
            user.online
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn redis_conn(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    Ok(redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?)
}

async fn delete(url: &str, keys: &[String]) -> anyhow::Result<()> {
    let mut conn = redis_conn(url).await?;
    redis::cmd("DEL")
        .arg(keys)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

#[tokio::test]
async fn redis_list_walkthrough_two_users_chat_in_a_room() -> anyhow::Result<()> {
    let Some(url) = redis_url() else {
        return Ok(());
    };
    let key = unique("list");
    let engine = engine(2, &url, "list", &key).await?;
    let db = database("sqlite::memory:", &["user1", "user2"]).await?;
    let (cancel, served) = consumer(
        &engine,
        &db,
        &key,
        SourceKind::RedisList,
        &url,
        Limits::default(),
    );
    let nodes = engine.nodes();
    let mut one = Browser::connect(nodes[0].chat_addr).await?;
    let mut two = Browser::connect(nodes[1].chat_addr).await?;
    for (browser, name) in [(&mut one, "user1"), (&mut two, "user2")] {
        log_in(browser, name).await?;
        join(browser, "room_101").await?;
    }
    one.send_request(&ChatRequest::SendToRoom {
        room: "room_101".into(),
        text: "hello,world!".into(),
    })
    .await?;
    let mut got = [
        common::recv_chat(&mut one).await?,
        common::recv_chat(&mut one).await?,
    ];
    got.sort_by_key(|v| v.get("op").is_some());
    let delivered_to_two = common::recv_chat(&mut two).await?;
    for delivery in [&got[0], &delivered_to_two] {
        assert_eq!(delivery["channel"], "room_101");
        assert_eq!(delivery["data"], "uid:1,message:hello,world!");
        assert_eq!(delivery["from"], "user1");
    }
    assert_eq!(got[1], json!({"op":"sendtoroom","success":true}));
    assert_eq!(
        request(&mut two, ChatRequest::Ping).await?,
        json!({"op":"pong"})
    );
    online_becomes(&db, "user1", 1).await?;
    one.close().await?;
    online_becomes(&db, "user1", 0).await?;

    cancel.cancel();
    assert_eq!(
        tokio::time::timeout(WAIT, served).await???,
        Stopped::Drained
    );
    engine.shutdown().await;
    delete(&url, &[key.clone(), format!("{key}:rate:1")]).await?;
    Ok(())
}

#[tokio::test]
async fn three_consumers_share_one_users_rate_limit() -> anyhow::Result<()> {
    let Some(url) = redis_url() else {
        return Ok(());
    };
    let queue = unique("rate");
    // The engine's own queue: shared state in Redis works whichever source feeds the events.
    let engine = MockEngine::start(MockConfig {
        queue: queue.clone(),
        ..MockConfig::ephemeral()
    })
    .await?;
    let db = database("sqlite::memory:", &["user1"]).await?;
    // A burst of 5 and almost no refill: exactly 5 messages may pass, however many consumers.
    let limits = Limits {
        messages_per_second: 0.001,
        message_burst: 5,
        ..Limits::default()
    };
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            consumer(
                &engine,
                &db,
                &queue,
                SourceKind::Engine,
                &url,
                limits.clone(),
            )
        })
        .collect();
    tokio::time::timeout(WAIT, engine.wait_for_consumers(&queue, 3)).await?;
    let mut browser = Browser::connect(engine.nodes()[0].chat_addr).await?;
    log_in(&mut browser, "user1").await?;
    let sent = 30;
    for n in 0..sent {
        browser
            .send_request(&ChatRequest::SendToUser {
                user: "user_1".into(),
                text: format!("m{n}"),
            })
            .await?;
    }
    let (mut accepted, mut refused) = (0, 0);
    while accepted + refused < sent {
        let reply = browser.recv_json().await?;
        match reply.get("op") {
            Some(op) if op == "sendtouser" && reply["success"] == true => accepted += 1,
            Some(op) if op == "sendtouser" => {
                assert_eq!(reply["error"], "Too many messages, slow down");
                refused += 1;
            }
            // Its own deliveries: the user's channel is its own.
            _ => {}
        }
    }
    assert_eq!(
        (accepted, refused),
        (5, sent - 5),
        "the burst is one limit across three consumers"
    );
    let counters = engine.counters();
    assert!(counters.delivered >= counters.queued, "{counters:?}");
    for (cancel, served) in consumers {
        cancel.cancel();
        served.await??;
    }
    engine.shutdown().await;
    delete(&url, &[format!("{queue}:rate:1")]).await?;
    Ok(())
}

/// A TCP proxy to Redis that can be cut (every connection dropped, new ones refused) and
/// restored: Redis going down and coming back, as the consumer sees it.
struct Proxy {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    cut: tokio::sync::broadcast::Sender<()>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = tokio::sync::broadcast::channel(1);
        let (accepting, cutting) = (Arc::clone(&up), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut = cutting.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.recv() => {}
                    }
                });
            }
        });
        Ok(Self { addr, up, cut })
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            let _ = self.cut.send(());
        }
    }
}

#[tokio::test]
async fn redis_down_and_back_the_consumer_waits_and_resumes() -> anyhow::Result<()> {
    let Some(url) = redis_url() else {
        return Ok(());
    };
    let redis_addr = redis::Client::open(url.as_str())?
        .get_connection_info()
        .addr()
        .to_string();
    let target = tokio::net::lookup_host(redis_addr.trim_start_matches("redis://"))
        .await?
        .next()
        .context("Redis address")?;
    let proxy = Proxy::start(target).await?;
    let key = unique("outage");
    // The engine pushes to Redis directly; only the consumer's way to it fails.
    let engine = engine(1, &url, "stream", &key).await?;
    let db = database("sqlite::memory:", &["user1"]).await?;
    let mut stream = StreamConfig::new(&key);
    stream.claim_idle = Duration::from_secs(1);
    let (cancel, served) = consumer(
        &engine,
        &db,
        &key,
        SourceKind::RedisStream(stream),
        &format!("redis://{}", proxy.addr),
        Limits::default(),
    );
    let mut browser = Browser::connect(engine.nodes()[0].chat_addr).await?;
    log_in(&mut browser, "user1").await?;

    proxy.set_up(false);
    browser.send_request(&ChatRequest::Ping).await?;
    let silent = tokio::time::timeout(Duration::from_millis(1500), browser.recv_json()).await;
    assert!(silent.is_err(), "answered without Redis: {silent:?}");
    assert!(
        !served.is_finished(),
        "the consumer gave up during the outage"
    );

    proxy.set_up(true);
    // The login's acknowledgement may have been cut off with Redis: its entry is then taken
    // over and answered again, the one thing a user can see twice (SPEC.md 7.2).
    loop {
        let reply = browser.recv_json().await?;
        if reply == json!({"op":"pong"}) {
            break;
        }
        assert_eq!(
            reply["op"], "auth",
            "only a repeated login reply may come first: {reply}"
        );
        assert_eq!(reply["success"], true, "{reply}");
    }
    assert_eq!(
        request(&mut browser, ChatRequest::Ping).await?,
        json!({"op":"pong"})
    );
    cancel.cancel();
    assert_eq!(
        tokio::time::timeout(WAIT, served).await???,
        Stopped::Drained
    );
    engine.shutdown().await;
    delete(&url, &[key.clone(), format!("{key}:dead")]).await?;
    Ok(())
}

/// A `chat-consumer` process reading the stream `key`, once it reads; killed when dropped.
async fn consumer_process(
    center: &str,
    database: &str,
    redis: &str,
    key: &str,
    name: &str,
) -> anyhow::Result<tokio::process::Child> {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-consumer"))
        .args(["run", "--host", center, "--database-url", database])
        .args([
            "--source",
            "redis-stream",
            "--redis-url",
            redis,
            "--queue",
            key,
        ])
        .args(["--stream-consumer", name, "--stream-claim-idle-secs", "1"])
        .args(["--messages-per-second", "10000", "--message-burst", "10000"])
        .args(["--argon2-memory-kib", "64", "--argon2-iterations", "1"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().context("stderr")?).lines();
    let (ready, consuming) = tokio::sync::oneshot::channel();
    let name = name.to_owned();
    tokio::spawn(async move {
        let mut ready = Some(ready);
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("consuming") {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            }
            // Warnings and errors stay visible in the test's output.
            if line.contains("WARN") || line.contains("ERROR") || line.contains("took over") {
                eprintln!("[{name}] {line}");
            }
        }
    });
    tokio::time::timeout(WAIT, consuming)
        .await
        .context("the consumer never started consuming")??;
    Ok(child)
}

#[tokio::test]
async fn a_consumer_killed_mid_traffic_loses_nothing_and_publishes_nothing_twice(
) -> anyhow::Result<()> {
    let Some(url) = redis_url() else {
        return Ok(());
    };
    let key = unique("stream");
    let dir = std::env::temp_dir().join(unique("kill").replace(':', "-"));
    std::fs::create_dir_all(&dir)?;
    let database = format!("sqlite://{}?mode=rwc", dir.join("users.db").display());
    database_file(&database).await?;
    let engine = engine(1, &url, "stream", &key).await?;
    let center = engine.center_host();
    let mut survivor = consumer_process(&center, &database, &url, &key, "survivor").await?;
    let mut victim = consumer_process(&center, &database, &url, &key, "victim").await?;

    let node = engine.nodes()[0].chat_addr;
    let (mut sender, mut reader) = (Browser::connect(node).await?, Browser::connect(node).await?);
    log_in(&mut sender, "user1").await?;
    log_in(&mut reader, "user2").await?;
    join(&mut sender, "room_7").await?;
    join(&mut reader, "room_7").await?;

    let sent = 200;
    for n in 0..sent {
        if n == sent / 2 {
            // Mid-traffic, without warning: whatever it read and did not acknowledge is
            // taken over by the survivor after the idle time.
            victim.start_kill()?;
        }
        sender
            .send_request(&ChatRequest::SendToRoom {
                room: "room_7".into(),
                text: format!("m{n}"),
            })
            .await?;
    }
    victim.wait().await?;

    // Every message reaches the reader once. The one exception the spec names: a consumer
    // killed between recording an entry as published and publishing it loses that message;
    // the sender's events are handled one at a time, so at most one is in that window.
    let mut seen: HashMap<String, usize> = HashMap::new();
    while seen.len() < sent {
        // Quiet for QUIET (the browser's own timeout or ours): nothing more is coming.
        let Ok(Ok(delivery)) = tokio::time::timeout(QUIET, reader.recv_json()).await else {
            break;
        };
        // Room events, and answers to the reader's own requests: a redelivered entry (its
        // subscribe, taken over from the victim) may be answered again.
        if common::is_room_event(&delivery) || delivery.get("op").is_some() {
            continue;
        }
        let text = delivery["data"].as_str().unwrap_or_default().to_owned();
        *seen.entry(text).or_default() += 1;
    }
    reader.send_request(&ChatRequest::Ping).await?;
    loop {
        let frame = common::recv_chat(&mut reader).await?;
        if frame == json!({"op":"pong"}) {
            break;
        }
        assert!(
            frame.get("op").is_some(),
            "a duplicate delivery came before the answer to ping: {frame}"
        );
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "published twice: {twice:?}");
    let lost: Vec<usize> = (0..sent)
        .filter(|n| !seen.contains_key(&format!("uid:1,message:m{n}")))
        .collect();
    assert!(lost.len() <= 1, "lost: {lost:?}");
    // The sender has an answer for every message it sent (a redelivered one may answer twice).
    let mut answered = 0;
    while let Ok(Ok(reply)) = tokio::time::timeout(QUIET, sender.recv_json()).await {
        if reply.get("op").is_some_and(|op| op == "sendtoroom") {
            assert_eq!(reply["success"], true, "{reply}");
            answered += 1;
        }
    }
    assert!(
        answered >= sent - lost.len(),
        "{answered} answers to {sent} messages"
    );
    // And nothing is left pending in the group.
    let mut conn = redis_conn(&url).await?;
    let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(&key)
        .arg(chat_consumer::source::DEFAULT_GROUP)
        .query_async(&mut conn)
        .await?;
    assert_eq!(pending.count(), 0, "entries left unacknowledged");
    // Each published message has its published-once record; acknowledged, the records are
    // kept 10 minutes rather than a day (the EXPIREs follow the XACK in one pipeline).
    let done: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{key}:done:*"))
        .query_async(&mut conn)
        .await?;
    assert!(
        done.len() >= sent - lost.len(),
        "{} records for {sent} messages",
        done.len()
    );
    let mut longest = i64::MAX;
    for _ in 0..50 {
        longest = 0;
        for record in &done {
            let ttl: i64 = redis::cmd("TTL").arg(record).query_async(&mut conn).await?;
            longest = longest.max(ttl);
        }
        if longest <= 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        (1..=600).contains(&longest),
        "an acknowledged record lives {longest} s"
    );

    survivor.start_kill()?;
    survivor.wait().await?;
    engine.shutdown().await;
    let mut keys = vec![key.clone(), format!("{key}:dead")];
    keys.extend(done);
    keys.extend((1..=2).map(|uid| format!("{key}:rate:{uid}")));
    delete(&url, &keys).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn database_file(url: &str) -> anyhow::Result<()> {
    database(url, &["user1", "user2"]).await?;
    Ok(())
}

#[tokio::test]
async fn entries_that_cannot_be_handled_go_to_the_dead_letter_stream() -> anyhow::Result<()> {
    let Some(url) = redis_url() else {
        return Ok(());
    };
    let key = unique("dead");
    let group = chat_consumer::source::DEFAULT_GROUP;
    let mut conn = redis_conn(&url).await?;
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async::<()>(&mut conn)
        .await?;
    // An entry no consumer can answer (no connection in it), and one a consumer that kept
    // crashing has had 5 times.
    redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("data")
        .arg("not json")
        .query_async::<String>(&mut conn)
        .await?;
    let poison: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("data")
        .arg(r#"{"event":"close","uid":null,"node":"1","client_id":"1"}"#)
        .query_async(&mut conn)
        .await?;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg("crashing")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg(&key)
        .arg(">")
        .query_async(&mut conn)
        .await?;
    // Both read once by a consumer that then crashed; the poison entry 5 times.
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(&key)
        .arg(group)
        .arg("crashing")
        .arg(0)
        .arg(&poison)
        .arg("RETRYCOUNT")
        .arg(5)
        .query_async(&mut conn)
        .await?;

    let engine = engine(1, &url, "stream", &key).await?;
    let db = database("sqlite::memory:", &["user1"]).await?;
    let mut stream = StreamConfig::new(&key);
    stream.claim_idle = Duration::from_millis(300);
    stream.max_deliveries = 5;
    let (cancel, served) = consumer(
        &engine,
        &db,
        &key,
        SourceKind::RedisStream(stream),
        &url,
        Limits::default(),
    );
    let dead_key = format!("{key}:dead");
    let buried = async {
        loop {
            let mut conn = redis_conn(&url).await?;
            let len: usize = redis::cmd("XLEN")
                .arg(&dead_key)
                .query_async(&mut conn)
                .await?;
            if len == 2 {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, buried)
        .await
        .context("both entries reach the dead-letter stream")??;
    let dead: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&dead_key)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await?;
    let field = |n: usize, name: &str| -> String {
        dead.ids[n]
            .map
            .get(name)
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .unwrap_or_default()
    };
    let by_id: HashMap<String, usize> = (0..2).map(|n| (field(n, "id"), n)).collect();
    let poisoned = by_id[&poison];
    assert!(
        field(poisoned, "reason").contains("5 deliveries"),
        "{dead:?}"
    );
    assert!(field(poisoned, "data").contains("\"client_id\""));
    let unreadable = 1 - poisoned;
    assert_eq!(field(unreadable, "data"), "not json");
    assert!(
        field(unreadable, "reason").contains("not JSON")
            || field(unreadable, "reason").contains("no connection")
    );
    // Nothing stays pending, and the consumer still answers browsers.
    let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(&key)
        .arg(group)
        .query_async(&mut conn)
        .await?;
    assert_eq!(pending.count(), 0);
    let mut browser = Browser::connect(engine.nodes()[0].chat_addr).await?;
    assert_eq!(
        request(&mut browser, ChatRequest::Ping).await?,
        json!({"op":"pong"})
    );
    cancel.cancel();
    tokio::time::timeout(WAIT, served).await???;
    engine.shutdown().await;
    delete(&url, &[key.clone(), dead_key]).await?;
    Ok(())
}

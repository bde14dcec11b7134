//! Faults users live through, end to end: the database cut away behind a TCP proxy while the
//! chat runs. Needs MariaDB (`CONNMIX_TEST_MYSQL_URL`); skips, saying so, without it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use chat_consumer::service::password::Hasher;
use chat_consumer::service::users;
use chat_consumer::{db, Consumer};
use connmix_client::Client;
use connmix_mock::browser::Browser;
use connmix_mock::{MockConfig, MockEngine};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// A TCP proxy to `target` that can be cut (every connection dropped, new ones refused at
/// once) and restored.
struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, mut cut_rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut links = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { return };
                        if *cut_rx.borrow() {
                            continue; // dropped: refused at once
                        }
                        let target = target.clone();
                        links.spawn(async move {
                            if let Ok(mut server) = TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                    changed = cut_rx.changed() => {
                        if changed.is_err() { return; }
                        if *cut_rx.borrow() {
                            links.abort_all();
                        }
                    }
                }
            }
        });
        Self { addr, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// The MariaDB URL with its `host:port` replaced by the proxy's, and the `host:port` itself.
fn through(url: &str, proxy: SocketAddr) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let (credentials, rest) = rest.rsplit_once('@').unwrap_or(("", rest));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let at = if credentials.is_empty() { "" } else { "@" };
    Some((
        format!("{scheme}://{credentials}{at}{proxy}/{path}"),
        host.to_owned(),
    ))
}

async fn login(browser: &mut Browser, name: &str, password: &str) -> Value {
    let frame = json!({"op": "auth", "args": [name, password]}).to_string();
    browser.send(&frame).await.unwrap();
    browser.recv_json().await.unwrap()
}

#[tokio::test]
async fn a_database_cut_fails_logins_cleanly_chat_goes_on_and_logins_recover() {
    let Some(url) = std::env::var("CONNMIX_TEST_MYSQL_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        let required = std::env::var("CONNMIX_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "CONNMIX_TEST_MYSQL_URL not set but CONNMIX_REQUIRE_SERVICES=1"
        );
        let _ = writeln!(std::io::stderr(), "skipped: CONNMIX_TEST_MYSQL_URL not set");
        return;
    };
    let placeholder: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let (_, target) = through(&url, placeholder).expect("a mysql://host:port/db URL");
    let proxy = Proxy::start(target).await;
    let (proxied, _) = through(&url, proxy.addr).unwrap();
    let db = db::connect_with_timeout(&proxied, Duration::from_secs(1))
        .await
        .unwrap();
    db::migrate(&db).await.unwrap();
    let hasher = Hasher::with_cost(64, 1, 2).unwrap();
    let name = format!("fault_{}", std::process::id());
    if users::find_by_name(&db, &name).await.unwrap().is_none() {
        let hash = hasher.hash("123456").await.unwrap();
        users::create(&db, &name, "f@example.com", hash)
            .await
            .unwrap();
    }

    let engine = MockEngine::start(MockConfig::ephemeral()).await.unwrap();
    let consumer = Consumer::new(
        Client::builder(engine.center_host()),
        db.clone(),
        Hasher::with_cost(64, 1, 2).unwrap(),
    );
    let shutdown = CancellationToken::new();
    let served = tokio::spawn(chat_consumer::run(consumer, shutdown.clone()));
    tokio::time::timeout(WAIT, engine.wait_for_consumers("chat", 1))
        .await
        .expect("the consumer consumes");
    let node = engine.node(0).unwrap();

    let mut member = Browser::connect(node.chat_addr).await.unwrap();
    assert_eq!(login(&mut member, &name, "123456").await["success"], true);
    member
        .send(r#"{"op":"subscribe","args":["room_1"]}"#)
        .await
        .unwrap();
    assert_eq!(member.recv_json().await.unwrap()["success"], true);

    proxy.set_cut(true);
    assert!(
        users::find_by_name(&db, &name).await.is_err(),
        "the cut is real: the database cannot be reached"
    );
    // A login now is refused as an internal error, and the connection is not left frozen.
    let mut late = Browser::connect(node.chat_addr).await.unwrap();
    let refused = tokio::time::timeout(WAIT, login(&mut late, &name, "123456"))
        .await
        .expect("a login during the cut is answered");
    assert_eq!(
        refused,
        json!({"op": "auth", "error": "Internal error, please retry"})
    );
    late.send(r#"{"op":"ping"}"#).await.unwrap();
    assert_eq!(late.recv_json().await.unwrap(), json!({"op": "pong"}));
    // A logged-in user still chats: the sender's name is remembered from the login.
    member
        .send(r#"{"op":"sendtoroom","args":["room_1","still here"]}"#)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = member.recv_json().await.unwrap();
        // The member's own join of room_1 may come first.
        if frame["event"] != "join" {
            seen.push(frame);
        }
    }
    assert!(
        seen.iter()
            .any(|m| m["text"] == "still here" && m["from"] == name.as_str()),
        "{seen:?}"
    );
    assert!(seen.iter().any(|m| m["success"] == true), "{seen:?}");

    proxy.set_cut(false);
    // Logins work again once the database is back (the pool reconnects).
    let recovered = tokio::time::timeout(WAIT, async {
        loop {
            let mut again = Browser::connect(node.chat_addr).await.unwrap();
            if login(&mut again, &name, "123456").await["success"] == true {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(recovered.is_ok(), "logins did not recover after the cut");

    shutdown.cancel();
    tokio::time::timeout(WAIT, served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    engine.shutdown().await;
}

//! `/metrics` as a monitoring system sees it: it counts what browsers did.
//!
//! The metrics recorder is the process's, so this file has one test; `/readyz`, whose tests
//! change the engine connections a metric counts, is tested in `readiness.rs`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use chat_consumer::admin::{self, Admin, Readiness};
use common::{start, WAIT};
use connmix_mock::browser::Browser;
use connmix_protocol::chat::ChatRequest;
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

/// Serves the admin endpoints on a free port; they stop with `stop`.
async fn serve_admin(
    metrics: PrometheusHandle,
    readiness: &Readiness,
    db: &DatabaseConnection,
    stop: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let admin = Admin {
        metrics,
        readiness: readiness.clone(),
        db: db.clone(),
    };
    tokio::spawn(admin::serve(listener, admin, stop.clone()));
    Ok(addr)
}

async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let response = reqwest::get(format!("http://{addr}{path}")).await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// The value of the sample `name` whose labels include every one of `labels`.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let matches = metric == name
            && labels
                .iter()
                .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")));
        matches.then(|| value.parse().ok()).flatten()
    })
}

/// Scrapes `/metrics` until `name{labels}` is `want` (an event is counted just after its
/// reply is sent), then returns the last scrape.
async fn scrape_until(
    addr: SocketAddr,
    name: &str,
    labels: &[(&str, &str)],
    want: f64,
) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, text) = get(addr, "/metrics").await?;
        assert_eq!(status, 200);
        if sample(&text, name, labels) == Some(want) || tokio::time::Instant::now() > deadline {
            return Ok(text);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn metrics_count_a_login_and_a_message() -> anyhow::Result<()> {
    // Before the consumer starts: what it records earlier is lost.
    let metrics = admin::install_recorder()?;
    let setup = start(1, &[("user1", "123456")]).await?;
    let stop = CancellationToken::new();
    let addr = serve_admin(metrics, &setup.readiness, &setup.db, &stop).await?;

    let mut browser = Browser::connect(setup.engine.nodes()[0].chat_addr).await?;
    browser
        .send_request(&ChatRequest::Auth {
            name: "user1".into(),
            password: "123456".into(),
        })
        .await?;
    assert_eq!(browser.recv_json().await?["success"], true);
    browser
        .send_request(&ChatRequest::SendToRoom {
            room: "room_1".into(),
            text: "hello".into(),
        })
        .await?;
    assert_eq!(browser.recv_json().await?["success"], true);

    let room = [("op", "sendtoroom"), ("outcome", "ok")];
    let text = scrape_until(addr, "chat_events_total", &room, 1.0).await?;
    assert_eq!(
        sample(&text, "chat_events_total", &room),
        Some(1.0),
        "{text}"
    );
    let auth = [("op", "auth"), ("outcome", "ok")];
    assert_eq!(
        sample(&text, "chat_events_total", &auth),
        Some(1.0),
        "{text}"
    );
    for refused in ["auth", "sendtoroom"] {
        let labels = [("op", refused), ("outcome", "refused")];
        assert_eq!(sample(&text, "chat_events_total", &labels), Some(0.0));
    }
    let login_ok = [("result", "ok")];
    assert_eq!(sample(&text, "chat_logins_total", &login_ok), Some(1.0));
    let auth_op = [("op", "auth")];
    assert_eq!(
        sample(&text, "chat_event_duration_seconds_count", &auth_op),
        Some(1.0),
        "the latency histogram has one auth sample: {text}"
    );
    assert!(
        sample(&text, "chat_password_hash_duration_seconds_count", &[]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "chat_events_in_flight", &[]), Some(0.0));
    let text = scrape_until(addr, "chat_engine_nodes_connected", &[], 1.0).await?;
    assert_eq!(sample(&text, "chat_engine_nodes_connected", &[]), Some(1.0));

    assert_eq!(get(addr, "/healthz").await?, (200, "ok".to_owned()));
    stop.cancel();
    setup.cancel.cancel();
    tokio::time::timeout(WAIT, setup.served).await???;
    setup.engine.shutdown().await;
    Ok(())
}

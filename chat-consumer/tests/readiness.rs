//! `/healthz` answers while the process runs, `/readyz` only while an engine node is
//! connected and the database answers.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use chat_consumer::admin::{self, Admin, Readiness};
use chat_consumer::service::password::Hasher;
use chat_consumer::Consumer;
use common::{start, WAIT};
use connmix_client::Client;
use metrics_exporter_prometheus::PrometheusBuilder;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

/// Serves the admin endpoints on a free port, with metrics of their own (no recorder is
/// installed); they stop with `stop`.
async fn serve_admin(
    readiness: &Readiness,
    db: &DatabaseConnection,
    stop: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let admin = Admin {
        metrics: PrometheusBuilder::new().build_recorder().handle(),
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

/// Asks `/readyz` until its status is `want`, then returns its answer.
async fn ready_until(addr: SocketAddr, want: u16) -> anyhow::Result<(u16, String)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = get(addr, "/readyz").await?;
        if answer.0 == want || tokio::time::Instant::now() > deadline {
            return Ok(answer);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn ready_only_while_an_engine_node_is_connected() -> anyhow::Result<()> {
    let setup = start(1, &[]).await?;
    let stop = CancellationToken::new();
    let addr = serve_admin(&setup.readiness, &setup.db, &stop).await?;
    assert_eq!(ready_until(addr, 200).await?, (200, "ok".to_owned()));

    let node = setup.engine.nodes()[0].id.clone();
    setup.engine.kill_node(&node).await;
    let (status, reason) = ready_until(addr, 503).await?;
    assert_eq!(status, 503, "{reason}");
    assert!(
        reason.contains("engine"),
        "the reason names the engine: {reason}"
    );
    assert_eq!(get(addr, "/healthz").await?.0, 200, "still alive");

    stop.cancel();
    setup.cancel.cancel();
    let _ = tokio::time::timeout(WAIT, setup.served).await;
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn not_ready_before_the_engine_answers() -> anyhow::Result<()> {
    // A center that takes connections and never answers: the consumer waits at start-up.
    let center = std::net::TcpListener::bind("127.0.0.1:0")?;
    let db = chat_consumer::db::connect("sqlite::memory:").await?;
    let readiness = Readiness::new();
    let consumer = Consumer {
        engine_timeout: WAIT,
        readiness: readiness.clone(),
        ..Consumer::new(
            Client::builder(center.local_addr()?.to_string()),
            db.clone(),
            Hasher::with_cost(64, 1, 2)?,
        )
    };
    let cancel = CancellationToken::new();
    let served = tokio::spawn(chat_consumer::run(consumer, cancel.clone()));
    let stop = CancellationToken::new();
    let addr = serve_admin(&readiness, &db, &stop).await?;

    let (status, reason) = get(addr, "/readyz").await?;
    assert_eq!(status, 503);
    assert_eq!(reason, "engine: not connected yet");
    assert_eq!(get(addr, "/healthz").await?, (200, "ok".to_owned()));

    cancel.cancel();
    tokio::time::timeout(WAIT, served).await???;
    stop.cancel();
    Ok(())
}

#[tokio::test]
async fn not_ready_when_the_database_does_not_answer() -> anyhow::Result<()> {
    let setup = start(1, &[]).await?;
    let gone = chat_consumer::db::connect("sqlite::memory:").await?;
    gone.clone().close().await?;
    let stop = CancellationToken::new();
    let addr = serve_admin(&setup.readiness, &gone, &stop).await?;
    let (status, reason) = get(addr, "/readyz").await?;
    assert_eq!(status, 503);
    assert!(reason.starts_with("database"), "{reason}");

    stop.cancel();
    setup.cancel.cancel();
    tokio::time::timeout(WAIT, setup.served).await???;
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn not_ready_once_shutdown_has_begun() -> anyhow::Result<()> {
    let setup = start(1, &[]).await?;
    let stop = CancellationToken::new();
    let addr = serve_admin(&setup.readiness, &setup.db, &stop).await?;
    assert_eq!(ready_until(addr, 200).await?, (200, "ok".to_owned()));
    setup.cancel.cancel();
    assert_eq!(get(addr, "/readyz").await?, (503, "stopping".to_owned()));
    tokio::time::timeout(WAIT, setup.served).await???;
    stop.cancel();
    setup.engine.shutdown().await;
    Ok(())
}

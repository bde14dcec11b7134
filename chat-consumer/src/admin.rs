//! The admin HTTP server: `GET /metrics` (Prometheus text format), `GET /healthz` and
//! `GET /readyz`.
//!
//! `/healthz` answers 200 `ok` while the process runs. `/readyz` answers 200 `ok` when at
//! least one engine node is connected and the database answers a ping, and 503 with the reason
//! otherwise (also before the consumer has reached the engine, and once it is shutting down). The metric names are in
//! [`crate::telemetry::names`].

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use connmix_client::{Client, ClientState};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind, Result};

/// Bucket bounds, in seconds, of every `*_seconds` histogram: from a ping's tens of
/// microseconds to a slow login's seconds.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];
/// How long `/readyz` waits for the database's answer to its ping.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How often histogram samples are folded in when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder as the process's metrics recorder (once; later calls
/// return the same handle). Metrics recorded before it are lost, so call it before
/// [`crate::run`].
pub fn install_recorder() -> Result<PrometheusHandle> {
    let mut installed = RECORDER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|err| {
            Error::new(
                ErrorKind::InvalidInput,
                "cannot install the metrics recorder",
            )
            .with_source(err)
        })?;
    *installed = Some(handle.clone());
    Ok(handle)
}

/// What `/readyz` knows of the engine: the client's state once [`crate::run`] has one.
/// Clones share it; give one to [`crate::Consumer::readiness`] and one to [`Admin`].
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    engine: Arc<OnceLock<watch::Receiver<ClientState>>>,
    shutdown: Arc<OnceLock<CancellationToken>>,
}

impl Readiness {
    /// Nothing known yet: not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Follows `client`'s node connections from now on (the first client given stays).
    pub(crate) fn watch(&self, client: &Client) {
        let _ = self.engine.set(client.state());
    }

    /// Says "stopping" from the moment `shutdown` is cancelled: the consumer then takes no
    /// new events.
    pub(crate) fn watch_shutdown(&self, shutdown: &CancellationToken) {
        let _ = self.shutdown.set(shutdown.clone());
    }

    /// Whether the consumer is shutting down.
    pub fn stopping(&self) -> bool {
        self.shutdown
            .get()
            .is_some_and(CancellationToken::is_cancelled)
    }

    /// How many engine nodes are connected; `None` before the consumer has an engine client.
    pub fn engine_nodes_connected(&self) -> Option<usize> {
        self.engine.get().map(|state| {
            let state = state.borrow();
            if state.closed {
                0
            } else {
                state.connected()
            }
        })
    }
}

/// What the admin server serves from.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Renders the metrics ([`install_recorder`]).
    pub metrics: PrometheusHandle,
    /// The engine connections `/readyz` checks.
    pub readiness: Readiness,
    /// The database `/readyz` pings.
    pub db: DatabaseConnection,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    admin: Admin,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let upkeep = tokio::spawn({
        let (handle, stop) = (admin.metrics.clone(), shutdown.clone());
        async move {
            let mut every = tokio::time::interval(UPKEEP);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = every.tick() => handle.run_upkeep(),
                }
            }
        }
    });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(admin));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    upkeep.abort();
    served
}

async fn metrics(State(admin): State<Arc<Admin>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        admin.metrics.render(),
    )
}

async fn readyz(State(admin): State<Arc<Admin>>) -> (StatusCode, &'static str) {
    let unready = StatusCode::SERVICE_UNAVAILABLE;
    if admin.readiness.stopping() {
        return (unready, "stopping");
    }
    match admin.readiness.engine_nodes_connected() {
        None => return (unready, "engine: not connected yet"),
        Some(0) => return (unready, "engine: no node connected"),
        Some(_) => {}
    }
    match tokio::time::timeout(PING_TIMEOUT, admin.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok"),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database ping failed");
            (unready, "database: ping failed")
        }
        Err(_) => (unready, "database: no answer to a ping"),
    }
}

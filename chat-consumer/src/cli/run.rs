//! `run`: migrate, connect to the engine, serve until a signal, drain.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use chat_consumer::admin::{self, Admin, Readiness};

use chat_consumer::reconcile::Reconcile;
use chat_consumer::service::password::Hasher;
use chat_consumer::source::RedisConfig;
use chat_consumer::{Consumer, Stopped};
use connmix_client::Client;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::{hasher, open, ConsumerArgs, DatabaseArgs, RunArgs};

pub(super) async fn run(database: &DatabaseArgs, args: &RunArgs) -> anyhow::Result<()> {
    let limits = args.consumer.limits()?;
    let db = open(database).await?;
    let hasher = hasher(&args.hashing, limits.hash_parallelism)?;
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    let credentials = args.api_user.clone().zip(args.api_password.clone());
    consume(db, hasher, &args.consumer, &args.host, credentials, cancel).await
}

/// Connects to the engine whose center is `host` (with basic `credentials` when given: user,
/// password) and answers chat events until `cancel`.
pub(super) async fn consume(
    db: DatabaseConnection,
    hasher: Hasher,
    args: &ConsumerArgs,
    host: &str,
    credentials: Option<(String, String)>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut engine = Client::builder(host);
    if let Some((user, password)) = credentials {
        engine = engine.credentials(user, password);
    }
    let readiness = Readiness::new();
    // Stopped once the consumer has: its metrics stay readable while it drains.
    let admin_stop = CancellationToken::new();
    let _admin_stop = admin_stop.clone().drop_guard();
    if let Some(addr) = args.admin_addr {
        start_admin(addr, &db, &readiness, admin_stop).await?;
    }
    let consumer = Consumer {
        engine_timeout: Duration::from_secs(args.engine_timeout_secs),
        queue: args.queue.clone(),
        limits: args.limits()?,
        reconcile: Reconcile {
            interval: Duration::from_secs(args.presence_reconcile_secs),
        },
        source: args.source(),
        redis: args.redis_url.clone().map(RedisConfig::new),
        readiness,
        ..Consumer::new(engine, db, hasher)
    };
    match chat_consumer::run(consumer, cancel).await? {
        Stopped::Drained => {
            tracing::info!("stopped");
            Ok(())
        }
        Stopped::DeadlinePassed => Err(DrainIncomplete.into()),
    }
}

/// Installs the metrics recorder and serves the admin endpoints on `addr` until `stop`.
async fn start_admin(
    addr: SocketAddr,
    db: &DatabaseConnection,
    readiness: &Readiness,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = admin::install_recorder()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve --admin-addr {addr}"))?;
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(%addr, "admin server: /metrics, /healthz, /readyz");
    let admin = Admin {
        metrics,
        readiness: readiness.clone(),
        db: db.clone(),
    };
    tokio::spawn(async move {
        if let Err(err) = admin::serve(listener, admin, stop).await {
            tracing::error!(error = %err, "admin server failed");
        }
    });
    Ok(())
}

/// The drain deadline passed with received events unhandled: they are lost, which a
/// supervisor should hear about ([`DrainIncomplete::EXIT_CODE`]).
#[derive(Debug, thiserror::Error)]
#[error("stopped before every received event was handled: the drain deadline passed (raise --drain-timeout-secs)")]
pub(crate) struct DrainIncomplete;

impl DrainIncomplete {
    /// The process's exit code in this case; other errors exit with 1.
    pub(crate) const EXIT_CODE: u8 = 2;
}

/// Cancels `cancel` on Ctrl-C or SIGTERM.
pub(super) async fn cancel_on_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch SIGTERM; Ctrl-C only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("signal received");
    cancel.cancel();
}

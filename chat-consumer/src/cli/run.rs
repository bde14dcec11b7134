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
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{hasher, open, ConsumerArgs, DatabaseArgs, RunArgs};

pub(super) async fn run(database: &DatabaseArgs, args: &RunArgs) -> anyhow::Result<()> {
    let limits = args.consumer.limits()?;
    let db = open(database).await?;
    let hasher = hasher(&args.hashing, limits.hash_parallelism)?;
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    let credentials = args.api_user.clone().zip(args.api_password.clone());
    let admin = start_admin(args.consumer.admin_addr, &db).await?;
    let engine = Engine {
        host: &args.host,
        credentials,
    };
    consume(db, hasher, &args.consumer, engine, admin.as_ref(), cancel).await
}

/// The engine to consume: its center, and the basic credentials (user, password) it requires.
pub(super) struct Engine<'a> {
    pub(super) host: &'a str,
    pub(super) credentials: Option<(String, String)>,
}

/// Connects to `engine` and answers chat events until `cancel`, telling `admin`'s `/readyz`
/// of the engine connections.
pub(super) async fn consume(
    db: DatabaseConnection,
    hasher: Hasher,
    args: &ConsumerArgs,
    engine: Engine<'_>,
    admin: Option<&AdminServer>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let Engine { host, credentials } = engine;
    let mut engine = Client::builder(host);
    if let Some((user, password)) = credentials {
        engine = engine.credentials(user, password);
    }
    let readiness = admin.map(|a| a.readiness.clone()).unwrap_or_default();
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

/// The admin server (`--admin-addr`), serving until dropped: after the consumer has stopped,
/// so that its metrics stay readable while it drains.
pub(super) struct AdminServer {
    /// The address it listens on, for dev's banner.
    #[cfg(feature = "dev")]
    pub(super) addr: SocketAddr,
    readiness: Readiness,
    _stop: DropGuard,
}

/// With an address: installs the metrics recorder and serves the admin endpoints there.
pub(super) async fn start_admin(
    addr: Option<SocketAddr>,
    db: &DatabaseConnection,
) -> anyhow::Result<Option<AdminServer>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let metrics = admin::install_recorder()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve --admin-addr {addr}"))?;
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(%addr, "admin server: /metrics, /healthz, /readyz");
    let readiness = Readiness::new();
    let admin = Admin {
        metrics,
        readiness: readiness.clone(),
        db: db.clone(),
    };
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            if let Err(err) = admin::serve(listener, admin, stop).await {
                tracing::error!(error = %err, "admin server failed");
            }
        }
    });
    Ok(Some(AdminServer {
        #[cfg(feature = "dev")]
        addr,
        readiness,
        _stop: stop.drop_guard(),
    }))
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

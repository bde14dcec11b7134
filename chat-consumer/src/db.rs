//! Opening the database and bringing its schema up to date.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

use crate::error::{Error, ErrorKind, Result};
use crate::migration::Migrator;

mod explain;

/// The database used when none is given: a file next to the process.
pub const DEFAULT_URL: &str = "sqlite://chat.db?mode=rwc";

/// Connects to `url` (`sqlite:`, `mysql:`/`mariadb:`, `postgres:`).
///
/// Statement logging is off: the statements carry password hashes as parameters.
pub async fn connect(url: &str) -> Result<DatabaseConnection> {
    connect_with_timeout(url, Duration::from_secs(5)).await
}

/// [`connect`], giving up on an unreachable server after `timeout`.
///
/// The error names the server's `host:port` and the cause (refused, unknown host, wrong user
/// or password, no such database, a SQLite file that does not exist), never the password.
pub async fn connect_with_timeout(url: &str, timeout: Duration) -> Result<DatabaseConnection> {
    let normalised = normalise(url)?;
    let mut options = ConnectOptions::new(normalised.as_str());
    options
        .connect_timeout(timeout)
        .acquire_timeout(timeout)
        .sqlx_logging(false);
    // SQLite's default rollback journal creates, syncs and deletes a file at every commit:
    // some 700 µs of CPU per presence write, measured. A write-ahead log synced at checkpoints
    // costs a fraction of that, and loses at most the last commits on a power cut, never the
    // file. Several consumers on one host can share the file either way.
    #[cfg(feature = "sqlite")]
    options.map_sqlx_sqlite_opts(|sqlite| {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        sqlite
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
    });
    match Database::connect(options).await {
        Ok(db) => Ok(db),
        Err(err) => {
            let why = explain::explain(&normalised, &err, timeout).await;
            Err(Error::new(
                ErrorKind::Database,
                format!("cannot open database {}: {why}", redact(url)),
            ))
        }
    }
}

/// Applies every pending migration.
///
/// Several consumers may start at once against a new database, and the migrator takes no
/// lock: the losers of a race fail on the winner's table or row. Each retry sees the work
/// already done, so a few attempts converge.
pub async fn migrate(db: &DatabaseConnection) -> Result<()> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 1;
    loop {
        match Migrator::up(db, None).await {
            Ok(()) => return Ok(()),
            Err(err) if attempt < ATTEMPTS => {
                tracing::debug!(error = %err, attempt, "migration raced another process; retrying");
                tokio::time::sleep(Duration::from_millis(50) * attempt).await;
                attempt += 1;
            }
            Err(err) => {
                return Err(Error::new(ErrorKind::Database, "migration failed").with_source(err))
            }
        }
    }
}

/// sqlx knows MariaDB as `mysql:`; the scheme is otherwise checked here so a typo gets a clear
/// message instead of a driver error.
fn normalise(url: &str) -> Result<String> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(bad_url(url));
    };
    let scheme = match scheme {
        "sqlite" | "mysql" | "postgres" => scheme,
        "mariadb" => "mysql",
        "postgresql" => "postgres",
        _ => return Err(bad_url(url)),
    };
    let compiled = match scheme {
        "sqlite" => cfg!(feature = "sqlite"),
        "mysql" => cfg!(feature = "mysql"),
        _ => cfg!(feature = "postgres"),
    };
    require_driver(scheme, compiled, url)?;
    Ok(format!("{scheme}:{rest}"))
}

/// A URL of a driver this build left out gets the feature named, not sea-orm's "no supporting
/// driver". The feature has the scheme's name.
fn require_driver(feature: &str, compiled: bool, url: &str) -> Result<()> {
    if compiled {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!(
            "cannot open database {}: this chat-consumer was built without the {feature} \
             feature (build it with `--features {feature}`)",
            redact(url)
        ),
    ))
}

fn bad_url(url: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "bad database URL {}: expected sqlite://, mysql://, mariadb:// or postgres://",
            redact(url)
        ),
    )
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://{credentials}@{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_removed_from_urls_in_messages() {
        assert_eq!(
            redact("mysql://root:s3cret@db:3306/test"),
            "mysql://root:***@db:3306/test"
        );
        assert_eq!(redact("postgres://pg@db/test"), "postgres://pg@db/test");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn unknown_schemes_are_refused_with_a_clear_kind() {
        let err = normalise("oracle://x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("oracle://x"));
        assert_eq!(normalise("mariadb://h/db").unwrap(), "mysql://h/db");
    }

    #[test]
    fn a_driver_left_out_of_the_build_is_named() {
        let err = require_driver("postgres", false, "postgres://u:pw@db/chat").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "cannot open database postgres://u:***@db/chat: this chat-consumer was built \
             without the postgres feature (build it with `--features postgres`)"
        );
        assert!(require_driver("sqlite", true, "sqlite::memory:").is_ok());
    }

    #[tokio::test]
    async fn migrations_apply_twice_without_error() {
        let db = connect("sqlite::memory:").await.unwrap();
        migrate(&db).await.unwrap();
        migrate(&db).await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_database_error() {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let url = "postgres://nobody@127.0.0.1:1/none";
        let err = connect_with_timeout(url, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database);
        assert_eq!(
            err.to_string(),
            "cannot open database postgres://nobody@127.0.0.1:1/none: 127.0.0.1:1 refused the \
             connection (is the server running and listening there?)"
        );
        let url = "mysql://root:s3cret@127.0.0.1:1/none";
        let err = connect_with_timeout(url, Duration::from_millis(200))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("127.0.0.1:1 refused the connection"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[tokio::test]
    async fn an_unknown_host_is_named() {
        let url = "postgres://nobody:s3cret@no-such-host.invalid/none";
        let err = connect_with_timeout(url, Duration::from_secs(2))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("cannot resolve the host name `no-such-host.invalid`"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[tokio::test]
    async fn a_missing_sqlite_file_suggests_mode_rwc() {
        let path = std::env::temp_dir().join(format!("no-such-{}.db", std::process::id()));
        let url = format!("sqlite://{}", path.display());
        let err = connect(&url).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot open database {url}: the file {} does not exist; to create it, add \
                 mode=rwc: {url}?mode=rwc",
                path.display()
            )
        );
        assert!(!path.exists());
    }
}

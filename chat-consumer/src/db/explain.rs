//! Why a database could not be opened, in words an operator can act on: the server's
//! `host:port` and the cause (refused, no such host, wrong credentials, no such database), never
//! the password.
//!
//! sqlx retries a refused connection until its acquire timeout and then reports only "pool
//! timed out"; a plain TCP connect to the server tells the cause apart.

use std::path::Path;
use std::time::Duration;

use sea_orm::{sqlx, DbErr, RuntimeErr};
use tokio::net::TcpStream;

/// The server a `mysql://` or `postgres://` URL names.
#[derive(Debug, PartialEq, Eq)]
struct Server {
    /// Without the brackets of an IPv6 address.
    host: String,
    port: u16,
    database: Option<String>,
}

impl Server {
    /// `host:port`, an IPv6 host in brackets.
    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What went wrong opening `url` (normalised: `sqlite:`, `mysql:` or `postgres:`), after
/// `timeout`.
pub(super) async fn explain(url: &str, err: &DbErr, timeout: Duration) -> String {
    if let Some(path) = missing_sqlite_file(url) {
        let sep = if url.contains('?') { '&' } else { '?' };
        return format!(
            "the file {path} does not exist; to create it, add mode=rwc: {url}{sep}mode=rwc"
        );
    }
    let sqlx = match err {
        DbErr::Conn(RuntimeErr::SqlxError(sqlx)) => Some(&**sqlx),
        _ => None,
    };
    let Some(server) = server(url) else {
        return err.to_string();
    };
    let at = server.address();
    match sqlx {
        Some(sqlx::Error::PoolTimedOut) => probe(&server, timeout).await,
        Some(sqlx::Error::Io(io)) => io_cause(&server, io),
        Some(sqlx::Error::Database(db)) => {
            let message = db.message();
            let code = db.code();
            let code = code.as_deref().unwrap_or_default();
            let database = server.database.as_deref().unwrap_or("?");
            if matches!(code, "28000" | "28P01") {
                format!("{at} refused the user or password ({message}); check them in the URL")
            } else if code == "3D000" || message.starts_with("Unknown database") {
                format!(
                    "there is no database `{database}` on {at} ({message}); create it \
                     (CREATE DATABASE {database}) or fix the URL"
                )
            } else {
                format!("{at} refused the connection: {message}")
            }
        }
        Some(sqlx::Error::Tls(tls)) => format!("TLS with {at} failed: {tls}"),
        Some(other) => format!("{at}: {other}"),
        None => format!("{at}: {err}"),
    }
}

/// The cause of an I/O error connecting to `server`.
fn io_cause(server: &Server, io: &std::io::Error) -> String {
    let at = server.address();
    if io.kind() == std::io::ErrorKind::ConnectionRefused {
        format!("{at} refused the connection (is the server running and listening there?)")
    } else if io.to_string().contains("failed to lookup address") {
        format!(
            "cannot resolve the host name `{}` ({io}); check the URL",
            server.host
        )
    } else {
        format!("{at}: {io}")
    }
}

/// What a plain TCP connect finds, after sqlx gave up waiting for a connection.
async fn probe(server: &Server, timeout: Duration) -> String {
    let at = server.address();
    let wait = timeout.min(Duration::from_secs(2));
    let connect = TcpStream::connect((server.host.as_str(), server.port));
    match tokio::time::timeout(wait, connect).await {
        Ok(Err(io)) => io_cause(server, &io),
        Ok(Ok(_)) => format!(
            "{at} accepts connections but gave the database none within {timeout:?} (starting \
             up, or out of connections?)"
        ),
        Err(_) => format!(
            "no answer from {at} within {timeout:?} (is a firewall dropping the packets, or is \
             the address wrong?)"
        ),
    }
}

/// The file of a `sqlite:` URL that does not exist and would not be created (no `mode=`).
fn missing_sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let creates = query.split('&').any(|pair| pair.starts_with("mode="));
    if path.is_empty() || path == ":memory:" || creates || Path::new(path).exists() {
        return None;
    }
    Some(path)
}

/// The server of a `mysql:` or `postgres:` URL, with the driver's default port.
fn server(url: &str) -> Option<Server> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme {
        "mysql" => 3306,
        "postgres" => 5432,
        _ => return None,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, database) = match rest.split_once('/') {
        Some((authority, database)) => (authority, Some(database)),
        None => (rest, None),
    };
    // The password may hold `@`; the host follows the last one.
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        },
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    let host = if host.is_empty() { "localhost" } else { host };
    Some(Server {
        host: host.to_owned(),
        port,
        database: database.filter(|d| !d.is_empty()).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_read_from_urls_with_default_ports() {
        let pg = server("postgres://u:p@ss@db.example/chat?sslmode=require").unwrap();
        assert_eq!(pg.address(), "db.example:5432");
        assert_eq!(pg.database.as_deref(), Some("chat"));
        let my = server("mysql://root@127.0.0.1:3307/test").unwrap();
        assert_eq!(my.address(), "127.0.0.1:3307");
        let v6 = server("postgres://[::1]:6000").unwrap();
        assert_eq!((v6.address(), v6.database), ("[::1]:6000".into(), None));
        assert_eq!(server("mysql:///x").unwrap().address(), "localhost:3306");
        assert_eq!(server("sqlite://chat.db"), None);
    }

    #[test]
    fn only_an_absent_sqlite_file_without_a_mode_is_missing() {
        assert_eq!(
            missing_sqlite_file("sqlite://no/such.db"),
            Some("no/such.db")
        );
        assert_eq!(
            missing_sqlite_file("sqlite:no/such.db?x=1"),
            Some("no/such.db")
        );
        assert_eq!(missing_sqlite_file("sqlite://no/such.db?mode=rwc"), None);
        assert_eq!(missing_sqlite_file("sqlite::memory:"), None);
        assert_eq!(missing_sqlite_file("postgres://h/db"), None);
    }
}

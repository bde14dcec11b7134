//! Options of a [`Client`](crate::Client), gathered by [`ClientBuilder`].

use std::time::Duration;

use connmix_protocol::Dialect;

use crate::backoff::Backoff;
use crate::credentials::Credentials;
use crate::endpoint::CenterUrl;
use crate::error::ClientError;
use crate::Client;

/// Options of a client, with defaults suited to a production consumer.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) center: String,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) tls: bool,
    pub(crate) root_certificates: Vec<Vec<u8>>,
    pub(crate) dialect: Dialect,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
    pub(crate) resync_interval: Duration,
    pub(crate) resync_jitter: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) event_buffer: usize,
    pub(crate) max_frame_bytes: usize,
    pub(crate) command_buffer: usize,
}

impl Options {
    fn new(center: String) -> Self {
        Self {
            center,
            credentials: None,
            tls: false,
            root_certificates: Vec::new(),
            dialect: Dialect::Current,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            // Well inside the engine's default 60 s read timeout.
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            resync_interval: Duration::from_secs(60),
            resync_jitter: Duration::from_secs(10),
            backoff: Backoff::default(),
            event_buffer: 1024,
            max_frame_bytes: 16 << 20,
            command_buffer: 1024,
        }
    }
}

/// Builds a [`Client`]; every option has a default.
///
/// | option | default |
/// |---|---|
/// | [`credentials`](Self::credentials) | none |
/// | [`tls`](Self::tls) | off (on when the center is an `https://` URL) |
/// | [`dialect`](Self::dialect) | [`Dialect::Current`] |
/// | [`request_timeout`](Self::request_timeout) | 10 s |
/// | [`connect_timeout`](Self::connect_timeout) | 10 s |
/// | [`ping_interval`](Self::ping_interval) | 20 s |
/// | [`pong_timeout`](Self::pong_timeout) | 10 s |
/// | [`resync_interval`](Self::resync_interval) | 60 s, plus up to [`resync_jitter`](Self::resync_jitter) (10 s) |
/// | [`backoff`](Self::backoff) | 100 ms doubling to 10 s, 20 % jitter |
/// | [`event_buffer`](Self::event_buffer) | 1024 events |
/// | [`max_frame_bytes`](Self::max_frame_bytes) | 16 MiB |
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is awaited"]
pub struct ClientBuilder {
    options: Options,
}

impl ClientBuilder {
    pub(crate) fn new(center: String) -> Self {
        Self {
            options: Options::new(center),
        }
    }

    /// The center address the client will read the node list from, as given.
    pub fn center(&self) -> &str {
        &self.options.center
    }

    /// The center's base URL as the client will use it, the default port filled in
    /// (`localhost` is `http://localhost:6787`), for messages. Fails with
    /// [`Config`](crate::ClientErrorKind::Config) on an address [`connect`](Self::connect)
    /// would refuse.
    pub fn center_url(&self) -> Result<String, ClientError> {
        CenterUrl::parse(&self.options.center, self.options.tls).map(|url| url.url(""))
    }

    /// Basic credentials for the center, every node's WebSocket and the HTTP push API.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.options.credentials = Some(Credentials::new(user, password));
        self
    }

    /// Reach the center over `https` and the nodes over `wss`. Needs the `tls` feature (on by
    /// default): without it, [`connect`](Self::connect) fails with
    /// [`Config`](crate::ClientErrorKind::Config).
    pub fn tls(mut self, tls: bool) -> Self {
        self.options.tls = tls;
        self
    }

    /// Also trust this certificate authority (DER), besides the webpki roots: for clusters
    /// with a private CA or a self-signed certificate.
    pub fn root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.options.root_certificates.push(der.into());
        self
    }

    /// The format requests are written in; replies and events are read in any.
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.options.dialect = dialect;
        self
    }

    /// How long a call waits for its reply. The node's task checks its calls' deadlines at an
    /// eighth of this period (between 5 ms and 1 s), so a call fails with
    /// [`Timeout`](crate::ClientErrorKind::Timeout) at most that much later. The same period
    /// bounds how long a write to an engine that stopped reading may wait before the
    /// connection is dropped.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.request_timeout = timeout;
        self
    }

    /// How long opening one node's WebSocket, or one center request, may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// How often each node connection sends a WebSocket ping.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.options.ping_interval = interval;
        self
    }

    /// How long after a ping the node must have sent something before the connection is
    /// considered dead and dropped.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.options.pong_timeout = timeout;
        self
    }

    /// How often the node list is read again from the center.
    pub fn resync_interval(mut self, interval: Duration) -> Self {
        self.options.resync_interval = interval;
        self
    }

    /// The most added at random to each resync interval.
    pub fn resync_jitter(mut self, jitter: Duration) -> Self {
        self.options.resync_jitter = jitter;
        self
    }

    /// Delays between reconnect attempts (and between failed center reads).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.options.backoff = backoff;
        self
    }

    /// Queue events buffered per [`EventStream`](crate::EventStream) before the node
    /// connections stop reading (backpressure). At least 1.
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.options.event_buffer = events.max(1);
        self
    }

    /// The largest engine frame handled. A larger one (a queue event carrying a huge browser
    /// frame, say) is read, skipped and counted ([`Client::oversized_frames`](crate::Client::oversized_frames)),
    /// with a warning at most every 10 s per node; the connection and every other event stay.
    /// Only a frame over four times this is refused by the WebSocket layer, which closes the
    /// connection (it reconnects).
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.options.max_frame_bytes = bytes.max(1024);
        self
    }

    /// Reads the center, connects to every node and returns the handle.
    ///
    /// Fails when the options are invalid or the center refuses the credentials. A center or
    /// node that cannot be reached yet is retried in the background.
    pub async fn connect(self) -> Result<Client, ClientError> {
        Client::start(self.options).await
    }

    #[cfg(test)]
    pub(crate) fn options(&self) -> &Options {
        &self.options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_idle_consumers_inside_the_engine_read_timeout() {
        let b = ClientBuilder::new("127.0.0.1:6787".into());
        let o = b.options();
        assert!(o.ping_interval + o.pong_timeout < connmix_protocol::DEFAULT_READ_TIMEOUT);
        assert_eq!(o.dialect, Dialect::Current);
        assert_eq!(o.resync_interval, Duration::from_secs(60));
        assert_eq!(o.resync_jitter, Duration::from_secs(10));
        assert!(o.credentials.is_none());
        assert!(!o.tls);
    }

    #[test]
    fn setters_override_defaults_and_debug_hides_the_password() {
        let b = ClientBuilder::new("c:1".into())
            .credentials("u", "hunter2-secret")
            .tls(true)
            .dialect(Dialect::Legacy)
            .request_timeout(Duration::from_millis(5))
            .event_buffer(0);
        let o = b.options();
        assert!(o.tls);
        assert_eq!(o.dialect, Dialect::Legacy);
        assert_eq!(o.request_timeout, Duration::from_millis(5));
        assert_eq!(o.event_buffer, 1);
        assert!(!format!("{b:?}").contains("hunter2-secret"));
    }
}

//! How a mock engine is laid out: addresses, queue limits, timeouts, dialect, credentials.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use connmix_protocol::Dialect;

/// Everything [`MockEngine::start`](crate::MockEngine::start) needs.
///
/// Node `i` (from 0) listens on `api_port + 100 * i` and `chat_port + 100 * i`; a port of 0
/// lets every listener pick its own free port, which is what tests want.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Address every listener binds.
    pub bind: IpAddr,
    /// Port of the center's HTTP API.
    pub center_port: u16,
    /// API server port of node 0.
    pub api_port: u16,
    /// Browser-facing chat port of node 0.
    pub chat_port: u16,
    /// Number of engine nodes started with the engine.
    pub nodes: usize,
    /// Queue topic the chat script pushes onto.
    pub queue: String,
    /// Chat `op` after which the script waits for the context value [`auth_key`](Self::auth_key).
    pub auth_op: String,
    /// Context key that carries the logged-in user id.
    pub auth_key: String,
    /// HTTP path of the browser-facing WebSocket.
    pub chat_path: String,
    /// Capacity of each memory queue topic; a push onto a full topic fails.
    pub topic_size: usize,
    /// Largest browser WebSocket frame (and message) accepted; a browser that sends a larger
    /// one is disconnected. The engine's WebSocket protocol module caps frames at 65,535 bytes.
    pub max_browser_frame: usize,
    /// An API connection that sends nothing for this long is closed.
    pub read_timeout: Duration,
    /// The dialect replies and events are written in.
    pub dialect: Dialect,
    /// HTTP basic credentials required by the center, `/ws/v1` and the HTTP push API.
    pub credentials: Option<Credentials>,
    /// The user's `entry.lua` to run on each node; `None` runs the built-in chat behaviour.
    pub script: Option<crate::lua::ScriptConfig>,
}

/// The engine's cap on one browser frame, in bytes.
pub const DEFAULT_MAX_BROWSER_FRAME: usize = 65_535;

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            center_port: 6787,
            api_port: 6789,
            chat_port: 6790,
            nodes: 1,
            queue: "chat".to_owned(),
            auth_op: "auth".to_owned(),
            auth_key: "uid".to_owned(),
            chat_path: "/chat".to_owned(),
            topic_size: 2000,
            max_browser_frame: DEFAULT_MAX_BROWSER_FRAME,
            read_timeout: connmix_protocol::DEFAULT_READ_TIMEOUT,
            dialect: Dialect::Current,
            credentials: None,
            script: None,
        }
    }
}

impl MockConfig {
    /// The defaults with every port 0 (each listener picks a free port) and one node.
    pub fn ephemeral() -> Self {
        Self {
            center_port: 0,
            api_port: 0,
            chat_port: 0,
            ..Self::default()
        }
    }

    /// The port node `index` uses for a base port; 0 stays 0.
    pub(crate) fn node_port(base: u16, index: usize) -> u16 {
        if base == 0 {
            return 0;
        }
        let offset = index.saturating_mul(100);
        u16::try_from(usize::from(base).saturating_add(offset)).unwrap_or(0)
    }
}

pub use connmix_protocol::Credentials;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ports_step_by_100_and_zero_stays_zero() {
        assert_eq!(MockConfig::node_port(6789, 0), 6789);
        assert_eq!(MockConfig::node_port(6789, 2), 6989);
        assert_eq!(MockConfig::node_port(0, 3), 0);
    }
}

//! Command-line options of an engine, for `connmix-mock` and any program that embeds the mock
//! (such as `chat-consumer dev`): flatten [`EngineArgs`] into a clap parser.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use connmix_protocol::{Credentials, Dialect};

use crate::lua::{parse_pair, DEFAULT_INSTRUCTION_LIMIT};
use crate::{MockConfig, ScriptConfig};

/// The options that shape a mock engine, with the real engine's defaults.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Address every listener binds.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port of the center's HTTP API.
    #[arg(long, default_value_t = 6787)]
    pub center_port: u16,
    /// API server port of node 0 (node i: + 100 * i).
    #[arg(long, default_value_t = 6789)]
    pub api_port: u16,
    /// Browser chat port of node 0 (node i: + 100 * i); it also serves the chat page at `/`.
    #[arg(long, default_value_t = 6790)]
    pub chat_port: u16,
    /// Number of engine nodes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub nodes: u16,
    /// Capacity of each queue topic.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub topic_size: u32,
    /// Largest browser WebSocket frame accepted, in bytes, by the built-in script and by a
    /// script's `protocols/websocket`; a larger one disconnects the browser, as the engine's
    /// WebSocket module does.
    #[arg(long, default_value_t = 65_535, value_parser = clap::value_parser!(u32).range(16..))]
    pub max_browser_frame: u32,
    /// Seconds an API connection may stay silent before it is closed.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub read_timeout: u64,
    /// Dialect of replies and events: `current` or `legacy` (engine 1.0.1).
    #[arg(long, default_value = "current")]
    pub dialect: Dialect,
    /// User required (HTTP basic) on the center and the API servers.
    #[arg(long, requires = "api_password")]
    pub api_user: Option<String>,
    /// Password of --api-user.
    #[arg(
        long,
        env = "CONNMIX_API_PASSWORD",
        hide_env_values = true,
        requires = "api_user"
    )]
    pub api_password: Option<String>,
    /// Run this engine script (`entry.lua`) on each node instead of the built-in chat script.
    #[arg(long, value_name = "ENTRY_LUA")]
    pub script: Option<PathBuf>,
    /// A Redis connection for the script's `mix.redis.connection(NAME)` (repeatable).
    #[arg(long, value_name = "NAME=URL", value_parser = parse_pair, requires = "script")]
    pub redis: Vec<(String, String)>,
    /// A value for the script's `mix.server.option(NAME)` (repeatable).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_pair, requires = "script")]
    pub server_option: Vec<(String, String)>,
    /// Lua instructions one script callback may run before it is stopped.
    #[arg(long, default_value_t = DEFAULT_INSTRUCTION_LIMIT, value_parser = clap::value_parser!(u64).range(1000..))]
    pub script_instruction_limit: u64,
}

impl EngineArgs {
    /// The credentials the engine requires, if any.
    pub fn credentials(&self) -> Option<Credentials> {
        self.api_user
            .clone()
            .zip(self.api_password.clone())
            .map(|(user, password)| Credentials::new(user, password))
    }

    /// The engine script and its settings, when `--script` is given.
    pub fn script(&self) -> Option<ScriptConfig> {
        let path = self.script.clone()?;
        Some(ScriptConfig {
            redis: self.redis.clone(),
            options: self.server_option.clone(),
            instruction_limit: self.script_instruction_limit,
            ..ScriptConfig::new(path)
        })
    }

    /// The engine's configuration, with the chat script pushing onto `queue`.
    pub fn config(&self, queue: &str) -> MockConfig {
        MockConfig {
            bind: self.bind,
            center_port: self.center_port,
            api_port: self.api_port,
            chat_port: self.chat_port,
            nodes: usize::from(self.nodes),
            queue: queue.to_owned(),
            topic_size: self.topic_size as usize,
            max_browser_frame: self.max_browser_frame as usize,
            read_timeout: Duration::from_secs(self.read_timeout),
            dialect: self.dialect,
            credentials: self.credentials(),
            script: self.script(),
            ..MockConfig::default()
        }
    }
}

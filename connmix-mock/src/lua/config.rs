//! [`ScriptConfig`]: which `entry.lua` each node runs, and the host's limits.

use std::path::PathBuf;

/// A user's engine script run on every node instead of the built-in chat behaviour.
///
/// Each node runs the script in its own Lua 5.1 VM; see the crate's README for the subset of
/// the engine's Lua API the host provides.
#[derive(Clone)]
pub struct ScriptConfig {
    /// The `entry.lua` file. `require` also finds modules in its folder.
    pub path: PathBuf,
    /// Redis connections for `mix.redis.connection(name)`: name and URL
    /// (`redis://[:password@]host:port[/db]`).
    pub redis: Vec<(String, String)>,
    /// Values for `mix.server.option(name)`; `path` defaults to the chat path.
    pub options: Vec<(String, String)>,
    /// Lua instructions one callback (one `on_message`, one `protocol_input`, ...) may run
    /// before it is stopped as a runaway loop.
    pub instruction_limit: u64,
}

impl std::fmt::Debug for ScriptConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Redis URLs may carry a password: only their names are shown.
        let redis: Vec<&str> = self.redis.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ScriptConfig")
            .field("path", &self.path)
            .field("redis", &redis)
            .field("options", &self.options)
            .field("instruction_limit", &self.instruction_limit)
            .finish()
    }
}

/// Default of [`ScriptConfig::instruction_limit`]: about a second of Lua 5.1 at full speed.
pub const DEFAULT_INSTRUCTION_LIMIT: u64 = 100_000_000;

impl ScriptConfig {
    /// The script at `path` with the default limits, no Redis and no extra options.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            redis: Vec::new(),
            options: Vec::new(),
            instruction_limit: DEFAULT_INSTRUCTION_LIMIT,
        }
    }

    /// Adds a Redis connection named `name`.
    pub fn with_redis(mut self, name: impl Into<String>, url: impl Into<String>) -> Self {
        self.redis.push((name.into(), url.into()));
        self
    }

    /// Sets the instruction limit of one callback.
    pub fn with_instruction_limit(mut self, limit: u64) -> Self {
        self.instruction_limit = limit;
        self
    }
}

/// Parses `name=value`, as `--redis` and `--server-option` take it.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got `{text}`")),
    }
}

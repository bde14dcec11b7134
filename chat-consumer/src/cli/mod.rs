//! Command-line arguments and what each command does.

#[cfg(feature = "dev")]
mod dev;
mod run;
mod users;

pub(crate) use run::DrainIncomplete;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use chat_consumer::db;
use chat_consumer::limits::{Limits, RoomPresence};
use chat_consumer::reconcile::Reconcile;
use chat_consumer::serve::SourceKind;
use chat_consumer::service::password::Hasher;
use chat_consumer::source::StreamConfig;
use clap::{Args, CommandFactory as _, Parser, Subcommand};
use sea_orm::DatabaseConnection;

/// The CONNMIX chat tutorial's backend: consumes the engine's chat queue and answers browsers.
#[derive(Debug, Parser)]
#[command(version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    database: DatabaseArgs,
    /// How log lines on standard error look: `text` for people, `json` (one object a line,
    /// with `level`, `target` and the event's `fields`) for a log collector.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Text,
    /// One JSON object a line.
    Json,
}

/// The arguments of the command line, or of `args` in tests: [`Cli`]'s, with the
/// environment variables of the embedded engine's options (which `connmix-mock` defines
/// without any) added for `dev`.
pub(crate) fn command() -> clap::Command {
    #[cfg(feature = "dev")]
    let command = Cli::command().mut_subcommand("dev", |dev| {
        DEV_ENGINE_ENV
            .iter()
            .fold(dev, |dev, (id, env)| dev.mut_arg(*id, |arg| arg.env(*env)))
    });
    #[cfg(not(feature = "dev"))]
    let command = Cli::command();
    command
}

/// The environment variable of each embedded engine option of `dev` that has none.
#[cfg(feature = "dev")]
const DEV_ENGINE_ENV: [(&str, &str); 14] = [
    ("bind", "CHAT_DEV_BIND"),
    ("center_port", "CHAT_DEV_CENTER_PORT"),
    ("api_port", "CHAT_DEV_API_PORT"),
    ("chat_port", "CHAT_DEV_CHAT_PORT"),
    ("nodes", "CHAT_DEV_NODES"),
    ("topic_size", "CHAT_DEV_TOPIC_SIZE"),
    ("max_browser_frame", "CHAT_DEV_MAX_BROWSER_FRAME"),
    ("read_timeout", "CHAT_DEV_READ_TIMEOUT"),
    ("dialect", "CHAT_DEV_DIALECT"),
    ("api_user", "CHAT_DEV_API_USER"),
    ("script", "CHAT_DEV_SCRIPT"),
    ("redis", "CHAT_DEV_REDIS"),
    ("server_option", "CHAT_DEV_SERVER_OPTION"),
    (
        "script_instruction_limit",
        "CHAT_DEV_SCRIPT_INSTRUCTION_LIMIT",
    ),
];

/// The runtime's threads option, of the commands that serve (`run`, `dev`).
#[derive(Debug, Clone, Args)]
struct ThreadsArgs {
    /// Threads that run the consumer. 1 runs everything on one thread, the cheapest per event:
    /// to use more cores, run more consumers (they share the queue) or raise this.
    #[arg(
        long,
        env = "CHAT_THREADS",
        default_value_t = 1,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    threads: usize,
}

impl Cli {
    /// The log format chosen.
    pub(crate) fn log_format(&self) -> LogFormat {
        self.log_format
    }

    /// Whether the command only administers (`migrate`, `users`): it then logs warnings and
    /// errors only unless `RUST_LOG` says otherwise, and prints nothing but its result.
    pub(crate) fn is_admin(&self) -> bool {
        matches!(self.command, Some(Command::Migrate | Command::Users(_)))
    }

    /// Threads of the runtime: `--threads` of a serving command, one for the others.
    fn threads(&self) -> usize {
        match &self.command {
            None => self.run.threads.threads,
            Some(Command::Run(args)) => args.threads.threads,
            #[cfg(feature = "dev")]
            Some(Command::Dev(args)) => args.threads.threads,
            Some(Command::Migrate | Command::Users(_)) => 1,
        }
    }

    /// The async runtime the command runs on: one thread, or `--threads` workers.
    pub(crate) fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        match self.threads() {
            1 => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            threads => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build(),
        }
    }

    /// Whether the command should run on a worker rather than on the thread that blocks on it
    /// (with several threads, work done there would hop threads on every event).
    pub(crate) fn spawned(&self) -> bool {
        self.threads() > 1
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate, then consume and answer until Ctrl-C or SIGTERM (the default command).
    Run(RunArgs),
    /// Try it all on one machine: an embedded engine with the chat page, a SQLite database
    /// with demo users, and the consumer.
    #[cfg(feature = "dev")]
    Dev(dev::DevArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add a user.
    Add {
        /// Login name (unique).
        name: String,
        /// E-mail address.
        #[arg(long, env = "CHAT_USER_EMAIL")]
        email: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        hashing: HashArgs,
    },
    /// List users (never their passwords).
    List,
    /// Set a user's password (which also ends the user's sessions: their tokens stop
    /// working).
    Passwd {
        /// Login name.
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        hashing: HashArgs,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct PasswordArgs {
    /// The password (visible to other local users in the process list; prefer
    /// --password-stdin or the environment variable).
    #[arg(long, env = "CHAT_USER_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, env = "CHAT_USER_PASSWORD_STDIN")]
    password_stdin: bool,
}

impl std::fmt::Debug for PasswordArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordArgs")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_stdin", &self.password_stdin)
            .finish()
    }
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// Database URL: sqlite://..., mysql://... (MariaDB too) or postgres://...
    #[arg(long, env = "DATABASE_URL", default_value = db::DEFAULT_URL, global = true)]
    database_url: String,
    /// Seconds to wait for the database server before giving up.
    #[arg(
        long,
        env = "CHAT_DATABASE_TIMEOUT_SECS",
        default_value_t = 5,
        global = true
    )]
    database_timeout_secs: u64,
}

/// The cost of new password hashes, for the commands that make them.
#[derive(Debug, Clone, Args)]
struct HashArgs {
    /// argon2id memory cost of new password hashes, in KiB.
    #[arg(long, env = "CHAT_ARGON2_MEMORY_KIB", default_value_t = 19 * 1024)]
    argon2_memory_kib: u32,
    /// argon2id passes of new password hashes.
    #[arg(long, env = "CHAT_ARGON2_ITERATIONS", default_value_t = 2)]
    argon2_iterations: u32,
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// The engine's center: host[:port] (port 6787 when absent) or an http(s):// URL.
    #[arg(long, env = "CONNMIX_HOST", default_value = "127.0.0.1:6787")]
    host: String,
    /// User for the engine's HTTP basic credentials (its `access.users`), if it requires them.
    #[arg(long, env = "CONNMIX_API_USER", requires = "api_password")]
    api_user: Option<String>,
    /// Password of --api-user (prefer the environment variable: the process list is public).
    #[arg(
        long,
        env = "CONNMIX_API_PASSWORD",
        hide_env_values = true,
        requires = "api_user"
    )]
    api_password: Option<String>,
    #[command(flatten)]
    consumer: ConsumerArgs,
    #[command(flatten)]
    hashing: HashArgs,
    #[command(flatten)]
    threads: ThreadsArgs,
}

/// How the consumer works, whichever engine it talks to.
#[derive(Debug, Clone, Args)]
struct ConsumerArgs {
    /// Seconds to wait at start for a first engine node before giving up.
    #[arg(long, env = "CHAT_ENGINE_TIMEOUT_SECS", default_value_t = 10)]
    engine_timeout_secs: u64,
    /// The queue topic the engine script pushes chat frames onto.
    #[arg(long, env = "CHAT_QUEUE", default_value = "chat")]
    queue: String,
    /// Longest chat message, in bytes.
    #[arg(long, env = "CHAT_MAX_MESSAGE_BYTES", default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Messages one user may send per second, sustained.
    #[arg(long, env = "CHAT_MESSAGES_PER_SECOND", default_value_t = Limits::default().messages_per_second)]
    messages_per_second: f64,
    /// Messages one user may send in a burst.
    #[arg(long, env = "CHAT_MESSAGE_BURST", default_value_t = Limits::default().message_burst)]
    message_burst: u32,
    /// Password hashes computed at once [default: number of CPUs].
    #[arg(long, env = "CHAT_HASH_PARALLELISM")]
    hash_parallelism: Option<usize>,
    /// Worker tasks; one connection's events always go to the same one, in order.
    #[arg(long, env = "CHAT_WORKERS", default_value_t = Limits::default().workers)]
    workers: usize,
    /// Events waiting per worker before reading from the engine pauses.
    #[arg(long, env = "CHAT_WORKER_QUEUE", default_value_t = Limits::default().worker_queue)]
    worker_queue: usize,
    /// Seconds shutdown waits for events already received.
    #[arg(long, env = "CHAT_DRAIN_TIMEOUT_SECS", default_value_t = Limits::default().drain_timeout.as_secs())]
    drain_timeout_secs: u64,
    /// Failed logins allowed per name and per connection in each login window; later ones are
    /// refused without hashing until it ends (0: no limit).
    #[arg(long, env = "CHAT_LOGIN_FAILURES", default_value_t = Limits::default().login_failures)]
    login_failures: u32,
    /// The login window, in seconds.
    #[arg(long, env = "CHAT_LOGIN_WINDOW_SECS", default_value_t = Limits::default().login_window.as_secs())]
    login_window_secs: u64,
    /// Seconds a session token from a login stays valid, for logging in again after a page
    /// reload (0: no tokens). `users passwd` revokes a user's tokens.
    #[arg(long, env = "CHAT_SESSION_TTL_SECS", default_value_t = Limits::default().session_ttl.as_secs())]
    session_ttl_secs: u64,
    /// Messages kept per channel for `history` (0: none, and `history` is off).
    #[arg(long, env = "CHAT_HISTORY_PER_CHANNEL", default_value_t = Limits::default().history_per_channel)]
    history_per_channel: u32,
    /// Milliseconds the history writer lets a batch gather after its first message: longer
    /// makes fewer, larger INSERTs (less CPU per message) and messages later to appear in
    /// `history`.
    #[arg(long, env = "CHAT_HISTORY_LINGER_MS", default_value_t = 10)]
    history_linger_ms: u64,
    /// Who is in which room: `events` keeps membership records (for `presence`) and publishes
    /// `join`/`leave` events on the rooms, `records` only keeps the records, `off` neither
    /// (`presence` is refused; the cheapest, as the tutorial).
    #[arg(long, env = "CHAT_ROOM_PRESENCE", value_enum, default_value_t = RoomPresenceArg::Events)]
    room_presence: RoomPresenceArg,
    /// Seconds between two checks for presence records a lost close event left behind
    /// (connections the engine no longer holds, nodes it no longer lists).
    #[arg(
        long,
        env = "CHAT_PRESENCE_RECONCILE_SECS",
        default_value_t = Reconcile::default().interval.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    presence_reconcile_secs: u64,
    /// Where chat events come from: the engine's memory queue (at most once), a Redis list
    /// the script LPUSHes onto (at most once, as the tutorial's Redis example) or a Redis
    /// stream read in a consumer group (at least once, messages published once).
    #[arg(long, env = "CHAT_SOURCE", value_enum, default_value_t = SourceArg::Engine)]
    source: SourceArg,
    /// Redis, redis://[:password@]host:port[/db]: needed by the Redis sources; with any source
    /// it makes the message rate one limit across every consumer using it.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// The stream's consumer group (redis-stream); all consumers of one chat share it.
    #[arg(long, env = "CHAT_STREAM_GROUP", default_value = chat_consumer::source::DEFAULT_GROUP)]
    stream_group: String,
    /// This consumer's name in the group (redis-stream) [default: <host>-<pid>].
    #[arg(long, env = "CHAT_STREAM_CONSUMER")]
    stream_consumer: Option<String>,
    /// Seconds a stream entry may stay unacknowledged before another consumer takes it over.
    #[arg(long, env = "CHAT_STREAM_CLAIM_IDLE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    stream_claim_idle_secs: u64,
    /// Deliveries of a stream entry before it moves to the dead-letter stream `<queue>:dead`.
    #[arg(long, env = "CHAT_STREAM_MAX_DELIVERIES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    stream_max_deliveries: u32,
    /// Serve /metrics (Prometheus), /healthz and /readyz over HTTP on this address, ip:port
    /// [default: off; dev: 127.0.0.1:6791].
    #[arg(long, env = "CHAT_ADMIN_ADDR")]
    admin_addr: Option<SocketAddr>,
}

/// `--room-presence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RoomPresenceArg {
    /// Records, `presence`, and join/leave events.
    Events,
    /// Records and `presence`, no events.
    Records,
    /// Nothing; `presence` refused.
    Off,
}

/// `--source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SourceArg {
    /// The engine's memory queue.
    Engine,
    /// A Redis list (BRPOP).
    RedisList,
    /// A Redis stream in a consumer group.
    RedisStream,
}

impl SourceArg {
    /// entry-redis.lua's `redis_queue` option for a Redis source.
    #[cfg(feature = "dev")]
    fn redis_queue(self) -> Option<&'static str> {
        match self {
            SourceArg::Engine => None,
            SourceArg::RedisList => Some("list"),
            SourceArg::RedisStream => Some("stream"),
        }
    }

    /// What dev's banner says the events go through.
    #[cfg(feature = "dev")]
    fn describe(self) -> &'static str {
        match self {
            SourceArg::Engine => "the engine's memory queue (at most once)",
            SourceArg::RedisList => "a Redis list (at most once)",
            SourceArg::RedisStream => "a Redis stream (at least once)",
        }
    }
}

impl ConsumerArgs {
    fn source(&self) -> SourceKind {
        match self.source {
            SourceArg::Engine => SourceKind::Engine,
            SourceArg::RedisList => SourceKind::RedisList,
            SourceArg::RedisStream => {
                let defaults = StreamConfig::new(&self.queue);
                SourceKind::RedisStream(StreamConfig {
                    group: self.stream_group.clone(),
                    consumer: self.stream_consumer.clone().unwrap_or(defaults.consumer),
                    claim_idle: Duration::from_secs(self.stream_claim_idle_secs),
                    max_deliveries: self.stream_max_deliveries,
                    ..defaults
                })
            }
        }
    }

    fn limits(&self) -> anyhow::Result<Limits> {
        let defaults = Limits::default();
        anyhow::ensure!(
            self.messages_per_second.is_finite() && self.messages_per_second >= 0.0,
            "--messages-per-second must be a non-negative number"
        );
        Ok(Limits {
            max_message_bytes: self.max_message_bytes,
            messages_per_second: self.messages_per_second,
            message_burst: self.message_burst,
            hash_parallelism: self.hash_parallelism.unwrap_or(defaults.hash_parallelism),
            workers: self.workers,
            worker_queue: self.worker_queue,
            drain_timeout: Duration::from_secs(self.drain_timeout_secs),
            login_failures: self.login_failures,
            login_window: Duration::from_secs(self.login_window_secs),
            session_ttl: Duration::from_secs(self.session_ttl_secs),
            history_per_channel: self.history_per_channel,
            history_linger: Duration::from_millis(self.history_linger_ms),
            room_presence: match self.room_presence {
                RoomPresenceArg::Events => RoomPresence::Events,
                RoomPresenceArg::Records => RoomPresence::Records,
                RoomPresenceArg::Off => RoomPresence::Off,
            },
            ..defaults
        })
    }
}

/// Crates whose `trace` output dumps whole WebSocket frames (a browser's `auth` frame holds its
/// password) or request headers (the engine's basic credentials).
const WIRE_DUMPERS: [&str; 6] = [
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
];

/// Logs to standard error in `format`; `RUST_LOG` filters, by default `info`, or `warn` for
/// an admin command (whose output is its result: no migration progress). Whatever `RUST_LOG`
/// says, the wire dumpers stop at `debug`, so no secret reaches the log; colours only on a
/// terminal, and never in JSON.
pub(crate) fn init_logging(format: LogFormat, admin: bool) {
    use std::io::IsTerminal as _;
    let default = if admin { "warn" } else { "info" };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    if filter.max_level_hint() == Some(tracing_subscriber::filter::LevelFilter::TRACE) {
        for target in WIRE_DUMPERS {
            if let Ok(cap) = format!("{target}=debug").parse() {
                filter = filter.add_directive(cap);
            }
        }
    }
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
}

/// Tells why the command failed: a plain `error: ...` line, or in JSON a log line with the
/// error in its fields, so that a log collector reads every line.
pub(crate) fn report_error(format: LogFormat, err: &anyhow::Error) {
    match format {
        LogFormat::Text => eprintln!("error: {err:#}"),
        LogFormat::Json => tracing::error!(error = %format!("{err:#}"), "failed"),
    }
}

/// Runs the chosen command.
pub(crate) async fn execute(cli: Cli) -> anyhow::Result<()> {
    let Cli {
        command,
        run,
        database,
        log_format: _,
    } = cli;
    match command.unwrap_or(Command::Run(run)) {
        Command::Run(args) => run::run(&database, &args).await,
        #[cfg(feature = "dev")]
        Command::Dev(args) => dev::dev(&database, &args).await,
        Command::Migrate => {
            open(&database).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Users(command) => users::execute(&database, command).await,
    }
}

/// Opens and migrates the database.
async fn open(args: &DatabaseArgs) -> anyhow::Result<DatabaseConnection> {
    let timeout = Duration::from_secs(args.database_timeout_secs);
    let db = db::connect_with_timeout(&args.database_url, timeout).await?;
    db::migrate(&db).await?;
    Ok(db)
}

fn hasher(args: &HashArgs, parallelism: usize) -> anyhow::Result<Hasher> {
    Hasher::with_cost(args.argon2_memory_kib, args.argon2_iterations, parallelism)
        .context("bad --argon2-memory-kib or --argon2-iterations")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option of `cmd` and of its subcommands, as `path --option`, that has no
    /// environment variable.
    fn without_env(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !arg.is_positional() && !builtin && arg.get_env().is_none() {
                missing.push(format!("{path} --{}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            without_env(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }

    #[test]
    fn every_option_of_every_command_has_an_environment_variable() {
        let mut cmd = command();
        cmd.build();
        let mut missing = Vec::new();
        without_env(&cmd, "chat-consumer", &mut missing);
        assert!(missing.is_empty(), "no env: {missing:?}");
    }

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }
}

//! A bare consumer for the mock's tests: speaks `/ws/v1` with the protocol crate's types and
//! nothing else, so the tests check the mock, not a client library.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use connmix_protocol::{Call, Dialect, EngineFrame, Event, QueueMessage, Reply, Request};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An HTTP client for the center and push API.
pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Every wait in the tests is bounded by this; nothing should come close to it.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct Consumer {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    events: VecDeque<QueueMessage>,
}

impl Consumer {
    pub async fn connect(api: SocketAddr) -> anyhow::Result<Self> {
        Self::connect_as(api, None).await
    }

    pub async fn connect_as(api: SocketAddr, basic: Option<(&str, &str)>) -> anyhow::Result<Self> {
        let mut request = format!("ws://{api}/ws/v1").into_client_request()?;
        if let Some((user, password)) = basic {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request
                .headers_mut()
                .insert("authorization", format!("Basic {token}").parse()?);
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self {
            socket,
            next_id: 1,
            events: VecDeque::new(),
        })
    }

    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.socket.send(Message::text(text)).await?;
        Ok(())
    }

    pub async fn send_ping_frame(&mut self) -> anyhow::Result<()> {
        self.socket.send(Message::Ping(Vec::new().into())).await?;
        Ok(())
    }

    /// The next text frame, raw.
    pub async fn recv_text(&mut self) -> anyhow::Result<String> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .context("nothing received in time")?;
            match frame {
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                Some(Ok(Message::Close(_))) | None => bail!("closed"),
                Some(Err(err)) => bail!("socket error: {err}"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame decoded as the engine's.
    pub async fn recv_frame(&mut self) -> anyhow::Result<EngineFrame> {
        let text = self.recv_text().await?;
        EngineFrame::decode(&text).with_context(|| format!("undecodable frame {text}"))
    }

    /// Sends a call and returns its reply, keeping events that arrive first.
    pub async fn call(&mut self, call: Call) -> anyhow::Result<Reply> {
        let id = self.next_id;
        self.next_id += 1;
        self.send_text(&Request::new(id, call).encode(Dialect::Current))
            .await?;
        loop {
            match self.recv_frame().await? {
                EngineFrame::Reply(reply) if reply.id == Some(id) => return Ok(reply),
                EngineFrame::Event(Event::QueuePop(msg)) => self.events.push_back(msg),
                other => bail!("unexpected frame {other:?}"),
            }
        }
    }

    /// Calls and expects success.
    pub async fn ok(&mut self, call: Call) -> anyhow::Result<connmix_protocol::CallResult> {
        self.call(call)
            .await?
            .outcome
            .map_err(|e| anyhow!("engine error: {e}"))
    }

    /// A consumer connected to `api` that already consumes `topic`.
    pub async fn popping(api: SocketAddr, topic: &str) -> anyhow::Result<Self> {
        let mut consumer = Self::connect(api).await?;
        consumer.pop(topic).await?;
        Ok(consumer)
    }

    pub async fn pop(&mut self, topic: &str) -> anyhow::Result<()> {
        self.ok(Call::QueuePop {
            topics: vec![topic.to_owned()],
        })
        .await
        .map(drop)
    }

    /// The next queued message.
    pub async fn next_message(&mut self) -> anyhow::Result<QueueMessage> {
        if let Some(msg) = self.events.pop_front() {
            return Ok(msg);
        }
        match self.recv_frame().await? {
            EngineFrame::Event(Event::QueuePop(msg)) => Ok(msg),
            other => bail!("expected a queue event, got {other:?}"),
        }
    }

    /// Resolves when the engine closes the connection; fails on timeout or on any other frame.
    pub async fn closed_within(&mut self, limit: Duration) -> anyhow::Result<()> {
        loop {
            let frame = tokio::time::timeout(limit, self.socket.next())
                .await
                .context("still open")?;
            match frame {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(Message::Pong(_))) => {}
                Some(Ok(other)) => bail!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next control or data frame, whatever it is.
    pub async fn recv_any(&mut self) -> anyhow::Result<Message> {
        let frame = tokio::time::timeout(WAIT, self.socket.next())
            .await
            .context("nothing received in time")?;
        Ok(frame.context("closed")??)
    }

    /// Reads nothing for `limit`; true if a pong frame or any frame arrived.
    pub async fn any_frame_within(&mut self, limit: Duration) -> bool {
        matches!(
            tokio::time::timeout(limit, self.socket.next()).await,
            Ok(Some(Ok(_)))
        )
    }
}

/// The value the chat script pushed for a message frame: its `frame.data` text.
pub fn frame_text(msg: &QueueMessage) -> Option<String> {
    msg.data
        .to_value()
        .get("frame")?
        .get("data")?
        .as_str()
        .map(str::to_owned)
}

/// The script event name of a queued value.
pub fn event_name(msg: &QueueMessage) -> Option<String> {
    msg.data
        .to_value()
        .get("event")?
        .as_str()
        .map(str::to_owned)
}

/// Which browser-side behaviour a test runs against: the mock's built-in chat script, or the
/// repository's `examples/engine/entry.lua` in the Lua host. Tests of script behaviour run in
/// both, through [`both_modes!`](crate::both_modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    BuiltIn,
    EntryLua,
}

/// The repository's example engine script.
pub fn example_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/engine/entry.lua")
}

/// A script file written for one test, removed with the returned guard.
pub struct TempScript {
    pub path: std::path::PathBuf,
}

impl TempScript {
    pub fn new(name: &str, source: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("connmix-mock-lua-{}-{}", std::process::id(), name));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("entry.lua");
        std::fs::write(&path, source).unwrap();
        Self { path }
    }
}

impl Drop for TempScript {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Mode {
    pub fn config(self, base: connmix_mock::MockConfig) -> connmix_mock::MockConfig {
        match self {
            Mode::BuiltIn => base,
            Mode::EntryLua => connmix_mock::MockConfig {
                script: Some(connmix_mock::ScriptConfig::new(example_script())),
                ..base
            },
        }
    }
}

/// `both_modes!(name, body)`: module `name` with one test per [`Mode`], each running
/// `body(mode)`.
#[macro_export]
macro_rules! both_modes {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn built_in() -> anyhow::Result<()> {
                super::$body(super::common::Mode::BuiltIn).await
            }
            #[tokio::test]
            async fn entry_lua() -> anyhow::Result<()> {
                super::$body(super::common::Mode::EntryLua).await
            }
        }
    };
}

//! The floor: the least a Rust consumer can spend on the bench's chat mix and still give
//! chat-consumer's replies. No client crate: tokio-tungstenite straight on each node's socket,
//! one thread, events decoded into borrowed structs, replies serialised from structs, every
//! reply of a batch fed to the socket and flushed once, calls fired without awaiting their
//! results (which are read and dropped).
//!
//! It assumes what the bench's population guarantees: senders are logged in, channel names are
//! valid, `sendtouser` names an existing user. It checks only what is free (a sender with no
//! uid is refused with `No access`), so it is a floor, not a consumer to deploy.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use connmix_protocol::chat::DeliveryRef;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use rustc_hash::FxHashMap;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The socket read buffer: a few dozen events.
const READ_BUFFER: usize = 16 * 1024;

/// User names by uid, for a delivery's `from`.
pub type Names = FxHashMap<u64, String>;

/// Reads `uid name` lines (the format [`write_names`] writes).
pub fn read_names(path: &Path) -> anyhow::Result<Names> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the names in {}", path.display()))?;
    let mut names = Names::default();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (uid, name) = line
            .split_once(' ')
            .with_context(|| format!("not `uid name`: {line}"))?;
        names.insert(uid.parse()?, name.to_owned());
    }
    Ok(names)
}

/// Writes `uid name` lines for the floor to read.
pub fn write_names<'a>(
    path: &Path,
    names: impl IntoIterator<Item = (u64, &'a str)>,
) -> anyhow::Result<()> {
    let mut text = String::new();
    for (uid, name) in names {
        text.push_str(&format!("{uid} {name}\n"));
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Consumes `queue` on every node the center at `host` lists until the process is stopped.
pub fn run(host: &str, queue: &str, names: Names) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let nodes = discover(host).await?;
        anyhow::ensure!(!nodes.is_empty(), "the center at {host} lists no node");
        let names = Arc::new(names);
        let mut tasks = Vec::new();
        for address in nodes {
            let url = format!("ws://{address}/ws/v1");
            // tungstenite zero-fills its read buffer up to this size before every read
            // attempt; 128 KiB by default, far more than a batch of events.
            let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
            let (ws, _) =
                tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                    .await
                    .with_context(|| format!("cannot connect to {url}"))?;
            let mut node = Node {
                ws,
                next_id: 1,
                names: Arc::clone(&names),
                buf: String::with_capacity(512),
                inner: String::with_capacity(256),
            };
            node.request("queue.pop", Pop { t: [queue] }).await?;
            node.ws.flush().await?;
            tasks.push(tokio::spawn(node.serve()));
        }
        for task in tasks {
            task.await??;
        }
        Ok(())
    })
}

/// The API servers the center lists, read with one plain HTTP GET.
async fn discover(host: &str) -> anyhow::Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Listing {
        nodes: Vec<Listed>,
    }
    #[derive(Deserialize)]
    struct Listed {
        api_server: Option<String>,
        host: Option<String>,
    }
    let mut stream = TcpStream::connect(host)
        .await
        .with_context(|| format!("cannot reach the center at {host}"))?;
    let request = format!("GET /v1/nodes HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8(response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("the center's answer has no body")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "the center answered {}",
        head.lines().next().unwrap_or_default()
    );
    let listing: Listing = serde_json::from_str(body).context("not a node listing")?;
    Ok(listing
        .nodes
        .into_iter()
        .filter_map(|n| n.api_server.or(n.host))
        .collect())
}

/// One node's socket and what is needed to answer its events.
struct Node {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    names: Arc<Names>,
    /// The request being written, reused.
    buf: String,
    /// A reply or delivery being written, reused (it goes inside `buf` as a string).
    inner: String,
}

impl Node {
    /// Reads events and answers each batch with one flush.
    async fn serve(mut self) -> anyhow::Result<()> {
        while let Some(message) = self.ws.next().await {
            self.handle(message?).await?;
            // Everything already read goes into the same batch.
            while let Some(Some(message)) = self.ws.next().now_or_never() {
                self.handle(message?).await?;
            }
            self.ws.flush().await?;
        }
        Ok(())
    }

    async fn handle(&mut self, message: Message) -> anyhow::Result<()> {
        let Message::Text(text) = message else {
            return Ok(());
        };
        // Replies to our calls are read and dropped; a failed one is worth a log line.
        if text.starts_with(r#"{"E":null"#) {
            return Ok(());
        }
        let frame: Incoming<'_> = match serde_json::from_str(&text) {
            Ok(frame) => frame,
            Err(err) => {
                tracing::warn!(error = %err, "not an engine frame");
                return Ok(());
            }
        };
        let (Some("queue.pop"), Some(pop)) = (frame.e, frame.p) else {
            if frame.e.is_none() {
                tracing::warn!(reply = %text, "a call failed");
            }
            return Ok(());
        };
        let Some(data) = pop.d else { return Ok(()) };
        let Some(browser) = data.frame else {
            return Ok(());
        };
        let client = pop.c.as_str();
        let uid = data.uid.filter(|&uid| uid > 0);
        let request: Browser<'_> = match serde_json::from_str(&browser.data) {
            Ok(request) => request,
            Err(_) => {
                return self
                    .send(
                        client,
                        &ErrorOnly {
                            error: FORMAT_ERROR,
                        },
                    )
                    .await
            }
        };
        let op = &*request.op;
        match (op, uid) {
            ("ping", _) => self.send(client, &Pong { op: "pong" }).await,
            ("subscribe" | "unsubscribe", Some(_)) => {
                self.request(
                    "conn.call",
                    ConnCall {
                        c: client,
                        f: op,
                        a: &request.args,
                    },
                )
                .await?;
                self.send(client, &Success { op, success: true }).await
            }
            ("sendtoroom" | "sendtouser", Some(uid)) if request.args.len() == 2 => {
                self.publish(client, op, uid, &request.args[0], &request.args[1])
                    .await
            }
            ("sendbroadcast", Some(uid)) if request.args.len() == 1 => {
                self.publish(client, op, uid, "broadcast", &request.args[0])
                    .await
            }
            ("subscribe" | "unsubscribe" | "sendtoroom" | "sendtouser" | "sendbroadcast", None) => {
                let error = "No access";
                self.send(client, &Refused { op, error }).await
            }
            _ => {
                let error = "Unknown op";
                self.send(client, &Refused { op, error }).await
            }
        }
    }

    /// Publishes a delivery on `channel`, then tells the sender.
    async fn publish(
        &mut self,
        client: &str,
        op: &str,
        uid: u64,
        channel: &str,
        text: &str,
    ) -> anyhow::Result<()> {
        let delivery = DeliveryRef::new(
            channel,
            uid,
            self.names.get(&uid).map(String::as_str),
            text,
            Some(now_millis()),
        );
        self.inner.clear();
        serde_json::to_writer(StringWriter(&mut self.inner), &delivery)?;
        let inner = std::mem::take(&mut self.inner);
        let sent = self
            .request(
                "mesh.publish",
                Mesh {
                    c: channel,
                    d: &inner,
                    t: "text",
                },
            )
            .await;
        self.inner = inner;
        sent?;
        self.send(client, &Success { op, success: true }).await
    }

    /// `mesh.send` of `reply` to `client`.
    async fn send(&mut self, client: &str, reply: &impl Serialize) -> anyhow::Result<()> {
        self.inner.clear();
        serde_json::to_writer(StringWriter(&mut self.inner), reply)?;
        let inner = std::mem::take(&mut self.inner);
        let sent = self
            .request(
                "mesh.send",
                Mesh {
                    c: client,
                    d: &inner,
                    t: "text",
                },
            )
            .await;
        self.inner = inner;
        sent
    }

    /// Feeds one request to the socket (flushed with the batch), its result not awaited.
    async fn request(&mut self, m: &str, p: impl Serialize) -> anyhow::Result<()> {
        let i = self.next_id;
        self.next_id += 1;
        self.buf.clear();
        serde_json::to_writer(StringWriter(&mut self.buf), &Request { m, p, i })?;
        self.ws.feed(Message::text(self.buf.as_str())).await?;
        Ok(())
    }
}

const FORMAT_ERROR: &str = "Json format error";

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// serde_json writes valid UTF-8; this lets it write into a reused `String`.
struct StringWriter<'a>(&'a mut String);

impl std::io::Write for StringWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.0.push_str(text);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Engine frames in.

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    e: Option<&'a str>,
    #[serde(borrow)]
    p: Option<PopEvent<'a>>,
}

#[derive(Deserialize)]
struct PopEvent<'a> {
    #[serde(deserialize_with = "id_text")]
    c: String,
    #[serde(borrow)]
    d: Option<Pushed<'a>>,
}

#[derive(Deserialize)]
struct Pushed<'a> {
    #[serde(default, deserialize_with = "uid")]
    uid: Option<u64>,
    #[serde(borrow)]
    frame: Option<BrowserFrame<'a>>,
}

#[derive(Deserialize)]
struct BrowserFrame<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Browser<'a> {
    #[serde(borrow)]
    op: Cow<'a, str>,
    #[serde(borrow, default)]
    args: Vec<Cow<'a, str>>,
}

/// A client id, string of digits or number, kept as its digits.
fn id_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct Id;
    impl Visitor<'_> for Id {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a client id")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }
    d.deserialize_any(Id)
}

/// The context uid: a number, digits in a string, or null.
fn uid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Uid;
    impl Visitor<'_> for Uid {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a uid")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.parse().ok())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Uid)
}

// Frames out.

#[derive(Serialize)]
struct Request<'a, P> {
    m: &'a str,
    p: P,
    i: u64,
}

#[derive(Serialize)]
struct Pop<'a> {
    t: [&'a str; 1],
}

#[derive(Serialize)]
struct Mesh<'a> {
    c: &'a str,
    d: &'a str,
    t: &'a str,
}

#[derive(Serialize)]
struct ConnCall<'a> {
    c: &'a str,
    f: &'a str,
    a: &'a [Cow<'a, str>],
}

#[derive(Serialize)]
struct Success<'a> {
    op: &'a str,
    success: bool,
}

#[derive(Serialize)]
struct Refused<'a> {
    op: &'a str,
    error: &'a str,
}

#[derive(Serialize)]
struct ErrorOnly<'a> {
    error: &'a str,
}

#[derive(Serialize)]
struct Pong<'a> {
    op: &'a str,
}

#[cfg(test)]
mod tests {
    use connmix_protocol::chat::ChatReply;

    use super::*;

    #[test]
    fn replies_are_written_as_chat_consumer_writes_them() {
        let ours = serde_json::to_string(&Success {
            op: "sendtoroom",
            success: true,
        })
        .unwrap();
        assert_eq!(ours, ChatReply::success("sendtoroom").to_json());
        let pong = serde_json::to_string(&Pong { op: "pong" }).unwrap();
        assert_eq!(pong, ChatReply::pong().to_json());
        let refused = serde_json::to_string(&Refused {
            op: "subscribe",
            error: "No access",
        })
        .unwrap();
        assert_eq!(
            refused,
            ChatReply::error("subscribe", "No access").to_json()
        );
    }

    #[test]
    fn names_survive_a_round_trip_through_their_file() {
        let path = std::env::temp_dir().join(format!("floor-names-{}", std::process::id()));
        write_names(&path, [(1, "bench0"), (2, "bench1")]).unwrap();
        let names = read_names(&path).unwrap();
        assert_eq!(names.get(&2).map(String::as_str), Some("bench1"));
        let _ = std::fs::remove_file(&path);
    }
}

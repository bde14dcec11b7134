//! The stand-in's sockets: the center's HTTP answers and the API WebSockets.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt as _, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::state::Slot;
use super::wire::{self, opcode};
use super::Shared;

pub(super) async fn serve(
    shared: Arc<Shared>,
    center: std::net::TcpListener,
    nodes: Vec<std::net::TcpListener>,
    listing: String,
) {
    let listing = Arc::new(listing);
    let mut accepting = Vec::new();
    match TcpListener::from_std(center) {
        Ok(center) => accepting.push(tokio::spawn(accept_center(
            center,
            listing,
            shared.cancel.clone(),
        ))),
        Err(err) => shared.wrong(format!("center: {err}")),
    }
    for (node, listener) in nodes.into_iter().enumerate() {
        match TcpListener::from_std(listener) {
            Ok(listener) => accepting.push(tokio::spawn(accept_api(
                Arc::clone(&shared),
                node,
                listener,
            ))),
            Err(err) => shared.wrong(format!("node {node}: {err}")),
        }
    }
    shared.cancel.cancelled().await;
    for task in accepting {
        task.abort();
    }
}

async fn accept_center(listener: TcpListener, listing: Arc<String>, cancel: CancellationToken) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let listing = Arc::clone(&listing);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = answer_center(stream, &listing) => {}
            }
        });
    }
}

/// One request, one answer, closed: `/version` and `/v1/nodes`.
async fn answer_center(mut stream: TcpStream, listing: &str) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head = loop {
        if tokio::io::AsyncReadExt::read_buf(&mut stream, &mut buf).await? == 0 {
            return Ok(());
        }
        match wire::read_head(&buf) {
            Ok(Some(head)) => break head,
            Ok(None) if buf.len() < 16 * 1024 => continue,
            _ => return Ok(()),
        }
    };
    let answer = match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/version") => wire::http_response("200 OK", r#"{"apis":["v1"]}"#),
        ("GET", "/v1/nodes") => wire::http_response("200 OK", listing),
        _ => wire::http_response("404 Not Found", r#"{"error":"not found"}"#),
    };
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

async fn accept_api(shared: Arc<Shared>, node: usize, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let cancel = shared.cancel.clone();
            tokio::select! {
                _ = cancel.cancelled() => {}
                served = api_connection(&shared, node, stream) => {
                    if let Err(err) = served {
                        tracing::debug!(node, error = %err, "stand-in connection ended");
                    }
                }
            }
        });
    }
}

/// One API WebSocket: the upgrade, then frames in and batched bytes out, with no blocking
/// write (the socket is polled for both directions at once).
async fn api_connection(shared: &Shared, node: usize, mut stream: TcpStream) -> anyhow::Result<()> {
    let mut inbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let head = loop {
        if tokio::io::AsyncReadExt::read_buf(&mut stream, &mut inbuf).await? == 0 {
            return Ok(());
        }
        if let Some(head) = wire::read_head(&inbuf)? {
            break head;
        }
        anyhow::ensure!(inbuf.len() < 16 * 1024, "an endless request head");
    };
    let Some(key) = head
        .websocket_key
        .as_deref()
        .filter(|_| head.path == "/ws/v1")
    else {
        let answer = wire::http_response("404 Not Found", r#"{"error":"not found"}"#);
        stream.write_all(answer.as_bytes()).await?;
        return Ok(());
    };
    stream
        .write_all(wire::upgrade_response(key).as_bytes())
        .await?;
    inbuf.drain(..head.end);
    let wake = Arc::new(Notify::new());
    let me = {
        let mut state = shared.state();
        let slot = Slot {
            node,
            out: Vec::with_capacity(64 * 1024),
            wake: Arc::clone(&wake),
        };
        // With the events on Redis, a consumer's API connection is all it has here.
        if state.feed.is_some() {
            shared.consumers.fetch_add(1, Ordering::Relaxed);
        }
        match state.slots.iter().position(Option::is_none) {
            Some(free) => {
                state.slots[free] = Some(slot);
                free
            }
            None => {
                state.slots.push(Some(slot));
                state.slots.len() - 1
            }
        }
    };
    let served = frames(shared, me, &mut stream, inbuf, &wake).await;
    let mut state = shared.state();
    if state.feed.is_some() {
        shared.consumers.fetch_sub(1, Ordering::Relaxed);
    }
    state.stop_consuming(shared, me);
    state.slots[me] = None;
    served
}

async fn frames(
    shared: &Shared,
    me: usize,
    stream: &mut TcpStream,
    mut inbuf: Vec<u8>,
    wake: &Notify,
) -> anyhow::Result<()> {
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut written = 0;
    let mut message: Vec<u8> = Vec::new();
    let mut closing = false;
    loop {
        if written == out.len() {
            out.clear();
            written = 0;
            let mut state = shared.state();
            if !closing {
                state.fill(shared, me);
            }
            if let Some(slot) = state.slots[me].as_mut() {
                std::mem::swap(&mut slot.out, &mut out);
            }
        }
        if closing && written == out.len() {
            return Ok(());
        }
        let interest = if written < out.len() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let ready = tokio::select! {
            ready = stream.ready(interest) => ready?,
            _ = wake.notified() => continue,
        };
        if ready.is_writable() && written < out.len() {
            match stream.try_write(&out[written..]) {
                Ok(n) => written += n,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err.into()),
            }
        }
        if !ready.is_readable() || closing {
            continue;
        }
        if inbuf.capacity() - inbuf.len() < 16 * 1024 {
            inbuf.reserve(64 * 1024);
        }
        match stream.try_read_buf(&mut inbuf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err.into()),
        }
        let mut at = 0;
        let mut state = shared.state();
        while let Some(frame) = wire::read_frame(&mut inbuf, at)? {
            at = frame.end;
            let payload = &inbuf[frame.payload.clone()];
            match frame.opcode {
                opcode::TEXT | opcode::BINARY | opcode::CONTINUATION => {
                    let whole = if frame.fin && message.is_empty() {
                        payload
                    } else {
                        message.extend_from_slice(payload);
                        if !frame.fin {
                            continue;
                        }
                        &message[..]
                    };
                    if frame.opcode == opcode::BINARY {
                        shared.wrong("a binary frame".into());
                    } else {
                        state.on_text(shared, me, whole);
                    }
                    message.clear();
                }
                opcode::PING => {
                    if let Some(slot) = state.slots[me].as_mut() {
                        wire::write_frame(&mut slot.out, opcode::PONG, payload);
                    }
                }
                opcode::CLOSE => {
                    if let Some(slot) = state.slots[me].as_mut() {
                        wire::write_frame(&mut slot.out, opcode::CLOSE, payload);
                    }
                    closing = true;
                    break;
                }
                _ => {}
            }
        }
        drop(state);
        inbuf.drain(..at);
    }
}

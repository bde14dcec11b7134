//! The browser listener of a node that runs a script: raw TCP, every byte to the script.

use std::net::SocketAddr;
use std::sync::Arc;

use connmix_protocol::Payload;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::host::{Command, ConnIo, HostHandle, Out};
use crate::api::CLOSE_GRACE;
use crate::client::{ClientState, BROWSER_BUFFER};
use crate::server::NodeState;

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Accepts connections until `stop` is cancelled.
pub(crate) fn serve(
    state: NodeState,
    listener: TcpListener,
    host: HostHandle,
    stop: CancellationToken,
) {
    let tracker = state.runtime.tracker.clone();
    tracker.spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, remote)) => {
                    let task = connection(state.clone(), host.clone(), stream, remote);
                    state.runtime.tracker.spawn(task);
                }
                Err(err) => tracing::debug!(error = %err, "accept failed"),
            }
        }
    });
}

async fn connection(state: NodeState, host: HostHandle, stream: TcpStream, remote: SocketAddr) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "cannot disable Nagle's algorithm");
    }
    let counters = &state.cluster.counters;
    let (deliveries, deliveries_rx) = mpsc::channel(BROWSER_BUFFER);
    let client = state.runtime.register(Some(deliveries), counters);
    let (out, out_rx) = mpsc::channel(BROWSER_BUFFER);
    let (paused, paused_rx) = watch::channel(false);
    let io = ConnIo { out, paused };
    let open = Command::Open {
        client: client.clone(),
        io,
        remote,
    };
    if host.tx.send(open).await.is_err() {
        state.runtime.unregister(client.id, counters);
        return;
    }
    let (read, write) = stream.into_split();
    let tracker = &state.runtime.tracker;
    tracker.spawn(writer(write, out_rx, client.clone()));
    tracker.spawn(pump(deliveries_rx, host.clone(), client.clone()));
    let reason = reader(read, &host, &client, paused_rx).await;
    client.closed.cancel();
    let closed = Command::Closed {
        id: client.id,
        reason,
    };
    if host.tx.send(closed).await.is_err() {
        state.runtime.unregister(client.id, counters);
    }
}

/// Reads until the connection ends; why it ended, for `on_close`.
async fn reader(
    mut read: OwnedReadHalf,
    host: &HostHandle,
    client: &Arc<ClientState>,
    mut paused: watch::Receiver<bool>,
) -> String {
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        // While the script waits and input piled up, TCP holds the rest back.
        tokio::select! {
            _ = client.closed.cancelled() => return "closed".into(),
            waited = paused.wait_for(|p| !*p) => if waited.is_err() { return "closed".into() },
        }
        let n = tokio::select! {
            _ = client.closed.cancelled() => return "closed".into(),
            n = read.read(&mut chunk) => n,
        };
        match n {
            Ok(0) => return "EOF".into(),
            Ok(n) => {
                let data = Command::Data {
                    id: client.id,
                    bytes: chunk[..n].to_vec(),
                };
                if host.tx.send(data).await.is_err() {
                    return "the node stopped".into();
                }
            }
            Err(err) => return err.to_string(),
        }
    }
}

/// Writes what the script produces, in order.
async fn writer(mut write: OwnedWriteHalf, mut out: mpsc::Receiver<Out>, client: Arc<ClientState>) {
    loop {
        let next = tokio::select! {
            _ = client.closed.cancelled() => break,
            next = out.recv() => next,
        };
        match next {
            Some(Out::Bytes(bytes)) => {
                let written = tokio::select! {
                    written = write.write_all(&bytes) => written.is_ok(),
                    _ = client.closed.cancelled() => false,
                };
                if !written {
                    break;
                }
            }
            Some(Out::Close) | None => {
                let _ = tokio::time::timeout(CLOSE_GRACE, write.shutdown()).await;
                break;
            }
        }
    }
    client.closed.cancel();
}

/// Hands a consumer's sends to the VM, which encodes them with `protocol_encode`.
async fn pump(mut rx: mpsc::Receiver<Payload>, host: HostHandle, client: Arc<ClientState>) {
    loop {
        let payload = tokio::select! {
            _ = client.closed.cancelled() => break,
            payload = rx.recv() => payload,
        };
        let Some(payload) = payload else { break };
        let deliver = Command::Deliver {
            id: client.id,
            payload,
        };
        if host.tx.send(deliver).await.is_err() {
            break;
        }
    }
}

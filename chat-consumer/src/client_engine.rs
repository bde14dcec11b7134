//! [`ChatEngine`] over the real engine client.

use connmix_client::{Client, ClientError, ClientErrorKind, ErrorCode};

use crate::engine::{ChatEngine, Conn, EngineCallError, PROBE_CHANNEL, UID_KEY};

impl ChatEngine for Client {
    async fn set_uid(&self, conn: &Conn, uid: u64) -> Result<(), EngineCallError> {
        self.set_context_value(conn, UID_KEY, uid)
            .await
            .map_err(failed)
    }

    async fn subscribe(&self, conn: &Conn, channels: &[String]) -> Result<(), EngineCallError> {
        Client::subscribe(self, conn, channels)
            .await
            .map_err(failed)
    }

    async fn unsubscribe(&self, conn: &Conn, channels: &[String]) -> Result<(), EngineCallError> {
        Client::unsubscribe(self, conn, channels)
            .await
            .map_err(failed)
    }

    async fn send(&self, conn: &Conn, text: String) -> Result<(), EngineCallError> {
        // Through the connection's own node: its replies then keep their order with its
        // `conn.call`s (a login's uid, then the login's reply).
        Client::send_to(self, conn, text).await.map_err(|err| {
            crate::telemetry::engine_call_failed(&err);
            // 401: the engine has no such connection any more; its browser left.
            if err.kind() == ClientErrorKind::Engine(ErrorCode::SendFailed) {
                EngineCallError::connection_gone(err)
            } else {
                EngineCallError::new(err)
            }
        })
    }

    async fn publish(&self, channel: &str, text: String) -> Result<u64, EngineCallError> {
        Client::publish(self, channel, text)
            .await
            .map(|result| result.delivered)
            .map_err(failed)
    }

    async fn probe(&self, conn: &Conn) -> Result<bool, EngineCallError> {
        match Client::unsubscribe(self, conn, &[PROBE_CHANNEL]).await {
            Ok(()) => Ok(true),
            // 301: `conn.call` found no connection with that client id on the node.
            Err(err) if err.kind() == ClientErrorKind::Engine(ErrorCode::ConnCallFailed) => {
                Ok(false)
            }
            Err(err) => Err(failed(err)),
        }
    }
}

/// Counts the failed call, then wraps its error.
fn failed(err: ClientError) -> EngineCallError {
    crate::telemetry::engine_call_failed(&err);
    EngineCallError::new(err)
}

//! Test support: a recording fake engine and a chat on an in-memory database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::chat::Chat;
use crate::engine::{ChatEngine, Conn, EngineCallError};
use crate::history::History;
use crate::limits::Limits;
use crate::service::password::Hasher;
use crate::service::session::Sessions;
use crate::service::users;

/// One call a handler made, with JSON payloads parsed so tests compare values, not text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    SetUid(Conn, u64),
    Subscribe(Conn, Vec<String>),
    Unsubscribe(Conn, Vec<String>),
    Send(Conn, Value),
    Publish(String, Value),
}

/// Records every successful call; can be told to fail.
#[derive(Debug, Default)]
pub(crate) struct RecordingEngine {
    calls: Mutex<Vec<Call>>,
    recorded: tokio::sync::Notify,
    fail_set_uid: AtomicBool,
    fail_calls: AtomicBool,
    gone: AtomicBool,
    /// Connections `probe` reports gone.
    closed: Mutex<Vec<Conn>>,
}

#[derive(Debug, thiserror::Error)]
#[error("refused by the test")]
struct Refused;

impl RecordingEngine {
    /// The calls so far, clearing the record.
    pub(crate) fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// Makes `set_uid` fail.
    pub(crate) fn fail_set_uid(&self, fail: bool) {
        self.fail_set_uid.store(fail, Ordering::SeqCst);
    }

    /// Makes sends fail as to a connection whose browser has left.
    pub(crate) fn browser_gone(&self, gone: bool) {
        self.gone.store(gone, Ordering::SeqCst);
    }

    /// Makes subscribe, unsubscribe and publish fail (replies still go through).
    pub(crate) fn fail_calls(&self, fail: bool) {
        self.fail_calls.store(fail, Ordering::SeqCst);
    }

    /// Makes `probe` report `conn` gone.
    pub(crate) fn close(&self, conn: &Conn) {
        self.closed.lock().unwrap().push(conn.clone());
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
        self.recorded.notify_waiters();
    }

    /// Waits (at most 10 s) until a recorded call matches, without taking the record.
    pub(crate) async fn wait_for(&self, wanted: impl Fn(&Call) -> bool) {
        let wait = async {
            loop {
                let notified = self.recorded.notified();
                if self.calls.lock().unwrap().iter().any(&wanted) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .expect("the expected engine call never came");
    }

    fn check(&self, flag: &AtomicBool) -> Result<(), EngineCallError> {
        if flag.load(Ordering::SeqCst) {
            Err(EngineCallError::new(Refused))
        } else {
            Ok(())
        }
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

impl ChatEngine for RecordingEngine {
    async fn set_uid(&self, conn: &Conn, uid: u64) -> Result<(), EngineCallError> {
        self.check(&self.fail_set_uid)?;
        self.record(Call::SetUid(conn.clone(), uid));
        Ok(())
    }

    async fn subscribe(&self, conn: &Conn, channels: &[String]) -> Result<(), EngineCallError> {
        self.check(&self.fail_calls)?;
        self.record(Call::Subscribe(conn.clone(), channels.to_vec()));
        Ok(())
    }

    async fn unsubscribe(&self, conn: &Conn, channels: &[String]) -> Result<(), EngineCallError> {
        self.check(&self.fail_calls)?;
        self.record(Call::Unsubscribe(conn.clone(), channels.to_vec()));
        Ok(())
    }

    async fn send(&self, conn: &Conn, text: String) -> Result<(), EngineCallError> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(EngineCallError::connection_gone(Refused));
        }
        self.record(Call::Send(conn.clone(), parse(&text)));
        Ok(())
    }

    async fn publish(&self, channel: &str, text: String) -> Result<u64, EngineCallError> {
        self.check(&self.fail_calls)?;
        self.record(Call::Publish(channel.to_owned(), parse(&text)));
        Ok(1)
    }

    async fn probe(&self, conn: &Conn) -> Result<bool, EngineCallError> {
        self.check(&self.fail_calls)?;
        Ok(!self.closed.lock().unwrap().contains(conn))
    }
}

/// Connection `client` on node `n1`.
pub(crate) fn conn(client: u64) -> Conn {
    Conn::new("n1", client)
}

/// A chat on a migrated in-memory SQLite with cheap password hashing.
pub(crate) async fn test_chat() -> Chat<RecordingEngine> {
    let db = crate::db::connect("sqlite::memory:").await.unwrap();
    crate::db::migrate(&db).await.unwrap();
    let hasher = Hasher::with_cost(64, 1, 2).unwrap();
    let sessions = Sessions::load(&db, Duration::from_secs(3600))
        .await
        .unwrap();
    let limits = Limits::default();
    let (history, _) = History::start(db.clone(), limits.history_per_channel, 64);
    Chat::new(RecordingEngine::default(), db, hasher, limits)
        .with_sessions(sessions)
        .with_history(history)
}

/// Adds a user with a hashed password; returns the id.
pub(crate) async fn add_user<E: ChatEngine>(chat: &Chat<E>, name: &str, password: &str) -> u64 {
    let hash = chat.hasher.hash(password).await.unwrap();
    let row = users::create(chat.db(), name, &format!("{name}@example.com"), hash)
        .await
        .unwrap();
    row.id as u64
}

/// The user's `online` count.
pub(crate) async fn online<E: ChatEngine>(chat: &Chat<E>, uid: u64) -> i32 {
    users::find_by_id(chat.db(), uid)
        .await
        .unwrap()
        .unwrap()
        .online
}

/// A delivered message without its `time`, after checking `time` is a number.
pub(crate) fn delivery_fields(delivered: &Value) -> Value {
    let mut fields = delivered.clone();
    let time = fields.as_object_mut().unwrap().remove("time");
    assert!(
        time.is_some_and(|t| t.is_u64()),
        "delivery lacks a time: {delivered}"
    );
    fields
}

//! Matches every frame a synthetic connection receives against the replies it is owed, and
//! times the senders' own answers from the moment their event was meant to be pushed.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connmix_protocol::Payload;
use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::Value;

use crate::workload::Expect;

/// What kind of answer a latency sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An answer to chat traffic.
    Chat,
    /// An answer to a login.
    Login,
}

/// One timed answer.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When its event was meant to be pushed.
    pub intended: Instant,
    /// When the answer arrived.
    pub arrived: Instant,
    /// What it answered.
    pub class: Class,
}

impl Sample {
    /// Push-to-answer time.
    pub fn latency(&self) -> Duration {
        self.arrived.saturating_duration_since(self.intended)
    }
}

struct Owed {
    timed: Option<(Instant, Class)>,
}

/// An owed reply's text, hashed and compared without its closing brace, so that a received
/// delivery with a `time` field can be looked up by a slice of itself, without a copy.
struct Key(Arc<str>);

impl Key {
    fn canonical(&self) -> &str {
        self.0.strip_suffix('}').unwrap_or(&self.0)
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.canonical()
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl Eq for Key {}

/// The lookup slice of a received text, to match [`Key::canonical`]: the text without its
/// closing brace and, for a delivery, without a trailing `,"time":<digits>` field. `None` for
/// a text that does not end like a JSON object.
pub fn canonical_received(text: &str) -> Option<&str> {
    let body = text.strip_suffix('}')?;
    if text.starts_with(r#"{"event":"#) {
        if let Some((head, digits)) = body.rsplit_once(r#","time":"#) {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return Some(head);
            }
        }
    }
    Some(body)
}

/// The oldest of several owed replies with one text, and the later ones (no allocation for
/// the usual single one).
struct Queue {
    first: Owed,
    later: VecDeque<Owed>,
}

/// What one connection is owed, by the reply's usual text; equal texts queue oldest first.
#[derive(Default)]
struct Inbox {
    by_text: FxHashMap<Key, Queue>,
}

impl Inbox {
    fn owe(&mut self, text: Arc<str>, owed: Owed) {
        match self.by_text.entry(Key(text)) {
            Entry::Occupied(mut queue) => queue.get_mut().later.push_back(owed),
            Entry::Vacant(slot) => {
                slot.insert(Queue {
                    first: owed,
                    later: VecDeque::new(),
                });
            }
        }
    }

    fn take(&mut self, canonical: &str) -> Option<Owed> {
        let queue = self.by_text.get_mut(canonical)?;
        match queue.later.pop_front() {
            Some(next) => Some(std::mem::replace(&mut queue.first, next)),
            None => self.by_text.remove(canonical).map(|q| q.first),
        }
    }

    /// The oldest owed reply equal to `value` as JSON, whatever its text: the slow path, for
    /// a consumer that orders fields differently.
    fn take_value(&mut self, value: &Value) -> Option<Owed> {
        let canonical = self
            .by_text
            .keys()
            .find(|key| serde_json::from_str::<Value>(&key.0).is_ok_and(|owed| owed == *value))
            .map(|key| key.canonical().to_owned())?;
        self.take(&canonical)
    }

    fn some(&self, n: usize) -> Vec<String> {
        self.by_text
            .keys()
            .take(n)
            .map(|k| k.0.to_string())
            .collect()
    }
}

/// How many mismatches are kept verbatim for the report.
const KEPT_ERRORS: usize = 10;

/// The replies owed to every connection, and what arrived.
pub struct Checker {
    inboxes: Vec<Mutex<Inbox>>,
    outstanding: AtomicU64,
    answered: AtomicU64,
    wrong: AtomicU64,
    errors: Mutex<Vec<String>>,
    samples: Mutex<Vec<Sample>>,
}

impl Checker {
    /// A checker for `connections` connections.
    pub fn new(connections: usize) -> Self {
        Self {
            inboxes: (0..connections).map(|_| Mutex::default()).collect(),
            outstanding: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            wrong: AtomicU64::new(0),
            errors: Mutex::default(),
            samples: Mutex::default(),
        }
    }

    /// Records that `expect` is owed; a timed one is timed from `intended` as `class`.
    /// Call before pushing the event, so the answer cannot arrive first.
    pub fn owe(&self, expect: Expect, intended: Instant, class: Class) {
        let owed = Owed {
            timed: expect.timed.then_some((intended, class)),
        };
        if let Ok(mut inbox) = self.inboxes[expect.conn].lock() {
            inbox.owe(expect.text, owed);
        }
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    /// Matches a frame connection `conn` received at `arrived` with the oldest equal reply it
    /// is owed; anything else is counted as wrong.
    pub fn receive(&self, conn: usize, payload: Payload, arrived: Instant) {
        let text = match payload {
            Payload::Text(text) => text,
            Payload::Binary(bytes) => {
                return self.wrong(format!(
                    "connection {conn} got a binary frame of {} bytes",
                    bytes.len()
                ));
            }
        };
        let Ok(mut inbox) = self.inboxes[conn].lock() else {
            return;
        };
        let mut found = canonical_received(&text).and_then(|key| inbox.take(key));
        if found.is_none() {
            // Another field order, or a different reply: compare as JSON.
            if let Ok(mut value) = serde_json::from_str::<Value>(&text) {
                // A delivery's `time` is the consumer's clock, a login's session token its
                // own secret: any value will do.
                if let Value::Object(fields) = &mut value {
                    if fields.contains_key("event") {
                        fields.remove("time");
                    }
                    if fields.get("op").and_then(Value::as_str) == Some("auth") {
                        fields.remove("token");
                    }
                }
                found = inbox.take_value(&value);
            }
        }
        let Some(owed) = found else {
            let owed = inbox.some(3);
            drop(inbox);
            return self.wrong(format!(
                "connection {conn} got {text} but was owed {}",
                if owed.is_empty() {
                    "nothing".to_owned()
                } else {
                    owed.join(" or ")
                }
            ));
        };
        drop(inbox);
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        if let Some((intended, class)) = owed.timed {
            self.answered.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut samples) = self.samples.lock() {
                samples.push(Sample {
                    intended,
                    arrived,
                    class,
                });
            }
        }
    }

    fn wrong(&self, what: String) {
        self.wrong.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errors) = self.errors.lock() {
            if errors.len() < KEPT_ERRORS {
                errors.push(what);
            }
        }
    }

    /// Replies owed and not yet received.
    pub fn outstanding(&self) -> u64 {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Timed answers received so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Frames that matched nothing owed.
    pub fn wrong_count(&self) -> u64 {
        self.wrong.load(Ordering::Relaxed)
    }

    /// Takes the timed answers recorded since the last call.
    pub fn take_samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// Up to three replies still owed, for an error message.
    pub fn some_owed(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (conn, inbox) in self.inboxes.iter().enumerate() {
            if let Ok(inbox) = inbox.lock() {
                for text in inbox.some(3 - out.len().min(3)) {
                    out.push(format!("connection {conn}: {text}"));
                }
            }
            if out.len() >= 3 {
                break;
            }
        }
        out
    }

    /// Fails with the first mismatches if any frame was wrong.
    pub fn verdict(&self) -> anyhow::Result<()> {
        let wrong = self.wrong_count();
        if wrong == 0 {
            return Ok(());
        }
        let errors = self
            .errors
            .lock()
            .map(|e| e.join("\n  "))
            .unwrap_or_default();
        anyhow::bail!("{wrong} wrong replies, first ones:\n  {errors}")
    }

    /// Waits until nothing is owed; fails when nothing arrives for `quiet` while replies are
    /// still owed, naming some of them.
    pub async fn drained(&self, quiet: Duration) -> anyhow::Result<()> {
        let mut last = (self.outstanding(), Instant::now());
        loop {
            self.verdict()?;
            let now = self.outstanding();
            if now == 0 {
                return Ok(());
            }
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > quiet {
                anyhow::bail!(
                    "{now} replies never arrived (nothing for {quiet:?}), e.g.\n  {}",
                    self.some_owed().join("\n  ")
                );
            }
            // A benchmark may poll: this is its progress watch, not a test's synchronisation.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Percentiles {
    /// The percentiles of `latencies`.
    pub fn of(latencies: impl IntoIterator<Item = Duration>) -> Self {
        let Ok(mut histogram) = Histogram::<u64>::new(3) else {
            return Self::default();
        };
        for latency in latencies {
            let micros = u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let _ = histogram.record(micros);
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.5)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn expect(conn: usize, value: Value, timed: bool) -> Expect {
        Expect {
            conn,
            text: value.to_string().into(),
            timed,
        }
    }

    #[tokio::test]
    async fn replies_match_in_any_field_order_and_ignore_the_delivery_time() {
        let checker = Checker::new(2);
        let start = Instant::now();
        let delivery = json!({"event":"subscribe","channel":"room_1","data":"uid:1,message:é","uid":1,"text":"é"});
        checker.owe(expect(1, delivery, false), start, Class::Chat);
        checker.owe(expect(0, json!({"op":"ping"}), true), start, Class::Chat);
        let reordered = r#"{"text":"é","uid":1,"time":123,"channel":"room_1","event":"subscribe","data":"uid:1,message:é"}"#;
        checker.receive(1, Payload::Text(reordered.into()), Instant::now());
        checker.receive(0, Payload::Text(r#"{"op":"ping"}"#.into()), Instant::now());
        checker.drained(Duration::from_secs(1)).await.unwrap();
        assert_eq!(checker.answered(), 1);
        assert_eq!(checker.take_samples().len(), 1);
    }

    #[tokio::test]
    async fn a_wrong_reply_fails_the_run_and_names_it() {
        let checker = Checker::new(1);
        checker.owe(
            expect(0, json!({"op":"pong"}), true),
            Instant::now(),
            Class::Chat,
        );
        checker.receive(
            0,
            Payload::Text(r#"{"op":"pong","extra":1}"#.into()),
            Instant::now(),
        );
        let err = checker
            .drained(Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(r#"got {"op":"pong","extra":1}"#),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_missing_reply_fails_the_run_and_names_it() {
        let checker = Checker::new(1);
        checker.owe(
            expect(0, json!({"op":"pong"}), true),
            Instant::now(),
            Class::Chat,
        );
        let err = checker
            .drained(Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("1 replies never arrived"), "{err}");
        assert!(
            err.to_string().contains(r#"connection 0: {"op":"pong"}"#),
            "{err}"
        );
    }

    #[test]
    fn the_time_field_is_cut_only_from_the_end_of_a_delivery() {
        assert_eq!(
            canonical_received(r#"{"event":"subscribe","text":"a","time":17}"#),
            Some(r#"{"event":"subscribe","text":"a""#)
        );
        assert_eq!(
            canonical_received(r#"{"event":"subscribe","text":"a","time":"17"}"#),
            Some(r#"{"event":"subscribe","text":"a","time":"17""#)
        );
        assert_eq!(
            canonical_received(r#"{"op":"pong","time":17}"#),
            Some(r#"{"op":"pong","time":17"#)
        );
        assert_eq!(canonical_received(r#"{"op":"pong""#), None);
    }

    #[tokio::test]
    async fn a_delivery_in_the_usual_order_matches_whatever_its_time() {
        let checker = Checker::new(1);
        let owed = r#"{"event":"subscribe","channel":"room_1","data":"uid:1,message:x","uid":1,"text":"x"}"#;
        checker.owe(
            Expect {
                conn: 0,
                text: owed.into(),
                timed: true,
            },
            Instant::now(),
            Class::Chat,
        );
        let got = r#"{"event":"subscribe","channel":"room_1","data":"uid:1,message:x","uid":1,"text":"x","time":1764100000000}"#;
        checker.receive(0, Payload::Text(got.into()), Instant::now());
        checker.drained(Duration::from_secs(1)).await.unwrap();
        assert_eq!(checker.answered(), 1);
    }

    #[tokio::test]
    async fn a_frame_cut_short_is_wrong_even_if_it_is_a_prefix_of_an_owed_one() {
        let checker = Checker::new(1);
        checker.owe(
            expect(0, json!({"op":"pong"}), true),
            Instant::now(),
            Class::Chat,
        );
        checker.receive(0, Payload::Text(r#"{"op":"pong""#.into()), Instant::now());
        assert_eq!(checker.wrong_count(), 1);
        assert_eq!(checker.outstanding(), 1);
    }

    #[tokio::test]
    async fn equal_replies_are_matched_oldest_first() {
        let checker = Checker::new(1);
        let first = Instant::now();
        let second = first + Duration::from_millis(5);
        checker.owe(expect(0, json!({"op":"pong"}), true), first, Class::Chat);
        checker.owe(expect(0, json!({"op":"pong"}), true), second, Class::Chat);
        checker.receive(0, Payload::Text(r#"{"op":"pong"}"#.into()), second);
        let samples = checker.take_samples();
        assert_eq!(samples[0].intended, first);
        assert_eq!(checker.outstanding(), 1);
    }

    #[test]
    fn percentiles_come_from_the_samples() {
        let p = Percentiles::of((1..=1000).map(Duration::from_micros));
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 0.5).abs() < 0.01, "{p:?}");
        assert!((p.max_ms - 1.0).abs() < 0.01, "{p:?}");
    }
}

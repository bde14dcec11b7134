//! The engine calls the stand-in is owed, looked up by a hash of what identifies a call (its
//! method, target and data), so that matching one costs a hash and a comparison.

use std::collections::VecDeque;
use std::hash::Hasher as _;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};

use crate::checker::canonical_received;

/// What a call is, as far as matching goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape<'a> {
    /// `mesh.send` to a client id.
    Send {
        /// The client id.
        client: u64,
        /// The data, in the form [`canonical_received`] gives.
        data: &'a str,
    },
    /// `mesh.publish` on a channel.
    Publish {
        /// The channel.
        channel: &'a str,
        /// The data, as for `Send`.
        data: &'a str,
    },
    /// `conn.call` of `function` with `args` on a client id.
    ConnCall {
        /// The client id.
        client: u64,
        /// The function.
        function: &'a str,
        /// Its arguments, each a string.
        args: &'a [&'a str],
    },
}

impl Shape<'_> {
    fn key(&self) -> u64 {
        let mut h = FxHasher::default();
        match self {
            Shape::Send { client, data } => {
                h.write_u8(0);
                h.write_u64(*client);
                h.write(data.as_bytes());
            }
            Shape::Publish { channel, data } => {
                h.write_u8(1);
                h.write(channel.as_bytes());
                h.write_u8(0xFF);
                h.write(data.as_bytes());
            }
            Shape::ConnCall {
                client,
                function,
                args,
            } => {
                h.write_u8(2);
                h.write_u64(*client);
                h.write(function.as_bytes());
                for arg in *args {
                    h.write_u8(0xFF);
                    h.write(arg.as_bytes());
                }
            }
        }
        h.finish()
    }
}

/// An owed call, kept to check a hash match and to name it in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnedShape {
    Send {
        client: u64,
        data: Arc<str>,
    },
    Publish {
        channel: String,
        data: Arc<str>,
    },
    ConnCall {
        client: u64,
        function: &'static str,
        args: Vec<String>,
    },
}

impl OwnedShape {
    fn matches(&self, shape: &Shape<'_>) -> bool {
        match (self, shape) {
            (OwnedShape::Send { client, data }, Shape::Send { client: c, data: d }) => {
                client == c && canonical(data) == *d
            }
            (
                OwnedShape::Publish { channel, data },
                Shape::Publish {
                    channel: ch,
                    data: d,
                },
            ) => channel == ch && canonical(data) == *d,
            (
                OwnedShape::ConnCall {
                    client,
                    function,
                    args,
                },
                Shape::ConnCall {
                    client: c,
                    function: f,
                    args: a,
                },
            ) => {
                client == c
                    && function == f
                    && args.iter().map(String::as_str).eq(a.iter().copied())
            }
            _ => false,
        }
    }

    fn key(&self) -> u64 {
        match self {
            OwnedShape::Send { client, data } => Shape::Send {
                client: *client,
                data: canonical(data),
            }
            .key(),
            OwnedShape::Publish { channel, data } => Shape::Publish {
                channel,
                data: canonical(data),
            }
            .key(),
            OwnedShape::ConnCall {
                client,
                function,
                args,
            } => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Shape::ConnCall {
                    client: *client,
                    function,
                    args: &args,
                }
                .key()
            }
        }
    }
}

/// An owed text as a received one is looked up: without its closing brace.
fn canonical(data: &str) -> &str {
    data.strip_suffix('}').unwrap_or(data)
}

struct Entry {
    event: u64,
    shape: OwnedShape,
}

/// Equal calls owed by several events, oldest first, with no allocation for a single one.
struct Queue {
    first: Entry,
    later: VecDeque<Entry>,
}

/// Every owed call, and how many each event still waits for.
#[derive(Default)]
pub(crate) struct Owed {
    calls: FxHashMap<u64, Queue>,
    events: FxHashMap<u64, u32>,
}

/// What a received call turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matched {
    /// It was owed; the event still waits for others.
    Owed,
    /// It was owed, and was the event's last.
    Completed,
    /// Nothing owed it.
    Wrong,
}

impl Owed {
    /// Records that event `event` owes `calls`; an event that owes none is complete at once.
    pub(crate) fn owe(&mut self, event: u64, calls: Vec<OwnedShape>) -> bool {
        if calls.is_empty() {
            return true;
        }
        self.events.insert(event, calls.len() as u32);
        for shape in calls {
            let entry = Entry { event, shape };
            match self.calls.entry(entry.shape.key()) {
                std::collections::hash_map::Entry::Occupied(mut q) => {
                    q.get_mut().later.push_back(entry)
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Queue {
                        first: entry,
                        later: VecDeque::new(),
                    });
                }
            }
        }
        false
    }

    /// Matches a received call against the oldest equal one owed.
    pub(crate) fn receive(&mut self, shape: &Shape<'_>) -> Matched {
        let key = shape.key();
        let Some(queue) = self.calls.get_mut(&key) else {
            return Matched::Wrong;
        };
        if !queue.first.shape.matches(shape) {
            return Matched::Wrong;
        }
        let entry = match queue.later.pop_front() {
            Some(next) => std::mem::replace(&mut queue.first, next),
            None => match self.calls.remove(&key) {
                Some(queue) => queue.first,
                None => return Matched::Wrong,
            },
        };
        match self.events.get_mut(&entry.event) {
            Some(left) if *left > 1 => {
                *left -= 1;
                Matched::Owed
            }
            Some(_) => {
                self.events.remove(&entry.event);
                Matched::Completed
            }
            None => Matched::Wrong,
        }
    }

    /// Events waiting for at least one call.
    pub(crate) fn outstanding(&self) -> usize {
        self.events.len()
    }

    /// Up to `n` owed calls, for an error message.
    pub(crate) fn some(&self, n: usize) -> Vec<String> {
        self.calls
            .values()
            .take(n)
            .map(|q| format!("event {}: {:?}", q.first.event, q.first.shape))
            .collect()
    }
}

/// The shape of a received `mesh.send` or `mesh.publish` data: see [`canonical_received`].
pub(crate) fn received_data(data: &str) -> &str {
    canonical_received(data).unwrap_or(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_completes_when_its_last_call_arrives_in_any_order() {
        let mut owed = Owed::default();
        let ack: Arc<str> = r#"{"op":"sendtoroom","success":true}"#.into();
        let delivery: Arc<str> = r#"{"event":"subscribe","channel":"room_b0","text":"x"}"#.into();
        owed.owe(
            7,
            vec![
                OwnedShape::Publish {
                    channel: "room_b0".into(),
                    data: Arc::clone(&delivery),
                },
                OwnedShape::Send {
                    client: 3,
                    data: Arc::clone(&ack),
                },
            ],
        );
        let got_ack = Shape::Send {
            client: 3,
            data: received_data(&ack),
        };
        assert_eq!(owed.receive(&got_ack), Matched::Owed);
        let timed = r#"{"event":"subscribe","channel":"room_b0","text":"x","time":17}"#;
        let got_delivery = Shape::Publish {
            channel: "room_b0",
            data: received_data(timed),
        };
        assert_eq!(owed.receive(&got_delivery), Matched::Completed);
        assert_eq!(owed.outstanding(), 0);
        assert_eq!(owed.receive(&got_ack), Matched::Wrong, "only owed once");
    }

    #[test]
    fn a_call_to_the_wrong_target_or_with_other_data_is_wrong() {
        let mut owed = Owed::default();
        owed.owe(
            1,
            vec![
                OwnedShape::Send {
                    client: 3,
                    data: r#"{"op":"pong"}"#.into(),
                },
                OwnedShape::ConnCall {
                    client: 3,
                    function: "subscribe",
                    args: vec!["room_s3".into()],
                },
            ],
        );
        let cases = [
            Shape::Send {
                client: 4,
                data: r#"{"op":"pong""#,
            },
            Shape::Send {
                client: 3,
                data: r#"{"op":"ping""#,
            },
            Shape::Publish {
                channel: "3",
                data: r#"{"op":"pong""#,
            },
            Shape::ConnCall {
                client: 3,
                function: "unsubscribe",
                args: &["room_s3"],
            },
            Shape::ConnCall {
                client: 3,
                function: "subscribe",
                args: &["room_s4"],
            },
        ];
        for case in &cases {
            assert_eq!(owed.receive(case), Matched::Wrong, "{case:?}");
        }
        assert_eq!(owed.outstanding(), 1);
    }
}

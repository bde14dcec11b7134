//! Channel names a browser may use, and who may use them.
//!
//! The tutorial left these checks out: anyone logged in could subscribe to anyone's
//! `user_<id>` channel, or to any string at all.

use std::fmt;

/// The broadcast channel every user may join.
pub const BROADCAST: &str = "broadcast";
pub(crate) const ROOM_PREFIX: &str = "room_";
const USER_PREFIX: &str = "user_";

/// A well-formed channel name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// `room_<name>`, the name in `[A-Za-z0-9_-]`.
    Room(String),
    /// `user_<id>`: the personal channel of a user.
    User(u64),
    /// `broadcast`.
    Broadcast,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Room(name) => write!(f, "{ROOM_PREFIX}{name}"),
            Channel::User(id) => write!(f, "{USER_PREFIX}{id}"),
            Channel::Broadcast => f.write_str(BROADCAST),
        }
    }
}

/// Why a channel name is refused; the `Display` text is what the browser is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Not `room_..`, `user_..` or `broadcast`, or bad characters or length.
    #[error("Invalid channel")]
    Invalid,
    /// Someone else's `user_<id>` channel.
    #[error("No access")]
    Forbidden,
}

impl Channel {
    /// Parses a channel name; `max_room_name` bounds the part after `room_`.
    pub fn parse(name: &str, max_room_name: usize) -> Result<Self, ChannelError> {
        if name == BROADCAST {
            return Ok(Channel::Broadcast);
        }
        if let Some(room) = name.strip_prefix(ROOM_PREFIX) {
            let safe = room
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if room.is_empty() || room.len() > max_room_name || !safe {
                return Err(ChannelError::Invalid);
            }
            return Ok(Channel::Room(room.to_owned()));
        }
        if let Some(id) = name.strip_prefix(USER_PREFIX) {
            return parse_user_id(id).map(Channel::User);
        }
        Err(ChannelError::Invalid)
    }

    /// Parses a channel a user may subscribe to or leave: a room, `broadcast`, or their own
    /// `user_<uid>`.
    pub fn parse_for_member(
        name: &str,
        uid: u64,
        max_room_name: usize,
    ) -> Result<Self, ChannelError> {
        match Channel::parse(name, max_room_name)? {
            Channel::User(id) if id != uid => Err(ChannelError::Forbidden),
            channel => Ok(channel),
        }
    }
}

/// Digits of a positive id in canonical form: `user_010` would be a different engine channel
/// from `user_10`, so only the form the consumer publishes to is accepted.
fn parse_user_id(digits: &str) -> Result<u64, ChannelError> {
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ChannelError::Invalid);
    }
    digits.parse().map_err(|_| ChannelError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_with_safe_names_parse_and_print_back() {
        for name in ["room_101", "room_a-b_C", "room_x"] {
            let channel = Channel::parse(name, 64).unwrap();
            assert_eq!(channel.to_string(), name);
        }
    }

    #[test]
    fn rooms_with_unsafe_or_long_names_are_invalid() {
        for name in [
            "room_",
            "room_a b",
            "room_a\"b",
            "room_ä",
            "room_a/b",
            "room",
        ] {
            assert_eq!(
                Channel::parse(name, 64),
                Err(ChannelError::Invalid),
                "{name}"
            );
        }
        assert_eq!(Channel::parse("room_abcde", 4), Err(ChannelError::Invalid));
        assert!(Channel::parse("room_abcd", 4).is_ok());
    }

    #[test]
    fn user_channels_need_canonical_positive_ids() {
        assert_eq!(Channel::parse("user_10001", 64), Ok(Channel::User(10001)));
        for name in [
            "user_",
            "user_0",
            "user_010",
            "user_+1",
            "user_1a",
            "user_99999999999999999999",
        ] {
            assert_eq!(
                Channel::parse(name, 64),
                Err(ChannelError::Invalid),
                "{name}"
            );
        }
    }

    #[test]
    fn anything_else_is_invalid() {
        for name in ["", "Broadcast", "lobby", "broadcast ", "*"] {
            assert_eq!(
                Channel::parse(name, 64),
                Err(ChannelError::Invalid),
                "{name}"
            );
        }
    }

    #[test]
    fn members_may_join_only_their_own_user_channel() {
        assert_eq!(
            Channel::parse_for_member("user_7", 7, 64),
            Ok(Channel::User(7))
        );
        assert_eq!(
            Channel::parse_for_member("user_8", 7, 64),
            Err(ChannelError::Forbidden)
        );
        assert_eq!(
            Channel::parse_for_member("broadcast", 7, 64),
            Ok(Channel::Broadcast)
        );
    }
}

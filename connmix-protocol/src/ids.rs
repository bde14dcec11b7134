//! Identifiers: browser connections ([`ClientId`]) and engine nodes ([`NodeId`]).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The engine's id of one browser (or device) connection.
///
/// A 64-bit integer that routinely exceeds 2^53, so it must never pass through a float. Engines
/// write it as a JSON string (`"1463786910324359168"`) and older clients as a JSON number; both
/// decode. It serializes as a string, the shape the engine documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

impl ClientId {
    /// The raw integer.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u64> for ClientId {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

/// Error returned when text is not a client id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a client id (expected an unsigned 64-bit decimal integer)")]
pub struct ParseClientIdError(String);

impl FromStr for ClientId {
    type Err = ParseClientIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // `u64::from_str` accepts a leading `+`; an id on the wire never has one.
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseClientIdError(s.to_owned()));
        }
        s.parse()
            .map(ClientId)
            .map_err(|_| ParseClientIdError(s.to_owned()))
    }
}

impl Serialize for ClientId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ClientId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;

        impl Visitor<'_> for IdVisitor {
            type Value = ClientId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a client id as an unsigned integer or a string of digits")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ClientId, E> {
                Ok(ClientId(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ClientId, E> {
                u64::try_from(v)
                    .map(ClientId)
                    .map_err(|_| E::custom(format!("client id {v} is negative")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ClientId, E> {
                // serde_json only hands us a float for a fraction, an exponent or a value
                // beyond u64: any of those would be a corrupted id.
                Err(E::custom(format!(
                    "client id {v} is not an exact unsigned 64-bit integer"
                )))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ClientId, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(IdVisitor)
    }
}

/// The id of one engine node, as the center lists it.
///
/// Opaque to a client: the center writes strings, the documentation's event example a number.
/// Both decode; it serializes as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub String);

impl NodeId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for NodeId {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;

        impl Visitor<'_> for NodeVisitor {
            type Value = NodeId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a node id as a string or an integer")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeId, E> {
                Ok(NodeId(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeId, E> {
                Ok(NodeId(v.to_string()))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeId, E> {
                Ok(NodeId(v.to_owned()))
            }
        }

        deserializer.deserialize_any(NodeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_above_2_pow_53_survives_number_and_string() {
        let big = 1_463_786_910_324_359_169_u64; // odd, > 2^53: a float would round it
        let from_num: ClientId = serde_json::from_str(&big.to_string()).unwrap();
        let from_str: ClientId = serde_json::from_str(&format!("\"{big}\"")).unwrap();
        assert_eq!(from_num.get(), big);
        assert_eq!(from_str.get(), big);
        assert_eq!(
            serde_json::to_string(&from_num).unwrap(),
            format!("\"{big}\"")
        );
    }

    #[test]
    fn client_id_rejects_fractions_signs_and_overflow() {
        for bad in [
            "1.5",
            "-3",
            "\"+3\"",
            "\"\"",
            "\"12a\"",
            "18446744073709551616",
            "1e3",
        ] {
            assert!(
                serde_json::from_str::<ClientId>(bad).is_err(),
                "{bad} should not decode"
            );
        }
    }

    #[test]
    fn node_id_accepts_numbers() {
        let id: NodeId = serde_json::from_str("1").unwrap();
        assert_eq!(id.as_str(), "1");
    }
}

//! [`RawJson`]: a JSON value kept as its text.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON value kept as the text it arrived as, so that passing it on costs no parse.
///
/// A queued message's `d` is what the engine script pushed: the engine and the client only
/// carry it, and the application parses it once, into its own types, with [`parse`](Self::parse).
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// JSON `null`.
    pub fn null() -> Self {
        Self(RawValue::NULL.to_owned())
    }

    /// Checks that `text` is one JSON value and keeps it.
    pub fn from_text(text: impl Into<String>) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text.into()).map(Self)
    }

    /// Writes a value as JSON text.
    pub fn from_value(value: &Value) -> Self {
        Self::serialize_from(value)
    }

    /// Writes anything serde can serialize as JSON text (`null` if it cannot be written, which
    /// for types with string keys never happens).
    pub fn serialize_from<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::value::to_raw_value(value) {
            Ok(raw) => Self(raw),
            Err(_) => Self::null(),
        }
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The text as serde_json's raw value, to embed it in a serialized struct.
    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }

    /// Parses the text into `T`, which may borrow from it.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// Parses the text into an owned `T`.
    pub fn parse_owned<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The value as a `serde_json::Value` tree.
    pub fn to_value(&self) -> Value {
        // The text was checked to be JSON when it was made.
        self.parse_owned().unwrap_or(Value::Null)
    }
}

impl From<Box<RawValue>> for RawJson {
    fn from(raw: Box<RawValue>) -> Self {
        Self(raw)
    }
}

impl From<Value> for RawJson {
    fn from(value: Value) -> Self {
        Self::from_value(&value)
    }
}

impl From<&Value> for RawJson {
    fn from(value: &Value) -> Self {
        Self::from_value(value)
    }
}

impl PartialEq for RawJson {
    /// Equal as JSON values: key order and spacing aside.
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get() || self.to_value() == other.to_value()
    }
}

impl PartialEq<Value> for RawJson {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    /// Works with any deserializer, through a `Value`; the engine frame decoder reads the raw
    /// text directly instead.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|value| Self::from_value(&value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raw_json_keeps_the_text_and_compares_as_json() {
        let raw = RawJson::from_text(r#"{"b":1, "a":"x"}"#).unwrap();
        assert_eq!(raw.get(), r#"{"b":1, "a":"x"}"#);
        assert_eq!(raw, RawJson::from(json!({"a":"x","b":1})));
        assert_eq!(raw, json!({"a":"x","b":1}));
        assert_ne!(raw, RawJson::from(json!({"a":"x"})));
        assert!(RawJson::from_text("{not json").is_err());
    }
}

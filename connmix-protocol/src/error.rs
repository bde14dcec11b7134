//! Why a frame could not be decoded.

/// A frame that is not a message of the protocol.
///
/// Decoding is tolerant of every shape an engine or client has been seen to send; this error
/// means the frame is none of them. The text says which part is wrong, so it can be logged as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is not JSON at all.
    #[error("frame is not valid JSON: {0}")]
    Json(String),
    /// The frame is JSON, but not an object (for example an array or a bare number).
    #[error("frame is a JSON {0}, expected an object")]
    NotAnObject(&'static str),
    /// A field the message needs is absent.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field is present with a value of the wrong type or range.
    #[error("field `{field}` is invalid: {reason}")]
    Invalid {
        /// The wire name of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl DecodeError {
    pub(crate) fn invalid(field: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Invalid {
            field,
            reason: reason.to_string(),
        }
    }
}

/// The JSON type name of a value, for error messages.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

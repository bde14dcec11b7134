//! Small helpers shared by the decoders: aliased field look-up and typed extraction.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{json_type, DecodeError};

/// Parses a text frame into a JSON object.
pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, DecodeError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(DecodeError::NotAnObject(json_type(&other))),
        Err(err) => Err(DecodeError::Json(err.to_string())),
    }
}

/// Removes and returns the first of `names` present with a non-null value.
///
/// Every dialect names the same thing differently (`i`/`id`, `p`/`params`, `c`/`client_id`...),
/// so each look-up lists the current name first and the older ones after it.
pub(crate) fn take(obj: &mut Map<String, Value>, names: &[&'static str]) -> Option<Value> {
    names
        .iter()
        .find_map(|name| obj.remove(*name).filter(|v| !v.is_null()))
}

/// Like [`take`], but the field is required; the error names the current (first) name.
pub(crate) fn require(
    obj: &mut Map<String, Value>,
    names: &[&'static str],
) -> Result<Value, DecodeError> {
    take(obj, names).ok_or(DecodeError::Missing(names[0]))
}

/// Converts a field's value to `T`, naming the field in the error.
pub(crate) fn convert<T: DeserializeOwned>(
    value: Value,
    field: &'static str,
) -> Result<T, DecodeError> {
    serde_json::from_value(value).map_err(|err| DecodeError::invalid(field, err))
}

/// A field holding a string.
pub(crate) fn string(value: Value, field: &'static str) -> Result<String, DecodeError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(DecodeError::invalid(
            field,
            format!("expected a string, found a {}", json_type(&other)),
        )),
    }
}

/// A field holding an object.
pub(crate) fn object(value: Value, field: &'static str) -> Result<Map<String, Value>, DecodeError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(DecodeError::invalid(
            field,
            format!("expected an object, found a {}", json_type(&other)),
        )),
    }
}

/// A request id: a non-negative integer that fits in 64 bits.
pub(crate) fn request_id(value: Value, field: &'static str) -> Result<u64, DecodeError> {
    match &value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| DecodeError::invalid(field, format!("{n} is not a request id"))),
        // Some peers quote numbers; accept digits only.
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map_err(|_| DecodeError::invalid(field, format!("{s} is out of range"))),
        other => Err(DecodeError::invalid(
            field,
            format!("expected an integer, found a {}", json_type(other)),
        )),
    }
}

/// A non-empty list of strings; a lone string counts as a list of one.
pub(crate) fn string_list(value: Value, field: &'static str) -> Result<Vec<String>, DecodeError> {
    let list = match value {
        Value::String(s) => vec![s],
        Value::Array(items) => items
            .into_iter()
            .map(|item| string(item, field))
            .collect::<Result<Vec<_>, _>>()?,
        other => {
            return Err(DecodeError::invalid(
                field,
                format!("expected a list of strings, found a {}", json_type(&other)),
            ))
        }
    };
    if list.is_empty() {
        return Err(DecodeError::invalid(field, "the list is empty"));
    }
    Ok(list)
}

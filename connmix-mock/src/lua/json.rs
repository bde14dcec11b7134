//! Lua values to JSON and back, as `mix.json_encode` / `json_decode` and the queue see them.
//!
//! A table whose keys are exactly 1..n is an array, an empty table is `[]` (as the engine
//! writes it), any other table is an object with its keys as text. JSON `null` becomes `nil`.

use mlua::{Lua, Table, Value as LuaValue};
use serde_json::{Map, Number, Value};

/// Tables nested deeper than this are refused: most likely a table that contains itself.
const MAX_DEPTH: usize = 128;

/// A Lua value as JSON.
pub(crate) fn to_json(value: &LuaValue) -> Result<Value, String> {
    to_json_at(value, 0)
}

fn to_json_at(value: &LuaValue, depth: usize) -> Result<Value, String> {
    Ok(match value {
        LuaValue::Nil => Value::Null,
        LuaValue::Boolean(b) => Value::Bool(*b),
        LuaValue::Integer(i) => Value::from(*i),
        LuaValue::Number(n) => number(*n)?,
        LuaValue::String(s) => Value::String(s.to_string_lossy()),
        LuaValue::Table(table) => {
            if depth >= MAX_DEPTH {
                return Err(format!(
                    "tables nested deeper than {MAX_DEPTH} (does a table contain itself?)"
                ));
            }
            table_to_json(table, depth + 1)?
        }
        other => return Err(format!("cannot encode a {} as JSON", other.type_name())),
    })
}

fn number(n: f64) -> Result<Value, String> {
    if !n.is_finite() {
        return Err(format!("cannot encode the number {n} as JSON"));
    }
    // Whole numbers are written without a fraction, as Lua 5.1 prints them.
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        return Ok(Value::from(n as i64));
    }
    Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| format!("cannot encode the number {n} as JSON"))
}

fn table_to_json(table: &Table, depth: usize) -> Result<Value, String> {
    let len = table.raw_len();
    let mut count = 0usize;
    let mut entries = Vec::new();
    for pair in table.pairs::<LuaValue, LuaValue>() {
        let (key, value) = pair.map_err(|e| e.to_string())?;
        count += 1;
        entries.push((key, value));
    }
    if count == len {
        // Keys 1..n and nothing else (or an empty table): an array.
        let mut items = Vec::with_capacity(len);
        for i in 1..=len {
            let value: LuaValue = table.raw_get(i).map_err(|e| e.to_string())?;
            items.push(to_json_at(&value, depth)?);
        }
        return Ok(Value::Array(items));
    }
    let mut map = Map::new();
    for (key, value) in entries {
        let key = match &key {
            LuaValue::String(s) => s.to_string_lossy(),
            LuaValue::Integer(i) => i.to_string(),
            LuaValue::Number(n) => n.to_string(),
            LuaValue::Boolean(b) => b.to_string(),
            other => {
                return Err(format!(
                    "cannot encode a table with a {} key as JSON",
                    other.type_name()
                ))
            }
        };
        map.insert(key, to_json_at(&value, depth)?);
    }
    Ok(Value::Object(map))
}

/// A JSON value as Lua.
pub(crate) fn to_lua(lua: &Lua, value: &Value) -> mlua::Result<LuaValue> {
    Ok(match value {
        Value::Null => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) if i.unsigned_abs() < 1 << 53 => LuaValue::Integer(i),
            _ => LuaValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => LuaValue::String(lua.create_string(s)?),
        Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
        Value::Object(map) => {
            let table = lua.create_table_with_capacity(0, map.len())?;
            for (key, item) in map {
                table.raw_set(key.as_str(), to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_tables_and_arrays_round_trip() {
        let lua = Lua::new();
        let value = json!({"a": [1, 2, {"b": [true, "x", []]}], "c": {"d": 1.5}, "e": []});
        let back = to_json(&to_lua(&lua, &value).unwrap()).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_table_that_contains_itself_is_an_error_not_a_crash() {
        let lua = Lua::new();
        let table: LuaValue = lua.load("local t = {} t.me = t return t").eval().unwrap();
        assert!(to_json(&table).unwrap_err().contains("nested deeper"));
    }
}

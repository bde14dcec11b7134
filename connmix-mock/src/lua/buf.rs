//! `buf`: the copy of a connection's unread input that `protocol_input` gets.

use mlua::{UserData, UserDataMethods};

/// The bytes received and not yet consumed, and a read position for `buf:read`.
#[derive(Debug)]
pub(crate) struct LuaBuf {
    pub(crate) data: Vec<u8>,
    position: usize,
}

impl LuaBuf {
    pub(crate) fn new(data: Vec<u8>) -> Self {
        Self { data, position: 0 }
    }
}

impl UserData for LuaBuf {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("tostring", |lua, this, ()| lua.create_string(&this.data));
        methods.add_method("length", |_, this, ()| Ok(this.data.len()));
        methods.add_method("position", |_, this, ()| Ok(this.position));
        // `s, err = buf:read(n)`: the next n bytes, or nil and why when fewer are left.
        methods.add_method_mut("read", |lua, this, n: usize| {
            let left = this.data.len() - this.position;
            if n > left {
                let err = format!("cannot read {n} bytes, {left} left");
                return Ok((None, Some(err)));
            }
            let start = this.position;
            this.position += n;
            Ok((Some(lua.create_string(&this.data[start..start + n])?), None))
        });
    }
}

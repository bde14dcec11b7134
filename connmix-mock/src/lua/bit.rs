//! The `bit` library of LuaJIT (which the engine's scripts may use), natively for Lua 5.1:
//! 32-bit operations whose results are signed, as LuaJIT's are.

use mlua::{Lua, Table, Variadic};

/// A number as LuaJIT's `bit.tobit` reads it: its low 32 bits, signed.
fn tobit(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    (n.trunc().rem_euclid(4_294_967_296.0) as u32) as i32
}

fn fold(args: Variadic<f64>, start: i32, op: fn(i32, i32) -> i32) -> i32 {
    args.iter().fold(start, |acc, n| op(acc, tobit(*n)))
}

/// Registers the global table `bit`.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let bit: Table = lua.create_table()?;
    bit.set("tobit", lua.create_function(|_, n: f64| Ok(tobit(n)))?)?;
    bit.set("bnot", lua.create_function(|_, n: f64| Ok(!tobit(n)))?)?;
    bit.set(
        "band",
        lua.create_function(|_, args: Variadic<f64>| Ok(fold(args, -1, |a, b| a & b)))?,
    )?;
    bit.set(
        "bor",
        lua.create_function(|_, args: Variadic<f64>| Ok(fold(args, 0, |a, b| a | b)))?,
    )?;
    bit.set(
        "bxor",
        lua.create_function(|_, args: Variadic<f64>| Ok(fold(args, 0, |a, b| a ^ b)))?,
    )?;
    let shift = |f: fn(u32, u32) -> u32| {
        move |_: &Lua, (n, by): (f64, f64)| Ok(f(tobit(n) as u32, (tobit(by) & 31) as u32) as i32)
    };
    bit.set("lshift", lua.create_function(shift(|n, by| n << by))?)?;
    bit.set("rshift", lua.create_function(shift(|n, by| n >> by))?)?;
    bit.set(
        "arshift",
        lua.create_function(shift(|n, by| ((n as i32) >> by) as u32))?,
    )?;
    bit.set(
        "rol",
        lua.create_function(shift(|n, by| n.rotate_left(by)))?,
    )?;
    bit.set(
        "ror",
        lua.create_function(shift(|n, by| n.rotate_right(by)))?,
    )?;
    bit.set(
        "bswap",
        lua.create_function(|_, n: f64| Ok((tobit(n) as u32).swap_bytes() as i32))?,
    )?;
    bit.set(
        "tohex",
        lua.create_function(|_, (n, digits): (f64, Option<f64>)| {
            let digits = digits.map(tobit).unwrap_or(8);
            let width = digits.unsigned_abs().min(8) as usize;
            let value = tobit(n) as u32;
            let masked = if width == 8 {
                value
            } else {
                value & ((1u32 << (4 * width)) - 1)
            };
            Ok(if digits < 0 {
                format!("{masked:0width$X}")
            } else {
                format!("{masked:0width$x}")
            })
        })?,
    )?;
    lua.globals().set("bit", bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_match_luajit() {
        let lua = Lua::new();
        install(&lua).unwrap();
        let check = |code: &str, want: i64| {
            let got: i64 = lua.load(code).eval().unwrap();
            assert_eq!(got, want, "{code}");
        };
        check("return bit.band(0xff, 0x0f, 0x3)", 3);
        check("return bit.bor(1, 2, 4)", 7);
        check("return bit.bxor(0xf0, 0xff)", 0x0f);
        check("return bit.bnot(0)", -1);
        check("return bit.lshift(1, 31)", i64::from(i32::MIN));
        check("return bit.rshift(-1, 28)", 15);
        check("return bit.arshift(-256, 4)", -16);
        check("return bit.tobit(0xffffffff + 1)", 0);
        let hex: String = lua.load("return bit.tohex(255, 4)").eval().unwrap();
        assert_eq!(hex, "00ff");
        let hex: String = lua.load("return bit.tohex(-1)").eval().unwrap();
        assert_eq!(hex, "ffffffff");
    }
}

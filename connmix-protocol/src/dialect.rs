//! Which generation of the wire format to write.

use serde::{Deserialize, Serialize};

/// A generation of the node API's JSON format.
///
/// Decoders accept every dialect without being told; this only chooses what encoders write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Dialect {
    /// Engine 1.0.3 and later (documented since August 2022): one-letter keys
    /// (`m`, `p`, `i`; `E`, `r`; `e`), object params, client ids as strings.
    #[default]
    Current,
    /// Engine 1.0.1 (April–May 2022), the one the original tutorial ran on: long keys
    /// (`method`, `params`, `id`; `error`, `result`; `event`), `queue.consume`, client ids as
    /// numbers.
    Legacy,
}

impl std::str::FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "current" => Ok(Dialect::Current),
            "legacy" => Ok(Dialect::Legacy),
            other => Err(format!(
                "unknown dialect `{other}` (expected `current` or `legacy`)"
            )),
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dialect::Current => "current",
            Dialect::Legacy => "legacy",
        })
    }
}

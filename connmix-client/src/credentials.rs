//! Basic credentials, kept out of logs: the protocol crate's type.

pub use connmix_protocol::Credentials;

//! Database entities.

pub mod connection;
pub mod user;

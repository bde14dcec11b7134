//! Database entities.

pub mod connection;
pub mod setting;
pub mod user;

//! Database entities.

pub mod connection;
pub mod membership;
pub mod message;
pub mod setting;
pub mod user;

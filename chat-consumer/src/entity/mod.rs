//! Database entities.

pub mod user;

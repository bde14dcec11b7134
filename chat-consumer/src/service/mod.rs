//! The service layer: stateless functions over a `&DatabaseConnection`.

pub mod auth;
pub mod password;
pub mod presence;
pub mod rooms;
pub mod session;
pub mod users;

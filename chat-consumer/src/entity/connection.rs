//! The `connections` table: who is logged in on which browser connection, right now.

use sea_orm::entity::prelude::*;

/// One logged-in connection.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    /// The engine node holding the connection, as the center lists it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub node: String,
    /// The connection's id on its node (the engine's ids fit in 63 bits).
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: i64,
    /// The user logged in on it.
    pub uid: i32,
    /// When the login happened.
    pub since: DateTimeUtc,
}

/// No relations: a row outlives nothing and is removed with its connection.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! The `memberships` table: which logged-in connection is in which room, right now.

use sea_orm::entity::prelude::*;

/// One connection in one room.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memberships")]
pub struct Model {
    /// The engine node holding the connection.
    #[sea_orm(primary_key, auto_increment = false)]
    pub node: String,
    /// The connection's id on its node.
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: i64,
    /// The room channel, `room_<name>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub channel: String,
    /// The user logged in on the connection.
    pub uid: i32,
    /// When it joined.
    pub since: DateTimeUtc,
}

/// No relations: a row goes with its connection.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

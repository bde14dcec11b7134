//! The `messages` table: each channel's latest messages, for `history`.

use sea_orm::entity::prelude::*;

/// One message as it was published.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    /// Increasing in the order the messages were stored.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The channel it was published on.
    pub channel: String,
    /// The sender's user id.
    pub uid: i64,
    /// The sender's name, when it was known.
    pub sender: Option<String>,
    /// The text as typed.
    #[sea_orm(column_type = "Text")]
    pub text: String,
    /// When the consumer handled it, in milliseconds since the Unix epoch.
    pub sent_at_ms: i64,
}

/// No relations: a message outlives its sender's row.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

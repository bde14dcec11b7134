//! The `settings` table: named values shared by every consumer process.

use sea_orm::entity::prelude::*;

/// One setting.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settings")]
pub struct Model {
    /// What it is, e.g. `session_key`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Its value, as text.
    pub value: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

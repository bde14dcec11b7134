//! Schema migrations, applied by `chat-consumer migrate` and at the start of `run`.

use sea_orm_migration::prelude::{async_trait, DeriveIden, MigrationTrait, MigratorTrait};

mod m20260101_000001_create_users;
mod m20260101_000002_users_online_timestamps;
mod m20261202_000003_connections;
mod m20261204_000004_settings;
mod m20261204_000005_messages;
mod m20261204_000006_memberships;

/// All migrations, in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_create_users::Migration),
            Box::new(m20260101_000002_users_online_timestamps::Migration),
            Box::new(m20261202_000003_connections::Migration),
            Box::new(m20261204_000004_settings::Migration),
            Box::new(m20261204_000005_messages::Migration),
            Box::new(m20261204_000006_memberships::Migration),
        ]
    }
}

#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    Name,
    Email,
    Password,
    Online,
    CreatedAt,
    UpdatedAt,
}

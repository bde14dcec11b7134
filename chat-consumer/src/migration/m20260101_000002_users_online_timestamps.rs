//! Adds `online`, `created_at` and `updated_at` where they are missing (tutorial tables).
//!
//! One column per statement: SQLite cannot add several in one `ALTER TABLE`.

use sea_orm_migration::prelude::{
    async_trait, ColumnDef, DbErr, DeriveMigrationName, MigrationTrait, SchemaManager, Table,
};

use super::Users;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            (
                "online",
                ColumnDef::new(Users::Online)
                    .integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
            ),
            (
                "created_at",
                ColumnDef::new(Users::CreatedAt)
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
            ),
            (
                "updated_at",
                ColumnDef::new(Users::UpdatedAt)
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
            ),
        ];
        for (name, mut column) in columns {
            if manager.has_column("users", name).await? {
                continue;
            }
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Users::Online, Users::CreatedAt, Users::UpdatedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

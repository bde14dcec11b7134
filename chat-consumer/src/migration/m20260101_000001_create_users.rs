//! The tutorial's `users` table. `if not exists`, so a database already loaded from the
//! tutorial's `users.sql` keeps its rows.

use sea_orm_migration::prelude::{
    async_trait, ColumnDef, DbErr, DeriveMigrationName, Index, MigrationTrait, SchemaManager, Table,
};

use super::Users;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Users::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Users::Name).string_len(255).not_null())
                    .col(ColumnDef::new(Users::Email).string_len(255).not_null())
                    .col(ColumnDef::new(Users::Password).string_len(255).not_null())
                    .to_owned(),
            )
            .await?;
        if !manager.has_index("users", "idx_n").await? {
            manager
                .create_index(
                    Index::create()
                        .name("idx_n")
                        .table(Users::Table)
                        .col(Users::Name)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

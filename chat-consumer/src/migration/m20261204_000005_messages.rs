//! Adds `messages`: the latest messages of each channel, for `history`.

use sea_orm_migration::prelude::{
    async_trait, ColumnDef, DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait,
    SchemaManager, Table,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    Channel,
    Uid,
    Sender,
    Text,
    SentAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Messages::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Messages::Channel).string_len(96).not_null())
                    .col(ColumnDef::new(Messages::Uid).big_integer().not_null())
                    .col(ColumnDef::new(Messages::Sender).string_len(255).null())
                    .col(ColumnDef::new(Messages::Text).text().not_null())
                    .col(ColumnDef::new(Messages::SentAtMs).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_messages_channel_id")
                    .table(Messages::Table)
                    .col(Messages::Channel)
                    .col(Messages::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Messages::Table).to_owned())
            .await
    }
}

//! Adds `memberships`: which logged-in connection is in which room, shared by every consumer,
//! for `presence` and for telling a user's first join and last leave of a room.

use sea_orm_migration::prelude::{
    async_trait, ColumnDef, DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait,
    SchemaManager, Table,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Node,
    ClientId,
    Channel,
    Uid,
    Since,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Memberships::Node).string_len(64).not_null())
                    .col(
                        ColumnDef::new(Memberships::ClientId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Memberships::Channel)
                            .string_len(96)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Memberships::Uid).integer().not_null())
                    .col(
                        ColumnDef::new(Memberships::Since)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Memberships::Node)
                            .col(Memberships::ClientId)
                            .col(Memberships::Channel),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_memberships_channel_uid")
                    .table(Memberships::Table)
                    .col(Memberships::Channel)
                    .col(Memberships::Uid)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Memberships::Table).to_owned())
            .await
    }
}

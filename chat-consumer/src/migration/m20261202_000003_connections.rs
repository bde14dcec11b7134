//! Adds `connections`: one row per logged-in browser connection, so that presence is a set of
//! records every consumer shares rather than a counter that drifts when a close event is lost.

use sea_orm_migration::prelude::{
    async_trait, ColumnDef, DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait,
    SchemaManager, Table,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Connections {
    Table,
    Node,
    ClientId,
    Uid,
    Since,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Connections::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Connections::Node).string_len(64).not_null())
                    .col(
                        ColumnDef::new(Connections::ClientId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Connections::Uid).integer().not_null())
                    .col(
                        ColumnDef::new(Connections::Since)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Connections::Node)
                            .col(Connections::ClientId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_connections_uid")
                    .table(Connections::Table)
                    .col(Connections::Uid)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Connections::Table).to_owned())
            .await
    }
}

//! Who is in which room: one `memberships` row per logged-in connection and room.
//!
//! Like the `connections` rows of [`presence`](super::presence), records rather than counters,
//! shared by every consumer through the database: a user is in a room while any of their
//! connections is, on any node, whichever consumer handled the `subscribe`. Each change says
//! whether it was the user's first connection in the room (a join) or their last (a leave).
//! Rows a lost close event left behind go with their connection's presence record
//! ([`reconcile`](crate::reconcile)).

use std::collections::BTreeSet;

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr,
};

use crate::engine::Conn;
use crate::entity::{membership, user};
use crate::error::Result;
use crate::service::presence::{db_uid, key};

/// A user who left a room with their last connection: the room and the user.
pub type Left = (String, u64);

/// Records that `uid` on `conn` is in `channel`; true when none of the user's connections was
/// there before (the user joined). One statement when the connection was in already, two
/// otherwise.
pub async fn join(db: &DatabaseConnection, conn: &Conn, uid: u64, channel: &str) -> Result<bool> {
    let (Some((node, client_id)), Some(db_uid)) = (key(conn), db_uid(uid)) else {
        return Ok(false);
    };
    let row = membership::ActiveModel {
        node: Set(node),
        client_id: Set(client_id),
        channel: Set(channel.to_owned()),
        uid: Set(db_uid),
        since: Set(chrono::Utc::now()),
    };
    // A plain insert, its key violation meaning "in already": the one form of "insert unless
    // there" whose outcome every database reports alike.
    match membership::Entity::insert(row)
        .exec_without_returning(db)
        .await
    {
        Ok(_) => {}
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Ok(false)
        }
        Err(err) => return Err(err.into()),
    }
    // This connection's row is the user's only one in the room: a join.
    Ok(count(db, channel, db_uid).await? == 1)
}

/// Removes `conn`, on which `uid` is logged in, from `channel`; true when it was the user's
/// last connection there (the user left).
pub async fn leave(db: &DatabaseConnection, conn: &Conn, uid: u64, channel: &str) -> Result<bool> {
    let (Some((node, client_id)), Some(db_uid)) = (key(conn), db_uid(uid)) else {
        return Ok(false);
    };
    let deleted = membership::Entity::delete_many()
        .filter(membership::Column::Node.eq(node))
        .filter(membership::Column::ClientId.eq(client_id))
        .filter(membership::Column::Channel.eq(channel))
        .exec(db)
        .await?
        .rows_affected;
    // Another consumer removing the same row reports the leave instead.
    Ok(deleted > 0 && count(db, channel, db_uid).await? == 0)
}

/// Removes `conn` from every room (it closed, or someone else logged in on it); the rooms its
/// user left with it.
pub async fn leave_all(db: &DatabaseConnection, conn: &Conn) -> Result<Vec<Left>> {
    let Some((node, client_id)) = key(conn) else {
        return Ok(Vec::new());
    };
    let rows = membership::Entity::find()
        .filter(membership::Column::Node.eq(node))
        .filter(membership::Column::ClientId.eq(client_id))
        .all(db)
        .await?;
    remove(db, rows).await
}

/// Removes every row of `node` (gone from the engine); the rooms users left with it.
pub async fn forget_node(db: &DatabaseConnection, node: &str) -> Result<Vec<Left>> {
    let rows = membership::Entity::find()
        .filter(membership::Column::Node.eq(node))
        .all(db)
        .await?;
    remove(db, rows).await
}

/// Deletes `rows`, then reports each (room, user) left without any row.
async fn remove(db: &DatabaseConnection, rows: Vec<membership::Model>) -> Result<Vec<Left>> {
    let mut touched = BTreeSet::new();
    for row in rows {
        let deleted = membership::Entity::delete_many()
            .filter(membership::Column::Node.eq(row.node))
            .filter(membership::Column::ClientId.eq(row.client_id))
            .filter(membership::Column::Channel.eq(row.channel.clone()))
            .exec(db)
            .await?
            .rows_affected;
        // Another consumer removing the same row reports the leave instead.
        if deleted > 0 {
            touched.insert((row.channel, row.uid));
        }
    }
    let mut left = Vec::new();
    for (channel, uid) in touched {
        if count(db, &channel, uid).await? == 0 {
            if let Ok(uid) = u64::try_from(uid) {
                left.push((channel, uid));
            }
        }
    }
    Ok(left)
}

/// How many of `uid`'s connections are in `channel`.
async fn count(db: &DatabaseConnection, channel: &str, uid: i32) -> Result<u64> {
    Ok(membership::Entity::find()
        .filter(membership::Column::Channel.eq(channel))
        .filter(membership::Column::Uid.eq(uid))
        .count(db)
        .await?)
}

/// The users in `channel`, each once, by name; at most `limit`.
pub async fn members(
    db: &DatabaseConnection,
    channel: &str,
    limit: u64,
) -> Result<Vec<(u64, String)>> {
    let uids: Vec<i32> = membership::Entity::find()
        .select_only()
        .column(membership::Column::Uid)
        .filter(membership::Column::Channel.eq(channel))
        .distinct()
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<(i32, String)> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .column(user::Column::Name)
        .filter(user::Column::Id.is_in(uids))
        .order_by_asc(user::Column::Name)
        .into_tuple()
        .all(db)
        .await?;
    Ok(users
        .into_iter()
        .filter_map(|(id, name)| Some((u64::try_from(id).ok()?, name)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use crate::service::{password::Hasher, users};

    async fn setup() -> (DatabaseConnection, u64, u64) {
        let db = db::connect("sqlite::memory:").await.unwrap();
        db::migrate(&db).await.unwrap();
        let hasher = Hasher::new(1);
        let mut ids = Vec::new();
        for name in ["user2", "user1"] {
            let hash = hasher.hash("123456").await.unwrap();
            let row = users::create(&db, name, "u@example.com", hash)
                .await
                .unwrap();
            ids.push(u64::try_from(row.id).unwrap());
        }
        (db, ids[1], ids[0])
    }

    #[tokio::test]
    async fn first_connection_joins_and_last_one_leaves() {
        let (db, one, _) = setup().await;
        let (a, b) = (Conn::new("n1", 1u64), Conn::new("n2", 5u64));
        assert!(join(&db, &a, one, "room_1").await.unwrap(), "first: a join");
        assert!(
            !join(&db, &b, one, "room_1").await.unwrap(),
            "second device"
        );
        assert!(!join(&db, &a, one, "room_1").await.unwrap(), "again");
        assert!(
            !leave(&db, &a, one, "room_1").await.unwrap(),
            "b is still in"
        );
        assert!(!leave(&db, &a, one, "room_1").await.unwrap(), "twice");
        assert!(leave(&db, &b, one, "room_1").await.unwrap(), "the last one");
        assert!(members(&db, "room_1", 100).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn members_are_listed_once_by_name() {
        let (db, one, two) = setup().await;
        join(&db, &Conn::new("n1", 1u64), two, "room_1")
            .await
            .unwrap();
        join(&db, &Conn::new("n1", 2u64), one, "room_1")
            .await
            .unwrap();
        join(&db, &Conn::new("n2", 3u64), one, "room_1")
            .await
            .unwrap();
        join(&db, &Conn::new("n2", 3u64), one, "room_2")
            .await
            .unwrap();
        assert_eq!(
            members(&db, "room_1", 100).await.unwrap(),
            vec![(one, "user1".to_owned()), (two, "user2".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_closed_connection_or_a_lost_node_leaves_only_where_it_was_last() {
        let (db, one, two) = setup().await;
        let (a, b, c) = (
            Conn::new("n1", 1u64),
            Conn::new("n2", 2u64),
            Conn::new("n1", 3u64),
        );
        join(&db, &a, one, "room_1").await.unwrap();
        join(&db, &a, one, "room_2").await.unwrap();
        join(&db, &b, one, "room_2").await.unwrap();
        join(&db, &c, two, "room_1").await.unwrap();
        assert_eq!(
            leave_all(&db, &a).await.unwrap(),
            vec![("room_1".to_owned(), one)],
            "still in room_2 on b"
        );
        assert_eq!(
            forget_node(&db, "n2").await.unwrap(),
            vec![("room_2".to_owned(), one)]
        );
        assert_eq!(
            members(&db, "room_1", 100).await.unwrap(),
            vec![(two, "user2".to_owned())]
        );
    }
}

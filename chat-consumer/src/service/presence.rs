//! Who is online: one `connections` row per logged-in browser connection.
//!
//! Records, not a counter: a login writes its connection's row, a close removes it, and a
//! close event that was lost (its consumer died holding it, or the engine node went away)
//! leaves a row that [`reconcile`](crate::reconcile) finds and removes. Every consumer
//! process shares the rows through the database. `users.online` is kept equal to the number of
//! the user's rows by each change, in one statement, for tools that read the tutorial's column.

use sea_orm::sea_query::{Expr, OnConflict, Query, SubQueryStatement};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::engine::Conn;
use crate::entity::{connection, user};
use crate::error::Result;

/// The row key of a connection; `None` for an id beyond what the column holds (no engine
/// issues one), which then has no row.
pub(crate) fn key(conn: &Conn) -> Option<(String, i64)> {
    let client = i64::try_from(conn.client.get()).ok()?;
    Some((conn.node.to_string(), client))
}

pub(crate) fn db_uid(uid: u64) -> Option<i32> {
    i32::try_from(uid).ok().filter(|uid| *uid > 0)
}

/// Records that `uid` is logged in on `conn` (replacing whoever was before).
pub async fn connect(db: &DatabaseConnection, conn: &Conn, uid: u64) -> Result<()> {
    let (Some((node, client_id)), Some(uid)) = (key(conn), db_uid(uid)) else {
        return Ok(());
    };
    let before = connection::Entity::find_by_id((node.clone(), client_id))
        .one(db)
        .await?;
    let row = connection::ActiveModel {
        node: Set(node),
        client_id: Set(client_id),
        uid: Set(uid),
        since: Set(chrono::Utc::now()),
    };
    connection::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([connection::Column::Node, connection::Column::ClientId])
                .update_columns([connection::Column::Uid, connection::Column::Since])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    if let Some(before) = before.filter(|row| row.uid != uid) {
        refresh(db, before.uid).await?;
    }
    refresh(db, uid).await
}

/// Removes `conn`'s record; the user who was logged in on it, if anyone.
pub async fn disconnect(db: &DatabaseConnection, conn: &Conn) -> Result<Option<u64>> {
    let Some((node, client_id)) = key(conn) else {
        return Ok(None);
    };
    let Some(row) = connection::Entity::find_by_id((node.clone(), client_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    connection::Entity::delete_many()
        .filter(connection::Column::Node.eq(node))
        .filter(connection::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    refresh(db, row.uid).await?;
    Ok(u64::try_from(row.uid).ok())
}

/// How many connections `uid` is logged in on.
pub async fn online(db: &DatabaseConnection, uid: u64) -> Result<u64> {
    let Some(uid) = db_uid(uid) else {
        return Ok(0);
    };
    Ok(connection::Entity::find()
        .filter(connection::Column::Uid.eq(uid))
        .count(db)
        .await?)
}

/// Up to `limit` records, oldest login first, from `after` on (the last record of the previous
/// page; `None` for the first page).
pub async fn page(
    db: &DatabaseConnection,
    after: Option<&(String, i64)>,
    limit: u64,
) -> Result<Vec<(Conn, u64)>> {
    let mut query = connection::Entity::find()
        .order_by_asc(connection::Column::Node)
        .order_by_asc(connection::Column::ClientId)
        .limit(limit);
    if let Some((node, client)) = after {
        query = query.filter(
            Condition::any()
                .add(connection::Column::Node.gt(node.clone()))
                .add(
                    Condition::all()
                        .add(connection::Column::Node.eq(node.clone()))
                        .add(connection::Column::ClientId.gt(*client)),
                ),
        );
    }
    let rows = query.all(db).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let client = u64::try_from(row.client_id).ok()?;
            let uid = u64::try_from(row.uid).ok()?;
            Some((Conn::new(row.node, client), uid))
        })
        .collect())
}

/// The nodes that hold at least one record.
pub async fn nodes(db: &DatabaseConnection) -> Result<Vec<String>> {
    let rows: Vec<String> = connection::Entity::find()
        .select_only()
        .column(connection::Column::Node)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows)
}

/// Removes every record of `node` (a node the engine no longer lists: its connections are
/// gone); how many there were.
pub async fn forget_node(db: &DatabaseConnection, node: &str) -> Result<u64> {
    let uids: Vec<i32> = connection::Entity::find()
        .select_only()
        .column(connection::Column::Uid)
        .filter(connection::Column::Node.eq(node))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let removed = connection::Entity::delete_many()
        .filter(connection::Column::Node.eq(node))
        .exec(db)
        .await?
        .rows_affected;
    for uid in uids {
        refresh(db, uid).await?;
    }
    Ok(removed)
}

/// Sets `users.online` of `uid` to its number of records, in one statement so that concurrent
/// changes on several consumers cannot leave a stale count behind.
async fn refresh(db: &DatabaseConnection, uid: i32) -> Result<()> {
    let count = Query::select()
        .expr(Expr::col(connection::Column::Uid).count())
        .from(connection::Entity)
        .and_where(Expr::col(connection::Column::Uid).eq(uid))
        .to_owned();
    let count = Expr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(count)));
    user::Entity::update_many()
        .col_expr(user::Column::Online, count)
        .filter(user::Column::Id.eq(uid))
        .exec(db)
        .await?;
    Ok(())
}

/// Every user's number of connections, for `users list` (users without any are absent).
pub async fn counts(db: &DatabaseConnection) -> Result<Vec<(u64, u64)>> {
    let rows: Vec<(i32, i64)> = connection::Entity::find()
        .select_only()
        .column(connection::Column::Uid)
        .column_as(Expr::col(connection::Column::Uid).count(), "n")
        .group_by(connection::Column::Uid)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(uid, n)| Some((u64::try_from(uid).ok()?, u64::try_from(n).ok()?)))
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
        for name in ["user1", "user2"] {
            let hash = hasher.hash("123456").await.unwrap();
            let row = users::create(&db, name, "u@example.com", hash)
                .await
                .unwrap();
            ids.push(u64::try_from(row.id).unwrap());
        }
        (db, ids[0], ids[1])
    }

    async fn column(db: &DatabaseConnection, uid: u64) -> i32 {
        user::Entity::find_by_id(i32::try_from(uid).unwrap())
            .one(db)
            .await
            .unwrap()
            .unwrap()
            .online
    }

    #[tokio::test]
    async fn a_login_counts_once_per_connection_and_a_close_removes_it() {
        let (db, one, _) = setup().await;
        let (a, b) = (Conn::new("n1", 1u64), Conn::new("n2", 1u64));
        connect(&db, &a, one).await.unwrap();
        connect(&db, &a, one).await.unwrap();
        connect(&db, &b, one).await.unwrap();
        assert_eq!(online(&db, one).await.unwrap(), 2);
        assert_eq!(
            column(&db, one).await,
            2,
            "users.online follows the records"
        );
        assert_eq!(disconnect(&db, &a).await.unwrap(), Some(one));
        assert_eq!(
            disconnect(&db, &a).await.unwrap(),
            None,
            "twice is harmless"
        );
        assert_eq!(
            (online(&db, one).await.unwrap(), column(&db, one).await),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn logging_in_as_someone_else_on_a_connection_moves_it() {
        let (db, one, two) = setup().await;
        let a = Conn::new("n1", 7u64);
        connect(&db, &a, one).await.unwrap();
        connect(&db, &a, two).await.unwrap();
        assert_eq!(online(&db, one).await.unwrap(), 0);
        assert_eq!(column(&db, one).await, 0);
        assert_eq!(online(&db, two).await.unwrap(), 1);
        assert_eq!(counts(&db).await.unwrap(), vec![(two, 1)]);
    }

    #[tokio::test]
    async fn forgetting_a_node_removes_only_its_connections() {
        let (db, one, two) = setup().await;
        connect(&db, &Conn::new("n1", 1u64), one).await.unwrap();
        connect(&db, &Conn::new("n1", 2u64), two).await.unwrap();
        connect(&db, &Conn::new("n2", 3u64), one).await.unwrap();
        assert_eq!(forget_node(&db, "n1").await.unwrap(), 2);
        assert_eq!(nodes(&db).await.unwrap(), vec!["n2".to_owned()]);
        assert_eq!((column(&db, one).await, column(&db, two).await), (1, 0));
    }

    #[tokio::test]
    async fn pages_cover_every_record_once() {
        let (db, one, _) = setup().await;
        for client in 1..=7u64 {
            connect(&db, &Conn::new(format!("n{}", client % 2), client), one)
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = page(&db, after.as_ref(), 3).await.unwrap();
            let Some((last, _)) = page.last() else { break };
            after = Some((
                last.node.to_string(),
                i64::try_from(last.client.get()).unwrap(),
            ));
            seen.extend(page.into_iter().map(|(conn, _)| conn.client.get()));
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=7).collect::<Vec<_>>());
    }
}

//! The service layer on every supported database: SQLite always; MariaDB and PostgreSQL when
//! `CONNMIX_TEST_MYSQL_URL` / `CONNMIX_TEST_POSTGRES_URL` name a server. Tests sharing a real
//! database use user names unique to the run, so parallel runs do not collide.

mod common;

use std::time::Duration;

use chat_consumer::engine::Conn;
use chat_consumer::history::{History, Stored};
use chat_consumer::service::auth::login;
use chat_consumer::service::password::Hasher;
use chat_consumer::service::session::Sessions;
use chat_consumer::service::{presence, rooms, users};
use chat_consumer::{db, ErrorKind};
use common::{server_url, unique};
use sea_orm::{ConnectionTrait, DatabaseConnection};

fn hasher() -> Hasher {
    Hasher::with_cost(64, 1, 2).unwrap()
}

async fn open(url: &str) -> DatabaseConnection {
    let db = db::connect(url).await.unwrap();
    db::migrate(&db).await.unwrap();
    db
}

/// Everything the consumer and the CLI do with users, on one database.
async fn exercise(db: &DatabaseConnection) {
    let hasher = hasher();
    let name = unique("alice");

    // Adding, and refusing a second user of the same name.
    let hash = hasher.hash("123456").await.unwrap();
    let alice = users::create(db, &name, "a@example.com", hash)
        .await
        .unwrap();
    let err = users::create(db, &name, "b@example.com", "x".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DuplicateName);
    let listed = users::list(db).await.unwrap();
    assert!(listed.iter().any(|u| u.name == name && u.online == 0));

    // Logging in.
    let id = u64::try_from(alice.id).unwrap();
    let ok = login(db, &hasher, &name, "123456").await.unwrap().unwrap();
    assert_eq!(ok.id, id);
    assert!(login(db, &hasher, &name, "wrong").await.unwrap().is_none());
    assert!(login(db, &hasher, &unique("nobody"), "123456")
        .await
        .unwrap()
        .is_none());
    // Names are exact on every database: MariaDB's collation alone would let these in.
    for near in [name.to_uppercase(), format!("{name} ")] {
        assert!(
            login(db, &hasher, &near, "123456").await.unwrap().is_none(),
            "{near:?} logged in as {name:?}"
        );
        let err = users::set_password(db, &near, "x".into())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownUser, "{near:?}");
    }

    // A tutorial row with a plain-text password is upgraded on its first login.
    let legacy = unique("legacy");
    users::create(db, &legacy, "l@example.com", "secret".into())
        .await
        .unwrap();
    assert!(login(db, &hasher, &legacy, "secret")
        .await
        .unwrap()
        .is_some());
    let stored = users::find_by_name(db, &legacy).await.unwrap().unwrap();
    assert!(stored.password.starts_with("$argon2id$"));
    assert!(login(db, &hasher, &legacy, "secret")
        .await
        .unwrap()
        .is_some());

    // Presence: one record per connection; a close removes it; users.online follows.
    let node = unique("node");
    let conn = |client: u64| Conn::new(node.clone(), client);
    presence::connect(db, &conn(1), id).await.unwrap();
    presence::connect(db, &conn(1), id).await.unwrap();
    presence::connect(db, &conn(2), id).await.unwrap();
    assert_eq!(presence::disconnect(db, &conn(1)).await.unwrap(), Some(id));
    assert_eq!(presence::disconnect(db, &conn(1)).await.unwrap(), None);
    let online = users::find_by_id(db, id).await.unwrap().unwrap().online;
    assert_eq!((presence::online(db, id).await.unwrap(), online), (1, 1));

    // Many connections logging in at once all count, whichever consumer records them.
    let tasks: Vec<_> = (10..30)
        .map(|client| {
            let (db, conn) = (db.clone(), conn(client));
            tokio::spawn(async move { presence::connect(&db, &conn, id).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let online = users::find_by_id(db, id).await.unwrap().unwrap().online;
    assert_eq!(online, 21);
    assert_eq!(presence::forget_node(db, &node).await.unwrap(), 21);
    let online = users::find_by_id(db, id).await.unwrap().unwrap().online;
    assert_eq!(online, 0);

    // Rooms: a user is in while any connection is; each change says whether it was the
    // first join or the last leave; members are listed once.
    let room = unique("room");
    assert!(rooms::join(db, &conn(1), id, &room).await.unwrap());
    assert!(!rooms::join(db, &conn(2), id, &room).await.unwrap());
    assert!(!rooms::join(db, &conn(2), id, &room).await.unwrap());
    assert_eq!(
        rooms::members(db, &room, 10).await.unwrap(),
        vec![(id, name.clone())]
    );
    assert!(!rooms::leave(db, &conn(1), id, &room).await.unwrap());
    assert_eq!(
        rooms::leave_all(db, &conn(2)).await.unwrap(),
        vec![(room.clone(), id)]
    );
    rooms::join(db, &conn(3), id, &room).await.unwrap();
    assert_eq!(
        rooms::forget_node(db, &node).await.unwrap(),
        vec![(room.clone(), id)]
    );
    assert!(rooms::members(db, &room, 10).await.unwrap().is_empty());

    // History: the latest messages of a channel, oldest first, text exactly as typed.
    let (history, _) = History::start(db.clone(), 5, 64);
    let texts: Vec<String> = (0..8)
        .map(|n| format!("n{n} \"quoted\" é 😀 ' ; --"))
        .collect();
    for (n, text) in texts.iter().enumerate() {
        history.record(Stored {
            channel: room.clone(),
            uid: id,
            from: Some(name.clone()),
            text: text.clone(),
            time: 1_764_100_000_000 + n as u64,
        });
    }
    history.flush().await;
    let latest = history.latest(db, &room, 100).await.unwrap();
    let read: Vec<String> = latest.iter().filter_map(|m| m.text.clone()).collect();
    assert_eq!(read, texts[3..]);
    assert_eq!(latest[0].from.as_deref(), Some(name.as_str()));
    assert_eq!(latest[0].time, Some(1_764_100_000_003));

    // Sessions: one key per database, shared by every consumer; a new password revokes.
    let sessions = Sessions::load(db, Duration::from_secs(60)).await.unwrap();
    let other_consumer = Sessions::load(db, Duration::from_secs(60)).await.unwrap();
    let token = sessions.issue(&ok);
    let again = other_consumer.login(db, &token).await.unwrap().unwrap();
    assert_eq!((again.id, again.name.as_str()), (id, name.as_str()));

    // Changing a password.
    let new_hash = hasher.hash("654321").await.unwrap();
    users::set_password(db, &name, new_hash).await.unwrap();
    assert_eq!(sessions.login(db, &token).await.unwrap(), None);
    assert!(login(db, &hasher, &name, "654321").await.unwrap().is_some());
    assert!(login(db, &hasher, &name, "123456").await.unwrap().is_none());
    let err = users::set_password(db, &unique("ghost"), "x".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownUser);
}

#[tokio::test]
async fn sqlite_supports_every_user_operation() {
    exercise(&open("sqlite::memory:").await).await;
}

#[tokio::test]
async fn mariadb_supports_every_user_operation() {
    let Some(url) = server_url("CONNMIX_TEST_MYSQL_URL") else {
        return;
    };
    exercise(&open(&url).await).await;
}

#[tokio::test]
async fn postgres_supports_every_user_operation() {
    let Some(url) = server_url("CONNMIX_TEST_POSTGRES_URL") else {
        return;
    };
    exercise(&open(&url).await).await;
}

/// `url` with its user (and password) replaced by `user:password`, and its database by
/// `database`; the query is dropped.
fn other_login(url: &str, user: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let rest = rest.split('?').next().unwrap();
    let authority = rest.split('/').next().unwrap();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{user}@{host}/{database}")
}

/// A user the server does not know and a database it does not have are told apart, with the
/// server's address and without the password.
async fn wrong_logins_name_their_cause(url: &str) {
    let timeout = std::time::Duration::from_secs(5);
    let nobody = other_login(url, &format!("{}:s3cret", unique("nobody")), "test");
    let err = db::connect_with_timeout(&nobody, timeout)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("refused the user or password ("), "{text}");
    assert!(text.contains("); check them in the URL"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");

    let user = url.split_once("://").unwrap().1;
    let user = user.rsplit_once('@').map_or("", |(u, _)| u);
    let missing = unique("no_such_db");
    let no_db = other_login(url, user, &missing);
    let err = db::connect_with_timeout(&no_db, timeout).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("there is no database `{missing}` on ")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "create it (CREATE DATABASE {missing}) or fix the URL"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn mariadb_wrong_logins_name_their_cause() {
    let Some(url) = server_url("CONNMIX_TEST_MYSQL_URL") else {
        return;
    };
    wrong_logins_name_their_cause(&url).await;
}

#[tokio::test]
async fn postgres_wrong_logins_name_their_cause() {
    let Some(url) = server_url("CONNMIX_TEST_POSTGRES_URL") else {
        return;
    };
    wrong_logins_name_their_cause(&url).await;
}

#[tokio::test]
async fn a_table_loaded_from_the_tutorials_sql_is_migrated_and_its_users_log_in() {
    let db = db::connect("sqlite::memory:").await.unwrap();
    // The tutorial's users.sql, in SQLite's dialect, with one of its plain-text rows.
    db.execute_unprepared(
        "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(255) NOT NULL, \
         email VARCHAR(255) NOT NULL, password VARCHAR(255) NOT NULL); \
         CREATE UNIQUE INDEX idx_n ON users (name); \
         INSERT INTO users (name, email, password) VALUES ('user1', 'u1@example.com', '123456');",
    )
    .await
    .unwrap();
    db::migrate(&db).await.unwrap();
    let user = login(&db, &hasher(), "user1", "123456")
        .await
        .unwrap()
        .unwrap();
    presence::connect(&db, &Conn::new("n1", 1u64), user.id)
        .await
        .unwrap();
    let row = users::find_by_id(&db, user.id).await.unwrap().unwrap();
    assert_eq!(row.online, 1);
    assert!(row.password.starts_with("$argon2id$"));
}

#[tokio::test]
async fn consumers_starting_together_on_a_new_postgres_schema_all_migrate() {
    let Some(url) = server_url("CONNMIX_TEST_POSTGRES_URL") else {
        return;
    };
    // A schema of its own makes the database "new" without touching other tests' tables.
    let schema = unique("fresh");
    let admin = db::connect(&url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let scoped = scoped.clone();
            tokio::spawn(async move {
                let db = db::connect(&scoped).await?;
                db::migrate(&db).await
            })
        })
        .collect();
    let results: Vec<_> = futures_util::future::join_all(tasks).await;
    admin
        .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    for result in results {
        result.unwrap().unwrap();
    }
}

/// `SHOW CREATE TABLE` of each of the chat's tables in the database `name` of `server`.
async fn show_tables(server: &DatabaseConnection, name: &str) -> Vec<String> {
    let mut tables = Vec::new();
    for table in ["users", "connections"] {
        let row = server
            .query_one_raw(sea_orm::Statement::from_string(
                server.get_database_backend(),
                format!("SHOW CREATE TABLE `{name}`.`{table}`"),
            ))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the {table} table exists"));
        tables.push(row.try_get_by_index::<String>(1).unwrap());
    }
    tables
}

#[tokio::test]
async fn the_example_users_sql_is_the_schema_migrate_creates() {
    let Some(url) = server_url("CONNMIX_TEST_MYSQL_URL") else {
        return;
    };
    let server = db::connect(&url).await.unwrap();
    let (by_hand, migrated) = (unique("schema_sql"), unique("schema_migrate"));
    for name in [&by_hand, &migrated] {
        server
            .execute_unprepared(&format!("CREATE DATABASE `{name}`"))
            .await
            .unwrap();
    }
    let base = url.rsplit_once('/').unwrap().0;
    let sql = include_str!("../../examples/engine/users.sql");
    let hand = db::connect(&format!("{base}/{by_hand}")).await.unwrap();
    // One statement at a time, each from its `CREATE TABLE` to its `;`.
    for start in sql.match_indices("CREATE TABLE").map(|(at, _)| at) {
        let statement = &sql[start..][..=sql[start..].find(';').unwrap()];
        hand.execute_unprepared(statement).await.unwrap();
    }
    open(&format!("{base}/{migrated}")).await;
    let (expected, created) = (
        show_tables(&server, &migrated).await,
        show_tables(&server, &by_hand).await,
    );
    for name in [&by_hand, &migrated] {
        server
            .execute_unprepared(&format!("DROP DATABASE `{name}`"))
            .await
            .unwrap();
    }
    assert_eq!(created, expected);
}

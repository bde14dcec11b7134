//! Session tokens: what a login returns so that a page can log in again after a reload
//! without the password.
//!
//! A token is `<uid>.<expires>.<signature>`: the user id, the expiry in seconds since the Unix
//! epoch, and an HMAC-SHA256 (base64url) over both and the user's stored password hash. The
//! hash is not in the token; it makes a new password (`users passwd`) or a deleted user revoke
//! every token at once, with nothing stored per session. The key is made once per database
//! and kept in `settings`, so every consumer of the chat accepts every other one's tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use rand::RngCore;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use sha2::Sha256;

use crate::entity::setting;
use crate::error::{Error, ErrorKind, Result};
use crate::service::auth::LoggedIn;
use crate::service::users;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The `settings` row holding the signing key.
const KEY_SETTING: &str = "session_key";
/// Bytes of a signing key.
const KEY_BYTES: usize = 32;
/// Longest token worth checking: a u64, a u64, 43 characters of signature and two dots.
const MAX_TOKEN: usize = 20 + 20 + 43 + 2;

/// Issues and checks session tokens.
#[derive(Clone)]
pub struct Sessions {
    key: [u8; KEY_BYTES],
    ttl: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("key", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Sessions {
    /// Sessions lasting `ttl`, signed with the database's key (made now if it has none yet:
    /// the first of several consumers starting at once wins, the others read its key).
    pub async fn load(db: &DatabaseConnection, ttl: Duration) -> Result<Self> {
        let mut fresh = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut fresh);
        let row = setting::ActiveModel {
            name: Set(KEY_SETTING.to_owned()),
            value: Set(STANDARD.encode(fresh)),
        };
        setting::Entity::insert(row)
            .on_conflict(
                // Setting the name to itself keeps the stored key: a "do nothing" that
                // MariaDB's dialect can say too.
                OnConflict::column(setting::Column::Name)
                    .update_column(setting::Column::Name)
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        let stored = setting::Entity::find_by_id(KEY_SETTING.to_owned())
            .one(db)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Database, "session key vanished"))?;
        let key = STANDARD
            .decode(stored.value.trim())
            .ok()
            .and_then(|key| <[u8; KEY_BYTES]>::try_from(key).ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Database,
                    format!(
                        "the {KEY_SETTING} setting is not {KEY_BYTES} bytes of base64; \
                         delete the row to make a new key (this logs every session out)"
                    ),
                )
            })?;
        Ok(Self::with_key(key, ttl))
    }

    /// Sessions signed with `key`.
    pub fn with_key(key: [u8; KEY_BYTES], ttl: Duration) -> Self {
        Self { key, ttl }
    }

    /// How long a token stays valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `user`, valid for the session lifetime from now.
    pub fn issue(&self, user: &LoggedIn) -> String {
        let expires = now_secs().saturating_add(self.ttl.as_secs());
        self.token(user.id, expires, &user.stamp)
    }

    fn token(&self, uid: u64, expires: u64, stamp: &str) -> String {
        let signature =
            URL_SAFE_NO_PAD.encode(self.mac(uid, expires, stamp).finalize().into_bytes());
        format!("{uid}.{expires}.{signature}")
    }

    fn mac(&self, uid: u64, expires: u64, stamp: &str) -> HmacSha256 {
        // Any key length is accepted by HMAC.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("connmix-chat-session\0{uid}\0{expires}\0").as_bytes());
        mac.update(stamp.as_bytes());
        mac
    }

    /// The user `token` logs in, if it is well formed, unexpired, correctly signed and its user
    /// still has the password it was issued under; `None` otherwise (the reasons are not told
    /// apart).
    pub async fn login(&self, db: &DatabaseConnection, token: &str) -> Result<Option<LoggedIn>> {
        let Some((uid, expires, signature)) = parse(token) else {
            return Ok(None);
        };
        if expires <= now_secs() {
            return Ok(None);
        }
        let Some(user) = users::find_by_id(db, uid).await? else {
            return Ok(None);
        };
        let mac = self.mac(uid, expires, &user.password);
        if mac.verify_slice(&signature).is_err() {
            return Ok(None);
        }
        Ok(Some(LoggedIn {
            id: uid,
            name: user.name,
            stamp: user.password,
        }))
    }
}

/// The uid, expiry and signature bytes of a well-formed token.
fn parse(token: &str) -> Option<(u64, u64, Vec<u8>)> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let mut parts = token.split('.');
    let (uid, expires, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(uid) || !digits(expires) {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    Some((uid.parse().ok()?, expires.parse().ok()?, signature))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use crate::service::password::Hasher;

    async fn setup() -> (DatabaseConnection, Hasher, LoggedIn) {
        let db = db::connect("sqlite::memory:").await.unwrap();
        db::migrate(&db).await.unwrap();
        let hasher = Hasher::new(1);
        users::ensure(&db, &hasher, "user1", "u@example.com", "123456")
            .await
            .unwrap();
        let user = crate::service::auth::login(&db, &hasher, "user1", "123456")
            .await
            .unwrap()
            .unwrap();
        (db, hasher, user)
    }

    #[tokio::test]
    async fn a_token_logs_its_user_in_until_the_password_changes() {
        let (db, hasher, user) = setup().await;
        let sessions = Sessions::load(&db, Duration::from_secs(3600))
            .await
            .unwrap();
        let token = sessions.issue(&user);
        let again = sessions.login(&db, &token).await.unwrap().unwrap();
        assert_eq!((again.id, again.name.as_str()), (user.id, "user1"));

        users::set_password(&db, "user1", hasher.hash("654321").await.unwrap())
            .await
            .unwrap();
        assert_eq!(sessions.login(&db, &token).await.unwrap(), None);
    }

    #[tokio::test]
    async fn every_consumer_of_a_database_shares_the_key() {
        let (db, _, user) = setup().await;
        let one = Sessions::load(&db, Duration::from_secs(60)).await.unwrap();
        let two = Sessions::load(&db, Duration::from_secs(60)).await.unwrap();
        let token = one.issue(&user);
        assert!(two.login(&db, &token).await.unwrap().is_some());
        let other = Sessions::with_key([7; KEY_BYTES], Duration::from_secs(60));
        assert_eq!(other.login(&db, &token).await.unwrap(), None);
    }

    #[tokio::test]
    async fn expired_forged_and_malformed_tokens_are_refused() {
        let (db, _, user) = setup().await;
        let sessions = Sessions::load(&db, Duration::from_secs(60)).await.unwrap();
        let expired = sessions.token(user.id, now_secs() - 1, &user.stamp);
        let good = sessions.issue(&user);
        let (_, rest) = good.split_once('.').unwrap();
        let someone_else = format!("{}.{rest}", user.id + 1);
        let longer = {
            let (uid, rest) = good.split_once('.').unwrap();
            let (_, sig) = rest.split_once('.').unwrap();
            format!("{uid}.{}.{sig}", now_secs() + 999_999)
        };
        for token in [
            expired.as_str(),
            someone_else.as_str(),
            longer.as_str(),
            "",
            "1.2",
            "1.2.3.4",
            "x.1.AAAA",
            "-1.99999999999.AAAA",
            &"9".repeat(500),
        ] {
            assert_eq!(sessions.login(&db, token).await.unwrap(), None, "{token}");
        }
    }
}

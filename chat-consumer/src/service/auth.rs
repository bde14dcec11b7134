//! Logging in: find the user, check the password, upgrade a plain-text one.

use sea_orm::DatabaseConnection;

use crate::error::Result;
use crate::service::password::{Check, Hasher};
use crate::service::users;

/// A user whose password (or session token) checked valid.
#[derive(Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The user's id, the chat `uid`.
    pub id: u64,
    /// The user's name.
    pub name: String,
    /// The stored password hash the login was checked against, which signs its session
    /// tokens; never shown by `Debug`.
    pub stamp: String,
}

impl std::fmt::Debug for LoggedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedIn")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Checks `name` and `password`; `None` for an unknown user or a wrong password (the two take
/// the same time, so a caller cannot tell which).
///
/// A matching plain-text password is replaced by its argon2id hash; if that write fails the
/// login still succeeds and the upgrade is tried again next time.
pub async fn login(
    db: &DatabaseConnection,
    hasher: &Hasher,
    name: &str,
    password: &str,
) -> Result<Option<LoggedIn>> {
    let Some(user) = users::find_by_name(db, name).await? else {
        hasher.check_absent(password).await?;
        return Ok(None);
    };
    let id = u64::try_from(user.id).unwrap_or_default();
    match hasher.check(password, &user.password).await? {
        Check::Invalid => Ok(None),
        Check::Valid { upgraded } => {
            let mut stamp = user.password;
            if let Some(hash) = upgraded {
                match users::upgrade_plain_password(db, id, &stamp, hash.clone()).await {
                    Ok(true) => {
                        tracing::info!(uid = id, "replaced plain-text password by its hash");
                        stamp = hash;
                    }
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(uid = id, error = %err, "cannot upgrade plain-text password")
                    }
                }
            }
            Ok(Some(LoggedIn {
                id,
                name: user.name,
                stamp,
            }))
        }
    }
}

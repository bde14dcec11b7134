//! Queries and changes of the `users` table.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, SqlErr,
};

use crate::entity::user;
use crate::error::{Error, ErrorKind, Result};
use crate::service::password::Hasher;

/// A user as `users list` shows it: everything but the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// Id (the chat `uid`).
    pub id: u64,
    /// Login name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Authenticated connections right now.
    pub online: u32,
}

impl From<user::Model> for UserSummary {
    fn from(row: user::Model) -> Self {
        Self {
            id: u64::try_from(row.id).unwrap_or_default(),
            name: row.name,
            email: row.email,
            online: u32::try_from(row.online).unwrap_or_default(),
        }
    }
}

/// Ids in the database are `int`; a uid beyond that range names no row.
fn db_id(id: u64) -> Option<i32> {
    i32::try_from(id).ok().filter(|id| *id > 0)
}

/// Inserts a user with an already hashed password.
///
/// Fails with [`ErrorKind::DuplicateName`] when the name is taken, decided by the unique index
/// so two concurrent inserts cannot both succeed.
pub async fn create(
    db: &DatabaseConnection,
    name: &str,
    email: &str,
    password_hash: String,
) -> Result<user::Model> {
    if name.trim().is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "user name is empty"));
    }
    check_email(email)?;
    let now = chrono::Utc::now();
    let row = user::ActiveModel {
        name: Set(name.to_owned()),
        email: Set(email.to_owned()),
        password: Set(password_hash),
        online: Set(0),
        created_at: Set(Some(now)),
        updated_at: Set(Some(now)),
        ..Default::default()
    };
    row.insert(db).await.map_err(|err| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => Error::new(
            ErrorKind::DuplicateName,
            format!("a user named `{name}` already exists"),
        ),
        _ => Error::from(err),
    })
}

/// The longest e-mail address accepted: what a mail server takes (RFC 5321's path limit),
/// within the column's 255.
pub const MAX_EMAIL_LEN: usize = 254;

/// Checks that `email` looks like an address: one `@`, a local part, a domain with a dot and
/// no empty label, no spaces or control characters, at most [`MAX_EMAIL_LEN`] bytes. Not a
/// full RFC 5322 parser: it catches typos, not every invalid address.
///
/// Fails with [`ErrorKind::InvalidInput`], saying what is wrong.
pub fn check_email(email: &str) -> Result<()> {
    let invalid = |why: &str| {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid e-mail address `{email}`: {why} (expected name@example.com)"),
        ))
    };
    if email.len() > MAX_EMAIL_LEN {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid e-mail address: longer than {MAX_EMAIL_LEN} bytes"),
        ));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("it contains a space or a control character");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return invalid("no @");
    };
    if domain.contains('@') {
        return invalid("more than one @");
    }
    if local.is_empty() {
        return invalid("nothing before the @");
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return invalid("the domain after the @ needs a dot between non-empty parts");
    }
    Ok(())
}

/// Creates a user unless one with that name exists; true when it was created.
///
/// An existing user is left exactly as it is, password included.
pub async fn ensure(
    db: &DatabaseConnection,
    hasher: &Hasher,
    name: &str,
    email: &str,
    password: &str,
) -> Result<bool> {
    if find_by_name(db, name).await?.is_some() {
        return Ok(false);
    }
    let hash = hasher.hash(password).await?;
    match create(db, name, email, hash).await {
        Ok(_) => Ok(true),
        // Another process created it meanwhile: that is what we wanted.
        Err(err) if err.kind() == ErrorKind::DuplicateName => Ok(false),
        Err(err) => Err(err),
    }
}

/// The user with exactly this name.
///
/// Compared here, byte for byte, as well as in SQL: MariaDB's default collation matches
/// `U10` and `u10 ` (case, trailing spaces) to `u10`, which SQLite and PostgreSQL do not.
pub async fn find_by_name(db: &DatabaseConnection, name: &str) -> Result<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Name.eq(name))
        .all(db)
        .await?
        .into_iter()
        .find(|user| user.name == name))
}

/// The user with this id.
pub async fn find_by_id(db: &DatabaseConnection, id: u64) -> Result<Option<user::Model>> {
    let Some(id) = db_id(id) else {
        return Ok(None);
    };
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// Every user, by id, without passwords.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<UserSummary>> {
    let rows = user::Entity::find()
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(UserSummary::from).collect())
}

/// Replaces a user's password hash; [`ErrorKind::UnknownUser`] when no such user.
pub async fn set_password(
    db: &DatabaseConnection,
    name: &str,
    password_hash: String,
) -> Result<()> {
    // By id, after an exact look-up: on MariaDB a filter on the name would also match `U10`.
    let unknown = || Error::new(ErrorKind::UnknownUser, format!("no user named `{name}`"));
    let user = find_by_name(db, name).await?.ok_or_else(unknown)?;
    let result = user::Entity::update_many()
        .col_expr(user::Column::Password, Expr::value(password_hash))
        .col_expr(
            user::Column::UpdatedAt,
            Expr::value(Some(chrono::Utc::now())),
        )
        .filter(user::Column::Id.eq(user.id))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(unknown());
    }
    Ok(())
}

/// Replaces a plain-text password by its hash, unless the row changed meanwhile (another
/// process upgraded it, or an operator set a new password); true when this call replaced it.
pub async fn upgrade_plain_password(
    db: &DatabaseConnection,
    id: u64,
    plain: &str,
    password_hash: String,
) -> Result<bool> {
    let Some(id) = db_id(id) else {
        return Ok(false);
    };
    let result = user::Entity::update_many()
        .col_expr(user::Column::Password, Expr::value(password_hash))
        .col_expr(
            user::Column::UpdatedAt,
            Expr::value(Some(chrono::Utc::now())),
        )
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::Password.eq(plain))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_addresses_pass() {
        for good in [
            "u@example.com",
            "first.last+tag@mail.example.co.uk",
            "x@a.b",
        ] {
            assert!(check_email(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn malformed_addresses_say_what_is_wrong() {
        let long = format!("{}@example.com", "a".repeat(250));
        for (bad, why) in [
            ("", "no @"),
            ("user.example.com", "no @"),
            ("a@b@example.com", "more than one @"),
            ("@example.com", "nothing before the @"),
            ("u@localhost", "needs a dot"),
            ("u@example.", "needs a dot"),
            ("u@.example.com", "needs a dot"),
            ("u ser@example.com", "a space"),
            ("u@example.com\n", "control character"),
            (long.as_str(), "longer than 254 bytes"),
        ] {
            let err = check_email(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
    }
}

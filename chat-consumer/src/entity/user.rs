//! The `users` table: the tutorial's `users.sql` plus `online` and timestamps.

// The derive macros expand to bare names (`EntityTrait`, `DerivePrimaryKey`, ...) that only the
// prelude glob brings into scope.
use sea_orm::entity::prelude::*;

/// One user row.
///
/// `Debug` is written by hand so the password hash never reaches a log.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Auto-increment id; also the chat `uid`.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Login name, unique.
    #[sea_orm(unique)]
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// An argon2id PHC string, or plain text in rows loaded from the tutorial's SQL.
    pub password: String,
    /// Authenticated connections of this user right now.
    pub online: i32,
    /// When the row was created (empty for tutorial rows).
    pub created_at: Option<DateTimeUtc>,
    /// When the row last changed (empty for tutorial rows).
    pub updated_at: Option<DateTimeUtc>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("online", &self.online)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// The table has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_password_column() {
        let row = Model {
            id: 1,
            name: "user1".into(),
            email: "u@example.com".into(),
            password: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            online: 0,
            created_at: None,
            updated_at: None,
        };
        let text = format!("{row:?}");
        assert!(text.contains("user1"), "{text}");
        assert!(!text.contains("argon2"), "{text}");
    }
}

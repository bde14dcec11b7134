//! User names by id, remembered so a chat message does not cost a database query.
//!
//! Names never change once created (there is no rename), so a cached name is never stale.

use std::collections::HashMap;
use std::sync::Mutex;

use sea_orm::DatabaseConnection;

use crate::error::Result;
use crate::service::users;

/// Past this many entries the cache starts over rather than growing without bound.
const CAPACITY: usize = 50_000;

/// A cache of user names.
#[derive(Debug, Default)]
pub struct NameCache {
    names: Mutex<HashMap<u64, String>>,
}

impl NameCache {
    /// Remembers `id`'s name.
    pub fn remember(&self, id: u64, name: &str) {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.len() >= CAPACITY {
            names.clear();
        }
        names.insert(id, name.to_owned());
    }

    /// `id`'s name from memory, else from the database; `None` for no such user.
    pub async fn get(&self, db: &DatabaseConnection, id: u64) -> Result<Option<String>> {
        if let Some(name) = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return Ok(Some(name.clone()));
        }
        let Some(user) = users::find_by_id(db, id).await? else {
            return Ok(None);
        };
        self.remember(id, &user.name);
        Ok(Some(user.name))
    }
}

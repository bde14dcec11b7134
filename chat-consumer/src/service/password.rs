//! Password hashing with argon2id, off the async threads and with bounded parallelism.
//!
//! Hashing is deliberately slow (tens of milliseconds, megabytes of memory). Running it on a
//! tokio worker would stall every chat message behind a login; running unbounded would let a
//! login storm take all cores and memory. So each hash runs under `spawn_blocking` holding a
//! semaphore permit.

use std::sync::Arc;

use argon2::{Argon2, Params, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::{Error, ErrorKind, Result};

/// The prefix of every argon2 PHC string; anything else in the `password` column is a
/// plain-text password from the tutorial's SQL.
const PHC_PREFIX: &str = "$argon2";

/// Whether a password matched a stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// It matched. `upgraded` holds a fresh argon2id hash when the stored value was plain text
    /// and must be replaced.
    Valid {
        /// The hash to store instead of the plain text.
        upgraded: Option<String>,
    },
    /// It did not match.
    Invalid,
}

/// Hashes and checks passwords.
#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of nothing in particular, checked when a user does not exist so that an unknown
    /// name costs as much time as a wrong password.
    dummy: Arc<OnceCell<String>>,
}

impl Hasher {
    /// argon2id with the library's recommended cost; at most `parallelism` hashes at once.
    pub fn new(parallelism: usize) -> Self {
        Self::from_params(Params::DEFAULT, parallelism)
    }

    /// argon2id with a chosen cost: `memory_kib` KiB, `iterations` passes, one lane.
    ///
    /// Lower costs are for tests; hashes record their own cost, so any hasher checks them.
    pub fn with_cost(memory_kib: u32, iterations: u32, parallelism: usize) -> Result<Self> {
        let params = Params::new(memory_kib, iterations, 1, None).map_err(|err| {
            Error::new(ErrorKind::InvalidInput, "invalid argon2 cost").with_source(err)
        })?;
        Ok(Self::from_params(params, parallelism))
    }

    fn from_params(params: Params, parallelism: usize) -> Self {
        Self {
            params,
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
            dummy: Arc::new(OnceCell::new()),
        }
    }

    /// A new argon2id PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.blocking(move || hash_with(&params, &password)).await
    }

    /// Checks `password` against a stored value (PHC string or legacy plain text).
    pub async fn check(&self, password: &str, stored: &str) -> Result<Check> {
        let params = self.params.clone();
        let password = password.to_owned();
        let stored = stored.to_owned();
        self.blocking(move || check_with(&params, &password, &stored))
            .await
    }

    /// Spends the time of a real check, for a user that does not exist; always invalid.
    pub async fn check_absent(&self, password: &str) -> Result<Check> {
        let dummy = self
            .dummy
            .get_or_try_init(|| self.hash("not a real password"))
            .await?
            .clone();
        self.check(password, &dummy).await?;
        Ok(Check::Invalid)
    }

    /// Takes every hashing slot until the guard drops, so tests can hold logins mid-way.
    #[cfg(test)]
    pub(crate) async fn hold_all(&self) -> tokio::sync::OwnedSemaphorePermit {
        let all = u32::try_from(self.permits.available_permits()).unwrap();
        Arc::clone(&self.permits)
            .acquire_many_owned(all)
            .await
            .unwrap()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(|err| {
            Error::new(ErrorKind::Password, "password hashing is shut down").with_source(err)
        })?;
        tokio::task::spawn_blocking(work).await.map_err(|err| {
            Error::new(ErrorKind::Password, "password hashing thread failed").with_source(err)
        })?
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String> {
    Argon2::from(params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| Error::new(ErrorKind::Password, "cannot hash password").with_source(err))
}

fn check_with(params: &Params, password: &str, stored: &str) -> Result<Check> {
    if stored.starts_with(PHC_PREFIX) {
        // Verification reads the cost from the stored string; `params` is not used for it.
        return match Argon2::default().verify_password(password.as_bytes(), stored) {
            Ok(()) => Ok(Check::Valid { upgraded: None }),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(Check::Invalid),
            Err(err) => Err(Error::new(
                ErrorKind::Password,
                "stored password hash is not a valid argon2 hash",
            )
            .with_source(err)),
        };
    }
    if constant_time_eq(password.as_bytes(), stored.as_bytes()) {
        Ok(Check::Valid {
            upgraded: Some(hash_with(params, password)?),
        })
    } else {
        Ok(Check::Invalid)
    }
}

/// Compares without stopping at the first differing byte, so the time taken does not tell an
/// attacker how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Hasher {
        Hasher::with_cost(64, 1, 2).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_check_valid() {
        let hasher = fast();
        let hash = hasher.hash("123456").await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_eq!(
            hasher.check("123456", &hash).await.unwrap(),
            Check::Valid { upgraded: None }
        );
        assert_eq!(
            hasher.check("1234567", &hash).await.unwrap(),
            Check::Invalid
        );
    }

    #[tokio::test]
    async fn plain_text_passwords_match_once_and_come_back_hashed() {
        let hasher = fast();
        let Check::Valid {
            upgraded: Some(hash),
        } = hasher.check("123456", "123456").await.unwrap()
        else {
            panic!("plain text should match and be upgraded");
        };
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(
            hasher.check("123456", &hash).await.unwrap(),
            Check::Valid { upgraded: None }
        );
        assert_eq!(
            hasher.check("12345", "123456").await.unwrap(),
            Check::Invalid
        );
        assert_eq!(hasher.check("", "123456").await.unwrap(), Check::Invalid);
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_an_error_not_a_match() {
        let err = fast().check("x", "$argon2id$garbage").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Password);
    }

    #[tokio::test]
    async fn unknown_users_never_check_valid() {
        assert_eq!(
            fast().check_absent("anything").await.unwrap(),
            Check::Invalid
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"\0"));
        assert!(constant_time_eq(b"", b""));
    }
}

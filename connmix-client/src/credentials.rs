//! Basic credentials, kept out of logs.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// A user name and password for the engine's `access.users`.
///
/// Sent as HTTP basic credentials on the WebSocket upgrade, on center requests and on HTTP
/// pushes. `Debug` shows the user only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// Credentials for a user.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The value of an `Authorization` header carrying these credentials.
    pub(crate) fn authorization(&self) -> String {
        let token = BASE64.encode(format!("{}:{}", self.user, self.password));
        format!("Basic {token}")
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let text = format!("{:?}", Credentials::new("alice", "s3cret-pw"));
        assert!(text.contains("alice"));
        assert!(!text.contains("s3cret-pw"));
    }

    #[test]
    fn authorization_is_basic_base64_of_user_colon_password() {
        let header = Credentials::new("Aladdin", "open sesame").authorization();
        assert_eq!(header, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }
}

//! HTTP basic credentials of the engine's `access.users`, kept out of logs.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// A user name and password the center and the API servers may require.
///
/// Sent as an `Authorization: Basic ...` header on center requests, on the WebSocket upgrade and
/// on HTTP pushes. `Debug` shows the user only.
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

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The value of an `Authorization` header carrying these credentials.
    pub fn authorization(&self) -> String {
        let token = BASE64.encode(format!("{}:{}", self.user, self.password));
        format!("Basic {token}")
    }

    /// Reads an `Authorization` header value; `None` unless it is well-formed basic credentials.
    /// The password may contain colons; the user may not.
    pub fn from_authorization(value: &str) -> Option<Self> {
        let (scheme, token) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(BASE64.decode(token.trim()).ok()?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        Some(Self::new(user, password))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

    #[test]
    fn header_round_trips_with_colons_in_the_password() {
        let creds = Credentials::new("admin", "pw:with:colons");
        assert_eq!(
            Credentials::from_authorization(&creds.authorization()),
            Some(creds)
        );
    }

    #[test]
    fn malformed_headers_are_not_credentials() {
        for bad in ["", "Basic", "Bearer abc", "Basic !!!", "Basic bm9jb2xvbg=="] {
            assert_eq!(Credentials::from_authorization(bad), None, "{bad}");
        }
    }
}

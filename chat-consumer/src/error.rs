//! The crate's error type: one struct with a [`ErrorKind`] tests and callers can match on.

use std::fmt;

/// What went wrong, coarsely; see [`Error::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The database refused or could not be reached.
    Database,
    /// A user with that name already exists.
    DuplicateName,
    /// No user with that name or id.
    UnknownUser,
    /// Hashing or verifying a password failed (bad parameters, a corrupt stored hash, a
    /// panicked hashing thread).
    Password,
    /// The engine could not be reached or stopped answering.
    Engine,
    /// A value given by an operator is not acceptable (empty name, bad limit).
    InvalidInput,
    /// Redis could not be reached or refused a command.
    Redis,
}

/// An error of the chat consumer's library.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// Folded into `Display` rather than exposed as `source()`: drivers' errors already print
    /// their own causes, and a report walking the chain would repeat them.
    cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` with a human message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    /// The same error, caused by `source`.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(cause) => write!(f, "{}: {cause}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Self {
        crate::telemetry::database_failed();
        Error::new(ErrorKind::Database, "database error").with_source(err)
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! What can go wrong with the state store, and the exit code each failure ends a command
//! with. Its own module because the schema's migrations and the store both report these
//! errors, and neither should import the other for it.

use crate::exit;

/// A failure to create, open, migrate, read or write `state.db`.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state dir {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    /// The database file could not be created or is not writable (exit 73).
    #[error("cannot create state store {path}: {source}")]
    CreateDb {
        path: String,
        source: std::io::Error,
    },
    /// The database opened read-only (file or dir not writable) where a run needs to write.
    #[error("cannot write state store {0}: it is read-only for this user")]
    ReadOnly(String),
    /// No `state.db` in the dir a reading command was given (exit 73: there is nothing to
    /// read; 2 stays for bad flags).
    #[error("no state store at {0}; run `cmafleet run` first")]
    Missing(String),
    /// A state.db written by a newer cmafleet (exit 78).
    #[error(
        "{path} has schema version {found}, newer than this cmafleet understands ({supported}); upgrade cmafleet"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("state store {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state store: corrupt record: {0}")]
    Corrupt(String),
    /// An update named a task intent the store does not have (a caller bug).
    #[error("state store has no task intent {0}")]
    UnknownIntent(i64),
    /// A write that would break the journal's rules, e.g. a second open intent for the same
    /// site and kind, or an intent given up although its task id is known (a caller bug).
    #[error("refusing to {0}")]
    Refused(String),
}

impl StateError {
    /// Wraps a SQLite error with the db's path; a column that does not parse as what it
    /// should hold is a corrupt record.
    pub(crate) fn sqlite(path: &str, source: rusqlite::Error) -> StateError {
        match source {
            rusqlite::Error::FromSqlConversionFailure(_, _, detail) => {
                StateError::Corrupt(format!("{path}: {detail}"))
            }
            rusqlite::Error::InvalidColumnType(_, column, found) => {
                StateError::Corrupt(format!("{path}: column `{column}` holds {found}"))
            }
            source => StateError::Sqlite {
                path: path.to_owned(),
                source,
            },
        }
    }

    /// The process exit code for this error: 78 (a configuration problem) for a store from
    /// a newer cmafleet, which only upgrading cmafleet fixes; 73 (cannot create) for every
    /// failure to create, write or read the store — a missing one included.
    pub fn exit_code(&self) -> u8 {
        match self {
            StateError::TooNew { .. } => exit::CONFIG,
            StateError::Missing(_)
            | StateError::CreateDir { .. }
            | StateError::CreateDb { .. }
            | StateError::ReadOnly(_)
            | StateError::Sqlite { .. }
            | StateError::Corrupt(_)
            | StateError::UnknownIntent(_)
            | StateError::Refused(_) => exit::CANT_CREATE,
        }
    }
}

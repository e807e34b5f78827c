//! The run lock: one run per state dir. `<state-dir>/lock` is held with the standard
//! library's file lock for the life of the run and names its holder (pid, start time).
//!
//! SKELETON: signatures fixed; bodies to be written (issue 5).

use std::path::Path;

/// Held for the whole run; released on drop (and by the OS if the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds the lock (exit 75).
    #[error(
        "another cmafleet run holds {path} (pid {pid}, started {started_at}); wait for it to finish"
    )]
    Held {
        path: String,
        pid: String,
        started_at: String,
    },
    #[error("cannot create lock file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl RunLock {
    /// Takes the lock at once or fails; never waits.
    pub fn acquire(state_dir: &Path) -> Result<RunLock, LockError> {
        let _ = state_dir;
        todo!()
    }
}

//! The run lock: one run per state dir. `<state-dir>/lock` is held with the standard
//! library's file lock for the life of the run and names its holder (pid, start time).
//!
//! The lock is an advisory lock on the open file (`flock` on Unix), not the file's
//! existence: the OS releases it when the holder's process ends in any way, `kill -9`
//! included, so a crash never leaves a stale lock. The file's contents only describe the
//! last holder; they are read when the lock is found held, to say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chrono::{SecondsFormat, Utc};

use super::error::StateError;
use super::store::create_private_dir;

/// The lock file inside the state dir.
const LOCK_FILE: &str = "lock";

/// Held for the whole run; released on drop (and by the OS if the process dies).
#[derive(Debug)]
pub struct RunLock {
    /// Holding the open file is holding the lock.
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

impl LockError {
    /// The process exit code: 75 (try again later) when held, since the other run will end;
    /// 73 (cannot create) when the file cannot be made.
    pub fn exit_code(&self) -> u8 {
        match self {
            LockError::Held { .. } => crate::exit::TEMP_FAIL,
            LockError::Io { .. } => crate::exit::CANT_CREATE,
        }
    }
}

/// Who holds (or last held) a lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: Option<u32>,
    /// RFC 3339 UTC, as written by the holder.
    started_at: Option<String>,
}

impl Holder {
    /// This process, now.
    fn current() -> Holder {
        Holder {
            pid: Some(std::process::id()),
            started_at: Some(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)),
        }
    }

    /// The lock file's text: `pid=…` and `started_at=…` lines.
    fn to_text(&self) -> String {
        let mut text = String::new();
        if let Some(pid) = self.pid {
            text.push_str(&format!("pid={pid}\n"));
        }
        if let Some(started_at) = &self.started_at {
            text.push_str(&format!("started_at={started_at}\n"));
        }
        text
    }

    /// Parses what a holder wrote, tolerating a file it had not finished writing: a value
    /// is taken only from a complete line.
    fn parse(text: &str) -> Holder {
        let mut holder = Holder {
            pid: None,
            started_at: None,
        };
        for line in text.split_inclusive('\n') {
            let Some(line) = line.strip_suffix('\n') else {
                break;
            };
            match line.split_once('=') {
                Some(("pid", pid)) => holder.pid = pid.trim().parse().ok(),
                Some(("started_at", at)) if !at.trim().is_empty() => {
                    holder.started_at = Some(at.trim().to_owned());
                }
                _ => {}
            }
        }
        holder
    }
}

impl RunLock {
    /// Takes the lock at once or fails; never waits. Creates the state dir (0700) and the
    /// lock file (0600) if needed, then writes this process's pid and start time into it.
    pub fn acquire(state_dir: &Path) -> Result<RunLock, LockError> {
        let path = state_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Err(error) = create_private_dir(state_dir) {
            return Err(match error {
                StateError::CreateDir { path, source } => LockError::Io { path, source },
                other => io(std::io::Error::other(other.to_string())),
            });
        }
        // No truncate on open: the file may be a live holder's description.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                return Err(LockError::Held {
                    path: path.display().to_string(),
                    pid: holder
                        .pid
                        .map_or_else(|| "unknown".into(), |pid| pid.to_string()),
                    started_at: holder.started_at.unwrap_or_else(|| "unknown".into()),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        write_holder(&mut file, &Holder::current()).map_err(io)?;
        Ok(RunLock { _file: file })
    }
}

/// Reads the lock file's description of its holder; an unreadable file says nothing.
fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let read = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text));
    match read {
        Ok(_) => Holder::parse(&text),
        Err(_) => Holder::parse(""),
    }
}

/// Replaces the lock file's contents with `holder`, durably.
fn write_holder(file: &mut File, holder: &Holder) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(holder.to_text().as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_second_acquire_fails_at_once_naming_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let _held = RunLock::acquire(dir.path()).unwrap();
        let error = RunLock::acquire(dir.path()).unwrap_err();
        let LockError::Held {
            pid, started_at, ..
        } = &error
        else {
            panic!("expected Held, got {error:?}");
        };
        assert_eq!(pid, &std::process::id().to_string());
        assert!(started_at.ends_with('Z'), "{started_at}");
        assert_eq!(error.exit_code(), crate::exit::TEMP_FAIL);
        assert!(error.to_string().contains(&format!("pid {pid}")), "{error}");
    }

    #[test]
    fn dropping_the_lock_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        drop(RunLock::acquire(dir.path()).unwrap());
        RunLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn acquire_creates_a_private_state_dir_and_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("new").join("state");
        let _held = RunLock::acquire(&state_dir).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state_dir), 0o700);
        assert_eq!(mode(&state_dir.join(LOCK_FILE)), 0o600);
        let text = std::fs::read_to_string(state_dir.join(LOCK_FILE)).unwrap();
        assert_eq!(Holder::parse(&text).pid, Some(std::process::id()), "{text}");
    }

    #[test]
    fn a_partially_written_lock_file_is_tolerated() {
        assert_eq!(
            Holder::parse("pid=4242\nstarted_at=2026-05-"),
            Holder {
                pid: Some(4242),
                started_at: None
            }
        );
        assert_eq!(
            Holder::parse("pi"),
            Holder {
                pid: None,
                started_at: None
            }
        );
        assert_eq!(
            Holder::parse("pid=12\nstarted_at=2026-05-01T00:00:00Z\n"),
            Holder {
                pid: Some(12),
                started_at: Some("2026-05-01T00:00:00Z".into())
            }
        );
    }

    #[test]
    fn a_held_lock_with_an_empty_file_reports_an_unknown_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _held = RunLock::acquire(dir.path()).unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "").unwrap();
        let error = RunLock::acquire(dir.path()).unwrap_err();
        assert!(
            matches!(&error, LockError::Held { pid, started_at, .. }
                if pid == "unknown" && started_at == "unknown"),
            "{error:?}"
        );
    }

    #[test]
    fn a_state_dir_that_is_a_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state");
        std::fs::write(&file, "").unwrap();
        let error = RunLock::acquire(&file).unwrap_err();
        assert!(matches!(error, LockError::Io { .. }), "{error:?}");
        assert_eq!(error.exit_code(), crate::exit::CANT_CREATE);
    }
}

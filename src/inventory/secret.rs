//! Secret references (`env:NAME`, `file:PATH`) and their resolution into a [`Secret`].
//!
//! A reference is not a secret and may be shown; a resolved [`Secret`] prints `***` through
//! `Debug` and `Display` and is only ever exposed to build an HTTP header or a wire body.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// Where a secret lives. Displayed as written in the inventory (`env:NAME`, `file:PATH`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

/// Why a secret reference is malformed (inventory validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretRefError {
    #[error(
        "a literal secret is not allowed here; write a reference such as env:VAR_NAME or file:/path/to/secret"
    )]
    Literal,
    #[error(
        "`env:` needs a variable name of letters, digits and underscores, e.g. env:ACME_JIRA_PAT"
    )]
    BadEnvName,
    #[error("`file:` needs an absolute path, e.g. file:/etc/cmafleet/acme.token")]
    BadFilePath,
}

/// Why a well-formed reference did not resolve (exit 78). Never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvUnset(String),
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error("cannot read secret file {path}: {reason}")]
    FileUnreadable { path: String, reason: String },
    #[error(
        "secret file {path} is readable by group or others (mode {mode:o}); fix it with: chmod 600 {path}"
    )]
    FileTooOpen { path: String, mode: u32 },
    #[error("secret file {0} is empty")]
    FileEmpty(String),
}

impl SecretRef {
    /// Parses `env:NAME` or `file:/abs/path`. Anything else is treated as a literal secret
    /// and refused; the error never repeats the text.
    pub fn parse(text: &str) -> Result<SecretRef, SecretRefError> {
        let text = text.trim();
        if let Some(name) = text.strip_prefix("env:") {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return if valid {
                Ok(SecretRef::Env(name.to_owned()))
            } else {
                Err(SecretRefError::BadEnvName)
            };
        }
        if let Some(path) = text.strip_prefix("file:") {
            let path = Path::new(path);
            return if path.is_absolute() {
                Ok(SecretRef::File(path.to_owned()))
            } else {
                Err(SecretRefError::BadFilePath)
            };
        }
        Err(SecretRefError::Literal)
    }

    /// Reads the secret now. `file:` refuses files readable by group or others.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(value) if value.trim().is_empty() => Err(SecretError::EnvEmpty(name.clone())),
                Ok(value) => Ok(Secret::new(value)),
                Err(_) => Err(SecretError::EnvUnset(name.clone())),
            },
            SecretRef::File(path) => {
                let shown = path.display().to_string();
                let unreadable = |err: std::io::Error| SecretError::FileUnreadable {
                    path: shown.clone(),
                    reason: err.to_string(),
                };
                let metadata = std::fs::metadata(path).map_err(unreadable)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = metadata.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        return Err(SecretError::FileTooOpen { path: shown, mode });
                    }
                }
                let _ = metadata;
                let value = std::fs::read_to_string(path).map_err(unreadable)?;
                let value = value.trim_end_matches(['\n', '\r']).to_owned();
                if value.trim().is_empty() {
                    return Err(SecretError::FileEmpty(shown));
                }
                Ok(Secret::new(value))
            }
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn references_parse_and_literals_are_refused() {
        assert_eq!(
            SecretRef::parse("env:ACME_PAT"),
            Ok(SecretRef::Env("ACME_PAT".into()))
        );
        assert_eq!(
            SecretRef::parse("file:/etc/x"),
            Ok(SecretRef::File("/etc/x".into()))
        );
        assert_eq!(
            SecretRef::parse("ATATT3xFfGF0abc"),
            Err(SecretRefError::Literal)
        );
        assert_eq!(
            SecretRef::parse("env:1BAD"),
            Err(SecretRefError::BadEnvName)
        );
        assert_eq!(
            SecretRef::parse("file:relative"),
            Err(SecretRefError::BadFilePath)
        );
        let message = SecretRefError::Literal.to_string();
        assert!(!message.contains("ATATT"));
    }

    #[cfg(unix)]
    #[test]
    fn open_secret_files_are_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretRef::File(path.clone()).resolve().unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(SecretRef::File(path).resolve().unwrap().expose(), "s3cret");
    }
}

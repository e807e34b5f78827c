//! Why a setting cannot be used, and the exit code that says so.

use crate::exit;

/// A setting that cannot be used, with the exit code it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Bad flag values (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Bad configuration: a rate string, a config file, a secret reference (exit 78).
    #[error("{0}")]
    Config(String),
}

impl ConfigError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Usage(_) => exit::USAGE,
            ConfigError::Config(_) => exit::CONFIG,
        }
    }
}

//! CSV parsing and validation of an inventory.
//!
//! SKELETON: signatures fixed; bodies to be written (issue 3).

use std::fmt;
use std::path::Path;

use super::site::Site;

/// One problem of an inventory: where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the CSV file (the header is line 1).
    pub line: usize,
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {column}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("inventory {path} has {} problem(s)", problems.len())]
    Invalid {
        path: String,
        problems: Vec<Problem>,
    },
}

/// Reads and validates an inventory file.
pub fn load(path: &Path) -> Result<Vec<Site>, InventoryError> {
    let _ = path;
    todo!()
}

/// Validates inventory text; every problem at once.
pub fn parse(text: &str) -> Result<Vec<Site>, Vec<Problem>> {
    let _ = text;
    todo!()
}

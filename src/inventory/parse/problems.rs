//! What reading an inventory finds wrong, and how a value is shown in a message: never a
//! value that may be a secret. Below the reader and every check of a column, row or fleet.

use std::fmt;

/// One problem of an inventory: where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the CSV file (the header is line 1).
    pub line: usize,
    /// The column's name as in the header; `None` for a problem of a whole row or the file.
    pub column: Option<String>,
    /// What is wrong and how to fix it. Never contains a secret, nor a value that could be one.
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

/// Problems collected while reading, sorted at the end by line, then column.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    /// (line, rank of the column within the line — 0 for the whole row —, problem).
    items: Vec<(usize, usize, Problem)>,
}

impl Problems {
    pub(crate) fn push(
        &mut self,
        line: usize,
        rank: usize,
        column: Option<String>,
        message: String,
    ) {
        self.items.push((
            line,
            rank,
            Problem {
                line,
                column,
                message,
            },
        ));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// By line, then column order; problems of one cell stay in the order found.
    pub(crate) fn into_sorted(mut self) -> Vec<Problem> {
        self.items.sort_by_key(|(line, rank, _)| (*line, *rank));
        self.items
            .into_iter()
            .map(|(_, _, problem)| problem)
            .collect()
    }
}

/// Whether a value may be a secret rather than what its column expects: a long run without
/// spaces mixing three kinds of characters (as API tokens and passwords do), or a secret
/// reference's form. A value shifted into another column (a header and its rows that
/// disagree, a lost line end) can be a literal secret: such values are never shown.
pub(crate) fn could_be_secret(text: &str) -> bool {
    let text = text.trim();
    let kinds = [
        text.chars().any(|c| c.is_ascii_lowercase()),
        text.chars().any(|c| c.is_ascii_uppercase()),
        text.chars().any(|c| c.is_ascii_digit()),
        text.chars()
            .any(|c| !c.is_alphanumeric() && !matches!(c, '_' | '-' | ' ')),
    ]
    .into_iter()
    .filter(|kind| *kind)
    .count();
    let token_like = text.chars().count() >= 16 && !text.contains(' ') && kinds >= 3;
    let lower = text.to_ascii_lowercase();
    let reference = ["env:", "file:", "basic:"]
        .iter()
        .any(|prefix| lower.starts_with(prefix));
    token_like || reference
}

/// What stands in a message for a value that may be a secret.
pub(crate) const NOT_SHOWN: &str = "(not shown: it looks like a secret)";

/// A user value shown in a message: at most 40 characters, control characters replaced,
/// and nothing of a value that may be a secret ([`could_be_secret`]).
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 40;
    if could_be_secret(text) {
        return NOT_SHOWN.to_owned();
    }
    let mut shown: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > MAX {
        shown.push('…');
    }
    shown
}

//! The status tree of a task (`GET …/status`): its nodes, read tolerantly, and what a node
//! says about itself — finished or not, how it ended, which values the model does not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::enums::{Outcome, Status};
use super::lenient::{
    lenient, lenient_bool, lenient_children, lenient_f64, lenient_u64, null_as_default,
    occurrence_list,
};
use super::links::Links;

/// One page of `GET …/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<StatusNode>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub links: Links,
}

/// A node of a task's status tree (the root, a level, a check or a scope), recursively.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusNode {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub status: Option<Status>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub outcome: Option<Outcome>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub details: Option<Details>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub progress_details: Option<ProgressDetails>,
    /// Children by name. A child that is `null` or not an object counts as missing (the
    /// tree is eventually consistent), never as a reason to reject the whole tree.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "lenient_children"
    )]
    pub children: BTreeMap<String, StatusNode>,
}

impl StatusNode {
    /// True once the node says `FINISHED` (any casing), or has an outcome whatever its
    /// status says (`STOPPED`, `COMPLETED`…): an outcome is only given to an ended node.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some() || self.status.as_ref().is_some_and(Status::is_finished)
    }

    /// `status X, outcome Y: message` when the node ended badly with a status the API model
    /// does not know (a stopped or incomplete migration), in the service's own words.
    pub fn odd_ending(&self) -> Option<String> {
        let outcome = self.outcome.as_ref()?;
        // A known good outcome is judged as such, whatever the status (`COMPLETED`).
        let good = matches!(
            outcome,
            Outcome::Success | Outcome::Warning | Outcome::Skipped
        );
        if good || !matches!(self.status, Some(Status::Unknown(_))) {
            return None;
        }
        let status = self
            .status
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), ToString::to_string);
        let message = self
            .message
            .as_deref()
            .filter(|message| !message.trim().is_empty())
            .map(|message| format!(": {message}"))
            .unwrap_or_default();
        Some(format!("status {status}, outcome {outcome}{message}"))
    }

    /// Every unknown `status` and `outcome` value in the node and below, each once.
    pub fn unknown_values(&self) -> Vec<(bool, String)> {
        let mut found: Vec<(bool, String)> = Vec::new();
        let mut add = |is_status: bool, value: &str| {
            if !found
                .iter()
                .any(|(kind, known)| *kind == is_status && known == value)
            {
                found.push((is_status, value.to_owned()));
            }
        };
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            if let Some(Status::Unknown(value)) = &node.status {
                add(true, value);
            }
            if let Some(Outcome::Unknown(value)) = &node.outcome {
                add(false, value);
            }
            stack.extend(node.children.values());
        }
        found
    }

    /// Folds the children of a later page into this node (pagination of large trees).
    pub fn merge_page(&mut self, page: StatusNode) {
        for (name, child) in page.children {
            match self.children.get_mut(&name) {
                Some(existing) => existing.merge_page(child),
                None => {
                    self.children.insert(name, child);
                }
            }
        }
        // A node's status, outcome and message are one reading: taken together from the
        // first page that has them. (Pages are read one after another; a node that finished
        // in between must not come out "IN_PROGRESS with an outcome": it is read again.)
        if self.status.is_none() && self.outcome.is_none() {
            self.status = page.status;
            self.outcome = page.outcome;
            if self.message.is_none() {
                self.message = page.message;
            }
        } else if self.message.is_none() {
            self.message = page.message;
        }
        if self.details.is_none() {
            self.details = page.details;
        }
        if self.progress_details.is_none() {
            self.progress_details = page.progress_details;
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Details {
    /// Where a check found problems. Usually strings; other JSON is kept as its text.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "occurrence_list"
    )]
    pub occurrences: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub excludable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressDetails {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub is_supported: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_f64"
    )]
    pub percent: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub data: Vec<ProgressItem>,
}

/// One progress counter (`{ name, total, processed }`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressItem {
    #[serde(default)]
    pub name: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_u64"
    )]
    pub total: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_u64"
    )]
    pub processed: Option<u64>,
}

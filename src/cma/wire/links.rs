//! Pagination links, shared by every paged answer (task lists, status trees).

use serde::{Deserialize, Serialize};

use super::lenient::non_empty_string;

/// Pagination links. `next` is normalised on the way in: absent, `null` and `""` are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Links {
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_link: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_empty_string"
    )]
    pub next: Option<String>,
}

/// Where the next page is, in whichever form the service gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextPage {
    /// A full URL (`https://…` or `http://…`).
    Url(String),
    /// A path, possibly with its own query (`/migrations/…?cursor=…`).
    Path(String),
    /// A bare cursor, to send as `cursor=`.
    Cursor(String),
}

impl Links {
    /// The next page, or `None` on the last page.
    pub fn next_page(&self) -> Option<NextPage> {
        let next = self.next.as_deref()?.trim();
        if next.is_empty() {
            None
        } else if next.starts_with("http://") || next.starts_with("https://") {
            Some(NextPage::Url(next.to_owned()))
        } else if next.starts_with('/') || next.starts_with('?') {
            Some(NextPage::Path(next.to_owned()))
        } else {
            Some(NextPage::Cursor(next.to_owned()))
        }
    }
}

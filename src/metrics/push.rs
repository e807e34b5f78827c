//! `--pushgateway`: PUT the final metrics to `/metrics/job/cmafleet[/shard/I]` with our own
//! async reqwest client (the prometheus crate's `push` feature drags in blocking reqwest).
//!
//! SKELETON: signatures fixed; bodies to be written (issue 6).

use url::Url;

#[derive(Debug, thiserror::Error)]
#[error("push to {url} failed: {reason}")]
pub struct PushError {
    pub url: String,
    pub reason: String,
}

/// Pushes `body` (text format); `shard` adds the `shard` grouping label.
pub async fn push(gateway: &Url, shard: Option<&str>, body: String) -> Result<(), PushError> {
    let _ = (gateway, shard, body);
    todo!()
}

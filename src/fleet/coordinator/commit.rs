//! Group commit: which applied events still wait for the state store, and when their commit
//! is due. The coordinator applies events in memory as they come; their store writes wait
//! here until one of them must be durable (an acknowledged intent or id, or a site's end) —
//! and then, after a busy commit, a little longer for the durable events of other sites.
//!
//! After a commit that carried the awaited events of several sites (a busy run), an event that
//! must be durable waits until that commit's cost, times [`SPACING`], has passed since it
//! ended — never longer than [`MAX_WAIT`] nor a tenth of a create interval. After a commit
//! that carried one or none, it is committed at once: a light run (a few sites, or a fleet's
//! last ones) pays no wait on any site's path. A busy run so spends at most a ninth of the
//! coordinator's time committing, and the durable events of many sites share one transaction
//! and one fsync.
//!
//! The wait never brings creates closer together than the rate limits allow: an intent is
//! committed before its site queues at its rate bucket, and the bucket spaces the requests. It
//! delays the step after a durable event (a create whose bucket stood idle, a site's next poll,
//! the admission of the next site) by at most the wait.
//!
//! Artifacts are downloaded without an fsync each; [`GroupCommit`] remembers whose were saved
//! since the last sync, so that the commit concluding such a site syncs the report dir first
//! and no committed report names an artifact a power cut could take back.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use crate::fleet::events::{Event, EventKind};

/// Events applied but not stored that are committed anyway: a transaction stays short.
pub(super) const BATCH: usize = 512;
/// A commit waits this many times the previous commit's cost after it.
const SPACING: u32 = 8;
/// The longest a durable event waits for company.
const MAX_WAIT: Duration = Duration::from_millis(25);
/// Nor longer than the shortest create interval divided by this: a run at a fast time scale
/// (tests, rehearsals) waits as long in its simulated time as a real run does.
const WAIT_PER_CREATE_INTERVAL: u32 = 10;

/// The events waiting for the next commit, and its timing.
pub(super) struct GroupCommit {
    /// Events already applied in memory whose store writes wait for the next commit: those
    /// nobody waits on ride along with the next one that is awaited (or the next refresh)
    /// instead of costing an fsync each.
    unstored: Vec<Event>,
    /// Sites with artifacts saved since the last sync of the report dir.
    unsynced_artifacts: HashSet<usize>,
    /// Whether `unstored` holds an event something waits on: a commit is then due.
    urgent: bool,
    /// When the last commit ended and what it cost, if it carried the awaited events of more
    /// than one site: the wait is measured from the one and scaled by the other.
    last: Option<(Instant, Duration)>,
    /// The longest a durable event waits (the smaller of [`MAX_WAIT`] and the interval share).
    max_wait: Duration,
}

/// The events of one commit, taken from [`GroupCommit`].
pub(super) struct Commit {
    pub(super) events: Vec<Event>,
    /// Sites with artifacts not yet synced, when this commit concludes one of them: the
    /// report dir's file system is synced before it (every one of them then is).
    pub(super) sync_first: Option<HashSet<usize>>,
}

impl GroupCommit {
    /// `create_interval`: the shortest spacing of the run's create buckets.
    pub(super) fn new(create_interval: Duration) -> GroupCommit {
        GroupCommit {
            unstored: Vec::new(),
            unsynced_artifacts: HashSet::new(),
            urgent: false,
            last: None,
            max_wait: MAX_WAIT.min(create_interval / WAIT_PER_CREATE_INTERVAL),
        }
    }

    /// Takes events the coordinator has applied in memory.
    pub(super) fn add(&mut self, batch: Vec<Event>) {
        for event in &batch {
            self.urgent |= is_awaited(event);
            if let EventKind::Artifact(artifact) = &event.kind
                && artifact.saved_as.is_some()
            {
                self.unsynced_artifacts.insert(event.site);
            }
        }
        self.unstored.extend(batch);
    }

    /// When the next commit is due, while something waits for one.
    pub(super) fn due_at(&self) -> Option<Instant> {
        self.urgent
            .then(|| self.earliest().unwrap_or_else(Instant::now))
    }

    /// Whether to commit now: one is due, or enough events wait.
    pub(super) fn is_due(&self, now: Instant) -> bool {
        self.unstored.len() >= BATCH
            || (self.urgent && self.earliest().is_none_or(|earliest| earliest <= now))
    }

    /// The earliest the next commit may start after a busy one (`None`: at once).
    fn earliest(&self) -> Option<Instant> {
        self.last
            .map(|(ended, cost)| ended + (cost * SPACING).min(self.max_wait))
    }

    /// The events of the next commit (none when nothing waits).
    pub(super) fn take(&mut self) -> Option<Commit> {
        self.urgent = false;
        if self.unstored.is_empty() {
            return None;
        }
        let events = std::mem::take(&mut self.unstored);
        let concludes_unsynced = events.iter().any(|event| {
            matches!(event.kind, EventKind::Finished { .. })
                && self.unsynced_artifacts.contains(&event.site)
        });
        let sync_first = concludes_unsynced.then(|| std::mem::take(&mut self.unsynced_artifacts));
        Some(Commit { events, sync_first })
    }

    /// Records a commit of `events` that ran from `started` to `ended`.
    pub(super) fn committed(&mut self, events: &[Event], started: Instant, ended: Instant) {
        let awaited = events.iter().filter(|event| is_awaited(event)).count();
        self.last = (awaited > 1).then(|| (ended, ended.saturating_duration_since(started)));
    }
}

/// Whether something waits for `event`'s commit: its pipeline (an acknowledged event) or the
/// site's conclusion (its end).
fn is_awaited(event: &Event) -> bool {
    event.ack.is_some() || matches!(event.kind, EventKind::Finished { .. })
}

#[cfg(test)]
mod tests;

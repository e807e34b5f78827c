//! When the group commit is due, and what it syncs first.

use tokio::sync::oneshot;

use super::*;
use crate::report::model::ArtifactRecord;
use crate::vocab::{Outcome, Stage};

/// The create interval of 5 a minute with the default rates.
const REAL_INTERVAL: Duration = Duration::from_secs(12);

fn note(site: usize) -> Event {
    Event {
        site,
        kind: EventKind::Stage(Stage::Check),
        ack: None,
    }
}

/// An event its pipeline waits on (the receiving end is dropped: nobody reads the answer).
fn durable(site: usize) -> Event {
    Event {
        site,
        kind: EventKind::JobIntent,
        ack: Some(oneshot::channel().0),
    }
}

fn finished(site: usize) -> Event {
    Event {
        site,
        kind: EventKind::Finished {
            outcome: Outcome::Succeeded,
            message: "done".into(),
            migrated: false,
            failure: None,
        },
        ack: None,
    }
}

fn saved_artifact(site: usize) -> Event {
    Event {
        site,
        kind: EventKind::Artifact(ArtifactRecord {
            name: "report.csv".into(),
            saved_as: Some("artifacts/a/report.csv".into()),
            bytes: Some(10),
            expire_at: None,
            error: None,
        }),
        ack: None,
    }
}

/// A group commit after a commit of `awaited` awaited events that cost `cost` and just ended.
fn after_commit(interval: Duration, awaited: usize, cost: Duration) -> (GroupCommit, Instant) {
    let mut commit = GroupCommit::new(interval);
    let events: Vec<Event> = (0..awaited).map(durable).collect();
    let started = Instant::now();
    let ended = started + cost;
    commit.committed(&events, started, ended);
    (commit, ended)
}

#[test]
fn events_nobody_waits_on_wait_for_a_batch_or_the_next_commit() {
    let mut commit = GroupCommit::new(REAL_INTERVAL);
    commit.add(vec![note(0), note(1)]);
    assert_eq!(commit.due_at(), None);
    assert!(!commit.is_due(Instant::now()));
    commit.add((0..BATCH).map(note).collect());
    assert!(commit.is_due(Instant::now()), "a full batch is committed");
}

#[test]
fn an_awaited_event_of_a_light_run_is_committed_at_once() {
    let mut commit = GroupCommit::new(REAL_INTERVAL);
    commit.add(vec![note(0), durable(0)]);
    assert!(commit.is_due(Instant::now()));
    let taken = commit.take().expect("events wait");
    assert_eq!(taken.events.len(), 2, "the others ride along");
    assert_eq!(commit.due_at(), None);
    assert!(commit.take().is_none());
}

#[test]
fn after_a_commit_of_one_sites_event_the_next_is_due_at_once() {
    let (mut commit, _) = after_commit(REAL_INTERVAL, 1, Duration::from_millis(5));
    commit.add(vec![durable(1)]);
    assert!(commit.is_due(Instant::now()));
}

#[test]
fn after_a_busy_commit_the_next_waits_eight_times_its_cost() {
    let (mut commit, ended) = after_commit(REAL_INTERVAL, 2, Duration::from_millis(2));
    commit.add(vec![finished(1)]);
    assert_eq!(commit.due_at(), Some(ended + Duration::from_millis(16)));
}

#[test]
fn a_slow_commit_makes_the_next_wait_at_most_25_ms() {
    let (mut commit, ended) = after_commit(REAL_INTERVAL, 30, Duration::from_millis(40));
    commit.add(vec![durable(1)]);
    assert_eq!(commit.due_at(), Some(ended + MAX_WAIT));
}

#[test]
fn at_a_fast_time_scale_the_wait_is_a_tenth_of_a_create_interval() {
    // ×60: 5 creates a simulated minute are one every 200 ms.
    let (mut commit, ended) =
        after_commit(Duration::from_millis(200), 30, Duration::from_millis(40));
    commit.add(vec![durable(1)]);
    assert_eq!(commit.due_at(), Some(ended + Duration::from_millis(20)));
}

#[test]
fn the_commit_that_concludes_a_site_with_saved_artifacts_syncs_them_first() {
    let mut commit = GroupCommit::new(REAL_INTERVAL);
    commit.add(vec![saved_artifact(0), saved_artifact(1), durable(1)]);
    let taken = commit.take().expect("events wait");
    assert!(taken.sync_first.is_none(), "no site concluded yet");

    commit.add(vec![finished(0)]);
    let taken = commit.take().expect("events wait");
    assert_eq!(taken.sync_first, Some(HashSet::from([0, 1])));

    commit.add(vec![finished(1)]);
    let taken = commit.take().expect("events wait");
    assert!(taken.sync_first.is_none(), "already synced");
}

//! Messages from a site's pipeline to the coordinator, the only writer of run state. An event
//! that must be durable before the pipeline acts (a job or task intent, a new id) carries an
//! acknowledgement the coordinator answers after the state store committed it.
//!
//! The queue keeps every site's events in order but does not wake the coordinator for each:
//! only an event a pipeline waits on (one sent durable) rings the doorbell. The coordinator
//! takes the others with it then, before each commit, and at a short interval otherwise: a
//! large fleet sends about ten events per site, and most of them can wait that long.

use chrono::{DateTime, Utc};
use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};

use super::breaker::FailureSignature;
use crate::cma::wire::{StatusNode, TaskKind};
use crate::report::model::{ArtifactRecord, CheckResult, ErrorRecord, ScopeResult};
use crate::vocab::{Judgement, Outcome, Stage};

/// One task of a site, as the pipeline follows it and its events name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The store's row of the intent that made the task: the handle of every later write.
    pub intent_id: i64,
    /// The job it was created on (an adopted task may sit on an older job of the site).
    pub job_id: String,
    pub kind: TaskKind,
    pub task_id: String,
    /// When the service created it: a young task's 404 is eventual consistency, and its
    /// polls are timed from here.
    pub created_at: DateTime<Utc>,
}

/// One thing that happened to one site.
#[derive(Debug)]
pub struct Event {
    /// Index of the site in the run's site list.
    pub site: usize,
    pub kind: EventKind,
    /// Answered once the event is committed to the state store.
    pub ack: Option<oneshot::Sender<Result<Option<i64>, String>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Stage(Stage),
    /// About to POST a job (journalled, so a kill before its id is recorded is noticed).
    JobIntent,
    /// The job create journalled last was never sent (the run stopped while it waited its
    /// turn): no job can have come of it.
    JobIntentWithdrawn,
    Job {
        job_id: String,
        definition_hash: String,
        created_at: DateTime<Utc>,
        reused: bool,
    },
    Attached {
        cloud_url: String,
        expires_at: Option<DateTime<Utc>>,
    },
    /// About to POST a task of `kind` on `job_id`; acknowledged with the intent's id.
    TaskIntent {
        kind: TaskKind,
        job_id: String,
    },
    /// An intent's task: from the POST's answer, or found on the task list (`adopted`).
    TaskCreated {
        task: TaskRef,
        adopted: bool,
    },
    /// A task recorded by an earlier run that this run goes on polling.
    TaskResumed(TaskRef),
    /// Reconciliation found no task for this intent.
    TaskAbandoned {
        intent_id: i64,
    },
    /// A task's latest status (of the level being polled).
    TaskStatus {
        intent_id: i64,
        status: String,
        outcome: Option<String>,
        tree: Box<StatusNode>,
    },
    /// The pipeline is done with a task, and judged it.
    TaskFinished {
        intent_id: i64,
        judgement: Judgement,
    },
    /// A Migrate task's core finished while these scopes still ran (`running`: apps,
    /// whatever their name); empty once they have ended. Until then later runs follow the
    /// task up (read its status, create nothing).
    AfterCore {
        intent_id: i64,
        running: Vec<String>,
    },
    /// This run follows up a Migrate task an earlier run concluded while its apps ran on.
    FollowUp(TaskRef),
    Checks(Vec<CheckResult>),
    Scopes(Vec<ScopeResult>),
    Artifact(ArtifactRecord),
    /// An error met on the way; the coordinator stamps the site's current stage on it.
    Error(ErrorRecord),
    Note(String),
    /// The pipeline is done; `migrated` marks a migration that finished successfully;
    /// `failure` says where and how it failed when that may be systemic (the breaker).
    Finished {
        outcome: Outcome,
        message: String,
        migrated: bool,
        failure: Option<FailureSignature>,
    },
}

/// A new event queue holding up to `capacity` events (senders wait when it is full).
pub fn queue(capacity: usize) -> (EventSender, EventReceiver) {
    let (sender, receiver) = mpsc::channel(capacity);
    let doorbell = Arc::new(Notify::new());
    (
        EventSender {
            sender,
            doorbell: Arc::clone(&doorbell),
        },
        EventReceiver { receiver, doorbell },
    )
}

/// The pipelines' end of the queue.
#[derive(Clone)]
pub struct EventSender {
    sender: mpsc::Sender<Event>,
    /// Rung after an event the sender waits on.
    doorbell: Arc<Notify>,
}

/// The coordinator's end of the queue.
pub struct EventReceiver {
    receiver: mpsc::Receiver<Event>,
    doorbell: Arc<Notify>,
}

impl EventReceiver {
    /// Completes once an event a pipeline waits on was queued since the last time it
    /// completed (at once when one was).
    pub async fn rung(&self) {
        self.doorbell.notified().await;
    }

    /// The next queued event, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.receiver.try_recv().ok()
    }
}

/// The pipeline's end of the event queue, bound to one site.
#[derive(Clone)]
pub struct SiteEvents {
    site: usize,
    queue: EventSender,
}

/// The coordinator is gone or the store refused a write: the pipeline must stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state store unavailable: {0}")]
pub struct StoreUnavailable(pub String);

impl SiteEvents {
    pub fn new(site: usize, queue: EventSender) -> SiteEvents {
        SiteEvents { site, queue }
    }

    /// Queues without waiting for the store (nor waking the coordinator).
    pub async fn send(&self, kind: EventKind) -> Result<(), StoreUnavailable> {
        self.queue
            .sender
            .send(Event {
                site: self.site,
                kind,
                ack: None,
            })
            .await
            .map_err(|_| StoreUnavailable("the coordinator stopped".into()))
    }

    /// Sends and waits until the state store committed it (journal before act); returns the
    /// id the store assigned, if any (a task intent's id).
    pub async fn send_durable(&self, kind: EventKind) -> Result<Option<i64>, StoreUnavailable> {
        let (ack, done) = oneshot::channel();
        self.queue
            .sender
            .send(Event {
                site: self.site,
                kind,
                ack: Some(ack),
            })
            .await
            .map_err(|_| StoreUnavailable("the coordinator stopped".into()))?;
        self.queue.doorbell.notify_one();
        match done.await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(message)) => Err(StoreUnavailable(message)),
            Err(_) => Err(StoreUnavailable("the coordinator stopped".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn rings_within(receiver: &EventReceiver, wait: Duration) -> bool {
        tokio::time::timeout(wait, receiver.rung()).await.is_ok()
    }

    #[tokio::test]
    async fn only_an_event_a_pipeline_waits_on_rings_and_the_queue_keeps_the_order() {
        let (sender, mut receiver) = queue(16);
        let site = SiteEvents::new(3, sender);
        site.send(EventKind::Note("first".into())).await.unwrap();
        site.send(EventKind::JobIntent).await.unwrap();
        assert!(
            !rings_within(&receiver, Duration::from_millis(20)).await,
            "events nobody waits on must not wake the coordinator"
        );

        let durable = tokio::spawn({
            let site = site.clone();
            async move { site.send_durable(EventKind::JobIntent).await }
        });
        assert!(
            rings_within(&receiver, Duration::from_secs(5)).await,
            "a durable event rings"
        );
        let kinds: Vec<EventKind> = std::iter::from_fn(|| receiver.try_recv())
            .map(|event| {
                assert_eq!(event.site, 3);
                if let Some(ack) = event.ack {
                    ack.send(Ok(Some(7))).unwrap();
                }
                event.kind
            })
            .collect();
        assert_eq!(
            kinds,
            [
                EventKind::Note("first".into()),
                EventKind::JobIntent,
                EventKind::JobIntent
            ]
        );
        assert_eq!(durable.await.unwrap(), Ok(Some(7)));
        assert!(!rings_within(&receiver, Duration::from_millis(20)).await);
    }
}

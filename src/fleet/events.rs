//! Messages from a site's pipeline to the coordinator, the only writer of run state. An event
//! that must be durable before the pipeline acts (a job or task intent, a new id) carries an
//! acknowledgement the coordinator answers after the state store committed it.

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::{Outcome, Stage};
use crate::cma::wire::{StatusNode, TaskKind};
use crate::report::model::{ArtifactRecord, CheckResult, ErrorRecord, ScopeResult};

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
    /// An intent's task id: from the POST's answer, or found on the task list (`adopted`).
    TaskCreated {
        intent_id: i64,
        kind: TaskKind,
        task_id: String,
        created_at: DateTime<Utc>,
        adopted: bool,
    },
    /// A task recorded by an earlier run that this run goes on polling.
    TaskResumed {
        intent_id: i64,
        kind: TaskKind,
        task_id: String,
        created_at: Option<DateTime<Utc>>,
    },
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
    /// The pipeline is done with a task; `outcome` is its judgement (outcome vocabulary).
    TaskFinished {
        intent_id: i64,
        outcome: String,
    },
    Checks(Vec<CheckResult>),
    Scopes(Vec<ScopeResult>),
    Artifact(ArtifactRecord),
    /// An error met on the way; the coordinator stamps the site's current stage on it.
    Error(ErrorRecord),
    Note(String),
    /// The pipeline is done; `migrated` marks a migration that finished successfully.
    Finished {
        outcome: Outcome,
        message: String,
        migrated: bool,
    },
}

/// The pipeline's end of the event channel, bound to one site.
#[derive(Clone)]
pub struct SiteEvents {
    site: usize,
    sender: mpsc::Sender<Event>,
}

/// The coordinator is gone or the store refused a write: the pipeline must stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state store unavailable: {0}")]
pub struct StoreUnavailable(pub String);

impl SiteEvents {
    pub fn new(site: usize, sender: mpsc::Sender<Event>) -> SiteEvents {
        SiteEvents { site, sender }
    }

    /// Sends without waiting for the store.
    pub async fn send(&self, kind: EventKind) -> Result<(), StoreUnavailable> {
        self.sender
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
        self.sender
            .send(Event {
                site: self.site,
                kind,
                ack: Some(ack),
            })
            .await
            .map_err(|_| StoreUnavailable("the coordinator stopped".into()))?;
        match done.await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(message)) => Err(StoreUnavailable(message)),
            Err(_) => Err(StoreUnavailable("the coordinator stopped".into())),
        }
    }
}

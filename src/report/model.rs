//! The report model: everything known about a run and its sites, as plain data. The
//! coordinator builds it, the state store keeps it, the renderers turn it into files.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cma::Surprise;
use crate::vocab::{Mode, Outcome, Stage};

/// A whole run: its identity and options, and one entry per selected site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run: RunInfo,
    pub sites: Vec<SiteReport>,
}

/// `run.json`: identity, options, counts and exit code of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub mode: Mode,
    /// The resolved options (never a secret), as shown by `--print-config`.
    pub options: serde_json::Value,
    /// `I/N` when the run was one shard of a fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Sites per outcome; every outcome present, zero included.
    pub counts: BTreeMap<Outcome, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Run-level notes: an interruption, the deadline, jobs left unused by a crash…
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub version: String,
    /// Answers outside the API model met in this run, each kind and value once: where the
    /// model cmafleet was written against differs from the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub surprises: Vec<Surprise>,
}

impl RunInfo {
    /// A run's record as it starts: every outcome counted at zero, nothing ended yet.
    pub fn starting(
        run_id: String,
        mode: Mode,
        options: serde_json::Value,
        shard: Option<String>,
        started_at: DateTime<Utc>,
    ) -> RunInfo {
        RunInfo {
            run_id,
            mode,
            options,
            shard,
            started_at,
            finished_at: None,
            counts: Outcome::ALL
                .into_iter()
                .map(|outcome| (outcome, 0))
                .collect(),
            exit_code: None,
            notes: Vec::new(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            surprises: Vec::new(),
        }
    }
}

/// `sites/<site>.json`: everything known about one site in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteReport {
    pub site: String,
    /// Which shard's run this report comes from, in a report over several state stores
    /// (`cmafleet report --state-dirs`): the run's `--shard` label or its store's dir name.
    /// `None` in a run's own report (its shard, if any, is the run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub product: String,
    pub mode: Mode,
    /// `None` while the site is still running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    pub stage: Stage,
    /// One line a person reads first: why this outcome.
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The last task this run drove (the Migrate task in migrate mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageSpan>,
    /// Shared, not owned: most sites of a fleet report the same check nodes word for word,
    /// and a 10,000-site run keeps every finished site's report for the summaries
    /// (`fleet::ledger` interns them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Arc<CheckResult>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<ScopeResult>,
    /// Scopes (apps) still running after the core migration finished when this run ended:
    /// the site is migrated, not yet done — later runs follow its task up until they end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub still_running: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<ArtifactRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl SiteReport {
    /// A site that has not started yet.
    pub fn pending(site: &str, product: &str, mode: Mode) -> Self {
        SiteReport {
            site: site.to_owned(),
            shard: None,
            product: product.to_owned(),
            mode,
            outcome: None,
            stage: Stage::Queued,
            message: String::new(),
            job_id: None,
            task_id: None,
            tasks: Vec::new(),
            stages: Vec::new(),
            checks: Vec::new(),
            scopes: Vec::new(),
            still_running: Vec::new(),
            artifacts: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
            started_at: None,
            finished_at: None,
        }
    }

    pub fn checks_with(&self, outcome: &str) -> usize {
        self.checks
            .iter()
            .filter(|check| check.outcome.eq_ignore_ascii_case(outcome))
            .count()
    }
}

/// One task a site's run created or adopted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// `check` or `migrate`.
    pub kind: String,
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// True when this run found the task already running (after a crash) instead of creating it.
    #[serde(default)]
    pub adopted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// When a site entered and left a stage (the timeline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSpan {
    pub stage: Stage,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// One pre-migration check node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's name (opaque: the set changes between CMA versions).
    pub name: String,
    pub status: String,
    /// `SUCCESS`, `WARNING`, `FAILED`, `SKIPPED`, or whatever else the service said.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub occurrences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One scope of a migration (projects, spaces, usersAndGroups, apps, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeResult {
    pub name: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// The last progress counters seen (point in time: only while in progress).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<ProgressCounter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressCounter {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed: Option<u64>,
}

/// An artifact listed on a finished task. The location may carry a presigned credential,
/// so only its file name and where it was saved are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_as: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An error met on the way, with what the service said (never a secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub at: DateTime<Utc>,
    pub stage: Stage,
    /// Route template of the endpoint, e.g. `POST /jobs/{jobId}/tasks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub message: String,
}

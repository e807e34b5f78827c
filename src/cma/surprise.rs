//! Surprises: answers outside the model of the API that cmafleet was written against (an
//! unknown status, outcome or task type, an error body of an unknown shape, an artifact that
//! is not a file, a status level that never appears). Each kind and value is recorded once
//! per run with a short, redacted sample — in `run.json`, `report.html`, one WARN line and
//! `cmafleet_api_surprises_total{kind}` — so the first runs against the real service show
//! where the model is wrong. A surprise never makes the client guess: each has a safe rule.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::text::{redact, shorten};

/// The longest sample kept of a surprising answer.
const SAMPLE_CHARS: usize = 300;
/// Distinct surprises kept per run (a service answering garbage must not fill the report).
const MAX_KEPT: usize = 200;

/// What kind of answer surprised the client; its name is the metric's `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurpriseKind {
    /// A status-tree `status` outside PENDING / IN_PROGRESS / FINISHED (any case).
    Status,
    /// An `outcome` outside SUCCESS / WARNING / FAILED / SKIPPED.
    Outcome,
    /// A `taskType` that is neither check nor migrate (or none).
    TaskType,
    /// An error answer whose body has none of the message fields the client knows.
    ErrorEnvelope,
    /// An artifact location that answered something other than a file (JSON, HTML).
    Artifact,
    /// A status level (`check`, `migrate`) that did not appear while the task ran on.
    MissingLevel,
}

impl SurpriseKind {
    pub const ALL: [SurpriseKind; 6] = [
        SurpriseKind::Status,
        SurpriseKind::Outcome,
        SurpriseKind::TaskType,
        SurpriseKind::ErrorEnvelope,
        SurpriseKind::Artifact,
        SurpriseKind::MissingLevel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SurpriseKind::Status => "status",
            SurpriseKind::Outcome => "outcome",
            SurpriseKind::TaskType => "task_type",
            SurpriseKind::ErrorEnvelope => "error_envelope",
            SurpriseKind::Artifact => "artifact",
            SurpriseKind::MissingLevel => "missing_level",
        }
    }

    /// What the client did about it, for the report.
    pub fn rule(self) -> &'static str {
        match self {
            SurpriseKind::Status => {
                "a node with an outcome counts as finished; without one it is polled on"
            }
            SurpriseKind::Outcome => {
                "reported as is; blocks the migration (never taken as success)"
            }
            SurpriseKind::TaskType => {
                "after a lost create answer, any unrecorded new task counts as ours whatever its type"
            }
            SurpriseKind::ErrorEnvelope => "the first bytes of the body are shown as the message",
            SurpriseKind::Artifact => "not saved as the artifact; reported with its first bytes",
            SurpriseKind::MissingLevel => "the task's root is read to see whether it ended there",
        }
    }
}

impl fmt::Display for SurpriseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kind and value of surprise, as first seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Surprise {
    pub kind: SurpriseKind,
    /// The surprising value (`STOPPED`, `MIGRATION`, `an HTML page`…), shortened.
    pub value: String,
    /// What the service sent, shortened and with secrets redacted.
    pub sample: String,
    /// Where it was met: a route template, e.g. `GET /jobs/{jobId}/tasks/{taskId}/status`.
    pub endpoint: String,
    pub first_seen_at: DateTime<Utc>,
}

/// The surprises of one run, each kind and value once (shared by every request of the run).
#[derive(Debug, Default)]
pub struct SurpriseLog {
    seen: Mutex<BTreeMap<(SurpriseKind, String), Surprise>>,
}

impl SurpriseLog {
    /// Records a surprise unless its kind and value were seen already; true when it is new
    /// (the caller then says it once). `secrets` are removed from the sample.
    pub fn record(
        &self,
        kind: SurpriseKind,
        value: &str,
        sample: &str,
        endpoint: &str,
        secrets: &[String],
    ) -> Option<Surprise> {
        let value = shorten(value, SAMPLE_CHARS);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if seen.len() >= MAX_KEPT || seen.contains_key(&(kind, value.clone())) {
            return None;
        }
        let sample = redact(&shorten(sample, SAMPLE_CHARS), secrets);
        let surprise = Surprise {
            kind,
            value: value.clone(),
            sample,
            endpoint: endpoint.to_owned(),
            first_seen_at: Utc::now(),
        };
        seen.insert((kind, value), surprise.clone());
        Some(surprise)
    }

    /// Every surprise so far, by kind and value.
    pub fn list(&self) -> Vec<Surprise> {
        self.seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_and_value_is_kept_once_with_a_redacted_sample() {
        let log = SurpriseLog::default();
        let secrets = vec!["tok-123456".to_owned()];
        let first = log.record(
            SurpriseKind::Status,
            "STOPPED",
            r#"{"status":"STOPPED","note":"tok-123456"}"#,
            "GET status",
            &secrets,
        );
        assert!(first.unwrap().sample.contains("***"));
        assert!(
            log.record(SurpriseKind::Status, "STOPPED", "x", "GET status", &secrets)
                .is_none()
        );
        assert!(
            log.record(
                SurpriseKind::Outcome,
                "STOPPED",
                "x",
                "GET status",
                &secrets
            )
            .is_some()
        );
        let listed = log.list();
        assert_eq!(listed.len(), 2);
        assert!(
            !listed
                .iter()
                .any(|surprise| surprise.sample.contains("tok-123456"))
        );
    }

    #[test]
    fn samples_are_short() {
        let log = SurpriseLog::default();
        let long = "x".repeat(5000);
        let surprise = log
            .record(
                SurpriseKind::ErrorEnvelope,
                "json",
                &long,
                "POST /jobs",
                &[],
            )
            .unwrap();
        assert_eq!(surprise.sample.chars().count(), SAMPLE_CHARS + 1);
    }
}

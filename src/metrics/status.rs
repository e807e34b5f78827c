//! The shape of `/status.json`: the coordinator's live view of a run, as the status page
//! (`/`) reads it. The coordinator builds a [`RunStatus`] and its [`StatusSource`] closure
//! returns `serde_json::to_value(&status)`; the page tolerates missing fields, so a partial
//! view still renders.
//!
//! [`StatusSource`]: super::server::StatusSource

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::vocab::{Mode, Stage};

/// A run as people watching it want to see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// Which run this is (the report directory's name).
    pub run_id: String,
    pub mode: Option<Mode>,
    /// `I/N` when sharded, so a page per shard says which it is.
    pub shard: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    /// Selected sites: the denominator of the progress bar.
    pub total: usize,
    /// Sites per outcome word, plus `pending` and `running` (the `cmafleet_sites` labels).
    pub counts: BTreeMap<String, usize>,
    /// Sites admitted and not finished, oldest first: what the run is busy with.
    pub in_flight: Vec<InFlightSite>,
    /// The last few errors, newest first, so a stuck site is visible without the logs.
    pub recent_errors: Vec<SiteError>,
    /// Estimated seconds until every selected site has finished, once there is a rate.
    pub eta_seconds: Option<f64>,
    /// Sites done per wave, in the order the waves run (one entry when the inventory has no
    /// waves); a wave boundary is the first status where a wave's `done` reaches its `total`.
    #[serde(default)]
    pub waves: Vec<WaveStatus>,
    /// The run has ended; the counts are final.
    pub finished: bool,
}

/// How far one wave is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaveStatus {
    /// The inventory's `wave` label; `None` for rows without one.
    pub label: Option<String>,
    pub total: usize,
    pub done: usize,
}

impl WaveStatus {
    /// `wave "w1"`, or `rows without a wave`.
    pub fn describe(&self) -> String {
        match &self.label {
            Some(label) => format!("wave {label}"),
            None => "rows without a wave".to_owned(),
        }
    }
}

/// One site in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlightSite {
    pub site: String,
    pub stage: Stage,
    /// When it entered `stage`: the page shows the age.
    pub since: DateTime<Utc>,
}

/// One error a site ran into (already free of secrets: `ApiError`'s display is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteError {
    pub site: String,
    pub at: DateTime<Utc>,
    pub message: String,
}

impl RunStatus {
    /// Finished sites (any outcome) out of all selected ones, 0 when there are none.
    pub fn completed_fraction(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let unfinished: usize = ["pending", "running"]
            .iter()
            .filter_map(|word| self.counts.get(*word))
            .sum();
        let finished = self.total.saturating_sub(unfinished);
        finished as f64 / self.total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_to_the_fields_the_page_reads() {
        let status = RunStatus {
            run_id: "20240501T010000Z".into(),
            mode: Some(Mode::Migrate),
            total: 4,
            counts: [
                ("running".into(), 1),
                ("pending".into(), 1),
                ("succeeded".into(), 2),
            ]
            .into_iter()
            .collect(),
            in_flight: vec![InFlightSite {
                site: "acme-jira".into(),
                stage: Stage::Migrate,
                since: DateTime::from_timestamp(1_714_525_200, 0).unwrap(),
            }],
            ..RunStatus::default()
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["mode"], "migrate");
        assert_eq!(json["counts"]["succeeded"], 2);
        assert_eq!(json["in_flight"][0]["stage"], "migrate");
        assert_eq!(json["in_flight"][0]["since"], "2024-05-01T01:00:00Z");
        assert_eq!(status.completed_fraction(), 0.5);
        let back: RunStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
    }
}

//! What a run starts from: each selected site's entry with its record in the store, the
//! run's record, the check results of earlier runs, admission's rules, and what the record of
//! a new run notes before its first site starts.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;

use super::Coordinator;
use super::admission::{self, Rules};
use crate::fleet::ledger::SiteEntry;
use crate::fleet::settings::FleetSettings;
use crate::inventory::Site;
use crate::report::model::{CheckResult, RunInfo};
use crate::state::{SiteState, Store};
use crate::vocab::Mode;

impl Coordinator {
    /// Before the loop: the run's record, what earlier runs left, the first admissions.
    pub(super) fn begin(&mut self) {
        let metrics = Arc::clone(self.ledger.metrics());
        metrics.set_run_start(self.run.started_at.timestamp_millis() as f64 / 1000.0);
        // The last successful run's end, so CmafleetNoRecentSuccess sees history on a fresh process.
        let runs = self.store.runs().unwrap_or_default();
        let last_ok = runs.into_iter().find(|run| run.exit_code == Some(0));
        if let Some(at) = last_ok.and_then(|run| run.finished_at) {
            metrics.set_last_success(at.timestamp_millis() as f64 / 1000.0);
        }
        // Noted at the start, so the run's record says so even if this run is killed too.
        let unused_jobs: Vec<&str> = self
            .ledger
            .entries
            .iter()
            .filter(|entry| entry.state.job_intent_at.is_some())
            .map(|entry| entry.site.name.as_str())
            .collect();
        if !unused_jobs.is_empty() {
            self.run.notes.push(format!(
                "{} site(s) had a job create interrupted by an earlier run: at most one unused job each (it moves no data): {}",
                unused_jobs.len(),
                unused_jobs.join(", ")
            ));
        }
        if let Err(error) = self.store.transaction(|tx| tx.begin_run(&self.run)) {
            self.fail_store(error);
        }
        self.ledger.publish_counts();
        self.admit();
    }
}

pub(super) fn rules(settings: &FleetSettings) -> Rules {
    Rules {
        mode: settings.pipeline.mode,
        concurrency: settings.concurrency,
        per_server: settings.per_server,
        remigrate: settings.pipeline.remigrate,
        window_closes: settings.pipeline.no_new_tasks_after,
    }
}

/// The run's record as it starts.
pub(super) fn run_info(run_id: String, settings: FleetSettings) -> RunInfo {
    RunInfo::starting(
        run_id,
        settings.pipeline.mode,
        settings.options,
        settings.shard,
        Utc::now(),
    )
}

/// One entry per selected site, with its record in the store (an empty one when it has none
/// or it cannot be read: the error is logged).
pub(super) fn entries(store: &Store, sites: &[Arc<Site>], mode: Mode) -> Vec<SiteEntry> {
    let waves = admission::wave_order(sites);
    sites
        .iter()
        .zip(waves)
        .map(|(site, wave)| {
            let state = store.site(&site.name).unwrap_or_else(|error| {
                tracing::error!(site = %site.name, "cannot read its state: {error}");
                None
            });
            let state = state.unwrap_or_else(|| SiteState {
                site: site.name.clone(),
                ..Default::default()
            });
            SiteEntry::new(Arc::clone(site), wave, state, mode)
        })
        .collect()
}

/// Each site's latest check results, from the newest run that has them.
pub(super) fn latest_checks(
    store: &Store,
    sites: &[Arc<Site>],
) -> HashMap<String, Vec<CheckResult>> {
    let mut found: HashMap<String, Vec<CheckResult>> = HashMap::new();
    for run in store.runs().unwrap_or_default() {
        if found.len() == sites.len() {
            break;
        }
        let Ok(Some(report)) = store.run_report(&run.run_id) else {
            continue;
        };
        for site in report.sites {
            if !site.checks.is_empty() && !found.contains_key(&site.site) {
                let checks = site.checks.into_iter().map(Arc::unwrap_or_clone);
                found.insert(site.site, checks.collect());
            }
        }
    }
    found
}

//! Admission: which site starts when. Sites resuming a task an earlier run left running go
//! first (their task already holds its server); then waves in inventory order, long
//! pipelines first within a wave, under `--concurrency` and `--per-server`; sites with
//! nothing to do (already migrated, a migration left running, the night window) are
//! concluded without a pipeline.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::Utc;
use tracing::Instrument as _;

use super::Coordinator;
use crate::cma::ServerClient;
use crate::cma::wire::TaskKind;
use crate::fleet::events::SiteEvents;
use crate::fleet::ledger::Progress;
use crate::fleet::pipeline::{self, SitePlan};
use crate::inventory::Site;
use crate::report::model::CheckResult;
use crate::state::Store;
use crate::vocab::{Judgement, Mode, Outcome};

impl Coordinator {
    pub(super) fn has_waiting(&self) -> bool {
        !self.resuming.is_empty() || self.waiting.iter().any(|wave| !wave.is_empty())
    }

    /// Starts the sites that resume a running task, while the caps allow.
    pub(super) fn admit_resuming(&mut self) {
        let mut deferred = VecDeque::new();
        while self.running < self.settings.concurrency {
            let Some(index) = self.resuming.pop_front() else {
                break;
            };
            let server = self.ledger.entries[index].site.server_id.clone();
            if self.per_server.get(&server).copied().unwrap_or(0) >= self.settings.per_server {
                deferred.push_back(index);
                continue;
            }
            if let Some(count) = self.reserved.get_mut(&server) {
                *count = count.saturating_sub(1);
            }
            if let Some(message) = self.migration_left_running(index) {
                self.conclude_unstarted(index, Outcome::Skipped, message);
                continue;
            }
            // A migrated site with only a Check task left open is still done: never migrate it
            // again (the open task is not a migration to resume).
            if let Some((outcome, message)) = self.skip_reason(index, false) {
                self.conclude_unstarted(index, outcome, message);
                continue;
            }
            self.start(index);
        }
        while let Some(index) = deferred.pop_back() {
            self.resuming.push_front(index);
        }
    }

    /// Starts sites while the caps allow, wave by wave.
    pub(super) fn admit(&mut self) {
        if self.shutdown.is_draining() || self.store_failure.is_some() {
            return;
        }
        self.admit_resuming();
        let window_closed = self
            .policy
            .no_new_tasks_after
            .is_some_and(|closes| Utc::now() >= closes);
        let Some(wave) = self.waiting.iter().position(|wave| !wave.is_empty()) else {
            return;
        };
        if self.open_in_wave[..wave].iter().any(|open| *open > 0) {
            return;
        }
        let mut deferred = VecDeque::new();
        while self.running < self.settings.concurrency {
            let Some(index) = self.waiting[wave].pop_front() else {
                break;
            };
            if let Some((outcome, message)) = self.skip_reason(index, window_closed) {
                self.conclude_unstarted(index, outcome, message);
                continue;
            }
            let server = self.ledger.entries[index].site.server_id.clone();
            let busy = self.per_server.get(&server).copied().unwrap_or(0)
                + self.reserved.get(&server).copied().unwrap_or(0);
            if busy >= self.settings.per_server {
                deferred.push_back(index);
                continue;
            }
            self.start(index);
        }
        while let Some(index) = deferred.pop_back() {
            self.waiting[wave].push_front(index);
        }
    }

    /// In check mode, a Migrate task an earlier migrate run left running: a check run cannot
    /// resume it, and a Check task beside it would run two tasks on the server at once.
    pub(super) fn migration_left_running(&self, index: usize) -> Option<String> {
        if self.settings.mode != Mode::Check {
            return None;
        }
        let entry = &self.ledger.entries[index];
        let task = entry.state.tasks.iter().find(|task| {
            task.kind == TaskKind::Migrate && !task.abandoned && task.finished_at.is_none()
        })?;
        Some(format!(
            "not checked: its Migrate task {} left running by an earlier run is still in flight; run --mode migrate to resume it",
            task.task_id.as_deref().unwrap_or("(id not recorded)")
        ))
    }

    /// Why a site ends without a pipeline, if it does.
    pub(super) fn skip_reason(
        &self,
        index: usize,
        window_closed: bool,
    ) -> Option<(Outcome, String)> {
        let entry = &self.ledger.entries[index];
        // A migration whose apps ran on is followed up (its status read, nothing created),
        // whatever the window: like a task in flight, it creates nothing.
        let follows_up = entry.state.apps_pending().is_some() && !self.settings.remigrate;
        let in_flight = entry.has_task_in_flight() || follows_up;
        // Only an open Migrate task (the newest) is resumed on a migrated site: an open Check
        // task (e.g. of a killed check run) must not let a new migration start.
        let migrate_open = entry
            .state
            .last_task(&TaskKind::Migrate)
            .is_some_and(|task| task.finished_at.is_none());
        if self.settings.mode == Mode::Migrate
            && !self.settings.remigrate
            && !migrate_open
            && !follows_up
        {
            let migrated = entry.state.migrated_at.or_else(|| {
                entry
                    .state
                    .last_task(&TaskKind::Migrate)
                    .filter(|task| task.judgement.is_some_and(Judgement::went_well))
                    .and_then(|task| task.finished_at)
            });
            if let Some(at) = migrated {
                let when = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                return Some((
                    Outcome::Skipped,
                    format!("already migrated at {when} (use --remigrate to migrate again)"),
                ));
            }
        }
        if !in_flight && let Some(reason) = self.breakers.tripped(&entry.site.cloud_user) {
            return Some((Outcome::Skipped, reason.to_owned()));
        }
        if !in_flight && let Some(holder) = self.held_servers.get(&entry.site.server_id) {
            return Some((
                Outcome::Skipped,
                format!(
                    "not started: `{holder}`, not selected in this run, has a task an earlier run left running on server `{}`; run `{holder}` first (--site {holder}), or select both",
                    entry.site.server_id
                ),
            ));
        }
        if window_closed && !in_flight {
            let closes = self
                .policy
                .no_new_tasks_after
                .map(|at| at.with_timezone(&chrono::Local).format("%H:%M").to_string());
            return Some((
                Outcome::Skipped,
                format!(
                    "night window closed at {}: not started",
                    closes.unwrap_or_default()
                ),
            ));
        }
        None
    }
    pub(super) fn start(&mut self, index: usize) {
        let last_checks = self.last_checks(&self.ledger.entries[index].site.name);
        let entry = &mut self.ledger.entries[index];
        entry.progress = Progress::Running;
        let site = Arc::clone(&entry.site);
        *self.per_server.entry(site.server_id.clone()).or_default() += 1;
        self.running += 1;
        let cloud = self.clouds.get(&site.cloud_user).cloned().unwrap_or_else(|| {
            panic!("no cloud credentials resolved for {}: the caller must resolve every row's secrets", site.name)
        });
        let server = ServerClient::new(
            self.http.clone(),
            &site.server_url,
            self.server_credentials[index].clone(),
        );
        let pollers = Arc::clone(self.pollers.entry(site.cloud_user.clone()).or_default());
        let tripwire = self.breakers.tripwire(&site.cloud_user);
        let plan = SitePlan {
            index,
            last_checks,
            site,
            state: entry.state.clone(),
            cloud,
            server,
            pollers,
            durations: Arc::clone(&self.durations),
            run_start: self.run_start,
            artifacts_dir: self.writer.artifacts_dir(),
            tripwire,
        };
        let events = SiteEvents::new(index, self.sender.clone());
        let policy = Arc::clone(&self.policy);
        let stop = self.shutdown.graceful().clone();
        // At ERROR level so the span (and its `site` and `stage` fields) is on whatever the
        // log filter; the pipeline records the stage as it moves.
        let span =
            tracing::error_span!("site", site = %plan.site.name, stage = tracing::field::Empty);
        self.spans[index] = Some(span.clone());
        let handle = self.tasks.spawn(
            async move {
                pipeline::run_site(policy, plan, events, stop).await;
                index
            }
            .instrument(span),
        );
        self.pipelines.insert(handle.id(), index);
        self.dirty = true;
    }

    /// The latest check results known for a site (for `--override-checks`).
    pub(super) fn last_checks(&self, site: &str) -> Vec<CheckResult> {
        self.last_checks.get(site).cloned().unwrap_or_default()
    }
}

/// Each site's wave index: waves in order of first appearance in the inventory; rows without
/// a wave form their own wave where they first appear.
pub(super) fn wave_order(sites: &[Arc<Site>]) -> Vec<usize> {
    let mut seen: Vec<Option<&str>> = Vec::new();
    sites
        .iter()
        .map(|site| {
            let label = site.wave.as_deref();
            match seen.iter().position(|known| *known == label) {
                Some(index) => index,
                None => {
                    seen.push(label);
                    seen.len() - 1
                }
            }
        })
        .collect()
}

/// The selected sites' servers where an unselected row has a task an earlier run left
/// running, each with that row's site (the first in inventory order). A row whose state
/// cannot be read holds nothing (the error is logged).
pub(super) fn held_servers(
    store: &Store,
    sites: &[Arc<Site>],
    unselected: &[Arc<Site>],
) -> HashMap<String, String> {
    let servers: HashSet<&str> = sites.iter().map(|site| site.server_id.as_str()).collect();
    let mut held = HashMap::new();
    for other in unselected {
        if !servers.contains(other.server_id.as_str()) || held.contains_key(&other.server_id) {
            continue;
        }
        match store.site(&other.name) {
            Ok(Some(state)) if state.has_task_in_flight() => {
                held.insert(other.server_id.clone(), other.name.clone());
            }
            Ok(_) => {}
            Err(error) => tracing::error!(site = %other.name, "cannot read its state: {error}"),
        }
    }
    held
}

//! Admission: which site starts when, decided from the sites' records alone. Sites resuming a
//! task an earlier run left running go first, whatever their wave (their task already holds
//! its server, and resuming it creates nothing); then waves in inventory order, a wave only
//! once every earlier one is done, long pipelines first within a wave; all under
//! `--concurrency` and `--per-server`. Sites with nothing to do (already migrated, a migration
//! left running, a server held by an unselected row, a tripped breaker, the night window) end
//! without a pipeline.
//!
//! [`Admission`] owns the queues and the slot counts; the coordinator acts on each
//! [`Decision`] and tells it when a pipeline ends and when a site concludes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::cma::wire::TaskKind;
use crate::fleet::breaker::Breakers;
use crate::fleet::ledger::SiteEntry;
use crate::inventory::Site;
use crate::state::{SiteState, Store};
use crate::vocab::{Judgement, Mode, Outcome};

/// The settings admission follows.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    pub(super) mode: Mode,
    /// Sites running at once.
    pub(super) concurrency: usize,
    /// Sites running at once on one source server.
    pub(super) per_server: usize,
    /// Sites already migrated migrate again.
    pub(super) remigrate: bool,
    /// No site starts new work at or after this instant (the night window).
    pub(super) window_closes: Option<DateTime<Utc>>,
}

/// What to do with one site now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// Start its pipeline: its slot is already counted.
    Start(usize),
    /// End it without a pipeline.
    Conclude {
        site: usize,
        outcome: Outcome,
        message: String,
    },
}

/// The sites not started yet and the slots of those running.
pub(super) struct Admission {
    rules: Rules,
    /// Sites waiting for admission, per wave (in admission order).
    waiting: Vec<VecDeque<usize>>,
    /// Sites whose task an earlier run left running: admitted first.
    resuming: VecDeque<usize>,
    /// Per source server, how many of `resuming` wait there: no new task starts on such a
    /// server before its running task is resumed and finished.
    reserved: HashMap<String, usize>,
    /// Source servers where a row outside this run's selection has a task an earlier run
    /// left running, with that row's site: nothing starts there (this run does not poll
    /// that task, so it cannot know when the server is free).
    held_servers: HashMap<String, String>,
    /// Running sites per source server.
    per_server: HashMap<String, usize>,
    running: usize,
    /// Sites not concluded yet, per wave (a wave starts when every earlier one is done).
    open_in_wave: Vec<usize>,
}

impl Admission {
    /// Queues every site of `sites` (all pending), with the servers unselected rows hold.
    pub(super) fn new(
        rules: Rules,
        sites: &[SiteEntry],
        held_servers: HashMap<String, String>,
    ) -> Admission {
        let wave_count = sites.iter().map(|entry| entry.wave + 1).max().unwrap_or(0);
        let mut admission = Admission {
            rules,
            waiting: vec![VecDeque::new(); wave_count],
            resuming: VecDeque::new(),
            reserved: HashMap::new(),
            held_servers,
            per_server: HashMap::new(),
            running: 0,
            open_in_wave: vec![0; wave_count],
        };
        let mut order: Vec<usize> = (0..sites.len()).collect();
        // Long pipelines first (known from history), otherwise inventory order.
        order.sort_by_key(|&index| std::cmp::Reverse(sites[index].expected_seconds));
        for index in order {
            let entry = &sites[index];
            admission.open_in_wave[entry.wave] += 1;
            if entry.has_task_in_flight() {
                *admission
                    .reserved
                    .entry(entry.site.server_id.clone())
                    .or_default() += 1;
                admission.resuming.push_back(index);
            } else {
                admission.waiting[entry.wave].push_back(index);
            }
        }
        admission
    }

    /// Sites running now.
    pub(super) fn running(&self) -> usize {
        self.running
    }

    pub(super) fn has_waiting(&self) -> bool {
        !self.resuming.is_empty() || self.waiting.iter().any(|wave| !wave.is_empty())
    }

    /// The next site to start or conclude now, if the caps and waves allow one. `sites` are
    /// the run's entries (as given to [`Admission::new`]); `now` decides the night window.
    pub(super) fn next(
        &mut self,
        sites: &[SiteEntry],
        breakers: &Breakers,
        now: DateTime<Utc>,
    ) -> Option<Decision> {
        if self.running >= self.rules.concurrency {
            return None;
        }
        if let Some(decision) = self.next_resuming(sites, breakers) {
            return Some(decision);
        }
        self.next_waiting(sites, breakers, now)
    }

    /// A pipeline started by [`Decision::Start`] ended: its slot is free.
    pub(super) fn ended(&mut self, server: &str) {
        if let Some(busy) = self.per_server.get_mut(server) {
            *busy = busy.saturating_sub(1);
        }
        self.running = self.running.saturating_sub(1);
    }

    /// A site of `wave` reached its outcome (its report is recorded).
    pub(super) fn concluded(&mut self, wave: usize) {
        self.open_in_wave[wave] = self.open_in_wave[wave].saturating_sub(1);
    }

    /// Empties the queues (the run stops): the sites that were waiting, resuming ones first.
    pub(super) fn take_waiting(&mut self) -> Vec<usize> {
        let mut waiting: Vec<usize> = std::mem::take(&mut self.resuming).into();
        waiting.extend(self.waiting.iter_mut().flat_map(std::mem::take));
        self.reserved.clear();
        waiting
    }

    /// The first resuming site whose server has room.
    fn next_resuming(&mut self, sites: &[SiteEntry], breakers: &Breakers) -> Option<Decision> {
        let position = self
            .resuming
            .iter()
            .position(|&index| self.busy(&sites[index].site.server_id) < self.rules.per_server)?;
        let index = self.resuming.remove(position)?;
        let entry = &sites[index];
        if let Some(count) = self.reserved.get_mut(&entry.site.server_id) {
            *count = count.saturating_sub(1);
        }
        // A migrated site with only a Check task left open is still done: never migrate it
        // again (the open task is not a migration to resume).
        let skip = migration_left_running(self.rules.mode, &entry.state)
            .map(|message| (Outcome::Skipped, message))
            .or_else(|| self.skip_reason(entry, breakers, false));
        Some(self.decide(index, entry, skip))
    }

    /// The next site of the first wave with sites waiting, once every earlier wave is done:
    /// the first to skip, or the first whose server has room.
    fn next_waiting(
        &mut self,
        sites: &[SiteEntry],
        breakers: &Breakers,
        now: DateTime<Utc>,
    ) -> Option<Decision> {
        let wave = self.waiting.iter().position(|wave| !wave.is_empty())?;
        if self.open_in_wave[..wave].iter().any(|open| *open > 0) {
            return None;
        }
        let window_closed = self.rules.window_closes.is_some_and(|closes| now >= closes);
        let position = self.waiting[wave].iter().position(|&index| {
            let entry = &sites[index];
            let server = &entry.site.server_id;
            let busy = self.busy(server) + self.reserved.get(server).copied().unwrap_or(0);
            busy < self.rules.per_server
                || self.skip_reason(entry, breakers, window_closed).is_some()
        })?;
        let index = self.waiting[wave].remove(position)?;
        let skip = self.skip_reason(&sites[index], breakers, window_closed);
        Some(self.decide(index, &sites[index], skip))
    }

    /// Concludes the site when there is a reason to skip it, otherwise takes its slot.
    fn decide(
        &mut self,
        index: usize,
        entry: &SiteEntry,
        skip: Option<(Outcome, String)>,
    ) -> Decision {
        if let Some((outcome, message)) = skip {
            return Decision::Conclude {
                site: index,
                outcome,
                message,
            };
        }
        *self
            .per_server
            .entry(entry.site.server_id.clone())
            .or_default() += 1;
        self.running += 1;
        Decision::Start(index)
    }

    fn busy(&self, server: &str) -> usize {
        self.per_server.get(server).copied().unwrap_or(0)
    }

    /// Why a site ends without a pipeline, if it does.
    fn skip_reason(
        &self,
        entry: &SiteEntry,
        breakers: &Breakers,
        window_closed: bool,
    ) -> Option<(Outcome, String)> {
        let state = &entry.state;
        // A migration whose apps ran on is followed up (its status read, nothing created),
        // whatever the window: like a task in flight, it creates nothing.
        let follows_up = state.apps_pending().is_some() && !self.rules.remigrate;
        let in_flight = entry.has_task_in_flight() || follows_up;
        // Only an open Migrate task (the newest) is resumed on a migrated site: an open Check
        // task (e.g. of a killed check run) must not let a new migration start.
        let migrate_open = state
            .last_task(&TaskKind::Migrate)
            .is_some_and(|task| task.finished_at.is_none());
        let may_migrate_again = self.rules.mode != Mode::Migrate || self.rules.remigrate;
        if !may_migrate_again
            && !migrate_open
            && !follows_up
            && let Some(at) = migrated_at(state)
        {
            let when = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            return Some((
                Outcome::Skipped,
                format!("already migrated at {when} (use --remigrate to migrate again)"),
            ));
        }
        if in_flight {
            return None;
        }
        if let Some(reason) = breakers.tripped(&entry.site.cloud_user) {
            return Some((Outcome::Skipped, reason.to_owned()));
        }
        if let Some(holder) = self.held_servers.get(&entry.site.server_id) {
            return Some((
                Outcome::Skipped,
                format!(
                    "not started: `{holder}`, not selected in this run, has a task an earlier run left running on server `{}`; run `{holder}` first (--site {holder}), or select both",
                    entry.site.server_id
                ),
            ));
        }
        if window_closed {
            let closes = self
                .rules
                .window_closes
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
}

/// When the site last migrated successfully, if it did.
fn migrated_at(state: &SiteState) -> Option<DateTime<Utc>> {
    state.migrated_at.or_else(|| {
        state
            .last_task(&TaskKind::Migrate)
            .filter(|task| task.judgement.is_some_and(Judgement::went_well))
            .and_then(|task| task.finished_at)
    })
}

/// In check mode, a Migrate task an earlier migrate run left running: a check run cannot
/// resume it, and a Check task beside it would run two tasks on the server at once.
fn migration_left_running(mode: Mode, state: &SiteState) -> Option<String> {
    if mode != Mode::Check {
        return None;
    }
    let task = state.tasks.iter().find(|task| {
        task.kind == TaskKind::Migrate && !task.abandoned && task.finished_at.is_none()
    })?;
    Some(format!(
        "not checked: its Migrate task {} left running by an earlier run is still in flight; run --mode migrate to resume it",
        task.task_id.as_deref().unwrap_or("(id not recorded)")
    ))
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

#[cfg(test)]
mod tests;

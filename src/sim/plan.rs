//! A task's plan: everything that will happen to it, decided once when it is created from
//! (job definition, task request, server profile, attach state). Its state at any later time
//! is a pure function of the plan and the elapsed simulated time (see `progress`), so the
//! simulator needs no timers or background loops however many tasks it holds.
//!
//! Times in a plan are simulated seconds since the task was created.

use std::borrow::Cow;

use crate::cma::wire::{CreateTaskRequest, JobDefinition, Outcome, TaskKind, UsersMode};

use super::catalog::{self, ScopeInfo};
use super::dice;
use super::profile::ServerProfile;
use super::values::PlannedOutcome;

/// Text from the catalog (borrowed) or from the scenario (owned).
pub(crate) type Text = Cow<'static, str>;

/// How long a scope spends exporting before it imports.
const EXPORT_SHARE: f64 = 0.4;

#[derive(Debug, Clone)]
pub(crate) struct TaskPlan {
    pub kind: TaskKind,
    /// The checks, in the order they finish.
    pub checks: Vec<PlannedCheck>,
    pub check_end: f64,
    /// Set when the job's cloud site was not attached (or its server unknown) at creation:
    /// the task fails at `check_end` with this message and runs nothing.
    pub not_attached: Option<String>,
    /// A check still FAILED after overrides: a Migrate task moves no data.
    pub blocked: bool,
    /// Migrate only: every scope of the product, in running order.
    pub scopes: Vec<PlannedScope>,
    pub core_end: f64,
    /// When app data finishes (`core_end` when apps are not in scope).
    pub apps_end: f64,
    /// The attach expires while the task runs and the server fails the task then.
    pub abort: Option<Abort>,
    /// Migrate only (`end_status`): when the core would end, the root, `migrate` and every
    /// unfinished scope end with this status (upper case) and FAILED; apps never run.
    pub stop: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct PlannedCheck {
    pub name: Text,
    pub finish_at: f64,
    pub outcome: PlannedOutcome,
    pub message: Text,
    pub description: Text,
    pub excludable: bool,
    pub occurrences: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct PlannedScope {
    pub name: &'static str,
    /// Whether the job's definition includes the scope (else it is SKIPPED throughout).
    pub included: bool,
    pub start: f64,
    pub export_end: f64,
    pub end: f64,
    pub outcome: PlannedOutcome,
    pub message: Text,
    /// Progress counters: name and total.
    pub counters: Vec<(Text, u64)>,
}

impl PlannedScope {
    pub(super) fn is_apps(&self) -> bool {
        self.name == "apps"
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Abort {
    pub at: f64,
    pub message: String,
}

/// The message of a task whose cloud site is not attached or whose Server ID is unknown.
pub(crate) fn not_attached_message(cloud_url: &str, server_id: &str) -> String {
    format!(
        "The cloud URL {cloud_url} is not attached through the CMA or the Server ID {server_id} is incorrect. Attach the cloud site on the server and create the task again."
    )
}

/// What the plan needs to know about the job's situation when the task is created.
#[derive(Debug, Clone)]
pub(crate) struct Situation<'a> {
    pub definition: &'a JobDefinition,
    pub request: &'a CreateTaskRequest,
    /// `None` when the job's Server ID matches no server.
    pub profile: Option<&'a ServerProfile>,
    /// Simulated seconds the current attach stays valid; `None`: not attached.
    pub attached_for: Option<f64>,
    pub not_attached_delay: f64,
}

impl TaskPlan {
    pub(super) fn new(situation: &Situation<'_>) -> TaskPlan {
        let definition = situation.definition;
        let kind = match situation.request.task {
            TaskKind::Migrate => TaskKind::Migrate,
            _ => TaskKind::Check,
        };
        let (profile, attached_for) = match (situation.profile, situation.attached_for) {
            (Some(profile), Some(attached_for)) if attached_for > 0.0 => (profile, attached_for),
            _ => {
                let message =
                    not_attached_message(&definition.destination.url, &definition.source.server_id);
                return TaskPlan::failed_to_start(kind, situation.not_attached_delay, message);
            }
        };
        let checks = plan_checks(definition, situation.request, profile);
        let check_end = checks
            .last()
            .map_or(0.0, |c| c.finish_at)
            .max(profile.check_duration);
        let blocked =
            kind == TaskKind::Migrate && checks.iter().any(|c| c.outcome == PlannedOutcome::Failed);
        let mut plan = TaskPlan {
            kind: kind.clone(),
            checks,
            check_end,
            not_attached: None,
            blocked,
            scopes: Vec::new(),
            core_end: check_end,
            apps_end: check_end,
            abort: None,
            stop: None,
        };
        if kind == TaskKind::Migrate {
            plan.plan_scopes(definition, profile);
        }
        let migrates = plan.kind == TaskKind::Migrate && !plan.blocked;
        let stop = profile.end_status.clone().filter(|_| migrates);
        let natural_end = match (&stop, migrates) {
            (Some(_), _) => plan.core_end,
            (None, true) => plan.apps_end,
            (None, false) => plan.check_end,
        };
        if profile.attach_lapse_fails_tasks && attached_for < natural_end {
            plan.abort = Some(Abort {
                at: attached_for,
                message: not_attached_message(&definition.destination.url, &profile.server_id),
            });
        } else {
            // An attach lapsing first fails the task; else it stops when its core would end.
            plan.stop = stop;
        }
        plan
    }

    fn failed_to_start(kind: TaskKind, delay: f64, message: String) -> TaskPlan {
        TaskPlan {
            kind,
            checks: Vec::new(),
            check_end: delay,
            not_attached: Some(message),
            blocked: true,
            scopes: Vec::new(),
            core_end: delay,
            apps_end: delay,
            abort: None,
            stop: None,
        }
    }

    fn plan_scopes(&mut self, definition: &JobDefinition, profile: &ServerProfile) {
        let infos = catalog::scopes_for(&definition.flow);
        let core_weight: u32 = infos
            .iter()
            .filter(|info| info.name != "apps" && includes(definition, info.name))
            .map(|info| info.weight)
            .sum();
        let mut at = self.check_end;
        for info in infos {
            let included = includes(definition, info.name);
            let spec = profile.scopes.get(info.name);
            let duration = match spec.and_then(|s| s.duration) {
                Some(duration) => duration.secs(),
                None if info.name == "apps" => profile.apps_duration,
                None if core_weight == 0 => 0.0,
                None => profile.migrate_duration * f64::from(info.weight) / f64::from(core_weight),
            };
            let start = at;
            let end = if included { start + duration } else { start };
            if included {
                at = end;
            }
            if info.name != "apps" {
                self.core_end = at;
            }
            let outcome = spec.and_then(|s| s.outcome).unwrap_or_default();
            let message = spec
                .and_then(|s| s.message.clone())
                .map_or(Text::Borrowed(scope_message(info, outcome)), Text::Owned);
            self.scopes.push(PlannedScope {
                name: info.name,
                included,
                start,
                export_end: start + (end - start) * EXPORT_SHARE,
                end,
                outcome,
                message,
                counters: counters(definition, profile, info),
            });
        }
        self.apps_end = self
            .scopes
            .iter()
            .find(|s| s.is_apps() && s.included)
            .map_or(self.core_end, |s| s.end);
    }

    /// When the root node would finish without an abort.
    fn natural_root_end(&self) -> f64 {
        if self.kind == TaskKind::Migrate && !self.blocked {
            self.core_end
        } else {
            self.check_end
        }
    }

    /// Whether the attach lapse ends the root before it finishes on its own.
    pub(super) fn aborted_root(&self) -> bool {
        self.abort
            .as_ref()
            .is_some_and(|abort| abort.at < self.natural_root_end())
    }

    /// When the root node finishes (simulated seconds after creation).
    pub(super) fn root_end(&self) -> f64 {
        match &self.abort {
            Some(abort) => self.natural_root_end().min(abort.at),
            None => self.natural_root_end(),
        }
    }

    /// When app data finishes, for a Migrate task with apps in scope.
    pub(super) fn apps_end(&self) -> Option<f64> {
        let apps = self.scopes.iter().find(|s| s.is_apps() && s.included)?;
        if self.blocked {
            return None;
        }
        if self.stop.is_some() {
            // Stopped with the core: app data will not run.
            return Some(self.core_end);
        }
        Some(match &self.abort {
            Some(abort) if abort.at < apps.end => abort.at.max(apps.start),
            _ => apps.end,
        })
    }

    /// The outcome the root shows once finished.
    pub(super) fn root_outcome(&self) -> Outcome {
        if self.not_attached.is_some() || self.blocked {
            return Outcome::Failed;
        }
        if self.aborted_root() || self.stop.is_some() {
            return Outcome::Failed;
        }
        let checks = self.check_outcome();
        if self.kind == TaskKind::Check {
            return checks.wire();
        }
        worst(checks, self.core_outcome()).wire()
    }

    /// Whether a scope has started `t` simulated seconds after creation (a scope the job
    /// does not name, or that checks, an attach lapse or a stop kept from running, never
    /// starts).
    pub(super) fn scope_started(&self, name: &str, t: f64) -> bool {
        if self.blocked || self.not_attached.is_some() {
            return false;
        }
        self.scopes
            .iter()
            .find(|scope| scope.name == name)
            .is_some_and(|scope| {
                scope.included
                    && t >= scope.start
                    && self
                        .abort
                        .as_ref()
                        .is_none_or(|abort| abort.at >= scope.start)
                    && !(self.stop.is_some() && scope.end > self.core_end)
            })
    }

    /// The worst check outcome.
    pub(super) fn check_outcome(&self) -> PlannedOutcome {
        self.checks
            .iter()
            .map(|c| c.outcome)
            .max()
            .unwrap_or_default()
    }

    /// The worst outcome of the core scopes in the job's scope.
    pub(super) fn core_outcome(&self) -> PlannedOutcome {
        self.scopes
            .iter()
            .filter(|s| s.included && !s.is_apps())
            .map(|s| s.outcome)
            .max()
            .unwrap_or_default()
    }
}

fn worst(a: PlannedOutcome, b: PlannedOutcome) -> PlannedOutcome {
    a.max(b)
}

/// The checks that run, with their outcomes after `excludeKeys` overrides. Catalog texts
/// are borrowed, so a plan costs little memory however many tasks there are.
fn plan_checks(
    definition: &JobDefinition,
    request: &CreateTaskRequest,
    profile: &ServerProfile,
) -> Vec<PlannedCheck> {
    let catalog = catalog::checks_for(&definition.flow);
    let mut names: Vec<Text> = catalog.iter().map(|c| Text::Borrowed(c.name)).collect();
    for name in profile.checks.keys() {
        if !names.iter().any(|known| known == name) {
            names.push(Text::Owned(name.clone()));
        }
    }
    let types = request
        .options
        .as_ref()
        .and_then(|o| o.check_types.as_ref());
    let include = types
        .and_then(|t| t.include_keys.as_deref())
        .unwrap_or_default();
    let exclude = types
        .and_then(|t| t.exclude_keys.as_deref())
        .unwrap_or_default();
    let listed = |keys: &[String], name: &str| keys.iter().any(|key| key == name);
    let is_check = !matches!(request.task, TaskKind::Migrate);
    if is_check {
        if !include.is_empty() {
            names.retain(|name| listed(include, name));
        }
        names.retain(|name| !listed(exclude, name));
    }
    names.sort_by_key(|name| dice::roll(0, &[b"check-order", name.as_bytes()]));
    let count = names.len().max(1) as f64;
    names
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            let info = catalog.iter().find(|c| c.name == name);
            let spec = profile.checks.get(name.as_ref());
            let mut outcome = spec.map(|s| s.outcome).unwrap_or_default();
            let excludable = spec
                .and_then(|s| s.excludable)
                .or(info.map(|i| i.excludable))
                .unwrap_or(false);
            let mut message: Text = match (spec.and_then(|s| s.message.clone()), outcome, info) {
                (Some(message), _, _) => Text::Owned(message),
                (None, PlannedOutcome::Success, _) => Text::Borrowed("No problems found."),
                (None, PlannedOutcome::Warning, Some(info)) => Text::Borrowed(info.warning),
                (None, PlannedOutcome::Failed, Some(info)) => Text::Borrowed(info.failure),
                (None, _, None) => Text::Owned(format!("{name} found problems.")),
            };
            if !is_check
                && outcome == PlannedOutcome::Failed
                && excludable
                && listed(exclude, &name)
            {
                outcome = PlannedOutcome::Warning;
                message.to_mut().push_str(
                    " This check was overridden (excludeKeys) and does not block the migration.",
                );
            }
            PlannedCheck {
                description: info.map_or_else(
                    || Text::Owned(format!("Pre-migration check {name}.")),
                    |i| Text::Borrowed(i.description),
                ),
                finish_at: profile.check_duration * (index as f64 + 1.0) / count,
                occurrences: spec.map(|s| s.occurrences.clone()).unwrap_or_default(),
                name,
                outcome,
                message,
                excludable,
            }
        })
        .collect()
}

/// Whether the job's definition includes a scope.
fn includes(definition: &JobDefinition, scope: &str) -> bool {
    let s = &definition.scope;
    match scope {
        "projects" => s.projects.is_some(),
        "spaces" => s.spaces.is_some(),
        "usersAndGroups" => s
            .users_and_groups
            .as_ref()
            .is_some_and(|u| u.mode != UsersMode::None),
        "jsm" => s.jsm.is_some(),
        "ar" => s.ar.is_some(),
        "apps" => s.apps.as_ref().is_some_and(|a| !a.included_keys.is_empty()),
        "globalEntities" => s
            .global_entities
            .as_ref()
            .is_some_and(|g| !g.included_types.is_empty()),
        _ => false,
    }
}

fn scope_message(info: &ScopeInfo, outcome: PlannedOutcome) -> &'static str {
    match outcome {
        PlannedOutcome::Success => info.success,
        PlannedOutcome::Warning => info.warning,
        PlannedOutcome::Failed => info.failure,
    }
}

/// Progress counter totals: what the job names (keys, apps), else plausible sizes varying by
/// server; the scenario's `items` win.
fn counters(
    definition: &JobDefinition,
    profile: &ServerProfile,
    info: &ScopeInfo,
) -> Vec<(Text, u64)> {
    let keys = |scope: &Option<crate::cma::wire::KeyScope>| {
        scope
            .as_ref()
            .and_then(|k| k.included_keys.as_ref())
            .map(|k| k.len() as u64)
            .filter(|n| *n > 0)
    };
    let mut counters: Vec<(Text, u64)> = info
        .counters
        .iter()
        .map(|(name, low, high)| {
            let named = match *name {
                "Projects" => keys(&definition.scope.projects),
                "Spaces" => keys(&definition.scope.spaces),
                "Apps" => definition
                    .scope
                    .apps
                    .as_ref()
                    .map(|a| a.included_keys.len() as u64),
                _ => None,
            };
            let total = named.unwrap_or_else(|| {
                dice::between(
                    0,
                    &[b"size", profile.name.as_bytes(), name.as_bytes()],
                    *low,
                    *high,
                )
            });
            (Text::Borrowed(*name), total)
        })
        .collect();
    if let Some(spec) = profile.scopes.get(info.name) {
        for (name, total) in &spec.items {
            match counters.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = *total,
                None => counters.push((Text::Owned(name.clone()), *total)),
            }
        }
    }
    counters
}

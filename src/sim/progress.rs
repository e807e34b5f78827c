//! Task progression: the status tree of a task at a given elapsed (simulated) time, as a
//! pure function of its [`TaskPlan`]. No timers: the tree is computed when it is read.
//!
//! Shape: root → `check` (one child per check) and, for Migrate, `migrate` (one child per
//! scope). Checks all start at once and finish one by one; scopes run one after another in
//! two phases (export, then import) with progress counters; apps run after the core, so
//! `migrate` (and the root) can be FINISHED while `apps` is IN_PROGRESS. Progress shows only
//! on nodes in progress, for their current phase. A server's `end_status` stops a Migrate
//! task when its core would end: the root, `migrate` and unfinished scopes take that status.
//!
//! This is the one canonical tree; `shapes` reshapes and respells it as it is served.

use std::collections::BTreeMap;

use crate::cma::wire::{
    Details, Outcome, ProgressDetails, ProgressItem, Status, StatusNode, TaskKind,
};

use super::plan::{Abort, PlannedCheck, PlannedScope, TaskPlan};
use super::values::PlannedOutcome;

pub(crate) const CHECKS_RUNNING: &str = "Preflight checks are running";
pub(crate) const CHECKS_FAILED: &str = "At least one Preflight check has failed.";
pub(crate) const CHECKS_WARNING: &str = "All Preflight checks have passed with warning.";
pub(crate) const CHECKS_PASSED: &str = "All Preflight checks have passed.";
const MIGRATION_RUNNING: &str = "Migration is in progress";
pub(crate) const MIGRATION_STOPPED: &str = "The migration was stopped.";

/// Where a span of time `[start, end)` stands at `t`, given a possible abort.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Span {
    Pending,
    Running(f64),
    Finished,
    /// Running when the abort came: FAILED.
    Aborted,
    /// Had not started when the abort came: SKIPPED.
    NeverStarted,
}

fn span(start: f64, end: f64, t: f64, abort: Option<&Abort>) -> Span {
    if let Some(abort) = abort
        && t >= abort.at
        && abort.at < end
    {
        return if abort.at >= start {
            Span::Aborted
        } else {
            Span::NeverStarted
        };
    }
    if t < start {
        Span::Pending
    } else if t >= end {
        Span::Finished
    } else {
        Span::Running(((t - start) / (end - start)).clamp(0.0, 1.0))
    }
}

fn node(status: Status, outcome: Option<Outcome>, message: impl Into<String>) -> StatusNode {
    StatusNode {
        status: Some(status),
        outcome,
        message: Some(message.into()),
        ..StatusNode::default()
    }
}

fn finished(outcome: Outcome, message: impl Into<String>) -> StatusNode {
    node(Status::Finished, Some(outcome), message)
}

/// A node a stop ended (`end_status`): that status, FAILED.
fn stopped(status: &str) -> StatusNode {
    node(
        Status::Unknown(status.to_owned()),
        Some(Outcome::Failed),
        MIGRATION_STOPPED,
    )
}

/// The status a stop gives the root, `migrate` and unfinished scopes once it happened.
fn stop_at(plan: &TaskPlan, t: f64) -> Option<&str> {
    plan.stop.as_deref().filter(|_| t >= plan.core_end)
}

fn percent(fraction: f64) -> Option<f64> {
    Some((fraction * 100.0).floor().clamp(0.0, 100.0))
}

/// The whole status tree of a task `t` simulated seconds after it was created.
/// `hide_pending` leaves out nodes that have not started.
pub(crate) fn render(plan: &TaskPlan, t: f64, hide_pending: bool) -> StatusNode {
    let mut root = match &plan.not_attached {
        Some(message) => render_not_attached(plan, t, message),
        None => render_running(plan, t),
    };
    if hide_pending {
        drop_pending(&mut root);
    }
    root
}

fn drop_pending(node: &mut StatusNode) {
    node.children
        .retain(|_, child| child.status != Some(Status::Pending));
    for child in node.children.values_mut() {
        drop_pending(child);
    }
}

/// A task that could not start: checks "run" briefly, then everything fails.
fn render_not_attached(plan: &TaskPlan, t: f64, message: &str) -> StatusNode {
    let done = t >= plan.check_end;
    let level = |done: bool| {
        if done {
            finished(Outcome::Failed, message)
        } else {
            node(Status::InProgress, None, CHECKS_RUNNING)
        }
    };
    let mut root = level(done);
    root.children.insert("check".into(), level(done));
    if plan.kind == TaskKind::Migrate {
        let migrate = if done {
            finished(
                Outcome::Skipped,
                "Not started: the task could not be scheduled.",
            )
        } else {
            node(
                Status::Pending,
                None,
                "Waiting for the pre-migration checks",
            )
        };
        root.children.insert("migrate".into(), migrate);
    }
    root
}

fn render_running(plan: &TaskPlan, t: f64) -> StatusNode {
    let abort = plan.abort.as_ref();
    let check = render_check_level(plan, t, abort);
    if plan.kind != TaskKind::Migrate {
        let mut root = check.clone();
        root.children = BTreeMap::from([("check".to_owned(), check)]);
        return root;
    }
    let migrate = render_migrate_level(plan, t, abort);
    let mut root = if plan.aborted_root() && t >= plan.root_end() {
        finished(Outcome::Failed, abort.map_or("", |a| a.message.as_str()))
    } else if t < plan.check_end {
        let mut root = node(Status::InProgress, None, CHECKS_RUNNING);
        root.progress_details = check.progress_details.clone();
        root
    } else if plan.blocked {
        finished(Outcome::Failed, CHECKS_FAILED)
    } else if let Some(status) = stop_at(plan, t) {
        stopped(status)
    } else if t >= plan.core_end {
        let outcome = plan.root_outcome();
        let message = migration_message(&outcome);
        finished(outcome, message)
    } else {
        let mut root = node(Status::InProgress, None, MIGRATION_RUNNING);
        root.progress_details = migrate.progress_details.clone();
        root
    };
    root.children = BTreeMap::from([("check".to_owned(), check), ("migrate".to_owned(), migrate)]);
    root
}

fn migration_message(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "Migration completed successfully.",
        Outcome::Warning => "Migration completed with warnings.",
        _ => "Migration failed.",
    }
}

fn render_check_level(plan: &TaskPlan, t: f64, abort: Option<&Abort>) -> StatusNode {
    let children: BTreeMap<String, StatusNode> = plan
        .checks
        .iter()
        .map(|check| (check.name.to_string(), render_check(check, t, abort)))
        .collect();
    let mut level = match span(0.0, plan.check_end, t, abort) {
        Span::Finished => {
            let outcome = plan.check_outcome();
            let message = match outcome {
                PlannedOutcome::Success => CHECKS_PASSED,
                PlannedOutcome::Warning => CHECKS_WARNING,
                PlannedOutcome::Failed => CHECKS_FAILED,
            };
            finished(outcome.wire(), message)
        }
        Span::Aborted | Span::NeverStarted => {
            finished(Outcome::Failed, abort.map_or("", |a| a.message.as_str()))
        }
        Span::Pending | Span::Running(_) => {
            let total = plan.checks.len() as u64;
            let processed = plan.checks.iter().filter(|c| t >= c.finish_at).count() as u64;
            let mut level = node(Status::InProgress, None, CHECKS_RUNNING);
            level.progress_details = Some(ProgressDetails {
                is_supported: Some(true),
                percent: percent(processed as f64 / total.max(1) as f64),
                data: vec![ProgressItem {
                    name: "Preflight checks".into(),
                    total: Some(total),
                    processed: Some(processed),
                }],
            });
            level
        }
    };
    level.children = children;
    level
}

fn render_check(check: &PlannedCheck, t: f64, abort: Option<&Abort>) -> StatusNode {
    let (mut result, occurrences) = match span(0.0, check.finish_at, t, abort) {
        Span::Finished => (
            finished(check.outcome.wire(), check.message.clone()),
            check.occurrences.clone(),
        ),
        Span::Aborted | Span::NeverStarted => (
            finished(Outcome::Failed, abort.map_or("", |a| a.message.as_str())),
            Vec::new(),
        ),
        Span::Pending | Span::Running(_) => (node(Status::InProgress, None, "Running"), Vec::new()),
    };
    result.details = Some(Details {
        occurrences,
        excludable: Some(check.excludable),
        description: Some(check.description.to_string()),
    });
    result
}

fn render_migrate_level(plan: &TaskPlan, t: f64, abort: Option<&Abort>) -> StatusNode {
    let children: BTreeMap<String, StatusNode> = plan
        .scopes
        .iter()
        .map(|scope| (scope.name.to_owned(), render_scope(plan, scope, t, abort)))
        .collect();
    let mut level = if plan.blocked {
        if t < plan.check_end {
            node(
                Status::Pending,
                None,
                "Waiting for the pre-migration checks",
            )
        } else {
            finished(
                Outcome::Skipped,
                "Not started: at least one Preflight check has failed.",
            )
        }
    } else if let Some(status) = stop_at(plan, t) {
        stopped(status)
    } else {
        match span(plan.check_end, plan.core_end, t, abort) {
            Span::Pending => node(
                Status::Pending,
                None,
                "Waiting for the pre-migration checks",
            ),
            Span::Running(fraction) => {
                let mut level = node(Status::InProgress, None, MIGRATION_RUNNING);
                level.progress_details = Some(ProgressDetails {
                    is_supported: Some(true),
                    percent: percent(fraction),
                    data: Vec::new(),
                });
                level
            }
            Span::Finished => {
                let outcome = plan.core_outcome().wire();
                let message = migration_message(&outcome);
                finished(outcome, message)
            }
            Span::Aborted => finished(Outcome::Failed, abort.map_or("", |a| a.message.as_str())),
            Span::NeverStarted => finished(Outcome::Skipped, "Not started: the task was stopped."),
        }
    };
    level.children = children;
    level
}

fn render_scope(
    plan: &TaskPlan,
    scope: &PlannedScope,
    t: f64,
    abort: Option<&Abort>,
) -> StatusNode {
    if !scope.included {
        return finished(Outcome::Skipped, "Not included in this job's scope.");
    }
    if plan.blocked {
        return if t < plan.check_end {
            node(Status::Pending, None, "Waiting to start")
        } else {
            finished(
                Outcome::Skipped,
                "Not started: at least one Preflight check has failed.",
            )
        };
    }
    if let Some(status) = stop_at(plan, t)
        && scope.end > plan.core_end
    {
        return stopped(status);
    }
    match span(scope.start, scope.end, t, abort) {
        Span::Pending => node(Status::Pending, None, "Waiting to start"),
        Span::Finished => finished(scope.outcome.wire(), scope.message.clone()),
        Span::Aborted => finished(Outcome::Failed, abort.map_or("", |a| a.message.as_str())),
        Span::NeverStarted => finished(Outcome::Skipped, "Not started: the task was stopped."),
        Span::Running(_) => {
            let exporting = t < scope.export_end;
            let (from, to) = if exporting {
                (scope.start, scope.export_end)
            } else {
                (scope.export_end, scope.end)
            };
            let fraction = if to > from {
                ((t - from) / (to - from)).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let message = match (scope.is_apps(), exporting) {
                (true, true) => "Exporting app data",
                (true, false) => "Importing app data",
                (false, true) => "Exporting data",
                (false, false) => "Importing data",
            };
            let mut running = node(Status::InProgress, None, message);
            running.progress_details = Some(ProgressDetails {
                is_supported: Some(true),
                percent: percent(fraction),
                data: scope
                    .counters
                    .iter()
                    .map(|(name, total)| ProgressItem {
                        name: name.to_string(),
                        total: Some(*total),
                        processed: Some((*total as f64 * fraction).floor() as u64),
                    })
                    .collect(),
            });
            running
        }
    }
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;

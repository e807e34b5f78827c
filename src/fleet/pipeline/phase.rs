//! The task stage as a state machine: which part of its status a task's polls follow
//! ([`Phase`]), and what each finished-enough reading does — move to the next phase, or end
//! the task. Pure: the poll loop (`watch`) reads the tree, this decides.
//!
//! ```text
//!   Check task:    Checks ──finished──▶ end
//!   Migrate task:  Checks ──passed/warned──▶ Data ──core done──▶ end
//!                    │ failed, not attached,       │ apps still run and --wait-apps
//!                    ▼ unknown                     ▼
//!                   end                           Apps ──apps done (or a scope failed)──▶ end
//! ```

use super::conclusion::judge_checks;
use super::verdict::{ChecksVerdict, DataVerdict};
use super::{PollPhase, TaskEnd, TaskKind};

/// What a task's polls follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The pre-migration checks: a Check task's root, a Migrate task's `check` level.
    Checks,
    /// A Migrate task's data once its checks let it through: the `migrate` level.
    Data,
    /// A Migrate task's scopes still running after its core (apps), followed only with
    /// `--wait-apps`: still the `migrate` level, shown as the `apps` stage.
    Apps,
}

/// One reading of the level a phase follows, as far as the machine cares.
#[derive(Debug)]
pub(super) enum Reading {
    /// The checks have finished, with this verdict.
    Checks(ChecksVerdict),
    /// Where the data level stands (finished or not).
    Data(DataVerdict),
}

/// What the poll loop does after a reading.
#[derive(Debug, PartialEq)]
pub(super) enum Next {
    /// Poll again, in [`TaskPhases::phase`] (which the reading may have moved on).
    Poll,
    /// The task is over for the pipeline.
    End(TaskEnd),
}

/// The machine of one task: where its polls are, and what an earlier phase left for the
/// task's end.
#[derive(Debug)]
pub(super) struct TaskPhases {
    phase: Phase,
    /// Only a Migrate task has a data phase.
    migrate_task: bool,
    /// `--wait-apps`: the task ends when its apps end, not with its core.
    wait_apps: bool,
    /// The checks' verdict once they let the data go on: the task's end carries it.
    checks: ChecksVerdict,
}

impl TaskPhases {
    pub(super) fn new(kind: &TaskKind, wait_apps: bool) -> TaskPhases {
        TaskPhases {
            phase: Phase::Checks,
            migrate_task: *kind == TaskKind::Migrate,
            wait_apps,
            checks: ChecksVerdict::Passed,
        }
    }

    pub(super) fn phase(&self) -> Phase {
        self.phase
    }

    /// Which learned duration the current phase's polls are timed by (the apps are part of
    /// the data's).
    pub(super) fn poll_phase(&self) -> PollPhase {
        match self.phase {
            Phase::Checks => PollPhase::Checks {
                migrate_task: self.migrate_task,
            },
            Phase::Data | Phase::Apps => PollPhase::Data,
        }
    }

    /// The one place where a task moves on: finished checks end a Check task, and a Migrate
    /// task's unless they let its data go on; the data ends the task once its core is done —
    /// with `--wait-apps`, once the apps are done too (or a scope failed: nothing to wait
    /// for). A data level failed as not attached ends as the checks' not-attached failure
    /// (re-attach, one new task).
    pub(super) fn advance(&mut self, reading: Reading) -> Next {
        match reading {
            Reading::Checks(checks) => {
                if !self.migrate_task || !judge_checks(&checks, false).lets_through() {
                    return Next::End(TaskEnd { checks, data: None });
                }
                self.checks = checks;
                self.phase = Phase::Data;
                Next::Poll
            }
            Reading::Data(data) => {
                if data.running_after_core() && self.wait_apps {
                    self.phase = Phase::Apps;
                }
                let done = data.core_finished
                    && (!self.wait_apps || data.after_core.is_empty() || !data.failed.is_empty());
                if !done {
                    return Next::Poll;
                }
                if let Some(message) = data.not_attached() {
                    return Next::End(TaskEnd {
                        checks: ChecksVerdict::NotAttached(message),
                        data: None,
                    });
                }
                Next::End(TaskEnd {
                    checks: self.checks.clone(),
                    data: Some(data),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cma::wire::{StatusNode, StatusResponse};
    use crate::fleet::verdict::{checks_verdict, data_verdict};

    fn tree(json: &str) -> StatusNode {
        serde_json::from_str::<StatusResponse>(json)
            .unwrap()
            .data
            .unwrap()
    }

    fn checks(json: &str) -> Reading {
        Reading::Checks(checks_verdict(&tree(json)))
    }

    fn data(json: &str) -> Reading {
        Reading::Data(data_verdict(&tree(json)))
    }

    const PASSED: &str = r#"{"data":{"status":"FINISHED","outcome":"SUCCESS","children":{"A":{"status":"FINISHED","outcome":"SUCCESS"}}}}"#;
    const WARNED: &str = r#"{"data":{"status":"FINISHED","outcome":"WARNING","children":{"A":{"status":"FINISHED","outcome":"WARNING"}}}}"#;
    const FAILED: &str = r#"{"data":{"status":"FINISHED","outcome":"FAILED","children":{"A":{"status":"FINISHED","outcome":"FAILED"}}}}"#;
    const RUNNING: &str =
        r#"{"data":{"status":"IN_PROGRESS","children":{"projects":{"status":"IN_PROGRESS"}}}}"#;
    const CORE_DONE_APPS_RUN: &str = r#"{"data":{"status":"FINISHED","outcome":"SUCCESS","children":{"projects":{"status":"FINISHED","outcome":"SUCCESS"},"apps":{"status":"IN_PROGRESS"}}}}"#;
    const ALL_DONE: &str = r#"{"data":{"status":"FINISHED","outcome":"SUCCESS","children":{"projects":{"status":"FINISHED","outcome":"SUCCESS"},"apps":{"status":"FINISHED","outcome":"SUCCESS"}}}}"#;

    fn ended(next: Next) -> TaskEnd {
        match next {
            Next::End(end) => end,
            Next::Poll => panic!("the task should have ended"),
        }
    }

    #[test]
    fn a_check_task_ends_with_its_checks_whatever_they_say() {
        for json in [PASSED, WARNED, FAILED] {
            let mut phases = TaskPhases::new(&TaskKind::Check, true);
            assert_eq!(phases.phase(), Phase::Checks);
            let end = ended(phases.advance(checks(json)));
            assert_eq!(end.checks, checks_verdict(&tree(json)));
            assert_eq!(end.data, None);
        }
    }

    #[test]
    fn a_migrate_tasks_checks_that_pass_or_warn_lead_to_its_data_and_others_end_it() {
        for json in [PASSED, WARNED] {
            let mut phases = TaskPhases::new(&TaskKind::Migrate, false);
            assert_eq!(
                phases.poll_phase(),
                PollPhase::Checks { migrate_task: true }
            );
            assert_eq!(phases.advance(checks(json)), Next::Poll);
            assert_eq!(phases.phase(), Phase::Data);
            assert_eq!(phases.poll_phase(), PollPhase::Data);
        }
        let mut phases = TaskPhases::new(&TaskKind::Migrate, false);
        let end = ended(phases.advance(checks(FAILED)));
        assert!(matches!(end.checks, ChecksVerdict::Failed(..)));
        assert_eq!(end.data, None, "no data moves past failed checks");
    }

    #[test]
    fn the_data_ends_the_task_with_its_core_and_carries_the_checks_verdict() {
        let mut phases = TaskPhases::new(&TaskKind::Migrate, false);
        phases.advance(checks(WARNED));
        assert_eq!(phases.advance(data(RUNNING)), Next::Poll);
        assert_eq!(phases.phase(), Phase::Data);
        // Without --wait-apps the apps run on without us.
        let end = ended(phases.advance(data(CORE_DONE_APPS_RUN)));
        assert_eq!(end.checks, ChecksVerdict::Warnings(vec!["A".into()]));
        assert_eq!(end.data.unwrap().after_core, vec!["apps".to_string()]);
        assert_eq!(phases.phase(), Phase::Data, "never waited for the apps");
    }

    #[test]
    fn with_wait_apps_running_apps_are_a_phase_of_their_own_until_they_end() {
        let mut phases = TaskPhases::new(&TaskKind::Migrate, true);
        phases.advance(checks(PASSED));
        assert_eq!(phases.advance(data(CORE_DONE_APPS_RUN)), Next::Poll);
        assert_eq!(phases.phase(), Phase::Apps);
        assert_eq!(phases.poll_phase(), PollPhase::Data);
        assert_eq!(phases.advance(data(CORE_DONE_APPS_RUN)), Next::Poll);
        let end = ended(phases.advance(data(ALL_DONE)));
        assert!(end.data.unwrap().after_core.is_empty());
        // A scope that failed leaves nothing to wait for: the task ends, apps running or not.
        let mut phases = TaskPhases::new(&TaskKind::Migrate, true);
        phases.advance(checks(PASSED));
        let failed = r#"{"data":{"status":"FINISHED","outcome":"FAILED","children":{"projects":{"status":"FINISHED","outcome":"FAILED","message":"Import failed"},"apps":{"status":"IN_PROGRESS"}}}}"#;
        let end = ended(phases.advance(data(failed)));
        assert_eq!(phases.phase(), Phase::Apps);
        assert_eq!(end.data.unwrap().failed.len(), 1);
    }

    #[test]
    fn a_data_level_failed_as_not_attached_ends_as_the_not_attached_failure() {
        let mut phases = TaskPhases::new(&TaskKind::Migrate, false);
        phases.advance(checks(PASSED));
        let lapsed = r#"{"data":{"status":"FINISHED","outcome":"FAILED","children":{"projects":{"status":"FINISHED","outcome":"FAILED","message":"The cloud URL https://a.atlassian.net is not attached through the CMA or the Server ID A is incorrect."}}}}"#;
        let end = ended(phases.advance(data(lapsed)));
        assert!(
            matches!(end.checks, ChecksVerdict::NotAttached(ref m) if m.contains("not attached"))
        );
        assert_eq!(end.data, None);
    }
}

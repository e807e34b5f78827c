//! What a status tree means for a site: its check results, its scope results with progress,
//! and the verdicts the pipeline acts on. Pure functions of the tree, tolerant of every shape
//! the API allows (missing nodes, unknown statuses and outcomes, any casing).

use crate::cma::wire::{Outcome as WireOutcome, StatusNode};
use crate::report::model::{CheckResult, ProgressCounter, ScopeResult};

/// The status levels of a Migrate task that are read by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The pre-migration checks, one child per check.
    Check,
    /// The data, one child per scope (apps among them).
    Migrate,
}

impl Level {
    /// The level's name on the wire (`level=check`) and in a root's children.
    pub fn name(self) -> &'static str {
        match self {
            Level::Check => "check",
            Level::Migrate => "migrate",
        }
    }
}

/// The subtree of `level` when the service answered with the root instead of the level.
pub fn level(node: &StatusNode, level: Level) -> &StatusNode {
    node.children.get(level.name()).unwrap_or(node)
}

/// The node holding a finished task's checks, from its root read with every child: its
/// `check` child once that has finished, else the root itself (a Check task's checks are
/// directly under its root in the documented shape; a task that ended at its root, e.g.
/// not attached, may have no check node at all).
pub fn checks_of_root(root: &StatusNode) -> &StatusNode {
    match root.children.get(Level::Check.name()) {
        Some(check) if check.is_finished() => check,
        _ => root,
    }
}

/// What a site's message says of a task that ended badly with a status the API model does
/// not know (stopped, incomplete), in the service's words.
fn ended_oddly(node: &StatusNode) -> Option<String> {
    node.odd_ending()
        .map(|ending| format!("task ended with {ending}"))
}

/// Text of a status or outcome for reports ("IN_PROGRESS", "FAILED", or what the service said).
fn text_of<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Every check under a check-level node, sorted by name.
pub fn check_results(check_level: &StatusNode) -> Vec<CheckResult> {
    check_level
        .children
        .iter()
        .map(|(name, node)| {
            let details = node.details.clone().unwrap_or_default();
            CheckResult {
                name: name.clone(),
                status: text_of(&node.status),
                outcome: text_of(&node.outcome),
                message: node.message.clone(),
                occurrences: details.occurrences,
                excludable: details.excludable,
                description: details.description,
            }
        })
        .collect()
}

/// Every scope under a migrate-level node, with its latest progress counters.
pub fn scope_results(migrate_level: &StatusNode) -> Vec<ScopeResult> {
    migrate_level
        .children
        .iter()
        .map(|(name, node)| {
            let progress = node.progress_details.clone().unwrap_or_default();
            ScopeResult {
                name: name.clone(),
                status: text_of(&node.status),
                outcome: node.outcome.as_ref().map(ToString::to_string),
                message: node.message.clone(),
                percent: progress.percent,
                progress: progress
                    .data
                    .into_iter()
                    .map(|item| ProgressCounter {
                        name: item.name,
                        total: item.total,
                        processed: item.processed,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Whether a message is the service's "not attached / wrong Server ID" failure.
fn is_not_attached(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("not attached") || message.contains("server id is incorrect")
}

/// How a finished check level came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksVerdict {
    Passed,
    /// Names of the checks that warned.
    Warnings(Vec<String>),
    /// Names of the checks that failed (may be empty when only the level says FAILED).
    Failed(Vec<String>, String),
    /// The task could not run: the cloud site is not attached (or the Server ID is wrong).
    NotAttached(String),
    /// An outcome this version does not know.
    Unknown(String),
}

/// Reads a FINISHED check level (or a FINISHED root whose check level never appeared).
pub fn checks_verdict(node: &StatusNode) -> ChecksVerdict {
    let message = node.message.clone().unwrap_or_default();
    let named = |wanted: WireOutcome| -> Vec<String> {
        node.children
            .iter()
            .filter(|(_, child)| child.outcome.as_ref() == Some(&wanted))
            .map(|(name, _)| name.clone())
            .collect()
    };
    let failed = named(WireOutcome::Failed);
    if is_not_attached(&message)
        || node
            .children
            .values()
            .any(|c| c.message.as_deref().is_some_and(is_not_attached))
    {
        let reason = if is_not_attached(&message) {
            message
        } else {
            node.children
                .values()
                .filter_map(|c| c.message.clone())
                .find(|m| is_not_attached(m))
                .unwrap_or_default()
        };
        return ChecksVerdict::NotAttached(reason);
    }
    // Judged by the outcome, whatever the status says; a status the model does not know
    // is named in the message when no failed check says more.
    let message = match ended_oddly(node) {
        Some(ending) if failed.is_empty() => ending,
        _ => message,
    };
    match &node.outcome {
        Some(WireOutcome::Failed) => ChecksVerdict::Failed(failed, message),
        _ if !failed.is_empty() => ChecksVerdict::Failed(failed, message),
        Some(WireOutcome::Warning) => ChecksVerdict::Warnings(named(WireOutcome::Warning)),
        Some(WireOutcome::Success) | Some(WireOutcome::Skipped) | None => {
            let warned = named(WireOutcome::Warning);
            if warned.is_empty() {
                ChecksVerdict::Passed
            } else {
                ChecksVerdict::Warnings(warned)
            }
        }
        Some(WireOutcome::Unknown(other)) => ChecksVerdict::Unknown(other.clone()),
    }
}

/// Where a migrate level stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataVerdict {
    /// Core data is done: the `migrate` level itself has finished. (Scopes appear as they
    /// start, so their being finished says nothing of those still to come.)
    pub core_finished: bool,
    /// Scopes still running once the core finished (apps, whatever their name: `apps`,
    /// `arapps`, …): a normal state, not an error.
    pub after_core: Vec<String>,
    /// The level ended with a status other than FINISHED (stopped, incomplete): the
    /// service's words ([`ended_oddly`]).
    pub ended: Option<String>,
    /// Scopes that FAILED, with their messages.
    pub failed: Vec<(String, String)>,
    /// Scopes that finished with WARNING.
    pub warnings: Vec<String>,
    /// Scopes with an outcome this version does not know.
    pub unknown: Vec<(String, String)>,
    /// The data level failed because the attach lapsed while it ran (or the Server ID is
    /// wrong): the service's message, for a re-attach and one new task.
    pub not_attached: Option<String>,
}

impl DataVerdict {
    /// The not-attached failure, when a scope failed with it: the attach lapsed while the
    /// task ran (the retry rule of the check level applies: re-attach, one new task).
    pub fn not_attached(&self) -> Option<String> {
        self.failed
            .iter()
            .map(|(_, message)| message)
            .find(|message| is_not_attached(message))
            .cloned()
    }
}

impl DataVerdict {
    /// Some scope still runs after the core finished.
    pub fn running_after_core(&self) -> bool {
        self.core_finished && !self.after_core.is_empty()
    }

    /// The core migrated well (nothing failed, ended badly or unknown) and apps run on: the
    /// site is migrated, and its task is to be followed up until they end.
    pub fn migrated_with_apps_running(&self) -> bool {
        self.running_after_core()
            && self.failed.is_empty()
            && self.unknown.is_empty()
            && self.ended.is_none()
    }
}

pub fn data_verdict(migrate_level: &StatusNode) -> DataVerdict {
    let mut verdict = DataVerdict {
        core_finished: migrate_level.is_finished(),
        ended: ended_oddly(migrate_level).map(|ended| {
            format!("{ended} (re-migrating may need cleanup in the cloud site first)")
        }),
        ..DataVerdict::default()
    };
    verdict.after_core = migrate_level
        .children
        .iter()
        .filter(|(_, node)| !node.is_finished())
        .map(|(name, _)| name.clone())
        .collect();
    for (name, node) in &migrate_level.children {
        if !node.is_finished() {
            continue;
        }
        match &node.outcome {
            Some(WireOutcome::Failed) => {
                verdict
                    .failed
                    .push((name.clone(), node.message.clone().unwrap_or_default()));
            }
            Some(WireOutcome::Warning) => verdict.warnings.push(name.clone()),
            Some(WireOutcome::Unknown(other)) => {
                verdict.unknown.push((name.clone(), other.clone()))
            }
            _ => {}
        }
    }
    if verdict.core_finished
        && verdict.failed.is_empty()
        && migrate_level.outcome == Some(WireOutcome::Failed)
    {
        let message = migrate_level
            .message
            .clone()
            .unwrap_or_else(|| "migration FAILED".into());
        verdict
            .failed
            .push((Level::Migrate.name().to_owned(), message));
    }
    verdict.not_attached = verdict
        .failed
        .iter()
        .map(|(_, message)| message)
        .find(|message| is_not_attached(message))
        .cloned();
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(json: &str) -> StatusNode {
        serde_json::from_str::<crate::cma::wire::StatusResponse>(json)
            .unwrap()
            .data
            .unwrap()
    }

    #[test]
    fn a_scope_failed_as_not_attached_is_told_apart_from_a_data_failure() {
        let lapsed = tree(
            r#"{"data":{"status":"FINISHED","outcome":"FAILED","children":{
                "projects":{"status":"FINISHED","outcome":"FAILED","message":"The cloud URL https://a.atlassian.net is not attached through the CMA or the Server ID A is incorrect."},
                "usersAndGroups":{"status":"FINISHED","outcome":"SKIPPED"}}}}"#,
        );
        let verdict = data_verdict(&lapsed);
        assert!(verdict.not_attached().unwrap().contains("not attached"));
        let broken = tree(
            r#"{"data":{"status":"FINISHED","outcome":"FAILED","children":{
                "projects":{"status":"FINISHED","outcome":"FAILED","message":"Import of ABC failed"}}}}"#,
        );
        assert_eq!(data_verdict(&broken).not_attached(), None);
    }

    #[test]
    fn failed_checks_are_named_and_warnings_pass() {
        let node = tree(
            r#"{"data":{"status":"FINISHED","outcome":"FAILED","message":"At least one Preflight check has failed.",
            "children":{"AnonPermission":{"status":"FINISHED","outcome":"warning"},
                        "MissingAttachments":{"status":"FINISHED","outcome":"FAILED","details":{"occurrences":["ABC-1"],"excludable":false}},
                        "DatabaseSize":{"status":"FINISHED","outcome":"SUCCESS"}}}}"#,
        );
        assert_eq!(
            checks_verdict(&node),
            ChecksVerdict::Failed(
                vec!["MissingAttachments".into()],
                "At least one Preflight check has failed.".into()
            )
        );
        let results = check_results(&node);
        assert_eq!(results.len(), 3);
        let missing = results
            .iter()
            .find(|r| r.name == "MissingAttachments")
            .unwrap();
        assert_eq!(missing.occurrences, vec!["ABC-1"]);
        assert_eq!(missing.excludable, Some(false));
        assert_eq!(
            results
                .iter()
                .find(|r| r.name == "AnonPermission")
                .unwrap()
                .outcome,
            "WARNING"
        );
    }

    #[test]
    fn warnings_without_a_level_outcome_still_count() {
        let node = tree(
            r#"{"data":{"status":"finished","children":{"A":{"status":"FINISHED","outcome":"WARNING"}}}}"#,
        );
        assert_eq!(
            checks_verdict(&node),
            ChecksVerdict::Warnings(vec!["A".into()])
        );
    }

    #[test]
    fn the_not_attached_failure_is_recognised_anywhere() {
        let node = tree(
            r#"{"data":{"status":"FINISHED","outcome":"FAILED",
            "message":"The cloud URL https://acme.atlassian.net is not attached through the Cloud Migration Assistant, or the Server ID is incorrect."}}"#,
        );
        assert!(matches!(
            checks_verdict(&node),
            ChecksVerdict::NotAttached(_)
        ));
    }

    #[test]
    fn unknown_outcomes_are_kept() {
        let node = tree(r#"{"data":{"status":"FINISHED","outcome":"PARTIAL"}}"#);
        assert_eq!(
            checks_verdict(&node),
            ChecksVerdict::Unknown("PARTIAL".into())
        );
    }

    #[test]
    fn apps_after_core_and_failed_scopes() {
        let node = tree(
            r#"{"data":{"status":"IN_PROGRESS","children":{
                "projects":{"status":"FINISHED","outcome":"SUCCESS"},
                "usersAndGroups":{"status":"FINISHED","outcome":"WARNING"},
                "apps":{"status":"IN_PROGRESS","progressDetails":{"percent":40,"data":[{"name":"Apps","total":5,"processed":2}]}}}}}"#,
        );
        let verdict = data_verdict(&node);
        assert!(
            !verdict.core_finished,
            "every scope seen has finished, but the level itself has not"
        );
        let node = tree(
            r#"{"data":{"status":"FINISHED","outcome":"WARNING","children":{
                "projects":{"status":"FINISHED","outcome":"SUCCESS"},
                "usersAndGroups":{"status":"FINISHED","outcome":"WARNING"},
                "arapps":{"status":"IN_PROGRESS","progressDetails":{"percent":40,"data":[{"name":"Apps","total":5,"processed":2}]}}}}}"#,
        );
        let verdict = data_verdict(&node);
        assert!(verdict.core_finished);
        assert!(verdict.running_after_core());
        assert_eq!(verdict.after_core, vec!["arapps".to_string()]);
        assert_eq!(verdict.warnings, vec!["usersAndGroups".to_string()]);
        assert!(verdict.failed.is_empty());

        let failed = tree(
            r#"{"data":{"status":"FINISHED","outcome":"FAILED","children":{
                "spaces":{"status":"FINISHED","outcome":"FAILED","message":"Export failed"}}}}"#,
        );
        assert_eq!(
            data_verdict(&failed).failed,
            vec![("spaces".to_string(), "Export failed".to_string())]
        );
        assert_eq!(data_verdict(&failed).not_attached, None);
    }

    #[test]
    fn an_attach_lapse_in_the_data_phase_is_the_not_attached_failure() {
        let node = tree(
            r#"{"data":{"status":"FINISHED","outcome":"FAILED","children":{
                "projects":{"status":"FINISHED","outcome":"FAILED","message":"The cloud URL https://acme.atlassian.net is not attached through the CMA or the Server ID acme is incorrect."},
                "usersAndGroups":{"status":"FINISHED","outcome":"SKIPPED"}}}}"#,
        );
        let verdict = data_verdict(&node);
        assert_eq!(verdict.failed.len(), 1);
        assert!(
            verdict
                .not_attached
                .as_deref()
                .is_some_and(|message| message.contains("not attached"))
        );
    }

    #[test]
    fn a_stopped_migration_is_finished_and_says_what_the_service_said() {
        let node = tree(
            r#"{"data":{"status":"STOPPED","outcome":"FAILED","message":"The migration was stopped.","children":{
                "projects":{"status":"STOPPED","outcome":"FAILED","message":"The migration was stopped."}}}}"#,
        );
        let verdict = data_verdict(&node);
        assert!(verdict.core_finished);
        let ended = verdict.ended.unwrap();
        assert!(
            ended.starts_with(
                "task ended with status STOPPED, outcome FAILED: The migration was stopped."
            ),
            "{ended}"
        );
        assert!(ended.contains("cleanup"), "{ended}");
        let checks = tree(r#"{"data":{"status":"Incomplete","outcome":"failed"}}"#);
        assert!(
            matches!(checks_verdict(&checks), ChecksVerdict::Failed(names, message)
            if names.is_empty() && message.contains("status Incomplete, outcome FAILED"))
        );
        let completed = tree(
            r#"{"data":{"status":"COMPLETED","outcome":"FAILED","children":{"MissingAttachments":{"status":"COMPLETED","outcome":"FAILED"}}}}"#,
        );
        assert!(
            matches!(checks_verdict(&completed), ChecksVerdict::Failed(names, _)
            if names == ["MissingAttachments".to_string()])
        );
    }

    #[test]
    fn an_unknown_status_without_an_outcome_is_still_running() {
        let node =
            tree(r#"{"data":{"status":"RUNNING","children":{"projects":{"status":"QUEUED"}}}}"#);
        assert!(!node.is_finished());
        assert!(!data_verdict(&node).core_finished);
        assert_eq!(
            node.unknown_values(),
            vec![(true, "RUNNING".to_owned()), (true, "QUEUED".to_owned())]
        );
    }

    #[test]
    fn a_check_task_root_holds_its_checks_or_a_check_node() {
        let flat = tree(
            r#"{"data":{"status":"FINISHED","outcome":"WARNING","children":{"AnonPermission":{"status":"FINISHED","outcome":"WARNING"}}}}"#,
        );
        assert_eq!(
            checks_verdict(checks_of_root(&flat)),
            ChecksVerdict::Warnings(vec!["AnonPermission".into()])
        );
        let nested = tree(
            r#"{"data":{"status":"FINISHED","outcome":"WARNING","children":{"check":{"status":"FINISHED","outcome":"WARNING","children":{"AnonPermission":{"status":"FINISHED","outcome":"WARNING"}}}}}}"#,
        );
        assert_eq!(check_results(checks_of_root(&nested)).len(), 1);
    }

    #[test]
    fn a_level_wrapped_in_its_root_is_unwrapped() {
        let root = tree(
            r#"{"data":{"status":"IN_PROGRESS","children":{"check":{"status":"FINISHED","outcome":"SUCCESS"}}}}"#,
        );
        assert_eq!(
            level(&root, Level::Check).outcome,
            Some(WireOutcome::Success)
        );
        let bare =
            tree(r#"{"data":{"status":"FINISHED","outcome":"SUCCESS","children":{"A":{}}}}"#);
        assert_eq!(
            level(&bare, Level::Check).outcome,
            Some(WireOutcome::Success)
        );
    }
}

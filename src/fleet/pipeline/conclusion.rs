//! How a task and a site end: the one mapping from a check verdict and a data verdict to a
//! [`Judgement`] and the line a person reads first, the site's [`Conclusion`] drawn from it,
//! and which failures may be systemic (the breaker's signature).

use super::verdict::{self, ChecksVerdict};
use super::{ApiError, ErrorKind, FailureSignature, Outcome, Stage};
use crate::vocab::Judgement;

/// Where and how a site failed, when other sites of its cloud user would likely fail the
/// same way: a 4xx answer (its status and words) or the API out of reach.
pub(super) fn systemic(error: &ApiError, stage: Stage) -> Option<FailureSignature> {
    let answer = match (error.kind.clone(), error.status) {
        (ErrorKind::Connect, _) => format!("unreachable: {}", error.message),
        (ErrorKind::RateLimited { .. }, _) => return None,
        (_, Some(status)) if (400..500).contains(&status) => {
            format!("HTTP {status}: {}", error.message)
        }
        _ => return None,
    };
    Some(FailureSignature { stage, answer })
}

/// How a site ends: its outcome, the one line a person reads first, and whether data was
/// migrated (a migrated site is not migrated again without `--remigrate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Conclusion {
    pub(super) outcome: Outcome,
    pub(super) message: String,
    pub(super) migrated: bool,
}

impl Conclusion {
    pub(super) fn new(outcome: Outcome, message: impl Into<String>) -> Conclusion {
        Conclusion {
            outcome,
            message: message.into(),
            migrated: false,
        }
    }

    /// A site whose data migrated.
    pub(super) fn migrated(outcome: Outcome, message: impl Into<String>) -> Conclusion {
        Conclusion {
            migrated: true,
            ..Conclusion::new(outcome, message)
        }
    }

    /// This conclusion said of a Migrate that never moved data.
    pub(super) fn no_data_moved(self, prefix: &str) -> Conclusion {
        Conclusion {
            message: format!("{prefix}{}; no data moved", self.message),
            ..self
        }
    }
}

/// What a finished task's checks or data say: cmafleet's judgement and the one line a
/// person reads first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Judged {
    pub(super) judgement: Judgement,
    pub(super) message: String,
}

impl Judged {
    fn new(judgement: Judgement, message: impl Into<String>) -> Judged {
        Judged {
            judgement,
            message: message.into(),
        }
    }

    /// The site may go on past these checks (they passed, or only warned).
    pub(super) fn lets_through(&self) -> bool {
        self.judgement.went_well()
    }
}

impl From<Judged> for Conclusion {
    fn from(judged: Judged) -> Conclusion {
        Conclusion::new(judged.judgement.into(), judged.message)
    }
}

/// The one mapping from a check verdict to a judgement: check mode's conclusion, the
/// precheck gate, the Migrate task's check level and every task's recorded judgement use
/// it. Warnings block only with `block_on_warnings`.
pub(super) fn judge_checks(checks: &ChecksVerdict, block_on_warnings: bool) -> Judged {
    match checks {
        ChecksVerdict::Passed => Judged::new(Judgement::Succeeded, "all checks passed"),
        ChecksVerdict::Warnings(names) if !block_on_warnings => Judged::new(
            Judgement::Warnings,
            format!("checks warned: {}", names.join(", ")),
        ),
        ChecksVerdict::Warnings(names) => Judged::new(
            Judgement::Blocked,
            format!(
                "checks warned (blocking with --block-on-warnings): {}",
                names.join(", ")
            ),
        ),
        ChecksVerdict::Failed(names, message) => {
            Judged::new(Judgement::Blocked, failed_checks_message(names, message))
        }
        ChecksVerdict::NotAttached(message) => Judged::new(
            Judgement::Failed,
            format!("not attached after a re-attach: {message}"),
        ),
        ChecksVerdict::Unknown(outcome) => Judged::new(
            Judgement::Blocked,
            format!("checks ended with an unknown outcome `{outcome}`"),
        ),
    }
}

/// What a finished data level concludes, with the checks' `warnings` so far: a site whose
/// data migrated (with or without warnings) is marked migrated.
pub(super) fn data_conclusion(data: &verdict::DataVerdict, warnings: Vec<String>) -> Conclusion {
    let judged = judge_data(data, warnings);
    Conclusion {
        migrated: judged.judgement.went_well(),
        ..Conclusion::from(judged)
    }
}

/// The one mapping from a data verdict to a judgement, with the checks' `warnings` so far.
pub(super) fn judge_data(data: &verdict::DataVerdict, mut warnings: Vec<String>) -> Judged {
    if let Some(ended) = &data.ended {
        return Judged::new(Judgement::Failed, ended.clone());
    }
    if !data.failed.is_empty() {
        let detail: Vec<String> = data
            .failed
            .iter()
            .map(|(scope, message)| format!("{scope}: {message}"))
            .collect();
        return Judged::new(
            Judgement::Failed,
            format!("migration failed — {}", detail.join("; ")),
        );
    }
    if !data.unknown.is_empty() {
        let detail: Vec<String> = data
            .unknown
            .iter()
            .map(|(scope, outcome)| format!("{scope}: {outcome}"))
            .collect();
        return Judged::new(
            Judgement::Failed,
            format!(
                "migration ended with unknown outcomes — {}",
                detail.join("; ")
            ),
        );
    }
    warnings.extend(data.warnings.iter().map(|scope| format!("scope {scope}")));
    // The one line a person reads first says what goes on after this run.
    let after = if data.running_after_core() {
        format!("; still running after core: {}", data.after_core.join(", "))
    } else {
        String::new()
    };
    if warnings.is_empty() {
        Judged::new(Judgement::Succeeded, format!("migrated{after}"))
    } else {
        Judged::new(
            Judgement::Warnings,
            format!("migrated with warnings: {}{after}", warnings.join(", ")),
        )
    }
}

fn failed_checks_message(names: &[String], message: &str) -> String {
    if names.is_empty() {
        if message.is_empty() {
            "checks failed".into()
        } else {
            format!("checks failed: {message}")
        }
    } else {
        format!("checks failed: {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::TaskEnd;
    use super::*;
    use crate::fleet::verdict::DataVerdict;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn checks_are_judged_one_way_whoever_asks() {
        use Judgement::*;
        // The verdict, its judgement, with --block-on-warnings, and the line people read.
        let cases = [
            (
                ChecksVerdict::Passed,
                Succeeded,
                Succeeded,
                "all checks passed",
            ),
            (
                ChecksVerdict::Warnings(names(&["A", "B"])),
                Warnings,
                Blocked,
                "checks warned: A, B",
            ),
            (
                ChecksVerdict::Failed(names(&["C"]), "At least one check failed.".into()),
                Blocked,
                Blocked,
                "checks failed: C",
            ),
            (
                ChecksVerdict::Failed(Vec::new(), String::new()),
                Blocked,
                Blocked,
                "checks failed",
            ),
            (
                ChecksVerdict::NotAttached("not attached".into()),
                Failed,
                Failed,
                "not attached after a re-attach: not attached",
            ),
            (
                ChecksVerdict::Unknown("PARTIAL".into()),
                Blocked,
                Blocked,
                "checks ended with an unknown outcome `PARTIAL`",
            ),
        ];
        for (verdict, judgement, blocking, message) in cases {
            let judged = judge_checks(&verdict, false);
            assert_eq!(judged, Judged::new(judgement, message), "{verdict:?}");
            assert_eq!(judged.lets_through(), judgement.went_well());
            assert_eq!(judge_checks(&verdict, true).judgement, blocking);
            assert_eq!(
                Conclusion::from(judged),
                Conclusion::new(judgement.into(), message),
                "a check run concludes as its checks are judged"
            );
        }
        assert_eq!(
            judge_checks(&ChecksVerdict::Warnings(names(&["A"])), true).message,
            "checks warned (blocking with --block-on-warnings): A"
        );
    }

    #[test]
    fn a_tasks_judgement_is_its_checks_unless_they_let_its_data_decide() {
        let clean = DataVerdict {
            core_finished: true,
            ..DataVerdict::default()
        };
        let warned = DataVerdict {
            warnings: names(&["users"]),
            ..clean.clone()
        };
        let failed = DataVerdict {
            failed: vec![("projects".into(), "Import failed".into())],
            ..clean.clone()
        };
        let judged = |checks: ChecksVerdict, data: Option<&DataVerdict>| {
            TaskEnd {
                checks,
                data: data.cloned(),
            }
            .judgement()
        };
        let warnings = || ChecksVerdict::Warnings(names(&["A"]));
        assert_eq!(judged(warnings(), None), Judgement::Warnings);
        // The checks' warnings are the site's: the data alone judges a Migrate task.
        assert_eq!(judged(warnings(), Some(&clean)), Judgement::Succeeded);
        assert_eq!(
            judged(ChecksVerdict::Passed, Some(&warned)),
            Judgement::Warnings
        );
        assert_eq!(
            judged(ChecksVerdict::Passed, Some(&failed)),
            Judgement::Failed
        );
        let blocked = ChecksVerdict::Failed(names(&["C"]), String::new());
        assert_eq!(judged(blocked, Some(&clean)), Judgement::Blocked);
    }

    #[test]
    fn only_data_that_went_well_marks_the_site_migrated() {
        let clean = DataVerdict {
            core_finished: true,
            ..DataVerdict::default()
        };
        let site = data_conclusion(&clean, names(&["A"]));
        assert_eq!(site.outcome, Outcome::Warnings);
        assert_eq!(site.message, "migrated with warnings: A");
        assert!(site.migrated);
        let failed = DataVerdict {
            ended: Some("task ended with status STOPPED".into()),
            ..clean
        };
        let site = data_conclusion(&failed, Vec::new());
        assert_eq!(site.outcome, Outcome::Failed);
        assert!(!site.migrated);
    }
}

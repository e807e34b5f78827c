//! How a site ends, in the outcome vocabulary: the one mapping from a check verdict and a data
//! verdict to an outcome and the line a person reads first, and which failures may be
//! systemic (the breaker's signature).

use super::verdict::{self, ChecksVerdict};
use super::{ApiError, ErrorKind, FailureSignature, Outcome, Stage};

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

/// What finished checks conclude on their own, or `None` when they let the site go on
/// (passed, or warned without `block_on_warnings`). The one mapping from a check verdict to
/// an outcome: check mode, the precheck gate and the Migrate task's check level all use it.
pub(super) fn checks_conclusion(
    checks: &ChecksVerdict,
    block_on_warnings: bool,
) -> Option<Conclusion> {
    let (outcome, message) = match checks {
        ChecksVerdict::Passed => return None,
        ChecksVerdict::Warnings(_) if !block_on_warnings => return None,
        ChecksVerdict::Warnings(names) => (
            Outcome::Blocked,
            format!(
                "checks warned (blocking with --block-on-warnings): {}",
                names.join(", ")
            ),
        ),
        ChecksVerdict::Failed(names, message) => {
            (Outcome::Blocked, failed_checks_message(names, message))
        }
        ChecksVerdict::NotAttached(message) => (
            Outcome::Failed,
            format!("not attached after a re-attach: {message}"),
        ),
        ChecksVerdict::Unknown(outcome) => (
            Outcome::Blocked,
            format!("checks ended with an unknown outcome `{outcome}`"),
        ),
    };
    Some(Conclusion::new(outcome, message))
}

/// What a finished data level concludes, with the checks' `warnings` so far.
pub(super) fn data_conclusion(
    data: &verdict::DataVerdict,
    mut warnings: Vec<String>,
) -> Conclusion {
    if let Some(ended) = &data.ended {
        return Conclusion::new(Outcome::Failed, ended.clone());
    }
    if !data.failed.is_empty() {
        let detail: Vec<String> = data
            .failed
            .iter()
            .map(|(scope, message)| format!("{scope}: {message}"))
            .collect();
        return Conclusion::new(
            Outcome::Failed,
            format!("migration failed — {}", detail.join("; ")),
        );
    }
    if !data.unknown.is_empty() {
        let detail: Vec<String> = data
            .unknown
            .iter()
            .map(|(scope, outcome)| format!("{scope}: {outcome}"))
            .collect();
        return Conclusion::new(
            Outcome::Failed,
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
    let (outcome, message) = if warnings.is_empty() {
        (Outcome::Succeeded, format!("migrated{after}"))
    } else {
        (
            Outcome::Warnings,
            format!("migrated with warnings: {}{after}", warnings.join(", ")),
        )
    };
    Conclusion {
        outcome,
        message,
        migrated: true,
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

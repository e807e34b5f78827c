//! The run's vocabulary: [`Mode`], a site's [`Stage`], its final [`Outcome`] and a finished
//! task's [`Judgement`]. Every layer speaks these words (the engine, the state store, the
//! metrics and the reports), so they live at the bottom and import nothing of the crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a run does to each site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Pre-migration checks only; moves no data.
    Check,
    /// Checks, then data.
    Migrate,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Check => "check",
            Mode::Migrate => "migrate",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "check" => Ok(Mode::Check),
            "migrate" => Ok(Mode::Migrate),
            other => Err(format!(
                "unknown mode `{other}` (expected check or migrate)"
            )),
        }
    }
}

/// How a site ended (the README lists them under "Exit codes", as users read them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Warnings,
    Blocked,
    Failed,
    Detached,
    Skipped,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Succeeded,
        Outcome::Warnings,
        Outcome::Blocked,
        Outcome::Failed,
        Outcome::Detached,
        Outcome::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Warnings => "warnings",
            Outcome::Blocked => "blocked",
            Outcome::Failed => "failed",
            Outcome::Detached => "detached",
            Outcome::Skipped => "skipped",
        }
    }

    /// Whether this outcome alone keeps the exit code at 0.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            Outcome::Succeeded | Outcome::Warnings | Outcome::Skipped
        )
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a site is in its pipeline. `cmafleet_site_stage` has one series per site whose
/// `stage` label is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Not admitted yet (waiting for a concurrency or per-server slot).
    Queued,
    /// Creating a connect token and saving it on the server.
    Connect,
    /// Creating (or reusing) the job.
    Job,
    /// Attaching the cloud site on the server.
    Attach,
    /// A Check task (check mode, or `--precheck`) running.
    Check,
    /// A Migrate task running (its check level, then its scopes).
    Migrate,
    /// Core data done, apps still migrating (`--wait-apps`).
    Apps,
    /// Downloading artifacts and writing the site's report.
    Collect,
    /// Finished; the outcome says how.
    Done,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::Queued,
        Stage::Connect,
        Stage::Job,
        Stage::Attach,
        Stage::Check,
        Stage::Migrate,
        Stage::Apps,
        Stage::Collect,
        Stage::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Connect => "connect",
            Stage::Job => "job",
            Stage::Attach => "attach",
            Stage::Check => "check",
            Stage::Migrate => "migrate",
            Stage::Apps => "apps",
            Stage::Collect => "collect",
            Stage::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.as_str() == text)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// cmafleet's judgement of one finished task, kept apart from the service's own outcome
/// word (`SUCCESS`, `FAILED`, …): a task is judged by its checks and its scopes, and only
/// these four ends are a task's (`skipped` and `detached` are a site's, never a task's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Judgement {
    Succeeded,
    Warnings,
    Blocked,
    Failed,
}

impl Judgement {
    pub const ALL: [Judgement; 4] = [
        Judgement::Succeeded,
        Judgement::Warnings,
        Judgement::Blocked,
        Judgement::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        Outcome::from(self).as_str()
    }

    pub fn parse(text: &str) -> Option<Judgement> {
        Judgement::ALL
            .into_iter()
            .find(|judgement| judgement.as_str() == text)
    }

    /// Whether the task moved the site's data (or, for a Check, let it move): a later run
    /// must not create a second migration of it unless asked to.
    pub fn went_well(self) -> bool {
        matches!(self, Judgement::Succeeded | Judgement::Warnings)
    }
}

impl From<Judgement> for Outcome {
    fn from(judgement: Judgement) -> Outcome {
        match judgement {
            Judgement::Succeeded => Outcome::Succeeded,
            Judgement::Warnings => Outcome::Warnings,
            Judgement::Blocked => Outcome::Blocked,
            Judgement::Failed => Outcome::Failed,
        }
    }
}

impl TryFrom<Outcome> for Judgement {
    /// The site outcome that no task can end with.
    type Error = Outcome;
    fn try_from(outcome: Outcome) -> Result<Judgement, Outcome> {
        match outcome {
            Outcome::Succeeded => Ok(Judgement::Succeeded),
            Outcome::Warnings => Ok(Judgement::Warnings),
            Outcome::Blocked => Ok(Judgement::Blocked),
            Outcome::Failed => Ok(Judgement::Failed),
            other => Err(other),
        }
    }
}

impl fmt::Display for Judgement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

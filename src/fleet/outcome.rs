//! The run's vocabulary: [`Mode`], a site's [`Stage`] and its final [`Outcome`] (SPEC.md).
//! Reports, metrics and the state store all speak these words.

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

/// How a site ended (SPEC.md, "Site outcomes").
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

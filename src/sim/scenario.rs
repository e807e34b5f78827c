//! The scenario file (`--scenario FILE`, TOML or YAML): its format, loading, and the errors
//! that name the line and what is wrong. `inventories/scenarios.md` documents the format.
//!
//! Every table refuses unknown keys, and every value is validated while it is read, so a typo
//! is reported with its line instead of being silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::shapes::{ApiShapes, Shapes, ShapesSpec};
use super::values::{
    ClockMode, DurationValue, LastPage, LinkForm, LostCreateMode, PlannedOutcome, Probability,
    Rate, RetryAfterForm, StatusOrder, TimeFormat,
};

/// A loaded scenario (see `inventories/scenario-example.toml`). `Scenario::default()` is the
/// scenario of no file: every server healthy, with realistic durations.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub(crate) file: ScenarioFile,
}

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ScenarioError {
    pub path: String,
    pub message: String,
}

impl Scenario {
    /// Loads TOML or YAML (by extension); a bad file names the line and what is wrong.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| ScenarioError {
            path: shown.clone(),
            message: format!("cannot read the scenario file: {err}"),
        })?;
        let yaml = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml"));
        let parsed = if yaml {
            Scenario::parse_yaml(&text)
        } else {
            Scenario::parse_toml(&text)
        };
        parsed.map_err(|message| ScenarioError {
            path: shown,
            message,
        })
    }

    /// Parses a TOML scenario. The error names the line and column.
    pub fn parse_toml(text: &str) -> Result<Scenario, String> {
        let file: ScenarioFile = toml::from_str(text).map_err(|err| {
            let place = err
                .span()
                .map(|span| line_and_column(text, span.start))
                .map(|(line, column)| format!("line {line}, column {column}: "))
                .unwrap_or_default();
            format!("{place}{}", err.message().trim_end())
        })?;
        Scenario::validated(file, text)
    }

    /// Parses a YAML scenario. The error names the line and column.
    pub fn parse_yaml(text: &str) -> Result<Scenario, String> {
        let file: ScenarioFile = serde_yaml_ng::from_str(text).map_err(|err| {
            let place = err
                .location()
                .map(|at| format!("line {}, column {}: ", at.line(), at.column()))
                .unwrap_or_default();
            // The YAML message repeats the location at its end; keep only the problem.
            let message = err.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            format!("{place}{message}")
        })?;
        Scenario::validated(file, text)
    }

    /// The checks that span several tables (and so cannot be made while reading one value).
    fn validated(file: ScenarioFile, text: &str) -> Result<Scenario, String> {
        if file.defaults.server_id.is_some() {
            let line = locate(text, &["defaults", "server_id"]);
            return Err(format!(
                "{}`server_id` cannot be a default: each server has its own (set it under servers.<name>)",
                line_prefix(line)
            ));
        }
        if let Some(key) = file.shapes.also_in_api(&file.api.shapes()).first() {
            let line = locate(text, &["shapes", key]);
            return Err(format!(
                "{}`{key}` is set in both [api] and [shapes]: set it in one of them",
                line_prefix(line)
            ));
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, server) in &file.servers {
            let id = server.server_id.as_deref().unwrap_or(name.0.as_str());
            if let Some(other) = seen.insert(id, name.0.as_str()) {
                let line = locate(text, &[name.0.as_str(), "server_id"]);
                return Err(format!(
                    "{}servers `{other}` and `{name}` have the same Server ID `{id}`",
                    line_prefix(line)
                ));
            }
        }
        Ok(Scenario { file })
    }
}

fn line_prefix(line: Option<usize>) -> String {
    line.map(|line| format!("line {line}: "))
        .unwrap_or_default()
}

/// 1-based line and column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Best effort: the line of the last needle, each needle searched after the previous one.
fn locate(text: &str, needles: &[&str]) -> Option<usize> {
    let mut from = 0;
    let mut found = None;
    for needle in needles {
        let at = text[from..].find(needle)? + from;
        found = Some(at);
        from = at + needle.len();
    }
    found.map(|at| line_and_column(text, at).0)
}

/// The whole file. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioFile {
    /// Seeds every fault decision and, when given, the job/task ids (so a run repeats exactly).
    pub seed: Option<u64>,
    /// `real` (default) or `manual` (time moves only through `POST /_sim/clock/advance`).
    #[serde(default)]
    pub clock: ClockMode,
    #[serde(default)]
    pub api: ApiSpec,
    #[serde(default)]
    pub rate_limits: RateLimitsSpec,
    /// Applies to every server, overridden per server.
    #[serde(default)]
    pub defaults: ServerSpec,
    #[serde(default)]
    pub servers: BTreeMap<ServerName, ServerSpec>,
    #[serde(default)]
    pub users: BTreeMap<UserEmail, UserSpec>,
    /// How answers are shaped where the public material is silent (`shapes`).
    #[serde(default)]
    pub shapes: ShapesSpec,
}

/// Behaviour of the API as a whole (not of one server).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiSpec {
    /// How long a new task's status answers 404 (eventual consistency). Default 5s.
    pub status_delay: Option<DurationValue>,
    /// Children per page of a status node. Default 10 (a Jira check tree needs 2 pages).
    pub status_page_size: Option<std::num::NonZeroU32>,
    /// Tasks per page of a task list. Default 20.
    pub task_page_size: Option<std::num::NonZeroU32>,
    /// Form of `links.next`: url (default), path or cursor.
    pub links_next: Option<LinkForm>,
    /// How the last page ends: absent (default), null, empty, empty_links.
    pub last_page: Option<LastPage>,
    /// iso (default), epoch_seconds or epoch_millis.
    pub timestamps: Option<TimeFormat>,
    /// seconds (default), http_date or reset_only.
    pub retry_after: Option<RetryAfterForm>,
    /// Validity of a connect token from `POST /token`. Default 5m.
    pub token_validity: Option<DurationValue>,
    /// Validity of an attach. Default 24h (a server may override it).
    pub attach_validity: Option<DurationValue>,
    /// How long artifacts stay downloadable after their task finished. Default 7d.
    pub artifact_validity: Option<DurationValue>,
    /// How long a task on an unattached job runs before it fails. Default 10s.
    pub not_attached_delay: Option<DurationValue>,
    /// Leave nodes that have not started out of the tree (and 404 their levels).
    pub hide_pending_nodes: Option<bool>,
    /// Order of a node's children across pages: name (default) or unfinished_first.
    pub status_order: Option<StatusOrder>,
}

impl ApiSpec {
    /// The shapes this table may set (each also a `[shapes]` key).
    pub(crate) fn shapes(&self) -> ApiShapes {
        ApiShapes {
            links_next: self.links_next,
            last_page: self.last_page,
            timestamps: self.timestamps,
            retry_after: self.retry_after,
        }
    }
}

/// Per-user rate limits; each may be `"N/period"` or `"unlimited"`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitsSpec {
    pub create_job: Option<Rate>,
    pub create_task: Option<Rate>,
    pub read: Option<Rate>,
    pub token: Option<Rate>,
}

/// One cloud user (the email of Basic auth).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserSpec {
    /// `false` answers 403 to every cloud call. Default true.
    pub admin: Option<bool>,
    /// When set, any other API token answers 401.
    pub token: Option<String>,
    #[serde(default)]
    pub rate_limits: RateLimitsSpec,
}

/// What one server (or, under `[defaults]`, every server) does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSpec {
    /// The Server ID jobs must name (default: the server's name).
    pub server_id: Option<String>,
    /// Whether the server is connected to every cloud site (attach allowed). Default true.
    pub connected: Option<bool>,
    /// Pins the server's credential (a PAT, or a Basic password): any other answers 401.
    /// Default: any credential is accepted.
    pub token: Option<String>,
    /// Make `cloud/save/token` fail even with a valid token.
    pub save_token_fails: Option<bool>,
    /// Overrides `api.attach_validity` for this server.
    pub attach_validity: Option<DurationValue>,
    /// A running task fails (not attached) when the attach it started under expires.
    pub attach_lapse_fails_tasks: Option<bool>,
    /// How long all the pre-migration checks take together.
    pub check_duration: Option<DurationValue>,
    /// How long the core scopes take together (apps excluded).
    pub migrate_duration: Option<DurationValue>,
    /// How long app data takes after the core finished.
    pub apps_duration: Option<DurationValue>,
    /// Checks that do not pass, by name.
    #[serde(default)]
    pub checks: BTreeMap<String, CheckSpec>,
    /// The status a Migrate task's `migrate` level, root and unfinished scopes end with, when
    /// its core would end (e.g. `STOPPED`), instead of finishing: a migration stopped or
    /// left incomplete on the server's side.
    pub end_status: Option<String>,
    /// Scope outcomes, durations and sizes, by scope name.
    #[serde(default)]
    pub scopes: BTreeMap<ScopeName, ScopeSpec>,
    #[serde(default)]
    pub faults: FaultSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckSpec {
    pub outcome: PlannedOutcome,
    /// Whether `excludeKeys` may override a failure (default from the check catalog).
    pub excludable: Option<bool>,
    #[serde(default)]
    pub occurrences: Vec<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeSpec {
    pub outcome: Option<PlannedOutcome>,
    pub message: Option<String>,
    pub duration: Option<DurationValue>,
    /// Progress counter totals by name (`Issues = 52000`).
    #[serde(default)]
    pub items: BTreeMap<String, u64>,
}

/// Seeded faults. Decided from (seed, server, the server's request number), never timing.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    /// Fraction of GET requests answered 500/502/503.
    pub get_error_rate: Option<Probability>,
    /// Real (unscaled) delay added to every request of the server.
    pub latency: Option<DurationValue>,
    /// Up to this much more real delay, seeded.
    pub latency_jitter: Option<DurationValue>,
    /// Only every this many requests of the server is delayed (default 1: every one).
    pub latency_every: Option<u64>,
    /// Fraction of task creates whose answer is lost although the task was created.
    pub lost_task_create_rate: Option<Probability>,
    /// Fraction of job creates whose answer is lost although the job was created.
    pub lost_job_create_rate: Option<Probability>,
    /// "504" (default), "drop" (connection closed without an answer) or "mixed".
    pub lost_create_mode: Option<LostCreateMode>,
    /// Every this many requests of the server, a burst of 503s starts (0: never).
    pub burst_every: Option<u64>,
    /// Length of each burst, in requests.
    pub burst_length: Option<u64>,
    /// Every this many requests of the server, a run of garbled answers starts (0: never):
    /// the request is handled, but its answer is a 200 the client cannot use.
    pub garbage_every: Option<u64>,
    /// Length of each run of garbled answers, in requests.
    pub garbage_length: Option<u64>,
}

/// A server name: a path segment of `/servers/{server}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ServerName(pub String);

impl std::ops::Deref for ServerName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ServerName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
        if valid {
            Ok(ServerName(name))
        } else {
            Err(de::Error::custom(format!(
                "invalid server name `{name}`: use letters, digits, `-`, `_`, `.` (it is a URL path segment)"
            )))
        }
    }
}

/// A cloud user's email.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct UserEmail(pub String);

impl<'de> Deserialize<'de> for UserEmail {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let email = String::deserialize(deserializer)?;
        if email.is_empty() || email.contains(':') || email.chars().any(char::is_whitespace) {
            Err(de::Error::custom(format!(
                "invalid user `{email}`: a user is the email of Basic auth (no spaces or `:`)"
            )))
        } else {
            Ok(UserEmail(email))
        }
    }
}

/// The scopes of both products.
pub(crate) const SCOPE_NAMES: [&str; 7] = [
    "projects",
    "usersAndGroups",
    "jsm",
    "ar",
    "apps",
    "spaces",
    "globalEntities",
];

/// A scope name, one of [`SCOPE_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ScopeName(pub &'static str);

impl<'de> Deserialize<'de> for ScopeName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        SCOPE_NAMES
            .iter()
            .find(|known| **known == name)
            .map(|known| ScopeName(known))
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown scope `{name}`, expected one of {}",
                    SCOPE_NAMES.join(", ")
                ))
            })
    }
}

impl Scenario {
    /// This scenario with every point its `[shapes]` (and `[api]`) table does not set picked
    /// from `seed` (`cmafleet sim --shapes random --seed S`).
    pub fn with_random_shapes(mut self, seed: u64) -> Scenario {
        self.file.shapes.random_seed = Some(seed);
        self
    }

    /// This scenario with the documented value of every point its tables do not set, even
    /// if its `[shapes]` table names a `random_seed` (`cmafleet sim --shapes documented`).
    pub fn with_documented_shapes(mut self) -> Scenario {
        self.file.shapes.random_seed = None;
        self
    }

    /// The line the simulator prints at start, naming every shape it serves (and the seed
    /// they were picked from), so that a failing seed can be printed and replayed.
    pub fn shapes_summary(&self) -> String {
        self.shapes().summary()
    }

    /// The resolved shapes.
    pub(crate) fn shapes(&self) -> Shapes {
        Shapes::resolve(&self.file.shapes, &self.file.api.shapes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_scenario() {
        let scenario = Scenario::parse_toml("").unwrap();
        assert!(scenario.file.servers.is_empty());
        assert_eq!(scenario.file.seed, None);
    }

    #[test]
    fn a_full_file_parses() {
        let text = r#"
seed = 7
clock = "manual"
[api]
status_delay = "3s"
links_next = "cursor"
status_page_size = 4
[rate_limits]
create_job = "10/min"
[defaults]
check_duration = "5m"
[defaults.faults]
get_error_rate = 0.1
[servers.acme]
server_id = "RMJK-8WAW-JKMI-CNOY"
connected = false
[servers.acme.checks.AnonPermission]
outcome = "FAILED"
excludable = true
occurrences = ["Project ABC"]
[servers.acme.scopes.projects]
outcome = "warning"
items = { Issues = 52000 }
[users."bob@example.com"]
admin = false
"#;
        let scenario = Scenario::parse_toml(text).unwrap();
        let acme = &scenario.file.servers[&ServerName("acme".into())];
        assert_eq!(acme.server_id.as_deref(), Some("RMJK-8WAW-JKMI-CNOY"));
        assert_eq!(
            acme.checks["AnonPermission"].outcome,
            PlannedOutcome::Failed
        );
        assert_eq!(
            acme.scopes[&ScopeName("projects")].outcome,
            Some(PlannedOutcome::Warning)
        );
        assert_eq!(scenario.file.clock, ClockMode::Manual);
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let text = "seed = 1\n\n[servers.acme]\nconected = false\n";
        let err = Scenario::parse_toml(text).unwrap_err();
        assert!(err.starts_with("line 4, column 1: "), "{err}");
        assert!(err.contains("unknown field `conected`"), "{err}");
    }

    #[test]
    fn a_bad_value_is_refused_with_its_line() {
        let err = Scenario::parse_toml("[defaults]\ncheck_duration = \"soon\"\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        assert!(err.contains("invalid duration `soon`"), "{err}");
        let err = Scenario::parse_toml("[rate_limits]\n\nread = \"lots\"\n").unwrap_err();
        assert!(err.starts_with("line 3"), "{err}");
        let err =
            Scenario::parse_toml("[servers.a.scopes.issues]\noutcome = \"FAILED\"\n").unwrap_err();
        assert!(err.contains("unknown scope `issues`"), "{err}");
        assert!(err.starts_with("line 1"), "{err}");
        let err = Scenario::parse_toml("[servers.a.checks.X]\noutcome = \"BROKEN\"\n").unwrap_err();
        assert!(
            err.starts_with("line 2") && err.contains("unknown outcome"),
            "{err}"
        );
        let err = Scenario::parse_toml("[defaults.faults]\nget_error_rate = 2.0\n").unwrap_err();
        assert!(
            err.starts_with("line 2") && err.contains("between 0 and 1"),
            "{err}"
        );
    }

    #[test]
    fn cross_table_problems_are_refused_with_their_line() {
        let err = Scenario::parse_toml("[defaults]\nserver_id = \"X\"\n").unwrap_err();
        assert!(err.starts_with("line 2: "), "{err}");
        let text = "[servers.a]\nserver_id = \"X\"\n[servers.b]\nserver_id = \"X\"\n";
        let err = Scenario::parse_toml(text).unwrap_err();
        assert!(
            err.starts_with("line 4: ") && err.contains("same Server ID"),
            "{err}"
        );
    }

    #[test]
    fn yaml_scenarios_parse_and_name_the_line() {
        let text = "seed: 3\nservers:\n  acme:\n    connected: false\n";
        let scenario = Scenario::parse_yaml(text).unwrap();
        assert_eq!(
            scenario.file.servers[&ServerName("acme".into())].connected,
            Some(false)
        );
        let err =
            Scenario::parse_yaml("seed: 3\nservers:\n  acme:\n    conected: false\n").unwrap_err();
        assert!(err.starts_with("line 4"), "{err}");
        assert!(err.contains("unknown field `conected`"), "{err}");
    }
}

//! Serde types of every request and response of the CMA migration API, shared by the
//! client and the simulator.
//!
//! Serialisation is strict (the casing and shapes of the public reference); deserialisation
//! is tolerant: unknown fields are ignored, optional fields may be missing, enums compare
//! case-insensitively and keep unknown values, timestamps accept several formats and never
//! fail, and `links.next` may be absent, `null`, empty, a full URL, a path or a bare cursor.

use chrono::{DateTime, TimeZone, Utc};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};

use crate::secret::Secret;

mod enums;
mod lenient;
mod links;
mod status;
pub use enums::{Flow, IncludedData, Outcome, Status, TaskKind, UsersMode};
use lenient::{lenient, null_as_default, string_or_number, string_or_number_opt};
pub use links::{Links, NextPage};
pub use status::{Details, ProgressDetails, ProgressItem, StatusNode, StatusResponse};

/// A job definition: what to migrate, from which server, to which cloud site. Immutable once
/// created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDefinition {
    pub flow: Flow,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub destination: Destination,
    #[serde(default, serialize_with = "serialize_scope")]
    pub scope: Scope,
}

/// A scope the inventory gives as raw JSON is sent as is; any other as its typed form.
fn serialize_scope<S: Serializer>(scope: &Scope, serializer: S) -> Result<S::Ok, S::Error> {
    match &scope.raw {
        Some(raw) => raw.serialize(serializer),
        None => scope.serialize(serializer),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(default, deserialize_with = "string_or_number")]
    pub server_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(default)]
    pub url: String,
}

/// The scope of a job. Jira uses `projects`, Confluence `spaces`; the rest is shared or
/// product-specific. Scopes whose shape is unpublished (`jsm`, `ar`) are kept as raw JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<KeyScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spaces: Option<KeyScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_and_groups: Option<UsersAndGroups>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<AppsScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_entities: Option<GlobalEntities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsm: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ar: Option<serde_json::Value>,
    /// The scope as the inventory's `scope_json` gives it: sent instead of the fields above
    /// (`JobDefinition` serialises it as is). Never read from an answer.
    #[serde(skip)]
    pub raw: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Projects or spaces in scope. `included_keys: None` means all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyScope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included_keys: Option<Vec<String>>,
    #[serde(default = "included_data_all")]
    pub included_data: IncludedData,
}

fn included_data_all() -> IncludedData {
    IncludedData::All
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsersAndGroups {
    pub mode: UsersMode,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppsScope {
    #[serde(default)]
    pub included_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalEntities {
    #[serde(default)]
    pub included_types: Vec<String>,
}

/// Answer to `POST /jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateJobResponse {
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_definition: Option<JobDefinition>,
}

/// Answer to `GET /jobs/{jobId}`: the definition flat at the top level; `jobId` may or may
/// not be echoed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetJobResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(flatten)]
    pub definition: JobDefinition,
}

/// Body of `POST /jobs/{jobId}/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateTaskRequest {
    pub task: TaskKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<TaskOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_types: Option<CheckTypes>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckTypes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_keys: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_keys: Option<Vec<String>>,
}

impl CreateTaskRequest {
    /// A `Check` task running every check.
    pub fn check() -> Self {
        Self {
            task: TaskKind::Check,
            options: None,
        }
    }

    /// A `Migrate` task; `exclude` overrides those (excludable) failed checks.
    pub fn migrate(exclude: &[String]) -> Self {
        let options = (!exclude.is_empty()).then(|| TaskOptions {
            check_types: Some(CheckTypes {
                include_keys: None,
                exclude_keys: Some(exclude.to_vec()),
            }),
        });
        Self {
            task: TaskKind::Migrate,
            options,
        }
    }
}

/// Answer to `POST /jobs/{jobId}/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTaskResponse {
    pub task_id: String,
}

/// One task, as listed or fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    #[serde(deserialize_with = "string_or_number")]
    pub task_id: String,
    /// `Unknown("")` when the service leaves it out.
    #[serde(
        serialize_with = "serialize_task_type",
        default = "unknown_task_kind",
        deserialize_with = "task_kind_or_unknown"
    )]
    pub task_type: TaskKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<WireTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub results: Option<TaskResults>,
}

fn serialize_task_type<S: Serializer>(kind: &TaskKind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&kind.response_str())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskResults {
    #[serde(default, deserialize_with = "null_as_default")]
    pub artifacts: Vec<Artifact>,
}

/// A downloadable report of a finished task. It expires: collect it promptly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<WireTime>,
}

/// One page of `GET /jobs/{jobId}/tasks`, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskList {
    /// Entries that are not readable tasks (no `taskId`, not an object) are left out.
    #[serde(default, deserialize_with = "readable_tasks")]
    pub data: Vec<Task>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub links: Links,
}

/// Answer to the server's attach call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<WireTime>,
}

/// Body of `POST /token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    pub cloud_url: String,
}

/// Answer to `POST /token`: a connect token valid five minutes. The token is a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_url: Option<String>,
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub token: Secret,
}

/// Body of the server's save-token call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaveTokenRequest {
    pub cloud_url: String,
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub token: Secret,
}

/// Answer to the server's save-token call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaveTokenResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An error body in the shape a sibling Atlassian service uses; every field optional, since
/// the real shape is unpublished. Other keys commonly used for a message are accepted too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "string_or_number_opt"
    )]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `{"errors": [{"message": …}, …]}` (or a list of strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<serde_json::Value>,
    /// `{"error": {"message": …}}` (or a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

impl ErrorBody {
    /// The most specific human message in the body, from the first of `errorMessage`,
    /// `message`, `errors[].message` and `error.message` that says something; `None` when
    /// the body has none of them (an envelope of another shape).
    pub fn text(&self) -> Option<String> {
        let words = |value: &serde_json::Value| -> Option<String> {
            match value {
                serde_json::Value::String(text) => Some(text.clone()),
                serde_json::Value::Object(map) => map
                    .get("message")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
                _ => None,
            }
        };
        let non_empty = |text: &String| !text.trim().is_empty();
        self.error_message
            .clone()
            .filter(non_empty)
            .or_else(|| self.message.clone().filter(non_empty))
            .or_else(|| match &self.errors {
                Some(serde_json::Value::Array(items)) => {
                    let all: Vec<String> = items.iter().filter_map(words).collect();
                    (!all.is_empty()).then(|| all.join("; "))
                }
                Some(other) => words(other),
                None => None,
            })
            .or_else(|| self.error.as_ref().and_then(words))
            .filter(non_empty)
    }
}

/// A timestamp in whichever format the service chose: ISO-8601, epoch seconds or epoch
/// milliseconds (number or numeric string). Never fails to deserialise: what cannot be
/// parsed is kept as text so the caller can log it and assume the shortest safe value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireTime {
    At(DateTime<Utc>),
    Unparsed(String),
}

impl WireTime {
    pub fn instant(&self) -> Option<DateTime<Utc>> {
        match self {
            WireTime::At(at) => Some(*at),
            WireTime::Unparsed(_) => None,
        }
    }

    /// Parses ISO-8601 / RFC 3339 (with or without zone), or epoch seconds / milliseconds.
    pub fn parse(text: &str) -> WireTime {
        let trimmed = text.trim();
        if let Ok(at) = DateTime::parse_from_rfc3339(trimmed) {
            return WireTime::At(at.with_timezone(&Utc));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
            if let Ok(at) = DateTime::parse_from_str(trimmed, format) {
                return WireTime::At(at.with_timezone(&Utc));
            }
        }
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S%.f") {
            return WireTime::At(naive.and_utc());
        }
        if let Ok(number) = trimmed.parse::<f64>() {
            return Self::from_epoch(number).unwrap_or_else(|| WireTime::Unparsed(text.to_owned()));
        }
        WireTime::Unparsed(text.to_owned())
    }

    /// Epoch seconds, or milliseconds when the number is too large to be seconds.
    pub fn from_epoch(number: f64) -> Option<WireTime> {
        if !number.is_finite() || number < 0.0 {
            return None;
        }
        // Seconds past year 5138 are more plausibly milliseconds.
        let millis = if number >= 1e11 {
            number
        } else {
            number * 1000.0
        };
        Utc.timestamp_millis_opt(millis as i64)
            .single()
            .map(WireTime::At)
    }
}

impl From<DateTime<Utc>> for WireTime {
    fn from(at: DateTime<Utc>) -> Self {
        WireTime::At(at)
    }
}

impl Serialize for WireTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            WireTime::At(at) => {
                serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            }
            WireTime::Unparsed(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for WireTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(match value {
            serde_json::Value::String(text) => WireTime::parse(&text),
            serde_json::Value::Number(number) => number
                .as_f64()
                .and_then(WireTime::from_epoch)
                .unwrap_or_else(|| WireTime::Unparsed(number.to_string())),
            other => WireTime::Unparsed(other.to_string()),
        })
    }
}

fn unknown_task_kind() -> TaskKind {
    TaskKind::Unknown(String::new())
}

fn task_kind_or_unknown<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TaskKind, D::Error> {
    Ok(lenient::<D, TaskKind>(deserializer)?.unwrap_or_else(unknown_task_kind))
}

fn readable_tasks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Task>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    let Some(serde_json::Value::Array(items)) = value else {
        return Ok(Vec::new());
    };
    let total = items.len();
    let tasks: Vec<Task> = items
        .into_iter()
        .filter_map(|item| serde_json::from_value(item).ok())
        .collect();
    if tasks.len() < total {
        tracing::warn!(
            ignored = total - tasks.len(),
            "the task list holds entries that are not readable tasks"
        );
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests;

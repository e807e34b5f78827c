//! [`ApiError`]: which endpoint failed, how, and whether trying again can help.

use std::fmt;
use std::time::Duration;

/// Every endpoint of the API (docs/api.md). Its route template is the `endpoint` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    CreateJob,
    GetJob,
    CreateTask,
    ListTasks,
    GetTask,
    TaskStatus,
    CreateToken,
    Artifact,
    Attach,
    SaveToken,
}

/// The rate-limit class of an endpoint: Atlassian limits each class per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RateClass {
    CreateJob,
    CreateTask,
    Read,
    Token,
}

impl RateClass {
    pub const ALL: [RateClass; 4] = [
        RateClass::CreateJob,
        RateClass::CreateTask,
        RateClass::Read,
        RateClass::Token,
    ];

    /// The `bucket` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::CreateJob => "create_job",
            RateClass::CreateTask => "create_task",
            RateClass::Read => "read",
            RateClass::Token => "token",
        }
    }
}

impl Endpoint {
    pub const ALL: [Endpoint; 10] = [
        Endpoint::CreateJob,
        Endpoint::GetJob,
        Endpoint::CreateTask,
        Endpoint::ListTasks,
        Endpoint::GetTask,
        Endpoint::TaskStatus,
        Endpoint::CreateToken,
        Endpoint::Artifact,
        Endpoint::Attach,
        Endpoint::SaveToken,
    ];

    /// Route template: bounded, free of ids, safe as a metric label.
    pub fn template(self) -> &'static str {
        match self {
            Endpoint::CreateJob => "POST /jobs",
            Endpoint::GetJob => "GET /jobs/{jobId}",
            Endpoint::CreateTask => "POST /jobs/{jobId}/tasks",
            Endpoint::ListTasks => "GET /jobs/{jobId}/tasks",
            Endpoint::GetTask => "GET /jobs/{jobId}/tasks/{taskId}",
            Endpoint::TaskStatus => "GET /jobs/{jobId}/tasks/{taskId}/status",
            Endpoint::CreateToken => "POST /token",
            Endpoint::Artifact => "GET artifact",
            Endpoint::Attach => "POST server /public/v1/attach",
            Endpoint::SaveToken => "POST server /cloud/save/token",
        }
    }

    /// The cloud rate-limit class, or `None` for server-side calls and artifact downloads.
    pub fn rate_class(self) -> Option<RateClass> {
        match self {
            Endpoint::CreateJob => Some(RateClass::CreateJob),
            Endpoint::CreateTask => Some(RateClass::CreateTask),
            Endpoint::GetJob | Endpoint::ListTasks | Endpoint::GetTask | Endpoint::TaskStatus => {
                Some(RateClass::Read)
            }
            Endpoint::CreateToken => Some(RateClass::Token),
            Endpoint::Artifact | Endpoint::Attach | Endpoint::SaveToken => None,
        }
    }

    /// A POST that makes something new each time: never re-sent when its outcome is unknown.
    pub fn is_create(self) -> bool {
        matches!(
            self,
            Endpoint::CreateJob | Endpoint::CreateTask | Endpoint::CreateToken
        )
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.template())
    }
}

/// What went wrong, classified for the retry decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401: bad email or token, or an expired token.
    Unauthorized,
    /// 403: the account is not an admin of the site.
    Forbidden,
    /// 400 and other 4xx the request itself caused.
    BadRequest,
    /// 404.
    NotFound,
    /// 429 after the bucket pause and retries were spent.
    RateLimited { retry_after: Option<Duration> },
    /// 5xx.
    Server,
    /// No answer in time. For a create this is also `OutcomeUnknown`.
    Timeout,
    /// The request certainly did not reach the service (refused, DNS, TLS before sending).
    Connect,
    /// A create whose request may have reached the service: never re-send it blindly,
    /// reconcile with the task list instead.
    OutcomeUnknown,
    /// A 3xx: redirects are never followed (credentials would follow them).
    Redirect { location: String },
    /// The body could not be understood (malformed JSON, wrong content type, too large).
    Decode,
    /// The server refused to attach: the cloud site is not connected to it.
    NotConnected,
    /// Our own cancellation token fired.
    Cancelled,
}

/// A failed API call. `Display` reads after "failed to …" and never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub endpoint: Endpoint,
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    pub kind: ErrorKind,
    /// The service's request/trace id, when it sent one: what Atlassian support asks for.
    pub request_id: Option<String>,
    /// What the service said (trimmed), or what went wrong locally.
    pub message: String,
}

impl ApiError {
    /// Whether the same request may be sent again (after a backoff). Creates whose outcome
    /// is unknown are not retryable; reads that timed out or met a 5xx are.
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            ErrorKind::RateLimited { .. } | ErrorKind::Connect => true,
            ErrorKind::Server | ErrorKind::Timeout => !self.endpoint.is_create(),
            _ => false,
        }
    }

    pub fn is_outcome_unknown(&self) -> bool {
        self.kind == ErrorKind::OutcomeUnknown
    }
}

impl ApiError {
    /// What went wrong without the endpoint, status and request id (reports show those in
    /// their own columns).
    pub fn detail(&self) -> String {
        match &self.kind {
            ErrorKind::OutcomeUnknown => {
                format!(
                    "outcome unknown (the request may have been applied): {}",
                    self.message
                )
            }
            ErrorKind::Redirect { location } => {
                format!("refused redirect to {location}: {}", self.message)
            }
            ErrorKind::Cancelled => format!("cancelled{}", self.message),
            _ => self.message.clone(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.endpoint.template(), self.detail())?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

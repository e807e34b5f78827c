//! One async method per endpoint of `cma-api.md`, on reqwest with rustls: timeouts on every
//! request, no redirects, tolerant parsing, pagination in every form, bounded retries for
//! reads, and never a blind retry of a create.
//!
//! SKELETON: signatures fixed; bodies to be written (issue 3).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::error::{ApiError, Endpoint, RateClass};
use super::retry::RetryPolicy;
use super::wire::{
    Artifact, AttachResponse, CreateJobResponse, CreateTaskRequest, CreateTaskResponse,
    GetJobResponse, JobDefinition, SaveTokenResponse, StatusNode, Task, TokenResponse,
};
use crate::inventory::Secret;

/// Receives telemetry about every request; the metrics module implements it. Labels are
/// bounded: route templates, status codes, reason words.
pub trait ApiObserver: Send + Sync + 'static {
    /// One finished attempt: `code` is the HTTP status, or `timeout` / `connect` / `error`.
    fn on_response(&self, endpoint: Endpoint, code: &str, elapsed: Duration);
    /// A retry is about to happen; `reason` is a short word (`429`, `5xx`, `timeout`, …).
    fn on_retry(&self, endpoint: Endpoint, reason: &'static str);
    /// A 429 came back.
    fn on_rate_limited(&self, endpoint: Endpoint);
    /// Time spent waiting on a rate bucket before a request.
    fn on_rate_wait(&self, class: RateClass, waited: Duration);
}

/// An observer that records nothing (tests, one-off commands).
pub struct NoopObserver;

impl ApiObserver for NoopObserver {
    fn on_response(&self, _: Endpoint, _: &str, _: Duration) {}
    fn on_retry(&self, _: Endpoint, _: &'static str) {}
    fn on_rate_limited(&self, _: Endpoint) {}
    fn on_rate_wait(&self, _: RateClass, _: Duration) {}
}

/// Raised when a wait was cut short by cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// What every cloud request waits on first: the rate buckets of one cloud user
/// (`fleet::limits` implements it). A 429 pauses the class for everyone of that user.
pub trait RequestGate: Send + Sync + 'static {
    /// Waits for a token of `class`; returns how long it waited.
    fn acquire<'a>(
        &'a self,
        class: RateClass,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Duration, Cancelled>>;
    /// The service said 429: nobody of this user sends in `class` for `wait`.
    fn pause(&self, class: RateClass, wait: Duration);
}

/// Transport settings shared by every client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    /// Total time for one attempt, body included.
    pub request_timeout: Duration,
    /// Retries of reads (and of creates that certainly did not arrive).
    pub retry: RetryPolicy,
    /// Bodies larger than this are refused (`ErrorKind::Decode`), never read whole.
    pub max_body_bytes: usize,
    pub user_agent: String,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            max_body_bytes: 16 * 1024 * 1024,
            user_agent: format!("cmafleet/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// The shared HTTP transport (one connection pool for the whole run).
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    settings: Arc<ClientSettings>,
    observer: Arc<dyn ApiObserver>,
}

impl HttpClient {
    pub fn new(
        settings: ClientSettings,
        observer: Arc<dyn ApiObserver>,
    ) -> Result<HttpClient, ApiError> {
        let _ = (&settings, &observer);
        todo!()
    }
}

/// How to authenticate to a Server/DC instance, resolved.
#[derive(Debug, Clone)]
pub enum ServerCredentials {
    Bearer(Secret),
    Basic { username: String, password: Secret },
}

/// Which subtree of a status tree to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusQuery {
    /// `check`, `migrate`, `check,{CheckName}`; `None` for the whole tree.
    pub level: Option<String>,
    pub expand_children: bool,
}

/// The cloud side of the API for one cloud user (Basic auth email:token).
#[derive(Clone)]
pub struct CloudClient {
    http: HttpClient,
    /// `{cloud_api_url}/migrations/public/v1`.
    base: Url,
    user: String,
    token: Secret,
    gate: Arc<dyn RequestGate>,
}

impl CloudClient {
    /// `api_url` is `--cloud-api-url` (e.g. `https://api.atlassian.com`).
    pub fn new(
        http: HttpClient,
        api_url: &Url,
        user: &str,
        token: Secret,
        gate: Arc<dyn RequestGate>,
    ) -> CloudClient {
        let _ = (http, api_url, user, token, gate);
        todo!()
    }

    pub async fn create_job(
        &self,
        definition: &JobDefinition,
        cancel: &CancellationToken,
    ) -> Result<CreateJobResponse, ApiError> {
        let _ = (
            definition,
            cancel,
            &self.http,
            &self.base,
            &self.user,
            &self.token,
            &self.gate,
        );
        todo!()
    }

    pub async fn get_job(
        &self,
        job_id: &str,
        cancel: &CancellationToken,
    ) -> Result<GetJobResponse, ApiError> {
        let _ = (job_id, cancel);
        todo!()
    }

    pub async fn create_task(
        &self,
        job_id: &str,
        request: &CreateTaskRequest,
        cancel: &CancellationToken,
    ) -> Result<CreateTaskResponse, ApiError> {
        let _ = (job_id, request, cancel);
        todo!()
    }

    /// Every task of a job, newest first, following `links.next` to the end.
    pub async fn list_tasks(
        &self,
        job_id: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<Task>, ApiError> {
        let _ = (job_id, cancel);
        todo!()
    }

    pub async fn get_task(
        &self,
        job_id: &str,
        task_id: &str,
        cancel: &CancellationToken,
    ) -> Result<Task, ApiError> {
        let _ = (job_id, task_id, cancel);
        todo!()
    }

    /// The status tree (or the subtree of `query.level`), every page merged. A response
    /// without `data` (eventual consistency) is an empty node.
    pub async fn task_status(
        &self,
        job_id: &str,
        task_id: &str,
        query: &StatusQuery,
        cancel: &CancellationToken,
    ) -> Result<StatusNode, ApiError> {
        let _ = (job_id, task_id, query, cancel);
        todo!()
    }

    pub async fn create_token(
        &self,
        cloud_url: &str,
        cancel: &CancellationToken,
    ) -> Result<TokenResponse, ApiError> {
        let _ = (cloud_url, cancel);
        todo!()
    }

    /// Streams an artifact to `dest`; returns its size. Cloud credentials are sent only
    /// when the location is on the cloud API host.
    pub async fn download_artifact(
        &self,
        artifact: &Artifact,
        dest: &Path,
        cancel: &CancellationToken,
    ) -> Result<u64, ApiError> {
        let _ = (artifact, dest, cancel);
        todo!()
    }
}

/// The server side of the API for one Server/DC instance.
#[derive(Clone)]
pub struct ServerClient {
    http: HttpClient,
    /// `{server_url}/rest/migration/latest`.
    base: Url,
    credentials: ServerCredentials,
}

impl ServerClient {
    pub fn new(http: HttpClient, server_url: &Url, credentials: ServerCredentials) -> ServerClient {
        let _ = (http, server_url, credentials);
        todo!()
    }

    pub async fn attach(
        &self,
        cloud_url: &str,
        cancel: &CancellationToken,
    ) -> Result<AttachResponse, ApiError> {
        let _ = (cloud_url, cancel, &self.http, &self.base, &self.credentials);
        todo!()
    }

    pub async fn save_token(
        &self,
        cloud_url: &str,
        token: &Secret,
        cancel: &CancellationToken,
    ) -> Result<SaveTokenResponse, ApiError> {
        let _ = (cloud_url, token, cancel);
        todo!()
    }
}

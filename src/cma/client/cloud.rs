//! [`CloudClient`]: the cloud side of the API for one cloud user, Basic auth on every
//! request, each request waiting first on that user's rate gate.

use std::borrow::Cow;
use std::sync::Arc;

use reqwest::Method;
use reqwest::header::HeaderValue;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::answer::{basic_authorization, basic_secrets};
use super::attempt::api_error;
use super::hooks::RequestGate;
use super::http::HttpClient;
use super::paging::Pages;
use super::paths::{API_PATH, join_path};
use super::transport::{Auth, Call};
use crate::cma::error::{ApiError, Endpoint, ErrorKind};
use crate::cma::surprise::SurpriseKind;
use crate::cma::wire::{
    CreateJobResponse, CreateTaskRequest, CreateTaskResponse, GetJobResponse, JobDefinition,
    StatusNode, StatusResponse, Task, TaskList, TokenRequest, TokenResponse,
};
use crate::secret::Secret;

/// The cloud side of the API for one cloud user (Basic auth email:token).
#[derive(Clone)]
pub struct CloudClient {
    pub(super) http: HttpClient,
    /// `{cloud_api_url}/migrations/public/v1`.
    pub(super) base: Url,
    /// `--cloud-api-url` itself: its origin is the only one that gets the credentials, and
    /// relative artifact locations resolve against it.
    pub(super) api_url: Url,
    /// `Authorization: Basic …` of the user's email and token, encoded once (marked
    /// sensitive) rather than for each of the fleet's requests.
    pub(super) authorization: HeaderValue,
    /// The token and its encoding: never in an error message.
    pub(super) secrets: Arc<[String]>,
    pub(super) gate: Arc<dyn RequestGate>,
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
        let mut api_url = api_url.clone();
        api_url.set_query(None);
        api_url.set_fragment(None);
        CloudClient {
            http,
            base: join_path(&api_url, API_PATH),
            api_url,
            authorization: basic_authorization(user, &token),
            secrets: basic_secrets(user, &token).into(),
            gate,
        }
    }

    /// Records an answer outside the API model (see [`HttpClient::surprise`]); this user's
    /// token never reaches the sample.
    pub fn surprise(&self, kind: SurpriseKind, value: &str, sample: &str, endpoint: Endpoint) {
        self.http
            .surprise(kind, value, sample, endpoint, &self.secrets);
    }

    /// The versioned base every cloud path is relative to.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    pub async fn create_job(
        &self,
        definition: &JobDefinition,
        cancel: &CancellationToken,
    ) -> Result<CreateJobResponse, ApiError> {
        let call = self.post(Endpoint::CreateJob, self.url(&["jobs"]), definition)?;
        self.http.execute_json(&call, cancel).await
    }

    pub async fn get_job(
        &self,
        job_id: &str,
        cancel: &CancellationToken,
    ) -> Result<GetJobResponse, ApiError> {
        let call = self.get(Endpoint::GetJob, self.url(&["jobs", job_id]));
        self.http.execute_json(&call, cancel).await
    }

    pub async fn create_task(
        &self,
        job_id: &str,
        request: &CreateTaskRequest,
        cancel: &CancellationToken,
    ) -> Result<CreateTaskResponse, ApiError> {
        let url = self.url(&["jobs", job_id, "tasks"]);
        let call = self.post(Endpoint::CreateTask, url, request)?;
        self.http.execute_json(&call, cancel).await
    }

    /// Every task of a job, newest first, following `links.next` to the end.
    pub async fn list_tasks(
        &self,
        job_id: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<Task>, ApiError> {
        let endpoint = Endpoint::ListTasks;
        let first = self.url(&["jobs", job_id, "tasks"]);
        let mut pages = Pages::new(&self.base, &first);
        let mut tasks: Vec<Task> = Vec::new();
        let mut url = first;
        loop {
            let page: TaskList = self
                .http
                .execute_json(&self.get(endpoint, url.clone()), cancel)
                .await?;
            for task in page.data {
                // A page that repeats tasks (a cursor that went back) adds nothing twice.
                if !tasks.iter().any(|known| known.task_id == task.task_id) {
                    tasks.push(task);
                }
            }
            match pages.next(&url, page.links.next_page()) {
                Ok(Some(next)) => url = next,
                Ok(None) => return Ok(tasks),
                Err(err) => return Err(page_error(endpoint, err)),
            }
        }
    }

    pub async fn get_task(
        &self,
        job_id: &str,
        task_id: &str,
        cancel: &CancellationToken,
    ) -> Result<Task, ApiError> {
        let url = self.url(&["jobs", job_id, "tasks", task_id]);
        let call = self.get(Endpoint::GetTask, url);
        self.http.execute_json(&call, cancel).await
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
        let endpoint = Endpoint::TaskStatus;
        let mut first = self.url(&["jobs", job_id, "tasks", task_id, "status"]);
        {
            let mut pairs = first.query_pairs_mut();
            if let Some(level) = query.level.as_deref().filter(|level| !level.is_empty()) {
                pairs.append_pair("level", level);
            }
            if query.expand_children {
                pairs.append_pair("expandChildren", "true");
            }
        }
        if first.query() == Some("") {
            first.set_query(None);
        }
        let mut pages = Pages::new(&self.base, &first);
        let mut tree: Option<StatusNode> = None;
        let mut url = first;
        loop {
            let page: StatusResponse = self
                .http
                .execute_json(&self.get(endpoint, url.clone()), cancel)
                .await?;
            if let Some(node) = page.data {
                match tree.as_mut() {
                    Some(tree) => tree.merge_page(node),
                    None => tree = Some(node),
                }
            }
            match pages.next(&url, page.links.next_page()) {
                Ok(Some(next)) => url = next,
                Ok(None) => return Ok(tree.unwrap_or_default()),
                Err(err) => return Err(page_error(endpoint, err)),
            }
        }
    }

    pub async fn create_token(
        &self,
        cloud_url: &str,
        cancel: &CancellationToken,
    ) -> Result<TokenResponse, ApiError> {
        let body = TokenRequest {
            cloud_url: cloud_url.to_owned(),
        };
        let call = self.post(Endpoint::CreateToken, self.url(&["token"]), &body)?;
        self.http.execute_json(&call, cancel).await
    }

    /// `base` + one path segment per element (each percent-encoded: an id cannot escape).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub(super) fn auth(&self) -> Auth<'_> {
        Auth::Prepared(&self.authorization)
    }

    fn get(&self, endpoint: Endpoint, url: Url) -> Call<'_> {
        Call {
            endpoint,
            method: Method::GET,
            url,
            auth: self.auth(),
            body: None,
            gate: Some(self.gate.as_ref()),
            secrets: Cow::Borrowed(&self.secrets),
        }
    }

    fn post<T: Serialize>(
        &self,
        endpoint: Endpoint,
        url: Url,
        body: &T,
    ) -> Result<Call<'_>, ApiError> {
        let body = serde_json::to_vec(body).map_err(|err| {
            api_error(
                endpoint,
                None,
                ErrorKind::BadRequest,
                format!("cannot encode the request: {err}"),
            )
        })?;
        Ok(Call {
            body: Some(body),
            method: Method::POST,
            ..self.get(endpoint, url)
        })
    }
}

fn page_error(endpoint: Endpoint, err: super::paging::PageError) -> ApiError {
    api_error(endpoint, Some(200), ErrorKind::Decode, err.to_string())
}

/// Which subtree of a status tree to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusQuery {
    /// `check`, `migrate`, `check,{CheckName}`; `None` for the whole tree.
    pub level: Option<String>,
    pub expand_children: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cma::client::{ClientSettings, NoopObserver, OpenGate};

    fn client(api: &str) -> CloudClient {
        let http = HttpClient::new(ClientSettings::default(), Arc::new(NoopObserver)).unwrap();
        CloudClient::new(
            http,
            &Url::parse(api).unwrap(),
            "a@b.c",
            Secret::new("t"),
            Arc::new(OpenGate),
        )
    }

    #[test]
    fn the_base_is_under_the_api_url_with_or_without_a_slash() {
        for api in [
            "https://api.atlassian.com",
            "https://api.atlassian.com/",
            "https://api.atlassian.com?x=1",
        ] {
            assert_eq!(
                client(api).base_url().as_str(),
                "https://api.atlassian.com/migrations/public/v1"
            );
        }
        assert_eq!(
            client("http://127.0.0.1:8080/prefix/").base_url().as_str(),
            "http://127.0.0.1:8080/prefix/migrations/public/v1"
        );
    }

    #[test]
    fn ids_are_encoded_as_single_path_segments() {
        let c = client("https://api.atlassian.com");
        assert_eq!(
            c.url(&["jobs", "a/../b?c", "tasks"]).as_str(),
            "https://api.atlassian.com/migrations/public/v1/jobs/a%2F..%2Fb%3Fc/tasks"
        );
    }
}

//! The cloud side of the API (`/migrations/public/v1/…`) apart from task reads (see
//! `task_reads`): creating and reading jobs, creating tasks, and connect tokens. Each
//! handler authenticates, takes its rate-limit slot, finds what it concerns, passes the
//! seeded faults of that server, then answers.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::cma::wire::{
    CreateJobResponse, CreateTaskRequest, CreateTaskResponse, Flow, GetJobResponse, JobDefinition,
    TaskKind, TokenRequest, TokenResponse,
};
use crate::secret::Secret;

use super::faults::{self, CreateKind, LostAnswer};
use super::limits::RateClass;
use super::shared::{
    AppState, Attribution, DropConnection, Shared, Side, admit, cloud_error, cloud_user,
    json_answer, rate_limit, respond,
};

/// The largest job definition the API accepts.
const MAX_JOB_BYTES: usize = 390 * 1024;

pub(crate) async fn create_job(
    State(state): State<AppState>,
    Extension(who): Extension<Attribution>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(create_job_inner(&state, &who, &headers, &body).await)
}

async fn create_job_inner(
    state: &Shared,
    who: &Attribution,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Response> {
    let user = cloud_user(state, headers)?;
    rate_limit(state, &user, RateClass::CreateJob)?;
    if body.len() > MAX_JOB_BYTES {
        return Err(cloud_error(
            state,
            StatusCode::PAYLOAD_TOO_LARGE,
            "the job definition is larger than 390 KB",
        ));
    }
    let definition: JobDefinition = serde_json::from_slice(body).map_err(|err| {
        cloud_error(
            state,
            StatusCode::BAD_REQUEST,
            &format!("invalid job definition: {err}"),
        )
    })?;
    validate_definition(&definition)
        .map_err(|message| cloud_error(state, StatusCode::BAD_REQUEST, &message))?;
    let server = state.world().server_for_id(&definition.source.server_id);
    let seq = match &server {
        Some(server) => Some(admit(state, who, server, false, Side::Cloud).await?),
        None => None,
    };
    let now = state.clock.now();
    let (job_id, lost) = {
        let mut world = state.world();
        let job_id = world.create_job(definition.clone(), now).id.clone();
        let lost = match (&server, seq) {
            (Some(server), Some(seq)) => {
                let faults = world.profile(server).faults;
                faults::lost_answer(&faults, state.seed, server, seq, CreateKind::Job)
            }
            _ => None,
        };
        (job_id, lost)
    };
    tracing::debug!(%job_id, %user, "job created");
    if let Some(lost) = lost {
        return Err(lost_answer(state, lost));
    }
    Ok(json_answer(
        state,
        &CreateJobResponse {
            job_id,
            job_definition: Some(definition),
        },
    ))
}

/// What the API refuses in a job definition.
fn validate_definition(definition: &JobDefinition) -> Result<(), String> {
    let scope = &definition.scope;
    let (product, foreign): (&str, Vec<&str>) = match &definition.flow {
        Flow::Jira => (
            "Jira",
            [
                ("spaces", scope.spaces.is_some()),
                ("globalEntities", scope.global_entities.is_some()),
            ]
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect(),
        ),
        Flow::Confluence => (
            "Confluence",
            [
                ("projects", scope.projects.is_some()),
                ("jsm", scope.jsm.is_some()),
                ("ar", scope.ar.is_some()),
            ]
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect(),
        ),
        Flow::Unknown(flow) => {
            return Err(format!(
                "unknown flow `{flow}`: expected jira-onpremises-to-cloud or confluence-onpremises-to-cloud"
            ));
        }
    };
    if definition.name.trim().is_empty() {
        return Err("the job needs a name".into());
    }
    if definition.source.server_id.trim().is_empty() {
        return Err("source.serverId is required".into());
    }
    let url = definition.destination.url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("destination.url `{url}` is not a URL"));
    }
    if let Some(name) = foreign.first() {
        return Err(format!(
            "scope `{name}` is not valid for a {product} migration"
        ));
    }
    Ok(())
}

/// The answer of a create whose job or task exists but whose answer is lost.
fn lost_answer(state: &Shared, lost: LostAnswer) -> Response {
    let mut response = cloud_error(state, StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout");
    let mut world = state.world();
    match lost {
        LostAnswer::GatewayTimeout => world.counters.faults.lost_answers_504 += 1,
        LostAnswer::Drop => {
            world.counters.faults.dropped_connections += 1;
            response.extensions_mut().insert(DropConnection);
        }
    }
    response
}

/// The server of a job, or 404.
fn job_server(state: &Shared, job_id: &str) -> Result<Option<String>, Response> {
    match state.world().jobs.get(job_id) {
        Some(job) => Ok(job.server.clone()),
        None => Err(cloud_error(
            state,
            StatusCode::NOT_FOUND,
            &format!("job {job_id} not found"),
        )),
    }
}

/// 404 `job … not found` for a job younger than the `young_job_404` shape (simulated time):
/// a service whose new jobs take a moment to be seen by the task endpoint.
fn refuse_young_job(state: &Shared, job_id: &str) -> Result<(), Response> {
    let window = state.api.shapes.young_job_404;
    if window <= 0.0 {
        return Ok(());
    }
    let created_at = state.world().jobs.get(job_id).map(|job| job.created_at);
    let age = created_at.map(|at| state.clock.simulated_between(at, state.clock.now()));
    match age {
        Some(age) if age < window => Err(cloud_error(
            state,
            StatusCode::NOT_FOUND,
            &format!("job {job_id} not found"),
        )),
        _ => Ok(()),
    }
}

/// Authenticates, rate-limits a read, finds the job and passes its server's faults.
pub(crate) async fn read_gate(
    state: &Shared,
    who: &Attribution,
    headers: &HeaderMap,
    job_id: &str,
) -> Result<(), Response> {
    let user = cloud_user(state, headers)?;
    rate_limit(state, &user, RateClass::Read)?;
    if let Some(server) = job_server(state, job_id)? {
        admit(state, who, &server, true, Side::Cloud).await?;
    }
    Ok(())
}

pub(crate) async fn get_job(
    State(state): State<AppState>,
    Extension(who): Extension<Attribution>,
    Path(job_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            read_gate(&state, &who, &headers, &job_id).await?;
            let definition = state
                .world()
                .jobs
                .get(&job_id)
                .map(|job| job.definition.clone());
            let definition = definition.ok_or_else(|| {
                cloud_error(
                    &state,
                    StatusCode::NOT_FOUND,
                    &format!("job {job_id} not found"),
                )
            })?;
            Ok(json_answer(
                &state,
                &GetJobResponse {
                    job_id: Some(job_id.clone()),
                    definition,
                },
            ))
        }
        .await,
    )
}

pub(crate) async fn create_task(
    State(state): State<AppState>,
    Extension(who): Extension<Attribution>,
    Path(job_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(create_task_inner(&state, &who, &job_id, &headers, &body).await)
}

async fn create_task_inner(
    state: &Shared,
    who: &Attribution,
    job_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Response> {
    let user = cloud_user(state, headers)?;
    rate_limit(state, &user, RateClass::CreateTask)?;
    let server = job_server(state, job_id)?;
    refuse_young_job(state, job_id)?;
    let request: CreateTaskRequest = serde_json::from_slice(body).map_err(|err| {
        cloud_error(
            state,
            StatusCode::BAD_REQUEST,
            &format!("invalid task request: {err}"),
        )
    })?;
    if let TaskKind::Unknown(kind) = &request.task {
        return Err(cloud_error(
            state,
            StatusCode::BAD_REQUEST,
            &format!("unknown task `{kind}`: expected Check or Migrate"),
        ));
    }
    let seq = match &server {
        Some(server) => Some(admit(state, who, server, false, Side::Cloud).await?),
        None => None,
    };
    let now = state.clock.now();
    let (task_id, lost) = {
        let mut world = state.world();
        let task_id = world.create_task(job_id, &request, now).ok_or_else(|| {
            cloud_error(
                state,
                StatusCode::NOT_FOUND,
                &format!("job {job_id} not found"),
            )
        })?;
        let lost = match (&server, seq) {
            (Some(server), Some(seq)) => {
                let faults = world.profile(server).faults;
                faults::lost_answer(&faults, state.seed, server, seq, CreateKind::Task)
            }
            _ => None,
        };
        (task_id, lost)
    };
    tracing::debug!(%job_id, %task_id, %user, "task created");
    if let Some(lost) = lost {
        return Err(lost_answer(state, lost));
    }
    Ok(json_answer(state, &CreateTaskResponse { task_id }))
}

pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let user = cloud_user(&state, &headers)?;
            rate_limit(&state, &user, RateClass::Token)?;
            let request: TokenRequest = serde_json::from_slice(&body).map_err(|err| {
                cloud_error(
                    &state,
                    StatusCode::BAD_REQUEST,
                    &format!("invalid token request: {err}"),
                )
            })?;
            let now = state.clock.now();
            let token = state.world().issue_token(&request.cloud_url, now);
            let answer = TokenResponse {
                uri: Some(format!(
                    "{}/rest/migration/latest/cloud/save/token",
                    request.cloud_url.trim_end_matches('/')
                )),
                cloud_url: Some(request.cloud_url),
                token: Secret::new(token),
            };
            Ok(axum::Json(answer).into_response())
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(json: &str) -> JobDefinition {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn definitions_are_checked_like_the_api_would() {
        let ok = r#"{"flow":"jira-onpremises-to-cloud","name":"n","source":{"serverId":"S"},
            "destination":{"url":"https://a.atlassian.net"},"scope":{"projects":{"includedData":"all"}}}"#;
        assert_eq!(validate_definition(&definition(ok)), Ok(()));
        let wrong_scope = ok.replace("projects", "spaces");
        assert!(
            validate_definition(&definition(&wrong_scope))
                .unwrap_err()
                .contains("spaces")
        );
        let wrong_flow = ok.replace("jira-onpremises", "bamboo-onpremises");
        assert!(
            validate_definition(&definition(&wrong_flow))
                .unwrap_err()
                .contains("unknown flow")
        );
        let no_server = ok.replace("\"S\"", "\"\"");
        assert!(validate_definition(&definition(&no_server)).is_err());
        let bad_url = ok.replace("https://a.atlassian.net", "a.atlassian.net");
        assert!(validate_definition(&definition(&bad_url)).is_err());
    }
}

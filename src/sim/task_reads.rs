//! The cloud side's task reads (`/migrations/public/v1/jobs/{jobId}/tasks…`): the task
//! list, one task, and the status tree, each served in the scenario's shapes. Every handler
//! passes the same read gate as get-job (authentication, the read rate limit, the job, and
//! its server's faults).

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::cma::wire::{Artifact, Task, TaskResults};

use super::artifacts;
use super::cloud::read_gate;
use super::progress;
use super::shapes;
use super::shared::{
    AppState, Attribution, Page, Shared, cloud_error, json_answer, origin, respond,
};
use super::status::{self, RequestUrl};
use super::world::TaskRecord;

/// A task as the API answers it: artifacts listed once its root has finished; `taskType`
/// and the artifacts' `expireAt` in the scenario's shapes.
fn task_answer(state: &Shared, task: &TaskRecord, now: f64, origin: &str) -> Value {
    let finished_at = task.created_at + state.clock.real(task.plan.root_end());
    let artifacts = if now >= finished_at {
        let expire_at = state
            .clock
            .wall(finished_at + state.clock.real(state.api.artifact_validity));
        artifacts::names(&task.plan)
            .into_iter()
            .map(|name| Artifact {
                location: format!("{origin}/_sim/artifacts/{}/{name}", task.id),
                name: name.to_owned(),
                expire_at: Some(expire_at.into()),
            })
            .collect()
    } else {
        Vec::new()
    };
    let wire = Task {
        task_id: task.id.clone(),
        task_type: task.kind.clone(),
        created_at: Some(state.clock.wall(task.created_at).into()),
        payload: Some(task.payload.clone().unwrap_or_else(|| json!({}))),
        results: Some(TaskResults { artifacts }),
    };
    let mut answer = serde_json::to_value(&wire).unwrap_or(Value::Null);
    let shapes = &state.api.shapes;
    shapes::task_type(&mut answer, &task.kind, shapes.task_type);
    // A day before the task finished: in the past whenever its artifacts are listed.
    let past = (state.clock.wall(finished_at) - chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    shapes::expire_at(&mut answer, shapes.expire_at, &past);
    answer
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn cursor_offset(
    state: &Shared,
    pairs: &[(String, String)],
) -> Result<(usize, Option<String>), Response> {
    match pairs.iter().find(|(key, _)| key == "cursor") {
        None => Ok((0, None)),
        Some((_, cursor)) if cursor.is_empty() => Ok((0, None)),
        Some((_, cursor)) => status::decode_cursor(cursor)
            .map(|offset| (offset, Some(cursor.clone())))
            .ok_or_else(|| cloud_error(state, StatusCode::BAD_REQUEST, "invalid cursor")),
    }
}

fn request_url(headers: &HeaderMap, path: String, pairs: &[(String, String)]) -> RequestUrl {
    RequestUrl {
        origin: origin(headers),
        path,
        query: pairs
            .iter()
            .filter(|(key, _)| key != "cursor")
            .cloned()
            .collect(),
    }
}

/// The `links` of a page of `path` in the scenario's shapes: `current` the cursor this page
/// was asked with, `next` the offset the next page starts at (`None` on the last page).
fn page_links(
    state: &Shared,
    headers: &HeaderMap,
    path: String,
    pairs: &[(String, String)],
    current: Option<&str>,
    next: Option<usize>,
) -> Value {
    let next = next.map(status::encode_cursor);
    status::links(
        &request_url(headers, path, pairs),
        current,
        next.as_deref(),
        state.api.shapes.links_next,
        state.api.shapes.last_page,
    )
}

pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    Extension(who): Extension<Attribution>,
    Path(job_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            read_gate(&state, &who, &headers, &job_id).await?;
            let pairs = query_pairs(query.as_deref());
            let (offset, current) = cursor_offset(&state, &pairs)?;
            let size = state.api.task_page_size;
            let now = state.clock.now();
            let host = origin(&headers);
            let (data, more) = {
                let world = state.world();
                let job = world.jobs.get(&job_id).ok_or_else(|| {
                    cloud_error(
                        &state,
                        StatusCode::NOT_FOUND,
                        &format!("job {job_id} not found"),
                    )
                })?;
                let data: Vec<Value> = job
                    .tasks
                    .iter()
                    .rev()
                    .skip(offset)
                    .take(size)
                    .filter_map(|id| world.tasks.get(id))
                    .map(|task| task_answer(&state, task, now, &host))
                    .collect();
                (data, offset + size < job.tasks.len())
            };
            let links = page_links(
                &state,
                &headers,
                format!("/migrations/public/v1/jobs/{job_id}/tasks"),
                &pairs,
                current.as_deref(),
                more.then_some(offset + size),
            );
            Ok(json_answer(&state, &Page { data, links }))
        }
        .await,
    )
}

/// The task of a job, or 404.
fn find_task<T>(
    state: &Shared,
    job_id: &str,
    task_id: &str,
    read: impl FnOnce(&TaskRecord) -> T,
) -> Result<T, Response> {
    let world = state.world();
    match world.tasks.get(task_id) {
        Some(task) if task.job_id == job_id => Ok(read(task)),
        _ => {
            drop(world);
            Err(cloud_error(
                state,
                StatusCode::NOT_FOUND,
                &format!("task {task_id} not found on job {job_id}"),
            ))
        }
    }
}

pub(crate) async fn get_task(
    State(state): State<AppState>,
    Extension(who): Extension<Attribution>,
    Path((job_id, task_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            read_gate(&state, &who, &headers, &job_id).await?;
            let now = state.clock.now();
            let host = origin(&headers);
            let task = find_task(&state, &job_id, &task_id, |task| {
                task_answer(&state, task, now, &host)
            })?;
            Ok(json_answer(&state, &task))
        }
        .await,
    )
}

pub(crate) async fn status(
    State(state): State<AppState>,
    Extension(who): Extension<Attribution>,
    Path((job_id, task_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            read_gate(&state, &who, &headers, &job_id).await?;
            let pairs = query_pairs(query.as_deref());
            let param = |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.as_str())
            };
            let now = state.clock.now();
            let (plan, elapsed) = find_task(&state, &job_id, &task_id, |task| {
                (
                    std::sync::Arc::clone(&task.plan),
                    state.clock.simulated_between(task.created_at, now),
                )
            })?;
            if elapsed < state.api.status_delay {
                return Err(cloud_error(
                    &state,
                    StatusCode::NOT_FOUND,
                    &format!("status of task {task_id} not found"),
                ));
            }
            let (offset, current) = cursor_offset(&state, &pairs)?;
            let shapes = &state.api.shapes;
            let mut tree = progress::render(&plan, elapsed, state.api.hide_pending_nodes);
            shapes.shape_tree(&mut tree, &plan.kind, |scope| {
                plan.scope_started(scope, elapsed)
            });
            let level = param("level");
            let mut node = status::select(tree, level).ok_or_else(|| {
                cloud_error(
                    &state,
                    StatusCode::NOT_FOUND,
                    &format!("no status at level {}", level.unwrap_or("")),
                )
            })?;
            status::filter_children(&mut node, param("status"), param("outcome"), shapes);
            let expand = param("expandChildren").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            if !expand {
                shapes.unexpanded(&mut node);
            }
            let size = state.api.status_page_size;
            let more = status::page_children(&mut node, offset, size, state.api.status_order);
            let links = page_links(
                &state,
                &headers,
                format!("/migrations/public/v1/jobs/{job_id}/tasks/{task_id}/status"),
                &pairs,
                current.as_deref(),
                more.then_some(offset + size),
            );
            if shapes.canonical_spelling() {
                return Ok(axum::Json(Page { data: node, links }).into_response());
            }
            let mut data = serde_json::to_value(&node).unwrap_or(Value::Null);
            shapes.spell_tree(&mut data);
            Ok(axum::Json(Page { data, links }).into_response())
        }
        .await,
    )
}

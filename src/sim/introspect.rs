//! The simulator's own endpoints under `/_sim/`, for tests and operators: request counters,
//! every task with its fate, the clock, and time travel. They are not counted.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::shared::{AppState, text_error};
use super::values::DurationValue;

pub(crate) use super::artifacts::artifact;

/// One task as `GET /_sim/tasks` lists it (creation order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimTask {
    pub task_id: String,
    pub job_id: String,
    /// `check` or `migrate`.
    pub task_type: String,
    /// The server the job's Server ID named (`None`: no such server).
    pub server: Option<String>,
    pub server_id: String,
    pub cloud_url: String,
    /// ISO-8601 UTC.
    pub created_at: String,
    /// When the root of the status tree finished; `None` while it runs.
    pub finished_at: Option<String>,
    /// The root's outcome once finished.
    pub outcome: Option<String>,
    /// For a Migrate task with apps in scope: when app data finished (or will not run).
    pub apps_finished_at: Option<String>,
    /// Created while the job's cloud site was not attached (or its Server ID unknown).
    pub not_attached: bool,
}

pub(crate) async fn requests(State(state): State<AppState>) -> Response {
    let counters = state.world().counters.clone();
    axum::Json(counters).into_response()
}

pub(crate) async fn tasks(State(state): State<AppState>) -> Response {
    let now = state.clock.now();
    let iso = |at: f64| {
        state
            .clock
            .wall(at)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let world = state.world();
    let list: Vec<SimTask> = world
        .task_order
        .iter()
        .filter_map(|id| world.tasks.get(id))
        .map(|task| {
            let job = world.jobs.get(&task.job_id);
            let finished_at = task.created_at + state.clock.real(task.plan.root_end());
            let finished = now >= finished_at;
            let apps_at = task
                .plan
                .apps_end()
                .map(|end| task.created_at + state.clock.real(end))
                .filter(|at| now >= *at);
            SimTask {
                task_id: task.id.clone(),
                job_id: task.job_id.clone(),
                task_type: task.kind.response_str(),
                server: task.server.clone(),
                server_id: job
                    .map(|j| j.definition.source.server_id.clone())
                    .unwrap_or_default(),
                cloud_url: job
                    .map(|j| j.definition.destination.url.clone())
                    .unwrap_or_default(),
                created_at: iso(task.created_at),
                finished_at: finished.then(|| iso(finished_at)),
                outcome: finished.then(|| task.plan.root_outcome().to_string()),
                apps_finished_at: apps_at.map(iso),
                not_attached: task.plan.not_attached.is_some(),
            }
        })
        .collect();
    drop(world);
    axum::Json(list).into_response()
}

fn clock_json(state: &AppState) -> Response {
    let now = state.clock.now();
    axum::Json(json!({
        "now": state.clock.wall(now).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "simulated_seconds": now * state.clock.scale(),
        "time_scale": state.clock.scale(),
        "mode": state.clock.mode(),
    }))
    .into_response()
}

pub(crate) async fn clock(State(state): State<AppState>) -> Response {
    clock_json(&state)
}

/// `POST /_sim/outage?for=3s`: the simulator stops listening for that long (real time, not
/// scaled): new connections are refused, open ones close once their answer is sent, and the
/// world (jobs, tasks, attaches, rate windows, counters) is kept, as across a restart.
pub(crate) async fn outage(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let period = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "for")
        .map(|(_, value)| value.into_owned());
    let Some(period) = period else {
        return text_error(StatusCode::BAD_REQUEST, "give ?for=DURATION, e.g. ?for=3s");
    };
    let period = match DurationValue::parse(&period) {
        Ok(period) => period.0,
        Err(message) => return text_error(StatusCode::BAD_REQUEST, &message),
    };
    let Some(outages) = &state.outages else {
        return text_error(
            StatusCode::NOT_IMPLEMENTED,
            "an outage needs the simulator on its own socket (cmafleet sim, or sim::start)",
        );
    };
    if outages.send(period).is_err() {
        return text_error(StatusCode::SERVICE_UNAVAILABLE, "the simulator is stopping");
    }
    state.world().counters.faults.outages += 1;
    let until = chrono::Utc::now() + period;
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "refusing_for_seconds": period.as_secs_f64(),
            "until": until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })),
    )
        .into_response()
}

/// `POST /_sim/clock/advance?by=90m`: moves simulated time forward (any clock mode).
pub(crate) async fn advance(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let by = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "by")
        .map(|(_, value)| value.into_owned());
    let Some(by) = by else {
        return text_error(StatusCode::BAD_REQUEST, "give ?by=DURATION, e.g. ?by=90m");
    };
    match DurationValue::parse(&by) {
        Ok(duration) => {
            state.clock.advance(duration.secs());
            clock_json(&state)
        }
        Err(message) => text_error(StatusCode::BAD_REQUEST, &message),
    }
}

//! The simulator's HTTP surface: the router (cloud, server, artifact and introspection
//! routes) over the handlers, and the count of every request and answer (with the seeded
//! garbage a successful answer may be replaced by).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::faults::{self, Garbage};
use super::options::SimOptions;
use super::shared::{AppState, Attribution, DropConnection, OutageSender, Shared, cloud_error};
use super::{cloud, introspect, server, task_reads};

/// Builds the router over a fresh world; `outages` reaches the serving loop, if there is one.
pub(crate) fn router(options: SimOptions, outages: Option<OutageSender>) -> Router {
    let state: AppState = Arc::new(Shared::new(options, outages));
    let cloud_base = "/migrations/public/v1";
    let server_base = "/servers/{server}/rest/migration/latest";
    let api = Router::new()
        .route(&format!("{cloud_base}/jobs"), post(cloud::create_job))
        .route(&format!("{cloud_base}/jobs/{{jobId}}"), get(cloud::get_job))
        .route(
            &format!("{cloud_base}/jobs/{{jobId}}/tasks"),
            post(cloud::create_task).get(task_reads::list_tasks),
        )
        .route(
            &format!("{cloud_base}/jobs/{{jobId}}/tasks/{{taskId}}"),
            get(task_reads::get_task),
        )
        .route(
            &format!("{cloud_base}/jobs/{{jobId}}/tasks/{{taskId}}/status"),
            get(task_reads::status),
        )
        .route(&format!("{cloud_base}/token"), post(cloud::token))
        .route(
            &format!("{server_base}/public/v1/attach"),
            post(server::attach),
        )
        .route(
            &format!("{server_base}/cloud/save/token"),
            post(server::save_token),
        )
        .route("/_sim/artifacts/{taskId}/{name}", get(introspect::artifact))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), count));
    let introspection = Router::new()
        .route("/_sim/requests", get(introspect::requests))
        .route("/_sim/tasks", get(introspect::tasks))
        .route("/_sim/clock", get(introspect::clock))
        .route("/_sim/clock/advance", post(introspect::advance))
        .route("/_sim/outage", post(introspect::outage));
    api.merge(introspection)
        .fallback(unmatched)
        .with_state(state)
}

async fn count(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = format!(
        "{} {}",
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |path| path.as_str())
    );
    let attribution = Attribution::default();
    request.extensions_mut().insert(attribution.clone());
    let mut response = next.run(request).await;
    if let (Some(server), Some(seq)) = (attribution.0.get(), attribution.1.get())
        && response.status().is_success()
    {
        let garbled = {
            let mut world = state.world();
            let faults = world.profile(server).faults;
            let garbled = faults::garbage(&faults, state.seed, server, *seq);
            if garbled.is_some() {
                world.counters.faults.garbage_answers += 1;
            }
            garbled
        };
        if let Some(kind) = garbled {
            response = garbage_answer(kind);
        }
    }
    let code = if response.extensions().get::<DropConnection>().is_some() {
        "dropped".to_owned()
    } else {
        response.status().as_u16().to_string()
    };
    state
        .world()
        .counters
        .record_answer(&route, &code, attribution.0.get().map(String::as_str));
    response
}

/// A 200 whose body the client cannot use (the request itself was handled).
fn garbage_answer(kind: Garbage) -> Response {
    let json = "application/json";
    match kind {
        Garbage::MalformedJson => (
            [(header::CONTENT_TYPE, json)],
            r#"{"data": {"status": "IN_PROGR"#,
        )
            .into_response(),
        Garbage::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>Service Temporarily Unavailable</title></head>\
             <body><h1>Please wait</h1></body></html>",
        )
            .into_response(),
        Garbage::Empty => ([(header::CONTENT_TYPE, json)], "").into_response(),
        Garbage::Truncated => {
            // A body that ends early: hyper closes the connection short of Content-Length.
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(br#"{"data": {"status": "#)),
                Err(std::io::Error::other(
                    "answer truncated by a simulated fault",
                )),
            ];
            let mut response = Response::new(Body::from_stream(futures::stream::iter(chunks)));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(json));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("4096"));
            response
        }
    }
}

async fn unmatched(State(state): State<AppState>, request: Request) -> Response {
    let route = format!("{} unmatched", request.method());
    state.world().counters.record_answer(&route, "404", None);
    cloud_error(&state, StatusCode::NOT_FOUND, "no such endpoint")
}

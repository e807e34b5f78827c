//! The server side of the API (`/servers/{server}/rest/migration/latest/…`): attaching a
//! cloud site and saving a connect token. Errors are plain text, as the Migration Assistant
//! on a server answers them; the status of the not-connected refusal is a shape
//! (`attach_refusal`).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::cma::wire::{AttachResponse, SaveTokenRequest, SaveTokenResponse};

use super::auth::credentials;
use super::shared::{AppState, Attribution, Shared, Side, admit, json_answer, respond, text_error};

/// Bearer (PAT) or Basic — the server's pinned credential, when it has one — or 401.
fn server_auth(state: &Shared, server: &str, headers: &HeaderMap) -> Result<(), Response> {
    let given = credentials(headers).ok_or_else(|| {
        text_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: send a personal access token (Bearer) or Basic credentials",
        )
    })?;
    let pinned = state.world().profile(server).token.clone();
    if pinned.is_some_and(|pinned| pinned != given.secret()) {
        return Err(text_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: the personal access token or password is not valid",
        ));
    }
    Ok(())
}

pub(crate) async fn attach(
    State(state): State<AppState>,
    Extension(who): Extension<Attribution>,
    Path(server): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(attach_inner(&state, &who, &server, query.as_deref(), &headers).await)
}

async fn attach_inner(
    state: &Shared,
    who: &Attribution,
    server: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, Response> {
    who.set(server);
    server_auth(state, server, headers)?;
    let cloud_url = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(key, _)| key == "cloudUrl")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            text_error(
                StatusCode::BAD_REQUEST,
                "The cloudUrl query parameter is required",
            )
        })?;
    admit(state, who, server, false, Side::Server).await?;
    let now = state.clock.now();
    let expires = {
        let mut world = state.world();
        if !world.is_connected(server, &cloud_url) {
            world.counters.server(server).attach_refused += 1;
            drop(world);
            return Err(text_error(
                state.api.shapes.attach_refusal.status(),
                &format!(
                    "The destination cloud site {cloud_url} is not authorized with the server. Reconnect the cloud site in the Cloud Migration Assistant and try again."
                ),
            ));
        }
        world.attach(server, &cloud_url, now)
    };
    Ok(json_answer(
        state,
        &AttachResponse {
            cloud_url: Some(cloud_url),
            expiry_time: Some(state.clock.wall(expires).into()),
        },
    ))
}

pub(crate) async fn save_token(
    State(state): State<AppState>,
    Extension(who): Extension<Attribution>,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            who.set(&server);
            server_auth(&state, &server, &headers)?;
            let request: SaveTokenRequest = serde_json::from_slice(&body).map_err(|_| {
                text_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Exception in saving token.",
                )
            })?;
            admit(&state, &who, &server, false, Side::Server).await?;
            let now = state.clock.now();
            let saved =
                state
                    .world()
                    .save_token(&server, &request.cloud_url, request.token.expose(), now);
            if !saved {
                return Err(text_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Exception in saving token.",
                ));
            }
            Ok(json_answer(
                &state,
                &SaveTokenResponse {
                    cloud_url: Some(request.cloud_url),
                    message: Some("Token saved successfully.".into()),
                },
            ))
        }
        .await,
    )
}

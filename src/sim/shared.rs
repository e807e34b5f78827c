//! What every handler of the simulator shares: the state behind the router, the gates an
//! API request passes (authentication, rate limits, and the seeded faults of the server it
//! concerns), and the forms of an answer (the cloud's error envelope, a JSON answer in the
//! scenario's shapes, a plain-text server error).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::auth::{Credentials, credentials};
use super::clock::SimClock;
use super::faults::{self, InjectedError};
use super::limits::RateClass;
use super::options::SimOptions;
use super::profile::ApiSettings;
use super::shapes;
use super::values::{RetryAfterForm, TimeFormat};
use super::world::World;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub world: Mutex<World>,
    pub clock: SimClock,
    /// API settings, copied out of the world so handlers read them without the lock.
    pub api: ApiSettings,
    /// Seed of fault decisions.
    pub seed: u64,
    /// Numbers the `atl-traceid` of answers.
    trace_ids: AtomicU64,
    /// Tells the serving loop to refuse connections for a while (`POST /_sim/outage`);
    /// `None` when the router runs without a socket of its own.
    pub outages: Option<OutageSender>,
}

/// How long the listener should stay closed, sent to the serving loop.
pub(crate) type OutageSender = tokio::sync::mpsc::UnboundedSender<std::time::Duration>;

pub(crate) type AppState = Arc<Shared>;

impl Shared {
    pub(super) fn new(options: SimOptions, outages: Option<OutageSender>) -> Shared {
        let scale = if options.time_scale.is_finite() && options.time_scale > 0.0 {
            options.time_scale
        } else {
            tracing::warn!(
                time_scale = options.time_scale,
                "invalid time scale; using 1"
            );
            1.0
        };
        let scenario = Arc::new(options.scenario);
        Shared {
            clock: SimClock::new(scale, scenario.clock_mode()),
            api: scenario.api(),
            seed: scenario.seed(),
            world: Mutex::new(World::new(Arc::clone(&scenario), scale)),
            trace_ids: AtomicU64::new(1),
            outages,
        }
    }

    /// The world, even if a panicking handler poisoned the lock (state stays usable).
    pub(super) fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn trace_id(&self) -> String {
        format!("{:016x}", self.trace_ids.fetch_add(1, Ordering::Relaxed))
    }
}

/// Which server a request concerned (and its request number there, once its faults were
/// decided), filled in by the handler, read by [`count`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Attribution(
    pub(super) Arc<OnceLock<String>>,
    pub(super) Arc<OnceLock<u64>>,
);

impl Attribution {
    pub(super) fn set(&self, server: &str) {
        let _ = self.0.set(server.to_owned());
    }

    fn set_sequence(&self, seq: u64) {
        let _ = self.1.set(seq);
    }
}

/// Marks an answer that must not be sent: the connection is closed instead (see `serve`).
/// Without that layer (e.g. `router()` called directly) the answer is a plain 504.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// An error answer as the cloud API gives it: the body in the scenario's error envelope
/// (`shapes`), and an `atl-traceid` header naming the request.
pub(crate) fn cloud_error(state: &Shared, status: StatusCode, message: &str) -> Response {
    let id = state.trace_id();
    let (content_type, body) = shapes::error_body(
        state.api.shapes.error_envelope,
        status.as_u16(),
        message,
        &id,
    );
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("atl-traceid"), value);
    }
    response
}

/// A plain-text error as the server's Migration Assistant answers it.
pub(crate) fn text_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_owned(),
    )
        .into_response()
}

/// A JSON answer with the scenario's timestamp format applied (fields keep their wire
/// order unless timestamps must be rewritten).
pub(crate) fn json_answer<T: Serialize>(state: &Shared, value: &T) -> Response {
    if state.api.shapes.timestamps == TimeFormat::Iso {
        return axum::Json(value).into_response();
    }
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    retime(&mut value, state.api.shapes.timestamps);
    axum::Json(value).into_response()
}

/// One page of a paginated answer.
#[derive(Debug, Serialize)]
pub(crate) struct Page<T> {
    pub data: T,
    pub links: Value,
}

/// Rewrites `createdAt`, `expireAt` and `expiryTime` from ISO-8601 into epoch numbers.
pub(crate) fn retime(value: &mut Value, format: TimeFormat) {
    if format == TimeFormat::Iso {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                let is_time = matches!(key.as_str(), "createdAt" | "expireAt" | "expiryTime");
                let parsed = field
                    .as_str()
                    .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok());
                match (is_time, parsed) {
                    (true, Some(at)) => {
                        *field = match format {
                            TimeFormat::EpochMillis => Value::from(at.timestamp_millis()),
                            _ => Value::from(at.timestamp()),
                        };
                    }
                    _ => retime(field, format),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| retime(item, format)),
        _ => {}
    }
}

/// The cloud user of a request: 401 without (or with malformed, or wrong pinned)
/// credentials, 403 for a user the scenario says is not an admin.
pub(crate) fn cloud_user(state: &Shared, headers: &HeaderMap) -> Result<String, Response> {
    let Some(Credentials::Basic { user, secret }) = credentials(headers) else {
        return Err(cloud_error(
            state,
            StatusCode::UNAUTHORIZED,
            "Unauthorized: send HTTP Basic credentials (email and API token)",
        ));
    };
    let world = state.world();
    if world
        .scenario
        .pinned_token(&user)
        .is_some_and(|pinned| pinned != secret)
    {
        drop(world);
        return Err(cloud_error(
            state,
            StatusCode::UNAUTHORIZED,
            "Unauthorized: invalid email or API token",
        ));
    }
    if !world.scenario.is_admin(&user) {
        drop(world);
        return Err(cloud_error(
            state,
            StatusCode::FORBIDDEN,
            "Forbidden: the user is not an admin of the destination site",
        ));
    }
    Ok(user)
}

/// Takes one request from the user's window of `class`, or answers 429.
pub(crate) fn rate_limit(state: &Shared, user: &str, class: RateClass) -> Result<(), Response> {
    let now = state.clock.now();
    let wait = {
        let mut world = state.world();
        let rate = world.scenario.rate(user, class);
        let scale = world.scale;
        match world.limiter.try_take(user, class, rate, scale, now) {
            Ok(()) => return Ok(()),
            Err(wait) => {
                world.counters.record_rate_limited(user, class.label());
                wait
            }
        }
    };
    let mut response = cloud_error(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        &format!("Rate limit exceeded for {}", class.label()),
    );
    let reset = state.clock.wall(now + wait);
    let headers = response.headers_mut();
    let whole_seconds = wait.ceil().max(1.0);
    let retry_after = match state.api.shapes.retry_after {
        RetryAfterForm::Seconds => Some(format!("{whole_seconds}")),
        RetryAfterForm::HttpDate => {
            let at = state.clock.wall(now + whole_seconds);
            Some(httpdate::fmt_http_date(std::time::SystemTime::from(at)))
        }
        RetryAfterForm::ResetOnly | RetryAfterForm::None => None,
    };
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::RETRY_AFTER, value);
    }
    let reset = reset.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if state.api.shapes.retry_after != RetryAfterForm::None
        && let Ok(value) = HeaderValue::from_str(&reset)
    {
        headers.insert(HeaderName::from_static("x-ratelimit-reset"), value);
    }
    Err(response)
}

/// How a request's injected error is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Cloud,
    Server,
}

/// Counts a request against `server` (attributing it for the counters), waits its seeded
/// latency and answers its seeded error, if any. Returns the request's sequence number.
pub(crate) async fn admit(
    state: &Shared,
    who: &Attribution,
    server: &str,
    is_get: bool,
    side: Side,
) -> Result<u64, Response> {
    who.set(server);
    let (seq, decision) = {
        let mut world = state.world();
        let faults = world.profile(server).faults;
        let seq = world.next_sequence(server);
        who.set_sequence(seq);
        let decision = faults::decide(&faults, state.seed, server, seq, is_get);
        if !decision.delay.is_zero() {
            world.counters.faults.delayed_requests += 1;
        }
        match decision.error {
            Some(InjectedError::Burst) => world.counters.faults.burst_errors += 1,
            Some(InjectedError::Random(_)) => world.counters.faults.server_errors += 1,
            None => {}
        }
        (seq, decision)
    };
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    match (decision.error, side) {
        (None, _) => Ok(seq),
        (Some(error), Side::Cloud) => Err(cloud_error(
            state,
            error.status(),
            "The service is temporarily unavailable; try again later",
        )),
        (Some(error), Side::Server) => Err(text_error(
            error.status(),
            "The Migration Assistant is temporarily unavailable",
        )),
    }
}

/// `http://HOST` of the request, for links and artifact locations; `https://HOST` behind a
/// front that ended TLS and said so (`X-Forwarded-Proto: https`), as a load balancer does.
pub(crate) fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    let scheme = match headers.get("x-forwarded-proto") {
        Some(proto) if proto.as_bytes().eq_ignore_ascii_case(b"https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// Either answer.
pub(crate) fn respond(result: Result<Response, Response>) -> Response {
    result.unwrap_or_else(|error| error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn origin_is_the_host_with_the_scheme_a_tls_front_names() {
        let mut headers = HeaderMap::new();
        assert_eq!(origin(&headers), "http://localhost");
        headers.insert(header::HOST, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(origin(&headers), "http://127.0.0.1:8443");
        headers.insert("x-forwarded-proto", "HTTPS".parse().unwrap());
        assert_eq!(origin(&headers), "https://127.0.0.1:8443");
        headers.insert("x-forwarded-proto", "http".parse().unwrap());
        assert_eq!(origin(&headers), "http://127.0.0.1:8443");
    }

    #[test]
    fn retime_converts_only_timestamps() {
        let original = json!({
            "createdAt": "2024-05-01T10:00:00.500Z",
            "name": "2024-05-01T10:00:00Z",
            "results": {"artifacts": [{"expireAt": "2024-05-02T10:00:00Z"}]}
        });
        let mut seconds = original.clone();
        retime(&mut seconds, TimeFormat::EpochSeconds);
        assert_eq!(seconds["createdAt"], json!(1_714_557_600));
        assert_eq!(seconds["name"], original["name"]);
        assert_eq!(
            seconds["results"]["artifacts"][0]["expireAt"],
            json!(1_714_644_000)
        );
        let mut millis = original.clone();
        retime(&mut millis, TimeFormat::EpochMillis);
        assert_eq!(millis["createdAt"], json!(1_714_557_600_500_i64));
        let mut iso = original.clone();
        retime(&mut iso, TimeFormat::Iso);
        assert_eq!(iso, original);
    }
}

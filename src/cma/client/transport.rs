//! One attempt and the retry loop around it: deadlines, capped bodies, the classification of
//! every answer and failure, and the rule that a create whose request may have arrived is
//! never sent again.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::answer::{ServiceMessage, decode, redact, shown_location, with_request_id};
use super::attempt::{Answer, Failure, api_error, cancelled};
use super::hooks::RequestGate;
use super::http::HttpClient;
use super::refusal::refusal;
use super::unreached::transport_message;
use crate::cma::error::{ApiError, Endpoint, ErrorKind};
use crate::cma::retry::{backoff, retry_after};
use crate::cma::surprise::SurpriseKind;
use crate::secret::Secret;

/// A call may meet this many times the policy's attempts in 429s before it gives up.
const RATE_LIMITED_ATTEMPTS_FACTOR: u32 = 4;

/// How much of an error body is read to find its message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// How to authenticate one request.
#[derive(Clone, Copy)]
pub(super) enum Auth<'a> {
    Basic {
        user: &'a str,
        password: &'a Secret,
    },
    Bearer(&'a Secret),
    /// An `Authorization` header prepared once for many requests (the cloud user's).
    Prepared(&'a HeaderValue),
}

impl Auth<'_> {
    pub(super) fn apply(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Prepared(value) => request.header(AUTHORIZATION, value.clone()),
        }
    }
}

/// Everything needed to send one API request, again if need be.
pub(super) struct Call<'a> {
    pub endpoint: Endpoint,
    pub method: Method,
    pub url: Url,
    pub auth: Auth<'a>,
    /// A JSON body; `Content-Type: application/json` is sent on every POST regardless.
    pub body: Option<Vec<u8>>,
    /// The rate gate of the cloud user (`None` for server calls).
    pub gate: Option<&'a dyn RequestGate>,
    /// Secret values that must never appear in an error message.
    pub secrets: Cow<'a, [String]>,
}

/// A create that may have reached the service: the caller must reconcile, not re-send.
fn outcome_unknown(mut error: ApiError) -> ApiError {
    error.kind = ErrorKind::OutcomeUnknown;
    error
}

impl HttpClient {
    /// Sends `call` until it succeeds, fails for good, or the retry policy is spent.
    pub(super) async fn execute(
        &self,
        call: &Call<'_>,
        cancel: &CancellationToken,
    ) -> Result<Answer, ApiError> {
        let result = self
            .with_retries(call.endpoint, call.gate, cancel, || {
                self.attempt(call, cancel)
            })
            .await;
        result.map_err(|error| {
            // A create's 2xx whose body cannot be used: the service acted, the id is lost.
            let answered = error
                .status
                .is_some_and(|status| (200..300).contains(&status));
            let error = if call.endpoint.is_create() && answered {
                outcome_unknown(error)
            } else {
                error
            };
            redact(error, &call.secrets)
        })
    }

    /// Sends `call` and decodes its JSON answer. For a create, an answer that cannot be read
    /// is "outcome unknown": the service did act, but the new id is lost. Any other call whose
    /// 2xx answer is not JSON at all (a proxy's page, JSON cut short, an empty body) is sent
    /// again, like a 5xx: reads and attaches change nothing when repeated.
    pub(super) async fn execute_json<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        cancel: &CancellationToken,
    ) -> Result<T, ApiError> {
        if call.endpoint.is_create() {
            let answer = self.execute(call, cancel).await?;
            return decode(call.endpoint, &answer)
                .map_err(|error| redact(outcome_unknown(error), &call.secrets));
        }
        self.with_retries(call.endpoint, call.gate, cancel, || async {
            let answer = self.attempt(call, cancel).await?;
            decode(call.endpoint, &answer).map_err(|error| {
                // JSON of another shape is an answer we do not understand, now and next time;
                // anything else (an HTML page, JSON cut short, nothing) is a passing garble.
                let json = serde_json::from_slice::<serde::de::IgnoredAny>(&answer.body).is_ok();
                if json {
                    Failure::Final(error)
                } else {
                    Failure::MaybeApplied {
                        error,
                        reason: "decode",
                    }
                }
            })
        })
        .await
        .map_err(|error| redact(error, &call.secrets))
    }

    /// The retry loop shared by API calls and artifact downloads: waits on the gate before
    /// every attempt, pauses the gate on a 429, backs off with jitter, stays cancellable.
    pub(super) async fn with_retries<T, F>(
        &self,
        endpoint: Endpoint,
        gate: Option<&dyn RequestGate>,
        cancel: &CancellationToken,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, ApiError>
    where
        F: std::future::Future<Output = Result<T, Failure>>,
    {
        let policy = &self.settings.retry;
        let class = endpoint.rate_class();
        let mut number = 1u32;
        // 429s answered so far: they have their own, larger budget (a 429 was certainly not
        // processed, and in a storm one caller may meet several before its turn comes).
        let mut limited = 0u32;
        loop {
            match (gate, class) {
                (Some(gate), Some(class)) => {
                    let waited = gate
                        .acquire(class, cancel)
                        .await
                        .map_err(|_| cancelled(endpoint))?;
                    if !waited.is_zero() {
                        tracing::trace!(endpoint = %endpoint, ?waited, "waited on the rate bucket");
                    }
                }
                _ if cancel.is_cancelled() => return Err(cancelled(endpoint)),
                _ => {}
            }
            let (error, reason, delay) = match attempt().await {
                Ok(value) => return Ok(value),
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::NotSent(error)) => {
                    self.warn_first_connect_failure(&error);
                    (error, "connect", None)
                }
                Err(Failure::MaybeApplied { error, .. }) if endpoint.is_create() => {
                    return Err(outcome_unknown(error));
                }
                Err(Failure::MaybeApplied { error, reason }) => (error, reason, None),
                Err(Failure::RateLimited { error, wait }) => {
                    limited += 1;
                    self.observer.on_rate_limited(endpoint);
                    let wait = wait.unwrap_or_else(|| backoff(policy, number, rand::random()));
                    match (gate, class) {
                        // The gate holds this caller and every other of the user.
                        (Some(gate), Some(class)) => {
                            gate.pause(class, wait);
                            (error, "429", Some(Duration::ZERO))
                        }
                        _ => (error, "429", Some(wait)),
                    }
                }
            };
            let attempts = policy.max_attempts.max(1);
            let spent = if reason == "429" {
                limited >= attempts.saturating_mul(RATE_LIMITED_ATTEMPTS_FACTOR)
            } else {
                number - limited >= attempts
            };
            if spent {
                return Err(error);
            }
            self.observer.on_retry(endpoint, reason);
            let delay = delay.unwrap_or_else(|| backoff(policy, number, rand::random()));
            tracing::debug!(endpoint = %endpoint, reason, ?delay, attempt = number, "retrying");
            if !delay.is_zero() {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Err(cancelled(endpoint)),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            number += 1;
        }
    }

    /// The first connection failure to each place is a WARN line at once (a wrong URL, a
    /// proxy or firewall in the way); later ones, retried, are logged at debug only.
    pub(super) fn warn_first_connect_failure(&self, error: &ApiError) {
        let mut warned = self
            .connect_warned
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if warned.len() < 64 && warned.insert(error.message.clone()) {
            tracing::warn!("{} (retrying)", error.message);
        }
    }

    /// One attempt: send, read the capped body, classify. Nothing is sent once `cancel`
    /// fired. Reads on the wire are abandoned at once on `cancel`; a create on the wire is
    /// allowed to finish (bounded by the deadline) so that its outcome is known, unless the
    /// client's abandon token fires first (the run's stop grace is over): its outcome is
    /// then unknown, for the next run to reconcile.
    async fn attempt(
        &self,
        call: &Call<'_>,
        cancel: &CancellationToken,
    ) -> Result<Answer, Failure> {
        if cancel.is_cancelled() {
            return Err(Failure::Final(cancelled(call.endpoint)));
        }
        let mut request = self
            .pool_for(&call.url)
            .request(call.method.clone(), call.url.clone());
        request = call.auth.apply(request);
        if call.method == Method::POST {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let exchange = self.exchange(
            call.endpoint,
            request,
            self.settings.max_body_bytes,
            &call.secrets,
        );
        if call.endpoint.is_create() {
            tokio::select! {
                biased;
                _ = self.abandon.cancelled() => Err(Failure::MaybeApplied {
                    error: api_error(
                        call.endpoint,
                        None,
                        ErrorKind::Timeout,
                        "abandoned on the wire when the run stopped (its stop grace ended before the answer came)",
                    ),
                    reason: "abandoned",
                }),
                result = exchange => result,
            }
        } else {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(Failure::Final(cancelled(call.endpoint))),
                result = exchange => result,
            }
        }
    }

    /// Sends `request` and reads its answer within one deadline, reporting the attempt to
    /// the observer.
    async fn exchange(
        &self,
        endpoint: Endpoint,
        request: reqwest::RequestBuilder,
        max_body: usize,
        secrets: &[String],
    ) -> Result<Answer, Failure> {
        let started = Instant::now();
        let deadline = started + self.settings.request_timeout;
        let (code, result) = match tokio::time::timeout_at(deadline, request.send()).await {
            Err(_) => ("timeout".to_owned(), Err(timed_out(endpoint, self))),
            Ok(Err(err)) => {
                let (code, failure) = self.send_failure(endpoint, err);
                (code.to_owned(), Err(failure))
            }
            Ok(Ok(response)) => {
                let status = response.status();
                let headers = response.headers().clone();
                let cap = if status.is_success() {
                    max_body
                } else {
                    MAX_ERROR_BODY_BYTES
                };
                match tokio::time::timeout_at(deadline, read_capped(response, cap)).await {
                    Err(_) => ("timeout".to_owned(), Err(timed_out(endpoint, self))),
                    Ok(body) => {
                        let code = match &body {
                            Err(BodyError::Broken(_)) if status.is_success() => "error".to_owned(),
                            _ => status.as_u16().to_string(),
                        };
                        (
                            code,
                            self.classify(endpoint, status, headers, body, secrets),
                        )
                    }
                }
            }
        };
        self.observer
            .on_response(endpoint, &code, started.elapsed());
        result
    }
}

fn timed_out(endpoint: Endpoint, client: &HttpClient) -> Failure {
    Failure::MaybeApplied {
        error: api_error(
            endpoint,
            None,
            ErrorKind::Timeout,
            format!(
                "no complete answer within {}",
                humantime::format_duration(client.settings.request_timeout)
            ),
        ),
        reason: "timeout",
    }
}

pub(super) enum BodyError {
    TooLarge { limit: u64 },
    Broken(reqwest::Error),
}

/// Reads at most `cap` bytes; refuses a larger body by its declared length or as it grows.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    let limit = cap as u64;
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Broken)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl HttpClient {
    /// Classifies a non-2xx answer, reading its body (capped, within `timeout`) for a message.
    pub(super) async fn classify_error_answer(
        &self,
        endpoint: Endpoint,
        response: reqwest::Response,
        timeout: Duration,
        secrets: &[String],
    ) -> Failure {
        let status = response.status();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(timeout, read_capped(response, MAX_ERROR_BODY_BYTES))
            .await
            .unwrap_or_else(|_| Ok(Vec::new()));
        match self.classify(endpoint, status, headers, body, secrets) {
            Err(failure) => failure,
            Ok(_) => Failure::Final(api_error(
                endpoint,
                Some(status.as_u16()),
                ErrorKind::BadRequest,
                "unexpected answer",
            )),
        }
    }

    /// Classifies a received answer; an error body of an unknown shape is a surprise.
    fn classify(
        &self,
        endpoint: Endpoint,
        status: StatusCode,
        headers: HeaderMap,
        body: Result<Vec<u8>, BodyError>,
        secrets: &[String],
    ) -> Result<Answer, Failure> {
        if !status.is_success()
            && let Ok(bytes) = &body
        {
            let said = ServiceMessage::read(&headers, bytes);
            if let Some(shape) = &said.unknown_envelope {
                let sample = String::from_utf8_lossy(bytes);
                self.surprise(
                    SurpriseKind::ErrorEnvelope,
                    shape,
                    &sample,
                    endpoint,
                    secrets,
                );
            }
        }
        classify(endpoint, status, headers, body)
    }
}

/// Classifies a received answer.
fn classify(
    endpoint: Endpoint,
    status: StatusCode,
    headers: HeaderMap,
    body: Result<Vec<u8>, BodyError>,
) -> Result<Answer, Failure> {
    let code = status.as_u16();
    if status.is_success() {
        return match body {
            Ok(body) => Ok(Answer { headers, body }),
            Err(BodyError::TooLarge { limit }) => {
                let message = format!("the answer is larger than the limit of {limit} bytes");
                let error = api_error(endpoint, Some(code), ErrorKind::Decode, message);
                Err(Failure::Final(with_request_id(error, &headers, None)))
            }
            Err(BodyError::Broken(err)) => {
                let message = format!("the answer was cut short: {}", transport_message(&err));
                let error = api_error(endpoint, Some(code), ErrorKind::Decode, message);
                let error = with_request_id(error, &headers, None);
                Err(Failure::MaybeApplied {
                    error,
                    reason: "error",
                })
            }
        };
    }
    // An error body is only read for its message: a broken or huge one is no worse than none.
    let body = body.unwrap_or_default();
    let said = ServiceMessage::read(&headers, &body);
    let message = said
        .text
        .clone()
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_owned());
    let error = |kind: ErrorKind| {
        let error = api_error(endpoint, Some(code), kind, message.clone());
        with_request_id(error, &headers, said.id.clone())
    };
    if status.is_redirection() {
        let location = headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(shown_location)
            .unwrap_or_else(|| "(no Location header)".to_owned());
        let mut error = error(ErrorKind::Redirect { location });
        error.message = "redirects are never followed".to_owned();
        return Err(Failure::Final(error));
    }
    if code == 429 {
        let wait = retry_after(&headers, SystemTime::now());
        return Err(Failure::RateLimited {
            error: error(ErrorKind::RateLimited { retry_after: wait }),
            wait,
        });
    }
    if let Some(kind) = refusal(endpoint, code, said.text.as_deref()) {
        return Err(Failure::Final(error(kind)));
    }
    let kind = match code {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        400..=499 => ErrorKind::BadRequest,
        _ => {
            return Err(Failure::MaybeApplied {
                error: error(ErrorKind::Server),
                reason: "5xx",
            });
        }
    };
    Err(Failure::Final(error(kind)))
}

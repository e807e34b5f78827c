//! What the client asks of the program that runs it: an observer told of every request
//! (the metrics implement it) and, for every cloud request, a gate to wait on first (the
//! fleet's rate buckets implement it).

use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::cma::error::{Endpoint, RateClass};
use crate::cma::surprise::SurpriseKind;

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
    /// A kind and value of surprise seen for the first time in the run (`surprise`).
    fn on_surprise(&self, kind: SurpriseKind);
}

/// An observer that records nothing (tests, one-off commands).
pub struct NoopObserver;

impl ApiObserver for NoopObserver {
    fn on_response(&self, _: Endpoint, _: &str, _: Duration) {}
    fn on_retry(&self, _: Endpoint, _: &'static str) {}
    fn on_rate_limited(&self, _: Endpoint) {}
    fn on_rate_wait(&self, _: RateClass, _: Duration) {}
    fn on_surprise(&self, _: SurpriseKind) {}
}

/// Raised when a wait was cut short by cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// What every cloud request waits on first: the rate buckets of one cloud user
/// (`fleet::limits` implements it). A 429 pauses the class for everyone of that user.
///
/// The gate reports its own waits to the observer (`on_rate_wait`); the client does not
/// report them again.
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

/// A gate that never waits (server-side calls, one-off commands, tests).
pub struct OpenGate;

impl RequestGate for OpenGate {
    fn acquire<'a>(
        &'a self,
        _: RateClass,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Duration, Cancelled>> {
        let result = if cancel.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(Duration::ZERO)
        };
        Box::pin(std::future::ready(result))
    }

    fn pause(&self, _: RateClass, _: Duration) {}
}

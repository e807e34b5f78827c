//! What one attempt comes to: a complete 2xx answer, or the failure the retry loop acts
//! on; and the one way every part of the client builds an [`ApiError`].

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::cma::error::{ApiError, Endpoint, ErrorKind};

/// A complete answer with a 2xx status.
pub(super) struct Answer {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Why one attempt failed, as the retry loop needs to know it.
pub(super) enum Failure {
    /// The request certainly did not reach the service: any call may be sent again.
    NotSent(ApiError),
    /// The request may have been processed: reads retry, creates are outcome unknown.
    MaybeApplied {
        error: ApiError,
        reason: &'static str,
    },
    /// 429: the request was not processed; the bucket is empty for `wait` (if said).
    RateLimited {
        error: ApiError,
        wait: Option<Duration>,
    },
    /// Sending again cannot help (4xx, a redirect, an answer that cannot be used).
    Final(ApiError),
}

pub(super) fn api_error(
    endpoint: Endpoint,
    status: Option<u16>,
    kind: ErrorKind,
    message: impl Into<String>,
) -> ApiError {
    ApiError {
        endpoint,
        status,
        kind,
        request_id: None,
        message: message.into(),
    }
}

pub(super) fn cancelled(endpoint: Endpoint) -> ApiError {
    api_error(endpoint, None, ErrorKind::Cancelled, "")
}

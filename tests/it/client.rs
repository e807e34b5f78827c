//! The CMA client against hand-written answers in every tolerant shape of `docs/api.md`
//! (never the simulator, so a simulator bug cannot hide a client bug).

mod credentials;
mod faults;
mod paging;
mod rate_limits;
mod round_trip;
mod stub;

use std::sync::Arc;

use base64::Engine as _;
use cmafleet::cma::client::{CloudClient, HttpClient, OpenGate, RequestGate};
use cmafleet::secret::Secret;
use url::Url;

pub const EMAIL: &str = "admin@acme.example";
pub const TOKEN: &str = "ATATT-cloud-token-s3cret";

/// A cloud client for `EMAIL` against `api`, behind `gate` (an open one if `None`).
pub fn cloud(http: &HttpClient, api: &Url, gate: Option<Arc<dyn RequestGate>>) -> CloudClient {
    CloudClient::new(
        http.clone(),
        api,
        EMAIL,
        Secret::new(TOKEN),
        gate.unwrap_or_else(|| Arc::new(OpenGate)),
    )
}

/// The `Authorization` value Basic auth must produce.
pub fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

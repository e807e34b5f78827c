//! The simulator of both sides of the CMA migration API (`cmafleet sim`): routes, world
//! state, scenarios, faults and request counters.
//!
//! - `scenario` reads the scenario file; `profile` resolves it per server and user.
//! - `plan` decides, when a task is created, everything that will happen to it; `progress`
//!   renders its status tree at any later time (a pure function: no timers, no loops).
//! - `world` holds jobs, tasks, attaches, tokens and counters behind one mutex.
//! - `shapes` resolves how answers are shaped where the public material is silent
//!   (documented by default, a scenario's `[shapes]` table, or picked from a seed) and
//!   reshapes canonical answers accordingly.
//! - `shared` is what every handler shares: the state behind the router, the request gates
//!   (auth, `limits`, `faults`) and the forms of an answer; `cloud`, `task_reads`, `server`,
//!   `artifacts` and `introspect` are the handlers; `routes` builds the router over them and
//!   counts every request; `status` selects, filters and paginates trees; `serve` runs it
//!   all over hyper.
//!
//! The scenario format is documented in `inventories/scenarios.md`.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early answers as `Err(Response)` on cold paths; boxing them only adds noise"
)]

mod artifacts;
mod auth;
mod catalog;
mod clock;
mod cloud;
mod counters;
mod demo;
mod dice;
mod faults;
mod introspect;
mod limits;
mod options;
mod plan;
mod profile;
mod progress;
mod routes;
mod scenario;
mod serve;
mod server;
mod shapes;
mod shared;
mod status;
mod task_reads;
mod values;
mod world;

use std::net::SocketAddr;

pub use counters::{FaultCounters, RateLimited, RequestCounters, ServerCounters, TaskCreates};
pub use introspect::SimTask;
pub use options::SimOptions;
pub use scenario::{Scenario, ScenarioError};
pub use serve::SimHandle;

/// Binds `listen` (port 0 allowed) and serves until `shutdown` fires. A time scale that is
/// not a positive number is refused (`InvalidInput`).
pub async fn start(listen: SocketAddr, options: SimOptions) -> std::io::Result<SimHandle> {
    serve::start(listen, options).await
}

/// The simulator as a router over a fresh world, for tests that need no socket. (A
/// "dropped connection" fault answers 504 here, and `POST /_sim/outage` 501; only [`start`]
/// can drop connections or refuse them.)
pub fn router(options: SimOptions) -> axum::Router {
    routes::router(options, None)
}

//! How the simulator runs: what both the router and the serving loop are built from.

use super::scenario::Scenario;

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Every duration and rate-limit window is divided by this.
    pub time_scale: f64,
    pub scenario: Scenario,
}

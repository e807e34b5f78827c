//! The simulator of both sides of the CMA migration API (`cmafleet sim`): routes, world
//! state, scenarios, faults and request counters.
//!
//! SKELETON: signatures fixed; bodies to be written (issue 2).

use std::net::SocketAddr;
use std::path::Path;

use tokio_util::sync::CancellationToken;

/// A loaded scenario (see `inventories/scenario-example.toml`).
#[derive(Debug, Clone, Default)]
pub struct Scenario {}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ScenarioError {
    pub path: String,
    pub message: String,
}

impl Scenario {
    /// Loads TOML or YAML (by extension); a bad file names the line and what is wrong.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let _ = path;
        todo!()
    }

    /// The scenario of `cmafleet demo` (matches `inventories/demo.csv`).
    pub fn demo() -> Scenario {
        todo!()
    }
}

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Every duration and rate-limit window is divided by this.
    pub time_scale: f64,
    pub scenario: Scenario,
}

/// A running simulator.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub join: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    /// `http://IP:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Binds `listen` (port 0 allowed) and serves until `shutdown` fires.
pub async fn start(listen: SocketAddr, options: SimOptions) -> std::io::Result<SimHandle> {
    let _ = (listen, options);
    todo!()
}

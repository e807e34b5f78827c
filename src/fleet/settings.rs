//! What a fleet run is told to do, as plain values: the caps, the policy each site's pipeline
//! follows, the clocks of a stop, and how the run describes itself in its record. `config`
//! resolves flags, variables and the settings file into these; the engine never sees where a
//! value came from.

use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;

use super::policy::{PollPolicy, RateConfig};
use crate::cma::client::ClientSettings;
use crate::vocab::Mode;

/// The settings of one fleet run.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// Sites running at once (`--concurrency`): bounds the open connections and the memory of
    /// sites in flight.
    pub concurrency: usize,
    /// Sites running at once on one source server (`--per-server`): a Server instance runs
    /// one migration task at a time well.
    pub per_server: usize,
    /// What each site's pipeline does, and how it paces itself.
    pub pipeline: PipelinePolicy,
    /// How long after its start the run stops starting work and leaves its sites resumable.
    pub deadline: Option<Duration>,
    /// The service's rate limits per cloud user: every request waits for its class's turn.
    pub rates: RateConfig,
    /// Timeouts, retries and TLS of every HTTP client.
    pub client: ClientSettings,
    /// The migration API's base URL (a simulator's in tests and rehearsals).
    pub cloud_api_url: Url,
    /// Sites of one cloud user failing alike in a row that stop that user's other sites
    /// (0: never).
    pub stop_after_same_failures: usize,
    /// After a first signal, how long requests already sent may take before they are dropped:
    /// the run must end within seconds whatever the network does.
    pub stop_grace: Duration,
    /// The shard this run covers (`2/4`), named in its record and live status.
    pub shard: Option<String>,
    /// The run's options as recorded in the state store (secrets redacted): what a later
    /// `status --refresh` runs again with, and what a reader of the record sees.
    pub options: serde_json::Value,
}

/// The policy every pipeline of a run follows (limits are values, not pipeline variants).
#[derive(Debug, Clone)]
pub struct PipelinePolicy {
    /// What each task is: checks only, or checks and the migration.
    pub mode: Mode,
    /// Migrate mode: a Check task first, gating the Migrate task.
    pub precheck: bool,
    /// A check warning blocks like an error (the check-mode outcome; the precheck gate).
    pub block_on_warnings: bool,
    /// Checks sent as excluded on Migrate, where the last check run marked them excludable.
    pub override_checks: Vec<String>,
    /// Connect the server to its cloud site when an attach says it is not connected.
    pub connect: bool,
    /// Poll until the apps' migration ends too, not only the core's.
    pub wait_apps: bool,
    /// Migrate sites already migrated again (a migration whose apps ran on is then started
    /// anew instead of followed up).
    pub remigrate: bool,
    /// No task is created at or after this instant (the night window); sites not started by
    /// then are skipped.
    pub no_new_tasks_after: Option<DateTime<Utc>>,
    /// The bounds of a task's polling interval.
    pub poll: PollPolicy,
    /// How long a new task's status may answer 404 before it counts as an error (the service
    /// is eventually consistent).
    pub young_task_grace: Duration,
    /// Reads per second of one cloud user's budget: polls of many sites share it.
    pub reads_per_second: f64,
}

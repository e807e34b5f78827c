//! The simulator's world: jobs, tasks (each with its plan), attaches, connections, connect
//! tokens, per-server load, request sequence numbers, rate windows and counters. One
//! `Mutex<World>` guards it; it is never held across an `.await`, and every lookup is by id.
//!
//! Instants are real seconds since start (see `clock`); durations from the scenario are
//! simulated and divided by the time scale here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::cma::wire::{CreateTaskRequest, JobDefinition, TaskKind};

use super::counters::RequestCounters;
use super::dice;
use super::limits::RateLimiter;
use super::plan::{Situation, TaskPlan};
use super::profile::{ApiSettings, ServerProfile};
use super::scenario::Scenario;

/// A job: immutable once created.
#[derive(Debug)]
pub(crate) struct Job {
    pub id: String,
    pub definition: JobDefinition,
    /// The server its Server ID names; `None` when no server has that ID.
    pub server: Option<String>,
    /// The destination, normalised (lower case, no trailing `/`) to match attaches.
    pub cloud: String,
    /// Task ids, oldest first.
    pub tasks: Vec<String>,
    /// Real instant of creation (a young job may refuse tasks: `young_job_404`).
    pub created_at: f64,
}

/// A task: its plan decides everything that will happen to it.
#[derive(Debug)]
pub(crate) struct TaskRecord {
    pub id: String,
    pub job_id: String,
    pub kind: TaskKind,
    /// Real instant of creation.
    pub created_at: f64,
    /// The options sent, echoed as `payload`.
    pub payload: Option<Value>,
    pub plan: Arc<TaskPlan>,
    pub server: Option<String>,
}

/// A connect token from `POST /token`.
#[derive(Debug)]
struct IssuedToken {
    cloud: String,
    expires_at: f64,
}

/// Running tasks of one server, to measure how many ran at once.
#[derive(Debug, Default)]
struct ServerLoad {
    /// Real instants at which the running tasks' roots finish.
    running_until: Vec<f64>,
    max: u64,
}

#[derive(Debug)]
pub(crate) struct World {
    pub scenario: Arc<Scenario>,
    pub api: ApiSettings,
    /// Simulated seconds per real second.
    pub scale: f64,
    /// Seeds ids and tokens: the scenario's seed when it sets one (ids repeat between
    /// runs), else random per start (ids never collide with an earlier run's).
    id_seed: u64,
    pub jobs: HashMap<String, Job>,
    pub tasks: HashMap<String, TaskRecord>,
    /// Task ids in creation order (for `/_sim/tasks`).
    pub task_order: Vec<String>,
    jobs_made: u64,
    tasks_made: u64,
    tokens_made: u64,
    /// (server, cloud) → real instant the attach expires.
    attaches: HashMap<(String, String), f64>,
    /// (server, cloud) pairs connected by save-token.
    connections: HashSet<(String, String)>,
    tokens: HashMap<String, IssuedToken>,
    loads: HashMap<String, ServerLoad>,
    /// Requests seen per server, the clock of fault decisions.
    sequences: HashMap<String, u64>,
    profiles: HashMap<String, Arc<ServerProfile>>,
    /// Server ID → server name (`None`: no such server), resolved once per ID.
    servers_by_id: HashMap<String, Option<String>>,
    pub limiter: RateLimiter,
    pub counters: RequestCounters,
}

/// A cloud URL as attaches and jobs are matched: lower case, no trailing slash.
pub(crate) fn normalize_cloud(url: &str) -> String {
    url.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl World {
    pub(super) fn new(scenario: Arc<Scenario>, scale: f64) -> World {
        let id_seed = scenario
            .explicit_seed()
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
        World {
            api: scenario.api(),
            scenario,
            scale,
            id_seed,
            jobs: HashMap::new(),
            tasks: HashMap::new(),
            task_order: Vec::new(),
            jobs_made: 0,
            tasks_made: 0,
            tokens_made: 0,
            attaches: HashMap::new(),
            connections: HashSet::new(),
            tokens: HashMap::new(),
            loads: HashMap::new(),
            sequences: HashMap::new(),
            profiles: HashMap::new(),
            servers_by_id: HashMap::new(),
            limiter: RateLimiter::default(),
            counters: RequestCounters::default(),
        }
    }

    /// Real seconds that `sim_secs` simulated seconds last.
    pub(super) fn real(&self, sim_secs: f64) -> f64 {
        sim_secs / self.scale
    }

    /// The resolved profile of a server (cached).
    pub(super) fn profile(&mut self, server: &str) -> Arc<ServerProfile> {
        if let Some(profile) = self.profiles.get(server) {
            return Arc::clone(profile);
        }
        let profile = Arc::new(self.scenario.profile(server));
        self.profiles
            .insert(server.to_owned(), Arc::clone(&profile));
        profile
    }

    /// The server a Server ID names (cached; see `Scenario::server_for_id`).
    pub(super) fn server_for_id(&mut self, server_id: &str) -> Option<String> {
        if let Some(server) = self.servers_by_id.get(server_id) {
            return server.clone();
        }
        let server = self.scenario.server_for_id(server_id);
        self.servers_by_id
            .insert(server_id.to_owned(), server.clone());
        server
    }

    /// The next request number of a server (1-based).
    pub(super) fn next_sequence(&mut self, server: &str) -> u64 {
        let seq = self.sequences.entry(server.to_owned()).or_default();
        *seq += 1;
        *seq
    }

    fn make_id(&self, kind: &[u8], n: u64) -> String {
        let high = dice::roll(self.id_seed, &[kind, &n.to_le_bytes(), b"high"]);
        let low = dice::roll(self.id_seed, &[kind, &n.to_le_bytes(), b"low"]);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&high.to_le_bytes());
        bytes[8..].copy_from_slice(&low.to_le_bytes());
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    pub(super) fn create_job(&mut self, definition: JobDefinition, now: f64) -> &Job {
        self.jobs_made += 1;
        let id = self.make_id(b"job", self.jobs_made);
        let server = self.server_for_id(&definition.source.server_id);
        self.counters.record_job(
            &definition.source.server_id,
            &definition.destination.url,
            server.as_deref(),
        );
        let job = Job {
            id: id.clone(),
            cloud: normalize_cloud(&definition.destination.url),
            definition,
            server,
            tasks: Vec::new(),
            created_at: now,
        };
        self.jobs.entry(id).or_insert(job)
    }

    /// Creates a task on an existing job: plans it from the job, the server's profile and
    /// whether the job's cloud site is attached right now.
    pub(super) fn create_task(
        &mut self,
        job_id: &str,
        request: &CreateTaskRequest,
        now: f64,
    ) -> Option<String> {
        let (definition, server, cloud) = {
            let job = self.jobs.get(job_id)?;
            (
                job.definition.clone(),
                job.server.clone(),
                job.cloud.clone(),
            )
        };
        let profile = server.as_deref().map(|server| self.profile(server));
        let attached_for = server.as_ref().and_then(|server| {
            let expires = *self.attaches.get(&(server.clone(), cloud.clone()))?;
            (expires > now).then_some((expires - now) * self.scale)
        });
        let plan = Arc::new(TaskPlan::new(&Situation {
            definition: &definition,
            request,
            profile: profile.as_deref(),
            attached_for,
            not_attached_delay: self.api.not_attached_delay,
        }));
        self.tasks_made += 1;
        let id = self.make_id(b"task", self.tasks_made);
        let kind = plan.kind.clone();
        self.counters
            .record_task(job_id, &kind.response_str(), server.as_deref());
        if let Some(server) = &server {
            let finishes = now + self.real(plan.root_end());
            let load = self.loads.entry(server.clone()).or_default();
            load.running_until.retain(|until| *until > now);
            load.running_until.push(finishes);
            load.max = load.max.max(load.running_until.len() as u64);
            let max = load.max;
            self.counters.server(server).max_running_tasks = max;
        }
        let payload = request
            .options
            .as_ref()
            .and_then(|options| serde_json::to_value(options).ok());
        self.tasks.insert(
            id.clone(),
            TaskRecord {
                id: id.clone(),
                job_id: job_id.to_owned(),
                kind,
                created_at: now,
                payload,
                plan,
                server,
            },
        );
        self.task_order.push(id.clone());
        if let Some(job) = self.jobs.get_mut(job_id) {
            job.tasks.push(id.clone());
        }
        Some(id)
    }

    /// Whether `server` may attach `cloud`: connected by the scenario or by save-token.
    pub(super) fn is_connected(&mut self, server: &str, cloud: &str) -> bool {
        self.profile(server).connected
            || self
                .connections
                .contains(&(server.to_owned(), normalize_cloud(cloud)))
    }

    /// Attaches `cloud` on `server` from `now`; returns the real instant it expires.
    pub(super) fn attach(&mut self, server: &str, cloud: &str, now: f64) -> f64 {
        let validity = self.profile(server).attach_validity;
        let expires = now + self.real(validity);
        self.attaches
            .insert((server.to_owned(), normalize_cloud(cloud)), expires);
        self.counters.server(server).attaches += 1;
        expires
    }

    /// Issues a connect token for `cloud`; returns it and its real expiry.
    pub(super) fn issue_token(&mut self, cloud: &str, now: f64) -> String {
        self.tokens_made += 1;
        let token = format!(
            "cmasim-{:016x}{:016x}",
            dice::roll(self.id_seed, &[b"token", &self.tokens_made.to_le_bytes()]),
            dice::roll(self.id_seed, &[b"token2", &self.tokens_made.to_le_bytes()]),
        );
        let expires_at = now + self.real(self.api.token_validity);
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                cloud: normalize_cloud(cloud),
                expires_at,
            },
        );
        token
    }

    /// Saves a connect token on a server: a valid, unexpired token for that cloud site
    /// connects the server to it.
    pub(super) fn save_token(&mut self, server: &str, cloud: &str, token: &str, now: f64) -> bool {
        if self.profile(server).save_token_fails {
            return false;
        }
        let cloud = normalize_cloud(cloud);
        let valid = self
            .tokens
            .get(token)
            .is_some_and(|issued| issued.cloud == cloud && issued.expires_at > now);
        if valid {
            self.connections.insert((server.to_owned(), cloud));
        }
        valid
    }
}

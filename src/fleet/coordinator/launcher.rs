//! Launching pipelines: the HTTP and cloud clients a run shares (each cloud user's with its
//! rate buckets), the per-user poller counts and phase durations every site's polling reads,
//! and the spawned pipeline tasks, each mapped back to its site.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::Credentials;
use crate::cma::{ApiObserver, CloudClient, HttpClient, ServerClient, ServerCredentials, Surprise};
use crate::fleet::breaker::Tripwire;
use crate::fleet::events::{EventSender, SiteEvents};
use crate::fleet::ledger::SiteEntry;
use crate::fleet::limits::RateLimits;
use crate::fleet::pipeline::{self, PipelinePolicy, SitePlan};
use crate::fleet::poll::PhaseDurations;
use crate::fleet::settings::FleetSettings;
use crate::fleet::shutdown::Shutdown;
use crate::report::model::CheckResult;

/// What pipelines are started with, and the pipelines running.
pub(super) struct Launcher {
    policy: Arc<PipelinePolicy>,
    /// Cloud clients per user (each with that user's rate buckets).
    clouds: HashMap<String, CloudClient>,
    http: HttpClient,
    /// Server credentials per site, in the run's site order.
    server_credentials: Vec<ServerCredentials>,
    /// Polling sites per cloud user.
    pollers: HashMap<String, Arc<AtomicUsize>>,
    /// How long this run's task phases took: every site's polls are timed by it.
    durations: Arc<PhaseDurations>,
    /// When the run started, in the runtime's time: the origin of every site's poll grid.
    run_start: tokio::time::Instant,
    artifacts_dir: PathBuf,
    /// Each site's latest check results from earlier runs (only with `--override-checks`).
    last_checks: HashMap<String, Vec<CheckResult>>,
    events: EventSender,
    /// The pipelines' stop: the first signal, the deadline, a store failure.
    stop: CancellationToken,
    tasks: JoinSet<usize>,
    /// Which site each pipeline task drives (a panicked task reports only its id).
    pipelines: HashMap<Id, usize>,
}

/// How a pipeline task ended: its site, and the panic if it crashed.
pub(super) struct Ended {
    pub(super) site: usize,
    pub(super) crash: Option<JoinError>,
}

impl Launcher {
    pub(super) fn new(
        settings: &FleetSettings,
        credentials: Credentials,
        observer: Arc<dyn ApiObserver>,
        shutdown: &Shutdown,
        events: EventSender,
        artifacts_dir: PathBuf,
        last_checks: HashMap<String, Vec<CheckResult>>,
    ) -> Launcher {
        // Requests still on the wire when the stop is forced are dropped.
        let http = HttpClient::new(settings.client.clone(), Arc::clone(&observer))
            .map(|http| http.abandoning_on(shutdown.forced().clone()))
            .unwrap_or_else(|error| {
                panic!("the HTTP client cannot be built on this platform: {error}");
            });
        let limits = RateLimits::new(settings.rates.clone(), observer);
        let clouds = credentials
            .cloud
            .into_iter()
            .map(|(user, token)| {
                let gate = limits.for_user(&user);
                let client =
                    CloudClient::new(http.clone(), &settings.cloud_api_url, &user, token, gate);
                (user, client)
            })
            .collect();
        Launcher {
            policy: Arc::new(settings.pipeline.clone()),
            clouds,
            http,
            server_credentials: credentials.servers,
            pollers: HashMap::new(),
            durations: Arc::default(),
            run_start: tokio::time::Instant::now(),
            artifacts_dir,
            last_checks,
            events,
            stop: shutdown.graceful().clone(),
            tasks: JoinSet::new(),
            pipelines: HashMap::new(),
        }
    }

    /// Spawns the pipeline of site `index`; returns the site's span, in which its pipeline
    /// runs and the coordinator says its end.
    pub(super) fn launch(
        &mut self,
        index: usize,
        entry: &SiteEntry,
        tripwire: Arc<Tripwire>,
    ) -> tracing::Span {
        let site = Arc::clone(&entry.site);
        let cloud = self.clouds.get(&site.cloud_user).cloned().unwrap_or_else(|| {
            panic!("no cloud credentials resolved for {}: the caller must resolve every row's secrets", site.name)
        });
        let server = ServerClient::new(
            self.http.clone(),
            &site.server_url,
            self.server_credentials[index].clone(),
        );
        let plan = SitePlan {
            index,
            last_checks: self
                .last_checks
                .get(&site.name)
                .cloned()
                .unwrap_or_default(),
            state: entry.state.clone(),
            cloud,
            server,
            pollers: Arc::clone(self.pollers.entry(site.cloud_user.clone()).or_default()),
            durations: Arc::clone(&self.durations),
            run_start: self.run_start,
            artifacts_dir: self.artifacts_dir.clone(),
            tripwire,
            site,
        };
        let events = SiteEvents::new(index, self.events.clone());
        let (policy, stop) = (Arc::clone(&self.policy), self.stop.clone());
        // At ERROR level so the span (and its `site` and `stage` fields) is on whatever the
        // log filter; the pipeline records the stage as it moves.
        let span =
            tracing::error_span!("site", site = %plan.site.name, stage = tracing::field::Empty);
        let pipeline = async move {
            pipeline::run_site(policy, plan, events, stop).await;
            index
        };
        let handle = self.tasks.spawn(pipeline.instrument(span.clone()));
        self.pipelines.insert(handle.id(), index);
        span
    }

    /// Whether a pipeline task runs.
    pub(super) fn is_busy(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// The next pipeline task to end (pending while none runs).
    pub(super) async fn next_ended(&mut self) -> Option<Ended> {
        let joined = self.tasks.join_next_with_id().await?;
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(error) => error.id(),
        };
        let site = self.pipelines.remove(&id)?;
        Some(Ended {
            site,
            crash: joined.err(),
        })
    }

    /// What the service answered that the client did not expect, so far.
    pub(super) fn surprises(&self) -> Vec<Surprise> {
        self.http.surprises()
    }
}

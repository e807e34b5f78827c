//! `cmafleet run`: settings → inventory → selection → secrets → lock → state store → report
//! dir (all before any network call, each failure with its exit code) → the coordinator →
//! final metrics and the summary.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::selection::{Selected, load_selected, resolve_credentials};
use crate::cli::{OutputArgs, RunArgs};
use crate::config::RunSettings;
use crate::exit;
use crate::fleet::coordinator::{self, Credentials, FleetRun, RunResult};
use crate::fleet::shutdown::Shutdown;
use crate::inventory::Site;
use crate::metrics::Metrics;
use crate::metrics::server::StatusSource;
use crate::metrics::status::RunStatus;
use crate::progress;
use crate::report::ReportWriter;
use crate::state::{RunLock, Store};
use crate::vocab::{Mode, Outcome};

/// `cmafleet run`.
pub async fn run(args: &RunArgs, output: &OutputArgs, shutdown: Shutdown) -> u8 {
    run_as(args, output, shutdown, true).await
}

/// `cmafleet run`, its summary on stdout or not (`status --refresh` prints the state instead).
pub async fn run_as(args: &RunArgs, output: &OutputArgs, shutdown: Shutdown, summary: bool) -> u8 {
    let resolved = match RunSettings::resolve(args) {
        Ok(resolved) => resolved,
        Err(error) => return fail(error.exit_code(), &error.to_string()),
    };
    if args.print_config {
        return crate::stdout::print(&resolved.print(), exit::OK);
    }
    let settings = resolved.settings;
    let Selected { sites, unselected } =
        match load_selected(&settings.inventory, &settings.selection) {
            Ok(selected) => selected,
            Err(code) => return code,
        };
    let credentials = match resolve_credentials(&sites) {
        Ok(credentials) => credentials,
        Err(code) => return code,
    };
    let ui = Ui {
        live: progress::live_enabled(output.progress),
        announce_status_page: false,
        summary,
        quiet_sites: false,
        linger: None,
    };
    execute(settings, sites, unselected, credentials, shutdown, ui)
        .await
        .exit_code
}

/// How a run talks to the person watching.
pub struct Ui {
    /// Show the live terminal view instead of periodic lines.
    pub live: bool,
    /// Print the status page's address when the metrics server is up (the demo does).
    pub announce_status_page: bool,
    /// Print the run's summary on stdout at the end.
    pub summary: bool,
    /// No log line for each site's end (the demo: its summary follows at once).
    pub quiet_sites: bool,
    /// Awaited after the summary, while the status page is still served (the demo keeps
    /// it up until Enter, or a few seconds).
    pub linger: Option<futures::future::BoxFuture<'static, ()>>,
}

/// The part of a run after the inventory and secrets: lock, store, report dir, metrics server,
/// the coordinator, final metrics. Shared by `run` and `demo`.
pub async fn execute(
    settings: RunSettings,
    sites: Vec<Arc<Site>>,
    unselected: Vec<Arc<Site>>,
    credentials: Credentials,
    shutdown: Shutdown,
    ui: Ui,
) -> Executed {
    let settings = Arc::new(settings);
    if let Err(error) = crate::report::writer::create_private_dir(&settings.state_dir) {
        return Executed::failed(
            exit::CANT_CREATE,
            &format!(
                "cannot create state dir {}: {error}",
                settings.state_dir.display()
            ),
        );
    }
    let _lock = match RunLock::acquire(&settings.state_dir) {
        Ok(lock) => lock,
        Err(error) => return Executed::failed(error.exit_code(), &error.to_string()),
    };
    let store = match Store::open(&settings.state_dir) {
        Ok(store) => store,
        Err(error) => return Executed::failed(error.exit_code(), &error.to_string()),
    };
    let run_id = new_run_id();
    let report_dir = settings
        .report_dir
        .clone()
        .unwrap_or_else(|| settings.state_dir.join("reports").join(&run_id));
    let writer = match ReportWriter::create(&report_dir) {
        Ok(writer) => writer,
        Err(error) => return Executed::failed(exit::CANT_CREATE, &error.to_string()),
    };
    let metrics = Arc::new(Metrics::new(settings.mode));
    let status = Arc::new(Mutex::new(initial_status(
        &run_id,
        settings.mode,
        sites.len(),
    )));
    let server_stop = CancellationToken::new();
    let server = match settings.metrics_listen {
        Some(addr) => match TcpListener::bind(addr).await {
            Ok(listener) => {
                let bound = listener
                    .local_addr()
                    .map(|addr| addr.to_string())
                    .unwrap_or_default();
                tracing::info!("serving /metrics and the live status page on http://{bound}/");
                if ui.announce_status_page {
                    crate::outln!(
                        "Live status page: http://{bound}/   (metrics: http://{bound}/metrics)"
                    );
                }
                let source: StatusSource = {
                    let status = Arc::clone(&status);
                    Arc::new(move || {
                        serde_json::to_value(
                            &*status.lock().unwrap_or_else(|poison| poison.into_inner()),
                        )
                        .unwrap_or_default()
                    })
                };
                Some(tokio::spawn(crate::metrics::server::serve(
                    listener,
                    Arc::clone(&metrics),
                    source,
                    server_stop.clone(),
                )))
            }
            Err(error) => {
                return Executed::failed(
                    exit::USAGE,
                    &format!("cannot listen on {addr} for --metrics-listen: {error}"),
                );
            }
        },
        None => None,
    };
    // A sharded run names its shard on every line (JSON: a top-level `shard` field).
    let span = match settings.selection.shard {
        Some(shard) => tracing::error_span!("shard", shard = %shard.label()),
        None => tracing::Span::none(),
    };
    span.in_scope(|| {
        tracing::info!(
            run_id = %run_id,
            mode = %settings.mode,
            sites = sites.len(),
            "starting the run; reports in {}",
            report_dir.display()
        )
    });
    let fleet = FleetRun {
        settings: settings.fleet(),
        run_id,
        sites,
        unselected,
        credentials,
        store,
        writer,
        metrics: Arc::clone(&metrics),
        shutdown,
        status,
        on_progress: progress::reporter(ui.live, settings.progress_interval),
        log_conclusions: !ui.quiet_sites,
    };
    let result = coordinator::run(fleet).instrument(span).await;
    let interrupted = matches!(result.exit_code, exit::INTERRUPTED | exit::TERMINATED);
    publish_final_metrics(&settings, &metrics, interrupted).await;
    if ui.summary {
        print_summary(&result);
    }
    if let Some(linger) = ui.linger {
        linger.await;
    }
    server_stop.cancel();
    if let Some(server) = server {
        let _ = server.await;
    }
    Executed {
        exit_code: result.exit_code,
        result: Some(result),
    }
}

/// A run's exit code, and its result when it got as far as running.
pub struct Executed {
    pub exit_code: u8,
    pub result: Option<RunResult>,
}

impl Executed {
    fn failed(code: u8, message: &str) -> Executed {
        Executed {
            exit_code: fail(code, message),
            result: None,
        }
    }
}

fn fail(code: u8, message: &str) -> u8 {
    crate::fatal::report(code, message);
    code
}

/// How long a push may take after a signal: the process must end within seconds then.
const PUSH_AFTER_SIGNAL: std::time::Duration = std::time::Duration::from_secs(3);

async fn publish_final_metrics(settings: &RunSettings, metrics: &Metrics, interrupted: bool) {
    let text = metrics.encode_final();
    if let Some(path) = &settings.metrics_textfile {
        match crate::metrics::textfile::write(path, &text) {
            Ok(()) => tracing::info!("final metrics written to {}", path.display()),
            Err(error) => tracing::error!(
                "cannot write --metrics-textfile {}: {error}",
                path.display()
            ),
        }
    }
    if let Some(gateway) = &settings.pushgateway {
        let shard = settings
            .selection
            .shard
            .map(|shard| shard.index.to_string());
        let push = crate::metrics::push::push(gateway, metrics.mode(), shard.as_deref(), text);
        let pushed = if interrupted {
            tokio::time::timeout(PUSH_AFTER_SIGNAL, push).await
        } else {
            Ok(push.await)
        };
        match pushed {
            Ok(Ok(())) => tracing::info!("final metrics pushed to the Pushgateway"),
            Ok(Err(error)) => tracing::error!("{error}"),
            Err(_) => tracing::error!(
                "the final metrics were not pushed: the Pushgateway did not answer within {} of a stop",
                humantime::format_duration(PUSH_AFTER_SIGNAL)
            ),
        }
    }
}

/// The longest message the summary shows on a site's line; the reports have it whole.
const SUMMARY_MESSAGE_CHARS: usize = 110;

/// A message cut to one summary line (`…` and where the rest is).
fn shortened(message: &str) -> String {
    if message.chars().count() <= SUMMARY_MESSAGE_CHARS {
        return message.to_owned();
    }
    let cut: String = message.chars().take(SUMMARY_MESSAGE_CHARS).collect();
    format!("{}… (whole in the reports)", cut.trim_end())
}

fn print_summary(result: &RunResult) {
    let counts: Vec<String> = result
        .report
        .run
        .counts
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(outcome, count)| format!("{outcome} {count}"))
        .collect();
    crate::outln!(
        "{} run {}: {} site(s): {} — exit {}",
        result.report.run.mode,
        result.report.run.run_id,
        result.report.sites.len(),
        if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join(", ")
        },
        result.exit_code
    );
    for site in &result.report.sites {
        if matches!(
            site.outcome,
            Some(Outcome::Failed | Outcome::Blocked | Outcome::Detached)
        ) {
            crate::outln!(
                "  {:<28} {:<9} {}",
                site.site,
                site.outcome.map(Outcome::as_str).unwrap_or(""),
                shortened(&site.message)
            );
        }
    }
    crate::outln!(
        "Reports: {}",
        result.report_dir.join("report.html").display()
    );
}

fn initial_status(run_id: &str, mode: Mode, total: usize) -> RunStatus {
    RunStatus {
        run_id: run_id.to_owned(),
        mode: Some(mode),
        started_at: Some(Utc::now()),
        total,
        counts: BTreeMap::from([(crate::metrics::registry::PENDING.to_owned(), total)]),
        ..RunStatus::default()
    }
}

/// A sortable, unique run id: `20261128T154012Z-3f9a`.
pub fn new_run_id() -> String {
    let suffix: u16 = rand::random();
    format!("{}-{suffix:04x}", Utc::now().format("%Y%m%dT%H%M%SZ"))
}

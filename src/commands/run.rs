//! `cmafleet run`: settings → inventory → selection → secrets → lock → state store → report
//! dir (all before any network call, each failure with its exit code) → the coordinator →
//! final metrics and the summary.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::cli::{OutputArgs, RunArgs};
use crate::cma::client::ServerCredentials;
use crate::config::{RunSettings, Selection};
use crate::exit;
use crate::fleet::coordinator::{self, Credentials, FleetRun, RunResult};
use crate::fleet::shutdown::Shutdown;
use crate::inventory::{self, SecretRef, ServerAuth, Site};
use crate::metrics::Metrics;
use crate::metrics::server::StatusSource;
use crate::metrics::status::RunStatus;
use crate::progress;
use crate::report::ReportWriter;
use crate::secret::Secret;
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

/// The inventory's rows split by a selection, each in inventory order.
pub struct Selected {
    /// The rows the run drives.
    pub sites: Vec<Arc<Site>>,
    /// The others (outside `--site`, `--wave` or `--shard`): a task one of them left
    /// running still holds its server.
    pub unselected: Vec<Arc<Site>>,
}

/// Loads the inventory (exit 65 with every problem) and applies the selection (exit 2 for a
/// `--site` or `--wave` the inventory does not have).
pub fn load_selected(path: &Path, selection: &Selection) -> Result<Selected, u8> {
    let sites = match inventory::load(path) {
        Ok(sites) => sites,
        Err(inventory::InventoryError::Invalid { path, problems }) => {
            for problem in &problems {
                eprintln!("{path}:{problem}");
            }
            eprintln!(
                "error: {} problem(s) in {path}; fix them (`cmafleet validate {path}` lists them too)",
                problems.len()
            );
            return Err(exit::DATA);
        }
        Err(error) => return Err(fail(exit::DATA, &error.to_string())),
    };
    let selected = select(sites, selection).map_err(|message| fail(exit::USAGE, &message))?;
    for notice in inventory::plain_http(selected.sites.iter().map(|site| &**site)) {
        tracing::warn!("{notice}");
    }
    Ok(selected)
}

/// Splits the rows by a selection.
pub fn select(sites: Vec<Site>, selection: &Selection) -> Result<Selected, String> {
    let unknown_sites: Vec<&String> = selection
        .sites
        .iter()
        .filter(|name| !sites.iter().any(|site| &site.name == *name))
        .collect();
    if !unknown_sites.is_empty() {
        return Err(format!(
            "--site {} not in the inventory",
            join(&unknown_sites)
        ));
    }
    let unknown_waves: Vec<&String> = selection
        .waves
        .iter()
        .filter(|wave| !sites.iter().any(|site| site.wave.as_ref() == Some(*wave)))
        .collect();
    if !unknown_waves.is_empty() {
        return Err(format!(
            "--wave {} not in the inventory",
            join(&unknown_waves)
        ));
    }
    let selected = |site: &Site| {
        (selection.sites.is_empty() || selection.sites.contains(&site.name))
            && (selection.waves.is_empty()
                || site
                    .wave
                    .as_ref()
                    .is_some_and(|wave| selection.waves.contains(wave)))
            && selection
                .shard
                .is_none_or(|shard| shard.owns(&site.cloud_user))
    };
    let (sites, unselected): (Vec<Arc<Site>>, Vec<Arc<Site>>) = sites
        .into_iter()
        .map(Arc::new)
        .partition(|site| selected(site));
    Ok(Selected { sites, unselected })
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves every secret reference of the selected sites, each once (exit 78 naming every
/// reference that does not resolve with the lines that use it, as `validate --secrets`
/// does; never a value).
pub fn resolve_credentials(sites: &[Arc<Site>]) -> Result<Credentials, u8> {
    let mut resolved: HashMap<SecretRef, Result<Secret, String>> = HashMap::new();
    // The references that fail, in order of first use, with every line that uses them.
    let mut unresolved: Vec<(SecretRef, Vec<usize>, String)> = Vec::new();
    let mut resolve = |reference: &SecretRef, line: usize| -> Option<Secret> {
        let result = resolved
            .entry(reference.clone())
            .or_insert_with(|| reference.resolve().map_err(|error| error.to_string()));
        match result {
            Ok(secret) => Some(secret.clone()),
            Err(error) => {
                match unresolved
                    .iter_mut()
                    .find(|(known, _, _)| known == reference)
                {
                    Some((_, lines, _)) if lines.last() != Some(&line) => lines.push(line),
                    Some(_) => {}
                    None => unresolved.push((reference.clone(), vec![line], error.clone())),
                }
                None
            }
        }
    };
    let mut mismatches: Vec<String> = Vec::new();
    let mut cloud: HashMap<String, Secret> = HashMap::new();
    let mut cloud_refs: HashMap<String, (SecretRef, usize)> = HashMap::new();
    let mut servers = Vec::with_capacity(sites.len());
    for site in sites {
        let token = resolve(&site.cloud_token, site.line);
        match cloud_refs.get(&site.cloud_user) {
            Some((reference, line)) if reference != &site.cloud_token => mismatches.push(format!(
                "line {}: cloud user {} has token {} here but {} on line {line}; use one token per cloud user",
                site.line, site.cloud_user, site.cloud_token, reference
            )),
            Some(_) => {}
            None => {
                cloud_refs.insert(site.cloud_user.clone(), (site.cloud_token.clone(), site.line));
                if let Some(secret) = token {
                    cloud.insert(site.cloud_user.clone(), secret);
                }
            }
        }
        let credentials = match &site.server_auth {
            ServerAuth::Bearer(reference) => {
                resolve(reference, site.line).map(ServerCredentials::Bearer)
            }
            ServerAuth::Basic { username, password } => {
                resolve(password, site.line).map(|password| ServerCredentials::Basic {
                    username: username.clone(),
                    password,
                })
            }
        };
        servers.push(
            credentials.unwrap_or_else(|| ServerCredentials::Bearer(Secret::new(String::new()))),
        );
    }
    if unresolved.is_empty() && mismatches.is_empty() {
        return Ok(Credentials { cloud, servers });
    }
    let mut text = String::new();
    for (reference, lines, error) in &unresolved {
        text.push_str(&format!(
            "secret {reference} ({}): {error}\n",
            super::validate::lines_list(lines)
        ));
    }
    for mismatch in &mismatches {
        text.push_str(mismatch);
        text.push('\n');
    }
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
    let message = match (unresolved.len(), mismatches.len()) {
        (n, 0) => format!("{n} secret reference(s) do not resolve; set them and run again"),
        (0, m) => {
            format!("{m} row(s) give a cloud user a second token; use one token per cloud user")
        }
        (n, m) => format!(
            "{n} secret reference(s) do not resolve and {m} row(s) give a cloud user a second token; fix them and run again"
        ),
    };
    Err(fail(exit::CONFIG, &message))
}

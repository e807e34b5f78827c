//! The settings of `cmafleet run`: which settings a run has, in the order `--print-config`
//! shows them, and how they depend on each other. Each is layered by the one rule of
//! [`super::layer`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use serde::Serialize;
use url::Url;

use crate::cli::RunArgs;
use crate::cma::client::ClientSettings;
use crate::fleet::policy::{PollPolicy, RateConfig};
use crate::vocab::Mode;

use super::error::ConfigError;
use super::file::SettingsFile;
use super::flags;
use super::layer::{Layers, given};
use super::network::{client_shown, cloud_api_url, rates_shown};
use super::print::{self, Shown};
use super::shard::Selection;
use super::shard::selection_shown;
use super::values::{
    addr, duration, gateway_url, humantime_opt, humantime_req, night_window, serialize_poll,
    serialize_rates, serialize_url, serialize_url_opt,
};

/// Everything `cmafleet run` needs, resolved and checked.
#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    pub inventory: PathBuf,
    pub mode: Mode,
    pub state_dir: PathBuf,
    /// `None`: `<state-dir>/reports/<run-id>`.
    pub report_dir: Option<PathBuf>,
    #[serde(serialize_with = "serialize_url")]
    pub cloud_api_url: Url,
    pub concurrency: usize,
    pub per_server: usize,
    pub selection: Selection,
    pub precheck: bool,
    pub block_on_warnings: bool,
    pub override_checks: Vec<String>,
    pub connect: bool,
    pub wait_apps: bool,
    pub remigrate: bool,
    /// The instant the night window closes (the next `HH:MM` after start).
    pub no_new_tasks_after: Option<DateTime<Utc>>,
    #[serde(with = "humantime_opt")]
    pub deadline: Option<Duration>,
    #[serde(serialize_with = "serialize_poll")]
    pub poll: PollPolicy,
    #[serde(serialize_with = "serialize_rates")]
    pub rates: RateConfig,
    pub metrics_listen: Option<SocketAddr>,
    /// May carry basic-auth credentials; serialized with the password as `***`.
    #[serde(serialize_with = "serialize_url_opt")]
    pub pushgateway: Option<Url>,
    pub metrics_textfile: Option<PathBuf>,
    #[serde(with = "humantime_req")]
    pub progress_interval: Duration,
    #[serde(skip)]
    pub client: ClientSettings,
    /// How long a new task's status may answer 404 before it counts as an error.
    #[serde(with = "humantime_req")]
    pub young_task_grace: Duration,
    /// When this many sites of one cloud user failed at the same step with the same answer,
    /// that user's sites not yet started are skipped (0: never): a wrong token or a refused
    /// job definition fails the first few sites, not three hundred.
    pub stop_after_same_failures: usize,
    /// After a signal, how long requests already on the wire may take before they are
    /// dropped (the run must end within seconds whatever the network does).
    #[serde(with = "humantime_req")]
    pub stop_grace: Duration,
}

/// Settings with what `--print-config` shows of them.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub settings: RunSettings,
    /// Every setting in settings-file order, with its origin.
    pub(super) shown: Vec<Shown>,
}

impl Resolved {
    /// The `--print-config` text (a valid settings file).
    pub fn print(&self) -> String {
        print::render(&self.shown)
    }
}

impl RunSettings {
    /// Flags (and their `CMAFLEET_*` variables) over the `--config` file over defaults, each
    /// setting checked and noted for `--print-config` in settings-file order.
    pub fn resolve(args: &RunArgs) -> Result<Resolved, ConfigError> {
        let file = SettingsFile::load(args.config.as_deref())?;
        let mut layers = Layers::new(flags::of_run(args), file);
        let settings = RunSettings::layered(&mut layers)?;
        let shown = layers.into_shown();
        Ok(Resolved { settings, shown })
    }

    /// Every setting, one after the other in the order `--print-config` shows them (a
    /// setting that depends on another comes after it in that order).
    fn layered(layers: &mut Layers) -> Result<RunSettings, ConfigError> {
        let (inventory, mode) = subject(layers)?;
        let state_dir = layers.defaulted("state-dir", |layer| &layer.state_dir, given)?;
        let report_dir = layers
            .optional("report-dir", |layer| &layer.report_dir, given)?
            // Absolute, as the run records it: `report` and `status` may run from elsewhere
            // and must find the run's files (its artifacts) again.
            .map(|dir| std::path::absolute(&dir).unwrap_or(dir));
        let cloud_api_url = cloud_api_url(layers)?;
        let (concurrency, per_server) = caps(layers)?;
        let selection = selection_shown(layers)?;
        let precheck = layers.defaulted("precheck", |layer| &layer.precheck, given)?;
        let block_on_warnings =
            layers.defaulted("block-on-warnings", |layer| &layer.block_on_warnings, given)?;
        let override_checks = override_checks(layers, mode)?;
        let connect = layers.defaulted("connect", |layer| &layer.connect, given)?;
        let wait_apps = layers.defaulted("wait-apps", |layer| &layer.wait_apps, given)?;
        let remigrate = layers.defaulted("remigrate", |layer| &layer.remigrate, given)?;
        let window = layers.optional(
            "no-new-tasks-after",
            |layer| &layer.no_new_tasks_after,
            given,
        )?;
        let no_new_tasks_after = night_window(window.as_ref(), Local::now())?;
        let deadline = layers.optional("deadline", |layer| &layer.deadline, duration)?;
        let poll = poll_shown(layers)?;
        let rates = rates_shown(layers)?;
        let metrics_listen =
            layers.optional("metrics-listen", |layer| &layer.metrics_listen, addr)?;
        let pushgateway =
            layers.optional("pushgateway", |layer| &layer.pushgateway, gateway_url)?;
        let metrics_textfile =
            layers.optional("metrics-textfile", |layer| &layer.metrics_textfile, given)?;
        let progress_interval = progress_interval(layers)?;
        let client = client_shown(layers, &cloud_api_url)?;
        let stop_after_same_failures = layers.defaulted(
            "stop-after-same-failures",
            |layer| &layer.stop_after_same_failures,
            given,
        )?;
        let stop_grace = layers.defaulted("stop-grace", |layer| &layer.stop_grace, duration)?;
        Ok(RunSettings {
            inventory,
            mode,
            state_dir,
            report_dir,
            cloud_api_url,
            concurrency,
            per_server,
            selection,
            precheck,
            block_on_warnings,
            override_checks,
            connect,
            wait_apps,
            remigrate,
            no_new_tasks_after,
            deadline,
            poll,
            rates,
            metrics_listen,
            pushgateway,
            metrics_textfile,
            progress_interval,
            client,
            young_task_grace: young_task_grace(poll),
            stop_after_same_failures,
            stop_grace,
        })
    }

    /// The options as recorded in `run.json` (no secrets here: secrets are resolved later
    /// from the inventory's references, and a password in a URL is `***`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// What the run works on and how: the inventory and the mode, which have no default.
fn subject(layers: &mut Layers) -> Result<(PathBuf, Mode), ConfigError> {
    let inventory = layers
        .optional("inventory", |layer| &layer.inventory, given)?
        .ok_or_else(|| {
            ConfigError::Usage(
                "no inventory: give INVENTORY or set `inventory` in the --config file".into(),
            )
        })?;
    // The file's mode is checked even when a flag overrides it: a typo in the file is an
    // error whatever this run's command line says.
    layers.file.mode.as_deref().map(file_mode).transpose()?;
    let mode = layers
        .optional("mode", |layer| &layer.mode, |_, text| file_mode(&text))?
        .ok_or_else(|| {
            ConfigError::Usage(
                "no mode: give --mode check|migrate or set `mode` in the --config file".into(),
            )
        })?;
    Ok((inventory, mode))
}

/// The mode as the settings file spells it (the flag's spelling is clap's to check).
fn file_mode(text: &str) -> Result<Mode, ConfigError> {
    match text.trim() {
        "check" => Ok(Mode::Check),
        "migrate" => Ok(Mode::Migrate),
        other => Err(ConfigError::Config(format!(
            "config file: mode `{other}`: expected check or migrate"
        ))),
    }
}

/// `--concurrency` and `--per-server`, both at least 1.
fn caps(layers: &mut Layers) -> Result<(usize, usize), ConfigError> {
    let concurrency = layers.defaulted("concurrency", |layer| &layer.concurrency, given)?;
    let per_server = layers.defaulted("per-server", |layer| &layer.per_server, given)?;
    if concurrency == 0 || per_server == 0 {
        return Err(ConfigError::Usage(
            "--concurrency and --per-server must be at least 1".into(),
        ));
    }
    Ok((concurrency, per_server))
}

/// `--override-checks`, which only a migration can send.
fn override_checks(layers: &mut Layers, mode: Mode) -> Result<Vec<String>, ConfigError> {
    let checks = layers
        .optional("override-checks", |layer| &layer.override_checks, given)?
        .unwrap_or_default();
    if mode == Mode::Check && !checks.is_empty() {
        return Err(ConfigError::Usage(
            "--override-checks applies to --mode migrate only".into(),
        ));
    }
    Ok(checks)
}

/// `--poll-min` and `--poll-max`: a poll interval above zero, the shortest not above the
/// longest.
fn poll_shown(layers: &mut Layers) -> Result<PollPolicy, ConfigError> {
    let min = layers.defaulted("poll-min", |layer| &layer.poll_min, duration)?;
    let max = layers.defaulted("poll-max", |layer| &layer.poll_max, duration)?;
    if min.is_zero() || max < min {
        return Err(ConfigError::Usage(
            "--poll-min must be above zero and not above --poll-max".into(),
        ));
    }
    Ok(PollPolicy { min, max })
}

/// `--progress-interval`, above zero.
fn progress_interval(layers: &mut Layers) -> Result<Duration, ConfigError> {
    let interval = layers.defaulted(
        "progress-interval",
        |layer| &layer.progress_interval,
        duration,
    )?;
    if interval.is_zero() {
        return Err(ConfigError::Usage(
            "--progress-interval must be above zero".into(),
        ));
    }
    Ok(interval)
}

/// How long a new task's status may answer 404 before it counts as an error: at least 30 s,
/// and when polls are far apart at least six of them, so that a task the service has not
/// caught up with yet is read a few times before it is given up.
fn young_task_grace(poll: PollPolicy) -> Duration {
    Duration::from_secs(30).max(poll.min * 6)
}

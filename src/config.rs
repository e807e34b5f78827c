//! Validated, resolved settings built from the command line, `CMAFLEET_*` variables and the
//! optional `--config` file (flags and variables override the file, the file overrides the
//! defaults of [`crate::cli::defaults`]). Nothing past this module sees raw flags.
//!
//! Every setting is layered the same way ([`layer`]); this module says which settings a run
//! has, in the order `--print-config` shows them, and how they depend on each other.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use serde::Serialize;
use url::Url;

use crate::cli::{ModeArg, RunArgs};
use crate::cma::client::ClientSettings;
use crate::exit;
use crate::fleet::limits::RateConfig;
use crate::fleet::poll::PollPolicy;
use crate::vocab::Mode;

mod file;
mod layer;
mod network;
mod print;
mod shard;
mod values;

pub use file::SettingsFile;
use layer::{Sheet, given};
pub use network::ConnectionSettings;
use network::{api_url, client_shown, rates_shown};
use print::Shown;
use shard::selection_shown;
pub use shard::{Selection, Shard};
use values::{
    duration, humantime_opt, humantime_req, night_window, parse_addr, parse_gateway_url,
    serialize_poll, serialize_rates, serialize_url, serialize_url_opt,
};

/// Atlassian's migration API (`--cloud-api-url`'s default): `status` leaves it unsaid.
pub use crate::cli::defaults::CLOUD_API_URL as DEFAULT_CLOUD_API_URL;

/// A setting that cannot be used, with the exit code it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Bad flag values (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Bad configuration: a rate string, a config file, a secret reference (exit 78).
    #[error("{0}")]
    Config(String),
}

impl ConfigError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Usage(_) => exit::USAGE,
            ConfigError::Config(_) => exit::CONFIG,
        }
    }
}

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
    shown: Vec<Shown>,
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
        let (policy, sheet) = (&args.policy, &mut Sheet::default());
        let (inventory, mode) = subject(args, &file, sheet)?;
        let state_dir = sheet.defaulted("state-dir", &policy.state_dir, &file.state_dir, given)?;
        let report_dir = sheet
            .optional("report-dir", &args.report_dir, &file.report_dir, given)?
            // Absolute, as the run records it: `report` and `status` may run from elsewhere
            // and must find the run's files (its artifacts) again.
            .map(|dir| std::path::absolute(&dir).unwrap_or(dir));
        let cloud_api_url = api_url(&args.cloud_api_url, &file, sheet)?;
        let (concurrency, per_server) = caps(args, &file, sheet)?;
        let selection = selection_shown(&args.select, &file, sheet)?;
        let precheck = sheet.defaulted("precheck", &policy.precheck, &file.precheck, given)?;
        let block = (&args.block_on_warnings, &file.block_on_warnings);
        let block_on_warnings = sheet.defaulted("block-on-warnings", block.0, block.1, given)?;
        let override_checks = override_checks(args, &file, mode, sheet)?;
        let connect = sheet.defaulted("connect", &policy.connect, &file.connect, given)?;
        let wait_apps = sheet.defaulted("wait-apps", &args.wait_apps, &file.wait_apps, given)?;
        let remigrate = sheet.defaulted("remigrate", &policy.remigrate, &file.remigrate, given)?;
        let window = (&args.no_new_tasks_after, &file.no_new_tasks_after);
        let window = sheet.optional("no-new-tasks-after", window.0, window.1, given)?;
        let no_new_tasks_after = night_window(window.as_ref(), Local::now())?;
        let deadline = sheet.optional("deadline", &args.deadline, &file.deadline, duration)?;
        let poll = poll_shown(args, &file, sheet)?;
        let rates = rates_shown(&policy.rates, &file, sheet)?;
        let listen = (&args.metrics_listen, &file.metrics_listen);
        let metrics_listen =
            sheet.optional("metrics-listen", listen.0, listen.1, |flag, text| {
                parse_addr(flag, &text)
            })?;
        let pushgateway = sheet.optional(
            "pushgateway",
            &args.pushgateway,
            &file.pushgateway,
            |flag, text| parse_gateway_url(flag, &text),
        )?;
        let textfile = (&args.metrics_textfile, &file.metrics_textfile);
        let metrics_textfile = sheet.optional("metrics-textfile", textfile.0, textfile.1, given)?;
        let interval = (&args.progress_interval, &file.progress_interval);
        let progress_interval =
            sheet.defaulted("progress-interval", interval.0, interval.1, duration)?;
        if progress_interval.is_zero() {
            return Err(ConfigError::Usage(
                "--progress-interval must be above zero".into(),
            ));
        }
        let timeout = &args.request_timeout;
        let client = client_shown(timeout, &args.network, &file, &cloud_api_url, sheet)?;
        let same = (
            &args.stop_after_same_failures,
            &file.stop_after_same_failures,
        );
        let stop_after_same_failures =
            sheet.defaulted("stop-after-same-failures", same.0, same.1, given)?;
        let stop_grace =
            sheet.defaulted("stop-grace", &args.stop_grace, &file.stop_grace, duration)?;
        let settings = RunSettings {
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
        };
        let shown = std::mem::take(&mut sheet.0);
        Ok(Resolved { settings, shown })
    }

    /// The options as recorded in `run.json` (no secrets here: secrets are resolved later
    /// from the inventory's references, and a password in a URL is `***`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// What the run works on and how: the inventory and the mode, which have no default.
fn subject(
    args: &RunArgs,
    file: &SettingsFile,
    sheet: &mut Sheet,
) -> Result<(PathBuf, Mode), ConfigError> {
    let inventory = sheet
        .optional("inventory", &args.inventory, &file.inventory, given)?
        .ok_or_else(|| {
            ConfigError::Usage(
                "no inventory: give INVENTORY or set `inventory` in the --config file".into(),
            )
        })?;
    // The file's mode is checked even when a flag overrides it: a typo in the file is an
    // error whatever this run's command line says.
    let file_mode = file
        .mode
        .as_deref()
        .map(|text| match text.trim() {
            "check" => Ok(Mode::Check),
            "migrate" => Ok(Mode::Migrate),
            other => Err(ConfigError::Config(format!(
                "config file: mode `{other}`: expected check or migrate"
            ))),
        })
        .transpose()?;
    let mode = sheet
        .optional("mode", &args.mode.map(mode_of), &file_mode, given)?
        .ok_or_else(|| {
            ConfigError::Usage(
                "no mode: give --mode check|migrate or set `mode` in the --config file".into(),
            )
        })?;
    Ok((inventory, mode))
}

/// `--concurrency` and `--per-server`, both at least 1.
fn caps(
    args: &RunArgs,
    file: &SettingsFile,
    sheet: &mut Sheet,
) -> Result<(usize, usize), ConfigError> {
    let concurrency =
        sheet.defaulted("concurrency", &args.concurrency, &file.concurrency, given)?;
    let per_server = sheet.defaulted("per-server", &args.per_server, &file.per_server, given)?;
    if concurrency == 0 || per_server == 0 {
        return Err(ConfigError::Usage(
            "--concurrency and --per-server must be at least 1".into(),
        ));
    }
    Ok((concurrency, per_server))
}

/// `--override-checks`, which only a migration can send.
fn override_checks(
    args: &RunArgs,
    file: &SettingsFile,
    mode: Mode,
    sheet: &mut Sheet,
) -> Result<Vec<String>, ConfigError> {
    let flag = nonempty(&args.override_checks);
    let checks = sheet
        .optional("override-checks", &flag, &file.override_checks, given)?
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
fn poll_shown(
    args: &RunArgs,
    file: &SettingsFile,
    sheet: &mut Sheet,
) -> Result<PollPolicy, ConfigError> {
    let min = sheet.defaulted("poll-min", &args.poll_min, &file.poll_min, duration)?;
    let max = sheet.defaulted("poll-max", &args.poll_max, &file.poll_max, duration)?;
    if min.is_zero() || max < min {
        return Err(ConfigError::Usage(
            "--poll-min must be above zero and not above --poll-max".into(),
        ));
    }
    Ok(PollPolicy { min, max })
}

/// How long a new task's status may answer 404 before it counts as an error: at least 30 s,
/// and when polls are far apart at least six of them, so that a task the service has not
/// caught up with yet is read a few times before it is given up.
fn young_task_grace(poll: PollPolicy) -> Duration {
    Duration::from_secs(30).max(poll.min * 6)
}

/// A repeatable flag's values, `None` when it was not given (so the file's list applies).
fn nonempty(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

pub fn mode_of(mode: ModeArg) -> Mode {
    match mode {
        ModeArg::Check => Mode::Check,
        ModeArg::Migrate => Mode::Migrate,
    }
}

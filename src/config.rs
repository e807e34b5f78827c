//! Validated, resolved settings built from the command line, `CMAFLEET_*` variables and the
//! optional `--config` file (flags and variables override the file, the file overrides the
//! defaults). Nothing past this module sees raw flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use serde::Serialize;
use url::Url;

use crate::cli::{ModeArg, PolicyArgs, RateArgs, RunArgs, SelectArgs};
use crate::cma::client::ClientSettings;
use crate::exit;
use crate::fleet::policy::{PollPolicy, Rate, RateConfig};
use crate::vocab::Mode;

mod file;
mod network;
mod print;
mod shard;
mod values;

pub use file::SettingsFile;
pub use network::ConnectionSettings;
use network::network_shown;
use print::{Layered, layer};
pub use print::{Origin, Shown, redact_url};
use shard::shard_from;
pub use shard::{Selection, Shard};
use values::{
    duration_opt, humantime_opt, humantime_req, parse_addr, parse_gateway_url, parse_url,
    serialize_poll, serialize_rates, serialize_url, serialize_url_opt,
};
pub use values::{is_loopback, night_window};

/// Atlassian's migration API (`--cloud-api-url`'s default).
pub const DEFAULT_CLOUD_API_URL: &str = "https://api.atlassian.com";

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
    pub shown: Vec<Shown>,
}

impl Resolved {
    /// The `--print-config` text (a valid settings file).
    pub fn print(&self) -> String {
        print::render(&self.shown)
    }
}

/// The `--print-config` lines, collected while resolving.
#[derive(Default)]
struct Sheet(Vec<Shown>);

impl Sheet {
    fn add(&mut self, key: &'static str, origin: Origin, value: Option<toml::Value>) {
        self.0.push(Shown {
            key,
            value,
            origin,
            note: None,
        });
    }

    fn text(&mut self, key: &'static str, origin: Origin, value: Option<impl ToString>) {
        self.add(
            key,
            origin,
            value.map(|value| toml::Value::String(value.to_string())),
        );
    }

    fn path(&mut self, key: &'static str, origin: Origin, value: Option<&Path>) {
        self.text(key, origin, value.map(|path| path.display()));
    }

    fn duration(&mut self, key: &'static str, origin: Origin, value: Option<Duration>) {
        self.text(key, origin, value.map(humantime::format_duration));
    }

    fn flag(&mut self, key: &'static str, layered: &Layered<bool>) -> bool {
        let value = layered.value.unwrap_or(false);
        self.add(key, layered.origin, Some(toml::Value::Boolean(value)));
        value
    }

    fn list(&mut self, key: &'static str, origin: Origin, values: &[String]) {
        let value = (!values.is_empty())
            .then(|| toml::Value::Array(values.iter().cloned().map(toml::Value::String).collect()));
        self.add(key, origin, value);
    }
}

impl RunSettings {
    pub fn from_args(args: &RunArgs) -> Result<RunSettings, ConfigError> {
        Ok(RunSettings::resolve(args)?.settings)
    }

    /// Flags (and their `CMAFLEET_*` variables) over the `--config` file over defaults.
    pub fn resolve(args: &RunArgs) -> Result<Resolved, ConfigError> {
        let file = SettingsFile::load(args.config.as_deref())?;
        let policy = &args.policy;
        let mut sheet = Sheet::default();

        let inventory = layer(args.inventory.clone(), file.inventory.clone());
        sheet.path("inventory", inventory.origin, inventory.value.as_deref());
        let inventory = inventory.value.ok_or_else(|| {
            ConfigError::Usage(
                "no inventory: give INVENTORY or set `inventory` in the --config file".into(),
            )
        })?;
        let file_mode = file
            .mode
            .as_deref()
            .map(|text| match text.trim() {
                "check" => Ok(ModeArg::Check),
                "migrate" => Ok(ModeArg::Migrate),
                other => Err(ConfigError::Config(format!(
                    "config file: mode `{other}`: expected check or migrate"
                ))),
            })
            .transpose()?;
        let mode = layer(args.mode, file_mode);
        let mode_origin = mode.origin;
        let mode = mode.value.map(mode_of).ok_or_else(|| {
            ConfigError::Usage(
                "no mode: give --mode check|migrate or set `mode` in the --config file".into(),
            )
        })?;
        sheet.text("mode", mode_origin, Some(mode.as_str()));

        let state_dir = layer(policy.state_dir.clone(), file.state_dir.clone());
        let state_origin = state_dir.origin;
        let state_dir = state_dir
            .value
            .unwrap_or_else(|| PathBuf::from("cmafleet-state"));
        sheet.path("state-dir", state_origin, Some(&state_dir));
        let report_dir = layer(args.report_dir.clone(), file.report_dir.clone());
        sheet.path("report-dir", report_dir.origin, report_dir.value.as_deref());
        // Absolute, as the run records it: `report` and `status` may run from elsewhere and
        // must find the run's files (its artifacts) again.
        let report_dir = report_dir
            .value
            .map(|dir| std::path::absolute(&dir).unwrap_or(dir));

        let cloud_api_url = layer(args.cloud_api_url.clone(), file.cloud_api_url.clone());
        let url_origin = cloud_api_url.origin;
        let cloud_api_url = parse_url(
            "--cloud-api-url",
            cloud_api_url
                .value
                .as_deref()
                .unwrap_or(DEFAULT_CLOUD_API_URL),
        )?;
        sheet.text(
            "cloud-api-url",
            url_origin,
            Some(redact_url(&cloud_api_url)),
        );

        let concurrency = layer(args.concurrency, file.concurrency);
        let per_server = layer(args.per_server, file.per_server);
        sheet.add(
            "concurrency",
            concurrency.origin,
            Some(toml::Value::Integer(
                concurrency
                    .value
                    .unwrap_or(50)
                    .try_into()
                    .unwrap_or(i64::MAX),
            )),
        );
        sheet.add(
            "per-server",
            per_server.origin,
            Some(toml::Value::Integer(
                per_server.value.unwrap_or(1).try_into().unwrap_or(i64::MAX),
            )),
        );
        let (concurrency, per_server) = (
            concurrency.value.unwrap_or(50),
            per_server.value.unwrap_or(1),
        );
        if concurrency == 0 || per_server == 0 {
            return Err(ConfigError::Usage(
                "--concurrency and --per-server must be at least 1".into(),
            ));
        }

        let selection = selection_shown(&args.select, &file, &mut sheet)?;

        let precheck = sheet.flag("precheck", &layer(policy.precheck, file.precheck));
        let block_on_warnings = sheet.flag(
            "block-on-warnings",
            &layer(args.block_on_warnings, file.block_on_warnings),
        );
        let override_checks = layer(
            nonempty(&args.override_checks),
            file.override_checks.clone(),
        );
        sheet.list(
            "override-checks",
            override_checks.origin,
            override_checks.value.as_deref().unwrap_or_default(),
        );
        let override_checks = override_checks.value.unwrap_or_default();
        if mode == Mode::Check && !override_checks.is_empty() {
            return Err(ConfigError::Usage(
                "--override-checks applies to --mode migrate only".into(),
            ));
        }
        let connect = sheet.flag("connect", &layer(policy.connect, file.connect));
        let wait_apps = sheet.flag("wait-apps", &layer(args.wait_apps, file.wait_apps));
        let remigrate = sheet.flag("remigrate", &layer(policy.remigrate, file.remigrate));

        let window = layer(
            args.no_new_tasks_after.clone(),
            file.no_new_tasks_after.clone(),
        );
        sheet.text("no-new-tasks-after", window.origin, window.value.as_deref());
        let no_new_tasks_after = night_window(window.value.as_ref(), Local::now())?;
        let deadline = layer(args.deadline.clone(), file.deadline.clone());
        let deadline_origin = deadline.origin;
        let deadline = duration_opt("--deadline", deadline.value.as_ref())?;
        sheet.duration("deadline", deadline_origin, deadline);

        let poll_min = layer(args.poll_min.clone(), file.poll_min.clone());
        let poll_max = layer(args.poll_max.clone(), file.poll_max.clone());
        let poll = PollPolicy {
            min: duration_opt("--poll-min", poll_min.value.as_ref())?
                .unwrap_or(Duration::from_secs(5)),
            max: duration_opt("--poll-max", poll_max.value.as_ref())?
                .unwrap_or(Duration::from_secs(60)),
        };
        if poll.min.is_zero() || poll.max < poll.min {
            return Err(ConfigError::Usage(
                "--poll-min must be above zero and not above --poll-max".into(),
            ));
        }
        sheet.duration("poll-min", poll_min.origin, Some(poll.min));
        sheet.duration("poll-max", poll_max.origin, Some(poll.max));

        let rates = rates_shown(&policy.rates, &file, &mut sheet)?;

        let listen = layer(args.metrics_listen.clone(), file.metrics_listen.clone());
        let metrics_listen = listen
            .value
            .as_deref()
            .map(|text| parse_addr("--metrics-listen", text))
            .transpose()?;
        sheet.text("metrics-listen", listen.origin, metrics_listen);
        let gateway = layer(args.pushgateway.clone(), file.pushgateway.clone());
        let pushgateway = gateway
            .value
            .as_deref()
            .map(|text| parse_gateway_url("--pushgateway", text))
            .transpose()?;
        sheet.text(
            "pushgateway",
            gateway.origin,
            pushgateway.as_ref().map(redact_url),
        );
        let textfile = layer(args.metrics_textfile.clone(), file.metrics_textfile.clone());
        sheet.path(
            "metrics-textfile",
            textfile.origin,
            textfile.value.as_deref(),
        );

        let interval = layer(
            args.progress_interval.clone(),
            file.progress_interval.clone(),
        );
        let progress_interval = duration_opt("--progress-interval", interval.value.as_ref())?
            .unwrap_or(Duration::from_secs(30));
        if progress_interval.is_zero() {
            return Err(ConfigError::Usage(
                "--progress-interval must be above zero".into(),
            ));
        }
        sheet.duration(
            "progress-interval",
            interval.origin,
            Some(progress_interval),
        );
        let mut client = ClientSettings::default();
        let timeout = layer(args.request_timeout.clone(), file.request_timeout.clone());
        if let Some(timeout) = duration_opt("--request-timeout", timeout.value.as_ref())? {
            client.request_timeout = timeout;
        }
        sheet.duration(
            "request-timeout",
            timeout.origin,
            Some(client.request_timeout),
        );
        let client = network_shown(&args.network, &file, &cloud_api_url, client, &mut sheet)?;
        let same = layer(args.stop_after_same_failures, file.stop_after_same_failures);
        let stop_after_same_failures = same.value.unwrap_or(3);
        sheet.add(
            "stop-after-same-failures",
            same.origin,
            Some(toml::Value::Integer(
                stop_after_same_failures.try_into().unwrap_or(i64::MAX),
            )),
        );
        let grace = layer(args.stop_grace.clone(), file.stop_grace.clone());
        let stop_grace =
            duration_opt("--stop-grace", grace.value.as_ref())?.unwrap_or(Duration::from_secs(10));
        sheet.duration("stop-grace", grace.origin, Some(stop_grace));

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
            metrics_textfile: textfile.value,
            progress_interval,
            client,
            young_task_grace: Duration::from_secs(30).max(poll.min * 6),
            stop_after_same_failures,
            stop_grace,
        };
        Ok(Resolved {
            settings,
            shown: sheet.0,
        })
    }

    /// The options as recorded in `run.json` (no secrets here: secrets are resolved later
    /// from the inventory's references, and a password in a URL is `***`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

fn nonempty(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

/// The rows to take: `--wave`, `--site` and `--shard`/`--shards`, each over the file's.
fn selection_shown(
    select: &SelectArgs,
    file: &SettingsFile,
    sheet: &mut Sheet,
) -> Result<Selection, ConfigError> {
    let waves = layer(nonempty(&select.waves), file.wave.clone());
    sheet.list(
        "wave",
        waves.origin,
        waves.value.as_deref().unwrap_or_default(),
    );
    let sites = layer(nonempty(&select.sites), file.site.clone());
    sheet.list(
        "site",
        sites.origin,
        sites.value.as_deref().unwrap_or_default(),
    );
    let shard = resolve_shard(select, file, sheet)?;
    Ok(Selection {
        waves: waves.value.unwrap_or_default(),
        sites: sites.value.unwrap_or_default(),
        shard,
    })
}

/// The shard from `--shard`/`--shards` (with `JOB_COMPLETION_INDEX`), else from the file.
fn resolve_shard(
    select: &SelectArgs,
    file: &SettingsFile,
    sheet: &mut Sheet,
) -> Result<Option<Shard>, ConfigError> {
    let from_flags = select.shard.is_some() || select.shards.is_some();
    let (text, count, origin) = if from_flags {
        (select.shard.clone(), select.shards, Origin::Flag)
    } else {
        (file.shard.clone(), file.shards, Origin::File)
    };
    if text.is_some() && count.is_some() {
        return Err(ConfigError::Config(
            "config file: set `shard` (I/N) or `shards` (N, with JOB_COMPLETION_INDEX), not both"
                .into(),
        ));
    }
    let shard = shard_from(text.as_deref(), count)?;
    if let Some(count) = count {
        sheet.add("shards", origin, Some(toml::Value::Integer(count.into())));
        if let (Some(shown), Some(shard)) = (sheet.0.last_mut(), shard) {
            shown.note = Some(format!(
                "this process is shard {} (JOB_COMPLETION_INDEX)",
                shard.label()
            ));
        }
    } else {
        let origin = if text.is_some() {
            origin
        } else {
            Origin::Default
        };
        sheet.text("shard", origin, text.as_deref());
    }
    Ok(shard)
}

pub fn mode_of(mode: ModeArg) -> Mode {
    match mode {
        ModeArg::Check => Mode::Check,
        ModeArg::Migrate => Mode::Migrate,
    }
}

/// `--state-dir`, else the file's, else `./cmafleet-state`.
pub fn state_dir(policy: &PolicyArgs, file: &SettingsFile) -> PathBuf {
    policy
        .state_dir
        .clone()
        .or(file.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from("cmafleet-state"))
}

/// The rate limits from flags and file (a malformed rate is a configuration error, exit 78).
pub fn rates(rates: &RateArgs, file: &SettingsFile) -> Result<RateConfig, ConfigError> {
    rates_shown(rates, file, &mut Sheet::default())
}

fn rates_shown(
    rates: &RateArgs,
    file: &SettingsFile,
    sheet: &mut Sheet,
) -> Result<RateConfig, ConfigError> {
    let defaults = RateConfig::default();
    let mut pick = |key: &'static str,
                    arg: &Option<String>,
                    from_file: &Option<String>,
                    default: Rate|
     -> Result<Rate, ConfigError> {
        let layered = layer(arg.clone(), from_file.clone());
        let rate = match &layered.value {
            Some(text) => text
                .parse()
                .map_err(|error| ConfigError::Config(format!("--{key}: {error}")))?,
            None => default,
        };
        sheet.text(key, layered.origin, Some(rate));
        Ok(rate)
    };
    Ok(RateConfig {
        create_job: pick(
            "rate-create-job",
            &rates.rate_create_job,
            &file.rate_create_job,
            defaults.create_job,
        )?,
        create_task: pick(
            "rate-create-task",
            &rates.rate_create_task,
            &file.rate_create_task,
            defaults.create_task,
        )?,
        read: pick(
            "rate-read",
            &rates.rate_read,
            &file.rate_read,
            defaults.read,
        )?,
        token: pick(
            "rate-token",
            &rates.rate_token,
            &file.rate_token,
            defaults.token,
        )?,
    })
}

//! Validated, resolved settings built from the command line, `CMAFLEET_*` variables and the
//! optional `--config` file (flags and variables override the file, the file overrides the
//! defaults). Nothing past this module sees raw flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Local, NaiveTime, TimeZone, Utc};
use serde::Serialize;
use url::Url;

use crate::cli::{ModeArg, PolicyArgs, RunArgs, SelectArgs};
use crate::cma::client::ClientSettings;
use crate::exit;
use crate::fleet::Mode;
use crate::fleet::limits::{Rate, RateConfig};
use crate::fleet::poll::PollPolicy;

mod file;
mod print;

pub use file::SettingsFile;
use print::{Layered, layer};
pub use print::{Origin, Shown, redact_url};

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

/// `--shard I/N`: only the rows whose cloud user hashes to shard I.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Shard, ConfigError> {
        let bad = || {
            ConfigError::Usage(format!(
                "bad --shard `{text}`: expected I/N with 0 <= I < N, e.g. 0/4"
            ))
        };
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether a cloud user belongs to this shard: a stable hash (FNV-1a) of the lower-cased
    /// email, so every site of one user — and so that user's rate limits — live in one process.
    pub fn owns(&self, cloud_user: &str) -> bool {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in cloud_user.trim().to_ascii_lowercase().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash % u64::from(self.count) == u64::from(self.index)
    }

    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// Which rows a run takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Selection {
    pub waves: Vec<String>,
    pub sites: Vec<String>,
    pub shard: Option<Shard>,
}

impl Selection {
    /// From flags; `JOB_COMPLETION_INDEX` gives I when `--shards N` is set.
    pub fn from_args(args: &SelectArgs) -> Result<Selection, ConfigError> {
        Ok(Selection {
            waves: args.waves.clone(),
            sites: args.sites.clone(),
            shard: shard_from(args.shard.as_deref(), args.shards)?,
        })
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
        self.0.push(Shown { key, value, origin });
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
        let report_dir = report_dir.value;

        let cloud_api_url = layer(args.cloud_api_url.clone(), file.cloud_api_url.clone());
        let url_origin = cloud_api_url.origin;
        let cloud_api_url = parse_url(
            "--cloud-api-url",
            cloud_api_url
                .value
                .as_deref()
                .unwrap_or("https://api.atlassian.com"),
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

        let waves = layer(nonempty(&args.select.waves), file.wave.clone());
        sheet.list(
            "wave",
            waves.origin,
            waves.value.as_deref().unwrap_or_default(),
        );
        let sites = layer(nonempty(&args.select.sites), file.site.clone());
        sheet.list(
            "site",
            sites.origin,
            sites.value.as_deref().unwrap_or_default(),
        );
        let shard = resolve_shard(&args.select, &file, &mut sheet)?;
        let selection = Selection {
            waves: waves.value.unwrap_or_default(),
            sites: sites.value.unwrap_or_default(),
            shard,
        };

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

        let rates = rates_shown(policy, &file, &mut sheet)?;

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
            .map(|text| parse_url("--pushgateway", text))
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
    if let Some(count) = count {
        sheet.add("shards", origin, Some(toml::Value::Integer(count.into())));
    } else {
        let origin = if text.is_some() {
            origin
        } else {
            Origin::Default
        };
        sheet.text("shard", origin, text.as_deref());
    }
    shard_from(text.as_deref(), count)
}

/// `I/N` text, or N with I from `JOB_COMPLETION_INDEX`.
fn shard_from(text: Option<&str>, count: Option<u32>) -> Result<Option<Shard>, ConfigError> {
    match (text, count) {
        (Some(text), _) => Shard::parse(text).map(Some),
        (None, Some(count)) => {
            let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                ConfigError::Usage(
                    "--shards needs JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job); \
                     elsewhere use --shard I/N"
                        .into(),
                )
            })?;
            Shard::parse(&format!("{}/{count}", index.trim()))
                .map(Some)
                .map_err(|_| {
                    ConfigError::Usage(format!(
                        "JOB_COMPLETION_INDEX `{index}` with --shards {count}: expected 0 <= index < {count}"
                    ))
                })
        }
        (None, None) => Ok(None),
    }
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
pub fn rates(policy: &PolicyArgs, file: &SettingsFile) -> Result<RateConfig, ConfigError> {
    rates_shown(policy, file, &mut Sheet::default())
}

fn rates_shown(
    policy: &PolicyArgs,
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
            &policy.rate_create_job,
            &file.rate_create_job,
            defaults.create_job,
        )?,
        create_task: pick(
            "rate-create-task",
            &policy.rate_create_task,
            &file.rate_create_task,
            defaults.create_task,
        )?,
        read: pick(
            "rate-read",
            &policy.rate_read,
            &file.rate_read,
            defaults.read,
        )?,
        token: pick(
            "rate-token",
            &policy.rate_token,
            &file.rate_token,
            defaults.token,
        )?,
    })
}

fn duration_opt(flag: &str, text: Option<&String>) -> Result<Option<Duration>, ConfigError> {
    text.map(|text| {
        humantime::parse_duration(text.trim()).map_err(|error| {
            ConfigError::Usage(format!("bad {flag} `{text}`: {error} (e.g. 30s, 5m, 6h)"))
        })
    })
    .transpose()
}

fn parse_url(flag: &str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text.trim())
        .map_err(|error| ConfigError::Usage(format!("bad {flag} `{text}`: {error}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ConfigError::Usage(format!(
            "{flag} `{text}`: plain http is only allowed to loopback hosts; use https"
        ))),
        other => Err(ConfigError::Usage(format!(
            "{flag} `{text}`: unsupported scheme `{other}`"
        ))),
    }
}

/// Whether a URL's host is loopback (127.0.0.0/8, ::1, localhost).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn parse_addr(flag: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    text.trim()
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            ConfigError::Usage(format!(
                "bad {flag} `{text}`: expected HOST:PORT, e.g. 127.0.0.1:9464"
            ))
        })
}

/// `HH:MM` → the next such local time after `now`; an RFC 3339 timestamp is taken as is.
pub fn night_window(
    text: Option<&String>,
    now: DateTime<Local>,
) -> Result<Option<DateTime<Utc>>, ConfigError> {
    let Some(text) = text else { return Ok(None) };
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    let time = NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| {
        ConfigError::Usage(format!(
            "bad --no-new-tasks-after `{text}`: expected HH:MM (local time), e.g. 05:30"
        ))
    })?;
    let mut date = now.date_naive();
    loop {
        if let Some(at) = Local.from_local_datetime(&date.and_time(time)).earliest()
            && at > now
        {
            return Ok(Some(at.with_timezone(&Utc)));
        }
        date = date
            .succ_opt()
            .ok_or_else(|| ConfigError::Usage("--no-new-tasks-after is out of range".into()))?;
    }
}

fn serialize_url<S: serde::Serializer>(url: &Url, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

fn serialize_url_opt<S: serde::Serializer>(
    url: &Option<Url>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_str(&redact_url(url)),
        None => serializer.serialize_none(),
    }
}

fn serialize_poll<S: serde::Serializer>(
    poll: &PollPolicy,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(2))?;
    map.serialize_entry("min", &humantime::format_duration(poll.min).to_string())?;
    map.serialize_entry("max", &humantime::format_duration(poll.max).to_string())?;
    map.end()
}

fn serialize_rates<S: serde::Serializer>(
    rates: &RateConfig,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(4))?;
    map.serialize_entry("create_job", &rates.create_job.to_string())?;
    map.serialize_entry("create_task", &rates.create_task.to_string())?;
    map.serialize_entry("read", &rates.read.to_string())?;
    map.serialize_entry("token", &rates.token.to_string())?;
    map.end()
}

mod humantime_opt {
    pub fn serialize<S: serde::Serializer>(
        value: &Option<std::time::Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => {
                serializer.serialize_str(&humantime::format_duration(*duration).to_string())
            }
            None => serializer.serialize_none(),
        }
    }
}

mod humantime_req {
    pub fn serialize<S: serde::Serializer>(
        value: &std::time::Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_users_and_keep_each_user_together() {
        let users: Vec<String> = (0..200).map(|n| format!("admin{n}@example.com")).collect();
        let shards = [
            Shard { index: 0, count: 3 },
            Shard { index: 1, count: 3 },
            Shard { index: 2, count: 3 },
        ];
        for user in &users {
            assert_eq!(
                shards.iter().filter(|shard| shard.owns(user)).count(),
                1,
                "{user} in exactly one shard"
            );
            assert_eq!(
                shards[0].owns(user),
                shards[0].owns(&user.to_uppercase()),
                "case-insensitive"
            );
        }
        for shard in &shards {
            assert!(
                users.iter().filter(|user| shard.owns(user)).count() > 30,
                "roughly even"
            );
        }
    }

    #[test]
    fn bad_shards_are_usage_errors() {
        for text in ["3/3", "1", "a/2", "0/0"] {
            assert!(
                matches!(Shard::parse(text), Err(ConfigError::Usage(_))),
                "{text}"
            );
        }
        assert_eq!(Shard::parse(" 1/4 ").unwrap(), Shard { index: 1, count: 4 });
    }

    #[test]
    fn the_night_window_is_the_next_such_local_time() {
        let now = Local.with_ymd_and_hms(2026, 11, 28, 22, 0, 0).unwrap();
        let closes = night_window(Some(&"05:30".to_string()), now)
            .unwrap()
            .unwrap();
        assert_eq!(
            closes.with_timezone(&Local),
            Local.with_ymd_and_hms(2026, 11, 29, 5, 30, 0).unwrap()
        );
        let later_today = night_window(Some(&"23:15".to_string()), now)
            .unwrap()
            .unwrap();
        assert_eq!(
            later_today.with_timezone(&Local),
            Local.with_ymd_and_hms(2026, 11, 28, 23, 15, 0).unwrap()
        );
        assert!(night_window(Some(&"25:00".to_string()), now).is_err());
        let exact = night_window(Some(&"2026-11-29T01:00:00Z".to_string()), now)
            .unwrap()
            .unwrap();
        assert_eq!(exact.to_rfc3339(), "2026-11-29T01:00:00+00:00");
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback() {
        assert!(parse_url("--cloud-api-url", "http://127.0.0.1:9000").is_ok());
        assert!(parse_url("--cloud-api-url", "http://localhost:9000").is_ok());
        assert!(parse_url("--cloud-api-url", "http://api.example.com").is_err());
        assert!(parse_url("--cloud-api-url", "https://api.atlassian.com").is_ok());
    }
}

//! Validated, resolved settings built from the command line, `CMAFLEET_*` variables and the
//! optional `--config` file (flags and variables override the file, the file overrides the
//! defaults). Nothing past this module sees raw flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Local, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::cli::{ModeArg, PolicyArgs, RunArgs, SelectArgs};
use crate::cma::client::ClientSettings;
use crate::exit;
use crate::fleet::Mode;
use crate::fleet::limits::{Rate, RateConfig};
use crate::fleet::poll::PollPolicy;

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
        let shard = match (&args.shard, args.shards) {
            (Some(text), _) => Some(Shard::parse(text)?),
            (None, Some(count)) => {
                let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                    ConfigError::Usage("--shards needs JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) or use --shard I/N".into())
                })?;
                Some(Shard::parse(&format!("{index}/{count}"))?)
            }
            (None, None) => None,
        };
        Ok(Selection {
            waves: args.waves.clone(),
            sites: args.sites.clone(),
            shard,
        })
    }
}

/// The settings file (`--config cmafleet.toml`): every run option, by its flag's name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SettingsFile {
    pub state_dir: Option<PathBuf>,
    pub report_dir: Option<PathBuf>,
    pub cloud_api_url: Option<String>,
    pub concurrency: Option<usize>,
    pub per_server: Option<usize>,
    pub wave: Option<Vec<String>>,
    pub site: Option<Vec<String>>,
    pub precheck: Option<bool>,
    pub block_on_warnings: Option<bool>,
    pub override_checks: Option<Vec<String>>,
    pub connect: Option<bool>,
    pub wait_apps: Option<bool>,
    pub remigrate: Option<bool>,
    pub no_new_tasks_after: Option<String>,
    pub deadline: Option<String>,
    pub poll_min: Option<String>,
    pub poll_max: Option<String>,
    pub rate_create_job: Option<String>,
    pub rate_create_task: Option<String>,
    pub rate_read: Option<String>,
    pub rate_token: Option<String>,
    pub metrics_listen: Option<String>,
    pub pushgateway: Option<String>,
    pub metrics_textfile: Option<PathBuf>,
    pub progress_interval: Option<String>,
    pub request_timeout: Option<String>,
}

impl SettingsFile {
    pub fn load(path: Option<&Path>) -> Result<SettingsFile, ConfigError> {
        let Some(path) = path else {
            return Ok(SettingsFile::default());
        };
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::Config(format!(
                "cannot read config file {}: {error}",
                path.display()
            ))
        })?;
        toml::from_str(&text).map_err(|error| {
            ConfigError::Config(format!("config file {}: {error}", path.display()))
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

impl RunSettings {
    pub fn from_args(args: &RunArgs) -> Result<RunSettings, ConfigError> {
        let file = SettingsFile::load(args.config.as_deref())?;
        let policy = &args.policy;
        let mode = mode_of(args.mode);
        let mut selection = Selection::from_args(&args.select)?;
        if selection.waves.is_empty() {
            selection.waves = file.wave.clone().unwrap_or_default();
        }
        if selection.sites.is_empty() {
            selection.sites = file.site.clone().unwrap_or_default();
        }
        let poll = PollPolicy {
            min: duration_opt(
                "--poll-min",
                args.poll_min.as_ref().or(file.poll_min.as_ref()),
            )?
            .unwrap_or(Duration::from_secs(5)),
            max: duration_opt(
                "--poll-max",
                args.poll_max.as_ref().or(file.poll_max.as_ref()),
            )?
            .unwrap_or(Duration::from_secs(60)),
        };
        if poll.min.is_zero() || poll.max < poll.min {
            return Err(ConfigError::Usage(
                "--poll-min must be above zero and not above --poll-max".into(),
            ));
        }
        let cloud_api_url = args
            .cloud_api_url
            .clone()
            .or(file.cloud_api_url.clone())
            .unwrap_or_else(|| "https://api.atlassian.com".into());
        let cloud_api_url = parse_url("--cloud-api-url", &cloud_api_url)?;
        let concurrency = args.concurrency.or(file.concurrency).unwrap_or(50);
        let per_server = args.per_server.or(file.per_server).unwrap_or(1);
        if concurrency == 0 || per_server == 0 {
            return Err(ConfigError::Usage(
                "--concurrency and --per-server must be at least 1".into(),
            ));
        }
        let mut client = ClientSettings::default();
        if let Some(timeout) = duration_opt(
            "--request-timeout",
            args.request_timeout
                .as_ref()
                .or(file.request_timeout.as_ref()),
        )? {
            client.request_timeout = timeout;
        }
        let block_on_warnings = args.block_on_warnings || file.block_on_warnings.unwrap_or(false);
        let precheck = policy.precheck || file.precheck.unwrap_or(false);
        let override_checks = if args.override_checks.is_empty() {
            file.override_checks.clone().unwrap_or_default()
        } else {
            args.override_checks.clone()
        };
        if mode == Mode::Check && !override_checks.is_empty() {
            return Err(ConfigError::Usage(
                "--override-checks applies to --mode migrate only".into(),
            ));
        }
        Ok(RunSettings {
            inventory: args.inventory.clone(),
            mode,
            state_dir: state_dir(policy, &file),
            report_dir: args.report_dir.clone().or(file.report_dir.clone()),
            cloud_api_url,
            concurrency,
            per_server,
            selection,
            precheck,
            block_on_warnings,
            override_checks,
            connect: policy.connect || file.connect.unwrap_or(false),
            wait_apps: args.wait_apps || file.wait_apps.unwrap_or(false),
            remigrate: policy.remigrate || file.remigrate.unwrap_or(false),
            no_new_tasks_after: night_window(
                args.no_new_tasks_after
                    .as_ref()
                    .or(file.no_new_tasks_after.as_ref()),
                Local::now(),
            )?,
            deadline: duration_opt(
                "--deadline",
                args.deadline.as_ref().or(file.deadline.as_ref()),
            )?,
            poll,
            rates: rates(policy, &file)?,
            metrics_listen: args
                .metrics_listen
                .as_ref()
                .or(file.metrics_listen.as_ref())
                .map(|text| parse_addr("--metrics-listen", text))
                .transpose()?,
            pushgateway: args
                .pushgateway
                .as_ref()
                .or(file.pushgateway.as_ref())
                .map(|text| parse_url("--pushgateway", text))
                .transpose()?,
            metrics_textfile: args
                .metrics_textfile
                .clone()
                .or(file.metrics_textfile.clone()),
            progress_interval: duration_opt(
                "--progress-interval",
                args.progress_interval
                    .as_ref()
                    .or(file.progress_interval.as_ref()),
            )?
            .unwrap_or(Duration::from_secs(30)),
            client,
            young_task_grace: Duration::from_secs(30).max(poll.min * 6),
        })
    }

    /// The options as recorded in `run.json` and shown by `--print-config` (no secrets here:
    /// secrets are resolved later from the inventory's references).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
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
    let defaults = RateConfig::default();
    let pick = |flag: &str,
                arg: &Option<String>,
                from_file: &Option<String>,
                default: Rate|
     -> Result<Rate, ConfigError> {
        match arg.as_ref().or(from_file.as_ref()) {
            Some(text) => text
                .parse()
                .map_err(|error| ConfigError::Config(format!("{flag}: {error}"))),
            None => Ok(default),
        }
    };
    Ok(RateConfig {
        create_job: pick(
            "--rate-create-job",
            &policy.rate_create_job,
            &file.rate_create_job,
            defaults.create_job,
        )?,
        create_task: pick(
            "--rate-create-task",
            &policy.rate_create_task,
            &file.rate_create_task,
            defaults.create_task,
        )?,
        read: pick(
            "--rate-read",
            &policy.rate_read,
            &file.rate_read,
            defaults.read,
        )?,
        token: pick(
            "--rate-token",
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

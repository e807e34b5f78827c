//! Parsers of setting values (durations, URLs, addresses, the night window) and how the
//! resolved settings serialize (durations as `5s`, URLs with any password as `***`).

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Local, NaiveTime, TimeZone, Utc};
use url::Url;

use super::error::ConfigError;
use super::print::redact_url;
use crate::fleet::policy::{PollPolicy, Rate, RateConfig};
use crate::loopback::is_loopback_url;

pub(super) fn duration(flag: &str, text: String) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text.trim()).map_err(|error| {
        ConfigError::Usage(format!("bad {flag} `{text}`: {error} (e.g. 30s, 5m, 6h)"))
    })
}

/// A rate such as `5/min` (a malformed one is a configuration error, exit 78).
pub(super) fn rate(flag: &str, text: String) -> Result<Rate, ConfigError> {
    text.parse()
        .map_err(|error| ConfigError::Config(format!("{flag}: {error}")))
}

/// The cloud API: https, or plain http to a loopback host (the simulator, a tunnel).
pub(super) fn api_url(flag: &str, text: String) -> Result<Url, ConfigError> {
    let url = parse_any_url(flag, &text)?;
    match url.scheme() {
        "http" if !is_loopback_url(&url) => Err(ConfigError::Usage(format!(
            "{flag} `{}`: plain http is only allowed to loopback hosts; use https",
            redact_url(&url)
        ))),
        _ => Ok(url),
    }
}

/// `--pushgateway`: plain http is fine inside a cluster (metrics are no secret), unless the
/// URL carries a password, which must not cross the network in the clear.
pub(super) fn gateway_url(flag: &str, text: String) -> Result<Url, ConfigError> {
    let url = parse_any_url(flag, &text)?;
    if url.scheme() == "http" && url.password().is_some() && !is_loopback_url(&url) {
        return Err(ConfigError::Usage(format!(
            "{flag} `{}`: a password in the URL needs https",
            redact_url(&url)
        )));
    }
    Ok(url)
}

/// An http or https URL; the error never shows a password the text may hold.
fn parse_any_url(flag: &str, text: &str) -> Result<Url, ConfigError> {
    let shown = redact_text(text.trim());
    let url = Url::parse(text.trim())
        .map_err(|error| ConfigError::Usage(format!("bad {flag} `{shown}`: {error}")))?;
    match url.scheme() {
        "https" | "http" => Ok(url),
        other => Err(ConfigError::Usage(format!(
            "{flag} `{}`: unsupported scheme `{other}`",
            redact_url(&url)
        ))),
    }
}

/// URL-like text with anything before an `@` in its authority replaced by `***`.
fn redact_text(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => text.to_owned(),
    }
}

/// Whether a URL's host is loopback (127.0.0.0/8, ::1, localhost).
pub(super) fn addr(flag: &str, text: String) -> Result<SocketAddr, ConfigError> {
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
pub(super) fn night_window(
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

pub(super) fn serialize_url<S: serde::Serializer>(
    url: &Url,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

pub(super) fn serialize_url_opt<S: serde::Serializer>(
    url: &Option<Url>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_str(&redact_url(url)),
        None => serializer.serialize_none(),
    }
}

pub(super) fn serialize_poll<S: serde::Serializer>(
    poll: &PollPolicy,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(2))?;
    map.serialize_entry("min", &humantime::format_duration(poll.min).to_string())?;
    map.serialize_entry("max", &humantime::format_duration(poll.max).to_string())?;
    map.end()
}

pub(super) fn serialize_rates<S: serde::Serializer>(
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

pub(super) mod humantime_opt {
    pub(crate) fn serialize<S: serde::Serializer>(
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

pub(super) mod humantime_req {
    pub(crate) fn serialize<S: serde::Serializer>(
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
    fn a_gateway_may_be_plain_http_unless_it_carries_a_password() {
        let flag = "--pushgateway";
        assert!(gateway_url(flag, "http://pushgateway.monitoring.svc:9091/".into()).is_ok());
        assert!(gateway_url(flag, "http://u:pw@127.0.0.1:9091/".into()).is_ok());
        let error = gateway_url(flag, "http://u:hunter2@gw.example/".into()).unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let bad = gateway_url(flag, "https://u:hunter2@gw example/".into()).unwrap_err();
        assert!(!bad.to_string().contains("hunter2"), "{bad}");
        assert!(gateway_url(flag, "ftp://gw.example/".into()).is_err());
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback() {
        assert!(api_url("--cloud-api-url", "http://127.0.0.1:9000".into()).is_ok());
        assert!(api_url("--cloud-api-url", "http://localhost:9000".into()).is_ok());
        assert!(api_url("--cloud-api-url", "http://api.example.com".into()).is_err());
        assert!(api_url("--cloud-api-url", "https://api.atlassian.com".into()).is_ok());
    }
}

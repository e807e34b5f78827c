//! `--pushgateway`: PUT the final metrics to `/metrics/job/cmafleet/mode/M[/shard/I]` with
//! our own async reqwest client (the prometheus crate's `push` feature drags in blocking
//! reqwest).
//!
//! PUT replaces the whole group, so a shard's previous run never leaves stale series behind;
//! the `mode` in the group keeps a check night and a migration night apart.
//! The gateway URL may carry a path prefix (`https://gw.example/pushgateway/`) and basic-auth
//! credentials (`https://user:pass@gw.example/`); credentials never appear in an error.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::CONTENT_TYPE;
use url::Url;

use super::registry::MODE_LABEL;
use crate::vocab::Mode;

/// The Pushgateway `job` grouping label (docs/metrics.md).
pub const JOB: &str = "cmafleet";

/// The text exposition format we push.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4";

/// How much of a refusal's body is kept for the error message.
const EXCERPT_CHARS: usize = 200;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("push metrics to {url}: {reason}")]
pub struct PushError {
    /// The group URL, credentials removed.
    pub url: String,
    /// What went wrong, with a short excerpt of the gateway's answer when it refused.
    pub reason: String,
    /// The gateway's HTTP status when it answered with a non-2xx.
    pub status: Option<u16>,
}

/// Pushes `body` (text format) to the group of `mode`; `shard` adds the `shard` grouping
/// label.
pub async fn push(
    gateway: &Url,
    mode: Mode,
    shard: Option<&str>,
    body: String,
) -> Result<(), PushError> {
    let url = group_url(gateway, mode, shard)?;
    let shown = redacted(&url);
    let fail = |reason: String, status: Option<u16>| PushError {
        url: shown.clone(),
        reason,
        status,
    };

    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cmafleet/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| fail(format!("build the HTTP client: {error}"), None))?;
    let mut response = client
        .put(url.clone())
        .header(CONTENT_TYPE, TEXT_FORMAT)
        .body(body)
        .send()
        .await
        .map_err(|error| fail(describe(&error), None))?;

    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let mut answer = Vec::new();
    while answer.len() < EXCERPT_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            _ => break,
        }
    }
    Err(fail(
        format!("gateway answered {status}{}", excerpt(&answer)),
        Some(status.as_u16()),
    ))
}

/// `{gateway}/metrics/job/cmafleet/mode/{mode}[/shard/{shard}]`, keeping any path prefix of
/// `gateway`. A shard value a path segment cannot carry (empty, or with a `/`) uses the
/// gateway's `shard@base64/…` form.
pub fn group_url(gateway: &Url, mode: Mode, shard: Option<&str>) -> Result<Url, PushError> {
    let invalid = |reason: &str| PushError {
        url: redacted(gateway),
        reason: reason.to_owned(),
        status: None,
    };
    if !matches!(gateway.scheme(), "http" | "https") {
        return Err(invalid("the gateway URL must be http or https"));
    }
    let mut url = gateway.clone();
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| invalid("the gateway URL cannot take a path"))?;
        segments
            .pop_if_empty()
            .extend(["metrics", "job", JOB, MODE_LABEL, mode.as_str()]);
        match shard {
            None => {}
            Some(value) if !value.is_empty() && !value.contains('/') => {
                segments.extend(["shard", value]);
            }
            Some(value) => {
                let encoded = base64::engine::general_purpose::URL_SAFE.encode(value);
                let encoded = if encoded.is_empty() {
                    "=".to_owned()
                } else {
                    encoded
                };
                segments.extend(["shard@base64", &encoded]);
            }
        }
    }
    Ok(url)
}

/// The URL without user name and password.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// A transport failure in words, without the URL reqwest would repeat (it may hold
/// credentials).
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    }
}

/// `: <first line of the body, shortened>` or nothing for an empty body.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return String::new();
    }
    let mut short: String = line.chars().take(EXCERPT_CHARS).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    format!(": {short}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn group_urls_keep_the_prefix_and_add_the_mode_and_shard() {
        let plain = group_url(&url("http://127.0.0.1:9091"), Mode::Check, None).unwrap();
        assert_eq!(
            plain.as_str(),
            "http://127.0.0.1:9091/metrics/job/cmafleet/mode/check"
        );
        let sharded = group_url(&url("http://127.0.0.1:9091/"), Mode::Migrate, Some("3")).unwrap();
        assert_eq!(
            sharded.as_str(),
            "http://127.0.0.1:9091/metrics/job/cmafleet/mode/migrate/shard/3"
        );
        for prefix in ["https://gw.example/push", "https://gw.example/push/"] {
            let prefixed = group_url(&url(prefix), Mode::Check, Some("0")).unwrap();
            assert_eq!(
                prefixed.as_str(),
                "https://gw.example/push/metrics/job/cmafleet/mode/check/shard/0"
            );
        }
        let query = group_url(&url("http://gw.example/?x=1#y"), Mode::Migrate, None).unwrap();
        assert_eq!(
            query.as_str(),
            "http://gw.example/metrics/job/cmafleet/mode/migrate"
        );
    }

    #[test]
    fn awkward_shard_values_use_the_base64_form() {
        let slash = group_url(&url("http://gw.example"), Mode::Check, Some("1/4")).unwrap();
        assert_eq!(
            slash.as_str(),
            "http://gw.example/metrics/job/cmafleet/mode/check/shard@base64/MS80"
        );
        let empty = group_url(&url("http://gw.example"), Mode::Check, Some("")).unwrap();
        assert_eq!(
            empty.as_str(),
            "http://gw.example/metrics/job/cmafleet/mode/check/shard@base64/="
        );
    }

    #[test]
    fn only_http_gateways_are_accepted_and_errors_hide_credentials() {
        let error =
            group_url(&url("ftp://user:secret@gw.example/"), Mode::Check, None).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("push metrics to ftp://gw.example/"),
            "{error}"
        );
        assert!(group_url(&url("mailto:ops@example.com"), Mode::Check, None).is_err());
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b""), "");
        assert_eq!(
            excerpt(b"pushed metrics are invalid\nline 2\n"),
            ": pushed metrics are invalid line 2"
        );
        let long = "x".repeat(500);
        let short = excerpt(long.as_bytes());
        assert_eq!(short.chars().count(), 2 + EXCERPT_CHARS + 1);
    }
}

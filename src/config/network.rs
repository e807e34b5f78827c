//! How cmafleet reaches the API: the cloud API's URL, the rate limits per cloud user, the
//! request timeout, HTTP/2 with prior knowledge to a plain-http cloud API (only when asked),
//! and the CA certificates it trusts besides (or instead of) the system's. `run` and
//! `validate --online` resolve them alike.

use url::Url;

use super::layer::{Sheet, given};
use super::values::{duration, parse_url, rate};
use super::{ConfigError, Selection, SettingsFile, selection_shown};
use crate::cli::{ConnectionArgs, NetworkArgs, RateArgs, SelectArgs};
use crate::cma::client::{ClientSettings, ExtraRoots, HttpClient};
use crate::fleet::limits::RateConfig;

/// What `validate --online` needs to reach the API, resolved as `run` resolves it (flags
/// and `CMAFLEET_*` variables, then the `--config` file, then the defaults).
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub cloud_api_url: Url,
    /// Per cloud user, as in a run: checking a fleet never bursts past Atlassian's limits.
    pub rates: RateConfig,
    pub client: ClientSettings,
    /// The rows to try (`--wave`, `--site`, `--shard` over the file's), as a run takes them.
    pub selection: Selection,
}

impl ConnectionSettings {
    pub fn resolve(
        args: &ConnectionArgs,
        select: &SelectArgs,
    ) -> Result<ConnectionSettings, ConfigError> {
        let file = SettingsFile::load(args.config.as_deref())?;
        // Noted as a run notes them, though nothing prints them: one way to resolve each.
        let sheet = &mut Sheet::default();
        let selection = selection_shown(select, &file, sheet)?;
        let cloud_api_url = api_url(&args.cloud_api_url, &file, sheet)?;
        let rates = rates_shown(&args.rates, &file, sheet)?;
        let timeout = &args.request_timeout;
        let client = client_shown(timeout, &args.network, &file, &cloud_api_url, sheet)?;
        Ok(ConnectionSettings {
            cloud_api_url,
            rates,
            client,
            selection,
        })
    }
}

/// `--cloud-api-url` (https, or plain http to a loopback host only).
pub(super) fn api_url(
    flag: &Option<String>,
    file: &SettingsFile,
    sheet: &mut Sheet,
) -> Result<Url, ConfigError> {
    sheet.defaulted("cloud-api-url", flag, &file.cloud_api_url, |flag, text| {
        parse_url(flag, &text)
    })
}

/// The rate limits per cloud user (a malformed rate is a configuration error, exit 78).
pub(super) fn rates_shown(
    rates: &RateArgs,
    file: &SettingsFile,
    sheet: &mut Sheet,
) -> Result<RateConfig, ConfigError> {
    Ok(RateConfig {
        create_job: sheet.defaulted(
            "rate-create-job",
            &rates.rate_create_job,
            &file.rate_create_job,
            rate,
        )?,
        create_task: sheet.defaulted(
            "rate-create-task",
            &rates.rate_create_task,
            &file.rate_create_task,
            rate,
        )?,
        read: sheet.defaulted("rate-read", &rates.rate_read, &file.rate_read, rate)?,
        token: sheet.defaulted("rate-token", &rates.rate_token, &file.rate_token, rate)?,
    })
}

/// The HTTP settings: `--request-timeout`, `--http2-prior-knowledge` and `--ca-cert`, for the
/// cloud API at `api`. A CA file that cannot be used, or no CA certificate at all, is a
/// configuration error (exit 78).
pub(super) fn client_shown(
    request_timeout: &Option<String>,
    args: &NetworkArgs,
    file: &SettingsFile,
    api: &Url,
    sheet: &mut Sheet,
) -> Result<ClientSettings, ConfigError> {
    let timeout = sheet.defaulted(
        "request-timeout",
        request_timeout,
        &file.request_timeout,
        duration,
    )?;
    let mut client = ClientSettings {
        request_timeout: timeout,
        ..ClientSettings::default()
    };
    let h2 = (&args.http2_prior_knowledge, &file.http2_prior_knowledge);
    if sheet.defaulted("http2-prior-knowledge", h2.0, h2.1, given)? {
        client = client.with_h2c_api(api);
    }
    if let Some(path) = sheet.optional("ca-cert", &args.ca_cert, &file.ca_cert, given)? {
        let unusable =
            |error: String| ConfigError::Config(format!("--ca-cert {}: {error}", path.display()));
        let pem = std::fs::read(&path).map_err(|error| unusable(error.to_string()))?;
        client.extra_roots =
            ExtraRoots::from_pem(&pem).map_err(|error| unusable(error.to_string()))?;
    }
    trusted_roots(&client)?;
    Ok(client)
}

/// The system's CA certificates (or `SSL_CERT_FILE`'s, which replace them) are read when a
/// client is built: none at all, and no `--ca-cert`, is a configuration error here rather
/// than a failure of every request later.
fn trusted_roots(client: &ClientSettings) -> Result<(), ConfigError> {
    let observer = std::sync::Arc::new(crate::cma::client::NoopObserver);
    let Err(error) = HttpClient::new(client.clone(), observer) else {
        return Ok(());
    };
    let set = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .into_iter()
        .filter_map(|name| {
            Some(format!(
                "{name}={}",
                std::env::var_os(name)?.to_string_lossy()
            ))
        })
        .collect::<Vec<_>>();
    let hint = if set.is_empty() {
        "install the system's CA certificates (the ca-certificates package), or name a PEM bundle with --ca-cert".to_owned()
    } else {
        format!(
            "{} replaces the system's CA certificates: it must name readable PEM certificates",
            set.join(" and ")
        )
    };
    Err(ConfigError::Config(format!("{} ({hint})", error.message)))
}

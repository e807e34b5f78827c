//! How cmafleet reaches the API: the cloud API's URL, the rate limits per cloud user, the
//! request timeout, HTTP/2 with prior knowledge to a plain-http cloud API (only when asked),
//! and the CA certificates it trusts besides (or instead of) the system's. `run` and
//! `validate --online` resolve them alike.

use url::Url;

use super::error::ConfigError;
use super::file::SettingsFile;
use super::flags;
use super::layer::{Layers, given};
use super::shard::{Selection, selection_shown};
use super::values::{api_url, duration, rate};
use crate::cli::{ConnectionArgs, SelectArgs};
use crate::cma::client::{ClientSettings, ExtraRoots, HttpClient};
use crate::fleet::policy::RateConfig;

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
        let layers = &mut Layers::new(flags::of_connection(args, select), file);
        let selection = selection_shown(layers)?;
        let cloud_api_url = cloud_api_url(layers)?;
        let rates = rates_shown(layers)?;
        let client = client_shown(layers, &cloud_api_url)?;
        Ok(ConnectionSettings {
            cloud_api_url,
            rates,
            client,
            selection,
        })
    }
}

/// `--cloud-api-url`.
pub(super) fn cloud_api_url(layers: &mut Layers) -> Result<Url, ConfigError> {
    layers.defaulted("cloud-api-url", |layer| &layer.cloud_api_url, api_url)
}

/// The rate limits per cloud user (a malformed rate is a configuration error, exit 78).
pub(super) fn rates_shown(layers: &mut Layers) -> Result<RateConfig, ConfigError> {
    Ok(RateConfig {
        create_job: layers.defaulted("rate-create-job", |layer| &layer.rate_create_job, rate)?,
        create_task: layers.defaulted("rate-create-task", |layer| &layer.rate_create_task, rate)?,
        read: layers.defaulted("rate-read", |layer| &layer.rate_read, rate)?,
        token: layers.defaulted("rate-token", |layer| &layer.rate_token, rate)?,
    })
}

/// The HTTP settings: `--request-timeout`, `--http2-prior-knowledge` and `--ca-cert`, for the
/// cloud API at `api`. A CA file that cannot be used, or no CA certificate at all, is a
/// configuration error (exit 78).
pub(super) fn client_shown(layers: &mut Layers, api: &Url) -> Result<ClientSettings, ConfigError> {
    let request_timeout =
        layers.defaulted("request-timeout", |layer| &layer.request_timeout, duration)?;
    let mut client = ClientSettings {
        request_timeout,
        ..ClientSettings::default()
    };
    if layers.defaulted(
        "http2-prior-knowledge",
        |layer| &layer.http2_prior_knowledge,
        given,
    )? {
        client = client.with_h2c_api(api);
    }
    if let Some(path) = layers.optional("ca-cert", |layer| &layer.ca_cert, given)? {
        let unusable =
            |error: String| ConfigError::Config(format!("--ca-cert {}: {error}", path.display()));
        let pem = std::fs::read(&path).map_err(|error| unusable(error.to_string()))?;
        client.extra_roots = ExtraRoots::from_pem(&pem).map_err(unusable)?;
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

//! How cmafleet reaches the API: HTTP/2 with prior knowledge to a plain-http cloud API (only
//! when asked), and the CA certificates it trusts besides (or instead of) the system's.

use url::Url;

use super::print::layer;
use super::values::{duration_opt, parse_url};
use super::{
    ConfigError, DEFAULT_CLOUD_API_URL, Selection, SettingsFile, Sheet, rates_shown,
    selection_shown,
};
use crate::cli::{ConnectionArgs, NetworkArgs, SelectArgs};
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
        let mut sheet = Sheet::default();
        let selection = selection_shown(select, &file, &mut sheet)?;
        let url = layer(args.cloud_api_url.clone(), file.cloud_api_url.clone());
        let cloud_api_url = parse_url(
            "--cloud-api-url",
            url.value.as_deref().unwrap_or(DEFAULT_CLOUD_API_URL),
        )?;
        let rates = rates_shown(&args.rates, &file, &mut sheet)?;
        let mut client = ClientSettings::default();
        let timeout = layer(args.request_timeout.clone(), file.request_timeout.clone());
        if let Some(timeout) = duration_opt("--request-timeout", timeout.value.as_ref())? {
            client.request_timeout = timeout;
        }
        let client = network_shown(&args.network, &file, &cloud_api_url, client, &mut sheet)?;
        Ok(ConnectionSettings {
            cloud_api_url,
            rates,
            client,
            selection,
        })
    }
}

/// The HTTP settings of `--http2-prior-knowledge` and `--ca-cert` (flags over the file) on
/// top of `client`, for the cloud API at `api`. A CA file that cannot be used, or no CA
/// certificate at all, is a configuration error (exit 78).
pub(super) fn network_shown(
    args: &NetworkArgs,
    file: &SettingsFile,
    api: &Url,
    mut client: ClientSettings,
    sheet: &mut Sheet,
) -> Result<ClientSettings, ConfigError> {
    let h2 = layer(args.http2_prior_knowledge, file.http2_prior_knowledge);
    if sheet.flag("http2-prior-knowledge", &h2) {
        client = client.with_h2c_api(api);
    }
    let ca = layer(args.ca_cert.clone(), file.ca_cert.clone());
    sheet.path("ca-cert", ca.origin, ca.value.as_deref());
    if let Some(path) = &ca.value {
        let pem = std::fs::read(path).map_err(|error| {
            ConfigError::Config(format!("--ca-cert {}: {error}", path.display()))
        })?;
        client.extra_roots = ExtraRoots::from_pem(&pem).map_err(|error| {
            ConfigError::Config(format!("--ca-cert {}: {error}", path.display()))
        })?;
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

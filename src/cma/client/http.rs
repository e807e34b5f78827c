//! The shared HTTP transport: the run's connection pools, built once from the settings,
//! and what every attempt shares (the observer, the surprise log, the abandon signal).
//! Sending an attempt and retrying it is `transport`'s.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::proxy::matcher::Matcher as ProxyMatcher;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::hooks::ApiObserver;
use crate::cma::error::{ApiError, Endpoint, ErrorKind};
use crate::cma::retry::RetryPolicy;
use crate::cma::surprise::{Surprise, SurpriseKind, SurpriseLog};

/// Transport settings shared by every client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    /// Total time for one attempt, body included. For artifact downloads, the time allowed
    /// for the answer's head and then between two chunks of its body.
    pub request_timeout: Duration,
    /// Retries of reads (and of creates that certainly did not arrive).
    pub retry: RetryPolicy,
    /// Bodies larger than this are refused (`ErrorKind::Decode`), never read whole.
    pub max_body_bytes: usize,
    /// Artifacts larger than this are refused; what was written is removed.
    pub max_artifact_bytes: u64,
    pub user_agent: String,
    /// Plain-http origins spoken to in HTTP/2 without negotiation (h2c with prior
    /// knowledge): only the simulator's, and only when asked (`--http2-prior-knowledge`),
    /// since a server that speaks only HTTP/1.1 fails every such request. Any other plain
    /// http is HTTP/1.1; over https, HTTP/2 is negotiated (ALPN), falling back to HTTP/1.1.
    pub h2c_origins: Vec<url::Origin>,
    /// CA certificates trusted besides the system's (`--ca-cert`): a customer's own CA, or
    /// a TLS-inspecting proxy's. (`SSL_CERT_FILE` and `SSL_CERT_DIR`, when set, replace the
    /// system's certificates: rustls-native-certs reads them when a client is built.)
    pub extra_roots: ExtraRoots,
    /// How often an HTTP/2 connection is pinged, and how long the answer may take before
    /// the connection is given up (its requests then fail as connection errors and are
    /// retried, or reconciled for creates, on a new one).
    pub h2_ping: Duration,
}

impl ClientSettings {
    /// These settings with `api`'s origin spoken to in HTTP/2 with prior knowledge, if `api`
    /// is plain http (`--http2-prior-knowledge`: the simulator). One connection then carries
    /// every request to it, many in one write.
    #[must_use]
    pub fn with_h2c_api(mut self, api: &url::Url) -> ClientSettings {
        if api.scheme() == "http" && !self.h2c_origins.contains(&api.origin()) {
            self.h2c_origins.push(api.origin());
        }
        self
    }
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            max_body_bytes: 16 * 1024 * 1024,
            max_artifact_bytes: 1024 * 1024 * 1024,
            user_agent: format!("cmafleet/{}", env!("CARGO_PKG_VERSION")),
            h2c_origins: Vec::new(),
            extra_roots: ExtraRoots::default(),
            h2_ping: Duration::from_secs(15),
        }
    }
}

/// CA certificates to trust besides the system's roots.
#[derive(Clone, Default)]
pub struct ExtraRoots(pub Vec<reqwest::Certificate>);

impl ExtraRoots {
    /// Every certificate of a PEM bundle (`--ca-cert FILE`); the error says what is wrong
    /// with the file.
    pub fn from_pem(pem: &[u8]) -> Result<ExtraRoots, String> {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|err| format!("not a PEM certificate bundle: {err}"))?;
        if certs.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        Ok(ExtraRoots(certs))
    }
}

impl std::fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} extra CA certificate(s)", self.0.len())
    }
}

/// The shared HTTP transport: the whole run's connections, in two pools (see the fields).
#[derive(Clone)]
pub struct HttpClient {
    /// Every request but those to an h2c origin: HTTP/2 or HTTP/1.1 as negotiated over
    /// TLS, HTTP/1.1 over plain http.
    pub(super) inner: reqwest::Client,
    /// Requests to `settings.h2c_origins`: HTTP/2 with prior knowledge (its own pool,
    /// since prior knowledge is a setting of the whole reqwest client).
    pub(super) h2c: reqwest::Client,
    pub(super) settings: Arc<ClientSettings>,
    pub(super) observer: Arc<dyn ApiObserver>,
    /// Connection failures already logged at WARN (one line each, not one per retry).
    pub(super) connect_warned: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Fires when requests still on the wire must be dropped (a run's stop grace is over):
    /// creates are otherwise let finish after a stop, so that their outcome is known.
    pub(super) abandon: CancellationToken,
    /// The run's surprises: answers outside the API model, each kind and value once.
    pub(super) surprises: Arc<SurpriseLog>,
    /// The proxies of the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`),
    /// read as reqwest reads them when the clients are built: a connection failure names the
    /// proxy it went through, since the proxy is as likely the cause as the host.
    pub(super) proxies: Arc<ProxyMatcher>,
}

impl HttpClient {
    pub fn new(
        settings: ClientSettings,
        observer: Arc<dyn ApiObserver>,
    ) -> Result<HttpClient, ApiError> {
        let build = |h2c: bool| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
            let mut builder = reqwest::Client::builder();
            if h2c {
                builder = builder.http2_prior_knowledge();
            }
            if !settings.extra_roots.0.is_empty() {
                builder = builder.tls_certs_merge(settings.extra_roots.0.iter().cloned());
            }
            builder
                .user_agent(settings.user_agent.clone())
                .default_headers(headers)
                .connect_timeout(settings.connect_timeout)
                // Our own deadline covers each attempt (see `transport`); this one is a
                // backstop against a body that trickles forever.
                .read_timeout(settings.request_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .referer(false)
                // Close idle connections before a typical load balancer does, so a request
                // is rarely sent on a connection the other side is closing.
                .pool_idle_timeout(Duration::from_secs(30))
                // One HTTP/2 connection carries every request to its host: one that stopped
                // answering (a NAT that forgot it, a dead peer) must be noticed and replaced,
                // not handed every retry until each times out. Unanswered pings close it.
                .http2_keep_alive_interval(settings.h2_ping)
                .http2_keep_alive_timeout(settings.h2_ping)
                .http2_keep_alive_while_idle(true)
                .build()
                .map_err(|err| ApiError {
                    endpoint: Endpoint::GetJob,
                    status: None,
                    kind: ErrorKind::Connect,
                    request_id: None,
                    message: format!("cannot set up the HTTP client: {}", with_causes(&err)),
                })
        };
        Ok(HttpClient {
            inner: build(false)?,
            h2c: build(true)?,
            settings: Arc::new(settings),
            observer,
            connect_warned: Arc::default(),
            abandon: CancellationToken::new(),
            surprises: Arc::default(),
            proxies: Arc::new(ProxyMatcher::from_system()),
        })
    }

    /// Records an answer outside the API model: the first of each kind and value is said
    /// once (a WARN line, the metric) and kept for the reports; `secrets` never reach the
    /// sample.
    pub fn surprise(
        &self,
        kind: SurpriseKind,
        value: &str,
        sample: &str,
        endpoint: Endpoint,
        secrets: &[String],
    ) {
        let Some(new) = self
            .surprises
            .record(kind, value, sample, endpoint.template(), secrets)
        else {
            return;
        };
        self.observer.on_surprise(kind);
        tracing::warn!(
            "surprise ({kind}): {endpoint} answered `{}`, outside the API model cmafleet knows; {} (sample: {})",
            new.value,
            kind.rule(),
            new.sample
        );
    }

    /// Every surprise of the run so far.
    pub fn surprises(&self) -> Vec<Surprise> {
        self.surprises.list()
    }

    /// This client with creates on the wire dropped when `abandon` fires (their outcome is
    /// then unknown; the next run reconciles them).
    #[must_use]
    pub fn abandoning_on(mut self, abandon: CancellationToken) -> HttpClient {
        self.abandon = abandon;
        self
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// `HOST:PORT` of the proxy requests to `url` go through, if any (never its credentials).
    pub(super) fn proxy_for(&self, url: &url::Url) -> Option<String> {
        let uri: hyper::Uri = url.as_str().parse().ok()?;
        let proxy = self.proxies.intercept(&uri)?;
        let proxy = proxy.uri();
        let port = proxy
            .port_u16()
            .unwrap_or(if proxy.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        Some(format!("{}:{port}", proxy.host()?))
    }

    /// The pool that speaks to `url`'s origin.
    pub(super) fn pool_for(&self, url: &url::Url) -> &reqwest::Client {
        if url.scheme() == "http" && self.settings.h2c_origins.contains(&url.origin()) {
            &self.h2c
        } else {
            &self.inner
        }
    }
}

/// `err` and what caused it, `: `-separated (reqwest's own words alone are "builder error").
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

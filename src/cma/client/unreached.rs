//! Failures before any answer, in words a person acts on: where the request went (host and
//! port, and the proxy it went through — never a path, query or credential) and why it never
//! got there; and whether sending again can help.

use super::attempt::{Failure, api_error};
use super::http::HttpClient;
use crate::cma::error::{Endpoint, ErrorKind};

impl HttpClient {
    /// A failure before any answer: `connect` if the request certainly did not leave. A
    /// certificate refused, or a proxy's demand for credentials, is final: every attempt
    /// would meet it again.
    pub(super) fn send_failure(
        &self,
        endpoint: Endpoint,
        err: reqwest::Error,
    ) -> (&'static str, Failure) {
        let message = transport_message(&err);
        if err.is_builder() {
            let error = api_error(endpoint, None, ErrorKind::BadRequest, message);
            ("error", Failure::Final(error))
        } else if err.is_connect() {
            let proxy = err.url().and_then(|url| self.proxy_for(url));
            let message = connect_message(&err, proxy.as_deref());
            let error = api_error(endpoint, None, ErrorKind::Connect, message);
            if refused_for_good(&err) {
                ("connect", Failure::Final(error))
            } else {
                ("connect", Failure::NotSent(error))
            }
        } else if err.is_timeout() {
            let error = api_error(endpoint, None, ErrorKind::Timeout, message);
            let reason = "timeout";
            ("timeout", Failure::MaybeApplied { error, reason })
        } else {
            let message = format!("connection failed before the answer came: {message}");
            let error = api_error(endpoint, None, ErrorKind::Server, message);
            let reason = "error";
            ("error", Failure::MaybeApplied { error, reason })
        }
    }
}

/// `cannot connect to HOST:PORT[ through the proxy HOST:PORT]: WHY`: where (never the path
/// or query: a presigned URL's signature; never the proxy's credentials) and why, in words a
/// person acts on.
fn connect_message(err: &reqwest::Error, proxy: Option<&str>) -> String {
    let place = err
        .url()
        .and_then(|url| {
            Some(format!(
                "{}:{}",
                url.host_str()?,
                url.port_or_known_default()?
            ))
        })
        .unwrap_or_else(|| "the host".to_owned());
    let through = proxy
        .map(|proxy| format!(" through the proxy {proxy}"))
        .unwrap_or_default();
    format!("cannot connect to {place}{through}: {}", connect_cause(err))
}

/// The errors `err` is made of, outermost first.
fn causes(err: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut chain: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        chain.push(current);
        source = current.source();
    }
    chain
}

/// A refusal that sending again meets the same way: the other side's certificate refused
/// (rustls: an unknown issuer, another name, expired), or a proxy that wants credentials.
fn refused_for_good(err: &reqwest::Error) -> bool {
    causes(err).iter().any(|error| {
        let said = error.to_string();
        said.contains("invalid peer certificate")
            || said == "tunnel error: proxy authorization required"
    })
}

/// Why a connection failed, from the innermost error that says it.
fn connect_cause(err: &reqwest::Error) -> String {
    let chain = causes(err);
    let io_kind = chain
        .iter()
        .find_map(|error| error.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    let innermost = chain.last().map(ToString::to_string).unwrap_or_default();
    let innermost = match innermost.find(" (os error") {
        Some(at) => innermost[..at].to_owned(),
        None => innermost,
    };
    let said = |error: &&dyn std::error::Error| error.to_string().to_ascii_lowercase();
    let dns = chain.iter().any(|error| said(error).contains("dns error"));
    let tls = chain
        .iter()
        .any(|error| said(error).contains("certificate") || said(error).contains("tls"));
    // hyper-util's CONNECT tunnel: the proxy answered, but not 200.
    let tunnel = |words: &str| {
        chain
            .iter()
            .any(|error| said(error) == format!("tunnel error: {words}"))
    };
    match io_kind {
        _ if tunnel("proxy authorization required") => "the proxy asks for credentials (407): give them in the proxy URL, http://USER:PASSWORD@HOST:PORT".to_owned(),
        _ if tunnel("unsuccessful") => "the proxy refused the tunnel (its answer to CONNECT was not 200)".to_owned(),
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
        Some(std::io::ErrorKind::TimedOut) => "connection timed out".to_owned(),
        Some(std::io::ErrorKind::ConnectionReset) => "connection reset".to_owned(),
        _ if dns => format!(
            "cannot resolve the host name ({})",
            lowercase_first(&innermost)
        ),
        _ if tls => format!(
            "TLS handshake failed: {} (a private CA or a TLS-inspecting proxy? trust its certificate with --ca-cert FILE or SSL_CERT_FILE)",
            lowercase_first(&innermost)
        ),
        _ if innermost.is_empty() => "connection failed".to_owned(),
        _ => lowercase_first(&innermost),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_owned(),
    }
}

/// The error and its causes, without the URL (it may carry a presigned signature).
pub(super) fn transport_message(err: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(current) = source {
        // reqwest's own text names the URL; say what happened in words instead.
        let text = match current.downcast_ref::<reqwest::Error>() {
            Some(top) if top.is_connect() => "cannot connect".to_owned(),
            Some(top) if top.is_timeout() => "timed out".to_owned(),
            Some(top) if top.is_body() || top.is_decode() => "cannot read the answer".to_owned(),
            Some(_) => "request failed".to_owned(),
            None => current.to_string(),
        };
        if !text.is_empty() && parts.last() != Some(&text) {
            parts.push(text);
        }
        source = current.source();
    }
    parts.join(": ")
}

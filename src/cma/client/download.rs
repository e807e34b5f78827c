//! Artifact downloads: size-capped, written to a temporary file beside `dest` and renamed into
//! place when complete. The cloud credentials go only to the cloud API's origin; a redirect
//! (e.g. to a presigned URL on a storage host) is followed without them.
//!
//! A body up to [`IN_MEMORY_BYTES`] (every pre-migration report we have seen) is collected in
//! memory and put on disk by one blocking call — create the dir and the temp file, write,
//! rename — instead of a hop to tokio's blocking pool for each of those steps: a 10,000-site
//! run downloads 10,000 artifacts. A larger body spills to the temp file as it arrives.
//!
//! The file is not fsync'd here: a process crash cannot lose it (the page cache outlives the
//! process), and against a power cut the caller syncs once for many files before it records
//! any of them — the fleet run syncs the report dir's file system before it commits a site
//! report that names an artifact (`fleet::coordinator`); one fsync per artifact was the
//! largest single cost of a 10,000-site run.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue, LOCATION};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::answer::{redact, shown_location};
use super::attempt::{Failure, api_error, cancelled};
use super::cloud::CloudClient;
use super::unreached::transport_message;
use crate::cma::error::{ApiError, Endpoint, ErrorKind};
use crate::cma::surprise::SurpriseKind;
use crate::cma::wire::Artifact;

/// Redirects followed for one download (storage services redirect once, rarely twice).
const MAX_REDIRECTS: usize = 5;
const ENDPOINT: Endpoint = Endpoint::Artifact;
/// Bodies up to this size are written in one blocking call (module doc).
const IN_MEMORY_BYTES: usize = 1024 * 1024;

/// What one download attempt received.
enum Body {
    /// The whole body, not yet on disk.
    Memory(Vec<u8>),
    /// Spilled to the temp file, with its size.
    Spilled(tokio::fs::File, u64),
}

impl CloudClient {
    /// Downloads an artifact to `dest`; returns its size. Cloud credentials are sent only
    /// when the location is on the cloud API host.
    ///
    /// A relative location resolves against `--cloud-api-url`. The artifact's `expireAt`
    /// is the caller's business: an expired artifact simply fails to download. The file is
    /// created readable by its owner only (it may hold customer data), and its dir, when
    /// missing, with mode 0700. It is not fsync'd: the caller syncs before it records it.
    pub async fn download_artifact(
        &self,
        artifact: &Artifact,
        dest: &Path,
        cancel: &CancellationToken,
    ) -> Result<u64, ApiError> {
        let url = self.artifact_url(&artifact.location)?;
        let temp = temp_path(dest);
        let result = self
            .http
            .with_retries(ENDPOINT, None, cancel, || self.fetch(&url, &temp, cancel))
            .await;
        let result = match result {
            Ok(body) => save(body, &temp, dest)
                .await
                .map_err(|err| write_error(dest, &err)),
            Err(err) => Err(err),
        };
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result.map_err(|err| redact(err, &self.secrets))
    }

    fn artifact_url(&self, location: &str) -> Result<Url, ApiError> {
        let location = location.trim();
        let refuse = |message: String| api_error(ENDPOINT, None, ErrorKind::Decode, message);
        if location.is_empty() {
            return Err(refuse("the artifact has no location".to_owned()));
        }
        let url = self.api_url.join(location).map_err(|err| {
            refuse(format!(
                "the artifact location {} is not a URL: {err}",
                shown_location(location)
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse(format!(
                "the artifact location {} is neither http nor https",
                shown_location(location)
            )));
        }
        let loopback = url
            .host()
            .is_some_and(|host| crate::loopback::is_loopback_host(&host));
        if url.scheme() == "http" && !loopback {
            // Artifacts hold customer data: never over an unencrypted link off this machine.
            return Err(refuse(format!(
                "the artifact location {} is plain http on a host that is not loopback: refused (artifacts are fetched over https only)",
                shown_location(location)
            )));
        }
        Ok(url)
    }

    /// One attempt: follows redirects (credentials only on the API origin) and receives the
    /// body (spilling a large one to `temp`).
    async fn fetch(
        &self,
        url: &Url,
        temp: &Path,
        cancel: &CancellationToken,
    ) -> Result<Body, Failure> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let started = Instant::now();
            let mut request = self
                .http
                .pool_for(&url)
                .get(url.clone())
                .header(ACCEPT, HeaderValue::from_static("*/*"));
            if url.origin() == self.api_url.origin() {
                request = self.auth().apply(request);
            }
            let timeout = self.http.settings.request_timeout;
            let sent = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Failure::Final(cancelled(ENDPOINT))),
                sent = tokio::time::timeout(timeout, request.send()) => sent,
            };
            let response = match sent {
                Err(_) => {
                    self.report("timeout", started);
                    return Err(idle_timeout(timeout));
                }
                Ok(Err(err)) => {
                    let (code, failure) = self.http.send_failure(ENDPOINT, err);
                    self.report(code, started);
                    return Err(failure);
                }
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            if status.is_redirection() {
                self.report(status.as_str(), started);
                url = redirect_target(&url, &response)?;
                continue;
            }
            if !status.is_success() {
                let failure = self
                    .http
                    .classify_error_answer(ENDPOINT, response, timeout, &self.secrets)
                    .await;
                self.report(status.as_str(), started);
                return Err(failure);
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let result = self
                .receive(response, temp, cancel)
                .await
                .and_then(|body| self.is_a_file(body, &content_type));
            let code = match &result {
                Ok(_) => status.as_str(),
                Err(Failure::MaybeApplied { reason, .. }) => reason,
                Err(_) => status.as_str(),
            };
            self.report(code, started);
            return result;
        }
        let location = shown_location(url.as_str());
        let mut error = api_error(ENDPOINT, None, ErrorKind::Redirect { location }, "");
        error.message = format!("more than {MAX_REDIRECTS} redirects");
        Err(Failure::Final(error))
    }

    /// A body where a file was expected that is JSON or an HTML page (metadata, a login or
    /// error page) is not the artifact: refused with its first bytes (a surprise).
    fn is_a_file(&self, body: Body, content_type: &str) -> Result<Body, Failure> {
        let start: &[u8] = match &body {
            Body::Memory(bytes) => &bytes[..bytes.len().min(512)],
            Body::Spilled(..) => &[],
        };
        let Some(what) = not_a_file(content_type, start) else {
            return Ok(body);
        };
        let first = String::from_utf8_lossy(start);
        self.http.surprise(
            SurpriseKind::Artifact,
            what,
            &first,
            ENDPOINT,
            &self.secrets,
        );
        let message = format!(
            "the artifact location answered {what} instead of a file (not saved): {}",
            crate::cma::text::redact(&crate::cma::text::shorten(&first, 200), &self.secrets)
        );
        Err(Failure::Final(api_error(
            ENDPOINT,
            Some(200),
            ErrorKind::Decode,
            message,
        )))
    }

    fn report(&self, code: &str, started: Instant) {
        self.http
            .observer
            .on_response(ENDPOINT, code, started.elapsed());
    }

    /// Receives the body chunk by chunk, each within the request timeout, refusing more than
    /// `max_artifact_bytes`: in memory up to [`IN_MEMORY_BYTES`], else into `temp` (created
    /// or truncated, mode 0600).
    async fn receive(
        &self,
        mut response: reqwest::Response,
        temp: &Path,
        cancel: &CancellationToken,
    ) -> Result<Body, Failure> {
        let limit = self.http.settings.max_artifact_bytes;
        let too_large = || {
            let message = format!("the artifact is larger than the limit of {limit} bytes");
            Failure::Final(api_error(ENDPOINT, Some(200), ErrorKind::Decode, message))
        };
        let announced = response.content_length();
        if announced.is_some_and(|length| length > limit) {
            return Err(too_large());
        }
        let capacity = announced.map_or(0, |length| length.min(IN_MEMORY_BYTES as u64));
        let mut body = Body::Memory(Vec::with_capacity(capacity as usize));
        let write_failed = |err: io::Error| Failure::Final(write_error(temp, &err));
        let timeout = self.http.settings.request_timeout;
        loop {
            let chunk = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Failure::Final(cancelled(ENDPOINT))),
                chunk = tokio::time::timeout(timeout, response.chunk()) => chunk,
            };
            let chunk = match chunk {
                Err(_) => return Err(idle_timeout(timeout)),
                Ok(Err(err)) => {
                    let message =
                        format!("the download was cut short: {}", transport_message(&err));
                    let error = api_error(ENDPOINT, Some(200), ErrorKind::Decode, message);
                    let reason = "error";
                    return Err(Failure::MaybeApplied { error, reason });
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            let size = match &body {
                Body::Memory(buffer) => buffer.len() as u64,
                Body::Spilled(_, size) => *size,
            } + chunk.len() as u64;
            if size > limit {
                return Err(too_large());
            }
            body = match body {
                Body::Memory(mut buffer) if size <= IN_MEMORY_BYTES as u64 => {
                    buffer.extend_from_slice(&chunk);
                    Body::Memory(buffer)
                }
                Body::Memory(buffer) => {
                    let temp = temp.to_owned();
                    let file = tokio::task::spawn_blocking(move || create_temp(&temp))
                        .await
                        .map_err(io::Error::other)
                        .and_then(|created| created)
                        .map_err(write_failed)?;
                    let mut file = tokio::fs::File::from_std(file);
                    file.write_all(&buffer).await.map_err(write_failed)?;
                    file.write_all(&chunk).await.map_err(write_failed)?;
                    Body::Spilled(file, size)
                }
                Body::Spilled(mut file, _) => {
                    file.write_all(&chunk).await.map_err(write_failed)?;
                    Body::Spilled(file, size)
                }
            };
        }
        Ok(body)
    }
}

/// `JSON` or `an HTML page` when an answer is one of those, by its content type or, without
/// a telling one, by its first bytes; `None` for anything that may be a file.
fn not_a_file(content_type: &str, start: &[u8]) -> Option<&'static str> {
    if content_type.contains("json") {
        return Some("JSON");
    }
    if content_type.contains("html") {
        return Some("an HTML page");
    }
    let text = String::from_utf8_lossy(start);
    let text = text.trim_start().to_ascii_lowercase();
    if text.starts_with("<!doctype html") || text.starts_with("<html") {
        Some("an HTML page")
    } else if text.starts_with('{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(start).is_ok()
    {
        Some("JSON")
    } else {
        None
    }
}

/// Puts a received body in place at `dest` through `temp` (not fsync'd: module doc); returns
/// its size.
async fn save(body: Body, temp: &Path, dest: &Path) -> io::Result<u64> {
    match body {
        Body::Memory(bytes) => {
            let (temp, dest) = (temp.to_owned(), dest.to_owned());
            tokio::task::spawn_blocking(move || {
                let mut file = create_temp(&temp)?;
                file.write_all(&bytes)?;
                fs::rename(&temp, &dest)?;
                Ok(bytes.len() as u64)
            })
            .await
            .map_err(io::Error::other)?
        }
        Body::Spilled(mut file, size) => {
            file.flush().await?;
            drop(file);
            tokio::fs::rename(temp, dest).await?;
            Ok(size)
        }
    }
}

/// Creates (or truncates) `temp` readable by its owner only, creating its dir (0700:
/// artifacts may hold customer data) when it is missing. Blocking. Tried before looking: the
/// dir is almost always there (a fleet run saves every artifact in `artifacts/`).
fn create_temp(temp: &Path) -> io::Result<fs::File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(temp)
    };
    match open() {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = temp.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            }
            open()
        }
        opened => opened,
    }
}

fn redirect_target(from: &Url, response: &reqwest::Response) -> Result<Url, Failure> {
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|location| !location.is_empty());
    let refuse = |location: String, message: &str| {
        let mut error = api_error(
            ENDPOINT,
            Some(status.as_u16()),
            ErrorKind::Redirect { location },
            "",
        );
        error.message = message.to_owned();
        Failure::Final(error)
    };
    let Some(location) = location else {
        return Err(refuse(
            "(no Location header)".to_owned(),
            "a redirect without a Location",
        ));
    };
    match from.join(location) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        _ => Err(refuse(
            shown_location(location),
            "a redirect to something that is not an http(s) URL",
        )),
    }
}

fn idle_timeout(timeout: Duration) -> Failure {
    let message = format!(
        "no data for {} while downloading",
        humantime::format_duration(timeout)
    );
    Failure::MaybeApplied {
        error: api_error(ENDPOINT, None, ErrorKind::Timeout, message),
        reason: "timeout",
    }
}

fn write_error(path: &Path, err: &std::io::Error) -> ApiError {
    let message = format!("cannot write the artifact to {}: {err}", path.display());
    api_error(ENDPOINT, None, ErrorKind::Decode, message)
}

/// A hidden, unique file beside `dest`, so the rename is atomic.
fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "artifact".to_owned());
    let unique = uuid::Uuid::new_v4().simple();
    dest.with_file_name(format!(".{name}.{unique}.part"))
}

//! `cmafleet validate INVENTORY --online`: every row tried live before a night depends on
//! it, creating nothing — its cloud credentials accepted (an authenticated read of the
//! migration API that changes nothing), its server reached with the row's credentials and
//! the cloud site attached there (attach is idempotent, and the run's own first step: it
//! says when the credentials are refused, the Migration Assistant is missing or too old, or
//! the cloud site is not connected). One line per row, in inventory order, each with what is
//! wrong and how to fix it; reads paced by the rate limits like a run; no secret printed.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::cma::client::{HttpClient, NoopObserver, ServerCredentials};
use crate::cma::{ApiError, CloudClient, ErrorKind, ServerClient};
use crate::config::ConnectionSettings;
use crate::exit;
use crate::fleet::limits::RateLimits;
use crate::inventory::Site;
use crate::secret::Secret;

/// Rows tried at once (server attaches are not rate-limited; this keeps a big inventory
/// from opening hundreds of connections).
const IN_FLIGHT: usize = 16;
/// The job read that proves the cloud credentials: an id no job has, so the answer is 404
/// when the credentials are accepted and 401/403 when they are not; nothing is created.
const NO_SUCH_JOB: &str = "00000000-0000-0000-0000-000000000000";

/// What one row's live check found.
struct RowResult {
    line: usize,
    site: String,
    /// What was confirmed, or each problem with its fix.
    verdict: Result<String, Vec<String>>,
}

/// Tries every row live; prints one line per row and a summary on `out`; returns 0 when
/// every row passed, [`exit::ONLINE_CHECK_FAILED`] otherwise.
pub(super) async fn check(
    sites: &[Arc<Site>],
    cloud_tokens: HashMap<String, Secret>,
    servers: Vec<ServerCredentials>,
    settings: ConnectionSettings,
    cancel: &CancellationToken,
    out: &mut dyn Write,
) -> io::Result<u8> {
    let http = match HttpClient::new(settings.client.clone(), Arc::new(NoopObserver)) {
        Ok(http) => http,
        Err(error) => {
            writeln!(
                out,
                "online: cannot set up the HTTP client: {}",
                error.detail()
            )?;
            return Ok(exit::CONFIG);
        }
    };
    let limits = RateLimits::new(settings.rates.clone(), Arc::new(NoopObserver));
    // Each cloud user once: its rows share the answer.
    let users: Vec<(String, Secret)> = cloud_tokens.into_iter().collect();
    let cloud_checks = futures::stream::iter(users.into_iter().map(|(user, token)| {
        let client = CloudClient::new(
            http.clone(),
            &settings.cloud_api_url,
            &user,
            token,
            limits.for_user(&user),
        );
        async move {
            let verdict = cloud_verdict(client.get_job(NO_SUCH_JOB, cancel).await);
            (user, verdict)
        }
    }))
    .buffer_unordered(IN_FLIGHT)
    .collect::<HashMap<String, Result<(), String>>>()
    .await;
    let rows = futures::stream::iter(sites.iter().zip(servers).map(|(site, credentials)| {
        let server = ServerClient::new(http.clone(), &site.server_url, credentials);
        let cloud = cloud_checks
            .get(&site.cloud_user)
            .cloned()
            .unwrap_or_else(|| Err("its cloud token was not resolved".into()));
        async move {
            let attach = server.attach(&site.cloud_url_str(), cancel).await;
            RowResult {
                line: site.line,
                site: site.name.clone(),
                verdict: row_verdict(site, cloud, attach),
            }
        }
    }))
    .buffer_unordered(IN_FLIGHT)
    .collect::<Vec<RowResult>>()
    .await;
    let mut rows = rows;
    rows.sort_by_key(|row| row.line);
    let width = rows.iter().map(|row| row.site.len()).max().unwrap_or(0);
    let mut failed = 0;
    for row in &rows {
        match &row.verdict {
            Ok(confirmed) => writeln!(
                out,
                "line {:<4} {:<width$}  ok: {confirmed}",
                row.line, row.site
            )?,
            Err(problems) => {
                failed += 1;
                writeln!(
                    out,
                    "line {:<4} {:<width$}  FAILED: {}",
                    row.line,
                    row.site,
                    problems.join("; ")
                )?;
            }
        }
    }
    writeln!(
        out,
        "online: {} row(s) tried live, {} ok, {failed} failed; no job or task was created",
        rows.len(),
        rows.len() - failed
    )?;
    Ok(if failed == 0 {
        exit::OK
    } else {
        exit::ONLINE_CHECK_FAILED
    })
}

/// The cloud credentials' verdict from the read of a job that does not exist.
fn cloud_verdict(read: Result<crate::cma::wire::GetJobResponse, ApiError>) -> Result<(), String> {
    match read {
        Ok(_) => Ok(()),
        // The service read the request as this user: no such job (404), or — a service that
        // checks the id before looking it up — a 400 about the id. Either way, accepted.
        Err(error) if matches!(error.kind, ErrorKind::NotFound | ErrorKind::BadRequest) => Ok(()),
        Err(error) if error.kind == ErrorKind::Unauthorized => Err(format!(
            "the cloud API refused the credentials ({}): check cloud_user and its API token (cloud_token)",
            error
        )),
        Err(error) if error.kind == ErrorKind::Forbidden => Err(format!(
            "the cloud API refused this user ({error}): the user must be a site or org admin of the destination"
        )),
        Err(error) if error.kind == ErrorKind::Connect => Err(format!(
            "cannot reach the cloud API ({}): check --cloud-api-url, a proxy (HTTPS_PROXY) or the firewall",
            error.detail()
        )),
        Err(error) => Err(format!("the cloud API answered: {error}")),
    }
}

/// A row's verdict from its user's cloud check and its server's attach.
fn row_verdict(
    site: &Site,
    cloud: Result<(), String>,
    attach: Result<crate::cma::wire::AttachResponse, ApiError>,
) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    if let Err(problem) = cloud {
        problems.push(problem);
    }
    let attached = match attach {
        Ok(answer) => Some(
            answer
                .expiry_time
                .and_then(|time| time.instant())
                .map(|until| {
                    format!(
                        "attached to {} until {}",
                        site.cloud_url_str(),
                        until.format("%Y-%m-%d %H:%M UTC")
                    )
                })
                .unwrap_or_else(|| format!("attached to {}", site.cloud_url_str())),
        ),
        Err(error) => {
            problems.push(attach_problem(site, &error));
            None
        }
    };
    match (problems.is_empty(), attached) {
        (true, Some(attached)) => Ok(format!("cloud credentials accepted; {attached}")),
        _ => Err(problems),
    }
}

/// What a refused attach means for the row, and what to do.
fn attach_problem(site: &Site, error: &ApiError) -> String {
    let server = site.server_url_str();
    match error.kind {
        ErrorKind::NotConnected => format!(
            "the cloud site is not connected to the server ({}): connect it in the Migration Assistant, or run with --connect",
            error.message
        ),
        ErrorKind::Unauthorized | ErrorKind::Forbidden => format!(
            "the server refused the credentials ({error}): check server_auth (a personal access token of an admin, or basic:USER: and the password)"
        ),
        ErrorKind::NotFound => format!(
            "no migration API at {server}/rest/migration/latest ({error}): install or update the Cloud Migration Assistant (JCMA 1.11.4+, CCMA 3.9.6+), or check server_url"
        ),
        ErrorKind::Connect => format!(
            "cannot reach the server ({}): check server_url and the network path",
            error.detail()
        ),
        _ => format!("the server's attach failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cma::Endpoint;

    fn error(kind: ErrorKind, status: Option<u16>, message: &str) -> ApiError {
        ApiError {
            endpoint: Endpoint::GetJob,
            status,
            kind,
            request_id: None,
            message: message.to_owned(),
        }
    }

    #[test]
    fn the_cloud_read_of_no_job_tells_credentials_apart() {
        assert_eq!(
            cloud_verdict(Err(error(ErrorKind::NotFound, Some(404), "no"))),
            Ok(())
        );
        assert_eq!(
            cloud_verdict(Err(error(ErrorKind::BadRequest, Some(400), "invalid id"))),
            Ok(()),
            "a service that checks the id first still read it as this user"
        );
        let refused =
            cloud_verdict(Err(error(ErrorKind::Unauthorized, Some(401), "bad"))).unwrap_err();
        assert!(refused.contains("refused the credentials") && refused.contains("cloud_token"));
        let forbidden =
            cloud_verdict(Err(error(ErrorKind::Forbidden, Some(403), "no"))).unwrap_err();
        assert!(forbidden.contains("admin"), "{forbidden}");
    }
}

//! The networks consultancies work in: a private CA (a Server/DC instance, or a
//! TLS-inspecting proxy, whose certificate chains to the customer's own CA) and an HTTP(S)
//! proxy. The real binary runs a check against the simulator behind a TLS front whose CA
//! nothing trusts, or through a recording forward proxy, all on loopback; tests assert on the
//! exit code, `summary.csv`, and what the front, the proxy and the simulator saw.

use std::ffi::OsStr;

use axum::http::StatusCode;

use crate::fleet::FAST;
use crate::support::fleet::{
    CLOUD_TOKEN, Fleet, Row, RunOutput, SERVER_PASSWORD, SERVER_PAT, with_flag,
};
use crate::support::forward_proxy::{ForwardProxy, ProxyRecords};
use crate::support::tls_front::TlsFront;

/// What the environment may say about proxies and trusted certificates: removed from every
/// run here, so that a developer's own settings never decide a test.
const NETWORK_VARIABLES: [&str; 13] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    // Set under CGI, where HTTP_PROXY is ignored (it could come from a request header).
    "REQUEST_METHOD",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CMAFLEET_CA_CERT",
    "CMAFLEET_HTTP2_PRIOR_KNOWLEDGE",
];

/// One Jira site whose cloud API and server are both behind `front` (https, a CA nothing
/// trusts); the inventory's `cloud_url` stays `https://acme.atlassian.net`.
async fn behind_front() -> (Fleet, TlsFront) {
    let fleet = Fleet::start("", FAST, vec![Row::jira("acme")]).await;
    let front = TlsFront::start(fleet.sim.addr).await;
    let inventory = std::fs::read_to_string(&fleet.inventory).unwrap();
    let servers = format!("{}/servers/", fleet.sim.base_url());
    assert!(inventory.contains(&servers), "{inventory}");
    let inventory = inventory.replace(&servers, &format!("{}/servers/", front.url()));
    std::fs::write(&fleet.inventory, inventory).unwrap();
    (fleet, front)
}

/// `run --mode check` against the front's cloud API, in an environment with no proxy and no
/// certificate setting of its own; the test adds those it is about.
fn check_through(fleet: &Fleet, front: &TlsFront, report: &str) -> tokio::process::Command {
    let command = with_flag(
        &fleet.command("check", report),
        "--cloud-api-url",
        OsStr::new(&front.url()),
    );
    bare(command)
}

fn bare(mut command: tokio::process::Command) -> tokio::process::Command {
    for variable in NETWORK_VARIABLES {
        command.env_remove(variable);
    }
    command
}

/// The site's outcome and message in `summary.csv`.
fn outcome(fleet: &Fleet, report: &str) -> (String, String) {
    let summary = fleet.summary(report);
    let row = &summary["acme"];
    (row["outcome"].clone(), row["message"].clone())
}

fn assert_succeeded(fleet: &Fleet, report: &str, output: &RunOutput) {
    assert_eq!(output.code, 0, "{}", output.stderr);
    let (outcome, message) = outcome(fleet, report);
    assert_eq!(outcome, "succeeded", "{message}");
}

/// The secrets of the fleet, and the Base64 forms they take in `Authorization` headers.
fn secrets() -> Vec<String> {
    use base64::Engine as _;
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    vec![
        CLOUD_TOKEN.to_owned(),
        SERVER_PAT.to_owned(),
        SERVER_PASSWORD.to_owned(),
        encode(&format!("alice@example.com:{CLOUD_TOKEN}")),
    ]
}

/// Nothing the proxy recorded — CONNECT heads, request lines, tunnelled bytes — holds a
/// secret.
fn assert_no_secret(records: &ProxyRecords) {
    let tunnelled = String::from_utf8_lossy(&records.tunnelled);
    for secret in secrets() {
        for head in &records.connects {
            assert!(
                !head.contains(&secret),
                "a CONNECT carried a secret: {head}"
            );
        }
        for line in &records.requests {
            assert!(
                !line.contains(&secret),
                "a request line carried a secret: {line}"
            );
        }
        assert!(
            !tunnelled.contains(&secret),
            "a secret crossed the tunnel in clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_fails_the_site_with_a_hint_to_ca_cert() {
    let (fleet, front) = behind_front().await;
    let output = Fleet::output(check_through(&fleet, &front, "untrusted")).await;

    assert_eq!(output.code, 1, "{}", output.stderr);
    let (outcome, message) = outcome(&fleet, "untrusted");
    assert_eq!(outcome, "failed", "{message}");
    let place = format!("cannot connect to {}", front.authority());
    for said in [&message, &output.stderr] {
        assert!(said.contains(&place), "names the place: {said}");
        assert!(said.contains("TLS handshake failed"), "says TLS: {said}");
        assert!(said.contains("--ca-cert"), "names the fix: {said}");
    }
    assert!(
        !output.stderr.contains("(retrying)"),
        "the same certificate would come back: {}",
        output.stderr
    );
    let handshakes = front.handshakes();
    assert_eq!(handshakes.len(), 1, "one attempt: {handshakes:?}");
    assert!(handshakes[0].is_err(), "{handshakes:?}");
    assert_eq!(
        fleet.counters().await.total,
        0,
        "nothing reached the simulator"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_cert_trusts_a_private_ca() {
    let (fleet, front) = behind_front().await;
    let mut command = check_through(&fleet, &front, "trusted");
    command.arg("--ca-cert").arg(front.ca_file());
    let output = Fleet::output(command).await;

    assert_succeeded(&fleet, "trusted", &output);
    let handshakes = front.handshakes();
    assert!(
        handshakes
            .iter()
            .all(|handshake| handshake.as_deref() == Ok("h2")),
        "every connection HTTP/2, negotiated: {handshakes:?}"
    );
    let counters = fleet.counters().await;
    assert_eq!(Fleet::jobs_of(&counters, &fleet.rows[0]), 1);
    assert_eq!(
        counters.by_server["acme"].attaches, 1,
        "the server side too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_cert_file_trusts_a_private_ca() {
    let (fleet, front) = behind_front().await;
    let mut command = check_through(&fleet, &front, "ssl-cert-file");
    command.env("SSL_CERT_FILE", front.ca_file());
    let output = Fleet::output(command).await;

    assert_succeeded(&fleet, "ssl-cert-file", &output);
    let counters = fleet.counters().await;
    assert_eq!(Fleet::jobs_of(&counters, &fleet.rows[0]), 1);
    assert_eq!(counters.by_server["acme"].attaches, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_tunnels_every_request_with_connect() {
    let (fleet, front) = behind_front().await;
    let proxy = ForwardProxy::start().await;
    let mut command = check_through(&fleet, &front, "proxied");
    command
        .arg("--ca-cert")
        .arg(front.ca_file())
        .env("HTTPS_PROXY", proxy.url());
    let output = Fleet::output(command).await;

    assert_succeeded(&fleet, "proxied", &output);
    let records = proxy.records();
    let targets = records.connect_targets();
    assert!(!targets.is_empty(), "the run went through the proxy");
    assert!(
        targets.iter().all(|target| *target == front.authority()),
        "every tunnel to the front: {targets:?}"
    );
    assert!(records.requests.is_empty(), "{:?}", records.requests);
    assert!(!records.tunnelled.is_empty());
    assert_no_secret(&records);
    assert_eq!(Fleet::jobs_of(&fleet.counters().await, &fleet.rows[0]), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_goes_around_the_proxy() {
    let (fleet, front) = behind_front().await;
    let proxy = ForwardProxy::start().await;
    let mut command = check_through(&fleet, &front, "direct");
    command
        .arg("--ca-cert")
        .arg(front.ca_file())
        .env("HTTPS_PROXY", proxy.url())
        .env("HTTP_PROXY", proxy.url())
        .env("NO_PROXY", "127.0.0.1");
    let output = Fleet::output(command).await;

    assert_succeeded(&fleet, "direct", &output);
    let records = proxy.records();
    assert!(records.connects.is_empty(), "{:?}", records.connects);
    assert!(records.requests.is_empty(), "{:?}", records.requests);
    assert!(front.handshakes().iter().any(Result::is_ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_forwards_plain_http_in_absolute_form() {
    // The simulator as it is: plain http on loopback, cloud API and servers alike.
    let fleet = Fleet::start("", FAST, vec![Row::jira("acme")]).await;
    let proxy = ForwardProxy::start().await;
    let mut command = bare(fleet.command("check", "plain"));
    command.env("HTTP_PROXY", proxy.url());
    let output = Fleet::output(command).await;

    assert_succeeded(&fleet, "plain", &output);
    let records = proxy.records();
    assert!(records.connects.is_empty(), "{:?}", records.connects);
    let base = fleet.sim.base_url();
    let create = format!("POST {base}/migrations/public/v1/jobs HTTP/1.1");
    assert!(
        records.requests.contains(&create),
        "the cloud API through the proxy: {:#?}",
        records.requests
    );
    let attach = format!("POST {base}/servers/acme/rest/migration/latest/public/v1/attach");
    assert!(
        records
            .requests
            .iter()
            .any(|line| line.starts_with(&attach)),
        "the server through the proxy: {:#?}",
        records.requests
    );
    assert_no_secret(&records);
    assert_eq!(Fleet::jobs_of(&fleet.counters().await, &fleet.rows[0]), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_cert_that_is_not_pem_is_a_configuration_error() {
    let (fleet, front) = behind_front().await;
    let bogus = front.dir().join("not-a-ca.pem");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    let mut command = check_through(&fleet, &front, "bogus");
    command.arg("--ca-cert").arg(&bogus);
    let output = Fleet::output(command).await;

    assert_eq!(output.code, 78, "{}", output.stderr);
    assert!(output.stderr.contains("--ca-cert"), "{}", output.stderr);
    assert!(
        output.stderr.contains("no PEM certificate"),
        "{}",
        output.stderr
    );
    assert!(front.handshakes().is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_out_of_reach_is_named_in_the_failure() {
    let (fleet, front) = behind_front().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = closed.local_addr().unwrap();
    drop(closed);
    let mut command = check_through(&fleet, &front, "proxy-down");
    command
        .arg("--ca-cert")
        .arg(front.ca_file())
        .env("HTTPS_PROXY", format!("http://{proxy}"));
    let output = Fleet::output(command).await;

    assert_eq!(output.code, 1, "{}", output.stderr);
    let (outcome, message) = outcome(&fleet, "proxy-down");
    assert_eq!(outcome, "failed", "{message}");
    let expected = format!(
        "cannot connect to {} through the proxy {proxy}: connection refused",
        front.authority()
    );
    assert!(message.contains(&expected), "{message}");
    assert!(
        front.handshakes().is_empty(),
        "nothing went around the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_wants_credentials_says_where_they_go() {
    let (fleet, front) = behind_front().await;
    let proxy = ForwardProxy::refusing(StatusCode::PROXY_AUTHENTICATION_REQUIRED).await;
    let mut command = check_through(&fleet, &front, "proxy-407");
    command
        .arg("--ca-cert")
        .arg(front.ca_file())
        .env("HTTPS_PROXY", proxy.url());
    let output = Fleet::output(command).await;

    assert_eq!(output.code, 1, "{}", output.stderr);
    let (outcome, message) = outcome(&fleet, "proxy-407");
    assert_eq!(outcome, "failed", "{message}");
    let proxy_place = proxy.url().trim_start_matches("http://").to_owned();
    for said in [
        &format!("through the proxy {proxy_place}"),
        "(407)",
        "USER:PASSWORD@",
    ] {
        assert!(message.contains(said), "{said}: {message}");
    }
    let records = proxy.records();
    assert_eq!(
        records.connect_targets(),
        [front.authority()],
        "asked once: the answer would not change"
    );
    assert_no_secret(&records);
    assert!(front.handshakes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_cert_file_that_holds_no_certificate_is_a_configuration_error() {
    let (fleet, front) = behind_front().await;
    let missing = front.dir().join("no-such-bundle.pem");
    let mut command = check_through(&fleet, &front, "no-roots");
    command.env("SSL_CERT_FILE", &missing);
    let output = Fleet::output(command).await;

    assert_eq!(output.code, 78, "{}", output.stderr);
    let named = format!("SSL_CERT_FILE={}", missing.display());
    for said in [
        named.as_str(),
        "No CA certificates",
        "replaces the system's",
    ] {
        assert!(output.stderr.contains(said), "{said}: {}", output.stderr);
    }
    assert!(!fleet.report_dir("no-roots").join("summary.csv").exists());
    assert!(front.handshakes().is_empty(), "nothing was sent");
}

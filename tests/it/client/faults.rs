//! Faults: classified errors, bounded retries of reads, creates never re-sent once they may
//! have arrived, bad answers that never panic.

use std::time::Duration;

use cmafleet::cma::client::{ServerClient, ServerCredentials};
use cmafleet::cma::wire::CreateTaskRequest;
use cmafleet::cma::{Endpoint, ErrorKind};
use cmafleet::secret::Secret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::stub::{self, Fault, RawServer, Recorded, Stub, json, respond, text, with_header};
use super::{TOKEN, cloud};

const JOB: &str = r#"{"name":"n","flow":"jira-onpremises-to-cloud"}"#;

#[tokio::test]
async fn auth_and_request_errors_are_classified_and_not_retried() {
    let stub = Stub::start(|r: &Recorded| match r.path.rsplit('/').next().unwrap() {
        "unauthorized" => with_header(
            json(
                401,
                &format!(r#"{{"status":401,"errorMessage":"Bad token {TOKEN}","id":"err-id-1"}}"#),
            ),
            "x-request-id",
            "req-401",
        ),
        "forbidden" => text(403, "  You are not an admin of this site.\n"),
        "missing" => json(404, r#"{"message":"Job not found","id":77}"#),
        _ => json(400, r#"{"error":{"code":"INVALID"}}"#),
    })
    .await;
    let (http, events) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let cancel = CancellationToken::new();

    let err = client.get_job("unauthorized", &cancel).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(err.status, Some(401));
    assert_eq!(err.request_id.as_deref(), Some("req-401"));
    assert!(!err.is_retryable());
    let shown = err.to_string();
    assert!(shown.contains("Bad token ***"), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");

    let err = client.get_job("forbidden", &cancel).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden);
    assert_eq!(err.message, "You are not an admin of this site.");

    let err = client.get_job("missing", &cancel).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.message, "Job not found");
    assert_eq!(err.request_id.as_deref(), Some("77"));

    let err = client
        .create_task("bad", &CreateTaskRequest::check(), &cancel)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    // No message field the client knows: the body itself is shown, and it is a surprise.
    assert_eq!(err.message, r#"{"error":{"code":"INVALID"}}"#);
    assert_eq!(
        *events.surprises.lock().unwrap(),
        [cmafleet::cma::SurpriseKind::ErrorEnvelope]
    );

    assert_eq!(stub.count(), 4);
    assert!(events.retries.lock().unwrap().is_empty());
    assert_eq!(events.codes(), ["401", "403", "404", "400"]);
}

#[tokio::test]
async fn a_5xx_on_a_read_is_retried_then_succeeds() {
    let stub = Stub::start(|r: &Recorded| match r.nth {
        0 => text(503, "Service Unavailable"),
        1 => respond(502, "text/html", "<html><title>Bad Gateway</title></html>"),
        _ => json(200, JOB),
    })
    .await;
    let (http, events) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let job = client
        .get_job("j", &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(job.definition.name, "n");
    assert_eq!(stub.count(), 3);
    assert_eq!(events.codes(), ["503", "502", "200"]);
    assert_eq!(events.retry_reasons(), ["5xx", "5xx"]);
}

#[tokio::test]
async fn a_5xx_that_persists_on_a_read_ends_as_a_server_error_after_the_policy() {
    let stub = Stub::start(|_| {
        with_header(
            json(500, r#"{"errorMessage":"boom"}"#),
            "atl-traceid",
            "trace-9",
        )
    })
    .await;
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let err = client
        .list_tasks("j", &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Server);
    assert_eq!(err.request_id.as_deref(), Some("trace-9"));
    assert!(err.is_retryable());
    assert_eq!(stub.count(), 3, "max_attempts is 3");
}

#[tokio::test]
async fn a_5xx_on_create_task_is_outcome_unknown_and_sent_once() {
    let stub = Stub::start(|_| text(504, "Gateway Timeout")).await;
    let (http, events) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let err = client
        .create_task("j", &CreateTaskRequest::check(), &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutcomeUnknown);
    assert!(err.is_outcome_unknown());
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("outcome unknown"), "{err}");
    assert_eq!(err.status, Some(504));
    assert_eq!(stub.count(), 1);
    assert!(events.retries.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_timeout_on_create_task_is_outcome_unknown_and_sent_once() {
    let server = RawServer::start(Fault::Silence).await;
    let mut settings = stub::settings();
    settings.request_timeout = Duration::from_millis(300);
    let (http, events) = stub::http(settings);
    let client = cloud(&http, &server.url, None);
    let err = client
        .create_task("j", &CreateTaskRequest::check(), &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutcomeUnknown, "{err}");
    assert!(err.to_string().contains("outcome unknown"), "{err}");
    assert_eq!(server.requests(), 1);
    assert_eq!(events.codes(), ["timeout"]);
}

#[tokio::test]
async fn a_dropped_connection_on_create_task_is_outcome_unknown_and_sent_once() {
    let server = RawServer::start(Fault::Drop).await;
    let (http, events) = stub::http(stub::settings());
    let client = cloud(&http, &server.url, None);
    let err = client
        .create_task("j", &CreateTaskRequest::check(), &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutcomeUnknown, "{err}");
    assert_eq!(server.requests(), 1);
    assert_eq!(events.codes(), ["error"]);
}

#[tokio::test]
async fn a_create_answered_with_an_unreadable_body_is_outcome_unknown() {
    let stub = Stub::start(|r: &Recorded| match r.path.as_str() {
        "/migrations/public/v1/jobs" => json(200, r#"{"jobId": "#),
        _ => respond(200, "text/html", "<html><body>Log in</body></html>"),
    })
    .await;
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let cancel = CancellationToken::new();
    let definition = serde_json::from_str(JOB).unwrap();
    let err = client.create_job(&definition, &cancel).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutcomeUnknown, "{err}");
    let err = client
        .create_task("j", &CreateTaskRequest::check(), &cancel)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutcomeUnknown, "{err}");
    assert!(err.message.contains("text/html"), "{err}");
    assert_eq!(stub.count(), 2);
}

#[tokio::test]
async fn a_refused_connection_on_a_create_is_retried_until_the_service_is_up() {
    // A port nobody listens on yet: the first attempts are refused.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut settings = stub::settings();
    settings.retry.max_attempts = 8;
    settings.retry.base_delay = Duration::from_millis(100);
    settings.retry.max_delay = Duration::from_millis(400);
    let (http, events) = stub::http(settings);
    let api = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let client = cloud(&http, &api, None);
    let call = tokio::spawn(async move {
        client
            .create_task("j", &CreateTaskRequest::check(), &CancellationToken::new())
            .await
    });
    // Come up after the first refusal (the retries wait at least 50+100+200+… ms).
    let stub = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if events.codes().contains(&"connect".to_owned()) {
            let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
            break Stub::serve(listener, |_| json(200, r#"{"taskId":"t-1"}"#));
        }
    };
    let created = call.await.unwrap().unwrap();
    assert_eq!(created.task_id, "t-1");
    assert_eq!(stub.count(), 1);
    assert!(events.retry_reasons().iter().all(|r| *r == "connect"));
    assert!(!events.retry_reasons().is_empty());
}

#[tokio::test]
async fn a_refused_connection_that_lasts_is_a_connect_error() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let (http, events) = stub::http(stub::settings());
    let api = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let client = cloud(&http, &api, None);
    let err = client
        .create_job(
            &serde_json::from_str(JOB).unwrap(),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connect, "{err}");
    assert!(err.is_retryable());
    assert_eq!(events.codes(), ["connect", "connect", "connect"]);
}

#[tokio::test]
async fn a_read_that_times_out_is_retried_then_classified() {
    let server = RawServer::start(Fault::Silence).await;
    let mut settings = stub::settings();
    settings.request_timeout = Duration::from_millis(300);
    settings.retry.max_attempts = 2;
    let (http, events) = stub::http(settings);
    let client = cloud(&http, &server.url, None);
    let started = std::time::Instant::now();
    let err = client
        .get_job("j", &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());
    assert_eq!(server.requests(), 2);
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(events.retry_reasons(), ["timeout"]);
}

#[tokio::test]
async fn a_cut_body_is_retried_then_a_decode_error() {
    let server = RawServer::start(Fault::CutBody).await;
    let (http, events) = stub::http(stub::settings());
    let client = cloud(&http, &server.url, None);
    let err = client
        .get_job("j", &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Decode, "{err}");
    assert!(err.message.contains("cut short"), "{err}");
    assert_eq!(server.requests(), 3);
    assert_eq!(events.codes(), ["error", "error", "error"]);
}

#[tokio::test]
async fn malformed_html_empty_and_oversized_answers_are_decode_errors() {
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(100 * 1024));
    let stub = Stub::start(
        move |r: &Recorded| match r.path.rsplit('/').next().unwrap() {
            "malformed" => json(200, r#"{"name": "n", "flow": }"#),
            "html" => respond(
                200,
                "text/html",
                "<!DOCTYPE html><html><title>Login</title></html>",
            ),
            "empty" => json(200, ""),
            "shape" => json(200, r#"["a", "list"]"#),
            "big" => json(200, &big),
            _ => {
                // The same size, streamed without a Content-Length.
                let chunks = (0..100).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
                let body = axum::body::Body::from_stream(futures::stream::iter(chunks));
                axum::response::Response::new(body)
            }
        },
    )
    .await;
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let cancel = CancellationToken::new();
    for (job, needle) in [
        ("malformed", "not valid JSON"),
        ("html", "text/html"),
        ("empty", "empty"),
        ("shape", "expected shape"),
        ("big", "larger than the limit"),
        ("streamed", "larger than the limit"),
    ] {
        let err = client.get_job(job, &cancel).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Decode, "{job}: {err}");
        assert!(err.message.contains(needle), "{job}: {err}");
        assert!(!err.is_retryable());
    }
    // An answer that is not JSON at all may be a passing garble (a proxy's page, a cut
    // body): a read is asked again, up to the policy's 3 attempts. JSON of another shape,
    // or too large, is not asked again.
    let asked = |job: &str| {
        stub.requests()
            .iter()
            .filter(|r| r.path.ends_with(&format!("/{job}")))
            .count()
    };
    for job in ["malformed", "html", "empty"] {
        assert_eq!(asked(job), 3, "{job}");
    }
    for job in ["shape", "big", "streamed"] {
        assert_eq!(asked(job), 1, "{job}");
    }
}

#[tokio::test]
async fn an_in_flight_read_is_abandoned_on_cancellation() {
    let server = RawServer::start(Fault::Silence).await;
    let mut settings = stub::settings();
    settings.request_timeout = Duration::from_secs(60);
    let (http, _) = stub::http(settings);
    let client = cloud(&http, &server.url, None);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let err = tokio::time::timeout(Duration::from_secs(10), client.get_job("j", &cancel))
        .await
        .expect("cancellation ends the request long before its timeout")
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
    assert_eq!(err.to_string(), "GET /jobs/{jobId}: cancelled");
    // Nothing is sent once cancelled.
    let before = server.requests();
    let err = client.get_job("j", &cancel).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
    assert_eq!(server.requests(), before);
}

fn server_client(stub: &Stub, http: &cmafleet::cma::client::HttpClient) -> ServerClient {
    ServerClient::new(
        http.clone(),
        &stub.url.join("servers/s1").unwrap(),
        ServerCredentials::Bearer(Secret::new("pat-secret")),
    )
}

#[tokio::test]
async fn attach_to_an_unconnected_site_is_not_connected_and_final() {
    for (status, body) in [
        (
            400,
            "The destination cloud site is not authorized with the server. Reconnect it.",
        ),
        (500, "Cloud site NOT CONNECTED"),
    ] {
        let stub = Stub::start(move |_| text(status, body)).await;
        let (http, _) = stub::http(stub::settings());
        let err = server_client(&stub, &http)
            .attach("https://acme.atlassian.net", &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotConnected, "{status}: {err}");
        assert_eq!(err.endpoint, Endpoint::Attach);
        assert!(!err.is_retryable());
        assert_eq!(stub.count(), 1, "{status}");
    }
}

#[tokio::test]
async fn attach_retries_a_5xx_and_save_token_failure_is_final() {
    let stub = Stub::start(|r: &Recorded| {
        if r.path.ends_with("/attach") {
            match r.nth {
                0 => text(503, "try later"),
                _ => json(
                    200,
                    r#"{"cloudUrl":"https://acme.atlassian.net","expiryTime":"soon"}"#,
                ),
            }
        } else {
            text(500, "Exception in saving token.")
        }
    })
    .await;
    let (http, _) = stub::http(stub::settings());
    let client = server_client(&stub, &http);
    let cancel = CancellationToken::new();
    let attached = client
        .attach("https://acme.atlassian.net", &cancel)
        .await
        .unwrap();
    assert!(attached.expiry_time.unwrap().instant().is_none());
    let err = client
        .save_token(
            "https://acme.atlassian.net",
            &Secret::new("tok-abc-123"),
            &cancel,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert_eq!(err.message, "Exception in saving token.");
    assert!(!err.is_retryable());
    assert_eq!(stub.count(), 3);
}

/// A TCP relay to `target` that can go silent: after [`Blackhole::swallow`], the
/// connections open at that moment stay open but carry nothing more either way (a NAT that
/// forgot them, a peer that died without a word); new connections relay normally.
struct Blackhole {
    url: url::Url,
    generation: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Blackhole {
    async fn start(target: std::net::SocketAddr) -> Blackhole {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (current, count) = (generation.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let born = current.load(Ordering::SeqCst);
                let server = tokio::net::TcpStream::connect(target).await.unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                for (mut from, mut to) in [(client_read, server_write), (server_read, client_write)]
                {
                    let current = current.clone();
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buffer = vec![0; 16 * 1024];
                        while let Ok(read) = from.read(&mut buffer).await {
                            if read == 0 {
                                break;
                            }
                            // Swallowed once the connection's generation has passed.
                            if current.load(Ordering::SeqCst) == born
                                && to.write_all(&buffer[..read]).await.is_err()
                            {
                                break;
                            }
                        }
                    });
                }
            }
        });
        Blackhole {
            url,
            generation,
            accepted,
        }
    }

    fn swallow(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn an_http2_connection_gone_silent_is_replaced_not_retried_on() {
    // The cloud API over HTTP/2 (one connection for every request) through a relay that goes
    // silent. Unanswered pings give the connection up; the read in flight fails and its
    // retry opens a new one. (Without them every retry would wait on the dead connection
    // until the request timeout, and the read would fail.)
    let stub = Stub::start(|_| json(200, JOB)).await;
    let target = format!(
        "{}:{}",
        stub.url.host_str().unwrap(),
        stub.url.port().unwrap()
    );
    let relay = Blackhole::start(target.parse().unwrap()).await;
    let mut settings = stub::settings().with_h2c_api(&relay.url);
    settings.request_timeout = Duration::from_secs(10);
    settings.h2_ping = Duration::from_millis(200);
    let (http, events) = stub::http(settings);
    let client = cloud(&http, &relay.url, None);
    let cancel = CancellationToken::new();
    client.get_job("j", &cancel).await.unwrap();
    assert_eq!(relay.connections(), 1);

    relay.swallow();
    let started = std::time::Instant::now();
    let job = client.get_job("j", &cancel).await.unwrap();
    assert_eq!(job.definition.name, "n");
    assert_eq!(
        relay.connections(),
        2,
        "a new connection replaced the silent one"
    );
    assert_eq!(stub.count(), 2, "the stub saw the first read and the retry");
    // The attempt on the silent connection ended when a ping went unanswered (reported as a
    // timeout), long before the request's own 10 s deadline.
    assert_eq!(events.codes(), ["200", "timeout", "200"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the silent connection was held until the request timeout"
    );
}

//! Credentials go only to their own origin: a redirect is refused and its target never hears
//! from us; artifacts get the cloud credentials only on the cloud API's origin.

use cmafleet::cma::ErrorKind;
use cmafleet::cma::client::{ServerClient, ServerCredentials};
use cmafleet::cma::wire::{Artifact, CreateTaskRequest};
use cmafleet::secret::Secret;
use tokio_util::sync::CancellationToken;

use super::stub::{self, Recorded, Stub, json, respond, text, with_header};
use super::{EMAIL, TOKEN, basic, cloud};

fn redirect_to(location: &str) -> axum::response::Response {
    with_header(text(302, ""), "location", location)
}

#[tokio::test]
async fn a_redirect_is_refused_and_its_target_never_receives_anything() {
    let target = Stub::start(|_| json(200, r#"{"taskId":"stolen"}"#)).await;
    let location = target.at("/collect?sig=SECRETSIG");
    let stub = Stub::start(move |_| redirect_to(&location)).await;
    let (http, events) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let cancel = CancellationToken::new();

    let err = client.get_job("j", &cancel).await.unwrap_err();
    let ErrorKind::Redirect { location } = &err.kind else {
        panic!("not a redirect error: {err:?}");
    };
    assert_eq!(location, &target.at("/collect"));
    assert_eq!(err.status, Some(302));
    assert!(!err.is_retryable());
    let shown = err.to_string();
    assert!(shown.contains(&target.at("/collect")), "{shown}");
    assert!(!shown.contains("SECRETSIG"), "{shown}");

    let err = client
        .create_task("j", &CreateTaskRequest::check(), &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Redirect { .. }), "{err:?}");

    let server = ServerClient::new(
        http.clone(),
        &stub.url.join("servers/s1").unwrap(),
        ServerCredentials::Bearer(Secret::new("pat-secret")),
    );
    let err = server
        .attach("https://acme.atlassian.net", &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Redirect { .. }), "{err:?}");

    assert_eq!(target.count(), 0, "the redirect target was contacted");
    assert_eq!(stub.count(), 3);
    assert_eq!(events.codes(), ["302", "302", "302"]);
}

fn artifact(location: &str) -> Artifact {
    Artifact {
        name: "report".to_owned(),
        location: location.to_owned(),
        expire_at: None,
    }
}

fn files(request: &Recorded) -> axum::response::Response {
    match request.path.as_str() {
        "/files/report.csv" => respond(200, "text/csv", "check,outcome\nAnonPermission,WARNING\n"),
        "/files/moved" => redirect_to("OTHER/presigned/report.csv?X-Amz-Signature=abc"),
        "/files/huge" => respond(200, "application/octet-stream", &"x".repeat(100 * 1024)),
        "/files/large.csv" => respond(200, "text/csv", &large_artifact()),
        "/files/flaky" if request.nth == 0 => text(503, "busy"),
        "/files/flaky" => respond(200, "text/plain", "second time lucky"),
        "/files/gone" => respond(
            403,
            "application/xml",
            "<Error><Code>AccessDenied</Code></Error>",
        ),
        _ => text(404, "no such file"),
    }
}

/// Larger than what a download keeps in memory (1 MiB): written to disk as it arrives.
fn large_artifact() -> String {
    (0..60_000)
        .map(|n| format!("check-{n},SUCCESS,{n}\n"))
        .collect()
}

#[tokio::test]
async fn a_large_artifact_is_saved_whole_in_a_private_dir_it_creates() {
    let api = Stub::start(files).await;
    let mut settings = stub::settings();
    settings.max_artifact_bytes = 8 * 1024 * 1024;
    let (http, _) = stub::http(settings);
    let client = cloud(&http, &api.url, None);
    let dir = tempfile::tempdir().unwrap();
    let site_dir = dir.path().join("artifacts").join("acme-jira");
    let dest = site_dir.join("large.csv");

    let size = client
        .download_artifact(
            &artifact("/files/large.csv"),
            &dest,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let expected = large_artifact();
    assert!(expected.len() > 1024 * 1024);
    assert_eq!(size, expected.len() as u64);
    assert!(std::fs::read_to_string(&dest).unwrap() == expected);
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dest), 0o600);
    assert_eq!(mode(&site_dir), 0o700);
    let names: Vec<_> = std::fs::read_dir(&site_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["large.csv"], "no temp file is left beside it");
}

#[tokio::test]
async fn artifacts_get_credentials_only_on_the_api_origin() {
    let storage = Stub::start(|r: &Recorded| match r.path.as_str() {
        "/presigned/report.csv" => respond(200, "text/csv", "from storage\n"),
        _ => text(404, "no"),
    })
    .await;
    let storage_origin = storage.url.as_str().trim_end_matches('/').to_owned();
    let api = Stub::start(move |r: &Recorded| {
        let response = files(r);
        match response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
        {
            Some(location) => redirect_to(&location.replace("OTHER", &storage_origin)),
            None => response,
        }
    })
    .await;
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &api.url, None);
    let cancel = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();
    let expected_auth = basic(EMAIL, TOKEN);

    // A relative location resolves against the API origin and is sent credentials.
    let dest = dir.path().join("relative.csv");
    let size = client
        .download_artifact(&artifact("/files/report.csv"), &dest, &cancel)
        .await
        .unwrap();
    let content = std::fs::read_to_string(&dest).unwrap();
    assert_eq!(content, "check,outcome\nAnonPermission,WARNING\n");
    assert_eq!(size, content.len() as u64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // A full URL on the API origin too.
    let dest = dir.path().join("absolute.csv");
    client
        .download_artifact(&artifact(&api.at("/files/report.csv")), &dest, &cancel)
        .await
        .unwrap();

    // Another origin (a presigned URL) gets no credentials.
    let dest = dir.path().join("storage.csv");
    client
        .download_artifact(
            &artifact(&storage.at("/presigned/report.csv")),
            &dest,
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "from storage\n");

    // A redirect from the API to storage is followed, without the credentials.
    let dest = dir.path().join("moved.csv");
    client
        .download_artifact(&artifact("/files/moved"), &dest, &cancel)
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "from storage\n");

    let api_requests = api.requests();
    assert_eq!(api_requests.len(), 3);
    for request in &api_requests {
        assert_eq!(
            request.header("authorization"),
            Some(expected_auth.as_str())
        );
    }
    let storage_requests = storage.requests();
    assert_eq!(storage_requests.len(), 2);
    for request in &storage_requests {
        assert_eq!(request.header("authorization"), None, "{request:?}");
    }
    let queries: Vec<Option<&str>> = storage_requests
        .iter()
        .map(|r| r.query.as_deref())
        .collect();
    assert_eq!(queries, [None, Some("X-Amz-Signature=abc")]);
}

#[tokio::test]
async fn artifact_failures_are_classified_and_leave_no_file() {
    let api = Stub::start(files).await;
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &api.url, None);
    let cancel = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();

    let dest = dir.path().join("huge.bin");
    let err = client
        .download_artifact(&artifact("/files/huge"), &dest, &cancel)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Decode, "{err}");
    assert!(err.message.contains("larger than the limit"), "{err}");

    let dest_gone = dir.path().join("gone.csv");
    let err = client
        .download_artifact(&artifact("/files/gone"), &dest_gone, &cancel)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden, "{err}");

    let err = client
        .download_artifact(&artifact(""), &dir.path().join("none"), &cancel)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Decode);
    let err = client
        .download_artifact(&artifact("ftp://x/y"), &dir.path().join("ftp"), &cancel)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Decode);

    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A 5xx on a download is retried.
    let dest = dir.path().join("flaky.txt");
    client
        .download_artifact(&artifact("/files/flaky"), &dest, &cancel)
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "second time lucky");
}

//! HTTP as others speak it: plain http is HTTP/1.1 unless `--http2-prior-knowledge`; a
//! connection error names its host and port at once; a plain-http Server/DC instance is
//! accepted with a warning, a plain-http cloud API is not.

use crate::fleet::FAST;
use crate::support::fleet::{Fleet, Row, with_flag};

/// An HTTP/1.1-only API (as every server but our simulator is) is spoken to in HTTP/1.1;
/// HTTP/2 with prior knowledge is used only when asked, and then only the simulator (which
/// speaks both) answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_http1_unless_prior_knowledge_is_asked() {
    let http1_only = r#"
        [shapes]
        http = "http1"
    "#;
    let fleet = Fleet::start(http1_only, FAST, vec![Row::jira("acme")]).await;
    let run = fleet.run("check", "http1", &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fleet.summary("http1")["acme"]["outcome"], "succeeded");

    let asked = fleet.run("check", "h2", &["--http2-prior-knowledge"]).await;
    assert_eq!(
        asked.code, 1,
        "HTTP/2 without negotiation to an HTTP/1.1 server fails: {}",
        asked.stderr
    );
    assert_eq!(fleet.summary("h2")["acme"]["outcome"], "failed");

    let both = Fleet::start("", FAST, vec![Row::jira("acme")]).await;
    let run = both.run("check", "h2", &["--http2-prior-knowledge"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(both.summary("h2")["acme"]["outcome"], "succeeded");
}

/// An API that refuses connections: the first failure is a WARN line at once naming the
/// host and port, and the site's message says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_names_host_and_port_at_once() {
    let fleet = Fleet::start("", FAST, vec![Row::jira("acme")]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let api = format!("http://127.0.0.1:{port}");
    let command = with_flag(
        &fleet.command("check", "refused"),
        "--cloud-api-url",
        std::ffi::OsStr::new(&api),
    );
    let run = Fleet::output(command).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let words = format!("cannot connect to 127.0.0.1:{port}: connection refused");
    let warned: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains(" WARN ") && line.contains(&words))
        .collect();
    assert!(
        warned
            .first()
            .is_some_and(|line| line.ends_with("(retrying)")),
        "the first failure is said at once, before the retries: {}",
        run.stderr
    );
    let retrying = warned
        .iter()
        .filter(|line| line.ends_with("(retrying)"))
        .count();
    assert_eq!(retrying, 1, "once, not once per retry: {}", run.stderr);
    let summary = fleet.summary("refused");
    assert_eq!(summary["acme"]["outcome"], "failed");
    assert!(
        summary["acme"]["message"].contains(&words),
        "{}",
        summary["acme"]["message"]
    );
}

/// `validate` and `plan` accept a Server/DC instance over plain http on any host, warning
/// once per server that its credential travels unencrypted; a cloud site must be https.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_server_is_accepted_with_a_warning_and_a_plain_http_cloud_site_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("fleet.csv");
    std::fs::write(
        &inventory,
        "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys\n\
         a,jira,http://jira.acme.internal:8080,SRV-A,env:PAT,https://a.atlassian.net,m@a.com,env:TOKEN,ABC\n\
         b,jira,http://jira.acme.internal:8080/,SRV-A,env:PAT,https://b.atlassian.net,m@a.com,env:TOKEN,DEF\n",
    )
    .unwrap();
    let mut validate = Fleet::binary();
    validate.arg("validate").arg(&inventory);
    let run = Fleet::output(validate).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let warning = "server jira.acme.internal:8080 is reached over plain http: its credential (server_auth) travels unencrypted";
    assert_eq!(
        run.stderr.matches(warning).count(),
        1,
        "once per server: {}",
        run.stderr
    );
    assert!(run.stderr.contains("(lines 2, 3)"), "{}", run.stderr);

    let mut plan = Fleet::binary();
    plan.arg("plan")
        .arg(&inventory)
        .args(["--mode", "check", "--state-dir"])
        .arg(dir.path().join("state"));
    let run = Fleet::output(plan).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.matches(warning).count(), 1, "{}", run.stderr);

    let text = std::fs::read_to_string(&inventory).unwrap();
    std::fs::write(
        &inventory,
        text.replace("https://a.atlassian.net", "http://a.atlassian.net"),
    )
    .unwrap();
    let mut validate = Fleet::binary();
    validate.arg("validate").arg(&inventory);
    let run = Fleet::output(validate).await;
    assert_eq!(run.code, 65, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(":2: column cloud_url: plain http:// is refused for `a.atlassian.net`"),
        "{}",
        run.stderr
    );
}

//! Stopping works in any state of the network: a first SIGTERM cancels every wait and every
//! request not yet sent; a request on the wire gets `--stop-grace` (10 s), then is dropped;
//! the run ends within 15 s with its reports written — also when the API refuses every
//! connection, and when it accepts them and never answers.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::fleet::FAST;
use crate::support::fleet::{Fleet, Row, RunOutput, send_signal, with_flag};

/// Six sites whose cloud API is `api`; the run is left to start for `settle`, then sent
/// SIGTERM; returns what it did and how long it took to end after the signal.
async fn terminate_against(
    fleet: &Fleet,
    api: &str,
    settle: Duration,
    extra: &[&str],
) -> (RunOutput, Duration) {
    let mut command = with_flag(
        &fleet.command("check", "run"),
        "--cloud-api-url",
        OsStr::new(api),
    );
    // Creates one a second: most sites wait for their turn (a wait the signal cancels).
    command = with_flag(&command, "--rate-create-job", OsStr::new("1/s"));
    command.args(extra);
    let child = Fleet::spawn(command);
    tokio::time::sleep(settle).await;
    send_signal(&child, "TERM");
    let sent = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(30), Fleet::wait(child))
        .await
        .expect("the run ends after SIGTERM");
    (output, sent.elapsed())
}

fn six_sites() -> Vec<Row> {
    (1..=6).map(|n| Row::jira(&format!("s{n}"))).collect()
}

fn assert_ended_with_reports(fleet: &Fleet, output: &RunOutput, took: Duration) {
    assert_eq!(output.code, 143, "{}", output.stderr);
    assert!(
        took < Duration::from_secs(15),
        "exit within 15 s of the signal: {took:?}"
    );
    let summary = fleet.summary("run");
    assert_eq!(summary.len(), 6, "every site in summary.csv");
    for (site, row) in &summary {
        assert!(
            matches!(row["outcome"].as_str(), "detached" | "skipped"),
            "{site}: {} {}",
            row["outcome"],
            row["message"]
        );
    }
    assert_eq!(fleet.run_json("run")["exit_code"], 143);
    assert!(fleet.report_dir("run").join("report.html").is_file());
}

/// The API refuses every connection: creates are retrying and waiting for their turn. The
/// signal cancels all of that at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_run_promptly_when_the_api_refuses_connections() {
    let fleet = Fleet::start("", FAST, six_sites()).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (output, took) = terminate_against(&fleet, &api, Duration::from_millis(1500), &[]).await;
    eprintln!("refused connections: the run ended {took:?} after SIGTERM");
    assert_ended_with_reports(&fleet, &output, took);
    assert!(
        took < Duration::from_secs(5),
        "nothing on the wire to wait for: {took:?}"
    );
    // Nothing was sent, so no job create is left to reconcile: the next run has no note of a
    // job that may be unused.
    let db = fleet.db();
    let open: i64 = db
        .query_row(
            "SELECT count(*) FROM sites WHERE job_intent_at IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(open, 0, "an intent whose POST never left is withdrawn");
}

/// The API accepts connections and never answers: a job create is on the wire. It gets the
/// stop grace (10 s by default), then is dropped; the run still ends within 15 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_run_within_15_s_when_the_api_never_answers() {
    let fleet = Fleet::start("", FAST, six_sites()).await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", silent.local_addr().unwrap());
    // Accepts, reads and holds every connection, answering nothing.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut stream, _)) = silent.accept().await else {
                return;
            };
            held.push(tokio::spawn(async move {
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                std::future::pending::<()>().await;
            }));
        }
    });
    let (output, took) = terminate_against(
        &fleet,
        &api,
        Duration::from_millis(1500),
        &["--request-timeout", "120s"],
    )
    .await;
    holder.abort();
    eprintln!("silent API: the run ended {took:?} after SIGTERM");
    assert_ended_with_reports(&fleet, &output, took);
    assert!(
        took >= Duration::from_secs(9),
        "the create on the wire got its grace before it was dropped: {took:?}"
    );
}

//! Signals: the first SIGTERM/SIGINT stops starting work, leaves in-flight sites `detached`
//! (resumable), writes every report and exits 143/130 within seconds; a second signal exits
//! at once, without waiting for the request in flight.

use std::time::Duration;

use super::FAST;
use crate::support::fleet::{Fleet, Row, RunOutput, send_signal};

/// Three sites whose checks run for 45 simulated minutes (0.75 s), and a second wave.
async fn busy_fleet() -> Fleet {
    let scenario = r#"
        [defaults]
        check_duration = "45m"
        [servers.next]
        check_duration = "1m"
    "#;
    let rows = vec![
        Row::jira("busy-1").wave("first"),
        Row::jira("busy-2").wave("first"),
        Row::confluence("busy-3").wave("first"),
        Row::jira("next").wave("second"),
    ];
    Fleet::start(scenario, FAST, rows).await
}

/// Starts a check run, waits until the simulator holds its three tasks, sends `signal`, and
/// returns what the run did (it must end within 20 s of the signal).
async fn interrupt(fleet: &Fleet, signal: &str) -> RunOutput {
    let child = Fleet::spawn(fleet.command("check", "check"));
    fleet
        .wait_for_tasks("the first wave's three tasks", |tasks| tasks.len() == 3)
        .await;
    send_signal(&child, signal);
    let sent = std::time::Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(20), Fleet::wait(child))
        .await
        .expect("the run ends within seconds of the signal");
    eprintln!(
        "SIG{signal}: the run ended {:?} after the signal",
        sent.elapsed()
    );
    output
}

/// What every interrupted run leaves: detached sites, a skipped wave, every report.
fn assert_drained(fleet: &Fleet, output: &RunOutput, code: i64, reason: &str) {
    let summary = fleet.summary("check");
    for site in ["busy-1", "busy-2", "busy-3"] {
        assert_eq!(
            summary[site]["outcome"], "detached",
            "{site}: {}",
            summary[site]["message"]
        );
        assert!(
            !summary[site]["task_id"].is_empty(),
            "{site}: the task id is kept"
        );
    }
    assert_eq!(summary["next"]["outcome"], "skipped");
    assert!(
        summary["next"]["message"].contains(reason),
        "{}",
        summary["next"]["message"]
    );
    for file in [
        "summary.csv",
        "summary.md",
        "report.html",
        "run.json",
        "sites/busy-1.json",
    ] {
        assert!(
            fleet.report_dir("check").join(file).is_file(),
            "{file} written\n{}",
            output.stderr
        );
    }
    let run = fleet.run_json("check");
    assert_eq!(run["exit_code"], code);
    assert_eq!(run["counts"]["detached"], 3);
    assert!(run["finished_at"].is_string());
    assert!(output.stdout.contains("report.html"), "{}", output.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_detaches_in_flight_sites_writes_reports_and_exits_143() {
    let fleet = busy_fleet().await;
    let output = interrupt(&fleet, "TERM").await;
    assert_eq!(output.code, 143, "{}", output.stderr);
    assert_drained(&fleet, &output, 143, "SIGTERM");
    let counters = fleet.counters().await;
    assert_eq!(
        counters.task_creates.total, 3,
        "nothing started after the signal"
    );

    // The next run resumes the detached sites (their tasks, not new ones) and runs the rest.
    let next = fleet.run("check", "resume", &[]).await;
    assert_eq!(next.code, 0, "{}", next.stderr);
    let (before, after) = (fleet.summary("check"), fleet.summary("resume"));
    for site in ["busy-1", "busy-2", "busy-3"] {
        assert_eq!(after[site]["outcome"], "succeeded");
        assert_eq!(
            after[site]["task_id"], before[site]["task_id"],
            "{site}: adopted"
        );
    }
    assert_eq!(after["next"]["outcome"], "succeeded");
    assert_eq!(fleet.counters().await.task_creates.total, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_run_exits_130() {
    let fleet = busy_fleet().await;
    let output = interrupt(&fleet, "INT").await;
    assert_eq!(output.code, 130, "{}", output.stderr);
    assert_drained(&fleet, &output, 130, "SIGINT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    // Every request to this server takes 30 real seconds: the first signal waits for the one
    // in flight (the job create), the second does not.
    let scenario = r#"
        [servers.slow.faults]
        latency = "30s"
    "#;
    let fleet = Fleet::start(scenario, FAST, vec![Row::jira("slow")]).await;
    let mut child = Fleet::spawn(fleet.command("check", "check"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fleet.counters().await.faults.delayed_requests == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no request reached the server"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    send_signal(&child, "TERM");
    // Draining: the run finishes its current request (still 29 s away) before it exits.
    let early = tokio::time::timeout(Duration::from_millis(700), child.wait()).await;
    assert!(
        early.is_err(),
        "the first signal drains; it does not exit: {early:?}"
    );
    send_signal(&child, "TERM");
    let output = tokio::time::timeout(Duration::from_secs(10), Fleet::wait(child))
        .await
        .expect("the second signal exits at once, long before the request would end");
    assert_eq!(output.code, 143, "{}", output.stderr);
    assert!(output.stderr.contains("second signal"), "{}", output.stderr);
    // The second signal forces the run through its usual end: the request on the wire is
    // dropped, the site is detached, and the reports are written.
    let summary = fleet.summary("check");
    assert_eq!(
        summary["slow"]["outcome"], "detached",
        "{}",
        summary["slow"]["message"]
    );
    for file in ["summary.csv", "report.html", "run.json"] {
        assert!(
            fleet.report_dir("check").join(file).is_file(),
            "{file} written after a second signal\n{}",
            output.stderr
        );
    }
}

//! A systemic failure stops early: when the first sites of one cloud user fail at the same
//! step with the same answer, that user's other sites are not started (they end `skipped`
//! with the service's words); other users go on.

use std::ffi::OsStr;

use crate::fleet::FAST;
use crate::support::fleet::{Fleet, Row, with_flag};

/// Twelve sites of a user whose job creates are all refused alike, and two of another user:
/// at most K + 2 job creates reach the service, the rest end skipped saying why, one ERROR
/// line says it at once, and the other user's sites migrate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_failing_alike_stop_their_users_other_sites() {
    let scenario = r#"
        [defaults]
        check_duration = "3m"
        [users."alice@example.com"]
        admin = false
    "#;
    let mut rows: Vec<Row> = (1..=12).map(|n| Row::jira(&format!("a{n:02}"))).collect();
    rows.push(Row::jira("b01").user("bob@example.com"));
    rows.push(Row::confluence("b02").user("bob@example.com"));
    let fleet = Fleet::start(scenario, FAST, rows).await;
    // Creates spaced 250 ms apart, so each refusal comes back before the next is sent.
    let command = with_flag(
        &fleet.command("check", "run"),
        "--rate-create-job",
        OsStr::new("1/250ms"),
    );
    let run = Fleet::output(command).await;
    assert_eq!(run.code, 1, "{}", run.stderr);

    let counters = fleet.counters().await;
    let alice_creates: u64 = (1..=12)
        .map(|n| Fleet::jobs_of(&counters, &fleet.rows[n - 1]))
        .sum();
    assert_eq!(alice_creates, 0, "every create was refused");
    let refused = counters.by_route["POST /migrations/public/v1/jobs"]
        .get("403")
        .copied()
        .unwrap_or(0);
    assert!(
        (3..=5).contains(&refused),
        "K = 3 creates refused, at most K + 2 sent: {refused}"
    );

    let summary = fleet.summary("run");
    let failed = summary
        .values()
        .filter(|row| row["outcome"] == "failed")
        .count();
    let skipped: Vec<_> = summary
        .values()
        .filter(|row| row["outcome"] == "skipped")
        .collect();
    assert_eq!(
        failed as u64, refused,
        "each refused create is one failed site"
    );
    assert_eq!(failed + skipped.len(), 12);
    for row in &skipped {
        assert!(
            row["message"].contains("sites of this cloud user in a row failed at job")
                && row["message"].contains(
                    "HTTP 403: Forbidden: the user is not an admin of the destination site"
                ),
            "{}",
            row["message"]
        );
    }
    assert_eq!(summary["b01"]["outcome"], "succeeded");
    assert_eq!(summary["b02"]["outcome"], "succeeded");
    let errors = run
        .stderr
        .lines()
        .filter(|line| line.contains(" ERROR ") && line.contains("alice@example.com"))
        .count();
    assert_eq!(errors, 1, "one ERROR line: {}", run.stderr);

    // Off: every site tries.
    let command = with_flag(
        &fleet.command("check", "off"),
        "--rate-create-job",
        OsStr::new("1/20ms"),
    );
    let mut command = command;
    command.args([
        "--stop-after-same-failures",
        "0",
        "--site",
        "a01,a02,a03,a04,a05,a06",
    ]);
    let run = Fleet::output(command).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let summary = fleet.summary("off");
    assert!(
        summary.values().all(|row| row["outcome"] == "failed"),
        "{summary:#?}"
    );
}

//! What polling costs the service: a Check task is polled at its root (one small page) while
//! its checks run, and its check level (several pages) is read once, when they finished.

use crate::support::fleet::{Fleet, Row, with_flag};
use crate::support::proxy::RecordingProxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_task_costs_about_duration_over_poll_max_status_reads() {
    // 30 simulated minutes at ×3600: 500 ms real; the harness polls between 10 ms and 50 ms.
    let scenario = r#"
        [defaults]
        check_duration = "30m"
    "#;
    let rows = vec![Row::jira("alpha"), Row::jira("beta"), Row::jira("gamma")];
    let fleet = Fleet::start(scenario, 3600.0, rows).await;
    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let counters = fleet.counters().await;
    let (duration, min, max) = (500.0_f64, 10.0_f64, 50.0_f64);
    // Polls: the doubling ramp from poll-min, then one per poll-max (jitter may shorten an
    // interval to 0.9 × poll-max); then the check level's two pages (16 Jira checks, 10 a page).
    let bound = (duration / (0.9 * max)).ceil() + (max / min).log2().ceil() + 1.0 + 2.0;
    for site in ["alpha", "beta", "gamma"] {
        let reads = counters.by_server[site].status_reads;
        assert!(
            reads as f64 <= bound,
            "{site}: {reads} status reads > {bound} (reading every check on every poll costs twice as many)"
        );
        // The check results were read in full once (both pages).
        assert!(reads >= 3, "{site}: {reads} status reads");
    }
    every_site_succeeded_with_all_its_checks(&fleet, "alpha");
}

/// Every site of the `check` run succeeded, and `site`'s report has all 16 Jira checks (the
/// check level was read whole, both pages).
fn every_site_succeeded_with_all_its_checks(fleet: &Fleet, site: &str) {
    let summary = fleet.summary("check");
    assert!(
        summary.values().all(|row| row["outcome"] == "succeeded"),
        "{summary:?}"
    );
    let report = fleet.site_report("check", site);
    assert_eq!(
        report["checks"].as_array().map(Vec::len),
        Some(16),
        "every Jira check is in {site}'s report"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_few_tasks_ended_the_next_skip_the_young_task_polls() {
    // Checks of 5 simulated minutes at ×3600: 83 ms real; the harness polls between 10 ms and
    // 50 ms. One site at a time, so the first four teach the run how long a check task takes.
    let scenario = r#"
        [defaults]
        check_duration = "5m"
    "#;
    let names = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"];
    let rows = names.iter().map(|name| Row::jira(name)).collect();
    let fleet = Fleet::start(scenario, 3600.0, rows).await;
    let output = fleet.run("check", "check", &["--concurrency", "1"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let counters = fleet.counters().await;
    let reads: Vec<u64> = names
        .iter()
        .map(|name| counters.by_server[*name].status_reads)
        .collect();
    // Young-task polls at about 10, 30, 70 and 120 ms find the first sites' tasks running
    // three times, then the check level's two pages: about 6 reads each.
    let (first, learned) = reads.split_at(4);
    // Later tasks are polled toward the end the first ones took (at most 50 ms apart), and
    // at that end the check level is read straight away: a root poll or two, then the two
    // pages. The expected end is the quickest of the tasks seen, timed from when the client
    // learned of each: on a loaded machine one create answer that arrives late makes that
    // end early, and the one site that meets a task still running there polls a few more
    // times. The rest read the learned way.
    let learned_way = learned.iter().filter(|count| **count <= 4).count();
    assert!(
        learned_way >= learned.len() - 1,
        "every learned site but at most one reads at most 4 times: {reads:?}"
    );
    assert!(
        learned.iter().sum::<u64>() < first.iter().sum::<u64>(),
        "the learned schedule reads less than the young-task one: {reads:?}"
    );
    // The check level read at the expected end is the whole of it.
    every_site_succeeded_with_all_its_checks(&fleet, "s8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_level_that_never_reads_leaves_the_site_detached_not_polling_forever() {
    // The cloud API behind a proxy that names another host: the root (one page) reads well,
    // but the check level's next-page link points at that host, which the client refuses
    // (credentials stay on their origin). Every poll after the checks finished fails.
    let scenario = r#"
        [defaults]
        check_duration = "5m"
    "#;
    let fleet = Fleet::start(scenario, 3600.0, vec![Row::jira("alpha")]).await;
    let proxy =
        RecordingProxy::start_naming("127.0.0.1", &fleet.sim.base_url(), Some("elsewhere.test"))
            .await;
    let command = with_flag(
        &fleet.command("check", "check"),
        "--cloud-api-url",
        std::ffi::OsStr::new(&proxy.url()),
    );
    let output = Fleet::output(command).await;
    assert_eq!(output.code, 3, "a detached site: {}", output.stderr);
    let summary = fleet.summary("check");
    let alpha = &summary["alpha"];
    assert_eq!(alpha["outcome"], "detached", "{alpha:?}");
    assert!(
        alpha["message"].contains("status unreadable")
            && alpha["message"].contains("another origin"),
        "{alpha:?}"
    );
    // Ten failed polls, each reading the root and then failing on the check level's link.
    let reads = fleet.counters().await.by_server["alpha"].status_reads;
    assert!(reads <= 40, "{reads} status reads");
}

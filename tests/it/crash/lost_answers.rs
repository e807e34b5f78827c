//! Lost create answers during a run (the simulator creates the task, then answers 504 or
//! drops the connection): the pipeline finds the task on the job's task list instead of
//! creating it again, and every site ends as it would have.

use super::{Fate, SiteSpec, exit_code_of, journal, start, verify};
use crate::support::fleet::Row;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_task_create_answers_are_reconciled_never_resent() {
    let sites = vec![
        SiteSpec::new(Row::jira("gw-ok"), Fate::Succeeded),
        SiteSpec::new(Row::confluence("gw-warn"), Fate::Warnings),
        SiteSpec::new(
            Row::jira("drop-ok").user("bob@example.com"),
            Fate::Succeeded,
        ),
        SiteSpec::new(Row::jira("drop-fail").user("bob@example.com"), Fate::Failed),
        SiteSpec::new(Row::jira("gw-blocked"), Fate::Blocked),
    ];
    let mut faults = String::new();
    for site in &sites {
        let mode = if site.row.site.starts_with("drop") {
            "drop"
        } else {
            "504"
        };
        faults.push_str(&format!(
            "[servers.{}.faults]\nlost_task_create_rate = 0.7\nlost_create_mode = \"{mode}\"\n",
            site.row.server
        ));
    }
    let fleet = start(5, &sites, &faults).await;
    let output = fleet.run("migrate", "lossy", &["--precheck"]).await;
    assert_eq!(output.code, exit_code_of(&sites), "{}", output.stderr);
    let counters = fleet.counters().await;
    assert!(
        counters.faults.lost_answers_504 > 0 && counters.faults.dropped_connections > 0,
        "both kinds of lost answer happened: {:?}",
        counters.faults
    );
    assert!(
        counters.repeated_task_creates().is_empty(),
        "no task created twice: {:?}",
        counters.repeated_task_creates()
    );
    verify(&fleet, &sites, true, "lost answers").await;
    let journal = journal(&fleet);
    let adopted = journal.iter().filter(|row| row.adopted).count() as u64;
    assert_eq!(
        adopted,
        counters.faults.lost_answers_504 + counters.faults.dropped_connections,
        "every lost answer's task was found on the task list: {journal:#?}"
    );
    assert!(journal.iter().all(|row| !row.abandoned), "{journal:#?}");
    let summary = fleet.summary("lossy");
    let notes: String = summary
        .keys()
        .map(|site| fleet.site_report("lossy", site)["notes"].to_string())
        .collect();
    assert!(notes.contains("answer was lost; found task"), "{notes}");
}

//! The fleet's story under random shapes: for each seed, the simulator picks every point
//! `docs/api.md` leaves open (link forms, status and task-type spellings, unknown statuses,
//! error envelopes, late scopes, a young job's 404, artifact answers and expiries…), and a
//! check run and a migrate run must end every site exactly as under the documented shapes,
//! creating no task twice. A failing seed is printed with the command that replays it.
//!
//! Seeds: `CMAFLEET_SHAPE_SEEDS` (comma-separated), else 1, 2 and 3 (what CI runs).

use std::collections::BTreeMap;

use cmafleet::sim::Scenario;

use crate::fleet::FAST;
use crate::support::fleet::{Fleet, Row};

/// The fleet: every outcome a night can bring.
const SCENARIO: &str = r#"
    [defaults]
    check_duration = "3m"
    migrate_duration = "20m"
    apps_duration = "10m"
    [servers.warn.checks.AnonPermission]
    outcome = "WARNING"
    [servers.fail.checks.MissingAttachments]
    outcome = "FAILED"
    excludable = false
    [servers.stark.scopes.projects]
    outcome = "FAILED"
    message = "3 issues could not be imported"
    [servers.offline]
    connected = false
"#;

fn rows() -> Vec<Row> {
    vec![
        Row::jira("clean"),
        Row::jira("warn"),
        Row::jira("fail"),
        Row::confluence("wiki"),
        Row::jira("stark"),
        Row::jira("offline"),
        Row::jira("apps").apps("com.tempoplugin.tempo-timesheets"),
    ]
}

fn expected(mode: &str) -> BTreeMap<&'static str, &'static str> {
    let stark = if mode == "check" {
        "succeeded"
    } else {
        "failed"
    };
    BTreeMap::from([
        ("clean", "succeeded"),
        ("warn", "warnings"),
        ("fail", "blocked"),
        ("wiki", "succeeded"),
        ("stark", stark),
        ("offline", "blocked"),
        ("apps", "succeeded"),
    ])
}

fn seeds() -> Vec<u64> {
    match std::env::var("CMAFLEET_SHAPE_SEEDS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|seed| {
                seed.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("CMAFLEET_SHAPE_SEEDS: `{seed}` is not a seed"))
            })
            .collect(),
        _ => vec![1, 2, 3],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_site_ends_as_documented_under_random_shapes() {
    for seed in seeds() {
        let scenario = format!("{SCENARIO}\n[shapes]\nrandom_seed = {seed}\n");
        let shapes = Scenario::parse_toml(&scenario)
            .expect("the scenario parses")
            .shapes_summary();
        let replay = format!(
            "seed {seed} ({shapes}); replay: CMAFLEET_SHAPE_SEEDS={seed} cargo test --test it contact::shapes, or `cmafleet sim --shapes random --seed {seed}`"
        );
        eprintln!("{replay}");
        let fleet = Fleet::start(&scenario, FAST, rows()).await;
        for mode in ["check", "migrate"] {
            let run = fleet.run(mode, mode, &[]).await;
            assert!(!run.stderr.contains("panicked"), "{replay}\n{}", run.stderr);
            assert_eq!(run.code, 1, "{mode}: {replay}\n{}", run.stderr);
            let summary = fleet.summary(mode);
            let outcomes: BTreeMap<&str, &str> = summary
                .iter()
                .map(|(site, row)| (site.as_str(), row["outcome"].as_str()))
                .collect();
            assert_eq!(
                outcomes,
                expected(mode),
                "{mode}: {replay}\nmessages: {:#?}",
                summary
                    .iter()
                    .map(|(site, row)| (site, &row["message"]))
                    .collect::<Vec<_>>()
            );
        }
        for (site, tasks) in fleet.tasks_by_site().await {
            let mut kinds: Vec<&str> = tasks.iter().map(|task| task.task_type.as_str()).collect();
            kinds.sort_unstable();
            let expected: &[&str] = if site == "offline" {
                &[]
            } else {
                &["check", "migrate"]
            };
            assert_eq!(kinds, expected, "{site}: one task of each kind; {replay}");
        }
    }
}

//! `cmafleet validate INVENTORY --online`: before a night depends on it, every row is tried
//! live — cloud credentials, server reached, cloud site attached — creating no job and no
//! task, naming exactly the rows that would fail and what to do, printing no secret.

use crate::fleet::FAST;
use crate::support::fleet::{CLOUD_TOKEN, Fleet, Row, SERVER_PAT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_rows_that_would_fail_are_named_and_nothing_is_created() {
    // `badserver` accepts only another token than the fleet's; `bob`'s cloud token is
    // pinned to another one; `offline` is not connected to its cloud site.
    let scenario = r#"
        [servers.badserver]
        token = "the-right-pat"
        [servers.offline]
        connected = false
        [users."bob@example.com"]
        token = "the-right-cloud-token"
    "#;
    let rows = vec![
        Row::jira("good-1"),
        Row::confluence("good-2"),
        Row::jira("badserver"),
        Row::jira("badcloud").user("bob@example.com"),
        Row::jira("offline"),
    ];
    let fleet = Fleet::start(scenario, FAST, rows).await;
    let mut command = fleet.cli();
    command
        .arg("validate")
        .arg(&fleet.inventory)
        .arg("--online")
        .args(["--cloud-api-url", &fleet.sim.base_url()]);
    let run = Fleet::output(command).await;
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);

    let line_of = |site: &str| -> String {
        run.stdout
            .lines()
            .find(|line| line.split_whitespace().nth(2) == Some(site))
            .unwrap_or_else(|| panic!("no line for {site}:\n{}", run.stdout))
            .to_owned()
    };
    for good in ["good-1", "good-2"] {
        let line = line_of(good);
        assert!(
            line.contains(" ok: cloud credentials accepted; attached to https://"),
            "{line}"
        );
    }
    let badserver = line_of("badserver");
    assert!(
        badserver.contains("FAILED") && badserver.contains("the server refused the credentials"),
        "{badserver}"
    );
    let badcloud = line_of("badcloud");
    assert!(
        badcloud.contains("FAILED")
            && badcloud.contains("the cloud API refused the credentials")
            && !badcloud.contains("server refused"),
        "{badcloud}"
    );
    let offline = line_of("offline");
    assert!(
        offline.contains("FAILED")
            && offline.contains("not connected")
            && offline.contains("--connect"),
        "{offline}"
    );
    assert_eq!(run.stdout.matches("FAILED").count(), 3, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("5 row(s) tried live, 2 ok, 3 failed; no job or task was created"),
        "{}",
        run.stdout
    );

    let counters = fleet.counters().await;
    assert_eq!(counters.task_creates.total, 0, "no task created");
    assert!(
        counters.jobs_created.is_empty(),
        "no job created: {:?}",
        counters.jobs_created
    );
    for secret in [CLOUD_TOKEN, SERVER_PAT] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret was printed"
        );
    }

    // All good: exit 0 (the offline rows dropped from the inventory).
    let mut good = fleet.rows.clone();
    good.retain(|row| row.site.starts_with("good"));
    let text = std::fs::read_to_string(&fleet.inventory).unwrap();
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(number, line)| {
            *number == 0
                || good
                    .iter()
                    .any(|row| line.starts_with(&format!("{},", row.site)))
        })
        .map(|(_, line)| format!("{line}\n"))
        .collect();
    let inventory = fleet.dir.path().join("good.csv");
    std::fs::write(&inventory, kept).unwrap();
    let mut command = fleet.cli();
    command
        .arg("validate")
        .arg(&inventory)
        .arg("--online")
        .args(["--cloud-api-url", &fleet.sim.base_url()]);
    let run = Fleet::output(command).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(fleet.counters().await.task_creates.total, 0);
}

/// `validate --online` tries the rows a run would take: those of `--site`/`--wave`/`--shard`
/// or of the `--config` file's selection (a shard's pod tries its own rows, a migration
/// night's unit tonight's wave), and says how many it left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_selected_rows_are_tried() {
    let scenario = r#"
        [servers.offline]
        connected = false
    "#;
    let rows = vec![
        Row::jira("tonight").wave("w1"),
        Row::jira("offline").wave("w2"),
        Row::confluence("later").wave("w2"),
    ];
    let fleet = Fleet::start(scenario, FAST, rows).await;
    let validate = |extra: &[&str]| {
        let mut command = fleet.cli();
        command
            .arg("validate")
            .arg(&fleet.inventory)
            .arg("--online")
            .args(["--cloud-api-url", &fleet.sim.base_url()])
            .args(extra);
        Fleet::output(command)
    };

    let wave = validate(&["--wave", "w1"]).await;
    assert_eq!(wave.code, 0, "{}\n{}", wave.stdout, wave.stderr);
    assert!(
        wave.stdout.contains(
            "online: 1 of 3 row(s) selected (--wave, --site, --shard); the other 2 are not tried"
        ),
        "{}",
        wave.stdout
    );
    assert!(
        wave.stdout.contains("1 row(s) tried live, 1 ok, 0 failed"),
        "{}",
        wave.stdout
    );
    assert!(!tried(&wave.stdout, "offline"), "{}", wave.stdout);
    assert!(
        wave.stdout
            .contains("distinct references, those of the rows tried live are resolved next"),
        "{}",
        wave.stdout
    );

    // The same from the settings file a migration night's unit passes.
    let config = fleet.dir.path().join("night.toml");
    std::fs::write(&config, "wave = [\"w2\"]\n").unwrap();
    let night = validate(&["--config", config.to_str().unwrap()]).await;
    assert_eq!(night.code, 4, "{}\n{}", night.stdout, night.stderr);
    assert!(
        night.stdout.contains("2 row(s) tried live, 1 ok, 1 failed"),
        "{}",
        night.stdout
    );
    assert!(!tried(&night.stdout, "tonight"), "{}", night.stdout);
    assert!(tried(&night.stdout, "offline"), "{}", night.stdout);

    let unknown = validate(&["--site", "nope"]).await;
    assert_eq!(unknown.code, 2, "{}\n{}", unknown.stdout, unknown.stderr);
    assert!(
        unknown
            .stderr
            .contains("--site `nope` not in the inventory"),
        "{}",
        unknown.stderr
    );

    let counters = fleet.counters().await;
    assert_eq!(counters.task_creates.total, 0);
    assert!(counters.jobs_created.is_empty());
}

/// Whether `stdout` has a live-check line (`line N  SITE  ok|FAILED: …`) for `site`.
fn tried(stdout: &str, site: &str) -> bool {
    stdout
        .lines()
        .any(|line| line.starts_with("line ") && line.split_whitespace().nth(2) == Some(site))
}

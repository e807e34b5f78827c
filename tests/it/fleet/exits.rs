//! Exit codes for runs that must stop before any network call, and `--print-config`. Each
//! test also asserts that the simulator received nothing.

use super::FAST;
use crate::support::fleet::{CLOUD_TOKEN, Fleet, Row, SERVER_PASSWORD, SERVER_PAT};

/// The simulator saw no request at all.
async fn assert_untouched(fleet: &Fleet) {
    let counters = fleet.counters().await;
    assert_eq!(counters.total, 0, "no network call: {counters:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_inventory_exits_65_with_every_problem_and_its_line() {
    let fleet = Fleet::start("", FAST, vec![Row::jira("one"), Row::jira("two")]).await;
    let text = std::fs::read_to_string(&fleet.inventory).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[1] = lines[1].replacen(",jira,", ",jiraa,", 1);
    lines[2] = lines[2].replacen("two,", "one,", 1);
    std::fs::write(&fleet.inventory, lines.join("\n") + "\n").unwrap();

    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 65, "{}", output.stderr);
    assert!(
        output.stderr.contains("line 2"),
        "line 2 named:\n{}",
        output.stderr
    );
    assert!(output.stderr.contains("jiraa"), "{}", output.stderr);
    assert!(
        output.stderr.contains("line 3"),
        "line 3 named:\n{}",
        output.stderr
    );
    assert!(
        !fleet.report_dir("check").exists(),
        "no report dir for a run that never started"
    );
    assert_untouched(&fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unset_secret_exits_78_naming_the_reference_never_a_value() {
    let fleet = Fleet::start(
        "",
        FAST,
        vec![Row::jira("one"), Row::jira("two").basic_auth()],
    )
    .await;
    let mut command = fleet.command("check", "check");
    command.env_remove("FLEET_CLOUD_TOKEN");
    command.env_remove("FLEET_SERVER_PASSWORD");
    let output = Fleet::output(command).await;
    assert_eq!(output.code, 78, "{}", output.stderr);
    assert!(
        output.stderr.contains("env:FLEET_CLOUD_TOKEN"),
        "the cloud token's reference is named:\n{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("FLEET_SERVER_PASSWORD"),
        "the server password's reference is named:\n{}",
        output.stderr
    );
    for secret in [CLOUD_TOKEN, SERVER_PAT, SERVER_PASSWORD] {
        assert!(!output.stderr.contains(secret) && !output.stdout.contains(secret));
    }
    assert_untouched(&fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_exit_2() {
    let fleet = Fleet::start("", FAST, vec![Row::jira("one").wave("w1")]).await;
    for (flags, says) in [
        (&["--concurrency", "0"][..], "--concurrency"),
        (&["--poll-min", "soon"][..], "--poll-min"),
        (&["--deadline", "forever"][..], "--deadline"),
        (
            &["--no-new-tasks-after", "25:99"][..],
            "--no-new-tasks-after",
        ),
        (&["--site", "nosuch"][..], "nosuch"),
        (&["--wave", "w9"][..], "w9"),
        (&["--shard", "3/3"][..], "--shard"),
        (&["--no-such-flag"][..], "--no-such-flag"),
    ] {
        let output = fleet.run("check", "check", flags).await;
        assert_eq!(output.code, 2, "{flags:?}: {}", output.stderr);
        assert!(
            output.stderr.contains(says),
            "{flags:?}: the message names {says}:\n{}",
            output.stderr
        );
    }
    let output = fleet
        .run("check", "check", &["--override-checks", "AnonPermission"])
        .await;
    assert_eq!(output.code, 2, "override in check mode: {}", output.stderr);
    assert_untouched(&fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rate_string_exits_78() {
    let fleet = Fleet::start("", FAST, vec![Row::jira("one")]).await;
    let mut command = Fleet::binary();
    command
        .arg("run")
        .arg(&fleet.inventory)
        .args(["--mode", "check", "--rate-create-task", "lots"])
        .arg("--state-dir")
        .arg(fleet.state_dir());
    let output = Fleet::output(command).await;
    assert_eq!(output.code, 78, "{}", output.stderr);
    assert!(
        output.stderr.contains("--rate-create-task"),
        "{}",
        output.stderr
    );
    assert_untouched(&fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_report_dir_exits_73_before_any_network_call() {
    let fleet = Fleet::start("", FAST, vec![Row::jira("one")]).await;
    // A regular file where a parent dir should be: unwritable even for root.
    let blocker = fleet.dir.path().join("not-a-dir");
    std::fs::write(&blocker, "a file").unwrap();
    let mut command = Fleet::binary();
    command
        .arg("run")
        .arg(&fleet.inventory)
        .args(["--mode", "check", "--cloud-api-url", &fleet.sim.base_url()])
        .arg("--state-dir")
        .arg(fleet.state_dir())
        .arg("--report-dir")
        .arg(blocker.join("reports"));
    let output = Fleet::output(command).await;
    assert_eq!(output.code, 73, "{}", output.stderr);
    assert!(output.stderr.contains("not-a-dir"), "{}", output.stderr);
    assert_untouched(&fleet).await;

    let mut command = Fleet::binary();
    command
        .arg("run")
        .arg(&fleet.inventory)
        .args(["--mode", "check", "--cloud-api-url", &fleet.sim.base_url()])
        .arg("--state-dir")
        .arg(blocker.join("state"));
    let output = Fleet::output(command).await;
    assert_eq!(output.code, 73, "unwritable state dir: {}", output.stderr);
    assert_untouched(&fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_exits_75_at_once() {
    let fleet = Fleet::start("", FAST, vec![Row::jira("one")]).await;
    let lock =
        cmafleet::state::RunLock::acquire(&fleet.state_dir()).expect("the test takes the lock");
    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 75, "{}", output.stderr);
    assert!(
        output.stderr.contains(&std::process::id().to_string()),
        "the holder's pid is named:\n{}",
        output.stderr
    );
    assert_untouched(&fleet).await;
    drop(lock);
    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 0, "free again: {}", output.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_config_prints_resolved_settings_and_no_secret() {
    let fleet = Fleet::start("", FAST, vec![Row::jira("one")]).await;
    let output = fleet
        .run(
            "migrate",
            "check",
            &[
                "--print-config",
                "--concurrency",
                "7",
                "--precheck",
                "--override-checks",
                "AnonPermission",
                "--deadline",
                "2h",
            ],
        )
        .await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    // The resolved settings, as a valid settings file (TOML).
    let config: toml::Value =
        toml::from_str(&output.stdout).expect("--print-config prints a settings file");
    assert_eq!(config["mode"].as_str(), Some("migrate"));
    assert_eq!(config["concurrency"].as_integer(), Some(7));
    assert_eq!(config["per-server"].as_integer(), Some(1));
    assert_eq!(config["precheck"].as_bool(), Some(true));
    let overrides: Vec<&str> = config["override-checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|value| value.as_str())
        .collect();
    assert_eq!(overrides, ["AnonPermission"]);
    assert_eq!(config["deadline"].as_str(), Some("2h"));
    assert_eq!(
        config["cloud-api-url"].as_str(),
        Some(format!("{}/", fleet.sim.base_url()).as_str())
    );
    assert!(config["rate-create-task"].is_str());
    assert!(config["poll-min"].is_str());
    for secret in [CLOUD_TOKEN, SERVER_PAT, SERVER_PASSWORD] {
        assert!(!output.stdout.contains(secret) && !output.stderr.contains(secret));
    }
    assert!(
        !fleet.state_dir().exists(),
        "--print-config touches nothing"
    );
    assert_untouched(&fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_that_cannot_be_written_at_the_end_exit_73() {
    // The report dir is replaced by a plain file while the run goes on (permissions would not
    // stop root): the final reports cannot be written, and cron must not see a success.
    let scenario = r#"
        [defaults]
        check_duration = "30m"
    "#;
    let fleet = Fleet::start(scenario, FAST, vec![Row::jira("one")]).await;
    let child = Fleet::spawn(fleet.command("check", "check"));
    fleet
        .wait_for_tasks("the Check task", |tasks| tasks.len() == 1)
        .await;
    let dir = fleet.report_dir("check");
    std::fs::rename(&dir, dir.with_extension("moved")).unwrap();
    std::fs::write(&dir, "not a dir any more").unwrap();
    let output = Fleet::wait(child).await;
    assert_eq!(output.code, 73, "{}", output.stderr);
    assert!(output.stderr.contains("report"), "{}", output.stderr);
    let runs = cmafleet::state::Store::open(&fleet.state_dir())
        .unwrap()
        .runs()
        .unwrap();
    assert_eq!(
        runs[0].exit_code,
        Some(73),
        "the state store records the real exit code"
    );
}

//! `runs`, `status` and `report`, the read-only views of a state store: past runs and the
//! report of any of them, a state dir that holds no store, and one site with its next step.

use serde_json::Value;

use super::everyday::{SCALE, args_of, cli, cmafleet, path, stderr, stdout};
use crate::support::fleet::{Fleet, Row};

/// Checks fail on `anon` (excludable) and `disk` (not excludable); `fine` passes.
const BLOCKING: &str = r#"
    [defaults]
    check_duration = "2m"
    [servers.anon.checks.AnonPermission]
    outcome = "FAILED"
    excludable = true
    [servers.disk.checks.MissingAttachments]
    outcome = "FAILED"
    excludable = false
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_lists_past_runs_and_report_points_to_it() {
    let fleet = Fleet::start("", SCALE, vec![Row::jira("acme"), Row::jira("globex")]).await;
    for report in ["first", "second"] {
        let run = fleet.run("check", report, &[]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let ids: Vec<String> = ["second", "first"]
        .map(|report| {
            fleet.run_json(report)["run_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .into();
    let state = path(&fleet.state_dir()).to_owned();

    let table = cli(&fleet, &["runs", "--state-dir", &state]);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("RUN ") && lines[0].contains("DURATION"),
        "{text}"
    );
    for (line, id) in lines[1..3].iter().zip(&ids) {
        assert!(line.starts_with(id.as_str()), "newest first:\n{text}");
        assert!(line.contains("  check  "), "{text}");
        assert!(line.contains("succeeded 2"), "{text}");
        assert!(
            line.ends_with("0 (every selected site succeeded, warned or was skipped)"),
            "{text}"
        );
    }

    // The same through the runs' settings file, as JSON.
    let config = fleet.dir.path().join("nightly.toml");
    std::fs::write(&config, format!("state-dir = {state:?}\n")).unwrap();
    let json = cli(
        &fleet,
        &["runs", "--format", "json", "--config", path(&config)],
    );
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let runs: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs}");
    assert_eq!(runs[0]["run_id"], ids[0].as_str());
    assert_eq!(runs[0]["mode"], "check");
    assert_eq!(runs[0]["exit_code"], 0);
    assert_eq!(runs[0]["sites"], 2);
    assert_eq!(runs[0]["counts"], serde_json::json!({"succeeded": 2}));
    assert!(runs[0]["duration_seconds"].is_i64(), "{runs}");
    assert!(runs[0]["started_at"].is_string(), "{runs}");

    let out = fleet.dir.path().join("again");
    let unknown = cli(
        &fleet,
        &[
            "report",
            "--out",
            path(&out),
            "--run",
            "nope",
            "--state-dir",
            &state,
        ],
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no run nope in")
            && stderr(&unknown).contains("`cmafleet runs` lists the runs"),
        "{}",
        stderr(&unknown)
    );
    let listed = cli(
        &fleet,
        &[
            "report",
            "--out",
            path(&out),
            "--run",
            &ids[1],
            "--state-dir",
            &state,
        ],
    );
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert!(out.join("report.html").is_file());
}
#[test]
fn status_without_a_store_says_where_one_might_be() {
    let dir = tempfile::tempdir().unwrap();
    // A store two levels down (as `cmafleet demo` leaves one), and a settings file that
    // points elsewhere.
    std::fs::create_dir_all(dir.path().join("cmafleet-demo/state")).unwrap();
    std::fs::write(dir.path().join("cmafleet-demo/state/state.db"), "").unwrap();
    std::fs::write(
        dir.path().join("nightly.toml"),
        "state-dir = \"nightly-state\"\n",
    )
    .unwrap();
    for args in [
        vec!["status"],
        vec!["status", "--config", "nightly.toml"],
        vec!["runs"],
        vec!["report", "--out", "r"],
    ] {
        let output = cmafleet()
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(73), "{args:?}: {said}");
        assert!(
            said.contains("default ./cmafleet-state")
                && said.contains("CMAFLEET_STATE_DIR")
                && said.contains("`state-dir` in its --config file"),
            "{args:?}: {said}"
        );
        assert!(
            said.contains("state stores nearby: cmafleet-demo/state"),
            "{said}"
        );
        if args.contains(&"--config") {
            assert!(said.contains("no state store in nightly-state"), "{said}");
            assert!(
                said.contains("nightly.toml sets state-dir = nightly-state"),
                "{said}"
            );
        } else {
            assert!(said.contains("no state store in cmafleet-state"), "{said}");
        }
    }
    assert!(
        !dir.path().join("cmafleet-state").exists(),
        "nothing created"
    );
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_site_shows_the_message_failed_checks_and_the_next_step() {
    let rows = vec![Row::jira("anon"), Row::jira("disk"), Row::jira("fine")];
    let fleet = Fleet::start(BLOCKING, SCALE, rows).await;
    let check = fleet.run("check", "check", &[]).await;
    assert_eq!(check.code, 1, "{}", check.stderr);
    let state = path(&fleet.state_dir()).to_owned();
    let site = |name: &str| cli(&fleet, &["status", "--state-dir", &state, "--site", name]);

    let anon = site("anon");
    assert_eq!(anon.status.code(), Some(0), "{}", stderr(&anon));
    let text = stdout(&anon);
    assert!(text.starts_with("anon\n  outcome:  blocked\n"), "{text}");
    assert!(text.contains("  message:  "), "{text}");
    assert!(text.contains("AnonPermission  excludable"), "{text}");
    let report = fleet.report_dir("check").join("sites/anon.json");
    assert!(
        text.contains(&format!("  report:   {}\n", report.display())),
        "{text}"
    );
    let next = text.lines().last().unwrap();
    assert!(
        next.starts_with("next: the failed checks may be overridden: rerun with `--override-checks AnonPermission`"),
        "{text}"
    );
    // The command it gives runs as printed (with the harness's API and rates added).
    let printed = next.rsplit('`').nth(1).unwrap();
    let mut words: Vec<String> = printed.split_whitespace().map(str::to_owned).collect();
    assert_eq!(words.remove(0), "cmafleet");
    let harness = args_of(&fleet.command("migrate", "override"));
    let at = harness
        .iter()
        .position(|arg| arg == "--report-dir")
        .unwrap();
    let mut rerun = Fleet::binary();
    rerun.args(&words).args(&harness[at..]);
    let migrated = Fleet::output(rerun).await;
    assert_eq!(migrated.code, 0, "{printed}: {}", migrated.stderr);
    assert_eq!(fleet.summary("override")["anon"]["outcome"], "warnings");

    let disk = stdout(&site("disk"));
    assert!(
        disk.contains("MissingAttachments  not excludable"),
        "{disk}"
    );
    assert!(
        disk.lines()
            .last()
            .unwrap()
            .starts_with("next: fix MissingAttachments on the server"),
        "{disk}"
    );
    let fine = stdout(&site("fine"));
    assert!(
        fine.contains("next: checks passed: migrate it with `cmafleet run "),
        "{fine}"
    );
    let json = cli(
        &fleet,
        &[
            "status",
            "--state-dir",
            &state,
            "--site",
            "disk",
            "--format",
            "json",
        ],
    );
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["outcome"], "blocked");
    assert_eq!(json["failed_checks"][0]["name"], "MissingAttachments");
    assert_eq!(json["failed_checks"][0]["excludable"], false);
    assert!(
        json["next_step"]
            .as_str()
            .unwrap()
            .starts_with("fix MissingAttachments")
    );

    let typo = site("anno");
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        stderr(&typo).contains("did you mean `anon`?"),
        "{}",
        stderr(&typo)
    );
}

/// A run given a relative `--report-dir` records where its files are, so `report --out`
/// started from another directory still brings the run's artifacts into the new report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_report_dir_is_found_again_from_elsewhere() {
    let fleet = Fleet::start("", SCALE, vec![Row::jira("acme")]).await;
    let planned = fleet.command("check", "unused");
    let mut command = crate::support::fleet::with_flag(
        &planned,
        "--report-dir",
        std::ffi::OsStr::new("nightly/check"),
    );
    command.current_dir(fleet.dir.path());
    let run = Fleet::output(command).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written = fleet.dir.path().join("nightly/check");
    let run_json: Value =
        serde_json::from_slice(&std::fs::read(written.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run_json["options"]["report_dir"],
        written.display().to_string(),
        "recorded as an absolute path"
    );

    let out = fleet.dir.path().join("again");
    let mut report = fleet.cli();
    report
        .args(["report", "--out", path(&out), "--state-dir"])
        .arg(fleet.state_dir());
    let report = Fleet::output(report).await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let site: Value =
        serde_json::from_slice(&std::fs::read(out.join("sites/acme.json")).unwrap()).unwrap();
    let artifacts = site["artifacts"].as_array().expect("the check's artifacts");
    assert!(!artifacts.is_empty());
    for artifact in artifacts {
        let saved_as = artifact["saved_as"]
            .as_str()
            .unwrap_or_else(|| panic!("{artifact}"));
        assert!(out.join(saved_as).is_file(), "{saved_as}");
    }
}

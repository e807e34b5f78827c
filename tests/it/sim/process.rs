//! `cmafleet sim` as a process: it prints where it listens, answers like the library, stops
//! on SIGINT, and refuses a bad scenario file naming the line.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::*;

const BIN: &str = env!("CARGO_BIN_EXE_cmafleet");

#[tokio::test]
async fn cmafleet_sim_prints_its_address_and_answers_there() {
    let mut child = Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0", "--time-scale", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cmafleet runs");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the address is printed")
        .unwrap()
        .unwrap();
    let base = line
        .strip_prefix("listening on http://127.0.0.1:")
        .map(|port| format!("http://127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("unexpected first line: {line}"));
    let http = reqwest::Client::new();
    let anonymous = http
        .get(format!("{base}{CLOUD}/jobs/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let created = http
        .post(format!("{base}{CLOUD}/jobs"))
        .basic_auth(ALICE, Some("tok"))
        .json(&jira_job("acme-jira", ACME, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let counters: RequestCounters = http
        .get(format!("{base}/_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters.jobs_created["acme-jira"][ACME], 1);

    let pid = child.id().expect("still running").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(signalled.success());
    let exited = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    assert!(exited.is_ok(), "the simulator stops on SIGINT");
}

#[tokio::test]
async fn a_bad_scenario_file_is_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "seed = 1\n[servers.acme-jira]\nconected = false\n").unwrap();

    let error = Scenario::load(&path).unwrap_err().to_string();
    assert!(error.starts_with(&path.display().to_string()), "{error}");
    assert!(
        error.contains("line 3") && error.contains("unknown field `conected`"),
        "{error}"
    );

    let yaml = dir.path().join("broken.yaml");
    std::fs::write(&yaml, "servers:\n  acme-jira:\n    check_duration: soon\n").unwrap();
    let error = Scenario::load(&yaml).unwrap_err().to_string();
    assert!(
        error.contains("line 3") && error.contains("invalid duration `soon`"),
        "{error}"
    );

    let output = Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0", "--scenario"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(i32::from(cmafleet::exit::CONFIG))
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("conected"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing listens");
}

#[tokio::test]
async fn the_example_and_demo_scenarios_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories");
    for file in ["scenario-example.toml", "demo-scenario.toml"] {
        let loaded = Scenario::load(&root.join(file));
        assert!(loaded.is_ok(), "{file}: {:?}", loaded.err());
    }
}

#[tokio::test]
async fn cmafleet_sim_prints_the_shapes_it_serves_and_takes_a_seed() {
    let mut child = Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0", "--shapes", "random"])
        .args(["--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cmafleet runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a line is printed")
            .unwrap()
            .unwrap()
    };
    let listening = next_line().await;
    assert!(listening.starts_with("listening on "), "{listening}");
    let shapes = next_line().await;
    assert_eq!(
        shapes,
        Scenario::default().with_random_shapes(7).shapes_summary()
    );
    assert!(shapes.ends_with(" random_seed=7"), "{shapes}");
    child.kill().await.unwrap();

    let documented = Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0", "--seed", "7"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        documented.status.code(),
        Some(i32::from(cmafleet::exit::USAGE)),
        "a seed without --shapes random is refused"
    );
    assert!(String::from_utf8_lossy(&documented.stderr).contains("--shapes random"));
}

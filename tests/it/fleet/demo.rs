//! `cmafleet demo`: the one-command tour exits 0, tells the fleet's story (the outcomes its
//! scenario was written to show), and says where both reports are. (At the default time scale
//! it takes about 6 s here; that is measured by hand, not asserted.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::fleet::{Fleet, RunOutput, read_summary};

async fn demo(out: &Path) -> RunOutput {
    let mut command = Fleet::binary();
    // Outside the checkout, as after `cargo install`: the hints name the binary by its path.
    command.current_dir(out.parent().unwrap_or(out));
    command.arg("demo").arg("--out").arg(out).args([
        "--time-scale",
        "20000",
        "--progress",
        "never",
    ]);
    Fleet::output(command).await
}

/// The path printed after `label` on stdout (`check report: /…/report.html`).
fn printed_path(stdout: &str, label: &str) -> PathBuf {
    let line = stdout
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{stdout}"));
    PathBuf::from(line[label.len()..].trim())
}

fn outcome_counts(summary: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for row in read_summary(summary).values() {
        *counts.entry(row["outcome"].clone()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_exits_0_and_says_where_both_reports_are() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let output = demo(&out).await;
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);

    let check = printed_path(&output.stdout, "check report:");
    let migrate = printed_path(&output.stdout, "migrate report:");
    assert_eq!(check, out.join("check").join("report.html"));
    assert_eq!(migrate, out.join("migrate").join("report.html"));
    for report in [&check, &migrate] {
        let dir = report.parent().unwrap();
        for file in ["report.html", "summary.csv", "summary.md", "run.json"] {
            assert!(dir.join(file).is_file(), "{}", dir.join(file).display());
        }
        assert_eq!(std::fs::read_dir(dir.join("sites")).unwrap().count(), 12);
    }
    assert!(out.join("state").is_dir());
    assert!(
        output
            .stdout
            .contains("Live status page: http://127.0.0.1:"),
        "{}",
        output.stdout
    );

    // The story the demo scenario tells: mostly healthy, some warnings, one blocked by a
    // failed check, one not connected, one whose migration fails a scope.
    let count = |pairs: &[(&str, usize)]| -> BTreeMap<String, usize> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    assert_eq!(
        outcome_counts(&check.with_file_name("summary.csv")),
        count(&[("blocked", 2), ("succeeded", 8), ("warnings", 2)])
    );
    assert_eq!(
        outcome_counts(&migrate.with_file_name("summary.csv")),
        count(&[
            ("blocked", 2),
            ("failed", 1),
            ("succeeded", 7),
            ("warnings", 2)
        ])
    );

    // The explanation of the site whose cloud site is not connected is said once a run, not
    // once per log line, summary and hint.
    let both = format!("{}{}", output.stdout, output.stderr);
    let said = both.matches("not connected to this server").count();
    assert!((1..=2).contains(&said), "said {said} times:\n{both}");

    // The commands it suggests run as printed.
    let hints: Vec<&str> = output
        .stdout
        .lines()
        .skip_while(|line| !line.starts_with("State store: "))
        .skip(1)
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("The status page"))
        .collect();
    assert_eq!(hints.len(), 3, "{}", output.stdout);
    for hint in &hints {
        let ran = std::process::Command::new("sh")
            .args(["-c", hint])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&ran.stdout);
        assert_eq!(
            ran.status.code(),
            Some(0),
            "`{hint}`: {stdout}{}",
            String::from_utf8_lossy(&ran.stderr)
        );
        assert!(
            stdout.contains("hooli-jira") || stdout.contains("migrate"),
            "`{hint}`: {stdout}"
        );
    }
    let site = hints.iter().find(|hint| hint.contains("--site")).unwrap();
    let ran = std::process::Command::new("sh")
        .args(["-c", site])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("--connect"),
        "the site's next step: {}",
        String::from_utf8_lossy(&ran.stdout)
    );

    // A second demo into the same dir clears what the first left and runs again.
    let again = demo(&out).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        std::fs::read_dir(out.join("check").join("sites"))
            .unwrap()
            .count(),
        12
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_refuses_a_dir_it_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
    let output = demo(dir.path()).await;
    assert_eq!(output.code, 73, "{}", output.stderr);
    assert!(output.stderr.contains("--out"), "{}", output.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("precious.txt")).unwrap(),
        "keep me"
    );
}

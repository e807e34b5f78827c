//! Scale-out: `--shard I/N` (or I from `JOB_COMPLETION_INDEX` with `--shards N`) takes the
//! rows whose cloud user hashes to I, so shards cover the fleet exactly once and each cloud
//! user — and so each user's rate limits — lives in one process. A sharded run names its
//! shard in its logs, in `run.json` and in the Pushgateway group it pushes to.

use std::collections::{BTreeMap, BTreeSet};

use cmafleet::config::Shard;

use crate::support::fleet::{Fleet, Row, read_summary, with_flag};
use crate::support::prometheus::Pushgateway;

/// Three cloud users, at least one in each of two shards (the hash is stable, so this is
/// the same list on every machine).
fn three_users() -> Vec<String> {
    let candidates: Vec<String> = (0..64).map(|n| format!("admin{n}@example.com")).collect();
    let zero = Shard { index: 0, count: 2 };
    let in_zero: Vec<&String> = candidates.iter().filter(|u| zero.owns(u)).collect();
    let in_one: Vec<&String> = candidates.iter().filter(|u| !zero.owns(u)).collect();
    vec![in_zero[0].clone(), in_zero[1].clone(), in_one[0].clone()]
}

/// Eight sites of three users, interleaved in inventory order.
fn rows(users: &[String]) -> Vec<Row> {
    (0..8)
        .map(|n| Row::jira(&format!("site{n}")).user(&users[n % users.len()]))
        .collect()
}

fn cmafleet() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cmafleet"));
    command
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("RUST_LOG");
    command
}

/// `plan --format json` with `extra`: site → cloud user.
fn planned(fleet: &Fleet, extra: &[&str], index: Option<&str>) -> BTreeMap<String, String> {
    let mut command = cmafleet();
    command
        .arg("plan")
        .arg(&fleet.inventory)
        .args(["--mode", "check", "--format", "json", "--state-dir"])
        .arg(fleet.state_dir())
        .args(extra);
    if let Some(index) = index {
        command.env("JOB_COMPLETION_INDEX", index);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "plan {extra:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    plan["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|site| {
            (
                site["site"].as_str().unwrap().to_owned(),
                site["cloud_user"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_shards_cover_every_site_once_and_keep_each_users_sites_together() {
    let users = three_users();
    let fleet = Fleet::start("", 3600.0, rows(&users)).await;
    let whole = planned(&fleet, &[], None);
    assert_eq!(whole.len(), 8);
    let zero = planned(&fleet, &["--shard", "0/2"], None);
    let one = planned(&fleet, &["--shard", "1/2"], None);
    assert!(!zero.is_empty() && !one.is_empty(), "{zero:?} {one:?}");

    let mut union: BTreeMap<String, String> = zero.clone();
    for (site, user) in &one {
        assert!(
            union.insert(site.clone(), user.clone()).is_none(),
            "{site} is in both shards"
        );
    }
    assert_eq!(union, whole, "together the shards are the whole fleet");
    let users_of =
        |plan: &BTreeMap<String, String>| -> BTreeSet<String> { plan.values().cloned().collect() };
    assert!(
        users_of(&zero).is_disjoint(&users_of(&one)),
        "a cloud user lives in one shard: {:?} / {:?}",
        users_of(&zero),
        users_of(&one)
    );
    for (site, user) in &whole {
        let owner = if zero.contains_key(site) { &zero } else { &one };
        let all_of_user = whole.iter().filter(|(_, u)| *u == user).count();
        let in_owner = owner.values().filter(|u| *u == user).count();
        assert_eq!(in_owner, all_of_user, "every site of {user} with {site}");
    }

    // A Kubernetes Indexed Job: the index from JOB_COMPLETION_INDEX, N from --shards.
    assert_eq!(planned(&fleet, &["--shards", "2"], Some("0")), zero);
    assert_eq!(planned(&fleet, &["--shards", "2"], Some("1")), one);
    let without = cmafleet()
        .arg("plan")
        .arg(&fleet.inventory)
        .args(["--mode", "check", "--shards", "2"])
        .output()
        .unwrap();
    assert_eq!(
        without.status.code(),
        Some(2),
        "--shards needs JOB_COMPLETION_INDEX"
    );
    assert!(String::from_utf8_lossy(&without.stderr).contains("JOB_COMPLETION_INDEX"));
    let outside = cmafleet()
        .arg("plan")
        .arg(&fleet.inventory)
        .args(["--mode", "check", "--shards", "2"])
        .env("JOB_COMPLETION_INDEX", "2")
        .output()
        .unwrap();
    assert_eq!(
        outside.status.code(),
        Some(2),
        "index 2 of 2 is a usage error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_run_names_its_shard_in_logs_run_json_and_the_pushgateway_group() {
    let users = three_users();
    let fleet = Fleet::start(
        "[defaults]\ncheck_duration = \"2m\"\n",
        3600.0,
        rows(&users),
    )
    .await;
    let gateway = Pushgateway::start(None).await;
    let mut command = fleet.command("check", "shard1");
    command
        .args(["--shards", "2", "--log-format", "json"])
        .env("JOB_COMPLETION_INDEX", "1");
    if let Some(gateway) = &gateway {
        command.args(["--pushgateway", gateway.url().as_str()]);
    }
    let output = Fleet::output(command).await;
    assert_eq!(output.code, 0, "{}", output.stderr);

    let shard = Shard { index: 1, count: 2 };
    let mine: BTreeSet<String> = rows(&users)
        .into_iter()
        .filter(|row| shard.owns(&row.cloud_user))
        .map(|row| row.site)
        .collect();
    let reported: BTreeSet<String> = fleet.summary("shard1").into_keys().collect();
    assert_eq!(reported, mine, "the run took its shard's sites only");

    let run: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fleet.report_dir("shard1").join("run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(run["shard"], "1/2", "{run}");

    let lines: Vec<serde_json::Value> = output
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let site_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["site"].is_string())
        .collect();
    assert!(!site_lines.is_empty());
    for line in &site_lines {
        assert_eq!(line["shard"], "1/2", "{line}");
    }
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .unwrap()
            .starts_with("starting the run")
            && l["shard"] == "1/2"),
        "the start line names the shard"
    );

    let Some(gateway) = gateway else { return };
    let text = gateway.metrics().await;
    let pushed: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("cmafleet_sites{"))
        .collect();
    assert!(!pushed.is_empty(), "{text}");
    for line in &pushed {
        assert!(
            line.contains("job=\"cmafleet\"")
                && line.contains("mode=\"check\"")
                && line.contains("shard=\"1\""),
            "grouped by job, mode and shard: {line}"
        );
    }
    let succeeded = pushed
        .iter()
        .find(|line| line.contains("outcome=\"succeeded\""))
        .unwrap();
    assert!(
        succeeded.ends_with(&format!(" {}", mine.len())),
        "{succeeded}"
    );
}

/// A fleet run as two shards, each with its own state dir (as the Indexed Job's pods are):
/// `report --state-dirs` renders one fleet report from both stores, `status --state-dirs`
/// one table, every site once with its shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_report_and_one_status_over_the_state_stores_of_two_shards() {
    let users = three_users();
    let fleet = Fleet::start(
        "[defaults]\ncheck_duration = \"2m\"\nmigrate_duration = \"5m\"\n",
        3600.0,
        rows(&users),
    )
    .await;
    let stores = [
        fleet.dir.path().join("shard-0"),
        fleet.dir.path().join("shard-1"),
    ];
    let run = |mode: &str, index: usize| {
        let mut command = with_flag(
            &fleet.command(mode, &format!("{mode}{index}")),
            "--state-dir",
            stores[index].as_os_str(),
        );
        command.args(["--shard", &format!("{index}/2")]);
        Fleet::output(command)
    };
    for index in [0, 1] {
        let output = run("check", index).await;
        assert_eq!(output.code, 0, "shard {index}: {}", output.stderr);
    }
    // The first store's latest run is then a migration, which the second store never ran.
    let output = run("migrate", 0).await;
    assert_eq!(output.code, 0, "{}", output.stderr);

    let shard_of = |site: &str| {
        let row = rows(&users)
            .into_iter()
            .find(|row| row.site == site)
            .unwrap();
        let zero = Shard { index: 0, count: 2 };
        if zero.owns(&row.cloud_user) {
            "0/2"
        } else {
            "1/2"
        }
    };
    let out = fleet.dir.path().join("fleet-report");
    let report = |extra: &[&str]| {
        let mut command = fleet.cli();
        command
            .args(["report", "--out"])
            .arg(&out)
            .arg("--state-dirs")
            .args(&stores)
            .args(extra);
        Fleet::output(command)
    };

    let refused = report(&[]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("no migrate run in {}", stores[1].display()))
            && refused.stderr.contains("--mode"),
        "{}",
        refused.stderr
    );

    let written = report(&["--mode", "check"]).await;
    assert_eq!(written.code, 0, "{}", written.stderr);
    assert!(
        written.stdout.contains("8 reports of check runs"),
        "{}",
        written.stdout
    );
    let summary = read_summary(&out.join("summary.csv"));
    assert_eq!(summary.len(), 8, "every site once: {:?}", summary.keys());
    for (site, row) in &summary {
        assert_eq!(row["shard"], shard_of(site), "{site}");
        assert_eq!(row["outcome"], "succeeded", "{site}");
        assert_eq!(row["mode"], "check", "{site}");
    }
    // Each shard's artifacts come along, from the report dir its own run wrote.
    let mut artifacts = 0;
    for site in summary.keys() {
        let path = out.join("sites").join(format!("{site}.json"));
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for artifact in report["artifacts"].as_array().into_iter().flatten() {
            let saved_as = artifact["saved_as"].as_str().expect("saved");
            assert!(out.join(saved_as).is_file(), "{site}: {saved_as}");
            artifacts += 1;
        }
    }
    assert!(artifacts > 0, "the check tasks' artifacts");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<th scope=\"col\">Shard</th>"));
    assert!(html.contains("\"sharded\":true"));
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["counts"]["succeeded"], 8);
    assert_eq!(run_json["exit_code"], 0);
    let notes = run_json["notes"][0].as_str().unwrap();
    assert!(
        notes.starts_with("one report over 2 state stores: 0/2 (")
            && notes.contains(&stores[1].display().to_string()),
        "{notes}"
    );

    let mut status = fleet.cli();
    status
        .args(["status", "--format", "json", "--state-dirs"])
        .args(&stores);
    let status = Fleet::output(status).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let stores_seen: Vec<(&str, &str)> = status["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|store| {
            (
                store["shard"].as_str().unwrap(),
                store["latest_run"]["mode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(stores_seen, [("0/2", "migrate"), ("1/2", "check")]);
    assert_eq!(
        status["latest_run"]["mode"], "migrate",
        "the newest of the stores' runs"
    );
    let sites = status["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 8);
    for site in sites {
        let name = site["site"].as_str().unwrap();
        assert_eq!(site["shard"], shard_of(name), "{name}");
    }
    assert_eq!(status["counts"]["succeeded"], 8);

    let mut table = fleet.cli();
    table.args(["status", "--state-dirs"]).args(&stores);
    let table = Fleet::output(table).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("\nSITE   SHARD  STAGE"),
        "{}",
        table.stdout
    );
    for site in summary.keys() {
        let lines: Vec<&str> = table
            .stdout
            .lines()
            .filter(|line| line.split_whitespace().next() == Some(site.as_str()))
            .collect();
        assert_eq!(lines.len(), 1, "{site} once: {}", table.stdout);
        assert!(lines[0].contains(shard_of(site)), "{}", lines[0]);
    }
    assert!(
        table.stdout.contains("\n8 sites: succeeded 8\n"),
        "{}",
        table.stdout
    );
}

//! The life of a state dir across runs, with the real binary against the simulator: the run
//! lock, `status`, `report` and `plan` on a finished run, job reuse between check runs, no
//! re-migration without `--remigrate`, and the documented `sqlite3` queries on a real store.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::crash::{Fate, SiteSpec, killed_run, scenario, try_journal};
use crate::support::fleet::{Fleet, Row};

fn rows(sites: &[SiteSpec]) -> Vec<Row> {
    sites.iter().map(|site| site.row.clone()).collect()
}

fn state_dir_arg(fleet: &Fleet) -> String {
    fleet.state_dir().display().to_string()
}

/// `cmafleet status --format json` on the fleet's state dir.
async fn status_json(fleet: &Fleet) -> serde_json::Value {
    let output = fleet
        .cli_run(&[
            "status",
            "--state-dir",
            &state_dir_arg(fleet),
            "--format",
            "json",
        ])
        .await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    serde_json::from_str(&output.stdout).unwrap()
}

/// Each site of a `status --format json` document, by name.
fn status_sites(status: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    status["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|site| (site["site"].as_str().unwrap().to_owned(), site.clone()))
        .collect()
}

/// `cmafleet plan INVENTORY --mode MODE --format json` with the fleet's state dir.
async fn plan_json(fleet: &Fleet, mode: &str, extra: &[&str]) -> serde_json::Value {
    let inventory = fleet.inventory.display().to_string();
    let state_dir = state_dir_arg(fleet);
    let mut args = vec![
        "plan",
        &inventory,
        "--mode",
        mode,
        "--state-dir",
        &state_dir,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let output = fleet.cli_run(&args).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    serde_json::from_str(&output.stdout).unwrap()
}

fn plan_sites(plan: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    plan["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|site| (site["site"].as_str().unwrap().to_owned(), site.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_a_state_dir_in_use_exits_75_at_once_naming_the_holder() {
    let sites = vec![
        SiteSpec::new(Row::jira("long-a"), Fate::Succeeded),
        SiteSpec::new(Row::confluence("long-b"), Fate::Succeeded),
    ];
    // Migrations of 4 simulated hours: about 4 s at ×3600, long enough to overlap.
    let extra = "[servers.long-a]\nmigrate_duration = \"4h\"\n[servers.long-b]\nmigrate_duration = \"4h\"\n";
    let fleet = Fleet::start(&scenario(3, &sites, extra), 3600.0, rows(&sites)).await;
    let mut first = fleet.command("migrate", "first");
    first.current_dir(fleet.dir.path());
    let mut first = first.spawn().unwrap();
    let pid = first.id().unwrap();
    let lock = fleet.state_dir().join("lock");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .contains(&format!("pid={pid}\n"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first run never took the lock"
        );
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = fleet.run("check", "second", &[]).await;
    assert!(
        first.try_wait().unwrap().is_none(),
        "the second run gave up while the first still ran"
    );
    assert_eq!(second.code, 75, "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!("pid {pid}")) && second.stderr.contains("started"),
        "names the holder and when it started: {}",
        second.stderr
    );
    let status = tokio::time::timeout(Duration::from_secs(120), first.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "the first run is unaffected");
    let summary = fleet.summary("first");
    assert!(summary.values().all(|row| row["outcome"] == "succeeded"));
    let counters = fleet.counters().await;
    assert_eq!(
        counters.task_creates.by_type.get("check"),
        None,
        "the second run created nothing"
    );
    assert_eq!(counters.task_creates.total, 2);
    assert!(
        !fleet.report_dir("second").join("summary.csv").exists(),
        "the second run wrote no reports"
    );
}

/// Three sites (two of one cloud user), one of them named as in docs/state.md's examples.
fn finished_fleet_sites() -> Vec<SiteSpec> {
    vec![
        SiteSpec::new(Row::jira("acme-jira"), Fate::Succeeded),
        SiteSpec::new(Row::confluence("acme-wiki"), Fate::Warnings),
        SiteSpec::new(
            Row::jira("beta-jira").user("bob@example.com"),
            Fate::Blocked,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_report_and_plan_read_the_state_dir_of_a_finished_run() {
    let sites = finished_fleet_sites();
    let fleet = Fleet::start(&scenario(4, &sites, ""), 3600.0, rows(&sites)).await;
    let run = fleet.run("migrate", "migrate", &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run_id = fleet.run_json("migrate")["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let summary = fleet.summary("migrate");

    // status, as JSON and as a table.
    let status = status_json(&fleet).await;
    assert_eq!(status["latest_run"]["run_id"], run_id.as_str());
    assert_eq!(status["latest_run"]["exit_code"], 1);
    let by_site = status_sites(&status);
    for spec in &sites {
        let site = &by_site[&spec.row.site];
        assert_eq!(site["outcome"], spec.fate.outcome(), "{site}");
        assert_eq!(site["stage"], "done", "{site}");
        assert_eq!(
            site["job_id"].as_str(),
            Some(summary[&spec.row.site]["job_id"].as_str())
        );
        assert_eq!(
            site["task_id"].as_str(),
            Some(summary[&spec.row.site]["task_id"].as_str())
        );
        assert_eq!(site["task_kind"], "migrate");
        let migrated = matches!(spec.fate, Fate::Succeeded | Fate::Warnings);
        assert_eq!(!site["migrated_at"].is_null(), migrated, "{site}");
    }
    assert_eq!(status["counts"]["succeeded"], 1);
    assert_eq!(status["counts"]["warnings"], 1);
    assert_eq!(status["counts"]["blocked"], 1);
    let table = fleet
        .cli_run(&["status", "--state-dir", &state_dir_arg(&fleet)])
        .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains(&format!("latest run {run_id}")),
        "{}",
        table.stdout
    );
    for spec in &sites {
        let line = table
            .stdout
            .lines()
            .find(|line| line.starts_with(&spec.row.site))
            .unwrap_or_else(|| panic!("{} in\n{}", spec.row.site, table.stdout));
        assert!(line.contains(spec.fate.outcome()), "{line}");
        assert!(line.contains(&summary[&spec.row.site]["job_id"]), "{line}");
    }
    assert!(
        table
            .stdout
            .contains("3 sites: succeeded 1, warnings 1, blocked 1")
    );

    // report, of that run by id and of the latest run.
    let out = fleet.dir.path().join("rerendered");
    let out_arg = out.display().to_string();
    let report = fleet
        .cli_run(&[
            "report",
            "--out",
            &out_arg,
            "--run",
            &run_id,
            "--state-dir",
            &state_dir_arg(&fleet),
        ])
        .await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let rerendered = crate::support::fleet::read_summary(&out.join("summary.csv"));
    for (site, row) in &summary {
        for column in ["outcome", "job_id", "task_id", "checks_failed", "message"] {
            assert_eq!(rerendered[site][column], row[column], "{site} {column}");
        }
    }
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["run_id"], run_id.as_str());
    assert_eq!(run_json["exit_code"], 1);
    for spec in &sites {
        assert!(
            out.join("sites")
                .join(format!("{}.json", spec.row.site))
                .is_file()
        );
    }
    assert!(
        std::fs::read_to_string(out.join("report.html"))
            .unwrap()
            .contains("acme-wiki")
    );
    // The re-rendered report is whole: its artifact links lead to the files the run saved.
    let artifacts_of = |dir: &std::path::Path| -> Vec<serde_json::Value> {
        sites
            .iter()
            .flat_map(|spec| {
                let path = dir.join("sites").join(format!("{}.json", spec.row.site));
                let report: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
                report["artifacts"].as_array().cloned().unwrap_or_default()
            })
            .collect()
    };
    let brought = artifacts_of(&out);
    assert!(!brought.is_empty(), "the migrated sites have artifacts");
    for artifact in &brought {
        let saved_as = artifact["saved_as"].as_str().expect("still saved");
        assert_eq!(
            std::fs::read(out.join(saved_as)).unwrap(),
            std::fs::read(fleet.report_dir("migrate").join(saved_as)).unwrap(),
            "{saved_as}"
        );
    }
    // Once the run's own files are gone, a re-rendered report says where they were.
    std::fs::remove_dir_all(fleet.report_dir("migrate").join("artifacts")).unwrap();
    let gone = fleet.dir.path().join("gone");
    let rendered = fleet
        .cli_run(&[
            "report",
            "--out",
            gone.to_str().unwrap(),
            "--run",
            &run_id,
            "--state-dir",
            &state_dir_arg(&fleet),
        ])
        .await;
    assert_eq!(rendered.code, 0, "{}", rendered.stderr);
    for artifact in artifacts_of(&gone) {
        assert!(artifact["saved_as"].is_null(), "{artifact}");
        assert!(
            artifact["error"]
                .as_str()
                .is_some_and(|error| error.ends_with("no longer there")),
            "{artifact}"
        );
    }
    let latest = fleet.dir.path().join("latest");
    let latest_arg = latest.display().to_string();
    let report = fleet
        .cli_run(&[
            "report",
            "--out",
            &latest_arg,
            "--state-dir",
            &state_dir_arg(&fleet),
        ])
        .await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert_eq!(
        std::fs::read(latest.join("summary.csv")).unwrap(),
        std::fs::read(out.join("summary.csv")).unwrap()
    );
    let unknown = fleet
        .cli_run(&[
            "report",
            "--out",
            &latest_arg,
            "--run",
            "no-such-run",
            "--state-dir",
            &state_dir_arg(&fleet),
        ])
        .await;
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);

    // plan: migrated sites are done, the blocked one reuses its job.
    let plan = plan_json(&fleet, "migrate", &[]).await;
    let planned = plan_sites(&plan);
    for spec in &sites {
        let site = &planned[&spec.row.site];
        match spec.fate {
            Fate::Succeeded | Fate::Warnings => {
                assert_eq!(site["action"], "skip: done (already migrated)", "{site}");
                assert_eq!(site["creates_tasks"], 0);
            }
            _ => {
                let job = &summary[&spec.row.site]["job_id"];
                assert_eq!(site["job"], format!("reuse job {job}"), "{site}");
                assert_eq!(site["action"], "create migrate task");
                assert_eq!(site["creates_job"], false);
            }
        }
    }
    let check_plan = plan_json(&fleet, "check", &[]).await;
    for (site, planned) in plan_sites(&check_plan) {
        let job = &summary[&site]["job_id"];
        assert_eq!(planned["job"], format!("reuse job {job}"), "{planned}");
        assert_eq!(planned["action"], "create check task");
    }
    let again = plan_json(&fleet, "migrate", &["--remigrate"]).await;
    assert!(
        plan_sites(&again)
            .values()
            .all(|site| site["action"] == "create migrate task"),
        "{again}"
    );
    let table = fleet
        .cli_run(&[
            "plan",
            &fleet.inventory.display().to_string(),
            "--mode",
            "migrate",
            "--state-dir",
            &state_dir_arg(&fleet),
        ])
        .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("skip: done"), "{}", table.stdout);
    assert!(table.stdout.contains("Lower bound on the run's length"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_bound_follows_the_rate_formula() {
    let one_user: Vec<Row> = (0..10)
        .map(|n| Row::jira(&format!("site-{n:02}")))
        .collect();
    let fleet = Fleet::start("", 3600.0, one_user).await;
    let rates = ["--rate-create-job", "5/min", "--rate-create-task", "5/min"];
    let mut args = vec!["--task-duration", "5m"];
    args.extend_from_slice(&rates);
    let plan = plan_json(&fleet, "check", &args).await;
    // 10 task creates at 5/min, burst 1: (10 − 1) × 12 s, then the last task's 300 s.
    assert_eq!(plan["bound_seconds"], 9.0 * 12.0 + 300.0, "{plan}");
    assert_eq!(plan["users"][0]["create_task"], 10);
    assert_eq!(plan["users"][0]["create_job"], 10);
    assert_eq!(plan["users"][0]["rate_bound_seconds"], 108.0);
    assert!(
        plan["bound_by"]
            .as_str()
            .unwrap()
            .contains("alice@example.com")
    );

    let mut slower = vec!["--task-duration", "5m", "--rate-create-task", "2/min"];
    slower.extend_from_slice(&["--rate-create-job", "5/min"]);
    let plan = plan_json(&fleet, "check", &slower).await;
    assert_eq!(plan["bound_seconds"], 9.0 * 30.0 + 300.0, "{plan}");

    let mut capped = args.clone();
    capped.extend_from_slice(&["--concurrency", "2"]);
    let plan = plan_json(&fleet, "check", &capped).await;
    // Five rounds of two sites, each round at least one task long.
    assert_eq!(plan["bound_seconds"], 5.0 * 300.0, "{plan}");
    assert!(plan["bound_by"].as_str().unwrap().contains("--concurrency"));

    let mut precheck = args.clone();
    precheck.push("--precheck");
    let plan = plan_json(&fleet, "migrate", &precheck).await;
    // 20 task creates: (20 − 1) × 12 s, then a Check and a Migrate task one after the other.
    assert_eq!(plan["bound_seconds"], 19.0 * 12.0 + 600.0, "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_site_is_never_migrated_again_unless_remigrate() {
    let sites = vec![
        SiteSpec::new(Row::jira("done-a"), Fate::Succeeded),
        SiteSpec::new(
            Row::confluence("done-b").user("bob@example.com"),
            Fate::Warnings,
        ),
    ];
    // Long checks, so that a check run can be killed while its tasks run.
    let extra =
        "[servers.done-a]\ncheck_duration = \"2h\"\n[servers.done-b]\ncheck_duration = \"2h\"\n";
    let fleet = Fleet::start(&scenario(9, &sites, extra), 3600.0, rows(&sites)).await;
    let migrate_tasks = |counters: &cmafleet::sim::RequestCounters| {
        counters
            .task_creates
            .by_type
            .get("migrate")
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(fleet.run("migrate", "first", &[]).await.code, 0);
    assert_eq!(migrate_tasks(&fleet.counters().await), 2);

    let again = fleet.run("migrate", "again", &[]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    for row in fleet.summary("again").values() {
        assert_eq!(row["outcome"], "skipped", "{row:?}");
        assert!(row["message"].contains("already migrated"), "{row:?}");
    }
    assert_eq!(
        migrate_tasks(&fleet.counters().await),
        2,
        "no new migration"
    );

    // A check run killed while its Check tasks run: they stay open in the journal, and still
    // no migrate run may migrate these sites again.
    let mut check = fleet.command("check", "killed-check");
    check
        .current_dir(fleet.dir.path())
        .stdout(std::process::Stdio::null());
    let mut child = check.spawn().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let open_checks = try_journal(&fleet.state_db())
            .unwrap_or_default()
            .iter()
            .filter(|row| row.kind == "check" && row.task_id.is_some() && !row.concluded)
            .count();
        if open_checks == sites.len() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no check task ran");
        assert!(child.try_wait().unwrap().is_none(), "the check run ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let after_kill = fleet.run("migrate", "after-kill", &[]).await;
    assert_eq!(after_kill.code, 0, "{}", after_kill.stderr);
    for row in fleet.summary("after-kill").values() {
        assert_eq!(row["outcome"], "skipped", "{row:?}");
    }
    assert_eq!(
        migrate_tasks(&fleet.counters().await),
        2,
        "an open check task does not let a migration start"
    );

    let remigrate = fleet.run("migrate", "remigrate", &["--remigrate"]).await;
    assert_eq!(remigrate.code, 0, "{}", remigrate.stderr);
    let summary = fleet.summary("remigrate");
    assert_eq!(summary["done-a"]["outcome"], "succeeded");
    assert_eq!(summary["done-b"]["outcome"], "warnings");
    assert_eq!(
        migrate_tasks(&fleet.counters().await),
        4,
        "--remigrate migrates again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_runs_reuse_each_job_until_its_row_changes() {
    let sites = vec![
        SiteSpec::new(Row::jira("keep-a"), Fate::Succeeded),
        SiteSpec::new(Row::jira("keep-b").user("bob@example.com"), Fate::Warnings),
        // A server named apart from its site, migrating to a cloud site named apart too.
        SiteSpec::new(
            Row::confluence("keep-c")
                .server("wiki-server")
                .cloud("https://wiki-cloud.atlassian.net"),
            Fate::Succeeded,
        ),
    ];
    let mut fleet = Fleet::start(&scenario(2, &sites, ""), 3600.0, rows(&sites)).await;
    assert_eq!(fleet.run("check", "first", &[]).await.code, 0);
    let first = fleet.counters().await;
    assert_eq!(
        first
            .jobs_created
            .values()
            .flat_map(|by| by.values())
            .sum::<u64>(),
        3
    );
    let jobs_before = fleet.summary("first");

    let second = fleet.run("check", "second", &[]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let counters = fleet.counters().await;
    assert_eq!(counters.jobs_created, first.jobs_created, "no job created");
    assert_eq!(counters.task_creates.by_type.get("check"), Some(&6));
    for (site, row) in fleet.summary("second") {
        assert_eq!(
            row["job_id"], jobs_before[&site]["job_id"],
            "{site} reuses its job"
        );
    }

    fleet.rows[1] = fleet.rows[1].clone().keys("ABC;XYZ");
    fleet.write_inventory();
    let third = fleet.run("check", "third", &[]).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    let counters = fleet.counters().await;
    for row in &fleet.rows {
        let expected = if row.site == "keep-b" { 2 } else { 1 };
        assert_eq!(Fleet::jobs_of(&counters, row), expected, "{}", row.site);
    }
    let third = fleet.summary("third");
    assert_ne!(third["keep-b"]["job_id"], jobs_before["keep-b"]["job_id"]);
    assert_eq!(third["keep-a"]["job_id"], jobs_before["keep-a"]["job_id"]);
    assert_eq!(third["keep-c"]["job_id"], jobs_before["keep-c"]["job_id"]);
    let status = status_json(&fleet).await;
    assert_eq!(
        status_sites(&status)["keep-b"]["job_id"].as_str(),
        Some(third["keep-b"]["job_id"].as_str())
    );
}

/// The `sql` block under "## Useful queries" of docs/state.md, one statement per entry.
fn documented_queries(doc: &str) -> Vec<String> {
    let section = doc
        .split("## Useful queries")
        .nth(1)
        .expect("docs/state.md has a Useful queries section");
    let block = section
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sql block");
    block
        .split(';')
        .map(|statement| {
            statement
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|statement| !statement.trim().is_empty())
        .collect()
}

/// docs/state.md's tables: `### \`name\`` headings and the first column of their tables.
fn documented_columns(doc: &str) -> BTreeMap<String, Vec<String>> {
    let mut tables = BTreeMap::new();
    let tables_section = doc
        .split("## Tables")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Tables section");
    for part in tables_section.split("### `").skip(1) {
        let name = part.split('`').next().unwrap().to_owned();
        let columns: Vec<String> = part
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .flat_map(|cell| {
                // "`run_id`, `site` | …" documents two columns in one row.
                let names = cell.split(" |").next().unwrap_or("");
                names
                    .split(", ")
                    .map(|name| name.trim_matches('`').to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        tables.insert(name, columns);
    }
    tables
}

fn sqlite3_available() -> bool {
    std::process::Command::new("sqlite3")
        .arg("-version")
        .output()
        .is_ok_and(|output| output.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_tables_and_queries_match_a_real_state_db() {
    let sites = finished_fleet_sites();
    let fleet = Fleet::start(&scenario(4, &sites, ""), 3600.0, rows(&sites)).await;
    assert_eq!(fleet.run("migrate", "migrate", &[]).await.code, 1);
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/state.md"))
        .unwrap();
    let db = fleet.db();

    // Every documented column exists, and every real column is documented.
    let documented = documented_columns(&doc);
    assert_eq!(
        documented.keys().cloned().collect::<Vec<_>>(),
        ["check_results", "runs", "site_runs", "sites", "tasks"]
    );
    for (table, columns) in &documented {
        let mut statement = db
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap();
        let real: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut documented = columns.clone();
        documented.sort();
        let mut real_sorted = real.clone();
        real_sorted.sort();
        assert_eq!(documented, real_sorted, "docs/state.md vs table {table}");
    }

    // The documented queries run and answer what they promise.
    let queries = documented_queries(&doc);
    assert_eq!(queries.len(), 6, "{queries:#?}");
    let mut answers = Vec::new();
    for query in &queries {
        let mut statement = db
            .prepare(query)
            .unwrap_or_else(|error| panic!("{query}: {error}"));
        let width = statement.column_count();
        let rows: Vec<Vec<String>> = statement
            .query_map([], |row| {
                (0..width)
                    .map(|index| {
                        Ok(match row.get_ref(index)? {
                            rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                            rusqlite::types::ValueRef::Integer(value) => value.to_string(),
                            rusqlite::types::ValueRef::Real(value) => value.to_string(),
                            rusqlite::types::ValueRef::Text(text) => {
                                String::from_utf8_lossy(text).into_owned()
                            }
                            rusqlite::types::ValueRef::Blob(_) => "<blob>".to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        answers.push(rows);
    }
    assert!(
        answers[0].is_empty(),
        "no task still running: {:?}",
        answers[0]
    );
    assert!(answers[1].is_empty(), "no open intent: {:?}", answers[1]);
    assert!(answers[2].is_empty(), "no check run yet: {:?}", answers[2]);
    assert_eq!(answers[3].len(), 1, "one run: {:?}", answers[3]);
    assert_eq!(answers[3][0][1], "migrate");
    assert_eq!(answers[3][0][4], "1");
    assert_eq!(answers[4].len(), 1, "acme-jira's history: {:?}", answers[4]);
    assert_eq!(answers[4][0][1..], ["migrate", "succeeded"]);
    let migrated: Vec<&str> = answers[5].iter().map(|row| row[0].as_str()).collect();
    assert_eq!(migrated, ["acme-jira", "acme-wiki"]);

    // The same with the sqlite3 program, as docs/state.md shows it.
    if !sqlite3_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "sqlite3 is required on CI"
        );
        eprintln!("SKIPPED: sqlite3 is not installed; the queries ran through rusqlite only");
        return;
    }
    for query in &queries {
        let output = std::process::Command::new("sqlite3")
            .args(["-readonly", "-header", "-column"])
            .arg(fleet.state_db())
            .arg(query)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tables = std::process::Command::new("sqlite3")
        .args(["-readonly"])
        .arg(fleet.state_db())
        .arg(".tables")
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout);
    for table in documented.keys() {
        assert!(tables.contains(table.as_str()), "{tables}");
    }
    let history = std::process::Command::new("sqlite3")
        .args(["-readonly", "-header", "-column"])
        .arg(fleet.state_db())
        .arg(&queries[4])
        .output()
        .unwrap();
    let history = String::from_utf8_lossy(&history.stdout);
    assert!(
        history.contains("started_at") && history.contains("succeeded"),
        "{history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_survives_a_crash_between_the_intent_and_its_post() {
    // AnonPermission fails but may be overridden: with --override-checks the Migrate task
    // carries excludeKeys and the site migrates with warnings; without, it is blocked.
    let sites = vec![SiteSpec::new(Row::jira("override"), Fate::Warnings)];
    let extra =
        "[servers.override.checks.AnonPermission]\noutcome = \"FAILED\"\nexcludable = true\n";
    let fleet = Fleet::start(
        &format!(
            "seed = 8\n[defaults]\ncheck_duration = \"2m\"\nmigrate_duration = \"20m\"\n{extra}"
        ),
        3600.0,
        rows(&sites),
    )
    .await;
    assert_eq!(
        fleet.run("check", "check", &[]).await.code,
        1,
        "blocked by the check"
    );
    let flags = ["--override-checks", "AnonPermission"];
    let crashed = killed_run(
        &fleet,
        "crashed",
        &flags,
        &crate::crash::Kill::At("task-intent".into()),
    )
    .await;
    assert_eq!(
        crashed.signal,
        Some(crate::crash::SIGABRT),
        "{}",
        crashed.stderr
    );
    let resumed = fleet.run("migrate", "resumed", &flags).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(fleet.summary("resumed")["override"]["outcome"], "warnings");
    let tasks = fleet.tasks().await;
    let migrations: Vec<_> = tasks
        .iter()
        .filter(|task| task.task_type == "migrate")
        .collect();
    assert_eq!(migrations.len(), 1, "{tasks:#?}");
    assert_ne!(
        migrations[0].outcome.as_deref(),
        Some("FAILED"),
        "{tasks:#?}"
    );
}

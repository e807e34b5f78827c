//! The real binary against [`IndependentApi`] — the migration API as read from the public docs
//! by other hands than the simulator's, served over HTTP/1.1 only: check and migrate mode give
//! every site its right outcome, a migration that ends `STOPPED` ends the run promptly, and
//! lost create answers still leave one task.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use crate::support::fleet::{Fleet, Row, RunOutput, read_summary};
use crate::support::independent::{
    ApiConfig, Checks, IndependentApi, Migration, ServerBehaviour, TaskTypes,
};

/// The API, an inventory pointing at it and a state dir, in one temp dir.
struct Bench {
    api: IndependentApi,
    dir: TempDir,
    inventory: PathBuf,
}

impl Bench {
    async fn start(config: ApiConfig, rows: &[Row]) -> Bench {
        let api = IndependentApi::start(config).await;
        let dir = tempfile::tempdir().unwrap();
        let inventory = dir.path().join("inventory.csv");
        let mut csv = String::from(
            "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys,users,apps,global_entities,wave,name\n",
        );
        for row in rows {
            csv.push_str(&format!(
                "{site},{product},{base}/servers/{server},{server},env:FLEET_SERVER_PAT,{cloud},{user},env:FLEET_CLOUD_TOKEN,{keys},all,,,,\n",
                site = row.site,
                product = row.product,
                base = api.base_url(),
                server = row.server,
                cloud = row.cloud_url,
                user = row.cloud_user,
                keys = row.keys,
            ));
        }
        std::fs::write(&inventory, csv).unwrap();
        Bench {
            api,
            dir,
            inventory,
        }
    }

    fn report_dir(&self, report: &str) -> PathBuf {
        self.dir.path().join("reports").join(report)
    }

    /// `cmafleet run` with the harness's scaled rate limits and polling (see
    /// `Fleet::command` at `FAST`), pointed at this API, plain http and nothing else.
    fn command(&self, mode: &str, report: &str) -> tokio::process::Command {
        let mut command = Fleet::binary();
        command
            .arg("run")
            .arg(&self.inventory)
            .args(["--mode", mode])
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .arg("--report-dir")
            .arg(self.report_dir(report))
            .args(["--cloud-api-url", &self.api.base_url()])
            .args(["--rate-create-job", "5/25ms"])
            .args(["--rate-create-task", "5/25ms"])
            .args(["--rate-read", "600/25ms"])
            .args(["--rate-token", "10/1500ms"])
            .args(["--poll-min", "10ms", "--poll-max", "50ms"])
            .args(["--progress", "never"]);
        command
    }

    /// Runs `mode` to its end, which must come within `limit` (else the run is killed and
    /// the test fails with its log).
    async fn run(&self, mode: &str, report: &str, limit: Duration) -> RunOutput {
        let mut child = Fleet::spawn(self.command(mode, report));
        let stdout = read_all(child.stdout.take());
        let stderr = read_all(child.stderr.take());
        let ended = tokio::time::timeout(limit, child.wait()).await;
        if ended.is_err() {
            child.kill().await.expect("the hung run can be killed");
        }
        let stderr = stderr.await.unwrap();
        let status = ended.unwrap_or_else(|_| {
            panic!("the {mode} run did not end within {limit:?}; its log:\n{stderr}")
        });
        RunOutput {
            code: status.expect("cmafleet ran").code().unwrap_or(-1),
            stdout: stdout.await.unwrap(),
            stderr,
        }
    }

    fn summary(&self, report: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        read_summary(&self.report_dir(report).join("summary.csv"))
    }
}

/// Reads a child's output pipe to its end, in the background (so a full pipe never stalls it).
fn read_all(
    pipe: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut bytes)
                .await
                .unwrap();
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_run_against_an_http1_api_gives_each_site_its_outcome() {
    let config = ApiConfig::default()
        .server("warn", ServerBehaviour::default().checks(Checks::Warning))
        .server("fail", ServerBehaviour::default().checks(Checks::Failed));
    let rows = [
        Row::jira("pass"),
        Row::jira("warn"),
        Row::confluence("fail"),
    ];
    let bench = Bench::start(config, &rows).await;
    let output = bench.run("check", "check", Duration::from_secs(60)).await;
    let received = bench.api.received();
    assert_eq!(
        output.code, 1,
        "a blocked site makes exit 1\n{}\n{received:#?}",
        output.stderr
    );

    let summary = bench.summary("check");
    for (site, outcome, failed, warned) in [
        ("pass", "succeeded", "0", "0"),
        ("warn", "warnings", "0", "1"),
        ("fail", "blocked", "1", "0"),
    ] {
        let row = &summary[site];
        assert_eq!(row["outcome"], outcome, "{site}: {}", row["message"]);
        assert_eq!(row["checks_failed"], failed, "{site}");
        assert_eq!(row["checks_warning"], warned, "{site}");
    }
    assert!(
        summary["fail"]["message"].contains("MissingAttachments"),
        "the blocked site names its failed check: {}",
        summary["fail"]["message"]
    );

    for site in ["pass", "warn", "fail"] {
        assert_eq!(
            received.task_creates_of(site, "Check"),
            1,
            "{site}: one Check task\n{received:#?}"
        );
        assert_eq!(received.task_creates_of(site, "Migrate"), 0, "{site}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrate_run_fails_a_failed_scope_and_a_stopped_migration_and_ends_promptly() {
    let config = ApiConfig::default()
        .server(
            "scope",
            ServerBehaviour::default().migration(Migration::ScopeFailed),
        )
        .server(
            "stopped",
            ServerBehaviour::default().migration(Migration::Stopped),
        );
    let rows = [Row::jira("ok"), Row::jira("scope"), Row::jira("stopped")];
    let bench = Bench::start(config, &rows).await;
    // Every task ends within a second; a client that kept polling the STOPPED one as if it
    // were still running would hit this bound, not the harness's 120 s.
    let output = bench
        .run("migrate", "migrate", Duration::from_secs(30))
        .await;
    let received = bench.api.received();
    assert_eq!(
        output.code, 1,
        "failed sites make exit 1\n{}\n{received:#?}",
        output.stderr
    );

    let summary = bench.summary("migrate");
    for (site, outcome) in [
        ("ok", "succeeded"),
        ("scope", "failed"),
        ("stopped", "failed"),
    ] {
        assert_eq!(
            summary[site]["outcome"], outcome,
            "{site}: {}",
            summary[site]["message"]
        );
    }
    assert!(
        summary["scope"]["message"].contains("projects"),
        "the failed scope is named: {}",
        summary["scope"]["message"]
    );
    let stopped = &summary["stopped"]["message"];
    assert!(
        stopped.contains("STOPPED") && stopped.contains("FAILED"),
        "the stopped site's message names the status and the outcome: {stopped}"
    );

    for site in ["ok", "scope", "stopped"] {
        assert_eq!(
            received.task_creates_of(site, "Migrate"),
            1,
            "{site}: one Migrate task\n{received:#?}"
        );
        assert_eq!(received.task_creates_of(site, "Check"), 0, "{site}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_create_answers_with_an_unfamiliar_task_type_leave_exactly_one_migrate_task() {
    let lossy = ServerBehaviour::default()
        .task_types(TaskTypes::PreflightMigration)
        .lose_create_answers(2);
    let config = ApiConfig::default().server("lossy", lossy);
    let bench = Bench::start(config, &[Row::jira("lossy")]).await;
    let output = bench
        .run("migrate", "migrate", Duration::from_secs(60))
        .await;
    let received = bench.api.received();
    assert!(
        received
            .answers_lost
            .get("lossy")
            .is_some_and(|lost| *lost >= 1),
        "the first create's answer was lost: {received:#?}\n{}",
        output.stderr
    );

    let tasks = bench.api.tasks();
    assert_eq!(
        tasks.len(),
        1,
        "exactly one task on the server, whatever its listed type: {tasks:#?}\n{}",
        output.stderr
    );
    assert_eq!(tasks[0].kind, "Migrate");
    let summary = bench.summary("migrate");
    let row = &summary["lossy"];
    assert_eq!(row["outcome"], "succeeded", "{}", row["message"]);
    assert_eq!(
        row["task_id"], tasks[0].task_id,
        "the site followed that task"
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
}

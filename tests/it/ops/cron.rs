//! The cron example as cron runs it: `deploy/cron/cmafleet-check.sh` with the shipped
//! settings (deploy/config/check.toml; paths and the simulator's URL through `CMAFLEET_*`
//! variables), a secrets file, and the real binary against the simulator. What it prints on
//! stdout is what cron mails: nothing on a normal night; on a broken one, what is wrong —
//! before anything was created — and never a secret.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::fleet::FAST;
use crate::support::fleet::{CLOUD_TOKEN, Fleet, RATE_SLACK, Row, RunOutput};

/// A server credential with everything a shell would take apart: `$`, quotes, a backslash,
/// spaces, a semicolon. The simulator accepts only this exact token for `acme`.
const AWKWARD_PAT: &str = r#"P@ss $HOME "dq" 'sq' \t ;x"#;

/// The fleet, and the files the script reads and writes, in the fleet's temp dir.
struct Night {
    fleet: Fleet,
    /// `etc/`: the shipped check.toml, the inventory beside it, secrets.env.
    etc: PathBuf,
    log: PathBuf,
    textfile: PathBuf,
}

impl Night {
    async fn start() -> Night {
        let scenario = format!("[servers.acme]\ntoken = '''{AWKWARD_PAT}'''\n");
        let rows = vec![Row::jira("acme"), Row::confluence("globex")];
        let fleet = Fleet::start(&scenario, FAST, rows).await;
        let etc = fleet.dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("check.toml"),
            super::deploy::read("deploy/config/check.toml"),
        )
        .unwrap();
        std::fs::copy(&fleet.inventory, etc.join("inventory.csv")).unwrap();
        let log = fleet.dir.path().join("log").join("check.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let textfile = fleet
            .dir
            .path()
            .join("textfile")
            .join("cmafleet-check.prom");
        std::fs::create_dir_all(textfile.parent().unwrap()).unwrap();
        Night {
            fleet,
            etc,
            log,
            textfile,
        }
    }

    fn secrets(&self, lines: &[String]) {
        let mut text = String::from("# env:NAME references of the inventory\n\n");
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(self.etc.join("secrets.env"), text).unwrap();
    }

    fn good_secrets(&self) -> Vec<String> {
        vec![
            format!("FLEET_CLOUD_TOKEN={CLOUD_TOKEN}"),
            format!("FLEET_SERVER_PAT={AWKWARD_PAT}"),
        ]
    }

    /// The script as cron starts it: a bare environment, `cmafleet` on PATH, the shipped
    /// settings with the fleet's paths and the simulator put in by `CMAFLEET_*` variables.
    fn command(&self, retry_after: &str, retries: &str) -> tokio::process::Command {
        let binary = Path::new(env!("CARGO_BIN_EXE_cmafleet"));
        let window = |seconds: f64| {
            ((seconds * 1000.0 * RATE_SLACK / self.fleet.time_scale).ceil() as u64).max(1)
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/cron/cmafleet-check.sh");
        let mut command = tokio::process::Command::new("sh");
        command
            .arg(script)
            .current_dir(self.fleet.dir.path())
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", binary.parent().unwrap().display()),
            )
            .env("CMAFLEET_CRON_CONFIG", self.etc.join("check.toml"))
            .env("CMAFLEET_CRON_INVENTORY", self.etc.join("inventory.csv"))
            .env("CMAFLEET_CRON_SECRETS", self.etc.join("secrets.env"))
            .env("CMAFLEET_CRON_LOG", &self.log)
            .env("CMAFLEET_CRON_RETRY_AFTER", retry_after)
            .env("CMAFLEET_CRON_RETRIES", retries)
            .env("CMAFLEET_STATE_DIR", self.fleet.state_dir())
            .env("CMAFLEET_METRICS_TEXTFILE", &self.textfile)
            .env("CMAFLEET_CLOUD_API_URL", self.fleet.sim.base_url())
            .env("CMAFLEET_RATE_CREATE_JOB", format!("5/{}ms", window(60.0)))
            .env("CMAFLEET_RATE_CREATE_TASK", format!("5/{}ms", window(60.0)))
            .env("CMAFLEET_RATE_READ", format!("600/{}ms", window(60.0)))
            .env("CMAFLEET_POLL_MIN", "10ms")
            .env("CMAFLEET_POLL_MAX", "50ms")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn run(&self) -> RunOutput {
        Fleet::output(self.command("0", "2")).await
    }

    /// Every line of a log file, each a JSON object.
    fn log_lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|error| panic!("{line}: {error}"))
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_night_from_cron_mails_nothing_and_takes_the_secrets_verbatim() {
    let night = Night::start().await;
    night.secrets(&night.good_secrets());

    let first = night.run().await;
    // The awkward credential reached the server as written: a shell would have expanded
    // $HOME and eaten the quotes, and the simulator would have refused it.
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(first.stdout, "", "a normal night mails nothing");
    let lines = Night::log_lines(&night.log);
    assert!(
        lines.iter().any(|line| line["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("finished: 2/2 sites done"))),
        "the run's JSON log is in the log file: {lines:?}"
    );
    let metrics = std::fs::read_to_string(&night.textfile).expect("the textfile is written");
    assert!(metrics.contains("cmafleet_sites{"), "{metrics}");

    // The next night rotates the log: one file per night.
    let second = night.run().await;
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert_eq!(second.stdout, "");
    let last_night = night.log.with_file_name("check.log.0");
    assert_eq!(
        Night::log_lines(&last_night),
        lines,
        "last night's log, kept"
    );
    assert!(!Night::log_lines(&night.log).is_empty(), "tonight's log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_night_from_cron_mails_what_is_wrong_before_anything_is_created() {
    let night = Night::start().await;

    // An unset secret: the fatal error reaches the mail, with the reference, not a value.
    night.secrets(&[format!("FLEET_SERVER_PAT={AWKWARD_PAT}")]);
    let unset = night.run().await;
    assert_eq!(unset.code, 78, "{}\n{}", unset.stdout, unset.stderr);
    assert!(
        unset.stdout.contains("env:FLEET_CLOUD_TOKEN"),
        "{}",
        unset.stdout
    );
    assert!(
        unset.stdout.contains("no check tonight"),
        "{}",
        unset.stdout
    );

    // A wrong server credential for one row (and a line that is no assignment): the rows
    // that fail live are named; the rest of the night does not happen.
    night.secrets(&[
        format!("FLEET_CLOUD_TOKEN={CLOUD_TOKEN}"),
        "FLEET_SERVER_PAT=an-old-token".to_owned(),
        "this line is not an assignment".to_owned(),
    ]);
    let refused = night.run().await;
    assert_eq!(refused.code, 4, "{}\n{}", refused.stdout, refused.stderr);
    let mail = &refused.stdout;
    let acme = mail
        .lines()
        .find(|line| line.contains(" acme "))
        .unwrap_or_else(|| panic!("acme is named:\n{mail}"));
    assert!(
        acme.contains("FAILED") && acme.contains("server refused the credentials"),
        "{acme}"
    );
    assert!(
        mail.lines()
            .any(|line| line.contains(" globex ") && line.contains(" ok: ")),
        "{mail}"
    );
    assert!(mail.contains("line 5 is not NAME=value"), "{mail}");
    assert!(
        !mail.contains("not an assignment"),
        "a bad line is not shown"
    );
    for secret in [CLOUD_TOKEN, "an-old-token", AWKWARD_PAT] {
        assert!(!mail.contains(secret), "{mail}");
        assert!(!refused.stderr.contains(secret));
    }
    let counters = night.fleet.counters().await;
    assert!(counters.jobs_created.is_empty(), "{counters:?}");
    assert!(night.fleet.tasks().await.is_empty());
    assert!(!night.textfile.exists(), "no run happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_is_tried_again_later_and_a_lock_held_all_night_is_mailed() {
    let night = Night::start().await;
    night.secrets(&night.good_secrets());

    // Another run (a migration night) holds the state dir's lock all night.
    let lock = cmafleet::state::RunLock::acquire(&night.fleet.state_dir()).unwrap();
    let locked = night.run().await;
    assert_eq!(locked.code, 75, "{}\n{}", locked.stdout, locked.stderr);
    assert!(
        locked.stdout.contains("lock stayed held") && locked.stdout.contains("\"exit_code\":75"),
        "the mail says so, with cmafleet's own error: {}",
        locked.stdout
    );
    assert!(night.fleet.tasks().await.is_empty());

    // It is released while the script waits to try again: the check runs, quietly.
    std::fs::remove_file(&night.log).unwrap();
    let script = Fleet::spawn(night.command("1", "60"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = |log: &Path| {
        std::fs::read_to_string(log).is_ok_and(|text| text.matches("\"exit_code\":75").count() >= 1)
    };
    while !refused(&night.log) {
        assert!(Instant::now() < deadline, "no attempt met the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(lock);
    let later = Fleet::wait(script).await;
    assert_eq!(later.code, 0, "{}\n{}", later.stdout, later.stderr);
    assert_eq!(later.stdout, "", "a night that ran later is a normal night");
    assert_eq!(night.fleet.tasks().await.len(), 2, "the check ran");
}

//! Secrets stay secret (SECURITY.md, the threat model), checked on what a real run writes and
//! sends:
//! - every byte cmafleet writes — `state.db` and its WAL, every report and artifact file,
//!   the metrics textfile, stdout and stderr at `RUST_LOG=trace` — is free of the secret
//!   values, their Basic-auth base64 forms and the connect tokens the service issued;
//! - each credential reaches only its own host (recording proxies on three loopback
//!   addresses); redirects are never followed with credentials (`client::credentials`);
//! - plain http is refused for hosts that are not loopback, in the inventory and for
//!   `--cloud-api-url`;
//! - the state dir and everything in it, and the report dir, are private (0700 / 0600), even
//!   under `umask 000`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::support::fleet::{CLOUD_TOKEN, Fleet, Row, SERVER_PASSWORD, SERVER_PAT};
use crate::support::proxy::RecordingProxy;

/// `Basic base64(user:secret)`, as it goes over the wire.
fn basic(user: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The needles that must appear nowhere, each with a name for the failure message.
fn needles() -> Vec<(String, String)> {
    let mut needles = vec![
        ("cloud token".to_owned(), CLOUD_TOKEN.to_owned()),
        ("server PAT".to_owned(), SERVER_PAT.to_owned()),
        ("server password".to_owned(), SERVER_PASSWORD.to_owned()),
        // Every test secret has this in its middle: catches a secret cut in two too.
        ("a piece of a secret".to_owned(), "5ecret".to_owned()),
        // The simulator's connect tokens (`POST /token`) are secrets as well.
        ("a connect token".to_owned(), "cmasim-".to_owned()),
    ];
    for (user, secret) in [
        ("alice@example.com", CLOUD_TOKEN),
        ("bob@example.com", CLOUD_TOKEN),
        ("migrator", SERVER_PASSWORD),
    ] {
        let encoded = basic(user, secret);
        let encoded = encoded.trim_start_matches("Basic ").to_owned();
        needles.push((format!("Basic auth of {user}"), encoded));
    }
    needles
}

fn assert_clean(what: &str, bytes: &[u8]) {
    for (name, needle) in needles() {
        let found = bytes
            .windows(needle.len())
            .any(|window| window == needle.as_bytes());
        assert!(!found, "{what} contains the {name}");
    }
}

/// A migrate run with a connect, Bearer and Basic servers, two cloud users, artifacts, and a
/// site that fails: then every byte it wrote or printed is searched for secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_written_or_logged_contains_a_secret() {
    let scenario = r#"
        [servers.offline]
        connected = false
        [servers.broken.scopes.projects]
        outcome = "FAILED"
        message = "Import of ABC failed"
        [servers.warn.checks.AnonPermission]
        outcome = "WARNING"
    "#;
    let rows = vec![
        Row::jira("acme"),
        Row::confluence("wiki").basic_auth(),
        Row::jira("offline").user("bob@example.com"),
        Row::jira("broken").basic_auth(),
        Row::jira("warn").user("bob@example.com"),
    ];
    let fleet = Fleet::start(scenario, 3600.0, rows).await;
    let metrics = fleet.dir.path().join("metrics.prom");
    let mut command = fleet.command("migrate", "run");
    command
        .args(["--precheck", "--connect", "--metrics-textfile"])
        .arg(&metrics)
        .env("RUST_LOG", "trace");
    let child = command.spawn().expect("cmafleet starts");
    let running = tokio::spawn(finish(child, Duration::from_secs(120)));
    // While the run writes, its WAL holds the newest pages: scan it as it grows.
    let wal = fleet.state_dir().join("state.db-wal");
    let mut wal_scans = 0;
    while !running.is_finished() {
        if let Ok(bytes) = std::fs::read(&wal)
            && !bytes.is_empty()
        {
            assert_clean("state.db-wal during the run", &bytes);
            wal_scans += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let run = running.await.unwrap();
    assert!(wal_scans > 0, "the WAL was scanned during the run");
    assert_eq!(run.code, 1, "the broken site fails\n{}", run.stderr);
    let summary = fleet.summary("run");
    assert_eq!(
        summary["offline"]["outcome"], "succeeded",
        "connected by API"
    );
    assert_eq!(summary["broken"]["outcome"], "failed");
    // The trace log is the real thing: requests, answers, the connect.
    assert!(
        run.stderr.len() > 20_000 && run.stderr.contains("TRACE"),
        "a trace-level log was written ({} bytes)",
        run.stderr.len()
    );
    assert_clean("stdout", run.stdout.as_bytes());
    assert_clean("stderr at RUST_LOG=trace", run.stderr.as_bytes());
    assert_clean("the metrics textfile", &std::fs::read(&metrics).unwrap());
    let mut scanned = BTreeMap::new();
    for dir in [fleet.state_dir(), fleet.report_dir("run")] {
        for file in files_under(&dir) {
            let bytes = std::fs::read(&file).unwrap();
            assert_clean(&file.display().to_string(), &bytes);
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            scanned.insert(name, bytes.len());
        }
    }
    for expected in [
        "state.db",
        "summary.csv",
        "report.html",
        "run.json",
        "acme.json",
        "-migration-report.csv",
        "-error-log.txt",
    ] {
        assert!(
            scanned.keys().any(|name| name.ends_with(expected)),
            "{expected} was written and scanned: {scanned:?}"
        );
    }
    // The store and the reports do know the secret *references*: the scan looks at real data.
    let db = std::fs::read(fleet.state_dir().join("state.db")).unwrap();
    assert!(
        db.windows(4).any(|w| w == b"acme"),
        "state.db holds the sites"
    );
    eprintln!(
        "figures: secrets: {} files ({} bytes), {} WAL scans, {} log bytes, none with a secret",
        scanned.len(),
        scanned.values().sum::<usize>(),
        wal_scans,
        run.stdout.len() + run.stderr.len()
    );
}

/// The cloud API behind 127.0.0.1, one server (Bearer PAT) behind 127.0.0.2 and another
/// (Basic password) behind 127.0.0.3, each through a recording proxy: every credential
/// arrives only at its own address, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_credential_is_sent_only_to_its_own_host() {
    const ACME_PAT: &str = "acme-pat-only-for-acme";
    const GLOBEX_PASSWORD: &str = "globex-password-only-for-globex";
    let fleet = Fleet::start("", 3600.0, Vec::new()).await;
    let sim = fleet.sim.base_url();
    let cloud = RecordingProxy::start("127.0.0.1", &sim).await;
    let acme = RecordingProxy::start("127.0.0.2", &sim).await;
    let globex = RecordingProxy::start("127.0.0.3", &sim).await;
    let inventory = format!(
        "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys\n\
         acme,jira,{}/servers/acme,acme,env:ACME_PAT,https://acme.atlassian.net,alice@example.com,env:FLEET_CLOUD_TOKEN,ABC\n\
         globex,confluence,{}/servers/globex,globex,basic:migrator:env:GLOBEX_PASSWORD,https://globex.atlassian.net,alice@example.com,env:FLEET_CLOUD_TOKEN,ENG\n",
        acme.url(),
        globex.url()
    );
    std::fs::write(&fleet.inventory, inventory).unwrap();
    let mut command = with_flag(
        &fleet.command("migrate", "run"),
        "--cloud-api-url",
        std::ffi::OsStr::new(&cloud.url()),
    );
    command
        .arg("--precheck")
        .env("ACME_PAT", ACME_PAT)
        .env("GLOBEX_PASSWORD", GLOBEX_PASSWORD);
    let run = Fleet::output(command).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    let cloud_basic = basic("alice@example.com", CLOUD_TOKEN);
    let acme_bearer = format!("Bearer {ACME_PAT}");
    let globex_basic = basic("migrator", GLOBEX_PASSWORD);
    let check = |name: &str, proxy: &RecordingProxy, own: &str, foreign: &[&str]| {
        let received = proxy.received();
        assert!(!received.is_empty(), "{name} was used");
        for (method, path, authorization) in &received {
            let authorization = authorization.as_deref().unwrap_or("");
            for other in foreign {
                assert!(
                    !authorization.contains(other),
                    "{name} received a foreign credential on {method} {path}"
                );
            }
            // Every API call carries this host's own credential; artifact downloads on the
            // API's origin may too, nothing else.
            if !path.starts_with("/_sim/artifacts/") {
                assert_eq!(authorization, own, "{name}: {method} {path}");
            }
        }
        received.len()
    };
    let to_cloud = check(
        "the cloud API (127.0.0.1)",
        &cloud,
        &cloud_basic,
        &[ACME_PAT, &globex_basic, &acme_bearer],
    );
    let to_acme = check(
        "acme's server (127.0.0.2)",
        &acme,
        &acme_bearer,
        &[&cloud_basic, &globex_basic, CLOUD_TOKEN],
    );
    let to_globex = check(
        "globex's server (127.0.0.3)",
        &globex,
        &globex_basic,
        &[&cloud_basic, ACME_PAT, CLOUD_TOKEN],
    );
    // Servers get only their own calls (attach), the cloud everything else.
    assert!(
        acme.received()
            .iter()
            .all(|(_, path, _)| path.starts_with("/servers/acme/")),
        "{:?}",
        acme.received()
    );
    assert!(
        globex
            .received()
            .iter()
            .all(|(_, path, _)| path.starts_with("/servers/globex/"))
    );
    assert!(to_cloud > to_acme + to_globex);
    let counters = fleet.counters().await;
    assert_eq!(
        counters.total as usize,
        to_cloud + to_acme + to_globex,
        "the service heard from cmafleet only through the three hosts"
    );
    eprintln!(
        "figures: credentials: {to_cloud} requests to the cloud, {to_acme} and {to_globex} to the servers, each with its own"
    );
}

/// Plain http to a host that is not loopback is refused before any request: for a server
/// in the inventory (exit 65, with its line) and for `--cloud-api-url` (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_off_loopback() {
    let fleet = Fleet::start("", 3600.0, vec![Row::jira("acme")]).await;
    for url in [
        "http://api.example.com",
        "http://10.1.2.3",
        "http://[2001:db8::1]",
    ] {
        let command = with_flag(
            &fleet.command("check", "unused"),
            "--cloud-api-url",
            std::ffi::OsStr::new(url),
        );
        let run = Fleet::output(command).await;
        assert_eq!(run.code, 2, "{url}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("plain http is only allowed to loopback hosts"),
            "{url}: {}",
            run.stderr
        );
    }
    // A cloud site over plain http is refused before anything is sent (a Server/DC
    // instance may be plain http: it is inside the customer's network).
    let text = std::fs::read_to_string(&fleet.inventory).unwrap();
    let remote = text.replace("https://acme.atlassian.net", "http://acme.atlassian.net");
    std::fs::write(&fleet.inventory, remote).unwrap();
    let run = fleet.run("check", "unused", &[]).await;
    assert_eq!(run.code, 65, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "line 2, column cloud_url: plain http:// is refused for `acme.atlassian.net`"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(fleet.counters().await.total, 0, "no request was sent");
}

/// After a real run under `umask 000`, the state dir, the report dir and every dir in them
/// are 0700, every file in them 0600 (the database, its WAL, the lock, reports, artifacts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_report_files_are_private_even_under_umask_000() {
    let fleet = Fleet::start("", 3600.0, vec![Row::jira("acme"), Row::confluence("wiki")]).await;
    let command = fleet.command("migrate", "run");
    // The same command, started by a shell that first opens the umask wide.
    let std = command.as_std();
    let mut shell = tokio::process::Command::new("sh");
    shell
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(std.get_program())
        .args(std.get_args());
    crate::support::fleet::inherit(&command, &mut shell);
    let run = Fleet::output(shell).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut checked = Vec::new();
    for root in [fleet.state_dir(), fleet.report_dir("run")] {
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
            for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if entry.file_type().unwrap().is_dir() {
                    stack.push(path);
                    continue;
                }
                let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
                checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    for expected in [
        "state.db",
        "lock",
        "summary.csv",
        "report.html",
        "acme.json",
    ] {
        assert!(
            checked.iter().any(|name| name == expected),
            "{expected} checked: {checked:?}"
        );
    }
    assert!(
        checked
            .iter()
            .any(|name| name.ends_with(".csv") && name != "summary.csv"),
        "an artifact was checked: {checked:?}"
    );
}

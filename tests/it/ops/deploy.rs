//! The deploy files, checked statically (no systemd, cluster or Docker daemon here): the
//! systemd units mean what deploy/README.md says of them — no Conflicts= between them, exit
//! 1/3 a normal night, 75 tried again later, `validate --online` before every run, the
//! sandbox — the cron example runs its script under `flock -n`, the example settings files
//! resolve and keep the final metrics for the alerts, the Dockerfile is multi-stage with a
//! dependency layer and a distroless non-root runtime, and the README explains every file.
//! (`.ci/checks/deploy.sh` also runs `systemd-analyze verify` and `security` on the units
//! and a traced run inside their system call filter; `kubernetes.rs` checks the manifests,
//! `cron.rs` runs the cron script.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cmafleet::exit;
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub(super) fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|error| panic!("read {path}: {error}"))
}

/// Every YAML document of `text` (from `name`), as JSON values.
pub(super) fn documents_of(name: &str, text: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|error| panic!("{name}: {error}"))
        })
        .collect()
}

pub(super) fn kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|document| document["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_dockerfile_caches_dependencies_and_runs_distroless_as_nonroot() {
    let dockerfile = read("deploy/Dockerfile");
    let instructions: Vec<String> = dockerfile
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let stages: Vec<&String> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    assert!(stages[0].contains(" AS build"), "{}", stages[0]);
    let runtime = stages.last().unwrap();
    assert!(
        runtime.contains("gcr.io/distroless/") && runtime.ends_with(":nonroot"),
        "{runtime}"
    );
    let position = |needle: &str| {
        instructions
            .iter()
            .position(|line| line.starts_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}`"))
    };
    // The manifest alone, then a build (the dependency layer), then the sources.
    let manifest = position("COPY Cargo.toml Cargo.lock");
    let dependencies = instructions
        .iter()
        .position(|line| line.starts_with("RUN") && line.contains("cargo build"))
        .expect("a build step");
    let sources = position("COPY src ");
    assert!(manifest < dependencies && dependencies < sources);
    assert!(instructions[dependencies].contains("cargo build --release --locked"));
    // Everything the crate embeds is copied.
    for source in ["src/", "inventories/"] {
        let embedded = walk(&repo("src"))
            .into_iter()
            .any(|file| read_path(&file).contains(&format!("\"../../{source}")));
        if embedded || source == "src/" {
            assert!(
                dockerfile.contains(&format!("COPY {} ", source.trim_end_matches('/'))),
                "{source} is needed by the build"
            );
        }
    }
    let user = instructions
        .iter()
        .rfind(|l| l.starts_with("USER "))
        .unwrap();
    assert!(user.contains("65532") || user.contains("nonroot"), "{user}");
    let entrypoint = instructions
        .iter()
        .rfind(|l| l.starts_with("ENTRYPOINT"))
        .unwrap();
    assert!(
        entrypoint.contains("[\"/usr/local/bin/cmafleet\"]"),
        "exec form: {entrypoint}"
    );
    let cmd = instructions.iter().rfind(|l| l.starts_with("CMD")).unwrap();
    assert!(cmd.contains("\"run\""), "{cmd}");
    // The Rust image is not older than the crate's minimum Rust.
    let version = position("ARG RUST_VERSION=");
    let image: Vec<u32> = instructions[version]["ARG RUST_VERSION=".len()..]
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    let manifest = read("Cargo.toml");
    let minimum: Vec<u32> = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"')
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        image >= minimum,
        "rust:{image:?} < rust-version {minimum:?}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn read_path(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// `Key=Value` settings of a unit file's `[section]`, in order (a key may repeat).
fn unit(path: &str, section: &str) -> Vec<(String, String)> {
    let text = read(path);
    let mut current = String::new();
    let mut settings = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            current = line.trim_matches(['[', ']']).to_owned();
        } else if current == section
            && !line.starts_with('#')
            && let Some((key, value)) = line.split_once('=')
        {
            settings.push((key.to_owned(), value.to_owned()));
        }
    }
    settings
}

fn setting<'a>(settings: &'a [(String, String)], key: &str) -> &'a str {
    settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key}="))
}

/// Every value of a repeatable list setting, its assignments merged.
fn list(settings: &[(String, String)], key: &str) -> Vec<String> {
    settings
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned))
        .collect()
}

/// A systemd time span of the units (`30min`, `5h`, `90s`), in seconds.
fn seconds(span: &str) -> u64 {
    let digits: String = span.chars().take_while(char::is_ascii_digit).collect();
    let number: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("a time span: {span}"));
    match &span[digits.len()..] {
        "" | "s" => number,
        "min" | "m" => number * 60,
        "h" => number * 3600,
        unit => panic!("unit {unit} of {span}"),
    }
}

/// The example settings file a unit runs with, parsed.
fn settings_of(config: &str) -> cmafleet::config::SettingsFile {
    let name = config.rsplit('/').next().unwrap();
    cmafleet::config::SettingsFile::parse(&read(&format!("deploy/config/{name}")))
        .unwrap_or_else(|error| panic!("{name}: {error}"))
}

const UNITS: [(&str, &str); 2] = [("check", "check.toml"), ("migrate", "migrate.toml")];

#[test]
fn the_systemd_units_run_nightly_catch_up_and_drain_on_stop() {
    let timer = unit("deploy/systemd/cmafleet-check.timer", "Timer");
    assert_eq!(setting(&timer, "Persistent"), "true");
    assert!(!setting(&timer, "RandomizedDelaySec").is_empty());
    assert!(setting(&timer, "OnCalendar").contains("01:00"));
    assert_eq!(setting(&timer, "Unit"), "cmafleet-check.service");
    for (name, config) in UNITS {
        let path = format!("deploy/systemd/cmafleet-{name}.service");
        let service = unit(&path, "Service");
        // exec, not oneshot: systemd refuses RestartForceExitStatus= on a oneshot unit.
        assert_eq!(setting(&service, "Type"), "exec", "{path}");
        assert_eq!(setting(&service, "KillSignal"), "SIGTERM", "{path}");
        assert!(seconds(setting(&service, "TimeoutStopSec")) >= 30, "{path}");
        assert_eq!(setting(&service, "StateDirectory"), "cmafleet", "{path}");
        assert_eq!(
            setting(&service, "User"),
            "cmafleet",
            "{path}: the cron user too"
        );
        let exec = setting(&service, "ExecStart");
        assert!(
            exec.starts_with("/usr/local/bin/cmafleet run --config /etc/cmafleet/")
                && exec.contains(config),
            "{exec}"
        );
        assert!(setting(&service, "EnvironmentFile").starts_with("-/etc/cmafleet/"));
    }
}

#[test]
fn the_units_never_conflict_and_take_each_exit_code_as_the_readme_says() {
    for (name, _) in UNITS {
        let path = format!("deploy/systemd/cmafleet-{name}.service");
        // Conflicts= works both ways: the check timer would stop a migration night. The run
        // lock already refuses a second run.
        let text = read(&path);
        assert!(
            !text
                .lines()
                .any(|line| line.trim().starts_with("Conflicts=")),
            "{path}"
        );
        let service = unit(&path, "Service");
        let success: BTreeSet<u8> = list(&service, "SuccessExitStatus")
            .iter()
            .map(|code| code.parse().unwrap())
            .collect();
        let expected: BTreeSet<u8> = match name {
            // Blocked sites are what checks are for; the deadline is a normal long night.
            "check" => [exit::SITES_FAILED, exit::DETACHED].into(),
            _ => [exit::DETACHED].into(),
        };
        assert_eq!(success, expected, "{path}");
        // 75: the lock is held, nothing was done — started again later, and only on 75.
        assert_eq!(
            list(&service, "RestartForceExitStatus"),
            [exit::TEMP_FAIL.to_string()],
            "{path}"
        );
        assert!(!success.contains(&exit::TEMP_FAIL), "{path}");
        assert!(
            service.iter().all(|(k, v)| k != "Restart" || v == "no"),
            "{path}: no other exit restarts"
        );
        let after = seconds(setting(&service, "RestartSec"));
        assert!(after >= 5 * 60, "{path}: later, not at once");
        // The retries end: the start limit is reached within its interval, and that is
        // within a night.
        let limits = unit(&path, "Unit");
        let burst: u64 = setting(&limits, "StartLimitBurst").parse().unwrap();
        let interval = seconds(setting(&limits, "StartLimitIntervalSec"));
        assert!(burst >= 2 && (burst - 1) * after < interval, "{path}");
        assert!(interval <= 12 * 3600, "{path}");
    }
}

#[test]
fn the_units_try_every_row_live_before_the_run() {
    for (name, config) in UNITS {
        let path = format!("deploy/systemd/cmafleet-{name}.service");
        let service = unit(&path, "Service");
        let pre = setting(&service, "ExecStartPre");
        let words: Vec<&str> = pre.split_whitespace().collect();
        assert_eq!(
            words[..2],
            ["/usr/local/bin/cmafleet", "validate"],
            "{path}: not `-` prefixed, so a failing row fails the unit"
        );
        assert!(words.contains(&"--online"), "{pre}");
        let settings = format!("/etc/cmafleet/{config}");
        let at = words.iter().position(|word| *word == "--config").unwrap();
        assert_eq!(words[at + 1], settings, "{pre}: the run's settings");
        // The inventory the run's settings name (relative to their directory).
        let inventory = settings_of(config).inventory.expect("an inventory");
        assert_eq!(
            Path::new(words[2]),
            Path::new("/etc/cmafleet").join(inventory),
            "{pre}"
        );
    }
}

#[test]
fn the_units_sandbox_is_as_tight_as_cmafleet_allows() {
    let required = [
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("PrivateUsers", "yes"),
        ("PrivateMounts", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectProc", "invisible"),
        ("ProcSubset", "pid"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("RemoveIPC", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("SystemCallErrorNumber", "EPERM"),
        ("UMask", "0077"),
    ];
    for (name, config) in UNITS {
        let path = format!("deploy/systemd/cmafleet-{name}.service");
        let service = unit(&path, "Service");
        for (key, value) in required {
            assert_eq!(setting(&service, key), value, "{path}: {key}");
        }
        assert_eq!(
            list(&service, "SystemCallFilter"),
            ["@system-service", "~@privileged", "@resources"],
            "{path}"
        );
        let families: BTreeSet<String> = list(&service, "RestrictAddressFamilies")
            .into_iter()
            .collect();
        let allowed: BTreeSet<String> = ["AF_INET", "AF_INET6", "AF_UNIX"].map(String::from).into();
        assert!(families.is_subset(&allowed), "{path}: {families:?}");
        // The settings' textfile directory is the one writable path besides the state dir.
        let textfile = settings_of(config)
            .metrics_textfile
            .expect("the final metrics are kept");
        let dir = textfile.parent().unwrap().display().to_string();
        assert_eq!(
            list(&service, "ReadWritePaths"),
            [format!("-{dir}")],
            "{path}"
        );
    }
    // deploy.sh holds the units to the exposure score the README states.
    let check = read(".ci/checks/deploy.sh");
    assert!(check.contains("systemd-analyze security --offline=yes"));
    assert!(check.contains("--threshold="));
    let readme = read("deploy/README.md");
    let stated = readme
        .lines()
        .find_map(|line| line.split_once("Security score: "))
        .map(|(_, score)| score.split_whitespace().next().unwrap().to_owned())
        .expect("deploy/README.md states the security score");
    let score: f64 = stated.parse().unwrap();
    assert!(score <= 2.0, "{stated}: that is not an OK exposure");
}

#[test]
fn the_cron_example_runs_its_script_under_flock_and_mails_to_mailto() {
    let cron = read("deploy/cron/cmafleet.cron");
    assert!(cron.lines().any(|line| line.starts_with("MAILTO=")));
    let jobs: Vec<&str> = cron
        .lines()
        .filter(|line| {
            let variable = line
                .split_once('=')
                .is_some_and(|(name, _)| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
            !line.trim().is_empty() && !line.starts_with('#') && !variable
        })
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let fields: Vec<&str> = jobs[0].split_whitespace().collect();
    assert_eq!(fields[5], "cmafleet", "the user");
    assert_eq!(fields[6..8], ["flock", "-n"], "{}", jobs[0]);
    assert_eq!(
        fields.last(),
        Some(&"/usr/local/lib/cmafleet/cmafleet-check.sh")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(repo("deploy/cron/cmafleet-check.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "the script is executable");
    }
    let script = read("deploy/cron/cmafleet-check.sh");
    // The secrets file is read, never sourced by the shell.
    for sourced in [". \"$secrets\"", "source ", "set -a"] {
        assert!(!script.contains(sourced), "{sourced}");
    }
}

#[test]
fn the_example_settings_files_resolve() {
    let mut examples: Vec<(String, String)> = UNITS
        .into_iter()
        .map(|(_, name)| (name.to_owned(), read(&format!("deploy/config/{name}"))))
        .collect();
    let documents = documents_of("cronjob.yaml", &read("deploy/kubernetes/cronjob.yaml"));
    let data = &kind(&documents, "ConfigMap")["data"];
    for (name, text) in data.as_object().unwrap() {
        examples.push((
            format!("cronjob.yaml: {name}"),
            text.as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(examples.len(), 4);
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in examples {
        let path = dir.path().join("example.toml");
        std::fs::write(&path, text).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cmafleet"))
            .args(["run", "--print-config", "--config"])
            .arg(&path)
            .env_remove("JOB_COMPLETION_INDEX")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(printed.contains("# config file"), "{printed}");
    }
}

#[test]
fn the_shipped_settings_keep_every_run_s_final_metrics_for_the_alerts() {
    let mut files = BTreeSet::new();
    for (mode, name) in UNITS {
        let settings = settings_of(name);
        let textfile = settings.metrics_textfile.expect("a textfile");
        assert_eq!(
            textfile.parent(),
            Some(Path::new("/var/lib/prometheus/node-exporter")),
            "{name}: node_exporter's textfile directory"
        );
        let file = textfile.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(file.ends_with(".prom") && file.contains(mode), "{file}");
        files.insert(file);
        // The comment says how to switch to a Pushgateway.
        assert!(read(&format!("deploy/config/{name}")).contains("# pushgateway = "));
    }
    assert_eq!(files.len(), 2, "one file per mode: {files:?}");
}

#[test]
fn the_deploy_readme_explains_every_file_and_every_exit_code() {
    let readme = read("deploy/README.md");
    let mut files = Vec::new();
    for dir in [
        "deploy",
        "deploy/systemd",
        "deploy/cron",
        "deploy/kubernetes",
        "deploy/config",
    ] {
        for entry in std::fs::read_dir(repo(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && path.file_name().unwrap() != "README.md" {
                files.push(path.file_name().unwrap().to_str().unwrap().to_owned());
            }
        }
    }
    assert!(files.len() >= 12, "{files:?}");
    for file in files {
        assert!(
            readme.contains(&file),
            "deploy/README.md does not explain {file}"
        );
    }
    assert!(
        readme.contains("prometheus/"),
        "points to the Prometheus files"
    );
    for code in [
        exit::DETACHED,
        exit::ONLINE_CHECK_FAILED,
        exit::TEMP_FAIL,
        exit::SITES_FAILED,
    ] {
        assert!(readme.contains(&format!("`{code}`")), "exit {code}");
    }
}

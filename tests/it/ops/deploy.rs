//! The deploy files, checked statically (no cluster, no Docker daemon here): every
//! Kubernetes document parses and carries what makes it safe to run unattended, the
//! Dockerfile is multi-stage with a dependency layer and a distroless non-root runtime, the
//! systemd units and cron line have the properties deploy/README.md promises, the example
//! settings files resolve, and the README explains every file. (`.ci/checks/deploy.sh` also
//! runs `systemd-analyze verify` on the units.)

use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|error| panic!("read {path}: {error}"))
}

/// Every YAML document of a file, as JSON values.
fn documents(path: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    serde_yaml_ng::Deserializer::from_str(&read(path))
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|error| panic!("{path}: {error}"))
        })
        .collect()
}

fn kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|document| document["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// Checks shared by the CronJob's and the Indexed Job's job spec.
fn assert_safe_job(job: &Value, what: &str, secret_as_env: bool) {
    let rules = job["podFailurePolicy"]["rules"]
        .as_array()
        .expect("podFailurePolicy");
    let fails_job_on = |code: i64| {
        rules.iter().any(|rule| {
            rule["action"] == "FailJob"
                && rule["onExitCodes"]["operator"] == "In"
                && rule["onExitCodes"]["containerName"] == "cmafleet"
                && rule["onExitCodes"]["values"]
                    .as_array()
                    .is_some_and(|values| values.iter().any(|v| v == code))
        })
    };
    for code in [65, 78] {
        assert!(
            fails_job_on(code),
            "{what}: exit {code} fails the Job at once"
        );
    }
    let pod = &job["template"]["spec"];
    assert_eq!(
        pod["restartPolicy"], "Never",
        "{what}: podFailurePolicy needs Never"
    );
    assert!(
        pod["terminationGracePeriodSeconds"].as_i64().unwrap() >= 60,
        "{what}: time to drain on SIGTERM"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "cmafleet");
    assert_eq!(container["args"][0], "run", "{what}");
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"], false,
        "{what}"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    if secret_as_env {
        assert!(
            container["envFrom"]
                .as_array()
                .unwrap()
                .iter()
                .any(|source| source["secretRef"]["name"].is_string()),
            "{what}: credentials from a Secret as environment variables"
        );
    }
    let mounts = container["volumeMounts"].as_array().unwrap();
    let state = mounts
        .iter()
        .find(|mount| mount["mountPath"] == "/var/lib/cmafleet")
        .expect("the state dir is mounted");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|volume| volume["name"] == state["name"])
        .unwrap();
    assert!(
        volume["persistentVolumeClaim"]["claimName"].is_string(),
        "{what}: the state dir outlives the pod"
    );
}

#[test]
fn the_cronjob_runs_nightly_one_at_a_time_on_a_persistent_state_dir() {
    let documents = documents("deploy/kubernetes/cronjob.yaml");
    for document in &documents {
        for key in ["apiVersion", "kind", "metadata"] {
            assert!(document.get(key).is_some(), "{key} in {document}");
        }
    }
    let cronjob = kind(&documents, "CronJob");
    assert_eq!(cronjob["apiVersion"], "batch/v1");
    assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Forbid");
    let schedule = cronjob["spec"]["schedule"].as_str().unwrap();
    assert_eq!(schedule.split_whitespace().count(), 5, "{schedule}");
    let job = &cronjob["spec"]["jobTemplate"]["spec"];
    assert_safe_job(job, "CronJob", true);
    let claim = kind(&documents, "PersistentVolumeClaim");
    let volumes = job["template"]["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]),
        "the CronJob mounts the claim defined beside it"
    );
    let config = kind(&documents, "ConfigMap");
    let settings = config["data"]["check.toml"].as_str().unwrap();
    let settings = cmafleet::config::SettingsFile::parse(settings).expect("a valid settings file");
    assert_eq!(settings.mode.as_deref(), Some("check"));
}

#[test]
fn the_indexed_job_shards_by_completion_index() {
    let documents = documents("deploy/kubernetes/indexed-job.yaml");
    let job = kind(&documents, "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let completions = spec["completions"].as_i64().unwrap();
    assert_eq!(spec["parallelism"].as_i64(), Some(completions));
    assert_safe_job(spec, "Indexed Job", true);
    let container = &spec["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect();
    let shards = args
        .iter()
        .position(|arg| *arg == "--shards")
        .map(|at| args[at + 1])
        .expect("--shards N");
    assert_eq!(
        shards,
        completions.to_string(),
        "one shard per completion index"
    );
    // Each shard keeps its own state store.
    let state = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mount| mount["mountPath"] == "/var/lib/cmafleet")
        .unwrap();
    assert!(
        state["subPathExpr"]
            .as_str()
            .unwrap()
            .contains("$(JOB_COMPLETION_INDEX)"),
        "{state}"
    );
    let config = kind(&documents, "ConfigMap");
    let settings = config["data"]["migrate.toml"].as_str().unwrap();
    cmafleet::config::SettingsFile::parse(settings).expect("a valid settings file");
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

/// `Key=Value` settings of a unit file's `[section]`.
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

#[test]
fn the_systemd_units_run_nightly_catch_up_and_drain_on_stop() {
    let timer = unit("deploy/systemd/cmafleet-check.timer", "Timer");
    assert_eq!(setting(&timer, "Persistent"), "true");
    assert!(!setting(&timer, "RandomizedDelaySec").is_empty());
    assert!(setting(&timer, "OnCalendar").contains("01:00"));
    assert_eq!(setting(&timer, "Unit"), "cmafleet-check.service");
    for (name, config) in [("check", "check.toml"), ("migrate", "migrate.toml")] {
        let path = format!("deploy/systemd/cmafleet-{name}.service");
        let service = unit(&path, "Service");
        assert_eq!(setting(&service, "Type"), "oneshot", "{path}");
        assert_eq!(setting(&service, "KillSignal"), "SIGTERM", "{path}");
        assert_eq!(setting(&service, "StateDirectory"), "cmafleet", "{path}");
        let exec = setting(&service, "ExecStart");
        assert!(
            exec.starts_with("/usr/local/bin/cmafleet run --config /etc/cmafleet/")
                && exec.contains(config),
            "{exec}"
        );
        assert!(setting(&service, "EnvironmentFile").starts_with("/etc/cmafleet/"));
    }
}

#[test]
fn the_cron_example_uses_flock_and_mailto() {
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
    assert_eq!(fields[6..8], ["flock", "-n"], "{}", jobs[0]);
    assert!(jobs[0].contains("cmafleet run --config /etc/cmafleet/check.toml"));
}

#[test]
fn the_example_settings_files_resolve() {
    let mut examples: Vec<(String, String)> = ["check.toml", "migrate.toml"]
        .into_iter()
        .map(|name| (name.to_owned(), read(&format!("deploy/config/{name}"))))
        .collect();
    for path in [
        "deploy/kubernetes/cronjob.yaml",
        "deploy/kubernetes/indexed-job.yaml",
    ] {
        let documents = documents(path);
        let data = &kind(&documents, "ConfigMap")["data"];
        for (name, text) in data.as_object().unwrap() {
            examples.push((format!("{path}: {name}"), text.as_str().unwrap().to_owned()));
        }
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
fn the_deploy_readme_explains_every_file() {
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
    assert!(files.len() >= 10, "{files:?}");
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
}

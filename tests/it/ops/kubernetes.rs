//! The Kubernetes manifests and the PodMonitor, checked statically (no cluster here): each
//! document parses and carries what makes it safe to run unattended, the check CronJob and
//! the migration Job share one ReadWriteOnce state volume (each shard its own), exit codes
//! take the path deploy/README.md promises (3 not retried, 75 retried, 2/4/65/78 fail at
//! once) by evaluating the podFailurePolicy rules as the Job controller does, and the
//! PodMonitor scrapes a port every pod declares.

use std::collections::BTreeSet;

use serde_json::Value;

use super::deploy::{documents_of, kind, read};

/// The sharded template rendered for shard `index` of `count`, as deploy/README.md says.
fn shard(index: u32, count: u32) -> Vec<Value> {
    let text = read("deploy/kubernetes/sharded.yaml")
        .replace("SHARD_INDEX", &index.to_string())
        .replace("SHARD_COUNT", &count.to_string());
    documents_of("sharded.yaml", &text)
}

/// The Job spec of a CronJob or a Job.
fn job_spec(document: &Value) -> &Value {
    match document["kind"].as_str() {
        Some("CronJob") => &document["spec"]["jobTemplate"]["spec"],
        Some("Job") => &document["spec"],
        other => panic!("not a Job or CronJob: {other:?}"),
    }
}

/// What the Job controller does with a pod whose `container` exited `code`: the action of
/// the first podFailurePolicy rule that matches (rules are evaluated in order), or `Count`
/// (the default: retried within backoffLimit).
fn action_for(job: &Value, container: &str, code: i64) -> String {
    let rules = job["podFailurePolicy"]["rules"]
        .as_array()
        .expect("a podFailurePolicy");
    for rule in rules {
        let on = &rule["onExitCodes"];
        if on.is_null() {
            continue;
        }
        if on["containerName"].is_string() && on["containerName"] != container {
            continue;
        }
        let values = on["values"].as_array().expect("exit code values");
        assert!(
            values.iter().all(|v| v.as_i64() != Some(0)),
            "exit 0 is never a failure: {rule}"
        );
        let listed = values.iter().any(|v| v.as_i64() == Some(code));
        let matches = match on["operator"].as_str() {
            Some("In") => listed,
            Some("NotIn") => !listed,
            other => panic!("unknown operator {other:?}"),
        };
        if matches {
            return rule["action"].as_str().unwrap().to_owned();
        }
    }
    "Count".to_owned()
}

/// Every container and init container of a pod spec.
fn containers(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|key| pod[*key].as_array())
        .flatten()
        .collect()
}

fn args(container: &Value) -> Vec<&str> {
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect()
}

fn flag<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|arg| *arg == flag)
        .map(|at| args[at + 1])
}

/// Checks shared by every CronJob and Job: exit codes, sandbox, resources, metrics port,
/// `validate --online` first. Returns the claim that holds the state dir.
fn assert_safe_job(document: &Value, mode: &str) -> String {
    let name = document["metadata"]["name"].as_str().unwrap().to_owned();
    let what = name.as_str();
    let job = job_spec(document);
    // Exit codes (README, "Exit codes"; deploy/README.md).
    for code in [2, 65, 78] {
        assert_eq!(
            action_for(job, "cmafleet", code),
            "FailJob",
            "{what}: {code}"
        );
    }
    assert_eq!(
        action_for(job, "cmafleet", 3),
        "FailJob",
        "{what}: the deadline (3) is a normal night, never retried into the day"
    );
    assert_eq!(
        action_for(job, "cmafleet", 1),
        "FailJob",
        "{what}: sites failed or blocked (1): running again changes nothing"
    );
    assert_eq!(
        action_for(job, "cmafleet", 75),
        "Count",
        "{what}: a held lock (75) is retried later"
    );
    assert!(
        job["backoffLimit"].as_i64().unwrap() >= 6,
        "{what}: enough retries for 75 to mean later"
    );
    for code in [2, 4, 65, 78] {
        assert_eq!(
            action_for(job, "validate", code),
            "FailJob",
            "{what}: {code}"
        );
    }
    let evicted = job["podFailurePolicy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|rule| {
            rule["action"] == "Ignore" && rule["onPodConditions"][0]["type"] == "DisruptionTarget"
        });
    assert!(
        evicted,
        "{what}: an evicted pod is retried without counting"
    );

    let pod = &job["template"]["spec"];
    assert_eq!(
        pod["restartPolicy"], "Never",
        "{what}: podFailurePolicy needs it"
    );
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "{what}: cmafleet never talks to the Kubernetes API"
    );
    assert!(
        pod["terminationGracePeriodSeconds"].as_i64().unwrap() >= 60,
        "{what}"
    );
    let security = &pod["securityContext"];
    assert_eq!(security["runAsNonRoot"], true, "{what}");
    assert_eq!(
        security["seccompProfile"]["type"], "RuntimeDefault",
        "{what}"
    );
    for container in containers(pod) {
        let which = format!("{what}/{}", container["name"]);
        let security = &container["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false, "{which}");
        assert_eq!(security["readOnlyRootFilesystem"], true, "{which}");
        assert_eq!(
            security["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{which}"
        );
        let resources = &container["resources"];
        for (kind, resource) in [
            ("requests", "cpu"),
            ("requests", "memory"),
            ("limits", "cpu"),
            ("limits", "memory"),
        ] {
            assert!(
                resources[kind][resource].is_string(),
                "{which}: resources.{kind}.{resource}"
            );
        }
        assert!(
            container["envFrom"][0]["secretRef"]["name"].is_string(),
            "{which}: credentials from a Secret as environment variables"
        );
        assert_eq!(container["image"], pod["containers"][0]["image"], "{which}");
    }

    // The run: its settings, the port the PodMonitor scrapes.
    let run = &pod["containers"][0];
    assert_eq!(run["name"], "cmafleet", "{what}");
    let run_args = args(run);
    assert_eq!(run_args[0], "run", "{what}");
    let config = flag(&run_args, "--config").expect("--config");
    assert!(
        config.ends_with(&format!("/{mode}.toml")),
        "{what}: {config}"
    );
    let listen = flag(&run_args, "--metrics-listen").expect("--metrics-listen");
    let (host, port) = listen.rsplit_once(':').unwrap();
    assert_eq!(host, "0.0.0.0", "{what}: reachable from the scraper");
    let port: i64 = port.parse().unwrap();
    let ports = run["ports"].as_array().expect("declared ports");
    assert!(
        ports
            .iter()
            .any(|p| p["name"] == "metrics" && p["containerPort"] == port),
        "{what}: a `metrics` port {port}: {ports:?}"
    );

    // validate --online first, with the run's settings and inventory.
    let init = pod["initContainers"].as_array().expect("an init container");
    assert_eq!(init.len(), 1, "{what}");
    let validate = &init[0];
    assert_eq!(validate["name"], "validate");
    let validate_args = args(validate);
    assert_eq!(validate_args[0], "validate", "{what}");
    assert!(validate_args.contains(&"--online"), "{what}");
    assert_eq!(flag(&validate_args, "--config"), Some(config), "{what}");
    assert_eq!(
        validate_args[1], "/etc/cmafleet-inventory/inventory.csv",
        "{what}: the inventory the settings name"
    );

    // The state dir is on a claim.
    let state = run["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mount| mount["mountPath"] == "/var/lib/cmafleet")
        .expect("the state dir is mounted");
    assert!(state["subPath"].is_null() && state["subPathExpr"].is_null());
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|volume| volume["name"] == state["name"])
        .unwrap();
    volume["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: the state dir outlives the pod"))
        .to_owned()
}

fn assert_read_write_once(claim: &Value) {
    assert_eq!(
        claim["spec"]["accessModes"],
        serde_json::json!(["ReadWriteOnce"]),
        "{claim}"
    );
}

#[test]
fn the_check_cronjob_and_the_migration_job_share_one_read_write_once_state_volume() {
    let cron_documents = documents_of("cronjob.yaml", &read("deploy/kubernetes/cronjob.yaml"));
    for document in &cron_documents {
        for key in ["apiVersion", "kind", "metadata"] {
            assert!(document.get(key).is_some(), "{key} in {document}");
        }
    }
    let cronjob = kind(&cron_documents, "CronJob");
    assert_eq!(cronjob["apiVersion"], "batch/v1");
    assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Forbid");
    let schedule = cronjob["spec"]["schedule"].as_str().unwrap();
    assert_eq!(schedule.split_whitespace().count(), 5, "{schedule}");
    let check_claim = assert_safe_job(cronjob, "check");
    let claim = kind(&cron_documents, "PersistentVolumeClaim");
    assert_eq!(claim["metadata"]["name"], check_claim.as_str());
    assert_read_write_once(claim);

    let job_documents = documents_of(
        "migrate-job.yaml",
        &read("deploy/kubernetes/migrate-job.yaml"),
    );
    let job = kind(&job_documents, "Job");
    assert_eq!(job["apiVersion"], "batch/v1");
    let migrate_claim = assert_safe_job(job, "migrate");
    assert_eq!(
        migrate_claim, check_claim,
        "one state store: jobs reused, the per-server cap shared, the lock serialising"
    );
    assert!(
        job_documents
            .iter()
            .all(|document| document["kind"] != "PersistentVolumeClaim"),
        "the Job uses the CronJob's claim, it does not define another"
    );

    // Both runs' settings (one ConfigMap) parse and name the same state dir and inventory.
    let config = kind(&cron_documents, "ConfigMap");
    let mut state_dirs = BTreeSet::new();
    for (file, mode) in [("check.toml", "check"), ("migrate.toml", "migrate")] {
        let text = config["data"][file].as_str().unwrap();
        let settings = cmafleet::config::SettingsFile::parse(text).expect("valid settings");
        assert_eq!(settings.mode.as_deref(), Some(mode));
        state_dirs.insert(settings.state_dir.expect("a state dir"));
        assert_eq!(
            settings.inventory.as_deref(),
            Some(std::path::Path::new(
                "/etc/cmafleet-inventory/inventory.csv"
            ))
        );
        assert!(
            settings.pushgateway.is_some(),
            "{file}: the final values outlive the pod"
        );
    }
    assert_eq!(state_dirs.len(), 1, "{state_dirs:?}");
}

#[test]
fn each_shard_keeps_its_own_read_write_once_volume_for_check_and_migration() {
    let count = 4;
    let mut claims = BTreeSet::new();
    for index in 0..count {
        let documents = shard(index, count);
        let claim = kind(&documents, "PersistentVolumeClaim");
        assert_read_write_once(claim);
        let name = claim["metadata"]["name"].as_str().unwrap().to_owned();
        assert!(
            name.ends_with(&format!("-{index}")),
            "named by index: {name}"
        );
        for (kind_name, mode) in [("CronJob", "check"), ("Job", "migrate")] {
            let document = kind(&documents, kind_name);
            let used = assert_safe_job(document, mode);
            assert_eq!(used, name, "shard {index}: {kind_name}");
            let pod = &job_spec(document)["template"];
            assert_eq!(
                pod["metadata"]["labels"]["cmafleet/shard"],
                index.to_string(),
                "the PodMonitor's shard label"
            );
            let run = args(&pod["spec"]["containers"][0]);
            assert_eq!(
                flag(&run, "--shard"),
                Some(format!("{index}/{count}").as_str())
            );
            // Its live check tries the shard's own rows, not the whole inventory.
            let validate = args(&pod["spec"]["initContainers"][0]);
            assert_eq!(validate.first(), Some(&"validate"));
            assert_eq!(
                flag(&validate, "--shard"),
                Some(format!("{index}/{count}").as_str()),
                "shard {index}: {kind_name}'s validate"
            );
        }
        let names: BTreeSet<&str> = documents
            .iter()
            .map(|document| document["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        claims.insert(name);
    }
    assert_eq!(
        claims.len(),
        count as usize,
        "one claim per shard: {claims:?}"
    );
    // The template leaves nothing unrendered.
    let rendered = serde_json::to_string(&shard(1, 4)).unwrap();
    assert!(!rendered.contains("SHARD_"), "{rendered}");
}

#[test]
fn no_manifest_puts_the_state_store_on_a_shared_filesystem() {
    for file in ["cronjob.yaml", "migrate-job.yaml", "sharded.yaml"] {
        let text = read(&format!("deploy/kubernetes/{file}"));
        let documents = documents_of(file, &text.replace("SHARD_", "0"));
        for document in &documents {
            let text = document.to_string();
            for shared in ["ReadWriteMany", "ReadOnlyMany", "\"nfs\""] {
                assert!(!text.contains(shared), "{file}: {shared}");
            }
        }
    }
    let claim = read("deploy/kubernetes/cronjob.yaml");
    assert!(
        claim.contains("WAL") && claim.contains("NFS"),
        "the claim says why: SQLite's WAL is not safe on network filesystems"
    );
}

#[test]
fn the_podmonitor_scrapes_a_port_every_pod_declares() {
    let monitor = documents_of(
        "podmonitor.yaml",
        &read("deploy/prometheus/podmonitor.yaml"),
    );
    let monitor = kind(&monitor, "PodMonitor");
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    let port = endpoint["port"].as_str().unwrap();
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    let job_label = monitor["spec"]["jobLabel"].as_str().expect("jobLabel");
    let mut documents = documents_of("cronjob.yaml", &read("deploy/kubernetes/cronjob.yaml"));
    documents.extend(documents_of(
        "migrate-job.yaml",
        &read("deploy/kubernetes/migrate-job.yaml"),
    ));
    documents.extend(shard(2, 4));
    let mut pods = 0;
    for document in documents
        .iter()
        .filter(|document| matches!(document["kind"].as_str(), Some("CronJob" | "Job")))
    {
        let template = &job_spec(document)["template"];
        let labels = &template["metadata"]["labels"];
        for (key, value) in selector {
            assert_eq!(
                &labels[key], value,
                "{}: selected",
                document["metadata"]["name"]
            );
        }
        assert_eq!(
            labels[job_label], "cmafleet",
            "job=\"cmafleet\", as the Pushgateway's groups"
        );
        let declared = template["spec"]["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|declared| declared["name"] == port);
        assert!(declared, "{}: port {port}", document["metadata"]["name"]);
        pods += 1;
    }
    assert_eq!(pods, 4);
    // The shard label of sharded pods becomes the `shard` target label.
    let relabel = &endpoint["relabelings"][0];
    assert_eq!(
        relabel["sourceLabels"][0],
        "__meta_kubernetes_pod_label_cmafleet_shard"
    );
    assert_eq!(relabel["targetLabel"], "shard");
}

//! Log lines of real runs against the simulator: `--log-format json` gives one parseable
//! object per line with the site and stage of the pipeline that wrote it, text lines name
//! them too, and a run at trace level — every crate, the HTTP stack included — shows none
//! of the secrets the inventory references, in any encoding they travel in.

use base64::Engine as _;
use serde_json::Value;

use crate::support::fleet::{CLOUD_TOKEN, Fleet, Row, RunOutput, SERVER_PASSWORD, SERVER_PAT};

/// A fleet with both kinds of server credentials and two cloud users.
async fn fleet() -> Fleet {
    let rows = vec![
        Row::jira("acme-jira"),
        Row::confluence("acme-wiki").basic_auth(),
        Row::jira("globex").user("bob@example.com"),
    ];
    Fleet::start("[defaults]\ncheck_duration = \"2m\"\n", 3600.0, rows).await
}

fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a JSON object ({error}): {line}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_site_and_stage() {
    let fleet = fleet().await;
    let output = fleet
        .run("check", "json", &["--log-format", "json", "-v"])
        .await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let lines = json_lines(&output.stderr);
    assert!(lines.len() >= 10, "{}", output.stderr);
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "no `{key}` in {line}");
        }
        let stamp = line["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG"].contains(&line["level"].as_str().unwrap()),
            "-v stops at debug: {line}"
        );
    }
    // Each site's pipeline says where it is, and how it ended, with its site and stage.
    for site in ["acme-jira", "acme-wiki", "globex"] {
        let of_site: Vec<&Value> = lines.iter().filter(|l| l["site"] == site).collect();
        let stages: Vec<&str> = of_site.iter().filter_map(|l| l["stage"].as_str()).collect();
        for stage in ["job", "attach", "check"] {
            assert!(stages.contains(&stage), "{site}: stages {stages:?}");
        }
        let ended = of_site
            .iter()
            .find(|l| l["outcome"].is_string())
            .unwrap_or_else(|| panic!("{site}: no line with its outcome"));
        assert_eq!(ended["outcome"], "succeeded");
        assert_eq!(ended["level"], "INFO");
    }
    let progress = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().starts_with("finished: 3/3"))
        .expect("a final progress line");
    assert_eq!(progress["total"], 3);
    assert!(
        lines.iter().all(|l| l.get("shard").is_none()),
        "no shard field when not sharded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_name_the_site_and_stage_without_colour_off_a_terminal() {
    let fleet = fleet().await;
    let output = fleet.run("check", "text", &["-v"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(!output.stderr.contains('\x1b'), "no ANSI codes in a pipe");
    let finished = output
        .stderr
        .lines()
        .find(|line| line.contains("site=globex") && line.contains("outcome=succeeded"))
        .unwrap_or_else(|| panic!("no outcome line for globex:\n{}", output.stderr));
    assert!(finished.contains(" INFO site=globex stage="), "{finished}");

    // -q: warnings and errors only; a clean run says nothing on stderr.
    let quiet = fleet.run("check", "quiet", &["-q"]).await;
    assert_eq!(quiet.code, 0);
    assert_eq!(quiet.stderr.trim(), "", "-q on a clean run");
    assert!(
        quiet.stdout.contains("succeeded 3"),
        "the summary stays: {}",
        quiet.stdout
    );
}

/// Every form a secret takes on the wire: as is, and inside a Basic `Authorization` value.
fn secret_forms() -> Vec<String> {
    let basic = |user: &str, secret: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    };
    let mut forms = vec![
        CLOUD_TOKEN.to_owned(),
        SERVER_PAT.to_owned(),
        SERVER_PASSWORD.to_owned(),
        basic("alice@example.com", CLOUD_TOKEN),
        basic("bob@example.com", CLOUD_TOKEN),
        basic("migrator", SERVER_PASSWORD),
    ];
    // A distinctive piece of each, in case a line cuts or escapes the whole.
    forms.extend(["5ecret-Vx9", "5ecret-Qw7", "5ecret-Zr3"].map(String::from));
    forms
}

fn assert_no_secret(output: &RunOutput, what: &str) {
    for form in secret_forms() {
        for (stream, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            if let Some(at) = text.find(&form) {
                let line = text[..at].rsplit('\n').next().unwrap_or_default();
                panic!("{what}: a secret in {stream}: …{line}{form}…");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_at_trace_level_logs_no_secret() {
    let fleet = fleet().await;
    // Everything at trace, and the HTTP crates named explicitly so their cap is lifted too.
    let everything =
        "trace,hyper=trace,hyper_util=trace,reqwest=trace,h2=trace,rustls=trace,tower=trace";
    for format in ["text", "json"] {
        let mut command = fleet.command("check", &format!("trace-{format}"));
        command
            .env("RUST_LOG", everything)
            .args(["--log-format", format]);
        let output = Fleet::output(command).await;
        assert_eq!(output.code, 0, "{}", output.stderr);
        let lines = output.stderr.lines().count();
        assert!(
            output.stderr.contains("TRACE") && lines > 50,
            "a trace-level log ({lines} lines)"
        );
        assert!(
            output.stderr.contains("127.0.0.1"),
            "the HTTP stack's own lines are in it"
        );
        assert_no_secret(&output, &format!("RUST_LOG=trace, {format}"));
        if format == "json" {
            for line in json_lines(&output.stderr) {
                assert_ne!(
                    line["target"], "log",
                    "bridged lines name their crate: {line}"
                );
                let object = line.as_object().unwrap();
                assert!(object.keys().all(|key| !key.starts_with("log.")), "{line}");
            }
        }
    }
    // A run that fails on a secret names the reference, never a value.
    let mut command = fleet.command("check", "bad-secret");
    command
        .env_remove("FLEET_SERVER_PAT")
        .env("RUST_LOG", "trace");
    let output = Fleet::output(command).await;
    assert_eq!(output.code, 78, "{}", output.stderr);
    assert!(
        output.stderr.contains("FLEET_SERVER_PAT"),
        "{}",
        output.stderr
    );
    assert_no_secret(&output, "a failed secret reference");
}

/// A fatal error (here an unset secret, exit 78) is said where cron mails it: on stdout as
/// well as on stderr (which a cron line sends to a log file), and as JSON with
/// `--log-format json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_error_reaches_stdout_in_the_log_format() {
    let fleet = fleet().await;
    let mut text = fleet.command("check", "text");
    text.env_remove("FLEET_CLOUD_TOKEN");
    let run = Fleet::output(text).await;
    assert_eq!(run.code, 78, "{}", run.stderr);
    let said = "secret reference(s) do not resolve; set them and run again";
    let on = |stream: &str| {
        stream
            .lines()
            .any(|line| line.starts_with("error: ") && line.ends_with(said))
    };
    assert!(on(&run.stdout), "stdout: {}", run.stdout);
    assert!(on(&run.stderr), "stderr: {}", run.stderr);

    let mut json = fleet.command("check", "json");
    json.env_remove("FLEET_CLOUD_TOKEN")
        .args(["--log-format", "json"]);
    let run = Fleet::output(json).await;
    assert_eq!(run.code, 78, "{}", run.stderr);
    let fatal: Value = serde_json::from_str(run.stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", run.stdout));
    assert_eq!(fatal["level"], "ERROR");
    assert_eq!(fatal["exit_code"], 78);
    assert!(
        fatal["message"]
            .as_str()
            .is_some_and(|message| message.contains("secret reference(s) do not resolve")),
        "{fatal}"
    );
    assert!(
        run.stderr
            .lines()
            .any(|line| line == run.stdout.lines().last().unwrap()),
        "the same line on stderr: {}",
        run.stderr
    );
}

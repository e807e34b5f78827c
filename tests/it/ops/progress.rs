//! How a run shows progress: without a terminal (cron, systemd, Kubernetes) periodic INFO
//! lines and one at each wave boundary; on a terminal (a pseudo-terminal from util-linux's
//! `script`) the live view with its bar, and no periodic lines.

use std::process::Stdio;
use std::time::Duration;

use crate::support::fleet::{Fleet, Row};

/// Checks that take a few real seconds at this scale, in two waves.
const SCENARIO: &str = "[defaults]\ncheck_duration = \"40m\"\n";
const SCALE: f64 = 1200.0;

fn rows() -> Vec<Row> {
    vec![
        Row::jira("alpha").wave("w1"),
        Row::jira("bravo").wave("w1").user("bob@example.com"),
        Row::confluence("charlie").wave("w2"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_a_terminal_prints_progress_lines_and_wave_boundaries() {
    let fleet = Fleet::start(SCENARIO, SCALE, rows()).await;
    let output = fleet
        .run("check", "lines", &["--progress-interval", "300ms"])
        .await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let progress: Vec<&str> = output
        .stderr
        .lines()
        .filter(|line| line.contains(" INFO progress: "))
        .collect();
    // Checks take 2 s per wave at this scale: a line every 300 ms gives several.
    assert!(progress.len() >= 3, "periodic lines:\n{}", output.stderr);
    assert!(progress[0].contains("/3 sites done"), "{}", progress[0]);
    let wave = output
        .stderr
        .lines()
        .find(|line| line.contains("wave w1 done (2 sites)"))
        .unwrap_or_else(|| panic!("no wave boundary line:\n{}", output.stderr));
    assert!(wave.contains("next: wave w2"), "{wave}");
    let finished: Vec<&str> = output
        .stderr
        .lines()
        .filter(|line| line.contains(" INFO finished: 3/3 sites done (succeeded 3)"))
        .collect();
    assert_eq!(finished.len(), 1, "{}", output.stderr);
    assert!(
        !output.stderr.contains('\x1b'),
        "no terminal codes in a pipe"
    );
}

/// `script` from util-linux, or `None` after a loud notice (a failure under `CI=true`).
fn script() -> Option<std::path::PathBuf> {
    let found = crate::support::prometheus::find("script");
    if found.is_none() {
        let notice = "a_run_on_a_terminal_shows_the_live_view: `script` (util-linux) not found";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{notice}; CI=true, so this is a failure"
        );
        eprintln!("\n!!! SKIPPED {notice}\n");
    }
    found
}

/// A shell word for `script -c`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_a_terminal_shows_the_live_view() {
    let Some(script) = script() else { return };
    let fleet = Fleet::start(SCENARIO, SCALE, rows()).await;
    let planned = fleet.command("check", "tty");
    let planned = planned.as_std();
    // The same run, minus `--progress never`, on a pseudo-terminal.
    let mut words = vec![quote(planned.get_program().to_str().unwrap())];
    let mut args = planned
        .get_args()
        .map(|arg| arg.to_str().unwrap().to_owned());
    while let Some(arg) = args.next() {
        if arg == "--progress" {
            args.next();
            continue;
        }
        words.push(quote(&arg));
    }
    words.extend(["--progress-interval", "300ms"].map(String::from));
    // A terminal of 80 columns, the narrowest a consultant's laptop window is likely to be.
    let line = format!("stty cols 80 rows 40; {}", words.join(" "));
    let mut command = tokio::process::Command::new(script);
    command
        .args(["-qfec", &line, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in planned.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let child = command.spawn().expect("script starts");
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the run ends")
        .expect("script ran");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{screen}");
    assert!(
        screen.contains("3/3 sites"),
        "the bar's final count:\n{screen}"
    );
    assert!(
        screen.contains("check "),
        "the bar's prefix names the mode:\n{screen}"
    );
    assert!(
        screen.contains("\x1b["),
        "the live view redraws with terminal codes:\n{screen}"
    );
    assert!(
        !screen.contains(" INFO progress: "),
        "no periodic progress lines under the live view:\n{screen}"
    );
    assert!(
        screen.contains("Reports: "),
        "the summary follows:\n{screen}"
    );
    // Every line the live view drew fits 80 columns. indicatif pads each line to the width
    // and lets the terminal wrap to the next row, so the screen's rows are 80-column chunks;
    // a line too wide would leave a row starting mid-line ("sites  ETA …"). Log lines and the
    // summary are not the view's.
    let rows: Vec<String> = visible_lines(&screen)
        .iter()
        .take_while(|line| !line.starts_with("Reports: "))
        .filter(|line| !line.contains(" INFO ") && !line.contains(" WARN "))
        .flat_map(|line| {
            let chars: Vec<char> = line.chars().collect();
            chars
                .chunks(80)
                .map(|row| row.iter().collect::<String>().trim_end().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|row| !row.is_empty())
        .collect();
    assert!(
        rows.iter()
            .any(|row| row.starts_with('[') && row.contains("/3 sites")),
        "the bar, whole on one row: {rows:#?}"
    );
    let view_row = |row: &str| {
        row.starts_with("check ")
            || row.starts_with('[')
            || row.starts_with("  ")
            || row.starts_with("none finished yet")
            || row.starts_with("succeeded ")
    };
    for row in &rows {
        assert!(
            view_row(row),
            "a row that starts mid-line: a live view line wrapped at 80 columns: {row:?} in {rows:#?}"
        );
    }
}

/// The lines a terminal shows for `screen`: terminal codes removed, split at every line
/// feed and carriage return (a redraw starts over at the line's beginning).
fn visible_lines(screen: &str) -> Vec<String> {
    let mut plain = String::with_capacity(screen.len());
    let mut chars = screen.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters… final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .split(['\n', '\r'])
        .map(|line| line.trim_end().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_always_draws_the_live_view_into_a_pipe_too() {
    let fleet = Fleet::start("", 3600.0, vec![Row::jira("alpha"), Row::jira("bravo")]).await;
    let planned = fleet.command("check", "always");
    // The same run with `--progress always` instead of the harness's `never`.
    let planned = planned.as_std();
    let args: Vec<String> = planned
        .get_args()
        .map(|arg| arg.to_str().unwrap().to_owned())
        .collect();
    let at = args.iter().position(|arg| arg == "--progress").unwrap();
    let mut always = tokio::process::Command::new(planned.get_program());
    always
        .args(&args[..at])
        .args(&args[at + 2..])
        .args(["--progress", "always"])
        .envs(
            planned
                .get_envs()
                .filter_map(|(key, value)| Some((key, value?))),
        )
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = Fleet::output(always).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stderr.contains("2/2 sites"), "{}", output.stderr);
    assert!(output.stderr.contains("\x1b["), "drawn with ANSI codes");
    assert!(
        !output.stderr.contains(" INFO progress: "),
        "{}",
        output.stderr
    );
}

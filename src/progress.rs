//! How a long run shows its progress to people: on a terminal, a live view (an overall bar,
//! counts by outcome, the sites in flight with their stage, an ETA); elsewhere (cron, systemd,
//! Kubernetes), one INFO line every interval. Log lines written while the live view is up go
//! through [`LogWriter`], which lifts the view out of the way.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ProgressMode;
use crate::metrics::registry::{PENDING, RUNNING};
use crate::metrics::status::RunStatus;

/// Lines of in-flight sites shown under the bar.
const IN_FLIGHT_LINES: usize = 8;

/// The live view, when one is up: log lines must suspend it while they print.
static LIVE: OnceLock<MultiProgress> = OnceLock::new();

/// Whether a live view should be used for `mode` (auto: stderr is a terminal).
pub fn live_enabled(mode: Option<ProgressMode>) -> bool {
    match mode.unwrap_or(ProgressMode::Auto) {
        ProgressMode::Always => true,
        ProgressMode::Never => false,
        ProgressMode::Auto => std::io::stderr().is_terminal(),
    }
}

/// Builds the progress callback the coordinator calls after every refresh.
pub fn reporter(live: bool, interval: Duration) -> Box<dyn FnMut(&RunStatus) + Send> {
    if live {
        let mut view = LiveView::new();
        Box::new(move |status| view.update(status))
    } else {
        let mut lines = ProgressLines {
            interval,
            last: None,
            last_wave_done: None,
        };
        Box::new(move |status| lines.update(status))
    }
}

struct LiveView {
    bar: ProgressBar,
    lines: Vec<ProgressBar>,
}

impl LiveView {
    fn new() -> LiveView {
        let multi = LIVE
            .get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)))
            .clone();
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:32.cyan/blue}] {pos}/{len} sites  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let lines = (0..IN_FLIGHT_LINES)
            .map(|_| {
                let line = multi.add(ProgressBar::new(0));
                line.set_style(
                    ProgressStyle::with_template("  {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                line
            })
            .collect();
        LiveView { bar, lines }
    }

    fn update(&mut self, status: &RunStatus) {
        let mode = status.mode.map(|mode| mode.as_str()).unwrap_or("run");
        self.bar.set_prefix(format!("{mode} {}", status.run_id));
        self.bar.set_length(status.total as u64);
        self.bar.set_position(done(status) as u64);
        self.bar.set_message(format!(
            "{}  running {}  {}",
            counts_text(status),
            count(status, RUNNING),
            eta_text(status)
        ));
        let in_flight = &status.in_flight;
        let now = chrono::Utc::now();
        for (index, line) in self.lines.iter().enumerate() {
            match in_flight.get(index) {
                Some(site) => line.set_message(format!(
                    "{:<32} {:<8} {}",
                    site.site,
                    site.stage.as_str(),
                    humantime::format_duration(Duration::from_secs(
                        (now - site.since).num_seconds().max(0) as u64
                    ))
                )),
                None => line.set_message(String::new()),
            }
        }
        if in_flight.len() > IN_FLIGHT_LINES
            && let Some(last) = self.lines.last()
        {
            last.set_message(format!(
                "… and {} more in flight",
                in_flight.len() - IN_FLIGHT_LINES + 1
            ));
        }
        if status.finished {
            self.bar.finish();
            for line in &self.lines {
                line.finish_and_clear();
            }
        }
    }
}

/// Periodic progress lines for runs without a terminal.
struct ProgressLines {
    interval: Duration,
    last: Option<Instant>,
    /// Sites done when the last wave boundary was reported (a wave ends when nothing runs).
    last_wave_done: Option<usize>,
}

impl ProgressLines {
    fn update(&mut self, status: &RunStatus) {
        let due = self.last.is_none_or(|last| last.elapsed() >= self.interval);
        let (done, running) = (done(status), count(status, RUNNING));
        let wave_boundary =
            running == 0 && count(status, PENDING) > 0 && self.last_wave_done != Some(done);
        if !(due || wave_boundary || status.finished) {
            return;
        }
        self.last = Some(Instant::now());
        if wave_boundary {
            self.last_wave_done = Some(done);
        }
        let what = if status.finished {
            "finished"
        } else if wave_boundary {
            "wave done"
        } else {
            "progress"
        };
        tracing::info!(
            done,
            total = status.total,
            running,
            "{what}: {done}/{} sites done ({}), {running} running{}",
            status.total,
            counts_text(status),
            match eta_text(status) {
                eta if eta.is_empty() => String::new(),
                eta => format!(", {eta}"),
            }
        );
    }
}

fn count(status: &RunStatus, word: &str) -> usize {
    status.counts.get(word).copied().unwrap_or(0)
}

/// Sites with an outcome.
fn done(status: &RunStatus) -> usize {
    status
        .total
        .saturating_sub(count(status, PENDING) + count(status, RUNNING))
}

/// The outcomes reached so far, e.g. `succeeded 3, blocked 1`.
fn counts_text(status: &RunStatus) -> String {
    let parts: Vec<String> = status
        .counts
        .iter()
        .filter(|(word, count)| **count > 0 && *word != PENDING && *word != RUNNING)
        .map(|(outcome, count)| format!("{outcome} {count}"))
        .collect();
    if parts.is_empty() {
        "none finished yet".into()
    } else {
        parts.join(", ")
    }
}

fn eta_text(status: &RunStatus) -> String {
    match status.eta_seconds {
        Some(seconds) if !status.finished => {
            format!(
                "ETA {}",
                humantime::format_duration(Duration::from_secs(seconds.round() as u64))
            )
        }
        _ => String::new(),
    }
}

/// A log sink that suspends the live view while a line prints (used by `main`'s subscriber).
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match LIVE.get() {
            Some(multi) => multi.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

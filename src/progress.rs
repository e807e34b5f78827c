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
#[cfg(test)]
use crate::metrics::status::WaveStatus;
use crate::vocab::Outcome;

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
        let mut lines = ProgressLines::new(interval);
        Box::new(move |status| lines.update(status))
    }
}

/// Three lines and the sites in flight, each cut to the terminal's width (never wrapped,
/// even at 80 columns): what runs, the bar with the done count and the ETA, the counts by
/// outcome (in the order of the summary), then one line per site in flight.
struct LiveView {
    multi: MultiProgress,
    bar: ProgressBar,
    /// The counts by outcome and how many run, under the bar.
    counts: ProgressBar,
    /// One line per site in flight (at most [`IN_FLIGHT_LINES`]), added and removed as
    /// their number changes.
    lines: Vec<ProgressBar>,
}

impl LiveView {
    fn new() -> LiveView {
        let multi = LIVE
            .get_or_init(|| {
                // `--progress always` off a terminal (indicatif would stay silent there).
                let target = if std::io::stderr().is_terminal() {
                    ProgressDrawTarget::stderr_with_hz(4)
                } else {
                    ProgressDrawTarget::term_like_with_hz(Box::new(AnsiStderr), 4)
                };
                MultiProgress::with_draw_target(target)
            })
            .clone();
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold}\n[{wide_bar:.cyan/blue}] {pos}/{len} sites  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let counts = multi.add(ProgressBar::new(0));
        counts.set_style(one_line_style());
        LiveView {
            multi,
            bar,
            counts,
            lines: Vec::new(),
        }
    }

    /// Exactly `wanted` in-flight lines under the bar.
    fn resize(&mut self, wanted: usize) {
        while self.lines.len() < wanted {
            let line = self.multi.add(ProgressBar::new(0));
            line.set_style(one_line_style());
            self.lines.push(line);
        }
        while self.lines.len() > wanted {
            if let Some(line) = self.lines.pop() {
                line.finish_and_clear();
                self.multi.remove(&line);
            }
        }
    }

    fn update(&mut self, status: &RunStatus) {
        let mode = status.mode.map(|mode| mode.as_str()).unwrap_or("run");
        let mut prefix = format!("{mode} {}", status.run_id);
        if let Some(shard) = &status.shard {
            prefix.push_str(&format!(" shard {shard}"));
        }
        if let Some(wave) = current_wave(status) {
            prefix.push_str(&format!(" · {wave}"));
        }
        self.bar.set_prefix(prefix);
        self.bar.set_length(status.total as u64);
        self.bar.set_position(done(status) as u64);
        self.bar.set_message(eta_text(status));
        self.counts.set_message(format!(
            "{} · running {}",
            counts_text(status),
            count(status, RUNNING)
        ));
        let in_flight = &status.in_flight;
        self.resize(if status.finished {
            0
        } else {
            in_flight.len().min(IN_FLIGHT_LINES)
        });
        let now = chrono::Utc::now();
        for (index, line) in self.lines.iter().enumerate() {
            if let Some(site) = in_flight.get(index) {
                line.set_message(format!(
                    "  {:<32} {:<8} {}",
                    site.site,
                    site.stage.as_str(),
                    humantime::format_duration(Duration::from_secs(
                        (now - site.since).num_seconds().max(0) as u64
                    ))
                ));
            }
        }
        if in_flight.len() > IN_FLIGHT_LINES
            && let Some(last) = self.lines.last()
        {
            last.set_message(format!(
                "  … and {} more in flight",
                in_flight.len() - IN_FLIGHT_LINES + 1
            ));
        }
        if status.finished {
            self.bar.finish();
            self.counts.finish();
        }
    }
}

/// A line of text cut to the terminal's width.
fn one_line_style() -> ProgressStyle {
    ProgressStyle::with_template("{wide_msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Periodic progress lines for runs without a terminal.
struct ProgressLines {
    interval: Duration,
    last: Option<Instant>,
    /// Waves already announced as done (by index).
    waves_announced: Vec<bool>,
}

impl ProgressLines {
    fn new(interval: Duration) -> ProgressLines {
        ProgressLines {
            interval,
            last: None,
            waves_announced: Vec::new(),
        }
    }

    fn update(&mut self, status: &RunStatus) {
        let json = crate::fatal::is_json();
        for line in self.lines(status, Instant::now()) {
            // The text line says the numbers already; JSON gets them as fields too.
            if json {
                tracing::info!(
                    done = done(status),
                    total = status.total,
                    running = count(status, RUNNING),
                    "{line}"
                );
            } else {
                tracing::info!("{line}");
            }
        }
    }

    /// The lines due at `now`: one per wave that just ended (when the selection has several
    /// waves), then a progress line when the interval has passed or the run finished.
    fn lines(&mut self, status: &RunStatus, now: Instant) -> Vec<String> {
        let mut lines = Vec::new();
        let (done, running) = (done(status), count(status, RUNNING));
        self.waves_announced.resize(status.waves.len(), false);
        if status.waves.len() > 1 {
            for (index, wave) in status.waves.iter().enumerate() {
                if wave.done < wave.total || self.waves_announced[index] {
                    continue;
                }
                self.waves_announced[index] = true;
                let next = status.waves[index + 1..]
                    .iter()
                    .find(|next| next.done < next.total)
                    .map(|next| format!("; next: {}", next.describe()))
                    .unwrap_or_default();
                lines.push(format!(
                    "{} done ({} site{}): {done}/{} sites done overall ({}){next}",
                    wave.describe(),
                    wave.total,
                    if wave.total == 1 { "" } else { "s" },
                    status.total,
                    counts_text(status),
                ));
            }
        }
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= self.interval);
        if due || status.finished {
            self.last = Some(now);
            let what = if status.finished {
                "finished"
            } else {
                "progress"
            };
            lines.push(format!(
                "{what}: {done}/{} sites done ({}), {running} running{}",
                status.total,
                counts_text(status),
                match eta_text(status) {
                    eta if eta.is_empty() => String::new(),
                    eta => format!(", {eta}"),
                }
            ));
        }
        lines
    }
}

/// The wave being worked on, e.g. `wave w2 (2 of 3)`, when the selection has several.
fn current_wave(status: &RunStatus) -> Option<String> {
    if status.waves.len() < 2 {
        return None;
    }
    let (index, wave) = status
        .waves
        .iter()
        .enumerate()
        .find(|(_, wave)| wave.done < wave.total)?;
    Some(format!(
        "{} ({} of {})",
        wave.describe(),
        index + 1,
        status.waves.len()
    ))
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

/// The outcomes reached so far, in the order of the run's summary, e.g. `succeeded 3,
/// blocked 1`.
fn counts_text(status: &RunStatus) -> String {
    let parts: Vec<String> = Outcome::ALL
        .into_iter()
        .map(|outcome| (outcome, count(status, outcome.as_str())))
        .filter(|(_, count)| *count > 0)
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

/// Stderr as an ANSI terminal of 100 columns, whatever it is connected to: what
/// `--progress always` draws on when stderr is not a terminal (a CI log that renders ANSI, a
/// `docker logs -f`, a recorded session).
#[derive(Debug)]
struct AnsiStderr;

impl AnsiStderr {
    fn put(&self, text: &str) -> std::io::Result<()> {
        std::io::stderr().write_all(text.as_bytes())
    }
}

impl indicatif::TermLike for AnsiStderr {
    fn width(&self) -> u16 {
        100
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.put(&format!("\x1b[{n}A"))
        }
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.put(&format!("\x1b[{n}B"))
        }
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.put(&format!("\x1b[{n}C"))
        }
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.put(&format!("\x1b[{n}D"))
        }
    }

    fn write_line(&self, line: &str) -> std::io::Result<()> {
        self.put(&format!("{line}\n"))
    }

    fn write_str(&self, text: &str) -> std::io::Result<()> {
        self.put(text)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.put("\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn status(counts: &[(&str, usize)], waves: &[(&str, usize, usize)]) -> RunStatus {
        RunStatus {
            run_id: "r".into(),
            total: counts.iter().map(|(_, n)| n).sum(),
            counts: counts
                .iter()
                .map(|(word, n)| ((*word).to_owned(), *n))
                .collect::<BTreeMap<_, _>>(),
            waves: waves
                .iter()
                .map(|(label, total, done)| WaveStatus {
                    label: Some((*label).to_owned()),
                    total: *total,
                    done: *done,
                })
                .collect(),
            ..RunStatus::default()
        }
    }

    #[test]
    fn a_line_every_interval_and_at_the_end() {
        let mut lines = ProgressLines::new(Duration::from_secs(30));
        let start = Instant::now();
        let running = status(&[("running", 2), ("pending", 1)], &[]);
        assert_eq!(lines.lines(&running, start).len(), 1, "the first refresh");
        assert!(
            lines
                .lines(&running, start + Duration::from_secs(10))
                .is_empty()
        );
        let later = lines.lines(&running, start + Duration::from_secs(31));
        assert_eq!(
            later,
            ["progress: 0/3 sites done (none finished yet), 2 running"]
        );
        let mut done = status(&[("succeeded", 2), ("blocked", 1)], &[]);
        done.finished = true;
        let end = lines.lines(&done, start + Duration::from_secs(32));
        assert_eq!(
            end,
            ["finished: 3/3 sites done (succeeded 2, blocked 1), 0 running"]
        );
    }

    #[test]
    fn each_wave_boundary_is_announced_once() {
        let mut lines = ProgressLines::new(Duration::from_secs(3600));
        let start = Instant::now();
        let first = status(
            &[("running", 1), ("pending", 2), ("succeeded", 1)],
            &[("w1", 2, 1), ("w2", 2, 0)],
        );
        assert_eq!(lines.lines(&first, start).len(), 1);
        let boundary = status(
            &[("running", 1), ("pending", 1), ("succeeded", 2)],
            &[("w1", 2, 2), ("w2", 2, 0)],
        );
        let said = lines.lines(&boundary, start + Duration::from_secs(1));
        assert_eq!(
            said,
            ["wave w1 done (2 sites): 2/4 sites done overall (succeeded 2); next: wave w2"]
        );
        assert!(
            lines
                .lines(&boundary, start + Duration::from_secs(2))
                .is_empty()
        );
        assert_eq!(current_wave(&boundary).as_deref(), Some("wave w2 (2 of 2)"));
    }

    #[test]
    fn a_single_wave_has_no_boundary_line() {
        let mut lines = ProgressLines::new(Duration::from_secs(3600));
        let start = Instant::now();
        let _ = lines.lines(&status(&[("running", 1)], &[("w1", 1, 0)]), start);
        let said = lines.lines(
            &status(&[("succeeded", 1)], &[("w1", 1, 1)]),
            start + Duration::from_secs(1),
        );
        assert!(said.is_empty(), "{said:?}");
        assert_eq!(current_wave(&status(&[], &[("w1", 1, 0)])), None);
    }
}

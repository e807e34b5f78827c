//! The words and numbers every renderer shares: timestamps, durations, outcome counts, the
//! meaning of an exit code, and the time span of a run. Pure functions of the model.

use chrono::{DateTime, SecondsFormat, Utc};

use super::model::{RunReport, SiteReport};
use crate::exit;
use crate::vocab::Outcome;

/// RFC 3339, whole seconds, `Z`: `2026-03-01T02:00:00Z` (the machine-readable form).
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2026-03-01 02:00:00 UTC` (the form people read).
pub fn wall_clock(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A duration as people say it: `0s`, `45s`, `4m 07s`, `1h 02m`, `2d 03h`. Negative
/// durations (clock skew in stored data) read as `0s`.
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours) = (seconds / 86_400, (seconds % 86_400) / 3_600);
    let (minutes, secs) = ((seconds % 3_600) / 60, seconds % 60);
    if days > 0 {
        format!("{days}d {hours:02}h")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs:02}s")
    } else {
        format!("{secs}s")
    }
}

/// A duration measured to the millisecond, as people say it: `370ms` under a second,
/// `1.4s` under ten (a check against a fast service takes well under a second, and whole
/// seconds would show it as `0s`), then as [`duration`] does.
pub fn duration_ms(millis: i64) -> String {
    let millis = millis.max(0);
    match millis {
        0..=999 => format!("{millis}ms"),
        1_000..=9_949 => {
            let tenths = (millis + 50) / 100;
            if tenths % 10 == 0 {
                format!("{}s", tenths / 10)
            } else {
                format!("{}.{}s", tenths / 10, tenths % 10)
            }
        }
        _ => duration((millis + 500) / 1_000),
    }
}

/// How long a site took in this run, once it has both ends.
pub fn site_seconds(site: &SiteReport) -> Option<i64> {
    site_millis(site).map(|millis| millis / 1_000)
}

/// [`site_seconds`] to the millisecond.
pub fn site_millis(site: &SiteReport) -> Option<i64> {
    match (site.started_at, site.finished_at) {
        (Some(start), Some(end)) => Some((end - start).num_milliseconds().max(0)),
        _ => None,
    }
}

/// How long the run took, once it has finished.
pub fn run_seconds(report: &RunReport) -> Option<i64> {
    report
        .run
        .finished_at
        .map(|end| (end - report.run.started_at).num_seconds().max(0))
}

/// What an exit code tells the reader (the README's "Exit codes" table).
pub fn exit_meaning(code: i32) -> &'static str {
    let known = [
        (
            exit::OK,
            "every selected site succeeded, warned or was skipped",
        ),
        (exit::SITES_FAILED, "at least one site failed or is blocked"),
        (exit::USAGE, "usage error"),
        (
            exit::DETACHED,
            "sites left detached (resumable): the deadline, or an unreadable status",
        ),
        (
            exit::ONLINE_CHECK_FAILED,
            "a row failed a live check (validate --online)",
        ),
        (exit::DATA, "inventory data error"),
        (
            exit::CANT_CREATE,
            "cannot write the state dir or report dir",
        ),
        (
            exit::TEMP_FAIL,
            "temporary: another run held the lock; nothing was done",
        ),
        (exit::CONFIG, "configuration error"),
        (exit::INTERRUPTED, "interrupted by SIGINT"),
        (exit::TERMINATED, "terminated by SIGTERM"),
    ];
    known
        .iter()
        .find(|(known_code, _)| i32::from(*known_code) == code)
        .map_or("unknown exit code", |(_, meaning)| meaning)
}

/// Sites per outcome, counted from the sites themselves so that every table of a report
/// agrees with its site table; `running` counts sites without an outcome yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutcomeCounts {
    /// Indexed like [`Outcome::ALL`].
    finished: [usize; Outcome::ALL.len()],
    /// Sites still pending or running (no outcome yet).
    pub running: usize,
}

impl OutcomeCounts {
    pub fn of(report: &RunReport) -> OutcomeCounts {
        let mut counts = OutcomeCounts::default();
        for site in &report.sites {
            match site.outcome {
                Some(outcome) => counts.finished[outcome_index(outcome)] += 1,
                None => counts.running += 1,
            }
        }
        counts
    }

    pub fn get(&self, outcome: Outcome) -> usize {
        self.finished[outcome_index(outcome)]
    }

    pub fn total(&self) -> usize {
        self.finished.iter().sum::<usize>() + self.running
    }
}

fn outcome_index(outcome: Outcome) -> usize {
    Outcome::ALL
        .iter()
        .position(|candidate| *candidate == outcome)
        .unwrap_or_default()
}

/// The word for a site's outcome, also while it has none: `pending` before it starts,
/// `running` after.
pub fn outcome_label(site: &SiteReport) -> &'static str {
    match site.outcome {
        Some(outcome) => outcome.as_str(),
        None if site.stage == crate::vocab::Stage::Queued => "pending",
        None => "running",
    }
}

/// The CSS class of an outcome (`o-failed`, …; `o-running` for a site without one).
pub fn outcome_class(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Succeeded) => "o-succeeded",
        Some(Outcome::Warnings) => "o-warnings",
        Some(Outcome::Blocked) => "o-blocked",
        Some(Outcome::Failed) => "o-failed",
        Some(Outcome::Detached) => "o-detached",
        Some(Outcome::Skipped) => "o-skipped",
        None => "o-running",
    }
}

/// Worst first: the order in which people want to read outcomes when sorting a table.
pub fn outcome_rank(outcome: Option<Outcome>) -> u8 {
    match outcome {
        Some(Outcome::Failed) => 0,
        Some(Outcome::Blocked) => 1,
        Some(Outcome::Detached) => 2,
        None => 3,
        Some(Outcome::Warnings) => 4,
        Some(Outcome::Skipped) => 5,
        Some(Outcome::Succeeded) => 6,
    }
}

/// The sites in the order people read them: those that need attention first (failed,
/// blocked, detached, not finished, warnings), then skipped and succeeded; within an outcome,
/// in report order.
pub fn attention_first(report: &RunReport) -> Vec<&SiteReport> {
    let mut sites: Vec<&SiteReport> = report.sites.iter().collect();
    sites.sort_by_key(|site| outcome_rank(site.outcome));
    sites
}

/// Whether a site needs someone's attention (see [`attention_first`]).
pub fn needs_attention(site: &SiteReport) -> bool {
    outcome_rank(site.outcome) <= outcome_rank(Some(Outcome::Warnings))
}

/// The time span a report covers: from the run's start (or an earlier stage span) to its
/// end — or, while it runs, to the latest instant the model knows of. Never empty.
pub fn run_span(report: &RunReport) -> (DateTime<Utc>, DateTime<Utc>) {
    let mut start = report.run.started_at;
    let mut latest = report.run.finished_at.unwrap_or(start);
    for site in &report.sites {
        let instants = site
            .stages
            .iter()
            .flat_map(|span| [Some(span.started_at), span.finished_at])
            .chain([site.started_at, site.finished_at])
            .chain(site.errors.iter().map(|error| Some(error.at)))
            .flatten();
        for at in instants {
            start = start.min(at);
            if report.run.finished_at.is_none() {
                latest = latest.max(at);
            }
        }
    }
    if latest <= start {
        latest = start + chrono::Duration::seconds(1);
    }
    (start, latest)
}

/// Run-level notes first, then each site's notes prefixed with its name.
pub fn all_notes(report: &RunReport) -> Vec<(Option<&str>, &str)> {
    let run_notes = report.run.notes.iter().map(|note| (None, note.as_str()));
    let site_notes = report.sites.iter().flat_map(|site| {
        site.notes
            .iter()
            .map(move |note| (Some(site.site.as_str()), note.as_str()))
    });
    run_notes.chain(site_notes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(247), "4m 07s");
        assert_eq!(duration(3_720), "1h 02m");
        assert_eq!(duration(2 * 86_400 + 3 * 3_600 + 59), "2d 03h");
        assert_eq!(duration(-5), "0s");
    }

    #[test]
    fn short_durations_keep_their_fraction() {
        assert_eq!(duration_ms(0), "0ms");
        assert_eq!(duration_ms(371), "371ms");
        assert_eq!(duration_ms(1_000), "1s");
        assert_eq!(duration_ms(1_449), "1.4s");
        assert_eq!(duration_ms(9_949), "9.9s");
        assert_eq!(duration_ms(9_950), "10s");
        assert_eq!(duration_ms(247_400), "4m 07s");
        assert_eq!(duration_ms(-3), "0ms");
    }

    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T03:04:05.678+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(at), "2026-03-01T02:04:05Z");
        assert_eq!(wall_clock(at), "2026-03-01 02:04:05 UTC");
    }

    #[test]
    fn every_exit_code_of_the_spec_has_a_meaning() {
        for code in [0, 1, 2, 65, 73, 75, 78, 130, 143] {
            assert_ne!(exit_meaning(code), "unknown exit code", "{code}");
        }
        assert_eq!(exit_meaning(42), "unknown exit code");
    }
}

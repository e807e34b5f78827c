//! `summary.md`: the run for people who read Markdown — its identity and times, counts by
//! outcome, the site table, the checks that failed or warned across the fleet, notes,
//! errors and a short timeline.
//!
//! Cell text comes from the service and from customer data, so it is escaped for CommonMark
//! and GFM tables: `|`, `\`, `` ` ``, `*`, `[`, `]`, `<`, `>` are backslash-escaped, `_` too
//! unless it sits inside a word (where GFM never reads it as emphasis), and line breaks
//! become spaces.

use std::fmt::Write as _;

use super::fleet_checks::{self, FleetCheck};
use super::format::{
    OutcomeCounts, all_notes, duration, duration_ms, outcome_label, run_seconds, site_millis,
    wall_clock,
};
use super::model::RunReport;
use super::timeline::StageSummary;
use crate::vocab::Outcome;

/// At most this many site names are listed in one cell of the fleet-wide checks table;
/// `summary.csv` has the full list per site.
const SITES_PER_CHECK: usize = 25;
/// At most this many errors are listed; every site's JSON has all of them.
const ERRORS_LISTED: usize = 50;

pub fn render(report: &RunReport) -> String {
    let mut out = String::with_capacity(1024 + 160 * report.sites.len());
    header(&mut out, report);
    outcomes(&mut out, report);
    sites(&mut out, report);
    checks(&mut out, &fleet_checks::aggregate(report));
    timeline(&mut out, report);
    surprises(&mut out, report);
    notes(&mut out, report);
    errors(&mut out, report);
    out
}

fn header(out: &mut String, report: &RunReport) {
    let run = &report.run;
    let _ = writeln!(out, "# cmafleet {} run {}\n", run.mode, escape(&run.run_id));
    let _ = writeln!(out, "- **Mode:** {}", run.mode);
    if let Some(shard) = &run.shard {
        let _ = writeln!(out, "- **Shard:** {}", escape(shard));
    }
    let _ = writeln!(out, "- **Started:** {}", wall_clock(run.started_at));
    match (run.finished_at, run_seconds(report)) {
        (Some(end), Some(seconds)) => {
            let _ = writeln!(out, "- **Finished:** {}", wall_clock(end));
            let _ = writeln!(out, "- **Duration:** {}", duration(seconds));
        }
        _ => out.push_str("- **Finished:** not yet (the run is in progress)\n"),
    }
    if let Some(code) = run.exit_code {
        let meaning = super::format::exit_meaning(code);
        let _ = writeln!(out, "- **Exit code:** {code} ({meaning})");
    }
    let _ = writeln!(out, "- **cmafleet:** {}\n", escape(&run.version));
}

fn outcomes(out: &mut String, report: &RunReport) {
    let counts = OutcomeCounts::of(report);
    out.push_str("## Outcomes\n\n| Outcome | Sites |\n|---|---:|\n");
    for outcome in Outcome::ALL {
        let _ = writeln!(out, "| {outcome} | {} |", counts.get(outcome));
    }
    if counts.running > 0 {
        let _ = writeln!(out, "| not finished | {} |", counts.running);
    }
    let _ = writeln!(out, "| **total** | **{}** |\n", counts.total());
}

fn sites(out: &mut String, report: &RunReport) {
    out.push_str("## Sites\n\n");
    if report.sites.is_empty() {
        out.push_str("No site was selected.\n\n");
        return;
    }
    // A report over several state stores names each site's shard.
    let sharded = report.sites.iter().any(|site| site.shard.is_some());
    let (shard_head, shard_rule) = if sharded {
        (" Shard |", "---|")
    } else {
        ("", "")
    };
    let _ = writeln!(
        out,
        "| Site |{shard_head} Product | Outcome | Stage | Failed | Warned | Duration | Message |"
    );
    let _ = writeln!(out, "|---|{shard_rule}---|---|---|---:|---:|---:|---|");
    for site in &report.sites {
        let outcome = outcome_label(site);
        let took = site_millis(site).map(duration_ms).unwrap_or_default();
        let shard = if sharded {
            format!(" {} |", escape(site.shard.as_deref().unwrap_or("")))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} |{shard} {} | {outcome} | {} | {} | {} | {took} | {} |",
            escape(&site.site),
            escape(&site.product),
            site.stage,
            site.checks_with("FAILED"),
            site.checks_with("WARNING"),
            escape(&site.message),
        );
    }
    out.push('\n');
}

fn checks(out: &mut String, checks: &[FleetCheck<'_>]) {
    out.push_str("## Checks that failed or warned across the fleet\n\n");
    if checks.is_empty() {
        out.push_str("No check failed or warned.\n\n");
        return;
    }
    out.push_str("| Check | Outcome | Sites | Occurrences | Excludable | On sites |\n");
    out.push_str("|---|---|---:|---:|---|---|\n");
    for check in checks {
        let mut names: Vec<String> = check
            .sites
            .iter()
            .take(SITES_PER_CHECK)
            .map(|site| escape(site.site))
            .collect();
        if check.sites.len() > SITES_PER_CHECK {
            names.push(format!(
                "… and {} more",
                check.sites.len() - SITES_PER_CHECK
            ));
        }
        let excludable = match check.excludable() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {excludable} | {} |",
            escape(check.name),
            check.severity.as_str(),
            check.sites.len(),
            check.occurrence_count(),
            names.join(", "),
        );
    }
    out.push('\n');
}

fn timeline(out: &mut String, report: &RunReport) {
    out.push_str("## Timeline\n\n");
    let _ = writeln!(out, "- {} — run started", wall_clock(report.run.started_at));
    let mut finished: Vec<(&str, chrono::DateTime<chrono::Utc>, Option<Outcome>)> = report
        .sites
        .iter()
        .filter_map(|site| Some((site.site.as_str(), site.finished_at?, site.outcome)))
        .collect();
    finished.sort_by_key(|(_, at, _)| *at);
    let describe = |(name, at, outcome): &(&str, _, Option<Outcome>)| {
        let outcome = outcome.map_or("not finished", Outcome::as_str);
        format!("{} ({outcome}) at {}", escape(name), wall_clock(*at))
    };
    if let Some(first) = finished.first() {
        let _ = writeln!(out, "- first site finished: {}", describe(first));
    }
    if finished.len() > 1
        && let Some(last) = finished.last()
    {
        let _ = writeln!(out, "- last site finished: {}", describe(last));
    }
    let longest = report
        .sites
        .iter()
        .filter_map(|site| Some((site, site_millis(site)?)))
        .max_by_key(|(_, millis)| *millis);
    if let Some((site, millis)) = longest {
        let _ = writeln!(
            out,
            "- longest site: {} ({})",
            escape(&site.site),
            duration_ms(millis)
        );
    }
    match report.run.finished_at {
        Some(end) => {
            let _ = writeln!(out, "- {} — run finished", wall_clock(end));
        }
        None => out.push_str("- the run is still in progress\n"),
    }
    out.push('\n');
    let stages = StageSummary::of(report);
    if stages.is_empty() {
        return;
    }
    out.push_str("| Stage | Sites | First entered | Last left | Longest |\n");
    out.push_str("|---|---:|---|---|---|\n");
    for stage in stages {
        let last_left = stage
            .last_left
            .map_or_else(|| "still in it".to_owned(), wall_clock);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {last_left} | {} ({}) |",
            stage.stage,
            stage.sites,
            wall_clock(stage.first_entered),
            duration(stage.longest_seconds),
            escape(stage.longest_site),
        );
    }
    out.push('\n');
}

fn surprises(out: &mut String, report: &RunReport) {
    if report.run.surprises.is_empty() {
        return;
    }
    out.push_str(
        "## Surprises\n\nAnswers outside the model of the API cmafleet was written against \
         (each kind and value once; please report them).\n\n\
         | Kind | Value | Where | What cmafleet did | Sample |\n|---|---|---|---|---|\n",
    );
    for surprise in &report.run.surprises {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            surprise.kind,
            escape(&surprise.value),
            escape(&surprise.endpoint),
            escape(surprise.kind.rule()),
            escape(&surprise.sample),
        );
    }
    out.push('\n');
}

fn notes(out: &mut String, report: &RunReport) {
    let notes = all_notes(report);
    if notes.is_empty() {
        return;
    }
    out.push_str("## Notes\n\n");
    for (site, note) in notes {
        match site {
            Some(site) => {
                let _ = writeln!(out, "- **{}:** {}", escape(site), escape(note));
            }
            None => {
                let _ = writeln!(out, "- {}", escape(note));
            }
        }
    }
    out.push('\n');
}

fn errors(out: &mut String, report: &RunReport) {
    let all: Vec<_> = report
        .sites
        .iter()
        .flat_map(|site| site.errors.iter().map(move |error| (site, error)))
        .collect();
    if all.is_empty() {
        return;
    }
    out.push_str("## Errors\n\n");
    out.push_str("| Site | At | Stage | Endpoint | Status | Request id | Message |\n");
    out.push_str("|---|---|---|---|---:|---|---|\n");
    for (site, error) in all.iter().take(ERRORS_LISTED) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            escape(&site.site),
            wall_clock(error.at),
            error.stage,
            error.endpoint.as_deref().map(escape).unwrap_or_default(),
            error.status.map(|s| s.to_string()).unwrap_or_default(),
            error.request_id.as_deref().map(escape).unwrap_or_default(),
            escape(&error.message),
        );
    }
    if all.len() > ERRORS_LISTED {
        let _ = writeln!(
            out,
            "\n{} more errors are listed in `sites/<site>.json`.",
            all.len() - ERRORS_LISTED
        );
    }
    out.push('\n');
}

/// Escapes text for a Markdown table cell or list item (see the module doc).
pub fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut last_was_space = false;
    for (index, &ch) in chars.iter().enumerate() {
        match ch {
            '\r' | '\n' => {
                if !last_was_space && !out.is_empty() {
                    out.push(' ');
                }
                last_was_space = true;
                continue;
            }
            '|' | '\\' | '`' | '*' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(ch);
            }
            '_' => {
                let inside =
                    |neighbour: Option<&char>| neighbour.is_some_and(|c| c.is_alphanumeric());
                let before = index.checked_sub(1).and_then(|i| chars.get(i));
                if !(inside(before) && inside(chars.get(index + 1))) {
                    out.push('\\');
                }
                out.push('_');
            }
            _ => out.push(ch),
        }
        last_was_space = ch == ' ';
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_table_cells_one_cell_and_one_line() {
        assert_eq!(escape("a | b"), "a \\| b");
        assert_eq!(escape("line one\nline two\r\n"), "line one line two");
        assert_eq!(escape("one  \n two"), "one   two");
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "\\<script\\>alert(1)\\</script\\>"
        );
        assert_eq!(
            escape("`code` *bold* [link]"),
            "\\`code\\` \\*bold\\* \\[link\\]"
        );
        assert_eq!(escape("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn underscores_inside_words_stay_readable() {
        assert_eq!(escape("email_address"), "email_address");
        assert_eq!(escape("_emphasis_ here"), "\\_emphasis\\_ here");
        assert_eq!(escape("__init__"), "\\_\\_init\\_\\_");
    }
}

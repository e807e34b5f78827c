//! `report.html`'s long lists: scopes that need attention, artifacts, answers outside the
//! API model, notes and errors. Each is capped so that a large fleet's page opens in a
//! second; the sites' JSON files have every row.

use std::fmt::Write as _;

use crate::report::format::{all_notes, wall_clock};
use crate::report::markup::{bytes, escape};
use crate::report::model::RunReport;

/// Errors listed in the page; every site's JSON has them all.
const ERRORS_LISTED: usize = 200;
/// Rows of the scopes, artifacts and notes sections: a large fleet's report stays a page
/// that opens in a second (the sites' JSON have them all).
const ROWS_LISTED: usize = 500;

pub(super) fn scopes(page: &mut String, report: &RunReport) {
    let all: Vec<_> = report
        .sites
        .iter()
        .flat_map(|site| site.scopes.iter().map(move |scope| (site, scope)))
        .collect();
    // SKIPPED is a scope the job does not name (or one never reached after a failure, which
    // the failed scope already explains): only the rest needs a reader's attention.
    let unfinished: Vec<_> = all
        .iter()
        .filter(|(_, scope)| {
            !scope.outcome.as_deref().is_some_and(|outcome| {
                outcome.eq_ignore_ascii_case("SUCCESS") || outcome.eq_ignore_ascii_case("SKIPPED")
            })
        })
        .collect();
    page.push_str(
        "<section aria-labelledby=\"h-scopes\"><h2 id=\"h-scopes\">Migration scopes that did \
         not succeed</h2>",
    );
    if all.is_empty() {
        page.push_str("<p class=\"none\">No migration scope has started.</p></section>\n");
        return;
    }
    if unfinished.is_empty() {
        let _ = writeln!(
            page,
            "<p class=\"none\">All {} scopes succeeded or were not in scope.</p></section>",
            all.len()
        );
        return;
    }
    let _ = write!(
        page,
        "<p class=\"hint\">{} of {} scopes; the others succeeded or were not in scope.</p><div class=\"scroll\"><table>\
         <thead><tr><th scope=\"col\">Site</th><th scope=\"col\">Scope</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Outcome</th>\
         <th scope=\"col\" class=\"num\">Done</th><th scope=\"col\">Progress</th>\
         <th scope=\"col\">Message</th></tr></thead><tbody>",
        unfinished.len(),
        all.len(),
    );
    let more = unfinished.len().saturating_sub(ROWS_LISTED);
    for (site, scope) in unfinished.into_iter().take(ROWS_LISTED) {
        let progress: Vec<String> = scope
            .progress
            .iter()
            .map(|counter| {
                let count = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
                format!(
                    "{} {}/{}",
                    escape(&counter.name),
                    count(counter.processed),
                    count(counter.total)
                )
            })
            .collect();
        let _ = write!(
            page,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td class=\"msg\">{}</td></tr>",
            escape(&site.site),
            escape(&scope.name),
            escape(&scope.status),
            escape(scope.outcome.as_deref().unwrap_or("")),
            scope
                .percent
                .map(|percent| format!("{percent:.0}%"))
                .unwrap_or_default(),
            progress.join("<br>"),
            escape(scope.message.as_deref().unwrap_or("")),
        );
    }
    page.push_str("</tbody></table></div>");
    more_rows(page, more, "scopes");
    page.push_str("</section>\n");
}

pub(super) fn artifacts(page: &mut String, report: &RunReport) {
    let all: Vec<_> = report
        .sites
        .iter()
        .flat_map(|site| site.artifacts.iter().map(move |artifact| (site, artifact)))
        .collect();
    if all.is_empty() {
        return;
    }
    page.push_str(
        "<section aria-labelledby=\"h-artifacts\"><h2 id=\"h-artifacts\">Artifacts</h2>\
         <div class=\"scroll\"><table><thead><tr><th scope=\"col\">Site</th>\
         <th scope=\"col\">File</th><th scope=\"col\" class=\"num\">Size</th>\
         <th scope=\"col\">Expired / expires</th><th scope=\"col\">Problem</th></tr></thead><tbody>",
    );
    let more = all.len().saturating_sub(ROWS_LISTED);
    for (site, artifact) in all.into_iter().take(ROWS_LISTED) {
        let name = escape(&artifact.name);
        // Only a relative path inside the report dir becomes a link.
        let file = match artifact.saved_as.as_deref() {
            Some(path) if !path.starts_with('/') && !path.contains(':') && !path.contains("..") => {
                format!("<a href=\"{}\">{name}</a>", escape(path))
            }
            Some(path) => format!("{name}<br><code>{}</code>", escape(path)),
            None => name,
        };
        let _ = write!(
            page,
            "<tr><th scope=\"row\">{}</th><td>{file}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"msg\">{}</td></tr>",
            escape(&site.site),
            artifact.bytes.map(bytes).unwrap_or_default(),
            artifact.expire_at.map(wall_clock).unwrap_or_default(),
            escape(artifact.error.as_deref().unwrap_or("")),
        );
    }
    page.push_str("</tbody></table></div>");
    more_rows(page, more, "artifacts");
    page.push_str("</section>\n");
}

/// Answers outside the API model: what the service said, and what cmafleet did about it.
pub(super) fn surprises(page: &mut String, report: &RunReport) {
    page.push_str(
        "<section aria-labelledby=\"h-surprises\"><h2 id=\"h-surprises\">Surprises</h2>\
         <p class=\"hint\">Answers outside the model of the API cmafleet was written against, \
         each kind and value once, with a sample (secrets removed). cmafleet followed a safe \
         rule for each; please report them, so the model can follow the real service.</p>\
         <div class=\"scroll\"><table><thead><tr><th scope=\"col\">Kind</th>\
         <th scope=\"col\">Value</th><th scope=\"col\">Where</th><th scope=\"col\">First seen (UTC)</th>\
         <th scope=\"col\">What cmafleet did</th><th scope=\"col\">Sample</th></tr></thead><tbody>",
    );
    for surprise in &report.run.surprises {
        let _ = write!(
            page,
            "<tr><th scope=\"row\">{}</th><td><code>{}</code></td><td class=\"endpoint\"><code>{}</code></td>\
             <td class=\"when\">{}</td><td class=\"msg\">{}</td><td class=\"msg\"><code>{}</code></td></tr>",
            surprise.kind,
            escape(&surprise.value),
            escape(&surprise.endpoint),
            surprise.first_seen_at.format("%Y-%m-%d %H:%M:%S"),
            escape(surprise.kind.rule()),
            escape(&surprise.sample),
        );
    }
    page.push_str("</tbody></table></div></section>\n");
}

pub(super) fn notes(page: &mut String, report: &RunReport) {
    let notes = all_notes(report);
    page.push_str("<section aria-labelledby=\"h-notes\"><h2 id=\"h-notes\">Notes</h2>");
    if notes.is_empty() {
        page.push_str("<p class=\"none\">No notes.</p></section>\n");
        return;
    }
    page.push_str("<ul class=\"notes\">");
    let more = notes.len().saturating_sub(ROWS_LISTED);
    for (site, note) in notes.into_iter().take(ROWS_LISTED) {
        match site {
            Some(site) => {
                let _ = write!(page, "<li><b>{}</b>: {}</li>", escape(site), escape(note));
            }
            None => {
                let _ = write!(page, "<li>{}</li>", escape(note));
            }
        }
    }
    page.push_str("</ul>");
    more_rows(page, more, "notes");
    page.push_str("</section>\n");
}

/// The line under a capped section: how many more rows the sites' JSON files hold.
fn more_rows(page: &mut String, more: usize, what: &str) {
    if more > 0 {
        let _ = write!(
            page,
            "<p class=\"hint\">{more} more {what} are in the sites' JSON files.</p>"
        );
    }
}

pub(super) fn errors(page: &mut String, report: &RunReport) {
    let all: Vec<_> = report
        .sites
        .iter()
        .flat_map(|site| site.errors.iter().map(move |error| (site, error)))
        .collect();
    page.push_str("<section aria-labelledby=\"h-errors\"><h2 id=\"h-errors\">Errors</h2>");
    if all.is_empty() {
        page.push_str("<p class=\"none\">No errors were recorded.</p></section>\n");
        return;
    }
    page.push_str(
        "<p class=\"hint\">Quote the request id when asking Atlassian support about a \
         failed call.</p><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Site</th>\
         <th scope=\"col\">At (UTC)</th><th scope=\"col\">Stage</th><th scope=\"col\">Endpoint</th>\
         <th scope=\"col\" class=\"num\">Status</th><th scope=\"col\">Request id</th>\
         <th scope=\"col\">Message</th></tr></thead><tbody>",
    );
    for (site, error) in all.iter().take(ERRORS_LISTED) {
        let _ = write!(
            page,
            "<tr><th scope=\"row\">{}</th><td class=\"when\">{}</td><td>{}</td><td class=\"endpoint\"><code>{}</code></td>\
             <td class=\"num\">{}</td><td><code>{}</code></td><td class=\"msg\">{}</td></tr>",
            escape(&site.site),
            error.at.format("%Y-%m-%d %H:%M:%S"),
            error.stage,
            escape(error.endpoint.as_deref().unwrap_or("")),
            error.status.map(|s| s.to_string()).unwrap_or_default(),
            escape(error.request_id.as_deref().unwrap_or("")),
            escape(&error.message),
        );
    }
    page.push_str("</tbody></table></div>");
    more_rows(page, all.len().saturating_sub(ERRORS_LISTED), "errors");
    page.push_str("</section>\n");
}

//! `report.html`'s fleet checks: each check that failed or warned anywhere, with the sites
//! it concerns and their occurrences, capped so that a large fleet's page stays small.

use std::fmt::Write as _;

use crate::report::fleet_checks::{FleetCheck, Severity};
use crate::report::markup::{escape, plural};

/// Occurrences listed per site under one check; the site's JSON has them all.
const OCCURRENCES_LISTED: usize = 50;
/// Sites listed under one fleet check; summary.csv and the sites' JSON have them all.
const CHECK_SITES_LISTED: usize = 100;

pub(super) fn section(page: &mut String, checks: &[FleetCheck<'_>]) {
    page.push_str(
        "<section aria-labelledby=\"h-checks\"><h2 id=\"h-checks\">Checks that failed or warned \
         across the fleet</h2>",
    );
    if checks.is_empty() {
        page.push_str("<p class=\"none\">No check failed or warned.</p></section>\n");
        return;
    }
    page.push_str(
        "<p class=\"hint\">Most widespread first. Open a check to see its sites and what the \
         service listed for each.</p>",
    );
    for check in checks {
        let sites = check.sites.len();
        let excludable = match check.excludable() {
            Some(true) => " · excludable with --override-checks",
            Some(false) => " · not excludable",
            None => "",
        };
        let severity = match check.severity {
            Severity::Failed => "sev-failed",
            Severity::Warning => "sev-warning",
        };
        let _ = write!(
            page,
            "<details><summary><span class=\"badge {severity}\">{}</span>\
             <span class=\"name\">{}</span><span class=\"muted\">on {sites} site{} · {} \
             occurrence{}{excludable}</span></summary><div class=\"body\">",
            check.severity.as_str(),
            escape(check.name),
            plural(sites),
            check.occurrence_count(),
            plural(check.occurrence_count()),
        );
        if let Some(description) = check.description() {
            let _ = write!(page, "<p>{}</p>", escape(description));
        }
        page.push_str(
            "<table><thead><tr><th scope=\"col\">Site</th><th scope=\"col\">Message</th>\
             <th scope=\"col\">Occurrences</th></tr></thead><tbody>",
        );
        for site in check.sites.iter().take(CHECK_SITES_LISTED) {
            let _ = write!(
                page,
                "<tr><th scope=\"row\">{}</th><td class=\"msg\">{}</td><td>",
                escape(site.site),
                escape(site.message().unwrap_or("")),
            );
            let total = site.occurrence_count();
            if total > 0 {
                page.push_str("<ul class=\"occ\">");
                for occurrence in site.occurrences().take(OCCURRENCES_LISTED) {
                    let _ = write!(page, "<li>{}</li>", escape(occurrence));
                }
                if total > OCCURRENCES_LISTED {
                    let _ = write!(
                        page,
                        "<li class=\"muted\">… and {} more in sites/{}.json</li>",
                        total - OCCURRENCES_LISTED,
                        escape(site.site),
                    );
                }
                page.push_str("</ul>");
            }
            page.push_str("</td></tr>");
        }
        page.push_str("</tbody></table>");
        if sites > CHECK_SITES_LISTED {
            let _ = write!(
                page,
                "<p class=\"muted\">… and {} more sites: each site's JSON lists its checks \
                 (summary.csv names the failed ones).</p>",
                sites - CHECK_SITES_LISTED
            );
        }
        page.push_str("</div></details>\n");
    }
    page.push_str("</section>\n");
}

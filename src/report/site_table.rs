//! The site table of `report.html`, sized for fleets of any size: sites that need attention
//! first, the first page of rows as HTML (what a reader without JavaScript sees, and what
//! shows before the script runs), and every site once more in one compact JSON data block,
//! from which the page's script renders the other pages, filters and sorts.
//!
//! As HTML every site would be a row of markup and a DOM subtree the browser must lay out
//! before the page opens; as data a site is a fifth of that, messages shared by many sites
//! are written once, and the browser builds only the hundred rows on screen, so a large
//! fleet's report opens in seconds (docs/performance.md).
//!
//! The data block is `<script type="application/json">`: browsers never run it, so the
//! page's Content-Security-Policy needs no entry for it; every `<`, `>` and `&` in it is
//! written as a JSON escape, so no text in it can close the block or open markup.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::format::{
    attention_first, duration_ms, needs_attention, outcome_class, outcome_label, outcome_rank,
    site_millis,
};
use super::markup::escape;
use super::model::{RunReport, SiteReport};

/// Rows on a page, and rows in the HTML itself.
pub const PAGE_ROWS: usize = 100;

/// The outcome words of the table in the order the outcome filter lists them.
const LABELS: [&str; 8] = [
    "failed",
    "blocked",
    "detached",
    "running",
    "pending",
    "warnings",
    "skipped",
    "succeeded",
];

/// The section: heading, filter bar, table with the first page, pager, data block.
pub fn section(page: &mut String, report: &RunReport) {
    let _ = write!(
        page,
        "<section aria-labelledby=\"h-sites\"><h2 id=\"h-sites\">Sites \
         <span class=\"count\">({})</span></h2>",
        report.sites.len()
    );
    if report.sites.is_empty() {
        page.push_str("<p class=\"none\">No site was selected.</p></section>\n");
        return;
    }
    let sites = attention_first(report);
    let sharded = sites.iter().any(|site| site.shard.is_some());
    let attention = sites.iter().filter(|site| needs_attention(site)).count();
    let _ = write!(
        page,
        "<p class=\"hint\">{}</p>",
        match attention {
            0 => "No site needs attention.".to_owned(),
            n => format!(
                "The {n} site{} that need{} attention (failed, blocked, detached, not finished, \
                 warnings) come first.",
                if n == 1 { "" } else { "s" },
                if n == 1 { "s" } else { "" },
            ),
        }
    );
    page.push_str(
        "<div id=\"site-tools\" class=\"tools\" hidden>\
         <label>Filter<input id=\"site-filter\" type=\"search\" placeholder=\"site, message, id…\"></label>\
         <label>Outcome<select id=\"outcome-filter\"><option value=\"\">all</option>",
    );
    for label in LABELS {
        let _ = write!(page, "<option value=\"{label}\">{label}</option>");
    }
    page.push_str(
        "</select></label><span id=\"site-count\" class=\"muted\" aria-live=\"polite\"></span></div>\
         <div class=\"scroll\"><table id=\"site-table\" class=\"sites\">\
         <caption class=\"sr\">One row per site: outcome, stage, checks, message and ids</caption>\
         <thead><tr><th scope=\"col\">Site</th>",
    );
    if sharded {
        page.push_str("<th scope=\"col\">Shard</th>");
    }
    page.push_str(
        "<th scope=\"col\">Product</th>\
         <th scope=\"col\" data-numeric>Outcome</th><th scope=\"col\">Stage</th>\
         <th scope=\"col\" class=\"num\" data-numeric>Failed</th>\
         <th scope=\"col\" class=\"num\" data-numeric>Warned</th>\
         <th scope=\"col\" class=\"num\" data-numeric>Duration</th>\
         <th scope=\"col\">Message</th><th scope=\"col\">Job / task</th></tr></thead><tbody>\n",
    );
    for site in sites.iter().take(PAGE_ROWS) {
        row(page, site, sharded);
    }
    page.push_str("</tbody></table></div>");
    page.push_str(
        "<nav id=\"site-pager\" class=\"pager\" aria-label=\"Pages of the site table\" hidden>\
         <button type=\"button\" id=\"page-prev\">‹ Previous</button>\
         <span id=\"page-label\" aria-live=\"polite\"></span>\
         <button type=\"button\" id=\"page-next\">Next ›</button></nav>",
    );
    if sites.len() > PAGE_ROWS {
        let _ = write!(
            page,
            "<p id=\"site-more\" class=\"hint\">This table shows the first {PAGE_ROWS} of {} \
             sites; summary.csv and sites/&lt;site&gt;.json have every one. With JavaScript \
             on, the table pages through them all.</p>",
            sites.len()
        );
    }
    page.push_str("<script type=\"application/json\" id=\"site-data\">");
    page.push_str(&data(&sites, sharded));
    page.push_str("</script></section>\n");
}

/// One row, as the page's script builds it too (`report.js`, `row`).
fn row(page: &mut String, site: &SiteReport, sharded: bool) {
    let label = outcome_label(site);
    let name = escape(&site.site);
    let _ = write!(
        page,
        "<tr data-outcome=\"{label}\"><th scope=\"row\"><a href=\"sites/{name}.json\">{name}</a></th>"
    );
    if sharded {
        let _ = write!(
            page,
            "<td>{}</td>",
            escape(site.shard.as_deref().unwrap_or(""))
        );
    }
    let count = |count: usize| {
        let zero = if count == 0 { " zero" } else { "" };
        format!("<td class=\"num{zero}\">{count}</td>")
    };
    let _ = write!(
        page,
        "<td>{}</td><td><span class=\"badge {}\">{label}</span></td><td>{}</td>{}{}\
         <td class=\"num\">{}</td><td class=\"msg\">{}</td><td class=\"ids\">",
        escape(&site.product),
        outcome_class(site.outcome),
        site.stage,
        count(site.checks_with("FAILED")),
        count(site.checks_with("WARNING")),
        site_millis(site).map(duration_ms).unwrap_or_default(),
        escape(&site.message),
    );
    let ids = [("job", &site.job_id), ("task", &site.task_id)];
    let mut first = true;
    for (kind, id) in ids {
        let Some(id) = id else { continue };
        if !first {
            page.push_str("<br>");
        }
        first = false;
        let id = escape(id);
        let _ = write!(page, "<b>{kind}</b> <code title=\"{id}\">{id}</code>");
    }
    page.push_str("</td></tr>\n");
}

/// What the script reads from the data block.
#[derive(Serialize)]
struct Data<'a> {
    /// Rows a page.
    page: usize,
    /// Whether rows have a shard column.
    sharded: bool,
    /// `[word, css class, sort rank]`; each site points into it.
    outcomes: Vec<(&'static str, &'static str, u8)>,
    /// Each distinct message once; each site points into it.
    messages: Vec<&'a str>,
    /// `[site, shard, product, outcome, stage, failed, warned, milliseconds (-1: not
    /// finished), duration as shown, message, job id, task id]`, attention first.
    sites: Vec<SiteRow<'a>>,
}

type SiteRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    usize,
    &'static str,
    usize,
    usize,
    i64,
    String,
    usize,
    &'a str,
    &'a str,
);

/// The data block's text (JSON with `<`, `>` and `&` escaped).
fn data(sites: &[&SiteReport], sharded: bool) -> String {
    let mut messages: Vec<&str> = Vec::new();
    let mut message_index: HashMap<&str, usize> = HashMap::new();
    let rows = sites
        .iter()
        .map(|site| {
            let message = *message_index.entry(&site.message).or_insert_with(|| {
                messages.push(&site.message);
                messages.len() - 1
            });
            let label = outcome_label(site);
            let outcome = LABELS
                .iter()
                .position(|known| *known == label)
                .unwrap_or_default();
            let millis = site_millis(site);
            (
                site.site.as_str(),
                site.shard.as_deref().unwrap_or(""),
                site.product.as_str(),
                outcome,
                site.stage.as_str(),
                site.checks_with("FAILED"),
                site.checks_with("WARNING"),
                millis.unwrap_or(-1),
                millis.map(duration_ms).unwrap_or_default(),
                message,
                site.job_id.as_deref().unwrap_or(""),
                site.task_id.as_deref().unwrap_or(""),
            )
        })
        .collect();
    let data = Data {
        page: PAGE_ROWS,
        sharded,
        outcomes: LABELS.iter().map(|label| label_style(label)).collect(),
        messages,
        sites: rows,
    };
    let json = serde_json::to_string(&data).expect("plain data serialises");
    json.replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
}

/// A word of [`LABELS`] with its badge class and sort rank.
fn label_style(label: &&'static str) -> (&'static str, &'static str, u8) {
    let outcome = crate::vocab::Outcome::ALL
        .into_iter()
        .find(|outcome| outcome.as_str() == *label);
    (label, outcome_class(outcome), outcome_rank(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::{Mode, Outcome};

    fn site(name: &str, outcome: Option<Outcome>, message: &str) -> SiteReport {
        let mut site = SiteReport::pending(name, "jira", Mode::Check);
        site.outcome = outcome;
        site.message = message.to_owned();
        site
    }

    #[test]
    fn the_data_block_cannot_be_closed_by_what_it_holds() {
        let planted = site(
            "a",
            Some(Outcome::Failed),
            "</script><script>alert(1)</script> & more",
        );
        let text = data(&[&planted], false);
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed["messages"][0],
            "</script><script>alert(1)</script> & more"
        );
    }

    #[test]
    fn shared_messages_are_written_once() {
        let sites = [
            site("a", Some(Outcome::Succeeded), "migrated"),
            site("b", Some(Outcome::Failed), "boom"),
            site("c", Some(Outcome::Succeeded), "migrated"),
        ];
        let refs: Vec<&SiteReport> = sites.iter().collect();
        let parsed: serde_json::Value = serde_json::from_str(&data(&refs, false)).unwrap();
        assert_eq!(parsed["messages"], serde_json::json!(["migrated", "boom"]));
        assert_eq!(parsed["sites"][2][9], 0);
        assert_eq!(
            parsed["outcomes"][1],
            serde_json::json!(["blocked", "o-blocked", 1])
        );
        assert_eq!(
            parsed["outcomes"][3],
            serde_json::json!(["running", "o-running", 3])
        );
        assert_eq!(parsed["sites"][1][3], 0, "failed is the first word");
    }
}

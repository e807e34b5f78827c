//! The dashboard's panels and queries, the alert rules' expressions, and the metric names
//! they select.

use std::collections::BTreeSet;

use cmafleet::metrics::Metrics;
use cmafleet::vocab::Mode;
use serde_json::Value;

use super::read;

pub fn dashboard() -> Value {
    serde_json::from_str(&read("dashboards/cmafleet.json")).expect("the dashboard is JSON")
}

/// Every panel, rows' nested panels included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

/// `(panel title, expr)` of every query of the dashboard.
pub fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |target| {
                    Some((title.clone(), target["expr"].as_str()?.to_owned()))
                })
        })
        .collect()
}

/// The expression Grafana would send for the shards matching `shard` (`.*` is "All") and
/// every mode.
pub fn as_sent(expr: &str, shard: &str) -> String {
    as_sent_for(expr, shard, ".*")
}

/// The expression Grafana would send for the shards matching `shard` and the modes matching
/// `mode`.
pub fn as_sent_for(expr: &str, shard: &str, mode: &str) -> String {
    let mut sent = expr.to_owned();
    for (variable, value) in [
        ("${__rate_interval}", "1m"),
        ("$__rate_interval", "1m"),
        ("${__interval}", "15s"),
        ("$__interval", "15s"),
        ("${__range}", "1h"),
        ("$__range", "1h"),
        ("${shard}", shard),
        ("$shard", shard),
        ("${mode}", mode),
        ("$mode", mode),
    ] {
        sent = sent.replace(variable, value);
    }
    assert!(!sent.contains('$'), "an unknown variable in `{expr}`");
    sent
}

/// `(alert, expr)` of every rule of alerts.yaml.
pub fn alert_rules() -> Vec<(String, String)> {
    let rules: Value = serde_yaml_ng::from_str(&read("deploy/prometheus/alerts.yaml")).unwrap();
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap().iter())
        .map(|rule| {
            (
                rule["alert"].as_str().unwrap().to_owned(),
                rule["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The metric names an expression selects: identifiers that are not functions, keywords,
/// label names (in `{…}` or `by (…)`-style lists), strings or durations.
pub fn selected_metrics(expr: &str) -> BTreeSet<String> {
    // Operators, literals, and aggregations (which may take `by (…)` before their argument).
    const KEYWORDS: &str = "and or unless bool offset inf nan group_left group_right \
        sum min max avg group stddev stdvar count count_values bottomk topk quantile";
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let (mut i, mut braces) = (0, 0);
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
        } else if c == '{' || c == '}' {
            braces += if c == '{' { 1 } else { -1 };
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if LABEL_LISTS.contains(&word.as_str()) && call {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
            } else if braces == 0
                && !call
                && !KEYWORDS
                    .split_whitespace()
                    .any(|k| k.eq_ignore_ascii_case(&word))
            {
                names.insert(word);
            }
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every `cmafleet_…` token of a text (a prefix such as `cmafleet_*` is not a name).
pub fn cmafleet_tokens(text: &str) -> BTreeSet<String> {
    let mut tokens = BTreeSet::new();
    for (at, _) in text.match_indices("cmafleet_") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let token: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !token.ends_with('_') {
            tokens.insert(token);
        }
    }
    tokens
}

/// Whether `name` is a registered metric, or a series of a registered histogram.
pub fn is_registered(registered: &BTreeSet<String>, name: &str) -> bool {
    registered.contains(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| registered.contains(base) && base.ends_with("_seconds"))
        })
}

pub fn registered_names() -> BTreeSet<String> {
    Metrics::new(Mode::Check)
        .metric_names()
        .into_iter()
        .collect()
}

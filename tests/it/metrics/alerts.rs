//! The alert rules against their unit tests (`promtool test rules`): a normal check week —
//! blocked sites every night, one night locked out by a migration — and a normal migration
//! week fire nothing, while nights that really did not happen fire and keep firing after
//! their series disappeared.

use std::process::Command;

use super::dashboard::alert_rules;
use super::repo;
use crate::support::prometheus;

fn rule(name: &str) -> String {
    alert_rules()
        .into_iter()
        .find(|(alert, _)| alert == name)
        .map(|(_, expr)| expr)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn the_night_alerts_know_check_nights_from_migrations() {
    // A check night with blocked sites exits 1: success alone cannot tell a normal night.
    let no_recent = rule("CmafleetNoRecentSuccess");
    assert!(
        !no_recent.contains("cmafleet_last_success_timestamp_seconds"),
        "{no_recent}"
    );
    assert!(no_recent.contains(r#"mode="check""#), "{no_recent}");
    assert!(!no_recent.contains(r#"mode="migrate""#), "{no_recent}");
    // Its series disappearing must not resolve it.
    assert!(no_recent.contains("absent_over_time("), "{no_recent}");
    // A migrate group pushed weekly is normal: each mode its own staleness.
    let push = rule("CmafleetPushFailing");
    for mode in ["check", "migrate"] {
        assert!(push.contains(&format!(r#"mode="{mode}""#)), "{push}");
    }
}

#[test]
fn the_alert_rules_pass_their_promtool_tests() {
    let test = "the_alert_rules_pass_their_promtool_tests";
    let Some(found) = prometheus::require(&[prometheus::PROMTOOL], test) else {
        return;
    };
    let tests = repo("deploy/prometheus/alerts.test.yaml");
    let text = std::fs::read_to_string(&tests).unwrap();
    for alert in ["CmafleetNoRecentSuccess", "CmafleetPushFailing"] {
        let cases = text
            .matches(&format!("alertname: {alert}\n        exp_alerts: []"))
            .count();
        assert!(cases >= 1, "{alert}: a time that must fire nothing");
    }
    let output = Command::new(&found[0])
        .args(["test", "rules"])
        .arg(&tests)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

//! The built-in scenario of `cmafleet demo` (`inventories/demo-scenario.toml`), matching
//! `inventories/demo.csv`.

use super::scenario::Scenario;

/// The demo scenario's text, as shipped in `inventories/`.
pub(crate) const DEMO_SCENARIO: &str = include_str!("../../inventories/demo-scenario.toml");

impl Scenario {
    /// The scenario of `cmafleet demo` (matches `inventories/demo.csv`).
    pub fn demo() -> Scenario {
        // The text is part of the binary and a unit test parses it: it cannot fail here.
        Scenario::parse_toml(DEMO_SCENARIO).unwrap_or_else(|err| {
            tracing::error!(%err, "the built-in demo scenario is invalid; using healthy defaults");
            Scenario::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::values::PlannedOutcome;

    #[test]
    fn the_demo_scenario_parses_and_has_the_promised_trouble() {
        let scenario = Scenario::parse_toml(DEMO_SCENARIO).unwrap();
        assert!(!scenario.profile("hooli-jira").connected);
        let umbrella = scenario.profile("umbrella-jira");
        let blocking = &umbrella.checks["CrossProjectEntityMissingProjectSelection"];
        assert_eq!(blocking.outcome, PlannedOutcome::Failed);
        assert_eq!(blocking.excludable, Some(false));
        assert!(!blocking.occurrences.is_empty());
        assert_eq!(
            scenario.profile("stark-jira").scopes["projects"].outcome,
            Some(PlannedOutcome::Failed)
        );
        let wayne = scenario.profile("wayne-jira");
        assert!(wayne.apps_duration > wayne.migrate_duration);
        assert_eq!(scenario.explicit_seed(), None);
    }

    #[test]
    fn the_demo_fits_in_well_under_a_minute_at_the_demo_time_scale() {
        let scenario = Scenario::demo();
        let demo_scale = 1800.0;
        for server in [
            "acme-jira",
            "initech-jira",
            "umbrella-jira",
            "stark-jira",
            "wayne-jira",
            "acme-wiki",
        ] {
            let profile = scenario.profile(server);
            // A check task, then a migrate task that checks again, migrates and moves apps.
            let total =
                2.0 * profile.check_duration + profile.migrate_duration + profile.apps_duration;
            assert!(total / demo_scale < 10.0, "{server}: {total}s simulated");
            assert!(
                (180.0..=480.0).contains(&profile.check_duration),
                "{server}"
            );
            assert!(
                (1200.0..=5400.0).contains(&profile.migrate_duration),
                "{server}"
            );
        }
    }
}

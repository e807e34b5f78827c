//! The default of every run setting that has one, written as its flag would take it. This
//! table is the only place a default is written: `--help` shows it after the flag's text,
//! the settings' resolution parses it as it parses a flag, and `--print-config` shows what
//! that parse gave, so the three cannot disagree.
//!
//! A setting missing here has no value unless one is given, except the on/off switches,
//! which are off.

/// `--state-dir` (and the state dir of `status`, `runs` and `report`): relative, so a run
/// started by hand keeps its state next to where it was started.
pub const STATE_DIR: &str = "cmafleet-state";

/// Atlassian's migration API.
pub const CLOUD_API_URL: &str = "https://api.atlassian.com";

/// (settings-file key, which is the flag's name without `--`; default).
const DEFAULTS: [(&str, &str); 14] = [
    ("state-dir", STATE_DIR),
    ("cloud-api-url", CLOUD_API_URL),
    ("concurrency", "50"),
    ("per-server", "1"),
    ("poll-min", "5s"),
    ("poll-max", "60s"),
    // The migration API's published limits per Atlassian user: a faster pace only earns 429s,
    // each of which pauses that user's requests of its kind for every site.
    ("rate-create-job", "5/min"),
    ("rate-create-task", "5/min"),
    ("rate-read", "600/min"),
    ("rate-token", "10/hour"),
    ("progress-interval", "30s"),
    ("request-timeout", "60s"),
    ("stop-after-same-failures", "3"),
    ("stop-grace", "10s"),
];

/// The default of the setting `key`, if it has one.
pub fn of(key: &str) -> Option<&'static str> {
    DEFAULTS
        .iter()
        .find(|(with, _)| *with == key)
        .map(|(_, default)| *default)
}

/// Every setting with a default, in table order.
pub fn keys() -> impl Iterator<Item = &'static str> {
    DEFAULTS.iter().map(|(key, _)| *key)
}

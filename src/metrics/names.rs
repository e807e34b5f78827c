//! Every metric name cmafleet exports, spelled here and nowhere else in the program: below
//! the registry and the per-site collector, which both name series.

pub const SITES: &str = "cmafleet_sites";
pub const SITE_STAGE: &str = "cmafleet_site_stage";
pub const SITE_OUTCOME: &str = "cmafleet_site_outcome";
pub const API_SURPRISES_TOTAL: &str = "cmafleet_api_surprises_total";
pub const STAGE_DURATION_SECONDS: &str = "cmafleet_stage_duration_seconds";
pub const API_REQUESTS_TOTAL: &str = "cmafleet_api_requests_total";
pub const API_REQUEST_DURATION_SECONDS: &str = "cmafleet_api_request_duration_seconds";
pub const API_RETRIES_TOTAL: &str = "cmafleet_api_retries_total";
pub const RATE_LIMITED_TOTAL: &str = "cmafleet_rate_limited_total";
pub const RATE_LIMIT_WAIT_SECONDS_TOTAL: &str = "cmafleet_rate_limit_wait_seconds_total";
pub const CHECK_RESULTS_TOTAL: &str = "cmafleet_check_results_total";
pub const MIGRATION_ITEMS: &str = "cmafleet_migration_items";
pub const RUN_START_TIMESTAMP_SECONDS: &str = "cmafleet_run_start_timestamp_seconds";
pub const LAST_SUCCESS_TIMESTAMP_SECONDS: &str = "cmafleet_last_success_timestamp_seconds";
pub const BUILD_INFO: &str = "cmafleet_build_info";

/// All of them, in the order the documentation lists them.
pub const ALL: [&str; 15] = [
    SITES,
    SITE_STAGE,
    SITE_OUTCOME,
    API_SURPRISES_TOTAL,
    STAGE_DURATION_SECONDS,
    API_REQUESTS_TOTAL,
    API_REQUEST_DURATION_SECONDS,
    API_RETRIES_TOTAL,
    RATE_LIMITED_TOTAL,
    RATE_LIMIT_WAIT_SECONDS_TOTAL,
    CHECK_RESULTS_TOTAL,
    MIGRATION_ITEMS,
    RUN_START_TIMESTAMP_SECONDS,
    LAST_SUCCESS_TIMESTAMP_SECONDS,
    BUILD_INFO,
];

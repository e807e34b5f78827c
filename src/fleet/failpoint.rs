//! Crash points for the crash-safety tests. `CMAFLEET_CRASH_AT=POINT[:N]` aborts the process
//! (no cleanup, no destructors: as abrupt as `kill -9`) the N-th time (default 1st) a pipeline
//! reaches POINT. Unset, every call is one relaxed atomic load.
//!
//! Points, in a site's order: `job-intent` (job intent durable, POST not sent), `job-created`
//! (POST answered, job id not recorded), `task-intent` (task intent durable, POST not sent),
//! `task-created` (POST answered, task id not recorded), `task-recorded` (task id durable),
//! `polling` (a status read done).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The variable tests set.
pub const VARIABLE: &str = "CMAFLEET_CRASH_AT";

struct Armed {
    point: String,
    nth: u32,
    seen: AtomicU32,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let value = std::env::var(VARIABLE).ok()?;
            let (point, nth) = match value.split_once(':') {
                Some((point, nth)) => (point.to_owned(), nth.parse().unwrap_or(1)),
                None => (value, 1),
            };
            Some(Armed {
                point,
                nth: nth.max(1),
                seen: AtomicU32::new(0),
            })
        })
        .as_ref()
}

/// Aborts here if the tests asked for a crash at `point`.
pub fn hit(point: &str) {
    if let Some(armed) = armed().filter(|armed| armed.point == point)
        && armed.seen.fetch_add(1, Ordering::SeqCst) + 1 == armed.nth
    {
        eprintln!("{VARIABLE}: crashing at {point}");
        std::process::abort();
    }
}

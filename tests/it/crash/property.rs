//! Property style: many seeded cases, each a small fleet (3–6 sites, two cloud users, every
//! fate, PAT or Basic server auth, one or two waves, sometimes `--precheck`) whose migrate run is killed once or twice at a seeded random
//! moment — a crash point and its N-th occurrence (`CMAFLEET_CRASH_AT=POINT:N`), or SIGKILL
//! after a random delay — and then run to its end. Every case must satisfy the oracle of
//! [`super::verify`]. A failing case prints its seed; `CMAFLEET_CRASH_CASES=N` runs more cases
//! and `CMAFLEET_CRASH_SEED=S` runs only case S.

use std::time::{Duration, Instant};

use super::{Fate, Kill, SIGABRT, SIGKILL, SiteSpec, exit_code_of, killed_run, start, verify};
use crate::support::fleet::Row;

/// Cases per test (two tests run side by side).
const CASES: u64 = 12;

/// Crash points in a site's order.
const POINTS: [&str; 7] = [
    "job-intent",
    "job-created",
    "task-intent",
    "task-created",
    "task-recorded",
    "polling",
    "task-judged",
];

/// SplitMix64: small, seeded, and the same everywhere.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One seeded case.
#[derive(Debug)]
struct Case {
    seed: u64,
    sites: Vec<SiteSpec>,
    precheck: bool,
    kills: Vec<Kill>,
}

impl Case {
    fn new(seed: u64) -> Case {
        let mut dice = Dice(seed);
        let count = dice.between(3, 6) as usize;
        let precheck = dice.chance(30);
        let users = ["ann@example.com", "ben@example.com"];
        let sites: Vec<SiteSpec> = (0..count)
            .map(|index| {
                let fate = match dice.between(0, 99) {
                    0..=34 => Fate::Succeeded,
                    35..=59 => Fate::Warnings,
                    60..=79 => Fate::Blocked,
                    _ => Fate::Failed,
                };
                let confluence = dice.chance(35);
                let name = format!("s{index}-{}", if confluence { "conf" } else { "jira" });
                let mut row = if confluence {
                    Row::confluence(&name)
                } else {
                    Row::jira(&name)
                };
                row = row.user(users[dice.between(0, 1) as usize]);
                if dice.chance(30) {
                    row = row.basic_auth();
                }
                // Two waves: the second starts when the first is done, kills or not.
                if dice.chance(30) {
                    row = row.wave("late");
                }
                // Apps run on after the core; only where a rerun never follows (a success).
                if matches!(fate, Fate::Succeeded | Fate::Warnings) && dice.chance(30) {
                    row = row.apps("com.example.gadgets");
                }
                SiteSpec::new(row, fate)
            })
            .collect();
        let creates = count as u64 * if precheck { 2 } else { 1 };
        let kill_count = if dice.chance(25) { 2 } else { 1 };
        let kills = (0..kill_count)
            .map(|_| {
                if dice.chance(60) {
                    let point = POINTS[dice.between(0, POINTS.len() as u64 - 1) as usize];
                    let most = match point {
                        "job-intent" | "job-created" => count as u64,
                        "polling" => 40,
                        _ => creates,
                    };
                    Kill::At(format!("{point}:{}", dice.between(1, most)))
                } else {
                    Kill::After(Duration::from_millis(dice.between(0, 1500)))
                }
            })
            .collect();
        Case {
            seed,
            sites,
            precheck,
            kills,
        }
    }

    fn describe(&self) -> String {
        let sites: Vec<String> = self
            .sites
            .iter()
            .map(|site| format!("{}={:?}/{}", site.row.site, site.fate, site.row.cloud_user))
            .collect();
        format!(
            "case seed {} (CMAFLEET_CRASH_SEED={}): sites [{}], precheck {}, kills {:?}",
            self.seed,
            self.seed,
            sites.join(", "),
            self.precheck,
            self.kills
        )
    }
}

/// Runs one case: kills, then a run to the end, then the oracle. Returns how many of its
/// kills landed (the others came after the run's end).
async fn run_case(case: &Case) -> usize {
    let context = case.describe();
    let fleet = start(case.seed, &case.sites, "").await;
    let extra: &[&str] = if case.precheck { &["--precheck"] } else { &[] };
    let mut landed = 0;
    for (index, kill) in case.kills.iter().enumerate() {
        let killed = killed_run(&fleet, &format!("kill{index}"), extra, kill).await;
        let expected_signal = match kill {
            Kill::At(_) => SIGABRT,
            Kill::After(_) => SIGKILL,
        };
        match (killed.signal, killed.code) {
            (Some(signal), _) => {
                assert_eq!(signal, expected_signal, "{context}");
                landed += 1;
            }
            // The kill came after the run's end (or the point was never reached N times).
            (None, Some(code)) => assert!(
                code == 0 || code == 1,
                "{context}: an unkilled run exits 0 or 1, not {code}\n{}",
                killed.stderr
            ),
            (None, None) => panic!("{context}: no exit status"),
        }
    }
    let last = fleet.run("migrate", "last", extra).await;
    assert_eq!(
        last.code,
        exit_code_of(&case.sites),
        "{context}\n{}",
        last.stderr
    );
    let summary = fleet.summary("last");
    for site in &case.sites {
        let outcome = &summary[&site.row.site]["outcome"];
        let migrated = matches!(site.fate, Fate::Succeeded | Fate::Warnings);
        assert!(
            outcome == site.fate.outcome() || (migrated && outcome == "skipped"),
            "{context}: {} ended {outcome} in the last run",
            site.row.site
        );
    }
    verify(&fleet, &case.sites, case.precheck, &context).await;
    landed
}

/// The seeds of this test's share of the cases.
fn seeds(first: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("CMAFLEET_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
    {
        return if seed % 2 == first % 2 {
            vec![seed]
        } else {
            Vec::new()
        };
    }
    let cases = std::env::var("CMAFLEET_CRASH_CASES")
        .ok()
        .and_then(|cases| cases.parse::<u64>().ok())
        .map_or(CASES, |cases| cases.div_ceil(2));
    (0..cases).map(|index| first + 2 * index).collect()
}

async fn run_cases(first: u64) {
    let started = Instant::now();
    let seeds = seeds(first);
    let (mut kills, mut landed) = (0, 0);
    for seed in &seeds {
        let case = Case::new(*seed);
        kills += case.kills.len();
        landed += run_case(&case).await;
    }
    eprintln!(
        "{} crash cases (seeds {:?}): {landed} of {kills} kills landed, in {:.1} s",
        seeds.len(),
        seeds,
        started.elapsed().as_secs_f64()
    );
    assert!(
        2 * landed >= kills,
        "most kills must land mid-run, or the cases test little: {landed} of {kills}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_killed_at_random_points_end_like_uninterrupted_runs_even_seeds() {
    run_cases(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_killed_at_random_points_end_like_uninterrupted_runs_odd_seeds() {
    run_cases(1001).await;
}

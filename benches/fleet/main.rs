//! The fleet benchmark: cmafleet against the simulator (a separate `cmafleet sim` process on
//! loopback, time-scaled), printing one line per figure.
//!
//! `cargo bench --bench fleet` (or `benches/fleet.sh`) reproduces every figure of
//! `docs/performance.md`:
//! - schedule efficiency — the lower bound `cmafleet plan` prints ÷ the measured run length,
//!   check and migrate modes, N = 50 and N = 500, with the 429s received;
//! - polling — status requests per site against duration/poll-max + log2(duration/poll-min) + 1,
//!   and how late (simulated seconds) a finished task was noticed;
//! - naive drivers — a sequential and a parallel hand-written driver against the same simulator;
//! - scale — 10,000 sites in one run: cmafleet's peak RSS and CPU per site, the simulator's
//!   cost measured separately.
//!
//! Options (after `--`): `--time-scale X` (default 60), `--scale-sites N` (default 10000),
//! `--only efficiency|naive|scale` (repeatable), `--keep DIR` (keep the work files there).

mod measure;
mod naive;
mod runs;
mod setup;

use std::path::{Path, PathBuf};
use std::time::Instant;

use runs::{FleetRun, Http, RunFigures, outcome_text, secs};
use setup::{SimProcess, work_dir};

/// Options of one bench run.
struct Options {
    scale: f64,
    scale_sites: usize,
    only: Vec<String>,
    keep: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Options {
        let mut options = Options {
            scale: 60.0,
            scale_sites: 10_000,
            only: Vec::new(),
            keep: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| panic!("{arg} needs a value"))
                    .clone()
            };
            match arg.as_str() {
                "--time-scale" => options.scale = value().parse().expect("--time-scale X"),
                "--scale-sites" => options.scale_sites = value().parse().expect("--scale-sites N"),
                "--only" => {
                    let section = value();
                    assert!(
                        ["efficiency", "naive", "scale"].contains(&section.as_str()),
                        "--only {section}: the sections are efficiency, naive and scale"
                    );
                    options.only.push(section);
                }
                "--keep" => options.keep = Some(PathBuf::from(value())),
                // What cargo passes to a bench binary.
                "--bench" => {}
                other => panic!("unknown option {other}"),
            }
        }
        let window_ms = 60_000.0 / options.scale;
        assert!(
            window_ms.fract() == 0.0,
            "--time-scale must divide 60000 (so the scaled rate windows are whole milliseconds)"
        );
        options
    }

    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|only| only == section)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(measure::WRAPPER_ARG) {
        std::process::exit(measure::wrapper(&args[1..]));
    }
    let options = Options::parse(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench(options));
}

async fn bench(options: Options) {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_cmafleet"));
    let temp = tempfile::tempdir().expect("a temp dir");
    let root = options
        .keep
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    let scale = options.scale;
    let started = Instant::now();
    println!(
        "cmafleet fleet bench: time scale x{scale} (a 12 s create interval lasts {} ms; poll-min {:.1} ms, poll-max {:.0} ms real), {} cores",
        12_000.0 / scale,
        runs::POLL_MIN * 1000.0 / scale,
        runs::POLL_MAX * 1000.0 / scale,
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    // The naive sequential driver takes minutes of real time but almost no CPU: it runs in
    // the background, against the first simulator, while the other scenarios are measured.
    let mut sequential = None;
    if options.wants("efficiency") || options.wants("naive") {
        let dir = work_dir(&root, "check-50");
        let sim = SimProcess::start(&binary, &dir, scale).await;
        let cmafleet = efficiency(&binary, &sim, &dir, "check", 50, 50, Http::H2c).await;
        if options.wants("naive") {
            parallel(&sim, &cmafleet, 50).await;
            let ours = cmafleet.measured.wall;
            sequential = Some(tokio::spawn(async move {
                let line = sequential_line(&sim, ours, 50).await;
                sim.stop().await;
                line
            }));
        } else {
            sim.stop().await;
        }
    }
    if options.wants("efficiency") {
        // Each scenario over HTTP/2 with prior knowledge (what the simulator and `demo`
        // speak), then over HTTP/1.1 (what a plain-http server that is not our simulator
        // gets by default); the check N=50 one over HTTP/2 ran above.
        let scenarios = [
            ("check", 50, 50, Http::Http1),
            ("migrate", 50, 50, Http::H2c),
            ("migrate", 50, 50, Http::Http1),
            ("check", 500, 500, Http::H2c),
            ("check", 500, 500, Http::Http1),
            ("migrate", 500, 500, Http::H2c),
            ("migrate", 500, 500, Http::Http1),
        ];
        for (mode, sites, concurrency, http) in scenarios {
            let dir = work_dir(&root, &format!("{mode}-{sites}{}", http.dir_suffix()));
            let sim = SimProcess::start(&binary, &dir, scale).await;
            efficiency(&binary, &sim, &dir, mode, sites, concurrency, http).await;
            sim.stop().await;
        }
    }
    if options.wants("scale") {
        scale_run(&binary, &root, &options).await;
    }
    if let Some(sequential) = sequential {
        println!("{}", sequential.await.expect("the sequential driver ran"));
    }
    println!("total bench time {}", secs(started.elapsed()));
}

/// One efficiency scenario: prints the efficiency and polling lines.
async fn efficiency(
    binary: &Path,
    sim: &SimProcess,
    dir: &Path,
    mode: &'static str,
    count: usize,
    concurrency: usize,
    http: Http,
) -> RunFigures {
    let figures = FleetRun {
        binary,
        dir: dir.to_owned(),
        sim,
        sites: setup::sites("fleet-", count, 1),
        mode,
        concurrency,
        http,
    }
    .measure()
    .await;
    let scale = sim.scale;
    let label = http.label();
    println!(
        "efficiency {mode} N={count} {label}: bound {:.2} s ({:.0} s simulated, {}), run {}, bound/run {:.3}, 429s {}, sites: {}",
        figures.bound_real(scale),
        figures.bound_sim,
        figures.bound_by,
        secs(figures.measured.wall),
        figures.efficiency(scale),
        figures.rate_limited,
        outcome_text(&figures.outcomes),
    );
    let polls = &figures.polls;
    println!(
        "polling {mode} N={count} {label}: status requests per site mean {:.1}, max {} (bound {:.1}); finished task noticed after {:.1} s mean, {:.1} s max simulated (poll-max {:.0} s; {} tasks)",
        polls.status_mean,
        polls.status_max,
        polls.status_bound,
        polls.notice_mean,
        polls.notice_max,
        runs::POLL_MAX,
        polls.noticed,
    );
    figures
}

/// The naive sequential driver against cmafleet's simulator (its own user and servers).
async fn sequential_line(sim: &SimProcess, ours: std::time::Duration, count: usize) -> String {
    let sites = setup::sites("seq-", count, 1);
    let run = naive::Driver::sequential(&sim.base, sim.scale, &sites).await;
    format!(
        "naive sequential N={count}: run {}, sites succeeded {} failed {}; cmafleet/sequential run length {:.3}",
        secs(run.wall),
        run.succeeded,
        run.failed,
        ours.as_secs_f64() / run.wall.as_secs_f64(),
    )
}

/// The naive parallel driver against cmafleet's simulator (its own user and servers).
async fn parallel(sim: &SimProcess, cmafleet: &RunFigures, count: usize) {
    let ours = cmafleet.measured.wall;
    let parallel_sites = setup::sites("par-", count, 1);
    let parallel = naive::Driver::parallel(&sim.base, sim.scale, &parallel_sites).await;
    let counters = sim.counters().await;
    let user = &parallel_sites[0].cloud_user;
    let rate_limited: u64 = counters
        .rate_limited
        .by_user
        .get(user)
        .map_or(0, |classes| classes.values().sum());
    println!(
        "naive parallel N={count}: run {}, 429s {}, sites succeeded {} failed {}; cmafleet/parallel run length {:.3} (cmafleet: 429s {}, failed {})",
        secs(parallel.wall),
        rate_limited,
        parallel.succeeded,
        parallel.failed,
        ours.as_secs_f64() / parallel.wall.as_secs_f64(),
        cmafleet.rate_limited,
        cmafleet.outcomes.get("failed").copied().unwrap_or(0),
    );
}

/// Cloud users of the scale run (sites spread round-robin over them).
const SCALE_USERS: usize = 50;
/// Sites in flight in the scale run: enough to keep every user's create buckets busy (each
/// user needs about task duration ÷ create interval = 15 sites in flight), so the rate limits,
/// not the cap, decide the run's length.
const SCALE_CONCURRENCY: usize = 1000;

/// Thousands of sites in one run: cmafleet's peak RSS and CPU per site, the simulator's own.
async fn scale_run(binary: &Path, root: &Path, options: &Options) {
    let count = options.scale_sites;
    let dir = work_dir(root, &format!("scale-{count}"));
    let sim = SimProcess::start(binary, &dir, options.scale).await;
    let before = sim.usage();
    let figures = FleetRun {
        binary,
        dir: dir.clone(),
        sim: &sim,
        sites: setup::sites("scale-", count, SCALE_USERS),
        mode: "check",
        concurrency: SCALE_CONCURRENCY.min(count),
        http: Http::H2c,
    }
    .measure()
    .await;
    let after = sim.usage();
    let measured = &figures.measured;
    let per_site = measured.cpu().as_secs_f64() * 1000.0 / count as f64;
    println!(
        "scale N={count} ({SCALE_USERS} cloud users, check, --concurrency {}): cmafleet peak RSS {:.1} MB, CPU {} ({:.2} ms per site; user {}, system {}), run {}, bound/run {:.3}, 429s {}, sites: {}",
        SCALE_CONCURRENCY.min(count),
        measured.max_rss as f64 / 1e6,
        secs(measured.cpu()),
        per_site,
        secs(measured.user),
        secs(measured.system),
        secs(measured.wall),
        figures.efficiency(options.scale),
        figures.rate_limited,
        outcome_text(&figures.outcomes),
    );
    let sim_cpu = after.cpu.saturating_sub(before.cpu);
    println!(
        "simulator during the scale run: CPU {} ({:.2} ms per site, {} requests, {:.0} µs per request), peak RSS {:.1} MB",
        secs(sim_cpu),
        sim_cpu.as_secs_f64() * 1000.0 / count as f64,
        figures.counters.total,
        sim_cpu.as_secs_f64() * 1e6 / figures.counters.total.max(1) as f64,
        after.peak_rss as f64 / 1e6,
    );
    sim.stop().await;
}

//! `cmafleet demo`: the one-command tour. Starts the built-in simulator on a free loopback
//! port with a scenario that looks like a real consultancy fleet, runs `inventories/demo.csv`
//! through checks and then migration against it (time-scaled), serves `/metrics` and the live
//! status page while it runs, and writes reports under `./cmafleet-demo/`. No set-up, no
//! secret, no network beyond loopback.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{DemoArgs, OutputArgs};
use crate::cma::client::ServerCredentials;
use crate::config::{RunSettings, Selection};
use crate::exit;
use crate::fleet::coordinator::Credentials;
use crate::fleet::policy::{PollPolicy, Rate, RateConfig};
use crate::fleet::shutdown::Shutdown;
use crate::inventory::{self, ServerAuth, Site};
use crate::progress;
use crate::secret::Secret;
use crate::sim::{self, Scenario, SimOptions};
use crate::vocab::Mode;

use super::run::{self as run_command, Ui};

/// The demo inventory, with `127.0.0.1:8080` standing for the simulator's address.
const DEMO_INVENTORY: &str = include_str!("../../inventories/demo.csv");
const PLACEHOLDER_ADDR: &str = "127.0.0.1:8080";
/// Marks a directory as the demo's own, so a second demo may clear it.
const MARKER: &str = ".cmafleet-demo";

pub async fn run(args: &DemoArgs, output: &OutputArgs, shutdown: Shutdown) -> u8 {
    if !(args.time_scale.is_finite() && args.time_scale >= 1.0) {
        eprintln!("error: --time-scale must be a number of at least 1");
        return exit::USAGE;
    }
    if let Err(message) = prepare_dir(&args.out) {
        eprintln!("error: {message}");
        return exit::CANT_CREATE;
    }
    let simulator = match sim::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SimOptions {
            time_scale: args.time_scale,
            scenario: Scenario::demo(),
        },
    )
    .await
    {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("error: cannot start the simulator on loopback: {error}");
            return exit::CANT_CREATE;
        }
    };
    let base = simulator.base_url();
    crate::outln!(
        "cmafleet demo: simulator of the CMA migration API at {base} (time ×{})",
        args.time_scale
    );
    let inventory_text = DEMO_INVENTORY.replace(PLACEHOLDER_ADDR, &simulator.addr.to_string());
    let inventory_path = args.out.join("inventory.csv");
    if let Err(error) = std::fs::write(&inventory_path, &inventory_text) {
        eprintln!("error: cannot write {}: {error}", inventory_path.display());
        return exit::CANT_CREATE;
    }
    let sites: Vec<Arc<Site>> = match inventory::parse(&inventory_text) {
        Ok(sites) => sites.into_iter().map(Arc::new).collect(),
        Err(problems) => {
            for problem in problems {
                eprintln!("demo inventory: {problem}");
            }
            return exit::DATA;
        }
    };
    let metrics_listen = match free_loopback_port(&args.metrics_listen) {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::USAGE;
        }
    };
    let live = progress::live_enabled(output.progress);
    let mut code = exit::OK;
    let modes = [Mode::Check, Mode::Migrate];
    for mode in modes {
        if shutdown.is_draining() {
            break;
        }
        crate::outln!("\n== {} run: {} sites ==", mode, sites.len());
        let settings = demo_settings(args, mode, &base, &inventory_path, metrics_listen);
        let credentials = demo_credentials(&sites);
        // After the last run: where everything is, while the status page is still up.
        let linger = (Some(&mode) == modes.last()).then(|| {
            let out = args.out.clone();
            let page = format!("http://{metrics_listen}/");
            let stop = shutdown.graceful().clone();
            let linger: futures::future::BoxFuture<'static, ()> =
                Box::pin(async move { closing(&out, &page, &stop).await });
            linger
        });
        let executed = run_command::execute(
            settings,
            sites.clone(),
            Vec::new(),
            credentials,
            shutdown.clone(),
            Ui {
                live,
                announce_status_page: true,
                summary: true,
                quiet_sites: true,
                linger,
            },
        )
        .await;
        if executed.result.is_none() {
            return executed.exit_code;
        }
        if matches!(executed.exit_code, exit::INTERRUPTED | exit::TERMINATED) {
            code = executed.exit_code;
            break;
        }
    }
    simulator.shutdown.cancel();
    let _ = simulator.join.await;
    code
}

/// How long the status page stays up after the demo when nobody can press Enter.
const LINGER_OFF_TERMINAL: Duration = Duration::from_secs(3);

/// The demo's last words — where the reports are, and commands to try, runnable as printed —
/// then the status page kept up until Enter on a terminal (or a few seconds elsewhere).
async fn closing(out: &Path, page: &str, stop: &tokio_util::sync::CancellationToken) {
    crate::outln!();
    for mode in [Mode::Check, Mode::Migrate] {
        crate::outln!(
            "{mode} report: {}",
            out.join(mode.as_str()).join("report.html").display()
        );
    }
    let state = out.join("state");
    let me = invocation();
    crate::outln!("State store: {}; try:", state.display());
    crate::outln!("  {me} status --state-dir {}", state.display());
    crate::outln!("  {me} runs --state-dir {}", state.display());
    crate::outln!(
        "  {me} status --state-dir {} --site hooli-jira",
        state.display()
    );
    let wait = async {
        use std::io::IsTerminal as _;
        if std::io::stdin().is_terminal() {
            crate::outln!("\nThe status page stays up at {page} — press Enter to end the demo.");
            let mut line = String::new();
            let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
            let _ = tokio::io::AsyncBufReadExt::read_line(&mut stdin, &mut line).await;
        } else {
            tokio::time::sleep(LINGER_OFF_TERMINAL).await;
        }
    };
    tokio::select! {
        () = wait => {}
        () = stop.cancelled() => {}
    }
}

/// How to run this very binary again, as a person would type it: `cmafleet` when that is
/// what `PATH` finds, `cargo run --release --` from the checkout it was built in, else its path.
fn invocation() -> String {
    let Ok(me) = std::env::current_exe().and_then(|exe| exe.canonicalize()) else {
        return "cmafleet".to_owned();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .filter_map(|dir| dir.join("cmafleet").canonicalize().ok())
            .any(|found| found == me)
    });
    if on_path {
        return "cmafleet".to_owned();
    }
    let cwd = std::env::current_dir().and_then(|dir| dir.canonicalize());
    if let Ok(cwd) = cwd
        && let Ok(inside) = me.strip_prefix(cwd.join("target"))
    {
        let profile = inside.components().next().map(|part| part.as_os_str());
        return if profile == Some(std::ffi::OsStr::new("release")) {
            "cargo run --release --".to_owned()
        } else {
            "cargo run --".to_owned()
        };
    }
    me.display().to_string()
}

/// The settings of one demo run: the simulator's URL, its scaled rate limits and polling.
fn demo_settings(
    args: &DemoArgs,
    mode: Mode,
    base: &str,
    inventory: &Path,
    metrics_listen: SocketAddr,
) -> RunSettings {
    let scale = args.time_scale;
    let scaled = |rate: Rate| -> Rate {
        // The simulator divides every window by the scale; so do we, keeping counts whole.
        let per = rate.per.div_f64(scale).max(Duration::from_millis(1));
        Rate {
            count: rate.count,
            per,
        }
    };
    let defaults = RateConfig::default();
    let poll = PollPolicy {
        min: Duration::from_secs(5).div_f64(scale),
        max: Duration::from_secs(60).div_f64(scale),
    };
    let mut client = crate::cma::client::ClientSettings {
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    client.retry.base_delay = Duration::from_millis(50);
    let cloud_api_url = url::Url::parse(base).expect("the simulator's address is a URL");
    // The simulator speaks HTTP/2 with prior knowledge: one connection for every request.
    let client = client.with_h2c_api(&cloud_api_url);
    RunSettings {
        inventory: inventory.to_owned(),
        mode,
        state_dir: args.out.join("state"),
        report_dir: Some(args.out.join(mode.as_str())),
        cloud_api_url,
        concurrency: 50,
        per_server: 1,
        selection: Selection::default(),
        precheck: false,
        block_on_warnings: false,
        override_checks: Vec::new(),
        connect: false,
        wait_apps: false,
        remigrate: false,
        no_new_tasks_after: None,
        deadline: None,
        poll,
        rates: RateConfig {
            create_job: scaled(defaults.create_job),
            create_task: scaled(defaults.create_task),
            read: scaled(defaults.read),
            token: scaled(defaults.token),
        },
        metrics_listen: Some(metrics_listen),
        pushgateway: None,
        metrics_textfile: None,
        progress_interval: Duration::from_secs(5),
        client,
        young_task_grace: Duration::from_secs(30)
            .div_f64(scale)
            .max(Duration::from_secs(2)),
        stop_after_same_failures: 3,
        stop_grace: Duration::from_secs(10),
    }
}

/// The demo's secrets: the simulator accepts any token, so nothing is read from the environment.
fn demo_credentials(sites: &[Arc<Site>]) -> Credentials {
    Credentials {
        cloud: sites
            .iter()
            .map(|site| (site.cloud_user.clone(), Secret::new("demo-cloud-token")))
            .collect(),
        servers: sites
            .iter()
            .map(|site| match &site.server_auth {
                ServerAuth::Bearer(_) => ServerCredentials::Bearer(Secret::new("demo-server-pat")),
                ServerAuth::Basic { username, .. } => ServerCredentials::Basic {
                    username: username.clone(),
                    password: Secret::new("demo-server-password"),
                },
            })
            .collect(),
    }
}

/// Creates the demo dir, or clears one a previous demo left (never a dir that is not the demo's).
fn prepare_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        let is_demo = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir)
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        if !is_demo && !empty {
            return Err(format!(
                "{} exists and was not made by `cmafleet demo`; choose another --out",
                dir.display()
            ));
        }
        for name in ["state", "check", "migrate", "inventory.csv"] {
            let path = dir.join(name);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(format!("cannot clear {}: {error}", path.display())),
            }
        }
    }
    crate::report::writer::create_private_dir(dir).map_err(|error| error.to_string())?;
    std::fs::write(dir.join(MARKER), "made by cmafleet demo; safe to delete\n")
        .map_err(|error| format!("cannot write in {}: {error}", dir.display()))
}

/// Resolves `HOST:PORT` (port 0: a free port, kept for both runs so the page stays put).
fn free_loopback_port(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("bad --metrics-listen `{text}`: expected IP:PORT"))?;
    if addr.port() != 0 {
        return Ok(addr);
    }
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|error| format!("cannot bind {addr}: {error}"))?;
    listener.local_addr().map_err(|error| error.to_string())
}

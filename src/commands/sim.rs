//! `cmafleet sim`: runs the simulator until shut down, printing the address it listens on.

use std::io::Write;
use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use crate::cli::SimArgs;
use crate::exit;
use crate::sim::{self, Scenario, SimOptions};

/// Loads the scenario, binds `--listen`, prints `listening on http://IP:PORT` once bound,
/// and serves until `shutdown` fires. A bad scenario exits `CONFIG`; a bad `--listen` or
/// time scale exits `USAGE`.
pub async fn run(args: &SimArgs, shutdown: CancellationToken) -> u8 {
    let scenario = match &args.scenario {
        Some(path) => match Scenario::load(path) {
            Ok(scenario) => scenario,
            Err(err) => {
                eprintln!("error: failed to load the scenario: {err}");
                return exit::CONFIG;
            }
        },
        None => Scenario::default(),
    };
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        eprintln!(
            "error: --time-scale must be a positive number, not {}",
            args.time_scale
        );
        return exit::USAGE;
    }
    let listen = match resolve_listen(&args.listen).await {
        Ok(listen) => listen,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::USAGE;
        }
    };
    let options = SimOptions {
        time_scale: args.time_scale,
        scenario,
    };
    let handle = match sim::start(listen, options).await {
        Ok(handle) => handle,
        Err(err) => {
            eprintln!("error: failed to listen on {listen}: {err}");
            return exit::CONFIG;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", handle.base_url());
    let _ = stdout.flush();
    tracing::info!(addr = %handle.addr, time_scale = args.time_scale, "simulator running");
    shutdown.cancelled().await;
    handle.shutdown.cancel();
    match handle.join.await {
        Ok(Ok(())) => exit::OK,
        Ok(Err(err)) => {
            eprintln!("error: the simulator stopped: {err}");
            exit::CONFIG
        }
        Err(err) => {
            eprintln!("error: the simulator stopped: {err}");
            exit::CONFIG
        }
    }
}

/// `IP:PORT`, or `HOST:PORT` resolved (the first address).
async fn resolve_listen(listen: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = listen.parse() {
        return Ok(addr);
    }
    tokio::net::lookup_host(listen)
        .await
        .map_err(|err| format!("invalid --listen address `{listen}`: {err}"))?
        .next()
        .ok_or_else(|| format!("invalid --listen address `{listen}`: it resolves to nothing"))
}

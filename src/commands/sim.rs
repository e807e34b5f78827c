//! `cmafleet sim`: runs the simulator until shut down, printing the address it listens on
//! and the shapes it serves.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use crate::cli::{ShapesMode, SimArgs};
use crate::exit;
use crate::sim::{self, Scenario, SimOptions};

/// Loads the scenario, applies `--shapes`/`--seed`, binds `--listen`, prints
/// `listening on http://IP:PORT` once bound and then the shapes line
/// (`shapes: children=… random_seed=S`), and serves until `shutdown` fires. A bad scenario
/// exits `CONFIG`; a bad `--listen`, time scale, or a `--seed` without `--shapes random`
/// exits `USAGE`.
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
    let scenario = match apply_shapes(scenario, args.shapes, args.seed) {
        Ok(scenario) => scenario,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::USAGE;
        }
    };
    let shapes = scenario.shapes_summary();
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
    crate::stdout::say(&format!("listening on {}\n{shapes}\n", handle.base_url()));
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

/// The scenario with `--shapes` applied: `random` picks the points its tables do not set
/// from `--seed` (or a new seed), `documented` keeps the documented ones even if the
/// scenario names a `random_seed`; without `--shapes` the scenario decides.
fn apply_shapes(
    scenario: Scenario,
    mode: Option<ShapesMode>,
    seed: Option<u64>,
) -> Result<Scenario, String> {
    match (mode, seed) {
        (Some(ShapesMode::Random), seed) => Ok(scenario
            .with_random_shapes(seed.unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0))),
        (_, Some(seed)) => Err(format!(
            "--seed {seed} is the seed of random shapes: add --shapes random"
        )),
        (Some(ShapesMode::Documented), None) => Ok(scenario.with_documented_shapes()),
        (None, None) => Ok(scenario),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_flags_choose_the_mode_and_a_lone_seed_is_refused() {
        let table = || Scenario::parse_toml("[shapes]\nrandom_seed = 5\n").unwrap();
        let documented = apply_shapes(table(), Some(ShapesMode::Documented), None).unwrap();
        assert!(!documented.shapes_summary().contains("random_seed"));
        let random = apply_shapes(table(), Some(ShapesMode::Random), Some(9)).unwrap();
        assert!(random.shapes_summary().ends_with(" random_seed=9"));
        let fresh = apply_shapes(Scenario::default(), Some(ShapesMode::Random), None).unwrap();
        assert!(fresh.shapes_summary().contains(" random_seed="));
        let as_written = apply_shapes(table(), None, None).unwrap();
        assert!(as_written.shapes_summary().ends_with(" random_seed=5"));
        let err = apply_shapes(table(), None, Some(3)).unwrap_err();
        assert!(err.contains("--shapes random"), "{err}");
        assert!(apply_shapes(table(), Some(ShapesMode::Documented), Some(3)).is_err());
    }
}

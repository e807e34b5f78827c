//! Several state stores read as one fleet (`report` and `status` with `--state-dirs`): a
//! fleet run as shards — one state dir per Indexed Job pod, one runner per customer network
//! — has one store a shard. Each store is opened read-only and named after its run's
//! `--shard` label, else its dir's name (the whole path when two names collide).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::exit;
use crate::report::RunReport;
use crate::report::merge::{self, ShardRun};
use crate::report::model::RunInfo;
use crate::state::{StateError, Store};
use crate::vocab::Mode;

#[derive(Debug, thiserror::Error)]
pub enum StoresError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("state dir {0} is given twice")]
    Twice(String),
    #[error("no run recorded in {0}")]
    NoRun(String),
    #[error("no {mode} run in {dir}; pick the mode every store has run with --mode")]
    NoRunOfMode { mode: Mode, dir: String },
}

impl StoresError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StoresError::State(error) => error.exit_code(),
            StoresError::Twice(_) | StoresError::NoRun(_) | StoresError::NoRunOfMode { .. } => {
                exit::USAGE
            }
        }
    }
}

/// One of the stores, opened.
pub struct OpenStore {
    pub dir: PathBuf,
    pub store: Store,
}

/// Opens every dir's store, in the order given; a dir given twice is refused.
pub fn open_all(dirs: &[PathBuf]) -> Result<Vec<OpenStore>, StoresError> {
    let mut stores: Vec<OpenStore> = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let same = |other: &OpenStore| {
            other.dir == *dir
                || std::fs::canonicalize(&other.dir).ok() == std::fs::canonicalize(dir).ok()
        };
        if stores.iter().any(same) {
            return Err(StoresError::Twice(dir.display().to_string()));
        }
        stores.push(OpenStore {
            store: Store::open_existing(dir)?,
            dir: dir.clone(),
        });
    }
    Ok(stores)
}

/// The name of each store's sites: `runs[i]`'s shard label, else `dirs[i]`'s last component;
/// names two stores would share are their whole paths instead.
pub fn labels(dirs: &[PathBuf], runs: &[Option<&RunInfo>]) -> Vec<String> {
    let short: Vec<String> = dirs
        .iter()
        .zip(runs)
        .map(|(dir, run)| {
            run.and_then(|run| run.shard.clone())
                .unwrap_or_else(|| dir_name(dir))
        })
        .collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for label in &short {
        *uses.entry(label.as_str()).or_default() += 1;
    }
    short
        .iter()
        .zip(dirs)
        .map(|(label, dir)| {
            if uses[label.as_str()] > 1 {
                dir.display().to_string()
            } else {
                label.clone()
            }
        })
        .collect()
}

fn dir_name(dir: &Path) -> String {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    absolute.file_name().map_or_else(
        || dir.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// The fleet report of each store's latest run of `mode` (default: the mode of the first
/// store's latest run), and of each store's run of that mode before it (for `changes.md`;
/// `None` when no store has one).
pub fn fleet_report(
    dirs: &[PathBuf],
    mode: Option<Mode>,
) -> Result<(RunReport, Option<RunReport>), StoresError> {
    let stores = open_all(dirs)?;
    let mode = match mode {
        Some(mode) => mode,
        None => {
            let first = &stores[0];
            first
                .store
                .latest_run()?
                .ok_or_else(|| StoresError::NoRun(first.dir.display().to_string()))?
                .mode
        }
    };
    let mut runs: Vec<RunReport> = Vec::with_capacity(stores.len());
    let mut previous: Vec<Option<RunReport>> = Vec::with_capacity(stores.len());
    for open in &stores {
        let no_run = || StoresError::NoRunOfMode {
            mode,
            dir: open.dir.display().to_string(),
        };
        let latest = open
            .store
            .runs()?
            .into_iter()
            .find(|run| run.mode == mode)
            .ok_or_else(no_run)?;
        runs.push(open.store.run_report(&latest.run_id)?.ok_or_else(no_run)?);
        previous.push(open.store.previous_run(mode, &latest.run_id)?);
    }
    let labels = labels(
        dirs,
        &runs.iter().map(|run| Some(&run.run)).collect::<Vec<_>>(),
    );
    let shard_runs = |reports: Vec<Option<RunReport>>| -> Vec<ShardRun> {
        reports
            .into_iter()
            .zip(&labels)
            .zip(dirs)
            .filter_map(|((report, label), dir)| {
                Some(ShardRun {
                    label: label.clone(),
                    state_dir: dir.display().to_string(),
                    report: report?,
                })
            })
            .collect()
    };
    let current = merge::merge(mode, shard_runs(runs.into_iter().map(Some).collect()));
    let before = shard_runs(previous);
    let before = (!before.is_empty()).then(|| merge::merge(mode, before));
    Ok((current, before))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(shard: Option<&str>) -> RunInfo {
        let mut run = crate::report::fixtures::fleet().run;
        run.shard = shard.map(str::to_owned);
        run
    }

    #[test]
    fn stores_are_named_by_shard_then_dir_and_never_share_a_name() {
        let dirs = [
            PathBuf::from("/srv/eu/state"),
            PathBuf::from("/srv/us/state"),
            PathBuf::from("/srv/apac"),
            PathBuf::from("/srv/k8s-0"),
        ];
        let (sharded, plain) = (run(Some("0/2")), run(None));
        let runs = [Some(&plain), Some(&plain), None, Some(&sharded)];
        assert_eq!(
            labels(&dirs, &runs),
            ["/srv/eu/state", "/srv/us/state", "apac", "0/2"]
        );
    }
}

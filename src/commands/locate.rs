//! Opening the state store of a command that only reads it (`status`, `runs`, `report`), and,
//! when the dir holds none, saying where a run's state dir may be: the default, the
//! `--config` file's `state-dir`, `CMAFLEET_STATE_DIR`, and the stores found nearby.
//!
//! A missing store is exit 73 (there is nothing to read; 2 is for bad flags), like a store
//! that cannot be read.

use std::path::{Path, PathBuf};

use crate::config::SettingsFile;
use crate::state::{DB_FILE, StateError, Store};

/// How many stores found nearby are named.
const SHOWN: usize = 5;
/// How many directories the search for nearby stores reads at most.
const SEARCHED: usize = 200;

/// Where a run wrote its reports: its `report_dir` option (`--report-dir`), else
/// `reports/<run id>` under its state dir — as `run` chooses it.
pub(super) fn report_dir_of(
    options: &serde_json::Value,
    state_dir: &Path,
    run_id: &str,
) -> PathBuf {
    match options.get("report_dir").and_then(|dir| dir.as_str()) {
        Some(dir) => PathBuf::from(dir),
        None => state_dir.join("reports").join(run_id),
    }
}

/// Opens the store in `state_dir`; on failure says why (with where to look when there is
/// none) and returns the exit code.
pub(super) fn open(state_dir: &Path, config: Option<&Path>) -> Result<Store, u8> {
    Store::open_existing(state_dir).map_err(|error| {
        let message = match &error {
            StateError::Missing(_) => missing(
                state_dir,
                config,
                std::env::var_os("CMAFLEET_STATE_DIR").map(PathBuf::from),
                &nearby(Path::new("."), state_dir),
            ),
            _ => error.to_string(),
        };
        crate::fatal::report(error.exit_code(), &message);
        error.exit_code()
    })
}

/// The message for a dir without a state store.
fn missing(
    state_dir: &Path,
    config: Option<&Path>,
    variable: Option<PathBuf>,
    found: &[PathBuf],
) -> String {
    let mut text = format!(
        "no state store in {} (no {DB_FILE} there): no run used this state dir",
        state_dir.display()
    );
    text.push_str(
        "\n  a run's state dir is its --state-dir (default ./cmafleet-state, in the directory it \
         ran in), CMAFLEET_STATE_DIR, or `state-dir` in its --config file: give this command \
         the same",
    );
    if let Some(variable) = variable {
        text.push_str(&format!("\n  CMAFLEET_STATE_DIR is {}", variable.display()));
    }
    if let Some(config) = config {
        match SettingsFile::load(Some(config)).map(|file| file.state_dir) {
            Ok(Some(dir)) => text.push_str(&format!(
                "\n  {} sets state-dir = {}",
                config.display(),
                dir.display()
            )),
            Ok(None) => text.push_str(&format!(
                "\n  {} sets no state-dir (the default applies)",
                config.display()
            )),
            Err(_) => {}
        }
    }
    if !found.is_empty() {
        let shown: Vec<String> = found
            .iter()
            .take(SHOWN)
            .map(|dir| dir.display().to_string())
            .collect();
        let more = match found.len().saturating_sub(SHOWN) {
            0 => String::new(),
            n => format!(", … and {n} more"),
        };
        text.push_str(&format!(
            "\n  state stores nearby: {}{more}",
            shown.join(", ")
        ));
    }
    text
}

/// State dirs under `base` (itself, its subdirectories and theirs), other than `except`.
fn nearby(base: &Path, except: &Path) -> Vec<PathBuf> {
    let has_store = |dir: &Path| dir.join(DB_FILE).is_file();
    let same = |dir: &Path| {
        std::fs::canonicalize(dir).ok() == std::fs::canonicalize(except).ok()
            && std::fs::canonicalize(dir).is_ok()
    };
    let subdirs = |dir: &Path| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .map(|entry| entry.path())
            .take(SEARCHED)
            .collect();
        dirs.sort();
        dirs
    };
    let mut found = Vec::new();
    let mut searched = 0usize;
    let consider = |dir: PathBuf, found: &mut Vec<PathBuf>| {
        if has_store(&dir) && !same(&dir) {
            found.push(dir.strip_prefix("./").map(Path::to_path_buf).unwrap_or(dir));
        }
    };
    consider(base.to_path_buf(), &mut found);
    for child in subdirs(base) {
        searched += 1;
        consider(child.clone(), &mut found);
        for grandchild in subdirs(&child) {
            searched += 1;
            consider(grandchild, &mut found);
            if searched >= SEARCHED {
                return found;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_every_place_a_state_dir_comes_from() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("nightly.toml");
        std::fs::write(&config, "state-dir = \"/var/lib/cmafleet\"\n").unwrap();
        let text = missing(
            Path::new("cmafleet-state"),
            Some(&config),
            Some(PathBuf::from("/srv/state")),
            &[PathBuf::from("cmafleet-demo/state")],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "no state store in cmafleet-state (no state.db there): no run used this state dir"
        );
        assert!(lines[1].contains("default ./cmafleet-state"), "{text}");
        assert_eq!(lines[2], "  CMAFLEET_STATE_DIR is /srv/state");
        assert_eq!(
            lines[3],
            format!("  {} sets state-dir = /var/lib/cmafleet", config.display())
        );
        assert_eq!(lines[4], "  state stores nearby: cmafleet-demo/state");
    }

    #[test]
    fn stores_two_levels_down_are_found_and_the_asked_one_is_not_repeated() {
        let dir = tempfile::tempdir().unwrap();
        for store in ["a/state", "b", "c/d/e"] {
            std::fs::create_dir_all(dir.path().join(store)).unwrap();
            std::fs::write(dir.path().join(store).join(DB_FILE), "").unwrap();
        }
        let found = nearby(dir.path(), &dir.path().join("b"));
        assert_eq!(found, [dir.path().join("a/state")]);
    }
}

//! Puts reports on disk: each file written atomically (temp, then rename) with mode 0600 in a
//! 0700 dir; a site's JSON as soon as it finishes, everything rewritten whole at the end.
//!
//! # Crash safety and cost
//!
//! Reports are written as each site finishes (a crash loses nothing already finished) and
//! rewritten whole at the end. [`ReportWriter::write_site`] always writes the
//! finished site's `sites/<site>.json` before it returns — atomically (temp file, rename), so
//! a reader never sees half a file. It does not fsync: the coordinator commits the same site
//! report to the state store (fsync'd) before writing the file, so a process crash loses
//! nothing (the page cache outlives the process) and even a power cut loses only the file,
//! never what it says (`cmafleet report` re-renders it from the store); two more fsyncs per
//! site would cost more than the rest of a site's work. The summaries (`summary.csv`,
//! `summary.md`) cover the whole fleet, so rewriting them after every site of a large run
//! would cost O(n²) (gigabytes written and thousands of fsyncs). `write_site` therefore refreshes them only when they are due:
//! the first time, and then once the time since the last refresh is at least
//! [`REFRESH_COST_FACTOR`] times what that refresh took. Summaries thus cost at most about
//! 1/200 of the run's wall time and stay fresh: on a small fleet they are rewritten after
//! nearly every site, on 10,000 sites about every ten seconds. [`ReportWriter::write_summaries`]
//! forces a refresh; [`ReportWriter::write_all`] rewrites every file at the end (and is what
//! `cmafleet report` uses to re-render from the state store). The decision is the pure
//! function [`summaries_due`]; the writer only remembers the last refresh.
//!
//! # Permissions
//!
//! The report dir, `sites/` and `artifacts/` are set to 0700 (also when they already existed:
//! they hold customer data); parents the writer creates get 0700 too, existing parents are
//! left alone. Every file is 0600 whatever the umask; the artifact downloads
//! (`cma::client::download`) save theirs the same way, all in `artifacts/`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::model::{RunReport, SiteReport};
use super::{changes, csv, html, json, markdown};

#[derive(Debug, thiserror::Error)]
#[error("cannot write report {path}: {source}")]
pub struct ReportError {
    pub path: String,
    pub source: std::io::Error,
}

impl ReportError {
    fn at(path: &Path, source: io::Error) -> ReportError {
        ReportError {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Summaries are refreshed once the time since the last refresh is at least this many times
/// what the last refresh took (so they cost at most a two-hundredth of the run's wall time:
/// they are derived files, and the live view is `status.json` and the metrics).
pub const REFRESH_COST_FACTOR: u32 = 200;

/// Whether `write_site` should refresh the summaries: always the first time (`since_last`
/// is `None`), then once `since_last >= REFRESH_COST_FACTOR × last_cost`.
pub fn summaries_due(since_last: Option<Duration>, last_cost: Duration) -> bool {
    since_last.is_none_or(|since| since >= last_cost * REFRESH_COST_FACTOR)
}

/// Distinguishes temp files of concurrent writes within one process.
static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// The report dir of one run.
pub struct ReportWriter {
    dir: PathBuf,
    /// When the summaries were last refreshed and how long that took, to pace refreshes
    /// (module doc). A mutex rather than `&mut self` so the writer can be shared with a
    /// blocking task.
    pacing: Mutex<Pacing>,
}

#[derive(Debug, Default)]
struct Pacing {
    last_refresh: Option<Instant>,
    last_cost: Duration,
}

impl ReportWriter {
    /// Creates the dir (and `sites/`, `artifacts/`) and proves it writable.
    pub fn create(dir: &Path) -> Result<ReportWriter, ReportError> {
        for path in [dir.to_path_buf(), dir.join("sites"), dir.join("artifacts")] {
            create_private_dir(&path)?;
        }
        for probe_dir in [dir.to_path_buf(), dir.join("sites")] {
            let probe = probe_dir.join(format!(".cmafleet-probe-{}", std::process::id()));
            write_atomic(&probe, b"cmafleet can write here\n")?;
            fs::remove_file(&probe).map_err(|error| ReportError::at(&probe, error))?;
        }
        Ok(ReportWriter {
            dir: dir.to_path_buf(),
            pacing: Mutex::new(Pacing::default()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the sites' artifacts go: `<dir>/artifacts/`, each named after its site
    /// (`<site>@<task>-<name>`): one folder for the fleet rather than one a site, so a large
    /// fleet does not make thousands of directories.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.dir.join("artifacts")
    }

    /// Flushes everything written on the report dir's file system to disk (`syncfs`): the
    /// artifacts the downloads saved without an fsync each, made durable all at once before
    /// a site report that names them is committed to the state store.
    pub fn sync_to_disk(&self) -> Result<(), ReportError> {
        let dir = File::open(&self.dir).map_err(|err| ReportError::at(&self.dir, err))?;
        sync_file_system(&dir).map_err(|err| ReportError::at(&self.dir, err))
    }

    /// `sites/<site>.json`, atomically, as soon as the site finishes (not fsync'd: the state
    /// store holds the same report durably; module doc).
    pub fn write_site(&self, site: &SiteReport) -> Result<(), ReportError> {
        replace_file(&self.site_path(site)?, &json::site(site), Sync::No)
    }

    /// Whether a summary refresh is due (see [`REFRESH_COST_FACTOR`]; `write_all` catches up
    /// at the end). The caller builds the run report only
    /// when it is.
    pub fn summaries_are_due(&self) -> bool {
        let pacing = self
            .pacing
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        summaries_due(pacing.last_refresh.map(|at| at.elapsed()), pacing.last_cost)
    }

    /// `summary.csv` and `summary.md`, now.
    pub fn write_summaries(&self, run: &RunReport) -> Result<(), ReportError> {
        let started = Instant::now();
        write_atomic(&self.dir.join("summary.csv"), &csv::render(run))?;
        write_atomic(
            &self.dir.join("summary.md"),
            markdown::render(run).as_bytes(),
        )?;
        let mut pacing = self
            .pacing
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        pacing.last_refresh = Some(Instant::now());
        pacing.last_cost = started.elapsed();
        Ok(())
    }

    /// Every file, rewritten whole; `previous` feeds `changes.md`. `current[i]` says that
    /// this writer wrote the JSON of `run.sites[i]` ([`ReportWriter::write_site`]) with the
    /// report as it is now: that file is left as it is, not rendered and compared again (a
    /// fleet run's finished sites; missing entries count as not current).
    pub fn write_all(
        &self,
        run: &RunReport,
        previous: Option<&RunReport>,
        current: &[bool],
    ) -> Result<(), ReportError> {
        // One dir sync for all the sites' renames rather than one each: half the fsyncs of
        // a fresh re-render (`cmafleet report`) of a large fleet.
        for (index, site) in run.sites.iter().enumerate() {
            if current.get(index).copied().unwrap_or(false) {
                continue;
            }
            let path = self.site_path(site)?;
            write_atomic_unless_same(&path, &json::site(site))?;
        }
        sync_dir(&self.dir.join("sites"))?;
        self.write_summaries(run)?;
        write_atomic(
            &self.dir.join("changes.md"),
            changes::render(previous, run).as_bytes(),
        )?;
        write_atomic(&self.dir.join("report.html"), html::render(run).as_bytes())?;
        write_atomic(&self.dir.join("run.json"), &json::run(&run.run))
    }

    fn site_path(&self, site: &SiteReport) -> Result<PathBuf, ReportError> {
        let path = self.dir.join("sites").join(format!("{}.json", site.site));
        check_file_name(&site.site, &path)?;
        Ok(path)
    }
}

/// Refuses a site name that is not a plain file name. The inventory already restricts names
/// to `[a-z0-9][a-z0-9._-]*`; this keeps a bad name from ever escaping the report dir.
fn check_file_name(name: &str, path: &Path) -> Result<(), ReportError> {
    let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0']);
    if plain {
        Ok(())
    } else {
        Err(ReportError::at(
            path,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("site name {name:?} is not a plain file name"),
            ),
        ))
    }
}

/// Creates a directory and its missing parents with mode 0700 (an existing one is tightened).
pub fn create_private_dir(path: &Path) -> Result<(), ReportError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE)))
        .map_err(|error| ReportError::at(path, error))
}

/// [`write_atomic`] without the dir sync (the caller syncs the dir once for a batch), and
/// nothing at all when `path` already holds exactly `bytes` (then only its mode is set). At the end of a run most sites' JSON was written when they finished; comparing is
/// far cheaper than thousands of fsyncs, which matters when a signal asks for a quick exit.
fn write_atomic_unless_same(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    match fs::read(path) {
        Ok(existing) if existing == bytes => {
            fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))
                .map_err(|error| ReportError::at(path, error))
        }
        _ => replace_file(path, bytes, Sync::Yes),
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a part,
/// and the new one survives a crash once this returns: a temp file in the same dir (0600),
/// fsync, rename over `path`, fsync the dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    replace_file(path, bytes, Sync::Yes)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Whether [`replace_file`] fsyncs the new file before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    Yes,
    No,
}

/// `syncfs(2)` of the file system holding `file`: one flush for every file written there.
#[cfg(target_os = "linux")]
fn sync_file_system(file: &File) -> io::Result<()> {
    nix::unistd::syncfs(file).map_err(io::Error::from)
}

/// Where there is no `syncfs`, `sync(2)`: every file system (slower, never less safe).
#[cfg(not(target_os = "linux"))]
fn sync_file_system(_file: &File) -> io::Result<()> {
    nix::unistd::sync();
    Ok(())
}

/// The temp-file, fsync and rename part of [`write_atomic`].
fn replace_file(path: &Path, bytes: &[u8], sync: Sync) -> Result<(), ReportError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&temp)?;
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        file.write_all(bytes)?;
        if sync == Sync::Yes {
            file.sync_all()?;
        }
        fs::rename(&temp, path)
    })();
    written.map_err(|error| {
        let _ = fs::remove_file(&temp);
        ReportError::at(path, error)
    })
}

/// Makes the renames done in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), ReportError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| ReportError::at(dir, error))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;
    use crate::report::fixtures::fleet;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    /// Every file under `dir`, relative, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(next) = stack.pop() {
            for entry in fs::read_dir(&next).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    found.push(path.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn create_makes_private_dirs_and_leaves_no_probe() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state/reports/run-1");
        let writer = ReportWriter::create(&dir).unwrap();
        assert_eq!(writer.dir(), dir);
        for path in [
            root.path().join("state"),
            root.path().join("state/reports"),
            dir.clone(),
            dir.join("sites"),
            dir.join("artifacts"),
        ] {
            assert_eq!(mode(&path), 0o700, "{}", path.display());
        }
        assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    }

    #[test]
    fn create_tightens_an_existing_report_dir() {
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        ReportWriter::create(root.path()).unwrap();
        assert_eq!(mode(root.path()), 0o700);
    }

    #[test]
    fn an_unwritable_report_dir_is_a_report_error() {
        // Root can write anywhere a mode allows, so use places no mode makes writable:
        // below a regular file, and inside /proc.
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("not-a-dir");
        fs::write(&file, b"").unwrap();
        let error = ReportWriter::create(&file.join("reports")).err().unwrap();
        assert!(error.path.contains("not-a-dir"), "{error}");
        assert!(
            error.to_string().starts_with("cannot write report "),
            "{error}"
        );

        let error = ReportWriter::create(Path::new("/proc/self/cmafleet-reports"))
            .err()
            .unwrap();
        assert!(
            error.path.starts_with("/proc/self/cmafleet-reports"),
            "{error}"
        );
    }

    #[test]
    fn write_all_writes_every_file_0600_and_no_temp_file_stays() {
        let root = tempfile::tempdir().unwrap();
        let writer = ReportWriter::create(root.path()).unwrap();
        let fleet = fleet();
        writer.write_all(&fleet, None, &[]).unwrap();
        let mut expected: Vec<String> = [
            "changes.md",
            "report.html",
            "run.json",
            "summary.csv",
            "summary.md",
        ]
        .iter()
        .map(|name| name.to_string())
        .chain(
            fleet
                .sites
                .iter()
                .map(|site| format!("sites/{}.json", site.site)),
        )
        .collect();
        expected.sort();
        assert_eq!(files(root.path()), expected);
        for file in &expected {
            assert_eq!(mode(&root.path().join(file)), 0o600, "{file}");
        }
        let html = fs::read_to_string(root.path().join("report.html")).unwrap();
        assert_eq!(html, crate::report::html::render(&fleet));
        let changes = fs::read_to_string(root.path().join("changes.md")).unwrap();
        assert!(changes.contains("is the first migrate run"), "{changes}");
    }

    #[test]
    fn write_all_rewrites_only_the_site_files_that_changed() {
        let root = tempfile::tempdir().unwrap();
        let writer = ReportWriter::create(root.path()).unwrap();
        let mut fleet = fleet();
        for site in &fleet.sites {
            writer.write_site(site).unwrap();
        }
        let inode = |name: &str| {
            fs::metadata(root.path().join("sites").join(name))
                .unwrap()
                .ino()
        };
        let (same, changed) = (inode("acme-jira.json"), inode("umbrella-jira.json"));
        fs::set_permissions(
            root.path().join("sites/acme-jira.json"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        fleet.sites[5].message = "resumed and finished".to_owned();
        writer.write_all(&fleet, None, &[]).unwrap();
        assert_eq!(
            inode("acme-jira.json"),
            same,
            "identical content is not rewritten"
        );
        assert_eq!(mode(&root.path().join("sites/acme-jira.json")), 0o600);
        assert_ne!(
            inode("umbrella-jira.json"),
            changed,
            "changed content is replaced"
        );
        let umbrella = fs::read_to_string(root.path().join("sites/umbrella-jira.json")).unwrap();
        assert!(umbrella.contains("resumed and finished"));
    }

    #[test]
    fn write_all_leaves_the_site_files_it_is_told_are_current() {
        let root = tempfile::tempdir().unwrap();
        let writer = ReportWriter::create(root.path()).unwrap();
        let mut fleet = fleet();
        for site in &fleet.sites {
            writer.write_site(site).unwrap();
        }
        let names: Vec<String> = fleet.sites.iter().map(|site| site.site.clone()).collect();
        let written = |index: usize| {
            fs::read_to_string(
                root.path()
                    .join("sites")
                    .join(format!("{}.json", names[index])),
            )
            .unwrap()
        };
        let before = written(0);
        fleet.sites[0].message = "changed after it was written".to_owned();
        fleet.sites[1].message = "changed after it was written".to_owned();
        let mut current = vec![false; fleet.sites.len()];
        current[0] = true;
        writer.write_all(&fleet, None, &current).unwrap();
        assert_eq!(written(0), before, "a current file is not rendered again");
        assert!(written(1).contains("changed after it was written"));
    }

    #[test]
    fn rewriting_replaces_files_whole() {
        let root = tempfile::tempdir().unwrap();
        let writer = ReportWriter::create(root.path()).unwrap();
        let path = root.path().join("summary.md");
        write_atomic(&path, &vec![b'x'; 100_000]).unwrap();
        write_atomic(&path, b"short\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"short\n");
        assert_eq!(files(writer.dir()), ["summary.md"]);
    }

    #[test]
    fn a_failed_atomic_write_leaves_the_old_file_and_no_temp_file() {
        let root = tempfile::tempdir().unwrap();
        // A rename cannot replace a non-empty directory: the write fails after the temp
        // file was written.
        let target = root.path().join("summary.md");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("keep"), b"old").unwrap();
        let error = write_atomic(&target, b"new").unwrap_err();
        assert!(error.path.ends_with("summary.md"), "{error}");
        assert_eq!(files(root.path()), ["summary.md/keep"]);
    }

    #[test]
    fn write_site_writes_the_site_now_and_summaries_when_due() {
        let root = tempfile::tempdir().unwrap();
        let writer = ReportWriter::create(root.path()).unwrap();
        let mut fleet = fleet();
        writer.write_site(&fleet.sites[0]).unwrap();
        assert!(
            writer.summaries_are_due(),
            "the first refresh is due at once"
        );
        writer.write_summaries(&fleet).unwrap();
        let site: SiteReport =
            serde_json::from_slice(&fs::read(root.path().join("sites/acme-jira.json")).unwrap())
                .unwrap();
        assert_eq!(site, fleet.sites[0]);
        let csv = fs::read_to_string(root.path().join("summary.csv")).unwrap();
        assert_eq!(
            csv.lines().count(),
            1 + fleet.sites.len(),
            "first call refreshes"
        );
        assert!(root.path().join("summary.md").is_file());

        // Right after a refresh the next one is not due yet: the site JSON still is written.
        writer.pacing.lock().unwrap().last_cost = Duration::from_secs(3_600);
        fleet.sites[1].message = "changed after the refresh".to_owned();
        writer.write_site(&fleet.sites[1]).unwrap();
        let site = fs::read_to_string(root.path().join("sites/acme-wiki.json")).unwrap();
        assert!(site.contains("changed after the refresh"));
        assert!(!writer.summaries_are_due(), "refresh was not due");

        writer.write_summaries(&fleet).unwrap();
        let csv = fs::read_to_string(root.path().join("summary.csv")).unwrap();
        assert!(csv.contains("changed after the refresh"), "forced refresh");
    }

    #[test]
    fn summaries_are_due_first_and_then_after_two_hundred_times_their_cost() {
        let cost = Duration::from_millis(50);
        assert!(summaries_due(None, cost));
        assert!(!summaries_due(Some(Duration::from_millis(9999)), cost));
        assert!(summaries_due(Some(Duration::from_millis(10_000)), cost));
        assert!(summaries_due(Some(Duration::ZERO), Duration::ZERO));
    }

    #[test]
    fn syncing_to_disk_names_a_report_dir_that_is_gone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("reports");
        let writer = ReportWriter::create(&dir).unwrap();
        writer.sync_to_disk().unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let error = writer.sync_to_disk().unwrap_err();
        assert_eq!(error.path, dir.display().to_string());
        assert_eq!(error.source.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn site_names_never_escape_the_report_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("reports");
        let writer = ReportWriter::create(&dir).unwrap();
        let mut fleet = fleet();
        for bad in ["../escape", ".hidden", "a/b", ""] {
            fleet.sites[0].site = bad.to_owned();
            let error = writer.write_site(&fleet.sites[0]).unwrap_err();
            assert_eq!(error.source.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
        assert_eq!(files(root.path()), Vec::<String>::new());
    }
}

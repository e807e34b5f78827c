//! Puts reports on disk: each file written atomically (temp, then rename) with mode 0600 in a
//! 0700 dir; a site's JSON as soon as it finishes, everything rewritten whole at the end.
//!
//! SKELETON: signatures fixed; bodies to be written (issue 4).

use std::path::{Path, PathBuf};

use super::model::{RunReport, SiteReport};

#[derive(Debug, thiserror::Error)]
#[error("cannot write report {path}: {source}")]
pub struct ReportError {
    pub path: String,
    pub source: std::io::Error,
}

/// The report dir of one run.
pub struct ReportWriter {
    dir: PathBuf,
}

impl ReportWriter {
    /// Creates the dir (and `sites/`, `artifacts/`) and proves it writable.
    pub fn create(dir: &Path) -> Result<ReportWriter, ReportError> {
        let _ = dir;
        todo!()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a site's artifacts go: `<dir>/artifacts/<site>/`.
    pub fn artifact_dir(&self, site: &str) -> PathBuf {
        self.dir.join("artifacts").join(site)
    }

    /// `sites/<site>.json`, as soon as the site finishes.
    pub fn write_site(&self, site: &SiteReport) -> Result<(), ReportError> {
        let _ = site;
        todo!()
    }

    /// `summary.csv` and `summary.md` refreshed (the coordinator calls it at most once a second).
    pub fn write_summaries(&self, run: &RunReport) -> Result<(), ReportError> {
        let _ = run;
        todo!()
    }

    /// Every file, rewritten whole; `previous` feeds `changes.md`.
    pub fn write_all(
        &self,
        run: &RunReport,
        previous: Option<&RunReport>,
    ) -> Result<(), ReportError> {
        let _ = (run, previous);
        todo!()
    }
}

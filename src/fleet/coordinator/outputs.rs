//! What the coordinator shows and writes from the run's state: each site's file when it
//! concludes, the live view (terminal, progress lines, `/status.json`), the summaries while
//! the run goes, and at its end every report, the run's record and its exit code.

use std::collections::BTreeMap;

use chrono::Utc;

use super::{Coordinator, RunResult};
use crate::exit;
use crate::fleet::ledger::Progress;
use crate::fleet::shutdown::CancelReason;
use crate::metrics::status::RunStatus;
use crate::vocab::Outcome;

impl Coordinator {
    pub(super) fn write_site(&mut self, index: usize) {
        match self.writer.write_site(&self.ledger.entries[index].report) {
            // A concluded site's report does not change any more.
            Ok(()) => self.site_file_current[index] = true,
            Err(error) => tracing::error!("{error}"),
        }
    }

    /// Refreshes counts, the live status and (when something finished) the summaries.
    pub(super) fn refresh(&mut self) {
        self.commit();
        self.ledger.publish_counts();
        self.publish_view();
        if self.dirty && self.writer.summaries_are_due() {
            self.dirty = false;
            self.run.surprises = self.launcher.surprises();
            // Lent, not copied: a large fleet's reports would double the run's memory.
            let report = self.ledger.lend_run_report(&self.run);
            if let Err(error) = self.writer.write_summaries(&report) {
                tracing::error!("{error}");
            }
            self.ledger.restore_reports(report.sites);
        }
    }

    /// The live status, to the terminal view or progress lines and the status page.
    fn publish_view(&mut self) {
        let view = self.ledger.status(&self.run, self.started);
        self.show(view);
    }

    fn show(&mut self, view: RunStatus) {
        (self.on_progress)(&view);
        *self
            .status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = view;
    }

    /// Says how sites ended, each in its own span (its `site` and last `stage`): after the
    /// live view stopped showing them as running, so no line and view disagree.
    pub(super) fn say_conclusions(&mut self, sites: &[usize]) {
        if sites.is_empty() {
            return;
        }
        self.publish_view();
        for &index in sites {
            // The coordinator's copy of the site's span goes with this line (its pipeline has
            // ended): a span kept open keeps its fields in the subscriber, and a 10,000-site
            // run would hold them all to the end.
            let span = self.spans[index].take();
            let report = &self.ledger.entries[index].report;
            let Some(outcome) = report.outcome.filter(|_| self.log_conclusions) else {
                continue;
            };
            let span = span.unwrap_or_else(tracing::Span::none);
            span.in_scope(|| {
                if outcome.is_ok() {
                    tracing::info!(outcome = outcome.as_str(), "{}", report.message);
                } else {
                    tracing::warn!(outcome = outcome.as_str(), "{}", report.message);
                }
            });
        }
    }

    /// The run's end: sites never started concluded, every report written, the run's record
    /// closed with the exit code the process ends with.
    pub(super) fn finish(mut self) -> RunResult {
        let reason = self.shutdown.reason();
        for index in 0..self.ledger.entries.len() {
            if self.ledger.entries[index].progress != Progress::Done {
                let message = reason.map_or("not started".to_owned(), |reason| {
                    format!("not started: {}", reason.describe())
                });
                self.conclude_unstarted(index, Outcome::Skipped, message);
            }
        }
        let (counts, _, _) = self.ledger.counts();
        let mut exit_code = self.exit_code(reason, &counts);
        if let Some(reason) = reason {
            let detached = counts.get(&Outcome::Detached).copied().unwrap_or(0);
            self.run.notes.push(format!(
                "{}: {detached} site(s) left detached; the next run resumes them",
                reason.describe()
            ));
        }
        self.run.counts = counts;
        self.run.surprises = self.launcher.surprises();
        self.run.finished_at = Some(Utc::now());
        self.run.exit_code = Some(i32::from(exit_code));
        let previous = self
            .store
            .previous_run(self.run.mode, &self.run.run_id)
            .unwrap_or_else(|error| {
                tracing::warn!("cannot read the previous run for changes.md: {error}");
                None
            });
        self.ledger.publish_counts();
        let mut view = self.ledger.status(&self.run, self.started);
        view.finished = true;
        // The run ends here: its reports move to the result instead of being copied (a copy
        // doubles the memory of a large fleet), so counts and the live view come first.
        let mut report = self.ledger.lend_run_report(&self.run);
        // Reports first: a run whose reports cannot be written is not a success (exit 73),
        // and the state store records the exit code the process really ends with.
        if let Err(error) =
            self.writer
                .write_all(&report, previous.as_ref(), &self.site_file_current)
        {
            tracing::error!("{error}; exiting with {}", exit::CANT_CREATE);
            exit_code = exit::CANT_CREATE;
            self.run.exit_code = Some(i32::from(exit_code));
            self.run
                .notes
                .push(format!("the reports could not be written: {error}"));
            report.run = self.run.clone();
        }
        if let Err(error) = self.store.transaction(|tx| tx.finish_run(&self.run)) {
            tracing::error!("cannot record the run's end: {error}");
        }
        if exit_code == exit::OK {
            self.ledger
                .metrics()
                .set_last_success(Utc::now().timestamp_millis() as f64 / 1000.0);
        }
        self.show(view);
        RunResult {
            report,
            exit_code,
            report_dir: self.writer.dir().to_owned(),
        }
    }

    /// The exit code of a run that ended for `reason` (if it stopped early) with `counts`.
    fn exit_code(&self, reason: Option<CancelReason>, counts: &BTreeMap<Outcome, usize>) -> u8 {
        let any = |outcomes: &[Outcome]| {
            outcomes
                .iter()
                .any(|outcome| counts.get(outcome).copied().unwrap_or(0) > 0)
        };
        if self.store_failure.is_some() {
            exit::CANT_CREATE
        } else if let Some(signal) = reason.filter(|reason| reason.is_signal()) {
            signal.exit_code()
        } else if any(&[Outcome::Failed, Outcome::Blocked]) {
            exit::SITES_FAILED
        } else if any(&[Outcome::Detached]) {
            exit::DETACHED
        } else {
            exit::OK
        }
    }
}

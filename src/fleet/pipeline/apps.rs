//! Following up a migration whose apps ran on: a site whose core migrated while apps (the
//! scopes after the core) still migrated is migrated but not done. Each later run reads that
//! Migrate task's status once — creating nothing — until the apps end, then records how they
//! ended: an app failure makes the site `warnings`, in the service's words.

use super::verdict::Level;
use super::*;

impl Pipeline {
    /// Reads the apps of `task` (a Migrate task an earlier run concluded while they ran):
    /// `Some` conclusion when this site's run ends here — the apps ended (migrate mode), or
    /// still run (any mode: no other task starts on the server meanwhile); `None` when a check
    /// run may go on with its Check task.
    pub(super) async fn follow_up_apps(&mut self, task: TaskRecord) -> Step<Option<Conclusion>> {
        let Some(task) = task::recorded(task) else {
            return Ok(None);
        };
        let task_id = task.task_id.clone();
        self.stage(Stage::Apps).await?;
        self.events.send(EventKind::FollowUp(task.clone())).await?;
        let query = watch::level_query(Level::Migrate, true);
        let node = match self
            .plan
            .cloud
            .task_status(&task.job_id, &task_id, &query, &self.stop)
            .await
        {
            Ok(node) => verdict::level(&node, Level::Migrate).clone(),
            Err(error) if error.kind == ErrorKind::Cancelled => return Err(Halt::Api(error)),
            Err(error) => {
                // The site stays migrated with its apps pending; the next run reads again.
                self.events
                    .send(EventKind::Error(self.error_record(&error)))
                    .await?;
                return Ok(Some(self.migrated(format!(
                    "the apps of task {task_id} could not be read this time ({}); the next run reads them again",
                    error.detail()
                ))));
            }
        };
        self.events
            .send(EventKind::Scopes(verdict::scope_results(&node)))
            .await?;
        let data = verdict::data_verdict(&node);
        self.events
            .send(EventKind::AfterCore {
                intent_id: task.intent_id,
                running: data.after_core.clone(),
            })
            .await?;
        if !data.after_core.is_empty() {
            let running = data.after_core.join(", ");
            return Ok(Some(match self.policy.mode {
                Mode::Migrate => self.migrated(format!(
                    "still running after core: {running} (the next run reads them again)"
                )),
                Mode::Check => Conclusion::new(
                    Outcome::Skipped,
                    format!(
                        "not checked: its migrate task {task_id} still migrates {running} after the core (no other task starts on the server meanwhile)"
                    ),
                ),
            }));
        }
        if self.policy.mode == Mode::Check {
            if !data.failed.is_empty() || !data.unknown.is_empty() {
                self.notes.push(format!(
                    "the apps of migrate task {task_id} ended: {}",
                    apps_ending(&data)
                ));
            }
            return Ok(None);
        }
        Ok(Some(if data.failed.is_empty() && data.unknown.is_empty() {
            self.migrated(format!(
                "the apps of task {task_id} finished after the core"
            ))
        } else {
            Conclusion::migrated(
                Outcome::Warnings,
                format!("migrated; after the core, {}", apps_ending(&data)),
            )
        }))
    }
}

impl Pipeline {
    /// A follow-up's conclusion when the apps add no warning: the site stays as its migration
    /// concluded (a migration that warned stays `warnings`), `what` said of its apps.
    fn migrated(&self, what: String) -> Conclusion {
        match self.plan.state.migrated_outcome {
            Some(Outcome::Warnings) => Conclusion::migrated(
                Outcome::Warnings,
                format!("migrated with warnings (see the run that migrated it); {what}"),
            ),
            _ => Conclusion::migrated(Outcome::Succeeded, format!("migrated; {what}")),
        }
    }
}

/// How the scopes after the core ended, in the service's words.
fn apps_ending(data: &verdict::DataVerdict) -> String {
    let failed = data
        .failed
        .iter()
        .map(|(scope, message)| format!("{scope} FAILED: {message}"));
    let unknown = data
        .unknown
        .iter()
        .map(|(scope, outcome)| format!("{scope} ended {outcome}"));
    failed.chain(unknown).collect::<Vec<_>>().join("; ")
}

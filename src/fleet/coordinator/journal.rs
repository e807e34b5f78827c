//! What each pipeline event writes to the state store, inside the coordinator's batch
//! transaction (the coordinator owns batching and acknowledgements; this owns the mapping).

use crate::fleet::events::EventKind;
use crate::fleet::ledger::SiteEntry;
use crate::state::{AttachRecord, JobRecord, StateError, Tx};

/// Writes one event of `entry`'s site; returns the id the store assigned (a task intent's),
/// if any. Events the store does not keep (stages, progress, checks before the end) write
/// nothing: the site's report carries them when it is recorded.
pub(super) fn record(
    tx: &Tx<'_>,
    run_id: &str,
    entry: &SiteEntry,
    kind: &EventKind,
) -> Result<Option<i64>, StateError> {
    let site = entry.site.name.as_str();
    let now = tx.now();
    match kind {
        EventKind::JobIntent => tx.record_job_intent(site, now)?,
        EventKind::JobIntentWithdrawn => tx.withdraw_job_intent(site)?,
        // A reused job is recorded again only to clear a job intent an
        // interrupted run left (its note was made; it must not repeat forever).
        EventKind::Job {
            job_id,
            definition_hash,
            created_at,
            reused,
        } if !reused || entry.state.job_intent_at.is_some() => {
            let job = JobRecord {
                job_id: job_id.clone(),
                definition_hash: definition_hash.clone(),
                created_at: *created_at,
            };
            tx.record_job(site, &job)?
        }
        EventKind::Attached {
            cloud_url,
            expires_at,
        } => {
            let attach = AttachRecord {
                cloud_url: cloud_url.clone(),
                attached_at: now,
                expires_at: *expires_at,
            };
            tx.record_attach(site, &attach)?
        }
        EventKind::TaskIntent { kind, job_id } => {
            return tx
                .record_task_intent(site, run_id, job_id, kind, now)
                .map(Some);
        }
        EventKind::TaskCreated { task, adopted } => {
            tx.record_task_id(task.intent_id, &task.task_id, task.created_at, *adopted)?
        }
        EventKind::AfterCore { intent_id, running } => {
            tx.record_apps_pending(*intent_id, !running.is_empty())?
        }
        EventKind::TaskAbandoned { intent_id } => tx.abandon_task_intent(*intent_id)?,
        EventKind::TaskStatus {
            intent_id,
            status,
            outcome,
            tree,
        } => {
            let tree = serde_json::to_string(tree).ok();
            tx.record_task_status(
                *intent_id,
                status,
                outcome.as_deref(),
                None,
                tree.as_deref(),
            )?
        }
        // Closed (finished_at) only with the site's report: see record_task_judgement.
        EventKind::TaskFinished {
            intent_id,
            judgement,
        } => tx.record_task_judgement(*intent_id, *judgement)?,
        EventKind::Finished { migrated, .. } => {
            tx.record_site_report(run_id, &entry.report, *migrated)?
        }
        _ => {}
    }
    Ok(None)
}

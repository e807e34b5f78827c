//! Before a site's tasks: its job (reused while its definition is unchanged, else created
//! once, journalled before the POST), and the attach of the cloud site on the server
//! (connecting the two first with `--connect`).

use super::*;
use crate::cma::wire::JobDefinition;

/// Job creates whose answers may be lost before a site stops creating jobs: the API cannot
/// list jobs, so each lost answer may be an unused job (it moves no data); no third.
const MAX_LOST_JOB_CREATES: u32 = 2;

impl Pipeline {
    /// The site's job: the recorded one while the row's definition is unchanged, else a new
    /// one, journalled before the POST.
    pub(super) async fn ensure_job(&mut self) -> Step<String> {
        let definition = self.site().job_definition();
        let hash = definition_hash(&definition);
        if let Some(job) = self
            .plan
            .state
            .job
            .clone()
            .filter(|job| job.definition_hash == hash)
        {
            self.events
                .send(EventKind::Job {
                    job_id: job.job_id.clone(),
                    definition_hash: hash,
                    created_at: job.created_at,
                    reused: true,
                })
                .await?;
            return Ok(job.job_id);
        }
        // A job create an earlier run journalled but never saw answered counts as lost.
        let mut lost = 0;
        if let Some(at) = self.plan.state.job_intent_at {
            lost += 1;
            self.notes.push(format!(
                "a run interrupted at {} may have left one unused job for this site (the API cannot list jobs; an unused job moves no data)",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        self.check_draining("creating its job")?;
        self.stage(Stage::Job).await?;
        self.events.send_durable(EventKind::JobIntent).await?;
        failpoint::hit("job-intent");
        let job_id = self.create_job(&definition, lost).await?;
        failpoint::hit("job-created");
        self.events
            .send_durable(EventKind::Job {
                job_id: job_id.clone(),
                definition_hash: hash,
                created_at: Utc::now(),
                reused: false,
            })
            .await?;
        self.job_created_at = Some(Utc::now());
        Ok(job_id)
    }

    /// Sends the job create, again when its answer is lost: the API cannot list jobs, so
    /// each lost one may be an unused job (which moves no data), but never after
    /// [`MAX_LOST_JOB_CREATES`] were lost (`lost` counts an earlier run's too).
    async fn create_job(&mut self, definition: &JobDefinition, mut lost: u32) -> Step<String> {
        let created = loop {
            let stop = Arc::clone(&self.plan.tripwire);
            match self.plan.cloud.create_job(definition, &stop.stop).await {
                Err(error) if error.is_outcome_unknown() => {
                    lost += 1;
                    self.events
                        .send(EventKind::Error(self.error_record(&error)))
                        .await?;
                    if lost >= MAX_LOST_JOB_CREATES {
                        return Err(Halt::Outcome(
                            Outcome::Failed,
                            format!(
                                "no job created: the answers of {lost} job creates were lost ({}); each may have made an unused job (the API cannot list jobs; an unused job moves no data), so cmafleet will not create another in this run — check the network path to the API, then rerun",
                                error.detail()
                            ),
                        ));
                    }
                    self.check_draining("creating its job again")?;
                }
                // Stopped before the create was sent (waiting for its rate-limit turn, or to
                // retry a refused connection): no job can have come of it.
                Err(error) if error.kind == ErrorKind::Cancelled && lost == 0 => {
                    self.events
                        .send_durable(EventKind::JobIntentWithdrawn)
                        .await?;
                    return Err(Halt::Api(error));
                }
                other => break other.map_err(Halt::Api)?,
            }
        };
        if lost > 0 {
            self.notes.push(format!(
                "{lost} job create answer(s) were lost before this one came; each lost one may be an unused job, which moves no data"
            ));
        }
        Ok(created.job_id)
    }

    fn attach_is_fresh(&self) -> bool {
        let Some(attach) = &self.plan.state.attach else {
            return false;
        };
        let Some(expires_at) = attach.expires_at else {
            return false;
        };
        if attach.cloud_url != self.site().cloud_url_str() {
            return false;
        }
        // Safety margin: a tenth of the validity (2.4 h of the 24 h), so a task created now
        // is picked up well before the attach lapses.
        let margin = (expires_at - attach.attached_at).max(chrono::TimeDelta::zero()) / 10;
        Utc::now() + margin < expires_at
    }

    /// Attaches the cloud site on the server unless a fresh attach is known (`force`: the
    /// service said it is not attached); connects first when asked and needed.
    pub(super) async fn ensure_attached(&mut self, force: bool) -> Step<()> {
        if !force && self.attach_is_fresh() {
            return Ok(());
        }
        self.stage(Stage::Attach).await?;
        let cloud_url = self.site().cloud_url_str();
        let answer = match self.plan.server.attach(&cloud_url, &self.stop).await {
            Err(error)
                if error.kind == ErrorKind::NotConnected
                    && self.policy.connect
                    && !self.connected =>
            {
                self.connect(&cloud_url).await?;
                self.stage(Stage::Attach).await?;
                self.plan.server.attach(&cloud_url, &self.stop).await
            }
            other => other,
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) if error.kind == ErrorKind::NotConnected => {
                self.events
                    .send(EventKind::Error(self.error_record(&error)))
                    .await?;
                let hint = if self.policy.connect {
                    "connecting did not help"
                } else {
                    "connect it in the Migration Assistant, or run with --connect"
                };
                return Err(Halt::Outcome(
                    Outcome::Blocked,
                    format!(
                        "the cloud site is not connected to this server ({hint}): {}",
                        error.message
                    ),
                ));
            }
            Err(error) => return Err(Halt::Api(error)),
        };
        let expires_at = match &answer.expiry_time {
            Some(time) => match time.instant() {
                Some(at) => Some(at),
                None => {
                    tracing::warn!(site = %self.site().name, "attach expiry {time:?} not understood; attaching again before every task");
                    None
                }
            },
            None => None,
        };
        let record = crate::state::AttachRecord {
            cloud_url: cloud_url.clone(),
            attached_at: Utc::now(),
            expires_at,
        };
        self.plan.state.attach = Some(record);
        self.events
            .send(EventKind::Attached {
                cloud_url,
                expires_at,
            })
            .await?;
        Ok(())
    }

    async fn connect(&mut self, cloud_url: &str) -> Step<()> {
        self.connected = true;
        self.stage(Stage::Connect).await?;
        let token = self
            .plan
            .cloud
            .create_token(cloud_url, &self.plan.tripwire.stop)
            .await
            .map_err(Halt::Api)?;
        self.plan
            .server
            .save_token(cloud_url, &token.token, &self.stop)
            .await
            .map_err(Halt::Api)?;
        self.notes
            .push("connected the server to the cloud site (connect token saved)".into());
        Ok(())
    }
}

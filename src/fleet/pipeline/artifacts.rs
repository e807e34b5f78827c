//! Collecting the artifacts a finished task lists (reports, error logs) before they expire.

use super::*;

impl Pipeline {
    /// Downloads the artifacts listed on a finished task before they expire. Failures are
    /// recorded on the artifact; they never fail the site, and neither does a stop: the task
    /// is judged already, so the site keeps its verdict and the artifacts are left uncollected.
    pub(super) async fn collect_artifacts(&mut self, job_id: &str, task_id: &str) -> Step<()> {
        self.stage(Stage::Collect).await?;
        let task = match self.plan.cloud.get_task(job_id, task_id, &self.stop).await {
            Ok(task) => task,
            Err(error) if error.kind == ErrorKind::Cancelled => {
                self.notes.push(format!(
                    "the artifacts of task {task_id} were not collected: the run stopped first"
                ));
                return Ok(());
            }
            Err(error) => {
                self.events
                    .send(EventKind::Error(self.error_record(&error)))
                    .await?;
                return Ok(());
            }
        };
        let artifacts = task
            .results
            .map(|results| results.artifacts)
            .unwrap_or_default();
        for artifact in artifacts {
            let expire_at = artifact.expire_at.as_ref().and_then(|at| at.instant());
            let file_name = artifact_file_name(&self.site().name, task_id, &artifact.name);
            let mut record = ArtifactRecord {
                name: artifact.name.clone(),
                saved_as: None,
                bytes: None,
                expire_at,
                error: None,
            };
            // `expireAt` is informative only (its unit is undocumented): every artifact is
            // tried, and a failed one says when the list said it would expire.
            let dest = self.plan.artifacts_dir.join(&file_name);
            match self
                .plan
                .cloud
                .download_artifact(&artifact, &dest, &self.stop)
                .await
            {
                Ok(bytes) => {
                    record.saved_as = Some(format!("artifacts/{file_name}"));
                    record.bytes = Some(bytes);
                }
                Err(error) if error.kind == ErrorKind::Cancelled => {
                    record.error = Some("not collected: the run stopped first".into());
                }
                Err(error) => {
                    let expired = expire_at
                        .filter(|at| *at <= Utc::now())
                        .map(|at| {
                            format!(
                                " (listed as expiring at {})",
                                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                            )
                        })
                        .unwrap_or_default();
                    record.error = Some(format!("{error}{expired}"));
                }
            }
            self.events.send(EventKind::Artifact(record)).await?;
        }
        Ok(())
    }
}

/// A safe local file name for an artifact: `<site>@<task id>-<name>`, with anything but
/// letters, digits, `.`, `-` and `_` replaced in the task id and the name. `@` is not in a
/// site name's alphabet (`[a-z0-9._-]`), so `<site>@*` are exactly one site's artifacts.
fn artifact_file_name(site: &str, task_id: &str, name: &str) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let name = clean(name).trim_start_matches('.').to_owned();
    let name = if name.is_empty() {
        "artifact".to_owned()
    } else {
        name
    };
    format!("{site}@{}-{name}", clean(task_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_are_the_sites_and_cannot_escape_the_artifacts_dir() {
        assert_eq!(
            artifact_file_name("acme-jira", "t1", "../../etc/passwd"),
            "acme-jira@t1-_.._etc_passwd"
        );
        assert_eq!(
            artifact_file_name("acme-jira", "t1", "pre-migration report.csv"),
            "acme-jira@t1-pre-migration_report.csv"
        );
        assert_eq!(
            artifact_file_name("acme.eu", "t/1", ""),
            "acme.eu@t_1-artifact"
        );
    }
}

//! Runs and site reports: the sites' order and history, a run's report and its end, the
//! previous run of a mode, and a column that cannot be read.

use super::*;

#[test]
fn sites_are_sorted_with_their_own_tasks_oldest_first() {
    let (_dir, mut store) = with_run();
    store
        .transaction(|tx| {
            for (site, task) in [
                ("zeta", "z1"),
                ("acme", "a1"),
                ("beta", "b1"),
                ("acme", "a2"),
            ] {
                let kind = if task.ends_with('1') {
                    TaskKind::Check
                } else {
                    TaskKind::Migrate
                };
                let intent = tx.record_task_intent(site, "r1", "j", &kind, at(5))?;
                tx.record_task_id(intent, task, at(6), false)?;
            }
            tx.record_job("empty", &job("j9"))
        })
        .unwrap();
    let sites = store.sites().unwrap();
    let names: Vec<_> = sites.iter().map(|site| site.site.as_str()).collect();
    assert_eq!(names, ["acme", "beta", "empty", "zeta"]);
    let tasks = |index: usize| -> Vec<_> {
        sites[index]
            .tasks
            .iter()
            .map(|task| task.task_id.clone().unwrap())
            .collect()
    };
    assert_eq!(tasks(0), ["a1", "a2"]);
    assert_eq!(tasks(1), ["b1"]);
    assert!(tasks(2).is_empty());
    assert_eq!(tasks(3), ["z1"]);
    assert_eq!(store.site("acme").unwrap().unwrap(), sites[0]);
}

#[test]
fn a_site_report_updates_the_site_and_its_history() {
    let (_dir, mut store) = with_run();
    let mut blocked = report("acme", Mode::Migrate, Some(Outcome::Blocked));
    blocked.checks = vec![
        check("CHECK_A", "FAILED", Some(true)),
        check("CHECK_B", "SUCCESS", None),
    ];
    store
        .transaction(|tx| tx.record_site_report("r1", &blocked, false))
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert_eq!(site.last_mode, Some(Mode::Migrate));
    assert_eq!(site.last_outcome, Some(Outcome::Blocked));
    assert_eq!(site.migrated_at, None);
    let rows: Vec<(String, String, Option<bool>)> = store
        .conn
        .prepare("SELECT check_name, outcome, excludable FROM check_results ORDER BY check_name")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("CHECK_A".to_owned(), "FAILED".to_owned(), Some(true)),
            ("CHECK_B".to_owned(), "SUCCESS".to_owned(), None)
        ]
    );

    // The same site again in the same run: replaced, checks too.
    let mut succeeded = report("acme", Mode::Migrate, Some(Outcome::Succeeded));
    succeeded.checks = vec![check("CHECK_A", "SUCCESS", Some(true))];
    store
        .transaction(|tx| tx.record_site_report("r1", &succeeded, true))
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert_eq!(site.last_outcome, Some(Outcome::Succeeded));
    assert_eq!(site.migrated_at, Some(at(9)));
    let (checks, failed): (i64, i64) = store
        .conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE outcome = 'FAILED') FROM check_results",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((checks, failed), (1, 0));
    let report = store.run_report("r1").unwrap().unwrap();
    assert_eq!(report.sites, [succeeded]);

    // A later check run does not forget the migration.
    store
        .transaction(|tx| {
            tx.begin_run(&run_info("r2", Mode::Check, 30))?;
            tx.record_site_report("r2", &report_for_check(), false)
        })
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert_eq!(site.last_mode, Some(Mode::Check));
    assert_eq!(site.last_outcome, Some(Outcome::Warnings));
    assert_eq!(site.migrated_at, Some(at(9)));
}

#[test]
fn the_write_path_reuses_its_prepared_statements() {
    let (_dir, mut store) = with_run();
    for site in ["a", "b", "c", "d"] {
        store
            .transaction(|tx| tx.record_site_report("r1", &report(site, Mode::Check, None), false))
            .unwrap();
    }
    let statement = store
        .conn
        .prepare_cached(super::super::runs::UPSERT_SITE_RUN)
        .unwrap();
    assert_eq!(
        statement.get_status(rusqlite::StatementStatus::RePrepare),
        0,
        "numbering a site's report must not re-parse the statement each time"
    );
}

fn report_for_check() -> SiteReport {
    report("acme", Mode::Check, Some(Outcome::Warnings))
}

#[test]
fn a_running_site_report_has_no_outcome() {
    let (_dir, mut store) = with_run();
    store
        .transaction(|tx| {
            tx.record_site_report(
                "r1",
                &report("acme", Mode::Migrate, Some(Outcome::Failed)),
                false,
            )?;
            tx.record_site_report("r1", &report("acme", Mode::Migrate, None), false)
        })
        .unwrap();
    assert_eq!(store.site("acme").unwrap().unwrap().last_outcome, None);
}

#[test]
fn a_run_report_keeps_the_first_recorded_order_of_its_sites() {
    let (_dir, mut store) = with_run();
    store
        .transaction(|tx| {
            for site in ["zeta", "acme", "mid"] {
                tx.record_site_report("r1", &report(site, Mode::Migrate, None), false)?;
            }
            tx.record_site_report(
                "r1",
                &report("acme", Mode::Migrate, Some(Outcome::Succeeded)),
                true,
            )
        })
        .unwrap();
    let run = store.run_report("r1").unwrap().unwrap();
    let names: Vec<_> = run.sites.iter().map(|site| site.site.as_str()).collect();
    assert_eq!(names, ["zeta", "acme", "mid"]);
    assert_eq!(run.sites[1].outcome, Some(Outcome::Succeeded));
    assert_eq!(run.run, run_info("r1", Mode::Migrate, 0));
    assert_eq!(store.run_report("nope").unwrap(), None);
}

#[test]
fn finish_run_records_the_end_and_runs_are_newest_first() {
    let (_dir, mut store) = open();
    let mut done = finished(run_info("r1", Mode::Check, 0), 10);
    done.counts = BTreeMap::from([(Outcome::Succeeded, 3), (Outcome::Failed, 1)]);
    done.notes = vec!["interrupted".to_owned()];
    done.shard = Some("0/2".to_owned());
    done.exit_code = Some(1);
    store
        .transaction(|tx| {
            tx.begin_run(&run_info("r1", Mode::Check, 0))?;
            tx.finish_run(&done)?;
            tx.begin_run(&run_info("r2", Mode::Migrate, 20))
        })
        .unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs, [run_info("r2", Mode::Migrate, 20), done.clone()]);
    assert_eq!(store.run("r1").unwrap(), Some(done));
    assert_eq!(store.latest_run().unwrap().unwrap().run_id, "r2");
    let error = store
        .transaction(|tx| tx.begin_run(&run_info("r1", Mode::Check, 40)))
        .unwrap_err();
    assert!(
        matches!(error, StateError::Sqlite { .. }),
        "run ids are unique"
    );
}

#[test]
fn previous_run_is_the_newest_finished_run_of_the_mode_started_before() {
    let (_dir, mut store) = open();
    store
        .transaction(|tx| {
            tx.begin_run(&finished(run_info("c1", Mode::Check, 0), 5))?;
            tx.begin_run(&finished(run_info("c2", Mode::Check, 10), 15))?;
            tx.begin_run(&finished(run_info("m1", Mode::Migrate, 20), 25))?;
            tx.begin_run(&run_info("c3-crashed", Mode::Check, 30))?;
            tx.begin_run(&run_info("c4", Mode::Check, 40))?;
            tx.record_site_report(
                "c2",
                &report("acme", Mode::Check, Some(Outcome::Warnings)),
                false,
            )
        })
        .unwrap();
    let previous = |mode, run| {
        store
            .previous_run(mode, run)
            .unwrap()
            .map(|report| report.run.run_id)
    };
    assert_eq!(previous(Mode::Check, "c4").as_deref(), Some("c2"));
    assert_eq!(previous(Mode::Check, "c2").as_deref(), Some("c1"));
    assert_eq!(previous(Mode::Check, "c1"), None);
    assert_eq!(previous(Mode::Migrate, "c4").as_deref(), Some("m1"));
    assert_eq!(previous(Mode::Migrate, "m1"), None);
    assert_eq!(previous(Mode::Check, "not-begun").as_deref(), Some("c2"));
    let report = store.previous_run(Mode::Check, "c4").unwrap().unwrap();
    assert_eq!(report.sites.len(), 1);
}

#[test]
fn runs_started_in_the_same_instant_keep_their_begin_order() {
    let (_dir, mut store) = open();
    store
        .transaction(|tx| {
            tx.begin_run(&finished(run_info("b", Mode::Check, 0), 1))?;
            tx.begin_run(&finished(run_info("a", Mode::Check, 0), 1))
        })
        .unwrap();
    let ids: Vec<_> = store
        .runs()
        .unwrap()
        .into_iter()
        .map(|run| run.run_id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let previous = store.previous_run(Mode::Check, "a").unwrap().unwrap();
    assert_eq!(previous.run.run_id, "b");
    assert_eq!(store.previous_run(Mode::Check, "b").unwrap(), None);
}

#[test]
fn a_corrupt_column_is_reported_with_its_name() {
    let (dir, mut store) = open();
    store
        .transaction(|tx| tx.record_job("acme", &job("j1")))
        .unwrap();
    Connection::open(dir.path().join("state").join(DB_FILE))
        .unwrap()
        .execute("UPDATE sites SET job_created_at = 'last tuesday'", [])
        .unwrap();
    let error = store.site("acme").unwrap_err();
    assert!(matches!(error, StateError::Corrupt(_)), "{error:?}");
    assert!(error.to_string().contains("job_created_at"), "{error}");
}

//! The task journal: intents, ids, adoption, statuses and judgements, and which tasks a
//! site's report closes.

use super::*;

#[test]
fn a_task_goes_from_intent_to_id_to_finished() {
    let (_dir, mut store) = with_run();
    let intent = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(5)))
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(task.intent_id, intent);
    assert_eq!(task.kind, TaskKind::Migrate);
    assert_eq!((task.run_id.as_str(), task.job_id.as_str()), ("r1", "j1"));
    assert_eq!(task.intent_at, at(5));
    assert!(task.needs_reconcile() && !task.is_in_flight());

    store
        .transaction(|tx| tx.record_task_id(intent, "t1", at(6), false))
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(task.task_id.as_deref(), Some("t1"));
    assert_eq!(task.created_at, Some(at(6)));
    assert!(!task.adopted && task.is_in_flight() && !task.needs_reconcile());

    store
        .transaction(|tx| {
            tx.record_task_status(intent, "IN_PROGRESS", None, None, Some(r#"{"a":1}"#))
        })
        .unwrap();
    store
        .transaction(|tx| {
            tx.record_task_status(intent, "FINISHED", Some("SUCCESS"), Some(at(8)), None)
        })
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    let task = site.last_task(&TaskKind::Migrate).unwrap();
    assert_eq!(task.status.as_deref(), Some("FINISHED"));
    assert_eq!(task.service_outcome.as_deref(), Some("SUCCESS"));
    assert_eq!(
        task.judgement, None,
        "the service's word is not a judgement"
    );
    assert_eq!(task.finished_at, Some(at(8)));
    assert!(is_finished_status(task) && !task.is_in_flight());
    assert_eq!(
        task_tree(&store, intent).as_deref(),
        Some(r#"{"a":1}"#),
        "a status without a tree keeps the last tree"
    );
    assert_eq!(task_by_intent(&store, intent).unwrap().0, "acme");
    let kind: String = store
        .conn
        .query_row("SELECT kind FROM tasks", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kind, "migrate");
}

#[test]
fn an_adopted_task_is_marked_adopted() {
    let (_dir, mut store) = with_run();
    store
        .transaction(|tx| {
            let intent = tx.record_task_intent("acme", "r1", "j1", &TaskKind::Check, at(5))?;
            tx.record_task_id(intent, "t9", at(5), true)
        })
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert!(site.last_task(&TaskKind::Check).unwrap().adopted);
    assert_eq!(site.last_task(&TaskKind::Migrate), None);
}

#[test]
fn a_second_open_intent_of_the_same_kind_is_refused() {
    let (_dir, mut store) = with_run();
    let first = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(5)))
        .unwrap();
    let error = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(6)))
        .unwrap_err();
    assert!(matches!(error, StateError::Refused(_)), "{error:?}");
    assert!(
        error.to_string().contains(&format!("intent {first}")),
        "{error}"
    );
    // Another kind, or another site, is independent.
    store
        .transaction(|tx| {
            tx.record_task_intent("acme", "r1", "j1", &TaskKind::Check, at(6))?;
            tx.record_task_intent("beta", "r1", "j2", &TaskKind::Migrate, at(6))
        })
        .unwrap();
}

#[test]
fn an_abandoned_intent_is_skipped_and_a_new_one_may_follow() {
    let (_dir, mut store) = with_run();
    let first = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(5)))
        .unwrap();
    store
        .transaction(|tx| tx.abandon_task_intent(first))
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert!(site.tasks[0].abandoned && !site.tasks[0].needs_reconcile());
    assert_eq!(site.last_task(&TaskKind::Migrate), None);
    let second = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(7)))
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert_eq!(site.tasks.len(), 2);
    assert_eq!(
        site.last_task(&TaskKind::Migrate).unwrap().intent_id,
        second
    );
    let error = store
        .transaction(|tx| tx.record_task_id(first, "late", at(8), true))
        .unwrap_err();
    assert!(matches!(error, StateError::Refused(_)), "{error:?}");
}

#[test]
fn task_ids_are_never_overwritten_or_shared() {
    let (_dir, mut store) = with_run();
    let (one, two) = store
        .transaction(|tx| {
            let one = tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(5))?;
            let two = tx.record_task_intent("beta", "r1", "j2", &TaskKind::Migrate, at(5))?;
            tx.record_task_id(one, "t1", at(6), false)?;
            Ok((one, two))
        })
        .unwrap();
    store
        .transaction(|tx| tx.record_task_id(one, "t1", at(6), true))
        .expect("the same id again is harmless");
    for (intent, task) in [(one, "t2"), (two, "t1")] {
        let error = store
            .transaction(|tx| tx.record_task_id(intent, task, at(7), false))
            .unwrap_err();
        assert!(matches!(error, StateError::Refused(_)), "{error:?}");
    }
    let error = store
        .transaction(|tx| tx.abandon_task_intent(one))
        .unwrap_err();
    assert!(matches!(error, StateError::Refused(_)), "{error:?}");
    let error = store
        .transaction(|tx| tx.record_task_status(two, "FINISHED", None, None, None))
        .unwrap_err();
    assert!(matches!(error, StateError::Refused(_)), "{error:?}");
    let error = store
        .transaction(|tx| tx.record_task_id(999, "t3", at(7), false))
        .unwrap_err();
    assert!(matches!(error, StateError::UnknownIntent(999)), "{error:?}");
    assert_eq!(
        store.site("acme").unwrap().unwrap().tasks[0]
            .task_id
            .as_deref(),
        Some("t1")
    );
}

/// Journals a task of `kind` for `site` in run `r1` with id `task_id`; returns its intent id.
fn journal_task(store: &mut Store, site: &str, kind: TaskKind, task_id: &str) -> i64 {
    store
        .transaction(|tx| {
            let intent = tx.record_task_intent(site, "r1", "j1", &kind, at(5))?;
            tx.record_task_id(intent, task_id, at(5), false)?;
            Ok(intent)
        })
        .unwrap()
}

fn finished_task(kind: &str, task_id: &str, minute: u32) -> crate::report::model::TaskReport {
    crate::report::model::TaskReport {
        kind: kind.to_owned(),
        task_id: task_id.to_owned(),
        created_at: Some(at(5)),
        adopted: false,
        status: Some("FINISHED".to_owned()),
        outcome: Some("succeeded".to_owned()),
        finished_at: Some(at(minute)),
    }
}

#[test]
fn a_judged_task_stays_open_until_its_site_report_is_recorded() {
    let (_dir, mut store) = with_run();
    let intent = journal_task(&mut store, "acme", TaskKind::Migrate, "t1");
    store
        .transaction(|tx| tx.record_task_judgement(intent, Judgement::Failed))
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(task.status.as_deref(), Some("FINISHED"));
    assert_eq!(task.judgement, Some(Judgement::Failed));
    assert_eq!(task.finished_at, None);
    assert!(
        is_finished_status(&task) && task.is_in_flight(),
        "a kill now leaves it for the next run to adopt, not to create anew"
    );

    // Detached (e.g. a second signal while collecting artifacts): still open.
    let mut detached = report("acme", Mode::Migrate, Some(Outcome::Detached));
    detached.tasks.push(finished_task("migrate", "t1", 6));
    store
        .transaction(|tx| tx.record_site_report("r1", &detached, false))
        .unwrap();
    assert!(store.site("acme").unwrap().unwrap().tasks[0].is_in_flight());

    let mut failed = report("acme", Mode::Migrate, Some(Outcome::Failed));
    failed.tasks.push(finished_task("migrate", "t1", 7));
    store
        .transaction(|tx| tx.record_site_report("r1", &failed, false))
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(task.finished_at, Some(at(7)), "concluded with the report");
    assert!(!task.is_in_flight());
}

#[test]
fn a_judgement_needs_a_task_id() {
    let (_dir, mut store) = with_run();
    let intent = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Check, at(5)))
        .unwrap();
    let error = store
        .transaction(|tx| tx.record_task_judgement(intent, Judgement::Succeeded))
        .unwrap_err();
    assert!(matches!(error, StateError::Refused(_)), "{error:?}");
}

#[test]
fn concluding_a_site_closes_older_and_superseded_tasks_but_not_newer_ones() {
    let (_dir, mut store) = with_run();
    // A precheck, a Migrate task that failed as not attached, its successor, and a newer
    // Check task of a later check run still running; another site's task untouched.
    journal_task(&mut store, "acme", TaskKind::Check, "c1");
    let first = journal_task(&mut store, "acme", TaskKind::Migrate, "m1");
    store
        .transaction(|tx| tx.record_task_judgement(first, Judgement::Failed))
        .unwrap();
    journal_task(&mut store, "acme", TaskKind::Migrate, "m2");
    journal_task(&mut store, "acme", TaskKind::Check, "c2");
    journal_task(&mut store, "beta", TaskKind::Migrate, "b1");
    let open_intent = store
        .transaction(|tx| tx.record_task_intent("beta", "r1", "j1", &TaskKind::Check, at(5)))
        .unwrap();

    // The site concludes with m2 only (this run resumed m2 and judged it).
    let mut done = report("acme", Mode::Migrate, Some(Outcome::Succeeded));
    done.tasks.push(finished_task("migrate", "m2", 8));
    store
        .transaction(|tx| tx.record_site_report("r1", &done, true))
        .unwrap();
    let concluded = |site: &str| -> BTreeMap<String, bool> {
        store
            .site(site)
            .unwrap()
            .unwrap()
            .tasks
            .iter()
            .filter_map(|task| Some((task.task_id.clone()?, task.finished_at.is_some())))
            .collect()
    };
    let acme = concluded("acme");
    assert!(acme["c1"], "the precheck before it");
    assert!(acme["m1"], "the Migrate task it superseded");
    assert!(acme["m2"], "the task the report names");
    assert!(
        !acme["c2"],
        "a newer task still runs: the next check run adopts it"
    );
    assert!(!concluded("beta")["b1"], "other sites are untouched");
    let (_, intent) = task_by_intent(&store, open_intent).unwrap();
    assert!(
        intent.needs_reconcile(),
        "intents are left to reconciliation"
    );
}

#[test]
fn the_services_outcome_and_the_judgement_are_kept_apart() {
    let (_dir, mut store) = with_run();
    let intent = journal_task(&mut store, "acme", TaskKind::Migrate, "t1");
    store
        .transaction(|tx| {
            tx.record_task_status(intent, "FINISHED", Some("INCOMPLETE"), None, None)?;
            tx.record_task_judgement(intent, Judgement::Warnings)
        })
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(
        task.service_outcome.as_deref(),
        Some("INCOMPLETE"),
        "a word cmafleet does not know is kept as the service sent it"
    );
    assert_eq!(task.judgement, Some(Judgement::Warnings));

    // A later status read (an adopted task polled again) replaces the service's word only.
    store
        .transaction(|tx| tx.record_task_status(intent, "FINISHED", Some("SUCCESS"), None, None))
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(task.service_outcome.as_deref(), Some("SUCCESS"));
    assert_eq!(task.judgement, Some(Judgement::Warnings));
}

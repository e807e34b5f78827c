//! Admission decided from a ledger's entries and the settings alone: no runtime, no HTTP.

use chrono::Duration as Span;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::*;
use crate::fleet::breaker::FailureSignature;
use crate::inventory::{Product, SecretRef, ServerAuth, UsersScope};
use crate::state::TaskRecord;
use crate::vocab::Stage;

fn rules(mode: Mode, concurrency: usize, per_server: usize) -> Rules {
    Rules {
        mode,
        concurrency,
        per_server,
        remigrate: false,
        window_closes: None,
    }
}

/// A site on `server` of cloud user `user@example.com`.
fn site(name: &str, server: &str, wave: Option<&str>) -> Arc<Site> {
    let secret = SecretRef::Env("TOKEN".into());
    Arc::new(Site {
        line: 2,
        name: name.into(),
        product: Product::Jira,
        server_url: Url::parse(&format!("https://{server}.example.com")).unwrap(),
        server_id: server.into(),
        server_auth: ServerAuth::Bearer(secret.clone()),
        cloud_url: Url::parse(&format!("https://{name}.atlassian.net")).unwrap(),
        cloud_user: "user@example.com".into(),
        cloud_token: secret,
        keys: Vec::new(),
        users: UsersScope::All,
        apps: Vec::new(),
        global_entities: Vec::new(),
        wave: wave.map(str::to_owned),
        job_name: None,
        scope_json: None,
    })
}

/// A task of `kind` created an hour ago; finished `took` later, or still running.
fn task(kind: TaskKind, took: Option<Span>) -> TaskRecord {
    let created = Utc::now() - Span::hours(1);
    TaskRecord {
        intent_id: 1,
        run_id: "earlier".into(),
        job_id: "job".into(),
        kind,
        intent_at: created,
        task_id: Some("task-1".into()),
        created_at: Some(created),
        adopted: false,
        status: None,
        service_outcome: None,
        judgement: None,
        finished_at: took.map(|took| created + took),
        abandoned: false,
        apps_pending: false,
    }
}

fn entry(site: Arc<Site>, mode: Mode, tasks: Vec<TaskRecord>) -> SiteEntry {
    let state = SiteState {
        site: site.name.clone(),
        tasks,
        ..Default::default()
    };
    entry_with(site, mode, state)
}

fn entry_with(site: Arc<Site>, mode: Mode, state: SiteState) -> SiteEntry {
    SiteEntry::new(site, 0, state, mode)
}

/// The entries of `sites` with their waves as the coordinator numbers them.
fn ledger(mut entries: Vec<SiteEntry>) -> Vec<SiteEntry> {
    let sites: Vec<Arc<Site>> = entries
        .iter()
        .map(|entry| Arc::clone(&entry.site))
        .collect();
    for (entry, wave) in entries.iter_mut().zip(wave_order(&sites)) {
        entry.wave = wave;
    }
    entries
}

fn no_breakers() -> Breakers {
    Breakers::new(0, CancellationToken::new())
}

/// Every decision admission makes now, in order.
fn decide_all(
    admission: &mut Admission,
    sites: &[SiteEntry],
    breakers: &Breakers,
) -> Vec<Decision> {
    std::iter::from_fn(|| admission.next(sites, breakers, Utc::now())).collect()
}

fn skipped(decision: &Decision) -> (usize, &str) {
    match decision {
        Decision::Conclude {
            site,
            outcome: Outcome::Skipped,
            message,
        } => (*site, message),
        other => panic!("expected a skip: {other:?}"),
    }
}

#[test]
fn sites_start_in_inventory_order_up_to_the_concurrency() {
    let sites = ledger(
        ["a", "b", "c"]
            .into_iter()
            .map(|name| entry(site(name, name, None), Mode::Check, Vec::new()))
            .collect(),
    );
    let mut admission = Admission::new(rules(Mode::Check, 2, 1), &sites, HashMap::new());
    let breakers = no_breakers();
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [Decision::Start(0), Decision::Start(1)]
    );
    assert_eq!(admission.running(), 2);
    assert!(admission.has_waiting());

    admission.ended("a");
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [Decision::Start(2)]
    );
    assert!(!admission.has_waiting());
}

#[test]
fn a_site_whose_server_is_full_waits_while_a_later_one_on_another_server_starts() {
    let sites = ledger(vec![
        entry(site("a", "shared", None), Mode::Check, Vec::new()),
        entry(site("b", "shared", None), Mode::Check, Vec::new()),
        entry(site("c", "alone", None), Mode::Check, Vec::new()),
    ]);
    let mut admission = Admission::new(rules(Mode::Check, 10, 1), &sites, HashMap::new());
    let breakers = no_breakers();
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [Decision::Start(0), Decision::Start(2)]
    );
    admission.ended("shared");
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [Decision::Start(1)]
    );
}

#[test]
fn a_site_on_a_server_an_unselected_row_holds_is_skipped_naming_that_row() {
    let sites = ledger(vec![entry(
        site("a", "shared", None),
        Mode::Check,
        Vec::new(),
    )]);
    let held = HashMap::from([("shared".to_owned(), "other".to_owned())]);
    let mut admission = Admission::new(rules(Mode::Check, 10, 1), &sites, held);
    let decisions = decide_all(&mut admission, &sites, &no_breakers());
    let (index, message) = skipped(&decisions[0]);
    assert_eq!(index, 0);
    assert!(message.contains("`other`"), "{message}");
    assert!(message.contains("--site other"), "{message}");
    assert_eq!(admission.running(), 0, "a skipped site takes no slot");
}

#[test]
fn after_the_night_window_closed_new_work_is_skipped_but_a_task_left_running_is_resumed() {
    let sites = ledger(vec![
        entry(site("new", "one", None), Mode::Check, Vec::new()),
        entry(
            site("left", "two", None),
            Mode::Check,
            vec![task(TaskKind::Check, None)],
        ),
    ]);
    let mut rules = rules(Mode::Check, 10, 1);
    rules.window_closes = Some(Utc::now() - Span::minutes(1));
    let mut admission = Admission::new(rules, &sites, HashMap::new());
    let decisions = decide_all(&mut admission, &sites, &no_breakers());
    assert_eq!(decisions[0], Decision::Start(1), "resumed first");
    let (index, message) = skipped(&decisions[1]);
    assert_eq!(index, 0);
    assert!(message.starts_with("night window closed at"), "{message}");
    assert_eq!(decisions.len(), 2);
}

#[test]
fn a_migrated_site_is_skipped_unless_remigrate() {
    let migrated = |remigrate: bool| {
        let state = SiteState {
            site: "done".into(),
            migrated_at: Some(Utc::now() - Span::days(1)),
            ..Default::default()
        };
        let sites = ledger(vec![entry_with(
            site("done", "one", None),
            Mode::Migrate,
            state,
        )]);
        let mut rules = rules(Mode::Migrate, 10, 1);
        rules.remigrate = remigrate;
        let mut admission = Admission::new(rules, &sites, HashMap::new());
        decide_all(&mut admission, &sites, &no_breakers())
    };
    let decisions = migrated(false);
    let (_, message) = skipped(&decisions[0]);
    assert!(message.starts_with("already migrated at"), "{message}");
    assert!(message.contains("--remigrate"), "{message}");
    assert_eq!(migrated(true), [Decision::Start(0)]);
}

#[test]
fn sites_resuming_a_task_go_first_whatever_their_wave_and_hold_their_server() {
    let left = || vec![task(TaskKind::Check, None)];
    let sites = ledger(vec![
        entry(
            site("fresh", "shared", Some("first")),
            Mode::Check,
            Vec::new(),
        ),
        entry(
            site("left-1", "shared", Some("second")),
            Mode::Check,
            left(),
        ),
        entry(
            site("left-2", "shared", Some("second")),
            Mode::Check,
            left(),
        ),
    ]);
    let mut admission = Admission::new(rules(Mode::Check, 10, 1), &sites, HashMap::new());
    let breakers = no_breakers();
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [Decision::Start(1)],
        "no new task on a server whose left task still waits to be resumed"
    );
    admission.ended("shared");
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [Decision::Start(2)]
    );
    admission.ended("shared");
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [Decision::Start(0)]
    );
}

#[test]
fn a_wave_starts_once_every_site_of_the_earlier_one_concluded() {
    let sites = ledger(vec![
        entry(site("a", "one", Some("first")), Mode::Check, Vec::new()),
        entry(site("b", "two", Some("second")), Mode::Check, Vec::new()),
    ]);
    let mut admission = Admission::new(rules(Mode::Check, 10, 1), &sites, HashMap::new());
    let breakers = no_breakers();
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [Decision::Start(0)]
    );
    admission.ended("one");
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [],
        "a site that ended but whose report is not recorded yet keeps its wave open"
    );
    admission.concluded(sites[0].wave);
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [Decision::Start(1)]
    );
}

#[test]
fn within_a_wave_the_longest_pipelines_known_from_history_start_first() {
    let took = |minutes| vec![task(TaskKind::Check, Some(Span::minutes(minutes)))];
    let sites = ledger(vec![
        entry(site("short", "one", None), Mode::Check, took(5)),
        entry(site("unknown", "two", None), Mode::Check, Vec::new()),
        entry(site("long", "three", None), Mode::Check, took(50)),
    ]);
    let mut admission = Admission::new(rules(Mode::Check, 10, 1), &sites, HashMap::new());
    assert_eq!(
        decide_all(&mut admission, &sites, &no_breakers()),
        [Decision::Start(2), Decision::Start(0), Decision::Start(1)]
    );
}

#[test]
fn a_check_run_skips_a_site_whose_migration_is_still_running() {
    let sites = ledger(vec![entry(
        site("moving", "one", None),
        Mode::Check,
        vec![task(TaskKind::Migrate, None)],
    )]);
    let mut admission = Admission::new(rules(Mode::Check, 10, 1), &sites, HashMap::new());
    let decisions = decide_all(&mut admission, &sites, &no_breakers());
    let (_, message) = skipped(&decisions[0]);
    assert!(message.contains("task-1"), "{message}");
    assert!(message.contains("--mode migrate"), "{message}");
}

#[test]
fn a_tripped_breaker_skips_its_users_sites_not_started() {
    let sites = ledger(vec![
        entry(site("a", "one", None), Mode::Check, Vec::new()),
        entry(site("b", "two", None), Mode::Check, Vec::new()),
    ]);
    let mut admission = Admission::new(rules(Mode::Check, 1, 1), &sites, HashMap::new());
    let mut breakers = Breakers::new(1, CancellationToken::new());
    assert_eq!(
        decide_all(&mut admission, &sites, &breakers),
        [Decision::Start(0)]
    );
    let failure = FailureSignature {
        stage: Stage::Job,
        answer: "HTTP 401: Unauthorized".into(),
    };
    assert!(
        breakers
            .concluded("user@example.com", Some(&failure))
            .is_some()
    );
    admission.ended("one");
    let decisions = decide_all(&mut admission, &sites, &breakers);
    let (index, message) = skipped(&decisions[0]);
    assert_eq!(index, 1);
    assert!(message.contains("HTTP 401"), "{message}");
}

#[test]
fn a_stop_takes_every_waiting_site_resuming_ones_first() {
    let sites = ledger(vec![
        entry(site("a", "one", None), Mode::Check, Vec::new()),
        entry(
            site("b", "two", None),
            Mode::Check,
            vec![task(TaskKind::Check, None)],
        ),
    ]);
    let mut admission = Admission::new(rules(Mode::Check, 0, 1), &sites, HashMap::new());
    assert_eq!(admission.take_waiting(), [1, 0]);
    assert!(!admission.has_waiting());
    assert_eq!(decide_all(&mut admission, &sites, &no_breakers()), []);
}

//! 429s: `Retry-After` in seconds or as an HTTP date is honoured (the measured wait is at
//! least the value), the whole class of that cloud user is paused and nobody else is.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cmafleet::cma::client::{CloudClient, HttpClient, RequestGate};
use cmafleet::cma::wire::CreateTaskRequest;
use cmafleet::cma::{ErrorKind, RateClass};
use cmafleet::fleet::limits::RateLimits;
use cmafleet::fleet::policy::RateConfig;
use cmafleet::secret::Secret;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::stub::{self, Recorded, Stub, json, with_header};

const JOB: &str = r#"{"name":"n","flow":"jira-onpremises-to-cloud"}"#;

fn fast_limits(http_events: Arc<stub::Events>) -> RateLimits {
    RateLimits::new(
        RateConfig {
            create_job: "100/s".parse().unwrap(),
            create_task: "100/s".parse().unwrap(),
            read: "100/s".parse().unwrap(),
            token: "100/s".parse().unwrap(),
        },
        http_events,
    )
}

fn client_for(http: &HttpClient, api: &Url, user: &str, limits: &RateLimits) -> CloudClient {
    let gate: Arc<dyn RequestGate> = limits.for_user(user);
    CloudClient::new(http.clone(), api, user, Secret::new("tok-1234"), gate)
}

async fn wait_for_pause(limits: &RateLimits, user: &str, class: RateClass) {
    let user = limits.for_user(user);
    tokio::time::timeout(Duration::from_secs(10), async {
        while user.paused_until(class).is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the 429 pauses the bucket");
}

fn arrival(stub: &Stub, job: &str, nth: usize) -> Recorded {
    stub.requests()
        .into_iter()
        .find(|r| r.path.ends_with(&format!("/jobs/{job}")) && r.nth == nth)
        .unwrap_or_else(|| panic!("no request {nth} for job {job}"))
}

#[tokio::test]
async fn retry_after_seconds_pauses_the_users_class_and_nobody_else() {
    let limited = Arc::new(Notify::new());
    let signal = limited.clone();
    let stub = Stub::start(move |r: &Recorded| {
        if r.path.ends_with("/jobs/a") && r.nth == 0 {
            signal.notify_one();
            with_header(
                json(429, r#"{"errorMessage":"slow down"}"#),
                "retry-after",
                "2",
            )
        } else if r.method == "POST" {
            json(200, r#"{"taskId":"t"}"#)
        } else {
            json(200, JOB)
        }
    })
    .await;
    let (http, events) = stub::http(stub::settings());
    let limits = fast_limits(events.clone());
    let alice = client_for(&http, &stub.url, "alice@acme.example", &limits);
    let bob = client_for(&http, &stub.url, "bob@acme.example", &limits);
    let cancel = CancellationToken::new();

    let first = {
        let alice = alice.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move { alice.get_job("a", &cancel).await })
    };
    limited.notified().await;
    wait_for_pause(&limits, "alice@acme.example", RateClass::Read).await;

    let check = CreateTaskRequest::check();
    let (same_class, other_user, other_class) = tokio::join!(
        alice.get_job("b", &cancel),
        bob.get_job("c", &cancel),
        alice.create_task("d", &check, &cancel),
    );
    same_class.unwrap();
    other_user.unwrap();
    other_class.unwrap();
    first.await.unwrap().unwrap();

    let refused_at = arrival(&stub, "a", 0).at;
    let retried = arrival(&stub, "a", 1).at - refused_at;
    let held = arrival(&stub, "b", 0).at - refused_at;
    let free = arrival(&stub, "c", 0).at - refused_at;
    let task = stub
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .at
        - refused_at;
    assert!(retried >= Duration::from_secs(2), "retry after {retried:?}");
    assert!(
        held >= Duration::from_secs(2),
        "same user and class after {held:?}"
    );
    assert!(free < Duration::from_secs(1), "other user after {free:?}");
    assert!(task < Duration::from_secs(1), "other class after {task:?}");
    assert_eq!(events.limited.lock().unwrap().len(), 1);
    assert!(events.retry_reasons().contains(&"429"));
    let read_wait: Duration = events
        .waits
        .lock()
        .unwrap()
        .iter()
        .filter(|(class, _)| *class == RateClass::Read)
        .map(|(_, waited)| *waited)
        .max()
        .unwrap();
    assert!(read_wait >= Duration::from_millis(1900), "{read_wait:?}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let sent = Arc::new(std::sync::Mutex::new(None));
    let record = sent.clone();
    let stub = Stub::start(move |r: &Recorded| {
        if r.nth == 0 {
            // Two whole seconds past the current one: the date has second precision.
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let at = UNIX_EPOCH + Duration::from_secs(now.as_secs() + 2);
            *record.lock().unwrap() = Some(at);
            with_header(json(429, "{}"), "retry-after", &httpdate::fmt_http_date(at))
        } else {
            json(200, JOB)
        }
    })
    .await;
    let (http, events) = stub::http(stub::settings());
    let limits = fast_limits(events.clone());
    let client = client_for(&http, &stub.url, "carol@acme.example", &limits);
    client
        .get_job("j", &CancellationToken::new())
        .await
        .unwrap();
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    let asked = sent.lock().unwrap().unwrap();
    assert!(
        requests[1].wall >= asked,
        "retried at {:?}, asked for {:?}",
        requests[1].wall,
        asked
    );
    assert!(requests[1].at - requests[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_429_on_a_create_is_retried_and_rate_limit_reset_is_read() {
    let stub = Stub::start(|r: &Recorded| match r.nth {
        0 => with_header(json(429, "{}"), "x-ratelimit-reset", "1"),
        _ => json(200, r#"{"taskId":"t-9"}"#),
    })
    .await;
    let (http, events) = stub::http(stub::settings());
    let limits = fast_limits(events.clone());
    let client = client_for(&http, &stub.url, "dave@acme.example", &limits);
    let created = client
        .create_task("j", &CreateTaskRequest::check(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(created.task_id, "t-9");
    let requests = stub.requests();
    assert_eq!(
        requests.len(),
        2,
        "a 429 was not processed: sending again is safe"
    );
    assert!(requests[1].at - requests[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_429_that_persists_ends_as_rate_limited_after_the_policy() {
    let stub = Stub::start(|_| with_header(json(429, "{}"), "retry-after", "0")).await;
    let (http, events) = stub::http(stub::settings());
    let limits = fast_limits(events.clone());
    let client = client_for(&http, &stub.url, "erin@acme.example", &limits);
    let err = client
        .list_tasks("j", &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::RateLimited {
            retry_after: Some(Duration::ZERO)
        }
    );
    assert!(err.is_retryable());
    // 429s have their own budget: 4 × the policy's 3 attempts.
    assert_eq!(stub.count(), 12);
    assert_eq!(events.limited.lock().unwrap().len(), 12);
}

#[tokio::test]
async fn a_429_without_a_hint_backs_off_and_a_pause_is_cancellable() {
    let stub = Stub::start(|r: &Recorded| match r.nth {
        0 => json(429, "{}"),
        _ => json(200, JOB),
    })
    .await;
    let (http, events) = stub::http(stub::settings());
    let limits = fast_limits(events.clone());
    let client = client_for(&http, &stub.url, "frank@acme.example", &limits);
    client
        .get_job("j", &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(stub.count(), 2);

    // A long pause: a cancelled caller leaves at once and sends nothing.
    limits
        .for_user("frank@acme.example")
        .pause(RateClass::Read, Duration::from_secs(600));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let err = tokio::time::timeout(Duration::from_secs(10), client.get_job("k", &cancel))
        .await
        .expect("cancellation ends the wait")
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
    assert_eq!(stub.count(), 2);
}

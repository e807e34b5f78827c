//! Hand-written stand-ins for the CMA API, on 127.0.0.1:0: an axum stub that records every
//! request and answers from a closure (so each test writes the JSON shapes it needs), and a
//! raw TCP server for faults axum cannot make (silence, dropped connections, cut bodies).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use cmafleet::cma::client::{ApiObserver, ClientSettings, HttpClient};
use cmafleet::cma::retry::RetryPolicy;
use cmafleet::cma::{Endpoint, RateClass, SurpriseKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// One request as the stub received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// HTTP/1.1 or HTTP/2, as it arrived.
    pub version: axum::http::Version,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
    pub wall: SystemTime,
    /// How many earlier requests had the same method and path.
    pub nth: usize,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

type Responder = dyn Fn(&Recorded) -> Response + Send + Sync;

#[derive(Clone)]
struct StubState {
    log: Arc<Mutex<Vec<Recorded>>>,
    responder: Arc<Responder>,
}

/// An axum server answering every request from one closure.
pub struct Stub {
    pub url: Url,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Stub {
    pub async fn start(responder: impl Fn(&Recorded) -> Response + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, responder)
    }

    /// Serves on an existing listener (a port chosen before the server is up).
    pub fn serve(
        listener: TcpListener,
        responder: impl Fn(&Recorded) -> Response + Send + Sync + 'static,
    ) -> Stub {
        let addr = listener.local_addr().unwrap();
        let state = StubState {
            log: Arc::new(Mutex::new(Vec::new())),
            responder: Arc::new(responder),
        };
        let log = state.log.clone();
        let app = axum::Router::new().fallback(handle).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Stub {
            url: base_url(addr),
            log,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// `self.url` joined with `path`, as a string.
    pub fn at(&self, path: &str) -> String {
        self.url.join(path).unwrap().to_string()
    }
}

async fn handle(State(state): State<StubState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let recorded = {
        let mut log = state.log.lock().unwrap();
        let method = parts.method.to_string();
        let path = parts.uri.path().to_owned();
        let nth = log
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count();
        let recorded = Recorded {
            method,
            version: parts.version,
            path,
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            body: body.to_vec(),
            at: Instant::now(),
            wall: SystemTime::now(),
            nth,
        };
        log.push(recorded.clone());
        recorded
    };
    (state.responder)(&recorded)
}

fn base_url(addr: SocketAddr) -> Url {
    Url::parse(&format!("http://{addr}/")).unwrap()
}

pub fn json(status: u16, body: &str) -> Response {
    respond(status, "application/json", body)
}

pub fn text(status: u16, body: &str) -> Response {
    respond(status, "text/plain; charset=utf-8", body)
}

pub fn respond(status: u16, content_type: &str, body: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_str(content_type).unwrap());
    response
}

pub fn with_header(mut response: Response, name: &'static str, value: &str) -> Response {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_str(value).unwrap());
    response
}

/// What the raw server does with each request it reads.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Reads the request and never answers (the client's timeout fires).
    Silence,
    /// Reads the request and closes the connection without a word.
    Drop,
    /// Answers 200 with `Content-Length: 200` and fewer bytes, then closes.
    CutBody,
}

/// A TCP server that misbehaves on purpose, counting the requests it read.
pub struct RawServer {
    pub url: Url,
    requests: Arc<AtomicUsize>,
}

impl RawServer {
    pub async fn start(fault: Fault) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = base_url(listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(serve_raw(socket, fault, counter));
            }
        });
        RawServer { url, requests }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve_raw(mut socket: TcpStream, fault: Fault, counter: Arc<AtomicUsize>) {
    if !read_request(&mut socket).await {
        return;
    }
    counter.fetch_add(1, Ordering::SeqCst);
    match fault {
        Fault::Silence => tokio::time::sleep(Duration::from_secs(60)).await,
        Fault::Drop => {}
        Fault::CutBody => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket
                .write_all(br#"{"name": "cut", "flow": "jira-onpre"#)
                .await;
            let _ = socket.flush().await;
        }
    }
}

/// Reads one request (head and `content-length` body); false at end of stream.
async fn read_request(socket: &mut TcpStream) -> bool {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buffer[..n]),
        }
    }
    true
}

/// Every event the client reported.
#[derive(Default)]
pub struct Events {
    pub responses: Mutex<Vec<(Endpoint, String)>>,
    pub retries: Mutex<Vec<(Endpoint, &'static str)>>,
    pub limited: Mutex<Vec<Endpoint>>,
    pub waits: Mutex<Vec<(RateClass, Duration)>>,
    pub surprises: Mutex<Vec<SurpriseKind>>,
}

impl Events {
    pub fn codes(&self) -> Vec<String> {
        self.responses
            .lock()
            .unwrap()
            .iter()
            .map(|(_, code)| code.clone())
            .collect()
    }

    pub fn retry_reasons(&self) -> Vec<&'static str> {
        self.retries
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| *r)
            .collect()
    }
}

impl ApiObserver for Events {
    fn on_response(&self, endpoint: Endpoint, code: &str, _: Duration) {
        self.responses
            .lock()
            .unwrap()
            .push((endpoint, code.to_owned()));
    }
    fn on_retry(&self, endpoint: Endpoint, reason: &'static str) {
        self.retries.lock().unwrap().push((endpoint, reason));
    }
    fn on_rate_limited(&self, endpoint: Endpoint) {
        self.limited.lock().unwrap().push(endpoint);
    }
    fn on_rate_wait(&self, class: RateClass, waited: Duration) {
        self.waits.lock().unwrap().push((class, waited));
    }
    fn on_surprise(&self, kind: SurpriseKind) {
        self.surprises.lock().unwrap().push(kind);
    }
}

/// Quick settings: short timeouts and retry delays, a small body cap.
pub fn settings() -> ClientSettings {
    ClientSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        },
        max_body_bytes: 64 * 1024,
        max_artifact_bytes: 64 * 1024,
        user_agent: "cmafleet-test/1".to_owned(),
        h2c_origins: Vec::new(),
        extra_roots: Default::default(),
        h2_ping: Duration::from_secs(15),
    }
}

pub fn http(settings: ClientSettings) -> (HttpClient, Arc<Events>) {
    let events = Arc::new(Events::default());
    (HttpClient::new(settings, events.clone()).unwrap(), events)
}

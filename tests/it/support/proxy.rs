//! A recording reverse proxy in front of the simulator, on a loopback address of its own.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// What one listener received: (method, path, Authorization header).
pub type Received = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

/// A reverse proxy on its own loopback address that records every request's Authorization
/// header and forwards it, unchanged but for `Host`, to the simulator.
pub struct RecordingProxy {
    addr: SocketAddr,
    received: Received,
}

#[derive(Clone)]
struct Forward {
    target: String,
    /// `Host` to send on, so that links and artifact locations point back at this proxy.
    host: String,
    http: reqwest::Client,
    received: Received,
}

impl RecordingProxy {
    /// A proxy on `ip` (port chosen by the system) to `target`, naming itself as the host,
    /// so that links and artifact locations point back at it.
    pub async fn start(ip: &str, target: &str) -> RecordingProxy {
        RecordingProxy::start_naming(ip, target, None).await
    }

    /// A proxy that names `host` (`None`: itself) as the host to `target`: links and
    /// artifact locations then point there.
    pub async fn start_naming(ip: &str, target: &str, host: Option<&str>) -> RecordingProxy {
        let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let received: Received = Arc::default();
        let forward = Forward {
            target: target.to_owned(),
            host: host.map_or_else(|| addr.to_string(), str::to_owned),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            received: Arc::clone(&received),
        };
        let app = axum::Router::new().fallback(relay).with_state(forward);
        tokio::spawn(async move { axum::serve(listener, app).await });
        RecordingProxy { addr, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<(String, String, Option<String>)> {
        self.received.lock().unwrap().clone()
    }
}

async fn relay(State(forward): State<Forward>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/".to_owned(), ToString::to_string);
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or("(not text)").to_owned());
    forward.received.lock().unwrap().push((
        parts.method.to_string(),
        parts.uri.path().to_owned(),
        authorization,
    ));
    let mut headers: HeaderMap = parts.headers.clone();
    headers.insert(header::HOST, HeaderValue::from_str(&forward.host).unwrap());
    let answer = forward
        .http
        .request(parts.method, format!("{}{path}", forward.target))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match answer {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let body = answer.bytes().await.unwrap_or_default();
            let mut response = (status, body).into_response();
            for (name, value) in &headers {
                if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(error) => (axum::http::StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

//! The `--metrics-listen` HTTP server: `/metrics`, `/healthz`, and the live status page
//! (`/`, `/status.json`).
//!
//! Every route is a GET (HEAD is answered too); nothing here changes the run. The page is
//! one self-contained file (inline CSS and script, no external asset) that reads
//! `status.json` by a relative URL, so it also works behind a reverse proxy's path prefix.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// Supplies `/status.json`: the coordinator's live view of the run (see
/// [`super::status::RunStatus`] for the shape the page reads).
pub type StatusSource = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// The Content-Type of the Prometheus text exposition format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The live status page.
const STATUS_PAGE: &str = include_str!("status_page.html");

/// The page may run its own inline script and style and fetch from this server, nothing else.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Live values change between requests: no cache may keep them.
const NO_STORE: &str = "no-store";

/// What the handlers read.
#[derive(Clone)]
struct Sources {
    metrics: Arc<Metrics>,
    status: StatusSource,
}

/// The routes, without a socket (tests call it directly).
pub fn router(metrics: Arc<Metrics>, status: StatusSource) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/status.json", get(status_json))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .with_state(Sources { metrics, status })
}

/// Serves until `shutdown` fires, then lets requests in progress finish.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    status: StatusSource,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, status))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn metrics_text(State(sources): State<Sources>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, TEXT_FORMAT), (CACHE_CONTROL, NO_STORE)],
        sources.metrics.encode(),
    )
}

async fn healthz() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "ok\n")
}

async fn status_json(State(sources): State<Sources>) -> impl IntoResponse {
    ([(CACHE_CONTROL, NO_STORE)], Json((sources.status)()))
}

async fn status_page() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, PAGE_POLICY),
            (CACHE_CONTROL, NO_STORE),
        ],
        STATUS_PAGE,
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        let metrics = Arc::new(Metrics::new(crate::vocab::Mode::Check));
        metrics.set_site_counts(&[("running", 2), ("succeeded", 3)]);
        let status: StatusSource =
            Arc::new(|| serde_json::json!({"total": 5, "counts": {"running": 2}}));
        router(metrics, status)
    }

    async fn get(app: Router, method: Method, path: &str) -> (StatusCode, String, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn metrics_are_served_in_the_text_format() {
        let (status, content_type, body) = get(app(), Method::GET, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, TEXT_FORMAT);
        assert!(
            body.contains("cmafleet_sites{outcome=\"succeeded\",mode=\"check\"} 3\n"),
            "{body}"
        );
        // The live endpoint keeps the process's own series.
        #[cfg(target_os = "linux")]
        assert!(body.contains("\nprocess_resident_memory_bytes "), "{body}");
    }

    #[tokio::test]
    async fn health_status_and_page_routes_answer() {
        let (status, _, body) = get(app(), Method::GET, "/healthz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));

        let (status, content_type, body) = get(app(), Method::GET, "/status.json").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["counts"]["running"], 2);

        let (status, content_type, body) = get(app(), Method::GET, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "text/html; charset=utf-8");
        assert!(
            body.contains("fetch(\"status.json\""),
            "the page reads the status"
        );
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "no external asset"
        );
    }

    #[tokio::test]
    async fn unknown_paths_and_writes_are_refused() {
        let (status, _, _) = get(app(), Method::GET, "/metrics/extra").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(app(), Method::POST, "/metrics").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let (status, _, body) = get(app(), Method::HEAD, "/metrics").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    }

    #[tokio::test]
    async fn serve_stops_when_told() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new(crate::vocab::Mode::Migrate));
        let status: StatusSource = Arc::new(|| serde_json::json!({}));
        let server = tokio::spawn(serve(listener, metrics, status, shutdown.clone()));

        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        shutdown.cancel();
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .expect("the server stops after shutdown")
            .unwrap();
        assert!(result.is_ok());
    }
}

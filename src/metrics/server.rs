//! The `--metrics-listen` HTTP server: `/metrics`, `/healthz`, and the live status page
//! (`/`, `/status.json`).
//!
//! SKELETON: signatures fixed; bodies to be written (issue 6, status page issue 7).

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// Supplies `/status.json`: the coordinator's live view of the run.
pub type StatusSource = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// The routes, without a socket (tests call it directly).
pub fn router(metrics: Arc<Metrics>, status: StatusSource) -> Router {
    let _ = (metrics, status);
    todo!()
}

/// Serves until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    status: StatusSource,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let _ = (listener, metrics, status, shutdown);
    todo!()
}

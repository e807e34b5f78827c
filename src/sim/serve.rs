//! Serving the router with hyper directly (not `axum::serve`), over HTTP/1.1 or HTTP/2
//! without negotiation (h2c with prior knowledge, which `cmafleet run` speaks to a plain-http
//! cloud API; the `http = "http1"` shape refuses it), so that a "dropped connection" fault can end an exchange without any answer:
//! the service fails instead of answering, and hyper closes the socket (HTTP/1.1) or resets
//! the stream (HTTP/2) — either way the client never learns the outcome. An outage
//! (`POST /_sim/outage`) closes the listener and every open connection for a while, then
//! listens again on the same address with the same world.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::options::SimOptions;
use super::routes;
use super::shapes::HttpVersions;
use super::shared::DropConnection;

/// A running simulator.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub join: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    /// `http://IP:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// How long in-flight connections get to finish once shutdown is asked.
const DRAIN: Duration = Duration::from_secs(5);

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct DroppedAnswer;

impl std::fmt::Display for DroppedAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("answer dropped by a simulated fault")
    }
}

impl std::error::Error for DroppedAnswer {}

pub(crate) async fn start(listen: SocketAddr, options: SimOptions) -> std::io::Result<SimHandle> {
    if !(options.time_scale.is_finite() && options.time_scale > 0.0) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the time scale must be a positive number, not {}",
                options.time_scale
            ),
        ));
    }
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shapes = options.scenario.shapes();
    tracing::info!(%addr, "{}", shapes.summary());
    let versions = shapes.http;
    let (outages, outage_requests) = tokio::sync::mpsc::unbounded_channel();
    let router = routes::router(options, Some(outages));
    let shutdown = CancellationToken::new();
    let join = tokio::spawn(serve(
        listener,
        router,
        versions,
        shutdown.clone(),
        outage_requests,
    ));
    Ok(SimHandle {
        addr,
        shutdown,
        join,
    })
}

/// Accepts connections until `shutdown` fires, then lets open ones finish (for a while).
/// An outage request closes the listener and the open connections (each after the answer
/// it is sending), waits, and listens again on the same address.
async fn serve(
    mut listener: TcpListener,
    router: Router,
    versions: HttpVersions,
    shutdown: CancellationToken,
    mut outages: UnboundedReceiver<Duration>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let mut connections = JoinSet::new();
    // Cancelled to close the connections of one listening period (child of `shutdown`).
    let mut period = shutdown.child_token();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(outage) = outages.recv() => {
                tracing::warn!(?outage, "simulated outage: refusing connections");
                drop(listener);
                period.cancel();
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(outage) => {}
                }
                listener = rebind(addr).await?;
                period = shutdown.child_token();
                tracing::warn!("simulated outage over: listening again on {addr}");
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors and the like: wait a little and go on.
                tracing::warn!(error = %err, "failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(serve_connection(
            stream,
            router.clone(),
            versions,
            period.clone(),
        ));
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}

/// Listens on `addr` again after an outage (the port may take a moment to be free).
async fn rebind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut tries = 0;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(err) if tries < 50 => {
                tries += 1;
                tracing::debug!(error = %err, "cannot listen again yet");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Serves one connection in the HTTP versions of the `http` shape until it ends, or until
/// `close` fires (then the answer in progress is finished and the connection closed).
async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    versions: HttpVersions,
    close: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let router = router.clone();
        // HTTP/2 carries the host in the URI's authority, not in a Host header; the
        // routes build links from Host.
        if !request.headers().contains_key(axum::http::header::HOST)
            && let Some(value) = request
                .uri()
                .authority()
                .and_then(|a| axum::http::HeaderValue::from_str(a.as_str()).ok())
        {
            request
                .headers_mut()
                .insert(axum::http::header::HOST, value);
        }
        async move {
            let response: Response<Body> = match router.oneshot(request.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<DropConnection>().is_some() {
                return Err(DroppedAnswer);
            }
            Ok::<_, DroppedAnswer>(response)
        }
    });
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    if versions == HttpVersions::Http1 {
        builder = builder.http1_only();
    }
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended");
            }
        }
        () = close.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

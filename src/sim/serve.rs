//! Serving the router over HTTP/1.1 with hyper directly (not `axum::serve`), so that a
//! "dropped connection" fault can close a connection without sending any answer: the
//! service fails instead of answering, and hyper closes the socket.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::routes::DropConnection;
use super::{SimHandle, SimOptions, routes};

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
    let router = routes::router(options);
    let shutdown = CancellationToken::new();
    let join = tokio::spawn(serve(listener, router, shutdown.clone()));
    Ok(SimHandle {
        addr,
        shutdown,
        join,
    })
}

/// Accepts connections until `shutdown` fires, then lets open ones finish (for a while).
async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
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
        connections.spawn(serve_connection(stream, router.clone(), shutdown.clone()));
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

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
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
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended");
            }
        }
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

//! A forward proxy on its own loopback port, as a consultancy's network has one: `CONNECT`
//! tunnels for https (`HTTPS_PROXY`) and absolute-form requests for plain http
//! (`HTTP_PROXY`), each recorded before it is relayed.

// Shared by several tests of the one test binary; not every test uses every helper.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What passed through the proxy.
#[derive(Debug, Default, Clone)]
pub struct ProxyRecords {
    /// Each CONNECT's head as received: `CONNECT host:port HTTP/1.1` and its header lines.
    pub connects: Vec<String>,
    /// Each plain-http request line forwarded: `GET http://host:port/path HTTP/1.1`.
    pub requests: Vec<String>,
    /// Every byte a client sent into its tunnels (the tunnelled TLS, never decrypted).
    pub tunnelled: Vec<u8>,
}

impl ProxyRecords {
    /// The `host:port` of each CONNECT, in order.
    pub fn connect_targets(&self) -> Vec<String> {
        self.connects
            .iter()
            .filter_map(|head| head.split(' ').nth(1).map(str::to_owned))
            .collect()
    }
}

/// A CONNECT and plain-http proxy on 127.0.0.1 that records what it relays.
pub struct ForwardProxy {
    addr: SocketAddr,
    records: Arc<Mutex<ProxyRecords>>,
    shutdown: CancellationToken,
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Clone)]
struct Relay {
    records: Arc<Mutex<ProxyRecords>>,
    /// Every CONNECT is answered this (after being recorded) instead of tunnelled.
    refuse: Option<StatusCode>,
    /// Forwards plain-http requests, itself never through a proxy.
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl ForwardProxy {
    pub async fn start() -> ForwardProxy {
        ForwardProxy::serve(None).await
    }

    /// A proxy that answers every CONNECT `status` (407 with a `Proxy-Authenticate`).
    pub async fn refusing(status: StatusCode) -> ForwardProxy {
        ForwardProxy::serve(Some(status)).await
    }

    async fn serve(refuse: Option<StatusCode>) -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let records = Arc::default();
        let shutdown = CancellationToken::new();
        let relay = Relay {
            records: Arc::clone(&records),
            refuse,
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(accept(listener, relay));
        ForwardProxy {
            addr,
            records,
            shutdown,
        }
    }

    /// `http://127.0.0.1:PORT`, the value of `HTTPS_PROXY` or `HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn records(&self) -> ProxyRecords {
        self.records.lock().unwrap().clone()
    }
}

async fn accept(listener: TcpListener, relay: Relay) {
    loop {
        let stream = tokio::select! {
            _ = relay.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let relay = relay.clone();
        tokio::spawn(async move {
            let shutdown = relay.shutdown.clone();
            let service = hyper::service::service_fn(move |request| {
                let relay = relay.clone();
                async move { Ok::<_, Infallible>(relay.handle(request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = connection => {}
            }
        });
    }
}

impl Relay {
    async fn handle(self, request: Request<Incoming>) -> Response<Body> {
        if request.method() == Method::CONNECT {
            self.tunnel(request).await
        } else {
            self.forward(request).await
        }
    }

    /// Records the CONNECT, connects to its target, answers 200 and relays both ways.
    async fn tunnel(self, request: Request<Incoming>) -> Response<Body> {
        let mut head = format!("CONNECT {} {:?}", request.uri(), request.version());
        for (name, value) in request.headers() {
            head.push_str(&format!(
                "\n{name}: {}",
                value.to_str().unwrap_or("(not text)")
            ));
        }
        self.records.lock().unwrap().connects.push(head);
        if let Some(code) = self.refuse {
            let mut response = status(code);
            if code == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
                response.headers_mut().insert(
                    header::PROXY_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"proxy\""),
                );
            }
            return response;
        }
        let Some(target) = request.uri().authority().map(ToString::to_string) else {
            return status(StatusCode::BAD_REQUEST);
        };
        let Ok(upstream) = TcpStream::connect(&target).await else {
            return status(StatusCode::BAD_GATEWAY);
        };
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(request).await else {
                return;
            };
            let (mut client_read, mut client_write) = tokio::io::split(TokioIo::new(upgraded));
            let (mut upstream_read, mut upstream_write) = upstream.into_split();
            let records = Arc::clone(&self.records);
            let outbound = async move {
                let mut buffer = vec![0u8; 16 * 1024];
                while let Ok(read) = client_read.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    records
                        .lock()
                        .unwrap()
                        .tunnelled
                        .extend_from_slice(&buffer[..read]);
                    if upstream_write.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
                let _ = upstream_write.shutdown().await;
            };
            let inbound = async move {
                let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => {}
                _ = futures::future::join(outbound, inbound) => {}
            }
        });
        status(StatusCode::OK)
    }

    /// Records the request line and sends the request on to the absolute URL it names.
    async fn forward(self, request: Request<Incoming>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        self.records.lock().unwrap().requests.push(format!(
            "{} {} {:?}",
            parts.method, parts.uri, parts.version
        ));
        if parts.uri.scheme().is_none() {
            // Origin-form: a client that took this proxy for the server.
            return status(StatusCode::BAD_REQUEST);
        }
        let body = axum::body::to_bytes(Body::new(body), 16 << 20)
            .await
            .unwrap_or_default();
        let mut headers = parts.headers;
        for hop in [
            header::HOST,
            header::CONNECTION,
            header::PROXY_AUTHORIZATION,
            header::TE,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
        ] {
            headers.remove(hop);
        }
        headers.remove("proxy-connection");
        headers.remove("keep-alive");
        let answer = self
            .http
            .request(parts.method, parts.uri.to_string())
            .headers(headers)
            .body(body)
            .send()
            .await;
        let Ok(answer) = answer else {
            return status(StatusCode::BAD_GATEWAY);
        };
        let code = answer.status();
        let mut headers: HeaderMap = answer.headers().clone();
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        headers.remove(header::CONNECTION);
        let body = answer.bytes().await.unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = code;
        *response.headers_mut() = headers;
        response
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = code;
    response
}

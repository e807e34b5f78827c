//! A TLS front on its own loopback port, as a Server/DC instance behind the customer's own
//! CA would be: a certificate for `localhost` and 127.0.0.1 signed by a CA made at test time
//! that nothing else trusts, HTTP/2 or HTTP/1.1 as negotiated, each request forwarded to the
//! simulator with `X-Forwarded-Proto: https` (so its links and artifact locations name this
//! front, in https, as a load balancer's backend would).

// Shared by several tests of the one test binary; not every test uses every helper.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_util::sync::CancellationToken;

/// How one TLS handshake ended: the protocol negotiated (`h2`, `http/1.1`), or the error the
/// front saw (a client that does not trust the certificate sends an alert and leaves).
pub type Handshake = Result<String, String>;

/// A TLS listener in front of the simulator, with the CA that signed its certificate on disk.
pub struct TlsFront {
    addr: SocketAddr,
    /// Holds `ca.pem`, the file `--ca-cert` or `SSL_CERT_FILE` points at.
    dir: TempDir,
    handshakes: Arc<Mutex<Vec<Handshake>>>,
    shutdown: CancellationToken,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What every connection's requests need.
#[derive(Clone)]
struct Forward {
    /// `http://IP:PORT` of the simulator.
    target: String,
    /// This front's `IP:PORT`, sent on as `Host`.
    host: HeaderValue,
    /// Never through a proxy: the tests set proxies for the binary, not for this process.
    http: reqwest::Client,
}

impl TlsFront {
    /// A front on 127.0.0.1 (port chosen by the system) to the simulator at `target`.
    pub async fn start(target: SocketAddr) -> TlsFront {
        let (ca_pem, config) = certified();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_pem).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::default();
        let shutdown = CancellationToken::new();
        let forward = Forward {
            target: format!("http://{target}"),
            host: HeaderValue::from_str(&addr.to_string()).unwrap(),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        tokio::spawn(accept(
            listener,
            TlsAcceptor::from(Arc::new(config)),
            forward,
            Arc::clone(&handshakes),
            shutdown.clone(),
        ));
        TlsFront {
            addr,
            dir,
            handshakes,
            shutdown,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `127.0.0.1:PORT`, as a proxy's CONNECT names it.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// The test CA's certificate, PEM.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The front's temp dir (for a test's own files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every handshake so far, in the order they ended.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.lock().unwrap().clone()
    }
}

/// The test CA's certificate (PEM) and a server config whose certificate it signed, for
/// `localhost` and 127.0.0.1, offering HTTP/2 and HTTP/1.1. Nothing on the system trusts
/// this CA.
fn certified() -> (String, ServerConfig) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "cmafleet test CA (private)");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf.signed_by(&key, &ca).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (ca.pem(), config)
}

async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    forward: Forward,
    handshakes: Arc<Mutex<Vec<Handshake>>>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let acceptor = acceptor.clone();
        let forward = forward.clone();
        let handshakes = Arc::clone(&handshakes);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(error) => {
                    handshakes.lock().unwrap().push(Err(error.to_string()));
                    return;
                }
            };
            let protocol = tls.get_ref().1.alpn_protocol().unwrap_or(b"http/1.1");
            let protocol = String::from_utf8_lossy(protocol).into_owned();
            handshakes.lock().unwrap().push(Ok(protocol));
            let service = hyper::service::service_fn(move |request| {
                let forward = forward.clone();
                async move { Ok::<_, Infallible>(forward.relay(request).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = connection => {}
            }
        });
    }
}

impl Forward {
    /// Sends `request` on to the simulator as it came, naming this front as `Host` and
    /// https as the scheme the client used.
    async fn relay(self, request: Request<Incoming>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(Body::new(body), 16 << 20)
            .await
            .unwrap_or_default();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/".to_owned(), ToString::to_string);
        let mut headers = parts.headers;
        headers.insert(header::HOST, self.host.clone());
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let answer = self
            .http
            .request(parts.method, format!("{}{path}", self.target))
            .headers(headers)
            .body(body)
            .send()
            .await;
        let Ok(answer) = answer else {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            return response;
        };
        let status = answer.status();
        let mut headers = answer.headers().clone();
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        headers.remove(header::CONNECTION);
        let body = answer.bytes().await.unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

//! The console's own HTTPS, so a district server needs no reverse proxy and
//! the visitor's phone (a service worker needs a secure origin) reaches it
//! off loopback. A [`TlsListener`] hands axum connections whose TLS
//! handshake is done — each handshake in its own task, with a time limit, so
//! a slow client holds up nobody else. The certificate and key are read
//! again on [`Certificates::reload`] (`serve` calls it on SIGHUP), so a
//! renewed certificate needs no restart; a file that does not load leaves
//! the one in use. The plain listener then only redirects to HTTPS
//! ([`redirect_to_https`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take over its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The certificate chain and key files (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The certificate in use, replaceable while the server runs.
#[derive(Debug, Clone)]
pub struct Certificates {
    files: Arc<TlsFiles>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certificates| certificates.collect())
        .map_err(|error| format!("{}: {error}", files.cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: it holds no PEM certificate", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|error| format!("{}: no PEM private key ({error})", files.key.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| format!("{} and {}: {error}", files.cert.display(), files.key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Certificates {
    /// Reads the files; a wrong path, a file that is not PEM or a key that
    /// does not match is named.
    pub fn load(files: TlsFiles) -> Result<Certificates, String> {
        let config = load(&files)?;
        Ok(Certificates { files: Arc::new(files), current: Arc::new(RwLock::new(config)) })
    }

    /// Reads the files again; on failure the certificate in use stays.
    pub fn reload(&self) -> Result<(), String> {
        let config = load(&self.files)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner)))
    }
}

/// Connections with their handshake done, for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, certificates: Certificates) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (done, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, most likely: wait, do not spin.
                        tracing::warn!(%error, "HTTPS accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = certificates.acceptor();
                let done = done.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = done.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local, accepting })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task is gone only when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The client's address on an HTTPS connection, as `axum::serve` learns it.
#[derive(Debug, Clone, Copy)]
pub struct TlsPeer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> TlsPeer {
        TlsPeer(*stream.remote_addr())
    }
}

/// `router` served over a [`TlsListener`]: each request carries the client's
/// address as `ConnectInfo<SocketAddr>`, as on plain HTTP, for sign-in
/// limits, the audit log and `/metrics`. Runs until `shutdown` completes.
pub async fn serve_tls(
    listener: TlsListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn(
        |axum::extract::ConnectInfo(TlsPeer(peer)): axum::extract::ConnectInfo<TlsPeer>,
         mut request: axum::extract::Request,
         next: axum::middleware::Next| async move {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            next.run(request).await
        },
    ));
    axum::serve(listener, router.into_make_service_with_connect_info::<TlsPeer>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// The plain listener's whole answer when the console serves HTTPS: the same
/// path on `https://` at `https_port` (308, so a form's POST stays a POST).
pub fn redirect_to_https(https_port: u16) -> Router {
    Router::new().fallback(move |headers: HeaderMap, uri: Uri| async move { redirect(&headers, &uri, https_port) })
}

fn redirect(headers: &HeaderMap, uri: &Uri, https_port: u16) -> Response {
    let Some(host) = headers.get(header::HOST).and_then(|value| value.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, "use https://\n").into_response();
    };
    // The host without its port (an IPv6 literal keeps its brackets).
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '/' || c == '@' || c == '\\') {
        return (StatusCode::BAD_REQUEST, "use https://\n").into_response();
    }
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
    Redirect::permanent(&format!("https://{name}{port}{path}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewed_certificate_is_taken_and_a_broken_one_leaves_the_old() {
        let folder = anxin_testkit::private_folder("console-tls");
        anxin_testkit::make_test_certificates(&folder);
        let files = TlsFiles { cert: folder.join("server.crt"), key: folder.join("server.key") };
        let certificates = Certificates::load(files.clone()).unwrap();
        let before = Arc::as_ptr(&certificates.current.read().unwrap());
        assert!(certificates.reload().is_ok(), "the same files again");
        assert_ne!(Arc::as_ptr(&certificates.current.read().unwrap()), before, "read anew");
        let in_use = Arc::as_ptr(&certificates.current.read().unwrap());
        std::fs::write(&files.key, "not a key").unwrap();
        let refused = certificates.reload().unwrap_err();
        assert!(refused.contains("server.key"), "{refused}");
        assert_eq!(Arc::as_ptr(&certificates.current.read().unwrap()), in_use, "the one in use stays");
        assert!(Certificates::load(TlsFiles { cert: folder.join("nowhere.crt"), key: files.key }).is_err());
        let _ = std::fs::remove_dir_all(folder);
    }

    #[test]
    fn plain_http_is_sent_to_the_same_path_on_https() {
        let redirected = |host: &str, uri: &str, port: u16| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, host.parse().unwrap());
            let response = redirect(&headers, &uri.parse().unwrap(), port);
            (response.status(), response.headers().get(header::LOCATION).map(|l| l.to_str().unwrap().to_string()))
        };
        assert_eq!(
            redirected("anxin.example:8080", "/elders/7?x=1", 8443),
            (StatusCode::PERMANENT_REDIRECT, Some("https://anxin.example:8443/elders/7?x=1".into()))
        );
        assert_eq!(redirected("10.0.0.2", "/", 443).1.as_deref(), Some("https://10.0.0.2/"));
        assert_eq!(redirected("[::1]:8080", "/login", 8443).1.as_deref(), Some("https://[::1]:8443/login"));
        assert_eq!(redirected("evil.example/x@", "/", 443).0, StatusCode::BAD_REQUEST);
    }
}

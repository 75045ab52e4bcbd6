//! The HTTP/1.1 accept loop of every atlhyper-rs server (the agent's receiver, the node daemon's
//! `/metrics`, the master): a header read timeout, a bound on open connections, and a graceful
//! shutdown. (`axum::serve` sets no header timeout, so a client dribbling header
//! bytes would keep its connection, and a descriptor, forever.)

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;

use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::tls::{ClientCertificate, ServerTls};

/// Default time a client has to send a request's complete headers.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// How long the atlhyper-rs HTTP clients keep an idle connection for reuse. A server using
/// [`serve`] closes a kept-alive connection that stays idle for its header timeout (10 s by
/// default), and a request sent just as the server closes fails; dropping idle connections
/// well before that avoids the race. Keep header timeouts above this.
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(8);
const _: () = assert!(CLIENT_IDLE_TIMEOUT.as_millis() < DEFAULT_HEADER_TIMEOUT.as_millis());

/// Limits of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Time a client has to send a request's complete headers, counted from the connection's
    /// first read and, on a kept-alive connection, from the end of the previous response; then
    /// the connection is closed.
    pub header_timeout: Duration,
    /// Connections served at once; while this many are open, accepting waits.
    pub max_connections: usize,
}

/// Serves `router` on `listener` over plain HTTP; see [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, router, limits, None, shutdown).await;
}

/// Serves `router` on `listener` until `shutdown` completes, over TLS when `tls` is given;
/// every request carries the peer's `ConnectInfo<SocketAddr>` (and, when the client presented
/// one, its [`ClientCertificate`]). Then it stops accepting and waits for open connections: idle
/// ones close at once, in-flight requests finish, half-sent headers end at the header timeout.
/// Accept errors (e.g. out of descriptors) are logged and retried after a short, growing pause.
///
/// With TLS, the handshake runs in the connection's task (one slow client never holds up the
/// accept loop) and must end within the header timeout too; a failed handshake is
/// logged with the peer and rustls' reason. The certificate files are looked at every
/// [`TlsSettings::reload_interval`] while serving and a changed pair is used from the next
/// handshake on.
///
/// [`TlsSettings::reload_interval`]: crate::tls::TlsSettings::reload_interval
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let reloader = tls.clone().map(|tls| tokio::spawn(tls.watch_files()));
    let mut shutdown = pin!(shutdown);
    let mut pause = Duration::from_millis(10);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break }; // never closed
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?pause, "accepting a connection failed");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = &mut shutdown => break,
                }
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        pause = Duration::from_millis(10);
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %peer, "TCP_NODELAY not set");
        }
        let router = router.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let outcome = match tls {
                None => serve_connection(&http, stream, router, peer, None, watcher).await,
                Some(tls) => match handshake(&tls, stream, peer, header_timeout).await {
                    Some(stream) => {
                        let client_cert = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .map(|cert| ClientCertificate(Arc::new(cert.clone().into_owned())));
                        serve_connection(&http, stream, router, peer, client_cert, watcher).await
                    }
                    None => Ok(()),
                },
            };
            if let Err(e) = outcome {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    graceful.shutdown().await;
}

/// Serves one connection (plain or TLS) until it closes or the shutdown closes it; every
/// request carries the peer's address and certificate.
async fn serve_connection<S>(
    http: &http1::Builder,
    stream: S,
    router: Router,
    peer: SocketAddr,
    client_cert: Option<ClientCertificate>,
    watcher: Watcher,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut request: axum::http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(cert) = &client_cert {
            request.extensions_mut().insert(cert.clone());
        }
        request
    });
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    watcher.watch(connection).await
}

/// The TLS handshake of one connection within `limit`; `None` (logged) when it fails or times
/// out.
async fn handshake(
    tls: &ServerTls,
    stream: TcpStream,
    peer: SocketAddr,
    limit: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        // A TCP probe (kubelet, a load balancer) connects and closes without a word: not worth
        // a warning.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::debug!(%peer, "connection closed before the TLS handshake ended");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, timeout = ?limit, "TLS handshake timed out; connection closed");
            None
        }
    }
}

/// Errors of one connection that never made it out of the backlog; the next accept is fine.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
    const BOUND: Duration = Duration::from_secs(5);

    /// A server whose `/peer` answers the peer address it saw and `/slow` answers after 200 ms.
    async fn start(
        max_connections: usize,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let router = Router::new()
            .route(
                "/peer",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    "done"
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ServeLimits {
            header_timeout: HEADER_TIMEOUT,
            max_connections,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, limits, async move {
            let _ = stopped.await;
        }));
        (addr, stop, server)
    }

    /// Reads until the server closes the connection; what it sent.
    async fn read_to_close(s: &mut TcpStream) -> String {
        let mut out = Vec::new();
        tokio::time::timeout(BOUND, s.read_to_end(&mut out))
            .await
            .expect("the server closes the connection in time")
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn get_path(addr: SocketAddr, path: &str) -> (TcpStream, String) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let answer = read_to_close(&mut s).await;
        (s, answer)
    }

    #[tokio::test]
    async fn partial_headers_and_silence_are_cut_at_the_header_timeout() {
        let (addr, stop, server) = start(16).await;
        let started = Instant::now();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut dribbler = TcpStream::connect(addr).await.unwrap();
        dribbler
            .write_all(b"POST /peer HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        // One header byte every 50 ms: the timeout covers the whole header, not each read.
        let mut sent = 0;
        while sent < 100 && dribbler.write_all(b"a").await.is_ok() {
            sent += 1;
            let mut probe = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(50), dribbler.read(&mut probe)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => panic!("the server answered a half-sent request"),
                Err(_) => {}
            }
        }
        let dribbled_for = started.elapsed();
        assert!(sent < 100, "the dribbling connection was never closed");
        assert!(
            dribbled_for >= HEADER_TIMEOUT - Duration::from_millis(20),
            "closed before the header timeout ({dribbled_for:?})"
        );
        assert_eq!(read_to_close(&mut silent).await, "", "no answer to silence");
        assert!(started.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(20));

        // A complete request is served, with the peer address the router expects.
        let (s, answer) = get_path(addr, "/peer").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.ends_with(&s.local_addr().unwrap().to_string()),
            "{answer}"
        );
        stop.send(()).unwrap();
        tokio::time::timeout(BOUND, server).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn open_connections_are_bounded() {
        let (addr, stop, server) = start(1).await;
        let started = Instant::now();
        // Takes the only slot until the header timeout closes it.
        let mut hog = TcpStream::connect(addr).await.unwrap();
        hog.write_all(b"GET /peer HTTP/1.1\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, answer) = get_path(addr, "/peer").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            started.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(20),
            "the second connection was served while the first held the only slot"
        );
        assert_eq!(read_to_close(&mut hog).await, "");
        stop.send(()).unwrap();
        tokio::time::timeout(BOUND, server).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
        let (addr, stop, server) = start(16).await;
        // An idle kept-alive connection must not hold the shutdown up.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        idle.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        let slow = tokio::spawn(get_path(addr, "/slow"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stopping = Instant::now();
        stop.send(()).unwrap();
        let (_, answer) = tokio::time::timeout(BOUND, slow).await.unwrap().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        tokio::time::timeout(BOUND, server).await.unwrap().unwrap();
        assert!(
            stopping.elapsed() < HEADER_TIMEOUT,
            "shutdown waited for the idle connection"
        );
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    }
}

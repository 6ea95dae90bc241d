//! Serving the router over HTTP/1.1 with the timeouts `axum::serve` lacks.
//!
//! HTTP/1.1 only, as Ollama serves: every Ollama client speaks it, and a connection that
//! also listens for HTTP/2 cost about 8 KiB more for as long as it was open (ADR 28).
//!
//! A client that opens a connection and sends its headers a byte a minute, or starts a
//! body and stops, would otherwise hold a connection and a task forever. Headers must
//! arrive within `FOREMAN_HEADER_TIMEOUT` (else the connection is closed without an
//! answer); a body may pause for at most `FOREMAN_BODY_TIMEOUT` between chunks (else the
//! request is answered 408).

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// The connection timeouts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) header: Duration,
    pub(crate) body: Duration,
}

/// Accepts connections until `shutdown` completes, then lets open ones finish their
/// current request (idle keep-alive connections are closed at once) and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // Around the router as a whole rather than through `Router::layer`, which would box
    // one more future for every request.
    let app = tower::ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(timeouts.body))
        .service(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(|request: Request<Incoming>| request.map(Body::new));
        let service = TowerToHyperService::new(service);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(connection).await {
                tracing::trace!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

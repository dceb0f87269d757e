//! The HTTP server every service runs: HTTP/1 with the bounds a public endpoint needs (request
//! head size, head and body deadlines), graceful drain on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// Longest time a client may take to send a request's headers; past it the connection is
/// closed (a slowloris client cannot hold connections open).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest pause between two pieces of a request body; past it the request fails with 408.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest time a request body may take in all (a body trickling in byte by byte ends here).
pub const BODY_TOTAL_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest request head (request line and headers); a larger one gets 431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long open connections may take to finish after shutdown before they are closed.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `listen` and serves `router` until `shutdown` is cancelled; returns the bound address
/// (useful with port 0) and the server task.
///
/// HTTP/1 with bounds a public endpoint needs and `axum::serve` does not set: request heads above
/// [`MAX_HEAD_BYTES`] get 431, heads not received within [`HEADER_READ_TIMEOUT`] close the
/// connection, bodies that stall for [`BODY_IDLE_TIMEOUT`] or last over [`BODY_TOTAL_TIMEOUT`]
/// fail the request with 408; on shutdown, connections get [`DRAIN_TIMEOUT`] to finish.
pub async fn serve(
    listen: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Listen {
            addr: listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| Error::Listen {
        addr: listen,
        source,
    })?;
    tracing::info!(address = %bound, "http listening");
    let router = router.layer(axum::middleware::from_fn(bound_request_body));
    let task = tokio::spawn(accept_until(listener, router, shutdown));
    Ok((bound, task))
}

async fn accept_until(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEAD_BYTES);
    let drain = CancellationToken::new();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, _peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let drain = drain.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                () = drain.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error while draining");
            }
        });
    }
    drop(listener);
    drain.cancel();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain timeout are closed"
        );
        connections.abort_all();
    }
}

/// Wraps the request body so that reading it fails once it stalls or takes too long.
async fn bound_request_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::Body::new(TimedBody::new(body));
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

/// A request body with an idle and a total deadline.
struct TimedBody {
    inner: axum::body::Body,
    idle: std::pin::Pin<Box<tokio::time::Sleep>>,
    total: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl TimedBody {
    fn new(inner: axum::body::Body) -> Self {
        Self {
            inner,
            idle: Box::pin(tokio::time::sleep(BODY_IDLE_TIMEOUT)),
            total: Box::pin(tokio::time::sleep(BODY_TOTAL_TIMEOUT)),
        }
    }
}

/// A request body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
pub enum BodyTimeout {
    /// No data for [`BODY_IDLE_TIMEOUT`].
    #[error("the request body sent no data for {:?}", BODY_IDLE_TIMEOUT)]
    Idle,
    /// Not complete within [`BODY_TOTAL_TIMEOUT`].
    #[error("the request body was not complete within {:?}", BODY_TOTAL_TIMEOUT)]
    Total,
}

impl http_body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<http_body::Frame<Self::Data>, Self::Error>>>
    {
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(context) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + BODY_IDLE_TIMEOUT;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => {
                if this.total.as_mut().poll(context).is_ready() {
                    return Poll::Ready(Some(Err(BodyTimeout::Total.into())));
                }
                if this.idle.as_mut().poll(context).is_ready() {
                    return Poll::Ready(Some(Err(BodyTimeout::Idle.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on `listen` while `service` runs, and stops the listener only after `service`
/// returned, so health probes and metrics stay available through the drain.
pub async fn serve_while<T>(
    listen: SocketAddr,
    router: Router,
    service: impl std::future::Future<Output = T>,
) -> Result<T> {
    let http_shutdown = CancellationToken::new();
    let (_address, task) = serve(listen, router, http_shutdown.clone()).await?;
    let outcome = service.await;
    http_shutdown.cancel();
    let _ = task.await;
    Ok(outcome)
}

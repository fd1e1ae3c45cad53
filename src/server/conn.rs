//! The kubelet API's connections under [`Limits`]: the cap on open connections, the TLS
//! handshake deadline, and Go `net/http`'s header-read and idle deadlines, which hyper does
//! not tell apart (its header timer runs from the moment it waits for a request). A
//! [`GuardAcceptor`] takes a slot or closes the connection at once, runs the TLS handshake
//! under its deadline and wraps the stream in a [`Guarded`] stream that fails a pending read
//! once the connection's current deadline passes. What that deadline is depends on whether
//! a request is being answered, which [`track`] (a middleware) reports through the
//! connection's [`Phase`]. A connection whose client showed no certificate gets no idle
//! time unless a request on it authenticates with a bearer token. Layer 6.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum_server::accept::Accept;
use axum_server::tls::TlsService;
use axum_server::tls_rustls::RustlsAcceptor;
use futures::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use super::limits::Limits;

/// Where a connection is in its request cycle, and until when it may stay there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the head of a request; it must be complete by the deadline.
    Head(Instant),
    /// Kept alive between requests, nothing received yet; closed at the deadline.
    Idle(Instant),
    /// Answering this many requests (a streamed body counts until it ends): no deadline,
    /// a followed log may be quiet for hours.
    Busy(usize),
}

impl Phase {
    /// When the connection is closed unless something happens first.
    pub fn deadline(self) -> Option<Instant> {
        match self {
            Phase::Head(at) | Phase::Idle(at) => Some(at),
            Phase::Busy(_) => None,
        }
    }

    /// Bytes arrived at `now`: an idle connection starts a request head, which must be
    /// complete within `header_timeout`. A head already under way keeps its deadline, so
    /// trickling bytes never extend it.
    pub fn on_bytes(self, now: Instant, header_timeout: Duration) -> Self {
        match self {
            Phase::Idle(_) => Phase::Head(now + header_timeout),
            other => other,
        }
    }

    /// A request's head was read and it is being answered.
    pub fn on_request(self) -> Self {
        match self {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1),
        }
    }

    /// A response ended (its body sent or dropped) at `now`; with none left the connection
    /// may idle for `idle_timeout`.
    pub fn on_response_end(self, now: Instant, idle_timeout: Duration) -> Self {
        match self {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(now + idle_timeout),
        }
    }
}

/// What the stream and the request middleware share about one connection.
#[derive(Debug)]
pub struct Connection {
    header_timeout: Duration,
    /// The idle time of a connection whose caller authenticated.
    keep_alive: Duration,
    state: Mutex<ConnState>,
}

#[derive(Debug)]
struct ConnState {
    phase: Phase,
    /// How long it may idle between requests.
    idle_timeout: Duration,
    /// The reader waiting for bytes, woken when its deadline changes from outside.
    reader: Option<Waker>,
}

impl Connection {
    fn new(limits: &Limits, now: Instant) -> Self {
        Self {
            header_timeout: limits.header_read_timeout,
            keep_alive: limits.idle_timeout,
            state: Mutex::new(ConnState {
                phase: Phase::Head(now + limits.header_read_timeout),
                idle_timeout: limits.idle_timeout,
                reader: None,
            }),
        }
    }

    /// The handshake ended at `now`: the first request's head is due `header_timeout`
    /// later. A client without a certificate gets one request (its 401 closes the
    /// connection) and no idle time.
    fn handshake_done(&self, now: Instant, anonymous: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.phase = Phase::Head(now + self.header_timeout);
        if anonymous {
            state.idle_timeout = Duration::ZERO;
        }
    }

    /// A request of a client without a certificate authenticated with a bearer token: its
    /// connection may idle between requests like any authenticated one (a scraper's).
    pub fn token_authenticated(&self) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .idle_timeout = self.keep_alive;
    }

    fn idle_timeout(&self) -> Duration {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .idle_timeout
    }

    /// Changes the phase and wakes a waiting reader so it re-arms its timer. The lock is
    /// never held across an await (nothing here awaits), hence a std mutex.
    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let reader = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.phase = change(state.phase);
            state.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// The deadline now, remembering `waker` as the reader to wake on a change.
    fn deadline(&self, waker: &Waker) -> Option<Instant> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.reader = Some(waker.clone());
        state.phase.deadline()
    }
}

/// Ends a request's share of the connection when dropped (with the response body).
struct RequestGuard(Arc<Connection>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let idle = self.0.idle_timeout();
        self.0
            .update(|phase| phase.on_response_end(Instant::now(), idle));
    }
}

/// A connection marked busy until this drops: an upgraded exec session owns its
/// connection for as long as the command runs, quiet or not.
pub struct Held {
    _guard: RequestGuard,
}

/// Marks `connection` busy until the returned guard drops.
pub fn hold(connection: Arc<Connection>) -> Held {
    connection.update(Phase::on_request);
    Held {
        _guard: RequestGuard(connection),
    }
}

/// Middleware: marks the connection busy from the request's head until its response body
/// ends, so a quiet followed log is never cut while a silent connection is.
pub async fn track(request: Request, next: Next) -> Response {
    let Some(connection) = request.extensions().get::<Arc<Connection>>().cloned() else {
        return next.run(request).await;
    };
    connection.update(Phase::on_request);
    let guard = RequestGuard(connection);
    let response = next.run(request).await;
    response.map(|body| {
        let chunks = futures::stream::unfold(
            (body.into_data_stream(), guard),
            |(mut chunks, guard)| async move {
                let chunk = chunks.next().await?;
                Some((chunk, (chunks, guard)))
            },
        );
        Body::from_stream(chunks)
    })
}

/// Accepts connections within [`Limits`]: a slot of `max_connections` or an immediate
/// close, then the TLS handshake within its deadline.
#[derive(Clone)]
pub struct GuardAcceptor {
    tls: RustlsAcceptor,
    slots: Arc<Semaphore>,
    limits: Arc<Limits>,
}

impl GuardAcceptor {
    /// An acceptor for TLS `tls` under `limits`.
    pub fn new(tls: RustlsAcceptor, limits: Arc<Limits>) -> Self {
        Self {
            tls: tls.handshake_timeout(limits.tls_handshake_timeout),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
        }
    }
}

type TlsStream = <RustlsAcceptor as Accept<TcpStream, Router>>::Stream;
type Accepted = (Guarded<TlsStream>, TlsService<Router>);

impl Accept<TcpStream, Router> for GuardAcceptor {
    type Stream = Guarded<TlsStream>;
    type Service = TlsService<Router>;
    type Future = Pin<Box<dyn Future<Output = io::Result<Accepted>> + Send>>;

    fn accept(&self, stream: TcpStream, service: Router) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let Ok(slot) = this.slots.clone().try_acquire_owned() else {
                tracing::warn!(
                    peer = ?stream.peer_addr().ok(),
                    max = this.limits.max_connections,
                    "kubelet API: too many connections, closing a new one"
                );
                return Err(io::Error::other("too many connections"));
            };
            // Streams (exec, attach, port-forward) carry small interactive writes: Nagle's
            // algorithm would hold each behind the peer's delayed ACK.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "kubelet API: cannot set TCP_NODELAY");
            }
            let connection = Arc::new(Connection::new(&this.limits, Instant::now()));
            // The router, for this connection only, hands every request its connection.
            let router = service.layer(axum::Extension(connection.clone()));
            let (tls, service) = this.tls.accept(stream, router).await?;
            let anonymous = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_none_or(<[_]>::is_empty);
            connection.handshake_done(Instant::now(), anonymous);
            Ok((Guarded::new(tls, connection, slot), service))
        })
    }
}

/// A connection's stream: holds its slot, and fails a read that waits past the deadline.
pub struct Guarded<S> {
    inner: S,
    connection: Arc<Connection>,
    timer: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl<S> Guarded<S> {
    fn new(inner: S, connection: Arc<Connection>, slot: OwnedSemaphorePermit) -> Self {
        Self {
            inner,
            connection,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            _slot: slot,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let header = this.connection.header_timeout;
                    this.connection
                        .update(|phase| phase.on_bytes(Instant::now(), header));
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Pending => {}
        }
        let Some(deadline) = this.connection.deadline(cx.waker()) else {
            return Poll::Pending;
        };
        if this.timer.deadline() != deadline {
            this.timer.as_mut().reset(deadline);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client sent no request in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(90);

    #[test]
    fn a_head_keeps_its_deadline_however_slowly_bytes_trickle_in() {
        let start = Instant::now();
        let head = Phase::Head(start + HEADER);
        let later = start + Duration::from_secs(9);
        assert_eq!(head.on_bytes(later, HEADER), head);
        assert_eq!(head.deadline(), Some(start + HEADER));
    }

    #[test]
    fn an_idle_connection_gets_the_header_deadline_from_its_first_byte() {
        let start = Instant::now();
        let idle = Phase::Busy(1).on_response_end(start, IDLE);
        assert_eq!(idle, Phase::Idle(start + IDLE));
        let first_byte = start + Duration::from_secs(60);
        assert_eq!(
            idle.on_bytes(first_byte, HEADER),
            Phase::Head(first_byte + HEADER)
        );
    }

    #[test]
    fn a_connection_answering_has_no_deadline_until_its_last_response_ends() {
        let start = Instant::now();
        let busy = Phase::Head(start + HEADER).on_request();
        assert_eq!(busy.deadline(), None);
        assert_eq!(busy.on_bytes(start, HEADER), busy);
        let two = busy.on_request();
        assert_eq!(two.on_response_end(start, IDLE), Phase::Busy(1));
        assert_eq!(
            two.on_response_end(start, IDLE)
                .on_response_end(start, IDLE)
                .deadline(),
            Some(start + IDLE)
        );
    }

    #[test]
    fn a_connection_without_certificate_has_no_idle_time() {
        let start = Instant::now();
        let connection = Connection::new(&Limits::default(), start);
        assert_eq!(connection.idle_timeout(), IDLE);
        connection.handshake_done(start, true);
        assert_eq!(connection.idle_timeout(), Duration::ZERO);
        assert_eq!(
            Phase::Busy(1).on_response_end(start, connection.idle_timeout()),
            Phase::Idle(start)
        );
        connection.token_authenticated();
        assert_eq!(connection.idle_timeout(), IDLE);
    }
}

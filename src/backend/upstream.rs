//! Forwarding: a pooled HTTP/1.1 connection to the backend, the request body streamed up while
//! its signed digest is verified, and the backend's answer read back.
//!
//! The newest verified piece of the body is held back until the whole-body checks pass, so a body
//! that fails verification never reaches the backend whole: the upstream connection is dropped
//! and the backend discards the incomplete request.

use std::time::Duration;

use crate::backend::aws_chunked::Chunker;
use crate::backend::session::BackendSession;
use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::body::BodyVerifier;
use crate::request::route::BackendRuntime;
use crate::server::coalesce::Coalesced;
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::net::TcpStream;

/// How long an idle pooled backend connection is kept.
const UPSTREAM_IDLE: Duration = Duration::from_secs(55);
/// How many idle connections are kept per backend address and TLS settings (the oldest goes
/// first).
const IDLE_PER_BACKEND: usize = 128;

/// The gateway's pool of idle backend connections: per backend address and TLS settings, the
/// connections whose
/// last exchange completed, newest last. Taking one is a lock and a pop — no task per idle
/// connection, no `getpeername` per reuse (pingora's pool does both): a connection the backend
/// closed while it was idle is seen by a read attempt when it is taken (the runtime has
/// recorded its end), and one that dies just then is the stale connection `forward` retries
/// (but an object's write or delete written whole: the backend may have carried it out).
#[derive(Default)]
pub struct Forwarder {
    idle: Mutex<Pool>,
}

/// The idle connections by backend, and when they were last swept.
struct Pool {
    lists: crate::ConfigMap<PoolKey, Vec<Idle>>,
    swept: Instant,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            lists: crate::ConfigMap::default(),
            swept: Instant::now(),
        }
    }
}

/// How often the whole pool is swept of connections idle too long (on a release).
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// A pooled connection: its stream, its header cork (plain TCP), since when it is idle.
struct Idle {
    stream: Stream,
    cork: Option<Arc<AtomicBool>>,
    since: Instant,
}

/// Where a connection goes: the backend's address and, for TLS, which TLS settings (server
/// name, roots) checked it — two backends behind one address never share a TLS connection.
type PoolKey = (SocketAddr, Option<u64>);

/// One exchange with a backend on a (possibly reused) connection.
pub struct Upstream {
    pub session: BackendSession,
    key: PoolKey,
    pub reused: bool,
    /// Holds the request header back for the body (`server::coalesce`), on plain TCP.
    cork: Option<Arc<AtomicBool>>,
    /// The request's body was not sent whole (the backend stopped reading it): bytes of it
    /// may still be in flight, so the connection is never pooled again.
    pub body_cut_short: bool,
    /// An earlier try of this request was written to the backend and its answer lost: the
    /// backend may have acted on it before this try (`request::forward::transmit`).
    pub sent_before: bool,
}

impl Forwarder {
    /// Takes a pooled connection to the backend or opens one (plain TCP, or TLS by rustls);
    /// `now` (the caller's reading of the clock) judges how long the pooled ones were idle.
    pub async fn connect(
        &self,
        backend: &BackendRuntime,
        now: Instant,
    ) -> pingora::Result<Upstream> {
        let key = (backend.addr(), backend.tls.as_ref().map(|t| t.id()));
        let (stream, cork, reused) = match self.take_idle(key, now) {
            Some(idle) => (idle.stream, idle.cork, true),
            None => {
                // Boxed: a pooled connection is the common case, and every request's future
                // would otherwise carry the space of a connect and a TLS handshake.
                let (stream, cork) = Box::pin(open(backend, key.0)).await?;
                (stream, cork, false)
            }
        };
        let mut session = BackendSession::new(stream);
        session.read_timeout = Some(backend.read_timeout);
        session.write_timeout = Some(backend.read_timeout);
        Ok(Upstream {
            session,
            key,
            reused,
            cork,
            body_cut_short: false,
            sent_before: false,
        })
    }

    /// The newest idle connection to `key` that is still open, if any (the check of each
    /// candidate is made outside the pool's lock).
    fn take_idle(&self, key: PoolKey, now: Instant) -> Option<Idle> {
        loop {
            let (mut conn, expired) = {
                let mut pool = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                let list = pool.lists.get_mut(&key)?;
                let conn = list.pop()?;
                // Too old, and the rest older still: all taken out, closed outside the lock.
                let idle = now.saturating_duration_since(conn.since);
                let expired = (idle >= UPSTREAM_IDLE).then(|| std::mem::take(list));
                (conn, expired)
            };
            if expired.is_some() {
                return None;
            }
            if still_open(&mut conn.stream) {
                return Some(conn);
            }
        }
    }

    /// Returns a connection whose exchange completed to the pool.
    pub async fn release(&self, upstream: Upstream) {
        if upstream.body_cut_short {
            return;
        }
        // Kept only where the backend's answer allows it (its `Connection`, HTTP/1.0, its
        // framing) and was read whole.
        let Some(stream) = upstream.session.reuse() else {
            return;
        };
        let expired = {
            let mut pool = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            // (Read within the lock: each list stays in the order its connections were idle.)
            let now = Instant::now();
            let list = pool.lists.entry(upstream.key).or_default();
            let oldest = (list.len() >= IDLE_PER_BACKEND).then(|| list.remove(0));
            list.push(Idle {
                stream,
                cork: upstream.cork,
                since: now,
            });
            let mut expired = pool.sweep(now);
            expired.extend(oldest);
            expired
        };
        // (Closed outside the lock.)
        drop(expired);
    }
}

impl Pool {
    /// Every few seconds: the connections idle longer than [`UPSTREAM_IDLE`] taken out of
    /// every list (addresses that DNS no longer gives included), and empty lists removed.
    fn sweep(&mut self, now: Instant) -> Vec<Idle> {
        if now.saturating_duration_since(self.swept) < SWEEP_EVERY {
            return Vec::new();
        }
        self.swept = now;
        let mut expired = Vec::new();
        for list in self.lists.values_mut() {
            // Oldest first: the expired ones are a prefix.
            let n = list
                .iter()
                .take_while(|c| now.saturating_duration_since(c.since) >= UPSTREAM_IDLE)
                .count();
            expired.extend(list.drain(..n));
        }
        self.lists.retain(|_, list| !list.is_empty());
        expired
    }
}

impl Upstream {
    /// The request header about to be written is followed by a body the gateway already
    /// holds whole: the header leaves with it, in one send (plain TCP; a TLS connection sends
    /// it at once). Not for a body still coming from the client: for the backend a connection
    /// without a request header is idle, so its idle timeout would run while a slow client
    /// sends, and a body already read cannot be retried on another connection.
    pub fn header_with_body(&self) {
        if let Some(cork) = &self.cork {
            cork.store(true, Ordering::Release);
        }
    }
}

/// Whether an idle connection can carry a request: nothing to read on it, not even its end (a
/// backend never speaks first on an idle connection).
fn still_open(stream: &mut Stream) -> bool {
    use futures_util::FutureExt;
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    tokio::task::unconstrained(stream.read(&mut byte))
        .now_or_never()
        .is_none()
}

/// A new connection to the backend at `addr`, within its connect timeout, with its header
/// cork where it is plain TCP.
async fn open(
    backend: &BackendRuntime,
    addr: SocketAddr,
) -> pingora::Result<(Stream, Option<Arc<AtomicBool>>)> {
    // (Connecting to the placeholder of a name not resolved yet would reach this host.)
    if crate::backend::health::Reach::unresolved(addr) {
        return Err(pingora::Error::explain(
            pingora::ErrorType::ConnectRefused,
            "the backend's name has not resolved yet",
        ));
    }
    let timed_out = |what: &'static str| {
        move |_| pingora::Error::explain(pingora::ErrorType::ConnectTimedout, what)
    };
    // One deadline for the connection and its TLS handshake.
    let deadline = tokio::time::Instant::now() + backend.connect_timeout;
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(timed_out("connect timed out"))?
        .map_err(|e| {
            pingora::Error::because(pingora::ErrorType::ConnectRefused, "connect failed", e)
        })?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &backend.tls else {
        let (stream, cork) = Coalesced::corkable(tcp);
        return Ok((Box::new(stream), Some(cork)));
    };
    let stream = tokio::time::timeout_at(deadline, tls.connect(tcp))
        .await
        .map_err(timed_out("TLS connect timed out"))?
        .map_err(|e| {
            pingora::Error::because(
                pingora::ErrorType::TLSHandshakeFailure,
                "TLS connect failed",
                e,
            )
        })?;
    Ok((Box::new(stream), None))
}

/// Why streaming the request body stopped.
#[derive(Debug)]
pub enum BodyError {
    /// The body broke a rule the client is told about (digest mismatch).
    Rejected(HcpError),
    /// The client stopped sending or went away.
    Client(pingora::BError),
    /// The backend stopped accepting the body.
    Backend(pingora::BError),
}

/// Streams the client's body to the backend through `verifier`. Verified bytes go up as they are
/// released, except the piece that completes the declared length (the newest, where none is
/// declared), which is held until the whole-body checks pass: the backend, told that length,
/// cannot commit a body short of it, and a piece not held costs no memory while the rest
/// trickles in. Returns the number of decoded bytes forwarded. On error the upstream exchange
/// must be abandoned.
pub async fn stream_request_body(
    downstream: &mut ServerSession,
    upstream: &mut BackendSession,
    (mut verifier, mut chunker): (BodyVerifier, Option<Chunker>),
    pace: BodyPace,
) -> Result<u64, BodyError> {
    let hold_back = verifier.needs_hold_back();
    let declared = verifier.decoded_length();
    let mut held: Option<Bytes> = None;
    let mut released = Vec::new();
    let mut total = 0u64;
    let mut paced = Paced::new(pace);
    loop {
        let Some(chunk) = next_chunk(downstream, &mut paced).await? else {
            break;
        };
        verifier
            .push(chunk, &mut released)
            .map_err(BodyError::Rejected)?;
        // (An empty piece — pingora's reader can hand one over — would take the held-back
        // place of the last real one, which would then go up before the body is verified.)
        for piece in released.drain(..).filter(|p| !p.is_empty()) {
            total += piece.len() as u64;
            let last = declared.is_none_or(|d| total >= d);
            let piece = if hold_back && last {
                held.replace(piece)
            } else {
                Some(piece)
            };
            if let Some(p) = piece {
                write_piece(upstream, chunker.as_mut(), p).await?;
            }
        }
        if held.is_none() {
            // (All it released is at the backend: no longer held.)
            verifier.taken();
        }
    }
    // (The share of the budget the verifier held stays counted until the last piece is sent.)
    let share = verifier.finish().map_err(BodyError::Rejected)?;
    if let Some(last) = held.take() {
        write_piece(upstream, chunker.as_mut(), last).await?;
    }
    drop(share);
    if let Some(chunker) = chunker {
        // (The verifier held the body to its declared length: a shorter one never gets here.)
        let end = chunker.finish().ok_or_else(body_length_differs)?;
        upstream
            .write_body(&end)
            .await
            .map_err(BodyError::Backend)?;
    }
    upstream.finish_body().await.map_err(BodyError::Backend)?;
    Ok(total)
}

/// A verified piece of the body to the backend: as it is, or framed by the gateway's chunker.
async fn write_piece(
    upstream: &mut BackendSession,
    chunker: Option<&mut Chunker>,
    piece: Bytes,
) -> Result<(), BodyError> {
    let Some(chunker) = chunker else {
        return upstream
            .write_body(&piece)
            .await
            .map_err(BodyError::Backend);
    };
    let mut framed = Vec::with_capacity(4);
    if !chunker.push(piece, &mut framed) {
        return Err(body_length_differs());
    }
    for part in framed {
        upstream
            .write_body(&part)
            .await
            .map_err(BodyError::Backend)?;
    }
    Ok(())
}

/// A body that is not as long as its request said (the verifier refuses it first).
fn body_length_differs() -> BodyError {
    BodyError::Rejected(
        HcpError::new(HcpCode::InvalidArgument)
            .with_message("The body is not as long as the request says."),
    )
}

/// How a client may send a request body: no pause longer than `pause`, and on the whole no
/// slower than `min_rate` bytes a second after the first piece — it may fall behind that pace
/// by at most the pause, and a faster stretch earns it no more than the pause back (Apache's
/// `MinRate`, with its bound). A client trickling a byte just inside the pause holds its place
/// (one of `max_concurrent_requests`, and what it holds of `max_held_bytes`) for about the
/// pause, not for as long as it likes — nor for hours on the credit of a fast first burst.
/// `min_rate` 0: no such limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    pub pause: Duration,
    pub min_rate: u64,
}

/// A body's [`BodyPace`] as it is read. The pace counts from the second read on — a read that
/// gave anything, an empty piece too (pingora gives one for each part of a chunk's head it
/// reads, so a chunked body trickled in chunk extensions moves no data) — so that a body read
/// in one piece reads no clock for it.
#[derive(Debug)]
pub struct Paced {
    pace: BodyPace,
    /// From the second read on: when the pace was last counted, the bytes received by then,
    /// and the time the body may still fall behind its pace (at most the pause).
    counted: Option<(std::time::Instant, u64, Duration)>,
    received: u64,
    /// Reads that gave something.
    reads: u64,
}

impl Paced {
    pub fn new(pace: BodyPace) -> Paced {
        Paced {
            pace,
            counted: None,
            received: 0,
            reads: 0,
        }
    }

    /// How long the next read may wait, as of `now` (read only where the pace is counted).
    fn wait(&mut self, now: impl FnOnce() -> std::time::Instant) -> Duration {
        let pause = self.pace.pause;
        if self.pace.min_rate == 0 || self.reads == 0 {
            return pause;
        }
        let now = now();
        let (last, base, left) = self.counted.get_or_insert((now, self.received, pause));
        let nanos =
            u128::from(self.received - *base) * 1_000_000_000 / u128::from(self.pace.min_rate);
        let earned = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        *left = left
            .saturating_add(earned)
            .saturating_sub(now - *last)
            .min(pause);
        (*last, *base) = (now, self.received);
        *left
    }

    fn received(&mut self, n: usize) {
        self.received += n as u64;
        self.reads += 1;
    }
}

/// The next piece of the client's body, or `None` at its end; a client that pauses longer than
/// its pace allows is given up on (the clock read only when it pauses: `deadline`, and where
/// the pace is counted: `Paced`).
pub async fn next_chunk(
    downstream: &mut ServerSession,
    paced: &mut Paced,
) -> Result<Option<Bytes>, BodyError> {
    let wait = if downstream.is_body_done() {
        paced.pace.pause
    } else {
        paced.wait(std::time::Instant::now)
    };
    match crate::deadline::within(wait, downstream.read_request_body()).await {
        Ok(Ok(chunk)) => {
            if let Some(piece) = &chunk {
                paced.received(piece.len());
            }
            Ok(chunk)
        }
        // A chunk size or line end that is not HTTP's: the client is told (HCP's 400), and the
        // connection closes — what follows could be read another way.
        Ok(Err(e)) if *e.etype() == pingora::ErrorType::Custom("InvalidChunk") => {
            let malformed = HcpError::new(HcpCode::InvalidArgument)
                .with_message("The chunked transfer coding of the request body is malformed.")
                .with_cause(e.to_string())
                .closing();
            Err(BodyError::Rejected(malformed))
        }
        Ok(Err(e)) => Err(BodyError::Client(e)),
        Err(_) => Err(BodyError::Client(pingora::Error::explain(
            pingora::ErrorType::ReadTimedout,
            "client body read timed out",
        ))),
    }
}

/// Reads a request body nothing keeps through `verifier`, keeping none of it (its pieces
/// dropped as they are verified), failing past `limit` bytes: how many bytes it had.
pub async fn drain_request_body(
    downstream: &mut ServerSession,
    mut verifier: BodyVerifier,
    limit: u64,
    pace: BodyPace,
) -> Result<u64, BodyError> {
    let mut released = Vec::new();
    let mut total = 0u64;
    let mut paced = Paced::new(pace);
    while let Some(chunk) = next_chunk(downstream, &mut paced).await? {
        verifier
            .push(chunk, &mut released)
            .map_err(BodyError::Rejected)?;
        verifier.taken();
        total += released.drain(..).map(|p| p.len() as u64).sum::<u64>();
        if total > limit {
            return Err(BodyError::Rejected(crate::hcp::errors::HcpError::new(
                crate::hcp::errors::HcpCode::EntityTooLarge,
            )));
        }
    }
    verifier.finish().map_err(BodyError::Rejected)?;
    Ok(total)
}

/// How much of a whole body is read, and what a longer one is answered.
#[derive(Clone, Copy)]
pub struct BodyLimit {
    pub bytes: usize,
    pub past: fn() -> crate::hcp::errors::HcpError,
}

impl BodyLimit {
    /// A document the gateway reads whole: past `bytes`, 400 MalformedXML.
    pub fn document(bytes: usize) -> BodyLimit {
        BodyLimit {
            bytes,
            past: || {
                crate::hcp::errors::HcpError::new(crate::hcp::errors::HcpCode::MalformedXML)
                    .with_message("The XML you provided is larger than this gateway accepts.")
            },
        }
    }
}

/// Reads a whole (small) request body through `verifier`, failing past `limit`.
pub async fn read_request_body(
    downstream: &mut ServerSession,
    mut verifier: BodyVerifier,
    BodyLimit { bytes: limit, past }: BodyLimit,
    pace: BodyPace,
    held: &mut crate::request::held::Held,
) -> Result<Bytes, BodyError> {
    // A body that arrives in one piece is kept as it is; one in more is copied into one buffer
    // (never kept as its pieces: a client sending a byte at a time would make each byte cost
    // a buffer of its own).
    let mut first: Option<Bytes> = None;
    let mut copied: Vec<u8> = Vec::new();
    let mut total = 0;
    let mut released = Vec::new();
    let mut paced = Paced::new(pace);
    loop {
        let Some(chunk) = next_chunk(downstream, &mut paced).await? else {
            break;
        };
        verifier
            .push(chunk, &mut released)
            .map_err(BodyError::Rejected)?;
        // (Counted below, as what this reader holds.)
        verifier.taken();
        for piece in released.drain(..) {
            total += piece.len();
            if total > limit {
                return Err(BodyError::Rejected(past()));
            }
            match first.take() {
                None if copied.is_empty() => first = Some(piece),
                earlier => {
                    let earlier = earlier.unwrap_or_default();
                    let more = earlier.len() + piece.len();
                    crate::request::held::grow_within(&mut copied, more, limit);
                    copied.extend_from_slice(&earlier);
                    copied.extend_from_slice(&piece);
                }
            }
            held.set(total.max(copied.capacity()))
                .map_err(|full| BodyError::Rejected(full.error()))?;
        }
    }
    verifier.finish().map_err(BodyError::Rejected)?;
    Ok(first.unwrap_or_else(|| Bytes::from(copied)))
}

/// Reads a whole response body, failing once it exceeds `limit` bytes, or once `held` (its
/// share of the bytes all requests may hold) finds no room for it: an error of type
/// [`HELD_FULL`].
pub async fn read_whole_body(
    upstream: &mut BackendSession,
    limit: usize,
    held: &mut crate::request::held::Held,
) -> Result<Vec<u8>, pingora::BError> {
    let mut body = Vec::new();
    while let Some(chunk) = upstream.read_body_ref().await? {
        if body.len() + chunk.len() > limit {
            return Err(pingora::Error::explain(
                pingora::ErrorType::InvalidHTTPHeader,
                "backend body too large",
            ));
        }
        crate::request::held::grow_within(&mut body, chunk.len(), limit);
        body.extend_from_slice(chunk);
        if held.set(body.capacity()).is_err() {
            return Err(pingora::Error::explain(
                HELD_FULL,
                "no room to hold the answer",
            ));
        }
    }
    Ok(body)
}

/// A backend answer [`read_whole_body`] had no room to hold: 503, as the overload it is.
pub const HELD_FULL: pingora::ErrorType = pingora::ErrorType::Custom("held bytes");

#[cfg(test)]
mod tests {
    use super::*;

    /// A body may pause up to its pause, and fall behind `min_rate` bytes a second (from its
    /// second read on) by at most the pause, a faster stretch earning no more than that back:
    /// a trickle just inside the pause is cut off after about the pause, after a fast start
    /// too, a body at its pace never; no clock is read for one piece.
    #[test]
    fn bodies_keep_their_pace() {
        let pause = Duration::from_secs(10);
        let t0 = std::time::Instant::now();
        let at = |secs: u64| move || t0 + Duration::from_secs(secs);
        let mut paced = Paced::new(BodyPace {
            pause,
            min_rate: 100,
        });
        assert_eq!(
            paced.wait(|| unreachable!("no clock for a first read")),
            pause
        );
        paced.received(1);
        assert_eq!(paced.wait(at(0)), pause);
        // A byte every nine seconds: behind its pace, the wait shrinks to nothing.
        let mut left = Vec::new();
        for i in 1..=3 {
            paced.received(1);
            left.push(paced.wait(at(9 * i)));
        }
        assert_eq!(
            left,
            [Duration::from_millis(1010), Duration::ZERO, Duration::ZERO]
        );
        // At its pace (100 bytes a second), a body may pause the whole pause every time.
        let mut steady = Paced::new(BodyPace {
            pause,
            min_rate: 100,
        });
        steady.received(1);
        steady.wait(at(0));
        for i in 1..=100 {
            steady.received(1000);
            assert_eq!(steady.wait(at(10 * i)), pause, "{i}");
        }
        // Empty pieces (a chunk's head read in parts) are reads: they earn no time.
        let mut empty = Paced::new(BodyPace {
            pause,
            min_rate: 100,
        });
        empty.received(0);
        assert_eq!(empty.wait(at(0)), pause);
        empty.received(0);
        assert_eq!(empty.wait(at(9)), Duration::from_secs(1));
        empty.received(0);
        assert_eq!(empty.wait(at(11)), Duration::ZERO);
        // A fast start earns no more than the pause: a megabyte at once, then a byte every
        // nine seconds, is cut off as soon as a trickle from the start would be.
        let mut burst = Paced::new(BodyPace {
            pause,
            min_rate: 100,
        });
        burst.received(1);
        assert_eq!(burst.wait(at(0)), pause);
        burst.received(1 << 20);
        assert_eq!(burst.wait(at(1)), pause);
        let mut left = Vec::new();
        for i in 1..=3 {
            burst.received(1);
            left.push(burst.wait(at(1 + 9 * i)));
        }
        assert_eq!(
            left,
            [Duration::from_millis(1010), Duration::ZERO, Duration::ZERO]
        );
        // No pace: the pause alone.
        let mut free = Paced::new(BodyPace { pause, min_rate: 0 });
        free.received(1);
        assert_eq!(free.wait(|| unreachable!()), pause);
    }

    async fn idle_since(ago: Duration) -> Option<Idle> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        Some(Idle {
            stream: Box::new(Coalesced::new(tcp, None)),
            cork: None,
            since: Instant::now().checked_sub(ago)?,
        })
    }

    /// A pooled connection is judged by the attempt's reading of the clock: idle less than
    /// [`UPSTREAM_IDLE`] by it, it is taken; idle that long, it and the older ones are taken
    /// out to be closed.
    #[tokio::test]
    async fn an_idle_connection_is_judged_by_the_attempt_s_clock() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let key: PoolKey = (addr, None);
        let forwarder = Forwarder::default();
        let since = Instant::now();
        let mut peers = Vec::new();
        for _ in 0..3 {
            let tcp = TcpStream::connect(addr).await.unwrap();
            peers.push(listener.accept().await.unwrap().0);
            let mut pool = forwarder.idle.lock().unwrap();
            pool.lists.entry(key).or_default().push(Idle {
                stream: Box::new(Coalesced::new(tcp, None)),
                cork: None,
                since,
            });
        }
        let almost = since + UPSTREAM_IDLE - Duration::from_millis(1);
        assert!(forwarder.take_idle(key, almost).is_some());
        assert!(
            forwarder.take_idle(key, since + UPSTREAM_IDLE).is_none(),
            "idle too long by the attempt's clock"
        );
        assert!(
            forwarder.idle.lock().unwrap().lists[&key].is_empty(),
            "the older one taken out with it"
        );
    }

    /// A sweep takes out every list's connections idle too long, whichever address they are
    /// for, and the lists left empty; it keeps the rest, and runs only every few seconds.
    #[tokio::test]
    async fn a_sweep_closes_what_idled_too_long_under_every_address() {
        let old = UPSTREAM_IDLE + Duration::from_secs(1);
        let (Some(a), Some(b), Some(c)) = (
            idle_since(old).await,
            idle_since(old).await,
            idle_since(Duration::ZERO).await,
        ) else {
            return; // (A clock too young to go back a minute.)
        };
        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let kept: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut pool = Pool::default();
        pool.lists.insert((gone, None), vec![a]);
        pool.lists.insert((kept, Some(7)), vec![b, c]);
        assert!(
            pool.sweep(Instant::now()).is_empty(),
            "not yet: swept just now"
        );
        pool.swept = Instant::now().checked_sub(SWEEP_EVERY).unwrap();
        assert_eq!(pool.sweep(Instant::now()).len(), 2);
        assert!(!pool.lists.contains_key(&(gone, None)));
        assert_eq!(pool.lists[&(kept, Some(7))].len(), 1);
    }
}

//! Client connections whose response header leaves in the same send as the start of its body.
//!
//! pingora writes a response's header and its body with separate writes and flushes at the end
//! of a body; its own listeners put a small buffer under the connection for that, but the
//! gateway accepts connections itself (see server.rs) and pingora's buffer setting is private.
//! Without it every small GET costs two sends — and on loopback each send also pays for the
//! receiver's wake-up. This wrapper holds the first write after a flush (the header) and sends
//! it together with the next write (the body) in one `writev`. Later writes go straight
//! through, so a stalled backend never leaves body bytes waiting here: at most the header waits
//! for the first body bytes or the flush that ends a bodiless answer.
//!
//! It is the whole connection, over tokio's socket. pingora's `l4::Stream` would add a buffered
//! layer (of no capacity, as pingora builds it from a socket), a timer of its reads and writes
//! that waited (two clock reads each, which nothing here asks for), its establishment time, a
//! buffer for receive timestamps allocated per connection, and a `getsockopt` when it closes.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_trait::async_trait;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    TimingDigest, UniqueID, UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::send_deadline::{SendDeadline, Socket};

/// A write larger than this is not held (it would be sent at once anyway).
const HOLD_MAX: usize = 16 * 1024;

/// How many emptied hold buffers a thread keeps for its connections' next headers, and the
/// largest it keeps: a connection holds a buffer only from its header's write to the send
/// that empties it (an idle connection keeps none), and a busy thread takes the one its last
/// answer gave back instead of allocating one per answer and per backend request.
const SPARE_COUNT: usize = 8;
const SPARE_CAPACITY: usize = 4 * 1024;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty buffer to hold a header in: one the thread kept, or a new one.
fn spare_buffer() -> Vec<u8> {
    SPARE.with_borrow_mut(Vec::pop).unwrap_or_default()
}

/// Gives an emptied hold buffer back to the thread, if it is small and the thread keeps few.
fn give_back(mut buffer: Vec<u8>) {
    if buffer.capacity() == 0 || buffer.capacity() > SPARE_CAPACITY {
        return;
    }
    buffer.clear();
    SPARE.with_borrow_mut(|spare| {
        if spare.len() < SPARE_COUNT {
            spare.push(buffer);
        }
    });
}

#[derive(Debug)]
pub struct Coalesced {
    /// (A client's sends held to its send deadline, `send_deadline`.)
    inner: Socket,
    /// The client's addresses (a backend connection has none: nothing asks).
    digest: Option<Arc<SocketDigest>>,
    held: Vec<u8>,
    /// The next write is the first since a flush, and may be held.
    armed: bool,
    /// Set by the owner of a backend connection before it writes a request header that a
    /// body follows: the flush after the header keeps it held, so that it leaves with the
    /// body's first bytes (one send for a small PUT, where pingora makes two). Taken by that
    /// one flush.
    cork: Option<Arc<AtomicBool>>,
}

impl Coalesced {
    pub fn new(inner: TcpStream, digest: Option<SocketDigest>) -> Self {
        Coalesced::on(Socket::new(inner), digest)
    }

    /// A client's connection: its addresses, and how long a send to it may wait.
    pub fn client(inner: TcpStream, digest: SocketDigest, send: SendDeadline) -> Self {
        Coalesced::on(Socket::bounded(inner, send), Some(digest))
    }

    fn on(inner: Socket, digest: Option<SocketDigest>) -> Self {
        Coalesced {
            inner,
            digest: digest.map(Arc::new),
            held: Vec::new(),
            armed: true,
            cork: None,
        }
    }

    /// A connection whose header can be held through one flush (see `cork`), and the switch.
    pub fn corkable(inner: TcpStream) -> (Self, Arc<AtomicBool>) {
        let cork = Arc::new(AtomicBool::new(false));
        let mut this = Coalesced::new(inner, None);
        this.cork = Some(cork.clone());
        (this, cork)
    }

    /// Sends what is held, alone.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.held.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.held.drain(..n);
        }
        // An idle connection keeps no buffer.
        give_back(std::mem::take(&mut self.held));
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Coalesced {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Coalesced {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.armed && this.held.is_empty() && buf.len() <= HOLD_MAX {
            this.armed = false;
            if this.held.capacity() == 0 {
                this.held = spare_buffer();
            }
            this.held.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        this.armed = false;
        while !this.held.is_empty() {
            let slices = [IoSlice::new(&this.held), IoSlice::new(buf)];
            let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &slices))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            if n < this.held.len() {
                this.held.drain(..n);
                continue;
            }
            let of_buf = n - this.held.len();
            give_back(std::mem::take(&mut this.held));
            if of_buf > 0 {
                return Poll::Ready(Ok(of_buf));
            }
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // The cork is taken by the first flush after it was set, whatever is held (a header
        // too large to hold went out already).
        let corked = self
            .cork
            .as_ref()
            .is_some_and(|c| c.swap(false, Ordering::AcqRel));
        if corked && !self.held.is_empty() {
            // The header waits for the body's first write (which sends both).
            return Poll::Ready(Ok(()));
        }
        ready!(self.poll_release(cx))?;
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.armed = true;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_release(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for Coalesced {
    async fn shutdown(&mut self) {
        // What is held goes first (`poll_shutdown`); a failure only means the peer is gone.
        if let Err(e) = tokio::io::AsyncWriteExt::shutdown(self).await {
            tracing::debug!("connection shutdown failed: {e}");
        }
    }
}

impl UniqueID for Coalesced {
    fn id(&self) -> UniqueIDType {
        std::os::fd::AsRawFd::as_raw_fd(self.inner.tcp())
    }
}

impl Ssl for Coalesced {}

/// None, as for the gateway's TLS connections: nothing reads a session's timing digest here
/// (the gateway's own pool opens its backend connections, and its access log times requests
/// itself); pingora's stream would allocate a `Vec` for it for every session made on it —
/// twice per request, the client's and the backend's.
impl GetTimingDigest for Coalesced {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        Vec::new()
    }
}

/// None: the gateway connects to its backends itself, through no CONNECT proxy.
impl GetProxyDigest for Coalesced {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        None
    }
}

impl GetSocketDigest for Coalesced {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.digest.clone()
    }
}

#[async_trait]
impl Peek for Coalesced {}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Two ends of a loopback connection: the accepted one, and the one that connected.
    async fn connected() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        (accepted, client)
    }

    async fn pair() -> (Coalesced, tokio::net::TcpStream) {
        let (server, client) = connected().await;
        (Coalesced::new(server, None), client)
    }

    /// A backend connection (the client side) with its cork set, and the peer it writes to.
    async fn corked_pair() -> (Coalesced, tokio::net::TcpStream) {
        let (peer, client) = connected().await;
        let (conn, cork) = Coalesced::corkable(client);
        cork.store(true, Ordering::Release);
        (conn, peer)
    }

    async fn available(peer: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(Ok(n)) =
            tokio::time::timeout(std::time::Duration::from_millis(100), peer.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[tokio::test]
    async fn the_header_waits_for_the_body_and_later_writes_do_not_wait() {
        let (mut conn, mut peer) = pair().await;
        conn.write_all(b"HEADER ").await.unwrap();
        assert!(available(&mut peer).await.is_empty(), "the header is held");
        conn.write_all(b"body-1 ").await.unwrap();
        assert_eq!(available(&mut peer).await, b"HEADER body-1 ");
        conn.write_all(b"body-2").await.unwrap();
        assert_eq!(
            available(&mut peer).await,
            b"body-2",
            "not held after the first"
        );
        conn.flush().await.unwrap();
        conn.write_all(b"NEXT").await.unwrap();
        assert!(
            available(&mut peer).await.is_empty(),
            "held again after a flush"
        );
        conn.flush().await.unwrap();
        assert_eq!(available(&mut peer).await, b"NEXT");
    }

    #[tokio::test]
    async fn a_corked_header_waits_through_one_flush_for_the_body() {
        let (mut conn, mut peer) = corked_pair().await;
        conn.write_all(b"HEADER ").await.unwrap();
        conn.flush().await.unwrap();
        assert!(
            available(&mut peer).await.is_empty(),
            "held through the flush"
        );
        conn.write_all(b"body").await.unwrap();
        assert_eq!(available(&mut peer).await, b"HEADER body");
        conn.flush().await.unwrap();
        // Uncorked: the next header leaves with its flush.
        conn.write_all(b"NEXT").await.unwrap();
        conn.flush().await.unwrap();
        assert_eq!(available(&mut peer).await, b"NEXT");
    }

    /// Hold buffers go back to the thread once their bytes are sent, and come from it for
    /// the next header: after a first answer no buffer is allocated for the next; a
    /// connection keeps none while idle; the thread keeps few, and none that grew large.
    #[tokio::test]
    async fn hold_buffers_are_kept_by_the_thread_not_the_connection() {
        SPARE.with_borrow_mut(Vec::clear);
        let (mut conn, mut peer) = pair().await;
        conn.write_all(b"HEADER ").await.unwrap();
        conn.write_all(b"body").await.unwrap();
        conn.flush().await.unwrap();
        assert_eq!(available(&mut peer).await, b"HEADER body");
        assert_eq!(
            conn.held.capacity(),
            0,
            "an idle connection keeps no buffer"
        );
        assert_eq!(SPARE.with_borrow(Vec::len), 1, "the thread keeps it");
        conn.write_all(b"NEXT").await.unwrap();
        assert_eq!(SPARE.with_borrow(Vec::len), 0, "the next header took it");
        conn.flush().await.unwrap();
        assert_eq!(available(&mut peer).await, b"NEXT");
        assert_eq!(SPARE.with_borrow(Vec::len), 1);

        give_back(Vec::with_capacity(SPARE_CAPACITY + 1));
        assert_eq!(SPARE.with_borrow(Vec::len), 1, "a large buffer is not kept");
        for _ in 0..2 * SPARE_COUNT {
            give_back(Vec::with_capacity(64));
        }
        assert_eq!(SPARE.with_borrow(Vec::len), SPARE_COUNT);
        let mut taken = spare_buffer();
        assert!(taken.is_empty());
        taken.extend_from_slice(b"x");
        give_back(taken);
        assert!(
            SPARE.with_borrow(|s| s.iter().all(Vec::is_empty)),
            "kept emptied"
        );
    }

    /// A backend connection's header held through its flush (the cork) is sent when the
    /// connection shuts down before the body's first bytes.
    #[tokio::test]
    async fn a_corked_header_is_sent_at_shutdown() {
        let (mut conn, mut peer) = corked_pair().await;
        conn.write_all(b"HEADER").await.unwrap();
        conn.flush().await.unwrap();
        assert!(
            available(&mut peer).await.is_empty(),
            "held through the flush"
        );
        Shutdown::shutdown(&mut conn).await;
        let mut all = Vec::new();
        peer.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"HEADER");
    }

    #[tokio::test]
    async fn shutdown_sends_what_is_held() {
        let (mut conn, mut peer) = pair().await;
        conn.write_all(b"HEADER").await.unwrap();
        Shutdown::shutdown(&mut conn).await;
        let mut all = Vec::new();
        peer.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"HEADER");
    }
}

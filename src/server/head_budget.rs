//! How many bytes a request's header section may take from a client's socket.
//!
//! pingora reads a header section into a buffer that may grow to 1 MiB before the gateway
//! sees it and judges its size (`limits.max_header_bytes`, 64 KiB): a client that sends header
//! lines and never the blank line that ends them would hold that much, and the buffer's
//! growth, for the whole header deadline — unauthenticated, on as many connections as it opens
//! (8 such connections held 14 MB in a review's run). While [`limited`] polls pingora's read of
//! a header section, the client's socket beneath it (`send_deadline::Socket`, under TLS too)
//! hands out at most the budget's bytes; a read past it fails, and [`limited`] says so, for
//! the gateway's 400.
//!
//! The budget is lent through the thread for the length of one poll of that read, which reads
//! only its own connection's socket: a socket read outside such a poll (a body, a backend's
//! answer, another connection's) finds none. A head no longer than the budget is never cut:
//! every byte read before its end is the head's, so it ends before the budget does; bytes past
//! it (a body) wait in the socket for the body's reads.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::task::Poll;

use tokio::io::ReadBuf;

thread_local! {
    /// The bytes the read being polled may still take, and whether one was refused.
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
}

#[derive(Debug, Clone, Copy)]
struct Budget {
    left: usize,
    exceeded: bool,
}

/// `read` (pingora's read of a header section), given at most `budget` bytes of the socket;
/// and whether it asked for more.
pub async fn limited<F: Future>(budget: usize, read: F) -> (F::Output, bool) {
    let mut read = std::pin::pin!(read);
    let mut state = Budget {
        left: budget,
        exceeded: false,
    };
    let out = std::future::poll_fn(|cx| {
        let lent = Lent::lend(state);
        let polled = read.as_mut().poll(cx);
        state = lent.take_back();
        polled
    })
    .await;
    (out, state.exceeded)
}

/// The budget lent to the thread for one poll, taken back when the poll ends (or unwinds).
struct Lent;

impl Lent {
    fn lend(budget: Budget) -> Lent {
        BUDGET.set(Some(budget));
        Lent
    }

    fn take_back(self) -> Budget {
        BUDGET.take().expect("lent for this poll")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        BUDGET.set(None);
    }
}

/// A socket's read under the budget lent to the thread, if any: `Ok(None)` — no budget, read
/// as usual; `Ok(Some(n))` — read at most `n` bytes (and say how many with [`spent`]); `Err` —
/// the budget is spent and the head goes on: the read fails.
pub(super) fn allowance(buf: &ReadBuf<'_>) -> io::Result<Option<usize>> {
    let Some(mut budget) = BUDGET.get() else {
        return Ok(None);
    };
    if budget.left == 0 {
        budget.exceeded = true;
        BUDGET.set(Some(budget));
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the request header section is larger than the gateway accepts",
        ));
    }
    Ok(Some(budget.left.min(buf.remaining())))
}

/// Counts `n` bytes a read under the budget took.
pub(super) fn spent(n: usize) {
    if let Some(mut budget) = BUDGET.get() {
        budget.left = budget.left.saturating_sub(n);
        BUDGET.set(Some(budget));
    }
}

/// Reads into `buf` with `read`, at most `allowed` bytes of it.
pub(super) fn read_at_most(
    buf: &mut ReadBuf<'_>,
    allowed: usize,
    read: impl FnOnce(&mut ReadBuf<'_>) -> Poll<io::Result<()>>,
) -> Poll<io::Result<()>> {
    if allowed >= buf.remaining() {
        let before = buf.filled().len();
        let polled = read(buf);
        spent(buf.filled().len() - before);
        return polled;
    }
    // Only a head already near the budget gets here: a window of the rest of the budget, its
    // bytes initialised first (safe code cannot hand on uninitialised ones).
    let window = buf.initialize_unfilled_to(allowed);
    let mut part = ReadBuf::new(window);
    let polled = read(&mut part);
    let n = part.filled().len();
    buf.advance(n);
    spent(n);
    polled
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A read like pingora's: into a growing buffer until a blank line ends the head.
    async fn read_head(stream: &mut crate::server::send_deadline::Socket) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(4096);
        loop {
            let mut chunk = vec![0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(buf);
            }
        }
    }

    async fn connected() -> (crate::server::send_deadline::Socket, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let socket = crate::server::send_deadline::Socket::new(accepted.unwrap().0);
        (socket, client.unwrap())
    }

    /// A head within the budget is read whole, whatever follows it; one past it fails once the
    /// budget is spent, having read no more than the budget; reads outside [`limited`] are not
    /// limited.
    #[tokio::test]
    async fn a_head_takes_at_most_its_budget() {
        let (mut socket, mut client) = connected().await;
        let head = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(9000));
        client.write_all(head.as_bytes()).await.unwrap();
        client.write_all(&[b'b'; 50_000]).await.unwrap();
        let (read, exceeded) = limited(head.len(), read_head(&mut socket)).await;
        let read = read.unwrap();
        assert!(!exceeded);
        assert_eq!(
            read,
            head.as_bytes(),
            "the head, and no byte past the budget"
        );
        // Outside the budget: the body, as much as is there.
        let mut rest = vec![0u8; 50_000];
        socket.read_exact(&mut rest).await.unwrap();

        let long = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(200_000));
        let writer = tokio::spawn(async move {
            let _ = client.write_all(long.as_bytes()).await;
            client
        });
        let (read, exceeded) = limited(10_000, read_head(&mut socket)).await;
        let e = read.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(exceeded);
        // The thread lends nothing once the read is over.
        assert!(BUDGET.get().is_none());
        drop(socket);
        let _ = writer.await;
    }
}

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
//!
//! Within its own budget a head takes its memory from the one every request shares
//! (`server.max_held_bytes`, [`Held`]) past the first [`UNCOUNTED`] bytes, pingora's first
//! buffer: two thousand connections that each send 88 KiB of header lines and never end them
//! would otherwise hold 128 KiB each (pingora's buffer doubles) — a pod's memory — for the
//! whole header deadline, before anything is authenticated. A head the shared budget has no
//! room for is cut as a head past its own budget is, and told apart ([`Cut::NoRoom`]: 503).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::task::Poll;

use tokio::io::ReadBuf;

use crate::request::held::Held;

/// The bytes of a head read without a share of the shared budget: pingora's first buffer,
/// which every connection holds anyway.
pub const UNCOUNTED: usize = 4096;

/// Why a head's read was cut short, if it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Not cut: the read ended as it would have.
    Whole,
    /// The head went on past its budget.
    TooLarge,
    /// The head went on past what the shared budget had room for.
    NoRoom,
}

thread_local! {
    /// The read being polled: what it may still take, and whether one was refused.
    static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
}

#[derive(Debug)]
struct Budget {
    /// The most the head may take, and what it has taken.
    most: usize,
    spent: usize,
    /// What it may take now: [`UNCOUNTED`], then as much as `held` holds half of.
    covered: usize,
    held: Held,
    exceeded: bool,
    no_room: bool,
}

impl Budget {
    /// Room for the next read: `covered` doubled once it is spent, while the shared budget
    /// gives `held` twice that (pingora's buffer grows by doubling: it holds up to twice what
    /// it was given). A read may come back for more within one poll (pingora reads again
    /// when a head is not whole), so the room grows here, as it is asked for.
    fn room(&mut self) -> usize {
        if self.spent >= self.covered && self.covered < self.most {
            let more = self.covered.saturating_mul(2).min(self.most);
            self.no_room = self.held.set(more.saturating_mul(2)).is_err();
            if !self.no_room {
                self.covered = more;
            }
        }
        self.covered.saturating_sub(self.spent)
    }
}

/// `read` (pingora's read of a header section), given at most `budget` bytes of the socket,
/// those past the first [`UNCOUNTED`] only as `held` (a share of the shared budget) grows to
/// hold them; and whether, and why, it asked for more.
pub async fn limited<F: Future>(budget: usize, held: Held, read: F) -> (F::Output, Cut) {
    let mut read = std::pin::pin!(read);
    let mut state = Some(Budget {
        most: budget,
        spent: 0,
        covered: UNCOUNTED.min(budget),
        held,
        exceeded: false,
        no_room: false,
    });
    let out = std::future::poll_fn(|cx| {
        let lent = Lent::lend(state.take().expect("kept between polls"));
        let polled = read.as_mut().poll(cx);
        state = Some(lent.take_back());
        polled
    })
    .await;
    let state = state.expect("kept between polls");
    let cut = match (state.exceeded, state.no_room) {
        (false, _) => Cut::Whole,
        (true, true) => Cut::NoRoom,
        (true, false) => Cut::TooLarge,
    };
    (out, cut)
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
    BUDGET.with_borrow_mut(|budget| {
        let Some(budget) = budget else {
            return Ok(None);
        };
        let room = budget.room();
        if room == 0 {
            budget.exceeded = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the request header section is larger than the gateway accepts",
            ));
        }
        Ok(Some(room.min(buf.remaining())))
    })
}

/// Counts `n` bytes a read under the budget took.
pub(super) fn spent(n: usize) {
    BUDGET.with_borrow_mut(|budget| {
        if let Some(budget) = budget {
            budget.spent = budget.spent.saturating_add(n);
        }
    });
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
        let (read, cut) = limited(head.len(), Held::unbounded(), read_head(&mut socket)).await;
        let read = read.unwrap();
        assert_eq!(cut, Cut::Whole);
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
        let (read, cut) = limited(10_000, Held::unbounded(), read_head(&mut socket)).await;
        let e = read.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(cut, Cut::TooLarge);
        // The thread lends nothing once the read is over.
        assert!(BUDGET.with_borrow(Option::is_none));
        drop(socket);
        let _ = writer.await;
    }

    /// Past its first [`UNCOUNTED`] bytes a head holds a share of the shared budget, twice
    /// what it has read (pingora's buffer doubles) and given back when the read ends; where
    /// the budget has no room the read is cut ([`Cut::NoRoom`]), having read no more than the
    /// room it had.
    #[tokio::test]
    async fn a_long_head_holds_a_share_of_the_shared_budget() {
        let gauge = prometheus::IntGauge::new("held", "h").unwrap();
        let refusals = prometheus::IntCounter::new("refused", "r").unwrap();
        let shared = crate::request::held::HeldBytes::new(40_000, gauge, refusals);
        let (mut socket, mut client) = connected().await;
        let head = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(9000));
        client.write_all(head.as_bytes()).await.unwrap();
        let (read, cut) = limited(65_536, shared.hold(), read_head(&mut socket)).await;
        assert_eq!((read.unwrap().len(), cut), (head.len(), Cut::Whole));
        assert_eq!(shared.in_use(), 0, "given back");
        // A head that would need more than the shared budget holds: cut, 503.
        let long = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(60_000));
        let writer = tokio::spawn(async move {
            let _ = client.write_all(long.as_bytes()).await;
            client
        });
        let (read, cut) = limited(65_536, shared.hold(), read_head(&mut socket)).await;
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(cut, Cut::NoRoom);
        assert_eq!(shared.in_use(), 0, "given back");
        drop(socket);
        let _ = writer.await;
    }
}

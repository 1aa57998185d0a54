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
//! Within its own budget a head takes its memory past the first [`UNCOUNTED`] bytes (pingora's
//! first buffer) from a budget the heads share (a quarter of `server.max_held_bytes`, apart
//! from the requests': heads are held before anything is authenticated), and keeps it while
//! pingora keeps the buffer, to the exchange's end: two thousand connections that each send
//! 88 KiB of header lines and never end them would otherwise hold 128 KiB each (pingora's
//! buffer doubles) — a pod's memory — for the whole header deadline. A head the budget has no
//! room for is cut as a head past its own budget is, and told apart ([`Cut::NoRoom`]: 503).
//! A read that finds its room spent while the head may grow waits ([`Allowance::Wait`]): the
//! read gives way, [`limited`] grows the share, and polls it again at once — pingora reads
//! again within one poll when a head is not whole, so the room cannot wait for the next one.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::task::Poll;

use tokio::io::ReadBuf;

use crate::request::held::{Held, HeldBytes};

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
    /// The read being polled: the room it has, whether that may grow, and whether it asked
    /// for more than it was given (or for room to grow).
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
}

#[derive(Debug, Clone, Copy)]
struct Budget {
    room: usize,
    /// Whether the room may grow: a read past it waits for it to, rather than fail.
    growable: bool,
    exceeded: bool,
    wants_room: bool,
}

/// What a socket's read may take, where a head's read is polled.
pub(super) enum Allowance {
    /// No head is being read: as usual.
    Unlimited,
    /// At most this many bytes (say how many with [`spent`]).
    AtMost(usize),
    /// None now: the read gives way until [`limited`] has grown the room.
    Wait,
}

/// `read` (pingora's read of a header section), given at most `budget` bytes of the socket,
/// those past the first `uncounted` ([`UNCOUNTED`], or more where the first read may take a
/// whole TLS record) only as a share of `shared` grows to hold them (twice them: pingora's
/// buffer grows by doubling; `None`: no share is counted); whether, and why, it asked for
/// more; and the share, to be kept while pingora keeps the buffer.
pub async fn limited<F: Future>(
    (budget, uncounted): (usize, usize),
    shared: Option<&std::sync::Arc<HeldBytes>>,
    read: F,
) -> (F::Output, Cut, Option<Held>) {
    let mut read = std::pin::pin!(read);
    let (mut spent, mut covered) = (0, uncounted.min(budget));
    let (mut exceeded, mut no_room) = (false, false);
    let mut held: Option<Held> = None;
    let out = std::future::poll_fn(|cx| loop {
        let lent = Lent::lend(Budget {
            room: covered - spent,
            growable: covered < budget && !no_room,
            exceeded: false,
            wants_room: false,
        });
        let polled = read.as_mut().poll(cx);
        let back = lent.take_back();
        spent = covered - back.room;
        exceeded |= back.exceeded;
        if !(back.wants_room && polled.is_pending()) {
            return polled;
        }
        // (Room for twice as much, or none: either way the read is polled again at once.)
        let more = covered.saturating_mul(2).min(budget);
        let share =
            held.get_or_insert_with(|| shared.map_or_else(Held::unbounded, HeldBytes::hold));
        match share.set(more.saturating_mul(2)) {
            Ok(()) => covered = more,
            Err(_) => no_room = true,
        }
    })
    .await;
    let cut = match (exceeded, no_room) {
        (false, _) => Cut::Whole,
        (true, true) => Cut::NoRoom,
        (true, false) => Cut::TooLarge,
    };
    (out, cut, held)
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

/// A socket's read under the budget lent to the thread, if any; `Err`: the budget is spent and
/// the head goes on — the read fails.
pub(super) fn allowance(buf: &ReadBuf<'_>) -> io::Result<Allowance> {
    let Some(mut budget) = BUDGET.get() else {
        return Ok(Allowance::Unlimited);
    };
    if budget.room > 0 {
        return Ok(Allowance::AtMost(budget.room.min(buf.remaining())));
    }
    if budget.growable {
        budget.wants_room = true;
        BUDGET.set(Some(budget));
        return Ok(Allowance::Wait);
    }
    budget.exceeded = true;
    BUDGET.set(Some(budget));
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "the request header section is larger than the gateway accepts",
    ))
}

/// Counts `n` bytes a read under the budget took.
pub(super) fn spent(n: usize) {
    if let Some(mut budget) = BUDGET.get() {
        budget.room = budget.room.saturating_sub(n);
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
        let (read, cut, _) = limited((head.len(), UNCOUNTED), None, read_head(&mut socket)).await;
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
        let (read, cut, _) = limited((10_000, UNCOUNTED), None, read_head(&mut socket)).await;
        let e = read.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(cut, Cut::TooLarge);
        // The thread lends nothing once the read is over.
        assert!(BUDGET.get().is_none());
        drop(socket);
        let _ = writer.await;
    }

    /// Past its first [`UNCOUNTED`] bytes a head holds a share of the shared budget, twice
    /// what it has room for (pingora's buffer doubles), kept until dropped; where
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
        let (read, cut, share) =
            limited((65_536, UNCOUNTED), Some(&shared), read_head(&mut socket)).await;
        assert_eq!((read.unwrap().len(), cut), (head.len(), Cut::Whole));
        // (Kept while pingora keeps the buffer: twice the 16 KiB the head was given room in.)
        assert_eq!(shared.in_use(), 32_768);
        drop(share);
        assert_eq!(shared.in_use(), 0, "given back");
        // A head that would need more than the shared budget holds: cut, 503.
        let long = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(60_000));
        let writer = tokio::spawn(async move {
            let _ = client.write_all(long.as_bytes()).await;
            client
        });
        let (read, cut, share) =
            limited((65_536, UNCOUNTED), Some(&shared), read_head(&mut socket)).await;
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(cut, Cut::NoRoom);
        drop(share);
        assert_eq!(shared.in_use(), 0, "given back");
        drop(socket);
        let _ = writer.await;
    }
}

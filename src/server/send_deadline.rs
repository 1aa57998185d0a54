//! How long a client may keep the gateway's answer waiting: a write to a client's socket (or
//! its flush or shutdown) that cannot go on for `client_send_timeout_seconds` fails, and so
//! does every write after it.
//!
//! pingora times no write of a response header, and a response body's only when asked
//! (per write, with a clock read each). Without a limit, a client that asks for an object and
//! then stops reading holds, for as long as it likes, what its request was given: a place of
//! `max_concurrent_requests` and a backend connection. As nginx's `send_timeout`, the limit is
//! on a pause, not on the whole answer: it is kept at the socket, under TLS and under the
//! header's coalescing, so every send that moves bytes starts the count again. The clock is
//! read only when a send has to wait (a small answer's never does). A connection that timed
//! out is reset when it closes (nginx's `reset_timedout_connection`): the kernel would
//! otherwise keep its unsent bytes for a peer that does not read them.
//!
//! A pause alone lets a reader take an object a few bytes a minute and hold its place for
//! hours: with a minimum rate (`client_send_min_rate_bytes_per_second`), the time sends spend
//! waiting is spent from a credit of at most the pause, which the bytes sent earn back at
//! that rate — a reader slower than the rate, counted over its waits, falls behind by the
//! pause at most, then is closed as for a pause. (Only waits spend: an idle connection, or a
//! client reading as fast as it is sent to, loses nothing; a fast stretch earns no more than
//! the pause back, as for request bodies.)

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// A client connection's limit on how long one send may wait, and the count it adds to.
#[derive(Debug, Clone)]
pub struct SendLimit {
    pub limit: Duration,
    /// The slowest pace, in bytes a second, at which a client may take what it is sent, over
    /// its waits (0: none).
    pub min_rate: u64,
    /// `hcp_gateway_client_timeouts_total{phase="send"}`.
    pub timeouts: prometheus::IntCounter,
}

/// A connection's send deadline (none for a backend connection: its session times its own
/// writes).
#[derive(Debug, Default)]
pub struct SendDeadline {
    limit: Option<SendLimit>,
    /// The timer, made the first time a send waited and set again each time one starts to.
    /// (A timer left set after a send went on wakes the connection's task once, for nothing.)
    timer: Option<Pin<Box<Sleep>>>,
    /// A send is waiting, on `timer`.
    waiting: bool,
    /// The limit was reached: no send is tried again.
    expired: bool,
    /// Where a minimum rate is kept: the wait still allowed (at most the limit; `None`: the
    /// whole limit), and when the waiting send began to wait.
    credit: Option<Duration>,
    waited_from: Option<Instant>,
}

impl SendDeadline {
    pub fn new(limit: SendLimit) -> Self {
        SendDeadline {
            limit: Some(limit),
            ..SendDeadline::default()
        }
    }

    fn timed_out() -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not take the answer within client_send_timeout_seconds",
        )
    }

    /// `send` polled, failed with `TimedOut` once sends have waited for the limit without
    /// going on — and from then on failed without being polled. A send left pending is polled
    /// again until it is ready, or the connection dropped: the wait it began is counted on by
    /// the next send otherwise (every send to a client is awaited to its end).
    pub fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        send: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.expired {
            return Poll::Ready(Err(Self::timed_out()));
        }
        let polled = send(cx);
        let Poll::Pending = polled else {
            if std::mem::take(&mut self.waiting) {
                self.spend_wait();
            }
            return polled;
        };
        let Some(limit) = &self.limit else {
            return Poll::Pending;
        };
        if !self.waiting {
            let now = Instant::now();
            let allowed = self.credit.unwrap_or(limit.limit).min(limit.limit);
            if limit.min_rate > 0 {
                self.waited_from = Some(now);
            }
            // (A limit past what an `Instant` holds is no limit.)
            let Some(deadline) = now.checked_add(allowed) else {
                return Poll::Pending;
            };
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.waiting = true;
        }
        let timer = self.timer.as_mut().expect("set when waiting");
        // (Outside tokio's cooperative budget, as `deadline::within` polls its timer.)
        match Pin::new(&mut tokio::task::unconstrained(timer.as_mut())).poll(cx) {
            Poll::Ready(()) => {
                self.expired = true;
                self.timer = None;
                limit.timeouts.inc();
                Poll::Ready(Err(Self::timed_out()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    pub fn expired(&self) -> bool {
        self.expired
    }

    /// A send that waited went on: its wait is spent from the credit (kept only where a
    /// minimum rate is).
    fn spend_wait(&mut self) {
        let (Some(limit), Some(from)) = (&self.limit, self.waited_from.take()) else {
            return;
        };
        let credit = self.credit.unwrap_or(limit.limit);
        self.credit = Some(credit.saturating_sub(from.elapsed()));
    }

    /// `n` bytes were sent: the credit they earn at the minimum rate, up to the limit. (No
    /// clock is read.)
    pub fn sent(&mut self, n: usize) {
        let Some(limit) = &self.limit else {
            return;
        };
        let Some(credit) = self.credit.filter(|_| limit.min_rate > 0) else {
            return;
        };
        let nanos = u128::from(n as u64) * 1_000_000_000 / u128::from(limit.min_rate);
        let earned = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        self.credit = Some(credit.saturating_add(earned).min(limit.limit));
    }
}

/// A TCP connection whose sends are held to a [`SendDeadline`].
#[derive(Debug)]
pub struct Socket {
    tcp: TcpStream,
    send: SendDeadline,
}

impl Socket {
    /// A connection without a deadline (a backend's).
    pub fn new(tcp: TcpStream) -> Self {
        Socket::bounded(tcp, SendDeadline::default())
    }

    pub fn bounded(tcp: TcpStream, send: SendDeadline) -> Self {
        Socket { tcp, send }
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    fn poll_send<T>(
        &mut self,
        cx: &mut Context<'_>,
        send: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let was_expired = self.send.expired();
        let tcp = &mut self.tcp;
        let polled = self.send.poll(cx, |cx| send(Pin::new(tcp), cx));
        if self.send.expired() && !was_expired {
            // Closed with a reset: no unsent bytes kept for a peer that does not read.
            let _ = self.tcp.set_zero_linger();
        }
        polled
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // (Reads of a header section take at most its budget: `head_budget`.)
        match super::head_budget::allowance(buf)? {
            super::head_budget::Allowance::Unlimited => Pin::new(&mut self.tcp).poll_read(cx, buf),
            super::head_budget::Allowance::AtMost(allowed) => {
                super::head_budget::read_at_most(buf, allowed, |buf| {
                    Pin::new(&mut self.tcp).poll_read(cx, buf)
                })
            }
            // (Polled again at once by the head's read, its room grown or refused.)
            super::head_budget::Allowance::Wait => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = self.poll_send(cx, |tcp, cx| tcp.poll_write(cx, buf));
        if let Poll::Ready(Ok(n)) = polled {
            self.send.sent(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = self.poll_send(cx, |tcp, cx| tcp.poll_write_vectored(cx, bufs));
        if let Poll::Ready(Ok(n)) = polled {
            self.send.sent(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send(cx, |tcp, cx| tcp.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send(cx, |tcp, cx| tcp.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn limit(ms: u64) -> (SendDeadline, prometheus::IntCounter) {
        let timeouts = prometheus::IntCounter::new("t", "t").unwrap();
        let deadline = SendDeadline::new(SendLimit {
            limit: Duration::from_millis(ms),
            min_rate: 0,
            timeouts: timeouts.clone(),
        });
        (deadline, timeouts)
    }

    fn pending(_: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }

    /// Polls `deadline` with a send that is always pending, until it answers.
    async fn wait_out(deadline: &mut SendDeadline) -> io::Result<()> {
        std::future::poll_fn(|cx| deadline.poll(cx, pending)).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_that_waits_past_the_limit_fails_is_counted_and_no_send_is_tried_again() {
        let (mut deadline, timeouts) = limit(1000);
        let started = Instant::now();
        let e = wait_out(&mut deadline).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_millis(1000));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut tried = false;
        let again = deadline.poll(&mut cx, |_| {
            tried = true;
            Poll::Ready(Ok(()))
        });
        assert!(matches!(again, Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::TimedOut));
        assert!(!tried, "a send was tried after the limit");
        assert_eq!(timeouts.get(), 1, "counted once per connection");
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_that_goes_on_starts_the_count_again() {
        let (mut deadline, timeouts) = limit(1000);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // Waits 600 ms, goes on, waits again: never 1 s in one pause until the last.
        assert!(deadline.poll(&mut cx, pending).is_pending());
        tokio::time::advance(Duration::from_millis(600)).await;
        assert!(matches!(
            deadline.poll(&mut cx, |_| Poll::Ready(Ok(5usize))),
            Poll::Ready(Ok(5))
        ));
        // The first pause's timer, left set, passes its deadline meanwhile: the next pause is
        // still given the whole limit.
        tokio::time::advance(Duration::from_millis(900)).await;
        let started = Instant::now();
        let e = wait_out(&mut deadline).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_millis(1000));
        assert_eq!(timeouts.get(), 1);
    }

    /// With a minimum rate, waits spend a credit of at most the limit that the bytes sent earn
    /// back: a reader slower than the rate is closed sooner than a pause would close it; a fast
    /// stretch earns no more than the limit back.
    #[tokio::test(start_paused = true)]
    async fn a_reader_slower_than_the_rate_falls_behind_by_the_limit_at_most() {
        let paced = || {
            let timeouts = prometheus::IntCounter::new("t", "t").unwrap();
            SendDeadline::new(SendLimit {
                limit: Duration::from_millis(1000),
                min_rate: 1000,
                timeouts,
            })
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut deadline = paced();
        // 800 ms waited for 100 bytes (worth 100 ms): 300 ms left for the next wait.
        assert!(deadline.poll(&mut cx, pending).is_pending());
        tokio::time::advance(Duration::from_millis(800)).await;
        assert!(deadline
            .poll(&mut cx, |_| Poll::Ready(Ok(100usize)))
            .is_ready());
        deadline.sent(100);
        let started = Instant::now();
        assert!(wait_out(&mut deadline).await.is_err());
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        // Ten megabytes sent earn the whole limit back, no more.
        let mut deadline = paced();
        assert!(deadline.poll(&mut cx, pending).is_pending());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(deadline.poll(&mut cx, |_| Poll::Ready(Ok(()))).is_ready());
        deadline.sent(10_000_000);
        let started = Instant::now();
        assert!(wait_out(&mut deadline).await.is_err());
        assert_eq!(started.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_that_never_waits_makes_no_timer() {
        let (mut deadline, _) = limit(1000);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..3 {
            assert!(deadline.poll(&mut cx, |_| Poll::Ready(Ok(()))).is_ready());
        }
        assert!(deadline.timer.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_backend_connection_has_no_deadline() {
        let mut deadline = SendDeadline::default();
        let waited = tokio::time::timeout(Duration::from_secs(3600), wait_out(&mut deadline)).await;
        assert!(
            waited.is_err(),
            "a connection without a limit waits as long as it must"
        );
    }

    /// A socket whose peer reads nothing: its sends fill the buffers, then wait, then fail, and
    /// so does every send after.
    #[tokio::test(start_paused = true)]
    async fn a_socket_whose_peer_does_not_read_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (_peer, _) = listener.accept().await.unwrap();
        let (deadline, timeouts) = limit(5000);
        let mut socket = Socket::bounded(tcp, deadline);
        let piece = vec![7u8; 64 * 1024];
        let e = loop {
            if let Err(e) = socket.write_all(&piece).await {
                break e;
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(timeouts.get(), 1);
        let again = socket.write_all(b"x").await.unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            socket.flush().await.unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    }
}

//! A timeout that reads the clock only when its operation has to wait.
//!
//! `tokio::time::timeout` fixes its deadline when it is made: a clock read, and a timer made
//! and dropped, for every operation, whether it then waits or not. Most of a request's writes,
//! and reads whose bytes are already there, never wait. [`within`] polls the operation first
//! and starts its deadline at the first poll that finds it pending: the same limit on how long
//! it may wait, no clock read for an operation that completes at once (as pingora times its
//! own reads). Once armed, its timer is polled outside tokio's cooperative budget, as
//! tokio's own timeout polls it: an operation that spent the budget cannot keep it from firing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::task::Unconstrained;
use tokio::time::{Instant, Sleep};

/// The operation waited longer than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// `operation`, given at most `limit` from when it first waits.
pub fn within<F: Future>(limit: Duration, operation: F) -> Within<F> {
    Within {
        operation,
        timer: Timer::Unarmed,
        limit,
    }
}

pin_project! {
    /// The future of [`within`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Within<F> {
        #[pin]
        operation: F,
        #[pin]
        timer: Timer,
        limit: Duration,
    }
}

pin_project! {
    #[project = TimerNow]
    enum Timer {
        /// The operation has not waited yet: no deadline.
        Unarmed,
        /// It waits, until this sleep ends.
        Armed { #[pin] sleep: Unconstrained<Sleep> },
        /// The limit reaches beyond what an `Instant` holds: no deadline.
        Never,
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(done) = this.operation.poll(cx) {
            return Poll::Ready(Ok(done));
        }
        if let TimerNow::Unarmed = this.timer.as_mut().project() {
            let armed = match Instant::now().checked_add(*this.limit) {
                Some(deadline) => Timer::Armed {
                    sleep: tokio::task::unconstrained(tokio::time::sleep_until(deadline)),
                },
                None => Timer::Never,
            };
            this.timer.set(armed);
        }
        match this.timer.project() {
            TimerNow::Armed { sleep } => sleep.poll(cx).map(|()| Err(Elapsed)),
            TimerNow::Unarmed | TimerNow::Never => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operation that is pending until `at`, then yields `value`.
    async fn ready_at(at: Instant, value: u32) -> u32 {
        tokio::time::sleep_until(at).await;
        value
    }

    /// An operation done at its first poll makes no timer at all: on a runtime without a time
    /// driver, making one would panic.
    #[test]
    fn an_operation_done_at_once_makes_no_timer() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let done = runtime.block_on(async {
            let first = within(Duration::from_secs(1), std::future::ready(1)).await;
            let second = within(Duration::from_millis(1), async { 2 }).await;
            (first, second)
        });
        assert_eq!(done, (Ok(1), Ok(2)));
    }

    /// Armed once, at the first wait: an operation that keeps waking itself (never done) is
    /// given up after its limit, not re-armed at each poll.
    #[tokio::test]
    async fn a_self_waking_operation_is_given_up_after_its_limit() {
        let limit = Duration::from_millis(50);
        let start = Instant::now();
        let busy = async {
            loop {
                tokio::task::yield_now().await;
                if start.elapsed() > Duration::from_secs(10) {
                    break;
                }
            }
        };
        assert_eq!(within(limit, busy).await, Err(Elapsed));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn an_operation_that_completes_at_once_is_its_value() {
        assert_eq!(
            within(Duration::from_millis(1), std::future::ready(7)).await,
            Ok(7)
        );
        // Even with no time at all to wait: it never waited.
        assert_eq!(within(Duration::ZERO, async { 8 }).await, Ok(8));
    }

    #[tokio::test]
    async fn an_operation_that_waits_too_long_is_elapsed_after_its_limit() {
        let limit = Duration::from_millis(50);
        let start = Instant::now();
        let never = std::future::pending::<()>();
        assert_eq!(within(limit, never).await, Err(Elapsed));
        assert!(
            start.elapsed() >= limit,
            "elapsed early: {:?}",
            start.elapsed()
        );
        let late = ready_at(Instant::now() + Duration::from_millis(400), 1);
        assert_eq!(within(limit, late).await, Err(Elapsed));
    }

    #[tokio::test]
    async fn an_operation_done_within_its_limit_is_its_value() {
        let soon = ready_at(Instant::now() + Duration::from_millis(20), 3);
        assert_eq!(within(Duration::from_secs(5), soon).await, Ok(3));
    }

    /// The deadline counts from the first wait, not from when the timeout was made (where
    /// `tokio::time::timeout` counts from): made, then left 800 ms unpolled, an operation
    /// that then takes 300 ms is within a limit of 1 s.
    #[tokio::test]
    async fn the_limit_counts_from_the_first_wait() {
        let limit = Duration::from_secs(1);
        let made = within(limit, async {
            ready_at(Instant::now() + Duration::from_millis(300), 4).await
        });
        let eager = tokio::time::timeout(limit, async {
            ready_at(Instant::now() + Duration::from_millis(300), 4).await
        });
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(made.await, Ok(4));
        assert!(
            eager.await.is_err(),
            "tokio's timeout counts from when it was made"
        );
    }

    #[tokio::test]
    async fn a_limit_beyond_any_instant_never_elapses() {
        let soon = ready_at(Instant::now() + Duration::from_millis(20), 5);
        assert_eq!(within(Duration::MAX, soon).await, Ok(5));
    }
}

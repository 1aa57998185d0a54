//! The memory all requests hold at once.
//!
//! Some bytes a request cannot pass on as they arrive: a signed aws-chunked chunk until its
//! signature is checked, a document the gateway reads whole before it acts on it (a multipart
//! complete, an ACL, a small object body sent with its header), a form's file, a backend's
//! answer read whole to become HCP's. Each is bounded per request (`max_chunk_bytes`,
//! `limits.max_control_body_bytes`, `limits.max_post_object_bytes`,
//! `max_buffered_response_bytes`), but `max_concurrent_requests` of them at once could hold
//! many times the memory the process is given. [`HeldBytes`] is the one budget they share
//! (`server.max_held_bytes`): a request that would take more than is left is answered 503
//! ServiceUnavailable — it costs itself a retry, not the process its memory.
//!
//! A request's share is a [`Held`]: it grows as bytes are read (never by what a client
//! declares it will send) and is given back when dropped. The answer to a change the backend
//! has made already (a copy, a multi-delete, a complete) is read whatever the budget
//! ([`HeldBytes::hold_counted`]): a 503 would tell the client that nothing was done. It is
//! counted all the same: the requests after it find the room it holds taken.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::hcp::errors::{HcpCode, HcpError};

/// The budget: at most `limit` bytes held by all requests together (0: no limit).
#[derive(Debug)]
pub struct HeldBytes {
    limit: usize,
    used: AtomicUsize,
    gauge: prometheus::IntGauge,
    refusals: prometheus::IntCounter,
}

/// The budget is spent: the request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Full {
    /// HCP's overload answer.
    pub fn error(self) -> HcpError {
        HcpError::new(HcpCode::ServiceUnavailable)
            .with_message("The gateway holds as much request data as it may at once; try again.")
    }
}

impl From<Full> for HcpError {
    fn from(full: Full) -> HcpError {
        full.error()
    }
}

impl HeldBytes {
    /// A budget of `limit` bytes (0: no limit), shown as `gauge` and counting its refusals.
    pub fn new(
        limit: usize,
        gauge: prometheus::IntGauge,
        refusals: prometheus::IntCounter,
    ) -> Arc<HeldBytes> {
        Arc::new(HeldBytes {
            limit,
            used: AtomicUsize::new(0),
            gauge,
            refusals,
        })
    }

    /// A share of nothing yet, refused growth the budget has no room for.
    pub fn hold(self: &Arc<Self>) -> Held {
        Held {
            budget: Some(self.clone()),
            bytes: 0,
            refusable: true,
        }
    }

    /// A share that is counted but never refused: the answer to a change already made.
    pub fn hold_counted(self: &Arc<Self>) -> Held {
        Held {
            budget: Some(self.clone()),
            bytes: 0,
            refusable: false,
        }
    }

    /// The bytes held now.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn take(&self, n: usize, refusable: bool) -> Result<(), Full> {
        let limit = if self.limit == 0 || !refusable {
            usize::MAX
        } else {
            self.limit
        };
        // (Added only if it fits: a refused request never pushes the count past the limit,
        // where a smaller one beside it would be refused too.)
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= limit)
            });
        match taken {
            Ok(_) => {
                self.gauge.add(i64::try_from(n).unwrap_or(i64::MAX));
                Ok(())
            }
            Err(_) => {
                self.refusals.inc();
                Err(Full)
            }
        }
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
        self.gauge.sub(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// One request's share of the budget; given back when dropped.
#[derive(Debug)]
pub struct Held {
    budget: Option<Arc<HeldBytes>>,
    bytes: usize,
    refusable: bool,
}

impl Held {
    /// A share of no budget (the gateway's own tests and tools).
    pub fn unbounded() -> Held {
        Held {
            budget: None,
            bytes: 0,
            refusable: false,
        }
    }

    /// The bytes this share holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `total` bytes in all: the difference taken from the budget, or given back. A
    /// growth the budget has no room for is refused and the share stays as it was.
    pub fn set(&mut self, total: usize) -> Result<(), Full> {
        if let Some(budget) = &self.budget {
            if total > self.bytes {
                budget.take(total - self.bytes, self.refusable)?;
            } else {
                budget.give_back(self.bytes - total);
            }
        }
        self.bytes = total;
        Ok(())
    }

    /// Holds `more` bytes besides those held.
    pub fn add(&mut self, more: usize) -> Result<(), Full> {
        self.set(self.bytes.saturating_add(more))
    }

    /// Holds `total` bytes in all, never refused: what a request has built already and will
    /// write (refusing it then would waste the work, not spare the memory), counted so that
    /// the requests after it find the room taken.
    pub fn keep(&mut self, total: usize) {
        let refusable = std::mem::take(&mut self.refusable);
        let _ = self.set(total);
        self.refusable = refusable;
    }

    /// [`Held::add`], but never refused while this share is all the budget holds: what one
    /// request needs beside what it read (a document's rewritten copies) is given on an idle
    /// gateway whatever its size — refusing it there would refuse it on every retry — and
    /// counted, so that the requests after it find the room taken.
    pub fn add_unless_alone(&mut self, more: usize) -> Result<(), Full> {
        let alone = self
            .budget
            .as_ref()
            .is_some_and(|b| b.in_use() <= self.bytes);
        let refusable = self.refusable;
        self.refusable = refusable && !alone;
        let added = self.add(more);
        self.refusable = refusable;
        added
    }
}

/// Makes room in `buf` for `more` bytes, growing it as a `Vec` does (doubling) but never past
/// `most`, the most it may hold: a share counted by the buffer's capacity then stays within
/// the limit of what it holds, not up to twice that.
pub fn grow_within(buf: &mut Vec<u8>, more: usize, most: usize) {
    let needed = buf.len().saturating_add(more);
    if needed <= buf.capacity() {
        return;
    }
    let target = buf
        .capacity()
        .saturating_mul(2)
        .max(needed)
        .min(most.max(needed));
    buf.reserve_exact(target - buf.len());
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: usize) -> Arc<HeldBytes> {
        HeldBytes::new(
            limit,
            prometheus::IntGauge::new("held", "held").unwrap(),
            prometheus::IntCounter::new("refused", "refused").unwrap(),
        )
    }

    /// Shares grow and shrink within the budget; one that would pass it is refused and keeps
    /// what it held, without taking room from the others; dropped shares give all back.
    #[test]
    fn shares_stay_within_the_budget() {
        let b = budget(100);
        let mut one = b.hold();
        let mut two = b.hold();
        one.set(60).unwrap();
        assert_eq!(two.set(41), Err(Full));
        assert_eq!((two.bytes(), b.in_use()), (0, 60));
        two.set(40).unwrap();
        assert_eq!(one.add(1), Err(Full));
        one.set(10).unwrap();
        two.add(50).unwrap();
        assert_eq!((b.in_use(), b.gauge.get(), b.refusals.get()), (100, 100, 2));
        drop(one);
        assert_eq!(b.in_use(), 90);
        drop(two);
        assert_eq!((b.in_use(), b.gauge.get()), (0, 0));
        let mut big = budget(0).hold();
        big.set(usize::MAX / 2).unwrap();
        assert_eq!(Held::unbounded().set(usize::MAX), Ok(()));
        let full = budget(10);
        let mut answer = full.hold_counted();
        answer.set(25).unwrap();
        assert_eq!(full.hold().add(1), Err(Full));
        assert_eq!((full.in_use(), full.refusals.get()), (25, 1));
        drop(answer);
        assert_eq!(full.in_use(), 0);
    }

    /// What a request needs beside what it read is given while it holds all the budget holds,
    /// whatever its size (counted, not refused: on an idle gateway a refusal would come again
    /// on every retry), and refused where others hold part of it and there is no room.
    #[test]
    fn a_lone_request_is_given_what_it_needs_besides() {
        let b = budget(100);
        let mut lone = b.hold();
        lone.set(60).unwrap();
        lone.add_unless_alone(120).unwrap();
        assert_eq!((b.in_use(), b.refusals.get()), (180, 0));
        assert_eq!(b.hold().add(1), Err(Full));
        drop(lone);
        let mut one = b.hold();
        let mut other = b.hold();
        one.set(60).unwrap();
        other.set(10).unwrap();
        assert_eq!(one.add_unless_alone(120), Err(Full));
        assert_eq!((one.bytes(), b.in_use(), b.refusals.get()), (60, 70, 2));
        one.add_unless_alone(30).unwrap();
        drop((one, other));
        assert_eq!(b.in_use(), 0);
    }

    /// What a request has built and will write is kept counted, even past the budget (a
    /// refused growth left it uncounted while it was written).
    #[test]
    fn what_is_built_is_kept_counted() {
        let b = budget(100);
        let mut other = b.hold();
        other.set(90).unwrap();
        let mut built = b.hold();
        assert_eq!(built.set(30), Err(Full));
        built.keep(30);
        assert_eq!((built.bytes(), b.in_use()), (30, 120));
        built.keep(5);
        assert_eq!(b.in_use(), 95);
        assert_eq!(built.add(10), Err(Full));
        drop((built, other));
        assert_eq!(b.in_use(), 0);
    }

    /// A buffer grown piece by piece doubles as a `Vec` would, but never past its most.
    #[test]
    fn buffers_grow_within_their_most() {
        let mut buf = Vec::new();
        for piece in [1000, 3000, 10_000, 50_000, 50_000, 36_000] {
            grow_within(&mut buf, piece, 150_000);
            assert!(buf.capacity() >= buf.len() + piece);
            buf.extend(std::iter::repeat_n(0u8, piece));
            assert!(buf.capacity() <= 150_000, "{}", buf.capacity());
        }
        assert_eq!((buf.len(), buf.capacity()), (150_000, 150_000));
        let mut buf = vec![0u8; 10];
        grow_within(&mut buf, 1, 11);
        assert_eq!(buf.capacity(), 11);
    }

    /// Whatever the order of many threads' growths and drops, the budget never holds more
    /// than its limit, and once every share is gone it holds nothing.
    #[test]
    fn shares_of_many_threads_never_pass_the_limit() {
        let b = budget(1000);
        let most = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for t in 0..4usize {
                let (b, most) = (b.clone(), most.clone());
                scope.spawn(move || {
                    let mut shares: Vec<Held> = Vec::new();
                    for i in 0..5000usize {
                        let n = (i * 7 + t * 13) % 300;
                        match i % 3 {
                            0 => shares.push(b.hold()),
                            1 if !shares.is_empty() => {
                                let at = i % shares.len();
                                let _ = shares[at].set(n);
                            }
                            _ if shares.len() > 4 => drop(shares.swap_remove(0)),
                            _ => {}
                        }
                        most.fetch_max(b.in_use(), Ordering::Relaxed);
                    }
                });
            }
        });
        assert!(most.load(Ordering::Relaxed) <= 1000);
        assert!(
            most.load(Ordering::Relaxed) > 500,
            "the test never filled it"
        );
        assert_eq!(b.in_use(), 0);
    }
}

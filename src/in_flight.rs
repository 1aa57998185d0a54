//! A count of things under way, and a wait for none left: the S3 listener's open connections
//! (a stop waits for them within its grace period) and the completes and copies a backend is
//! still carrying out (a stop waits for them to their end).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    none_left: Notify,
}

/// One thing under way, for as long as it lives.
pub struct InFlightGuard(Arc<InFlight>);

impl InFlight {
    pub fn begin(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.clone())
    }

    /// How many are under way.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Returns once none is under way.
    pub async fn all_done(&self) {
        loop {
            let notified = self.none_left.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

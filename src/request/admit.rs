//! Admission: how many requests the gateway works on at once, overall and per client address.
//! A request over either limit is answered at once with HCP's overload answer, 503
//! ServiceUnavailable with `Retry-After`, instead of queueing until every client times out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Limits of zero mean "no limit".
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_client: usize,
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total,
    PerClient,
}

impl Refused {
    pub fn name(self) -> &'static str {
        match self {
            Refused::Total => "total",
            Refused::PerClient => "per-client",
        }
    }
}

/// A request being worked on; dropping it frees its place.
#[derive(Debug)]
pub struct Permit<'a> {
    admission: &'a Admission,
    client: Option<IpAddr>,
}

impl Admission {
    pub fn new(max_total: usize, max_per_client: usize) -> Admission {
        Admission {
            max_total,
            max_per_client,
            total: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a place for a request from `client`, or says which limit is reached.
    pub fn admit(&self, client: Option<IpAddr>) -> Result<Permit<'_>, Refused> {
        let before = self.total.fetch_add(1, Ordering::AcqRel);
        if self.max_total > 0 && before >= self.max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Total);
        }
        // Per-client counting takes a lock, so it is skipped entirely when unlimited.
        let client = client.filter(|_| self.max_per_client > 0);
        if let Some(ip) = client {
            let mut map = self.per_client.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= self.max_per_client {
                drop(map);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(Refused::PerClient);
            }
            *n += 1;
        }
        Ok(Permit {
            admission: self,
            client,
        })
    }

    /// Requests being worked on now.
    pub fn in_flight(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(ip) = self.client {
            let mut map = self
                .admission
                .per_client
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
        self.admission.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_places_come_back() {
        let a = Admission::new(3, 2);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = a.admit(Some(one)).unwrap();
        let p2 = a.admit(Some(one)).unwrap();
        assert_eq!(a.admit(Some(one)).unwrap_err(), Refused::PerClient);
        let p3 = a.admit(Some(two)).unwrap();
        assert_eq!(a.admit(Some(two)).unwrap_err(), Refused::Total);
        assert_eq!(a.in_flight(), 3);
        drop(p1);
        let p4 = a.admit(Some(one)).unwrap();
        drop((p2, p3, p4));
        assert_eq!(a.in_flight(), 0);
        assert!(a.per_client.lock().unwrap().is_empty());
    }

    #[test]
    fn zero_is_unlimited() {
        let a = Admission::new(0, 0);
        let permits: Vec<_> = (0..1000).map(|_| a.admit(None).unwrap()).collect();
        assert_eq!(a.in_flight(), 1000);
        drop(permits);
        assert_eq!(a.in_flight(), 0);
    }
}

//! Backend reachability for `/readyz`. Actively, every backend is probed every few seconds: a
//! plain-HTTP backend must answer a `HEAD /` with any HTTP status, a TLS backend must accept a
//! TCP connection. Passively, requests that could not reach a backend (connection refused or
//! timed out, TLS failure) count against it — never a backend's answer to a request, its hanging
//! up on one, or a read timeout, which a client could provoke at will. A backend is unreachable while its probe fails
//! or while its last `PASSIVE_FAILURES` requests failed within `PASSIVE_WINDOW`, so that a pod
//! whose backend is gone stops receiving traffic and gets it back when the backend returns.

use std::net::SocketAddr;

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::observe::metrics::Metrics;

/// How often each backend is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// Failed requests in a row that make a backend unreachable...
pub const PASSIVE_FAILURES: u32 = 3;
/// ...as long as the last of them is this recent.
pub const PASSIVE_WINDOW: Duration = Duration::from_secs(10);

/// Where one backend is and how it is probed; one value shared by the request path (which
/// connects wherever `resolved` points) and the probe (which refreshes it).
#[derive(Debug)]
pub struct Reach {
    pub name: String,
    pub resolved: ArcSwap<SocketAddr>,
    /// Resolved again every `RESOLVE_EVERY` probes.
    pub dns_name: Option<(String, u16)>,
    /// The backend's connect timeout (a probe waits at most `PROBE_INTERVAL`).
    pub timeout: Duration,
    /// Probe with an HTTP request (plain-HTTP backends), not just a TCP connect.
    pub http: bool,
}

impl Reach {
    /// The backend's address as last resolved.
    pub fn addr(&self) -> SocketAddr {
        **self.resolved.load()
    }

    /// Whether `addr` is no backend's: the placeholder of a name not resolved yet (a Service
    /// not created when the gateway started), which no request connects to and the probe
    /// resolves every round. (Resolved addresses are never unspecified: [`addresses_of`].)
    pub fn unresolved(addr: SocketAddr) -> bool {
        addr.ip().is_unspecified()
    }

    /// The placeholder address of a name not resolved yet.
    pub fn placeholder(port: u16) -> SocketAddr {
        SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port))
    }
}

/// A backend name's addresses, but unspecified ones (0.0.0.0, a blocklist's answer, names no
/// backend: Linux would connect to this host).
pub async fn addresses_of(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let addrs = tokio::net::lookup_host((host, port)).await?;
    Ok(addrs.filter(|a| !Reach::unresolved(*a)).collect())
}

/// Of a name's addresses, the first that accepts a connection within `timeout`, else the first:
/// `localhost` resolves to `::1` before `127.0.0.1` on many systems, while a backend may listen
/// on one of them only (clients try each address in turn; the gateway picks one per resolution).
pub async fn reachable(addrs: &[SocketAddr], timeout: Duration) -> Option<SocketAddr> {
    if addrs.len() > 1 {
        for addr in addrs {
            let connect = tokio::net::TcpStream::connect(addr);
            if let Ok(Ok(_)) = tokio::time::timeout(timeout, connect).await {
                return Some(*addr);
            }
        }
    }
    addrs.first().copied()
}

/// Probes between two DNS resolutions of a backend's name (about half a minute).
const RESOLVE_EVERY: u32 = 15;

struct Probe {
    reach: Arc<Reach>,
    up: AtomicBool,
    failures: Mutex<Streak>,
    /// Whether `failures` holds anything, so that a successful request (the common case) resets
    /// nothing and takes no lock.
    has_failures: AtomicBool,
}

/// Requests that failed in a row: when the last `PASSIVE_FAILURES` of them did, newest last
/// (failures hours apart on a backend seldom asked are no outage).
#[derive(Default, Clone, Copy)]
struct Streak {
    times: [Option<Instant>; PASSIVE_FAILURES as usize],
}

impl Streak {
    fn failed(&mut self, at: Instant) {
        self.times.rotate_left(1);
        self.times[self.times.len() - 1] = Some(at);
    }

    /// Whether the last `PASSIVE_FAILURES` requests failed, the first of them within
    /// `PASSIVE_WINDOW` of `now`.
    fn failing(&self, now: Instant) -> bool {
        self.times[0].is_some_and(|t| now.duration_since(t) < PASSIVE_WINDOW)
    }
}

pub struct BackendHealth {
    probes: Vec<Probe>,
    metrics: Arc<Metrics>,
}

impl BackendHealth {
    pub fn new(
        backends: impl IntoIterator<Item = Arc<Reach>>,
        metrics: Arc<Metrics>,
    ) -> BackendHealth {
        BackendHealth {
            probes: backends
                .into_iter()
                .map(|reach| Probe {
                    reach,
                    up: AtomicBool::new(false),
                    failures: Mutex::new(Streak::default()),
                    has_failures: AtomicBool::new(false),
                })
                .collect(),
            metrics,
        }
    }

    /// The names of the backends that did not accept a connection at the last probe, or whose
    /// recent requests all failed.
    pub fn unreachable(&self) -> Vec<&str> {
        self.unreachable_at(Instant::now())
    }

    fn unreachable_at(&self, now: Instant) -> Vec<&str> {
        self.probes
            .iter()
            .filter(|p| {
                !p.up.load(Ordering::Acquire)
                    || p.failures.lock().expect("not poisoned").failing(now)
            })
            .map(|p| p.reach.name.as_str())
            .collect()
    }

    /// Notes whether a request reached `backend` (an answer of any status counts as reached).
    /// The clock is read only for a failure: a success ends the streak, whenever it was.
    pub fn record(&self, backend: &str, reached: bool) {
        self.record_at(backend, reached, Instant::now);
    }

    fn record_at(&self, backend: &str, reached: bool, now: impl FnOnce() -> Instant) {
        let Some(p) = self.probes.iter().find(|p| p.reach.name == backend) else {
            return;
        };
        if reached {
            if p.has_failures.swap(false, Ordering::AcqRel) {
                *p.failures.lock().expect("not poisoned") = Streak::default();
                let up = p.up.load(Ordering::Acquire);
                self.metrics.set_backend_up(&p.reach.name, up);
            }
            return;
        }
        let mut streak = p.failures.lock().expect("not poisoned");
        let at = now();
        streak.failed(at);
        p.has_failures.store(true, Ordering::Release);
        // (`backend_up` says what `/readyz` does: unreachable while its requests all fail.)
        if streak.failing(at) {
            self.metrics.set_backend_up(&p.reach.name, false);
        }
    }

    /// Probes every backend once, concurrently.
    pub async fn probe_all(&self) {
        let rounds = self.probes.iter().map(|p| async move {
            let addr = p.reach.addr();
            let probed = match Reach::unresolved(addr) {
                true => None,
                false => Some(
                    tokio::time::timeout(
                        p.reach.timeout.min(PROBE_INTERVAL),
                        probe(addr, p.reach.http),
                    )
                    .await,
                ),
            };
            // (A probe this process could not make — no descriptor left — says nothing of the
            // backend: what was known stands.)
            if let Some(Ok(Err(e))) = &probed {
                if crate::server::open_files::out_of_resources(e) {
                    tracing::warn!(backend = %p.reach.name, "backend not probed: {e}");
                    return;
                }
            }
            let up = matches!(probed, Some(Ok(Ok(true))));
            let was = p.up.swap(up, Ordering::AcqRel);
            if was != up {
                if up {
                    tracing::info!(backend = %p.reach.name, "backend reachable");
                } else {
                    tracing::warn!(backend = %p.reach.name, %addr, "backend unreachable");
                }
            }
            let failing = p
                .failures
                .lock()
                .expect("not poisoned")
                .failing(Instant::now());
            self.metrics.set_backend_up(&p.reach.name, up && !failing);
        });
        futures_util::future::join_all(rounds).await;
    }
}

/// One probe: a TCP connection, and over plain HTTP an answer to `HEAD /` that starts like one.
async fn probe(addr: SocketAddr, http: bool) -> std::io::Result<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    if !http {
        return Ok(true);
    }
    let request = format!("HEAD / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 8];
    let mut have = 0;
    while have < head.len() {
        let n = conn.read(&mut head[have..]).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(head.starts_with(b"HTTP/1."))
}

impl BackendHealth {
    /// Resolves the backends' names again (off the event loop, as tokio resolves); a changed
    /// address is used by the next connections, pooled ones finish where they are.
    pub async fn resolve_all(&self) {
        self.resolve(false).await;
    }

    /// Resolves the names of every backend, or only of those not resolved yet.
    async fn resolve(&self, only_unresolved: bool) {
        for p in &self.probes {
            let Some((host, port)) = &p.reach.dns_name else {
                continue;
            };
            let current = p.reach.addr();
            if only_unresolved && !Reach::unresolved(current) {
                continue;
            }
            match addresses_of(host, *port).await {
                Ok(addrs) => {
                    // A reachable address that the name still has is kept.
                    if addrs.contains(&current) && p.up.load(Ordering::Acquire) {
                        continue;
                    }
                    let timeout = p.reach.timeout.min(PROBE_INTERVAL);
                    if let Some(addr) = reachable(&addrs, timeout).await {
                        if addr != current {
                            tracing::info!(backend = %p.reach.name, %addr, "backend address changed");
                            p.reach.resolved.store(Arc::new(addr));
                        }
                    }
                }
                Err(e) => tracing::warn!(backend = %p.reach.name, "cannot resolve {host}: {e}"),
            }
        }
    }

    /// Probes (and now and then resolves) until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut round = 0u32;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PROBE_INTERVAL) => {
                    round += 1;
                    // (Names not resolved yet are tried every round, the others now and then.)
                    self.resolve(!round.is_multiple_of(RESOLVE_EVERY)).await;
                    self.probe_all().await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name that did not resolve at start is down until it does, and resolved by the next
    /// round that finds it.
    #[tokio::test]
    async fn a_name_not_resolved_yet_is_down_until_it_resolves() {
        let reach = Arc::new(Reach {
            name: "b".to_string(),
            resolved: ArcSwap::from_pointee("0.0.0.0:9000".parse().unwrap()),
            dns_name: Some(("localhost".to_string(), 9000)),
            timeout: Duration::from_secs(1),
            http: true,
        });
        let health = BackendHealth::new([reach.clone()], Arc::new(Metrics::new()));
        health.probe_all().await;
        assert_eq!(health.unreachable(), ["b"]);
        health.resolve_all().await;
        assert!(!Reach::unresolved(reach.addr()));
        assert!(reach.addr().ip().is_loopback(), "{}", reach.addr());
    }

    #[tokio::test]
    async fn names_are_resolved_again() {
        let reach = Arc::new(Reach {
            name: "b".to_string(),
            resolved: ArcSwap::from_pointee("192.0.2.1:9000".parse().unwrap()),
            dns_name: Some(("localhost".to_string(), 9000)),
            timeout: Duration::from_secs(1),
            http: true,
        });
        let health = BackendHealth::new([reach.clone()], Arc::new(Metrics::new()));
        health.resolve_all().await;
        let now: SocketAddr = reach.addr();
        assert!(now.ip().is_loopback() && now.port() == 9000, "{now}");
    }

    #[tokio::test]
    async fn of_several_addresses_the_one_that_accepts_is_taken() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed: SocketAddr = format!("[::1]:{}", open.port()).parse().unwrap();
        let refused = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let t = Duration::from_secs(1);
        assert_eq!(reachable(&[closed, open], t).await, Some(open));
        assert_eq!(reachable(&[refused, open], t).await, Some(open));
        // None accepts: the first, as the name gave it.
        assert_eq!(reachable(&[refused, closed], t).await, Some(refused));
        assert_eq!(reachable(&[], t).await, None);
    }

    #[test]
    fn failed_requests_make_a_backend_unreachable_for_a_while() {
        let health = BackendHealth::new(
            [Arc::new(Reach {
                name: "b".to_string(),
                resolved: ArcSwap::from_pointee("127.0.0.1:1".parse().unwrap()),
                dns_name: None,
                timeout: Duration::from_secs(1),
                http: true,
            })],
            Arc::new(Metrics::new()),
        );
        health.probes[0].up.store(true, Ordering::Release);
        health.metrics.set_backend_up("b", true);
        let t0 = Instant::now();
        for i in 0..PASSIVE_FAILURES {
            assert!(health.unreachable_at(t0).is_empty(), "after {i} failures");
            health.record_at("b", false, || t0);
        }
        assert_eq!(health.unreachable_at(t0), ["b"]);
        // (`backend_up` says so too, as `/readyz` does.)
        let gauge = || health.metrics.backend_up.with_label_values(&["b"]).get();
        assert_eq!(gauge(), 0);
        assert!(
            health.unreachable_at(t0 + PASSIVE_WINDOW).is_empty(),
            "failures age out"
        );
        // Failures far apart are no streak, however many; the last ones close together are.
        let later = t0 + PASSIVE_WINDOW * 6;
        for i in 1..=PASSIVE_FAILURES {
            health.record_at("b", false, || later + PASSIVE_WINDOW * 6 * i);
        }
        let last = later + PASSIVE_WINDOW * 6 * PASSIVE_FAILURES;
        assert!(
            health.unreachable_at(last).is_empty(),
            "failures minutes apart"
        );
        for i in 1..PASSIVE_FAILURES {
            health.record_at("b", false, || last + Duration::from_secs(u64::from(i)));
        }
        assert_eq!(health.unreachable_at(last + Duration::from_secs(3)), ["b"]);
        // (A success reads no clock: it ends the streak whenever it came.)
        health.record_at("b", true, || panic!("a success needs no time"));
        assert_eq!(gauge(), 1);
        assert!(
            health.unreachable_at(t0).is_empty(),
            "one answer resets the streak"
        );
    }
}

//! Backend reachability for `/readyz`: every backend is probed with a TCP connect every few
//! seconds, so that a pod whose backend is gone stops receiving traffic and gets it back when
//! the backend returns.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;

/// How often each backend is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

struct Probe {
    name: String,
    addr: SocketAddr,
    timeout: Duration,
    up: AtomicBool,
}

pub struct BackendHealth {
    probes: Vec<Probe>,
    metrics: Arc<Metrics>,
}

impl BackendHealth {
    pub fn new(
        backends: impl IntoIterator<Item = (String, SocketAddr, Duration)>,
        metrics: Arc<Metrics>,
    ) -> BackendHealth {
        BackendHealth {
            probes: backends
                .into_iter()
                .map(|(name, addr, timeout)| Probe {
                    name,
                    addr,
                    timeout: timeout.min(PROBE_INTERVAL),
                    up: AtomicBool::new(false),
                })
                .collect(),
            metrics,
        }
    }

    /// The names of the backends that did not accept a connection at the last probe.
    pub fn unreachable(&self) -> Vec<&str> {
        self.probes
            .iter()
            .filter(|p| !p.up.load(Ordering::Acquire))
            .map(|p| p.name.as_str())
            .collect()
    }

    /// Probes every backend once, concurrently.
    pub async fn probe_all(&self) {
        let rounds = self.probes.iter().map(|p| async move {
            let up = matches!(
                tokio::time::timeout(p.timeout, tokio::net::TcpStream::connect(p.addr)).await,
                Ok(Ok(_))
            );
            let was = p.up.swap(up, Ordering::AcqRel);
            if was != up {
                if up {
                    tracing::info!(backend = %p.name, "backend reachable");
                } else {
                    tracing::warn!(backend = %p.name, addr = %p.addr, "backend unreachable");
                }
            }
            self.metrics
                .backend_up
                .with_label_values(&[p.name.as_str()])
                .set(up as i64);
        });
        futures_util::future::join_all(rounds).await;
    }

    /// Probes until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PROBE_INTERVAL) => self.probe_all().await,
                _ = shutdown.changed() => return,
            }
        }
    }
}

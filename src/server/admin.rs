//! The admin listener: `/healthz` (alive), `/readyz` (ready to serve) and `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::backend::health::BackendHealth;
use crate::observe::metrics::Metrics;

pub struct Admin {
    pub metrics: Arc<Metrics>,
    /// Set once configuration is loaded, the local backend runs and the listeners are bound.
    pub ready: Arc<AtomicBool>,
    /// Set when shutdown begins: not ready, whatever else holds (`shutdown_delay_seconds`).
    pub stopping: Arc<AtomicBool>,
    /// Every backend's reach at its last probe: reported by `/readyz`, and judged where
    /// `readiness = "backends"` (`judges_backends`).
    pub health: Arc<BackendHealth>,
    pub judges_backends: bool,
    /// The embedded store's metadata database broken by an I/O failure (redb then refuses
    /// every transaction until it is opened again): not alive — a restart opens it again.
    pub store_broken: Option<Arc<AtomicBool>>,
    /// How long one exchange — the wait for its request, the request, the answer — may take
    /// (2 s, or `client_header_timeout_seconds` if shorter: `server::ADMIN_EXCHANGE`): a probe
    /// or a scrape is small, and a connection that trickles or idles is closed after it.
    pub exchange_deadline: std::time::Duration,
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        // One exchange a connection: a peer that asks again and again within each exchange's
        // deadline would hold an admin place for good, and 64 of them every probe's.
        session.set_keepalive(None);
        let path = session.req_header().uri.path().to_string();
        let (status, content_type, body) = self.answer(&path);
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body)
            .expect("valid response")
    }
}

impl Admin {
    /// The answer to `path`: its status, type and body.
    fn answer(&self, path: &str) -> (u16, &'static str, Vec<u8>) {
        let broken = self
            .store_broken
            .as_ref()
            .is_some_and(|b| b.load(Ordering::Acquire));
        match path {
            "/healthz" | "/readyz" if broken => (
                503,
                "text/plain",
                b"not alive: the embedded store's metadata database failed (I/O); restart\n"
                    .to_vec(),
            ),
            "/healthz" => (200, "text/plain", b"ok\n".to_vec()),
            "/readyz" if self.stopping.load(Ordering::Acquire) => {
                (503, "text/plain", b"not ready: shutting down\n".to_vec())
            }
            "/readyz" if !self.ready.load(Ordering::Acquire) => {
                (503, "text/plain", b"not ready: starting\n".to_vec())
            }
            "/readyz" => match self.health.unreachable().as_slice() {
                [] => (200, "text/plain", b"ready\n".to_vec()),
                down if self.judges_backends => (
                    503,
                    "text/plain",
                    format!("not ready: backend unreachable: {}\n", down.join(", ")).into_bytes(),
                ),
                down => (
                    200,
                    "text/plain",
                    format!("ready; backend unreachable: {}\n", down.join(", ")).into_bytes(),
                ),
            },
            "/metrics" => (200, "text/plain; version=0.0.4", self.metrics.render()),
            _ => (404, "text/plain", b"not found\n".to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An embedded store whose metadata database broke is not alive: `/healthz` and
    /// `/readyz` answer 503, so that the process is restarted and the database opened again.
    #[test]
    fn a_broken_store_is_not_alive() {
        let metrics = Arc::new(Metrics::new());
        let broken = Arc::new(AtomicBool::new(false));
        let admin = Admin {
            metrics: metrics.clone(),
            ready: Arc::new(AtomicBool::new(true)),
            stopping: Arc::new(AtomicBool::new(false)),
            health: Arc::new(BackendHealth::new([], metrics)),
            judges_backends: false,
            store_broken: Some(broken.clone()),
            exchange_deadline: std::time::Duration::from_secs(2),
        };
        assert_eq!(admin.answer("/healthz").0, 200);
        assert_eq!(admin.answer("/readyz").0, 200);
        broken.store(true, Ordering::Release);
        for path in ["/healthz", "/readyz"] {
            let (status, _, body) = admin.answer(path);
            assert_eq!(status, 503, "{path}");
            assert!(String::from_utf8(body)
                .unwrap()
                .contains("metadata database"));
        }
        assert_eq!(admin.answer("/metrics").0, 200);
    }
}

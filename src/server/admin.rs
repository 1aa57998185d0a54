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
    /// How long one exchange — the wait for its request, the request, the answer — may take
    /// (2 s, or `client_header_timeout_seconds` if shorter: `server::ADMIN_EXCHANGE`): a probe
    /// or a scrape is small, and a connection that trickles or idles is closed after it.
    pub exchange_deadline: std::time::Duration,
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let (status, content_type, body) = match path.as_str() {
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
        };
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body)
            .expect("valid response")
    }
}

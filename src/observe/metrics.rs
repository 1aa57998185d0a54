//! Prometheus metrics, in a registry of the gateway's own (several gateways can share a process).
//! Names follow Prometheus conventions: `hcp_gateway_` prefix, `_total` counters, base units.

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets from half a millisecond to half a minute.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// What one answered request carried, for [`Metrics::request_done`].
pub struct RequestDone<'a> {
    pub operation: &'a str,
    pub tenant: &'a str,
    pub backend: &'a str,
    pub status: u16,
    pub code: &'a str,
    pub elapsed: std::time::Duration,
    pub backend_elapsed: Option<std::time::Duration>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub backend_seconds: HistogramVec,
    pub bytes_received: IntCounterVec,
    pub bytes_sent: IntCounterVec,
    pub in_flight: IntGauge,
    pub auth_failures: IntCounterVec,
    pub overload_refusals: IntCounterVec,
    pub client_timeouts: IntCounterVec,
    pub client_connections: IntGauge,
    /// Bytes requests hold in memory at once (`request::held`).
    pub held_bytes: IntGauge,
    pub connection_limit_reached: prometheus::IntCounter,
    pub backend_requests: IntCounterVec,
    pub backend_connections: IntCounterVec,
    pub backend_up: IntGaugeVec,
    pub backend_retries: IntCounterVec,
    pub code_rewrites: IntCounterVec,
    pub cache_lookups: IntCounterVec,
    pub payloads: IntCounterVec,
    pub reloads: IntCounterVec,
    pub build_info: IntGaugeVec,
    /// The handles `request_done` updates, resolved once per label set (see [`DoneHandles`]).
    /// Keyed by the hash of a label set, made by the map's own hasher (its five labels are the
    /// gateway's own names, never a client's).
    done: std::sync::RwLock<crate::ConfigMap<u64, Vec<std::sync::Arc<DoneHandles>>>>,
}

/// A backend's series of requests sent and connections taken, resolved once
/// ([`Metrics::backend_counters`], when the gateway is made) and counted without a lookup of
/// their labels per request.
#[derive(Clone, Debug)]
pub struct BackendCounters {
    requests: prometheus::IntCounter,
    /// Connections taken new, then from the pool (`reused="false"`, `"true"`).
    connections: [prometheus::IntCounter; 2],
}

impl BackendCounters {
    /// A request sent to the backend.
    pub fn request(&self) {
        self.requests.inc();
    }

    /// A connection to the backend taken, new or from the pool.
    pub fn connection(&self, reused: bool) {
        self.connections[usize::from(reused)].inc();
    }

    /// Counters of no registry: a backend's until a gateway resolves its own.
    pub fn unregistered() -> BackendCounters {
        let counter = || prometheus::IntCounter::new("unregistered", "-").expect("valid name");
        BackendCounters {
            requests: counter(),
            connections: [counter(), counter()],
        }
    }
}

/// One label set of `request_done` and its series: found by a hash of the labels and a
/// comparison, instead of five `with_label_values` (each hashing its labels, taking the
/// vector's lock and cloning a handle) per request.
struct DoneHandles {
    labels: (String, String, String, u16, String),
    requests: prometheus::IntCounter,
    seconds: prometheus::Histogram,
    /// (Resolved on the first answer that went to a backend: a label set answered by the
    /// gateway alone has no backend series.)
    backend_seconds: std::sync::OnceLock<prometheus::Histogram>,
    received: prometheus::IntCounter,
    sent: prometheus::IntCounter,
}

impl DoneHandles {
    fn is_for(&self, done: &RequestDone<'_>) -> bool {
        let (operation, tenant, backend, status, code) = &self.labels;
        *status == done.status
            && operation == done.operation
            && tenant == done.tenant
            && backend == done.backend
            && code == done.code
    }
}

/// The label values every gateway has from its start, so that a series reads 0 until its first
/// event instead of being absent (a rate over an absent series is no alert at all).
const AUTH_CODES: &[&str] = &[
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "RequestTimeTooSkewed",
    "MissingSecurityHeader",
    "InvalidArgument",
];
const PAYLOAD_MODES: &[&str] = &[
    "signed",
    "unsigned",
    "aws-chunked-signed",
    "aws-chunked-signed-trailer",
    "aws-chunked-unsigned-trailer",
];
const RETRY_REASONS: &[&str] = &["connect", "connection", "busy"];

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    register(registry, HistogramVec::new(opts, labels))
}

fn register<C: Collector + Clone + 'static>(registry: &Registry, made: prometheus::Result<C>) -> C {
    let collector = made.expect("valid metric");
    registry
        .register(Box::new(collector.clone()))
        .expect("metric registered once");
    collector
}

impl Metrics {
    // One entry per metric, name and help beside the field: a table, not a procedure.
    #[allow(clippy::too_many_lines)]
    pub fn new() -> Metrics {
        let r = Registry::new();
        let metrics = Metrics {
            requests: counter(
                &r,
                "hcp_gateway_requests_total",
                "Requests answered, by operation, tenant, backend, HCP status and HCP code",
                &["operation", "tenant", "backend", "status", "code"],
            ),
            request_seconds: histogram(
                &r,
                "hcp_gateway_request_duration_seconds",
                "Whole-request latency, by operation",
                &["operation"],
            ),
            backend_seconds: histogram(
                &r,
                "hcp_gateway_backend_duration_seconds",
                "Time from sending a request to the backend to its answer's headers, by backend and operation",
                &["backend", "operation"],
            ),
            bytes_received: counter(
                &r,
                "hcp_gateway_received_bytes_total",
                "Request body bytes received from clients, by operation",
                &["operation"],
            ),
            bytes_sent: counter(
                &r,
                "hcp_gateway_sent_bytes_total",
                "Response body bytes sent to clients, by operation",
                &["operation"],
            ),
            in_flight: register(
                &r,
                IntGauge::new("hcp_gateway_requests_in_flight", "Requests being handled"),
            ),
            auth_failures: counter(
                &r,
                "hcp_gateway_auth_failures_total",
                "Refused authentications and authorisations, by HCP code",
                &["reason"],
            ),
            overload_refusals: counter(
                &r,
                "hcp_gateway_overload_refusals_total",
                "Requests answered 503 because too many were in flight (limit total, per-client; form: form uploads reading their fields) or their bytes would pass server.max_held_bytes (limit held-bytes)",
                &["limit"],
            ),
            client_timeouts: counter(
                &r,
                "hcp_gateway_client_timeouts_total",
                "Client connections closed because a client was too slow: its request's header section (phase header) or taking its answer (phase send)",
                &["phase"],
            ),
            client_connections: register(
                &r,
                IntGauge::new(
                    "hcp_gateway_client_connections",
                    "Client connections open on the S3 listener",
                ),
            ),
            held_bytes: register(
                &r,
                IntGauge::new(
                    "hcp_gateway_held_bytes",
                    "Bytes requests hold in memory at once (chunks being verified, documents and bodies read whole, form files, backend answers read whole), against server.max_held_bytes",
                ),
            ),
            connection_limit_reached: register(
                &r,
                prometheus::IntCounter::new(
                    "hcp_gateway_connection_limit_reached_total",
                    "Times the S3 listener stopped accepting because server.max_connections were open",
                ),
            ),
            backend_requests: counter(
                &r,
                "hcp_gateway_backend_requests_total",
                "Requests sent to backends, by backend",
                &["backend"],
            ),
            backend_connections: counter(
                &r,
                "hcp_gateway_backend_connections_total",
                "Backend connections used, by backend and whether pooled (reused) or new",
                &["backend", "reused"],
            ),
            backend_up: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "hcp_gateway_backend_up",
                        "1 while the backend is reachable, by backend: it accepts connections (probed) and its recent requests have not all failed, as /readyz judges",
                    ),
                    &["backend"],
                ),
            ),
            backend_retries: counter(
                &r,
                "hcp_gateway_backend_retries_total",
                "Requests sent again to a backend, by backend and reason (connect, connection, busy)",
                &["backend", "reason"],
            ),
            code_rewrites: counter(
                &r,
                "hcp_gateway_code_rewrites_total",
                "Backend error answers turned into HCP's, by backend, backend code and HCP code",
                &["backend", "backend_code", "hcp_code"],
            ),
            cache_lookups: counter(
                &r,
                "hcp_gateway_cache_lookups_total",
                "Cache lookups by cache and result (hit or miss)",
                &["cache", "result"],
            ),
            payloads: counter(
                &r,
                "hcp_gateway_request_payloads_total",
                "Request bodies by how they were signed and framed",
                &["mode"],
            ),
            reloads: counter(
                &r,
                "hcp_gateway_config_reloads_total",
                "Reloads of users and permissions, by result",
                &["result"],
            ),
            build_info: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "hcp_gateway_build_info",
                        "1, labelled with the gateway's version and the commit it was built from",
                    ),
                    &["version", "commit"],
                ),
            ),
            registry: r,
            done: std::sync::RwLock::default(),
        };
        // Resident memory, CPU seconds, open file descriptors and the like (Linux /proc).
        #[cfg(target_os = "linux")]
        metrics
            .registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("metric registered once");
        metrics.initialise();
        metrics
    }

    /// Sets the series that exist from the start: build information, and a 0 for every label
    /// value of the event counters that do not depend on configuration.
    fn initialise(&self) {
        self.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("HCP_GW_COMMIT")])
            .set(1);
        for code in AUTH_CODES {
            self.auth_failures.with_label_values(&[code]);
        }
        for limit in ["total", "per-client", "form"] {
            self.overload_refusals.with_label_values(&[limit]);
        }
        self.client_timeouts.with_label_values(&["header"]);
        self.client_timeouts.with_label_values(&["send"]);
        for mode in PAYLOAD_MODES {
            self.payloads.with_label_values(&[mode]);
        }
        for result in ["ok", "partial", "error"] {
            self.reloads.with_label_values(&[result]);
        }
        for cache in [
            "acl",
            "copy_source_head",
            "folder",
            "locked_bucket",
            "signing_key",
            "versioning",
        ] {
            for result in ["hit", "miss"] {
                self.cache_lookups.with_label_values(&[cache, result]);
            }
        }
    }

    /// Sets every backend's series to 0 (requests, connections, retries) and its `up` gauge to
    /// 0 until its first probe.
    pub fn expect_backends<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for backend in names {
            self.backend_requests.with_label_values(&[backend]);
            self.backend_up.with_label_values(&[backend]);
            for reused in ["true", "false"] {
                self.backend_connections
                    .with_label_values(&[backend, reused]);
            }
            for reason in RETRY_REASONS {
                self.backend_retries.with_label_values(&[backend, reason]);
            }
        }
    }

    /// One answered request, with what it carried: the counters and histograms of
    /// `hcp_gateway_requests_total`, `_request_duration_seconds`,
    /// `_backend_duration_seconds` and the byte counters.
    pub fn request_done(&self, done: &RequestDone<'_>) {
        let handles = self.done_handles(done);
        handles.requests.inc();
        handles.seconds.observe(done.elapsed.as_secs_f64());
        if let Some(backend_elapsed) = done.backend_elapsed {
            handles
                .backend_seconds
                .get_or_init(|| {
                    self.backend_seconds
                        .with_label_values(&[done.backend, done.operation])
                })
                .observe(backend_elapsed.as_secs_f64());
        }
        handles.received.inc_by(done.bytes_in);
        handles.sent.inc_by(done.bytes_out);
    }

    /// The series of `done`'s labels, resolved on their first request.
    fn done_handles(&self, done: &RequestDone<'_>) -> std::sync::Arc<DoneHandles> {
        use std::hash::BuildHasher;
        let read = self
            .done
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = read.hasher().hash_one((
            done.operation,
            done.tenant,
            done.backend,
            done.status,
            done.code,
        ));
        if let Some(found) = read.get(&key) {
            if let Some(h) = found.iter().find(|h| h.is_for(done)) {
                return h.clone();
            }
        }
        drop(read);
        // (`0` where nothing was answered: the client went away.)
        let status = done.status.to_string();
        let op = [done.operation];
        let handles = std::sync::Arc::new(DoneHandles {
            labels: (
                done.operation.to_string(),
                done.tenant.to_string(),
                done.backend.to_string(),
                done.status,
                done.code.to_string(),
            ),
            requests: self.requests.with_label_values(&[
                done.operation,
                done.tenant,
                done.backend,
                &status,
                done.code,
            ]),
            seconds: self.request_seconds.with_label_values(&op),
            backend_seconds: std::sync::OnceLock::new(),
            received: self.bytes_received.with_label_values(&op),
            sent: self.bytes_sent.with_label_values(&op),
        });
        let mut all = self
            .done
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let same = all.entry(key).or_default();
        if let Some(h) = same.iter().find(|h| h.is_for(done)) {
            return h.clone();
        }
        same.push(handles.clone());
        handles
    }

    /// A refused authentication or authorisation, by the HCP code answered.
    pub fn auth_failure(&self, code: crate::hcp::errors::HcpCode) {
        self.auth_failures.with_label_values(&[code.as_str()]).inc();
    }

    /// A request refused 503 by a concurrency limit (`overall` or `per_client`).
    pub fn overload_refusal(&self, limit: &str) {
        self.overload_refusals.with_label_values(&[limit]).inc();
    }

    /// A connection closed for a too slow client, by phase (`header`; `send` is counted by the
    /// client sockets themselves, `server::send_deadline`).
    pub fn client_timeout(&self, phase: &str) {
        self.client_timeouts.with_label_values(&[phase]).inc();
    }

    /// `backend`'s request and connection series, for its [`BackendCounters`].
    pub fn backend_counters(&self, backend: &str) -> BackendCounters {
        BackendCounters {
            requests: self.backend_requests.with_label_values(&[backend]),
            connections: ["false", "true"].map(|reused| {
                self.backend_connections
                    .with_label_values(&[backend, reused])
            }),
        }
    }

    /// Whether a backend's probe passed.
    pub fn set_backend_up(&self, backend: &str, up: bool) {
        self.backend_up.with_label_values(&[backend]).set(up as i64);
    }

    /// A retry of a backend request, by reason (`connect`, `connection`, `busy`).
    pub fn backend_retry(&self, backend: &str, reason: &str) {
        self.backend_retries
            .with_label_values(&[backend, reason])
            .inc();
    }

    /// A backend error code answered as an HCP code.
    pub fn code_rewrite(
        &self,
        backend: &str,
        backend_code: &str,
        hcp: crate::hcp::errors::HcpCode,
    ) {
        self.code_rewrites
            .with_label_values(&[backend, backend_code, hcp.as_str()])
            .inc();
    }

    /// A request body, by how it was verified.
    pub fn payload(&self, mode: &str) {
        self.payloads.with_label_values(&[mode]).inc();
    }

    /// A configuration reload: `ok`, `partial` (settings that need a restart changed too) or
    /// `error` (refused).
    pub fn reload(&self, result: &'static str) {
        self.reloads.with_label_values(&[result]).inc();
    }

    /// Requests sent to one backend so far.
    pub fn backend_requests(&self, backend: &str) -> u64 {
        self.backend_requests.with_label_values(&[backend]).get()
    }

    /// Counts a cache lookup.
    pub fn cache_lookup(&self, cache: &str, hit: bool) {
        self.cache_lookups
            .with_label_values(&[cache, if hit { "hit" } else { "miss" }])
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8192);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encode metrics");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done<'a>(operation: &'a str, status: u16, code: &'a str) -> RequestDone<'a> {
        RequestDone {
            operation,
            tenant: "t",
            backend: "b",
            status,
            code,
            elapsed: std::time::Duration::from_millis(2),
            backend_elapsed: None,
            bytes_in: 3,
            bytes_out: 5,
        }
    }

    /// The resolved series are the labels' own: each label set counts apart (a hash collision
    /// could only share a bucket, never a series), an unanswered request is status "0", and a
    /// label set answered without a backend has no backend series.
    #[test]
    fn each_label_set_counts_in_its_own_series() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.request_done(&done("GetObject", 200, ""));
        }
        m.request_done(&done("GetObject", 404, "NoSuchKey"));
        m.request_done(&done("PutObject", 0, ""));
        let count = |op: &str, status: &str, code: &str| {
            m.requests
                .with_label_values(&[op, "t", "b", status, code])
                .get()
        };
        assert_eq!(count("GetObject", "200", ""), 3);
        assert_eq!(count("GetObject", "404", "NoSuchKey"), 1);
        assert_eq!(count("PutObject", "0", ""), 1);
        assert_eq!(m.bytes_sent.with_label_values(&["GetObject"]).get(), 4 * 5);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            !text.contains("hcp_gateway_backend_duration_seconds_count"),
            "{text}"
        );
        let mut with_backend = done("GetObject", 200, "");
        with_backend.backend_elapsed = Some(std::time::Duration::from_millis(1));
        m.request_done(&with_backend);
        let seconds = m.backend_seconds.with_label_values(&["b", "GetObject"]);
        assert_eq!(seconds.get_sample_count(), 1);
    }
}

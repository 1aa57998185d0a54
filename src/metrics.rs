//! Prometheus metrics, in a registry of the gateway's own (several gateways can share a process).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub in_flight: IntGauge,
    pub auth_failures: IntCounterVec,
    pub backend_requests: IntCounterVec,
    pub payloads: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "hcp_gateway_requests_total",
                "Requests answered, by operation, tenant, backend, HCP status and code",
            ),
            &["operation", "tenant", "backend", "status", "code"],
        )
        .unwrap();
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "hcp_gateway_request_duration_seconds",
                "Whole-request latency by operation",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ]),
            &["operation"],
        )
        .unwrap();
        let in_flight =
            IntGauge::new("hcp_gateway_requests_in_flight", "Requests being handled").unwrap();
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "hcp_gateway_auth_failures_total",
                "Authentication failures by HCP code",
            ),
            &["code"],
        )
        .unwrap();
        let backend_requests = IntCounterVec::new(
            Opts::new(
                "hcp_gateway_backend_requests_total",
                "Requests sent to backends, by backend",
            ),
            &["backend"],
        )
        .unwrap();
        let payloads = IntCounterVec::new(
            Opts::new(
                "hcp_gateway_request_payloads_total",
                "Request bodies by how they were signed and framed",
            ),
            &["mode"],
        )
        .unwrap();
        registry
            .register(Box::new(backend_requests.clone()))
            .unwrap();
        registry.register(Box::new(payloads.clone())).unwrap();
        registry.register(Box::new(requests.clone())).unwrap();
        registry
            .register(Box::new(request_seconds.clone()))
            .unwrap();
        registry.register(Box::new(in_flight.clone())).unwrap();
        registry.register(Box::new(auth_failures.clone())).unwrap();
        Metrics {
            registry,
            requests,
            request_seconds,
            in_flight,
            auth_failures,
            backend_requests,
            payloads,
        }
    }

    /// Requests sent to one backend so far.
    pub fn backend_requests(&self, backend: &str) -> u64 {
        self.backend_requests.with_label_values(&[backend]).get()
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
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

//! What operators see: Prometheus metrics ([`metrics`]) and logs ([`logging`]); the access log
//! itself is written by the request path (`request::exchange`).

pub mod logging;
pub mod metrics;

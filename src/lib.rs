//! hcp-s3-gateway: an S3 gateway that answers like Hitachi Content Platform (HCP) and stores on
//! AWS S3, MinIO, Ceph RGW or Huawei OBS. See `docs/architecture.md` for the request path.
//!
//! - [`request`]: the request path, one module per phase — address, classify, authenticate,
//!   authorize, validate, route, sign, forward, respond — with [`request::Gateway::serve`] as
//!   its table of contents.
//! - [`sig`]: signatures shared by verifying and signing (SigV4's one canonicaliser, SigV2/OBS).
//! - [`backend`]: connections to backends, their credentials and health, the embedded store.
//! - [`hcp`]: HCP's error codes, the backend-code mapping tables, XML helpers.
//! - [`config`]: the configuration file and the settings validated from it.
//! - [`server`]: listeners, TLS, the admin endpoints.
//! - [`observe`]: metrics and logging.
//! - [`etag`]: entity-tag lists as conditional headers name them (the gateway's and the
//!   embedded store's one reader).

// The rule of the house: no function longer than a screen (`too-many-lines-threshold` in
// clippy.toml). Tests that read as one scenario say so where they allow it.
#![warn(clippy::too_many_lines)]

pub mod backend;
pub mod config;
pub mod deadline;
pub mod etag;
pub mod hcp;
pub mod in_flight;
pub mod kept;
pub mod observe;
pub mod request;
pub mod server;
pub mod sig;

/// A map keyed by what the configuration names — tenants, backends, users' keys, metric
/// series — or by a backend's resolved address (the connection pool), read on every request
/// and hashed by foldhash (seeded per process) rather than SipHash: a lookup costs a few
/// nanoseconds, not a hundred. Its keys come from the configuration or from DNS, never from a
/// client (a client's name is only looked up), so no client can fill one with colliding keys;
/// a map that keeps what clients send (the per-client admission counts) stays on SipHash.
pub type ConfigMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

//! hcp-s3-gateway: an S3 gateway that answers like Hitachi Content Platform (HCP) and stores on
//! AWS S3, MinIO, Ceph RGW or Huawei OBS. See `docs/architecture.md` for the request path.
//!
//! - [`request`]: the request path, one module per phase (admit, plan, send, respond …), and
//!   the modules its phases delegate to: [`addressing`], [`operation`] (classification),
//!   [`auth`] (authentication and access), [`validation`], [`acl`], [`uploads`], [`complete`],
//!   [`post_object`], [`payload`] (body verification), [`routing`], [`signing`], [`normalize`].
//! - [`sig`]: signatures shared by verifying and signing (SigV4's one canonicaliser, SigV2/OBS).
//! - [`backend`]: connections to backends, their credentials and health, the embedded store.
//! - [`hcp`]: HCP's error codes, the backend-code mapping tables, XML helpers.
//! - [`config`]: the configuration file and the settings validated from it.
//! - [`server`]: listeners, TLS, the admin endpoints.
//! - [`observe`]: metrics and logging.

pub mod acl;
pub mod addressing;
pub mod auth;
pub mod backend;
pub mod complete;
pub mod config;
pub mod hcp;
pub mod normalize;
pub mod observe;
pub mod operation;
pub mod payload;
pub mod post_object;
// The rule of the house: no function of the request path longer than a screen
// (`too-many-lines-threshold` in clippy.toml).
#[warn(clippy::too_many_lines)]
pub mod request;
pub mod routing;
pub mod server;
pub mod sig;
pub mod signing;
pub mod uploads;
pub mod validation;

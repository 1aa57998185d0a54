//! hcp-s3-gateway: an S3 gateway that answers like Hitachi Content Platform (HCP) and stores on
//! AWS S3, MinIO, Ceph RGW or Huawei OBS. See `docs/architecture.md` for the request path.

pub mod acl;
pub mod addressing;
pub mod admin;
pub mod admission;
pub mod auth;
pub mod coalesce;
pub mod complete;
pub mod config;
pub mod credentials;
pub mod errors;
pub mod forward;
pub mod health;
pub mod local_backend;
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod normalize;
pub mod operation;
pub mod payload;
pub mod post_object;
// The rule of the house: no function of the request path longer than a screen
// (`too-many-lines-threshold` in clippy.toml).
#[warn(clippy::too_many_lines)]
pub mod request;
pub mod routing;
pub mod server;
pub mod signing;
pub mod sigv4;
pub mod tls;
pub mod uploads;
pub mod validation;
pub mod xml;

//! The file layer: `config.toml` as written, every section a struct that rejects unknown keys.

use std::path::PathBuf;

use serde::Deserialize;

use super::runtime::*;
use crate::hcp::mapping::Dialect;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub addressing: AddressingSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub users: Vec<UserEntry>,
    #[serde(default)]
    pub tenants: Vec<TenantEntry>,
    #[serde(default)]
    pub backends: Vec<BackendEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: String,
    pub admin_listen: String,
    /// Worker threads of the gateway's runtime; 0 = one per core.
    pub threads: usize,
    pub shutdown_grace_seconds: u64,
    /// On SIGTERM, how long `/readyz` says 503 while the S3 listener still accepts, before the
    /// drain: the time a load balancer or Kubernetes takes to stop sending new connections.
    pub shutdown_delay_seconds: u64,
    /// How long an idle client connection is kept open between requests.
    pub keepalive_seconds: u64,
    /// Time allowed between two reads of a client's request body.
    pub client_body_timeout_seconds: u64,
    /// The slowest a request body may arrive on the whole: besides the pause above, a body
    /// may take the pause plus a second per this many bytes (Apache's `MinRate`), so that one
    /// trickled just inside the pause does not hold its place for ever. 0 = no such limit.
    pub client_body_min_rate_bytes_per_second: u64,
    /// Time allowed for a request's whole header section once the connection is no longer
    /// idle (a client trickling header bytes is closed after it).
    pub client_header_timeout_seconds: u64,
    /// Time a write to a client may wait (a client that stops reading its answer is closed
    /// after it; as nginx's `send_timeout`).
    pub client_send_timeout_seconds: u64,
    /// The slowest a client may take its answers, over the time sends wait for it: besides
    /// the pause above, the waits may take the pause plus a second per this many bytes sent,
    /// so that a reader taking a few bytes just inside the pause does not hold its place for
    /// ever. 0 = no such limit.
    pub client_send_min_rate_bytes_per_second: u64,
    /// How often the files a reload reads (the configuration, its users file, the TLS
    /// certificate and key) are looked at; a change reloads as SIGHUP does (a Kubernetes
    /// Secret mounted as files changes in place). 0 = on SIGHUP only.
    pub reload_check_seconds: u64,
    /// Client connections open at once on the S3 listener; while this many are open, the
    /// next waits in the kernel's accept queue until one closes (nginx's
    /// `worker_connections`). The admin listener is not counted. 0 = no limit.
    pub max_connections: usize,
    /// Requests worked on at once; more are answered 503 ServiceUnavailable at once (HCP's
    /// overload answer) instead of queueing. 0 = no limit.
    pub max_concurrent_requests: usize,
    /// The same per client address (0 = no limit; a sidecar has a single client).
    pub max_concurrent_requests_per_client: usize,
    /// Largest backend response body that is read whole to be rewritten (errors, listings).
    pub max_buffered_response_bytes: usize,
    /// Largest aws-chunked chunk accepted (a signed chunk is held until verified).
    pub max_chunk_bytes: usize,
    /// The bytes all requests may hold in memory at once (held chunks, documents and small
    /// bodies read whole, form files, backend answers read whole); a request that would pass
    /// it is answered 503 ServiceUnavailable (`request::held`). 0 = no limit.
    pub max_held_bytes: usize,
    /// After this long without the backend's answer to CompleteMultipartUpload, commit a 200
    /// and keep the connection alive with whitespace until the result arrives.
    pub complete_keepalive_ms: u64,
    /// How long the backend may take to answer CompleteMultipartUpload (it can take minutes).
    pub complete_timeout_seconds: u64,
    /// Host identifier rendered as `HostId`; defaults to the machine's host name.
    pub host_id: Option<String>,
    pub log_format: LogFormat,
    pub log_level: String,
    /// How object keys appear in the access log: `full`, `hash` (SHA-256, 16 hex digits) or `omit`.
    pub log_keys: LogKeys,
    /// What `/readyz` asks: `process` (the listeners are up; a backend's reach is reported,
    /// not judged) or `backends` (every backend reachable too).
    pub readiness: Readiness,
    /// TLS on the S3 listener: a PEM certificate chain and its private key (both or neither);
    /// reloaded on SIGHUP.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

/// What `/readyz` asks of the gateway before it answers 200.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    /// The gateway itself: configuration loaded, listeners up, not shutting down. Every replica
    /// shares its backends: judging them would take every replica (or the application pod a
    /// sidecar serves) out of service at once, and one backend's outage every tenant's.
    #[default]
    Process,
    /// The gateway and every backend it reaches (each reachable at its last probe).
    Backends,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogKeys {
    #[default]
    Full,
    Hash,
    Omit,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:8081".into(),
            threads: 0,
            shutdown_grace_seconds: 5,
            shutdown_delay_seconds: 0,
            keepalive_seconds: 60,
            client_body_timeout_seconds: 60,
            client_body_min_rate_bytes_per_second: 500,
            client_header_timeout_seconds: 10,
            client_send_timeout_seconds: 60,
            client_send_min_rate_bytes_per_second: 500,
            reload_check_seconds: 10,
            max_connections: 16384,
            max_concurrent_requests: 1024,
            max_concurrent_requests_per_client: 0,
            // A page of 1,000 keys of 4,095 bytes that XML escapes six-fold is 25 MB.
            max_buffered_response_bytes: 32 * 1024 * 1024,
            max_chunk_bytes: 16 * 1024 * 1024,
            max_held_bytes: 64 * 1024 * 1024,
            complete_keepalive_ms: 2000,
            complete_timeout_seconds: 900,
            host_id: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            log_keys: LogKeys::Full,
            readiness: Readiness::Process,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AddressingSection {
    /// HCP domain names: `tenant.DOMAIN` and `bucket.tenant.DOMAIN` are recognised below each.
    pub domains: Vec<String>,
    /// Tenant that serves hosts which name no tenant (an IP address, `localhost`, …).
    pub default_tenant: Option<String>,
}

/// `[limits]`: HCP's request limits, read straight into the validation phase's settings
/// (`validate::Limits`, which rejects unknown keys and defaults to HCP's values).
pub type LimitsSection = crate::request::validate::Limits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Allowed difference between a request's date and the gateway's clock.
    pub clock_skew_seconds: u64,
    /// A TOML file of further `[[users]]` entries (for example a mounted Kubernetes Secret).
    pub users_file: Option<PathBuf>,
    /// The key that binds multipart upload ids to their initiators; every replica needs the
    /// same one. Without it, one is derived from the backends' secrets (see README).
    pub upload_binding_secret: Option<SecretField>,
}

/// The contents of `auth.users_file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UsersFile {
    #[serde(default)]
    pub(super) users: Vec<UserEntry>,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            clock_skew_seconds: 15 * 60,
            users_file: None,
            upload_binding_secret: None,
        }
    }
}

/// A secret given inline, in a file (a mounted Kubernetes Secret) or in an environment variable.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    pub value: Option<String>,
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

/// Accepts `secret = "inline"` as well as `secret = { file = "…" }` / `{ env = "…" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SecretField {
    Inline(String),
    Source(SecretSource),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// HCP user name; the access key is its Base64 form.
    pub username: Option<String>,
    /// HCP password; the secret key is its MD5 as lower-case hex.
    pub password: Option<SecretField>,
    /// A plain key pair, for users that are not HCP-style.
    pub access_key: Option<String>,
    pub secret_key: Option<SecretField>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What the user may do; a user without entries may do nothing.
    #[serde(default)]
    pub permissions: Vec<PermissionEntry>,
    /// The tenant the user belongs to (HCP: every user is a tenant's); the user acts nowhere
    /// else. Without it, signatures that do not cover the Host (SigV2, HCP's scheme, forms)
    /// are accepted only where the grants name a single tenant or only one tenant exists.
    pub tenant: Option<String>,
}

fn yes() -> bool {
    true
}

/// One grant: on a tenant (or `*`) and the buckets matching a pattern, these permissions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionEntry {
    #[serde(default = "any")]
    pub tenant: String,
    /// `*`, an exact name, or a pattern with `*` wildcards (`logs-*`).
    #[serde(default = "any")]
    pub buckets: String,
    /// `read`, `write`, `delete`, `read-acl`, `write-acl`, `admin` (bucket administration),
    /// `purge` (deleting object versions), `all`.
    pub allow: Vec<String>,
}

fn any() -> String {
    "*".into()
}

/// Anonymous access to some of a tenant's buckets (HCP: only where the namespace permits it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnonymousEntry {
    pub buckets: String,
    /// `read` or `read-write`.
    pub access: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    pub name: String,
    pub backend: String,
    /// Prepended to every bucket name at the backend (cloud bucket names are global; HCP's are
    /// per tenant). Listings strip it again.
    #[serde(default)]
    pub bucket_prefix: String,
    /// Buckets that anonymous requests may read (or read and write).
    #[serde(default)]
    pub anonymous: Vec<AnonymousEntry>,
    /// `refuse-unversioned` (HCP's rule, the default: writing a name that exists, as an object
    /// or as a folder, in a bucket without versioning is 409) or `allow` (S3's overwrite).
    #[serde(default)]
    pub overwrite: Overwrite,
    /// HCP's folders: storing `a/b` also creates the folder `a/`, a PUT of `name/` creates a
    /// folder, a GET of one is 404 (off by default: listings then show folder markers, which
    /// applications written for S3 do not expect).
    #[serde(default)]
    pub folders: bool,
    /// Which of HCP's retention modes the tenant's namespaces emulate with S3 Object Lock:
    /// `off` (the default: `x-hcp-retention` and its kin are refused), `enterprise`
    /// (privileged users may delete under retention: governance mode) or `compliance`.
    #[serde(default)]
    pub retention: RetentionMode,
    /// HCP's retention classes: name → an `A+…` offset or a special value (`-1`, `0`, `-2`).
    #[serde(default)]
    pub retention_classes: std::collections::BTreeMap<String, String>,
    /// Where HCP's labeled holds are kept: a bucket of the tenant's backend that the gateway
    /// alone uses (clients cannot name it, listings do not show it). Without it,
    /// `x-hcp-labelretentionhold` is refused.
    #[serde(default)]
    pub labeled_holds_bucket: Option<String>,
    /// Where the gateway keeps what HCP keeps and the backend cannot — bucket owners (and,
    /// where the tenant keeps retention, labeled holds unless `labeled_holds_bucket` names
    /// another): a bucket of the tenant's backend that the gateway alone uses. With it, a
    /// bucket belongs to the user who created it, as in HCP; without it, all users of the
    /// tenant share its buckets.
    #[serde(default)]
    pub records_bucket: Option<String>,
    /// HCP's anonymous access by ACL: anonymous requests are allowed what a bucket's or an
    /// object's ACL grants all users (`all_users`), beyond the `anonymous` entries. Needs
    /// `records_bucket` (where the gateway judges ACLs).
    #[serde(default)]
    pub anonymous_acls: bool,
    /// HCP's tenant-level CORS configuration (a `CORSConfiguration` document, as `PUT ?cors`
    /// takes one): the rules of every bucket of the tenant that has none of its own ("the
    /// namespace inherits the tenant-level configuration"); a bucket's own overrides it.
    #[serde(default)]
    pub cors: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RetentionMode {
    #[default]
    Off,
    Enterprise,
    Compliance,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Overwrite {
    /// S3's overwrite: a deviation from HCP, for applications written for S3.
    Allow,
    /// HCP's rule, the default.
    #[default]
    RefuseUnversioned,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded s3s-fs server, inside the gateway process.
    Local,
    /// Any S3-compatible endpoint: AWS S3, MinIO, Ceph RGW.
    S3,
    /// Huawei OBS.
    Obs,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Signing {
    #[default]
    V4,
    Obs,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AddressingStyle {
    #[default]
    Path,
    Virtual,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendEntry {
    pub name: String,
    pub kind: BackendKind,
    /// `http://host:port` or `https://host[:port]`; not for `local`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub addressing: Option<AddressingStyle>,
    /// The error vocabulary of an `s3` backend: `aws` (default), `minio` or `ceph`.
    pub dialect: Option<Dialect>,
    pub access_key: Option<SecretField>,
    pub secret_key: Option<SecretField>,
    /// The session token of temporary credentials (OBS temporary AK/SK, AWS STS).
    pub security_token: Option<SecretField>,
    /// `static` (the keys above, the default) or `aws`: the AWS SDKs' credential chain —
    /// environment, shared profile, web identity (IRSA), EKS Pod Identity, ECS, IMDSv2.
    #[serde(default)]
    pub credentials: CredentialSource,
    /// Directory of the `local` backend's objects.
    pub data_dir: Option<PathBuf>,
    /// What serves a `local` backend: `store` (the default) or `s3s-fs`.
    #[serde(default)]
    pub engine: Option<LocalEngine>,
    /// The smallest non-final part the backend accepts (default: 5 MiB for `s3` and `local`,
    /// 100 KiB for `obs`).
    pub min_part_bytes: Option<u64>,
    /// The longest key the backend stores (default 1,024 bytes: AWS, MinIO, OBS, RGW, and the
    /// embedded backend, whose S3 parser stops there); at most HCP's 4,095.
    pub max_key_bytes: Option<usize>,
    /// Whether the backend honours `If-None-Match: *` on PUT and complete (AWS S3 since 2024,
    /// MinIO). Without it the gateway checks with a HEAD first, which a concurrent writer can race.
    /// (Default: true for the embedded store, which does; false otherwise.)
    pub conditional_writes: Option<bool>,
    /// The Object Ownership a CreateBucket asks (`x-amz-object-ownership`): `ObjectWriter` or
    /// `BucketOwnerPreferred` (ACLs enabled), or `""` (none asked). Default: `ObjectWriter` for
    /// the `aws` dialect (AWS disables ACLs on new buckets otherwise), none for the others.
    pub object_ownership: Option<String>,
    /// A PEM file of CA certificates trusted for an `https://` endpoint, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// How often a bodiless request is sent again after a connection failure or a 503.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// How requests to the backend are signed: `v4` (AWS SigV4, default) or, for `obs`
    /// backends, `obs` (OBS's own scheme with `x-obs-*` headers).
    #[serde(default)]
    pub signing: Signing,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
}

fn default_max_retries() -> u32 {
    2
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_read_timeout_ms() -> u64 {
    60_000
}

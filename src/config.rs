//! Configuration in two layers: [`FileConfig`] mirrors `config.toml` and rejects unknown keys;
//! [`Config::from_file`] validates it into the runtime [`Config`], collecting every problem so that
//! `--check-config` can report them all at once.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde::Deserialize;

use crate::auth::{Grant, Permission, SecretKey, User, UserStore};
use crate::hcp::mapping::Dialect;

// ---------------------------------------------------------------------------------------------
// File layer

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
    /// How long an idle client connection is kept open between requests.
    pub keepalive_seconds: u64,
    /// Time allowed between two reads of a client's request body.
    pub client_body_timeout_seconds: u64,
    /// Time allowed for a request's whole header section once the connection is no longer
    /// idle (a client trickling header bytes is closed after it).
    pub client_header_timeout_seconds: u64,
    /// Requests worked on at once; more are answered 503 ServiceUnavailable at once (HCP's
    /// overload answer) instead of queueing. 0 = no limit.
    pub max_concurrent_requests: usize,
    /// The same per client address (0 = no limit; a sidecar has a single client).
    pub max_concurrent_requests_per_client: usize,
    /// Largest backend response body that is read whole to be rewritten (errors, listings).
    pub max_buffered_response_bytes: usize,
    /// Largest aws-chunked chunk accepted (a signed chunk is held until verified).
    pub max_chunk_bytes: usize,
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
    /// TLS on the S3 listener: a PEM certificate chain and its private key (both or neither);
    /// reloaded on SIGHUP.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
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
            keepalive_seconds: 60,
            client_body_timeout_seconds: 60,
            client_header_timeout_seconds: 10,
            max_concurrent_requests: 1024,
            max_concurrent_requests_per_client: 0,
            max_buffered_response_bytes: 16 * 1024 * 1024,
            max_chunk_bytes: 16 * 1024 * 1024,
            complete_keepalive_ms: 2000,
            complete_timeout_seconds: 900,
            host_id: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            log_keys: LogKeys::Full,
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

/// HCP's request limits (defaults are HCP's, capped by what the backends store).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// HCP allows 4,095 bytes but AWS, MinIO and OBS store at most 1,024.
    pub max_key_bytes: usize,
    pub max_metadata_bytes: usize,
    pub max_part_bytes: u64,
    pub max_put_bytes: u64,
    /// HCP's minimum for every part but the last ("one megabyte", taken as 1 MiB).
    pub min_part_bytes: u64,
    /// The largest file a POST object (HTML form) upload may carry; it is held in memory.
    pub max_post_object_bytes: u64,
    /// The largest control document (complete, multi-object delete, ACL) read whole.
    pub max_control_body_bytes: usize,
    /// The largest request line plus header section accepted.
    pub max_header_bytes: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = crate::validation::Limits::default();
        LimitsSection {
            max_key_bytes: d.max_key_bytes,
            max_metadata_bytes: d.max_metadata_bytes,
            max_part_bytes: d.max_part_bytes,
            max_put_bytes: d.max_put_bytes,
            min_part_bytes: d.min_part_bytes,
            max_post_object_bytes: d.max_post_object_bytes,
            max_control_body_bytes: d.max_control_body_bytes,
            max_header_bytes: d.max_header_bytes,
        }
    }
}

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
struct UsersFile {
    #[serde(default)]
    users: Vec<UserEntry>,
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
    /// `read`, `write`, `delete`, `read-acl`, `write-acl`, `admin` (bucket administration), `all`.
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
    /// `allow` (S3's behaviour, the default) or `refuse-unversioned` (HCP's: writing a name that
    /// exists, as an object or as a folder, in a bucket without versioning is 409).
    #[serde(default)]
    pub overwrite: Overwrite,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Overwrite {
    #[default]
    Allow,
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
    /// The smallest non-final part the backend accepts (default: 5 MiB for `s3` and `local`,
    /// 100 KiB for `obs`).
    pub min_part_bytes: Option<u64>,
    /// Whether the backend honours `If-None-Match: *` on PUT and complete (AWS S3 since 2024,
    /// MinIO). Without it the gateway checks with a HEAD first, which a concurrent writer can race.
    #[serde(default)]
    pub conditional_writes: bool,
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

// ---------------------------------------------------------------------------------------------
// Runtime layer

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Certificate and key files of the S3 listener's TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub threads: usize,
    pub shutdown_grace: Duration,
    pub keepalive: Duration,
    pub client_body_timeout: Duration,
    pub client_header_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub max_concurrent_requests_per_client: usize,
    pub max_buffered_response_bytes: usize,
    pub max_chunk_bytes: usize,
    pub complete_keepalive_after: Duration,
    pub complete_timeout: Duration,
    pub host_id: String,
    pub log_format: LogFormat,
    pub log_level: String,
    pub log_keys: LogKeys,
    pub domains: Vec<String>,
    pub default_tenant: Option<String>,
    pub clock_skew: Duration,
    pub limits: crate::validation::Limits,
    pub users: Arc<UserStore>,
    /// Binds multipart upload ids to their initiators (`uploads` module).
    pub upload_binding_secret: SecretKey,
    pub tenants: HashMap<String, Tenant>,
    pub backends: HashMap<String, Backend>,
    /// True when the demo credentials of the embedded default are among the users.
    pub serves_demo_user: bool,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub backend: String,
    pub bucket_prefix: String,
    pub anonymous: Vec<Grant>,
    pub overwrite: Overwrite,
}

#[derive(Debug, Clone)]
pub struct Backend {
    pub name: String,
    pub kind: BackendKind,
    pub target: BackendTarget,
    pub region: String,
    pub addressing: AddressingStyle,
    pub dialect: Dialect,
    pub min_part_bytes: u64,
    pub conditional_writes: bool,
    pub ca_file: Option<PathBuf>,
    pub max_retries: u32,
    pub signing: Signing,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

/// Where a backend is and how it is reached: a remote endpoint with keys from the configuration,
/// or the embedded server, whose address and keys exist only once it has started.
#[derive(Debug, Clone)]
pub enum BackendTarget {
    Remote {
        endpoint: Endpoint,
        keys: RemoteKeys,
    },
    Local {
        data_dir: PathBuf,
    },
}

/// How the gateway authenticates to a remote backend.
#[derive(Debug, Clone)]
pub enum RemoteKeys {
    /// Keys from the configuration; a security token for temporary credentials (OBS, STS).
    Static {
        access_key: String,
        secret_key: SecretKey,
        token: Option<SecretKey>,
    },
    /// The standard AWS credential chain (environment, profile, IRSA, Pod Identity, ECS, IMDS).
    AwsChain,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CredentialSource {
    /// `access_key` and `secret_key` (and `security_token`) from the configuration.
    #[default]
    Static,
    /// The AWS SDKs' default credential chain.
    Aws,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "endpoint {s:?} must start with http:// or https://"
            ));
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(format!(
                "endpoint {s:?} must be scheme://host[:port] without a path"
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => match p.parse::<u16>() {
                Ok(p) => (h.to_string(), p),
                Err(_) => return Err(format!("endpoint {s:?} has an invalid port")),
            },
            _ => (rest.to_string(), if tls { 443 } else { 80 }),
        };
        Ok(Endpoint { tls, host, port })
    }

    /// The `Host` header value: the port is left out when it is the scheme's default.
    pub fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The access key HCP derives from a user name: Base64 of its UTF-8 bytes.
pub fn hcp_access_key(username: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(username.as_bytes())
}

/// The secret key HCP derives from a password: MD5 as lower-case hex.
pub fn hcp_secret_key(password: &str) -> String {
    hex::encode(Md5::digest(password.as_bytes()))
}

/// The embedded default's demo user, in HCP's convention.
pub const DEMO_USERNAME: &str = "demo-user";
pub const DEMO_PASSWORD: &str = "demo-password";

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base)
    }

    /// Parses and validates configuration text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<String>> {
        let file: FileConfig = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        Self::from_file(file, base)
    }

    pub fn from_file(file: FileConfig, base: &Path) -> Result<Config, Vec<String>> {
        let mut errors = Vec::new();
        let s = &file.server;
        let listen = parse_addr("server.listen", &s.listen, &mut errors);
        let tls = match (&s.tls_cert_file, &s.tls_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let (cert, key) = (base.join(cert), base.join(key));
                if let Err(e) = crate::server::tls::certified_key(&cert, &key) {
                    errors.push(format!("server.tls_cert_file/tls_key_file: {e}"));
                }
                Some((cert, key))
            }
            _ => {
                errors.push("server: give both tls_cert_file and tls_key_file, or neither".into());
                None
            }
        };
        let admin_listen = parse_addr("server.admin_listen", &s.admin_listen, &mut errors);
        if file.limits.max_key_bytes == 0 || file.limits.max_key_bytes > 4095 {
            errors.push("limits.max_key_bytes must be from 1 to HCP's 4095".into());
        }
        if s.max_buffered_response_bytes < 64 * 1024 {
            errors.push("server.max_buffered_response_bytes must be at least 65536".into());
        }
        if s.log_level
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .is_err()
        {
            errors.push(format!(
                "server.log_level {:?} is not a log level",
                s.log_level
            ));
        }

        let mut domains = Vec::new();
        for d in &file.addressing.domains {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() || d.contains('/') || d.contains(':') {
                errors.push(format!("addressing.domains: {d:?} is not a domain name"));
            }
            domains.push(d);
        }
        // Longest first, so that a nested domain wins over its parent.
        domains.sort_by_key(|d| std::cmp::Reverse(d.len()));

        let mut user_entries = file.users;
        if let Some(path) = &file.auth.users_file {
            let path = base.join(path);
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| toml::from_str::<UsersFile>(&t).map_err(|e| e.to_string()))
            {
                Ok(more) => user_entries.extend(more.users),
                Err(e) => errors.push(format!("auth.users_file {}: {e}", path.display())),
            }
        }
        let mut users = build_users(&user_entries, base, &mut errors);
        let upload_binding_secret = file.auth.upload_binding_secret.as_ref().and_then(|s| {
            let secret = resolve_secret("auth.upload_binding_secret", s, base, &mut errors)?;
            if secret.len() < 16 {
                errors.push("auth.upload_binding_secret: use at least 16 characters".into());
            }
            Some(secret)
        });
        let serves_demo_user = users.iter().any(|u| {
            u.access_key == hcp_access_key(DEMO_USERNAME)
                && u.secret.expose() == hcp_secret_key(DEMO_PASSWORD)
        });

        let mut backends = HashMap::new();
        for b in &file.backends {
            if let Some(backend) = build_backend(b, base, &mut errors) {
                if backends.insert(b.name.clone(), backend).is_some() {
                    errors.push(format!("backends: name {:?} is used twice", b.name));
                }
            }
        }
        let mut tenants = HashMap::new();
        for t in &file.tenants {
            if t.name.is_empty()
                || !t
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                errors.push(format!(
                    "tenants: name {:?} must be letters, digits and hyphens",
                    t.name
                ));
            }
            if !backends.contains_key(&t.backend) {
                errors.push(format!(
                    "tenants.{}: backend {:?} is not defined",
                    t.name, t.backend
                ));
            }
            if !t
                .bucket_prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            {
                errors.push(format!(
                    "tenants.{}: bucket_prefix {:?} may hold only lower-case letters, digits, '-' and '.'",
                    t.name, t.bucket_prefix
                ));
            }
            let mut anonymous = Vec::new();
            for (i, a) in t.anonymous.iter().enumerate() {
                let perms: &[Permission] = match a.access.as_str() {
                    "read" => &[Permission::Read],
                    "read-write" => &[Permission::Read, Permission::Write, Permission::Delete],
                    other => {
                        errors.push(format!(
                            "tenants.{}.anonymous[{i}]: access {other:?} must be \"read\" or \"read-write\"",
                            t.name
                        ));
                        continue;
                    }
                };
                anonymous.push(Grant::new("*", &a.buckets, perms.iter().copied()));
            }
            let tenant = Tenant {
                name: t.name.to_ascii_lowercase(),
                backend: t.backend.clone(),
                bucket_prefix: t.bucket_prefix.clone(),
                anonymous,
                overwrite: t.overwrite,
            };
            if tenants.insert(tenant.name.clone(), tenant).is_some() {
                errors.push(format!("tenants: name {:?} is used twice", t.name));
            }
        }
        if tenants.is_empty() {
            errors.push("at least one [[tenants]] entry is required".into());
        }
        // Tenants sharing a backend share its bucket namespace: each needs a prefix that no
        // other one's starts with, or one tenant would list and reach the other's buckets.
        let mut sharing: Vec<&Tenant> = tenants.values().collect();
        sharing.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, a) in sharing.iter().enumerate() {
            for b in &sharing[i + 1..] {
                if a.backend != b.backend
                    && !same_storage(backends.get(&a.backend), backends.get(&b.backend))
                {
                    continue;
                }
                let (pa, pb) = (&a.bucket_prefix, &b.bucket_prefix);
                if pa.is_empty()
                    || pb.is_empty()
                    || pa.starts_with(pb.as_str())
                    || pb.starts_with(pa.as_str())
                {
                    errors.push(format!(
                        "tenants.{} and tenants.{} share backend storage ({:?}, {:?}): each needs a bucket_prefix, and neither may start with the other ({pa:?}, {pb:?})",
                        a.name, b.name, a.backend, b.backend
                    ));
                }
            }
        }
        let only_tenant = match tenants.keys().collect::<Vec<_>>().as_slice() {
            [only] => Some((*only).clone()),
            _ => None,
        };
        for user in &mut users {
            if let Some(t) = &user.tenant {
                if !tenants.contains_key(t) {
                    errors.push(format!(
                        "users: {}'s tenant {t:?} is not a defined tenant",
                        user.access_key
                    ));
                }
            }
            let mut named: Vec<&str> = user.grants.iter().map(|g| g.tenant()).collect();
            named.sort_unstable();
            named.dedup();
            let from_grants = match named.as_slice() {
                [one] if *one != "*" => Some(one.to_string()),
                _ => None,
            };
            user.home_tenant = user
                .tenant
                .clone()
                .or(from_grants)
                .or_else(|| only_tenant.clone());
        }
        let default_tenant = file
            .addressing
            .default_tenant
            .as_ref()
            .map(|t| t.to_ascii_lowercase());
        if let Some(t) = &default_tenant {
            if !tenants.contains_key(t) {
                errors.push(format!(
                    "addressing.default_tenant {t:?} is not a defined tenant"
                ));
            }
        }
        let local_backends = backends
            .values()
            .filter(|b| b.kind == BackendKind::Local)
            .count();
        if local_backends > 1 {
            errors.push("only one backend of kind \"local\" may be defined".into());
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        let upload_binding_secret = SecretKey::new(
            upload_binding_secret.unwrap_or_else(|| derived_binding_secret(&backends)),
        );
        let host_id = s.host_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "hcp-s3-gateway".into())
        });
        Ok(Config {
            listen: listen.unwrap(),
            tls,
            admin_listen: admin_listen.unwrap(),
            threads: s.threads,
            shutdown_grace: Duration::from_secs(s.shutdown_grace_seconds),
            keepalive: Duration::from_secs(s.keepalive_seconds),
            client_body_timeout: Duration::from_secs(s.client_body_timeout_seconds.max(1)),
            client_header_timeout: Duration::from_secs(s.client_header_timeout_seconds.max(1)),
            max_concurrent_requests: s.max_concurrent_requests,
            max_concurrent_requests_per_client: s.max_concurrent_requests_per_client,
            max_buffered_response_bytes: s.max_buffered_response_bytes,
            max_chunk_bytes: s.max_chunk_bytes,
            complete_keepalive_after: Duration::from_millis(s.complete_keepalive_ms),
            complete_timeout: Duration::from_secs(s.complete_timeout_seconds.max(1)),
            host_id,
            log_format: s.log_format,
            log_keys: s.log_keys,
            log_level: s.log_level.clone(),
            domains,
            default_tenant,
            clock_skew: Duration::from_secs(file.auth.clock_skew_seconds),
            limits: crate::validation::Limits {
                max_key_bytes: file.limits.max_key_bytes,
                max_metadata_bytes: file.limits.max_metadata_bytes,
                max_part_bytes: file.limits.max_part_bytes,
                max_put_bytes: file.limits.max_put_bytes,
                min_part_bytes: file.limits.min_part_bytes,
                max_post_object_bytes: file.limits.max_post_object_bytes,
                max_control_body_bytes: file.limits.max_control_body_bytes,
                max_header_bytes: file.limits.max_header_bytes,
            },
            users: Arc::new(UserStore::new(users)),
            upload_binding_secret,
            tenants,
            backends,
            serves_demo_user,
        })
    }
}

fn parse_addr(field: &str, value: &str, errors: &mut Vec<String>) -> Option<SocketAddr> {
    match value.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(format!(
                "{field}: {value:?} is not an address like 127.0.0.1:8080"
            ));
            None
        }
    }
}

/// Without a configured binding secret, one every replica with the same configuration derives
/// alike, and that outsiders cannot: a digest of the backends' names and secrets (data
/// directories for the local backend).
fn derived_binding_secret(backends: &HashMap<String, Backend>) -> String {
    use sha2::Digest;
    let mut names: Vec<&String> = backends.keys().collect();
    names.sort();
    let mut digest = sha2::Sha256::new();
    digest.update(b"hcp-s3-gateway upload binding\0");
    for name in names {
        digest.update(name.as_bytes());
        digest.update(b"\0");
        match &backends[name].target {
            BackendTarget::Remote {
                keys: RemoteKeys::Static { secret_key, .. },
                ..
            } => digest.update(secret_key.expose()),
            BackendTarget::Remote { endpoint, .. } => digest.update(endpoint.authority()),
            BackendTarget::Local { data_dir } => {
                digest.update(data_dir.to_string_lossy().as_bytes())
            }
        }
        digest.update(b"\0");
    }
    hex::encode(digest.finalize())
}

/// Resolves a secret from its value, file or environment variable; exactly one must be given.
fn resolve_secret(
    field: &str,
    src: &SecretField,
    base: &Path,
    errors: &mut Vec<String>,
) -> Option<String> {
    let src = match src {
        SecretField::Inline(v) => return Some(v.clone()),
        SecretField::Source(s) => s,
    };
    let given = src.value.is_some() as u8 + src.file.is_some() as u8 + src.env.is_some() as u8;
    if given != 1 {
        errors.push(format!("{field}: give exactly one of value, file or env"));
        return None;
    }
    if let Some(v) = &src.value {
        return Some(v.clone());
    }
    if let Some(f) = &src.file {
        let path = base.join(f);
        return match std::fs::read_to_string(&path) {
            Ok(v) => Some(v.trim_end_matches(['\r', '\n']).to_string()),
            Err(e) => {
                errors.push(format!("{field}: cannot read {}: {e}", path.display()));
                None
            }
        };
    }
    let var = src.env.as_ref().unwrap();
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(format!("{field}: environment variable {var} is not set"));
            None
        }
    }
}

fn build_grants(label: &str, entries: &[PermissionEntry], errors: &mut Vec<String>) -> Vec<Grant> {
    let mut grants = Vec::new();
    for (j, p) in entries.iter().enumerate() {
        let mut perms = Vec::new();
        for name in &p.allow {
            match Permission::parse_list(name) {
                Some(list) => perms.extend_from_slice(list),
                None => errors.push(format!(
                    "{label}.permissions[{j}]: {name:?} is not one of read, write, delete, read-acl, write-acl, admin, all"
                )),
            }
        }
        grants.push(Grant::new(&p.tenant, &p.buckets, perms));
    }
    grants
}

/// Whether two backends are one bucket namespace: the same endpoint reached with the same keys
/// (or the AWS chain), or the embedded store (there is only one).
fn same_storage(a: Option<&Backend>, b: Option<&Backend>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return false;
    };
    match (&a.target, &b.target) {
        (BackendTarget::Local { .. }, BackendTarget::Local { .. }) => true,
        (
            BackendTarget::Remote {
                endpoint: ea,
                keys: ka,
            },
            BackendTarget::Remote {
                endpoint: eb,
                keys: kb,
            },
        ) => {
            ea.host.eq_ignore_ascii_case(&eb.host)
                && ea.port == eb.port
                && match (ka, kb) {
                    (
                        RemoteKeys::Static { access_key: x, .. },
                        RemoteKeys::Static { access_key: y, .. },
                    ) => x == y,
                    (RemoteKeys::AwsChain, RemoteKeys::AwsChain) => true,
                    _ => false,
                }
        }
        _ => false,
    }
}

fn build_users(entries: &[UserEntry], base: &Path, errors: &mut Vec<String>) -> Vec<User> {
    let mut users = Vec::new();
    let mut seen = HashSet::new();
    for (i, u) in entries.iter().enumerate() {
        let label = format!("users[{i}]");
        let grants = build_grants(&label, &u.permissions, errors);
        let user = match (&u.username, &u.password, &u.access_key, &u.secret_key) {
            (Some(name), Some(pw), None, None) => {
                resolve_secret(&format!("{label}.password"), pw, base, errors).map(|pw| {
                    User::new(
                        Some(name.clone()),
                        hcp_access_key(name),
                        hcp_secret_key(&pw),
                        u.enabled,
                        grants,
                    )
                })
            }
            (name, None, Some(ak), Some(sk)) => {
                resolve_secret(&format!("{label}.secret_key"), sk, base, errors)
                    .map(|sk| User::new(name.clone(), ak.clone(), sk, u.enabled, grants))
            }
            _ => {
                errors.push(format!(
                    "{label}: give either username + password (HCP style) or access_key + secret_key"
                ));
                None
            }
        };
        let user = user.map(|mut user| {
            user.tenant = u.tenant.as_ref().map(|t| t.to_ascii_lowercase());
            user
        });
        if let Some(user) = user {
            if user.access_key.is_empty() || user.secret.expose().is_empty() {
                errors.push(format!(
                    "{label}: access key and secret key must not be empty"
                ));
            } else if !seen.insert(user.access_key.clone()) {
                errors.push(format!(
                    "{label}: access key {} is used twice",
                    user.access_key
                ));
            } else {
                users.push(user);
            }
        }
    }
    users
}

fn build_backend(b: &BackendEntry, base: &Path, errors: &mut Vec<String>) -> Option<Backend> {
    let label = format!("backends.{}", b.name);
    let before = errors.len();
    let target = match b.kind {
        BackendKind::Local => {
            if b.endpoint.is_some() || b.access_key.is_some() || b.secret_key.is_some() {
                errors.push(format!(
                    "{label}: a local backend takes data_dir only, not endpoint or keys"
                ));
            }
            let dir = b
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("./data"));
            BackendTarget::Local {
                data_dir: base.join(dir),
            }
        }
        BackendKind::S3 | BackendKind::Obs => {
            if b.data_dir.is_some() {
                errors.push(format!("{label}: data_dir is only for local backends"));
            }
            let endpoint = match &b.endpoint {
                Some(e) => Endpoint::parse(e)
                    .map_err(|e| errors.push(format!("{label}: {e}")))
                    .ok(),
                None => {
                    errors.push(format!("{label}: endpoint is required"));
                    None
                }
            };
            let keys = match b.credentials {
                CredentialSource::Aws => {
                    if b.access_key.is_some()
                        || b.secret_key.is_some()
                        || b.security_token.is_some()
                    {
                        errors.push(format!(
                            "{label}: credentials = \"aws\" takes no access_key, secret_key or security_token"
                        ));
                    }
                    Some(RemoteKeys::AwsChain)
                }
                CredentialSource::Static => {
                    let ak = match &b.access_key {
                        Some(s) => resolve_secret(&format!("{label}.access_key"), s, base, errors),
                        None => {
                            errors.push(format!("{label}: access_key is required"));
                            None
                        }
                    };
                    let sk = match &b.secret_key {
                        Some(s) => resolve_secret(&format!("{label}.secret_key"), s, base, errors),
                        None => {
                            errors.push(format!("{label}: secret_key is required"));
                            None
                        }
                    };
                    let token = b.security_token.as_ref().and_then(|s| {
                        resolve_secret(&format!("{label}.security_token"), s, base, errors)
                    });
                    match (ak, sk) {
                        (Some(access_key), Some(sk)) => Some(RemoteKeys::Static {
                            access_key,
                            secret_key: SecretKey::new(sk),
                            token: token.map(SecretKey::new),
                        }),
                        _ => None,
                    }
                }
            };
            match (endpoint, keys) {
                (Some(endpoint), Some(keys)) => BackendTarget::Remote { endpoint, keys },
                _ => return None,
            }
        }
    };
    let ca_file = b.ca_file.as_ref().map(|f| base.join(f));
    if b.signing == Signing::Obs && b.kind != BackendKind::Obs {
        errors.push(format!(
            "{label}: signing = \"obs\" is for backends of kind \"obs\""
        ));
    }
    if let BackendTarget::Remote { endpoint, .. } = &target {
        if endpoint.tls {
            if let Err(e) = crate::server::tls::ClientTls::new(&endpoint.host, ca_file.as_deref()) {
                errors.push(format!("{label}: {e}"));
            }
        } else if ca_file.is_some() {
            errors.push(format!("{label}: ca_file needs an https:// endpoint"));
        }
    }
    let dialect = match (b.kind, b.dialect) {
        (BackendKind::Local, None) => Dialect::Local,
        (BackendKind::Obs, None) => Dialect::Obs,
        (BackendKind::S3, None) => Dialect::Aws,
        (BackendKind::S3, Some(d @ (Dialect::Aws | Dialect::Minio | Dialect::Ceph))) => d,
        (_, Some(d)) => {
            errors.push(format!(
                "{label}: dialect {:?} does not fit kind {:?}",
                d.name(),
                b.kind
            ));
            Dialect::Aws
        }
    };
    if b.connect_timeout_ms == 0 || b.read_timeout_ms == 0 {
        errors.push(format!("{label}: timeouts must be greater than zero"));
    }
    if errors.len() > before {
        return None;
    }
    Some(Backend {
        name: b.name.clone(),
        kind: b.kind,
        target,
        region: b.region.clone().unwrap_or_else(|| "us-east-1".into()),
        addressing: b.addressing.unwrap_or_default(),
        dialect,
        min_part_bytes: b.min_part_bytes.unwrap_or(match b.kind {
            // s3s-fs enforces S3's 5 MiB as well.
            BackendKind::S3 | BackendKind::Local => 5 * 1024 * 1024,
            BackendKind::Obs => 100 * 1024,
        }),
        conditional_writes: b.conditional_writes,
        ca_file,
        max_retries: b.max_retries.min(10),
        signing: b.signing,
        connect_timeout: Duration::from_millis(b.connect_timeout_ms),
        read_timeout: Duration::from_millis(b.read_timeout_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcp_convention_matches_documented_examples() {
        assert_eq!(hcp_access_key("lgreen"), "bGdyZWVu");
        assert_eq!(hcp_access_key(DEMO_USERNAME), "ZGVtby11c2Vy");
        assert_eq!(
            hcp_secret_key(DEMO_PASSWORD),
            "4b4d9529148d8d9440d7e20c78287f69"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::parse(
            "[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err[0].contains("unknown field `bogus`"), "{err:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            [server]
            listen = "nowhere"
            [addressing]
            default_tenant = "ghost"
            [[users]]
            username = "u"
            [[tenants]]
            name = "t"
            backend = "missing"
            [[backends]]
            name = "b"
            kind = "s3"
            [[backends]]
            name = "chain"
            kind = "s3"
            endpoint = "https://s3.eu-west-1.amazonaws.com"
            credentials = "aws"
            access_key = "AKIA"
            [[backends]]
            name = "not-obs"
            kind = "s3"
            endpoint = "http://127.0.0.1:9000"
            access_key = "a"
            secret_key = "s"
            signing = "obs"
        "#;
        let errors = Config::parse(text, Path::new(".")).unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "server.listen",
            "ghost",
            "users[0]",
            "backend \"missing\"",
            "endpoint is required",
            "access_key is required",
            "credentials = \"aws\" takes no access_key",
            "signing = \"obs\" is for backends of kind \"obs\"",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn secrets_come_from_value_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sk"), "from-file\n").unwrap();
        std::env::set_var("HCP_GW_TEST_SECRET", "from-env");
        let text = r#"
            [[users]]
            access_key = "a1"
            secret_key = "inline"
            [[users]]
            access_key = "a2"
            secret_key = { file = "sk" }
            [[users]]
            access_key = "a3"
            secret_key = { env = "HCP_GW_TEST_SECRET" }
            [[users]]
            username = "demo-user"
            password = { value = "demo-password" }
            [[tenants]]
            name = "t"
            backend = "l"
            [[backends]]
            name = "l"
            kind = "local"
        "#;
        let cfg = Config::parse(text, dir.path()).unwrap();
        assert_eq!(cfg.users.get("a1").unwrap().secret.expose(), "inline");
        assert_eq!(cfg.users.get("a2").unwrap().secret.expose(), "from-file");
        assert_eq!(cfg.users.get("a3").unwrap().secret.expose(), "from-env");
        assert!(cfg.serves_demo_user);
    }

    #[test]
    fn users_come_from_a_file_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("users.toml"),
            "[[users]]\nusername = \"from-file\"\npassword = \"pw\"\npermissions = [{ buckets = \"logs-*\", allow = [\"read\"] }]\n",
        )
        .unwrap();
        let text = "[auth]\nusers_file = \"users.toml\"\n[[tenants]]\nname = \"t\"\nbackend = \"l\"\n[[backends]]\nname = \"l\"\nkind = \"local\"\n";
        let cfg = Config::parse(text, dir.path()).unwrap();
        let user = cfg.users.get(&hcp_access_key("from-file")).unwrap();
        assert!(user.grants[0].allows("t", Some("logs-1"), Permission::Read));
        assert!(!user.grants[0].allows("t", Some("data"), Permission::Read));
        std::fs::write(dir.path().join("users.toml"), "[[users]]\nbogus = 1\n").unwrap();
        let err = Config::parse(text, dir.path()).unwrap_err();
        assert!(
            err[0].contains("auth.users_file") && err[0].contains("bogus"),
            "{err:?}"
        );
    }

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:7480").unwrap(),
            Endpoint {
                tls: false,
                host: "127.0.0.1".into(),
                port: 7480
            }
        );
        assert_eq!(
            Endpoint::parse("https://s3.eu-west-1.amazonaws.com/")
                .unwrap()
                .port,
            443
        );
        assert!(Endpoint::parse("s3.amazonaws.com").is_err());
        assert!(Endpoint::parse("http://h/path").is_err());
    }
}

//! The runtime layer: the settings each phase uses, validated from the file layer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde::Deserialize;

use super::file::*;
use crate::hcp::mapping::Dialect;
use crate::request::authenticate::{Grant, SecretKey, UserStore};
use crate::ConfigMap;

/// Configured text some header carries on every request: its text, and the header value made
/// of it once (a clone shares its bytes).
#[derive(Debug, Clone)]
pub struct HeaderText {
    text: String,
    header: http::HeaderValue,
}

/// The host id every answer carries (`x-amz-id-2`, an error's `HostId`).
pub type HostId = HeaderText;

impl HeaderText {
    /// `None` for text no header can carry (control characters).
    pub fn new(text: String) -> Option<HeaderText> {
        let header = http::HeaderValue::from_str(&text).ok()?;
        Some(HeaderText { text, header })
    }

    pub fn header(&self) -> http::HeaderValue {
        self.header.clone()
    }
}

impl std::ops::Deref for HeaderText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Certificate and key files of the S3 listener's TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub threads: usize,
    pub shutdown_grace: Duration,
    /// `/readyz` 503 while still accepting, before the drain (`shutdown_delay_seconds`).
    pub shutdown_delay: Duration,
    pub keepalive: Duration,
    /// How a client's request body may arrive: its longest pause and slowest pace.
    pub client_body: crate::backend::upstream::BodyPace,
    pub client_header_timeout: Duration,
    /// How long a write to a client may wait (`server::send_deadline`).
    pub client_send_timeout: Duration,
    /// The slowest pace, over their waits, at which clients may take answers (0: none).
    pub client_send_min_rate: u64,
    pub max_connections: usize,
    pub max_concurrent_requests: usize,
    pub max_concurrent_requests_per_client: usize,
    pub max_buffered_response_bytes: usize,
    pub max_chunk_bytes: usize,
    pub max_held_bytes: usize,
    pub complete_keepalive_after: Duration,
    pub complete_timeout: Duration,
    pub host_id: HostId,
    pub log_format: LogFormat,
    pub log_level: String,
    pub log_keys: LogKeys,
    pub readiness: Readiness,
    /// How often the files a reload reads are looked at (`None`: on SIGHUP only).
    pub reload_check: Option<Duration>,
    /// The files the configuration names and reads: its users file, secrets given as files
    /// (the TLS certificate and key are `tls`).
    pub files_read: Vec<std::path::PathBuf>,
    pub domains: Vec<String>,
    pub default_tenant: Option<String>,
    pub clock_skew: Duration,
    pub limits: crate::request::validate::Limits,
    pub users: Arc<UserStore>,
    /// Binds multipart upload ids to their initiators (`uploads` module): its key is made when
    /// the gateway starts ([`super::binding::UploadBinding::secret`]).
    pub upload_binding: super::binding::UploadBinding,
    pub tenants: ConfigMap<String, Tenant>,
    pub backends: ConfigMap<String, Backend>,
    /// True when the demo credentials of the embedded default are among the users.
    pub serves_demo_user: bool,
    /// What the configuration holds that is allowed but likely a mistake (a grant on a tenant
    /// not configured): said when it is loaded — at start, by `--check-config`, on a reload.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    /// (Shared with each request's target and access record, not copied for them.)
    pub name: Arc<str>,
    pub backend: String,
    pub bucket_prefix: String,
    /// What anonymous callers may do, replaced on reload (SIGHUP) as users' permissions are.
    pub anonymous: AnonymousGrants,
    pub overwrite: Overwrite,
    /// HCP's folders (`request::folders`).
    pub folders: bool,
    pub retention: TenantRetention,
    /// The backend bucket where the gateway keeps bucket owners (`records_bucket`): with it,
    /// HCP's bucket ownership holds.
    pub records_bucket: Option<String>,
    /// Anonymous requests are allowed what ACLs grant all users (`anonymous_acls`), switched
    /// by a reload (SIGHUP) as the anonymous grants are.
    pub anonymous_acls: Switch,
    /// The configuration a reload put in place has no such tenant: until a restart it serves
    /// nobody — its anonymous access revoked, its users' grants (a `*` grant's too) allowing
    /// nothing there — however its requests still reach it.
    pub removed: Switch,
    /// The tenant-level CORS rules (`cors`): those of a bucket without its own.
    pub cors: Option<Arc<[crate::request::validate::cors_document::Rule]>>,
}

#[cfg(test)]
impl Tenant {
    /// Tenant `t` on backend `b`: no prefix, no anonymous access, S3's overwrite, no retention.
    pub fn for_tests() -> Tenant {
        Tenant {
            name: "t".into(),
            backend: "b".into(),
            bucket_prefix: String::new(),
            anonymous: AnonymousGrants::default(),
            overwrite: Overwrite::Allow,
            folders: false,
            retention: TenantRetention::default(),
            records_bucket: None,
            anonymous_acls: Switch::default(),
            removed: Switch::default(),
            cors: None,
        }
    }
}

/// A tenant's anonymous grants: read by every anonymous request without locks, replaced whole
/// by a reload. A clone shares them (the running tenant and its copies see one set).
#[derive(Debug, Clone, Default)]
pub struct AnonymousGrants(Arc<arc_swap::ArcSwap<Vec<Grant>>>);

impl AnonymousGrants {
    /// The grants as they are now.
    pub fn load(&self) -> Arc<Vec<Grant>> {
        self.0.load_full()
    }

    /// Puts reloaded grants in place.
    pub fn replace(&self, grants: &AnonymousGrants) {
        self.0.store(grants.load());
    }
}

impl From<Vec<Grant>> for AnonymousGrants {
    fn from(grants: Vec<Grant>) -> Self {
        AnonymousGrants(Arc::new(arc_swap::ArcSwap::from_pointee(grants)))
    }
}

/// A tenant's setting a reload switches in place (`anonymous_acls`, `removed`), read by the
/// requests it concerns. A clone shares it.
#[derive(Debug, Clone, Default)]
pub struct Switch(Arc<std::sync::atomic::AtomicBool>);

impl Switch {
    pub fn on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Puts a reloaded setting in place.
    pub fn set(&self, on: bool) {
        self.0.store(on, std::sync::atomic::Ordering::Release);
    }
}

impl From<bool> for Switch {
    fn from(on: bool) -> Self {
        Switch(Arc::new(on.into()))
    }
}

/// How a tenant keeps HCP's retention (`retention` and `retention_classes` of `[[tenants]]`).
#[derive(Debug, Clone, Default)]
pub struct TenantRetention {
    pub mode: RetentionMode,
    pub classes: crate::hcp::retention::Classes,
    /// The backend bucket that keeps the objects' labeled holds (`labeled_holds_bucket`).
    pub labels_bucket: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Backend {
    /// (Shared with each request's access record and metrics, not copied for them.)
    pub name: Arc<str>,
    pub kind: BackendKind,
    pub target: BackendTarget,
    pub region: String,
    pub addressing: AddressingStyle,
    pub dialect: Dialect,
    pub min_part_bytes: u64,
    /// Keys longer than this are refused with KeyTooLong before they reach the backend.
    pub max_key_bytes: usize,
    pub conditional_writes: bool,
    /// The `x-amz-object-ownership` of the gateway's CreateBucket, if any.
    pub object_ownership: Option<&'static str>,
    pub ca_file: Option<PathBuf>,
    /// The SHA-256 of the CA file as it was read: a reload that finds it changed names
    /// `[[backends]]` as waiting for a restart (the trust is built once, at start).
    pub ca_digest: Option<String>,
    pub max_retries: u32,
    pub signing: Signing,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl Backend {
    /// Whether keys over 1,024 bytes reach this backend in a header of their own rather than in
    /// the path (`backend::store::wire`): the embedded store, behind s3s's path parser.
    pub fn long_keys_in_header(&self) -> bool {
        self.target.engine() == Some(LocalEngine::Store)
    }
}

impl BackendTarget {
    /// What serves the embedded backend; `None` for a remote one.
    pub fn engine(&self) -> Option<LocalEngine> {
        match self {
            BackendTarget::Local { engine, .. } => Some(*engine),
            BackendTarget::Remote { .. } => None,
        }
    }
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
        engine: LocalEngine,
    },
}

/// What serves a `local` backend's objects.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LocalEngine {
    /// The gateway's own store (`backend::store`), the default: keys never paths, redb metadata,
    /// atomic writes, versions, ACLs, CORS and object lock.
    #[default]
    Store,
    /// The s3s-fs server, the embedded default before the store (kept for data written with it).
    S3sFs,
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
    pub fn parse(endpoint: &str) -> Result<Endpoint, String> {
        // Messages show the endpoint without user info, which may hold a secret (also where
        // the scheme is forgotten or misspelt: `admin:secret@minio:9000`).
        let s = &match endpoint.rfind('@') {
            Some(at) => {
                let scheme = endpoint.find("://").filter(|&i| i < at);
                let scheme = scheme.map_or("", |i| &endpoint[..i + 3]);
                format!("{scheme}…{}", &endpoint[at..])
            }
            None => endpoint.to_string(),
        };
        let (tls, rest) = if let Some(r) = endpoint.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = endpoint.strip_prefix("http://") {
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
        // The port follows the last `:`, or for an IPv6 literal the `]` that closes it.
        let split = if rest.starts_with('[') {
            let close = rest
                .find(']')
                .ok_or_else(|| format!("endpoint {s:?} has an invalid host"))?;
            Some(rest.split_at(close + 1))
        } else {
            rest.rfind(':').map(|colon| rest.split_at(colon))
        };
        let (host, port) = match split.unwrap_or((rest, "")) {
            (h, "") => (h.to_string(), if tls { 443 } else { 80 }),
            (h, p) => match p.strip_prefix(':').map(str::parse::<u16>) {
                Some(Ok(p)) => (h.to_string(), p),
                _ => return Err(format!("endpoint {s:?} has an invalid port")),
            },
        };
        // A host is sent as `Host` (and after a bucket's name): visible ASCII, and none of the
        // characters that would make it more than a host — user info (`user:secret@`, which
        // would travel in every `Host`), a path, a query, spaces.
        let delimiter = |b: u8| b"/?#@\\\"<>^`{|}".contains(&b);
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic() && !delimiter(b)) {
            return Err(format!("endpoint {s:?} has an invalid host"));
        }
        // (0.0.0.0 and :: name no host to connect to: Linux would reach this one.)
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if literal
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
        {
            return Err(format!(
                "endpoint {s:?} names no host (an unspecified address)"
            ));
        }
        Ok(Endpoint { tls, host, port })
    }

    /// The host as it is looked up and named to TLS: an IPv6 literal without its brackets
    /// (`[::1]` is no name a resolver knows; the `Host` header keeps them).
    pub fn address(&self) -> &str {
        let bare = self
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'));
        bare.unwrap_or(&self.host)
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

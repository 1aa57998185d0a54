//! Routing: tenant → backend, and client bucket names → backend bucket names.

use std::net::SocketAddr;
use std::time::Duration;

use crate::addressing::Target;

use crate::config::{AddressingStyle, BackendKind, Tenant};
use crate::hcp::errors::{HcpCode, HcpError};
use crate::hcp::mapping::Dialect;

/// A backend as the request path uses it: resolved address and the credentials the gateway signs
/// with (for the local backend, the ones it generated at start).
#[derive(Debug, Clone)]
pub struct BackendRuntime {
    pub name: String,
    pub kind: BackendKind,
    /// Where the backend is now: resolved at start, refreshed by the health probe (DNS).
    pub resolved: std::sync::Arc<arc_swap::ArcSwap<SocketAddr>>,
    /// Host name and port to resolve again, for endpoints named by DNS.
    pub dns_name: Option<(String, u16)>,
    /// The endpoint's authority as sent in `Host` (path style) or after the bucket (virtual host).
    pub authority: String,
    pub credentials: std::sync::Arc<crate::backend::credentials::BackendCredentials>,
    pub region: String,
    pub addressing: AddressingStyle,
    pub dialect: Dialect,
    pub min_part_bytes: u64,
    pub conditional_writes: bool,
    /// For `https://` endpoints: the TLS client settings (roots, SNI).
    pub tls: Option<std::sync::Arc<crate::server::tls::ClientTls>>,
    pub max_retries: u32,
    pub signing: crate::config::Signing,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

/// Where one request goes.
#[derive(Debug)]
pub struct Route<'a> {
    pub tenant: &'a Tenant,
    pub backend: &'a BackendRuntime,
    /// The bucket's name at the backend (the tenant's prefix + the client's name).
    pub backend_bucket: Option<String>,
    /// What backend requests are signed with; resolved before the first one (the AWS chain
    /// may have to fetch).
    pub credentials: Option<std::sync::Arc<crate::backend::credentials::SigningCredentials>>,
}

impl BackendRuntime {
    /// The backend's address as last resolved.
    pub fn addr(&self) -> SocketAddr {
        **self.resolved.load()
    }
}

impl Route<'_> {
    /// The client-visible name of a backend bucket, if it belongs to this tenant.
    pub fn client_bucket<'n>(&self, backend_name: &'n str) -> Option<&'n str> {
        backend_name.strip_prefix(self.tenant.bucket_prefix.as_str())
    }
}

/// The owner every answer names for the tenant's buckets and objects, in place of the backend
/// account (whose id and name are the backend's, not the client's business): a canonical id
/// derived from the tenant's name, and the tenant's name as display name.
pub fn tenant_owner_id(tenant: &Tenant) -> String {
    crate::sig::v4::sha256_hex(format!("hcp-s3-gateway tenant owner\n{}", tenant.name).as_bytes())
}

pub fn backend_bucket_name(tenant: &Tenant, client_bucket: &str) -> String {
    let mut s = String::with_capacity(tenant.bucket_prefix.len() + client_bucket.len());
    s.push_str(&tenant.bucket_prefix);
    s.push_str(&client_bucket.to_ascii_lowercase());
    s
}

pub fn route<'a>(
    tenant: &'a Tenant,
    backend: Option<&'a BackendRuntime>,
    target: &Target,
) -> Result<Route<'a>, HcpError> {
    let backend = backend.ok_or_else(|| HcpError::new(HcpCode::ServiceUnavailable))?;
    let backend_bucket = target
        .bucket
        .as_deref()
        .map(|b| backend_bucket_name(tenant, b));
    let first_segment = match (&backend_bucket, backend.addressing) {
        (Some(bucket), AddressingStyle::Path) => Some(bucket.clone()),
        (_, _) => target.key().map(|k| {
            String::from_utf8_lossy(k.split(|&b| b == b'/').next().unwrap_or_default()).into_owned()
        }),
    };
    if first_segment.is_some_and(|s| reserved_path(backend.dialect, &s)) {
        return Err(HcpError::new(HcpCode::InvalidBucketName)
            .with_message("The bucket name is reserved by the storage behind this gateway."));
    }
    Ok(Route {
        tenant,
        backend,
        credentials: backend.credentials.fixed_now(),
        backend_bucket,
    })
}

/// First path segments a backend serves APIs of its own under, whatever the bucket: RGW's
/// admin, Swift and Swift-auth entry points, MinIO's admin and internode API. A request whose
/// backend path would start with one is never signed with the backend's credentials.
fn reserved_path(dialect: crate::hcp::mapping::Dialect, segment: &str) -> bool {
    use crate::hcp::mapping::Dialect;
    let segment = segment.to_ascii_lowercase();
    match dialect {
        Dialect::Ceph => matches!(segment.as_str(), "admin" | "swift" | "auth" | "info"),
        Dialect::Minio => segment == "minio",
        Dialect::Aws | Dialect::Obs | Dialect::Local => false,
    }
}

#[cfg(test)]
impl BackendRuntime {
    /// A backend for unit tests that never connect.
    pub fn for_tests() -> BackendRuntime {
        BackendRuntime {
            name: "b".into(),
            kind: BackendKind::S3,
            resolved: std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(
                "127.0.0.1:1".parse().unwrap(),
            )),
            dns_name: None,
            authority: "h".into(),
            credentials: std::sync::Arc::new(
                crate::backend::credentials::BackendCredentials::fixed(
                    "a".into(),
                    crate::auth::SecretKey::new("s"),
                    None,
                ),
            ),
            region: "r".into(),
            addressing: AddressingStyle::Path,
            dialect: Dialect::Aws,
            min_part_bytes: 0,
            conditional_writes: false,
            tls: None,
            max_retries: 0,
            signing: crate::config::Signing::V4,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_added_and_stripped() {
        let tenant = Tenant {
            name: "t".into(),
            backend: "b".into(),
            bucket_prefix: "t-".into(),
            anonymous: Vec::new(),
            overwrite: crate::config::Overwrite::Allow,
        };
        assert_eq!(backend_bucket_name(&tenant, "Finance"), "t-finance");
        let backend = BackendRuntime::for_tests();
        let r = Route {
            tenant: &tenant,
            backend: &backend,
            backend_bucket: None,
            credentials: None,
        };
        assert_eq!(r.client_bucket("t-finance"), Some("finance"));
        assert_eq!(r.client_bucket("other"), None);
    }

    /// A first path segment a backend serves an API of its own under is refused before
    /// anything is signed: RGW's admin and Swift entry points, MinIO's own API.
    #[test]
    fn backend_api_paths_are_not_buckets() {
        let tenant = Tenant {
            name: "t".into(),
            backend: "b".into(),
            bucket_prefix: String::new(),
            anonymous: Vec::new(),
            overwrite: crate::config::Overwrite::Allow,
        };
        let target = |bucket: &str, key: Option<&str>| Target {
            tenant: "t".into(),
            bucket: Some(bucket.into()),
            raw_key: key.map(|k| k.as_bytes().to_vec()),
            virtual_host: false,
        };
        let refused = |dialect, addressing, t: &Target| {
            let mut backend = BackendRuntime::for_tests();
            backend.dialect = dialect;
            backend.addressing = addressing;
            route(&tenant, Some(&backend), t).err().map(|e| e.code)
        };
        let bad = Some(crate::hcp::errors::HcpCode::InvalidBucketName);
        assert_eq!(
            refused(Dialect::Ceph, AddressingStyle::Path, &target("admin", None)),
            bad
        );
        assert_eq!(
            refused(
                Dialect::Ceph,
                AddressingStyle::Path,
                &target("Swift", Some("v1"))
            ),
            bad
        );
        assert_eq!(
            refused(
                Dialect::Minio,
                AddressingStyle::Path,
                &target("minio", None)
            ),
            bad
        );
        // Virtual-host style puts the key first in the path.
        let minio_key = target("data", Some("minio/admin/v3/info"));
        assert_eq!(
            refused(Dialect::Minio, AddressingStyle::Virtual, &minio_key),
            bad
        );
        assert_eq!(
            refused(Dialect::Minio, AddressingStyle::Path, &minio_key),
            None
        );
        assert_eq!(
            refused(Dialect::Aws, AddressingStyle::Path, &target("admin", None)),
            None
        );
        assert_eq!(
            refused(
                Dialect::Ceph,
                AddressingStyle::Path,
                &target("admins", None)
            ),
            None
        );
    }
}

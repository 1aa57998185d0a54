//! Routing: tenant → backend, and client bucket names → backend bucket names.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::request::address::Target;

use crate::backend::health::Reach;
use crate::config::{AddressingStyle, Tenant};
use crate::hcp::errors::{HcpCode, HcpError};

/// A backend as the request path uses it: its settings as configured (reached through `Deref`,
/// so `backend.region` is the configured region), where it is now (shared with the health
/// probe), and what exists only once the process runs — the credentials the gateway signs with
/// (for the embedded store, the ones it generated at start) and the TLS client.
#[derive(Debug, Clone)]
pub struct BackendRuntime {
    pub settings: crate::config::Backend,
    /// Where the backend is now: resolved at start, refreshed by the health probe (DNS).
    pub reach: Arc<Reach>,
    /// The endpoint's authority as sent in `Host` (path style) or after the bucket (virtual host).
    pub authority: crate::config::HeaderText,
    pub credentials: Arc<crate::backend::credentials::BackendCredentials>,
    /// For `https://` endpoints: the TLS client settings (roots, SNI).
    pub tls: Option<Arc<crate::server::tls::ClientTls>>,
    /// Its request and connection series: the gateway's, resolved when it is made
    /// (`Gateway::new`); until then of no registry.
    pub counters: crate::observe::metrics::BackendCounters,
}

impl std::ops::Deref for BackendRuntime {
    type Target = crate::config::Backend;
    fn deref(&self) -> &crate::config::Backend {
        &self.settings
    }
}

impl std::ops::DerefMut for BackendRuntime {
    fn deref_mut(&mut self) -> &mut crate::config::Backend {
        &mut self.settings
    }
}

/// Where one request goes.
#[derive(Debug)]
pub struct Route<'a> {
    pub tenant: &'a Tenant,
    pub backend: &'a BackendRuntime,
    /// The bucket's name at the backend (the tenant's prefix + the client's name; the target's
    /// own name, shared, where that is the same).
    pub backend_bucket: Option<Arc<str>>,
    /// What backend requests are signed with; resolved before the first one (the AWS chain
    /// may have to fetch).
    pub credentials: Option<std::sync::Arc<crate::backend::credentials::SigningCredentials>>,
}

impl BackendRuntime {
    /// The backend's address as last resolved.
    pub fn addr(&self) -> SocketAddr {
        self.reach.addr()
    }
}

impl Route<'_> {
    /// The client-visible name of a backend bucket, if it belongs to this tenant.
    pub fn client_bucket<'n>(&self, backend_name: &'n str) -> Option<&'n str> {
        if is_gateway_bucket(self.tenant, backend_name) {
            return None;
        }
        backend_name.strip_prefix(self.tenant.bucket_prefix.as_str())
    }
}

/// The owner every answer names for the tenant's buckets and objects, in place of the backend
/// account (whose id and name are the backend's, not the client's business): a canonical id
/// derived from the tenant's name, and the tenant's name as display name.
pub fn tenant_owner_id(tenant: &Tenant) -> String {
    crate::sig::v4::sha256_hex(format!("hcp-s3-gateway tenant owner\n{}", tenant.name).as_bytes())
}

/// Whether a backend bucket is the gateway's own (where the tenant's labeled holds or owners
/// are kept): no client request names it, no listing shows it.
pub fn is_gateway_bucket(tenant: &Tenant, backend_name: &str) -> bool {
    tenant.retention.labels_bucket.as_deref() == Some(backend_name)
        || tenant.records_bucket.as_deref() == Some(backend_name)
}

/// A copy's source is never the gateway's own bucket (`route` refuses it as a target).
pub fn check_copy_source(tenant: &Tenant, source_bucket: Option<&str>) -> Result<(), HcpError> {
    if source_bucket.is_some_and(|b| is_gateway_bucket(tenant, &backend_bucket_name(tenant, b))) {
        return Err(HcpError::new(HcpCode::InvalidBucketName).with_message(RESERVED));
    }
    Ok(())
}

/// What a reserved bucket name is answered (naming nothing behind the gateway).
const RESERVED: &str = "The bucket name is reserved.";

/// The backend's name for a client's bucket: the tenant's prefix + the name in lower case
/// (the client's name itself where that is the same).
pub fn backend_bucket_name<'b>(tenant: &Tenant, client_bucket: &'b str) -> Cow<'b, str> {
    if tenant.bucket_prefix.is_empty() && !client_bucket.bytes().any(|c| c.is_ascii_uppercase()) {
        return Cow::Borrowed(client_bucket);
    }
    let mut s = String::with_capacity(tenant.bucket_prefix.len() + client_bucket.len());
    s.push_str(&tenant.bucket_prefix);
    s.extend(client_bucket.chars().map(|c| c.to_ascii_lowercase()));
    Cow::Owned(s)
}

pub fn route<'a>(
    tenant: &'a Tenant,
    backend: Option<&'a BackendRuntime>,
    target: &Target,
) -> Result<Route<'a>, HcpError> {
    let backend = backend.ok_or_else(|| HcpError::new(HcpCode::ServiceUnavailable))?;
    // (Shared with the target where the backend's name is the client's.)
    let backend_bucket = target
        .bucket
        .as_ref()
        .map(|b| match backend_bucket_name(tenant, b) {
            Cow::Borrowed(_) => Arc::clone(b),
            Cow::Owned(name) => name.into(),
        });
    let key = target.key();
    // (Virtual-host style puts the key first in the path: a key's first segment then.)
    let (first_segment, of_key): (Option<&[u8]>, bool) = match (&backend_bucket, backend.addressing)
    {
        (Some(bucket), AddressingStyle::Path) => (Some(bucket.as_bytes()), false),
        (_, _) => (
            key.as_deref()
                .map(|k| k.split(|&b| b == b'/').next().unwrap_or_default()),
            true,
        ),
    };
    // The backend's own key limit (HCP's was checked in validation): a longer key could never
    // be stored there.
    if key
        .as_deref()
        .is_some_and(|k| k.len() > backend.max_key_bytes)
    {
        return Err(HcpError::new(HcpCode::KeyTooLong).with_message(format!(
            "The object name is longer than the {} bytes this bucket's storage allows.",
            backend.max_key_bytes
        )));
    }
    let reserved = first_segment.is_some_and(|s| reserved_path(backend.dialect, s));
    if reserved && of_key {
        // (HCP's answer to "the object name specified in the request is invalid".)
        return Err(HcpError::new(HcpCode::MalformedXML).with_message(
            "The object name's first segment is reserved at this bucket's storage.",
        ));
    }
    if reserved
        || backend_bucket
            .as_deref()
            .is_some_and(|b| is_gateway_bucket(tenant, b))
    {
        return Err(HcpError::new(HcpCode::InvalidBucketName).with_message(RESERVED));
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
pub fn reserved_path(dialect: crate::hcp::mapping::Dialect, segment: &[u8]) -> bool {
    use crate::hcp::mapping::Dialect;
    let reserved: &[&str] = match dialect {
        Dialect::Ceph => &["admin", "swift", "auth", "info"],
        Dialect::Minio => &["minio"],
        Dialect::Aws | Dialect::Obs | Dialect::Local => &[],
    };
    reserved
        .iter()
        .any(|r| segment.eq_ignore_ascii_case(r.as_bytes()))
}

#[cfg(test)]
impl BackendRuntime {
    /// A backend for unit tests that never connect.
    pub fn for_tests() -> BackendRuntime {
        use crate::config::BackendKind;
        use crate::hcp::mapping::Dialect;
        use std::time::Duration;
        let settings = crate::config::Backend {
            name: "b".into(),
            kind: BackendKind::S3,
            target: crate::config::BackendTarget::Local {
                data_dir: "/nonexistent".into(),
                engine: crate::config::LocalEngine::default(),
            },
            region: "r".into(),
            addressing: AddressingStyle::Path,
            dialect: Dialect::Aws,
            min_part_bytes: 0,
            max_key_bytes: 1024,
            conditional_writes: false,
            object_ownership: None,
            ca_file: None,
            ca_digest: None,
            max_retries: 0,
            signing: crate::config::Signing::V4,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
        };
        BackendRuntime {
            reach: Arc::new(Reach {
                name: "b".into(),
                resolved: arc_swap::ArcSwap::from_pointee("127.0.0.1:1".parse().unwrap()),
                dns_name: None,
                timeout: settings.connect_timeout,
                http: true,
            }),
            settings,
            authority: crate::config::HeaderText::new("h".into()).expect("a host"),
            credentials: Arc::new(crate::backend::credentials::BackendCredentials::fixed(
                "a".into(),
                crate::request::authenticate::SecretKey::new("s"),
                None,
            )),
            tls: None,
            counters: crate::observe::metrics::BackendCounters::unregistered(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hcp::mapping::Dialect;

    #[test]
    fn prefix_is_added_and_stripped() {
        let tenant = Tenant {
            name: "t".into(),
            folders: false,
            backend: "b".into(),
            bucket_prefix: "t-".into(),
            anonymous: Default::default(),
            overwrite: crate::config::Overwrite::Allow,
            retention: Default::default(),
            records_bucket: None,
            anonymous_acls: false.into(),
            removed: false.into(),
            cors: None,
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

    /// The backend bucket is the tenant's prefix + the client's name in lower case; where that
    /// is the client's name as it is, the route shares the target's name instead of a copy.
    #[test]
    fn the_backend_bucket_is_shared_only_where_it_is_the_clients_name() {
        let backend = BackendRuntime::for_tests();
        let target = |bucket: &str| Target {
            tenant: "t".into(),
            bucket: Some(bucket.into()),
            raw_key: None,
            virtual_host: false,
        };
        let routed = |prefix: &str, t: &Target| {
            let mut tenant = Tenant::for_tests();
            tenant.bucket_prefix = prefix.into();
            let bucket = route(&tenant, Some(&backend), t)
                .unwrap()
                .backend_bucket
                .unwrap();
            let shared = Arc::ptr_eq(&bucket, t.bucket.as_ref().unwrap());
            (bucket.to_string(), shared)
        };
        assert_eq!(routed("", &target("finance")), ("finance".into(), true));
        assert_eq!(routed("", &target("Finance")), ("finance".into(), false));
        assert_eq!(
            routed("t-", &target("finance")),
            ("t-finance".into(), false)
        );
        assert_eq!(
            routed("t-", &target("Finance")),
            ("t-finance".into(), false)
        );
    }

    /// A key longer than the backend stores is refused at routing, whatever HCP allows.
    #[test]
    fn keys_longer_than_the_backend_stores_are_refused() {
        let tenant = Tenant {
            name: "t".into(),
            folders: false,
            backend: "b".into(),
            bucket_prefix: String::new(),
            anonymous: Default::default(),
            overwrite: crate::config::Overwrite::Allow,
            retention: Default::default(),
            records_bucket: None,
            anonymous_acls: false.into(),
            removed: false.into(),
            cors: None,
        };
        let target = |len: usize| Target {
            tenant: "t".into(),
            bucket: Some("b".into()),
            raw_key: Some(vec![b'k'; len].into()),
            virtual_host: false,
        };
        let mut backend = BackendRuntime::for_tests();
        backend.max_key_bytes = 2048;
        let code = |len| {
            route(&tenant, Some(&backend), &target(len))
                .err()
                .map(|e| e.code)
        };
        assert_eq!(code(2048), None);
        assert_eq!(code(2049), Some(crate::hcp::errors::HcpCode::KeyTooLong));
    }

    /// A first path segment a backend serves an API of its own under is refused before
    /// anything is signed: RGW's admin and Swift entry points, MinIO's own API.
    #[test]
    fn backend_api_paths_are_not_buckets() {
        let tenant = Tenant {
            name: "t".into(),
            folders: false,
            backend: "b".into(),
            bucket_prefix: String::new(),
            anonymous: Default::default(),
            overwrite: crate::config::Overwrite::Allow,
            retention: Default::default(),
            records_bucket: None,
            anonymous_acls: false.into(),
            removed: false.into(),
            cors: None,
        };
        let target = |bucket: &str, key: Option<&str>| Target {
            tenant: "t".into(),
            bucket: Some(bucket.into()),
            raw_key: key.map(|k| k.as_bytes().into()),
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
        // Virtual-host style puts the key first in the path: a key's refusal is a key's.
        let minio_key = target("data", Some("minio/admin/v3/info"));
        assert_eq!(
            refused(Dialect::Minio, AddressingStyle::Virtual, &minio_key),
            Some(crate::hcp::errors::HcpCode::MalformedXML)
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

    /// The bucket where a tenant's labeled holds are kept is the gateway's: a client cannot
    /// name it (any letter case), copy from it, and ListBuckets does not show it. (With a
    /// bucket prefix it is outside the tenant's names altogether: configuration checks that.)
    #[test]
    fn the_labeled_holds_bucket_is_out_of_reach() {
        let mut tenant = Tenant::for_tests();
        tenant.retention.labels_bucket = Some("gw-holds".into());
        let backend = BackendRuntime::for_tests();
        for (bucket, refused) in [
            ("gw-holds", true),
            ("GW-Holds", true),
            ("gw-holdings", false),
        ] {
            let target = Target {
                tenant: "t".into(),
                bucket: Some(bucket.into()),
                raw_key: Some(b"k"[..].into()),
                virtual_host: false,
            };
            let code = route(&tenant, Some(&backend), &target)
                .err()
                .map(|e| e.code);
            let bad = refused.then_some(crate::hcp::errors::HcpCode::InvalidBucketName);
            assert_eq!(code, bad, "{bucket}");
            let source = check_copy_source(&tenant, Some(bucket))
                .err()
                .map(|e| e.code);
            assert_eq!(source, bad, "{bucket}");
        }
        let r = Route {
            tenant: &tenant,
            backend: &backend,
            backend_bucket: None,
            credentials: None,
        };
        assert_eq!(r.client_bucket("gw-holds"), None);
        assert_eq!(r.client_bucket("gw-holdings"), Some("gw-holdings"));
    }
}

//! Addressing (seed 002): which tenant, bucket and key a request names.
//!
//! Path style: `Host: tenant.domain`, `/bucket/key`. Virtual-host style: `Host:
//! bucket.tenant.domain`, `/key`. A host under no configured domain (an IP address, `localhost`)
//! is served by the default tenant in path style. The key is kept exactly as the client encoded
//! it, so the signature is checked and the backend addressed without a decode/re-encode round trip.

use std::sync::Arc;

use percent_encoding::percent_decode;

use crate::hcp::errors::{HcpCode, HcpError};

/// What a request addresses. (Its names are shared, not copied, by what keeps them beyond
/// the request's phases — the access record —, and the tenant's is the configuration's own.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub tenant: Arc<str>,
    /// The client-visible bucket name.
    pub bucket: Option<Arc<str>>,
    /// The key as the client encoded it in the path (no leading `/`).
    pub raw_key: Option<Arc<[u8]>>,
    pub virtual_host: bool,
}

impl Target {
    /// The decoded key (bytes: keys need not be UTF-8).
    /// (Borrowed from the raw key when nothing in it is percent-encoded.)
    pub fn key(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.raw_key
            .as_ref()
            .map(|k| std::borrow::Cow::from(percent_decode(k)))
    }

    /// The decoded key for messages and logs.
    pub fn key_lossy(&self) -> Option<String> {
        self.raw_key
            .as_deref()
            .map(|k| decoded_lossy(k).into_owned())
    }

    /// The same bucket's object `key` (decoded bytes, encoded once here): the gateway's own
    /// requests for other keys than the client's (folder markers, objects of a delete list).
    pub fn with_key(&self, key: &[u8]) -> Target {
        let mut raw_key = String::with_capacity(key.len() * 3);
        crate::sig::v4::uri_encode(key, true, &mut raw_key);
        Target {
            raw_key: Some(raw_key.into_bytes().into()),
            ..self.clone()
        }
    }
}

/// An encoded key (or name) decoded, invalid UTF-8 replaced: for messages and logs.
pub fn decoded_lossy(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::borrow::Cow::from(percent_decode(raw)) {
        std::borrow::Cow::Borrowed(k) => String::from_utf8_lossy(k),
        std::borrow::Cow::Owned(k) => String::from_utf8_lossy(&k).into_owned().into(),
    }
}

/// Resolves a request's tenant, bucket and key from its `Host` and raw path; `tenant_named`
/// gives the configured tenant's name for a name, if there is such a tenant.
pub fn resolve(
    host: &str,
    raw_path: &[u8],
    hcp_scheme: bool,
    domains: &[String],
    default_tenant: Option<&str>,
    tenant_named: impl Fn(&str) -> Option<Arc<str>>,
) -> Result<Target, HcpError> {
    let host = strip_port(host).trim_end_matches('.');
    // (Host names are case-insensitive; most come in lower case already.)
    let host: std::borrow::Cow<'_, str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        host.to_ascii_lowercase().into()
    } else {
        host.into()
    };
    let (tenant, vhost_bucket) = match domains.iter().find_map(|d| subdomain_of(&host, d)) {
        Some(labels) => match labels.split_once('.') {
            None => (labels, None),
            Some((bucket, tenant)) => (tenant, Some(bucket)),
        },
        None => match default_tenant {
            Some(t) => (t, None),
            None => {
                return Err(HcpError::new(HcpCode::AccessDenied)
                    .with_message("The host names no tenant of this gateway."))
            }
        },
    };
    let Some(tenant) = tenant_named(tenant) else {
        return Err(HcpError::new(HcpCode::AccessDenied)
            .with_message("The host names no tenant of this gateway."));
    };
    if !raw_path.starts_with(b"/") {
        return Err(HcpError::new(HcpCode::InvalidArgument)
            .with_message("The request path must start with '/'."));
    }
    // HCP's own authentication scheme addresses through a case-sensitive /hs3 segment.
    let raw_path = match raw_path.strip_prefix(b"/hs3") {
        Some(rest) if hcp_scheme && (rest.is_empty() || rest.starts_with(b"/")) => {
            if rest.is_empty() {
                &b"/"[..]
            } else {
                rest
            }
        }
        _ => raw_path,
    };
    let path = &raw_path[1..];
    let (bucket, raw_key): (Option<Arc<str>>, _) = match vhost_bucket {
        Some(bucket) => (Some(bucket.into()), (!path.is_empty()).then(|| path.into())),
        None if path.is_empty() => (None, None),
        None => {
            let (b, k) = match path.iter().position(|&c| c == b'/') {
                Some(slash) => (&path[..slash], Some(&path[slash + 1..])),
                None => (path, None),
            };
            // (Decoded in place when nothing in the name is encoded, as nearly always.)
            let bucket: std::borrow::Cow<'_, [u8]> = percent_decode(b).into();
            let bucket = std::str::from_utf8(&bucket)
                .map(Arc::from)
                .map_err(|_| HcpError::new(HcpCode::InvalidBucketName))?;
            (Some(bucket), k.filter(|k| !k.is_empty()).map(Arc::from))
        }
    };
    Ok(Target {
        tenant,
        bucket,
        raw_key,
        virtual_host: vhost_bucket_is_some(&host, domains),
    })
}

fn vhost_bucket_is_some(host: &str, domains: &[String]) -> bool {
    domains
        .iter()
        .find_map(|d| subdomain_of(host, d))
        .is_some_and(|l| l.contains('.'))
}

/// The labels of `host` in front of `.domain`, if `host` is below `domain`.
fn subdomain_of<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    host.strip_suffix(domain)?
        .strip_suffix('.')
        .filter(|l| !l.is_empty())
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec!["hcp.example.com".into()]
    }

    fn any(t: &str) -> Option<Arc<str>> {
        Some(t.into())
    }

    #[test]
    fn path_style_under_a_domain() {
        let t = resolve(
            "europe.hcp.example.com",
            b"/finance/quarterly_rpts/Q4_2019",
            false,
            &domains(),
            None,
            any,
        )
        .unwrap();
        assert_eq!(&*t.tenant, "europe");
        assert_eq!(t.bucket.as_deref(), Some("finance"));
        assert_eq!(t.raw_key.as_deref(), Some(&b"quarterly_rpts/Q4_2019"[..]));
        assert!(!t.virtual_host);
    }

    #[test]
    fn virtual_host_style() {
        let t = resolve(
            "finance.europe.hcp.example.com:443",
            b"/quarterly_rpts/Q4_2019",
            false,
            &domains(),
            None,
            any,
        )
        .unwrap();
        assert_eq!(&*t.tenant, "europe");
        assert_eq!(t.bucket.as_deref(), Some("finance"));
        assert_eq!(t.raw_key.as_deref(), Some(&b"quarterly_rpts/Q4_2019"[..]));
        assert!(t.virtual_host);
        let t = resolve(
            "finance.europe.hcp.example.com",
            b"/",
            false,
            &domains(),
            None,
            any,
        )
        .unwrap();
        assert_eq!((t.bucket.as_deref(), t.raw_key), (Some("finance"), None));
    }

    #[test]
    fn other_hosts_use_the_default_tenant() {
        let t = resolve(
            "127.0.0.1:8080",
            b"/b/k%20x//y/",
            false,
            &domains(),
            Some("demo"),
            any,
        )
        .unwrap();
        assert_eq!(&*t.tenant, "demo");
        assert_eq!(t.raw_key.as_deref(), Some(&b"k%20x//y/"[..]));
        assert_eq!(t.key_lossy().as_deref(), Some("k x//y/"));
        let e = resolve("127.0.0.1", b"/", false, &domains(), None, any).unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
    }

    #[test]
    fn service_level_and_bucket_level() {
        let t = resolve("europe.hcp.example.com", b"/", false, &domains(), None, any).unwrap();
        assert_eq!((t.bucket, t.raw_key), (None, None));
        let t = resolve(
            "europe.hcp.example.com",
            b"/b",
            false,
            &domains(),
            None,
            any,
        )
        .unwrap();
        assert_eq!((t.bucket.as_deref(), t.raw_key), (Some("b"), None));
        let t = resolve(
            "europe.hcp.example.com",
            b"/b/",
            false,
            &domains(),
            None,
            any,
        )
        .unwrap();
        assert_eq!((t.bucket.as_deref(), t.raw_key), (Some("b"), None));
    }

    #[test]
    fn hcp_scheme_strips_hs3() {
        let t = resolve(
            "europe.hcp.example.com",
            b"/hs3/b/k",
            true,
            &domains(),
            None,
            any,
        )
        .unwrap();
        assert_eq!(
            (t.bucket.as_deref(), t.raw_key.as_deref()),
            (Some("b"), Some(&b"k"[..]))
        );
        let t = resolve(
            "b.europe.hcp.example.com",
            b"/hs3",
            true,
            &domains(),
            None,
            any,
        )
        .unwrap();
        assert_eq!((t.bucket.as_deref(), t.raw_key), (Some("b"), None));
        let t = resolve(
            "europe.hcp.example.com",
            b"/hs3/k",
            false,
            &domains(),
            None,
            any,
        )
        .unwrap();
        assert_eq!(t.bucket.as_deref(), Some("hs3"), "only with HCP's scheme");
    }

    #[test]
    fn unknown_tenant_is_refused() {
        let e = resolve(
            "ghost.hcp.example.com",
            b"/",
            false,
            &domains(),
            None,
            |t| (t == "europe").then(|| t.into()),
        )
        .unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
    }
}

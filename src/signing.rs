//! The request to the backend: addressed with the backend bucket name, carrying the client's
//! headers minus what is the client's alone, and signed with SigV4 and the backend's own keys.

use std::time::SystemTime;

use http::{HeaderValue, Method};
use percent_encoding::percent_decode;
use pingora::http::RequestHeader;

use crate::addressing::Target;
use base64::Engine as _;

use crate::auth::{format_amz_date, sigv2, sigv4_header};
use crate::config::{AddressingStyle, Signing};
use crate::credentials::SigningCredentials;
use crate::routing::{backend_bucket_name, Route};
use crate::sigv4;

/// Request headers that belong to the client's connection or signature and are never forwarded.
const CLIENT_ONLY: &[&str] = &[
    "authorization",
    "host",
    "date",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "x-amz-decoded-content-length",
    "x-amz-trailer",
];

/// Query parameters that carry the client's presigned credentials: the backend gets the gateway's
/// signature instead, never the client's.
const CLIENT_AUTH_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

fn forwarded(name: &str) -> bool {
    !CLIENT_ONLY.contains(&name) && !name.starts_with("x-hcp-")
}

/// How the body reaches the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Forwarded as the client sent it.
    AsSent,
    /// The client's aws-chunked framing was removed; its trailing checksum was verified by the
    /// gateway and is not announced to the backend.
    Dechunked,
}

/// Which headers the gateway signs: host, the body's integrity headers and every `x-amz-*`.
fn signed(name: &str) -> bool {
    name == "host" || name == "content-md5" || name == "content-type" || name.starts_with("x-amz-")
}

/// Builds and signs the backend request.
///
/// `payload_hash` is what the gateway vouches for: the client's verified digest when the body is
/// forwarded unchanged, `UNSIGNED-PAYLOAD` otherwise, the empty digest without a body.
/// What the backend request says about its body.
#[derive(Debug, Clone, Copy)]
pub struct BodyPlan<'a> {
    /// The length of the body as sent on (the decoded length for aws-chunked uploads).
    pub length: Option<u64>,
    pub framing: BodyFraming,
    /// What the gateway vouches for: the verified digest, `UNSIGNED-PAYLOAD`, or the empty digest.
    pub payload_hash: &'a str,
}

impl BodyPlan<'static> {
    /// A request without a body.
    pub const NONE: BodyPlan<'static> = BodyPlan {
        length: None,
        framing: BodyFraming::AsSent,
        payload_hash: sigv4::EMPTY_SHA256,
    };
}

pub fn backend_request(
    client: &RequestHeader,
    target: &Target,
    route: &Route<'_>,
    body: BodyPlan<'_>,
    now: SystemTime,
    keys: &sigv4::SigningKeyCache,
) -> RequestHeader {
    let BodyPlan {
        length: body_length,
        framing,
        payload_hash,
    } = body;
    let backend = route.backend;
    let (_, raw_query) = sigv4_header::split_target(client.raw_path());

    let mut path = String::with_capacity(128);
    let host = match (&route.backend_bucket, backend.addressing) {
        (Some(bucket), AddressingStyle::Virtual) => format!("{bucket}.{}", backend.authority),
        (Some(bucket), AddressingStyle::Path) => {
            path.push('/');
            sigv4::uri_encode(bucket.as_bytes(), false, &mut path);
            backend.authority.clone()
        }
        (None, _) => backend.authority.clone(),
    };
    // OBS's SDKs address a bucket path style as `/bucket`, and sign that; S3 clients send
    // `/bucket/`, which every S3 server accepts.
    let obs_bucket_path = backend.signing == Signing::Obs
        && backend.addressing == AddressingStyle::Path
        && route.backend_bucket.is_some()
        && target.raw_key.is_none();
    if !obs_bucket_path {
        path.push('/');
    }
    // The backend gets the key the gateway validated, encoded once from its bytes: `%2F` in
    // the client's path is a `/` of the key (as S3 reads it), and servers that decode and
    // re-encode paths before checking signatures (RGW) see the same key as those that do not.
    if let Some(key) = target.key() {
        sigv4::uri_encode(&key, true, &mut path);
    }
    let query = sigv4::canonical_query(raw_query, CLIENT_AUTH_PARAMS);
    let mut target_bytes = path.clone().into_bytes();
    if !query.is_empty() {
        target_bytes.push(b'?');
        target_bytes.extend_from_slice(query.as_bytes());
    }

    let method = client.method.clone();
    let mut req = RequestHeader::build(method.clone(), b"/", None).expect("valid method");
    req.set_raw_path(&target_bytes)
        .expect("canonical targets are valid");
    for (name, value) in client.headers.iter() {
        let n = name.as_str();
        if !forwarded(n) {
            continue;
        }
        if n == "x-amz-copy-source" {
            let rewritten = copy_source(value.as_bytes(), route);
            req.append_header(name.clone(), rewritten)
                .expect("valid header");
        } else if framing == BodyFraming::Dechunked && n == "content-encoding" {
            // aws-chunked is the client's framing; other codings describe the object.
            let rest: Vec<&str> = value
                .to_str()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("aws-chunked"))
                .collect();
            if !rest.is_empty() {
                req.append_header(name.clone(), rest.join(","))
                    .expect("valid header");
            }
        } else if framing == BodyFraming::Dechunked && n == "x-amz-sdk-checksum-algorithm" {
            // The trailing checksum it announces was verified here and is not sent on.
        } else {
            req.append_header(name.clone(), value.clone())
                .expect("valid header");
        }
    }
    req.insert_header(http::header::HOST, &host)
        .expect("valid host");
    match body_length {
        Some(n) => req
            .insert_header(http::header::CONTENT_LENGTH, n.to_string())
            .expect("valid length"),
        None if method == Method::PUT || method == Method::POST => req
            .insert_header(http::header::CONTENT_LENGTH, "0")
            .expect("valid length"),
        None => {}
    }
    let credentials = route
        .credentials
        .as_deref()
        .expect("backend credentials are resolved before the first backend request");
    if backend.signing == Signing::Obs {
        sign_obs(&mut req, route, credentials, &path, &query, now);
        return req;
    }
    if let Some(token) = &credentials.token {
        req.insert_header("x-amz-security-token", token.expose())
            .expect("valid token");
    }
    let amz_date = format_amz_date(now);
    req.insert_header("x-amz-date", &amz_date)
        .expect("valid date");
    req.insert_header("x-amz-content-sha256", payload_hash)
        .expect("valid hash");

    let mut names: Vec<String> = req
        .headers
        .keys()
        .map(|n| n.as_str().to_string())
        .filter(|n| signed(n))
        .collect();
    names.sort();
    names.dedup();
    let signed_headers = names.join(";");
    let canonical = sigv4::canonical_request(
        method.as_str(),
        &path,
        &query,
        &signed_headers,
        |name| sigv4_header::header_values(&req, name),
        payload_hash,
    );
    let date = &amz_date[..8];
    let scope = sigv4::scope(date, &backend.region, "s3");
    let key = keys.get(credentials.secret.expose(), date, &backend.region, "s3");
    let signature = sigv4::signature(&key, &sigv4::string_to_sign(&amz_date, &scope, &canonical));
    let authorization =
        sigv4::authorization(&credentials.access_key, &scope, &signed_headers, &signature);
    req.insert_header(http::header::AUTHORIZATION, authorization)
        .expect("valid authorization");
    req
}

/// OBS's own scheme: the `x-amz-*` headers become `x-obs-*` (checksums the gateway verified
/// itself are not sent: OBS rejects them), `x-obs-date` dates the request, and
/// `Authorization: OBS key:Base64(HMAC-SHA1(secret, StringToSign))` signs it (SigV2's shape
/// with OBS's headers and sub-resources).
fn sign_obs(
    req: &mut RequestHeader,
    route: &Route<'_>,
    credentials: &SigningCredentials,
    path: &str,
    query: &str,
    now: SystemTime,
) {
    let amz: Vec<(http::HeaderName, HeaderValue)> = req
        .headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("x-amz-"))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    for (name, _) in &amz {
        req.remove_header(name);
    }
    for (name, value) in amz {
        let rest = &name.as_str()["x-amz-".len()..];
        if rest.starts_with("checksum-") || rest == "sdk-checksum-algorithm" {
            continue;
        }
        req.append_header(format!("x-obs-{rest}"), value)
            .expect("valid header");
    }
    req.insert_header("x-obs-date", httpdate::fmt_http_date(now))
        .expect("valid date");
    if let Some(token) = &credentials.token {
        req.insert_header("x-obs-security-token", token.expose())
            .expect("valid token");
    }
    let backend = route.backend;
    let resource_target = Target {
        tenant: String::new(),
        bucket: route.backend_bucket.clone(),
        raw_key: None,
        virtual_host: backend.addressing == AddressingStyle::Virtual
            && route.backend_bucket.is_some(),
    };
    let resource = sigv2::canonical_resource_in(
        &resource_target,
        path.as_bytes(),
        &crate::operation::Query::parse(query.as_bytes()),
        &sigv2::OBS,
    );
    // With x-obs-date, the Date line is empty.
    let string_to_sign = sigv2::string_to_sign_in(req, "", &resource, &sigv2::OBS);
    let signature = base64::engine::general_purpose::STANDARD
        .encode(sigv2::sign(credentials.secret.expose(), &string_to_sign));
    req.insert_header(
        http::header::AUTHORIZATION,
        format!("OBS {}:{signature}", credentials.access_key),
    )
    .expect("valid authorization");
}

/// Splits `x-amz-copy-source` (`[/]bucket/key[?versionId=…]`) into the decoded bucket and the
/// rest as sent.
pub fn split_copy_source(value: &[u8]) -> (String, &[u8]) {
    let v = value.strip_prefix(b"/").unwrap_or(value);
    let (bucket, rest) = match v.iter().position(|&b| b == b'/') {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, &b""[..]),
    };
    (
        percent_decode(bucket).decode_utf8_lossy().into_owned(),
        rest,
    )
}

/// Rewrites `x-amz-copy-source` to the source's backend bucket.
fn copy_source(value: &[u8], route: &Route<'_>) -> HeaderValue {
    let (bucket, rest) = split_copy_source(value);
    let mut out = String::with_capacity(value.len() + route.tenant.bucket_prefix.len() + 1);
    out.push('/');
    sigv4::uri_encode(
        backend_bucket_name(route.tenant, &bucket).as_bytes(),
        false,
        &mut out,
    );
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(rest);
    HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| HeaderValue::from_static("/"))
}

#[cfg(test)]
mod obs_tests {
    use super::*;
    use crate::config::Tenant;
    use crate::routing::BackendRuntime;

    #[derive(serde::Deserialize)]
    struct Vectors {
        access_key: String,
        secret_key: String,
        case: Vec<Case>,
    }

    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        method: String,
        bucket: String,
        key: String,
        query: String,
        path_style: bool,
        headers: Vec<(String, String)>,
        string_to_sign: String,
        authorization: String,
    }

    /// Requests signed by Huawei's own SDK (tests/vectors/obs.toml): the gateway's OBS signature
    /// of the same requests, sent to it with `x-amz-*` headers, is the SDK's.
    #[test]
    fn obs_signatures_match_the_official_sdk() {
        let v: Vectors =
            toml::from_str(include_str!("../tests/vectors/obs.toml")).expect("vectors parse");
        let tenant = Tenant {
            name: "t".into(),
            backend: "obs".into(),
            bucket_prefix: String::new(),
            anonymous: Vec::new(),
            overwrite: crate::config::Overwrite::Allow,
        };
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_528_268_920);
        for c in &v.case {
            let mut backend = BackendRuntime::for_tests();
            backend.signing = Signing::Obs;
            backend.credentials =
                std::sync::Arc::new(crate::credentials::BackendCredentials::fixed(
                    v.access_key.clone(),
                    crate::auth::SecretKey::new(v.secret_key.clone()),
                    None,
                ));
            backend.addressing = if c.path_style {
                AddressingStyle::Path
            } else {
                AddressingStyle::Virtual
            };
            let mut raw_key = String::new();
            sigv4::uri_encode(c.key.as_bytes(), true, &mut raw_key);
            let mut path = format!("/{}", c.bucket);
            if !c.key.is_empty() {
                path = format!("{path}/{raw_key}");
            }
            if !c.query.is_empty() {
                path = format!("{path}?{}", c.query);
            }
            let mut client =
                RequestHeader::build(c.method.as_str(), path.as_bytes(), None).unwrap();
            for (name, value) in &c.headers {
                let name = name.to_ascii_lowercase();
                let name = match name.strip_prefix("x-obs-") {
                    Some(rest) => format!("x-amz-{rest}"),
                    None => name,
                };
                client.append_header(name, value.as_str()).unwrap();
            }
            let target = Target {
                tenant: "t".into(),
                bucket: Some(c.bucket.clone()),
                raw_key: (!c.key.is_empty()).then(|| raw_key.into_bytes()),
                virtual_host: false,
            };
            let route = Route {
                tenant: &tenant,
                backend: &backend,
                backend_bucket: Some(c.bucket.clone()),
                credentials: backend.credentials.fixed_now(),
            };
            let keys = sigv4::SigningKeyCache::default();
            let sent = backend_request(&client, &target, &route, BodyPlan::NONE, now, &keys);
            let authorization = sent.headers["authorization"].to_str().unwrap();
            assert_eq!(
                authorization, c.authorization,
                "{}: the SDK signed {:?}",
                c.name, c.string_to_sign
            );
            assert!(
                !sent
                    .headers
                    .keys()
                    .any(|n| n.as_str().starts_with("x-amz-")),
                "{}: x-amz headers sent to OBS",
                c.name
            );
        }
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use crate::config::Tenant;
    use crate::credentials::BackendCredentials;
    use crate::routing::BackendRuntime;

    fn sent_with_token(signing: Signing) -> RequestHeader {
        let tenant = Tenant {
            name: "t".into(),
            backend: "b".into(),
            bucket_prefix: String::new(),
            anonymous: Vec::new(),
            overwrite: crate::config::Overwrite::Allow,
        };
        let mut backend = BackendRuntime::for_tests();
        backend.signing = signing;
        backend.credentials = std::sync::Arc::new(BackendCredentials::fixed(
            "TMPAK".into(),
            crate::auth::SecretKey::new("tmp-secret"),
            Some(crate::auth::SecretKey::new("temporary-token")),
        ));
        let route = Route {
            tenant: &tenant,
            backend: &backend,
            backend_bucket: Some("b".into()),
            credentials: backend.credentials.fixed_now(),
        };
        let client = RequestHeader::build("GET", b"/b/k", None).unwrap();
        let target = Target {
            tenant: "t".into(),
            bucket: Some("b".into()),
            raw_key: Some(b"k".to_vec()),
            virtual_host: false,
        };
        let keys = sigv4::SigningKeyCache::default();
        backend_request(
            &client,
            &target,
            &route,
            BodyPlan::NONE,
            SystemTime::now(),
            &keys,
        )
    }

    /// Temporary credentials: the security token goes with the request and is signed — as
    /// `x-amz-security-token` in SigV4, as `x-obs-security-token` in OBS's scheme.
    #[test]
    fn security_tokens_are_sent_and_signed() {
        let v4 = sent_with_token(Signing::V4);
        assert_eq!(v4.headers["x-amz-security-token"], "temporary-token");
        let auth = v4.headers["authorization"].to_str().unwrap();
        assert!(auth.contains("x-amz-security-token"), "{auth}");

        let obs = sent_with_token(Signing::Obs);
        assert_eq!(obs.headers["x-obs-security-token"], "temporary-token");
        let string_to_sign = sigv2::string_to_sign_in(&obs, "", "/b/k", &sigv2::OBS);
        assert!(string_to_sign.contains("x-obs-security-token:temporary-token\n"));
        let expected = base64::engine::general_purpose::STANDARD
            .encode(sigv2::sign("tmp-secret", &string_to_sign));
        assert_eq!(
            obs.headers["authorization"].to_str().unwrap(),
            format!("OBS TMPAK:{expected}")
        );
    }
}

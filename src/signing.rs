//! The request to the backend: addressed with the backend bucket name, carrying the client's
//! headers minus what is the client's alone, and signed with SigV4 and the backend's own keys.

use std::time::SystemTime;

use http::{HeaderValue, Method};
use percent_encoding::percent_decode;
use pingora::http::RequestHeader;

use crate::addressing::Target;
use crate::auth::{format_amz_date, sigv4_header};
use crate::config::AddressingStyle;
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
    path.push('/');
    if let Some(key) = &target.raw_key {
        sigv4::canonicalize_encoded(key, true, &mut path);
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
    let amz_date = format_amz_date(now);
    req.insert_header("x-amz-date", &amz_date)
        .expect("valid date");
    req.insert_header("x-amz-content-sha256", payload_hash)
        .expect("valid hash");
    match body_length {
        Some(n) => req
            .insert_header(http::header::CONTENT_LENGTH, n.to_string())
            .expect("valid length"),
        None if method == Method::PUT || method == Method::POST => req
            .insert_header(http::header::CONTENT_LENGTH, "0")
            .expect("valid length"),
        None => {}
    }

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
    let key = keys.get(backend.secret.expose(), date, &backend.region, "s3");
    let signature = sigv4::signature(&key, &sigv4::string_to_sign(&amz_date, &scope, &canonical));
    let authorization =
        sigv4::authorization(&backend.access_key, &scope, &signed_headers, &signature);
    req.insert_header(http::header::AUTHORIZATION, authorization)
        .expect("valid authorization");
    req
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

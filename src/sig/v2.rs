//! AWS Signature Version 2's canonicalisation and HMAC, for verifying clients' `AWS key:signature`
//! headers and presigned URLs (`authenticate::sigv2`) and for signing toward OBS backends.
//!
//! `Signature = Base64(HMAC-SHA1(secret, StringToSign))` with
//! `StringToSign = Verb\nContent-MD5\nContent-Type\nDate\nCanonicalizedAmzHeaders CanonicalizedResource`.
//!
//! Huawei OBS's own scheme (`Authorization: OBS key:signature`) has the same shape with
//! `x-obs-*` headers and its own sub-resource list: one canonicalisation serves both, by
//! [`V2Dialect`], for verifying clients (AWS) and signing toward OBS backends.

use hmac::{Hmac, KeyInit, Mac};
use pingora::http::RequestHeader;
use sha1::Sha1;

use crate::request::address::Target;
use crate::request::classify::Query;

/// Sub-resources that are part of the canonical resource: the union of those AWS documents and
/// those botocore and MinIO sign, so that every client's signature verifies.
const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "encryption",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// What differs between AWS's SigV2 and OBS's scheme.
#[derive(Debug, Clone, Copy)]
pub struct V2Dialect {
    /// Headers that are signed: `x-amz-` or `x-obs-`.
    pub header_prefix: &'static str,
    subresource: fn(&str) -> bool,
}

pub const AWS: V2Dialect = V2Dialect {
    header_prefix: "x-amz-",
    subresource: aws_subresource,
};

pub const OBS: V2Dialect = V2Dialect {
    header_prefix: "x-obs-",
    subresource: obs_subresource,
};

/// (The parameters the gateway reads in any case, as HCP does, are signed in any case too, as
/// written: a parameter acted on is never one the signature leaves out.)
fn aws_subresource(name: &str) -> bool {
    SUBRESOURCES.contains(&name)
        || crate::request::classify::CASELESS
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
}

/// OBS signs these query parameters, compared case-insensitively, and any `x-obs-*` one
/// (esdk-obs-python 3.26.6 `const.ALLOWED_RESOURCE_PARAMTER_NAMES`).
fn obs_subresource(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "acl",
        "backtosource",
        "policy",
        "torrent",
        "logging",
        "location",
        "storageinfo",
        "quota",
        "storageclass",
        "storagepolicy",
        "requestpayment",
        "versions",
        "versioning",
        "versionid",
        "uploads",
        "uploadid",
        "partnumber",
        "website",
        "notification",
        "dispolicy",
        "lifecycle",
        "deletebucket",
        "delete",
        "cors",
        "restore",
        "tagging",
        "replication",
        "metadata",
        "encryption",
        "publicaccessblock",
        "bucketstatus",
        "policystatus",
        "inventory",
        "obscompresspolicy",
        "object-lock",
        "retention",
        "directcoldaccess",
        "append",
        "position",
        "truncate",
        "modify",
        "rename",
        "length",
        "name",
        "fileinterface",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "x-image-save-bucket",
        "x-image-save-object",
        "x-image-process",
        "x-oss-process",
    ];
    let lower = name.to_ascii_lowercase();
    NAMES.contains(&lower.as_str()) || lower.starts_with("x-obs-")
}

/// `CanonicalizedAmzHeaders` of AWS's SigV2.
pub fn canonical_amz_headers(req: &RequestHeader) -> String {
    canonical_headers(&req.headers, &AWS)
}

/// The dialect's signed headers (`x-amz-*` or `x-obs-*`), lower-case, sorted, repeated values
/// joined with commas, folded whitespace unfolded, each as `name:value\n`.
pub fn canonical_headers(headers: &http::HeaderMap, dialect: &V2Dialect) -> String {
    let mut names: Vec<&str> = headers
        .keys()
        .map(|n| n.as_str())
        .filter(|n| n.starts_with(dialect.header_prefix))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::new();
    for name in names {
        out.push_str(name);
        out.push(':');
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| {
                let v = String::from_utf8_lossy(v.as_bytes());
                v.split(['\r', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// `CanonicalizedResource`: `/bucket` for virtual-host requests, the raw path as sent, then the
/// signed sub-resources sorted, with decoded values.
pub fn canonical_resource(target: &Target, raw_path: &[u8], query: &Query) -> String {
    canonical_resource_in(target, raw_path, query, &AWS)
}

/// A signed sub-resource whose decoded value holds `&` and another sub-resource's name after
/// it: its canonical resource reads as more sub-resources than the request has
/// (`response-content-type=a%26versionId%3Dv` signs as `response-content-type=a&versionId=v`),
/// so one signature would fit two requests. (A file name holding `&` is no such value.)
pub fn ambiguous_subresource(query: &Query) -> Option<&str> {
    let hides_one = |v: &str| {
        v.split('&')
            .skip(1)
            .any(|piece| (AWS.subresource)(piece.split('=').next().unwrap_or_default()))
    };
    query
        .pairs()
        .find(|(n, v)| (AWS.subresource)(n) && hides_one(v))
        .map(|(n, _)| n)
}

/// [`canonical_resource`] with the dialect's sub-resources.
pub fn canonical_resource_in(
    target: &Target,
    raw_path: &[u8],
    query: &Query,
    dialect: &V2Dialect,
) -> String {
    let mut out = String::new();
    if target.virtual_host {
        out.push('/');
        out.push_str(target.bucket.as_deref().unwrap_or_default());
    }
    out.push_str(&String::from_utf8_lossy(raw_path));
    let mut subs: Vec<(&str, &str)> = query
        .pairs()
        .filter(|(n, _)| (dialect.subresource)(n))
        .collect();
    subs.sort();
    for (i, (name, value)) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        if !value.is_empty() {
            out.push('=');
            out.push_str(value);
        }
    }
    out
}

/// The resources a client may have signed: as sent, and for a bucket addressed path style
/// without a trailing slash also with it (AWS derives `/bucket/` + key; botocore signs that).
pub fn resource_variants(target: &Target, raw_path: &[u8], query: &Query) -> Vec<String> {
    let resource = canonical_resource(target, raw_path, query);
    let mut variants = vec![resource];
    if !target.virtual_host
        && target.bucket.is_some()
        && target.raw_key.is_none()
        && !raw_path.ends_with(b"/")
    {
        let mut with_slash = raw_path.to_vec();
        with_slash.push(b'/');
        variants.push(canonical_resource(target, &with_slash, query));
    }
    variants
}

pub fn string_to_sign(req: &RequestHeader, date_line: &str, resource: &str) -> String {
    string_to_sign_in(&req.method, &req.headers, date_line, resource, &AWS)
}

/// [`string_to_sign`] with the dialect's signed headers.
pub fn string_to_sign_in(
    method: &http::Method,
    headers: &http::HeaderMap,
    date_line: &str,
    resource: &str,
    dialect: &V2Dialect,
) -> String {
    let header = |name: http::header::HeaderName| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "{}\n{}\n{}\n{}\n{}{}",
        method.as_str(),
        header(http::header::HeaderName::from_static("content-md5")),
        header(http::header::CONTENT_TYPE),
        date_line,
        canonical_headers(headers, dialect),
        resource
    )
}

pub fn sign(secret: &str, string_to_sign: &str) -> [u8; 20] {
    let mut mac =
        <Hmac<Sha1> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(string_to_sign.as_bytes());
    mac.finalize().into_bytes().into()
}

pub fn matches(secret: &str, string_to_sign: &str, given: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    let expected = sign(secret, string_to_sign);
    given.len() == expected.len() && bool::from(given.ct_eq(&expected))
}

//! Response normalisation: every backend answer leaves the gateway in HCP's shape — HCP's code
//! and status, HCP's error body, HCP's fixed security headers, bucket names without the tenant's
//! prefix, and nothing that identifies the backend.

use std::borrow::Cow;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

use serde::Deserialize;

use crate::config::HostId;
use crate::hcp::errors::{HcpCode, HcpError};
use crate::hcp::mapping::{self, Dialect};
use crate::request::classify::Operation;
use crate::request::route::Route;
use crate::request::RequestId;

/// HCP's fixed security headers (seed 002; `X-Frame-Options` value from HCP 9.2.3).
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self' 'unsafe-eval' 'unsafe-inline'; connect-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'self'; frame-ancestors 'self';",
    ),
    ("Pragma", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-DNS-Prefetch-Control", "off"),
    ("X-Download-Options", "noopen"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-XSS-Protection", "1; mode=block"),
];
/// HCP's `Strict-Transport-Security` on every answer over HTTPS (the manual's HTTPS examples;
/// seed 002's table lists the headers of every answer, this one is HTTPS's).
pub const HSTS: &str = "max-age=31536000; includeSubDomains";
/// HCP names itself on every answer: "always HCP followed by the HCP version number (for
/// example, HCP V9.0.0.2)" (the manual's response headers; the 9.x release it documents).
const SERVER: (&str, &str) = ("Server", "HCP V9.0.0.2");
/// Sent only on successful answers: seed 002 leaves them off error responses.
const SUCCESS_ONLY_HEADERS: &[(&str, &str)] = &[
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
];

/// How a backend header that passes ([`passing`]) is written to the client: S3's fixed names by
/// a name of the gateway's own, as pingora would write them (the names it title-cases
/// title-cased, the rest as they are: `passing_names_are_written_as_pingora_writes_them`) — no
/// copy of the name per answer; the names of user metadata and checksums as the backend's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passing {
    Named(&'static str),
    AsIs,
}

/// Whether a backend response header reaches the client (`None`: it stays behind), and how.
/// S3's object and transfer headers pass; everything else — its own CORS decision and the
/// `Vary` that goes with it (the gateway's are `request::cors`), server names, the backend's
/// request ids, its region, KMS key ids (which name the backend account), cookies and headers of
/// proxies in front of it, `Location` (which would show the tenant's bucket prefix), and the
/// headers of features HCP does not offer (a lifecycle rule's `x-amz-expiration`, which names
/// the operator's rule; `x-amz-restore`, `x-amz-tagging-count`,
/// `x-amz-website-redirect-location`) — stays behind.
fn passing(name: &str) -> Option<Passing> {
    let wire = match name {
        "content-type" => "Content-Type",
        "content-length" => "Content-Length",
        "content-range" => "content-range",
        "content-encoding" => "Content-Encoding",
        "content-language" => "content-language",
        "content-disposition" => "content-disposition",
        "etag" => "etag",
        "last-modified" => "last-modified",
        "accept-ranges" => "Accept-Ranges",
        "x-amz-version-id" => "x-amz-version-id",
        "x-amz-delete-marker" => "x-amz-delete-marker",
        "x-amz-copy-source-version-id" => "x-amz-copy-source-version-id",
        "x-amz-storage-class" => "x-amz-storage-class",
        "x-amz-mp-parts-count" => "x-amz-mp-parts-count",
        // (An upload's automatic abort, on initiate and ListParts; not `x-amz-abort-rule-id`,
        // the backend's lifecycle rule's name.)
        "x-amz-abort-date" => "x-amz-abort-date",
        "x-amz-missing-meta" => "x-amz-missing-meta",
        // (Not `x-amz-server-side-encryption`: HCP answers it only to a write that asked,
        // `answer_encryption`.)
        "x-amz-server-side-encryption-customer-algorithm" => {
            "x-amz-server-side-encryption-customer-algorithm"
        }
        "x-amz-server-side-encryption-customer-key-md5" => {
            "x-amz-server-side-encryption-customer-key-md5"
        }
        "x-amz-object-lock-mode" => "x-amz-object-lock-mode",
        "x-amz-object-lock-retain-until-date" => "x-amz-object-lock-retain-until-date",
        "x-amz-object-lock-legal-hold" => "x-amz-object-lock-legal-hold",
        _ => {
            let as_is = (name.starts_with("x-amz-meta-")
                && !crate::request::object_owners::reserved(name))
                || name.starts_with("x-amz-checksum-");
            return as_is.then_some(Passing::AsIs);
        }
    };
    Some(Passing::Named(wire))
}

/// A version id S3 answers for an object stored while versioning was not enabled (`null`):
/// HCP returns version ids "only while versioning is enabled for the bucket".
fn unversioned(name: &str, value: &http::HeaderValue) -> bool {
    matches!(name, "x-amz-version-id" | "x-amz-copy-source-version-id")
        && value.as_bytes() == b"null"
}

/// How OBS's `x-obs-{rest}` is written to the client, if it passes as S3's `x-amz-{rest}`:
/// S3's fixed names by the gateway's own, the rest (user metadata) under a name made once — and
/// only for an object header, not for each of OBS's own (`x-obs-request-id`, `x-obs-id-2`).
fn obs_passing(rest: &str, value: &http::HeaderValue) -> Option<Cow<'static, str>> {
    if !obs_object_header(rest) {
        return None;
    }
    let mut name = String::with_capacity("x-amz-".len() + rest.len());
    name.push_str("x-amz-");
    name.push_str(rest);
    if unversioned(&name, value) {
        return None;
    }
    match passing(&name)? {
        Passing::Named(wire) => Some(Cow::Borrowed(wire)),
        Passing::AsIs => Some(Cow::Owned(name)),
    }
}

/// `x-obs-*` response headers that are S3's `x-amz-*` object headers under OBS's prefix.
fn obs_object_header(rest: &str) -> bool {
    rest.starts_with("meta-")
        || rest.starts_with("server-side-encryption")
        || matches!(
            rest,
            "version-id"
                | "delete-marker"
                | "copy-source-version-id"
                | "storage-class"
                | "object-lock-mode"
                | "object-lock-retain-until-date"
                | "object-lock-legal-hold"
        )
}

/// A bucket's answer names no storage class: OBS answers a HEAD of a bucket with the bucket's
/// default class (`x-obs-storage-class`, passed as S3's object header) — the backend's
/// configuration, where HCP's HEAD of a bucket names only its date and length.
pub fn bucket_answer(target: &crate::request::address::Target, resp: &mut ResponseHeader) {
    if target.raw_key.is_none() {
        resp.remove_header("x-amz-storage-class");
    }
}

/// Adds the security headers and the gateway's request id.
pub fn finish_headers(
    resp: &mut ResponseHeader,
    is_error: bool,
    request_id: &RequestId,
    host_id: &HostId,
) {
    fixed_headers(resp, is_error);
    finish_ids(resp, request_id, host_id);
}

/// A response header that starts with what [`finish_headers`] adds of its fixed headers and
/// the host id (cloned from one built once per thread and host id: its names and values are
/// shared, not parsed and copied per answer), for `status`; [`finish_request_id`] completes it.
fn answer_header(status: u16, is_error: bool, host_id: &HostId) -> ResponseHeader {
    thread_local! {
        static ANSWERS: std::cell::RefCell<Option<(String, [ResponseHeader; 2])>> =
            const { std::cell::RefCell::new(None) };
    }
    ANSWERS.with_borrow_mut(|kept| {
        let made = match kept {
            Some((id, made)) if id.as_str() == &**host_id => made,
            _ => {
                let made = [false, true].map(|is_error| {
                    let mut resp = ResponseHeader::build(200, Some(16)).expect("status");
                    fixed_headers(&mut resp, is_error);
                    finish_host_id(&mut resp, host_id);
                    resp
                });
                &mut kept.insert((host_id.to_string(), made)).1
            }
        };
        let mut resp = made[usize::from(is_error)].clone();
        resp.set_status(status).expect("valid status");
        resp
    })
}

/// HCP's security headers, and on a success its cache headers.
fn fixed_headers(resp: &mut ResponseHeader, is_error: bool) {
    for (n, v) in SECURITY_HEADERS.iter().chain([&SERVER]) {
        resp.insert_header(*n, *v).expect("static header");
    }
    if is_error {
        resp.remove_header("cache-control");
        resp.remove_header("expires");
    } else {
        for (n, v) in SUCCESS_ONLY_HEADERS {
            resp.insert_header(*n, *v).expect("static header");
        }
    }
}

/// The gateway's request id and its host id. (`Date` is pingora's: its session writes one on
/// every answer, formatted once a second per thread — a value given here would be replaced.)
fn finish_ids(resp: &mut ResponseHeader, request_id: &RequestId, host_id: &HostId) {
    finish_request_id(resp, request_id);
    finish_host_id(resp, host_id);
}

fn finish_request_id(resp: &mut ResponseHeader, request_id: &RequestId) {
    resp.insert_header("x-amz-request-id", request_id.header())
        .expect("request id is ASCII");
}

fn finish_host_id(resp: &mut ResponseHeader, host_id: &HostId) {
    resp.insert_header("x-amz-id-2", host_id.header())
        .expect("host id is a header value");
}

/// The media type of every XML document HCP answers ("always `application/xml;charset=UTF-8`").
pub const XML_DOCUMENT: &str = "application/xml;charset=UTF-8";

/// An XML document's answer names HCP's media type for it, whatever XML type the backend
/// named (`application/xml`, `text/xml`, with or without a charset), or where it named none.
pub fn xml_document_type(resp: &mut ResponseHeader) {
    let starts = |v: &[u8], with: &[u8]| {
        v.get(..with.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(with))
    };
    let xml = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_none_or(|v| {
            starts(v.as_bytes(), b"application/xml") || starts(v.as_bytes(), b"text/xml")
        });
    if xml {
        resp.insert_header(http::header::CONTENT_TYPE, XML_DOCUMENT)
            .expect("static");
    }
}

/// The response header for an HCP error document of `len` bytes.
pub fn error_header(
    err: &HcpError,
    len: usize,
    request_id: &RequestId,
    host_id: &HostId,
) -> ResponseHeader {
    let mut resp = answer_header(err.status, true, host_id);
    resp.insert_header(http::header::CONTENT_TYPE, XML_DOCUMENT)
        .expect("static");
    resp.insert_header(http::header::CONTENT_LENGTH, len.to_string())
        .expect("length");
    if err.status == 503 {
        // HCP asks clients to back off and retry; say when.
        resp.insert_header(http::header::RETRY_AFTER, "1")
            .expect("static");
    }
    finish_request_id(&mut resp, request_id);
    resp
}

/// Copies a successful backend response header: the headers that describe the object or the
/// transfer, nothing that identifies the backend.
pub fn success_header(
    upstream: &ResponseHeader,
    request_id: &RequestId,
    host_id: &HostId,
) -> ResponseHeader {
    success_header_noting(upstream, request_id, host_id).0
}

/// The headers that name an object version (S3's `null` never passes).
const VERSION_HEADERS: [&str; 3] = [
    "x-amz-version-id",
    "x-amz-delete-marker",
    "x-amz-copy-source-version-id",
];

/// What [`success_header_noting`] passed, noted as the headers are copied: no lookup of the
/// answer's names afterwards.
#[derive(Debug, Clone, Copy, Default)]
pub struct Passed {
    /// A header that names an object version.
    pub version: bool,
    /// A checksum (`x-amz-checksum-*`): [`answer_checksums`] keeps it only where asked.
    pub checksum: bool,
}

/// [`success_header`], and what it passed ([`Passed`]).
pub fn success_header_noting(
    upstream: &ResponseHeader,
    request_id: &RequestId,
    host_id: &HostId,
) -> (ResponseHeader, Passed) {
    let mut passed = Passed::default();
    // (HCP answers a success 200, 204 or 206: a backend's 201, 202 or 203 — Ceph RGW's
    // `rgw_s3_success_create_obj_status` — is HCP's 200.)
    let status = match upstream.status.as_u16() {
        201..=203 => 200,
        status => status,
    };
    let mut resp = answer_header(status, false, host_id);
    for (name, value) in upstream.headers.iter() {
        if let Some(rest) = name.as_str().strip_prefix("x-obs-") {
            // OBS's own names for S3's object headers (its native dialect); its other headers
            // (its request ids, its server) stay behind.
            match obs_passing(rest, value) {
                Some(Cow::Borrowed(wire)) => {
                    passed.version |= VERSION_HEADERS.contains(&wire);
                    resp.append_header(wire, value.clone())
                }
                Some(Cow::Owned(wire)) => {
                    passed.checksum |= wire.starts_with("x-amz-checksum-");
                    resp.append_header(wire, value.clone())
                }
                None => continue,
            }
            .expect("copied header");
        } else if !unversioned(name.as_str(), value) {
            match passing(name.as_str()) {
                // One length, once: a backend's repeated field, or its list of the same length
                // (`5, 5`, which framed the body), is no header to pass on (RFC 9110 §8.6;
                // Node's parser refuses either).
                Some(Passing::Named(wire)) if name == http::header::CONTENT_LENGTH => {
                    let one = match value.as_bytes().iter().position(|b| *b == b',') {
                        Some(at) => {
                            http::HeaderValue::from_bytes(value.as_bytes()[..at].trim_ascii())
                                .unwrap_or_else(|_| value.clone())
                        }
                        None => value.clone(),
                    };
                    resp.insert_header(wire, one).map(|()| true)
                }
                Some(Passing::Named(wire)) => {
                    passed.version |= VERSION_HEADERS.contains(&wire);
                    resp.append_header(wire, value.clone())
                }
                Some(Passing::AsIs) => {
                    passed.checksum |= name.as_str().starts_with("x-amz-checksum-");
                    resp.append_header(name.clone(), value.clone())
                }
                None => continue,
            }
            .expect("copied header");
        }
    }
    // (The backend's request id, which can name the backend and its zone, goes to the access
    // log only.)
    finish_request_id(&mut resp, request_id);
    (resp, passed)
}

/// A backend's checksums (`x-amz-checksum-*`) reach only a client that asked for them — that
/// sent one, named an algorithm or a trailer, or asked a read for them (`x-amz-checksum-mode`):
/// not the checksum a backend adds of its own accord (AWS's CRC64NVME on every write), nor the
/// one of the gateway's own trailer (`forward`'s CRC32 where retention is kept), which HCP
/// never answers.
#[inline]
pub fn answer_checksums(
    passed: Passed,
    req: &pingora::http::RequestHeader,
    resp: &mut ResponseHeader,
) {
    if passed.checksum {
        unasked_checksums_dropped(req, resp);
    }
}

/// [`answer_checksums`] of an answer that passed one.
fn unasked_checksums_dropped(req: &pingora::http::RequestHeader, resp: &mut ResponseHeader) {
    let asked = req.headers.keys().any(|n| {
        let n = n.as_str();
        n.starts_with("x-amz-checksum-")
            || n == "x-amz-sdk-checksum-algorithm"
            || n == "x-amz-trailer"
    });
    if asked {
        return;
    }
    let names: Vec<http::HeaderName> = resp
        .headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-amz-checksum-"))
        .cloned()
        .collect();
    for name in names {
        resp.remove_header(&name);
    }
}

/// A GET's `response-cache-control` and `response-expires` (HCP's overrides of its own cache
/// headers, manual "Overriding response headers"): the values asked, in place of HCP's fixed
/// ones. (The other four overrides are the backend's to answer, and pass as its headers do.)
/// Where the overrides came as request headers, the answer varies with them (`Vary`), so that
/// no shared cache serves one client's overrides to another.
pub fn answer_overrides(
    (op, params): (Operation, &crate::request::classify::Params),
    req: &pingora::http::RequestHeader,
    resp: &mut ResponseHeader,
) {
    // (Nearly every GET asks none: the few parameters it has say so, no header lookups.)
    let asked = |n: &&str| params.get(n).is_some();
    if op != Operation::GetObject || !crate::request::classify::RESPONSE.iter().any(asked) {
        return;
    }
    let named: Vec<&str> = crate::request::classify::RESPONSE
        .into_iter()
        .filter(|n| req.headers.contains_key(*n))
        .collect();
    if !named.is_empty() {
        resp.append_header(http::header::VARY, named.join(", "))
            .expect("header names");
    }
    for (param, header) in [
        ("response-cache-control", http::header::CACHE_CONTROL),
        ("response-expires", http::header::EXPIRES),
    ] {
        if let Some(value) = params
            .get(param)
            .and_then(|v| http::HeaderValue::from_str(v).ok())
        {
            resp.insert_header(header, value).expect("a header value");
        }
    }
}

/// HCP's `Location` for a bucket created or its versioning changed: `/` and the bucket's name
/// as the client gave it (the backend's own, which holds the tenant's prefix, stays behind:
/// [`passing`]).
pub fn created_bucket_location(op: Operation, bucket: Option<&str>, resp: &mut ResponseHeader) {
    // (HCP names the bucket a versioning change was made to as well: "Location: Specifies the
    // name of the target bucket".)
    let names = matches!(op, Operation::CreateBucket | Operation::PutBucketVersioning);
    if let (true, Some(bucket)) = (names, bucket) {
        // (A bucket name is letters, digits, '-' and '.': always a header value.)
        if let Ok(value) = http::HeaderValue::from_str(&format!("/{bucket}")) {
            resp.insert_header(http::header::LOCATION, value)
                .expect("valid header");
        }
    }
}

/// Whether a write asks HCP's encryption question (manual, PUT, copy, multipart: "The value
/// of the `x-amz-server-side-encryption` request header can be any character string"; a
/// form upload asks it with a form field, `post_object`).
pub fn asks_encryption(op: Operation, req: &pingora::http::RequestHeader) -> bool {
    matches!(
        op,
        Operation::PutObject
            | Operation::CopyObject
            | Operation::CreateMultipartUpload
            | Operation::UploadPart
            | Operation::UploadPartCopy
            | Operation::CompleteMultipartUpload
    ) && req.headers.contains_key("x-amz-server-side-encryption")
}

/// HCP's answer to the question, from the backend's answer: `AES256` where the backend says it
/// keeps the data encrypted (S3's server-side encryption, or a customer's key), `None` where
/// it does not.
pub fn encryption_of(upstream: &ResponseHeader) -> &'static str {
    // (OBS's native dialect names them x-obs-.)
    let server_side = [
        "x-amz-server-side-encryption",
        "x-obs-server-side-encryption",
    ]
    .iter()
    .filter_map(|name| upstream.headers.get(*name))
    .any(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"none"));
    let customer_key = [
        "x-amz-server-side-encryption-customer-algorithm",
        "x-obs-server-side-encryption-customer-algorithm",
    ]
    .iter()
    .any(|name| upstream.headers.contains_key(*name));
    if server_side || customer_key {
        "AES256"
    } else {
        "None"
    }
}

/// The answer's `x-amz-server-side-encryption`, where the request asked ([`asks_encryption`]):
/// HCP's answer. Unasked there is none, on every operation ([`success_header`] passes none on):
/// HCP returns it "only if the request headers include" it, and the backend's own — such as
/// S3's AES256 on every GET — would say which encryption the backend uses.
pub fn answer_encryption(asked: bool, upstream: &ResponseHeader, resp: &mut ResponseHeader) {
    if asked {
        resp.insert_header("x-amz-server-side-encryption", encryption_of(upstream))
            .expect("static");
    }
}

/// A backend's Object Lock header `name` (S3's `x-amz-object-lock-*`, or OBS's `x-obs-…`).
fn lock_header<'h>(upstream: &'h ResponseHeader, name: &str) -> Option<&'h http::HeaderValue> {
    let obs = name.replacen("x-amz-", "x-obs-", 1);
    upstream
        .headers
        .get(name)
        .or_else(|| upstream.headers.get(obs.as_str()))
}

/// An object's retention setting and hold, read from the backend's Object Lock headers (S3's
/// `x-amz-object-lock-*`, OBS's `x-obs-object-lock-*`).
pub fn object_lock_of(upstream: &ResponseHeader) -> (crate::hcp::retention::Setting, bool) {
    let until = lock_until(upstream).flatten();
    let held = lock_header(upstream, "x-amz-object-lock-legal-hold")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| h.trim() == "ON");
    (crate::hcp::retention::setting_of(until), held)
}

/// A backend's retain-until date (seconds): `None` where it names none, `Some(None)` where
/// it names one that is no RFC 3339 date.
fn lock_until(upstream: &ResponseHeader) -> Option<Option<i64>> {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let date = lock_header(upstream, "x-amz-object-lock-retain-until-date")?;
    Some(date.to_str().ok().and_then(|d| {
        time::OffsetDateTime::parse(d.trim(), rfc3339)
            .ok()
            .map(time::OffsetDateTime::unix_timestamp)
    }))
}

/// An object's retention as its Object Lock headers give it: the mode and the retain-until
/// date as the backend wrote them, and the date in seconds; `None` without both, or with a
/// date that is no RFC 3339 date.
pub fn object_lock_retention(upstream: &ResponseHeader) -> Option<(&str, &str, i64)> {
    let text = |name| {
        lock_header(upstream, name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let mode = text("x-amz-object-lock-mode")?;
    let date = text("x-amz-object-lock-retain-until-date")?;
    Some((mode, date, lock_until(upstream).flatten()?))
}

/// Whether a backend's Object Lock headers say something the gateway cannot read: a
/// retain-until date that is no RFC 3339 date, a legal hold neither ON nor OFF. (Read as no
/// lock, either would let a write or a delete past a lock the backend keeps.)
pub fn object_lock_unreadable(upstream: &ResponseHeader) -> bool {
    let date = matches!(lock_until(upstream), Some(None));
    let hold = lock_header(upstream, "x-amz-object-lock-legal-hold")
        .is_some_and(|h| !matches!(h.to_str().map(str::trim), Ok("ON" | "OFF")));
    date || hold
}

/// An object's holds as a GET or HEAD answers them, and whether its reader sees the labels.
#[derive(Debug)]
pub struct HoldsSeen {
    pub holds: crate::hcp::labels::Holds,
    pub show_labels: bool,
}

/// HCP's retention answer for a GET or HEAD in a namespace that keeps retention: the setting
/// as HCP writes it (`x-hcp-retention`: `0`, `-1`, `-2` or seconds since 1970), the unlabeled
/// hold (`x-hcp-retentionhold`), whether a label holds it (`x-hcp-labelretentionhold`) and,
/// for a privileged reader, which (`x-hcp-labelretentionhold-labels`).
pub fn add_hcp_retention(upstream: &ResponseHeader, seen: &HoldsSeen, resp: &mut ResponseHeader) {
    let (setting, _) = object_lock_of(upstream);
    let flag = |on: bool| if on { "true" } else { "false" };
    resp.insert_header("x-hcp-retention", crate::hcp::retention::answer(setting))
        .expect("digits");
    resp.insert_header("x-hcp-retentionhold", flag(seen.holds.hold))
        .expect("static");
    // S3's legal hold, where the backend named it, is HCP's unlabeled hold: where labeled
    // holds are kept, the backend's is on while a label holds too.
    if resp.headers.contains_key("x-amz-object-lock-legal-hold") {
        let s3 = if seen.holds.hold { "ON" } else { "OFF" };
        resp.insert_header("x-amz-object-lock-legal-hold", s3)
            .expect("static");
    }
    let labelled = !seen.holds.labels.is_empty();
    resp.insert_header("x-hcp-labelretentionhold", flag(labelled))
        .expect("static");
    if labelled && seen.show_labels {
        let labels = crate::hcp::labels::answer(&seen.holds.labels);
        // (Labels are checked free of control characters when placed.)
        if let Ok(value) = http::HeaderValue::from_bytes(labels.as_bytes()) {
            resp.insert_header("x-hcp-labelretentionhold-labels", value)
                .expect("valid header");
        }
    }
}

/// Drops a leading XML declaration: after keep-alive whitespace a declaration would make the
/// document ill-formed, while whitespace before the root element is allowed.
pub fn without_declaration(doc: Bytes) -> Bytes {
    let start = doc
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    if doc[start..].starts_with(b"<?xml") {
        if let Some(end) = doc[start..].windows(2).position(|w| w == b"?>") {
            return doc.slice(start + end + 2..);
        }
    }
    doc
}

/// Whether an XML document has an element of this name anywhere.
pub fn has_element(body: &[u8], name: &[u8]) -> bool {
    let mut reader = Reader::from_reader(body);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == name => return true,
            Ok(Event::Eof) | Err(_) => return false,
            _ => {}
        }
    }
}

/// What the preconditions of a GET or HEAD say about a successful backend answer
/// (RFC 9110 §13.2.2 order). Backends evaluate them too; this holds the answer to HCP's statuses
/// where one does not (the embedded s3s-fs ignores them).
#[derive(Debug, PartialEq, Eq)]
pub enum Precondition {
    Holds,
    /// 412 PreconditionFailed.
    Failed,
    /// 304 Not Modified: HCP pairs it with PreconditionFailed and sends no body.
    NotModified,
}

pub fn precondition(req: &pingora::http::RequestHeader, upstream: &ResponseHeader) -> Precondition {
    precondition_with(req, "", upstream)
}

/// The same evaluation for headers named with a prefix: `x-amz-copy-source-` for the source of a
/// copy, whose every failed condition is 412 (seed 000).
/// The value of header `prefix` + `name` (the name composed on the stack: the longest asked
/// is the copy source's `x-amz-copy-source-if-unmodified-since`).
fn prefixed_header<'r>(
    req: &'r pingora::http::RequestHeader,
    prefix: &str,
    name: &str,
) -> Option<&'r str> {
    let mut buf = [0u8; 64];
    let slot = buf.get_mut(..prefix.len() + name.len())?;
    slot[..prefix.len()].copy_from_slice(prefix.as_bytes());
    slot[prefix.len()..].copy_from_slice(name.as_bytes());
    let full = std::str::from_utf8(slot).ok()?;
    // (A value that is no text — bytes past ASCII — is a condition all the same: one no ETag
    // matches and no date reads, never one not given.)
    req.headers
        .get(full)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

pub fn precondition_with(
    req: &pingora::http::RequestHeader,
    prefix: &str,
    upstream: &ResponseHeader,
) -> Precondition {
    // Most requests carry no condition: one pass over their header names says so.
    let conditional = req.headers.keys().any(|n| {
        n.as_str()
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with("if-"))
    });
    if !conditional {
        return Precondition::Holds;
    }
    let get = |n: &str| prefixed_header(req, prefix, n);
    let etag = upstream
        .headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let last_modified = upstream
        .headers
        .get(http::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let matches = |list: &str| crate::etag::listed(list, etag);
    let date = |h: &str| get(h).and_then(crate::request::validate::condition_date);
    // HCP: the object is returned only if it "meets all the conditions", the ETag conditions
    // processed before the dates — not HTTP's rule, which ignores a date beside its ETag
    // condition (If-Unmodified-Since beside If-Match, If-Modified-Since beside If-None-Match).
    if let Some(list) = get("if-match") {
        if !matches(list) {
            return Precondition::Failed;
        }
    }
    if let Some(list) = get("if-none-match") {
        // (HCP: no ETag matches `*` in an If-None-Match header.)
        let listed = list
            .split(',')
            .any(|t| t.trim() != "*" && crate::etag::listed(t, etag));
        if listed {
            return Precondition::NotModified;
        }
    }
    if let (Some(since), Some(modified)) = (date("if-unmodified-since"), last_modified) {
        if modified > since {
            return Precondition::Failed;
        }
    }
    if let (Some(since), Some(modified)) = (date("if-modified-since"), last_modified) {
        if modified <= since {
            return Precondition::NotModified;
        }
    }
    Precondition::Holds
}

/// Whether a backend's answer says its object is a delete marker (S3's `x-amz-delete-marker`,
/// OBS's `x-obs-delete-marker`).
pub fn is_delete_marker(upstream: &ResponseHeader) -> bool {
    ["x-amz-delete-marker", "x-obs-delete-marker"]
        .iter()
        .any(|h| {
            upstream
                .headers
                .get(*h)
                .is_some_and(|v| v.as_bytes() == b"true")
        })
}

/// Whether a backend status is an error the gateway must translate (304 is an answer, not an error).
pub fn is_error_status(status: u16) -> bool {
    status >= 400 || (300..400).contains(&status) && status != 304
}

/// What the backend said in its error document.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BackendError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
    /// The argument an `InvalidArgument` names (AWS's `ArgumentName`).
    pub argument: Option<String>,
    /// A body was sent but held no error code.
    pub unparsable: bool,
}

impl BackendError {
    /// Whether the backend refused the request's version id as one it could never have
    /// given (AWS and MinIO check its form: `InvalidArgument`, "Invalid version id
    /// specified", AWS naming the argument `versionId`), which HCP answers as a version that
    /// does not exist.
    pub fn names_invalid_version(&self) -> bool {
        self.code.as_deref() == Some("InvalidArgument")
            && (self.argument.as_deref() == Some("versionId")
                || self
                    .message
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case("Invalid version id specified")))
    }
}

#[derive(Deserialize)]
struct JsonError {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

/// Reads a backend's error answer: an S3 `<Error>` document, OBS's JSON form, or — for HEAD
/// and other bodiless answers — the code MinIO and OBS carry in headers.
pub fn read_backend_error(headers: &ResponseHeader, body: &[u8]) -> BackendError {
    let header = |name: &str| {
        headers
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_string())
    };
    let header_code = header("x-minio-error-code").or_else(|| header("x-obs-error-code"));
    if body.iter().all(u8::is_ascii_whitespace) {
        return BackendError {
            code: header_code,
            message: header("x-minio-error-desc").or_else(|| header("x-obs-error-message")),
            request_id: None,
            argument: None,
            unparsable: false,
        };
    }
    let json = headers
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes()
                .windows(4)
                .any(|w| w.eq_ignore_ascii_case(b"json"))
        });
    let mut parsed = if json {
        match serde_json::from_slice::<JsonError>(body) {
            Ok(j) => BackendError {
                code: j.code,
                message: j.message,
                request_id: j.request_id,
                argument: None,
                unparsable: false,
            },
            Err(_) => BackendError::default(),
        }
    } else {
        parse_backend_error(body)
    };
    // OBS's SDKs let header values override the body's.
    if let Some(c) = header_code {
        parsed.code = Some(c);
    }
    parsed.unparsable = parsed.code.is_none();
    parsed
}

/// Reads `Code`, `Message`, `RequestId` and `ArgumentName` from an S3-style `<Error>` document.
pub fn parse_backend_error(body: &[u8]) -> BackendError {
    let mut reader = Reader::from_reader(body);
    let mut out = BackendError::default();
    let mut current: Option<Vec<u8>> = None;
    let mut text = String::new();
    let mut depth = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                current = (depth == 2).then(|| e.local_name().as_ref().to_vec());
                text.clear();
            }
            Ok(Event::Text(t)) if current.is_some() => {
                text.push_str(&t.decode().unwrap_or_default());
            }
            Ok(Event::GeneralRef(r)) if current.is_some() => {
                crate::hcp::xml::push_reference(&mut text, &r);
            }
            Ok(Event::End(_)) => {
                if let Some(name) = current.take() {
                    let value = std::mem::take(&mut text);
                    match name.as_slice() {
                        b"Code" => out.code = Some(value),
                        b"Message" => out.message = Some(value),
                        b"RequestId" => out.request_id = Some(value),
                        b"ArgumentName" => out.argument = Some(value),
                        _ => {}
                    }
                }
                depth -= 1;
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

/// A backend's failure that says nothing HCP can understand (no body, or one it cannot read):
/// the backend's fault, never the client's; an overloaded one (or a proxy's page before it) is
/// one to retry.
pub fn bodiless_failure(status: u16) -> HcpError {
    match status {
        429 | 503 | 504 => HcpError::new(HcpCode::ServiceUnavailable),
        _ => HcpError::new(HcpCode::InternalError),
    }
}

/// The HCP error for a backend error answer, with `BucketName`/`Key` filled in where HCP
/// renders them.
pub fn map_backend_error(
    dialect: Dialect,
    status: u16,
    backend: &BackendError,
    op: Operation,
    client_bucket: Option<&str>,
    client_key: Option<&str>,
) -> HcpError {
    let err = if backend.unparsable {
        bodiless_failure(status)
    } else {
        mapping::map(dialect, status, backend.code.as_deref(), op)
    };
    match (err.code, client_bucket, client_key) {
        (HcpCode::NoSuchBucket, Some(bucket), _) => err.with_bucket(bucket),
        (HcpCode::NoSuchKey, _, Some(key)) => err.with_key(key),
        _ => err,
    }
}

/// What a control answer's document learns from the request.
#[derive(Clone, Copy)]
pub struct Rewrites<'a> {
    /// The object's URL as the client addressed it.
    pub location: &'a str,
    /// The client's form of a backend upload id (`uploads` module), where it differs.
    pub upload_id: &'a dyn Fn(&str) -> Option<String>,
    /// ListMultipartUploads: the client's own `upload-id-marker`, which the answer's
    /// `UploadIdMarker` echoes (never the backend's echo of it, sealed: a marker that named no
    /// upload would come back as an id the gateway issued).
    pub upload_id_marker: Option<&'a str>,
    /// The user who initiated a backend upload, where it is known and owners are kept
    /// (ListMultipartUploads names it as the upload's initiator and owner).
    pub initiator: &'a dyn Fn(&str) -> Option<crate::request::owners::Owner>,
    /// `x-hcp-pretty-print: true`.
    pub pretty: bool,
    /// Where the namespace keeps owners: who is named in place of the backend account, and
    /// for `GET /` which buckets are the caller's (`request::owners`).
    pub owners: Option<&'a crate::request::owners::Shown>,
    /// An ACL's grants to users the gateway keeps, shown after the backend's own grants.
    pub grants: &'a [crate::request::acls::UserGrant],
    /// A listing's objects' own owners, by entry (`<Contents>`, `<Version>`) in the
    /// document's order (`request::object_owners`); an entry without one names `owners`'.
    pub entry_owners: &'a [Option<crate::request::owners::Owner>],
    /// A multi-object delete in quiet mode (`<Quiet>true</Quiet>`): its answer names only the
    /// objects not deleted, whatever the backend lists (moto lists every `<Deleted>`).
    pub quiet: bool,
    /// The operation's parameters as the client gave them (a listing's echoes; `None`: none).
    pub params: Option<&'a crate::request::classify::Params>,
}

impl Rewrites<'static> {
    /// Nothing but the prefix and root rewrites every answer gets.
    pub const NONE: Rewrites<'static> = Rewrites {
        location: "",
        upload_id: &|_| None,
        upload_id_marker: None,
        initiator: &|_| None,
        pretty: false,
        owners: None,
        grants: &[],
        entry_owners: &[],
        quiet: false,
        params: None,
    };
}

/// The grants to users the gateway keeps, written before the end of an `AccessControlList`
/// (an empty one, `<AccessControlList/>`, is written whole here: `true`).
fn user_grants_before(
    writer: &mut Writer<Vec<u8>>,
    event: &Event<'_>,
    grants: &[crate::request::acls::UserGrant],
) -> Option<bool> {
    if grants.is_empty() {
        // (Only an ACL answer has grants to add: other documents skip the look.)
        return Some(false);
    }
    let list = |name: &[u8]| name == b"AccessControlList";
    match event {
        Event::End(e) if list(e.name().as_ref()) => {
            for grant in grants {
                write_user_grant(writer, grant)?;
            }
            Some(false)
        }
        Event::Empty(e) if list(e.name().as_ref()) => {
            writer.write_event(Event::Start(e.clone())).ok()?;
            for grant in grants {
                write_user_grant(writer, grant)?;
            }
            let end = Event::End(BytesEnd::new("AccessControlList"));
            writer.write_event(end).ok()?;
            Some(true)
        }
        _ => Some(false),
    }
}

/// One grant to a user, as an `AccessControlList` shows it.
fn write_user_grant(
    writer: &mut Writer<Vec<u8>>,
    grant: &crate::request::acls::UserGrant,
) -> Option<()> {
    let grantee = BytesStart::new("Grantee").with_attributes([
        ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
        ("xsi:type", "CanonicalUser"),
    ]);
    use crate::hcp::xml::leaf;
    writer
        .write_event(Event::Start(BytesStart::new("Grant")))
        .ok()?;
    writer.write_event(Event::Start(grantee)).ok()?;
    leaf(writer, "ID", &grant.grantee.id)?;
    leaf(writer, "DisplayName", &grant.grantee.name)?;
    writer
        .write_event(Event::End(BytesEnd::new("Grantee")))
        .ok()?;
    leaf(writer, "Permission", &grant.permission)?;
    writer.write_event(Event::End(BytesEnd::new("Grant"))).ok()
}

/// The texts [`rewrite_xml`] replaces, by the element holding them and its parent.
struct Texts<'a> {
    op: Operation,
    route: &'a Route<'a>,
    location: &'a str,
    upload_id: &'a dyn Fn(&str) -> Option<String>,
    upload_id_marker: Option<&'a str>,
    params: Option<&'a crate::request::classify::Params>,
    /// The echoes ([`echoes`]) the document has written under its root, by bit.
    echoes_seen: u8,
    /// A versions' or uploads' listing that says it is whole: it names no next markers.
    whole: bool,
    initiator: &'a dyn Fn(&str) -> Option<crate::request::owners::Owner>,
    /// ListMultipartUploads: the `<Upload>` being written's initiator, once its `<UploadId>`
    /// named a known one; and whether it names an `<Initiator>`, an `<Owner>` of its own.
    upload_party: Option<crate::request::owners::Owner>,
    upload_initiator_seen: bool,
    upload_owner_seen: bool,
    /// The tenant's owner id, hashed once for the whole document.
    owner_id: Option<String>,
    owners: Option<&'a crate::request::owners::Shown>,
    entry_owners: &'a [Option<crate::request::owners::Owner>],
    /// The listing entry being written (its index among `<Contents>` and `<Version>`).
    entry: Option<usize>,
    entries_seen: usize,
    /// Whether the document names an `<Initiator>`, an `<Owner>` of its own (ListParts).
    initiator_seen: bool,
    owner_seen: bool,
    /// Whether the party's `<ID>` or `<DisplayName>` open now had text of the backend's.
    party_text: bool,
    /// The owner, initiator or grantee open has a `<DisplayName>` (AWS writes none: HCP's has
    /// one), and an `<ID>` (a grantee with one is a user: a group has its `<URI>`).
    party_named: bool,
    party_id: bool,
    /// Elements open inside a multi-object delete's per-key `<Code>` or `<Message>`
    /// (dropped).
    error_nested: usize,
    /// Elements open inside one of the backend's own in a multi-object delete's entry
    /// (`<Error>`, `<Deleted>`): dropped with all they hold.
    foreign: usize,
    /// HCP's code and message for each per-key `<Error>`, in the document's order (read
    /// before: a backend may write its `VersionId` after the `<Code>`, as MinIO does, or the
    /// `<Message>` before it), and how many have opened so far.
    errors: Vec<(HcpCode, &'static str)>,
    errors_seen: usize,
}

/// The per-key message of a version the backend's Object Lock kept.
const LOCKED_VERSION: &str = "The object version is under retention or on hold.";

/// HCP's code and message for each `<Error>` of a multi-object delete's answer, in order: the
/// backend's `<Code>` (its text, entities and CDATA; an element inside it dropped) by the
/// dialect's table, a code in none InternalError. The gateway's account may delete any version
/// but one S3 Object Lock keeps: a version refused (one the `<Error>` names a `VersionId` of)
/// is under retention or on hold, HCP's 409, as a single DELETE of it answers (`settle`) and
/// as the objects the gateway kept back. (MinIO's 400 InvalidRequest for it maps to
/// OperationAborted by its table.)
fn per_key_errors(body: &[u8], dialect: Dialect) -> Vec<(HcpCode, &'static str)> {
    let mut reader = Reader::from_reader(body);
    let mut errors = Vec::new();
    // `at_code`: the element open at depth 3 is a `<Code>` (its text is read where the depth
    // is 3, not inside an element within it).
    let (mut depth, mut at_code, mut versioned) = (0usize, false, false);
    let mut code = String::new();
    loop {
        let in_code = at_code && depth == 3;
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                // (Names compared as the rewrite compares them: `local_part`.)
                let name = e.name();
                let name = local_part(name.as_ref());
                if depth == 2 && name == b"Error" {
                    versioned = false;
                    code.clear();
                } else if depth == 3 {
                    versioned |= name == b"VersionId";
                    at_code = name == b"Code";
                }
            }
            Ok(Event::Text(t)) if in_code => code.push_str(&t.decode().unwrap_or_default()),
            Ok(Event::CData(t)) if in_code => code.push_str(&String::from_utf8_lossy(&t)),
            Ok(Event::GeneralRef(r)) if in_code => {
                crate::hcp::xml::push_reference(&mut code, &r);
            }
            Ok(Event::End(e)) => {
                if depth == 2 && local_part(e.name().as_ref()) == b"Error" {
                    errors.push(hcp_per_key_error(dialect, code.trim(), versioned));
                }
                at_code &= depth != 3;
                depth = depth.saturating_sub(1);
            }
            Ok(Event::Eof) | Err(_) => return errors,
            _ => {}
        }
    }
}

/// HCP's code and message for one per-key error ([`per_key_errors`]).
fn hcp_per_key_error(dialect: Dialect, backend: &str, versioned: bool) -> (HcpCode, &'static str) {
    let mapped = mapping::map_code(dialect, backend, Operation::DeleteObject);
    let locked = matches!(mapped, HcpCode::AccessDenied | HcpCode::OperationAborted);
    match versioned && locked {
        true => (HcpCode::OperationAborted, LOCKED_VERSION),
        false => (mapped, mapped.default_message()),
    }
}

/// Whether a versions' or uploads' listing says it is whole (so names no next markers): its
/// `<IsTruncated>` (under the root) is anything but `true`, or it has none.
fn listed_whole(op: Operation, body: &[u8]) -> bool {
    if !matches!(
        op,
        Operation::ListMultipartUploads | Operation::ListObjectVersions
    ) {
        return false;
    }
    let mut reader = Reader::from_reader(body);
    let mut depth = 0usize;
    let mut at_flag = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                at_flag = depth == 2 && e.local_name().as_ref() == b"IsTruncated";
            }
            Ok(Event::Text(t)) if at_flag => return t.trim_ascii() != b"true",
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                at_flag = false;
            }
            Ok(Event::Eof) | Err(_) => return true,
            _ => {}
        }
    }
}

/// How HCP declares a success document (its examples; an error's has no `standalone`).
pub const HCP_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>";

/// A document the gateway writes itself, as HCP writes XML: with the declaration, and indented
/// where `pretty` (`x-hcp-pretty-print: true`) asked.
pub fn own_document(doc: &[u8], pretty: bool) -> Vec<u8> {
    let mut out = match doc.starts_with(b"<?xml") {
        true => doc.to_vec(),
        false => [HCP_DECLARATION.as_bytes(), b"\n", doc].concat(),
    };
    if pretty {
        if let Some(indented) = indented(&out) {
            out = indented;
        }
    }
    out
}

/// A rewritten document indented (`x-hcp-pretty-print: true`): the whitespace between
/// elements is replaced by the writer's, an element's own text — a key of spaces, the spaces
/// around an entity (`Q1 &amp; Q2 `) — is kept as it is. (A reader that trims text would trim
/// each piece between references: keys that do not exist.)
fn indented(body: &[u8]) -> Option<Vec<u8>> {
    let mut reader = Reader::from_reader(body);
    let mut writer = Writer::new_with_indent(Vec::with_capacity(body.len() * 2), b' ', 2);
    // The text read since the last element's start or end, as the document has it (references
    // and CDATA sections in place): written when it is an element's own (its end follows),
    // dropped when it is only whitespace between elements. (Written as one text: the writer
    // would put a reference or a CDATA section on a line of its own, indented — inside
    // `<ETag>&quot;…&quot;</ETag>` too.)
    let mut pending: Vec<u8> = Vec::new();
    let mut only_space = true;
    let mut in_leaf = false;
    loop {
        let event = reader.read_event().ok()?;
        match &event {
            Event::Text(t) => {
                only_space &= t.iter().all(u8::is_ascii_whitespace);
                pending.extend_from_slice(t);
                continue;
            }
            Event::GeneralRef(r) => {
                pending.extend_from_slice(b"&");
                pending.extend_from_slice(r);
                pending.extend_from_slice(b";");
                only_space = false;
                continue;
            }
            Event::CData(c) => {
                pending.extend_from_slice(b"<![CDATA[");
                pending.extend_from_slice(c);
                pending.extend_from_slice(b"]]>");
                only_space = false;
                continue;
            }
            Event::Eof => break,
            _ => {}
        }
        let own_text = in_leaf && matches!(event, Event::End(_));
        // (An element without text stays so: `<Prefix></Prefix>`, not a line break and the
        // indentation inside it.)
        if own_text || !only_space {
            let text = std::str::from_utf8(&pending).ok()?;
            writer
                .write_event(Event::Text(BytesText::from_escaped(text)))
                .ok()?;
        }
        pending.clear();
        only_space = true;
        in_leaf = matches!(event, Event::Start(_));
        writer.write_event(event).ok()?;
    }
    Some(writer.into_inner())
}

/// Whether a backend's root element `local` (its local name) is the result `root` S3 documents
/// for `op`, or a name backends are known to give it instead: `…Response` for `…Result`
/// (`ListPartsResponse`), a copy's result for an UploadPartCopy's (RGW's `CopyObjectResult`),
/// OBS's `Location` for a bucket's `LocationConstraint`.
/// Another document (`<InternalFailure>`, say) is no success, whatever the status; an accepted
/// root is written under the documented name.
fn result_root_reads(op: Operation, root: &str, local: &[u8]) -> bool {
    let stem = |name: &[u8]| -> Vec<u8> {
        let name = name.strip_suffix(b"Response").unwrap_or(name);
        name.strip_suffix(b"Result").unwrap_or(name).to_vec()
    };
    let local = stem(local);
    local == stem(root.as_bytes())
        || (op == Operation::UploadPartCopy && local == b"CopyObject")
        || (op == Operation::GetBucketLocation && local == b"Location")
}

/// For an event at the top of a document: whether it is the root (`None`: a second root, an
/// `Error` root, or one that is not the operation's result), renamed to the documented name.
fn one_result_root(
    op: Operation,
    root: Option<&str>,
    rooted: bool,
    event: &mut Event<'_>,
) -> Option<bool> {
    let (Event::Start(e) | Event::Empty(e)) = event else {
        return Some(false);
    };
    let local = e.local_name();
    let expected = root.is_none_or(|r| result_root_reads(op, r, local.as_ref()));
    if rooted || local.as_ref() == b"Error" || !expected {
        return None;
    }
    // (Written under the name S3 documents, however the backend named it, in S3's namespace;
    // a sub-resource's configuration under its own name, in S3's namespace as well.)
    if let Some(root) = root {
        *e = renamed(e, root);
    } else if op == Operation::BucketSubresource {
        let local = String::from_utf8_lossy(local.as_ref()).into_owned();
        *e = renamed(e, &local);
    }
    Some(true)
}

/// An element under its local name: HCP's documents are in S3's namespace, unprefixed (a
/// backend's `<s3:Name>` is written `<Name>`; attributes and their prefixes stay).
fn unprefixed(event: &mut Event<'static>) {
    // (By `local_part`, as the rewrite reads names; a name of two colons never gets here:
    // `namespace_well_formed`.)
    let local = |name: quick_xml::name::QName<'_>| {
        let local = local_part(name.as_ref());
        (local.len() < name.as_ref().len()).then(|| String::from_utf8_lossy(local).into_owned())
    };
    match event {
        Event::Start(e) | Event::Empty(e) => {
            if let Some(local) = local(e.name()) {
                let mut named = BytesStart::new(local);
                named.extend_attributes(e.attributes().flatten());
                *e = named.into_owned();
            }
        }
        Event::End(e) => {
            if let Some(local) = local(e.name()) {
                *e = BytesEnd::new(local);
            }
        }
        _ => {}
    }
}

/// Whether `event`'s element name is a name XML's namespaces allow: at most one colon (a
/// prefix and a local part). A document with another (`a:b:Error`) is none the gateway reads:
/// the readers of a backend's document ahead of its rewrite (its entries' owners, its
/// per-key codes, whether it is whole) and the rewrite could read such a name two ways.
fn namespace_well_formed(event: &Event<'_>) -> bool {
    let name = match event {
        Event::Start(e) | Event::Empty(e) => e.name(),
        Event::End(e) => e.name(),
        _ => return true,
    };
    name.as_ref().iter().filter(|&&b| b == b':').count() <= 1
}

/// A name without its namespace prefix.
fn local_part(name: &[u8]) -> &[u8] {
    name.rsplit(|&b| b == b':').next().unwrap_or(name)
}

/// `e` under the name `root`, in S3's namespace as HCP's documents are (a backend's own, OBS's
/// `http://obs.myhwclouds.com/…`, names the backend), with the prefixes it declares.
fn renamed(e: &BytesStart<'_>, root: &str) -> BytesStart<'static> {
    let mut renamed = BytesStart::new(root);
    renamed.push_attribute(("xmlns", crate::hcp::xml::S3_NAMESPACE));
    renamed.extend_attributes(
        e.attributes()
            .flatten()
            .filter(|a| a.key.as_ref().starts_with(b"xmlns:")),
    );
    renamed.into_owned()
}

/// What [`Texts::party_step`] asks of `rewrite_xml`: these events in the event's place, or
/// this one before it.
enum PartyStep {
    Instead(Vec<Event<'static>>),
    Before(Event<'static>),
    /// An element written whole before the event.
    BeforeAll(Vec<Event<'static>>),
}

/// `(party, leaf)` where `path` ends in a party's `<ID>` or `<DisplayName>` (an owner's, an
/// initiator's, a grantee's): text the gateway writes itself.
fn party_leaf(path: &[Vec<u8>]) -> Option<(&[u8], &[u8])> {
    let [.., grand, parent] = path else {
        return None;
    };
    let party = matches!(grand.as_slice(), b"Owner" | b"Initiator" | b"Grantee");
    let leaf = matches!(parent.as_slice(), b"ID" | b"DisplayName");
    (party && leaf).then_some((grand.as_slice(), parent.as_slice()))
}

impl<'a> Texts<'a> {
    fn new(op: Operation, route: &'a Route<'a>, rewrites: &Rewrites<'a>, body: &[u8]) -> Texts<'a> {
        Texts {
            op,
            route,
            location: rewrites.location,
            upload_id: rewrites.upload_id,
            upload_id_marker: rewrites.upload_id_marker,
            params: rewrites.params,
            echoes_seen: 0,
            initiator: rewrites.initiator,
            upload_party: None,
            upload_initiator_seen: false,
            upload_owner_seen: false,
            owner_id: None,
            owners: rewrites.owners,
            entry_owners: rewrites.entry_owners,
            entry: None,
            entries_seen: 0,
            initiator_seen: false,
            owner_seen: false,
            party_text: false,
            party_named: false,
            party_id: false,
            error_nested: 0,
            foreign: 0,
            errors: match op {
                Operation::DeleteObjects => per_key_errors(body, route.backend.dialect),
                _ => Vec::new(),
            },
            errors_seen: 0,
            whole: listed_whole(op, body),
        }
    }

    /// What `event` at `path` asks of the texts the gateway writes whole: a party's, a
    /// per-key error's. (An empty element under the root is noted as an echo.)
    fn step(&mut self, path: &[Vec<u8>], event: &Event<'_>) -> Option<PartyStep> {
        if let (1, Event::Empty(e)) = (path.len(), event) {
            self.note_echo(local_part(e.name().as_ref()));
        }
        // (A multi-object delete's entries first: what they keep is HCP's alone.)
        self.error_step(path, event)
            .or_else(|| self.party_step(path, event))
    }

    /// What `event` at `path` asks of a multi-object delete's per-key `<Error>`: its `<Code>`
    /// and `<Message>` are written when they close as HCP's for the backend's code, read
    /// before ([`per_key_errors`]), wherever the `<Message>` stands. The backend's
    /// own words — which may name its zones, hosts and buckets — never pass, as text,
    /// entities, CDATA or elements inside either (names are compared by their local part).
    fn error_step(&mut self, path: &[Vec<u8>], event: &Event<'_>) -> Option<PartyStep> {
        if self.op != Operation::DeleteObjects {
            return None;
        }
        if let (1, Event::Start(e)) = (path.len(), event) {
            if local_part(e.name().as_ref()) == b"Error" {
                self.errors_seen += 1;
            }
            return None;
        }
        if let Some(step) = self.foreign_step(path, event) {
            return Some(step);
        }
        // An empty `<Code/>` or `<Message/>` gets HCP's text too.
        if let ([_, error], Event::Empty(e)) = (path, event) {
            let name = e.name();
            let leaf = local_part(name.as_ref());
            if local_part(error) != b"Error" || !matches!(leaf, b"Code" | b"Message") {
                return None;
            }
            let text = self.per_key_error_text(leaf == b"Code");
            let start = e.clone().into_owned();
            let end = start.to_end().into_owned();
            let text = Event::Text(BytesText::new(text));
            return Some(PartyStep::Instead(vec![
                Event::Start(start),
                text,
                Event::End(end),
            ]));
        }
        let [_, error, leaf, ..] = path else {
            return None;
        };
        let code = local_part(leaf) == b"Code";
        if local_part(error) != b"Error" || !(code || local_part(leaf) == b"Message") {
            return None;
        }
        match event {
            // (An element inside either: dropped with all it holds.)
            Event::Start(_) => self.error_nested += 1,
            Event::End(_) if self.error_nested > 0 => self.error_nested -= 1,
            Event::End(_) => {
                let text = self.per_key_error_text(code);
                return Some(PartyStep::Before(Event::Text(BytesText::new(text))));
            }
            _ => {}
        }
        Some(PartyStep::Instead(Vec::new()))
    }

    /// A multi-object delete's answer keeps HCP's elements alone (manual, "Deleting multiple
    /// objects": `<Deleted>` holds `Key`, `VersionId`, `DeleteMarker`, `DeleteMarkerVersionId`;
    /// `<Error>` `Key`, `VersionId`, `Code`, `Message`): an element of the backend's own in an
    /// entry — an `<Error>` inside a `<Deleted>`, a `<Resource>` naming the backend's bucket —
    /// is dropped with all it holds, and so is text beside the entries' elements or between
    /// the entries (whitespace alone: the writer indents).
    fn foreign_step(&mut self, path: &[Vec<u8>], event: &Event<'_>) -> Option<PartyStep> {
        if self.foreign > 0 {
            match event {
                Event::Start(_) => self.foreign += 1,
                Event::End(_) => self.foreign -= 1,
                _ => {}
            }
            return Some(PartyStep::Instead(Vec::new()));
        }
        let text = matches!(
            event,
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)
        );
        let kept: &[&[u8]] = match path {
            [_] if text => return Some(PartyStep::Instead(Vec::new())),
            [_, entry] if entry == b"Error" => &[b"Key", b"VersionId", b"Code", b"Message"],
            [_, entry] if entry == b"Deleted" => &[
                b"Key",
                b"VersionId",
                b"DeleteMarker",
                b"DeleteMarkerVersionId",
            ],
            _ => return None,
        };
        match event {
            Event::Start(e) if !kept.contains(&local_part(e.name().as_ref())) => {
                self.foreign = 1;
                Some(PartyStep::Instead(Vec::new()))
            }
            Event::Empty(e) if !kept.contains(&local_part(e.name().as_ref())) => {
                Some(PartyStep::Instead(Vec::new()))
            }
            _ if text => Some(PartyStep::Instead(Vec::new())),
            _ => None,
        }
    }

    /// The open per-key `<Error>`'s code (`code`) or message, HCP's ([`per_key_errors`]).
    fn per_key_error_text(&self, code: bool) -> &'static str {
        let this = self.errors_seen.checked_sub(1);
        let internal = (
            HcpCode::InternalError,
            HcpCode::InternalError.default_message(),
        );
        let (mapped, message) = this
            .and_then(|i| self.errors.get(i).copied())
            .unwrap_or(internal);
        if code {
            mapped.as_str()
        } else {
            message
        }
    }

    /// HCP's ListParts names the upload's initiator and owner (manual, "ListPartsResult");
    /// a backend that leaves them out (the embedded store, RGW) gets them added before the
    /// document ends: the caller where owners are kept (only an upload's initiator lists its
    /// parts), else the tenant.
    /// A text piece at `path` (`event`), rewritten in place where the gateway writes another
    /// ([`Texts::rewrite`]); `Some(keep)`: it decided whether the held ListBuckets `<Bucket>`
    /// is kept. `None`: text that is not UTF-8.
    fn text_in_place(
        &mut self,
        path: &[Vec<u8>],
        event: &mut Event<'static>,
    ) -> Option<Option<bool>> {
        let Event::Text(t) = &*event else {
            return Some(None);
        };
        let depth = path.len();
        let parent = path.last().map(Vec::as_slice);
        let grand = depth
            .checked_sub(2)
            .and_then(|i| path.get(i))
            .map(Vec::as_slice);
        let text = t.decode().ok()?.into_owned();
        if self.url_key_at(path) {
            *event = url_encoded(&text);
            return Some(None);
        }
        let rewritten = self.rewrite((grand, parent), depth, &text);
        let bucket_name = (grand, parent) == (Some(b"Bucket"), Some(b"Name"));
        let keep =
            (self.op == Operation::ListBuckets && bucket_name).then_some(rewritten.is_some());
        if let Some(r) = rewritten {
            *event = Event::Text(BytesText::new(&r).into_owned());
        }
        Some(keep)
    }

    /// A reference or CDATA section in the `<Key>` of a parts listing asked with
    /// `encoding-type=url` (`Params::url_key`): what it stands for, URL-encoded as the text
    /// around it is (`rewrite`) — RGW writes a control character as `&#x01;`, `&` as `&amp;`.
    fn url_key_piece(&self, path: &[Vec<u8>], event: &Event<'_>) -> Option<Event<'static>> {
        if !self.url_key_at(path) {
            return None;
        }
        let mut text = String::new();
        match event {
            Event::GeneralRef(r) => {
                if !crate::hcp::xml::push_reference(&mut text, r) {
                    return None;
                }
            }
            Event::CData(c) => text.push_str(std::str::from_utf8(c).ok()?),
            _ => return None,
        }
        Some(url_encoded(&text))
    }

    /// Whether `path` is the `<Key>` of a parts listing asked with `encoding-type=url`
    /// (`Params::url_key`: HCP encodes it; the backend was not asked to).
    fn url_key_at(&self, path: &[Vec<u8>]) -> bool {
        self.op == Operation::ListParts
            && self.params.is_some_and(|p| p.url_key)
            && matches!(path, [_, key] if key == b"Key")
    }

    /// [`Operation::page_size`]'s value as asked (1,000 where it was not).
    fn page_size(&self) -> String {
        let (param, _) = self.op.page_size().unwrap_or_default();
        let asked = self.params.and_then(|p| p.get(param));
        let asked = asked.and_then(|v| v.parse::<u64>().ok());
        asked.unwrap_or(1000).to_string()
    }

    /// An element opens under the root, or is one empty (moto's `<KeyMarker/>`): one of
    /// HCP's echoes, written.
    fn note_echo(&mut self, name: &[u8]) {
        let i = echoes(self.op).iter().position(|(n, _)| *n == name);
        if let Some(i) = i {
            self.echoes_seen |= 1 << i;
        }
    }

    /// The root closes: the echoes HCP always names that the backend left out (RGW writes no
    /// empty `Prefix` or `KeyMarker` in an uploads listing) — empty, as the request left the
    /// parameter; a page size as asked; a complete's `<Location>`, the client's URL.
    fn echoes_before_end(&self, writer: &mut Writer<Vec<u8>>) -> Option<()> {
        // (A client's listing: the gateway's own read as the backend wrote them.)
        if self.params.is_none() {
            return Some(());
        }
        for (i, (name, param)) in echoes(self.op).iter().enumerate() {
            if self.echoes_seen & (1 << i) != 0 {
                continue;
            }
            // A complete's object URL, which s3s-fs leaves out.
            if *name == b"Location" {
                if !self.location.is_empty() {
                    crate::hcp::xml::leaf(writer, "Location", self.location)?;
                }
                continue;
            }
            // The client's own upload marker, which is not always sent on.
            if *name == b"UploadIdMarker" {
                let Some(marker) = self.upload_id_marker else {
                    continue;
                };
                let shown = crate::hcp::xml::displayed_name(marker);
                crate::hcp::xml::leaf(writer, "UploadIdMarker", &shown)?;
                continue;
            }
            let name = std::str::from_utf8(name).ok()?;
            let text = match self.op.page_size().map(|(p, _)| p) == Some(*param) {
                true => self.page_size(),
                // (A backend that leaves out a parameter it was given: its answer stands.)
                false
                    if self
                        .params
                        .and_then(|p| p.get(param))
                        .is_some_and(|v| !v.is_empty()) =>
                {
                    continue
                }
                false => String::new(),
            };
            crate::hcp::xml::leaf(writer, name, &text)?;
        }
        Some(())
    }

    fn parties_before_end(&self, writer: &mut Writer<Vec<u8>>) -> Option<()> {
        self.echoes_before_end(writer)?;
        if self.op != Operation::ListParts {
            return Some(());
        }
        let missing = [
            ("Initiator", !self.initiator_seen),
            ("Owner", !self.owner_seen),
        ];
        self.write_parties(writer, missing, None)
    }

    /// An element under the root closes (`path` still names it): an `<Upload>` of
    /// ListMultipartUploads gets its parties.
    fn entry_ends(&mut self, path: &[Vec<u8>], writer: &mut Writer<Vec<u8>>) -> Option<()> {
        if self.op == Operation::ListMultipartUploads && path.last().is_some_and(|n| n == b"Upload")
        {
            return self.upload_parties_before_end(writer);
        }
        Some(())
    }

    /// ListMultipartUploads: an `<Upload>` closes; the parties HCP names in each — the
    /// upload's initiator as its initiator and owner, where known, else as a backend's own
    /// are shown — are added where the backend left them out (the embedded store).
    fn upload_parties_before_end(&mut self, writer: &mut Writer<Vec<u8>>) -> Option<()> {
        let missing = [
            ("Initiator", !self.upload_initiator_seen),
            ("Owner", !self.upload_owner_seen),
        ];
        let party = self.upload_party.take();
        self.write_parties(writer, missing, party.as_ref())
    }

    /// Writes each party of `missing` that is missing: `party`, else the caller where owners
    /// are kept, else the tenant.
    fn write_parties(
        &self,
        writer: &mut Writer<Vec<u8>>,
        missing: [(&str, bool); 2],
        party: Option<&crate::request::owners::Owner>,
    ) -> Option<()> {
        if missing.iter().all(|(_, m)| !m) {
            return Some(());
        }
        let (id, name) = match (party, self.owners) {
            (Some(p), _) => (p.id.clone(), p.name.clone()),
            (None, Some(shown)) => (shown.owner.id.clone(), shown.owner.name.clone()),
            (None, None) => (
                crate::request::route::tenant_owner_id(self.route.tenant),
                self.route.tenant.name.to_string(),
            ),
        };
        for (party, _) in missing.into_iter().filter(|(_, m)| *m) {
            writer
                .write_event(Event::Start(BytesStart::new(party)))
                .ok()?;
            for (leaf, text) in [("ID", id.as_str()), ("DisplayName", name.as_str())] {
                crate::hcp::xml::leaf(writer, leaf, text)?;
            }
            writer.write_event(Event::End(BytesEnd::new(party))).ok()?;
        }
        Some(())
    }

    /// The owner of the listing entry being written, where the gateway read one.
    fn entry_owner(&self) -> Option<&crate::request::owners::Owner> {
        self.entry_owners.get(self.entry?)?.as_ref()
    }

    /// What `event` at `path` asks of a party's `<ID>` or `<DisplayName>`: the backend's text
    /// in one is dropped, the gateway's written when it closes; an empty one is filled.
    fn party_step(&mut self, path: &[Vec<u8>], event: &Event<'_>) -> Option<PartyStep> {
        match event {
            Event::Text(_) | Event::GeneralRef(_) | Event::CData(_) => {
                self.whole_leaf(path)?;
                self.party_text = true;
                Some(PartyStep::Instead(Vec::new()))
            }
            Event::End(_) => self
                .party_text_at_end(path)
                .map(PartyStep::Before)
                .or_else(|| self.display_name_at_end(path)),
            Event::Empty(e) => self.empty_party(path, e).map(PartyStep::Instead),
            _ => None,
        }
    }

    /// `(parent, leaf)` where `path` ends in an element whose text the gateway writes whole
    /// when it closes, whatever the backend wrote in it — as text, in pieces around entity
    /// references (`O&#39;Brien`), as CDATA: a party's ([`party_leaf`]), a complete's
    /// `<Location>`, a ListMultipartUploads' `<UploadIdMarker>` (the client's own).
    fn whole_leaf<'p>(&self, path: &'p [Vec<u8>]) -> Option<(&'p [u8], &'p [u8])> {
        if let Some(leaf) = party_leaf(path) {
            return Some(leaf);
        }
        let [root, leaf] = path else {
            return None;
        };
        let ours = match self.op {
            Operation::CompleteMultipartUpload => leaf.as_slice() == b"Location",
            Operation::ListMultipartUploads => leaf.as_slice() == b"UploadIdMarker",
            _ => false,
        };
        ours.then_some((root.as_slice(), leaf.as_slice()))
    }

    /// A party's `<ID>` or `<DisplayName>` closes (`path` still names it): its text, written
    /// here whole — what the backend wrote in it was dropped, entities and CDATA too. An
    /// owner's or initiator's is written also where the backend left it empty (RGW's display
    /// names); a grantee's empty display name stays empty (RGW's groups have none).
    fn party_text_at_end(&mut self, path: &[Vec<u8>]) -> Option<Event<'static>> {
        let had_text = std::mem::replace(&mut self.party_text, false);
        let (grand, parent) = self.whole_leaf(path)?;
        if grand == b"Grantee" && !had_text {
            return None;
        }
        let text = self.rewrite((Some(grand), Some(parent)), path.len(), "")?;
        Some(Event::Text(BytesText::new(&text).into_owned()))
    }

    /// An owner, initiator or user grantee closes (`path` still names it) without a
    /// `<DisplayName>` — AWS writes none since 2025, nor ever outside a few regions —: HCP's is
    /// written before its end (the user the gateway names, as where the backend wrote one).
    fn display_name_at_end(&mut self, path: &[Vec<u8>]) -> Option<PartyStep> {
        let party = path.last()?.as_slice();
        let user = match party {
            b"Owner" | b"Initiator" => true,
            b"Grantee" => self.party_id,
            _ => false,
        };
        if !user || self.party_named {
            return None;
        }
        self.party_named = true;
        let text = self.rewrite((Some(party), Some(b"DisplayName")), path.len() + 1, "")?;
        Some(PartyStep::BeforeAll(vec![
            Event::Start(BytesStart::new("DisplayName")),
            Event::Text(BytesText::new(&text).into_owned()),
            Event::End(BytesEnd::new("DisplayName")),
        ]))
    }

    /// A self-closing element at `path`'s end: an owner's or initiator's empty `<ID/>` or
    /// `<DisplayName/>` is written with its text; a ListParts party without children counts
    /// as named.
    fn empty_party(&mut self, path: &[Vec<u8>], e: &BytesStart<'_>) -> Option<Vec<Event<'static>>> {
        let name = local_part(e.name().as_ref()).to_vec();
        self.note_party(path.len(), &name);
        self.party_named |= name == b"DisplayName";
        self.party_id |= name == b"ID";
        let mut leaf = path.to_vec();
        leaf.push(name);
        let (grand, parent) = party_leaf(&leaf)?;
        if grand == b"Grantee" {
            return None;
        }
        let text = self.rewrite((Some(grand), Some(parent)), leaf.len(), "")?;
        let name = String::from_utf8_lossy(parent).into_owned();
        Some(vec![
            Event::Start(BytesStart::new(name.clone())),
            Event::Text(BytesText::new(&text).into_owned()),
            Event::End(BytesEnd::new(name)),
        ])
    }

    /// A party element `name` at `depth`: ListParts' own (under the root), or an upload's
    /// (under `<Upload>`).
    fn note_party(&mut self, depth: usize, name: &[u8]) {
        let (initiator, owner) = (name == b"Initiator", name == b"Owner");
        match depth {
            1 => {
                self.initiator_seen |= initiator;
                self.owner_seen |= owner;
            }
            2 if self.op == Operation::ListMultipartUploads => {
                self.upload_initiator_seen |= initiator;
                self.upload_owner_seen |= owner;
            }
            _ => {}
        }
    }

    /// An element opens at `depth`: a listing entry starts there, or another element.
    fn opened(&mut self, depth: usize, name: &[u8]) {
        self.party_text = false;
        match name {
            b"Owner" | b"Initiator" | b"Grantee" => {
                (self.party_named, self.party_id) = (false, false)
            }
            b"DisplayName" => self.party_named = true,
            b"ID" => self.party_id = true,
            _ => {}
        }
        self.note_party(depth, name);
        if depth == 1 {
            self.note_echo(name);
        }
        if depth == 1 && self.op == Operation::ListMultipartUploads && name == b"Upload" {
            self.upload_party = None;
            (self.upload_initiator_seen, self.upload_owner_seen) = (false, false);
        }
        if depth == 1 {
            self.entry = matches!(name, b"Contents" | b"Version").then(|| {
                self.entries_seen += 1;
                self.entries_seen - 1
            });
        }
    }

    fn rewrite(
        &mut self,
        (grand, parent): (Option<&[u8]>, Option<&[u8]>),
        depth: usize,
        text: &str,
    ) -> Option<String> {
        let (op, route) = (self.op, self.route);
        match (grand, parent) {
            // A bucket's location is the gateway's whatever the backend's region, whose name
            // would say where and whose the backend is: S3's answer for the default region.
            (_, Some(_)) if op == Operation::GetBucketLocation => Some(String::new()),
            // ListBuckets: a bucket that is not the tenant's has no client name and is dropped.
            (Some(b"Bucket"), Some(b"Name")) if op == Operation::ListBuckets => {
                let owned = self.owners.and_then(|o| o.owned.as_ref());
                route
                    .client_bucket(text)
                    .filter(|_| owned.is_none_or(|owned| owned.contains(text)))
                    .map(str::to_string)
            }
            (_, Some(b"Bucket")) | (Some(_), Some(b"Name")) if depth == 2 => {
                route.client_bucket(text).map(str::to_string)
            }
            (_, Some(b"Location")) if op == Operation::CompleteMultipartUpload => {
                Some(self.location.to_string())
            }
            // The page size asked, as HCP echoes it (validated a number: written as read).
            (_, Some(name))
                if depth == 2
                    && self.params.is_some()
                    && op.page_size().is_some_and(|(_, n)| n == name) =>
            {
                Some(self.page_size())
            }
            (_, Some(b"UploadIdMarker")) if op == Operation::ListMultipartUploads => {
                let marker = self.upload_id_marker.unwrap_or_default();
                Some(crate::hcp::xml::displayed_name(marker).into_owned())
            }
            (_, Some(b"UploadId" | b"NextUploadIdMarker" | b"UploadIdMarker")) => {
                if op == Operation::ListMultipartUploads && grand == Some(b"Upload") {
                    self.upload_party = (self.initiator)(text);
                }
                (self.upload_id)(text)
            }
            // An upload's initiator, known: its initiator and the owner of what it makes.
            (Some(b"Owner" | b"Initiator"), Some(b"ID" | b"DisplayName"))
                if op == Operation::ListMultipartUploads && self.upload_party.is_some() =>
            {
                let party = self.upload_party.as_ref()?;
                Some(match parent == Some(b"ID".as_slice()) {
                    true => party.id.clone(),
                    false => party.name.clone(),
                })
            }
            // A listed object's own owner.
            (Some(b"Owner"), Some(b"ID" | b"DisplayName")) if self.entry_owner().is_some() => {
                let owner = self.entry_owner()?;
                let id = parent == Some(b"ID".as_slice());
                Some(if id {
                    owner.id.clone()
                } else {
                    owner.name.clone()
                })
            }
            // The backend account never shows: owners, initiators and canonical-user grantees
            // are the tenant's.
            (Some(b"Owner" | b"Initiator" | b"Grantee"), Some(b"ID")) if self.owners.is_some() => {
                self.owners.map(|o| o.owner.id.clone())
            }
            (Some(b"Owner" | b"Initiator" | b"Grantee"), Some(b"DisplayName"))
                if self.owners.is_some() =>
            {
                self.owners.map(|o| o.owner.name.clone())
            }
            (Some(b"Owner" | b"Initiator" | b"Grantee"), Some(b"ID")) => {
                let id = self
                    .owner_id
                    .get_or_insert_with(|| crate::request::route::tenant_owner_id(route.tenant));
                Some(id.clone())
            }
            (Some(b"Owner" | b"Initiator" | b"Grantee"), Some(b"DisplayName")) => {
                Some(route.tenant.name.to_string())
            }
            // MinIO's next marker names its listing cache after the key: the key alone.
            (_, Some(name @ (b"NextMarker" | b"NextKeyMarker" | b"NextContinuationToken")))
                if depth == 2 && route.backend.dialect == Dialect::Minio =>
            {
                minio_next(name, text)
            }
            // A name as HCP displays it back: its nonprintable characters percent-encoded
            // (raw, they make the document no XML at all).
            (_, Some(name)) if shows_a_name(name) => match crate::hcp::xml::displayed_name(text) {
                std::borrow::Cow::Owned(shown) => Some(shown),
                std::borrow::Cow::Borrowed(_) => None,
            },
            _ => None,
        }
    }
}

/// An element an answer holds until it closes, then writes or drops whole: a `<Bucket>` of
/// ListBuckets (wherever it is) by its name, a quiet delete's `<Deleted>` always dropped.
struct Held {
    name: &'static [u8],
    /// The depth it opens at (`None`: any).
    depth: Option<usize>,
    keep: bool,
}

impl Held {
    fn of(op: Operation, rewrites: &Rewrites<'_>, keep_bucket: bool) -> Held {
        let (name, depth, keep): (&[u8], _, _) = match op {
            Operation::ListBuckets => (b"Bucket", None, keep_bucket),
            Operation::DeleteObjects if rewrites.quiet => (b"Deleted", Some(1), false),
            _ => (b"", Some(0), true),
        };
        Held { name, depth, keep }
    }

    fn at(&self, depth: usize) -> bool {
        self.depth.is_none_or(|at| at == depth)
    }

    fn opens(&self, depth: usize, e: &BytesStart<'_>) -> bool {
        self.at(depth) && local_part(e.name().as_ref()) == self.name
    }
}

/// A MinIO listing's next marker without the name of MinIO's listing cache it carries after
/// the key (`k[minio_cache:v2,id:…,p:0,s:0]`, URL-encoded where the listing is:
/// `k%5Bminio_cache%3Av2…%5D`): the key, as every other S3 server's marker — MinIO lists on
/// from it all the same (without its cache). Any other text as it is.
pub fn minio_marker(text: &[u8]) -> &[u8] {
    let forms: [(&[u8], &[u8]); 2] = [(b"[minio_cache:", b"]"), (b"%5Bminio_cache%3A", b"%5D")];
    for (tag, end) in forms {
        let ends =
            text.len() >= end.len() && text[text.len() - end.len()..].eq_ignore_ascii_case(end);
        if !ends {
            continue;
        }
        if let Some(at) = text
            .windows(tag.len())
            .rposition(|w| w.eq_ignore_ascii_case(tag))
        {
            return &text[..at];
        }
    }
    text
}

/// A MinIO listing's `NextMarker`, `NextKeyMarker` (as [`minio_marker`] cuts it, shown as
/// names are) or `NextContinuationToken` (base64 of such a marker) without its listing
/// cache's name; `None`: as it is.
fn minio_next(element: &[u8], text: &str) -> Option<String> {
    use base64::Engine as _;
    if element != b"NextContinuationToken" {
        let key = std::str::from_utf8(minio_marker(text.as_bytes())).unwrap_or(text);
        return Some(crate::hcp::xml::displayed_name(key).into_owned());
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let marker = engine.decode(text).ok()?;
    let key = minio_marker(&marker);
    (key.len() < marker.len()).then(|| engine.encode(key))
}

/// Whether an element's text is an object's name, or a part of one (HCP displays these with
/// their nonprintable characters percent-encoded; RGW's continuation token is a key) — or a
/// marker the backend echoes as the client sent it.
fn shows_a_name(element: &[u8]) -> bool {
    matches!(
        element,
        b"Key"
            | b"Prefix"
            | b"Marker"
            | b"NextMarker"
            | b"KeyMarker"
            | b"NextKeyMarker"
            | b"StartAfter"
            | b"Delimiter"
            | b"ContinuationToken"
            | b"NextContinuationToken"
            | b"VersionIdMarker"
            | b"NextVersionIdMarker"
            | b"UploadIdMarker"
            | b"NextUploadIdMarker"
    )
}

/// The elements a listing's answer always names under its root, HCP's echoes of the request
/// (manual: "If the request did not include the … query parameter, the response body includes
/// … as an empty element"; a page size is 1,000 where none was asked), with the parameter each
/// echoes; and a complete's `<Location>`, "the complete URL for the object". (At most 8:
/// `Texts::echoes_seen` keeps them as bits.)
fn echoes(op: Operation) -> &'static [(&'static [u8], &'static str)] {
    match op {
        Operation::ListObjects => &[
            (b"Prefix", "prefix"),
            (b"Marker", "marker"),
            (b"MaxKeys", "max-keys"),
        ],
        Operation::ListObjectsV2 => &[(b"Prefix", "prefix"), (b"MaxKeys", "max-keys")],
        Operation::ListObjectVersions => &[
            (b"Prefix", "prefix"),
            (b"KeyMarker", "key-marker"),
            (b"VersionIdMarker", "version-id-marker"),
            (b"MaxKeys", "max-keys"),
        ],
        Operation::ListMultipartUploads => &[
            (b"Prefix", "prefix"),
            (b"KeyMarker", "key-marker"),
            (b"MaxUploads", "max-uploads"),
            // (Only where the request gave one: "does not include" it otherwise.)
            (b"UploadIdMarker", "upload-id-marker"),
        ],
        Operation::ListParts => &[(b"MaxParts", "max-parts")],
        // (Not a parameter's: the object's URL as the client addressed it.)
        Operation::CompleteMultipartUpload => &[(b"Location", "")],
        _ => &[],
    }
}

/// An element that says where, or whose, the backend is, dropped whole from every answer: Ceph
/// RGW's `<Tenant>` (its account's tenant, first under a listing's, an upload's or its parts'
/// root), and a bucket's region or kind in a ListBuckets (OBS's `<Location>` and
/// `<BucketType>`, AWS's `<BucketRegion>`) — HCP's list names a bucket and its creation date;
/// RGW's `<Type>` of a listed object (`Normal`, `Appendable`: RGW's alone) and the
/// `<MfaDelete>` of its versioning document (HCP's names its `Status` only, and MFA deletes
/// are not offered), and MinIO's `<ExcludedPrefixes>` and `<ExcludeFolders>` there (the
/// operator's exclusions from versioning, `probes::Versioned`); the checksums a backend
/// keeps of its own accord (AWS's CRC64NVME of every write, MinIO's, the gateway's own
/// trailer's CRC32) in a copy's or a complete's result and a listing's entries — HCP's have
/// none (a ListParts and a part copy keep their parts': a client completes an upload it began
/// with a checksum with them — boto3 and the Java SDK take a copied part's from its
/// `CopyPartResult` alone). (`at`: the element's parent and depth.)
fn backend_own(op: Operation, at: (Option<&[u8]>, usize), name: &[u8]) -> bool {
    use Operation::*;
    if name.starts_with(b"Checksum") {
        return match op {
            CopyObject | CompleteMultipartUpload => at.1 == 1,
            ListObjects | ListObjectsV2 | ListObjectVersions | ListMultipartUploads => {
                at.1 == 2 && matches!(at.0, Some(b"Contents" | b"Version" | b"Upload"))
            }
            _ => false,
        };
    }
    match name {
        b"Tenant" => at.1 == 1,
        b"Type" => {
            op.page_size().is_some()
                && at.1 == 2
                && matches!(at.0, Some(b"Contents" | b"Version" | b"DeleteMarker"))
        }
        b"MfaDelete" | b"ExcludedPrefixes" | b"ExcludeFolders" => {
            op == Operation::GetBucketVersioning && at.1 == 1
        }
        b"Location" | b"BucketRegion" | b"BucketType" => {
            op == Operation::ListBuckets && at.0 == Some(b"Bucket".as_slice())
        }
        _ => false,
    }
}

/// Whether `event` opens an element [`backend_own`] names (or an `UploadIdMarker` the request
/// did not ask), then read to its end (`path`: the elements open around it); `None`: the
/// document ends before it does.
fn skipped_backend_own(
    reader: &mut Reader<&[u8]>,
    event: &Event<'_>,
    (op, rewrites): (Operation, &Rewrites<'_>),
    path: &[Vec<u8>],
    whole: bool,
) -> Option<bool> {
    let (Event::Start(e) | Event::Empty(e)) = event else {
        return Some(false);
    };
    let parent = path.last().map(Vec::as_slice);
    let qname = e.name();
    let name = local_part(qname.as_ref());
    // HCP: "If the request did not include the upload-id-marker query parameter, the response
    // body does not include" `UploadIdMarker` (every backend writes it, empty).
    let unasked = op == Operation::ListMultipartUploads
        && path.len() == 1
        && name == b"UploadIdMarker"
        && rewrites.upload_id_marker.is_none();
    // HCP names where a listing goes on "only when the value of the `IsTruncated` element is
    // `true`" (RGW and moto write them on every page of uploads).
    let no_next = whole
        && path.len() == 1
        && matches!(
            name,
            b"NextKeyMarker" | b"NextUploadIdMarker" | b"NextVersionIdMarker"
        );
    // "The `NextMarker` element is returned only if you have specified a delimiter request
    // parameter" (MinIO writes it on every truncated page).
    let undelimited = op == Operation::ListObjects
        && path.len() == 1
        && name == b"NextMarker"
        && rewrites
            .params
            .is_some_and(|p| p.get("delimiter").is_none());
    if !unasked && !no_next && !undelimited && !backend_own(op, (parent, path.len()), name) {
        return Some(false);
    }
    if matches!(event, Event::Start(_)) {
        reader.read_to_end(e.name()).ok()?;
    }
    Some(true)
}

/// Writes what a [`PartyStep`] asks; `true` where it takes the event's place.
fn step_written(
    writer: &mut Writer<Vec<u8>>,
    held: &mut Option<Vec<Event<'static>>>,
    step: PartyStep,
) -> Option<bool> {
    let (events, instead) = match step {
        PartyStep::Instead(events) => (events, true),
        PartyStep::Before(e) => (vec![e], false),
        PartyStep::BeforeAll(events) => (events, false),
    };
    for e in events {
        pass_on(writer, held, e, None)?;
    }
    Some(instead)
}

/// Writes an event, or holds it while a [`Held`] element is open; when it closes (`closing`
/// says whether it is kept), what was held is written or dropped.
fn pass_on(
    writer: &mut Writer<Vec<u8>>,
    held: &mut Option<Vec<Event<'static>>>,
    event: Event<'static>,
    closing: Option<bool>,
) -> Option<()> {
    let Some(buf) = held.as_mut() else {
        return writer.write_event(event).ok();
    };
    buf.push(event);
    if let Some(keep) = closing {
        let events = held.take().unwrap_or_default();
        for e in events.into_iter().filter(|_| keep) {
            writer.write_event(e).ok()?;
        }
    }
    Some(())
}

/// Normalises a control operation's XML answer in one pass: the root element gets the name S3
/// documents for the operation, backend bucket names lose the tenant's prefix (and
/// `ListAllMyBucketsResult` keeps only the tenant's buckets), and `Location` names the object as
/// the client addressed it instead of the backend's address.
///
/// With `pretty` (`x-hcp-pretty-print: true`) the document is indented.
///
/// `None` for a document that is not one whole answer: not well-formed, cut off before its
/// elements close, more than one root, an `<Error>` root (a failure, whatever the status), or,
/// for an operation that has a result, no root at all — an empty or truncated 200 must not
/// reach the client as the operation's success (a complete's, a copy's, a listing that looks
/// whole).
pub fn rewrite_xml(
    body: &[u8],
    op: Operation,
    route: &Route<'_>,
    rewrites: &Rewrites<'_>,
) -> Option<Bytes> {
    let flat = rewritten(body, op, route, rewrites)?;
    // In HCP's order, once the rewrite has added what a backend leaves out (an upload's
    // parties, a listing's echoes: written where the backend's document ends) and before any
    // indenting — the embedded store's documents name each element's children in s3s's
    // (alphabetical) order, RGW's and the others' in their own.
    let flat = super::order::in_hcp_order(&flat)?;
    // (Its length is what it holds: counted so while the client reads it.)
    let mut doc = match rewrites.pretty {
        true => indented(&flat)?,
        false => flat,
    };
    doc.shrink_to_fit();
    Some(Bytes::from(doc))
}

/// Text URL-encoded as HCP's listings encode names (`encoding-type=url`), as the embedded
/// store's listings encode them.
fn url_encoded(text: &str) -> Event<'static> {
    let encoded = crate::hcp::xml::url_encoded_name(text.as_bytes());
    Event::Text(BytesText::from_escaped(encoded))
}

/// A character XML 1.0 cannot carry, written as a reference (RGW's `&#x01;`): shown as HCP
/// shows it, percent-encoded, wherever it is.
fn displayed_reference(event: &mut Event<'static>) {
    let Event::GeneralRef(r) = &*event else {
        return;
    };
    if let Ok(Some(c)) = r.resolve_char_ref() {
        let mut one = [0u8; 4];
        let shown = crate::hcp::xml::displayed_name(c.encode_utf8(&mut one));
        if let std::borrow::Cow::Owned(shown) = shown {
            *event = Event::Text(BytesText::new(&shown).into_owned());
        }
    }
}

/// A backend document's event as HCP writes it: its declaration HCP's for the operation
/// (whatever the backend's: OBS's has `standalone`, the others' not, which told them apart), a
/// name's nonprintable characters shown (`displayed_reference`), no namespace prefix
/// (`unprefixed`).
fn as_hcp_writes(event: &mut Event<'static>, op: Operation) {
    if matches!(event, Event::Decl(_)) {
        let standalone = declared_standalone(op).then_some("yes");
        let hcp = quick_xml::events::BytesDecl::new("1.0", Some("UTF-8"), standalone);
        *event = Event::Decl(hcp);
    }
    displayed_reference(event);
    unprefixed(event);
}

/// Whether HCP declares an operation's success document `standalone="yes"`: its examples do,
/// but a multi-object delete's and a complete's.
fn declared_standalone(op: Operation) -> bool {
    !matches!(
        op,
        Operation::DeleteObjects | Operation::CompleteMultipartUpload
    )
}

/// [`rewrite_xml`]'s document, not indented.
fn rewritten(
    body: &[u8],
    op: Operation,
    route: &Route<'_>,
    rewrites: &Rewrites<'_>,
) -> Option<Vec<u8>> {
    let mut reader = Reader::from_reader(body);
    let mut writer = Writer::new(Vec::with_capacity(body.len() + 64));
    let root = op.result_root();
    let mut path: Vec<Vec<u8>> = Vec::new();
    // ListBuckets: a <Bucket> element is held until its <Name> tells whether it is the tenant's.
    let mut held: Option<Vec<Event<'static>>> = None;
    let mut texts = Texts::new(op, route, rewrites, body);
    let mut keep_held = true;
    let mut rooted = false;
    loop {
        let mut event = reader.read_event().ok()?.into_owned();
        // The end, before any step, which may swallow what it reads (an element dropped whole,
        // a per-key code's text): a document cut off inside one is refused, not read for ever.
        if matches!(event, Event::Eof) {
            if !path.is_empty() || (root.is_some() && !rooted) {
                return None;
            }
            break;
        }
        // (A comment, processing instruction or document type is the backend's own words:
        // HCP's documents have none.)
        if matches!(event, Event::Comment(_) | Event::PI(_) | Event::DocType(_)) {
            continue;
        }
        if !namespace_well_formed(&event) {
            return None;
        }
        if skipped_backend_own(&mut reader, &event, (op, rewrites), &path, texts.whole)? {
            continue;
        }
        let depth = path.len();
        if let Some(encoded) = texts.url_key_piece(&path, &event) {
            pass_on(&mut writer, &mut held, encoded, None)?;
            continue;
        }
        as_hcp_writes(&mut event, op);
        rooted |= depth == 0 && one_result_root(op, root, rooted, &mut event)?;
        // A party's id or name is the gateway's to write, whole, when it closes.
        if let Some(step) = texts.step(&path, &event) {
            if step_written(&mut writer, &mut held, step)? {
                continue;
            }
        }
        match &mut event {
            Event::Start(e) => {
                // (By local names: a backend's `<s3:Name>` is a `<Name>` all the same.)
                let name = local_part(e.name().as_ref()).to_vec();
                texts.opened(depth, &name);
                path.push(name);
            }
            Event::End(e) if depth == 1 => {
                if let Some(root) = root {
                    *e = BytesEnd::new(root).into_owned();
                }
                texts.parties_before_end(&mut writer)?;
            }
            Event::End(_) if depth == 2 => texts.entry_ends(&path, &mut writer)?,
            Event::Text(_) => {
                if let Some(keep) = texts.text_in_place(&path, &mut event)? {
                    keep_held = keep;
                }
            }
            _ => {}
        }
        let is_end = matches!(event, Event::End(_));
        if user_grants_before(&mut writer, &event, rewrites.grants)? {
            continue;
        }
        let h = Held::of(op, rewrites, keep_held);
        let closes_held = is_end
            && depth.checked_sub(1).is_some_and(|d| h.at(d))
            && path.last().map(Vec::as_slice) == Some(h.name);
        match &event {
            Event::Start(e) if h.opens(depth, e) => (held, keep_held) = (Some(Vec::new()), true),
            Event::Empty(e) if !h.keep && h.opens(depth, e) => continue,
            _ => {}
        }
        pass_on(&mut writer, &mut held, event, closes_held.then_some(h.keep))?;
        if is_end {
            path.pop();
        }
    }
    Some(writer.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tenant;
    use crate::request::route::BackendRuntime;

    #[test]
    fn backend_error_documents_are_read() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key &amp; more</Message><Key>k</Key><RequestId>tx1</RequestId></Error>";
        let e = parse_backend_error(body);
        assert_eq!(e.code.as_deref(), Some("NoSuchKey"));
        assert_eq!(e.message.as_deref(), Some("The key & more"));
        assert_eq!(e.request_id.as_deref(), Some("tx1"));
    }

    #[test]
    fn checksums_reach_only_a_client_that_asked() {
        let mut up = ResponseHeader::build(200, None).unwrap();
        up.append_header("etag", "\"e\"").unwrap();
        up.append_header("x-amz-checksum-crc64nvme", "AAAAAAAAAAA=")
            .unwrap();
        up.append_header("x-amz-checksum-type", "FULL_OBJECT")
            .unwrap();
        let (id, host) = (RequestId::new(), HostId::new("h".into()).unwrap());
        let answered = |asking: &[(&str, &str)]| {
            let mut req = pingora::http::RequestHeader::build("PUT", b"/b/k", None).unwrap();
            for (n, v) in asking {
                req.append_header(n.to_string(), *v).unwrap();
            }
            let (mut resp, passed) = success_header_noting(&up, &id, &host);
            assert!(passed.checksum && !passed.version);
            answer_checksums(passed, &req, &mut resp);
            let mut names: Vec<&str> = resp
                .headers
                .keys()
                .map(http::HeaderName::as_str)
                .filter(|n| n.starts_with("x-amz-checksum-"))
                .collect();
            names.sort_unstable();
            assert!(resp.headers.contains_key("etag"));
            names.into_iter().map(str::to_string).collect::<Vec<_>>()
        };
        assert!(answered(&[("content-md5", "x")]).is_empty());
        let all = ["x-amz-checksum-crc64nvme", "x-amz-checksum-type"];
        for asking in [
            ("x-amz-checksum-mode", "ENABLED"),
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ] {
            assert_eq!(answered(&[asking]), all, "{asking:?}");
        }
    }

    #[test]
    fn passing_names_are_written_as_pingora_writes_them() {
        // The backend's name given to pingora as it is (a `HeaderName`), against the gateway's
        // own literal: the same header on the wire, byte for byte.
        let wire = |name: pingora::http::ResponseHeader| {
            let mut out = Vec::new();
            name.header_to_h1_wire(&mut out);
            out
        };
        let fixed = [
            "content-type",
            "content-length",
            "content-range",
            "content-encoding",
            "content-language",
            "content-disposition",
            "etag",
            "last-modified",
            "accept-ranges",
            "x-amz-version-id",
            "x-amz-delete-marker",
            "x-amz-copy-source-version-id",
            "x-amz-storage-class",
            "x-amz-mp-parts-count",
            "x-amz-missing-meta",
            "x-amz-server-side-encryption-customer-algorithm",
            "x-amz-server-side-encryption-customer-key-md5",
            "x-amz-object-lock-mode",
            "x-amz-object-lock-retain-until-date",
            "x-amz-object-lock-legal-hold",
        ];
        for name in [
            "x-amz-expiration",
            "x-amz-restore",
            "x-amz-tagging-count",
            "x-amz-website-redirect-location",
            "server",
            "x-amz-request-id",
            "x-amz-id-2",
            "location",
        ] {
            assert_eq!(passing(name), None, "{name} stays behind");
        }
        for name in fixed {
            let Some(Passing::Named(literal)) = passing(name) else {
                panic!("{name} is written by a literal");
            };
            let mut given = ResponseHeader::build(200, None).unwrap();
            given
                .append_header(http::HeaderName::from_static(name), "v")
                .unwrap();
            let mut named = ResponseHeader::build(200, None).unwrap();
            named.append_header(literal, "v").unwrap();
            assert_eq!(wire(given), wire(named), "{name}");
        }
        for name in ["x-amz-meta-color", "x-amz-checksum-crc32"] {
            assert_eq!(passing(name), Some(Passing::AsIs), "{name}");
        }
        // (CORS is the gateway's to decide: `request::cors`.)
        for name in [
            "access-control-allow-origin",
            "vary",
            "access-control-allow-methods",
            "server",
            "x-amz-request-id",
            "x-amz-id-2",
            "x-amz-server-side-encryption",
            "location",
            "x-amz-meta-hcp-gateway-owner",
            // (The backend's framing: its session took it off; the gateway frames its own.)
            "transfer-encoding",
            "connection",
        ] {
            assert_eq!(passing(name), None, "{name}");
        }
    }

    #[test]
    fn header_borne_and_json_errors_are_read() {
        let mut h = ResponseHeader::build(404, None).unwrap();
        h.insert_header("x-minio-error-code", "NoSuchKey").unwrap();
        assert_eq!(
            read_backend_error(&h, b"").code.as_deref(),
            Some("NoSuchKey")
        );
        let mut h = ResponseHeader::build(403, None).unwrap();
        h.insert_header("x-obs-error-code", "InsufficientStorageSpace")
            .unwrap();
        assert_eq!(
            read_backend_error(&h, b"").code.as_deref(),
            Some("InsufficientStorageSpace")
        );
        let mut h = ResponseHeader::build(400, None).unwrap();
        h.insert_header("content-type", "application/json").unwrap();
        let e = read_backend_error(
            &h,
            br#"{"code":"InvalidBucket","message":"no such","request_id":"r1"}"#,
        );
        assert_eq!(
            (e.code.as_deref(), e.request_id.as_deref()),
            (Some("InvalidBucket"), Some("r1"))
        );
        let h = ResponseHeader::build(502, None).unwrap();
        assert!(read_backend_error(&h, b"<html>bad gateway</html>").unparsable);
    }

    #[test]
    fn details_follow_the_code() {
        let be = |c: &str| BackendError {
            code: Some(c.into()),
            ..Default::default()
        };
        let e = map_backend_error(
            Dialect::Aws,
            404,
            &be("NoSuchBucket"),
            Operation::ListObjects,
            Some("b"),
            None,
        );
        assert_eq!(
            (e.code, e.bucket.as_deref()),
            (HcpCode::NoSuchBucket, Some("b"))
        );
        let e = map_backend_error(
            Dialect::Aws,
            404,
            &be("NoSuchKey"),
            Operation::GetObject,
            Some("b"),
            Some("k"),
        );
        assert_eq!((e.code, e.key.as_deref()), (HcpCode::NoSuchKey, Some("k")));
        let unparsable = BackendError {
            unparsable: true,
            ..Default::default()
        };
        let e = map_backend_error(
            Dialect::Aws,
            404,
            &unparsable,
            Operation::GetObject,
            Some("b"),
            Some("k"),
        );
        assert_eq!((e.status, e.code), (500, HcpCode::InternalError));
    }

    fn with_route<R>(f: impl FnOnce(&Route<'_>) -> R) -> R {
        with_route_in(crate::config::RetentionMode::Off, f)
    }

    fn with_route_in<R>(mode: crate::config::RetentionMode, f: impl FnOnce(&Route<'_>) -> R) -> R {
        let mut tenant = Tenant {
            name: "t".into(),
            folders: false,
            backend: "b".into(),
            bucket_prefix: "t1-".into(),
            anonymous: Default::default(),
            overwrite: crate::config::Overwrite::Allow,
            retention: Default::default(),
            records_bucket: None,
            anonymous_acls: false.into(),
            removed: false.into(),
            cors: None,
        };
        tenant.retention.mode = mode;
        let backend = BackendRuntime::for_tests();
        f(&Route {
            tenant: &tenant,
            backend: &backend,
            backend_bucket: None,
            credentials: None,
        })
    }

    /// A success document is declared as HCP declares one (`standalone="yes"`), whichever
    /// declaration its backend wrote.
    #[test]
    fn success_documents_have_hcp_s_declaration() {
        let hcp = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>";
        for declared in [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>",
            "<?xml version='1.0' encoding='utf-8'?>",
        ] {
            let body = format!("{declared}<ListBucketResult><Name>t1-b</Name></ListBucketResult>");
            let out = with_route(|r| {
                rewrite_xml(body.as_bytes(), Operation::ListObjects, r, &Rewrites::NONE)
            })
            .unwrap();
            let s = std::str::from_utf8(&out).unwrap();
            assert!(s.starts_with(hcp), "{declared}: {s}");
            // (A multi-object delete's, as HCP's example, without `standalone`.)
            let body = format!("{declared}<DeleteResult></DeleteResult>");
            let out = with_route(|r| {
                rewrite_xml(
                    body.as_bytes(),
                    Operation::DeleteObjects,
                    r,
                    &Rewrites::NONE,
                )
            })
            .unwrap();
            let s = std::str::from_utf8(&out).unwrap();
            assert!(
                s.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
                "{s}"
            );
        }
    }

    /// What a backend says about itself stays behind; what describes the object goes on.
    /// A name's nonprintable characters are shown percent-encoded (HCP), as a backend writes
    /// them raw (the store) or as references (RGW's `&#x01;`, which XML 1.0 does not allow
    /// either); a reference to a character XML carries stays as it is.
    /// A V1 listing's `NextMarker` is HCP's only where the request named a delimiter.
    #[test]
    fn next_marker_only_with_a_delimiter() {
        let body = b"<ListBucketResult><Name>t1-b</Name><IsTruncated>true</IsTruncated>\
            <NextMarker>k</NextMarker><Contents><Key>k</Key></Contents></ListBucketResult>";
        for (params, kept) in [
            (crate::request::classify::Params::default(), false),
            (
                crate::request::classify::Params::default().with("delimiter", "/"),
                true,
            ),
        ] {
            let rewrites = Rewrites {
                params: Some(&params),
                ..Rewrites::NONE
            };
            let out =
                with_route(|r| rewrite_xml(body, Operation::ListObjects, r, &rewrites)).unwrap();
            let s = std::str::from_utf8(&out).unwrap();
            assert_eq!(s.contains("<NextMarker>k</NextMarker>"), kept, "{s}");
        }
    }

    /// AWS names owners and initiators by ID alone (no `<DisplayName>` since 2025): HCP's
    /// parties have both, the display name the one the gateway names — never twice where the
    /// backend wrote one.
    #[test]
    fn a_party_without_a_display_name_gets_hcp_s() {
        let shown = crate::request::owners::Shown {
            owner: crate::request::owners::Owner::named("bGdyZWVu", "lgreen"),
            owned: None,
        };
        let rewrites = Rewrites {
            owners: Some(&shown),
            ..Rewrites::NONE
        };
        let named = format!(
            "<ID>{}</ID><DisplayName>lgreen</DisplayName>",
            shown.owner.id
        );
        for (op, body) in [
            (
                Operation::ListObjectsV2,
                "<ListBucketResult><Name>t1-b</Name><Contents><Key>k</Key>\
                 <Owner><ID>79a5</ID></Owner><Size>1</Size></Contents></ListBucketResult>",
            ),
            (
                Operation::ListBuckets,
                "<ListAllMyBucketsResult><Owner><ID>79a5</ID></Owner><Buckets>\
                 <Bucket><Name>t1-b</Name><CreationDate>d</CreationDate></Bucket>\
                 </Buckets></ListAllMyBucketsResult>",
            ),
            (
                Operation::ListParts,
                "<ListPartsResult><Bucket>t1-b</Bucket><Initiator><ID>79a5</ID></Initiator>\
                 <Owner><ID>79a5</ID><DisplayName>x</DisplayName></Owner></ListPartsResult>",
            ),
            (
                Operation::GetObjectAcl,
                "<AccessControlPolicy><Owner><ID>79a5</ID></Owner><AccessControlList>\
                 <Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
                 xsi:type=\"CanonicalUser\"><ID>79a5</ID></Grantee>\
                 <Permission>FULL_CONTROL</Permission></Grant></AccessControlList>\
                 </AccessControlPolicy>",
            ),
        ] {
            let out = with_route(|r| rewrite_xml(body.as_bytes(), op, r, &rewrites)).expect("XML");
            let s = std::str::from_utf8(&out).unwrap();
            let parties = s.matches("<Owner>").count()
                + s.matches("<Initiator>").count()
                + s.matches("<Grantee ").count();
            assert_eq!(s.matches(&named).count(), parties, "{op:?}: {s}");
            assert_eq!(s.matches("<DisplayName>").count(), parties, "{op:?}: {s}");
        }
    }

    /// The checksums a backend keeps of its own accord reach no copy's or complete's result
    /// and no listing's entry (HCP's have none); a ListParts and a part copy keep their parts'.
    #[test]
    fn a_backend_s_own_checksums_stay_behind() {
        let result = |root: &str| {
            format!(
                "<{root}><ETag>\"e\"</ETag><LastModified>d</LastModified>\
                 <ChecksumCRC64NVME>AAAAAAAAAAA=</ChecksumCRC64NVME>\
                 <ChecksumType>FULL_OBJECT</ChecksumType></{root}>"
            )
        };
        let (copied, part, completed) = (
            result("CopyObjectResult"),
            result("CopyPartResult"),
            result("CompleteMultipartUploadResult"),
        );
        let listed = b"<ListBucketResult><Name>t1-b</Name><Contents><Key>k</Key>\
            <ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType>\
            <Size>1</Size></Contents></ListBucketResult>";
        let parts = b"<ListPartsResult><Bucket>t1-b</Bucket><Part><PartNumber>1</PartNumber>\
            <ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></ListPartsResult>";
        for (op, body, kept) in [
            (Operation::CopyObject, copied.as_bytes(), false),
            (Operation::UploadPartCopy, part.as_bytes(), true),
            (
                Operation::CompleteMultipartUpload,
                completed.as_bytes(),
                false,
            ),
            (Operation::ListObjectsV2, &listed[..], false),
            (Operation::ListParts, &parts[..], true),
        ] {
            let out = with_route(|r| rewrite_xml(body, op, r, &Rewrites::NONE)).expect("XML");
            let s = std::str::from_utf8(&out).unwrap();
            assert_eq!(s.contains("Checksum"), kept, "{op:?}: {s}");
            assert!(
                s.contains("<ETag>") || s.contains("<Key>k</Key>") || kept,
                "{s}"
            );
        }
    }

    #[test]
    fn names_are_displayed_with_their_nonprintable_characters_encoded() {
        for (key, shown) in [
            ("a&#x01;b", "a%01b"),
            ("a\u{2}b", "a%02b"),
            ("x&#65;&amp;&#x7f;", "x&#65;&amp;%7F"),
        ] {
            let body = format!(
                "<ListBucketResult><Name>t1-b</Name><Contents><Key>{key}</Key></Contents>\
                 </ListBucketResult>"
            );
            let out = with_route(|r| {
                rewrite_xml(body.as_bytes(), Operation::ListObjects, r, &Rewrites::NONE)
            })
            .unwrap();
            let s = std::str::from_utf8(&out).unwrap();
            assert!(s.contains(&format!("<Key>{shown}</Key>")), "{key}: {s}");
        }
        // (RGW's continuation token is the last key itself.)
        let body = b"<ListBucketResult><NextContinuationToken>a&#x01;</NextContinuationToken>\
                     </ListBucketResult>";
        let out = with_route(|r| rewrite_xml(body, Operation::ListObjectsV2, r, &Rewrites::NONE));
        let out = String::from_utf8(out.unwrap().to_vec()).unwrap();
        assert!(out.contains(">a%01</NextContinuationToken>"), "{out}");
    }

    /// A backend's length given twice, or as a list of the same length (which framed its
    /// body), is passed on once: one `Content-Length`, one value.
    #[test]
    fn one_content_length_is_passed_on() {
        let host = HostId::new("host".into()).unwrap();
        let id = RequestId::new();
        for given in [&["4", "4"][..], &["4, 4"], &["4 ,4"], &["4"]] {
            let mut up = ResponseHeader::build(200, None).unwrap();
            for v in given {
                up.append_header("content-length", *v).unwrap();
            }
            let out = success_header(&up, &id, &host);
            let lengths: Vec<_> = out.headers.get_all("content-length").iter().collect();
            assert_eq!(lengths, ["4"], "{given:?}");
        }
    }

    #[test]
    fn only_object_and_transfer_headers_pass() {
        let mut up = ResponseHeader::build(200, None).unwrap();
        for (n, v) in [
            ("etag", "\"e\""),
            ("content-length", "4"),
            ("x-amz-meta-color", "red"),
            ("x-amz-version-id", "v1"),
            ("access-control-allow-origin", "http://a"),
            ("x-amz-server-side-encryption", "aws:kms"),
            (
                "x-amz-server-side-encryption-aws-kms-key-id",
                "arn:aws:kms:eu-west-1:123456789012:key/k",
            ),
            ("x-amz-bucket-region", "eu-west-1"),
            ("location", "/t1-bucket"),
            ("set-cookie", "lb=backend-7"),
            ("via", "1.1 backend-proxy"),
            ("server", "Ceph Object Gateway"),
            ("x-rgw-object-type", "Normal"),
            ("x-amz-request-id", "tx000-backend"),
            (
                "x-obs-server-side-encryption-kms-key-id",
                "cn-north-4:domain:key/k",
            ),
            ("x-obs-meta-color", "blue"),
        ] {
            up.append_header(n, v).unwrap();
        }
        let host = HostId::new("host".into()).unwrap();
        let id = RequestId::new();
        let out = success_header(&up, &id, &host);
        for kept in [
            "etag",
            "content-length",
            "x-amz-meta-color",
            "x-amz-version-id",
        ] {
            assert!(out.headers.contains_key(kept), "{kept} dropped");
        }
        assert!(
            !out.headers.contains_key("access-control-allow-origin"),
            "the backend's own CORS decision passed"
        );
        // HCP's encryption answer is for a write that asked, and it is HCP's.
        let mut asked = success_header(&up, &id, &host);
        answer_encryption(true, &up, &mut asked);
        assert_eq!(
            asked
                .headers
                .get_all("x-amz-server-side-encryption")
                .iter()
                .collect::<Vec<_>>(),
            ["AES256"]
        );
        for dropped in [
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id",
            "x-amz-bucket-region",
            "location",
            "set-cookie",
            "via",
            "x-rgw-object-type",
            "x-amz-server-side-encryption-kms-key-id",
            "x-obs-server-side-encryption-kms-key-id",
        ] {
            assert!(!out.headers.contains_key(dropped), "{dropped} passed");
        }
        // (The server is HCP, never the backend.)
        let servers: Vec<_> = out.headers.get_all("server").iter().collect();
        assert_eq!(servers, ["HCP V9.0.0.2"]);
        assert_eq!(
            out.headers
                .get_all("x-amz-request-id")
                .iter()
                .collect::<Vec<_>>(),
            [&*id],
            "the gateway's request id, the backend's left behind"
        );
    }

    /// OBS's native names for S3's object headers come back under S3's; OBS's own headers, a
    /// `null` version and the gateway's reserved metadata stay behind.
    #[test]
    fn obs_object_headers_pass_under_s3_s_names() {
        let mut up = ResponseHeader::build(200, None).unwrap();
        for (n, v) in [
            ("x-obs-meta-color", "blue"),
            ("x-obs-version-id", "v2"),
            ("x-obs-storage-class", "STANDARD"),
            ("x-obs-request-id", "obs-req"),
            ("x-obs-id-2", "obs-host"),
            ("x-obs-meta-hcp-gateway-owner", "someone"),
            ("x-obs-object-type", "Appendable"),
        ] {
            up.append_header(n, v).unwrap();
        }
        let host = HostId::new("host".into()).unwrap();
        let id = RequestId::default();
        let out = success_header(&up, &id, &host);
        let wire = |out: &ResponseHeader| {
            let mut buf = Vec::new();
            out.header_to_h1_wire(&mut buf);
            String::from_utf8(buf).unwrap()
        };
        let text = wire(&out);
        for line in [
            "x-amz-meta-color: blue\r\n",
            "x-amz-version-id: v2\r\n",
            "x-amz-storage-class: STANDARD\r\n",
        ] {
            assert!(text.contains(line), "{line:?} not in {text}");
        }
        for gone in ["obs", "someone", "hcp-gateway", "Appendable"] {
            assert!(!text.contains(gone), "{gone:?} in {text}");
        }
        up.insert_header("x-obs-version-id", "null").unwrap();
        let text = wire(&success_header(&up, &id, &host));
        assert!(!text.contains("version-id"), "{text}");
    }

    /// Answers start from a template the thread keeps for its host id (one at a time: a thread
    /// that serves another host id makes it again): whichever host ids alternate on a thread,
    /// each answer carries its own host id once, its request's id and its status.
    #[test]
    fn answers_carry_their_own_host_and_request_ids() {
        let up = ResponseHeader::build(200, None).unwrap();
        let err = crate::hcp::errors::HcpError::new(crate::hcp::errors::HcpCode::NoSuchKey);
        let hosts = ["a", "b", "a", "a"].map(|h| HostId::new(h.into()).unwrap());
        for host in &hosts {
            let id = RequestId::new();
            for resp in [
                success_header(&up, &id, host),
                error_header(&err, 7, &id, host),
            ] {
                assert_eq!(resp.headers.get_all("x-amz-id-2").iter().count(), 1);
                assert_eq!(resp.headers["x-amz-id-2"], &**host);
                assert_eq!(resp.headers.get_all("x-amz-request-id").iter().count(), 1);
                assert_eq!(resp.headers["x-amz-request-id"], &*id);
                assert!(resp.headers.contains_key("x-frame-options"));
                // On the wire too: the template's name with this answer's id, once.
                let mut wire = Vec::new();
                resp.header_to_h1_wire(&mut wire);
                let wire = String::from_utf8(wire).unwrap();
                assert_eq!(wire.matches("x-amz-request-id").count(), 1, "{wire}");
                assert!(
                    wire.contains(&format!("\r\nx-amz-request-id: {}\r\n", &*id)),
                    "{wire}"
                );
            }
            assert_eq!(error_header(&err, 7, &id, host).status, 404);
            assert_eq!(success_header(&up, &id, host).status, 200);
        }
    }

    /// A 200 whose document is not one whole result is not rewritten into one: empty, not XML,
    /// an `<Error>` root, another document, a second root, or cut off before it closes; whole
    /// documents (self-closing ones too, and the known other names of a root) are.
    #[test]
    fn only_whole_results_are_rewritten() {
        let refused: &[(Operation, &[u8])] = &[
            (Operation::CompleteMultipartUpload, b""),
            (Operation::CompleteMultipartUpload, b"  \n"),
            (Operation::CompleteMultipartUpload, b"xx not xml"),
            (Operation::CompleteMultipartUpload, b"<Error/>"),
            (Operation::CompleteMultipartUpload, b"<Error><Code>InternalError</Code></Error>"),
            (Operation::CompleteMultipartUpload, b"<InternalFailure><Code>x</Code></InternalFailure>"),
            (Operation::CompleteMultipartUpload, b"<CompleteMultipartUploadResult><ETag>e</ETag>"),
            (Operation::CompleteMultipartUpload, b"<CompleteMultipartUploadResult></CompleteMultipartUploadResult><CompleteMultipartUploadResult/>"),
            (Operation::ListObjectsV2, b"<ListBucketResult><Name>b</Name><Contents><Key>k</Key>"),
            (Operation::ListObjectsV2, b"<ListAllMyBucketsResult/>"),
            (Operation::UploadPartCopy, b"<CompleteMultipartUploadResult><ETag>e</ETag></CompleteMultipartUploadResult>"),
            (Operation::GetBucketVersioning, b""),
            // Cut off inside what a step swallows: an element of the backend's own in an
            // entry, a per-key code or message.
            (Operation::DeleteObjects, b"<DeleteResult><Deleted><Key>k</Key><Resource>x"),
            (Operation::DeleteObjects, b"<DeleteResult><Error><Key>k</Key><Code>NoSuchKey"),
            (Operation::DeleteObjects, b"<DeleteResult><Error><Key>k</Key><Message>m"),
        ];
        for (op, body) in refused {
            // (On a thread of its own: a rewrite that never ends fails the test, not hangs it.)
            let (op, body) = (*op, body.to_vec());
            let (done, answer) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let out = with_route(|r| rewrite_xml(&body, op, r, &Rewrites::NONE));
                let _ = done.send((out.is_none(), body));
            });
            let (refused, body) = answer
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{op:?}: the rewrite never ended"));
            assert!(refused, "{op:?} {:?}", String::from_utf8_lossy(&body));
        }
        let whole: &[(Operation, &[u8], &str)] = &[
            (Operation::CompleteMultipartUpload, b"<?xml version=\"1.0\"?>\n<CompleteMultipartUploadResult><ETag>e</ETag></CompleteMultipartUploadResult>\n", "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"),
            (Operation::GetBucketVersioning, b"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>", "<VersioningConfiguration"),
            (Operation::UploadPartCopy, b"<CopyObjectResult><ETag>e</ETag></CopyObjectResult>", "<CopyPartResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"),
            (Operation::DeleteObjects, b"<s3:DeleteResult xmlns:s3=\"urn:s3\"/>", "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\" xmlns:s3=\"urn:s3\"/>"),
            // OBS's own namespace names the backend: S3's in its place.
            (Operation::CopyObject, b"<CopyObjectResult xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\"><ETag>e</ETag></CopyObjectResult>", "<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ETag>"),
            (Operation::ListObjectsV2, b"<s3:ListBucketResult xmlns:s3=\"urn:s3\"><Name>t1-b</Name></s3:ListBucketResult>", "<ListBucketResult"),
        ];
        for (op, body, starts) in whole {
            let out = with_route(|r| rewrite_xml(body, *op, r, &Rewrites::NONE));
            let out = String::from_utf8(out.expect("whole").to_vec()).unwrap();
            assert!(out.contains(starts), "{op:?}: {out}");
        }
    }

    /// A multi-object delete's per-key errors: the code as HCP's (a code in no table is
    /// InternalError), HCP's message for it; nothing of the backend's words passes — text,
    /// CDATA or entities — while keys, versions and deleted entries stay.
    /// A version the backend's lock refused to delete is HCP's 409 OperationAborted, as a
    /// single DELETE of it answers, in every tenant and wherever the backend writes its
    /// `VersionId` (MinIO: after the code); an object named without one keeps its code.
    #[test]
    fn locked_versions_in_a_delete_result_are_operation_aborted() {
        let body = b"<DeleteResult>\
            <Error><Code>AccessDenied</Code><Message>locked</Message><Key>a</Key><VersionId>v1</VersionId></Error>\
            <Error><Key>b</Key><Code>AccessDenied</Code><Message>policy</Message></Error>\
            <Error><Key>c</Key><VersionId>v2</VersionId><Code>AccessDenied</Code></Error></DeleteResult>";
        for mode in [
            crate::config::RetentionMode::Enterprise,
            crate::config::RetentionMode::Off,
        ] {
            let out = with_route_in(mode, |r| {
                rewrite_xml(body, Operation::DeleteObjects, r, &Rewrites::NONE)
            });
            let out = String::from_utf8(out.unwrap().to_vec()).unwrap();
            let codes: Vec<&str> = out
                .split("<Code>")
                .skip(1)
                .filter_map(|rest| rest.split("</Code>").next())
                .collect();
            assert_eq!(
                codes,
                ["OperationAborted", "AccessDenied", "OperationAborted"],
                "{mode:?}: {out}"
            );
        }
    }

    /// MinIO refuses a version Object Lock keeps with InvalidRequest ("Object is WORM
    /// protected"), in a multi-object delete's per-key Error too: HCP's 409 OperationAborted
    /// with the locked version's message, as AWS's AccessDenied gets.
    #[test]
    fn minio_s_locked_versions_in_a_delete_result_are_hcp_s_409() {
        let body = b"<DeleteResult><Error><Key>k1</Key><VersionId>v1</VersionId>\
            <Code>InvalidRequest</Code><Message>Object is WORM protected and cannot be overwritten</Message>\
            </Error></DeleteResult>";
        let tenant = Tenant::for_tests();
        let mut backend = BackendRuntime::for_tests();
        backend.dialect = Dialect::Minio;
        let route = Route {
            tenant: &tenant,
            backend: &backend,
            backend_bucket: None,
            credentials: None,
        };
        let out = rewrite_xml(body, Operation::DeleteObjects, &route, &Rewrites::NONE).unwrap();
        let out = String::from_utf8(out.to_vec()).unwrap();
        assert!(
            out.contains(&format!("<VersionId>v1</VersionId><Code>OperationAborted</Code><Message>{LOCKED_VERSION}</Message>")),
            "{out}"
        );
    }

    #[test]
    fn delete_results_carry_hcp_codes_and_messages_only() {
        let body = b"<DeleteResult><Deleted><Key>gone</Key></Deleted>\
            <Error><Key>k1</Key><VersionId>v1</VersionId><Code>AccessDenied</Code><Message>denied by rgw zone eu-internal-7 on bucket secretprefix-b</Message></Error>\
            <Error><Key>k2</Key><Code>Zone&amp;Failure</Code><Message><![CDATA[host s3.backend.internal]]> and &lt;more&gt;</Message></Error>\
            <Error><Key>k3</Key><Code><![CDATA[NoSuchKey]]></Code><Message/></Error>\
            <Error><Key>k4</Key><Message>first <b>zone <i>eu-internal-9</i></b></Message><Code>AccessDenied</Code></Error>\
            <s3:Error xmlns:s3=\"urn:s3\"><s3:Key>k5</s3:Key><s3:Code>AccessDenied</s3:Code><s3:Message>rgw zone</s3:Message></s3:Error></DeleteResult>";
        let out = with_route(|r| rewrite_xml(body, Operation::DeleteObjects, r, &Rewrites::NONE));
        let out = String::from_utf8(out.unwrap().to_vec()).unwrap();
        for leak in [
            "rgw",
            "eu-internal",
            "secretprefix",
            "backend.internal",
            "more",
            "Zone",
        ] {
            assert!(!out.contains(leak), "{leak}: {out}");
        }
        let denied = HcpCode::AccessDenied.default_message();
        let internal = HcpCode::InternalError.default_message();
        assert!(
            out.contains(&format!("<Error><Key>k1</Key><VersionId>v1</VersionId><Code>OperationAborted</Code><Message>{LOCKED_VERSION}</Message></Error>")),
            "{out}"
        );
        assert!(
            out.contains(&format!("<Error><Key>k2</Key><Code>InternalError</Code><Message>{internal}</Message></Error>")),
            "{out}"
        );
        // An empty message: the code's.
        let no_such_key = HcpCode::NoSuchKey.default_message();
        assert!(
            out.contains(&format!(
                "<Key>k3</Key><Code>NoSuchKey</Code><Message>{no_such_key}</Message>"
            )),
            "{out}"
        );
        // A message before its code: its code's, read before (written in HCP's order: code,
        // then message).
        assert!(
            out.contains(&format!(
                "<Key>k4</Key><Code>AccessDenied</Code><Message>{denied}</Message>"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "<Key>k5</Key><Code>AccessDenied</Code><Message>{denied}</Message>"
            )),
            "{out}"
        );
        assert!(out.contains("<Deleted><Key>gone</Key></Deleted>"), "{out}");
    }

    /// A multi-object delete's entries keep HCP's elements alone, and each `<Error>` its own
    /// code however the backend prefixes its names (`a:Error` is an `<Error>` to the rewrite
    /// and to the codes read before); a name of two colons refuses the document.
    #[test]
    fn delete_results_keep_hcp_s_elements_alone() {
        let body = b"<DeleteResult>rgw zone eu-internal-1\
            <Deleted><Key>k</Key><Error><Code>X</Code><Message>zone eu-internal-2</Message></Error><DeleteMarker>true</DeleteMarker></Deleted>\
            <Error>rgw zone eu-internal-3<Key>k0</Key><Code>AccessDenied</Code><Message>m</Message><Resource>/t1-secret/k</Resource><Extra/></Error>\
            <a:Error xmlns:a=\"urn:a\"><Key>k1</Key><Code>NoSuchKey</Code><Message/></a:Error>\
            <Error><Key>k2</Key><VersionId>v2</VersionId><Code>AccessDenied</Code><Message/></Error></DeleteResult>";
        let out = with_route(|r| rewrite_xml(body, Operation::DeleteObjects, r, &Rewrites::NONE));
        let out = String::from_utf8(out.unwrap().to_vec()).unwrap();
        for leak in [
            "eu-internal",
            "t1-secret",
            "rgw",
            "Resource",
            "Extra",
            "<Code>X",
        ] {
            assert!(!out.contains(leak), "{leak}: {out}");
        }
        assert!(
            out.contains("<Deleted><Key>k</Key><DeleteMarker>true</DeleteMarker></Deleted>"),
            "{out}"
        );
        let denied = HcpCode::AccessDenied.default_message();
        assert!(
            out.contains(&format!(
                "<Key>k0</Key><Code>AccessDenied</Code><Message>{denied}</Message></Error>"
            )),
            "{out}"
        );
        assert!(out.contains("<Key>k1</Key><Code>NoSuchKey</Code>"), "{out}");
        assert!(
            out.contains(&format!("<Key>k2</Key><VersionId>v2</VersionId><Code>OperationAborted</Code><Message>{LOCKED_VERSION}</Message>")),
            "{out}"
        );
        // A name of two colons, in any document: none the gateway reads.
        for (op, body) in [
            (
                Operation::DeleteObjects,
                &b"<DeleteResult><a:b:Error><Key>k</Key></a:b:Error></DeleteResult>"[..],
            ),
            (
                Operation::ListObjects,
                b"<ListBucketResult><a:b:Contents><Key>k</Key></a:b:Contents></ListBucketResult>",
            ),
        ] {
            assert!(with_route(|r| rewrite_xml(body, op, r, &Rewrites::NONE)).is_none());
        }
    }

    /// A multi-object delete's answer as a backend might write it ([`delete_results_hold_each_key_s_own_code_and_no_backend_word`]),
    /// and the `(key, backend code, versioned)` of each `<Error>` in it, in order. `next(n)`
    /// draws below `n`.
    fn generated_delete_result(
        next: &mut impl FnMut(usize) -> usize,
        round: usize,
    ) -> (String, Vec<(String, &'static str, bool)>) {
        let codes = ["NoSuchKey", "AccessDenied", "InternalError", "SECRET-code"];
        let mut doc = String::from(
            "<s3:DeleteResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\" xmlns:a=\"urn:a\">",
        );
        let mut expected = Vec::new();
        for i in 0..1 + next(6) {
            // (Now and then a name of two colons, which refuses the document.)
            let prefix = ["a:b:", "s3:", "s3:", "a:", "a:", "", "", "", "", ""][next(10)];
            let foreign = |n: usize| match n {
                0 => "SECRET-text".to_string(),
                1 => format!("<{prefix}Resource>/SECRET-bucket/k</{prefix}Resource>"),
                2 => "<X><Y>SECRET-nested</Y><Error><Code>SECRET</Code></Error></X>".into(),
                3 => "<!-- SECRET-comment --><?SECRET-pi x?>".into(),
                _ => "<Z/>".into(),
            };
            let key = format!("k{round}-{i}");
            let versioned = next(2) == 0;
            let mut children = vec![format!("<{prefix}Key>{key}</{prefix}Key>")];
            if versioned {
                children.push(format!("<{prefix}VersionId>v{i}</{prefix}VersionId>"));
            }
            let error = next(3) > 0;
            let name = if error { "Error" } else { "Deleted" };
            if error {
                let code = codes[next(codes.len())];
                let spelt = match next(3) {
                    0 => code.to_string(),
                    1 => format!("<![CDATA[{code}]]>"),
                    _ => format!("&#{};{}", u32::from(code.as_bytes()[0]), &code[1..]),
                };
                children.push(format!("<{prefix}Code>{spelt}</{prefix}Code>"));
                children.push(match next(3) {
                    0 => format!("<{prefix}Message/>"),
                    _ => format!("<{prefix}Message>SECRET zone {i}</{prefix}Message>"),
                });
                expected.push((key, code, versioned));
            } else if next(2) == 0 {
                children.push(format!("<{prefix}DeleteMarker>true</{prefix}DeleteMarker>"));
            }
            for _ in 0..next(3) {
                let at = next(children.len() + 1);
                children.insert(at, foreign(next(5)));
            }
            // HCP's elements in any order (the Key first or not).
            for j in (1..children.len()).rev() {
                children.swap(j, next(j + 1));
            }
            doc.push_str(&format!(
                "<{prefix}{name}>{}</{prefix}{name}>",
                children.concat()
            ));
            if next(4) == 0 {
                doc.push_str("SECRET-between");
            }
        }
        doc.push_str("</s3:DeleteResult>");
        (doc, expected)
    }

    /// An oracle over generated multi-object delete answers: entries under any prefix (one
    /// colon, two, none), HCP's elements in any order and spelling (text, CDATA, a character
    /// reference), the backend's own elements and words around them. Whatever the document,
    /// none of the backend's words pass, and each `<Error>` names its own key with HCP's code
    /// for its own backend code (a version's refusal, the lock's), its message that code's.
    #[test]
    fn delete_results_hold_each_key_s_own_code_and_no_backend_word() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let denied = HcpCode::AccessDenied.default_message();
        let no_such_key = HcpCode::NoSuchKey.default_message();
        let internal = HcpCode::InternalError.default_message();
        for round in 0..300 {
            let (doc, expected) = generated_delete_result(&mut next, round);
            let out = with_route(|r| {
                rewrite_xml(doc.as_bytes(), Operation::DeleteObjects, r, &Rewrites::NONE)
            });
            // (A name of two colons is no name XML's namespaces allow: the document is none
            // the gateway reads.)
            if doc.contains("<a:b:") {
                assert!(out.is_none(), "{doc}");
                continue;
            }
            let out = String::from_utf8(out.unwrap().to_vec()).unwrap();
            assert!(!out.contains("SECRET"), "{doc}\n{out}");
            let mut at = 0;
            for (key, code, versioned) in expected {
                // (Stated, not computed as the rewrite computes it: a version the lock
                // refused is HCP's 409; a code in no table InternalError.)
                let (code, message) = match (code, versioned) {
                    ("AccessDenied", true) => (HcpCode::OperationAborted, LOCKED_VERSION),
                    ("AccessDenied", false) => (HcpCode::AccessDenied, denied),
                    ("NoSuchKey", _) => (HcpCode::NoSuchKey, no_such_key),
                    _ => (HcpCode::InternalError, internal),
                };
                let entry = out[at..].find(&format!("<Key>{key}</Key>")).map(|i| at + i);
                let entry = entry.unwrap_or_else(|| panic!("{key}: {doc}\n{out}"));
                let end = entry + out[entry..].find("</Error>").unwrap();
                let within = &out[entry..end];
                assert!(
                    within.contains(&format!("<Code>{}</Code>", code.as_str()))
                        && within.contains(&format!("<Message>{message}</Message>")),
                    "{key}: {doc}\n{out}"
                );
                at = end;
            }
        }
    }

    #[test]
    fn quiet_deletes_answer_only_what_was_not_deleted() {
        let body = b"<DeleteResult><Deleted><Key>a</Key><VersionId>v</VersionId></Deleted>\
            <s3:Deleted xmlns:s3=\"urn:s3\"><s3:Key>b</s3:Key></s3:Deleted><Deleted/>\
            <Error><Key>c</Key><Code>NoSuchKey</Code><Message/></Error>\
            <Deleted><Key>d</Key><DeleteMarker>true</DeleteMarker></Deleted></DeleteResult>";
        let quiet = Rewrites {
            quiet: true,
            ..Rewrites::NONE
        };
        let out = with_route(|r| rewrite_xml(body, Operation::DeleteObjects, r, &quiet));
        let out = String::from_utf8(out.unwrap().to_vec()).unwrap();
        assert!(!out.contains("Deleted") && !out.contains("<Key>a") && !out.contains("<Key>d"));
        assert!(
            out.contains("<Error><Key>c</Key><Code>NoSuchKey</Code>"),
            "{out}"
        );
        assert!(out.ends_with("</DeleteResult>"), "{out}");
        // Not quiet: every entry as the backend listed it.
        let out = with_route(|r| rewrite_xml(body, Operation::DeleteObjects, r, &Rewrites::NONE));
        let out = String::from_utf8(out.unwrap().to_vec()).unwrap();
        assert_eq!(out.matches("<Deleted").count(), 4, "{out}");
        // A listing's own `<Deleted>`-named key is not an entry of a delete's answer.
        let listing =
            b"<ListBucketResult><Contents><Key>Deleted</Key></Contents></ListBucketResult>";
        let out = with_route(|r| rewrite_xml(listing, Operation::ListObjectsV2, r, &quiet));
        assert!(String::from_utf8(out.unwrap().to_vec())
            .unwrap()
            .contains("Deleted"));
    }

    #[test]
    fn non_standard_roots_get_s3s_names() {
        let body = b"<?xml version=\"1.0\"?><ListPartsResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>t1-a</Bucket><Initiator><ID>x</ID></Initiator><Owner><ID>x</ID></Owner></ListPartsResponse>";
        let (out, tenant) = with_route(|r| {
            let out = rewrite_xml(body, Operation::ListParts, r, &Rewrites::NONE);
            (
                out.unwrap(),
                crate::request::route::tenant_owner_id(r.tenant),
            )
        });
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>a</Bucket><Initiator><ID>{tenant}</ID><DisplayName>t</DisplayName></Initiator><Owner><ID>{tenant}</ID><DisplayName>t</DisplayName></Owner></ListPartsResult>")
        );
    }

    /// A party's id and name are written whole by the gateway: nothing of the backend's
    /// survives in them (entities, CDATA), empty ones of owners are filled, a group grantee's
    /// empty name stays empty.
    #[test]
    fn parties_are_written_whole() {
        let body = b"<AccessControlPolicy><Owner><ID>&#49;2<![CDATA[main]]></ID><DisplayName/></Owner>\
            <AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\"><DisplayName></DisplayName><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant>\
            <Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>main</ID><DisplayName>R&amp;D</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>";
        let shown = lgreen();
        let rewrites = Rewrites {
            owners: Some(&shown),
            ..Rewrites::NONE
        };
        let out = with_route(|r| rewrite_xml(body, Operation::GetBucketAcl, r, &rewrites)).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        let party = party_of(&shown);
        assert!(s.contains(&format!("<Owner>{party}</Owner>")), "{s}");
        assert!(
            s.contains(&format!("CanonicalUser\">{party}</Grantee>")),
            "{s}"
        );
        assert!(s.contains("<DisplayName></DisplayName><URI>"), "{s}");
        for backend in ["main", "12", "R&amp;D"] {
            assert!(!s.contains(backend), "{backend} in {s}");
        }
    }

    /// lgreen, shown as the owner.
    fn lgreen() -> crate::request::owners::Shown {
        crate::request::owners::Shown {
            owner: crate::request::owners::Owner::named("bGdyZWVu", "lgreen"),
            owned: None,
        }
    }

    /// An owner's `ID` and `DisplayName` as answers write them.
    fn party_of(shown: &crate::request::owners::Shown) -> String {
        let (id, name) = (&shown.owner.id, &shown.owner.name);
        format!("<ID>{id}</ID><DisplayName>{name}</DisplayName>")
    }

    /// HCP's ListParts names the initiator and owner; a backend that leaves them out gets
    /// them added, where HCP names them (after the upload's id, before its parts).
    #[test]
    fn list_parts_names_its_initiator_and_owner() {
        let body = b"<ListPartsResult><Bucket>t1-a</Bucket><Part><PartNumber>1</PartNumber></Part></ListPartsResult>";
        let shown = lgreen();
        let rewrites = Rewrites {
            owners: Some(&shown),
            ..Rewrites::NONE
        };
        let out = with_route(|r| rewrite_xml(body, Operation::ListParts, r, &rewrites)).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        let party = party_of(&shown);
        let named =
            format!("<Bucket>a</Bucket><Initiator>{party}</Initiator><Owner>{party}</Owner><Part>");
        assert!(s.contains(&named), "{s}");
        // RGW names an owner (without display name) and no initiator: the initiator is
        // added, the owner's name filled in.
        let rgw = b"<ListPartsResult><Bucket>t1-a</Bucket><Owner><ID>main</ID><DisplayName></DisplayName></Owner></ListPartsResult>";
        let out = with_route(|r| rewrite_xml(rgw, Operation::ListParts, r, &rewrites)).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert_eq!(s.matches("<Owner>").count(), 1, "{s}");
        assert_eq!(s.matches("<Initiator>").count(), 1, "{s}");
        assert!(!s.contains("main"), "{s}");
        assert!(s.contains(&format!("<Owner>{party}</Owner>")), "{s}");
    }

    /// HCP's ListMultipartUploads names each upload's initiator as its initiator and owner:
    /// the user where known (in place of the backend account's, RGW's), else the caller where
    /// owners are kept; a backend that leaves them out (the store) gets them added.
    #[test]
    fn upload_listings_name_each_upload_s_initiator() {
        let store = b"<ListMultipartUploadsResult><Bucket>t1-a</Bucket>\
            <Upload><Key>k1</Key><UploadId>known</UploadId></Upload>\
            <Upload><Key>k2</Key><UploadId>other</UploadId></Upload></ListMultipartUploadsResult>";
        let rgw = b"<ListMultipartUploadsResult><Bucket>t1-a</Bucket>\
            <Upload><Key>k1</Key><UploadId>known</UploadId><Initiator><ID>main</ID>\
            <DisplayName>M</DisplayName></Initiator><Owner><ID>main</ID><DisplayName/></Owner></Upload>\
            <Upload><Key>k2</Key><UploadId>other</UploadId><Initiator><ID>main</ID>\
            <DisplayName>M</DisplayName></Initiator><Owner><ID>main</ID><DisplayName/></Owner></Upload>\
            </ListMultipartUploadsResult>";
        let shown = lgreen();
        let pdgrey = crate::request::owners::Owner::named("cGRncmV5", "pdgrey");
        let initiator = |id: &str| (id == "known").then(|| pdgrey.clone());
        let rewrites = Rewrites {
            owners: Some(&shown),
            initiator: &initiator,
            ..Rewrites::NONE
        };
        let known = format!("<ID>{}</ID><DisplayName>pdgrey</DisplayName>", pdgrey.id);
        let caller = party_of(&shown);
        for body in [&store[..], &rgw[..]] {
            let op = Operation::ListMultipartUploads;
            let out = with_route(|r| rewrite_xml(body, op, r, &rewrites)).unwrap();
            let s = std::str::from_utf8(&out).unwrap();
            let uploads: Vec<&str> = s.split("<Upload>").skip(1).collect();
            assert_eq!(uploads.len(), 2, "{s}");
            for (upload, party) in uploads.iter().zip([&known, &caller]) {
                for tag in ["Initiator", "Owner"] {
                    let named = format!("<{tag}>{party}</{tag}>");
                    assert_eq!(upload.matches(&named).count(), 1, "{tag}: {s}");
                }
            }
            assert!(!s.contains("main") && !s.contains(">M<"), "{s}");
        }
        // Where owners are not kept, the tenant.
        let out =
            with_route(|r| rewrite_xml(store, Operation::ListMultipartUploads, r, &Rewrites::NONE))
                .unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert_eq!(s.matches("<DisplayName>t</DisplayName>").count(), 4, "{s}");
    }

    #[test]
    fn list_buckets_keeps_only_the_tenants_buckets() {
        let body = b"<ListAllMyBucketsResult><Owner><ID>o</ID></Owner><Buckets>\
            <Bucket><Name>t1-alpha</Name><CreationDate>d</CreationDate></Bucket>\
            <Bucket><Name>t2-beta</Name><CreationDate>d</CreationDate></Bucket>\
            <Bucket><Name>t1-gamma</Name><CreationDate>d</CreationDate></Bucket>\
            </Buckets></ListAllMyBucketsResult>";
        let out =
            with_route(|r| rewrite_xml(body, Operation::ListBuckets, r, &Rewrites::NONE)).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(
            s.contains("<Name>alpha</Name>") && s.contains("<Name>gamma</Name>"),
            "{s}"
        );
        assert!(!s.contains("beta") && !s.contains("t1-"), "{s}");
    }

    /// Nothing says where or whose the backend is: RGW's `<Tenant>` under a listing's, an
    /// upload's or a part list's root, a bucket's region or kind in a ListBuckets (OBS, AWS),
    /// RGW's `<Type>` of each listed object and `<MfaDelete>` of its versioning document, as
    /// each writes them (with its namespace prefix, self-closed, holding elements).
    #[test]
    fn the_backend_s_place_and_account_are_dropped() {
        let cases: [(Operation, &[u8]); 9] = [
            (
                Operation::ListObjectsV2,
                b"<ListBucketResult><Name>t1-b</Name><Contents><Key>k</Key>\
                  <Type>acct-7</Type></Contents><Contents><Key>k2</Key><Type/></Contents>\
                  </ListBucketResult>",
            ),
            (
                Operation::ListObjectVersions,
                b"<ListVersionsResult><Name>t1-b</Name><Version><Key>k</Key>\
                  <Type>acct-7</Type></Version><DeleteMarker><Key>k</Key>\
                  <s3:Type xmlns:s3=\"urn:s3\">acct-7</s3:Type></DeleteMarker>\
                  </ListVersionsResult>",
            ),
            (
                Operation::GetBucketVersioning,
                b"<VersioningConfiguration><Status>Enabled</Status><MfaDelete>acct-7</MfaDelete>\
                  </VersioningConfiguration><!--b-->",
            ),
            (
                Operation::ListObjects,
                b"<ListBucketResult><Tenant>acct-7</Tenant><Name>t1-b</Name>\
                  <Contents><Key>k</Key></Contents></ListBucketResult>",
            ),
            (
                Operation::ListObjectVersions,
                b"<s3:ListVersionsResult xmlns:s3=\"urn:s3\"><s3:Tenant>acct-7</s3:Tenant>\
                  <s3:Name>t1-b</s3:Name></s3:ListVersionsResult>",
            ),
            (
                Operation::CreateMultipartUpload,
                b"<InitiateMultipartUploadResult><Tenant>acct-7</Tenant><Bucket>t1-b</Bucket>\
                  <Key>k</Key><UploadId>u</UploadId></InitiateMultipartUploadResult>",
            ),
            (
                Operation::ListParts,
                b"<ListPartsResult><Tenant><X>acct-7</X></Tenant><Bucket>t1-b</Bucket>\
                  <Key>k</Key><UploadId>u</UploadId></ListPartsResult>",
            ),
            (
                Operation::ListBuckets,
                b"<ListAllMyBucketsResult><Buckets><Bucket><Name>t1-b</Name>\
                  <CreationDate>d</CreationDate><Location>acct-7</Location>\
                  <BucketType>OBJECT</BucketType></Bucket></Buckets></ListAllMyBucketsResult>",
            ),
            (
                Operation::ListBuckets,
                b"<ListAllMyBucketsResult><Buckets><Bucket><Name>t1-b</Name>\
                  <CreationDate>d</CreationDate><BucketRegion>acct-7</BucketRegion>\
                  <BucketType/></Bucket></Buckets></ListAllMyBucketsResult>",
            ),
        ];
        for (op, body) in cases {
            let rewrites = Rewrites {
                upload_id: &|id| Some(id.to_string()),
                ..Rewrites::NONE
            };
            let out = with_route(|r| rewrite_xml(body, op, r, &rewrites)).expect("rewritten");
            let s = std::str::from_utf8(&out).unwrap();
            for gone in ["acct-7", "Tenant", "Type", "Region", "MfaDelete", "t1-"] {
                assert!(!s.contains(gone), "{op:?}: {gone} in {s}");
            }
            // (The versioning document names no bucket; the comment after it is dropped.)
            let versioning = op == Operation::GetBucketVersioning && !s.contains("<!--");
            assert!(s.contains(">b<") || versioning, "{op:?}: {s}");
        }
    }

    #[test]
    fn an_acl_shows_the_grants_to_users_the_gateway_keeps() {
        let grants = [crate::request::acls::UserGrant {
            grantee: crate::request::owners::Owner::named("bGdyZWVu", "lgreen"),
            permission: "READ".into(),
        }];
        let rewrites = Rewrites {
            grants: &grants,
            ..Rewrites::NONE
        };
        for list in [
            "<AccessControlList><Grant><Permission>FULL_CONTROL</Permission></Grant></AccessControlList>",
            "<AccessControlList/>",
        ] {
            let body = format!("<AccessControlPolicy><Owner><ID>o</ID></Owner>{list}</AccessControlPolicy>");
            let out = with_route(|r| {
                rewrite_xml(body.as_bytes(), Operation::GetObjectAcl, r, &rewrites)
            })
            .unwrap();
            let s = std::str::from_utf8(&out).unwrap();
            assert!(s.contains(&format!("<ID>{}</ID><DisplayName>lgreen</DisplayName></Grantee><Permission>READ</Permission></Grant></AccessControlList>", grants[0].grantee.id)), "{s}");
            assert_eq!(s.matches("<AccessControlList>").count(), 1, "{s}");
        }
    }

    #[test]
    fn listed_objects_name_their_own_owners() {
        use crate::request::owners::{Owner, Shown};
        let body = b"<ListVersionsResult><Name>t1-b</Name>\
            <Version><Key>a</Key><Owner><ID>backend-id</ID><DisplayName>Main</DisplayName></Owner></Version>\
            <DeleteMarker><Key>d</Key><Owner><ID>backend-id</ID><DisplayName>Main</DisplayName></Owner></DeleteMarker>\
            <Version><Key>b</Key><Owner><ID>backend-id</ID><DisplayName>Main</DisplayName></Owner></Version>\
            <Version><Key>c</Key><Owner><ID>backend-id</ID><DisplayName>Main</DisplayName></Owner></Version>\
            </ListVersionsResult>";
        let bucket_owner = Shown {
            owner: Owner::named("bGdyZWVu", "lgreen"),
            owned: None,
        };
        let bob = Owner::named("Ym9i", "bob");
        // (The second version's owner is not known: its bucket's owner is named.)
        let entries = [Some(bob.clone()), None, Some(Owner::nobody())];
        let rewrites = Rewrites {
            owners: Some(&bucket_owner),
            entry_owners: &entries,
            ..Rewrites::NONE
        };
        let out =
            with_route(|r| rewrite_xml(body, Operation::ListObjectVersions, r, &rewrites)).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        let owners: Vec<&str> = s
            .split("<DisplayName>")
            .skip(1)
            .map(|p| &p[..p.find('<').unwrap()])
            .collect();
        assert_eq!(owners, ["bob", "lgreen", "lgreen", "nobody"], "{s}");
        assert!(s.contains(&format!("<ID>{}</ID>", bob.id)), "{s}");
        assert!(!s.contains("backend-id"), "{s}");
    }

    #[test]
    fn list_buckets_keeps_only_the_callers_buckets_where_owners_are_kept() {
        let body = b"<ListAllMyBucketsResult><Owner><ID>backend-id</ID><DisplayName>Main User</DisplayName></Owner><Buckets>\
            <Bucket><Name>t1-alpha</Name><CreationDate>d</CreationDate></Bucket>\
            <Bucket><Name>t1-beta</Name><CreationDate>d</CreationDate></Bucket>\
            <Bucket><Name>t2-gamma</Name><CreationDate>d</CreationDate></Bucket>\
            </Buckets></ListAllMyBucketsResult>";
        let shown = crate::request::owners::Shown {
            owner: crate::request::owners::Owner::named("bGdyZWVu", "lgreen"),
            owned: Some(["t1-beta".to_string(), "t2-gamma".to_string()].into()),
        };
        let rewrites = Rewrites {
            owners: Some(&shown),
            ..Rewrites::NONE
        };
        let out = with_route(|r| rewrite_xml(body, Operation::ListBuckets, r, &rewrites)).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        // Only the caller's, of the tenant's; the caller as owner, never the backend account.
        assert!(s.contains("<Name>beta</Name>"), "{s}");
        assert!(!s.contains("alpha") && !s.contains("gamma"), "{s}");
        assert!(
            s.contains(&format!(
                "<ID>{}</ID><DisplayName>lgreen</DisplayName>",
                shown.owner.id
            )),
            "{s}"
        );
        assert!(!s.contains("backend-id") && !s.contains("Main User"), "{s}");
    }

    /// Elements are matched by their local names: a backend that prefixes every element
    /// (`<s3:Name>`) has its bucket prefix and its account dropped all the same.
    #[test]
    fn prefixed_elements_are_rewritten_as_any() {
        let body = b"<s3:ListBucketResult xmlns:s3=\"urn:s3\"><s3:Name>t1-alpha</s3:Name><s3:Contents><s3:Key>k</s3:Key><s3:Owner><s3:ID>backend-id</s3:ID><s3:DisplayName>backend-name</s3:DisplayName></s3:Owner></s3:Contents></s3:ListBucketResult>";
        let out = with_route(|r| rewrite_xml(body, Operation::ListObjectsV2, r, &Rewrites::NONE))
            .unwrap();
        let out = std::str::from_utf8(&out).unwrap();
        assert!(
            out.contains("<Name>alpha</Name>") && !out.contains("<s3:"),
            "{out}"
        );
        for leak in ["t1-", "backend-id", "backend-name"] {
            assert!(!out.contains(leak), "{leak}: {out}");
        }
        let body = b"<s3:ListAllMyBucketsResult xmlns:s3=\"urn:s3\"><s3:Buckets><s3:Bucket><s3:Name>t1-mine</s3:Name></s3:Bucket><s3:Bucket><s3:Name>other-theirs</s3:Name></s3:Bucket></s3:Buckets></s3:ListAllMyBucketsResult>";
        let out =
            with_route(|r| rewrite_xml(body, Operation::ListBuckets, r, &Rewrites::NONE)).unwrap();
        let out = std::str::from_utf8(&out).unwrap();
        assert!(
            out.contains(">mine<") && !out.contains("theirs") && !out.contains("t1-"),
            "{out}"
        );
    }

    /// Every reader of a backend's document goes by local names: a prefixed error is the
    /// backend's error, a prefixed result with an ETag a result.
    #[test]
    fn prefixed_documents_are_read_as_any() {
        let error = b"<s3:Error xmlns:s3=\"urn:s3\"><s3:Code>NoSuchKey</s3:Code><s3:Message>m</s3:Message></s3:Error>";
        let up = ResponseHeader::build(404, None).unwrap();
        assert_eq!(
            read_backend_error(&up, error).code.as_deref(),
            Some("NoSuchKey")
        );
        assert!(crate::request::respond::settle::body_root_is_error(error));
        let done = b"<s3:CompleteMultipartUploadResult xmlns:s3=\"urn:s3\"><s3:ETag>e</s3:ETag></s3:CompleteMultipartUploadResult>";
        assert!(has_element(done, b"ETag"));
    }

    #[test]
    fn listing_and_multipart_names_lose_the_prefix() {
        let body = b"<ListBucketResult><Name>t1-alpha</Name><Contents><Key>Name</Key></Contents></ListBucketResult>";
        let out = with_route(|r| rewrite_xml(body, Operation::ListObjectsV2, r, &Rewrites::NONE))
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>alpha</Name><Contents><Key>Name</Key></Contents></ListBucketResult>"
        );
        let body = b"<CompleteMultipartUploadResult><Location>http://backend:1/t1-a/k</Location><Bucket>t1-a</Bucket><Key>k</Key></CompleteMultipartUploadResult>";
        let out = with_route(|r| {
            rewrite_xml(
                body,
                Operation::CompleteMultipartUpload,
                r,
                &Rewrites {
                    location: "http://gw/a/k",
                    ..Rewrites::NONE
                },
            )
        })
        .unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(
            s.contains("<Location>http://gw/a/k</Location><Bucket>a</Bucket>"),
            "{s}"
        );
    }

    /// The gateway's own documents are HCP's XML: declared once, indented where asked — a
    /// multi-object delete's spliced errors with the rest.
    #[test]
    fn own_documents_are_declared_and_indented_where_asked() {
        let doc = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
        let flat = String::from_utf8(own_document(doc, false)).unwrap();
        assert_eq!(
            flat,
            format!("{HCP_DECLARATION}\n{}", std::str::from_utf8(doc).unwrap())
        );
        assert_eq!(own_document(flat.as_bytes(), false), flat.as_bytes());
        let pretty = String::from_utf8(own_document(doc, true)).unwrap();
        assert!(pretty.starts_with("<?xml version=\"1.0\""), "{pretty}");
        assert!(
            pretty.contains("\n  <Status>Enabled</Status>\n"),
            "{pretty}"
        );
        assert_eq!(pretty.matches("<?xml").count(), 1, "{pretty}");
    }

    /// A text the gateway writes whole is written once, however the backend's came: in pieces
    /// around entity references (Go's `&#39;`), as CDATA.
    #[test]
    fn texts_written_whole_are_written_once() {
        let complete = |location: &str| {
            format!("<CompleteMultipartUploadResult><Location>{location}</Location><Bucket>t1-a</Bucket></CompleteMultipartUploadResult>")
        };
        for location in [
            "http://m/t1-a/O&#39;Brien&amp;x",
            "<![CDATA[http://m/t1-a/O'Brien]]>&amp;",
        ] {
            let rewrites = Rewrites {
                location: "http://gw/a/O'Brien",
                ..Rewrites::NONE
            };
            let body = complete(location);
            let op = Operation::CompleteMultipartUpload;
            let out = with_route(|r| rewrite_xml(body.as_bytes(), op, r, &rewrites)).unwrap();
            let s = std::str::from_utf8(&out).unwrap();
            assert!(
                s.contains("<Location>http://gw/a/O&apos;Brien</Location>")
                    || s.contains("<Location>http://gw/a/O'Brien</Location>"),
                "{s}"
            );
        }
        // A complete the backend answered without one (s3s-fs) names it first, as HCP does.
        let params = crate::request::classify::Params::default();
        let rewrites = Rewrites {
            location: "http://gw/hs3/a/k",
            params: Some(&params),
            ..Rewrites::NONE
        };
        let body = b"<CompleteMultipartUploadResult><Bucket>t1-a</Bucket><Key>k</Key><ETag>&quot;e-1&quot;</ETag></CompleteMultipartUploadResult>";
        let op = Operation::CompleteMultipartUpload;
        let out = with_route(|r| rewrite_xml(body, op, r, &rewrites)).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(
            s.contains("/\"><Location>http://gw/hs3/a/k</Location><Bucket>a</Bucket><Key>k</Key>"),
            "{s}"
        );
        assert_eq!(s.matches("<Location>").count(), 1, "{s}");
        let body = b"<ListMultipartUploadsResult><UploadIdMarker>a&amp;b</UploadIdMarker></ListMultipartUploadsResult>";
        let rewrites = Rewrites {
            upload_id_marker: Some("a&b"),
            ..Rewrites::NONE
        };
        let op = Operation::ListMultipartUploads;
        let out = with_route(|r| rewrite_xml(body, op, r, &rewrites)).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(
            s.contains("<UploadIdMarker>a&amp;b</UploadIdMarker>"),
            "{s}"
        );
    }
}

//! The request to the backend: addressed with the backend bucket name, carrying the client's
//! headers minus what is the client's alone, and signed with SigV4 and the backend's own keys.

use std::time::SystemTime;

use http::Method;
use percent_encoding::percent_decode;

use crate::backend::head::RequestHead;
use crate::hcp::mapping::Dialect;

use crate::request::address::Target;
use crate::request::classify::{Effects, Operation, Params};
use base64::Engine as _;

use crate::backend::credentials::SigningCredentials;
use crate::backend::store::wire;
use crate::config::{AddressingStyle, Signing};
use crate::request::route::{backend_bucket_name, Route};
use crate::sig::v4 as sigv4;
use crate::sig::{format_amz_date, v2 as sigv2};

/// The families of request headers operations define.
struct Families {
    /// The body's digest: `Content-MD5`, `x-amz-checksum-*`.
    integrity: bool,
    /// A document's: integrity and its type.
    document: bool,
    acl: bool,
    sse_c: bool,
    /// What an object keeps: its type, encodings, caching, storage class, metadata, SSE-C.
    attributes: bool,
    write_condition: bool,
    object_lock: bool,
    bypass: bool,
    copy_source: bool,
}

impl Families {
    fn of(name: &str) -> Families {
        let integrity = name == "content-md5"
            || name.starts_with("x-amz-checksum-")
            || name == "x-amz-sdk-checksum-algorithm";
        // (A customer's key is its three headers, checked by `validate`; no other name under
        // their prefix is sent.)
        let customer_key = |prefix: &str| {
            name.strip_prefix(prefix)
                .is_some_and(|part| matches!(part, "algorithm" | "key" | "key-md5"))
        };
        let sse_c = customer_key("x-amz-server-side-encryption-customer-");
        Families {
            integrity,
            document: integrity || name == "content-type",
            acl: name == "x-amz-acl"
                || crate::request::validate::acl::GRANT_HEADERS.contains(&name),
            sse_c,
            // (HCP's `x-amz-server-side-encryption` asks whether data is encrypted: it is
            // answered, never sent — `rewrite::answer_encryption`. Of the rest of S3's
            // encryption only a customer's key is offered: another name may be one a backend
            // reads, as OBS's KMS key id once renamed.)
            attributes: metadata_attribute(name) || name == "x-amz-storage-class" || sse_c,
            write_condition: matches!(name, "if-match" | "if-none-match"),
            object_lock: matches!(
                name,
                "x-amz-object-lock-mode"
                    | "x-amz-object-lock-retain-until-date"
                    | "x-amz-object-lock-legal-hold"
            ),
            bypass: name == "x-amz-bypass-governance-retention",
            copy_source: name == "x-amz-copy-source"
                || name.starts_with("x-amz-copy-source-if-")
                || customer_key("x-amz-copy-source-server-side-encryption-customer-"),
        }
    }
}

/// An object's content headers: how it is typed and served, which a copy under
/// `x-amz-metadata-directive: REPLACE` takes from the request ([`metadata_attribute`]).
pub const CONTENT_HEADERS: [http::HeaderName; 6] = [
    http::header::CONTENT_TYPE,
    http::header::CONTENT_ENCODING,
    http::header::CONTENT_DISPOSITION,
    http::header::CONTENT_LANGUAGE,
    http::header::CACHE_CONTROL,
    http::header::EXPIRES,
];

/// The object's metadata headers: what S3 copies from a copy's source under
/// `x-amz-metadata-directive: COPY`, and takes from the request under `REPLACE`.
pub fn metadata_attribute(name: &str) -> bool {
    matches!(
        name,
        "content-type"
            | "content-encoding"
            | "content-language"
            | "content-disposition"
            | "cache-control"
            | "expires"
    ) || name.starts_with("x-amz-meta-")
}

/// Whether operation `op` defines request header `name` (lower case): only such headers of the
/// client's request reach the backend, besides those the gateway sets itself (host, length,
/// date, payload digest, authorization, its own conditions). Everything else — hop-by-hop
/// headers, the client's credentials, `x-hcp-*`, headers of other operations, headers whose
/// effect the gateway does not offer — stays behind.
pub fn defines_header(op: Operation, name: &str) -> bool {
    use Operation::*;
    let Families {
        integrity,
        document,
        acl,
        sse_c,
        attributes,
        write_condition,
        object_lock,
        bypass,
        copy_source,
    } = Families::of(name);
    match op {
        PutObject => attributes || acl || integrity || write_condition || object_lock,
        CopyObject => {
            attributes
                || acl
                || write_condition
                || copy_source
                || object_lock
                || name == "x-amz-metadata-directive"
        }
        CreateMultipartUpload => {
            attributes
                || acl
                || object_lock
                || name == "x-amz-checksum-algorithm"
                || name == "x-amz-checksum-type"
        }
        UploadPart => integrity || sse_c,
        UploadPartCopy => copy_source || name == "x-amz-copy-source-range" || sse_c,
        CompleteMultipartUpload => document || write_condition || sse_c,
        // (HCP's HEAD answers the object whole: no range — which some backends would answer
        // 206 or 416 and others ignore.)
        GetObject | HeadObject => {
            sse_c
                || (name == "range" && op == GetObject)
                || matches!(
                    name,
                    "if-match"
                        | "if-none-match"
                        | "if-modified-since"
                        | "if-unmodified-since"
                        | "x-amz-checksum-mode"
                )
        }
        CreateBucket => document || acl || name == "x-amz-bucket-object-lock-enabled",
        PutBucketAcl | PutObjectAcl => document || acl,
        PutBucketVersioning | BucketSubresource => document,
        PutObjectLockConfiguration | PutObjectLegalHold => document,
        DeleteObjects | PutObjectRetention => document || bypass,
        CorsPreflight => matches!(
            name,
            "origin" | "access-control-request-method" | "access-control-request-headers"
        ),
        // A conditional delete stays conditional (judged by the gateway; sent on where the
        // backend judges it too: `judges_write_condition`).
        DeleteObject => name == "if-match" || bypass,
        ListBuckets
        | HeadBucket
        | DeleteBucket
        | ListObjects
        | ListObjectsV2
        | ListObjectVersions
        | ListMultipartUploads
        | GetBucketLocation
        | GetBucketAcl
        | GetBucketVersioning
        | PostObject
        | GetObjectAcl
        | AbortMultipartUpload
        | ListParts
        | GetObjectLockConfiguration
        | GetObjectRetention
        | GetObjectLegalHold
        | ObjectSubresource => false,
    }
}

/// What one backend request is built from: the classified operation with its parameters, the
/// validated target, and the client's request, of which only the headers the operation
/// defines are read.
#[derive(Clone, Copy)]
pub struct Outbound<'a> {
    pub op: Operation,
    pub method: &'a Method,
    pub params: &'a Params,
    pub target: &'a Target,
    pub headers: &'a http::HeaderMap,
}

/// How the body reaches the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Forwarded as the client sent it.
    AsSent,
    /// The client's aws-chunked framing was removed; its trailing checksum was verified by the
    /// gateway and is not announced to the backend.
    Dechunked,
    /// Sent in aws-chunked framing with a trailer of this algorithm the gateway computes as it
    /// sends (`backend::aws_chunked`), whatever framing the client used: S3's integrity header
    /// for a body whose digest is not known before it is sent.
    Trailed(crate::backend::aws_chunked::ChecksumAlgorithm),
}

impl BodyFraming {
    /// Whether the client's aws-chunked coding and checksum announcement stay behind.
    fn strips_client_chunking(self) -> bool {
        matches!(self, BodyFraming::Dechunked | BodyFraming::Trailed(_))
    }
}

/// Which headers the gateway signs: host, the body's integrity headers and every `x-amz-*`.
fn signed(name: &str) -> bool {
    name == "host" || name == "content-md5" || name == "content-type" || name.starts_with("x-amz-")
}

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

/// Builds and signs the backend request from the authorised, validated operation ([`Outbound`]):
/// its path and sub-resource, the headers it defines, the body's length, the backend's signature.
pub fn backend_request(
    out: Outbound<'_>,
    route: &Route<'_>,
    body: BodyPlan<'_>,
    now: SystemTime,
    keys: &sigv4::SigningKeyCache,
) -> RequestHead {
    thread_local! {
        static TARGET: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    crate::kept::with(&TARGET, |target| {
        backend_request_in(target, out, route, body, now, keys)
    })
}

/// Room in a backend request's head for its fields besides the target: a signed GET's take
/// about 400 bytes (the `Authorization` about 230); more grows the buffer.
const HEAD_ROOM: usize = 768;

/// [`backend_request`], its target written in `target` (a buffer the thread keeps).
fn backend_request_in(
    target: &mut String,
    out: Outbound<'_>,
    route: &Route<'_>,
    body: BodyPlan<'_>,
    now: SystemTime,
    keys: &sigv4::SigningKeyCache,
) -> RequestHead {
    let host = backend_address(&out, route, target);
    // The request target in one string: the path, then `?` and the query if there is one.
    let path_len = target.len();
    let query = out.params.to_query();
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query);
    }
    let path = &target[..path_len];
    let method = out.method.clone();
    // The head is filled here, in order: the client's headers the operation defines, the
    // effects the gateway decided on, then the gateway's own (each replacing any of its name).
    let mut head = RequestHead::new(method, target.as_bytes(), HEAD_ROOM);
    defined_headers(&mut head, &out, route, body.framing);
    ceph_copy_conditions(&mut head, out.op, route);
    form_type_kept_from_s3s(&mut head, &out, route);
    custom_metadata(&mut head, out.op, out.headers);
    named_media_type(&mut head, &out);
    effect_headers(&mut head, out.op, &out.params.effects);
    // AWS makes a bucket with ACLs disabled (Object Ownership "BucketOwnerEnforced", since
    // 2023): HCP's buckets take ACLs, so the gateway's are made with them enabled.
    if let Some(ownership) = route.backend.object_ownership {
        if out.op == Operation::CreateBucket {
            head.insert("x-amz-object-ownership", ownership.as_bytes());
        }
    }
    if let Some(key) = out.target.key() {
        long_key_header(&mut head, wire::KEY_HEADER, &key, route);
    }
    head.remove("host");
    match host {
        Host::Authority => head.append("host", route.backend.authority.as_bytes()),
        Host::Virtual(bucket) => head.append_parts(
            "host",
            &[bucket.as_bytes(), b".", route.backend.authority.as_bytes()],
        ),
    }
    match body.length {
        Some(n) => match body.framing {
            BodyFraming::Trailed(algorithm) => {
                trailed_headers(&mut head, out.headers, (n, algorithm));
            }
            _ => head.insert("content-length", itoa::Buffer::new().format(n).as_bytes()),
        },
        None if out.method == Method::PUT || out.method == Method::POST => {
            head.insert("content-length", b"0");
        }
        None => {}
    }
    let credentials = route
        .credentials
        .as_deref()
        .expect("backend credentials are resolved before the first backend request");
    if route.backend.signing == Signing::Obs {
        sign_obs(&mut head, route, credentials, path, &query, now);
        return head;
    }
    let at = (out.method, path, query.as_str());
    sign_v4(
        &mut head,
        route,
        credentials,
        at,
        body.payload_hash,
        now,
        keys,
    );
    head
}

/// The framing headers of a body of `decoded` bytes sent in aws-chunked framing with the
/// gateway's trailer of `algorithm` (`BodyFraming::Trailed`): `Content-Encoding` is
/// aws-chunked, then the object's own codings from all of the client's lines.
fn trailed_headers(
    head: &mut RequestHead,
    client: &http::HeaderMap,
    (decoded, algorithm): (u64, crate::backend::aws_chunked::ChecksumAlgorithm),
) {
    use crate::backend::aws_chunked;
    let framed = aws_chunked::framed_length(decoded, algorithm);
    head.insert(
        "content-length",
        itoa::Buffer::new().format(framed).as_bytes(),
    );
    head.insert(
        "x-amz-decoded-content-length",
        itoa::Buffer::new().format(decoded).as_bytes(),
    );
    let codings = object_codings(client.get_all(http::header::CONTENT_ENCODING).iter());
    let coding: Vec<&str> = std::iter::once("aws-chunked").chain(codings).collect();
    head.insert("content-encoding", coding.join(",").as_bytes());
    head.insert("x-amz-trailer", algorithm.header_name().as_bytes());
    head.insert(
        "x-amz-sdk-checksum-algorithm",
        algorithm.sdk_name().as_bytes(),
    );
}

/// `x-amz-date`'s value for `now`: formatted once a second per thread; a time before 1970 is
/// formatted each time.
fn amz_date(now: SystemTime) -> [u8; 16] {
    thread_local! {
        static MADE: std::cell::Cell<Option<(u64, [u8; 16])>> = const { std::cell::Cell::new(None) };
    }
    let format = |now: SystemTime| {
        let text = format_amz_date(now);
        text.as_bytes()
            .try_into()
            .expect("yyyymmddThhmmssZ is 16 bytes")
    };
    let Ok(since_epoch) = now.duration_since(SystemTime::UNIX_EPOCH) else {
        return format(now);
    };
    let second = since_epoch.as_secs();
    match MADE.get() {
        Some((at, date)) if at == second => date,
        _ => {
            let date = format(now);
            MADE.set(Some((second, date)));
            date
        }
    }
}

/// The backend's `Host`: its configured authority, or the backend bucket's name before it.
enum Host<'r> {
    Authority,
    Virtual(&'r str),
}

/// The backend's host and the request's path: the backend bucket in either addressing style,
/// then the key the gateway validated.
/// (The path is written into `path`.)
fn backend_address<'r>(out: &Outbound<'_>, route: &'r Route<'_>, path: &mut String) -> Host<'r> {
    let backend = route.backend;
    let host = match (&route.backend_bucket, backend.addressing) {
        (Some(bucket), AddressingStyle::Virtual) => Host::Virtual(bucket),
        (Some(bucket), AddressingStyle::Path) => {
            path.push('/');
            sigv4::uri_encode(bucket.as_bytes(), false, path);
            Host::Authority
        }
        (None, _) => Host::Authority,
    };
    // OBS's SDKs address a bucket path style as `/bucket`, and sign that; S3 clients send
    // `/bucket/`, which every S3 server accepts.
    let obs_bucket_path = backend.signing == Signing::Obs
        && backend.addressing == AddressingStyle::Path
        && route.backend_bucket.is_some()
        && out.target.raw_key.is_none();
    if !obs_bucket_path {
        path.push('/');
    }
    // The backend gets the key the gateway validated, encoded once from its bytes: `%2F` in
    // the client's path is a `/` of the key (as S3 reads it), and servers that decode and
    // re-encode paths before checking signatures (RGW) see the same key as those that do not.
    if let Some(key) = out.target.key() {
        sigv4::uri_encode(path_key(&key, route), true, path);
    }
    host
}

/// The key as the backend's path names it: itself, or the embedded store's placeholder for a
/// key longer than its S3 parser takes in a path (the key then travels in [`long_key_header`]).
fn path_key<'k>(key: &'k [u8], route: &Route<'_>) -> &'k [u8] {
    if key.len() > wire::PATH_KEY_LIMIT && route.backend.long_keys_in_header() {
        wire::PLACEHOLDER.as_bytes()
    } else {
        key
    }
}

/// `name: key`, percent-encoded, where [`path_key`] put the placeholder in the key's place.
fn long_key_header(head: &mut RequestHead, name: &'static str, key: &[u8], route: &Route<'_>) {
    if path_key(key, route).len() != key.len() {
        let mut encoded = String::with_capacity(key.len() * 3);
        sigv4::uri_encode(key, true, &mut encoded);
        head.insert(name, encoded.as_bytes());
    }
}

/// Whether the backend judges a write's or delete's ETag condition as S3 does, so that it goes
/// with the request besides the gateway's own judging on a HEAD: `If-None-Match: *` always
/// (the create-only write, `probes::check_overwrite`); one ETag in `If-Match` where the backend
/// has conditional writes, or is AWS or MinIO (Ceph RGW reads it its own way) — a delete's at
/// AWS alone (the embedded store has no conditional deletes, MinIO ignores one); one ETag in
/// `If-None-Match` where the backend has conditional writes, or is MinIO (AWS answers 501). A
/// list is the gateway's alone to judge: the embedded store (s3s) reads it as one ETag, which
/// no object has, or refuses it (400, a copy 501).
fn judges_write_condition(
    op: Operation,
    route: &Route<'_>,
    (name, value): (&str, &http::HeaderValue),
) -> bool {
    let backend = route.backend;
    let single = value.to_str().is_ok_and(crate::etag::single);
    if name == "if-none-match" {
        return value.as_bytes().trim_ascii() == b"*"
            || single
                && op != Operation::DeleteObject
                && (backend.conditional_writes || backend.dialect == Dialect::Minio);
    }
    single
        && match op {
            Operation::DeleteObject => backend.dialect == Dialect::Aws,
            _ => {
                backend.conditional_writes
                    || matches!(backend.dialect, Dialect::Aws | Dialect::Minio)
            }
        }
}

/// The client's headers that the operation defines ([`defines_header`]), the copy source
/// rewritten to the backend bucket, the client's aws-chunked framing taken off.
fn defined_headers(
    head: &mut RequestHead,
    out: &Outbound<'_>,
    route: &Route<'_>,
    framing: BodyFraming,
) {
    for (name, value) in out.headers.iter() {
        let n = name.as_str();
        if !defines_header(out.op, n) || n.starts_with(META) {
            continue;
        }
        if (n.starts_with("if-") || n.starts_with("x-amz-copy-source-if-"))
            && !first_of(out.headers, name, value)
        {
            // HCP reads a condition given twice by its first (`validate::FIRST_ONLY`).
            continue;
        }
        if n == "x-amz-copy-source" {
            if let Some(mut source) = CopySource::parse(value.as_bytes()) {
                if out.params.effects.current_source {
                    source.version_id = None;
                }
                head.append(n, copy_source(&source, route, out.op).as_bytes());
                long_key_header(head, wire::COPY_SOURCE_KEY_HEADER, &source.key, route);
            }
        } else if matches!(framing, BodyFraming::Trailed(_)) && n == "content-encoding" {
            // (All of the client's lines in one, after the gateway's own: `trailed_headers`.)
        } else if framing == BodyFraming::Dechunked && n == "content-encoding" {
            // aws-chunked is the client's framing; other codings describe the object.
            let rest = object_codings(std::iter::once(value));
            if !rest.is_empty() {
                head.append(n, rest.join(",").as_bytes());
            }
        } else if matches!(n, "if-modified-since" | "if-unmodified-since")
            && matches!(out.op, Operation::GetObject | Operation::HeadObject)
            && crate::request::validate::etag_conditioned(out.headers)
        {
            // HCP judges the ETag conditions before the dates, and all of them: a backend
            // would ignore a date beside its ETag condition, or judge If-Unmodified-Since
            // before If-None-Match (412 where HCP's answer is 304). The dates are the
            // gateway's to judge then, on the backend's answer (`rewrite::precondition`).
        } else if let Some(read) = as_read(n, value) {
            // (Sent as the gateway read it; a value HCP ignores is not sent.)
            if let Some(read) = read {
                head.append(n, read.as_bytes());
            }
        } else if matches!(n, "if-match" | "if-none-match")
            && matches!(
                out.op,
                Operation::PutObject
                    | Operation::CopyObject
                    | Operation::CompleteMultipartUpload
                    | Operation::DeleteObject
            )
            && !judges_write_condition(out.op, route, (n, value))
        {
            // Judged by the gateway, on the object's HEAD (`probes::check_overwrite`,
            // `probes::check_delete_if_match`), and sent only where the backend judges it
            // too, atomically.
        } else if n == "if-match" && matches!(out.op, Operation::GetObject | Operation::HeadObject)
        {
            // HCP: "All ETags match an asterisk", and an ETag in a list matches — which
            // backends read each their own way (RGW compares a prefix, MinIO the whole value:
            // 412). One ETag is sent; `*` or a list is the gateway's to judge on the answer
            // (`rewrite::precondition`).
            if value.to_str().is_ok_and(crate::etag::single) {
                head.append(n, value.as_bytes());
            }
        } else if (n == "if-none-match"
            && matches!(out.op, Operation::GetObject | Operation::HeadObject))
            || n == "x-amz-copy-source-if-none-match"
        {
            // HCP: "No ETags match an asterisk in an If-None-Match header" (GET, HEAD, and a
            // copy's source): `*` is no condition here, where S3 would answer 304 or 412.
            // (A value that is no ASCII text is not sent: no ETag matches it, which the
            // gateway judges on the answer — a backend would refuse it, or read it its way.)
            if let Ok(list) = value.to_str() {
                let kept: Vec<&str> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && *t != "*")
                    .collect();
                if !kept.is_empty() {
                    head.append(n, kept.join(", ").as_bytes());
                }
            }
        } else if framing.strips_client_chunking() && n == "x-amz-sdk-checksum-algorithm" {
            // The trailing checksum it announces was verified here and is not sent on.
        } else {
            head.append(n, value.as_bytes());
        }
    }
}

/// The embedded backend (s3s) reads any POST whose Content-Type is `multipart/form-data` as a
/// browser form — its own signature check, and PostObject —, whatever operation the gateway
/// sends (its media type parser reads `multipart/form-data+xml` as form-data too): no
/// `multipart/*` type goes on a POST there. A multipart upload's object type travels under the
/// gateway's own name (`wire::CONTENT_TYPE_HEADER`), which the store restores; another POST's is
/// not the object's (a complete, a multi-object delete: documents).
fn form_type_kept_from_s3s(head: &mut RequestHead, out: &Outbound<'_>, route: &Route<'_>) {
    if out.method != Method::POST || route.backend.dialect != Dialect::Local {
        return;
    }
    let Some(value) = head.get("content-type").map(<[u8]>::to_vec) else {
        return;
    };
    let media = String::from_utf8_lossy(&value);
    let kind = media.split(['/', ';']).next().unwrap_or_default().trim();
    if !kind.eq_ignore_ascii_case("multipart") {
        return;
    }
    head.remove("content-type");
    if out.op == Operation::CreateMultipartUpload {
        head.insert(wire::CONTENT_TYPE_HEADER, &value);
    }
}

/// Ceph RGW reads a copy's source conditions under its own names, `x-amz-copy-if-…`, and
/// ignores S3's `x-amz-copy-source-if-…`: a copy's conditions — the pins the gateway relies on
/// (the source an ACL let it read, the object a metadata change read) among them — are sent
/// under both. (Its part copies read none: there a part copy is not pinned — README.)
fn ceph_copy_conditions(head: &mut RequestHead, op: Operation, route: &Route<'_>) {
    if op != Operation::CopyObject || route.backend.dialect != Dialect::Ceph {
        return;
    }
    let conditions: Vec<(String, Vec<u8>)> = head
        .iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix("x-amz-copy-source-if-")?;
            Some((format!("x-amz-copy-if-{rest}"), value.to_vec()))
        })
        .collect();
    for (name, value) in conditions {
        head.append(&name, &value);
    }
}

/// Whether `value` is the first of `name`'s values (a condition's others are not sent).
fn first_of(headers: &http::HeaderMap, name: &http::HeaderName, value: &http::HeaderValue) -> bool {
    headers
        .get(name)
        .is_some_and(|first| std::ptr::eq(first, value))
}

/// The content codings of these `Content-Encoding` values but aws-chunked (a framing, not a
/// coding of the object), in order.
fn object_codings<'v>(values: impl Iterator<Item = &'v http::HeaderValue>) -> Vec<&'v str> {
    values
        .flat_map(|v| v.to_str().unwrap_or_default().split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("aws-chunked"))
        .collect()
}

/// A header whose value the gateway reads and sends as it read it: `Some` of the value to send
/// (`None`: a value HCP ignores, not sent), or `None` for a header sent as it came.
fn as_read(name: &str, value: &http::HeaderValue) -> Option<Option<String>> {
    use crate::request::validate;
    let text = value.to_str().ok();
    let read = match name {
        "if-modified-since"
        | "if-unmodified-since"
        | "x-amz-copy-source-if-modified-since"
        | "x-amz-copy-source-if-unmodified-since" => text
            .and_then(validate::condition_date)
            .map(httpdate::fmt_http_date),
        "range" => text.and_then(validate::object_range),
        // (HCP accepts it and does not process it — its answers carry its own —: one that is
        // no date is not sent, which a backend could refuse.)
        "expires" => text
            .and_then(|t| httpdate::parse_http_date(t.trim()).ok())
            .map(httpdate::fmt_http_date),
        "x-amz-copy-source-range" => text
            .and_then(validate::copy_range)
            .map(|(first, last)| format!("bytes={first}-{last}")),
        // (Validated: one of the two, sent in S3's spelling.)
        "x-amz-metadata-directive" => Some(
            text.and_then(validate::metadata_directive)
                .unwrap_or("COPY")
                .to_string(),
        ),
        _ => return None,
    };
    Some(read)
}

const META: &str = "x-amz-meta-";

/// HCP's custom metadata (manual, "Storing custom metadata with the S3 compatible API"), for
/// an operation that stores it: a property name's characters other than letters, digits, `.`,
/// `-`, `_` and `:` become `_` (HCP keeps properties as XML element names); a property given
/// more than once is one property, its values joined by commas; a property without a value is
/// not stored.
fn custom_metadata(sent: &mut RequestHead, op: Operation, headers: &http::HeaderMap) {
    if !defines_header(op, "x-amz-meta-x") {
        return;
    }
    for (property, value) in metadata_properties(headers) {
        // (The property's characters are a header name's: it came from one.)
        sent.append(&format!("{META}{property}"), &value);
    }
}

/// The custom metadata properties `headers` give, as [`custom_metadata`] sends them: names
/// as HCP makes them element names, values of one name joined, empty ones left out.
pub(crate) fn metadata_properties(headers: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    let mut properties: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, value) in headers.iter() {
        let Some(property) = name.as_str().strip_prefix(META) else {
            continue;
        };
        let value = value.as_bytes().trim_ascii();
        if value.is_empty() || property.is_empty() {
            continue;
        }
        let property: String = property
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        match properties.iter_mut().find(|(p, _)| *p == property) {
            Some((_, values)) => {
                values.push(b',');
                values.extend_from_slice(value);
            }
            None => properties.push((property, value.to_vec())),
        }
    }
    properties
}

/// A new object's media type where its write names none: HCP's "determined by HCP based on
/// the object name", else `application/octet-stream` (manual, GET object's Content-Type) — the
/// same at every backend, where AWS would store `binary/octet-stream`. A copy names its media
/// type only with new metadata (REPLACE); under COPY the source's is kept.
fn named_media_type(head: &mut RequestHead, out: &Outbound<'_>) {
    use Operation::*;
    let replaces = || {
        out.headers
            .get("x-amz-metadata-directive")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::request::validate::metadata_directive)
            == Some("REPLACE")
    };
    let writes = match out.op {
        PutObject | CreateMultipartUpload => true,
        CopyObject => replaces(),
        _ => false,
    };
    if !writes || out.headers.contains_key(http::header::CONTENT_TYPE) {
        return;
    }
    let key = out.target.key().unwrap_or_default();
    head.insert("content-type", media_type_of(&key).as_bytes());
}

/// The media type of an object named `key`, by its name's extension (after the last `.` of its
/// last segment).
pub fn media_type_of(key: &[u8]) -> &'static str {
    let name = key.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let extension = match name.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => std::str::from_utf8(&name[dot + 1..]).ok(),
        _ => None,
    };
    extension
        .filter(|e| !e.is_empty())
        .and_then(|e| mime_guess::from_ext(e).first_raw())
        .unwrap_or("application/octet-stream")
}

/// The effects the gateway decided on (`Params::effects`), as the S3 headers that carry them
/// out: HCP's retention and hold of a new object as Object Lock, a retention namespace's new
/// bucket with Object Lock. They replace any client header of the same name.
fn effect_headers(head: &mut RequestHead, op: Operation, effects: &Effects) {
    use Operation::*;
    let write = matches!(op, PutObject | CopyObject | CreateMultipartUpload);
    if let Some(p) = effects.protection.filter(|_| write) {
        if let Some((mode, until)) = p.retention {
            let date = time::OffsetDateTime::from_unix_timestamp(until)
                .ok()
                .and_then(|d| {
                    d.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .expect("retention dates are before 2554");
            head.insert("x-amz-object-lock-mode", mode.as_str().as_bytes());
            head.insert("x-amz-object-lock-retain-until-date", date.as_bytes());
        }
        if let Some(hold) = p.hold {
            let status: &[u8] = if hold { b"ON" } else { b"OFF" };
            head.insert("x-amz-object-lock-legal-hold", status);
        }
    }
    if let Some(owner) = effects.object_owner.as_deref().filter(|_| write) {
        head.insert(
            crate::request::object_owners::OWNER_METADATA,
            owner.as_bytes(),
        );
    }
    if effects.bypass_governance && matches!(op, DeleteObject | DeleteObjects) {
        head.insert("x-amz-bypass-governance-retention", b"true");
    }
    if effects.lock_bucket && op == CreateBucket {
        head.insert("x-amz-bucket-object-lock-enabled", b"true");
    }
}

/// SigV4 with the backend's credentials: the session token, `x-amz-date`, the payload hash,
/// then `Authorization` over every header that [`signed`] names.
fn sign_v4(
    head: &mut RequestHead,
    route: &Route<'_>,
    credentials: &SigningCredentials,
    (method, path, query): (&Method, &str, &str),
    payload_hash: &str,
    now: SystemTime,
    keys: &sigv4::SigningKeyCache,
) {
    thread_local! {
        static AUTHORIZATION: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    if let Some(token) = &credentials.token {
        head.insert("x-amz-security-token", token.expose().as_bytes());
    }
    let date_bytes = amz_date(now);
    let amz_date = std::str::from_utf8(&date_bytes).expect("an ASCII date");
    head.insert("x-amz-date", &date_bytes);
    head.insert("x-amz-content-sha256", payload_hash.as_bytes());
    // The fields to sign, sorted by name (stably: a repeated name's values keep their order),
    // and the distinct names: on the stack for any request but one with dozens of metadata
    // headers.
    let mut fields: smallvec::SmallVec<[(&str, &[u8]); 32]> =
        head.iter().filter(|(name, _)| signed(name)).collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut names: smallvec::SmallVec<[&str; 32]> = fields.iter().map(|f| f.0).collect();
    names.dedup();
    let region = &route.backend.region;
    let date = &amz_date[..8];
    // (Written in the thread's buffer, then copied into the head: the fields borrow it now.)
    let text = crate::kept::lend(&AUTHORIZATION);
    let authorization =
        sigv4::Authorization::begin_in(text, &credentials.access_key, (date, region, "s3"), &names);
    let canonical = sigv4::Canonical {
        method: method.as_str(),
        uri: |out: &mut String| out.push_str(path),
        query: |out: &mut String| out.push_str(query),
        signed_headers: authorization.signed_headers(),
        headers: sigv4::SortedHeaders(&fields),
        payload_hash,
    }
    .digest();
    let key = keys.get(credentials.secret.derived(), date, region, "s3");
    let signature = sigv4::request_signature(&key, amz_date, &[authorization.scope()], &canonical);
    let authorization = authorization.finish(signature.as_str());
    // (The fields and names borrow the head.)
    drop((fields, names));
    head.insert("authorization", authorization.as_bytes());
    crate::kept::give_back(&AUTHORIZATION, authorization);
}

/// OBS's own scheme: the `x-amz-*` headers become `x-obs-*` (checksums the gateway verified
/// itself are not sent: OBS rejects them), `x-obs-date` dates the request, and
/// `Authorization: OBS key:Base64(HMAC-SHA1(secret, StringToSign))` signs it (SigV2's shape
/// with OBS's headers and sub-resources).
fn sign_obs(
    head: &mut RequestHead,
    route: &Route<'_>,
    credentials: &SigningCredentials,
    path: &str,
    query: &str,
    now: SystemTime,
) {
    let amz: Vec<(String, Vec<u8>)> = head
        .iter()
        .filter(|(n, _)| n.starts_with("x-amz-"))
        .map(|(n, v)| (n.to_owned(), v.to_vec()))
        .collect();
    for (name, _) in &amz {
        head.remove(name);
    }
    for (name, value) in amz {
        let rest = &name["x-amz-".len()..];
        if rest.starts_with("checksum-") || rest == "sdk-checksum-algorithm" {
            continue;
        }
        head.append(&format!("x-obs-{rest}"), &value);
    }
    head.insert("x-obs-date", httpdate::fmt_http_date(now).as_bytes());
    if let Some(token) = &credentials.token {
        head.insert("x-obs-security-token", token.expose().as_bytes());
    }
    let backend = route.backend;
    let resource_target = Target {
        tenant: route.tenant.name.clone(),
        bucket: route.backend_bucket.clone(),
        raw_key: None,
        virtual_host: backend.addressing == AddressingStyle::Virtual
            && route.backend_bucket.is_some(),
    };
    let resource = sigv2::canonical_resource_in(
        &resource_target,
        path.as_bytes(),
        &crate::request::classify::Query::parse(query.as_bytes()),
        &sigv2::OBS,
    );
    // With x-obs-date, the Date line is empty.
    let fields = head.header_map();
    let string_to_sign =
        sigv2::string_to_sign_in(&head.method, &fields, "", &resource, &sigv2::OBS);
    let signature = base64::engine::general_purpose::STANDARD
        .encode(sigv2::sign(credentials.secret.expose(), &string_to_sign));
    let authorization = format!("OBS {}:{signature}", credentials.access_key);
    head.insert("authorization", authorization.as_bytes());
}

/// `x-amz-copy-source` read as S3 reads it: `[/]bucket/key[?versionId=…]`, bucket and key
/// percent-decoded; any other parameter after `?` is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: Vec<u8>,
    pub version_id: Option<String>,
}

impl CopySource {
    pub fn parse(value: &[u8]) -> Option<CopySource> {
        let v = value.strip_prefix(b"/").unwrap_or(value);
        let (path, query) = match v.iter().position(|&b| b == b'?') {
            Some(i) => (&v[..i], &v[i + 1..]),
            None => (v, &b""[..]),
        };
        let slash = path.iter().position(|&b| b == b'/')?;
        let bucket = percent_decode(&path[..slash])
            .decode_utf8()
            .ok()?
            .into_owned();
        let key: Vec<u8> = percent_decode(&path[slash + 1..]).collect();
        if bucket.is_empty() || key.is_empty() {
            return None;
        }
        // (An empty version id names no version: the source is the object, as a backend
        // would read it — so that what the gateway judges, a copy onto itself or not, is what
        // the backend does.)
        let version_id = crate::request::classify::Query::parse(query)
            .get("versionId")
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string);
        Some(CopySource {
            bucket,
            key,
            version_id,
        })
    }

    /// Whether the source is the object `target` names (a copy onto itself), whatever version
    /// of it the source names. Bucket names are not case-sensitive: the backend's is lower
    /// case.
    pub fn is(&self, target: &Target) -> bool {
        target
            .bucket
            .as_deref()
            .is_some_and(|b| b.eq_ignore_ascii_case(&self.bucket))
            && target.key().is_some_and(|k| *k == self.key[..])
    }
}

/// `x-amz-copy-source` for the backend, built from the validated source: the source's backend
/// bucket, its key encoded once, and its version id (nothing else the client wrote).
///
/// Ceph RGW decodes an UploadPartCopy's source twice — the whole header, then the key it cuts
/// from it at a literal `?versionId=` —: there the key is encoded twice, so that RGW reads the
/// key judged (encoded once, `%70ayroll` was read as `payroll`, another object, and
/// `k?versionId=v` as `k`'s version `v`). Its CopyObject decodes once, as S3 does.
fn copy_source(source: &CopySource, route: &Route<'_>, op: Operation) -> String {
    let mut out =
        String::with_capacity(source.key.len() * 9 + route.tenant.bucket_prefix.len() + 80);
    out.push('/');
    sigv4::uri_encode(
        backend_bucket_name(route.tenant, &source.bucket).as_bytes(),
        false,
        &mut out,
    );
    out.push('/');
    let key = path_key(&source.key, route);
    if op == Operation::UploadPartCopy && route.backend.dialect == Dialect::Ceph {
        let mut once = String::with_capacity(key.len() * 3);
        sigv4::uri_encode(key, true, &mut once);
        sigv4::uri_encode(once.as_bytes(), true, &mut out);
    } else {
        sigv4::uri_encode(key, true, &mut out);
    }
    if let Some(version) = &source.version_id {
        out.push_str("?versionId=");
        sigv4::uri_encode(version.as_bytes(), false, &mut out);
    }
    out
}

#[cfg(test)]
mod media_type_tests {
    use super::media_type_of;

    #[test]
    fn a_name_s_last_extension_names_its_type() {
        for (key, expected) in [
            (&b"report.pdf"[..], "application/pdf"),
            (b"dir.d/notes.TXT", "text/plain"),
            (b"archive.tar.gz", "application/gzip"),
            (b"dir.pdf/no-extension", "application/octet-stream"),
            (b".hidden", "application/octet-stream"),
            (b"trailing.", "application/octet-stream"),
            (b"folder/", "application/octet-stream"),
            (b"unknown.qqqq", "application/octet-stream"),
            (b"bad.\xff\xfe", "application/octet-stream"),
        ] {
            assert_eq!(
                media_type_of(key),
                expected,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }
}

#[cfg(test)]
// A test reads as one scenario: the screen-length rule is for the request path itself.
#[allow(clippy::too_many_lines)]
mod obs_tests {
    use super::*;
    use crate::config::Tenant;
    use crate::request::route::BackendRuntime;

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
            toml::from_str(include_str!("../../tests/vectors/obs.toml")).expect("vectors parse");
        let tenant = Tenant {
            name: "t".into(),
            folders: false,
            backend: "obs".into(),
            bucket_prefix: String::new(),
            anonymous: Default::default(),
            overwrite: crate::config::Overwrite::Allow,
            retention: Default::default(),
            records_bucket: None,
            anonymous_acls: false.into(),
            removed: false.into(),
            cors: None,
        };
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_528_268_920);
        for c in &v.case {
            let mut backend = BackendRuntime::for_tests();
            backend.signing = Signing::Obs;
            backend.credentials =
                std::sync::Arc::new(crate::backend::credentials::BackendCredentials::fixed(
                    v.access_key.clone(),
                    crate::request::authenticate::SecretKey::new(v.secret_key.clone()),
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
                pingora::http::RequestHeader::build(c.method.as_str(), path.as_bytes(), None)
                    .unwrap();
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
                bucket: Some(c.bucket.as_str().into()),
                raw_key: (!c.key.is_empty()).then(|| raw_key.into_bytes().into()),
                virtual_host: false,
            };
            let route = Route {
                tenant: &tenant,
                backend: &backend,
                backend_bucket: Some(c.bucket.as_str().into()),
                credentials: backend.credentials.fixed_now(),
            };
            let keys = sigv4::SigningKeyCache::default();
            let query = crate::request::classify::Query::parse(c.query.as_bytes());
            let copy = client.headers.contains_key("x-amz-copy-source");
            let op =
                crate::request::classify::classify(&client.method, &target, &query, copy).unwrap();
            let params = Params::of(op, &query);
            let out = Outbound {
                op,
                method: &client.method,
                params: &params,
                target: &target,
                headers: &client.headers,
            };
            let sent = backend_request(out, &route, BodyPlan::NONE, now, &keys);
            let authorization = std::str::from_utf8(sent.get("authorization").unwrap()).unwrap();
            assert_eq!(
                authorization, c.authorization,
                "{}: the SDK signed {:?}",
                c.name, c.string_to_sign
            );
            assert!(
                !sent.iter().any(|(n, _)| n.starts_with("x-amz-")),
                "{}: x-amz headers sent to OBS",
                c.name
            );
        }
    }
}

#[cfg(test)]
mod effect_tests {
    use super::*;
    use crate::config::Tenant;
    use crate::hcp::retention::{LockMode, Protection};
    use crate::request::route::BackendRuntime;

    /// The content headers are the object's metadata headers but custom metadata: the one
    /// set a copy under REPLACE takes from the request and a metadata change keeps.
    #[test]
    fn content_headers_are_the_metadata_attributes_but_custom_metadata() {
        let names = [
            "content-type",
            "content-encoding",
            "content-disposition",
            "content-language",
            "cache-control",
            "expires",
            "content-length",
            "content-md5",
            "content-range",
            "x-amz-acl",
            "x-amz-storage-class",
            "etag",
        ];
        for name in names {
            let content = CONTENT_HEADERS.iter().any(|h| h == name);
            assert_eq!(metadata_attribute(name), content, "{name}");
        }
        assert!(CONTENT_HEADERS.iter().all(|h| names.contains(&h.as_str())));
    }

    /// Object `k` in bucket `b` of tenant `t`.
    fn target_k() -> Target {
        Target {
            tenant: "t".into(),
            bucket: Some("b".into()),
            raw_key: Some(b"k"[..].into()),
            virtual_host: false,
        }
    }

    /// A PUT of `target` with `params` and the client's `headers`.
    fn put_k<'a>(
        params: &'a Params,
        target: &'a Target,
        headers: &'a http::HeaderMap,
    ) -> Outbound<'a> {
        Outbound {
            op: Operation::PutObject,
            method: &Method::PUT,
            params,
            target,
            headers,
        }
    }

    /// `tenant`'s route to bucket `b` of `backend`.
    fn route_b<'a>(tenant: &'a Tenant, backend: &'a BackendRuntime) -> Route<'a> {
        Route {
            tenant,
            backend,
            backend_bucket: Some("b".into()),
            credentials: backend.credentials.fixed_now(),
        }
    }

    /// HCP's retention as the gateway decided it reaches the backend as Object Lock headers —
    /// S3's names, or OBS's under its native signing — and a delete's bypass as S3's header.
    #[test]
    fn effects_become_the_backend_s_object_lock_headers() {
        let tenant = Tenant::for_tests();
        let target = target_k();
        let mut params = Params::default();
        params.effects.protection = Some(Protection {
            retention: Some((LockMode::Compliance, 1_800_000_000)),
            hold: Some(true),
        });
        let keys = sigv4::SigningKeyCache::default();
        let client = http::HeaderMap::new();
        for (signing, prefix) in [(Signing::V4, "x-amz-"), (Signing::Obs, "x-obs-")] {
            let mut backend = BackendRuntime::for_tests();
            backend.signing = signing;
            let route = route_b(&tenant, &backend);
            let out = put_k(&params, &target, &client);
            let sent = backend_request(out, &route, BodyPlan::NONE, SystemTime::UNIX_EPOCH, &keys);
            let header = |name: &str| {
                String::from_utf8(sent.get(&format!("{prefix}{name}")).unwrap().to_vec()).unwrap()
            };
            assert_eq!(header("object-lock-mode"), "COMPLIANCE");
            assert_eq!(
                header("object-lock-retain-until-date"),
                "2027-01-15T08:00:00Z"
            );
            assert_eq!(header("object-lock-legal-hold"), "ON");
        }
        // Only writes carry a protection; a delete carries the bypass.
        let backend = BackendRuntime::for_tests();
        let route = route_b(&tenant, &backend);
        params.effects.bypass_governance = true;
        let out = Outbound {
            op: Operation::DeleteObject,
            method: &Method::DELETE,
            params: &params,
            target: &target,
            headers: &client,
        };
        let sent = backend_request(out, &route, BodyPlan::NONE, SystemTime::UNIX_EPOCH, &keys);
        assert!(!sent.contains("x-amz-object-lock-mode"));
        assert_eq!(
            sent.get("x-amz-bypass-governance-retention"),
            Some(&b"true"[..])
        );
    }

    /// A body the gateway frames itself (`Trailed`) is announced as such, signed: its framed
    /// length, its decoded length, aws-chunked before the object's own coding (the client's
    /// aws-chunked and checksum announcement stay behind), its trailer, the streaming
    /// payload value; the trailer of the algorithm asked.
    #[test]
    fn a_trailed_body_is_announced_as_the_gateway_frames_it() {
        use crate::backend::aws_chunked;
        let tenant = Tenant::for_tests();
        let backend = BackendRuntime::for_tests();
        let route = route_b(&tenant, &backend);
        let target = target_k();
        let keys = sigv4::SigningKeyCache::default();
        use aws_chunked::ChecksumAlgorithm::{Crc32, Sha256};
        for (coding, sent_coding, algorithm) in [
            (&[][..], "aws-chunked", Crc32),
            (&["aws-chunked,gzip"], "aws-chunked,gzip", Sha256),
            (&["gzip"], "aws-chunked,gzip", Crc32),
            (&["gzip", "aws-chunked, br"], "aws-chunked,gzip,br", Sha256),
        ] {
            let mut client = http::HeaderMap::new();
            for c in coding {
                client.append("content-encoding", c.parse().unwrap());
                client.insert("x-amz-sdk-checksum-algorithm", "SHA256".parse().unwrap());
            }
            let params = Params::default();
            let out = put_k(&params, &target, &client);
            let plan = BodyPlan {
                length: Some(100_000),
                framing: BodyFraming::Trailed(algorithm),
                payload_hash: aws_chunked::PAYLOAD,
            };
            let sent = backend_request(out, &route, plan, SystemTime::UNIX_EPOCH, &keys);
            let framed = aws_chunked::framed_length(100_000, algorithm).to_string();
            let (trailer, name) = match algorithm {
                Crc32 => ("x-amz-checksum-crc32", "CRC32"),
                _ => ("x-amz-checksum-sha256", "SHA256"),
            };
            for (name, value) in [
                ("content-length", framed.as_str()),
                ("x-amz-decoded-content-length", "100000"),
                ("content-encoding", sent_coding),
                ("x-amz-trailer", trailer),
                ("x-amz-sdk-checksum-algorithm", name),
                ("x-amz-content-sha256", aws_chunked::PAYLOAD),
            ] {
                let all: Vec<&[u8]> = sent.get_all(name).collect();
                assert_eq!(all, [value.as_bytes()], "{coding:?}: {name}");
            }
            let auth = String::from_utf8(sent.get("authorization").unwrap().to_vec()).unwrap();
            assert!(
                auth.contains("x-amz-decoded-content-length;x-amz-sdk-checksum-algorithm;")
                    && auth.contains("x-amz-trailer"),
                "{auth}"
            );
        }
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use crate::backend::credentials::BackendCredentials;
    use crate::config::Tenant;
    use crate::request::route::BackendRuntime;
    use http::{HeaderName, HeaderValue};
    use pingora::http::RequestHeader;

    fn sent_with_token(signing: Signing) -> RequestHead {
        let mut backend = BackendRuntime::for_tests();
        backend.signing = signing;
        backend.credentials = std::sync::Arc::new(BackendCredentials::fixed(
            "TMPAK".into(),
            crate::request::authenticate::SecretKey::new("tmp-secret"),
            Some(crate::request::authenticate::SecretKey::new(
                "temporary-token",
            )),
        ));
        let client = RequestHeader::build("GET", b"/b/k", None).unwrap();
        sent(&backend, &client, Operation::GetObject, BodyPlan::NONE)
    }

    /// `client`'s request for `/b/k`, classified as `op`, as `backend` gets it.
    fn sent(
        backend: &BackendRuntime,
        client: &RequestHeader,
        op: Operation,
        body: BodyPlan<'_>,
    ) -> RequestHead {
        let tenant = Tenant::for_tests();
        let route = Route {
            tenant: &tenant,
            backend,
            backend_bucket: Some("b".into()),
            credentials: backend.credentials.fixed_now(),
        };
        let target = Target {
            tenant: "t".into(),
            bucket: Some("b".into()),
            raw_key: Some(b"k"[..].into()),
            virtual_host: false,
        };
        let keys = sigv4::SigningKeyCache::default();
        let params = Params::default();
        let out = Outbound {
            op,
            method: &client.method,
            params: &params,
            target: &target,
            headers: &client.headers,
        };
        backend_request(out, &route, body, SystemTime::now(), &keys)
    }

    /// The backend's `Authorization` is the one the string-built rule gives (names collected,
    /// sorted and joined, a canonical request, a string to sign, a signature, the value's
    /// format) with any number of signed headers — below, at and past the names the signer
    /// keeps on the stack.
    #[test]
    fn signatures_with_any_number_of_headers_are_the_rule_s() {
        let backend = BackendRuntime::for_tests();
        for metadata in [0, 1, 27, 28, 29, 30, 40, 70] {
            let mut client = RequestHeader::build("PUT", b"/b/k", None).unwrap();
            // Names in no particular order, so that the sort has work to do.
            for i in (0..metadata).rev() {
                client
                    .insert_header(format!("x-amz-meta-m{:02}", (i * 37) % 97), format!("v{i}"))
                    .unwrap();
            }
            let plan = BodyPlan {
                length: Some(0),
                framing: BodyFraming::AsSent,
                payload_hash: sigv4::EMPTY_SHA256,
            };
            let req = sent(&backend, &client, Operation::PutObject, plan);
            let h = &req.header_map();
            let mut names: Vec<&str> = h
                .keys()
                .map(HeaderName::as_str)
                .filter(|n| {
                    *n == "host"
                        || *n == "content-md5"
                        || *n == "content-type"
                        || n.starts_with("x-amz-")
                })
                .collect();
            names.sort_unstable();
            assert!(names.len() >= metadata, "{metadata}: {names:?}");
            let signed_headers = names.join(";");
            let amz_date = h["x-amz-date"].to_str().unwrap();
            let canonical = sigv4::canonical_request(
                "PUT",
                std::str::from_utf8(req.raw_path()).unwrap(),
                "",
                &signed_headers,
                |n: &str| h.get_all(n).iter().map(HeaderValue::as_bytes),
                sigv4::EMPTY_SHA256,
            );
            let scope = sigv4::scope(&amz_date[..8], &backend.region, "s3");
            let creds = backend.credentials.fixed_now().unwrap();
            let key = sigv4::SigningKey::derive(
                creds.secret.expose(),
                &amz_date[..8],
                &backend.region,
                "s3",
            );
            let signature =
                sigv4::signature(&key, &sigv4::string_to_sign(amz_date, &scope, &canonical));
            let expected =
                sigv4::authorization(&creds.access_key, &scope, &signed_headers, &signature);
            assert_eq!(
                h["authorization"].to_str().unwrap(),
                expected,
                "{metadata} headers"
            );
        }
    }

    /// Temporary credentials: the security token goes with the request and is signed — as
    /// `x-amz-security-token` in SigV4, as `x-obs-security-token` in OBS's scheme.
    #[test]
    fn security_tokens_are_sent_and_signed() {
        let v4 = sent_with_token(Signing::V4);
        assert_eq!(
            v4.get("x-amz-security-token"),
            Some(&b"temporary-token"[..])
        );
        let auth = std::str::from_utf8(v4.get("authorization").unwrap()).unwrap();
        assert!(auth.contains("x-amz-security-token"), "{auth}");

        let obs = sent_with_token(Signing::Obs);
        assert_eq!(
            obs.get("x-obs-security-token"),
            Some(&b"temporary-token"[..])
        );
        let fields = obs.header_map();
        let string_to_sign =
            sigv2::string_to_sign_in(&obs.method, &fields, "", "/b/k", &sigv2::OBS);
        assert!(string_to_sign.contains("x-obs-security-token:temporary-token\n"));
        let expected = base64::engine::general_purpose::STANDARD
            .encode(sigv2::sign("tmp-secret", &string_to_sign));
        assert_eq!(
            obs.get("authorization"),
            Some(format!("OBS TMPAK:{expected}").as_bytes())
        );
    }
}

/// The invariant of the whole request path, as a property over thousands of generated requests
/// (method, path, query, headers, including hostile ones): whatever the client sends, a request
/// that passes classification and validation reaches the backend as the operation it was
/// classified as — same method, same bucket and key, at most one operation-selecting
/// sub-resource, no query name outside that operation's list, no header outside the ones it
/// defines plus the gateway's own, no key that leaves its bucket.
#[cfg(test)]
// A test reads as one scenario: the screen-length rule is for the request path itself.
#[allow(clippy::too_many_lines)]
mod oracle_tests {
    use super::*;
    use crate::config::Tenant;
    use crate::request::authorize;
    use crate::request::classify::{classify, Query};
    use crate::request::route::BackendRuntime;
    use crate::request::validate;
    use pingora::http::RequestHeader;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"];
    const SEGMENTS: &[&str] = &[
        "a",
        "b",
        "..",
        ".",
        "%2e%2e",
        ".%2E",
        "%2F",
        "x%2F..%2Fy",
        "%00",
        "%FF",
        "ü",
        "sp%20ce",
        "",
        "dir",
        ".directory-metadata",
        "~",
        "a+b",
        // Over s3s's 1,024 bytes in a path: the embedded store reads it from a header.
        LONG_SEGMENT,
    ];
    /// A key segment of 1,278 bytes: three times five runs of 85, and an end.
    macro_rules! long {
        () => {
            concat!(five!(), five!(), five!(), "end")
        };
    }
    macro_rules! five {
        () => {
            concat!(run!(), run!(), run!(), run!(), run!())
        };
    }
    macro_rules! run {
        () => {
            "long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-"
        };
    }
    const LONG_SEGMENT: &str = long!();
    /// Query names besides the selecting ones: the operations' parameters, presigned
    /// credentials and names no operation defines.
    const PARAMETERS: &[&str] = &[
        "partNumber",
        "versionId",
        "list-type",
        "prefix",
        "delimiter",
        "marker",
        "max-keys",
        "continuation-token",
        "start-after",
        "fetch-owner",
        "encoding-type",
        "key-marker",
        "upload-id-marker",
        "version-id-marker",
        "max-uploads",
        "max-parts",
        "part-number-marker",
        "response-content-type",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "AWSAccessKeyId",
        "Signature",
        "x-id",
        "foo",
        "UPLOADS",
        "x-amz-copy-source",
    ];
    const VALUES: &[&str] = &[
        "", "1", "2", "x", "u1", "a%2Fb", "..", "%2e%2e/x", "v1", "10001",
    ];
    const HEADERS: &[(&str, &[&str])] = &[
        (
            "x-amz-acl",
            &["private", "public-read", "public-read-write"],
        ),
        (
            "x-amz-grant-read",
            &["uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""],
        ),
        ("x-amz-grant-full-control", &["id=\"someone\""]),
        ("x-amz-grant-everything", &["id=\"someone\""]),
        ("x-amz-tagging", &["a=b"]),
        ("x-amz-object-lock-legal-hold", &["ON"]),
        ("x-amz-object-lock-mode", &["COMPLIANCE"]),
        (
            "x-amz-object-lock-retain-until-date",
            &["2099-01-01T00:00:00Z"],
        ),
        ("x-amz-bucket-object-lock-enabled", &["true", "false"]),
        ("x-amz-website-redirect-location", &["/x"]),
        (
            "x-amz-bypass-governance-retention",
            &["true", "false", "TRUE"],
        ),
        ("x-amz-expected-bucket-owner", &["123"]),
        ("x-amz-mfa", &["x 1"]),
        ("x-amz-request-payer", &["requester"]),
        (
            "x-amz-copy-source",
            &[
                "/bkt/src",
                "/bkt/../victim/s",
                "bkt/a%2F..%2F..%2Fx",
                "/other/k?versionId=1&acl",
                "/bkt/",
                concat!("/bkt/", long!()),
                concat!("/bkt/", long!(), "%2F..%2Fx"),
            ],
        ),
        // The embedded store's own headers, forged by a client.
        ("x-amz-gateway-key", &["victim", "%2F..%2Fx"]),
        ("x-amz-gateway-copy-source-key", &["secret"]),
        (
            "x-amz-copy-source-range",
            &["bytes=0-1", "bytes=+0-5", "bytes=0005-9"],
        ),
        (
            "x-amz-metadata-directive",
            &["REPLACE", "replace", " Copy", "MOVE"],
        ),
        ("x-amz-meta-color", &["red"]),
        (
            "if-modified-since",
            &[
                "Tue, 07 Feb 2017 14:27:05 +0000",
                "Tuesday, 07-Feb-17 14:27:05 GMT",
                "Tue Feb  7 14:27:05 2017",
                "Tue Feb 7 14:27:05 2017",
                "Tuesday, 07-Feb-2017 14:27:05 +0000",
                "yesterday",
            ],
        ),
        (
            "x-amz-copy-source-if-unmodified-since",
            &["Tue, 07 Feb 2017 14:27:05 GMT", "2017-02-07"],
        ),
        ("x-amz-storage-class", &["STANDARD"]),
        ("x-amz-server-side-encryption", &["AES256"]),
        ("x-amz-server-side-encryption-kms-key-id", &["k"]),
        (
            "x-amz-server-side-encryption-customer-algorithm",
            &["AES256"],
        ),
        ("x-hcp-retention", &["A+1y"]),
        ("x-hcp-pretty-print", &["true"]),
        ("content-type", &["text/plain"]),
        ("content-md5", &["1B2M2Y8AsgTpgAmY7PhCfg=="]),
        (
            "range",
            &[
                "bytes=0-1",
                "bytes=5-2",
                "bytes=-3",
                " bytes=4-",
                "bytes=0-1,3-4",
            ],
        ),
        ("if-match", &["\"e\""]),
        ("if-none-match", &["*"]),
        ("origin", &["http://a"]),
        ("access-control-request-method", &["PUT"]),
        ("x-forwarded-for", &["10.0.0.1"]),
        ("x-custom", &["1"]),
        ("cookie", &["a=b"]),
        ("content-length", &["0", "5"]),
    ];
    /// Names that select an operation at an S3 server: two of them would let the backend choose.
    const SELECTING: &[&str] = &[
        "acl",
        "cors",
        "delete",
        "lifecycle",
        "location",
        "uploads",
        "versioning",
        "versions",
        "policy",
        "tagging",
        "website",
        "restore",
        "retention",
        "legal-hold",
        "select",
        "object-lock",
        "torrent",
        "attributes",
        "logging",
        "notification",
        "replication",
        "uploadId",
    ];
    /// Headers the gateway itself sets on every backend request.
    const OWN: &[&str] = &[
        "host",
        "content-length",
        "x-amz-date",
        "x-amz-content-sha256",
        "authorization",
    ];

    fn request(rng: &mut StdRng) -> (RequestHeader, Target) {
        let method = *METHODS.choose(rng).unwrap();
        let key = match rng.gen_range(0..4) {
            0 => None,
            _ => {
                let n = rng.gen_range(1..5);
                let segs: Vec<&str> = (0..n).map(|_| *SEGMENTS.choose(rng).unwrap()).collect();
                Some(segs.join("/"))
            }
        };
        let mut query: Vec<String> = Vec::new();
        for _ in 0..rng.gen_range(0..6) {
            let pick = rng.gen_range(0..SELECTING.len() + PARAMETERS.len());
            let name = SELECTING
                .get(pick)
                .unwrap_or_else(|| &PARAMETERS[pick - SELECTING.len()]);
            query.push(match rng.gen_range(0..3) {
                0 => name.to_string(),
                _ => format!("{name}={}", VALUES.choose(rng).unwrap()),
            });
        }
        let mut path = String::from("/bkt");
        if let Some(k) = &key {
            path.push('/');
            path.push_str(k);
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        let mut req = RequestHeader::build(method, path.as_bytes(), None).unwrap();
        for _ in 0..rng.gen_range(0..7) {
            let (name, values) = HEADERS.choose(rng).unwrap();
            req.insert_header(*name, *values.choose(rng).unwrap())
                .unwrap();
        }
        let target = Target {
            tenant: "t".into(),
            bucket: Some("bkt".into()),
            raw_key: key.map(|k| k.into_bytes().into()),
            virtual_host: false,
        };
        (req, target)
    }

    #[test]
    fn what_reaches_the_backend_is_what_was_classified_and_validated() {
        let tenant = Tenant {
            name: "t".into(),
            folders: false,
            backend: "b".into(),
            bucket_prefix: "ta-".into(),
            anonymous: Default::default(),
            overwrite: crate::config::Overwrite::Allow,
            retention: Default::default(),
            records_bucket: None,
            anonymous_acls: false.into(),
            removed: false.into(),
            cors: None,
        };
        // The embedded store, which takes long keys in a header, and a backend that does not.
        let store = BackendRuntime::for_tests();
        let mut plain = BackendRuntime::for_tests();
        plain.target = crate::config::BackendTarget::Local {
            data_dir: "/nonexistent".into(),
            engine: crate::config::LocalEngine::S3sFs,
        };
        assert!(store.long_keys_in_header() && !plain.long_keys_in_header());
        let route_to = |backend| Route {
            tenant: &tenant,
            backend,
            backend_bucket: Some("ta-bkt".into()),
            credentials: store.credentials.fixed_now(),
        };
        let routes = [route_to(&store), route_to(&plain)];
        let keys = sigv4::SigningKeyCache::default();
        let limits = validate::Limits::default();
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let (mut forwarded, mut refused, mut long) = (0, 0, 0);
        for case in 0..50_000 {
            let (req, target) = request(&mut rng);
            let (_, raw_query) = crate::sig::split_target(req.raw_path());
            let query = Query::parse(raw_query);
            let copy = req.headers.contains_key("x-amz-copy-source");
            let Ok(op) = classify(&req.method, &target, &query, copy) else {
                refused += 1;
                continue;
            };
            let chunked = req
                .headers
                .get("x-amz-content-sha256")
                .is_some_and(|v| v.as_bytes().starts_with(b"STREAMING-"));
            let folder = crate::request::folders::FolderWrite::None;
            if validate::check(op, &target, &query, &req, (chunked, folder), &limits).is_err() {
                refused += 1;
                continue;
            }
            forwarded += 1;
            let params = Params::of(op, &query);
            let out = Outbound {
                op,
                method: &req.method,
                params: &params,
                target: &target,
                headers: &req.headers,
            };
            let route = &routes[case % 2];
            let sent = backend_request(out, route, BodyPlan::NONE, SystemTime::UNIX_EPOCH, &keys);
            let what = format!(
                "case {case}: {} {} as {op:?} → {} {}",
                req.method,
                String::from_utf8_lossy(req.raw_path()),
                sent.method,
                String::from_utf8_lossy(sent.raw_path())
            );

            // A head the session writes: nothing in it was refused.
            assert!(!sent.is_malformed(), "{what}");
            let sent_headers = sent.header_map();
            // Values the gateway judged are sent as it read them, in S3's spelling.
            let client = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
            let sent_value = |n: &str| sent_headers.get(n).and_then(|v| v.to_str().ok());
            if let Some(directive) = sent_value("x-amz-metadata-directive") {
                let read =
                    client("x-amz-metadata-directive").and_then(validate::metadata_directive);
                assert_eq!(Some(directive), read, "{what}");
            }
            for n in ["if-modified-since", "x-amz-copy-source-if-unmodified-since"] {
                if let Some(date) = sent_value(n) {
                    let read = client(n).and_then(validate::condition_date);
                    assert_eq!(read.map(httpdate::fmt_http_date).as_deref(), Some(date));
                }
            }
            if let Some(range) = sent_value("range") {
                let read = client("range").and_then(validate::object_range);
                assert_eq!(Some(range), read.as_deref(), "{what}");
            }
            if let Some(range) = sent_value("x-amz-copy-source-range") {
                let read = client("x-amz-copy-source-range").and_then(validate::copy_range);
                let (first, last) = read.expect("a range judged");
                assert_eq!(range, format!("bytes={first}-{last}"), "{what}");
            }
            // The same method, bucket and key — the key as the backend reads it: the path's,
            // or for the placeholder the store's header.
            assert_eq!(sent.method, req.method, "{what}");
            let (path, query) = crate::sig::split_target(sent.raw_path());
            let path: Vec<u8> = percent_decode(path).collect();
            let read = |key: &[u8], header: &str| -> Vec<u8> {
                if key != wire::PLACEHOLDER.as_bytes() {
                    return key.to_vec();
                }
                assert!(route.backend.long_keys_in_header(), "{what}");
                let sent_key = sent_headers.get(header).expect("the key's header");
                let sent_key: Vec<u8> = percent_decode(sent_key.as_bytes()).collect();
                assert!(sent_key.len() > wire::PATH_KEY_LIMIT, "{what}");
                sent_key
            };
            let path_key = path.strip_prefix(b"/ta-bkt/").expect("the tenant's bucket");
            assert_eq!(
                read(path_key, wire::KEY_HEADER),
                target.key().unwrap_or_default().into_owned(),
                "{what}"
            );
            // The store's key headers are the gateway's, set only with the placeholder.
            for (header, placeholder) in [
                (wire::KEY_HEADER, path_key == wire::PLACEHOLDER.as_bytes()),
                (
                    wire::COPY_SOURCE_KEY_HEADER,
                    sent_headers.get("x-amz-copy-source").is_some_and(|v| {
                        CopySource::parse(v.as_bytes()).unwrap().key == wire::PLACEHOLDER.as_bytes()
                    }),
                ),
            ] {
                assert_eq!(sent_headers.contains_key(header), placeholder, "{what}");
                long += usize::from(placeholder);
            }
            // The key cannot leave the bucket.
            if let Some(k) = target.key() {
                assert!(
                    !k.split(|&b| b == b'/').any(|s| s == b".." || s == b"."),
                    "{what}"
                );
            }
            // The query: the operation's own names only, at most one selecting sub-resource.
            let parsed = Query::parse(query);
            let names: Vec<&str> = parsed.pairs().map(|(n, _)| n).collect();
            let selecting = names.iter().filter(|n| SELECTING.contains(n)).count();
            assert!(selecting <= 1, "{what}");
            for n in &names {
                let own_sub = matches!(
                    op,
                    Operation::BucketSubresource | Operation::ObjectSubresource
                ) && SELECTING.contains(n);
                assert!(own_sub || op.defined_params().contains(n), "{what}: {n}");
            }
            // Headers: the operation's, or the gateway's own.
            for name in sent_headers.keys() {
                let n = name.as_str();
                assert!(
                    OWN.contains(&n)
                        || defines_header(op, n)
                        || n == wire::KEY_HEADER
                        || n == wire::COPY_SOURCE_KEY_HEADER,
                    "{what}: header {n}"
                );
                assert!(!n.starts_with("x-hcp-"), "{what}: {n}");
                // Of encryption, only a customer's key is offered (a name S3 does not define
                // may be one a backend does: OBS's KMS key id, renamed).
                assert!(
                    !n.starts_with("x-amz-server-side-encryption")
                        || n.starts_with("x-amz-server-side-encryption-customer-"),
                    "{what}: {n}"
                );
                assert!(n != "x-amz-tagging", "{what}: {n}");
                // An Object Lock effect reaches the backend only with its permission.
                let needs = authorize::required_by_headers(op, &req.headers);
                let lock_permission = match n {
                    "x-amz-object-lock-mode" | "x-amz-object-lock-retain-until-date" => {
                        Some(authorize::Permission::PutObjectRetention)
                    }
                    "x-amz-object-lock-legal-hold" => {
                        Some(authorize::Permission::PutObjectLegalHold)
                    }
                    "x-amz-bucket-object-lock-enabled"
                        if sent_headers[n].as_bytes().eq_ignore_ascii_case(b"true") =>
                    {
                        Some(authorize::Permission::PutBucketObjectLockConfiguration)
                    }
                    "x-amz-bypass-governance-retention"
                        if sent_headers[n].as_bytes().eq_ignore_ascii_case(b"true") =>
                    {
                        Some(authorize::Permission::BypassGovernanceRetention)
                    }
                    _ => None,
                };
                if let Some(p) = lock_permission {
                    assert!(needs.contains(&p), "{what}: {n} without {p:?}");
                }
                assert!(
                    !matches!(
                        n,
                        "x-amz-expected-bucket-owner"
                            | "x-amz-grant-everything"
                            | "x-amz-mfa"
                            | "x-amz-request-payer"
                            | "cookie"
                            | "x-forwarded-for"
                            | "x-custom"
                    ),
                    "{what}: {n}"
                );
            }
            // An ACL header reaches the backend only where the operation sets ACLs, and then
            // authorisation asks for write-acl (the operation's own or the headers').
            if sent_headers.keys().any(|n| {
                n.as_str() == "x-amz-acl" && sent_headers["x-amz-acl"] != "private"
                    || n.as_str().starts_with("x-amz-grant-")
            }) {
                let write_acl = authorize::Permission::WriteAcl;
                let needs = authorize::required_by_headers(op, &req.headers);
                assert!(
                    needs.contains(&write_acl)
                        || authorize::required(op, &req.method) == Some(write_acl),
                    "{what}"
                );
            }
            // A copy source names the tenant's bucket and a key that stays in it.
            if let Some(source) = sent_headers.get("x-amz-copy-source") {
                let source = CopySource::parse(source.as_bytes()).expect("a parsed source");
                assert!(source.bucket.starts_with("ta-"), "{what}");
                let key = read(&source.key, wire::COPY_SOURCE_KEY_HEADER);
                let sent_source = CopySource::parse(req.headers["x-amz-copy-source"].as_bytes());
                assert_eq!(key, sent_source.expect("the client's source").key, "{what}");
                assert!(
                    !key.split(|&b| b == b'/').any(|s| s == b".." || s == b"."),
                    "{what}"
                );
            }
        }
        assert!(
            forwarded > 5_000 && refused > 1_000 && long > 100,
            "{forwarded} forwarded, {refused} refused, {long} long keys by header"
        );
    }
}

#[cfg(test)]
mod date_tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// The value made once a second is the date of the time asked, whatever was asked before:
    /// within one second, across seconds, backwards, and before the epoch.
    #[test]
    fn amz_dates_made_once_a_second_are_the_time_asked() {
        let at = |secs: u64, millis: u64| UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis);
        let times = [
            at(1_700_000_000, 0),
            at(1_700_000_000, 999),
            at(1_700_000_001, 1),
            at(1_700_000_000, 500),
            at(86_399, 0),
            at(86_400, 0),
            UNIX_EPOCH - Duration::from_secs(1),
        ];
        for t in times {
            assert_eq!(&amz_date(t), format_amz_date(t).as_bytes(), "{t:?}");
        }
    }
}

#[cfg(test)]
mod ceph_tests {
    use super::*;
    use crate::config::Tenant;
    use crate::request::route::BackendRuntime;
    use pingora::http::RequestHeader;

    /// What Ceph RGW reads of a copy's source: its conditions under RGW's own names as well
    /// (a CopyObject), the key encoded twice (a part copy, whose source RGW decodes twice) —
    /// and for any other dialect S3's spelling alone.
    #[test]
    fn rgw_reads_the_source_judged() {
        let tenant = Tenant::for_tests();
        let aws = BackendRuntime::for_tests();
        let mut ceph = BackendRuntime::for_tests();
        ceph.dialect = Dialect::Ceph;
        let keys = sigv4::SigningKeyCache::default();
        let sent = |backend: &BackendRuntime, op: Operation, path: &str| {
            let route = Route {
                tenant: &tenant,
                backend,
                backend_bucket: Some("bkt".into()),
                credentials: aws.credentials.fixed_now(),
            };
            let mut req = RequestHeader::build("PUT", path.as_bytes(), None).unwrap();
            req.insert_header("x-amz-copy-source", "/src/%2570ayroll%3FversionId%3Dv")
                .unwrap();
            req.insert_header("x-amz-copy-source-if-match", "\"e\"")
                .unwrap();
            let target = Target {
                tenant: "t".into(),
                bucket: Some("bkt".into()),
                raw_key: Some(b"k".to_vec().into()),
                virtual_host: false,
            };
            let (_, query) = crate::sig::split_target(path.as_bytes());
            let query = crate::request::classify::Query::parse(query);
            let params = Params::of(op, &query);
            let out = Outbound {
                op,
                method: &req.method,
                params: &params,
                target: &target,
                headers: &req.headers,
            };
            let head = backend_request(out, &route, BodyPlan::NONE, SystemTime::UNIX_EPOCH, &keys);
            let header = |n: &str| head.get(n).map(|v| String::from_utf8_lossy(v).into_owned());
            (
                header("x-amz-copy-source"),
                header("x-amz-copy-source-if-match"),
                header("x-amz-copy-if-match"),
            )
        };
        let once = "/src/%2570ayroll%3FversionId%3Dv";
        let twice = "/src/%252570ayroll%253FversionId%253Dv";
        let pin = Some("\"e\"".to_string());
        let copy = sent(&ceph, Operation::CopyObject, "/bkt/k");
        assert_eq!(copy, (Some(once.into()), pin.clone(), pin.clone()));
        let part = sent(
            &ceph,
            Operation::UploadPartCopy,
            "/bkt/k?partNumber=1&uploadId=u",
        );
        assert_eq!(part.0.as_deref(), Some(twice));
        assert_eq!(part.2, None);
        for op in [Operation::CopyObject, Operation::UploadPartCopy] {
            let path = match op {
                Operation::CopyObject => "/bkt/k",
                _ => "/bkt/k?partNumber=1&uploadId=u",
            };
            assert_eq!(sent(&aws, op, path), (Some(once.into()), pin.clone(), None));
        }
    }
}

//! Validation by HCP's rules, before anything reaches the backend (the rule numbers are those of
//! the validation table in `docs/validation.md`, which also records the judgement calls).

pub mod acl;
pub mod cors_document;
pub mod lock_document;
pub(crate) mod probes;
pub mod retention;
mod strict_xml;
pub mod uploads;

use pingora::http::RequestHeader;

use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::address::Target;
use crate::request::classify::{Operation, Query};

/// Limits HCP sets, as configured (`[limits]` in config.toml; defaults are HCP's, capped by
/// what the backends store).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// HCP's 4,095 bytes; each backend's own limit (`max_key_bytes` of `[[backends]]`) is
    /// checked when the request is routed.
    pub max_key_bytes: usize,
    pub max_metadata_bytes: usize,
    pub max_part_bytes: u64,
    pub max_put_bytes: u64,
    pub min_part_bytes: u64,
    /// POST object files are held in memory (their length must be known before the backend PUT).
    pub max_post_object_bytes: u64,
    /// Control documents read whole (complete, multi-object delete, ACLs); a complete listing
    /// 10,000 parts is about 0.8 MiB.
    pub max_control_body_bytes: usize,
    /// The request line and headers together (pingora itself stops at 1 MiB).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 4095,
            max_metadata_bytes: 2048,
            max_part_bytes: 5 * 1024 * 1024 * 1024,
            max_put_bytes: 5 * 1024 * 1024 * 1024,
            min_part_bytes: 1024 * 1024,
            max_post_object_bytes: 32 * 1024 * 1024,
            max_control_body_bytes: 4 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Canned ACLs HCP accepts (case-sensitive).
const CANNED_ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

/// S3 sub-resources HCP does not offer (rule 39): answered 501 instead of reaching a backend that
/// would carry them out.
const UNSUPPORTED: &[&str] = &[
    "accelerate",
    "analytics",
    "attributes",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "logging",
    "metrics",
    "notification",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "select",
    "tagging",
    "torrent",
    "website",
];

/// User metadata that some backends read as instructions: MinIO unpacks a PUT carrying
/// `x-amz-meta-snowball-auto-extract` into many objects the gateway never checked. Such
/// names are refused (rule 39), never forwarded.
pub fn backend_directive(name: &str) -> bool {
    name.strip_prefix("x-amz-meta-")
        .is_some_and(|m| m.starts_with("snowball") || m.starts_with("minio"))
        // (And the gateway's own: an object's owner, `request::object_owners`.)
        || crate::request::object_owners::reserved(name)
}

/// Standard headers that hold one value (besides every `x-amz-*` but user metadata).
const SINGLE_VALUED: &[&str] = &[
    "content-md5",
    "content-type",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "range",
    "origin",
];

/// The conditional headers, of which HCP "processes only the first one of those headers and
/// ignores the rest" where one is given more than once (manual, GET object and copy): read
/// by the gateway by their first value, and sent to a backend with it alone
/// (`sign::defined_headers`).
pub const FIRST_ONLY: &[&str] = &[
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "x-amz-copy-source-if-match",
    "x-amz-copy-source-if-none-match",
    "x-amz-copy-source-if-modified-since",
    "x-amz-copy-source-if-unmodified-since",
];

/// Request headers with effects HCP's gateway does not offer (rule 39, as the sub-resources
/// above): answered 501 on the writes that would carry them out.
pub const UNSUPPORTED_HEADERS: &[&str] = &["x-amz-tagging", "x-amz-website-redirect-location"];

/// S3 Object Lock's headers on writes: checked here ([`check_object_lock`]), authorised with
/// HCP's Object Lock permissions, carried out by the backend.
pub const OBJECT_LOCK_HEADERS: &[&str] = &[
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
];

/// HCP bucket names: 3–63 characters, letters, digits and hyphens, no leading or trailing hyphen,
/// not starting with `xn--` (HCP 9.2 "Bucket and object properties").
pub fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.to_ascii_lowercase().starts_with("xn--")
}

/// Whether a bucket named in a request could exist at an S3 backend: 1 to 255 letters, digits,
/// `-`, `.` and `_`, not `.` or `..` (older S3 buckets may hold more than HCP's names allow).
pub fn bucket_reference(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && name != "."
        && name != ".."
}

/// A decimal number of digits only (`u64`'s parser takes a `+` a backend may not).
fn digits(n: &str) -> Option<u64> {
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse::<u64>().ok())
        .flatten()
}

/// Parses `x-amz-copy-source-range: bytes=first-last` (both required, first ≤ last).
pub fn copy_range(value: &str) -> Option<(u64, u64)> {
    let (first, last) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
    let (first, last) = (digits(first)?, digits(last)?);
    (first <= last).then_some((first, last))
}

/// A GET's byte range by HCP's grammar — `bytes=first-last` (last ≥ first, as a copy's range),
/// `bytes=first-`, `bytes=-count` — as the gateway sends it; `None` for any other value, which
/// HCP ignores ("HCP ignores the Range header and returns the complete object data"), so it is
/// not sent. A position past any object's size (`i64::MAX`, which backends read positions
/// in, the embedded store refusing more) is sent as that: the same range of any object.
pub fn object_range(value: &str) -> Option<String> {
    // (Digits of any length: a number past u64's is past i64's too.)
    let position = |n: &str| {
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse::<u64>().unwrap_or(u64::MAX).min(i64::MAX as u64))
    };
    match value.trim().strip_prefix("bytes=")?.split_once('-')? {
        ("", last) => Some(format!("bytes=-{}", position(last)?)),
        (first, "") => Some(format!("bytes={}-", position(first)?)),
        (first, last) => {
            // (Ordered as written, before either is saturated: `first` past `last` is no range.)
            let (a, b) = (first.trim_start_matches('0'), last.trim_start_matches('0'));
            let ordered = (a.len(), a) <= (b.len(), b);
            let (first, last) = (position(first)?, position(last)?);
            ordered.then(|| format!("bytes={first}-{last}"))
        }
    }
}

/// A condition's date (`If-Modified-Since`, `If-Unmodified-Since`, and a copy source's) in one
/// of HCP's forms — `DDD, dd MMM yyyy HH:mm:ss (+0000|GMT)`, `DDDD, dd-MMM-yyyy HH:mm:ss
/// (+0000|GMT)` (RFC 850's two-digit year too), `DDD MMM d HH:mm:ss yyyy` (a day of one digit
/// with or without its padding space); `None` for another value, which HCP ignores ("the header
/// is ignored"), so it is neither judged nor sent.
pub fn condition_date(value: &str) -> Option<std::time::SystemTime> {
    let value = value.trim();
    let value = match value.strip_suffix(" +0000") {
        Some(gmt) => std::borrow::Cow::Owned(format!("{gmt} GMT")),
        None => std::borrow::Cow::Borrowed(value),
    };
    if let Ok(date) = httpdate::parse_http_date(&value) {
        return Some(date);
    }
    // What httpdate reads otherwise: asctime's day padded to two places, RFC 1123's for a
    // four-digit year after a whole weekday.
    let words: Vec<&str> = value.split_ascii_whitespace().collect();
    let spelled = match words[..] {
        [weekday, month, day, time, year] if day.len() == 1 => {
            format!("{weekday} {month}  {day} {time} {year}")
        }
        [weekday, date, time, "GMT"] => {
            let weekday = weekday.strip_suffix(',')?.get(..3)?;
            let mut pieces = date.split('-');
            let (day, month, year) = (pieces.next()?, pieces.next()?, pieces.next()?);
            format!("{weekday}, {day} {month} {year} {time} GMT")
        }
        _ => return None,
    };
    httpdate::parse_http_date(&spelled).ok()
}

/// Whether the request carries any of `names` (lower case). One pass over the few headers a
/// request has, where looking each of `names` up would parse and hash each name: the check
/// before looking up a set of headers most requests carry none of.
pub fn carries_any(headers: &http::HeaderMap, names: &[&str]) -> bool {
    headers.keys().any(|n| names.contains(&n.as_str()))
}

fn header<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A header whose value is judged before it is forwarded: given but not text (bytes past
/// ASCII), it is the empty value — refused as an invalid one, never read as absent (and sent on
/// unjudged).
fn judged<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers
        .get(name)
        .map(|v| v.to_str().unwrap_or_default())
}

fn length(req: &RequestHeader, name: &str) -> Option<u64> {
    header(req, name).and_then(|v| v.trim().parse().ok())
}

/// Whether a GET or HEAD carries an ETag condition (If-Match, If-None-Match): its date
/// conditions are then the gateway's to judge, after the ETag ones, as HCP does (`sign`
/// leaves them out of the backend request).
pub fn etag_conditioned(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::IF_MATCH)
        || headers.contains_key(http::header::IF_NONE_MATCH)
}

/// Whether a bodiless request's Content-Type is a form encoding: an HTTP library's default
/// (the AWS SDK for Java 1.x sends one on a copy), not a type asked for the object.
pub fn library_default_type(req: &RequestHeader) -> bool {
    req.headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        })
}

/// A copy's `x-amz-metadata-directive` as the gateway reads it and sends it: `REPLACE`, or
/// `COPY` (S3's default); `None` for any other value.
pub fn metadata_directive(value: &str) -> Option<&'static str> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("REPLACE") {
        Some("REPLACE")
    } else if value.eq_ignore_ascii_case("COPY") {
        Some("COPY")
    } else {
        None
    }
}

fn invalid_header(name: &str, why: &str) -> HcpError {
    HcpError::new(HcpCode::InvalidArgument)
        .with_message(format!("The {name} header is not valid here: {why}."))
}

fn invalid(message: &'static str) -> HcpError {
    HcpError::new(HcpCode::InvalidArgument).with_message(message)
}

///
/// `chunked`: the body is aws-chunked as authentication found it (a SigV4 header signature of a
/// `STREAMING-*` payload) — only then is `x-amz-decoded-content-length` its length.
/// The storage classes whose objects are read as stored, without a restore (which this gateway
/// does not offer): AWS's, and OBS's infrequent-access WARM.
const READ_WITHOUT_RESTORE: [&str; 7] = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "WARM",
];

pub fn check(
    op: Operation,
    target: &Target,
    query: &Query,
    req: &RequestHeader,
    (chunked, folder): (bool, crate::request::folders::FolderWrite),
    limits: &Limits,
) -> Result<(), HcpError> {
    check_headers(op, query, req)?;
    check_parameters_once(query)?;
    check_customer_keys(req)?;
    if !matches!(
        op,
        Operation::GetObject
            | Operation::HeadObject
            | Operation::GetObjectAcl
            | Operation::GetObjectRetention
            | Operation::GetObjectLegalHold
    ) {
        check_version_id(query.get("versionId"))?;
    }
    check_names(op, target, req, limits)?;
    check_sizes(op, query, (req, chunked, folder), limits)?;
    check_metadata_and_acls(op, req, limits)?;
    check_conditions_and_bodies(op, query, req)
}

/// Encryption with a customer's key (SSE-C) where the backend does not keep it: the embedded
/// backend would store the data as sent and serve it to any reader without the key, so a
/// request naming a customer's key (for itself or for a copy's source) is refused there, 501
/// before anything is sent — never left for the backend to ignore.
pub fn customer_keys_fit(
    req: &RequestHeader,
    backend: &crate::config::Backend,
) -> Result<(), HcpError> {
    if backend.kind != crate::config::BackendKind::Local {
        return Ok(());
    }
    if customer_keys_named(req).contains(&true) {
        return Err(HcpError::new(HcpCode::NotImplemented).with_message(
            "Encryption with a customer's key is not supported by this bucket's storage: the \
             object would not be encrypted.",
        ));
    }
    Ok(())
}

/// A bucket's CORS rules where the backend answers CORS by no bucket's rules: MinIO answers
/// every Origin by its global policy, and the gateway sends it none (`sign`) — rules set there
/// (MinIO's commercial edition keeps them) would never act. A PUT `?cors` is 501 before
/// anything is sent.
pub fn cors_fits(
    (op, method): (crate::request::classify::Operation, &http::Method),
    params: &crate::request::classify::Params,
    backend: &crate::config::Backend,
) -> Result<(), HcpError> {
    // (Reading or removing them is MinIO's to answer: none kept.)
    let cors = op == crate::request::classify::Operation::BucketSubresource
        && method == http::Method::PUT
        && params.get("cors").is_some();
    if cors && backend.dialect == crate::hcp::mapping::Dialect::Minio {
        return Err(HcpError::new(HcpCode::NotImplemented)
            .with_message("CORS rules are not supported by this bucket's storage."));
    }
    Ok(())
}

/// The prefixes of a customer's key's headers: for the request's own object, and for a copy's
/// source.
const CUSTOMER_KEY_PREFIXES: [&str; 2] = [
    "x-amz-server-side-encryption-customer-",
    "x-amz-copy-source-server-side-encryption-customer-",
];

/// Which of [`CUSTOMER_KEY_PREFIXES`] the request's header names carry, in one pass over them.
fn customer_keys_named(req: &RequestHeader) -> [bool; 2] {
    let mut named = [false; 2];
    for name in req.headers.keys() {
        for (seen, prefix) in named.iter_mut().zip(CUSTOMER_KEY_PREFIXES) {
            *seen |= name.as_str().starts_with(prefix);
        }
    }
    named
}

/// A customer's key (SSE-C) as S3 checks it: named by its algorithm (AES256), the key (Base64 of
/// 32 bytes) and the key's MD5 (Base64), all three or none — for the object and for a copy's
/// source alike. 400 InvalidArgument otherwise, before anything reaches the backend (which may
/// check less: the embedded backend checks nothing).
fn check_customer_keys(req: &RequestHeader) -> Result<(), HcpError> {
    use base64::Engine as _;
    let named = customer_keys_named(req);
    for (prefix, _) in CUSTOMER_KEY_PREFIXES.iter().zip(named).filter(|(_, n)| *n) {
        let given = |part: &str| header(req, &format!("{prefix}{part}")).map(str::trim);
        let refused = |why: &'static str| Err(invalid(why));
        if given("algorithm") != Some("AES256") {
            return refused(
                "Requests specifying Server Side Encryption with Customer provided keys must \
                 provide a valid encryption algorithm (AES256).",
            );
        }
        let Some(key) = given("key") else {
            return refused(
                "Requests specifying Server Side Encryption with Customer provided keys must \
                 provide an appropriate secret key.",
            );
        };
        let key = match base64::engine::general_purpose::STANDARD.decode(key) {
            Ok(key) if key.len() == 32 => key,
            _ => return refused("The secret key was invalid for the specified algorithm."),
        };
        let Some(md5) = given("key-md5") else {
            return refused(
                "Requests specifying Server Side Encryption with Customer provided keys must \
                 provide the client calculated MD5 of the secret key.",
            );
        };
        // (Base64 as S3 writes it: canonical, which is how the key's own is written.)
        if md5 != crate::request::body::content_md5(&key) {
            return refused(
                "The calculated MD5 hash of the key did not match the hash that was provided.",
            );
        }
    }
    Ok(())
}

/// S3 Object Lock's request headers, as S3 checks them: a mode is GOVERNANCE or COMPLIANCE and
/// comes with a retain-until date (RFC 3339, in the future), a legal hold is ON or OFF, a bucket
/// is created with lock `true` or `false`, a bypass is `true` or `false`. 400 InvalidArgument
/// otherwise, before anything reaches the backend.
fn check_object_lock(op: Operation, req: &RequestHeader) -> Result<(), HcpError> {
    use Operation::*;
    let given = |name: &str| {
        req.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{0}").trim())
    };
    if matches!(op, PutObject | CopyObject | CreateMultipartUpload) {
        let mode = given("x-amz-object-lock-mode");
        let until = given("x-amz-object-lock-retain-until-date");
        if mode.is_some() != until.is_some() {
            return Err(invalid(
                "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date go together.",
            ));
        }
        if mode.is_some_and(|m| !matches!(m, "GOVERNANCE" | "COMPLIANCE")) {
            return Err(invalid_header(
                "x-amz-object-lock-mode",
                "GOVERNANCE or COMPLIANCE",
            ));
        }
        if let Some(until) = until {
            let date =
                time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        invalid_header("x-amz-object-lock-retain-until-date", "an RFC 3339 date")
                    })?;
            if date <= time::OffsetDateTime::now_utc() {
                return Err(invalid("The retain until date must be in the future."));
            }
            // Ceph RGW keeps the date in 32 bits of seconds: a later one would wrap round to
            // an earlier date, a retention shorter than asked.
            if date.unix_timestamp() > crate::hcp::retention::LATEST_UNTIL {
                return Err(invalid("The retain until date must be before 2106-02-06."));
            }
        }
        if given("x-amz-object-lock-legal-hold").is_some_and(|h| !matches!(h, "ON" | "OFF")) {
            return Err(invalid_header("x-amz-object-lock-legal-hold", "ON or OFF"));
        }
    }
    let boolean = |v: &str| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false");
    const BOOLEANS: &[&str] = &[
        "x-amz-bucket-object-lock-enabled",
        "x-amz-bypass-governance-retention",
    ];
    if carries_any(&req.headers, BOOLEANS) {
        for name in BOOLEANS {
            if given(name).is_some_and(|v| !boolean(v)) {
                return Err(invalid_header(name, "true or false"));
            }
        }
    }
    Ok(())
}

/// A count written in digits alone (no sign, no spaces), as a document's number field holds it.
pub(super) fn digits_u32(text: &str) -> Option<u32> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse::<u32>().ok())
        .flatten()
}

/// A parameter given twice (in any case): a signature covers both, sorted, where the first
/// would be acted on — a signed `?versionId=A&versionId=B` sent as `B&A` would name B.
/// (A few names — a presigned URL has seven — compared pair by pair, allocating nothing; more,
/// sorted and each compared with its neighbour: a query of thousands of names, which anyone may
/// send — a preflight is never signed —, costs n log n.)
fn check_parameters_once(query: &Query) -> Result<(), HcpError> {
    const PAIRWISE: usize = 16;
    let names = || query.pairs().map(|(n, _)| n);
    let repeated = if names().nth(PAIRWISE).is_none() {
        names()
            .enumerate()
            .find(|&(i, n)| names().take(i).any(|m| m.eq_ignore_ascii_case(n)))
            .map(|(_, n)| n.to_ascii_lowercase())
    } else {
        let mut sorted: Vec<String> = names().map(str::to_ascii_lowercase).collect();
        sorted.sort_unstable();
        sorted
            .windows(2)
            .find(|w| w[0] == w[1])
            .map(|w| w[0].clone())
    };
    match repeated {
        Some(name) => Err(HcpError::new(HcpCode::InvalidArgument)
            .with_message(format!("The {name} parameter is given more than once."))),
        None => Ok(()),
    }
}

/// 39: sub-resources HCP does not offer, in any case (a backend may read `?Tagging` as
/// `?tagging`). A preflight, asked of the backend without its query, is of the bucket's CORS
/// rules whatever it precedes.
fn offered_sub_resources(op: Operation, query: &Query) -> Result<(), HcpError> {
    let unsupported = |n: &str| UNSUPPORTED.iter().any(|u| u.eq_ignore_ascii_case(n));
    match query.pairs().find(|(n, _)| unsupported(n)) {
        Some((name, _)) if op != Operation::CorsPreflight => {
            Err(HcpError::new(HcpCode::NotImplemented)
                .with_message(format!("The {name} sub-resource is not supported.")))
        }
        _ => Ok(()),
    }
}

/// A request header with an effect given as a query parameter: AWS's SDK for JavaScript signs
/// a presigned URL's `x-amz-*` settings into its query (`x-amz-copy-source`, `x-amz-acl`,
/// `x-amz-meta-*`, Object Lock's …), which S3 reads as the headers. Neither HCP nor the
/// gateway does; ignored (seed 002), such a URL's copy would be an empty object stored, its
/// ACL or hold not set — so one of these is refused (400), never carried out as something
/// else. Any other (`x-amz-expected-bucket-owner`, the checksums the SDK signs of an empty
/// body, a name no one knows) is an invalid parameter, ignored as HCP ignores them.
fn hoisted_headers(query: &Query) -> Result<(), HcpError> {
    const EFFECTS: [&str; 13] = [
        "copy-source",
        "bucket-object-lock-enabled",
        "acl",
        "grant-",
        "meta-",
        "object-lock-",
        "tagging",
        "storage-class",
        "server-side-encryption",
        "metadata-directive",
        "website-redirect-location",
        "bypass-governance-retention",
        "mfa",
    ];
    let effect = |n: &str| {
        // (A presigned URL's own parameters, in every presigned request: told by their exact
        // names at once, not read against each effect.)
        if matches!(
            n,
            "X-Amz-Algorithm"
                | "X-Amz-Credential"
                | "X-Amz-Date"
                | "X-Amz-Expires"
                | "X-Amz-SignedHeaders"
                | "X-Amz-Signature"
                | "X-Amz-Security-Token"
        ) {
            return false;
        }
        let Some(rest) = n.get(6..).filter(|_| n[..6].eq_ignore_ascii_case("x-amz-")) else {
            return false;
        };
        EFFECTS.iter().any(|e| {
            rest.get(..e.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(e))
        })
    };
    match query.pairs().any(|(n, _)| effect(n)) {
        true => Err(invalid(
            "An x-amz-* header with an effect was given as a query parameter: send it as a header.",
        )),
        false => Ok(()),
    }
}

/// Rule 39 and seed 002 for headers: sub-resources and headers the gateway does not offer, one-valued headers given twice, headers invalid for the operation.
fn check_headers(op: Operation, query: &Query, req: &RequestHeader) -> Result<(), HcpError> {
    use Operation::*;
    offered_sub_resources(op, query)?;
    hoisted_headers(query)?;
    // Nor does HCP's manual offer setting a lifecycle configuration (its error table knows only
    // NoSuchLifecycleConfiguration, the answer to reading one). A configuration set would expire
    // objects (a delete), noncurrent versions (a purge) and move objects to classes that need a
    // restore, later, by the backend's own hand: effects no request of the user's would carry
    // for the gateway to authorise one by one. Nor removing one: what rules a backend has are
    // its operator's (one that aborts abandoned uploads, say). Reading one stays.
    if op == BucketSubresource
        && matches!(req.method, http::Method::PUT | http::Method::DELETE)
        && query.has("lifecycle")
    {
        return Err(HcpError::new(HcpCode::NotImplemented)
            .with_message("Setting or removing a lifecycle configuration is not supported."));
    }
    // A header that says one thing given twice: what was checked (the first) and what a
    // backend reads (the last, or both joined) could differ.
    // (A condition's first is HCP's, the rest ignored: `FIRST_ONLY`.)
    if let Some(name) = req.headers.keys().map(|n| n.as_str()).find(|n| {
        let single = (n.starts_with("x-amz-") && !n.starts_with("x-amz-meta-"))
            || n.starts_with("x-hcp-")
            || SINGLE_VALUED.contains(n);
        single && !FIRST_ONLY.contains(n) && req.headers.get_all(*n).iter().count() > 1
    }) {
        return Err(HcpError::new(HcpCode::InvalidArgument)
            .with_message(format!("The {name} header is given more than once.")));
    }
    // 39 for headers: a header whose effect the gateway does not offer (and could not undo:
    // tags, Object Lock retention and legal holds, website redirects) is refused, never
    // forwarded and never silently dropped.
    if matches!(
        op,
        PutObject | CopyObject | CreateMultipartUpload | CreateBucket
    ) {
        if let Some(name) = req
            .headers
            .keys()
            .map(|n| n.as_str())
            .find(|n| UNSUPPORTED_HEADERS.contains(n) || backend_directive(n))
        {
            return Err(HcpError::new(HcpCode::NotImplemented)
                .with_message(format!("The {name} header is not supported.")));
        }
    }
    check_object_lock(op, req)?;
    // A copy's directive is read one way here and sent in the gateway's spelling (a backend
    // that reads `replace` as COPY would carry the source's owner entry to the copy).
    if op == CopyObject
        && header(req, "x-amz-metadata-directive").is_some_and(|d| metadata_directive(d).is_none())
    {
        return Err(invalid_header(
            "x-amz-metadata-directive",
            "it is COPY or REPLACE",
        ));
    }
    // Seed 002 again, for writes: KMS keys (which would encrypt under any key the gateway's
    // backend account may use) and storage classes that need a restore (not offered) are
    // headers this gateway does not accept.
    if matches!(op, PutObject | CopyObject | CreateMultipartUpload) {
        if let Some(name) = req.headers.keys().map(|n| n.as_str()).find(|n| {
            matches!(
                *n,
                "x-amz-server-side-encryption-aws-kms-key-id"
                    | "x-amz-server-side-encryption-context"
                    | "x-amz-server-side-encryption-bucket-key-enabled"
            )
        }) {
            return Err(invalid_header(name, "KMS keys are not offered"));
        }
        // (An allow-list: each backend names its archive classes its own way — AWS's GLACIER
        // and DEEP_ARCHIVE, OBS's COLD, a Ceph or MinIO administrator's own tiers.)
        if judged(req, "x-amz-storage-class").is_some_and(|c| {
            !READ_WITHOUT_RESTORE
                .iter()
                .any(|ok| c.trim().eq_ignore_ascii_case(ok))
        }) {
            return Err(invalid_header(
                "x-amz-storage-class",
                "only storage classes read without a restore are offered",
            ));
        }
    }
    // Seed 002: a header invalid for the requested operation is 400 InvalidArgument — SSE
    // headers on a read (the object's own encryption decides; SSE-C keys are the exception).
    if matches!(op, GetObject | HeadObject)
        && req.headers.keys().any(|n| {
            n.as_str().starts_with("x-amz-server-side-encryption")
                && !n
                    .as_str()
                    .starts_with("x-amz-server-side-encryption-customer-")
        })
    {
        return Err(invalid(
            "Server-side encryption headers are not valid for this operation.",
        ));
    }
    Ok(())
}

/// Rules 14, 18 and 19: bucket names, object names, the copy source's.
fn check_names(
    op: Operation,
    target: &Target,
    req: &RequestHeader,
    limits: &Limits,
) -> Result<(), HcpError> {
    use Operation::*;
    // 14: bucket names by HCP's rules; any other bucket a request names must at least be a
    // name an S3 server could hold (a path-style bucket is percent-decoded: `..`, `a%2Fb` must
    // not become a path at the backend).
    if let Some(bucket) = target.bucket.as_deref() {
        if op == CreateBucket && !valid_bucket_name(bucket) {
            return Err(HcpError::new(HcpCode::InvalidBucketName));
        }
        if !bucket_reference(bucket) {
            return Err(HcpError::new(HcpCode::InvalidBucketName));
        }
    }
    if matches!(op, CopyObject | UploadPartCopy) {
        let source = header(req, "x-amz-copy-source")
            .and_then(|v| crate::request::sign::CopySource::parse(v.as_bytes()));
        if source.is_some_and(|s| !bucket_reference(&s.bucket)) {
            return Err(HcpError::new(HcpCode::InvalidBucketName));
        }
    }
    // 18, 19: object names, the copy source's too.
    if let Some(key) = target.key() {
        check_key(&key, limits)?;
    }
    if matches!(op, CopyObject | UploadPartCopy) {
        let raw = header(req, "x-amz-copy-source");
        let source = raw
            .and_then(|v| crate::request::sign::CopySource::parse(v.as_bytes()))
            .ok_or_else(|| invalid("x-amz-copy-source is not /bucket/key."))?;
        // A SigV4 signature covers the value with each run of spaces and tabs made one space:
        // a source naming a tab or a run of them would not be the one signed.
        if raw.is_some_and(|v| v.contains('\t') || v.contains("  ")) {
            return Err(invalid(
                "x-amz-copy-source holds a tab or a run of spaces: URL-encode them.",
            ));
        }
        check_key(&source.key, limits)?;
    }
    Ok(())
}

/// Rules 12, 24 and 26: an object body's length, part numbers, size limits.
fn check_sizes(
    op: Operation,
    query: &Query,
    (req, chunked, folder): (&RequestHeader, bool, crate::request::folders::FolderWrite),
    limits: &Limits,
) -> Result<(), HcpError> {
    use Operation::*;
    // 12: object bodies need their length — the one the body is held to: Content-Length for a
    // plain body, x-amz-decoded-content-length for one authenticated as aws-chunked (whatever
    // the scheme: the decoder holds the body to it; elsewhere it means nothing and is not
    // believed: headers that only claim it must not lend a plain body a smaller size).
    // (Only object bodies are measured here.)
    if op.has_object_body() {
        let size = if chunked {
            length(req, "x-amz-decoded-content-length")
        } else {
            length(req, "content-length")
        };
        // 26: part and object size limits.
        // (A folder's creation stores no body: whether it names a length is the folder
        // table's rule, `folders::check_length`.)
        let folder = folder == crate::request::folders::FolderWrite::Create;
        match (op, size) {
            (_, None) if !folder => return Err(HcpError::new(HcpCode::MissingContentLength)),
            (UploadPart, Some(n)) if n > limits.max_part_bytes => {
                return Err(HcpError::new(HcpCode::EntityTooLarge))
            }
            (PutObject, Some(n)) if n > limits.max_put_bytes => {
                return Err(HcpError::new(HcpCode::EntityTooLarge))
            }
            _ => {}
        }
    }
    // 24: part numbers 1..10,000.
    if matches!(op, UploadPart | UploadPartCopy)
        || (op.defined_params().contains(&"partNumber") && query.has("partNumber"))
    {
        let ok = query
            .get("partNumber")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (1..=10_000).contains(&n));
        if !ok {
            return Err(invalid(
                "The part number must be an integer from 1 to 10000.",
            ));
        }
    }
    Ok(())
}

/// Rules 20–23, 25 and 34: user metadata, ACL headers, the copy range's syntax.
fn check_metadata_and_acls(
    op: Operation,
    req: &RequestHeader,
    limits: &Limits,
) -> Result<(), HcpError> {
    use Operation::*;
    // 20, 25: user metadata.
    let metadata: usize = req
        .headers
        .iter()
        .filter_map(|(n, v)| {
            n.as_str()
                .strip_prefix("x-amz-meta-")
                .map(|suffix| suffix.len() + v.len())
        })
        .sum();
    let has_metadata = req
        .headers
        .keys()
        .any(|n| n.as_str().starts_with("x-amz-meta-"));
    if has_metadata && matches!(op, UploadPart | UploadPartCopy | CompleteMultipartUpload) {
        return Err(invalid(
            "Metadata headers are not valid for this operation.",
        ));
    }
    if metadata > limits.max_metadata_bytes {
        return Err(HcpError::new(HcpCode::MetadataTooLarge));
    }
    // 21, 22, 23: ACL headers (HCP ignores them on upload-part and complete).
    let grants = req
        .headers
        .keys()
        .any(|n| n.as_str().starts_with("x-amz-grant-"));
    let acl_ignored = matches!(op, UploadPart | UploadPartCopy | CompleteMultipartUpload);
    // A grant header S3 does not define would go unread by the grant checks: refused.
    if let Some(name) = req
        .headers
        .keys()
        .map(|n| n.as_str())
        .find(|n| n.starts_with("x-amz-grant-") && !acl::GRANT_HEADERS.contains(n))
    {
        if !acl_ignored {
            return Err(invalid_header(name, "not a grant header S3 defines"));
        }
    }
    // (A value that is not visible ASCII is no canned ACL: refused like an unknown one.)
    let acl = (!acl_ignored && carries_any(&req.headers, &["x-amz-acl"]))
        .then(|| req.headers.get("x-amz-acl"))
        .flatten()
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(acl) = acl {
        if grants {
            return Err(HcpError::new(HcpCode::MalformedXML)
                .with_message("A canned ACL and individual grant headers cannot be combined."));
        }
        if !CANNED_ACLS.contains(&acl) {
            return Err(
                if matches!(
                    op,
                    PutObject | CreateMultipartUpload | CopyObject | CreateBucket
                ) {
                    // HCP's quirk: 501 where a bucket or object is created (the manual's status
                    // tables of PUT bucket, PUT object, copy and initiate), 400 on an ACL change.
                    HcpError::new(HcpCode::NotImplemented)
                        .with_message("The canned ACL is not supported.")
                } else {
                    invalid("The canned ACL is not valid.")
                },
            );
        }
    }
    // 34: the copy range's syntax (its start against the source's size needs the backend).
    if op == UploadPartCopy
        && judged(req, "x-amz-copy-source-range").is_some_and(|r| copy_range(r).is_none())
    {
        return Err(invalid(
            "The copy range is not bytes=first-last with first not after last.",
        ));
    }
    Ok(())
}

/// Rules 28, 35, 38, 43 and 48: conditions, query values, required bodies and their integrity.
fn check_conditions_and_bodies(
    op: Operation,
    query: &Query,
    req: &RequestHeader,
) -> Result<(), HcpError> {
    use Operation::*;
    let grants = req
        .headers
        .keys()
        .any(|n| n.as_str().starts_with("x-amz-grant-"));
    // 35: conditions that contradict each other.
    // (One pass over the request's header names, each given once in `keys`.)
    let both = |a: &str, b: &str| {
        req.headers
            .keys()
            .filter(|n| n.as_str() == a || n.as_str() == b)
            .count()
            == 2
    };
    // (Seed 002 and the manual's error table name this very pair — If-Match with If-None-Match
    // — as conflicting, on a GET or HEAD as on any request.)
    if both("if-match", "if-none-match")
        || both(
            "x-amz-copy-source-if-match",
            "x-amz-copy-source-if-none-match",
        )
    {
        return Err(invalid("The request has conflicting conditional headers."));
    }
    // 38: query values, in HCP's ranges (max-keys 0 through 2,147,483,647, of which a listing
    // gives at most 1,000; max-uploads and max-parts through 1,000; part-number-marker through
    // 10,000).
    // (Only where the operation takes the parameter: elsewhere it is not sent, and "if the
    // request includes invalid query parameters, those parameters are ignored", seed 002.)
    let numeric = |name: &str, max: Option<u64>| {
        let taken = op.defined_params().contains(&name);
        !taken
            || query.get(name).is_none_or(|v| {
                v.parse::<u64>()
                    .ok()
                    .is_some_and(|n| max.is_none_or(|m| n <= m))
            })
    };
    if !numeric("max-keys", Some(2_147_483_647))
        || !numeric("max-uploads", Some(1000))
        || !numeric("max-parts", Some(1000))
        || !numeric("part-number-marker", Some(10_000))
    {
        return Err(invalid("A query parameter has an invalid value."));
    }
    // S3's one encoding method, as S3 spells it (a backend that takes `URL` too would encode
    // keys the gateway then reads as they are).
    let encoding = || query.get("encoding-type");
    if op.defined_params().contains(&"encoding-type") && encoding().is_some_and(|e| e != "url") {
        return Err(invalid("Invalid Encoding Method specified in Request"));
    }
    // 28, 48: operations whose XML body is required.
    let needs_body = matches!(
        op,
        CompleteMultipartUpload
            | DeleteObjects
            | PutBucketVersioning
            | PutObjectLockConfiguration
            | PutObjectRetention
            | PutObjectLegalHold
    ) || (matches!(op, PutBucketAcl | PutObjectAcl)
        && !req.headers.contains_key("x-amz-acl")
        && !grants)
        || puts_cors(op, req, query);
    let empty = || {
        length(req, "content-length").unwrap_or(0) == 0
            && !req.headers.contains_key(http::header::TRANSFER_ENCODING)
    };
    if needs_body && empty() {
        return Err(HcpError::new(HcpCode::MissingRequestBodyError));
    }
    // HCP: "You cannot use ACL headers and an ACL request body in the same request" (the
    // backend would take one of them and the gateway record the other's grants).
    if matches!(op, PutBucketAcl | PutObjectAcl)
        && (req.headers.contains_key("x-amz-acl") || grants)
        && !empty()
    {
        return Err(invalid(
            "ACL headers and an ACL request body cannot be used in the same request.",
        ));
    }
    // 43: a multi-object delete must carry an integrity header (Content-MD5, or the checksum
    // current SDKs send instead) — one that holds a digest.
    if op == DeleteObjects && !crate::request::body::names_a_digest(&req.headers) {
        return Err(HcpError::new(HcpCode::MissingSecurityHeader)
            .with_message("Multi-object delete requires Content-MD5."));
    }
    // And a CORS configuration (manual: its Content-MD5 "must be used as a message integrity
    // check").
    if puts_cors(op, req, query) && !crate::request::body::names_a_digest(&req.headers) {
        return Err(HcpError::new(HcpCode::MissingSecurityHeader)
            .with_message("A CORS configuration requires Content-MD5."));
    }
    check_lock_document_digest(op, req)
}

/// An S3 Object Lock document needs an integrity header, as S3 asks of one: a signature that
/// does not cover the body (SigV2's, without Content-MD5) would let a captured request carry
/// another date, mode or hold.
fn check_lock_document_digest(op: Operation, req: &RequestHeader) -> Result<(), HcpError> {
    use Operation::*;
    if matches!(
        op,
        PutObjectRetention | PutObjectLegalHold | PutObjectLockConfiguration
    ) && !crate::request::body::names_a_digest(&req.headers)
    {
        return Err(HcpError::new(HcpCode::MissingSecurityHeader)
            .with_message("This request requires Content-MD5 (or a checksum)."));
    }
    Ok(())
}

/// A PUT of a bucket's CORS configuration.
fn puts_cors(op: Operation, req: &RequestHeader, query: &Query) -> bool {
    op == Operation::BucketSubresource && req.method == http::Method::PUT && query.has("cors")
}

/// Rules 18 and 19 for one object name: at most `max_key_bytes`, UTF-8, no NUL, and no
/// segment that HCP's folders make impossible — `.` or `..` between slashes (a name or folder
/// cannot be a period alone; `..` would name the parent folder), `.directory-metadata` — nor
/// `/` alone. Applied to the request's key, a copy source's key and every key of a
/// multi-object delete, so that no key the gateway forwards can leave its bucket.
pub fn check_key(key: &[u8], limits: &Limits) -> Result<(), HcpError> {
    if key.len() > limits.max_key_bytes {
        return Err(HcpError::new(HcpCode::KeyTooLong).with_message(format!(
            "The object name is longer than {} bytes.",
            limits.max_key_bytes
        )));
    }
    if key.is_empty()
        || key.contains(&0)
        || key == b"/"
        || key
            .split(|&b| b == b'/')
            .any(|s| s == b"." || s == b".." || s == b".directory-metadata")
    {
        return Err(
            HcpError::new(HcpCode::MalformedXML).with_message("The object name is invalid.")
        );
    }
    // S3 keys are UTF-8; bytes that are not could not be listed back faithfully.
    if std::str::from_utf8(key).is_err() {
        return Err(HcpError::new(HcpCode::MalformedXML)
            .with_message("The object name is not valid UTF-8."));
    }
    Ok(())
}

/// A version id given to a change names a version: an empty one is 400 InvalidArgument, as S3
/// answers — never passed on, since backends read it as no version at all while the gateway's
/// judgement took it for one (a DELETE that adds a delete marker over an object judged as a
/// version's purge, without asking about its retention; a legal hold taken off the current
/// version past its labeled holds, recorded under a version named ""). A read's empty version
/// id is left as before (HCP ignores a version id where the bucket keeps none).
fn check_version_id(given: Option<&str>) -> Result<(), HcpError> {
    match given {
        Some(v) if v.trim().is_empty() => Err(invalid("Version id cannot be the empty string.")),
        _ => Ok(()),
    }
}

/// A CreateBucket's body, which HCP's manual says is empty ("the value of this header must be
/// 0"): S3 clients send a `CreateBucketConfiguration` naming a region or placement, which HCP
/// has none of — accepted as well-formed and never sent on (the gateway's own document for
/// the backend is `records::bucket_configuration`); any other document is 400 MalformedXML.
pub fn check_bucket_configuration(body: &[u8]) -> Result<(), HcpError> {
    use quick_xml::events::Event;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let malformed = || {
        HcpError::new(HcpCode::MalformedXML).with_message(
            "The bucket configuration must be a CreateBucketConfiguration with at most a \
             LocationConstraint.",
        )
    };
    let mut reader = quick_xml::Reader::from_reader(body);
    let (mut depth, mut roots) = (0usize, 0usize);
    loop {
        let (name, opens) = match reader.read_event().map_err(|_| malformed())? {
            Event::Start(e) => (e.local_name().as_ref().to_vec(), true),
            Event::Empty(e) => (e.local_name().as_ref().to_vec(), false),
            Event::End(_) => {
                depth = depth.checked_sub(1).ok_or_else(malformed)?;
                continue;
            }
            Event::Text(t) if depth == 1 && !t.iter().all(u8::is_ascii_whitespace) => {
                return Err(malformed());
            }
            Event::Eof if depth == 0 && roots == 1 => return Ok(()),
            Event::Eof => return Err(malformed()),
            _ => continue,
        };
        let allowed = match depth {
            0 => {
                roots += 1;
                name == b"CreateBucketConfiguration" && roots == 1
            }
            1 => name == b"LocationConstraint",
            _ => false,
        };
        if !allowed {
            return Err(malformed());
        }
        depth += usize::from(opens);
    }
}

/// Rule 43: a multi-object delete names 1 to 1,000 objects in well-formed XML; each key obeys
/// the object-name rules (18, 19), as it would in a single delete. Returns whether it names a
/// version of an object (a purge, which needs its own permission).
pub fn check_delete_list(body: &[u8], limits: &Limits) -> Result<bool, HcpError> {
    use quick_xml::events::Event;
    let malformed = |m: &'static str| HcpError::new(HcpCode::MalformedXML).with_message(m);
    let not_well_formed = || malformed("The XML you provided was not well-formed.");
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HcpError::new(HcpCode::MissingRequestBodyError));
    }
    let mut reader = quick_xml::Reader::from_reader(body);
    let (mut depth, mut objects, mut root) = (0usize, 0usize, false);
    // The text of a <Delete><Object><Key> (or <VersionId>) being read.
    let mut key: Option<String> = None;
    let mut version: Option<String> = None;
    let mut versions = false;
    loop {
        match reader.read_event().map_err(|_| not_well_formed())? {
            Event::Start(e) => {
                if depth == 0 {
                    root = e.name().as_ref() == b"Delete";
                    if !root {
                        return Err(malformed("The root element must be Delete."));
                    }
                }
                if depth == 1 && e.name().as_ref() == b"Object" {
                    objects += 1;
                }
                if depth == 2 && e.name().as_ref() == b"Key" {
                    key = Some(String::new());
                }
                if depth == 2 && e.name().as_ref() == b"VersionId" {
                    versions = true;
                    version = Some(String::new());
                }
                depth += 1;
            }
            Event::Text(t) => {
                if let Some(k) = key.as_mut().or(version.as_mut()) {
                    k.push_str(&t.decode().map_err(|_| not_well_formed())?);
                }
            }
            Event::CData(t) => {
                if let Some(k) = key.as_mut().or(version.as_mut()) {
                    k.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(k) = key.as_mut().or(version.as_mut()) {
                    if !crate::hcp::xml::push_reference(k, &r) {
                        return Err(not_well_formed());
                    }
                }
            }
            Event::Empty(e) if depth == 2 && e.name().as_ref() == b"VersionId" => {
                check_version_id(Some(""))?;
            }
            Event::Empty(e) if depth == 2 && e.name().as_ref() == b"Key" => {
                return Err(malformed("An object to delete has an empty key."));
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 2 {
                    if let Some(k) = key.take() {
                        check_key(k.as_bytes(), limits)?;
                    }
                    check_version_id(version.take().as_deref())?;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root || depth != 0 {
        return Err(not_well_formed());
    }
    if objects == 0 || objects > MAX_DELETE_OBJECTS {
        return Err(malformed("A multi-object delete names 1 to 1000 objects."));
    }
    Ok(versions)
}

/// The most objects one multi-object delete may name.
pub const MAX_DELETE_OBJECTS: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    /// A presigned URL's own parameters, its payload hash, checksums and headers without an
    /// effect pass (ignored); a header with an effect given in the query, in any case, is
    /// refused.
    #[test]
    fn headers_in_the_query_are_refused() {
        let presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=c&X-Amz-Date=d\
            &X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=s\
            &X-Amz-Security-Token=t&x-amz-content-sha256=UNSIGNED-PAYLOAD\
            &x-amz-checksum-crc32=AAAAAA%3D%3D&x-amz-sdk-checksum-algorithm=CRC32&x-id=PutObject\
            &x-amz-expected-bucket-owner=123&x-amz-foo=1";
        assert!(hoisted_headers(&Query::parse(presigned.as_bytes())).is_ok());
        for effect in [
            "x-amz-copy-source=b%2Fk",
            "X-Amz-Acl=public-read",
            "x-amz-meta-a=1",
            "x-amz-object-lock-legal-hold=ON",
            "x-amz-grant-read=id%3Dx",
            "x-amz-copy-source-range=bytes%3D0-1",
            "X-AMZ-TAGGING=a%3Db",
            "x-amz-bucket-object-lock-enabled=true",
        ] {
            let q = Query::parse(format!("{presigned}&{effect}").as_bytes());
            assert_eq!(
                hoisted_headers(&q).map_err(|e| e.code),
                Err(HcpCode::InvalidArgument),
                "{effect}"
            );
        }
    }

    /// The oracle for repeated parameters: on generated queries (names that differ in case,
    /// percent-encoded, empty, with and without values), the check finds a repeat exactly where
    /// comparing every pair of decoded names does — and a query of thousands of names is read.
    #[test]
    fn a_parameter_given_twice_is_found_as_every_pair_would_find_it() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261205);
        let names = [
            "versionId",
            "VersionId",
            "versionid",
            "prefix",
            "Prefix",
            "acl",
            "%61cl",
            "a",
            "",
            "x-id",
            "list-type",
        ];
        for _ in 0..5000 {
            let n = rng.gen_range(0..5);
            let raw: Vec<String> = (0..n)
                .map(|_| {
                    let name = names[rng.gen_range(0..names.len())];
                    if rng.gen_bool(0.5) {
                        format!("{name}=v")
                    } else {
                        name.to_string()
                    }
                })
                .collect();
            let raw = raw.join("&");
            let q = Query::parse(raw.as_bytes());
            let decoded: Vec<&str> = q.pairs().map(|(n, _)| n).collect();
            let naive = (0..decoded.len())
                .any(|i| (0..i).any(|j| decoded[i].eq_ignore_ascii_case(decoded[j])));
            assert_eq!(check_parameters_once(&q).is_err(), naive, "{raw}");
        }
        // (Past 16 names the check sorts: the same answers.)
        for extra in 0..3 {
            let raw: Vec<String> = (0..15 + extra).map(|i| format!("p{i}")).collect();
            let q = Query::parse(format!("{}&P{}", raw.join("&"), 14 + extra).as_bytes());
            assert!(check_parameters_once(&q).is_err(), "{extra}");
            let q = Query::parse(raw.join("&").as_bytes());
            assert!(check_parameters_once(&q).is_ok(), "{extra}");
        }
        let many: Vec<String> = (0..16_000).map(|i| format!("p{i}")).collect();
        let q = Query::parse(many.join("&").as_bytes());
        assert!(check_parameters_once(&q).is_ok());
        let q = Query::parse(format!("{}&P15999", many.join("&")).as_bytes());
        assert!(check_parameters_once(&q).is_err());
    }

    /// Every form HCP's manual gives for a condition's date, with its own examples, reads as
    /// the same time; what is none of them is no date.
    #[test]
    fn condition_dates_in_every_form_hcp_documents() {
        let expected = httpdate::parse_http_date("Tue, 07 Feb 2017 14:27:05 GMT").unwrap();
        for form in [
            "Tue, 07 Feb 2017 14:27:05 +0000",
            "Tue, 07 Feb 2017 14:27:05 GMT",
            "Tuesday, 07-Feb-2017 14:27:05 +0000",
            "Tuesday, 07-Feb-2017 14:27:05 GMT",
            "Tuesday, 07-Feb-17 14:27:05 GMT",
            "Tue Feb 7 14:27:05 2017",
            "Tue Feb  7 14:27:05 2017",
            " Tue Feb 7 14:27:05 2017 ",
        ] {
            assert_eq!(condition_date(form), Some(expected), "{form}");
        }
        for other in [
            "2017-02-07",
            "yesterday",
            "Tue, 07 Feb 2017 14:27:05 +0100",
            "Tue Feb 7 14:27:05",
            "T, 07-Feb-2017 14:27:05 GMT",
            "",
        ] {
            assert_eq!(condition_date(other), None, "{other}");
        }
    }

    /// A customer's key is its algorithm (AES256), a key of 32 bytes and that key's MD5, all
    /// three, for the object and for a copy's source; anything less or other is 400.
    #[test]
    fn customer_keys_are_whole_or_refused() {
        use base64::Engine as _;
        use md5::Digest as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let key = [9u8; 32];
        let (k, m) = (b64(&key), b64(&md5::Md5::digest(key)));
        let short = b64(&key[..16]);
        let other_md5 = b64(&md5::Md5::digest(b"other"));
        let whole = [
            ("algorithm", "AES256"),
            ("key", k.as_str()),
            ("key-md5", m.as_str()),
        ];
        for prefix in CUSTOMER_KEY_PREFIXES {
            let req = |parts: &[(&str, &str)]| {
                let mut r = RequestHeader::build("PUT", b"/b/k", None).unwrap();
                for (part, value) in parts {
                    r.insert_header(format!("{prefix}{part}"), *value).unwrap();
                }
                r
            };
            assert!(check_customer_keys(&req(&whole)).is_ok());
            assert!(check_customer_keys(&req(&[])).is_ok());
            let refused = [
                vec![("key", k.as_str()), ("key-md5", m.as_str())],
                vec![("algorithm", "AES128"), ("key", &k), ("key-md5", &m)],
                vec![("algorithm", "AES256")],
                vec![("algorithm", "AES256"), ("key", &k)],
                vec![("algorithm", "AES256"), ("key", &short), ("key-md5", &m)],
                vec![
                    ("algorithm", "AES256"),
                    ("key", "not base64!"),
                    ("key-md5", &m),
                ],
                vec![
                    ("algorithm", "AES256"),
                    ("key", &k),
                    ("key-md5", &other_md5),
                ],
                vec![("algorithm", "AES256"), ("key", &k), ("key-md5", "x")],
                vec![("key-md5", &m)],
            ];
            for parts in refused {
                let e = check_customer_keys(&req(&parts)).unwrap_err();
                assert_eq!(e.code, HcpCode::InvalidArgument, "{prefix} {parts:?}");
            }
        }
    }

    /// Oracle for the one-pass presence checks that stand before lookups by name: for random
    /// requests (names in either case, given once or more, near misses of the names asked),
    /// `carries_any` says yes exactly when a lookup of one of the names would find a value.
    #[test]
    fn carries_any_agrees_with_looking_each_name_up() {
        use rand::{Rng, SeedableRng};
        let pool = [
            "x-amz-acl",
            "X-Amz-Acl",
            "x-amz-acl-",
            "x-amz-grant-read",
            "x-amz-grant-read-acp",
            "X-AMZ-GRANT-WRITE-ACP",
            "x-amz-grant-full-control",
            "x-amz-grant-",
            "x-amz-grant-rea",
            "x-amz-bucket-object-lock-enabled",
            "x-amz-bypass-governance-retention",
            "if-match",
            "host",
            "content-length",
            "x-amz-date",
            "x-hcp-retention",
        ];
        let asked: [&[&str]; 4] = [
            acl::GRANT_HEADERS,
            &["x-amz-acl"],
            &[
                "x-amz-bucket-object-lock-enabled",
                "x-amz-bypass-governance-retention",
            ],
            &[],
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x4ead);
        let mut found = 0;
        for _ in 0..5_000 {
            let mut req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
            for _ in 0..rng.gen_range(0..8) {
                let name = pool[rng.gen_range(0..pool.len())];
                req.append_header(name.to_string(), "v").unwrap();
            }
            for names in asked {
                let looked_up = names.iter().any(|n| req.headers.contains_key(*n));
                assert_eq!(carries_any(&req.headers, names), looked_up, "{names:?}");
                found += usize::from(looked_up);
            }
        }
        assert!(
            found > 1_000,
            "the cases find the names often enough: {found}"
        );
    }

    #[test]
    fn delete_lists() {
        let list = |n: usize| {
            let objects: String = (0..n)
                .map(|i| format!("<Object><Key>k{i}</Key></Object>"))
                .collect();
            format!("<Delete><Quiet>true</Quiet>{objects}</Delete>").into_bytes()
        };
        assert_eq!(check_delete_list(&list(1), &Limits::default()), Ok(false));
        let versioned = b"<Delete><Object><Key>k</Key><VersionId>v</VersionId></Object></Delete>";
        assert_eq!(check_delete_list(versioned, &Limits::default()), Ok(true));
        assert!(check_delete_list(&list(1000), &Limits::default()).is_ok());
        for bad in [
            list(0),
            list(1001),
            b"<Delete><Object>".to_vec(),
            b"<Other/>".to_vec(),
        ] {
            assert_eq!(
                check_delete_list(&bad, &Limits::default())
                    .unwrap_err()
                    .code,
                HcpCode::MalformedXML
            );
        }
        assert_eq!(
            check_delete_list(b"", &Limits::default()).unwrap_err().code,
            HcpCode::MissingRequestBodyError
        );
    }

    #[test]
    fn bucket_names_by_hcp_rules() {
        for ok in ["abc", "finance", "a-b-c", "ABC123", &"a".repeat(63)] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a.b.c",
            "a_b",
            "xn--abc",
            &"a".repeat(64),
            "with space",
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}

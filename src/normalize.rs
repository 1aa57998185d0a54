//! Response normalisation: every backend answer leaves the gateway in HCP's shape — HCP's code
//! and status, HCP's error body, HCP's fixed security headers, bucket names without the tenant's
//! prefix, and nothing that identifies the backend.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

use crate::errors::{HcpCode, HcpError};
use crate::operation::Operation;
use crate::routing::Route;

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
/// Sent only on successful answers: seed 002 leaves them off error responses.
const SUCCESS_ONLY_HEADERS: &[(&str, &str)] = &[
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
];

/// Backend response headers that identify the backend or its internals.
fn backend_identifying(name: &str) -> bool {
    matches!(
        name,
        "server" | "x-amz-id-2" | "x-amz-request-id" | "connection" | "keep-alive"
    ) || name.starts_with("x-minio-")
        || name.starts_with("x-obs-")
        || name.starts_with("x-reserved")
        || name.starts_with("x-rgw-")
}

/// Adds the security headers, the gateway's request id and `Date`.
pub fn finish_headers(resp: &mut ResponseHeader, is_error: bool, request_id: &str, host_id: &str) {
    for (n, v) in SECURITY_HEADERS {
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
    resp.insert_header("x-amz-request-id", request_id)
        .expect("request id is ASCII");
    resp.insert_header("x-amz-id-2", host_id)
        .expect("host id is a header value");
    resp.insert_header(
        http::header::DATE,
        httpdate::fmt_http_date(std::time::SystemTime::now()),
    )
    .expect("date");
}

/// The response header for an HCP error document of `len` bytes.
pub fn error_header(err: &HcpError, len: usize, request_id: &str, host_id: &str) -> ResponseHeader {
    let mut resp = ResponseHeader::build(err.status, Some(12)).expect("valid status");
    resp.insert_header(http::header::CONTENT_TYPE, "application/xml;charset=UTF-8")
        .expect("static");
    resp.insert_header(http::header::CONTENT_LENGTH, len.to_string())
        .expect("length");
    if err.status == 503 {
        // HCP asks clients to back off and retry; say when.
        resp.insert_header(http::header::RETRY_AFTER, "1")
            .expect("static");
    }
    finish_headers(&mut resp, true, request_id, host_id);
    resp
}

/// Copies a successful backend response header, leaving out what identifies the backend.
pub fn success_header(
    upstream: &ResponseHeader,
    request_id: &str,
    host_id: &str,
) -> (ResponseHeader, Option<String>) {
    let mut resp =
        ResponseHeader::build(upstream.status, Some(upstream.headers.len() + 12)).expect("status");
    let mut backend_request_id = None;
    for (name, value) in upstream.headers.iter() {
        let n = name.as_str();
        if n == "x-amz-request-id" {
            backend_request_id = value.to_str().ok().map(str::to_string);
        }
        if backend_identifying(n) {
            continue;
        }
        resp.append_header(name.clone(), value.clone())
            .expect("copied header");
    }
    finish_headers(&mut resp, false, request_id, host_id);
    (resp, backend_request_id)
}

/// Whether a backend status is an error the gateway must translate (304 is an answer, not an error).
pub fn is_error_status(status: u16) -> bool {
    status >= 400 || (300..400).contains(&status) && status != 304
}

struct MappingRow {
    code: HcpCode,
    status: Option<u16>,
}

static S3_TABLE: &str = include_str!("../tables/mapping/s3.csv");

fn s3_mapping() -> &'static HashMap<&'static str, MappingRow> {
    static MAP: OnceLock<HashMap<&'static str, MappingRow>> = OnceLock::new();
    MAP.get_or_init(|| {
        parse_mapping(S3_TABLE).expect("tables/mapping/s3.csv is checked by a unit test")
    })
}

fn parse_mapping(table: &'static str) -> Result<HashMap<&'static str, MappingRow>, String> {
    let mut map = HashMap::new();
    for (n, line) in table.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.splitn(4, ',').collect();
        if cols.len() < 3 {
            return Err(format!(
                "line {}: want backend_code,hcp_code,hcp_status,reason",
                n + 1
            ));
        }
        let code = HcpCode::from_name(cols[1])
            .ok_or_else(|| format!("line {}: {} is not an HCP code", n + 1, cols[1]))?;
        let status = match cols[2] {
            "" => None,
            s => Some(
                s.parse::<u16>()
                    .map_err(|_| format!("line {}: bad status", n + 1))?,
            ),
        };
        if map.insert(cols[0], MappingRow { code, status }).is_some() {
            return Err(format!("line {}: {} is mapped twice", n + 1, cols[0]));
        }
    }
    Ok(map)
}

/// What the backend said in its error document.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BackendError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

/// Reads `Code`, `Message` and `RequestId` from an S3-style `<Error>` document.
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
                current = (depth == 2).then(|| e.name().as_ref().to_vec());
                text.clear();
            }
            Ok(Event::Text(t)) if current.is_some() => {
                text.push_str(&t.decode().unwrap_or_default());
            }
            Ok(Event::GeneralRef(r)) if current.is_some() => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else if let Some(v) = r
                    .decode()
                    .ok()
                    .and_then(|n| quick_xml::escape::resolve_xml_entity(&n))
                {
                    text.push_str(v);
                }
            }
            Ok(Event::End(_)) => {
                if let Some(name) = current.take() {
                    let value = std::mem::take(&mut text);
                    match name.as_slice() {
                        b"Code" => out.code = Some(value),
                        b"Message" => out.message = Some(value),
                        b"RequestId" => out.request_id = Some(value),
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

/// The HCP error for a backend error answer.
pub fn map_backend_error(
    status: u16,
    backend: &BackendError,
    op: Operation,
    client_bucket: Option<&str>,
    client_key: Option<&str>,
) -> HcpError {
    let mapped = backend.code.as_deref().and_then(|c| s3_mapping().get(c));
    let mut err = match mapped {
        Some(row) => {
            let e = HcpError::new(row.code);
            match row.status {
                Some(s) => e.with_status(s),
                None => e,
            }
        }
        None => by_status(status, op),
    };
    // Backends report missing containers as missing keys (s3s-fs a bucket, Ceph an upload's
    // metadata object); what is missing follows from the operation.
    if err.code == HcpCode::NoSuchKey {
        if client_key.is_none() {
            err = HcpError::new(HcpCode::NoSuchBucket);
        } else if matches!(
            op,
            Operation::UploadPart
                | Operation::ListParts
                | Operation::CompleteMultipartUpload
                | Operation::AbortMultipartUpload
        ) {
            err = HcpError::new(HcpCode::NoSuchUpload);
        }
    }
    match err.code {
        HcpCode::NoSuchBucket => err.with_bucket(client_bucket.unwrap_or_default()),
        HcpCode::NoSuchKey => err.with_key(client_key.unwrap_or_default()),
        _ => err,
    }
}

/// The HCP error for a status without a readable code (HEAD answers have no body).
fn by_status(status: u16, op: Operation) -> HcpError {
    let code = match status {
        301 | 302 | 307 | 308 => HcpCode::InternalError,
        403 => HcpCode::AccessDenied,
        404 if matches!(
            op,
            Operation::HeadBucket
                | Operation::DeleteBucket
                | Operation::ListObjects
                | Operation::ListObjectsV2
        ) =>
        {
            HcpCode::NoSuchBucket
        }
        404 if matches!(
            op,
            Operation::UploadPart
                | Operation::ListParts
                | Operation::AbortMultipartUpload
                | Operation::CompleteMultipartUpload
        ) =>
        {
            HcpCode::NoSuchUpload
        }
        404 => HcpCode::NoSuchKey,
        405 => HcpCode::MethodNotAllowed,
        409 => HcpCode::OperationAborted,
        411 => HcpCode::MissingContentLength,
        412 => HcpCode::PreconditionFailed,
        416 => HcpCode::InvalidRange,
        501 => HcpCode::NotImplemented,
        503 => HcpCode::ServiceUnavailable,
        s if (400..500).contains(&s) => HcpCode::InvalidArgument,
        _ => HcpCode::InternalError,
    };
    HcpError::new(code)
}

/// Normalises a control operation's XML answer in one pass: the root element gets the name S3
/// documents for the operation, backend bucket names lose the tenant's prefix (and
/// `ListAllMyBucketsResult` keeps only the tenant's buckets), and `Location` names the object as
/// the client addressed it instead of the backend's address.
pub fn rewrite_xml(body: &[u8], op: Operation, route: &Route<'_>, location: &str) -> Option<Bytes> {
    let mut reader = Reader::from_reader(body);
    let mut writer = Writer::new(Vec::with_capacity(body.len() + 64));
    let root = op.result_root();
    let mut path: Vec<Vec<u8>> = Vec::new();
    // ListBuckets: a <Bucket> element is held until its <Name> tells whether it is the tenant's.
    let mut held: Option<Vec<Event<'static>>> = None;
    let mut keep_held = true;
    loop {
        let mut event = reader.read_event().ok()?.into_owned();
        let depth = path.len();
        match &mut event {
            Event::Start(e) => {
                if depth == 0 {
                    if let Some(root) = root.filter(|r| e.name().as_ref() != r.as_bytes()) {
                        let mut renamed = BytesStart::new(root);
                        renamed.extend_attributes(e.attributes().flatten());
                        *e = renamed.into_owned();
                    }
                }
                path.push(e.name().as_ref().to_vec());
            }
            Event::End(e) if depth == 1 => {
                if let Some(root) = root {
                    *e = BytesEnd::new(root).into_owned();
                }
            }
            Event::Text(t) => {
                let parent = path.last().map(Vec::as_slice);
                let grand = depth
                    .checked_sub(2)
                    .and_then(|i| path.get(i))
                    .map(Vec::as_slice);
                let text = t.decode().ok()?.into_owned();
                let rewritten = match (grand, parent) {
                    (Some(b"Bucket"), Some(b"Name")) if op == Operation::ListBuckets => {
                        let name = route.client_bucket(&text).map(str::to_string);
                        keep_held = name.is_some();
                        name
                    }
                    (_, Some(b"Bucket")) | (Some(_), Some(b"Name")) if depth == 2 => {
                        route.client_bucket(&text).map(str::to_string)
                    }
                    (_, Some(b"Location")) if op == Operation::CompleteMultipartUpload => {
                        Some(location.to_string())
                    }
                    _ => None,
                };
                if let Some(r) = rewritten {
                    event = Event::Text(BytesText::new(&r).into_owned());
                }
            }
            Event::Eof => break,
            _ => {}
        }
        let is_end = matches!(event, Event::End(_));
        let closes_bucket = is_end && path.last().map(Vec::as_slice) == Some(b"Bucket");
        if op == Operation::ListBuckets
            && matches!(&event, Event::Start(e) if e.name().as_ref() == b"Bucket")
        {
            held = Some(Vec::new());
            keep_held = true;
        }
        match held.as_mut() {
            Some(buf) => {
                buf.push(event);
                if closes_bucket {
                    for e in held
                        .take()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|_| keep_held)
                    {
                        writer.write_event(e).ok()?;
                    }
                }
            }
            None => writer.write_event(event).ok()?,
        }
        if is_end {
            path.pop();
        }
    }
    Some(Bytes::from(writer.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SecretKey;
    use crate::config::{AddressingStyle, BackendKind, Tenant};
    use crate::routing::BackendRuntime;
    use std::time::Duration;

    #[test]
    fn mapping_table_targets_only_hcp_codes() {
        let map = parse_mapping(S3_TABLE).unwrap();
        assert!(map.len() > 40);
        assert_eq!(map["KeyTooLongError"].code, HcpCode::KeyTooLong);
        assert!(parse_mapping("Foo,NotAnHcpCode,,x\n").is_err());
    }

    #[test]
    fn backend_error_documents_are_read() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key &amp; more</Message><Key>k</Key><RequestId>tx1</RequestId></Error>";
        let e = parse_backend_error(body);
        assert_eq!(e.code.as_deref(), Some("NoSuchKey"));
        assert_eq!(e.message.as_deref(), Some("The key & more"));
        assert_eq!(e.request_id.as_deref(), Some("tx1"));
    }

    #[test]
    fn backend_codes_map_to_hcp() {
        let be = |c: &str| BackendError {
            code: Some(c.into()),
            ..Default::default()
        };
        let e = map_backend_error(
            400,
            &be("KeyTooLongError"),
            Operation::PutObject,
            Some("b"),
            Some("k"),
        );
        assert_eq!((e.status, e.code), (400, HcpCode::KeyTooLong));
        let e = map_backend_error(
            403,
            &be("SignatureDoesNotMatch"),
            Operation::GetObject,
            Some("b"),
            Some("k"),
        );
        assert_eq!((e.status, e.code), (500, HcpCode::InternalError));
        let e = map_backend_error(
            404,
            &be("NoSuchKey"),
            Operation::ListObjects,
            Some("b"),
            None,
        );
        assert_eq!(
            (e.code, e.bucket.as_deref()),
            (HcpCode::NoSuchBucket, Some("b"))
        );
        let e = map_backend_error(
            404,
            &BackendError::default(),
            Operation::HeadObject,
            Some("b"),
            Some("k"),
        );
        assert_eq!((e.code, e.key.as_deref()), (HcpCode::NoSuchKey, Some("k")));
        let e = map_backend_error(
            404,
            &be("NoSuchKey"),
            Operation::ListParts,
            Some("b"),
            Some("k"),
        );
        assert_eq!(e.code, HcpCode::NoSuchUpload);
        let e = map_backend_error(
            404,
            &be("NoSuchKey"),
            Operation::UploadPartCopy,
            Some("b"),
            Some("k"),
        );
        assert_eq!(e.code, HcpCode::NoSuchKey);
        let e = map_backend_error(418, &be("Teapot"), Operation::GetObject, None, None);
        assert_eq!((e.status, e.code), (400, HcpCode::InvalidArgument));
        let e = map_backend_error(599, &be("Weird"), Operation::GetObject, None, None);
        assert_eq!((e.status, e.code), (500, HcpCode::InternalError));
    }

    fn with_route<R>(f: impl FnOnce(&Route<'_>) -> R) -> R {
        let tenant = Tenant {
            name: "t".into(),
            backend: "b".into(),
            bucket_prefix: "t1-".into(),
            anonymous: Vec::new(),
        };
        let backend = BackendRuntime {
            name: "b".into(),
            kind: BackendKind::S3,
            addr: "127.0.0.1:1".parse().unwrap(),
            authority: "h".into(),
            access_key: "a".into(),
            secret: SecretKey::new("s"),
            region: "r".into(),
            addressing: AddressingStyle::Path,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
        };
        f(&Route {
            tenant: &tenant,
            backend: &backend,
            backend_bucket: None,
        })
    }

    #[test]
    fn non_standard_roots_get_s3s_names() {
        let body = b"<?xml version=\"1.0\"?><ListPartsResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>t1-a</Bucket></ListPartsResponse>";
        let out = with_route(|r| rewrite_xml(body, Operation::ListParts, r, "")).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "<?xml version=\"1.0\"?><ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>a</Bucket></ListPartsResult>"
        );
    }

    #[test]
    fn list_buckets_keeps_only_the_tenants_buckets() {
        let body = b"<ListAllMyBucketsResult><Owner><ID>o</ID></Owner><Buckets>\
            <Bucket><Name>t1-alpha</Name><CreationDate>d</CreationDate></Bucket>\
            <Bucket><Name>t2-beta</Name><CreationDate>d</CreationDate></Bucket>\
            <Bucket><Name>t1-gamma</Name><CreationDate>d</CreationDate></Bucket>\
            </Buckets></ListAllMyBucketsResult>";
        let out = with_route(|r| rewrite_xml(body, Operation::ListBuckets, r, "")).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(
            s.contains("<Name>alpha</Name>") && s.contains("<Name>gamma</Name>"),
            "{s}"
        );
        assert!(!s.contains("beta") && !s.contains("t1-"), "{s}");
    }

    #[test]
    fn listing_and_multipart_names_lose_the_prefix() {
        let body = b"<ListBucketResult><Name>t1-alpha</Name><Contents><Key>Name</Key></Contents></ListBucketResult>";
        let out = with_route(|r| rewrite_xml(body, Operation::ListObjectsV2, r, "")).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "<ListBucketResult><Name>alpha</Name><Contents><Key>Name</Key></Contents></ListBucketResult>"
        );
        let body = b"<CompleteMultipartUploadResult><Location>http://backend:1/t1-a/k</Location><Bucket>t1-a</Bucket><Key>k</Key></CompleteMultipartUploadResult>";
        let out = with_route(|r| {
            rewrite_xml(body, Operation::CompleteMultipartUpload, r, "http://gw/a/k")
        })
        .unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(
            s.contains("<Location>http://gw/a/k</Location><Bucket>a</Bucket>"),
            "{s}"
        );
    }
}

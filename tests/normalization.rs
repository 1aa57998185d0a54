//! Response normalisation through the real forwarding path: every row of the MinIO, OBS and AWS
//! mapping tables against a recorded-dialect server (bodies, HEAD headers, OBS JSON), the rows
//! real backends can produce against Ceph RGW and the embedded backend, the gateway's own
//! failures, long completes, and pretty printing.

mod common;

use std::time::Duration;

use common::dialect_server::{documented_statuses, Vendor};
use common::raw::{send, RawResponse, V4};
use common::*;
use hcp_s3_gateway::hcp::mapping::{self, Dialect, Row};
use hcp_s3_gateway::request::classify::Operation;
use hcp_s3_gateway::sig::v4 as sigv4;

/// A gateway in front of one recorded-dialect server.
/// Sends `op` through the gateway with the recorded server steered by `directive`.
async fn request(
    gw: &TestGateway,
    server: &common::dialect_server::DialectServer,
    op: Operation,
    directive: &str,
) -> RawResponse {
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let complete = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part></CompleteMultipartUpload>".to_vec();
    let complete_target = format!("/bkt/some/key?uploadId={}", bound_upload_id("bkt", "u1"));
    let part_target = format!(
        "/bkt/some/key?partNumber=1&uploadId={}",
        bound_upload_id("bkt", "u1")
    );
    let (method, target, body): (&str, &str, Vec<u8>) = match op {
        Operation::GetObject => ("GET", "/bkt/some/key", vec![]),
        Operation::HeadObject => ("HEAD", "/bkt/some/key", vec![]),
        Operation::CreateBucket => ("PUT", "/new-bucket", vec![]),
        Operation::CompleteMultipartUpload => ("POST", &complete_target, complete),
        Operation::ListObjects => ("GET", "/bkt", vec![]),
        Operation::CopyObject => ("PUT", "/bkt/some/key", vec![]),
        Operation::UploadPartCopy => ("PUT", &part_target, vec![]),
        // (A version's delete: the one a lock can refuse.)
        Operation::DeleteObject => ("DELETE", "/bkt/some/key?versionId=v1", vec![]),
        Operation::GetObjectAcl => ("GET", "/bkt/some/key?acl&versionId=v1", vec![]),
        Operation::PutObjectAcl => ("PUT", "/bkt/some/key?acl&versionId=v1", vec![]),
        other => panic!("no request for {other:?}"),
    };
    let digest = sigv4::sha256_hex(&body);
    let len = body.len().to_string();
    server.respond_to(method, directive);
    let mut extra: Vec<(&str, &str)> = vec![];
    if matches!(op, Operation::CopyObject | Operation::UploadPartCopy) {
        extra.push(("x-amz-copy-source", "/bkt/source"));
    }
    if op == Operation::PutObjectAcl {
        extra.push(("x-amz-acl", "private"));
    }
    if !body.is_empty() {
        extra.push(("content-length", &len));
    }
    let headers = V4::now(&ak, &sk, &addr, &digest).sign(method, target.as_bytes(), &extra);
    send(
        &addr,
        method,
        target.as_bytes(),
        &headers,
        if body.is_empty() { vec![] } else { vec![body] },
    )
    .await
}

fn assert_normalised(r: &RawResponse, head: bool, what: &str) {
    assert_eq!(
        r.all("server"),
        ["HCP V9.0.0.2"],
        "{what}: a backend's Server"
    );
    assert!(
        !r.headers.iter().any(|(n, _)| n.starts_with("x-minio-")
            || n.starts_with("x-obs-")
            || n.starts_with("x-reserved")),
        "{what}: backend headers leaked: {:?}",
        r.headers
    );
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"), "{what}");
    if head {
        assert!(r.body.is_empty(), "{what}: HEAD with a body");
    }
}

/// Which recorded vendor produces a row's code: the table's own vendor, or for AWS rows a vendor
/// that documents the code and does not map it differently itself.
fn vendor_for(
    table: Dialect,
    row: &Row,
    documented: &std::collections::HashMap<(String, String), u16>,
) -> Vendor {
    match table {
        Dialect::Minio => Vendor::Minio,
        Dialect::Obs => Vendor::Obs,
        _ => {
            let own = |d: Dialect| {
                mapping::rows(d)
                    .iter()
                    .any(|r| r.backend_code == row.backend_code)
            };
            let has =
                |v: &str| documented.contains_key(&(v.to_string(), row.backend_code.to_string()));
            if has("minio") && !own(Dialect::Minio) {
                Vendor::Minio
            } else if has("obs") && !own(Dialect::Obs) {
                Vendor::Obs
            } else {
                Vendor::Aws
            }
        }
    }
}

/// Whether a row for any operation has a row of its own for GetObject (the code and status a
/// GET of an object gets then is that row's): it is then shown by a listing instead.
fn read_otherwise(table: Dialect, row: &Row) -> bool {
    row.operation.is_none()
        && mapping::rows(table).iter().any(|r| {
            r.backend_code == row.backend_code && r.operation == Some(Operation::GetObject)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mapping_row_through_the_forwarding_path() {
    let documented = documented_statuses();
    let mut gateways = std::collections::HashMap::new();
    for v in [Vendor::Minio, Vendor::Obs, Vendor::Aws] {
        gateways.insert(v.name(), start_with_dialect(v, "").await);
    }
    let mut checked = 0;
    for table in [Dialect::Aws, Dialect::Minio, Dialect::Obs] {
        for row in mapping::rows(table) {
            let vendor = vendor_for(table, row, &documented);
            let (gw, server) = &gateways[vendor.name()];
            let code = row.backend_code;
            let status = row
                .backend_status
                .map(|s| s.to_string())
                .unwrap_or_default();
            let op = row.operation.unwrap_or(if read_otherwise(table, row) {
                Operation::ListObjects
            } else {
                Operation::GetObject
            });
            let what = format!(
                "{}.csv line {} ({code} via {})",
                table.name(),
                row.line,
                vendor.name()
            );
            let before = server.count();
            let r = request(gw, server, op, &format!("error|{code}|{status}")).await;
            assert!(server.count() > before, "{what}: not forwarded");
            assert_eq!(
                (r.status, r.code()),
                (row.hcp_status, row.hcp_code.as_str().to_string()),
                "{what}: {}",
                r.text()
            );
            assert_hcp_error_body(&r.text(), row.hcp_code.as_str());
            assert_normalised(&r, false, &what);
            // The backend's request id names the backend: the access log has it, the client not.
            assert!(
                !r.headers
                    .iter()
                    .any(|(_, v)| v.contains("17B5C9D2A4E3F001")),
                "{what}: the backend's request id reached the client"
            );
            checked += 1;
            if row.operation.is_none() && vendor != Vendor::Aws {
                // HEAD: no body; MinIO and OBS carry the code in headers.
                let r = request(
                    gw,
                    server,
                    Operation::HeadObject,
                    &format!("error|{code}|{status}"),
                )
                .await;
                // (HCP's HEADs have no 400: a code that would make one is the backend's
                // fault; what else a HEAD's code says stands.)
                let expected = match row.hcp_status {
                    400 => 500,
                    other => other,
                };
                assert_eq!(r.status, expected, "{what} (HEAD)");
                assert_normalised(&r, true, &format!("{what} (HEAD)"));
            }
            if table == Dialect::Obs && row.operation.is_none() {
                let r = request(gw, server, op, &format!("json-error|{code}|{status}")).await;
                assert_eq!(
                    (r.status, r.code()),
                    (row.hcp_status, row.hcp_code.as_str().to_string()),
                    "{what} (JSON)"
                );
            }
        }
    }
    assert!(checked > 150, "{checked} rows");
    for (_gw, _) in gateways.into_values() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_failures() {
    let (gw, server) =
        start_with_dialect(Vendor::Minio, "max_buffered_response_bytes = 65536\n").await;
    // The backend stalls past the read timeout: answered 503, never sent again (the backend
    // had the whole request, and may still be carrying it out).
    let gets = || server.seen().iter().filter(|(m, ..)| m == "GET").count();
    let before = gets();
    let r = request(&gw, &server, Operation::GetObject, "stall|3000").await;
    assert_eq!(gets() - before, 1, "{:?}", server.seen());
    // But for a CreateBucket timed out on a pooled connection: tried once more, as a create
    // whose answer was lost (its try again makes the bucket the first made the creator's).
    let pooled = request(&gw, &server, Operation::GetObject, "").await;
    assert_eq!(pooled.status, 200, "{}", pooled.text());
    let creates = || server.seen().iter().filter(|(m, ..)| m == "PUT").count();
    let before = creates();
    let created = request(&gw, &server, Operation::CreateBucket, "stall|3000").await;
    created.assert_hcp_error(503, "ServiceUnavailable");
    assert!(creates() - before > 1, "{:?}", server.seen());
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "ServiceUnavailable"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    // The backend answers garbage, or an error document too large to read.
    let r = request(&gw, &server, Operation::GetObject, "garbage|502").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (500, "InternalError"),
        "{}",
        r.text()
    );
    // An overloaded backend behind a proxy whose page says nothing S3 can read: HCP's 503,
    // which clients retry, not a 500.
    for status in [429, 503, 504] {
        for op in [Operation::GetObject, Operation::CompleteMultipartUpload] {
            let r = request(&gw, &server, op, &format!("garbage|{status}")).await;
            r.assert_hcp_error(503, "ServiceUnavailable");
            assert_eq!(r.header("retry-after"), Some("1"), "{status} {op:?}");
        }
        // With no page at all, the same.
        let r = request(
            &gw,
            &server,
            Operation::GetObject,
            &format!("empty|{status}"),
        )
        .await;
        r.assert_hcp_error(503, "ServiceUnavailable");
    }
    // A 400 that names no code says nothing the client did: the backend's fault.
    let r = request(&gw, &server, Operation::CopyObject, "empty|400").await;
    r.assert_hcp_error(500, "InternalError");
    // Nor is a HEAD's 400 the client's, whatever code MinIO gives it in a header (HCP's HEADs
    // have no 400).
    let r = request(
        &gw,
        &server,
        Operation::HeadObject,
        "error|InvalidRequest|400",
    )
    .await;
    assert_eq!(r.status, 500, "{:?}", r.headers);
    let r = request(&gw, &server, Operation::GetObject, "huge-error|200000").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (500, "InternalError"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("xxxx"), "backend internals leaked");
    // The backend dies mid-download: the client must not see a complete-looking body.
    let r = request(&gw, &server, Operation::GetObject, "die").await;
    assert_eq!(r.status, 200);
    let declared: usize = r.header("content-length").unwrap().parse().unwrap();
    assert!(
        r.body.len() < declared,
        "a truncated download looked complete"
    );
    // Nor is it counted a success: the 200 sent, the failure's code with it.
    let cut =
        gw.metrics()
            .requests
            .with_label_values(&["GetObject", "t", "b", "200", "InternalError"]);
    assert_eq!(
        cut.get(),
        1,
        "{}",
        String::from_utf8_lossy(&gw.metrics().render())
    );

    // AWS hides errors found late in a 200 on complete and copies.
    let r = request(
        &gw,
        &server,
        Operation::CompleteMultipartUpload,
        "error-in-200|InternalError",
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (500, "InternalError"),
        "{}",
        r.text()
    );
    let r = request(
        &gw,
        &server,
        Operation::CompleteMultipartUpload,
        "error-in-200|SlowDown",
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "ServiceUnavailable"),
        "{}",
        r.text()
    );
    // Codes in no table count under `other`: a backend cannot grow the metric's label set.
    for n in 0..5 {
        let directive = format!("error|ZzUnknownCode{n}|400");
        let r = request(&gw, &server, Operation::GetObject, &directive).await;
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let metrics = reqwest::get(format!("{}/metrics", gw.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("ZzUnknownCode"), "{metrics}");
    assert!(
        metrics.contains(r#"backend_code="other",hcp_code="InvalidArgument"} 5"#),
        "{metrics}"
    );
    // A 200 that is not a whole answer is not the operation's success: a complete's, or a
    // listing's that would look whole.
    for body in ["empty", "not-xml", "error-empty", "other-root", "truncated"] {
        for op in [Operation::CompleteMultipartUpload, Operation::ListObjects] {
            let r = request(&gw, &server, op, &format!("body-200|{body}")).await;
            r.assert_hcp_error(500, "InternalError");
            assert!(
                !r.text().contains("xx not xml"),
                "{op:?} {body}: {}",
                r.text()
            );
        }
    }
    gw.stop().await;

    // OBS: a copy answered 200 without an ETag failed.
    let (gw, server) = start_with_dialect(Vendor::Obs, "").await;
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    server.respond_to("PUT", "copy-without-etag");
    let headers = V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256).sign(
        "PUT",
        b"/bkt/copy",
        &[("x-amz-copy-source", "/bkt/src")],
    );
    let r = send(&addr, "PUT", b"/bkt/copy", &headers, vec![]).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (500, "InternalError"),
        "{}",
        r.text()
    );
    // OBS's namespace names it: HCP's documents are in S3's.
    server.respond_to("PUT", "obs-copy");
    let r = send(&addr, "PUT", b"/bkt/copy", &headers, vec![]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains("<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">")
            && !r.text().contains("myhwclouds"),
        "{}",
        r.text()
    );
    // A bucket's CORS configuration too.
    server.respond_to("GET", "cors");
    let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", "/bkt?cors", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains("<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">")
            && r.text().contains("<AllowedOrigin>*</AllowedOrigin>")
            && !r.text().contains("myhwclouds"),
        "{}",
        r.text()
    );
    gw.stop().await;
}

/// HCP's successes are 200, 204 and 206: a backend's 201 (Ceph RGW's
/// `rgw_s3_success_create_obj_status`) is HCP's 200, and a copy's document in it is settled
/// as a 200's — an error in it is the copy's failure, never a success passed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_s_201_is_hcp_s_200() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let copy = |directive: &str| {
        server.respond_to("PUT", directive);
        let headers = V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256).sign(
            "PUT",
            b"/bkt/copy",
            &[("x-amz-copy-source", "/bkt/src")],
        );
        let addr = addr.clone();
        async move { send(&addr, "PUT", b"/bkt/copy", &headers, vec![]).await }
    };
    let r = copy("created|error").await;
    r.assert_hcp_error(500, "InternalError");
    let r = copy("created|copy").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains("<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"),
        "{}",
        r.text()
    );
    server.respond_to("PUT", "created|empty");
    let headers = V4::now(&ak, &sk, &addr, &sigv4::sha256_hex(b"data")).sign(
        "PUT",
        b"/bkt/k",
        &[("content-length", "4")],
    );
    let r = send(&addr, "PUT", b"/bkt/k", &headers, vec![b"data".to_vec()]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    gw.stop().await;
}

/// A document the gateway rebuilt reaches S3 with the digest S3 asks of it: current SDKs send
/// an Object Lock document with a CRC32 of their own (which is the client's document's, not the
/// one sent), and AWS refuses such a request with neither Content-MD5 nor a checksum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilt_documents_carry_their_own_digest() {
    use aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let until = aws_smithy_types::DateTime::from_secs(1_900_000_000);
    let retention = ObjectLockRetention::builder()
        .mode(ObjectLockRetentionMode::Governance)
        .retain_until_date(until)
        .build();
    let put = gw.client().put_object_retention().bucket("bkt").key("k");
    put.retention(retention).send().await.unwrap();
    let seen = server.seen();
    let (_, target, headers) = seen.iter().rfind(|(m, _, _)| m == "PUT").expect("the PUT");
    assert!(target.contains("retention"), "{target}");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let doc = "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-03-17T17:46:40Z</RetainUntilDate></Retention>";
    assert_eq!(
        header("content-md5"),
        Some(content_md5(doc.as_bytes())),
        "{headers:?}"
    );
    assert_eq!(header("x-amz-checksum-crc32"), None, "{headers:?}");
    gw.stop().await;
}

/// A multipart complete goes to the backend as the gateway read its part list, not as the
/// client wrote it: a part in a prefixed element (which a reader by full names would not count,
/// and a backend reading local names would) is read and sent as a part; the whole object's
/// checksum (`x-amz-checksum-*` of a complete) is the backend's to check and is sent on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_is_sent_as_its_parts_were_read() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let body =
        b"<CompleteMultipartUpload><s3:Part xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
        <s3:PartNumber>1</s3:PartNumber><s3:ETag>\"a\"</s3:ETag></s3:Part>\
        <Part><PartNumber>2</PartNumber><ETag>\"b\"</ETag></Part></CompleteMultipartUpload>"
            .to_vec();
    let target = format!("/bkt/k?uploadId={}", bound_upload_id("bkt", "u1"));
    let len = body.len().to_string();
    let digest = sigv4::sha256_hex(&body);
    // The whole object's checksum, S3's to check (not the document's): sent on.
    let object_checksum = [
        ("content-length", len.as_str()),
        ("x-amz-checksum-crc32", "AAAAAA=="),
        ("x-amz-checksum-type", "FULL_OBJECT"),
    ];
    let headers =
        V4::now(&ak, &sk, &addr, &digest).sign("POST", target.as_bytes(), &object_checksum);
    send(&addr, "POST", target.as_bytes(), &headers, vec![body]).await;
    let seen = server.seen();
    let (_, _, headers) = seen
        .iter()
        .rfind(|(m, _, _)| m == "POST")
        .expect("the complete");
    for (name, value) in &object_checksum[1..] {
        let sent = headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        assert_eq!(sent, Some(*value), "{headers:?}");
    }
    let sent = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload \
        xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><PartNumber>1</PartNumber>\
        <ETag>&quot;a&quot;</ETag></Part><Part><PartNumber>2</PartNumber>\
        <ETag>&quot;b&quot;</ETag></Part></CompleteMultipartUpload>";
    let md5 = headers.iter().find(|(n, _)| n == "content-md5");
    assert_eq!(
        md5.map(|(_, v)| v.clone()),
        Some(content_md5(sent.as_bytes())),
        "{headers:?}"
    );
    gw.stop().await;
}

/// A bucket's location is the gateway's: no backend's region (which says where and whose the
/// backend is), in S3's document whatever the dialect's (OBS's is `<Location>`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_s_location_is_the_gateway_s() {
    for vendor in [Vendor::Aws, Vendor::Obs, Vendor::Minio] {
        let (gw, server) = start_with_dialect(vendor, "").await;
        let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
        let (ak, sk) = keys(USER, PASSWORD);
        server.respond_to("GET", "location|cn-north-4");
        let headers =
            V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256).sign("GET", b"/bkt?location", &[]);
        let r = send(&addr, "GET", b"/bkt?location", &headers, vec![]).await;
        let text = r.text();
        assert_eq!(r.status, 200, "{vendor:?}: {text}");
        assert!(
            text.contains("<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">")
                && !text.contains("cn-north-4")
                && !text.contains("myhwclouds"),
            "{vendor:?}: {text}"
        );
        gw.stop().await;
    }
}

/// The answer to a complete that outlasted `complete_keepalive_ms`: 200 at once, the gateway's
/// whitespace, then `root` — the result in the client's terms, or the Error found after.
fn kept_alive(r: &RawResponse, root: &str) {
    let text = r.text();
    assert_eq!(r.status, 200, "{text}");
    assert!(
        text.starts_with(' '),
        "the gateway's whitespace kept the connection alive: {text:?}"
    );
    assert!(text.trim_start().starts_with(root), "{text}");
    assert!(
        !text.contains("10.1.2.3"),
        "the backend's address leaked: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_completes_keep_the_connection_alive_then_answer() {
    let (gw, server) = start_with_dialect(Vendor::Minio, "complete_keepalive_ms = 500\n").await;
    let complete = Operation::CompleteMultipartUpload;
    let started = std::time::Instant::now();
    let r = request(&gw, &server, complete, "slow-complete|2500").await;
    assert!(started.elapsed() >= Duration::from_millis(2500));
    kept_alive(&r, "<CompleteMultipartUploadResult");
    // Failing after the 200 was committed: the Error document is the body.
    let r = request(&gw, &server, complete, "slow-complete|1500|EntityTooSmall").await;
    kept_alive(&r, "<Error>");
    assert_eq!(r.code(), "EntityTooSmall");
    // Before the delay HCP's statuses apply as usual.
    let r = request(&gw, &server, complete, "error|NoSuchUpload").await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchUpload"));
    // A copy reads and writes its whole source: kept alive the same way, sent once.
    let copy = Operation::CopyObject;
    let puts = || server.seen().iter().filter(|(m, ..)| m == "PUT").count();
    let before = puts();
    let r = request(&gw, &server, copy, "slow-copy|2500").await;
    kept_alive(&r, "<CopyObjectResult");
    let r = request(&gw, &server, copy, "slow-copy|1500|InternalError").await;
    kept_alive(&r, "<Error>");
    assert_eq!(r.code(), "InternalError");
    assert_eq!(
        puts() - before,
        2,
        "each copy sent once: {:?}",
        server.seen()
    );
    let r = request(&gw, &server, copy, "slow-copy|10").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("<?xml"), "{:?}", r.text());
}

/// A browser's complete that outlasts `complete_keepalive_ms` gets the bucket's CORS headers on
/// its early 200 (they cannot wait for the result: the head is out first), as a quick one
/// does — else the browser reads a CORS error for an object that was made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_complete_s_early_answer_carries_the_bucket_s_cors_headers() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "complete_keepalive_ms = 300\n").await;
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    let body = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part></CompleteMultipartUpload>";
    let target = format!("/bkt/some/key?uploadId={}", bound_upload_id("bkt", "u1"));
    let (len, digest) = (body.len().to_string(), sigv4::sha256_hex(body));
    for (slow, ms) in [(true, 1500), (false, 10)] {
        server.respond_to("POST", &format!("slow-complete|{ms}"));
        server.respond_also("GET", "cors|GET,POST");
        let extra = [
            ("content-length", len.as_str()),
            ("origin", "https://app.example"),
        ];
        let headers = V4::now(&ak, &sk, &addr, &digest).sign("POST", target.as_bytes(), &extra);
        let r = send(
            &addr,
            "POST",
            target.as_bytes(),
            &headers,
            vec![body.to_vec()],
        )
        .await;
        if slow {
            kept_alive(&r, "<CompleteMultipartUploadResult");
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "slow: {slow}"
        );
        server.clear();
    }
}

/// A gateway on a MinIO-dialect server with folders kept, and a connection whose complete of
/// `some/key` the server answers after `ms`: returned once its committed 200's header is read.
async fn a_slow_complete_committed(
    ms: u64,
) -> (
    TestGateway,
    common::dialect_server::DialectServer,
    tokio::net::TcpStream,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (gw, server) = start_with_dialect_tenant(
        Vendor::Minio,
        "complete_keepalive_ms = 300\n",
        "folders = true",
    )
    .await;
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let body = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part></CompleteMultipartUpload>";
    let target = format!("/bkt/some/key?uploadId={}", bound_upload_id("bkt", "u1"));
    let len = body.len().to_string();
    let digest = sigv4::sha256_hex(body);
    server.respond_to("POST", &format!("slow-complete|{ms}"));
    // (No object named as a folder on the way, none by the key: nothing in the way.)
    server.respond_also("HEAD", "error|NoSuchKey");
    let headers = V4::now(&ak, &sk, &addr, &digest).sign(
        "POST",
        target.as_bytes(),
        &[("content-length", &len)],
    );
    let head = common::raw::request_head("POST", target.as_bytes(), &headers);
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(&[&head[..], body].concat()).await.unwrap();
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0u8; 1024];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the header: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    (gw, server, conn)
}

/// Whether the server was asked to make the folder `some/` (and nothing by the key itself).
fn folder_made(seen: &[common::dialect_server::SeenRequest]) -> bool {
    seen.iter()
        .any(|(m, t, _)| m == "PUT" && t.starts_with("/bkt/some/"))
        && !seen
            .iter()
            .any(|(m, t, _)| m == "PUT" && t.starts_with("/bkt/some/key"))
}

/// A client gone during a long complete (its own read timeout, a closed connection) does not
/// leave the object the backend goes on to make without what the complete asked of it: the
/// backend's answer is still awaited and the object's folders are made (so would its retention,
/// holds, labels, ACL and owner be). Before, the gateway dropped the exchange at the first
/// keep-alive space it could not send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_complete_is_carried_out_when_its_client_is_gone() {
    // The committed 200's header, then the client goes.
    let (_gw, server, conn) = a_slow_complete_committed(2500).await;
    drop(conn);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !folder_made(&server.seen()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no folder made: {:?}",
            server.seen()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stop does not leave a complete the backend is still carrying out unfinished either: the
/// gateway waits past its grace period (2 s here) for the backend's answer and does what the
/// complete asked of the object (its folders here; its retention, holds, labels, ACL and owner
/// alike). Before, the process ended at the grace period and the object was kept without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_waits_for_a_complete_under_way() {
    let (mut gw, server, _conn) = a_slow_complete_committed(4500).await;
    assert!(!folder_made(&server.seen()), "{:?}", server.seen());
    gw.gw.take().unwrap().shutdown().await;
    assert!(
        folder_made(&server.seen()),
        "stopped before the folder: {:?}",
        server.seen()
    );
}

/// HCP answers CORS by the bucket's rules alone, as the gateway reads them (`GET ?cors`): a
/// browser's Origin reaches no backend — MinIO would answer every Origin by its global policy
/// (`*` by default), and any backend's own Access-Control-* headers stay behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_reaches_no_backend_and_the_bucket_s_rules_decide() {
    for vendor in [Vendor::Aws, Vendor::Minio] {
        let (gw, server) = start_with_dialect(vendor, "").await;
        let addr = gw.addr();
        let (ak, sk) = keys(USER, PASSWORD);
        let origin = [("origin", "https://app.example")];
        // (The bucket's rules, where asked for: one letting any origin GET.)
        server.respond_to("GET", "cors");
        let headers = V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256).sign("GET", b"/bkt/k", &origin);
        let r = send(&addr, "GET", b"/bkt/k", &headers, vec![]).await;
        assert_eq!(r.status, 200, "{vendor:?}: {}", r.text());
        let rules = server
            .seen()
            .iter()
            .filter(|(_, t, _)| t.contains("cors"))
            .count();
        let seen = server.seen();
        let (_, target, sent) = seen.iter().rfind(|(_, t, _)| t == "/bkt/k").unwrap();
        assert_eq!(target, "/bkt/k", "{vendor:?}");
        assert!(
            !sent.iter().any(|(n, _)| n == "origin"),
            "{vendor:?}: {sent:?}"
        );
        assert_eq!(r.header("access-control-allow-methods"), None, "{vendor:?}");
        let allowed = r.header("access-control-allow-origin");
        match vendor {
            Vendor::Minio => assert_eq!((allowed, rules), (None, 0), "MinIO keeps no rules"),
            _ => assert_eq!((allowed, rules), (Some("*"), 1), "{vendor:?}"),
        }
        server.clear();
        if vendor == Vendor::Minio {
            // Nor are CORS rules set there, which would never act: 501, nothing sent.
            let before = server.count();
            let rules = b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>\
                <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
            let md5 = content_md5(rules);
            let len = rules.len().to_string();
            let extra = [
                ("content-md5", md5.as_str()),
                ("content-length", len.as_str()),
            ];
            let v4 = V4::now(&ak, &sk, &addr, sigv4::UNSIGNED_PAYLOAD);
            let headers = v4.sign("PUT", b"/bkt?cors", &extra);
            let r = send(&addr, "PUT", b"/bkt?cors", &headers, vec![rules.to_vec()]).await;
            r.assert_hcp_error(501, "NotImplemented");
            assert_eq!(server.count(), before, "a CORS configuration reached MinIO");
            // (Reading them is MinIO's to answer: it keeps none.)
            let headers =
                V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256).sign("GET", b"/bkt?cors", &[]);
            send(&addr, "GET", b"/bkt?cors", &headers, vec![]).await;
            assert_eq!(
                server.count(),
                before + 1,
                "a CORS read did not reach MinIO"
            );
        }
        gw.stop().await;
    }
}

/// A bucket's rules are read once and kept (5 s): another bucket's reading or refused
/// requests do not make the gateway read them again; a change of them through the gateway
/// does, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_rules_are_read_again_only_after_their_own_change() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    server.respond_to("GET", "cors");
    let preflight = vec![
        ("host".to_string(), addr.clone()),
        ("origin".to_string(), "https://app.example".to_string()),
        (
            "access-control-request-method".to_string(),
            "GET".to_string(),
        ),
    ];
    let reads = || {
        let seen = server.seen();
        let this = |t: &str| t.starts_with("/bkt?") || t.starts_with("/bkt/?");
        seen.iter()
            .filter(|(m, t, _)| m == "GET" && this(t) && t.contains("cors"))
            .count()
    };
    for _ in 0..2 {
        let r = send(&addr, "OPTIONS", b"/bkt/k", &preflight, vec![]).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(reads(), 1, "{:?}", server.seen());
    let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", "/other?cors", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", "/bkt?cors", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let before = reads();
    let r = send(&addr, "OPTIONS", b"/bkt/k", &preflight, vec![]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        reads(),
        before,
        "read again after another request: {:?}",
        server.seen()
    );
    let rules = b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>\
        <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    let md5 = content_md5(rules);
    let put = ("PUT", "/bkt?cors");
    let r = common::raw::send_signed_with(&addr, (&ak, &sk), put, &[("content-md5", &md5)], rules)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(&addr, "OPTIONS", b"/bkt/k", &preflight, vec![]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(reads(), before + 1, "not read again after a change");
}

/// Preflights that find a bucket's rules unread share one reading: a flood of them at a
/// bucket whose rules just expired (anonymous, each on a connection of its own) costs the
/// backend one `GET ?cors` and the gateway one document held, not one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_share_one_reading_of_the_rules() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let addr = gw.addr();
    server.respond_to("GET", "slow-cors|300");
    let preflight = vec![
        ("host".to_string(), addr.clone()),
        ("origin".to_string(), "https://app.example".to_string()),
        (
            "access-control-request-method".to_string(),
            "GET".to_string(),
        ),
    ];
    let asked: Vec<_> = (0..16)
        .map(|_| {
            let (addr, preflight) = (addr.clone(), preflight.clone());
            tokio::spawn(async move { send(&addr, "OPTIONS", b"/bkt/k", &preflight, vec![]).await })
        })
        .collect();
    for r in asked {
        let r = r.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    let reads = server
        .seen()
        .iter()
        .filter(|(m, t, _)| m == "GET" && t.contains("cors"))
        .count();
    assert_eq!(reads, 1, "the rules were read once for each preflight");
    gw.stop().await;
}

/// On MinIO, which keeps no bucket's rules, the tenant's `cors` are those of every bucket that
/// is there (a HEAD of it says), and of nothing else: not of a bucket that is not, nor of the
/// service ("CORS does not support tenant-level API calls").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_minio_the_tenant_s_cors_rules_are_those_of_its_buckets() {
    let rules = "cors = '''<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example\
                 </AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>'''";
    let (gw, server) = start_with_dialect_tenant(Vendor::Minio, "", rules).await;
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    let preflight = vec![
        ("host".to_string(), addr.clone()),
        ("origin".to_string(), "https://app.example".to_string()),
        (
            "access-control-request-method".to_string(),
            "GET".to_string(),
        ),
    ];
    let r = send(&addr, "OPTIONS", b"/bkt/k", &preflight, vec![]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    server.respond_to("HEAD", "error|NoSuchBucket|404");
    let r = send(&addr, "OPTIONS", b"/missing/k", &preflight, vec![]).await;
    r.assert_hcp_error(403, "AccessDenied");
    server.clear();
    let origin = [("origin", "https://app.example")];
    let headers = V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256).sign("GET", b"/", &origin);
    let r = send(&addr, "GET", b"/", &headers, vec![]).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "{}",
        r.text()
    );
    gw.stop().await;
}

/// OBS answers for a bucket that is not there with 400 InvalidBucket (seed 004: "The bucket to
/// be accessed does not exist") where other backends answer 404: the gateway's own checks take
/// it so. A PUT into it (HCP's no-overwrite rule asks first) and a complete of an upload in it
/// are HCP's 404 NoSuchBucket — before, 503 on every retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs_s_missing_bucket_is_no_bucket_to_the_gateway_s_checks() {
    let refuse = "overwrite = \"refuse-unversioned\"";
    let (gw, server) = start_with_dialect_tenant(Vendor::Obs, "", refuse).await;
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    server.respond_to("*", "error|InvalidBucket|400");
    let extra = [("content-length", "1")];
    let headers = V4::now(&ak, &sk, &addr, &sigv4::sha256_hex(b"x")).sign("PUT", b"/bkt/k", &extra);
    let r = send(&addr, "PUT", b"/bkt/k", &headers, vec![b"x".to_vec()]).await;
    r.assert_hcp_error(404, "NoSuchBucket");
    assert!(
        r.text().contains("<BucketName>bkt</BucketName>"),
        "{}",
        r.text()
    );
    let complete = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag>\
        </Part><Part><PartNumber>2</PartNumber><ETag>\"b\"</ETag></Part></CompleteMultipartUpload>";
    let target = format!("/bkt/k?uploadId={}", bound_upload_id("bkt", "u1"));
    let len = complete.len().to_string();
    let extra = [("content-length", len.as_str())];
    let digest = sigv4::sha256_hex(complete);
    let headers = V4::now(&ak, &sk, &addr, &digest).sign("POST", target.as_bytes(), &extra);
    let r = send(
        &addr,
        "POST",
        target.as_bytes(),
        &headers,
        vec![complete.to_vec()],
    )
    .await;
    r.assert_hcp_error(404, "NoSuchBucket");
    gw.stop().await;
}

/// A form to a bucket name the backend reserves (MinIO's `minio`) is refused before anyone is
/// known — by routing, before its form is read — and its connection closes after the answer,
/// as every such refusal's (it held a place of `max_connections` a keep-alive period).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_to_a_reserved_bucket_name_closes_its_connection() {
    use tokio::io::AsyncReadExt;
    let (gw, _server) = start_with_dialect(Vendor::Minio, "").await;
    let addr = gw.addr();
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!("POST /minio HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut c, head.as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(read.is_ok(), "the connection stayed open: {text}");
    assert!(text.starts_with("http/1.1 400"), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    gw.stop().await;
}

/// HCP serves no preflight for the namespace names it reserves (rest, webdav, fcfs_data,
/// browser, hs3, swift), path-style or virtual: the one refused preflight's 403, and no rule
/// read — `/hs3/…` is HCP's own scheme's prefix, which a preflight cannot tell from a bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_preflight_is_served_for_hcp_s_reserved_names() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let addr = gw.addr();
    server.respond_to("GET", "cors");
    let preflight = |host: String| {
        vec![
            ("host".to_string(), host),
            ("origin".to_string(), "https://app.example".to_string()),
            (
                "access-control-request-method".to_string(),
                "GET".to_string(),
            ),
        ]
    };
    // (The rules let any origin GET: a bucket of another name is served.)
    let r = send(
        &addr,
        "OPTIONS",
        b"/bkt/k",
        &preflight(addr.clone()),
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let reads = || {
        server
            .seen()
            .iter()
            .filter(|(_, t, _)| t.contains("cors"))
            .count()
    };
    assert_eq!(reads(), 1);
    for name in ["rest", "webdav", "browser", "hs3", "swift", "WebDAV"] {
        let path = format!("/{name}/k");
        let r = send(
            &addr,
            "OPTIONS",
            path.as_bytes(),
            &preflight(addr.clone()),
            vec![],
        )
        .await;
        r.assert_hcp_error(403, "AccessDenied");
        assert!(
            r.text().contains("CORS is not enabled"),
            "{name}: {}",
            r.text()
        );
        let host = format!("{}.t.hcp.test", name.to_lowercase());
        let r = send(&addr, "OPTIONS", b"/k", &preflight(host), vec![]).await;
        r.assert_hcp_error(403, "AccessDenied");
        assert_eq!(r.header("access-control-allow-origin"), None, "{name}");
    }
    assert_eq!(reads(), 1, "{:?}", server.seen());
    gw.stop().await;
}

/// Rules the backend cannot give (`GET ?cors` 500): a preflight is the one 403, an actual
/// request is answered without CORS headers (never the backend's own), and the failed reading
/// is kept as briefly as rules are, so that each browser request does not ask again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_rules_that_cannot_be_read_allow_nothing_and_are_not_asked_for_each_request() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    server.respond_to("*", "cors-unreadable");
    let origin = "https://app.example";
    let preflight = vec![
        ("host".to_string(), addr.clone()),
        ("origin".to_string(), origin.to_string()),
        (
            "access-control-request-method".to_string(),
            "GET".to_string(),
        ),
    ];
    let reads = || {
        let seen = server.seen();
        seen.iter()
            .filter(|(m, t, _)| m == "GET" && t.starts_with("/bkt") && t.contains("cors"))
            .count()
    };
    for _ in 0..2 {
        let r = send(&addr, "OPTIONS", b"/bkt/k", &preflight, vec![]).await;
        r.assert_hcp_error(403, "AccessDenied");
        assert!(
            r.header("access-control-allow-origin").is_none(),
            "{:?}",
            r.headers
        );
    }
    let get = ("GET", "/bkt/k");
    let r = common::raw::send_signed_with(&addr, (&ak, &sk), get, &[("origin", origin)], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"data");
    let cors: Vec<_> = r
        .headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "CORS headers without rules: {cors:?}");
    assert_eq!(
        reads(),
        1,
        "the failed reading asked again: {:?}",
        server.seen()
    );
}

/// MinIO names its listing cache in a truncated listing's next marker (`b[minio_cache:v2,…]`):
/// the client sees the key alone, as from any S3 server (MinIO lists on from it all the same),
/// and a version listing cut off inside a key keeps that key's versions in the backend's order
/// (the next page goes on with them) — before, the marker named no key the page had, and the
/// key's versions were turned round on each page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minio_s_listing_cache_stays_behind() {
    let (gw, server) = start_with_dialect(Vendor::Minio, "").await;
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    server.respond_to("GET", "minio-pages");
    // (As boto3 and the aws cli list: URL-encoded, the marker too.)
    for listing in [
        "/bkt?versions&max-keys=3",
        "/bkt?versions&max-keys=3&encoding-type=url",
    ] {
        let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", listing, b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        assert!(!text.to_ascii_lowercase().contains("minio_cache"), "{text}");
        assert!(text.contains("<NextKeyMarker>k</NextKeyMarker>"), "{text}");
        let ids: Vec<&str> = text
            .split("<VersionId>")
            .skip(1)
            .filter_map(|v| v.split('<').next())
            .collect();
        assert_eq!(ids, ["v5", "v4", "v3"], "{text}");
    }
    // A ListObjectsV2 token is the marker in base64: the key's alone.
    let v2 = "/bkt?list-type=2&max-keys=2";
    let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", v2, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let token = text
        .split("<NextContinuationToken>")
        .nth(1)
        .unwrap_or_default();
    let token = token.split('<').next().unwrap_or_default();
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD.decode(token);
    assert_eq!(decoded.as_deref().ok(), Some(&b"b"[..]), "{text}");
    // (HCP names a V1 listing's NextMarker only where a delimiter was asked.)
    let v1 = "/bkt?max-keys=2&delimiter=%2F";
    let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", v1, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(!text.contains("minio_cache"), "{text}");
    assert!(text.contains("<NextMarker>b</NextMarker>"), "{text}");
    let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", "/bkt?max-keys=2", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("NextMarker"), "{}", r.text());
}

/// A refused preflight (anonymous, as every preflight) closes its connection, as every
/// anonymous refusal does: one connection cannot walk through bucket names, each a `GET ?cors`
/// of the backend, at the cost of one request each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_preflight_closes_its_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let addr = gw.addr();
    server.respond_to("GET", "error|NoSuchCORSConfiguration|404");
    let preflight = |bucket: &str| {
        format!(
            "OPTIONS /{bucket}/k HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://a.example\r\n\
             Access-Control-Request-Method: GET\r\n\r\n"
        )
    };
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(preflight("nx-1").as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = conn.read_to_end(&mut answer);
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .expect("the connection closes")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 403"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    let _ = conn.write_all(preflight("nx-2").as_bytes()).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let asked: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|(_, t, _)| t.contains("cors"))
        .collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
}

/// HCP validates CORS for all but "requests that fail authentication": a browser's request
/// the gateway refuses once its user is authenticated (a forged upload id, a storage class that
/// needs a restore) carries the bucket's CORS headers, so that the browser can read the refusal;
/// a request whose credentials fail carries none, and costs the backend nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_to_authenticated_browsers_carry_cors_headers() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    server.respond_to("GET", "cors|GET,PUT,DELETE");
    let origin = ("origin", "https://app.example");
    let forged = format!("/bkt/k?uploadId={}", "A".repeat(40));
    let glacier = [
        origin,
        ("x-amz-storage-class", "GLACIER"),
        ("content-length", "0"),
    ];
    for (method, target, extra, status, code) in [
        (
            "DELETE",
            forged.as_str(),
            &[origin][..],
            404,
            "NoSuchUpload",
        ),
        ("PUT", "/bkt/k", &glacier[..], 400, "InvalidArgument"),
    ] {
        let v4 = V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256);
        let headers = v4.sign(method, target.as_bytes(), extra);
        let r = send(&addr, method, target.as_bytes(), &headers, vec![]).await;
        r.assert_hcp_error(status, code);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "{method}"
        );
    }
    let before = server.count();
    let wrong = V4::now(&ak, "not-the-secret", &addr, sigv4::EMPTY_SHA256);
    let headers = wrong.sign("GET", b"/bkt/k", &[origin]);
    let r = send(&addr, "GET", b"/bkt/k", &headers, vec![]).await;
    r.assert_hcp_error(403, "SignatureDoesNotMatch");
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(
        server.count(),
        before,
        "a failed signature cost the backend a request"
    );
}

/// Object headers of features HCP does not offer stay behind, AWS's and OBS's names alike: a
/// lifecycle rule's expiration (which names the operator's rule), a restore, a tag count, a
/// website redirect; those of S3's that the gateway offers pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_of_features_hcp_does_not_offer_stay_behind() {
    for (vendor, prefix) in [(Vendor::Aws, "x-amz-"), (Vendor::Obs, "x-obs-")] {
        let (gw, server) = start_with_dialect(vendor, "").await;
        let behind = [
            "expiration:expiry-date=\"Fri, 23 Dec 2026 00:00:00 GMT\", rule-id=\"ops-rule\"",
            "restore:ongoing-request=\"false\"",
            "tagging-count:2",
            "website-redirect-location:/elsewhere",
            // (A version id passes only while the bucket's versioning is enabled: this
            // server's buckets have none.)
            "version-id:v1",
        ];
        let passing = ["storage-class:STANDARD_IA", "meta-color:red"];
        let directive = behind
            .iter()
            .chain(&passing)
            .fold("object-with".to_string(), |d, h| format!("{d}|{prefix}{h}"));
        for op in [Operation::GetObject, Operation::HeadObject] {
            let r = request(&gw, &server, op, &directive).await;
            assert_eq!(r.status, 200, "{vendor:?} {op:?}: {}", r.text());
            for h in behind {
                let name = format!("x-amz-{}", h.split_once(':').unwrap().0);
                assert!(
                    r.header(&name).is_none(),
                    "{vendor:?} {op:?}: {name} passed"
                );
            }
            for h in passing {
                let (name, value) = h.split_once(':').unwrap();
                let name = format!("x-amz-{name}");
                assert_eq!(r.header(&name), Some(value), "{vendor:?} {op:?}: {name}");
            }
        }
        gw.stop().await;
    }
}

/// `complete_timeout_seconds` bounds a complete's whole answer, not each read: a backend that
/// keeps sending whitespace past it is given up on — the committed 200's body HCP's 503
/// ServiceUnavailable document — rather than waited for without end (and a stop with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_past_its_timeout_is_given_up_however_the_backend_trickles() {
    let settings = "complete_keepalive_ms = 500\ncomplete_timeout_seconds = 2\n";
    let (gw, server) = start_with_dialect(Vendor::Aws, settings).await;
    let complete = Operation::CompleteMultipartUpload;
    let began = std::time::Instant::now();
    let r = request(&gw, &server, complete, "trickled-complete|8000").await;
    let took = began.elapsed();
    kept_alive(&r, "<Error>");
    assert_eq!(r.code(), "ServiceUnavailable", "{}", r.text());
    // (Given up at 2 s, well before the trickle's 8: the bound leaves a loaded machine room.)
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(7),
        "{took:?}"
    );
}

/// AWS answers a long complete 200 at once and sends whitespace while it works: the gateway's
/// own ticks go on while it reads that answer, so the client hears from it after
/// `complete_keepalive_ms` whatever the backend's header said; a short one is answered with
/// HCP's statuses as any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_completes_are_kept_alive_by_the_gateway_too() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "complete_keepalive_ms = 500\n").await;
    let complete = Operation::CompleteMultipartUpload;
    let r = request(&gw, &server, complete, "trickled-complete|2500").await;
    kept_alive(&r, "<CompleteMultipartUploadResult");
    r.assert_hcp_server();
    // The error AWS found after its 200: HCP's Error document as the committed 200's body.
    let r = request(
        &gw,
        &server,
        complete,
        "trickled-complete|2000|EntityTooSmall",
    )
    .await;
    kept_alive(&r, "<Error>");
    assert_eq!(r.code(), "EntityTooSmall");
    // Done before the gateway's delay: HCP's status, and the document without AWS's spaces.
    let r = request(&gw, &server, complete, "trickled-complete|100|SlowDown").await;
    r.assert_hcp_error(503, "ServiceUnavailable");
    let r = request(&gw, &server, complete, "trickled-complete|100").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().starts_with("<?xml") && r.text().contains("<CompleteMultipartUploadResult"),
        "{:?}",
        r.text()
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_printing_on_request() {
    let gw = start(Backend::Local).await.unwrap();
    let bucket = gw.with_bucket("pretty").await;
    // (Keys whose spaces sit beside an entity, or begin and end them: text of their own, which
    // indenting must not trim.)
    // (And keys that begin or end with one, as every ETag does: `&quot;…&quot;`.)
    for key in ["a&b", "q1 & q2 ", " spaced ", "&lead", "trail&"] {
        gw.client()
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"1"))
            .send()
            .await
            .unwrap();
    }
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let list = format!("/{bucket}?list-type=2");
    for (value, pretty) in [
        ("TRUE", true),
        ("true", true),
        ("false", false),
        ("yes", false),
    ] {
        let h = V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256).sign(
            "GET",
            list.as_bytes(),
            &[("x-hcp-pretty-print", value)],
        );
        let r = send(&addr, "GET", list.as_bytes(), &h, vec![]).await;
        assert_eq!(r.status, 200);
        let text = r.text();
        assert_eq!(text.contains("\n  <Name>"), pretty, "{value}: {text}");
        for key in [
            "<Key>a&amp;b</Key>",
            "<Key>q1 &amp; q2 </Key>",
            "<Key> spaced </Key>",
            "<Key>&amp;lead</Key>",
            "<Key>trail&amp;</Key>",
            // (An element without text stays one: not a line break and indentation.)
            "<Prefix></Prefix>",
        ] {
            assert!(text.contains(key), "{key} survives: {text}");
        }
        let etags = text
            .split("<ETag>")
            .skip(1)
            .map(|e| &e[..e.find("</ETag>").unwrap()]);
        for etag in etags {
            let unescaped = etag.replace("&quot;", "\"").replace("&#34;", "\"");
            assert!(
                unescaped.len() == 34 && unescaped.starts_with('"') && unescaped.ends_with('"'),
                "{etag:?}: {text}"
            );
        }
        let missing = format!("/{bucket}/nope");
        let h = V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256).sign(
            "GET",
            missing.as_bytes(),
            &[("x-hcp-pretty-print", value)],
        );
        let r = send(&addr, "GET", missing.as_bytes(), &h, vec![]).await;
        assert_eq!(
            r.text().contains("\n  <Code>NoSuchKey</Code>"),
            pretty,
            "{value}: {}",
            r.text()
        );
    }
}

fn rgw_env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) => Some(v),
        Err(_) if std::env::var("HCP_GW_SKIP_EXTERNAL").as_deref() == Ok("1") => None,
        Err(_) => panic!("{name} is not set: run the tests through scripts/test.sh"),
    }
}

/// A gateway in front of RGW, speaking the Ceph dialect, with the given RGW user's keys.
async fn rgw_gateway(ak: &str, sk: &str) -> Option<TestGateway> {
    let endpoint = rgw_env("RGW_ENDPOINT")?;
    let text = format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"s3\"\ndialect = \"ceph\"\nendpoint = {endpoint:?}\naccess_key = {ak:?}\nsecret_key = {sk:?}\n",
        base_config("")
    );
    Some(start_text(&text, tempfile::tempdir().unwrap(), Backend::Rgw).await)
}

/// The rows of ceph.csv, on a real RGW.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceph_rows_on_rgw() {
    let Some(quota_ak) = rgw_env("RGW_QUOTA_ACCESS_KEY") else {
        return;
    };
    let quota = rgw_gateway(&quota_ak, &rgw_env("RGW_QUOTA_SECRET_KEY").unwrap())
        .await
        .unwrap();
    let s3 = quota.client();
    let bucket = new_bucket(&s3, "quota").await;
    // The user may store one object: by the second put at the latest the quota is exceeded.
    let mut refused = None;
    for k in ["one", "two", "three"] {
        if let Err(e) = s3
            .put_object()
            .bucket(&bucket)
            .key(k)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await
        {
            refused = Some(sdk_error(&e));
            break;
        }
    }
    assert_eq!(
        refused,
        Some((413, "OutOfSpace".to_string())),
        "QuotaExceeded"
    );
    quota.stop().await;

    let suspended = rgw_gateway(
        &rgw_env("RGW_SUSPENDED_ACCESS_KEY").unwrap(),
        &rgw_env("RGW_SUSPENDED_SECRET_KEY").unwrap(),
    )
    .await
    .unwrap();
    let e = suspended.client().list_buckets().send().await.unwrap_err();
    assert_eq!(
        sdk_error(&e),
        (500, "InternalError".into()),
        "UserSuspended is the gateway's own account"
    );
    suspended.stop().await;

    let main = rgw_gateway(
        &rgw_env("RGW_ACCESS_KEY").unwrap(),
        &rgw_env("RGW_SECRET_KEY").unwrap(),
    )
    .await
    .unwrap();
    let s3 = main.client();
    let bucket = new_bucket(&s3, "gone").await;
    let up = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    s3.abort_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    assert_upload_gone(&s3, &bucket, "k", id).await;
    // A completed upload is gone too, but its complete sent again (its answer lost) is
    // answered as the first was while the key holds what it made (README's difference); once
    // the key holds something else, NoSuchUpload (RGW answers 200 whatever the key holds).
    let (id, parts) = upload_parts(&s3, &bucket, "done", &[1]).await;
    let parts = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    let complete = || {
        s3.complete_multipart_upload()
            .bucket(&bucket)
            .key("done")
            .upload_id(&id)
            .multipart_upload(parts.clone())
            .send()
    };
    complete().await.unwrap();
    // (RGW's answer to it names an empty ETag.)
    complete().await.unwrap();
    let other = aws_sdk_s3::primitives::ByteStream::from_static(b"other");
    let put = s3.put_object().bucket(&bucket).key("done").body(other);
    put.send().await.unwrap();
    let e = complete().await.unwrap_err();
    assert_eq!(sdk_error(&e), (404, "NoSuchUpload".into()));
}

/// Where names are kept (HCP's no-overwrite rule), a complete of an upload that is gone is
/// NoSuchUpload — completed (a retry) or aborted — never the name's 409 because the key holds
/// an object (the one the complete made, or another).
async fn gone_uploads_are_no_such_upload_where_names_are_kept(backend: Backend) {
    let settings = "overwrite = \"refuse-unversioned\"";
    let Some(gw) = start_with_tenant(backend, settings, "").await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "keptnames").await;
    let complete = |key: &'static str, id: String, parts: Vec<aws_sdk_s3::types::CompletedPart>| {
        let list = aws_sdk_s3::types::CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            s3.complete_multipart_upload()
                .bucket(&bucket)
                .key(key)
                .upload_id(id)
                .multipart_upload(list)
                .send()
                .await
        }
    };
    let (id, parts) = upload_parts(&s3, &bucket, "done", &[1]).await;
    complete("done", id.clone(), parts.clone()).await.unwrap();
    let e = complete("done", id, parts).await.unwrap_err();
    assert_eq!(sdk_error(&e), (404, "NoSuchUpload".into()), "completed");
    // An upload aborted, its name held by an object: that object stays.
    let put = s3.put_object().bucket(&bucket).key("held");
    let first = aws_sdk_s3::primitives::ByteStream::from_static(b"first");
    put.body(first).send().await.unwrap();
    let (id, parts) = upload_parts(&s3, &bucket, "held", &[1]).await;
    let abort = s3.abort_multipart_upload().bucket(&bucket).key("held");
    abort.upload_id(&id).send().await.unwrap();
    let e = complete("held", id, parts).await.unwrap_err();
    assert_eq!(sdk_error(&e), (404, "NoSuchUpload".into()), "aborted");
    assert_eq!(object_bytes(&s3, &bucket, "held").await, b"first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_uploads_are_no_such_upload_where_names_are_kept_on_the_store() {
    gone_uploads_are_no_such_upload_where_names_are_kept(Backend::Store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_uploads_are_no_such_upload_where_names_are_kept_on_rgw() {
    gone_uploads_are_no_such_upload_where_names_are_kept(Backend::Rgw).await;
}

/// HCP's 200-with-error answers and the conditional and range answers, on real backends.
async fn hcp_statuses_on(backend: Backend) {
    let Some(gw) = start(backend).await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "codes").await;
    // Re-creating a bucket one owns: HCP answers 200.
    let again = s3.create_bucket().bucket(&bucket).send().await;
    match &again {
        Ok(_) => {}
        Err(e) => assert_eq!(sdk_error(e).0, 200, "{e:?}"),
    }
    let body = aws_sdk_s3::primitives::ByteStream::from_static(b"0123456789");
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key("obj")
        .body(body)
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_string();
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("obj")
        .if_match("\"0000\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (412, "PreconditionFailed".into()));
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("obj")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e).0, 304, "If-None-Match on the current ETag");
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("obj")
        .range("bytes=100-200")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (416, "InvalidRange".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hcp_statuses_on_rgw() {
    hcp_statuses_on(Backend::Rgw).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hcp_statuses_on_the_local_backend() {
    hcp_statuses_on(Backend::Local).await
}

/// CompleteMultipartUpload failures are 200 with an Error body, the upload stays open, and the
/// SDK sees a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_failures_are_200_with_an_error_body_on_rgw() {
    let Some(gw) = start(Backend::Rgw).await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "complete").await;
    // Part 1 is large enough for any backend; parts 2 and 3 are 1 KiB.
    let (id, uploaded) = upload_parts(&s3, &bucket, "k", &[5 * 1024 * 1024, 1024, 1024]).await;
    let etags: Vec<String> = uploaded
        .iter()
        .map(|p| p.e_tag().unwrap().to_string())
        .collect();
    let part = |n: i32, etag: &str| {
        aws_sdk_s3::types::CompletedPart::builder()
            .part_number(n)
            .e_tag(etag)
            .build()
    };
    let cases = [
        (
            "InvalidPart",
            vec![
                part(1, &etags[0]),
                part(2, "\"00000000000000000000000000000000\""),
            ],
        ),
        (
            "EntityTooSmall",
            vec![part(1, &etags[0]), part(2, &etags[1]), part(3, &etags[2])],
        ),
    ];
    for (code, parts) in cases {
        let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let e = s3
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(&id)
            .multipart_upload(done)
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_error(&e), (200, code.to_string()), "{e:?}");
        let listed = s3
            .list_parts()
            .bucket(&bucket)
            .key("k")
            .upload_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            listed.parts().len(),
            3,
            "the upload stays open after {code}"
        );
    }
}

/// The rows of local.csv, on the embedded backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_rows_on_the_embedded_backend() {
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let missing = unique_bucket("missing");
    let e = s3.list_objects().bucket(&missing).send().await.unwrap_err();
    assert_eq!(sdk_error(&e), (404, "NoSuchBucket".into()));
    let e = s3
        .list_objects_v2()
        .bucket(&missing)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (404, "NoSuchBucket".into()));
    let bucket = new_bucket(&s3, "local").await;
    s3.put_object()
        .bucket(&bucket)
        .key("src")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let no_upload = |e: (u16, String)| assert_eq!(e, (404, "NoSuchUpload".to_string()));
    let id = "not-a-uuid";
    assert_upload_gone(&s3, &bucket, "k", id).await;
    no_upload(sdk_error(
        &s3.upload_part_copy()
            .bucket(&bucket)
            .key("k")
            .upload_id(id)
            .part_number(1)
            .copy_source(format!("{bucket}/src"))
            .send()
            .await
            .unwrap_err(),
    ));
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(1)
                .e_tag("\"x\"")
                .build(),
        )
        .build();
    no_upload(sdk_error(
        &s3.complete_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(id)
            .multipart_upload(done)
            .send()
            .await
            .unwrap_err(),
    ));

    // Parts listed out of order: 200 InvalidPartOrder.
    let (id, mut parts) = upload_parts(&s3, &bucket, "order", &[1, 1]).await;
    let id = id.as_str();
    parts.reverse();
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    let e = s3
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("order")
        .upload_id(id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (200, "InvalidPartOrder".into()));
}

/// boto3 reads HCP's codes, sees 200-with-error completes as failures, gets the security
/// headers on every answer, and parses pretty-printed listings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_reads_hcp_answers() {
    let gw = start(Backend::Local).await.unwrap();
    let bucket = gw.with_bucket("boto3norm").await;
    let (ak, sk) = keys(USER, PASSWORD);
    run_python_client(
        "boto3_normalization.py",
        vec![gw.endpoint.clone(), ak, sk, bucket],
        4,
    )
    .await;
}

/// aws-sdk-s3 reads every HCP code the tables can produce as that code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_parses_every_mapped_hcp_code() {
    let (gw, server) = start_with_dialect(Vendor::Minio, "").await;
    let s3 = gw.client();
    let mut seen = std::collections::HashSet::new();
    for table in [Dialect::Aws, Dialect::Minio] {
        for row in mapping::rows(table) {
            // An AWS row whose code MinIO maps itself would be shadowed by the MinIO table.
            let shadowed = table == Dialect::Aws
                && mapping::rows(Dialect::Minio)
                    .iter()
                    .any(|r| r.backend_code == row.backend_code);
            if shadowed || !seen.insert(row.hcp_code) {
                continue;
            }
            let directive = format!(
                "error|{}|{}",
                row.backend_code,
                row.backend_status
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            let e = match row.operation {
                _ if row.hcp_status == 200 => {
                    server.respond_to("POST", &directive);
                    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
                        .parts(
                            aws_sdk_s3::types::CompletedPart::builder()
                                .part_number(1)
                                .e_tag("\"e\"")
                                .build(),
                        )
                        .build();
                    let r = s3
                        .complete_multipart_upload()
                        .bucket("bkt")
                        .key("k")
                        .upload_id(bound_upload_id("bkt", "u"))
                        .multipart_upload(done)
                        .send()
                        .await;
                    sdk_error(&r.unwrap_err())
                }
                Some(Operation::CreateBucket) => sdk_error(&{
                    server.respond_to("PUT", &directive);
                    s3.create_bucket()
                        .bucket("new-bucket")
                        .send()
                        .await
                        .unwrap_err()
                }),
                _ if read_otherwise(table, row) => sdk_error(&{
                    server.respond_to("GET", &directive);
                    s3.list_objects_v2().bucket("bkt").send().await.unwrap_err()
                }),
                _ => sdk_error(&{
                    server.respond_to("GET", &directive);
                    s3.get_object()
                        .bucket("bkt")
                        .key("k")
                        .send()
                        .await
                        .unwrap_err()
                }),
            };
            assert_eq!(
                e,
                (row.hcp_status, row.hcp_code.as_str().to_string()),
                "{}.csv line {}",
                table.name(),
                row.line
            );
        }
    }
    assert!(seen.len() >= 30, "{} codes", seen.len());
}

/// A backend's 405 to a HEAD of a version is a delete marker's only where the backend says so
/// (`x-amz-delete-marker: true`): any other 405 stays HCP's MethodNotAllowed, never an item
/// that exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_405_is_a_delete_marker_only_where_the_backend_says_so() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let (ak, sk) = keys(USER, PASSWORD);
    server.respond_to("*", "versioned-405");
    let r =
        common::raw::send_signed(&gw.addr(), (&ak, &sk), "HEAD", "/bkt/k?versionId=v1", b"").await;
    assert_eq!(r.status, 405, "{:?}", r.headers);
    assert_eq!(r.header("x-amz-delete-marker"), None);
    let seen = server.seen();
    assert!(
        seen.iter()
            .any(|(m, t, _)| m == "HEAD" && t.contains("versionId=v1")),
        "{seen:?}"
    );
    gw.stop().await;
}

/// A part copy's source HEAD is kept a few seconds for the series of part copies it is one of —
/// but never one sent with a client's customer key for the source (SSE-C): its size and ETag
/// are for a client that holds the key. Each keyed part copy HEADs the source itself, and a
/// part copy without the key after it is not answered from the keyed HEAD. (A refusal found on
/// a kept HEAD is judged again on the source as it is now: the source may have changed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_head_with_a_customer_key_is_never_kept() {
    use base64::Engine as _;
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    // (Every HEAD answers an empty object: a copy range from byte 0 is past its end, 400,
    // judged on the source's HEAD.)
    server.respond_to("*", "object-with|ETag:\"e\"");
    let key = [7u8; 32];
    let key_md5 = content_md5(&key);
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(key);
    let keyed = [
        ("x-amz-copy-source", "/bkt/secret"),
        ("x-amz-copy-source-range", "bytes=0-0"),
        (
            "x-amz-copy-source-server-side-encryption-customer-algorithm",
            "AES256",
        ),
        (
            "x-amz-copy-source-server-side-encryption-customer-key",
            key_b64.as_str(),
        ),
        (
            "x-amz-copy-source-server-side-encryption-customer-key-md5",
            key_md5.as_str(),
        ),
    ];
    let target = format!(
        "/bkt/copy?partNumber=1&uploadId={}",
        bound_upload_id("bkt", "u1")
    );
    let source_heads = |from: usize| {
        server.seen()[from..]
            .iter()
            .filter(|(m, t, _)| m == "HEAD" && t.starts_with("/bkt/secret"))
            .count()
    };
    for (headers, kind) in [
        (&keyed[..], "keyed"),
        (&keyed[..], "keyed again"),
        (&keyed[..2], "without the key"),
    ] {
        let before = server.seen().len();
        let r = as_user(&gw, (USER, PASSWORD), "PUT", &target, headers, b"").await;
        r.assert_hcp_error(400, "InvalidArgument");
        assert_eq!(source_heads(before), 1, "{kind}: {:?}", server.seen());
    }
    // (And the unkeyed HEAD is the one kept: the next part copy without the key finds it — and,
    // refused on it, reads the source again.)
    let hits = || {
        gw.metrics()
            .cache_lookups
            .with_label_values(&["copy_source_head", "hit"])
            .get()
    };
    let (before, kept_before) = (server.seen().len(), hits());
    let r = as_user(&gw, (USER, PASSWORD), "PUT", &target, &keyed[..2], b"").await;
    r.assert_hcp_error(400, "InvalidArgument");
    assert_eq!(hits(), kept_before + 1);
    assert_eq!(source_heads(before), 1, "{:?}", server.seen());
    gw.stop().await;
}

/// What the backend does not say decides nothing: where the gateway asks before it acts and
/// the answer says nothing — a 5xx, a lock date that is no date, a 403 where a hold is asked
/// for — the request is HCP's 503 ServiceUnavailable and nothing that would act is sent
/// (recorded AWS and OBS servers): a write under HCP's no-overwrite rule, a conditional copy,
/// a write or delete of a locked object, a retention change, a complete whose parts' sizes
/// are to be judged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_say_nothing_decide_nothing() {
    use common::dialect_server::{DialectServer, Vendor};
    let admin = (USER, PASSWORD);
    let refused = async |gw: &TestGateway,
                         server: &DialectServer,
                         asked: (&str, &str, &[(&str, &str)], &[u8]),
                         (acting, why): (&str, &str)| {
        let (method, target, headers, body) = asked;
        let before = server.count() as usize;
        let r = as_user(gw, admin, method, target, headers, body).await;
        r.assert_hcp_error(503, "ServiceUnavailable");
        assert!(r.text().contains(why), "{method} {target}: {}", r.text());
        let sent = server.seen()[before..].iter().any(|(m, _, _)| m == acting);
        assert!(!sent, "{method} {target}: {acting} sent unjudged");
    };
    let failing = "error|InternalError|500";

    // HCP's no-overwrite rule: a HEAD that fails is no absent name.
    let rule_41 = "overwrite = \"refuse-unversioned\"";
    let (gw, server) = start_with_dialect_tenant(Vendor::Aws, "", rule_41).await;
    server.respond_to("HEAD", failing);
    refused(
        &gw,
        &server,
        ("PUT", "/bkt/k", &[], b"new"),
        ("PUT", "Whether the name is taken"),
    )
    .await;
    gw.stop().await;

    // A GET of a folder whose bucket's HEAD fails: neither the folder's 404 nor NoSuchBucket.
    let (gw, server) = start_with_dialect_tenant(Vendor::Aws, "", "folders = true").await;
    server.respond_to("HEAD", failing);
    refused(
        &gw,
        &server,
        ("GET", "/bkt/folder/", &[], b""),
        ("GET", "Whether the bucket exists"),
    )
    .await;
    gw.stop().await;

    // A copy's conditions: a source that cannot be read judges none.
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    server.respond_to("HEAD", failing);
    let conditional = [
        ("x-amz-copy-source", "/bkt/src"),
        ("x-amz-copy-source-if-match", "\"e\""),
    ];
    refused(
        &gw,
        &server,
        ("PUT", "/bkt/dst", &conditional, b""),
        ("PUT", "The copy source could not be read"),
    )
    .await;
    // A metadata change (a copy onto itself with REPLACE): an object that cannot be read —
    // no answer, or its HEAD refused — keeps no owner and no content headers.
    let edit = [
        ("x-amz-copy-source", "/bkt/k"),
        ("x-amz-metadata-directive", "REPLACE"),
        ("x-amz-meta-colour", "blue"),
    ];
    let why = "could not be read to keep its owner and content headers";
    for head in [failing, "error|AccessDenied|403"] {
        server.respond_to("HEAD", head);
        let asked = ("PUT", "/bkt/k", &edit[..], &b""[..]);
        refused(&gw, &server, asked, ("PUT", why)).await;
    }
    // Nor one whose HEAD names no ETag to pin the copy to, nor one whose ACL, which the edit
    // keeps, cannot be read (this server answers `?acl` with object data).
    let asked = ("PUT", "/bkt/k", &edit[..], &b""[..]);
    server.respond_to("HEAD", "object-with|Content-Type:text/plain");
    refused(&gw, &server, asked, ("PUT", "temporarily unable")).await;
    server.respond_to("*", "object-with|ETag:\"e1\"");
    refused(&gw, &server, asked, ("PUT", "The ACL could not be read")).await;
    // The edit is pinned to the object read, whatever the client pinned it to (its own
    // conditions judged first); to no object where there was none.
    let pinned = |server: &DialectServer| {
        let seen = server.seen();
        let (_, _, headers) = seen
            .iter()
            .rev()
            .find(|(m, _, _)| m == "PUT")
            .expect("a PUT");
        let pin = headers
            .iter()
            .find(|(n, _)| n == "x-amz-copy-source-if-match");
        pin.map(|(_, v)| v.clone())
    };
    server.respond_to("HEAD", "object-with|ETag:\"e1\"");
    let own_pin = [
        &edit[..],
        &[("x-amz-copy-source-if-match", "\"zz\", \"e1\"")],
    ]
    .concat();
    let _ = as_user(&gw, admin, "PUT", "/bkt/k", &own_pin, b"").await;
    assert_eq!(pinned(&server).as_deref(), Some("\"e1\""));
    // A pin that names another object is 412, and nothing is copied.
    let before = server.count() as usize;
    let other_pin = [&edit[..], &[("x-amz-copy-source-if-match", "\"zz\"")]].concat();
    let r = as_user(&gw, admin, "PUT", "/bkt/k", &other_pin, b"").await;
    r.assert_hcp_error(412, "PreconditionFailed");
    assert!(!server.seen()[before..].iter().any(|(m, _, _)| m == "PUT"));
    server.respond_to("HEAD", "error|NoSuchKey|404");
    let _ = as_user(&gw, admin, "PUT", "/bkt/k", &edit, b"").await;
    assert_eq!(
        pinned(&server).as_deref(),
        Some("\"hcp-gateway-no-source\"")
    );
    gw.stop().await;

    // Retention: a lock date that is no date is no lock; a hold's HEAD answering 403 says
    // nothing of the hold.
    let enterprise = "retention = \"enterprise\"";
    let (gw, server) = start_with_dialect_tenant(Vendor::Aws, "", enterprise).await;
    server.respond_to(
        "HEAD",
        "object-with|x-amz-object-lock-retain-until-date:the year 2100",
    );
    refused(
        &gw,
        &server,
        ("PUT", "/bkt/k", &[], b"new"),
        ("PUT", "retention could not be read"),
    )
    .await;
    refused(
        &gw,
        &server,
        ("DELETE", "/bkt/k", &[], b""),
        ("DELETE", "retention could not be read"),
    )
    .await;
    server.respond_to("HEAD", "error|AccessDenied|403");
    let doc = b"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2099-01-01T00:00:00Z</RetainUntilDate></Retention>";
    let md5 = content_md5(doc);
    let change = (
        "PUT",
        "/bkt/k?retention",
        &[("content-md5", md5.as_str())][..],
        &doc[..],
    );
    refused(&gw, &server, change, ("PUT", "retention could not be read")).await;
    gw.stop().await;

    // A complete on OBS (whose minimum part size is below HCP's): parts that cannot be listed
    // are not taken for big enough.
    let (gw, server) = start_with_dialect(Vendor::Obs, "").await;
    server.respond_to("GET", failing);
    let complete =
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part>\
        <Part><PartNumber>2</PartNumber><ETag>\"e\"</ETag></Part></CompleteMultipartUpload>";
    let target = format!("/bkt/k?uploadId={}", bound_upload_id("bkt", "u1"));
    refused(
        &gw,
        &server,
        ("POST", &target, &[], complete),
        ("POST", "parts could not be listed"),
    )
    .await;
    gw.stop().await;
}

/// A version id of a form AWS and MinIO never give is their 400 `InvalidArgument`; HCP names
/// no such version: a DELETE is its 204 (manual, DELETE object: "specified an invalid version
/// ID"), a read its 404 `NoSuchKey` (GET, HEAD where the backend says why, an ACL's). A 400
/// that is not about the version id stays HCP's `InvalidArgument`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_id_the_backend_never_gave_names_no_version() {
    for vendor in [Vendor::Aws, Vendor::Minio] {
        let (gw, server) = start_with_dialect(vendor, "").await;
        let (ak, sk) = keys(USER, PASSWORD);
        let addr = gw.addr();
        let ask = |method: &'static str, target: &'static str| {
            common::raw::send_signed(&addr, (&ak, &sk), method, target, b"")
        };
        server.respond_to("DELETE", "invalid-version");
        let r = ask("DELETE", "/bkt/k?versionId=123456789").await;
        assert_eq!((r.status, r.text().as_str()), (204, ""), "{vendor:?}");
        assert_eq!(r.header("x-amz-version-id"), None, "{vendor:?}");
        let seen = server.seen();
        assert!(
            seen.iter()
                .any(|(m, t, _)| m == "DELETE" && t.contains("versionId=123456789")),
            "{vendor:?}: {seen:?}"
        );
        server.respond_to("GET", "invalid-version");
        for target in [
            "/bkt/k?versionId=123456789",
            "/bkt/k?acl&versionId=123456789",
        ] {
            let r = ask("GET", target).await;
            r.assert_hcp_error(404, "NoSuchKey");
            assert!(
                r.text().contains("<Key>k</Key>"),
                "{vendor:?}: {}",
                r.text()
            );
        }
        // (AWS's HEAD says nothing of why — a bodiless 400 —, but the version's ACL says the
        // version id: 404 as well.)
        server.respond_to("*", "invalid-version");
        let r = ask("HEAD", "/bkt/k?versionId=123456789").await;
        let seen: Vec<_> = server.seen().into_iter().map(|(m, t, _)| (m, t)).collect();
        assert_eq!(r.status, 404, "{:?} {seen:?}", r.headers);
        if vendor == Vendor::Aws {
            // A version that is there (its ACL is read: one encrypted with a customer's key,
            // HEADed without it), or a HEAD naming no version: the backend's fault, 500 —
            // HCP's HEAD has no 400.
            server.respond_to("HEAD", "error|InvalidArgument|400");
            for target in ["/bkt/k?versionId=123456789", "/bkt/k"] {
                let r = ask("HEAD", target).await;
                assert_eq!(r.status, 500, "{target}: {:?}", r.headers);
            }
        }
        // (A copy's source's: HCP, "an invalid value while versioning is enabled", 404.)
        server.respond_to("*", "invalid-version");
        let copy = [("x-amz-copy-source", "/bkt/k?versionId=123456789")];
        let headers = V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256).sign("PUT", b"/bkt/k2", &copy);
        let r = send(&addr, "PUT", b"/bkt/k2", &headers, vec![]).await;
        r.assert_hcp_error(404, "NoSuchKey");
        // (The missing version is the source's: the copy's own key is not named for it.)
        assert!(
            !r.text().contains("<Key>k2</Key>"),
            "{vendor:?}: {}",
            r.text()
        );
        let (method, _, headers) = server.seen().pop().unwrap();
        let source = headers.iter().find(|(n, _)| n == "x-amz-copy-source");
        assert_eq!(method, "PUT", "{vendor:?}");
        assert!(
            source.is_some_and(|(_, v)| v.ends_with("versionId=123456789")),
            "{vendor:?}: {headers:?}"
        );
        // (Said of a request that named no version: the backend's 400 stands.)
        server.respond_to("DELETE", "invalid-version");
        ask("DELETE", "/bkt/k")
            .await
            .assert_hcp_error(400, "InvalidArgument");
        server.respond_to("DELETE", "error|InvalidArgument|400");
        ask("DELETE", "/bkt/k?versionId=123456789")
            .await
            .assert_hcp_error(400, "InvalidArgument");
        gw.stop().await;
    }
}

/// Where labeled holds are kept the gateway changes a legal hold itself: a version id the
/// backend refuses names no version there too (404 `NoSuchKey`, not a 503 to retry for ever),
/// and a delete marker's is 405, as the request forwarded would be; nothing is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_of_a_version_that_is_none_is_404() {
    let tenant = "retention = \"enterprise\"\nlabeled_holds_bucket = \"gw-holds\"";
    for vendor in [Vendor::Aws, Vendor::Minio] {
        let (gw, server) = start_with_dialect_tenant(vendor, "", tenant).await;
        let doc = b"<LegalHold><Status>ON</Status></LegalHold>";
        let md5 = content_md5(doc);
        let hold = async |target: &str| {
            let headers = [("content-md5", md5.as_str())];
            as_user(&gw, (USER, PASSWORD), "PUT", target, &headers, doc).await
        };
        server.respond_to("*", "invalid-version");
        let r = hold("/bkt/k?legal-hold&versionId=123456789").await;
        r.assert_hcp_error(404, "NoSuchKey");
        assert!(
            r.text().contains("<Key>k</Key>"),
            "{vendor:?}: {}",
            r.text()
        );
        server.respond_to("HEAD", "error|MethodNotAllowed|405");
        let r = hold("/bkt/k?legal-hold&versionId=987654321").await;
        r.assert_hcp_error(405, "MethodNotAllowed");
        let seen = server.seen();
        let changed = seen
            .iter()
            .filter(|(m, t, _)| m == "PUT" && t.contains("legal-hold"));
        assert_eq!(changed.count(), 0, "{vendor:?}: {seen:?}");
        gw.stop().await;
    }
}

/// A MinIO bucket whose versioning excludes prefixes or folders keeps no versions of the
/// objects there: those are judged as in a bucket without versioning (HCP's no-overwrite rule
/// refuses to replace one, 409, nothing sent), the others as in one with it (a version asked
/// for is sent); its versioning document shows HCP's `Status` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioning_with_minio_s_exclusions_keeps_no_versions() {
    let tenant = "overwrite = \"refuse-unversioned\"";
    let (gw, server) = start_with_dialect_tenant(Vendor::Minio, "", tenant).await;
    server.respond_to("*", "versioning-excluding");
    let admin = (USER, PASSWORD);
    for excluded in ["/bkt/tmp/a", "/bkt/tmp/deeper/b", "/bkt/folder/"] {
        let r = as_user(&gw, admin, "PUT", excluded, &[], b"").await;
        r.assert_hcp_error(409, "OperationAborted");
    }
    let seen = server.seen();
    assert!(!seen.iter().any(|(m, _, _)| m == "PUT"), "{seen:?}");
    let r = as_user(&gw, admin, "GET", "/bkt/data/a?versionId=v1", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = server.seen();
    let (_, target, _) = seen.iter().rfind(|(m, _, _)| m == "GET").unwrap();
    assert!(target.contains("versionId=v1"), "{target}");
    let r = as_user(&gw, admin, "PUT", "/bkt/data/a", &[], b"new").await;
    assert_eq!(r.status, 200, "a new version: {}", r.text());
    let r = as_user(&gw, admin, "GET", "/bkt?versioning", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("<Status>Enabled</Status>"),
        "{}",
        r.text()
    );
    for minio_s in ["ExcludedPrefixes", "tmp/", "ExcludeFolders"] {
        assert!(!r.text().contains(minio_s), "{minio_s}: {}", r.text());
    }
}

/// Where folders are kept, a write whose name the backend cannot say of (the listing that
/// asks whether it is a folder's fails) is HCP's 503 with its Error document, and nothing is
/// written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_name_the_backend_cannot_say_of_is_503() {
    let (gw, server) = start_with_dialect_tenant(Vendor::Aws, "", "folders = true").await;
    server.respond_to("GET", "error|InternalError|500");
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let r = common::raw::send_signed(&addr, (&ak, &sk), "PUT", "/bkt/a/x", b"data").await;
    r.assert_hcp_error(503, "ServiceUnavailable");
    let puts = server.seen().iter().filter(|(m, ..)| m == "PUT").count();
    assert_eq!(puts, 0, "nothing written: {:?}", server.seen());
    gw.stop().await;
}

/// A copy's source conditions are HCP's to judge — an ETag list, `*` ("all ETags match an
/// asterisk"), dates — on the source's HEAD; the copy then goes to the backend pinned to the
/// ETag they held for, never with the client's conditions, which MinIO (one ETag compared
/// whole) or Ceph RGW (no `*`) would judge their own way: 412 where HCP copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_s_judged_conditions_reach_the_backend_as_one_pin() {
    let (gw, server) = start_with_dialect(Vendor::Minio, "").await;
    server.respond_to("HEAD", "object-with|ETag:\"e1\"|Content-Length:4");
    server.respond_also("PUT", "slow-copy|0");
    for (name, value) in [
        ("x-amz-copy-source-if-match", "\"zz\", \"e1\""),
        ("x-amz-copy-source-if-match", "*"),
        ("x-amz-copy-source-if-none-match", "\"zz\""),
        (
            "x-amz-copy-source-if-unmodified-since",
            "Wed, 01 Jan 2031 00:00:00 GMT",
        ),
    ] {
        let before = server.seen().len();
        let headers = [("x-amz-copy-source", "/bkt/src"), (name, value)];
        let r = as_user(&gw, (USER, PASSWORD), "PUT", "/bkt/dst", &headers, b"").await;
        assert_eq!(r.status, 200, "{name}: {value}: {}", r.text());
        let seen = server.seen();
        let copy = seen[before..]
            .iter()
            .find(|(m, t, _)| m == "PUT" && t.starts_with("/bkt/dst"))
            .expect("the copy");
        let conditions: Vec<_> = copy
            .2
            .iter()
            .filter(|(n, _)| n.starts_with("x-amz-copy-source-if-"))
            .collect();
        assert_eq!(
            conditions,
            [&(
                "x-amz-copy-source-if-match".to_string(),
                "\"e1\"".to_string()
            )],
            "{name}: {value}"
        );
    }
    // (Conditions that fail on the HEAD: 412, no copy sent.)
    let before = server.seen().len();
    let headers = [
        ("x-amz-copy-source", "/bkt/src"),
        ("x-amz-copy-source-if-match", "\"zz\""),
    ];
    let r = as_user(&gw, (USER, PASSWORD), "PUT", "/bkt/dst", &headers, b"").await;
    r.assert_hcp_error(412, "PreconditionFailed");
    assert!(
        !server.seen()[before..].iter().any(|(m, _, _)| m == "PUT"),
        "{:?}",
        server.seen()
    );
    gw.stop().await;
}

/// What reaches the backend of a read's conditions and overrides, as the backend sees it: a
/// condition given twice by its first value alone; an If-Match of `*` or a list not at all
/// (the gateway judges it on the answer), one ETag as given; no Range on a HEAD; no
/// `response-expires` or `response-cache-control`, which the gateway answers itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_s_conditions_reach_the_backend_as_judged() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    server.respond_to("*", "object-with|ETag:\"e1\"");
    let seen_last = |method: &str| {
        let seen = server.seen();
        let (_, target, headers) = seen
            .iter()
            .rev()
            .find(|(m, t, _)| m == method && t.starts_with("/bkt/k"))
            .expect("the read")
            .clone();
        (target, headers)
    };
    let values = |headers: &[(String, String)], name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let user = (USER, PASSWORD);
    let twice = [("if-none-match", "\"aaa\""), ("if-none-match", "\"e1\"")];
    let r = as_user(&gw, user, "GET", "/bkt/k", &twice, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(values(&seen_last("GET").1, "if-none-match"), ["\"aaa\""]);
    for (asked, sent) in [
        ("*", None),
        ("\"zz\", \"e1\"", None),
        ("\"e1\"", Some("\"e1\"")),
    ] {
        let r = as_user(&gw, user, "GET", "/bkt/k", &[("if-match", asked)], b"").await;
        assert_eq!(r.status, 200, "{asked}: {}", r.text());
        let got = values(&seen_last("GET").1, "if-match");
        assert_eq!(got.first().map(String::as_str), sent, "{asked}");
    }
    let r = as_user(&gw, user, "HEAD", "/bkt/k", &[("range", "bytes=0-0")], b"").await;
    assert_eq!(r.status, 200);
    assert!(values(&seen_last("HEAD").1, "range").is_empty());
    let overrides =
        "/bkt/k?response-expires=0&response-cache-control=no&response-content-type=a%2Fb";
    let r = as_user(&gw, user, "GET", overrides, &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("expires"), Some("0"));
    let (target, _) = seen_last("GET");
    assert!(target.contains("response-content-type="), "{target}");
    assert!(
        !target.contains("response-expires") && !target.contains("response-cache-control"),
        "{target}"
    );
    gw.stop().await;
}

/// `max-keys=0` (HCP takes 0 through 2,147,483,647) answers an empty page that is not cut
/// off, whatever the backend lists — Huawei OBS answers up to 1,000 entries, truncated (before:
/// passed on, entries and next marker with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_entries_are_listed_for_max_keys_zero() {
    let (gw, server) = start_with_dialect(Vendor::Obs, "").await;
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    // (A backend's truncated pages with entries, whatever max-keys it was asked.)
    server.respond_to("GET", "minio-pages");
    for listing in [
        "/bkt?max-keys=0",
        "/bkt?list-type=2&max-keys=0",
        "/bkt?versions&max-keys=0",
    ] {
        let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", listing, b"").await;
        assert_eq!(r.status, 200, "{listing}: {}", r.text());
        let text = r.text();
        for entry in ["<Contents>", "<Version>", "<Next", "<KeyCount>2"] {
            assert!(!text.contains(entry), "{listing}: {text}");
        }
        assert!(text.contains("<IsTruncated>false</IsTruncated>"), "{text}");
    }
    let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", "/bkt?max-keys=2", b"").await;
    assert!(r.text().contains("<Contents>"), "{}", r.text());
    // (`+0` is 0 as validation reads it, and echoed so: an empty page too.)
    let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", "/bkt?max-keys=%2B0", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("<Contents>"), "{}", r.text());
}

/// An answer of no known length is never framed as chunks where chunks would lie: to an
/// HTTP/1.0 client (which has none: a long copy's early 200) it ends where the connection
/// does; and where the backend's own body ended at its connection's close (HTTP/1.0 framing),
/// so does the client's — never chunks ended as complete for a body that may have been cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_of_no_length_end_with_the_connection() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (gw, server) = start_with_dialect(Vendor::Aws, "complete_keepalive_ms = 300\n").await;
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    let read_all = |method: &'static str,
                    target: &'static str,
                    extra: Vec<(&'static str, &'static str)>,
                    version: &'static str| {
        let (addr, ak, sk) = (addr.clone(), ak.clone(), sk.clone());
        async move {
            let headers =
                common::raw::V4::unsigned(&ak, &sk, &addr).sign(method, target.as_bytes(), &extra);
            let head = common::raw::request_head(method, target.as_bytes(), &headers);
            let head = String::from_utf8(head)
                .unwrap()
                .replacen("HTTP/1.1", version, 1);
            let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
            c.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let read = c.read_to_end(&mut answer);
            tokio::time::timeout(Duration::from_secs(10), read)
                .await
                .expect("the connection closes")
                .unwrap();
            String::from_utf8_lossy(&answer).into_owned()
        }
    };
    server.respond_to("PUT", "slow-copy|1000");
    let copy = vec![("x-amz-copy-source", "/bkt/source")];
    let answer = read_all("PUT", "/bkt/copied", copy, "HTTP/1.0").await;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    assert!(
        body.trim_start().starts_with("<CopyObjectResult"),
        "{body:?}"
    );
    assert!(body.trim_end().ends_with("</CopyObjectResult>"), "{body:?}");
    // (An HTTP/1.1 client, asking to keep its connection, gets it closed all the same.)
    server.respond_to("GET", "close-delimited|70000");
    let answer = read_all("GET", "/bkt/k", vec![], "HTTP/1.1").await;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    let head = head.to_ascii_lowercase();
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body.len(), 70000);
}

/// A write's or delete's `If-Match` is judged by the gateway on the object's HEAD whatever the
/// backend — MinIO ignores a delete's, the embedded store has none —: 412 and nothing sent
/// where it fails; where it holds it is sent on only to a backend that judges it atomically
/// too: a PUT's to AWS and MinIO, a delete's to AWS alone.
#[tokio::test]
async fn write_conditions_are_judged_whatever_the_backend() {
    for vendor in [Vendor::Minio, Vendor::Aws] {
        let aws = matches!(vendor, Vendor::Aws);
        let (gw, server) = start_with_dialect(vendor, "").await;
        server.respond_to("HEAD", "object-with|ETag:\"e1\"");
        let sent = |method: &str| -> Vec<bool> {
            server
                .seen()
                .iter()
                .filter(|(m, ..)| m == method)
                .map(|(_, _, h)| h.iter().any(|(n, _)| n.eq_ignore_ascii_case("if-match")))
                .collect()
        };
        let admin = (USER, PASSWORD);
        let other = [("if-match", "\"e2\"")];
        let r = as_user(&gw, admin, "DELETE", "/bkt/k", &other, b"").await;
        r.assert_hcp_error(412, "PreconditionFailed");
        let r = as_user(&gw, admin, "PUT", "/bkt/k", &other, b"x").await;
        r.assert_hcp_error(412, "PreconditionFailed");
        assert!(sent("DELETE").is_empty() && sent("PUT").is_empty());
        let this = [("if-match", "\"e1\"")];
        let r = as_user(&gw, admin, "DELETE", "/bkt/k", &this, b"").await;
        assert!(r.status < 300, "{}", r.text());
        let r = as_user(&gw, admin, "PUT", "/bkt/k", &this, b"x").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(sent("DELETE"), [aws], "{}", vendor.name());
        assert_eq!(sent("PUT"), [true], "{}", vendor.name());
    }
}

/// Suspended versioning on an S3 backend: a write by a user without purge over a key whose
/// `null` version the backend cannot say of — its HEAD or its one-entry version listing fails
/// — is HCP's 503 with its Error document, nothing written; over an old `null` version 403;
/// where the `null` version is the newest, or there is none, the write is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_version_the_backend_cannot_say_of_is_503() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let writer = (WRITER, PASSWORD);
    let cases = [
        ("503", "v2", Some((503, "ServiceUnavailable"))),
        ("200", "500", Some((503, "ServiceUnavailable"))),
        ("200", "v2", Some((403, "AccessDenied"))),
        ("200", "null", None),
        ("404", "v2", None),
    ];
    for (n, (head, newest, refused)) in cases.into_iter().enumerate() {
        server.clear();
        server.respond_to("*", &format!("suspended|{head}|{newest}"));
        // (A bucket each: its versioning is kept for seconds.)
        let target = format!("/shared-null-{n}/k");
        let r = as_user(&gw, writer, "PUT", &target, &[], b"data").await;
        let seen = server.seen();
        let puts = seen.iter().filter(|(m, t, _)| m == "PUT" && *t == target);
        let puts = puts.count();
        match refused {
            Some((status, code)) => {
                r.assert_hcp_error(status, code);
                assert_eq!(puts, 0, "{head} {newest}: nothing written: {seen:?}");
            }
            None => {
                assert_eq!(r.status, 200, "{head} {newest}: {}", r.text());
                assert_eq!(puts, 1, "{head} {newest}: {seen:?}");
            }
        }
    }
    gw.stop().await;
}

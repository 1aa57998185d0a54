//! HCP's request rules (docs/validation.md), each answered before the backend: status, code and
//! body shape are checked, and the backend-request count proves nothing was forwarded.

mod common;

use std::time::SystemTime;

use base64::Engine as _;

use common::raw::{send, send_signed, V4};
use common::*;
use hcp_s3_gateway::sig::v4 as sigv4;

struct Case {
    rule: u32,
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(rule: u32, method: &'static str, target: String, status: u16, code: &'static str) -> Case {
    Case {
        rule,
        method,
        target,
        headers: vec![],
        body: vec![],
        status,
        code,
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Case {
        self.headers.push((name, value.into()));
        self
    }
    fn body(mut self, body: &[u8]) -> Case {
        self.body = body.to_vec();
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_answered_before_the_backend() {
    let gw = start(Backend::Local).await.unwrap();
    let b = gw.with_bucket("rules").await;
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let big_meta = "v".repeat(2100);
    let acl_body = "<AccessControlPolicy><AccessControlList><Grant><Grantee \
        xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"AmazonCustomerByEmail\">\
        <EmailAddress>bob</EmailAddress></Grantee><Permission>WRITE</Permission></Grant>\
        </AccessControlList></AccessControlPolicy>";
    let cases = vec![
        case(39, "GET", format!("/{b}?policy"), 501, "NotImplemented"),
        case(39, "PUT", format!("/{b}/k?tagging"), 501, "NotImplemented")
            .header("content-length", "0"),
        case(39, "GET", format!("/{b}?website"), 501, "NotImplemented"),
        case(14, "PUT", "/bad_name".to_string(), 400, "InvalidBucketName"),
        // A parameter given twice: what is signed (sorted) and what is acted on could differ.
        case(
            39,
            "GET",
            format!("/{b}/k?versionId=a&versionId=b"),
            400,
            "InvalidArgument",
        ),
        case(
            39,
            "GET",
            format!("/{b}?prefix=a&Prefix=b"),
            400,
            "InvalidArgument",
        ),
        // S3's one encoding method, as S3 spells it.
        case(
            38,
            "GET",
            format!("/{b}?encoding-type=URL"),
            400,
            "InvalidArgument",
        ),
        // Over HCP's own 4,095 bytes: refused in validation, whatever the backend (a
        // backend's own lower limit: tests/clients.rs on RGW).
        case(
            18,
            "PUT",
            format!("/{b}/{}", "k".repeat(4096)),
            400,
            "KeyTooLong",
        )
        .header("content-length", "1")
        .body(b"x"),
        case(19, "PUT", format!("/{b}/a%00b"), 400, "MalformedXML")
            .header("content-length", "1")
            .body(b"x"),
        case(
            19,
            "PUT",
            format!("/{b}/.directory-metadata"),
            400,
            "MalformedXML",
        )
        .header("content-length", "1")
        .body(b"x"),
        case(12, "PUT", format!("/{b}/k"), 411, "MissingContentLength")
            .header("transfer-encoding", "chunked")
            .body(b"1\r\nx\r\n0\r\n\r\n"),
        case(
            24,
            "PUT",
            format!("/{b}/k?partNumber=0&uploadId=u"),
            400,
            "InvalidArgument",
        )
        .header("content-length", "1")
        .body(b"x"),
        case(
            24,
            "PUT",
            format!("/{b}/k?partNumber=10001&uploadId=u"),
            400,
            "InvalidArgument",
        )
        .header("content-length", "1")
        .body(b"x"),
        case(
            24,
            "PUT",
            format!("/{b}/k?partNumber=one&uploadId=u"),
            400,
            "InvalidArgument",
        )
        .header("content-length", "1")
        .body(b"x"),
        case(
            25,
            "PUT",
            format!("/{b}/k?partNumber=1&uploadId=u"),
            400,
            "InvalidArgument",
        )
        .header("content-length", "1")
        .header("x-amz-meta-color", "red")
        .body(b"x"),
        case(20, "PUT", format!("/{b}/k"), 400, "MetadataTooLarge")
            .header("content-length", "1")
            .header("x-amz-meta-big", big_meta)
            .body(b"x"),
        case(23, "PUT", format!("/{b}/k"), 400, "MalformedXML")
            .header("content-length", "1")
            .header("x-amz-acl", "private")
            .header("x-amz-grant-read", "id=abc")
            .body(b"x"),
        case(21, "PUT", format!("/{b}/k"), 501, "NotImplemented")
            .header("content-length", "1")
            .header("x-amz-acl", "everyone")
            .body(b"x"),
        // ACL headers and an ACL body in one request: the backend would take one, the
        // gateway record the other's grants (HCP: "You cannot use ACL headers and an ACL
        // request body in the same request").
        case(22, "PUT", format!("/{b}?acl"), 400, "InvalidArgument")
            .header("content-length", acl_body.len().to_string())
            .header("x-amz-acl", "private")
            .body(acl_body.as_bytes()),
        case(22, "PUT", format!("/{b}/k?acl"), 400, "InvalidArgument")
            .header("content-length", acl_body.len().to_string())
            .header("x-amz-grant-read", "emailAddress=\"bob\"")
            .body(acl_body.as_bytes()),
        case(21, "POST", format!("/{b}/k?uploads"), 501, "NotImplemented")
            .header("x-amz-acl", "everyone"),
        // ACL values that are not visible ASCII are refused, never passed on unread.
        case(21, "PUT", format!("/{b}/k"), 501, "NotImplemented")
            .header("content-length", "1")
            .header("x-amz-acl", "public-read\u{e9}")
            .body(b"x"),
        // A grant header S3 does not define would go unread by the grant checks.
        case(22, "PUT", format!("/{b}/k"), 400, "InvalidArgument")
            .header("content-length", "1")
            .header("x-amz-grant-everything", "id=\"backend-account\"")
            .body(b"x"),
        case(22, "PUT", format!("/{b}/k"), 400, "InvalidArgument")
            .header("content-length", "1")
            .header(
                "x-amz-grant-full-control",
                "emailAddress=\"all_users\", id=\"\u{e9}\"",
            )
            .body(b"x"),
        // HCP's retention and hold headers are refused, never dropped: the object would be
        // stored unprotected (issue "HCP retention, holds and S3 Object Lock").
        case(39, "PUT", format!("/{b}/k"), 501, "NotImplemented")
            .header("content-length", "1")
            .header("x-hcp-retention", "A+7y")
            .body(b"x"),
        case(39, "PUT", format!("/{b}/k"), 501, "NotImplemented")
            .header("x-amz-copy-source", format!("/{b}/src"))
            .header("x-hcp-retentionhold", "true"),
        case(39, "POST", format!("/{b}/k?uploads"), 501, "NotImplemented")
            .header("x-hcp-retention", "-1"),
        // Two values of one HCP header: which one would count? Refused.
        case(35, "PUT", format!("/{b}/k"), 400, "InvalidArgument")
            .header("content-length", "1")
            .header("x-hcp-retention", "0")
            .header("x-hcp-retention", "-1")
            .body(b"x"),
        case(
            39,
            "POST",
            format!("/{b}/k?uploadId=u1"),
            501,
            "NotImplemented",
        )
        .header("content-length", "26")
        .header("x-hcp-labelretentionhold", r#"[{"id":"L1","hold":true}]"#)
        .body(b"<CompleteMultipartUpload/>"),
        case(22, "PUT", format!("/{b}?acl"), 400, "InvalidArgument")
            .header("x-amz-acl", "everyone"),
        case(26, "PUT", format!("/{b}/k"), 400, "EntityTooLarge")
            .header("content-length", "6000000000")
            .body(b""),
        // (A write cannot send both to a backend; a read evaluates both, as HCP does.)
        case(35, "PUT", format!("/{b}/k"), 400, "InvalidArgument")
            .header("content-length", "1")
            .header("if-match", "\"a\"")
            .header("if-none-match", "\"b\"")
            .body(b"x"),
        case(35, "PUT", format!("/{b}/k"), 400, "InvalidArgument")
            .header("x-amz-copy-source", format!("/{b}/src"))
            .header("x-amz-copy-source-if-match", "\"a\"")
            .header("x-amz-copy-source-if-none-match", "\"b\""),
        case(
            38,
            "GET",
            format!("/{b}?list-type=2&max-keys=ten"),
            400,
            "InvalidArgument",
        ),
        case(
            38,
            "GET",
            format!("/{b}?uploads&max-uploads=1001"),
            400,
            "InvalidArgument",
        ),
        case(
            38,
            "GET",
            format!("/{b}/k?uploadId=u&max-parts=5000"),
            400,
            "InvalidArgument",
        ),
        // (HCP's ranges: max-keys 0 through 2,147,483,647, part-number-marker through 10,000.)
        case(
            38,
            "GET",
            format!("/{b}?max-keys=2147483648"),
            400,
            "InvalidArgument",
        ),
        case(
            38,
            "GET",
            format!("/{b}/k?uploadId=u&part-number-marker=10001"),
            400,
            "InvalidArgument",
        ),
        case(
            28,
            "POST",
            format!("/{b}/k?uploadId=u"),
            400,
            "MissingRequestBodyError",
        )
        .header("content-length", "0"),
        case(
            48,
            "PUT",
            format!("/{b}?versioning"),
            400,
            "MissingRequestBodyError",
        )
        .header("content-length", "0"),
        case(
            48,
            "PUT",
            format!("/{b}/k?acl"),
            400,
            "MissingRequestBodyError",
        )
        .header("content-length", "0"),
        case(
            43,
            "POST",
            format!("/{b}?delete"),
            400,
            "MissingSecurityHeader",
        )
        .header("content-length", "44")
        .body(b"<Delete><Object><Key>k</Key></Object></Delete>"[..44].as_ref()),
    ];
    // Rule 43: more than 1,000 objects, or malformed XML, in a multi-object delete.
    let md5 = |b: &[u8]| {
        use base64::Engine as _;
        use md5::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b))
    };
    let too_many: String = (0..1001)
        .map(|i| format!("<Object><Key>k{i}</Key></Object>"))
        .collect();
    let too_many = format!("<Delete>{too_many}</Delete>").into_bytes();
    let broken = b"<Delete><Object><Key>k</Key></Delete>".to_vec();
    let mut cases = cases;
    for body in [too_many, broken] {
        cases.push(
            case(43, "POST", format!("/{b}?delete"), 400, "MalformedXML")
                .header("content-length", body.len().to_string())
                .header("content-md5", md5(&body))
                .body(&body),
        );
    }
    for c in cases {
        let before = gw.backend_requests();
        let payload = if c.body.is_empty() {
            sigv4::EMPTY_SHA256.to_string()
        } else {
            sigv4::UNSIGNED_PAYLOAD.to_string()
        };
        let extra: Vec<(&str, &str)> = c.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let v4 = V4 {
            access_key: &ak,
            secret_key: &sk,
            host: &addr,
            when: SystemTime::now(),
            payload_hash: &payload,
            date_header: None,
        };
        let headers = v4.sign(c.method, c.target.as_bytes(), &extra);
        let pieces = if c.body.is_empty() {
            vec![]
        } else {
            vec![c.body.clone()]
        };
        let r = send(&addr, c.method, c.target.as_bytes(), &headers, pieces).await;
        let what = format!(
            "rule {} ({} {})",
            c.rule,
            c.method,
            &c.target[..c.target.len().min(60)]
        );
        assert_eq!(
            (r.status, r.code().as_str()),
            (c.status, c.code),
            "{what}: {}",
            r.text()
        );
        assert_hcp_error_body(&r.text(), c.code);
        assert_eq!(gw.backend_requests(), before, "{what}: reached the backend");
    }
}

async fn complete(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    id: &str,
    parts: Vec<aws_sdk_s3::types::CompletedPart>,
) -> Result<(), (u16, String, String)> {
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    match s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(done)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let (status, code) = sdk_error(&e);
            let message = aws_sdk_s3::error::ProvideErrorMetadata::message(&e)
                .unwrap_or_default()
                .to_string();
            Err((status, code, message))
        }
    }
}

/// A complete refused as HCP refuses one with a part too small (rule 32): 200 with the Error
/// document, EntityTooSmall, its message naming the `minimum` broken.
async fn refused_too_small(
    s3: &aws_sdk_s3::Client,
    (bucket, key, id): (&str, &str, &str),
    parts: Vec<aws_sdk_s3::types::CompletedPart>,
    minimum: &str,
) {
    let (status, code, message) = complete(s3, bucket, key, id, parts).await.unwrap_err();
    assert_eq!((status, code.as_str()), (200, "EntityTooSmall"));
    assert!(message.contains(minimum), "{message}");
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Rule 32 with HCP's 1 MiB and a backend's own larger minimum, and rules 29/30, on RGW.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_rules_on_rgw() {
    let Some((gw, s3, bucket)) = start_with_bucket(Backend::Rgw, "mpurules").await else {
        return;
    };

    // 512 KiB is under HCP's 1 MiB: 200 EntityTooSmall, upload still open.
    let (id, parts) = upload_parts(&s3, &bucket, "small", &[512 * KIB, KIB]).await;
    refused_too_small(
        &s3,
        (&bucket, "small", &id),
        parts,
        "minimum part size of 1048576",
    )
    .await;
    assert_eq!(
        s3.list_parts()
            .bucket(&bucket)
            .key("small")
            .upload_id(&id)
            .send()
            .await
            .unwrap()
            .parts()
            .len(),
        2
    );

    // 2 MiB satisfies HCP but not the backend's 5 MiB: the message names the backend's minimum.
    let (id, parts) = upload_parts(&s3, &bucket, "gap", &[2 * MIB, KIB]).await;
    refused_too_small(
        &s3,
        (&bucket, "gap", &id),
        parts.clone(),
        "backend's minimum part size of 5242880",
    )
    .await;

    // Descending parts: 200 InvalidPartOrder, decided by the gateway.
    let before = gw.backend_requests();
    let mut reversed = parts;
    reversed.reverse();
    let (status, code, _) = complete(&s3, &bucket, "gap", &id, reversed)
        .await
        .unwrap_err();
    assert_eq!((status, code.as_str()), (200, "InvalidPartOrder"));
    assert_eq!(gw.backend_requests(), before, "answered before the backend");

    // Malformed and empty part lists: 400 MalformedXML.
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let target = format!("/{bucket}/gap?uploadId={id}");
    for body in [
        &b"<CompleteMultipartUpload><Part>"[..],
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
    ] {
        let r = send_signed(&addr, (&ak, &sk), "POST", &target, body).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "MalformedXML"),
            "{}",
            r.text()
        );
        assert_hcp_error_body(&r.text(), "MalformedXML");
    }

    // Parts that satisfy both minimums complete.
    let (id, parts) = upload_parts(&s3, &bucket, "fine", &[5 * MIB, KIB]).await;
    complete(&s3, &bucket, "fine", &id, parts).await.unwrap();
}

/// A part list is read strictly, by local names, and what is read is all the backend gets: a
/// document a laxer reader would read otherwise (an element S3 does not define, a field twice,
/// text outside a field, a document type, an undefined entity) is 400 MalformedXML in HCP's
/// body before the backend, the upload left open and nothing stored; the same list with its
/// parts in a prefixed namespace completes the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_lists_are_read_strictly() {
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "strictlist").await;
    let (id, parts) = upload_parts(&s3, &bucket, "k", &[KIB]).await;
    let etag = parts[0].e_tag().unwrap().replace('"', "&quot;");
    let part = format!("<PartNumber>1</PartNumber><ETag>{etag}</ETag>");
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    let target = format!("/{bucket}/k?uploadId={id}");
    for doc in [
        format!("<CompleteMultipartUpload><Part>{part}<Size>1024</Size></Part></CompleteMultipartUpload>"),
        format!("<CompleteMultipartUpload><Part><PartNumber>2</PartNumber>{part}</Part></CompleteMultipartUpload>"),
        format!("<CompleteMultipartUpload><Part>{part}</Part>stray</CompleteMultipartUpload>"),
        format!("<CompleteMultipartUpload><Part>{part}</Part><Other/></CompleteMultipartUpload>"),
        format!("<!DOCTYPE x><CompleteMultipartUpload><Part>{part}</Part></CompleteMultipartUpload>"),
        format!("<CompleteMultipartUpload><Part>{part}&ext;</Part></CompleteMultipartUpload>"),
    ] {
        let before = gw.backend_requests();
        let r = send_signed(&addr, (&ak, &sk), "POST", &target, doc.as_bytes()).await;
        r.assert_hcp_error(400, "MalformedXML");
        assert_eq!(gw.backend_requests(), before, "{doc}: reached the backend");
    }
    let head = s3.head_object().bucket(&bucket).key("k").send().await;
    assert!(head.is_err(), "an object was stored: {head:?}");
    let doc = format!(
        "<CompleteMultipartUpload><s3:Part xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <s3:PartNumber>1</s3:PartNumber><s3:ETag>{etag}</s3:ETag></s3:Part></CompleteMultipartUpload>"
    );
    let r = send_signed(&addr, (&ak, &sk), "POST", &target, doc.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("<CompleteMultipartUploadResult"),
        "{}",
        r.text()
    );
    assert_eq!(object_bytes(&s3, &bucket, "k").await.len(), KIB);
}

/// A versioning document says its Status and nothing else: MinIO's `ExcludedPrefixes` (no
/// versions kept there, where the gateway would take every delete for recoverable), a Status
/// twice, CDATA are 400 MalformedXML before the backend, the bucket's versioning unchanged;
/// MFA delete is 501. What SDKs send (a namespace, `MfaDelete` off) is sent as the gateway built
/// it, and takes effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioning_documents_are_read_strictly() {
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "strictversioning").await;
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    let target = format!("/{bucket}?versioning");
    let root = |inner: &str| format!("<VersioningConfiguration>{inner}</VersioningConfiguration>");
    for (doc, status, code) in [
        (root("<Status>Enabled</Status><ExcludedPrefixes><Prefix>data/</Prefix></ExcludedPrefixes>"), 400, "MalformedXML"),
        (root("<Status>Enabled</Status><ExcludeFolders>true</ExcludeFolders>"), 400, "MalformedXML"),
        (root("<Status>Suspended</Status><Status>Enabled</Status>"), 400, "MalformedXML"),
        (root("<Status><![CDATA[Enabled]]></Status>"), 400, "MalformedXML"),
        (root("<Status>Enabled</Status><MfaDelete>Enabled</MfaDelete>"), 501, "NotImplemented"),
    ] {
        let before = gw.backend_requests();
        let r = send_signed(&addr, (&ak, &sk), "PUT", &target, doc.as_bytes()).await;
        r.assert_hcp_error(status, code);
        assert_eq!(gw.backend_requests(), before, "{doc}: reached the backend");
    }
    let status = |s3: &aws_sdk_s3::Client| {
        let get = s3.get_bucket_versioning().bucket(&bucket).send();
        async move { get.await.unwrap().status().map(|s| s.as_str().to_string()) }
    };
    assert_eq!(status(&s3).await, None, "never versioned");
    let doc = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
               <Status>Enabled</Status><MfaDelete>Disabled</MfaDelete></VersioningConfiguration>";
    let r = send_signed(&addr, (&ak, &sk), "PUT", &target, doc.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status(&s3).await.as_deref(), Some("Enabled"));
}

/// On the embedded backend: HCP's 1 MiB, then the backend's own 5 MiB, each named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hcp_minimum_part_size_on_the_local_backend() {
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "localmpu").await;
    let (id, parts) = upload_parts(&s3, &bucket, "small", &[512 * KIB, KIB]).await;
    refused_too_small(
        &s3,
        (&bucket, "small", &id),
        parts,
        "minimum part size of 1048576",
    )
    .await;
    let (id, parts) = upload_parts(&s3, &bucket, "gap", &[MIB, KIB]).await;
    refused_too_small(
        &s3,
        (&bucket, "gap", &id),
        parts,
        "backend's minimum part size of 5242880",
    )
    .await;
    let (id, parts) = upload_parts(&s3, &bucket, "ok", &[5 * MIB, KIB]).await;
    complete(&s3, &bucket, "ok", &id, parts).await.unwrap();
    let got = s3
        .head_object()
        .bucket(&bucket)
        .key("ok")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some((5 * MIB + KIB) as i64));
}

/// Rule 22 and HCP's grantee forms, on RGW: group grants reach the backend in its terms,
/// individual-user grants are refused clearly, ACL headers on parts are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_grant_headers_on_rgw() {
    let Some((_gw, s3, bucket)) = start_with_bucket(Backend::Rgw, "acls").await else {
        return;
    };
    let body = || aws_sdk_s3::primitives::ByteStream::from_static(b"shared");
    s3.put_object()
        .bucket(&bucket)
        .key("public")
        .grant_read("emailAddress=all_users")
        .body(body())
        .send()
        .await
        .unwrap();
    let acl = s3
        .get_object_acl()
        .bucket(&bucket)
        .key("public")
        .send()
        .await
        .unwrap();
    let all_users = acl.grants().iter().any(|g| {
        g.grantee().and_then(|e| e.uri()) == Some("http://acs.amazonaws.com/groups/global/AllUsers")
            && g.permission().map(|p| p.as_str()) == Some("READ")
    });
    assert!(all_users, "all_users became the AllUsers group: {acl:?}");
    // The backend itself now serves the object anonymously.
    let direct = format!("{}/{bucket}/public", std::env::var("RGW_ENDPOINT").unwrap());
    let rgw_addr = direct
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let r = send(
        &rgw_addr,
        "GET",
        format!("/{bucket}/public").as_bytes(),
        &[("host".to_string(), rgw_addr.clone())],
        vec![],
    )
    .await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"shared"[..]));

    let e = s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .grant_read("mail=someone")
        .body(body())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (400, "InvalidArgument".into()));
    let e = s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .grant_read(format!("emailAddress={USER}"))
        .body(body())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (501, "NotImplemented".into()));
    let e = s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .grant_read("emailAddress=nobody-known")
        .body(body())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (400, "InvalidArgument".into()));

    // ACL headers on an upload part are ignored, as HCP does.
    let up = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("mpu")
        .send()
        .await
        .unwrap();
    s3.upload_part()
        .bucket(&bucket)
        .key("mpu")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(body())
        .customize()
        .mutate_request(|r| {
            r.headers_mut().insert("x-amz-acl", "not-a-canned-acl");
        })
        .send()
        .await
        .unwrap();
}

/// ACL documents (PUT ?acl with a body): HCP's grantee forms become the backend's groups, the
/// owner keeps its grant, individual users are 501, unknown grantees 400 InvalidArgument, and a
/// document that is not an ACL 400 MalformedXML — nothing of a refused ACL reaches the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_documents_on_rgw() {
    use aws_sdk_s3::types::{AccessControlPolicy, Grant, Grantee, Permission, Type};
    let Some((gw, s3, bucket)) = start_with_bucket(Backend::Rgw, "acl-docs").await else {
        return;
    };
    s3.put_object()
        .bucket(&bucket)
        .key("doc")
        .body(b"d".to_vec().into())
        .send()
        .await
        .unwrap();
    let doc_acl = || s3.get_object_acl().bucket(&bucket).key("doc").send();
    let before = doc_acl().await.unwrap();
    let owner = before.owner().unwrap().clone();
    let owner_grant = Grant::builder()
        .grantee(
            Grantee::builder()
                .r#type(Type::CanonicalUser)
                .id(owner.id().unwrap())
                .build()
                .unwrap(),
        )
        .permission(Permission::FullControl)
        .build();
    let put = |grantee: Grantee| {
        let policy = AccessControlPolicy::builder()
            .owner(owner.clone())
            .grants(owner_grant.clone())
            .grants(
                Grant::builder()
                    .grantee(grantee)
                    .permission(Permission::Read)
                    .build(),
            )
            .build();
        s3.put_object_acl()
            .bucket(&bucket)
            .key("doc")
            .access_control_policy(policy)
            .send()
    };
    let by_email = |email: &str| {
        Grantee::builder()
            .r#type(Type::AmazonCustomerByEmail)
            .email_address(email)
            .build()
            .unwrap()
    };
    put(by_email("authenticated")).await.unwrap();
    let after = doc_acl().await.unwrap();
    let granted = |acl: &aws_sdk_s3::operation::get_object_acl::GetObjectAclOutput| {
        acl.grants().iter().any(|g| {
            g.grantee().and_then(|e| e.uri())
                == Some("http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
                && g.permission() == Some(&Permission::Read)
        })
    };
    assert!(granted(&after), "{after:?}");

    let refused = [
        (by_email(USER), (501, "NotImplemented")),
        (by_email("nobody-known"), (400, "InvalidArgument")),
        (
            Grantee::builder()
                .r#type(Type::CanonicalUser)
                .id("0123456789abcdef")
                .build()
                .unwrap(),
            (400, "InvalidArgument"),
        ),
    ];
    for (grantee, (status, code)) in refused {
        let e = put(grantee).await.unwrap_err();
        assert_eq!(sdk_error(&e), (status, code.to_string()));
    }
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let target = format!("/{bucket}/doc?acl");
    let r = send_signed(&addr, (&ak, &sk), "PUT", &target, b"<Tagging/>").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_hcp_error_body(&r.text(), "MalformedXML");
    // The refused ACLs changed nothing.
    let last = doc_acl().await.unwrap();
    assert_eq!(last.grants(), after.grants());
}

/// Seed 000, UploadPartCopy: range syntax and range against the source (400), unknown upload
/// (404), failed copy-source conditions (412), and metadata (400) — on the embedded backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_rules() {
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "partcopy").await;
    let source = s3
        .put_object()
        .bucket(&bucket)
        .key("src")
        .body(aws_sdk_s3::primitives::ByteStream::from(pattern(1000, 1)))
        .send()
        .await
        .unwrap();
    let up = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("dst")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let copy = |range: Option<&str>| {
        let mut c = s3
            .upload_part_copy()
            .bucket(&bucket)
            .key("dst")
            .upload_id(id)
            .part_number(1)
            .copy_source(format!("{bucket}/src"));
        if let Some(r) = range {
            c = c.copy_source_range(r);
        }
        c
    };
    let invalid = |e: (u16, String)| assert_eq!(e, (400, "InvalidArgument".to_string()));
    invalid(sdk_error(
        &copy(Some("bytes=5-1")).send().await.unwrap_err(),
    ));
    invalid(sdk_error(&copy(Some("bytes=x-")).send().await.unwrap_err()));
    invalid(sdk_error(
        &copy(Some("bytes=1000-1100")).send().await.unwrap_err(),
    ));
    let listed = s3
        .list_parts()
        .bucket(&bucket)
        .key("dst")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    assert!(listed.parts().is_empty(), "nothing was copied");
    copy(Some("bytes=999-999")).send().await.unwrap();

    let e = s3
        .upload_part_copy()
        .bucket(&bucket)
        .key("dst")
        .upload_id("6e0c1a1c-0000-4000-8000-000000000000")
        .part_number(1)
        .copy_source(format!("{bucket}/src"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (404, "NoSuchUpload".into()));
    let e = copy(None)
        .copy_source_if_match("\"00000000000000000000000000000000\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e).0, 412, "{e:?}");
    copy(None)
        .copy_source_if_match(source.e_tag().unwrap())
        .send()
        .await
        .unwrap();
}

/// Seed 000: an upload completed or aborted while a part copy ran answers 409 OperationAborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_race_is_409() {
    let server =
        common::dialect_server::DialectServer::start(common::dialect_server::Vendor::Minio).await;
    let text = format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"s3\"\ndialect = \"minio\"\nendpoint = \"{}\"\naccess_key = \"AK\"\nsecret_key = \"SK\"\n",
        base_config(""),
        server.endpoint()
    );
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await;
    let s3 = gw.client();
    let copy = || {
        s3.upload_part_copy()
            .bucket("bkt")
            .key("k")
            .upload_id(common::bound_upload_id("bkt", "u1"))
            .part_number(1)
            .copy_source("bkt/src")
            .send()
    };
    // The upload is listed before the copy; the copy then finds it gone.
    server.respond_to("PUT", "error|NoSuchUpload");
    let e = copy().await.unwrap_err();
    assert_eq!(sdk_error(&e), (409, "OperationAborted".into()));
    // Where the upload could not be listed first, it is not known to have ended during the
    // copy: the backend's NoSuchUpload stands (seed 000: 404, "aborted or completed").
    server.respond_also("GET", "error|InternalError");
    let e = copy().await.unwrap_err();
    assert_eq!(sdk_error(&e), (404, "NoSuchUpload".into()));
    assert_hcp_error_body(&error_body(&e), "NoSuchUpload");
    // (Listed, then copied: the second copy's requests — after the first copy's PUT — are the
    // listing, the source's HEADs, then the copy.)
    let seen = server.seen();
    let methods: Vec<&str> = seen.iter().map(|(m, _, _)| m.as_str()).collect();
    let first_put = methods.iter().position(|m| *m == "PUT").unwrap();
    let second: Vec<&str> = methods[first_put + 1..]
        .iter()
        .copied()
        .filter(|m| *m != "HEAD")
        .collect();
    assert_eq!(second, ["GET", "PUT"], "listed, then copied: {methods:?}");
}

/// Rule 27 across replicas: an upload id binds its initiator, so another user is refused (403)
/// and a tampered id is unknown (404) on any gateway sharing the binding secret; a replica that
/// did not see the upload begin lists it with an unattributed id that only a bucket
/// administrator may use, and only to abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_belong_to_their_initiator() {
    let Some(a) = start(Backend::Rgw).await else {
        return;
    };
    let b = start(Backend::Rgw).await.unwrap();
    let bucket = unique_bucket("shared-mpu");
    let admin_a = a.client();
    let admin_b = b.client();
    admin_a
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let (wk, ws) = keys(WRITER, PASSWORD);
    let writer_a = a.client_with(&wk, &ws);
    let writer_b = b.client_with(&wk, &ws);
    let (id, parts) = upload_parts(&writer_a, &bucket, "k", &[1024]).await;
    // Sealed: neither the backend's own upload id (RGW's `2~…`) nor the initiator's key shows.
    assert!(id.starts_with("3.") && !id.contains('~'), "{id}");
    let key_shown = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&wk);
    assert!(!id.contains(&key_shown) && !id.contains(&wk), "{id}");

    let not_initiator = |e: (u16, String)| assert_eq!(e, (403, "AccessDenied".to_string()));
    not_initiator(sdk_error(
        &admin_a
            .upload_part()
            .bucket(&bucket)
            .key("k")
            .upload_id(&id)
            .part_number(2)
            .body(b"x".to_vec().into())
            .send()
            .await
            .unwrap_err(),
    ));
    not_initiator(sdk_error(
        &admin_b
            .list_parts()
            .bucket(&bucket)
            .key("k")
            .upload_id(&id)
            .send()
            .await
            .unwrap_err(),
    ));
    not_initiator(sdk_error(
        &admin_a
            .abort_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(&id)
            .send()
            .await
            .unwrap_err(),
    ));
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .set_parts(Some(parts.clone()))
        .build();
    not_initiator(sdk_error(
        &admin_b
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(&id)
            .multipart_upload(done.clone())
            .send()
            .await
            .unwrap_err(),
    ));
    // A byte of the sealed id changed: it no longer opens.
    let mut forged = id.clone().into_bytes();
    forged[12] = if forged[12] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        sdk_error(
            &admin_a
                .list_parts()
                .bucket(&bucket)
                .key("k")
                .upload_id(&forged)
                .send()
                .await
                .unwrap_err()
        ),
        (404, "NoSuchUpload".into())
    );

    // The initiator, on the replica: its parts, under the id it was given.
    let listed = writer_b
        .list_parts()
        .bucket(&bucket)
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.upload_id(), Some(id.as_str()));
    assert_eq!(listed.parts().len(), 1);
    // The gateway that saw the upload begin lists it under the initiator's id; the marker form
    // of the id is understood.
    assert_eq!(only_listed_upload(&writer_a, &bucket).await, id);
    writer_a
        .list_multipart_uploads()
        .bucket(&bucket)
        .key_marker("k")
        .upload_id_marker(&id)
        .send()
        .await
        .unwrap();

    // The replica cannot know the initiator: an unattributed id.
    let unattributed = only_listed_upload(&writer_b, &bucket).await;
    assert_ne!(unattributed, id);
    not_initiator(sdk_error(
        &writer_b
            .abort_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(&unattributed)
            .send()
            .await
            .unwrap_err(),
    ));
    not_initiator(sdk_error(
        &admin_b
            .upload_part()
            .bucket(&bucket)
            .key("k")
            .upload_id(&unattributed)
            .part_number(2)
            .body(b"x".to_vec().into())
            .send()
            .await
            .unwrap_err(),
    ));

    // The initiator completes on the replica; a second upload is cleaned up by the administrator.
    writer_b
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    let (second, _) = upload_parts(&writer_a, &bucket, "k2", &[]).await;
    let unattributed = only_listed_upload(&admin_b, &bucket).await;
    assert!(unattributed.starts_with("3."), "{unattributed}");
    admin_b
        .abort_multipart_upload()
        .bucket(&bucket)
        .key("k2")
        .upload_id(&unattributed)
        .send()
        .await
        .unwrap();
    assert_upload_gone(&writer_a, &bucket, "k2", &second).await;
    a.stop().await;
}

/// The id of the one upload in progress in `bucket`, as the gateway lists it.
async fn only_listed_upload(s3: &aws_sdk_s3::Client, bucket: &str) -> String {
    let listed = s3
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = listed
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].to_string()
}

/// Rule 41 on a tenant with HCP's `overwrite = "refuse-unversioned"`: writing a name that exists
/// as an object or a folder in an unversioned bucket is 409 OperationAborted (PUT, copy, complete)
/// and the object is untouched; with versioning enabled the write succeeds. On any tenant,
/// `If-None-Match: *` is honoured although RGW 16 ignores it (412).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrites_by_hcp_rules_on_rgw() {
    // The extra line lands in the tenant's table, which base_config ends with.
    let Some(gw) = start_with(Backend::Rgw, "", "overwrite = \"refuse-unversioned\"").await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "overwrite").await;
    let put = |key: &str, body: &'static [u8]| {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(body))
            .send()
    };
    let exists = |e: (u16, String)| assert_eq!(e, (409, "OperationAborted".to_string()));
    put("k", b"first").await.unwrap();
    exists(sdk_error(&put("k", b"second").await.unwrap_err()));
    put("dir/inner", b"x").await.unwrap();
    exists(sdk_error(&put("dir", b"x").await.unwrap_err()));
    exists(sdk_error(
        &s3.copy_object()
            .bucket(&bucket)
            .key("k")
            .copy_source(format!("{bucket}/dir/inner"))
            .send()
            .await
            .unwrap_err(),
    ));
    let (id, parts) = upload_parts(&s3, &bucket, "k", &[KIB]).await;
    let e = complete(&s3, &bucket, "k", &id, parts).await.unwrap_err();
    assert_eq!((e.0, e.1.as_str()), (409, "OperationAborted"));
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let r = send_signed(&addr, (&ak, &sk), "PUT", &format!("/{bucket}/k"), b"third").await;
    assert_eq!(r.status, 409);
    assert_hcp_error_body(&r.text(), "OperationAborted");
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"first");

    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    put("k", b"second").await.unwrap();

    // Create-only writes, on a backend that ignores If-None-Match itself.
    let create = |body: &'static [u8]| {
        s3.put_object()
            .bucket(&bucket)
            .key("once")
            .if_none_match("*")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(body))
            .send()
    };
    create(b"only").await.unwrap();
    let e = create(b"again").await.unwrap_err();
    assert_eq!(sdk_error(&e), (412, "PreconditionFailed".into()));
    assert_eq!(object_bytes(&s3, &bucket, "once").await, b"only");
}

/// Rules 44–47, POST object: forms made by boto3's generate_presigned_post (SigV4 and SigV2)
/// and posted by urllib3 as a browser would; policy conditions, signatures, missing key or file,
/// non-form bodies, HCP credentials and anonymous forms, each with HCP's answer; refused forms
/// store nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_forms_on_rgw() {
    let Some((gw, s3, bucket)) = start_with_bucket(Backend::Rgw, "forms").await else {
        return;
    };
    let dropbox = new_bucket(&s3, "dropbox").await;
    let (ak, sk) = keys(USER, PASSWORD);
    run_python_client(
        "boto3_post_object.py",
        vec![gw.endpoint.clone(), ak, sk, bucket, dropbox.clone()],
        8,
    )
    .await;
    assert_eq!(object_bytes(&s3, &dropbox, "dropped").await, b"anonymous");
}

/// Seed 000's 409 against a real backend: the upload is aborted, or completed, while a large part
/// copy runs at RGW (a 256 MiB copy takes about a second there). The ending is sent only once
/// the gateway has forwarded the copy (seen in its backend request count), so the order is
/// certain; RGW then fails the copy with NoSuchUpload, which the gateway answers 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_copy_409_when_the_upload_ends_during_the_copy_on_rgw() {
    let Some((gw, s3, bucket)) = start_with_bucket(Backend::Rgw, "copyrace").await else {
        return;
    };
    s3.put_object()
        .bucket(&bucket)
        .key("src")
        .body(pattern(256 * MIB, 7).into())
        .send()
        .await
        .unwrap();
    for ending in ["abort", "complete"] {
        let (id, parts) = upload_parts(&s3, &bucket, "dst", &[KIB]).await;
        let before = gw.backend_requests();
        let copy = s3
            .upload_part_copy()
            .bucket(&bucket)
            .key("dst")
            .upload_id(&id)
            .part_number(2)
            .copy_source(format!("{bucket}/src"))
            .send();
        let copy = tokio::spawn(copy);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        // Two backend requests: the gateway's ListParts (the upload exists), then the copy.
        while gw.backend_requests() < before + 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the copy was never forwarded"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if ending == "abort" {
            s3.abort_multipart_upload()
                .bucket(&bucket)
                .key("dst")
                .upload_id(&id)
                .send()
                .await
                .unwrap();
        } else {
            complete(&s3, &bucket, "dst", &id, parts).await.unwrap();
        }
        let e = copy.await.unwrap().unwrap_err();
        assert_eq!(sdk_error(&e), (409, "OperationAborted".into()), "{ending}");
    }
    // The completed object is the one part that was listed.
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("dst")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(KIB as i64));
}

/// Rule 41 done atomically where the backend has conditional writes (moto honours
/// `If-None-Match: *`): the gateway adds the condition instead of checking with a HEAD, and the
/// backend's 412 becomes HCP's 409; a client's own `If-None-Match: *` stays its 412; a form's
/// upload is refused alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrites_refused_atomically_by_a_conditional_backend() {
    let dir = tempfile::tempdir().unwrap();
    let Some(entry) = Backend::Moto.config_entry(dir.path()) else {
        return;
    };
    // (HCP's rule is the default: the fixture's S3 overwrite is left out.)
    let base = base_config("").replacen("overwrite = \"allow\"\n", "", 1);
    let text = format!("{base}{entry}conditional_writes = true\n");
    let gw = start_text(&text, dir, Backend::Moto).await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "atomic").await;
    let put = || {
        s3.put_object()
            .bucket(&bucket)
            .key("k")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"v"))
    };
    put().send().await.unwrap();
    let before = gw.backend_requests();
    let e = put().send().await.unwrap_err();
    assert_eq!(sdk_error(&e), (409, "OperationAborted".into()));
    // The folder listing and the conditional PUT: no HEAD of the object, and the bucket's
    // versioning known from the first write (cached for a few seconds).
    assert_eq!(gw.backend_requests(), before + 2);
    let e = put().if_none_match("*").send().await.unwrap_err();
    assert_eq!(sdk_error(&e), (412, "PreconditionFailed".into()));
    // A form's upload is guarded alike: its backend PUT carries the gateway's condition.
    let (ak, sk) = keys(USER, PASSWORD);
    run_python_client(
        "boto3_post_object_overwrite.py",
        vec![gw.endpoint.clone(), ak, sk, bucket.clone(), "k".into()],
        1,
    )
    .await;
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"v");
}

/// Seed 000 and the manual: a part copy's range "in which the start position is less than the
/// size of the source object data" uploads the part (200) — one that ends past the source is
/// copied to its end (S3 servers refuse it: RGW's and the store's 416, AWS's 400), the part
/// holding exactly the source's bytes from the start on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_copy_range_past_the_source_copies_to_its_end() {
    for backend in [Backend::Local, Backend::Rgw] {
        let Some(gw) = start(backend).await else {
            continue;
        };
        let s3 = gw.client();
        let bucket = new_bucket(&s3, "partend").await;
        let data = pattern(1000, 3);
        s3.put_object()
            .bucket(&bucket)
            .key("src")
            .body(aws_sdk_s3::primitives::ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        let (id, _) = upload_parts(&s3, &bucket, "dst", &[]).await;
        let copied = s3
            .upload_part_copy()
            .bucket(&bucket)
            .key("dst")
            .upload_id(&id)
            .part_number(1)
            .copy_source(format!("{bucket}/src"))
            .copy_source_range("bytes=990-5000")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e:?}"));
        let etag = copied
            .copy_part_result()
            .unwrap()
            .e_tag()
            .unwrap()
            .to_string();
        let part = aws_sdk_s3::types::CompletedPart::builder()
            .part_number(1)
            .e_tag(etag)
            .build();
        s3.complete_multipart_upload()
            .bucket(&bucket)
            .key("dst")
            .upload_id(&id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .parts(part)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            object_bytes(&s3, &bucket, "dst").await,
            data[990..],
            "{backend:?}"
        );
        gw.stop().await;
    }
}

/// A part copy's range is judged on its source as it is now, though a series of part copies
/// keeps the source's HEAD a few seconds: a source rewritten through the gateway meanwhile,
/// longer or shorter, is copied from as it is — a range past the old end but inside the new is
/// 200, not 400; one past the new end is copied to it, not refused by the backend. A source
/// written beside the gateway is judged again on a fresh HEAD where the kept one refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_copy_judges_its_range_on_the_source_as_it_is_now() {
    for backend in [Backend::Local, Backend::Rgw] {
        let Some(gw) = start(backend).await else {
            continue;
        };
        let s3 = gw.client();
        let bucket = new_bucket(&s3, "partnow").await;
        let put = |key: &'static str, data: Vec<u8>| {
            s3.put_object()
                .bucket(&bucket)
                .key(key)
                .body(aws_sdk_s3::primitives::ByteStream::from(data))
                .send()
        };
        let (id, _) = upload_parts(&s3, &bucket, "dst", &[]).await;
        let copy = |n: i32, source: &'static str, range: &'static str| {
            s3.upload_part_copy()
                .bucket(&bucket)
                .key("dst")
                .upload_id(&id)
                .part_number(n)
                .copy_source(format!("{bucket}/{source}"))
                .copy_source_range(range)
                .send()
        };
        let copied = |r: Result<_, aws_sdk_s3::error::SdkError<_, _>>| {
            r.map(|_: aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput| ())
                .unwrap_or_else(|e| panic!("{backend:?}: {:?}", sdk_error(&e)))
        };
        // Longer now: a range past the old end is inside the new one.
        put("grows", pattern(1000, 3)).await.unwrap();
        copied(copy(1, "grows", "bytes=0-99").await);
        put("grows", pattern(10_000, 4)).await.unwrap();
        copied(copy(2, "grows", "bytes=5000-5999").await);
        // Shorter now: a range inside the old end but past the new one is copied to it.
        put("shrinks", pattern(10_000, 5)).await.unwrap();
        copied(copy(3, "shrinks", "bytes=0-99").await);
        put("shrinks", pattern(1000, 6)).await.unwrap();
        copied(copy(4, "shrinks", "bytes=500-5999").await);
        // Written beside the gateway (another instance, say): a range the HEAD kept refuses
        // is judged again on the source as it is.
        put("beside", pattern(1000, 7)).await.unwrap();
        copied(copy(5, "beside", "bytes=0-99").await);
        let view = common::view::BackendView::of(&gw);
        view.put_object(&bucket, "beside", &pattern(10_000, 8))
            .await;
        copied(copy(6, "beside", "bytes=5000-5999").await);
        // Shorter by a copy onto it, and by a complete: as by a PUT.
        put("small", pattern(1000, 9)).await.unwrap();
        put("copied", pattern(10_000, 10)).await.unwrap();
        copied(copy(7, "copied", "bytes=0-99").await);
        s3.copy_object()
            .bucket(&bucket)
            .key("copied")
            .copy_source(format!("{bucket}/small"))
            .send()
            .await
            .unwrap();
        copied(copy(8, "copied", "bytes=500-5999").await);
        put("completed", pattern(10_000, 11)).await.unwrap();
        copied(copy(9, "completed", "bytes=0-99").await);
        let (one, done) = upload_parts(&s3, &bucket, "completed", &[1000]).await;
        s3.complete_multipart_upload()
            .bucket(&bucket)
            .key("completed")
            .upload_id(&one)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        copied(copy(10, "completed", "bytes=500-5999").await);
        let parts = s3
            .list_parts()
            .bucket(&bucket)
            .key("dst")
            .upload_id(&id)
            .send()
            .await
            .unwrap();
        let sizes: Vec<_> = parts.parts().iter().map(|p| p.size().unwrap()).collect();
        let sizes_then = [100, 1000, 100, 500, 100, 1000, 100, 500, 100, 500];
        assert_eq!(sizes, sizes_then, "{backend:?}");
        gw.stop().await;
    }
}

/// Where the tenant keeps no retention, HCP's retention headers that ask for no protection —
/// `x-hcp-retention: 0` ("Deletion Allowed"), `x-hcp-retentionhold: false` — are what every
/// object there has: the write is served (clients that always send them work), while one
/// asking for protection is 501 and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_that_asks_for_none_is_served_where_none_is_kept() {
    // (A user who may write and delete, without HCP's privileged permission: headers that ask
    // for nothing there need none.)
    let plain = "[[users]]\nusername = \"plain\"\npassword = \"plain-pw\"\n\
                 permissions = [{ tenant = \"t\", buckets = \"*\", allow = [\"read\", \"write\", \"delete\"] }]";
    let gw = start_with(Backend::Local, "", plain).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "no-retention").await;
    let admin = (USER, PASSWORD);
    let target = format!("/{bucket}/k");
    let plain = ("plain", "plain-pw");
    let asks_no_hold = [("x-hcp-retentionhold", "false")];
    let r = as_user(&gw, plain, "PUT", &target, &asks_no_hold, b"plain").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let hold = [("x-hcp-retentionhold", "true")];
    let held = format!("/{bucket}/held");
    let r = as_user(&gw, plain, "PUT", &held, &hold, b"x").await;
    r.assert_hcp_error(403, "AccessDenied");
    // `x-hcp-privileged` is a plain delete there.
    let privileged = [("x-hcp-privileged", "audit")];
    let r = as_user(&gw, plain, "DELETE", &target, &privileged, b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = as_user(&gw, admin, "HEAD", &target, &[], b"").await;
    assert_eq!(r.status, 404, "not deleted");
    let r = as_user(&gw, admin, "HEAD", &held, &[], b"").await;
    assert_eq!(r.status, 404, "stored");
    for asks_none in [
        &[("x-hcp-retention", "0")][..],
        &[
            ("x-hcp-retention", "Deletion Allowed"),
            ("x-hcp-retentionhold", "false"),
        ][..],
    ] {
        let r = as_user(&gw, admin, "PUT", &target, asks_none, b"kept").await;
        assert_eq!(r.status, 200, "{asks_none:?}: {}", r.text());
    }
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"kept");
    let protects = format!("/{bucket}/protected");
    for protection in [("x-hcp-retention", "-1"), ("x-hcp-retentionhold", "true")] {
        let r = as_user(&gw, admin, "PUT", &protects, &[protection], b"x").await;
        r.assert_hcp_error(501, "NotImplemented");
    }
    let r = as_user(&gw, admin, "HEAD", &protects, &[], b"").await;
    assert_eq!(r.status, 404, "nothing stored");
    // A recovery of an old version (a copy naming it onto its object, versioning enabled)
    // that asks for none is served too.
    set_versioning(
        &s3,
        &bucket,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    let version_of = |r: common::raw::RawResponse| {
        assert_eq!(r.status, 200, "{}", r.text());
        r.header("x-amz-version-id").expect("a version").to_string()
    };
    let old = version_of(as_user(&gw, admin, "PUT", &target, &[], b"one").await);
    version_of(as_user(&gw, admin, "PUT", &target, &[], b"two").await);
    let source = format!("{target}?versionId={old}");
    let recover = [
        ("x-amz-copy-source", source.as_str()),
        ("x-hcp-retention", "0"),
    ];
    version_of(as_user(&gw, admin, "PUT", &target, &recover, b"").await);
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"one");
}

/// A part copy copies the source named, whatever its key holds: `%XX`, `?versionId=`, `+`, a
/// space. (Ceph RGW decodes an UploadPartCopy's source twice: sent encoded once, the literal
/// key `%70ayroll.csv` was read as `payroll.csv` — another object than the one authorised —,
/// `k?versionId=zzz` as `k`'s version `zzz`.) Each part holds its own source's bytes, as the
/// backend keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_copy_copies_the_source_named_whatever_its_key_holds() {
    // (Not moto, which takes a literal `%XX` key's PUT for an internal error.)
    for backend in [Backend::Local, Backend::Rgw] {
        let Some(gw) = start(backend).await else {
            continue;
        };
        let s3 = gw.client();
        let bucket = new_bucket(&s3, "partkeys").await;
        let admin = (USER, PASSWORD);
        let sources = [
            ("payroll.csv", "SECRET"),
            ("%70ayroll.csv", "percent"),
            ("k", "plain k"),
            ("k?versionId=zzz", "question"),
            ("a+b", "plus"),
            ("a b", "space"),
        ];
        for (key, body) in sources {
            let put = s3.put_object().bucket(&bucket).key(key);
            let put = put.body(body.as_bytes().to_vec().into()).send().await;
            put.unwrap_or_else(|e| panic!("{backend:?} {key}: {e:?}"));
        }
        let view = common::view::BackendView::of(&gw);
        for (n, (key, body)) in sources.into_iter().enumerate() {
            let encoded: String = key
                .bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            let source = format!("/{bucket}/{encoded}");
            let target = format!("copy-{n}");
            let (id, _) = upload_parts(&s3, &bucket, &target, &[]).await;
            let part = format!("/{bucket}/{target}?partNumber=1&uploadId={id}");
            let copy = [("x-amz-copy-source", source.as_str())];
            let r = as_user(&gw, admin, "PUT", &part, &copy, b"").await;
            assert_eq!(r.status, 200, "{backend:?} {key}: {}", r.text());
            let text = r.text();
            let etag = text.split("<ETag>").nth(1).unwrap().split("</ETag>").next();
            let etag = etag.unwrap().replace("&quot;", "\"");
            let doc = format!(
                "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
            );
            let complete = format!("/{bucket}/{target}?uploadId={id}");
            let r = as_user(&gw, admin, "POST", &complete, &[], doc.as_bytes()).await;
            assert_eq!(r.status, 200, "{backend:?} {key}: {}", r.text());
            assert!(
                !r.text().contains("<Error>"),
                "{backend:?} {key}: {}",
                r.text()
            );
            let held = view.object(&bucket, &target).await;
            assert_eq!(held.as_deref(), Some(body.as_bytes()), "{backend:?} {key}");
        }
        gw.stop().await;
    }
}

/// Rule 26 for part copies: a part is at most `limits.max_part_bytes` (HCP: "up to and including
/// five gigabytes"), copied as sent — the whole source without a range, a range as it is
/// copied (to the source's end). 400 EntityTooLarge, no part made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_copied_is_held_to_a_part_s_size() {
    let gw = start_local_with("", "[limits]\nmax_part_bytes = 1024\n").await;
    let s3 = gw.client();
    let bucket = gw.with_bucket("partsize").await;
    let admin = (USER, PASSWORD);
    for (key, size) in [("big", 2048), ("small", 1000)] {
        let put = s3.put_object().bucket(&bucket).key(key);
        put.body(vec![b'x'; size].into()).send().await.unwrap();
    }
    let (id, _) = upload_parts(&s3, &bucket, "dst", &[]).await;
    let cases = [
        ("big", None, 400),
        ("big", Some("bytes=0-1024"), 400),
        ("big", Some("bytes=0-1023"), 200),
        ("big", Some("bytes=1500-9999"), 200),
        ("small", None, 200),
    ];
    let mut made = Vec::new();
    for (n, (source, range, status)) in cases.into_iter().enumerate() {
        let from = format!("/{bucket}/{source}");
        let mut headers = vec![("x-amz-copy-source", from.as_str())];
        headers.extend(range.map(|r| ("x-amz-copy-source-range", r)));
        let part = n + 1;
        let target = format!("/{bucket}/dst?partNumber={part}&uploadId={id}");
        let r = as_user(&gw, admin, "PUT", &target, &headers, b"").await;
        match status {
            200 => {
                assert_eq!(r.status, 200, "{source} {range:?}: {}", r.text());
                made.push(part as i32);
            }
            _ => r.assert_hcp_error(400, "EntityTooLarge"),
        }
    }
    // A source rewritten beside the gateway within the seconds its HEAD is kept is judged as
    // it is now: larger, it is refused (the copy is pinned to the source whose size was read).
    let view = common::view::BackendView::of(&gw);
    view.put_object(&bucket, "small", &[b'y'; 2048]).await;
    let from = format!("/{bucket}/small");
    let target = format!("/{bucket}/dst?partNumber=9&uploadId={id}");
    let copy = [("x-amz-copy-source", from.as_str())];
    let r = as_user(&gw, admin, "PUT", &target, &copy, b"").await;
    r.assert_hcp_error(400, "EntityTooLarge");
    let listed = s3.list_parts().bucket(&bucket).key("dst").upload_id(&id);
    let listed = listed.send().await.unwrap();
    let numbers: Vec<i32> = listed
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(numbers, made, "only the parts that fit were made");
}

/// A part copy's range judged inside its source on a HEAD kept a few seconds, of a source that
/// shrank beside the gateway meanwhile, reaches the backend outside it: HCP's answer is still
/// its table's (seed 000: a range that starts at or beyond the source's end is 400), never the
/// backend's 416, which that table does not have; no part is made. (Not moto, which copies
/// an empty part for a range past its source.)
async fn a_part_copy_past_a_shrunk_source_is_hcp_s_400(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "shrunk").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let put = s3.put_object().bucket(&bucket).key("src");
    put.body(b"0123456789".to_vec().into())
        .send()
        .await
        .unwrap();
    let (id, _) = upload_parts(&s3, &bucket, "dst", &[]).await;
    let from = format!("/{bucket}/src");
    let copy = |part: u32, range: &'static str| {
        let target = format!("/{bucket}/dst?partNumber={part}&uploadId={id}");
        let headers = [
            ("x-amz-copy-source", from.clone()),
            ("x-amz-copy-source-range", range.to_string()),
        ];
        let gw = &gw;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            as_user(gw, admin, "PUT", &target, &headers, b"").await
        }
    };
    let r = copy(1, "bytes=0-4").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let view = common::view::BackendView::of(&gw);
    view.put_object(&bucket, "src", b"012").await;
    let r = copy(2, "bytes=5-9").await;
    r.assert_hcp_error(400, "InvalidArgument");
    let listed = s3.list_parts().bucket(&bucket).key("dst").upload_id(&id);
    let listed = listed.send().await.unwrap();
    let numbers: Vec<i32> = listed
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(numbers, [1], "no part made past the source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_copy_past_a_shrunk_source_is_hcp_s_400_on_the_embedded_store() {
    a_part_copy_past_a_shrunk_source_is_hcp_s_400(Backend::Store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_copy_past_a_shrunk_source_is_hcp_s_400_on_rgw() {
    a_part_copy_past_a_shrunk_source_is_hcp_s_400(Backend::Rgw).await;
}

/// s3s-fs names a key's files after it (one file name per path segment, and metadata files
/// named by bucket and key in base64 — an upload's longer by its id): a new object whose names
/// it could not write is HCP's 400 KeyTooLong before anything is written — before, a PUT moved
/// its data into place and then failed (500, the object stored without its metadata), an
/// initiate left its record behind for good. A key that fits is stored as ever: one of 120
/// bytes (in a bucket of this name) by a PUT or a copy, though not by a multipart upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_s3s_fs_cannot_name_are_too_long_before_anything_is_written() {
    let gw = start(Backend::S3sFs).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "names").await;
    let admin = (USER, PASSWORD);
    let files = || std::fs::read_dir(gw.data_dir()).unwrap().count();
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/fits"), &[], b"src").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let before = files();
    let long = "k".repeat(200);
    let segment = format!("d/{}", "s".repeat(256));
    let from = format!("/{bucket}/fits");
    let copy = [("x-amz-copy-source", from.as_str())];
    for key in [long.as_str(), segment.as_str()] {
        let target = format!("/{bucket}/{key}");
        let r = as_user(&gw, admin, "PUT", &target, &[], b"data").await;
        r.assert_hcp_error(400, "KeyTooLong");
        let r = as_user(&gw, admin, "POST", &format!("{target}?uploads"), &[], b"").await;
        r.assert_hcp_error(400, "KeyTooLong");
        let r = as_user(&gw, admin, "PUT", &target, &copy, b"").await;
        r.assert_hcp_error(400, "KeyTooLong");
        let r = as_user(&gw, admin, "HEAD", &target, &[], b"").await;
        assert_eq!(r.status, 404);
    }
    assert_eq!(files(), before, "nothing written in the data root");
    let middle = format!("/{bucket}/{}", "m".repeat(120));
    let r = as_user(&gw, admin, "POST", &format!("{middle}?uploads"), &[], b"").await;
    r.assert_hcp_error(400, "KeyTooLong");
    let r = as_user(&gw, admin, "PUT", &middle, &[], b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, admin, "PUT", &middle, &copy, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, admin, "GET", &middle, &[], b"").await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"src"[..]));
}

/// An upload begun before the gateway restarts is completed after (s3s-fs records an upload's
/// initiator by the gateway's access key toward it, which was new at every start: the
/// complete was refused, 403); and a complete s3s-fs refuses before it ends the upload leaves
/// the parts under the numbers they were uploaded with (the gateway numbers them from 1 for
/// s3s-fs first: before, part 3 was left as part 2, part 2's bytes gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_on_s3s_fs_outlives_a_restart_and_a_refused_complete() {
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"local\"\nengine = \"s3s-fs\"\ndata_dir = {:?}\n",
        base_config(""),
        data.path().display().to_string()
    );
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::S3sFs).await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "restarts").await;
    let (id, parts) = upload_parts(&s3, &bucket, "k", &[5 << 20, 5 << 20, 7]).await;
    gw.stop().await;
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::S3sFs).await;
    let s3 = gw.client();
    let upload = (bucket.as_str(), "k", id.as_str());
    // Refused by s3s-fs itself (its record names another initiator): parts as they were.
    // (s3s-fs's own record of the upload: its id is not the one the gateway gives clients.)
    let records = std::fs::read_dir(data.path())
        .unwrap()
        .flatten()
        .map(|e| e.path());
    let mut records = records.filter(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        name.starts_with(".upload-") && name.ends_with(".json")
    });
    let record = records.next().expect("the upload's record");
    assert!(records.next().is_none());
    let initiator = std::fs::read(&record).unwrap();
    std::fs::write(&record, b"\"SOMEONEELSE\"").unwrap();
    let listed = vec![parts[0].clone(), parts[2].clone()];
    let e = complete_with(&s3, upload, listed.clone())
        .await
        .unwrap_err();
    assert_eq!(e.into_service_error().meta().code(), Some("AccessDenied"));
    let numbers = listed_parts(&s3, upload).await;
    assert_eq!(numbers, [(1, 5 << 20), (2, 5 << 20), (3, 7)]);
    std::fs::write(&record, initiator).unwrap();
    complete_with(&s3, upload, listed).await.unwrap();
    let mut joined = pattern(5 << 20, 1);
    joined.extend(pattern(7, 3));
    assert!(
        object_bytes(&s3, &bucket, "k").await == joined,
        "parts 1 and 3 joined"
    );
}

/// On s3s-fs a complete whose object cannot be written — its key a directory there, as `d`
/// is once `d/x` is stored — fails after s3s-fs has ended the upload: its part files go with
/// it (before, they stayed in the data root for good, the upload unknown to an abort).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_s3s_fs_complete_leaves_no_part_files() {
    let gw = start(Backend::S3sFs).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "unwritable").await;
    let (id, parts) = upload_parts(&s3, &bucket, "d", &[7]).await;
    let put = s3.put_object().bucket(&bucket).key("d/x");
    put.body(b"x".to_vec().into()).send().await.unwrap();
    let upload = (bucket.as_str(), "d", id.as_str());
    assert!(complete_with(&s3, upload, parts).await.is_err());
    let left = std::fs::read_dir(gw.data_dir()).unwrap().flatten();
    let named = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().into_owned();
    let left: Vec<String> = left
        .map(|e| named(&e))
        .filter(|n| n.starts_with(".upload"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// On s3s-fs a complete waits for a part of its upload still being written (its parts are
/// renumbered for s3s-fs, whose part joins read them by number: a part 3 landing while parts
/// 10, 20 and 30 were joined as 1, 2 and 3 was in the object), then joins the parts listed
/// alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3s_fs_complete_waits_for_a_part_being_written() {
    use tokio::io::AsyncWriteExt;
    let gw = start(Backend::S3sFs).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "turns").await;
    let made = s3.create_multipart_upload().bucket(&bucket).key("k");
    let id = made.send().await.unwrap().upload_id.unwrap();
    let mut listed = Vec::new();
    for (n, size) in [(10, 5 << 20), (20, 5 << 20), (30, 7)] {
        let part = s3.upload_part().bucket(&bucket).key("k").upload_id(&id);
        let part = part.part_number(n).body(pattern(size, n as u64).into());
        let etag = part.send().await.unwrap().e_tag.unwrap();
        let done = aws_sdk_s3::types::CompletedPart::builder();
        listed.push(done.part_number(n).e_tag(etag).build());
    }
    // Part 3, 200,000 bytes (streamed), half of it sent.
    let addr = gw.addr();
    let (ak, sk) = keys(USER, PASSWORD);
    let target = format!("/{bucket}/k?partNumber=3&uploadId={id}");
    let headers = V4::unsigned(&ak, &sk, &addr).sign(
        "PUT",
        target.as_bytes(),
        &[("content-length", "200000")],
    );
    let mut part = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = common::raw::request_head("PUT", target.as_bytes(), &headers);
    part.write_all(&head).await.unwrap();
    part.write_all(&[b'3'; 100_000]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let s3c = s3.clone();
    let (b, i) = (bucket.clone(), id.clone());
    let complete =
        tokio::spawn(
            async move { complete_with(&s3c, (b.as_str(), "k", i.as_str()), listed).await },
        );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !complete.is_finished(),
        "the complete waits for the part being written"
    );
    part.write_all(&[b'3'; 100_000]).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let _ = tokio::io::AsyncReadExt::read(&mut part, &mut answer).await;
    complete.await.unwrap().unwrap();
    let mut joined = pattern(5 << 20, 10);
    joined.extend(pattern(5 << 20, 20));
    joined.extend(pattern(7, 30));
    assert!(
        object_bytes(&s3, &bucket, "k").await == joined,
        "parts 10, 20 and 30 alone"
    );
}

/// HCP: parts "do not need to start at one and do not need to be consecutive" — a complete
/// listing parts 2, 3 and 7 (part 1 uploaded, not listed — but on RGW) makes the object of those three, in
/// that order; the object it replaces leaves nothing behind (its SHA-256, asked for, is not
/// answered for the new one); the unlisted part goes with the upload. On s3s-fs, which joins
/// parts 1 to n only and refused any other list once it had ended the upload (404, the
/// upload's parts left for good), a part too small is refused before the upload is touched.
async fn parts_need_not_start_at_one_nor_follow_each_other(backend: Backend) {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedPart};
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "numbers").await else {
        return;
    };
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Sha256);
    put.body(b"before".to_vec().into()).send().await.unwrap();
    let made = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    let id = made.upload_id().unwrap().to_string();
    let bodies = [
        (1, pattern(10, 1)),
        (2, pattern(5 << 20, 2)),
        (3, pattern(5 << 20, 3)),
        (7, b"tail".to_vec()),
    ];
    let mut listed = Vec::new();
    // (Ceph RGW refuses a complete that leaves out a part it holds, InvalidPart: README.)
    let skip_unlisted = usize::from(backend == Backend::Rgw);
    for (n, body) in &bodies[skip_unlisted..] {
        let part = s3
            .upload_part()
            .bucket(&bucket)
            .key("k")
            .upload_id(&id)
            .part_number(*n);
        let etag = part
            .body(body.clone().into())
            .send()
            .await
            .unwrap()
            .e_tag
            .unwrap();
        listed.push(CompletedPart::builder().part_number(*n).e_tag(etag).build());
    }
    let upload = (bucket.as_str(), "k", id.as_str());
    if backend == Backend::S3sFs {
        // Part 1 (10 bytes) before another: too small — HCP's 200 with the error document
        // (seed 001) — and the upload is still there.
        let too_small = vec![listed[0].clone(), listed[3].clone()];
        let minimum = "minimum part size of 1048576";
        refused_too_small(&s3, (&bucket, "k", &id), too_small, minimum).await;
        assert_eq!(listed_parts(&s3, upload).await.len(), 4);
        assert_eq!(object_bytes(&s3, &bucket, "k").await, b"before");
    }
    complete_with(&s3, upload, listed[1 - skip_unlisted..].to_vec())
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_sha256(), None, "the object before's checksum");
    let data = got.body.collect().await.unwrap().into_bytes();
    let joined: Vec<u8> = bodies[1..].iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(
        data[..] == joined[..],
        "{} bytes, not the three parts joined",
        data.len()
    );
    let uploads = s3
        .list_parts()
        .bucket(&bucket)
        .key("k")
        .upload_id(&id)
        .send()
        .await;
    assert!(uploads.is_err(), "the upload ended");
    if backend == Backend::S3sFs {
        let left = std::fs::read_dir(gw.data_dir()).unwrap().flatten();
        let parts = left.filter(|e| e.file_name().to_string_lossy().starts_with(".upload_id-"));
        assert_eq!(parts.count(), 0, "no part file left");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_need_not_start_at_one_nor_follow_each_other_on_s3s_fs() {
    parts_need_not_start_at_one_nor_follow_each_other(Backend::S3sFs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_need_not_start_at_one_nor_follow_each_other_on_the_embedded_store() {
    parts_need_not_start_at_one_nor_follow_each_other(Backend::Store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_need_not_start_at_one_nor_follow_each_other_on_rgw() {
    parts_need_not_start_at_one_nor_follow_each_other(Backend::Rgw).await;
}

/// HCP asks the delete permission of an abort: a bucket administrator who may read and delete,
/// but not write, ends an upload another replica began (listed unattributed there), as README
/// promises — abandoned uploads can always be cleaned up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_who_deletes_ends_an_unattributed_upload() {
    let cleaner = r#"
[[users]]
username = "cleaner"
password = "cleaner-password"
permissions = [{ tenant = "t", buckets = "shared-*", allow = ["read", "admin", "delete"] }]
"#;
    // (Two replicas of one backend.)
    let Some(a) = start_with_tenant(Backend::Rgw, "", cleaner).await else {
        return;
    };
    let b = start_with_tenant(Backend::Rgw, "", cleaner).await.unwrap();
    let bucket = unique_bucket("shared-clean");
    let admin_a = a.client();
    admin_a
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let (wk, ws) = keys(WRITER, PASSWORD);
    let writer_a = a.client_with(&wk, &ws);
    let (id, _) = upload_parts(&writer_a, &bucket, "k", &[1024]).await;
    let (ck, cs) = keys("cleaner", "cleaner-password");
    let cleaner_b = b.client_with(&ck, &cs);
    let unattributed = only_listed_upload(&cleaner_b, &bucket).await;
    assert_ne!(unattributed, id);
    cleaner_b
        .abort_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .upload_id(&unattributed)
        .send()
        .await
        .unwrap();
    assert_upload_gone(&writer_a, &bucket, "k", &id).await;
    a.stop().await;
    b.stop().await;
}

/// An upload id names its object too (HCP: an id "not associated with the object specified in
/// the request" is 404 NoSuchUpload): a part, a listing, a complete or an abort under another
/// key is refused and makes nothing — on every backend (s3s-fs knew an upload by its id alone).
async fn an_upload_is_its_object_s(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "uploadkey").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let (id, _) = upload_parts(&s3, &bucket, "a", &[]).await;
    let other = format!("/{bucket}/other");
    let doc = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part></CompleteMultipartUpload>";
    for (method, query, body) in [
        ("PUT", format!("?partNumber=1&uploadId={id}"), &b"part"[..]),
        ("GET", format!("?uploadId={id}"), b""),
        ("POST", format!("?uploadId={id}"), doc.as_bytes()),
        ("DELETE", format!("?uploadId={id}"), b""),
    ] {
        let r = as_user(&gw, admin, method, &format!("{other}{query}"), &[], body).await;
        r.assert_hcp_error(404, "NoSuchUpload");
    }
    // The upload is its object's still, and nothing was made under the other key.
    let part = format!("/{bucket}/a?partNumber=1&uploadId={id}");
    let r = as_user(&gw, admin, "PUT", &part, &[], b"part").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = s3.list_parts().bucket(&bucket).key("a").upload_id(&id);
    assert_eq!(listed.send().await.unwrap().parts().len(), 1);
    let view = common::view::BackendView::of(&gw);
    assert!(view.object(&bucket, "other").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_its_object_s_on_s3s_fs() {
    an_upload_is_its_object_s(Backend::S3sFs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_its_object_s_on_the_embedded_store() {
    an_upload_is_its_object_s(Backend::Store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_its_object_s_on_rgw() {
    an_upload_is_its_object_s(Backend::Rgw).await;
}

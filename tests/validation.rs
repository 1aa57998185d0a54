//! HCP's request rules (docs/validation.md), each answered before the backend: status, code and
//! body shape are checked, and the backend-request count proves nothing was forwarded.

mod common;

use std::time::SystemTime;

use common::raw::{send, V4};
use common::*;
use hcp_s3_gateway::sigv4;

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
    let b = unique_bucket("rules");
    gw.client().create_bucket().bucket(&b).send().await.unwrap();
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let long_key = "k".repeat(1025);
    let big_meta = "v".repeat(2100);
    let cases = vec![
        case(39, "GET", format!("/{b}?policy"), 501, "NotImplemented"),
        case(39, "PUT", format!("/{b}/k?tagging"), 501, "NotImplemented")
            .header("content-length", "0"),
        case(39, "GET", format!("/{b}?website"), 501, "NotImplemented"),
        case(14, "PUT", "/bad_name".to_string(), 400, "InvalidBucketName"),
        case(18, "PUT", format!("/{b}/{long_key}"), 400, "KeyTooLong")
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
        case(21, "POST", format!("/{b}/k?uploads"), 501, "NotImplemented")
            .header("x-amz-acl", "everyone"),
        case(22, "PUT", format!("/{b}?acl"), 400, "InvalidArgument")
            .header("x-amz-acl", "everyone"),
        case(26, "PUT", format!("/{b}/k"), 400, "EntityTooLarge")
            .header("content-length", "6000000000")
            .body(b""),
        case(35, "GET", format!("/{b}/k"), 400, "InvalidArgument")
            .header("if-match", "\"a\"")
            .header("if-none-match", "\"b\""),
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
    for c in cases {
        let before = gw
            .gw
            .as_ref()
            .unwrap()
            .gateway
            .metrics
            .backend_requests("b");
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
        assert_eq!(
            gw.gw
                .as_ref()
                .unwrap()
                .gateway
                .metrics
                .backend_requests("b"),
            before,
            "{what}: reached the backend"
        );
    }
    gw.stop().await;
}

//! The gateway's own behaviour: authentication baseline, HCP's error body and headers, addressing,
//! tenant bucket prefixes, admin endpoints, the CLI, an unreachable backend, and the aws cli
//! against the embedded default configuration.

mod common;

use std::path::Path;
use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use hcp_s3_gateway::config::{hcp_access_key, hcp_secret_key};

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-frame-options", "SAMEORIGIN"),
    ("x-content-type-options", "nosniff"),
    ("x-xss-protection", "1; mode=block"),
    ("x-dns-prefetch-control", "off"),
    ("x-download-options", "noopen"),
    ("pragma", "no-cache"),
];

/// What curl saw: status, lower-cased headers, body.
struct Curl {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Curl {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs curl, signing with SigV4 (curl's own implementation) when `keys` is given.
fn curl(keys: Option<(&str, &str)>, extra: &[&str], url: &str) -> Curl {
    let dir = tempfile::tempdir().unwrap();
    let (h, b) = (dir.path().join("h"), dir.path().join("b"));
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "-D"])
        .arg(&h)
        .arg("-o")
        .arg(&b)
        .args(["-w", "%{http_code}"]);
    if let Some((ak, sk)) = keys {
        cmd.args([
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            &format!("{ak}:{sk}"),
        ]);
    }
    let out = cmd
        .args(extra)
        .arg(url)
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let raw = std::fs::read_to_string(&h).unwrap();
    // The last header block is the final answer (a 100 Continue may precede it).
    let block = raw
        .trim_end()
        .rsplit("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    let headers = block
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Curl {
        status,
        headers,
        body: std::fs::read(&b).unwrap_or_default(),
    }
}

fn user_keys() -> (String, String) {
    (hcp_access_key(USER), hcp_secret_key(PASSWORD))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_before_anything_is_forwarded() {
    let gw = start(Backend::Local).await.unwrap();
    let bucket = gw.with_bucket("auth").await;
    let (ak, _) = user_keys();

    let wrong_secret = gw.client_with(&ak, "0123456789abcdef0123456789abcdef");
    let err = wrong_secret
        .put_object()
        .bucket(&bucket)
        .key("forged")
        .body(ByteStream::from(pattern(300_000, 1)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (403, "SignatureDoesNotMatch".into()));
    let err = gw
        .client()
        .head_object()
        .bucket(&bucket)
        .key("forged")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err).0, 404, "a forged PUT must store nothing");

    let unknown = gw.client_with("bm9ib2R5", "0123456789abcdef0123456789abcdef");
    let err = unknown
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (403, "InvalidAccessKeyId".into()));

    // The error body has HCP's shape, whatever client reads it.
    let r = curl(
        Some((&ak, "wrong-secret")),
        &[],
        &format!("{}/{bucket}/", gw.endpoint),
    );
    assert_eq!(r.status, 403);
    assert_hcp_error_body(&r.text(), "SignatureDoesNotMatch");
    assert!(
        !r.text().contains("wrong-secret"),
        "secrets never appear in error bodies"
    );

    let r = curl(None, &[], &format!("{}/{bucket}/", gw.endpoint));
    assert_eq!(r.status, 403);
    assert_hcp_error_body(&r.text(), "AccessDenied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_match_its_signed_digest_is_refused_and_not_stored() {
    let gw = start(Backend::Local).await.unwrap();
    let bucket = gw.with_bucket("digest").await;
    let (ak, sk) = user_keys();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, pattern(2 * 1024 * 1024, 4)).unwrap();
    // Signed as the digest of another body: the signature is valid, the payload is not.
    let other = hcp_s3_gateway::sig::v4::sha256_hex(b"something else");
    let r = curl(
        Some((&ak, &sk)),
        &[
            "-X",
            "PUT",
            "-H",
            &format!("x-amz-content-sha256: {other}"),
            "--data-binary",
            &format!("@{}", file.display()),
        ],
        &format!("{}/{bucket}/tampered", gw.endpoint),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_hcp_error_body(&r.text(), "BadDigest");
    let err = gw
        .client()
        .head_object()
        .bucket(&bucket)
        .key("tampered")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err).0,
        404,
        "the backend must not end up with the object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_on_success_error_and_head() {
    let gw = start(Backend::Local).await.unwrap();
    let bucket = gw.with_bucket("hdr").await;
    let s3 = gw.client();
    s3.put_object()
        .bucket(&bucket)
        .key("k")
        .body(ByteStream::from_static(b"data"))
        .send()
        .await
        .unwrap();
    let (ak, sk) = user_keys();
    let base = format!("{}/{bucket}", gw.endpoint);
    let ok = curl(Some((&ak, &sk)), &[], &format!("{base}/k"));
    let head = curl(Some((&ak, &sk)), &["-I"], &format!("{base}/k"));
    let missing = curl(Some((&ak, &sk)), &[], &format!("{base}/nope"));
    let head_missing = curl(Some((&ak, &sk)), &["-I"], &format!("{base}/nope"));
    assert_eq!(
        (ok.status, head.status, missing.status, head_missing.status),
        (200, 200, 404, 404)
    );
    assert_eq!(ok.body, b"data");
    for r in [&ok, &head, &missing, &head_missing] {
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                r.header(name),
                Some(*value),
                "{name} on a {} answer",
                r.status
            );
        }
        assert!(r
            .header("content-security-policy")
            .is_some_and(|v| v.starts_with("default-src 'self';")));
        // (HSTS is HTTPS's alone.)
        assert_eq!(r.header("strict-transport-security"), None);
        // (HCP's own, never the backend's.)
        let servers: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n == "server")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(servers, ["HCP V9.0.0.2"]);
        let date = r.header("date").expect("Date");
        assert!(
            date.ends_with(" GMT") && httpdate::parse_http_date(date).is_ok(),
            "{date}"
        );
        assert!(r
            .header("x-amz-request-id")
            .is_some_and(|id| id.len() == 16));
    }
    for r in [&ok, &head] {
        assert_eq!(
            r.header("cache-control"),
            Some("no-cache, no-store, must-revalidate")
        );
        assert_eq!(r.header("expires"), Some("Thu, 01 Jan 1970 00:00:00 GMT"));
    }
    for r in [&missing, &head_missing] {
        assert!(
            r.header("cache-control").is_none() && r.header("expires").is_none(),
            "seed 002: not on errors"
        );
    }
    assert_hcp_error_body(&missing.text(), "NoSuchKey");
    assert!(
        missing.text().contains("<Key>nope</Key>"),
        "{}",
        missing.text()
    );
    // curl -I writes the header block into its output; a body would follow it.
    assert!(
        !head_missing.text().contains("<Error>"),
        "HEAD answers carry no body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_and_virtual_host_addressing() {
    let gw = start(Backend::Local).await.unwrap();
    let bucket = gw.with_bucket("vhost").await;
    let (ak, sk) = user_keys();
    let port = gw.s3_port();
    let connect = format!("::127.0.0.1:{port}");
    // bucket.tenant.domain, /key
    let put = curl(
        Some((&ak, &sk)),
        &[
            "--connect-to",
            &connect,
            "-X",
            "PUT",
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "--data-binary",
            "via virtual host",
        ],
        &format!("http://{bucket}.t.hcp.test/dir/obj"),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    // tenant.domain, /bucket/key
    let get = curl(
        Some((&ak, &sk)),
        &["--connect-to", &connect],
        &format!("http://t.hcp.test/{bucket}/dir/obj"),
    );
    assert_eq!((get.status, get.text().as_str()), (200, "via virtual host"));
    // a listing through the virtual host names the bucket as the client knows it
    let list = curl(
        Some((&ak, &sk)),
        &["--connect-to", &connect],
        &format!("http://{bucket}.t.hcp.test/?list-type=2"),
    );
    assert!(
        list.text().contains(&format!("<Name>{bucket}</Name>")),
        "{}",
        list.text()
    );
    // a complete through the virtual host names its object as HCP does: bucket in the host,
    // then `hs3` (manual: `https://finance.europe.hcp.example.com/hs3/acctg/Rules…`)
    let vh = |path: &str| format!("http://{bucket}.t.hcp.test/{path}");
    let keys = Some((ak.as_str(), sk.as_str()));
    let to = ["--connect-to", connect.as_str()];
    let made = curl(
        keys,
        &[&to[..], &["-X", "POST"]].concat(),
        &vh("dir/mpu?uploads="),
    );
    assert_eq!(made.status, 200, "{}", made.text());
    let id = made
        .text()
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let unsigned = ["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"];
    let part = [&to[..], &unsigned, &["-X", "PUT", "--data-binary", "one"]].concat();
    let part = curl(
        keys,
        &part,
        &vh(&format!("dir/mpu?partNumber=1&uploadId={id}")),
    );
    let etag = part.header("etag").unwrap().to_string();
    let doc = format!("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>");
    let complete = [&to[..], &unsigned, &["-X", "POST", "--data-binary", &doc]].concat();
    let done = curl(keys, &complete, &vh(&format!("dir/mpu?uploadId={id}")));
    let location = format!("<Location>http://{bucket}.t.hcp.test/hs3/dir/mpu</Location>");
    assert!(done.text().contains(&location), "{}", done.text());
    // a host naming an unknown tenant is refused
    let other = curl(
        Some((&ak, &sk)),
        &["--connect-to", &connect],
        &format!("http://ghost.hcp.test/{bucket}/dir/obj"),
    );
    assert_eq!(other.status, 403);
    assert_hcp_error_body(&other.text(), "AccessDenied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_prefixes_keep_tenants_apart_on_one_backend() {
    let tag = unique_bucket("p");
    let Some(a) = start_with(Backend::Rgw, &format!("{tag}-a-"), "").await else {
        return;
    };
    let b = start_with(Backend::Rgw, &format!("{tag}-b-"), "")
        .await
        .unwrap();
    let (sa, sb) = (a.client(), b.client());
    // The same client-visible name in two tenants is two backend buckets.
    sa.create_bucket().bucket("shared").send().await.unwrap();
    sb.create_bucket().bucket("shared").send().await.unwrap();
    sb.create_bucket().bucket("only-b").send().await.unwrap();
    sa.put_object()
        .bucket("shared")
        .key("k")
        .body(ByteStream::from_static(b"from a"))
        .send()
        .await
        .unwrap();
    let names = |out: aws_sdk_s3::operation::list_buckets::ListBucketsOutput| {
        let mut v: Vec<String> = out
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_string))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(sa.list_buckets().send().await.unwrap()), ["shared"]);
    assert_eq!(
        names(sb.list_buckets().send().await.unwrap()),
        ["only-b", "shared"]
    );
    let err = sb
        .get_object()
        .bucket("shared")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err),
        (404, "NoSuchKey".into()),
        "tenant b must not see tenant a's object"
    );

    let listing = sa.list_objects_v2().bucket("shared").send().await.unwrap();
    assert_eq!(listing.name(), Some("shared"));
    // copy sources name client buckets too
    sa.copy_object()
        .bucket("shared")
        .key("copy")
        .copy_source("shared/k")
        .send()
        .await
        .unwrap();
    assert_eq!(object_bytes(&sa, "shared", "copy").await, b"from a");
    let up = sa
        .create_multipart_upload()
        .bucket("shared")
        .key("m")
        .send()
        .await
        .unwrap();
    assert_eq!(up.bucket(), Some("shared"));
    let uploads = sa
        .list_multipart_uploads()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    assert_eq!(uploads.bucket(), Some("shared"));
    sa.abort_multipart_upload()
        .bucket("shared")
        .key("m")
        .upload_id(up.upload_id().unwrap())
        .send()
        .await
        .unwrap();
    for k in ["k", "copy"] {
        sa.delete_object()
            .bucket("shared")
            .key(k)
            .send()
            .await
            .unwrap();
    }
    sa.delete_bucket().bucket("shared").send().await.unwrap();
    sb.delete_bucket().bucket("shared").send().await.unwrap();
    sb.delete_bucket().bucket("only-b").send().await.unwrap();
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bucket_names_and_methods_are_refused_before_the_backend() {
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    for bad in ["ab", "has.dot", "-leading", "xn--punycode"] {
        let err = s3.create_bucket().bucket(bad).send().await.unwrap_err();
        assert_eq!(sdk_error(&err), (400, "InvalidBucketName".into()), "{bad}");
    }
    let (ak, sk) = user_keys();
    let r = curl(
        Some((&ak, &sk)),
        &["-X", "DELETE"],
        &format!("{}/", gw.endpoint),
    );
    assert_eq!(r.status, 405);
    assert_hcp_error_body(&r.text(), "MethodNotAllowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_backend_is_service_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:{port}\"\naccess_key = \"k\"\nsecret_key = \"s\"\nconnect_timeout_ms = 500\n",
        base_config("")
    );
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Rgw).await;
    let (ak, sk) = user_keys();
    let r = curl(
        Some((&ak, &sk)),
        &[],
        &format!("{}/some-bucket/key", gw.endpoint),
    );
    assert_eq!(r.status, 503);
    assert_hcp_error_body(&r.text(), "ServiceUnavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        !r.text().contains(&port.to_string()),
        "backend address leaked: {}",
        r.text()
    );
}

/// Metrics scraped after real traffic: requests by operation/tenant/backend/status/code, the
/// backend code → HCP code rewrites, bytes, latencies, auth failures by reason, backend
/// connections, cache lookups and backend reachability, with the values the traffic implies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_report_health_and_metrics() {
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "metrics").await;
    s3.put_object()
        .bucket(&bucket)
        .key("k")
        .body(vec![7u8; 1000].into())
        .send()
        .await
        .unwrap();
    s3.get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e).0, 404);
    let _ = gw.client_with("bm9ib2R5", "x").list_buckets().send().await;
    // A sub-resource the gateway does not offer (tagging, rule 39): 501, counted under its name.
    let tagging = s3
        .get_bucket_tagging()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&tagging), (501, "NotImplemented".into()));
    // A copy, a complete and a form: the backend's time is counted for them too.
    s3.copy_object()
        .bucket(&bucket)
        .key("copied")
        .copy_source(format!("{bucket}/k"))
        .send()
        .await
        .unwrap();
    let (id, parts) = upload_parts(&s3, &bucket, "parts", &[4]).await;
    let parts = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key("parts")
        .upload_id(&id)
        .multipart_upload(parts)
        .send()
        .await
        .unwrap();
    let (ak, sk) = keys(USER, PASSWORD);
    let form = common::raw::signed_form_body((&ak, &sk), &bucket, (&[("key", "f")], &[]), b"f");
    let r = common::raw::post_multipart(&gw.addr(), &bucket, &form).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let get = |path: &str| curl(None, &[], &format!("{}{path}", gw.admin));
    assert_eq!(get("/healthz").status, 200);
    assert_eq!(get("/readyz").status, 200);
    let metrics = get("/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
    };
    for (series, expected) in [
        (
            r#"hcp_gateway_requests_total{backend="b",code="",operation="PutObject",status="200",tenant="t"}"#,
            1.0,
        ),
        (
            r#"hcp_gateway_requests_total{backend="b",code="NoSuchKey",operation="GetObject",status="404",tenant="t"}"#,
            1.0,
        ),
        (
            r#"hcp_gateway_code_rewrites_total{backend="b",backend_code="NoSuchKey",hcp_code="NoSuchKey"}"#,
            1.0,
        ),
        (
            r#"hcp_gateway_auth_failures_total{reason="InvalidAccessKeyId"}"#,
            1.0,
        ),
        (
            r#"hcp_gateway_received_bytes_total{operation="PutObject"}"#,
            1000.0,
        ),
        (
            r#"hcp_gateway_backend_duration_seconds_count{backend="b",operation="PutObject"}"#,
            1.0,
        ),
        (
            r#"hcp_gateway_backend_duration_seconds_count{backend="b",operation="CopyObject"}"#,
            1.0,
        ),
        (
            r#"hcp_gateway_backend_duration_seconds_count{backend="b",operation="CompleteMultipartUpload"}"#,
            1.0,
        ),
        (
            r#"hcp_gateway_backend_duration_seconds_count{backend="b",operation="PostObject"}"#,
            1.0,
        ),
        (
            r#"hcp_gateway_request_duration_seconds_count{operation="CreateBucket"}"#,
            1.0,
        ),
        (r#"hcp_gateway_backend_up{backend="b"}"#, 1.0),
        (
            r#"hcp_gateway_requests_total{backend="",code="NotImplemented",operation="BucketSubresource?tagging",status="501",tenant="t"}"#,
            1.0,
        ),
        ("hcp_gateway_requests_in_flight", 0.0),
    ] {
        assert_eq!(value(series), expected, "{series}");
    }
    // The GET's body and the 404's error document went out.
    assert!(value(r#"hcp_gateway_sent_bytes_total{operation="GetObject"}"#) > 1000.0);
    // Four requests signed by one user on one day: one signing key derived, the rest cached.
    assert!(value(r#"hcp_gateway_cache_lookups_total{cache="signing_key",result="miss"}"#) >= 1.0);
    assert!(value(r#"hcp_gateway_cache_lookups_total{cache="signing_key",result="hit"}"#) >= 3.0);
    assert!(value(r#"hcp_gateway_backend_connections_total{backend="b",reused="true"}"#) >= 1.0);
    // Series of events that have not happened yet read 0 rather than being absent.
    for series in [
        r#"hcp_gateway_overload_refusals_total{limit="per-client"}"#,
        r#"hcp_gateway_auth_failures_total{reason="SignatureDoesNotMatch"}"#,
        r#"hcp_gateway_backend_retries_total{backend="b",reason="connect"}"#,
        r#"hcp_gateway_config_reloads_total{result="error"}"#,
    ] {
        assert_eq!(value(series), 0.0, "{series}");
    }
    // The process and the build are described.
    assert!(value("process_resident_memory_bytes") > 0.0);
    assert!(value("process_open_fds") > 0.0);
    let build = text
        .lines()
        .find(|l| l.starts_with("hcp_gateway_build_info{"))
        .unwrap_or_else(|| panic!("no build info in\n{text}"));
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build.ends_with(" 1"),
        "{build}"
    );
    assert!(!build.contains("commit=\"\""), "{build}");
    // promtool (Prometheus's own linter) finds nothing to object to.
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .output_with_stdin(text.as_bytes())
        .expect("promtool (Debian's prometheus package; scripts/install-test-deps.sh)");
    assert!(
        promtool.status.success() && promtool.stdout.is_empty() && promtool.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
    assert_eq!(get("/nope").status, 404);
}

/// Runs a command with `input` on its standard input.
trait WithStdin {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::io::Result<std::process::Output>;
}

impl WithStdin for std::process::Command {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::io::Result<std::process::Output> {
        use std::io::Write;
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        child.stdin.take().expect("stdin piped").write_all(input)?;
        child.wait_with_output()
    }
}

/// `/readyz` follows the backend: not ready while it refuses connections, ready again once it
/// is back (probed every two seconds), and not ready while it accepts connections but does not
/// answer HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_backend() {
    /// A backend that answers every request 200 (`answers`), or takes connections and drops
    /// them without a word.
    async fn fake_backend(addr: &str, answers: bool) -> tokio::task::JoinHandle<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                if answers {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        let _ = conn.read(&mut buf).await;
                        let _ = conn
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                    });
                }
            }
        })
    }
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap().to_string();
    drop(probe);
    let backend = fake_backend(&addr, true).await;
    let text = config_with_endpoint(&format!("http://{addr}")).replacen(
        "[server]\n",
        "[server]\nreadiness = \"backends\"\n",
        1,
    );
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await;
    let url = format!("{}/readyz", gw.admin);
    let wait_for = |status: u16| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let r = curl(None, &[], &url);
                if r.status == status {
                    return r.text();
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "readyz stayed {}",
                    r.status
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        })
    };
    wait_for(200).await.unwrap();
    backend.abort();
    let _ = backend.await;
    let down = wait_for(503).await.unwrap();
    assert!(down.contains("backend unreachable: b"), "{down}");
    let backend = fake_backend(&addr, true).await;
    wait_for(200).await.unwrap();
    backend.abort();
    let _ = backend.await;
    let _backend = fake_backend(&addr, false).await;
    // It accepts connections but answers nothing: requests fail (503), and the probe, which asks
    // for an HTTP answer, finds it unreachable — not the failed requests, which a client could
    // provoke (tests/authorised.rs).
    for _ in 0..3 {
        let e = gw.client().list_buckets().send().await.unwrap_err();
        assert_eq!(sdk_error(&e), (503, "ServiceUnavailable".into()));
    }
    wait_for(503).await.unwrap();
}

/// A backend whose name does not resolve when the gateway starts (a Service created in the
/// same release) leaves the gateway running, naming the backend: ready by default (readiness is
/// the process's — every replica shares the backend, and judging it would take them all out of
/// service at once), not ready where `readiness = "backends"`; requests to it are HCP's 503 at
/// once, and nothing else is held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_name_that_does_not_resolve_yet_is_reported_by_readyz() {
    let text = config_with_endpoint("http://not-created-yet.invalid:9000");
    for (readiness, status, said) in [
        ("", 200, "ready; backend unreachable: b"),
        (
            "readiness = \"backends\"\n",
            503,
            "not ready: backend unreachable: b",
        ),
    ] {
        let text = text.replacen("[server]\n", &format!("[server]\n{readiness}"), 1);
        let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await;
        let url = format!("{}/readyz", gw.admin);
        let ready = tokio::task::spawn_blocking(move || curl(None, &[], &url))
            .await
            .unwrap();
        assert_eq!(ready.status, status, "{readiness}");
        assert!(ready.text().contains(said), "{readiness}: {}", ready.text());
    }
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await;
    let e = gw.client().list_buckets().send().await.unwrap_err();
    assert_eq!(sdk_error(&e), (503, "ServiceUnavailable".into()));
    let r = as_user(&gw, (USER, PASSWORD), "GET", "/", &[], b"").await;
    r.assert_hcp_error(503, "ServiceUnavailable");
}

/// `shutdown_delay_seconds`: on shutdown `/readyz` says 503 at once while the S3 listener still
/// accepts and serves new connections for the delay (a load balancer's time to notice), each
/// answer then closing its connection (a client kept on an open one would meet it closed under
/// its next request once the drain begins); then the listener closes and the drain begins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_not_ready_before_it_stops_accepting() {
    let dir = tempfile::tempdir().unwrap();
    let entry = Backend::Local
        .config_entry(&dir.path().join("data"))
        .unwrap();
    let text = base_config("").replace("[server]\n", "[server]\nshutdown_delay_seconds = 2\n");
    let gw = start_text(&format!("{text}\n{entry}"), dir, Backend::Local).await;
    let (addr, admin) = (gw.addr(), gw.admin.clone());
    let s3 = gw.client();
    let (ak, sk) = keys(USER, PASSWORD);
    let signed = || common::raw::V4::unsigned(&ak, &sk, &addr).sign("GET", b"/", &[]);
    let mut kept = common::raw::Connection::open(&addr).await;
    let r = kept.request("GET", b"/", &signed()).await;
    assert_eq!(
        (r.status, r.header("connection")),
        (200, Some("keep-alive")),
        "{}",
        r.text()
    );
    // A PUT admitted before the stop (a body streamed, not read whole first), its body
    // finished after: its answer closes too.
    let bucket = gw.with_bucket("stopping").await;
    let target = format!("/{bucket}/k");
    let put = common::raw::V4::unsigned(&ak, &sk, &addr).sign(
        "PUT",
        target.as_bytes(),
        &[("content-length", "1048576")],
    );
    let mut under_way = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = common::raw::request_head("PUT", target.as_bytes(), &put);
    tokio::io::AsyncWriteExt::write_all(&mut under_way, &head)
        .await
        .unwrap();
    let body = vec![b'x'; 1 << 20];
    tokio::io::AsyncWriteExt::write_all(&mut under_way, &body[..1 << 19])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(gw.stop());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tokio::io::AsyncWriteExt::write_all(&mut under_way, &body[1 << 19..])
        .await
        .unwrap();
    let mut answer = vec![0; 4096];
    let n = tokio::io::AsyncReadExt::read(&mut under_way, &mut answer)
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    let url = format!("{admin}/readyz");
    let ready = tokio::task::spawn_blocking(move || curl(None, &[], &url))
        .await
        .unwrap();
    assert_eq!(
        (ready.status, ready.text().as_str()),
        (503, "not ready: shutting down\n")
    );
    assert!(
        s3.list_buckets().send().await.is_ok(),
        "served while not ready"
    );
    let r = kept.request("GET", b"/", &signed()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"), "served, then closed");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    stopping.await.unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "still accepting after the delay"
    );
}

/// The admin listener answers while the gateway starts: `/readyz` is 503 (and `/healthz` 200)
/// while the backends are probed and the records buckets prepared — here for the 5 s a backend
/// that accepts connections and never answers holds the preparation —, 200 once it serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_503_while_the_gateway_starts() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            held.push(c);
        }
    });
    // (A port free a moment ago: the admin listener's address must be known before start
    // returns.)
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = base_config("")
        .replace(
            "admin_listen = \"127.0.0.1:0\"",
            &format!("admin_listen = \"127.0.0.1:{admin_port}\""),
        )
        .replace(
            "bucket_prefix = \"\"\n",
            "bucket_prefix = \"\"\nrecords_bucket = \"gw-records\"\n",
        );
    let entry = format!(
        "[[backends]]\nname = \"b\"\nkind = \"s3\"\ndialect = \"aws\"\nendpoint = \"http://{backend}\"\n\
         access_key = \"a\"\nsecret_key = \"s\"\nregion = \"us-east-1\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let whole = format!("{text}\n{entry}");
    let starting = tokio::spawn(async move { start_text(&whole, dir, Backend::Local).await });
    let admin = format!("127.0.0.1:{admin_port}");
    let mut listening = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if tokio::net::TcpStream::connect(&admin).await.is_ok() {
            listening = true;
            break;
        }
    }
    assert!(
        listening,
        "the admin listener answers while the gateway starts"
    );
    let probe = |path: &'static str| {
        let admin = admin.clone();
        async move { common::raw::send(&admin, "GET", path.as_bytes(), &[], vec![]).await }
    };
    assert_eq!(probe("/readyz").await.status, 503);
    assert_eq!(probe("/healthz").await.status, 200);
    assert!(!starting.is_finished(), "still starting");
    let _gw = starting.await.unwrap();
    let r = probe("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

fn gateway_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hcp-s3-gateway")
}

#[test]
fn check_config_reports_every_problem_and_accepts_the_shipped_default() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ok = Command::new(gateway_bin())
        .args(["--check-config", "--config"])
        .arg(root.join("config.toml"))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("OK"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"nowhere\"\ntls_cert_file = \"missing.pem\"\ntls_key_file = \"missing.key\"\n[[tenants]]\nname = \"t\"\nbackend = \"missing\"\n[[users]]\nusername = \"u\"\n",
    )
    .unwrap();
    let out = Command::new(gateway_bin())
        .args(["--check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("6 problem(s)"), "{err}");
    for needle in [
        "server.listen",
        "missing.pem",
        "backend \"missing\"",
        "users[0]",
        "addressing: give domains or a default_tenant",
        "auth.upload_binding_secret: required",
    ] {
        assert!(err.contains(needle), "{needle} not reported:\n{err}");
    }
    std::fs::write(
        &bad,
        "[server]\nlisten = \"127.0.0.1:1\"\nunknown_key = true\n",
    )
    .unwrap();
    let out = Command::new(gateway_bin())
        .args(["--check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `unknown_key`"));
}

/// The README's first steps, with the aws cli against the embedded default configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_on_the_embedded_default() {
    if Command::new("aws").arg("--version").output().is_err() {
        assert_eq!(
            std::env::var("HCP_GW_SKIP_EXTERNAL").as_deref(),
            Ok("1"),
            "the aws cli is not installed"
        );
        return;
    }
    let gw = start_embedded_default().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("in.bin");
    let dst = work.path().join("out.bin");
    std::fs::write(&src, pattern(100 * 1024 * 1024, 2026)).unwrap();
    let endpoint = gw.endpoint.clone();
    let aws = move |secret: &str, args: &[&str]| {
        Command::new("aws")
            .args(["--endpoint-url", &endpoint])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "ZGVtby11c2Vy")
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    };
    let secret = "4b4d9529148d8d9440d7e20c78287f69";
    let (s, d) = (src.display().to_string(), dst.display().to_string());
    let run = |args: Vec<String>, secret: &'static str| {
        let aws = aws.clone();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            aws(secret, &refs)
        })
    };
    let out = run(
        vec!["s3".into(), "mb".into(), "s3://cli-bucket".into()],
        secret,
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        vec![
            "s3".into(),
            "cp".into(),
            "--no-progress".into(),
            s.clone(),
            "s3://cli-bucket/big.bin".into(),
        ],
        secret,
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        vec!["s3".into(), "ls".into(), "s3://cli-bucket".into()],
        secret,
    )
    .await
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("104857600 big.bin"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(
        vec![
            "s3".into(),
            "cp".into(),
            "--no-progress".into(),
            "s3://cli-bucket/big.bin".into(),
            d.clone(),
        ],
        secret,
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(&src).unwrap() == std::fs::read(&dst).unwrap(),
        "100 MiB differs after aws s3 cp in and out"
    );
    let out = run(
        vec!["s3".into(), "ls".into(), "s3://cli-bucket".into()],
        "0000000000000000000000000000000f",
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SignatureDoesNotMatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `base` with the test RGW as its backend `b`, addressed virtual-host style (`more`: further
/// backend settings); `None` where RGW is not running and the run skips external servers.
fn rgw_by_virtual_host(base: &str, more: &str) -> Option<String> {
    let Some(endpoint) = std::env::var("RGW_ENDPOINT").ok() else {
        assert_eq!(
            std::env::var("HCP_GW_SKIP_EXTERNAL").as_deref(),
            Ok("1"),
            "RGW_ENDPOINT is not set"
        );
        return None;
    };
    // RGW is configured with `rgw dns name = localhost`: bucket.localhost:PORT is virtual-host style.
    let endpoint = endpoint.replace("127.0.0.1", "localhost");
    Some(format!(
        "{base}\n[[backends]]\nname = \"b\"\nkind = \"s3\"\n{more}endpoint = {endpoint:?}\naddressing = \"virtual\"\naccess_key = {:?}\nsecret_key = {:?}\n",
        std::env::var("RGW_ACCESS_KEY").unwrap(),
        std::env::var("RGW_SECRET_KEY").unwrap(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_host_addressing_toward_the_backend() {
    let Some(text) = rgw_by_virtual_host(&base_config("vh-"), "") else {
        return;
    };
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Rgw).await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "vhb").await;
    s3.put_object()
        .bucket(&bucket)
        .key("a b/c")
        .body(ByteStream::from_static(b"virtual"))
        .send()
        .await
        .unwrap();
    assert_eq!(object_bytes(&s3, &bucket, "a b/c").await, b"virtual");
    let listing = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listing.name(), Some(bucket.as_str()));
    // The backend bucket really is the prefixed one, reached by host name.
    let direct = sdk_client(
        &std::env::var("RGW_ENDPOINT").unwrap(),
        &std::env::var("RGW_ACCESS_KEY").unwrap(),
        &std::env::var("RGW_SECRET_KEY").unwrap(),
    );
    direct
        .head_object()
        .bucket(format!("vh-{bucket}"))
        .key("a b/c")
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(&bucket)
        .key("a b/c")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket(&bucket).send().await.unwrap();
}

/// Virtual-host style puts a key first in the path the backend reads: a key beginning with
/// one of RGW's own API paths (`admin/`) is refused as HCP refuses an invalid object name (400
/// MalformedXML), nothing stored — and so is a multi-object delete naming one where its
/// objects are judged (a HEAD each, in a tenant with retention), before any is asked of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_name_the_backend_s_own_paths_are_refused_under_virtual_hosts() {
    let base = base_config("vr-").replacen(
        "bucket_prefix = \"vr-\"\n",
        "bucket_prefix = \"vr-\"\nretention = \"enterprise\"\n",
        1,
    );
    let Some(text) = rgw_by_virtual_host(&base, "dialect = \"ceph\"\n") else {
        return;
    };
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Rgw).await;
    let bucket = new_bucket(&gw.client(), "vhr").await;
    let admin = (USER, PASSWORD);
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/admin/x"), &[], b"x").await;
    r.assert_hcp_error(400, "MalformedXML");
    let before = gw.backend_requests();
    let doc = b"<Delete><Object><Key>admin/x</Key></Object></Delete>";
    let md5 = content_md5(doc);
    let headers = [("content-md5", md5.as_str())];
    let r = as_user(
        &gw,
        admin,
        "POST",
        &format!("/{bucket}?delete"),
        &headers,
        doc,
    )
    .await;
    r.assert_hcp_error(400, "MalformedXML");
    assert_eq!(
        gw.backend_requests(),
        before,
        "nothing asked of the backend"
    );
}

/// The binary prints its endpoint and the demo credentials, warns when they are served on a
/// non-loopback address, and exits cleanly on SIGTERM.
#[test]
fn binary_banner_warning_and_sigterm() {
    use std::io::{BufRead, BufReader};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root.join("config.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", "0.0.0.0:0")
        .replace("127.0.0.1:8081", "127.0.0.1:0");
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut child = Command::new(gateway_bin())
        .arg("--config")
        .arg(&cfg)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        stdout
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx.send(l)))
    });
    std::thread::spawn(move || {
        stderr
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx2.send(l)))
    });
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !(seen.contains("WARNING") && seen.contains("ZGVtby11c2Vy"))
        && std::time::Instant::now() < deadline
    {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            seen.push_str(&line);
            seen.push('\n');
        }
    }
    assert!(seen.contains("serving S3 on http://0.0.0.0:"), "{seen}");
    assert!(
        seen.contains("ZGVtby11c2Vy") && seen.contains("4b4d9529148d8d9440d7e20c78287f69"),
        "{seen}"
    );
    assert!(
        seen.contains(
            "WARNING: the well-known demo credentials are served on non-loopback address"
        ),
        "{seen}"
    );
    assert!(
        dir.path().join("data").is_dir(),
        "the local backend stores under ./data"
    );
    // A reload that serves them warns again (a demo user may come with one).
    let kill = |signal: &str| {
        let pid = child.id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
    };
    kill("-HUP");
    let warned = (0..100).any(|_| {
        rx.recv_timeout(std::time::Duration::from_millis(200))
            .is_ok_and(|l| l.contains("WARNING: the well-known demo credentials"))
    });
    assert!(warned, "no warning on the reload");
    let started = std::time::Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "an idle gateway stops at once"
    );
}

/// TLS on the S3 listener: a signed request over HTTPS verifies against the test CA; a reload
/// serves a certificate from another CA to new connections; a broken certificate file is refused
/// and the current certificate stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_serves_and_reloads_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = test_certificate();
    let files = |cert: &str, key: &str, ca: &str, n: u32| {
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let ca_file = dir.path().join(format!("ca{n}.pem"));
        std::fs::write(&ca_file, ca).unwrap();
        ca_file.display().to_string()
    };
    let ca1 = files(&cert, &key, &ca, 1);
    let text = format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"local\"\ndata_dir = {:?}\n",
        base_config(""),
        dir.path().join("data").display().to_string()
    )
    .replace(
        "shutdown_grace_seconds = 2",
        &format!(
            "shutdown_grace_seconds = 2\ntls_cert_file = {:?}\ntls_key_file = {:?}",
            dir.path().join("cert.pem").display().to_string(),
            dir.path().join("key.pem").display().to_string()
        ),
    );
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await;
    let port = gw.s3_port();
    let url = format!("https://localhost:{port}/");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let (ak, sk) = keys(USER, PASSWORD);
    let over_tls_with = |ca: &str, extra: &[&str]| {
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                ca,
            ])
            .args(["--resolve", &resolve, "--aws-sigv4", "aws:amz:us-east-1:s3"])
            .args(extra)
            .args(["--user", &format!("{ak}:{sk}"), &url])
            .output()
            .unwrap()
    };
    let over_tls = |ca: &str| over_tls_with(ca, &[]);
    let ok = over_tls(&ca1);
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "200", "{ok:?}");
    // A head of 20 KB, in TLS records, past pingora's first 4 KiB: its room grows as it is
    // read (`head_budget`), whole.
    let filler = format!("x-filler: {}", "f".repeat(20_000));
    let long = over_tls_with(&ca1, &["-H", &filler]);
    assert_eq!(String::from_utf8_lossy(&long.stdout), "200", "{long:?}");
    // HCP's `Location` of a completed upload is the client's own URL, its scheme too. (curl
    // 7.88 signs a query parameter without a value as `uploads`, not `uploads=`.)
    let send = |method: &str, path: &str, body: &str| {
        let out = Command::new("curl")
            .args(["-s", "-X", method, "--cacert", &ca1, "--resolve", &resolve])
            .args(["--aws-sigv4", "aws:amz:us-east-1:s3"])
            .args(["--user", &format!("{ak}:{sk}"), "-D", "-", "-H"])
            .arg(format!(
                "x-amz-content-sha256: {}",
                hcp_s3_gateway::sig::v4::sha256_hex(body.as_bytes())
            ))
            .args(["--data-binary", body])
            .arg(format!("https://localhost:{port}{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let between = |text: &str, open: &str, close: &str| {
        let from = text.find(open).map(|i| i + open.len()).expect(open);
        text[from..][..text[from..].find(close).expect(close)].to_string()
    };
    let made = send("PUT", "/over-tls", "");
    assert!(made.starts_with("HTTP/1.1 200"), "{made}");
    // HCP's HSTS, on every answer over HTTPS (an error too).
    let hsts = "strict-transport-security: max-age=31536000; includeSubDomains\r\n";
    assert!(
        made.to_ascii_lowercase()
            .contains(&hsts.to_ascii_lowercase()),
        "{made}"
    );
    let missing = send("GET", "/over-tls/nope", "");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(
        missing
            .to_ascii_lowercase()
            .contains(&hsts.to_ascii_lowercase()),
        "{missing}"
    );
    let upload = between(
        &send("POST", "/over-tls/o?uploads=", ""),
        "<UploadId>",
        "</UploadId>",
    );
    let part = send(
        "PUT",
        &format!("/over-tls/o?partNumber=1&uploadId={upload}"),
        "x",
    );
    let etag = between(&part.to_ascii_lowercase(), "etag: ", "\r\n");
    let document = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let done = send("POST", &format!("/over-tls/o?uploadId={upload}"), &document);
    assert_eq!(
        between(&done, "<Location>", "</Location>"),
        format!("https://localhost:{port}/hs3/over-tls/o"),
        "{done}"
    );

    let (cert2, key2, ca_2) = test_certificate();
    let ca2 = files(&cert2, &key2, &ca_2, 2);
    gw.gw.as_ref().unwrap().reload_tls().unwrap();
    assert!(
        !over_tls(&ca1).status.success(),
        "the old CA no longer verifies"
    );
    assert_eq!(String::from_utf8_lossy(&over_tls(&ca2).stdout), "200");

    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    assert!(gw.gw.as_ref().unwrap().reload_tls().is_err());
    assert_eq!(String::from_utf8_lossy(&over_tls(&ca2).stdout), "200");
}

/// A header section pingora cannot accept (Content-Length empty, negative or given twice with
/// different values; a control character in a header value) is HCP's 400 InvalidArgument with
/// the error document, and the connection closes: nothing reaches the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_header_sections_are_answered_400_and_the_connection_closes() {
    use common::raw::send;
    let gw = start(Backend::Local).await.unwrap();
    let addr = gw.addr();
    let host = ("Host".to_string(), addr.clone());
    let h = |n: &str, v: &str| (n.to_string(), v.to_string());
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        (
            "empty Content-Length",
            vec![host.clone(), h("Content-Length", "")],
        ),
        (
            "negative Content-Length",
            vec![host.clone(), h("Content-Length", "-1")],
        ),
        (
            "two different Content-Lengths",
            vec![
                host.clone(),
                h("Content-Length", "1"),
                h("Content-Length", "2"),
            ],
        ),
        (
            "control character in a value",
            vec![host.clone(), h("x-amz-meta-a", "\x04w")],
        ),
    ];
    for (what, headers) in cases {
        let r = send(&addr, "PUT", b"/bucket/key", &headers, vec![b"xy".to_vec()]).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "InvalidArgument"),
            "{what}: {}",
            r.text()
        );
        assert_hcp_error_body(&r.text(), "InvalidArgument");
        assert_eq!(r.header("connection"), Some("close"), "{what}");
    }
    assert_eq!(gw.backend_requests(), 0);
    // The access log and metrics count them like any refused request.
    assert!(String::from_utf8_lossy(&gw.metrics().render()).contains("code=\"InvalidArgument\""));
}

/// HCP's tenant-level CORS configuration (`cors` of the tenant): "If a namespace managed by the
/// tenant does not have a CORS configuration, the namespace inherits the tenant-level
/// configuration"; one with its own uses it alone; a bucket that is not there has none — on the
/// embedded store and on Ceph RGW.
async fn a_bucket_without_cors_rules_takes_the_tenant_s(backend: Backend) {
    use common::raw::send;
    let rules = "cors = \"\"\"<CORSConfiguration><CORSRule><AllowedOrigin>https://tenant.example\
                 </AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>\"\"\"";
    let Some(gw) = start_with_tenant(backend, rules, "").await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "tenant-cors").await;
    let addr = gw.addr();
    let preflight = |bucket: &str, origin: &str| {
        let headers = vec![
            ("Host".to_string(), addr.clone()),
            ("Origin".to_string(), origin.to_string()),
            (
                "Access-Control-Request-Method".to_string(),
                "GET".to_string(),
            ),
        ];
        let (addr, target) = (addr.clone(), format!("/{bucket}/k"));
        async move { send(&addr, "OPTIONS", target.as_bytes(), &headers, vec![]).await }
    };
    let r = preflight(&bucket, "https://tenant.example").await;
    assert_eq!(r.status, 200, "{backend:?}: {}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://tenant.example")
    );
    preflight(&bucket, "https://other.example")
        .await
        .assert_hcp_error(403, "AccessDenied");
    // (No such bucket: no rules.)
    let missing = unique_bucket("no-such-cors");
    preflight(&missing, "https://tenant.example")
        .await
        .assert_hcp_error(403, "AccessDenied");
    // Its own rules override the tenant's.
    set_cors(&s3, &bucket, "https://own.example", &["GET"]).await;
    let r = preflight(&bucket, "https://own.example").await;
    assert_eq!(r.status, 200, "{backend:?}: {}", r.text());
    preflight(&bucket, "https://tenant.example")
        .await
        .assert_hcp_error(403, "AccessDenied");
    // And its own rules gone, the tenant's again.
    s3.delete_bucket_cors()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let r = preflight(&bucket, "https://tenant.example").await;
    assert_eq!(r.status, 200, "{backend:?}: {}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_without_cors_rules_takes_the_tenant_s_on_the_embedded_store() {
    a_bucket_without_cors_rules_takes_the_tenant_s(Backend::Store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_without_cors_rules_takes_the_tenant_s_on_rgw() {
    a_bucket_without_cors_rules_takes_the_tenant_s(Backend::Rgw).await;
}

/// A browser's CORS preflight (OPTIONS, never signed) reaches the backend, whose CORS
/// configuration answers it: allowed origins get the Access-Control headers, others 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_is_answered_by_the_bucket_configuration() {
    use common::raw::send;
    let Some(gw) = start(Backend::Rgw).await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "cors").await;
    let addr = gw.addr();
    let target = format!("/{bucket}/photo.jpg");
    let preflight = |origin: &str| {
        let headers = vec![
            ("Host".to_string(), addr.clone()),
            ("Origin".to_string(), origin.to_string()),
            (
                "Access-Control-Request-Method".to_string(),
                "GET".to_string(),
            ),
        ];
        let (addr, target) = (addr.clone(), target.clone());
        async move { send(&addr, "OPTIONS", target.as_bytes(), &headers, vec![]).await }
    };
    let before = preflight("https://app.example").await;
    assert_eq!(
        before.status,
        403,
        "no CORS configuration yet: {}",
        before.text()
    );

    set_cors(&s3, &bucket, "https://app.example", &["GET"]).await;
    let allowed = preflight("https://app.example").await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    // A preflight of a request on a sub-resource is one all the same (it was 405).
    // (And of one the gateway does not offer: the request it precedes gets the 501.)
    let subs = ["?cors", "?lifecycle", "/photo.jpg?tagging"];
    for sub in subs.map(|s| format!("/{bucket}{s}")) {
        for (origin, status) in [("https://app.example", 200), ("https://evil.example", 403)] {
            let headers = vec![
                ("Host".to_string(), addr.clone()),
                ("Origin".to_string(), origin.to_string()),
                (
                    "Access-Control-Request-Method".to_string(),
                    "GET".to_string(),
                ),
            ];
            let r = send(&addr, "OPTIONS", sub.as_bytes(), &headers, vec![]).await;
            assert_eq!(r.status, status, "{sub} {origin}: {}", r.text());
            let allowed = r.header("access-control-allow-origin");
            assert_eq!(allowed, (status == 200).then_some(origin), "{sub}");
        }
    }
    // The request itself gets what a browser needs to read its answer, a success or an error,
    // not what only a preflight answers (RGW sends those on every answer to an Origin).
    s3.put_object()
        .bucket(&bucket)
        .key("photo.jpg")
        .body(b"jpeg".to_vec().into())
        .send()
        .await
        .unwrap();
    let origin = [("origin", "https://app.example")];
    for (key, status) in [("photo.jpg", 200), ("missing.jpg", 404)] {
        let path = format!("/{bucket}/{key}");
        let r = as_user(&gw, (USER, PASSWORD), "GET", &path, &origin, b"").await;
        assert_eq!(r.status, status, "{}", r.text());
        let allowed = r.header("access-control-allow-origin");
        assert_eq!(allowed, Some("https://app.example"), "{key}");
        for only in [
            "access-control-allow-methods",
            "access-control-allow-headers",
            "access-control-max-age",
        ] {
            assert_eq!(r.header(only), None, "{key}: {only}");
        }
    }
    let other = preflight("https://evil.example").await;
    assert_eq!(other.status, 403, "{}", other.text());
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert_hcp_error_body(&other.text(), "AccessDenied");
    // Anonymous, a preflight learns nothing of the backend: one of RGW's own API paths, or a
    // key too long for it, is the refusal every other preflight gets, and nothing is sent.
    let long_key = format!("/{bucket}/{}", "k".repeat(1100));
    for target in ["/admin/k", "/info/k", "/swift/k", long_key.as_str()] {
        let before = gw.backend_requests();
        let headers = vec![
            ("Host".to_string(), addr.clone()),
            ("Origin".to_string(), "https://app.example".to_string()),
            (
                "Access-Control-Request-Method".to_string(),
                "GET".to_string(),
            ),
        ];
        let r = send(&addr, "OPTIONS", target.as_bytes(), &headers, vec![]).await;
        r.assert_hcp_error(403, "AccessDenied");
        let message = |r: &common::raw::RawResponse| {
            let text = r.text();
            text[text.find("<Message>").unwrap()..text.find("</Message>").unwrap()].to_string()
        };
        assert_eq!(
            message(&r),
            message(&other),
            "{}",
            &target[..20.min(target.len())]
        );
        assert_eq!(gw.backend_requests(), before, "reached the backend");
    }

    // A configuration is sent as the gateway read it: an element it does not know (a
    // backend's extension) is 400 MalformedXML before the backend, the rules unchanged.
    let (ak, sk) = keys(USER, PASSWORD);
    let widened = "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example</AllowedOrigin>\
        <AllowedOriginRegex>.*</AllowedOriginRegex><AllowedMethod>GET</AllowedMethod></CORSRule>\
        </CORSConfiguration>";
    let before = gw.backend_requests();
    let target_cors = format!("/{bucket}?cors");
    let md5 = content_md5(widened.as_bytes());
    let put = ("PUT", target_cors.as_str());
    let md5 = [("content-md5", md5.as_str())];
    let r = raw::send_signed_with(&addr, (&ak, &sk), put, &md5, widened.as_bytes()).await;
    r.assert_hcp_error(400, "MalformedXML");
    assert_eq!(gw.backend_requests(), before, "reached the backend");
    let still = preflight("https://evil.example").await;
    assert_eq!(still.status, 403, "{}", still.text());

    // The manual's example configuration, as HCP applies it — the first rule matching the
    // whole request, not (RGW's reading) the first whose origin matches: GET from
    // www.example.com is the second rule's, anyone's (`*`, no credentials).
    let manual =
        "<CORSConfiguration><CORSRule><AllowedOrigin>http://www.example.com</AllowedOrigin>\
        <AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod>\
        <AllowedMethod>DELETE</AllowedMethod><AllowedHeader>*</AllowedHeader>\
        <MaxAgeSeconds>3000</MaxAgeSeconds><ExposeHeader>ETag</ExposeHeader></CORSRule>\
        <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>\
        <AllowedHeader>*</AllowedHeader></CORSRule></CORSConfiguration>";
    let md5 = content_md5(manual.as_bytes());
    let md5 = [("content-md5", md5.as_str())];
    let put = ("PUT", target_cors.as_str());
    let r = raw::send_signed_with(&addr, (&ak, &sk), put, &md5, manual.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let asking = |method: &'static str| {
        let headers = vec![
            ("Host".to_string(), addr.clone()),
            ("Origin".to_string(), "http://www.example.com".to_string()),
            (
                "Access-Control-Request-Method".to_string(),
                method.to_string(),
            ),
            (
                "Access-Control-Request-Headers".to_string(),
                "x-amz-date".to_string(),
            ),
        ];
        let (addr, target) = (addr.clone(), target.clone());
        async move { send(&addr, "OPTIONS", target.as_bytes(), &headers, vec![]).await }
    };
    let get = asking("GET").await;
    assert_eq!(get.status, 200, "{}", get.text());
    assert_eq!(get.header("access-control-allow-origin"), Some("*"));
    assert_eq!(get.header("access-control-allow-credentials"), None);
    assert_eq!(get.header("access-control-allow-methods"), Some("GET"));
    let put = asking("PUT").await;
    assert_eq!(put.status, 200, "{}", put.text());
    for (name, value) in [
        ("access-control-allow-origin", "http://www.example.com"),
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-headers", "x-amz-date"),
        ("access-control-max-age", "3000"),
        ("access-control-expose-headers", "ETag"),
        (
            "vary",
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        ),
    ] {
        assert_eq!(put.header(name), Some(value), "{name}");
    }
    // (In the order the backend keeps them: RGW's is its own.)
    let methods = put
        .header("access-control-allow-methods")
        .unwrap_or_default();
    let mut methods: Vec<&str> = methods.split(", ").collect();
    methods.sort_unstable();
    assert_eq!(methods, ["DELETE", "POST", "PUT"]);
    // The GET itself, from there: anyone's rule.
    let origin = [("origin", "http://www.example.com")];
    let path = format!("/{bucket}/photo.jpg");
    let r = as_user(&gw, (USER, PASSWORD), "GET", &path, &origin, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

/// A request head read byte by byte by a hand-written backend; `None` once the connection ends.
async fn read_head(conn: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// The gateway's idle backend connections: an answered exchange leaves its connection for the
/// next request (one connection for many requests), and a connection the backend closed while
/// it was idle is not used again — the next request is answered, on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_backend_connections_are_reused_until_the_backend_closes_them() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    // Every connection's third answer is its last: the backend closes it once idle.
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                for _ in 0..3 {
                    if read_head(&mut conn).await.is_none() {
                        return;
                    }
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nETag: \"e\"\r\n\r\nok";
                    if conn.write_all(answer).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            });
        }
    });
    let text = config_with_endpoint(&format!("http://{addr}"));
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await;
    let before = connections.load(Ordering::SeqCst);
    let keys = keys(USER, PASSWORD);
    for i in 0..9 {
        let r = raw::send_signed(&gw.addr(), (&keys.0, &keys.1), "GET", "/b/k", b"").await;
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"ok"[..]),
            "request {i}"
        );
        if i % 3 == 2 {
            // The backend has closed the connection by now.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    // Nine requests on three connections: each used three times, none after it closed.
    assert_eq!(connections.load(Ordering::SeqCst) - before, 3);
    assert_eq!(
        gw.metrics().backend_requests("b"),
        9,
        "no request was sent twice"
    );
}

/// A small object body is read and verified whole before the backend is asked: while a slow
/// client sends, the backend has seen nothing of the request (no header, no connection held),
/// and a body that fails its signed digest never reaches the backend at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_bodies_are_verified_whole_before_the_backend_is_asked() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // PUT headers the backend has read, and the bodies it then read whole.
    let heads = Arc::new(AtomicUsize::new(0));
    let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let (seen_heads, seen_bodies) = (heads.clone(), bodies.clone());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (heads, bodies) = (seen_heads.clone(), seen_bodies.clone());
            tokio::spawn(async move {
                while let Some(head) = read_head(&mut conn).await {
                    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let length: usize = text
                        .split("content-length:")
                        .nth(1)
                        .and_then(|r| r.lines().next())
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let put = text.starts_with("put ");
                    heads.fetch_add(usize::from(put), SeqCst);
                    let mut body = vec![0u8; length];
                    if conn.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    if put {
                        bodies.lock().unwrap().push(body);
                    }
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: \"e\"\r\n\r\n";
                    if conn.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let text = config_with_endpoint(&format!("http://{addr}"));
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await;
    let gw_addr = gw.addr();
    let keys = keys(USER, PASSWORD);

    // A client sending slowly: nothing reaches the backend before its body is whole.
    let v4 = raw::V4::unsigned(&keys.0, &keys.1, &gw_addr);
    let headers = v4.sign("PUT", b"/b/slow", &[("content-length", "10")]);
    let asked = gw.metrics().backend_requests("b");
    let mut stream = tokio::net::TcpStream::connect(&gw_addr).await.unwrap();
    let head = raw::request_head("PUT", b"/b/slow", &headers);
    stream.write_all(&head).await.unwrap();
    stream.write_all(b"slow ").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(heads.load(SeqCst), 0, "the backend saw the request early");
    assert_eq!(gw.metrics().backend_requests("b"), asked);
    stream.write_all(b"sends").await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert_eq!(*bodies.lock().unwrap(), [b"slow sends".to_vec()]);

    // A signed digest the body does not match: refused, and the backend saw nothing of it (a
    // streamed body's header and first bytes reach the backend before the digest is known).
    let other = hcp_s3_gateway::sig::v4::sha256_hex(b"other");
    let v4 = raw::V4::now(&keys.0, &keys.1, &gw_addr, &other);
    let headers = v4.sign("PUT", b"/b/forged", &[("content-length", "5")]);
    let r = raw::send(
        &gw_addr,
        "PUT",
        b"/b/forged",
        &headers,
        vec![b"hello".to_vec()],
    )
    .await;
    r.assert_hcp_error(400, "BadDigest");
    assert_eq!(
        heads.load(SeqCst),
        1,
        "the forged body's request reached the backend"
    );
    assert_eq!(bodies.lock().unwrap().len(), 1);
}

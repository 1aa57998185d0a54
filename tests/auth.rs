//! Authentication and access control through the gateway: every scheme with a real client or
//! hand-built raw HTTP, and every forgery answered with HCP's status and code while the backend
//! receives nothing (counted by the gateway's backend-request metric, and the backend's own state).

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use common::raw::{request_head, send, send_head, RawResponse, V4};
use common::*;
use hcp_s3_gateway::config::{hcp_access_key, hcp_secret_key};
use hcp_s3_gateway::sig::v4 as sigv4;

struct Fixture {
    gw: TestGateway,
    addr: String,
    bucket: String,
}

impl Fixture {
    async fn new(tag: &str) -> Fixture {
        let gw = start(Backend::Local).await.unwrap();
        let bucket = gw.with_bucket(tag).await;
        gw.client()
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(ByteStream::from_static(b"hello"))
            .send()
            .await
            .unwrap();
        // The count every refusal below is checked by counts what reaches the backend (the
        // bucket and the object just made): "nothing reached it" is not an idle counter.
        assert!(
            gw.backend_requests() >= 2,
            "backend requests counted: {}",
            gw.backend_requests()
        );
        let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
        Fixture { gw, addr, bucket }
    }

    fn backend_requests(&self) -> u64 {
        self.gw.backend_requests()
    }

    fn v4<'a>(&'a self, ak: &'a str, sk: &'a str, payload: &'a str) -> V4<'a> {
        V4::now(ak, sk, &self.addr, payload)
    }

    async fn exists(&self, key: &str) -> bool {
        self.gw
            .client()
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    /// Asserts that `f` is refused with `status`/`code` and that no request reached the backend.
    async fn refused<F: std::future::Future<Output = RawResponse>>(
        &self,
        what: &str,
        status: u16,
        code: &str,
        f: F,
    ) {
        let before = self.backend_requests();
        let r = f.await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{what}: {}",
            r.text()
        );
        assert_hcp_error_body(&r.text(), code);
        assert_eq!(
            self.backend_requests(),
            before,
            "{what}: a request reached the backend"
        );
    }
}

fn user() -> (String, String) {
    keys(USER, PASSWORD)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_header_forgeries() {
    let f = Fixture::new("v4forge").await;
    let (ak, sk) = user();
    let target = format!("/{}/k", f.bucket);
    let t = target.as_bytes();
    let ok = f.v4(&ak, &sk, sigv4::EMPTY_SHA256).sign("GET", t, &[]);
    let r = send(&f.addr, "GET", t, &ok, vec![]).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));

    f.refused(
        "wrong secret",
        403,
        "SignatureDoesNotMatch",
        send(
            &f.addr,
            "GET",
            t,
            &f.v4(&ak, "0000000000000000000000000000dead", sigv4::EMPTY_SHA256)
                .sign("GET", t, &[]),
            vec![],
        ),
    )
    .await;
    f.refused(
        "unknown key",
        403,
        "InvalidAccessKeyId",
        send(
            &f.addr,
            "GET",
            t,
            &f.v4("dW5rbm93bg==", &sk, sigv4::EMPTY_SHA256)
                .sign("GET", t, &[]),
            vec![],
        ),
    )
    .await;

    let mut tampered =
        f.v4(&ak, &sk, sigv4::EMPTY_SHA256)
            .sign("GET", t, &[("range", "bytes=0-1")]);
    tampered.iter_mut().find(|(n, _)| n == "range").unwrap().1 = "bytes=0-3".into();
    f.refused(
        "tampered header",
        403,
        "SignatureDoesNotMatch",
        send(&f.addr, "GET", t, &tampered, vec![]),
    )
    .await;
    // A header named twice in SignedHeaders is malformed — each naming would write the
    // header's values into the canonical request again (16,000 namings of a 32 KB header:
    // half a gigabyte hashed for one refused request) —, however correct the rest.
    let mut repeated = ok.clone();
    let auth = repeated
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .unwrap();
    assert!(auth.1.contains("SignedHeaders=host;"), "{}", auth.1);
    auth.1 = auth
        .1
        .replacen("SignedHeaders=host;", "SignedHeaders=host;host;", 1);
    let r = send(&f.addr, "GET", t, &repeated, vec![]).await;
    r.assert_hcp_error(403, "AccessDenied");
    assert!(r.text().contains("more than once"), "{}", r.text());

    let list = format!("/{}?list-type=2&prefix=a", f.bucket);
    let signed = f
        .v4(&ak, &sk, sigv4::EMPTY_SHA256)
        .sign("GET", list.as_bytes(), &[]);
    let forged = format!("/{}?list-type=2&prefix=b", f.bucket);
    f.refused(
        "tampered query",
        403,
        "SignatureDoesNotMatch",
        send(&f.addr, "GET", forged.as_bytes(), &signed, vec![]),
    )
    .await;
    let other = format!("/{}/other", f.bucket);
    f.refused(
        "tampered path",
        403,
        "SignatureDoesNotMatch",
        send(&f.addr, "GET", other.as_bytes(), &ok, vec![]),
    )
    .await;

    let old = V4 {
        when: SystemTime::now() - Duration::from_secs(20 * 60),
        ..f.v4(&ak, &sk, sigv4::EMPTY_SHA256)
    };
    f.refused(
        "replay outside the skew window",
        403,
        "RequestTimeTooSkewed",
        send(&f.addr, "GET", t, &old.sign("GET", t, &[]), vec![]),
    )
    .await;
    let ahead = V4 {
        when: SystemTime::now() + Duration::from_secs(20 * 60),
        ..f.v4(&ak, &sk, sigv4::EMPTY_SHA256)
    };
    f.refused(
        "dated ahead of the skew window",
        403,
        "RequestTimeTooSkewed",
        send(&f.addr, "GET", t, &ahead.sign("GET", t, &[]), vec![]),
    )
    .await;
    let unreadable = V4 {
        date_header: Some("yesterday"),
        ..f.v4(&ak, &sk, sigv4::EMPTY_SHA256)
    };
    f.refused(
        "an x-amz-date that is no date",
        403,
        "AccessDenied",
        send(&f.addr, "GET", t, &unreadable.sign("GET", t, &[]), vec![]),
    )
    .await;

    let no_date: Vec<_> = ok
        .iter()
        .filter(|(n, _)| n != "x-amz-date")
        .cloned()
        .collect();
    f.refused(
        "no date",
        403,
        "AccessDenied",
        send(&f.addr, "GET", t, &no_date, vec![]),
    )
    .await;
    let mut disabled = f
        .v4(
            &keys(DISABLED, PASSWORD).0,
            &keys(DISABLED, PASSWORD).1,
            sigv4::EMPTY_SHA256,
        )
        .sign("GET", t, &[]);
    f.refused(
        "disabled user",
        403,
        "AccessDenied",
        send(&f.addr, "GET", t, &disabled, vec![]),
    )
    .await;
    // Without the secret a disabled key is told apart from an enabled one by nothing.
    let guessed = f
        .v4(
            &keys(DISABLED, PASSWORD).0,
            &keys(DISABLED, "not the password").1,
            sigv4::EMPTY_SHA256,
        )
        .sign("GET", t, &[]);
    f.refused(
        "disabled user, wrong secret",
        403,
        "SignatureDoesNotMatch",
        send(&f.addr, "GET", t, &guessed, vec![]),
    )
    .await;
    disabled.retain(|(n, _)| n != "authorization");
    disabled.push((
        "authorization".into(),
        "AWS4-HMAC-SHA256 Credential=x".into(),
    ));
    f.refused(
        "malformed Authorization",
        403,
        "AccessDenied",
        send(&f.addr, "GET", t, &disabled, vec![]),
    )
    .await;

    // HCP documents the RFC 1123 form for x-amz-date as well; the client signs the header as
    // sent and the string to sign in ISO form.
    let now = SystemTime::now();
    let rfc_date = httpdate::fmt_http_date(now).replace("GMT", "+0000");
    let rfc = V4 {
        when: now,
        date_header: Some(&rfc_date),
        ..f.v4(&ak, &sk, sigv4::EMPTY_SHA256)
    };
    let r = send(&f.addr, "GET", t, &rfc.sign("GET", t, &[]), vec![]).await;
    assert_eq!(
        r.status,
        200,
        "RFC 1123 x-amz-date ({rfc_date}): {}",
        r.text()
    );

    // A forged upload leaves nothing at the backend.
    let body = pattern(100_000, 9);
    let digest = sigv4::sha256_hex(&body);
    let put = format!("/{}/forged", f.bucket);
    let headers = f.v4(&ak, "0000000000000000000000000000dead", &digest).sign(
        "PUT",
        put.as_bytes(),
        &[("content-length", &body.len().to_string())],
    );
    f.refused(
        "forged PUT",
        403,
        "SignatureDoesNotMatch",
        send(&f.addr, "PUT", put.as_bytes(), &headers, vec![body]),
    )
    .await;
    assert!(!f.exists("forged").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_v4_urls() {
    let f = Fixture::new("presign").await;
    let s3 = f.gw.client();
    let cfg = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let get = s3
        .get_object()
        .bucket(&f.bucket)
        .key("k")
        .presigned(cfg.clone())
        .await
        .unwrap();
    let uri = get.uri().to_string();
    let target = uri.trim_start_matches(&f.gw.endpoint).to_string();
    let host = vec![("host".to_string(), f.addr.clone())];
    let r = send(&f.addr, "GET", target.as_bytes(), &host, vec![]).await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"hello"[..]),
        "{}",
        r.text()
    );

    let put = s3
        .put_object()
        .bucket(&f.bucket)
        .key("via-presigned-put")
        .presigned(cfg)
        .await
        .unwrap();
    let put_target = put.uri().trim_start_matches(&f.gw.endpoint).to_string();
    let mut headers = host.clone();
    headers.push(("content-length".into(), "6".into()));
    let r = send(
        &f.addr,
        "PUT",
        put_target.as_bytes(),
        &headers,
        vec![b"stored".to_vec()],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(f.exists("via-presigned-put").await);
    // HCP's folder request is an effect the URL's signature does not cover: a folder at
    // `via-presigned-put/` is not the holder's to make.
    headers.push(("content-type".into(), "x-directory".into()));
    f.refused(
        "an unsigned x-directory",
        403,
        "AccessDenied",
        send(
            &f.addr,
            "PUT",
            put_target.as_bytes(),
            &headers,
            vec![b"stored".to_vec()],
        ),
    )
    .await;
    assert!(!f.exists("via-presigned-put/").await);

    let tampered = target.replace(
        &format!("/{}/k?", f.bucket),
        &format!("/{}/k?response-content-type=text%2Fhtml&", f.bucket),
    );
    f.refused(
        "tampered query",
        403,
        "SignatureDoesNotMatch",
        send(&f.addr, "GET", tampered.as_bytes(), &host, vec![]),
    )
    .await;
    let other_key = target.replace(
        &format!("/{}/k?", f.bucket),
        &format!("/{}/other?", f.bucket),
    );
    f.refused(
        "tampered path",
        403,
        "SignatureDoesNotMatch",
        send(&f.addr, "GET", other_key.as_bytes(), &host, vec![]),
    )
    .await;
    let too_long = target.replace("X-Amz-Expires=300", "X-Amz-Expires=604801");
    f.refused(
        "expiry over 7 days",
        403,
        "AccessDenied",
        send(&f.addr, "GET", too_long.as_bytes(), &host, vec![]),
    )
    .await;
    for expires in ["0", "-7"] {
        let expired = target.replace("X-Amz-Expires=300", &format!("X-Amz-Expires={expires}"));
        f.refused(
            "expiry of zero or less",
            403,
            "AccessDenied",
            send(&f.addr, "GET", expired.as_bytes(), &host, vec![]),
        )
        .await;
    }
    let not_a_number = target.replace("X-Amz-Expires=300", "X-Amz-Expires=soon");
    f.refused(
        "expiry not a number",
        400,
        "InvalidArgument",
        send(&f.addr, "GET", not_a_number.as_bytes(), &host, vec![]),
    )
    .await;
    let bad_algo = target.replace(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Algorithm=AWS4-HMAC-SHA1",
    );
    f.refused(
        "unknown algorithm",
        400,
        "InvalidArgument",
        send(&f.addr, "GET", bad_algo.as_bytes(), &host, vec![]),
    )
    .await;
    // A credential scope of another service or day, or signed headers without host: the
    // README's "bad credential scope", a query parameter's invalid value.
    let date = target.split("X-Amz-Date=").nth(1).unwrap()[..8].to_string();
    let yesterday = (date.parse::<u32>().unwrap() - 1).to_string();
    for (what, from, to) in [
        ("service", "%2Fs3%2Faws4_request", "%2Fec2%2Faws4_request"),
        (
            "scope date",
            &format!("%2F{date}%2F")[..],
            &format!("%2F{yesterday}%2F")[..],
        ),
        (
            "signed headers",
            "X-Amz-SignedHeaders=host",
            "X-Amz-SignedHeaders=x-amz-date",
        ),
        (
            "signed headers named twice",
            "X-Amz-SignedHeaders=host",
            "X-Amz-SignedHeaders=host%3Bhost",
        ),
        (
            "signed headers named twice in two cases",
            "X-Amz-SignedHeaders=host",
            "X-Amz-SignedHeaders=host%3BHost",
        ),
    ] {
        assert!(target.contains(from), "{what}: {target}");
        let scoped = target.replacen(from, to, 1);
        f.refused(
            what,
            400,
            "InvalidArgument",
            send(&f.addr, "GET", scoped.as_bytes(), &host, vec![]),
        )
        .await;
        // (Judged with the other parameters: before the key and the dates are.)
        let (_, query) = scoped.split_once("X-Amz-Credential=").unwrap();
        let unknown = scoped.replacen(&query[..8], "UNKNOWN1", 1);
        let expired = scoped.replacen("X-Amz-Expires=300", "X-Amz-Expires=1", 1);
        for (how, url) in [("an unknown key", unknown), ("expired", expired)] {
            tokio::time::sleep(Duration::from_millis(if how == "expired" {
                1100
            } else {
                0
            }))
            .await;
            f.refused(
                &format!("{what}, {how}"),
                400,
                "InvalidArgument",
                send(&f.addr, "GET", url.as_bytes(), &host, vec![]),
            )
            .await;
        }
    }

    let short = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(10))
        .expires_in(Duration::from_secs(1))
        .build()
        .unwrap();
    let expired = s3
        .get_object()
        .bucket(&f.bucket)
        .key("k")
        .presigned(short)
        .await
        .unwrap();
    let expired_target = expired.uri().trim_start_matches(&f.gw.endpoint).to_string();
    f.refused(
        "expired URL",
        403,
        "AccessDenied",
        send(&f.addr, "GET", expired_target.as_bytes(), &host, vec![]),
    )
    .await;
    // Dated past the clock's skew: not valid yet (else it would be valid past SigV4's week);
    // within it, served.
    let endpoint = f.gw.endpoint.clone();
    let from = |ahead: u64| {
        let starts = SystemTime::now() + Duration::from_secs(ahead);
        let cfg = PresigningConfig::builder().start_time(starts);
        let cfg = cfg.expires_in(Duration::from_secs(300)).build().unwrap();
        let get = s3.get_object().bucket(&f.bucket).key("k").presigned(cfg);
        let endpoint = endpoint.clone();
        async move {
            let uri = get.await.unwrap().uri().to_string();
            uri.trim_start_matches(&endpoint).to_string()
        }
    };
    let early = from(3600).await;
    let r = send(&f.addr, "GET", early.as_bytes(), &host, vec![]).await;
    assert!(r.text().contains("not valid yet"), "{}", r.text());
    f.refused(
        "a URL not valid yet",
        403,
        "AccessDenied",
        send(&f.addr, "GET", early.as_bytes(), &host, vec![]),
    )
    .await;
    let near = from(120).await;
    let r = send(&f.addr, "GET", near.as_bytes(), &host, vec![]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A signed header's value that is no UTF-8 text has no canonical form of its own: read as
/// text, `\xC3(` and `\xFF(` are both `\u{FFFD}(` and would share one signature. Signed so
/// (what a lossy reader computes), neither is taken — 400 InvalidArgument in HCP's body, for
/// SigV4 and SigV2, before the backend — and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_values_that_are_no_text_are_refused() {
    let f = Fixture::new("notext").await;
    let (ak, sk) = user();
    let target = format!("/{}/notext", f.bucket);
    let lossy = "\u{FFFD}(";
    // The head as signed, its value's text replaced by the bytes that are none.
    let with_bytes = |headers: Vec<(String, String)>, raw: &[u8]| {
        let mut headers = headers;
        headers.push(("connection".into(), "close".into()));
        let head = request_head("PUT", target.as_bytes(), &headers);
        let at = head
            .windows(lossy.len())
            .position(|w| w == lossy.as_bytes())
            .expect("the signed value");
        [&head[..at], raw, &head[at + lossy.len()..]].concat()
    };
    let body = b"body".to_vec();
    for raw in [&b"\xC3("[..], b"\xFF("] {
        let v4 = f.v4(&ak, &sk, sigv4::UNSIGNED_PAYLOAD).sign(
            "PUT",
            target.as_bytes(),
            &[("content-length", "4"), ("x-amz-meta-note", lossy)],
        );
        let date = httpdate::fmt_http_date(SystemTime::now());
        let mut v2 = v2_signed(
            "PUT",
            &target,
            &date,
            (&ak, &sk),
            &[("x-amz-meta-note", lossy)],
        );
        v2.extend([
            ("host".to_string(), f.addr.clone()),
            ("content-length".into(), "4".into()),
        ]);
        for (scheme, headers) in [("SigV4", v4), ("SigV2", v2)] {
            let head = with_bytes(headers, raw);
            f.refused(
                &format!("{scheme}, a signed value of no text"),
                400,
                "InvalidArgument",
                send_head(&f.addr, &head, vec![body.clone()]),
            )
            .await;
        }
    }
    assert!(!f.exists("notext").await, "an object was stored");
}

/// A Content-MD5 that is no text (sent unsigned: SigV4 leaves it out of what it signs) is no
/// digest to pass over: 400 InvalidDigest, the backend never asked, nothing stored (it was
/// read as no header at all, and the PUT went to the backend unverified).
#[tokio::test]
async fn a_content_md5_of_no_text_is_refused() {
    let f = Fixture::new("md5text").await;
    let (ak, sk) = user();
    let target = format!("/{}/md5text", f.bucket);
    let mut headers = f.v4(&ak, &sk, sigv4::UNSIGNED_PAYLOAD).sign(
        "PUT",
        target.as_bytes(),
        &[("content-length", "4")],
    );
    headers.push(("connection".into(), "close".into()));
    let head = request_head("PUT", target.as_bytes(), &headers);
    let end = head.len() - 2;
    let head = [&head[..end], b"Content-MD5: \xC3\xA9\r\n\r\n"].concat();
    f.refused(
        "an unsigned Content-MD5 of no text",
        400,
        "InvalidDigest",
        send_head(&f.addr, &head, vec![b"body".to_vec()]),
    )
    .await;
    assert!(!f.exists("md5text").await, "an object was stored");
}

fn v2_header(
    method: &str,
    resource: &str,
    date: &str,
    ak: &str,
    sk: &str,
) -> Vec<(String, String)> {
    v2_signed(method, resource, date, (ak, sk), &[])
}

/// A SigV2 header signature that signs the `x-amz-*` headers `amz` too (sorted, lower case, as
/// given), with those headers and `Date`.
fn v2_signed(
    method: &str,
    resource: &str,
    date: &str,
    (ak, sk): (&str, &str),
    amz: &[(&str, &str)],
) -> Vec<(String, String)> {
    let lines: String = amz.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let sts = format!("{method}\n\n\n{date}\n{lines}{resource}");
    let sig = base64::engine::general_purpose::STANDARD
        .encode(hcp_s3_gateway::request::authenticate::sigv2::sign(sk, &sts));
    let mut headers = vec![("date".to_string(), date.to_string())];
    headers.extend(amz.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    headers.push(("authorization".into(), format!("AWS {ak}:{sig}")));
    headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv2_header_and_presigned_forgeries() {
    let f = Fixture::new("v2forge").await;
    let (ak, sk) = user();
    let resource = format!("/{}/k", f.bucket);
    let now = httpdate::fmt_http_date(SystemTime::now());
    let r = send(
        &f.addr,
        "GET",
        resource.as_bytes(),
        &v2_header("GET", &resource, &now, &ak, &sk),
        vec![],
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"hello"[..]),
        "{}",
        r.text()
    );
    f.refused(
        "wrong secret",
        403,
        "SignatureDoesNotMatch",
        send(
            &f.addr,
            "GET",
            resource.as_bytes(),
            &v2_header("GET", &resource, &now, &ak, "wrong"),
            vec![],
        ),
    )
    .await;
    f.refused(
        "unknown key",
        403,
        "InvalidAccessKeyId",
        send(
            &f.addr,
            "GET",
            resource.as_bytes(),
            &v2_header("GET", &resource, &now, "bm9ib2R5", &sk),
            vec![],
        ),
    )
    .await;
    f.refused(
        "a Date that is no date",
        403,
        "AccessDenied",
        send(
            &f.addr,
            "GET",
            resource.as_bytes(),
            &v2_header("GET", &resource, "yesterday", &ak, &sk),
            vec![],
        ),
    )
    .await;
    let old = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    f.refused(
        "stale date",
        403,
        "RequestTimeTooSkewed",
        send(
            &f.addr,
            "GET",
            resource.as_bytes(),
            &v2_header("GET", &resource, &old, &ak, &sk),
            vec![],
        ),
    )
    .await;
    let other = format!("/{}/other", f.bucket);
    f.refused(
        "tampered path",
        403,
        "SignatureDoesNotMatch",
        send(
            &f.addr,
            "GET",
            other.as_bytes(),
            &v2_header("GET", &resource, &now, &ak, &sk),
            vec![],
        ),
    )
    .await;

    // A signed x-amz-* header changed after signing, and a signed sub-resource added.
    let sts = format!("GET\n\n\n{now}\nx-amz-meta-a:1\n{resource}");
    let sig = base64::engine::general_purpose::STANDARD.encode(
        hcp_s3_gateway::request::authenticate::sigv2::sign(&sk, &sts),
    );
    let tampered = vec![
        ("date".to_string(), now.clone()),
        ("x-amz-meta-a".to_string(), "2".to_string()),
        ("authorization".to_string(), format!("AWS {ak}:{sig}")),
    ];
    f.refused(
        "tampered header",
        403,
        "SignatureDoesNotMatch",
        send(&f.addr, "GET", resource.as_bytes(), &tampered, vec![]),
    )
    .await;
    // A raw byte in a signed header's value: signed as its lossy text it would sign `\xC3(`
    // and `\xC3)` alike, so it is refused before any signature is compared. (A raw byte in the
    // target never gets this far: the parser refuses it, tested here too.)
    let meta = [b"x-amz-meta-a: ".as_slice(), b"\xC3("].concat();
    let mut headers = v2_signed(
        "GET",
        &resource,
        &now,
        (&ak, &sk),
        &[("x-amz-meta-a", "\u{FFFD}(")],
    );
    headers.push(("connection".into(), "close".into()));
    let mut head = request_head("GET", resource.as_bytes(), &headers);
    let at = head
        .windows(16)
        .position(|w| w == b"x-amz-meta-a: \xEF\xBF")
        .unwrap();
    let end = at + head[at..].windows(2).position(|w| w == b"\r\n").unwrap();
    head.splice(at..end, meta);
    f.refused(
        "raw byte in a signed header",
        400,
        "InvalidArgument",
        send_head(&f.addr, &head, vec![]),
    )
    .await;
    let raw_key = [format!("/{}/%C3", f.bucket).as_bytes(), b"\xA9"].concat();
    let lossy = String::from_utf8_lossy(&raw_key).into_owned();
    f.refused(
        "raw byte in the target",
        400,
        "InvalidArgument",
        send(
            &f.addr,
            "GET",
            &raw_key,
            &v2_header("GET", &lossy, &now, &ak, &sk),
            vec![],
        ),
    )
    .await;
    let with_acl = format!("{resource}?acl");
    f.refused(
        "tampered query",
        403,
        "SignatureDoesNotMatch",
        send(
            &f.addr,
            "GET",
            with_acl.as_bytes(),
            &v2_header("GET", &resource, &now, &ak, &sk),
            vec![],
        ),
    )
    .await;

    let presign = |expires: u64, secret: &str| {
        let sts = format!("GET\n\n\n{expires}\n{resource}");
        let sig = base64::engine::general_purpose::STANDARD.encode(
            hcp_s3_gateway::request::authenticate::sigv2::sign(secret, &sts),
        );
        let sig: String = url_escape(&sig);
        format!("{resource}?AWSAccessKeyId={ak}&Expires={expires}&Signature={sig}")
    };
    let host = vec![("host".to_string(), f.addr.clone())];
    let future = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    let r = send(
        &f.addr,
        "GET",
        presign(future, &sk).as_bytes(),
        &host,
        vec![],
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"hello"[..]),
        "{}",
        r.text()
    );
    f.refused(
        "expired V2 URL",
        403,
        "AccessDenied",
        send(
            &f.addr,
            "GET",
            presign(future - 600, &sk).as_bytes(),
            &host,
            vec![],
        ),
    )
    .await;
    // A sub-resource value hiding another (SigV2 would sign both queries alike): refused.
    let hidden = presign(future, &sk) + "&response-content-type=a%26versionId%3Dv";
    f.refused(
        "V2 URL, a value hiding a sub-resource",
        400,
        "InvalidArgument",
        send(&f.addr, "GET", hidden.as_bytes(), &host, vec![]),
    )
    .await;
    // An Expires past the clock's range is an HCP error, not a dropped connection.
    f.refused(
        "V2 URL, Expires past any time",
        400,
        "InvalidArgument",
        send(
            &f.addr,
            "GET",
            presign(u64::MAX, &sk).as_bytes(),
            &host,
            vec![],
        ),
    )
    .await;
    f.refused(
        "V2 URL, wrong secret",
        403,
        "SignatureDoesNotMatch",
        send(
            &f.addr,
            "GET",
            presign(future, "wrong").as_bytes(),
            &host,
            vec![],
        ),
    )
    .await;
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    sigv4::uri_encode(s.as_bytes(), false, &mut out);
    out
}

/// A streaming payload under a scheme whose signature covers no chunk (HCP's here; SigV2,
/// anonymous and presigned URLs alike): an unsigned trailer's body is decoded and its checksum
/// verified as under SigV4 — stored as its data, refused where the checksum is wrong (400
/// BadDigest, nothing stored) —; chunks claiming signatures that no seed signature chains are
/// 400 InvalidArgument before the backend (before: stored framed, the checksum unchecked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_payloads_without_sigv4_are_decoded_or_refused() {
    let f = Fixture::new("hcpstream").await;
    let (ak, sk) = user();
    let put = |key: &str, claim: &str, body: &[u8]| {
        let headers: Vec<(String, String)> = [
            ("authorization", format!("HCP {ak}:{sk}")),
            ("date", httpdate::fmt_http_date(SystemTime::now())),
            ("content-length", body.len().to_string()),
            ("x-amz-content-sha256", claim.to_string()),
            ("content-encoding", "aws-chunked".to_string()),
            ("x-amz-decoded-content-length", "4".to_string()),
            ("x-amz-trailer", "x-amz-checksum-crc32".to_string()),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        let target = format!("/{}/{key}", f.bucket);
        let addr = f.addr.clone();
        let body = body.to_vec();
        async move { send(&addr, "PUT", target.as_bytes(), &headers, vec![body]).await }
    };
    let unsigned = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
    // The CRC32 of "body": right, then wrong.
    let good = b"4\r\nbody\r\n0\r\nx-amz-checksum-crc32:26gLsg==\r\n\r\n";
    let r = put("decoded", unsigned, good).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = f.gw.client().get_object().bucket(&f.bucket).key("decoded");
    let stored = stored.send().await.unwrap();
    assert_eq!(stored.content_encoding(), None);
    let bytes = stored.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], b"body");
    // The backend's own view: it stored the decoded bytes, not the framing.
    let view = common::view::BackendView::of(&f.gw);
    let kept = view.object(&f.bucket, "decoded").await;
    assert_eq!(kept.as_deref(), Some(&b"body"[..]));
    let bad = b"4\r\nbody\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
    put("wrong", unsigned, bad)
        .await
        .assert_hcp_error(400, "BadDigest");
    assert!(!f.exists("wrong").await);
    for claim in [
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    ] {
        f.refused(claim, 400, "InvalidArgument", put("signed", claim, good))
            .await;
    }
    assert!(!f.exists("signed").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hcp_scheme_with_hs3_paths() {
    let f = Fixture::new("hcpscheme").await;
    let (ak, sk) = user();
    let date = httpdate::fmt_http_date(SystemTime::now());
    let hcp = |a: &str, s: &str| {
        vec![
            ("authorization".to_string(), format!("HCP {a}:{s}")),
            ("date".to_string(), date.clone()),
            ("content-length".into(), "9".into()),
        ]
    };
    let path = format!("/hs3/{}/via-hcp", f.bucket);
    let r = send(
        &f.addr,
        "PUT",
        path.as_bytes(),
        &hcp(&ak, &sk),
        vec![b"hcp-saved".to_vec()],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(&f.addr, "GET", path.as_bytes(), &hcp(&ak, &sk)[..2], vec![]).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hcp-saved"[..]));
    f.refused(
        "HCP scheme, wrong password hash",
        403,
        "SignatureDoesNotMatch",
        send(
            &f.addr,
            "GET",
            path.as_bytes(),
            &hcp(&ak, "0123456789abcdef0123456789abcdef")[..2],
            vec![],
        ),
    )
    .await;
    f.refused(
        "HCP scheme, unknown user",
        403,
        "InvalidAccessKeyId",
        send(
            &f.addr,
            "GET",
            path.as_bytes(),
            &hcp("Z2hvc3Q=", &sk)[..2],
            vec![],
        ),
    )
    .await;
    // Seed 002: "All S3 compatible requests must include either a Date header or an x-amz-date
    // header" — within the clock skew (they were served without either, or with one of 2015).
    let authorization = hcp(&ak, &sk)[0].clone();
    f.refused(
        "HCP scheme, no date",
        403,
        "AccessDenied",
        send(
            &f.addr,
            "GET",
            path.as_bytes(),
            std::slice::from_ref(&authorization),
            vec![],
        ),
    )
    .await;
    let unreadable = [authorization.clone(), ("date".into(), "yesterday".into())];
    f.refused(
        "HCP scheme, a Date that is no date",
        403,
        "AccessDenied",
        send(&f.addr, "GET", path.as_bytes(), &unreadable, vec![]),
    )
    .await;
    let old = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    let dated = [authorization, ("date".to_string(), old)];
    f.refused(
        "HCP scheme, a date an hour old",
        403,
        "RequestTimeTooSkewed",
        send(&f.addr, "GET", path.as_bytes(), &dated, vec![]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_access_only_where_configured() {
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let public = unique_bucket("public");
    let dropbox = unique_bucket("dropbox");
    let private = unique_bucket("private");
    for b in [&public, &dropbox, &private] {
        s3.create_bucket().bucket(b).send().await.unwrap();
        s3.put_object()
            .bucket(b)
            .key("k")
            .body(ByteStream::from_static(b"shared"))
            .send()
            .await
            .unwrap();
    }
    let none: Vec<(String, String)> = vec![];
    let all_users = vec![("authorization".to_string(), "AWS all_users:".to_string())];
    let hcp_all = vec![("authorization".to_string(), "HCP all_users:".to_string())];
    for h in [&none, &all_users, &hcp_all] {
        let r = send(&addr, "GET", format!("/{public}/k").as_bytes(), h, vec![]).await;
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"shared"[..]),
            "{h:?}"
        );
    }
    // One set of credentials: a second Authorization header (before or after a valid one), or
    // a presigned URL's parameters beside one, is 400 — not the first read and the rest left
    // for something behind to read (before: served as the first one said, anonymous here).
    let (ak, sk) = user();
    let object = format!("/{public}/k");
    let mut signed =
        V4::now(&ak, &sk, &addr, sigv4::EMPTY_SHA256).sign("GET", object.as_bytes(), &[]);
    signed.insert(0, all_users[0].clone());
    let mut twice = all_users.clone();
    twice.extend(hcp_all.clone());
    let presigned = format!("{object}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00");
    let legacy = format!("{object}?AWSAccessKeyId={ak}&Signature=AA%3D");
    for (target, headers) in [
        (&object, &signed),
        (&object, &twice),
        (&presigned, &all_users),
        (&legacy, &all_users),
    ] {
        let r = send(&addr, "GET", target.as_bytes(), headers, vec![]).await;
        r.assert_hcp_error(400, "InvalidArgument");
        assert!(!r.text().contains("shared"), "{target}");
    }
    let put = |b: &str| format!("/{b}/anon");
    let len = vec![("content-length".to_string(), "4".to_string())];
    let r = send(
        &addr,
        "PUT",
        put(&public).as_bytes(),
        &len,
        vec![b"anon".to_vec()],
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "AccessDenied"),
        "read-only bucket"
    );
    let r = send(
        &addr,
        "PUT",
        put(&dropbox).as_bytes(),
        &len,
        vec![b"anon".to_vec()],
    )
    .await;
    assert_eq!(r.status, 200, "read-write bucket: {}", r.text());
    let r = send(
        &addr,
        "GET",
        format!("/{private}/k").as_bytes(),
        &none,
        vec![],
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));
    assert_hcp_error_body(&r.text(), "AccessDenied");
    let r = send(
        &addr,
        "POST",
        format!("/{dropbox}/mpu?uploads").as_bytes(),
        &none,
        vec![],
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "AccessDenied"),
        "multipart is never anonymous"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_per_user_bucket_and_operation() {
    let gw = start(Backend::Local).await.unwrap();
    let admin = gw.client();
    let shared = unique_bucket("shared");
    let private = unique_bucket("private");
    for b in [&shared, &private] {
        admin.create_bucket().bucket(b).send().await.unwrap();
        admin
            .put_object()
            .bucket(b)
            .key("k")
            .body(ByteStream::from_static(b"data"))
            .send()
            .await
            .unwrap();
    }
    let (rak, rsk) = keys(READER, READER_PASSWORD);
    let reader = gw.client_with(&rak, &rsk);
    reader
        .get_object()
        .bucket(&shared)
        .key("k")
        .send()
        .await
        .unwrap();
    reader
        .list_objects_v2()
        .bucket(&shared)
        .send()
        .await
        .unwrap();
    reader.list_buckets().send().await.unwrap();
    let denied = |e: (u16, String)| assert_eq!(e, (403, "AccessDenied".to_string()));
    denied(sdk_error(
        &reader
            .put_object()
            .bucket(&shared)
            .key("w")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err(),
    ));
    denied(sdk_error(
        &reader
            .delete_object()
            .bucket(&shared)
            .key("k")
            .send()
            .await
            .unwrap_err(),
    ));
    denied(sdk_error(
        &reader
            .get_object()
            .bucket(&private)
            .key("k")
            .send()
            .await
            .unwrap_err(),
    ));
    denied(sdk_error(
        &reader
            .create_bucket()
            .bucket(unique_bucket("shared"))
            .send()
            .await
            .unwrap_err(),
    ));
    denied(sdk_error(
        &reader
            .get_bucket_acl()
            .bucket(&shared)
            .send()
            .await
            .unwrap_err(),
    ));

    let (wak, wsk) = keys(WRITER, PASSWORD);
    let writer = gw.client_with(&wak, &wsk);
    writer
        .copy_object()
        .bucket(&shared)
        .key("copy")
        .copy_source(format!("{shared}/k"))
        .send()
        .await
        .unwrap();
    let e = writer
        .copy_object()
        .bucket(&shared)
        .key("stolen")
        .copy_source(format!("{private}/k"))
        .send()
        .await
        .unwrap_err();
    denied(sdk_error(&e));
    assert!(admin
        .head_object()
        .bucket(&shared)
        .key("stolen")
        .send()
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_chunked_uploads_and_their_forgeries() {
    let f = Fixture::new("chunked").await;
    let (ak, sk) = user();
    let streaming = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    let data = pattern(20 * 1024 * 1024, 20);
    let v4 = f.v4(&ak, &sk, streaming);

    let good = format!("/{}/chunked-good", f.bucket);
    let (headers, body) = v4.chunked_upload(&good, &data[..3 * 65536 + 100], 65536, None);
    let r = send(&f.addr, "PUT", good.as_bytes(), &headers, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = object_bytes(&f.gw.client(), &f.bucket, "chunked-good").await;
    assert!(got == data[..3 * 65536 + 100]);

    // A bad chunk signature in the middle of a 20 MiB upload: refused, and no object is created.
    let bad = format!("/{}/chunked-forged", f.bucket);
    let (headers, body) = v4.chunked_upload(&bad, &data, 65536, Some(160));
    let r = send(&f.addr, "PUT", bad.as_bytes(), &headers, body).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "SignatureDoesNotMatch"),
        "{}",
        r.text()
    );
    assert_hcp_error_body(&r.text(), "SignatureDoesNotMatch");
    assert!(
        !f.exists("chunked-forged").await,
        "the forged upload must not exist at the backend"
    );

    // A client that writes its whole body before reading (4 MiB, its second chunk forged) —
    // after the 100 Continue it asked for, as SDKs do — writes it all and reads HCP's answer:
    // what is left of the body is drained after the refusal, where closing with it unread
    // would reset the connection and the answer with it; then, a forgery being credentials
    // that failed, the connection closes.
    let forged = format!("/{}/chunked-drained", f.bucket);
    let (mut headers, body) = v4.chunked_upload(&forged, &data[..4 << 20], 65536, Some(1));
    headers.push(("expect".into(), "100-continue".into()));
    let mut c = tokio::net::TcpStream::connect(&f.addr).await.unwrap();
    let head = common::raw::request_head("PUT", forged.as_bytes(), &headers);
    let written = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        c.write_all(&head).await?;
        let mut interim = Vec::new();
        while !interim.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            c.read_exact(&mut byte).await?;
            interim.push(byte[0]);
        }
        assert!(interim.starts_with(b"HTTP/1.1 100"), "{interim:?}");
        for piece in &body {
            c.write_all(piece).await?;
        }
        std::io::Result::Ok(())
    };
    written.await.expect("the body could not be written whole");
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut c, &mut answer)
        .await
        .expect("the answer was lost");
    let r = common::raw::parse(&answer);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_hcp_error_body(&r.text(), "SignatureDoesNotMatch");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(!f.exists("chunked-drained").await);
    // A small body forged, read whole before the answer: a forgery is credentials that
    // failed, and its connection closes all the same.
    let (headers, body) = v4.chunked_upload(&forged, &data[..100_000], 65536, Some(1));
    let mut c = common::raw::Connection::open(&f.addr).await;
    let r = c
        .request_with_body("PUT", forged.as_bytes(), &headers, &body.concat())
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));

    // An unsigned-trailer upload with a wrong CRC32: 400 BadDigest, nothing stored.
    let trailer = format!("/{}/bad-trailer", f.bucket);
    let small = &data[..70_000];
    let mut body = format!("{:x}\r\n", small.len()).into_bytes();
    body.extend_from_slice(small);
    body.extend_from_slice(b"\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    let v4u = f.v4(&ak, &sk, "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    let headers = v4u.sign(
        "PUT",
        trailer.as_bytes(),
        &[
            ("content-encoding", "aws-chunked"),
            ("content-length", &body.len().to_string()),
            ("x-amz-decoded-content-length", &small.len().to_string()),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ],
    );
    let r = send(&f.addr, "PUT", trailer.as_bytes(), &headers, vec![body]).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "BadDigest"),
        "{}",
        r.text()
    );
    assert!(!f.exists("bad-trailer").await);

    // Content-MD5: malformed, then wrong.
    let md5 = format!("/{}/md5", f.bucket);
    let v4p = f.v4(&ak, &sk, sigv4::UNSIGNED_PAYLOAD);
    let h = v4p.sign(
        "PUT",
        md5.as_bytes(),
        &[("content-md5", "not-base64"), ("content-length", "4")],
    );
    f.refused(
        "malformed Content-MD5",
        400,
        "InvalidDigest",
        send(&f.addr, "PUT", md5.as_bytes(), &h, vec![b"body".to_vec()]),
    )
    .await;
    let h = v4p.sign(
        "PUT",
        md5.as_bytes(),
        &[
            ("content-md5", "XUFAKrxLKna5cZ2REBfFkg=="),
            ("content-length", "4"),
        ],
    );
    let r = send(&f.addr, "PUT", md5.as_bytes(), &h, vec![b"body".to_vec()]).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "BadDigest"),
        "{}",
        r.text()
    );
    assert!(!f.exists("md5").await);

    // A request that stores nothing has no body whose digest its headers could name: they are
    // not read (HCP's manual names Content-MD5 for requests that store data; S3 ignores it).
    let stored = format!("/{}/stored", f.bucket);
    let h = v4p.sign("PUT", stored.as_bytes(), &[("content-length", "4")]);
    let r = send(
        &f.addr,
        "PUT",
        stored.as_bytes(),
        &h,
        vec![b"body".to_vec()],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let digests = [
        ("content-md5", "not-base64"),
        ("x-amz-checksum-crc32", "zz"),
    ];
    for (method, status) in [("GET", 200), ("HEAD", 200), ("DELETE", 204)] {
        let h = v4p.sign(method, stored.as_bytes(), &digests);
        let r = send(&f.addr, method, stored.as_bytes(), &h, vec![]).await;
        assert_eq!(r.status, status, "{method}: {}", r.text());
    }
}

/// aws-sdk-s3 streams a file body as aws-chunked with a CRC trailer; the gateway de-chunks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_streaming_upload_with_checksum_trailer() {
    let f = Fixture::new("sdkstream").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload.bin");
    let data = pattern(3 * 1024 * 1024 + 17, 31);
    std::fs::write(&path, &data).unwrap();
    let s3 = f.gw.client();
    s3.put_object()
        .bucket(&f.bucket)
        .key("streamed")
        .body(ByteStream::from_path(&path).await.unwrap())
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
        .customize()
        .disable_payload_signing()
        .send()
        .await
        .unwrap();
    assert!(object_bytes(&s3, &f.bucket, "streamed").await == data);
    let metrics = String::from_utf8(f.gw.gw.as_ref().unwrap().gateway.metrics.render()).unwrap();
    assert!(
        metrics.lines().any(|l| l
            .starts_with("hcp_gateway_request_payloads_total{mode=\"aws-chunked")
            && !l.ends_with(" 0")),
        "the SDK's streaming upload should arrive aws-chunked:\n{metrics}"
    );
}

/// boto3 with SigV4 header and presigned, SigV2 header and presigned signing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_signing_styles() {
    let f = Fixture::new("boto3").await;
    let (ak, sk) = user();
    run_python_client(
        "boto3_auth.py",
        vec![f.gw.endpoint.clone(), ak, sk, f.bucket.clone()],
        5,
    )
    .await;
}

/// s3cmd with `signature_v2 = True` and with SigV4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3cmd_v2_and_v4() {
    let f = Fixture::new("s3cmd").await;
    let (ak, sk) = user();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.txt");
    std::fs::write(&file, b"from s3cmd").unwrap();
    for (v2, name) in [(true, "v2"), (false, "v4")] {
        let cfg = dir.path().join(format!("s3cfg-{name}"));
        std::fs::write(
            &cfg,
            format!(
                "[default]\naccess_key = {ak}\nsecret_key = {sk}\nhost_base = {addr}\nhost_bucket = {addr}\nuse_https = False\n\
                 signature_v2 = {v2}\nbucket_location = us-east-1\n",
                addr = f.addr,
                v2 = if v2 { "True" } else { "False" }
            ),
        )
        .unwrap();
        let run = |args: Vec<String>| {
            let cfg = cfg.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    std::process::Command::new("s3cmd")
                        .arg("-c")
                        .arg(&cfg)
                        .args(&args)
                        .output()
                        .expect("s3cmd is installed")
                })
                .await
                .unwrap()
            }
        };
        let key = format!("s3://{}/s3cmd-{name}.txt", f.bucket);
        let out = run(vec!["put".into(), file.display().to_string(), key.clone()]).await;
        assert!(
            out.status.success(),
            "{name} put: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let back = dir.path().join(format!("back-{name}.txt"));
        let out = run(vec![
            "get".into(),
            "--force".into(),
            key.clone(),
            back.display().to_string(),
        ])
        .await;
        assert!(
            out.status.success(),
            "{name} get: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&back).unwrap(), b"from s3cmd");
        let out = run(vec!["ls".into(), format!("s3://{}/", f.bucket)]).await;
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("s3cmd-{name}.txt")),
            "{name} ls"
        );
    }
}

/// Answers of the authentication and body phases that the other tests do not reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_uploads_get_hcp_answers() {
    let f = Fixture::new("malformed").await;
    let (ak, sk) = user();
    let put = format!("/{}/m", f.bucket);
    let p = put.as_bytes();

    // PUT object without Content-Length (chunked transfer, no decoded length): 411.
    let h =
        f.v4(&ak, &sk, sigv4::UNSIGNED_PAYLOAD)
            .sign("PUT", p, &[("transfer-encoding", "chunked")]);
    f.refused(
        "no Content-Length",
        411,
        "MissingContentLength",
        send(
            &f.addr,
            "PUT",
            p,
            &h,
            vec![b"4\r\nbody\r\n0\r\n\r\n".to_vec()],
        ),
    )
    .await;

    // A SigV4 body without x-amz-content-sha256: 400 MissingSecurityHeader.
    let mut h = f
        .v4(&ak, &sk, sigv4::UNSIGNED_PAYLOAD)
        .sign("PUT", p, &[("content-length", "4")]);
    h.retain(|(n, _)| n != "x-amz-content-sha256");
    f.refused(
        "no x-amz-content-sha256",
        400,
        "MissingSecurityHeader",
        send(&f.addr, "PUT", p, &h, vec![b"body".to_vec()]),
    )
    .await;

    // SigV4a streaming is not offered: 501.
    let h = f
        .v4(&ak, &sk, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")
        .sign("PUT", p, &[("content-length", "4")]);
    f.refused(
        "SigV4a streaming",
        501,
        "NotImplemented",
        send(&f.addr, "PUT", p, &h, vec![b"body".to_vec()]),
    )
    .await;

    // Broken aws-chunked framing, and a body shorter than its decoded length: 400 InvalidArgument.
    let v4u = f.v4(&ak, &sk, "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    let chunked_put = |body: Vec<u8>, decoded: &'static str| {
        let length = body.len().to_string();
        let h = v4u.sign(
            "PUT",
            p,
            &[
                ("content-encoding", "aws-chunked"),
                ("content-length", &length),
                ("x-amz-decoded-content-length", decoded),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
            ],
        );
        let addr = f.addr.clone();
        async move { send(&addr, "PUT", p, &h, vec![body]).await }
    };
    let r = chunked_put(b"zz\r\nbody\r\n0\r\n\r\n".to_vec(), "4").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "InvalidArgument"),
        "{}",
        r.text()
    );
    let r = chunked_put(
        b"4\r\nbody\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n".to_vec(),
        "10",
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "InvalidArgument"),
        "{}",
        r.text()
    );
    assert_hcp_error_body(&r.text(), "InvalidArgument");
    // Trailer lines past 16 KiB in all (each under the 4 KiB line bound): 400 InvalidArgument.
    let mut body = b"4\r\nbody\r\n0\r\n".to_vec();
    for _ in 0..64 {
        body.extend_from_slice(format!("x-junk:{}\r\n", "A".repeat(1000)).as_bytes());
    }
    // The CRC32 of "body", right: without the bound this upload would be stored.
    body.extend_from_slice(b"x-amz-checksum-crc32:26gLsg==\r\n\r\n");
    chunked_put(body, "4")
        .await
        .assert_hcp_error(400, "InvalidArgument");
    assert!(
        !f.exists("m").await,
        "nothing stored from malformed uploads"
    );
}

/// The gateway re-signs every `x-amz-*` header it forwards with the backend's key, so an
/// `x-amz-*` header the client's signature does not cover — added to a signed request in
/// transit, or to a presigned URL by whoever holds it — is refused (403 AccessDenied, as S3
/// does) instead of reaching the backend with the gateway's authority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_amz_headers_cannot_be_smuggled_past_re_signing() {
    let f = Fixture::new("smuggle").await;
    let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let v4 = f.v4(&ak, &sk, sigv4::UNSIGNED_PAYLOAD);
    let target = format!("/{}/smuggled", f.bucket);
    let mut headers = v4.sign("PUT", target.as_bytes(), &[("content-length", "2")]);
    headers.push(("x-amz-acl".into(), "public-read".into()));
    f.refused(
        "unsigned x-amz-acl on a signed PUT",
        403,
        "AccessDenied",
        send(
            &f.addr,
            "PUT",
            target.as_bytes(),
            &headers,
            vec![b"hi".to_vec()],
        ),
    )
    .await;

    let presigned =
        f.gw.client()
            .put_object()
            .bucket(&f.bucket)
            .key("smuggled")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
            .await
            .unwrap();
    let put_target = presigned
        .uri()
        .trim_start_matches(&f.gw.endpoint)
        .to_string();
    let mut headers = vec![
        ("host".to_string(), f.addr.clone()),
        ("content-length".to_string(), "2".to_string()),
    ];
    headers.push(("x-amz-meta-owner".into(), "mallory".into()));
    f.refused(
        "x-amz-meta added to a presigned PUT",
        403,
        "AccessDenied",
        send(
            &f.addr,
            "PUT",
            put_target.as_bytes(),
            &headers,
            vec![b"hi".to_vec()],
        ),
    )
    .await;
    assert!(!f.exists("smuggled").await);

    // Signed, the same headers are accepted; x-amz-content-sha256 need not be listed (the
    // canonical request covers its value).
    let headers = v4.sign(
        "PUT",
        target.as_bytes(),
        &[("content-length", "2"), ("x-amz-meta-owner", "alice")],
    );
    let r = send(
        &f.addr,
        "PUT",
        target.as_bytes(),
        &headers,
        vec![b"hi".to_vec()],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

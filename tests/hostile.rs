//! Hostile and ambiguous input: request smuggling shapes, broken framing, and object names
//! whose bytes must reach the backend exactly as they were signed.

mod common;

use common::raw::{request_head, send, V4};
use common::*;
use hcp_s3_gateway::config::{hcp_access_key, hcp_secret_key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Setup {
    gw: TestGateway,
    addr: String,
    bucket: String,
    ak: String,
    sk: String,
}

impl Setup {
    async fn new(backend: Backend) -> Option<Setup> {
        let gw = start(backend).await?;
        let bucket = gw.with_bucket("hostile").await;
        // (The count the refusals are checked by counts: the bucket's creation reached it.)
        assert!(gw.backend_requests() >= 1, "backend requests uncounted");
        let addr = gw.addr();
        Some(Setup {
            gw,
            addr,
            bucket,
            ak: hcp_access_key(USER),
            sk: hcp_secret_key(PASSWORD),
        })
    }

    fn v4(&self) -> V4<'_> {
        V4::unsigned(&self.ak, &self.sk, &self.addr)
    }

    /// Sends raw bytes and reads the answer, which must end with the gateway closing the
    /// connection (within ten seconds).
    async fn raw(&self, bytes: &[u8]) -> String {
        let mut stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let _ = stream.write_all(bytes).await;
        let mut out = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut out),
        )
        .await;
        let answer = String::from_utf8_lossy(&out).into_owned();
        assert!(read.is_ok(), "the connection stayed open: {answer}");
        answer
    }

    async fn keys(&self) -> Vec<String> {
        let listed = self
            .gw
            .client()
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }
}

/// `answer` as HCP's 400 InvalidArgument, the connection closed after it.
fn refused_and_closed(answer: &str) -> common::raw::RawResponse {
    let r = common::raw::parse(answer.as_bytes());
    r.assert_hcp_error(400, "InvalidArgument");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    r
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Framing a front end and the gateway could read differently is refused, and nothing is
/// stored: Content-Length with Transfer-Encoding (read by its chunks, the connection closed
/// after its answer), obsolete header folding, chunked framing that is not hexadecimal — on a
/// body that is read, HCP's 400 InvalidArgument, the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_refused_and_stores_nothing() {
    let s = Setup::new(Backend::Local).await.unwrap();
    let target = format!("/{}/smuggle", s.bucket);

    // Content-Length and Transfer-Encoding together: a second request hides in the body for a
    // reader that trusts Content-Length.
    // (Neither length signed, so that the framing, not the signature, is what is judged: read
    // by its chunks, an object body without a length is HCP's 411.)
    let unsigned_length = s.v4().sign("PUT", target.as_bytes(), &[]);
    let mut head = unsigned_length.clone();
    head.push(("content-length".into(), "5".into()));
    head.push(("transfer-encoding".into(), "chunked".into()));
    let mut bytes = request_head("PUT", target.as_bytes(), &head);
    bytes.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = s.raw(&bytes).await;
    let first = common::raw::parse(answer.as_bytes());
    first.assert_hcp_error(411, "MissingContentLength");
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "one answer, no smuggled request: {answer}"
    );

    // Both with nothing after them yet: read by its chunks (RFC 9112: Transfer-Encoding wins),
    // answered, and the connection closed — what comes next could be a request a front end
    // reading by Content-Length took for body.
    let list = format!("/{}", s.bucket);
    let signed_get = s.v4().sign("GET", list.as_bytes(), &[]);
    let mut head = signed_get.clone();
    head.push(("content-length".into(), "5".into()));
    head.push(("transfer-encoding".into(), "chunked".into()));
    let mut bytes = request_head("GET", list.as_bytes(), &head);
    bytes.extend_from_slice(b"0\r\n\r\n");
    let answer = s.raw(&bytes).await;
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "CL + TE kept alive: {answer}"
    );
    // An HTTP/1.0 request without keep-alive is answered and the connection closed.
    let mut bytes = request_head("GET", list.as_bytes(), &signed_get);
    let at = bytes.windows(8).position(|w| w == b"HTTP/1.1").unwrap();
    bytes.splice(at..at + 8, b"HTTP/1.0".iter().copied());
    let answer = s.raw(&bytes).await;
    assert_eq!(status_of(&answer), 200, "HTTP/1.0: {answer}");

    // Obsolete line folding of a header value.
    let signed = s
        .v4()
        .sign("PUT", target.as_bytes(), &[("content-length", "5")]);
    let mut bytes = request_head("PUT", target.as_bytes(), &signed);
    let at = bytes.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    bytes.splice(at..at, b"x-amz-meta-a: one\r\n two\r\n".iter().copied());
    bytes.extend_from_slice(b"hello");
    let answer = s.raw(&bytes).await;
    assert_eq!(status_of(&answer), 400, "folding: {answer}");

    // Chunked framing whose size is not hexadecimal.
    let mut head: Vec<(String, String)> = s.v4().sign("PUT", target.as_bytes(), &[]);
    head.push(("transfer-encoding".into(), "chunked".into()));
    let mut bytes = request_head("PUT", target.as_bytes(), &head);
    bytes.extend_from_slice(b"zz\r\nhello\r\n0\r\n\r\n");
    let answer = s.raw(&bytes).await;
    // (An object body without a length is refused before it is read.)
    common::raw::parse(answer.as_bytes()).assert_hcp_error(411, "MissingContentLength");

    // The same framing on a body that is read (aws-chunked, its decoded length given): HCP's
    // 400 with its error document, the connection closed, the backend's request abandoned.
    let mut v4 = s.v4();
    v4.payload_hash = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
    let streamed = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "5"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ];
    let mut head: Vec<(String, String)> = v4.sign("PUT", target.as_bytes(), &streamed);
    head.push(("transfer-encoding".into(), "chunked".into()));
    let mut bytes = request_head("PUT", target.as_bytes(), &head);
    bytes.extend_from_slice(b"zz\r\n5\r\nhello\r\n0\r\n\r\n\r\n0\r\n\r\n");
    refused_and_closed(&s.raw(&bytes).await);

    // A form whose chunked framing breaks: the same 400, where it had no answer.
    let head = [
        ("host".to_string(), s.addr.clone()),
        (
            "content-type".into(),
            "multipart/form-data; boundary=b".into(),
        ),
        ("transfer-encoding".into(), "chunked".into()),
    ];
    let mut bytes = request_head("POST", format!("/{}", s.bucket).as_bytes(), &head);
    bytes.extend_from_slice(b"zz\r\n--b\r\n\r\n0\r\n\r\n");
    refused_and_closed(&s.raw(&bytes).await);
    // … and one that breaks inside the file of a signed, authorised form: the same 400 (the
    // file is not stored cut short).
    let form = common::raw::signed_form_body(
        (&s.ak, &s.sk),
        &s.bucket,
        (&[("key", "framed")], &[]),
        &[b'f'; 4096],
    );
    let mut bytes = request_head("POST", format!("/{}", s.bucket).as_bytes(), &head);
    let half = &form[..form.len() - 2048];
    bytes.extend_from_slice(format!("{:x}\r\n", half.len()).as_bytes());
    bytes.extend_from_slice(half);
    bytes.extend_from_slice(b"\r\nzz\r\n");
    let r = refused_and_closed(&s.raw(&bytes).await);
    assert!(r.text().contains("chunked transfer coding"), "{}", r.text());

    assert!(s.keys().await.is_empty(), "something was stored");
}

/// Object names reach the backend byte for byte as signed: dots inside a segment and `//` are
/// ordinary key characters (no path normalisation), `%2F` is a slash inside the key (RGW decodes
/// paths before checking signatures, so the gateway must send the key's one encoding); a key
/// that is not UTF-8, or has a `.` or `..` segment (however encoded), is HCP's invalid object
/// name (400 MalformedXML) before the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_names_are_forwarded_exactly_as_signed() {
    let Some(s) = Setup::new(Backend::Rgw).await else {
        return;
    };
    for (raw, key) in [
        ("a..b/...", "a..b/..."),
        ("a//b", "a//b"),
        ("c%2Fd", "c/d"),
        (".e/f.", ".e/f."),
        ("sp%20ace+plus", "sp ace+plus"),
    ] {
        let target = format!("/{}/{raw}", s.bucket);
        let headers = s
            .v4()
            .sign("PUT", target.as_bytes(), &[("content-length", "1")]);
        let r = send(
            &s.addr,
            "PUT",
            target.as_bytes(),
            &headers,
            vec![b"x".to_vec()],
        )
        .await;
        assert_eq!(r.status, 200, "{raw}: {}", r.text());
        assert_eq!(
            object_bytes(&s.gw.client(), &s.bucket, key).await,
            b"x",
            "{raw} is stored as {key:?}"
        );
    }
    let mut keys = s.keys().await;
    keys.sort();
    assert_eq!(keys, [".e/f.", "a..b/...", "a//b", "c/d", "sp ace+plus"]);

    // Not UTF-8, or a `.` / `..` segment (HCP's folders make them impossible as names).
    for raw in ["bad%FFkey", "a/../b", "./e", "a/%2e%2E/b", "x/."] {
        let target = format!("/{}/{raw}", s.bucket);
        let headers = s
            .v4()
            .sign("PUT", target.as_bytes(), &[("content-length", "1")]);
        let before = s.gw.backend_requests();
        let r = send(
            &s.addr,
            "PUT",
            target.as_bytes(),
            &headers,
            vec![b"x".to_vec()],
        )
        .await;
        r.assert_hcp_error(400, "MalformedXML");
        assert_eq!(s.gw.backend_requests(), before, "{raw} reached the backend");
    }
    let mut after = s.keys().await;
    after.sort();
    assert_eq!(after, keys);
}

/// An answer read from a raw exchange: its status line's code and error code, and how many
/// answers came back on the connection (a smuggled request would be a second).
fn refused(answer: &str, status: u16, code: &str, case: &str) {
    assert_eq!(status_of(answer), status, "{case}: {answer}");
    assert!(
        answer.contains(&format!("<Code>{code}</Code>")),
        "{case}: {answer}"
    );
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{case}: {answer}");
    assert!(answer.contains("Connection: close\r\n"), "{case}: {answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_hcp_error_body(body, code);
}

/// The framing cases a downstream HTTP/1.1 reader must get right (issue 22's list, for any
/// replacement of the reader): each is read one way only, and a refusal reaches no backend,
/// stores nothing, answers once and closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_transfer_encoding_and_pipelining_are_read_one_way() {
    let s = Setup::new(Backend::Local).await.unwrap();
    let target = format!("/{}/framed", s.bucket);
    let put_with = |extra: &[(String, String)], signed: &[(&str, &str)], body: &[u8]| {
        let mut h = s.v4().sign("PUT", target.as_bytes(), signed);
        h.extend(extra.iter().cloned());
        let mut b = request_head("PUT", target.as_bytes(), &h);
        b.extend_from_slice(body);
        b
    };
    let before = s.gw.backend_requests();

    // Two Content-Lengths that differ: a second request hides behind the shorter one.
    let dup = [("content-length".to_string(), "6".to_string())];
    let bytes = put_with(
        &dup,
        &[("content-length", "5")],
        b"hello!GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let answer = s.raw(&bytes).await;
    refused(&answer, 400, "InvalidArgument", "two Content-Lengths");
    // A signed, hexadecimal or negative length is no length.
    for length in ["+5", "-5", "0x5", "5e0"] {
        let answer = s
            .raw(&put_with(&[], &[("content-length", length)], b"hello"))
            .await;
        refused(
            &answer,
            400,
            "InvalidArgument",
            &format!("Content-Length {length}"),
        );
    }
    // A list of lengths is no length either: rule 12's 411, and the body never read as a request.
    let answer = s
        .raw(&put_with(
            &[],
            &[("content-length", "5, 5")],
            b"helloGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ))
        .await;
    refused(&answer, 411, "MissingContentLength", "Content-Length 5, 5");
    // Transfer codings: anything but chunked last is refused; chunked object bodies have no
    // length (411) — with or without chunk extensions, or an extension hiding a line break.
    for coding in ["chunked, gzip", "identity", "gzip"] {
        let te = [("transfer-encoding".to_string(), coding.to_string())];
        let answer = s.raw(&put_with(&te, &[], b"5\r\nhello\r\n0\r\n\r\n")).await;
        refused(
            &answer,
            400,
            "InvalidArgument",
            &format!("Transfer-Encoding {coding}"),
        );
    }
    for (coding, body) in [
        ("chunked", &b"5\r\nhello\r\n0\r\n\r\n"[..]),
        ("chunked, chunked", b"5\r\nhello\r\n0\r\n\r\n"),
        ("gzip, chunked", b"5\r\nhello\r\n0\r\n\r\n"),
        ("chunked", b"5;name=value;q=\"a b\"\r\nhello\r\n0\r\n\r\n"),
        (
            "chunked",
            b"5;a\r\nGET / HTTP/1.1\r\n\r\nhello\r\n0\r\n\r\n",
        ),
    ] {
        let te = [("transfer-encoding".to_string(), coding.to_string())];
        let answer = s.raw(&put_with(&te, &[], body)).await;
        let case = format!(
            "Transfer-Encoding {coding} {:?}",
            String::from_utf8_lossy(body)
        );
        refused(&answer, 411, "MissingContentLength", &case);
    }
    // Pipelining behind a refused request: the refused request's body (a request of its own)
    // and the request after it are never served; the connection closes after the refusal.
    let smuggled = format!(
        "PUT /{}/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
        s.bucket
    );
    let anonymous = vec![
        ("host".to_string(), s.addr.clone()),
        ("content-length".to_string(), smuggled.len().to_string()),
    ];
    let mut bytes = request_head(
        "PUT",
        format!("/{}/refused", s.bucket).as_bytes(),
        &anonymous,
    );
    bytes.extend_from_slice(smuggled.as_bytes());
    let next = format!("/{}/behind", s.bucket);
    let signed = s
        .v4()
        .sign("PUT", next.as_bytes(), &[("content-length", "1")]);
    bytes.extend_from_slice(&request_head("PUT", next.as_bytes(), &signed));
    bytes.push(b'y');
    let answer = s.raw(&bytes).await;
    refused(&answer, 403, "AccessDenied", "pipelined behind a refusal");
    // An absolute-form target is refused, whatever authority it names.
    for authority in [s.addr.as_str(), "other.example"] {
        let absolute = format!("http://{authority}{target}");
        let h = s
            .v4()
            .sign("PUT", target.as_bytes(), &[("content-length", "5")]);
        let mut bytes = request_head("PUT", absolute.as_bytes(), &h);
        bytes.extend_from_slice(b"hello");
        let answer = s.raw(&bytes).await;
        refused(
            &answer,
            400,
            "InvalidArgument",
            &format!("absolute-form {absolute}"),
        );
    }
    assert_eq!(
        s.gw.backend_requests(),
        before,
        "a refusal reached the backend"
    );
    assert!(s.keys().await.is_empty(), "something was stored");
}

/// `Expect: 100-continue`: the interim answer only once the request is authorised; a refused
/// request gets its final answer instead and the body is never sent for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_is_answered_only_for_an_authorised_request() {
    let s = Setup::new(Backend::Local).await.unwrap();
    let target = format!("/{}/continued", s.bucket);
    let h = s.v4().sign(
        "PUT",
        target.as_bytes(),
        &[("content-length", "5"), ("expect", "100-continue")],
    );
    let mut stream = tokio::net::TcpStream::connect(&s.addr).await.unwrap();
    stream
        .write_all(&request_head("PUT", target.as_bytes(), &h))
        .await
        .unwrap();
    assert_eq!(
        read_some(&mut stream).await,
        "HTTP/1.1 100 Continue\r\n\r\n"
    );
    stream.write_all(b"hello").await.unwrap();
    let answer = read_some(&mut stream).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    // The connection stays open for the next request (a 100 answered before the body once cost
    // every such upload its connection).
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("connection: keep-alive"),
        "{answer}"
    );
    let h = s.v4().sign("GET", target.as_bytes(), &[]);
    stream
        .write_all(&request_head("GET", target.as_bytes(), &h))
        .await
        .unwrap();
    let again = read_some(&mut stream).await;
    assert_eq!(status_of(&again), 200, "{again}");
    assert!(again.ends_with("hello"), "{again}");
    assert_eq!(
        object_bytes(&s.gw.client(), &s.bucket, "continued").await,
        b"hello"
    );

    let before = s.gw.backend_requests();
    let anonymous = vec![
        ("host".to_string(), s.addr.clone()),
        ("content-length".to_string(), "5".to_string()),
        ("expect".to_string(), "100-continue".to_string()),
    ];
    let mut stream = tokio::net::TcpStream::connect(&s.addr).await.unwrap();
    let refused_target = format!("/{}/refused", s.bucket);
    stream
        .write_all(&request_head("PUT", refused_target.as_bytes(), &anonymous))
        .await
        .unwrap();
    let answer = read_some(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(!answer.contains(" 100 Continue"), "{answer}");
    assert!(answer.contains("<Code>AccessDenied</Code>"), "{answer}");
    assert_eq!(
        s.gw.backend_requests(),
        before,
        "the refusal reached the backend"
    );
    assert_eq!(s.keys().await, ["continued"]);
}

/// What a connection has to read within five seconds, as text.
async fn read_some(stream: &mut tokio::net::TcpStream) -> String {
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

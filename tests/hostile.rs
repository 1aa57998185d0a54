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

    /// Sends raw bytes and reads until the gateway closes the connection.
    async fn raw(&self, bytes: &[u8]) -> String {
        let mut stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let _ = stream.write_all(bytes).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut out),
        )
        .await;
        String::from_utf8_lossy(&out).into_owned()
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

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Framing a front end and the gateway could read differently is refused, and nothing is
/// stored: Content-Length with Transfer-Encoding, obsolete header folding, chunked framing
/// that is not hexadecimal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_refused_and_stores_nothing() {
    let s = Setup::new(Backend::Local).await.unwrap();
    let target = format!("/{}/smuggle", s.bucket);

    // Content-Length and Transfer-Encoding together: a second request hides in the body for a
    // reader that trusts Content-Length.
    let signed = s
        .v4()
        .sign("PUT", target.as_bytes(), &[("content-length", "5")]);
    let mut head = signed.clone();
    head.push(("transfer-encoding".into(), "chunked".into()));
    let mut bytes = request_head("PUT", target.as_bytes(), &head);
    bytes.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = s.raw(&bytes).await;
    let first = status_of(&answer);
    assert!((400..500).contains(&first), "CL + TE: {answer}");
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "one answer, no smuggled request: {answer}"
    );

    // Obsolete line folding of a header value.
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
    assert!(
        (400..500).contains(&status_of(&answer)),
        "bad chunk size: {answer}"
    );

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

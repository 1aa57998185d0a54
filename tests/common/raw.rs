//! A raw HTTP/1.1 client, so that forged and hand-signed requests go out byte for byte as
//! written (no URL normalisation, no re-encoding), and a SigV4 signer for building them.

use std::time::SystemTime;

use hcp_s3_gateway::request::authenticate::format_amz_date;
use hcp_s3_gateway::sig::v4 as sigv4;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Every value of header `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// HCP's own `Server` (one, never a backend's).
    pub fn assert_hcp_server(&self) {
        assert_eq!(self.all("server"), ["HCP V9.0.0.2"], "{:?}", self.headers);
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Asserts HCP's status, code and error document (`super::assert_hcp_error_body`).
    pub fn assert_hcp_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "{}",
            self.text()
        );
        super::assert_hcp_error_body(&self.text(), code);
    }
    /// The `<Code>` of an error document.
    pub fn code(&self) -> String {
        let t = self.text();
        t.split("<Code>")
            .nth(1)
            .and_then(|r| r.split("</Code>").next())
            .unwrap_or_default()
            .to_string()
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer. The body goes out in
/// `pieces`; write errors are ignored so that an early answer can still be read.
pub async fn send(
    addr: &str,
    method: &str,
    target: &[u8],
    headers: &[(String, String)],
    pieces: Vec<Vec<u8>>,
) -> RawResponse {
    let mut headers = headers.to_vec();
    headers.push(("Connection".into(), "close".into()));
    send_head(addr, &request_head(method, target, &headers), pieces).await
}

/// Sends one request whose head is these bytes (which should ask `Connection: close`) and
/// reads the whole answer, as [`send`] does.
pub async fn send_head(addr: &str, head: &[u8], pieces: Vec<Vec<u8>>) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(head).await;
    for p in pieces {
        if stream.write_all(&p).await.is_err() {
            break;
        }
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    parse(&raw)
}

/// The SigV4 signature that a request a backend received must carry to verify with `secret`,
/// recomputed from its `Authorization` (scope, signed headers) and the headers it came with
/// (`header` gives a header's value by lower-case name); `None` without such an `Authorization`.
pub fn sigv4_signature_for<'h>(
    secret: &str,
    method: &str,
    target: &str,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Option<String> {
    let auth = header("authorization")?;
    let field = |name: &str| auth.split([' ', ',']).find_map(|p| p.strip_prefix(name));
    let (_, scope) = field("Credential=")?.split_once('/')?;
    let [date, region, service, _] = scope.split('/').collect::<Vec<_>>()[..] else {
        return None;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let canonical = sigv4::canonical_request(
        method,
        &sigv4::canonical_uri(path.as_bytes()),
        &sigv4::canonical_query(query.as_bytes(), &[]),
        field("SignedHeaders=")?,
        |name| header(name).map(str::as_bytes),
        header("x-amz-content-sha256")?,
    );
    let key = sigv4::SigningKey::derive(secret, date, region, service);
    let to_sign = sigv4::string_to_sign(header("x-amz-date")?, scope, &canonical);
    Some(sigv4::signature(&key, &to_sign))
}

/// An HTTP/1.1 request head with exactly these headers.
pub fn request_head(method: &str, target: &[u8], headers: &[(String, String)]) -> Vec<u8> {
    let mut head = Vec::new();
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(target);
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (n, v) in headers {
        head.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

pub fn parse(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..i])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[i + 2 + size + 2..];
    }
    out
}

/// What a SigV4 header signature covers.
pub struct V4<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub host: &'a str,
    pub when: SystemTime,
    pub payload_hash: &'a str,
    /// Sends `x-amz-date` in this form instead of ISO basic (the string to sign stays ISO).
    pub date_header: Option<&'a str>,
}

impl<'a> V4<'a> {
    /// Signing now, for `host`, with `payload_hash` as x-amz-content-sha256.
    pub fn now(
        access_key: &'a str,
        secret_key: &'a str,
        host: &'a str,
        payload_hash: &'a str,
    ) -> V4<'a> {
        V4 {
            access_key,
            secret_key,
            host,
            when: SystemTime::now(),
            payload_hash,
            date_header: None,
        }
    }

    /// Signing now with an unsigned payload, the form most raw tests need.
    pub fn unsigned(access_key: &'a str, secret_key: &'a str, host: &'a str) -> V4<'a> {
        V4::now(access_key, secret_key, host, sigv4::UNSIGNED_PAYLOAD)
    }

    /// Signs `method target` with `extra` headers; returns all headers to send, `Authorization`
    /// included.
    pub fn sign(
        &self,
        method: &str,
        target: &[u8],
        extra: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let amz_date = format_amz_date(self.when);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.into()),
            (
                "x-amz-date".into(),
                self.date_header
                    .map(str::to_string)
                    .unwrap_or_else(|| amz_date.clone()),
            ),
            ("x-amz-content-sha256".into(), self.payload_hash.into()),
        ];
        headers.extend(
            extra
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string())),
        );
        let mut names: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names.dedup();
        let signed = names.join(";");
        let (path, query) = match target.iter().position(|&b| b == b'?') {
            Some(i) => (&target[..i], &target[i + 1..]),
            None => (target, &b""[..]),
        };
        let lookup = |name: &str| -> Vec<&[u8]> {
            headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_bytes())
                .collect()
        };
        let creq = sigv4::canonical_request(
            method,
            &sigv4::canonical_uri(path),
            &sigv4::canonical_query(query, &[]),
            &signed,
            lookup,
            self.payload_hash,
        );
        let scope = sigv4::scope(&amz_date[..8], "us-east-1", "s3");
        let key = sigv4::SigningKey::derive(self.secret_key, &amz_date[..8], "us-east-1", "s3");
        let signature = sigv4::signature(&key, &sigv4::string_to_sign(&amz_date, &scope, &creq));
        headers.push((
            "authorization".into(),
            sigv4::authorization(self.access_key, &scope, &signed, &signature),
        ));
        headers
    }

    /// The seed signature inside the `Authorization` header of `sign`'s output.
    pub fn seed(headers: &[(String, String)]) -> String {
        let auth = &headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1;
        auth.rsplit("Signature=").next().unwrap().to_string()
    }

    /// Builds a signed aws-chunked upload of `data`; `corrupt` flips one signature byte of that chunk.
    pub fn chunked_upload(
        &self,
        target: &str,
        data: &[u8],
        chunk: usize,
        corrupt: Option<usize>,
    ) -> (Vec<(String, String)>, Vec<Vec<u8>>) {
        self.chunked_upload_with(target, (data, chunk), corrupt, &[])
    }

    /// [`V4::chunked_upload`] with `extra` headers signed too.
    pub fn chunked_upload_with(
        &self,
        target: &str,
        data: (&[u8], usize),
        corrupt: Option<usize>,
        extra: &[(&str, &str)],
    ) -> (Vec<(String, String)>, Vec<Vec<u8>>) {
        self.chunked_request(("PUT", target), data, corrupt, extra)
    }

    /// [`V4::chunked_upload_with`] for another method than PUT (a document POSTed signed in
    /// chunks).
    pub fn chunked_request(
        &self,
        (method, target): (&str, &str),
        (data, chunk): (&[u8], usize),
        corrupt: Option<usize>,
        extra: &[(&str, &str)],
    ) -> (Vec<(String, String)>, Vec<Vec<u8>>) {
        // The encoded length depends only on the chunk sizes, so sign with a placeholder body first.
        let placeholder = self.chunked_body(&"0".repeat(64), data, chunk);
        let encoded = total_len(&placeholder).to_string();
        let decoded = data.len().to_string();
        let mut headers = vec![
            ("content-encoding", "aws-chunked"),
            ("content-length", &encoded),
            ("x-amz-decoded-content-length", &decoded),
        ];
        headers.extend_from_slice(extra);
        let headers = self.sign(method, target.as_bytes(), &headers);
        let mut body = self.chunked_body(&V4::seed(&headers), data, chunk);
        if let Some(i) = corrupt {
            let p = &mut body[i];
            let at = p.iter().position(|&b| b == b'=').unwrap() + 1;
            p[at] = if p[at] == b'a' { b'b' } else { b'a' };
        }
        (headers, body)
    }

    /// Encodes `data` as a signed aws-chunked body in `chunk`-byte chunks, chained from `seed`.
    pub fn chunked_body(&self, seed: &str, data: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let amz_date = format_amz_date(self.when);
        let scope = sigv4::scope(&amz_date[..8], "us-east-1", "s3");
        let key = sigv4::SigningKey::derive(self.secret_key, &amz_date[..8], "us-east-1", "s3");
        let mut previous = seed.to_string();
        let mut out = Vec::new();
        let mut pieces: Vec<&[u8]> = data.chunks(chunk).collect();
        pieces.push(&[]);
        for piece in pieces {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{}\n{}",
                sigv4::EMPTY_SHA256,
                sigv4::sha256_hex(piece)
            );
            let sig = sigv4::signature(&key, &sts);
            let mut framed = format!("{:x};chunk-signature={sig}\r\n", piece.len()).into_bytes();
            framed.extend_from_slice(piece);
            // Every chunk's data ends with CRLF; after the empty final chunk that is the end.
            framed.extend_from_slice(b"\r\n");
            out.push(framed);
            previous = sig;
        }
        out
    }
}

/// The encoded length of a list of pieces.
pub fn total_len(pieces: &[Vec<u8>]) -> usize {
    pieces.iter().map(Vec::len).sum()
}

/// Sends one request signed (SigV4 header, unsigned payload) with the given keys, with a
/// Content-Length for a body.
pub async fn send_signed(
    addr: &str,
    keys: (&str, &str),
    method: &str,
    target: &str,
    body: &[u8],
) -> RawResponse {
    send_signed_as(addr, addr, keys, method, target, body).await
}

/// As [`send_signed`], with `host` as the Host header (virtual-host and tenant addressing).
pub async fn send_signed_as(
    addr: &str,
    host: &str,
    keys: (&str, &str),
    method: &str,
    target: &str,
    body: &[u8],
) -> RawResponse {
    signed_request(addr, host, keys, (method, target), &[], body).await
}

/// As [`send_signed`], with `extra` headers signed besides (a `Content-MD5`, an `x-amz-acl`).
pub async fn send_signed_with(
    addr: &str,
    keys: (&str, &str),
    (method, target): (&str, &str),
    extra: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    signed_request(addr, addr, keys, (method, target), extra, body).await
}

async fn signed_request(
    addr: &str,
    host: &str,
    (access_key, secret_key): (&str, &str),
    (method, target): (&str, &str),
    extra: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let v4 = V4::unsigned(access_key, secret_key, host);
    let len = body.len().to_string();
    let mut headers = vec![("content-length", len.as_str())];
    headers.extend_from_slice(extra);
    let headers = v4.sign(method, target.as_bytes(), &headers);
    send(
        addr,
        method,
        target.as_bytes(),
        &headers,
        vec![body.to_vec()],
    )
    .await
}

/// A client connection kept open across requests (whose answers carry a Content-Length), to
/// show that something leaves open connections alone.
pub struct Connection(tokio::net::TcpStream);

impl Connection {
    pub async fn open(addr: &str) -> Connection {
        Connection(tokio::net::TcpStream::connect(addr).await.expect("connect"))
    }

    pub async fn request(
        &mut self,
        method: &str,
        target: &[u8],
        headers: &[(String, String)],
    ) -> RawResponse {
        self.request_with_body(method, target, headers, b"").await
    }

    /// [`Connection::request`] with a body, written whole before the answer is read.
    pub async fn request_with_body(
        &mut self,
        method: &str,
        target: &[u8],
        headers: &[(String, String)],
        body: &[u8],
    ) -> RawResponse {
        self.0
            .write_all(&request_head(method, target, headers))
            .await
            .expect("write request");
        self.0.write_all(body).await.expect("write body");
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = self.0.read(&mut buf).await.expect("read answer");
            assert!(n > 0, "the connection was closed");
            raw.extend_from_slice(&buf[..n]);
            let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if raw.len() >= end + 4 + length || method == "HEAD" {
                return parse(&raw);
            }
        }
    }
}

/// An anonymous form upload (POST object) of the file `data` under `key` into `bucket`.
pub async fn post_form(addr: &str, bucket: &str, key: &str) -> RawResponse {
    post_multipart(addr, bucket, form_body(&[("key", key)], b"data")).await
}

/// A multipart/form-data document (boundary `b`) of `fields`, then the file field (`f`) holding
/// `file`.
pub fn form_body(fields: &[(&str, &str)], file: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--b\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n",
    );
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--b--\r\n");
    body
}

/// A form (boundary `b`) signed with SigV4 by `(access_key, secret_key)`: its policy names
/// `bucket` and each of `fields` by its value, and holds `conditions` (JSON) besides; the
/// credentials are the form's, and `file` comes last.
pub fn signed_form_body(
    (access_key, secret_key): (&str, &str),
    bucket: &str,
    (fields, extra): (&[(&str, &str)], &[&str]),
    file: &[u8],
) -> Vec<u8> {
    let now = format_amz_date(SystemTime::now());
    let dated = (now.as_str(), "2999-01-01T00:00:00.000Z");
    signed_form_body_dated(
        (access_key, secret_key),
        bucket,
        (fields, extra),
        file,
        dated,
    )
}

/// [`signed_form_body`] with its `x-amz-date` (whose day is the credential's) and its
/// policy's expiration given.
pub fn signed_form_body_dated(
    (access_key, secret_key): (&str, &str),
    bucket: &str,
    (fields, extra): (&[(&str, &str)], &[&str]),
    file: &[u8],
    (amz_date, expiration): (&str, &str),
) -> Vec<u8> {
    use base64::Engine as _;
    let day = &amz_date[..8];
    let credential = format!("{access_key}/{day}/us-east-1/s3/aws4_request");
    let mut named: Vec<(&str, &str)> = vec![
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ("x-amz-credential", &credential),
        ("x-amz-date", amz_date),
    ];
    named.extend_from_slice(fields);
    let mut conditions = vec![serde_json::json!({ "bucket": bucket })];
    conditions.extend(named.iter().map(|(n, v)| serde_json::json!({ *n: *v })));
    for c in extra {
        conditions.push(serde_json::from_str(c).expect("a JSON condition"));
    }
    let policy = serde_json::json!({
        "expiration": expiration,
        "conditions": conditions,
    });
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let key = sigv4::SigningKey::derive(secret_key, day, "us-east-1", "s3");
    let signature = sigv4::signature(&key, &policy);
    named.extend([("policy", policy.as_str()), ("x-amz-signature", &signature)]);
    form_body(&named, file)
}

/// An anonymous POST of `body`, a multipart/form-data document with the boundary `b`, to
/// `bucket`.
pub async fn post_multipart(addr: &str, bucket: &str, body: impl AsRef<[u8]>) -> RawResponse {
    post_multipart_with(addr, bucket, body, &[]).await
}

/// [`post_multipart`] with more headers.
pub async fn post_multipart_with(
    addr: &str,
    bucket: &str,
    body: impl AsRef<[u8]>,
    more: &[(&str, &str)],
) -> RawResponse {
    let body = body.as_ref();
    let mut headers = vec![
        ("host".to_string(), addr.to_string()),
        (
            "content-type".into(),
            "multipart/form-data; boundary=b".into(),
        ),
        ("content-length".into(), body.len().to_string()),
    ];
    headers.extend(more.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    let target = format!("/{bucket}");
    send(addr, "POST", target.as_bytes(), &headers, vec![body.into()]).await
}

/// Opens a connection to `addr`, sends `head` (a header section's start) and then one byte
/// every 250 ms for up to 10 s; the task answers whether the connection was closed (within
/// 2 s of the last byte sent) and what it answered.
pub async fn trickle(addr: &str, head: &'static [u8]) -> tokio::task::JoinHandle<(bool, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(head).await.unwrap();
    tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            if slow.write_all(b"X").await.is_err() {
                break;
            }
        }
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            slow.read_to_end(&mut rest),
        )
        .await;
        (closed.is_ok(), rest)
    })
}

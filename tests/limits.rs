//! Limits that protect the gateway and its backend: requests in flight overall and per client
//! (over the limit: HCP's overload answer, 503 ServiceUnavailable, at once).

mod common;

use std::time::Duration;

use common::raw::{request_head, send_signed, V4};
use common::*;
use hcp_s3_gateway::config::{hcp_access_key, hcp_secret_key};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Starts a signed upload of 100,000 bytes (streamed to the backend: more than the gateway
/// holds whole) and sends only ten: the request stays in flight until the returned connection
/// is dropped.
async fn upload_in_flight(addr: &str, bucket: &str, key: &str) -> TcpStream {
    let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let v4 = V4::unsigned(&ak, &sk, addr);
    let target = format!("/{bucket}/{key}");
    let headers = v4.sign("PUT", target.as_bytes(), &[("content-length", "100000")]);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&request_head("PUT", target.as_bytes(), &headers))
        .await
        .unwrap();
    stream.write_all(&[b'x'; 10]).await.unwrap();
    stream
}

async fn wait_for_in_flight(gw: &TestGateway, n: i64) {
    // Generous: the machine may be busy with other tests.
    assert!(
        gw.in_flight_reaches(n, Duration::from_secs(10)).await,
        "{} requests in flight, expected {n}",
        gw.metrics().in_flight.get()
    );
}

/// Over `max_concurrent_requests`, a request is answered 503 ServiceUnavailable with
/// Retry-After and HCP's error document without reaching the backend; when the requests in
/// flight end, their places are free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_in_flight_are_service_unavailable() {
    let gw = start_local_with("max_concurrent_requests = 2", "").await;
    let addr = gw.addr();
    let keys = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let keys = (keys.0.as_str(), keys.1.as_str());
    let bucket = gw.with_bucket("limits").await;
    // A request keeps its place until its answer is out, and the client may read the answer a
    // moment before the gateway lets the place go: start from none in flight.
    wait_for_in_flight(&gw, 0).await;

    let started = gw.backend_requests();
    let held = vec![
        upload_in_flight(&addr, &bucket, "a").await,
        upload_in_flight(&addr, &bucket, "b").await,
    ];
    wait_for_in_flight(&gw, 2).await;
    // Both uploads have reached the backend (their bodies are still coming) before the count
    // that must not move is taken.
    for _ in 0..1000 {
        if gw.backend_requests() == started + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = gw.backend_requests();
    assert_eq!(before, started + 2, "the held uploads reached the backend");
    let refused = send_signed(&addr, keys, "GET", &format!("/{bucket}"), b"").await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_hcp_error_body(&refused.text(), "ServiceUnavailable");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(gw.backend_requests(), before, "nothing was forwarded");
    let metrics = String::from_utf8_lossy(&gw.metrics().render()).into_owned();
    assert!(
        metrics.contains("hcp_gateway_overload_refusals_total{limit=\"total\"} 1"),
        "{metrics}"
    );

    drop(held);
    wait_for_in_flight(&gw, 0).await;
    let listed = send_signed(&addr, keys, "GET", &format!("/{bucket}"), b"").await;
    assert_eq!(listed.status, 200, "{}", listed.text());
}

/// `max_concurrent_requests_per_client` counts per client address: the client at its limit
/// is refused while the overall limit still has room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_place() {
    let gw = start_local_with(
        "max_concurrent_requests = 100\nmax_concurrent_requests_per_client = 1",
        "",
    )
    .await;
    let addr = gw.addr();
    let keys = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let keys = (keys.0.as_str(), keys.1.as_str());
    let bucket = gw.with_bucket("limits").await;
    // A request keeps its place until its answer is out, and the client may read the answer a
    // moment before the gateway lets the place go: start from none in flight.
    wait_for_in_flight(&gw, 0).await;

    let held = upload_in_flight(&addr, &bucket, "a").await;
    wait_for_in_flight(&gw, 1).await;
    let refused = send_signed(&addr, keys, "GET", &format!("/{bucket}"), b"").await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_hcp_error_body(&refused.text(), "ServiceUnavailable");
    assert!(!refused.text().contains("\n  <Code>"), "{}", refused.text());
    // (Its head was read: the overload answer is indented where it asks, as every other.)
    let list = ("GET", format!("/{bucket}"));
    let pretty = [("x-hcp-pretty-print", "true")];
    let refused = common::raw::send_signed_with(&addr, keys, (list.0, &list.1), &pretty, b"").await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    let indented = "\n  <Code>ServiceUnavailable</Code>";
    assert!(refused.text().contains(indented), "{}", refused.text());
    let metrics = String::from_utf8_lossy(&gw.metrics().render()).into_owned();
    assert!(
        metrics.contains("hcp_gateway_overload_refusals_total{limit=\"per-client\"} 2"),
        "{metrics}"
    );
    drop(held);
    wait_for_in_flight(&gw, 0).await;
    assert_eq!(
        send_signed(&addr, keys, "GET", &format!("/{bucket}"), b"")
            .await
            .status,
        200
    );
}

/// `limits.max_header_bytes`: a larger request line and header section is 400 InvalidArgument
/// and the connection closes; one within the limit is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_header_sections_are_refused() {
    let gw = start_local_with("", "[limits]\nmax_header_bytes = 4096").await;
    let addr = gw.addr();
    let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let bucket = gw.with_bucket("headers").await;
    for (size, status) in [(2000, 200), (5000, 400)] {
        let v4 = V4::unsigned(&ak, &sk, &addr);
        let target = format!("/{bucket}");
        let filler = "f".repeat(size);
        let headers = v4.sign("GET", target.as_bytes(), &[("x-filler", &filler)]);
        let r = common::raw::send(&addr, "GET", target.as_bytes(), &headers, vec![]).await;
        assert_eq!(r.status, status, "{size}: {}", r.text());
        if status == 400 {
            assert_hcp_error_body(&r.text(), "InvalidArgument");
            assert_eq!(r.header("connection"), Some("close"));
        }
    }
}

/// A header section that goes on past `limits.max_header_bytes` without ending is refused once
/// the gateway has read that much (and a little more): 400 InvalidArgument at once, not after
/// pingora's 1 MiB or the header deadline — what such a connection holds is bounded by the
/// limit, not by what the client sends. Several at once, each answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_section_that_never_ends_is_refused_at_its_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = start_local_with("", "[limits]\nmax_header_bytes = 4096").await;
    let addr = gw.addr();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let addr = addr.clone();
        clients.push(tokio::spawn(async move {
            let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
            // (Fewer lines than pingora's 256 headers, which it would refuse as malformed.)
            let line = format!("x-filler: {}\r\n", "f".repeat(4000));
            let mut head = b"GET /bucket HTTP/1.1\r\nhost: h\r\n".to_vec();
            while head.len() < 300_000 {
                head.extend_from_slice(line.as_bytes());
            }
            // (No blank line: the section never ends.)
            let _ = c.write_all(&head).await;
            let mut answer = Vec::new();
            let read = c.read_to_end(&mut answer);
            tokio::time::timeout(std::time::Duration::from_secs(10), read)
                .await
                .expect("answered before the header deadline")
                .ok();
            String::from_utf8_lossy(&answer).to_string()
        }));
    }
    for c in clients {
        let answer = c.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        assert_hcp_error_body(body, "InvalidArgument");
        assert!(body.contains("larger than 4096 bytes"), "{body}");
    }
}

/// A gateway whose requests hold at most `held` bytes together, each at most `one` (a backend
/// answer, a form's file, a control document; a signed chunk 15/16 of it).
async fn with_held_bytes(held: usize, one: usize) -> TestGateway {
    let chunk = one / 16 * 15;
    let settings = format!(
        "max_held_bytes = {held}\nmax_buffered_response_bytes = {one}\nmax_chunk_bytes = {chunk}"
    );
    let limits = format!("[limits]\nmax_post_object_bytes = {one}\nmax_control_body_bytes = {one}");
    start_local_with(&settings, &limits).await
}

/// Header sections that go on without ending take the memory they hold past pingora's first
/// 4 KiB from a budget of their own (a quarter of `server.max_held_bytes`, besides it): with it
/// spent, another long one is 503 ServiceUnavailable at once, while requests of ordinary heads
/// are served — those that hold memory from the requests' budget too (a listing read whole);
/// gone, they hold nothing. (Before, 2,000 unauthenticated connections of 88 KiB held 128 KiB
/// each, a pod's memory, for the whole header deadline.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_sections_hold_memory_from_a_budget_of_their_own() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = with_held_bytes(1_048_576, 65_536).await;
    let addr = gw.addr();
    let bucket = gw.with_bucket("heads").await;
    let s3 = gw.client();
    let put = s3.put_object().bucket(&bucket).key("k");
    put.body(b"kept".to_vec().into()).send().await.unwrap();
    let unended = |size: usize| {
        let line = format!("x-filler: {}\r\n", "f".repeat(1000));
        let mut head = b"GET /bucket HTTP/1.1\r\nhost: h\r\n".to_vec();
        while head.len() < size {
            head.extend_from_slice(line.as_bytes());
        }
        head
    };
    // Two heads of 40 KB that wait, each holding twice 64 KiB: the heads' whole 256 KiB.
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(&unended(40_000)).await.unwrap();
        waiting.push(c);
    }
    assert!(
        held_reaches(&gw, 200_000, true).await,
        "{}",
        gw.metrics().held_bytes.get()
    );
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = c.write_all(&unended(40_000)).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut answer));
    read.await.expect("answered at once").ok();
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert_hcp_error_body(
        &answer[answer.find("\r\n\r\n").unwrap() + 4..],
        "ServiceUnavailable",
    );
    // Requests of ordinary heads meanwhile: a GET, and a listing read whole (held).
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"kept");
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.contents().len(), 1);
    drop(waiting);
    assert!(
        held_reaches(&gw, 0, false).await,
        "{}",
        gw.metrics().held_bytes.get()
    );
}

/// The admin listener reads a few KiB of a header section, not the 1 MiB pingora would hold
/// for it: a section that never ends is cut off as it passes them, not at the exchange's 2 s
/// deadline with all of it held.
#[tokio::test]
async fn an_admin_header_section_that_never_ends_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = start_local_with("", "").await;
    let addr = gw.admin.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let line = format!("x-filler: {}\r\n", "f".repeat(4000));
    let mut head = b"GET /metrics HTTP/1.1\r\nhost: h\r\n".to_vec();
    while head.len() < 64 * 1024 {
        head.extend_from_slice(line.as_bytes());
    }
    let started = std::time::Instant::now();
    let _ = c.write_all(&head).await;
    let mut answer = Vec::new();
    let read = c.read_to_end(&mut answer);
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(1), "held for {waited:?}");
    // (Probes still answered.)
    let healthz = reqwest::get(format!("{}/healthz", gw.admin)).await.unwrap();
    assert_eq!(healthz.status(), 200);
}

/// `server.max_connections`: while that many client connections are open the S3 listener
/// accepts no more — the next waits in the kernel's queue, unanswered — and the admin
/// listener still answers probes; when one closes, the waiting client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_wait_for_a_place() {
    let gw = start_local_with("max_connections = 2", "").await;
    let addr = gw.addr();
    let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let bucket = gw.with_bucket("places").await;
    let holders = [
        TcpStream::connect(&addr).await.unwrap(),
        TcpStream::connect(&addr).await.unwrap(),
    ];
    let waiting = {
        let (addr, target) = (addr.clone(), format!("/{bucket}"));
        tokio::spawn(async move { send_signed(&addr, (&ak, &sk), "GET", &target, b"").await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a third connection was served");
    let healthz = reqwest::get(format!("{}/healthz", gw.admin)).await.unwrap();
    assert_eq!(healthz.status(), 200);
    let metrics = gw.metrics();
    assert_eq!(metrics.client_connections.get(), 2);
    assert!(metrics.connection_limit_reached.get() >= 1);
    drop(holders);
    let r = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a place was free")
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A new connection's first request must start within `client_header_timeout_seconds`: one
/// that sends nothing is closed then (it held its place of `max_connections` that long, not
/// the keep-alive time), while a connection that was served waits `keepalive_seconds` for its
/// next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncReadExt;
    let gw = start_local_with(
        "client_header_timeout_seconds = 1\nkeepalive_seconds = 30",
        "",
    )
    .await;
    let addr = gw.addr();
    let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let bucket = gw.with_bucket("first-wait").await;
    let started = std::time::Instant::now();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Served once, a connection waits longer than that for its next request.
    let mut served = common::raw::Connection::open(&addr).await;
    let target = format!("/{bucket}");
    for _ in 0..2 {
        let headers = V4::unsigned(&ak, &sk, &addr).sign("GET", target.as_bytes(), &[]);
        let r = served.request("GET", target.as_bytes(), &headers).await;
        assert_eq!(r.status, 200, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
}

/// A CompleteMultipartUpload listing 10,000 parts (about 0.8 MiB) is within
/// `limits.max_control_body_bytes` and is judged on its content (here: parts that were never
/// uploaded, HCP's 200 InvalidPart); past a smaller configured limit it is 400 MalformedXML
/// before the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_listing_ten_thousand_parts_is_read() {
    let mut document = String::from("<CompleteMultipartUpload>");
    for n in 1..=10_000 {
        document.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>\"{:032x}\"</ETag></Part>",
            n
        ));
    }
    document.push_str("</CompleteMultipartUpload>");
    assert!(document.len() > 700 * 1024);

    for (limit, expect) in [
        (None, (200, "InvalidPart")),
        (Some(65536), (400, "MalformedXML")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let Some(entry) = Backend::Rgw.config_entry(&dir.path().join("data")) else {
            return;
        };
        let limits = limit.map_or(String::new(), |l| {
            format!("[limits]\nmax_control_body_bytes = {l}\n")
        });
        let text = format!("{}\n{limits}{entry}", base_config(""));
        let gw = start_text(&text, dir, Backend::Rgw).await;
        let s3 = gw.client();
        let bucket = gw.with_bucket("complete").await;
        let up = s3
            .create_multipart_upload()
            .bucket(&bucket)
            .key("many")
            .send()
            .await
            .unwrap();
        let addr = gw.addr();
        let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
        let target = format!("/{bucket}/many?uploadId={}", up.upload_id().unwrap());
        let before = gw.backend_requests();
        let r = send_signed(&addr, (&ak, &sk), "POST", &target, document.as_bytes()).await;
        assert_eq!((r.status, r.code().as_str()), expect, "{}", r.text());
        if limit.is_some() {
            assert_eq!(
                gw.backend_requests(),
                before,
                "the refused document was forwarded"
            );
        }
        s3.abort_multipart_upload()
            .bucket(&bucket)
            .key("many")
            .upload_id(up.upload_id().unwrap())
            .send()
            .await
            .unwrap();
    }
}

/// An aws-chunked chunk larger than `max_chunk_bytes` is refused when its size line arrives —
/// the gateway holds a chunk until its signature is checked, so this bounds that buffer — and
/// nothing is stored; chunks within the limit go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_chunked_chunks_over_the_limit_are_refused() {
    let gw = start_local_with("max_chunk_bytes = 65536", "").await;
    let bucket = gw.with_bucket("chunklimit").await;
    let addr = gw.addr();
    let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let v4 = V4::now(&ak, &sk, &addr, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    let data = pattern(300_000, 3);
    let within = format!("/{bucket}/within");
    let (headers, body) = v4.chunked_upload(&within, &data, 65536, None);
    let r = common::raw::send(&addr, "PUT", within.as_bytes(), &headers, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let over = format!("/{bucket}/over");
    let (headers, body) = v4.chunked_upload(&over, &data, 131072, None);
    let r = common::raw::send(&addr, "PUT", over.as_bytes(), &headers, body).await;
    r.assert_hcp_error(400, "InvalidArgument");
    let s3 = gw.client();
    assert_eq!(object_bytes(&s3, &bucket, "within").await, data);
    assert!(s3
        .head_object()
        .bucket(&bucket)
        .key("over")
        .send()
        .await
        .is_err());
}

/// A gateway on the local backend with its header timeout and grace period.
async fn start_timed(header_timeout: u64, grace: u64) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let entry = Backend::Local
        .config_entry(&dir.path().join("data"))
        .unwrap();
    let text = base_config("")
        .replace(
            "shutdown_grace_seconds = 2",
            &format!("shutdown_grace_seconds = {grace}"),
        )
        .replace(
            "[server]\n",
            &format!("[server]\nclient_header_timeout_seconds = {header_timeout}\n"),
        );
    start_text(&format!("{text}\n{entry}"), dir, Backend::Local).await
}

/// The admin listener is bounded as the S3 one is: a connection trickling its request (or
/// idling) is closed after `client_header_timeout_seconds`, and shutdown does not wait for a
/// scraper's idle keep-alive connection — it ends as soon as the S3 connections have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_connections_are_bounded_in_time_and_hold_no_shutdown() {
    use tokio::io::AsyncReadExt;
    let gw = start_timed(1, 2).await;
    let admin = gw.admin.trim_start_matches("http://").to_string();
    let started = std::time::Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";
    let (closed, _) = common::raw::trickle(&admin, head).await.await.unwrap();
    assert!(closed, "the trickling admin connection stayed open");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "closed only after {:?}",
        started.elapsed()
    );
    gw.stop().await;

    // A scraper's connection is served once and closed: one that asked again within each
    // exchange's deadline would hold its admin place (of 64) for good.
    let gw = start_timed(10, 10).await;
    let admin = gw.admin.trim_start_matches("http://").to_string();
    let mut scraper = TcpStream::connect(&admin).await.unwrap();
    scraper
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = scraper.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .expect("the admin connection closed after its answer")
        .unwrap();
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    let stopping = std::time::Instant::now();
    gw.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "shutdown waited {:?} for an idle admin connection",
        stopping.elapsed()
    );
    drop(scraper);
}

/// A refused client costs only itself: a request whose credentials fail, or an anonymous one
/// refused, is answered `Connection: close` and its connection closed, so that it holds no
/// place of `max_connections` for the keep-alive time (a served client's connection stays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_holds_no_connection_place() {
    use tokio::io::AsyncReadExt;
    let gw = start_local_with("max_connections = 6\nkeepalive_seconds = 60", "").await;
    let addr = gw.addr();
    let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let bucket = gw.with_bucket("refused-places").await;
    let target = format!("/{bucket}");
    let anonymous = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    let wrong = V4::unsigned(&ak, "not-the-secret", &addr).sign("GET", target.as_bytes(), &[]);
    let forged = request_head("GET", target.as_bytes(), &wrong);
    // Forms too: an anonymous one to a bucket nobody may write anonymously, and one whose
    // signature is wrong.
    let form = |body: Vec<u8>| {
        let mut head = format!(
            "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; \
             boundary=b\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        head.extend(body);
        head
    };
    let anonymous_form = form(common::raw::form_body(&[("key", "k")], b"data"));
    let fields: &[(&str, &str)] = &[("key", "k")];
    let wrong = (ak.as_str(), "not-the-secret");
    let forged_form = form(common::raw::signed_form_body(
        wrong,
        &bucket,
        (fields, &[]),
        b"x",
    ));
    // Requests refused before anyone is known: a host naming no tenant, a method the service
    // does not have, a bucket name that is no text, a preflight of the service.
    let ghost = b"GET / HTTP/1.1\r\nHost: ghost.hcp.test\r\n\r\n".to_vec();
    let no_method = format!("DELETE / HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    let no_name = format!("GET /%FF/k HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    let preflight = format!(
        "OPTIONS / HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://x.example\r\n\
         Access-Control-Request-Method: GET\r\n\r\n"
    )
    .into_bytes();
    // Forms refused before anyone is known: no form at all, and a form without its file.
    let no_form =
        format!("POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n").into_bytes();
    let fileless = {
        let body = "--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--b--\r\n";
        let mut head = format!(
            "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; \
             boundary=b\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        head.extend_from_slice(body.as_bytes());
        head
    };
    // (Fields past their budget before any boundary — on the read that ends the body, so
    // that the body is read whole: refused when the budget is spent.)
    let boundless = {
        let body = vec![b'x'; 200 * 1024];
        let mut head = format!(
            "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; \
             boundary=b\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        head.extend_from_slice(&body);
        head
    };
    let mut refused = Vec::new();
    for (what, head, status) in [
        ("no form at all", &no_form, "400"),
        ("fields past their budget", &boundless, "400"),
        ("a form without its file", &fileless, "400"),
        ("anonymous", &anonymous, "403"),
        ("a wrong signature", &forged, "403"),
        ("an anonymous form", &anonymous_form, "403"),
        ("a form's wrong signature", &forged_form, "403"),
        ("a host naming no tenant", &ghost, "403 "),
        ("a method the service has not", &no_method, "405"),
        ("a bucket name that is no text", &no_name, "400"),
        ("a preflight of the service", &preflight, "403"),
    ] {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(head).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut answer)).await;
        assert!(
            read.is_ok(),
            "{what}: the connection stayed open after the refusal"
        );
        let text = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(
            text.starts_with(&format!("http/1.1 {status}")),
            "{what}: {text}"
        );
        assert!(text.contains("\r\nconnection: close\r\n"), "{what}: {text}");
        if head == &preflight {
            assert!(text.contains("cors is not enabled"), "{what}: {text}");
        }
        refused.push(c);
    }
    // A refused upload's body, sent whole before its answer is read, is drained first: the
    // answer arrives whole, then the connection closes (closing with bytes unread would reset
    // it, and the answer could be lost).
    let mut upload = TcpStream::connect(&addr).await.unwrap();
    let body = vec![b'x'; 1 << 20];
    let head = format!(
        "PUT {target}/k HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    upload.write_all(head.as_bytes()).await.unwrap();
    upload.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), upload.read_to_end(&mut answer)).await;
    assert!(matches!(read, Ok(Ok(_))), "{read:?}");
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.1 403"), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    assert!(text.ends_with("</error>\n"), "the whole answer: {text}");
    refused.push(upload);
    // Every place but the one a served client keeps is free: two more clients are served.
    let mut served = TcpStream::connect(&addr).await.unwrap();
    let ok = V4::unsigned(&ak, &sk, &addr).sign("GET", target.as_bytes(), &[]);
    served
        .write_all(&request_head("GET", target.as_bytes(), &ok))
        .await
        .unwrap();
    let mut first = [0u8; 12];
    served.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        send_signed(&addr, (&ak, &sk), "GET", &target, b""),
    )
    .await
    .expect("served: the refused clients hold no place");
    assert_eq!(r.status, 200, "{}", r.text());
    drop((refused, served));
}

/// The admin listener's few places are not held by connections that send nothing: each is
/// closed after at most 2 s, so that a probe behind 256 idle connections (4 from each of 64
/// addresses: every place) is answered within a few seconds — before the kubelet gives up on
/// it — not after `client_header_timeout_seconds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_keep_the_admin_listener_from_its_probes() {
    let gw = start_local_with("client_header_timeout_seconds = 30", "").await;
    let admin: std::net::SocketAddr = gw.admin.trim_start_matches("http://").parse().unwrap();
    let mut idle = Vec::new();
    for peer in 1..=64 {
        idle.extend(idle_from(admin, [127, 0, 1, peer], 4).await);
    }
    let started = std::time::Instant::now();
    let probe = tokio::time::timeout(
        Duration::from_secs(10),
        reqwest::get(format!("{}/healthz", gw.admin)),
    )
    .await
    .expect("the probe was answered")
    .unwrap();
    assert_eq!(probe.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    drop(idle);
}

/// Whether the bytes requests hold reach at least (`at_least`) or at most (`!at_least`) `n`
/// within ten seconds.
async fn held_reaches(gw: &TestGateway, n: i64, at_least: bool) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let held = gw.metrics().held_bytes.get();
        if (at_least && held >= n) || (!at_least && held <= n) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A form upload (anonymous, to a `dropbox-*` bucket) that sends `sent` bytes of its file and
/// waits, holding them, until the returned connection is dropped.
async fn form_holding(addr: &str, bucket: &str, key: &str, sent: usize) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary=b\r\n\
         Content-Length: 1048576\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n\
         {key}\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n"
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(&vec![b'f'; sent]).await.unwrap();
    c
}

/// A hundred keys of a thousand bytes in `bucket`: a listing of about 130 KB.
async fn long_keys(addr: &str, keys: (&str, &str), bucket: &str) {
    for i in 0..100 {
        let target = format!("/{bucket}/{i:03}{}", "k".repeat(997));
        let r = send_signed(addr, keys, "PUT", &target, b"x").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

/// What requests hold in memory — a form's file, a signed chunk until its signature is checked,
/// a backend's listing read whole to become HCP's — comes from one budget,
/// `server.max_held_bytes`. Two forms holding most of it leave no room for a signed chunk of
/// 300,000 bytes, a listing of about 130 KB or a form's file of 200,000 bytes: each is 503
/// ServiceUnavailable (counted as `held-bytes` refusals), the chunked upload stores nothing;
/// once the forms are gone, the same requests succeed and nothing is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_hold_memory_from_one_budget() {
    let gw = with_held_bytes(2_097_152, 1_048_576).await;
    let addr = gw.addr();
    let bucket = gw.with_bucket("dropbox-held").await;
    let keys = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let keys = (keys.0.as_str(), keys.1.as_str());
    long_keys(&addr, keys, &bucket).await;
    let list = format!("/{bucket}?max-keys=1000");
    let v4 = V4::now(keys.0, keys.1, &addr, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    let chunked = format!("/{bucket}/chunked");
    let data = pattern(300_000, 5);
    let big_form = common::raw::form_body(&[("key", "big")], &vec![b'g'; 200_000]);

    let held = [
        form_holding(&addr, &bucket, "slow-1", 1_000_000).await,
        form_holding(&addr, &bucket, "slow-2", 1_000_000).await,
    ];
    assert!(
        held_reaches(&gw, 2_000_000, true).await,
        "the forms hold {}",
        gw.metrics().held_bytes.get()
    );
    let (headers, body) = v4.chunked_upload(&chunked, &data, 300_000, None);
    let r = common::raw::send(&addr, "PUT", chunked.as_bytes(), &headers, body).await;
    r.assert_hcp_error(503, "ServiceUnavailable");
    let r = send_signed(&addr, keys, "GET", &list, b"").await;
    r.assert_hcp_error(503, "ServiceUnavailable");
    let r = common::raw::post_multipart(&addr, &bucket, big_form.clone()).await;
    r.assert_hcp_error(503, "ServiceUnavailable");
    let refusals = gw
        .metrics()
        .overload_refusals
        .with_label_values(&["held-bytes"])
        .get();
    assert_eq!(refusals, 3);
    assert!(gw.metrics().held_bytes.get() <= 2_097_152);
    let r = send_signed(&addr, keys, "HEAD", &chunked, b"").await;
    assert_eq!(r.status, 404, "the refused chunked upload was stored");

    drop(held);
    assert!(
        held_reaches(&gw, 0, false).await,
        "the forms' bytes stay held"
    );
    let (headers, body) = v4.chunked_upload(&chunked, &data, 300_000, None);
    let r = common::raw::send(&addr, "PUT", chunked.as_bytes(), &headers, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send_signed(&addr, keys, "GET", &list, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text().matches("<Key>").count(), 101);
    let r = common::raw::post_multipart(&addr, &bucket, big_form).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(object_bytes(&gw.client(), &bucket, "chunked").await, data);
    assert!(
        held_reaches(&gw, 0, false).await,
        "bytes stay held after the answers"
    );

    // A signed chunk verified and released that leaves the body short of its declared length
    // goes to the backend at once (which, told that length, cannot commit the body without
    // the rest): it is not held while the next one trickles (before, it was held back, counted,
    // for as long as the next one took — a slow client holding two chunks of the budget).
    // Only the chunk completing the body waits for the whole body's checks: a forged one
    // stores nothing.
    let two = format!("/{bucket}/two");
    let (mut headers, body) = v4.chunked_upload(&two, &pattern(900_000, 6), 600_000, Some(1));
    headers.push(("connection".into(), "close".into()));
    let mut c = trickling(&addr, &two, &headers, &body).await;
    // (Time for the first chunk to be read and verified: held meanwhile.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        held_reaches(&gw, 100_000, false).await,
        "the chunk sent on is still held: {}",
        gw.metrics().held_bytes.get()
    );
    c.write_all(&body[1][200..]).await.unwrap();
    c.write_all(&body[2]).await.unwrap();
    let answer = read_answer(&mut c).await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(answer.contains("SignatureDoesNotMatch"), "{answer}");
    let r = send_signed(&addr, keys, "HEAD", &two, b"").await;
    assert_eq!(r.status, 404, "the forged upload was stored");
    // Cut off halfway, nothing stays held.
    let (headers, body) = v4.chunked_upload(&two, &pattern(900_000, 6), 600_000, None);
    let c = trickling(&addr, &two, &headers, &body).await;
    drop(c);
    assert!(
        held_reaches(&gw, 0, false).await,
        "the cut-off upload's bytes stay held"
    );
    let r = send_signed(&addr, keys, "HEAD", &two, b"").await;
    assert_eq!(r.status, 404, "the cut-off upload was stored");
}

/// A signed chunked upload of `body` to `target` sent up to the first 200 bytes of its second
/// chunk, and left trickling.
async fn trickling(
    addr: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[Vec<u8>],
) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(&request_head("PUT", target.as_bytes(), headers))
        .await
        .unwrap();
    c.write_all(&body[0]).await.unwrap();
    c.write_all(&body[1][..200]).await.unwrap();
    c
}

/// The answer on `c` (its request asked `Connection: close`), read until the connection
/// closes (at most 10 s).
async fn read_answer(c: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "no end to the answer: {}",
        String::from_utf8_lossy(&answer)
    );
    String::from_utf8_lossy(&answer).into_owned()
}

/// A CORS configuration is read to HCP's 2.5 MB whatever the limit of other documents, but
/// never past what the held-bytes budget grants one request, nor past what the gateway could
/// read back from the backend (half of `max_buffered_response_bytes`): larger, it is 400
/// EntityTooLarge, nothing sent (not a 503 on every retry, nor a configuration kept that every
/// `GET ?cors` and preflight then fails on); within them it is kept, read back and applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cors_configuration_is_read_within_the_budget() {
    let one = "<CORSRule><AllowedOrigin>https://big.example</AllowedOrigin>\
               <AllowedMethod>GET</AllowedMethod></CORSRule>";
    let limits = "[limits]\nmax_post_object_bytes = 131072\nmax_control_body_bytes = 65536";
    for (held, answers, kept) in [(1_310_720, 1_048_576, true), (655_360, 65_536, false)] {
        let settings = format!(
            "max_held_bytes = {held}\nmax_buffered_response_bytes = {answers}\n\
             max_chunk_bytes = 262144"
        );
        let gw = start_local_with(&settings, limits).await;
        let addr = gw.addr();
        let bucket = gw.with_bucket("cors-budget").await;
        let keys = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
        let keys = (keys.0.as_str(), keys.1.as_str());
        let target = format!("/{bucket}?cors");
        let put = |rules: usize| {
            let doc = format!(
                "<CORSConfiguration>{}</CORSConfiguration>",
                one.repeat(rules)
            );
            let md5 = content_md5(doc.as_bytes());
            let (addr, target) = (addr.clone(), target.clone());
            async move {
                let headers = [("content-md5", md5.as_str())];
                let put = ("PUT", target.as_str());
                common::raw::send_signed_with(&addr, keys, put, &headers, doc.as_bytes()).await
            }
        };
        let before = gw.backend_requests();
        // (About 1 MB.)
        put(10_000).await.assert_hcp_error(400, "EntityTooLarge");
        assert_eq!(gw.backend_requests(), before, "reached the backend");
        // (About 300 KB.)
        let r = put(3_000).await;
        if !kept {
            r.assert_hcp_error(400, "EntityTooLarge");
            continue;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        let r = send_signed(&addr, keys, "GET", &target, b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text().matches("<CORSRule>").count(), 3_000);
        let preflight = vec![
            ("host".to_string(), addr.clone()),
            ("origin".to_string(), "https://big.example".to_string()),
            (
                "access-control-request-method".to_string(),
                "GET".to_string(),
            ),
        ];
        let object = format!("/{bucket}/k");
        let r = common::raw::send(&addr, "OPTIONS", object.as_bytes(), &preflight, vec![]).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

/// A listing is held as the copies its rewrite makes, not once: the document read, the one
/// rewritten and, with `x-hcp-pretty-print`, the one indented (room for twice its length).
/// Alone on the gateway such a listing is answered whatever its copies come to (refused there,
/// it would be refused on every retry); beside a form holding part of the budget, the indented
/// one is 503 ServiceUnavailable (before, it was answered: the budget counted one copy while
/// the process held up to five); nothing is held after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_is_held_as_the_copies_it_makes() {
    let settings = "max_held_bytes = 614400\nmax_buffered_response_bytes = 262144\n\
                    max_chunk_bytes = 131072";
    let limits = "[limits]\nmax_post_object_bytes = 131072\nmax_control_body_bytes = 131072";
    let gw = start_local_with(settings, limits).await;
    let addr = gw.addr();
    let bucket = gw.with_bucket("dropbox-copies").await;
    let keys = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let keys = (keys.0.as_str(), keys.1.as_str());
    long_keys(&addr, keys, &bucket).await;
    let list = format!("/{bucket}?list-type=2");
    let v4 = V4::now(keys.0, keys.1, &addr, hcp_s3_gateway::sig::v4::EMPTY_SHA256);
    let pretty = [("x-hcp-pretty-print", "true")];
    let headers = v4.sign("GET", list.as_bytes(), &pretty);
    let r = common::raw::send(&addr, "GET", list.as_bytes(), &headers, vec![]).await;
    assert_eq!(r.status, 200, "alone: {}", r.text());
    let read = r.body.len();
    assert!((100_000..400_000).contains(&read), "{read}");
    let form = form_holding(&addr, &bucket, "slow", 100_000).await;
    assert!(
        held_reaches(&gw, 100_000, true).await,
        "the form holds {}",
        gw.metrics().held_bytes.get()
    );
    let r = common::raw::send(&addr, "GET", list.as_bytes(), &headers, vec![]).await;
    // (Indented as asked: the shape checked by its elements.)
    let code = (r.status, r.code());
    assert_eq!(
        code,
        (503, "ServiceUnavailable".to_string()),
        "{}",
        r.text()
    );
    assert!(r.text().contains("<RequestId>"), "{}", r.text());
    drop(form);
    assert!(
        held_reaches(&gw, 0, false).await,
        "{}",
        gw.metrics().held_bytes.get()
    );
}

/// A bucket sub-resource's document is held as the copies its rewrite makes too: a CORS
/// configuration of about 200 KB read back with `x-hcp-pretty-print` is answered alone, and
/// beside a form holding part of the budget is 503 ServiceUnavailable (before, its copies were
/// not counted — an operation without a result root was taken for an error document — and it
/// was answered, the process holding several times what the budget said).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_resource_s_document_is_held_as_the_copies_it_makes() {
    let settings = "max_held_bytes = 614400\nmax_buffered_response_bytes = 524288\n\
                    max_chunk_bytes = 131072";
    let limits = "[limits]\nmax_post_object_bytes = 131072\nmax_control_body_bytes = 131072";
    let gw = start_local_with(settings, limits).await;
    let addr = gw.addr();
    let bucket = gw.with_bucket("dropbox-cors-copies").await;
    let keys = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let keys = (keys.0.as_str(), keys.1.as_str());
    let rules: String = (0..1000)
        .map(|i| {
            format!(
                "<CORSRule><AllowedOrigin>https://o{i:04}.{}.example</AllowedOrigin>\
                 <AllowedMethod>GET</AllowedMethod></CORSRule>",
                "x".repeat(120)
            )
        })
        .collect();
    let doc = format!("<CORSConfiguration>{rules}</CORSConfiguration>");
    assert!((190_000..230_000).contains(&doc.len()), "{}", doc.len());
    let md5 = content_md5(doc.as_bytes());
    let target = format!("/{bucket}?cors");
    let headers = [("content-md5", md5.as_str())];
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "PUT",
        &target,
        &headers,
        doc.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v4 = V4::now(keys.0, keys.1, &addr, hcp_s3_gateway::sig::v4::EMPTY_SHA256);
    let pretty = [("x-hcp-pretty-print", "true")];
    let headers = v4.sign("GET", target.as_bytes(), &pretty);
    let r = common::raw::send(&addr, "GET", target.as_bytes(), &headers, vec![]).await;
    assert_eq!(r.status, 200, "alone: {}", r.text());
    assert!(r.text().contains("o0999"), "the whole configuration");
    let form = form_holding(&addr, &bucket, "slow", 100_000).await;
    assert!(
        held_reaches(&gw, 100_000, true).await,
        "the form holds {}",
        gw.metrics().held_bytes.get()
    );
    let r = common::raw::send(&addr, "GET", target.as_bytes(), &headers, vec![]).await;
    let code = (r.status, r.code());
    let busy = (503, "ServiceUnavailable".to_string());
    assert_eq!(code, busy, "{}", r.text());
    drop(form);
    assert!(
        held_reaches(&gw, 0, false).await,
        "{}",
        gw.metrics().held_bytes.get()
    );
}

/// One peer that opens connections to the admin listener and sends nothing leaves a reserve of
/// its places to the others (the rest of its connections are closed at once, never queued):
/// the kubelet's probe, from another address, is answered at once — before, 300 idle
/// connections from one address held every place two seconds a round, and a probe waited
/// behind them past its timeout. A probe sharing an address with a few idle connections (a
/// mesh's proxy) is answered too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_cannot_starve_the_admin_listener() {
    use tokio::io::AsyncReadExt;
    let gw = start_local_with("", "").await;
    let admin: std::net::SocketAddr = gw.admin.trim_start_matches("http://").parse().unwrap();
    let idle = idle_from(admin, [127, 0, 0, 2], 300).await;
    let started = std::time::Instant::now();
    let answer = probed_within_a_second(admin, "/healthz").await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // (Past 256 - 64 places, the address's connections were closed at once.)
    let mut open = 0;
    for mut conn in idle {
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_millis(5), conn.read(&mut byte)).await;
        if closed.is_err() {
            open += 1;
        }
    }
    assert!(
        open <= 256 - 64,
        "{open} idle connections of one address held"
    );
    // A probe beside a few idle connections of its own address.
    let mut beside = Vec::new();
    for _ in 0..6 {
        beside.push(TcpStream::connect(admin).await.unwrap());
    }
    let answer = probed_within_a_second(admin, "/readyz").await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    drop(beside);
}

/// `n` connections to `admin` from the loopback address `from`, sending nothing.
async fn idle_from(admin: std::net::SocketAddr, from: [u8; 4], n: usize) -> Vec<TcpStream> {
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
        idle.push(socket.connect(admin).await.unwrap());
    }
    idle
}

/// The admin listener's whole answer to a probe of `path` (from 127.0.0.1), which must come
/// within a second — the kubelet's default timeout.
async fn probed_within_a_second(admin: std::net::SocketAddr, path: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut probe = TcpStream::connect(admin).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    probe.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = probe.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(1), read)
        .await
        .unwrap_or_else(|_| panic!("{path} is answered within a second"))
        .unwrap();
    answer
}

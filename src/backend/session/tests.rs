//! The backend session against a scripted peer on loopback: the bytes an answer is framed with
//! are the test's, sent in the pieces it chooses; what the session wrote is what the peer read.

use super::*;
use pingora::protocols::l4::stream::Stream as L4Stream;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A session to a peer that sends `pieces` (each flushed on its own; an empty one is a pause),
/// then closes its side if `close`; the peer's task gives back everything the session wrote, once the session is gone.
async fn peer(pieces: Vec<Vec<u8>>, close: bool) -> (BackendSession, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (mut read, mut write) = tcp.into_split();
        let reader = tokio::spawn(async move {
            let mut seen = Vec::new();
            let _ = read.read_to_end(&mut seen).await;
            seen
        });
        for piece in pieces {
            if piece.is_empty() {
                tokio::time::sleep(Duration::from_millis(3)).await;
                continue;
            }
            if write.write_all(&piece).await.is_err() {
                break;
            }
            let _ = write.flush().await;
            tokio::task::yield_now().await;
        }
        if close {
            let _ = write.shutdown().await;
        }
        let seen = reader.await.unwrap();
        drop(write);
        seen
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut session = BackendSession::new(Box::new(L4Stream::from(tcp)));
    session.read_timeout = Some(Duration::from_secs(5));
    session.write_timeout = Some(Duration::from_secs(5));
    (session, task)
}

fn request(method: &str, headers: &[(&'static str, &str)]) -> RequestHead {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = RequestHead::new(method, b"/bucket/key?versionId=1", 64);
    for (name, value) in headers {
        req.insert(name, value.as_bytes());
    }
    req
}

/// Sends a bodiless `method` request.
async fn ask(session: &mut BackendSession, method: &str) {
    session
        .write_request_header(&request(method, &[]))
        .await
        .unwrap();
    session.finish_body().await.unwrap();
}

/// The answer's whole body.
async fn read_answer(session: &mut BackendSession) -> Result<Vec<u8>> {
    session.read_response().await?;
    let mut body = Vec::new();
    while let Some(piece) = session.read_body_ref().await? {
        body.extend_from_slice(piece);
    }
    Ok(body)
}

/// GET's answer from `answer` (one piece), with `close` as in [`peer`]: its body and whether
/// the connection could be pooled.
async fn get(answer: &str, close: bool) -> (Result<Vec<u8>>, Option<ResponseHeader>, bool) {
    let (mut session, _peer) = peer(vec![answer.as_bytes().to_vec()], close).await;
    ask(&mut session, "GET").await;
    let body = read_answer(&mut session).await;
    let head = session.resp_header().cloned();
    (body, head, session.reuse().is_some())
}

#[tokio::test]
async fn an_answer_framed_by_its_length_is_read_and_its_connection_kept() {
    let answer =
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Amz-Request-Id: R1\r\nx-custom : v\r\n\r\nhello";
    let (body, head, reusable) = get(answer, false).await;
    assert_eq!(body.unwrap(), b"hello");
    let head = head.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["x-amz-request-id"], "R1");
    assert_eq!(head.headers["x-custom"], "v");
    assert!(reusable);
}

#[tokio::test]
async fn answers_without_a_body_are_done_at_once() {
    for answer in [
        "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ] {
        let (body, _, reusable) = get(answer, false).await;
        assert_eq!(body.unwrap(), b"", "{answer}");
        assert!(reusable, "{answer}");
    }
    // A HEAD's answer declares the length of the body it does not carry.
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    let (mut session, _peer) = peer(vec![answer.into()], false).await;
    ask(&mut session, "HEAD").await;
    session.read_response().await.unwrap();
    assert!(session.is_body_done());
    assert!(session.read_body_ref().await.unwrap().is_none());
    assert!(session.reuse().is_some());
}

#[tokio::test]
async fn informational_answers_are_passed_over() {
    let answer = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    let (body, head, reusable) = get(answer, false).await;
    assert_eq!(body.unwrap(), b"ok");
    assert_eq!(head.unwrap().status, 201);
    assert!(reusable);
    // (The peer closes after it: a 101 passed over would be an end of the connection instead.)
    let (body, _, _) = get("HTTP/1.1 101 Switching Protocols\r\n\r\n", true).await;
    let e = body.unwrap_err();
    assert_eq!(
        e.etype(),
        &ErrorType::InvalidHTTPHeader,
        "never asked for: {e}"
    );
}

#[tokio::test]
async fn a_body_until_close_is_read_and_its_connection_not_kept() {
    let (body, _, reusable) = get("HTTP/1.1 200 OK\r\n\r\nto the end", true).await;
    assert_eq!(body.unwrap(), b"to the end");
    assert!(!reusable);
}

/// The session takes the chunks off, so the header its callers see says nothing of them (nor
/// of a Content-Length the chunks override): what they pass on is the body.
#[tokio::test]
async fn a_chunked_answer_is_seen_without_its_framing() {
    let cases = [
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", true),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked,\r\n\r\n1\r\nx\r\n0\r\n\r\n", true),
        ("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", false),
        ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", false),
    ];
    for (answer, kept) in cases {
        let (body, head, reusable) = get(answer, false).await;
        assert_eq!(body.unwrap(), b"x", "{answer:?}");
        let head = head.unwrap();
        assert!(!head.headers.contains_key(TRANSFER_ENCODING), "{answer:?}");
        assert!(!head.headers.contains_key(CONTENT_LENGTH), "{answer:?}");
        assert_eq!(reusable, kept, "{answer:?}");
    }
    // A HEAD's answer with both: neither is seen, the connection goes.
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (mut session, _peer) = peer(vec![answer.into()], false).await;
    ask(&mut session, "HEAD").await;
    session.read_response().await.unwrap();
    let head = session.resp_header().unwrap();
    assert!(!head.headers.contains_key(CONTENT_LENGTH));
    assert!(session.is_body_done());
    assert!(session.reuse().is_none());
}

#[tokio::test]
async fn what_the_answer_says_of_the_connection_is_followed() {
    let cases = [
        ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", false),
        ("HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 1\r\n\r\nx", false),
        ("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false),
        ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", true),
        // Bytes past the body: something is off, the connection goes.
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy", false),
        // Both framings: the chunked one is read, the connection goes.
        ("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", false),
    ];
    for (answer, kept) in cases {
        let (body, _, reusable) = get(answer, false).await;
        assert_eq!(body.unwrap(), b"x", "{answer}");
        assert_eq!(reusable, kept, "{answer}");
    }
    // The request's own `Connection: close`.
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    let (mut session, _peer) = peer(vec![answer.into()], false).await;
    let req = request("GET", &[("connection", "close")]);
    session.write_request_header(&req).await.unwrap();
    session.finish_body().await.unwrap();
    assert_eq!(read_answer(&mut session).await.unwrap(), b"x");
    assert!(session.reuse().is_none());
}

/// Every framing error is an error — at the header or at the body — never a body read wrongly.
#[tokio::test]
async fn broken_framing_is_an_error() {
    let cases = [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
        "HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n",
        // Cut short: the length, a chunk, the last chunk's trailer, the header itself.
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
        "HTTP/1.1 200 OK\r\nContent-Le",
        // Codings the gateway cannot take off (the body would reach the client still coded).
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc",
    ];
    for answer in cases {
        let (body, _, reusable) = get(answer, true).await;
        assert!(body.is_err(), "{answer:?} read as {body:?}");
        assert!(!reusable, "{answer:?}");
    }
}

/// What a backend could make the session hold or loop on is bounded: an answer header, a
/// chunk-size line, a trailer section, informational answers. After such an error the
/// session gives only errors.
#[tokio::test]
async fn what_the_backend_sends_is_bounded() {
    let long = "v".repeat(MAX_HEAD);
    let head = format!("HTTP/1.1 200 OK\r\nx-long: {long}\r\nContent-Length: 0\r\n\r\n");
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let line = format!(
        "{chunked}1;{}\r\nx\r\n0\r\n\r\n",
        "e".repeat(MAX_CHUNK_LINE)
    );
    let trailer = format!("{chunked}0\r\nx-t: {}\r\n\r\n", "t".repeat(MAX_TRAILER));
    let informational = "HTTP/1.1 103 Early Hints\r\n\r\n".repeat(MAX_INFORMATIONAL as usize + 1)
        + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    // The same, never ended: refused at the bound, not left to the read timeout.
    let endless_head = format!("HTTP/1.1 200 OK\r\nx-long: {long}{long}");
    let endless_line = format!("{chunked}1;{}", "e".repeat(2 * MAX_CHUNK_LINE));
    let endless_trailer = format!("{chunked}0\r\nx-t: {}", "t".repeat(2 * MAX_TRAILER));
    for answer in [
        head,
        line,
        trailer,
        informational,
        endless_head,
        endless_line,
        endless_trailer,
    ] {
        let (mut session, _peer) = peer(vec![answer.clone().into_bytes()], false).await;
        ask(&mut session, "GET").await;
        let e = read_answer(&mut session).await.unwrap_err();
        assert_eq!(
            e.etype(),
            &ErrorType::InvalidHTTPHeader,
            "{}: {e}",
            &answer[..60]
        );
        // Afterwards, only errors: nothing read again as a header.
        let again = session.read_response().await.unwrap_err();
        assert!(again.to_string().contains("already failed"), "{again}");
        let again = session.read_body_ref().await.unwrap_err();
        assert!(again.to_string().contains("already failed"), "{again}");
    }
    // Within the bounds, the same answers read.
    let fits = [
        format!(
            "HTTP/1.1 200 OK\r\nx-long: {}\r\nContent-Length: 0\r\n\r\n",
            "v".repeat(MAX_HEAD / 2)
        ),
        format!(
            "{chunked}1;{}\r\nx\r\n0\r\n\r\n",
            "e".repeat(MAX_CHUNK_LINE / 2)
        ),
        format!("{chunked}0\r\nx-t: {}\r\n\r\n", "t".repeat(MAX_TRAILER / 2)),
        "HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INFORMATIONAL as usize)
            + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ];
    for answer in fits {
        let (body, _, reusable) = get(&answer, false).await;
        assert!(body.is_ok() && reusable, "{}", &answer[..60]);
    }
}

/// A connection is pooled only after the whole answer was read, and the whole request written.
#[tokio::test]
async fn only_a_whole_exchange_leaves_its_connection_to_keep() {
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    let (mut session, _peer) = peer(vec![answer.into()], false).await;
    ask(&mut session, "GET").await;
    session.read_response().await.unwrap();
    assert!(!session.is_body_done());
    assert!(session.reuse().is_none(), "answer left unread");

    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (mut session, _peer) = peer(vec![answer.into()], false).await;
    let req = request("PUT", &[("content-length", "5")]);
    session.write_request_header(&req).await.unwrap();
    session.write_body(b"he").await.unwrap();
    // (The backend answered early, before the body's end.)
    read_answer(&mut session).await.unwrap();
    assert!(session.reuse().is_none(), "request left unfinished");
}

/// Every cut of a chunked answer into two sends — in its header (the empty line that ends it
/// included), the size line, its extension, the data, the CRLF after it, the last chunk, the
/// trailer — reads back the same body.
#[tokio::test]
async fn a_chunked_answer_cut_anywhere_reads_the_same() {
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nx-t: 1\r\n\r\n";
    for cut in 1..wire.len() {
        let pieces = vec![wire[..cut].to_vec(), wire[cut..].to_vec()];
        let (mut session, _peer) = peer_pausing(pieces).await;
        ask(&mut session, "GET").await;
        let body = read_answer(&mut session).await.unwrap();
        assert_eq!(body, b"abc0123456789abcdef", "cut at {cut}");
        assert!(session.reuse().is_some(), "cut at {cut}");
    }
}

/// Every cut of an answer framed by its length into two sends — inside the empty line that ends
/// its header above all, where the search for that line must look back across the cut — reads
/// the answer at once (a missed end would wait for the read timeout).
#[tokio::test]
async fn an_answer_header_cut_anywhere_reads_the_same() {
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-amz-request-id: r\r\n\r\nok";
    for cut in 1..wire.len() {
        let pieces = vec![wire[..cut].to_vec(), wire[cut..].to_vec()];
        let (mut session, _peer) = peer_pausing(pieces).await;
        session.read_timeout = Some(Duration::from_secs(2));
        ask(&mut session, "GET").await;
        let body = read_answer(&mut session).await.unwrap();
        assert_eq!(body, b"ok", "cut at {cut}");
        assert!(session.reuse().is_some(), "cut at {cut}");
    }
}

/// As [`peer`], but each piece is sent after a pause, so that it arrives as a read of its own.
async fn peer_pausing(pieces: Vec<Vec<u8>>) -> (BackendSession, JoinHandle<Vec<u8>>) {
    let mut paused = Vec::new();
    for piece in pieces {
        paused.push(Vec::new());
        paused.push(piece);
    }
    peer(paused, false).await
}

/// Oracle: a random body, cut into random chunks with random extensions and trailers, and sent
/// in random pieces, reads back as the body — and leaves the connection fit to keep.
/// `wire` cut into pieces of at most `most` bytes, at random places.
fn cut_at_random(rng: &mut impl Rng, wire: &[u8], most: usize) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let n = rng.gen_range(1..=rest.len().min(most));
        pieces.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    pieces
}

#[tokio::test]
async fn chunked_bodies_read_back_whole_however_they_are_cut() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    for round in 0..60 {
        let body: Vec<u8> = (0..rng.gen_range(0..20_000)).map(|_| rng.gen()).collect();
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut at = 0;
        while at < body.len() {
            let n = rng.gen_range(1..=(body.len() - at).min(5000));
            let size = if rng.gen() {
                format!("{n:x}")
            } else {
                format!("{n:X}")
            };
            wire.extend_from_slice(size.as_bytes());
            if rng.gen_ratio(1, 3) {
                wire.extend_from_slice(b" ;name=\"va;lue\"");
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&body[at..at + n]);
            wire.extend_from_slice(b"\r\n");
            at += n;
        }
        wire.extend_from_slice(b"0\r\n");
        if rng.gen() {
            wire.extend_from_slice(b"x-amz-checksum-crc32: AAAAAA==\r\nx-other: 1\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        let (mut session, _peer) = peer(cut_at_random(&mut rng, &wire, 700), false).await;
        ask(&mut session, "GET").await;
        let read = read_answer(&mut session).await.unwrap();
        assert!(read == body, "round {round}");
        assert!(session.is_body_done());
        assert!(session.reuse().is_some(), "round {round}");
    }
}

#[tokio::test]
async fn the_request_goes_out_as_signed_and_framed() {
    let (mut session, seen) = peer(Vec::new(), false).await;
    let req = request("PUT", &[("content-length", "5"), ("x-amz-meta-a", "1")]);
    session.write_request_header(&req).await.unwrap();
    session.write_body(b"hel").await.unwrap();
    session.write_body(b"").await.unwrap();
    session.write_body(b"lo").await.unwrap();
    session.finish_body().await.unwrap();
    drop(session);
    let seen = String::from_utf8(seen.await.unwrap()).unwrap();
    assert_eq!(
        seen,
        "PUT /bucket/key?versionId=1 HTTP/1.1\r\ncontent-length: 5\r\nx-amz-meta-a: 1\r\n\r\nhello"
    );

    let (mut session, seen) = peer(Vec::new(), false).await;
    let req = request("PUT", &[("transfer-encoding", "chunked")]);
    session.write_request_header(&req).await.unwrap();
    session.write_body(&[b'a'; 26]).await.unwrap();
    session.write_body(b"").await.unwrap();
    session.write_body(b"b").await.unwrap();
    session.finish_body().await.unwrap();
    drop(session);
    let seen = String::from_utf8(seen.await.unwrap()).unwrap();
    let body = seen.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(
        body,
        format!("1a\r\n{}\r\n1\r\nb\r\n0\r\n\r\n", "a".repeat(26))
    );

    // Two framings, or a coding other than chunked: refused before anything is sent.
    for framing in [
        &[("transfer-encoding", "chunked"), ("content-length", "0")][..],
        &[("transfer-encoding", "gzip")],
    ] {
        let (mut session, seen) = peer(Vec::new(), false).await;
        assert!(session
            .write_request_header(&request("PUT", framing))
            .await
            .is_err());
        assert!(session.write_body(b"x").await.is_err());
        assert!(session.finish_body().await.is_err());
        drop(session);
        assert!(seen.await.unwrap().is_empty(), "{framing:?}");
    }

    // A head with a value no header line can carry: refused, nothing sent.
    let (mut session, seen) = peer(Vec::new(), false).await;
    let mut req = request("GET", &[]);
    req.append("x-amz-meta-a", b"1\r\nx-amz-meta-b: 2");
    let refused = session.write_request_header(&req).await.unwrap_err();
    assert_eq!(refused.etype(), &ErrorType::InvalidHTTPHeader);
    drop(session);
    assert!(seen.await.unwrap().is_empty());
}

#[tokio::test]
async fn a_short_or_long_body_is_an_error() {
    let (mut session, _peer) = peer(Vec::new(), false).await;
    let req = request("PUT", &[("content-length", "5")]);
    session.write_request_header(&req).await.unwrap();
    session.write_body(b"hell").await.unwrap();
    assert!(session.finish_body().await.is_err());

    // A piece past the declared length is refused, never cut to fit: nothing of it is sent,
    // and the request is broken — no later piece fits it out, nothing finishes it, and its
    // connection is not kept even after a whole answer.
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (mut session, seen) = peer(vec![answer.into()], false).await;
    let req = request("PUT", &[("content-length", "5")]);
    session.write_request_header(&req).await.unwrap();
    session.write_body(b"he").await.unwrap();
    assert!(session.write_body(b"llo!").await.is_err());
    assert!(session.write_body(b"llo").await.is_err());
    assert!(session.finish_body().await.is_err());
    read_answer(&mut session).await.unwrap();
    assert!(session.is_body_done());
    assert!(session.reuse().is_none());
    let seen = String::from_utf8(seen.await.unwrap()).unwrap();
    assert!(seen.ends_with("\r\n\r\nhe"), "{seen:?}");
}

/// Every field of an answer's header reads back as it was sent — its name in lower case, its
/// value without the whitespace around it, in order, duplicates and empty values kept — after
/// informational answers or not, whatever the pieces it arrives in: the header is parsed once
/// and its fields taken by their places in the bytes kept.
#[tokio::test]
async fn every_answer_field_reads_back_as_sent() {
    const TOKEN: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~";
    let mut rng = rand::rngs::StdRng::seed_from_u64(38);
    for round in 0..80 {
        let mut wire = Vec::new();
        for _ in 0..rng.gen_range(0..3) {
            wire.extend_from_slice(b"HTTP/1.1 100 Continue\r\nx-interim: 1\r\n\r\n");
        }
        wire.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        let mut expected = Vec::new();
        for _ in 0..rng.gen_range(0..40) {
            let name: String = match expected.len() {
                // Sometimes a name again, in another case.
                sent @ 1.. if rng.gen_ratio(1, 5) => {
                    let (name, _): &(String, String) = &expected[rng.gen_range(0..sent)];
                    name.to_ascii_uppercase()
                }
                _ => (0..rng.gen_range(1..24))
                    .map(|_| TOKEN[rng.gen_range(0..TOKEN.len())] as char)
                    .collect(),
            };
            let value: String = if rng.gen_ratio(1, 6) {
                String::new()
            } else {
                let text: String = (0..rng.gen_range(1..60))
                    .map(|_| rng.gen_range(0x21u8..0x7f) as char)
                    .collect();
                // Inner whitespace is the value's; outer whitespace is not.
                let at = rng.gen_range(0..=text.len());
                if rng.gen_ratio(1, 3) {
                    format!("{} \t{}", &text[..at], &text[at..])
                        .trim()
                        .to_string()
                } else {
                    text
                }
            };
            let space = [" ", "\t", "  ", ""];
            let before = space[rng.gen_range(0..space.len())];
            let after = space[rng.gen_range(0..space.len())];
            let colon = if rng.gen_ratio(1, 8) { " :" } else { ":" };
            wire.extend_from_slice(format!("{name}{colon}{before}{value}{after}\r\n").as_bytes());
            expected.push((name.to_ascii_lowercase(), value));
        }
        wire.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
        expected.push(("content-length".into(), "2".into()));
        let (mut session, _peer) = peer(cut_at_random(&mut rng, &wire, 400), false).await;
        ask(&mut session, "GET").await;
        assert_eq!(
            read_answer(&mut session).await.unwrap(),
            b"ok",
            "round {round}"
        );
        let head = session.resp_header().unwrap();
        assert_eq!(head.status, 200, "round {round}");
        let read: Vec<(String, String)> = head
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
            .collect();
        // (A map keeps a name's values together, in the order they came: compared by name,
        // sorted stably.)
        let mut read = read;
        read.sort_by(|a, b| a.0.cmp(&b.0));
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(read, expected, "round {round}");
        assert!(session.reuse().is_some(), "round {round}");
    }
}

/// Names S3 servers send are the ones made once (the same text, not a copy of it), in any case.
#[test]
fn field_names_known_to_s3_are_the_made_ones() {
    for known in &KNOWN {
        let sent = known.as_str().to_ascii_uppercase();
        let name = header_name(sent.as_bytes()).unwrap();
        assert_eq!(name.as_str().as_ptr(), known.as_str().as_ptr(), "{known}");
    }
    assert_eq!(
        header_name(b"x-amz-meta-a").unwrap().as_str(),
        "x-amz-meta-a"
    );
    assert_eq!(header_name(b"ETag").unwrap(), http::header::ETAG);
    assert!(header_name(b"bad name").is_err());
}

#[test]
fn chunk_size_lines_are_lower_case_hex() {
    for size in [0usize, 1, 15, 16, 255, 4096, 65_535, usize::MAX] {
        let mut out = [0u8; 18];
        assert_eq!(
            chunk_size_line(size, &mut out),
            format!("{size:x}\r\n").as_bytes()
        );
    }
}

/// The thread's read buffer and field map while a session has them, and after.
fn kept_capacities() -> (usize, usize, usize) {
    let buf = READ_BUF.with_borrow(|b| b.capacity());
    let (fields, filled) = ANSWER_FIELDS.with_borrow(|m| (m.capacity(), m.len()));
    (buf, fields, filled)
}

/// One session after another on a thread reads into the same buffer and fields: lent while a
/// session lives, given back (the fields emptied) when it ends. Bytes an earlier answer's
/// values still share are never written over by a later answer.
#[tokio::test]
async fn sessions_one_after_another_read_into_the_thread_s_buffer() {
    let first = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"first\"\r\n\r\nhello";
    let (mut session, _peer) = peer(vec![first.as_bytes().to_vec()], false).await;
    assert_eq!(kept_capacities(), (0, 0, 0), "lent to the session");
    ask(&mut session, "GET").await;
    assert_eq!(read_answer(&mut session).await.unwrap(), b"hello");
    // (As HCP's answer to the client keeps it: a value sharing the session's buffer.)
    let kept_etag = session.resp_header().unwrap().headers["etag"].clone();
    assert_eq!(kept_capacities(), (0, 0, 0), "still the session's");
    assert!(session.reuse().is_some());
    let (buf, fields, filled) = kept_capacities();
    assert!(buf > 0 && fields > 0, "given back: {buf}, {fields}");
    assert_eq!(filled, 0, "the fields emptied");

    for n in 0..20 {
        let answer =
            format!("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"n{n:04}\"\r\n\r\nworld");
        let (mut session, _peer) = peer(vec![answer.into_bytes()], false).await;
        ask(&mut session, "GET").await;
        assert_eq!(read_answer(&mut session).await.unwrap(), b"world");
        let head = session.resp_header().unwrap();
        assert_eq!(head.headers["etag"], format!("\"n{n:04}\"").as_str());
        assert_eq!(head.headers["content-length"], "5");
        assert_eq!(head.headers.len(), 2, "nothing of an earlier answer");
        assert_eq!(
            kept_etag, "\"first\"",
            "an earlier answer's value as it was"
        );
    }
}

/// A buffer a large answer made room in is not kept by the thread (it may hold far more than
/// a first read); the field map still is.
#[tokio::test]
async fn a_buffer_grown_for_a_large_answer_is_not_kept() {
    let body = vec![b'x'; 300 * 1024];
    let mut answer =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    answer.extend_from_slice(&body);
    let (mut session, _peer) = peer(vec![answer], false).await;
    ask(&mut session, "GET").await;
    assert_eq!(read_answer(&mut session).await.unwrap().len(), body.len());
    assert!(session.grown);
    drop(session);
    let (buf, fields, _) = kept_capacities();
    assert_eq!(buf, 0, "not kept");
    assert!(fields > 0, "the field map kept");
}

/// A map that held many values (here one name repeated) is not kept by the thread; the buffer
/// still is.
#[tokio::test]
async fn a_field_map_that_held_many_values_is_not_kept() {
    let mut answer = String::from("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
    let many = crate::kept::LIMIT / crate::kept::HEADER_ENTRY_BYTES;
    for n in 0..many {
        answer.push_str(&format!("x-amz-meta-same: {n}\r\n"));
    }
    answer.push_str("\r\n");
    let (mut session, _peer) = peer(vec![answer.into_bytes()], false).await;
    ask(&mut session, "GET").await;
    read_answer(&mut session).await.unwrap();
    assert_eq!(
        session
            .resp_header()
            .unwrap()
            .headers
            .get_all("x-amz-meta-same")
            .iter()
            .count(),
        many
    );
    drop(session);
    let (buf, fields, _) = kept_capacities();
    assert!(buf > 0, "the buffer kept");
    assert_eq!(fields, 0, "the map not kept");
}

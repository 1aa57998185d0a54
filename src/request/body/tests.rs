use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

/// The S3 streaming example's signer (2013-05-24, us-east-1, s3).
fn example_signer() -> ChunkSigner {
    ChunkSigner {
        key: sigv4::SigningKey::derive(SECRET, "20130524", "us-east-1", "s3"),
        amz_date: "20130524T000000Z".into(),
        scope: "20130524/us-east-1/s3/aws4_request".into(),
        seed_signature: SEED.into(),
    }
}

fn request(headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build("PUT", b"/examplebucket/chunkObject.txt", None).unwrap();
    for (n, v) in headers {
        r.append_header(n.to_string(), *v).unwrap();
    }
    r
}

/// The example body: 65,536 and 1,024 bytes of 'a', then the final chunk, with the published
/// chunk signatures.
fn example_body() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
    body.extend(std::iter::repeat_n(b'a', 65536));
    body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
    body.extend(std::iter::repeat_n(b'a', 1024));
    body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
    body
}

fn run(v: &mut BodyVerifier, body: &[u8], piece: usize) -> Result<Vec<u8>, (HcpError, usize)> {
    let mut released = Vec::new();
    for part in body.chunks(piece) {
        let mut out = Vec::new();
        let r = v.push(Bytes::copy_from_slice(part), &mut out);
        for o in out {
            released.extend_from_slice(&o);
        }
        r.map_err(|e| (e, released.len()))?;
    }
    Ok(released)
}

fn example_verifier() -> BodyVerifier {
    let req = request(&[("x-amz-decoded-content-length", "66560")]);
    BodyVerifier::new(
        &Payload::Chunked {
            signer: Some(std::sync::Arc::new(example_signer())),
            trailer: false,
        },
        &req,
        16 << 20,
    )
    .unwrap()
}

#[test]
fn s3_streaming_example_verifies_in_any_split() {
    for piece in [1, 7, 1000, 65536, 1 << 20] {
        let mut v = example_verifier();
        let out = run(&mut v, &example_body(), piece)
            .unwrap_or_else(|(e, _)| panic!("piece {piece}: {e}"));
        assert_eq!(out.len(), 66560);
        assert!(out.iter().all(|&b| b == b'a'));
        v.finish().unwrap();
    }
}

#[test]
fn a_tampered_chunk_is_never_released() {
    let mut body = example_body();
    body[90 + 65536 + 100] ^= 1; // a byte of the second chunk's data
    let mut v = example_verifier();
    let (err, released) = run(&mut v, &body, 4096).unwrap_err();
    assert_eq!(
        (err.status, err.code),
        (403, HcpCode::SignatureDoesNotMatch)
    );
    assert_eq!(
        released, 65536,
        "only the verified first chunk was released"
    );
}

/// A chunk announcing more than the declared length leaves is refused at its header, before
/// any of its bytes are held (they would be refused once released, after holding up to a
/// chunk's size of the budget for as long as the client took to send them).
#[test]
fn a_chunk_longer_than_the_body_left_is_refused_at_its_header() {
    let req = request(&[("x-amz-decoded-content-length", "10")]);
    let payload = Payload::Chunked {
        signer: Some(std::sync::Arc::new(example_signer())),
        trailer: false,
    };
    let b = budget(1 << 20);
    let mut v = BodyVerifier::new(&payload, &req, 16 << 20)
        .unwrap()
        .holding_within(b.hold());
    let mut body = b"ffffff;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'a', 4096));
    let (e, released) = run(&mut v, &body, 1 << 20).unwrap_err();
    assert_eq!((e.status, e.code), (400, HcpCode::InvalidArgument));
    assert!(
        e.message.contains("longer than its declared length"),
        "{}",
        e.message
    );
    assert_eq!((released, b.in_use()), (0, 0));
    // Chunks that add up to the declared length are read as before.
    let mut v = example_verifier();
    assert_eq!(run(&mut v, &example_body(), 1 << 20).unwrap().len(), 66560);
}

/// A chunk header line is at most 4 KiB whether it arrives whole in one read or split over
/// several (padding the size with zeros made a 68 KB line pass in one read).
#[test]
fn a_chunk_header_line_is_bounded_however_it_arrives() {
    let mut body = "0".repeat(5000).into_bytes();
    body.extend_from_slice(&example_body());
    for piece in [1 << 20, 4500, 1000] {
        let mut v = example_verifier();
        let (e, _) = run(&mut v, &body, piece).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (400, HcpCode::InvalidArgument),
            "{piece}"
        );
        assert!(e.message.contains("too long"), "{piece}: {}", e.message);
    }
}

#[test]
fn a_wrong_final_signature_or_truncated_body_fails() {
    let mut body = example_body();
    let n = body.len();
    body[n - 5] = if body[n - 5] == b'0' { b'1' } else { b'0' };
    let mut v = example_verifier();
    assert_eq!(
        run(&mut v, &body, 4096).unwrap_err().0.code,
        HcpCode::SignatureDoesNotMatch
    );

    let body = example_body();
    let mut v = example_verifier();
    run(&mut v, &body[..body.len() - 100], 4096).unwrap();
    assert_eq!(v.finish().unwrap_err().code, HcpCode::InvalidArgument);
}

fn crc32_b64(data: &[u8]) -> String {
    let mut h = ChecksumAlgorithm::Crc32.hasher();
    h.update(data);
    base64::engine::general_purpose::STANDARD.encode(h.finish())
}

#[test]
fn checksum_algorithms_match_their_check_values() {
    let value = |a: ChecksumAlgorithm| {
        let mut h = a.hasher();
        h.update(b"123456789");
        hex::encode(h.finish())
    };
    assert_eq!(value(ChecksumAlgorithm::Crc32), "cbf43926");
    assert_eq!(value(ChecksumAlgorithm::Crc32c), "e3069283");
    assert_eq!(value(ChecksumAlgorithm::Crc64Nvme), "ae8b14860a799888");
    assert_eq!(
        value(ChecksumAlgorithm::Sha1),
        "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
    );
}

/// `data` in one chunk, then `junk` trailer lines of 1,009 bytes before the CRC32 trailer.
fn unsigned_trailer_body_with(data: &[u8], junk: usize, checksum: &str) -> Vec<u8> {
    let mut body = format!("{:x}\r\n", data.len()).into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n0\r\n");
    for _ in 0..junk {
        body.extend_from_slice(format!("x-junk:{}\r\n", "A".repeat(1000)).as_bytes());
    }
    body.extend_from_slice(format!("x-amz-checksum-crc32:{checksum}\r\n\r\n").as_bytes());
    body
}

fn unsigned_trailer_body(data: &[u8], checksum: &str) -> Vec<u8> {
    unsigned_trailer_body_with(data, 0, checksum)
}

/// The request and payload of an unsigned upload of "hello trailer" with a CRC32 trailer.
fn unsigned_trailer_upload() -> (RequestHeader, Payload) {
    let req = request(&[
        ("x-amz-decoded-content-length", "13"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ]);
    let payload = Payload::Chunked {
        signer: None,
        trailer: true,
    };
    (req, payload)
}

/// The trailer section is bounded: however many lines follow the final chunk, past
/// `MAX_TRAILER` bytes the body is refused, whatever the piece size it arrives in; up to the
/// bound the body still verifies.
#[test]
fn trailer_lines_are_bounded_in_total() {
    let data = b"hello trailer";
    let (req, payload) = unsigned_trailer_upload();
    let body_with = |junk| unsigned_trailer_body_with(data, junk, &crc32_b64(data));
    // 15 lines of 1,009 bytes and the checksum: under the bound.
    let mut v = BodyVerifier::new(&payload, &req, 1 << 20).unwrap();
    assert_eq!(run(&mut v, &body_with(15), 7).unwrap(), data);
    v.finish().unwrap();
    for piece in [1, 100, 1 << 20] {
        let mut v = BodyVerifier::new(&payload, &req, 1 << 20).unwrap();
        let (e, released) = run(&mut v, &body_with(1000), piece).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (400, HcpCode::InvalidArgument),
            "{piece}"
        );
        assert!(e.message.contains("trailer is larger"), "{}", e.message);
        assert!(released <= data.len());
    }
}

#[test]
fn unsigned_trailer_checksum_is_verified() {
    let data = b"hello trailer";
    let (req, payload) = unsigned_trailer_upload();
    let mut v = BodyVerifier::new(&payload, &req, 1 << 20).unwrap();
    assert_eq!(
        run(&mut v, &unsigned_trailer_body(data, &crc32_b64(data)), 3).unwrap(),
        data
    );
    v.finish().unwrap();

    let mut v = BodyVerifier::new(&payload, &req, 1 << 20).unwrap();
    run(
        &mut v,
        &unsigned_trailer_body(data, &crc32_b64(b"other")),
        3,
    )
    .unwrap();
    let e = v.finish().unwrap_err();
    assert_eq!((e.status, e.code), (400, HcpCode::BadDigest));
}

#[test]
fn signed_trailer_signature_is_verified() {
    let signer = example_signer();
    let data = b"signed with a trailer";
    let chunk_sig = |prev: &str, d: &[u8]| {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{}\n{}",
            signer.amz_date,
            signer.scope,
            sigv4::EMPTY_SHA256,
            sigv4::sha256_hex(d)
        );
        sigv4::signature(&signer.key, &sts)
    };
    let s1 = chunk_sig(SEED, data);
    let s2 = chunk_sig(&s1, b"");
    let trailer = format!("x-amz-checksum-crc32:{}\n", crc32_b64(data));
    let trailer_sig = |prev: &str, t: &str| {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{prev}\n{}",
            signer.amz_date,
            signer.scope,
            sigv4::sha256_hex(t.as_bytes())
        );
        sigv4::signature(&signer.key, &sts)
    };
    let build = |tsig: &str| {
        let mut b = format!("{:x};chunk-signature={s1}\r\n", data.len()).into_bytes();
        b.extend_from_slice(data);
        b.extend_from_slice(
            format!(
                "\r\n0;chunk-signature={s2}\r\n{}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n",
                trailer.trim_end()
            )
            .as_bytes(),
        );
        b
    };
    let req = request(&[
        ("x-amz-decoded-content-length", &data.len().to_string()),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ]);
    let payload = Payload::Chunked {
        signer: Some(std::sync::Arc::new(signer.clone())),
        trailer: true,
    };

    let mut v = BodyVerifier::new(&payload, &req, 1 << 20).unwrap();
    run(&mut v, &build(&trailer_sig(&s2, &trailer)), 5).unwrap();
    v.finish().unwrap();

    let mut v = BodyVerifier::new(&payload, &req, 1 << 20).unwrap();
    run(&mut v, &build(&trailer_sig(&s1, &trailer)), 5).unwrap();
    assert_eq!(v.finish().unwrap_err().code, HcpCode::SignatureDoesNotMatch);
}

#[test]
fn content_md5_malformed_and_mismatched() {
    let plain = Payload::Plain { sha256: None };
    let e = BodyVerifier::new(&plain, &request(&[("content-md5", "not base64!")]), 1)
        .err()
        .unwrap();
    assert_eq!((e.status, e.code), (400, HcpCode::InvalidDigest));
    let e = BodyVerifier::new(&plain, &request(&[("content-md5", "AAAA")]), 1)
        .err()
        .unwrap();
    assert_eq!(e.code, HcpCode::InvalidDigest, "16 bytes are required");

    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(b"body"));
    let mut v = BodyVerifier::new(
        &plain,
        &request(&[("content-md5", &md5), ("content-length", "4")]),
        1,
    )
    .unwrap();
    run(&mut v, b"body", 2).unwrap();
    v.finish().unwrap();
    let mut v = BodyVerifier::new(
        &plain,
        &request(&[("content-md5", &md5), ("content-length", "4")]),
        1,
    )
    .unwrap();
    run(&mut v, b"BODY", 2).unwrap();
    assert_eq!(v.finish().unwrap_err().code, HcpCode::BadDigest);
}

#[test]
fn plain_signed_digest_and_checksum_headers() {
    let digest: [u8; 32] = Sha256::digest(b"payload").into();
    let req = request(&[
        ("content-length", "7"),
        ("x-amz-checksum-crc32", &crc32_b64(b"payload")),
    ]);
    let mut v = BodyVerifier::new(
        &Payload::Plain {
            sha256: Some(digest),
        },
        &req,
        1,
    )
    .unwrap();
    run(&mut v, b"payload", 3).unwrap();
    v.finish().unwrap();
    let mut v = BodyVerifier::new(
        &Payload::Plain {
            sha256: Some(digest),
        },
        &req,
        1,
    )
    .unwrap();
    run(&mut v, b"PAYLOAD", 3).unwrap();
    assert_eq!(v.finish().unwrap_err().code, HcpCode::BadDigest);
}

/// The Content-MD5 the gateway sends with a body it holds is one its own verifier takes, and
/// the empty body's constant is that of nothing.
#[test]
fn the_gateway_s_content_md5_verifies() {
    assert_eq!(EMPTY_MD5, content_md5(b""));
    let plain = Payload::Plain { sha256: None };
    let md5 = content_md5(b"body");
    let mut v = BodyVerifier::new(&plain, &request(&[("content-md5", &md5)]), 1 << 20).unwrap();
    run(&mut v, b"body", 2).unwrap();
    v.finish().unwrap();
}

/// A budget of `limit` bytes for the verifier's held chunks.
fn budget(limit: usize) -> std::sync::Arc<crate::request::held::HeldBytes> {
    crate::request::held::HeldBytes::new(
        limit,
        prometheus::IntGauge::new("held", "held").unwrap(),
        prometheus::IntCounter::new("refused", "refused").unwrap(),
    )
}

/// A signed chunk is counted in the shared budget as its bytes arrive, and once verified and
/// released it stays counted until the next one is (its reader holds it back until then);
/// one the budget has no room for is 503 before any of it is released, and what it had taken
/// is given back with the verifier.
#[test]
fn signed_chunks_are_held_within_the_budget() {
    let b = budget(65536 + 1024);
    let mut v = example_verifier().holding_within(b.hold());
    assert!(example_verifier().holds_chunks());
    let body = example_body();
    let mut out = Vec::new();
    v.push(Bytes::copy_from_slice(&body[..88 + 40_000]), &mut out)
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(b.in_use(), 40_000, "the chunk's bytes so far");
    // The first chunk whole, the second's header and 500 of its bytes.
    let second = 88 + 65536 + 2 + 86;
    v.push(
        Bytes::copy_from_slice(&body[88 + 40_000..second + 500]),
        &mut out,
    )
    .unwrap();
    assert_eq!(out.iter().map(Bytes::len).sum::<usize>(), 65536);
    assert_eq!(
        b.in_use(),
        65536 + 500,
        "the chunk released and the next one's bytes"
    );
    v.push(Bytes::copy_from_slice(&body[second + 500..]), &mut out)
        .unwrap();
    assert_eq!(out.iter().map(Bytes::len).sum::<usize>(), 66560);
    // (The first goes to the backend after this push: counted until the next.)
    assert_eq!(
        b.in_use(),
        65536 + 1024,
        "the chunks released and not yet sent"
    );
    // The last chunk, held back until the whole body is verified, is sent after `finish`:
    // the share it returns keeps it counted until then.
    let share = v.finish().unwrap();
    assert!(b.in_use() >= 1024, "the last chunk is counted until sent");
    drop(share);
    assert_eq!(b.in_use(), 0);

    let b = budget(65536);
    let mut other = b.hold();
    other.set(30_000).unwrap();
    let mut v = example_verifier().holding_within(b.hold());
    let (e, released) = run(&mut v, &body, 4096).unwrap_err();
    assert_eq!((e.status, e.code), (503, HcpCode::ServiceUnavailable));
    assert_eq!(released, 0);
    assert!(b.in_use() <= 65536);
    drop(v);
    assert_eq!(
        b.in_use(),
        30_000,
        "the refused verifier gave its share back"
    );
}

/// An unsigned chunk has nothing to verify: its bytes pass on as they arrive, without being
/// held (a chunk of a megabyte read in pieces of 1,000 bytes is released in those pieces).
/// A body of signed chunks (the example's signer), each signature chained to the one before.
fn signed_body(chunks: &[&[u8]]) -> Vec<u8> {
    let signer = example_signer();
    let mut previous = SEED.to_string();
    let mut body = Vec::new();
    for data in chunks.iter().copied().chain([&b""[..]]) {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{}\n{}",
            signer.amz_date,
            signer.scope,
            sigv4::EMPTY_SHA256,
            sigv4::sha256_hex(data)
        );
        previous = sigv4::signature(&signer.key, &sts);
        body.extend_from_slice(
            format!("{:x};chunk-signature={previous}\r\n", data.len()).as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// Chunks released by one read are all unsent until it returns: each stays counted (the
/// reader sends all but the last after the read, and holds that one back).
#[test]
fn chunks_released_together_are_all_counted() {
    let (a, b2, c) = (vec![b'a'; 3000], vec![b'b'; 2000], vec![b'c'; 1000]);
    let body = signed_body(&[&a, &b2, &c]);
    let req = request(&[("x-amz-decoded-content-length", "6000")]);
    let payload = Payload::Chunked {
        signer: Some(std::sync::Arc::new(example_signer())),
        trailer: false,
    };
    let b = budget(1 << 20);
    let mut v = BodyVerifier::new(&payload, &req, 1 << 20)
        .unwrap()
        .holding_within(b.hold());
    let mut out = Vec::new();
    v.push(Bytes::from(body), &mut out).unwrap();
    assert_eq!(out.len(), 3);
    assert!(b.in_use() >= 6000, "{} of 6,000 counted", b.in_use());
    let share = v.finish().unwrap();
    drop(share);
    assert_eq!(b.in_use(), 0);
}

#[test]
fn unsigned_chunks_pass_on_as_they_arrive() {
    let data = vec![7u8; 1 << 20];
    let req = request(&[
        ("x-amz-decoded-content-length", &data.len().to_string()),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ]);
    let payload = Payload::Chunked {
        signer: None,
        trailer: true,
    };
    let b = budget(1000);
    let mut v = BodyVerifier::new(&payload, &req, 16 << 20)
        .unwrap()
        .holding_within(b.hold());
    assert!(!v.holds_chunks());
    let body = unsigned_trailer_body(&data, &crc32_b64(&data));
    let header = format!("{:x}\r\n", data.len()).len();
    let (mut released, mut pushed) = (0, 0);
    for part in body.chunks(1000) {
        let mut out = Vec::new();
        v.push(Bytes::copy_from_slice(part), &mut out).unwrap();
        pushed += part.len();
        released += out.iter().map(Bytes::len).sum::<usize>();
        let arrived = pushed.saturating_sub(header).min(data.len());
        assert_eq!(released, arrived, "after {pushed} bytes");
    }
    assert_eq!(released, data.len());
    assert_eq!(b.in_use(), 0);
    v.finish().unwrap();
}

/// `x-amz-trailer` names a digest only beside a payload mode whose body ends with a trailer
/// (the only ones whose trailer lines are read and checked).
#[test]
fn a_trailer_names_a_digest_only_where_one_is_read() {
    let announced = ("x-amz-trailer", "x-amz-checksum-crc32");
    for (mode, named) in [
        ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", true),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", true),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", false),
        ("UNSIGNED-PAYLOAD", false),
    ] {
        let req = request(&[("x-amz-content-sha256", mode), announced]);
        assert_eq!(names_a_digest(&req.headers), named, "{mode}");
    }
    let md5 = request(&[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")]);
    assert!(names_a_digest(&md5.headers));
}

//! The aws-chunked decoder with chunk signatures and trailers: arbitrary bodies, split at
//! arbitrary points, are decoded or refused with an HCP error, never a panic, and what is
//! released never exceeds what was declared.
#![no_main]
use bytes::Bytes;
use hcp_s3_gateway::request::authenticate::{ChunkSigner, Payload};
use hcp_s3_gateway::request::body::BodyVerifier;
use hcp_s3_gateway::sig::v4 as sigv4;
use libfuzzer_sys::fuzz_target;
use pingora::http::RequestHeader;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (flags, split, declared, body) = (
        data[0],
        data[1],
        u16::from_le_bytes([data[2], data[3]]),
        &data[4..],
    );
    let signer = (flags & 1 == 1).then(|| {
        std::sync::Arc::new(ChunkSigner {
            key: sigv4::SigningKey::derive(
                "secret",
                "20260101",
                "us-east-1",
                "s3",
            ),
            amz_date: "20260101T000000Z".into(),
            scope: "20260101/us-east-1/s3/aws4_request".into(),
            seed_signature: "0".repeat(64),
        })
    });
    let trailer = flags & 2 == 2 || signer.is_none();
    let payload = Payload::Chunked { signer, trailer };
    let mut req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
    let _ = req.insert_header("content-encoding", "aws-chunked");
    let _ = req.insert_header("x-amz-decoded-content-length", declared.to_string());
    if trailer {
        let _ = req.insert_header("x-amz-trailer", "x-amz-checksum-crc32");
    }
    let Ok(mut verifier) = BodyVerifier::new(&payload, &req, 1 << 16) else {
        return;
    };
    let step = usize::from(split).max(1);
    let mut released = Vec::new();
    let mut total = 0usize;
    for piece in body.chunks(step) {
        if verifier
            .push(Bytes::copy_from_slice(piece), &mut released)
            .is_err()
        {
            return;
        }
        total += released.drain(..).map(|b| b.len()).sum::<usize>();
        assert!(
            total <= usize::from(declared),
            "released more than declared"
        );
    }
    let _ = verifier.finish();
});

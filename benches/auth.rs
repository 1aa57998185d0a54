//! Micro-benchmarks of the authentication hot path: verifying a SigV4 `Authorization` header
//! (the signing key kept beside the secret) and verifying aws-chunked chunk signatures.
//!
//!     cargo bench --bench auth

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hcp_s3_gateway::request::address::Target;
use hcp_s3_gateway::request::authenticate::{
    format_amz_date, Authenticator, ChunkSigner, Payload, User, UserStore,
};
use hcp_s3_gateway::request::body::BodyVerifier;
use hcp_s3_gateway::request::classify::Query;
use hcp_s3_gateway::sig::v4 as sigv4;
use pingora::http::RequestHeader;

const AK: &str = "ZGVtby11c2Vy";
const SK: &str = "4b4d9529148d8d9440d7e20c78287f69";

fn signed_get(now: SystemTime) -> RequestHeader {
    let amz_date = format_amz_date(now);
    let path = b"/bench-bucket/some/object/key.bin";
    let mut req = RequestHeader::build("GET", path, None).unwrap();
    req.insert_header("host", "127.0.0.1:8080").unwrap();
    req.insert_header("x-amz-date", &amz_date).unwrap();
    req.insert_header("x-amz-content-sha256", sigv4::EMPTY_SHA256)
        .unwrap();
    req.insert_header("user-agent", "bench").unwrap();
    let signed = "host;x-amz-content-sha256;x-amz-date";
    let creq = sigv4::canonical_request(
        "GET",
        &sigv4::canonical_uri(path),
        "",
        signed,
        |n| req.headers.get_all(n).iter().map(|v| v.as_bytes()),
        sigv4::EMPTY_SHA256,
    );
    let scope = sigv4::scope(&amz_date[..8], "us-east-1", "s3");
    let key = sigv4::SigningKey::derive(SK, &amz_date[..8], "us-east-1", "s3");
    let sig = sigv4::signature(&key, &sigv4::string_to_sign(&amz_date, &scope, &creq));
    req.insert_header(
        "authorization",
        sigv4::authorization(AK, &scope, signed, &sig),
    )
    .unwrap();
    req
}

fn header_verification(c: &mut Criterion) {
    // (Tenant t's: a key is looked up in the request's tenant.)
    let user = User::new(None, AK.into(), SK.into(), true, vec![]).at_home_in("t");
    let users = Arc::new(UserStore::new(vec![user]));
    let authn = Authenticator::new(
        users.shared(),
        std::time::Duration::from_secs(900),
        Default::default(),
    );
    let now = SystemTime::now();
    let req = signed_get(now);
    let target = Target {
        tenant: "t".into(),
        bucket: Some("bench-bucket".into()),
        raw_key: Some(b"some/object/key.bin"[..].into()),
        virtual_host: false,
    };
    let query = Query::parse(b"");
    authn
        .authenticate(&req, &target, &query, now)
        .expect("the benchmark request verifies");
    c.bench_function("sigv4 header verification (cached signing key)", |b| {
        b.iter(|| {
            black_box(
                authn
                    .authenticate(black_box(&req), &target, &query, now)
                    .unwrap(),
            )
        })
    });
}

fn chunk_verification(c: &mut Criterion) {
    let now = SystemTime::now();
    let amz_date = format_amz_date(now);
    let scope = sigv4::scope(&amz_date[..8], "us-east-1", "s3");
    let key = sigv4::SigningKey::derive(SK, &amz_date[..8], "us-east-1", "s3");
    let seed = "0".repeat(64);
    let data = vec![b'x'; 1 << 20];
    let mut body = Vec::new();
    let mut previous = seed.clone();
    let mut pieces: Vec<&[u8]> = data.chunks(64 * 1024).collect();
    pieces.push(&[]);
    for piece in pieces {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{}\n{}",
            sigv4::EMPTY_SHA256,
            sigv4::sha256_hex(piece)
        );
        let sig = sigv4::signature(&key, &sts);
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
        previous = sig;
    }
    let signer = ChunkSigner {
        key,
        amz_date,
        scope,
        seed_signature: seed,
    };
    let payload = Payload::Chunked {
        signer: Some(std::sync::Arc::new(signer)),
        trailer: false,
    };
    let mut req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
    req.insert_header("x-amz-decoded-content-length", data.len().to_string())
        .unwrap();
    let body = Bytes::from(body);
    let mut group = c.benchmark_group("aws-chunked");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("verify 1 MiB in 64 KiB signed chunks", |b| {
        b.iter(|| {
            let mut v = BodyVerifier::new(&payload, &req, 16 << 20).unwrap();
            let mut out = Vec::new();
            for part in body.chunks(64 * 1024) {
                v.push(body.slice_ref(part), &mut out).unwrap();
            }
            v.finish().unwrap();
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, header_verification, chunk_verification);
criterion_main!(benches);

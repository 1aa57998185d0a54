//! Published signatures: the S3 API reference's worked examples (credentials
//! `AKIAIOSFODNN7EXAMPLE` / `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`, 2013-05-24), the S3 streaming
//! example's seed signature, and the SigV4 test suite's `get-vanilla` case.

use super::*;

const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

#[allow(clippy::too_many_arguments)] // one argument per input of a published example
fn sign(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &[(&str, &str)],
    signed: &str,
    payload: &str,
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
) -> (String, String) {
    let lookup = |name: &str| -> Vec<&[u8]> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
            .collect()
    };
    let creq = canonical_request(
        method,
        &canonical_uri(raw_path.as_bytes()),
        &canonical_query(raw_query.as_bytes(), &[]),
        signed,
        lookup,
        payload,
    );
    let amz_date = headers.iter().find(|(n, _)| *n == "x-amz-date").unwrap().1;
    let sc = scope(date, region, service);
    let sts = string_to_sign(amz_date, &sc, &creq);
    let key = derive_signing_key(secret, date, region, service);
    (creq, signature(&key, &sts))
}

#[test]
fn s3_get_object_with_range() {
    let (creq, sig) = sign(
        "GET",
        "/test.txt",
        "",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ],
        "host;range;x-amz-content-sha256;x-amz-date",
        EMPTY_SHA256,
        S3_SECRET,
        "20130524",
        "us-east-1",
        "s3",
    );
    assert!(creq
        .starts_with("GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"));
    assert_eq!(
        sig,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

#[test]
fn s3_put_object_path_with_dollar() {
    let payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    let (creq, sig) = sign(
        "PUT",
        "/test$file.text",
        "",
        &[
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", payload),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ],
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        payload,
        S3_SECRET,
        "20130524",
        "us-east-1",
        "s3",
    );
    assert!(creq.starts_with("PUT\n/test%24file.text\n\n"), "{creq}");
    assert_eq!(
        sig,
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
}

#[test]
fn s3_get_bucket_lifecycle_empty_query_value() {
    let (creq, sig) = sign(
        "GET",
        "/",
        "lifecycle",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ],
        "host;x-amz-content-sha256;x-amz-date",
        EMPTY_SHA256,
        S3_SECRET,
        "20130524",
        "us-east-1",
        "s3",
    );
    assert!(creq.starts_with("GET\n/\nlifecycle=\n"), "{creq}");
    assert_eq!(
        sig,
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
    );
}

#[test]
fn s3_list_objects_query_sorted() {
    let (creq, sig) = sign(
        "GET",
        "/",
        "prefix=J&max-keys=2",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ],
        "host;x-amz-content-sha256;x-amz-date",
        EMPTY_SHA256,
        S3_SECRET,
        "20130524",
        "us-east-1",
        "s3",
    );
    assert!(creq.starts_with("GET\n/\nmax-keys=2&prefix=J\n"), "{creq}");
    assert_eq!(
        sig,
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    );
}

#[test]
fn s3_streaming_example_seed_signature() {
    let (_, sig) = sign(
        "PUT",
        "/examplebucket/chunkObject.txt",
        "",
        &[
            ("content-encoding", "aws-chunked"),
            ("content-length", "66824"),
            ("host", "s3.amazonaws.com"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-decoded-content-length", "66560"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ],
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        S3_SECRET,
        "20130524",
        "us-east-1",
        "s3",
    );
    assert_eq!(
        sig,
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    );
}

#[test]
fn suite_get_vanilla() {
    let (creq, sig) = sign(
        "GET",
        "/",
        "",
        &[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ],
        "host;x-amz-date",
        EMPTY_SHA256,
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20150830",
        "us-east-1",
        "service",
    );
    assert_eq!(
        creq,
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sig,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn raw_paths_are_neither_normalised_nor_double_encoded() {
    assert_eq!(canonical_uri(b"/b/a//./../c"), "/b/a//./../c");
    assert_eq!(
        canonical_uri(b"/b/with space+plus"),
        "/b/with%20space%2Bplus"
    );
    assert_eq!(
        canonical_uri(b"/b/already%2fencoded%20x"),
        "/b/already%2Fencoded%20x"
    );
    assert_eq!(canonical_uri("/b/ü".as_bytes()), "/b/%C3%BC");
    assert_eq!(canonical_uri(b""), "/");
}

#[test]
fn query_canonical_form() {
    assert_eq!(canonical_query(b"uploads", &[]), "uploads=");
    assert_eq!(canonical_query(b"b=2&a=1&a=0", &[]), "a=0&a=1&b=2");
    assert_eq!(
        canonical_query(b"prefix=a/b c&delimiter=%2f", &[]),
        "delimiter=%2F&prefix=a%2Fb%20c"
    );
    assert_eq!(
        canonical_query(b"X-Amz-Signature=abc&X-Amz-Date=1", &["X-Amz-Signature"]),
        "X-Amz-Date=1"
    );
}

#[test]
fn header_values_are_trimmed_and_collapsed() {
    let mut out = String::new();
    canonical_header_value(b"  a   b \t c  ", &mut out);
    assert_eq!(out, "a b c");
}

#[test]
fn signature_comparison() {
    assert!(signatures_equal("abc", "abc"));
    assert!(!signatures_equal("abc", "abd"));
    assert!(!signatures_equal("abc", "abcd"));
}

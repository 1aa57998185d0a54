//! SigV4 canonicalisation of raw paths and queries: never panics, encoding what is already
//! canonical changes nothing (the gateway relies on that when it re-signs), and a query copied
//! because it is already canonical is what encoding and sorting it gives.
#![no_main]
use hcp_s3_gateway::sig::v4 as sigv4;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let uri = sigv4::canonical_uri(data);
    assert_eq!(sigv4::canonical_uri(uri.as_bytes()), uri);
    let query = sigv4::canonical_query(data, &["X-Amz-Signature"]);
    // (A query already canonical is copied; the copy is what sorting writes.)
    let mut sorted = String::new();
    sigv4::canonical_query_by_sorting_into(data, &["X-Amz-Signature"], &mut sorted);
    assert_eq!(query, sorted);
    assert_eq!(
        sigv4::canonical_query(query.as_bytes(), &["X-Amz-Signature"]),
        query
    );
    let mut encoded = String::new();
    sigv4::uri_encode(data, true, &mut encoded);
    let mut again = String::new();
    sigv4::canonicalize_encoded(encoded.as_bytes(), true, &mut again);
    assert_eq!(again, encoded);
});

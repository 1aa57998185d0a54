//! Backend error documents (AWS, MinIO, Ceph, OBS dialects, or garbage): parsed without
//! panicking, and every answer maps to an HCP error.
#![no_main]
use hcp_s3_gateway::hcp::mapping::{self, Dialect};
use hcp_s3_gateway::request::respond::rewrite;
use hcp_s3_gateway::request::classify::Operation;
use libfuzzer_sys::fuzz_target;
use pingora::http::ResponseHeader;

fuzz_target!(|data: &[u8]| {
    let status = 400 + u16::from(data.first().copied().unwrap_or(0)) % 200;
    let parsed = rewrite::parse_backend_error(data);
    let mut headers = ResponseHeader::build(status, None).unwrap();
    let _ = headers.insert_header("content-type", "application/xml");
    let read = rewrite::read_backend_error(&headers, data);
    for dialect in [
        Dialect::Aws,
        Dialect::Minio,
        Dialect::Ceph,
        Dialect::Obs,
        Dialect::Local,
    ] {
        for code in [parsed.code.as_deref(), read.code.as_deref()] {
            let err = mapping::map(dialect, status, code, Operation::GetObject);
            assert!(err.status >= 200);
        }
    }
    let _ = rewrite::has_element(data, b"Error");
});

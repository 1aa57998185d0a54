//! Whole request heads through authentication — SigV4 header and presigned, SigV2 header and
//! presigned, HCP's scheme, anonymous — as text: `METHOD TARGET` then `name: value` lines.
//! Whatever arrives is answered with an identity or an HCP error, never a panic.
#![no_main]
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use hcp_s3_gateway::request::address;
use hcp_s3_gateway::request::authenticate::Authenticator;
use hcp_s3_gateway::config::Config;
use hcp_s3_gateway::request::classify::Query;
use hcp_s3_gateway::sig::v4::SigningKeyCache;
use libfuzzer_sys::fuzz_target;
use pingora::http::RequestHeader;

const CONFIG: &str = r#"
[[users]]
username = "fuzz-user"
password = "fuzz-password"
permissions = [{ allow = ["all"] }]

[[users]]
access_key = "AKIDEXAMPLE"
secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
permissions = [{ allow = ["all"] }]

[addressing]
default_tenant = "t"

[[tenants]]
name = "t"
backend = "b"

[[backends]]
name = "b"
kind = "local"
data_dir = "/nonexistent"
"#;

fn authenticator() -> &'static Authenticator {
    static AUTHN: OnceLock<Authenticator> = OnceLock::new();
    AUTHN.get_or_init(|| {
        let cfg = Config::parse(CONFIG, std::path::Path::new("/")).expect("fuzz config");
        Authenticator::new(
            cfg.users.clone().shared(),
            Duration::from_secs(900),
            Arc::new(SigningKeyCache::default()),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split("\r\n");
    let Some((method, target)) = lines.next().and_then(|l| l.split_once(' ')) else {
        return;
    };
    let Ok(mut req) = RequestHeader::build(method, target.as_bytes(), None) else {
        return;
    };
    let mut host = String::from("127.0.0.1");
    for line in lines {
        if let Some((name, value)) = line.split_once(": ") {
            if name.eq_ignore_ascii_case("host") {
                host = value.to_string();
            }
            let _ = req.append_header(name.to_string(), value);
        }
    }
    let raw = req.raw_path().to_vec();
    let (path, query) = match raw.iter().position(|&b| b == b'?') {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (&raw[..], &b""[..]),
    };
    let Ok(resolved) = address::resolve(&host, path, false, &[], Some("t"), |t| t == "t") else {
        return;
    };
    let query = Query::parse(query);
    // A fixed clock: the fuzzer can then reach date checks with dates that are in range.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    let _ = authenticator().authenticate(&req, &resolved, &query, now);
});

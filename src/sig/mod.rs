//! Signatures, shared by verifying clients (`auth`) and signing toward backends (`signing`):
//! SigV4's one canonicaliser ([`v4`]), SigV2's and OBS's canonicalisation and HMAC ([`v2`]),
//! and reading a request's target and headers as they are signed.

use pingora::http::RequestHeader;

pub mod v2;
pub mod v4;

pub use crate::request::authenticate::format_amz_date;

/// Splits a raw request target into path and query.
pub fn split_target(raw: &[u8]) -> (&[u8], &[u8]) {
    match raw.iter().position(|&b| b == b'?') {
        Some(q) => (&raw[..q], &raw[q + 1..]),
        None => (raw, &b""[..]),
    }
}

/// Values of a signed header, `host` falling back to the URI authority (HTTP/2).
pub fn header_values<'a>(req: &'a RequestHeader, name: &str) -> impl Iterator<Item = &'a [u8]> {
    // (The names every signature signs by constants: a `&str` is parsed on every lookup.)
    let mut values = match name {
        "host" => req.headers.get_all(http::header::HOST),
        "x-amz-date" => req
            .headers
            .get_all(const { http::HeaderName::from_static("x-amz-date") }),
        "x-amz-content-sha256" => req
            .headers
            .get_all(const { http::HeaderName::from_static("x-amz-content-sha256") }),
        _ => req.headers.get_all(name),
    }
    .iter()
    .peekable();
    let authority = if values.peek().is_none() && name == "host" {
        req.uri.authority().map(|a| a.as_str().as_bytes())
    } else {
        None
    };
    values.map(|v| v.as_bytes()).chain(authority)
}

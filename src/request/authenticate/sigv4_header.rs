//! SigV4 with the `Authorization` header: parse, check the date window, recompute, compare.

use std::time::SystemTime;

use pingora::http::RequestHeader;

use std::sync::Arc;

use super::{AuthScheme, Authenticated, Authenticator, ChunkSigner, Payload, User};
use crate::hcp::errors::{HcpCode, HcpError};
use crate::sig::v4 as sigv4;

/// The parts of `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

fn malformed(what: &str) -> HcpError {
    HcpError::new(HcpCode::AccessDenied)
        .with_message(format!("The authorization header is malformed: {what}."))
}

/// Parses the header value; a malformed header is HCP's 403 `AccessDenied`.
pub fn parse_authorization(value: &[u8]) -> Result<Authorization<'_>, HcpError> {
    let value = std::str::from_utf8(value).map_err(|_| malformed("not UTF-8"))?;
    let rest = value
        .strip_prefix(sigv4::ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| malformed("unknown algorithm"))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        } else if !part.is_empty() {
            return Err(malformed("unexpected component"));
        }
    }
    let credential = credential.ok_or_else(|| malformed("no Credential"))?;
    let signed_headers = signed_headers
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed("no SignedHeaders"))?;
    let signature = signature.ok_or_else(|| malformed("no Signature"))?;
    let (access_key, date, region, service) = parse_credential(credential).ok_or_else(|| {
        malformed("the credential scope is not AK/yyyymmdd/region/s3/aws4_request")
    })?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("the signature is not 64 hex digits"));
    }
    if signed_headers
        .split(';')
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(malformed("SignedHeaders must be lower-case names"));
    }
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// Splits `AK/yyyymmdd/region/service/aws4_request` into access key, date, region and service.
/// The access key may itself contain '/', so the scope is read from the right.
pub fn parse_credential(credential: &str) -> Option<(&str, &str, &str, &str)> {
    // The scope's four pieces from the end; the access key is what precedes them.
    let mut pieces = [""; 4];
    let mut rest = credential;
    for piece in &mut pieces {
        let slash = memchr::memrchr(b'/', rest.as_bytes())?;
        *piece = &rest[slash + 1..];
        rest = &rest[..slash];
    }
    let [terminator, service, region, date] = pieces;
    let access_key = rest;
    let valid = terminator == "aws4_request"
        && !access_key.is_empty()
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit());
    valid.then_some((access_key, date, region, service))
}

pub use crate::sig::{header_values, split_target};

/// What a SigV4 signature claims, from the header or from presigned query parameters.
pub(super) struct Claim<'a> {
    pub auth: Authorization<'a>,
    /// The request time in ISO basic form, as the string to sign carries it.
    pub amz_date: std::borrow::Cow<'a, str>,
    pub payload_hash: &'a str,
}

/// What a claim's credential scope or signed headers do wrong, if anything (checked by each
/// caller of [`verify_claim`]: a header's is malformed, a presigned URL's parameters invalid).
pub(super) fn claim_fault(claim: &Claim<'_>) -> Option<&'static str> {
    if claim.auth.service != "s3" {
        return Some("the credential scope's service must be s3");
    }
    if !claim.auth.signed_headers.split(';').any(|h| h == "host") {
        return Some("host must be a signed header");
    }
    // (Each name's values are written into the canonical request once for every time it is
    // named: a name repeated 16,000 times would make a 64 KiB header half a gigabyte to hash.
    // Names are looked up whatever their case: each in lower case, as the canonical form has
    // them — `A;a` would name one header twice.)
    let names = claim.auth.signed_headers.split(';');
    if names
        .clone()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Some("SignedHeaders must be lower-case names");
    }
    if names_a_header_twice(claim.auth.signed_headers) {
        return Some("SignedHeaders names a header more than once");
    }
    if !claim.amz_date.starts_with(claim.auth.date) {
        return Some("the credential date does not match the request date");
    }
    None
}

/// Whether a `SignedHeaders` list names a header more than once. (The canonical form lists
/// them in order: only a list out of order is sorted to tell.)
fn names_a_header_twice(signed_headers: &str) -> bool {
    let mut names = signed_headers.split(';');
    let mut last = names.next().unwrap_or_default();
    let ascending = names.all(|name| std::mem::replace(&mut last, name) < name);
    if ascending {
        return false;
    }
    let mut names: Vec<&str> = signed_headers.split(';').collect();
    names.sort_unstable();
    names.windows(2).any(|pair| pair[0] == pair[1])
}

/// Recomputes the signature of a claim over the raw request and compares in constant time.
/// `user` is the claim's access key's, looked up by the caller (which reports an unknown key
/// before anything else); `skip_query` leaves a parameter out of the canonical query (the
/// presigned signature itself).
pub(super) fn verify_claim(
    authn: &Authenticator,
    user: Arc<User>,
    req: &RequestHeader,
    claim: &Claim<'_>,
    skip_query: &[&str],
) -> Result<(Arc<User>, sigv4::SigningKey), HcpError> {
    let (raw_path, raw_query) = split_target(req.raw_path());
    let canonical = sigv4::Canonical {
        method: req.method.as_str(),
        uri: |out: &mut String| sigv4::canonical_uri_into(raw_path, out),
        query: |out: &mut String| sigv4::canonical_query_into(raw_query, skip_query, out),
        signed_headers: claim.auth.signed_headers,
        headers: |name: &str| header_values(req, name),
        payload_hash: claim.payload_hash,
    }
    .digest_of_text();
    // (A value that is no UTF-8 text has no canonical form that is only its own: read as
    // text, `\xC3(` and `\xFF(` would both be `\u{FFFD}(`, one signature for both.)
    let (canonical, true) = canonical else {
        return Err(HcpError::new(HcpCode::InvalidArgument)
            .with_message("A signed header's value is not UTF-8 text."));
    };
    let scope = sigv4::scope_pieces(claim.auth.date, claim.auth.region, claim.auth.service);
    let key = authn.signing_key(
        &user.secret,
        claim.auth.date,
        claim.auth.region,
        claim.auth.service,
    );
    let expected = sigv4::request_signature(&key, &claim.amz_date, &scope, &canonical);
    if !sigv4::signatures_equal(expected.as_str(), claim.auth.signature) {
        // (The canonical request names the object's key and metadata values: shown only where
        // the access log shows keys.)
        let shown = (authn.shows_keys && tracing::enabled!(tracing::Level::DEBUG)).then(|| {
            sigv4::redacted_canonical(&sigv4::canonical_request(
                req.method.as_str(),
                &sigv4::canonical_uri(raw_path),
                &sigv4::canonical_query(raw_query, skip_query),
                claim.auth.signed_headers,
                |name| header_values(req, name),
                claim.payload_hash,
            ))
        });
        tracing::debug!(
            access_key = ?claim.auth.access_key.chars().take(128).collect::<String>(),
            canonical_request = ?shown,
            "SigV4 mismatch"
        );
        return Err(HcpError::new(HcpCode::SignatureDoesNotMatch));
    }
    authn.signature_matched(
        &user.secret,
        (claim.auth.date, claim.auth.region, claim.auth.service),
        &key,
    );
    let signed = |name: &str| {
        claim
            .auth
            .signed_headers
            .split(';')
            .any(|s| s.eq_ignore_ascii_case(name))
    };
    if let Some(name) = super::unsigned_effect_header(req, signed) {
        return Err(super::unsigned_header_refused(name));
    }
    Ok((user, key))
}

pub(super) fn verify(
    authn: &Authenticator,
    req: &RequestHeader,
    (header, tenant): (&[u8], &str),
    now: SystemTime,
) -> Result<Authenticated, HcpError> {
    let auth = parse_authorization(header)?;
    // Unknown keys are reported before dates, as S3 does.
    let user = authn.user(auth.access_key, tenant)?;

    // x-amz-date wins over Date; either may use ISO basic or RFC 1123 form.
    let date_value = req
        .headers
        .get("x-amz-date")
        .or_else(|| req.headers.get(http::header::DATE))
        .ok_or_else(|| {
            HcpError::new(HcpCode::AccessDenied)
                .with_message("The request has no Date or x-amz-date header.")
        })?;
    let request_time = date_value
        .to_str()
        .ok()
        .and_then(super::parse_request_date)
        .ok_or_else(|| {
            HcpError::new(HcpCode::AccessDenied).with_message("The request date cannot be parsed.")
        })?;
    authn.check_skew(request_time, now)?;

    // S3 requires x-amz-content-sha256; generic SigV4 signers (curl) leave it out and sign the
    // body's digest. Without a body that digest can only be the empty one; with a body it
    // cannot be known before the signature is checked, so the header is required.
    let payload_hash = match req.headers.get("x-amz-content-sha256") {
        Some(v) => v.to_str().map_err(|_| {
            HcpError::new(HcpCode::InvalidArgument)
                .with_message("x-amz-content-sha256 is not valid.")
        })?,
        None if !declares_body(req) => sigv4::EMPTY_SHA256,
        None => {
            return Err(HcpError::new(HcpCode::MissingSecurityHeader)
                .with_message("The request has a body but no x-amz-content-sha256 header."))
        }
    };
    let mode = payload_mode(payload_hash)?;
    let claim = Claim {
        auth,
        amz_date: super::format_amz_date(request_time).into(),
        payload_hash,
    };
    if let Some(fault) = claim_fault(&claim) {
        return Err(malformed(fault));
    }
    let (user, key) = verify_claim(authn, user, req, &claim, &[])?;
    let payload = match mode {
        PayloadMode::Digest(d) => Payload::Plain { sha256: Some(d) },
        PayloadMode::Unsigned => Payload::Plain { sha256: None },
        PayloadMode::Streaming { signed, trailer } => Payload::Chunked {
            signer: signed.then(|| {
                Arc::new(ChunkSigner {
                    key,
                    amz_date: claim.amz_date.clone().into_owned(),
                    scope: sigv4::scope(claim.auth.date, claim.auth.region, claim.auth.service),
                    seed_signature: claim.auth.signature.to_ascii_lowercase(),
                })
            }),
            trailer,
        },
    };
    Ok(Authenticated {
        identity: Authenticator::identity(user, AuthScheme::SigV4Header),
        payload,
    })
}

/// Whether the request announces a body (a non-zero length or a transfer coding).
pub fn declares_body(req: &RequestHeader) -> bool {
    req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

enum PayloadMode {
    Digest([u8; 32]),
    Unsigned,
    Streaming { signed: bool, trailer: bool },
}

fn payload_mode(value: &str) -> Result<PayloadMode, HcpError> {
    Ok(match value {
        sigv4::UNSIGNED_PAYLOAD => PayloadMode::Unsigned,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadMode::Streaming {
            signed: true,
            trailer: false,
        },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => PayloadMode::Streaming {
            signed: true,
            trailer: true,
        },
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadMode::Streaming {
            signed: false,
            trailer: true,
        },
        v if v.starts_with("STREAMING-AWS4-ECDSA") => {
            return Err(HcpError::new(HcpCode::NotImplemented)
                .with_message("SigV4a (ECDSA) streaming signatures are not supported."))
        }
        v => {
            let mut digest = [0u8; 32];
            if v.len() != 64 || hex::decode_to_slice(v, &mut digest).is_err() {
                return Err(HcpError::new(HcpCode::InvalidArgument)
                    .with_message("x-amz-content-sha256 is not a valid payload hash."));
            }
            PayloadMode::Digest(digest)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signed header whose value is no UTF-8 text is refused, however it was signed: two
    /// such values would otherwise share the one signature their lossy reading gives.
    #[test]
    fn signed_values_that_are_not_text_are_refused() {
        use super::super::UserStore;
        // (Tenant t's: a key is looked up in the request's tenant.)
        let user = User::new(None, "AK".into(), "secret".into(), true, vec![]).at_home_in("t");
        let authn = Authenticator::new(
            Arc::new(UserStore::new(vec![user])).shared(),
            std::time::Duration::from_secs(900),
            Arc::default(),
        );
        let now = SystemTime::now();
        let amz_date = crate::sig::format_amz_date(now).to_string();
        let date = &amz_date[..8];
        let signed = "host;x-amz-content-sha256;x-amz-date;x-amz-meta-a";
        let request = |value: &[u8]| {
            let mut req = RequestHeader::build("GET", b"/b/k", None).unwrap();
            req.insert_header("host", "h").unwrap();
            req.insert_header("x-amz-content-sha256", sigv4::EMPTY_SHA256)
                .unwrap();
            req.insert_header("x-amz-date", amz_date.as_str()).unwrap();
            let value = http::HeaderValue::from_bytes(value).unwrap();
            req.insert_header("x-amz-meta-a", value).unwrap();
            req
        };
        // Signed as the canonical request reads it, lossily for what is not text.
        let authorization = |req: &RequestHeader| {
            let canonical = sigv4::Canonical {
                method: "GET",
                uri: |out: &mut String| sigv4::canonical_uri_into(b"/b/k", out),
                query: |_: &mut String| {},
                signed_headers: signed,
                headers: |name: &str| header_values(req, name),
                payload_hash: sigv4::EMPTY_SHA256,
            }
            .digest();
            let key = sigv4::SigningKey::derive("secret", date, "us-east-1", "s3");
            let scope = sigv4::scope_pieces(date, "us-east-1", "s3");
            let signature = sigv4::request_signature(&key, &amz_date, &scope, &canonical);
            format!(
                "AWS4-HMAC-SHA256 Credential=AK/{date}/us-east-1/s3/aws4_request, \
                 SignedHeaders={signed}, Signature={}",
                signature.as_str()
            )
        };
        let text = request(b"text");
        assert!(verify(&authn, &text, (authorization(&text).as_bytes(), "t"), now).is_ok());
        let lossy = authorization(&request(b"\xC3("));
        for value in [&b"\xC3("[..], b"\xFF("] {
            let e = verify(&authn, &request(value), (lossy.as_bytes(), "t"), now).unwrap_err();
            assert_eq!(e.code, HcpCode::InvalidArgument);
        }
    }

    /// Oracle: a credential splits as `rsplitn(5, '/')` splits it (the access key keeps its own
    /// slashes), for random credentials of few and many pieces.
    #[test]
    fn credentials_split_from_the_right() {
        use rand::{Rng, SeedableRng};
        fn by_rsplit(credential: &str) -> Option<(&str, &str, &str, &str)> {
            let mut scope = credential.rsplitn(5, '/');
            let (terminator, service, region, date, access_key) = (
                scope.next()?,
                scope.next()?,
                scope.next()?,
                scope.next()?,
                scope.next()?,
            );
            let valid = terminator == "aws4_request"
                && !access_key.is_empty()
                && date.len() == 8
                && date.bytes().all(|b| b.is_ascii_digit());
            valid.then_some((access_key, date, region, service))
        }
        let pieces = [
            "AK",
            "a/b",
            "",
            "20261203",
            "2026120",
            "us-east-1",
            "s3",
            "aws4_request",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xc7ed);
        let mut valid = 0;
        for _ in 0..20_000 {
            let n = rng.gen_range(0..8);
            let mut credential: Vec<&str> = (0..n)
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            if rng.gen_bool(0.5) {
                credential.extend(["20261203", "us-east-1", "s3", "aws4_request"]);
            }
            let credential = credential.join("/");
            let expected = by_rsplit(&credential);
            assert_eq!(parse_credential(&credential), expected, "{credential}");
            valid += usize::from(expected.is_some());
        }
        assert!((2_000..18_000).contains(&valid), "{valid} valid");
    }

    #[test]
    fn a_header_named_twice_is_told() {
        for (list, twice) in [
            ("host", false),
            ("host;x-amz-content-sha256;x-amz-date", false),
            ("x-amz-date;host", false),
            ("host;host", true),
            ("a;host;a", true),
            ("host;x-amz-date;content-md5;x-amz-date", true),
        ] {
            assert_eq!(names_a_header_twice(list), twice, "{list}");
        }
    }

    /// The oracle: whatever `SignedHeaders` a claim names, one that passes `claim_fault` makes
    /// a canonical request no longer than the request's own header values, the list and a
    /// line's punctuation for each name — a refused request costs about what it sent.
    #[test]
    fn a_passing_claim_s_canonical_request_is_bounded_by_the_request() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        const NAMES: [&str; 7] = ["a", "A", "b", "host", "x-amz-date", "X-Amz-Date", "zz"];
        for _ in 0..2000 {
            let mut req = RequestHeader::build("GET", b"/b/k", None).unwrap();
            let mut values = 0;
            for name in NAMES {
                if rng.gen_bool(0.7) {
                    let value = "v".repeat(rng.gen_range(0..64));
                    values += value.len();
                    req.append_header(name, value).unwrap();
                }
            }
            let count = rng.gen_range(1..12);
            let names: Vec<&str> = (0..count)
                .map(|_| NAMES[rng.gen_range(0..NAMES.len())])
                .collect();
            let list = names.join(";");
            let claim = Claim {
                auth: Authorization {
                    access_key: "AK",
                    date: "20261207",
                    region: "us-east-1",
                    service: "s3",
                    signed_headers: &list,
                    signature: "0",
                },
                amz_date: "20261207T000000Z".into(),
                payload_hash: "UNSIGNED-PAYLOAD",
            };
            if claim_fault(&claim).is_some() {
                continue;
            }
            let canonical = sigv4::canonical_request(
                "GET",
                &sigv4::canonical_uri(b"/b/k"),
                "",
                &list,
                |name| header_values(&req, name),
                "UNSIGNED-PAYLOAD",
            );
            let bound = 64 + values + 2 * list.len() + 2 * NAMES.len();
            assert!(canonical.len() <= bound, "{list}: {}", canonical.len());
        }
    }

    #[test]
    fn parses_a_well_formed_header() {
        let h = b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, \
                  SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let a = parse_authorization(h).unwrap();
        assert_eq!(a.access_key, "AKIDEXAMPLE");
        assert_eq!(a.date, "20150830");
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.signed_headers, "host;x-amz-date");
    }

    #[test]
    fn malformed_headers_are_access_denied() {
        for h in [
            &b"AWS4-HMAC-SHA256"[..],
            b"AWS4-HMAC-SHA256 Credential=AK/2015/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            b"AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/other, SignedHeaders=host, Signature=00",
            b"AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
        ] {
            let e = parse_authorization(h).unwrap_err();
            assert_eq!((e.status, e.code), (403, HcpCode::AccessDenied));
        }
    }

    #[test]
    fn payload_modes() {
        assert!(matches!(
            payload_mode("UNSIGNED-PAYLOAD").unwrap(),
            PayloadMode::Unsigned
        ));
        assert!(matches!(
            payload_mode(sigv4::EMPTY_SHA256).unwrap(),
            PayloadMode::Digest(_)
        ));
        assert!(matches!(
            payload_mode("STREAMING-UNSIGNED-PAYLOAD-TRAILER").unwrap(),
            PayloadMode::Streaming {
                signed: false,
                trailer: true
            }
        ));
        assert_eq!(
            payload_mode("nonsense").err().unwrap().code,
            HcpCode::InvalidArgument
        );
    }
}

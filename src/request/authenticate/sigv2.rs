//! Verification of AWS Signature Version 2 (`Authorization: AWS key:signature` and presigned
//! `AWSAccessKeyId`/`Expires`/`Signature` URLs); the canonicalisation and HMAC it shares with
//! signing toward OBS backends are in `sig::v2`.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use pingora::http::RequestHeader;

use super::{AuthScheme, Authenticated, Authenticator};
use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::address::Target;
use crate::request::classify::Query;
use crate::sig::split_target;
pub use crate::sig::v2::*;

fn decode_signature(sig: &str) -> Result<Vec<u8>, HcpError> {
    base64::engine::general_purpose::STANDARD
        .decode(sig.trim())
        .map_err(|_| HcpError::new(HcpCode::SignatureDoesNotMatch))
}

/// Refuses a query whose signed sub-resources SigV2 cannot tell apart ([`ambiguous_subresource`]).
fn unambiguous(query: &Query) -> Result<(), HcpError> {
    match ambiguous_subresource(query) {
        Some(name) => Err(
            HcpError::new(HcpCode::InvalidArgument).with_message(format!(
                "A SigV2 signature cannot cover a {name} value holding '&'."
            )),
        ),
        None => Ok(()),
    }
}

/// Seed 002: "All S3 compatible requests must include either a Date header or an x-amz-date
/// header" — within the clock skew allowed (SigV2's and HCP's own scheme; SigV4 signs its own).
/// The request's `(Date, x-amz-date)`, as given.
pub(super) fn dated<'r>(
    authn: &Authenticator,
    req: &'r RequestHeader,
    now: SystemTime,
) -> Result<(Option<&'r str>, Option<&'r str>), HcpError> {
    let amz_date = req.headers.get("x-amz-date").and_then(|v| v.to_str().ok());
    let date = req
        .headers
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok());
    let when = amz_date.or(date).ok_or_else(|| {
        HcpError::new(HcpCode::AccessDenied)
            .with_message("The request has no Date or x-amz-date header.")
    })?;
    let request_time = super::parse_request_date(when).ok_or_else(|| {
        HcpError::new(HcpCode::AccessDenied).with_message("The request date cannot be parsed.")
    })?;
    authn.check_skew(request_time, now)?;
    Ok((date, amz_date))
}

/// `Authorization: AWS key:signature`.
pub(super) fn verify_header(
    authn: &Authenticator,
    req: &RequestHeader,
    target: &Target,
    value: &str,
    now: SystemTime,
) -> Result<Authenticated, HcpError> {
    let (user, signature) = authn.key_and_proof(value, ("AWS ", &target.tenant))?;
    let (date, amz_date) = dated(authn, req, now)?;

    signed_as_text(req)?;
    let (raw_path, raw_query) = split_target(req.raw_path());
    let query = Query::parse(raw_query);
    unambiguous(&query)?;
    let resources = resource_variants(target, raw_path, &query);
    let given = decode_signature(signature)?;
    // With x-amz-date, AWS's prose signs an empty Date line while its worked example signs the
    // x-amz-date value; clients follow either, so both verify.
    let mut lines = vec![date.unwrap_or_default()];
    if let Some(d) = amz_date {
        lines.extend(["", d]);
    }
    lines.dedup();
    let signed = lines.iter().any(|line| {
        resources.iter().any(|resource| {
            matches(
                user.secret.expose(),
                &string_to_sign(req, line, resource),
                &given,
            )
        })
    });
    if signed {
        return Authenticated::new(Authenticator::identity(user, AuthScheme::SigV2Header), req);
    }
    Err(HcpError::new(HcpCode::SignatureDoesNotMatch))
}

/// The headers SigV2 signs (`Content-MD5`, `Content-Type`, `x-amz-*`) and the request target
/// are UTF-8 text: the string to sign reads them as text, where two values that are not
/// (`\xC3(`, `\xFF(`; a path's raw `%C3\xA9` and `%C3\xA8`, two keys) would read alike and
/// share one signature.
fn signed_as_text(req: &RequestHeader) -> Result<(), HcpError> {
    if std::str::from_utf8(req.raw_path()).is_err() {
        return Err(HcpError::new(HcpCode::InvalidArgument)
            .with_message("The request target is not UTF-8 text."));
    }
    let text = req.headers.iter().all(|(name, value)| {
        let signed = name == http::header::CONTENT_TYPE
            || name.as_str() == "content-md5"
            || name.as_str().starts_with("x-amz-");
        !signed || std::str::from_utf8(value.as_bytes()).is_ok()
    });
    if text {
        return Ok(());
    }
    Err(HcpError::new(HcpCode::InvalidArgument)
        .with_message("A signed header's value is not UTF-8 text."))
}

/// Presigned `?AWSAccessKeyId=…&Expires=…&Signature=…`.
pub(super) fn verify_presigned(
    authn: &Authenticator,
    req: &RequestHeader,
    target: &Target,
    query: &Query,
    now: SystemTime,
) -> Result<Authenticated, HcpError> {
    let invalid = |what: &str| {
        HcpError::new(HcpCode::InvalidArgument)
            .with_message(format!("Invalid presigned URL: {what}."))
    };
    let access_key = query
        .get("AWSAccessKeyId")
        .ok_or_else(|| invalid("no AWSAccessKeyId"))?;
    let expires = query.get("Expires").ok_or_else(|| invalid("no Expires"))?;
    let signature = query
        .get("Signature")
        .ok_or_else(|| invalid("no Signature"))?;
    let expires_at: u64 = expires
        .parse()
        .map_err(|_| invalid("Expires is not a number"))?;
    // (A time past what the clock can hold is no time: `+` would panic on it.)
    let expires_at = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(expires_at))
        .ok_or_else(|| invalid("Expires is not a valid time"))?;
    let user = authn.user(access_key, &target.tenant)?;
    if expires_at < now {
        return Err(HcpError::new(HcpCode::AccessDenied).with_message("Request has expired."));
    }
    unambiguous(query)?;
    signed_as_text(req)?;
    let (raw_path, _) = split_target(req.raw_path());
    // (A bucket's resource with its `/` too, as botocore signs a path-style bucket URL.)
    let resources = resource_variants(target, raw_path, query);
    let given = decode_signature(signature)?;
    let signed = resources.iter().any(|resource| {
        matches(
            user.secret.expose(),
            &string_to_sign(req, expires, resource),
            &given,
        )
    });
    if signed {
        // SigV2 signs the `x-amz-*` headers and Content-Type but no `x-hcp-*` one: on a URL
        // anyone holding it may send, HCP's effect headers are refused (SigV4 presigned URLs
        // can sign them).
        let signed = |n: &str| n.starts_with("x-amz-") || n == "content-type";
        if let Some(name) = super::unsigned_effect_header(req, signed) {
            return Err(super::unsigned_header_refused(name));
        }
        return Authenticated::new(
            Authenticator::identity(user, AuthScheme::SigV2Presigned),
            req,
        );
    }
    Err(HcpError::new(HcpCode::SignatureDoesNotMatch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build(method, path.as_bytes(), None).unwrap();
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).unwrap();
        }
        r
    }

    fn target(bucket: &str, vhost: bool) -> Target {
        Target {
            tenant: "t".into(),
            bucket: Some(bucket.into()),
            raw_key: None,
            virtual_host: vhost,
        }
    }

    /// The worked examples of the AWS S3 developer guide ("Signing and authenticating REST
    /// requests"), credentials AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn b64(sig: [u8; 20]) -> String {
        base64::engine::general_purpose::STANDARD.encode(sig)
    }

    #[test]
    fn signed_headers_are_text() {
        let mut r = req("PUT", "/b/k", &[("content-type", "text/plain")]);
        assert!(signed_as_text(&r).is_ok());
        r.insert_header("x-other", http::HeaderValue::from_bytes(b"\xFF").unwrap())
            .unwrap();
        assert!(signed_as_text(&r).is_ok(), "not signed by SigV2");
        // A raw byte in the path: `%C3\xA9` and `%C3\xA8` (two keys) would sign alike.
        let raw = RequestHeader::build("GET", b"/b/%C3\xA9", None).unwrap();
        assert_eq!(
            signed_as_text(&raw).unwrap_err().code,
            HcpCode::InvalidArgument
        );
        for name in ["x-amz-meta-a", "content-type", "content-md5"] {
            let mut r = req("PUT", "/b/k", &[]);
            r.insert_header(name, http::HeaderValue::from_bytes(b"\xC3(").unwrap())
                .unwrap();
            assert_eq!(
                signed_as_text(&r).unwrap_err().code,
                HcpCode::InvalidArgument,
                "{name}"
            );
        }
    }

    /// Two queries SigV2 would sign alike: the one whose value hides a second sub-resource is
    /// refused before any signature is compared; a presigned URL's Expires past the clock's
    /// range is refused, not added to the epoch.
    #[test]
    fn ambiguous_queries_and_unreal_times_are_refused() {
        let split = Query::parse(b"response-content-type=a&versionId=v");
        let merged = Query::parse(b"response-content-type=a%26versionId%3Dv");
        let t = target("b", false);
        assert_eq!(
            canonical_resource(&t, b"/b/k", &split),
            canonical_resource(&t, b"/b/k", &merged)
        );
        assert_eq!(ambiguous_subresource(&split), None);
        assert_eq!(
            ambiguous_subresource(&merged),
            Some("response-content-type")
        );
        assert_eq!(ambiguous_subresource(&Query::parse(b"prefix=a%26b")), None);
        let file_name = b"response-content-disposition=attachment%3B%20filename%3D%22a%26b.txt%22";
        assert_eq!(ambiguous_subresource(&Query::parse(file_name)), None);
        let hidden = b"response-content-disposition=x%26acl";
        assert_eq!(
            ambiguous_subresource(&Query::parse(hidden)),
            Some("response-content-disposition")
        );

        // (Tenant t's: a key is looked up in the request's tenant.)
        let user = super::super::User::new(None, "AKID".into(), SECRET.into(), true, vec![])
            .at_home_in("t");
        let authn = Authenticator::new(
            std::sync::Arc::new(super::super::UserStore::new(vec![user])).shared(),
            Duration::from_secs(900),
            std::sync::Arc::default(),
        );
        for (raw, message) in [
            (
                &b"AWSAccessKeyId=AKID&Expires=18446744073709551615&Signature=AAAA"[..],
                "Expires is not a valid time",
            ),
            (
                b"AWSAccessKeyId=AKID&Expires=9999999999&Signature=AAAA&response-content-type=a%26versionId%3Dv",
                "holding '&'",
            ),
        ] {
            let path = [&b"/b/k?"[..], raw].concat();
            let r = RequestHeader::build("GET", &path, None).unwrap();
            let e = authn
                .authenticate(&r, &t, &Query::parse(raw), SystemTime::now())
                .unwrap_err();
            assert_eq!((e.status, e.code), (400, HcpCode::InvalidArgument), "{e:?}");
            assert!(e.message.contains(message), "{e:?}");
        }
    }

    #[test]
    fn aws_example_object_get() {
        let r = req(
            "GET",
            "/photos/puppy.jpg",
            &[("Host", "awsexamplebucket1.us-west-1.s3.amazonaws.com")],
        );
        let res = canonical_resource(
            &target("awsexamplebucket1", true),
            b"/photos/puppy.jpg",
            &Query::parse(b""),
        );
        let sts = string_to_sign(&r, "Tue, 27 Mar 2007 19:36:42 +0000", &res);
        assert_eq!(
            sts,
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        assert_eq!(b64(sign(SECRET, &sts)), "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
    }

    #[test]
    fn aws_example_object_put() {
        let r = req(
            "PUT",
            "/photos/puppy.jpg",
            &[("Content-Type", "image/jpeg"), ("Content-Length", "94328")],
        );
        let res = canonical_resource(
            &target("awsexamplebucket1", true),
            b"/photos/puppy.jpg",
            &Query::parse(b""),
        );
        let sts = string_to_sign(&r, "Tue, 27 Mar 2007 21:15:45 +0000", &res);
        assert_eq!(b64(sign(SECRET, &sts)), "iqRzw+ileNPu1fhspnRs8nOjjIA=");
    }

    #[test]
    fn aws_example_list_with_subresource_free_query() {
        let r = req(
            "GET",
            "/?prefix=photos&max-keys=50&marker=puppy",
            &[("User-Agent", "Mozilla/5.0")],
        );
        let res = canonical_resource(
            &target("awsexamplebucket1", true),
            b"/",
            &Query::parse(b"prefix=photos&max-keys=50&marker=puppy"),
        );
        assert_eq!(res, "/awsexamplebucket1/");
        let sts = string_to_sign(&r, "Tue, 27 Mar 2007 19:42:41 +0000", &res);
        assert_eq!(b64(sign(SECRET, &sts)), "m0WP8eCtspQl5Ahe6L1SozdX9YA=");
    }

    #[test]
    fn aws_example_fetch_acl() {
        let r = req("GET", "/?acl", &[]);
        let res = canonical_resource(
            &target("awsexamplebucket1", true),
            b"/",
            &Query::parse(b"acl"),
        );
        assert_eq!(res, "/awsexamplebucket1/?acl");
        let sts = string_to_sign(&r, "Tue, 27 Mar 2007 19:44:46 +0000", &res);
        assert_eq!(b64(sign(SECRET, &sts)), "82ZHiFIjc+WbcwFKGUVEQspPn+0=");
    }

    #[test]
    fn delete_with_x_amz_date_signs_it_among_the_amz_headers() {
        let r = req(
            "DELETE",
            "/awsexamplebucket1/photos/puppy.jpg",
            &[("x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000")],
        );
        let res = canonical_resource(
            &target("awsexamplebucket1", false),
            b"/awsexamplebucket1/photos/puppy.jpg",
            &Query::parse(b""),
        );
        let sts = string_to_sign(&r, "Tue, 27 Mar 2007 21:20:26 +0000", &res);
        assert_eq!(
            sts,
            "DELETE\n\n\nTue, 27 Mar 2007 21:20:26 +0000\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
    }

    #[test]
    fn amz_headers_are_sorted_joined_and_unfolded() {
        let r = req(
            "PUT",
            "/db-backup.dat.gz",
            &[
                ("X-Amz-Meta-ReviewedBy", "joe@example.com"),
                ("X-Amz-Meta-ReviewedBy", "jane@example.com"),
                ("X-Amz-Meta-FileChecksum", "0x02661779"),
                ("x-amz-acl", "public-read"),
            ],
        );
        assert_eq!(
            canonical_amz_headers(&r),
            "x-amz-acl:public-read\nx-amz-meta-filechecksum:0x02661779\nx-amz-meta-reviewedby:joe@example.com,jane@example.com\n"
        );
    }

    /// A parameter the gateway reads in any case is signed as written: one added to a signed
    /// request in another case (`&VersionId=` on a presigned URL) changes what was signed.
    #[test]
    fn parameters_read_in_any_case_are_signed_in_any_case() {
        let t = target("b", false);
        for (query, resource) in [
            (&b"VersionId=v1"[..], "/b/k?VersionId=v1"),
            (b"ACL", "/b/k?ACL"),
            (b"uploadid=u&PartNumber=2", "/b/k?PartNumber=2&uploadid=u"),
            (b"acl&Prefix=p", "/b/k?acl"),
        ] {
            let q = Query::parse(query);
            assert_eq!(canonical_resource(&t, b"/b/k", &q), resource);
        }
    }

    #[test]
    fn subresources_sorted_and_decoded_others_dropped() {
        let q =
            Query::parse(b"versionId=v%2F1&uploads&prefix=x&response-content-type=text%2Fplain");
        let res = canonical_resource(&target("b", false), b"/b/k", &q);
        assert_eq!(
            res,
            "/b/k?response-content-type=text/plain&uploads&versionId=v/1"
        );
    }
}

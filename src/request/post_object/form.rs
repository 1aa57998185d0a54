//! POST object: uploads from HTML forms (docs/validation.md rules 44–47).
//!
//! The form's fields arrive before the file. The gateway reads them, verifies the signed policy
//! and its conditions, turns the fields into the headers of an ordinary PUT object (so the same
//! validation, authorisation and signing apply), and only then reads the file. The file is held
//! in memory up to `limits.max_post_object_bytes`: a backend PUT needs its length up front, and
//! a multipart form does not give it.

use std::time::SystemTime;

use base64::Engine as _;
use pingora::http::RequestHeader;
use serde_json::Value;

use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::authenticate::post_form::FormFields;

/// The text fields of a form, in order, names as sent.
#[derive(Debug, Default)]
pub struct Form {
    pub fields: Vec<(String, String)>,
}

impl FormFields for Form {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Fields a policy need not mention: the credentials, the policy itself and the file.
fn exempt(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "policy" | "x-amz-signature" | "signature" | "awsaccesskeyid" | "file"
    ) || name.starts_with("x-ignore-")
}

/// Form fields that become headers of the object's PUT.
fn header_for(name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "acl" => Some("x-amz-acl".into()),
        "content-type"
        | "cache-control"
        | "content-disposition"
        | "content-encoding"
        | "expires"
        // HCP's own (manual, "Optional form fields"), carried out as on a PUT.
        | "x-hcp-retention"
        | "x-hcp-retentionhold" => Some(name),
        n if n.starts_with("x-amz-meta-")
            || n.starts_with("x-amz-server-side-encryption")
            || n == "x-amz-storage-class"
            || n.starts_with("x-amz-grant-") =>
        {
            Some(name)
        }
        _ => None,
    }
}

fn malformed(message: &str) -> HcpError {
    HcpError::new(HcpCode::MalformedPOSTRequest).with_message(message.to_string())
}

fn policy_error(message: String) -> HcpError {
    HcpError::new(HcpCode::InvalidPolicyDocument).with_message(message)
}

/// Rule 44: the multipart boundary of a form upload.
pub fn boundary(req: &RequestHeader) -> Result<String, HcpError> {
    let content_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(malformed(
            "A POST object upload must be multipart/form-data.",
        ));
    }
    multer::parse_boundary(content_type)
        .map_err(|_| malformed("The multipart/form-data boundary is missing."))
}

/// Rule 45: the object's key, with `${filename}` standing for the file's name — a name, also
/// once the file's name stands in it (`key=${filename}` with no file chosen would name no
/// object: a PUT of the bucket itself).
pub fn object_key(form: &Form, filename: Option<&str>) -> Result<String, HcpError> {
    let key = form
        .field("key")
        .map(|k| k.replace("${filename}", filename.unwrap_or_default()))
        .filter(|k| !k.is_empty())
        .ok_or_else(|| HcpError::new(HcpCode::UserKeyMustBeSpecified))?;
    Ok(key)
}

/// The file sizes a policy allows, from its `content-length-range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthRange {
    pub min: u64,
    pub max: u64,
}

impl LengthRange {
    /// (A decoded file is read one byte past `max` at most: one longer is "more than" it.)
    pub fn check(self, len: u64) -> Result<(), HcpError> {
        let (min, max) = (self.min, self.max);
        if len > max {
            return Err(policy_error(format!(
                "The file is more than {max} bytes; the policy allows {min} to {max}."
            )));
        }
        if len < min {
            return Err(policy_error(format!(
                "The file is {len} bytes; the policy allows {min} to {max}."
            )));
        }
        Ok(())
    }
}

/// The policy's expiration: ISO 8601 in UTC as S3 documents it (`2026-12-01T12:00:00.000Z`;
/// RFC 3339's looser forms — a space for the `T`, an offset — are refused as S3 refuses them),
/// and not yet passed — now, nor when the form says it was signed (HCP: "if the field
/// x-amz-date contains an expired date, the policy is considered expired").
fn check_expiration(policy: &Value, now: SystemTime, signed: Option<&str>) -> Result<(), HcpError> {
    let expiration = policy
        .get("expiration")
        .and_then(Value::as_str)
        .filter(|e| e.as_bytes().get(10) == Some(&b'T') && e.ends_with('Z'))
        .and_then(|e| {
            time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).ok()
        })
        .ok_or_else(|| policy_error("The policy needs an expiration date.".into()))?;
    let signed = signed.and_then(crate::request::authenticate::parse_request_date);
    if SystemTime::from(expiration) <= signed.map_or(now, |t| t.max(now)) {
        return Err(HcpError::new(HcpCode::AccessDenied).with_message("The policy has expired."));
    }
    Ok(())
}

/// One condition of the policy, judged against the form's values (`value_of`); the names it
/// covers are added to `covered`. A `content-length-range` is returned for the file's reading.
fn check_condition<'a>(
    c: &Value,
    value_of: &dyn Fn(&str) -> Option<&'a str>,
    covered: &mut Vec<String>,
) -> Result<Option<LengthRange>, HcpError> {
    let unknown = || policy_error(format!("The policy condition {c} is not understood."));
    match c {
        Value::Object(map) => {
            for (name, expected) in map {
                let expected = expected.as_str().ok_or_else(unknown)?;
                if !value_of(name).is_some_and(|actual| equal(name, actual, expected)) {
                    return Err(policy_error(format!(
                        "The form's {name} does not match the policy."
                    )));
                }
                covered.push(name.to_ascii_lowercase());
            }
            Ok(None)
        }
        Value::Array(items) => {
            let op = items
                .first()
                .and_then(Value::as_str)
                .ok_or_else(unknown)?
                .to_ascii_lowercase();
            if op == "content-length-range" {
                let bound = |i: usize| items.get(i).and_then(Value::as_u64).ok_or_else(unknown);
                return Ok(Some(LengthRange {
                    min: bound(1)?,
                    max: bound(2)?,
                }));
            }
            let (Some(field), Some(operand), 3) = (
                items.get(1).and_then(Value::as_str),
                items.get(2).and_then(Value::as_str),
                items.len(),
            ) else {
                return Err(unknown());
            };
            let name = field.strip_prefix('$').ok_or_else(unknown)?;
            let actual = value_of(name).unwrap_or_default();
            let holds = match op.as_str() {
                "eq" => equal(name, actual, operand),
                "starts-with" if is_bucket(name) => actual
                    .to_ascii_lowercase()
                    .starts_with(&operand.to_ascii_lowercase()),
                "starts-with" => actual.starts_with(operand),
                _ => return Err(unknown()),
            };
            if !holds {
                return Err(policy_error(format!(
                    "The form's {name} does not meet the policy's {op} condition."
                )));
            }
            covered.push(name.to_ascii_lowercase());
            Ok(None)
        }
        _ => Err(unknown()),
    }
}

/// Whether a policy's condition names the bucket, whose names are not case sensitive (HCP:
/// `Finance` is `finance`; the manual's own policy names `Finance`).
fn is_bucket(name: &str) -> bool {
    name.eq_ignore_ascii_case("bucket")
}

/// Whether the form's `actual` value of field `name` is the policy's `expected` one.
fn equal(name: &str, actual: &str, expected: &str) -> bool {
    if is_bucket(name) {
        actual.eq_ignore_ascii_case(expected)
    } else {
        actual == expected
    }
}

/// Rule 46: the policy is unexpired, every condition holds for the form, and every field the
/// form sends (but the credentials, the policy and the file) is named by a condition. `key` is
/// the object's key with `${filename}` already replaced: conditions on `$key` judge the name the
/// object will get, as S3 does.
pub fn check_policy(
    form: &Form,
    bucket: &str,
    key: &str,
    now: SystemTime,
) -> Result<Option<LengthRange>, HcpError> {
    let Some(encoded) = form.field("policy") else {
        return Ok(None);
    };
    let invalid = || policy_error("The policy is not Base64-encoded JSON.".into());
    let json = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid())?;
    let policy: Value = serde_json::from_slice(&json).map_err(|_| invalid())?;
    check_expiration(&policy, now, form.field("x-amz-date"))?;
    let conditions = policy
        .get("conditions")
        .and_then(Value::as_array)
        .ok_or_else(|| policy_error("The policy has no conditions.".into()))?;
    let value_of = |name: &str| -> Option<&str> {
        if name.eq_ignore_ascii_case("bucket") {
            Some(bucket)
        } else if name.eq_ignore_ascii_case("key") {
            Some(key)
        } else {
            form.field(name)
        }
    };
    let mut covered: Vec<String> = Vec::new();
    // (Every content-length-range holds: the file's size is within all of them.)
    let mut range: Option<LengthRange> = None;
    for c in conditions {
        if let Some(r) = check_condition(c, &value_of, &mut covered)? {
            range = Some(match range {
                Some(before) => LengthRange {
                    min: before.min.max(r.min),
                    max: before.max.min(r.max),
                },
                None => r,
            });
        }
    }
    for (name, _) in &form.fields {
        if !exempt(name) && !covered.contains(&name.to_ascii_lowercase()) {
            return Err(policy_error(format!(
                "The form field {name} is not allowed by the policy."
            )));
        }
    }
    Ok(range)
}

/// Whether the form asks for its file to be decoded: a `Content-Encoding` field of `gzip`
/// ("If value is gzip and file is gzipped, HCP decodes the file").
pub fn asks_gunzip(form: &Form) -> bool {
    form.field("content-encoding")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
}

/// Whether a file is gzipped: it starts with gzip's magic bytes (RFC 1952).
pub fn gzipped(file: &[u8]) -> bool {
    file.starts_with(&[0x1f, 0x8b])
}

/// A gzipped file decoded (every member, as `gzip -d` reads them): at most `limit` bytes (400
/// EntityTooLarge past them), and of those no more than one past `cap` are decoded (a policy's
/// largest size: what is longer fails its range anyway, and a small bomb costs no more than
/// the policy allows); 400 InvalidArgument for data that is not gzip's (trailing bytes too).
pub fn gunzip(file: &[u8], limit: u64, cap: u64) -> Result<Vec<u8>, HcpError> {
    use std::io::Read as _;
    let not_gzip = || {
        HcpError::new(HcpCode::InvalidArgument)
            .with_message("The form's file is not valid gzip data.")
    };
    let most = cap.min(limit).saturating_add(1);
    let mut decoder = flate2::read::MultiGzDecoder::new(file).take(most);
    let most = usize::try_from(most).unwrap_or(usize::MAX);
    // (Grown to what it may hold at most, never doubled past it: the room taken for it.)
    let mut decoded = Vec::new();
    loop {
        let at = decoded.len();
        let more = most.saturating_sub(at).clamp(1, 64 * 1024);
        crate::request::held::grow_within(&mut decoded, more, most);
        decoded.resize(at + more, 0);
        let n = decoder.read(&mut decoded[at..]).map_err(|_| not_gzip())?;
        decoded.truncate(at + n);
        if n == 0 {
            break;
        }
    }
    if decoded.len() as u64 > limit {
        return Err(HcpError::new(HcpCode::EntityTooLarge).with_message(format!(
            "A form upload may carry at most {limit} bytes, decoded."
        )));
    }
    // (Held until sent: not the room the reads doubled it to.)
    if decoded.capacity() > decoded.len() + decoded.len() / 4 {
        decoded.shrink_to_fit();
    }
    Ok(decoded)
}

/// The digests a form claims of its file — `Content-MD5` and `x-amz-checksum-*` fields, as a
/// PUT's headers claim them of its body —, to be verified ([`verify_claims`]) before anything
/// is stored; `None` where it claims none. A claim that is no digest is refused (400
/// `InvalidDigest`, or `InvalidArgument` for a checksum, as for a PUT).
pub fn claimed_digests(
    form: &Form,
) -> Result<Option<crate::request::body::BodyVerifier>, HcpError> {
    let claims = |n: &str| n == "content-md5" || n.starts_with("x-amz-checksum-");
    if !form
        .fields
        .iter()
        .any(|(n, _)| claims(&n.to_ascii_lowercase()))
    {
        return Ok(None);
    }
    let mut req = RequestHeader::build("PUT", b"/", None).expect("static");
    for (name, value) in &form.fields {
        let lower = name.to_ascii_lowercase();
        if claims(&lower) {
            req.append_header(lower, value.as_str())
                .map_err(|_| HcpError::new(HcpCode::InvalidDigest))?;
        }
    }
    let plain = crate::request::authenticate::Payload::Plain { sha256: None };
    crate::request::body::BodyVerifier::new(&plain, &req, 0).map(Some)
}

/// Whether the file is what the form claimed of it: 400 `BadDigest` where it is not.
pub fn verify_claims(
    mut claims: crate::request::body::BodyVerifier,
    file: bytes::Bytes,
) -> Result<(), HcpError> {
    let mut released = Vec::new();
    claims.push(file, &mut released)?;
    claims.finish().map(|_| ())
}

/// The PUT object the form amounts to: the fields that are object headers, on `path`.
pub fn object_request(form: &Form, path: &[u8], length: u64) -> Result<RequestHeader, HcpError> {
    let mut req = RequestHeader::build("PUT", path, None)
        .map_err(|_| HcpError::new(HcpCode::InvalidArgument))?;
    let mut seen = std::collections::HashSet::new();
    for (name, value) in &form.fields {
        let lower = name.to_ascii_lowercase();
        if !seen.insert(lower.clone()) {
            return Err(malformed(&format!(
                "The form field {name} is given more than once."
            )));
        }
        if lower == "tagging"
            || crate::request::validate::backend_directive(&lower)
            || crate::request::validate::UNSUPPORTED_HEADERS.contains(&lower.as_str())
            // (HCP's form takes retention and a hold, not labeled holds.)
            || lower == "x-hcp-labelretentionhold"
            // A form's policy, not the user's Object Lock permissions, would decide them.
            || crate::request::validate::OBJECT_LOCK_HEADERS.contains(&lower.as_str())
            // A digest S3's forms do not define: refused, never taken for one verified.
            || lower == "x-amz-content-sha256"
        {
            return Err(HcpError::new(HcpCode::NotImplemented)
                .with_message(format!("The form field {name} is not supported.")));
        }
        if let Some(header) = header_for(name) {
            req.append_header(header, value.as_str()).map_err(|_| {
                HcpError::new(HcpCode::InvalidArgument).with_message(format!(
                    "The form field {name} is not a valid header value."
                ))
            })?;
        }
    }
    req.insert_header(http::header::CONTENT_LENGTH, length.to_string())
        .expect("digits");
    Ok(req)
}

/// What a successful form upload answers: a redirect when the form asks for one, else
/// `success_action_status` (200, 201 with a `PostResponse` document, or 204 by default).
pub struct Success {
    pub status: u16,
    pub location: String,
    /// The `PostResponse` document (without its declaration: `rewrite::own_document`).
    pub body: Option<Vec<u8>>,
}

/// HCP's `PostResponse` (`success_action_status=201`): the key as HCP displays names in its
/// documents (`xml::displayed_name`).
fn post_response(location: &str, bucket: &str, key: &str, etag: &str) -> Option<Vec<u8>> {
    use quick_xml::events::{BytesEnd, BytesStart, Event};
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(256));
    let root = "PostResponse";
    writer
        .write_event(Event::Start(BytesStart::new(root)))
        .ok()?;
    let key = crate::hcp::xml::displayed_name(key);
    for (name, text) in [
        ("Location", location),
        ("Bucket", bucket),
        ("Key", &key),
        ("ETag", etag),
    ] {
        crate::hcp::xml::leaf(&mut writer, name, text)?;
    }
    writer.write_event(Event::End(BytesEnd::new(root))).ok()?;
    Some(writer.into_inner())
}

pub fn success(form: &Form, bucket: &str, key: &str, etag: &str, object_url: &str) -> Success {
    // (A URL no header can carry is one HCP cannot read: ignored, not a 500 once stored.)
    let readable = |r: &&str| {
        (r.starts_with("http://") || r.starts_with("https://"))
            && http::HeaderValue::from_str(r).is_ok()
    };
    let redirect = form
        .field("success_action_redirect")
        .filter(readable)
        .or_else(|| form.field("redirect").filter(readable));
    if let Some(url) = redirect {
        let mut query = String::new();
        for (name, value) in [("bucket", bucket), ("key", key), ("etag", etag)] {
            query.push(if query.is_empty() && !url.contains('?') {
                '?'
            } else {
                '&'
            });
            query.push_str(name);
            query.push('=');
            crate::sig::v4::uri_encode(value.as_bytes(), false, &mut query);
        }
        return Success {
            status: 303,
            location: format!("{url}{query}"),
            body: None,
        };
    }
    match form.field("success_action_status") {
        Some("200") => Success {
            status: 200,
            location: object_url.to_string(),
            body: None,
        },
        Some("201") => Success {
            status: 201,
            location: object_url.to_string(),
            body: post_response(object_url, bucket, key, etag),
        },
        _ => Success {
            status: 204,
            location: object_url.to_string(),
            body: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn with_policy(policy: &str, pairs: Vec<(&str, &str)>) -> Form {
        let encoded = base64::engine::general_purpose::STANDARD.encode(policy);
        let mut f = form(&pairs);
        f.fields.push(("policy".into(), encoded));
        f
    }

    const FUTURE: &str = "2999-01-01T00:00:00.000Z";

    #[test]
    fn policies_hold_or_name_what_fails() {
        let policy = format!(
            r#"{{"expiration":"{FUTURE}","conditions":[{{"bucket":"photos"}},["starts-with","$key","user/"],{{"acl":"public-read"}},["content-length-range",1,100],["starts-with","$Content-Type",""]]}}"#
        );
        let ok = with_policy(
            &policy,
            vec![
                ("key", "user/${filename}"),
                ("acl", "public-read"),
                ("Content-Type", "image/png"),
            ],
        );
        let now = SystemTime::now();
        assert_eq!(
            check_policy(&ok, "photos", &key_of(&ok), now).unwrap(),
            Some(LengthRange { min: 1, max: 100 })
        );
        // Two ranges: the file's size within both.
        let two = policy.replace(
            r#"["content-length-range",1,100]"#,
            r#"["content-length-range",0,10],["content-length-range",5,1000000]"#,
        );
        let two = with_policy(
            &two,
            vec![
                ("key", "user/${filename}"),
                ("acl", "public-read"),
                ("Content-Type", "image/png"),
            ],
        );
        assert_eq!(
            check_policy(&two, "photos", &key_of(&two), now).unwrap(),
            Some(LengthRange { min: 5, max: 10 })
        );
        for (fields, bucket) in [
            (vec![("key", "other/x"), ("acl", "public-read")], "photos"),
            (vec![("key", "user/x"), ("acl", "private")], "photos"),
            (vec![("key", "user/x"), ("acl", "public-read")], "other"),
            (
                vec![
                    ("key", "user/x"),
                    ("acl", "public-read"),
                    ("x-amz-meta-a", "1"),
                ],
                "photos",
            ),
        ] {
            let f = with_policy(&policy, fields);
            let e = check_policy(&f, bucket, &key_of(&f), now).unwrap_err();
            assert_eq!(e.code, HcpCode::InvalidPolicyDocument);
        }
        // Fields a policy need not name.
        let f = with_policy(
            &policy,
            vec![
                ("key", "user/x"),
                ("acl", "public-read"),
                ("x-ignore-me", "1"),
                ("x-amz-signature", "s"),
            ],
        );
        assert!(check_policy(&f, "photos", &key_of(&f), now).is_ok());

        // A bucket name is not case sensitive (the manual's own policy names `Finance`); a
        // key is.
        let named =
            |c: &str| format!(r#"{{"expiration":"{FUTURE}","conditions":[{c},{{"key":"k"}}]}}"#);
        for c in [
            r#"{"bucket":"Finance"}"#,
            r#"["eq","$bucket","FINANCE"]"#,
            r#"["starts-with","$bucket","Fin"]"#,
        ] {
            let f = with_policy(&named(c), vec![("key", "k")]);
            assert!(check_policy(&f, "finance", "k", now).is_ok(), "{c}");
        }
        let f = with_policy(&named(r#"{"key":"K"}"#), vec![("key", "k")]);
        assert!(check_policy(&f, "finance", "k", now).is_err());
        let f = with_policy(&named(r#"{"bucket":"Finances"}"#), vec![("key", "k")]);
        assert!(check_policy(&f, "finance", "k", now).is_err());

        // `$key` conditions see the key after `${filename}` is replaced.
        let starts =
            format!(r#"{{"expiration":"{FUTURE}","conditions":[["starts-with","$key","foo"]]}}"#);
        let f = with_policy(&starts, vec![("key", "${filename}")]);
        assert!(check_policy(&f, "b", "foo.txt", now).is_ok());
        assert!(check_policy(&f, "b", "bar.txt", now).is_err());
    }

    /// The key a form names, with the file called `pic.png`.
    fn key_of(f: &Form) -> String {
        object_key(f, Some("pic.png")).unwrap_or_default()
    }

    /// HCP: "if the field x-amz-date contains an expired date, the policy is considered
    /// expired" — a form dated at or past its policy's expiration is refused as expired.
    #[test]
    fn a_form_dated_past_its_policy_has_expired() {
        let now = SystemTime::now();
        let policy = r#"{"expiration":"2998-01-01T00:00:00.000Z","conditions":[{"x-amz-date":"29990101T000000Z"}]}"#;
        let late = with_policy(policy, vec![("x-amz-date", "29990101T000000Z")]);
        let e = check_policy(&late, "b", "k", now).unwrap_err();
        assert_eq!(
            (e.code, &*e.message),
            (HcpCode::AccessDenied, "The policy has expired.")
        );
        let policy = r#"{"expiration":"2998-01-01T00:00:00.000Z","conditions":[{"x-amz-date":"29970101T000000Z"}]}"#;
        let in_time = with_policy(policy, vec![("x-amz-date", "29970101T000000Z")]);
        assert!(check_policy(&in_time, "b", "k", now).is_ok());
    }

    #[test]
    fn expired_malformed_and_absent_policies() {
        let now = SystemTime::now();
        let expired = with_policy(
            r#"{"expiration":"2000-01-01T00:00:00Z","conditions":[]}"#,
            vec![],
        );
        assert_eq!(
            check_policy(&expired, "b", "k", now).unwrap_err().code,
            HcpCode::AccessDenied
        );
        for policy in [
            "not json",
            r#"{"conditions":[]}"#,
            &format!(r#"{{"expiration":"{FUTURE}"}}"#),
            &format!(r#"{{"expiration":"{FUTURE}","conditions":[["matches","$key","x"]]}}"#),
            // Not S3's ISO 8601 form (Python's str() of a datetime).
            r#"{"expiration":"2099-11-22 09:38:39.123456+00:00","conditions":[]}"#,
            r#"{"expiration":"2099-11-22T09:38:39+01:00","conditions":[]}"#,
        ] {
            let e = check_policy(&with_policy(policy, vec![]), "b", "k", now).unwrap_err();
            assert_eq!(e.code, HcpCode::InvalidPolicyDocument, "{policy}");
        }
        assert_eq!(
            check_policy(&form(&[("key", "k")]), "b", "k", now).unwrap(),
            None
        );
        let range = LengthRange { min: 2, max: 4 };
        assert!(range.check(3).is_ok());
        assert!(range.check(1).is_err() && range.check(5).is_err());
    }

    #[test]
    fn keys_fields_and_answers() {
        let f = form(&[
            ("key", "up/${filename}"),
            ("Content-Type", "text/plain"),
            ("x-amz-meta-Color", "red"),
            ("acl", "public-read"),
            ("success_action_status", "201"),
        ]);
        assert_eq!(object_key(&f, Some("a.txt")).unwrap(), "up/a.txt");
        assert_eq!(
            object_key(&form(&[]), None).unwrap_err().code,
            HcpCode::UserKeyMustBeSpecified
        );
        // No file chosen: `${filename}` alone names no object.
        let unnamed = form(&[("key", "${filename}")]);
        for filename in [None, Some("")] {
            let e = object_key(&unnamed, filename).unwrap_err();
            assert_eq!(e.code, HcpCode::UserKeyMustBeSpecified);
        }
        let req = object_request(&f, b"/b/up/a.txt", 5).unwrap();
        assert_eq!(req.headers["content-type"], "text/plain");
        assert_eq!(req.headers["x-amz-meta-color"], "red");
        assert_eq!(req.headers["x-amz-acl"], "public-read");
        assert!(req.headers.get("success_action_status").is_none());
        let s = success(&f, "b", "up/a&b", "\"e\"", "http://h/b/up/a&b");
        assert_eq!(s.status, 201);
        let body = String::from_utf8(s.body.unwrap()).unwrap();
        assert!(
            body.contains("<Key>up/a&amp;b</Key><ETag>&quot;e&quot;</ETag>"),
            "{body}"
        );
        let r = form(&[("success_action_redirect", "https://app/done?x=1")]);
        let s = success(&r, "b", "k/1", "\"e\"", "u");
        assert_eq!(
            (s.status, s.location.as_str()),
            (303, "https://app/done?x=1&bucket=b&key=k%2F1&etag=%22e%22")
        );
        assert_eq!(success(&form(&[]), "b", "k", "e", "u").status, 204);
        // A URL no header can carry is ignored, as one HCP cannot read.
        let r = form(&[("success_action_redirect", "https://app/\r\nSet-Cookie: x")]);
        assert_eq!(success(&r, "b", "k", "e", "u").status, 204);
    }

    /// The oracle for decoding: whatever is gzipped, in one member or several, decodes to
    /// itself within the limit, and past it (by one byte) is EntityTooLarge; under a cap, to
    /// its first cap + 1 bytes at most; what is not gzip's data never decodes.
    #[test]
    fn gzipped_files_decode_to_themselves_within_the_limit() {
        use rand::{Rng, SeedableRng};
        use std::io::Write as _;
        let gzip = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261205);
        for _ in 0..300 {
            let len = rng.gen_range(0..20_000);
            let data: Vec<u8> = (0..len).map(|_| rng.gen_range(b'a'..=b'd')).collect();
            let cut = rng.gen_range(0..=len);
            let members = [gzip(&data[..cut]), gzip(&data[cut..])].concat();
            for file in [gzip(&data), members] {
                assert!(gzipped(&file));
                assert_eq!(gunzip(&file, len as u64, u64::MAX).unwrap(), data);
                // A cap below the data: one byte past it decoded, no more.
                let cap = rng.gen_range(0..=len as u64);
                let capped = gunzip(&file, len as u64, cap).unwrap();
                assert_eq!(capped, data[..data.len().min(cap as usize + 1)]);
                if len > 0 {
                    let e = gunzip(&file, len as u64 - 1, u64::MAX).unwrap_err();
                    assert_eq!(e.code, HcpCode::EntityTooLarge);
                }
                // Cut short or with its checksum changed, it is not gzip's data.
                let short = &file[..file.len() - 1];
                let mut changed = file.clone();
                let at = changed.len() - 6;
                changed[at] ^= 1;
                for bad in [short, changed.as_slice()] {
                    let e = gunzip(bad, u64::MAX, u64::MAX).unwrap_err();
                    assert_eq!(e.code, HcpCode::InvalidArgument);
                }
            }
        }
        assert!(!gzipped(b"plain"));
        let bomb = gzip(&vec![0; 1 << 24]);
        let e = gunzip(&bomb, 1 << 20, u64::MAX).unwrap_err();
        assert_eq!(e.code, HcpCode::EntityTooLarge);
        assert_eq!(gunzip(&bomb, 1 << 20, 10).unwrap().len(), 11);
        let e = gunzip(&[bomb.as_slice(), b"trailing"].concat(), u64::MAX, u64::MAX).unwrap_err();
        assert_eq!(e.code, HcpCode::InvalidArgument);
        let asks = |v: &str| asks_gunzip(&form(&[("Content-Encoding", v)]));
        assert!(asks("gzip") && asks(" GZIP ") && !asks("deflate") && !asks("gzip, br"));
    }
}

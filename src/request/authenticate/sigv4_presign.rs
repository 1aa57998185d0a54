//! SigV4 presigned URLs: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//! `X-Amz-SignedHeaders`, `X-Amz-Signature` in the query.

use std::time::{Duration, SystemTime};

use pingora::http::RequestHeader;

use super::sigv4_header::{parse_credential, verify_claim, Authorization, Claim};
use super::{AuthScheme, Authenticated, Authenticator};
use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::classify::Query;
use crate::sig::v4 as sigv4;

/// The longest validity SigV4 allows (7 days).
const MAX_EXPIRES: u64 = 604_800;

fn invalid(what: &str) -> HcpError {
    HcpError::new(HcpCode::InvalidArgument).with_message(format!("Invalid presigned URL: {what}."))
}

/// A presigned URL's parameters, taken from the query in one pass (the first of a repeated
/// name, as [`Query::get`] answers), by [`Param`].
#[derive(Default)]
struct Presigned<'q> {
    values: [Option<&'q str>; Param::ALL.len()],
}

/// The parameters of a presigned URL.
#[derive(Clone, Copy)]
enum Param {
    Algorithm,
    Credential,
    Date,
    Expires,
    SignedHeaders,
    Signature,
}

impl Param {
    const ALL: [Param; 6] = [
        Param::Algorithm,
        Param::Credential,
        Param::Date,
        Param::Expires,
        Param::SignedHeaders,
        Param::Signature,
    ];

    fn name(self) -> &'static str {
        match self {
            Param::Algorithm => "X-Amz-Algorithm",
            Param::Credential => "X-Amz-Credential",
            Param::Date => "X-Amz-Date",
            Param::Expires => "X-Amz-Expires",
            Param::SignedHeaders => "X-Amz-SignedHeaders",
            Param::Signature => "X-Amz-Signature",
        }
    }

    fn named(name: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl<'q> Presigned<'q> {
    fn of(query: &'q Query) -> Self {
        let mut found = Presigned::default();
        for (name, value) in query.pairs() {
            if let Some(param) = Param::named(name) {
                found.values[param as usize].get_or_insert(value);
            }
        }
        found
    }

    fn get(&self, param: Param) -> Option<&'q str> {
        self.values[param as usize]
    }
}

pub(super) fn verify(
    authn: &Authenticator,
    req: &RequestHeader,
    (query, tenant): (&Query, &str),
    now: SystemTime,
) -> Result<Authenticated, HcpError> {
    let params = Presigned::of(query);
    let get = |param: Param| {
        params
            .get(param)
            .ok_or_else(|| invalid(&format!("{} is missing", param.name())))
    };
    if get(Param::Algorithm)? != sigv4::ALGORITHM {
        return Err(invalid("X-Amz-Algorithm must be AWS4-HMAC-SHA256"));
    }
    let (access_key, date, region, service) = parse_credential(get(Param::Credential)?)
        .ok_or_else(|| invalid("X-Amz-Credential is not AK/yyyymmdd/region/s3/aws4_request"))?;
    let amz_date = get(Param::Date)?;
    let signed_at = (amz_date.len() == 16)
        .then(|| super::parse_request_date(amz_date))
        .flatten()
        .ok_or_else(|| invalid("X-Amz-Date is not yyyymmddThhmmssZ"))?;
    let expires: i64 = get(Param::Expires)?
        .parse()
        .map_err(|_| invalid("X-Amz-Expires must be an integer"))?;
    // A validity of zero or less has expired when it is made, and one beyond SigV4's week is a
    // URL HCP does not honour: both are HCP's "presigned URL no longer valid" (403 AccessDenied),
    // not a malformed query.
    if expires <= 0 {
        return Err(HcpError::new(HcpCode::AccessDenied).with_message("Request has expired."));
    }
    if expires > MAX_EXPIRES as i64 {
        return Err(HcpError::new(HcpCode::AccessDenied)
            .with_message("X-Amz-Expires must be less than a week (604800 seconds)."));
    }
    let expires = expires as u64;
    let signed_headers = get(Param::SignedHeaders)?;
    let signature = get(Param::Signature)?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("X-Amz-Signature is not 64 hex digits"));
    }

    let payload_hash = req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(sigv4::UNSIGNED_PAYLOAD);
    let claim = Claim {
        auth: Authorization {
            access_key,
            date,
            region,
            service,
            signed_headers,
            signature,
        },
        amz_date: amz_date.into(),
        payload_hash,
    };
    // (A header's claim with these is malformed; a query parameter's value here, judged with
    // the other parameters before the key and the dates: 400.)
    if let Some(fault) = super::sigv4_header::claim_fault(&claim) {
        return Err(invalid(fault));
    }
    let user = authn.user(access_key, tenant)?;
    if signed_at + Duration::from_secs(expires) < now {
        return Err(HcpError::new(HcpCode::AccessDenied).with_message("Request has expired."));
    }
    if signed_at > now + authn.clock_skew {
        return Err(HcpError::new(HcpCode::AccessDenied).with_message("Request is not valid yet."));
    }
    let (user, _) = verify_claim(authn, user, req, &claim, &[Param::Signature.name()])?;
    Authenticated::new(
        Authenticator::identity(user, AuthScheme::SigV4Presigned),
        req,
    )
}

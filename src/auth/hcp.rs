//! HCP's own scheme: `Authorization: HCP <Base64 user name>:<MD5 of the password, hex>`.

use subtle::ConstantTimeEq;

use super::{AuthScheme, Authenticated, Authenticator};
use crate::errors::{HcpCode, HcpError};
use pingora::http::RequestHeader;

pub(super) fn verify(
    authn: &Authenticator,
    req: &RequestHeader,
    value: &str,
) -> Result<Authenticated, HcpError> {
    let (access_key, md5) = value
        .strip_prefix("HCP ")
        .and_then(|r| r.split_once(':'))
        .ok_or_else(|| {
            HcpError::new(HcpCode::AccessDenied)
                .with_message("The authorization header is malformed.")
        })?;
    let user = authn.user(access_key.trim())?;
    let expected = user.secret.expose().as_bytes();
    let given = md5.trim().to_ascii_lowercase();
    if given.len() != expected.len() || !bool::from(given.as_bytes().ct_eq(expected)) {
        return Err(HcpError::new(HcpCode::SignatureDoesNotMatch));
    }
    Ok(Authenticated::new(
        Authenticator::identity(user, AuthScheme::Hcp),
        req,
    ))
}

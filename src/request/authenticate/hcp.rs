//! HCP's own scheme: `Authorization: HCP <Base64 user name>:<MD5 of the password, hex>`.

use subtle::ConstantTimeEq;

use super::{AuthScheme, Authenticated, Authenticator};
use crate::hcp::errors::{HcpCode, HcpError};
use pingora::http::RequestHeader;

pub(super) fn verify(
    authn: &Authenticator,
    req: &RequestHeader,
    (value, tenant): (&str, &str),
    now: std::time::SystemTime,
) -> Result<Authenticated, HcpError> {
    let (user, md5) = authn.key_and_proof(value, ("HCP ", tenant))?;
    super::sigv2::dated(authn, req, now)?;
    let expected = user.secret.expose().as_bytes();
    let given = md5.trim().to_ascii_lowercase();
    if given.len() != expected.len() || !bool::from(given.as_bytes().ct_eq(expected)) {
        return Err(HcpError::new(HcpCode::SignatureDoesNotMatch));
    }
    Authenticated::new(Authenticator::identity(user, AuthScheme::Hcp), req)
}

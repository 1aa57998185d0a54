//! Authentication: turns a request's credentials into a verified [`Identity`], or an HCP error.
//!
//! Later phases take an `&Identity`, so nothing can be forwarded for a request that was not
//! authenticated. Secrets live in [`SecretKey`], whose `Debug` never shows them.

pub mod sigv4_header;
mod time_parse;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pingora::http::RequestHeader;

use crate::errors::{HcpCode, HcpError};
use crate::sigv4;

pub use time_parse::{format_amz_date, parse_request_date};

/// A secret key; its `Debug` output is redacted so it cannot reach a log by accident.
#[derive(Clone)]
pub struct SecretKey(Arc<str>);

impl SecretKey {
    pub fn new(s: impl Into<Arc<str>>) -> Self {
        SecretKey(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[derive(Debug)]
pub struct User {
    /// The HCP user name, where the user is HCP-style.
    pub username: Option<String>,
    pub access_key: String,
    pub secret: SecretKey,
    pub enabled: bool,
}

impl User {
    pub fn new(
        username: Option<String>,
        access_key: String,
        secret: String,
        enabled: bool,
    ) -> Self {
        User {
            username,
            access_key,
            secret: SecretKey::new(secret),
            enabled,
        }
    }
}

/// Users by access key.
#[derive(Debug, Default)]
pub struct UserStore {
    by_key: HashMap<String, Arc<User>>,
}

impl UserStore {
    pub fn new(users: Vec<User>) -> Self {
        UserStore {
            by_key: users
                .into_iter()
                .map(|u| (u.access_key.clone(), Arc::new(u)))
                .collect(),
        }
    }
    pub fn get(&self, access_key: &str) -> Option<&Arc<User>> {
        self.by_key.get(access_key)
    }
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// How the client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    SigV4Header,
}

/// A verified caller. Only [`authenticate`] creates one.
#[derive(Debug, Clone)]
pub struct Identity {
    user: Arc<User>,
    scheme: AuthScheme,
}

impl Identity {
    pub fn user(&self) -> &User {
        &self.user
    }
    pub fn scheme(&self) -> AuthScheme {
        self.scheme
    }
    pub fn access_key(&self) -> &str {
        &self.user.access_key
    }
}

/// What the signature says about the body, to be checked while it streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadCheck {
    /// The body's SHA-256 must equal this digest.
    Sha256([u8; 32]),
    /// The client chose not to sign the body.
    Unsigned,
}

/// The outcome of authentication: who, and what remains to verify in the body.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub identity: Identity,
    pub payload: PayloadCheck,
}

/// Settings and caches authentication needs.
pub struct Authenticator {
    users: Arc<UserStore>,
    clock_skew: Duration,
    signing_keys: moka::sync::Cache<String, [u8; 32]>,
}

impl Authenticator {
    pub fn new(users: Arc<UserStore>, clock_skew: Duration) -> Self {
        Authenticator {
            users,
            clock_skew,
            signing_keys: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(24 * 3600))
                .build(),
        }
    }

    /// Verifies the request's credentials against its raw path and query.
    pub fn authenticate(
        &self,
        req: &RequestHeader,
        now: SystemTime,
    ) -> Result<Authenticated, HcpError> {
        let Some(auth) = req.headers.get(http::header::AUTHORIZATION) else {
            return Err(HcpError::new(HcpCode::AccessDenied)
                .with_message("Anonymous access is not allowed; sign the request."));
        };
        let auth = auth.as_bytes();
        if auth.starts_with(sigv4::ALGORITHM.as_bytes()) {
            sigv4_header::verify(self, req, auth, now)
        } else {
            Err(HcpError::new(HcpCode::AccessDenied)
                .with_message("Unsupported authorization scheme."))
        }
    }

    pub(crate) fn user(&self, access_key: &str) -> Result<&Arc<User>, HcpError> {
        let user = self
            .users
            .get(access_key)
            .ok_or_else(|| HcpError::new(HcpCode::InvalidAccessKeyId))?;
        if !user.enabled {
            return Err(
                HcpError::new(HcpCode::AccessDenied).with_message("The user account is disabled.")
            );
        }
        Ok(user)
    }

    pub(crate) fn check_skew(
        &self,
        request_time: SystemTime,
        now: SystemTime,
    ) -> Result<(), HcpError> {
        let skew = match now.duration_since(request_time) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        if skew > self.clock_skew {
            return Err(HcpError::new(HcpCode::RequestTimeTooSkewed));
        }
        Ok(())
    }

    /// The derived signing key, cached by secret, date, region and service.
    pub(crate) fn signing_key(
        &self,
        secret: &SecretKey,
        date: &str,
        region: &str,
        service: &str,
    ) -> [u8; 32] {
        let cache_key = format!("{date}\n{region}\n{service}\n{}", secret.expose());
        self.signing_keys.get_with(cache_key, || {
            sigv4::derive_signing_key(secret.expose(), date, region, service)
        })
    }

    pub(crate) fn identity(user: &Arc<User>, scheme: AuthScheme) -> Identity {
        Identity {
            user: user.clone(),
            scheme,
        }
    }
}

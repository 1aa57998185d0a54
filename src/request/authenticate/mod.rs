//! Authentication: turns a request's credentials into a verified [`Identity`], or an HCP error.
//!
//! Schemes: SigV4 (header and presigned), SigV2 (header and presigned), HCP's own
//! `HCP user:md5` header, and anonymous access (no credentials, `AWS all_users:` or
//! `HCP all_users:`). Later phases take an [`Identity`], which only this module creates, and
//! [`crate::request::authorize`] decides what it may do. Secrets live in [`SecretKey`], whose `Debug` never shows them.

mod hcp;
pub mod post_form;
pub mod sigv2;
pub mod sigv4_header;
mod sigv4_presign;
mod time_parse;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pingora::http::RequestHeader;

use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::address::Target;
use crate::request::classify::Query;
use crate::sig::v4 as sigv4;
use crate::ConfigMap;

pub use crate::request::authorize::{Grant, Permission};
pub use time_parse::{format_amz_date, parse_request_date};

/// A secret key, with the signing keys derived from it lately ([`sigv4::Secret`]); its `Debug`
/// output is redacted so it cannot reach a log by accident.
#[derive(Clone, Debug)]
pub struct SecretKey(Arc<sigv4::Secret>);

impl SecretKey {
    pub fn new(s: impl Into<Box<str>>) -> Self {
        SecretKey(Arc::new(sigv4::Secret::new(s)))
    }
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
    /// The secret with its derived keys, for signing and verifying.
    pub fn derived(&self) -> &sigv4::Secret {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct User {
    /// The HCP user name, where the user is HCP-style.
    pub username: Option<String>,
    pub access_key: String,
    pub secret: SecretKey,
    pub enabled: bool,
    pub grants: Vec<Grant>,
    /// The tenant the user belongs to (`tenant` in the configuration): nowhere else may it act.
    pub tenant: Option<String>,
    /// Where a signature that does not cover the Host (SigV2, HCP's scheme, form policies) is
    /// accepted: the user's tenant, else the one tenant all its grants name, else the only
    /// tenant configured. `None`: such signatures are refused (they could be replayed against
    /// another tenant, as the Host selects the tenant).
    pub home_tenant: Option<String>,
}

impl User {
    pub fn new(
        username: Option<String>,
        access_key: String,
        secret: String,
        enabled: bool,
        grants: Vec<Grant>,
    ) -> Self {
        User {
            username,
            access_key,
            secret: SecretKey::new(secret),
            enabled,
            grants,
            tenant: None,
            home_tenant: None,
        }
    }

    /// The user with `tenant` as its home (where a signature that does not cover the Host is
    /// accepted, and where a test's key is looked up).
    pub fn at_home_in(mut self, tenant: &str) -> Self {
        self.home_tenant = Some(tenant.to_string());
        self
    }
}

/// Users by access key, and as owners and grantees name them: by HCP user id and user name
/// (`request::owners::Owner`).
#[derive(Debug, Default)]
pub struct UserStore {
    by_key: ConfigMap<String, Arc<User>>,
    by_id: ConfigMap<String, Arc<User>>,
    /// Every user of a name (users of different tenants may share one), by access key.
    by_name: ConfigMap<String, Vec<Arc<User>>>,
}

impl UserStore {
    pub fn new(users: Vec<User>) -> Self {
        let by_key: ConfigMap<String, Arc<User>> = users
            .into_iter()
            .map(|u| (u.access_key.clone(), Arc::new(u)))
            .collect();
        let (mut by_id, mut by_name) = (ConfigMap::default(), ConfigMap::default());
        for u in by_key.values() {
            let owner = crate::request::owners::Owner::of(u);
            by_id.insert(owner.id, u.clone());
            by_name
                .entry(owner.name)
                .or_insert_with(Vec::new)
                .push(u.clone());
        }
        for named in by_name.values_mut() {
            named.sort_by(|a, b| a.access_key.cmp(&b.access_key));
        }
        UserStore {
            by_key,
            by_id,
            by_name,
        }
    }
    pub fn get(&self, access_key: &str) -> Option<&Arc<User>> {
        self.by_key.get(access_key)
    }
    /// The user whose HCP user id (`Owner::id`) is `id`.
    pub fn with_id(&self, id: &str) -> Option<&Arc<User>> {
        self.by_id.get(id)
    }
    /// The user whose HCP user name (`Owner::name`: its username, or for a user configured
    /// by key its access key) is `name`.
    pub fn named(&self, name: &str) -> &[Arc<User>] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Arc<User>> {
        self.by_key.values()
    }
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// How the client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    SigV4Header,
    SigV4Presigned,
    SigV2Header,
    SigV2Presigned,
    Hcp,
    /// A browser form's signed policy (POST object).
    PostFormV4,
    PostFormV2,
    /// HCP's `Authorization: AD user:password`, claimed only: no Active Directory is
    /// configured, so it is always refused (and the password never kept).
    ActiveDirectory,
    Anonymous,
}

impl AuthScheme {
    /// Whether the signature covers the Host header, and with it the tenant (SigV4 requires
    /// `host` among the signed headers; SigV2, HCP's scheme and form policies do not sign it).
    pub fn covers_host(self) -> bool {
        matches!(self, AuthScheme::SigV4Header | AuthScheme::SigV4Presigned)
    }

    pub fn name(self) -> &'static str {
        match self {
            AuthScheme::SigV4Header => "sigv4",
            AuthScheme::SigV4Presigned => "sigv4-presigned",
            AuthScheme::SigV2Header => "sigv2",
            AuthScheme::SigV2Presigned => "sigv2-presigned",
            AuthScheme::Hcp => "hcp",
            AuthScheme::PostFormV4 => "sigv4-post-form",
            AuthScheme::PostFormV2 => "sigv2-post-form",
            AuthScheme::ActiveDirectory => "ad",
            AuthScheme::Anonymous => "anonymous",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Principal {
    User(Arc<User>),
    Anonymous,
}

/// A verified caller. Only this module creates one.
#[derive(Debug, Clone)]
pub struct Identity {
    principal: Principal,
    scheme: AuthScheme,
}

#[cfg(test)]
impl Identity {
    /// An identity as a SigV4 header signature would establish it.
    pub fn for_tests(principal: Principal) -> Identity {
        Identity {
            principal,
            scheme: AuthScheme::SigV4Header,
        }
    }
}

impl Identity {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
    pub fn scheme(&self) -> AuthScheme {
        self.scheme
    }
    /// The user, or `None` for anonymous callers.
    pub fn user(&self) -> Option<&Arc<User>> {
        match &self.principal {
            Principal::User(u) => Some(u),
            Principal::Anonymous => None,
        }
    }
    /// The access key, or `None` for anonymous callers.
    pub fn access_key(&self) -> Option<&str> {
        self.user().map(|u| u.access_key.as_str())
    }
}

/// What the client's signature says about the body, to be checked while it streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The body as sent; when a digest was signed, the body's SHA-256 must equal it.
    Plain { sha256: Option<[u8; 32]> },
    /// aws-chunked framing. With a signer every chunk carries a signature chained from the seed
    /// signature; with `trailer` a trailing checksum (and, signed, its signature) follows.
    Chunked {
        signer: Option<Arc<ChunkSigner>>,
        trailer: bool,
    },
}

impl Payload {
    /// A label for metrics and logs.
    pub fn mode(&self) -> &'static str {
        match self {
            Payload::Plain { sha256: Some(_) } => "signed",
            Payload::Plain { sha256: None } => "unsigned",
            Payload::Chunked {
                signer: Some(_),
                trailer: false,
            } => "aws-chunked-signed",
            Payload::Chunked {
                signer: Some(_),
                trailer: true,
            } => "aws-chunked-signed-trailer",
            Payload::Chunked { signer: None, .. } => "aws-chunked-unsigned-trailer",
        }
    }
}

/// What verifying aws-chunked chunk signatures needs.
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkSigner {
    pub key: sigv4::SigningKey,
    pub amz_date: String,
    pub scope: String,
    pub seed_signature: String,
}

impl fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The outcome of authentication: who, and what remains to verify in the body.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub identity: Identity,
    pub payload: Payload,
}

/// `x-amz-content-sha256`, by a name made once (a `&str` is parsed on every lookup).
const CONTENT_SHA256: http::HeaderName = http::HeaderName::from_static("x-amz-content-sha256");

impl Authenticated {
    /// For schemes that do not sign the body: a hex `x-amz-content-sha256` is still checked,
    /// and an aws-chunked body with an unsigned trailer is decoded and its trailing checksum
    /// verified, as under SigV4. A body whose chunks claim signatures no seed signature chains
    /// (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD…` without SigV4's header) is refused: sent as it
    /// came, it would be stored framed and its announced checksum never checked.
    fn new(identity: Identity, req: &RequestHeader) -> Result<Self, HcpError> {
        let claimed = req.headers.get(CONTENT_SHA256).map(|v| v.as_bytes());
        let payload = match claimed {
            Some(b"STREAMING-UNSIGNED-PAYLOAD-TRAILER") => Payload::Chunked {
                signer: None,
                trailer: true,
            },
            Some(v) if v.starts_with(b"STREAMING-") => {
                return Err(HcpError::new(HcpCode::InvalidArgument).with_message(
                    "A streaming payload with chunk signatures needs a SigV4 Authorization \
                     header.",
                ))
            }
            _ => {
                let mut d = [0u8; 32];
                let sha256 = claimed.and_then(|v| hex::decode_to_slice(v, &mut d).ok());
                Payload::Plain {
                    sha256: sha256.map(|_| d),
                }
            }
        };
        Ok(Authenticated { identity, payload })
    }
}

/// The users as currently configured: replaced whole when the configuration is reloaded
/// (SIGHUP), read without locks by every request.
pub type SharedUsers = Arc<arc_swap::ArcSwap<UserStore>>;

impl UserStore {
    /// These users, in the form authentication reads (and reloads replace).
    pub fn shared(self: Arc<Self>) -> SharedUsers {
        Arc::new(arc_swap::ArcSwap::new(self))
    }
}

/// Settings and caches authentication needs.
pub struct Authenticator {
    users: SharedUsers,
    clock_skew: Duration,
    signing_keys: Arc<sigv4::SigningKeyCache>,
    /// Whether its debug lines may show object keys (`server.log_keys = "full"`): a signature
    /// mismatch's canonical request names the key and the metadata values.
    shows_keys: bool,
}

impl Authenticator {
    pub fn new(
        users: SharedUsers,
        clock_skew: Duration,
        signing_keys: Arc<sigv4::SigningKeyCache>,
    ) -> Self {
        Authenticator {
            users,
            clock_skew,
            signing_keys,
            shows_keys: false,
        }
    }

    /// The authenticator whose debug lines show object keys where `log_keys` says so.
    pub fn showing_keys(self, log_keys: crate::config::LogKeys) -> Self {
        Authenticator {
            shows_keys: log_keys == crate::config::LogKeys::Full,
            ..self
        }
    }

    /// Verifies the request's credentials against its raw path and query; a disabled user is
    /// refused only once its signature matched, so that no one without the secret learns which
    /// keys are disabled.
    pub fn authenticate(
        &self,
        req: &RequestHeader,
        target: &Target,
        query: &Query,
        now: SystemTime,
    ) -> Result<Authenticated, HcpError> {
        let authenticated = self.verify(req, target, query, now)?;
        enabled(&authenticated.identity)?;
        Ok(authenticated)
    }

    fn verify(
        &self,
        req: &RequestHeader,
        target: &Target,
        query: &Query,
        now: SystemTime,
    ) -> Result<Authenticated, HcpError> {
        let presigned_v4 = query.has("X-Amz-Algorithm")
            || query.has("X-Amz-Signature")
            || query.has("X-Amz-Credential");
        // (SigV2's names are looked for only where they decide: `Signature` shares its place
        // in the query's name bits with SigV4's `X-Amz-SignedHeaders`, and a presigned SigV4
        // URL would pay a look through its parameters for it.)
        let presigned_v2 = || query.has("AWSAccessKeyId") || query.has("Signature");
        let mut given = req.headers.get_all(http::header::AUTHORIZATION).iter();
        if let Some(value) = given.next() {
            // One set of credentials: a second `Authorization`, or a presigned URL's beside
            // one, would be credentials the gateway did not check that something in front of
            // it, or the backend, might read.
            if given.next().is_some() || presigned_v4 || presigned_v2() {
                return Err(HcpError::new(HcpCode::InvalidArgument).with_message(
                    "Only one auth mechanism allowed: the Authorization header once, or a \
                     presigned URL's query parameters.",
                ));
            }
            let value = value.to_str().map_err(|_| {
                HcpError::new(HcpCode::AccessDenied)
                    .with_message("The authorization header is malformed.")
            })?;
            return match value {
                v if v.starts_with(sigv4::ALGORITHM) => {
                    sigv4_header::verify(self, req, (v.as_bytes(), &target.tenant), now)
                }
                "AWS all_users:" | "HCP all_users:" => Self::anonymous(req),
                v if v.starts_with("AWS ") => sigv2::verify_header(self, req, target, v, now),
                v if v.starts_with("HCP ") => hcp::verify(self, req, (v, &target.tenant), now),
                // HCP without Active Directory refuses AD credentials as it refuses any it
                // cannot verify.
                v if v.starts_with("AD ") => Err(HcpError::new(HcpCode::AccessDenied)
                    .with_message("Active Directory authentication is not available here.")),
                _ => Err(HcpError::new(HcpCode::AccessDenied)
                    .with_message("Unsupported authorization scheme.")),
            };
        }
        if presigned_v4 {
            return sigv4_presign::verify(self, req, (query, &target.tenant), now);
        }
        if presigned_v2() {
            return sigv2::verify_presigned(self, req, target, query, now);
        }
        Self::anonymous(req)
    }

    /// The scheme and access key a request claims, for the access log when it is refused: the
    /// key as the client wrote it (the log quotes it), at most 128 characters, and only where
    /// the scheme's syntax puts a key (never the proof after it).
    pub fn attempted(req: &RequestHeader, query: &Query) -> (AuthScheme, Option<String>) {
        let cut = |key: &str| key.trim().chars().take(128).collect::<String>();
        let key_before = |s: &str, end: char| s.split_once(end).map(|(k, _)| cut(k));
        // (A SigV4 credential's key is what precedes its four-part scope — as the signature's
        // reader splits it: a key may hold a `/`.)
        let scoped_key = |c: &str| {
            let parts: Vec<&str> = c.rsplitn(5, '/').collect();
            (parts.len() == 5).then(|| cut(parts[4]))
        };
        if let Some(v) = req.headers.get(http::header::AUTHORIZATION) {
            let v = String::from_utf8_lossy(v.as_bytes());
            return if let Some(rest) = v.strip_prefix(sigv4::ALGORITHM) {
                // (The key ends at its scope's `/`, or at the `,` after a malformed credential:
                // what follows is the signed headers and the proof.)
                let credential = rest.split_once("Credential=").map(|(_, c)| c);
                let credential = credential.map(|c| c.split(',').next().unwrap_or(c));
                (AuthScheme::SigV4Header, credential.and_then(scoped_key))
            } else if let Some(rest) = v.strip_prefix("AWS ") {
                (AuthScheme::SigV2Header, key_before(rest, ':'))
            } else if let Some(rest) = v.strip_prefix("HCP ") {
                (AuthScheme::Hcp, key_before(rest, ':'))
            } else if let Some(rest) = v.strip_prefix("AD ") {
                // The user name only: the password follows the colon.
                (AuthScheme::ActiveDirectory, key_before(rest, ':'))
            } else {
                (AuthScheme::Anonymous, None)
            };
        }
        if query.has("X-Amz-Algorithm")
            || query.has("X-Amz-Signature")
            || query.has("X-Amz-Credential")
        {
            let credential = query.get("X-Amz-Credential").unwrap_or_default();
            return (AuthScheme::SigV4Presigned, scoped_key(credential));
        }
        if query.has("AWSAccessKeyId") || query.has("Signature") {
            return (
                AuthScheme::SigV2Presigned,
                query.get("AWSAccessKeyId").map(cut),
            );
        }
        (AuthScheme::Anonymous, None)
    }

    /// A browser's CORS preflight: never signature-checked (a presigned URL's signature belongs
    /// to the request the preflight precedes) and carrying no body; the bucket's CORS
    /// configuration answers it.
    pub fn preflight(&self) -> Authenticated {
        Authenticated {
            identity: Identity {
                principal: Principal::Anonymous,
                scheme: AuthScheme::Anonymous,
            },
            payload: Payload::Plain { sha256: None },
        }
    }

    fn anonymous(req: &RequestHeader) -> Result<Authenticated, HcpError> {
        Authenticated::new(
            Identity {
                principal: Principal::Anonymous,
                scheme: AuthScheme::Anonymous,
            },
            req,
        )
    }

    /// The key's user in `tenant`, enabled or not (`enabled` is asked once the signature
    /// matched). A user is no user of a tenant it does not belong to (manual: "Each tenant
    /// also has its own set of user accounts"; `authorize::belongs_to`: configured there, at
    /// home there, or granted something there): there its key is unknown, as any unknown key —
    /// the same answer, at the same point, whatever the rest of the request.
    pub(crate) fn user(&self, access_key: &str, tenant: &str) -> Result<Arc<User>, HcpError> {
        self.users
            .load()
            .get(access_key)
            .filter(|u| crate::request::authorize::belongs_to(u, tenant))
            .cloned()
            .ok_or_else(|| HcpError::new(HcpCode::InvalidAccessKeyId))
    }

    /// Splits `SCHEME key:proof` (SigV2 and HCP headers) and looks the key's user up.
    pub(crate) fn key_and_proof<'v>(
        &self,
        value: &'v str,
        (scheme, tenant): (&str, &str),
    ) -> Result<(Arc<User>, &'v str), HcpError> {
        let (access_key, proof) = value
            .strip_prefix(scheme)
            .and_then(|r| r.split_once(':'))
            .ok_or_else(|| {
                HcpError::new(HcpCode::AccessDenied)
                    .with_message("The authorization header is malformed.")
            })?;
        Ok((self.user(access_key.trim(), tenant)?, proof))
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

    /// The signing key to check a signature by `secret` for this scope: the one kept beside
    /// the secret, else derived now. Kept only by [`Self::signature_matched`].
    pub(crate) fn signing_key(
        &self,
        secret: &SecretKey,
        date: &str,
        region: &str,
        service: &str,
    ) -> sigv4::SigningKey {
        self.signing_keys
            .to_verify(secret.derived(), date, region, service)
    }

    /// A signature made with `key` matched: the key is kept beside the secret for the next
    /// request of this scope.
    pub(crate) fn signature_matched(
        &self,
        secret: &SecretKey,
        (date, region, service): (&str, &str, &str),
        key: &sigv4::SigningKey,
    ) {
        secret.derived().keep(date, region, service, key);
    }

    pub(crate) fn identity(user: Arc<User>, scheme: AuthScheme) -> Identity {
        Identity {
            principal: Principal::User(user),
            scheme,
        }
    }
}

/// A verified identity's user may act: refused if disabled.
pub(crate) fn enabled(identity: &Identity) -> Result<(), HcpError> {
    match &identity.principal {
        Principal::User(u) if !u.enabled => {
            Err(HcpError::new(HcpCode::AccessDenied).with_message("The user account is disabled."))
        }
        _ => Ok(()),
    }
}

/// A header the gateway turns into an effect at the backend, which a signature must therefore
/// cover: every `x-amz-*` header (the gateway signs each one it forwards with the backend's key)
/// but `x-amz-content-sha256` (the canonical request's last line, covered anyway), and every
/// `x-hcp-*` header but `x-hcp-pretty-print` and `x-hcp-cookiecompatibility` (HCP's retention,
/// holds and privileged deletes become Object Lock headers; pretty-printing only indents the
/// gateway's own answer, and the session cookie whose encoding the other names is one the
/// gateway never sets). One
/// added to a presigned URL would otherwise act with the signer's authority. (A SigV2 header
/// signature and HCP's own schemes cannot cover `x-hcp-*` headers — HCP's manual sends them
/// unsigned so —; those requests take them from the holder of the secret, and TLS is what
/// keeps them from being added in transit: docs/security.md.)
pub(crate) fn needs_signature(name: &str) -> bool {
    (name.starts_with("x-amz-") && name != "x-amz-content-sha256")
        || (name.starts_with("x-hcp-")
            && !matches!(name, "x-hcp-pretty-print" | "x-hcp-cookiecompatibility"))
        // (HCP's response overrides as headers change the answer: as S3 signs them as
        // parameters.)
        || name.starts_with("response-")
}

/// The first header of `req` that [`needs_signature`] and `signed` does not cover — or a
/// `Content-Type: x-directory` it does not (HCP's folder request: a presigned URL's PUT of an
/// object would otherwise write a folder under a name the signer never gave).
pub(crate) fn unsigned_effect_header(
    req: &RequestHeader,
    signed: impl Fn(&str) -> bool,
) -> Option<&str> {
    req.headers
        .iter()
        .map(|(name, value)| (name.as_str(), value))
        .find(|&(name, value)| {
            let effect = needs_signature(name)
                || (name == "content-type" && crate::request::folders::is_x_directory(value));
            effect && !signed(name)
        })
        .map(|(name, _)| name)
}

/// HCP's answer to a request carrying a header its signature does not cover (S3's words).
pub(crate) fn unsigned_header_refused(name: &str) -> HcpError {
    HcpError::new(HcpCode::AccessDenied).with_message(format!(
        "There were headers present in the request which were not signed: {name}."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_with_an_effect_needs_a_signature() {
        for name in [
            "x-amz-acl",
            "x-amz-meta-a",
            "x-amz-bypass-governance-retention",
            "x-hcp-retention",
            "x-hcp-retentionhold",
            "x-hcp-labelretentionhold",
            "x-hcp-labelretentionhold-labels",
            "x-hcp-privileged",
            "x-hcp-some-future-header",
        ] {
            assert!(needs_signature(name), "{name}");
        }
        for name in [
            "x-amz-content-sha256",
            "x-hcp-pretty-print",
            "x-hcp-cookiecompatibility",
            "content-type",
            "host",
        ] {
            assert!(!needs_signature(name), "{name}");
        }
        let mut req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
        req.insert_header("x-hcp-pretty-print", "true").unwrap();
        req.insert_header("x-amz-meta-a", "1").unwrap();
        req.insert_header("x-hcp-retention", "A+1d").unwrap();
        let signed = |n: &str| n == "x-amz-meta-a";
        assert_eq!(
            unsigned_effect_header(&req, signed),
            Some("x-hcp-retention")
        );
        let all = |n: &str| n.starts_with("x-");
        assert_eq!(unsigned_effect_header(&req, all), None);
        // (A folder's Content-Type is an effect; an object's is not.)
        req.insert_header("content-type", "text/plain").unwrap();
        assert_eq!(unsigned_effect_header(&req, all), None);
        req.insert_header("content-type", " X-Directory").unwrap();
        assert_eq!(unsigned_effect_header(&req, all), Some("content-type"));
        let typed = |n: &str| all(n) || n == "content-type";
        assert_eq!(unsigned_effect_header(&req, typed), None);
    }

    fn claimed(authorization: Option<&str>, query: &str) -> (&'static str, Option<String>) {
        let mut req = RequestHeader::build("GET", b"/b/k", None).unwrap();
        if let Some(v) = authorization {
            req.insert_header("authorization", v).unwrap();
        }
        let (scheme, key) = Authenticator::attempted(&req, &Query::parse(query.as_bytes()));
        (scheme.name(), key)
    }

    #[test]
    fn a_refused_request_s_claimed_key_is_the_key_never_the_proof() {
        let key = |k: &str| Some(k.to_string());
        let v4 = "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(claimed(Some(v4), ""), ("sigv4", key("AKID")));
        // (A credential without its scope: the key, never the signature after the comma.)
        let unscoped = "AWS4-HMAC-SHA256 Credential=AKID, SignedHeaders=host, Signature=abc/x";
        assert_eq!(claimed(Some(unscoped), ""), ("sigv4", None));
        // (A key may hold a `/`: Base64 of a user name.)
        let slashed = "AWS4-HMAC-SHA256 Credential=Pz8//20261130/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(claimed(Some(slashed), ""), ("sigv4", key("Pz8/")));
        assert_eq!(
            claimed(
                None,
                "X-Amz-Credential=Pz8%2F%2F20261130%2Fus-east-1%2Fs3%2Faws4_request"
            ),
            ("sigv4-presigned", key("Pz8/"))
        );
        assert_eq!(
            claimed(Some("AWS AKID:c2lnbmF0dXJl"), ""),
            ("sigv2", key("AKID"))
        );
        assert_eq!(
            claimed(Some("HCP dXNlcg==:5f4dcc3b5aa765d61d8327deb882cf99"), ""),
            ("hcp", key("dXNlcg=="))
        );
        // Without the separator there is no key to tell from the proof: none is logged.
        assert_eq!(
            claimed(Some("HCP 5f4dcc3b5aa765d61d8327deb882cf99"), ""),
            ("hcp", None)
        );
        assert_eq!(claimed(Some("AWS c2lnbmF0dXJl"), ""), ("sigv2", None));
        // HCP's AD scheme: the user, never the password after the colon.
        assert_eq!(
            claimed(Some("AD lgreen@example.com:p4sswOrd"), ""),
            ("ad", key("lgreen@example.com"))
        );
        assert_eq!(claimed(Some("AD p4sswOrd"), ""), ("ad", None));
        assert_eq!(
            claimed(None, "X-Amz-Credential=AKID%2F20261130%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=x"),
            ("sigv4-presigned", key("AKID"))
        );
        assert_eq!(
            claimed(None, "X-Amz-Signature=x"),
            ("sigv4-presigned", None)
        );
        assert_eq!(
            claimed(None, "AWSAccessKeyId=AKID&Signature=x"),
            ("sigv2-presigned", key("AKID"))
        );
        let long = format!("AWS {}:sig", "A".repeat(300));
        assert_eq!(
            claimed(Some(&long), "").1.map(|k| k.chars().count()),
            Some(128)
        );
        assert_eq!(claimed(None, ""), ("anonymous", None));
    }
}

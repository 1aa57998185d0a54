//! The credentials the gateway signs backend requests with: static keys from the
//! configuration (with an optional security token, as OBS's temporary credentials have), or the
//! standard AWS chain through `aws-config` — environment, shared profile, web identity (IRSA),
//! EKS Pod Identity and ECS container credentials, IMDSv2 — refreshed before they expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::request::authenticate::SecretKey;

/// Credentials are fetched again when they have less than this left.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// One set of keys to sign with.
#[derive(Debug)]
pub struct SigningCredentials {
    pub access_key: String,
    pub secret: SecretKey,
    /// Sent as `x-amz-security-token` (`x-obs-security-token` toward OBS).
    pub token: Option<SecretKey>,
    pub expires: Option<SystemTime>,
}

/// Where a backend's credentials come from.
pub enum BackendCredentials {
    Static(Arc<SigningCredentials>),
    Chain(Chain),
}

/// The AWS credential chain, with the last credentials it gave.
pub struct Chain {
    provider: SharedCredentialsProvider,
    current: ArcSwapOption<SigningCredentials>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for BackendCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendCredentials::Static(c) => write!(f, "Static({})", c.access_key),
            BackendCredentials::Chain(_) => f.write_str("Chain"),
        }
    }
}

impl BackendCredentials {
    pub fn fixed(access_key: String, secret: SecretKey, token: Option<SecretKey>) -> Self {
        BackendCredentials::Static(Arc::new(SigningCredentials {
            access_key,
            secret,
            token,
            expires: None,
        }))
    }

    /// The default AWS chain for `region`, as the AWS SDKs resolve it.
    pub async fn aws_chain(region: &str) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .load()
            .await;
        let provider = config
            .credentials_provider()
            .expect("the default chain has a provider");
        BackendCredentials::Chain(Chain {
            provider,
            current: ArcSwapOption::empty(),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The credentials to sign with now: static ones, or the chain's, fetched again when they
    /// are missing or close to expiry (one fetch at a time).
    pub async fn current(&self) -> Result<Arc<SigningCredentials>, String> {
        let chain = match self {
            BackendCredentials::Static(c) => return Ok(c.clone()),
            BackendCredentials::Chain(chain) => chain,
        };
        if let Some(c) = chain.fresh() {
            return Ok(c);
        }
        let _one_at_a_time = chain.refreshing.lock().await;
        if let Some(c) = chain.fresh() {
            return Ok(c);
        }
        let fetched = chain
            .provider
            .provide_credentials()
            .await
            .map_err(|e| format!("the AWS credential chain gave no credentials: {e}"))?;
        let credentials = Arc::new(SigningCredentials {
            access_key: fetched.access_key_id().to_string(),
            secret: SecretKey::new(fetched.secret_access_key()),
            token: fetched.session_token().map(SecretKey::new),
            expires: fetched.expiry(),
        });
        tracing::info!(access_key = %credentials.access_key, expires = ?credentials.expires, "backend credentials from the AWS chain");
        chain.current.store(Some(credentials.clone()));
        Ok(credentials)
    }

    /// Static credentials, for what runs before any request (the local backend's keys).
    pub fn fixed_now(&self) -> Option<Arc<SigningCredentials>> {
        match self {
            BackendCredentials::Static(c) => Some(c.clone()),
            BackendCredentials::Chain(_) => None,
        }
    }
}

impl Chain {
    fn fresh(&self) -> Option<Arc<SigningCredentials>> {
        let c = self.current.load_full()?;
        let usable = c.expires.is_none_or(|at| {
            at.duration_since(SystemTime::now())
                .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY)
        });
        usable.then_some(c)
    }
}

//! The credentials the gateway signs backend requests with: static keys from the
//! configuration (with an optional security token, as OBS's temporary credentials have), or the
//! standard AWS chain through `aws-config` — environment, shared profile, web identity (IRSA),
//! EKS Pod Identity and ECS container credentials, IMDSv2 — refreshed before they expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::request::authenticate::SecretKey;

/// Credentials are fetched again when they have less than this left.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Credentials this close to their expiry are not signed with (a request signed now must still
/// be valid when the backend reads it).
const LAST_USE_BEFORE_EXPIRY: Duration = Duration::from_secs(10);

/// After a failed refresh, the credentials still held are used without asking the chain again
/// for this long: a failing chain (STS, the instance metadata) is asked once per period, not
/// once per request, each waiting for its timeout in turn.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

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
    /// Keys from the configuration, replaced by a reload that finds them rotated
    /// ([`BackendCredentials::rotate`]).
    Static(ArcSwap<SigningCredentials>),
    Chain(Chain),
}

/// The AWS credential chain, with the last credentials it gave.
pub struct Chain {
    provider: SharedCredentialsProvider,
    current: ArcSwapOption<SigningCredentials>,
    /// One refresh at a time; when the last one failed, and why.
    refreshing: tokio::sync::Mutex<Option<(std::time::Instant, String)>>,
}

impl std::fmt::Debug for BackendCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendCredentials::Static(c) => write!(f, "Static({})", c.load().access_key),
            BackendCredentials::Chain(_) => f.write_str("Chain"),
        }
    }
}

impl BackendCredentials {
    pub fn fixed(access_key: String, secret: SecretKey, token: Option<SecretKey>) -> Self {
        BackendCredentials::Static(ArcSwap::from_pointee(SigningCredentials {
            access_key,
            secret,
            token,
            expires: None,
        }))
    }

    /// Puts rotated static keys in place (a reload of a Secret's files): requests that resolved
    /// their credentials before keep signing with those. Whether the keys held changed; the
    /// chain's credentials are never replaced.
    pub fn rotate(&self, access_key: &str, secret: &SecretKey, token: Option<&SecretKey>) -> bool {
        let BackendCredentials::Static(held) = self else {
            return false;
        };
        let now = held.load();
        let same = |a: Option<&SecretKey>, b: Option<&SecretKey>| match (a, b) {
            (Some(a), Some(b)) => a.expose() == b.expose(),
            (a, b) => a.is_none() && b.is_none(),
        };
        if now.access_key == access_key
            && same(Some(&now.secret), Some(secret))
            && same(now.token.as_ref(), token)
        {
            return false;
        }
        held.store(Arc::new(SigningCredentials {
            access_key: access_key.to_string(),
            secret: secret.clone(),
            token: token.cloned(),
            expires: None,
        }));
        true
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
            refreshing: tokio::sync::Mutex::new(None),
        })
    }

    /// The credentials to sign with now: static ones, or the chain's, fetched again when they
    /// are missing or close to expiry (one fetch at a time). Where the fetch fails, those still
    /// held serve until they expire (the chain asked again once per `RETRY_AFTER_FAILURE`).
    pub async fn current(&self) -> Result<Arc<SigningCredentials>, String> {
        let chain = match self {
            BackendCredentials::Static(c) => return Ok(c.load_full()),
            BackendCredentials::Chain(chain) => chain,
        };
        if let Some(c) = chain.fresh() {
            return Ok(c);
        }
        // (While a refresh is under way, the keys held serve: no request waits for it.)
        let mut failed = match (chain.refreshing.try_lock(), chain.held()) {
            (Ok(turn), _) => turn,
            (Err(_), Some(held)) => return Ok(held),
            (Err(_), None) => chain.refreshing.lock().await,
        };
        if let Some(c) = chain.fresh() {
            return Ok(c);
        }
        let held = chain.held();
        // (Failed a moment ago: the chain is not asked again yet, with keys held or without.)
        if let Some((at, cause)) = failed.as_ref() {
            if at.elapsed() < RETRY_AFTER_FAILURE {
                return held.ok_or_else(|| cause.clone());
            }
        }
        let fetched = match chain.provider.provide_credentials().await {
            Ok(fetched) => fetched,
            Err(e) => {
                let cause = format!("the AWS credential chain gave no credentials: {e}");
                *failed = Some((std::time::Instant::now(), cause.clone()));
                let c = held.ok_or(cause.clone())?;
                tracing::warn!(access_key = %c.access_key, expires = ?c.expires, %cause,
                    "backend credentials not refreshed; signing with those held until they expire");
                return Ok(c);
            }
        };
        *failed = None;
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
            BackendCredentials::Static(c) => Some(c.load_full()),
            BackendCredentials::Chain(_) => None,
        }
    }
}

impl Chain {
    /// The credentials held, while they may still be signed with.
    fn held(&self) -> Option<Arc<SigningCredentials>> {
        let c = self.current.load_full()?;
        let usable = c.expires.is_none_or(|at| {
            at.duration_since(SystemTime::now())
                .is_ok_and(|left| left > LAST_USE_BEFORE_EXPIRY)
        });
        usable.then_some(c)
    }

    fn fresh(&self) -> Option<Arc<SigningCredentials>> {
        let c = self.current.load_full()?;
        let usable = c.expires.is_none_or(|at| {
            at.duration_since(SystemTime::now())
                .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY)
        });
        usable.then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::{error::CredentialsError, future};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A chain that gives keys expiring in `left` (where it gives any: `left` is `None` for one
    /// that never does), then fails; counting its calls.
    #[derive(Debug)]
    struct Flaky {
        calls: Arc<AtomicUsize>,
        left: Option<Duration>,
    }

    impl ProvideCredentials for Flaky {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
            future::ProvideCredentials::ready(if let Some(left) = self.left.filter(|_| first) {
                let expiry = SystemTime::now() + left;
                Ok(aws_credential_types::Credentials::new(
                    "AKID",
                    "secret",
                    None,
                    Some(expiry),
                    "flaky",
                ))
            } else {
                Err(CredentialsError::provider_error("the chain is down"))
            })
        }
    }

    fn flaky(left: Option<Duration>) -> (BackendCredentials, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(Flaky {
            calls: calls.clone(),
            left,
        });
        let chain = Chain {
            provider,
            current: ArcSwapOption::empty(),
            refreshing: tokio::sync::Mutex::new(None),
        };
        (BackendCredentials::Chain(chain), calls)
    }

    /// A refresh that fails while the keys held are still valid signs with them (before,
    /// every request was refused 503 from five minutes before they expired), and the chain is
    /// asked again once per period, not once per request.
    #[tokio::test]
    async fn a_failed_refresh_keeps_the_keys_held_until_they_expire() {
        let (credentials, calls) = flaky(Some(Duration::from_secs(4 * 60)));
        let first = credentials.current().await.unwrap();
        assert_eq!(first.access_key, "AKID");
        for _ in 0..5 {
            let again = credentials.current().await.unwrap();
            assert_eq!(again.access_key, "AKID");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "asked once after it failed"
        );
        // Keys about to expire are not signed with: the failure is the answer.
        let (credentials, _) = flaky(Some(Duration::from_secs(5)));
        assert!(credentials.current().await.is_ok());
        assert!(credentials.current().await.is_err());
        // With none held, a failure is the answer for a while too, without asking again.
        let (credentials, calls) = flaky(None);
        for _ in 0..5 {
            let e = credentials.current().await.unwrap_err();
            assert!(e.contains("gave no credentials"), "{e}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "asked once");
    }

    /// A chain that gives keys expiring in four minutes, then takes a second for each answer.
    #[derive(Debug)]
    struct Slow(Arc<AtomicUsize>);

    impl ProvideCredentials for Slow {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let first = self.0.fetch_add(1, Ordering::SeqCst) == 0;
            future::ProvideCredentials::new(async move {
                if !first {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let expiry = SystemTime::now() + Duration::from_secs(4 * 60);
                Ok(aws_credential_types::Credentials::new(
                    "AKID",
                    "secret",
                    None,
                    Some(expiry),
                    "slow",
                ))
            })
        }
    }

    /// While one request refreshes the keys, the others sign with those held: none waits.
    #[tokio::test]
    async fn a_refresh_under_way_keeps_no_request_waiting() {
        let calls = Arc::new(AtomicUsize::new(0));
        let chain = Arc::new(BackendCredentials::Chain(Chain {
            provider: SharedCredentialsProvider::new(Slow(calls.clone())),
            current: ArcSwapOption::empty(),
            refreshing: tokio::sync::Mutex::new(None),
        }));
        chain.current().await.unwrap();
        let refreshing = tokio::spawn({
            let chain = chain.clone();
            async move { chain.current().await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        assert_eq!(chain.current().await.unwrap().access_key, "AKID");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "waited for the refresh"
        );
        refreshing.await.unwrap().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}

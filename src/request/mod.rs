//! The request path, one module per phase; the table of contents is [`Gateway::serve`], and
//! `docs/architecture.md` draws the same flow with its failure edges.
//!
//! | phase | module | hands on |
//! |---|---|---|
//! | admit | [`admit`] (and the connection loop here) | a request within the limits |
//! | 1 address | [`address`] | [`address::Target`]: tenant, bucket, key |
//! | 2 classify | [`classify`] | [`classify::Operation`] and its [`classify::Params`] |
//! | 3 authenticate, authorise | [`authenticate`], [`authorize`] | [`authenticate::Identity`], allowed |
//! | 4 validate | [`validate`] (head rules, [`validate::acl`], [`validate::uploads`]) | a valid request |
//! | 5 route | [`route`] | [`route::Route`]: backend and backend bucket |
//! | 6 sign | [`sign`] | the backend request, built from the above only |
//! | 7 forward | [`forward`] (checks that need the backend: [`validate::probes`]; bodies: [`body`], the memory they hold: [`held`]; HCP's retention change by copy onto itself: [`retain`]) | the backend's answer |
//! | 8 respond | [`respond`] (rewrite, settle, complete, long complete) | HCP's answer |
//!
//! Phases 1–5 run in [`plan`]; form uploads take [`post_object`] through the same phases;
//! [`exchange`] is the access-log record.
use crate::backend::upstream::{self, BodyError, Forwarder, Upstream};
use crate::config::Config;
use crate::hcp::errors::{HcpCode, HcpError};
use crate::observe::metrics::Metrics;
use crate::server::head_budget;
use crate::sig::v4 as sigv4;
use crate::ConfigMap;
use address::Target;
use async_trait::async_trait;
use authenticate::{Authenticated, Authenticator, Identity, Payload, Principal, SharedUsers};
use body::BodyVerifier;
use bytes::Bytes;
use classify::{Operation, Params, Query};
use pingora::apps::{HttpPersistentSettings, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use respond::{complete, rewrite};
use route::{BackendRuntime, Route};
use sign::BodyFraming;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use validate::acl;
use validate::uploads::{self, UploadIds};

pub mod acls;
pub mod address;
pub mod admit;
pub mod authenticate;
pub mod authorize;
pub mod body;
pub mod classify;
mod cors;
mod exchange;
mod folders;
mod forward;
pub mod held;
pub mod object_owners;
pub mod owners;
mod plan;
pub mod post_object;
mod records;
pub mod respond;
pub mod retain;
pub mod route;
pub mod sign;
pub mod validate;
mod versioning;

pub use exchange::RequestId;
use exchange::{Exchange, NamedKey, Reply};
use forward::Call;
use respond::settle::name_exists;
use validate::probes::Overwrite;

pub struct Gateway {
    pub cfg: Arc<Config>,
    authn: Authenticator,
    /// Signing keys for clients and backends alike.
    signing_keys: Arc<sigv4::SigningKeyCache>,
    /// Heads of copy sources, briefly, so that a series of part copies HEADs its source once.
    source_heads: moka::sync::Cache<String, Arc<ResponseHeader>>,
    /// When a source's HEAD was last kept (seconds since the epoch; 0: never): a write forgets
    /// none where none can still be kept.
    source_heads_kept: std::sync::atomic::AtomicU64,
    /// Multipart upload ids bound to their initiators.
    upload_ids: UploadIds,
    /// Each backend account's canonical id, once read (ACL documents name the tenant instead).
    backend_owners: moka::sync::Cache<String, String>,
    /// One change of a bucket's owner at a time (`request::owners`).
    owner_turns: owners::Turns,
    /// Buckets' owners read from the tenants' records (`request::owners`), briefly.
    bucket_owners: moka::sync::Cache<String, Option<owners::Owner>>,
    /// Listed objects' owners (`request::object_owners`), briefly.
    listed_owners: object_owners::ListedOwners,
    /// ACLs read for requests the permissions do not allow (`request::acls`), briefly.
    acls: moka::sync::Cache<String, Arc<acls::Acl>>,
    /// ACL changes through this replica so far: a reading made across one is not cached.
    acl_changes: std::sync::atomic::AtomicU64,
    /// Backend buckets seen to keep S3 Object Lock (which is never turned off again).
    locked_buckets: moka::sync::Cache<String, ()>,
    /// Backend buckets seen without S3 Object Lock, briefly (`Probe::may_keep_locks`).
    unlocked_buckets: moka::sync::Cache<String, ()>,
    /// Buckets' CORS rules, briefly (`cors`).
    cors_rules: cors::RulesRead,
    /// Whether backend buckets keep versions, briefly (HCP's no-overwrite rule asks on every
    /// write; a versioning change through this gateway forgets its bucket at once).
    versioned_buckets: validate::probes::VersioningCache,
    /// Folders known to exist at the backends (`folders`).
    known_folders: folders::KnownFolders,
    /// One hold change at a time per object, in this process (`request::retain`).
    hold_changes: owners::Turns,
    /// One ACL change at a time per record of grants, in this process (`request::acls`).
    acl_turns: owners::Turns,
    /// The users, replaced whole on reload; `cfg.users` is what the process started with.
    users: SharedUsers,
    /// Backend reachability, probed and from the requests' outcomes (`/readyz`).
    pub health: Arc<crate::backend::health::BackendHealth>,
    backends: ConfigMap<String, BackendRuntime>,
    forwarder: Forwarder,
    pub metrics: Arc<Metrics>,
    /// Requests in flight against `max_concurrent_requests` (overall and per client).
    admission: crate::request::admit::Admission,
    /// Form uploads reading their fields, before anyone is known: at most an eighth of
    /// `max_concurrent_requests` at once, and at least 4 (`post_object`).
    form_readers: tokio::sync::Semaphore,
    /// The bytes all requests may hold in memory at once (`server.max_held_bytes`).
    held: Arc<held::HeldBytes>,
    /// The bytes header sections past their first few KiB may hold besides (a quarter of
    /// `server.max_held_bytes`, `server::head_budget`): apart, as they are held before
    /// anything is authenticated — heads that never end take none of what authorised requests
    /// need.
    heads: Arc<held::HeldBytes>,
    /// Set when the process begins to stop (before the shutdown delay): `/readyz` answers
    /// 503 and every answer from then on closes its connection, so that clients reconnect to
    /// another replica rather than meet a connection closed under their next request.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
    /// Completes and copies the backend may still be carrying out, whose object the gateway
    /// has yet to finish (retention, holds, folders, owner): a stop waits for them.
    pub underway: Arc<crate::in_flight::InFlight>,
}

/// How the connection continues after an answer.
enum Flow {
    /// The exchange completed; the connection may serve the next request.
    KeepAlive,
    /// The answer is complete but the connection must close (unread request body).
    Close,
    /// The answer could not be completed; the client must see a broken connection, never a
    /// truncated body that looks whole.
    Abort,
    /// An early answer is out, the request's body unread: it is read and discarded (so that a
    /// client writing its whole body before reading sees the answer) after the request's
    /// concurrency place is given back, within `DRAIN_TIME`, else the connection closes.
    Drain,
}

/// What the phases before forwarding decided: a request ready to sign and forward, or a form
/// upload, whose credentials and object are in its body. (One lives on the stack per request:
/// boxing the larger variant would cost an allocation per request instead.)
#[allow(clippy::large_enum_variant)]
enum Planned<'a> {
    Request(Plan<'a>),
    Form {
        target: Target,
        route: Route<'a>,
    },
    /// A browser's request refused once its user was authenticated: answered with the CORS
    /// headers the bucket's rules give it.
    Refused {
        error: HcpError,
        target: Target,
    },
}

/// Everything the phases before forwarding decided.
struct Plan<'a> {
    target: Target,
    op: Operation,
    /// The operation's own query parameters (upload ids already the backend's).
    params: Params,
    /// The upload id as the client gave it.
    client_upload_id: Option<String>,
    /// The refusal of the upload the request names (no such upload, not the caller's), where
    /// an ACL may yet allow the request: answered once it does — nothing is sent.
    upload_refused: Option<Box<HcpError>>,
    /// Whether the caller may delete versions for good (the purge permission).
    may_purge: bool,
    /// Whether the caller may read labeled holds (a GET or HEAD by a privileged reader).
    sees_labels: bool,
    /// The permissions the caller's do not hold, for an ACL or the bucket's ownership to
    /// grant before anything is sent (`request::acls`); empty: the permissions allow it.
    acl_needed: acls::Needed,
    auth: Authenticated,
    route: Route<'a>,
    /// Whether it is a browser's (an `Origin`): its answer carries the CORS headers the
    /// bucket's rules give it (`cors`).
    browser: bool,
}

/// A cache of at most `entries`, each kept for `ttl`.
fn kept_for<V: Clone + Send + Sync + 'static>(
    entries: u64,
    ttl: std::time::Duration,
) -> moka::sync::Cache<String, V> {
    moka::sync::Cache::builder()
        .max_capacity(entries)
        .time_to_live(ttl)
        .build()
}

/// How long a copy source's HEAD is kept (`Gateway::source_heads`).
pub(crate) const SOURCE_HEAD_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl Gateway {
    /// `binding`: the key that binds upload ids (`cfg.upload_binding`'s, made at start).
    pub fn new(
        cfg: Arc<Config>,
        mut backends: ConfigMap<String, BackendRuntime>,
        metrics: Arc<Metrics>,
        binding: &crate::request::authenticate::SecretKey,
    ) -> Gateway {
        for backend in backends.values_mut() {
            backend.counters = metrics.backend_counters(&backend.name);
        }
        let signing_keys = Arc::new(sigv4::SigningKeyCache::counted(&metrics.cache_lookups));
        let users = cfg.users.clone().shared();
        let authn = Authenticator::new(users.clone(), cfg.clock_skew, signing_keys.clone())
            .showing_keys(cfg.log_keys);
        let upload_ids = UploadIds::new(binding.expose().as_bytes());
        let health = Arc::new(crate::backend::health::BackendHealth::new(
            backends.values().map(|b| b.reach.clone()),
            metrics.clone(),
        ));
        Gateway {
            authn,
            signing_keys,
            // (Caches keyed by names clients choose — up to 4 KiB each — are weighed in bytes:
            // a count alone would let long names take hundreds of MiB.)
            source_heads: moka::sync::Cache::builder()
                .max_capacity(16 * 1024 * 1024)
                .weigher(|k: &String, head: &Arc<ResponseHeader>| {
                    let fields: usize = head
                        .headers
                        .iter()
                        .map(|(n, v)| n.as_str().len() + v.len() + 32)
                        .sum();
                    weight_of(k.len() + fields + 128)
                })
                .time_to_live(SOURCE_HEAD_TTL)
                .build(),
            source_heads_kept: std::sync::atomic::AtomicU64::new(0),
            upload_ids,
            backend_owners: kept_for(1_000, std::time::Duration::from_secs(600)),
            owner_turns: owners::Turns::default(),
            bucket_owners: kept_for(10_000, owners::OWNER_TTL),
            listed_owners: object_owners::ListedOwners::default(),
            // (Weighed by name and grants: an ACL may hold 100.)
            acls: moka::sync::Cache::builder()
                .max_capacity(32 * 1024 * 1024)
                .weigher(|k: &String, acl: &Arc<acls::Acl>| {
                    weight_of(k.len()).saturating_add(acl.weight().saturating_mul(256))
                })
                .time_to_live(acls::ACL_TTL)
                .build(),
            acl_changes: std::sync::atomic::AtomicU64::new(0),
            locked_buckets: moka::sync::Cache::builder().max_capacity(10_000).build(),
            unlocked_buckets: kept_for(10_000, std::time::Duration::from_secs(5)),
            cors_rules: cors::RulesRead::default(),
            hold_changes: owners::Turns::default(),
            acl_turns: owners::Turns::default(),
            underway: Arc::default(),
            versioned_buckets: validate::probes::VersioningCache::default(),
            known_folders: folders::KnownFolders::default(),
            users,
            health,
            backends,
            forwarder: Forwarder::default(),
            held: held::HeldBytes::new(
                cfg.max_held_bytes,
                metrics.held_bytes.clone(),
                metrics.overload_refusals.with_label_values(&["held-bytes"]),
            ),
            heads: held::HeldBytes::new(
                heads_budget(&cfg),
                metrics.held_bytes.clone(),
                metrics.overload_refusals.with_label_values(&["held-bytes"]),
            ),
            stopping: Arc::default(),
            form_readers: tokio::sync::Semaphore::new(match cfg.max_concurrent_requests {
                0 => tokio::sync::Semaphore::MAX_PERMITS,
                all => (all / 8).max(4),
            }),
            admission: crate::request::admit::Admission::new(
                cfg.max_concurrent_requests,
                cfg.max_concurrent_requests_per_client,
            ),
            metrics,
            cfg,
        }
    }

    /// Makes sure the route has credentials to sign with (the AWS chain may have to fetch).
    async fn resolve_credentials(&self, route: &mut Route<'_>) -> Result<(), String> {
        if route.credentials.is_none() {
            route.credentials = Some(route.backend.credentials.current().await?);
        }
        Ok(())
    }

    /// Reads the next request's header section: within `keepalive_seconds` +
    /// `client_header_timeout_seconds` in all (pingora times out each read, not the section,
    /// so a client sending a byte now and then would hold the connection forever; counted
    /// from when it first waits, `deadline`) — a connection's `first` within
    /// `client_header_timeout_seconds` alone, as nothing was served on it to wait after —, or
    /// until shutdown. A malformed or oversized head is answered 400 and the connection closes.
    /// `None` when there is no request to serve; else the share of the heads' budget the head
    /// holds (pingora keeps its buffer until the exchange ends: so is the share kept).
    async fn read_head(
        &self,
        s: &mut ServerSession,
        shutdown: &mut ShutdownWatch,
        first: bool,
    ) -> Option<Option<held::Held>> {
        let header_deadline = if first {
            self.cfg.client_header_timeout
        } else {
            self.cfg.keepalive + self.cfg.client_header_timeout
        };
        let limit = self.cfg.limits.max_header_bytes;
        // What the section may take from the socket: the limit, and room for what the measure
        // below leaves out (line ends, spacing), so that the measure decides a head near it.
        let budget = if limit > 0 {
            limit.saturating_add(HEAD_BUDGET_SLACK)
        } else {
            usize::MAX
        };
        // (Over TLS a head's first read may take a whole record: ciphertext, the start of a
        // body with it.)
        let uncounted = match self.cfg.tls {
            Some(_) => head_budget::UNCOUNTED + TLS_RECORD,
            None => head_budget::UNCOUNTED,
        };
        let read = head_budget::limited((budget, uncounted), Some(&self.heads), s.read_request());
        let (read, cut, share) = tokio::select! {
            r = crate::deadline::within(header_deadline, read) => match r {
                Ok(r) => r,
                Err(_) => {
                    self.metrics.client_timeout("header");
                    return None;
                }
            },
            _ = until_shutdown(shutdown) => return None,
        };
        let too_large = || format!("The request header section is larger than {limit} bytes.");
        match read {
            Ok(true) => {}
            _ if cut == head_budget::Cut::TooLarge => {
                Box::pin(self.refuse_malformed(s, &too_large())).await;
                return None;
            }
            // (A head the heads' budget has no room for: HCP's overload answer.)
            _ if cut == head_budget::Cut::NoRoom => {
                let full = crate::request::held::Full.error();
                Box::pin(self.refuse(s, full, (None, false), std::time::Instant::now())).await;
                return None;
            }
            Err(e) if e.etype() == &pingora::ErrorType::InvalidHTTPHeader => {
                let message = "The request header section is malformed.";
                Box::pin(self.refuse_malformed(s, message)).await;
                return None;
            }
            _ => return None,
        }
        if limit > 0 && header_section_len(s.req_header()) > limit {
            Box::pin(self.refuse_malformed(s, &too_large())).await;
            return None;
        }
        Some(share)
    }

    /// Puts a reloaded configuration's users, their permissions, the tenants' anonymous
    /// grants and `anonymous_acls`, and the backends' rotated static keys in place; requests already authenticated keep the identity they were given, open
    /// connections are untouched. The other settings it changes (`config::reload`) wait for a
    /// restart: each is named in a warning, and the reload is `partial` (else `ok`: what
    /// `hcp_gateway_config_reloads_total` counts, once the certificate's reload is known too).
    pub fn reload(&self, new: &Config) -> &'static str {
        self.users.store(new.users_served_by(&self.cfg.tenants));
        // (A tenant the configuration no longer has keeps being addressed until a restart,
        // and serves nobody: the safe reading of a removal.)
        let none = crate::config::runtime::AnonymousGrants::default();
        for (name, tenant) in &self.cfg.tenants {
            let reloaded = new.tenants.get(name);
            tenant
                .anonymous
                .replace(reloaded.map_or(&none, |t| &t.anonymous));
            let acls = reloaded.is_some_and(|t| t.anonymous_acls.on());
            tenant.anonymous_acls.set(acls);
            tenant.removed.set(reloaded.is_none());
        }
        tracing::info!(users = new.users.len(), "users and permissions reloaded");
        self.rotate_backend_keys(new);
        let waiting = crate::config::reload::restart_needed(&self.cfg, new);
        for setting in &waiting {
            tracing::warn!(
                setting,
                "reload: this setting changed and takes effect on a restart"
            );
        }
        if waiting.is_empty() {
            "ok"
        } else {
            "partial"
        }
    }

    /// Puts in place the static keys a reload finds rotated (`config::reload::rotated_keys`):
    /// requests from now on sign with them.
    fn rotate_backend_keys(&self, new: &Config) {
        for (name, keys) in crate::config::reload::rotated_keys(&self.cfg, new) {
            let (
                Some(backend),
                crate::config::RemoteKeys::Static {
                    access_key,
                    secret_key,
                    token,
                },
            ) = (self.backends.get(name), keys)
            else {
                continue;
            };
            if backend
                .credentials
                .rotate(access_key, secret_key, token.as_ref())
            {
                tracing::info!(backend = name, %access_key, "backend keys replaced");
            }
        }
    }

    async fn serve(&self, s: &mut ServerSession, x: &mut Exchange) -> Flow {
        match self.plan(s, x) {
            Ok(Planned::Request(plan)) if plan.op == Operation::CorsPreflight => {
                Box::pin(self.preflight(s, x, (&plan.target, &plan.route))).await
            }
            Ok(Planned::Request(plan)) => {
                // (A browser's request, authenticated: the bucket's rules decide the CORS
                // headers of whatever answers it, an error too.)
                if let Some(origin) = plan
                    .browser
                    .then(|| s.req_header().headers.get(http::header::ORIGIN))
                    .flatten()
                {
                    let method = &s.req_header().method;
                    let asked = (&plan.target, &plan.route);
                    x.reply.cors = Box::pin(self.cors_of_request(origin, method, asked)).await;
                }
                self.forward(s, x, plan).await
            }
            Ok(Planned::Form { target, route }) => {
                Box::pin(self.post_object(s, x, target, route)).await
            }
            Ok(Planned::Refused { error, target }) => {
                Box::pin(self.refuse_browser(s, x, error, target)).await
            }
            Err(e) => Box::pin(self.answer_early(s, x, e)).await,
        }
    }
}

/// `x-hcp-pretty-print: true`: the documents of the answer are indented.
#[inline]
fn asks_pretty(req: &pingora::http::RequestHeader) -> bool {
    req.headers
        .get("x-hcp-pretty-print")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
}

fn is_expect_continue(s: &ServerSession) -> bool {
    s.req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Writes the interim `100 Continue`. pingora turns keep-alive off for any answer written
/// before the body is read, a 1xx too, so every upload that asked for one lost its connection:
/// the connection's keep-alive is left as it was (the final answer meets the same check, and
/// closes a connection whose body was not read whole).
async fn write_continue(s: &mut ServerSession) -> pingora::Result<()> {
    let kept = s.get_keepalive();
    let written = s.write_continue_response().await;
    s.set_keepalive(kept);
    written
}

/// Bytes a header section may take from the socket beyond `limits.max_header_bytes`: the
/// spacing and line ends [`header_section_len`] does not count (at most 256 headers), and one
/// TLS record (the budget counts the bytes on the socket, and the record that ends a head may
/// carry the start of its body: up to 16 KiB and its overhead).
const HEAD_BUDGET_SLACK: usize = 8 * 1024 + TLS_RECORD;

/// The bytes header sections may hold together as they arrive (`Gateway::heads`): a quarter of
/// `server.max_held_bytes`, and at least what one head may (twice its budget: pingora's buffer
/// doubles; without a limit of the gateway's, pingora's own 1 MiB). 0: no limit.
fn heads_budget(cfg: &Config) -> usize {
    let head = match cfg.limits.max_header_bytes {
        0 => 1024 * 1024,
        limit => limit,
    };
    match cfg.max_held_bytes {
        0 => 0,
        all => (all / 4).max(head.saturating_add(HEAD_BUDGET_SLACK).saturating_mul(2)),
    }
}

/// A TLS record and its overhead, at most.
const TLS_RECORD: usize = 17 * 1024;

/// A header section's size as `limits.max_header_bytes` measures it: the request line, and each
/// header's name, value and 4 bytes (": " and its line end).
fn header_section_len(req: &pingora::http::RequestHeader) -> usize {
    let headers: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    req.method.as_str().len() + req.raw_path().len() + 12 + headers
}

/// A request given its place (`admit`): the place, when it was admitted, and from where.
struct Admitted<'a> {
    permit: admit::Permit<'a>,
    started: Instant,
    client: Option<std::net::IpAddr>,
    /// The head's share of the heads' budget (`read_head`), kept to the exchange's end.
    head: Option<held::Held>,
}

/// Ends an exchange as its flow says: the connection kept for the next request, closed, or
/// aborted (a broken answer must look broken).
async fn end_connection(mut s: ServerSession, flow: Flow) -> Option<ReusedHttpStream> {
    match flow {
        Flow::Abort | Flow::Drain => None,
        Flow::Close => {
            s.set_keepalive(None);
            let _ = s.finish().await;
            None
        }
        Flow::KeepAlive => {
            let settings = HttpPersistentSettings::for_session(&s);
            match s.finish().await {
                Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, settings)),
                _ => None,
            }
        }
    }
}

async fn until_shutdown(shutdown: &mut ShutdownWatch) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Gateway {
    /// `e`, counted as a refused authorisation where it is one (`AccessDenied`; not a backend
    /// that could not say, nor a client's failed condition).
    fn counted_refusal(&self, e: HcpError) -> HcpError {
        if e.code == HcpCode::AccessDenied {
            self.metrics.auth_failure(e.code);
        }
        e
    }

    /// One exchange on a connection (`server::Exchanges`): the request's head read, the request
    /// admitted, served and recorded, and the connection handed back unless it is to close.
    pub async fn exchange_on(
        self: &Arc<Self>,
        mut s: ServerSession,
        shutdown: &ShutdownWatch,
        first: bool,
    ) -> Option<ReusedHttpStream> {
        let mut shutdown = shutdown.clone();
        let head = self.read_head(&mut s, &mut shutdown, first).await?;
        // 0. admission: a place among max_concurrent_requests, or HCP's overload answer (made
        // without the room serving takes).
        let started = Instant::now();
        let client = s.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        let permit = match self.admission.admit(client) {
            Ok(permit) => permit,
            Err(limit) => {
                Box::pin(self.refuse_overload(&mut s, limit, started)).await;
                return None;
            }
        };
        // Boxed: a connection waiting for its next request then holds only the small future of
        // reading a header, not the space serving a request needs. Serving and finishing share
        // the box (one allocation per request, not one each); draining, rare, has its own.
        let admitted = Admitted {
            permit,
            started,
            client,
            head,
        };
        self.exchange_boxed(s, admitted, &shutdown).await
    }

    /// `exchange_admitted`'s future in its box: the box allocated first and the future written
    /// into it, so that only what it starts with is copied in (the session and the admission,
    /// 752 bytes). Made first and then boxed (`Box::pin`), the future was copied whole, 8,712
    /// bytes, from the stack into the box; and so it was in a function of its own with
    /// `Box::pin` (the release build's machine code, `objdump -d`). Kept out of line, as it
    /// was checked.
    #[inline(never)]
    fn exchange_boxed<'a>(
        self: &'a Arc<Self>,
        s: ServerSession,
        admitted: Admitted<'a>,
        shutdown: &'a ShutdownWatch,
    ) -> std::pin::Pin<Box<impl std::future::Future<Output = Option<ReusedHttpStream>> + Send + 'a>>
    {
        let slot = Box::new_uninit();
        Box::into_pin(Box::write(
            slot,
            self.exchange_admitted(s, admitted, shutdown),
        ))
    }

    /// The exchange of an admitted request: served, recorded, and the connection finished.
    async fn exchange_admitted(
        self: &Arc<Self>,
        mut s: ServerSession,
        admitted: Admitted<'_>,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let Admitted {
            permit,
            started,
            client,
            head: _head,
        } = admitted;
        // The gateway's idle timeout for a connection the request lets stay open: never turned
        // back on where pingora turned it off (HTTP/1.0 without keep-alive; Content-Length with
        // Transfer-Encoding, RFC 9112 6.1 — what comes next could be a request a front end
        // reading by Content-Length took for body).
        let open = s.get_keepalive().is_some();
        let stopping =
            *shutdown.borrow() || self.stopping.load(std::sync::atomic::Ordering::Acquire);
        let keepalive = (open && !stopping).then(|| self.cfg.keepalive.as_secs());
        s.set_keepalive(keepalive);
        let mut x = Exchange {
            reply: Reply {
                id: RequestId::new(),
                pretty: asks_pretty(s.req_header()),
                cors: Vec::new(),
            },
            client,
            ..Exchange::default()
        };
        self.metrics.in_flight.inc();
        let flow = self.serve(&mut s, &mut x).await;
        // The place is free once the answer is out (before the gauge drops, so that a reader
        // of the gauge never sees a place still taken), and before a refused body is drained.
        drop(permit);
        self.metrics.in_flight.dec();
        self.record(&x, started);
        let flow = match flow {
            Flow::Drain => Box::pin(self.drain(&mut s)).await,
            other => other,
        };
        end_connection(s, flow).await
    }
}

/// A cache entry's weight in bytes, as moka counts it.
pub(crate) fn weight_of(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

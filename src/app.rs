//! The request path. Each phase delegates to one module:
//! addressing → classification → authentication → validation → routing → signing →
//! forwarding → response normalisation. `docs/architecture.md` draws the same flow.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;

use crate::acl;
use crate::addressing::{self, Target};
use crate::auth::{
    access, Authenticated, Authenticator, Identity, Payload, Principal, SharedUsers, UserStore,
};
use crate::complete;
use crate::config::Config;
use crate::errors::{HcpCode, HcpError};
use crate::forward::{self, BodyError, Forwarder, Upstream};
use crate::metrics::Metrics;
use crate::normalize;
use crate::operation::{self, Operation, Params, Query};
use crate::payload::BodyVerifier;
use crate::routing::{self, BackendRuntime, Route};
use crate::signing::{self, BodyFraming};
use crate::sigv4;
use crate::uploads::{self, UploadIds};
use crate::validation;

mod post_form;

/// How much of an unwanted request body is read and discarded after an early answer, so that a
/// client that writes its whole body before reading still sees the answer.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;
/// How long draining it may take in all.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Gateway {
    pub cfg: Arc<Config>,
    authn: Authenticator,
    /// Signing keys for clients and backends alike.
    signing_keys: Arc<sigv4::SigningKeyCache>,
    /// Heads of copy sources, briefly, so that a series of part copies HEADs its source once.
    source_heads: moka::sync::Cache<String, Arc<ResponseHeader>>,
    /// Multipart upload ids bound to their initiators.
    upload_ids: UploadIds,
    /// Each backend account's canonical id, once read (ACL documents name the tenant instead).
    backend_owners: moka::sync::Cache<String, String>,
    /// The users, replaced whole on reload; `cfg.users` is what the process started with.
    users: SharedUsers,
    /// Backend reachability, probed and from the requests' outcomes (`/readyz`).
    pub health: Arc<crate::health::BackendHealth>,
    backends: HashMap<String, BackendRuntime>,
    forwarder: Forwarder,
    pub metrics: Arc<Metrics>,
    /// Requests in flight against `max_concurrent_requests` (overall and per client).
    admission: crate::admission::Admission,
}

/// What became of one request: the access log line and the metrics are made from it.
#[derive(Default)]
struct Exchange {
    request_id: String,
    operation: Option<Operation>,
    tenant: String,
    backend: String,
    access_key: Option<String>,
    scheme: &'static str,
    bucket: Option<String>,
    key: Option<String>,
    status: u16,
    code: Option<HcpCode>,
    backend_status: Option<u16>,
    backend_code: Option<String>,
    backend_request_id: Option<String>,
    bytes_in: u64,
    bytes_out: u64,
    pretty: bool,
    cause: Option<String>,
    /// The upload was seen to exist before a part copy was forwarded.
    upload_confirmed: bool,
    /// The upload id as the client gave it (the backend gets its own).
    client_upload_id: Option<String>,
    /// The write carries the gateway's own `If-None-Match: *` (rule 41 done by the backend).
    overwrite_guarded: bool,
    /// From sending the request to the backend to its answer's headers.
    backend_elapsed: Option<std::time::Duration>,
}

/// Retries of one request: bounded in count and in time.
struct Retry {
    left: u32,
    done: u32,
    started: Instant,
}

impl Retry {
    /// First wait's ceiling; each retry doubles it, up to `MAX_WAIT`.
    const BASE_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
    const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
    /// No retry starts after this long.
    const BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

    fn new(max: u32) -> Retry {
        Retry {
            left: max,
            done: 0,
            started: Instant::now(),
        }
    }

    fn left(&self) -> bool {
        self.left > 0 && self.started.elapsed() < Self::BUDGET
    }

    fn next_wait(&mut self) -> Option<std::time::Duration> {
        use rand::Rng;
        if !self.left() {
            return None;
        }
        self.left -= 1;
        let ceiling = Self::BASE_WAIT
            .saturating_mul(1 << self.done.min(16))
            .min(Self::MAX_WAIT);
        self.done += 1;
        Some(ceiling.mul_f64(rand::thread_rng().gen_range(0.0..1.0)))
    }
}

/// How a write that must not replace an object is protected.
enum Overwrite {
    /// Nothing to protect, or the gateway already checked.
    Unguarded,
    /// The backend refuses atomically: the gateway adds `If-None-Match: *`.
    AskBackend,
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
/// upload, whose credentials and object are in its body.
enum Planned<'a> {
    Request(Plan<'a>),
    Form { target: Target, route: Route<'a> },
}

/// Everything the phases before forwarding decided.
struct Plan<'a> {
    target: Target,
    op: Operation,
    /// The operation's own query parameters (upload ids already the backend's).
    params: Params,
    auth: Authenticated,
    route: Route<'a>,
}

impl Gateway {
    pub fn new(
        cfg: Arc<Config>,
        backends: HashMap<String, BackendRuntime>,
        metrics: Arc<Metrics>,
    ) -> Gateway {
        let signing_keys = Arc::new(sigv4::SigningKeyCache::counted(
            metrics.cache_lookups.clone(),
        ));
        let users = cfg.users.clone().shared();
        let authn = Authenticator::new(users.clone(), cfg.clock_skew, signing_keys.clone());
        let upload_ids = UploadIds::new(cfg.upload_binding_secret.expose().as_bytes());
        let health = Arc::new(crate::health::BackendHealth::new(
            backends.values().map(|b| crate::health::Target {
                name: b.name.clone(),
                resolved: b.resolved.clone(),
                dns_name: b.dns_name.clone(),
                timeout: b.connect_timeout,
                http: b.tls.is_none(),
            }),
            metrics.clone(),
        ));
        Gateway {
            authn,
            signing_keys,
            source_heads: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(5))
                .build(),
            upload_ids,
            backend_owners: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(std::time::Duration::from_secs(600))
                .build(),
            users,
            health,
            backends,
            forwarder: Forwarder::default(),
            admission: crate::admission::Admission::new(
                cfg.max_concurrent_requests,
                cfg.max_concurrent_requests_per_client,
            ),
            metrics,
            cfg,
        }
    }

    /// Waits before the next attempt (exponential backoff with full jitter), or says that no
    /// attempt is left in count or time.
    async fn back_off(&self, retry: &mut Retry, backend: &BackendRuntime, reason: &str) -> bool {
        let Some(wait) = retry.next_wait() else {
            return false;
        };
        self.metrics
            .backend_retries
            .with_label_values(&[backend.name.as_str(), reason])
            .inc();
        tokio::time::sleep(wait).await;
        true
    }

    /// AWS in us-east-1 (and what speaks its dialect there) answers CreateBucket on a bucket its
    /// caller owns with a plain 200.
    fn recreates_silently(&self, route: &Route<'_>) -> bool {
        route.backend.dialect == crate::mapping::Dialect::Aws && route.backend.region == "us-east-1"
    }

    /// Makes sure the route has credentials to sign with (the AWS chain may have to fetch).
    async fn resolve_credentials(&self, route: &mut Route<'_>) -> Result<(), String> {
        if route.credentials.is_none() {
            route.credentials = Some(route.backend.credentials.current().await?);
        }
        Ok(())
    }

    fn count_connection(&self, backend: &BackendRuntime, reused: bool) {
        self.metrics
            .backend_connections
            .with_label_values(&[backend.name.as_str(), if reused { "true" } else { "false" }])
            .inc();
    }

    /// Puts reloaded users and permissions in place; requests already authenticated keep the
    /// identity they were given, open connections are untouched.
    pub fn replace_users(&self, users: Arc<UserStore>) {
        tracing::info!(users = users.len(), "users and permissions reloaded");
        self.users.store(users);
        self.metrics.reloads.with_label_values(&["ok"]).inc();
    }

    async fn serve(&self, s: &mut ServerSession, x: &mut Exchange) -> Flow {
        match self.plan(s, x) {
            Ok(Planned::Request(plan)) => self.forward(s, x, plan).await,
            Ok(Planned::Form { target, route }) => self.post_object(s, x, target, route).await,
            Err(e) => self.answer_early(s, x, e).await,
        }
    }

    /// The phases that decide, before any byte goes to a backend.
    fn plan(&self, s: &mut ServerSession, x: &mut Exchange) -> Result<Planned<'_>, HcpError> {
        let req = s.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()))
            .unwrap_or_default();
        let (raw_path, raw_query) = crate::auth::sigv4_header::split_target(req.raw_path());

        // 1. addressing
        // HCP's own scheme addresses through a /hs3 path prefix.
        let hcp_scheme = req
            .headers
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes().starts_with(b"HCP "));
        let target = addressing::resolve(
            host,
            raw_path,
            hcp_scheme,
            &self.cfg.domains,
            self.cfg.default_tenant.as_deref(),
            |t| self.cfg.tenants.contains_key(t),
        )?;
        x.tenant = target.tenant.clone();
        x.bucket = target.bucket.clone();
        x.key = target.key_lossy();

        // 2. classification
        let query = Query::parse(raw_query);
        let op = operation::classify(
            &req.method,
            &target,
            &query,
            req.headers.contains_key("x-amz-copy-source"),
        )?;
        x.operation = Some(op);
        let mut params = Params::of(op, &query);
        let tenant = &self.cfg.tenants[&target.tenant];
        if op == Operation::PostObject {
            // Rule 47: a form upload is authenticated by its form alone.
            if req.headers.contains_key(http::header::AUTHORIZATION) {
                return Err(access::denied()
                    .with_message("A POST object upload is authenticated by its form fields."));
            }
            let route = routing::route(tenant, self.backends.get(&tenant.backend), &target)?;
            x.backend = route.backend.name.clone();
            return Ok(Planned::Form { target, route });
        }

        // 3. authentication, and what the identity may do (a CORS preflight has no identity)
        let authenticated = if op == Operation::CorsPreflight {
            Ok(self.authn.preflight())
        } else {
            self.authn
                .authenticate(req, &target, &query, SystemTime::now())
        };
        let auth = match authenticated {
            Ok(a) => a,
            Err(e) => {
                self.metrics
                    .auth_failures
                    .with_label_values(&[e.code.as_str()])
                    .inc();
                return Err(e);
            }
        };
        x.access_key = auth.identity.access_key().map(str::to_string);
        x.scheme = auth.identity.scheme().name();
        if let Err(e) = authorize(&auth.identity, tenant, op, req, &target) {
            self.metrics
                .auth_failures
                .with_label_values(&["AccessDenied"])
                .inc();
            return Err(e);
        }

        // 4. validation; ACL grants in the backend's terms (HCP ignores them on parts and completes)
        validation::check(op, &target, &query, req, &self.cfg.limits)?;
        // Response header overrides change what the answer says about the object: as S3, only
        // for authenticated requests.
        if matches!(auth.identity.principal(), Principal::Anonymous)
            && params.names().any(|n| n.starts_with("response-"))
        {
            return Err(HcpError::new(HcpCode::InvalidArgument).with_message(
                "Request specific response headers cannot be used for anonymous GET requests.",
            ));
        }
        if matches!(
            op,
            Operation::UploadPart | Operation::UploadPartCopy | Operation::CompleteMultipartUpload
        ) {
            acl::strip_acl_headers(s.req_header_mut());
        } else {
            acl::translate_grants(s.req_header_mut(), &self.users.load())?;
        }
        // Only an upload's initiator may use it; the backend gets its own id for it.
        x.client_upload_id = self.open_upload(&auth.identity, tenant, op, &target, &mut params)?;

        // 5. routing
        let route = routing::route(tenant, self.backends.get(&tenant.backend), &target)?;
        x.backend = route.backend.name.clone();
        Ok(Planned::Request(Plan {
            target,
            op,
            params,
            auth,
            route,
        }))
    }

    /// Checks the upload id of a multipart request against the caller and puts the backend's id
    /// in its place (likewise a listing's `upload-id-marker`). Returns the client's id.
    fn open_upload(
        &self,
        identity: &Identity,
        tenant: &crate::config::Tenant,
        op: Operation,
        target: &Target,
        params: &mut Params,
    ) -> Result<Option<String>, HcpError> {
        let scope = uploads::Scope {
            tenant: &target.tenant,
            bucket: target.bucket.as_deref().unwrap_or_default(),
        };
        let (param, client_id, backend_id) = match op {
            Operation::UploadPart
            | Operation::UploadPartCopy
            | Operation::ListParts
            | Operation::CompleteMultipartUpload
            | Operation::AbortMultipartUpload => {
                let Some(client_id) = params.get("uploadId").map(str::to_string) else {
                    return Ok(None);
                };
                let use_ = match identity.principal() {
                    Principal::User(user) if op == Operation::AbortMultipartUpload => {
                        uploads::Use::Abort {
                            caller_is_admin: access::check(
                                &user.grants,
                                &tenant.name,
                                target.bucket.as_deref(),
                                Some(access::Permission::Admin),
                            )
                            .is_ok(),
                        }
                    }
                    _ => uploads::Use::InitiatorOnly,
                };
                let caller = identity.access_key().unwrap_or_default();
                let backend_id = self.upload_ids.open(scope, &client_id, caller, use_)?;
                ("uploadId", client_id, backend_id)
            }
            Operation::ListMultipartUploads => {
                let Some(marker) = params.get("upload-id-marker").map(str::to_string) else {
                    return Ok(None);
                };
                match self.upload_ids.backend_id(scope, &marker) {
                    Some(backend_id) => ("upload-id-marker", marker, backend_id),
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        params.set(param, backend_id);
        Ok(Some(client_id))
    }

    /// Signing, forwarding and normalisation.
    async fn forward(&self, s: &mut ServerSession, x: &mut Exchange, plan: Plan<'_>) -> Flow {
        let Plan {
            target,
            op,
            params,
            auth,
            mut route,
        } = plan;
        if let Err(cause) = self.resolve_credentials(&mut route).await {
            return self.backend_unreachable(s, x, &cause).await;
        }
        // Only operations that carry a body forward one: a body sent with any other request
        // is left unread (the connection closes after the answer), so that it can hold nothing
        // — no backend connection, no place — while it trickles in.
        let client_body = !s.is_body_empty();
        let takes_body = op.takes_body()
            && matches!(
                s.req_header().method,
                http::Method::PUT | http::Method::POST
            );
        let has_body = client_body && takes_body;
        let verifier =
            match BodyVerifier::new(&auth.payload, s.req_header(), self.cfg.max_chunk_bytes) {
                Ok(v) => v,
                Err(e) => return self.answer_early(s, x, e).await,
            };
        let body_length = if has_body {
            verifier.decoded_length()
        } else {
            None
        };
        // A body is verified before the backend could commit it, whatever its length: without
        // a body, the signed digest, Content-MD5 and checksums must be an empty body's (and an
        // aws-chunked request must have its chunks); the backend would store an empty object on
        // the header alone.
        let verifier = if has_body {
            Some(verifier)
        } else if !takes_body {
            None
        } else {
            if let Err(e) = verifier.finish() {
                return self.answer_early(s, x, e).await;
            }
            None
        };
        if has_body {
            self.metrics
                .payloads
                .with_label_values(&[auth.payload.mode()])
                .inc();
        }
        // What the gateway vouches for toward the backend: the verified digest of a body that is
        // forwarded unchanged, or no claim at all (the gateway verified what it could itself).
        let (payload_hash, framing) = match (&auth.payload, has_body) {
            (_, false) => (sigv4::EMPTY_SHA256.to_string(), BodyFraming::AsSent),
            (Payload::Plain { sha256: Some(d) }, true) => (hex::encode(d), BodyFraming::AsSent),
            (Payload::Plain { sha256: None }, true) => {
                (sigv4::UNSIGNED_PAYLOAD.to_string(), BodyFraming::AsSent)
            }
            (Payload::Chunked { .. }, true) => {
                (sigv4::UNSIGNED_PAYLOAD.to_string(), BodyFraming::Dechunked)
            }
        };

        // 6. signing
        let body = signing::BodyPlan {
            length: body_length,
            framing,
            payload_hash: &payload_hash,
        };
        let client = s.req_header();
        let outbound = signing::Outbound {
            op,
            method: &client.method,
            params: &params,
            target: &target,
            headers: &client.headers,
        };
        let mut upstream_req = signing::backend_request(
            outbound,
            &route,
            body,
            SystemTime::now(),
            &self.signing_keys,
        );
        if has_body && body_length.is_none() {
            upstream_req
                .insert_header(http::header::TRANSFER_ENCODING, "chunked")
                .expect("static");
        }

        // AWS us-east-1 answers a re-created own bucket 200 and resets its ACL: the gateway asks
        // first and answers HCP's BucketAlreadyOwnedByYou without re-creating it.
        if op == Operation::CreateBucket && self.recreates_silently(&route) {
            match self
                .backend_call(Operation::HeadBucket, Params::default(), &target, &route)
                .await
            {
                Some((h, _)) if h.status == 200 => {
                    let bucket = target.bucket.as_deref().unwrap_or_default();
                    return self
                        .answer_early(
                            s,
                            x,
                            HcpError::new(HcpCode::BucketAlreadyOwnedByYou).with_bucket(bucket),
                        )
                        .await;
                }
                Some((h, _)) if h.status == 403 => {
                    return self
                        .answer_early(s, x, HcpError::new(HcpCode::BucketAlreadyExists))
                        .await;
                }
                _ => {}
            }
        }

        // Rule 41 and create-only writes where the backend cannot refuse them itself; before a
        // 100-continue, so that a refused body is never sent.
        match self
            .check_overwrite(s.req_header(), op, &target, &route)
            .await
        {
            Ok(Overwrite::Unguarded) => {}
            Ok(Overwrite::AskBackend) => {
                upstream_req
                    .insert_header(http::header::IF_NONE_MATCH, "*")
                    .expect("static");
                x.overwrite_guarded = true;
            }
            Err(e) => return self.answer_early(s, x, e).await,
        }

        if has_body && is_expect_continue(s) {
            if let Err(e) = s.write_continue_response().await {
                x.cause = Some(format!("writing 100-continue: {e}"));
                return Flow::Abort;
            }
        }

        // Seed 000's part-copy rules that need the backend's state.
        if op == Operation::UploadPartCopy {
            if let Err(e) = self
                .check_part_copy(s.req_header(), &params, &target, &route)
                .await
            {
                return self.answer_early(s, x, e).await;
            }
            x.upload_confirmed = true;
        }

        // HCP's complete, multi-delete and ACL rules need the (small) XML body before the backend
        // acts: it is read and verified whole, checked, then sent on as it came (an ACL in HCP's
        // terms is sent in the backend's).
        // A body that decodes to nothing (aws-chunked with x-amz-decoded-content-length: 0) is
        // read and verified whole first for the same reason.
        let mut verifier = verifier;
        let mut buffered: Option<Bytes> = None;
        let control = matches!(
            op,
            Operation::CompleteMultipartUpload
                | Operation::DeleteObjects
                | Operation::PutBucketAcl
                | Operation::PutObjectAcl
        );
        if has_body && (control || body_length == Some(0)) {
            let v = verifier.take().expect("not used yet");
            let body = match forward::read_request_body(
                s,
                v,
                self.cfg.limits.max_control_body_bytes,
                self.cfg.client_body_timeout,
            )
            .await
            {
                Ok(b) => b,
                Err(BodyError::Rejected(e)) => return self.answer(s, x, e).await,
                Err(e) => {
                    x.cause = Some(format!("client body: {e:?}"));
                    return Flow::Abort;
                }
            };
            x.bytes_in = body.len() as u64;
            let upload_id = params.get("uploadId").unwrap_or_default().to_string();
            let checked = match op {
                _ if !control => Ok(None),
                Operation::DeleteObjects => {
                    validation::check_delete_list(&body, &self.cfg.limits).map(|()| None)
                }
                Operation::PutBucketAcl | Operation::PutObjectAcl => {
                    let backend = self.backend_owner(&target, &route).await;
                    let shown = routing::tenant_owner_id(route.tenant);
                    let ids = (shown.as_str(), backend.as_deref());
                    acl::check_policy(&body, &self.users.load(), ids).map(Some)
                }
                _ => self
                    .check_complete(&body, &upload_id, &target, &route)
                    .await
                    .map(|()| None),
            };
            buffered = match checked {
                Err(e) => return self.answer(s, x, e).await,
                Ok(None) => Some(body),
                Ok(Some(translated)) => {
                    upstream_req =
                        self.resign_with_body(s, (op, &params), &target, &route, &translated);
                    Some(Bytes::from(translated))
                }
            };
        }

        // 7. forwarding (only bodiless requests are ever retried, so the verifier is used once)
        // Bodiless requests other than POST (which could create twice) are retried on connection
        // failures and on the backend's 503 (SlowDown), with backoff; a body is never replayed.
        let mut retry = Retry::new(
            if !has_body && s.req_header().method != http::Method::POST {
                route.backend.max_retries
            } else {
                0
            },
        );
        let mut stale_retried = false;
        let mut up = loop {
            let mut up = match self.forwarder.connect(route.backend).await {
                Ok(u) => u,
                Err(e) => {
                    // Only failures to reach a backend count toward its health, never its
                    // answer (or its hanging up) on a bad request.
                    self.health.record(&route.backend.name, false);
                    if self.back_off(&mut retry, route.backend, "connect").await {
                        continue;
                    }
                    return self.backend_unreachable(s, x, &e.to_string()).await;
                }
            };
            self.count_connection(route.backend, up.reused);
            let sent = Instant::now();
            // A pooled connection may have been closed by the backend meanwhile: a bodiless request
            // that fails on one before any answer is sent again, at once, on a fresh connection.
            let retriable = up.reused && !has_body && !stale_retried;
            stale_retried |= retriable;
            if let Err(e) = up
                .session
                .write_request_header(Box::new(upstream_req.clone()))
                .await
            {
                if retriable {
                    continue;
                }
                return self.backend_unreachable(s, x, &e.to_string()).await;
            }
            self.metrics
                .backend_requests
                .with_label_values(&[&route.backend.name])
                .inc();
            if let Some(body) = &buffered {
                let sent = up.session.write_body(body).await;
                if let Err(e) = sent.and(up.session.finish_body().await) {
                    x.cause = Some(format!("backend stopped reading the body: {e}"));
                }
            } else if has_body {
                let verifier = verifier.take().expect("a request with a body is sent once");
                match forward::stream_request_body(
                    s,
                    &mut up.session,
                    verifier,
                    self.cfg.client_body_timeout,
                )
                .await
                {
                    Ok(n) => x.bytes_in = n,
                    Err(BodyError::Rejected(e)) => {
                        // The upstream request is abandoned unfinished: the backend stores nothing.
                        drop(up);
                        return self.answer(s, x, e).await;
                    }
                    Err(BodyError::Client(e)) => {
                        x.cause = Some(format!("client body: {e}"));
                        return Flow::Abort;
                    }
                    Err(BodyError::Backend(e)) => {
                        // The backend may have answered early (and stopped reading): use its answer.
                        x.cause = Some(format!("backend stopped reading the body: {e}"));
                    }
                }
            } else if let Err(e) = up.session.finish_body().await {
                if retriable {
                    continue;
                }
                return self.backend_unreachable(s, x, &e.to_string()).await;
            }
            if op == Operation::CompleteMultipartUpload {
                break up;
            }
            match up.session.read_response().await {
                Ok(_) => {
                    let busy = up.session.resp_header().map(|h| h.status.as_u16()) == Some(503);
                    if busy && retry.left() {
                        // Read the short error answer so the connection can be pooled.
                        let drained = forward::read_whole_body(&mut up.session, 64 * 1024).await;
                        if drained.is_ok() && up.session.is_body_done() {
                            self.forwarder.release(up).await;
                        }
                        if self.back_off(&mut retry, route.backend, "busy").await {
                            continue;
                        }
                        // Out of time: the request is answered as the backend is overloaded.
                        return self
                            .answer(s, x, HcpError::new(HcpCode::ServiceUnavailable))
                            .await;
                    }
                    x.backend_elapsed = Some(sent.elapsed());
                    self.health.record(&route.backend.name, true);
                    break up;
                }
                Err(e) if retriable => {
                    tracing::debug!("retrying on a fresh backend connection: {e}");
                    continue;
                }
                Err(e) => {
                    // (A read timeout is not counted: a client can make a request long; a
                    // backend that stops answering fails its HTTP probe.)
                    if self.back_off(&mut retry, route.backend, "connection").await {
                        continue;
                    }
                    return self.backend_unreachable(s, x, &e.to_string()).await;
                }
            }
        };
        let body_fully_read = !client_body || s.is_body_done();
        if op == Operation::CompleteMultipartUpload {
            return self.complete(s, x, up, &target, &route).await;
        }

        // 8. normalisation
        let flow = self
            .answer_from_backend(s, x, &mut up, op, &target, &route)
            .await;
        match flow {
            Flow::KeepAlive if up.session.is_body_done() => self.forwarder.release(up).await,
            _ => drop(up),
        }
        match flow {
            Flow::KeepAlive if !body_fully_read => Flow::Close,
            f => f,
        }
    }

    async fn answer_from_backend(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        up: &mut Upstream,
        op: Operation,
        target: &Target,
        route: &Route<'_>,
    ) -> Flow {
        let upstream = up.session.resp_header().expect("response was read").clone();
        let status = upstream.status.as_u16();
        x.backend_status = Some(status);
        if op == Operation::CorsPreflight {
            return self.answer_preflight(s, x, up, &upstream).await;
        }
        x.backend_request_id = ["x-amz-request-id", "x-obs-request-id"]
            .iter()
            .find_map(|h| upstream.headers.get(*h))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let limit = self.cfg.max_buffered_response_bytes;

        // Errors and control answers are small documents: read whole and settled into HCP's
        // answer, so that the status can follow the code. Object data streams.
        if normalize::is_error_status(status) || (op.result_root().is_some() && status == 200) {
            let body = forward::read_whole_body(&mut up.session, limit).await;
            let location = self.client_location(s, target);
            return match self.settle(x, &upstream, body, op, target, route, &location) {
                Ok(doc) => {
                    let mut resp =
                        normalize::success_header(&upstream, &x.request_id, &self.cfg.host_id);
                    resp.remove_header(&http::header::TRANSFER_ENCODING);
                    resp.insert_header(http::header::CONTENT_LENGTH, doc.len().to_string())
                        .expect("length");
                    x.status = status;
                    x.bytes_out = doc.len() as u64;
                    if s.write_response_header(Box::new(resp)).await.is_err()
                        || s.write_response_body(doc, true).await.is_err()
                    {
                        return Flow::Abort;
                    }
                    Flow::KeepAlive
                }
                Err(err) => self.answer(s, x, err).await,
            };
        }

        // A precondition the backend did not evaluate still gets HCP's answer.
        if (200..300).contains(&status)
            && matches!(op, Operation::GetObject | Operation::HeadObject)
        {
            match normalize::precondition(s.req_header(), &upstream) {
                normalize::Precondition::Holds => {}
                normalize::Precondition::Failed => {
                    return self
                        .answer(s, x, HcpError::new(HcpCode::PreconditionFailed))
                        .await
                }
                normalize::Precondition::NotModified => {
                    let mut resp =
                        normalize::success_header(&upstream, &x.request_id, &self.cfg.host_id);
                    resp.set_status(304).expect("304");
                    for h in [
                        http::header::CONTENT_LENGTH,
                        http::header::CONTENT_TYPE,
                        http::header::CONTENT_RANGE,
                        http::header::TRANSFER_ENCODING,
                    ] {
                        resp.remove_header(&h);
                    }
                    x.status = 304;
                    x.code = Some(HcpCode::PreconditionFailed);
                    if s.write_response_header(Box::new(resp)).await.is_err()
                        || s.finish_body().await.is_err()
                    {
                        return Flow::Abort;
                    }
                    return Flow::KeepAlive;
                }
            }
        }

        // Everything else streams.
        let mut resp = normalize::success_header(&upstream, &x.request_id, &self.cfg.host_id);
        let bodiless = s.req_header().method == http::Method::HEAD || matches!(status, 204 | 304);
        if !bodiless
            && !resp.headers.contains_key(http::header::CONTENT_LENGTH)
            && !resp.headers.contains_key(http::header::TRANSFER_ENCODING)
        {
            resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")
                .expect("static");
        }
        x.status = status;
        if s.write_response_header(Box::new(resp)).await.is_err() {
            return Flow::Abort;
        }
        if bodiless {
            return if s.finish_body().await.is_ok() {
                Flow::KeepAlive
            } else {
                Flow::Abort
            };
        }
        loop {
            match up.session.read_body_ref().await {
                Ok(Some(chunk)) => {
                    x.bytes_out += chunk.len() as u64;
                    // HTTP/1 writes from the backend's read buffer as it is; only the generic
                    // session interface needs an owned copy of each piece.
                    let sent = match &mut *s {
                        ServerSession::H1(h1) => h1.write_body(chunk).await.map(|_| ()),
                        other => {
                            other
                                .write_response_body(Bytes::copy_from_slice(chunk), false)
                                .await
                        }
                    };
                    if sent.is_err() {
                        x.cause = Some("client went away during the response".into());
                        return Flow::Abort;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    x.cause = Some(format!("backend failed mid-response: {e}"));
                    return Flow::Abort;
                }
            }
        }
        if s.finish_body().await.is_err() {
            return Flow::Abort;
        }
        Flow::KeepAlive
    }

    /// The backend account's canonical id (the owner of everything the gateway stores there),
    /// for ACL documents that name the tenant's id. Read once per backend from a bucket ACL.
    async fn backend_owner(&self, target: &Target, route: &Route<'_>) -> Option<String> {
        if let Some(id) = self.backend_owners.get(&route.backend.name) {
            return Some(id);
        }
        let bucket = Target {
            raw_key: None,
            ..target.clone()
        };
        let params = Params::default().with("acl", "");
        let (header, body) = self
            .backend_call(Operation::GetBucketAcl, params, &bucket, route)
            .await?;
        let id = acl::owner_id(&body).filter(|_| header.status == 200)?;
        self.backend_owners
            .insert(route.backend.name.clone(), id.clone());
        Some(id)
    }

    /// A CORS preflight's answer: the backend's Access-Control-* headers when its CORS
    /// configuration allows the origin and method, otherwise one and the same 403 whatever the
    /// reason (no such bucket, no CORS configuration, a refused origin), so that a preflight
    /// tells nothing about what exists.
    async fn answer_preflight(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        up: &mut Upstream,
        upstream: &ResponseHeader,
    ) -> Flow {
        let _ = forward::read_whole_body(&mut up.session, 64 * 1024).await;
        if upstream.status.as_u16() != 200 {
            x.cause = Some(format!(
                "preflight refused by the backend ({})",
                upstream.status.as_u16()
            ));
            return self.answer(s, x, preflight_refused()).await;
        }
        let mut resp = ResponseHeader::build(200, Some(8)).expect("200");
        for (name, value) in upstream.headers.iter() {
            if name.as_str().starts_with("access-control-") || name == http::header::VARY {
                resp.append_header(name.clone(), value.clone())
                    .expect("valid header");
            }
        }
        resp.insert_header(http::header::CONTENT_LENGTH, "0")
            .expect("static");
        normalize::finish_headers(&mut resp, false, &x.request_id, &self.cfg.host_id);
        x.status = 200;
        if s.write_response_header(Box::new(resp)).await.is_err() || s.finish_body().await.is_err()
        {
            return Flow::Abort;
        }
        Flow::KeepAlive
    }

    /// Turns a buffered backend answer into HCP's: the normalised document for a success, or
    /// the HCP error (including errors a backend hides in a 200, and copies answered without an
    /// ETag, which OBS documents as failures).
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        x: &mut Exchange,
        upstream: &ResponseHeader,
        body: Result<Vec<u8>, pingora::BError>,
        op: Operation,
        target: &Target,
        route: &Route<'_>,
        location: &str,
    ) -> Result<Bytes, HcpError> {
        let status = upstream.status.as_u16();
        let body = body.map_err(|e| {
            x.cause = Some(format!("reading the backend's answer: {e}"));
            if e.etype() == &pingora::ErrorType::ReadTimedout {
                HcpError::new(HcpCode::ServiceUnavailable)
            } else {
                // Oversized, or cut off: nothing HCP could answer with.
                HcpError::new(HcpCode::InternalError)
            }
        })?;
        let hidden = status == 200 && op.may_hide_error() && body_root_is_error(&body);
        if normalize::is_error_status(status) || hidden {
            let backend_err = normalize::read_backend_error(upstream, &body);
            x.backend_code = backend_err.code.clone();
            if x.backend_request_id.is_none() {
                x.backend_request_id = backend_err.request_id.clone();
            }
            let effective = if hidden { 500 } else { status };
            let mapped = normalize::map_backend_error(
                route.backend.dialect,
                effective,
                &backend_err,
                op,
                target.bucket.as_deref(),
                x.key.as_deref(),
            );
            let err = if mapped.code == HcpCode::NoSuchUpload
                && op == Operation::UploadPartCopy
                && x.upload_confirmed
            {
                // Seed 000: completed or aborted while the copy ran.
                HcpError::new(HcpCode::OperationAborted)
                    .with_message("The multipart upload was completed or aborted while the part was being copied.")
            } else if mapped.code == HcpCode::PreconditionFailed && x.overwrite_guarded {
                // The gateway's own If-None-Match: the name exists (rule 41).
                name_exists()
            } else {
                mapped
            };
            self.metrics
                .code_rewrites
                .with_label_values(&[
                    &route.backend.name,
                    backend_err.code.as_deref().unwrap_or("-"),
                    err.code.as_str(),
                ])
                .inc();
            if err.code == HcpCode::InternalError {
                tracing::warn!(request_id = %x.request_id, backend = %route.backend.name, backend_status = status,
                    backend_code = ?backend_err.code, backend_message = ?backend_err.message, "backend error mapped to InternalError");
            }
            return Err(err);
        }
        if matches!(op, Operation::CopyObject | Operation::UploadPartCopy)
            && !normalize::has_element(&body, b"ETag")
        {
            x.cause = Some("copy answered 200 without an ETag".into());
            return Err(
                HcpError::new(HcpCode::InternalError).with_message("The copy did not complete.")
            );
        }
        let scope = uploads::Scope {
            tenant: &target.tenant,
            bucket: target.bucket.as_deref().unwrap_or_default(),
        };
        let upload_id = |backend_id: &str| match op {
            Operation::CreateMultipartUpload => Some(self.upload_ids.issue(
                scope,
                x.access_key.as_deref().unwrap_or_default(),
                backend_id,
            )),
            Operation::ListParts => x.client_upload_id.clone(),
            Operation::ListMultipartUploads => Some(self.upload_ids.listed(scope, backend_id)),
            _ => None,
        };
        let rewrites = normalize::Rewrites {
            location,
            upload_id: &upload_id,
            pretty: x.pretty,
        };
        normalize::rewrite_xml(&body, op, route, &rewrites).ok_or_else(|| {
            x.cause = Some("unparsable backend XML answer".into());
            HcpError::new(HcpCode::InternalError)
        })
    }

    /// CompleteMultipartUpload may take long at the backend. Until `complete_keepalive_after` HCP's
    /// statuses apply as usual; after it the gateway commits a 200 and sends whitespace every
    /// second so that clients and proxies keep the connection, then the result or the Error
    /// document.
    async fn complete(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        mut up: Upstream,
        target: &Target,
        route: &Route<'_>,
    ) -> Flow {
        let op = Operation::CompleteMultipartUpload;
        let mut committed = false;
        up.session.read_timeout = Some(self.cfg.complete_timeout);
        let read = {
            let response = up.session.read_response();
            tokio::pin!(response);
            let start = tokio::time::Instant::now() + self.cfg.complete_keepalive_after;
            let mut ticks = tokio::time::interval_at(start, std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    r = &mut response => break r,
                    _ = ticks.tick() => {
                        if !committed {
                            let mut resp = ResponseHeader::build(200, Some(12)).expect("200");
                            resp.insert_header(http::header::CONTENT_TYPE, "application/xml;charset=UTF-8").expect("static");
                            resp.insert_header(http::header::TRANSFER_ENCODING, "chunked").expect("static");
                            normalize::finish_headers(&mut resp, false, &x.request_id, &self.cfg.host_id);
                            if s.write_response_header(Box::new(resp)).await.is_err() {
                                return Flow::Abort;
                            }
                            committed = true;
                            x.status = 200;
                        }
                        if s.write_response_body(Bytes::from_static(b" "), false).await.is_err() {
                            return Flow::Abort;
                        }
                    }
                }
            }
        };
        if !committed {
            return match read {
                Ok(_) => {
                    let flow = self
                        .answer_from_backend(s, x, &mut up, op, target, route)
                        .await;
                    if matches!(flow, Flow::KeepAlive) && up.session.is_body_done() {
                        self.forwarder.release(up).await;
                    }
                    flow
                }
                Err(e) => self.backend_unreachable(s, x, &e.to_string()).await,
            };
        }
        // The 200 is on its way: whatever happens now goes into the body.
        let location = self.client_location(s, target);
        let settled = match read {
            Ok(_) => {
                let upstream = up.session.resp_header().expect("response was read").clone();
                x.backend_status = Some(upstream.status.as_u16());
                let body =
                    forward::read_whole_body(&mut up.session, self.cfg.max_buffered_response_bytes)
                        .await;
                self.settle(x, &upstream, body, op, target, route, &location)
            }
            Err(e) => {
                x.cause = Some(format!("backend failed during a long complete: {e}"));
                Err(HcpError::new(HcpCode::ServiceUnavailable))
            }
        };
        let doc = match settled {
            Ok(doc) => doc,
            Err(err) => {
                x.code = Some(err.code);
                err.to_xml(&x.request_id, &self.cfg.host_id, x.pretty)
            }
        };
        let doc = normalize::without_declaration(doc);
        x.bytes_out = doc.len() as u64;
        if s.write_response_body(doc, true).await.is_err() {
            return Flow::Abort;
        }
        Flow::KeepAlive
    }

    /// Writes that must not replace an existing object: HCP's rule 41 on tenants with
    /// `overwrite = "refuse-unversioned"` (409 when the name exists as an object or a folder and
    /// the bucket is not versioned), and `If-None-Match: *` for backends without conditional
    /// writes (412). A backend with conditional writes refuses an existing object atomically;
    /// otherwise a HEAD checks first, and a writer racing between check and write is not caught.
    async fn check_overwrite(
        &self,
        req: &pingora::http::RequestHeader,
        op: Operation,
        target: &Target,
        route: &Route<'_>,
    ) -> Result<Overwrite, HcpError> {
        if !matches!(
            op,
            Operation::PutObject | Operation::CopyObject | Operation::CompleteMultipartUpload
        ) {
            return Ok(Overwrite::Unguarded);
        }
        let client_create_only = req
            .headers
            .get(http::header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes().trim_ascii() == b"*");
        let create_only = client_create_only && !route.backend.conditional_writes;
        let bucket = Target {
            raw_key: None,
            ..target.clone()
        };
        let refuse = route.tenant.overwrite == crate::config::Overwrite::RefuseUnversioned
            && !matches!(
                self.backend_call(Operation::GetBucketVersioning, Params::default().with("versioning", ""), &bucket, route).await,
                Some((h, body)) if h.status == 200
                    && String::from_utf8_lossy(&body).contains("<Status>Enabled</Status>")
            );
        if !create_only && !refuse {
            return Ok(Overwrite::Unguarded);
        }
        // With conditional writes the backend checks the object itself; a client's own
        // If-None-Match then stays the client's (412).
        let ask_backend = refuse && route.backend.conditional_writes && !client_create_only;
        let exists = !ask_backend
            && matches!(
                self.backend_call(Operation::HeadObject, Params::default(), target, route).await,
                Some((h, _)) if h.status == 200
            );
        // The client's own precondition comes first, as HTTP evaluates preconditions.
        if client_create_only && exists {
            return Err(HcpError::new(HcpCode::PreconditionFailed));
        }
        if !refuse {
            return Ok(Overwrite::Unguarded);
        }
        let folder_exists = !exists && {
            let mut folder = target.key().unwrap_or_default();
            folder.push(b'/');
            let listing = Params::default()
                .with("list-type", "2")
                .with("max-keys", "1")
                .with("prefix", String::from_utf8_lossy(&folder));
            matches!(
                self.backend_call(Operation::ListObjectsV2, listing, &bucket, route).await,
                Some((h, body)) if h.status == 200 && normalize::has_element(&body, b"Contents")
            )
        };
        if exists || folder_exists {
            return Err(name_exists());
        }
        Ok(if ask_backend {
            Overwrite::AskBackend
        } else {
            Overwrite::Unguarded
        })
    }

    /// The backend request again, for a body the gateway rewrote: its length, digest and
    /// Content-MD5 are the new body's, and the client's checksums of the old body are dropped.
    fn resign_with_body(
        &self,
        s: &mut ServerSession,
        (op, params): (Operation, &Params),
        target: &Target,
        route: &Route<'_>,
        body: &[u8],
    ) -> pingora::http::RequestHeader {
        use base64::Engine as _;
        use md5::Digest as _;
        let req = s.req_header_mut();
        if req.headers.contains_key("content-md5") {
            let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
            req.insert_header("content-md5", md5).expect("base64");
        }
        let stale: Vec<http::HeaderName> = req
            .headers
            .keys()
            .filter(|n| {
                n.as_str().starts_with("x-amz-checksum-")
                    || n.as_str() == "x-amz-sdk-checksum-algorithm"
            })
            .cloned()
            .collect();
        for name in stale {
            req.remove_header(&name);
        }
        let digest = sigv4::sha256_hex(body);
        let client = s.req_header();
        signing::backend_request(
            signing::Outbound {
                op,
                method: &client.method,
                params,
                target,
                headers: &client.headers,
            },
            route,
            signing::BodyPlan {
                length: Some(body.len() as u64),
                framing: BodyFraming::Dechunked,
                payload_hash: &digest,
            },
            SystemTime::now(),
            &self.signing_keys,
        )
    }

    /// HCP's complete rules (docs/validation.md 29, 30, 32): a well-formed, ascending part list,
    /// and every part but the last at least HCP's and the backend's minimum size.
    async fn check_complete(
        &self,
        body: &[u8],
        upload_id: &str,
        target: &Target,
        route: &Route<'_>,
    ) -> Result<(), HcpError> {
        let parts = complete::parse(body)?;
        complete::check_order(&parts)?;
        let hcp_minimum = self.cfg.limits.min_part_bytes;
        if hcp_minimum == 0 && route.backend.min_part_bytes == 0 {
            return Ok(());
        }
        let sizes = self.part_sizes(upload_id, target, route).await;
        complete::check_sizes(
            &parts,
            |n| sizes.get(&n).copied(),
            hcp_minimum,
            route.backend.min_part_bytes,
        )
    }

    /// The sizes of an upload's parts, from ListParts at the backend. A failed listing gives what
    /// was read so far: the backend's answer to the complete itself then decides.
    async fn part_sizes(
        &self,
        upload_id: &str,
        target: &Target,
        route: &Route<'_>,
    ) -> HashMap<u32, u64> {
        let mut sizes = HashMap::new();
        let mut marker: Option<String> = None;
        for _ in 0..20 {
            let mut query = Params::default()
                .with("uploadId", upload_id)
                .with("max-parts", "1000");
            if let Some(m) = &marker {
                query.set("part-number-marker", m.as_str());
            }
            let Some((header, body)) = self
                .backend_call(Operation::ListParts, query, target, route)
                .await
            else {
                break;
            };
            if header.status != 200 {
                break;
            }
            let Some((page, next)) = complete::parse_list_parts(&body) else {
                break;
            };
            sizes.extend(page);
            match next {
                Some(n) => marker = Some(n),
                None => break,
            }
        }
        sizes
    }

    /// A small request of the gateway's own to the backend (listing parts, the size of a copy
    /// source): status and whole body, or `None` if the backend could not be reached.
    async fn backend_call(
        &self,
        op: Operation,
        params: Params,
        target: &Target,
        route: &Route<'_>,
    ) -> Option<(ResponseHeader, Vec<u8>)> {
        let method = match op {
            Operation::HeadBucket | Operation::HeadObject => http::Method::HEAD,
            _ => http::Method::GET,
        };
        let headers = http::HeaderMap::new();
        let req = signing::backend_request(
            signing::Outbound {
                op,
                method: &method,
                params: &params,
                target,
                headers: &headers,
            },
            route,
            signing::BodyPlan::NONE,
            SystemTime::now(),
            &self.signing_keys,
        );
        self.backend_exchange(req, None, route).await
    }

    /// Sends a signed request with a small body held in memory; status and whole answer.
    async fn backend_exchange(
        &self,
        req: pingora::http::RequestHeader,
        body: Option<&[u8]>,
        route: &Route<'_>,
    ) -> Option<(ResponseHeader, Vec<u8>)> {
        let head = req.method == http::Method::HEAD;
        let mut up = self.forwarder.connect(route.backend).await.ok()?;
        self.count_connection(route.backend, up.reused);
        self.metrics
            .backend_requests
            .with_label_values(&[&route.backend.name])
            .inc();
        up.session.write_request_header(Box::new(req)).await.ok()?;
        if let Some(body) = body {
            up.session.write_body(body).await.ok()?;
        }
        up.session.finish_body().await.ok()?;
        up.session.read_response().await.ok()?;
        let header = up.session.resp_header()?.clone();
        let body = if head {
            Vec::new()
        } else {
            forward::read_whole_body(&mut up.session, self.cfg.max_buffered_response_bytes)
                .await
                .ok()?
        };
        if up.session.is_body_done() {
            self.forwarder.release(up).await;
        }
        Some((header, body))
    }

    /// Seed 000's UploadPartCopy rules that need backend state: the upload must exist before the
    /// copy (so that its disappearance during the copy can be told apart, 409), the range must
    /// start inside the source, and the copy-source conditions must hold (412). The source is
    /// read with one HEAD, cached briefly.
    async fn check_part_copy(
        &self,
        req: &pingora::http::RequestHeader,
        params: &Params,
        target: &Target,
        route: &Route<'_>,
    ) -> Result<(), HcpError> {
        let upload_id = params.get("uploadId").unwrap_or_default();
        let query = Params::default()
            .with("uploadId", upload_id)
            .with("max-parts", "1");
        if let Some((header, _)) = self
            .backend_call(Operation::ListParts, query, target, route)
            .await
        {
            if header.status == 404 {
                return Err(HcpError::new(HcpCode::NoSuchUpload));
            }
        }
        let range_start = req
            .headers
            .get("x-amz-copy-source-range")
            .and_then(|v| v.to_str().ok())
            .and_then(validation::copy_range)
            .map(|(first, _)| first);
        let conditional = req
            .headers
            .keys()
            .any(|n| n.as_str().starts_with("x-amz-copy-source-if-"));
        let Some(source) = req
            .headers
            .get("x-amz-copy-source")
            .filter(|_| range_start.is_some() || conditional)
        else {
            return Ok(());
        };
        let Some(source) = signing::CopySource::parse(source.as_bytes()) else {
            return Ok(());
        };
        let mut raw_key = String::new();
        sigv4::uri_encode(&source.key, true, &mut raw_key);
        let source_target = Target {
            tenant: target.tenant.clone(),
            bucket: Some(source.bucket.clone()),
            raw_key: Some(raw_key.into_bytes()),
            virtual_host: false,
        };
        let mut head_params = Params::default();
        if let Some(v) = &source.version_id {
            head_params.set("versionId", v.as_str());
        }
        // Keyed by the backend's bucket name: tenants may use the same client names.
        let cache_key = format!(
            "{}\n{}\n{:?}\n{:?}",
            route.backend.name,
            routing::backend_bucket_name(route.tenant, &source.bucket),
            source_target.raw_key,
            source.version_id
        );
        let cached = self.source_heads.get(&cache_key);
        self.metrics
            .cache_lookup("copy_source_head", cached.is_some());
        let head = match cached {
            Some(head) => head,
            None => {
                let mut source_route =
                    routing::route(route.tenant, Some(route.backend), &source_target)?;
                source_route.credentials = route.credentials.clone();
                match self
                    .backend_call(
                        Operation::HeadObject,
                        head_params,
                        &source_target,
                        &source_route,
                    )
                    .await
                {
                    Some((header, _)) if header.status == 200 => {
                        let head = Arc::new(header);
                        self.source_heads.insert(cache_key, head.clone());
                        head
                    }
                    // A missing or unreadable source is the backend's to answer.
                    _ => return Ok(()),
                }
            }
        };
        if conditional
            && normalize::precondition_with(req, "x-amz-copy-source-", &head)
                != normalize::Precondition::Holds
        {
            return Err(HcpError::new(HcpCode::PreconditionFailed));
        }
        let size = head
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(first), Some(size)) = (range_start, size) {
            if first >= size {
                return Err(HcpError::new(HcpCode::InvalidArgument).with_message(
                    "The copy range starts at or beyond the end of the source object.",
                ));
            }
        }
        Ok(())
    }

    /// The URL HCP reports as an object's location: the client's own view of it.
    fn client_location(&self, s: &ServerSession, target: &Target) -> String {
        let host = s
            .req_header()
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let key = target
            .raw_key
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        if target.virtual_host {
            format!("http://{host}/{key}")
        } else {
            format!(
                "http://{host}/{}/{key}",
                target.bucket.as_deref().unwrap_or_default()
            )
        }
    }

    /// The backend could not be reached or did not answer: 503, and the cause only in the log.
    async fn backend_unreachable(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        cause: &str,
    ) -> Flow {
        x.cause = Some(cause.to_string());
        tracing::warn!(request_id = %x.request_id, backend = %x.backend, "backend unavailable: {cause}");
        self.answer(s, x, HcpError::new(HcpCode::ServiceUnavailable))
            .await
    }

    /// Answers an error found before the body was read, then deals with the unread body.
    async fn answer_early(&self, s: &mut ServerSession, x: &mut Exchange, err: HcpError) -> Flow {
        if !self.write_error(s, x, err).await {
            return Flow::Abort;
        }
        if s.is_body_empty() || s.is_body_done() {
            return Flow::KeepAlive;
        }
        // A client waiting for 100-continue sends no body, and a body larger than the drain limit
        // is not worth reading: either way the connection closes.
        let declared = s
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if is_expect_continue(s) || declared.is_some_and(|n| n > DRAIN_LIMIT) {
            return Flow::Close;
        }
        Flow::Drain
    }

    /// Reads and discards what is left of a refused request's body: at most `DRAIN_LIMIT`
    /// bytes within `DRAIN_TIME` in all (no place of `max_concurrent_requests` is held).
    async fn drain(&self, s: &mut ServerSession) -> Flow {
        let read_all = async {
            let mut drained = 0usize;
            while drained <= DRAIN_LIMIT {
                match s.read_request_body().await {
                    Ok(Some(chunk)) => drained += chunk.len(),
                    Ok(None) => return Flow::KeepAlive,
                    Err(_) => return Flow::Close,
                }
            }
            Flow::Close
        };
        tokio::time::timeout(DRAIN_TIME.min(self.cfg.client_body_timeout), read_all)
            .await
            .unwrap_or(Flow::Close)
    }

    /// Answers an error. A request body that was not read to its end leaves bytes on the
    /// connection, so it closes rather than being reused.
    async fn answer(&self, s: &mut ServerSession, x: &mut Exchange, err: HcpError) -> Flow {
        if !self.write_error(s, x, err).await {
            return Flow::Abort;
        }
        if !s.is_body_empty() && !s.is_body_done() {
            return Flow::Close;
        }
        Flow::KeepAlive
    }

    /// Writes an HCP error document (headers only for HEAD); false if the client is gone.
    async fn write_error(&self, s: &mut ServerSession, x: &mut Exchange, err: HcpError) -> bool {
        x.status = err.status;
        x.code = Some(err.code);
        let body = err.to_xml(&x.request_id, &self.cfg.host_id, x.pretty);
        let mut resp: ResponseHeader =
            normalize::error_header(&err, body.len(), &x.request_id, &self.cfg.host_id);
        if let Some(id) = x.backend_request_id.as_deref() {
            let _ = resp.insert_header(normalize::BACKEND_REQUEST_ID, id);
        }
        if s.write_response_header(Box::new(resp)).await.is_err() {
            return false;
        }
        // The request head may not have been parsed at all (malformed requests are answered
        // too); the summary names the method when it was.
        if s.request_summary().starts_with("HEAD ") {
            return s.finish_body().await.is_ok();
        }
        x.bytes_out = body.len() as u64;
        s.write_response_body(body, true).await.is_ok()
    }

    /// Over `max_concurrent_requests` (overall or per client): HCP's overload answer, 503
    /// ServiceUnavailable with Retry-After, sent before anything else is done; the connection
    /// closes, since the request's body (if any) is not read.
    async fn refuse_overload(
        &self,
        s: &mut ServerSession,
        limit: crate::admission::Refused,
        started: Instant,
    ) {
        self.metrics
            .overload_refusals
            .with_label_values(&[limit.name()])
            .inc();
        let cause = format!("{} concurrency limit", limit.name());
        let err = HcpError::new(HcpCode::ServiceUnavailable);
        self.refuse(s, err, Some(cause), started).await;
    }

    /// A request whose header section pingora cannot accept (a Content-Length that is empty,
    /// negative or given twice with different values, a control character in a header value,
    /// broken framing), or that is larger than `limits.max_header_bytes`, gets HCP's 400 and
    /// the connection closes: there is no telling where the next request would begin.
    async fn refuse_malformed(&self, s: &mut ServerSession, message: &str) {
        let err = HcpError::new(HcpCode::InvalidArgument).with_message(message.to_string());
        self.refuse(s, err, None, Instant::now()).await;
    }

    /// Answers a request refused before it was looked at, and closes the connection.
    async fn refuse(
        &self,
        s: &mut ServerSession,
        err: HcpError,
        cause: Option<String>,
        started: Instant,
    ) {
        let mut x = Exchange {
            request_id: new_request_id(),
            cause,
            ..Exchange::default()
        };
        s.set_keepalive(None);
        let _ = self.write_error(s, &mut x, err).await;
        self.record(&x, started);
    }

    fn record(&self, x: &Exchange, started: Instant) {
        let elapsed = started.elapsed();
        let op = x.operation.map_or("Unknown", Operation::name);
        let code = x.code.map_or("", HcpCode::as_str);
        self.metrics
            .requests
            .with_label_values(&[op, &x.tenant, &x.backend, &x.status.to_string(), code])
            .inc();
        self.metrics
            .request_seconds
            .with_label_values(&[op])
            .observe(elapsed.as_secs_f64());
        if let Some(backend) = x.backend_elapsed {
            self.metrics
                .backend_seconds
                .with_label_values(&[&x.backend, op])
                .observe(backend.as_secs_f64());
        }
        self.metrics
            .bytes_received
            .with_label_values(&[op])
            .inc_by(x.bytes_in);
        self.metrics
            .bytes_sent
            .with_label_values(&[op])
            .inc_by(x.bytes_out);
        // Every field a client can influence is quoted and escaped in the text format, so that
        // a key holding `" status=200` or a newline cannot forge fields or lines (the JSON
        // format escapes strings itself).
        let text = self.cfg.log_format == crate::config::LogFormat::Text;
        let q = |v: &str| -> String {
            if text {
                format!("{v:?}")
            } else {
                v.to_string()
            }
        };
        tracing::info!(
            target: "access",
            request_id = %x.request_id,
            access_key = %q(x.access_key.as_deref().unwrap_or("-")),
            auth = x.scheme,
            tenant = %q(&x.tenant),
            operation = op,
            bucket = %q(x.bucket.as_deref().unwrap_or("-")),
            key = %q(&logged_key(x.key.as_deref(), self.cfg.log_keys)),
            status = x.status,
            code = code,
            backend = %x.backend,
            backend_status = x.backend_status.unwrap_or(0),
            backend_code = %q(x.backend_code.as_deref().unwrap_or("")),
            backend_request_id = %q(x.backend_request_id.as_deref().unwrap_or("")),
            bytes_in = x.bytes_in,
            bytes_out = x.bytes_out,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            cause = %q(x.cause.as_deref().unwrap_or("")),
        );
    }
}

/// Authorisation: the identity's grants (an anonymous caller's are the tenant's anonymous
/// grants) must allow the operation on its bucket, and reading the source of a copy.
fn authorize(
    identity: &Identity,
    tenant: &crate::config::Tenant,
    op: Operation,
    req: &pingora::http::RequestHeader,
    target: &Target,
) -> Result<(), HcpError> {
    if op == Operation::CorsPreflight {
        return Ok(());
    }
    let grants = match identity.principal() {
        Principal::User(user) => {
            access::check_tenant(user, identity.scheme(), &tenant.name)?;
            &user.grants
        }
        Principal::Anonymous if access::is_multipart(op) => {
            return Err(
                access::denied().with_message("Multipart uploads require an authenticated user.")
            )
        }
        Principal::Anonymous => &tenant.anonymous,
    };
    access::check(
        grants,
        &tenant.name,
        target.bucket.as_deref(),
        access::required(op, &req.method),
    )?;
    if let Some(also) = access::required_by_headers(op, &req.headers) {
        access::check(grants, &tenant.name, target.bucket.as_deref(), Some(also))
            .map_err(|e| e.with_message("Setting an ACL needs the write-acl permission."))?;
    }
    if matches!(op, Operation::CopyObject | Operation::UploadPartCopy) {
        if let Some(source) = req.headers.get("x-amz-copy-source") {
            let (bucket, _) = signing::split_copy_source(source.as_bytes());
            access::check(
                grants,
                &tenant.name,
                Some(&bucket),
                Some(access::Permission::Read),
            )?;
        }
    }
    Ok(())
}

/// An object key as the access log shows it (`server.log_keys`).
fn logged_key(key: Option<&str>, how: crate::config::LogKeys) -> String {
    use crate::config::LogKeys;
    match (key, how) {
        (None, _) | (Some(_), LogKeys::Omit) => "-".into(),
        (Some(k), LogKeys::Full) => k.to_string(),
        (Some(k), LogKeys::Hash) => sigv4::sha256_hex(k.as_bytes())[..16].to_string(),
    }
}

/// A refused CORS preflight, the same whatever the reason.
fn preflight_refused() -> HcpError {
    HcpError::new(HcpCode::AccessDenied)
        .with_message("CORS is not enabled for this origin, method and headers on this bucket.")
}

/// Rule 41's answer.
fn name_exists() -> HcpError {
    HcpError::new(HcpCode::OperationAborted).with_message(
        "An object or folder with this name already exists and versioning is not enabled.",
    )
}

fn is_expect_continue(s: &ServerSession) -> bool {
    s.req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Whether a 200 body is in fact an `<Error>` document (AWS on complete and copies).
fn body_root_is_error(body: &[u8]) -> bool {
    let mut reader = quick_xml::Reader::from_reader(body);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) => return e.name().as_ref() == b"Error",
            Ok(quick_xml::events::Event::Eof) | Err(_) => return false,
            _ => {}
        }
    }
}

/// The request line and header section as sent, near enough (`name: value\r\n` per header).
fn header_section_len(req: &pingora::http::RequestHeader) -> usize {
    let headers: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    req.method.as_str().len() + req.raw_path().len() + 12 + headers
}

fn new_request_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode_upper(b)
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

#[async_trait]
impl HttpServerApp for Gateway {
    async fn process_new_http(
        self: &Arc<Self>,
        mut s: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let mut shutdown = shutdown.clone();
        // An idle keep-alive connection waiting for its next request is closed at shutdown.
        // pingora times out each read, not the header section, so a client sending a byte now
        // and then would hold the connection forever: the whole section gets a deadline (the
        // idle time a keep-alive connection may wait for its next request, plus the header time).
        let header_deadline = self.cfg.keepalive + self.cfg.client_header_timeout;
        let read = tokio::select! {
            r = tokio::time::timeout(header_deadline, s.read_request()) => match r {
                Ok(r) => r,
                Err(_) => {
                    self.metrics
                        .client_timeouts
                        .with_label_values(&["header"])
                        .inc();
                    return None;
                }
            },
            _ = until_shutdown(&mut shutdown) => return None,
        };
        match read {
            Ok(true) => {}
            Err(e) if e.etype() == &pingora::ErrorType::InvalidHTTPHeader => {
                Box::pin(self.refuse_malformed(&mut s, "The request header section is malformed."))
                    .await;
                return None;
            }
            _ => return None,
        }
        let limit = self.cfg.limits.max_header_bytes;
        if limit > 0 && header_section_len(s.req_header()) > limit {
            let message = format!("The request header section is larger than {limit} bytes.");
            Box::pin(self.refuse_malformed(&mut s, &message)).await;
            return None;
        }
        let started = Instant::now();
        let client = s.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        let permit = match self.admission.admit(client) {
            Ok(permit) => permit,
            Err(limit) => {
                Box::pin(self.refuse_overload(&mut s, limit, started)).await;
                return None;
            }
        };
        if *shutdown.borrow() {
            s.set_keepalive(None);
        } else {
            s.set_keepalive(Some(self.cfg.keepalive.as_secs()));
        }
        let mut x = Exchange {
            request_id: new_request_id(),
            pretty: s
                .req_header()
                .headers
                .get("x-hcp-pretty-print")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")),
            ..Exchange::default()
        };
        self.metrics.in_flight.inc();
        // Boxed: a connection waiting for its next request then holds only the small future of
        // reading a header, not the space serving a request needs.
        let flow = Box::pin(self.serve(&mut s, &mut x)).await;
        // The place is free once the answer is out (before the gauge drops, so that a reader
        // of the gauge never sees a place still taken).
        drop(permit);
        self.metrics.in_flight.dec();
        self.record(&x, started);
        let flow = match flow {
            Flow::Drain => Box::pin(self.drain(&mut s)).await,
            other => other,
        };
        match flow {
            Flow::Abort | Flow::Drain => None,
            Flow::Close => {
                s.set_keepalive(None);
                let _ = Box::pin(s.finish()).await;
                None
            }
            Flow::KeepAlive => {
                let settings = HttpPersistentSettings::for_session(&s);
                match Box::pin(s.finish()).await {
                    Ok(Some(stream)) => {
                        Some(ReusedHttpStream::from_reusable_stream(stream, settings))
                    }
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogKeys;

    #[test]
    fn keys_in_the_access_log_follow_the_configuration() {
        assert_eq!(logged_key(Some("a/b"), LogKeys::Full), "a/b");
        assert_eq!(logged_key(Some("a/b"), LogKeys::Omit), "-");
        let hashed = logged_key(Some("a/b"), LogKeys::Hash);
        assert_eq!(hashed.len(), 16);
        assert_eq!(hashed, &sigv4::sha256_hex(b"a/b")[..16]);
        assert_eq!(logged_key(None, LogKeys::Full), "-");
    }
}

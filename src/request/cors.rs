//! HCP's CORS, decided by the gateway: "The first CORS rule for the bucket that matches the
//! request is the rule that is applied for creating the server response headers" (manual, CORS
//! request validation) — for a preflight and for the request itself, an error answer too, by
//! the bucket's configuration as the backend keeps it (`GET ?cors`, the document the gateway
//! sent it, `validate::cors_document`). No backend's own evaluation shows through: Ceph RGW
//! applies the first rule whose origin matches (refusing a method a later rule allows) and
//! echoes the origin where HCP answers `*`; MinIO answers every origin by a global policy. A
//! backend's `Access-Control-*` headers never pass (`rewrite::passing`), nor does the client's
//! `Origin` reach a backend.
//!
//! What the rules give (manual, "Runtime response headers"): `Access-Control-Allow-Origin` —
//! `*` where the rule matches the origin by its `*` alone (an origin it names is answered as
//! named, whatever the order of its origins), else the request's origin with
//! `Access-Control-Allow-Credentials: true` and `Vary: Origin`; the rule's
//! `Access-Control-Expose-Headers`; to a preflight besides, the rule's methods, the headers
//! asked, its `Max-Age` and `Vary: Origin, Access-Control-Request-Headers,
//! Access-Control-Request-Method`. A preflight no rule allows is refused with one and the same
//! 403 whatever the reason; a request no rule allows is answered without CORS headers.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::address::Target;
use super::classify::{Operation, Params};
use super::route::Route;
use super::validate::cors_document::{self, Rule};
use super::Gateway;

/// How long a bucket's configuration, as read, decides (a change through this replica is
/// taken at once; one through another replica after this long).
const RULES_TTL: Duration = Duration::from_secs(5);

/// What the configurations kept may weigh together (bytes, roughly: a configuration may be
/// 2.5 MB).
const RULES_BYTES: u64 = 32 * 1024 * 1024;

/// Buckets' CORS rules as read from their backends (`None`: the bucket has none, or they
/// could not be read), by backend and backend bucket, each with the `generation` it was read
/// at; and for each bucket whose rules a request through this replica may have changed, the
/// generation of that change: a reading of the bucket's begun before it is read again — a
/// reading that raced the change is never taken for the rules after it, and no other bucket's
/// reading is touched.
pub(super) struct RulesRead {
    rules: moka::sync::Cache<String, Reading>,
    changed: moka::sync::Cache<String, u64>,
    generation: std::sync::atomic::AtomicU64,
    /// One reading of a bucket's rules at a time: requests that find them unread wait for
    /// the reading under way and take what it read (a flood of anonymous preflights at a
    /// bucket whose rules just expired costs one `GET ?cors`, and one document held, not one
    /// each).
    reads: super::owners::Turns,
}

/// How long a bucket's change is remembered: longer than any reading of its rules takes.
const CHANGE_KEPT: Duration = Duration::from_secs(120);

/// A bucket's rules as read, and the generation they were read at.
type Reading = (u64, Option<Arc<[Rule]>>);

impl Default for RulesRead {
    fn default() -> Self {
        RulesRead {
            rules: moka::sync::Cache::builder()
                .max_capacity(RULES_BYTES)
                .weigher(|key: &String, (_, rules): &Reading| {
                    let size: usize = rules.iter().flat_map(|r| r.iter()).map(size).sum();
                    u32::try_from(key.len() + size).unwrap_or(u32::MAX)
                })
                .time_to_live(RULES_TTL)
                .build(),
            changed: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CHANGE_KEPT)
                .build(),
            generation: std::sync::atomic::AtomicU64::new(0),
            reads: super::owners::Turns::default(),
        }
    }
}

impl RulesRead {
    /// The rules kept for `key`, unless a change through this replica came after their
    /// reading began.
    fn kept(&self, key: &String) -> Option<Option<Arc<[Rule]>>> {
        let (read_at, rules) = self.rules.get(key)?;
        let changed = self.changed.get(key);
        changed.is_none_or(|at| read_at > at).then_some(rules)
    }
}

/// Roughly the bytes a rule holds.
fn size(rule: &Rule) -> usize {
    let texts = rule
        .origins
        .iter()
        .chain(&rule.methods)
        .chain(&rule.headers)
        .chain(&rule.expose)
        .chain(&rule.id);
    texts.map(|t| t.len() + 24).sum::<usize>() + std::mem::size_of::<Rule>()
}

/// Whether `value` matches `pattern`, which may hold one `*` (without regard to case for
/// headers, `fold`).
fn matches(pattern: &str, value: &str, fold: bool) -> bool {
    let same = |a: &str, b: &str| {
        if fold {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    match pattern.split_once('*') {
        None => same(pattern, value),
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.is_char_boundary(head.len())
                && value.is_char_boundary(value.len() - tail.len())
                && same(head, &value[..head.len()])
                && same(tail, &value[value.len() - tail.len()..])
        }
    }
}

/// The first rule allowing a request from `origin` with `method` and the `asked` headers (a
/// preflight's), and whether the origin it matched is `*` (anyone's).
pub fn allowing<'r>(
    rules: &'r [Rule],
    origin: &str,
    method: &str,
    asked: &[&str],
) -> Option<(&'r Rule, bool)> {
    rules.iter().find_map(|rule| {
        // (An origin the rule names — a pattern of it — is answered as named, whatever the
        // order of its origins, which a backend may keep sorted with `*` first.)
        let named = rule
            .origins
            .iter()
            .any(|o| o != "*" && matches(o, origin, false));
        let anyone = !named && rule.origins.iter().any(|o| o == "*");
        let allowed = (named || anyone)
            && rule.methods.iter().any(|m| m == method)
            && asked
                .iter()
                .all(|h| rule.headers.iter().any(|a| matches(a, h, true)));
        allowed.then_some((rule, anyone))
    })
}

/// The headers of an answer to a request `rule` allows: `preflight` with the headers it asked
/// (as it sent them), if it is one.
pub fn headers_of(
    (rule, anyone): (&Rule, bool),
    origin: &HeaderValue,
    preflight: Option<Option<&HeaderValue>>,
) -> Vec<(HeaderName, HeaderValue)> {
    use http::header;
    let mut out = Vec::with_capacity(6);
    let text = |s: &str| HeaderValue::from_str(s).ok();
    if anyone {
        out.push((
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ));
    } else {
        out.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
        out.push((
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        ));
    }
    if let Some(expose) = (!rule.expose.is_empty())
        .then(|| text(&rule.expose.join(", ")))
        .flatten()
    {
        out.push((header::ACCESS_CONTROL_EXPOSE_HEADERS, expose));
    }
    let Some(asked) = preflight else {
        if !anyone {
            out.push((header::VARY, HeaderValue::from_static("Origin")));
        }
        return out;
    };
    if let Some(methods) = text(&rule.methods.join(", ")) {
        out.push((header::ACCESS_CONTROL_ALLOW_METHODS, methods));
    }
    if let Some(asked) = asked {
        out.push((header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone()));
    }
    if let Some(age) = rule.max_age {
        out.push((header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age)));
    }
    out.push((
        header::VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        ),
    ));
    out
}

/// The headers a preflight asks to send (`Access-Control-Request-Headers`), each trimmed;
/// `None` for a value that is no text (no rule allows what cannot be read).
pub fn asked_headers(value: Option<&HeaderValue>) -> Option<Vec<&str>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    let text = value.to_str().ok()?;
    Some(
        text.split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect(),
    )
}

impl Gateway {
    /// The bucket's CORS rules (`None`: it has none, or is not there), read from its backend
    /// and kept briefly; an `Err` where they could not be read — kept as briefly, so that
    /// preflights do not each ask a backend that cannot say (or rules it cannot read).
    pub(super) async fn bucket_cors(
        &self,
        target: &Target,
        route: &Route<'_>,
    ) -> Result<Option<Arc<[Rule]>>, String> {
        use std::sync::atomic::Ordering;
        // (MinIO keeps no bucket's rules — `PUT ?cors` is 501 there: none to ask for but
        // the tenant's, `read_bucket_cors`.)
        let minio = route.backend.dialect == crate::hcp::mapping::Dialect::Minio;
        if minio && route.tenant.cors.is_none() {
            return Ok(None);
        }
        // (No bucket, no rules: the tenant's are for its namespaces, "CORS does not support
        // tenant-level API calls".)
        let Some(bucket) = route.backend_bucket.as_deref() else {
            return Ok(None);
        };
        let key = rules_key(route, bucket);
        if let Some(rules) = self.cors_rules.kept(&key) {
            return Ok(rules);
        }
        let turn = self.cors_rules.reads.of(key.clone());
        let _turn = turn.lock().await;
        // (Read while this request waited: rules that could not be read are kept as none.)
        if let Some(rules) = self.cors_rules.kept(&key) {
            return Ok(rules);
        }
        let generation = self.cors_rules.generation.load(Ordering::Acquire);
        let read = self.read_bucket_cors(target, route).await;
        let kept = read.as_ref().ok().cloned().flatten();
        self.cors_rules.rules.insert(key, (generation, kept));
        read
    }

    /// [`Gateway::bucket_cors`] as the backend answers now (`GET ?cors`, signed with the
    /// backend's credentials, fetched where the AWS chain gives them).
    async fn read_bucket_cors(
        &self,
        target: &Target,
        route: &Route<'_>,
    ) -> Result<Option<Arc<[Rule]>>, String> {
        let mut route = Route {
            tenant: route.tenant,
            backend: route.backend,
            backend_bucket: route.backend_bucket.clone(),
            credentials: route.credentials.clone(),
        };
        self.resolve_credentials(&mut route).await?;
        let whole = Target {
            raw_key: None,
            ..target.clone()
        };
        if route.backend.dialect == crate::hcp::mapping::Dialect::Minio {
            // MinIO keeps none of a bucket's own: the tenant's apply where the bucket is.
            let read = self.backend_call(Operation::HeadBucket, Params::default(), &whole, &route);
            return match read.await {
                Some((h, _)) if h.status == 200 => Ok(route.tenant.cors.clone()),
                Some((h, _)) if h.status == 404 => Ok(None),
                other => {
                    let status = other.map(|(h, _)| h.status.as_u16());
                    Err(format!("HEAD of the bucket answered {status:?}"))
                }
            };
        }
        let params = Params::default().with("cors", "");
        let read = self.backend_call(Operation::BucketSubresource, params, &whole, &route);
        match read.await {
            Some((h, body)) if h.status == 200 => match cors_document::read_kept(&body) {
                Ok(doc) => Ok(Some(Arc::from(doc.0))),
                Err(e) => Err(format!("the bucket's CORS configuration: {e:?}")),
            },
            // A bucket without a configuration of its own takes the tenant's ("the namespace
            // inherits the tenant-level configuration"); one that is not there, none.
            Some((h, body)) if h.status == 404 => {
                let code = super::respond::rewrite::read_backend_error(&h, &body).code;
                let own_none = code.as_deref() != Some("NoSuchBucket");
                Ok(route.tenant.cors.clone().filter(|_| own_none))
            }
            other => {
                let status = other.map(|(h, _)| h.status.as_u16());
                Err(format!("GET ?cors answered {status:?}"))
            }
        }
    }

    /// After a change of the bucket's CORS configuration (or the bucket deleted or made)
    /// through this replica: the next request reads the rules again, and a reading under way
    /// is not kept.
    pub(super) fn forget_cors(&self, route: &Route<'_>) {
        if let Some(bucket) = route.backend_bucket.as_deref() {
            let key = rules_key(route, bucket);
            let at = self
                .cors_rules
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            self.cors_rules.rules.invalidate(&key);
            self.cors_rules.changed.insert(key, at);
        }
    }

    /// A browser's request refused once its user was authenticated (`Planned::Refused`):
    /// HCP's error, with the CORS headers the bucket's rules give it where it can be routed.
    pub(super) async fn refuse_browser(
        &self,
        s: &mut pingora::protocols::http::ServerSession,
        x: &mut super::Exchange,
        error: crate::hcp::errors::HcpError,
        target: Target,
    ) -> super::Flow {
        let tenant = &self.cfg.tenants[&*target.tenant];
        let route = super::route::route(tenant, self.backends.get(&tenant.backend), &target);
        if let (Some(origin), Ok(route)) = (s.req_header().headers.get(http::header::ORIGIN), route)
        {
            let origin = origin.clone();
            let method = s.req_header().method.clone();
            x.reply.cors = self
                .cors_of_request(&origin, &method, (&target, &route))
                .await;
        }
        self.answer_early(s, x, error).await
    }

    /// The CORS headers of the answer to a request from `origin` (not a preflight): those of
    /// the first rule allowing its method, none where no rule does or the rules cannot be read.
    pub(super) async fn cors_of_request(
        &self,
        origin: &HeaderValue,
        method: &http::Method,
        (target, route): (&Target, &Route<'_>),
    ) -> Vec<(HeaderName, HeaderValue)> {
        let Ok(origin_text) = origin.to_str() else {
            return Vec::new();
        };
        let rules = match self.bucket_cors(target, route).await {
            Ok(Some(rules)) => rules,
            Ok(None) => return Vec::new(),
            Err(cause) => {
                tracing::warn!(bucket = ?route.backend_bucket, %cause, "CORS rules unread: no CORS headers");
                return Vec::new();
            }
        };
        match allowing(&rules, origin_text, method.as_str(), &[]) {
            Some(allowed) => headers_of(allowed, origin, None),
            None => Vec::new(),
        }
    }
}

impl Gateway {
    /// A preflight's answer, by the bucket's rules: 200 with the headers of the first rule
    /// allowing the origin, method and headers it asks for; otherwise one and the same 403
    /// whatever the reason (no such bucket, no rules, none allowing it, rules that cannot be
    /// read), so that a preflight — anonymous — tells nothing more of what exists than the
    /// rules do (with the tenant's `cors`, a bucket there takes them, as on HCP).
    pub(super) async fn preflight(
        &self,
        s: &mut pingora::protocols::http::ServerSession,
        x: &mut super::Exchange,
        asked: (&Target, &Route<'_>),
    ) -> super::Flow {
        let headers = &s.req_header().headers;
        let origin = headers.get(http::header::ORIGIN).cloned();
        let method = headers
            .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let wanted = headers
            .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned();
        let (Some(origin), Some(method)) = (origin, method) else {
            x.cause = Some("a preflight without Origin or Access-Control-Request-Method".into());
            return self.answer(s, x, super::respond::preflight_refused()).await;
        };
        if asked
            .0
            .bucket
            .as_deref()
            .is_some_and(reserved_for_preflights)
        {
            x.cause = Some("a namespace name HCP serves no preflight for".into());
            return self.answer(s, x, super::respond::preflight_refused()).await;
        }
        let rules = match self.bucket_cors(asked.0, asked.1).await {
            Ok(Some(rules)) => rules,
            Ok(None) => {
                x.cause = Some("no CORS configuration".into());
                return self.answer(s, x, super::respond::preflight_refused()).await;
            }
            Err(cause) => {
                x.cause = Some(cause);
                return self.answer(s, x, super::respond::preflight_refused()).await;
            }
        };
        let origin_text = origin.to_str().unwrap_or_default();
        let names = asked_headers(wanted.as_ref());
        let allowed = names.and_then(|names| allowing(&rules, origin_text, &method, &names));
        let Some(allowed) = allowed else {
            x.cause = Some("no CORS rule allows the origin, method and headers".into());
            return self.answer(s, x, super::respond::preflight_refused()).await;
        };
        x.reply.cors = headers_of(allowed, &origin, Some(wanted.as_ref()));
        let mut resp = pingora::http::ResponseHeader::build(200, Some(8)).expect("200");
        resp.insert_header(http::header::CONTENT_LENGTH, "0")
            .expect("static");
        super::rewrite::finish_headers(&mut resp, false, &x.reply.id, &self.cfg.host_id);
        x.status = 200;
        if self.write_head(s, x, resp).await.is_err() || s.finish_body().await.is_err() {
            return super::Flow::Abort;
        }
        super::Flow::KeepAlive
    }
}

/// The namespace names HCP serves no preflighted CORS request for, path-style or virtual
/// (manual, "Unsupported namespace names for preflighted CORS requests") — `hs3` among them,
/// the prefix of HCP's own scheme's URLs, which a preflight, never signed, cannot tell from a
/// bucket's name.
fn reserved_for_preflights(bucket: &str) -> bool {
    const RESERVED: [&str; 6] = ["rest", "webdav", "fcfs_data", "browser", "hs3", "swift"];
    RESERVED.iter().any(|r| bucket.eq_ignore_ascii_case(r))
}

/// The key of a bucket's rules: its backend and its name there.
fn rules_key(route: &Route<'_>, bucket: &str) -> String {
    let mut key = String::with_capacity(route.backend.name.len() + 1 + bucket.len());
    key.push_str(&route.backend.name);
    key.push('\n');
    key.push_str(bucket);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> Rule {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Rule {
            origins: own(origins),
            methods: own(methods),
            headers: own(headers),
            ..Rule::default()
        }
    }

    /// The manual's example configuration: the first rule matching origin, method and headers
    /// applies — not the first whose origin matches (Ceph RGW's reading).
    #[test]
    fn the_first_rule_matching_the_whole_request_applies() {
        let rules = [
            rule(
                &["http://www.example.com"],
                &["PUT", "POST", "DELETE"],
                &["*"],
            ),
            rule(&["*"], &["GET"], &["*"]),
        ];
        let (r, anyone) = allowing(&rules, "http://www.example.com", "GET", &[]).unwrap();
        assert_eq!(
            (r.methods.as_slice(), anyone),
            (&["GET".to_string()][..], true)
        );
        let (r, anyone) = allowing(&rules, "http://www.example.com", "PUT", &["x-a"]).unwrap();
        assert_eq!((r.methods.len(), anyone), (3, false));
        assert!(allowing(&rules, "http://other.example", "PUT", &[]).is_none());
        let only = [rule(&["https://*.example"], &["GET"], &["x-amz-*"])];
        assert!(allowing(&only, "https://app.example", "GET", &["X-Amz-Date"]).is_some());
        assert!(allowing(&only, "https://app.example", "GET", &["x-other"]).is_none());
        assert!(allowing(&only, "http://app.example", "GET", &[]).is_none());
        assert!(allowing(&only, "https://.example", "GET", &[]).is_some());
        assert!(allowing(&only, "https://é.example", "GET", &[]).is_some());
        assert!(allowing(&only, "https:/", "GET", &[]).is_none());
        // A named origin is answered as named whichever comes first (RGW sorts `*` first).
        for origins in [["https://app.example", "*"], ["*", "https://app.example"]] {
            let both = [rule(&origins, &["GET"], &[])];
            let (_, anyone) = allowing(&both, "https://app.example", "GET", &[]).unwrap();
            assert!(!anyone, "{origins:?}");
            let (_, anyone) = allowing(&both, "https://other.example", "GET", &[]).unwrap();
            assert!(anyone, "{origins:?}");
        }
    }

    /// What HCP answers: `*` without credentials for anyone's rule; the origin, credentials
    /// and `Vary: Origin` otherwise; a preflight the rule's methods, the headers asked, its
    /// Max-Age and the three names of `Vary`.
    #[test]
    fn answers_say_what_hcp_says() {
        let mut r = rule(&["*"], &["GET", "PUT"], &["*"]);
        r.expose = vec!["ETag".into(), "x-amz-request-id".into()];
        r.max_age = Some(3000);
        let origin = HeaderValue::from_static("http://lgreen.example.com");
        let asked = HeaderValue::from_static("Authorization");
        let names = |h: Vec<(HeaderName, HeaderValue)>| -> Vec<(String, String)> {
            h.into_iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                .collect()
        };
        assert_eq!(
            names(headers_of((&r, true), &origin, Some(Some(&asked)))),
            [
                ("access-control-allow-origin", "*"),
                ("access-control-expose-headers", "ETag, x-amz-request-id"),
                ("access-control-allow-methods", "GET, PUT"),
                ("access-control-allow-headers", "Authorization"),
                ("access-control-max-age", "3000"),
                (
                    "vary",
                    "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
                ),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
        r.expose.clear();
        assert_eq!(
            names(headers_of((&r, false), &origin, None)),
            [
                ("access-control-allow-origin", "http://lgreen.example.com"),
                ("access-control-allow-credentials", "true"),
                ("vary", "Origin"),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
        assert_eq!(
            asked_headers(Some(&HeaderValue::from_static(" a, ,B "))),
            Some(vec!["a", "B"])
        );
        let not_text = HeaderValue::from_bytes(b"x-a, x-\xff").unwrap();
        assert_eq!(asked_headers(Some(&not_text)), None);
        assert_eq!(asked_headers(None), Some(vec![]));
    }
}

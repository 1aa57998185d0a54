//! A bucket's CORS configuration as the store keeps it, and the preflight (`OPTIONS`) answer S3
//! gives from it: the first rule matching the origin, the method and every requested header
//! allows the request; no configuration or no matching rule is 403 AccessForbidden.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use s3s::dto;
use s3s::route::S3Route;
use s3s::{s3_error, Body, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};

use super::objects::Objects;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<i32>,
}

impl Rule {
    /// Roughly the bytes it holds (what the store's reading of rules is weighed by).
    pub fn size(&self) -> usize {
        let texts = self
            .allowed_origins
            .iter()
            .chain(&self.allowed_methods)
            .chain(&self.allowed_headers)
            .chain(&self.expose_headers)
            .chain(&self.id);
        texts.map(|t| t.len() + 24).sum::<usize>() + std::mem::size_of::<Rule>()
    }
}

const METHODS: &[&str] = &["GET", "PUT", "HEAD", "POST", "DELETE"];

/// The rules of a configuration, checked as S3 checks them (methods from S3's five, at most one
/// `*` in an origin or header pattern) — as many as HCP takes (any number: its limit is the
/// document's 2.5 MB, the gateway's to judge), where S3 takes 100.
pub fn rules(config: dto::CORSConfiguration) -> S3Result<Vec<Rule>> {
    if config.cors_rules.is_empty() {
        return Err(s3_error!(MalformedXML, "A CORS configuration has a rule."));
    }
    config
        .cors_rules
        .into_iter()
        .map(|r| {
            if let Some(m) = r
                .allowed_methods
                .iter()
                .find(|m| !METHODS.contains(&m.as_str()))
            {
                return Err(s3_error!(
                    InvalidRequest,
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                ));
            }
            let patterns = r
                .allowed_origins
                .iter()
                .chain(r.allowed_headers.iter().flatten());
            if patterns.into_iter().any(|p| p.matches('*').count() > 1) {
                return Err(s3_error!(
                    InvalidRequest,
                    "A pattern holds at most one wildcard."
                ));
            }
            Ok(Rule {
                id: r.id,
                allowed_origins: r.allowed_origins,
                allowed_methods: r.allowed_methods,
                allowed_headers: r.allowed_headers.unwrap_or_default(),
                expose_headers: r.expose_headers.unwrap_or_default(),
                max_age_seconds: r.max_age_seconds,
            })
        })
        .collect()
}

pub fn answer(rules: &[Rule]) -> Vec<dto::CORSRule> {
    rules
        .iter()
        .map(|r| dto::CORSRule {
            id: r.id.clone(),
            allowed_origins: r.allowed_origins.clone(),
            allowed_methods: r.allowed_methods.clone(),
            allowed_headers: (!r.allowed_headers.is_empty()).then(|| r.allowed_headers.clone()),
            expose_headers: (!r.expose_headers.is_empty()).then(|| r.expose_headers.clone()),
            max_age_seconds: r.max_age_seconds,
        })
        .collect()
}

/// Whether `value` matches `pattern`, which may hold one `*` (case-insensitive for headers).
fn matches(pattern: &str, value: &str, fold: bool) -> bool {
    let (p, v) = if fold {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_string(), value.to_string())
    };
    match p.split_once('*') {
        None => p == v,
        Some((head, tail)) => {
            v.len() >= head.len() + tail.len() && v.starts_with(head) && v.ends_with(tail)
        }
    }
}

/// The rule allowing a request from `origin` with `method` and `headers`, if one does.
pub fn allowing<'r>(
    rules: &'r [Rule],
    origin: &str,
    method: &str,
    headers: &[&str],
) -> Option<&'r Rule> {
    rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| matches(o, origin, false))
            && r.allowed_methods.iter().any(|m| m == method)
            && headers
                .iter()
                .all(|h| r.allowed_headers.iter().any(|a| matches(a, h, true)))
    })
}

/// Answers `OPTIONS` on a bucket or object from the bucket's CORS configuration.
pub struct Preflight {
    pub objects: Arc<Objects>,
}

/// S3's refusal of a preflight: 403 AccessForbidden.
fn forbidden(message: &'static str) -> s3s::S3Error {
    let mut e =
        s3s::S3Error::with_message(s3s::S3ErrorCode::Custom("AccessForbidden".into()), message);
    e.set_status_code(StatusCode::FORBIDDEN);
    e
}

#[async_trait::async_trait]
impl S3Route for Preflight {
    fn is_match(
        &self,
        method: &Method,
        _uri: &Uri,
        _headers: &HeaderMap,
        _extensions: &mut http::Extensions,
    ) -> bool {
        method == Method::OPTIONS
    }

    /// A preflight carries no credentials of the browser's; the gateway decided to send it.
    async fn check_access(&self, _req: &mut S3Request<Body>) -> S3Result<()> {
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let bucket = req
            .uri
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (Some(origin), Some(method)) =
            (header("origin"), header("access-control-request-method"))
        else {
            return Err(s3_error!(
                InvalidRequest,
                "A preflight has Origin and Access-Control-Request-Method."
            ));
        };
        let asked = header("access-control-request-headers").unwrap_or_default();
        let asked: Vec<&str> = asked
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let objects = self.objects.clone();
        let name = bucket.clone();
        // (A broken database is the 503 every other request meets, and noted as theirs is.)
        let rules = tokio::task::spawn_blocking(move || {
            let rules = objects.bucket_cors(&name);
            objects.note(&rules);
            rules
        })
        .await
        .map_err(s3s::S3Error::internal_error)?
        .map_err(super::s3::store_error)?;
        let Some(rules) = rules.as_deref() else {
            return Err(forbidden(
                "CORSResponse: CORS is not enabled for this bucket.",
            ));
        };
        let Some(rule) = allowing(rules, &origin, &method, &asked) else {
            return Err(forbidden(
                "CORSResponse: This CORS request is not allowed. This is usually because the \
                 evalution of Origin, request method / Access-Control-Request-Method or \
                 Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            ));
        };
        Ok(allowed(rule, &origin, &asked))
    }
}

/// The preflight answer for a request `rule` allows.
fn allowed(rule: &Rule, origin: &str, asked: &[&str]) -> S3Response<Body> {
    let mut resp = S3Response::new(Body::empty());
    let h = &mut resp.headers;
    let value = |s: &str| HeaderValue::from_str(s).ok();
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    let allowed_origin = if any { "*" } else { origin };
    let mut set = |name: &'static str, v: Option<HeaderValue>| {
        if let Some(v) = v {
            h.insert(name, v);
        }
    };
    set("access-control-allow-origin", value(allowed_origin));
    set(
        "access-control-allow-methods",
        value(&rule.allowed_methods.join(", ")),
    );
    set(
        "access-control-allow-headers",
        value(&asked.join(", ")).filter(|_| !asked.is_empty()),
    );
    set(
        "access-control-expose-headers",
        value(&rule.expose_headers.join(", ")).filter(|_| !rule.expose_headers.is_empty()),
    );
    set(
        "access-control-max-age",
        rule.max_age_seconds.and_then(|s| value(&s.to_string())),
    );
    set(
        "access-control-allow-credentials",
        (!any).then(|| HeaderValue::from_static("true")),
    );
    set(
        "vary",
        Some(HeaderValue::from_static(
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        )),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> Rule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Rule {
            id: None,
            allowed_origins: v(origins),
            allowed_methods: v(methods),
            allowed_headers: v(headers),
            expose_headers: vec![],
            max_age_seconds: None,
        }
    }

    #[test]
    fn the_first_rule_matching_origin_method_and_every_header_allows() {
        let rules = vec![
            rule(&["*suffix"], &["GET"], &[]),
            rule(&["https://a.example"], &["PUT", "GET"], &["x-amz-*"]),
            rule(&["*"], &["HEAD"], &["*"]),
        ];
        assert_eq!(allowing(&rules, "bla.suffix", "GET", &[]), Some(&rules[0]));
        assert_eq!(allowing(&rules, "bla.suffix", "PUT", &[]), None);
        assert_eq!(
            allowing(&rules, "https://a.example", "GET", &["X-Amz-Date"]),
            Some(&rules[1])
        );
        assert_eq!(
            allowing(&rules, "https://a.example", "GET", &["content-md5"]),
            None
        );
        assert_eq!(
            allowing(&rules, "anything", "HEAD", &["a", "b"]),
            Some(&rules[2])
        );
        // A wildcard stands for any run, but the fixed parts do not overlap.
        assert!(!matches("ab*ba", "aba", false));
        assert!(matches("ab*ba", "abba", false));
        assert!(!matches("A*", "a", false));
    }

    #[test]
    fn configurations_are_checked_as_s3_checks_them() {
        let config = |rules: Vec<dto::CORSRule>| dto::CORSConfiguration { cors_rules: rules };
        let r = |methods: &[&str], origins: &[&str]| dto::CORSRule {
            allowed_methods: methods.iter().map(|m| m.to_string()).collect(),
            allowed_origins: origins.iter().map(|m| m.to_string()).collect(),
            allowed_headers: None,
            expose_headers: None,
            id: None,
            max_age_seconds: None,
        };
        assert!(rules(config(vec![])).is_err());
        assert!(rules(config(vec![r(&["PATCH"], &["*"])])).is_err());
        assert!(rules(config(vec![r(&["GET"], &["*a*"])])).is_err());
        let ok = rules(config(vec![r(&["GET", "PUT"], &["*.example"])])).unwrap();
        assert_eq!(answer(&ok)[0].allowed_methods, vec!["GET", "PUT"]);
    }
}

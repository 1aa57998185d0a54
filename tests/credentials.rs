//! Backend credentials from the AWS chain (`credentials = "aws"`), each source exercised with a
//! gateway process whose environment points at local files and fake endpoints on loopback: ECS
//! container credentials, IMDSv2, a shared credentials file and web identity (IRSA, through a
//! fake STS). The backend is a recorder: every request it gets must be signed with the chain's
//! keys and carry its session token, and credentials close to expiry are fetched again.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::process::Process;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CHAIN_KEY: &str = "ASIACHAINEXAMPLE";
const CHAIN_SECRET: &str = "chain/secret+EXAMPLE";

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

/// A status, extra headers and a body.
type Answer = (u16, Vec<(&'static str, String)>, String);
type Handler = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

/// A tiny HTTP/1.1 server: answers each request with `handler` and remembers it.
async fn http_server(handler: Handler) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (handler, log) = (handler.clone(), log.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let Ok(n) = conn.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let mut lines = head.lines();
                    let mut first = lines.next().unwrap().split(' ');
                    let (method, path) = (
                        first.next().unwrap().to_string(),
                        first.next().unwrap().to_string(),
                    );
                    let headers: HashMap<String, String> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let length: usize = headers
                        .get("content-length")
                        .map_or(0, |v| v.parse().unwrap());
                    if buf.len() < end + 4 + length {
                        continue;
                    }
                    buf.drain(..end + 4 + length);
                    let seen = Seen {
                        method,
                        path,
                        headers,
                    };
                    // The gateway's health probe (an unsigned `HEAD /`) is not a request of the
                    // test's.
                    let probe = seen.method == "HEAD"
                        && seen.path == "/"
                        && !seen.headers.contains_key("authorization");
                    let (status, extra, body) = if probe {
                        (200, Vec::new(), String::new())
                    } else {
                        handler(&seen)
                    };
                    if !probe {
                        log.lock().unwrap().push(seen);
                    }
                    let mut answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: application/xml\r\n",
                        body.len()
                    );
                    for (name, value) in extra {
                        answer.push_str(&format!("{name}: {value}\r\n"));
                    }
                    answer.push_str("\r\n");
                    answer.push_str(&body);
                    if conn.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// An S3 backend that answers ListBuckets and keeps every request.
async fn recorder() -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    http_server(Arc::new(|_| {
        (200, vec![], "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListAllMyBucketsResult><Owner><ID>o</ID></Owner><Buckets></Buckets></ListAllMyBucketsResult>".into())
    }))
    .await
}

/// An ISO 8601 time `seconds` from now.
fn in_seconds(seconds: u64) -> String {
    let t = time::OffsetDateTime::from(SystemTime::now() + Duration::from_secs(seconds));
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Starts a gateway process whose backend is `backend`, signing with the AWS chain, with `env`.
fn gateway(backend: SocketAddr, env: Vec<(&str, String)>, dir: tempfile::TempDir) -> Process {
    gateway_logging("warn", backend, env, dir)
}

/// [`gateway`] logging at `level`.
fn gateway_logging(
    level: &str,
    backend: SocketAddr,
    env: Vec<(&str, String)>,
    dir: tempfile::TempDir,
) -> Process {
    let config = format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"s3\"\nendpoint = \"http://{backend}\"\ncredentials = \"aws\"\nregion = \"us-east-1\"\n",
        base_config("").replace("log_level = \"warn\"", &format!("log_level = \"{level}\""))
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let mut all = vec![
        ("AWS_CONFIG_FILE", empty.display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", empty.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ];
    for (k, v) in env {
        all.retain(|(name, _)| *name != k);
        all.push((k, v));
    }
    Process::start(&config, dir, &all)
}

/// Lists buckets through the gateway process as the test user; returns the HTTP status.
async fn list_buckets(p: &Process) -> u16 {
    let (ak, sk) = keys(USER, PASSWORD);
    common::raw::send_signed(&p.s3, (&ak, &sk), "GET", "/", b"")
        .await
        .status
}

/// The request reached the backend signed with the chain's keys (the SigV4 signature verifies
/// with its secret) and with its session token, itself signed.
fn assert_signed_by_chain(seen: &Seen, token: &str) {
    let auth = &seen.headers["authorization"];
    let field = |name: &str| {
        auth.split([' ', ','])
            .find_map(|p| p.strip_prefix(name))
            .unwrap()
            .to_string()
    };
    let credential = field("Credential=");
    let mut scope = credential.splitn(2, '/');
    assert_eq!(scope.next(), Some(CHAIN_KEY), "{auth}");
    let signed_headers = field("SignedHeaders=");
    assert!(
        signed_headers
            .split(';')
            .any(|h| h == "x-amz-security-token"),
        "{auth}"
    );
    assert_eq!(seen.headers["x-amz-security-token"], token);
    let expected =
        common::raw::sigv4_signature_for(CHAIN_SECRET, &seen.method, &seen.path, |name| {
            seen.headers.get(name).map(String::as_str)
        });
    assert_eq!(
        Some(field("Signature=")),
        expected,
        "signed with the chain's secret"
    );
}

/// EKS Pod Identity (and ECS) container credentials, authorised with the token file the pod
/// gets; credentials that expire within five minutes are fetched again for the next request, so
/// each request here fetches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_credentials_and_refresh_before_expiry() {
    let (backend, requests) = recorder().await;
    let fetches = Arc::new(Mutex::new(0u32));
    let counter = fetches.clone();
    let (endpoint, seen) = http_server(Arc::new(move |req: &Seen| {
        assert_eq!(req.headers.get("authorization").map(String::as_str), Some("pod-identity-token"));
        let mut n = counter.lock().unwrap();
        *n += 1;
        (200, vec![], format!(
            r#"{{"AccessKeyId":"{CHAIN_KEY}","SecretAccessKey":"{CHAIN_SECRET}","Token":"session-{n}","Expiration":"{}"}}"#,
            in_seconds(120)
        ))
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token, "pod-identity-token").unwrap();
    let p = gateway(
        backend,
        vec![
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("http://{endpoint}/v1/credentials"),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token.display().to_string(),
            ),
        ],
        dir,
    );
    assert_eq!(list_buckets(&p).await, 200, "{:?}", p.lines());
    assert_eq!(list_buckets(&p).await, 200);
    let requests = requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_signed_by_chain(&requests[0], "session-1");
    assert_signed_by_chain(&requests[1], "session-2");
    assert_eq!(
        *fetches.lock().unwrap(),
        2,
        "refetched before expiry: {:?}",
        seen.lock().unwrap()
    );
}

/// IMDSv2: a session token first, then the role's credentials with it; credentials valid for
/// hours are fetched once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_metadata_v2() {
    let (backend, requests) = recorder().await;
    let (imds, seen) = http_server(Arc::new(|req: &Seen| {
        if req.method == "PUT" && req.path == "/latest/api/token" {
            return (200, vec![("x-aws-ec2-metadata-token-ttl-seconds", "21600".into())], "imds-session".into());
        }
        if req.headers.get("x-aws-ec2-metadata-token").map(String::as_str) != Some("imds-session") {
            return (401, vec![], String::new());
        }
        match req.path.as_str() {
            "/latest/meta-data/iam/security-credentials/" => (200, vec![], "gateway-role".into()),
            "/latest/meta-data/iam/security-credentials/gateway-role" => (200, vec![], format!(
                r#"{{"Code":"Success","LastUpdated":"{}","Type":"AWS-HMAC","AccessKeyId":"{CHAIN_KEY}","SecretAccessKey":"{CHAIN_SECRET}","Token":"imds-token","Expiration":"{}"}}"#,
                in_seconds(0),
                in_seconds(6 * 3600)
            )),
            _ => (404, vec![], String::new()),
        }
    }))
    .await;
    let p = gateway(
        backend,
        vec![
            ("AWS_EC2_METADATA_DISABLED", "false".into()),
            (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                format!("http://{imds}"),
            ),
        ],
        tempfile::tempdir().unwrap(),
    );
    assert_eq!(list_buckets(&p).await, 200, "{:?}", p.lines());
    assert_eq!(list_buckets(&p).await, 200);
    let requests = requests.lock().unwrap().clone();
    assert_signed_by_chain(&requests[0], "imds-token");
    assert_signed_by_chain(&requests[1], "imds-token");
    let credential_reads = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.ends_with("/gateway-role"))
        .count();
    assert_eq!(credential_reads, 1, "long-lived credentials are reused");
}

/// A shared credentials file (a mounted profile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_credentials_file() {
    let (backend, requests) = recorder().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!("[default]\naws_access_key_id = {CHAIN_KEY}\naws_secret_access_key = {CHAIN_SECRET}\naws_session_token = profile-token\n"),
    )
    .unwrap();
    let p = gateway(
        backend,
        vec![("AWS_SHARED_CREDENTIALS_FILE", file.display().to_string())],
        dir,
    );
    assert_eq!(list_buckets(&p).await, 200, "{:?}", p.lines());
    assert_signed_by_chain(&requests.lock().unwrap()[0], "profile-token");
}

/// Web identity (IRSA): the projected token is exchanged at STS for role credentials — logged
/// at `trace`, with neither the token nor the role's keys in the log, even where the SDK is
/// told to print the bodies it calls sensitive (`LOG_SENSITIVE_BODIES`, an operator's
/// debugging switch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_through_sts() {
    let (backend, requests) = recorder().await;
    let (sts, seen) = http_server(Arc::new(|_req: &Seen| {
        (200, vec![], format!(
            "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{CHAIN_KEY}</AccessKeyId><SecretAccessKey>{CHAIN_SECRET}</SecretAccessKey><SessionToken>irsa-token</SessionToken><Expiration>{}</Expiration></Credentials><SubjectFromWebIdentityToken>system:serviceaccount:apps:gateway</SubjectFromWebIdentityToken><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/gateway/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>",
            in_seconds(3600)
        ))
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJ.projected.token").unwrap();
    let p = gateway_logging(
        "trace",
        backend,
        vec![
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/gateway".into(),
            ),
            ("AWS_ROLE_SESSION_NAME", "gateway".into()),
            ("AWS_ENDPOINT_URL_STS", format!("http://{sts}")),
            ("AWS_REGION", "us-east-1".into()),
            ("LOG_SENSITIVE_BODIES", "true".into()),
            // (An operator's own directive for the SDK does not lift it either.)
            ("RUST_LOG", "trace,aws_smithy_runtime=trace".into()),
        ],
        dir,
    );
    assert_eq!(list_buckets(&p).await, 200, "{:?}", p.lines());
    assert_signed_by_chain(&requests.lock().unwrap()[0], "irsa-token");
    assert_eq!(seen.lock().unwrap().len(), 1, "one exchange at STS");
    let lines = p.lines();
    for secret in ["eyJ.projected.token", CHAIN_SECRET, "irsa-token"] {
        let logged: Vec<_> = lines.iter().filter(|l| l.contains(secret)).collect();
        assert!(logged.is_empty(), "{secret} is in the log: {logged:?}");
    }
}

/// The chain's keys and session token (`env-token`) in the environment variables.
fn chain_environment() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", CHAIN_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", CHAIN_SECRET.into()),
        ("AWS_SESSION_TOKEN", "env-token".into()),
    ]
}

/// Environment variables, the first source of the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables() {
    let (backend, requests) = recorder().await;
    let p = gateway(backend, chain_environment(), tempfile::tempdir().unwrap());
    assert_eq!(list_buckets(&p).await, 200, "{:?}", p.lines());
    assert_signed_by_chain(&requests.lock().unwrap()[0], "env-token");
    assert!(
        !p.lines()
            .iter()
            .any(|l| l.contains(CHAIN_SECRET) || l.contains("env-token")),
        "credentials in the log"
    );
}

/// A browser's preflight and request where the chain signs: the bucket's CORS rules are read
/// (`GET ?cors`) signed with the chain's keys — fetched first, as for any backend request —
/// and decide both answers (they once made the gateway panic: no credentials resolved yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_rules_are_read_with_chain_credentials() {
    let (backend, requests) = http_server(Arc::new(|seen: &Seen| {
        let rules = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>\
            <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
        match seen.path.contains("cors") {
            true => (200, vec![], rules.into()),
            false => (200, vec![], "data".into()),
        }
    }))
    .await;
    let p = gateway(backend, chain_environment(), tempfile::tempdir().unwrap());
    let preflight = vec![
        ("host".to_string(), p.s3.clone()),
        ("origin".to_string(), "https://app.example".to_string()),
        (
            "access-control-request-method".to_string(),
            "GET".to_string(),
        ),
    ];
    let r = common::raw::send(&p.s3, "OPTIONS", b"/bkt/k", &preflight, vec![]).await;
    assert_eq!(r.status, 200, "{} {:?}", r.text(), p.lines());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let (ak, sk) = keys(USER, PASSWORD);
    let origin = [("origin", "https://app.example")];
    let headers = common::raw::V4::unsigned(&ak, &sk, &p.s3).sign("GET", b"/bkt/k", &origin);
    let r = common::raw::send(&p.s3, "GET", b"/bkt/k", &headers, vec![]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let seen = requests.lock().unwrap().clone();
    let rules = seen
        .iter()
        .find(|s| s.path.contains("cors"))
        .expect("the rules read");
    assert_signed_by_chain(rules, "env-token");
    assert!(
        !p.lines().iter().any(|l| l.contains("panicked")),
        "{:?}",
        p.lines()
    );
}

/// No source of the chain gives credentials: the client gets HCP's 503 ServiceUnavailable (the
/// backend cannot be reached as the gateway), and nothing is sent unsigned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_is_service_unavailable() {
    let (backend, requests) = recorder().await;
    let p = gateway(backend, vec![], tempfile::tempdir().unwrap());
    let (ak, sk) = keys(USER, PASSWORD);
    let r = common::raw::send_signed(&p.s3, (&ak, &sk), "GET", "/", b"").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_hcp_error_body(&r.text(), "ServiceUnavailable");
    assert!(requests.lock().unwrap().is_empty());
}

//! Test harness: starts the gateway in-process on `127.0.0.1:0` in front of a real backend and
//! hands out clients and unique bucket names.
//!
//! Remote backends come from the environment that `scripts/test.sh` (or `.ci/run`) prepares:
//! `RGW_ENDPOINT`/`RGW_ACCESS_KEY`/`RGW_SECRET_KEY` for Ceph radosgw and
//! `MOTO_ENDPOINT`/`MOTO_ACCESS_KEY`/`MOTO_SECRET_KEY` for moto. A missing backend fails the test
//! unless `HCP_GW_SKIP_EXTERNAL=1` is set, so CI can never pass by skipping.
#![allow(dead_code)]

pub mod dialect_server;
pub mod process;
pub mod raw;
pub mod view;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use dialect_server::{DialectServer, Vendor};
use hcp_s3_gateway::config::{hcp_access_key, hcp_secret_key, Config};
use hcp_s3_gateway::server::{self, RunningGateway};

pub const USER: &str = "test-user";
pub const PASSWORD: &str = "test-password";
pub const READER: &str = "reader";
pub const READER_PASSWORD: &str = "reader-password";
pub const DISABLED: &str = "disabled-user";
pub const WRITER: &str = "writer";
/// The key that binds upload ids to initiators in every test gateway.
pub const BINDING_SECRET: &str = "test-binding-secret-0123456789";

/// The id a test gateway gives `USER` for the backend upload `backend_id` in bucket `bucket` of
/// tenant `t` (for recorded servers, whose upload ids are made up).
pub fn bound_upload_id(bucket: &str, backend_id: &str) -> String {
    use hcp_s3_gateway::request::validate::uploads::{Scope, UploadIds};
    UploadIds::new(BINDING_SECRET.as_bytes()).issue(
        Scope {
            tenant: "t",
            bucket,
        },
        &keys(USER, PASSWORD).0,
        backend_id,
    )
}

/// The access and secret key of an HCP-style user.
pub fn keys(user: &str, password: &str) -> (String, String) {
    (hcp_access_key(user), hcp_secret_key(password))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded backend as configured by default (served by the gateway's own store).
    Local,
    /// The embedded backend with `engine = "store"` said.
    Store,
    /// The embedded backend served by s3s-fs (`engine = "s3s-fs"`).
    S3sFs,
    Rgw,
    Moto,
}

impl Backend {
    fn env_prefix(self) -> &'static str {
        match self {
            Backend::Local | Backend::Store | Backend::S3sFs => "",
            Backend::Rgw => "RGW",
            Backend::Moto => "MOTO",
        }
    }

    /// The `[[backends]]` entry for this backend, or `None` when it is not available and
    /// skipping is allowed.
    pub fn config_entry(self, data_dir: &Path) -> Option<String> {
        let engine = match self {
            Backend::Local => Some(String::new()),
            Backend::Store => Some("engine = \"store\"\n".to_string()),
            Backend::S3sFs => Some("engine = \"s3s-fs\"\n".to_string()),
            Backend::Rgw | Backend::Moto => None,
        };
        if let Some(engine) = engine {
            return Some(format!(
                "[[backends]]\nname = \"b\"\nkind = \"local\"\n{engine}data_dir = {:?}\n",
                data_dir.display().to_string()
            ));
        }
        let p = self.env_prefix();
        let get = |k: &str| std::env::var(format!("{p}_{k}")).ok();
        // RGW is deployed with its own dialect; moto speaks AWS's.
        let dialect = if self == Backend::Rgw { "ceph" } else { "aws" };
        match (get("ENDPOINT"), get("ACCESS_KEY"), get("SECRET_KEY")) {
            (Some(e), Some(a), Some(s)) => Some(format!(
                "[[backends]]\nname = \"b\"\nkind = \"s3\"\ndialect = \"{dialect}\"\nendpoint = {e:?}\naccess_key = {a:?}\nsecret_key = {s:?}\nregion = \"us-east-1\"\n"
            )),
            _ if std::env::var("HCP_GW_SKIP_EXTERNAL").as_deref() == Ok("1") => None,
            _ => panic!(
                "{p}_ENDPOINT/{p}_ACCESS_KEY/{p}_SECRET_KEY are not set: run the tests through scripts/test.sh \
                 (or set HCP_GW_SKIP_EXTERNAL=1 to skip tests that need {self:?})"
            ),
        }
    }
}

/// A gateway started for one test. Dropping it stops it (the test's runtime ends its tasks and
/// its directory is removed); `stop` is for a test that needs it gone before it goes on.
pub struct TestGateway {
    pub gw: Option<RunningGateway>,
    pub endpoint: String,
    pub admin: String,
    pub backend: Backend,
    _dir: tempfile::TempDir,
}

impl TestGateway {
    /// Requests the gateway has sent to its backend `b` so far.
    pub fn backend_requests(&self) -> u64 {
        self.metrics().backend_requests("b")
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &hcp_s3_gateway::observe::metrics::Metrics {
        &self.gw.as_ref().unwrap().gateway.metrics
    }

    /// Where an embedded backend keeps its files (`data` in the gateway's directory).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    /// Whether the requests in flight reach `n` within `within` (a request's place may be let
    /// go a moment after its client read the answer).
    pub async fn in_flight_reaches(&self, n: i64, within: std::time::Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < within {
            if self.metrics().in_flight.get() == n {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    }

    /// The S3 listener as `host:port`, for raw requests.
    pub fn addr(&self) -> String {
        self.gw.as_ref().unwrap().s3_addr.to_string()
    }

    /// Creates a bucket no other test uses, as the test user, and returns its name.
    pub async fn with_bucket(&self, tag: &str) -> String {
        new_bucket(&self.client(), tag).await
    }

    pub fn s3_port(&self) -> u16 {
        self.gw.as_ref().unwrap().s3_addr.port()
    }

    /// An aws-sdk-s3 client for the test user (path style, no retries so errors surface as sent).
    pub fn client(&self) -> aws_sdk_s3::Client {
        self.client_with(&hcp_access_key(USER), &hcp_secret_key(PASSWORD))
    }

    pub fn client_with(&self, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
        sdk_client(&self.endpoint, access_key, secret_key)
    }

    /// Shuts the gateway down as a signal would: connections drained within the grace period.
    pub async fn stop(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await;
        }
    }
}

pub fn sdk_client(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The users, tenant and server sections every test gateway shares; `extra` is appended.
pub fn base_config(bucket_prefix: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_grace_seconds = 2
log_level = "warn"

[addressing]
domains = ["hcp.test"]
default_tenant = "t"

[auth]
upload_binding_secret = "{BINDING_SECRET}"

[[users]]
username = "{USER}"
password = "{PASSWORD}"
permissions = [{{ tenant = "*", buckets = "*", allow = ["all"] }}]

# A user who may only read buckets named "shared-*".
[[users]]
username = "{READER}"
password = "{READER_PASSWORD}"
permissions = [{{ tenant = "t", buckets = "shared-*", allow = ["read"] }}]

# A user who may read and write buckets named "shared-*" only.
[[users]]
username = "{WRITER}"
password = "{PASSWORD}"
permissions = [{{ tenant = "t", buckets = "shared-*", allow = ["read", "write"] }}]

# A user whose account is disabled.
[[users]]
username = "{DISABLED}"
password = "{PASSWORD}"
enabled = false
permissions = [{{ tenant = "*", buckets = "*", allow = ["all"] }}]

[[tenants]]
name = "t"
backend = "b"
bucket_prefix = "{bucket_prefix}"
# S3's overwrite, which most tests exercise; HCP's default rule is tested on its own
# (tests/hcp_semantics.rs).
overwrite = "allow"
anonymous = [{{ buckets = "public-*", access = "read" }}, {{ buckets = "dropbox-*", access = "read-write" }}]
"#
    )
}

/// The test configuration with backend `b` an S3 endpoint the test runs itself (recorded
/// servers, fakes), whose keys do not matter.
pub fn config_with_endpoint(endpoint: &str) -> String {
    format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"s3\"\nendpoint = \"{endpoint}\"\naccess_key = \"AK\"\nsecret_key = \"SK\"\n",
        base_config("")
    )
}

/// Starts a gateway in front of `backend`, or returns `None` when that backend is unavailable
/// and skipping was asked for.
pub async fn start(backend: Backend) -> Option<TestGateway> {
    start_with(backend, "", "").await
}

pub async fn start_with(backend: Backend, bucket_prefix: &str, extra: &str) -> Option<TestGateway> {
    let dir = tempfile::tempdir().unwrap();
    let entry = backend.config_entry(&dir.path().join("data"))?;
    let text = format!(
        "{}\n{extra}\n{entry}",
        own_overwrite(base_config(bucket_prefix), extra)
    );
    Some(start_text(&text, dir, backend).await)
}

/// The fixture's S3 overwrite left out where a test gives tenant `t` its own rule.
fn own_overwrite(base: String, settings: &str) -> String {
    if settings.contains("overwrite =") {
        base.replacen("overwrite = \"allow\"\n", "", 1)
    } else {
        base
    }
}

/// As [`start_with`], with `settings` (lines) added to tenant `t`'s section.
pub async fn start_with_tenant(
    backend: Backend,
    settings: &str,
    extra: &str,
) -> Option<TestGateway> {
    let dir = tempfile::tempdir().unwrap();
    let entry = backend.config_entry(&dir.path().join("data"))?;
    let line = "bucket_prefix = \"\"\n";
    let base = base_config("").replacen(line, &format!("{line}{settings}\n"), 1);
    let base = own_overwrite(base, settings);
    let text = format!("{base}\n{extra}\n{entry}");
    Some(start_text(&text, dir, backend).await)
}

pub async fn start_text(text: &str, dir: tempfile::TempDir, backend: Backend) -> TestGateway {
    hcp_s3_gateway::observe::logging::init(hcp_s3_gateway::config::LogFormat::Text, "warn");
    let cfg =
        Config::parse(text, dir.path()).unwrap_or_else(|e| panic!("test config: {e:?}\n{text}"));
    let gw = server::start(cfg).await.expect("gateway starts");
    TestGateway {
        endpoint: format!("http://{}", gw.s3_addr),
        admin: format!("http://{}", gw.admin_addr),
        gw: Some(gw),
        backend,
        _dir: dir,
    }
}

/// A test gateway on the local backend with `settings` added to its `[server]` section and
/// `extra` (whole sections) appended.
/// A gateway whose backend is a recorded-dialect server (`x-test-respond` steers its answers),
/// with `extra_server` added to `[server]`.
pub async fn start_with_dialect(
    vendor: Vendor,
    extra_server: &str,
) -> (TestGateway, DialectServer) {
    start_with_dialect_tenant(vendor, extra_server, "").await
}

/// [`start_with_dialect`] with settings of the tenant's (`retention = "enterprise"`).
pub async fn start_with_dialect_tenant(
    vendor: Vendor,
    extra_server: &str,
    tenant: &str,
) -> (TestGateway, DialectServer) {
    start_with_dialect_settings(vendor, (extra_server, tenant, "")).await
}

/// [`start_with_dialect`] with settings of the `[server]`, the tenant's and the backend's
/// (`region = "eu-west-1"`). A tenant setting of `overwrite` replaces the fixture's S3 one.
pub async fn start_with_dialect_settings(
    vendor: Vendor,
    settings: (&str, &str, &str),
) -> (TestGateway, DialectServer) {
    let server = DialectServer::start(vendor).await;
    start_with_dialect_server(vendor, server, settings).await
}

/// [`start_with_dialect_settings`] with a server of the test's own (one on another address).
pub async fn start_with_dialect_server(
    vendor: Vendor,
    server: DialectServer,
    (extra_server, tenant, backend): (&str, &str, &str),
) -> (TestGateway, DialectServer) {
    let tenant = match tenant.contains("overwrite =") {
        true => format!("{tenant}\n"),
        false => format!("overwrite = \"allow\"\n{tenant}\n"),
    };
    let (kind, dialect) = match vendor {
        Vendor::Minio => ("s3", "dialect = \"minio\"\n"),
        Vendor::Obs => ("obs", ""),
        Vendor::Aws => ("s3", "dialect = \"aws\"\n"),
    };
    let text = format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"{kind}\"\nendpoint = \"{}\"\naccess_key = \"AK\"\nsecret_key = \"SK\"\nread_timeout_ms = 1500\n{dialect}{backend}\n",
        base_config("")
            .replace("[server]\n", &format!("[server]\n{extra_server}"))
            .replace("overwrite = \"allow\"\n", &tenant),
        server.endpoint()
    );
    (
        start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await,
        server,
    )
}

pub async fn start_local_with(settings: &str, extra: &str) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let entry = Backend::Local
        .config_entry(&dir.path().join("data"))
        .unwrap();
    let text = base_config("").replace("[server]\n", &format!("[server]\n{settings}\n"));
    start_text(&format!("{text}\n{extra}\n{entry}"), dir, Backend::Local).await
}

/// The shipped config.toml as it is, on free loopback ports; its `./data` lands in a private
/// directory (relative paths are resolved against the configuration's directory).
pub async fn start_embedded_default() -> TestGateway {
    start_embedded_default_on(None).await
}

/// `config.toml` as shipped, its embedded backend on `engine` where given.
pub async fn start_embedded_default_on(engine: Option<&str>) -> TestGateway {
    let mut text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:8081", "127.0.0.1:0");
    let backend = match engine {
        Some(engine) => {
            text = text.replacen(
                "kind = \"local\"",
                &format!("kind = \"local\"\nengine = \"{engine}\""),
                1,
            );
            if engine == "s3s-fs" {
                Backend::S3sFs
            } else {
                Backend::Store
            }
        }
        None => Backend::Local,
    };
    start_text(&text, tempfile::tempdir().unwrap(), backend).await
}

/// A bucket name no other test uses (valid for HCP, S3 and RGW).
/// Creates a bucket no other test uses through `s3`, and returns its name.
pub async fn new_bucket(s3: &aws_sdk_s3::Client, tag: &str) -> String {
    let bucket = unique_bucket(tag);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    bucket
}

pub fn unique_bucket(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}-{}-{n}-{nanos:x}", std::process::id())
}

/// Deterministic pseudo-random bytes (xorshift), so large bodies need no RNG dependency.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The status and code an SDK error carries.
pub fn sdk_error<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (u16, String)
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{err:?}"));
    (status, code)
}

/// Checks an HCP error document: declaration, root `Error`, and the four always-present children.
pub fn assert_hcp_error_body(body: &str, code: &str) {
    assert!(
        body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "declaration: {body}"
    );
    assert!(
        body.contains(&format!("<Error><Code>{code}</Code><Message>")),
        "code {code}: {body}"
    );
    for tag in ["RequestId", "HostId"] {
        assert!(body.contains(&format!("<{tag}>")), "{tag} missing: {body}");
    }
    assert!(
        !body.contains("<Resource>"),
        "no backend-only elements: {body}"
    );
}

/// Runs one of the Python client scripts in `tests/clients/` (they print `ok NAME` or
/// `FAIL NAME: reason` per check) and asserts that all `expected_checks` passed.
pub async fn run_python_client(script: &str, args: Vec<String>, expected_checks: usize) {
    // scripts/test.sh puts the test venv first on PATH.
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut all = vec![path];
    all.extend(args);
    run_client_program("python3", all, expected_checks).await;
}

/// Runs a client program (`python3 script …`, `node script …`) that prints `ok NAME` or
/// `FAIL NAME: reason` per check, and asserts that it succeeded with `expected_checks` checks.
pub async fn run_client_program(program: &str, args: Vec<String>, expected_checks: usize) {
    let program = program.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        expected_checks,
        "{stdout}"
    );
}

/// Starts a multipart upload and uploads parts of the given sizes; returns the upload id and
/// the parts as a complete lists them.
pub async fn upload_parts(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    sizes: &[usize],
) -> (String, Vec<aws_sdk_s3::types::CompletedPart>) {
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let mut parts = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(aws_sdk_s3::primitives::ByteStream::from(pattern(
                *size, n as u64,
            )))
            .send()
            .await
            .unwrap();
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag().map(Into::into))
                .build(),
        );
    }
    (id, parts)
}

/// Asserts that an upload is unknown to the gateway's backend: listing its parts, uploading a
/// part to it and aborting it all answer 404 NoSuchUpload.
/// The parts the backend lists for an upload, as (number, size).
pub async fn listed_parts(
    s3: &aws_sdk_s3::Client,
    (bucket, key, id): (&str, &str, &str),
) -> Vec<(i32, i64)> {
    let listed = s3.list_parts().bucket(bucket).key(key).upload_id(id);
    let listed = listed.send().await.unwrap();
    listed
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap_or(0), p.size().unwrap_or(0)))
        .collect()
}

/// Completes an upload with `parts`; the SDK's answer.
pub async fn complete_with(
    s3: &aws_sdk_s3::Client,
    (bucket, key, id): (&str, &str, &str),
    parts: Vec<aws_sdk_s3::types::CompletedPart>,
) -> Result<
    aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError,
    >,
> {
    let doc = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    let complete = s3.complete_multipart_upload().bucket(bucket).key(key);
    complete.upload_id(id).multipart_upload(doc).send().await
}

pub async fn assert_upload_gone(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, id: &str) {
    let no_upload = |e: (u16, String)| assert_eq!(e, (404, "NoSuchUpload".to_string()));
    no_upload(sdk_error(
        &s3.list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .send()
            .await
            .unwrap_err(),
    ));
    no_upload(sdk_error(
        &s3.upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(1)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err(),
    ));
    no_upload(sdk_error(
        &s3.abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .send()
            .await
            .unwrap_err(),
    ));
    // (RGW completes an aborted upload with 500 "already in progress", AWS a completed one
    // with 200: HCP's NoSuchUpload is the gateway's to answer.)
    let part = aws_sdk_s3::types::CompletedPart::builder()
        .part_number(1)
        .e_tag("\"0123456789abcdef0123456789abcdef\"")
        .build();
    let parts = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(part)
        .build();
    no_upload(sdk_error(
        &s3.complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(parts)
            .send()
            .await
            .unwrap_err(),
    ));
}

/// A gateway in front of `backend`, its client for `USER`, and a new bucket of its own
/// (`None` when the backend is unavailable and skipping was asked for).
pub async fn start_with_bucket(
    backend: Backend,
    tag: &str,
) -> Option<(TestGateway, aws_sdk_s3::Client, String)> {
    let gw = start(backend).await?;
    let bucket = gw.with_bucket(tag).await;
    let s3 = gw.client();
    Some((gw, s3, bucket))
}

/// A certificate for `localhost` and 127.0.0.1 from a new CA: (chain PEM, key PEM, CA PEM).
pub fn test_certificate() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hcp-s3-gateway test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    (leaf.pem(), leaf_key.serialize_pem(), ca.pem())
}

/// A new test certificate written into `dir` as `NAME-cert.pem`, `NAME-key.pem` and
/// `NAME-ca.pem`: the three paths.
pub fn test_certificate_files(
    dir: &Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (cert, key, ca) = test_certificate();
    let files = ["cert", "key", "ca"].map(|part| dir.join(format!("{name}-{part}.pem")));
    for (file, text) in files.iter().zip([cert, key, ca]) {
        std::fs::write(file, text).unwrap();
    }
    let [cert_file, key_file, ca_file] = files;
    (cert_file, key_file, ca_file)
}

/// A TLS front for `backend` (a rustls server with a certificate from a new test CA, forwarding
/// bytes): its address and the CA's PEM file, for testing `https://` backends on loopback.
pub async fn tls_front(backend: &str, dir: &Path) -> (std::net::SocketAddr, std::path::PathBuf) {
    let (cert_file, key_file, ca_file) = test_certificate_files(dir, "front");
    let tls = hcp_s3_gateway::server::tls::ServerTls::load(&cert_file, &key_file).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = backend.to_string();
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            let (tls, backend) = (tls.clone(), backend.clone());
            tokio::spawn(async move {
                let no_limit = hcp_s3_gateway::server::send_deadline::SendDeadline::default();
                let Ok(mut front) = tls.accept(tcp, peer, no_limit).await else {
                    return;
                };
                let Ok(mut back) = tokio::net::TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut front, &mut back).await;
            });
        }
    });
    (addr, ca_file)
}

/// A TCP front for `backend` (`host:port`) that loses one answer: the first request whose
/// request line starts with `request` (`"PUT /bucket/ "`) reaches the backend, which acts on it,
/// and the connection to the client is closed before the answer. Says whether it was lost.
pub async fn lossy_front(
    backend: &str,
    request: String,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::AtomicBool;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let lost = std::sync::Arc::new(AtomicBool::new(false));
    let (backend, seen) = (backend.to_string(), lost.clone());
    tokio::spawn(async move {
        while let Ok((front, _)) = listener.accept().await {
            let Ok(back) = tokio::net::TcpStream::connect(&backend).await else {
                return;
            };
            let (mut from_client, mut to_client) = front.into_split();
            let (mut from_backend, mut to_backend) = back.into_split();
            let losing = std::sync::Arc::new(AtomicBool::new(false));
            let (request, lost, losing_here) = (request.clone(), seen.clone(), losing.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = from_client.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    if buf[..n].starts_with(request.as_bytes())
                        && !lost.swap(true, Ordering::SeqCst)
                    {
                        losing_here.store(true, Ordering::SeqCst);
                    }
                    if to_backend.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = from_backend.read(&mut buf).await {
                    // (The answer to the lost request: the client's side closes without it.)
                    if n == 0 || losing.load(Ordering::SeqCst) {
                        return;
                    }
                    if to_client.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, lost)
}

/// A TCP front for `backend` (`host:port`) that refuses one request in the backend's stead:
/// once `armed` is set, the first request whose request line starts with `request`
/// (`"PUT /bucket/?acl= "`) never reaches the backend and is answered `answer` (a whole answer
/// that closes the connection) after `delay`.
pub async fn refusing_front(
    backend: &str,
    request: String,
    answer: &'static [u8],
    delay: std::time::Duration,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    refusing_front_after(backend, request, answer, delay, 0).await
}

/// A backend's bodiless 500, as a [`refusing_front`] answers in its stead.
pub const FAILED_500: &[u8] =
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The Ceph RGW backend's configuration entry (its data under `dir`) reaching RGW through a
/// [`refusing_front`] that, once armed, answers the first request whose line starts with
/// `line` 500 in RGW's stead; the entry and the arming switch (`None`: no RGW configured).
pub async fn rgw_refusing_once(
    dir: &Path,
    line: String,
) -> Option<(String, std::sync::Arc<std::sync::atomic::AtomicBool>)> {
    let entry = Backend::Rgw.config_entry(&dir.join("data"))?;
    let rgw = std::env::var("RGW_ENDPOINT").unwrap();
    let upstream = rgw.trim_start_matches("http://");
    let no_wait = std::time::Duration::ZERO;
    let (front, armed) = refusing_front(upstream, line, FAILED_500, no_wait).await;
    Some((entry.replace(&rgw, &format!("http://{front}")), armed))
}

/// [`refusing_front`], the first `skip` matching requests once armed let through.
pub async fn refusing_front_after(
    backend: &str,
    request: String,
    answer: &'static [u8],
    delay: std::time::Duration,
    skip: usize,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let skipped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    use std::sync::atomic::AtomicBool;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let armed = std::sync::Arc::new(AtomicBool::new(false));
    let (backend, arming) = (backend.to_string(), armed.clone());
    tokio::spawn(async move {
        while let Ok((mut front, _)) = listener.accept().await {
            let Ok(mut back) = tokio::net::TcpStream::connect(&backend).await else {
                return;
            };
            let (request, armed, skipped) = (request.clone(), arming.clone(), skipped.clone());
            tokio::spawn(async move {
                let (mut up, mut down) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
                loop {
                    tokio::select! {
                        read = front.read(&mut up) => {
                            let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                            let matching = up[..n].starts_with(request.as_bytes())
                                && armed.load(Ordering::SeqCst);
                            if matching && skipped.fetch_add(1, Ordering::SeqCst) >= skip
                                && armed.swap(false, Ordering::SeqCst)
                            {
                                tokio::time::sleep(delay).await;
                                let _ = front.write_all(answer).await;
                                return;
                            }
                            if back.write_all(&up[..n]).await.is_err() {
                                return;
                            }
                        }
                        read = back.read(&mut down) => {
                            let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                            if front.write_all(&down[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, armed)
}

/// Sets `bucket`'s versioning to `status` through `s3`.
/// Gives `bucket` a CORS configuration of one rule: `origin` may send `methods`.
pub async fn set_cors(s3: &aws_sdk_s3::Client, bucket: &str, origin: &str, methods: &[&str]) {
    let rule = methods
        .iter()
        .fold(
            aws_sdk_s3::types::CorsRule::builder().allowed_origins(origin),
            |rule, m| rule.allowed_methods(*m),
        )
        .build()
        .unwrap();
    let cors = aws_sdk_s3::types::CorsConfiguration::builder()
        .cors_rules(rule)
        .build()
        .unwrap();
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(cors)
        .send()
        .await
        .unwrap();
}

pub async fn set_versioning(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    status: aws_sdk_s3::types::BucketVersioningStatus,
) {
    let config = aws_sdk_s3::types::VersioningConfiguration::builder()
        .status(status)
        .build();
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(config)
        .send()
        .await
        .unwrap_or_else(|e| panic!("versioning of {bucket}: {e:?}"));
}

/// An object's bytes, read through `s3`.
pub async fn object_bytes(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    bytes_of(
        s3.get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The body of a GetObject answer.
pub async fn bytes_of(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// A multi-object delete of `bucket` as `who`, its document with its Content-MD5.
pub async fn multi_delete(
    gw: &TestGateway,
    who: (&str, &str),
    bucket: &str,
    doc: &str,
) -> raw::RawResponse {
    let md5 = content_md5(doc.as_bytes());
    let headers = [("content-md5", md5.as_str())];
    let target = format!("/{bucket}?delete");
    as_user(gw, who, "POST", &target, &headers, doc.as_bytes()).await
}

/// One raw request signed for `user` (SigV4, unsigned payload) with `headers` and `body`.
pub async fn as_user(
    gw: &TestGateway,
    (user, password): (&str, &str),
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> raw::RawResponse {
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = (
        hcp_s3_gateway::config::hcp_access_key(user),
        hcp_s3_gateway::config::hcp_secret_key(password),
    );
    let mut extra = headers.to_vec();
    let length = body.len().to_string();
    if method == "PUT" || !body.is_empty() {
        extra.push(("content-length", &length));
    }
    let signed = raw::V4::unsigned(&ak, &sk, &addr).sign(method, target.as_bytes(), &extra);
    let pieces = if body.is_empty() {
        vec![]
    } else {
        vec![body.to_vec()]
    };
    raw::send(&addr, method, target.as_bytes(), &signed, pieces).await
}

/// A body's Content-MD5 (Base64 of its MD5).
pub fn content_md5(body: &[u8]) -> String {
    use base64::Engine as _;
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

/// The error document a client got.
pub fn error_body<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    let bytes = err
        .raw_response()
        .and_then(|r| r.body().bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(bytes).into_owned()
}

//! The training run of the profile-guided release build (`scripts/build-pgo.sh`): drives a
//! gateway binary built with `-Cprofile-generate` through the traffic a deployment sees, so
//! that the profile it writes at exit tells the compiler which paths are hot.
//!
//!   cargo run --example pgo_train -- GATEWAY_BINARY BENCH_ORIGIN_BINARY
//!
//! Two gateways are run in turn, each stopped by SIGTERM (a profile is written only by a
//! process that exits): one on the embedded store, driven by aws-sdk-s3 through the operations
//! applications use (writes of several sizes, reads, listings, multipart, copies, ACLs,
//! deletes, and refusals: unknown keys, wrong secrets, forged signatures); one in front of an S3
//! backend (`examples/bench_origin.rs`), with header-signed and presigned reads and writes.
//! Every answer is checked, so a training run that stopped exercising the gateway fails the
//! build instead of training it on error paths; every request and each process's exit has a
//! deadline, and the processes it started are killed if it fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use aws_sdk_s3::Client;

const USER: &str = "train-user";
const PASSWORD: &str = "train-password";
/// Concurrent clients in the hot loops, and the rounds each runs.
const CLIENTS: usize = 8;
const ROUNDS: usize = 150;
/// The longest a request, or a process's start or exit, may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// A process this run started: killed and reaped if the run fails before it is stopped.
struct Running {
    child: Child,
    name: &'static str,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, gateway, origin] = &args[..] else {
        eprintln!("usage: pgo_train GATEWAY_BINARY BENCH_ORIGIN_BINARY");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");

    let data = toml::Value::String(dir.path().join("data").display().to_string());
    // The embedded store on two workers (tokio's multi-threaded runtime, as `threads = 0` runs on
    // a machine of two cores); the S3 backend on one (the single-threaded runtime of a sidecar).
    let text = config(
        2,
        &format!("[[backends]]\nname = \"local\"\nkind = \"local\"\ndata_dir = {data}\n"),
        "local",
        "",
    );
    let (port, gw) = start(gateway, dir.path(), "embedded", &text);
    rt.block_on(embedded(port));
    stop(gw);

    let origin_port = free_port();
    let child = Command::new(origin)
        .arg(format!("127.0.0.1:{origin_port}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("bench_origin starts");
    let mut origin = Running {
        child,
        name: "bench_origin",
    };
    wait_for(origin_port, &mut origin);
    let text = config(
        1,
        &format!(
            "[[backends]]\nname = \"origin\"\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:{origin_port}\"\n\
             region = \"us-east-1\"\naddressing = \"path\"\naccess_key = \"backend-access\"\n\
             secret_key = \"backend-secret\"\n"
        ),
        "origin",
        "overwrite = \"allow\"\n",
    );
    let (port, gw) = start(gateway, dir.path(), "s3", &text);
    rt.block_on(backend(port));
    stop(gw);
    drop(origin);
    eprintln!("pgo_train: done");
}

/// A gateway configuration with one tenant on `backend` (`tenant_extra`: more of its settings),
/// on `threads` worker threads (1: the single-threaded runtime; more: tokio's multi-threaded one).
fn config(threads: u8, backend_section: &str, backend: &str, tenant_extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\nadmin_listen = \"127.0.0.1:{{admin}}\"\n\
         threads = {threads}\nlog_level = \"warn\"\n\n\
         [addressing]\ndefault_tenant = \"train\"\n\n\
         [[users]]\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         permissions = [{{ tenant = \"*\", buckets = \"*\", allow = [\"all\"] }}]\n\n\
         [[tenants]]\nname = \"train\"\nbackend = \"{backend}\"\n{tenant_extra}\n\
         {backend_section}"
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn start(binary: &str, dir: &Path, name: &'static str, template: &str) -> (u16, Running) {
    let (port, admin) = (free_port(), free_port());
    let text = template
        .replace("{port}", &port.to_string())
        .replace("{admin}", &admin.to_string());
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("configuration written");
    let child = Command::new(binary)
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .spawn()
        .expect("the gateway starts");
    let mut gateway = Running { child, name };
    wait_for(port, &mut gateway);
    (port, gateway)
}

fn wait_for(port: u16, process: &mut Running) {
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("{} exited before listening: {status}", process.name);
        }
        assert!(
            Instant::now() < deadline,
            "{}: nothing listens on {port}",
            process.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, then the exit, which must be a clean one: the profile is written as the process
/// exits.
fn stop(mut gateway: Running) {
    // (The shell's own `kill`: a build image need not have procps.)
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", gateway.child.id())])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM failed");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = gateway.child.try_wait().expect("the gateway's status") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the {} gateway did not exit",
            gateway.name
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "the {} gateway exited with {status}",
        gateway.name
    );
}

/// A presigned URL whose signature's last digit is changed (always to another digit).
fn forged(url: &str) -> String {
    let (rest, last) = url.split_at(url.len() - 1);
    format!("{rest}{}", if last == "0" { "1" } else { "0" })
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(DEADLINE)
        .build()
        .expect("an HTTP client")
}

fn client(port: u16, secret: &str) -> Client {
    use base64::Engine as _;
    use md5::Digest as _;
    let access = base64::engine::general_purpose::STANDARD.encode(USER);
    let secret = hex::encode(md5::Md5::digest(secret.as_bytes()));
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access, secret, None, None, "pgo"))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_timeout(DEADLINE)
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

async fn get(s3: &Client, bucket: &str, key: &str) -> usize {
    let out = s3.get_object().bucket(bucket).key(key).send().await;
    let out = out.unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e:?}"));
    out.body.collect().await.expect("body").into_bytes().len()
}

async fn put(s3: &Client, bucket: &str, key: &str, data: &[u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {e:?}"));
}

/// The HTTP status of a request the gateway must refuse.
fn refused<T, E>(result: Result<T, aws_sdk_s3::error::SdkError<E>>, what: &str) -> u16 {
    match result {
        Ok(_) => panic!("{what}: answered, should have been refused"),
        Err(e) => e
            .raw_response()
            .map(|r| r.status().as_u16())
            .unwrap_or_else(|| panic!("{what}: no answer")),
    }
}

/// A presigned request's URL.
async fn presigned_get(s3: &Client, bucket: &str, key: &str) -> String {
    let cfg = PresigningConfig::expires_in(Duration::from_secs(3600)).expect("expiry");
    let req = s3.get_object().bucket(bucket).key(key).presigned(cfg).await;
    req.expect("presigned GET").uri().to_string()
}

async fn presigned_put(s3: &Client, bucket: &str, key: &str) -> String {
    let cfg = PresigningConfig::expires_in(Duration::from_secs(3600)).expect("expiry");
    let req = s3.put_object().bucket(bucket).key(key).presigned(cfg).await;
    req.expect("presigned PUT").uri().to_string()
}

/// The length of `key`'s object as HEAD gives it.
async fn head(s3: &Client, bucket: &str, key: &str) -> Option<i64> {
    let out = s3.head_object().bucket(bucket).key(key).send().await;
    out.unwrap_or_else(|e| panic!("HEAD {bucket}/{key}: {e:?}"))
        .content_length()
}

/// The length of `key`'s object read through a presigned URL.
async fn presigned_read(http: &reqwest::Client, s3: &Client, bucket: &str, key: &str) -> usize {
    let url = presigned_get(s3, bucket, key).await;
    let answer = http.get(url).send().await.expect("presigned GET");
    assert_eq!(answer.status().as_u16(), 200);
    answer.bytes().await.expect("body").len()
}

/// A presigned GET of `key` whose signature is forged is refused.
async fn forged_is_refused(http: &reqwest::Client, s3: &Client, bucket: &str, key: &str) {
    let url = presigned_get(s3, bucket, key).await;
    let answer = http.get(forged(&url)).send().await;
    assert_eq!(answer.expect("an answer").status().as_u16(), 403);
}

/// `client(c)` for each of [`CLIENTS`] clients at once, each its own task; a failure in any
/// fails the run.
async fn concurrently<F, Fut>(client: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let tasks: Vec<_> = (0..CLIENTS).map(|c| tokio::spawn(client(c))).collect();
    for t in tasks {
        t.await.expect("client task");
    }
}

/// The embedded store, through the operations applications use.
async fn embedded(port: u16) {
    let s3 = client(port, PASSWORD);
    let bucket = "train";
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("bucket");
    let sizes = [0, 1024, 64 << 10, 1 << 20];
    for (i, len) in sizes.into_iter().enumerate() {
        let key = format!("dir/sizes/object-{i}");
        put(&s3, bucket, &key, &body(len)).await;
        assert_eq!(get(&s3, bucket, &key).await, len);
        assert_eq!(head(&s3, bucket, &key).await, Some(len as i64));
    }
    let copied = s3
        .copy_object()
        .bucket(bucket)
        .key("dir/copy")
        .copy_source(format!("{bucket}/dir/sizes/object-1"))
        .send()
        .await;
    copied.expect("copy");
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("dir/")
        .send()
        .await;
    assert!(listed.expect("list").key_count().unwrap_or(0) >= 5);
    let listed = s3.list_objects().bucket(bucket).delimiter("/").send().await;
    listed.expect("list v1");
    s3.get_bucket_acl()
        .bucket(bucket)
        .send()
        .await
        .expect("ACL");
    let acl = s3
        .get_object_acl()
        .bucket(bucket)
        .key("dir/copy")
        .send()
        .await;
    acl.expect("object ACL");
    s3.list_buckets().send().await.expect("buckets");
    multipart(&s3, bucket).await;

    // Refusals: an unknown key, a wrong secret, a forged signature, an existing key
    // overwritten where HCP forbids it.
    let missing = s3.get_object().bucket(bucket).key("nothing").send().await;
    assert_eq!(refused(missing, "GET of a missing key"), 404);
    let wrong = client(port, "not-the-password");
    let denied = wrong
        .get_object()
        .bucket(bucket)
        .key("dir/copy")
        .send()
        .await;
    assert_eq!(refused(denied, "wrong secret"), 403);
    let again = s3
        .put_object()
        .bucket(bucket)
        .key("dir/copy")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(refused(again, "overwrite"), 409);
    let http = http();
    forged_is_refused(&http, &s3, bucket, "dir/copy").await;

    // The hot loop: small writes, reads and heads by several clients at once.
    let small = body(1024);
    concurrently(|c| {
        let (s3, small, http) = (s3.clone(), small.clone(), http.clone());
        async move {
            for r in 0..ROUNDS {
                let key = format!("hot/{c}/{}", r % 16);
                if r < 16 {
                    put(&s3, bucket, &key, &small).await;
                }
                assert_eq!(get(&s3, bucket, &key).await, small.len());
                head(&s3, bucket, &key).await;
                presigned_read(&http, &s3, bucket, &key).await;
            }
        }
    })
    .await;

    let objects: Vec<ObjectIdentifier> = (0..4)
        .map(|i| {
            ObjectIdentifier::builder()
                .key(format!("dir/sizes/object-{i}"))
                .build()
                .expect("identifier")
        })
        .collect();
    let delete = Delete::builder()
        .set_objects(Some(objects))
        .build()
        .expect("delete");
    let deleted = s3
        .delete_objects()
        .bucket(bucket)
        .delete(delete)
        .send()
        .await;
    deleted.expect("multi-delete");
    s3.delete_object()
        .bucket(bucket)
        .key("dir/copy")
        .send()
        .await
        .expect("delete");
}

async fn multipart(s3: &Client, bucket: &str) {
    let key = "dir/multipart";
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await;
    let id = upload.expect("upload").upload_id.expect("upload id");
    let mut parts = Vec::new();
    for (n, len) in [(1, 5 << 20), (2, 1024)] {
        let part = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(body(len)))
            .send()
            .await
            .expect("part");
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(part.e_tag)
                .build(),
        );
    }
    let listed = s3
        .list_parts()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .send()
        .await;
    listed.expect("parts");
    let done = CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    let completed = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await;
    completed.expect("complete");
    assert_eq!(get(s3, bucket, key).await, (5 << 20) + 1024);
}

/// An S3 backend: header-signed and presigned reads and writes of the sizes bench_origin
/// serves (`name-SIZE`), and forged signatures.
async fn backend(port: u16) {
    let s3 = client(port, PASSWORD);
    let bucket = "bench";
    let http = http();
    assert_eq!(get(&s3, bucket, "large-16m").await, 16 << 20);
    put(&s3, bucket, "large-16m", &body(16 << 20)).await;
    forged_is_refused(&http, &s3, bucket, "obj-1k").await;
    concurrently(|c| {
        let (s3, http) = (s3.clone(), http.clone());
        async move {
            let sizes = [("1k", 1024), ("4k", 4096), ("64k", 64 << 10)];
            for r in 0..ROUNDS {
                let (size, len) = sizes[(r + c) % sizes.len()];
                let key = format!("obj-{size}");
                assert_eq!(get(&s3, bucket, &key).await, len);
                put(&s3, bucket, &key, &body(len)).await;
                head(&s3, bucket, &key).await;
                assert_eq!(presigned_read(&http, &s3, bucket, &key).await, len);
                let answer = http
                    .put(presigned_put(&s3, bucket, &key).await)
                    .body(body(len))
                    .send()
                    .await
                    .expect("presigned PUT");
                assert_eq!(answer.status().as_u16(), 200);
            }
        }
    })
    .await;
}

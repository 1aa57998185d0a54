//! The backend's own view, for tests that judge a request by its effect where it lands: RGW
//! read with RGW's own keys, the embedded store asked directly with this process's keys for it,
//! s3s-fs read from its files. And a relay that records the request lines a backend receives.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{sdk_client, Backend, TestGateway};

/// What a backend holds, seen without the gateway.
pub enum BackendView {
    /// s3s-fs's data directory (`bucket/key` files).
    Local(PathBuf),
    /// The embedded store's server, and its data directory.
    Store(aws_sdk_s3::Client, PathBuf),
    /// An S3 server read with its own keys: Ceph RGW's main user, moto's.
    S3(aws_sdk_s3::Client),
}

impl BackendView {
    pub fn of(gw: &TestGateway) -> BackendView {
        match gw.backend {
            Backend::S3sFs => BackendView::Local(gw.data_dir()),
            Backend::Local | Backend::Store => {
                let gateway = gw.gw.as_ref().expect("a running gateway");
                let store = gateway.embedded_backend().expect("the embedded backend");
                let client = sdk_client(
                    &format!("http://{}", store.addr),
                    &store.access_key,
                    &store.secret_key,
                );
                BackendView::Store(client, gw.data_dir())
            }
            Backend::Rgw => BackendView::rgw(),
            Backend::Moto => BackendView::server("MOTO"),
        }
    }

    pub fn rgw() -> BackendView {
        BackendView::server("RGW")
    }

    /// The S3 server whose endpoint and keys `{prefix}_ENDPOINT`, `_ACCESS_KEY` and
    /// `_SECRET_KEY` name.
    fn server(prefix: &str) -> BackendView {
        let get = |k: &str| {
            let name = format!("{prefix}_{k}");
            std::env::var(&name).unwrap_or_else(|_| panic!("{name} is not set"))
        };
        BackendView::S3(sdk_client(
            &get("ENDPOINT"),
            &get("ACCESS_KEY"),
            &get("SECRET_KEY"),
        ))
    }

    /// The bucket's location as the backend answers it (`None`: no such bucket; `""`: the
    /// default region).
    pub async fn bucket_location(&self, bucket: &str) -> Option<String> {
        let (BackendView::S3(s3) | BackendView::Store(s3, _)) = self else {
            panic!("a data directory has no locations");
        };
        let got = s3.get_bucket_location().bucket(bucket).send().await.ok()?;
        Some(
            got.location_constraint()
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
        )
    }

    /// The object's bytes at the backend (`bucket` is the backend's bucket name).
    pub async fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        match self {
            BackendView::Local(dir) => std::fs::read(dir.join(bucket).join(key)).ok(),
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                let out = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
                Some(out.body.collect().await.ok()?.into_bytes().to_vec())
            }
        }
    }

    /// An object's user metadata as the backend keeps it (RGW and the store), by name
    /// without `x-amz-meta-`.
    pub async fn metadata(&self, bucket: &str, key: &str) -> Option<Vec<(String, String)>> {
        match self {
            BackendView::Local(_) => None,
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                let out = s3.head_object().bucket(bucket).key(key).send().await.ok()?;
                let mut meta: Vec<(String, String)> = out
                    .metadata()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                meta.sort();
                Some(meta)
            }
        }
    }

    /// An object's Object Lock as the backend keeps it: mode and legal hold status (RGW and the
    /// store; s3s-fs keeps none).
    pub async fn object_lock(&self, bucket: &str, key: &str) -> (Option<String>, Option<String>) {
        match self {
            BackendView::Local(_) => (None, None),
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                let head = s3
                    .head_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .unwrap();
                (
                    head.object_lock_mode().map(|m| m.as_str().to_string()),
                    head.object_lock_legal_hold_status()
                        .map(|h| h.as_str().to_string()),
                )
            }
        }
    }

    /// A bucket's versioning status as the backend keeps it (`None`: never set; s3s-fs keeps
    /// none).
    pub async fn versioning(&self, bucket: &str) -> Option<String> {
        match self {
            BackendView::Local(_) => None,
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                let got = s3.get_bucket_versioning().bucket(bucket).send();
                got.await.unwrap().status().map(|s| s.as_str().to_string())
            }
        }
    }

    /// The version ids the backend keeps of a key (delete markers included), newest first
    /// (RGW and the store; s3s-fs keeps no versions: none).
    pub async fn versions(&self, bucket: &str, key: &str) -> Vec<String> {
        match self {
            BackendView::Local(_) => Vec::new(),
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                let listed = s3.list_object_versions().bucket(bucket).prefix(key).send();
                let listed = listed.await.unwrap();
                let versions = listed.versions().iter().map(|v| (v.key(), v.version_id()));
                let markers = listed
                    .delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id()));
                versions
                    .chain(markers)
                    .filter(|(k, _)| *k == Some(key))
                    .filter_map(|(_, v)| v.map(str::to_string))
                    .collect()
            }
        }
    }

    /// Every object key of a backend bucket.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        match self {
            BackendView::Local(dir) => {
                let mut out = Vec::new();
                files_under(&dir.join(bucket), &dir.join(bucket), &mut out);
                out.sort();
                out
            }
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                let out = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string))
                    .collect()
            }
        }
    }

    /// Whether an object's ACL grants anything to AllUsers (RGW and the store; s3s-fs keeps no
    /// ACLs, so nothing it stores is ever public).
    pub async fn object_is_public(&self, bucket: &str, key: &str) -> bool {
        match self {
            BackendView::Local(_) => false,
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                let acl = s3
                    .get_object_acl()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .unwrap();
                acl.grants().iter().any(|g| {
                    g.grantee()
                        .and_then(|g| g.uri())
                        .is_some_and(|u| u.ends_with("AllUsers"))
                })
            }
        }
    }

    /// Whether a bucket's ACL grants anything to AllUsers (as above).
    pub async fn bucket_is_public(&self, bucket: &str) -> bool {
        match self {
            BackendView::Local(_) => false,
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                let acl = s3.get_bucket_acl().bucket(bucket).send().await.unwrap();
                acl.grants().iter().any(|g| {
                    g.grantee()
                        .and_then(|g| g.uri())
                        .is_some_and(|u| u.ends_with("AllUsers"))
                })
            }
        }
    }

    /// Stores an object at the backend itself, past the gateway (RGW and the store).
    pub async fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        match self {
            BackendView::Local(_) => panic!("not for s3s-fs"),
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                let body = aws_sdk_s3::primitives::ByteStream::from(body.to_vec());
                s3.put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Deletes an (empty) bucket at the backend itself, past the gateway (RGW and the store).
    pub async fn delete_bucket(&self, bucket: &str) {
        match self {
            BackendView::Local(dir) => std::fs::remove_dir(dir.join(bucket)).unwrap(),
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                s3.delete_bucket().bucket(bucket).send().await.unwrap();
            }
        }
    }

    /// Creates a bucket at the backend itself, past the gateway (RGW and the store).
    pub async fn create_bucket(&self, bucket: &str) {
        match self {
            BackendView::Local(dir) => std::fs::create_dir_all(dir.join(bucket)).unwrap(),
            BackendView::S3(s3) | BackendView::Store(s3, _) => {
                s3.create_bucket().bucket(bucket).send().await.unwrap();
            }
        }
    }

    /// The backend ids of the multipart uploads open in a bucket (none seen in s3s-fs).
    pub async fn uploads(&self, bucket: &str) -> Vec<String> {
        match self {
            BackendView::Local(_) => Vec::new(),
            BackendView::S3(s3) | BackendView::Store(s3, _) => s3
                .list_multipart_uploads()
                .bucket(bucket)
                .send()
                .await
                .unwrap()
                .uploads()
                .iter()
                .filter_map(|u| u.upload_id().map(str::to_string))
                .collect(),
        }
    }

    /// Every file of the embedded backend's data directory (empty for RGW).
    pub fn all_files(&self) -> Vec<String> {
        match self {
            BackendView::Local(dir) | BackendView::Store(_, dir) => {
                let mut out = Vec::new();
                files_under(dir, dir, &mut out);
                out.sort();
                out
            }
            BackendView::S3(_) => Vec::new(),
        }
    }
}

fn files_under(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            files_under(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

/// A TCP relay in front of a backend that records the request line of every request it
/// carries: what the backend was asked, as the backend saw it.
pub struct Relay {
    pub addr: std::net::SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Relay {
    pub async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = lines.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let record = record.clone();
                tokio::spawn(relay(client, server, record));
            }
        });
        Relay { addr, lines }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request lines recorded since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

const METHODS: &[&str] = &[
    "GET ", "PUT ", "POST ", "DELETE ", "HEAD ", "OPTIONS ", "PATCH ",
];

async fn relay(client: TcpStream, server: TcpStream, record: Arc<Mutex<Vec<String>>>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let down = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches('\r');
                if METHODS.iter().any(|m| text.starts_with(m)) && text.ends_with(" HTTP/1.1") {
                    record.lock().unwrap().push(text.to_string());
                }
                line.clear();
            } else if line.len() < 16 * 1024 {
                line.push(b);
            }
        }
        if sw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = sw.shutdown().await;
    let _ = down.await;
}

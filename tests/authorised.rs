//! What reaches a backend is what was authorised: one test per class of hole, each judged by
//! what the backend itself holds afterwards (RGW read with RGW's own keys, the embedded backend
//! read from its files), on the embedded backend and on Ceph RGW.
//!
//! Two tenants share one backend (`t` with bucket prefix `ta-`, `u` with `ub-`); `t` is the
//! default tenant, `u` is addressed as `u.hcp.test`. Users: `USER` may do everything in both
//! tenants, `admin-only` may only administer `t`'s buckets, `WRITER` may read, write and delete
//! in `t` but not set ACLs, `in-t` belongs to tenant `t`; anonymous callers may read `public-*`
//! and write `dropbox-*` in `t`.

mod common;

use base64::Engine as _;
use common::raw::{send, RawResponse, V4};
use common::view::{BackendView, Relay};
use common::*;
use hcp_s3_gateway::sig::v4 as sigv4;

const ADMIN_ONLY: &str = "admin-only";
const IN_T: &str = "in-t";

fn config(entry: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_grace_seconds = 2
log_level = "warn"
max_concurrent_requests = 64

[addressing]
domains = ["hcp.test"]
default_tenant = "t"

[auth]
upload_binding_secret = "{BINDING_SECRET}"

[[users]]
username = "{USER}"
password = "{PASSWORD}"
permissions = [{{ tenant = "t", allow = ["all"] }}, {{ tenant = "u", allow = ["all"] }}]

[[users]]
username = "{ADMIN_ONLY}"
password = "{PASSWORD}"
permissions = [{{ tenant = "t", allow = ["admin"] }}]

[[users]]
username = "{WRITER}"
password = "{PASSWORD}"
permissions = [{{ tenant = "t", allow = ["read", "write", "delete"] }}]

[[users]]
username = "{IN_T}"
password = "{PASSWORD}"
tenant = "t"
permissions = [{{ tenant = "*", allow = ["all"] }}]

[[tenants]]
name = "t"
backend = "b"
bucket_prefix = "ta-"
anonymous = [{{ buckets = "public-*", access = "read" }}, {{ buckets = "dropbox-*", access = "read-write" }}]
overwrite = "allow"

[[tenants]]
name = "u"
backend = "b"
bucket_prefix = "ub-"
overwrite = "allow"

{entry}
"#
    )
}

struct Fixture {
    gw: TestGateway,
    addr: String,
    view: BackendView,
}

impl Fixture {
    async fn start(backend: Backend) -> Option<Fixture> {
        Self::start_with(backend, None).await
    }

    /// With `endpoint`, backend `b` is RGW reached at that address (a relay in front of it).
    async fn start_with(backend: Backend, endpoint: Option<&str>) -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let mut entry = backend.config_entry(&dir.path().join("data"))?;
        if let Some(e) = endpoint {
            let rgw = std::env::var("RGW_ENDPOINT").unwrap();
            entry = entry.replace(&format!("{rgw:?}"), &format!("{e:?}"));
        }
        let gw = start_text(&config(&entry), dir, backend).await;
        let addr = gw.addr();
        let view = BackendView::of(&gw);
        Some(Fixture { gw, addr, view })
    }

    /// Sends a request signed by `user` (SigV4 header, unsigned payload; `None`: anonymous) with
    /// `host` as Host (the gateway's address: tenant `t`).
    async fn send(
        &self,
        user: Option<&str>,
        host: Option<&str>,
        method: &str,
        target: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        let host = host.unwrap_or(&self.addr);
        let len = body.len().to_string();
        let mut all: Vec<(&str, &str)> = extra.to_vec();
        if !body.is_empty() || matches!(method, "PUT" | "POST") {
            all.push(("content-length", &len));
        }
        let headers = match user {
            Some(u) => {
                let (ak, sk) = keys(u, password_of(u));
                V4::unsigned(&ak, &sk, host).sign(method, target.as_bytes(), &all)
            }
            None => {
                let mut h = vec![("host".to_string(), host.to_string())];
                h.extend(all.iter().map(|(n, v)| (n.to_string(), v.to_string())));
                h
            }
        };
        let pieces = if body.is_empty() {
            vec![]
        } else {
            vec![body.to_vec()]
        };
        send(&self.addr, method, target.as_bytes(), &headers, pieces).await
    }

    /// Creates bucket `name` of tenant `t` (`u` with `host = Some("u.hcp.test")`) as USER.
    async fn bucket(&self, host: Option<&str>, tag: &str) -> String {
        let bucket = unique_bucket(tag);
        let r = self
            .send(Some(USER), host, "PUT", &format!("/{bucket}"), &[], b"")
            .await;
        assert_eq!(r.status, 200, "create {bucket}: {}", r.text());
        bucket
    }

    async fn put(&self, host: Option<&str>, bucket: &str, key: &str, body: &[u8]) {
        let r = self
            .send(
                Some(USER),
                host,
                "PUT",
                &format!("/{bucket}/{key}"),
                &[],
                body,
            )
            .await;
        assert_eq!(r.status, 200, "put {bucket}/{key}: {}", r.text());
    }
}

fn password_of(user: &str) -> &'static str {
    if user == READER {
        READER_PASSWORD
    } else {
        PASSWORD
    }
}

/// The backend's id sealed in an upload id, opened as the gateway opens it.
fn backend_upload_id(bucket: &str, bound: &str) -> String {
    use hcp_s3_gateway::request::validate::uploads::{Scope, UploadIds};
    let scope = Scope {
        tenant: "t",
        bucket,
    };
    let ids = UploadIds::new(BINDING_SECRET.as_bytes());
    ids.backend_id(scope, bound)
        .expect("an id the gateway issued")
}

async fn start_upload(f: &Fixture, bucket: &str, key: &str) -> (String, String) {
    let s3 = f.gw.client();
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let part = s3
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(b"part one".to_vec().into())
        .send()
        .await
        .unwrap();
    (id, part.e_tag().unwrap().to_string())
}

// ---------------------------------------------------------------------------------------------
// 1. Only the authorised operation reaches the backend.

/// A request naming two operations' sub-resources is authorised as one and must run as that one:
/// an admin-only user's `?delete&cors` deletes nothing, `?cors&acl` changes no ACL, an anonymous
/// reader's `?cors&acl` and `?lifecycle&uploads` show neither ACL nor upload ids, a user cannot
/// complete another's upload through `?uploads&uploadId=`, and `HEAD key?uploadId=` is a HEAD.
async fn only_the_classified_operation_reaches_the_backend(backend: Backend) {
    let Some(f) = Fixture::start(backend).await else {
        return;
    };
    let bucket = f.bucket(None, "public-pairs").await;
    let bb = format!("ta-{bucket}");
    f.put(None, &bucket, "k", b"keep").await;

    let delete = b"<Delete><Object><Key>k</Key></Object></Delete>";
    let md5 = content_md5(delete);
    f.send(
        Some(ADMIN_ONLY),
        None,
        "POST",
        &format!("/{bucket}?delete&cors"),
        &[("content-md5", &md5)],
        delete,
    )
    .await;
    assert_eq!(
        f.view.object(&bb, "k").await.as_deref(),
        Some(&b"keep"[..]),
        "?delete&cors deleted the object"
    );
    // A sub-resource with a method that has no operation on it is not the operation without it.
    for (method, target) in [
        ("DELETE", format!("/{bucket}/k?acl")),
        ("DELETE", format!("/{bucket}?versioning")),
        ("POST", format!("/{bucket}?acl")),
    ] {
        let r = f
            .send(Some(USER), None, method, &target, &[], b"other")
            .await;
        r.assert_hcp_error(405, "MethodNotAllowed");
    }
    assert_eq!(f.view.object(&bb, "k").await.as_deref(), Some(&b"keep"[..]));

    // A POST on a sub-resource is none of its operations (RGW would take a form for an upload
    // under the gateway's account).
    let boundary = "----x";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nposted\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\npublic-read-write\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\ndata\r\n--{boundary}--\r\n"
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    for sub in ["cors", "lifecycle", "policy"] {
        let r = f
            .send(
                Some(ADMIN_ONLY),
                None,
                "POST",
                &format!("/{bucket}?{sub}"),
                &[("content-type", &ct)],
                form.as_bytes(),
            )
            .await;
        r.assert_hcp_error(405, "MethodNotAllowed");
    }
    assert_eq!(
        f.view.object(&bb, "posted").await,
        None,
        "a POST ?cors stored an object"
    );

    f.send(
        Some(ADMIN_ONLY),
        None,
        "PUT",
        &format!("/{bucket}?cors&acl"),
        &[("x-amz-acl", "public-read-write")],
        b"",
    )
    .await;
    assert!(
        !f.view.bucket_is_public(&bb).await,
        "?cors&acl made the bucket public"
    );

    let (upload, etag) = start_upload(&f, &bucket, "mp").await;
    for query in [
        "cors&acl",
        "acl&cors",
        "lifecycle&uploads",
        "uploads&lifecycle",
    ] {
        let r = f
            .send(None, None, "GET", &format!("/{bucket}?{query}"), &[], b"")
            .await;
        let text = r.text();
        for leak in ["AccessControlPolicy", "<Grant>", "<UploadId>"] {
            assert!(
                !text.contains(leak),
                "anonymous ?{query} answered {leak}: {text}"
            );
        }
        assert!(
            !text.contains(&backend_upload_id(&bucket, &upload)),
            "{text}"
        );
    }

    // Another user completes USER's upload through CreateMultipartUpload's sub-resource.
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    for id in [backend_upload_id(&bucket, &upload), upload.clone()] {
        let id = percent_encode(&id);
        f.send(
            Some(WRITER),
            None,
            "POST",
            &format!("/{bucket}/mp?uploads&uploadId={id}"),
            &[],
            complete.as_bytes(),
        )
        .await;
    }
    assert_eq!(
        f.view.object(&bb, "mp").await,
        None,
        "the upload was completed"
    );
    if backend == Backend::Rgw {
        // (The attempts themselves started uploads of their own, as CreateMultipartUpload does.)
        let open = f.view.uploads(&bb).await;
        assert!(
            open.contains(&backend_upload_id(&bucket, &upload)),
            "{open:?}"
        );
    }

    // HEAD with someone's upload id is a HEAD of the object: it tells nothing of the upload.
    let id = percent_encode(&upload);
    for (key, status) in [("k", 200), ("absent", 404)] {
        let plain = f
            .send(
                Some(WRITER),
                None,
                "HEAD",
                &format!("/{bucket}/{key}"),
                &[],
                b"",
            )
            .await;
        for query in [format!("uploadId={id}"), "uploadId=forged".to_string()] {
            let r = f
                .send(
                    Some(WRITER),
                    None,
                    "HEAD",
                    &format!("/{bucket}/{key}?{query}"),
                    &[],
                    b"",
                )
                .await;
            assert_eq!(
                (r.status, plain.status),
                (status, status),
                "HEAD {key}?{query}"
            );
        }
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    sigv4::uri_encode(s.as_bytes(), false, &mut out);
    out
}

/// Listing a tenant's buckets needs an authenticated user (manual: "To list the buckets you
/// own, you must be an authenticated user") — an anonymous caller of a tenant with anonymous
/// grants (and no records kept) was sent the whole list. And a bucket's CORS rules (and its
/// lifecycle rules, the other configuration read) are read by its administrators ("Users with
/// the administrator or monitor role can read CORS settings"), not by whoever may read its
/// objects: a reader, an anonymous caller of a public bucket.
async fn bucket_lists_and_configurations_are_not_anyone_s(backend: Backend) {
    let Some(f) = Fixture::start(backend).await else {
        return;
    };
    let private = f.bucket(None, "private-list").await;
    let public = f.bucket(None, "public-cors").await;
    let cors = "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    let md5 = content_md5(cors.as_bytes());
    let target = format!("/{public}?cors");
    let r = f
        .send(
            Some(USER),
            None,
            "PUT",
            &target,
            &[("content-md5", &md5)],
            cors.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let before = f.gw.backend_requests();
    for auth in [None, Some("AWS all_users:"), Some("HCP all_users:")] {
        let extra: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let r = f.send(None, None, "GET", "/", &extra, b"").await;
        r.assert_hcp_error(403, "AccessDenied");
        assert!(!r.text().contains(&private), "{auth:?}: {}", r.text());
    }
    for (user, method) in [(None, "GET"), (None, "HEAD"), (Some(WRITER), "GET")] {
        for query in ["cors", "lifecycle"] {
            let target = format!("/{public}?{query}");
            let r = f.send(user, None, method, &target, &[], b"").await;
            match method {
                "HEAD" => assert_eq!(r.status, 403, "{query}"),
                _ => r.assert_hcp_error(403, "AccessDenied"),
            }
            assert!(
                !r.text().contains("AllowedOrigin"),
                "{user:?} {query}: {}",
                r.text()
            );
        }
    }
    assert_eq!(
        f.gw.backend_requests(),
        before,
        "a refused request reached the backend"
    );
    // (The bucket's administrator still reads them.)
    let r = f
        .send(Some(ADMIN_ONLY), None, "GET", &target, &[], b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("https://app.example"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_lists_and_configurations_are_not_anyone_s_on_the_embedded_backend() {
    bucket_lists_and_configurations_are_not_anyone_s(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_lists_and_configurations_are_not_anyone_s_on_rgw() {
    bucket_lists_and_configurations_are_not_anyone_s(Backend::Rgw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_classified_operation_reaches_the_embedded_backend() {
    only_the_classified_operation_reaches_the_backend(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_classified_operation_reaches_rgw() {
    only_the_classified_operation_reaches_the_backend(Backend::Rgw).await;
}

/// Query names that select an S3 operation (or are an operation's parameter that could change
/// its target), and names no operation defines.
const SELECTORS: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "uploads",
    "versioning",
    "versions",
    "policy",
    "tagging",
    "website",
    "restore",
    "retention",
    "legal-hold",
    "list-type=2",
    "uploadId=forged",
    "partNumber=1",
    "versionId=v1",
];
const NEVER_DEFINED: &[&str] = &[
    "x-id=DeleteObjects",
    "foo=bar",
    "X-Amz-Signature=00",
    "torrent",
];

/// Every pair of operation-selecting query names, with every method, on a bucket and on an
/// object, through a relay in front of RGW: each request the backend receives keeps the client's
/// method and carries at most one operation's sub-resource, and never a name no operation
/// defines (it is judged on what the backend received, not on what the gateway meant to send).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pair_of_sub_resources_reaches_the_backend_as_one_operation() {
    let Ok(rgw) = std::env::var("RGW_ENDPOINT") else {
        assert_eq!(std::env::var("HCP_GW_SKIP_EXTERNAL").as_deref(), Ok("1"));
        return;
    };
    let relay = Relay::start(rgw.trim_start_matches("http://").to_string()).await;
    let f = Fixture::start_with(Backend::Rgw, Some(&relay.endpoint()))
        .await
        .unwrap();
    let bucket = f.bucket(None, "pairs").await;
    f.put(None, &bucket, "k", b"keep").await;
    relay.take();
    let operation_names = |line: &str| -> Vec<String> {
        let target = line.split(' ').nth(1).unwrap_or_default();
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split('=').next().unwrap().to_string())
            .collect()
    };
    let selecting = [
        "acl",
        "cors",
        "delete",
        "lifecycle",
        "location",
        "uploads",
        "versioning",
        "versions",
        "policy",
        "tagging",
        "website",
        "restore",
        "retention",
        "legal-hold",
        "uploadId",
    ];
    let mut sent = 0;
    let mut reached = 0;
    for method in ["GET", "PUT", "POST", "DELETE", "HEAD"] {
        for path in [format!("/{bucket}"), format!("/{bucket}/k")] {
            for (i, a) in SELECTORS.iter().enumerate() {
                for b in SELECTORS[i + 1..].iter().chain(NEVER_DEFINED) {
                    let target = format!("{path}?{a}&{b}");
                    let r = f.send(Some(USER), None, method, &target, &[], b"").await;
                    sent += 1;
                    // (The health probe's `HEAD /` goes through the relay too, and so do the
                    // gateway's own HEADs before a write — a CreateBucket's of the bucket —
                    // or a DELETE, which carry no query, and its read of the bucket's
                    // versioning before a GET or HEAD of an object's version or a DELETE of an
                    // object, which no object request can become.)
                    let versioning_probe = format!("GET /ta-{bucket}/?versioning= HTTP/1.1");
                    let lock_probe = format!("GET /ta-{bucket}/?object-lock= HTTP/1.1");
                    let own_probe = |l: &String| {
                        l == "HEAD / HTTP/1.1"
                            || (method != "HEAD"
                                && l.starts_with("HEAD ")
                                && !l.split(' ').nth(1).unwrap_or_default().contains('?'))
                            || (path.ends_with("/k")
                                && matches!(method, "GET" | "HEAD" | "DELETE")
                                && *l == versioning_probe)
                            // (A delete asks whether its bucket keeps S3 Object Lock.)
                            || (matches!(method, "DELETE" | "POST") && *l == lock_probe)
                    };
                    for line in relay.take().into_iter().filter(|l| !own_probe(l)) {
                        reached += 1;
                        assert!(line.starts_with(&format!("{method} ")), "{target} → {line}");
                        let names = operation_names(&line);
                        let ops: Vec<&String> = names
                            .iter()
                            .filter(|n| selecting.contains(&n.as_str()))
                            .collect();
                        assert!(ops.len() <= 1, "{method} {target} reached RGW as {line}");
                        for never in ["x-id", "foo", "X-Amz-Signature", "torrent"] {
                            assert!(
                                !names.iter().any(|n| n == never),
                                "{method} {target} reached RGW as {line}"
                            );
                        }
                    }
                    assert_ne!(r.status, 0, "{method} {target}: no answer");
                }
            }
        }
    }
    assert!(
        sent > 2000 && reached > 300,
        "{sent} sent, {reached} reached"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A key never leaves its bucket.

const DOT_DOT: &[&str] = &["..", "%2e%2e", ".%2e", "%2E.", "%2E%2E"];

/// `..` in every place a key comes from — the path, `x-amz-copy-source`, a form's key (also
/// after `${filename}`) and a multi-object delete — is 400 MalformedXML before any backend, and
/// the other tenant's object stays as it was; no file appears anywhere else.
async fn keys_never_leave_their_bucket(backend: Backend) {
    let Some(f) = Fixture::start(backend).await else {
        return;
    };
    let victim = f.bucket(Some("u.hcp.test"), "victim").await;
    f.put(Some("u.hcp.test"), &victim, "secret", b"secret")
        .await;
    let vb = format!("ub-{victim}");
    let mine = f.bucket(None, "dropbox-mine").await;
    let files_before = f.view.all_files();
    let refused = |r: &RawResponse, what: &str| {
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "MalformedXML"),
            "{what}: {}",
            r.text()
        );
        assert_hcp_error_body(&r.text(), "MalformedXML");
    };
    for dots in DOT_DOT {
        let escape = format!("{dots}/{vb}/secret");
        for (method, body) in [("GET", &b""[..]), ("PUT", b"pwned"), ("DELETE", b"")] {
            let target = format!("/{mine}/{escape}");
            let r = f.send(Some(USER), None, method, &target, &[], body).await;
            refused(&r, &format!("{method} {target}"));
        }
        let r = f
            .send(
                Some(USER),
                None,
                "GET",
                &format!("/{mine}/a/{dots}/{dots}/{vb}/secret"),
                &[],
                b"",
            )
            .await;
        refused(&r, "nested");
        let source = format!("/{mine}/{escape}");
        let r = f
            .send(
                Some(USER),
                None,
                "PUT",
                &format!("/{mine}/stolen"),
                &[("x-amz-copy-source", &source)],
                b"",
            )
            .await;
        refused(&r, "copy source");
        let delete = format!(
            "<Delete><Object><Key>{}/{vb}/secret</Key></Object></Delete>",
            dots.replace("%2e", ".").replace("%2E", ".")
        );
        let md5 = content_md5(delete.as_bytes());
        let r = f
            .send(
                Some(USER),
                None,
                "POST",
                &format!("/{mine}?delete"),
                &[("content-md5", &md5)],
                delete.as_bytes(),
            )
            .await;
        refused(&r, "multi-object delete");
    }
    // A bucket that is a path: `..`, or a slash inside the (decoded) bucket name.
    for bucket in [
        "%2e%2e",
        "..",
        ".",
        &format!("..%2F{vb}"),
        &format!("{mine}%2F..%2F..%2F{vb}"),
    ] {
        for target in [
            format!("/{bucket}/secret"),
            format!("/{bucket}/{vb}/secret"),
        ] {
            let r = f.send(Some(USER), None, "GET", &target, &[], b"").await;
            r.assert_hcp_error(400, "InvalidBucketName");
        }
        let source = format!("/{bucket}/{vb}/secret");
        let r = f
            .send(
                Some(USER),
                None,
                "PUT",
                &format!("/{mine}/stolen"),
                &[("x-amz-copy-source", &source)],
                b"",
            )
            .await;
        r.assert_hcp_error(400, "InvalidBucketName");
    }
    // A form's key, written out and through ${filename}.
    for (key, filename) in [
        (format!("../{vb}/secret"), "f.txt".to_string()),
        ("x/../../y".to_string(), "f.txt".to_string()),
        ("${filename}".to_string(), format!("../{vb}/secret")),
        ("up/${filename}".to_string(), "../../x".to_string()),
    ] {
        let boundary = "----boundary";
        let form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{key}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/plain\r\n\r\npwned\r\n--{boundary}--\r\n"
        );
        let ct = format!("multipart/form-data; boundary={boundary}");
        let r = f
            .send(
                None,
                None,
                "POST",
                &format!("/{mine}"),
                &[("content-type", &ct)],
                form.as_bytes(),
            )
            .await;
        refused(&r, &format!("form key {key} with file {filename}"));
    }
    assert_eq!(
        f.view.object(&vb, "secret").await.as_deref(),
        Some(&b"secret"[..])
    );
    assert_eq!(
        f.view.keys(&format!("ta-{mine}")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        f.view.all_files(),
        files_before,
        "files appeared at the backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_leave_their_bucket_on_the_embedded_backend() {
    keys_never_leave_their_bucket(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_leave_their_bucket_on_rgw() {
    keys_never_leave_their_bucket(Backend::Rgw).await;
}

/// s3s-fs on its own, with no gateway in front (it makes keys file names): a key with a `.` or
/// `..` segment or an absolute one is refused by the wrapper around it, in the path, a copy
/// source and a multi-object delete, and no file outside the bucket is read, written or
/// removed. (The store never makes a key a path: its unit tests store such keys as keys.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_fs_keeps_keys_in_their_bucket_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = hcp_s3_gateway::backend::local::LocalBackend::start(
        &data,
        hcp_s3_gateway::config::LocalEngine::S3sFs,
    )
    .await
    .unwrap();
    let addr = store.addr.to_string();
    let keys = (store.access_key.as_str(), store.secret_key.as_str());
    let put = |target: String, body: &'static [u8]| {
        let addr = addr.clone();
        async move { common::raw::send_signed(&addr, keys, "PUT", &target, body).await }
    };
    assert_eq!(put("/mine".into(), b"").await.status, 200);
    assert_eq!(put("/other".into(), b"").await.status, 200);
    assert_eq!(put("/other/secret".into(), b"secret").await.status, 200);
    let outside = data.join("other").join("secret");
    let absolute = format!("{}", data.join("other").join("secret").display());
    for key in [
        "../other/secret".to_string(),
        "a/../../other/secret".to_string(),
        "./../other/secret".to_string(),
        absolute.clone(),
    ] {
        let mut encoded = String::new();
        sigv4::uri_encode(key.as_bytes(), true, &mut encoded);
        let target = format!("/mine/{encoded}");
        let target = target.replace("/mine//", "/mine/%2F");
        let got = common::raw::send_signed(&addr, keys, "GET", &target, b"").await;
        assert_ne!(got.status, 200, "GET {target}");
        assert!(
            !got.text().contains("secret"),
            "GET {target}: {}",
            got.text()
        );
        let r = put(target.clone(), b"pwned").await;
        assert_ne!(r.status, 200, "PUT {target}: {}", r.text());
        let r = common::raw::send_signed(&addr, keys, "DELETE", &target, b"").await;
        assert!(r.status >= 400, "DELETE {target}: {}", r.status);
        let v4 = V4::unsigned(keys.0, keys.1, &addr);
        let source = if key.starts_with('/') {
            format!("/mine{key}")
        } else {
            format!("/mine/{key}")
        };
        let headers = v4.sign(
            "PUT",
            b"/mine/copy",
            &[("x-amz-copy-source", &source), ("content-length", "0")],
        );
        let r = send(&addr, "PUT", b"/mine/copy", &headers, vec![]).await;
        assert_ne!(r.status, 200, "copy from {source}: {}", r.text());
        let delete = format!("<Delete><Object><Key>{key}</Key></Object></Delete>");
        let md5 = content_md5(delete.as_bytes());
        let len = delete.len().to_string();
        let headers = v4.sign(
            "POST",
            b"/mine?delete",
            &[("content-md5", &md5), ("content-length", &len)],
        );
        let r = send(
            &addr,
            "POST",
            b"/mine?delete",
            &headers,
            vec![delete.into_bytes()],
        )
        .await;
        assert!(
            r.status >= 400 || !r.text().contains("<Deleted>"),
            "multi-object delete of {key}: {}",
            r.text()
        );
        assert_eq!(std::fs::read(&outside).unwrap(), b"secret", "after {key}");
    }
    // A bucket that is a path.
    for target in [
        "/%2E%2E/other/secret",
        "/mine%2F..%2Fother/secret",
        "/./other/secret",
    ] {
        let got = common::raw::send_signed(&addr, keys, "GET", target, b"").await;
        assert!(
            !got.text().contains("secret") || got.status >= 400,
            "GET {target}: {}",
            got.text()
        );
        assert_ne!(got.status, 200, "GET {target}");
        assert_ne!(
            put(target.to_string(), b"pwned").await.status,
            200,
            "PUT {target}"
        );
    }
    assert!(!data.join("mine").join("copy").exists());
    let files = walk(&data);
    assert!(files.iter().all(|f| !f.ends_with("pwned")), "{files:?}");
    drop(store);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 3. An empty body is verified too.

/// A body's signed digest, Content-MD5, checksum and aws-chunked framing are checked before the
/// backend request is sent even when the body is empty: a mismatch stores nothing and leaves the
/// object it would have replaced as it was.
async fn empty_bodies_are_verified(backend: Backend) {
    let Some(f) = Fixture::start(backend).await else {
        return;
    };
    let bucket = f.bucket(None, "empty").await;
    let bb = format!("ta-{bucket}");
    f.put(None, &bucket, "k", b"original").await;
    let target = format!("/{bucket}/k");
    let (ak, sk) = keys(USER, PASSWORD);
    let seventeen = b"seventeen bytes!!";

    // The SHA-256 of 17 bytes is signed; none are sent.
    let digest = sigv4::sha256_hex(seventeen);
    let headers = V4::now(&ak, &sk, &f.addr, &digest).sign(
        "PUT",
        target.as_bytes(),
        &[("content-length", "0")],
    );
    let r = send(&f.addr, "PUT", target.as_bytes(), &headers, vec![]).await;
    assert_eq!(r.status, 400, "signed digest: {}", r.text());
    assert_hcp_error_body(&r.text(), &r.code());

    // Content-MD5 and a checksum of 17 bytes, no body.
    let md5 = content_md5(seventeen);
    let crc = base64::engine::general_purpose::STANDARD.encode(crc32(seventeen).to_be_bytes());
    for (name, value) in [
        ("content-md5", md5.as_str()),
        ("x-amz-checksum-crc32", crc.as_str()),
    ] {
        let r = f
            .send(Some(USER), None, "PUT", &target, &[(name, value)], b"")
            .await;
        r.assert_hcp_error(400, "BadDigest");
    }

    // aws-chunked with the body stripped, and with an empty body whose final chunk is forged.
    let v4 = V4::now(&ak, &sk, &f.addr, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    let headers = v4.sign(
        "PUT",
        target.as_bytes(),
        &[
            ("content-encoding", "aws-chunked"),
            ("content-length", "0"),
            ("x-amz-decoded-content-length", "17"),
        ],
    );
    let r = send(&f.addr, "PUT", target.as_bytes(), &headers, vec![]).await;
    assert_eq!(r.status, 400, "aws-chunked without a body: {}", r.text());
    assert_hcp_error_body(&r.text(), &r.code());
    let (headers, body) = v4.chunked_upload(&target, b"", 64 * 1024, Some(0));
    let r = send(&f.addr, "PUT", target.as_bytes(), &headers, body).await;
    r.assert_hcp_error(403, "SignatureDoesNotMatch");

    assert_eq!(
        f.view.object(&bb, "k").await.as_deref(),
        Some(&b"original"[..]),
        "an unverified empty body replaced the object"
    );

    // The same empty aws-chunked upload, signed correctly, does empty it.
    let (headers, body) = v4.chunked_upload(&target, b"", 64 * 1024, None);
    let r = send(&f.addr, "PUT", target.as_bytes(), &headers, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(f.view.object(&bb, "k").await.as_deref(), Some(&b""[..]));
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_bodies_are_verified_on_the_embedded_backend() {
    empty_bodies_are_verified(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_bodies_are_verified_on_rgw() {
    empty_bodies_are_verified(Backend::Rgw).await;
}

// ---------------------------------------------------------------------------------------------
// 4. Every effect an operation has needs its permission.

/// Headers that set an ACL need write-acl besides the write itself (PUT, copy, multipart, form);
/// headers whose effect the gateway does not offer (tags, Object Lock) are refused 501; either
/// way nothing is stored. With the permission, the ACL header takes effect.
async fn every_effect_needs_its_permission(backend: Backend) {
    let Some(f) = Fixture::start(backend).await else {
        return;
    };
    let bucket = f.bucket(None, "dropbox-effects").await;
    let bb = format!("ta-{bucket}");
    f.put(None, &bucket, "src", b"source").await;
    let source = format!("/{bucket}/src");
    let denied = |r: &RawResponse, what: &str| {
        assert_eq!(r.status, 403, "{what}: {}", r.text());
        r.assert_hcp_error(403, "AccessDenied");
    };
    for (key, headers) in [
        ("acl", vec![("x-amz-acl", "public-read")]),
        (
            "grant",
            vec![(
                "x-amz-grant-read",
                "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
            )],
        ),
        (
            "copy",
            vec![
                ("x-amz-acl", "public-read-write"),
                ("x-amz-copy-source", source.as_str()),
            ],
        ),
    ] {
        let r = f
            .send(
                Some(WRITER),
                None,
                "PUT",
                &format!("/{bucket}/{key}"),
                &headers,
                b"data",
            )
            .await;
        denied(&r, key);
        assert_eq!(f.view.object(&bb, key).await, None, "{key} was stored");
    }
    let r = f
        .send(
            Some(WRITER),
            None,
            "POST",
            &format!("/{bucket}/mpu?uploads"),
            &[("x-amz-acl", "public-read")],
            b"",
        )
        .await;
    denied(&r, "multipart");
    assert_eq!(f.view.uploads(&bb).await, Vec::<String>::new());
    // An anonymous form (the tenant lets anyone write dropbox-*) that sets an ACL.
    let boundary = "----b";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nform\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\npublic-read\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\ndata\r\n--{boundary}--\r\n"
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = f
        .send(
            None,
            None,
            "POST",
            &format!("/{bucket}"),
            &[("content-type", &ct)],
            form.as_bytes(),
        )
        .await;
    denied(&r, "form");
    assert_eq!(f.view.object(&bb, "form").await, None);

    for (name, value) in [
        ("x-amz-tagging", "a=b"),
        ("x-amz-website-redirect-location", "/elsewhere"),
    ] {
        let key = format!("unsupported-{name}");
        let r = f
            .send(
                Some(USER),
                None,
                "PUT",
                &format!("/{bucket}/{key}"),
                &[(name, value)],
                b"data",
            )
            .await;
        r.assert_hcp_error(501, "NotImplemented");
        assert_eq!(f.view.object(&bb, &key).await, None, "{name} was stored");
    }
    // Object Lock's headers are S3's values or refused (tests/retention.rs has the rest).
    let key = "lock-without-date";
    let lock = [("x-amz-object-lock-mode", "GOVERNANCE")];
    let target = format!("/{bucket}/{key}");
    let r = f
        .send(Some(USER), None, "PUT", &target, &lock, b"data")
        .await;
    r.assert_hcp_error(400, "InvalidArgument");
    assert_eq!(
        f.view.object(&bb, key).await,
        None,
        "stored without its date"
    );
    let locked = unique_bucket("locked");
    let r = f
        .send(
            Some(USER),
            None,
            "PUT",
            &format!("/{locked}"),
            &[("x-amz-bucket-object-lock-enabled", "maybe")],
            b"",
        )
        .await;
    r.assert_hcp_error(400, "InvalidArgument");
    let r = f
        .send(Some(USER), None, "HEAD", &format!("/{locked}"), &[], b"")
        .await;
    assert_eq!(r.status, 404, "the locked bucket was created");
    // A form's tagging field is refused as the header is.
    let tagged = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\ntagged\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"tagging\"\r\n\r\n<Tagging/>\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\ndata\r\n--{boundary}--\r\n"
    );
    let r = f
        .send(
            None,
            None,
            "POST",
            &format!("/{bucket}"),
            &[("content-type", &ct)],
            tagged.as_bytes(),
        )
        .await;
    r.assert_hcp_error(501, "NotImplemented");
    assert_eq!(f.view.object(&bb, "tagged").await, None);
    // A copy source that names no object.
    let r = f
        .send(
            Some(USER),
            None,
            "PUT",
            &format!("/{bucket}/copy"),
            &[("x-amz-copy-source", "/only-a-bucket")],
            b"",
        )
        .await;
    r.assert_hcp_error(400, "InvalidArgument");
    assert_eq!(f.view.object(&bb, "copy").await, None);

    // Response header overrides change the answer: only for authenticated requests, as in S3.
    let get = format!("/{bucket}/src?response-content-type=text%2Fhtml");
    let r = f.send(None, None, "GET", &get, &[], b"").await;
    r.assert_hcp_error(400, "InvalidArgument");
    let r = f
        .send(None, None, "GET", &format!("/{bucket}/src"), &[], b"")
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, "source"));
    let r = f.send(Some(USER), None, "GET", &get, &[], b"").await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("text/html"))
    );

    // Metadata a backend reads as an instruction (MinIO's snowball auto-extract), KMS keys and
    // storage classes that need a restore.
    for (name, value, status, code) in [
        (
            "x-amz-meta-snowball-auto-extract",
            "true",
            501,
            "NotImplemented",
        ),
        (
            "x-amz-meta-minio-snowball-prefix",
            "p/",
            501,
            "NotImplemented",
        ),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            "arn:aws:kms:us-east-1:1:key/k",
            400,
            "InvalidArgument",
        ),
        (
            "x-amz-storage-class",
            "DEEP_ARCHIVE",
            400,
            "InvalidArgument",
        ),
        // (OBS's archive class, by another name: refused by what is offered, not by a list of
        // what is not.)
        ("x-amz-storage-class", "COLD", 400, "InvalidArgument"),
    ] {
        let key = format!("refused-{name}");
        let r = f
            .send(
                Some(USER),
                None,
                "PUT",
                &format!("/{bucket}/{key}"),
                &[(name, value)],
                b"data",
            )
            .await;
        r.assert_hcp_error(status, code);
        assert_eq!(f.view.object(&bb, &key).await, None, "{name} was stored");
    }
    // A size only a header claims: the body is held to Content-Length, so that is what the
    // limit judges; a plain body without a length is refused.
    let (ak, sk) = keys(USER, PASSWORD);
    let target = format!("/{bucket}/huge");
    let headers = V4::unsigned(&ak, &sk, &f.addr).sign(
        "PUT",
        target.as_bytes(),
        &[
            ("content-length", "6442450944"),
            ("x-amz-decoded-content-length", "1"),
        ],
    );
    let r = send(&f.addr, "PUT", target.as_bytes(), &headers, vec![]).await;
    r.assert_hcp_error(400, "EntityTooLarge");
    let headers = V4::unsigned(&ak, &sk, &f.addr).sign(
        "PUT",
        target.as_bytes(),
        &[
            ("transfer-encoding", "chunked"),
            ("x-amz-decoded-content-length", "4"),
        ],
    );
    let r = send(
        &f.addr,
        "PUT",
        target.as_bytes(),
        &headers,
        vec![b"4\r\ndata\r\n0\r\n\r\n".to_vec()],
    )
    .await;
    r.assert_hcp_error(411, "MissingContentLength");
    // A streaming payload under a scheme that signs no chunk (HCP's, presigned URLs, SigV2):
    // decoded and its trailer verified as under SigV4, held to the decoded length it claims,
    // which the limit judges.
    let (in_t, in_t_secret) = keys(IN_T, PASSWORD);
    let hcp = format!("HCP {in_t}:{in_t_secret}");
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let headers: Vec<(String, String)> = [
        ("host", f.addr.as_str()),
        ("authorization", hcp.as_str()),
        ("date", date.as_str()),
        ("content-length", "6442450944"),
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "6442450000"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let r = send(&f.addr, "PUT", target.as_bytes(), &headers, vec![]).await;
    r.assert_hcp_error(400, "EntityTooLarge");
    assert_eq!(f.view.object(&bb, "huge").await, None);
    // Deleting a version is for good: the purge permission, not delete alone.
    let r = f
        .send(
            Some(WRITER),
            None,
            "DELETE",
            &format!("/{bucket}/src?versionId=v1"),
            &[],
            b"",
        )
        .await;
    r.assert_hcp_error(403, "AccessDenied");
    let delete = b"<Delete><Object><Key>src</Key><VersionId>v1</VersionId></Object></Delete>";
    let md5 = content_md5(delete);
    let r = f
        .send(
            Some(WRITER),
            None,
            "POST",
            &format!("/{bucket}?delete"),
            &[("content-md5", &md5)],
            delete,
        )
        .await;
    r.assert_hcp_error(403, "AccessDenied");
    assert_eq!(
        f.view.object(&bb, "src").await.as_deref(),
        Some(&b"source"[..])
    );

    // One header twice: what was checked and what the backend would read could differ.
    let r = f
        .send(
            Some(USER),
            None,
            "PUT",
            &format!("/{bucket}/twice"),
            &[("x-amz-acl", "private"), ("x-amz-acl", "public-read")],
            b"data",
        )
        .await;
    r.assert_hcp_error(400, "InvalidArgument");
    assert_eq!(f.view.object(&bb, "twice").await, None);
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\ntwice-form\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\nprivate\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"ACL\"\r\n\r\npublic-read\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\ndata\r\n--{boundary}--\r\n"
    );
    let r = f
        .send(
            None,
            None,
            "POST",
            &format!("/{bucket}"),
            &[("content-type", &ct)],
            form.as_bytes(),
        )
        .await;
    r.assert_hcp_error(400, "MalformedPOSTRequest");
    assert_eq!(f.view.object(&bb, "twice-form").await, None);

    // A header of another operation that S3 refuses outright: HCP's 400 (seed 002 line 365).
    let r = f
        .send(
            Some(USER),
            None,
            "GET",
            &format!("/{bucket}/src"),
            &[("x-amz-server-side-encryption", "aws:kms")],
            b"",
        )
        .await;
    r.assert_hcp_error(400, "InvalidArgument");

    // `private` is the default ACL: no further permission needed, nothing made public.
    let r = f
        .send(
            Some(WRITER),
            None,
            "PUT",
            &format!("/{bucket}/private"),
            &[("x-amz-acl", "private")],
            b"data",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!f.view.object_is_public(&bb, "private").await);
    // With write-acl the header works.
    let r = f
        .send(
            Some(USER),
            None,
            "PUT",
            &format!("/{bucket}/public"),
            &[("x-amz-acl", "public-read")],
            b"data",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    if backend == Backend::Rgw {
        assert!(f.view.object_is_public(&bb, "public").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_effect_needs_its_permission_on_the_embedded_backend() {
    every_effect_needs_its_permission(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_effect_needs_its_permission_on_rgw() {
    every_effect_needs_its_permission(Backend::Rgw).await;
}

// ---------------------------------------------------------------------------------------------
// 5. A refusal costs the refused client, not everyone.

/// Refused uploads whose bodies trickle in hold no place of `max_concurrent_requests` while they
/// drain; an anonymous form's fields before the file are bounded small; a backend hanging up on
/// requests does not make it unready (only failures to reach it count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_costs_only_the_refused_client() {
    use tokio::io::AsyncWriteExt;
    let gw = start_local_with("max_concurrent_requests = 4", "").await;
    let addr = gw.addr();
    let bucket = gw.with_bucket("drain").await;
    // Eight anonymous uploads (refused: the bucket is not anonymous) that send 1 KiB of 4 MiB.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "PUT /{bucket}/k HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
            4 << 20
        );
        c.write_all(head.as_bytes()).await.unwrap();
        c.write_all(&[b'x'; 1024]).await.unwrap();
        slow.push(c);
    }
    // Requests that carry no body, sent with one that never comes: a preflight (anonymous, no
    // signature) and a GET. Their bodies are not waited for.
    for method in ["OPTIONS", "GET", "OPTIONS", "GET"] {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "{method} /{bucket}/k HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://a\r\nAccess-Control-Request-Method: PUT\r\nContent-Length: 100000000\r\n\r\nx"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        slow.push(c);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for i in 0..4 {
        let out = gw.client().list_objects_v2().bucket(&bucket).send().await;
        assert!(
            out.is_ok(),
            "request {i} while refused uploads drain: {out:?}"
        );
    }
    drop(slow);

    // An anonymous form whose first field is 1 MiB: refused once 64 KiB are read.
    let boundary = "----f";
    let mut form =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\n")
            .into_bytes();
    form.extend(std::iter::repeat_n(b'p', 1 << 20));
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let len = form.len().to_string();
    let headers = vec![
        ("host".to_string(), addr.clone()),
        ("content-type".to_string(), ct),
        ("content-length".to_string(), len),
    ];
    let r = send(
        &addr,
        "POST",
        format!("/{bucket}").as_bytes(),
        &headers,
        vec![form],
    )
    .await;
    r.assert_hcp_error(400, "MalformedPOSTRequest");
    // The same with the bytes in a field's name and in part headers instead of its value.
    for (name, filename) in [
        ("n".repeat(1 << 20), "f".to_string()),
        ("file".to_string(), "f".repeat(1 << 20)),
    ] {
        let mut form = Vec::new();
        for _ in 0..2000 {
            form.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n")
                    .as_bytes(),
            );
        }
        form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\r\nx\r\n--{boundary}--\r\n").as_bytes());
        let headers = vec![
            ("host".to_string(), addr.clone()),
            (
                "content-type".to_string(),
                format!("multipart/form-data; boundary={boundary}"),
            ),
            ("content-length".to_string(), form.len().to_string()),
        ];
        let r = send(
            &addr,
            "POST",
            format!("/{bucket}").as_bytes(),
            &headers,
            vec![form],
        )
        .await;
        r.assert_hcp_error(400, "MalformedPOSTRequest");
    }
    gw.stop().await;

    // A backend that hangs up on every request is answered 503 each time and stays ready.
    let (gw, server) = start_with_dialect(common::dialect_server::Vendor::Aws, "").await;
    server.respond_to("GET", "hangup");
    let (ak, sk) = keys(USER, PASSWORD);
    for _ in 0..4 {
        let r = common::raw::send_signed(&gw.addr(), (&ak, &sk), "GET", "/bkt/k", b"").await;
        r.assert_hcp_error(503, "ServiceUnavailable");
    }
    let ready = reqwest::get(format!("{}/readyz", gw.admin)).await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
}

/// Forms read their fields before anyone is known, so at most an eighth of
/// `max_concurrent_requests` are read at once: forms trickling their fields (no credentials
/// needed) hold a few places, the next form is 503 at once, and other requests are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_forms_hold_few_places() {
    use tokio::io::AsyncWriteExt;
    let gw = start_local_with("max_concurrent_requests = 32", "").await;
    let addr = gw.addr();
    let bucket = gw.with_bucket("forms").await;
    let ct = "multipart/form-data; boundary=b";
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\nContent-Length: 1000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        slow.push(c);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let refused = || {
        gw.metrics()
            .overload_refusals
            .with_label_values(&["form"])
            .get()
    };
    let r = common::raw::post_form(&addr, &bucket, "k").await;
    r.assert_hcp_error(503, "ServiceUnavailable");
    assert_eq!(refused(), 1, "counted as an overload refusal");
    // Asked for a 100 Continue, such a form gets its 503 instead: its body is never asked for.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::io::AsyncReadExt::read(&mut c, &mut answer)
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    for i in 0..4 {
        let out = gw.client().list_objects_v2().bucket(&bucket).send().await;
        assert!(out.is_ok(), "request {i} beside trickling forms: {out:?}");
    }
    drop(slow);
    // Their places given back, a form is read again (refused here: the bucket is not
    // anonymous) — a refusal counted as any request's is.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let denied = || {
        gw.metrics()
            .auth_failures
            .with_label_values(&["AccessDenied"])
            .get()
    };
    let before = denied();
    let r = common::raw::post_form(&addr, &bucket, "k").await;
    r.assert_hcp_error(403, "AccessDenied");
    assert_eq!(denied(), before + 1);
    // So is a form that also carries an Authorization header (rule 47).
    let body = common::raw::form_body(&[("key", "k")], b"data");
    let headers = [
        ("host".to_string(), addr.clone()),
        ("content-type".to_string(), ct.to_string()),
        ("content-length".to_string(), body.len().to_string()),
        (
            "authorization".to_string(),
            "AWS someone:c2lnbmF0dXJl".to_string(),
        ),
    ];
    let r = common::raw::send(
        &addr,
        "POST",
        format!("/{bucket}").as_bytes(),
        &headers,
        vec![body],
    )
    .await;
    r.assert_hcp_error(403, "AccessDenied");
    assert_eq!(denied(), before + 2);
}

/// A multi-object delete is read strictly and built again in every tenant, with retention or
/// without: a document that a backend's XML reader could read otherwise than the gateway's checks
/// did (Go's, MinIO's, matches `<x:VersionId>` by its local name: a purge the purge check never
/// saw) is 400 MalformedXML and never reaches the backend; a plain one does. The backend's
/// result is HCP's: per-key errors in HCP's codes and words, and one cut off inside a code
/// HCP's 500 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_list_read_two_ways_never_reaches_the_backend() {
    let (gw, server) = start_with_dialect(common::dialect_server::Vendor::Minio, "").await;
    let (ak, sk) = keys(USER, PASSWORD);
    let post = |doc: &'static [u8]| {
        let addr = gw.addr();
        let (ak, sk) = (ak.clone(), sk.clone());
        async move {
            let md5 = content_md5(doc);
            let len = doc.len().to_string();
            let headers = V4::unsigned(&ak, &sk, &addr).sign(
                "POST",
                b"/bkt?delete",
                &[("content-md5", &md5), ("content-length", &len)],
            );
            send(&addr, "POST", b"/bkt?delete", &headers, vec![doc.to_vec()]).await
        }
    };
    for doc in [
        &b"<Delete><Object><Key>k</Key><x:VersionId xmlns:x=\"http://s3.amazonaws.com/doc/2006-03-01/\">v1</x:VersionId></Object></Delete>"[..],
        b"<Delete xmlns:x=\"urn:x\"><Object><Key>k</Key><x:VersionId>v1</x:VersionId></Object></Delete>",
        b"<Delete><Object><Key>k</Key><Version>v1</Version></Object></Delete>",
        b"<Delete><Object><Key>k</Key></Object><Other><Key>j</Key></Other></Delete>",
    ] {
        let before = server.count();
        post(doc).await.assert_hcp_error(400, "MalformedXML");
        assert_eq!(server.count(), before, "{}", String::from_utf8_lossy(doc));
    }
    // (Its bucket's Object Lock is asked first: `may_keep_locks`.)
    let posts = || server.seen().iter().filter(|(m, _, _)| m == "POST").count();
    let before = posts();
    let r = post(b"<Delete><Object><Key>k</Key></Object></Delete>").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(posts(), before + 1, "a plain document is forwarded");
    // Keys the backend did not delete are reported in HCP's codes and words, never its own.
    server.respond_to("POST", "delete-errors");
    let doc = b"<Delete><Object><Key>gone</Key></Object><Object><Key>k1</Key></Object><Object><Key>k2</Key></Object></Delete>";
    let r = post(doc).await;
    let text = r.text();
    assert_eq!(r.status, 200, "{text}");
    for leak in ["eu-internal", "secretprefix", "backend.internal", "XMinio"] {
        assert!(!text.contains(leak), "{leak}: {text}");
    }
    use hcp_s3_gateway::hcp::errors::{HcpCode, HcpError};
    for (key, code) in [
        ("k1", HcpCode::AccessDenied),
        ("k2", HcpCode::InternalError),
    ] {
        let HcpError { message, .. } = HcpError::new(code);
        let entry = format!(
            "<Error><Key>{key}</Key><Code>{code:?}</Code><Message>{message}</Message></Error>"
        );
        assert!(text.contains(&entry), "{entry}: {text}");
    }
    assert!(
        text.contains("<Deleted><Key>gone</Key></Deleted>"),
        "{text}"
    );
    // A result cut off inside a per-key code is no answer to rewrite: HCP's 500, at once (it
    // was read for ever, a worker spinning).
    server.respond_to("POST", "cut-delete-result");
    let cut = tokio::time::timeout(std::time::Duration::from_secs(10), post(doc)).await;
    cut.expect("the cut-off result was answered")
        .assert_hcp_error(500, "InternalError");
    gw.stop().await;
}

/// Setting a lifecycle configuration is 501 and never reaches the backend, whoever asks: its
/// rules would expire objects (a delete) and noncurrent versions (a purge) and move objects to
/// classes that need a restore, later, by the backend's hand, with no request to authorise.
/// Removing one is 501 as well (a backend's rules are its operator's); reading one (read) is
/// forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_configuration_is_never_set() {
    let (gw, server) = start_with_dialect(common::dialect_server::Vendor::Minio, "").await;
    let (ak, sk) = keys(USER, PASSWORD);
    let rules = b"<LifecycleConfiguration><Rule><ID>r</ID><Status>Enabled</Status><Filter><Prefix></Prefix></Filter><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule></LifecycleConfiguration>";
    let md5 = content_md5(rules);
    let len = rules.len().to_string();
    for target in ["/bkt?lifecycle", "/bkt?lifecycle=", "/bkt?cors&lifecycle"] {
        let headers = V4::unsigned(&ak, &sk, &gw.addr()).sign(
            "PUT",
            target.as_bytes(),
            &[("content-md5", &md5), ("content-length", &len)],
        );
        let before = server.count();
        let r = send(
            &gw.addr(),
            "PUT",
            target.as_bytes(),
            &headers,
            vec![rules.to_vec()],
        )
        .await;
        r.assert_hcp_error(501, "NotImplemented");
        assert_eq!(server.count(), before, "{target}");
    }
    for (method, forwarded) in [("GET", true), ("DELETE", false)] {
        let before = server.count();
        let r =
            common::raw::send_signed(&gw.addr(), (&ak, &sk), method, "/bkt?lifecycle", b"").await;
        if forwarded {
            assert!(r.status < 500, "{method}: {}", r.text());
        } else {
            r.assert_hcp_error(501, "NotImplemented");
        }
        assert_eq!(server.count(), before + u64::from(forwarded), "{method}");
    }
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Tenants cannot reach each other.

/// Two tenants on one backend need bucket prefixes that do not overlap.
#[test]
fn tenants_sharing_a_backend_need_separate_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let text = |a: &str, b: &str| {
        format!(
            "[addressing]\ndomains = [\"hcp.test\"]\n[[users]]\naccess_key = \"AK\"\nsecret_key = \"SK\"\n[[tenants]]\nname = \"one\"\nbackend = \"b\"\nbucket_prefix = \"{a}\"\n[[tenants]]\nname = \"two\"\nbackend = \"b\"\nbucket_prefix = \"{b}\"\n[[backends]]\nname = \"b\"\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:9\"\naccess_key = \"a\"\nsecret_key = \"s\"\n"
        )
    };
    for (a, b) in [("", ""), ("", "two-"), ("one-", "one-"), ("ab-", "ab-c-")] {
        let errors = hcp_s3_gateway::config::Config::parse(&text(a, b), dir.path()).unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("share backend")),
            "{a:?} {b:?}: {errors:?}"
        );
    }
    assert!(hcp_s3_gateway::config::Config::parse(&text("one-", "two-"), dir.path()).is_ok());
    // A user's tenant must exist.
    let unknown = text("one-", "two-").replace(
        "secret_key = \"SK\"\n",
        "secret_key = \"SK\"\ntenant = \"three\"\n",
    );
    let errors = hcp_s3_gateway::config::Config::parse(&unknown, dir.path()).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"three\" is not a defined tenant")),
        "{errors:?}"
    );
    // Two backend entries for one endpoint and account are one bucket namespace.
    let two_entries = text("", "").replacen("name = \"two\"\nbackend = \"b\"", "name = \"two\"\nbackend = \"c\"", 1)
        + "[[backends]]\nname = \"c\"\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:9\"\naccess_key = \"a\"\nsecret_key = \"other\"\n";
    assert!(two_entries.contains("backend = \"c\""));
    let errors = hcp_s3_gateway::config::Config::parse(&two_entries, dir.path()).unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("share backend")),
        "{errors:?}"
    );
}

fn sigv2_headers(method: &str, resource: &str, user: &str) -> Vec<(String, String)> {
    let (ak, sk) = keys(user, PASSWORD);
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let sts = format!("{method}\n\n\n{date}\n{resource}");
    let sig = base64::engine::general_purpose::STANDARD.encode(
        hcp_s3_gateway::request::authenticate::sigv2::sign(&sk, &sts),
    );
    vec![
        ("date".into(), date),
        ("authorization".into(), format!("AWS {ak}:{sig}")),
    ]
}

/// A signature that does not cover the Host cannot be replayed against another tenant: SigV2
/// (header and presigned) is accepted only on the user's own tenant, a user with grants in two
/// tenants must sign with SigV4 (which covers the Host), and a user who belongs to a tenant
/// acts nowhere else — there it is no user at all (manual: "Each tenant also has its own set
/// of user accounts"; seed 001's InvalidAccessKeyId), however it signs, rightly or not.
async fn signatures_stay_in_their_tenant(backend: Backend) {
    let Some(f) = Fixture::start(backend).await else {
        return;
    };
    let mut buckets = Vec::new();
    for host in [None, Some("u.hcp.test")] {
        let b = unique_bucket("same");
        for h in [None, Some("u.hcp.test")] {
            let r = f
                .send(Some(USER), h, "PUT", &format!("/{b}"), &[], b"")
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            f.put(h, &b, "k", if h.is_none() { b"in t" } else { b"in u" })
                .await;
        }
        buckets.push((host, b));
    }
    let bucket = &buckets[0].1;
    let target = format!("/{bucket}/k");
    let get = |host: &'static str, headers: Vec<(String, String)>| {
        let mut h = headers;
        h.push(("host".into(), host.to_string()));
        let (addr, target) = (f.addr.clone(), target.clone());
        async move { send(&addr, "GET", target.as_bytes(), &h, vec![]).await }
    };
    // IN_T belongs to t: its SigV2 request works there and is refused when replayed on u.
    let signed = sigv2_headers("GET", &target, IN_T);
    let r = get("t.hcp.test", signed.clone()).await;
    assert_eq!((r.status, r.text()), (200, "in t".to_string()));
    let before = f.gw.backend_requests();
    get("u.hcp.test", signed)
        .await
        .assert_hcp_error(403, "InvalidAccessKeyId");
    assert_eq!(
        f.gw.backend_requests(),
        before,
        "nothing reached the backend"
    );
    // Presigned SigV2 likewise.
    let (ak, sk) = keys(IN_T, PASSWORD);
    let expires = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300)
        .to_string();
    let sig = base64::engine::general_purpose::STANDARD.encode(
        hcp_s3_gateway::request::authenticate::sigv2::sign(
            &sk,
            &format!("GET\n\n\n{expires}\n{target}"),
        ),
    );
    let presigned = format!(
        "{target}?AWSAccessKeyId={ak}&Expires={expires}&Signature={}",
        percent_encode(&sig)
    );
    for (host, status) in [("t.hcp.test", 200), ("u.hcp.test", 403)] {
        let headers = vec![("host".to_string(), host.to_string())];
        let r = send(&f.addr, "GET", presigned.as_bytes(), &headers, vec![]).await;
        assert_eq!(r.status, status, "presigned on {host}: {}", r.text());
    }
    // USER has grants in both tenants: SigV2 nowhere, SigV4 (host signed) everywhere.
    for host in ["t.hcp.test", "u.hcp.test"] {
        get(host, sigv2_headers("GET", &target, USER))
            .await
            .assert_hcp_error(403, "AccessDenied");
        let r = f
            .send(Some(USER), Some(host), "GET", &target, &[], b"")
            .await;
        assert_eq!(r.status, 200, "SigV4 on {host}");
    }
    // IN_T's own SigV4 request on u: refused although its grants name every tenant — and
    // one signed with a wrong secret, or malformed past its key, is told the same (the key is
    // none of u's: a prober learns nothing of t's keys).
    let before = f.gw.backend_requests();
    f.send(Some(IN_T), Some("u.hcp.test"), "GET", &target, &[], b"")
        .await
        .assert_hcp_error(403, "InvalidAccessKeyId");
    let (ak, _) = keys(IN_T, PASSWORD);
    for (host, code) in [
        ("u.hcp.test", "InvalidAccessKeyId"),
        ("t.hcp.test", "SignatureDoesNotMatch"),
    ] {
        let wrong = V4::unsigned(&ak, "0000000000000000000000000000dead", host);
        let wrong = wrong.sign("GET", target.as_bytes(), &[]);
        let r = send(&f.addr, "GET", target.as_bytes(), &wrong, vec![]).await;
        r.assert_hcp_error(403, code);
    }
    assert_eq!(
        f.gw.backend_requests(),
        before,
        "nothing reached the backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_stay_in_their_tenant_on_the_embedded_backend() {
    signatures_stay_in_their_tenant(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_stay_in_their_tenant_on_rgw() {
    signatures_stay_in_their_tenant(Backend::Rgw).await;
}

/// On another tenant, a key of a tenant's own user — configured there, or granted only there —
/// is answered exactly as a key no one has —
/// whatever the scheme and whatever else is wrong with the request (malformed, a wrong
/// signature, an expiry that is no number, a form): nothing tells a prober the key exists
/// elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_s_key_is_answered_as_no_key() {
    let Some(f) = Fixture::start(Backend::Local).await else {
        return;
    };
    let (in_t, _) = keys(IN_T, PASSWORD);
    let nobody = "bm9ib2R5LWF0LWFsbA==".to_string();
    let date = hcp_s3_gateway::request::authenticate::format_amz_date(std::time::SystemTime::now());
    let day = date[..8].to_string();
    let answer = |key: String| {
        let (addr, date, day) = (f.addr.clone(), date.clone(), day.clone());
        async move {
            let host = ("host".to_string(), "u.hcp.test".to_string());
            let mut answers = Vec::new();
            let with = |more: Vec<(&str, String)>| {
                let mut h = vec![host.clone(), ("x-amz-date".into(), date.clone())];
                h.extend(more.into_iter().map(|(n, v)| (n.to_string(), v)));
                h
            };
            let v4 = |signature: &str| {
                format!(
                    "AWS4-HMAC-SHA256 Credential={key}/{day}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}"
                )
            };
            let zeros = "0".repeat(64);
            let headers = [
                with(vec![("authorization", v4("zz"))]),
                with(vec![("authorization", v4(&zeros))]),
                with(vec![("authorization", format!("AWS {key}:c2lnbmF0dXJl"))]),
                with(vec![(
                    "authorization",
                    format!("HCP {key}:0123456789abcdef0123456789abcdef"),
                )]),
            ];
            for h in headers {
                let r = send(&addr, "GET", b"/b/k", &h, vec![]).await;
                answers.push((r.status, r.text()));
            }
            for query in [
                format!("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={key}%2F{day}%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature={zeros}"),
                format!("/b/k?AWSAccessKeyId={key}&Expires=abc&Signature=eA%3D%3D"),
                format!("/b/k?AWSAccessKeyId={key}&Expires=9999999999&Signature=eA%3D%3D"),
            ] {
                let r = send(&addr, "GET", query.as_bytes(), std::slice::from_ref(&host), vec![]).await;
                answers.push((r.status, r.text()));
            }
            let body = common::raw::signed_form_body(
                (&key, "wrong-secret"),
                "b",
                (&[("key", "k")], &[]),
                b"x",
            );
            let r = common::raw::post_multipart_with(&addr, "b", &body, &[("host", "u.hcp.test")])
                .await;
            answers.push((r.status, r.text()));
            answers
        }
    };
    let strip = |answers: Vec<(u16, String)>| -> Vec<(u16, String)> {
        // (The request id differs from answer to answer.)
        answers
            .into_iter()
            .map(|(status, text)| {
                let code = text
                    .split("<Code>")
                    .nth(1)
                    .and_then(|r| r.split("</Code>").next());
                let message = text
                    .split("<Message>")
                    .nth(1)
                    .and_then(|r| r.split("</Message>").next());
                (status, format!("{code:?} {message:?}"))
            })
            .collect()
    };
    let unknown = strip(answer(nobody).await);
    let invalid = |(_, t): &(u16, String)| t.contains("InvalidAccessKeyId");
    assert!(unknown.iter().any(invalid), "{unknown:?}");
    assert_eq!(
        strip(answer(in_t).await),
        unknown,
        "a user configured with t"
    );
    // A user with no tenant configured belongs where its grants are (WRITER's, ADMIN_ONLY's:
    // t's alone): on u it is no user either.
    for user in [WRITER, ADMIN_ONLY] {
        let (key, _) = keys(user, PASSWORD);
        assert_eq!(strip(answer(key).await), unknown, "{user}");
    }
}

// ---------------------------------------------------------------------------------------------
// 8. The backend stays invisible.

/// Preflights: never signature-checked (a presigned URL's preflight is answered by the bucket's
/// CORS configuration), and refused the same way whether the bucket exists or not. Listings and
/// ACL documents name the tenant, never the backend account.
async fn the_backend_stays_invisible(backend: Backend) {
    let Some(f) = Fixture::start(backend).await else {
        return;
    };
    let bucket = f.bucket(None, "invisible").await;
    f.put(None, &bucket, "k", b"data").await;
    let preflight = |path: String| {
        let addr = f.addr.clone();
        async move {
            let headers = vec![
                ("host".to_string(), addr.clone()),
                ("origin".to_string(), "http://app.example".to_string()),
                (
                    "access-control-request-method".to_string(),
                    "PUT".to_string(),
                ),
            ];
            send(&addr, "OPTIONS", path.as_bytes(), &headers, vec![]).await
        }
    };
    let missing = preflight(format!("/{}/k", unique_bucket("absent"))).await;
    let existing = preflight(format!("/{bucket}/k")).await;
    for r in [&missing, &existing] {
        r.assert_hcp_error(403, "AccessDenied");
    }
    let message = |r: &RawResponse| {
        let text = r.text();
        let m = text.split("<Message>").nth(1)?.split("</Message>").next()?;
        Some(m.to_string())
    };
    assert_eq!(
        message(&missing),
        message(&existing),
        "a preflight tells whether a bucket exists"
    );

    if backend == Backend::Rgw {
        let cors = ("http://app.example", &["PUT", "GET"][..]);
        set_cors(&f.gw.client(), &bucket, cors.0, cors.1).await;
        // A browser's preflight before a presigned PUT carries the URL's query.
        let presigned = format!(
            "/{bucket}/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
        );
        let r = preflight(presigned).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("http://app.example")
        );
        // The actual request that follows gets the CORS headers too.
        let r = f
            .send(
                Some(USER),
                None,
                "GET",
                &format!("/{bucket}/k"),
                &[("origin", "http://app.example")],
                b"",
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("http://app.example")
        );
        // An error answer keeps them: a browser reads the 404 only with them.
        let r = f
            .send(
                Some(USER),
                None,
                "GET",
                &format!("/{bucket}/missing"),
                &[("origin", "http://app.example")],
                b"",
            )
            .await;
        r.assert_hcp_error(404, "NoSuchKey");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("http://app.example")
        );
    }

    if backend == Backend::Rgw {
        // An ACL read through the gateway names the tenant; put back, it keeps the backend's
        // owner. A document naming another owner is refused.
        let r = f
            .send(Some(USER), None, "GET", &format!("/{bucket}?acl"), &[], b"")
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let doc = r.text();
        let r = f
            .send(
                Some(USER),
                None,
                "PUT",
                &format!("/{bucket}?acl"),
                &[],
                doc.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 200, "round trip: {}", r.text());
        let BackendView::S3(rgw) = &f.view else {
            unreachable!()
        };
        let acl = rgw
            .get_bucket_acl()
            .bucket(format!("ta-{bucket}"))
            .send()
            .await
            .unwrap();
        let owner = acl.owner().and_then(|o| o.id()).unwrap().to_string();
        assert!(
            doc.contains("<DisplayName>t</DisplayName>") && !doc.contains(&owner),
            "{doc}"
        );
        let grants = acl.grants();
        assert!(grants
            .iter()
            .any(|g| g.grantee().and_then(|g| g.id()) == Some(owner.as_str())));
        let shown = doc
            .split("<ID>")
            .nth(1)
            .unwrap()
            .split("</ID>")
            .next()
            .unwrap();
        let other = doc.replace(shown, "someone-else");
        let r = f
            .send(
                Some(USER),
                None,
                "PUT",
                &format!("/{bucket}?acl"),
                &[],
                other.as_bytes(),
            )
            .await;
        r.assert_hcp_error(400, "InvalidArgument");
        // A grantee typed twice (the gateway and RGW would each read another type).
        let twice = doc.replacen(
            "xsi:type=\"CanonicalUser\"",
            "xsi:type=\"CanonicalUser\" type=\"Group\"",
            1,
        );
        assert_ne!(twice, doc);
        let r = f
            .send(
                Some(USER),
                None,
                "PUT",
                &format!("/{bucket}?acl"),
                &[],
                twice.as_bytes(),
            )
            .await;
        r.assert_hcp_error(400, "MalformedXML");
    }

    // Owners are the tenant's, in listings and ACL documents.
    let rgw_user = std::env::var("RGW_ACCESS_KEY").unwrap_or_default();
    for target in [
        format!("/{bucket}?fetch-owner=true&list-type=2"),
        format!("/{bucket}"),
        format!("/{bucket}?acl"),
        format!("/{bucket}/k?acl"),
        "/".to_string(),
    ] {
        let r = f.send(Some(USER), None, "GET", &target, &[], b"").await;
        let text = r.text();
        if r.status != 200 {
            assert_eq!(backend, Backend::Local, "{target}: {text}");
            continue;
        }
        for leak in [
            "Main User",
            "<ID>main</ID>",
            "<ID>testid</ID>",
            rgw_user.as_str(),
        ] {
            assert!(
                leak.is_empty() || !text.contains(leak),
                "{target} names the backend account: {text}"
            );
        }
        // (Every owner named, as HCP's: by the tenant where owners are not kept.)
        if text.contains("<Owner>") {
            assert!(text.contains("<DisplayName>t</DisplayName>"), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_stays_invisible_on_the_embedded_backend() {
    the_backend_stays_invisible(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_stays_invisible_on_rgw() {
    the_backend_stays_invisible(Backend::Rgw).await;
}

/// With no bucket prefix, a bucket name that is one of the backend's own API paths (RGW's admin
/// and Swift entry points) is refused before anything is signed with the backend's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_api_paths_are_never_signed() {
    let Some(gw) = start(Backend::Rgw).await else {
        return;
    };
    let (ak, sk) = keys(USER, PASSWORD);
    let before = gw.backend_requests();
    for target in [
        "/admin/metadata/user",
        "/admin/bucket",
        "/ADMIN/usage",
        "/swift/v1",
        "/auth/v1.0",
        "/info",
    ] {
        let r = common::raw::send_signed(&gw.addr(), (&ak, &sk), "GET", target, b"").await;
        r.assert_hcp_error(400, "InvalidBucketName");
    }
    assert_eq!(gw.backend_requests(), before);
}

/// The MAC an id of the earlier form (`1.<initiator>.<MAC>.<backend id>`, `0.<MAC>.<backend
/// id>`) carries, as the gateway versions before sealed ids wrote it.
fn earlier_mac(bucket: &str, initiator: &str, backend_id: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(BINDING_SECRET.as_bytes())
        .expect("any length");
    for part in [
        "hcp-s3-gateway upload binding",
        "t",
        bucket,
        initiator,
        backend_id,
    ] {
        mac.update(part.as_bytes());
        mac.update(b"\0");
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
}

/// Ids of the earlier form still open, as issued — not respelled. An unattributed one
/// (`0.<MAC>.<backend id>`: earlier versions listed an upload so when they did not know its
/// initiator) written as bound to no one (`1..<MAC>.<backend id>`) names the empty key — an
/// anonymous caller's — its initiator: another user is told no such upload for every use of
/// it (a part, the list, the complete, the abort), where it would have been told the upload
/// is someone else's; an anonymous caller, even where anyone may write, is refused every
/// multipart use. The unattributed id itself is someone else's (403), its initiator's own id
/// of the earlier form still lists its part, and the upload keeps only that part.
async fn respelled_upload_ids_open_nothing(backend: Backend) {
    let Some(f) = Fixture::start(backend).await else {
        return;
    };
    let bucket = f.bucket(None, "dropbox-respelled").await;
    let bb = format!("ta-{bucket}");
    let (upload, etag) = start_upload(&f, &bucket, "mp").await;
    let backend_id = backend_upload_id(&bucket, &upload);
    let mac = earlier_mac(&bucket, "", &backend_id);
    let unattributed = percent_encode(&format!("0.{mac}.{backend_id}"));
    let respelled = percent_encode(&format!("1..{mac}.{backend_id}"));
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let uses = |id: &str| {
        [
            (
                "PUT",
                format!("/{bucket}/mp?partNumber=2&uploadId={id}"),
                "part two".as_bytes(),
            ),
            ("GET", format!("/{bucket}/mp?uploadId={id}"), b"".as_slice()),
            (
                "POST",
                format!("/{bucket}/mp?uploadId={id}"),
                complete.as_bytes(),
            ),
            (
                "DELETE",
                format!("/{bucket}/mp?uploadId={id}"),
                b"".as_slice(),
            ),
        ]
    };
    let before = f.gw.backend_requests();
    for (method, target, body) in uses(&respelled) {
        let r = f.send(Some(WRITER), None, method, &target, &[], body).await;
        r.assert_hcp_error(404, "NoSuchUpload");
        let r = f.send(None, None, method, &target, &[], body).await;
        r.assert_hcp_error(403, "AccessDenied");
    }
    for (method, target, body) in uses(&unattributed) {
        let r = f.send(Some(WRITER), None, method, &target, &[], body).await;
        r.assert_hcp_error(403, "AccessDenied");
    }
    assert_eq!(f.gw.backend_requests(), before, "a use reached the backend");
    assert!(
        f.view.uploads(&bb).await.contains(&backend_id),
        "the upload was aborted"
    );
    assert_eq!(
        f.view.object(&bb, "mp").await,
        None,
        "the upload was completed"
    );
    // Its initiator's own id of the earlier form lists the one part it uploaded.
    let user = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(keys(USER, PASSWORD).0);
    let mac = earlier_mac(&bucket, &keys(USER, PASSWORD).0, &backend_id);
    let own = percent_encode(&format!("1.{user}.{mac}.{backend_id}"));
    let r = f
        .send(
            Some(USER),
            None,
            "GET",
            &format!("/{bucket}/mp?uploadId={own}"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text().matches("<Part>").count(), 1, "{}", r.text());
}

/// A listing's `UploadIdMarker` is the client's own marker, as sent (HCP: "the value of the
/// upload-id-marker query parameter included in the request"): a marker that names no upload
/// is never answered as an id the gateway issued — which would then name, to a part, the list,
/// the complete or the abort, whatever the client wrote. Nor is it sent: the backend would
/// list the key marker's uploads whose own ids sort after it, and so tell, marker by marker,
/// the ids the gateway keeps hidden — every marker it did not issue lists the same, what a key
/// marker alone lists (RGW lists the key marker's own uploads for it, S3 and the store those
/// after), and other keys' uploads are not skipped (`mp.txt`).
async fn upload_id_markers_are_echoed_not_issued(backend: Backend) {
    let Some(f) = Fixture::start(backend).await else {
        return;
    };
    let bucket = f.bucket(None, "dropbox-markers").await;
    let bb = format!("ta-{bucket}");
    let (upload, _) = start_upload(&f, &bucket, "mp").await;
    start_upload(&f, &bucket, "mp.txt").await;
    let marker_of = |text: &str| {
        let (_, rest) = text.split_once("<UploadIdMarker>")?;
        rest.split_once("</UploadIdMarker>")
            .map(|(m, _)| m.to_string())
    };
    let alone = format!("/{bucket}?uploads&key-marker=mp");
    let r = f.send(Some(USER), None, "GET", &alone, &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<Key>mp.txt</Key>"), "{}", r.text());
    let after_key = r.text().matches("<Upload>").count();
    let mut listed = Vec::new();
    for marker in ["ANYTHING", "0", "~", upload.as_str()] {
        let target = format!(
            "/{bucket}?uploads&key-marker=mp&upload-id-marker={}",
            percent_encode(marker)
        );
        let r = f.send(Some(USER), None, "GET", &target, &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let echoed = marker_of(&r.text());
        assert_eq!(echoed.as_deref(), Some(marker), "{}", r.text());
        listed.push(r.text().matches("<Upload>").count());
    }
    assert_eq!(
        listed[..3],
        [after_key; 3],
        "uploads listed after each marker"
    );
    let abort = format!("/{bucket}/mp?uploadId=ANYTHING");
    let r = f.send(Some(USER), None, "DELETE", &abort, &[], b"").await;
    r.assert_hcp_error(404, "NoSuchUpload");
    assert_eq!(f.view.uploads(&bb).await.len(), 2, "the upload was aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_id_markers_are_echoed_not_issued_on_the_embedded_backend() {
    upload_id_markers_are_echoed_not_issued(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_id_markers_are_echoed_not_issued_on_rgw() {
    upload_id_markers_are_echoed_not_issued(Backend::Rgw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respelled_upload_ids_open_nothing_on_the_embedded_backend() {
    respelled_upload_ids_open_nothing(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respelled_upload_ids_open_nothing_on_rgw() {
    respelled_upload_ids_open_nothing(Backend::Rgw).await;
}

//! Backends as users deploy them: reached over TLS with their own certificates.

mod common;

use common::raw::{send, V4};
use common::*;

/// The RGW endpoint behind a TLS front whose certificate comes from a test CA.
async fn rgw_behind_tls(
    dir: &std::path::Path,
) -> Option<(std::net::SocketAddr, std::path::PathBuf)> {
    let endpoint = std::env::var("RGW_ENDPOINT").ok();
    let Some(endpoint) = endpoint else {
        assert_eq!(
            std::env::var("HCP_GW_SKIP_EXTERNAL").as_deref(),
            Ok("1"),
            "RGW_ENDPOINT is not set: run the tests through scripts/test.sh"
        );
        return None;
    };
    Some(tls_front(endpoint.trim_start_matches("http://"), dir).await)
}

fn https_backend(addr: std::net::SocketAddr, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file.map_or(String::new(), |f| {
        format!("ca_file = {:?}\n", f.display().to_string())
    });
    format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"s3\"\ndialect = \"ceph\"\nendpoint = \"https://{addr}\"\naccess_key = {:?}\nsecret_key = {:?}\n{ca}",
        base_config(""),
        std::env::var("RGW_ACCESS_KEY").unwrap(),
        std::env::var("RGW_SECRET_KEY").unwrap(),
    )
}

/// An `https://` backend whose certificate a test CA signed: trusted through `ca_file`, every
/// operation works (pooled TLS connections included); without the CA the certificate is
/// refused and clients get 503, as for any unreachable backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_backend_verified_against_a_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let Some((front, ca_file)) = rgw_behind_tls(dir.path()).await else {
        return;
    };
    let gw = start_text(
        &https_backend(front, Some(&ca_file)),
        tempfile::tempdir().unwrap(),
        Backend::Rgw,
    )
    .await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "tls").await;
    let data = pattern(3 * 1024 * 1024, 11);
    for key in ["a", "b"] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(data.clone().into())
            .send()
            .await
            .unwrap();
    }
    assert!(object_bytes(&s3, &bucket, "b").await == data);
    let reused = gw
        .metrics()
        .backend_connections
        .with_label_values(&["b", "true"])
        .get();
    assert!(reused >= 1, "TLS connections are pooled");
    gw.stop().await;

    let untrusting = start_text(
        &https_backend(front, None),
        tempfile::tempdir().unwrap(),
        Backend::Rgw,
    )
    .await;
    let e = untrusting.client().list_buckets().send().await.unwrap_err();
    assert_eq!(sdk_error(&e), (503, "ServiceUnavailable".into()));
}

/// Retries, counted at a recorded AWS-dialect backend that answers 503 SlowDown: a bodiless GET
/// is sent three times (two retries with backoff) before the client gets HCP's 503; a PUT with a
/// body and a POST are sent once. A backend that refuses connections is tried three times too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_requests_are_retried_and_bodies_never_replayed() {
    use common::dialect_server::{DialectServer, Vendor};
    let server = DialectServer::start(Vendor::Aws).await;
    let text = config_with_endpoint(&server.endpoint());
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await;
    let s3 = gw.client();
    server.respond_to("*", "error|SlowDown|503");
    let get = s3.get_object().bucket("bkt").key("k");
    let sent = attempts(&server, get.send()).await;
    assert_eq!(sent, (503, 3), "GET: one try and two retries");
    // Each retry is the same request, signed again: same line, same headers but the date and
    // the signature over it.
    let seen = server.seen();
    let tries: Vec<_> = seen[seen.len() - 3..]
        .iter()
        .map(|(method, target, headers)| {
            let mut kept: Vec<(String, String)> = headers
                .iter()
                .filter(|(n, _)| n != "x-amz-date")
                .map(|(n, v)| match n.as_str() {
                    "authorization" => (n.clone(), v.split(", Signature=").next().unwrap().into()),
                    _ => (n.clone(), v.clone()),
                })
                .collect();
            kept.sort();
            (method.clone(), target.clone(), kept)
        })
        .collect();
    assert!(
        tries[0]
            .2
            .iter()
            .any(|(n, v)| n == "authorization" && v.contains("Credential=AK/")),
        "{tries:?}"
    );
    assert_eq!(tries[0], tries[1], "the first retry");
    assert_eq!(tries[0], tries[2], "the second retry");
    for (method, target, headers) in &seen[seen.len() - 3..] {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let signature = header("authorization")
            .and_then(|a| a.split(", Signature=").nth(1))
            .map(str::to_string);
        let expected = common::raw::sigv4_signature_for("SK", method, target, header);
        assert!(expected.is_some() && signature == expected, "{headers:?}");
    }
    let put = s3
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(b"body".to_vec().into());
    let sent = attempts(&server, put.send()).await;
    assert_eq!(sent, (503, 1), "a body is never replayed");
    let post = s3.create_multipart_upload().bucket("bkt").key("k");
    let sent = attempts(&server, post.send()).await;
    assert_eq!(sent, (503, 1), "a POST is not retried");
    let retries = gw
        .metrics()
        .backend_retries
        .with_label_values(&["b", "busy"])
        .get();
    assert_eq!(retries, 2);
    gw.stop().await;

    // Nothing listens: connection failures are retried as well, then 503.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let text = config_with_endpoint(&format!("http://{addr}"));
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await;
    let e = gw.client().list_buckets().send().await.unwrap_err();
    assert_eq!(sdk_error(&e), (503, "ServiceUnavailable".into()));
    let connect_retries = gw
        .metrics()
        .backend_retries
        .with_label_values(&["b", "connect"])
        .get();
    assert_eq!(connect_retries, 2);
}

/// One gateway, three tenants on three backends at once: the embedded backend, Ceph RGW and
/// moto. Each tenant's buckets land on its own backend under its prefix, and `GET /` on a tenant
/// lists only that tenant's buckets, prefix stripped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tenants_on_three_backends() {
    let dir = tempfile::tempdir().unwrap();
    let (Some(rgw), Some(moto)) = (
        Backend::Rgw.config_entry(dir.path()),
        Backend::Moto.config_entry(dir.path()),
    ) else {
        return;
    };
    let local = Backend::Local
        .config_entry(&dir.path().join("data"))
        .unwrap();
    let text = format!(
        "{}\n[[tenants]]\nname = \"rgw\"\nbackend = \"rgw\"\nbucket_prefix = \"gw-r-\"\n\n[[tenants]]\nname = \"moto\"\nbackend = \"moto\"\nbucket_prefix = \"gw-m-\"\n\n{local}\n{}\n{}",
        base_config(""),
        rgw.replace("name = \"b\"", "name = \"rgw\""),
        moto.replace("name = \"b\"", "name = \"moto\""),
    );
    let gw = start_text(&text, dir, Backend::Local).await;
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let bucket = unique_bucket("multi");
    let port = gw.s3_port();
    let request =
        |tenant: &'static str, method: &'static str, target: String, body: &'static [u8]| {
            signed_request(&addr, port, tenant, method, target, body)
        };
    for tenant in ["t", "rgw", "moto"] {
        let r = request(tenant, "PUT", format!("/{bucket}"), b"").await;
        assert_eq!(r.status, 200, "{tenant}: {}", r.text());
        let r = request(tenant, "PUT", format!("/{bucket}/k"), tenant.as_bytes()).await;
        assert_eq!(r.status, 200, "{tenant}: {}", r.text());
    }
    for tenant in ["t", "rgw", "moto"] {
        let r = request(tenant, "GET", format!("/{bucket}/k"), b"").await;
        assert_eq!(r.body, tenant.as_bytes(), "{tenant} reads its own object");
        let listing = request(tenant, "GET", "/".into(), b"").await.text();
        assert!(
            listing.contains(&format!("<Name>{bucket}</Name>")),
            "{tenant}: {listing}"
        );
        assert!(
            !listing.contains("<Name>gw-"),
            "{tenant}: prefixes leak: {listing}"
        );
    }
    // The buckets are where the tenants' backends and prefixes put them.
    for (backend, prefix) in [("RGW", "gw-r-"), ("MOTO", "gw-m-")] {
        let var = |k: &str| std::env::var(format!("{backend}_{k}")).unwrap();
        let direct = sdk_client(&var("ENDPOINT"), &var("ACCESS_KEY"), &var("SECRET_KEY"));
        direct
            .head_object()
            .bucket(format!("{prefix}{bucket}"))
            .key("k")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
    }
}

/// A request signed by `USER`, addressed to `tenant` by host name (`TENANT.hcp.test`).
async fn signed_request(
    addr: &str,
    port: u16,
    tenant: &str,
    method: &str,
    target: String,
    body: &[u8],
) -> common::raw::RawResponse {
    let (ak, sk) = keys(USER, PASSWORD);
    let host = format!("{tenant}.hcp.test:{port}");
    common::raw::send_signed_as(addr, &host, (&ak, &sk), method, &target, body).await
}

/// The status a request got and how many requests the recorded server saw meanwhile.
async fn attempts<T, E>(
    server: &common::dialect_server::DialectServer,
    request: impl std::future::Future<
        Output = Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    >,
) -> (u16, u64)
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    let before = server.count();
    let Err(e) = request.await else {
        panic!("the request succeeded");
    };
    (sdk_error(&e).0, server.count() - before)
}

/// A gateway whose backend is a recorded OBS signed OBS's own way (`kind = "obs"`, `signing =
/// "obs"`), its configuration's text changed by `edit`.
async fn on_native_obs(
    edit: impl FnOnce(String) -> String,
) -> (TestGateway, common::dialect_server::DialectServer) {
    use common::dialect_server::{DialectServer, Vendor};
    let server = DialectServer::start(Vendor::Obs).await;
    let text = config_with_endpoint(&server.endpoint())
        .replace("kind = \"s3\"", "kind = \"obs\"\nsigning = \"obs\"");
    let gw = start_text(&edit(text), tempfile::tempdir().unwrap(), Backend::Local).await;
    (gw, server)
}

/// OBS answers a HEAD of a bucket with the bucket's default storage class, location and its
/// own version (Huawei's sample: `x-obs-storage-class`, `x-obs-bucket-location`,
/// `x-obs-version`): none reaches the client, as HCP's HEAD of a bucket names none; an
/// object's storage class still does.
#[tokio::test]
async fn a_bucket_s_head_names_nothing_of_obs_s_configuration() {
    let (gw, server) = on_native_obs(|text| text).await;
    let obs = "object-with|x-obs-storage-class:WARM|x-obs-bucket-location:cn-north-4|\
               x-obs-version:3.0|x-obs-request-id:0000018A";
    server.respond_to("HEAD", obs);
    let r = as_user(&gw, (USER, PASSWORD), "HEAD", "/bkt", &[], b"").await;
    assert_eq!(r.status, 200);
    for (name, _) in &r.headers {
        let name = name.to_ascii_lowercase();
        assert!(
            !name.contains("storage-class") && !name.contains("obs"),
            "{name}"
        );
        assert!(
            !name.contains("location") && !name.ends_with("-version"),
            "{name}"
        );
    }
    let r = as_user(&gw, (USER, PASSWORD), "HEAD", "/bkt/k", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-storage-class"), Some("WARM"));
}

/// OBS creates a bucket outside its default region only where the CreateBucket names the
/// region (seed 004: "A request without Location is sent for creating a bucket in a
/// non-default region" — 400 IllegalLocationConstraintException): the gateway names its
/// backend's, `<Location>` under OBS's own signing, `<LocationConstraint>` under S3's, whatever
/// the client's body said (before: no body, a 500 InternalError, no bucket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_obs_bucket_is_created_in_the_backend_s_region() {
    let region = "region = \"ap-southeast-1\"\n";
    for (signing, element) in [("obs", "Location"), ("v4", "LocationConstraint")] {
        let (gw, server) = on_native_obs(|text| {
            let obs = format!("kind = \"obs\"\nsigning = \"{signing}\"\n{region}");
            text.replace("kind = \"obs\"\nsigning = \"obs\"\n", &obs)
        })
        .await;
        server.respond_to("PUT", &format!("located|ap-southeast-1|{element}"));
        let elsewhere = "<CreateBucketConfiguration><LocationConstraint>eu-west-1\
                         </LocationConstraint></CreateBucketConfiguration>";
        for body in [&b""[..], elsewhere.as_bytes()] {
            let r = as_user(&gw, (USER, PASSWORD), "PUT", "/placed", &[], body).await;
            assert_eq!(r.status, 200, "{signing}: {}", r.text());
            assert_eq!(r.header("location"), Some("/placed"), "{signing}");
        }
    }
}

/// OBS's own signing scheme end to end, against a recorded OBS that accepts only requests signed
/// `OBS key:…` with `x-obs-*` headers: the client's `x-amz-meta-*` arrives as `x-obs-meta-*`, and
/// OBS's `x-obs-meta-*` and `x-obs-version-id` come back to the client as `x-amz-*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs_native_signing_and_header_names() {
    let (gw, server) = on_native_obs(|text| text).await;
    let s3 = gw.client();
    server.respond_to("*", "obs-native");
    let put = s3
        .put_object()
        .bucket("bkt")
        .key("k")
        .metadata("color", "blue")
        .body(b"data".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(put.version_id(), Some("v1"));
    let got = s3.get_object().bucket("bkt").key("k").send().await.unwrap();
    assert_eq!(got.metadata().unwrap()["color"], "red");
    assert_eq!(got.version_id(), Some("v1"));
    assert_eq!(
        &got.body.collect().await.unwrap().into_bytes()[..],
        b"obs data"
    );
}

/// An ACL read through OBS's own dialect is answered as S3's (HCP's): all users as the
/// AllUsers group with its type, grantees typed, the owner named — nothing of OBS's own
/// (`Canned`, `Delivered`), which no S3 client reads (boto3 found no grantee type or URI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs_native_acls_are_answered_as_s3_s() {
    let (gw, server) = on_native_obs(|text| text).await;
    server.respond_to("*", "obs-native");
    let acl = gw.client().get_object_acl().bucket("bkt").key("k");
    let acl = acl.send().await.unwrap();
    let grants: Vec<(String, Option<String>, String)> = acl
        .grants()
        .iter()
        .map(|g| {
            let grantee = g.grantee().unwrap();
            (
                grantee.r#type().as_str().to_string(),
                grantee.uri().map(str::to_string),
                g.permission().unwrap().as_str().to_string(),
            )
        })
        .collect();
    let all_users = "http://acs.amazonaws.com/groups/global/AllUsers".to_string();
    assert_eq!(
        grants,
        [
            ("CanonicalUser".into(), None, "FULL_CONTROL".into()),
            ("Group".into(), Some(all_users), "READ".into()),
        ]
    );
    assert_eq!(acl.owner().and_then(|o| o.display_name()), Some("t"));
    let named = acl.grants()[0].grantee().and_then(|g| g.display_name());
    assert_eq!(named, Some("t"), "the grantee's name");
    let r = as_user(&gw, (USER, PASSWORD), "GET", "/bkt/k?acl", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    for own in ["Canned", "Delivered", "obs.myhwclouds"] {
        assert!(!r.text().contains(own), "{own}: {}", r.text());
    }
}

/// HCP: "If you try to delete an object where the current version is a delete marker … HCP
/// returns a 204 (No Content)" and nothing more — OBS, signed its own way, says so in its own
/// header on the HEAD's 404: the DELETE is answered without asking the bucket or stacking
/// another marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_obs_delete_marker_is_not_deleted_again() {
    let (gw, server) = on_native_obs(|text| text).await;
    server.respond_to("*", "obs-delete-marker");
    let r = as_user(&gw, (USER, PASSWORD), "DELETE", "/bkt/k", &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let seen = server.seen();
    assert!(!seen.iter().any(|(m, _, _)| m == "DELETE"), "{seen:?}");
}

/// HCP's retention on OBS (WORM, compliance only): in a compliance tenant `x-hcp-retention`
/// reaches the recorded OBS as OBS's own `x-obs-object-lock-*` headers, signed the OBS way (a
/// form's field too); a hold, which OBS cannot keep, is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hcp_retention_reaches_obs_as_its_worm_headers() {
    let (gw, server) = on_native_obs(|text| {
        text.replacen(
            "bucket_prefix = \"\"\n",
            "bucket_prefix = \"\"\nretention = \"compliance\"\n",
            1,
        )
    })
    .await;
    server.respond_to("*", "obs-native");
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let put = |extra: &'static [(&'static str, &'static str)]| {
        let mut headers = vec![("content-length", "4")];
        headers.extend_from_slice(extra);
        let signed = V4::unsigned(&ak, &sk, &addr).sign("PUT", b"/bkt/k", &headers);
        let addr = addr.clone();
        async move { send(&addr, "PUT", b"/bkt/k", &signed, vec![b"data".to_vec()]).await }
    };
    // The headers of the last PUT the recorded OBS received.
    let last_put = || {
        let seen = server.seen();
        let (_, _, headers) = seen
            .into_iter()
            .rfind(|(m, _, _)| m == "PUT")
            .expect("a PUT");
        headers
    };
    let r = put(&[("x-hcp-retention", "2030-01-01T00:00:00+0000")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let headers = last_put();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-obs-object-lock-mode"), Some("COMPLIANCE"));
    assert_eq!(
        header("x-obs-object-lock-retain-until-date"),
        Some("2030-01-01T00:00:00Z")
    );
    assert!(header("authorization").is_some_and(|a| a.starts_with("OBS ")));
    assert!(!headers
        .iter()
        .any(|(n, _)| n.starts_with("x-amz-") || n.starts_with("x-hcp-")));
    let before = server.count();
    let r = put(&[("x-hcp-retentionhold", "true")]).await;
    r.assert_hcp_error(501, "NotImplemented");
    assert_eq!(server.count(), before, "a hold OBS cannot keep was sent");
    // A form's retention field likewise (with the Content-MD5 S3's and OBS's Object Lock ask
    // for), and a form's hold and Initial Unspecified (governance) are refused before OBS.
    let form = |fields: &[(&str, &str)]| {
        let fields = [&[("key", "f")][..], fields].concat();
        let body = common::raw::signed_form_body((&ak, &sk), "bkt", (&fields, &[]), b"data");
        let addr = addr.clone();
        async move { common::raw::post_multipart(&addr, "bkt", &body).await }
    };
    let r = form(&[("x-hcp-retention", "2030-01-01T00:00:00+0000")]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let headers = last_put();
    for (name, value) in [
        ("x-obs-object-lock-mode", "COMPLIANCE".to_string()),
        ("content-md5", content_md5(b"data")),
    ] {
        let sent = headers.iter().any(|(n, v)| n == name && *v == value);
        assert!(sent, "{name}: {value}: {headers:?}");
    }
    for refused in [("x-hcp-retentionhold", "true"), ("x-hcp-retention", "-2")] {
        let before = server.count();
        form(&[refused])
            .await
            .assert_hcp_error(501, "NotImplemented");
        assert_eq!(server.count(), before, "{refused:?} was sent");
    }
    // S3's own documents asking for governance (a retention, a bucket's default) likewise.
    let governance = [
        (
            "/bkt/k?retention",
            "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>",
        ),
        (
            "/bkt?object-lock",
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
        ),
    ];
    // (The object's lock may be read first; nothing is written.)
    let puts = || server.seen().iter().filter(|(m, _, _)| m == "PUT").count();
    let admin = (USER, PASSWORD);
    for (target, doc) in governance {
        let before = puts();
        let md5 = content_md5(doc.as_bytes());
        let headers = [("content-md5", md5.as_str())];
        let r = as_user(&gw, admin, "PUT", target, &headers, doc.as_bytes()).await;
        r.assert_hcp_error(501, "NotImplemented");
        assert_eq!(puts(), before, "{target} was sent");
    }
    // An object whose lock cannot be read (the HEAD fails) is not written over: 503.
    server.respond_to("HEAD", "error|InternalError|500");
    let r = put(&[]).await;
    r.assert_hcp_error(503, "ServiceUnavailable");
    assert_eq!(puts(), 2, "a write over an unread lock was sent");
    // A retention change the backend fails (copy onto itself, then OBS answers 500): HCP's
    // 500, the cause in the log.
    server.respond_to("PUT", "error|InternalError|500");
    let r = put(&[("x-amz-copy-source", "/bkt/k"), ("x-hcp-retention", "N+1d")]).await;
    r.assert_hcp_error(500, "InternalError");
    let (_, target, _) = server
        .seen()
        .into_iter()
        .rfind(|(m, _, _)| m == "PUT")
        .unwrap();
    assert!(target.contains("retention"), "{target}");
}

/// HCP's retention on AWS S3 and MinIO, as their documented Object Lock requests (recorded
/// servers: neither runs here): in an enterprise tenant `x-hcp-retention` and
/// `x-hcp-retentionhold` reach the PUT as `x-amz-object-lock-mode: GOVERNANCE`,
/// `-retain-until-date` (ISO 8601) and `-legal-hold: ON`, SigV4-signed, no `x-hcp-*`; a change
/// by a copy onto itself is `PUT ?retention` and `PUT ?legal-hold` documents with their
/// Content-MD5 (S3 requires it), and no copy; a labeled hold is recorded as JSON in the
/// tenant's labeled-holds bucket at the same backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hcp_retention_reaches_aws_and_minio_as_object_lock() {
    use common::dialect_server::{DialectServer, Vendor};
    for (vendor, dialect) in [(Vendor::Aws, "aws"), (Vendor::Minio, "minio")] {
        let server = DialectServer::start(vendor).await;
        let text = config_with_endpoint(&server.endpoint())
            .replace("kind = \"s3\"", &format!("kind = \"s3\"\ndialect = \"{dialect}\""))
            .replacen(
                "bucket_prefix = \"\"\n",
                "bucket_prefix = \"\"\nretention = \"enterprise\"\nlabeled_holds_bucket = \"gw-holds\"\n",
                1,
            );
        let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Local).await;
        let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
        let (ak, sk) = keys(USER, PASSWORD);
        let put = |extra: &[(&'static str, &'static str)]| {
            let mut headers = vec![("content-length", "4")];
            headers.extend_from_slice(extra);
            let signed = V4::unsigned(&ak, &sk, &addr).sign("PUT", b"/bkt/k", &headers);
            let addr = addr.clone();
            async move { send(&addr, "PUT", b"/bkt/k", &signed, vec![b"data".to_vec()]).await }
        };
        let protect = [
            ("x-hcp-retention", "2030-01-01T00:00:00+0000"),
            ("x-hcp-retentionhold", "true"),
        ];
        let r = put(&protect).await;
        assert_eq!(r.status, 200, "{dialect}: {}", r.text());
        let seen = server.seen();
        let (_, _, headers) = seen.iter().rfind(|(m, _, _)| m == "PUT").expect("the PUT");
        let header = |headers: &[(String, String)], name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            header(headers, "x-amz-object-lock-mode").as_deref(),
            Some("GOVERNANCE")
        );
        assert_eq!(
            header(headers, "x-amz-object-lock-retain-until-date").as_deref(),
            Some("2030-01-01T00:00:00Z")
        );
        assert_eq!(
            header(headers, "x-amz-object-lock-legal-hold").as_deref(),
            Some("ON")
        );
        let auth = header(headers, "authorization").unwrap_or_default();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 "), "{dialect}: {auth}");
        assert!(
            auth.contains("x-amz-object-lock-mode"),
            "{dialect}: unsigned lock headers"
        );
        assert!(
            !headers.iter().any(|(n, _)| n.starts_with("x-hcp-")),
            "{dialect}"
        );

        // A change by a copy onto itself: the lock read (HEAD), then S3's documents.
        let before = server.seen().len();
        let change = [
            ("x-amz-copy-source", "/bkt/k"),
            ("x-hcp-retention", "A+2d"),
            ("x-hcp-retentionhold", "true"),
        ];
        let r = put(&change).await;
        assert_eq!(r.status, 200, "{dialect}: {}", r.text());
        assert!(
            r.text().contains("<CopyObjectResult xmlns="),
            "{dialect}: {}",
            r.text()
        );
        let sent: Vec<_> = server.seen().into_iter().skip(before).collect();
        let methods: Vec<&str> = sent.iter().map(|(m, _, _)| m.as_str()).collect();
        // The lock read, the holds' records listed (the object is held), the hold recorded
        // and placed (holds first), then the retention.
        assert_eq!(
            methods,
            ["HEAD", "GET", "PUT", "PUT", "PUT"],
            "{dialect}: {sent:?}"
        );
        assert!(
            sent[1].1.starts_with("/gw-holds/?list-type=2"),
            "{dialect}: {}",
            sent[1].1
        );
        assert!(sent[2].1.ends_with("/hold"), "{dialect}: {}", sent[2].1);
        assert!(sent[3].1.contains("legal-hold"), "{dialect}: {}", sent[3].1);
        assert!(sent[4].1.contains("retention"), "{dialect}: {}", sent[4].1);
        for (_, target, headers) in &sent[2..] {
            assert!(
                header(headers, "content-md5").is_some(),
                "{dialect}: {target}"
            );
            assert!(
                header(headers, "x-amz-copy-source").is_none(),
                "{dialect}: a copy"
            );
        }

        // A change naming a version while the bucket's versioning cannot be read: 503, no
        // change sent (where versioning is off it is HCP's change, where it is on a recovery).
        server.respond_to("GET", "error|InternalError|500");
        let before = server.seen().len();
        let versioned = [
            ("x-amz-copy-source", "/bkt/k?versionId=v1"),
            ("x-hcp-retention", "A+2d"),
        ];
        let r = put(&versioned).await;
        r.assert_hcp_error(503, "ServiceUnavailable");
        let sent: Vec<_> = server.seen().into_iter().skip(before).collect();
        assert!(
            !sent.iter().any(|(m, _, _)| m == "PUT"),
            "{dialect}: {sent:?}"
        );
        server.clear();

        // A labeled hold: the new object on hold, then its record at the same backend.
        let before = server.seen().len();
        let r = put(&[("x-hcp-labelretentionhold", r#"[{"id":"L","hold":true}]"#)]).await;
        assert_eq!(r.status, 200, "{dialect}: {}", r.text());
        let sent: Vec<_> = server.seen().into_iter().skip(before).collect();
        let record = sent
            .iter()
            .find(|(m, t, _)| m == "PUT" && t.starts_with("/gw-holds/labeled-holds/"))
            .unwrap_or_else(|| panic!("{dialect}: no record written: {sent:?}"));
        assert_eq!(
            header(&record.2, "content-type").as_deref(),
            Some("application/json")
        );
        let object_put = sent
            .iter()
            .find(|(m, t, _)| m == "PUT" && t == "/bkt/k")
            .unwrap();
        assert_eq!(
            header(&object_put.2, "x-amz-object-lock-legal-hold").as_deref(),
            Some("ON"),
            "{dialect}: stored without its hold"
        );

        // A hold changed on a version the client spells otherwise than the backend (MinIO
        // takes any case, padded or braced, for the same version): its holds' records are
        // looked up, and the change made, under the backend's spelling — the one they were
        // recorded under — never the client's, which would find no labels and let OFF through.
        server.respond_to(
            "HEAD",
            "object-with|x-amz-version-id:0f5c-ab|x-amz-object-lock-legal-hold:ON",
        );
        let before = server.seen().len();
        let off = b"<LegalHold><Status>OFF</Status></LegalHold>".to_vec();
        let md5 = content_md5(&off);
        let target = b"/bkt/k?legal-hold&versionId=0F5C-AB";
        let length = off.len().to_string();
        let headers = [("content-md5", md5.as_str()), ("content-length", &length)];
        let signed = V4::unsigned(&ak, &sk, &addr).sign("PUT", target, &headers);
        let r = send(&addr, "PUT", target, &signed, vec![off]).await;
        assert_eq!(r.status, 200, "{dialect}: {}", r.text());
        let sent: Vec<_> = server.seen().into_iter().skip(before).collect();
        let place = hcp_s3_gateway::sig::v4::sha256_hex(b"bkt\x00k\x000f5c-ab");
        assert!(
            sent.iter()
                .any(|(m, t, _)| m == "GET" && t.contains(&place)),
            "{dialect}: the records not read under the backend's spelling: {sent:?}"
        );
        assert!(
            sent.iter().any(|(m, t, _)| m == "PUT"
                && t.contains("legal-hold")
                && t.contains("versionId=0f5c-ab")),
            "{dialect}: {sent:?}"
        );
        server.clear();
    }
}

/// AWS's us-east-1 answers a re-created own bucket with a plain 200 (and resets its ACL): the
/// gateway asks with a HEAD first and answers HCP's 200 BucketAlreadyOwnedByYou, so the bucket
/// is not re-created — on moto, which speaks AWS's dialect in us-east-1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn us_east_1_recreated_bucket_is_already_owned() {
    let Some((gw, _s3, bucket)) = start_with_bucket(Backend::Moto, "useast").await else {
        return;
    };
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = keys(USER, PASSWORD);
    let before = gw.backend_requests();
    let r = common::raw::send_signed(&addr, (&ak, &sk), "PUT", &format!("/{bucket}"), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_hcp_error_body(&r.text(), "BucketAlreadyOwnedByYou");
    assert_eq!(
        gw.backend_requests() - before,
        1,
        "a HEAD, and no CreateBucket"
    );
}

/// A CreateBucket carrying the gateway's document of its region (an AWS backend outside
/// us-east-1) is retried on a 503 as every bodiless request is, the document with every try:
/// without it, AWS refuses the bucket (no region named). In us-east-1 the gateway asks first
/// whether the bucket exists: the HEAD, busy too, is the answer — no create is sent on a HEAD
/// that said nothing (AWS would answer 200 over a bucket that is there, resetting its ACL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_s_region_document_goes_with_every_try() {
    use common::dialect_server::Vendor;
    let (ak, sk) = keys(USER, PASSWORD);
    for region in ["eu-west-1", "us-east-1"] {
        let backend = format!("region = \"{region}\"\n");
        let (gw, server) = start_with_dialect_settings(Vendor::Aws, ("", "", &backend)).await;
        server.respond_to("*", "error|SlowDown|503");
        let r = common::raw::send_signed(&gw.addr(), (&ak, &sk), "PUT", "/newbucket", b"").await;
        r.assert_hcp_error(503, "ServiceUnavailable");
        let seen = server.seen();
        let puts: Vec<_> = seen.iter().filter(|(m, _, _)| m == "PUT").collect();
        if region == "us-east-1" {
            assert!(puts.is_empty(), "a create sent on a busy HEAD");
            assert!(seen.iter().any(|(m, _, _)| m == "HEAD"));
        } else {
            assert_eq!(puts.len(), 3, "{region}: one try and two retries");
        }
        for (_, _, headers) in puts {
            let length = headers.iter().find(|(n, _)| n == "content-length");
            let length: u64 = length.map_or(0, |(_, v)| v.parse().unwrap());
            assert!(length > 0, "{region}: {headers:?}");
        }
        gw.stop().await;
    }
}

/// A backend at an IPv6 literal (`http://[::1]:port`, as README's `endpoint` row offers) is
/// reached, its `Host` the bracketed literal: the brackets were looked up as a name, which no
/// resolver knows — every request 503 and `/readyz` naming the backend unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_at_an_ipv6_literal_is_reached() {
    use common::dialect_server::{DialectServer, Vendor};
    // (A machine without IPv6's loopback has nothing to test here.)
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        eprintln!("skipped: no IPv6 loopback ({e})");
        return;
    }
    let server = DialectServer::start_on(Vendor::Aws, "[::1]:0").await;
    let endpoint = server.endpoint();
    assert!(endpoint.starts_with("http://[::1]:"), "{endpoint}");
    let (gw, server) = start_with_dialect_server(Vendor::Aws, server, ("", "", "")).await;
    let (ak, sk) = keys(USER, PASSWORD);
    let r = common::raw::send_signed(&gw.addr(), (&ak, &sk), "GET", "/bkt/k", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, target, headers) = server.seen().pop().expect("the backend was asked");
    assert_eq!(target, "/bkt/k");
    let host = headers
        .iter()
        .find(|(n, _)| n == "host")
        .map(|(_, v)| v.as_str());
    assert_eq!(host, endpoint.strip_prefix("http://"), "{headers:?}");
    let admin = gw.admin.trim_start_matches("http://").to_string();
    let ready = send(
        &admin,
        "GET",
        b"/readyz",
        &[("host".into(), admin.clone())],
        vec![],
    )
    .await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert!(!ready.text().contains("unreachable"), "{}", ready.text());
}

/// An AWS bucket the gateway makes takes ACLs (HCP's do): AWS makes one with ACLs disabled
/// since 2023 (Object Ownership `BucketOwnerEnforced`), so every ACL header or document was
/// refused, 400 AccessControlListNotSupported, which reached the client as InvalidArgument. The
/// gateway asks `ObjectWriter`; a bucket made elsewhere without ACLs is 501 NotImplemented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_buckets_are_made_to_take_acls() {
    use common::dialect_server::Vendor;
    let (ak, sk) = keys(USER, PASSWORD);
    // (`object_ownership` asks another, or none: a role without
    // s3:PutBucketOwnershipControls, a backend that takes no such header.)
    for (vendor, setting, expected) in [
        (Vendor::Aws, "", Some("ObjectWriter")),
        (Vendor::Aws, "object_ownership = \"\"\n", None),
        (Vendor::Minio, "", None),
        (
            Vendor::Minio,
            "object_ownership = \"BucketOwnerPreferred\"\n",
            Some("BucketOwnerPreferred"),
        ),
    ] {
        let backend = format!("region = \"eu-west-1\"\n{setting}");
        let (gw, server) = start_with_dialect_settings(vendor, ("", "", &backend)).await;
        let r = common::raw::send_signed(&gw.addr(), (&ak, &sk), "PUT", "/newbucket", b"").await;
        assert_eq!(r.status, 200, "{vendor:?}: {}", r.text());
        let seen = server.seen();
        let (_, _, headers) = seen.iter().find(|(m, _, _)| m == "PUT").expect("a create");
        let ownership = headers.iter().find(|(n, _)| n == "x-amz-object-ownership");
        let asked = ownership.map(|(_, v)| v.as_str());
        assert_eq!(asked, expected, "{vendor:?} {setting}: {headers:?}");
        if vendor == Vendor::Aws && setting.is_empty() {
            server.respond_to("PUT", "error|AccessControlListNotSupported|400");
            let acl = [("x-amz-acl", "public-read")];
            let put = ("PUT", "/b/k");
            let r = common::raw::send_signed_with(&gw.addr(), (&ak, &sk), put, &acl, b"x").await;
            r.assert_hcp_error(501, "NotImplemented");
        }
        gw.stop().await;
    }
}

//! HCP's semantics beyond the error table (issue "HCP's semantics beyond the error table"), on
//! the embedded store and on Ceph RGW through real requests: what an application written for
//! HCP relies on and an S3 server answers differently.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use hcp_s3_gateway::config::{hcp_access_key, hcp_secret_key};

/// HCP's `x-amz-server-side-encryption` asks whether the data is kept encrypted; any value is
/// accepted and nothing is asked of the backend. The answer is `None` where the backend keeps
/// the data unencrypted (the store; RGW without a KMS), on PUT, copy, multipart initiation and
/// parts; unasked, the answer has no such header.
async fn encryption_is_a_question(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "sse").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let target = format!("/{bucket}/k");
    let sse = ("x-amz-server-side-encryption", "any text at all");
    let r = as_user(&gw, admin, "PUT", &target, &[sse], b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("None"));
    let r = as_user(&gw, admin, "PUT", &target, &[], b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-server-side-encryption"), None);
    // A form asks it with the POST's own header too.
    let (ak, sk) = keys(USER, PASSWORD);
    let form = common::raw::signed_form_body((&ak, &sk), &bucket, (&[("key", "f")], &[]), b"f");
    let addr = gw.addr();
    let headers = [
        ("host".to_string(), addr.clone()),
        (
            "content-type".to_string(),
            "multipart/form-data; boundary=b".to_string(),
        ),
        ("content-length".to_string(), form.len().to_string()),
        (
            "x-amz-server-side-encryption".to_string(),
            "AES256".to_string(),
        ),
    ];
    let posted = format!("/{bucket}");
    let r = common::raw::send(&addr, "POST", posted.as_bytes(), &headers, vec![form]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("None"));
    // AWS's own value is a question too: nothing is encrypted on its account.
    let copy = [
        ("x-amz-copy-source", target.as_str()),
        ("x-amz-server-side-encryption", "AES256"),
    ];
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/copied"), &copy, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("None"));
    let r = as_user(
        &gw,
        admin,
        "POST",
        &format!("/{bucket}/parts?uploads"),
        &[sse],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("None"));
    let id = r
        .text()
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let part = format!("/{bucket}/parts?partNumber=1&uploadId={id}");
    let r = as_user(&gw, admin, "PUT", &part, &[sse], b"part").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("None"));
    let etag = r.header("etag").unwrap().to_string();
    let done = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part>\
         </CompleteMultipartUpload>"
    );
    let complete = format!("/{bucket}/parts?uploadId={id}");
    let r = as_user(&gw, admin, "POST", &complete, &[sse], done.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("None"));
    // A read answers no encryption header, whatever the backend says.
    for method in ["GET", "HEAD"] {
        let r = as_user(&gw, admin, method, &format!("/{bucket}/parts"), &[], b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-amz-server-side-encryption"), None);
    }
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("copied")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"data"
    );
}

#[tokio::test]
async fn encryption_is_a_question_on_the_embedded_store() {
    encryption_is_a_question(Backend::Store).await;
}

#[tokio::test]
async fn encryption_is_a_question_on_rgw() {
    encryption_is_a_question(Backend::Rgw).await;
}

/// HCP's bucket names are not case sensitive: a bucket created as `Mixed-Case-…` is the same
/// bucket in any letter case, for objects, listings and deletion.
async fn bucket_names_in_any_case(backend: Backend) {
    let Some(gw) = start(backend).await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let name = unique_bucket("Mixed-Case");
    let r = as_user(&gw, admin, "PUT", &format!("/{name}"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let upper = name.to_ascii_uppercase();
    let lower = name.to_ascii_lowercase();
    let r = as_user(&gw, admin, "PUT", &format!("/{upper}/k"), &[], b"cased").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, admin, "GET", &format!("/{lower}/k"), &[], b"").await;
    assert_eq!((r.status, r.text().as_str()), (200, "cased"));
    let r = as_user(&gw, admin, "HEAD", &format!("/{name}"), &[], b"").await;
    assert_eq!(r.status, 200);
    let s3 = gw.client();
    let listed = s3.list_buckets().send().await.unwrap();
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert!(names.contains(&lower.as_str()), "{names:?}");
    let r = as_user(&gw, admin, "PUT", &format!("/{name}"), &[], b"").await;
    r.assert_hcp_error(200, "BucketAlreadyOwnedByYou");
    let r = as_user(&gw, admin, "DELETE", &format!("/{upper}/k"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = as_user(&gw, admin, "DELETE", &format!("/{upper}"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = as_user(&gw, admin, "HEAD", &format!("/{lower}"), &[], b"").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn bucket_names_in_any_case_on_the_embedded_store() {
    bucket_names_in_any_case(Backend::Store).await;
}

#[tokio::test]
async fn bucket_names_in_any_case_on_rgw() {
    bucket_names_in_any_case(Backend::Rgw).await;
}

/// A multi-object delete carries HCP's Content-MD5 or, in its place, the checksum current SDKs
/// send; either is verified before anything is deleted, and one without both is 400.
async fn multi_object_delete_integrity(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "delete-md5").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    for key in ["a", "b"] {
        let put = s3.put_object().bucket(&bucket).key(key);
        put.body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let doc = b"<Delete><Object><Key>a</Key></Object></Delete>";
    let target = format!("/{bucket}?delete");
    let md5 = content_md5(doc);
    let refused: [(&[(&str, &str)], &str); 6] = [
        (&[], "MissingSecurityHeader"),
        // (Headers of the checksums' prefix, or a trailer's announcement on a body that is not
        // aws-chunked, that hold no digest of it.)
        (
            &[("x-amz-checksum-algorithm", "CRC32")],
            "MissingSecurityHeader",
        ),
        (
            &[("x-amz-checksum-mode", "ENABLED")],
            "MissingSecurityHeader",
        ),
        (
            &[("x-amz-trailer", "x-amz-checksum-crc32")],
            "MissingSecurityHeader",
        ),
        (&[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")], "BadDigest"),
        (&[("x-amz-checksum-crc32", "AAAAAA==")], "BadDigest"),
    ];
    for (headers, code) in refused {
        let r = as_user(&gw, admin, "POST", &target, headers, doc).await;
        r.assert_hcp_error(400, code);
        assert!(
            s3.head_object()
                .bucket(&bucket)
                .key("a")
                .send()
                .await
                .is_ok(),
            "{code}"
        );
    }
    // (Nor does a trailer's announcement beside a signed aws-chunked body without a trailer,
    // whose trailer lines are never read.)
    let (ak, sk) = keys(admin.0, admin.1);
    let addr = gw.addr();
    let v4 = common::raw::V4::now(&ak, &sk, &addr, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    let announced = [("x-amz-trailer", "x-amz-checksum-crc32")];
    let (headers, body) = v4.chunked_request(("POST", &target), (doc, 16), None, &announced);
    let r = common::raw::send(&addr, "POST", target.as_bytes(), &headers, body).await;
    r.assert_hcp_error(400, "MissingSecurityHeader");
    let head = s3.head_object().bucket(&bucket).key("a").send().await;
    assert!(head.is_ok(), "a was deleted");
    let r = as_user(&gw, admin, "POST", &target, &[("content-md5", &md5)], doc).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<Deleted><Key>a</Key>"), "{}", r.text());
    // The SDK's own way (a CRC checksum, no Content-MD5).
    let ids = aws_sdk_s3::types::ObjectIdentifier::builder()
        .key("b")
        .build()
        .unwrap();
    let delete = aws_sdk_s3::types::Delete::builder()
        .objects(ids)
        .build()
        .unwrap();
    let out = s3
        .delete_objects()
        .bucket(&bucket)
        .delete(delete)
        .send()
        .await
        .unwrap();
    assert_eq!(out.deleted().len(), 1);
    assert!(s3
        .head_object()
        .bucket(&bucket)
        .key("b")
        .send()
        .await
        .is_err());
    // Quiet mode: the answer names only what was not deleted, whatever the backend lists (moto
    // names every deleted key all the same).
    for key in ["q1", "q2"] {
        let put = s3.put_object().bucket(&bucket).key(key);
        put.body(ByteStream::from_static(b"q"))
            .send()
            .await
            .unwrap();
    }
    let view = common::view::BackendView::of(&gw);
    assert!(
        view.object(&bucket, "q1").await.is_some(),
        "the backend's view"
    );
    let doc = b"<Delete><Quiet>true</Quiet><Object><Key>q1</Key></Object>\
        <Object><Key>q2</Key></Object></Delete>";
    let md5 = content_md5(doc);
    let r = as_user(&gw, admin, "POST", &target, &[("content-md5", &md5)], doc).await;
    let text = r.text();
    assert_eq!(r.status, 200, "{text}");
    assert!(
        text.contains("DeleteResult") && !text.contains("Deleted") && !text.contains("q1"),
        "{text}"
    );
    for key in ["q1", "q2"] {
        let head = s3.head_object().bucket(&bucket).key(key).send().await;
        assert!(head.is_err(), "{key} went");
        assert_eq!(
            view.object(&bucket, key).await,
            None,
            "{key} at the backend"
        );
    }
}

#[tokio::test]
async fn multi_object_delete_integrity_on_the_embedded_store() {
    multi_object_delete_integrity(Backend::Store).await;
}

#[tokio::test]
async fn multi_object_delete_integrity_on_rgw() {
    multi_object_delete_integrity(Backend::Rgw).await;
}

#[tokio::test]
async fn multi_object_delete_integrity_on_moto() {
    multi_object_delete_integrity(Backend::Moto).await;
}

/// HCP's no-overwrite rule is the default (a tenant that says nothing about `overwrite`): in a
/// bucket without versioning a PUT, copy or complete onto an existing name — an object, or a
/// folder (`name/…`) — is 409 and stores nothing; with versioning enabled a new version is
/// stored; suspended again, the rule is back at once (the gateway forgets what it cached).
async fn no_overwrite_by_default(backend: Backend) {
    let Some(gw) = start_with_tenant(backend, "# no overwrite = setting: HCP's default", "").await
    else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "no-overwrite").await;
    let put = |key: &'static str, body: &'static [u8]| {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from_static(body))
            .send()
    };
    put("k", b"first").await.unwrap();
    let e = put("k", b"second").await.unwrap_err();
    assert_eq!(sdk_error(&e), (409, "OperationAborted".into()));
    assert_hcp_error_body(&error_body(&e), "OperationAborted");
    let copy = s3.copy_object().bucket(&bucket).key("k");
    let e = copy
        .copy_source(format!("{bucket}/k"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (409, "OperationAborted".into()));
    // A copy with new metadata (REPLACE) is HCP's way to change an object's metadata: onto
    // itself it replaces them (manual, "Replacing custom metadata for an existing object");
    // from another object it would replace the content, which stays refused.
    put("other", b"other's").await.unwrap();
    let replace = |from: &str| {
        s3.copy_object()
            .bucket(&bucket)
            .key("k")
            .copy_source(format!("{bucket}/{from}"))
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .metadata("author", "Robin Silver")
            .send()
    };
    let e = replace("other").await.unwrap_err();
    assert_eq!(sdk_error(&e), (409, "OperationAborted".into()));
    // A source version id is ignored where versioning is not enabled ("the current version of
    // the specified object is used as the source"): onto itself, a metadata change too.
    replace("k?versionId=null").await.unwrap();
    replace("k?versionId=3HL4kqtJlcpXroDTDmJ")
        .await
        .unwrap_or_else(|e| panic!("{:?}", sdk_error(&e)));
    // The backend's own view: the same content, the new metadata.
    let view = common::view::BackendView::of(&gw);
    assert_eq!(
        view.object(&bucket, "k").await.as_deref(),
        Some(&b"first"[..])
    );
    let meta = view.metadata(&bucket, "k").await.unwrap_or_default();
    assert!(
        meta.contains(&("author".to_string(), "Robin Silver".to_string())),
        "{meta:?}"
    );
    replace("k").await.unwrap();
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("author"))
            .map(String::as_str),
        Some("Robin Silver")
    );
    put("dir/inside", b"x").await.unwrap();
    let e = put("dir", b"a name that is a folder").await.unwrap_err();
    assert_eq!(sdk_error(&e), (409, "OperationAborted".into()));
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"first"
    );
    let versioning = |status| {
        let conf = aws_sdk_s3::types::VersioningConfiguration::builder()
            .status(status)
            .build();
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(conf)
            .send()
    };
    versioning(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
        .await
        .unwrap();
    let out = put("k", b"second").await.unwrap();
    assert!(out.version_id().is_some());
    versioning(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
        .await
        .unwrap();
    let e = put("k", b"third").await.unwrap_err();
    assert_eq!(sdk_error(&e), (409, "OperationAborted".into()));
    // Suspended, a write replaces the key's `null` version ("first"), not its newest one:
    // copied onto itself, the newest would take the older content's place.
    let e = replace("k").await.unwrap_err();
    assert_eq!(sdk_error(&e), (409, "OperationAborted".into()));
    let versions = s3.list_object_versions().bucket(&bucket).prefix("k");
    let versions = versions.send().await.unwrap();
    assert_eq!(versions.versions().len(), 2, "{versions:?}");
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"second"
    );
}

#[tokio::test]
async fn no_overwrite_by_default_on_the_embedded_store() {
    no_overwrite_by_default(Backend::Store).await;
}

#[tokio::test]
async fn no_overwrite_by_default_on_rgw() {
    no_overwrite_by_default(Backend::Rgw).await;
}

/// A copy's, a part copy's and a complete's result name the object's ETag as HCP's examples
/// do — quoted, and the complete's the ETag the object then has (RGW wrote the copies'
/// unquoted and the complete's empty).
async fn results_name_the_object_s_quoted_etag(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "etags").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let at = |key: &str| format!("/{bucket}/{key}");
    let etag_of = |doc: &str| {
        let inner = doc
            .split("<ETag>")
            .nth(1)
            .and_then(|r| r.split("</ETag>").next());
        inner
            .unwrap_or_default()
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
    };
    let head_etag = |key: &str| {
        let head = s3.head_object().bucket(&bucket).key(key).send();
        async move { head.await.unwrap().e_tag().unwrap().to_string() }
    };
    let r = as_user(&gw, admin, "PUT", &at("src"), &[], b"hi\n").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let source = at("src");
    let copy = [("x-amz-copy-source", source.as_str())];
    let r = as_user(&gw, admin, "PUT", &at("copied"), &copy, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        etag_of(&r.text()),
        head_etag("copied").await,
        "{}",
        r.text()
    );
    assert_eq!(etag_of(&r.text()), "\"764efa883dda1e11db47671c4a3bbd9e\"");
    let made = s3.create_multipart_upload().bucket(&bucket).key("joined");
    let made = made.send().await.unwrap();
    let id = made.upload_id().unwrap();
    let part = format!("{}?partNumber=1&uploadId={id}", at("joined"));
    let r = as_user(&gw, admin, "PUT", &part, &copy, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let part_etag = etag_of(&r.text());
    assert_eq!(
        part_etag,
        "\"764efa883dda1e11db47671c4a3bbd9e\"",
        "{}",
        r.text()
    );
    let doc = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{part_etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let complete = format!("{}?uploadId={id}", at("joined"));
    let r = as_user(&gw, admin, "POST", &complete, &[], doc.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("<Error>"), "{}", r.text());
    let done = etag_of(&r.text());
    assert_eq!(done, head_etag("joined").await, "{}", r.text());
    assert_eq!(
        done,
        "\"b86583435871b60756e260201377bb9c-1\"",
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn results_name_the_object_s_quoted_etag_on_the_embedded_store() {
    results_name_the_object_s_quoted_etag(Backend::Store).await;
}

#[tokio::test]
async fn results_name_the_object_s_quoted_etag_on_rgw() {
    results_name_the_object_s_quoted_etag(Backend::Rgw).await;
}

#[tokio::test]
async fn results_name_the_object_s_quoted_etag_on_moto() {
    results_name_the_object_s_quoted_etag(Backend::Moto).await;
}

/// Suspended versioning: S3 replaces a key's `null` version with any write, or delete naming
/// no version — wherever it stands. One stored before versioning was first enabled, kept
/// behind newer versions, would be gone for good (HCP: "Disabling versioning does not cause
/// old versions of objects to be deleted"): that needs the purge permission. A user without
/// it is refused 403 (DELETE, PUT over a delete marker, copy, complete), nothing sent, the old
/// version still listed (and a multi-object delete's entry is AccessDenied); where the `null`
/// version is the newest, the delete is an ordinary one; a purger may replace it.
async fn an_old_null_version_is_replaced_only_by_a_purger(backend: Backend) {
    let deleter = r#"
[[users]]
username = "deleter"
password = "deleter-password"
permissions = [{ tenant = "t", allow = ["read", "write", "delete"] }]
"#;
    let Some(gw) = start_with_tenant(backend, "overwrite = \"allow\"", deleter).await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "null-kept").await;
    let who = ("deleter", "deleter-password");
    let at = |key: &str| format!("/{bucket}/{key}");
    use md5::Digest as _;
    let hex: String = md5::Md5::digest(b"first")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let first_md5 = format!("\"{hex}\"");
    // "first", the null version of both keys; then versioned: `k` a newer version, `m` a
    // delete marker over it; then suspended.
    for key in ["k", "m", "plain"] {
        let r = as_user(&gw, who, "PUT", &at(key), &[], b"first").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    use aws_sdk_s3::types::BucketVersioningStatus::{Enabled, Suspended};
    set_versioning(&s3, &bucket, Enabled).await;
    let r = as_user(&gw, who, "PUT", &at("k"), &[], b"second").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, who, "DELETE", &at("m"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    set_versioning(&s3, &bucket, Suspended).await;
    let kept = |key: &'static str| {
        let list = s3.list_object_versions().bucket(&bucket).prefix(key);
        let first_md5 = first_md5.clone();
        async move {
            let list = list.send().await.unwrap();
            list.versions()
                .iter()
                .any(|v| v.key() == Some(key) && v.e_tag() == Some(first_md5.as_str()))
        }
    };
    let copy = [("x-amz-copy-source", format!("/{bucket}/plain"))];
    let copy: Vec<(&str, &str)> = copy.iter().map(|(n, v)| (*n, v.as_str())).collect();
    // (The backend's own view before and after: not a version gone, none added.)
    let view = common::view::BackendView::of(&gw);
    let before = (
        view.versions(&bucket, "k").await,
        view.versions(&bucket, "m").await,
    );
    assert_eq!((before.0.len(), before.1.len()), (2, 2), "{before:?}");
    for (method, key, headers, body) in [
        ("DELETE", "k", vec![], &b""[..]),
        ("PUT", "k", vec![], b"x"),
        ("PUT", "m", vec![], b"x"),
        ("PUT", "m", copy.clone(), b""),
    ] {
        let r = as_user(&gw, who, method, &at(key), &headers, body).await;
        r.assert_hcp_error(403, "AccessDenied");
        assert!(
            kept(if key == "k" { "k" } else { "m" }).await,
            "{method} {key}"
        );
    }
    // (Nothing of them reached the backend: `k` is still "second", `m` a delete marker.)
    let after = (
        view.versions(&bucket, "k").await,
        view.versions(&bucket, "m").await,
    );
    assert_eq!(after, before, "the backend's versions");
    let r = as_user(&gw, who, "GET", &at("k"), &[], b"").await;
    assert_eq!(r.body, b"second");
    let r = as_user(&gw, who, "GET", &at("m"), &[], b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    // A multi-object delete's entry too (AccessDenied in its answer); one whose null version
    // is the newest is an ordinary delete.
    let doc = "<Delete><Object><Key>k</Key></Object><Object><Key>plain</Key></Object></Delete>";
    let r = multi_delete(&gw, who, &bucket, doc).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("<Key>k</Key><Code>AccessDenied</Code>"),
        "{text}"
    );
    assert!(text.contains("<Deleted><Key>plain</Key>"), "{text}");
    assert!(kept("k").await);
    assert!(!kept("plain").await);
    // The purger may.
    let r = as_user(&gw, (USER, PASSWORD), "DELETE", &at("k"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(!kept("k").await);
}

#[tokio::test]
async fn an_old_null_version_is_replaced_only_by_a_purger_on_the_embedded_store() {
    an_old_null_version_is_replaced_only_by_a_purger(Backend::Store).await;
}

#[tokio::test]
async fn an_old_null_version_is_replaced_only_by_a_purger_on_rgw() {
    an_old_null_version_is_replaced_only_by_a_purger(Backend::Rgw).await;
}

/// The shipped config.toml keeps HCP's rule too.
#[tokio::test]
async fn the_embedded_default_does_not_overwrite() {
    let gw = start_embedded_default().await;
    use hcp_s3_gateway::config::{hcp_access_key, hcp_secret_key};
    let s3 = gw.client_with(
        &hcp_access_key("demo-user"),
        &hcp_secret_key("demo-password"),
    );
    let bucket = new_bucket(&s3, "default").await;
    for (body, refused) in [(&b"one"[..], false), (&b"two"[..], true)] {
        let put = s3.put_object().bucket(&bucket).key("k");
        let r = put.body(ByteStream::from_static(body)).send().await;
        assert_eq!(r.is_err(), refused);
    }
    // An object's metadata are changed by a copy onto itself (with the owners it keeps).
    let copy = s3.copy_object().bucket(&bucket).key("k");
    copy.copy_source(format!("{bucket}/k"))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("department", "Human Resources")
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    let department = got.metadata().and_then(|m| m.get("department")).cloned();
    assert_eq!(department.as_deref(), Some("Human Resources"));
    assert_eq!(bytes_of(got).await, b"one");
}

/// HCP's custom metadata rules: a property given three times is one, its values joined by
/// commas; a property without a value is not stored; characters HCP's XML element names do not
/// take become `_` (manual: `city/town` is kept as `city_town`).
async fn custom_metadata_as_hcp_keeps_it(backend: Backend) {
    let Some((gw, _s3, bucket)) = start_with_bucket(backend, "metadata").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let target = format!("/{bucket}/report");
    let headers = [
        ("x-amz-meta-author", "P.D. Grey"),
        ("x-amz-meta-author", "Morgan White"),
        ("x-amz-meta-author", "Paris Black"),
        ("x-amz-meta-empty", ""),
        ("x-amz-meta-city|town", "Boston"),
        ("x-amz-meta-department", "Sales&Mktg"),
    ];
    let r = as_user(&gw, admin, "PUT", &target, &headers, b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let head = as_user(&gw, admin, "HEAD", &target, &[], b"").await;
    assert_eq!(
        head.header("x-amz-meta-author"),
        Some("P.D. Grey,Morgan White,Paris Black")
    );
    assert_eq!(head.header("x-amz-meta-empty"), None);
    // (Ceph RGW keeps `_` in a metadata name as `-`: README, "Backend behaviour".)
    let kept = if backend == Backend::Rgw {
        "x-amz-meta-city-town"
    } else {
        "x-amz-meta-city_town"
    };
    assert_eq!(head.header(kept), Some("Boston"));
    assert_eq!(head.header("x-amz-meta-city|town"), None);
    assert_eq!(head.header("x-amz-meta-department"), Some("Sales&Mktg"));
}

#[tokio::test]
async fn custom_metadata_on_the_embedded_store() {
    custom_metadata_as_hcp_keeps_it(Backend::Store).await;
}

#[tokio::test]
async fn custom_metadata_on_rgw() {
    custom_metadata_as_hcp_keeps_it(Backend::Rgw).await;
}

/// Versioning as HCP answers it: a write names its version only while versioning is enabled
/// (suspended, S3's `null` is not sent), and while versioning is not enabled a GET or HEAD of
/// an old version answers the current one and a copy of an old version copies the current one.
async fn versions_while_versioning_is_off(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "versions").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let target = format!("/{bucket}/k");
    let versioning = |status| {
        let conf = aws_sdk_s3::types::VersioningConfiguration::builder()
            .status(status)
            .build();
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(conf)
            .send()
    };
    use aws_sdk_s3::types::BucketVersioningStatus::{Enabled, Suspended};
    versioning(Enabled).await.unwrap();
    let r = as_user(&gw, admin, "PUT", &target, &[], b"old").await;
    let old = r.header("x-amz-version-id").unwrap().to_string();
    let r = as_user(&gw, admin, "PUT", &target, &[], b"new").await;
    let new = r.header("x-amz-version-id").unwrap().to_string();
    // HCP lists an object's versions oldest first.
    let listed = s3.list_object_versions().bucket(&bucket).prefix("k");
    let listed = listed.send().await.unwrap();
    let ids: Vec<&str> = listed
        .versions()
        .iter()
        .map(|v| v.version_id().unwrap())
        .collect();
    assert_eq!(ids, [old.as_str(), new.as_str()]);
    // A key whose versions go on on the next page keeps the backend's order on both pages
    // (its oldest cannot be known on the first): never in neither order.
    let mut all = Vec::new();
    for body in ["1", "2", "3", "4"] {
        let r = as_user(
            &gw,
            admin,
            "PUT",
            &format!("/{bucket}/p"),
            &[],
            body.as_bytes(),
        )
        .await;
        all.push(r.header("x-amz-version-id").unwrap().to_string());
    }
    let (mut paged, mut markers) = (Vec::new(), (None, None));
    loop {
        let page = s3.list_object_versions().bucket(&bucket).prefix("p");
        let page = page.max_keys(2).set_key_marker(markers.0.clone());
        let page = page.set_version_id_marker(markers.1.clone()).send().await;
        let page = page.unwrap();
        paged.extend(
            page.versions()
                .iter()
                .map(|v| v.version_id().unwrap().to_string()),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        markers = (
            page.next_key_marker().map(str::to_string),
            page.next_version_id_marker().map(str::to_string),
        );
    }
    all.reverse();
    assert_eq!(paged, all, "newest first on every page");
    // A delete marker stands between the versions written before and after it, in one list
    // (as SDKs that read the document in order — Java's v1 — show it).
    let d = format!("/{bucket}/d");
    let mut written = Vec::new();
    for method in ["PUT", "DELETE", "PUT"] {
        let r = as_user(&gw, admin, method, &d, &[], b"d").await;
        assert!(r.status < 300, "{method}: {}", r.text());
        written.push(r.header("x-amz-version-id").unwrap().to_string());
    }
    let listing = as_user(
        &gw,
        admin,
        "GET",
        &format!("/{bucket}?versions&prefix=d"),
        &[],
        b"",
    )
    .await;
    let listed: Vec<String> = listing
        .text()
        .split("<VersionId>")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap()].to_string())
        .collect();
    assert_eq!(listed, written, "{}", listing.text());
    let versioned = format!("{target}?versionId={old}");
    let r = as_user(&gw, admin, "GET", &versioned, &[], b"").await;
    assert_eq!((r.status, r.text().as_str()), (200, "old"));
    let copy_of_old = |to: &str| {
        let source = format!("/{bucket}/k?versionId={old}");
        let target = format!("/{bucket}/{to}");
        let gw = &gw;
        async move {
            let copy = [("x-amz-copy-source", source.as_str())];
            let r = as_user(gw, admin, "PUT", &target, &copy, b"").await;
            assert_eq!(r.status, 200, "{}", r.text());
            as_user(gw, admin, "GET", &target, &[], b"").await.text()
        }
    };
    assert_eq!(copy_of_old("copy-enabled").await, "old");
    versioning(Suspended).await.unwrap();
    // (HCP: a copy source's versionId is ignored while versioning is disabled.)
    assert_eq!(copy_of_old("copy-suspended").await, "new");
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/other"), &[], b"x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-version-id"), None);
    let r = as_user(&gw, admin, "GET", &versioned, &[], b"").await;
    assert_eq!((r.status, r.text().as_str()), (200, "new"));
    let r = as_user(&gw, admin, "HEAD", &versioned, &[], b"").await;
    assert_eq!(r.header("content-length"), Some("3"));
    let r = as_user(&gw, admin, "HEAD", &format!("/{bucket}/other"), &[], b"").await;
    assert_eq!(r.header("x-amz-version-id"), None);
    // Nor for an object stored while versioning was enabled, a copy of it, or a delete that
    // leaves a marker ("returned only while versioning is enabled for the bucket").
    for method in ["HEAD", "GET"] {
        let r = as_user(&gw, admin, method, &target, &[], b"").await;
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        assert_eq!(r.header("x-amz-version-id"), None, "{method}");
    }
    let copy = [("x-amz-copy-source", target.as_str())];
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/copied"), &copy, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-copy-source-version-id"), None);
    let r = as_user(&gw, admin, "DELETE", &d, &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-amz-delete-marker"), None);
    assert_eq!(r.header("x-amz-version-id"), None);
    // Deleting a delete marker by its version id says so whatever the bucket's versioning.
    let marker = format!("{d}?versionId={}", written[1]);
    let r = as_user(&gw, admin, "DELETE", &marker, &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-amz-delete-marker"), Some("true"));
    assert_eq!(r.header("x-amz-version-id"), None);
}

#[tokio::test]
async fn versions_while_versioning_is_off_on_the_embedded_store() {
    versions_while_versioning_is_off(Backend::Store).await;
}

#[tokio::test]
async fn versions_while_versioning_is_off_on_rgw() {
    versions_while_versioning_is_off(Backend::Rgw).await;
}

/// HCP's folders (`folders = true`): storing `quarterly_rpts/Q4_2019` also creates the folder
/// `quarterly_rpts/`, which listings show; a PUT of `name/` (or with `Content-Type:
/// x-directory`) creates a folder and stores no object, 409 where the name is taken; HEAD of a
/// folder is 200, GET 404; a write under a known folder costs no backend request beyond its
/// own; a deleted folder is created again by the next write under it.
async fn folders_as_hcp_keeps_them(backend: Backend) {
    let Some(gw) = start_with_tenant(backend, "folders = true", "").await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "folders").await;
    let admin = (USER, PASSWORD);
    let put = |key: &'static str| {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from_static(b"data"))
            .send()
    };
    let keys = |prefix: &'static str, delimiter: Option<&'static str>| {
        let list = s3.list_objects_v2().bucket(&bucket).prefix(prefix);
        async move {
            let out = list
                .set_delimiter(delimiter.map(str::to_string))
                .send()
                .await
                .unwrap();
            let contents = out.contents().iter().map(|o| o.key().unwrap().to_string());
            let common = out
                .common_prefixes()
                .iter()
                .map(|p| p.prefix().unwrap().to_string());
            (contents.collect::<Vec<_>>(), common.collect::<Vec<_>>())
        }
    };
    // Objects under a path create its folders, once.
    let before = gw.backend_requests();
    put("quarterly_rpts/Q4_2019").await.unwrap();
    assert!(gw.backend_requests() - before > 1, "the folder was created");
    let before = gw.backend_requests();
    put("quarterly_rpts/Q3_2019").await.unwrap();
    assert_eq!(
        gw.backend_requests() - before,
        2,
        "a known folder costs nothing (one listing asks whether the name is a folder's)"
    );
    // An object is not stored at a folder's name, nor in a folder whose name an object
    // holds: 409 whatever the versioning (this tenant overwrites as S3 does), nothing stored.
    let taken = format!("/{bucket}/quarterly_rpts");
    let r = as_user(&gw, admin, "PUT", &taken, &[], b"x").await;
    r.assert_hcp_error(409, "OperationAborted");
    put("solo").await.unwrap();
    let inside = format!("/{bucket}/solo/x");
    let r = as_user(&gw, admin, "PUT", &inside, &[], b"x").await;
    r.assert_hcp_error(409, "OperationAborted");
    assert_eq!(keys("solo", None).await.0, ["solo"], "nothing stored");
    let (contents, _) = keys("quarterly_rpts", None).await;
    assert_eq!(
        contents,
        [
            "quarterly_rpts/",
            "quarterly_rpts/Q3_2019",
            "quarterly_rpts/Q4_2019"
        ]
    );
    put("a/b/c").await.unwrap();
    assert_eq!(keys("a", None).await.0, ["a/", "a/b/", "a/b/c"]);
    let copy = s3.copy_object().bucket(&bucket).key("copies/c1");
    copy.copy_source(format!("{bucket}/a/b/c"))
        .send()
        .await
        .unwrap();
    assert_eq!(keys("copies", None).await.0, ["copies/", "copies/c1"]);
    // A folder by itself, its body ignored.
    let folder = |name: &str, headers: &[(&'static str, &'static str)], body: &'static [u8]| {
        let target = format!("/{bucket}/{name}");
        let headers = headers.to_vec();
        let gw = &gw;
        async move { as_user(gw, admin, "PUT", &target, &headers, body).await }
    };
    let r = folder("mktg/", &[], b"ignored").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("etag"),
        Some("\"d41d8cd98f00b204e9800998ecf8427e\"")
    );
    let r = folder("mktg/budget_proposals/", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = folder("r%26d", &[("content-type", "x-directory")], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    for taken in ["mktg/", "r%26d/", "a/b/c/"] {
        let r = folder(taken, &[], b"").await;
        r.assert_hcp_error(409, "OperationAborted");
    }
    let head = as_user(&gw, admin, "HEAD", &format!("/{bucket}/mktg/"), &[], b"").await;
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("0"))
    );
    let get = as_user(&gw, admin, "GET", &format!("/{bucket}/mktg/"), &[], b"").await;
    get.assert_hcp_error(404, "NoSuchKey");
    assert!(get.text().contains("folder"), "{}", get.text());
    assert_eq!(keys("r&d", None).await.0, ["r&d/"]);
    // A listing of a folder: the folder itself, its objects and, apart, its subfolders.
    put("mktg/campaign.xls").await.unwrap();
    let (contents, common) = keys("mktg/", Some("/")).await;
    assert_eq!(contents, ["mktg/", "mktg/campaign.xls"]);
    assert_eq!(common, ["mktg/budget_proposals/"]);
    // Names a folder cannot have, or data cannot have where folders are kept.
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}//lead/x"), &[], b"x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(keys("/", None).await.0, ["/lead/", "/lead/x"]);
    let source = format!("/{bucket}/a/b/c");
    let copy = [("x-amz-copy-source", source.as_str())];
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/data/"), &copy, b"").await;
    r.assert_hcp_error(400, "InvalidArgument");
    let r = folder("x%2F%2F", &[], b"").await;
    r.assert_hcp_error(400, "InvalidArgument");
    let deep = format!("/{bucket}/{}o", "d/".repeat(33));
    let r = as_user(&gw, admin, "PUT", &deep, &[], b"x").await;
    r.assert_hcp_error(400, "InvalidArgument");
    // (An upload there is refused as it starts, not once its parts are in.)
    let r = as_user(&gw, admin, "POST", &format!("{deep}?uploads"), &[], b"").await;
    r.assert_hcp_error(400, "InvalidArgument");
    let r = as_user(&gw, admin, "GET", &format!("/{bucket}?uploads"), &[], b"").await;
    assert!(!r.text().contains("<Upload>"), "{}", r.text());
    assert!(keys("d", None).await.0.is_empty(), "nothing stored");
    assert!(keys("data", None).await.0.is_empty(), "nothing stored");
    // Deleted, a folder comes back with the next object under it.
    let del = as_user(&gw, admin, "DELETE", &format!("/{bucket}/a/b/"), &[], b"").await;
    assert_eq!(del.status, 204);
    assert_eq!(keys("a", None).await.0, ["a/", "a/b/c"]);
    put("a/b/d").await.unwrap();
    assert_eq!(keys("a", None).await.0, ["a/", "a/b/", "a/b/c", "a/b/d"]);
}

#[tokio::test]
async fn folders_on_the_embedded_store() {
    folders_as_hcp_keeps_them(Backend::Store).await;
}

#[tokio::test]
async fn folders_on_rgw() {
    folders_as_hcp_keeps_them(Backend::Rgw).await;
}

/// A folder as the manual creates one: its example request (`Transfer-Encoding: chunked` with
/// `Content-Length: 0`, a name ending `%2F`) is 200 and makes the folders around it, with the
/// folder's version id where versioning is enabled (none where it is not); any body is ignored,
/// however long, and nothing of it kept; no folder is made in one whose name an object holds
/// (409, as for an object); a GET of a folder is 404 NoSuchKey, and NoSuchBucket where the
/// bucket is not there.
async fn folders_as_the_manual_creates_them(backend: Backend) {
    let Some(gw) = start_with_tenant(backend, "folders = true", "").await else {
        return;
    };
    let s3 = gw.client();
    let view = common::view::BackendView::of(&gw);
    let bucket = new_bucket(&s3, "folders-manual").await;
    set_versioning(
        &s3,
        &bucket,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    let admin = (USER, PASSWORD);
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let headers: Vec<(String, String)> = [
        ("authorization", format!("HCP {ak}:{sk}")),
        (
            "date",
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        ),
        ("transfer-encoding", "chunked".to_string()),
        ("content-length", "0".to_string()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    let target = format!("/{bucket}/r%26d/budget_proposals%2F");
    let r = common::raw::send(
        &addr,
        "PUT",
        target.as_bytes(),
        &headers,
        vec![b"0\r\n\r\n".to_vec()],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("etag"),
        Some("\"d41d8cd98f00b204e9800998ecf8427e\"")
    );
    let version = r.header("x-amz-version-id").expect("a version id");
    let versions = view.versions(&bucket, "r&d/budget_proposals/").await;
    assert!(
        versions.iter().any(|v| v == version),
        "{version} among {versions:?}"
    );
    assert_eq!(view.keys(&bucket).await, ["r&d/", "r&d/budget_proposals/"]);
    // A body of any length is ignored: read, and nothing of it kept.
    let long = vec![b'x'; 5 * 1024 * 1024 + 1];
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/big/"), &[], &long).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        view.object(&bucket, "big/").await.as_deref(),
        Some(&b""[..])
    );
    // No folder in one whose name an object holds.
    s3.put_object()
        .bucket(&bucket)
        .key("solo")
        .body(ByteStream::from_static(b"data"))
        .send()
        .await
        .unwrap();
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/solo/sub/"), &[], b"").await;
    r.assert_hcp_error(409, "OperationAborted");
    let keys = view.keys(&bucket).await;
    assert!(!keys.iter().any(|k| k.starts_with("solo/")), "{keys:?}");
    // A folder is no copy's source: it has no data (404, nothing stored).
    let source = [("x-amz-copy-source", format!("/{bucket}/big/"))];
    let source: Vec<(&str, &str)> = source.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let r = as_user(
        &gw,
        admin,
        "PUT",
        &format!("/{bucket}/copied"),
        &source,
        b"",
    )
    .await;
    r.assert_hcp_error(404, "NoSuchKey");
    assert_eq!(view.object(&bucket, "copied").await, None);
    // A GET of a folder, and of one in a bucket that is not there.
    let r = as_user(&gw, admin, "GET", &format!("/{bucket}/big/"), &[], b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    let gone = unique_bucket("folders-gone");
    let r = as_user(&gw, admin, "GET", &format!("/{gone}/big/"), &[], b"").await;
    r.assert_hcp_error(404, "NoSuchBucket");
    // Where versioning is not enabled, no version id.
    let plain = new_bucket(&s3, "folders-plain").await;
    let r = as_user(&gw, admin, "PUT", &format!("/{plain}/f/"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-version-id"), None);
}

#[tokio::test]
async fn folders_as_the_manual_creates_them_on_the_store() {
    folders_as_the_manual_creates_them(Backend::Store).await;
}

#[tokio::test]
async fn folders_as_the_manual_creates_them_on_rgw() {
    folders_as_the_manual_creates_them(Backend::Rgw).await;
}

/// The scenarios above through real clients (boto3, the aws cli, s3cmd):
/// `tests/clients/hcp_semantics.py`.
async fn hcp_semantics_through_real_clients(backend: Backend) {
    let settings = "folders = true\n# no overwrite = setting: HCP's default";
    let Some(gw) = start_with_tenant(backend, settings, "").await else {
        return;
    };
    let bucket = new_bucket(&gw.client(), "clients").await;
    let (ak, sk) = keys(USER, PASSWORD);
    let args = vec![gw.endpoint.clone(), ak, sk, bucket];
    run_python_client("hcp_semantics.py", args, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_on_the_embedded_store() {
    hcp_semantics_through_real_clients(Backend::Store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_on_rgw() {
    hcp_semantics_through_real_clients(Backend::Rgw).await;
}

/// A form upload keeps HCP's folder rules as a PUT does: a name ending in `/` is a folder,
/// which a form does not create (400, nothing stored), and a form's object under a path
/// creates the path's folders.
#[tokio::test]
async fn form_uploads_keep_the_folder_rules() {
    let gw = start_with_tenant(Backend::Store, "folders = true", "")
        .await
        .unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "dropbox-folders").await;
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let post = |key: &'static str| common::raw::post_form(&addr, &bucket, key);
    let view = common::view::BackendView::of(&gw);
    let r = post("docs/").await;
    r.assert_hcp_error(400, "InvalidArgument");
    assert!(view.keys(&bucket).await.is_empty(), "nothing was stored");
    // A policy without the credentials that sign it is no anonymous form (HCP: they are
    // "required if policy is sent with request").
    let policy =
        r#"{"expiration":"2999-01-01T00:00:00.000Z","conditions":[["starts-with","$key",""]]}"#;
    let policy = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, policy);
    let unsigned = common::raw::form_body(&[("key", "k"), ("policy", &policy)], b"data");
    let r = common::raw::post_multipart(&addr, &bucket, unsigned).await;
    r.assert_hcp_error(400, "InvalidArgument");
    assert!(view.keys(&bucket).await.is_empty(), "nothing was stored");
    let r = post("reports/2026/q4").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        view.keys(&bucket).await,
        ["reports/", "reports/2026/", "reports/2026/q4"]
    );
    // No object at a folder's name, nor in a folder whose name an object holds.
    let r = post("reports").await;
    r.assert_hcp_error(409, "OperationAborted");
    let r = post("solo").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = post("solo/x").await;
    r.assert_hcp_error(409, "OperationAborted");
    assert_eq!(
        view.keys(&bucket).await,
        ["reports/", "reports/2026/", "reports/2026/q4", "solo"]
    );
}

/// A form's SigV4 fields are judged before anything is sent (manual, POST object: "x-amz-
/// algorithm … AWS4-HMAC-SHA256", the credential's `…/s3/aws4_request` scope, `x-amz-date`):
/// another algorithm, another service's credential, a date of another day than the
/// credential's, or a field left out is 400 InvalidArgument, nothing reaching the backend.
#[tokio::test]
async fn a_form_s_signing_fields_are_judged_before_the_backend() {
    let gw = start_with_tenant(Backend::Store, "", "").await.unwrap();
    let bucket = new_bucket(&gw.client(), "dropbox-fields").await;
    let addr = gw.addr();
    let (ak, _) = keys(USER, PASSWORD);
    let policy =
        r#"{"expiration":"2999-01-01T00:00:00.000Z","conditions":[["starts-with","$key",""]]}"#;
    let policy = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, policy);
    let credential = |service: &str| format!("{ak}/20261122/us-east-1/{service}/aws4_request");
    let (s3_scope, ec2_scope) = (credential("s3"), credential("ec2"));
    let fields = |algorithm: &'static str, credential: &str, date: &'static str| {
        vec![
            ("key".to_string(), "k".to_string()),
            ("policy".into(), policy.clone()),
            ("x-amz-algorithm".into(), algorithm.into()),
            ("x-amz-credential".into(), credential.to_string()),
            ("x-amz-date".into(), date.into()),
            ("x-amz-signature".into(), "00".into()),
        ]
    };
    let sha256 = "AWS4-HMAC-SHA256";
    let mut forms = vec![
        (
            "must be AWS4-HMAC-SHA256",
            fields("AWS4-HMAC-SHA1", &s3_scope, "20261122T000000Z"),
        ),
        (
            "x-amz-credential is malformed",
            fields(sha256, &ec2_scope, "20261122T000000Z"),
        ),
        ("differ", fields(sha256, &s3_scope, "20261123T000000Z")),
    ];
    let mut left_out = fields(sha256, &s3_scope, "20261122T000000Z");
    left_out.retain(|(n, _)| n != "x-amz-credential");
    forms.push(("x-amz-credential is missing", left_out));
    let view = common::view::BackendView::of(&gw);
    for (what, form) in forms {
        let named: Vec<(&str, &str)> = form.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let before = gw.backend_requests();
        let r =
            common::raw::post_multipart(&addr, &bucket, common::raw::form_body(&named, b"x")).await;
        // (Each refused with the words of its own check.)
        r.assert_hcp_error(400, "InvalidArgument");
        assert!(r.text().contains(what), "{what}: {}", r.text());
        assert_eq!(
            gw.backend_requests(),
            before,
            "{what}: the backend was asked"
        );
    }
    assert!(view.keys(&bucket).await.is_empty(), "something was stored");
}

/// A form whose key is `${filename}` alone with no file chosen (what a browser sends for a
/// submit without one) names no object: 400 UserKeyMustBeSpecified, and nothing reaches the
/// backend — sent on, it would be a PUT of the bucket itself.
#[tokio::test]
async fn a_form_naming_no_object_is_refused() {
    let gw = start_with_tenant(Backend::Store, "folders = true", "")
        .await
        .unwrap();
    let bucket = new_bucket(&gw.client(), "dropbox-unnamed").await;
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let body = "--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n${filename}\r\n--b\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"\"\r\n\r\n\r\n--b--\r\n";
    let before = gw.backend_requests();
    let r = common::raw::post_multipart(&addr, &bucket, body).await;
    r.assert_hcp_error(400, "UserKeyMustBeSpecified");
    assert_eq!(gw.backend_requests(), before, "nothing reached the backend");
}

/// A folder has no retention or holds of its own: a folder PUT that asks for them (HCP's
/// headers, S3 Object Lock's) is refused, not carried out without them — nothing stored.
#[tokio::test]
async fn folders_are_not_created_without_the_protection_asked() {
    let settings = "folders = true\nretention = \"enterprise\"";
    let gw = start_with_tenant(Backend::Store, settings, "")
        .await
        .unwrap();
    let s3 = gw.client();
    let bucket = unique_bucket("folders-kept");
    let create = s3.create_bucket().bucket(&bucket);
    create.send().await.unwrap();
    let view = common::view::BackendView::of(&gw);
    let target = format!("/{bucket}/kept/");
    let admin = (USER, PASSWORD);
    for headers in [
        &[("x-hcp-retention", "A+1d")][..],
        &[("x-hcp-retentionhold", "true")],
        &[("x-amz-object-lock-legal-hold", "ON")],
    ] {
        let r = as_user(&gw, admin, "PUT", &target, headers, b"").await;
        r.assert_hcp_error(400, "InvalidArgument");
        assert!(
            view.keys(&bucket).await.is_empty(),
            "{headers:?}: nothing stored"
        );
    }
    // What asks for no protection creates the folder — "deletable at once" too.
    let none = [("x-hcp-retentionhold", "false")];
    let r = as_user(&gw, admin, "PUT", &target, &none, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(view.keys(&bucket).await, ["kept/"]);
    let deletable = format!("/{bucket}/deletable/");
    let r = as_user(
        &gw,
        admin,
        "PUT",
        &deletable,
        &[("x-hcp-retention", "0")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(view.keys(&bucket).await, ["deletable/", "kept/"]);
    // A bucket's default retention reaches the markers of the folders its objects make, but
    // a folder keeps none of its own: it is deleted (the object in it is kept).
    let rule = aws_sdk_s3::types::ObjectLockRule::builder()
        .default_retention(
            aws_sdk_s3::types::DefaultRetention::builder()
                .mode(aws_sdk_s3::types::ObjectLockRetentionMode::Governance)
                .days(1)
                .build(),
        )
        .build();
    let lock = aws_sdk_s3::types::ObjectLockConfiguration::builder()
        .object_lock_enabled(aws_sdk_s3::types::ObjectLockEnabled::Enabled)
        .rule(rule)
        .build();
    let set = s3.put_object_lock_configuration().bucket(&bucket);
    set.object_lock_configuration(lock).send().await.unwrap();
    let r = as_user(
        &gw,
        admin,
        "PUT",
        &format!("/{bucket}/dated/doc"),
        &[],
        b"x",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(
        &gw,
        admin,
        "DELETE",
        &format!("/{bucket}/dated/doc"),
        &[],
        b"",
    )
    .await;
    r.assert_hcp_error(409, "OperationAborted");
    let r = as_user(&gw, admin, "DELETE", &format!("/{bucket}/dated/"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let head = as_user(&gw, admin, "HEAD", &format!("/{bucket}/dated/"), &[], b"").await;
    assert_eq!(head.status, 404, "the folder is gone");
    let kept = view.keys(&bucket).await;
    assert!(
        !kept.contains(&"dated/".to_string()) && kept.contains(&"dated/doc".to_string()),
        "at the backend: {kept:?}"
    );
    // That excuse is the delete's alone: a version of a folder's name whose current version is
    // retained (stored beside the gateway under the default retention) is not purged, by a
    // DELETE naming it or in a multi-object delete — the old version has no lock of its own.
    view.put_object(&bucket, "kept/", b"").await;
    let versions = view.versions(&bucket, "kept/").await;
    let old = versions.last().expect("two versions").clone();
    assert_eq!(versions.len(), 2, "{versions:?}");
    let purge = format!("{target}?versionId={old}");
    let r = as_user(&gw, admin, "DELETE", &purge, &[], b"").await;
    r.assert_hcp_error(409, "OperationAborted");
    let doc =
        format!("<Delete><Object><Key>kept/</Key><VersionId>{old}</VersionId></Object></Delete>");
    let md5 = content_md5(doc.as_bytes());
    let multi = format!("/{bucket}?delete");
    let r = as_user(
        &gw,
        admin,
        "POST",
        &multi,
        &[("content-md5", &md5)],
        doc.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("<Code>OperationAborted</Code>"),
        "{}",
        r.text()
    );
    assert_eq!(view.versions(&bucket, "kept/").await, versions);
}

/// HCP's conditions on a read: "No ETags match an asterisk in an If-None-Match header" (GET,
/// HEAD, a copy's source) — `*` is no condition, where S3 answers 304 or 412 — while "All
/// ETags match an asterisk in an If-Match header"; a listed ETag is compared as S3 does.
#[tokio::test]
async fn an_asterisk_matches_no_etag_in_if_none_match() {
    let gw = start(Backend::Store).await.unwrap();
    let bucket = gw.with_bucket("asterisk").await;
    let target = format!("/{bucket}/k");
    let admin = (USER, PASSWORD);
    let r = as_user(&gw, admin, "PUT", &target, &[], b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = r.header("etag").expect("an ETag").to_string();
    for method in ["GET", "HEAD"] {
        for (headers, status) in [
            (vec![("if-none-match", "*")], 200),
            (vec![("if-none-match", "*, \"other\"")], 200),
            (vec![("if-match", "*")], 200),
            (vec![("if-none-match", etag.as_str())], 304),
        ] {
            let r = as_user(&gw, admin, method, &target, &headers, b"").await;
            assert_eq!(r.status, status, "{method} {headers:?}: {}", r.text());
            if method == "GET" && status == 200 {
                assert_eq!(r.body, b"data");
            }
        }
    }
    let source = [
        ("x-amz-copy-source", target.as_str()),
        ("x-amz-copy-source-if-none-match", "*"),
    ];
    let copy = format!("/{bucket}/copy");
    let r = as_user(&gw, admin, "PUT", &copy, &source, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// HCP's byte ranges: a valid one is 206 (or 416 past the data, or for an offset of zero); "If
/// you specify an invalid value … HCP ignores the Range header and returns the complete object
/// data with a status code of 200" — the backend never sees it (the store would answer 400).
#[tokio::test]
async fn ranges_are_hcp_s_and_an_invalid_one_is_ignored() {
    let gw = start(Backend::Store).await.unwrap();
    let bucket = gw.with_bucket("ranges").await;
    let target = format!("/{bucket}/k");
    let admin = (USER, PASSWORD);
    let r = as_user(&gw, admin, "PUT", &target, &[], b"0123456789").await;
    assert_eq!(r.status, 200, "{}", r.text());
    for (range, status, body) in [
        ("bytes=1-3", 206, &b"123"[..]),
        (" bytes=7-", 206, b"789"),
        ("bytes=-2", 206, b"89"),
        ("bytes=5-2", 200, b"0123456789"),
        ("bytes=0-1,3-4", 200, b"0123456789"),
        ("bytes=x-", 200, b"0123456789"),
        ("lines=1-2", 200, b"0123456789"),
        ("bytes=10-", 416, b""),
        ("bytes=-0", 416, b""),
        // Positions past any object ("an end past the data: to its end"; a start past it
        // 416), also beyond the 2^63 − 1 backends read (the store answered 400).
        ("bytes=8-99999999999999999999", 206, b"89"),
        ("bytes=8-18446744073709551615", 206, b"89"),
        ("bytes=9223372036854775808-", 416, b""),
        ("bytes=-18446744073709551615", 206, b"0123456789"),
        // (The last before the first, both past what backends read: no range.)
        (
            "bytes=9223372036854775809-9223372036854775808",
            200,
            b"0123456789",
        ),
        ("bytes=000012-3", 200, b"0123456789"),
        ("bytes=0003-0004", 206, b"34"),
    ] {
        let r = as_user(&gw, admin, "GET", &target, &[("range", range)], b"").await;
        assert_eq!(r.status, status, "{range}: {}", r.text());
        if status == 416 {
            r.assert_hcp_error(416, "InvalidRange");
        } else {
            assert_eq!(r.body, body, "{range}");
        }
    }
}

/// HCP's response overrides (manual, "Overriding response headers"): as S3's query parameters
/// or as HCP's request headers, a GET answers the values asked — `Cache-Control` and `Expires`
/// in place of HCP's fixed ones too; the parameters HCP reads in any case (`?ACL`, `?Versions`,
/// `?versionid=`) are its operations, not a PUT or a listing of another kind.
async fn overrides_and_parameters_as_hcp_reads_them(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "overrides").await else {
        return;
    };
    let target = format!("/{bucket}/k");
    let admin = (USER, PASSWORD);
    let r = as_user(
        &gw,
        admin,
        "PUT",
        &target,
        &[("content-type", "text/plain")],
        b"data",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let asked = "response-cache-control=max-age%3D60&response-content-type=image%2Fpng\
                 &response-expires=Wed%2C%2021%20Oct%202037%2007%3A28%3A00%20GMT";
    let r = as_user(&gw, admin, "GET", &format!("{target}?{asked}"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("max-age=60"));
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.header("expires"), Some("Wed, 21 Oct 2037 07:28:00 GMT"));
    let headers = [
        ("response-cache-control", "private"),
        (
            "response-content-disposition",
            "attachment; filename=\"k.txt\"",
        ),
    ];
    let r = as_user(&gw, admin, "GET", &target, &headers, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("private"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"k.txt\"")
    );
    assert_eq!(r.body, b"data");
    // The answer varies with them (no shared cache serves one client's to another), and they
    // act only when signed, as S3 signs them as parameters.
    let vary = r.header("vary").unwrap_or_default();
    assert!(
        vary.contains("response-cache-control") && vary.contains("response-content-disposition"),
        "{vary}"
    );
    let addr = gw.addr();
    let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let mut unsigned =
        common::raw::V4::unsigned(&ak, &sk, &addr).sign("GET", target.as_bytes(), &[]);
    unsigned.push(("response-content-type".into(), "text/html".into()));
    let r = common::raw::send(&addr, "GET", target.as_bytes(), &unsigned, Vec::new()).await;
    r.assert_hcp_error(403, "AccessDenied");
    assert!(
        r.text().contains("not signed: response-content-type"),
        "{}",
        r.text()
    );
    // Without them, HCP's own.
    let r = as_user(&gw, admin, "GET", &target, &[], b"").await;
    assert_eq!(
        r.header("cache-control"),
        Some("no-cache, no-store, must-revalidate")
    );
    assert_eq!(r.header("content-type"), Some("text/plain"));
    // `?ACL` is the object's ACL, not a PUT of an empty object over it.
    let r = as_user(
        &gw,
        admin,
        "PUT",
        &format!("{target}?ACL"),
        &[("x-amz-acl", "private")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"data");
    let view = common::view::BackendView::of(&gw);
    assert_eq!(
        view.object(&bucket, "k").await.as_deref(),
        Some(&b"data"[..])
    );
    let r = as_user(&gw, admin, "GET", &format!("{target}?Acl"), &[], b"").await;
    assert!(r.text().contains("AccessControlPolicy"), "{}", r.text());
    let r = as_user(&gw, admin, "GET", &format!("/{bucket}?Versions"), &[], b"").await;
    assert!(r.text().contains("ListVersionsResult"), "{}", r.text());
    // Another operation's parameters, whatever their values, are ignored ("if the request
    // includes invalid query parameters, those parameters are ignored", seed 002).
    let others = "max-keys=ten&max-uploads=5000&max-parts=5000&part-number-marker=99999";
    let r = as_user(&gw, admin, "GET", &format!("{target}?{others}"), &[], b"").await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"data"[..]),
        "{}",
        r.text()
    );
    let other = format!("/{bucket}/other?{others}");
    let r = as_user(&gw, admin, "PUT", &other, &[], b"x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(object_bytes(&s3, &bucket, "other").await, b"x");
    let r = as_user(&gw, admin, "DELETE", &other, &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
}

#[tokio::test]
async fn overrides_and_parameters_on_the_embedded_store() {
    overrides_and_parameters_as_hcp_reads_them(Backend::Store).await;
}

#[tokio::test]
async fn overrides_and_parameters_on_rgw() {
    overrides_and_parameters_as_hcp_reads_them(Backend::Rgw).await;
}

/// A condition's date in one of HCP's forms counts (`+0000` for `GMT` too); another value "is
/// ignored", where the store would answer 400.
#[tokio::test]
async fn condition_dates_in_hcp_s_forms_count_and_others_are_ignored() {
    let gw = start(Backend::Store).await.unwrap();
    let bucket = gw.with_bucket("since").await;
    let target = format!("/{bucket}/k");
    let admin = (USER, PASSWORD);
    let r = as_user(&gw, admin, "PUT", &target, &[], b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    for (header, value, status) in [
        ("if-modified-since", "Tue, 07 Feb 2090 14:27:05 +0000", 304),
        ("if-modified-since", "Tuesday, 07-Feb-90 14:27:05 GMT", 200),
        ("if-modified-since", "Tue Feb 7 14:27:05 2090", 304),
        (
            "if-modified-since",
            "Tuesday, 07-Feb-2090 14:27:05 GMT",
            304,
        ),
        ("if-modified-since", "not a date", 200),
        (
            "if-unmodified-since",
            "Tue, 07 Feb 2017 14:27:05 +0000",
            412,
        ),
        ("if-unmodified-since", "2017-02-07", 200),
    ] {
        let r = as_user(&gw, admin, "GET", &target, &[(header, value)], b"").await;
        assert_eq!(r.status, status, "{header}: {value}: {}", r.text());
    }
}

/// A created bucket's `Location` (and a versioning change's) is HCP's: `/` and the name the
/// client gave (manual, "Creating a bucket"), never the backend's, which holds the tenant's
/// bucket prefix.
#[tokio::test]
async fn a_created_bucket_is_located_by_its_own_name() {
    let gw = start_with(Backend::Store, "tenant-prefix-", "")
        .await
        .unwrap();
    let bucket = unique_bucket("located");
    let made = gw.client().create_bucket().bucket(&bucket).send().await;
    assert_eq!(
        made.unwrap().location(),
        Some(format!("/{bucket}").as_str())
    );
    // So is a bucket whose versioning changed (manual: "Location: Specifies the name of the
    // target bucket").
    let enabled = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let md5 = content_md5(enabled.as_bytes());
    let headers = [("content-md5", md5.as_str())];
    let target = format!("/{bucket}?versioning");
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "PUT",
        &target,
        &headers,
        enabled.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("location"), Some(format!("/{bucket}").as_str()));
}

/// A form's file that is gzipped, with a `Content-Encoding` field of `gzip`, is decoded ("If
/// value is gzip and file is gzipped, HCP decodes the file"): the object is what it decodes to,
/// without a Content-Encoding, and the policy's `content-length-range` counts the decoded
/// bytes ("the size limit is applied to the size of the uncompressed object"). A file that
/// decodes past the form limit (a small bomb) is 400 EntityTooLarge, one that decodes past the
/// policy's range InvalidPolicyDocument, one that is not gzip's data 400 InvalidArgument, each
/// before the backend and storing nothing; a file that is not gzipped is stored as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzipped_form_file_is_stored_decoded() {
    use std::io::Write as _;
    let gw = start_local_with("", "[limits]\nmax_post_object_bytes = 65536\n").await;
    let bucket = gw.with_bucket("gzipped").await;
    let (ak, sk) = keys(USER, PASSWORD);
    let gzip = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let text = pattern(8 * 1024, 3).repeat(4);
    let packed = gzip(&text);
    assert!(packed.len() < text.len() / 2, "{}", packed.len());
    let post = |key: &'static str, range: String, file: Vec<u8>| {
        let (addr, bucket, ak, sk) = (gw.addr(), bucket.clone(), ak.clone(), sk.clone());
        async move {
            let fields = [("key", key), ("Content-Encoding", "gzip")];
            let conditions = [range.as_str()];
            let body =
                common::raw::signed_form_body((&ak, &sk), &bucket, (&fields, &conditions), &file);
            common::raw::post_multipart(&addr, &bucket, &body).await
        }
    };
    let exactly = |n: usize| format!("[\"content-length-range\", {n}, {n}]");
    let r = post("text", exactly(text.len()), packed.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let got = gw.client().get_object().bucket(&bucket).key("text").send();
    let got = got.await.unwrap();
    assert_eq!(got.content_encoding(), None);
    assert_eq!(bytes_of(got).await, text);

    let mut corrupt = packed[..12].to_vec();
    corrupt.extend_from_slice(b"not deflate data at all");
    // (The policy's largest size bounds the decoding first: past the form limit, the limit's.)
    let wide = "[\"content-length-range\", 0, 1048576]".to_string();
    let refused = [
        (
            "small",
            exactly(packed.len()),
            packed.clone(),
            400,
            "InvalidPolicyDocument",
        ),
        (
            "bomb",
            wide.clone(),
            gzip(&vec![0; 1 << 20]),
            400,
            "EntityTooLarge",
        ),
        ("corrupt", wide.clone(), corrupt, 400, "InvalidArgument"),
        // (Within the form limit but past the policy: decoded no further than its range.)
        (
            "capped",
            exactly(16),
            gzip(&vec![0; 1 << 15]),
            400,
            "InvalidPolicyDocument",
        ),
    ];
    for (key, range, file, status, code) in refused {
        let before = gw.backend_requests();
        let r = post(key, range, file).await;
        r.assert_hcp_error(status, code);
        assert_eq!(gw.backend_requests(), before, "{key} reached the backend");
    }
    let view = common::view::BackendView::of(&gw);
    assert_eq!(view.keys(&bucket).await, ["text"]);
    // The backend's own copy is the decoded bytes.
    assert_eq!(view.object(&bucket, "text").await, Some(text.clone()));

    // Not gzipped: stored as sent, its Content-Encoding as the form gives it.
    let r = post("as-sent", exactly(4), b"asis".to_vec()).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let got = gw
        .client()
        .get_object()
        .bucket(&bucket)
        .key("as-sent")
        .send();
    let got = got.await.unwrap();
    assert_eq!(got.content_encoding(), Some("gzip"));
    assert_eq!(bytes_of(got).await, b"asis");
}

/// A form's object is a PUT's: its file is held to `limits.max_put_bytes` (rule 26) as a PUT's
/// body is, whatever `max_post_object_bytes` and the policy's range allow — as sent, and as
/// a gzipped file decodes. 400 EntityTooLarge, nothing stored.
#[tokio::test]
async fn a_form_s_file_is_held_to_a_put_s_size() {
    use std::io::Write as _;
    let gw = start_local_with("", "[limits]\nmax_put_bytes = 1024\n").await;
    let bucket = gw.with_bucket("form-size").await;
    let (ak, sk) = keys(USER, PASSWORD);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&[0; 4096]).unwrap();
    let packed = e.finish().unwrap();
    assert!(packed.len() < 1024, "{}", packed.len());
    let wide = "[\"content-length-range\", 0, 1048576]";
    let cases = [
        ("fits", vec![("key", "fits")], vec![b'x'; 1024], 204),
        ("big", vec![("key", "big")], vec![b'x'; 2048], 400),
        (
            "bomb",
            vec![("key", "bomb"), ("Content-Encoding", "gzip")],
            packed,
            400,
        ),
    ];
    for (key, fields, file, status) in cases {
        let body = common::raw::signed_form_body((&ak, &sk), &bucket, (&fields, &[wide]), &file);
        let r = common::raw::post_multipart(&gw.addr(), &bucket, &body).await;
        match status {
            204 => assert_eq!(r.status, 204, "{key}: {}", r.text()),
            _ => r.assert_hcp_error(status, "EntityTooLarge"),
        }
    }
    let view = common::view::BackendView::of(&gw);
    assert_eq!(view.keys(&bucket).await, ["fits"]);
}

/// A delete marker's version, as HCP answers for it: HEAD tells it is one (200,
/// `x-amz-delete-marker: true`, no content; the manual's HEAD headers), GET finds no object
/// there (404), a copy or part copy from it has no source (404, the manual's copy); the key's
/// current version, a delete marker, is 404 to GET and HEAD. S3 servers refuse the first
/// four (405).
async fn delete_markers_as_hcp_answers(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "markers").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let conf = aws_sdk_s3::types::VersioningConfiguration::builder()
        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
        .build();
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(conf)
        .send()
        .await
        .unwrap();
    let target = format!("/{bucket}/k");
    let r = as_user(&gw, admin, "PUT", &target, &[], b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, admin, "DELETE", &target, &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-amz-delete-marker"), Some("true"));
    let marker = r.header("x-amz-version-id").unwrap().to_string();
    let at_marker = format!("{target}?versionId={marker}");
    let r = as_user(&gw, admin, "HEAD", &at_marker, &[], b"").await;
    if backend == Backend::Rgw {
        // (RGW answers 404, as for a version that does not exist: nothing tells the two apart.)
        assert_eq!(r.status, 404);
    } else {
        assert_eq!(r.status, 200, "{:?}", r.headers);
        assert_eq!(r.header("x-amz-delete-marker"), Some("true"));
        assert_eq!(r.header("x-amz-version-id"), Some(marker.as_str()));
        assert_eq!(r.header("content-length"), Some("0"));
        // When the marker was made (the manual's HEAD headers: Last-Modified), where the
        // backend says: AWS's 405 does ("and the Last-Modified: timestamp response header"),
        // moto's not.
        let modified = r.header("last-modified");
        assert!(modified.is_some() || backend == Backend::Moto);
        if let Some(modified) = modified {
            let modified = httpdate::parse_http_date(modified).unwrap();
            let age = std::time::SystemTime::now()
                .duration_since(modified)
                .unwrap();
            assert!(age < std::time::Duration::from_secs(60), "{age:?}");
        }
    }
    let r = as_user(&gw, admin, "GET", &at_marker, &[], b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    // Its ACL neither read nor set: HCP's ACL tables have no 405 — the object version "does
    // not exist" (404), as for a GET.
    let acl_at_marker = format!("{target}?acl&versionId={marker}");
    let r = as_user(&gw, admin, "GET", &acl_at_marker, &[], b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    assert!(r.text().contains("<Key>k</Key>"), "{}", r.text());
    let private = [("x-amz-acl", "private")];
    let r = as_user(&gw, admin, "PUT", &acl_at_marker, &private, b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    let copied = format!("/{bucket}/copy");
    let copy = [("x-amz-copy-source", at_marker.as_str())];
    let r = as_user(&gw, admin, "PUT", &copied, &copy, b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    let copy = [("x-amz-copy-source", target.as_str())];
    let r = as_user(&gw, admin, "PUT", &copied, &copy, b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    // A part copy from it as well (its status table has no 405); its part never stored.
    let r = as_user(&gw, admin, "POST", &format!("{copied}?uploads"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let upload = text
        .split("<UploadId>")
        .nth(1)
        .and_then(|t| t.split('<').next());
    let parts = format!("{copied}?uploadId={}", upload.expect("an upload id"));
    for source in [&at_marker, &target] {
        let copy = [("x-amz-copy-source", source.as_str())];
        let part = format!("{parts}&partNumber=1");
        let r = as_user(&gw, admin, "PUT", &part, &copy, b"").await;
        r.assert_hcp_error(404, "NoSuchKey");
    }
    let r = as_user(&gw, admin, "GET", &parts, &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("<Part>"), "{}", r.text());
    let r = as_user(&gw, admin, "DELETE", &parts, &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    // The key's current version is the marker: no object.
    let r = as_user(&gw, admin, "HEAD", &target, &[], b"").await;
    assert_eq!(r.status, 404);
    as_user(&gw, admin, "GET", &target, &[], b"")
        .await
        .assert_hcp_error(404, "NoSuchKey");
    // Nothing was stored by the copies; the object's version is still there under the marker.
    let view = common::view::BackendView::of(&gw);
    assert!(!view.keys(&bucket).await.contains(&"copy".to_string()));
}

#[tokio::test]
async fn delete_markers_on_the_embedded_store() {
    delete_markers_as_hcp_answers(Backend::Store).await;
}

#[tokio::test]
async fn delete_markers_on_rgw() {
    delete_markers_as_hcp_answers(Backend::Rgw).await;
}

#[tokio::test]
async fn delete_markers_on_moto() {
    delete_markers_as_hcp_answers(Backend::Moto).await;
}

/// A CreateBucket's body names a region or placement, which HCP has none of (its manual: the
/// body is empty): the client's is read, must be a `CreateBucketConfiguration`, and is never
/// sent on; the backend gets the gateway's own — the configured region where AWS needs it
/// named. (RGW would put a bucket in the placement named after `default:`; AWS, in the
/// region named.)
async fn bucket_configurations_are_the_gateway_s(gw: TestGateway) {
    let admin = (USER, PASSWORD);
    let view = common::view::BackendView::of(&gw);
    let configuration = |constraint: &str| {
        format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>{constraint}</LocationConstraint></CreateBucketConfiguration>"
        )
    };
    // (RGW names its zone group for every bucket.)
    let create = |bucket: &str, body: &[u8]| {
        let (gw, target, body) = (&gw, format!("/{bucket}"), body.to_vec());
        async move { as_user(gw, admin, "PUT", &target, &[], &body).await }
    };
    let region = if gw.backend == Backend::Moto {
        "eu-west-1"
    } else {
        "default"
    };
    for (n, body) in [
        configuration("default:no-such-placement"),
        configuration("ap-south-1"),
        String::new(),
    ]
    .iter()
    .enumerate()
    {
        let bucket = unique_bucket(&format!("placed{n}"));
        let r = create(&bucket, body.as_bytes()).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        let location = view.bucket_location(&bucket).await;
        assert_eq!(location.as_deref(), Some(region), "{body}");
    }
    let bucket = unique_bucket("misplaced");
    for body in [
        "<Delete><Object><Key>k</Key></Object></Delete>".to_string(),
        configuration("x").replace(
            "</CreateBucketConfiguration>",
            "<Bucket/></CreateBucketConfiguration>",
        ),
        "<CreateBucketConfiguration>".to_string(),
    ] {
        let r = create(&bucket, body.as_bytes()).await;
        r.assert_hcp_error(400, "MalformedXML");
        assert_eq!(
            view.bucket_location(&bucket).await,
            None,
            "created by {body}"
        );
    }
}

#[tokio::test]
async fn bucket_configurations_on_rgw() {
    if let Some(gw) = start(Backend::Rgw).await {
        bucket_configurations_are_the_gateway_s(gw).await;
    }
}

/// (moto as an AWS backend in a region other than us-east-1, where a bucket's region must be
/// named.)
#[tokio::test]
async fn bucket_configurations_on_aws_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let Some(entry) = Backend::Moto.config_entry(&dir.path().join("data")) else {
        return;
    };
    let entry = entry.replace("region = \"us-east-1\"", "region = \"eu-west-1\"");
    let text = format!("{}\n{entry}", base_config(""));
    let gw = start_text(&text, dir, Backend::Moto).await;
    bucket_configurations_are_the_gateway_s(gw).await;
}

/// A write that names no media type stores the one HCP determines from the object's name
/// (else `application/octet-stream`, never AWS's `binary/octet-stream`): a PUT, a multipart
/// upload, a copy with new metadata; one that names a type keeps it, and a copy under COPY
/// keeps its source's.
async fn media_types_from_names(backend: Backend) {
    let Some((gw, _s3, bucket)) = start_with_bucket(backend, "media").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let at = |key: &str| format!("/{bucket}/{key}");
    let type_of = |key: &'static str| {
        let (gw, target) = (&gw, at(key));
        async move {
            let r = as_user(gw, admin, "HEAD", &target, &[], b"").await;
            assert_eq!(r.status, 200, "{key}");
            r.header("content-type").unwrap_or_default().to_string()
        }
    };
    for key in [
        "report.pdf",
        "notes.TXT",
        "no-extension",
        ".hidden",
        "page.html",
    ] {
        let r = as_user(&gw, admin, "PUT", &at(key), &[], b"data").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(type_of("report.pdf").await, "application/pdf");
    assert_eq!(type_of("notes.TXT").await, "text/plain");
    assert_eq!(type_of("no-extension").await, "application/octet-stream");
    assert_eq!(type_of(".hidden").await, "application/octet-stream");
    assert_eq!(type_of("page.html").await, "text/html");
    let named = [("content-type", "application/x-custom")];
    let r = as_user(&gw, admin, "PUT", &at("named.pdf"), &named, b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(type_of("named.pdf").await, "application/x-custom");
    // A metadata change (onto itself, REPLACE) keeps the object's type unless it names one
    // (a form-encoded one, some libraries' default on a bodiless request, names none).
    let itself = at("named.pdf");
    for (content_type, expected) in [
        (None, "application/x-custom"),
        (
            Some("application/x-www-form-urlencoded"),
            "application/x-custom",
        ),
        (Some("text/plain"), "text/plain"),
    ] {
        let mut headers = vec![
            ("x-amz-copy-source", itself.as_str()),
            ("x-amz-metadata-directive", "REPLACE"),
            ("x-amz-meta-edited", "yes"),
        ];
        headers.extend(content_type.map(|t| ("content-type", t)));
        let r = as_user(&gw, admin, "PUT", &itself, &headers, b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(type_of("named.pdf").await, expected, "{content_type:?}");
    }
    // A copy keeps its source's type under COPY; with new metadata, its own name's.
    let source = at("report.pdf");
    let copy = [("x-amz-copy-source", source.as_str())];
    let r = as_user(&gw, admin, "PUT", &at("copied.json"), &copy, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(type_of("copied.json").await, "application/pdf");
    let replace = [
        ("x-amz-copy-source", source.as_str()),
        ("x-amz-metadata-directive", "REPLACE"),
    ];
    let r = as_user(&gw, admin, "PUT", &at("replaced.json"), &replace, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(type_of("replaced.json").await, "application/json");
    // A multipart upload's object.
    let s3 = gw.client();
    let up = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("parts.csv");
    let id = up.send().await.unwrap().upload_id().unwrap().to_string();
    let part = s3
        .upload_part()
        .bucket(&bucket)
        .key("parts.csv")
        .upload_id(&id);
    let part = part.part_number(1).body(ByteStream::from_static(b"a,b"));
    let etag = part.send().await.unwrap().e_tag().unwrap().to_string();
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(1)
                .e_tag(etag)
                .build(),
        )
        .build();
    let complete = s3
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("parts.csv");
    complete
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    assert_eq!(type_of("parts.csv").await, "text/csv");
}

#[tokio::test]
async fn media_types_on_the_embedded_store() {
    media_types_from_names(Backend::Store).await;
}

#[tokio::test]
async fn media_types_on_rgw() {
    media_types_from_names(Backend::Rgw).await;
}

#[tokio::test]
async fn media_types_on_moto() {
    media_types_from_names(Backend::Moto).await;
}

/// HCP returns an object only if it "meets all the conditions", the ETag conditions before the
/// dates (If-Match or If-Unmodified-Since failing: 412; If-None-Match or If-Modified-Since:
/// 304) — where HTTP would ignore a date beside its ETag condition, and backends do; a copy's
/// source conditions likewise, every failure 412 and nothing copied.
async fn conditions_are_all_met(backend: Backend) {
    let Some((gw, _s3, bucket)) = start_with_bucket(backend, "conditions").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let target = format!("/{bucket}/k");
    let r = as_user(&gw, admin, "PUT", &target, &[], b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = r.header("etag").unwrap().to_string();
    let r = as_user(&gw, admin, "HEAD", &target, &[], b"").await;
    let modified = r.header("last-modified").unwrap().to_string();
    let modified = httpdate::parse_http_date(&modified).unwrap();
    let later = httpdate::fmt_http_date(modified + std::time::Duration::from_secs(3600));
    let earlier = "Mon, 01 Jan 2001 00:00:00 GMT";
    let etag = etag.as_str();
    let listed = format!("\"aaa\", {etag}");
    for method in ["GET", "HEAD"] {
        for (headers, status) in [
            (
                vec![("if-match", etag), ("if-unmodified-since", earlier)],
                412,
            ),
            (
                vec![
                    ("if-none-match", "\"other\""),
                    ("if-modified-since", &later),
                ],
                304,
            ),
            // (If-Match with If-None-Match: conflicting, seed 002's 400 whatever they name.)
            (vec![("if-match", etag), ("if-none-match", etag)], 400),
            (
                vec![("if-match", "\"other\""), ("if-none-match", etag)],
                400,
            ),
            (
                vec![("if-match", etag), ("if-none-match", "\"other\"")],
                400,
            ),
            (
                vec![("if-match", etag), ("if-unmodified-since", &later)],
                200,
            ),
            // (The ETag conditions first: HCP's 304, where a backend judging the date first
            // would refuse with 412.)
            (
                vec![("if-none-match", etag), ("if-unmodified-since", earlier)],
                304,
            ),
            // "All ETags match an asterisk in an If-Match header", and one in a list matches —
            // which backends read each their own way (RGW's 412).
            (vec![("if-match", "*")], 200),
            (vec![("if-match", listed.as_str())], 200),
            (vec![("if-match", "\"aaa\", \"bbb\"")], 412),
            // (A value that is no ASCII text is a condition all the same, matching no ETag.)
            (vec![("if-match", "\"e\u{2013}\"")], 412),
            (vec![("if-none-match", "\"e\u{2013}\"")], 200),
            // A condition given twice: HCP "processes only the first one of those headers and
            // ignores the rest" — whichever the backend would read.
            (
                vec![("if-none-match", "\"aaa\""), ("if-none-match", etag)],
                200,
            ),
            (
                vec![("if-none-match", etag), ("if-none-match", "\"aaa\"")],
                304,
            ),
            (vec![("if-match", "\"aaa\""), ("if-match", etag)], 412),
            (
                vec![
                    ("if-unmodified-since", &later),
                    ("if-unmodified-since", earlier),
                ],
                200,
            ),
        ] {
            let r = as_user(&gw, admin, method, &target, &headers, b"").await;
            assert_eq!(r.status, status, "{method} {headers:?}: {}", r.text());
            if status == 412 && method == "GET" {
                r.assert_hcp_error(412, "PreconditionFailed");
            }
            if status == 400 && method == "GET" {
                r.assert_hcp_error(400, "InvalidArgument");
            }
            // (HCP's 304 is of its error class: no Cache-Control, no Expires.)
            if status == 304 {
                assert_eq!(r.header("cache-control"), None, "{headers:?}");
                assert_eq!(r.header("expires"), None, "{headers:?}");
            }
        }
    }
    // A 304 names a version only while versioning is enabled, as a 200 does (an object stored
    // while it was, read once it is suspended) — the gateway's 304 and the backend's alike.
    let s3 = gw.client();
    set_versioning(
        &s3,
        &bucket,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    let versioned = format!("/{bucket}/versioned");
    let r = as_user(&gw, admin, "PUT", &versioned, &[], b"data").await;
    let tag = r.header("etag").unwrap().to_string();
    assert!(r.header("x-amz-version-id").is_some());
    set_versioning(
        &s3,
        &bucket,
        aws_sdk_s3::types::BucketVersioningStatus::Suspended,
    )
    .await;
    for headers in [
        vec![("if-none-match", tag.as_str())],
        vec![("if-modified-since", later.as_str())],
        // (A date beside an ETag condition: the gateway judges it on the backend's 200.)
        vec![
            ("if-none-match", "\"other\""),
            ("if-modified-since", later.as_str()),
        ],
    ] {
        let r = as_user(&gw, admin, "GET", &versioned, &headers, b"").await;
        assert_eq!(r.status, 304, "{headers:?}");
        assert_eq!(r.header("x-amz-version-id"), None, "{headers:?}");
    }
    // HCP's HEAD answers the object whole: a range is no part of it (200, its whole length).
    for range in ["bytes=0-0", "bytes=100-"] {
        let r = as_user(&gw, admin, "HEAD", &target, &[("range", range)], b"").await;
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.header("content-length"), Some("4"), "{range}");
        assert_eq!(r.header("content-range"), None, "{range}");
    }
    // Conditions before the range: an unsatisfiable one is 416 only where they hold.
    let past = ("range", "bytes=100-");
    for (headers, status) in [
        (
            vec![
                ("if-none-match", "\"other\""),
                ("if-unmodified-since", earlier),
                past,
            ],
            412,
        ),
        (
            vec![("if-match", etag), ("if-modified-since", &later), past],
            304,
        ),
        (
            vec![("if-match", etag), ("if-unmodified-since", &later), past],
            416,
        ),
        // (An If-Match the backend is not given — a list, `*` — judged first too.)
        (vec![("if-match", "\"aaa\", \"bbb\""), past], 412),
        (vec![("if-match", "*"), past], 416),
        // (Whatever the backend made of them: an If-None-Match list RGW reads its own way.)
        (vec![("if-none-match", listed.as_str()), past], 304),
        (vec![("if-match", "\"0000\""), past], 412),
    ] {
        let r = as_user(&gw, admin, "GET", &target, &headers, b"").await;
        assert_eq!(r.status, status, "{headers:?}: {}", r.text());
    }
    let copied = format!("/{bucket}/copied");
    let copy = |unmodified: &str| {
        let headers = [
            ("x-amz-copy-source", target.clone()),
            ("x-amz-copy-source-if-match", etag.to_string()),
            (
                "x-amz-copy-source-if-unmodified-since",
                unmodified.to_string(),
            ),
        ];
        let (gw, copied) = (&gw, &copied);
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            as_user(gw, admin, "PUT", copied, &headers, b"").await
        }
    };
    copy(earlier)
        .await
        .assert_hcp_error(412, "PreconditionFailed");
    let view = common::view::BackendView::of(&gw);
    assert!(!view.keys(&bucket).await.contains(&"copied".to_string()));
    let r = copy(&later).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The source as it is now: stored again, its new ETag is the one that holds.
    let r = as_user(&gw, admin, "PUT", &target, &[], b"data, again").await;
    let etag = r.header("etag").unwrap().to_string();
    let headers = [
        ("x-amz-copy-source", target.as_str()),
        ("x-amz-copy-source-if-match", etag.as_str()),
    ];
    let r = as_user(&gw, admin, "PUT", &copied, &headers, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // (Given twice: the first holds, the second is ignored — and the other way round.)
    // (Nor is a value that is no ASCII text read as none: 412, nothing copied.)
    let odd = "\"e\u{2013}\"";
    for (first, second, status) in [
        (etag.as_str(), "\"zz\"", 200),
        ("\"zz\"", &etag, 412),
        (odd, &etag, 412),
    ] {
        let headers = [
            ("x-amz-copy-source", target.as_str()),
            ("x-amz-copy-source-if-match", first),
            ("x-amz-copy-source-if-match", second),
        ];
        let r = as_user(&gw, admin, "PUT", &copied, &headers, b"").await;
        assert_eq!(r.status, status, "{first} {second}: {}", r.text());
    }
    // A part copy's too, one after another.
    let s3 = gw.client();
    let up = s3.create_multipart_upload().bucket(&bucket).key("parts");
    let id = up.send().await.unwrap().upload_id().unwrap().to_string();
    let part = |n: u32, etag: String| {
        let (gw, target, id) = (&gw, target.clone(), id.clone());
        let at = format!("/{bucket}/parts?partNumber={n}&uploadId={id}");
        async move {
            let headers = [
                ("x-amz-copy-source", target.as_str()),
                ("x-amz-copy-source-if-match", etag.as_str()),
            ];
            as_user(gw, admin, "PUT", &at, &headers, b"").await
        }
    };
    let r = part(1, etag.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, admin, "PUT", &target, &[], b"data, a third time").await;
    part(2, etag)
        .await
        .assert_hcp_error(412, "PreconditionFailed");
    part(2, odd.to_string())
        .await
        .assert_hcp_error(412, "PreconditionFailed");
    let etag = r.header("etag").unwrap().to_string();
    let r = part(2, etag).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A source that is not there is the backend's to answer, conditions or not: 404.
    let missing = format!("/{bucket}/missing");
    let headers = [
        ("x-amz-copy-source", missing.as_str()),
        ("x-amz-copy-source-if-match", "\"e\""),
    ];
    let r = as_user(&gw, admin, "PUT", &copied, &headers, b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    let at = format!("/{bucket}/parts?partNumber=3&uploadId={id}");
    let r = as_user(&gw, admin, "PUT", &at, &headers, b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    // A write's If-Match (S3's) is judged alike whatever the backend (Ceph RGW reads it its
    // own way: judged by the gateway there); its If-None-Match takes only `*`.
    let written = format!("/{bucket}/written");
    let r = as_user(&gw, admin, "PUT", &written, &[], b"one").await;
    let one = r.header("etag").unwrap().to_string();
    let other = [("if-match", "\"00000000000000000000000000000000\"")];
    let r = as_user(&gw, admin, "PUT", &written, &other, b"two").await;
    r.assert_hcp_error(412, "PreconditionFailed");
    let copy_over = [("x-amz-copy-source", target.as_str()), other[0]];
    let r = as_user(&gw, admin, "PUT", &written, &copy_over, b"").await;
    r.assert_hcp_error(412, "PreconditionFailed");
    assert_eq!(object_bytes(&s3, &bucket, "written").await, b"one");
    let r = as_user(&gw, admin, "PUT", &written, &[("if-match", &one)], b"two").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(object_bytes(&s3, &bucket, "written").await, b"two");
    // An If-None-Match naming ETags too (AWS answers it 501, the others each their way).
    let two = r.header("etag").unwrap().to_string();
    let r = as_user(
        &gw,
        admin,
        "PUT",
        &written,
        &[("if-none-match", &two)],
        b"three",
    )
    .await;
    r.assert_hcp_error(412, "PreconditionFailed");
    assert_eq!(object_bytes(&s3, &bucket, "written").await, b"two");
    let r = as_user(&gw, admin, "PUT", &written, &other, b"three").await;
    r.assert_hcp_error(412, "PreconditionFailed");
    let tagged = [("if-none-match", "\"00000000000000000000000000000000\"")];
    let r = as_user(&gw, admin, "PUT", &written, &tagged, b"three").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(object_bytes(&s3, &bucket, "written").await, b"three");
    // A list of ETags, quoted or not, is judged as a list (the store read one as a single
    // ETag no object has, or refused it: 400, a copy 501).
    let three = r.header("etag").unwrap().to_string();
    let bare = three.trim_matches('"');
    let naming = format!("\"00000000000000000000000000000000\", {three}");
    let unquoted = format!("00000000000000000000000000000000, {bare}");
    let copy_of = [("x-amz-copy-source", target.as_str())];
    for list in [naming.as_str(), unquoted.as_str()] {
        for copy in [false, true] {
            let mut headers = vec![("if-none-match", list)];
            headers.extend(copy_of.iter().filter(|_| copy).copied());
            let body: &[u8] = if copy { b"" } else { b"four" };
            let r = as_user(&gw, admin, "PUT", &written, &headers, body).await;
            r.assert_hcp_error(412, "PreconditionFailed");
            assert_eq!(object_bytes(&s3, &bucket, "written").await, b"three");
        }
    }
    let others = "00000000000000000000000000000000, \"11111111111111111111111111111111\"";
    let r = as_user(
        &gw,
        admin,
        "PUT",
        &written,
        &[("if-none-match", others)],
        b"four",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(object_bytes(&s3, &bucket, "written").await, b"four");
    let headers = [("if-none-match", others), copy_of[0]];
    let r = as_user(&gw, admin, "PUT", &written, &headers, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn conditions_are_all_met_on_the_embedded_store() {
    conditions_are_all_met(Backend::Store).await;
}

#[tokio::test]
async fn conditions_are_all_met_on_rgw() {
    conditions_are_all_met(Backend::Rgw).await;
}

/// HCP's listings name every parameter they echo, as an empty element where the request gave
/// none (manual: `Prefix`, `Marker`, `KeyMarker`, `VersionIdMarker`); their page size as asked
/// (RGW answers its own 1,000 for more); and their media type "is always
/// `application/xml;charset=UTF-8`".
async fn listings_name_the_parameters_they_were_not_given(backend: Backend) {
    let Some((gw, _s3, bucket)) = start_with_bucket(backend, "echo").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let empty = |doc: &str, name: &str| {
        doc.contains(&format!("<{name}></{name}>")) || doc.contains(&format!("<{name}/>"))
    };
    // (An object listed: RGW's `<Type>` of it is RGW's own, never shown.)
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/o"), &[], b"o").await;
    assert_eq!(r.status, 200, "{}", r.text());
    for (query, names) in [
        ("", &["Prefix", "Marker"][..]),
        ("?list-type=2", &["Prefix"][..]),
        ("?versions", &["Prefix", "KeyMarker", "VersionIdMarker"][..]),
        ("?uploads", &["Prefix", "KeyMarker"][..]),
    ] {
        let r = as_user(&gw, admin, "GET", &format!("/{bucket}{query}"), &[], b"").await;
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let xml = Some("application/xml;charset=UTF-8");
        assert_eq!(r.header("content-type"), xml, "{query}");
        assert!(!r.text().contains("Type>"), "{query}: {}", r.text());
        for name in names {
            assert!(
                empty(&r.text(), name),
                "{query}: no empty {name}: {}",
                r.text()
            );
        }
    }
    // `MaxKeys` is "the value of the max-keys query parameter included in the request" (1,000
    // where none was), not the 1,000 at most a listing gives.
    // (The same for uploads and an upload's parts; a number as HCP reads it.)
    let r = as_user(
        &gw,
        admin,
        "POST",
        &format!("/{bucket}/k?uploads"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let upload = text
        .split("<UploadId>")
        .nth(1)
        .and_then(|t| t.split('<').next());
    let upload = upload.expect("an upload id");
    let parts = format!("?uploadId={upload}");
    for (query, element, max) in [
        ("", "MaxKeys", "1000"),
        ("?max-keys=5000", "MaxKeys", "5000"),
        ("?list-type=2&max-keys=2147483647", "MaxKeys", "2147483647"),
        ("?versions&max-keys=7", "MaxKeys", "7"),
        ("?versions&max-keys=%2B3000", "MaxKeys", "3000"),
        ("?uploads", "MaxUploads", "1000"),
        ("?uploads&max-uploads=1000", "MaxUploads", "1000"),
        ("?uploads&max-uploads=2", "MaxUploads", "2"),
        (&parts, "MaxParts", "1000"),
    ] {
        let target = match query.starts_with("?uploadId") {
            true => format!("/{bucket}/k{query}"),
            false => format!("/{bucket}{query}"),
        };
        let r = as_user(&gw, admin, "GET", &target, &[], b"").await;
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let echoed = format!("<{element}>{max}</{element}>");
        assert!(r.text().contains(&echoed), "{query}: {}", r.text());
        // ("If the request did not include the upload-id-marker query parameter, the response
        // body does not include" it.)
        if query.starts_with("?uploads") {
            assert!(
                !r.text().contains("<UploadIdMarker"),
                "{query}: {}",
                r.text()
            );
        }
    }
    let r = as_user(
        &gw,
        admin,
        "DELETE",
        &format!("/{bucket}/k{parts}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
}

#[tokio::test]
async fn listings_name_the_parameters_they_were_not_given_on_the_store() {
    listings_name_the_parameters_they_were_not_given(Backend::Store).await;
}

#[tokio::test]
async fn listings_name_the_parameters_they_were_not_given_on_rgw() {
    listings_name_the_parameters_they_were_not_given(Backend::Rgw).await;
}

/// HCP names a listing's next markers "only when the value of the `IsTruncated` element is
/// `true`" (versions: `NextKeyMarker`, `NextVersionIdMarker`; uploads: "does not include the
/// `NextKeyMarker` and `NextUploadIdMarker` elements" once it lists the last upload) — RGW and
/// moto write them on every page.
async fn next_markers_only_on_truncated_pages(backend: Backend) {
    let Some((gw, _s3, bucket)) = start_with_bucket(backend, "nextmarkers").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    for key in ["a", "b"] {
        let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/{key}"), &[], b"o").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = as_user(
            &gw,
            admin,
            "POST",
            &format!("/{bucket}/{key}?uploads"),
            &[],
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let next = ["NextKeyMarker", "NextVersionIdMarker", "NextUploadIdMarker"];
    for (query, truncated, names) in [
        ("?versions", false, &[][..]),
        ("?versions&max-keys=2", false, &[][..]),
        ("?versions&max-keys=1", true, &next[..2]),
        ("?uploads", false, &[][..]),
        ("?uploads&max-uploads=2", false, &[][..]),
        (
            "?uploads&max-uploads=1",
            true,
            &["NextKeyMarker", "NextUploadIdMarker"][..],
        ),
    ] {
        // (moto lists every upload whatever `max-uploads` asks.)
        if backend == Backend::Moto && query == "?uploads&max-uploads=1" {
            continue;
        }
        let r = as_user(&gw, admin, "GET", &format!("/{bucket}{query}"), &[], b"").await;
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let text = r.text();
        // Each echo named once (moto's own `<KeyMarker/>` was named again).
        for echo in ["Prefix", "KeyMarker"] {
            let once = text.matches(&format!("<{echo}>")).count()
                + text.matches(&format!("<{echo}/>")).count();
            assert_eq!(once, 1, "{query}: {echo}: {text}");
        }
        let flag = format!("<IsTruncated>{truncated}</IsTruncated>");
        assert!(text.contains(&flag), "{query}: {text}");
        for name in next {
            let named = text.contains(&format!("<{name}>")) || text.contains(&format!("<{name}/>"));
            assert_eq!(named, names.contains(&name), "{query}: {name}: {text}");
        }
    }
}

#[tokio::test]
async fn next_markers_only_on_truncated_pages_on_the_store() {
    next_markers_only_on_truncated_pages(Backend::Store).await;
}

#[tokio::test]
async fn next_markers_only_on_truncated_pages_on_rgw() {
    next_markers_only_on_truncated_pages(Backend::Rgw).await;
}

#[tokio::test]
async fn next_markers_only_on_truncated_pages_on_moto() {
    next_markers_only_on_truncated_pages(Backend::Moto).await;
}

/// HCP: "If you try to delete an object where the current version is a delete marker or delete
/// record, HCP returns a 204 (No Content)" — and stacks no second marker; a name that never was
/// an object gets none either (S3 would make one for each DELETE). The backend keeps one
/// version and one marker.
async fn deleting_what_is_deleted_leaves_no_marker(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "markers").await else {
        return;
    };
    set_versioning(
        &s3,
        &bucket,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    let view = common::view::BackendView::of(&gw);
    let admin = (USER, PASSWORD);
    let target = format!("/{bucket}/k");
    let r = as_user(&gw, admin, "PUT", &target, &[], b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, admin, "DELETE", &target, &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-amz-delete-marker"), Some("true"));
    for target in [target.clone(), format!("/{bucket}/never")] {
        let r = as_user(&gw, admin, "DELETE", &target, &[], b"").await;
        assert_eq!((r.status, r.body.len()), (204, 0), "{target}: {}", r.text());
        assert_eq!(r.header("x-amz-delete-marker"), None, "{target}");
        assert_eq!(r.header("x-amz-version-id"), None, "{target}");
    }
    assert_eq!(view.versions(&bucket, "k").await.len(), 2);
    assert!(view.versions(&bucket, "never").await.is_empty());
    // A browser's is answered alike, with the CORS headers the bucket's rules give it (the
    // gateway's own answer carries them as the backend's would).
    set_cors(&s3, &bucket, "https://app.example", &["DELETE"]).await;
    let origin = [("origin", "https://app.example")];
    let r = as_user(
        &gw,
        admin,
        "DELETE",
        &format!("/{bucket}/browsed"),
        &origin,
        b"",
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(view.versions(&bucket, "browsed").await.is_empty());
    // So does a conditional one: its condition is the backend's to judge (refused, or carried
    // out as the backend has it).
    let asked = [("if-match", "\"0123\"")];
    let r = as_user(
        &gw,
        admin,
        "DELETE",
        &format!("/{bucket}/asked"),
        &asked,
        b"",
    )
    .await;
    let judged = r.status != 204 || view.versions(&bucket, "asked").await.len() == 1;
    assert!(
        judged,
        "a condition answered unjudged: {} {}",
        r.status,
        r.text()
    );
    // A bucket gone (beside the gateway, its versioning still cached) is NoSuchBucket.
    let gone = new_bucket(&s3, "markers-gone").await;
    set_versioning(
        &s3,
        &gone,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    let r = as_user(&gw, admin, "DELETE", &format!("/{gone}/k"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    view.delete_bucket(&gone).await;
    let r = as_user(&gw, admin, "DELETE", &format!("/{gone}/k"), &[], b"").await;
    r.assert_hcp_error(404, "NoSuchBucket");
    // The object comes back when its marker goes, as before.
    let listed = s3.list_object_versions().bucket(&bucket).prefix("k").send();
    let listed = listed.await.unwrap();
    let marker = listed.delete_markers()[0].version_id().unwrap().to_string();
    let unmark = format!("{target}?versionId={marker}");
    let r = as_user(&gw, admin, "DELETE", &unmark, &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"data");
}

#[tokio::test]
async fn deleting_what_is_deleted_leaves_no_marker_on_the_embedded_store() {
    deleting_what_is_deleted_leaves_no_marker(Backend::Store).await;
}

#[tokio::test]
async fn deleting_what_is_deleted_leaves_no_marker_on_rgw() {
    deleting_what_is_deleted_leaves_no_marker(Backend::Rgw).await;
}

/// In a tenant that keeps HCP's folders, a folder's name is judged alike: a DELETE of a
/// folder that does not exist, or whose marker is deleted already, is 204 and leaves no delete
/// marker ("folders cannot have multiple versions").
async fn deleting_a_folder_that_is_not_there_leaves_no_marker(backend: Backend) {
    let Some(gw) = start_with_tenant(backend, "folders = true", "").await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "folder-markers").await;
    set_versioning(
        &s3,
        &bucket,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    let view = common::view::BackendView::of(&gw);
    let admin = (USER, PASSWORD);
    let r = as_user(&gw, admin, "DELETE", &format!("/{bucket}/ghost/"), &[], b"").await;
    assert_eq!((r.status, r.header("x-amz-delete-marker")), (204, None));
    assert!(view.versions(&bucket, "ghost/").await.is_empty());
    let folder = format!("/{bucket}/f/");
    let r = as_user(&gw, admin, "PUT", &folder, &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    for marked in [Some("true"), None] {
        let r = as_user(&gw, admin, "DELETE", &folder, &[], b"").await;
        assert_eq!(r.status, 204, "{}", r.text());
        assert_eq!(r.header("x-amz-delete-marker"), marked);
    }
    assert_eq!(view.versions(&bucket, "f/").await.len(), 2, "one marker");
}

#[tokio::test]
async fn deleting_a_folder_that_is_not_there_leaves_no_marker_on_the_embedded_store() {
    deleting_a_folder_that_is_not_there_leaves_no_marker(Backend::Store).await;
}

#[tokio::test]
async fn deleting_a_folder_that_is_not_there_leaves_no_marker_on_rgw() {
    deleting_a_folder_that_is_not_there_leaves_no_marker(Backend::Rgw).await;
}

/// A complete's `If-Match` (HCP: "If the specified value doesn't match the Etag or the
/// specified object doesn't exist, HCP returns an error response body and does not complete the
/// multipart upload"): 200 with the Error document, nothing completed, the upload kept; a value
/// that matches completes it.
async fn a_complete_s_if_match_is_judged(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "ifmatch").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/k"), &[], b"first").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = r.header("etag").expect("an ETag").to_string();
    for (key, asked) in [("k", "\"0123\""), ("absent", etag.as_str())] {
        let (upload, parts) = upload_parts(&s3, &bucket, key, &[5]).await;
        let part = parts[0].e_tag().unwrap();
        let doc = format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{part}</ETag></Part></CompleteMultipartUpload>"
        );
        let target = format!("/{bucket}/{key}?uploadId={upload}");
        let r = as_user(
            &gw,
            admin,
            "POST",
            &target,
            &[("if-match", asked)],
            doc.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{key}: {}", r.text());
        assert!(
            r.text().contains("<Code>PreconditionFailed</Code>"),
            "{key}: {}",
            r.text()
        );
        let uploads = s3.list_multipart_uploads().bucket(&bucket).send().await;
        let uploads = uploads.unwrap();
        assert!(
            uploads.uploads().iter().any(|u| u.key() == Some(key)),
            "{key}: the upload ended"
        );
        if key == "k" {
            assert_eq!(object_bytes(&s3, &bucket, "k").await, b"first");
            // The ETag the object has: completed.
            let matching = [("if-match", etag.as_str())];
            let r = as_user(&gw, admin, "POST", &target, &matching, doc.as_bytes()).await;
            assert_eq!(r.status, 200, "{}", r.text());
            assert!(
                r.text().contains("CompleteMultipartUploadResult"),
                "{}",
                r.text()
            );
            assert_eq!(object_bytes(&s3, &bucket, "k").await.len(), 5);
        } else {
            let head = s3.head_object().bucket(&bucket).key("absent").send().await;
            assert!(head.is_err(), "the absent object was made");
        }
    }
}

#[tokio::test]
async fn a_complete_s_if_match_is_judged_on_the_embedded_store() {
    a_complete_s_if_match_is_judged(Backend::Store).await;
}

#[tokio::test]
async fn a_complete_s_if_match_is_judged_on_rgw() {
    a_complete_s_if_match_is_judged(Backend::Rgw).await;
}

/// A form upload's answer names the new version while the bucket's versioning is enabled, as
/// HCP's POST answer does, and none where it is not.
#[tokio::test]
async fn a_form_upload_names_its_version_where_versioning_is_enabled() {
    let gw = start(Backend::Store).await.unwrap();
    let s3 = gw.client();
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let plain = new_bucket(&s3, "dropbox-plain").await;
    let r = common::raw::post_form(&addr, &plain, "k").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-amz-version-id"), None);
    let versioned = new_bucket(&s3, "dropbox-versioned").await;
    set_versioning(
        &s3,
        &versioned,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    let r = common::raw::post_form(&addr, &versioned, "k").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let named = r.header("x-amz-version-id").expect("the version named");
    let listed = s3.list_object_versions().bucket(&versioned).send().await;
    let listed = listed.unwrap();
    assert_eq!(listed.versions()[0].version_id(), Some(named));
}

/// A form from a browser on another origin: its answer carries the bucket's CORS headers (a
/// form POST is a CORS "simple request"; the browser reads nothing without them), a refusal's
/// too; the digests a form claims of its file (`Content-MD5`, `x-amz-checksum-*` fields) are
/// verified before anything is stored (400 BadDigest or InvalidDigest); and a name the form
/// may not write is refused before its file is read (a stalled file is answered at once).
async fn forms_from_a_browser(backend: Backend) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Some(gw) = start_with_tenant(backend, "folders = true", "").await else {
        return;
    };
    let s3 = gw.client();
    let view = common::view::BackendView::of(&gw);
    let bucket = new_bucket(&s3, "forms-browser").await;
    set_cors(&s3, &bucket, "http://app.example", &["POST"]).await;
    let (ak, sk) = keys(USER, PASSWORD);
    let addr = gw.addr();
    let form = |fields: &[(&str, &str)], file: &[u8]| {
        common::raw::signed_form_body((&ak, &sk), &bucket, (fields, &[]), file)
    };
    let post = |origin: &'static str, body: Vec<u8>| {
        let headers = vec![
            ("host".to_string(), addr.clone()),
            (
                "content-type".to_string(),
                "multipart/form-data; boundary=b".to_string(),
            ),
            ("content-length".to_string(), body.len().to_string()),
            ("origin".to_string(), origin.to_string()),
        ];
        let target = format!("/{bucket}");
        let addr = addr.clone();
        async move { common::raw::send(&addr, "POST", target.as_bytes(), &headers, vec![body]).await }
    };
    let allowed = Some("http://app.example");
    let r = post("http://app.example", form(&[("key", "k")], b"file")).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), allowed);
    // (Manual: Allow-Methods and Allow-Headers are "Only returned for the OPTIONS request,
    // not for the preflighted API call"; so is Max-Age.)
    for preflight_only in [
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
    ] {
        assert_eq!(r.header(preflight_only), None, "{preflight_only}");
    }
    let r = post("http://elsewhere.example", form(&[("key", "k2")], b"file")).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), None);
    // A form its policy refuses (signed for another bucket) costs the backend nothing.
    let other = new_bucket(&s3, "forms-other").await;
    let body = form(&[("key", "k3")], b"file");
    let headers = vec![
        ("host".to_string(), addr.clone()),
        (
            "content-type".to_string(),
            "multipart/form-data; boundary=b".to_string(),
        ),
        ("content-length".to_string(), body.len().to_string()),
        ("origin".to_string(), "http://app.example".to_string()),
    ];
    let before = gw.backend_requests();
    let target = format!("/{other}");
    let r = common::raw::send(&addr, "POST", target.as_bytes(), &headers, vec![body]).await;
    r.assert_hcp_error(400, "InvalidPolicyDocument");
    assert_eq!(
        gw.backend_requests(),
        before,
        "nothing asked of the backend"
    );
    // A form to a name no bucket has (its policy signed for that name) is refused before the
    // backend is asked anything of it, its CORS rules among them.
    let body = common::raw::signed_form_body((&ak, &sk), "..", (&[("key", "k4")], &[]), b"file");
    let mut dotted = headers.clone();
    dotted[2].1 = body.len().to_string();
    let r = common::raw::send(&addr, "POST", b"/%2E%2E", &dotted, vec![body]).await;
    r.assert_hcp_error(400, "InvalidBucketName");
    assert_eq!(
        gw.backend_requests(),
        before,
        "nothing asked of the backend"
    );
    // Digests claimed of the file.
    let md5 = content_md5(b"file");
    let r = post(
        "http://app.example",
        form(&[("key", "md5"), ("Content-MD5", &md5)], b"file"),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = post(
        "http://app.example",
        form(&[("key", "bad"), ("Content-MD5", &md5)], b"other"),
    )
    .await;
    r.assert_hcp_error(400, "BadDigest");
    assert_eq!(r.header("access-control-allow-origin"), allowed);
    let r = post(
        "http://app.example",
        form(&[("key", "bad"), ("Content-MD5", "no")], b"file"),
    )
    .await;
    r.assert_hcp_error(400, "InvalidDigest");
    // (The CRC32 of "file" is 8c9f3610: jJ82EA==.)
    let crc = [("key", "bad"), ("x-amz-checksum-crc32", "AAAAAA==")];
    let r = post("http://app.example", form(&crc, b"file")).await;
    r.assert_hcp_error(400, "BadDigest");
    let crc = [("key", "crc"), ("x-amz-checksum-crc32", "jJ82EA==")];
    let r = post("http://app.example", form(&crc, b"file")).await;
    assert_eq!(r.status, 204, "{}", r.text());
    // A digest field S3's forms do not define is refused, never taken for one verified.
    let sha = "0000000000000000000000000000000000000000000000000000000000000000";
    let r = post(
        "http://app.example",
        form(&[("key", "sha"), ("x-amz-content-sha256", sha)], b"file"),
    )
    .await;
    r.assert_hcp_error(501, "NotImplemented");
    assert_eq!(view.keys(&bucket).await, ["crc", "k", "k2", "md5"]);
    // A name an object's folder cannot take, refused before the file: the answer comes while
    // the file is still being sent.
    let body = form(&[("key", "k/inside")], &vec![b'x'; 64 * 1024]);
    let head = format!(
        "POST /{bucket} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: multipart/form-data; boundary=b\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer));
    let n = read.await.expect("answered before the file ended").unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 409"), "{text}");
    assert!(text.contains("<Code>OperationAborted</Code>"), "{text}");
    assert_eq!(view.keys(&bucket).await, ["crc", "k", "k2", "md5"]);
}

#[tokio::test]
async fn forms_from_a_browser_on_the_store() {
    forms_from_a_browser(Backend::Store).await;
}

#[tokio::test]
async fn forms_from_a_browser_on_rgw() {
    forms_from_a_browser(Backend::Rgw).await;
}

/// A form's `x-amz-date` through a real server: one that is no date is 400 InvalidArgument, one
/// at or past its policy's expiration 403 AccessDenied (HCP: "if the field x-amz-date contains
/// an expired date, the policy is considered expired") — each HCP's error document, nothing
/// asked of the backend, nothing stored; a form dated before its expiration is stored.
#[tokio::test]
async fn a_form_s_date_is_judged_against_its_policy() {
    use hcp_s3_gateway::request::authenticate::format_amz_date;
    let gw = start(Backend::Store).await.unwrap();
    let bucket = gw.with_bucket("dated").await;
    let (ak, sk) = keys(USER, PASSWORD);
    let now = std::time::SystemTime::now();
    let at = |hours: u64| format_amz_date(now + std::time::Duration::from_secs(hours * 3600));
    // (An ISO 8601 expiration from SigV4's basic form: 20261206T093000Z.)
    let expiring = |basic: &str| {
        format!(
            "{}-{}-{}T{}:{}:{}.000Z",
            &basic[..4],
            &basic[4..6],
            &basic[6..8],
            &basic[9..11],
            &basic[11..13],
            &basic[13..15]
        )
    };
    let post = |key: &'static str, amz_date: String, expiration: String| {
        let (addr, bucket, ak, sk) = (gw.addr(), bucket.clone(), ak.clone(), sk.clone());
        async move {
            let fields = [("key", key)];
            let dated = (amz_date.as_str(), expiration.as_str());
            let body = common::raw::signed_form_body_dated(
                (&ak, &sk),
                &bucket,
                (&fields, &[]),
                b"dated",
                dated,
            );
            common::raw::post_multipart(&addr, &bucket, &body).await
        }
    };
    let before = gw.backend_requests();
    let garbage = format!("{}garbage!", &at(0)[..8]);
    let r = post("garbled", garbage, expiring(&at(2))).await;
    r.assert_hcp_error(400, "InvalidArgument");
    let r = post("late", at(3), expiring(&at(2))).await;
    r.assert_hcp_error(403, "AccessDenied");
    assert_eq!(
        gw.backend_requests(),
        before,
        "nothing asked of the backend"
    );
    let r = post("in-time", at(1), expiring(&at(2))).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let view = common::view::BackendView::of(&gw);
    assert_eq!(view.keys(&bucket).await, ["in-time"]);
}

/// A folder's ignored body is held to a PUT's largest size all the same: one sent chunked (no
/// length to judge first) past `limits.max_put_bytes` is 400 EntityTooLarge, HCP's error
/// document, and no folder is made.
#[tokio::test]
async fn a_folder_s_body_is_held_to_a_put_s_size() {
    let limits = "[limits]\nmax_put_bytes = 1024\n";
    let gw = start_with_tenant(Backend::Store, "folders = true", limits)
        .await
        .unwrap();
    let bucket = gw.with_bucket("folder-size").await;
    let (ak, sk) = (hcp_access_key(USER), hcp_secret_key(PASSWORD));
    let headers: Vec<(String, String)> = [
        ("authorization", format!("HCP {ak}:{sk}")),
        (
            "date",
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        ),
        ("transfer-encoding", "chunked".to_string()),
        ("content-length", "0".to_string()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    let chunk = [b"800\r\n".as_slice(), &[b'x'; 2048], b"\r\n0\r\n\r\n"].concat();
    let target = format!("/{bucket}/big/");
    let r = common::raw::send(&gw.addr(), "PUT", target.as_bytes(), &headers, vec![chunk]).await;
    r.assert_hcp_error(400, "EntityTooLarge");
    let view = common::view::BackendView::of(&gw);
    assert!(view.keys(&bucket).await.is_empty(), "no folder made");
}

/// HCP displays an object name's "non-ASCII, nonprintable characters" percent-encoded: an
/// error naming such a key is a well-formed document (before, the control character went
/// into the XML raw — no XML 1.0 document can hold it — and the SDK read no code).
#[tokio::test]
async fn names_with_control_characters_are_displayed_percent_encoded() {
    let Some((gw, s3, bucket)) = start_with_bucket(Backend::Store, "ctl").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    // (No byte a document of XML 1.0 cannot hold, but the line ends between elements.)
    let shown_as_text = |r: &common::raw::RawResponse| {
        let raw = r.body.iter().any(|b| *b < 0x20 && *b != b'\n');
        assert!(!raw, "{:?}", r.text());
    };
    let put = |key: &'static str| {
        let put = s3.put_object().bucket(&bucket).key(key);
        async move {
            put.body(ByteStream::from_static(b"x"))
                .send()
                .await
                .unwrap();
        }
    };
    let target = format!("/{bucket}/a%01b%0D");
    let r = as_user(&gw, admin, "GET", &target, &[], b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    assert!(r.text().contains("<Key>a%01b%0D</Key>"), "{}", r.text());
    shown_as_text(&r);
    let e = s3.get_object().bucket(&bucket).key("a\u{1}b").send().await;
    assert_eq!(sdk_error(&e.unwrap_err()), (404, "NoSuchKey".to_string()));
    // So in a listing of such a name, and a multi-object delete's answer naming it.
    put("a\u{1}b").await;
    let r = as_user(&gw, admin, "GET", &format!("/{bucket}"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<Key>a%01b</Key>"), "{}", r.text());
    shown_as_text(&r);
    let doc = b"<Delete><Object><Key>a&#x1;b</Key></Object></Delete>";
    let md5 = content_md5(doc);
    let target = format!("/{bucket}?delete");
    let r = as_user(&gw, admin, "POST", &target, &[("content-md5", &md5)], doc).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<Key>a%01b</Key>"), "{}", r.text());
    shown_as_text(&r);
    let gone = s3.head_object().bucket(&bucket).key("a\u{1}b").send().await;
    assert!(gone.is_err());
    // A name given back as displayed is the name: paging by the last key shown lists the
    // next (`a\x02` sorts before `a%01`, which a marker read literally would skip).
    for key in ["a\u{1}", "a\u{2}"] {
        put(key).await;
    }
    let first = format!("/{bucket}?max-keys=1");
    let r = as_user(&gw, admin, "GET", &first, &[], b"").await;
    assert!(r.text().contains("<Key>a%01</Key>"), "{}", r.text());
    let next = format!("{first}&marker=a%2501");
    let r = as_user(&gw, admin, "GET", &next, &[], b"").await;
    assert!(r.text().contains("<Key>a%02</Key>"), "{}", r.text());
    assert!(r.text().contains("<Marker>a%01</Marker>"), "{}", r.text());
    // Where the listing encodes its names as URLs nothing was displayed: a marker is the name
    // it says (a key written `c%01` is not `c\x01`, which would list it again, for ever).
    for key in ["c%01", "cb"] {
        put(key).await;
    }
    let first = format!("/{bucket}?prefix=c&max-keys=1&encoding-type=url");
    let r = as_user(&gw, admin, "GET", &first, &[], b"").await;
    assert!(r.text().contains("<Key>c%2501</Key>"), "{}", r.text());
    let next = format!("{first}&marker=c%2501");
    let r = as_user(&gw, admin, "GET", &next, &[], b"").await;
    assert!(r.text().contains("<Key>cb</Key>"), "{}", r.text());
    // Nor does a control character a client sent come back raw: a version listing's echo of
    // its marker, an error's message naming a parameter.
    let versions = format!("/{bucket}?versions&key-marker=a&version-id-marker=%01");
    let r = as_user(&gw, admin, "GET", &versions, &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    shown_as_text(&r);
    let twice = format!("/{bucket}?a%01=1&a%01=2");
    let r = as_user(&gw, admin, "GET", &twice, &[], b"").await;
    r.assert_hcp_error(400, "InvalidArgument");
    shown_as_text(&r);
}

/// A parts listing names HCP's markers on every page (manual, ListParts: `PartNumberMarker` 0
/// where none was asked, `NextPartNumberMarker` the last part listed or 0) and its
/// `StorageClass`, always `STANDARD`.
async fn parts_listings_name_their_markers(backend: Backend) {
    let Some(gw) = start_with(backend, "", "").await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "parts-markers").await;
    let (ak, sk) = keys(USER, PASSWORD);
    let addr = gw.addr();
    let (id, _) = upload_parts(&s3, &bucket, "two", &[5 << 20, 3]).await;
    let (none, _) = upload_parts(&s3, &bucket, "none", &[]).await;
    for (key, upload, query, marker, next) in [
        ("two", &id, "", "0", "2"),
        ("two", &id, "&part-number-marker=1", "1", "2"),
        ("two", &id, "&part-number-marker=2", "2", "0"),
        ("none", &none, "", "0", "0"),
    ] {
        let target = format!("/{bucket}/{key}?uploadId={upload}{query}");
        let r = common::raw::send_signed(&addr, (&ak, &sk), "GET", &target, b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        for element in [
            format!("<PartNumberMarker>{marker}</PartNumberMarker>"),
            format!("<NextPartNumberMarker>{next}</NextPartNumberMarker>"),
            "<StorageClass>STANDARD</StorageClass>".to_string(),
        ] {
            assert!(text.contains(&element), "{target}: {element} in {text}");
        }
        // In HCP's order (the manual's example), the elements the gateway adds too: the
        // upload's parties after its id, the echoes before the parts.
        let at = |element: &str| text.find(element).unwrap_or_else(|| panic!("{element}"));
        let order = [
            "<Bucket>",
            "<Key>",
            "<UploadId>",
            "<Initiator>",
            "<Owner>",
            "<StorageClass>",
            "<PartNumberMarker>",
            "<NextPartNumberMarker>",
            "<MaxParts>",
            "<IsTruncated>",
        ];
        let places: Vec<usize> = order.iter().map(|e| at(e)).collect();
        assert!(places.is_sorted(), "{order:?} at {places:?}: {text}");
        assert!(
            text.find("<Part>").is_none_or(|p| p > at("<IsTruncated>")),
            "{text}"
        );
    }
}

#[tokio::test]
async fn parts_listings_name_their_markers_on_the_embedded_store() {
    parts_listings_name_their_markers(Backend::Store).await;
}

#[tokio::test]
async fn parts_listings_name_their_markers_on_rgw() {
    parts_listings_name_their_markers(Backend::Rgw).await;
}

/// A name that begins with U+FEFF (a byte-order mark, which XML readers skip where their input
/// begins) is listed whole, plain and indented, in HCP's order.
async fn a_name_beginning_with_a_byte_order_mark_is_listed_whole(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "marks").await else {
        return;
    };
    let key = "\u{FEFF}x&y";
    let put = s3.put_object().bucket(&bucket).key(key);
    put.body(b"1".to_vec().into()).send().await.unwrap();
    let admin = (USER, PASSWORD);
    for pretty in [&[][..], &[("x-hcp-pretty-print", "true")][..]] {
        let list = format!("/{bucket}?list-type=2&prefix=%EF%BB%BF");
        let r = as_user(&gw, admin, "GET", &list, pretty, b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.text().contains("<Key>\u{FEFF}x&amp;y</Key>"),
            "{}",
            r.text()
        );
        assert!(
            r.text().contains("<Prefix>\u{FEFF}</Prefix>"),
            "{}",
            r.text()
        );
    }
}

#[tokio::test]
async fn a_name_beginning_with_a_byte_order_mark_is_listed_whole_on_the_embedded_store() {
    a_name_beginning_with_a_byte_order_mark_is_listed_whole(Backend::Store).await;
}

#[tokio::test]
async fn a_name_beginning_with_a_byte_order_mark_is_listed_whole_on_rgw() {
    a_name_beginning_with_a_byte_order_mark_is_listed_whole(Backend::Rgw).await;
}

/// A parts listing asked with `encoding-type=url` names its key URL-encoded (manual, "Listing
/// the parts of a multipart upload": the parameter asks "to encode the keys in the response");
/// without it, the key as it is, its nonprintable characters shown.
async fn a_parts_listing_encodes_its_key_where_asked(backend: Backend) {
    let Some(gw) = start_with(backend, "", "").await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "parts-encoded").await;
    let (ak, sk) = keys(USER, PASSWORD);
    let key = "a b+c\u{1}d%e&/f";
    let (id, _) = upload_parts(&s3, &bucket, key, &[3]).await;
    for (query, shown) in [
        ("&encoding-type=url", "a%20b%2Bc%01d%25e%26/f"),
        ("", "a b+c%01d%e&amp;/f"),
    ] {
        let target = format!("/{bucket}/a%20b%2Bc%01d%25e%26/f?uploadId={id}{query}");
        let r = common::raw::send_signed(&gw.addr(), (&ak, &sk), "GET", &target, b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let key = format!("<Key>{shown}</Key>");
        assert!(r.text().contains(&key), "{target}: {key} in {}", r.text());
    }
}

#[tokio::test]
async fn a_parts_listing_encodes_its_key_where_asked_on_the_embedded_store() {
    a_parts_listing_encodes_its_key_where_asked(Backend::Store).await;
}

#[tokio::test]
async fn a_parts_listing_encodes_its_key_where_asked_on_rgw() {
    a_parts_listing_encodes_its_key_where_asked(Backend::Rgw).await;
}

#[tokio::test]
async fn a_parts_listing_encodes_its_key_where_asked_on_s3s_fs() {
    a_parts_listing_encodes_its_key_where_asked(Backend::S3sFs).await;
}

/// A complete names the object it made as HCP's document does (manual, "Completing a multipart
/// upload": `<Location>`, "the complete URL for the object", then `<Bucket>`, `<Key>`, `<ETag>`),
/// whether the backend named one (its own URL, replaced) or not (s3s-fs).
async fn a_complete_names_its_object_s_location(backend: Backend) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "located-mpu").await else {
        return;
    };
    let key = "dir/made";
    let (id, parts) = upload_parts(&s3, &bucket, key, &[5]).await;
    let done = complete_with(&s3, (&bucket, key, &id), parts)
        .await
        .unwrap();
    let location = format!("http://{}/hs3/{bucket}/{key}", gw.addr());
    assert_eq!(done.location(), Some(location.as_str()));
    assert_eq!(done.bucket(), Some(bucket.as_str()));
    assert_eq!(done.key(), Some(key));
    assert!(
        done.e_tag().is_some_and(|e| e.ends_with("-1\"")),
        "{done:?}"
    );
    // In HCP's order, Location first, once.
    let (id, parts) = upload_parts(&s3, &bucket, key, &[5]).await;
    let etag = parts[0].e_tag().unwrap();
    let doc = format!("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>");
    let target = format!("/{bucket}/{key}?uploadId={id}");
    let r = as_user(&gw, (USER, PASSWORD), "POST", &target, &[], doc.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let expected = format!("Result xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>{location}</Location><Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>");
    assert!(r.text().contains(&expected), "{}", r.text());
    assert_eq!(r.text().matches("<Location>").count(), 1, "{}", r.text());
}

#[tokio::test]
async fn a_complete_names_its_object_s_location_on_the_embedded_store() {
    a_complete_names_its_object_s_location(Backend::Store).await;
}

#[tokio::test]
async fn a_complete_names_its_object_s_location_on_rgw() {
    a_complete_names_its_object_s_location(Backend::Rgw).await;
}

#[tokio::test]
async fn a_complete_names_its_object_s_location_on_moto() {
    a_complete_names_its_object_s_location(Backend::Moto).await;
}

#[tokio::test]
async fn a_complete_names_its_object_s_location_on_s3s_fs() {
    a_complete_names_its_object_s_location(Backend::S3sFs).await;
}

/// A form's answer names its object as HCP's example does (manual, POST object: `<Location>…/
/// acctg%2FChecklist.txt</Location>`), through HCP's `hs3` identifier, the key's slashes
/// encoded, in the header and the `PostResponse` alike; the `Key` as it is.
#[tokio::test]
async fn a_form_s_answer_names_its_object_as_hcp_does() {
    let gw = start(Backend::Store).await.unwrap();
    let bucket = gw.with_bucket("located").await;
    let (ak, sk) = keys(USER, PASSWORD);
    let addr = gw.addr();
    let fields = [
        ("key", "acctg/Checklist.txt"),
        ("success_action_status", "201"),
    ];
    let form = common::raw::signed_form_body((&ak, &sk), &bucket, (&fields, &[]), b"f");
    let r = common::raw::post_multipart(&addr, &bucket, &form).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").unwrap_or_default().to_string();
    let named = format!("http://{addr}/hs3/{bucket}/acctg%2FChecklist.txt");
    assert_eq!(location, named);
    let text = r.text();
    assert!(
        text.contains(&format!("<Location>{location}</Location>")),
        "{text}"
    );
    assert!(text.contains("<Key>acctg/Checklist.txt</Key>"), "{text}");
    assert!(!text.contains("\n  <Key>"), "{text}");
    // A name XML cannot carry is shown as HCP shows it (percent-encoded), and the document is
    // indented where `x-hcp-pretty-print` asks, as every other the gateway writes.
    let fields = [("key", "a\u{1}b"), ("success_action_status", "201")];
    let form = common::raw::signed_form_body((&ak, &sk), &bucket, (&fields, &[]), b"f");
    let pretty = [("x-hcp-pretty-print", "true")];
    let r = common::raw::post_multipart_with(&addr, &bucket, &form, &pretty).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let text = r.text();
    assert!(text.contains("\n  <Key>a%01b</Key>"), "{text}");
    assert!(!text.contains('\u{1}'), "{text}");
    // A form's `Expires` is the answer's ("If present, HCP returns the value in the response
    // header"), in place of HCP's own.
    let until = "Wed, 01 Jan 2031 00:00:00 GMT";
    let fields = [("key", "expiring"), ("Expires", until)];
    let form = common::raw::signed_form_body((&ak, &sk), &bucket, (&fields, &[]), b"f");
    let r = common::raw::post_multipart(&addr, &bucket, &form).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("expires"), Some(until));
}

/// A copy whose source is not there is 404 for its source: its error document does not name
/// the copy's target as the bucket or key that is missing.
#[tokio::test]
async fn a_copy_s_missing_source_is_not_named_as_its_target() {
    let gw = start(Backend::Store).await.unwrap();
    let bucket = gw.with_bucket("sourceless").await;
    let target = format!("/{bucket}/target-name");
    let source = format!("/{bucket}/missing-source");
    let copy = [("x-amz-copy-source", source.as_str())];
    let r = as_user(&gw, (USER, PASSWORD), "PUT", &target, &copy, b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    assert!(!r.text().contains("target-name"), "{}", r.text());
}

/// A header the gateway judges before it forwards is judged as it is sent: a part copy's range
/// or a storage class that is not text (an en dash, bytes past ASCII) is 400 InvalidArgument,
/// never read as absent — which copied the whole source as the part, or sent the class on
/// unjudged; a copy source naming a tab or a run of spaces — which a SigV4 signature covers as
/// one space, so not the source signed — is 400, nothing stored.
#[tokio::test]
async fn judged_headers_are_judged_as_sent() {
    let Some((gw, s3, bucket)) = start_with_bucket(Backend::Store, "judged").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let source = format!("/{bucket}/q1%09report");
    let r = as_user(&gw, admin, "PUT", &source, &[], b"0123456789").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (id, _) = upload_parts(&s3, &bucket, "parts", &[]).await;
    let part = format!("/{bucket}/parts?partNumber=1&uploadId={id}");
    let dashed = [
        ("x-amz-copy-source", source.as_str()),
        ("x-amz-copy-source-range", "bytes=0\u{2013}4"),
    ];
    let r = as_user(&gw, admin, "PUT", &part, &dashed, b"").await;
    r.assert_hcp_error(400, "InvalidArgument");
    let parts = s3
        .list_parts()
        .bucket(&bucket)
        .key("parts")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert!(parts.parts().is_empty(), "{parts:?}");
    let classed = format!("/{bucket}/classed");
    let class = [("x-amz-storage-class", "STANDARD\u{2013}IA")];
    let r = as_user(&gw, admin, "PUT", &classed, &class, b"data").await;
    r.assert_hcp_error(400, "InvalidArgument");
    let tabbed = format!("/{bucket}/q1\treport");
    let copied = format!("/{bucket}/copied");
    for named in [tabbed.as_str(), &format!("/{bucket}/q1  report")] {
        let r = as_user(
            &gw,
            admin,
            "PUT",
            &copied,
            &[("x-amz-copy-source", named)],
            b"",
        )
        .await;
        r.assert_hcp_error(400, "InvalidArgument");
    }
    for key in ["classed", "copied"] {
        let r = as_user(&gw, admin, "HEAD", &format!("/{bucket}/{key}"), &[], b"").await;
        assert_eq!(r.status, 404, "{key}");
    }
}

/// HCP's NoSuchKey names its key and NoSuchBucket its bucket (seed 002's Error document) — the
/// gateway's own answers too: a GET of a folder, a folder in a bucket that is not there.
#[tokio::test]
async fn the_gateway_s_own_not_found_answers_name_what_is_not_found() {
    let Some(gw) = start_with_tenant(Backend::Store, "folders = true", "").await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "named").await;
    let admin = (USER, PASSWORD);
    let r = as_user(
        &gw,
        admin,
        "PUT",
        &format!("/{bucket}/dir/"),
        &[("content-length", "0")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, admin, "GET", &format!("/{bucket}/dir/"), &[], b"").await;
    r.assert_hcp_error(404, "NoSuchKey");
    assert!(r.text().contains("<Key>dir/</Key>"), "{}", r.text());
    let missing = unique_bucket("nosuch");
    for method in ["GET", "PUT"] {
        let r = as_user(&gw, admin, method, &format!("/{missing}/dir/"), &[], b"").await;
        r.assert_hcp_error(404, "NoSuchBucket");
        let named = format!("<BucketName>{missing}</BucketName>");
        assert!(r.text().contains(&named), "{method}: {}", r.text());
    }
}

/// `multipart/form-data` is an object's type like any other: a multipart upload of such an
/// object starts, completes and keeps the type, and a multi-object delete sent with it is one —
/// on the embedded backends, whose S3 server (s3s) read any POST of that type as a browser
/// form (400 MalformedPOSTRequest).
async fn a_form_data_type_is_an_object_s_type(backend: Backend) {
    // (`+xml`: s3s's media type parser reads it as form-data as well.)
    for form in [
        "multipart/form-data; boundary=xyz",
        "multipart/form-data+xml; boundary=xyz",
        "Multipart/Form-Data+json;boundary=xyz",
    ] {
        a_type_is_an_object_s_type(backend, form).await;
    }
}

async fn a_type_is_an_object_s_type(backend: Backend, form: &str) {
    let Some((gw, s3, bucket)) = start_with_bucket(backend, "formtype").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let at = format!("/{bucket}/big.bin");
    let r = as_user(
        &gw,
        admin,
        "POST",
        &format!("{at}?uploads"),
        &[("content-type", form)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let id = text
        .split("<UploadId>")
        .nth(1)
        .and_then(|r| r.split("</UploadId>").next());
    let id = id.expect("an upload id").to_string();
    let part = format!("{at}?partNumber=1&uploadId={id}");
    let r = as_user(&gw, admin, "PUT", &part, &[], b"part one").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = r.header("etag").unwrap().to_string();
    let doc = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let complete = format!("{at}?uploadId={id}");
    let r = as_user(
        &gw,
        admin,
        "POST",
        &complete,
        &[("content-type", form)],
        doc.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("<Error>"), "{}", r.text());
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("big.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some(form));
    let r = multi_delete_typed(&gw, admin, &bucket, form).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("<Deleted><Key>big.bin</Key>"),
        "{}",
        r.text()
    );
}

async fn multi_delete_typed(
    gw: &TestGateway,
    who: (&str, &str),
    bucket: &str,
    content_type: &str,
) -> common::raw::RawResponse {
    let doc = "<Delete><Object><Key>big.bin</Key></Object></Delete>";
    let md5 = content_md5(doc.as_bytes());
    let headers = [
        ("content-md5", md5.as_str()),
        ("content-type", content_type),
    ];
    as_user(
        gw,
        who,
        "POST",
        &format!("/{bucket}?delete"),
        &headers,
        doc.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn a_form_data_type_is_an_object_s_type_on_the_embedded_store() {
    a_form_data_type_is_an_object_s_type(Backend::Store).await;
}

#[tokio::test]
async fn a_form_data_type_is_an_object_s_type_on_s3s_fs() {
    a_form_data_type_is_an_object_s_type(Backend::S3sFs).await;
}

#[tokio::test]
async fn a_form_data_type_is_an_object_s_type_on_rgw() {
    a_form_data_type_is_an_object_s_type(Backend::Rgw).await;
}

/// Seed 002: "If the request includes invalid query parameters, those parameters are ignored"
/// — a `fetch-owner` that is not `true` asks for no owners (the embedded store refused `TRUE`,
/// `1` or a bare name, 400).
async fn fetch_owner_takes_only_true(backend: Backend) {
    let Some((gw, _s3, bucket)) = start_with_bucket(backend, "fetchowner").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/k"), &[], b"x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    for value in ["=TRUE", "=1", "", "=false"] {
        let target = format!("/{bucket}?list-type=2&fetch-owner{value}");
        let r = as_user(&gw, admin, "GET", &target, &[], b"").await;
        assert_eq!(r.status, 200, "{value}: {}", r.text());
        assert!(r.text().contains("<Key>k</Key>"), "{value}: {}", r.text());
        assert!(!r.text().contains("<Owner>"), "{value}: {}", r.text());
    }
    let target = format!("/{bucket}?list-type=2&fetch-owner=true");
    let r = as_user(&gw, admin, "GET", &target, &[], b"").await;
    assert!(r.text().contains("<Owner>"), "{}", r.text());
}

#[tokio::test]
async fn fetch_owner_takes_only_true_on_the_embedded_store() {
    fetch_owner_takes_only_true(Backend::Store).await;
}

#[tokio::test]
async fn fetch_owner_takes_only_true_on_rgw() {
    fetch_owner_takes_only_true(Backend::Rgw).await;
}

//! The gateway's own store as the embedded backend (`engine = "store"`), through the gateway
//! with a real client: what s3s-fs got wrong (issue "The embedded default is a real S3 store")
//! answered as S3 answers it, and objects surviving a restart.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::*;

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

/// A new multipart upload's id.
async fn start_upload(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let created = s3.create_multipart_upload().bucket(bucket).key(key);
    let created = created.send().await.unwrap();
    created.upload_id().expect("an upload id").to_string()
}

/// The test configuration with its backend served by the store in `data`.
fn store_config(data: &std::path::Path) -> String {
    format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"local\"\nengine = \"store\"\ndata_dir = {:?}\n",
        base_config(""),
        data.display().to_string()
    )
}

/// A gateway on a store of its own (kept in the returned directory).
async fn on_the_store() -> (TestGateway, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let text = store_config(data.path());
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Store).await;
    (gw, data)
}

/// An upload of parts of these sizes, as `upload_parts` makes them, and the list that
/// completes it.
async fn uploaded(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    sizes: &[usize],
) -> (String, CompletedMultipartUpload) {
    let (id, parts) = upload_parts(s3, bucket, key, sizes).await;
    let list = CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    (id, list)
}

/// A gateway on the store in `data` again, once the stopped one has let go of its database
/// (when its last connection has ended).
async fn restart(data: &std::path::Path, text: &str) -> TestGateway {
    let db = data.join("store").join("metadata.redb");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while redb::Database::create(&db).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the store keeps its database"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    start_text(text, tempfile::tempdir().unwrap(), Backend::Store).await
}

#[tokio::test]
async fn listings_folders_and_long_keys_are_s3_s() {
    let gw = start(Backend::Store).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    // Longer than the file names s3s-fs made of keys (it failed past ~160 bytes).
    let long = "k".repeat(1000);
    for key in ["a", "dir/", "dir/x", "dir/y/z", "b", long.as_str()] {
        put(&s3, &bucket, key, key.as_bytes()).await;
    }
    // A folder key reads back; a long key too.
    assert_eq!(object_bytes(&s3, &bucket, "dir/").await, b"dir/");
    assert_eq!(object_bytes(&s3, &bucket, &long).await, long.as_bytes());
    // An empty delimiter is none: every key, with its ETag.
    let all = s3
        .list_objects_v2()
        .bucket(&bucket)
        .delimiter("")
        .send()
        .await
        .unwrap();
    assert_eq!(all.contents().len(), 6, "{all:?}");
    assert!(all
        .contents()
        .iter()
        .all(|o| o.e_tag().is_some_and(|e| e.len() == 34)));
    let v1 = s3
        .list_objects()
        .bucket(&bucket)
        .delimiter("")
        .send()
        .await
        .unwrap();
    assert_eq!(v1.contents().len(), 6, "{v1:?}");
    // With "/": the folder rolled up, and listed under its own prefix.
    let top = s3
        .list_objects_v2()
        .bucket(&bucket)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = top
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["dir/"]);
    let inside = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("dir/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = inside.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["dir/", "dir/x"]);
    // Page by page with continuation tokens: every key once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&bucket)
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    // An object stored without a type is application/octet-stream.
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("a")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/octet-stream"));
}

#[tokio::test]
async fn objects_uploads_and_buckets_behave_as_s3_and_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let text = store_config(data.path());
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Store).await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    // GET in a bucket that does not exist: NoSuchBucket.
    let e = s3
        .get_object()
        .bucket("no-such-bucket-here")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (404, "NoSuchBucket".into()));
    // Multipart: S3's ETag, the joined body.
    let (first, second) = (pattern(5 * 1024 * 1024, 1), pattern(1024, 2));
    let up = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("mp")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut parts = Vec::new();
    for (n, body) in [(1, &first), (2, &second)] {
        let p = s3
            .upload_part()
            .bucket(&bucket)
            .key("mp")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    let listed = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.uploads().len(), 1);
    let done = s3
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(done.e_tag().unwrap().ends_with("-2\""), "{done:?}");
    // A retried complete (its first answer lost) is answered as the first was.
    let again = s3
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.e_tag(), done.e_tag());
    let whole = [first.clone(), second.clone()].concat();
    assert_eq!(object_bytes(&s3, &bucket, "mp").await, whole);
    // A copy keeps the metadata; a range reads a slice.
    s3.copy_object()
        .bucket(&bucket)
        .key("copy")
        .copy_source(format!("{bucket}/mp"))
        .send()
        .await
        .unwrap();
    let range = s3
        .get_object()
        .bucket(&bucket)
        .key("copy")
        .range("bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(bytes_of(range).await, whole[10..20]);
    // A non-empty bucket stays.
    let e = s3.delete_bucket().bucket(&bucket).send().await.unwrap_err();
    assert_eq!(sdk_error(&e).1, "BucketNotEmpty");
    // A restart on the same directory finds everything.
    gw.stop().await;
    let again = restart(data.path(), &text).await;
    let s3 = again.client();
    assert_eq!(object_bytes(&s3, &bucket, "mp").await, whole);
    assert_eq!(object_bytes(&s3, &bucket, "copy").await, whole);
}

#[tokio::test]
async fn conditions_ranges_and_url_encoded_listings_are_s3_s_or_refused() {
    use aws_sdk_s3::types::EncodingType;
    let gw = start(Backend::Store).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    for key in ["a b/1", "c+d/2", "e"] {
        put(&s3, &bucket, key, b"body").await;
    }
    put(&s3, &bucket, "empty", b"").await;
    // url encoding covers keys, prefixes and the next marker, '/' kept.
    let page = s3
        .list_objects()
        .bucket(&bucket)
        .delimiter("/")
        .max_keys(1)
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["a%20b/"]);
    assert_eq!(page.next_marker(), Some("a%20b/"));
    let next = s3
        .list_objects()
        .bucket(&bucket)
        .delimiter("/")
        .marker("a b/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = next
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["c%2Bd/"]);
    // A versions listing encodes its Prefix too (botocore decodes it).
    let versions = s3
        .list_object_versions()
        .bucket(&bucket)
        .prefix("c+d/")
        .encoding_type(EncodingType::Url);
    let versions = versions.send().await.unwrap();
    assert_eq!(versions.prefix(), Some("c%2Bd/"));
    assert_eq!(versions.versions()[0].key(), Some("c%2Bd/2"));
    // Open uploads too: a key of control characters is listed encoded.
    let odd = "up\u{1}load";
    // (Its answer names the key as XML cannot carry it, as S3's would: the SDK cannot read it.)
    let started = s3.create_multipart_upload().bucket(&bucket).key(odd);
    let _ = started.send().await;
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(uploads.uploads()[0].key(), Some("up%01load"));
    assert_eq!(uploads.encoding_type(), Some(&EncodingType::Url));
    // GET preconditions: 304 for a matching If-None-Match, 412 for a failing If-Match.
    let etag = s3
        .head_object()
        .bucket(&bucket)
        .key("e")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("e")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e).0, 304);
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("e")
        .if_match("\"0123\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (412, "PreconditionFailed".into()));
    // HCP's conditions name lists of ETags ("value"[, "value"]...): one of them is enough.
    let list = format!("\"0123\", {etag}");
    let got = s3.get_object().bucket(&bucket).key("e").if_match(&list);
    assert_eq!(got.send().await.unwrap().content_length(), Some(4));
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("e")
        .if_none_match(&list);
    assert_eq!(sdk_error(&got.send().await.unwrap_err()).0, 304);
    let copied = s3
        .copy_object()
        .bucket(&bucket)
        .key("e-listed")
        .copy_source(format!("{bucket}/e"))
        .copy_source_if_match(&list);
    copied.send().await.unwrap();
    assert_eq!(object_bytes(&s3, &bucket, "e-listed").await, b"body");
    let gone = s3.delete_object().bucket(&bucket).key("e-listed");
    gone.send().await.unwrap();
    // A range of an empty object is not satisfiable.
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("empty")
        .range("bytes=-5")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e).0, 416);
    // Conditional writes: If-Match with another ETag is 412 and changes nothing; with the
    // object's own it writes. A copy's source conditions are 412 when they fail.
    let e = s3
        .put_object()
        .bucket(&bucket)
        .key("e")
        .if_match("\"0123\"")
        .body(ByteStream::from_static(b"other"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (412, "PreconditionFailed".into()));
    assert_eq!(object_bytes(&s3, &bucket, "e").await, b"body");
    let e = s3
        .copy_object()
        .bucket(&bucket)
        .key("e2")
        .copy_source(format!("{bucket}/e"))
        .copy_source_if_match("\"0123\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (412, "PreconditionFailed".into()));
    // Every object is listed as its one version, "null".
    let versions = s3
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let listed: Vec<(&str, &str)> = versions
        .versions()
        .iter()
        .filter_map(|v| Some((v.key()?, v.version_id()?)))
        .collect();
    assert_eq!(
        listed,
        [
            ("a b/1", "null"),
            ("c+d/2", "null"),
            ("e", "null"),
            ("empty", "null")
        ]
    );
    // A delete's condition, which the store does not evaluate, is the gateway's to judge (on
    // a HEAD): never ignored — 412, nothing changes; met, the object is deleted.
    let e = s3
        .delete_object()
        .bucket(&bucket)
        .key("e")
        .if_match("\"0123\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (412, "PreconditionFailed".into()));
    assert_eq!(object_bytes(&s3, &bucket, "e").await, b"body");
    let etag = s3.head_object().bucket(&bucket).key("e").send().await;
    let etag = etag.unwrap().e_tag().unwrap().to_string();
    let delete = s3.delete_object().bucket(&bucket).key("e").if_match(etag);
    delete.send().await.unwrap();
    let gone = s3.head_object().bucket(&bucket).key("e").send().await;
    assert!(gone.is_err());
}

/// kill -9 during 100 concurrent uploads, restart on the same directory: every object is whole
/// or absent, and the listing names exactly the objects a GET finds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_store_keeps_whole_objects_or_none() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"local\"\nengine = \"store\"\ndata_dir = {:?}\n",
        base_config(""),
        data.path().display().to_string()
    );
    let mut first = common::process::Process::start(&config, tempfile::tempdir().unwrap(), &[]);
    let s3 = first.client(USER, PASSWORD);
    let bucket = new_bucket(&s3, "crash").await;
    let body = |i: usize| pattern(256 * 1024 + i * 4096, i as u64);
    let done = Arc::new(AtomicUsize::new(0));
    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (s3, bucket, done) = (s3.clone(), bucket.clone(), done.clone());
        uploads.spawn(async move {
            let sent = s3
                .put_object()
                .bucket(&bucket)
                .key(format!("k{i:03}"))
                .body(ByteStream::from(body(i)))
                .send()
                .await;
            if sent.is_ok() {
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    // Killed while uploads are in flight: some done, the rest not.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < 10 {
        assert!(std::time::Instant::now() < deadline, "no upload finished");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let acknowledged = done.load(Ordering::SeqCst);
    while uploads.join_next().await.is_some() {}
    assert!(acknowledged < 100, "every upload finished before the kill");

    let second = common::process::Process::start(&config, tempfile::tempdir().unwrap(), &[]);
    let s3 = second.client(USER, PASSWORD);
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&bucket)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        listed.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut found = Vec::new();
    for i in 0..100 {
        let key = format!("k{i:03}");
        match s3.get_object().bucket(&bucket).key(&key).send().await {
            Ok(out) => {
                assert_eq!(bytes_of(out).await, body(i), "{key} is not whole");
                found.push(key);
            }
            Err(e) => assert_eq!(sdk_error(&e).1, "NoSuchKey", "{key}"),
        }
    }
    assert_eq!(listed, found);
    eprintln!(
        "killed with {acknowledged} uploads acknowledged; {} whole after restart, the rest absent",
        found.len()
    );
    // What the first process acknowledged before the kill survived it.
    assert!(
        found.len() >= acknowledged,
        "{} found, {acknowledged} acknowledged",
        found.len()
    );
    // Nothing half-written is left behind.
    let tmp = data.path().join("store").join("tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);
}

/// Every error the store answers leaves the gateway as HCP's status, code and error document.
#[tokio::test]
async fn the_store_s_errors_are_hcp_s_documents() {
    let gw = start(Backend::Store).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    put(&s3, &bucket, "k", b"body").await;
    put(&s3, &bucket, "empty", b"").await;
    let check = |status: u16, code: &str, got: (u16, String), body: String| {
        assert_eq!(got, (status, code.to_string()));
        assert_hcp_error_body(&body, code);
    };
    let e = s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .if_match("\"0123\"")
        .body(ByteStream::from_static(b"other"))
        .send()
        .await
        .unwrap_err();
    check(412, "PreconditionFailed", sdk_error(&e), error_body(&e));
    let e = s3
        .delete_object()
        .bucket(&bucket)
        .key("k")
        .if_match("\"0123\"")
        .send()
        .await
        .unwrap_err();
    check(412, "PreconditionFailed", sdk_error(&e), error_body(&e));
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("empty")
        .range("bytes=-5")
        .send()
        .await
        .unwrap_err();
    check(416, "InvalidRange", sdk_error(&e), error_body(&e));
    let e = s3
        .get_object()
        .bucket("no-such-bucket-here")
        .key("k")
        .send()
        .await
        .unwrap_err();
    check(404, "NoSuchBucket", sdk_error(&e), error_body(&e));
    let e = s3.delete_bucket().bucket(&bucket).send().await.unwrap_err();
    check(409, "BucketNotEmpty", sdk_error(&e), error_body(&e));
    // Nothing the refusals touched changed.
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"body");
}

/// Versions, delete markers, ACLs, CORS and part copies on the store, through the gateway with
/// a real client: each kept, answered as S3 answers it, and still there after a restart.
#[tokio::test]
async fn versions_acls_cors_and_part_copies_are_kept() {
    use aws_sdk_s3::types::{BucketVersioningStatus, ObjectCannedAcl, VersioningConfiguration};
    let data = tempfile::tempdir().unwrap();
    let text = store_config(data.path());
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Store).await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    put(&s3, &bucket, "k", b"before").await;
    let enabled = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::Enabled)
        .build();
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(enabled)
        .send()
        .await
        .unwrap();
    let got = s3.get_bucket_versioning().bucket(&bucket).send().await;
    assert_eq!(
        got.unwrap().status(),
        Some(&BucketVersioningStatus::Enabled)
    );
    let v1 = s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap();
    let v1 = v1.version_id().expect("a version id").to_string();
    put(&s3, &bucket, "k", b"two").await;
    let deleted = s3
        .delete_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.delete_marker(), Some(true));
    let marker = deleted.version_id().unwrap().to_string();
    // The key is gone, its versions are not: oldest first as HCP lists them (the version
    // written before versioning was enabled, "null", first), the marker latest.
    let e = s3.get_object().bucket(&bucket).key("k").send().await;
    assert_eq!(sdk_error(&e.unwrap_err()), (404, "NoSuchKey".into()));
    let listed = s3
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = listed
        .versions()
        .iter()
        .filter_map(|v| v.version_id())
        .collect();
    assert_eq!(ids.len(), 3, "{listed:?}");
    assert_eq!(ids[1], v1);
    assert_eq!(ids[0], "null");
    assert_eq!(
        listed.delete_markers()[0].version_id(),
        Some(marker.as_str())
    );
    assert_eq!(listed.delete_markers()[0].is_latest(), Some(true));
    let old = s3
        .get_object()
        .bucket(&bucket)
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.body.collect().await.unwrap().into_bytes().as_ref(),
        b"one"
    );
    // A bucket holding versions is not empty.
    let e = s3.delete_bucket().bucket(&bucket).send().await.unwrap_err();
    assert_eq!(sdk_error(&e).1, "BucketNotEmpty");
    // Removing the marker brings the newest version back.
    s3.delete_object()
        .bucket(&bucket)
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"two");

    // ACLs: a canned ACL on write, a changed one on an older version, each read back.
    s3.put_object()
        .bucket(&bucket)
        .key("public")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"p"))
        .send()
        .await
        .unwrap();
    let all_users = |grants: &[aws_sdk_s3::types::Grant]| {
        grants
            .iter()
            .filter(|g| {
                g.grantee()
                    .and_then(|g| g.uri())
                    .is_some_and(|u| u.ends_with("AllUsers"))
            })
            .count()
    };
    let acl = s3
        .get_object_acl()
        .bucket(&bucket)
        .key("public")
        .send()
        .await
        .unwrap();
    assert_eq!(all_users(acl.grants()), 1, "{acl:?}");
    s3.put_object_acl()
        .bucket(&bucket)
        .key("k")
        .version_id(&v1)
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let acl = s3
        .get_object_acl()
        .bucket(&bucket)
        .key("k")
        .version_id(&v1)
        .send()
        .await;
    assert_eq!(all_users(acl.unwrap().grants()), 1);
    let acl = s3
        .get_object_acl()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        all_users(acl.grants()),
        0,
        "the current version keeps its own ACL"
    );

    // CORS: kept, answered, removed.
    set_cors(&s3, &bucket, "https://app.example", &["GET"]).await;
    let got = s3.get_bucket_cors().bucket(&bucket).send().await.unwrap();
    assert_eq!(
        got.cors_rules()[0].allowed_origins(),
        ["https://app.example"]
    );

    // A part copied from a range of an older version.
    let up = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("assembled")
        .send()
        .await
        .unwrap();
    let part = s3
        .upload_part_copy()
        .bucket(&bucket)
        .key("assembled")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .copy_source(format!("{bucket}/k?versionId={v1}"))
        .copy_source_range("bytes=1-2")
        .send()
        .await
        .unwrap();
    let etag = part
        .copy_part_result()
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    let done = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
        .build();
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key("assembled")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    assert_eq!(object_bytes(&s3, &bucket, "assembled").await, b"ne");

    // After a restart: the versions, the ACL and the CORS rules are still there.
    gw.stop().await;
    let again = restart(data.path(), &text).await;
    let s3 = again.client();
    let listed = s3
        .list_object_versions()
        .bucket(&bucket)
        .prefix("k")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.versions().len(), 3);
    let acl = s3
        .get_object_acl()
        .bucket(&bucket)
        .key("public")
        .send()
        .await
        .unwrap();
    assert_eq!(all_users(acl.grants()), 1);
    assert!(s3.get_bucket_cors().bucket(&bucket).send().await.is_ok());
    s3.delete_bucket_cors()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let e = s3
        .get_bucket_cors()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_err();
    // 404 (the code is the gateway's normalisation's to choose, not the store's).
    assert_eq!(sdk_error(&e).0, 404);
}

/// S3 Object Lock in the store itself, asked directly with a real client (the gateway does not
/// send object lock requests on yet: issue "HCP retention, holds and S3 Object Lock"): a bucket
/// created with it is versioned for good, takes a default retention, and keeps versions under
/// a retention or a legal hold from deletion; compliance only extends; governance yields to the
/// bypass only.
#[tokio::test]
async fn object_lock_keeps_versions_as_s3_does() {
    use aws_sdk_s3::primitives::DateTime;
    use aws_sdk_s3::types::{
        BucketVersioningStatus, DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled,
        ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention,
        ObjectLockRetentionMode, ObjectLockRule, VersioningConfiguration,
    };
    let data = tempfile::tempdir().unwrap();
    let store = hcp_s3_gateway::backend::local::LocalBackend::start(
        data.path(),
        hcp_s3_gateway::config::LocalEngine::Store,
    )
    .await
    .unwrap();
    let s3 = sdk_client(
        &format!("http://{}", store.addr),
        &store.access_key,
        &store.secret_key,
    );
    let in_days = |days: i64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        DateTime::from_secs(now + days * 86_400)
    };
    // Without object lock: lock settings are refused, nothing is stored.
    s3.create_bucket().bucket("plain").send().await.unwrap();
    let e = s3
        .put_object()
        .bucket("plain")
        .key("k")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(in_days(1))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (400, "InvalidRequest".into()));
    assert!(s3
        .head_object()
        .bucket("plain")
        .key("k")
        .send()
        .await
        .is_err());
    let e = s3
        .get_object_lock_configuration()
        .bucket("plain")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&e),
        (404, "ObjectLockConfigurationNotFoundError".into())
    );

    // With object lock: versioned for good.
    s3.create_bucket()
        .bucket("locked")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let v = s3.get_bucket_versioning().bucket("locked").send().await;
    assert_eq!(v.unwrap().status(), Some(&BucketVersioningStatus::Enabled));
    let suspend = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::Suspended)
        .build();
    let e = s3
        .put_bucket_versioning()
        .bucket("locked")
        .versioning_configuration(suspend)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (409, "InvalidBucketState".into()));

    // A default retention given in years is answered in years, as S3 answers it.
    let set_default = |given: aws_sdk_s3::types::builders::DefaultRetentionBuilder| {
        let rule = ObjectLockRule::builder()
            .default_retention(given.mode(ObjectLockRetentionMode::Governance).build())
            .build();
        let config = ObjectLockConfiguration::builder()
            .object_lock_enabled(ObjectLockEnabled::Enabled)
            .rule(rule)
            .build();
        let put = s3.put_object_lock_configuration().bucket("locked");
        async move { put.object_lock_configuration(config).send().await.unwrap() }
    };
    let default_retention = || async {
        let got = s3.get_object_lock_configuration().bucket("locked").send();
        let got = got.await.unwrap().object_lock_configuration.unwrap();
        let d = got.rule.unwrap().default_retention.unwrap();
        (d.days, d.years)
    };
    set_default(DefaultRetention::builder().years(2)).await;
    assert_eq!(default_retention().await, (None, Some(2)));

    // A default retention applies to new versions.
    set_default(DefaultRetention::builder().days(1)).await;
    assert_eq!(default_retention().await, (Some(1), None));
    let put = s3
        .put_object()
        .bucket("locked")
        .key("gov")
        .body(ByteStream::from_static(b"g"))
        .send()
        .await
        .unwrap();
    let gov = put.version_id().unwrap().to_string();
    let head = s3
        .head_object()
        .bucket("locked")
        .key("gov")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    // Governance: kept, but for the bypass.
    let delete = |key: &'static str, version: String, bypass: bool| {
        s3.delete_object()
            .bucket("locked")
            .key(key)
            .version_id(version)
            .bypass_governance_retention(bypass)
            .send()
    };
    let e = delete("gov", gov.clone(), false).await.unwrap_err();
    assert_eq!(sdk_error(&e), (403, "AccessDenied".into()));
    delete("gov", gov.clone(), true).await.unwrap();

    // Compliance: only extended, never deleted.
    let put = s3
        .put_object()
        .bucket("locked")
        .key("comp")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(in_days(2))
        .body(ByteStream::from_static(b"c"))
        .send()
        .await
        .unwrap();
    let comp = put.version_id().unwrap().to_string();
    let retain = |days: i64| {
        ObjectLockRetention::builder()
            .mode(ObjectLockRetentionMode::Compliance)
            .retain_until_date(in_days(days))
            .build()
    };
    let shorten = s3
        .put_object_retention()
        .bucket("locked")
        .key("comp")
        .version_id(&comp)
        .retention(retain(1))
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&shorten), (403, "AccessDenied".into()));
    s3.put_object_retention()
        .bucket("locked")
        .key("comp")
        .version_id(&comp)
        .retention(retain(3))
        .send()
        .await
        .unwrap();
    let e = delete("comp", comp.clone(), true).await.unwrap_err();
    assert_eq!(sdk_error(&e), (403, "AccessDenied".into()));
    // A delete without a version id only adds a marker: the version stays.
    s3.delete_object()
        .bucket("locked")
        .key("comp")
        .send()
        .await
        .unwrap();
    let kept = s3
        .get_object()
        .bucket("locked")
        .key("comp")
        .version_id(&comp)
        .send()
        .await
        .unwrap();
    assert_eq!(kept.object_lock_mode(), Some(&ObjectLockMode::Compliance));

    // A legal hold keeps a version until it is lifted, whatever the retention.
    let put = s3
        .put_object()
        .bucket("locked")
        .key("held")
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(in_days(1))
        .body(ByteStream::from_static(b"h"))
        .send()
        .await
        .unwrap();
    let held = put.version_id().unwrap().to_string();
    let e = delete("held", held.clone(), true).await.unwrap_err();
    assert_eq!(sdk_error(&e), (403, "AccessDenied".into()));
    let hold = |status| ObjectLockLegalHold::builder().status(status).build();
    s3.put_object_legal_hold()
        .bucket("locked")
        .key("held")
        .version_id(&held)
        .legal_hold(hold(ObjectLockLegalHoldStatus::Off))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object_legal_hold()
        .bucket("locked")
        .key("held")
        .version_id(&held)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.legal_hold().and_then(|h| h.status()),
        Some(&ObjectLockLegalHoldStatus::Off)
    );
    delete("held", held, true).await.unwrap();
}

/// The store evaluates write conditions itself (`conditional_writes` is on by default for it):
/// `If-None-Match: *` on a PUT, a copy and a complete onto an existing key is 412 and leaves
/// the key as it was; onto a new key it writes.
#[tokio::test]
async fn writes_on_condition_are_the_store_s_own() {
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    put(&s3, &bucket, "k", b"first").await;
    let before = gw.backend_requests();
    let e = s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"second"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (412, "PreconditionFailed".into()));
    // One request reached the store: the PUT itself, no HEAD before it.
    assert_eq!(gw.backend_requests() - before, 1);
    let copy = |target: &'static str| {
        s3.copy_object()
            .bucket(&bucket)
            .key(target)
            .copy_source(format!("{bucket}/k"))
            .customize()
            .mutate_request(|r| {
                r.headers_mut().insert("if-none-match", "*");
            })
            .send()
    };
    let e = copy("k").await.unwrap_err();
    assert_eq!(sdk_error(&e), (412, "PreconditionFailed".into()));
    copy("fresh").await.unwrap();
    let up = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    let part = s3
        .upload_part()
        .bucket(&bucket)
        .key("k")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from_static(b"third"))
        .send()
        .await
        .unwrap();
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        )
        .build();
    let e = s3
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(done)
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    // (HCP's complete answers its failed condition 200, with the Error document.)
    assert_eq!(sdk_error(&e), (200, "PreconditionFailed".into()));
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"first");
    assert_eq!(object_bytes(&s3, &bucket, "fresh").await, b"first");
}

/// Where HCP's no-overwrite rule has the gateway judge a complete's `If-None-Match: *` itself
/// (a HEAD before the complete), its failure is answered as the backend's is: 200 with the
/// Error document (seed 001), the upload still open and the object as it was.
#[tokio::test]
async fn a_complete_s_failed_condition_is_200_whoever_judges_it() {
    let gw = start_with_tenant(Backend::Local, "overwrite = \"refuse-unversioned\"", "")
        .await
        .unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    put(&s3, &bucket, "k", b"first").await;
    let (id, parts) = upload_parts(&s3, &bucket, "k", &[6]).await;
    let done = CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    let e = s3
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .upload_id(&id)
        .multipart_upload(done)
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&e), (200, "PreconditionFailed".into()));
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"first");
    let parts = s3
        .list_parts()
        .bucket(&bucket)
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(parts.parts().len(), 1, "the upload is still open");
}

/// Checksums a client sends are the body's or the write is refused (400 BadDigest, nothing
/// kept); kept ones are answered to a reader who asks, and never with a 304.
#[tokio::test]
async fn checksums_are_checked_kept_and_answered() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key("summed")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"summed body"))
        .send()
        .await
        .unwrap();
    let sent = put
        .checksum_sha256()
        .expect("the checksum echoed")
        .to_string();
    let got = s3
        .head_object()
        .bucket(&bucket)
        .key("summed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_sha256(), Some(sent.as_str()));
    let plain = s3.head_object().bucket(&bucket).key("summed").send().await;
    assert_eq!(plain.unwrap().checksum_sha256(), None, "only when asked");
    // A 304 carries no checksum (the aws cli crashed on one from s3s-fs).
    let etag = got.e_tag().unwrap().to_string();
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("summed")
        .checksum_mode(ChecksumMode::Enabled)
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    let raw = e.raw_response().expect("an answer");
    assert_eq!(raw.status().as_u16(), 304);
    assert!(raw
        .headers()
        .iter()
        .all(|(n, _)| !n.starts_with("x-amz-checksum")));
    // A checksum that is not the body's: refused, nothing kept.
    let wrong = s3
        .put_object()
        .bucket(&bucket)
        .key("wrong")
        .checksum_sha256("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=")
        .body(ByteStream::from_static(b"another body"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&wrong), (400, "BadDigest".into()));
    let e = s3.head_object().bucket(&bucket).key("wrong").send().await;
    assert_eq!(sdk_error(&e.unwrap_err()).0, 404);
}

/// The errors of the store's newer parts leave the gateway as HCP's documents too, and change
/// nothing: a checksum that is not the body's, a copy onto an existing key under
/// `If-None-Match: *` or under an If-Match list none of whose ETags is the key's, a version id
/// that names a delete marker or nothing.
#[tokio::test]
async fn the_store_s_newer_errors_are_hcp_s_documents() {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    put(&s3, &bucket, "k", b"body").await;
    let check = |status: u16, code: &str, got: (u16, String), body: String| {
        assert_eq!(got, (status, code.to_string()));
        assert_hcp_error_body(&body, code);
    };
    let e = s3
        .put_object()
        .bucket(&bucket)
        .key("summed")
        .checksum_sha256("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=")
        .body(ByteStream::from_static(b"not that"))
        .send()
        .await
        .unwrap_err();
    check(400, "BadDigest", sdk_error(&e), error_body(&e));
    let copy = |condition: &'static str| {
        s3.copy_object()
            .bucket(&bucket)
            .key("k")
            .copy_source(format!("{bucket}/k"))
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .customize()
            .mutate_request(move |r| {
                let (name, value) = condition.split_once(": ").unwrap();
                r.headers_mut().insert(name.to_string(), value.to_string());
            })
            .send()
    };
    let e = copy("if-none-match: *").await.unwrap_err();
    check(412, "PreconditionFailed", sdk_error(&e), error_body(&e));
    let e = copy("if-match: \"a\", \"b\"").await.unwrap_err();
    check(412, "PreconditionFailed", sdk_error(&e), error_body(&e));
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"body");
    assert!(s3
        .head_object()
        .bucket(&bucket)
        .key("summed")
        .send()
        .await
        .is_err());

    let enabled = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::Enabled)
        .build();
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(enabled)
        .send()
        .await
        .unwrap();
    let marker = s3.delete_object().bucket(&bucket).key("k").send().await;
    let marker = marker.unwrap().version_id().unwrap().to_string();
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    // (The store refuses it, 405, as S3 does; HCP finds no object version there.)
    check(404, "NoSuchKey", sdk_error(&e), error_body(&e));
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("k")
        .version_id("00000000000000000000beef")
        .send()
        .await
        .unwrap_err();
    // HCP's error table has no NoSuchVersion: the gateway answers NoSuchKey (mapping.csv).
    check(404, "NoSuchKey", sdk_error(&e), error_body(&e));
}

/// HCP's keys of up to 4,095 bytes take every object operation on the store, through the
/// gateway: s3s reads at most 1,024 bytes of key from a path, so the gateway names a
/// placeholder there and sends the key in a signed header of its own (`backend::store::wire`).
/// The store's own listing holds exactly the client's keys, never the placeholder.
#[tokio::test]
async fn keys_of_up_to_4095_bytes_take_every_object_operation() {
    use aws_sdk_s3::types::{Delete, ObjectCannedAcl, ObjectIdentifier};
    let gw = start(Backend::Store).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    let key = |tag: &str, len: usize| {
        let k = format!("{tag}/{}", "ü/".repeat(300));
        format!("{k}{}", "k".repeat(len - k.len()))
    };
    let (a, b, c, d) = (
        key("a", 4095),
        key("b", 1025),
        key("c", 4095),
        key("d", 3000),
    );
    // PUT with metadata, HEAD, a ranged GET, the object's ACL.
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key(&a)
        .metadata("color", "red");
    put.body(ByteStream::from_static(b"0123456789"))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(10));
    assert_eq!(head.metadata().unwrap()["color"], "red");
    let ranged = s3.get_object().bucket(&bucket).key(&a).range("bytes=2-4");
    let ranged = ranged.send().await.unwrap().body.collect().await.unwrap();
    assert_eq!(ranged.into_bytes().as_ref(), b"234");
    let acl = s3.put_object_acl().bucket(&bucket).key(&a);
    acl.acl(ObjectCannedAcl::PublicRead).send().await.unwrap();
    let grants = s3
        .get_object_acl()
        .bucket(&bucket)
        .key(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(grants.grants().len(), 2, "{grants:?}");
    // A copy from one long key to another.
    let copy = s3.copy_object().bucket(&bucket).key(&b);
    let encoded = percent_encoding::utf8_percent_encode(&a, percent_encoding::NON_ALPHANUMERIC);
    let source = format!("{bucket}/{encoded}");
    copy.copy_source(&source).send().await.unwrap();
    assert_eq!(object_bytes(&s3, &bucket, &b).await, b"0123456789");
    // A multipart upload to a long key: a part, a part copied from a long key, the parts
    // listed, the upload listed, completed.
    let id = start_upload(&s3, &bucket, &c).await;
    let first = pattern(5 * 1024 * 1024, 7);
    let part = s3.upload_part().bucket(&bucket).key(&c).upload_id(&id);
    let part = part.part_number(1).body(ByteStream::from(first.clone()));
    let one = part.send().await.unwrap().e_tag().unwrap().to_string();
    let copied = s3.upload_part_copy().bucket(&bucket).key(&c).upload_id(&id);
    let copied = copied
        .part_number(2)
        .copy_source(&source)
        .copy_source_range("bytes=0-3");
    let copied = copied.send().await.unwrap();
    let two = copied
        .copy_part_result()
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    let parts = s3
        .list_parts()
        .bucket(&bucket)
        .key(&c)
        .upload_id(&id)
        .send();
    let parts = parts.await.unwrap();
    assert_eq!(parts.key(), Some(c.as_str()));
    assert_eq!(parts.parts().len(), 2);
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(uploads.uploads()[0].key(), Some(c.as_str()));
    let done = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(one).build())
        .parts(CompletedPart::builder().part_number(2).e_tag(two).build())
        .build();
    let complete = s3.complete_multipart_upload().bucket(&bucket).key(&c);
    let complete = complete
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    assert_eq!(complete.key(), Some(c.as_str()));
    let mut whole = first;
    whole.extend_from_slice(b"0123");
    assert_eq!(object_bytes(&s3, &bucket, &c).await, whole);
    // An upload aborted.
    let id = start_upload(&s3, &bucket, &d).await;
    let abort = s3
        .abort_multipart_upload()
        .bucket(&bucket)
        .key(&d)
        .upload_id(&id);
    abort.send().await.unwrap();
    // Listings: in order, resumed after a long key, with versions.
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [a.as_str(), b.as_str(), c.as_str()]);
    let after = s3
        .list_objects_v2()
        .bucket(&bucket)
        .start_after(&a)
        .send()
        .await;
    assert_eq!(after.unwrap().contents()[0].key(), Some(b.as_str()));
    let marker = s3
        .list_objects()
        .bucket(&bucket)
        .marker(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(marker.contents()[0].key(), Some(c.as_str()));
    let versions = s3
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 3);
    // The store's own view: the client's keys and nothing else.
    let view = common::view::BackendView::of(&gw);
    assert_eq!(view.keys(&bucket).await, [a.clone(), b.clone(), c.clone()]);
    assert!(view.uploads(&bucket).await.is_empty());
    // Deleted one by one and in a batch.
    s3.delete_object()
        .bucket(&bucket)
        .key(&c)
        .send()
        .await
        .unwrap();
    let batch = Delete::builder()
        .objects(ObjectIdentifier::builder().key(&a).build().unwrap())
        .objects(ObjectIdentifier::builder().key(&b).build().unwrap())
        .build()
        .unwrap();
    let deleted = s3
        .delete_objects()
        .bucket(&bucket)
        .delete(batch)
        .send()
        .await;
    assert_eq!(deleted.unwrap().deleted().len(), 2);
    assert!(view.keys(&bucket).await.is_empty());
    // One byte over HCP's limit: refused, nothing stored.
    let too_long = format!("{a}k");
    let put = s3.put_object().bucket(&bucket).key(&too_long);
    let err = put
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (400, "KeyTooLong".into()));
    assert!(view.keys(&bucket).await.is_empty());
}

/// A backend's own key limit holds for browser forms as for every other write: on a store
/// configured for 1,024-byte keys, a form naming a longer key is 400 KeyTooLong and stores
/// nothing (the store itself would take it).
#[tokio::test]
async fn a_form_s_key_meets_the_backend_s_limit() {
    let data = tempfile::tempdir().unwrap();
    let text = format!("{}max_key_bytes = 1024\n", store_config(data.path()));
    let gw = start_text(&text, tempfile::tempdir().unwrap(), Backend::Store).await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "dropbox").await;
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let post = |key: String| {
        let (addr, bucket) = (addr.clone(), bucket.clone());
        async move { common::raw::post_form(&addr, &bucket, &key).await }
    };
    let r = post("k".repeat(1025)).await;
    r.assert_hcp_error(400, "KeyTooLong");
    let view = common::view::BackendView::of(&gw);
    assert!(view.keys(&bucket).await.is_empty());
    let r = post("k".repeat(1024)).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(view.keys(&bucket).await, ["k".repeat(1024)]);
}

/// A page of long keys that XML escapes six-fold (`'` is `&apos;`) still fits what the gateway
/// reads whole: 720 keys of 4,095 apostrophes make a 17.7 MB listing, answered whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_long_keys_list_and_delete_whole() {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let gw = start(Backend::Store).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    let key = |i: usize| format!("{i:04}{}", "'".repeat(4091));
    let mut puts = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        puts.spawn(async move {
            for i in (worker..720).step_by(8) {
                let put = s3.put_object().bucket(&bucket).key(key(i));
                put.body(ByteStream::from_static(b"x"))
                    .send()
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = puts.join_next().await {
        done.unwrap();
    }
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.contents().len(), 720);
    assert_eq!(listed.contents()[719].key(), Some(key(719).as_str()));
    // A multi-delete request is at most 4 MiB (the SDK escapes as well): six of 120 keys.
    for first in (0..720).step_by(120) {
        let mut batch = Delete::builder();
        for i in first..first + 120 {
            batch = batch.objects(ObjectIdentifier::builder().key(key(i)).build().unwrap());
        }
        let deleted = s3
            .delete_objects()
            .bucket(&bucket)
            .delete(batch.build().unwrap());
        assert_eq!(deleted.send().await.unwrap().deleted().len(), 120);
    }
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert!(listed.contents().is_empty());
}

/// Completes of one upload at once (a client's retry of a slow complete), and an abort racing
/// a complete: one joins the parts, the other is answered as the first was (or, for the abort,
/// finds no upload) — never a 500 for a part removed under it, never NoSuchUpload for an
/// upload that completed with the very parts the retry lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completes_of_one_upload_at_once_agree() {
    let (gw, _data) = on_the_store().await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "racing").await;
    const PART: usize = 16 * 1024 * 1024;
    let upload_of_two = |key: &'static str| uploaded(&s3, &bucket, key, &[PART, PART]);
    let complete = |key: &'static str, id: String, parts: CompletedMultipartUpload| {
        s3.complete_multipart_upload()
            .bucket(&bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(parts)
            .send()
    };
    let whole = [pattern(PART, 1), pattern(PART, 2)].concat();

    // (Three rounds: the race is the scheduler's to lose.)
    for _ in 0..3 {
        let (id, parts) = upload_of_two("twice").await;
        let (a, b) = tokio::join!(
            complete("twice", id.clone(), parts.clone()),
            complete("twice", id, parts)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.e_tag(), b.e_tag());
        assert!(a.e_tag().unwrap().ends_with("-2\""), "{:?}", a.e_tag());
        assert!(object_bytes(&s3, &bucket, "twice").await == whole);
    }

    let (id, parts) = upload_of_two("aborted").await;
    let abort = s3
        .abort_multipart_upload()
        .bucket(&bucket)
        .key("aborted")
        .upload_id(&id)
        .send();
    let (completed, aborted) = tokio::join!(complete("aborted", id, parts), abort);
    let outcome = |e: Option<(u16, String)>| match e {
        None => "done".to_string(),
        Some((404, code)) if code == "NoSuchUpload" => "no upload".to_string(),
        Some(other) => panic!("neither done nor NoSuchUpload: {other:?}"),
    };
    let completed = outcome(completed.as_ref().err().map(sdk_error));
    let aborted = outcome(aborted.as_ref().err().map(sdk_error));
    assert_ne!(
        (completed.as_str(), aborted.as_str()),
        ("no upload", "no upload")
    );
    if completed == "done" {
        assert!(object_bytes(&s3, &bucket, "aborted").await == whole);
    }
}

/// GET and HEAD of `?partNumber=N`: an object stored whole is its own part 1 and has no part 2
/// (HCP's InvalidRange for S3's InvalidPartNumber); one part of a completed upload is refused
/// (the store keeps no part boundaries), never answered with the whole object.
#[tokio::test]
async fn a_part_of_an_object_is_read_or_refused_never_the_whole_instead() {
    let (gw, _data) = on_the_store().await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "parts").await;
    put(&s3, &bucket, "whole", b"one piece").await;
    let got = s3.get_object().bucket(&bucket).key("whole").part_number(1);
    let got = got.send().await.unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"one piece"
    );
    for head in [false, true] {
        let e = if head {
            let h = s3.head_object().bucket(&bucket).key("whole").part_number(2);
            h.send()
                .await
                .unwrap_err()
                .raw_response()
                .unwrap()
                .status()
                .as_u16()
        } else {
            let g = s3.get_object().bucket(&bucket).key("whole").part_number(2);
            let e = g.send().await.unwrap_err();
            assert_eq!(sdk_error(&e), (416, "InvalidRange".into()));
            416
        };
        assert_eq!(e, 416, "head: {head}");
    }

    let (id, list) = uploaded(&s3, &bucket, "joined", &[5 * 1024 * 1024, 1024]).await;
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key("joined")
        .upload_id(&id)
        .multipart_upload(list)
        .send()
        .await
        .unwrap();
    // Part 1 of a completed upload is the whole object, with no parts count: a client reading
    // by parts reads it whole.
    let g = s3.get_object().bucket(&bucket).key("joined").part_number(1);
    let got = g.send().await.unwrap();
    assert_eq!(got.parts_count(), None);
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.len(), 5 * 1024 * 1024 + 1024);
    let g = s3.get_object().bucket(&bucket).key("joined").part_number(2);
    let e = g.send().await.unwrap_err();
    assert_eq!(sdk_error(&e), (501, "NotImplemented".into()));
    // HCP's whole error documents, for both refusals.
    let admin = (USER, PASSWORD);
    for (key, status, code) in [
        ("joined", 501, "NotImplemented"),
        ("whole", 416, "InvalidRange"),
    ] {
        let target = format!("/{bucket}/{key}?partNumber=2");
        let r = as_user(&gw, admin, "GET", &target, &[], b"").await;
        r.assert_hcp_error(status, code);
    }
}

/// ListMultipartUploads as HCP's manual shows it: each upload with when it was initiated (the
/// age a client aborts abandoned uploads by), and a delimiter rolling keys up into common
/// prefixes.
#[tokio::test]
async fn open_uploads_list_with_their_dates_and_common_prefixes() {
    let (gw, _data) = on_the_store().await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "open-uploads").await;
    for key in ["logs/1", "logs/2", "top"] {
        start_upload(&s3, &bucket, key).await;
    }
    let listed = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = listed
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["logs/"]);
    let uploads = listed.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].key(), Some("top"));
    let initiated = uploads[0].initiated().expect("Initiated");
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - initiated.secs();
    assert!((0..600).contains(&age), "initiated {age} s ago");
    assert_eq!(listed.delimiter(), Some("/"));
}

/// Encryption with a customer's key (SSE-C) is not kept by the embedded backend, which would
/// store the data as sent and serve it to any reader without the key: every request naming a
/// customer's key — a PUT, a read, a copy's source, an upload, a form — is 501 NotImplemented
/// in HCP's body before the backend, and nothing is stored; a key that is not whole or valid
/// is S3's 400 InvalidArgument first, as on every backend.
#[tokio::test]
async fn customer_keys_are_refused_where_they_would_not_be_kept() {
    let (gw, _data) = on_the_store().await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "ssec").await;
    put(&s3, &bucket, "plain", b"plain").await;
    let key = [7u8; 32];
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
    let (key_b64, md5) = (b64(&key), content_md5(&key));
    let customer = |prefix: &'static str| {
        let name = |n: &str| format!("{prefix}server-side-encryption-customer-{n}");
        [
            (name("algorithm"), "AES256".to_string()),
            (name("key"), key_b64.clone()),
            (name("key-md5"), md5.clone()),
        ]
    };
    let (own, source) = (customer("x-amz-"), customer("x-amz-copy-source-"));
    let plain = format!("{bucket}/plain");
    let copy_source = [("x-amz-copy-source".to_string(), plain)];
    let cases: [(_, _, Vec<_>); 6] = [
        ("PUT", "keyed", own.to_vec()),
        ("GET", "plain", own.to_vec()),
        ("HEAD", "plain", own.to_vec()),
        ("PUT", "copy", [&copy_source[..], &source].concat()),
        ("PUT", "copy-keyed", [&copy_source[..], &own].concat()),
        ("POST", "mpu?uploads", own.to_vec()),
    ];
    let admin = (USER, PASSWORD);
    // Each refused with its HCP answer, and nothing reaching the backend.
    let refused = |method: &'static str, key: &'static str, headers: Vec<(String, String)>| {
        let gw = &gw;
        let target = format!("/{bucket}/{key}");
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let before = gw.backend_requests();
            let body: &[u8] = if method == "PUT" && key == "keyed" {
                b"secret"
            } else {
                b""
            };
            let r = as_user(gw, admin, method, &target, &headers, body).await;
            assert_eq!(
                gw.backend_requests(),
                before,
                "{method} {key} {headers:?} reached the backend"
            );
            r
        }
    };
    for (method, key, headers) in cases {
        let r = refused(method, key, headers).await;
        assert_eq!(r.status, 501, "{method} {key}: {}", r.text());
        if method != "HEAD" {
            r.assert_hcp_error(501, "NotImplemented");
        }
    }
    // A key that is not whole or valid is S3's 400, on every backend, before this.
    let no_algorithm = own[1..].to_vec();
    let mut other_md5 = own.to_vec();
    other_md5[2].1 = content_md5(b"another key");
    for headers in [no_algorithm, other_md5] {
        let r = refused("PUT", "keyed", headers).await;
        r.assert_hcp_error(400, "InvalidArgument");
    }
    // A form's encryption fields likewise.
    let fields: Vec<(&str, &str)> = [("key", "formed")]
        .into_iter()
        .chain(own.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .collect();
    let form = common::raw::form_body(&fields, b"secret");
    let dropbox = new_bucket(&s3, "dropbox-ssec").await;
    let r = common::raw::post_multipart(&gw.addr(), &dropbox, form).await;
    r.assert_hcp_error(501, "NotImplemented");
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["plain"]);
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{uploads:?}");
    let listed = s3.list_objects_v2().bucket(&dropbox).send().await.unwrap();
    assert!(listed.contents().is_empty(), "a form was stored");
    // Without a key, the object reads as before.
    assert_eq!(object_bytes(&s3, &bucket, "plain").await, b"plain");
}

/// A key's open uploads are listed in the order they were initiated (S3; HCP's manual:
/// "ascending chronological order by the time they were initiated"), and a complete retried in
/// a versioned bucket (its first answer lost) names the version the first made.
#[tokio::test]
async fn uploads_list_as_initiated_and_a_retried_complete_names_its_version() {
    use aws_sdk_s3::types::BucketVersioningStatus;
    let (gw, _data) = on_the_store().await;
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "upload-order").await;
    let mut started = Vec::new();
    for _ in 0..6 {
        started.push(start_upload(&s3, &bucket, "k").await);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let listed = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = listed
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id())
        .collect();
    assert_eq!(ids, started);

    set_versioning(&s3, &bucket, BucketVersioningStatus::Enabled).await;
    let (id, list) = uploaded(&s3, &bucket, "v", &[5 * 1024 * 1024, 1]).await;
    let complete = || {
        s3.complete_multipart_upload()
            .bucket(&bucket)
            .key("v")
            .upload_id(&id)
            .multipart_upload(list.clone())
            .send()
    };
    let done = complete().await.unwrap();
    let again = complete().await.unwrap();
    assert!(done.version_id().is_some(), "{done:?}");
    assert_eq!(
        (again.e_tag(), again.version_id()),
        (done.e_tag(), done.version_id())
    );
}

/// HCP's version ids are integers, a newer version's the greater (manual, "Version IDs"): the
/// store's are so, as each write answers it and the version listing names it, and each reads
/// its version back.
#[tokio::test]
async fn version_ids_are_integers_a_newer_one_greater() {
    let gw = start(Backend::Local).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "store").await;
    set_versioning(
        &s3,
        &bucket,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    let mut written = Vec::new();
    for (key, body) in [("a", "1"), ("b", "2"), ("a", "3")] {
        let out = s3
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
        let id = out.version_id().unwrap().to_string();
        let value: u64 = id.parse().unwrap_or_else(|_| panic!("{id} is no integer"));
        assert!(written.last().is_none_or(|(_, _, v)| *v < value), "{id}");
        written.push((key, body, value));
    }
    for (key, body, id) in &written {
        let got = s3
            .get_object()
            .bucket(&bucket)
            .key(*key)
            .version_id(id.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(bytes_of(got).await, body.as_bytes());
    }
    let listed = s3
        .list_object_versions()
        .bucket(&bucket)
        .prefix("a")
        .send()
        .await
        .unwrap();
    let ids: Vec<u64> = listed
        .versions()
        .iter()
        .map(|v| v.version_id().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        ids,
        [written[0].2, written[2].2],
        "oldest first, as HCP lists"
    );
}

/// HCP's version-listing markers on the embedded store: a `version-id-marker` that names no
/// version, nor a place among its key's, starts the listing after the key marker ("If no such item exists, the returned
/// bucket listing starts with the first item with a name that's alphanumerically greater than
/// the key-marker"; before, the key's versions were listed again), and a page ending on a common
/// prefix names an empty `NextVersionIdMarker` (before, none).
#[tokio::test]
async fn version_markers_as_hcp_reads_them() {
    let gw = start(Backend::Store).await.unwrap();
    let s3 = gw.client();
    let bucket = gw.with_bucket("vmarkers").await;
    set_versioning(
        &s3,
        &bucket,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    for key in ["a", "a", "b", "d/1", "e"] {
        put(&s3, &bucket, key, b"x").await;
    }
    let admin = (USER, PASSWORD);
    let keys_of = |text: &str| -> Vec<String> {
        text.split("<Key>")
            .skip(1)
            .filter_map(|k| k.split('<').next())
            .map(str::to_string)
            .collect()
    };
    // (An id of the store's form holds its place, even once its version is deleted: the
    // listing goes on from there, as a marker deleted between two pages must.)
    for marker in ["xyz", "null"] {
        let target = format!("/{bucket}?versions&key-marker=a&version-id-marker={marker}");
        let r = as_user(&gw, admin, "GET", &target, &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            keys_of(&r.text()),
            ["b", "d/1", "e"],
            "{marker}: {}",
            r.text()
        );
    }
    let target = format!("/{bucket}?versions&delimiter=/&key-marker=b&max-keys=1");
    let r = as_user(&gw, admin, "GET", &target, &[], b"").await;
    let text = r.text();
    assert_eq!(r.status, 200, "{text}");
    assert!(text.contains("<IsTruncated>true</IsTruncated>"), "{text}");
    assert!(text.contains("<NextKeyMarker>d/</NextKeyMarker>"), "{text}");
    let empty = text.contains("<NextVersionIdMarker></NextVersionIdMarker>")
        || text.contains("<NextVersionIdMarker/>");
    assert!(empty, "{text}");
}

/// A CORS configuration acts as it was sent, whatever the store's serialiser escapes in it
/// (an ID `Bob's "rule"` comes back with `&apos;`), and preflights ask the store for the rules
/// once, not each.
#[tokio::test]
async fn cors_rules_act_as_they_were_sent_and_are_read_once() {
    let gw = start(Backend::Store).await.unwrap();
    let bucket = gw.with_bucket("quoted").await;
    let doc =
        "<CORSConfiguration><CORSRule><ID>Bob's \"rule\"</ID><AllowedOrigin>*</AllowedOrigin>\
        <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    let (ak, sk) = keys(USER, PASSWORD);
    let addr = gw.addr();
    let md5 = content_md5(doc.as_bytes());
    let md5 = [("content-md5", md5.as_str())];
    let target = format!("/{bucket}?cors");
    let put = ("PUT", target.as_str());
    let r = common::raw::send_signed_with(&addr, (&ak, &sk), put, &md5, doc.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let headers = vec![
        ("host".to_string(), addr.clone()),
        ("origin".to_string(), "https://app.example".to_string()),
        (
            "access-control-request-method".to_string(),
            "GET".to_string(),
        ),
    ];
    let object = format!("/{bucket}/k");
    let before = gw.backend_requests();
    for _ in 0..3 {
        let r = common::raw::send(&addr, "OPTIONS", object.as_bytes(), &headers, vec![]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    assert_eq!(gw.backend_requests() - before, 1, "the rules read once");
}

/// HCP takes "any number of `CORSRule`" in a configuration of at most 2.5 MB: the store keeps
/// 150 rules (it refused more than S3's 100), and a configuration over 2.5 MB is 400
/// EntityTooLarge before the backend.
#[tokio::test]
async fn cors_configurations_as_large_as_hcp_takes() {
    let gw = start(Backend::Store).await.unwrap();
    let s3 = gw.client();
    let bucket = gw.with_bucket("manyrules").await;
    let rule = |i: usize| {
        aws_sdk_s3::types::CorsRule::builder()
            .allowed_origins(format!("https://app{i}.example"))
            .allowed_methods("GET")
            .build()
            .unwrap()
    };
    let rules: Vec<_> = (0..150).map(rule).collect();
    let config = aws_sdk_s3::types::CorsConfiguration::builder()
        .set_cors_rules(Some(rules))
        .build()
        .unwrap();
    let put = s3
        .put_bucket_cors()
        .bucket(&bucket)
        .cors_configuration(config);
    put.send().await.unwrap();
    let kept = s3.get_bucket_cors().bucket(&bucket).send().await.unwrap();
    assert_eq!(kept.cors_rules().len(), 150);
    // (2.5 MB and a little more of one origin's rules.)
    let one = "<CORSRule><AllowedOrigin>https://big.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>";
    let doc = format!(
        "<CORSConfiguration>{}</CORSConfiguration>",
        one.repeat(5 * 1024 * 1024 / 2 / one.len() + 1)
    );
    let (ak, sk) = keys(USER, PASSWORD);
    let addr = gw.addr();
    let md5 = content_md5(doc.as_bytes());
    let md5 = [("content-md5", md5.as_str())];
    let target = format!("/{bucket}?cors");
    let before = gw.backend_requests();
    let put = ("PUT", target.as_str());
    let r = common::raw::send_signed_with(&addr, (&ak, &sk), put, &md5, doc.as_bytes()).await;
    r.assert_hcp_error(400, "EntityTooLarge");
    assert_eq!(gw.backend_requests(), before, "reached the backend");
    // Longer than `max_control_body_bytes` (4 MiB) too: the same answer, not MalformedXML.
    let doc = format!(
        "<CORSConfiguration>{}</CORSConfiguration>",
        one.repeat(50_000)
    );
    let md5 = content_md5(doc.as_bytes());
    let md5 = [("content-md5", md5.as_str())];
    let r = common::raw::send_signed_with(&addr, (&ak, &sk), put, &md5, doc.as_bytes()).await;
    r.assert_hcp_error(400, "EntityTooLarge");
    assert_eq!(gw.backend_requests(), before, "reached the backend");
    let kept = s3.get_bucket_cors().bucket(&bucket).send().await.unwrap();
    assert_eq!(kept.cors_rules().len(), 150, "the rules kept were changed");
}

/// HCP's bound for a CORS configuration is its own: a gateway whose other documents are held
/// to less (`max_control_body_bytes`) takes a configuration of up to 2.5 MB all the same.
#[tokio::test]
async fn a_cors_configuration_is_not_held_to_the_control_document_limit() {
    let extra = "[limits]\nmax_control_body_bytes = 65536";
    let gw = start_with(Backend::Store, "", extra).await.unwrap();
    let s3 = gw.client();
    let bucket = gw.with_bucket("bigrules").await;
    let rule = |i: usize| {
        aws_sdk_s3::types::CorsRule::builder()
            .allowed_origins(format!("https://app{i:06}.example.com"))
            .allowed_methods("GET")
            .build()
            .unwrap()
    };
    // (About 1 MB of rules.)
    let config = aws_sdk_s3::types::CorsConfiguration::builder()
        .set_cors_rules(Some((0..10_000).map(rule).collect()))
        .build()
        .unwrap();
    let put = s3.put_bucket_cors().bucket(&bucket);
    put.cors_configuration(config).send().await.unwrap();
    let kept = s3.get_bucket_cors().bucket(&bucket).send().await.unwrap();
    assert_eq!(kept.cors_rules().len(), 10_000);
}

/// A complete's whole-object checksum (`x-amz-checksum-*`, sent on to the backend to check) is
/// the object's, full-object or composite (the parts' checksums' checksum, `-<parts>`): one
/// that is not is 400 BadDigest, nothing stored, the upload still open.
#[tokio::test]
async fn a_complete_s_checksum_is_the_object_s() {
    use aws_sdk_s3::types::ChecksumType;
    use base64::Engine as _;
    let gw = start(Backend::Store).await.unwrap();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "joined-sums").await;
    let sizes = [5 << 20, 7];
    let crc = |bytes: &[u8]| {
        let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
        d.update(bytes);
        d.finalize().to_be_bytes()[4..].to_vec()
    };
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let parts: Vec<Vec<u8>> = (1..=2).map(|n| pattern(sizes[n - 1], n as u64)).collect();
    let full = b64(&crc(&parts.concat()));
    let of_parts: Vec<u8> = parts.iter().flat_map(|p| crc(p)).collect();
    let composite = format!("{}-2", b64(&crc(&of_parts)));
    let cases = [
        (
            "full-wrong",
            "AAAAAA==".to_string(),
            ChecksumType::FullObject,
            false,
        ),
        ("full", full.clone(), ChecksumType::FullObject, true),
        (
            "composite-wrong",
            format!("{full}-2"),
            ChecksumType::Composite,
            false,
        ),
        (
            "composite-count",
            composite.replace("-2", "-3"),
            ChecksumType::Composite,
            false,
        ),
        ("composite", composite, ChecksumType::Composite, true),
    ];
    for (key, value, kind, matches) in cases {
        let (id, completed) = upload_parts(&s3, &bucket, key, &sizes).await;
        let done = s3
            .complete_multipart_upload()
            .bucket(&bucket)
            .key(key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .checksum_crc32(&value)
            .checksum_type(kind)
            .send()
            .await;
        if matches {
            done.unwrap_or_else(|e| panic!("{key}: {e:?}"));
            assert_eq!(
                object_bytes(&s3, &bucket, key).await,
                parts.concat(),
                "{key}"
            );
            continue;
        }
        let err = done.expect_err(key);
        assert_eq!(sdk_error(&err), (400, "BadDigest".to_string()), "{key}");
        let head = s3.head_object().bucket(&bucket).key(key).send().await;
        assert!(head.is_err(), "{key} stored");
        let listed = s3
            .list_parts()
            .bucket(&bucket)
            .key(key)
            .upload_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.parts().len(), 2, "{key}: the upload stays");
    }
    // The type an upload was created with holds where its complete names none (S3's).
    let up = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("typed")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut completed = Vec::new();
    for (n, part) in parts.iter().enumerate() {
        let n = n as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(&bucket)
            .key("typed")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap();
        let etag = out.e_tag().unwrap();
        completed.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key("typed")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .checksum_crc32(&full)
        .send()
        .await
        .unwrap();
    assert_eq!(object_bytes(&s3, &bucket, "typed").await, parts.concat());
}

/// What HCP accepts reaches the store in a form it takes: a PUT with a hundred custom
/// properties (500 bytes, well inside HCP's 2 KB — hyper's 100 headers refused it, 431), an
/// `Expires` that is no date (HCP accepts and does not process it: not sent), a GET's
/// `response-expires` that is no date (answered by the gateway as given, never asked of the
/// store, which refused it 400).
#[tokio::test]
async fn what_hcp_accepts_the_store_takes() {
    let (gw, _dir) = on_the_store().await;
    let bucket = gw.with_bucket("accepts").await;
    let admin = (USER, PASSWORD);
    let names: Vec<String> = (0..100).map(|i| format!("x-amz-meta-p{i:03}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let target = format!("/{bucket}/many");
    let r = as_user(&gw, admin, "PUT", &target, &many, b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, admin, "HEAD", &target, &[], b"").await;
    let kept = r
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-amz-meta-p"))
        .count();
    assert_eq!(kept, 100, "{:?}", r.headers);
    let dated = format!("/{bucket}/dated");
    let r = as_user(&gw, admin, "PUT", &dated, &[("expires", "0")], b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(
        &gw,
        admin,
        "GET",
        &format!("{dated}?response-expires=0"),
        &[],
        b"",
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "data"));
    assert_eq!(r.header("expires"), Some("0"));
    // What it does not take, as README says: a raw UTF-8 file name (400, nothing stored), and
    // an RFC 2047 word it keeps decoded.
    let named = format!("/{bucket}/named");
    let raw = [(
        "content-disposition",
        "attachment; filename=\"Übersicht.pdf\"",
    )];
    let r = as_user(&gw, admin, "PUT", &named, &raw, b"data").await;
    r.assert_hcp_error(400, "InvalidArgument");
    assert_eq!(
        as_user(&gw, admin, "HEAD", &named, &[], b"").await.status,
        404
    );
    let word = [("x-amz-meta-note", "=?UTF-8?B?aGk=?=")];
    let r = as_user(&gw, admin, "PUT", &named, &word, b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, admin, "HEAD", &named, &[], b"").await;
    assert_eq!(r.header("x-amz-meta-note"), Some("hi"));
}

/// A multi-object delete's conditions on an entry (S3's `ETag`, `LastModifiedTime`, `Size`)
/// are evaluated by AWS alone: the store (and MinIO, RGW) would delete the object whatever it
/// is now. Refused whole, 501, nothing deleted (before: 200, the changed object deleted).
#[tokio::test]
async fn a_conditional_multi_delete_is_not_taken_for_a_plain_one() {
    let (gw, _dir) = on_the_store().await;
    let bucket = gw.with_bucket("conditional-delete").await;
    let admin = (USER, PASSWORD);
    let target = format!("/{bucket}/k");
    let r = as_user(&gw, admin, "PUT", &target, &[], b"v2").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let stale = format!(
        "\"{}\"",
        hex::encode(<md5::Md5 as md5::Digest>::digest(b"v1"))
    );
    for condition in [
        format!("<ETag>{stale}</ETag>"),
        "<LastModifiedTime>2020-01-01T00:00:00Z</LastModifiedTime>".to_string(),
        "<Size>1</Size>".to_string(),
    ] {
        let doc = format!("<Delete><Object><Key>k</Key>{condition}</Object></Delete>");
        let r = multi_delete(&gw, admin, &bucket, &doc).await;
        r.assert_hcp_error(501, "NotImplemented");
        let r = as_user(&gw, admin, "HEAD", &target, &[], b"").await;
        assert_eq!(r.status, 200, "{condition}: deleted");
    }
}

/// The store's documents (written by s3s, each element's children in alphabetical order) are
/// answered in HCP's order, as the manual's examples show it: the owner before the bucket list,
/// a listing's fields before its entries, an entry's `Key` first, an owner's `ID` before its
/// `DisplayName`, a delete's `Key` before its marker, an upload's parties after its id.
#[tokio::test]
async fn the_store_s_documents_are_in_hcp_s_order() {
    let (gw, _dir) = on_the_store().await;
    let bucket = gw.with_bucket("in-order").await;
    let admin = (USER, PASSWORD);
    let enabled = aws_sdk_s3::types::BucketVersioningStatus::Enabled;
    set_versioning(&gw.client(), &bucket, enabled).await;
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/k"), &[], b"x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let in_order = |text: &str, names: &[&str]| {
        let mut at = 0;
        for name in names {
            let found = text[at..].find(name).map(|i| at + i);
            at = found.unwrap_or_else(|| panic!("{name} out of order in {text}"));
        }
    };
    let get = |target: String| {
        let gw = &gw;
        async move { as_user(gw, admin, "GET", &target, &[], b"").await.text() }
    };
    let listed = get("/".into()).await;
    in_order(
        &listed,
        &[
            "<Owner><ID>",
            "<DisplayName>",
            "<Buckets><Bucket><Name>",
            "<CreationDate>",
        ],
    );
    let entry = [
        "<Contents><Key>k</Key><LastModified>",
        "<ETag>",
        "<Size>",
        "<Owner><ID>",
        "<DisplayName>",
        "<StorageClass>",
    ];
    for query in ["", "?list-type=2&fetch-owner=true"] {
        let listed = get(format!("/{bucket}{query}")).await;
        in_order(
            &listed,
            &["<Name>", "<Prefix>", "<MaxKeys>", "<IsTruncated>"],
        );
        in_order(&listed, &entry);
    }
    let r = as_user(&gw, admin, "DELETE", &format!("/{bucket}/k"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let listed = get(format!("/{bucket}?versions")).await;
    in_order(
        &listed,
        &["<Name>", "<KeyMarker>", "<MaxKeys>", "<IsTruncated>"],
    );
    in_order(
        &listed,
        &["<DeleteMarker><Key>k</Key><VersionId>", "<IsLatest>true"],
    );
    in_order(
        &listed,
        &[
            "<Version><Key>k</Key><VersionId>",
            "<IsLatest>false",
            "<ETag>",
            "<Size>",
        ],
    );
    let doc = "<Delete><Object><Key>k</Key></Object></Delete>";
    let r = multi_delete(&gw, admin, &bucket, doc).await;
    in_order(
        &r.text(),
        &[
            "<Deleted><Key>k</Key>",
            "<DeleteMarker>true",
            "<DeleteMarkerVersionId>",
        ],
    );
    // An upload's parties, which the store leaves out, in their place too.
    let (id, _) = upload_parts(&gw.client(), &bucket, "m", &[1]).await;
    let parts = get(format!("/{bucket}/m?uploadId={id}")).await;
    in_order(
        &parts,
        &[
            "<UploadId>",
            "<Initiator><ID>",
            "<Owner><ID>",
            "<StorageClass>",
            "<Part>",
        ],
    );
    let uploads = get(format!("/{bucket}?uploads")).await;
    in_order(
        &uploads,
        &[
            "<Upload><Key>m</Key><UploadId>",
            "<Initiator>",
            "<Owner>",
            "<StorageClass>",
            "<Initiated>",
        ],
    );
}

/// s3s-fs keeps no versions and reads no version id: a DELETE naming one (but `null`) names no
/// version — HCP's 204, nothing deleted (before: the object deleted) —, and a multi-object
/// delete naming one is 501, nothing deleted.
#[tokio::test]
async fn s3s_fs_deletes_no_object_for_a_version_it_never_gave() {
    let Some((gw, _s3, bucket)) = start_with_bucket(Backend::S3sFs, "no-versions").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let target = format!("/{bucket}/k");
    let status = |method: &'static str, target: String| {
        let gw = &gw;
        async move { as_user(gw, admin, method, &target, &[], b"").await.status }
    };
    let r = as_user(&gw, admin, "PUT", &target, &[], b"kept").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        status("DELETE", format!("{target}?versionId=123")).await,
        204
    );
    assert_eq!(status("HEAD", target.clone()).await, 200);
    let doc = "<Delete><Object><Key>k</Key><VersionId>123</VersionId></Object></Delete>";
    let r = multi_delete(&gw, admin, &bucket, doc).await;
    r.assert_hcp_error(501, "NotImplemented");
    assert_eq!(status("HEAD", target.clone()).await, 200);
    assert_eq!(
        status("DELETE", format!("{target}?versionId=null")).await,
        204
    );
    assert_eq!(status("HEAD", target.clone()).await, 404);
    // (A bucket that is not there is still 404.)
    let missing = format!("/{}/k?versionId=123", unique_bucket("not-there"));
    let r = as_user(&gw, admin, "DELETE", &missing, &[], b"").await;
    r.assert_hcp_error(404, "NoSuchBucket");
}

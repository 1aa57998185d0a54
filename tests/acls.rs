//! HCP's ACLs grant access to its users (issue "HCP users own their buckets and objects"), on
//! the embedded store and on Ceph RGW, where the tenant keeps records: a grant to a user by
//! name or id lets that user — and no other — do what the permissions do not; a grant to
//! `all_users` opens an object to anonymous readers where the tenant lets ACLs admit them; an
//! object stored again does not inherit the grants of the one before. The backend's own view:
//! grants to users are the gateway's records, never the backend's ACL.

mod common;

use common::*;
use hcp_s3_gateway::config::{hcp_access_key, hcp_secret_key};

/// Bob and Carol may do anything in buckets of their own names only: in Alice's bucket
/// (`USER`'s), only what an ACL grants them.
const BOB: &str = "bob";
const CAROL: &str = "carol";

fn users_config() -> String {
    let mut text: String = [BOB, CAROL]
        .iter()
        .map(|u| {
            format!(
                r#"
[[users]]
username = "{u}"
password = "{PASSWORD}"
permissions = [{{ tenant = "t", buckets = "{u}-*", allow = ["all"] }}]
"#
            )
        })
        .collect();
    // Dave may create buckets of his name and change ACLs, nothing more: what he may do in
    // his buckets beyond that, he may as their owner.
    text.push_str(&format!(
        r#"
[[users]]
username = "{DAVE}"
password = "{PASSWORD}"
permissions = [{{ tenant = "t", buckets = "{DAVE}-*", allow = ["admin", "write-acl"] }}]

[[users]]
username = "{ERIN}"
password = "{PASSWORD}"
permissions = [{{ tenant = "t", buckets = "{DAVE}-*", allow = ["write-acl"] }}]
"#
    ));
    text
}

const DAVE: &str = "dave";

/// Erin may change ACLs in Dave's buckets, nothing more of her own.
const ERIN: &str = "erin";

/// A bucket's owner holds full control whatever its permissions lack (HCP), and may grant it.
#[tokio::test]
async fn owners_hold_and_grant_full_control() {
    let records = unique_bucket("gw-records");
    let Some(gw) = start_keeping_acls(Backend::Store, "", &records).await else {
        return;
    };
    let dave = gw.client_with(&hcp_access_key(DAVE), &hcp_secret_key(PASSWORD));
    let bucket = new_bucket(&dave, DAVE).await;
    dave.put_object()
        .bucket(&bucket)
        .key("k")
        .body(b"dave's".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(object_bytes(&dave, &bucket, "k").await, b"dave's");
    let grant = [("x-amz-grant-read", "emailAddress=bob")];
    let (status, body) = status_of(&gw, Some(DAVE), "PUT", &format!("/{bucket}?acl"), &grant).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&gw, Some(BOB), "GET", &format!("/{bucket}/k"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "dave's"));
    // Another user's bucket is not Dave's for all his write-acl.
    let other = new_bucket(&gw.client(), "alice").await;
    let (status, _) = status_of(&gw, Some(DAVE), "PUT", &format!("/{other}?acl"), &grant).await;
    assert_eq!(status, 403);
}

fn id_of(user: &str) -> String {
    hcp_s3_gateway::request::owners::Owner::named(&hcp_access_key(user), user).id
}

/// A gateway whose tenant keeps records and lets ACLs admit anonymous readers.
async fn start_keeping_acls(backend: Backend, prefix: &str, records: &str) -> Option<TestGateway> {
    let dir = tempfile::tempdir().unwrap();
    let entry = backend.config_entry(&dir.path().join("data"))?;
    let line = format!("bucket_prefix = \"{prefix}\"\n");
    let tenant = format!("{line}records_bucket = \"{records}\"\nanonymous_acls = true\n");
    let base = base_config(prefix).replacen(&line, &tenant, 1);
    let text = format!("{base}\n{}\n{entry}", users_config());
    Some(start_text(&text, dir, backend).await)
}

/// A gateway on the embedded store whose tenant keeps records (owners, ACLs' grants to users),
/// with the users of `users_config` and `more_users` (`[[users]]` sections).
async fn start_keeping_records_with_users(more_users: &str) -> TestGateway {
    let records = unique_bucket("gw-records");
    let dir = tempfile::tempdir().unwrap();
    let entry = Backend::Store
        .config_entry(&dir.path().join("data"))
        .unwrap();
    let line = "bucket_prefix = \"\"\n";
    let tenant = format!("{line}records_bucket = \"{records}\"\n");
    let base = base_config("").replacen(line, &tenant, 1);
    let text = format!("{base}\n{}\n{more_users}\n{entry}", users_config());
    start_text(&text, dir, Backend::Store).await
}

/// HCP's "authenticated users" of a tenant's ACLs are the tenant's own: a user granted nothing
/// in it (a user of another tenant) is not one of them — its key is unknown here,
/// InvalidAccessKeyId —, while the tenant's users are.
#[tokio::test]
async fn users_of_another_tenant_are_not_this_tenant_s_authenticated_users() {
    const OUTSIDER: &str = "outsider";
    const ACL_ONLY: &str = "acl-only";
    let outsider = format!(
        "[[users]]\nusername = \"{OUTSIDER}\"\npassword = \"{PASSWORD}\"\n\
         permissions = [{{ tenant = \"elsewhere\", allow = [\"all\"] }}]\n\
         [[users]]\nusername = \"{ACL_ONLY}\"\npassword = \"{PASSWORD}\"\npermissions = []\n"
    );
    let gw = start_keeping_records_with_users(&outsider).await;
    let alice = gw.client();
    let bucket = new_bucket(&alice, "alice").await;
    let object = format!("/{bucket}/k");
    let r = as_user(&gw, (USER, PASSWORD), "PUT", &object, &[], b"for t's users").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let acl = [("x-amz-acl", "authenticated-read")];
    let (status, body) = status_of(&gw, Some(USER), "PUT", &format!("{object}?acl"), &acl).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&gw, Some(BOB), "GET", &object, &[]).await;
    assert_eq!((status, body.as_str()), (200, "for t's users"));
    let r = as_user(&gw, (OUTSIDER, PASSWORD), "GET", &object, &[], b"").await;
    r.assert_hcp_error(403, "InvalidAccessKeyId");
    // A user of this tenant with no permissions at all is one of its users: ACLs admit it.
    let (status, body) = status_of(&gw, Some(ACL_ONLY), "GET", &object, &[]).await;
    assert_eq!((status, body.as_str()), (200, "for t's users"));
    // A grant cannot name the outsider: it is no user of this tenant (400, nothing changed).
    let named = [("x-amz-grant-read", "emailAddress=outsider")];
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "PUT",
        &format!("{object}?acl"),
        &named,
        b"",
    )
    .await;
    r.assert_hcp_error(400, "InvalidArgument");
    let r = as_user(&gw, (OUTSIDER, PASSWORD), "GET", &object, &[], b"").await;
    r.assert_hcp_error(403, "InvalidAccessKeyId");
    // Nor may the outsider write where the bucket's ACL lets t's users write.
    let acl = [("x-amz-acl", "public-read-write")];
    let (status, body) = status_of(&gw, Some(USER), "PUT", &format!("/{bucket}?acl"), &acl).await;
    assert_eq!(status, 200, "{body}");
    let planted = format!("/{bucket}/planted");
    let r = as_user(&gw, (OUTSIDER, PASSWORD), "PUT", &planted, &[], b"x").await;
    r.assert_hcp_error(403, "InvalidAccessKeyId");
    let (status, _) = status_of(&gw, Some(USER), "HEAD", &planted, &[]).await;
    assert_eq!(status, 404, "nothing was stored");
}

/// Grant headers as HCP reads them: a user name percent-encoded (the manual asks it of `&`,
/// `,`, `=` and non-ASCII characters) names that user; a grant header given twice is the
/// first one, the second granting nothing.
#[tokio::test]
async fn grant_headers_as_hcp_reads_them() {
    const RD: &str = "r&d";
    const JOSE: &str = "josé";
    let named: String = [RD, JOSE]
        .iter()
        .map(|u| {
            format!("[[users]]\nusername = \"{u}\"\npassword = \"{PASSWORD}\"\npermissions = []\n")
        })
        .collect();
    let gw = start_keeping_records_with_users(&named).await;
    let bucket = new_bucket(&gw.client(), "alice").await;
    let object = format!("/{bucket}/k");
    let r = as_user(&gw, (USER, PASSWORD), "PUT", &object, &[], b"granted").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let acl = format!("{object}?acl");
    let grant = [(
        "x-amz-grant-read",
        "emailAddress=r%26d, emailAddress=\"jos%C3%A9\"",
    )];
    let (status, body) = status_of(&gw, Some(USER), "PUT", &acl, &grant).await;
    assert_eq!(status, 200, "{body}");
    for user in [RD, JOSE] {
        let (status, body) = status_of(&gw, Some(user), "GET", &object, &[]).await;
        assert_eq!((status, body.as_str()), (200, "granted"), "{user}");
    }
    // Given twice, the first: Bob may read, Carol may not.
    let twice = [
        ("x-amz-grant-read", "emailAddress=bob"),
        ("x-amz-grant-read", "emailAddress=carol"),
    ];
    let (status, body) = status_of(&gw, Some(USER), "PUT", &acl, &twice).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&gw, Some(BOB), "GET", &object, &[]).await;
    assert_eq!((status, body.as_str()), (200, "granted"));
    let (status, _) = status_of(&gw, Some(CAROL), "GET", &object, &[]).await;
    assert_eq!(status, 403);
    let (status, _) = status_of(&gw, Some(RD), "GET", &object, &[]).await;
    assert_eq!(status, 403, "the ACL was replaced");
}

/// The status of `user`'s (`None`: an anonymous) `method` of `target`, and its body.
async fn status_of(
    gw: &TestGateway,
    user: Option<&str>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let r = match user {
        Some(u) => as_user(gw, (u, PASSWORD), method, target, headers, b"").await,
        None => {
            let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
            let mut owned: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            if method == "PUT" {
                owned.push(("content-length".into(), "0".into()));
            }
            common::raw::send(&addr, method, target.as_bytes(), &owned, vec![]).await
        }
    };
    (r.status, r.text())
}

async fn acls_as_hcp_enforces_them(backend: Backend, prefix: &str) {
    let records = unique_bucket("gw-records");
    let Some(gw) = start_keeping_acls(backend, prefix, &records).await else {
        return;
    };
    let view = common::view::BackendView::of(&gw);
    let alice = gw.client();
    let bucket = new_bucket(&alice, "acl").await;
    let backend_bucket = format!("{prefix}{bucket}");
    for key in ["granted.txt", "private.txt", "public.txt"] {
        alice
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(format!("{key} by alice").into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    let path = |key: &str| format!("/{bucket}/{key}");
    let alice_user = Some(USER);

    // Nobody but Alice reads anything yet; a 403 says nothing of whether the object exists.
    for (who, key) in [
        (Some(BOB), "granted.txt"),
        (Some(BOB), "missing.txt"),
        (Some(CAROL), "private.txt"),
        (None, "public.txt"),
    ] {
        let (status, body) = status_of(&gw, who, "GET", &path(key), &[]).await;
        assert_eq!(status, 403, "{who:?} {key}: {body}");
        assert_hcp_error_body(&body, "AccessDenied");
    }

    // A bucket that is not there is HCP's 404 for anyone (creating it would tell as much).
    let (status, body) = status_of(&gw, Some(BOB), "GET", "/no-such-bucket-acl/k", &[]).await;
    assert_eq!(status, 404, "{body}");
    assert_hcp_error_body(&body, "NoSuchBucket");

    // Alice grants Bob read on one object, by user name: kept as a record, not at the backend.
    let (status, body) = status_of(
        &gw,
        alice_user,
        "PUT",
        &format!("{}?acl", path("granted.txt")),
        &[("x-amz-grant-read", "emailAddress=\"bob\"")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let kept = view.keys(&records).await;
    let acl_records: Vec<_> = kept
        .iter()
        .filter(|k| k.starts_with(&format!("acls/{backend_bucket}/")))
        .collect();
    assert_eq!(acl_records.len(), 1, "{kept:?}");
    assert!(!view.object_is_public(&backend_bucket, "granted.txt").await);

    // Bob reads that object and no other; nobody else reads it; the grant is read only.
    let (status, body) = status_of(&gw, Some(BOB), "GET", &path("granted.txt"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "granted.txt by alice"));
    let (status, _) = status_of(&gw, Some(BOB), "HEAD", &path("granted.txt"), &[]).await;
    assert_eq!(status, 200);
    // The read is pinned to the object judged: a condition naming another is 412 at once.
    let other = [("if-match", "\"another\"")];
    let (status, body) = status_of(&gw, Some(BOB), "GET", &path("granted.txt"), &other).await;
    assert_eq!(status, 412, "{body}");
    assert_hcp_error_body(&body, "PreconditionFailed");
    // (The client's own condition, no refusal by the permissions or the ACLs.)
    let failures = gw
        .metrics()
        .auth_failures
        .with_label_values(&["PreconditionFailed"]);
    assert_eq!(failures.get(), 0);
    for (who, method, target) in [
        (Some(BOB), "GET", path("private.txt")),
        (Some(BOB), "DELETE", path("granted.txt")),
        (Some(BOB), "GET", format!("{}?acl", path("granted.txt"))),
        (Some(BOB), "GET", format!("/{bucket}")),
        (Some(CAROL), "GET", path("granted.txt")),
        (None, "GET", path("granted.txt")),
    ] {
        let (status, body) = status_of(&gw, who, method, &target, &[]).await;
        assert_eq!(status, 403, "{who:?} {method} {target}: {body}");
        assert_hcp_error_body(&body, "AccessDenied");
    }
    assert!(view.object(&backend_bucket, "granted.txt").await.is_some());

    // What Bob may read he may copy into a bucket of his own; what he may not, he may not.
    let bob = gw.client_with(&hcp_access_key(BOB), &hcp_secret_key(PASSWORD));
    let own = new_bucket(&bob, BOB).await;
    bob.copy_object()
        .bucket(&own)
        .key("copy.txt")
        .copy_source(format!("{bucket}/granted.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        object_bytes(&bob, &own, "copy.txt").await,
        b"granted.txt by alice"
    );
    // (The copy is pinned to the object judged: a client's condition naming another is 412.)
    let granted_source = format!("/{bucket}/granted.txt");
    let (status, body) = status_of(
        &gw,
        Some(BOB),
        "PUT",
        &format!("/{own}/copy2.txt"),
        &[
            ("x-amz-copy-source", &granted_source),
            ("x-amz-copy-source-if-match", "\"another\""),
        ],
    )
    .await;
    assert_eq!(status, 412, "{body}");
    assert_hcp_error_body(&body, "PreconditionFailed");
    let source = format!("/{bucket}/private.txt");
    let (status, body) = status_of(
        &gw,
        Some(BOB),
        "PUT",
        &format!("/{own}/stolen.txt"),
        &[("x-amz-copy-source", &source)],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(view
        .object(&format!("{prefix}{own}"), "stolen.txt")
        .await
        .is_none());

    // The object's ACL shows the grant to Bob by his HCP user id and name.
    let acl = alice
        .get_object_acl()
        .bucket(&bucket)
        .key("granted.txt")
        .send()
        .await
        .unwrap();
    let to_bob: Vec<_> = acl
        .grants()
        .iter()
        .filter(|g| g.grantee().and_then(|g| g.id()) == Some(id_of(BOB).as_str()))
        .collect();
    assert_eq!(to_bob.len(), 1, "{acl:?}");
    assert_eq!(
        to_bob[0].grantee().unwrap().display_name(),
        Some(BOB),
        "{acl:?}"
    );
    assert_eq!(
        to_bob[0].permission(),
        Some(&aws_sdk_s3::types::Permission::Read)
    );

    // An ACL grants only what its author holds (HCP; else write-acl would be full control).
    let acl_of_granted = format!("{}?acl", path("granted.txt"));
    let bob_read_and_acl = [
        ("x-amz-grant-read", "emailAddress=\"bob\""),
        ("x-amz-grant-write-acp", "emailAddress=\"bob\""),
    ];
    let (status, _) = status_of(&gw, alice_user, "PUT", &acl_of_granted, &bob_read_and_acl).await;
    assert_eq!(status, 200);
    let before = view.keys(&records).await;
    for refused in [
        ("x-amz-grant-full-control", "emailAddress=bob"),
        ("x-amz-grant-write", "emailAddress=carol"),
        ("x-amz-acl", "public-read-write"),
    ] {
        let (status, body) = status_of(&gw, Some(BOB), "PUT", &acl_of_granted, &[refused]).await;
        assert_eq!(status, 403, "{refused:?}: {body}");
        assert_hcp_error_body(&body, "AccessDenied");
    }
    assert_eq!(view.keys(&records).await, before);
    assert!(!view.object_is_public(&backend_bucket, "granted.txt").await);
    let to_carol = [("x-amz-grant-read", "emailAddress=carol")];
    let (status, body) = status_of(&gw, Some(BOB), "PUT", &acl_of_granted, &to_carol).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = status_of(&gw, Some(CAROL), "GET", &path("granted.txt"), &[]).await;
    assert_eq!(status, 200, "what Bob held he could pass on");
    let (status, _) = status_of(&gw, Some(BOB), "GET", &path("granted.txt"), &[]).await;
    assert_eq!(status, 403, "a new ACL replaces the old whole");
    let (status, _) = status_of(&gw, alice_user, "PUT", &acl_of_granted, &bob_read_and_acl).await;
    assert_eq!(status, 200);

    // A refused ACL change changes nothing: the grants to users stay (a body that does not
    // parse, one granting to no user of the tenant).
    let before = view.keys(&records).await;
    for (body, code) in [
        (&b"<AccessControlPolicy><AccessControlList>"[..], "MalformedXML"),
        (b"<AccessControlPolicy><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"AmazonCustomerByEmail\"><EmailAddress>nobody-here</EmailAddress></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>", "InvalidArgument"),
    ] {
        let (status, answer) =
            as_user_with_body(&gw, USER, "PUT", &acl_of_granted, &[], body).await;
        assert_eq!(status, 400, "{answer}");
        assert_hcp_error_body(&answer, code);
    }
    assert_eq!(view.keys(&records).await, before);
    let (status, _) = status_of(&gw, Some(BOB), "GET", &path("granted.txt"), &[]).await;
    assert_eq!(status, 200, "Bob's grant stayed");

    // A grant to all users opens one object to anonymous readers — that one only.
    alice
        .put_object_acl()
        .bucket(&bucket)
        .key("public.txt")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let (status, body) = status_of(&gw, None, "GET", &path("public.txt"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "public.txt by alice"));
    // (As S3: an anonymous read sets none of its answer's headers — a public object served
    // as another type than it was stored with.)
    let typed = format!("{}?response-content-type=text%2Fhtml", path("public.txt"));
    let (status, body) = status_of(&gw, None, "GET", &typed, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_hcp_error_body(&body, "InvalidArgument");
    let (status, _) = status_of(&gw, Some(CAROL), "GET", &path("public.txt"), &[]).await;
    assert_eq!(status, 200, "all users are authenticated users too");
    for key in ["private.txt", "granted.txt"] {
        let (status, _) = status_of(&gw, None, "GET", &path(key), &[]).await;
        assert_eq!(status, 403, "{key}");
    }
    // Refused by the ACLs, an anonymous client holds no connection: it closes after the 403.
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
        path("private.txt")
    );
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut c, head.as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut c, &mut answer);
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(read.is_ok(), "the connection stayed open: {answer}");
    assert!(answer.starts_with("http/1.1 403") && answer.contains("\r\nconnection: close\r\n"));
    let (status, _) = status_of(&gw, None, "PUT", &path("public.txt"), &[]).await;
    assert_eq!(status, 403, "read is not write");

    // A grant to a user by user id in an ACL body, on the bucket: Carol reads every object
    // of it and lists it, and still writes nothing.
    let grant = aws_sdk_s3::types::Grant::builder()
        .grantee(
            aws_sdk_s3::types::Grantee::builder()
                .r#type(aws_sdk_s3::types::Type::CanonicalUser)
                .id(id_of(CAROL))
                .build()
                .unwrap(),
        )
        .permission(aws_sdk_s3::types::Permission::Read)
        .build();
    let current = alice.get_bucket_acl().bucket(&bucket).send().await.unwrap();
    let mut grants = current.grants().to_vec();
    grants.push(grant);
    alice
        .put_bucket_acl()
        .bucket(&bucket)
        .access_control_policy(
            aws_sdk_s3::types::AccessControlPolicy::builder()
                .set_owner(current.owner().cloned())
                .set_grants(Some(grants))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(view
        .keys(&records)
        .await
        .contains(&format!("acls/{backend_bucket}")));
    let carol = gw.client_with(&hcp_access_key(CAROL), &hcp_secret_key(PASSWORD));
    let listed = carol
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 3);
    assert_eq!(
        object_bytes(&carol, &bucket, "private.txt").await,
        b"private.txt by alice"
    );
    let (status, _) = status_of(&gw, Some(CAROL), "PUT", &path("new.txt"), &[]).await;
    assert_eq!(status, 403);
    assert!(view.object(&backend_bucket, "new.txt").await.is_none());
    let (status, _) = status_of(&gw, Some(BOB), "GET", &path("private.txt"), &[]).await;
    assert_eq!(status, 403, "Carol's grant is hers");

    // Stored again, the object is another object: Bob's grant stayed with the one before.
    alice
        .put_object()
        .bucket(&bucket)
        .key("granted.txt")
        .body(b"the second granted.txt".to_vec().into())
        .send()
        .await
        .unwrap();
    let (status, _) = status_of(&gw, Some(BOB), "GET", &path("granted.txt"), &[]).await;
    assert_eq!(status, 403);

    // A grant in the PUT itself: Bob reads the new object at once.
    let (status, body) = as_user_with_body(
        &gw,
        USER,
        "PUT",
        &path("for-bob.txt"),
        &[("x-amz-grant-full-control", &format!("id={}", id_of(BOB)))],
        b"for bob",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&gw, Some(BOB), "GET", &path("for-bob.txt"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "for bob"));
    let (status, _) = status_of(&gw, Some(BOB), "DELETE", &path("for-bob.txt"), &[]).await;
    assert_eq!(status, 204, "full control deletes");
    deletes_by_object_acls(&gw, &bucket, &backend_bucket).await;

    // Removing the ACL (x-amz-acl: private) removes the bucket's record: Carol is out again.
    let (status, _) = status_of(
        &gw,
        alice_user,
        "PUT",
        &format!("/{bucket}?acl"),
        &[("x-amz-acl", "private")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!view
        .keys(&records)
        .await
        .contains(&format!("acls/{backend_bucket}")));
    let (status, _) = status_of(&gw, Some(CAROL), "GET", &path("private.txt"), &[]).await;
    assert_eq!(status, 403);

    // The bucket deleted, its objects' records go too: a bucket created again under the name
    // finds none (an object there with the same bytes would be the same instance).
    let listed = alice
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    for object in listed.contents() {
        let key = object.key().unwrap();
        alice
            .delete_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    alice.delete_bucket().bucket(&bucket).send().await.unwrap();
    let left = view.keys(&records).await;
    assert!(
        !left
            .iter()
            .any(|k| k.starts_with(&format!("acls/{backend_bucket}"))),
        "{left:?}"
    );
}

/// A multi-object delete that the bucket does not allow deletes the objects whose owner or ACL
/// lets the caller delete them (HCP: "delete permission for the bucket containing the objects
/// or for the objects themselves"); the others — one not there among them — are each
/// `AccessDenied` in the answer and kept at the backend.
async fn deletes_by_object_acls(gw: &TestGateway, bucket: &str, backend_bucket: &str) {
    let view = common::view::BackendView::of(gw);
    let path = |key: &str| format!("/{bucket}/{key}");
    let full_control = format!("id={}", id_of(BOB));
    for key in ["bob-may.txt", "bob-may-not.txt"] {
        let grant = match key {
            "bob-may.txt" => ("x-amz-grant-full-control", full_control.as_str()),
            _ => ("x-amz-grant-read", full_control.as_str()),
        };
        let (status, body) = as_user_with_body(gw, USER, "PUT", &path(key), &[grant], b"x").await;
        assert_eq!(status, 200, "{body}");
    }
    let delete = |keys: &[&str]| {
        let objects: String = keys
            .iter()
            .map(|k| format!("<Object><Key>{k}</Key></Object>"))
            .collect();
        format!("<Delete>{objects}</Delete>").into_bytes()
    };
    let doc = delete(&[
        "bob-may.txt",
        "bob-may-not.txt",
        "private.txt",
        "absent.txt",
    ]);
    let md5 = content_md5(&doc);
    let target = format!("/{bucket}?delete");
    let headers = [("content-md5", md5.as_str())];
    let (status, body) = as_user_with_body(gw, BOB, "POST", &target, &headers, &doc).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(inner(&body, "Deleted"), "<Key>bob-may.txt</Key>", "{body}");
    for key in ["bob-may-not.txt", "private.txt", "absent.txt"] {
        let error = format!("<Error><Key>{key}</Key><Code>AccessDenied</Code>");
        assert!(body.contains(&error), "{body}");
    }
    assert!(view.object(backend_bucket, "bob-may.txt").await.is_none());
    for key in ["bob-may-not.txt", "private.txt"] {
        assert!(view.object(backend_bucket, key).await.is_some(), "{key}");
    }
    assert!(view.object(backend_bucket, "absent.txt").await.is_none());
    // Nothing it may delete: answered without the backend, nothing deleted.
    let doc = delete(&["bob-may-not.txt"]);
    let md5 = content_md5(&doc);
    let headers = [("content-md5", md5.as_str())];
    let (status, body) = as_user_with_body(gw, CAROL, "POST", &target, &headers, &doc).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(!body.contains("<Deleted>"), "{body}");
    assert!(view
        .object(backend_bucket, "bob-may-not.txt")
        .await
        .is_some());
    // An anonymous caller the bucket refuses is refused whole, its connection closed: the
    // objects' HEADs and ACLs are not its to ask for.
    let head = format!(
        "POST {target} HTTP/1.1\r\nhost: {}\r\ncontent-md5: {md5}\r\ncontent-length: {}\r\n\r\n",
        gw.addr(),
        doc.len()
    );
    let mut c = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut c, &[head.as_bytes(), &doc].concat())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut c, &mut answer);
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .expect("closed after the answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 403"), "{answer}");
    assert!(answer.contains("<code>accessdenied</code>"), "{answer}");
    assert!(view
        .object(backend_bucket, "bob-may-not.txt")
        .await
        .is_some());
}

/// `user`'s `method` of `target` with a body: its status and answer.
async fn as_user_with_body(
    gw: &TestGateway,
    user: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let r = as_user(gw, (user, PASSWORD), method, target, headers, body).await;
    (r.status, r.text())
}

#[tokio::test]
async fn acls_on_the_embedded_store() {
    acls_as_hcp_enforces_them(Backend::Store, "").await;
}

#[tokio::test]
async fn acls_on_rgw() {
    acls_as_hcp_enforces_them(Backend::Rgw, "acl-").await;
}

/// Where the tenant keeps no records, a grant to a user cannot be kept: 501, nothing stored.
#[tokio::test]
async fn without_records_a_grant_to_a_user_is_refused() {
    let Some(gw) = start_with(Backend::Store, "", &users_config()).await else {
        return;
    };
    let bucket = new_bucket(&gw.client(), "norec").await;
    let (status, body) = as_user_with_body(
        &gw,
        USER,
        "PUT",
        &format!("/{bucket}/k"),
        &[("x-amz-grant-read", "emailAddress=bob")],
        b"data",
    )
    .await;
    assert_eq!(status, 501, "{body}");
    assert_hcp_error_body(&body, "NotImplemented");
    let view = common::view::BackendView::of(&gw);
    assert!(view.object(&bucket, "k").await.is_none());
}

/// Where the tenant keeps no records, an ACL still grants only what its author holds (HCP's
/// rule does not depend on records): Dave, who may administer and change ACLs but neither read
/// nor write, cannot open his bucket to all users, by header or by document; what he holds he
/// may grant. The backend's own ACL stays private.
#[tokio::test]
async fn without_records_an_acl_grants_only_what_its_author_holds() {
    let Some(gw) = start_with(Backend::Store, "", &users_config()).await else {
        return;
    };
    let dave = gw.client_with(&hcp_access_key(DAVE), &hcp_secret_key(PASSWORD));
    let bucket = new_bucket(&dave, DAVE).await;
    let view = common::view::BackendView::of(&gw);
    let target = format!("/{bucket}?acl");
    let open = [("x-amz-acl", "public-read-write")];
    let (status, body) = as_user_with_body(&gw, DAVE, "PUT", &target, &open, b"").await;
    assert_eq!(status, 403, "{body}");
    assert_hcp_error_body(&body, "AccessDenied");
    let (_, shown) = as_user_with_body(&gw, USER, "GET", &target, &[], b"").await;
    let doc = format!(
        "<AccessControlPolicy><Owner><ID>{}</ID></Owner><AccessControlList><Grant>\
         <Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">\
         <URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>\
         <Permission>WRITE</Permission></Grant></AccessControlList></AccessControlPolicy>",
        inner(&shown, "ID")
    );
    let (status, body) = as_user_with_body(&gw, DAVE, "PUT", &target, &[], doc.as_bytes()).await;
    assert_eq!(status, 403, "{body}");
    assert_hcp_error_body(&body, "AccessDenied");
    assert!(!view.bucket_is_public(&bucket).await);
    // Alice holds every permission: she may.
    let (status, body) = as_user_with_body(&gw, USER, "PUT", &target, &open, b"").await;
    assert_eq!(status, 200, "{body}");
    assert!(view.bucket_is_public(&bucket).await);
}

/// Bob's PUT `acl_target` of `doc`, its head sent and its `100 Continue` read: the body waits
/// for [`finish_held_change`], as a slow client's would.
async fn held_acl_change(gw: &TestGateway, acl_target: &str, doc: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (ak, sk) = keys(BOB, PASSWORD);
    let addr = gw.addr();
    let hash = hcp_s3_gateway::sig::v4::sha256_hex(doc.as_bytes());
    let length = doc.len().to_string();
    let headers = [
        ("content-length", length.as_str()),
        ("expect", "100-continue"),
        ("connection", "close"),
    ];
    let signed =
        common::raw::V4::now(&ak, &sk, &addr, &hash).sign("PUT", acl_target.as_bytes(), &headers);
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = common::raw::request_head("PUT", acl_target.as_bytes(), &signed);
    stream.write_all(&head).await.unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream
}

/// Sends a [`held_acl_change`]'s body; its answer.
async fn finish_held_change(
    stream: &mut tokio::net::TcpStream,
    doc: &[u8],
) -> common::raw::RawResponse {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(doc).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    common::raw::parse(&raw)
}

/// A gateway on RGW (`rgw`, its endpoint) reached through `front`, whose tenant keeps records
/// (and `more` of the tenant's settings), with the users of `users_config`.
async fn keeping_acls_behind(
    front: std::net::SocketAddr,
    rgw: &str,
    prefix: &str,
    more: &str,
) -> TestGateway {
    keeping_acls_in(&unique_bucket("gw-records"), front, rgw, (prefix, more)).await
}

/// [`keeping_acls_behind`] with its records bucket named.
async fn keeping_acls_in(
    records: &str,
    front: std::net::SocketAddr,
    rgw: &str,
    (prefix, more): (&str, &str),
) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let entry = Backend::Rgw
        .config_entry(&dir.path().join("data"))
        .unwrap()
        .replace(rgw, &format!("http://{front}"));
    let prefix_line = format!("bucket_prefix = \"{prefix}\"\n");
    let tenant = format!("{prefix_line}records_bucket = \"{records}\"\n{more}");
    let base = base_config(prefix).replacen(&prefix_line, &tenant, 1);
    let text = format!("{base}\n{}\n{entry}", users_config());
    start_text(&text, dir, Backend::Rgw).await
}

/// A gateway keeping records, and a new bucket of Alice's (`USER`'s) whose ACL lets
/// `writers` (an `x-amz-grant-write` value) write in it.
async fn bucket_written_by(
    backend: Backend,
    prefix: &str,
    tag: &str,
    writers: &str,
) -> Option<(TestGateway, String)> {
    let records = unique_bucket("gw-records");
    let gw = start_keeping_acls(backend, prefix, &records).await?;
    let bucket = new_bucket(&gw.client(), tag).await;
    let grant = [("x-amz-grant-write", writers)];
    let (status, body) = status_of(&gw, Some(USER), "PUT", &format!("/{bucket}?acl"), &grant).await;
    assert_eq!(status, 200, "{body}");
    Some((gw, bucket))
}

/// The text of the first `tag` element in `s` (empty where there is none).
fn inner(s: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    s.find(&open)
        .and_then(|i| {
            let rest = &s[i + open.len()..];
            rest.find(&format!("</{tag}>"))
                .map(|j| rest[..j].to_string())
        })
        .unwrap_or_default()
}

/// `(key, owner id, owner name)` of each `entry` element (`Contents`, `Version`) of a listing.
fn owners_listed(xml: &str, entry: &str) -> Vec<(String, String, String)> {
    xml.split(&format!("<{entry}>"))
        .skip(1)
        .map(|e| {
            let e = &e[..e.find(&format!("</{entry}>")).unwrap_or(e.len())];
            let owner = inner(e, "Owner");
            (
                inner(e, "Key"),
                inner(&owner, "ID"),
                inner(&owner, "DisplayName"),
            )
        })
        .collect()
}

/// HCP's object owners: a user storing an object in another's bucket owns it (and holds
/// full control of it whatever its permissions), an anonymous writer's object has no owner,
/// a copy is its copier's; listings and ACLs name them; the owner is kept in metadata the
/// client can neither set nor see, and a copy keeps its source's metadata all the same.
async fn objects_are_owned_by_their_writers(backend: Backend, prefix: &str) {
    // Alice lets Bob and anonymous writers store objects in her bucket; nothing more.
    let all_users = "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"";
    let writers = format!("emailAddress=\"bob\", {all_users}");
    let Some((gw, bucket)) = bucket_written_by(backend, prefix, "own", &writers).await else {
        return;
    };
    let view = common::view::BackendView::of(&gw);
    let alice = gw.client();
    let backend_bucket = format!("{prefix}{bucket}");
    let path = |key: &str| format!("/{bucket}/{key}");
    let (status, body) = as_user_with_body(
        &gw,
        USER,
        "PUT",
        &path("a.txt"),
        &[("x-amz-meta-color", "red")],
        b"alice's",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Bob stores one, giving its bucket's owner read (he may: he owns what he stores).
    let bob_put = [
        ("x-amz-acl", "bucket-owner-read"),
        ("x-amz-meta-shape", "round"),
        ("content-type", "text/plain"),
    ];
    let (status, body) =
        as_user_with_body(&gw, BOB, "PUT", &path("b.txt"), &bob_put, b"bob's").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&gw, None, "PUT", &path("anon.txt"), &[]).await;
    assert_eq!(status, 200, "{body}");

    // Nobody sets the owner entry himself: 501, nothing stored.
    let forged = [("x-amz-meta-hcp-gateway-owner", id_of(USER))];
    let forged: Vec<(&str, &str)> = forged.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (status, body) =
        as_user_with_body(&gw, BOB, "PUT", &path("forged.txt"), &forged, b"x").await;
    assert_eq!(status, 501, "{body}");
    assert_hcp_error_body(&body, "NotImplemented");
    assert!(view.object(&backend_bucket, "forged.txt").await.is_none());

    // Bob owns b.txt: he reads it and its ACL (his permissions give him nothing here); not
    // Alice's object.
    let (status, body) = status_of(&gw, Some(BOB), "GET", &path("b.txt"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "bob's"));
    let (status, body) = status_of(&gw, Some(BOB), "GET", &path("a.txt"), &[]).await;
    assert_eq!(status, 403, "{body}");
    assert_hcp_error_body(&body, "AccessDenied");
    let (status, acl) = status_of(
        &gw,
        Some(BOB),
        "GET",
        &format!("{}?acl", path("b.txt")),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{acl}");
    let owner = inner(&acl, "Owner");
    assert!(owner.contains(&format!("<ID>{}</ID>", id_of(BOB))), "{acl}");
    assert!(owner.contains("<DisplayName>bob</DisplayName>"), "{acl}");
    // bucket-owner-read: Alice reads it by a grant to her, kept by the gateway.
    assert!(acl.contains(&format!("<ID>{}</ID>", id_of(USER))), "{acl}");
    assert!(acl.contains("<Permission>READ</Permission>"), "{acl}");
    assert!(!view.object_is_public(&backend_bucket, "b.txt").await);
    // A form's `acl` field alike: Bob's form gives the bucket's owner read, kept so.
    let (ak, sk) = (hcp_access_key(BOB), hcp_secret_key(PASSWORD));
    let fields = [("key", "formed.txt"), ("acl", "bucket-owner-read")];
    let form = common::raw::signed_form_body((&ak, &sk), &bucket, (&fields, &[]), b"formed");
    let r = common::raw::post_multipart(&gw.addr(), &bucket, &form).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let target = format!("{}?acl", path("formed.txt"));
    let (status, acl) = status_of(&gw, Some(BOB), "GET", &target, &[]).await;
    assert_eq!(status, 200, "{acl}");
    assert!(acl.contains(&format!("<ID>{}</ID>", id_of(USER))), "{acl}");
    assert!(!view.object_is_public(&backend_bucket, "formed.txt").await);
    // A grant field to a user alike (a PUT's grant header is kept so): Carol reads it.
    let fields = [
        ("key", "for-carol.txt"),
        ("x-amz-grant-read", "emailAddress=carol"),
    ];
    let form = common::raw::signed_form_body((&ak, &sk), &bucket, (&fields, &[]), b"carol's");
    let r = common::raw::post_multipart(&gw.addr(), &bucket, &form).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let (status, body) = status_of(&gw, Some(CAROL), "GET", &path("for-carol.txt"), &[]).await;
    assert_eq!((status, body.as_str()), (200, "carol's"));
    let (status, _) = status_of(&gw, Some(CAROL), "GET", &path("formed.txt"), &[]).await;
    assert_eq!(status, 403);
    assert!(
        !view
            .object_is_public(&backend_bucket, "for-carol.txt")
            .await
    );
    let (status, _) = status_of(&gw, Some(BOB), "DELETE", &path("for-carol.txt"), &[]).await;
    assert_eq!(status, 204);
    // A form that writes over an object the same bytes (the same ETag) is its new owner in
    // listings, as a PUT is — not the owner a listing remembered by that ETag.
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "PUT",
        &path("same.txt"),
        &[],
        b"same",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let owner_of_same = || async {
        let (status, listing) = status_of(&gw, Some(USER), "GET", &format!("/{bucket}"), &[]).await;
        assert_eq!(status, 200, "{listing}");
        let listed = owners_listed(&listing, "Contents");
        listed
            .into_iter()
            .find(|(k, _, _)| k == "same.txt")
            .map(|(_, _, n)| n)
    };
    assert_eq!(owner_of_same().await.as_deref(), Some(USER));
    let fields = [("key", "same.txt")];
    let form = common::raw::signed_form_body((&ak, &sk), &bucket, (&fields, &[]), b"same");
    let r = common::raw::post_multipart(&gw.addr(), &bucket, &form).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(owner_of_same().await.as_deref(), Some(BOB));
    let r = as_user(&gw, (USER, PASSWORD), "DELETE", &path("same.txt"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());

    // The owner entry is at the backend, and never in an answer's headers.
    let meta = view.metadata(&backend_bucket, "b.txt").await;
    if let Some(meta) = meta {
        assert!(
            meta.contains(&("hcp-gateway-owner".to_string(), id_of(BOB))),
            "{meta:?}"
        );
    }
    let head = as_user(&gw, (BOB, PASSWORD), "HEAD", &path("b.txt"), &[], b"").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-amz-meta-shape"), Some("round"));
    assert!(
        head.header("x-amz-meta-hcp-gateway-owner").is_none(),
        "{:?}",
        head.headers
    );

    // Alice copies Bob's object: the copy is hers, with the source's metadata.
    alice
        .copy_object()
        .bucket(&bucket)
        .key("copy.txt")
        .copy_source(format!("{bucket}/b.txt"))
        .send()
        .await
        .unwrap();
    let copied = alice
        .head_object()
        .bucket(&bucket)
        .key("copy.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(copied.content_type(), Some("text/plain"));
    let metadata = copied.metadata().cloned().unwrap_or_default();
    assert_eq!(metadata.get("shape").map(String::as_str), Some("round"));
    assert!(!metadata.contains_key("hcp-gateway-owner"), "{metadata:?}");
    let (status, body) = status_of(&gw, Some(BOB), "GET", &path("copy.txt"), &[]).await;
    assert_eq!(status, 403, "{body}");
    // The directive in any spelling is one the gateway reads and sends alike (the embedded
    // store reads only `REPLACE` as REPLACE: `replace` would have carried Bob's owner entry).
    for directive in ["replace", " Replace", "copy"] {
        let source = format!("/{bucket}/b.txt");
        let headers = [
            ("x-amz-copy-source", source.as_str()),
            ("x-amz-metadata-directive", directive),
        ];
        let copy = path("spelled.txt");
        let (got, body) = as_user_with_body(&gw, USER, "PUT", &copy, &headers, b"").await;
        assert_eq!(got, 200, "{directive}: {body}");
        let (status, body) = status_of(&gw, Some(BOB), "GET", &copy, &[]).await;
        assert_eq!(status, 403, "{directive}: the copy is Alice's: {body}");
        let (status, _) = status_of(&gw, Some(USER), "DELETE", &copy, &[]).await;
        assert_eq!(status, 204);
    }
    let bad = [
        ("x-amz-copy-source", format!("/{bucket}/b.txt")),
        ("x-amz-metadata-directive", "MOVE".to_string()),
    ];
    let bad: Vec<(&str, &str)> = bad.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (got, body) = as_user_with_body(&gw, USER, "PUT", &path("moved.txt"), &bad, b"").await;
    assert_eq!(got, 400, "{body}");
    assert_hcp_error_body(&body, "InvalidArgument");
    let (status, _) = status_of(&gw, Some(USER), "HEAD", &path("moved.txt"), &[]).await;
    assert_eq!(status, 404, "nothing stored");

    // A multipart upload is its initiator's, and so is the object it makes — in Bob's bucket.
    let bob = gw.client_with(&hcp_access_key(BOB), &hcp_secret_key(PASSWORD));
    let bobs = new_bucket(&bob, BOB).await;
    let up = alice
        .create_multipart_upload()
        .bucket(&bobs)
        .key("multi.txt")
        .send()
        .await
        .unwrap();
    let upload_id = up.upload_id().unwrap();
    let part = alice
        .upload_part()
        .bucket(&bobs)
        .key("multi.txt")
        .upload_id(upload_id)
        .part_number(1)
        .body(b"in parts".to_vec().into())
        .send()
        .await
        .unwrap();
    let parts = alice
        .list_parts()
        .bucket(&bobs)
        .key("multi.txt")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    let raw = format!("/{bobs}/multi.txt?uploadId={upload_id}");
    let (_, listed) = status_of(&gw, Some(USER), "GET", &raw, &[]).await;
    assert_eq!(
        parts.initiator().and_then(|i| i.id()),
        Some(id_of(USER).as_str()),
        "{listed}"
    );
    assert_eq!(parts.owner().and_then(|o| o.display_name()), Some(USER));
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        )
        .build();
    alice
        .complete_multipart_upload()
        .bucket(&bobs)
        .key("multi.txt")
        .upload_id(upload_id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    let (status, listing) = status_of(&gw, Some(BOB), "GET", &format!("/{bobs}"), &[]).await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(
        owners_listed(&listing, "Contents"),
        [("multi.txt".to_string(), id_of(USER), USER.to_string())]
    );

    // Listings name each object's owner by HCP user id and name; anonymous objects nobody.
    let expected = |listed: Vec<(String, String, String)>| {
        let mut listed = listed;
        listed.sort();
        let want = [
            ("a.txt", id_of(USER), USER),
            ("anon.txt", "nobody".to_string(), "nobody"),
            ("b.txt", id_of(BOB), BOB),
            ("copy.txt", id_of(USER), USER),
            ("formed.txt", id_of(BOB), BOB),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(k, i, n)| (k.to_string(), i.clone(), n.to_string()))
            .collect();
        assert_eq!(listed, want);
    };
    let (status, v1) = status_of(&gw, Some(USER), "GET", &format!("/{bucket}"), &[]).await;
    assert_eq!(status, 200, "{v1}");
    expected(owners_listed(&v1, "Contents"));
    let target = format!("/{bucket}?list-type=2&fetch-owner=true");
    let (status, v2) = status_of(&gw, Some(USER), "GET", &target, &[]).await;
    assert_eq!(status, 200, "{v2}");
    expected(owners_listed(&v2, "Contents"));
    let target = format!("/{bucket}?versions");
    let (status, versions) = status_of(&gw, Some(USER), "GET", &target, &[]).await;
    assert_eq!(status, 200, "{versions}");
    expected(owners_listed(&versions, "Version"));
    assert!(!v1.contains("hcp-gateway"), "{v1}");
}

#[tokio::test]
async fn object_owners_on_the_embedded_store() {
    objects_are_owned_by_their_writers(Backend::Store, "").await;
}

#[tokio::test]
async fn object_owners_on_rgw() {
    objects_are_owned_by_their_writers(Backend::Rgw, "own-").await;
}

/// A bucket of Alice's that Bob may write in (`bucket_written_by`), whose `/k` `writer` wrote
/// (`body`) before its versioning was enabled: its null version. The gateway, bucket and path.
async fn null_version_of(
    backend: Backend,
    prefix: &str,
    tag: &str,
    writer: &str,
    body: &[u8],
) -> Option<(TestGateway, String, String)> {
    let (gw, bucket) = bucket_written_by(backend, prefix, tag, "emailAddress=\"bob\"").await?;
    let path = format!("/{bucket}/k");
    let (status, text) = as_user_with_body(&gw, writer, "PUT", &path, &[], body).await;
    assert_eq!(status, 200, "{text}");
    set_versioning(
        &gw.client(),
        &bucket,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    Some((gw, bucket, path))
}

/// A version listing's `null` version (written before versioning was enabled) names its own
/// writer, not the current object's, which has the same bytes (and so the same ETag): it was
/// read as the current object.
async fn a_null_version_names_its_own_owner(backend: Backend, prefix: &str) {
    let Some((gw, bucket, path)) = null_version_of(backend, prefix, "nullown", BOB, b"same").await
    else {
        return;
    };
    let (status, body) = as_user_with_body(&gw, USER, "PUT", &path, &[], b"same").await;
    assert_eq!(status, 200, "{body}");
    let (status, versions) =
        as_user_with_body(&gw, USER, "GET", &format!("/{bucket}?versions"), &[], b"").await;
    assert_eq!(status, 200, "{versions}");
    // Each version's owner, by its version id.
    let mut listed: Vec<(bool, String)> = versions
        .split("<Version>")
        .skip(1)
        .map(|v| {
            (
                inner(v, "VersionId") == "null",
                inner(&inner(v, "Owner"), "ID"),
            )
        })
        .collect();
    listed.sort();
    let expected = [(false, id_of(USER)), (true, id_of(BOB))];
    assert_eq!(listed, expected, "{versions}");
}

#[tokio::test]
async fn a_null_version_names_its_own_owner_on_the_embedded_store() {
    a_null_version_names_its_own_owner(Backend::Store, "").await;
}

#[tokio::test]
async fn a_null_version_names_its_own_owner_on_rgw() {
    a_null_version_names_its_own_owner(Backend::Rgw, "nullown-").await;
}

/// An upload id a user of the tenant names in a bucket neither his permissions nor its ACL let
/// him use is HCP's 403 (manual: "You do not have permission to upload parts in the specified
/// bucket"), whatever the id — not a 404 telling whether such an upload is there; one whom
/// the bucket's ACL lets write gets the upload's own answer (404 NoSuchUpload).
async fn uploads_are_refused_before_they_are_looked_up(backend: Backend, prefix: &str) {
    let Some((gw, bucket)) =
        bucket_written_by(backend, prefix, "upl", "emailAddress=\"bob\"").await
    else {
        return;
    };
    let id = "not-an-upload-id";
    let requests = [
        ("PUT", format!("/{bucket}/k?partNumber=1&uploadId={id}")),
        ("GET", format!("/{bucket}/k?uploadId={id}")),
        ("DELETE", format!("/{bucket}/k?uploadId={id}")),
    ];
    for (method, target) in &requests {
        let r = as_user(&gw, (CAROL, PASSWORD), method, target, &[], b"").await;
        r.assert_hcp_error(403, "AccessDenied");
    }
    let (method, target) = &requests[0];
    let r = as_user(&gw, (BOB, PASSWORD), method, target, &[], b"").await;
    r.assert_hcp_error(404, "NoSuchUpload");
}

#[tokio::test]
async fn uploads_are_refused_before_they_are_looked_up_on_the_embedded_store() {
    uploads_are_refused_before_they_are_looked_up(Backend::Store, "").await;
}

#[tokio::test]
async fn uploads_are_refused_before_they_are_looked_up_on_rgw() {
    uploads_are_refused_before_they_are_looked_up(Backend::Rgw, "upl-").await;
}

/// A read of the null version is judged by the null version's ACL, not the current one's
/// (README: "a read of an older version is judged by that version's ACL"): Carol, whom only
/// the current version's ACL lets read, is refused the older private null version — a GET, a
/// HEAD and a copy of it (nothing stored) — and still reads the current one.
async fn a_null_version_is_judged_by_its_own_acl(backend: Backend, prefix: &str) {
    let Some((gw, bucket, path)) =
        null_version_of(backend, prefix, "nullacl", USER, b"secret").await
    else {
        return;
    };
    let readable = [("x-amz-acl", "authenticated-read")];
    let (status, body) = as_user_with_body(&gw, USER, "PUT", &path, &readable, b"public").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&gw, Some(CAROL), "GET", &path, &[]).await;
    assert_eq!((status, body.as_str()), (200, "public"));
    let null = format!("{path}?versionId=null");
    let r = as_user(&gw, (CAROL, PASSWORD), "GET", &null, &[], b"").await;
    r.assert_hcp_error(403, "AccessDenied");
    let (status, _) = status_of(&gw, Some(CAROL), "HEAD", &null, &[]).await;
    assert_eq!(status, 403);
    // Bob may write in the bucket: a copy of the current version is his, of the null one not.
    let copy = format!("/{bucket}/copy");
    let current = [("x-amz-copy-source", path.as_str())];
    let (status, body) = as_user_with_body(&gw, BOB, "PUT", &copy, &current, b"").await;
    assert_eq!(status, 200, "{body}");
    let stolen = format!("/{bucket}/stolen");
    let source = [("x-amz-copy-source", null.as_str())];
    let r = as_user(&gw, (BOB, PASSWORD), "PUT", &stolen, &source, b"").await;
    r.assert_hcp_error(403, "AccessDenied");
    let (status, _) = status_of(&gw, Some(USER), "GET", &stolen, &[]).await;
    assert_eq!(status, 404, "the refused copy stored the null version");
    let (status, body) = status_of(&gw, Some(USER), "GET", &null, &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "secret"),
        "the owner reads it"
    );
}

#[tokio::test]
async fn a_null_version_is_judged_by_its_own_acl_on_the_embedded_store() {
    a_null_version_is_judged_by_its_own_acl(Backend::Store, "").await;
}

#[tokio::test]
async fn a_null_version_is_judged_by_its_own_acl_on_rgw() {
    a_null_version_is_judged_by_its_own_acl(Backend::Rgw, "nullacl-").await;
}

/// The edges of objects' owners: keys that need encoding are listed with their own owners
/// (also URL-encoded listings); a copy's conditions on its source are answered against the
/// source read, a missing source is 404, a copy onto itself that changes nothing is HCP's
/// 400 — nothing stored by any of them; the owner entry cannot be set under another spelling.
async fn owners_at_the_edges(backend: Backend, prefix: &str) {
    let writers = "emailAddress=\"bob\"";
    let Some((gw, bucket)) = bucket_written_by(backend, prefix, "edge", writers).await else {
        return;
    };
    let view = common::view::BackendView::of(&gw);
    let backend_bucket = format!("{prefix}{bucket}");
    // Bob's "x%41" and Alice's "xA" hold the same bytes; Bob's key with a space, a plus and
    // an ampersand too.
    for (user, raw) in [(BOB, "x%2541"), (USER, "xA"), (BOB, "odd%20key%2B%26.txt")] {
        let target = format!("/{bucket}/{raw}");
        let (status, body) = as_user_with_body(&gw, user, "PUT", &target, &[], b"same").await;
        assert_eq!(status, 200, "{raw}: {body}");
    }
    let want = |listed: Vec<(String, String, String)>, keys: [&str; 3]| {
        let mut owners: Vec<(String, String)> =
            listed.into_iter().map(|(k, _, name)| (k, name)).collect();
        owners.sort();
        let mut expected: Vec<(String, String)> = keys
            .iter()
            .zip([BOB, BOB, USER])
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .collect();
        expected.sort();
        assert_eq!(owners, expected);
    };
    let (status, v1) = status_of(&gw, Some(USER), "GET", &format!("/{bucket}"), &[]).await;
    assert_eq!(status, 200, "{v1}");
    want(
        owners_listed(&v1, "Contents"),
        ["odd key+&amp;.txt", "x%41", "xA"],
    );
    let target = format!("/{bucket}?list-type=2&fetch-owner=true&encoding-type=url");
    let (status, v2) = status_of(&gw, Some(USER), "GET", &target, &[]).await;
    assert_eq!(status, 200, "{v2}");
    let listed = owners_listed(&v2, "Contents");
    let named = |needle: &str| {
        listed
            .iter()
            .find(|(k, _, _)| k.contains(needle))
            .map(|(_, _, n)| n.clone())
    };
    assert_eq!(named("odd").as_deref(), Some(BOB), "{v2}");
    assert_eq!(named("x%2541").as_deref(), Some(BOB), "{v2}");
    assert_eq!(named("xA").as_deref(), Some(USER), "{v2}");

    // Copies refused before anything is stored.
    let source = format!("/{bucket}/xA");
    let missing = format!("/{bucket}/missing");
    let head = as_user(&gw, (USER, PASSWORD), "HEAD", &source, &[], b"").await;
    let etag = head.header("etag").expect("an ETag").to_string();
    for (headers, status, code) in [
        (
            vec![
                ("x-amz-copy-source", source.as_str()),
                ("x-amz-copy-source-if-match", "\"another\""),
            ],
            412,
            "PreconditionFailed",
        ),
        (
            vec![
                ("x-amz-copy-source", source.as_str()),
                ("x-amz-copy-source-if-none-match", etag.as_str()),
            ],
            412,
            "PreconditionFailed",
        ),
        (
            vec![("x-amz-copy-source", missing.as_str())],
            404,
            "NoSuchKey",
        ),
    ] {
        let target = format!("/{bucket}/copied");
        let (got, body) = as_user_with_body(&gw, USER, "PUT", &target, &headers, b"").await;
        assert_eq!(got, status, "{headers:?}: {body}");
        assert_hcp_error_body(&body, code);
        assert!(view.object(&backend_bucket, "copied").await.is_none());
    }
    // A copy onto itself that changes nothing is refused; the object stays Alice's.
    let (got, body) = as_user_with_body(
        &gw,
        BOB,
        "PUT",
        &format!("/{bucket}/x%2541"),
        &[("x-amz-copy-source", &format!("/{bucket}/x%2541"))],
        b"",
    )
    .await;
    assert_eq!(got, 400, "{body}");
    assert_hcp_error_body(&body, "InvalidArgument");
    // (Bucket names are not case-sensitive: the same object, named otherwise.)
    let (got, body) = as_user_with_body(
        &gw,
        BOB,
        "PUT",
        &format!("/{}/x%2541", bucket.to_uppercase()),
        &[("x-amz-copy-source", &format!("/{bucket}/x%2541"))],
        b"",
    )
    .await;
    assert_eq!(got, 400, "{body}");
    assert_hcp_error_body(&body, "InvalidArgument");

    // The owner entry under another spelling is the gateway's all the same.
    let forged = id_of(USER);
    let (got, body) = as_user_with_body(
        &gw,
        BOB,
        "PUT",
        &format!("/{bucket}/forged"),
        &[("x-amz-meta-hcp_gateway_owner", &forged)],
        b"x",
    )
    .await;
    assert_eq!(got, 501, "{body}");
    assert_hcp_error_body(&body, "NotImplemented");
    assert!(view.object(&backend_bucket, "forged").await.is_none());

    // A metadata change keeps the object's owner: Bob, who may write in the bucket and read
    // Alice's object, changes its metadata and gains nothing of its owner's full control.
    let alice_s = format!("/{bucket}/xA");
    let grant = [("x-amz-grant-read", "emailAddress=\"bob\"")];
    let (got, body) = status_of(&gw, Some(USER), "PUT", &format!("{alice_s}?acl"), &grant).await;
    assert_eq!(got, 200, "{body}");
    let edit = [
        ("x-amz-copy-source", alice_s.as_str()),
        ("x-amz-metadata-directive", "REPLACE"),
        ("x-amz-meta-colour", "blue"),
    ];
    let (got, body) = as_user_with_body(&gw, BOB, "PUT", &alice_s, &edit, b"").await;
    assert_eq!(got, 200, "{body}");
    let kept = view
        .metadata(&backend_bucket, "xA")
        .await
        .unwrap_or_default();
    assert!(kept.contains(&("colour".into(), "blue".into())), "{kept:?}");
    let acl = format!("{alice_s}?acl");
    let acl = as_user(&gw, (USER, PASSWORD), "GET", &acl, &[], b"").await;
    let owner = inner(&inner(&acl.text(), "Owner"), "ID");
    assert_eq!(owner, id_of(USER), "{}", acl.text());
    // (Bob's write grant on the bucket lets him delete, as HCP's write does; changing the
    // object's ACL is its owner's — by PUT `?acl`, or by ACL headers on an edit.)
    // (What Bob holds by the bucket's ACL, write, is not his to grant on Alice's object.)
    // (`private` too: on an edit it replaces the object's ACL, as a PUT `?acl` would.)
    for grant in [
        ("x-amz-acl", "public-read"),
        ("x-amz-grant-write", "emailAddress=\"carol\""),
        ("x-amz-acl", "private"),
    ] {
        let with_acl = [&edit[..], &[grant]].concat();
        let (got, body) = as_user_with_body(&gw, BOB, "PUT", &alice_s, &with_acl, b"").await;
        assert_eq!(got, 403, "{grant:?}: {body}");
    }
    let acl = format!("{alice_s}?acl");
    let acl = as_user(&gw, (USER, PASSWORD), "GET", &acl, &[], b"").await;
    assert!(!acl.text().contains("AllUsers"), "{}", acl.text());
    assert!(!acl.text().contains(">carol<"), "{}", acl.text());
    let bob_reads = status_of(&gw, Some(BOB), "GET", &alice_s, &[]).await.0;
    assert_eq!(bob_reads, 200, "Alice's grant to Bob stays");
    let public = [("x-amz-acl", "public-read")];
    let (got, body) = status_of(&gw, Some(BOB), "PUT", &format!("{alice_s}?acl"), &public).await;
    assert_eq!(got, 403, "{body}");
    assert_eq!(
        view.object(&backend_bucket, "xA").await.as_deref(),
        Some(&b"same"[..])
    );
}

#[tokio::test]
async fn owners_at_the_edges_on_the_embedded_store() {
    owners_at_the_edges(Backend::Store, "").await;
}

#[tokio::test]
async fn owners_at_the_edges_on_rgw() {
    owners_at_the_edges(Backend::Rgw, "edge-").await;
}

/// A PUT `?acl` that the object's owner (not the bucket) allows changes that object only:
/// where another user replaces it while the change's body is on its way (after the
/// `100 Continue`), the change is refused — 503, HCP's "set it again" — and the new object's
/// ACL stays its own. (It once landed on Alice's object: Bob made her secret public.)
///
/// With versions, Alice's new version meanwhile refuses the change alike, and Bob's version
/// keeps the grants he gave Carol (a change refused before it is sent takes nothing away).
async fn an_acl_change_is_tied_to_the_object_judged(
    backend: Backend,
    prefix: &str,
    versioned: bool,
) {
    let Some((gw, bucket)) =
        bucket_written_by(backend, prefix, "tied", "emailAddress=\"bob\"").await
    else {
        return;
    };
    let view = common::view::BackendView::of(&gw);
    let backend_bucket = format!("{prefix}{bucket}");
    let target = format!("/{bucket}/k");
    if versioned {
        let enabled = aws_sdk_s3::types::BucketVersioningStatus::Enabled;
        set_versioning(&gw.client(), &bucket, enabled).await;
    }
    let r = as_user(&gw, (BOB, PASSWORD), "PUT", &target, &[], b"bob's").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let bobs_version = r.header("x-amz-version-id").map(str::to_string);
    let to_carol = [("x-amz-grant-read", "emailAddress=\"carol\"")];
    let (status, body) =
        as_user_with_body(&gw, BOB, "PUT", &format!("{target}?acl"), &to_carol, b"").await;
    assert_eq!(status, 200, "{body}");
    let acl_target = format!("{target}?acl");
    let (status, shown) = as_user_with_body(&gw, BOB, "GET", &acl_target, &[], b"").await;
    assert_eq!(status, 200, "{shown}");
    let doc = format!(
        "<AccessControlPolicy><Owner><ID>{}</ID></Owner><AccessControlList><Grant>\
         <Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">\
         <URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>\
         <Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>",
        inner(&shown, "ID")
    );
    let mut held = held_acl_change(&gw, &acl_target, &doc).await;
    // Meanwhile Alice stores her own object under the name (deleting Bob's first where no
    // versions are kept).
    if !versioned {
        let (status, body) = as_user_with_body(&gw, USER, "DELETE", &target, &[], b"").await;
        assert_eq!(status, 204, "{body}");
    }
    let (status, body) = as_user_with_body(&gw, USER, "PUT", &target, &[], b"alice's secret").await;
    assert_eq!(status, 200, "{body}");
    let answer = finish_held_change(&mut held, doc.as_bytes()).await;
    answer.assert_hcp_error(503, "ServiceUnavailable");
    if let Some(version) = bobs_version.filter(|_| versioned) {
        let old = format!("{target}?versionId={version}");
        let (status, body) = as_user_with_body(&gw, CAROL, "GET", &old, &[], b"").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "bob's"),
            "Carol's grant was lost"
        );
    }
    assert!(!view.object_is_public(&backend_bucket, "k").await);
    let (status, body) = status_of(&gw, None, "GET", &target, &[]).await;
    assert_eq!(status, 403, "{body}");
    assert_hcp_error_body(&body, "AccessDenied");
    // Undisturbed, the same change of an object of Bob's is his to make.
    let mine = format!("/{bucket}/mine");
    let (status, body) = as_user_with_body(&gw, BOB, "PUT", &mine, &[], b"bob's").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        as_user_with_body(&gw, BOB, "PUT", &format!("{mine}?acl"), &[], doc.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert!(view.object_is_public(&backend_bucket, "mine").await);
}

#[tokio::test]
async fn an_acl_change_is_tied_to_the_object_judged_on_the_embedded_store() {
    an_acl_change_is_tied_to_the_object_judged(Backend::Store, "", false).await;
    an_acl_change_is_tied_to_the_object_judged(Backend::Store, "", true).await;
}

#[tokio::test]
async fn an_acl_change_is_tied_to_the_object_judged_on_rgw() {
    an_acl_change_is_tied_to_the_object_judged(Backend::Rgw, "tied-", false).await;
    an_acl_change_is_tied_to_the_object_judged(Backend::Rgw, "tied-", true).await;
}

/// An object's owner holds write and write ACL on it (manual 779): a metadata change of his
/// own object in Alice's bucket that sets an ACL is his to make — the object then public,
/// still his — while the same change of Alice's object is not (403, nothing changed).
async fn an_owner_sets_an_acl_in_a_metadata_change(backend: Backend, prefix: &str) {
    let Some((gw, bucket)) =
        bucket_written_by(backend, prefix, "edit", "emailAddress=\"bob\"").await
    else {
        return;
    };
    let view = common::view::BackendView::of(&gw);
    let backend_bucket = format!("{prefix}{bucket}");
    for (user, key) in [(BOB, "bobs"), (USER, "alices")] {
        let target = format!("/{bucket}/{key}");
        let (status, body) = as_user_with_body(&gw, user, "PUT", &target, &[], b"x").await;
        assert_eq!(status, 200, "{body}");
    }
    let edit = |key: &str| {
        let source = format!("/{bucket}/{key}");
        let target = source.clone();
        let gw = &gw;
        async move {
            let headers = [
                ("x-amz-copy-source", source.as_str()),
                ("x-amz-metadata-directive", "REPLACE"),
                ("x-amz-meta-colour", "blue"),
                ("x-amz-acl", "public-read"),
            ];
            as_user_with_body(gw, BOB, "PUT", &target, &headers, b"").await
        }
    };
    let (status, body) = edit("bobs").await;
    assert_eq!(status, 200, "{body}");
    assert!(view.object_is_public(&backend_bucket, "bobs").await);
    let acl = format!("/{bucket}/bobs?acl");
    let (status, shown) = as_user_with_body(&gw, BOB, "GET", &acl, &[], b"").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        inner(&inner(&shown, "Owner"), "DisplayName"),
        BOB,
        "{shown}"
    );
    let (status, body) = edit("alices").await;
    assert_eq!(status, 403, "{body}");
    assert_hcp_error_body(&body, "AccessDenied");
    assert!(!view.object_is_public(&backend_bucket, "alices").await);
}

#[tokio::test]
async fn an_owner_sets_an_acl_in_a_metadata_change_on_the_embedded_store() {
    an_owner_sets_an_acl_in_a_metadata_change(Backend::Store, "").await;
}

#[tokio::test]
async fn an_owner_sets_an_acl_in_a_metadata_change_on_rgw() {
    an_owner_sets_an_acl_in_a_metadata_change(Backend::Rgw, "edit-").await;
}

/// A PUT `?acl` allowed by the object's owner is tied to the object judged even where the
/// guard's own look finds no object (Bob deleted it just after it was judged): Alice's object
/// stored while the change's body comes is not changed — 503, nothing sent. A front answers
/// the guard's HEAD 404 in RGW's stead.
#[tokio::test]
async fn an_acl_change_whose_object_went_is_tied_to_the_object_judged() {
    let Ok(rgw) = std::env::var("RGW_ENDPOINT") else {
        assert_eq!(std::env::var("HCP_GW_SKIP_EXTERNAL").as_deref(), Ok("1"));
        return;
    };
    let prefix = "went-";
    let bucket = unique_bucket("went");
    let gone: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let line = format!("HEAD /{prefix}{bucket}/k ");
    let upstream = rgw.trim_start_matches("http://");
    let no_wait = std::time::Duration::ZERO;
    let (front, armed) = refusing_front_after(upstream, line, gone, no_wait, 1).await;
    let gw = keeping_acls_behind(front, &rgw, prefix, "anonymous_acls = true\n").await;
    gw.client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let grant = [("x-amz-grant-write", "emailAddress=\"bob\"")];
    let (status, body) = status_of(&gw, Some(USER), "PUT", &format!("/{bucket}?acl"), &grant).await;
    assert_eq!(status, 200, "{body}");
    let target = format!("/{bucket}/k");
    let (status, body) = as_user_with_body(&gw, BOB, "PUT", &target, &[], b"bob's").await;
    assert_eq!(status, 200, "{body}");
    let acl_target = format!("{target}?acl");
    // (No Owner: naming none, the document changes no owner, whatever object is there.)
    let doc = "<AccessControlPolicy><AccessControlList><Grant>\
         <Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">\
         <URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>\
         <Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>";
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut held = held_acl_change(&gw, &acl_target, doc).await;
    assert!(
        !armed.load(std::sync::atomic::Ordering::SeqCst),
        "the guard's HEAD not answered 404"
    );
    let (status, body) = as_user_with_body(&gw, USER, "PUT", &target, &[], b"alice's secret").await;
    assert_eq!(status, 200, "{body}");
    let answer = finish_held_change(&mut held, doc.as_bytes()).await;
    answer.assert_hcp_error(503, "ServiceUnavailable");
    let view = common::view::BackendView::rgw();
    assert!(
        !view
            .object_is_public(&format!("{prefix}{bucket}"), "k")
            .await
    );
}

/// An ACL change the backend refuses changes nothing: the grants to users it would have
/// replaced (the gateway's record, removed just before the change is sent) are there again —
/// Bob still reads — and the client gets the backend's refusal. (AWS's Block Public Access
/// refuses a grant to all users so; here a front refuses in RGW's stead.)
#[tokio::test]
async fn a_refused_acl_change_keeps_the_grants_it_would_replace() {
    refused_acl_change(Meanwhile::Nothing).await;
}

/// A refused change gives back what it removed only while no other change came between: Bob
/// (who may change the bucket's ACL) makes a change the backend refuses slowly; Alice's change
/// meanwhile, which takes Bob's grants away, is carried out after his — his grants are not
/// brought back over hers.
#[tokio::test]
async fn a_refused_acl_change_does_not_undo_a_later_one() {
    refused_acl_change(Meanwhile::AliceChanges).await;
}

/// A change waits for the one under way at most 10 s (as an owner change does), then is 503
/// — a slow backend's (or a slow client's) change holds the others up no longer; Alice's
/// change, not made, took nothing away.
#[tokio::test]
async fn an_acl_change_waits_for_another_ten_seconds_at_most() {
    refused_acl_change(Meanwhile::AliceWaitsTooLong).await;
}

/// An ACL change the backend refuses whose replaced grants to users cannot be written back
/// (the records bucket refusing too) is 503 ServiceUnavailable, "set the ACL again" — never
/// the refusal alone, which would say that nothing changed, while Bob's grant is gone.
#[tokio::test]
async fn a_refused_acl_change_whose_grants_cannot_be_put_back_is_503() {
    let Ok(rgw) = std::env::var("RGW_ENDPOINT") else {
        assert_eq!(std::env::var("HCP_GW_SKIP_EXTERNAL").as_deref(), Ok("1"));
        return;
    };
    let (prefix, bucket, records) = (
        "unkept-",
        unique_bucket("kept"),
        unique_bucket("gw-records"),
    );
    let no_wait = std::time::Duration::ZERO;
    // The records' PUT of the bucket's grants refused behind the backend's refusal of the ACL.
    let line = format!("PUT /{records}/acls/{prefix}{bucket} ");
    let upstream = rgw.trim_start_matches("http://");
    let (inner, records_refusing) = refusing_front(upstream, line, FAILED_500, no_wait).await;
    let line = format!("PUT /{prefix}{bucket}/?acl= ");
    let inner = inner.to_string();
    let (front, acl_refusing) = refusing_front(&inner, line, ACL_REFUSED, no_wait).await;
    let gw = keeping_acls_in(&records, front, &rgw, (prefix, "")).await;
    gw.client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let acl = format!("/{bucket}?acl");
    let to_bob = [("x-amz-grant-read", "emailAddress=\"bob\"")];
    let (status, body) = status_of(&gw, Some(USER), "PUT", &acl, &to_bob).await;
    assert_eq!(status, 200, "{body}");
    acl_refusing.store(true, std::sync::atomic::Ordering::SeqCst);
    records_refusing.store(true, std::sync::atomic::Ordering::SeqCst);
    let open = [(
        "x-amz-grant-read",
        "emailAddress=\"bob\", uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
    )];
    let (status, body) = status_of(&gw, Some(USER), "PUT", &acl, &open).await;
    assert_eq!(status, 503, "{body}");
    assert_hcp_error_body(&body, "ServiceUnavailable");
    assert!(body.contains("set the ACL again"), "{body}");
    for (armed, what) in [
        (&acl_refusing, "the ACL"),
        (&records_refusing, "the grants' record"),
    ] {
        assert!(
            !armed.load(std::sync::atomic::Ordering::SeqCst),
            "{what} not refused"
        );
    }
    assert!(
        !common::view::BackendView::rgw()
            .bucket_is_public(&format!("{prefix}{bucket}"))
            .await
    );
}

/// The backend's refusal of an ACL change (AWS's Block Public Access refuses so), as a front
/// answers in its stead.
const ACL_REFUSED: &[u8] = b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: 73\r\nConnection: close\r\n\r\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>\n";

/// What happens while Bob's change is under way, in [`refused_acl_change`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Meanwhile {
    /// Nothing: Alice's own change is the refused one.
    Nothing,
    /// Alice takes Bob's grants away while the backend takes 600 ms to refuse Bob's change.
    AliceChanges,
    /// The same, the backend taking 12 s.
    AliceWaitsTooLong,
}

/// Alice's bucket, Bob granted read (and write ACL, but for `Nothing`) by its ACL; a change
/// refused by a front in RGW's stead, and what happens `meanwhile`.
async fn refused_acl_change(meanwhile: Meanwhile) {
    let later = meanwhile != Meanwhile::Nothing;
    let Ok(rgw) = std::env::var("RGW_ENDPOINT") else {
        assert_eq!(std::env::var("HCP_GW_SKIP_EXTERNAL").as_deref(), Ok("1"));
        return;
    };
    let prefix = "refused-";
    let bucket = unique_bucket("kept");
    let line = format!("PUT /{prefix}{bucket}/?acl= ");
    let upstream = rgw.trim_start_matches("http://");
    let wait = std::time::Duration::from_millis(match meanwhile {
        Meanwhile::Nothing => 0,
        Meanwhile::AliceChanges => 600,
        Meanwhile::AliceWaitsTooLong => 12_000,
    });
    let (front, armed) = refusing_front(upstream, line, ACL_REFUSED, wait).await;
    let gw = keeping_acls_behind(front, &rgw, prefix, "").await;
    let s3 = gw.client();
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let object = format!("/{bucket}/k");
    let (status, body) = as_user_with_body(&gw, USER, "PUT", &object, &[], b"alice's").await;
    assert_eq!(status, 200, "{body}");
    let acl = format!("/{bucket}?acl");
    let mut to_bob = vec![("x-amz-grant-read", "emailAddress=\"bob\"")];
    if later {
        to_bob.push(("x-amz-grant-write-acp", "emailAddress=\"bob\""));
    }
    let (status, body) = status_of(&gw, Some(USER), "PUT", &acl, &to_bob).await;
    assert_eq!(status, 200, "{body}");
    let listing = format!("/{bucket}");
    let bob_lists = || status_of(&gw, Some(BOB), "GET", &listing, &[]);
    assert_eq!(bob_lists().await.0, 200);
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let open = [(
        "x-amz-grant-read",
        "emailAddress=\"bob\", uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
    )];
    let refused_change = status_of(
        &gw,
        Some(if later { BOB } else { USER }),
        "PUT",
        &acl,
        &open,
    );
    let alice_s = async {
        if later {
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            let private = [("x-amz-acl", "private")];
            let started = std::time::Instant::now();
            let (status, body) = status_of(&gw, Some(USER), "PUT", &acl, &private).await;
            if meanwhile == Meanwhile::AliceWaitsTooLong {
                assert_eq!(status, 503, "{body}");
                assert_hcp_error_body(&body, "ServiceUnavailable");
                assert!(started.elapsed() < std::time::Duration::from_millis(11_500));
            } else {
                assert_eq!(status, 200, "{body}");
            }
        }
    };
    let ((status, body), ()) = tokio::join!(refused_change, alice_s);
    assert_eq!(status, 403, "{body}");
    assert_hcp_error_body(&body, "AccessDenied");
    assert!(
        !armed.load(std::sync::atomic::Ordering::SeqCst),
        "not refused by the front"
    );
    let (status, body) = bob_lists().await;
    match meanwhile {
        Meanwhile::AliceChanges => assert_eq!(status, 403, "Alice's change was undone: {body}"),
        _ => assert_eq!(status, 200, "Bob's grant was lost: {body}"),
    }
    assert!(
        !common::view::BackendView::rgw()
            .bucket_is_public(&format!("{prefix}{bucket}"))
            .await
    );
}

/// A metadata change keeps its object's ACL, as HCP changes metadata in place: in a bucket
/// that keeps versions (the change makes a new one) an object readable by anonymous callers
/// (a grant to all users, the backend's) and by Bob (a grant to a user, the gateway's record)
/// stays so after its owner changes its metadata; an edit that names an ACL of its own sets it.
async fn metadata_changes_keep_acls(backend: Backend, prefix: &str) {
    let records = unique_bucket("gw-records");
    let Some(gw) = start_keeping_acls(backend, prefix, &records).await else {
        return;
    };
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "kept").await;
    set_versioning(
        &s3,
        &bucket,
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    let target = format!("/{bucket}/k");
    let all_users = format!(
        "uri=\"{}\", emailAddress=\"bob\"",
        "http://acs.amazonaws.com/groups/global/AllUsers"
    );
    let grant = [("x-amz-grant-read", all_users.as_str())];
    let (got, body) = as_user_with_body(&gw, USER, "PUT", &target, &grant, b"shared").await;
    assert_eq!(got, 200, "{body}");
    let readers = async || {
        let anonymous = status_of(&gw, None, "GET", &target, &[]).await.0;
        let bob = status_of(&gw, Some(BOB), "GET", &target, &[]).await.0;
        (anonymous, bob)
    };
    assert_eq!(readers().await, (200, 200));
    let edit = [
        ("x-amz-copy-source", target.as_str()),
        ("x-amz-metadata-directive", "REPLACE"),
        ("x-amz-meta-colour", "blue"),
    ];
    let (got, body) = as_user_with_body(&gw, USER, "PUT", &target, &edit, b"").await;
    assert_eq!(got, 200, "{body}");
    assert_eq!(readers().await, (200, 200), "the ACL after the change");
    let r = as_user(&gw, (USER, PASSWORD), "HEAD", &target, &[], b"").await;
    assert_eq!(r.header("x-amz-meta-colour"), Some("blue"));
    // An edit naming its own ACL sets that one: grants to users alone (which the gateway
    // records, not the backend) replace the object's grants to groups too.
    let to_carol = [&edit[..], &[("x-amz-grant-read", "emailAddress=\"carol\"")]].concat();
    let (got, body) = as_user_with_body(&gw, USER, "PUT", &target, &to_carol, b"").await;
    assert_eq!(got, 200, "{body}");
    assert_eq!(readers().await, (403, 403), "the ACL the change named");
    let carol = status_of(&gw, Some(CAROL), "GET", &target, &[]).await.0;
    assert_eq!(carol, 200);
    let private = [&edit[..], &[("x-amz-acl", "private")]].concat();
    let (got, body) = as_user_with_body(&gw, USER, "PUT", &target, &private, b"").await;
    assert_eq!(got, 200, "{body}");
    assert_eq!(
        readers().await,
        (403, 403),
        "a private ACL named by the change"
    );

    // In a bucket without versions the change rewrites the very instance (its bytes, so its
    // ETag, kept): the grants to users it recorded go with the ACL the change names.
    let plain = new_bucket(&s3, "kept-plain").await;
    let target = format!("/{plain}/k");
    let to_bob = [("x-amz-grant-read", "emailAddress=\"bob\"")];
    let (got, body) = as_user_with_body(&gw, USER, "PUT", &target, &to_bob, b"same").await;
    assert_eq!(got, 200, "{body}");
    assert_eq!(status_of(&gw, Some(BOB), "GET", &target, &[]).await.0, 200);
    let private = [
        ("x-amz-copy-source", target.as_str()),
        ("x-amz-metadata-directive", "REPLACE"),
        ("x-amz-acl", "private"),
    ];
    let (got, body) = as_user_with_body(&gw, USER, "PUT", &target, &private, b"").await;
    assert_eq!(got, 200, "{body}");
    assert_eq!(
        status_of(&gw, Some(BOB), "GET", &target, &[]).await.0,
        403,
        "Bob's grant went with the ACL the change named"
    );
}

#[tokio::test]
async fn metadata_changes_keep_acls_on_the_embedded_store() {
    metadata_changes_keep_acls(Backend::Store, "").await;
}

#[tokio::test]
async fn metadata_changes_keep_acls_on_rgw() {
    metadata_changes_keep_acls(Backend::Rgw, "kept-").await;
}

/// A grant revoked through one replica is not made lasting through another that still holds
/// the old reading (its ACL cache, 10 s): a change of an ACL is judged on the ACLs as they are
/// now — the grant it may give is what the caller holds now (before: Bob, revoked, gave himself
/// full control again, 200, and the record kept it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_is_not_made_lasting_through_another_replica() {
    let records = unique_bucket("gw-records");
    let Some(first) = start_keeping_acls(Backend::Rgw, "", &records).await else {
        return;
    };
    let second = start_keeping_acls(Backend::Rgw, "", &records)
        .await
        .unwrap();
    let dave = second.client_with(&hcp_access_key(DAVE), &hcp_secret_key(PASSWORD));
    let bucket = new_bucket(&dave, DAVE).await;
    let at = format!("/{bucket}?acl");
    let full = [("x-amz-grant-full-control", "emailAddress=bob")];
    let (status, body) = status_of(&second, Some(DAVE), "PUT", &at, &full).await;
    assert_eq!(status, 200, "{body}");
    // Bob's reading of the ACL, through the first replica.
    let listing = format!("/{bucket}");
    let (status, body) = status_of(&first, Some(BOB), "GET", &listing, &[]).await;
    assert_eq!(status, 200, "{body}");
    // Revoked through the second, then given again through the first: refused.
    let private = [("x-amz-acl", "private")];
    let (status, body) = status_of(&second, Some(DAVE), "PUT", &at, &private).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&first, Some(BOB), "PUT", &at, &full).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = status_of(&second, Some(BOB), "GET", &listing, &[]).await;
    assert_eq!(status, 403, "{body}");
    // Nor through a grant the change gives, which the caller must hold now: Bob may change
    // the object's ACL (the bucket's WRITE_ACP) and read it (its own READ, revoked through
    // the second replica after the first cached it).
    let write_acp = [("x-amz-grant-write-acp", "emailAddress=bob")];
    let (status, body) = status_of(&second, Some(DAVE), "PUT", &at, &write_acp).await;
    assert_eq!(status, 200, "{body}");
    let object = format!("/{bucket}/k");
    let r = as_user(&second, (DAVE, PASSWORD), "PUT", &object, &[], b"dave's").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let object_acl = format!("{object}?acl");
    let read = [("x-amz-grant-read", "emailAddress=bob")];
    let (status, body) = status_of(&second, Some(DAVE), "PUT", &object_acl, &read).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&first, Some(BOB), "GET", &object, &[]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&second, Some(DAVE), "PUT", &object_acl, &private).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&first, Some(BOB), "PUT", &object_acl, &read).await;
    assert_eq!(status, 403, "{body}");
    // Nor through a metadata change that sets an ACL, by a user whose write-acl is her own:
    // the write the change needs is judged on the ACL as it is now.
    let erins = format!("/{bucket}/e");
    let r = as_user(&second, (DAVE, PASSWORD), "PUT", &erins, &[], b"dave's").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let erins_acl = format!("{erins}?acl");
    let full = [("x-amz-grant-full-control", "emailAddress=erin")];
    let (status, body) = status_of(&second, Some(DAVE), "PUT", &erins_acl, &full).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&first, Some(ERIN), "GET", &erins, &[]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_of(&second, Some(DAVE), "PUT", &erins_acl, &private).await;
    assert_eq!(status, 200, "{body}");
    let source = erins.clone();
    let edit = [
        ("x-amz-copy-source", source.as_str()),
        ("x-amz-metadata-directive", "REPLACE"),
        ("x-amz-grant-full-control", "emailAddress=erin"),
    ];
    let (status, body) = status_of(&first, Some(ERIN), "PUT", &erins, &edit).await;
    assert_eq!(status, 403, "{body}");
}

/// An ACL document naming its owner without an `ID` (HCP: "required in the context of the
/// Owner element") is refused (400), the bucket's ACL unchanged (before: 200). The ACL is answered in HCP's order (owner first, a
/// party's ID before its DisplayName), the embedded store's too.
#[tokio::test]
async fn acl_documents_hcp_refuses_are_refused() {
    let records = unique_bucket("gw-records");
    let Some(gw) = start_keeping_acls(Backend::Store, "", &records).await else {
        return;
    };
    let bucket = new_bucket(&gw.client(), "strict-acl").await;
    let at = format!("/{bucket}?acl");
    let before = as_user(&gw, (USER, PASSWORD), "GET", &at, &[], b"").await;
    assert_eq!(before.status, 200, "{}", before.text());
    let owner = before.text();
    let owner_first =
        "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>";
    assert!(owner.contains(owner_first), "{owner}");
    let doc = "<AccessControlPolicy><Owner><DisplayName>x</DisplayName></Owner>\
               <AccessControlList/></AccessControlPolicy>";
    let r = as_user(&gw, (USER, PASSWORD), "PUT", &at, &[], doc.as_bytes()).await;
    r.assert_hcp_error(400, "MalformedXML");
    let after = as_user(&gw, (USER, PASSWORD), "GET", &at, &[], b"").await;
    assert_eq!(after.text(), owner, "the ACL changed");
}

//! HCP users own their buckets (issue "HCP users own their buckets and objects"), on the
//! embedded store and on Ceph RGW, where the tenant names a `records_bucket`: `GET /` lists the
//! caller's buckets, another user's CreateBucket of an existing name is 409
//! BucketAlreadyExists, owners in answers are HCP users (never the backend account), and the
//! records are where the gateway says they are — read with the backend's own client.

mod common;

use common::*;
use hcp_s3_gateway::config::{hcp_access_key, hcp_secret_key};

/// A second user with every permission on the tenant: only ownership tells it from `USER`.
const BOB: &str = "bob";

fn bob_config() -> String {
    format!(
        r#"
[[users]]
username = "{BOB}"
password = "{PASSWORD}"
permissions = [{{ tenant = "t", buckets = "*", allow = ["all"] }}]
"#
    )
}

/// The owner id the gateway gives a user: a UUID derived from its access key.
fn owner_id_of(user: &str) -> String {
    hcp_s3_gateway::request::owners::Owner::named(&hcp_access_key(user), user).id
}

async fn listed(s3: &aws_sdk_s3::Client) -> (Vec<String>, Option<(String, String)>) {
    let out = s3.list_buckets().send().await.unwrap();
    let names = out
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    let owner = out.owner().map(|o| {
        (
            o.id().unwrap_or_default().to_string(),
            o.display_name().unwrap_or_default().to_string(),
        )
    });
    (names, owner)
}

/// A gateway whose tenant keeps owners in `records` and names its buckets at the backend with
/// `prefix`, with Bob among its users.
async fn start_keeping_owners(
    backend: Backend,
    prefix: &str,
    records: &str,
) -> Option<TestGateway> {
    start_keeping_owners_with(backend, (prefix, records), "").await
}

/// [`start_keeping_owners`] with `users` (`[[users]]` sections) besides Bob.
async fn start_keeping_owners_with(
    backend: Backend,
    (prefix, records): (&str, &str),
    users: &str,
) -> Option<TestGateway> {
    let dir = tempfile::tempdir().unwrap();
    let entry = backend.config_entry(&dir.path().join("data"))?;
    let text = keeping_owners((prefix, records), users, &entry);
    Some(start_text(&text, dir, backend).await)
}

/// The configuration of [`start_keeping_owners_with`], its backend `entry`.
fn keeping_owners((prefix, records): (&str, &str), users: &str, entry: &str) -> String {
    let line = format!("bucket_prefix = \"{prefix}\"\n");
    let base =
        base_config(prefix).replacen(&line, &format!("{line}records_bucket = \"{records}\"\n"), 1);
    format!("{base}\n{}\n{users}\n{entry}", bob_config())
}

async fn buckets_owned_as_hcp_answers(backend: Backend, prefix: &str) {
    let records = unique_bucket("gw-records");
    let Some(gw) = start_keeping_owners(backend, prefix, &records).await else {
        return;
    };
    let view = common::view::BackendView::of(&gw);
    let alice = gw.client();
    let bob = gw.client_with(&hcp_access_key(BOB), &hcp_secret_key(PASSWORD));
    let (alice_id, bob_id) = (owner_id_of(USER), owner_id_of(BOB));

    // Alice creates a bucket: hers, recorded at the backend.
    let bucket = new_bucket(&alice, "owned").await;
    let mut kept = view.keys(&records).await;
    kept.sort();
    assert_eq!(
        kept,
        [
            format!("buckets/{prefix}{bucket}"),
            format!("owned/{alice_id}/{prefix}{bucket}")
        ]
    );

    // `GET /`: the caller's buckets, the caller as owner; the records bucket is never listed.
    let (names, owner) = listed(&alice).await;
    assert!(names.contains(&bucket), "{names:?}");
    assert!(!names.contains(&records), "{names:?}");
    assert_eq!(owner, Some((alice_id.clone(), USER.to_string())));
    let (names, owner) = listed(&bob).await;
    assert!(!names.contains(&bucket), "{names:?}");
    assert_eq!(owner, Some((bob_id.clone(), BOB.to_string())));

    // Another user's CreateBucket: 409 BucketAlreadyExists, nothing changed; the owner's own:
    // HCP's 200 BucketAlreadyOwnedByYou.
    let before = gw.backend_requests();
    let r = as_user(&gw, (BOB, PASSWORD), "PUT", &format!("/{bucket}"), &[], b"").await;
    r.assert_hcp_error(409, "BucketAlreadyExists");
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "PUT",
        &format!("/{bucket}"),
        &[],
        b"",
    )
    .await;
    r.assert_hcp_error(200, "BucketAlreadyOwnedByYou");
    assert_eq!(
        gw.backend_requests() - before,
        6,
        "a record read and a HEAD each (and the owner's records written again), no CreateBucket sent"
    );
    assert_eq!(
        listed(&alice)
            .await
            .0
            .iter()
            .filter(|n| **n == bucket)
            .count(),
        1
    );

    // The bucket's ACL names its owner, for whoever reads it — never the backend account —
    // and the owner's document is accepted back as it was read.
    for reader in [&alice, &bob] {
        let acl = reader
            .get_bucket_acl()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let owner = acl.owner().unwrap();
        assert_eq!(owner.id(), Some(alice_id.as_str()));
        assert_eq!(owner.display_name(), Some(USER));
        for grant in acl.grants() {
            let grantee = grant.grantee().unwrap();
            if let Some(id) = grantee.id() {
                assert_eq!(id, alice_id);
            }
        }
    }
    let acl = alice.get_bucket_acl().bucket(&bucket).send().await.unwrap();
    let policy = aws_sdk_s3::types::AccessControlPolicy::builder()
        .set_owner(acl.owner().cloned())
        .set_grants(Some(acl.grants().to_vec()))
        .build();
    alice
        .put_bucket_acl()
        .bucket(&bucket)
        .access_control_policy(policy)
        .send()
        .await
        .unwrap();

    // Only the owner deletes the bucket or reads or changes its versioning: another user's
    // `permissions` (Bob may do anything in the tenant) do not make it his.
    let before = view.keys(&records).await;
    let bob_user = (BOB, PASSWORD);
    let r = as_user(&gw, bob_user, "DELETE", &format!("/{bucket}"), &[], b"").await;
    r.assert_hcp_error(403, "AccessDenied");
    let versioning = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let target = format!("/{bucket}?versioning");
    let r = as_user(&gw, bob_user, "PUT", &target, &[], versioning).await;
    r.assert_hcp_error(403, "AccessDenied");
    let target = format!("/{bucket}?versioning");
    let r = as_user(&gw, bob_user, "GET", &target, &[], b"").await;
    r.assert_hcp_error(403, "AccessDenied");
    assert!(!view.bucket_is_public(&format!("{prefix}{bucket}")).await);
    assert_eq!(view.keys(&records).await, before);
    assert!(alice.head_bucket().bucket(&bucket).send().await.is_ok());

    // The records bucket is out of clients' reach.
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "GET",
        &format!("/{records}"),
        &[],
        b"",
    )
    .await;
    if prefix.is_empty() {
        r.assert_hcp_error(400, "InvalidBucketName");
    } else {
        // (The client's name is another backend bucket: the prefix keeps it out of reach.)
        r.assert_hcp_error(404, "NoSuchBucket");
    }

    // Deleted: its records go; then Bob may create it, and it is his.
    alice.delete_bucket().bucket(&bucket).send().await.unwrap();
    assert!(view.keys(&records).await.is_empty());
    bob.create_bucket().bucket(&bucket).send().await.unwrap();
    assert!(listed(&bob).await.0.contains(&bucket));
    assert!(!listed(&alice).await.0.contains(&bucket));
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "PUT",
        &format!("/{bucket}"),
        &[],
        b"",
    )
    .await;
    r.assert_hcp_error(409, "BucketAlreadyExists");
    // An index entry a failed cleanup left behind lists nothing that is not Alice's.
    let leftover = format!("owned/{alice_id}/{prefix}{bucket}");
    view.put_object(&records, &leftover, b"{}").await;
    assert!(!listed(&alice).await.0.contains(&bucket));
    bob.delete_bucket().bucket(&bucket).send().await.unwrap();

    // A bucket made at the backend, not through the gateway, has no owner: nobody lists it,
    // nobody creates it, its ACL names HCP's `nobody`.
    let stray = unique_bucket("stray");
    view.create_bucket(&format!("{prefix}{stray}")).await;
    assert!(!listed(&alice).await.0.contains(&stray));
    let r = as_user(&gw, (USER, PASSWORD), "PUT", &format!("/{stray}"), &[], b"").await;
    r.assert_hcp_error(409, "BucketAlreadyExists");
    let acl = alice.get_bucket_acl().bucket(&stray).send().await.unwrap();
    assert_eq!(acl.owner().and_then(|o| o.id()), Some("nobody"));
    alice.delete_bucket().bucket(&stray).send().await.unwrap();

    // Anonymous callers own nothing: `GET /` is refused.
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let r = common::raw::send(&addr, "GET", b"/", &[], vec![]).await;
    r.assert_hcp_error(403, "AccessDenied");
}

#[tokio::test]
async fn buckets_owned_on_the_embedded_store() {
    buckets_owned_as_hcp_answers(Backend::Store, "").await;
}

#[tokio::test]
async fn buckets_owned_on_rgw() {
    // (With a prefix: the records name backend buckets; answers, the client's names.)
    buckets_owned_as_hcp_answers(Backend::Rgw, "own-").await;
}

/// A user with write ACL but not HCP's change owner permission.
const DAVE: &str = "dave";
/// A user with HCP's change owner permission but not write ACL.
const ERIN: &str = "erin";

/// An ACL document naming `owner` as owner, with its full control.
fn owned_by(owner: &str) -> String {
    format!(
        "<AccessControlPolicy><Owner><ID>{owner}</ID></Owner><AccessControlList><Grant>\
         <Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:type=\"CanonicalUser\"><ID>{owner}</ID></Grantee>\
         <Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>"
    )
}

/// HCP: the owner of a bucket, with write ACL and change owner, makes another user its owner
/// by an ACL body's `Owner` (manual, "Changing the owner of a bucket"): recorded as the new
/// owner's (its `GET /` lists it, the former owner's does not, the ACL names it, only it
/// deletes the bucket). Refused with nothing changed: another user's change of a bucket not
/// theirs (403), an owner without change owner (403), an owner that is no user of the tenant
/// (400), and an object's owner (501).
async fn owners_change_as_hcp_answers(backend: Backend, prefix: &str) {
    let records = unique_bucket("gw-records");
    // Dave lacks change owner, Erin write ACL (her bucket's full control is hers all the same).
    let user = |name: &str, allow: &str| {
        format!(
            "[[users]]\nusername = \"{name}\"\npassword = \"{PASSWORD}\"\npermissions = \
             [{{ tenant = \"t\", buckets = \"*\", allow = [{allow}] }}]\n"
        )
    };
    let users = user(DAVE, r#""read", "write", "read-acl", "write-acl", "admin""#)
        + &user(
            ERIN,
            r#""read", "write", "read-acl", "admin", "change-owner""#,
        );
    let Some(gw) = start_keeping_owners_with(backend, (prefix, &records), &users).await else {
        return;
    };
    let view = common::view::BackendView::of(&gw);
    let (alice, bob) = (
        gw.client(),
        gw.client_with(&hcp_access_key(BOB), &hcp_secret_key(PASSWORD)),
    );
    let (alice_id, bob_id) = (owner_id_of(USER), owner_id_of(BOB));
    let bucket = new_bucket(&alice, "given").await;
    let acl = format!("/{bucket}?acl");
    let (alice_user, bob_user) = ((USER, PASSWORD), (BOB, PASSWORD));
    alice
        .put_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    let mut before = view.keys(&records).await;
    before.sort();
    for (who, target, doc, status, code) in [
        (bob_user, &acl, owned_by(&bob_id), 403, "AccessDenied"),
        (
            alice_user,
            &acl,
            owned_by("not-a-user"),
            400,
            "InvalidArgument",
        ),
        (
            alice_user,
            &format!("/{bucket}/k?acl"),
            owned_by(&bob_id),
            501,
            "NotImplemented",
        ),
    ] {
        let r = as_user(&gw, who, "PUT", target, &[], doc.as_bytes()).await;
        r.assert_hcp_error(status, code);
        let mut now = view.keys(&records).await;
        now.sort();
        assert_eq!(now, before, "{target} {code}");
    }
    // Alice gives it to Bob.
    let r = as_user(
        &gw,
        alice_user,
        "PUT",
        &acl,
        &[],
        owned_by(&bob_id).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut kept = view.keys(&records).await;
    kept.retain(|k| !k.starts_with("acls/"));
    kept.sort();
    assert_eq!(
        kept,
        [
            format!("buckets/{prefix}{bucket}"),
            format!("owned/{bob_id}/{prefix}{bucket}")
        ]
    );
    assert!(listed(&bob).await.0.contains(&bucket));
    assert!(!listed(&alice).await.0.contains(&bucket));
    let shown = alice.get_bucket_acl().bucket(&bucket).send().await.unwrap();
    assert_eq!(shown.owner().and_then(|o| o.id()), Some(bob_id.as_str()));
    let r = as_user(&gw, alice_user, "DELETE", &format!("/{bucket}"), &[], b"").await;
    r.assert_hcp_error(403, "AccessDenied");
    // Without change owner, or without write ACL, the owner cannot give a bucket away.
    let dave_user = (DAVE, PASSWORD);
    let mine = unique_bucket("daves");
    let doc = owned_by(&alice_id);
    for (who, bucket) in [
        (dave_user, mine.as_str()),
        ((ERIN, PASSWORD), &unique_bucket("erins")),
    ] {
        let r = as_user(&gw, who, "PUT", &format!("/{bucket}"), &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let before = view.keys(&records).await;
        let target = format!("/{bucket}?acl");
        let r = as_user(&gw, who, "PUT", &target, &[], doc.as_bytes()).await;
        r.assert_hcp_error(403, "AccessDenied");
        assert_eq!(view.keys(&records).await, before, "{}", who.0);
    }
    // The owner naming itself changes nothing.
    let r = as_user(
        &gw,
        bob_user,
        "PUT",
        &acl,
        &[],
        owned_by(&bob_id).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(listed(&bob).await.0.contains(&bucket));
    // Bob, the owner now, deletes what he was given.
    bob.delete_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    bob.delete_bucket().bucket(&bucket).send().await.unwrap();
    let r = as_user(&gw, dave_user, "DELETE", &format!("/{mine}"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
}

#[tokio::test]
async fn owners_change_on_the_embedded_store() {
    owners_change_as_hcp_answers(Backend::Store, "").await;
}

#[tokio::test]
async fn owners_change_on_rgw() {
    owners_change_as_hcp_answers(Backend::Rgw, "own-").await;
}

/// HCP: an upload's parts are listed, and it is aborted, by its initiator or by the bucket's
/// owner ("…do not match the credentials used to initiate the multipart upload or the
/// credentials for the owner of the bucket"); its parts and its completion stay the
/// initiator's, and another user is refused with nothing changed.
#[tokio::test]
async fn the_bucket_s_owner_lists_and_aborts_another_s_upload() {
    let records = unique_bucket("gw-records");
    let Some(gw) = start_keeping_owners(Backend::Store, "", &records).await else {
        return;
    };
    let view = common::view::BackendView::of(&gw);
    let alice = gw.client();
    let bob = gw.client_with(&hcp_access_key(BOB), &hcp_secret_key(PASSWORD));
    let bucket = new_bucket(&alice, "uploads").await;
    let start = |s3: &aws_sdk_s3::Client, key: &'static str| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            let up = s3.create_multipart_upload().bucket(&bucket).key(key);
            let id = up.send().await.unwrap().upload_id().unwrap().to_string();
            let part = s3.upload_part().bucket(&bucket).key(key).upload_id(&id);
            let part = part.part_number(1).body(b"part".to_vec().into());
            part.send().await.unwrap();
            id
        }
    };
    let bobs = start(&bob, "bobs").await;
    let alices = start(&alice, "alices").await;

    // The uploads listing names each upload's initiator as its initiator and owner (HCP's
    // manual), where the store names neither.
    for pretty in [false, true] {
        let target = format!("/{bucket}?uploads");
        let headers: &[(&str, &str)] = match pretty {
            true => &[("x-hcp-pretty-print", "true")],
            false => &[],
        };
        let r = as_user(&gw, (USER, PASSWORD), "GET", &target, headers, b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let text: String = r.text().split_whitespace().collect();
        for (key, user) in [("bobs", BOB), ("alices", USER)] {
            let party = |tag: &str| {
                format!(
                    "<{tag}><ID>{}</ID><DisplayName>{user}</DisplayName></{tag}>",
                    owner_id_of(user)
                )
            };
            let upload = text
                .split("<Upload>")
                .find(|u| u.contains(&format!("<Key>{key}</Key>")))
                .unwrap_or_else(|| panic!("{key}: {text}"));
            for tag in ["Initiator", "Owner"] {
                assert!(upload.contains(&party(tag)), "{key} {tag}: {text}");
            }
        }
    }

    // The owner lists Bob's parts, Bob named as their initiator and owner.
    let listed = alice
        .list_parts()
        .bucket(&bucket)
        .key("bobs")
        .upload_id(&bobs);
    let listed = listed.send().await.unwrap();
    assert_eq!(listed.parts().len(), 1);
    let bob_id = owner_id_of(BOB);
    assert_eq!(
        listed.initiator().and_then(|i| i.id()),
        Some(bob_id.as_str())
    );
    assert_eq!(listed.owner().and_then(|o| o.id()), Some(bob_id.as_str()));

    // Bob, neither the owner nor the initiator of Alice's upload: refused, nothing changed.
    let before = view.uploads(&bucket).await.len();
    for (method, target) in [
        ("GET", format!("/{bucket}/alices?uploadId={alices}")),
        ("DELETE", format!("/{bucket}/alices?uploadId={alices}")),
    ] {
        let r = as_user(&gw, (BOB, PASSWORD), method, &target, &[], b"").await;
        r.assert_hcp_error(403, "AccessDenied");
    }
    assert_eq!(view.uploads(&bucket).await.len(), before);
    // The owner completes no one else's upload.
    let complete = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag>\
        </Part></CompleteMultipartUpload>";
    let target = format!("/{bucket}/bobs?uploadId={bobs}");
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "POST",
        &target,
        &[],
        complete.as_bytes(),
    )
    .await;
    r.assert_hcp_error(403, "AccessDenied");

    // The owner aborts Bob's upload.
    let abort = alice.abort_multipart_upload().bucket(&bucket).key("bobs");
    abort.upload_id(&bobs).send().await.unwrap();
    assert_eq!(view.uploads(&bucket).await.len(), before - 1);
}

/// A records bucket missing when the first `GET /` comes (its backend was down at start, or an
/// operator removed it while empty) is made then: the list is empty, not a 503.
#[tokio::test]
async fn a_missing_records_bucket_is_made_when_first_needed() {
    let records = unique_bucket("gw-records");
    let Some(gw) = start_keeping_owners(Backend::Store, "", &records).await else {
        return;
    };
    let view = common::view::BackendView::of(&gw);
    view.delete_bucket(&records).await;
    let (names, owner) = listed(&gw.client()).await;
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(owner.map(|o| o.1).as_deref(), Some(USER));
    assert!(view.keys(&records).await.is_empty());
    let bucket = new_bucket(&gw.client(), "after").await;
    assert_eq!(listed(&gw.client()).await.0, [bucket]);
}

/// Without a records bucket the tenant's users share its buckets, as before: everyone lists
/// every bucket, and the tenant stands in for the owner.
#[tokio::test]
async fn without_records_users_share_the_tenants_buckets() {
    let Some(gw) = start_with(Backend::Store, "", &bob_config()).await else {
        return;
    };
    let alice = gw.client();
    let bob = gw.client_with(&hcp_access_key(BOB), &hcp_secret_key(PASSWORD));
    let bucket = new_bucket(&alice, "shared").await;
    assert!(listed(&bob).await.0.contains(&bucket));
    let r = as_user(&gw, (BOB, PASSWORD), "PUT", &format!("/{bucket}"), &[], b"").await;
    r.assert_hcp_error(200, "BucketAlreadyOwnedByYou");
}

/// A gateway on moto in eu-west-1 (which answers a repeated create 409 BucketAlreadyOwnedByYou)
/// through a front that loses the answer to the first create of the bucket it names; its
/// tenant keeps owners in `records` where given.
async fn losing_a_create(
    records: Option<&str>,
) -> Option<(
    TestGateway,
    String,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
)> {
    let dir = tempfile::tempdir().unwrap();
    let entry = Backend::Moto.config_entry(&dir.path().join("data"))?;
    let endpoint = std::env::var("MOTO_ENDPOINT").unwrap();
    let bucket = unique_bucket("lost-create");
    let (front, lost) = lossy_front(
        endpoint.trim_start_matches("http://"),
        format!("PUT /{bucket}/ "),
    )
    .await;
    let entry = entry
        .replace(&format!("{endpoint:?}"), &format!("\"http://{front}\""))
        .replace("region = \"us-east-1\"", "region = \"eu-west-1\"");
    assert!(entry.contains(&front.to_string()), "{entry}");
    let text = match records {
        Some(records) => keeping_owners(("", records), "", &entry),
        None => format!("{}\n{entry}", base_config("")),
    };
    let gw = start_text(&text, dir, Backend::Moto).await;
    Some((gw, bucket, lost))
}

/// A CreateBucket whose answer was lost on its way back (the bucket created) is sent again by
/// the gateway — with or without a `CreateBucketConfiguration` (the aws cli's outside
/// us-east-1: the gateway sends its own document with every try); where the backend refuses a
/// repeated create (AWS outside us-east-1: 409 BucketAlreadyOwnedByYou) the bucket is still the
/// creator's — answered 200 as created and recorded, so that another user cannot take it.
#[tokio::test]
async fn a_create_whose_answer_was_lost_is_the_creator_s() {
    let located = b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint>\
        </CreateBucketConfiguration>";
    for body in [&b""[..], &located[..]] {
        let records = unique_bucket("gw-records");
        let Some((gw, bucket, lost)) = losing_a_create(Some(&records)).await else {
            return;
        };
        let target = format!("/{bucket}");
        let r = as_user(&gw, (USER, PASSWORD), "PUT", &target, &[], body).await;
        let what = String::from_utf8_lossy(body);
        assert!(
            lost.load(std::sync::atomic::Ordering::SeqCst),
            "{what}: the first answer was lost"
        );
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        assert!(r.text().is_empty(), "{what}: created, not {}", r.text());
        assert_eq!(r.header("location"), Some(target.as_str()));

        let view = common::view::BackendView::of(&gw);
        let mut kept = view.keys(&records).await;
        kept.sort();
        assert_eq!(
            kept,
            [
                format!("buckets/{bucket}"),
                format!("owned/{}/{bucket}", owner_id_of(USER))
            ],
            "{what}"
        );
        // (Not `GET /`: moto 5.2 refuses the signature of a listing whose prefix holds a
        // `/`, the aws cli's as well as the gateway's records listing.)
        let r = as_user(&gw, (BOB, PASSWORD), "PUT", &target, &[], b"").await;
        r.assert_hcp_error(409, "BucketAlreadyExists");
    }
}

/// A CreateBucket whose owner cannot be recorded (the records bucket refusing the write)
/// leaves no bucket behind — an ownerless bucket would be anyone's — and is 503
/// ServiceUnavailable, so that the creator tries again; the retry makes it, and its records.
#[tokio::test]
async fn a_create_whose_owner_cannot_be_recorded_leaves_no_bucket() {
    let (prefix, records, bucket) = (
        "own-",
        unique_bucket("gw-records"),
        unique_bucket("unowned"),
    );
    let dir = tempfile::tempdir().unwrap();
    let line = format!("PUT /{records}/buckets/{prefix}{bucket} ");
    let Some((entry, armed)) = rgw_refusing_once(dir.path(), line).await else {
        return;
    };
    let text = keeping_owners((prefix, &records), "", &entry);
    let gw = start_text(&text, dir, Backend::Rgw).await;
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let target = format!("/{bucket}");
    let before = gw.backend_requests();
    let r = as_user(&gw, (USER, PASSWORD), "PUT", &target, &[], b"").await;
    r.assert_hcp_error(503, "ServiceUnavailable");
    assert!(
        !armed.load(std::sync::atomic::Ordering::SeqCst),
        "the record's write was not refused"
    );
    assert!(gw.backend_requests() > before);
    let view = common::view::BackendView::rgw();
    let backend_bucket = format!("{prefix}{bucket}");
    assert_eq!(
        view.bucket_location(&backend_bucket).await,
        None,
        "the bucket was left"
    );
    assert!(
        view.keys(&records).await.is_empty(),
        "{:?}",
        view.keys(&records).await
    );
    let r = as_user(&gw, (USER, PASSWORD), "PUT", &target, &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(view.bucket_location(&backend_bucket).await.is_some());
    let mut kept = view.keys(&records).await;
    kept.sort();
    let owned = format!("owned/{}/{backend_bucket}", owner_id_of(USER));
    assert_eq!(kept, [format!("buckets/{backend_bucket}"), owned]);
    let r = as_user(&gw, (BOB, PASSWORD), "PUT", &target, &[], b"").await;
    r.assert_hcp_error(409, "BucketAlreadyExists");
}

/// A DeleteBucket whose answer was lost (the bucket deleted) is sent again by the gateway and
/// finds no bucket: the first try deleted it, so it is answered 204 and the bucket's records
/// go with it — another user then creates the name as his (before: 404 NoSuchBucket, the
/// owner's records left behind, the name held by them: 409 BucketAlreadyExists). A bucket
/// that was never there stays 404.
#[tokio::test]
async fn a_delete_whose_answer_was_lost_is_a_delete() {
    let records = unique_bucket("gw-records");
    let (dir, dir_never) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let Some(entry) = Backend::Moto.config_entry(&dir.path().join("data")) else {
        return;
    };
    let endpoint = std::env::var("MOTO_ENDPOINT").unwrap();
    let bucket = unique_bucket("lost-delete");
    let at = endpoint.trim_start_matches("http://");
    let (front, lost) = lossy_front(at, format!("DELETE /{bucket}/ ")).await;
    let entry = entry.replace(&format!("{endpoint:?}"), &format!("\"http://{front}\""));
    let text = keeping_owners(("", &records), "", &entry);
    let gw = start_text(&text, dir, Backend::Moto).await;
    let target = format!("/{bucket}");
    let r = as_user(&gw, (USER, PASSWORD), "PUT", &target, &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&gw, (USER, PASSWORD), "DELETE", &target, &[], b"").await;
    assert!(
        lost.load(std::sync::atomic::Ordering::SeqCst),
        "the answer was lost"
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let view = common::view::BackendView::of(&gw);
    assert!(view.keys(&records).await.is_empty(), "records left");
    let r = as_user(&gw, (BOB, PASSWORD), "PUT", &target, &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A bucket that was never there is not deleted by a lost try: 404 all the same.
    let never = unique_bucket("never-there");
    let (front, lost) = lossy_front(at, format!("DELETE /{never}/ ")).await;
    let entry = Backend::Moto
        .config_entry(&dir_never.path().join("data"))
        .unwrap();
    let entry = entry.replace(&format!("{endpoint:?}"), &format!("\"http://{front}\""));
    let text = keeping_owners(("", &records), "", &entry);
    let gw = start_text(&text, dir_never, Backend::Moto).await;
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "DELETE",
        &format!("/{never}"),
        &[],
        b"",
    )
    .await;
    assert!(
        lost.load(std::sync::atomic::Ordering::SeqCst),
        "the answer was lost"
    );
    r.assert_hcp_error(404, "NoSuchBucket");
}

/// Where the tenant keeps no owners the gateway never looked for the bucket before sending:
/// the backend's 409 to the repeated create is HCP's answer to a create of a bucket one has
/// (200 BucketAlreadyOwnedByYou), as a client's own retry would get from HCP.
#[tokio::test]
async fn a_lost_create_without_owners_is_answered_as_a_repeated_one() {
    let Some((gw, bucket, lost)) = losing_a_create(None).await else {
        return;
    };
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "PUT",
        &format!("/{bucket}"),
        &[],
        b"",
    )
    .await;
    assert!(lost.load(std::sync::atomic::Ordering::SeqCst));
    r.assert_hcp_error(200, "BucketAlreadyOwnedByYou");
    let r = as_user(
        &gw,
        (USER, PASSWORD),
        "HEAD",
        &format!("/{bucket}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
}

//! The client matrix: real S3 clients nobody on this project wrote, each running one scenario
//! through the gateway on the embedded default (config.toml's local backend, demo user) and on
//! Ceph radosgw: create a bucket, put and get back byte-identical a small object and a
//! 64 MiB + 1 KiB object the client uploads in parts, list, fetch a presigned GET URL, surface
//! one HCP error by its code, delete.
//!
//! aws-sdk-s3 runs here; boto3, the aws cli, s3cmd (SigV2 and SigV4), rclone and minio-py run from
//! `tests/clients/matrix.py`, `@aws-sdk/client-s3` from `tests/clients/node/matrix.mjs`.

mod common;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedMultipartUpload;
use common::*;
use hcp_s3_gateway::config::{hcp_access_key, hcp_secret_key};

#[derive(Clone, Copy)]
enum On {
    EmbeddedDefault,
    Rgw,
}

/// A gateway and the keys of a user who may do everything on it.
struct Target {
    gw: TestGateway,
    access_key: String,
    secret_key: String,
}

async fn target(on: On) -> Option<Target> {
    match on {
        On::EmbeddedDefault => Some(Target {
            gw: start_embedded_default().await,
            access_key: hcp_access_key("demo-user"),
            secret_key: hcp_secret_key("demo-password"),
        }),
        On::Rgw => Some(Target {
            gw: start(Backend::Rgw).await?,
            access_key: hcp_access_key(USER),
            secret_key: hcp_secret_key(PASSWORD),
        }),
    }
}

/// Completed multipart uploads the gateway answered 200 for, whatever tenant or backend.
fn completed_uploads(gw: &TestGateway) -> u64 {
    use prometheus::core::Collector;
    gw.metrics()
        .requests
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter(|m| {
            let label = |name: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_string())
            };
            label("operation").as_deref() == Some("CompleteMultipartUpload")
                && label("status").as_deref() == Some("200")
                && label("code").as_deref() == Some("")
        })
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// Runs a client script that prints `ok NAME` per check; all `checks` must pass and the
/// client must have completed a multipart upload through the gateway.
async fn run_script(on: On, program: &str, script: &str, client: Option<&str>, checks: usize) {
    let Some(t) = target(on).await else { return };
    let bucket = unique_bucket(client.unwrap_or("node"));
    let mut args: Vec<String> = vec![script.into()];
    args.extend(client.map(str::to_string));
    args.extend([
        t.gw.endpoint.clone(),
        t.access_key.clone(),
        t.secret_key.clone(),
        bucket,
    ]);
    if matches!(on, On::EmbeddedDefault) && client.is_some() {
        // The store keeps HCP's long keys: the tree gets one of over 1,100 bytes.
        args.push("long-keys".into());
    }
    run_client_program(program, args, checks).await;
    assert!(
        completed_uploads(&t.gw) >= 1,
        "the 64 MiB object went up in one piece, not as a multipart upload"
    );
}

async fn python_client(on: On, client: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/matrix.py");
    run_script(on, "python3", script, Some(client), 11).await;
}

async fn node_client(on: On) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/node/matrix.mjs");
    run_script(on, "node", script, None, 11).await;
}

/// The scenario with aws-sdk-s3 (Rust).
async fn rust_sdk(on: On) {
    let Some(t) = target(on).await else { return };
    let s3 = t.gw.client_with(&t.access_key, &t.secret_key);
    let bucket = new_bucket(&s3, "rust-sdk").await;

    let small = b"hello from aws-sdk-s3".to_vec();
    s3.put_object()
        .bucket(&bucket)
        .key("small.txt")
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap();

    // 64 MiB + 1 KiB in eight 8 MiB parts and a last one of 1 KiB.
    let mut sizes = vec![8 * 1024 * 1024; 8];
    sizes.push(1024);
    let (id, parts) = upload_parts(&s3, &bucket, "big.bin", &sizes).await;
    let big: Vec<u8> = sizes
        .iter()
        .enumerate()
        .flat_map(|(i, &size)| pattern(size, i as u64 + 1))
        .collect();
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key("big.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(object_bytes(&s3, &bucket, "small.txt").await, small);
    assert!(
        object_bytes(&s3, &bucket, "big.bin").await == big,
        "big.bin differs"
    );

    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["big.bin", "small.txt"]);

    let presigned = s3
        .get_object()
        .bucket(&bucket)
        .key("small.txt")
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let fetched = reqwest::get(presigned.uri()).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), small);

    // HCP's longest key, 4,095 bytes, where the backend stores it (the embedded store);
    // RGW stores 1,024. A longer key is HCP's 400 KeyTooLong, which the SDK reports by its code.
    let longest = match on {
        On::EmbeddedDefault => 4095,
        On::Rgw => 1024,
    };
    let long_key = format!("long/{}", "é".repeat((longest - 5) / 2));
    let long_key = format!("{long_key}{}", "k".repeat(longest - long_key.len()));
    assert_eq!(long_key.len(), longest);
    let body = ByteStream::from_static(b"long");
    let put = s3.put_object().bucket(&bucket).key(&long_key).body(body);
    put.send().await.unwrap();
    assert_eq!(object_bytes(&s3, &bucket, &long_key).await, b"long");
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("long/");
    let listed = listed.send().await.unwrap();
    assert_eq!(listed.contents()[0].key(), Some(long_key.as_str()));
    let delete = s3.delete_object().bucket(&bucket).key(&long_key);
    delete.send().await.unwrap();
    for too_long in [format!("{long_key}k"), "k".repeat(4096)] {
        let put = s3.put_object().bucket(&bucket).key(too_long);
        let err = put.body(ByteStream::from_static(b"x")).send().await;
        assert_eq!(
            sdk_error(&err.unwrap_err()),
            (400, "KeyTooLong".to_string())
        );
    }

    for key in ["small.txt", "big.bin"] {
        s3.delete_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    s3.delete_bucket().bucket(&bucket).send().await.unwrap();
    assert!(s3.head_bucket().bucket(&bucket).send().await.is_err());
    assert!(completed_uploads(&t.gw) >= 1);
}

/// Each test twice: `embedded_default::NAME` and `rgw::NAME`, with
/// `$on` naming the target.
macro_rules! on_both {
    ($on:ident; $($name:ident => $run:expr;)*) => {
        mod embedded_default {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                let $on = On::EmbeddedDefault;
                $run.await
            })*
        }
        mod rgw {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                let $on = On::Rgw;
                $run.await
            })*
        }
    };
}

on_both! {
    on;
    aws_sdk_s3_rust => rust_sdk(on);
    boto3 => python_client(on, "boto3");
    aws_cli => python_client(on, "awscli");
    s3cmd_sigv2 => python_client(on, "s3cmd-v2");
    s3cmd_sigv4 => python_client(on, "s3cmd-v4");
    rclone => python_client(on, "rclone");
    minio_py => python_client(on, "minio");
    aws_sdk_javascript => node_client(on);
}

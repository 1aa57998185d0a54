//! Backends as users deploy them: reached over TLS with their own certificates.

mod common;

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
    let bucket = unique_bucket("tls");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
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
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("b")
        .send()
        .await
        .unwrap();
    assert!(got.body.collect().await.unwrap().into_bytes() == data[..]);
    let reused = gw
        .gw
        .as_ref()
        .unwrap()
        .gateway
        .metrics
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
    untrusting.stop().await;
}

//! The manual's status tables, row by row (issue "HCP's semantics beyond the error table").
//!
//! `tests/manual/status_rows.tsv` is every row of the 27 status tables of Hitachi's S3 manual
//! for HCP 9.x (`scripts/manual_status_rows.py` extracts it). Each row is answered here:
//! - the rows every operation shares are provoked below, operation by operation, through the
//!   gateway: its success (on the embedded store), 403 (wrong credentials; no permission),
//!   404 (no such bucket), 500 and 503 (a backend answering InternalError / SlowDown);
//! - the operation-specific rows (`tests/manual/status_rows.toml`) name the test that
//!   provokes them, or why nothing can (e.g. "HCP is being upgraded").
//!
//! [`every_row_is_answered`] fails when a row is neither, or a named test does not exist.

mod common;

use common::dialect_server::Vendor;
use common::*;

/// One operation section of the manual and a request for it: `{b}` is the bucket, `{u}` an
/// upload id of `mp`.
struct Op {
    section: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    /// The documented success status.
    ok: u16,
}

const COMPLETE: &[u8] = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>\
<ETag>\"PART_ETAG\"</ETag></Part></CompleteMultipartUpload>";

/// The operations in the manual's order (the POST object upload's form rows are in the TOML).
const OPS: &[Op] = &[
    Op {
        section: "Creating a bucket",
        method: "PUT",
        path: "/{b}-new",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Listing the buckets you own",
        method: "GET",
        path: "/",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Checking the existence of a bucket",
        method: "HEAD",
        path: "/{b}",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Adding an ACL to a bucket",
        method: "PUT",
        path: "/{b}?acl",
        headers: &[("x-amz-acl", "private")],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Retrieving the ACL for a bucket",
        method: "GET",
        path: "/{b}?acl",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Enabling or disabling versioning for a bucket",
        method: "PUT",
        path: "/{b}?versioning",
        headers: &[],
        body: b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>",
        ok: 200,
    },
    Op {
        section: "Checking the versioning status of a bucket",
        method: "GET",
        path: "/{b}?versioning",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Listing bucket contents (version 1)",
        method: "GET",
        path: "/{b}",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Listing bucket contents (version 2)",
        method: "GET",
        path: "/{b}?list-type=2",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Listing the in-progress multipart uploads in a bucket",
        method: "GET",
        path: "/{b}?uploads",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Storing an object",
        method: "PUT",
        path: "/{b}/stored",
        headers: &[],
        body: b"data",
        ok: 200,
    },
    Op {
        section: "Creating a folder",
        method: "PUT",
        path: "/{b}/folder/",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Checking the existence of an object or folder",
        method: "HEAD",
        path: "/{b}/k",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Adding an ACL to an object",
        method: "PUT",
        path: "/{b}/k?acl",
        headers: &[("x-amz-acl", "private")],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Retrieving the ACL for an object",
        method: "GET",
        path: "/{b}/k?acl",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Copying an object",
        method: "PUT",
        path: "/{b}/copied",
        headers: &[("x-amz-copy-source", "/{b}/k")],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Retrieving an object",
        method: "GET",
        path: "/{b}/k",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Uploading a part of a multipart upload",
        method: "PUT",
        path: "/{b}/mp?partNumber=1&uploadId={u}",
        headers: &[],
        body: b"part",
        ok: 200,
    },
    Op {
        section: "Uploading a part of a multipart object by copying",
        method: "PUT",
        path: "/{b}/mp?partNumber=2&uploadId={u}",
        headers: &[("x-amz-copy-source", "/{b}/k")],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Listing the parts of a multipart upload",
        method: "GET",
        path: "/{b}/mp?uploadId={u}",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Completing a multipart upload",
        method: "POST",
        path: "/{b}/mp?uploadId={u}",
        headers: &[],
        body: COMPLETE,
        ok: 200,
    },
    Op {
        section: "Initiating a multipart upload",
        method: "POST",
        path: "/{b}/mp2?uploads",
        headers: &[],
        body: b"",
        ok: 200,
    },
    Op {
        section: "Aborting a multipart upload",
        method: "DELETE",
        path: "/{b}/mp2?uploadId={u2}",
        headers: &[],
        body: b"",
        ok: 204,
    },
    Op {
        section: "Deleting multiple objects",
        method: "POST",
        path: "/{b}?delete",
        headers: &[],
        body: b"<Delete><Object><Key>copied</Key></Object></Delete>",
        ok: 200,
    },
    Op {
        section: "Deleting an object or folder",
        method: "DELETE",
        path: "/{b}/k",
        headers: &[],
        body: b"",
        ok: 204,
    },
    Op {
        section: "Deleting a bucket",
        method: "DELETE",
        path: "/{b}-new",
        headers: &[],
        body: b"",
        ok: 204,
    },
];

/// The request of `op`, with the names filled in and Content-MD5 where a document needs it.
struct Asked {
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn ask(op: &Op, bucket: &str, uploads: (&str, &str), part_etag: &str) -> Asked {
    let fill = |s: &str| {
        s.replace("{b}", bucket)
            .replace("{u2}", uploads.1)
            .replace("{u}", uploads.0)
    };
    let body = String::from_utf8_lossy(op.body)
        .replace("PART_ETAG", part_etag)
        .into_bytes();
    let mut headers: Vec<(String, String)> = op
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), fill(v)))
        .collect();
    if !body.is_empty() && op.path.contains('?') && !op.path.contains("partNumber") {
        headers.push(("content-md5".into(), content_md5(&body)));
    }
    Asked {
        target: fill(op.path),
        headers,
        body,
    }
}

async fn send_as(gw: &TestGateway, who: (&str, &str), op: &Op, a: &Asked) -> raw::RawResponse {
    let headers: Vec<(&str, &str)> = a
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    as_user(gw, who, op.method, &a.target, &headers, &a.body).await
}

/// An error answer: status and code, and HCP's error document where the method has a body.
fn assert_error(op: &Op, r: &raw::RawResponse, status: u16, codes: &[&str]) {
    assert_eq!(r.status, status, "{}: {}", op.section, r.text());
    if op.method != "HEAD" {
        let code = r.code();
        assert!(codes.contains(&code.as_str()), "{}: {code}", op.section);
        assert_hcp_error_body(&r.text(), &code);
    }
}

fn upload_id(r: &raw::RawResponse) -> String {
    let t = r.text();
    t.split("<UploadId>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string()
}

/// Every operation's success, 403 (credentials, permission) and 404 (no such bucket) rows on
/// the embedded store; its 500 and 503 rows through a backend answering so. The upload ids
/// the store gateway issued serve at the second gateway (the same binding secret).
#[tokio::test]
async fn the_rows_every_operation_has() {
    let Some(gw) = start_with_tenant(Backend::Store, "folders = true", "").await else {
        return;
    };
    let admin = (USER, PASSWORD);
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "rows").await;
    let missing = format!("{bucket}-missing");
    let at = |path: &str| path.replace("{b}", &bucket);
    assert_eq!(
        as_user(&gw, admin, "PUT", &at("/{b}/k"), &[], b"source")
            .await
            .status,
        200
    );
    let r = as_user(&gw, admin, "POST", &at("/{b}/mp?uploads"), &[], b"").await;
    let upload = upload_id(&r);
    let r = as_user(&gw, admin, "POST", &at("/{b}/mp2?uploads"), &[], b"").await;
    let upload2 = upload_id(&r);
    let (dialect, server) = start_with_dialect(Vendor::Aws, "").await;
    let mut part_etag = String::new();
    for op in OPS {
        let a = ask(
            op,
            &bucket,
            (&upload, &upload2),
            part_etag.trim_matches('"'),
        );
        // 403: the credentials are not valid; the user has no permission for the bucket.
        let r = send_as(&gw, (USER, "not-the-password"), op, &a).await;
        assert_error(op, &r, 403, &["SignatureDoesNotMatch"]);
        if op.section != "Listing the buckets you own" {
            let r = send_as(&gw, (READER, READER_PASSWORD), op, &a).await;
            assert_error(op, &r, 403, &["AccessDenied"]);
        }
        // 404: no such bucket (where the table has the row).
        if op.section != "Creating a bucket" && op.section != "Listing the buckets you own" {
            let gone = ask(op, &missing, (&upload, &upload2), "e");
            let r = send_as(&gw, admin, op, &gone).await;
            assert_error(op, &r, 404, &["NoSuchBucket", "NoSuchUpload"]);
        }
        // 500 and 503: what the backend answers.
        for (directive, status, code) in [
            ("error|InternalError|500", 500, "InternalError"),
            ("error|SlowDown|503", 503, "ServiceUnavailable"),
        ] {
            server.respond_to("*", directive);
            let r = send_as(&dialect, admin, op, &a).await;
            assert_error(op, &r, status, &[code]);
        }
        server.clear();
        // The success.
        let r = send_as(&gw, admin, op, &a).await;
        assert_eq!(r.status, op.ok, "{}: {}", op.section, r.text());
        if op.section == "Uploading a part of a multipart upload" {
            part_etag = r.header("etag").unwrap().to_string();
        }
    }
}

/// The form upload's 500 and 503 rows: a form whose object the backend refuses so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_upload_answers_the_backends_failure() {
    let (gw, server) = start_with_dialect(Vendor::Aws, "").await;
    let (ak, sk) = keys(USER, PASSWORD);
    for (directive, status, code) in [
        ("error|InternalError|500", "500", "InternalError"),
        ("error|SlowDown|503", "503", "ServiceUnavailable"),
    ] {
        server.respond_to("PUT", directive);
        let args = [&gw.endpoint, &ak, &sk, "forms", status, code];
        let args = args.iter().map(|a| a.to_string()).collect();
        run_python_client("post_form_status.py", args, 1).await;
    }
}

/// What a row of the manual is answered by.
#[derive(serde::Deserialize)]
struct Row {
    section: String,
    status: u16,
    /// `file.rs::function` of a test that provokes it.
    #[serde(default)]
    test: String,
    /// Why no test can provoke it.
    #[serde(default)]
    not_provokable: String,
    /// What is not yet answered as HCP answers it.
    #[serde(default)]
    gap: String,
}

#[derive(serde::Deserialize)]
struct Rows {
    row: Vec<Row>,
}

/// Every row of the manual's status tables is provoked by a test (the shared rows by
/// [`the_rows_every_operation_has`], the others by the test the TOML names, which must exist)
/// or listed with the reason it cannot be; and the TSV is the manual's, where it is at hand.
#[test]
fn every_row_is_answered() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tsv = std::fs::read_to_string(root.join("tests/manual/status_rows.tsv")).unwrap();
    let toml = std::fs::read_to_string(root.join("tests/manual/status_rows.toml")).unwrap();
    let rows: Rows = toml::from_str(&toml).unwrap();
    let mut unanswered = Vec::new();
    let (mut shared, mut particular, mut specific) = (0, 0, 0);
    let (mut not_provokable, mut gaps) = (0, 0);
    for line in tsv.lines() {
        let mut cells = line.split('\t');
        let (section, status) = (cells.next().unwrap(), cells.next().unwrap());
        let status: u16 = status.parse().unwrap();
        let op = OPS.iter().find(|o| o.section == section);
        let shared_row = op.is_some_and(|o| {
            status == o.ok
                || matches!(status, 403 | 500 | 503)
                || (status == 404
                    && !matches!(section, "Creating a bucket" | "Listing the buckets you own"))
        });
        if shared_row {
            shared += 1;
            continue;
        }
        if CASES
            .iter()
            .any(|c| c.section == section && c.status == status)
        {
            particular += 1;
            continue;
        }
        match rows
            .row
            .iter()
            .find(|r| r.section == section && r.status == status)
        {
            Some(r) if !r.test.is_empty() => {
                let (file, function) = r.test.split_once("::").unwrap();
                let source = std::fs::read_to_string(root.join(file))
                    .unwrap_or_else(|_| panic!("{section} {status}: no file {file}"));
                assert!(
                    source.contains(&format!("fn {function}(")),
                    "{section} {status}: no test {function} in {file}"
                );
                specific += 1;
            }
            Some(r) if !r.not_provokable.is_empty() => not_provokable += 1,
            Some(r) if !r.gap.is_empty() => gaps += 1,
            _ => unanswered.push(format!("{section} {status}")),
        }
    }
    assert!(
        unanswered.is_empty(),
        "rows nobody answers: {unanswered:#?}"
    );
    let answered = shared + particular + specific + not_provokable + gaps;
    assert_eq!(answered, tsv.lines().count());
    eprintln!(
        "rows: {shared} shared and {particular} particular (tests/status_rows.rs), {specific} \
         by other tests, {not_provokable} not provokable, {gaps} gaps"
    );
    let manual = root.join("../shared/reference/hcp-manual/hcp-s3-api.md");
    if manual.exists() {
        let out = std::process::Command::new("python3")
            .arg(root.join("scripts/manual_status_rows.py"))
            .arg(&manual)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            tsv,
            "regenerate the TSV"
        );
    }
}

/// One row particular to an operation: the request that meets its condition and the answer.
struct Case {
    section: &'static str,
    status: u16,
    /// The codes HCP may answer it with (none for a HEAD or a success).
    codes: &'static [&'static str],
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
}

const BAD_GRANT: (&str, &str) = ("x-amz-grant-read", "emailAddress=\"nobody@nowhere.test\"");

/// The rows particular to an operation that a request can meet, on the embedded store with
/// HCP's defaults (no overwrite) and folders: `{b}` holds `k` (`source`, ETag `{e}`) and the
/// folder `f/`; `{u}` is an upload of `mp`.
const CASES: &[Case] = &[
    Case {
        section: "Creating a bucket",
        status: 400,
        codes: &["InvalidBucketName"],
        method: "PUT",
        path: "/ab",
        headers: &[],
        body: b"",
    },
    Case {
        section: "Creating a bucket",
        status: 501,
        codes: &["NotImplemented"],
        method: "PUT",
        path: "/{b}-acl",
        headers: &[("x-amz-acl", "no-such-acl")],
        body: b"",
    },
    Case {
        section: "Adding an ACL to a bucket",
        status: 400,
        codes: &["InvalidArgument"],
        method: "PUT",
        path: "/{b}?acl",
        headers: &[BAD_GRANT],
        body: b"",
    },
    Case {
        section: "Enabling or disabling versioning for a bucket",
        status: 400,
        codes: &["MalformedXML", "IllegalVersioningConfigurationException"],
        method: "PUT",
        path: "/{b}?versioning",
        headers: &[],
        body: b"<VersioningConfiguration><Status>Sometimes</Status></VersioningConfiguration>",
    },
    Case {
        section: "Listing bucket contents (version 1)",
        status: 400,
        codes: &["InvalidArgument"],
        method: "GET",
        path: "/{b}?max-keys=-1",
        headers: &[],
        body: b"",
    },
    Case {
        section: "Listing bucket contents (version 2)",
        status: 400,
        codes: &["InvalidArgument"],
        method: "GET",
        path: "/{b}?list-type=2&max-keys=many",
        headers: &[],
        body: b"",
    },
    Case {
        section: "Listing the in-progress multipart uploads in a bucket",
        status: 400,
        codes: &["InvalidArgument"],
        method: "GET",
        path: "/{b}?uploads&max-uploads=many",
        headers: &[],
        body: b"",
    },
    Case {
        section: "Deleting a bucket",
        status: 409,
        codes: &["BucketNotEmpty"],
        method: "DELETE",
        path: "/{b}",
        headers: &[],
        body: b"",
    },
    Case {
        section: "Storing an object",
        status: 400,
        codes: &["BadDigest", "InvalidDigest"],
        method: "PUT",
        path: "/{b}/md5",
        headers: &[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
        body: b"not empty",
    },
    Case {
        section: "Storing an object",
        status: 409,
        codes: &["OperationAborted"],
        method: "PUT",
        path: "/{b}/k",
        headers: &[],
        body: b"again",
    },
    Case {
        section: "Storing an object",
        status: 501,
        codes: &["NotImplemented"],
        method: "PUT",
        path: "/{b}/acl",
        headers: &[("x-amz-acl", "no-such-acl")],
        body: b"x",
    },
    Case {
        section: "Creating a folder",
        status: 409,
        codes: &["OperationAborted"],
        method: "PUT",
        path: "/{b}/f/",
        headers: &[],
        body: b"",
    },
    Case {
        section: "Checking the existence of an object or folder",
        status: 304,
        codes: &[],
        method: "HEAD",
        path: "/{b}/k",
        headers: &[("if-none-match", "{e}")],
        body: b"",
    },
    Case {
        section: "Checking the existence of an object or folder",
        status: 412,
        codes: &[],
        method: "HEAD",
        path: "/{b}/k",
        headers: &[("if-match", "\"0123\"")],
        body: b"",
    },
    Case {
        section: "Adding an ACL to an object",
        status: 400,
        codes: &["InvalidArgument"],
        method: "PUT",
        path: "/{b}/k?acl",
        headers: &[BAD_GRANT],
        body: b"",
    },
    Case {
        section: "Copying an object",
        status: 400,
        codes: &["InvalidArgument"],
        method: "PUT",
        path: "/{b}/c1",
        headers: &[("x-amz-copy-source", "/{b}/k"), BAD_GRANT],
        body: b"",
    },
    Case {
        section: "Copying an object",
        status: 409,
        codes: &["OperationAborted"],
        method: "PUT",
        path: "/{b}/k",
        headers: &[
            ("x-amz-copy-source", "/{b}/k"),
            ("x-amz-metadata-directive", "COPY"),
        ],
        body: b"",
    },
    Case {
        section: "Copying an object",
        status: 412,
        codes: &["PreconditionFailed"],
        method: "PUT",
        path: "/{b}/c2",
        headers: &[
            ("x-amz-copy-source", "/{b}/k"),
            ("x-amz-copy-source-if-match", "\"0123\""),
        ],
        body: b"",
    },
    Case {
        section: "Copying an object",
        status: 501,
        codes: &["NotImplemented"],
        method: "PUT",
        path: "/{b}/c3",
        headers: &[
            ("x-amz-copy-source", "/{b}/k"),
            ("x-amz-acl", "no-such-acl"),
        ],
        body: b"",
    },
    Case {
        section: "Retrieving an object",
        status: 206,
        codes: &[],
        method: "GET",
        path: "/{b}/k",
        headers: &[("range", "bytes=0-1")],
        body: b"",
    },
    Case {
        section: "Retrieving an object",
        status: 304,
        codes: &[],
        method: "GET",
        path: "/{b}/k",
        headers: &[("if-none-match", "{e}")],
        body: b"",
    },
    Case {
        section: "Retrieving an object",
        status: 412,
        codes: &["PreconditionFailed"],
        method: "GET",
        path: "/{b}/k",
        headers: &[("if-match", "\"0123\"")],
        body: b"",
    },
    Case {
        section: "Retrieving an object",
        status: 416,
        codes: &["InvalidRange"],
        method: "GET",
        path: "/{b}/k",
        headers: &[("range", "bytes=100-200")],
        body: b"",
    },
    Case {
        section: "Deleting multiple objects",
        status: 400,
        codes: &["MalformedXML"],
        method: "POST",
        path: "/{b}?delete",
        headers: &[("content-md5", "CY9rzUYh03PK3k6DJie09g==")],
        body: b"test",
    },
    Case {
        section: "Initiating a multipart upload",
        status: 400,
        codes: &["KeyTooLong"],
        method: "POST",
        path: "/{b}/LONG?uploads",
        headers: &[],
        body: b"",
    },
    Case {
        section: "Initiating a multipart upload",
        status: 501,
        codes: &["NotImplemented"],
        method: "POST",
        path: "/{b}/acl?uploads",
        headers: &[("x-amz-acl", "no-such-acl")],
        body: b"",
    },
    Case {
        section: "Uploading a part of a multipart upload",
        status: 400,
        codes: &["InvalidArgument"],
        method: "PUT",
        path: "/{b}/mp?partNumber=0&uploadId={u}",
        headers: &[],
        body: b"part",
    },
    Case {
        section: "Uploading a part of a multipart object by copying",
        status: 400,
        codes: &["InvalidArgument"],
        method: "PUT",
        path: "/{b}/mp?partNumber=10001&uploadId={u}",
        headers: &[("x-amz-copy-source", "/{b}/k")],
        body: b"",
    },
    Case {
        section: "Uploading a part of a multipart object by copying",
        status: 412,
        codes: &["PreconditionFailed"],
        method: "PUT",
        path: "/{b}/mp?partNumber=1&uploadId={u}",
        headers: &[
            ("x-amz-copy-source", "/{b}/k"),
            ("x-amz-copy-source-if-match", "\"0123\""),
        ],
        body: b"",
    },
    Case {
        section: "Listing the parts of a multipart upload",
        status: 400,
        codes: &["InvalidArgument"],
        method: "GET",
        path: "/{b}/mp?uploadId={u}&max-parts=many",
        headers: &[],
        body: b"",
    },
    Case {
        section: "Completing a multipart upload",
        status: 400,
        codes: &["MalformedXML"],
        method: "POST",
        path: "/{b}/mp?uploadId={u}",
        headers: &[],
        body: b"<CompleteMultipartUpload><Part>",
    },
];

/// The rows particular to an operation that a request can meet: status, code and HCP's
/// error document, and nothing stored where the row refuses a write.
#[tokio::test]
async fn the_rows_particular_to_an_operation() {
    let Some(gw) = start_with_tenant(
        Backend::Store,
        "folders = true\noverwrite = \"refuse-unversioned\"",
        "",
    )
    .await
    else {
        return;
    };
    let admin = (USER, PASSWORD);
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "cases").await;
    let r = as_user(&gw, admin, "PUT", &format!("/{bucket}/k"), &[], b"source").await;
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(
        as_user(&gw, admin, "PUT", &format!("/{bucket}/f/"), &[], b"")
            .await
            .status,
        200
    );
    let r = as_user(
        &gw,
        admin,
        "POST",
        &format!("/{bucket}/mp?uploads"),
        &[],
        b"",
    )
    .await;
    let upload = upload_id(&r);
    let long = "l".repeat(4200);
    let keys_before = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .key_count();
    for case in CASES {
        let fill = |s: &str| {
            s.replace("{b}", &bucket)
                .replace("{u}", &upload)
                .replace("{e}", &etag)
                .replace("LONG", &long)
        };
        let headers: Vec<(String, String)> = case
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), fill(v)))
            .collect();
        let mut headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let md5 = content_md5(case.body);
        if case.method == "PUT" && case.path.contains("?versioning") {
            headers.push(("content-md5", &md5));
        }
        let target = fill(case.path);
        let r = as_user(&gw, admin, case.method, &target, &headers, case.body).await;
        assert_eq!(
            r.status,
            case.status,
            "{} {}: {}",
            case.section,
            case.status,
            r.text()
        );
        if !case.codes.is_empty() {
            let code = r.code();
            assert!(
                case.codes.contains(&code.as_str()),
                "{} {}: {code}",
                case.section,
                case.status
            );
            assert_hcp_error_body(&r.text(), &code);
        }
    }
    // Creating a folder without Content-Length: 400 (the folder table's row).
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let r = signed_chunked_put(&addr, &format!("/{bucket}/nolength/")).await;
    r.assert_hcp_error(400, "InvalidArgument");
    // Nothing the refused writes asked for was stored.
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.key_count(), keys_before, "{:?}", listed.contents());
    assert_eq!(object_bytes(&s3, &bucket, "k").await, b"source");
}

/// A control document that comes chunked without a length (here a CORS configuration) is read
/// whole and verified, and reaches the backend as the gateway built it, with its own length —
/// never the client's chunks beside a Content-Length, which would be two framings: RGW keeps
/// the rule, which a CORS read shows.
#[tokio::test]
async fn a_document_sent_in_chunks_reaches_the_backend_with_its_length() {
    let Some(gw) = start_with_tenant(Backend::Rgw, "", "").await else {
        return;
    };
    let addr = gw.gw.as_ref().unwrap().s3_addr.to_string();
    let s3 = gw.client();
    let bucket = new_bucket(&s3, "chunked").await;
    let rules = b"<CORSConfiguration><CORSRule><AllowedOrigin>https://sent.chunked</AllowedOrigin>\
        <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    let mut body = format!("{:x}\r\n", rules.len()).into_bytes();
    body.extend_from_slice(rules);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    // (Its Content-MD5 is required: without, 400 MissingSecurityHeader and nothing kept.)
    let target = format!("/{bucket}?cors");
    let r = signed_chunked_put_with(&addr, &target, body.clone(), &[]).await;
    r.assert_hcp_error(400, "MissingSecurityHeader");
    let e = s3
        .get_bucket_cors()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&e),
        (404, "NoSuchKey".to_string()),
        "no rules kept"
    );
    // (Nor may it be empty: 400 MissingRequestBodyError, the backend not asked.)
    let (ak, sk) = keys(USER, PASSWORD);
    let empty_md5 = content_md5(b"");
    let md5 = [("content-md5", empty_md5.as_str())];
    let before = gw.backend_requests();
    let r = raw::send_signed_with(&addr, (&ak, &sk), ("PUT", &target), &md5, b"").await;
    r.assert_hcp_error(400, "MissingRequestBodyError");
    assert_eq!(
        gw.backend_requests(),
        before,
        "an empty configuration reached the backend"
    );
    let md5 = content_md5(rules);
    let r = signed_chunked_put_with(&addr, &target, body, &[("content-md5", &md5)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let kept = s3.get_bucket_cors().bucket(&bucket).send().await.unwrap();
    let origins: Vec<&str> = kept
        .cors_rules()
        .iter()
        .flat_map(|r| r.allowed_origins())
        .map(String::as_str)
        .collect();
    assert_eq!(origins, ["https://sent.chunked"]);
}

/// A signed PUT of `target` whose body comes chunked, without Content-Length.
async fn signed_chunked_put(addr: &str, target: &str) -> raw::RawResponse {
    signed_chunked_put_with(addr, target, b"0\r\n\r\n".to_vec(), &[]).await
}

/// A signed PUT of `target` with `body` (chunk-framed), without Content-Length.
/// (`extra`: headers signed besides.)
async fn signed_chunked_put_with(
    addr: &str,
    target: &str,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> raw::RawResponse {
    let (ak, sk) = keys(USER, PASSWORD);
    let v4 = raw::V4 {
        access_key: &ak,
        secret_key: &sk,
        host: addr,
        when: std::time::SystemTime::now(),
        payload_hash: hcp_s3_gateway::sig::v4::UNSIGNED_PAYLOAD,
        date_header: None,
    };
    let mut headers = vec![("transfer-encoding", "chunked")];
    headers.extend_from_slice(extra);
    let headers = v4.sign("PUT", target.as_bytes(), &headers);
    raw::send(addr, "PUT", target.as_bytes(), &headers, vec![body]).await
}

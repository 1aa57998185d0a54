//! A recorded-dialect server for backends that cannot run here: it answers as MinIO, Huawei OBS
//! or AWS S3 document their answers — error bodies, headers, HEAD behaviour (codes in
//! `x-minio-error-code` / `x-obs-error-code`), OBS's JSON errors — with the statuses the vendors
//! document (`tests/fixtures/documented-statuses.tsv`).
//!
//! A test steers it with [`DialectServer::respond_to`] (the requests of one method get the
//! directive until it is cleared; the gateway forwards no header of the test's own):
//! `error|CODE[|STATUS]`, `json-error|CODE`, `stall|MS`, `die`, `hangup`, `garbage|STATUS`,
//! `empty|STATUS` (no body, no code),
//! `huge-error|BYTES`, `copy-without-etag`, `error-in-200|CODE`, `slow-complete|MS[|CODE]`,
//! `slow-copy|MS[|CODE]` (a copy's result, or the error, after MS),
//! `trickled-complete|MS[|CODE]` (AWS's: 200 at once, whitespace for MS, then the result or the
//! Error), `delete-errors` / `cut-delete-result` (a multi-object delete's result reporting keys
//! in the backend's own words / cut off inside a per-key code), `object-with|NAME:VALUE|…` (an object's 200 with these headers), `obs-copy` (OBS's copy
//! result, in its namespace), `cors[|METHODS]` (a bucket's CORS configuration, in the vendor's namespace, one rule: any
//! origin may GET, or the comma-separated METHODS; any other request an object's 200 with
//! Access-Control-* headers of the server's own), `slow-cors|MS` (the same GET rule after MS), `versioned-405` (a versioned bucket whose objects' HEAD is 405, not said to be a delete marker's), `location|REGION` (the vendor's bucket location document), `created|error`, `|copy`,
//! `|empty` (a 201: Ceph RGW's with `rgw_s3_success_create_obj_status = 201`),
//! `obs-native` (OBS's own signing and header names; its buckets keep versions),
//! `invalid-version` (AWS's and MinIO's 400 for a `versionId` of a form they never give; the
//! bucket's versioning enabled),
//! `sse-c-object|UNTIL|ON[|unversioned]` (an object encrypted with a customer's key: HEAD 400 without it
//! (200 with it, no lock shown), a copy's result,
//! its lock read by `?retention` — 404 for UNTIL `none` — and `?legal-hold`, 503 for ON `fail`
//! (429 for `fail-throttled`, 403 for `fail-denied`);
//! DELETE 204, PUT 200). Without it the server
//! answers 200 with an empty body (a ListObjectsV2, with an empty listing), and a GET `?acl` with
//! an ACL granting its owner alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Minio,
    Obs,
    Aws,
}

impl Vendor {
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Minio => "minio",
            Vendor::Obs => "obs",
            Vendor::Aws => "aws",
        }
    }
}

pub struct DialectServer {
    pub addr: std::net::SocketAddr,
    pub requests: Arc<AtomicU64>,
    steering: Steering,
    /// Every request received: method, target and headers (lower-case names).
    seen: Seen,
}

/// One request as received: method, target, headers (lower-case names).
pub type SeenRequest = (String, String, Vec<(String, String)>);

type Seen = Arc<std::sync::Mutex<Vec<SeenRequest>>>;

/// The directives for requests of a method (`*`: any), the first that names it deciding.
type Steering = Arc<std::sync::Mutex<Vec<(String, String)>>>;

fn directive_for(steering: &Steering, method: &str) -> String {
    let steering = steering.lock().unwrap();
    let found = steering.iter().find(|(m, _)| m == "*" || m == method);
    found.map(|(_, d)| d.clone()).unwrap_or_default()
}

/// Documented statuses: (dialect, code) → status.
pub fn documented_statuses() -> HashMap<(String, String), u16> {
    include_str!("../fixtures/documented-statuses.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Some(((c[0].to_string(), c[1].to_string()), c[2].parse().ok()?))
        })
        .collect()
}

impl DialectServer {
    pub async fn start(vendor: Vendor) -> DialectServer {
        Self::start_on(vendor, "127.0.0.1:0").await
    }

    /// [`DialectServer::start`] listening on `bind` (`[::1]:0`: IPv6's loopback).
    pub async fn start_on(vendor: Vendor, bind: &str) -> DialectServer {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let statuses = Arc::new(documented_statuses());
        let counter = requests.clone();
        let steering: Steering = Arc::default();
        let steer = steering.clone();
        let seen: Seen = Arc::default();
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let (counter, statuses, steer) = (counter.clone(), statuses.clone(), steer.clone());
                let record = record.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, vendor, &statuses, (&counter, &record), &steer).await;
                });
            }
        });
        DialectServer {
            addr,
            requests,
            steering,
            seen,
        }
    }

    /// Requests with `method` (`*`: every request) get `directive` until [`Self::clear`].
    /// (The gateway's own probes use other methods than the request they serve.)
    pub fn respond_to(&self, method: &str, directive: &str) {
        *self.steering.lock().unwrap() = vec![(method.to_string(), directive.to_string())];
    }

    /// As [`Self::respond_to`], beside the directives given so far (for another method).
    pub fn respond_also(&self, method: &str, directive: &str) {
        let entry = (method.to_string(), directive.to_string());
        self.steering.lock().unwrap().push(entry);
    }

    /// Plain 200 answers again.
    pub fn clear(&self) {
        self.steering.lock().unwrap().clear();
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The requests received so far: method, target, headers.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    directive: String,
    /// The first 64 KiB of the body.
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_request(conn: &mut TcpStream, steering: &Steering) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - end - 4;
    let mut body = buf[end + 4..].to_vec();
    // `reset-upload`: the backend resets the connection part-way through the request body.
    let directive = directive_for(steering, &method);
    let reset = directive == "reset-upload";
    // `early-ok`: the backend answers before it reads the body (serve answers 200 at once).
    let early = directive == "early-ok";
    while have < length && !early {
        if reset && have >= 64 * 1024 {
            let _ = conn.set_zero_linger();
            return None;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        have += n;
        if body.len() < 64 * 1024 {
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(Request {
        method,
        path,
        headers,
        directive,
        body,
    })
}

fn message(code: &str) -> String {
    format!("{code} (recorded dialect answer)")
}

async fn serve(
    mut conn: TcpStream,
    vendor: Vendor,
    statuses: &HashMap<(String, String), u16>,
    (counter, seen): (&AtomicU64, &Seen),
    steering: &Steering,
) -> std::io::Result<()> {
    let Some(req) = read_request(&mut conn, steering).await else {
        return Ok(());
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let what = (req.method.clone(), req.path.clone(), req.headers.clone());
    seen.lock().unwrap().push(what);
    // Fields are separated by '|' (OBS has a code with spaces in it).
    let directive: Vec<String> = req
        .directive
        .split('|')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    let head_only = req.method == "HEAD";
    let status_of = |code: &str, given: Option<&String>| -> u16 {
        given
            .and_then(|s| s.parse().ok())
            .or_else(|| {
                statuses
                    .get(&(vendor.name().to_string(), code.to_string()))
                    .copied()
            })
            .or_else(|| {
                statuses
                    .get(&("aws".to_string(), code.to_string()))
                    .copied()
            })
            .unwrap_or(400)
    };
    match directive.first().map(String::as_str) {
        Some("error") => {
            let code = &directive[1];
            let status = status_of(code, directive.get(2));
            write_error(&mut conn, vendor, status, code, &req, head_only, false).await
        }
        // `located|<region>|<element>`: a CreateBucket outside the default region, which OBS
        // creates only where its body names the region (`<Location>` under OBS's own signing,
        // `<LocationConstraint>` under S3's), else 400 IllegalLocationConstraintException.
        Some("located") => {
            let (region, element) = (&directive[1], &directive[2]);
            let named = format!("<{element}>{region}</{element}>");
            let body = String::from_utf8_lossy(&req.body);
            if !body.contains(&named) {
                let code = "IllegalLocationConstraintException";
                return write_error(&mut conn, vendor, 400, code, &req, head_only, false).await;
            }
            let location = req.path.split('?').next().unwrap_or("/").to_string();
            respond(&mut conn, 200, &[("Location", location.as_str())], b"").await
        }
        Some("invalid-version") => write_invalid_version(&mut conn, vendor, &req, head_only).await,
        Some("json-error") => {
            let code = &directive[1];
            let status = status_of(code, directive.get(2));
            write_error(&mut conn, vendor, status, code, &req, head_only, true).await
        }
        Some("stall") => {
            tokio::time::sleep(Duration::from_millis(directive[1].parse().unwrap())).await;
            respond(&mut conn, 200, &[], b"").await
        }
        Some("reset-download") => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n";
            conn.write_all(head.as_bytes()).await?;
            conn.write_all(&vec![b'x'; 65536]).await?;
            conn.flush().await?;
            conn.set_zero_linger()?;
            Ok(()) // and the connection is reset, 983,040 bytes short
        }
        Some("die") => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n";
            conn.write_all(head.as_bytes()).await?;
            conn.write_all(&vec![b'x'; 65536]).await?;
            conn.flush().await?;
            Ok(()) // and the connection closes, 983,040 bytes short
        }
        // An answer without a length (HTTP/1.0's): its body ends where the connection does —
        // after `directive[1]` bytes, whole or not.
        Some("close-delimited") => {
            let head = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
            conn.write_all(head.as_bytes()).await?;
            conn.write_all(&vec![b'x'; directive[1].parse().unwrap()])
                .await?;
            conn.flush().await?;
            Ok(())
        }
        // The backend takes the request and hangs up without a word.
        Some("hangup") => Ok(()),
        // A success before the body is read, then the connection closed (the body unread: a
        // reset to the sender of the rest).
        Some("early-ok") => {
            let head = "HTTP/1.1 200 OK\r\nETag: \"d41d8cd98f00b204e9800998ecf8427e\"\r\nContent-Length: 0\r\n\r\n";
            conn.write_all(head.as_bytes()).await?;
            conn.flush().await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(())
        }
        // An answer framed by a transfer coding the gateway cannot take off (its body would
        // reach the client still coded).
        Some("bad-framing") => {
            conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz")
                .await?;
            conn.flush().await?;
            Ok(())
        }
        // An error with no body and no code (a proxy's, or a backend's that says nothing).
        Some("empty") => {
            let status = directive[1].parse().unwrap();
            respond(&mut conn, status, &[], b"").await
        }
        Some("garbage") => {
            let status = directive[1].parse().unwrap();
            respond(
                &mut conn,
                status,
                &[("Content-Type", "text/html")],
                b"<html><body>upstream proxy error</body></html>",
            )
            .await
        }
        Some("huge-error") => {
            let n: usize = directive[1].parse().unwrap();
            let mut body =
                b"<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>".to_vec();
            body.extend(std::iter::repeat_n(b'x', n));
            body.extend_from_slice(b"</Message></Error>");
            respond(
                &mut conn,
                500,
                &[("Content-Type", "application/xml")],
                &body,
            )
            .await
        }
        Some("error-in-200") => {
            // AWS: an error found after the answer started arrives inside a 200.
            let code = &directive[1];
            let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><RequestId>17B5C9D2A4E3F001</RequestId><HostId>h</HostId></Error>", message(code));
            respond(
                &mut conn,
                200,
                &[("Content-Type", "application/xml")],
                body.as_bytes(),
            )
            .await
        }
        // A 200 whose body is not a whole answer: `body-200|empty`, `|not-xml`, `|error-empty`
        // (`<Error/>`), `|other-root` (another document, no ETag), `|truncated` (cut off before
        // its elements close).
        Some("body-200") => {
            let body: &[u8] = match directive[1].as_str() {
                "empty" => b"",
                "not-xml" => b"xx not xml",
                "error-empty" => b"<Error/>",
                "other-root" => b"<InternalFailure><Code>InternalError</Code></InternalFailure>",
                "truncated" => b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult><Location>http://b/k</Location><Bucket>bkt</Bucket><Key>k</Key><ETag>\"e-1\"</ETag>",
                other => panic!("body-200: {other}?"),
            };
            respond(&mut conn, 200, &[("Content-Type", "application/xml")], body).await
        }
        Some("obs-native") => {
            // OBS's own scheme: the request must be signed `OBS AK:…`, dated by x-obs-date and
            // carry no x-amz-* header; the answer carries OBS's header names.
            let signed = req
                .header("authorization")
                .is_some_and(|a| a.starts_with("OBS AK:"));
            let amz: Vec<&str> = req
                .headers
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| n.starts_with("x-amz-"))
                .collect();
            if !signed || req.header("x-obs-date").is_none() || !amz.is_empty() {
                let body = format!("not an OBS-signed request: {:?}", req.headers);
                return respond(
                    &mut conn,
                    400,
                    &[("Content-Type", "text/plain")],
                    body.as_bytes(),
                )
                .await;
            }
            // An object's ACL as OBS's own dialect writes it (Huawei's "Obtaining an Object
            // ACL"): the owner by id alone, `Delivered`, all users as `Canned` Everyone.
            if req.path.contains("?acl") && req.method == "GET" {
                let doc = b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
                    <AccessControlPolicy xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\">\
                    <Owner><ID>b4bf1b36d9ca43d984fbcb9491b6fce9</ID></Owner>\
                    <Delivered>false</Delivered><AccessControlList>\
                    <Grant><Grantee><ID>b4bf1b36d9ca43d984fbcb9491b6fce9</ID></Grantee>\
                    <Permission>FULL_CONTROL</Permission></Grant>\
                    <Grant><Grantee><Canned>Everyone</Canned></Grantee>\
                    <Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>";
                return respond(&mut conn, 200, &[("Content-Type", "application/xml")], doc).await;
            }
            // (Its buckets keep versions: the version id it names is one a client sees.)
            if req.path.contains("?versioning") {
                let doc = b"<VersioningConfiguration xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\">\
                    <Status>Enabled</Status></VersioningConfiguration>";
                return respond(&mut conn, 200, &[("Content-Type", "application/xml")], doc).await;
            }
            let meta = req.header("x-obs-meta-color").unwrap_or("red").to_string();
            respond(
                &mut conn,
                200,
                &[
                    ("x-obs-meta-color", meta.as_str()),
                    ("x-obs-version-id", "v1"),
                    ("x-obs-request-id", "OBSREQ1"),
                    ("ETag", "\"e\""),
                ],
                if head_only { b"" } else { b"obs data" },
            )
            .await
        }
        // `minio-pages`: truncated listings as MinIO writes them, its next marker naming its
        // listing cache after the key (MinIO's `encodeMarker`): key `k`'s versions v5…v3 of
        // five, newest first; objects `a`, `b` of more.
        Some("minio-pages") if req.path.contains("versioning") => {
            versioning_enabled(&mut conn).await
        }
        Some("minio-pages") => {
            let cache = "[minio_cache:v2,id:0d7f1c3e-5b8a-4c1e-9d0f-2a6b7c8d9e0f,p:0,s:0]";
            let ns = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
            // (`encoding-type=url`: MinIO encodes its marker as it does keys.)
            let encoded = req.path.contains("encoding-type=url");
            let cache = if encoded {
                "%5Bminio_cache%3Av2%2Cid%3A0d7f1c3e-5b8a-4c1e-9d0f-2a6b7c8d9e0f%2Cp%3A0%2Cs%3A0%5D"
            } else {
                cache
            };
            let body = if req.path.contains("list-type=2") {
                use base64::Engine as _;
                let token = base64::engine::general_purpose::STANDARD.encode(format!("b{cache}"));
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult {ns}><Name>bkt</Name>\
                     <Prefix></Prefix><NextContinuationToken>{token}</NextContinuationToken>\
                     <KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>\
                     <Contents><Key>a</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>\
                     <ETag>\"e\"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>\
                     </ListBucketResult>"
                )
            } else if req.path.contains("versions") {
                let versions: String = ["v5", "v4", "v3"]
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        format!(
                            "<Version><Key>k</Key><VersionId>{v}</VersionId><IsLatest>{}</IsLatest>\
                             <LastModified>2026-01-01T00:00:0{}.000Z</LastModified><ETag>\"e\"</ETag>\
                             <Size>1</Size><StorageClass>STANDARD</StorageClass></Version>",
                            i == 0,
                            5 - i
                        )
                    })
                    .collect();
                let encoding = if encoded {
                    "<EncodingType>url</EncodingType>"
                } else {
                    ""
                };
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult {ns}><Name>bkt</Name>{encoding}\
                     <Prefix></Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>\
                     <NextKeyMarker>k{cache}</NextKeyMarker><NextVersionIdMarker>v3</NextVersionIdMarker>\
                     <MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated>{versions}</ListVersionsResult>"
                )
            } else {
                let contents: String = ["a", "b"]
                    .iter()
                    .map(|k| {
                        format!(
                            "<Contents><Key>{k}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>\
                             <ETag>\"e\"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>"
                        )
                    })
                    .collect();
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult {ns}><Name>bkt</Name>\
                     <Prefix></Prefix><Marker></Marker><NextMarker>b{cache}</NextMarker><MaxKeys>2</MaxKeys>\
                     <IsTruncated>true</IsTruncated>{contents}</ListBucketResult>"
                )
            };
            let xml = [("Content-Type", "application/xml")];
            respond(&mut conn, 200, &xml, body.as_bytes()).await
        }
        Some("object-with") => {
            let headers: Vec<(&str, &str)> = directive[1..]
                .iter()
                .filter_map(|h| h.split_once(':'))
                .collect();
            respond(
                &mut conn,
                200,
                &headers,
                if head_only { b"" } else { b"data" },
            )
            .await
        }
        Some("versioned-405") => {
            // A versioned bucket whose objects' HEAD answers 405 — S3's answer to a delete
            // marker's version, here without saying it is one.
            if req.path.contains("versioning") {
                return versioning_enabled(&mut conn).await;
            }
            respond(&mut conn, 405, &[("Allow", "DELETE")], b"").await
        }
        Some("obs-delete-marker") => {
            // A versioned OBS bucket whose object's current version is a delete marker, said
            // OBS's way on its HEAD's 404; everything else fails (503).
            if req.path.contains("versioning") {
                return versioning_enabled(&mut conn).await;
            }
            let path = req.path.split('?').next().unwrap_or_default();
            let object = !matches!(path.trim_matches('/'), "" | "bkt");
            match (req.method.as_str(), object) {
                ("HEAD", true) => {
                    let marker = [("x-obs-delete-marker", "true")];
                    respond(&mut conn, 404, &marker, b"").await
                }
                _ => respond(&mut conn, 503, &[], b"").await,
            }
        }
        // `suspended|<HEAD status>|<newest version or a listing's status>`: a bucket whose
        // versioning is suspended; a HEAD of the key's `null` version answers the status given
        // (200: there is one), its one-entry version listing names the newest version given —
        // or, a number, fails with that status.
        Some("suspended") => {
            if req.path.contains("versioning") {
                return versioning_status(&mut conn, "Suspended").await;
            }
            let (head, newest) = (&directive[1], &directive[2]);
            match req.method.as_str() {
                "HEAD" => {
                    respond(&mut conn, head.parse().unwrap(), &[("ETag", "\"e\"")], b"").await
                }
                "GET" if req.path.contains("versions") => match newest.parse::<u16>() {
                    Ok(status) => respond(&mut conn, status, &[], b"").await,
                    Err(_) => {
                        let key = req.path.split("prefix=").nth(1).unwrap_or_default();
                        let key = key.split('&').next().unwrap_or_default();
                        let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix>{key}</Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker><MaxKeys>1</MaxKeys><IsTruncated>true</IsTruncated><Version><Key>{key}</Key><VersionId>{newest}</VersionId><IsLatest>true</IsLatest><LastModified>2026-11-22T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Version></ListVersionsResult>");
                        respond(
                            &mut conn,
                            200,
                            &[("Content-Type", "application/xml")],
                            body.as_bytes(),
                        )
                        .await
                    }
                },
                _ => respond(&mut conn, 200, &[("ETag", "\"e\"")], b"").await,
            }
        }
        Some("versioning-excluding") => {
            // MinIO's versioning with the operator's exclusions (`mc version enable
            // --excluded-prefixes tmp/ --exclude-folders`): objects there keep no versions.
            if req.path.contains("versioning") {
                let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status><ExcludedPrefixes><Prefix>tmp/</Prefix></ExcludedPrefixes><ExcludeFolders>true</ExcludeFolders></VersioningConfiguration>";
                return respond(&mut conn, 200, &[("Content-Type", "application/xml")], body).await;
            }
            respond(&mut conn, 200, &[("ETag", "\"e\"")], b"").await
        }
        Some("obs-copy") => {
            let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><CopyObjectResult xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\"><LastModified>2026-11-22T00:00:00.000Z</LastModified><ETag>\"e\"</ETag></CopyObjectResult>";
            respond(&mut conn, 200, &[("Content-Type", "application/xml")], body).await
        }
        // (Anything else asked: an object's 200 with the backend's own CORS evaluation, which
        // must not show through.)
        // `cors-unreadable`: the bucket's rules cannot be read (`GET ?cors` answers 500);
        // anything else asked answers 200 with the backend's own CORS headers.
        Some("cors-unreadable") if req.path.contains("cors") => {
            write_error(
                &mut conn,
                vendor,
                500,
                "InternalError",
                &req,
                head_only,
                false,
            )
            .await
        }
        Some("cors" | "cors-unreadable") if !req.path.contains("cors") => {
            let own = [
                ("Access-Control-Allow-Origin", "https://evil.example"),
                ("Access-Control-Allow-Methods", "PUT"),
                ("Content-Type", "text/plain"),
            ];
            respond(&mut conn, 200, &own, b"data").await
        }
        Some("cors" | "slow-cors") => {
            if directive[0] == "slow-cors" {
                tokio::time::sleep(Duration::from_millis(directive[1].parse().unwrap())).await;
            }
            let methods = directive.get(1).filter(|_| directive[0] == "cors");
            let namespace = match vendor {
                Vendor::Obs => "http://obs.myhwclouds.com/doc/2015-06-30/",
                _ => "http://s3.amazonaws.com/doc/2006-03-01/",
            };
            let methods: String = methods
                .map_or("GET", String::as_str)
                .split(',')
                .map(|m| format!("<AllowedMethod>{m}</AllowedMethod>"))
                .collect();
            let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><CORSConfiguration xmlns=\"{namespace}\"><CORSRule>{methods}<AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>");
            let xml = [("Content-Type", "application/xml")];
            respond(&mut conn, 200, &xml, body.as_bytes()).await
        }
        Some("location") => {
            let region = &directive[1];
            let body = match vendor {
                Vendor::Obs => format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Location xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\">{region}</Location>"),
                _ => format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{region}</LocationConstraint>"),
            };
            let xml = [("Content-Type", "application/xml")];
            respond(&mut conn, 200, &xml, body.as_bytes()).await
        }
        Some("created") => {
            let body: &[u8] = match directive[1].as_str() {
                "error" => b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>m</Message></Error>",
                "copy" => b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><CopyObjectResult><LastModified>2026-11-22T00:00:00.000Z</LastModified><ETag>\"e\"</ETag></CopyObjectResult>",
                _ => b"",
            };
            let xml = [("Content-Type", "application/xml"), ("ETag", "\"e\"")];
            respond(&mut conn, 201, &xml, body).await
        }
        Some("sse-c-object") => {
            let (until, hold) = (&directive[1], &directive[2]);
            let xml = [("Content-Type", "application/xml")];
            // (Read with its key — a copy's source's — its HEAD answers, no lock shown.)
            let keyed = req
                .header("x-amz-copy-source-server-side-encryption-customer-algorithm")
                .or_else(|| req.header("x-amz-server-side-encryption-customer-algorithm"))
                .is_some();
            if head_only {
                let status = if keyed { 200 } else { 400 };
                return respond_head(&mut conn, status, &[("ETag", "\"e\"")], 0).await;
            }
            if req.method == "DELETE" {
                return respond(&mut conn, 204, &[], b"").await;
            }
            // (A version written: its id, as a versioned bucket's.)
            let written = [
                ("Content-Type", "application/xml"),
                ("x-amz-version-id", "v9"),
            ];
            if req.method == "PUT" && req.header("x-amz-copy-source").is_some() {
                let body = b"<CopyObjectResult><LastModified>2026-11-22T00:00:00.000Z</LastModified><ETag>\"e\"</ETag></CopyObjectResult>";
                // (`unversioned`: as Ceph RGW's copy answers, naming no version.)
                if directive.get(3).is_some_and(|d| d == "unversioned") {
                    let keyed = [
                        ("Content-Type", "application/xml"),
                        ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
                    ];
                    return respond(&mut conn, 200, &keyed, body).await;
                }
                return respond(&mut conn, 200, &written, body).await;
            }
            if req.method == "PUT" && !req.path.contains('?') {
                return respond(&mut conn, 200, &written[1..], b"").await;
            }
            if req.method == "PUT" {
                return respond(&mut conn, 200, &[], b"").await;
            }
            if req.path.contains("?acl") {
                return respond(&mut conn, 200, &xml, OWNER_ACL).await;
            }
            if req.path.contains("legal-hold") && hold.starts_with("fail") {
                let (status, code) = match hold.as_str() {
                    "fail-throttled" => (429, "SlowDown"),
                    "fail-denied" => (403, "AccessDenied"),
                    _ => (503, "ServiceUnavailable"),
                };
                return write_error(&mut conn, vendor, status, code, &req, false, false).await;
            }
            if req.path.contains("retention") && until == "none" {
                let code = "NoSuchObjectLockConfiguration";
                return write_error(&mut conn, vendor, 404, code, &req, false, false).await;
            }
            let body = if req.path.contains("retention") {
                format!("<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>")
            } else {
                format!("<LegalHold><Status>{hold}</Status></LegalHold>")
            };
            respond(&mut conn, 200, &xml, body.as_bytes()).await
        }
        Some("copy-without-etag") => {
            let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><CopyObjectResult xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\"><LastModified>2026-11-22T00:00:00.000Z</LastModified></CopyObjectResult>";
            respond(&mut conn, 200, &[("Content-Type", "application/xml")], body).await
        }
        Some("slow-copy") => {
            tokio::time::sleep(Duration::from_millis(directive[1].parse().unwrap())).await;
            match directive.get(2) {
                Some(code) => {
                    let status = status_of(code, None);
                    write_error(&mut conn, vendor, status, code, &req, false, false).await
                }
                None => {
                    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>2026-11-22T00:00:00.000Z</LastModified><ETag>\"3858f62230ac3c915f300c664312c11f\"</ETag></CopyObjectResult>";
                    let xml = [("Content-Type", "application/xml")];
                    respond(&mut conn, 200, &xml, body.as_bytes()).await
                }
            }
        }
        Some("slow-complete") => {
            tokio::time::sleep(Duration::from_millis(directive[1].parse().unwrap())).await;
            match directive.get(2) {
                Some(code) => {
                    write_error(
                        &mut conn,
                        vendor,
                        status_of(code, None),
                        code,
                        &req,
                        false,
                        false,
                    )
                    .await
                }
                None => {
                    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>http://10.1.2.3:9000/bucket/key</Location><Bucket>bucket</Bucket><Key>key</Key><ETag>\"3858f62230ac3c915f300c664312c11f-2\"</ETag></CompleteMultipartUploadResult>";
                    respond(
                        &mut conn,
                        200,
                        &[("Content-Type", "application/xml")],
                        body.as_bytes(),
                    )
                    .await
                }
            }
        }
        Some("trickled-complete") => {
            let ms: u64 = directive[1].parse().unwrap();
            let document = match directive.get(2) {
                Some(code) => format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><RequestId>17B5C9D2A4E3F001</RequestId><HostId>h</HostId></Error>", message(code)),
                None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>http://10.1.2.3:9000/bucket/key</Location><Bucket>bucket</Bucket><Key>key</Key><ETag>\"3858f62230ac3c915f300c664312c11f-2\"</ETag></CompleteMultipartUploadResult>".to_string(),
            };
            trickle_whitespace(&mut conn, Duration::from_millis(ms), document.as_bytes()).await
        }
        // A listing (ListObjectsV2) of nothing, as every vendor documents one.
        _ if req.method == "GET" && req.path.contains("list-type=2") => {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>";
            let xml = [("Content-Type", "application/xml")];
            respond(&mut conn, 200, &xml, body.as_bytes()).await
        }
        // A multi-object delete's result reporting keys not deleted in the backend's own words.
        Some("delete-errors") => {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Deleted><Key>gone</Key></Deleted><Error><Key>k1</Key><Code>AccessDenied</Code><Message>denied by zone eu-internal-7 on bucket secretprefix-b</Message></Error><Error><Key>k2</Key><Code>XMinioZoneFailure</Code><Message>host s3.backend.internal</Message></Error></DeleteResult>";
            let xml = [("Content-Type", "application/xml")];
            respond(&mut conn, 200, &xml, body.as_bytes()).await
        }
        // A multi-object delete's result cut off inside a per-key code, whole as HTTP frames
        // it (what a broken backend or a middlebox could send).
        Some("cut-delete-result") => {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Error><Key>k1</Key><Code>AccessDe";
            let xml = [("Content-Type", "application/xml")];
            respond(&mut conn, 200, &xml, body.as_bytes()).await
        }
        // A multi-object delete's result, every key deleted quietly (nothing to report).
        _ if req.method == "POST" && req.path.contains("?delete") => {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></DeleteResult>";
            let xml = [("Content-Type", "application/xml")];
            respond(&mut conn, 200, &xml, body.as_bytes()).await
        }
        // (An ACL read: the owner's alone, as a new object's is.)
        None if req.method == "GET" && req.path.contains("?acl") => {
            let xml = [("Content-Type", "application/xml")];
            respond(&mut conn, 200, &xml, OWNER_ACL).await
        }
        _ => respond(&mut conn, 200, &[], b"").await,
    }
}

/// An ACL granting its owner alone, as a new object's is.
const OWNER_ACL: &[u8] =
    b"<AccessControlPolicy><Owner><ID>o</ID></Owner><AccessControlList><Grant>\
    <Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
    xsi:type=\"CanonicalUser\"><ID>o</ID></Grantee><Permission>FULL_CONTROL\
    </Permission></Grant></AccessControlList></AccessControlPolicy>";

async fn write_error(
    conn: &mut TcpStream,
    vendor: Vendor,
    status: u16,
    code: &str,
    req: &Request,
    head_only: bool,
    json: bool,
) -> std::io::Result<()> {
    let msg = message(code);
    let rid = "17B5C9D2A4E3F001";
    let resource = req.path.split('?').next().unwrap_or("/");
    let mut parts = resource.trim_start_matches('/').splitn(2, '/');
    let (bucket, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut headers: Vec<(&str, String)> = Vec::new();
    let body = match vendor {
        Vendor::Minio => {
            headers.extend([
                ("Server", "MinIO".to_string()),
                ("X-Amz-Request-Id", rid.to_string()),
                (
                    "X-Amz-Id-2",
                    "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8".to_string(),
                ),
                ("Accept-Ranges", "bytes".to_string()),
                ("Vary", "Origin".to_string()),
                ("Content-Type", "application/xml".to_string()),
            ]);
            if head_only {
                headers.push(("X-Minio-Error-Code", code.to_string()));
                headers.push(("X-Minio-Error-Desc", format!("\"{msg}\"")));
            }
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{msg}</Message><Key>{key}</Key><BucketName>{bucket}</BucketName><Resource>{resource}</Resource><Region>us-east-1</Region><RequestId>{rid}</RequestId><HostId>dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8</HostId></Error>"
            )
        }
        Vendor::Obs => {
            headers.extend([
                ("Server", "OBS".to_string()),
                ("x-obs-request-id", rid.to_string()),
                (
                    "x-obs-id-2",
                    "32AAAQAAEAABAAAQAAEAABAAAQAAEAABCS".to_string(),
                ),
                ("x-reserved-indicator", "0000000000".to_string()),
            ]);
            if head_only {
                headers.push(("x-obs-error-code", code.to_string()));
                headers.push(("x-obs-error-message", msg.clone()));
            }
            if json {
                headers.push(("Content-Type", "application/json;charset=UTF-8".to_string()));
                format!("{{\"code\":\"{code}\",\"message\":\"{msg}\",\"request_id\":\"{rid}\"}}")
            } else {
                headers.push(("Content-Type", "application/xml".to_string()));
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Error><Code>{code}</Code><Message>{msg}</Message><RequestId>{rid}</RequestId><HostId>32AAAQAAEAABAAAQAAEAABAAAQAAEAABCS</HostId><Resource>{resource}</Resource></Error>"
                )
            }
        }
        Vendor::Aws => {
            headers.extend([
                ("Server", "AmazonS3".to_string()),
                ("x-amz-request-id", rid.to_string()),
                (
                    "x-amz-id-2",
                    "hk6cBV+2qNjL4lwgpxqN2nkrWc9Yz5nRHsS2x2GfVMt+oVVmHU3Wr5Pa6DzCr6U=".to_string(),
                ),
                ("Content-Type", "application/xml".to_string()),
            ]);
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{msg}</Message><Resource>{resource}</Resource><RequestId>{rid}</RequestId><HostId>hk6cBV+2qNjL4lwgpxqN2nkrWc9Yz5nRHsS2x2GfVMt+oVVmHU3Wr5Pa6DzCr6U=</HostId></Error>"
            )
        }
    };
    let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    if head_only {
        respond_head(conn, status, &refs, body.len()).await
    } else {
        respond(conn, status, &refs, body.as_bytes()).await
    }
}

/// A bucket's versioning configuration: enabled.
async fn versioning_enabled(conn: &mut TcpStream) -> std::io::Result<()> {
    versioning_status(conn, "Enabled").await
}

/// A bucket's versioning document with this `Status`.
async fn versioning_status(conn: &mut TcpStream, status: &str) -> std::io::Result<()> {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{status}</Status></VersioningConfiguration>");
    respond(
        conn,
        200,
        &[("Content-Type", "application/xml")],
        body.as_bytes(),
    )
    .await
}

/// AWS's and MinIO's answer to a `versionId` of a form they never give (AWS: `InvalidArgument`
/// naming the argument; MinIO, which gives UUIDs: the same code and message, on a HEAD in its
/// headers; AWS's HEAD has no body). OBS is not recorded.
async fn write_invalid_version(
    conn: &mut TcpStream,
    vendor: Vendor,
    req: &Request,
    head_only: bool,
) -> std::io::Result<()> {
    const MESSAGE: &str = "Invalid version id specified";
    // (Its bucket keeps versions: a read naming one is sent with it.)
    if req.path.contains("versioning") {
        return versioning_enabled(conn).await;
    }
    let rid = "17B5C9D2A4E3F001";
    let version = req
        .path
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("versionId="))
        .unwrap_or_default();
    let (headers, body) = match vendor {
        Vendor::Aws => (
            vec![
                ("Server", "AmazonS3".to_string()),
                ("x-amz-request-id", rid.to_string()),
                ("Content-Type", "application/xml".to_string()),
            ],
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code><Message>{MESSAGE}</Message><ArgumentName>versionId</ArgumentName><ArgumentValue>{version}</ArgumentValue><RequestId>{rid}</RequestId><HostId>hk6cBV+2qNjL4lwgpxqN2nkrWc9Yz5nRHsS2x2GfVMt+oVVmHU3Wr5Pa6DzCr6U=</HostId></Error>"
            ),
        ),
        Vendor::Minio => {
            let mut headers = vec![
                ("Server", "MinIO".to_string()),
                ("X-Amz-Request-Id", rid.to_string()),
                ("Content-Type", "application/xml".to_string()),
            ];
            if head_only {
                headers.push(("X-Minio-Error-Code", "InvalidArgument".to_string()));
                headers.push(("X-Minio-Error-Desc", format!("\"{MESSAGE}\"")));
            }
            let resource = req.path.split('?').next().unwrap_or("/");
            (
                headers,
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code><Message>{MESSAGE}</Message><Resource>{resource}</Resource><RequestId>{rid}</RequestId><HostId>dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8</HostId></Error>"
                ),
            )
        }
        Vendor::Obs => panic!("OBS's answer to an invalid version id is not recorded"),
    };
    let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    if head_only {
        let len = if vendor == Vendor::Aws { 0 } else { body.len() };
        respond_head(conn, 400, &refs, len).await
    } else {
        respond(conn, 400, &refs, body.as_bytes()).await
    }
}

/// AWS's answer to a complete that takes long: 200 and its header at once, a space every
/// 200 ms for `during`, then the document (a result, or an Error in the 200), chunked.
async fn trickle_whitespace(
    conn: &mut TcpStream,
    during: Duration,
    document: &[u8],
) -> std::io::Result<()> {
    let head = "HTTP/1.1 200 OK\r\nServer: AmazonS3\r\nx-amz-request-id: 17B5C9D2A4E3F001\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    conn.write_all(head.as_bytes()).await?;
    conn.flush().await?;
    let until = tokio::time::Instant::now() + during;
    while tokio::time::Instant::now() < until {
        conn.write_all(b"1\r\n \r\n").await?;
        conn.flush().await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    conn.write_all(format!("{:x}\r\n", document.len()).as_bytes())
        .await?;
    conn.write_all(document).await?;
    conn.write_all(b"\r\n0\r\n\r\n").await?;
    conn.flush().await
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status")
}

async fn respond(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body).await?;
    conn.flush().await
}

async fn respond_head(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    len: usize,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {len}\r\nConnection: close\r\n",
        reason(status)
    );
    for (n, v) in headers {
        if !n.eq_ignore_ascii_case("content-length") {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await?;
    conn.flush().await
}

//! The store's S3 face: s3s parses and answers the protocol, [`Objects`] keeps the data. Buckets,
//! objects, versions and delete markers, multipart uploads and part copies, ACLs, CORS rules and
//! object lock are kept; lifecycle, tagging, SSE and the rest answer 501 (README lists them).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, S3};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::listing::{Entry, Page, Query};
use super::lock::{self, BucketLock, DefaultRetention, Mode, Retention};
use super::objects::{
    now_millis, Condition, Description, JoinCheck, Listed, ObjectRecord, Objects, StoreError,
    UploadEntry, UploadsQuery, Version, Versioning, MAX_KEY_BYTES,
};
use super::{acl, cors, wire};

/// Parts other than the last must be at least this large (S3's 5 MiB).
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

pub struct StoreS3 {
    objects: Arc<Objects>,
}

impl StoreS3 {
    pub fn new(objects: Arc<Objects>) -> StoreS3 {
        StoreS3 { objects }
    }

    /// Aborts uploads initiated longer than `age` ago, as HCP aborts a bucket's incomplete
    /// multipart uploads after its automatic abort time (30 days unless a tenant administrator
    /// changed it), each in its upload's turn; how many went. The store answers
    /// [`AUTOMATIC_ABORT`] after an upload's initiation as its `x-amz-abort-date`.
    pub async fn abort_uploads_older_than(&self, age: Duration) -> usize {
        self.abort_in_batches(age, 1000).await
    }

    /// [`StoreS3::abort_uploads_older_than`], `batch` uploads read at a time — every one that
    /// is due, not a batch an hour (uploads abandoned faster would pile up) — until one
    /// aborts none (what cannot be aborted now is tried at the next sweep).
    async fn abort_in_batches(&self, age: Duration, batch: usize) -> usize {
        let before = now_millis().saturating_sub(age.as_millis() as u64);
        let mut aborted = 0;
        loop {
            let old = self
                .blocking(move |o| o.initiated_before(before, batch))
                .await
                .unwrap_or_default();
            let read = old.len();
            let mut gone = 0;
            for upload in old {
                gone += usize::from(self.abort_in_turn(upload).await.is_ok());
            }
            aborted += gone;
            if read < batch || gone == 0 {
                return aborted;
            }
        }
    }

    /// Aborts an upload in its turn (no complete, abort or part commit of it at once).
    async fn abort_in_turn(&self, upload: String) -> S3Result<()> {
        let turn = self.objects.upload_turns.take(&upload).await;
        self.blocking(move |o| {
            let _turn = turn;
            o.abort(&upload)
        })
        .await
    }

    /// Runs a store call off the async threads (it may sync files).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Objects) -> Result<T, StoreError> + Send + 'static,
    ) -> S3Result<T> {
        let objects = self.objects.clone();
        tokio::task::spawn_blocking(move || {
            let result = f(&objects);
            objects.note(&result);
            result
        })
        .await
        .map_err(S3Error::internal_error)?
        .map_err(store_error)
    }

    /// Writes a request body into a new blob through tokio's file (its writes are short
    /// blocking tasks; no thread waits on the client for the length of an upload).
    ///
    /// Checksums the client sent (`x-amz-checksum-*`) are computed over the body and compared
    /// before anything is kept: a mismatch is 400 BadDigest.
    async fn receive(
        &self,
        body: Option<StreamingBlob>,
        sent: &Checksum,
    ) -> S3Result<super::objects::BlobWriter> {
        use tokio::io::AsyncWriteExt;
        let mut writer = self.objects.writer().map_err(store_error)?;
        let mut hasher = checksum_hasher(sent);
        let Some(mut body) = body else {
            return check_sums(hasher, sent).map(|()| writer);
        };
        let mut file = tokio::fs::File::from_std(writer.take_file());
        let disk = |e: std::io::Error| store_error(StoreError::Io(e));
        while let Some(chunk) = body.next().await {
            // On any failure the writer is dropped, and its temporary file with it.
            let chunk =
                chunk.map_err(|e| s3_error!(IncompleteBody, "The body could not be read: {e}"))?;
            file.write_all(&chunk).await.map_err(disk)?;
            writer.count(&chunk);
            hasher.update(&chunk);
        }
        file.flush().await.map_err(disk)?;
        writer.written(file.into_std().await);
        check_sums(hasher, sent).map(|()| writer)
    }
}

/// Inputs that name an object by key.
trait Keyed {
    fn key_mut(&mut self) -> &mut ObjectKey;
}

macro_rules! keyed {
    ($($input:ty),* $(,)?) => {
        $(impl Keyed for $input {
            fn key_mut(&mut self) -> &mut ObjectKey {
                &mut self.key
            }
        })*
    };
}

keyed!(
    PutObjectInput,
    HeadObjectInput,
    GetObjectInput,
    DeleteObjectInput,
    CopyObjectInput,
    GetObjectAclInput,
    PutObjectAclInput,
    GetObjectRetentionInput,
    PutObjectRetentionInput,
    GetObjectLegalHoldInput,
    PutObjectLegalHoldInput,
    CreateMultipartUploadInput,
    UploadPartInput,
    UploadPartCopyInput,
    CompleteMultipartUploadInput,
    AbortMultipartUploadInput,
    ListPartsInput
);

/// The request with the key it names: the path's, or, where the path names the placeholder,
/// the key the gateway sent in its header (`super::wire`: keys over the 1,024 bytes s3s takes in
/// a path). Every handler of an object starts here.
fn named<T: Keyed>(mut req: S3Request<T>) -> S3Result<S3Request<T>> {
    let key = std::mem::take(req.input.key_mut());
    *req.input.key_mut() = key_from(&req.headers, key, wire::KEY_HEADER)?;
    Ok(req)
}

/// `key`, or for the placeholder the key in header `name`; the header with any other key is
/// refused (only the gateway sets it, and only with the placeholder).
fn key_from(headers: &http::HeaderMap, key: String, name: &str) -> S3Result<String> {
    let Some(sent) = headers.get(name) else {
        return Ok(key);
    };
    if key != wire::PLACEHOLDER {
        return Err(s3_error!(
            InvalidArgument,
            "{name} is sent only with the placeholder key."
        ));
    }
    let bytes: Vec<u8> = percent_encoding::percent_decode(sent.as_bytes()).collect();
    String::from_utf8(bytes).map_err(|_| s3_error!(InvalidArgument, "{name} is not UTF-8."))
}

/// The checksums named by a request's `x-amz-checksum-*` values, as `(header, value)`.
fn checksum_list(c: &Checksum) -> [(&'static str, Option<&String>); 5] {
    [
        ("x-amz-checksum-crc32", c.checksum_crc32.as_ref()),
        ("x-amz-checksum-crc32c", c.checksum_crc32c.as_ref()),
        ("x-amz-checksum-crc64nvme", c.checksum_crc64nvme.as_ref()),
        ("x-amz-checksum-sha1", c.checksum_sha1.as_ref()),
        ("x-amz-checksum-sha256", c.checksum_sha256.as_ref()),
    ]
}

/// A hasher for every algorithm the client sent a checksum of.
fn checksum_hasher(sent: &Checksum) -> s3s::checksum::ChecksumHasher {
    s3s::checksum::ChecksumHasher {
        crc32: sent.checksum_crc32.as_ref().map(|_| Default::default()),
        crc32c: sent.checksum_crc32c.as_ref().map(|_| Default::default()),
        sha1: sent.checksum_sha1.as_ref().map(|_| Default::default()),
        sha256: sent.checksum_sha256.as_ref().map(|_| Default::default()),
        crc64nvme: sent.checksum_crc64nvme.as_ref().map(|_| Default::default()),
    }
}

/// BadDigest unless every checksum sent is the body's.
fn check_sums(hasher: s3s::checksum::ChecksumHasher, sent: &Checksum) -> S3Result<()> {
    let got = hasher.finalize();
    for ((name, want), (_, have)) in checksum_list(sent).into_iter().zip(checksum_list(&got)) {
        if want.is_some() && want != have {
            return Err(s3_error!(
                BadDigest,
                "The {name} you specified did not match the calculated checksum."
            ));
        }
    }
    Ok(())
}

/// The whole object's checksums a complete names (`x-amz-checksum-*`), computed over the
/// parts as they are joined: a full-object checksum over their bytes, a composite one over the
/// parts' own checksums (its value may end in `-<parts>`, as S3 answers it). `x-amz-checksum-
/// type` says which; without it, CRC-64/NVME is a full-object checksum and the rest composite
/// (S3's defaults).
struct JoinSums(Vec<JoinSum>);

struct JoinSum {
    /// The one algorithm, as the client's checksum names it (what hashers are made of).
    named: Checksum,
    want: String,
    full: bool,
    /// The object's bytes (full) or its parts' checksums (composite).
    outer: s3s::checksum::ChecksumHasher,
    /// The part being joined (composite).
    part: s3s::checksum::ChecksumHasher,
    parts: usize,
}

/// The one value a one-algorithm checksum holds.
fn only_value(c: &Checksum) -> Option<String> {
    checksum_list(c).into_iter().find_map(|(_, v)| v.cloned())
}

impl JoinSums {
    /// `None` where the complete names no checksum.
    fn asked(sent: &Checksum, kind: Option<&str>) -> Option<JoinSums> {
        let mut sums = Vec::new();
        for (name, value) in checksum_list(sent) {
            let Some(want) = value.cloned() else { continue };
            let mut named = Checksum::default();
            match name {
                "x-amz-checksum-crc32" => named.checksum_crc32 = Some(want.clone()),
                "x-amz-checksum-crc32c" => named.checksum_crc32c = Some(want.clone()),
                "x-amz-checksum-crc64nvme" => named.checksum_crc64nvme = Some(want.clone()),
                "x-amz-checksum-sha1" => named.checksum_sha1 = Some(want.clone()),
                _ => named.checksum_sha256 = Some(want.clone()),
            }
            let full = match kind {
                Some(k) => k.eq_ignore_ascii_case("FULL_OBJECT"),
                None => name == "x-amz-checksum-crc64nvme",
            };
            sums.push(JoinSum {
                outer: checksum_hasher(&named),
                part: checksum_hasher(&named),
                named,
                want,
                full,
                parts: 0,
            });
        }
        (!sums.is_empty()).then_some(JoinSums(sums))
    }
}

impl JoinCheck for JoinSums {
    fn update(&mut self, bytes: &[u8]) {
        for sum in &mut self.0 {
            match sum.full {
                true => sum.outer.update(bytes),
                false => sum.part.update(bytes),
            }
        }
    }

    fn part_end(&mut self) {
        use base64::Engine as _;
        for sum in &mut self.0 {
            sum.parts += 1;
            if sum.full {
                continue;
            }
            let part = std::mem::replace(&mut sum.part, checksum_hasher(&sum.named)).finalize();
            let raw = only_value(&part)
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .unwrap_or_default();
            sum.outer.update(&raw);
        }
    }

    fn holds(&mut self) -> bool {
        self.0.iter_mut().all(|sum| {
            let outer = std::mem::replace(&mut sum.outer, checksum_hasher(&sum.named));
            let have = only_value(&outer.finalize()).unwrap_or_default();
            match sum.want.split_once('-') {
                Some((value, parts)) if !sum.full => {
                    value == have && parts.parse() == Ok(sum.parts)
                }
                _ => sum.want == have,
            }
        })
    }
}

/// What a request's checksum fields hold (PutObject, UploadPart share them by name).
macro_rules! sent_checksums {
    ($input:ident) => {
        Checksum {
            checksum_crc32: $input.checksum_crc32.clone(),
            checksum_crc32c: $input.checksum_crc32c.clone(),
            checksum_crc64nvme: $input.checksum_crc64nvme.clone(),
            checksum_sha1: $input.checksum_sha1.clone(),
            checksum_sha256: $input.checksum_sha256.clone(),
            ..Default::default()
        }
    };
}

/// A condition or feature this store does not evaluate yet: refused, never ignored.
fn not_offered(what: &str) -> S3Error {
    s3_error!(
        NotImplemented,
        "The embedded store does not offer {what} yet."
    )
}

/// A GET or HEAD of `?partNumber=N`: part 1 is answered with the whole object and no parts
/// count — an object stored whole is its own part 1, and a client reading a completed upload
/// by parts (which asks part 1 first, then as many as the count says) reads it whole that
/// way. The store keeps no part boundaries of a completed upload, so a later part of one is
/// refused rather than answered with the whole; an object stored whole has no other part.
fn whole_object_part(record: &ObjectRecord, part: Option<i32>) -> S3Result<()> {
    match part {
        None | Some(1) => Ok(()),
        Some(_) if record.etag.contains('-') => Err(not_offered("reading one part of an object")),
        Some(_) => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("InvalidPartNumber".into()),
                "The requested partnumber is not satisfiable",
            );
            e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
            Err(e)
        }
    }
}

impl StoreS3 {
    /// The ETag and version a completed upload `id` of `bucket`/`key` made, if the key still
    /// holds it.
    async fn completed_again(
        &self,
        id: &str,
        bucket: &str,
        key: &str,
    ) -> Option<(String, Option<String>)> {
        let (id, bucket, key) = (id.to_string(), bucket.to_string(), key.to_string());
        self.blocking(move |o| {
            let Some(done) = o.completed(&id)? else {
                return Ok(None);
            };
            let current = o
                .get(&bucket, key.as_bytes(), None)
                .ok()
                .map(|(r, _)| r.etag);
            let same = done.bucket == bucket && done.key == key.as_bytes();
            let holds = same && current.as_deref() == Some(done.etag.as_str());
            Ok(holds.then_some((done.etag, done.version)))
        })
        .await
        .ok()
        .flatten()
    }

    /// A part's body sealed (parts of one upload seal at once), then made the part in the
    /// upload's turn.
    async fn commit_part(
        &self,
        upload: String,
        number: u32,
        body: super::objects::BlobWriter,
    ) -> S3Result<super::objects::PartRecord> {
        let sealed = self.blocking(move |o| o.seal_part(body)).await?;
        let turn = self.objects.upload_turns.take(&upload).await;
        self.blocking(move |o| {
            let _turn = turn;
            o.commit_part(&upload, number, sealed)
        })
        .await
    }

    /// The open upload `id` of `bucket`/`key`: when it was initiated (milliseconds since the
    /// epoch).
    async fn upload_of(&self, id: &str, bucket: &str, key: &str) -> S3Result<u64> {
        Ok(self.upload_record(id, bucket, key).await?.initiated)
    }

    /// The upload `id`, where it is one of `bucket`/`key` (else NoSuchUpload).
    async fn upload_record(
        &self,
        id: &str,
        bucket: &str,
        key: &str,
    ) -> S3Result<super::objects::UploadRecord> {
        let id = id.to_string();
        let record = self.blocking(move |o| o.upload(&id)).await?;
        if record.bucket != bucket || record.key != key.as_bytes() {
            return Err(s3_error!(NoSuchUpload));
        }
        Ok(record)
    }
}

/// The store's code for a disk (or quota) that is full: HCP's 413 OutOfSpace
/// (`tables/mapping/local.csv`), which a client does not retry as it retries a 500.
pub const STORAGE_FULL: &str = "XStoreStorageFull";

/// Whether a failed write is the disk's, or its quota's, being full.
fn out_of_space(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    [Errno::NOSPC, Errno::DQUOT]
        .iter()
        .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

pub(super) fn store_error(e: StoreError) -> S3Error {
    match e {
        StoreError::NoSuchBucket => s3_error!(NoSuchBucket),
        StoreError::NoSuchKey => s3_error!(NoSuchKey),
        StoreError::BucketNotEmpty => s3_error!(BucketNotEmpty),
        StoreError::PreconditionFailed => s3_error!(PreconditionFailed),
        StoreError::InvalidKey => s3_error!(
            InvalidArgument,
            "Keys are 1 to {MAX_KEY_BYTES} bytes without NUL."
        ),
        StoreError::NoSuchUpload => s3_error!(NoSuchUpload),
        StoreError::NoSuchVersion => s3_error!(NoSuchVersion),
        StoreError::Locked => s3_error!(
            AccessDenied,
            "The object version is kept by object lock (a retention or a legal hold)."
        ),
        StoreError::NoObjectLock => s3_error!(
            InvalidRequest,
            "Bucket is missing Object Lock Configuration"
        ),
        StoreError::LockedVersioning => s3_error!(
            InvalidBucketState,
            "Versioning cannot be suspended on a bucket with object lock."
        ),
        StoreError::DeleteMarker(modified) => {
            // (As S3 says which version is a delete marker, and when it was made: HCP's HEAD
            // of one names its Last-Modified.)
            let mut e = s3_error!(
                MethodNotAllowed,
                "The specified method is not allowed against this resource."
            );
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "x-amz-delete-marker",
                http::HeaderValue::from_static("true"),
            );
            let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(modified));
            if let Ok(date) = http::HeaderValue::from_str(&date) {
                headers.insert(http::header::LAST_MODIFIED, date);
            }
            e.set_headers(headers);
            e
        }
        StoreError::InvalidPart => s3_error!(InvalidPart),
        StoreError::InvalidPartOrder => s3_error!(InvalidPartOrder),
        StoreError::BadDigest => s3_error!(
            BadDigest,
            "The checksum you specified did not match the object the parts make."
        ),
        StoreError::EntityTooSmall(_) => s3_error!(EntityTooSmall),
        StoreError::Io(e) if out_of_space(&e) => {
            let code = S3ErrorCode::Custom(STORAGE_FULL.into());
            let mut full = S3Error::with_message(code, "The store's disk is full.");
            full.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
            full
        }
        StoreError::Io(e) => S3Error::internal_error(e),
        // (A broken database: the store is restarted — `/healthz` — and the client tries
        // again, as HCP's 503 asks.)
        StoreError::Database { broken: true, .. } => s3_error!(
            ServiceUnavailable,
            "The store cannot keep anything until it is restarted."
        ),
        StoreError::Database { message, .. } => {
            S3Error::internal_error(std::io::Error::other(message))
        }
    }
}

/// HCP's automatic abort time for a bucket's incomplete multipart uploads, as a new bucket has
/// it (manual: "By default, the automatic abort time for new buckets is 30 days"): the store
/// aborts an upload open this long (`abort_uploads_older_than`, run by the local backend) and
/// answers the date as the upload's `x-amz-abort-date`.
pub const AUTOMATIC_ABORT: Duration = Duration::from_secs(30 * 24 * 3600);

/// When an upload initiated at `initiated` (milliseconds since the epoch) is aborted unless
/// completed first.
fn abort_date(initiated: u64) -> Timestamp {
    timestamp(initiated.saturating_add(AUTOMATIC_ABORT.as_millis() as u64))
}

fn timestamp(millis: u64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(millis))
}

fn millis(t: &Timestamp) -> u64 {
    let at: SystemTime = time::OffsetDateTime::from(t.clone()).into();
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A reader's conditions (GetObject's and HeadObject's fields).
macro_rules! read_conditions {
    ($record:ident, $input:ident) => {
        preconditions(
            &$record,
            $input.if_match.as_ref(),
            $input.if_unmodified_since.as_ref(),
            $input.if_none_match.as_ref(),
            $input.if_modified_since.as_ref(),
        )
    };
}

/// A copy's conditions on its source (CopyObject's and UploadPartCopy's fields), as GET's, but
/// every failure is 412 (a copy has no 304).
macro_rules! source_conditions {
    ($source:ident, $input:ident) => {
        preconditions(
            &$source,
            $input.copy_source_if_match.as_ref(),
            $input.copy_source_if_unmodified_since.as_ref(),
            $input.copy_source_if_none_match.as_ref(),
            $input.copy_source_if_modified_since.as_ref(),
        )
        .map_err(|_| s3_error!(PreconditionFailed))
    };
}

/// The object lock settings a writer states (PutObject, CopyObject and CreateMultipartUpload
/// fields): a retention (mode and date, both or neither, the date ahead) and a legal hold.
macro_rules! lock_of {
    ($input:ident) => {
        lock_settings(
            $input.object_lock_mode.as_ref().map(|m| m.as_str()),
            $input.object_lock_retain_until_date.as_ref(),
            $input
                .object_lock_legal_hold_status
                .as_ref()
                .map(|s| s.as_str()),
        )?
    };
}

/// The ACL a writer states for an object (canned or grant headers), from the fields PutObject,
/// CopyObject and CreateMultipartUpload inputs share by name.
macro_rules! object_acl_of {
    ($input:ident) => {
        acl::stated(
            $input.acl.as_ref().map(|a| a.as_str()),
            &[
                ("FULL_CONTROL", $input.grant_full_control.as_deref()),
                ("READ", $input.grant_read.as_deref()),
                ("READ_ACP", $input.grant_read_acp.as_deref()),
                ("WRITE_ACP", $input.grant_write_acp.as_deref()),
            ],
            None,
        )?
    };
}

/// The five grant headers of CreateBucket, PutBucketAcl and PutObjectAcl, by permission.
macro_rules! all_grant_headers {
    ($input:ident) => {
        [
            ("FULL_CONTROL", $input.grant_full_control.as_deref()),
            ("READ", $input.grant_read.as_deref()),
            ("READ_ACP", $input.grant_read_acp.as_deref()),
            ("WRITE", $input.grant_write.as_deref()),
            ("WRITE_ACP", $input.grant_write_acp.as_deref()),
        ]
    };
}

/// What a writer says of an object, from the fields PutObject, CopyObject (REPLACE) and
/// CreateMultipartUpload inputs share by name.
macro_rules! description_of {
    ($input:ident) => {
        Description {
            acl: object_acl_of!($input),
            retention: lock_of!($input).0,
            legal_hold: lock_of!($input).1,
            content_type: $input.content_type,
            headers: headers(
                $input.cache_control,
                $input.content_disposition,
                $input.content_encoding,
                $input.content_language,
                $input.expires.as_ref(),
            ),
            metadata: $input
                .metadata
                .map(|m| m.into_iter().collect())
                .unwrap_or_default(),
            checksum_type: None,
        }
    };
}

/// The standard headers a writer gave, by lower-case name (`expires` as epoch milliseconds).
fn headers(
    cache_control: Option<String>,
    disposition: Option<String>,
    encoding: Option<String>,
    language: Option<String>,
    expires: Option<&Timestamp>,
) -> BTreeMap<String, String> {
    let mut h = BTreeMap::new();
    for (name, value) in [
        ("cache-control", cache_control),
        ("content-disposition", disposition),
        ("content-encoding", encoding),
        ("content-language", language),
        ("expires", expires.map(|t| millis(t).to_string())),
    ] {
        if let Some(v) = value {
            h.insert(name.to_string(), v);
        }
    }
    h
}

/// What HEAD answers of a stored object (GET answers the same with the body).
///
/// Checksums kept with the object are answered when the reader asks (`x-amz-checksum-mode:
/// ENABLED`) for the whole object; a 304 or 412 never gets here.
fn head_output(record: &ObjectRecord, checksums: bool) -> HeadObjectOutput {
    let h = &record.headers;
    let sum = |name: &str| h.get(name).filter(|_| checksums).cloned();
    HeadObjectOutput {
        checksum_crc32: sum("x-amz-checksum-crc32"),
        checksum_crc32c: sum("x-amz-checksum-crc32c"),
        checksum_crc64nvme: sum("x-amz-checksum-crc64nvme"),
        checksum_sha1: sum("x-amz-checksum-sha1"),
        checksum_sha256: sum("x-amz-checksum-sha256"),
        content_length: Some(record.size as i64),
        content_type: Some(record.content_type.clone()),
        e_tag: Some(ETag::Strong(record.etag.clone())),
        last_modified: Some(timestamp(record.modified)),
        metadata: Some(record.metadata.clone().into_iter().collect()),
        cache_control: h.get("cache-control").cloned(),
        content_disposition: h.get("content-disposition").cloned(),
        content_encoding: h.get("content-encoding").cloned(),
        content_language: h.get("content-language").cloned(),
        expires: h.get("expires").and_then(|m| m.parse().ok()).map(timestamp),
        accept_ranges: Some("bytes".into()),
        version_id: record.version.clone(),
        object_lock_mode: record
            .retention
            .map(|r| ObjectLockMode::from(r.mode.as_str().to_string())),
        object_lock_retain_until_date: record.retention.map(|r| timestamp(r.until)),
        object_lock_legal_hold_status: record
            .legal_hold
            .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
        ..Default::default()
    }
}

fn wants_checksums(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
}

/// GET and HEAD preconditions, in RFC 9110's order: 412, else 304, else none.
fn preconditions(
    record: &ObjectRecord,
    if_match: Option<&ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
) -> S3Result<()> {
    // (s3s reads a list — `"a", "b"` — as one tag whose value is `a", "b`: its text again, as
    // the client wrote it, is the list.)
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e
            .to_http_header()
            .ok()
            .and_then(|v| {
                v.to_str()
                    .ok()
                    .map(|list| crate::etag::listed(list, &record.etag))
            })
            .unwrap_or(false),
    };
    let modified_secs = record.modified / 1000;
    match if_match {
        Some(c) if !matches(c) => return Err(s3_error!(PreconditionFailed)),
        None if if_unmodified_since.is_some_and(|t| modified_secs > millis(t) / 1000) => {
            return Err(s3_error!(PreconditionFailed))
        }
        _ => {}
    }
    match if_none_match {
        Some(c) if matches(c) => Err(s3_error!(NotModified)),
        None if if_modified_since.is_some_and(|t| modified_secs <= millis(t) / 1000) => {
            Err(s3_error!(NotModified))
        }
        _ => Ok(()),
    }
}

/// A listed key or prefix, URL-encoded when the client asked (`encoding-type=url`).
fn listed_name(name: &[u8], url: bool) -> String {
    if url {
        crate::hcp::xml::url_encoded_name(name)
    } else {
        String::from_utf8_lossy(name).into_owned()
    }
}

struct Listing {
    contents: Option<Vec<Object>>,
    prefixes: Option<Vec<CommonPrefix>>,
    truncated: bool,
    last: Option<String>,
    count: i32,
}

/// The owner listings show (every object is the gateway's one account's; the gateway shows the
/// tenant instead).
fn owner() -> Owner {
    acl::owner()
}

fn listing(page: Page<ObjectRecord>, url: bool, with_owner: bool) -> Listing {
    let mut contents = Vec::new();
    let mut prefixes = Vec::new();
    let truncated = page.truncated;
    let last = page
        .entries
        .last()
        .map(|e| String::from_utf8_lossy(e.name()).into_owned());
    let count = page.entries.len() as i32;
    for entry in page.entries {
        match entry {
            Entry::Key(key, record) => contents.push(Object {
                key: Some(listed_name(&key, url)),
                e_tag: Some(ETag::Strong(record.etag.clone())),
                size: Some(record.size as i64),
                last_modified: Some(timestamp(record.modified)),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                owner: with_owner.then(owner),
                ..Default::default()
            }),
            Entry::Prefix(p) => prefixes.push(CommonPrefix {
                prefix: Some(listed_name(&p, url)),
            }),
        }
    }
    Listing {
        contents: (!contents.is_empty()).then_some(contents),
        prefixes: (!prefixes.is_empty()).then_some(prefixes),
        truncated,
        last,
        count,
    }
}

/// A listing's `MaxKeys`: "the value of the max-keys query parameter included in the request"
/// (HCP's manual), 1,000 where none was — not the 1,000 at most a listing gives.
fn echoed_max_keys(asked: Option<i32>) -> i32 {
    asked.unwrap_or(1000)
}

fn max_keys(asked: Option<i32>) -> usize {
    asked.map_or(1000, |m| m.clamp(0, 1000) as usize)
}

impl StoreS3 {
    /// A version (the current one without an id) in a bucket with object lock, changed by
    /// `change` when given, in one transaction; 400 InvalidRequest in a bucket without.
    async fn locked_version(
        &self,
        bucket: String,
        key: String,
        version: Option<String>,
        change: Option<Change>,
    ) -> S3Result<ObjectRecord> {
        self.blocking(move |o| {
            let found = o.bucket(&bucket)?.ok_or(StoreError::NoSuchBucket)?;
            if found.lock.is_none() {
                return Err(StoreError::NoObjectLock);
            }
            match change {
                Some(change) => {
                    o.change_version(&bucket, key.as_bytes(), version.as_deref(), change)
                }
                None => o
                    .get(&bucket, key.as_bytes(), version.as_deref())
                    .map(|(r, _)| r),
            }
        })
        .await
    }

    async fn page(
        &self,
        bucket: String,
        prefix: String,
        delimiter: String,
        after: Option<String>,
        max: usize,
    ) -> S3Result<Page<ObjectRecord>> {
        self.blocking(move |o| {
            let query = Query {
                prefix: prefix.as_bytes(),
                delimiter: delimiter.as_bytes(),
                after: after.as_deref().map(str::as_bytes),
                max,
            };
            o.list(&bucket, &query)
        })
        .await
    }
}

fn is_url(encoding: &Option<EncodingType>) -> bool {
    encoding
        .as_ref()
        .is_some_and(|e| e.as_str().eq_ignore_ascii_case("url"))
}

#[async_trait::async_trait]
impl S3 for StoreS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let input = req.input;
        let grants = acl::stated(
            input.acl.as_ref().map(BucketCannedACL::as_str),
            &all_grant_headers!(input),
            None,
        )?;
        let locked = input.object_lock_enabled_for_bucket.unwrap_or(false);
        let bucket = input.bucket;
        let name = bucket.clone();
        // Re-creating one's own bucket succeeds and changes nothing (S3 in us-east-1, RGW):
        // every bucket here belongs to the gateway's one account.
        // (Its ACL in the same transaction: a create cut short between the two would leave
        // the bucket without it, and a retried create, finding the bucket, would not set it.)
        self.blocking(move |o| o.create_bucket_with(&name, locked, grants).map(|_| ()))
            .await?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        // (Its unfinished uploads go with it: `Objects::delete_bucket`.)
        self.blocking(move |o| o.delete_bucket(&bucket)).await?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let bucket = req.input.bucket;
        match self.blocking(move |o| o.bucket(&bucket)).await? {
            Some(_) => Ok(S3Response::new(HeadBucketOutput::default())),
            None => Err(s3_error!(NoSuchBucket)),
        }
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let bucket = req.input.bucket;
        match self.blocking(move |o| o.bucket(&bucket)).await? {
            Some(_) => Ok(S3Response::new(GetBucketLocationOutput::default())),
            None => Err(s3_error!(NoSuchBucket)),
        }
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let all = self.blocking(|o| o.buckets()).await?;
        let buckets = all
            .into_iter()
            .map(|(name, record)| Bucket {
                name: Some(name),
                creation_date: Some(timestamp(record.created * 1000)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner()),
            ..Default::default()
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let req = named(req)?;
        let input = req.input;
        let condition = write_condition(input.if_none_match.as_ref(), input.if_match.as_ref())?;
        let sent = sent_checksums!(input);
        let mut description = description_of!(input);
        // Kept with the object, answered when a reader asks (x-amz-checksum-mode: ENABLED).
        for (name, value) in checksum_list(&sent) {
            if let Some(v) = value {
                description.headers.insert(name.to_string(), v.clone());
            }
        }
        let body = self.receive(input.body, &sent).await?;
        let (bucket, key) = (input.bucket, input.key);
        let record = self
            .blocking(move |o| o.commit(&bucket, key.as_bytes(), body, description, condition))
            .await?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(record.etag)),
            version_id: record.version,
            checksum_crc32: sent.checksum_crc32,
            checksum_crc32c: sent.checksum_crc32c,
            checksum_crc64nvme: sent.checksum_crc64nvme,
            checksum_sha1: sent.checksum_sha1,
            checksum_sha256: sent.checksum_sha256,
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let req = named(req)?;
        let input = req.input;
        let (bucket, key, version) = (
            input.bucket.clone(),
            input.key.clone(),
            input.version_id.clone(),
        );
        let (record, _) = self
            .blocking(move |o| o.get(&bucket, key.as_bytes(), version.as_deref()))
            .await?;
        read_conditions!(record, input)?;
        whole_object_part(&record, input.part_number)?;
        let checksums = wants_checksums(input.checksum_mode.as_ref());
        Ok(S3Response::new(head_output(&record, checksums)))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let req = named(req)?;
        let input = req.input;
        let (bucket, key, version) = (
            input.bucket.clone(),
            input.key.clone(),
            input.version_id.clone(),
        );
        let (record, file) = self
            .blocking(move |o| o.open_object(&bucket, key.as_bytes(), version.as_deref()))
            .await?;
        read_conditions!(record, input)?;
        whole_object_part(&record, input.part_number)?;
        let mut file = tokio::fs::File::from_std(file);
        let (start, length, content_range) = match &input.range {
            None => (0, record.size, None),
            Some(_) if record.size == 0 => return Err(s3_error!(InvalidRange)),
            Some(range) => {
                let r = range
                    .check(record.size)
                    .map_err(|_| s3_error!(InvalidRange))?;
                let range = format!("bytes {}-{}/{}", r.start, r.end - 1, record.size);
                (r.start, r.end - r.start, Some(range))
            }
        };
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(S3Error::internal_error)?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(length), 64 * 1024);
        let checksums = wants_checksums(input.checksum_mode.as_ref()) && input.range.is_none();
        let head = head_output(&record, checksums);
        Ok(S3Response::new(GetObjectOutput {
            checksum_crc32: head.checksum_crc32,
            checksum_crc32c: head.checksum_crc32c,
            checksum_crc64nvme: head.checksum_crc64nvme,
            checksum_sha1: head.checksum_sha1,
            checksum_sha256: head.checksum_sha256,
            body: Some(StreamingBlob::wrap(stream)),
            content_length: Some(length as i64),
            content_range,
            content_type: head.content_type,
            e_tag: head.e_tag,
            last_modified: head.last_modified,
            metadata: head.metadata,
            cache_control: head.cache_control,
            content_disposition: head.content_disposition,
            content_encoding: head.content_encoding,
            content_language: head.content_language,
            expires: head.expires,
            accept_ranges: head.accept_ranges,
            version_id: head.version_id,
            object_lock_mode: head.object_lock_mode,
            object_lock_retain_until_date: head.object_lock_retain_until_date,
            object_lock_legal_hold_status: head.object_lock_legal_hold_status,
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let req = named(req)?;
        if req.input.if_match.is_some()
            || req.input.if_match_last_modified_time.is_some()
            || req.input.if_match_size.is_some()
        {
            return Err(not_offered("conditional deletes"));
        }
        let bypass = req.input.bypass_governance_retention.unwrap_or(false);
        let (bucket, key, version) = (req.input.bucket, req.input.key, req.input.version_id);
        let deleted = self
            .blocking(move |o| o.delete(&bucket, key.as_bytes(), version.as_deref(), bypass))
            .await?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: deleted.marker.then_some(true),
            version_id: deleted.version,
            ..Default::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        // A bucket that is not there is the request's error, as S3 answers it (404), not
        // each key's.
        let bucket = input.bucket.clone();
        if self.blocking(move |o| o.bucket(&bucket)).await?.is_none() {
            return Err(s3_error!(NoSuchBucket));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let bypass = input.bypass_governance_retention.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in input.delete.objects {
            let (bucket, key) = (input.bucket.clone(), object.key.clone());
            let asked = object.version_id.clone();
            match self
                .blocking(move |o| o.delete(&bucket, key.as_bytes(), asked.as_deref(), bypass))
                .await
            {
                Ok(_) if quiet => {}
                // A delete naming a version reports it; a marker added or removed is reported
                // with its id (S3's DeleteMarkerVersionId).
                Ok(d) => deleted.push(DeletedObject {
                    key: Some(object.key),
                    delete_marker: d.marker.then_some(true),
                    delete_marker_version_id: d.version.clone().filter(|_| d.marker),
                    version_id: object.version_id.clone(),
                }),
                Err(e) => errors.push(Error {
                    key: Some(object.key),
                    version_id: object.version_id.clone(),
                    code: Some(e.code().as_str().to_string()),
                    message: e.message().map(str::to_string),
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let req = named(req)?;
        let input = req.input;
        // s3s's CopyObject input has no write conditions: read from the headers.
        let (sb, sk, sv) = copy_source(&input.copy_source, &req.headers)?;
        // The source as it is when opened: its conditions are checked against the very body
        // copied.
        let (source, mut file) = self
            .blocking(move |o| o.open_object(&sb, sk.as_bytes(), sv.as_deref()))
            .await?;
        source_conditions!(source, input)?;
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let description = if replace {
            description_of!(input)
        } else {
            // A copy's ACL is what the request states, never the source's.
            Description {
                acl: object_acl_of!(input),
                retention: lock_of!(input).0,
                legal_hold: lock_of!(input).1,
                content_type: Some(source.content_type.clone()),
                headers: source.headers.clone(),
                metadata: source.metadata.clone(),
                checksum_type: None,
            }
        };
        let condition = write_condition(
            header_condition(&req.headers, "if-none-match")?.as_ref(),
            header_condition(&req.headers, "if-match")?.as_ref(),
        )?;
        let (bucket, key) = (input.bucket, input.key);
        let record = self
            .blocking(move |o| {
                o.copy_in((&bucket, key.as_bytes()), &mut file, description, condition)
            })
            .await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(record.etag)),
                last_modified: Some(timestamp(record.modified)),
                ..Default::default()
            }),
            version_id: record.version,
            copy_source_version_id: source.version,
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let url = is_url(&input.encoding_type);
        let max = max_keys(input.max_keys);
        let (prefix, delimiter) = (
            input.prefix.clone().unwrap_or_default(),
            input.delimiter.clone().unwrap_or_default(),
        );
        let page = self
            .page(
                input.bucket.clone(),
                prefix,
                delimiter.clone(),
                input.marker.clone(),
                max,
            )
            .await?;
        let l = listing(page, url, true);
        let enc = |v: Option<String>| v.map(|v| listed_name(v.as_bytes(), url));
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            // botocore decodes Marker and NextMarker but not V1's Prefix (nor does RGW encode it).
            // (HCP: an element for every parameter, empty where none was given.)
            prefix: Some(input.prefix.unwrap_or_default()),
            marker: Some(enc(input.marker).unwrap_or_default()),
            max_keys: Some(echoed_max_keys(input.max_keys)),
            is_truncated: Some(l.truncated),
            contents: l.contents,
            common_prefixes: l.prefixes,
            delimiter: enc(input.delimiter).filter(|d| !d.is_empty()),
            next_marker: enc((l.truncated && !delimiter.is_empty())
                .then_some(l.last)
                .flatten()),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let input = req.input;
        let url = is_url(&input.encoding_type);
        let max = max_keys(input.max_keys);
        let (bucket, prefix, delimiter, key_marker, version_marker) = (
            input.bucket.clone(),
            input.prefix.clone().unwrap_or_default(),
            input.delimiter.clone().unwrap_or_default(),
            input.key_marker.clone(),
            input.version_id_marker.clone(),
        );
        let page = self
            .blocking(move |o| {
                let query = Query {
                    prefix: prefix.as_bytes(),
                    delimiter: delimiter.as_bytes(),
                    after: key_marker.as_deref().map(str::as_bytes),
                    max,
                };
                o.list_versions(&bucket, &query, version_marker.as_deref())
            })
            .await?;
        let truncated = page.truncated;
        let (next_key, next_version) = match page.entries.last().filter(|_| truncated) {
            Some(Entry::Key(key, listed)) => (
                Some(listed_name(key, url)),
                Some(listed.version.id().to_string()),
            ),
            // (HCP: "NextVersionIdMarker is an empty element" after a common prefix.)
            Some(Entry::Prefix(p)) => (Some(listed_name(p, url)), Some(String::new())),
            None => (None, None),
        };
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        let mut prefixes = Vec::new();
        for entry in page.entries {
            match entry {
                Entry::Key(key, Listed { latest, version }) => match version {
                    Version::Object(record) => versions.push(ObjectVersion {
                        key: Some(listed_name(&key, url)),
                        version_id: Some(record.version_id().to_string()),
                        is_latest: Some(latest),
                        e_tag: Some(ETag::Strong(record.etag)),
                        size: Some(record.size as i64),
                        last_modified: Some(timestamp(record.modified)),
                        owner: Some(owner()),
                        storage_class: Some(ObjectVersionStorageClass::from_static(
                            ObjectVersionStorageClass::STANDARD,
                        )),
                        ..Default::default()
                    }),
                    Version::Marker(marker) => markers.push(DeleteMarkerEntry {
                        key: Some(listed_name(&key, url)),
                        version_id: Some(Version::Marker(marker.clone()).id().to_string()),
                        is_latest: Some(latest),
                        last_modified: Some(timestamp(marker.modified)),
                        owner: Some(owner()),
                    }),
                },
                Entry::Prefix(p) => prefixes.push(CommonPrefix {
                    prefix: Some(listed_name(&p, url)),
                }),
            }
        }
        let enc = |v: Option<String>| v.map(|v| listed_name(v.as_bytes(), url));
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            // (Encoded as AWS encodes it, and as botocore decodes it: unlike V1's.)
            prefix: Some(enc(input.prefix).unwrap_or_default()),
            key_marker: Some(enc(input.key_marker).unwrap_or_default()),
            version_id_marker: Some(input.version_id_marker.unwrap_or_default()),
            max_keys: Some(echoed_max_keys(input.max_keys)),
            is_truncated: Some(truncated),
            next_key_marker: next_key,
            next_version_id_marker: next_version,
            versions: (!versions.is_empty()).then_some(versions),
            delete_markers: (!markers.is_empty()).then_some(markers),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            delimiter: enc(input.delimiter).filter(|d| !d.is_empty()),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        let bucket = req.input.bucket;
        let record = self.blocking(move |o| o.bucket(&bucket)).await?;
        let record = record.ok_or_else(|| s3_error!(NoSuchBucket))?;
        Ok(S3Response::new(GetBucketAclOutput {
            grants: Some(acl::answer(record.acl.as_deref())),
            owner: Some(acl::owner()),
        }))
    }

    async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        let input = req.input;
        let grants = acl::stated(
            input.acl.as_ref().map(BucketCannedACL::as_str),
            &all_grant_headers!(input),
            input.access_control_policy,
        )?
        .ok_or_else(|| s3_error!(MissingSecurityHeader, "State an ACL."))?;
        let bucket = input.bucket;
        self.blocking(move |o| o.set_bucket_acl(&bucket, grants))
            .await?;
        Ok(S3Response::new(PutBucketAclOutput::default()))
    }

    async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let req = named(req)?;
        let input = req.input;
        let (bucket, key, version) = (input.bucket, input.key, input.version_id);
        let (record, _) = self
            .blocking(move |o| o.get(&bucket, key.as_bytes(), version.as_deref()))
            .await?;
        Ok(S3Response::new(GetObjectAclOutput {
            grants: Some(acl::answer(record.acl.as_deref())),
            owner: Some(acl::owner()),
            ..Default::default()
        }))
    }

    async fn put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        let req = named(req)?;
        let input = req.input;
        let grants = acl::stated(
            input.acl.as_ref().map(ObjectCannedACL::as_str),
            &all_grant_headers!(input),
            input.access_control_policy,
        )?
        .ok_or_else(|| s3_error!(MissingSecurityHeader, "State an ACL."))?;
        let (bucket, key, version) = (input.bucket, input.key, input.version_id);
        self.blocking(move |o| {
            o.change_version(&bucket, key.as_bytes(), version.as_deref(), |r| {
                r.acl = Some(grants);
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(PutObjectAclOutput::default()))
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let bucket = req.input.bucket;
        let rules = self.blocking(move |o| o.bucket_cors(&bucket)).await?;
        let rules = rules.ok_or_else(|| s3_error!(NoSuchCORSConfiguration))?;
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(cors::answer(&rules)),
        }))
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let input = req.input;
        let rules = cors::rules(input.cors_configuration)?;
        let bucket = input.bucket;
        self.blocking(move |o| o.set_bucket_cors(&bucket, Some(rules)))
            .await?;
        Ok(S3Response::new(PutBucketCorsOutput::default()))
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |o| o.set_bucket_cors(&bucket, None))
            .await?;
        Ok(S3Response::new(DeleteBucketCorsOutput::default()))
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        let bucket = req.input.bucket;
        let record = self.blocking(move |o| o.bucket(&bucket)).await?;
        let record = record.ok_or_else(|| s3_error!(NoSuchBucket))?;
        let lock = record
            .lock
            .ok_or_else(|| s3_error!(ObjectLockConfigurationNotFoundError))?;
        let rule = lock.default.map(|d| ObjectLockRule {
            default_retention: Some(s3s::dto::DefaultRetention {
                mode: Some(ObjectLockRetentionMode::from(d.mode.as_str().to_string())),
                days: d.years.is_none().then_some(d.days as i32),
                years: d.years.map(|y| y as i32),
            }),
        });
        Ok(S3Response::new(GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(ObjectLockConfiguration {
                object_lock_enabled: Some(ObjectLockEnabled::from_static(
                    ObjectLockEnabled::ENABLED,
                )),
                rule,
            }),
        }))
    }

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        let input = req.input;
        let config = input
            .object_lock_configuration
            .ok_or_else(|| s3_error!(MalformedXML))?;
        if config
            .object_lock_enabled
            .as_ref()
            .map(ObjectLockEnabled::as_str)
            != Some(ObjectLockEnabled::ENABLED)
        {
            return Err(s3_error!(MalformedXML, "ObjectLockEnabled is Enabled."));
        }
        let default = match config.rule.and_then(|r| r.default_retention) {
            None => None,
            Some(d) => {
                let mode = d.mode.as_ref().and_then(|m| Mode::parse(m.as_str()));
                let mode =
                    mode.ok_or_else(|| s3_error!(MalformedXML, "A default retention has a mode."))?;
                // At most a hundred years: a retention date stays a date.
                let (days, years) = match (d.days, d.years) {
                    (Some(days), None) if (1..=36_500).contains(&days) => (days as u32, None),
                    (None, Some(years)) if (1..=100).contains(&years) => {
                        (years as u32 * 365, Some(years as u32))
                    }
                    (Some(_), Some(_)) | (None, None) => {
                        return Err(s3_error!(
                            MalformedXML,
                            "A default retention has Days or Years, not both."
                        ))
                    }
                    _ => return Err(invalid_retention_period()),
                };
                Some(DefaultRetention { mode, days, years })
            }
        };
        let bucket = input.bucket;
        self.blocking(move |o| o.set_bucket_lock(&bucket, BucketLock { default }))
            .await
            .map_err(|e| match e.code() {
                // S3: Object Lock is enabled when a bucket is created, not later.
                S3ErrorCode::InvalidRequest => s3_error!(
                    InvalidBucketState,
                    "Object Lock configuration cannot be enabled on existing buckets."
                ),
                _ => e,
            })?;
        Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
    }

    async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        let req = named(req)?;
        let input = req.input;
        let record = self
            .locked_version(input.bucket, input.key, input.version_id, None)
            .await?;
        let retention = record
            .retention
            .ok_or_else(|| s3_error!(NoSuchObjectLockConfiguration))?;
        Ok(S3Response::new(GetObjectRetentionOutput {
            retention: Some(ObjectLockRetention {
                mode: Some(ObjectLockRetentionMode::from(
                    retention.mode.as_str().to_string(),
                )),
                retain_until_date: Some(timestamp(retention.until)),
            }),
        }))
    }

    async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        let req = named(req)?;
        let input = req.input;
        let asked = input.retention.unwrap_or_default();
        let new = match (asked.mode, asked.retain_until_date) {
            (None, None) => None,
            (Some(mode), Some(_)) if Mode::parse(mode.as_str()).is_none() => {
                return Err(s3_error!(
                    MalformedXML,
                    "A retention's mode is GOVERNANCE or COMPLIANCE."
                ))
            }
            (Some(mode), Some(until)) => Some(retention(mode.as_str(), &until)?),
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "A retention has a mode and a date."
                ))
            }
        };
        let bypass = input.bypass_governance_retention.unwrap_or(false);
        let change = move |r: &mut ObjectRecord| {
            if !lock::may_change(r.retention.as_ref(), new.as_ref(), bypass, now_millis()) {
                return Err(StoreError::Locked);
            }
            r.retention = new;
            Ok(())
        };
        self.locked_version(
            input.bucket,
            input.key,
            input.version_id,
            Some(Box::new(change)),
        )
        .await?;
        Ok(S3Response::new(PutObjectRetentionOutput::default()))
    }

    async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        let req = named(req)?;
        let input = req.input;
        let record = self
            .locked_version(input.bucket, input.key, input.version_id, None)
            .await?;
        let status = if record.legal_hold {
            ObjectLockLegalHoldStatus::ON
        } else {
            ObjectLockLegalHoldStatus::OFF
        };
        Ok(S3Response::new(GetObjectLegalHoldOutput {
            legal_hold: Some(ObjectLockLegalHold {
                status: Some(ObjectLockLegalHoldStatus::from_static(status)),
            }),
        }))
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        let req = named(req)?;
        let input = req.input;
        let on = match input
            .legal_hold
            .and_then(|h| h.status)
            .as_ref()
            .map(ObjectLockLegalHoldStatus::as_str)
        {
            Some(ObjectLockLegalHoldStatus::ON) => true,
            Some(ObjectLockLegalHoldStatus::OFF) => false,
            _ => return Err(s3_error!(MalformedXML, "The legal hold is ON or OFF.")),
        };
        let change = move |r: &mut ObjectRecord| {
            r.legal_hold = on;
            Ok(())
        };
        self.locked_version(
            input.bucket,
            input.key,
            input.version_id,
            Some(Box::new(change)),
        )
        .await?;
        Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let bucket = req.input.bucket;
        let record = self.blocking(move |o| o.bucket(&bucket)).await?;
        let record = record.ok_or_else(|| s3_error!(NoSuchBucket))?;
        let status = record.versioning.map(|v| match v {
            Versioning::Enabled => {
                BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED)
            }
            Versioning::Suspended => {
                BucketVersioningStatus::from_static(BucketVersioningStatus::SUSPENDED)
            }
        });
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            ..Default::default()
        }))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        let config = input.versioning_configuration;
        if config
            .mfa_delete
            .as_ref()
            .is_some_and(|m| m.as_str() != MFADelete::DISABLED)
        {
            return Err(not_offered("MFA delete"));
        }
        let state = match config.status.as_ref().map(BucketVersioningStatus::as_str) {
            Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
            Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "The versioning status is Enabled or Suspended."
                ))
            }
        };
        let bucket = input.bucket;
        self.blocking(move |o| o.set_versioning(&bucket, state))
            .await?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let url = is_url(&input.encoding_type);
        let max = max_keys(input.max_keys);
        let after = match &input.continuation_token {
            Some(token) => Some(continuation(token)?),
            None => input.start_after.clone(),
        };
        let (prefix, delimiter) = (
            input.prefix.clone().unwrap_or_default(),
            input.delimiter.clone().unwrap_or_default(),
        );
        let page = self
            .page(input.bucket.clone(), prefix, delimiter, after, max)
            .await?;
        let l = listing(page, url, input.fetch_owner.unwrap_or(false));
        let next = l.truncated.then(|| l.last.as_deref().map(token)).flatten();
        let enc = |v: Option<String>| v.map(|v| listed_name(v.as_bytes(), url));
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(enc(input.prefix).unwrap_or_default()),
            max_keys: Some(echoed_max_keys(input.max_keys)),
            key_count: Some(l.count),
            is_truncated: Some(l.truncated),
            contents: l.contents,
            common_prefixes: l.prefixes,
            delimiter: enc(input.delimiter).filter(|d| !d.is_empty()),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            start_after: enc(input.start_after),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let req = named(req)?;
        let input = req.input;
        let mut description = description_of!(input);
        description.checksum_type = input.checksum_type.map(|t| t.as_str().to_string());
        // (A form's type, which the gateway sends under its own name: `wire`.)
        let form_type = req.headers.get(wire::CONTENT_TYPE_HEADER);
        if let Some(t) = form_type.and_then(|v| v.to_str().ok()) {
            description.content_type = Some(t.to_string());
        }
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let id = self
            .blocking(move |o| o.create_upload(&bucket, key.as_bytes(), description))
            .await?;
        // (From the time recorded, as ListParts answers it: a second may turn meanwhile.)
        let initiated = Objects::initiated_of(&id).unwrap_or_else(now_millis);
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(id),
            abort_date: Some(abort_date(initiated)),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let req = named(req)?;
        let input = req.input;
        let number = part_number(input.part_number)?;
        let upload = input.upload_id;
        let record = {
            let upload = upload.clone();
            self.blocking(move |o| o.upload(&upload)).await?
        };
        if record.bucket != input.bucket || record.key != input.key.as_bytes() {
            return Err(s3_error!(NoSuchUpload));
        }
        let sent = sent_checksums!(input);
        let body = self.receive(input.body, &sent).await?;
        let part = self.commit_part(upload, number, body).await?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(part.etag)),
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let req = named(req)?;
        let input = req.input;
        let number = part_number(input.part_number)?;
        self.upload_of(&input.upload_id, &input.bucket, &input.key)
            .await?;
        let (sb, sk, sv) = copy_source(&input.copy_source, &req.headers)?;
        // The source as it is when opened: its conditions and the range are checked against
        // the very body copied.
        let (source, file) = self
            .blocking(move |o| o.open_object(&sb, sk.as_bytes(), sv.as_deref()))
            .await?;
        source_conditions!(source, input)?;
        let (start, length) = match &input.copy_source_range {
            None => (0, source.size),
            Some(range) => copy_range(range, source.size)?,
        };
        // The copy and its commit run on their own, whatever becomes of this request: a copy the
        // gateway stopped waiting for (`complete_timeout`) is finished and listed, as HCP
        // "continues the operation in the background" (manual, client timeouts).
        let store = StoreS3 {
            objects: self.objects.clone(),
        };
        let upload = input.upload_id;
        let copied = tokio::spawn(async move {
            let body = store
                .blocking(move |o| {
                    use std::io::{Read, Seek};
                    let mut file = file;
                    file.seek(std::io::SeekFrom::Start(start))?;
                    let mut body = o.writer()?;
                    body.copy_from(&mut file.take(length))?;
                    Ok(body)
                })
                .await?;
            store.commit_part(upload, number, body).await
        });
        let part = copied.await.map_err(S3Error::internal_error)??;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(part.etag)),
                last_modified: Some(timestamp(part.modified)),
                ..Default::default()
            }),
            copy_source_version_id: source.version,
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let req = named(req)?;
        let input = req.input;
        let condition = write_condition(input.if_none_match.as_ref(), input.if_match.as_ref())?;
        let listed: Vec<(u32, String)> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let number = p
                    .part_number
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0);
                (
                    number,
                    p.e_tag.map(|e| e.value().to_string()).unwrap_or_default(),
                )
            })
            .collect();
        let upload = input.upload_id;
        let completed = match self.upload_record(&upload, &input.bucket, &input.key).await {
            Ok(record) => {
                // (The complete's type, else the one its upload was created with.)
                let kind = input.checksum_type.map(|t| t.as_str().to_string());
                let kind = kind.or(record.description.checksum_type);
                let mut sums = JoinSums::asked(&sent_checksums!(input), kind.as_deref());
                let id = upload.clone();
                let turn = self.objects.upload_turns.take(&upload).await;
                self.blocking(move |o| {
                    let _turn = turn;
                    let check = sums.as_mut().map(|s| s as &mut dyn JoinCheck);
                    o.complete(&id, &listed, (MIN_PART_BYTES, condition), check)
                })
                .await
                .map(|object| (object.etag, object.version))
            }
            Err(e) => Err(e),
        };
        let (etag, version) = match completed {
            Ok(done) => done,
            // A retried complete (the first's answer was lost, or it ran at the same time and
            // finished first) is answered as the first was, while the key holds what it made.
            Err(e) if e.code() == &s3s::S3ErrorCode::NoSuchUpload => self
                .completed_again(&upload, &input.bucket, &input.key)
                .await
                .ok_or(e)?,
            Err(e) => return Err(e),
        };
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(ETag::Strong(etag)),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            version_id: version,
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let req = named(req)?;
        let input = req.input;
        self.upload_of(&input.upload_id, &input.bucket, &input.key)
            .await?;
        self.abort_in_turn(input.upload_id).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let req = named(req)?;
        let input = req.input;
        let max = input.max_parts.map_or(1000, |m| m.clamp(0, 1000) as usize);
        let after = input
            .part_number_marker
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(0);
        let initiated = self
            .upload_of(&input.upload_id, &input.bucket, &input.key)
            .await?;
        let upload = input.upload_id.clone();
        let (parts, truncated) = self.blocking(move |o| o.parts(&upload, after, max)).await?;
        let next = parts.last().map(|(n, _)| *n as i32);
        let parts = parts
            .into_iter()
            .map(|(n, p)| Part {
                part_number: Some(n as i32),
                e_tag: Some(ETag::Strong(p.etag)),
                size: Some(p.size as i64),
                last_modified: Some(timestamp(p.modified)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            parts: Some(parts),
            is_truncated: Some(truncated),
            max_parts: Some(max as i32),
            // (HCP and S3 name both markers on every page: 0 where none was asked, or no part
            // listed.)
            part_number_marker: Some(input.part_number_marker.unwrap_or(0)),
            next_part_number_marker: Some(next.unwrap_or(0)),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            abort_date: Some(abort_date(initiated)),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let max = input
            .max_uploads
            .map_or(1000, |m| m.clamp(0, 1000) as usize);
        let (bucket, prefix) = (
            input.bucket.clone(),
            input.prefix.clone().unwrap_or_default(),
        );
        let (key_marker, id_marker) = (input.key_marker.clone(), input.upload_id_marker.clone());
        let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
        let asked = delimiter.clone();
        let (entries, truncated) = self
            .blocking(move |o| {
                let q = UploadsQuery {
                    prefix: prefix.as_bytes(),
                    delimiter: asked.as_deref().map(str::as_bytes),
                    after: key_marker
                        .as_deref()
                        .map(|k| (k.as_bytes(), id_marker.as_deref())),
                    max,
                };
                o.uploads(&bucket, &q)
            })
            .await?;
        // (With encoding-type=url, AWS encodes Delimiter, KeyMarker, Prefix, NextKeyMarker and
        // Key: a key of control characters is listed safely.)
        let url = is_url(&input.encoding_type);
        let text = |b: &[u8]| listed_name(b, url);
        let enc = |v: Option<String>| v.map(|v| text(v.as_bytes()));
        let next = entries.last().filter(|_| truncated).map(|last| match last {
            UploadEntry::Upload { key, id, .. } => (text(key), Some(id.clone())),
            UploadEntry::Prefix(p) => (text(p), None),
        });
        let (mut uploads, mut prefixes) = (Vec::new(), Vec::new());
        for entry in entries {
            match entry {
                UploadEntry::Upload { key, id, initiated } => {
                    uploads.push(MultipartUpload {
                        key: Some(text(&key)),
                        upload_id: Some(id),
                        initiated: Some(timestamp(initiated)),
                        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                        ..Default::default()
                    });
                }
                UploadEntry::Prefix(p) => prefixes.push(CommonPrefix {
                    prefix: Some(text(&p)),
                }),
            }
        }
        let (next_key_marker, next_upload_id_marker) = next.unzip();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: Some(enc(input.prefix).unwrap_or_default()),
            delimiter: enc(delimiter),
            key_marker: Some(enc(input.key_marker).unwrap_or_default()),
            upload_id_marker: Some(input.upload_id_marker.unwrap_or_default()),
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker,
            next_upload_id_marker: next_upload_id_marker.flatten(),
            uploads: Some(uploads),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}

/// The bucket, key and version a copy reads.
fn copy_source(
    source: &CopySource,
    headers: &http::HeaderMap,
) -> S3Result<(String, String, Option<String>)> {
    match source {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket.to_string(),
            key_from(headers, key.to_string(), wire::COPY_SOURCE_KEY_HEADER)?,
            version_id.as_deref().map(str::to_string),
        )),
        _ => Err(s3_error!(
            NotImplemented,
            "Copies from access points and outposts are not offered."
        )),
    }
}

/// The condition a write (PUT, copy, complete) puts on the key it replaces.
fn write_condition(
    if_none_match: Option<&ETagCondition>,
    if_match: Option<&ETagCondition>,
) -> S3Result<Condition> {
    Ok(match (if_none_match, if_match) {
        (None, None) => Condition::None,
        (Some(ETagCondition::Any), None) => Condition::Absent,
        (Some(ETagCondition::ETag(e)), None) => Condition::DiffersFrom(e.value().to_string()),
        (None, Some(ETagCondition::Any)) => Condition::Matches("*".into()),
        (None, Some(ETagCondition::ETag(e))) => Condition::Matches(e.value().to_string()),
        (Some(_), Some(_)) => return Err(not_offered("If-Match with If-None-Match on a write")),
    })
}

/// An `If-Match` / `If-None-Match` header as s3s parses it for PUT (`*` or an ETag).
/// A header present but not one `*` or one ETag (a list, two lines, bytes that are no ETag) is
/// refused, never taken for no condition.
fn header_condition(headers: &http::HeaderMap, name: &str) -> S3Result<Option<ETagCondition>> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let refused = || not_offered(&format!("this {name} on a copy"));
    if values.next().is_some() {
        return Err(refused());
    }
    let value = value.to_str().map_err(|_| refused())?.trim();
    if value == "*" {
        return Ok(Some(ETagCondition::Any));
    }
    ETagCondition::parse_http_header(value.as_bytes())
        .map(Some)
        .map_err(|_| refused())
}

/// Object lock settings from a writer's headers (see `lock_of!`).
fn lock_settings(
    mode: Option<&str>,
    until: Option<&Timestamp>,
    hold: Option<&str>,
) -> S3Result<(Option<Retention>, bool)> {
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(mode), Some(until)) => Some(retention(mode, until)?),
        _ => {
            return Err(s3_error!(
            InvalidArgument,
            "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must both be supplied"
        ))
        }
    };
    let hold = match hold {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(_) => return Err(s3_error!(InvalidArgument, "The legal hold is ON or OFF.")),
    };
    Ok((retention, hold))
}

/// A retention a client asks for: a known mode, a date ahead.
fn retention(mode: &str, until: &Timestamp) -> S3Result<Retention> {
    let mode = Mode::parse(mode)
        .ok_or_else(|| s3_error!(InvalidArgument, "Unknown object lock mode: {mode}"))?;
    let until = millis(until);
    if until <= now_millis() {
        return Err(s3_error!(
            InvalidArgument,
            "The retain until date must be in the future!"
        ));
    }
    Ok(Retention { mode, until })
}

/// S3's answer for a default retention of no or too many days or years.
fn invalid_retention_period() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("InvalidRetentionPeriod".into()),
        "The default retention period is 1 to 36,500 days or 1 to 100 years.",
    );
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    e
}

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| s3_error!(InvalidArgument, "Part numbers are 1 to 10,000."))
}

/// `x-amz-copy-source-range` (`bytes=first-last`, both given, inside the source): where the
/// copied bytes start and how many there are.
fn copy_range(range: &str, size: u64) -> S3Result<(u64, u64)> {
    let bounds = range
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
    match bounds {
        Some((first, last)) if first <= last && last < size => Ok((first, last - first + 1)),
        Some(_) => Err(s3_error!(
            InvalidRange,
            "The copy range is not inside the source object."
        )),
        None => Err(s3_error!(
            InvalidArgument,
            "The copy range is bytes=first-last."
        )),
    }
}

/// A change to what is kept of an object version.
type Change = Box<dyn FnOnce(&mut ObjectRecord) -> Result<(), StoreError> + Send>;

/// A continuation token: the last entry of the page, opaque to clients.
fn token(last: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

fn continuation(token: &str) -> S3Result<String> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token is not valid."))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose database broke answers 503 ServiceUnavailable (HCP's, which clients
    /// retry once the restart `/healthz` asks for has opened it again); another database
    /// failure stays an internal error.
    #[test]
    fn a_broken_database_is_hcp_s_service_unavailable() {
        use crate::hcp::mapping::{map, Dialect};
        use crate::request::classify::Operation;
        let failed = |broken| StoreError::Database {
            broken,
            at_commit: false,
            message: "metadata database: x".into(),
        };
        let e = store_error(failed(true));
        assert_eq!(e.code(), &S3ErrorCode::ServiceUnavailable);
        assert_eq!(e.status_code(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
        let hcp = map(
            Dialect::Local,
            503,
            Some("ServiceUnavailable"),
            Operation::PutObject,
        );
        assert_eq!(hcp.code, crate::hcp::errors::HcpCode::ServiceUnavailable);
        assert_eq!(
            store_error(failed(false)).code(),
            &S3ErrorCode::InternalError
        );
    }

    /// A full disk or quota is the store's StorageFull, HCP's 413 OutOfSpace (which clients do
    /// not retry as they retry a 500); other failures stay internal errors.
    #[test]
    fn a_full_disk_is_hcp_s_out_of_space() {
        use crate::hcp::mapping::{map, Dialect};
        use crate::request::classify::Operation;
        let errno = |e: rustix::io::Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
        for full in [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT] {
            let e = store_error(StoreError::Io(errno(full)));
            assert_eq!(
                e.status_code(),
                Some(http::StatusCode::INSUFFICIENT_STORAGE)
            );
            assert_eq!(e.code().as_str(), STORAGE_FULL);
            let hcp = map(
                Dialect::Local,
                507,
                Some(STORAGE_FULL),
                Operation::PutObject,
            );
            assert_eq!(hcp.code, crate::hcp::errors::HcpCode::OutOfSpace);
        }
        let e = store_error(StoreError::Io(errno(rustix::io::Errno::IO)));
        assert_eq!(e.code(), &S3ErrorCode::InternalError);
    }

    /// Uploads open past the automatic abort time go with their parts; newer ones stay.
    #[tokio::test]
    async fn abandoned_uploads_are_aborted_with_their_parts() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Arc::new(Objects::open(dir.path()).unwrap());
        objects.create_bucket("b").unwrap();
        let old = objects
            .create_upload("b", b"k", Description::default())
            .unwrap();
        let mut w = objects.writer().unwrap();
        w.write(b"part").unwrap();
        objects.put_part(&old, 1, w).unwrap();
        let blobs = || std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert_eq!(blobs(), 1);
        let store = StoreS3::new(objects.clone());
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(store.abort_uploads_older_than(day).await, 0);
        assert!(objects.upload(&old).is_ok());
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.abort_uploads_older_than(Duration::ZERO).await, 1);
        assert!(matches!(
            objects.upload(&old),
            Err(StoreError::NoSuchUpload)
        ));
        assert_eq!(blobs(), 0);
        // Every upload that is due goes in one sweep, not a batch of them.
        let many: Vec<String> = (0..25)
            .map(|i| {
                let key = format!("k{i}");
                objects
                    .create_upload("b", key.as_bytes(), Description::default())
                    .unwrap()
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.abort_in_batches(Duration::ZERO, 10).await, 25);
        for id in &many {
            assert!(matches!(objects.upload(id), Err(StoreError::NoSuchUpload)));
        }
    }

    /// A part copy whose request is dropped once the copy has begun (the gateway stopped
    /// waiting: `complete_timeout`) is finished and listed all the same, as HCP "continues the
    /// operation in the background".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_part_copy_left_by_its_request_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Arc::new(Objects::open(dir.path()).unwrap());
        objects.create_bucket("b").unwrap();
        let mut w = objects.writer().unwrap();
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..64 {
            w.write(&chunk).unwrap();
        }
        let description = Description::default();
        let condition = super::super::objects::Condition::None;
        objects
            .commit("b", b"src", w, description, condition)
            .unwrap();
        let upload = objects
            .create_upload("b", b"dst", Description::default())
            .unwrap();
        let store = StoreS3::new(objects.clone());
        let input = UploadPartCopyInput::builder()
            .bucket("b".into())
            .key("dst".into())
            .part_number(1)
            .upload_id(upload.clone())
            .copy_source(CopySource::Bucket {
                bucket: "b".into(),
                key: "src".into(),
                version_id: None,
            })
            .build()
            .unwrap();
        let req = S3Request {
            input,
            method: http::Method::PUT,
            uri: "/b/dst".parse().unwrap(),
            headers: http::HeaderMap::new(),
            extensions: http::Extensions::new(),
            credentials: None,
            region: None,
            service: None,
            trailing_headers: None,
        };
        // (Boxed by the S3 trait: dropped below, the request is gone.)
        let mut copying = store.upload_part_copy(req);
        let tmp = dir.path().join("tmp");
        let begun = || std::fs::read_dir(&tmp).is_ok_and(|mut d| d.next().is_some());
        loop {
            tokio::select! {
                done = &mut copying => panic!("done before it was left: {:?}", done.is_ok()),
                () = tokio::time::sleep(Duration::from_micros(200)) => if begun() { break },
            }
        }
        drop(copying);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while objects.parts(&upload, 0, 10).unwrap().0.is_empty() {
            assert!(std::time::Instant::now() < deadline, "the part never came");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(objects.parts(&upload, 0, 10).unwrap().0[0].1.size, 64 << 20);
    }

    /// The gateway's key header counts only with the placeholder, decoded to UTF-8; a key in
    /// the path stands when no header came.
    #[test]
    fn a_long_key_is_read_from_the_header_only_with_the_placeholder() {
        let mut headers = http::HeaderMap::new();
        let name = wire::KEY_HEADER;
        assert_eq!(key_from(&headers, "k".into(), name).unwrap(), "k");
        headers.insert(name, "a%2F%C3%BC".parse().unwrap());
        let placeholder = wire::PLACEHOLDER.to_string();
        assert_eq!(
            key_from(&headers, placeholder.clone(), name).unwrap(),
            "a/ü"
        );
        let refused = key_from(&headers, "k".into(), name).unwrap_err();
        assert_eq!(refused.code(), &S3ErrorCode::InvalidArgument);
        headers.insert(name, "%FF".parse().unwrap());
        let refused = key_from(&headers, placeholder, name).unwrap_err();
        assert_eq!(refused.code(), &S3ErrorCode::InvalidArgument);
    }
}

//! Multipart uploads in the object layer: parts are bodies of their own until the complete,
//! which checks the list (ascending, every part uploaded with its ETag, all but the last at
//! least the minimum size), joins the parts into one body, and points the key at it in the same
//! transaction that closes the upload — S3's ETag `md5-of-part-md5s-N`.

use super::*;
use std::collections::HashMap;
use std::sync::Arc;

/// What a complete made, kept for a retried complete.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Completed {
    pub bucket: String,
    pub key: Vec<u8>,
    pub etag: String,
    /// The version it made (`None`: the null version, or a store of an earlier release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Milliseconds since the epoch.
    pub at: u64,
}

/// How long a completed upload's result is kept for retries.
const COMPLETED_KEPT_MS: u64 = 24 * 60 * 60 * 1000;

/// One entry of an uploads listing: an open upload, or a common prefix standing for every
/// upload whose key has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadEntry {
    Upload {
        key: Vec<u8>,
        id: String,
        /// Milliseconds since the epoch.
        initiated: u64,
    },
    Prefix(Vec<u8>),
}

impl UploadEntry {
    /// The key marker that resumes a listing after this entry.
    pub fn marker(&self) -> &[u8] {
        match self {
            UploadEntry::Upload { key, .. } | UploadEntry::Prefix(key) => key,
        }
    }
}

/// An uploads listing's entries, and whether more follow.
pub type UploadsPage = (Vec<UploadEntry>, bool);

/// What an uploads listing asks: S3's prefix, delimiter, key and upload id markers, and at
/// most `max` entries (uploads and common prefixes alike).
pub struct UploadsQuery<'q> {
    pub prefix: &'q [u8],
    pub delimiter: Option<&'q [u8]>,
    pub after: Option<(&'q [u8], Option<&'q str>)>,
    pub max: usize,
}

fn upload_order_key(bucket: &str, key: &[u8], upload: &str) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k.extend_from_slice(upload.as_bytes());
    k
}

/// Completes past keeping forgotten by one complete, at most: each forgets a few more than it
/// adds, so the table stays a day's worth without any complete reading all of it.
const FORGOTTEN_PER_COMPLETE: usize = 16;

/// Indexes by time the completes kept before they were (a store of an earlier version), once.
pub(super) fn index_completed(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut order = tx.open_table(COMPLETED_ORDER).map_err(db_error)?;
    if !redb::ReadableTableMetadata::is_empty(&order).map_err(db_error)? {
        return Ok(());
    }
    let completed = tx.open_table(COMPLETED).map_err(db_error)?;
    for item in completed.iter().map_err(db_error)? {
        let (k, v) = item.map_err(db_error)?;
        // (One that does not read is forgotten at once: at 0, it is the oldest.)
        let at = serde_json::from_slice::<Completed>(v.value()).map_or(0, |c| c.at);
        order.insert((at, k.value()), ()).map_err(db_error)?;
    }
    Ok(())
}

/// Notes what `upload`'s complete made, and forgets a few completes older than a day.
fn remember_completed(
    tx: &redb::WriteTransaction,
    upload: &str,
    record: &UploadRecord,
    object: &ObjectRecord,
) -> Result<(), StoreError> {
    let now = now_millis();
    let mut completed = tx.open_table(COMPLETED).map_err(db_error)?;
    let mut order = tx.open_table(COMPLETED_ORDER).map_err(db_error)?;
    let oldest_kept = now.saturating_sub(COMPLETED_KEPT_MS);
    let stale: Vec<(u64, String)> = order
        .range(..(oldest_kept, ""))
        .map_err(db_error)?
        .take(FORGOTTEN_PER_COMPLETE)
        .map(|item| item.map(|(k, _)| (k.value().0, k.value().1.to_string())))
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    for (at, id) in stale {
        order.remove((at, id.as_str())).map_err(db_error)?;
        completed.remove(id.as_str()).map_err(db_error)?;
    }
    let done = Completed {
        bucket: record.bucket.clone(),
        key: record.key.clone(),
        etag: object.etag.clone(),
        version: object.version.clone(),
        at: now,
    };
    let bytes = serde_json::to_vec(&done).map_err(db_error)?;
    completed
        .insert(upload, bytes.as_slice())
        .map_err(db_error)?;
    order.insert((now, upload), ()).map_err(db_error)?;
    Ok(())
}

/// Removes every upload of `bucket` and its parts in `tx`; the part bodies no longer pointed
/// at, to remove once it commits.
pub(super) fn drop_bucket_uploads(
    tx: &redb::WriteTransaction,
    bucket: &str,
) -> Result<Vec<String>, StoreError> {
    let mut order = tx.open_table(UPLOAD_ORDER).map_err(db_error)?;
    let mut uploads = tx.open_table(UPLOADS).map_err(db_error)?;
    let mut parts = tx.open_table(PARTS).map_err(db_error)?;
    let start = object_key(bucket, b"");
    let mut listed = Vec::new();
    for item in order.range(start.as_slice()..).map_err(db_error)? {
        let (k, _) = item.map_err(db_error)?;
        if !k.value().starts_with(&start) {
            break;
        }
        listed.push(k.value().to_vec());
    }
    let mut gone = Vec::new();
    for k in listed {
        order.remove(k.as_slice()).map_err(db_error)?;
        let split = k.iter().rposition(|&b| b == 0).unwrap_or(k.len());
        let id = String::from_utf8_lossy(&k[split + 1..]).into_owned();
        uploads.remove(id.as_str()).map_err(db_error)?;
        gone.extend(drop_parts(&mut parts, &id)?);
    }
    Ok(gone)
}

/// Removes every part of `upload`; their bodies, to remove once the transaction commits.
fn drop_parts(
    parts: &mut redb::Table<'_, (&'static str, u32), &'static [u8]>,
    upload: &str,
) -> Result<Vec<String>, StoreError> {
    let numbers: Vec<u32> = parts
        .range((upload, 0)..=(upload, u32::MAX))
        .map_err(db_error)?
        .map(|item| item.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    let mut gone = Vec::new();
    for n in numbers {
        if let Some(v) = parts.remove((upload, n)).map_err(db_error)? {
            let part: PartRecord = serde_json::from_slice(v.value()).map_err(db_error)?;
            gone.push(part.blob);
        }
    }
    Ok(gone)
}

/// A part's body sealed in `blobs/`, not yet a part: removed when dropped uncommitted (its
/// upload gone, or the request given up while it waited for the upload's turn).
pub struct SealedPart {
    record: PartRecord,
    path: Option<std::path::PathBuf>,
}

impl Drop for SealedPart {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Turns of the uploads being changed: a complete joins the parts it read, so no other
/// complete, abort or part of its upload may remove them under it (a retried complete waits for
/// the first, then finds the upload completed). Taken by the store's S3 layer before a part,
/// complete or abort goes to a blocking thread: a request waiting for its turn waits as a task,
/// never holding one of those threads.
#[derive(Default)]
pub struct Turns(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// An upload's turn, until dropped (its waiter's claim as well, should the wait be given up).
/// It owns what it needs, so that it goes with the blocking work it guards: a request given
/// up while its work runs on releases the turn only when the work is done.
pub struct Turn {
    /// (Dropped first: the claim then finds whether anyone else still wants the turn.)
    _held: tokio::sync::OwnedMutexGuard<()>,
    _claim: Claim,
}

/// A claim on an upload's turn: the table forgets the upload when the last claim goes.
struct Claim {
    turns: Arc<Turns>,
    upload: String,
    turn: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut turns = self.turns.0.lock().unwrap_or_else(|e| e.into_inner());
        drop(self.turn.take());
        // (The table's own: no claim, no holder.)
        if turns
            .get(&self.upload)
            .is_some_and(|t| Arc::strong_count(t) == 1)
        {
            turns.remove(&self.upload);
        }
    }
}

impl Turns {
    /// Waits for `upload`'s turn.
    pub async fn take(self: &Arc<Self>, upload: &str) -> Turn {
        let turn = {
            let mut turns = self.0.lock().unwrap_or_else(|e| e.into_inner());
            turns.entry(upload.to_string()).or_default().clone()
        };
        let claim = Claim {
            turns: self.clone(),
            upload: upload.to_string(),
            turn: Some(turn.clone()),
        };
        Turn {
            _held: turn.lock_owned().await,
            _claim: claim,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl Objects {
    /// What `upload`'s complete made, if it completed within the last day.
    pub fn completed(&self, upload: &str) -> Result<Option<Completed>, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        let table = tx.open_table(COMPLETED).map_err(db_error)?;
        let found = table.get(upload).map_err(db_error)?;
        found
            .map(|v| serde_json::from_slice(v.value()).map_err(db_error))
            .transpose()
    }

    /// When the upload `id` was initiated (milliseconds since the epoch), as its id begins with
    /// it ([`Objects::create_upload`]); `None` for an id of no such form.
    pub fn initiated_of(id: &str) -> Option<u64> {
        u64::from_str_radix(id.get(..16)?, 16).ok()
    }

    /// Opens an upload for `bucket`/`key`; its id.
    pub fn create_upload(
        &self,
        bucket: &str,
        key: &[u8],
        description: Description,
    ) -> Result<String, StoreError> {
        check_key(key)?;
        let initiated = now_millis();
        // Its initiation time first: a key's uploads are listed in the order they were
        // initiated (S3; HCP's manual, "ascending chronological order"), as their ids sort.
        let id = format!("{initiated:016x}{}", random_id());
        let record = UploadRecord {
            bucket: bucket.to_string(),
            key: key.to_vec(),
            initiated,
            description,
        };
        let tx = self.db.begin_write().map_err(db_error)?;
        {
            // (Object Lock settings where the bucket has none: refused now, as S3 refuses
            // them, not after the parts are uploaded and joined.)
            let found =
                versions::bucket_record(&tx.open_table(BUCKETS).map_err(db_error)?, bucket)?;
            let locks = record.description.retention.is_some() || record.description.legal_hold;
            if found.lock.is_none() && locks {
                return Err(StoreError::NoObjectLock);
            }
            let bytes = serde_json::to_vec(&record).map_err(db_error)?;
            let mut uploads = tx.open_table(UPLOADS).map_err(db_error)?;
            uploads
                .insert(id.as_str(), bytes.as_slice())
                .map_err(db_error)?;
            let mut order = tx.open_table(UPLOAD_ORDER).map_err(db_error)?;
            let k = upload_order_key(bucket, key, &id);
            order.insert(k.as_slice(), ()).map_err(db_error)?;
        }
        tx.commit().map_err(db_error)?;
        Ok(id)
    }

    pub fn upload(&self, id: &str) -> Result<UploadRecord, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        let uploads = tx.open_table(UPLOADS).map_err(db_error)?;
        let found = uploads.get(id).map_err(db_error)?;
        let found = found.ok_or(StoreError::NoSuchUpload)?;
        serde_json::from_slice(found.value()).map_err(db_error)
    }

    /// Stores a part (replacing one of the same number) of an open upload, for tests: the S3
    /// layer seals and commits apart, committing in the upload's turn.
    #[cfg(test)]
    pub fn put_part(
        &self,
        upload: &str,
        number: u32,
        body: BlobWriter,
    ) -> Result<PartRecord, StoreError> {
        let sealed = self.seal_part(body)?;
        self.commit_part(upload, number, sealed)
    }

    /// A part's body made durable in `blobs/` ([`Objects::commit_part`] makes it the part):
    /// outside the upload's turn, so that parts sealing at once do not wait for each other.
    pub fn seal_part(&self, body: BlobWriter) -> Result<SealedPart, StoreError> {
        let etag = hex::encode(body.md5.clone().finalize());
        let (blob, size, path) = self.seal(body)?;
        Ok(SealedPart {
            record: PartRecord {
                blob,
                size,
                etag,
                modified: now_millis(),
            },
            path: Some(path),
        })
    }

    /// Makes a sealed body part `number` of `upload`, in the upload's turn (a complete may be
    /// about to read the body it replaces, which goes here).
    pub fn commit_part(
        &self,
        upload: &str,
        number: u32,
        mut sealed: SealedPart,
    ) -> Result<PartRecord, StoreError> {
        let record = sealed.record.clone();
        let tx = self.db.begin_write().map_err(db_error)?;
        let replaced = {
            let uploads = tx.open_table(UPLOADS).map_err(db_error)?;
            if uploads.get(upload).map_err(db_error)?.is_none() {
                return Err(StoreError::NoSuchUpload);
            }
            let mut parts = tx.open_table(PARTS).map_err(db_error)?;
            let bytes = serde_json::to_vec(&record).map_err(db_error)?;
            let old = parts
                .insert((upload, number), bytes.as_slice())
                .map_err(db_error)?;
            old.map(|v| serde_json::from_slice::<PartRecord>(v.value()))
                .transpose()
                .map_err(db_error)?
        };
        if let Err(e) = tx.commit().map_err(commit_error) {
            // (As `commit_as`: a commit failed on I/O may have reached the disk; its body
            // stays, for the part it may name.)
            if e.may_have_committed() {
                sealed.path = None;
            }
            return Err(e);
        }
        sealed.path = None;
        if let Some(old) = replaced {
            let _ = std::fs::remove_file(self.root.join("blobs").join(old.blob));
        }
        Ok(record)
    }

    /// The upload's parts after part number `after`, at most `max`; whether more follow.
    pub fn parts(
        &self,
        upload: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<(u32, PartRecord)>, bool), StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        if tx
            .open_table(UPLOADS)
            .map_err(db_error)?
            .get(upload)
            .map_err(db_error)?
            .is_none()
        {
            return Err(StoreError::NoSuchUpload);
        }
        let parts = tx.open_table(PARTS).map_err(db_error)?;
        let mut out = Vec::new();
        if max == 0 {
            return Ok((out, false));
        }
        let range = parts
            .range((upload, after.saturating_add(1))..=(upload, u32::MAX))
            .map_err(db_error)?;
        for item in range {
            let (k, v) = item.map_err(db_error)?;
            if out.len() == max {
                return Ok((out, true));
            }
            let record = serde_json::from_slice(v.value()).map_err(db_error)?;
            out.push((k.value().1, record));
        }
        Ok((out, false))
    }

    /// Completes an upload from the parts listed (number, ETag without quotes): the object
    /// becomes their concatenation, the upload and its parts go, in one transaction.
    pub fn complete(
        &self,
        upload: &str,
        listed: &[(u32, String)],
        (min_part_bytes, condition): (u64, Condition),
        mut check: Option<&mut dyn JoinCheck>,
    ) -> Result<ObjectRecord, StoreError> {
        let record = self.upload(upload)?;
        if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(StoreError::InvalidPartOrder);
        }
        let (all, _) = self.parts(upload, 0, usize::MAX)?;
        let mut chosen = Vec::with_capacity(listed.len());
        for (i, (number, etag)) in listed.iter().enumerate() {
            let part = all
                .iter()
                .find(|(n, p)| n == number && p.etag == etag.trim_matches('"'))
                .map(|(_, p)| p)
                .ok_or(StoreError::InvalidPart)?;
            if i + 1 < listed.len() && part.size < min_part_bytes {
                return Err(StoreError::EntityTooSmall(*number));
            }
            chosen.push(part);
        }
        if chosen.is_empty() {
            return Err(StoreError::InvalidPart);
        }
        // What the object's placing would refuse, before its parts are joined (minutes and
        // the object's size on disk, for nothing).
        {
            let tx = self.db.begin_read().map_err(db_error)?;
            let locks = record.description.retention.is_some() || record.description.legal_hold;
            let at = (record.bucket.as_str(), record.key.as_slice());
            versions::check_placeable(&tx, at, locks, &condition)?;
        }
        let mut body = self.writer()?;
        for part in &chosen {
            // (A part removed under the join because the upload went — its bucket deleted — is
            // an upload gone; a body missing from an upload still open is the store's fault.)
            let mut file = match File::open(self.root.join("blobs").join(&part.blob)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && self.upload(upload).is_err() => {
                    return Err(StoreError::NoSuchUpload)
                }
                opened => opened?,
            };
            let written = body.file.as_mut().expect("open until finished");
            body.size += match check.as_deref_mut() {
                None => io::copy(&mut file, written)?,
                Some(check) => copy_checked(&mut file, written, check)?,
            };
        }
        // (A refused object is never sealed: its temporary file goes with the writer.)
        if check.is_some_and(|c| !c.holds()) {
            return Err(StoreError::BadDigest);
        }
        let etags = chosen.iter().map(|p| p.etag.as_str());
        let etag =
            crate::etag::of_parts(etags).ok_or_else(|| db_error("a part's ETag is no MD5"))?;
        let (blob, size, path) = self.seal(body)?;
        let object = ObjectRecord {
            blob,
            size,
            etag,
            modified: now_millis(),
            content_type: record
                .description
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            headers: record.description.headers.clone(),
            metadata: record.description.metadata.clone(),
            version: None,
            acl: record.description.acl.clone(),
            retention: record.description.retention,
            legal_hold: record.description.legal_hold,
        };
        let mut object = object;
        match self.close_upload(upload, &record, Some((&mut object, condition))) {
            Ok(gone) => {
                for blob in gone {
                    let _ = std::fs::remove_file(self.root.join("blobs").join(blob));
                }
                Ok(object)
            }
            Err(e) => {
                // (As `commit_as`: a commit failed on I/O may have reached the disk.)
                if !e.may_have_committed() {
                    let _ = std::fs::remove_file(path);
                }
                Err(e)
            }
        }
    }

    /// Open uploads initiated before `before` (milliseconds since the epoch), at most `max`.
    pub fn initiated_before(&self, before: u64, max: usize) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        let uploads = tx.open_table(UPLOADS).map_err(db_error)?;
        let mut old = Vec::new();
        for item in uploads.iter().map_err(db_error)? {
            let (id, value) = item.map_err(db_error)?;
            let record: UploadRecord = serde_json::from_slice(value.value()).map_err(db_error)?;
            if record.initiated < before {
                old.push(id.value().to_string());
                if old.len() == max {
                    break;
                }
            }
        }
        Ok(old)
    }

    /// Aborts an upload: it and its parts go.
    pub fn abort(&self, upload: &str) -> Result<(), StoreError> {
        let record = self.upload(upload)?;
        for blob in self.close_upload(upload, &record, None)? {
            let _ = std::fs::remove_file(self.root.join("blobs").join(blob));
        }
        Ok(())
    }

    /// Removes the upload and its parts, pointing its key at `object` in the same transaction
    /// when given; the bodies no longer pointed at (parts, and the object's old body).
    fn close_upload(
        &self,
        upload: &str,
        record: &UploadRecord,
        object: Option<(&mut ObjectRecord, Condition)>,
    ) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_write().map_err(db_error)?;
        let mut gone = Vec::new();
        {
            let mut uploads = tx.open_table(UPLOADS).map_err(db_error)?;
            if uploads.remove(upload).map_err(db_error)?.is_none() {
                return Err(StoreError::NoSuchUpload);
            }
            let mut order = tx.open_table(UPLOAD_ORDER).map_err(db_error)?;
            let k = upload_order_key(&record.bucket, &record.key, upload);
            order.remove(k.as_slice()).map_err(db_error)?;
            gone.extend(drop_parts(
                &mut tx.open_table(PARTS).map_err(db_error)?,
                upload,
            )?);
            if let Some((object, condition)) = object {
                let replaced =
                    versions::place(&tx, &record.bucket, &record.key, object, &condition)?;
                gone.extend(replaced);
                // (With the version it was given.)
                remember_completed(&tx, upload, record, object)?;
            }
        }
        tx.commit().map_err(commit_error)?;
        Ok(gone)
    }

    /// The bucket's open uploads in key order, then upload id, after (`key`, `upload id`)
    /// markers; with a delimiter, the keys holding it after the prefix rolled up into common
    /// prefixes (a marker that is one skips the keys it stands for). The reading starts at the
    /// markers and steps over each common prefix's keys at once: a page reads what it lists,
    /// not every upload before it.
    pub fn uploads(&self, bucket: &str, q: &UploadsQuery<'_>) -> Result<UploadsPage, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        require_bucket(&tx.open_table(BUCKETS).map_err(db_error)?, bucket)?;
        let order = tx.open_table(UPLOAD_ORDER).map_err(db_error)?;
        let records = tx.open_table(UPLOADS).map_err(db_error)?;
        let base = object_key(bucket, b"");
        let start = object_key(bucket, q.prefix);
        let mut out: Vec<UploadEntry> = Vec::new();
        if q.max == 0 {
            return Ok((out, false));
        }
        let delimiter = q.delimiter.unwrap_or_default();
        let mut from = start.clone().max(after_markers(bucket, q.after));
        'seek: loop {
            for item in order.range(from.as_slice()..).map_err(db_error)? {
                let (k, _) = item.map_err(db_error)?;
                let k = k.value();
                if !k.starts_with(&start) {
                    break 'seek;
                }
                let rest = &k[base.len()..];
                let split = rest.iter().rposition(|&b| b == 0).unwrap_or(rest.len());
                let (key, id) = (&rest[..split], String::from_utf8_lossy(&rest[split + 1..]));
                let past = match q.after {
                    None => true,
                    // S3: after a key marker alone, the key's uploads are skipped; with an
                    // upload id marker, the key's uploads after that id are listed.
                    Some((marker, None)) => key > marker,
                    Some((marker, Some(upload))) => {
                        key > marker || (key == marker && *id > *upload)
                    }
                };
                if !past {
                    continue;
                }
                let entry = match super::super::listing::rolled_up(key, q.prefix, delimiter) {
                    Some(common) => {
                        let skipped = q.after.is_some_and(|(marker, _)| marker == common);
                        let next = super::super::listing::successor(&object_key(bucket, common));
                        if !skipped {
                            if out.len() == q.max {
                                return Ok((out, true));
                            }
                            out.push(UploadEntry::Prefix(common.to_vec()));
                        }
                        // (The rest of the prefix's keys are that one entry: read past them.)
                        match next {
                            Some(next) => {
                                from = next;
                                continue 'seek;
                            }
                            None => break 'seek,
                        }
                    }
                    None => {
                        let record = records.get(&*id).map_err(db_error)?;
                        let Some(record) = record else { continue };
                        let initiated = serde_json::from_slice::<UploadRecord>(record.value())
                            .map_err(db_error)?
                            .initiated;
                        UploadEntry::Upload {
                            key: key.to_vec(),
                            id: id.into_owned(),
                            initiated,
                        }
                    }
                };
                if out.len() == q.max {
                    return Ok((out, true));
                }
                out.push(entry);
            }
            break;
        }
        Ok((out, false))
    }
}

/// Where a listing after (`key`, `upload id`) markers starts reading the upload order: just
/// past the marker's upload, or with a key marker alone past all of the key's uploads (keys
/// hold no NUL: `key` then 1 sorts after `key NUL id` and before every longer key).
fn after_markers(bucket: &str, after: Option<(&[u8], Option<&str>)>) -> Vec<u8> {
    match after {
        None => Vec::new(),
        Some((marker, Some(upload))) => {
            let mut k = upload_order_key(bucket, marker, upload);
            k.push(0);
            k
        }
        Some((marker, None)) => {
            let mut k = object_key(bucket, marker);
            k.push(1);
            k
        }
    }
}

/// What a complete checks of the bytes it joins, as it joins them: the whole object's
/// checksums a client sent with it.
pub trait JoinCheck {
    /// The next bytes of the part being joined.
    fn update(&mut self, bytes: &[u8]);
    /// The part being joined is whole.
    fn part_end(&mut self);
    /// Whether the bytes joined are the object the checksums name (else 400 BadDigest).
    fn holds(&mut self) -> bool;
}

/// Copies a part's bytes into the object being joined, each piece through `check`.
fn copy_checked(
    from: &mut File,
    to: &mut File,
    check: &mut dyn JoinCheck,
) -> Result<u64, StoreError> {
    use std::io::Read as _;
    let mut buf = vec![0; 256 * 1024];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        to.write_all(&buf[..n])?;
        check.update(&buf[..n]);
        total += n as u64;
    }
    check.part_end();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(store: &Objects, upload: &str, n: u32, body: &[u8]) -> PartRecord {
        let mut w = store.writer().unwrap();
        w.write(body).unwrap();
        store.put_part(upload, n, w).unwrap()
    }

    #[test]
    fn a_completed_upload_is_its_parts_joined_with_s3_s_etag() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        let id = store
            .create_upload("b", b"k", Description::default())
            .unwrap();
        // (An upload's id names when it was initiated, as its record does.)
        assert_eq!(
            Objects::initiated_of(&id),
            Some(store.upload(&id).unwrap().initiated)
        );
        assert_eq!(Objects::initiated_of("short"), None);
        let p1 = part(&store, &id, 1, b"first-");
        part(&store, &id, 2, b"replaced");
        let p2 = part(&store, &id, 2, b"second");
        let (listed, more) = store.parts(&id, 0, 1).unwrap();
        assert_eq!((listed.len(), listed[0].0, more), (1, 1, true));
        let done = store
            .complete(
                &id,
                &[(1, p1.etag.clone()), (2, format!("\"{}\"", p2.etag))],
                (1, Condition::None),
                None,
            )
            .unwrap();
        let mut md5s = md5::Md5::new();
        md5s.update(md5::Md5::digest(b"first-"));
        md5s.update(md5::Md5::digest(b"second"));
        assert_eq!(done.etag, format!("{}-2", hex::encode(md5s.finalize())));
        let (_, path) = store.get("b", b"k", None).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"first-second");
        assert!(matches!(store.upload(&id), Err(StoreError::NoSuchUpload)));
        // A retried complete can be answered as the first was.
        let completed = store.completed(&id).unwrap().unwrap();
        assert_eq!(
            (completed.key.as_slice(), completed.etag.as_str()),
            (&b"k"[..], done.etag.as_str())
        );
        // Only the object's body is left.
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
            1
        );
    }

    /// What the object's placing would refuse is refused before its parts are joined (a
    /// failed condition, Object Lock settings in a bucket without it: neither costs a join, a
    /// part missing from disk shows whether one was tried), and lock settings already when
    /// the upload begins, as S3 refuses them.
    #[test]
    fn a_complete_is_refused_before_its_parts_are_joined() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        let mut w = store.writer().unwrap();
        w.write(b"there").unwrap();
        store
            .commit("b", b"k", w, Description::default(), Condition::None)
            .unwrap();
        let id = store
            .create_upload("b", b"k", Description::default())
            .unwrap();
        let p1 = part(&store, &id, 1, b"a");
        std::fs::remove_file(dir.path().join("blobs").join(&p1.blob)).unwrap();
        let listed = [(1, p1.etag.clone())];
        let exists = store.complete(&id, &listed, (0, Condition::Absent), None);
        assert!(
            matches!(exists, Err(StoreError::PreconditionFailed)),
            "{exists:?}"
        );
        let held = Description {
            legal_hold: true,
            ..Description::default()
        };
        let unlocked = store.create_upload("b", b"h", held);
        assert!(
            matches!(unlocked, Err(StoreError::NoObjectLock)),
            "{unlocked:?}"
        );
        store.create_bucket_with("locked", true, None).unwrap();
        let held = Description {
            legal_hold: true,
            ..Description::default()
        };
        assert!(store.create_upload("locked", b"h", held).is_ok());
    }

    #[test]
    fn uploads_are_found_by_when_they_began() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        let first = store
            .create_upload("b", b"k", Description::default())
            .unwrap();
        let now = now_millis();
        assert!(store.initiated_before(now - 60_000, 10).unwrap().is_empty());
        let second = store
            .create_upload("b", b"j", Description::default())
            .unwrap();
        let mut all = store.initiated_before(now_millis() + 1, 10).unwrap();
        all.sort();
        let mut both = vec![first, second];
        both.sort();
        assert_eq!(all, both);
        assert_eq!(
            store.initiated_before(now_millis() + 1, 1).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_complete_checks_the_list_and_an_abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        let id = store
            .create_upload("b", b"k", Description::default())
            .unwrap();
        let p1 = part(&store, &id, 1, b"a");
        let p2 = part(&store, &id, 2, b"b");
        let order = store.complete(
            &id,
            &[(2, p2.etag.clone()), (1, p1.etag.clone())],
            (0, Condition::None),
            None,
        );
        assert!(matches!(order, Err(StoreError::InvalidPartOrder)));
        let wrong = store.complete(&id, &[(1, p2.etag.clone())], (0, Condition::None), None);
        assert!(matches!(wrong, Err(StoreError::InvalidPart)));
        let small = store.complete(
            &id,
            &[(1, p1.etag.clone()), (2, p2.etag.clone())],
            (5, Condition::None),
            None,
        );
        assert!(matches!(small, Err(StoreError::EntityTooSmall(1))));
        // Still open after the refusals; then aborted, nothing stays.
        assert!(store.upload(&id).is_ok());
        store.abort(&id).unwrap();
        assert!(matches!(store.abort(&id), Err(StoreError::NoSuchUpload)));
        assert!(matches!(
            store.put_part(&id, 3, store.writer().unwrap()),
            Err(StoreError::NoSuchUpload)
        ));
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
            0
        );
        assert!(matches!(
            store.get("b", b"k", None),
            Err(StoreError::NoSuchKey)
        ));
    }

    #[test]
    fn open_uploads_list_in_key_then_id_order_after_their_markers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        let mut ids = Vec::new();
        for key in ["b", "a", "a", "c/d"] {
            ids.push((
                key,
                store
                    .create_upload("b", key.as_bytes(), Description::default())
                    .unwrap(),
            ));
        }
        let list = |prefix: &'static [u8], after, max| {
            let q = UploadsQuery {
                prefix,
                delimiter: None,
                after,
                max,
            };
            store.uploads("b", &q).unwrap()
        };
        let (all, more) = list(b"", None, 10);
        assert!(!more);
        let keys: Vec<&[u8]> = all.iter().map(UploadEntry::marker).collect();
        assert_eq!(keys, [&b"a"[..], b"a", b"b", b"c/d"]);
        let UploadEntry::Upload { id: first_a, .. } = &all[0] else {
            panic!("{all:?}");
        };
        let (after, _) = list(b"", Some((b"a", Some(first_a))), 10);
        assert_eq!(after.len(), 3);
        let (after_key, _) = list(b"", Some((b"a", None)), 10);
        assert_eq!(after_key.len(), 2);
        let (prefixed, _) = list(b"c/", None, 10);
        assert_eq!(prefixed.len(), 1);
        let (page, more) = list(b"", None, 1);
        assert!(more && page.len() == 1);
    }

    type Markers = Option<(Vec<u8>, Option<String>)>;

    /// An entry as the oracle compares it.
    fn shown(e: &UploadEntry) -> Vec<u8> {
        match e {
            UploadEntry::Prefix(p) => [b"P:", p.as_slice()].concat(),
            UploadEntry::Upload { key, id, .. } => [key.as_slice(), b" ", id.as_bytes()].concat(),
        }
    }

    /// What S3 lists of `model`'s uploads (sorted by key, then id) under `prefix` after the
    /// markers: a key marker alone skips the key's uploads, an upload id marker those up to it;
    /// a marker that is a common prefix skips the keys it stands for.
    fn model_listing(
        model: &[(Vec<u8>, String)],
        prefix: &[u8],
        delimiter: Option<&[u8]>,
        after: &Markers,
    ) -> Vec<Vec<u8>> {
        let mut expected: Vec<Vec<u8>> = Vec::new();
        for (key, id) in model.iter().filter(|(k, _)| k.starts_with(prefix)) {
            let past = match after {
                None => true,
                Some((m, None)) => key > m,
                Some((m, Some(upload))) => key > m || (key == m && id > upload),
            };
            let rolled =
                super::super::super::listing::rolled_up(key, prefix, delimiter.unwrap_or_default());
            let entry = match rolled {
                Some(common) if after.as_ref().is_some_and(|(m, _)| m == common) => continue,
                Some(common) => [b"P:", common].concat(),
                None => [key.as_slice(), b" ", id.as_bytes()].concat(),
            };
            if past && expected.last() != Some(&entry) {
                expected.push(entry);
            }
        }
        expected
    }

    fn listed(
        store: &Objects,
        q: (&[u8], Option<&[u8]>),
        after: &Markers,
        max: usize,
    ) -> (Vec<Vec<u8>>, Markers, bool) {
        let (prefix, delimiter) = q;
        let q = UploadsQuery {
            prefix,
            delimiter,
            after: after.as_ref().map(|(k, i)| (k.as_slice(), i.as_deref())),
            max,
        };
        let (page, more) = store.uploads("b", &q).unwrap();
        assert!(page.len() <= max);
        let last = page.last().map(|e| match e {
            UploadEntry::Prefix(p) => (p.clone(), None),
            UploadEntry::Upload { key, id, .. } => (key.clone(), Some(id.clone())),
        });
        (page.iter().map(shown).collect(), last, more)
    }

    /// The oracle for the uploads listing: over generated keys and uploads, every listing —
    /// prefix, delimiter or none, after any key marker (one that names no key too) and upload
    /// id marker — is the model's; and paging it by any page size, each page resuming after
    /// the last entry's markers as clients do, gives it again, without repeats.
    #[test]
    fn pages_concatenate_to_the_listing_the_model_gives() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let key_of = |rng: &mut rand::rngs::StdRng, shortest| -> Vec<u8> {
            let len = rng.gen_range(shortest..5);
            (0..len).map(|_| b"ab/"[rng.gen_range(0..3)]).collect()
        };
        for _round in 0..12 {
            let dir = tempfile::tempdir().unwrap();
            let store = Objects::open(dir.path()).unwrap();
            store.create_bucket("b").unwrap();
            store.create_bucket("c").unwrap();
            let mut model: Vec<(Vec<u8>, String)> = Vec::new();
            for _ in 0..rng.gen_range(0..30) {
                let key = key_of(&mut rng, 1);
                let id = store
                    .create_upload("b", &key, Description::default())
                    .unwrap();
                model.push((key, id));
            }
            // (Another bucket's uploads are never listed.)
            store
                .create_upload("c", b"a", Description::default())
                .unwrap();
            model.sort();
            let mut markers: Vec<Markers> = vec![None];
            markers.extend((0..8).map(|_| Some((key_of(&mut rng, 0), None))));
            markers.extend(
                model
                    .iter()
                    .step_by(3)
                    .map(|(k, i)| Some((k.clone(), Some(i.clone())))),
            );
            markers.extend(
                model
                    .iter()
                    .step_by(4)
                    .map(|(k, _)| Some((k.clone(), None))),
            );
            for q in [&b""[..], b"a", b"a/", b"b/"]
                .into_iter()
                .flat_map(|p| [(p, None), (p, Some(&b"/"[..]))])
            {
                for after in &markers {
                    let expected = model_listing(&model, q.0, q.1, after);
                    let (all, _, more) = listed(&store, q, after, 1000);
                    assert!(!more);
                    assert_eq!(all, expected, "{q:?} after {after:?}");
                }
                let expected = model_listing(&model, q.0, q.1, &None);
                for max in 1..=4 {
                    let (mut paged, mut after) = (Vec::new(), None);
                    for _ in 0..=expected.len() {
                        let (page, last, more) = listed(&store, q, &after, max);
                        paged.extend(page);
                        if !more {
                            break;
                        }
                        after = last;
                    }
                    assert_eq!(paged, expected, "max {max}, {q:?}");
                }
            }
        }
    }

    /// With a delimiter, keys holding it after the prefix are one common prefix each, counted
    /// against the page; a common prefix as the marker resumes after every key it stands for;
    /// each upload tells when it was initiated.
    #[test]
    fn uploads_roll_up_into_common_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        let before = now_millis();
        for key in ["a/1", "a/2", "b", "c/x/1", "c/y"] {
            store
                .create_upload("b", key.as_bytes(), Description::default())
                .unwrap();
        }
        let list = |prefix: &'static [u8], after: Option<&'static [u8]>, max| {
            let q = UploadsQuery {
                prefix,
                delimiter: Some(b"/"),
                after: after.map(|a| (a, None)),
                max,
            };
            store.uploads("b", &q).unwrap()
        };
        let shown = |page: &[UploadEntry]| -> Vec<String> {
            page.iter()
                .map(|e| match e {
                    UploadEntry::Upload { key, initiated, .. } => {
                        assert!(*initiated >= before, "{initiated}");
                        String::from_utf8_lossy(key).into_owned()
                    }
                    UploadEntry::Prefix(p) => format!("prefix {}", String::from_utf8_lossy(p)),
                })
                .collect()
        };
        let (all, more) = list(b"", None, 10);
        assert_eq!(shown(&all), ["prefix a/", "b", "prefix c/"]);
        assert!(!more);
        let (first, more) = list(b"", None, 1);
        assert_eq!((shown(&first), more), (vec!["prefix a/".to_string()], true));
        let (next, _) = list(b"", Some(b"a/"), 1);
        assert_eq!(shown(&next), ["b"]);
        let (under_c, _) = list(b"c/", None, 10);
        assert_eq!(shown(&under_c), ["prefix c/x/", "c/y"]);
    }

    /// A complete forgets completes past keeping a few at a time, by their time alone: it
    /// reads no kept one (a record it could not read stands in nobody's way), and a store
    /// whose completes were kept before they were indexed is indexed when it opens.
    #[test]
    fn completes_are_forgotten_by_time_without_reading_the_kept_ones() {
        let dir = tempfile::tempdir().unwrap();
        let old = now_millis() - 2 * COMPLETED_KEPT_MS;
        {
            let store = Objects::open(dir.path()).unwrap();
            let tx = store.db.begin_write().unwrap();
            {
                let mut completed = tx.open_table(COMPLETED).unwrap();
                for i in 0..20 {
                    let c = Completed {
                        bucket: "b".into(),
                        key: b"k".to_vec(),
                        etag: "e".into(),
                        version: None,
                        at: old + i,
                    };
                    let bytes = serde_json::to_vec(&c).unwrap();
                    completed
                        .insert(format!("stale-{i}").as_str(), bytes.as_slice())
                        .unwrap();
                }
                completed.insert("unreadable", &b"not json"[..]).unwrap();
                // (As an earlier version kept them: no index.)
                let mut order = tx.open_table(COMPLETED_ORDER).unwrap();
                order.retain(|_, _| false).unwrap();
            }
            tx.commit().unwrap();
        }
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        let kept = |store: &Objects| {
            let tx = store.db.begin_read().unwrap();
            let table = tx.open_table(COMPLETED).unwrap();
            redb::ReadableTableMetadata::len(&table).unwrap()
        };
        assert_eq!(kept(&store), 21);
        let complete_one = |key: &[u8]| {
            let id = store
                .create_upload("b", key, Description::default())
                .unwrap();
            let p = part(&store, &id, 1, b"data");
            store
                .complete(&id, &[(1, p.etag)], (1, Condition::None), None)
                .unwrap();
        };
        complete_one(b"first");
        // 16 forgotten (the unreadable one first: it is indexed as the oldest), one added.
        assert_eq!(kept(&store), 21 - FORGOTTEN_PER_COMPLETE as u64 + 1);
        complete_one(b"second");
        assert_eq!(kept(&store), 2, "only the day's completes are left");
        assert!(store.completed("stale-19").unwrap().is_none());
    }

    /// A bucket that keeps an object keeps its uploads too; an empty one goes with its uploads
    /// and their parts' bodies, in one transaction.
    #[test]
    fn a_deleted_bucket_takes_its_uploads_with_it_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        store.create_bucket("other").unwrap();
        let id = store
            .create_upload("b", b"k", Description::default())
            .unwrap();
        part(&store, &id, 1, b"part");
        let kept = store
            .create_upload("other", b"k", Description::default())
            .unwrap();
        part(&store, &kept, 1, b"kept");
        let mut body = store.writer().unwrap();
        body.write(b"object").unwrap();
        store
            .commit("b", b"o", body, Description::default(), Condition::None)
            .unwrap();
        assert!(matches!(
            store.delete_bucket("b"),
            Err(StoreError::BucketNotEmpty)
        ));
        assert!(
            store.upload(&id).is_ok(),
            "an upload aborted for a bucket that stays"
        );
        store.delete("b", b"o", None, false).unwrap();
        store.delete_bucket("b").unwrap();
        assert!(matches!(store.upload(&id), Err(StoreError::NoSuchUpload)));
        assert!(store.upload(&kept).is_ok());
        let bodies = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert_eq!(bodies, 1, "only the other bucket's part is left");
    }

    /// One turn of an upload at a time; other uploads' turns are their own; the table keeps
    /// no upload once its turns are over, a wait given up included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_s_turns_exclude_each_other_and_are_forgotten() {
        let turns = Arc::new(Turns::default());
        let inside = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let overlaps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (turns, inside, overlaps) = (turns.clone(), inside.clone(), overlaps.clone());
                tokio::spawn(async move {
                    for _ in 0..50 {
                        let turn = turns.take("one").await;
                        if inside.swap(true, std::sync::atomic::Ordering::SeqCst) {
                            overlaps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        tokio::task::yield_now().await;
                        inside.store(false, std::sync::atomic::Ordering::SeqCst);
                        drop(turn);
                        drop(turns.take("another").await);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(overlaps.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(turns.len(), 0);
        // A wait given up while another holds the turn leaves nothing behind either.
        let held = turns.take("busy").await;
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(20), turns.take("busy")).await;
        assert!(waiting.is_err(), "the turn was held");
        drop(held);
        assert_eq!(turns.len(), 0);
    }
}

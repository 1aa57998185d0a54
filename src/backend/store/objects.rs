//! Objects on one machine: bodies as files named by random ids (never by their keys), metadata
//! and listing order in a redb database. A write becomes visible whole or not at all: the body
//! is written to `tmp/`, synced and renamed into `blobs/`, and only then does one database
//! transaction point the key at it (and the replaced body is removed after the commit). What a
//! crash leaves behind — bodies in `tmp/`, bodies no key points at — is removed when the store
//! opens.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use md5::Digest as _;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::acl::Grant;
use super::listing::{Entry, Page, Query};
use super::lock::{BucketLock, Retention};

mod multipart;
mod versions;

pub use multipart::{JoinCheck, UploadEntry, UploadsQuery};
pub use versions::{Deleted, Listed, Marker, Version, Versioning};

/// Bucket name → bucket record (JSON).
const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
/// `bucket NUL key` → object record (JSON); keys hold no NUL, so a bucket's keys are one range
/// in byte order.
const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
/// Bucket name → its CORS rules (JSON), apart from its record: a configuration may be 2.5 MB
/// (HCP's limit), and the record is read by every write in the bucket and by ListBuckets.
const CORS: TableDefinition<&str, &[u8]> = TableDefinition::new("cors");

/// What the decoded CORS rules kept for preflights may weigh together (bytes, roughly).
const CORS_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// `bucket NUL key NUL order` → every version and delete marker (JSON), newest first within a
/// key (see `versions`).
const VERSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("versions");
/// Upload id → open multipart upload (JSON).
const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
/// `bucket NUL key NUL upload id` → nothing: the open uploads in ListMultipartUploads' order.
const UPLOAD_ORDER: TableDefinition<&[u8], ()> = TableDefinition::new("upload_order");
/// (upload id, part number) → part record (JSON).
const PARTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("parts");
/// Upload id → what its complete made (JSON), for a day: a retried complete is answered as
/// the first was, as S3 does.
const COMPLETED: TableDefinition<&str, &[u8]> = TableDefinition::new("completed");
/// `(completed at, upload id)`: the completes in the order they were made, so that those past
/// keeping are found without reading the others.
const COMPLETED_ORDER: TableDefinition<(u64, &str), ()> = TableDefinition::new("completed-order");

/// The metadata database's page cache.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// The longest key HCP allows (manual, "Object names").
pub const MAX_KEY_BYTES: usize = 4095;

#[derive(Debug)]
pub enum StoreError {
    NoSuchBucket,
    NoSuchKey,
    BucketNotEmpty,
    /// `If-None-Match: *` and the key exists.
    PreconditionFailed,
    /// Empty, over 4,095 bytes, or holding NUL.
    InvalidKey,
    NoSuchUpload,
    /// A version id this key does not have.
    NoSuchVersion,
    /// The version asked for is a delete marker (S3's 405 MethodNotAllowed); when it was made
    /// (milliseconds since the epoch: its `Last-Modified`, as S3 names it).
    DeleteMarker(u64),
    /// Object lock keeps the version (a retention or legal hold): S3's 403 AccessDenied.
    Locked,
    /// Object lock settings in a bucket created without it (S3's 400 InvalidRequest).
    NoObjectLock,
    /// Versioning cannot be suspended in a bucket with object lock (409 InvalidBucketState).
    LockedVersioning,
    /// A listed part was not uploaded, or with another ETag.
    InvalidPart,
    InvalidPartOrder,
    /// A part other than the last is smaller than the minimum (its number).
    EntityTooSmall(u32),
    /// The parts joined are not the object a complete's checksums name.
    BadDigest,
    Io(io::Error),
    /// The metadata database failed; `broken`: by an I/O error, after which redb refuses
    /// every transaction until the database is opened again (a restart); `at_commit`: in the
    /// commit itself, which may have reached the disk all the same.
    Database {
        broken: bool,
        at_commit: bool,
        message: String,
    },
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

fn db_error<E: std::fmt::Display + 'static>(e: E) -> StoreError {
    StoreError::Database {
        broken: breaks_the_database(&e),
        at_commit: false,
        message: format!("metadata database: {e}"),
    }
}

/// The most bodies named by no object that a start removes: more than a stopped process leaves
/// of its commits under way, so many that the database may be older than its bodies (they are
/// moved aside instead).
const UNNAMED_BODIES_MAX: usize = 4096;

/// The mark of a move of unnamed bodies under way, in the directory they move to.
const MOVING: &str = ".moving";

/// [`db_error`] of a commit that makes a body an object's or a part's: one failed by I/O may
/// have reached the disk, and its body is kept for the key it may name.
fn commit_error(e: redb::CommitError) -> StoreError {
    match db_error(e) {
        StoreError::Database {
            broken, message, ..
        } => StoreError::Database {
            broken,
            at_commit: broken,
            message,
        },
        other => other,
    }
}

impl StoreError {
    /// Whether the body of a write that failed so may be named by its key (a commit failed by
    /// I/O may have reached the disk): kept, not removed (unnamed, the next start removes it).
    fn may_have_committed(&self) -> bool {
        matches!(
            self,
            StoreError::Database {
                at_commit: true,
                ..
            }
        )
    }
}

/// Whether a metadata database error is an I/O failure, after which redb refuses every
/// transaction (`PreviousIo`) until the database is opened again.
fn breaks_the_database(e: &dyn std::any::Any) -> bool {
    use redb::StorageError;
    let storage = |s: &StorageError| matches!(s, StorageError::Io(_) | StorageError::PreviousIo);
    if let Some(s) = e.downcast_ref::<StorageError>() {
        return storage(s);
    }
    let wrapped = e
        .downcast_ref::<redb::TransactionError>()
        .and_then(|t| match t {
            redb::TransactionError::Storage(s) => Some(s),
            _ => None,
        })
        .or_else(|| match e.downcast_ref::<redb::CommitError>() {
            Some(redb::CommitError::Storage(s)) => Some(s),
            _ => None,
        })
        .or_else(|| match e.downcast_ref::<redb::TableError>() {
            Some(redb::TableError::Storage(s)) => Some(s),
            _ => None,
        })
        .or_else(|| match e.downcast_ref::<redb::DatabaseError>() {
            Some(redb::DatabaseError::Storage(s)) => Some(s),
            _ => None,
        });
    wrapped.is_some_and(storage)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BucketRecord {
    /// Seconds since the epoch.
    pub created: u64,
    /// `None`: never versioned.
    #[serde(default)]
    pub versioning: Option<Versioning>,
    /// `None`: never set (the owner's full control).
    #[serde(default)]
    pub acl: Option<Vec<Grant>>,
    /// Where a store written before the `cors` table kept the rules: moved there when it is
    /// opened, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Vec<super::cors::Rule>>,
    /// `Some`: created with object lock (versioning enabled for good).
    #[serde(default)]
    pub lock: Option<BucketLock>,
}

/// What the store keeps of an object besides its body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectRecord {
    /// The body's file in `blobs/`.
    pub blob: String,
    pub size: u64,
    /// Without quotes: the body's MD5 in hex, or S3's `md5-of-part-md5s-N` for a multipart one.
    pub etag: String,
    /// Milliseconds since the epoch.
    pub modified: u64,
    /// `application/octet-stream` unless the writer said otherwise.
    pub content_type: String,
    /// Content-Encoding, Content-Disposition, Content-Language, Cache-Control, Expires, and
    /// checksums, by lower-case header name.
    pub headers: BTreeMap<String, String>,
    /// User metadata (`x-amz-meta-*`), by name without the prefix.
    pub metadata: BTreeMap<String, String>,
    /// `None`: the `null` version (written while the bucket was never versioned, or suspended).
    #[serde(default)]
    pub version: Option<String>,
    /// `None`: never set (the owner's full control).
    #[serde(default)]
    pub acl: Option<Vec<Grant>>,
    #[serde(default)]
    pub retention: Option<Retention>,
    #[serde(default)]
    pub legal_hold: bool,
}

impl ObjectRecord {
    pub fn version_id(&self) -> &str {
        self.version.as_deref().unwrap_or("null")
    }
}

/// An open multipart upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadRecord {
    pub bucket: String,
    pub key: Vec<u8>,
    /// Milliseconds since the epoch.
    pub initiated: u64,
    pub description: Description,
}

/// One uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartRecord {
    pub blob: String,
    pub size: u64,
    /// The part's MD5 in hex.
    pub etag: String,
    pub modified: u64,
}

/// What a writer says about an object besides its body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Description {
    pub content_type: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub acl: Option<Vec<Grant>>,
    /// Object lock: only in a bucket created with it.
    #[serde(default)]
    pub retention: Option<Retention>,
    #[serde(default)]
    pub legal_hold: bool,
    /// A multipart upload's `x-amz-checksum-type` (`FULL_OBJECT`, `COMPOSITE`): how its
    /// complete's whole-object checksum is computed where the complete does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
}

/// A condition on the key a write replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    None,
    /// `If-None-Match: *`: only if the key does not exist.
    Absent,
    /// `If-Match`: only if the key exists with this ETag (`*`: with any).
    Matches(String),
    /// `If-None-Match` with an ETag: only if the key does not have it.
    DiffersFrom(String),
}

impl Condition {
    /// Whether a write under this condition may replace `old` (`None`: no object).
    fn allows(&self, old: Option<&ObjectRecord>) -> bool {
        match (self, old) {
            (Condition::None, _) => true,
            (Condition::Absent, old) => old.is_none(),
            (Condition::Matches(e), Some(old)) => e == "*" || *e == old.etag,
            (Condition::Matches(_), None) => false,
            (Condition::DiffersFrom(e), Some(old)) => *e != old.etag,
            (Condition::DiffersFrom(_), None) => true,
        }
    }
}

pub struct Objects {
    root: PathBuf,
    db: Database,
    /// Set once the metadata database failed an I/O: redb refuses every transaction after
    /// one, so the store serves nothing until it is opened again — `/healthz` says so, and the
    /// process is restarted (`server::admin`).
    broken: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// One complete, abort or part commit of an upload at a time (`multipart::Turns`): taken
    /// by the S3 layer before it calls `put_part`, `complete` or `abort`.
    pub(in crate::backend::store) upload_turns: std::sync::Arc<multipart::Turns>,
    /// Buckets' CORS rules as preflights read them: decoded once, shared.
    cors_read: CorsRead,
}

/// Decoded CORS rules by bucket, each with the `generation` it was read at: a change of any
/// bucket's rules (or a bucket deleted) starts a new one, and rules of an older one are read
/// again — a reading that raced a change is never taken for the rules after it.
struct CorsRead {
    rules: moka::sync::Cache<String, (u64, Arc<Vec<super::cors::Rule>>)>,
    generation: std::sync::atomic::AtomicU64,
}

impl Default for CorsRead {
    fn default() -> Self {
        CorsRead {
            rules: moka::sync::Cache::builder()
                .max_capacity(CORS_CACHE_BYTES)
                .weigher(|_, (_, rules): &(u64, Arc<Vec<super::cors::Rule>>)| {
                    let size: usize = rules.iter().map(super::cors::Rule::size).sum();
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                .build(),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl CorsRead {
    /// After a commit that changed rules: readings made before it are not taken.
    fn changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A body being written to `tmp/`, with its MD5; dropped unfinished, it is removed.
pub struct BlobWriter {
    path: PathBuf,
    id: String,
    file: Option<File>,
    md5: md5::Md5,
    size: u64,
    /// Moved into `blobs/`: nothing to remove.
    sealed: bool,
}

impl BlobWriter {
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("open until finished")
            .write_all(bytes)?;
        self.md5.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }
}

impl BlobWriter {
    /// The open file, to write with elsewhere (an async writer); [`BlobWriter::written`] gives
    /// it back with what was written to it. Dropped without it, the writer still removes its
    /// file.
    pub fn take_file(&mut self) -> File {
        self.file.take().expect("open until finished")
    }

    /// Gives back the file `bytes` were written to, counted and hashed.
    pub fn written(&mut self, file: File) {
        self.file = Some(file);
    }

    /// Counts and hashes bytes written through the taken file.
    pub fn count(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// Writes everything `source` holds.
    pub fn copy_from(&mut self, source: &mut impl io::Read) -> io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = source.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.write(&buf[..n])?;
        }
    }
}

impl Drop for BlobWriter {
    /// Unfinished (not sealed into `blobs/`), its file goes, whether or not it holds the file.
    fn drop(&mut self) {
        if !self.sealed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// NoSuchBucket unless the bucket table (of any transaction) holds `bucket`.
/// Moves CORS rules a store written before the `cors` table kept in bucket records there.
fn move_cors_rules(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut buckets = tx.open_table(BUCKETS).map_err(db_error)?;
    let mut cors = tx.open_table(CORS).map_err(db_error)?;
    let mut moved = Vec::new();
    for item in buckets.iter().map_err(db_error)? {
        let (name, value) = item.map_err(db_error)?;
        let mut record: BucketRecord = serde_json::from_slice(value.value()).map_err(db_error)?;
        if let Some(rules) = record.cors.take() {
            moved.push((name.value().to_string(), record, rules));
        }
    }
    for (name, record, rules) in moved {
        let rules = serde_json::to_vec(&rules).map_err(db_error)?;
        cors.insert(name.as_str(), rules.as_slice())
            .map_err(db_error)?;
        let record = serde_json::to_vec(&record).map_err(db_error)?;
        buckets
            .insert(name.as_str(), record.as_slice())
            .map_err(db_error)?;
    }
    Ok(())
}

fn require_bucket(
    buckets: &impl ReadableTable<&'static str, &'static [u8]>,
    bucket: &str,
) -> Result<(), StoreError> {
    match buckets.get(bucket).map_err(db_error)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NoSuchBucket),
    }
}

fn object_key(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

pub(super) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn random_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The names of bodies in use: `random_id`s (32 hex digits) as numbers, any other name (none
/// the store makes) as it is.
#[derive(Default)]
struct BodyIds(Vec<u128>, HashSet<String>);

impl BodyIds {
    fn id(name: &str) -> Option<u128> {
        let canonical =
            name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        canonical
            .then(|| u128::from_str_radix(name, 16).ok())
            .flatten()
    }

    fn insert(&mut self, name: String) {
        match Self::id(&name) {
            Some(id) => self.0.push(id),
            None => {
                self.1.insert(name);
            }
        }
    }

    fn sorted(mut self) -> Self {
        self.0.sort_unstable();
        self.0.dedup();
        self
    }

    fn contains(&self, name: &str) -> bool {
        match Self::id(name) {
            Some(id) => self.0.binary_search(&id).is_ok(),
            None => self.1.contains(name),
        }
    }
}

impl Objects {
    /// Opens (or creates) the store under `root` and removes what an interrupted write left.
    ///
    /// A store without its database but with bodies is refused rather than emptied: the
    /// database was lost or put back from an older copy, and cleaning would delete the bodies.
    /// An empty database file is none (redb would start a new database in it).
    pub fn open(root: &Path) -> Result<Objects, StoreError> {
        let db_path = root.join("metadata.redb");
        let blobs = root.join("blobs");
        let has_bodies = std::fs::read_dir(&blobs).is_ok_and(|mut d| d.next().is_some());
        let no_database = std::fs::metadata(&db_path).map_or(true, |m| m.len() == 0);
        if has_bodies && no_database {
            return Err(StoreError::Io(io::Error::other(format!(
                "{} holds bodies but no metadata.redb: refusing to start (and to clean)",
                root.display()
            ))));
        }
        // A directory holding anything else is not a store (an s3s-fs bucket named `store`, say):
        // it is left alone rather than written into.
        let foreign = std::fs::read_dir(root).ok().and_then(|entries| {
            entries.filter_map(Result::ok).find(|e| {
                let name = e.file_name();
                // A file system's own `lost+found` and hidden files are nobody's data.
                let name = name.to_string_lossy();
                !matches!(&*name, "tmp" | "blobs" | "metadata.redb" | "lost+found")
                    && !name.starts_with('.')
            })
        });
        if let Some(entry) = foreign.filter(|_| !db_path.exists()) {
            return Err(StoreError::Io(io::Error::other(format!(
                "{} holds {:?}, which is not the store's: refusing to start (is it s3s-fs data? \
                 engine = \"s3s-fs\" serves that)",
                root.display(),
                entry.file_name()
            ))));
        }
        for dir in ["tmp", "blobs"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        let existed = db_path.exists();
        // A bounded page cache (redb would grow it to 1 GiB): the store runs in a sidecar.
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&db_path)
            .map_err(db_error)?;
        // What a stopped process or a failed write left (`tmp/`, bodies no key names) goes
        // before anything is written: on a full disk the opening's own commit would fail —
        // a gateway that never starts — with the room it needs held by what only the opening
        // removes. (A store of an older form, whose tables are not all there, is swept after.)
        let swept = existed && collect_garbage(root, &db).is_ok();
        let tx = db.begin_write().map_err(db_error)?;
        tx.open_table(BUCKETS).map_err(db_error)?;
        tx.open_table(OBJECTS).map_err(db_error)?;
        move_cors_rules(&tx)?;
        tx.open_table(versions::COUNTERS).map_err(db_error)?;
        tx.open_table(VERSIONS).map_err(db_error)?;
        versions::index_nulls(&tx)?;
        versions::reconcile(&tx, &root.join("blobs"))?;
        tx.open_table(UPLOADS).map_err(db_error)?;
        tx.open_table(UPLOAD_ORDER).map_err(db_error)?;
        tx.open_table(PARTS).map_err(db_error)?;
        tx.open_table(COMPLETED).map_err(db_error)?;
        multipart::index_completed(&tx)?;
        tx.commit().map_err(db_error)?;
        let store = Objects {
            root: root.to_path_buf(),
            db,
            broken: std::sync::Arc::default(),
            upload_turns: std::sync::Arc::default(),
            cors_read: CorsRead::default(),
        };
        if !swept {
            collect_garbage(root, &store.db)?;
        }
        Ok(store)
    }

    /// The flag set once the metadata database failed an I/O (`/healthz` reads it).
    pub fn broken(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.broken.clone()
    }

    /// Notes what `result` says of the metadata database: an I/O failure breaks it for good
    /// (redb's `PreviousIo`), and is said once.
    pub fn note<T>(&self, result: &Result<T, StoreError>) {
        if let Err(StoreError::Database {
            broken: true,
            message,
            ..
        }) = result
        {
            use std::sync::atomic::Ordering;
            if !self.broken.swap(true, Ordering::AcqRel) {
                tracing::error!(
                    "the embedded store's {message}: it serves nothing more until the gateway \
                     is restarted (/healthz answers 503)"
                );
            }
        }
    }

    pub fn create_bucket(&self, name: &str) -> Result<bool, StoreError> {
        self.create_bucket_with(name, false, None)
    }

    /// Creates a bucket, with object lock (and so versioning) when `locked`, with its ACL
    /// (`None`: the owner's full control) in the same transaction; false if it exists.
    pub fn create_bucket_with(
        &self,
        name: &str,
        locked: bool,
        acl: Option<Vec<Grant>>,
    ) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(db_error)?;
        let created = {
            let mut table = tx.open_table(BUCKETS).map_err(db_error)?;
            if table.get(name).map_err(db_error)?.is_some() {
                false
            } else {
                let record = BucketRecord {
                    created: now_millis() / 1000,
                    versioning: locked.then_some(Versioning::Enabled),
                    acl,
                    cors: None,
                    lock: locked.then(BucketLock::default),
                };
                let bytes = serde_json::to_vec(&record).map_err(db_error)?;
                table.insert(name, bytes.as_slice()).map_err(db_error)?;
                true
            }
        };
        tx.commit().map_err(db_error)?;
        Ok(created)
    }

    /// Sets the bucket's ACL.
    pub fn set_bucket_acl(&self, name: &str, grants: Vec<Grant>) -> Result<(), StoreError> {
        self.change_bucket(name, |record| {
            record.acl = Some(grants);
            Ok(())
        })
    }

    /// Sets (or with `None` removes) the bucket's CORS configuration.
    pub fn set_bucket_cors(
        &self,
        name: &str,
        rules: Option<Vec<super::cors::Rule>>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_error)?;
        {
            require_bucket(&tx.open_table(BUCKETS).map_err(db_error)?, name)?;
            let mut table = tx.open_table(CORS).map_err(db_error)?;
            match rules {
                Some(rules) => {
                    let bytes = serde_json::to_vec(&rules).map_err(db_error)?;
                    table.insert(name, bytes.as_slice()).map_err(db_error)?;
                }
                None => {
                    table.remove(name).map_err(db_error)?;
                }
            }
        }
        tx.commit().map_err(db_error)?;
        self.cors_read.changed();
        Ok(())
    }

    /// The bucket's CORS rules (`None`: it has none); shared with other readings of them.
    pub fn bucket_cors(
        &self,
        name: &str,
    ) -> Result<Option<Arc<Vec<super::cors::Rule>>>, StoreError> {
        use std::sync::atomic::Ordering;
        let generation = self.cors_read.generation.load(Ordering::Acquire);
        if let Some((read_at, rules)) = self.cors_read.rules.get(name) {
            if read_at == generation {
                return Ok(Some(rules));
            }
        }
        let tx = self.db.begin_read().map_err(db_error)?;
        require_bucket(&tx.open_table(BUCKETS).map_err(db_error)?, name)?;
        let table = tx.open_table(CORS).map_err(db_error)?;
        let Some(found) = table.get(name).map_err(db_error)? else {
            return Ok(None);
        };
        let rules: Arc<Vec<super::cors::Rule>> =
            Arc::new(serde_json::from_slice(found.value()).map_err(db_error)?);
        self.cors_read
            .rules
            .insert(name.to_string(), (generation, rules.clone()));
        Ok(Some(rules))
    }

    /// Sets a bucket's default retention (only with object lock).
    pub fn set_bucket_lock(&self, name: &str, lock: BucketLock) -> Result<(), StoreError> {
        self.change_bucket(name, |record| match record.lock {
            Some(_) => {
                record.lock = Some(lock);
                Ok(())
            }
            None => Err(StoreError::NoObjectLock),
        })
    }

    /// Changes the bucket's record in one transaction.
    fn change_bucket(
        &self,
        name: &str,
        change: impl FnOnce(&mut BucketRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_error)?;
        {
            let mut buckets = tx.open_table(BUCKETS).map_err(db_error)?;
            let mut record = versions::bucket_record(&buckets, name)?;
            change(&mut record)?;
            let bytes = serde_json::to_vec(&record).map_err(db_error)?;
            buckets.insert(name, bytes.as_slice()).map_err(db_error)?;
        }
        tx.commit().map_err(db_error)
    }

    pub fn bucket(&self, name: &str) -> Result<Option<BucketRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        let table = tx.open_table(BUCKETS).map_err(db_error)?;
        let found = table.get(name).map_err(db_error)?;
        found
            .map(|v| serde_json::from_slice(v.value()).map_err(db_error))
            .transpose()
    }

    pub fn buckets(&self) -> Result<Vec<(String, BucketRecord)>, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        let table = tx.open_table(BUCKETS).map_err(db_error)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(db_error)? {
            let (k, v) = item.map_err(db_error)?;
            let record = serde_json::from_slice(v.value()).map_err(db_error)?;
            out.push((k.value().to_string(), record));
        }
        Ok(out)
    }

    /// Removes an empty bucket.
    /// Deletes an empty bucket — objects keep a bucket, unfinished uploads do not (as S3 and
    /// RGW): they are aborted with it, in the transaction that finds it empty and removes it,
    /// so none is aborted for a bucket that stays and none outlives one that goes.
    pub fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_error)?;
        let gone = {
            let mut buckets = tx.open_table(BUCKETS).map_err(db_error)?;
            require_bucket(&buckets, name)?;
            let start = object_key(name, b"");
            let objects = tx.open_table(OBJECTS).map_err(db_error)?;
            let has_object = match objects.range(start.as_slice()..).map_err(db_error)?.next() {
                Some(item) => item.map_err(db_error)?.0.value().starts_with(&start),
                None => false,
            };
            if has_object
                || Objects::has_versions(&tx.open_table(VERSIONS).map_err(db_error)?, name)?
            {
                return Err(StoreError::BucketNotEmpty);
            }
            buckets.remove(name).map_err(db_error)?;
            tx.open_table(CORS)
                .map_err(db_error)?
                .remove(name)
                .map_err(db_error)?;
            // (Its count of versions goes with it: a bucket made again under its name, maybe
            // by another owner, counts from the start, not on from the writes before.)
            versions::forget_count(&tx, name)?;
            multipart::drop_bucket_uploads(&tx, name)?
        };
        tx.commit().map_err(db_error)?;
        self.cors_read.changed();
        for blob in gone {
            let _ = std::fs::remove_file(self.root.join("blobs").join(blob));
        }
        Ok(())
    }

    /// A body to write; [`Objects::commit`] makes it an object.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        // (A broken database keeps nothing: no body is taken for it.)
        if self.broken.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::Database {
                broken: true,
                at_commit: false,
                message: "metadata database: broken by an earlier I/O failure".into(),
            });
        }
        let id = random_id();
        let path = self.root.join("tmp").join(&id);
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok(BlobWriter {
            path,
            id,
            file: Some(file),
            md5: md5::Md5::new(),
            size: 0,
            sealed: false,
        })
    }

    /// Makes the written body the object `bucket`/`key`, atomically: synced, renamed into
    /// `blobs/`, then the key pointed at it in one transaction (checking the bucket and the
    /// condition inside it). The body it replaces is removed after the commit.
    pub fn commit(
        &self,
        bucket: &str,
        key: &[u8],
        body: BlobWriter,
        description: Description,
        condition: Condition,
    ) -> Result<ObjectRecord, StoreError> {
        check_key(key)?;
        let etag = hex::encode(body.md5.clone().finalize());
        self.commit_as(bucket, key, body, etag, description, condition)
    }

    /// [`Objects::commit`] with the ETag given (a multipart object's is not its body's MD5).
    fn commit_as(
        &self,
        bucket: &str,
        key: &[u8],
        body: BlobWriter,
        etag: String,
        description: Description,
        condition: Condition,
    ) -> Result<ObjectRecord, StoreError> {
        let (id, size, blob_path) = self.seal(body)?;
        let mut record = ObjectRecord {
            blob: id,
            size,
            etag,
            modified: now_millis(),
            content_type: description
                .content_type
                .unwrap_or_else(|| "application/octet-stream".into()),
            headers: description.headers,
            metadata: description.metadata,
            version: None,
            acl: description.acl,
            retention: description.retention,
            legal_hold: description.legal_hold,
        };
        match self.point(bucket, key, &mut record, &condition) {
            Ok(replaced) => {
                for old in replaced {
                    let _ = std::fs::remove_file(self.root.join("blobs").join(old));
                }
                Ok(record)
            }
            Err(e) => {
                // (A commit that failed on I/O may have reached the disk all the same: its body
                // stays, for the key it may name; unnamed, the next start removes it.)
                if !e.may_have_committed() {
                    let _ = std::fs::remove_file(&blob_path);
                }
                Err(e)
            }
        }
    }

    /// Syncs a written body and moves it into `blobs/`: its id, size and path.
    fn seal(&self, mut body: BlobWriter) -> Result<(String, u64, PathBuf), StoreError> {
        let file = body.file.take().expect("open until finished");
        file.sync_all()?;
        drop(file);
        let blobs = self.root.join("blobs");
        let blob_path = blobs.join(&body.id);
        std::fs::rename(&body.path, &blob_path)?;
        body.sealed = true;
        // The rename is durable before any record points at the body: a power loss after the
        // commit cannot leave a key pointing at a body still in tmp/ (removed on open).
        if let Err(e) = File::open(&blobs).and_then(|d| d.sync_all()) {
            let _ = std::fs::remove_file(&blob_path);
            return Err(e.into());
        }
        Ok((body.id.clone(), body.size, blob_path))
    }

    /// Makes `record` the key's newest version in one transaction (setting its version id);
    /// the bodies no longer pointed at.
    fn point(
        &self,
        bucket: &str,
        key: &[u8],
        record: &mut ObjectRecord,
        condition: &Condition,
    ) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_write().map_err(db_error)?;
        let gone = versions::place(&tx, bucket, key, record, condition)?;
        tx.commit().map_err(commit_error)?;
        Ok(gone)
    }

    /// The object's record and its body, opened: a body replaced or deleted meanwhile is read
    /// again under the key's new record (or NoSuchKey), never answered 500.
    pub fn open_object(
        &self,
        bucket: &str,
        key: &[u8],
        version: Option<&str>,
    ) -> Result<(ObjectRecord, File), StoreError> {
        for _ in 0..8 {
            let (record, path) = self.get(bucket, key, version)?;
            match File::open(&path) {
                Ok(file) => return Ok((record, file)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Io(io::Error::other(
            "the object changed while it was opened",
        )))
    }

    /// The object's record (its current version, or version `version`) and the file holding its
    /// body.
    pub fn get(
        &self,
        bucket: &str,
        key: &[u8],
        version: Option<&str>,
    ) -> Result<(ObjectRecord, PathBuf), StoreError> {
        check_key(key)?;
        if let Some(id) = version {
            let record = self.version(bucket, key, id)?;
            let path = self.root.join("blobs").join(&record.blob);
            return Ok((record, path));
        }
        let tx = self.db.begin_read().map_err(db_error)?;
        require_bucket(&tx.open_table(BUCKETS).map_err(db_error)?, bucket)?;
        let objects = tx.open_table(OBJECTS).map_err(db_error)?;
        let found = objects
            .get(object_key(bucket, key).as_slice())
            .map_err(db_error)?
            .ok_or(StoreError::NoSuchKey)?;
        let record: ObjectRecord = serde_json::from_slice(found.value()).map_err(db_error)?;
        let path = self.root.join("blobs").join(&record.blob);
        Ok((record, path))
    }

    /// One page of the bucket's keys by S3's listing rules, from one consistent snapshot.
    pub fn list(&self, bucket: &str, query: &Query<'_>) -> Result<Page<ObjectRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        require_bucket(&tx.open_table(BUCKETS).map_err(db_error)?, bucket)?;
        let objects = tx.open_table(OBJECTS).map_err(db_error)?;
        let bucket_start = object_key(bucket, b"");
        let error = std::cell::RefCell::new(None);
        // Records are decoded only for the keys the page shows, and the keys a delimiter rolls
        // up are not read at all: the listing seeks past them.
        let open = |from: &[u8]| {
            let range = objects
                .range(object_key(bucket, from).as_slice()..)
                .map_err(|e| *error.borrow_mut() = Some(db_error(e)))
                .ok();
            range.into_iter().flatten().map_while(|item| match item {
                Ok((k, v)) => {
                    let k = k.value();
                    k.starts_with(&bucket_start)
                        .then(|| (k[bucket_start.len()..].to_vec(), v))
                }
                Err(e) => {
                    *error.borrow_mut() = Some(db_error(e));
                    None
                }
            })
        };
        let page = Page::of_seeking(query, open);
        if let Some(e) = error.into_inner() {
            return Err(e);
        }
        let entries = page
            .entries
            .into_iter()
            .map(|entry| match entry {
                Entry::Key(k, v) => serde_json::from_slice::<ObjectRecord>(v.value())
                    .map(|record| Entry::Key(k, record))
                    .map_err(db_error),
                Entry::Prefix(p) => Ok(Entry::Prefix(p)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Page {
            entries,
            truncated: page.truncated,
        })
    }
}

/// Keys HCP allows: 1 to 4,095 bytes, any byte but NUL (the key is never a file name here, so
/// `..`, leading slashes and trailing-slash folders are ordinary keys). Checked on every write,
/// read, change and delete of a key, so that the long-key placeholder (one NUL, `super::wire`)
/// of a handler that forgot to read the key's header is refused rather than looked up.
pub fn check_key(key: &[u8]) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.contains(&0) {
        return Err(StoreError::InvalidKey);
    }
    Ok(())
}

/// Removes every body in `tmp/` and every body in `blobs/` that no key points at. (The
/// bodies in use are held as 16-byte ids, sorted: 160 MB for ten million versions.)
fn collect_garbage(root: &Path, db: &redb::Database) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(root.join("tmp"))? {
        std::fs::remove_file(entry?.path())?;
    }
    let mut used = BodyIds::default();
    let tx = db.begin_read().map_err(db_error)?;
    // Every body a version or a current object points at (they agree once the store is open,
    // but a body is never removed on the word of one table alone).
    let current = tx.open_table(OBJECTS).map_err(db_error)?;
    for item in current.iter().map_err(db_error)? {
        let (_, value) = item.map_err(db_error)?;
        let record: ObjectRecord = serde_json::from_slice(value.value()).map_err(db_error)?;
        used.insert(record.blob);
    }
    let table = tx.open_table(VERSIONS).map_err(db_error)?;
    for item in table.iter().map_err(db_error)? {
        let (_, value) = item.map_err(db_error)?;
        if let Version::Object(record) = serde_json::from_slice(value.value()).map_err(db_error)? {
            used.insert(record.blob);
        }
    }
    let parts = tx.open_table(PARTS).map_err(db_error)?;
    for item in parts.iter().map_err(db_error)? {
        let (_, value) = item.map_err(db_error)?;
        let record: PartRecord = serde_json::from_slice(value.value()).map_err(db_error)?;
        used.insert(record.blob);
    }
    let used = used.sorted();
    let mut unnamed = Vec::new();
    for entry in std::fs::read_dir(root.join("blobs"))? {
        let entry = entry?;
        if !used.contains(entry.file_name().to_string_lossy().as_ref()) {
            unnamed.push(entry.path());
        }
    }
    // A stopped process leaves unnamed the bodies it was committing or removing; many
    // may say the database is older than its bodies — put back from a copy — and removing
    // them would lose every object written since: they are moved aside, not removed, and
    // the operator told (a stop in the middle of removing a large upload's parts is the
    // other cause: then they may go).
    // (A move cut short — its directory still marked — is finished first, whatever is left:
    // what is left may be fewer than the limit, and must not be removed.)
    let unfinished = unfinished_move(root)?;
    if unnamed.len() > UNNAMED_BODIES_MAX || unfinished.is_some() {
        let aside = match unfinished {
            Some(aside) => aside,
            None => {
                let secs = now_millis() / 1000;
                let aside = root.join("unnamed").join(secs.to_string());
                std::fs::create_dir_all(&aside)?;
                std::fs::write(aside.join(MOVING), b"")?;
                aside
            }
        };
        for path in &unnamed {
            std::fs::rename(path, aside.join(path.file_name().unwrap_or_default()))?;
        }
        std::fs::remove_file(aside.join(MOVING))?;
        tracing::error!(
            bodies = unnamed.len(),
            moved_to = %aside.display(),
            "bodies named by no object were moved aside, not removed: if the metadata \
             database was put back from a copy, they are the objects written since (put \
             back the database that goes with them); if the gateway stopped while removing \
             a large upload's parts, remove the directory"
        );
        return Ok(());
    }
    for path in unnamed {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

/// The directory of a move of unnamed bodies that a stop cut short, if any.
fn unfinished_move(root: &Path) -> Result<Option<PathBuf>, StoreError> {
    let unnamed = root.join("unnamed");
    if !unnamed.exists() {
        return Ok(None);
    }
    for entry in std::fs::read_dir(unnamed)? {
        let dir = entry?.path();
        if dir.join(MOVING).exists() {
            return Ok(Some(dir));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::store::listing::Entry;

    /// A bucket's CORS rules live apart from its record (which every write in the bucket and
    /// ListBuckets read): 20,000 rules — HCP takes any number in 2.5 MB — leave the record
    /// small; preflights share one reading, which gives the rules of the latest change (a
    /// bucket deleted and made again has none); a store that kept rules in records moves them
    /// when it is opened.
    #[test]
    fn cors_rules_are_kept_apart_from_the_bucket_record() {
        use crate::backend::store::cors::Rule;
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        let rule = |origin: String| Rule {
            id: None,
            allowed_origins: vec![origin],
            allowed_methods: vec!["GET".into()],
            allowed_headers: vec![],
            expose_headers: vec![],
            max_age_seconds: None,
        };
        let many: Vec<Rule> = (0..20_000)
            .map(|i| rule(format!("https://app{i}.example")))
            .collect();
        let record_bytes = |store: &Objects| {
            let tx = store.db.begin_read().unwrap();
            let buckets = tx.open_table(BUCKETS).unwrap();
            let len = buckets.get("b").unwrap().unwrap().value().len();
            len
        };
        store.set_bucket_cors("b", Some(many.clone())).unwrap();
        assert!(record_bytes(&store) < 256, "{}", record_bytes(&store));
        let first = store.bucket_cors("b").unwrap().unwrap();
        assert_eq!(first.len(), 20_000);
        let again = store.bucket_cors("b").unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "read once, shared");
        store
            .set_bucket_cors("b", Some(vec![rule("https://one.example".into())]))
            .unwrap();
        assert_eq!(store.bucket_cors("b").unwrap().unwrap().len(), 1);
        store.set_bucket_cors("b", None).unwrap();
        assert!(store.bucket_cors("b").unwrap().is_none());
        store.set_bucket_cors("b", Some(many.clone())).unwrap();
        assert!(store.bucket_cors("b").unwrap().is_some());
        store.delete_bucket("b").unwrap();
        assert!(matches!(
            store.bucket_cors("b"),
            Err(StoreError::NoSuchBucket)
        ));
        store.create_bucket("b").unwrap();
        assert!(store.bucket_cors("b").unwrap().is_none(), "the old rules");
        // (As a store written before the `cors` table kept them.)
        store
            .change_bucket("b", |record| {
                record.cors = Some(many);
                Ok(())
            })
            .unwrap();
        assert!(record_bytes(&store) > 100_000);
        drop(store);
        let store = Objects::open(dir.path()).unwrap();
        assert!(record_bytes(&store) < 256, "{}", record_bytes(&store));
        assert_eq!(store.bucket_cors("b").unwrap().unwrap().len(), 20_000);
    }

    /// A start removes the few bodies a stopped process leaves unnamed, but moves aside, not
    /// removes, so many that the database may be older than its bodies (put back from a copy).
    /// A write's Last-Modified is its turn's: one that waits for the store's lock (behind a
    /// delete, say) is not dated before what went ahead of it.
    #[test]
    fn a_write_is_dated_when_it_takes_its_turn() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Objects::open(dir.path()).unwrap());
        store.create_bucket("b").unwrap();
        let held = store.db.begin_write().unwrap();
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                let asked = now_millis();
                (asked, put(&store, "b", b"k", b"x"))
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        let released = now_millis();
        drop(held);
        let (asked, written) = writer.join().unwrap();
        assert!(
            written.modified >= released,
            "{asked} {released} {}",
            written.modified
        );
        let (record, _) = store.get("b", b"k", None).unwrap();
        assert_eq!(record.modified, written.modified);
    }

    #[test]
    fn a_database_older_than_its_bodies_keeps_them_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        put(&store, "b", b"kept", b"x");
        drop(store);
        let blobs = dir.path().join("blobs");
        let bodies = || std::fs::read_dir(&blobs).unwrap().count();
        for i in 0..3 {
            std::fs::write(blobs.join(format!("left{i}")), b"y").unwrap();
        }
        let store = Objects::open(dir.path()).unwrap();
        assert_eq!(bodies(), 1, "the few left are removed");
        drop(store);
        for i in 0..=UNNAMED_BODIES_MAX {
            std::fs::write(blobs.join(format!("newer{i}")), b"y").unwrap();
        }
        let store = Objects::open(dir.path()).unwrap();
        assert_eq!(bodies(), 1, "the named body stays");
        assert_eq!(store.get("b", b"kept", None).unwrap().0.size, 1);
        let aside = std::fs::read_dir(dir.path().join("unnamed")).unwrap();
        let aside: Vec<_> = aside.map(|e| e.unwrap().path()).collect();
        assert_eq!(aside.len(), 1);
        let kept = std::fs::read_dir(&aside[0]).unwrap().count();
        assert_eq!(kept, UNNAMED_BODIES_MAX + 1, "nothing removed");
        drop(store);
        // A move a stop cut short (its mark still there) is finished, however few are left.
        std::fs::write(aside[0].join(MOVING), b"").unwrap();
        std::fs::write(blobs.join("late"), b"y").unwrap();
        let store = Objects::open(dir.path()).unwrap();
        assert_eq!(bodies(), 1);
        assert!(aside[0].join("late").exists(), "moved, not removed");
        assert!(!aside[0].join(MOVING).exists());
        drop(store);
    }

    /// A bucket is made with its ACL in one transaction; making it again changes nothing.
    #[test]
    fn a_bucket_is_made_with_its_acl_at_once() {
        use crate::backend::store::acl::{Grant, Grantee};
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        let read = vec![Grant {
            grantee: Grantee::Group("http://acs.amazonaws.com/groups/global/AllUsers".into()),
            permission: "READ".into(),
        }];
        assert!(store
            .create_bucket_with("b", false, Some(read.clone()))
            .unwrap());
        let acl = |store: &Objects| store.bucket("b").unwrap().unwrap().acl;
        assert_eq!(acl(&store), Some(read.clone()));
        assert!(!store.create_bucket_with("b", false, None).unwrap());
        assert_eq!(acl(&store), Some(read));
    }

    /// An I/O failure of the metadata database breaks it for good (redb refuses every
    /// transaction after one): the store notes it once, whatever error type carried it; other
    /// failures do not.
    #[test]
    fn an_io_failure_of_the_database_breaks_the_store() {
        use redb::{CommitError, StorageError, TableError, TransactionError};
        let io = || StorageError::Io(io::Error::other("ENOSPC"));
        assert!(breaks_the_database(&StorageError::PreviousIo));
        assert!(breaks_the_database(&io()));
        assert!(breaks_the_database(&TransactionError::Storage(io())));
        assert!(breaks_the_database(&CommitError::Storage(
            StorageError::PreviousIo
        )));
        assert!(breaks_the_database(&TableError::Storage(io())));
        assert!(!breaks_the_database(&TableError::TableDoesNotExist(
            "t".into()
        )));
        let json = serde_json::from_slice::<u8>(b"x").unwrap_err();
        assert!(!breaks_the_database(&json));
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        let flag = store.broken();
        store.note::<()>(&Err(db_error(TableError::TableDoesNotExist("t".into()))));
        store.note::<()>(&Ok(()));
        assert!(!flag.load(std::sync::atomic::Ordering::Acquire));
        assert!(store.writer().is_ok());
        let failed = commit_error(CommitError::Storage(StorageError::PreviousIo));
        assert!(failed.may_have_committed());
        assert!(!db_error(TransactionError::Storage(io())).may_have_committed());
        store.note::<()>(&Err(failed));
        assert!(flag.load(std::sync::atomic::Ordering::Acquire));
        // Broken, the store takes no body: nothing is written for a write it cannot keep.
        assert!(matches!(
            store.writer(),
            Err(StoreError::Database { broken: true, .. })
        ));
    }

    fn put(store: &Objects, bucket: &str, key: &[u8], body: &[u8]) -> ObjectRecord {
        let mut w = store.writer().unwrap();
        w.write(body).unwrap();
        store
            .commit(bucket, key, w, Description::default(), Condition::None)
            .unwrap()
    }

    fn read(store: &Objects, bucket: &str, key: &[u8]) -> Vec<u8> {
        let (_, path) = store.get(bucket, key, None).unwrap();
        std::fs::read(path).unwrap()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn any_key_hcp_allows_is_an_object_and_no_key_is_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        assert!(store.create_bucket("b").unwrap());
        assert!(!store.create_bucket("b").unwrap());
        store.create_bucket("other").unwrap();
        let long = vec![b'k'; MAX_KEY_BYTES];
        let keys: Vec<&[u8]> = vec![
            b"../other/secret",
            b"/leading",
            b"dir/",
            b"dir",
            b"a//b",
            b"..",
            &long,
            "ü é".as_bytes(),
        ];
        for (i, key) in keys.iter().enumerate() {
            put(&store, "b", key, format!("body {i}").as_bytes());
        }
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(read(&store, "b", key), format!("body {i}").as_bytes());
        }
        let rec = store.get("b", b"dir/", None).unwrap().0;
        assert_eq!(rec.etag, hex::encode(md5::Md5::digest(b"body 2")));
        assert_eq!(rec.content_type, "application/octet-stream");
        // Bodies are files named by random ids; nothing else is under the root.
        assert!(files(&dir.path().join("blobs"))
            .iter()
            .all(|f| f.len() == 32));
        assert_eq!(files(dir.path()), ["blobs", "metadata.redb", "tmp"]);
        assert!(matches!(
            store.get("other", b"secret", None),
            Err(StoreError::NoSuchKey)
        ));
        assert!(matches!(
            store.get("nope", b"k", None),
            Err(StoreError::NoSuchBucket)
        ));
        for bad in [&b""[..], b"a\0b", &vec![b'k'; MAX_KEY_BYTES + 1]] {
            let w = store.writer().unwrap();
            let r = store.commit("b", bad, w, Description::default(), Condition::None);
            assert!(matches!(r, Err(StoreError::InvalidKey)), "{bad:?}");
        }
        assert!(files(&dir.path().join("tmp")).is_empty());
    }

    #[test]
    fn replaced_and_deleted_bodies_go_and_buckets_empty_before_they_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        put(&store, "b", b"k", b"one");
        put(&store, "b", b"k", b"two");
        assert_eq!(read(&store, "b", b"k"), b"two");
        assert_eq!(files(&dir.path().join("blobs")).len(), 1);
        let w = store.writer().unwrap();
        let r = store.commit("b", b"k", w, Description::default(), Condition::Absent);
        assert!(matches!(r, Err(StoreError::PreconditionFailed)));
        let etag = store.get("b", b"k", None).unwrap().0.etag;
        for (condition, allowed) in [
            (Condition::Matches("0123".into()), false),
            (Condition::DiffersFrom(etag.clone()), false),
            (Condition::Matches("*".into()), true),
            (Condition::Matches(etag.clone()), true),
            (Condition::DiffersFrom("0123".into()), true),
        ] {
            let mut w = store.writer().unwrap();
            w.write(b"two").unwrap();
            let r = store.commit("b", b"k", w, Description::default(), condition.clone());
            assert_eq!(r.is_ok(), allowed, "{condition:?}");
        }
        let r = store.commit(
            "b",
            b"nope",
            store.writer().unwrap(),
            Description::default(),
            Condition::Matches("*".into()),
        );
        assert!(matches!(r, Err(StoreError::PreconditionFailed)));
        assert_eq!(read(&store, "b", b"k"), b"two");
        assert_eq!(files(&dir.path().join("blobs")).len(), 1);
        assert!(matches!(
            store.delete_bucket("b"),
            Err(StoreError::BucketNotEmpty)
        ));
        let removed = Deleted {
            version: None,
            marker: false,
        };
        assert_eq!(store.delete("b", b"k", None, false).unwrap(), removed);
        assert_eq!(store.delete("b", b"k", None, false).unwrap(), removed);
        assert!(files(&dir.path().join("blobs")).is_empty());
        store.delete_bucket("b").unwrap();
        assert!(matches!(
            store.delete_bucket("b"),
            Err(StoreError::NoSuchBucket)
        ));
    }

    #[test]
    fn what_an_interrupted_write_leaves_is_gone_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Objects::open(dir.path()).unwrap();
            store.create_bucket("b").unwrap();
            put(&store, "b", b"kept", b"whole");
            // A body half written (the process died before commit)...
            let mut w = store.writer().unwrap();
            w.write(b"half").unwrap();
            std::mem::forget(w);
            // ...and one renamed into blobs/ whose transaction never committed.
            std::fs::write(dir.path().join("blobs").join("0".repeat(32)), b"orphan").unwrap();
        }
        let store = Objects::open(dir.path()).unwrap();
        assert!(files(&dir.path().join("tmp")).is_empty());
        assert_eq!(files(&dir.path().join("blobs")).len(), 1);
        assert_eq!(read(&store, "b", b"kept"), b"whole");
    }

    #[test]
    fn bodies_without_their_database_are_refused_not_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Objects::open(dir.path()).unwrap();
            store.create_bucket("b").unwrap();
            put(&store, "b", b"k", b"precious");
        }
        std::fs::remove_file(dir.path().join("metadata.redb")).unwrap();
        assert!(Objects::open(dir.path()).is_err());
        assert_eq!(files(&dir.path().join("blobs")).len(), 1);
        // An empty file in its place (a restore that went wrong, a `touch`) is no database.
        std::fs::write(dir.path().join("metadata.redb"), b"").unwrap();
        assert!(Objects::open(dir.path()).is_err());
        assert_eq!(files(&dir.path().join("blobs")).len(), 1);
    }

    /// A directory with files of something else (an s3s-fs bucket named `store`) is not
    /// written into; an empty one, or one a crash left before the database, is a store.
    #[test]
    fn other_data_is_not_taken_for_a_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("an-object"), b"s3s-fs").unwrap();
        assert!(Objects::open(dir.path()).is_err());
        assert_eq!(files(dir.path()), ["an-object"]);
        let fresh = tempfile::tempdir().unwrap();
        std::fs::create_dir(fresh.path().join("tmp")).unwrap();
        assert!(Objects::open(fresh.path()).is_ok());
    }

    #[test]
    fn concurrent_writes_of_one_key_leave_one_whole_body() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Objects::open(dir.path()).unwrap());
        store.create_bucket("b").unwrap();
        let bodies: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 64 * 1024]).collect();
        std::thread::scope(|s| {
            for body in &bodies {
                let store = store.clone();
                s.spawn(move || put(&store, "b", b"k", body));
            }
        });
        let got = read(&store, "b", b"k");
        assert!(bodies.contains(&got));
        assert_eq!(files(&dir.path().join("blobs")).len(), 1);
    }

    #[test]
    fn listings_come_from_the_database_in_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        store.create_bucket("b2").unwrap();
        for key in ["z", "a/1", "a/2", "a/", "b"] {
            put(&store, "b", key.as_bytes(), b"x");
        }
        put(&store, "b2", b"a/1", b"x");
        let query = Query {
            prefix: b"",
            delimiter: b"/",
            after: None,
            max: 1000,
        };
        let page = store.list("b", &query).unwrap();
        let names: Vec<&[u8]> = page.entries.iter().map(Entry::name).collect();
        assert_eq!(names, [&b"a/"[..], b"b", b"z"]);
        match &page.entries[1] {
            Entry::Key(_, record) => assert_eq!(record.etag, hex::encode(md5::Md5::digest(b"x"))),
            Entry::Prefix(_) => panic!("b is a key"),
        }
        assert!(matches!(
            store.list("nope", &query),
            Err(StoreError::NoSuchBucket)
        ));
    }
}

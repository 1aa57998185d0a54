//! Versions: every write of a key adds a version, every delete without a version id a delete
//! marker (versioning enabled) or removes the `null` version (never versioned, suspended), as
//! S3 defines them.
//!
//! `versions` holds all of them under `bucket NUL key NUL order`, where `order` is a store-wide
//! sequence number inverted so that a key's newest version comes first; `objects` holds each
//! key's newest version when it is not a delete marker, and is changed in the same transaction
//! (it is what listings and GETs without a version id read). A version id is an integer, as
//! HCP's are: the sequence number (a newer version's id is a greater number) followed by random
//! digits — it finds its entry without a scan and cannot be guessed from another's. (Ids of the
//! earlier form, the order in hex followed by random hex, are still found.) The `null` version is the one without an id; `nulls` says where each key's is
//! (`bucket NUL key` → its entry), kept in the same transactions and built again whenever the
//! store opens, so that finding it reads one entry however many versions the key has.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::super::listing::{Page, Query};
use super::super::lock;
use super::{
    check_key, db_error, now_millis, object_key, require_bucket, BucketRecord, Condition,
    ObjectRecord, Objects, StoreError, BUCKETS, OBJECTS, VERSIONS,
};

/// `bucket NUL key` → the entry of the key's `null` version, for each key that has one.
pub(super) const NULLS: redb::TableDefinition<&[u8], &[u8]> =
    redb::TableDefinition::new("null-versions");

/// Counter name → value.
pub(super) const COUNTERS: redb::TableDefinition<&str, u64> =
    redb::TableDefinition::new("counters");

/// A bucket's versioning, once configured (S3 never returns a bucket to "never versioned").
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Versioning {
    Enabled,
    Suspended,
}

/// One version of a key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Version {
    Object(ObjectRecord),
    Marker(Marker),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Marker {
    /// `None`: the `null` version.
    pub version: Option<String>,
    pub modified: u64,
}

impl Version {
    /// The version id (`null` for the null version).
    pub fn id(&self) -> &str {
        match self {
            Version::Object(r) => r.version_id(),
            Version::Marker(m) => m.version.as_deref().unwrap_or("null"),
        }
    }

    fn blob(&self) -> Option<&str> {
        match self {
            Version::Object(r) => Some(&r.blob),
            Version::Marker(_) => None,
        }
    }
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The version removed or the marker added (`None` in a bucket never versioned).
    pub version: Option<String>,
    /// A delete marker was added, or the version removed was one.
    pub marker: bool,
}

/// One version in a listing, and whether it is its key's newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub latest: bool,
    pub version: Version,
}

fn prefix_of(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k
}

fn entry_key(bucket: &str, key: &[u8], order: [u8; 8]) -> Vec<u8> {
    let mut k = prefix_of(bucket, key);
    k.extend_from_slice(&order);
    k
}

/// How many random digits end a version id.
const RANDOM_DIGITS: usize = 9;

/// The order an id names, if it is one of this store's ids: the decimal form ([`new_id`]),
/// or the form a store before it gave (the order in hex, 16 digits, then 8 random hex
/// digits — never all decimal digits, as an inverted order begins `ff`).
fn order_of(id: &str) -> Option<[u8; 8]> {
    if id.bytes().all(|b| b.is_ascii_digit()) {
        let sequence = id.get(..id.len().checked_sub(RANDOM_DIGITS)?)?;
        if sequence.starts_with('0') {
            return None;
        }
        let n: u64 = sequence.parse().ok()?;
        return Some((u64::MAX - n).to_be_bytes());
    }
    if id.len() != 24 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut order = [0u8; 8];
    hex::decode_to_slice(&id[..16], &mut order).ok()?;
    Some(order)
}

fn decode(bytes: &[u8]) -> Result<Version, StoreError> {
    serde_json::from_slice(bytes).map_err(db_error)
}

/// The bucket's record (NoSuchBucket without one), from any transaction.
pub(super) fn bucket_record(
    buckets: &impl ReadableTable<&'static str, &'static [u8]>,
    bucket: &str,
) -> Result<BucketRecord, StoreError> {
    let found = buckets.get(bucket).map_err(db_error)?;
    let found = found.ok_or(StoreError::NoSuchBucket)?;
    serde_json::from_slice(found.value()).map_err(db_error)
}

/// The next order of a version in `bucket`: newer versions sort first. Each bucket counts its
/// own (a version id begins with it: one counter for the store would tell a bucket's reader
/// how many writes every other bucket, of every tenant, had between two of its own), from the
/// store-wide count of the versions written before buckets kept theirs, so that a key's next
/// version always sorts before the ones it has.
fn next_order(tx: &WriteTransaction, bucket: &str) -> Result<[u8; 8], StoreError> {
    let mut counters = tx.open_table(COUNTERS).map_err(db_error)?;
    let name = count_of(bucket);
    let own = counters
        .get(name.as_str())
        .map_err(db_error)?
        .map(|v| v.value());
    let last = match own {
        Some(n) => n,
        None => counters
            .get("version")
            .map_err(db_error)?
            .map_or(0, |v| v.value()),
    };
    let n = last + 1;
    counters.insert(name.as_str(), n).map_err(db_error)?;
    Ok((u64::MAX - n).to_be_bytes())
}

/// The name of `bucket`'s count of versions in [`COUNTERS`].
fn count_of(bucket: &str) -> String {
    format!("version/{bucket}")
}

/// Forgets the count of a bucket being deleted (empty: no version of it is left to sort).
pub(super) fn forget_count(tx: &WriteTransaction, bucket: &str) -> Result<(), StoreError> {
    let mut counters = tx.open_table(COUNTERS).map_err(db_error)?;
    counters
        .remove(count_of(bucket).as_str())
        .map_err(db_error)?;
    Ok(())
}

/// The entry of version `id` of a key, if there is one (`null` through `nulls`).
fn find(
    versions: &impl ReadableTable<&'static [u8], &'static [u8]>,
    nulls: &impl ReadableTable<&'static [u8], &'static [u8]>,
    bucket: &str,
    key: &[u8],
    id: &str,
) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
    let k = if id == "null" {
        let found = nulls
            .get(object_key(bucket, key).as_slice())
            .map_err(db_error)?;
        match found {
            Some(entry) => entry.value().to_vec(),
            None => return Ok(None),
        }
    } else {
        match order_of(id) {
            Some(order) => entry_key(bucket, key, order),
            None => return Ok(None),
        }
    };
    let found = versions.get(k.as_slice()).map_err(db_error)?;
    let Some(found) = found else {
        return Ok(None);
    };
    let version = decode(found.value())?;
    Ok((version.id() == id).then_some((k, version)))
}

/// Builds `nulls` again from `versions` (when the store opens: a binary before it kept none).
pub(super) fn index_nulls(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.delete_table(NULLS).map_err(db_error)?;
    let mut nulls = tx.open_table(NULLS).map_err(db_error)?;
    let versions = tx.open_table(VERSIONS).map_err(db_error)?;
    for item in versions.iter().map_err(db_error)? {
        let (entry, value) = item.map_err(db_error)?;
        if decode(value.value())?.id() == "null" {
            let entry = entry.value();
            nulls
                .insert(&entry[..entry.len() - 9], entry)
                .map_err(db_error)?;
        }
    }
    Ok(())
}

/// The newest version under `prefix` (a key's `bucket NUL key NUL`), if it has any.
fn newest(
    versions: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
) -> Result<Option<Version>, StoreError> {
    Ok(newest_entry(versions, prefix)?.map(|(_, version)| version))
}

/// The newest version under `prefix` with its entry.
fn newest_entry(
    versions: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
    match versions.range(prefix..).map_err(db_error)?.next() {
        Some(item) => {
            let (k, v) = item.map_err(db_error)?;
            if k.value().starts_with(prefix) {
                Ok(Some((k.value().to_vec(), decode(v.value())?)))
            } else {
                Ok(None)
            }
        }
        None => Ok(None),
    }
}

/// Points `objects` at the key's newest version, or removes it when that is a marker or there
/// is none.
fn refresh_current(tx: &WriteTransaction, bucket: &str, key: &[u8]) -> Result<(), StoreError> {
    let versions = tx.open_table(VERSIONS).map_err(db_error)?;
    let newest = newest(&versions, &prefix_of(bucket, key))?;
    let mut objects = tx.open_table(OBJECTS).map_err(db_error)?;
    let current = object_key(bucket, key);
    match newest {
        Some(Version::Object(record)) => {
            let bytes = serde_json::to_vec(&record).map_err(db_error)?;
            objects
                .insert(current.as_slice(), bytes.as_slice())
                .map_err(db_error)?;
        }
        _ => {
            objects.remove(current.as_slice()).map_err(db_error)?;
        }
    }
    Ok(())
}

/// Adds `version` as the key's newest (first removing its `null` version unless versioning is
/// enabled); the bodies no longer pointed at.
fn add(
    tx: &WriteTransaction,
    bucket: &str,
    key: &[u8],
    order: [u8; 8],
    version: &Version,
    state: Option<Versioning>,
) -> Result<Vec<String>, StoreError> {
    let mut gone = Vec::new();
    {
        let mut versions = tx.open_table(VERSIONS).map_err(db_error)?;
        let mut nulls = tx.open_table(NULLS).map_err(db_error)?;
        let current = object_key(bucket, key);
        if state != Some(Versioning::Enabled) {
            if let Some((k, old)) = find(&versions, &nulls, bucket, key, "null")? {
                versions.remove(k.as_slice()).map_err(db_error)?;
                nulls.remove(current.as_slice()).map_err(db_error)?;
                gone.extend(old.blob().map(str::to_string));
            }
        }
        let bytes = serde_json::to_vec(version).map_err(db_error)?;
        let k = entry_key(bucket, key, order);
        versions
            .insert(k.as_slice(), bytes.as_slice())
            .map_err(db_error)?;
        if version.id() == "null" {
            nulls
                .insert(current.as_slice(), k.as_slice())
                .map_err(db_error)?;
        }
    }
    refresh_current(tx, bucket, key)?;
    Ok(gone)
}

/// The id a new version gets under `state` (`None`: the null version, which S3 does not name
/// in a write's answer): an integer, as HCP's version ids are — the store's sequence number of
/// the version, so that a newer version's id is a greater number, then random digits, so that
/// no id is guessed from another's.
fn new_id(order: [u8; 8], state: Option<Versioning>) -> Option<String> {
    use rand::Rng;
    let sequence = u64::MAX - u64::from_be_bytes(order);
    let random: u32 = rand::thread_rng().gen_range(0..1_000_000_000);
    (state == Some(Versioning::Enabled)).then(|| format!("{sequence}{random:09}"))
}

/// Makes `record` the key's newest version inside `tx`, if `condition` allows it against the
/// current object; sets its version id and returns the bodies no longer pointed at.
/// What [`place`] would refuse of a write to `bucket`/`key`, judged before the write's long
/// part (a complete's join of its parts): no bucket, Object Lock settings (`locks`) in a bucket
/// without it, a failed condition. `place` judges them again in its transaction.
pub(super) fn check_placeable(
    tx: &redb::ReadTransaction,
    (bucket, key): (&str, &[u8]),
    locks: bool,
    condition: &Condition,
) -> Result<(), StoreError> {
    let found = bucket_record(&tx.open_table(BUCKETS).map_err(db_error)?, bucket)?;
    if found.lock.is_none() && locks {
        return Err(StoreError::NoObjectLock);
    }
    if matches!(condition, Condition::None) {
        return Ok(());
    }
    let objects = tx.open_table(OBJECTS).map_err(db_error)?;
    let found = objects
        .get(object_key(bucket, key).as_slice())
        .map_err(db_error)?;
    let current = found
        .map(|v| serde_json::from_slice::<ObjectRecord>(v.value()))
        .transpose()
        .map_err(db_error)?;
    match condition.allows(current.as_ref()) {
        true => Ok(()),
        false => Err(StoreError::PreconditionFailed),
    }
}

pub(super) fn place(
    tx: &WriteTransaction,
    bucket: &str,
    key: &[u8],
    record: &mut ObjectRecord,
    condition: &Condition,
) -> Result<Vec<String>, StoreError> {
    // Its time is its turn's, taken in the transaction that places it — as a delete marker's
    // is —: a write that waited for the store's lock behind a later delete is newer than it by
    // its Last-Modified too, which orders a key's versions in a listing (HCP: "in ascending
    // chronological order").
    record.modified = now_millis();
    let found = bucket_record(&tx.open_table(BUCKETS).map_err(db_error)?, bucket)?;
    let state = found.versioning;
    // Object lock: only where the bucket has it; its default retention where none was given.
    match found.lock {
        None if record.retention.is_some() || record.legal_hold => {
            return Err(StoreError::NoObjectLock)
        }
        Some(lock) if record.retention.is_none() => {
            record.retention = lock.default.map(|d| d.from(record.modified));
        }
        _ => {}
    }
    let current = {
        let objects = tx.open_table(OBJECTS).map_err(db_error)?;
        let found = objects
            .get(object_key(bucket, key).as_slice())
            .map_err(db_error)?;
        found
            .map(|v| serde_json::from_slice::<ObjectRecord>(v.value()))
            .transpose()
            .map_err(db_error)?
    };
    if !condition.allows(current.as_ref()) {
        return Err(StoreError::PreconditionFailed);
    }
    let order = next_order(tx, bucket)?;
    record.version = new_id(order, state);
    add(
        tx,
        bucket,
        key,
        order,
        &Version::Object(record.clone()),
        state,
    )
}

/// Makes `versions` and `objects` agree when the store opens (a store written before versions
/// were kept, or by such a binary since): a current object that is not its key's newest version
/// becomes it (at its own position when it has an id, else as the null version); a key whose
/// newest version is an object without a current row gets the row back, or, when that body is
/// gone, loses that version. A no-op when they agree; one pass over each table, remembering only
/// the keys that differ.
pub(super) fn reconcile(tx: &WriteTransaction, blobs: &std::path::Path) -> Result<(), StoreError> {
    let (behind, orphaned) = differences(tx)?;
    let split = |k: &[u8]| {
        let nul = k.iter().position(|&b| b == 0).unwrap_or(k.len());
        let key = k.get(nul + 1..).unwrap_or_default().to_vec();
        (String::from_utf8_lossy(&k[..nul]).into_owned(), key)
    };
    for k in behind {
        let (bucket, key) = split(&k);
        let record: ObjectRecord = {
            let objects = tx.open_table(OBJECTS).map_err(db_error)?;
            let found = objects.get(k.as_slice()).map_err(db_error)?;
            let found = found.ok_or_else(|| db_error("a current object vanished"))?;
            serde_json::from_slice(found.value()).map_err(db_error)?
        };
        match record.version.as_deref().and_then(order_of) {
            Some(order) => {
                let bytes = serde_json::to_vec(&Version::Object(record)).map_err(db_error)?;
                tx.open_table(VERSIONS)
                    .map_err(db_error)?
                    .insert(entry_key(&bucket, &key, order).as_slice(), bytes.as_slice())
                    .map_err(db_error)?;
                refresh_current(tx, &bucket, &key)?;
            }
            None => {
                let order = next_order(tx, &bucket)?;
                // Bodies of a replaced null version are left to the sweep of unnamed bodies
                // (the next opening's: an existing store is swept before this runs).
                add(tx, &bucket, &key, order, &Version::Object(record), None)?;
            }
        }
    }
    for (k, entry, blob) in orphaned {
        let (bucket, key) = split(&k);
        if !blobs.join(&blob).exists() {
            tx.open_table(VERSIONS)
                .map_err(db_error)?
                .remove(entry.as_slice())
                .map_err(db_error)?;
            let mut nulls = tx.open_table(NULLS).map_err(db_error)?;
            let indexed = nulls
                .get(k.as_slice())
                .map_err(db_error)?
                .is_some_and(|e| e.value() == entry.as_slice());
            if indexed {
                nulls.remove(k.as_slice()).map_err(db_error)?;
            }
        }
        refresh_current(tx, &bucket, &key)?;
    }
    Ok(())
}

/// Where the tables disagree: current objects (`bucket NUL key`) that are not their key's newest
/// version, and keys whose newest version is an object without a current row (with that
/// version's entry and body).
type Differences = (Vec<Vec<u8>>, Vec<(Vec<u8>, Vec<u8>, String)>);

fn differences(tx: &WriteTransaction) -> Result<Differences, StoreError> {
    let (mut behind, mut orphaned) = (Vec::new(), Vec::new());
    {
        let objects = tx.open_table(OBJECTS).map_err(db_error)?;
        let versions = tx.open_table(VERSIONS).map_err(db_error)?;
        for item in objects.iter().map_err(db_error)? {
            let (k, v) = item.map_err(db_error)?;
            let record: ObjectRecord = serde_json::from_slice(v.value()).map_err(db_error)?;
            let mut prefix = k.value().to_vec();
            prefix.push(0);
            if newest(&versions, &prefix)? != Some(Version::Object(record)) {
                behind.push(k.value().to_vec());
            }
        }
        let mut previous: Option<Vec<u8>> = None;
        for item in versions.iter().map_err(db_error)? {
            let (ek, ev) = item.map_err(db_error)?;
            let entry = ek.value();
            let current = entry[..entry.len().saturating_sub(9)].to_vec();
            if previous.as_deref() == Some(current.as_slice()) {
                continue;
            }
            previous = Some(current.clone());
            if let Version::Object(r) = decode(ev.value())? {
                if objects.get(current.as_slice()).map_err(db_error)?.is_none() {
                    orphaned.push((current, entry.to_vec(), r.blob));
                }
            }
        }
    }
    Ok((behind, orphaned))
}

/// Where a listing resumed inside key `key` after its entry `marker` seeks: just past the
/// marker's entry, so that a page reads no version it skips (a key of many versions paged
/// through would cost each page all the versions before it); and whether the key has a version
/// before it (then the first one read there is not the latest).
fn past_marker(
    versions: &impl ReadableTable<&'static [u8], &'static [u8]>,
    bucket: &str,
    key: &[u8],
    marker: &[u8],
) -> Result<(Vec<u8>, bool), StoreError> {
    let mut past = marker.to_vec();
    past.push(0);
    let prefix = prefix_of(bucket, key);
    let first = versions
        .range(prefix.as_slice()..)
        .map_err(db_error)?
        .next()
        .transpose()
        .map_err(db_error)?;
    let newer = first.is_some_and(|(f, _)| f.value().starts_with(&prefix) && f.value() < &past[..]);
    Ok((past, newer))
}

impl Objects {
    /// A copy's object at `bucket`/`key`, read from `source`: what placing it under `condition`
    /// would refuse is asked first — not after the whole source was read and written, for
    /// nothing — then asked again as it is committed (a write may come between).
    pub fn copy_in(
        &self,
        (bucket, key): (&str, &[u8]),
        source: &mut impl std::io::Read,
        description: super::Description,
        condition: Condition,
    ) -> Result<ObjectRecord, StoreError> {
        {
            let tx = self.db.begin_read().map_err(db_error)?;
            let locks = description.retention.is_some() || description.legal_hold;
            check_placeable(&tx, (bucket, key), locks, &condition)?;
        }
        let mut body = self.writer()?;
        body.copy_from(source)?;
        self.commit(bucket, key, body, description, condition)
    }

    /// Sets the bucket's versioning.
    pub fn set_versioning(&self, bucket: &str, state: Versioning) -> Result<(), StoreError> {
        self.change_bucket(bucket, |record| {
            if record.lock.is_some() && state != Versioning::Enabled {
                return Err(StoreError::LockedVersioning);
            }
            record.versioning = Some(state);
            Ok(())
        })
    }

    /// Changes what is kept of version `id` of a key (without an id, of its current version:
    /// NoSuchKey when that is a delete marker) in one transaction; the record as changed.
    pub fn change_version(
        &self,
        bucket: &str,
        key: &[u8],
        id: Option<&str>,
        change: impl FnOnce(&mut ObjectRecord) -> Result<(), StoreError>,
    ) -> Result<ObjectRecord, StoreError> {
        check_key(key)?;
        let tx = self.db.begin_write().map_err(db_error)?;
        require_bucket(&tx.open_table(BUCKETS).map_err(db_error)?, bucket)?;
        let record = {
            let mut versions = tx.open_table(VERSIONS).map_err(db_error)?;
            let nulls = tx.open_table(NULLS).map_err(db_error)?;
            let found = match id {
                Some(id) => {
                    find(&versions, &nulls, bucket, key, id)?.ok_or(StoreError::NoSuchVersion)?
                }
                None => newest_entry(&versions, &prefix_of(bucket, key))?
                    .ok_or(StoreError::NoSuchKey)?,
            };
            let (entry, mut record) = match (found, id) {
                ((entry, Version::Object(record)), _) => (entry, record),
                ((_, Version::Marker(m)), Some(_)) => {
                    return Err(StoreError::DeleteMarker(m.modified))
                }
                (_, None) => return Err(StoreError::NoSuchKey),
            };
            change(&mut record)?;
            let bytes = serde_json::to_vec(&Version::Object(record.clone())).map_err(db_error)?;
            versions
                .insert(entry.as_slice(), bytes.as_slice())
                .map_err(db_error)?;
            record
        };
        refresh_current(&tx, bucket, key)?;
        tx.commit().map_err(db_error)?;
        Ok(record)
    }

    /// Version `id` of a key: the object, or DeleteMarker / NoSuchVersion.
    pub(super) fn version(
        &self,
        bucket: &str,
        key: &[u8],
        id: &str,
    ) -> Result<ObjectRecord, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        require_bucket(&tx.open_table(BUCKETS).map_err(db_error)?, bucket)?;
        let versions = tx.open_table(VERSIONS).map_err(db_error)?;
        let nulls = tx.open_table(NULLS).map_err(db_error)?;
        match find(&versions, &nulls, bucket, key, id)? {
            Some((_, Version::Object(record))) => Ok(record),
            Some((_, Version::Marker(m))) => Err(StoreError::DeleteMarker(m.modified)),
            None => Err(StoreError::NoSuchVersion),
        }
    }

    /// Deletes version `id` of a key, or (without an id) the key as the bucket's versioning
    /// says: a marker added, or the null version removed.
    ///
    /// A version under a legal hold or an active retention is kept (Locked), but for an active
    /// governance retention when `bypass` is set.
    pub fn delete(
        &self,
        bucket: &str,
        key: &[u8],
        id: Option<&str>,
        bypass: bool,
    ) -> Result<Deleted, StoreError> {
        check_key(key)?;
        let tx = self.db.begin_write().map_err(db_error)?;
        let state = bucket_record(&tx.open_table(BUCKETS).map_err(db_error)?, bucket)?.versioning;
        let (deleted, gone) = match (id, state) {
            (None, Some(state)) => {
                let order = next_order(&tx, bucket)?;
                let version = new_id(order, Some(state));
                let marker = Version::Marker(Marker {
                    version: version.clone(),
                    modified: now_millis(),
                });
                let gone = add(&tx, bucket, key, order, &marker, Some(state))?;
                let deleted = Deleted {
                    version: Some(version.unwrap_or_else(|| "null".into())),
                    marker: true,
                };
                (deleted, gone)
            }
            (id, state) => {
                let id = id.unwrap_or("null");
                let found = find(
                    &tx.open_table(VERSIONS).map_err(db_error)?,
                    &tx.open_table(NULLS).map_err(db_error)?,
                    bucket,
                    key,
                    id,
                )?;
                let mut gone = Vec::new();
                let marker = match found {
                    Some((_, Version::Object(r)))
                        if !lock::may_delete(
                            r.retention.as_ref(),
                            r.legal_hold,
                            bypass,
                            now_millis(),
                        ) =>
                    {
                        return Err(StoreError::Locked)
                    }
                    Some((k, old)) => {
                        tx.open_table(VERSIONS)
                            .map_err(db_error)?
                            .remove(k.as_slice())
                            .map_err(db_error)?;
                        if old.id() == "null" {
                            tx.open_table(NULLS)
                                .map_err(db_error)?
                                .remove(object_key(bucket, key).as_slice())
                                .map_err(db_error)?;
                        }
                        gone.extend(old.blob().map(str::to_string));
                        refresh_current(&tx, bucket, key)?;
                        matches!(old, Version::Marker(_))
                    }
                    None => false,
                };
                let version = (state.is_some() || id != "null").then(|| id.to_string());
                (Deleted { version, marker }, gone)
            }
        };
        tx.commit().map_err(db_error)?;
        for blob in gone {
            let _ = std::fs::remove_file(self.root.join("blobs").join(blob));
        }
        Ok(deleted)
    }

    /// One page of the bucket's versions by S3's listing rules (after `query.after`, or after
    /// version `after_version` of that key), newest first within a key.
    pub fn list_versions(
        &self,
        bucket: &str,
        query: &Query<'_>,
        after_version: Option<&str>,
    ) -> Result<Page<Listed>, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        require_bucket(&tx.open_table(BUCKETS).map_err(db_error)?, bucket)?;
        let versions = tx.open_table(VERSIONS).map_err(db_error)?;
        let nulls = tx.open_table(NULLS).map_err(db_error)?;
        // With a version marker, the listing resumes inside the marker's key: its versions up to
        // and including the marker are skipped here, the keys before it by the seek.
        let (after_key, resume) = match (query.after, after_version) {
            (Some(k), Some(v)) if !v.is_empty() => {
                // By position: a marker version deleted since the last page still says where
                // to go on (an id holds its order). A marker that names no version and holds
                // no order (a vanished `null`, an id never given) starts the listing after the
                // key (HCP: "If no such item exists, the returned bucket listing starts with
                // the first item with a name that's alphanumerically greater than the
                // key-marker").
                let order = match find(&versions, &nulls, bucket, k, v)? {
                    Some((entry, _)) => Some(entry),
                    None => order_of(v).map(|order| entry_key(bucket, k, order)),
                };
                (None, Some((k.to_vec(), order)))
            }
            _ => (query.after, None),
        };
        let query = Query {
            after: after_key,
            ..*query
        };
        let bucket_start = object_key(bucket, b"");
        let error = std::cell::RefCell::new(None);
        let resume_at = match &resume {
            Some((k, Some(marker))) => Some(past_marker(&versions, bucket, k, marker)?),
            _ => None,
        };
        // (The key of the entry read before: its first version is the latest. A seek lands on
        // a new key's first version, or past the marker in its key.)
        let previous: std::cell::RefCell<Option<Vec<u8>>> = Default::default();
        // Opened where the page starts (inside the marker's key when resuming there), and
        // again past each common prefix, whose versions are never read.
        let open = |from: &[u8]| {
            let seek = match (&resume, &resume_at) {
                (Some((k, _)), Some((past, newer))) if from <= k.as_slice() => {
                    *previous.borrow_mut() = newer.then(|| k.clone());
                    past.clone()
                }
                (Some((k, _)), _) if from <= k.as_slice() => object_key(bucket, k),
                _ => object_key(bucket, from),
            };
            let range = versions
                .range(seek.as_slice()..)
                .map_err(|e| *error.borrow_mut() = Some(db_error(e)))
                .ok();
            range
                .into_iter()
                .flatten()
                .map_while(|item| {
                    let (k, v) = match item {
                        Ok(kv) => kv,
                        Err(e) => {
                            *error.borrow_mut() = Some(db_error(e));
                            return None;
                        }
                    };
                    let entry = k.value();
                    if !entry.starts_with(&bucket_start) {
                        return None;
                    }
                    let key = entry[bucket_start.len()..entry.len() - 9].to_vec();
                    let mut previous = previous.borrow_mut();
                    let latest = previous.as_deref() != Some(key.as_slice());
                    *previous = Some(key.clone());
                    match decode(v.value()) {
                        Ok(version) => Some((entry.to_vec(), key, Listed { latest, version })),
                        Err(e) => {
                            *error.borrow_mut() = Some(e);
                            None
                        }
                    }
                })
                .filter(|(entry, key, _)| match &resume {
                    Some((k, Some(marker))) => key != k || entry > marker,
                    Some((k, None)) => key > k,
                    None => true,
                })
                .map(|(_, key, listed)| (key, listed))
        };
        let page = Page::of_seeking(&query, open);
        match error.into_inner() {
            Some(e) => Err(e),
            None => Ok(page),
        }
    }

    /// Whether the bucket holds any version or marker.
    pub(super) fn has_versions(
        versions: &impl ReadableTable<&'static [u8], &'static [u8]>,
        bucket: &str,
    ) -> Result<bool, StoreError> {
        let start = object_key(bucket, b"");
        let mut range = versions.range(start.as_slice()..).map_err(db_error)?;
        match range.next() {
            Some(item) => Ok(item.map_err(db_error)?.0.value().starts_with(&start)),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Description;
    use super::*;
    use crate::backend::store::listing::Entry;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    /// Version ids are integers, a newer version's the greater, and each finds its order
    /// again; ids of the earlier form (hex) are still read, and nothing else is taken for one.
    #[test]
    fn version_ids_are_integers_that_grow() {
        let mut last = 0u128;
        for n in [1u64, 2, 9, 10, 999_999, 1 << 40, u64::MAX / 2] {
            let order = (u64::MAX - n).to_be_bytes();
            let id = new_id(order, Some(Versioning::Enabled)).unwrap();
            let value: u128 = id.parse().unwrap_or_else(|_| panic!("{id}"));
            assert!(value > last, "{id} after {last}");
            last = value;
            assert_eq!(order_of(&id), Some(order), "{id}");
        }
        assert_eq!(new_id([0xff; 8], Some(Versioning::Suspended)), None);
        let earlier = format!("{}1234abcd", hex::encode((u64::MAX - 7).to_be_bytes()));
        assert_eq!(order_of(&earlier), Some((u64::MAX - 7).to_be_bytes()));
        for other in [
            "",
            "123456789",
            "0123456789",
            "12x456789012",
            "null",
            "ffff",
        ] {
            assert_eq!(order_of(other), None, "{other}");
        }
    }

    /// A version id tells nothing of other buckets' writes: each bucket counts its own, from
    /// the store-wide count written before — a key's next version still sorts first.
    #[test]
    fn a_version_id_counts_its_own_bucket_s_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        for bucket in ["b", "other"] {
            store.create_bucket(bucket).unwrap();
            store.set_versioning(bucket, Versioning::Enabled).unwrap();
        }
        // (A store written before buckets counted their own: the store-wide count.)
        {
            let tx = store.db.begin_write().unwrap();
            tx.open_table(COUNTERS)
                .unwrap()
                .insert("version", 40)
                .unwrap();
            tx.commit().unwrap();
        }
        let sequence = |r: ObjectRecord| {
            let id = r.version.unwrap();
            id[..id.len() - 9].parse::<u64>().unwrap()
        };
        let first = sequence(put(&store, b"k", b"1"));
        assert_eq!(first, 41);
        let mut written = Vec::new();
        for _ in 0..50 {
            let mut w = store.writer().unwrap();
            w.write(b"x").unwrap();
            let description = Description::default();
            let record = store
                .commit("other", b"o", w, description, Condition::None)
                .unwrap();
            written.push(record.version.unwrap());
        }
        assert_eq!(sequence(put(&store, b"k", b"2")), first + 1);
        let page = store
            .list_versions(
                "b",
                &Query {
                    prefix: b"",
                    delimiter: b"",
                    after: None,
                    max: 10,
                },
                None,
            )
            .unwrap();
        assert_eq!(page.entries.len(), 2);
        let newest = store.get("b", b"k", None).unwrap();
        assert_eq!(sequence(newest.0), first + 1);
        // A bucket deleted and made again counts from the start, not on from its writes.
        for id in &written {
            store.delete("other", b"o", Some(id), false).unwrap();
        }
        store.delete_bucket("other").unwrap();
        store.create_bucket("other").unwrap();
        store.set_versioning("other", Versioning::Enabled).unwrap();
        let mut w = store.writer().unwrap();
        w.write(b"x").unwrap();
        let again = store
            .commit("other", b"o", w, Description::default(), Condition::None)
            .unwrap();
        assert_eq!(sequence(again), 41);
    }

    /// A version as the model keeps it: id, delete marker or body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Model {
        id: String,
        body: Option<Vec<u8>>,
    }

    fn put(store: &Objects, key: &[u8], body: &[u8]) -> ObjectRecord {
        let mut w = store.writer().unwrap();
        w.write(body).unwrap();
        let description = Description::default();
        store
            .commit("b", key, w, description, Condition::None)
            .unwrap()
    }

    /// A copy the key's condition refuses is refused before its source is read: a source
    /// that never ends (a pipe nobody writes to) is answered at once; one the condition allows
    /// is read and committed.
    #[test]
    fn a_refused_copy_reads_nothing_of_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Objects::open(dir.path()).unwrap());
        store.create_bucket("b").unwrap();
        put(&store, b"taken", b"there");
        let (mut endless, writer) = std::io::pipe().unwrap();
        let (done, answered) = std::sync::mpsc::channel();
        let copying = store.clone();
        std::thread::spawn(move || {
            let copy = copying.copy_in(
                ("b", b"taken"),
                &mut endless,
                Description::default(),
                Condition::Absent,
            );
            let _ = done.send(copy.map(|r| r.etag));
        });
        let copy = answered.recv_timeout(std::time::Duration::from_secs(5));
        drop(writer);
        assert!(
            matches!(copy, Ok(Err(StoreError::PreconditionFailed))),
            "{copy:?}"
        );
        let copied = store
            .copy_in(
                ("b", b"free"),
                &mut &b"source"[..],
                Description::default(),
                Condition::Absent,
            )
            .unwrap();
        assert_eq!(copied.size, 6);
    }

    /// A listed version: key, id, whether latest, body (`None`: a delete marker).
    type Row = (Vec<u8>, String, bool, Option<Vec<u8>>);

    /// Every version the store lists, page by page with markers.
    fn listed(store: &Objects, prefix: &[u8], max: usize) -> Vec<Row> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker): (Option<Vec<u8>>, Option<String>) = (None, None);
        for _ in 0..1000 {
            let query = Query {
                prefix,
                delimiter: b"",
                after: key_marker.as_deref(),
                max,
            };
            let page = store
                .list_versions("b", &query, version_marker.as_deref())
                .unwrap();
            assert!(page.entries.len() <= max);
            for entry in &page.entries {
                let Entry::Key(key, l) = entry else {
                    panic!("no delimiter, no prefixes")
                };
                let body = match &l.version {
                    Version::Object(r) => {
                        let (_, path) = store.get("b", key, Some(r.version_id())).unwrap();
                        Some(std::fs::read(path).unwrap())
                    }
                    Version::Marker(_) => None,
                };
                out.push((key.clone(), l.version.id().to_string(), l.latest, body));
            }
            if !page.truncated {
                return out;
            }
            let Some(Entry::Key(k, l)) = page.entries.last() else {
                unreachable!()
            };
            key_marker = Some(k.clone());
            version_marker = Some(l.version.id().to_string());
        }
        panic!("the listing does not end");
    }

    type Versions = BTreeMap<Vec<u8>, Vec<Model>>;

    /// One random write, delete or versioning change, done in the store and the model.
    fn act(
        store: &Objects,
        rng: &mut StdRng,
        model: &mut Versions,
        state: &mut Option<Versioning>,
        tag: &str,
    ) {
        let keys: [&[u8]; 4] = [b"a", b"a/b", b"ab", b"b"];
        let key = keys[rng.gen_range(0..keys.len())];
        let versions = model.entry(key.to_vec()).or_default();
        match rng.gen_range(0..10) {
            0..=3 => {
                let body = tag.as_bytes().to_vec();
                let record = put(store, key, &body);
                if *state != Some(Versioning::Enabled) {
                    versions.retain(|v| v.id != "null");
                }
                assert_eq!(
                    record.version.is_some(),
                    *state == Some(Versioning::Enabled)
                );
                let id = record.version_id().to_string();
                versions.insert(
                    0,
                    Model {
                        id,
                        body: Some(body),
                    },
                );
            }
            4..=5 => {
                let d = store.delete("b", key, None, false).unwrap();
                if *state != Some(Versioning::Enabled) {
                    versions.retain(|v| v.id != "null");
                }
                if state.is_some() {
                    assert!(d.marker);
                    let id = d.version.unwrap();
                    versions.insert(0, Model { id, body: None });
                } else {
                    assert_eq!(d.version, None);
                }
            }
            6..=7 if !versions.is_empty() => {
                let i = rng.gen_range(0..versions.len());
                let gone = versions.remove(i);
                let d = store.delete("b", key, Some(&gone.id), false).unwrap();
                assert_eq!(d.marker, gone.body.is_none());
            }
            6..=7 => {
                let d = store.delete("b", key, Some("0000000000000000abcdef12"), false);
                assert!(!d.unwrap().marker);
            }
            8 => {
                store.set_versioning("b", Versioning::Enabled).unwrap();
                *state = Some(Versioning::Enabled);
            }
            _ => {
                if state.is_some() {
                    store.set_versioning("b", Versioning::Suspended).unwrap();
                    *state = Some(Versioning::Suspended);
                }
            }
        }
    }

    /// The current object of every key, and every version in pages of every size.
    fn check(store: &Objects, model: &Versions, at: &str) {
        // The current object of every key.
        for (key, versions) in model {
            let current = store.get("b", key, None);
            match versions.first() {
                Some(Model {
                    body: Some(body), ..
                }) => {
                    let (_, path) = current.unwrap();
                    assert_eq!(std::fs::read(path).unwrap(), *body, "{at}");
                }
                _ => assert!(matches!(current, Err(StoreError::NoSuchKey))),
            }
        }
        // Every version, in pages of every size.
        let expected: Vec<_> = model
            .iter()
            .flat_map(|(k, vs)| {
                vs.iter()
                    .enumerate()
                    .map(|(i, v)| (k.clone(), v.id.clone(), i == 0, v.body.clone()))
            })
            .collect();
        for max in [1, 2, 3, 1000] {
            assert_eq!(listed(store, b"", max), expected, "{at}");
        }
        let under_a: Vec<_> = expected
            .iter()
            .filter(|e| e.0.starts_with(b"a"))
            .cloned()
            .collect();
        assert_eq!(listed(store, b"a", 2), under_a);
    }

    /// A store whose `versions` table is empty or behind (written before versions were kept)
    /// is brought level when it opens: every current object is its key's newest version, and
    /// no body it points at is cleaned away.
    #[test]
    fn current_objects_without_versions_are_adopted_not_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Objects::open(dir.path()).unwrap();
            store.create_bucket("b").unwrap();
            put(&store, b"k", b"kept");
            put(&store, b"dir/", b"folder");
        }
        {
            let db = redb::Database::create(dir.path().join("metadata.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            tx.delete_table(VERSIONS).unwrap();
            tx.commit().unwrap();
        }
        let store = Objects::open(dir.path()).unwrap();
        let (_, path) = store.get("b", b"k", None).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"kept");
        let query = Query {
            prefix: b"",
            delimiter: b"",
            after: None,
            max: 10,
        };
        let page = store.list_versions("b", &query, None).unwrap();
        assert_eq!(page.entries.len(), 2);
        // A marker version deleted since the last page: the listing goes on after it.
        store.set_versioning("b", Versioning::Enabled).unwrap();
        let marker = store
            .delete("b", b"k", None, false)
            .unwrap()
            .version
            .unwrap();
        put(&store, b"k", b"newer");
        let one = Query { max: 1, ..query };
        let page = store.list_versions(
            "b",
            &Query {
                after: Some(b"k"),
                ..one
            },
            Some(&marker),
        );
        assert_eq!(
            page.unwrap().entries.len(),
            1,
            "the null version after the marker"
        );
        store.delete("b", b"k", Some(&marker), false).unwrap();
        let page = store.list_versions(
            "b",
            &Query {
                after: Some(b"k"),
                ..one
            },
            Some(&marker),
        );
        let Entry::Key(_, rest) = &page.unwrap().entries[0] else {
            panic!("a version")
        };
        assert_eq!(rest.version.id(), "null");
    }

    /// A page resumed inside a key reads none of the versions before its marker: a key of
    /// many versions paged through costs each page its own versions, not all the newer ones
    /// again. (A newer version that could not be read would fail the page if it were read.)
    #[test]
    fn a_page_inside_a_key_starts_past_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let store = Objects::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        store.set_versioning("b", Versioning::Enabled).unwrap();
        let ids: Vec<String> = (0..4)
            .map(|i| {
                put(&store, b"k", format!("v{i}").as_bytes())
                    .version_id()
                    .to_string()
            })
            .collect();
        let tx = store.db.begin_write().unwrap();
        {
            let mut versions = tx.open_table(VERSIONS).unwrap();
            let newest = entry_key("b", b"k", order_of(&ids[3]).unwrap());
            versions
                .insert(newest.as_slice(), b"unreadable".as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
        let query = Query {
            prefix: b"",
            delimiter: b"",
            after: Some(b"k"),
            max: 10,
        };
        let page = store.list_versions("b", &query, Some(&ids[2])).unwrap();
        let listed: Vec<(&str, bool)> = page
            .entries
            .iter()
            .map(|e| match e {
                Entry::Key(_, l) => (l.version.id(), l.latest),
                Entry::Prefix(_) => panic!("no delimiter"),
            })
            .collect();
        assert_eq!(listed, [(ids[1].as_str(), false), (ids[0].as_str(), false)]);
    }

    /// A current row lost (an older binary deleted the key): the newest version is current
    /// again while its body is there, and is dropped when its body is gone.
    #[test]
    fn versions_without_their_current_row_are_current_again_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Objects::open(dir.path()).unwrap();
            store.create_bucket("b").unwrap();
            put(&store, b"k", b"kept");
            put(&store, b"dir/", b"folder");
            store.set_versioning("b", Versioning::Enabled).unwrap();
            put(&store, b"k", b"newer");
        }
        let query = Query {
            prefix: b"k",
            delimiter: b"",
            after: None,
            max: 10,
        };
        let (_, gone_blob) = {
            let db = redb::Database::create(dir.path().join("metadata.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            let blob = {
                let mut objects = tx.open_table(OBJECTS).unwrap();
                let k = super::super::object_key("b", b"dir/");
                objects.remove(k.as_slice()).unwrap();
                let removed = objects.remove(super::super::object_key("b", b"k").as_slice());
                let record: ObjectRecord =
                    serde_json::from_slice(removed.unwrap().unwrap().value()).unwrap();
                record.blob
            };
            tx.commit().unwrap();
            ((), blob)
        };
        std::fs::remove_file(dir.path().join("blobs").join(&gone_blob)).unwrap();
        let store = Objects::open(dir.path()).unwrap();
        let (_, path) = store.get("b", b"dir/", None).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"folder");
        let page = store
            .list_versions(
                "b",
                &Query {
                    prefix: b"k",
                    ..query
                },
                None,
            )
            .unwrap();
        assert!(
            page.entries.iter().all(|e| match e {
                Entry::Key(_, l) => l.version.blob() != Some(gone_blob.as_str()),
                Entry::Prefix(_) => true,
            }),
            "the version whose body is gone is dropped"
        );
        // The version before it is current again.
        let (_, path) = store.get("b", b"k", None).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"kept");
    }

    /// Random writes, deletes (with and without version ids) and versioning changes, checked
    /// after each step against a model of S3's versioning: the current object of every key,
    /// every version of every key in order (listed in pages of every size, resuming at version
    /// markers), and that bodies no version points at are gone.
    /// The index of `null` versions says what a scan of every version finds.
    fn nulls_agree(store: &Objects, context: &str) {
        let tx = store.db.begin_read().unwrap();
        let versions = tx.open_table(VERSIONS).unwrap();
        let mut scanned = BTreeMap::new();
        for item in versions.iter().unwrap() {
            let (entry, value) = item.unwrap();
            let entry = entry.value();
            if decode(value.value()).unwrap().id() == "null" {
                let earlier = scanned.insert(entry[..entry.len() - 9].to_vec(), entry.to_vec());
                assert!(earlier.is_none(), "{context}: two null versions of a key");
            }
        }
        let nulls = tx.open_table(NULLS).unwrap();
        let indexed: BTreeMap<Vec<u8>, Vec<u8>> = nulls
            .iter()
            .unwrap()
            .map(|item| {
                let (k, v) = item.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect();
        assert_eq!(indexed, scanned, "{context}");
    }

    /// A store whose index of `null` versions was lost or left behind (a binary before it)
    /// has it built again when it opens.
    #[test]
    fn the_null_index_is_built_again_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Objects::open(dir.path()).unwrap();
            store.create_bucket("b").unwrap();
            put(&store, b"k", b"unversioned");
            store.set_versioning("b", Versioning::Enabled).unwrap();
            put(&store, b"k", b"versioned");
            put(&store, b"j", b"versioned");
            store.set_versioning("b", Versioning::Suspended).unwrap();
            put(&store, b"j", b"suspended");
            let tx = store.db.begin_write().unwrap();
            tx.delete_table(NULLS).unwrap();
            tx.commit().unwrap();
        }
        let store = Objects::open(dir.path()).unwrap();
        nulls_agree(&store, "reopened");
        let (_, path) = store.get("b", b"k", Some("null")).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"unversioned");
        // The suspended bucket's write replaces the null version it finds.
        put(&store, b"k", b"replaced");
        nulls_agree(&store, "replaced");
        let (_, path) = store.get("b", b"k", Some("null")).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"replaced");
    }

    #[test]
    fn versions_follow_s3_s_rules_against_a_model() {
        for seed in 0..12u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let dir = tempfile::tempdir().unwrap();
            let store = Objects::open(dir.path()).unwrap();
            store.create_bucket("b").unwrap();
            let mut model = Versions::new();
            let mut state: Option<Versioning> = None;
            for step in 0..60 {
                act(
                    &store,
                    &mut rng,
                    &mut model,
                    &mut state,
                    &format!("{seed}-{step}"),
                );
                check(&store, &model, &format!("seed {seed} step {step}"));
                nulls_agree(&store, &format!("seed {seed} step {step}"));
            }
            // No body is kept that no version points at.
            let bodies = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
            let objects = model
                .values()
                .flatten()
                .filter(|v| v.body.is_some())
                .count();
            assert_eq!(bodies, objects, "seed {seed}");
            // A version id names its version only: a marker is 405, an unknown id 404.
            if let Some(marker) = model.values().flatten().find(|v| v.body.is_none()) {
                let key = model.iter().find(|(_, vs)| vs.contains(marker)).unwrap().0;
                assert!(matches!(
                    store.get("b", key, Some(&marker.id)),
                    Err(StoreError::DeleteMarker(_))
                ));
            }
            assert!(matches!(
                store.get("b", b"a", Some("ffffffffffffffff00000000")),
                Err(StoreError::NoSuchVersion)
            ));
        }
    }
}
